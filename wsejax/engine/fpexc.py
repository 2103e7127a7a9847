"""The floating-point exceptions an operation raises (`wsejax.fpexc`), on jax arrays.

Contract. `raised(arith, x, y, fmt, zero)` gives, for one step of `wsejax.fpexc` ("+", "-",
"*", "/", "cvt", "scale") on operands `x`, `y` (f32 arrays holding the operands' exact values;
`y` an integer array for "scale"), one bool array per exception of `FP_EXCEPTIONS`, in that
order, for a result in format `fmt`. `first_unmasked(flags, mask)` gives the index + 1 of the
first of them raised and unmasked by `mask` (the PE's u16 register), 0 where none is.

Method. XLA:CPU flushes subnormals to zero, so no test reads a float that may be one: the
operands are taken apart on their bits into an integer significand M (< 2**24, held as f32)
and an exponent E, and the operation runs on the significands, scaled so that every float
it makes is normal: the result's significand s, rounded once to 24 bits, whether that rounding
was exact (an error-free transformation: Fast2Sum for a sum, Dekker's product for a product
and for a quotient's remainder) and the exponent that scales it back. Rounding s to the
format's precision and placing its exponent gives tininess, overflow and the bits a subnormal
result loses. (Rounding twice, to 24 bits and then to p <= 11, is rounding once: 24 >= 2p + 2.)
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import fpexc, ops
from wsejax.types import DType

__all__ = ["as_f32", "first_unmasked", "raised"]

_u32, _f32, _pow2 = ops._u32, ops._f32, ops._pow2   # bit views and exact powers of two


def as_f32(x, t: DType):
    """The exact value of `x` (of type `t`: a float, or an integer of at most 16 bits) as f32,
    read on the bits where XLA could flush a subnormal."""
    if t is DType.bf16:
        bits = lax.bitcast_convert_type(x, jnp.uint16).astype(jnp.uint32) << 16
        return _f32(bits)
    return x.astype(jnp.float32) if x.dtype != jnp.float32 else x


class _Parts:
    """An f32 taken apart: |x| = m * 2**e for finite x (m an integer < 2**24, as f32)."""

    def __init__(self, x, negate: bool = False):
        bits = _u32(x)
        field = (bits >> 23) & 0xFF
        frac = bits & 0x7FFFFF
        self.m = jnp.where(field == 0, frac, frac | 0x800000).astype(jnp.float32)
        self.e = jnp.maximum(field, 1).astype(jnp.int32) - 150
        self.neg = ((bits >> 31) == 1) != negate
        self.zero = (bits & 0x7FFFFFFF) == 0
        self.inf = (field == 0xFF) & (frac == 0)
        self.nan = (field == 0xFF) & (frac != 0)
        self.finite = field != 0xFF


def _sum(a: _Parts, b: _Parts):
    """(s, inexact, E): a + b = (s + err) * 2**E with s = fl(s + err), inexact = err != 0.

    Both are scaled so that the larger sits below 2**61; the smaller, where it is more than
    2**150 below that, counts only as a nonzero rest (the sum is inexact)."""
    emax = jnp.maximum(a.e, b.e)

    def scaled(p: _Parts):
        d = p.e - emax
        far = d < -150
        v = p.m * _pow2(jnp.clip(d + 37, -126, 37))
        v = jnp.where(far, 0.0, jnp.where(p.neg, -v, v))
        return v, far & ~p.zero

    va, far_a = scaled(a)
    vb, far_b = scaled(b)
    big = a.e >= b.e
    x, y = jnp.where(big, va, vb), jnp.where(big, vb, va)
    s = x + y
    z = s - x       # exact (Fast2Sum: x's exponent is at least y's)
    return s, (z != y) | far_a | far_b, emax - 37


def _product(a: _Parts, b: _Parts):
    h = ops._rounded(a.m * b.m)
    return h, ops._product_error(a.m, b.m, h) != 0, a.e + b.e


def _quotient(a: _Parts, b: _Parts, zero):
    # the divisor's bits or'ed with a table of zeros: XLA cannot see a constant divisor, which
    # it would turn into an inexact multiplication by its reciprocal
    mb = _f32(_u32(jnp.maximum(b.m, 1.0)) | zero)
    q = a.m / mb
    h = ops._rounded(q * mb)
    inexact = (h != a.m) | (ops._product_error(q, mb, h) != 0)
    return q, inexact, a.e - b.e


def _round(s, inexact, e, fmt: DType):
    """(overflow, tiny, inexact) of the value (s + err) * 2**e rounded to `fmt` (`s` normal
    or zero, `inexact` whether err != 0)."""
    p, emin, emax = fpexc.FORMATS[fmt]
    bits = _u32(s) & 0x7FFFFFFF
    nonzero = bits != 0
    field = (bits >> 23).astype(jnp.int32)
    m = (bits & 0x7FFFFF) | 0x800000
    drop = 24 - p
    if drop:
        q = m >> drop
        rest = m & ((1 << drop) - 1)
        half = 1 << (drop - 1)
        q = q + ((rest > half) | ((rest == half) & ((q & 1) == 1))).astype(jnp.uint32)
        inexact = inexact | (rest != 0)
    else:
        q = m
    carry = (q >> p).astype(jnp.int32)
    q = q >> carry.astype(jnp.uint32)
    top = field - 127 + e + carry
    zeros_below = lax.population_count(~q & (q - 1)).astype(jnp.int32)
    overflow = nonzero & (top > emax)
    tiny = nonzero & (top < emin)
    inexact = nonzero & (inexact | overflow | (top + zeros_below < emin))
    return overflow, tiny, inexact


def raised(arith: str, x, y, fmt: DType, zero=None):
    """The five flags of step `arith` on `x` and `y` (see the module's contract); `zero` is a
    u32 array of zeros the optimiser cannot see through (for "/")."""
    false = jnp.zeros(jnp.shape(x), bool)
    a = _Parts(x)
    if arith in ("cvt", "scale"):
        e = a.e if arith == "cvt" else a.e + jnp.clip(y.astype(jnp.int32), -1000, 1000)
        over, tiny, inexact = _round(jnp.where(a.finite, a.m, 0.0), false, e, fmt)
        return false, false, over, tiny, inexact
    b = _Parts(y, negate=arith == "-")
    finite = a.finite & b.finite
    if arith in ("+", "-"):
        s, inexact, e = _sum(a, b)
        invalid = a.inf & b.inf & (a.neg != b.neg)
        div0 = false
    elif arith == "*":
        s, inexact, e = _product(a, b)
        invalid = (a.inf & b.zero) | (a.zero & b.inf)
        div0 = false
    else:
        s, inexact, e = _quotient(a, b, jnp.uint32(0) if zero is None else zero)
        invalid = (a.zero & b.zero) | (a.inf & b.inf)
        div0 = a.finite & ~a.zero & b.zero
        finite = finite & ~b.zero
    over, tiny, inexact = _round(jnp.where(finite, s, 0.0), inexact & finite, e, fmt)
    return invalid, div0, over, tiny, inexact


def first_unmasked(flags, mask):
    """int32: 1 + the index of the first flag raised and unmasked by `mask` (a u16 array that
    broadcasts against the flags), 0 where there is none."""
    code = jnp.zeros(jnp.shape(flags[0]), jnp.int32)
    for k in reversed(range(len(flags))):
        bit = np.uint16(1 << fpexc.BITS[fpexc.FP_EXCEPTIONS[k]])
        on = flags[k] & ((mask & bit) == 0)
        code = jnp.where(on, np.int32(k + 1), code)
    return code
