"""Element semantics of the DSD operation builtins (spec §8).

Contract: every operation is an `ElementOp` in `OPS`, keyed by its CSL builtin name without the
`@` (`"fadds"`, `"fmach"`, `"sll16"`, ...): its signature from `wsejax.opspec` and its `fn`.
`spec.fn(*srcs)` computes the destination elements from the source elements, in the order the
builtin takes them after the destination. Sources are jax arrays already of dtype
`spec.srcs[i].np` and of broadcast-compatible shapes (a scalar operand is a 0-d array); the result
has the broadcast shape and dtype `spec.dest.np`. Functions are pure and elementwise; walking
DSDs, the length rule (§7.9) and pointer destinations (§7.7: the last element is kept) belong to
the caller. No `@jax.jit` here: the engine owns the compiled entry points.

Results are bit-exact IEEE: round to nearest even, subnormals kept, each arithmetic step rounded
to its type (`fmacs`/`fmach`/`fmachs` are unfused). XLA:CPU breaks both rules for plain jnp code
(it flushes f32 subnormals to zero and contracts a multiply feeding an add into an FMA); the f32
helpers below rebuild subnormals from bits and `_rounded` keeps products apart from their adds.
They serve the engine's scalar f32 expressions too (`engine.subnormals`), with `fdivs`, the f32
division no DSD operation has.
16-bit integer ops act on raw `u16` patterns (spec §8: i16 vs u16 only changes how a literal is
encoded).

Policies for what the spec marks [U]/[I]: `fmaxs`/`fmaxh` follow IEEE maxNum, a NaN loses to a
number and +0 counts as larger than -0; float -> xp16 truncates toward zero, saturates to the i16
range and maps NaN to 0; xp16 sources are signed; shifts move the first source by the second, a
count of 16 or more gives 0 (`sll16`, `slr16`) or the sign fill (`sar16`). `fscales`/`fscaleh`
give s * 2**k rounded once to nearest even (subnormal results included; overflow gives inf);
`addc16` adds with carry: a carry flag, 0 when the op starts, takes each element's carry out to
the next element (so `fn` chains along the last axis, in the op's element order; one element at
a time, `add_with_carry` passes the flag on). `fnorms`/`fnormh` ("normalize", meaning unknown)
give s's significand scaled into [1, 2) with s's sign, so that s == fnorm(s) * 2**floor(log2|s|);
zeros, infinities and NaN pass unchanged.

Example:
    >>> import jax.numpy as jnp
    >>> apply("add16", jnp.arange(1, 6, dtype=jnp.uint16), jnp.uint16(10)).tolist()
    [11, 12, 13, 14, 15]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax.errors import ProgramError
from wsejax.opspec import ElementOp, OpSpec, for_fp16, form_error, with_functions
from wsejax.types import DType

__all__ = ["OPS", "ElementOp", "OpSpec", "add_with_carry", "apply", "fdivs", "form_error",
           "ops_for", "round_bf16"]


def apply(name: str, *srcs) -> jax.Array:
    """Compute the destination elements of builtin `name` from its source elements.

    Args:
      name: builtin name without '@', a key of `OPS`.
      *srcs: one array per source operand, of dtype `OPS[name].srcs[i].np`, broadcastable.

    Raises:
      ProgramError: unknown name, wrong number of sources, or a source of the wrong dtype.
    """
    spec = OPS.get(name)
    if spec is None:
        raise ProgramError(f"apply: unknown DSD operation {name!r}")
    if len(srcs) != len(spec.srcs):
        raise ProgramError(f"apply: {name} takes {len(spec.srcs)} sources, got {len(srcs)}")
    for i, (src, want) in enumerate(zip(srcs, spec.srcs, strict=True)):
        got = getattr(src, "dtype", type(src).__name__)
        if got != want.np:
            raise ProgramError(f"apply: {name} source {i} must be {want}, got {got}")
    return spec.fn(*srcs)


# -- shared by several element types ---------------------------------------------------------------


def _add(a, b):
    return a + b


def _sub(a, b):
    return a - b


def _mul(a, b):
    return a * b


def _and(a, b):
    return a & b


def _or(a, b):
    return a | b


def _xor(a, b):
    return a ^ b


def _mov(a):
    return a


def _neg(a):
    return -a  # flips the sign bit only, NaN and subnormal alike


def _abs(a):
    return jnp.abs(a)


def _order_key(x: jax.Array) -> jax.Array:
    """A signed integer ordered like the (non-NaN) float x, with -0 < +0; read from the bits."""
    int_t = jnp.int16 if x.dtype == jnp.float16 else jnp.int32
    i = lax.bitcast_convert_type(x, int_t)
    return i ^ ((i >> (8 * x.dtype.itemsize - 1)) & jnp.iinfo(int_t).max)


def _max(a, b):
    # maxNum: a NaN loses to a number; +0 beats -0 [U]. Compared on the bits, not with float
    # compares, which XLA:CPU makes treat subnormals as 0.
    take_b = jnp.isnan(a) | (~jnp.isnan(b) & (_order_key(b) > _order_key(a)))
    return jnp.where(take_b, b, a)


def _rounded(x: jax.Array) -> jax.Array:
    """`x` bit for bit, in a form XLA cannot contract into a following add.

    XLA:CPU turns a multiply feeding an add into one FMA, and drops `optimization_barrier` and
    no-op `reduce_precision` before it fuses; a select on the sign bit is an identity it does not
    see through, so the product stays rounded to its type.
    """
    return jnp.where(jnp.signbit(x), -jnp.abs(x), jnp.abs(x))


# -- f32 arithmetic --------------------------------------------------------------------------------
# XLA:CPU runs with subnormals flushed to zero, as inputs and as results. These helpers give IEEE
# results anyway: subnormals are rebuilt from their bits, and a sum or product that may be
# subnormal is computed in a scaled range and packed back into bits with integer ops. On a backend
# that keeps subnormals they compute the same values.

_SIGN = np.uint32(0x80000000)
_HIGH_12 = np.uint32(0xFFFFF000)  # the top 12 significant bits of a normal f32


def _u32(x):
    return lax.bitcast_convert_type(x, jnp.uint32)


def _f32(bits):
    return lax.bitcast_convert_type(bits, jnp.float32)


def _pow2(k):
    """2.0 ** k as f32, for int32 k in [-126, 127]."""
    return _f32(((k + 127) << 23).astype(jnp.uint32))


def _scale_up(x):
    """x * 2**64, exact for finite |x| < 2**64, subnormal x included."""
    bits = _u32(x)
    subnormal = _f32(_u32((bits & 0x7FFFFF).astype(jnp.float32) * 2.0**-85) | (bits & _SIGN))
    return jnp.where((bits & 0x7F800000) == 0, subnormal, x * 2.0**64)


def _scale_down(r):
    """r * 2**-64, exact where that is subnormal (r is then a multiple of 2**-85)."""
    magnitude = jnp.abs(r)
    subnormal = _f32((magnitude * 2.0**85).astype(jnp.uint32) | (_u32(r) & _SIGN))
    return jnp.where(magnitude < 2.0**-62, subnormal, r * 2.0**-64)


def _fadds(a, b):
    # A sum can only be subnormal, or feel a subnormal operand, when both operands are below
    # 2**-100; that sum is exact once scaled by 2**64.
    small = jnp.maximum(jnp.abs(a), jnp.abs(b)) < 2.0**-100
    return jnp.where(small, _scale_down(_scale_up(a) + _scale_up(b)), a + b)


def _fsubs(a, b):
    return _fadds(a, -b)


def _significand(x):
    """(M, E) with |x| = M * 2**E for finite x; M is the integer significand, as f32."""
    bits = _u32(x)
    field = (bits >> 23) & 0xFF
    mantissa = bits & 0x7FFFFF
    m = jnp.where(field == 0, mantissa, mantissa | 0x800000).astype(jnp.float32)
    return m, jnp.maximum(field, 1).astype(jnp.int32) - 150


def _product_error(m, n, h):
    """m * n - h exactly, for integers m, n < 2**24 and h = fl(m * n) (Dekker's product).

    Every product below is exact, so an FMA contraction cannot change the result.
    """
    m_hi, n_hi = _f32(_u32(m) & _HIGH_12), _f32(_u32(n) & _HIGH_12)
    m_lo, n_lo = m - m_hi, n - n_hi
    return ((m_hi * n_hi - h) + m_hi * n_lo + m_lo * n_hi) + m_lo * n_lo


def _magnitude(h, e, err):
    """|x| as f32, where x = h * 2**e up to its rounding error: h is x rounded to 24 significant
    bits and `err` has the sign of x - h * 2**e (0 where h * 2**e is exact)."""
    e1 = jnp.clip(e, -126, 127)
    normal = h * _pow2(e1) * _pow2(jnp.clip(e - e1, -126, 127))
    # In units of the subnormal spacing 2**-149 the result is an integer; round it from h, using
    # the sign of the rounding error to break what only looks like a tie.
    q = h * _pow2(jnp.clip(e + 149, -126, 127))
    tie = (q - jnp.floor(q)) == 0.5
    units = jnp.where(
        tie & (err > 0), jnp.ceil(q), jnp.where(tie & (err < 0), jnp.floor(q), jnp.round(q))
    )
    return jnp.where(q < 2.0**23, _f32(units.astype(jnp.uint32)), normal)


def _with_sign_of(magnitude, a, b):
    return _f32(_u32(magnitude) | ((_u32(a) ^ _u32(b)) & _SIGN))


def _stand_in(x):
    """x, or where x is subnormal a normal number of its sign (x * 2**64): for the operations
    whose result then only depends on x being a nonzero finite number of that sign."""
    return jnp.where((_u32(x) & 0x7F800000) == 0, _scale_up(x), x)


def _fmuls(a, b):
    m, ea = _significand(a)
    n, eb = _significand(b)
    h = m * n  # the 24 significant bits of |a * b| = h * 2**(ea + eb), rounded once
    magnitude = _magnitude(h, ea + eb, _product_error(m, n, h))
    # With an inf or NaN operand the product's magnitude no longer matters, but a subnormal
    # must not turn into 0 (inf * 0 is NaN): scaling keeps it nonzero and its sign.
    return jnp.where(jnp.isfinite(a) & jnp.isfinite(b), _with_sign_of(magnitude, a, b),
                     _scale_up(a) * _scale_up(b))


def _remainder(m, n, h):
    """m - h * n exactly, for m, n integers below 2**24 and h within a few units of m / n's
    last place: h * n is split into its rounded value p and Dekker's error; m - p is exact (the
    two are within a factor of 2), and so is the difference, a multiple of h's spacing below
    2**24 of them."""
    p = _rounded(h * n)
    return (m - p) - _product_error(h, n, p)


def fdivs(a: jax.Array, b: jax.Array) -> jax.Array:
    """a / b for f32 arrays, rounded once to nearest even, subnormals kept (as operands and as
    results) on a backend that flushes them.

    The integer significands m, n (below 2**24, normal as f32) give |a / b| = (m / n) * 2**e.
    h, m / n rounded to 24 significant bits, comes from the reciprocal of n and one correction
    by the exact remainder R = m - h * n (a float divide in this graph makes XLA:CPU's compile
    time grow with the square of the number of divisions); a last step by R moves h to the
    neighbour where the correction left it on the wrong side of a midpoint (a quotient of
    24-bit integers is never on one). Where the quotient is normal, h times an exact power of
    two is the result; below the normal range `_magnitude` rounds it again, to a multiple of
    2**-149, where R's sign tells what only looks like a tie from one.
    """
    m, ea = _significand(a)
    n, eb = _significand(b)
    reciprocal = 1.0 / n
    h0 = m * reciprocal
    h1 = h0 + _remainder(m, n, h0) * reciprocal
    r1 = _remainder(m, n, h1)
    ulp = _f32(_u32(h1) & 0x7F800000) * 2.0**-23
    below = jnp.where((_u32(h1) & 0x7FFFFF) == 0, ulp * 0.5, ulp)
    up = 2.0 * r1 > n * ulp
    down = -2.0 * r1 > n * below
    h = jnp.where(up, h1 + ulp, jnp.where(down, h1 - below, h1))
    r = jnp.where(up, r1 - n * ulp, jnp.where(down, r1 + n * below, r1))
    finite = _with_sign_of(_magnitude(h, ea - eb, r), a, b)
    # zeros, infinities and NaN: the quotient of the operands, with a subnormal standing as
    # a nonzero number of its sign (x / 0 is inf, not NaN)
    special = (m == 0) | (n == 0) | ~jnp.isfinite(a) | ~jnp.isfinite(b)
    return jnp.where(special, _stand_in(a) / _stand_in(b), finite)


def _fmacs(a, b, s):
    return _fadds(a, _fmuls(b, s))


# -- f16 and mixed f16/f32 arithmetic --------------------------------------------------------------
# f16 sums and products are exact in f32 (where XLA:CPU computes them; f16 subnormals are normal
# there), so one rounding to f16 is correct; _add, _sub, _mul and _max serve f16 as they are.


def _fmach(a, b, s):
    return a + _rounded(b * s)


def _fmachs(a, b, s):
    return _fadds(a, _rounded(b * s).astype(jnp.float32))


def _faddhs(a, b):
    return _fadds(a, b.astype(jnp.float32))


# -- conversions -----------------------------------------------------------------------------------


def _to_f32(a):
    return a.astype(jnp.float32)


def _to_f16(a):
    return a.astype(jnp.float16)


def _fs2xp16(a):
    clipped = jnp.clip(jnp.trunc(a), -32768.0, 32767.0)
    return jnp.where(jnp.isnan(a), 0.0, clipped).astype(jnp.int16)


def _fh2xp16(a):
    return _fs2xp16(a.astype(jnp.float32))


# -- exponent scaling and normalisation, on the bits ----------------------------------------------
# Computed on the integer fields rather than by float multiplies, which XLA:CPU would flush to
# zero where the result or the source is subnormal.

# float type -> (unsigned type of its width, significand bits, largest exponent field, bias)
_LAYOUT = {np.dtype(np.float32): (jnp.uint32, 23, 255, 127),
           np.dtype(np.float16): (jnp.uint16, 10, 31, 15),
           np.dtype(jnp.bfloat16): (jnp.uint16, 7, 255, 127)}


def _fields(x):
    """(sign bits, |x| bits as int32, integer significand m with its leading 1 at bit `mbits`,
    unbiased-by-one exponent e, special) of float x: |x| = m * 2**(e - bias - mbits) for finite
    nonzero x; `special` marks zeros, infinities and NaN."""
    uint, mbits, top, _ = _LAYOUT[np.dtype(x.dtype)]
    bits = lax.bitcast_convert_type(x, uint)
    sign = bits & uint(1 << (np.dtype(uint).itemsize * 8 - 1))
    mag = (bits ^ sign).astype(jnp.int32)
    field = mag >> mbits
    mant = mag & ((1 << mbits) - 1)
    m = jnp.where(field == 0, mant, mant | (1 << mbits))
    shift = jnp.maximum(lax.clz(jnp.maximum(m, 1)) - (31 - mbits), 0)  # subnormals normalised
    special = (mag == 0) | (field == top)
    return sign, mag, m << shift, jnp.maximum(field, 1) - shift, special


def _pack(x, sign, mag):
    uint = _LAYOUT[np.dtype(x.dtype)][0]
    return lax.bitcast_convert_type(sign | mag.astype(uint), x.dtype)


def _fscale(x, k):
    _, mbits, top, _ = _LAYOUT[np.dtype(x.dtype)]
    sign, mag, m, e, special = _fields(x)
    ne = e + jnp.clip(k.astype(jnp.int32), -1000, 1000)
    normal = (ne << mbits) | (m & ((1 << mbits) - 1))
    # below the normal range: shift the significand right, rounding to nearest even
    sh = jnp.clip(1 - ne, 1, 30)
    q, rem, half = m >> sh, m & ((1 << sh) - 1), 1 << (sh - 1)
    tiny = q + ((rem > half) | ((rem == half) & ((q & 1) == 1))).astype(jnp.int32)
    out = jnp.where(ne >= top, top << mbits, jnp.where(ne >= 1, normal, tiny))
    return _pack(x, sign, jnp.where(special, mag, out))


def _fnorm(x):
    _, mbits, _, bias = _LAYOUT[np.dtype(x.dtype)]
    sign, mag, m, _, special = _fields(x)
    return _pack(x, sign, jnp.where(special, mag, (bias << mbits) | (m & ((1 << mbits) - 1))))


# -- 16-bit integer, on raw u16 patterns (_add, _sub, _and, _or, _xor, _mov serve as they are) -----


def add_with_carry(a, b, carry):
    """One element of `addc16` on u16 patterns: ((a + b + carry) mod 2**16, carry out)."""
    total = a.astype(jnp.uint32) + b.astype(jnp.uint32) + jnp.asarray(carry, jnp.uint32)
    return total.astype(jnp.uint16), (total >> 16).astype(jnp.uint16)


def _addc16(a, b):
    # The carry into element i is 1 where some earlier element generated one (its sum passed
    # 0xFFFF) and every element since propagated it (summed to exactly 0xFFFF): a prefix scan.
    a, b = jnp.broadcast_arrays(a, b)
    if a.ndim == 0:
        return add_with_carry(a, b, 0)[0]
    total = a.astype(jnp.uint32) + b.astype(jnp.uint32)

    def join(earlier, later):
        (g1, p1), (g2, p2) = earlier, later
        return g2 | (p2 & g1), p1 & p2

    generated, _ = lax.associative_scan(join, (total > 0xFFFF, total == 0xFFFF), axis=-1)
    carry_in = jnp.concatenate([jnp.zeros_like(generated[..., :1]), generated[..., :-1]], -1)
    return (total + carry_in.astype(jnp.uint32)).astype(jnp.uint16)


def _sll16(a, n):
    return jnp.where(n < 16, a << jnp.minimum(n, 15), 0)


def _slr16(a, n):
    return jnp.where(n < 16, a >> jnp.minimum(n, 15), 0)


def _sar16(a, n):
    signed = lax.bitcast_convert_type(a, jnp.int16)
    shifted = signed >> jnp.minimum(n, 15).astype(jnp.int16)
    return lax.bitcast_convert_type(shifted, jnp.uint16)


def _popcnt(a):
    return lax.population_count(a)


def _clz(a):
    return lax.clz(a)


def _ctz(a):
    # The bits below the lowest set bit; all 16 of them when a == 0.
    return lax.population_count(~a & (a - 1))


# -- the table: each op's element function, its signature from `wsejax.opspec` ---------------------

OPS: dict[str, ElementOp] = with_functions({
    "fadds": _fadds,
    "fsubs": _fsubs,
    "fmuls": _fmuls,
    "fmaxs": _max,
    "fmacs": _fmacs,
    "fmovs": _mov,
    "fnegs": _neg,
    "fabss": _abs,
    "fnorms": _fnorm,
    "fscales": _fscale,
    "faddh": _add,
    "fsubh": _sub,
    "fmulh": _mul,
    "fmaxh": _max,
    "fmach": _fmach,
    "fmovh": _mov,
    "fnegh": _neg,
    "fabsh": _abs,
    "fnormh": _fnorm,
    "fscaleh": _fscale,
    "fmachs": _fmachs,
    "faddhs": _faddhs,
    "fh2s": _to_f32,
    "fs2h": _to_f16,
    "fs2xp16": _fs2xp16,
    "fh2xp16": _fh2xp16,
    "xp162fs": _to_f32,
    "xp162fh": _to_f16,
    "add16": _add,
    "addc16": _addc16,
    "sub16": _sub,
    "and16": _and,
    "or16": _or,
    "xor16": _xor,
    "sll16": _sll16,
    "slr16": _slr16,
    "sar16": _sar16,
    "mov16": _mov,
    "popcnt": _popcnt,
    "clz": _clz,
    "ctz": _ctz,
    "mov32": _mov,
})


# -- bf16, the fp16 format of `cslc --fp16-format=bf16` --------------------------------------------
# XLA:CPU computes bf16 in f32 and may keep the excess precision across operations; every bf16
# result is therefore rounded here from its f32 value, on the bits (no flushing of subnormals).


def round_bf16(x: jax.Array) -> jax.Array:
    """`x` (bf16 or f32) rounded to nearest even bf16."""
    f = x.astype(jnp.float32)
    bits = lax.bitcast_convert_type(f, jnp.uint32)
    up = (bits + jnp.uint32(0x7FFF) + ((bits >> 16) & 1)) & jnp.uint32(0xFFFF0000)
    up = jnp.where(jnp.isnan(f), bits | jnp.uint32(0x00400000), up)   # a NaN stays one
    return lax.bitcast_convert_type(up, jnp.float32).astype(jnp.bfloat16)


def _bf16_binary(op32):
    def op(a, b):
        return round_bf16(op32(a.astype(jnp.float32), b.astype(jnp.float32)))
    return op


def _fmachs_bf16(a, b, s):
    product = round_bf16(_fmuls(b.astype(jnp.float32), s.astype(jnp.float32)))
    return _fadds(a, product.astype(jnp.float32))


OPS_BF16: dict[str, ElementOp] = with_functions({
    **{name: op.fn for name, op in OPS.items()},
    "faddh": _bf16_binary(_fadds),
    "fsubh": _bf16_binary(_fsubs),
    "fmulh": _bf16_binary(_fmuls),
    "fmach": lambda a, b, s: round_bf16(_fadds(a.astype(jnp.float32), round_bf16(
        _fmuls(b.astype(jnp.float32), s.astype(jnp.float32))).astype(jnp.float32))),
    "fmachs": _fmachs_bf16,
    "fs2h": round_bf16,
    "xp162fh": lambda a: round_bf16(a.astype(jnp.float32)),
}, for_fp16(DType.bf16))


def ops_for(fp16: DType) -> dict[str, ElementOp]:
    """The table of a program whose fp16 format is `fp16` (`OPS` for f16)."""
    return OPS_BF16 if fp16 == DType.bf16 else OPS
