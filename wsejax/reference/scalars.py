"""Scalar semantics of the reference interpreter: numpy scalars in, numpy scalars out.

Contract: every function takes and returns numpy scalars of a `DType`'s numpy type (Python ints
and floats only inside). Integers wrap (two's complement); floats are computed in double and
rounded once to their type, the correctly rounded IEEE result for +, -, *, / of f32 and f16
operands. These rules are written out independently of the engine's (`wsejax.engine`), so that
the two check each other.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from wsejax import ir
from wsejax.errors import ProgramError
from wsejax.reference import wide
from wsejax.types import DType, bits16_of, from_bits16, rounded

__all__ = ["binop", "bitcast", "bits_of", "cast", "clear_sign", "const", "dtype_of", "flip_sign",
           "from_bits", "math_intrinsic", "maxnum", "round_to", "typed_bits", "unop", "wrap",
           "xp16"]

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def wrap(v: int, t: DType):
    """The integer v as a numpy scalar of integer (or bool) type t, wrapped modulo 2**bits."""
    if t is DType.bool_:
        return np.bool_(v)
    bits = t.bits
    v &= (1 << bits) - 1
    if t.is_signed and v >> (bits - 1):
        v -= 1 << bits
    return t.np.type(v)


def round_to(x: float, t: DType):
    """The double x rounded to nearest even in float type t (overflow gives inf). cb16 rounds
    through f32, which is exact for its +, -, *, / and sqrt (f32 has more than twice cb16's
    precision, so rounding twice gives the once-rounded result)."""
    if t is DType.cb16:
        return rounded(x, t)[()]
    return t.np.type(x)


def bits_of(v) -> int:
    """The raw bits of a numpy scalar, as an unsigned int."""
    return int(v.view(_UINT[v.dtype.itemsize]))


def from_bits(b: int, t: DType):
    """The numpy scalar of type t whose raw bits are b."""
    if t is DType.cb16:
        return from_bits16(b, t)[()]
    return _UINT[t.np.itemsize](b).view(t.np)


def typed_bits(v, t: DType) -> int:
    """The raw bits of the value v of type t, as an unsigned int (a cb16 value's 16-bit
    pattern)."""
    if t is DType.cb16:
        return int(bits16_of(v, t))
    return bits_of(np.asarray(v, t.np)[()])


def _sign_bit(v) -> int:
    return 1 << (8 * v.dtype.itemsize - 1)


def flip_sign(v):
    """Flip the sign bit of a float (NaN and subnormal alike)."""
    return _UINT[v.dtype.itemsize](bits_of(v) ^ _sign_bit(v)).view(v.dtype)


def clear_sign(v):
    """Clear the sign bit of a float: its absolute value, NaN and subnormal alike."""
    return _UINT[v.dtype.itemsize](bits_of(v) & ~_sign_bit(v)).view(v.dtype)


def dtype_of(v) -> DType:
    """The DType of a numpy scalar."""
    dt = np.asarray(v).dtype
    return DType.bool_ if dt == np.bool_ else DType(dt.name.replace("float", "f").replace(
        "uint", "u").replace("int", "i"))


def _float_to_int(v, want: DType):
    """Truncate toward zero and saturate; NaN gives 0."""
    x = float(np.float32(v))
    if math.isnan(x):
        return want.np.type(0)
    info = np.iinfo(want.np)
    if math.isinf(x):
        return want.np.type(info.max if x > 0 else info.min)
    return want.np.type(min(max(math.trunc(x), int(info.min)), int(info.max)))


def cast(v, have: DType, want: DType):
    """`@as(want, v)` for a numpy scalar v of type `have` (the engine's `cast`)."""
    if have == want:
        return v
    if want is DType.bool_:
        return np.bool_(v != 0)
    if want.is_int:
        return _float_to_int(v, want) if have.is_float else wrap(int(v), want)
    if have.is_float:
        return rounded(v, want)[()]
    if have.is_wide:
        return wide.int_to_float(int(v), want)
    return round_to(float(int(v)), want)


def bitcast(v, have: DType, want: DType):
    """`@bitcast(want, v)`: the same bits read as `want` (a bool converts instead)."""
    if have == want:
        return v
    if have is DType.bool_ or want is DType.bool_:
        return cast(v, have, want)
    if DType.cb16 in (have, want):
        return from_bits16(bits16_of(v, have), want)[()]
    return np.asarray(v, have.np).view(want.np)[()]


def maxnum(a, b):
    """IEEE maxNum: a NaN loses to a number; +0 beats -0 (the DSD ops' fmax policy)."""
    fa, fb = float(a), float(b)
    if math.isnan(fa):
        return b
    if math.isnan(fb):
        return a
    if fa == fb:
        return a if math.copysign(1.0, fb) < 0 or math.copysign(1.0, fa) > 0 else b
    return a if fa > fb else b


def _fmin_max(a, b, want_max: bool, t: DType):
    """Expression `min`/`max` on floats: NaN propagates, +0 > -0 (as XLA's)."""
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return t.np.type(math.nan)
    if fa == fb:
        neg_a = math.copysign(1.0, fa) < 0
        if want_max:
            return b if neg_a else a
        return a if neg_a else b
    return a if (fa > fb) == want_max else b


def xp16(x: float):
    """A float as xp16: truncated toward zero, saturated to i16, NaN -> 0."""
    if math.isnan(x):
        return np.int16(0)
    if math.isinf(x):
        return np.int16(32767 if x > 0 else -32768)
    return np.int16(min(max(math.trunc(x), -32768), 32767))


def const(e: ir.Const):
    """A constant's value, as a numpy scalar of its type."""
    t = e.dtype
    if t is DType.bool_:
        return np.bool_(e.value)
    if t.is_float:
        return round_to(float(e.value), t)
    return wrap(int(e.value), t)


def unop(op: str, a, t: DType):
    """Unary operator `op` ("!", "~", "-", "abs") on a value of type t."""
    if op == "!" or (op == "~" and t is DType.bool_):
        return np.bool_(not a)
    if op == "~":
        return wrap(~int(a), t)
    if op == "-":
        return flip_sign(a) if t.is_float else wrap(-int(a), t)
    # abs
    return clear_sign(a) if t.is_float else wrap(abs(int(a)), t)


# -- binary operators ------------------------------------------------------------------------------

_COMPARE = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
            ">": operator.gt, ">=": operator.ge}

