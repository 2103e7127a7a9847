"""64-bit integers (`i64`, `u64`) in the engine, which computes with x64 disabled.

Contract. A 64-bit value is held as one complex64 element whose real part carries the bits of
the low 32-bit half and whose imaginary part those of the high half (its bytes are then the
little-endian 64-bit integer, as in PE memory). Moving such values (selects, broadcasts,
gathers, scatters, loop carries, memory slots) needs nothing of its own: every one of these
copies bits. Arithmetic unpacks the halves to uint32 (`unpack`), works on them with the carries
written out, and packs the result (`pack`). Programs without 64-bit values never reach this
module, so they lower exactly as before. Integers wrap modulo 2**64 (two's complement); a
division or remainder by zero gives 0; a shift by the width or more gives 0 (the sign fill for
a signed `>>`); float to integer truncates toward zero and saturates (NaN gives 0); integer to
float rounds once, to nearest even.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax.types import DType

__all__ = ["CARRIER", "as_index", "astype", "binary", "carrier", "cast", "compare", "const",
           "count_of", "host_view", "pack", "unary", "unpack"]

CARRIER = np.dtype(np.complex64)
_MASK = (1 << 64) - 1
_U32 = jnp.uint32


def carrier(t: DType) -> np.dtype:
    """The dtype of the engine's arrays holding values of type `t`."""
    return CARRIER if t.is_wide else t.np


def const(v: int):
    """The carrier scalar of the integer `v` (wrapped to 64 bits)."""
    return np.array([int(v) & _MASK], np.uint64).view(np.complex64)[0]


def pack(lo, hi):
    """The carrier of the uint32 halves `lo` and `hi`."""
    return lax.complex(lax.bitcast_convert_type(lo, jnp.float32),
                       lax.bitcast_convert_type(hi, jnp.float32))


def unpack(c):
    """The uint32 halves (lo, hi) of carrier values `c`."""
    c = jnp.asarray(c, CARRIER)
    return (lax.bitcast_convert_type(lax.real(c), _U32),
            lax.bitcast_convert_type(lax.imag(c), _U32))


# -- halves arithmetic: (lo, hi) pairs of uint32 arrays ---------------------------------------


def _add(a, b):
    lo = a[0] + b[0]
    return lo, a[1] + b[1] + (lo < a[0]).astype(_U32)


def _sub(a, b):
    return a[0] - b[0], a[1] - b[1] - (a[0] < b[0]).astype(_U32)


def _neg(a):
    return _sub((jnp.zeros_like(a[0]), jnp.zeros_like(a[1])), a)


def _mul32(x, y):
    """The full 64-bit product of uint32 arrays x and y, from 16-bit halves."""
    x0, x1 = x & 0xFFFF, x >> 16
    y0, y1 = y & 0xFFFF, y >> 16
    p00, p01, p10, p11 = x0 * y0, x0 * y1, x1 * y0, x1 * y1
    mid = p01 + p10
    mid_carry = (mid < p01).astype(_U32) << 16
    lo = p00 + (mid << 16)
    hi = p11 + (mid >> 16) + mid_carry + (lo < p00).astype(_U32)
    return lo, hi


def _mul(a, b):
    lo, hi = _mul32(a[0], b[0])
    return lo, hi + a[0] * b[1] + a[1] * b[0]


def _eq(a, b):
    return (a[0] == b[0]) & (a[1] == b[1])


def _ltu(a, b):
    return (a[1] < b[1]) | ((a[1] == b[1]) & (a[0] < b[0]))


def _lt(a, b, signed: bool):
    if not signed:
        return _ltu(a, b)
    ah, bh = (lax.bitcast_convert_type(h, jnp.int32) for h in (a[1], b[1]))
    return (ah < bh) | ((ah == bh) & (a[0] < b[0]))


def _negative(a):
    return (a[1] >> 31) != 0


def _where(c, a, b):
    return jnp.where(c, a[0], b[0]), jnp.where(c, a[1], b[1])


def _shl(a, n):
    """a << n for a uint32 count n < 64."""
    big = n >= 32
    small = jnp.where(big, 0, n).astype(_U32)
    carry = jnp.where(small == 0, _U32(0), lax.shift_right_logical(a[0], _U32(32) - small))
    lo = lax.shift_left(a[0], small)
    hi = lax.shift_left(a[1], small) | carry
    over = lax.shift_left(a[0], (jnp.where(big, n, 32) - 32).astype(_U32))
    return jnp.where(big, _U32(0), lo), jnp.where(big, over, hi)


