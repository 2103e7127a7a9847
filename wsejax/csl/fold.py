"""Comptime arithmetic: operators on comptime_int, comptime_float and bool (`fold_python`), on
numbers of a DType wrapping like the hardware's integers (`fold_typed`), and unary operators
(`fold_unary`)."""

from __future__ import annotations

import math

import numpy as np

from wsejax import cb16
from wsejax.csl.values import ieee_float
from wsejax.types import DType

__all__ = ["fold_python", "fold_typed", "fold_unary"]


_PY_FLOAT_OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "%": np.fmod}
_COMPARE = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _py_div(a, b):
    if isinstance(a, int) and isinstance(b, int):
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    return a / b


def _py_mod(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return int(math.fmod(a, b))
    return math.fmod(a, b)


_PY_ARITH = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
             "/": _py_div, "%": _py_mod}
_PY_BITS = {"<<": lambda a, b: a << b, ">>": lambda a, b: a >> b, "&": lambda a, b: a & b,
            "|": lambda a, b: a | b, "^": lambda a, b: a ^ b}


def fold_python(op, a, b, c, pos):
    """comptime_int / comptime_float / bool arithmetic (`c`: the evaluator, for its errors)."""
    if isinstance(a, bool) or isinstance(b, bool):
        if op in ("==", "!="):
            return (a == b) if op == "==" else (a != b)
        raise c.error(f"operator '{op}' cannot take bools", pos)
    if op in ("/", "%") and b == 0:
        raise c.error("division by zero at comptime", pos)
    if op in _PY_FLOAT_OPS and (isinstance(a, float) or isinstance(b, float)):
        # comptime_float arithmetic is IEEE f64: an overflow is an infinity, not an error
        x, y = np.float64(ieee_float(a)), np.float64(ieee_float(b))
        with np.errstate(all="ignore"):
            return float(_PY_FLOAT_OPS[op](x, y))
    try:
        if op in _PY_ARITH:
            return _PY_ARITH[op](a, b)
        if op in _PY_BITS:
            _check_bits(op, a, b, c, pos)
            return _PY_BITS[op](a, b)
        return _COMPARE[op](a, b)
    except KeyError:
        raise c.error(f"unknown operator '{op}'", pos) from None
    except (OverflowError, ValueError) as err:
        raise c.error(f"comptime arithmetic failed: {err}", pos) from None


def _check_bits(op, a, b, c, pos) -> None:
    if not (isinstance(a, int) and isinstance(b, int)):
        raise c.error(f"operator '{op}' needs integers", pos)
    if op in ("<<", ">>") and b < 0:
        raise c.error("shift by a negative amount", pos)
    if op == "<<" and b > 4096:
        raise c.error("shift amount too large", pos)


_TYPED_FLOAT = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
                "/": lambda x, y: x / y, "%": np.fmod, **_COMPARE}


def _fold_float(op, a, b, t: DType):
    """Float arithmetic of type t at comptime, rounded once to t (cb16: computed in double)."""
    if t is DType.cb16:
        x, y = np.float64(a), np.float64(b)
    else:
        x, y = t.np.type(a), t.np.type(b)
    with np.errstate(all="ignore"):
        r = _TYPED_FLOAT[op](x, y)
    if isinstance(r, np.bool_):
        return bool(r)
    return cb16.round_float(float(r)) if t is DType.cb16 else float(r)


def fold_typed(op, a, b, t: DType):
    """Arithmetic of type t at comptime, wrapping like the hardware's integers."""
    if t is DType.bool_:
        return {"==": a == b, "!=": a != b}[op]
    if t.is_float:
        return _fold_float(op, a, b, t)
    bits = t.bits
    mask = (1 << bits) - 1

    def wrap(v):
        v &= mask
        return v - (1 << bits) if t.is_signed and v >> (bits - 1) else v

    if op in _COMPARE:
        return _COMPARE[op](a, b)
    if op == "/":
        q = abs(a) // abs(b)
        return wrap(q if (a >= 0) == (b >= 0) else -q)
    if op == "%":
        return wrap(int(math.fmod(a, b)))
    if op == "<<":
        return wrap(a << b) if b < bits else 0
    if op == ">>":
        if b >= bits:
            return -1 if a < 0 else 0
        return wrap(a >> b)
    return wrap({"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b}[op])


def fold_unary(op, v, t: DType):
    if op == "-":
        return fold_typed("-", 0, v, t) if not t.is_float else -v
    if op == "~":
        return fold_typed("^", v, -1 if t.is_signed else (1 << t.bits) - 1, t)
    if op == "!":
        return not v
    return v