_BOOL_OPS = {"and": operator.and_, "or": operator.or_, "&": operator.and_, "|": operator.or_,
             "^": operator.ne}


def _float_div(x: float, y: float) -> float:
    if y == 0.0:
        return math.nan if x == 0.0 or math.isnan(x) else \
            math.copysign(math.inf, x) * math.copysign(1.0, y)
    return x / y


_FLOAT_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": _float_div}


def _int_div(x: int, y: int) -> int:
    """Division truncating toward zero; x / 0 == 0."""
    return 0 if y == 0 else (abs(x) // abs(y)) * (1 if (x < 0) == (y < 0) else -1)


def _int_mod(x: int, y: int) -> int:
    """The remainder of `_int_div` (the sign of x); x % 0 == 0."""
    return 0 if y == 0 else x - y * _int_div(x, y)


_INT_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": _int_div,
              "%": _int_mod, "&": operator.and_, "|": operator.or_, "^": operator.xor,
              "min": min, "max": max}


def _float_binop(op: str, a, b, t: DType):
    if op in ("min", "max"):
        return _fmin_max(a, b, op == "max", t)
    if op == "%":
        return np.fmod(a, b)
    arith = _FLOAT_ARITH.get(op)
    if arith is None:
        raise ProgramError(f"operator {op} on {t}")
    return round_to(arith(float(a), float(b)), t)


def _shift(op: str, x: int, count: int, t: DType) -> int:
    """`x << count` or `x >> count` in t: a count >= the width (or negative, for signed t)
    gives 0, or the sign fill for a signed `>>`."""
    nbits = t.bits
    big = (count & 0xFFFFFFFF) >= nbits if t.is_signed else count >= nbits
    if op == "<<":
        return 0 if big else x << count
    if t.is_signed:
        return x >> (nbits - 1 if big else count)
    return 0 if big else x >> count


def _wide_shift(op: str, x: int, count: int, t: DType) -> int:
    """A shift where the value or the count is 64-bit: the count as an unsigned number."""
    if t.is_wide:
        return wide.shift(op, x, count, t)
    return _shift(op, x, min(count & ((1 << 64) - 1), 64), t)


def binop(e: ir.Bin, a, b):
    """Binary expression `e` on its operands' values a and b."""
    op, t = e.op, e.a.dtype
    if op in _COMPARE:
        if t.is_float:
            return np.bool_(_COMPARE[op](float(a), float(b)))
        return np.bool_(_COMPARE[op](int(a), int(b)))
    if t is DType.bool_:
        return np.bool_(_BOOL_OPS[op](bool(a), bool(b)))
    if t.is_float:
        r = _float_binop(op, a, b, t)
        return r if r.dtype == e.dtype.np else cast(r, t, e.dtype)
    if op in ("<<", ">>"):
        if t.is_wide or e.b.dtype.is_wide:
            return wrap(_wide_shift(op, int(a), int(b), t), e.dtype)
        return wrap(_shift(op, int(a), int(cast(b, e.b.dtype, t)), t), e.dtype)
    arith = _INT_ARITH.get(op)
    if arith is None:
        raise ProgramError(f"operator {op} on {t}")
    return wrap(arith(int(a), int(b)), e.dtype)


# -- <math> intrinsics -----------------------------------------------------------------------------

_PREDICATES = {"isnan": math.isnan, "isinf": math.isinf, "isfinite": math.isfinite,
               "signbit": lambda x: math.copysign(1.0, x) < 0}

_IN_DOUBLE = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos,
              "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil,
              "inv": lambda x: np.float64(1.0) / x,
              "invsqrt": lambda x: np.float64(1.0) / np.sqrt(x)}


def _fscale(x: float, k: float) -> float:
    if math.isfinite(k) and abs(k) < 2000:
        return x * 2.0 ** k
    return float(np.float64(x) * np.exp2(np.float64(k)))


def math_intrinsic(e: ir.Intrinsic, args: list):
    """A `<math>` intrinsic, computed in double and rounded once to its argument's type, then
    converted to the intrinsic's type."""
    name, x = e.name, args[0]
    fx = float(x)
    if name in _PREDICATES:
        return np.bool_(_PREDICATES[name](fx))
    xt = dtype_of(x)
    if name == "fscale":
        r = _fscale(fx, float(cast(args[1], e.args[1].dtype, xt)))
    elif name == "pow":
        r = float(np.power(np.float64(fx), np.float64(float(args[1]))))
    else:
        r = float(_IN_DOUBLE[name](np.float64(fx)))
    return cast(round_to(r, xt), xt, e.dtype)
