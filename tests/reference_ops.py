"""Slow per-element oracle for the DSD operation builtins (spec §8).

Written apart from `wsejax/ops.py` so that the two can check each other. Floating point ops
compute in Python floats (IEEE double) and round once to the destination type with numpy; that is
exact for add, sub and mul of f32 or f16 operands, because double has more than 2p+2 bits for
either (the double rounding is innocuous). Integer ops use Python ints on the raw bit patterns.

Interface, shared by every test that needs a per-PE oracle:
  REFERENCE[name](*src_scalars) -> numpy scalar of the destination type, for one element;
  reference_apply(name, *src_arrays) -> np.ndarray of the broadcast shape, element by element.

Policies for [U] items (same as the emulator): maxNum with +0 > -0; float -> xp16 truncates,
saturates, NaN -> 0; xp16 is signed; shift counts >= 16 give 0 or the sign fill; unfused macs;
fscale is s * 2**k, fnorm the significand of s in [1, 2) with its sign.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["CARRIED", "REFERENCE", "reference_apply"]

# addc16 passes a carry from element to element, from 0 at the op's start: its function takes
# the carry in last and returns (element, carry out)
CARRIED = {"addc16"}

REFERENCE: dict[str, Callable] = {}
_DEST: dict[str, np.dtype] = {}
_SRCS: dict[str, tuple[np.dtype, ...]] = {}

f32, f16, i16, u16, u32 = np.float32, np.float16, np.int16, np.uint16, np.uint32


def _ref(name: str, dest, *srcs):
    def register(fn):
        REFERENCE[name] = fn
        _DEST[name] = np.dtype(dest)
        _SRCS[name] = tuple(np.dtype(s) for s in srcs)
        return fn

    return register


def _round(x: float, dtype):
    """The double `x` rounded to nearest even in `dtype` (overflow gives inf, quietly)."""
    with np.errstate(all="ignore"):
        return dtype(x)


def _maxnum(a: float, b: float) -> float:
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    if a == b:  # only +0 and -0 compare equal with different bits
        return b if math.copysign(1.0, a) < 0 else a
    return a if a > b else b


def _signed16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


def _xp16(x: float):
    if math.isnan(x):
        return i16(0)
    if math.isinf(x):
        return i16(32767 if x > 0 else -32768)
    return i16(min(max(math.trunc(x), -32768), 32767))


for _t, _s in ((f32, "s"), (f16, "h")):
    # Bind the type per loop turn through default arguments.
    _ref("fadd" + _s, _t, _t, _t)(lambda a, b, t=_t: _round(float(a) + float(b), t))
    _ref("fsub" + _s, _t, _t, _t)(lambda a, b, t=_t: _round(float(a) - float(b), t))
    _ref("fmul" + _s, _t, _t, _t)(lambda a, b, t=_t: _round(float(a) * float(b), t))
    _ref("fmax" + _s, _t, _t, _t)(lambda a, b, t=_t: _round(_maxnum(float(a), float(b)), t))
    _ref("fmac" + _s, _t, _t, _t, _t)(
        lambda a, b, s, t=_t: _round(float(a) + float(_round(float(b) * float(s), t)), t)
    )
    _ref("fmov" + _s, _t, _t)(lambda a, t=_t: t(a))
    _ref("fneg" + _s, _t, _t)(lambda a, t=_t: _round(-float(a), t))
    _ref("fabs" + _s, _t, _t)(lambda a, t=_t: _round(abs(float(a)), t))


for _t, _s in ((f32, "s"), (f16, "h")):
    _ref("fscale" + _s, _t, _t, i16)(
        lambda a, k, t=_t: a if not np.isfinite(a) or a == 0
        else _round(float(np.ldexp(np.float64(a), int(np.clip(int(k), -500, 500)))), t))
    _ref("fnorm" + _s, _t, _t)(
        lambda a, t=_t: a if not np.isfinite(a) or a == 0
        else _round(float(np.float64(a) / np.exp2(np.floor(np.log2(abs(np.float64(a)))))), t))


@_ref("fmachs", f32, f32, f16, f16)
def _fmachs(a, b, s):
    product = _round(float(b) * float(s), f16)
    return _round(float(a) + float(product), f32)


@_ref("faddhs", f32, f32, f16)
def _faddhs(a, b):
    return _round(float(a) + float(b), f32)


_ref("fh2s", f32, f16)(lambda a: _round(float(a), f32))
_ref("fs2h", f16, f32)(lambda a: _round(float(a), f16))
_ref("fs2xp16", i16, f32)(lambda a: _xp16(float(a)))
_ref("fh2xp16", i16, f16)(lambda a: _xp16(float(a)))
_ref("xp162fs", f32, i16)(lambda a: _round(float(int(a)), f32))
_ref("xp162fh", f16, i16)(lambda a: _round(float(int(a)), f16))

_ref("add16", u16, u16, u16)(lambda a, b: u16((int(a) + int(b)) & 0xFFFF))
_ref("addc16", u16, u16, u16)(lambda a, b, c: ((int(a) + int(b) + c) & 0xFFFF,
                                               (int(a) + int(b) + c) >> 16))
_ref("sub16", u16, u16, u16)(lambda a, b: u16((int(a) - int(b)) & 0xFFFF))
_ref("and16", u16, u16, u16)(lambda a, b: u16(int(a) & int(b)))
_ref("or16", u16, u16, u16)(lambda a, b: u16(int(a) | int(b)))
_ref("xor16", u16, u16, u16)(lambda a, b: u16(int(a) ^ int(b)))
_ref("sll16", u16, u16, u16)(lambda a, n: u16((int(a) << int(n)) & 0xFFFF))
_ref("slr16", u16, u16, u16)(lambda a, n: u16(int(a) >> int(n)))
_ref("sar16", u16, u16, u16)(lambda a, n: u16((_signed16(int(a)) >> int(n)) & 0xFFFF))
_ref("mov16", u16, u16)(lambda a: u16(int(a)))
_ref("popcnt", u16, u16)(lambda a: u16(bin(int(a)).count("1")))
_ref("clz", u16, u16)(lambda a: u16(16 - int(a).bit_length()))
_ref("ctz", u16, u16)(lambda a: u16(16 if int(a) == 0 else (int(a) & -int(a)).bit_length() - 1))
_ref("mov32", u32, u32)(lambda a: u32(int(a)))


def _as_source(x, dtype: np.dtype, name: str, i: int) -> np.ndarray:
    """`x` as an array of `dtype`; Python scalars are converted, integer arrays reinterpreted."""
    if not isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x, dtype)
    x = np.asarray(x)
    if x.dtype == dtype:
        return x
    if x.dtype.kind in "iu" and dtype.kind in "iu" and x.dtype.itemsize == dtype.itemsize:
        return x.view(dtype)  # 16-bit ops act on raw patterns: i16 and u16 memory alike
    raise TypeError(f"reference_apply: {name} source {i} must be {dtype}, got {x.dtype}")


def reference_apply(name: str, *src_arrays) -> np.ndarray:
    """Apply `REFERENCE[name]` element by element over the broadcast sources.

    Args:
      name: builtin name without '@' ("fadds", "sll16", ...).
      *src_arrays: one array or scalar per source operand, broadcastable; arrays must have the
        source dtype (integer arrays of the same width are reinterpreted).

    Returns:
      An array of the broadcast shape and the destination dtype.
    """
    ref, dest, srcs = REFERENCE[name], _DEST[name], _SRCS[name]
    if len(src_arrays) != len(srcs):
        raise TypeError(f"reference_apply: {name} takes {len(srcs)} sources, got {len(src_arrays)}")
    arrays = np.broadcast_arrays(
        *(
            _as_source(x, dt, name, i)
            for i, (x, dt) in enumerate(zip(src_arrays, srcs, strict=True))
        )
    )
    out = np.empty(arrays[0].shape, dest)
    if name in CARRIED:
        # the carry goes from each element to the next along the last axis, from 0
        for row in np.ndindex(out.shape[:-1]):
            carry = 0
            for i in range(out.shape[-1] if out.ndim else 1):
                index = row + (i,) if out.ndim else ()
                out[index], carry = ref(*(a[index] for a in arrays), carry)
        return out
    for index in np.ndindex(out.shape):
        out[index] = ref(*(a[index] for a in arrays))
    return out
