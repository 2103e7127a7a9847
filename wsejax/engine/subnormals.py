"""Scalar f32 and bf16 expression operators, IEEE-exact with subnormals kept.

XLA:CPU runs with f32 subnormals flushed to zero, as operands and as results, and no flag turns
that off: `4e-45 > 0` is false there and `4e-45 + 4e-45` is 0. The expression lowering
(`engine.lower.exprs`) routes the operators of the types whose values can be f32 subnormals
through here: f32, and bf16, which shares f32's exponent range and is computed in f32 (its
result is rounded to bf16 by the caller, from the f32 value this gives). f16 and cb16 keep plain
jnp code: their values and the results of their operators are normal as f32 (their smallest
magnitudes are 2**-24 and 2**-39; a product or quotient of two of them is at least 2**-78).

Policy, as the reference interpreter computes it (`wsejax.reference.scalars`): `+ - * /` are
rounded once to nearest even (`wsejax.ops`' helpers, shared with the DSD operations);
comparisons read the bits (NaN is unordered, -0 == +0); `min`/`max` give the quiet NaN where an
operand is NaN and count -0 as less than +0; `%` is fmod, exact. Unary minus, abs and
conversions between float types move bits and keep subnormals as they are; a float is nonzero
(`@as(bool, x)`) where its bits other than the sign are. Every function takes and gives jax
arrays; the arithmetic ones give f32. On a backend that keeps subnormals they compute the same
values.

Example:
    >>> import jax.numpy as jnp
    >>> bool(binary(">", jnp.float32(4e-45), jnp.float32(0)))
    True
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ops
from wsejax.types import DType

__all__ = ["EXACT", "binary", "ceil", "floor", "fmods", "nonzero", "rsqrt", "sqrt"]

# the float types whose values can be f32 subnormals
EXACT = (DType.f32, DType.bf16)

_MAGNITUDE = np.uint32(0x7FFFFFFF)

_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}


def _f32(x):
    return x if x.dtype == jnp.float32 else x.astype(jnp.float32)


def _is_nan(x):
    return (ops._u32(x) & _MAGNITUDE) > 0x7F800000


def _compare_key(x):
    """An int32 ordered like the non-NaN f32 x, with -0 and +0 the same key."""
    i = lax.bitcast_convert_type(x, jnp.int32)
    return jnp.where(i < 0, -(i & 0x7FFFFFFF), i)


def _compare(op, a, b):
    ordered = _COMPARE[op](_compare_key(a), _compare_key(b))
    unordered = _is_nan(a) | _is_nan(b)
    return (ordered | unordered) if op == "!=" else (ordered & ~unordered)


def _min_max(op, a, b):
    ka, kb = ops._order_key(a), ops._order_key(b)
    pick_b = (kb > ka) if op == "max" else (kb < ka)
    return jnp.where(_is_nan(a) | _is_nan(b), jnp.float32(np.nan), jnp.where(pick_b, b, a))


def fmods(a: jax.Array, b: jax.Array) -> jax.Array:
    """fmod(a, b) of f32 arrays, exact. Where |b| >= 2**-100 and |a| >= |b| the remainder is a
    multiple of b's spacing, so 0 or normal, and XLA's is right; below that both are scaled by
    2**64 (fmod(a, c) for c = b * 2**64, a multiple of b, leaves a remainder below c), so every
    fmod computed has normal operands and a zero or normal result."""
    a, b = jnp.broadcast_arrays(a, b)
    plain = jnp.where(jnp.abs(a) < jnp.abs(b), a, lax.rem(a, b))
    c = ops._scale_up(b)
    r1 = jnp.where(jnp.abs(a) < jnp.abs(c), a, lax.rem(a, c))
    small = ops._scale_down(lax.rem(ops._scale_up(r1), c))
    return jnp.where(jnp.abs(b) < 2.0**-100, small, plain)


_ARITH = {"+": ops._fadds, "-": ops._fsubs, "*": ops._fmuls, "/": ops.fdivs, "%": fmods}


def binary(op: str, a: jax.Array, b: jax.Array) -> jax.Array:
    """Binary operator `op` (arithmetic, comparison, `min`, `max`) on f32 or bf16 operands:
    an f32 result, or bool for a comparison."""
    a, b = _f32(a), _f32(b)
    if op in _COMPARE:
        return _compare(op, a, b)
    if op in ("min", "max"):
        return _min_max(op, *jnp.broadcast_arrays(a, b))
    return _ARITH[op](a, b)


def nonzero(x: jax.Array) -> jax.Array:
    """x != 0 for f32 or bf16 x, read from the bits (NaN is nonzero)."""
    return (ops._u32(_f32(x)) & _MAGNITUDE) != 0


def _subnormal(x):
    bits = ops._u32(x)
    return ((bits & 0x7F800000) == 0) & ((bits & _MAGNITUDE) != 0)


def sqrt(x: jax.Array) -> jax.Array:
    """sqrt(x) of f32 or bf16 x, as f32: a subnormal x is scaled by 2**64 first, the root then
    by 2**-32 (both exact)."""
    x = _f32(x)
    return jnp.where(_subnormal(x), jnp.sqrt(ops._scale_up(x)) * 2.0**-32, jnp.sqrt(x))


def rsqrt(x: jax.Array) -> jax.Array:
    """1 / sqrt(x) as `lax.rsqrt` computes it, for f32 or bf16 x (a subnormal x scaled as in
    `sqrt`)."""
    x = _f32(x)
    return jnp.where(_subnormal(x), lax.rsqrt(ops._scale_up(x)) * 2.0**32, lax.rsqrt(x))


def floor(x: jax.Array) -> jax.Array:
    """floor(x) of f32 or bf16 x, as f32: -1 for a negative subnormal, +0 for a positive one."""
    x = _f32(x)
    return jnp.where(_subnormal(x), jnp.where(jnp.signbit(x), -1.0, 0.0), jnp.floor(x))


def ceil(x: jax.Array) -> jax.Array:
    """ceil(x) of f32 or bf16 x, as f32: +1 for a positive subnormal, -0 for a negative one."""
    x = _f32(x)
    return jnp.where(_subnormal(x), jnp.where(jnp.signbit(x), -0.0, 1.0), jnp.ceil(x))