def _shr(a, n, signed: bool):
    """a >> n for a uint32 count n < 64 (arithmetic if `signed`)."""
    big = n >= 32
    small = jnp.where(big, 0, n).astype(_U32)
    carry = jnp.where(small == 0, _U32(0), lax.shift_left(a[1], _U32(32) - small))
    lo = lax.shift_right_logical(a[0], small) | carry
    far = (jnp.where(big, n, 32) - 32).astype(_U32)
    if signed:
        hs = lax.bitcast_convert_type(a[1], jnp.int32)
        hi = lax.bitcast_convert_type(lax.shift_right_arithmetic(hs, small.astype(jnp.int32)),
                                      _U32)
        over = lax.bitcast_convert_type(lax.shift_right_arithmetic(hs, far.astype(jnp.int32)),
                                        _U32)
        fill = lax.bitcast_convert_type(lax.shift_right_arithmetic(hs, 31), _U32)
        return jnp.where(big, over, lo), jnp.where(big, fill, hi)
    hi = lax.shift_right_logical(a[1], small)
    return (jnp.where(big, lax.shift_right_logical(a[1], far), lo),
            jnp.where(big, _U32(0), hi))


def count_of(b, have: DType):
    """A shift count of type `have` as uint32, saturated to 64 (a count >= 64 shifts
    everything out)."""
    if have.is_wide:
        lo, hi = unpack(b)
        return jnp.where(hi != 0, _U32(64), jnp.minimum(lo, _U32(64)))
    if have.is_signed:
        b = lax.bitcast_convert_type(b.astype(jnp.int32), _U32)
    return jnp.minimum(b.astype(_U32), _U32(64))


def _shift(op: str, a, n, signed: bool):
    zero = jnp.zeros_like(a[0])
    if op == "<<":
        return _where(n >= 64, (zero, zero), _shl(a, jnp.minimum(n, 63)))
    if signed:
        return _shr(a, jnp.minimum(n, 63), True)
    return _where(n >= 64, (zero, zero), _shr(a, jnp.minimum(n, 63), False))


def _divmod_unsigned(a, b):
    """Quotient and remainder of a / b (unsigned), restoring division over 64 steps."""
    zero = jnp.zeros_like(a[0])

    def step(_, s):
        num, rem, q = s
        rem = _shl(rem, _U32(1))
        rem = (rem[0] | (num[1] >> 31), rem[1])
        num = _shl(num, _U32(1))
        ge = ~_ltu(rem, b)
        rem = _where(ge, _sub(rem, b), rem)
        q = _shl(q, _U32(1))
        return num, rem, (q[0] | ge.astype(_U32), q[1])

    _, rem, q = lax.fori_loop(0, 64, step, (a, (zero, zero), (zero, zero)))
    by_zero = (b[0] == 0) & (b[1] == 0)
    return _where(by_zero, (zero, zero), q), _where(by_zero, (zero, zero), rem)


def _divmod(a, b, signed: bool):
    """Quotient (toward zero) and remainder (the sign of a) of a / b."""
    if not signed:
        return _divmod_unsigned(a, b)
    na, nb = _negative(a), _negative(b)
    q, r = _divmod_unsigned(_where(na, _neg(a), a), _where(nb, _neg(b), b))
    return _where(na != nb, _neg(q), q), _where(na, _neg(r), r)


_ARITH = {"+": _add, "-": _sub, "*": _mul,
          "&": lambda a, b: (a[0] & b[0], a[1] & b[1]),
          "|": lambda a, b: (a[0] | b[0], a[1] | b[1]),
          "^": lambda a, b: (a[0] ^ b[0], a[1] ^ b[1])}


def compare(op: str, a, b, t: DType):
    """Comparison `op` of carrier values of type t: bool."""
    a, b = unpack(a), unpack(b)
    if op in ("==", "!="):
        eq = _eq(a, b)
        return eq if op == "==" else ~eq
    if op in (">", "<="):
        a, b = b, a
    lt = _lt(a, b, t.is_signed)
    return lt if op in ("<", ">") else ~lt


def binary(op: str, a, b, t: DType, count_type: DType | None = None):
    """Binary operator `op` (`+ - * / % & | ^ << >> min max`) on carrier values of type t;
    a shift's count `b` has type `count_type`."""
    if op in ("<<", ">>"):
        return pack(*_shift(op, unpack(a), count_of(b, count_type), t.is_signed))
    x, y = unpack(a), unpack(b)
    if op in ("/", "%"):
        q, r = _divmod(x, y, t.is_signed)
        return pack(*(q if op == "/" else r))
    if op in ("min", "max"):
        lt = _lt(x, y, t.is_signed)
        return pack(*_where(lt if op == "min" else ~lt, x, y))
    return pack(*_ARITH[op](x, y))


def unary(op: str, a, t: DType):
    """Unary operator `op` (`-`, `~`, `abs`) on carrier values of type t."""
    x = unpack(a)
    if op == "~":
        return pack(~x[0], ~x[1])
    if op == "-":
        return pack(*_neg(x))
    return pack(*_where(_negative(x), _neg(x), x)) if t.is_signed else a


# -- conversions ------------------------------------------------------------------------------


def _pow2(e):
    """2.0**e (f32) for int32 exponents within the normal range."""
    return lax.bitcast_convert_type(((e + 127) << 23).astype(_U32), jnp.float32)


