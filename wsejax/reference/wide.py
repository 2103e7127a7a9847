"""64-bit integers (`i64`, `u64`) in the reference interpreter: Python ints masked to 64 bits.

Contract: what `scalars` does for the narrower integers holds for these too (two's complement
wrap, truncating division, x / 0 == 0); this module adds the two rules where the width
matters: integer to float rounds once, to nearest even, from the exact integer (a double in
between would round twice), and a shift count is read as an unsigned 64-bit number (a count of
64 or more shifts everything out).
"""

from __future__ import annotations

import numpy as np

from wsejax.types import DType, rounded

__all__ = ["int_to_float", "shift"]

_MANTISSA = {DType.f32: 24, DType.f16: 11, DType.bf16: 8, DType.cb16: 10}


def int_to_float(v: int, want: DType):
    """The integer v as a numpy scalar of float type `want`, rounded to nearest even."""
    mag = abs(v)
    extra = mag.bit_length() - _MANTISSA[want]
    if extra > 0:
        mant, rest = mag >> extra, mag & ((1 << extra) - 1)
        half = 1 << (extra - 1)
        if rest > half or (rest == half and mant & 1):
            mant += 1
        mag = mant << extra
    # mag now has at most the mantissa's bits: exact in f32, and in `want` unless it overflows
    with np.errstate(over="ignore"):        # past the type's range: an infinity
        x = rounded(np.float32(float(mag)), want)[()]
    return -x if v < 0 else x


def shift(op: str, x: int, count: int, t: DType) -> int:
    """`x << count` or `x >> count` in the 64-bit type t (x already of t's range)."""
    count &= (1 << 64) - 1
    if op == "<<":
        return 0 if count >= 64 else x << count
    if count >= 64:
        return -1 if x < 0 else 0
    return x >> count
