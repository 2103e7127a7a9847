"""The cb16 format's encoding and decoding on jax arrays, on the integer bits (vectorised,
jit-friendly; no float operation that XLA:CPU could flush or keep in excess precision). The
format and its policy for what the documentation leaves open are described in `wsejax.cb16`,
whose numpy functions these match bit for bit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from wsejax import ops
from wsejax.cb16 import BIAS, INF, MANT_BITS, NAN
from wsejax.opspec import for_fp16
from wsejax.types import DType

__all__ = ["OPS_CB16", "decode", "encode", "from_bits16", "ops_for", "round_cb16", "rounder",
           "to_bits16"]

_SHIFT = 23 - MANT_BITS
_F32_TO_FIELD = 127 - BIAS


def _round_shift(m, s):
    """m >> s rounded to nearest even (uint32; 1 <= s <= 31)."""
    q = m >> s
    rem = m & ((jnp.uint32(1) << s) - 1)
    half = jnp.uint32(1) << (s - 1)
    return q + ((rem > half) | ((rem == half) & ((q & 1) == 1))).astype(jnp.uint32)


def encode(x: jax.Array) -> jax.Array:
    """The cb16 bit patterns (uint16) of `x` (converted to f32), rounded to nearest even."""
    bits = lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
    sign = (bits >> 16) & jnp.uint32(0x8000)
    field = ((bits >> 23) & 0xFF).astype(jnp.int32)
    frac = bits & jnp.uint32(0x7FFFFF)
    m = jnp.where(field == 0, frac, frac | jnp.uint32(1 << 23))
    e = jnp.maximum(field, 1)
    s = jnp.clip(_F32_TO_FIELD + 1 + _SHIFT - e, _SHIFT, 31).astype(jnp.uint32)
    q = _round_shift(m, s)
    mag = (jnp.maximum(e - _F32_TO_FIELD - 1, 0).astype(jnp.uint32) << MANT_BITS) + q
    mag = jnp.minimum(mag, jnp.uint32(INF))
    mag = jnp.where(field == 0xFF, jnp.where(frac == 0, jnp.uint32(INF), jnp.uint32(NAN)), mag)
    return (sign | mag).astype(jnp.uint16)


def decode(b: jax.Array) -> jax.Array:
    """The f32 values of cb16 bit patterns `b` (any 16-bit integer type)."""
    b = lax.bitcast_convert_type(b, jnp.uint16) if b.dtype == jnp.int16 else b
    b = b.astype(jnp.uint32) & 0xFFFF
    sign = (b & 0x8000) << 16
    field = (b >> MANT_BITS) & 0x3F
    mant = b & 0x1FF
    normal = ((field + _F32_TO_FIELD) << 23) | (mant << _SHIFT)
    # mant * 2**-50 on the bits: normalise the mantissa's leading 1 into the f32 hidden bit
    lead = 31 - lax.clz(jnp.maximum(mant, 1))                  # 0..8
    sub_frac = (mant << (23 - lead)) & jnp.uint32(0x7FFFFF)
    sub = jnp.where(mant == 0, jnp.uint32(0),
                    ((lead + (127 + 1 - BIAS - MANT_BITS)) << 23) | sub_frac)
    special = jnp.where(mant == 0, jnp.uint32(0x7F800000), jnp.uint32(0x7FC00000))
    mag = jnp.where(field == 0, sub, jnp.where(field == 0x3F, special, normal))
    return lax.bitcast_convert_type(mag | sign, jnp.float32)


def round_cb16(x: jax.Array) -> jax.Array:
    """`x` rounded to the nearest cb16 value, as f32."""
    return decode(encode(x))


# -- values of any 16-bit type and their patterns (cb16's made by the codec, the others' the bits
# they are held in)

def to_bits16(x: jax.Array, t: DType) -> jax.Array:
    """The 16-bit patterns (uint16) of values `x` of the 16-bit type `t`."""
    if t is DType.cb16:
        return encode(x)
    return x if x.dtype == jnp.uint16 else lax.bitcast_convert_type(x, jnp.uint16)


def from_bits16(b: jax.Array, t: DType) -> jax.Array:
    """The values of the 16-bit type `t` whose patterns are `b` (uint16 or int16)."""
    if t is DType.cb16:
        return decode(b)
    return b if b.dtype == t.np else lax.bitcast_convert_type(b, t.np)


def rounder(t: DType):
    """The function rounding an f32 result to the 16-bit float type `t` (held in its numpy type),
    for the formats whose arithmetic XLA would not round (bf16, cb16); None for the others."""
    return {DType.cb16: round_cb16, DType.bf16: ops.round_bf16}.get(t)


def _binary(op32):
    def op(a, b):
        return round_cb16(op32(a, b))
    return op


OPS_CB16 = ops.with_functions({
    **{name: op.fn for name, op in ops.OPS.items()},
    "faddh": _binary(ops._fadds),
    "fsubh": _binary(ops._fsubs),
    "fmulh": _binary(ops._fmuls),
    "fmach": lambda a, b, s: round_cb16(ops._fadds(a, round_cb16(ops._fmuls(b, s)))),
    "fmachs": lambda a, b, s: ops._fadds(a, round_cb16(ops._fmuls(b, s))),
    "fscaleh": lambda x, k: round_cb16(ops._fscale(x, k)),
    "fs2h": round_cb16,
    "xp162fh": lambda a: round_cb16(a.astype(jnp.float32)),
}, for_fp16(DType.cb16))


def ops_for(fp16: DType) -> dict:
    """The DSD operations' element functions of a program whose fp16 format is `fp16`."""
    return OPS_CB16 if fp16 is DType.cb16 else ops.ops_for(fp16)
