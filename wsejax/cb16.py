"""The cb16 ("Cerebras float16") format: encoding and decoding of its 16-bit patterns, in numpy.

Layout (documented): 1 sign bit (15), a 6-bit exponent field (14..9) and a 9-bit mantissa (8..0).
The bias, 42, is derived from the one documented encoding, 6.0 == 0x5900 (exponent field 44,
significand 1.5). What the documentation leaves open is modelled IEEE-like:

- exponent field 0: zero and subnormals, value = mantissa * 2**(1 - 42 - 9);
- exponent field 1..62: normal, value = (512 + mantissa) * 2**(field - 42 - 9);
- exponent field 63: infinity (mantissa 0) or NaN (mantissa nonzero; made NaNs are 0x7F00);
- conversion from f32 rounds to nearest, ties to even; a result past the largest finite value
  (1023 * 2**11) is infinity.

Every finite cb16 value is exactly an f32 (normal, never subnormal), so decoding is exact and
arithmetic on cb16 values computes in f32 and rounds its result with `encode`. The engine has the
same two functions on jax arrays (`wsejax.engine.cb16`).

    >>> hex(int(encode(6.0)))
    '0x5900'
    >>> float(decode(0x5900))
    6.0
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BIAS", "EXP_BITS", "INF", "MANT_BITS", "MAX_FINITE", "NAN", "decode", "encode",
           "round_float"]

EXP_BITS, MANT_BITS, BIAS = 6, 9, 42
INF = 0x7E00                        # +infinity (the sign bit set gives -infinity)
NAN = 0x7F00                        # the NaN a conversion makes
MAX_FINITE = 1023 * 2.0 ** 11       # 0x7DFF
_SIGN = 0x8000
# f32 bits -> cb16 bits: a normal cb16 keeps the f32 significand's top 9 fraction bits
_SHIFT = 23 - MANT_BITS             # 14
_F32_TO_FIELD = 127 - BIAS          # f32 exponent field - cb16 exponent field: 85


def _round_shift(m: np.ndarray, s: np.ndarray) -> np.ndarray:
    """m >> s rounded to nearest even (m, s int64; 1 <= s <= 40)."""
    q = m >> s
    rem = m & ((np.int64(1) << s) - 1)
    half = np.int64(1) << (s - 1)
    return q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))


def encode(x) -> np.ndarray:
    """The cb16 bit patterns (uint16) of `x` (anything numpy converts to f32), each rounded to
    nearest even; a scalar gives a 0-d array."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.int64)
    sign = (bits >> 16) & _SIGN
    field = (bits >> 23) & 0xFF
    frac = bits & 0x7FFFFF
    m = np.where(field == 0, frac, frac | (1 << 23))    # value = m * 2**(max(field,1) - 150)
    e = np.maximum(field, 1)
    s = np.clip(_F32_TO_FIELD + 1 + _SHIFT - e, _SHIFT, 40)    # subnormals shift more
    q = _round_shift(m, s)          # significand in cb16 ulps; a carry moves the exponent on
    mag = (np.maximum(e - _F32_TO_FIELD - 1, 0) << MANT_BITS) + q
    mag = np.minimum(mag, INF)
    mag = np.where(field == 0xFF, np.where(frac == 0, INF, NAN), mag)
    return (sign | mag).astype(np.uint16)


def decode(b) -> np.ndarray:
    """The f32 values of cb16 bit patterns `b` (integers, read as their low 16 bits)."""
    b = np.asarray(b)
    shape = b.shape
    b = b.reshape(-1).astype(np.int64) & 0xFFFF
    sign = (b & _SIGN) << 16
    field = (b >> MANT_BITS) & 0x3F
    mant = b & 0x1FF
    normal = (field + _F32_TO_FIELD) << 23 | (mant << _SHIFT)
    sub = (mant.astype(np.float32) * np.float32(2.0 ** (1 - BIAS - MANT_BITS))).view(np.uint32)
    special = np.where(mant == 0, 0x7F800000, 0x7FC00000)
    mag = np.where(field == 0, sub, np.where(field == 0x3F, special, normal))
    return (mag | sign).astype(np.uint32).view(np.float32).reshape(shape)


_MIN_ULP = 1 - BIAS - MANT_BITS       # the exponent of the smallest subnormal: -50


def round_float(x: float) -> float:
    """The Python float `x` rounded once to the nearest cb16 value, ties to even (`encode` rounds
    an f32; this rounds a double without passing through f32)."""
    if x == 0 or not math.isfinite(x):
        return x
    e = math.frexp(abs(x))[1]                   # 2**(e-1) <= |x| < 2**e
    ulp = max(e - 1 - MANT_BITS, _MIN_ULP)
    v = math.ldexp(round(math.ldexp(abs(x), -ulp)), ulp)      # round(): half to even
    return math.copysign(v if v <= MAX_FINITE else math.inf, x)
