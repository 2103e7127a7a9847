"""Element semantics of the DSD operations in the reference interpreter (spec §8).

Contract: `ELEMENT_OPS[name]` is the `opspec` signature of DSD operation `name` with `fn`, which
maps one element of each source (numpy scalars of the source types) to one element of the
destination type. The policies are `wsejax.ops`'s (documented there); the arithmetic is written
here again, over Python numbers, so that the two check each other: floats are computed in double
and rounded once to their type (a mac rounds its product first: the ops are unfused), 16-bit
integer ops act on raw u16 patterns; `fscale*` scales by 2**k with `math.ldexp` and `fnorm*`
takes the significand from `math.frexp`. The function of an op in `opspec.CARRIED` takes the
carry in as a last argument and returns (element, carry out).
"""

from __future__ import annotations

import math

import numpy as np

from wsejax.opspec import ElementOp, for_fp16, with_functions
from wsejax.reference.scalars import clear_sign, flip_sign, maxnum, round_to, xp16
from wsejax.types import DType

__all__ = ["ELEMENT_OPS", "ElementOp", "add_with_carry", "element_ops"]

F32, F16 = DType.f32, DType.f16


def _float_ops(t: DType):
    """add, sub, mul and mac of float type t (the mac's product is rounded to t before it is
    added)."""
    def add(a, b): return round_to(float(a) + float(b), t)
    def sub(a, b): return round_to(float(a) - float(b), t)
    def mul(a, b): return round_to(float(a) * float(b), t)
    def mac(a, b, s): return round_to(float(a) + float(mul(b, s)), t)
    return add, sub, mul, mac


def _mixed_mac(fp16: DType):
    """fmachs: an fp16 product, rounded to fp16, added to an f32."""
    def fmachs(a, b, s):
        return round_to(float(a) + float(round_to(float(b) * float(s), fp16)), F32)
    return fmachs


def _fscale(t: DType):
    """s * 2**k rounded once to t (ldexp is exact in double over this range)."""
    def scale(a, k):
        x = float(a)
        if x == 0 or not math.isfinite(x):
            return a
        return round_to(math.ldexp(x, max(-400, min(400, int(k)))), t)
    return scale


def _fnorm(t: DType):
    """The significand of s in [1, 2), with s's sign (zeros, infinities, NaN unchanged)."""
    def norm(a):
        x = float(a)
        if x == 0 or not math.isfinite(x):
            return a
        return round_to(2.0 * math.frexp(x)[0], t)
    return norm


def add_with_carry(a, b, carry: int):
    """One element of `addc16`: ((a + b + carry) mod 2**16, carry out); the op passes the
    carry from element to element, 0 at its start (`opspec.CARRIED`)."""
    total = int(a) + int(b) + carry
    return _u16(total), total >> 16


def _same(a):
    return a


def _u16(v: int):
    return np.uint16(v & 0xFFFF)


def _s16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


def _sll16(a, n):
    return np.uint16(0) if int(n) >= 16 else _u16(int(a) << int(n))


def _slr16(a, n):
    return np.uint16(0) if int(n) >= 16 else np.uint16(int(a) >> int(n))


def _sar16(a, n):
    return _u16(_s16(int(a)) >> min(int(n), 15))


def _clz(a):
    return np.uint16(16 - int(a).bit_length())


def _ctz(a):
    a = int(a)
    return np.uint16(16 if a == 0 else (a & -a).bit_length() - 1)


def _build(fp16: DType = F16) -> dict[str, ElementOp]:
    """The table of a program whose fp16 format is `fp16`."""
    fadds, fsubs, fmuls, fmacs = _float_ops(F32)
    faddh, fsubh, fmulh, fmach = _float_ops(fp16)
    return with_functions({
        "fadds": fadds,
        "fsubs": fsubs,
        "fmuls": fmuls,
        "fmaxs": maxnum,
        "fmacs": fmacs,
        "fmovs": _same,
        "fnegs": flip_sign,
        "fabss": clear_sign,
        "fnorms": _fnorm(F32),
        "fscales": _fscale(F32),
        "faddh": faddh,
        "fsubh": fsubh,
        "fmulh": fmulh,
        "fmaxh": maxnum,
        "fmach": fmach,
        "fmovh": _same,
        "fnegh": flip_sign,
        "fabsh": clear_sign,
        "fnormh": _fnorm(fp16),
        "fscaleh": _fscale(fp16),
        "fmachs": _mixed_mac(fp16),
        "faddhs": fadds,      # an f16 source is exact in double
        "fh2s": np.float32,
        "fs2h": lambda a: round_to(float(a), fp16),
        "fs2xp16": lambda a: xp16(float(a)),
        "fh2xp16": lambda a: xp16(float(a)),
        "xp162fs": lambda a: round_to(float(int(a)), F32),
        "xp162fh": lambda a: round_to(float(int(a)), fp16),
        "add16": lambda a, b: _u16(int(a) + int(b)),
        "addc16": add_with_carry,
        "sub16": lambda a, b: _u16(int(a) - int(b)),
        "and16": lambda a, b: np.uint16(int(a) & int(b)),
        "or16": lambda a, b: np.uint16(int(a) | int(b)),
        "xor16": lambda a, b: np.uint16(int(a) ^ int(b)),
        "sll16": _sll16,
        "slr16": _slr16,
        "sar16": _sar16,
        "mov16": _same,
        "popcnt": lambda a: np.uint16(bin(int(a)).count("1")),
        "clz": _clz,
        "ctz": _ctz,
        "mov32": _same,
    }, for_fp16(fp16))


ELEMENT_OPS: dict[str, ElementOp] = _build()
_BY_FP16 = {F16: ELEMENT_OPS}


def element_ops(fp16: DType) -> dict[str, ElementOp]:
    """The table of a program whose fp16 format is `fp16` (`ELEMENT_OPS` for f16)."""
    if fp16 not in _BY_FP16:
        _BY_FP16[fp16] = _build(fp16)
    return _BY_FP16[fp16]