def _bit_length(a):
    """The number of significant bits of the unsigned 64-bit value a (int32)."""
    hi_len = 32 - lax.clz(a[1]).astype(jnp.int32)
    lo_len = 32 - lax.clz(a[0]).astype(jnp.int32)
    return jnp.where(a[1] != 0, hi_len + 32, lo_len)


_MANTISSA = {DType.f32: 24, DType.f16: 11, DType.bf16: 8, DType.cb16: 10}


def _to_float(a, signed: bool, want: DType):
    """Values a (halves) as the float type `want`, rounded once to its mantissa."""
    neg = _negative(a) if signed else jnp.zeros(a[0].shape, bool)
    mag = _where(neg, _neg(a), a)
    m = _MANTISSA[want]
    shift = jnp.maximum(_bit_length(mag) - m, 0)
    sh = shift.astype(_U32)
    mant = _shr(mag, sh, False)[0]
    one = (jnp.ones_like(a[0]), jnp.zeros_like(a[0]))
    low_mask = _sub(_shl(one, sh), one)
    rest = (mag[0] & low_mask[0], mag[1] & low_mask[1])
    half = _shr(_shl(one, sh), _U32(1), False)
    up = (_ltu(half, rest) | (_eq(rest, half) & ((mant & 1) != 0))) & (shift > 0)
    mant = mant + up.astype(_U32)
    x = mant.astype(jnp.float32) * _pow2(shift)
    return jnp.where(neg, -x, x).astype(want.np)


def _from_float(x, want: DType):
    """Float values x as halves of `want`: truncated toward zero, saturated, NaN -> 0."""
    t = jnp.trunc(x.astype(jnp.float32))
    nan = jnp.isnan(t)
    if want.is_signed:
        top, bottom = const(2**63 - 1), const(-(2**63))
        over, under = t >= 2.0**63, t < -(2.0**63)
    else:
        top, bottom = const(2**64 - 1), const(0)
        over, under = t >= 2.0**64, t < 0
    mag = jnp.abs(jnp.where(nan | over | under, 0.0, t))
    hi_f = jnp.floor(mag * np.float32(2.0**-32))
    lo_f = mag - hi_f * np.float32(2.0**32)
    a = (lo_f.astype(_U32), hi_f.astype(_U32))
    a = _where(t < 0, _neg(a), a)
    out = pack(*a)
    out = jnp.where(over, top, out)
    return jnp.where(under, bottom, out)


def _widen(x, have: DType):
    """Values x of a narrower integer (or bool) type as halves of a 64-bit one."""
    if have is DType.bool_ or not have.is_signed:
        return x.astype(_U32), jnp.zeros(jnp.shape(x), _U32)
    s = x.astype(jnp.int32)
    return (lax.bitcast_convert_type(s, _U32),
            jnp.where(s < 0, _U32(0xFFFFFFFF), _U32(0)))


def cast(x, have: DType, want: DType):
    """`@as(want, x)` where `have` or `want` is a 64-bit integer type."""
    if have.is_wide and want.is_wide:
        return x
    if want.is_wide:
        if have.is_float:
            return _from_float(x, want)
        return pack(*_widen(x, have))
    lo, hi = unpack(x)
    if want is DType.bool_:
        return (lo | hi) != 0
    if want.is_float:
        return _to_float((lo, hi), have.is_signed, want)
    narrow = lo.astype({8: jnp.uint8, 16: jnp.uint16, 32: _U32}[want.bits])
    return lax.bitcast_convert_type(narrow, want.np) if want.is_signed else narrow


def astype(v, t: DType):
    """`v` in the form the engine holds values of type `t`: `v.astype(t.np)`, or for a 64-bit
    `t` its carrier (an integer `v` not yet one is widened from its own dtype)."""
    if not t.is_wide:
        return (v if hasattr(v, "astype") else jnp.asarray(v)).astype(t.np)
    v = jnp.asarray(v)
    if v.dtype == CARRIER:
        return v
    have = DType.bool_ if v.dtype == bool else \
        DType(("i" if v.dtype.kind == "i" else "u") + str(v.dtype.itemsize * 8))
    return pack(*_widen(v, have))


def as_index(v, static: bool):
    """A 64-bit index as an int32 one: its value below 2**31, else -1 (out of range too);
    numpy where `static` (known at trace time)."""
    if static:
        x = np.asarray(v).view(np.int64)
        return np.where((x >= 0) & (x < 2**31), x, -1)
    lo, hi = unpack(v)
    small = (hi == 0) & ((lo >> 31) == 0)
    return jnp.where(small, lax.bitcast_convert_type(lo, jnp.int32), -1)


def host_view(v, t: DType) -> np.ndarray:
    """Engine values `v` of type `t` as numpy values of `t` (a carrier read as its integer)."""
    v = np.asarray(v)
    return v.view(t.np) if t.is_wide else v
