"""`<math>`: constants and functions; comptime arguments fold, runtime ones become
intrinsics."""

from __future__ import annotations

import math

import numpy as np

from wsejax import ir
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import (
    CNum,
    RVal,
    ieee_float,
)
from wsejax.types import DType

# folded in the operand's numpy type (f64 for comptime_float) with IEEE results, as the run-time
# op computes them: exp overflows to inf, log(0) is -inf, log(-1) and sqrt(-1) are NaN
_UNARY = {
    "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil,
    "inv": lambda x: np.divide(x.dtype.type(1), x),
    "invsqrt": lambda x: np.divide(x.dtype.type(1), np.sqrt(x)),
}
_PRED = {"isNaN": ("isnan", math.isnan), "isInf": ("isinf", math.isinf),
         "isFinite": ("isfinite", math.isfinite),
         "signbit": ("signbit", lambda x: math.copysign(1.0, x) < 0)}


def _float_arg(c, v, want: DType | None, node):
    """(runtime expr or None, comptime float or None, type)."""
    if isinstance(v, RVal):
        if not v.dtype.is_float:
            raise c.error(f"<math> function takes a float, got {v.dtype}", node.pos)
        t = want or v.dtype
        return c.to_expr(v, t, node.pos), None, t
    if isinstance(v, CNum):
        if not v.dtype.is_float:
            raise c.error(f"<math> function takes a float, got {v.dtype}", node.pos)
        return None, ieee_float(v.value, want or v.dtype), want or v.dtype
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return None, ieee_float(v, want), want
    raise c.error("<math> function takes a float", node.pos)


def math_module(c, params, pos):
    members = {"PI": math.pi, "E": math.e}
    for suffix, want in (("", None), ("_f16", DType.f16), ("_f32", DType.f32)):
        t = want or DType.f32
        members["POSITIVE_INF" + suffix] = CNum(math.inf, t)
        members["NEGATIVE_INF" + suffix] = CNum(-math.inf, t)
        members["NaN" + suffix] = CNum(math.nan, t)
        for name, f in _UNARY.items():
            members[name + suffix] = native_fn(name, _unary_impl(name, f, want), 1)
        for name, (intr, f) in _PRED.items():
            members[name + suffix] = native_fn(name, _pred_impl(intr, f, want), 1)
        members["isSignaling" + suffix] = native_fn("isSignaling", _signaling_impl(want), 1)
        members["abs" + suffix] = native_fn("abs", _abs_impl(want), 1)
        members["max" + suffix] = native_fn("max", _minmax_impl("max", want), 2)
        members["min" + suffix] = native_fn("min", _minmax_impl("min", want), 2)
        members["sign" + suffix] = native_fn("sign", _sign_impl(want), 1)
        members["pow" + suffix] = native_fn("pow", _pow_impl(want), 2)
        members["fscale" + suffix] = native_fn("fscale", _fscale_impl(want), 2)
    undocumented = "what it computes is not documented, so wsejax cannot emulate it"
    return NativeModule("math", members,
                        why={"sig" + s: undocumented for s in ("", "_f16", "_f32")})


def _fold(t, value):
    if t is None:
        return ieee_float(value)
    return CNum(ieee_float(value, t), t)


def _np_fold(t, f, *vals) -> float:
    """`f` applied to comptime floats in type t's numpy type (f64 for comptime_float), with
    IEEE results (inf, NaN) where the operation overflows or has no real value."""
    dt = t.np if t is not None else np.dtype(np.float64)
    with np.errstate(all="ignore"):
        return float(f(*(dt.type(v) for v in vals)))


def _unary_impl(name, f, want):
    def impl(c, node, env):
        (x,) = call_args(c, node, env, 1)
        e, v, t = _float_arg(c, x, want, node)
        if e is None:
            return _fold(t, _np_fold(t, f, v))
        return RVal(ir.Intrinsic(name, (e,), t), t)
    return impl


def _pred_impl(intr, f, want):
    def impl(c, node, env):
        (x,) = call_args(c, node, env, 1)
        e, v, t = _float_arg(c, x, want, node)
        if e is None:
            return bool(f(v))
        return RVal(ir.Intrinsic(intr, (e,), DType.bool_), DType.bool_)
    return impl


# a signaling NaN: exponent all ones, mantissa not zero, its top bit (the quiet bit) clear
_NAN_BITS = {DType.f16: (DType.u16, 0x7C00, 0x03FF, 0x0200),
             DType.f32: (DType.u32, 0x7F800000, 0x007FFFFF, 0x00400000)}


def _signaling_impl(want):
    """`isSignaling(x)`: is x a signaling NaN? Read from the bits at run time; a comptime
    float is never one (comptime NaNs are quiet)."""
    def impl(c, node, env):
        (x,) = call_args(c, node, env, 1)
        e, v, t = _float_arg(c, x, want, node)
        if e is None:
            return False
        if t not in _NAN_BITS:
            raise c.error(f"isSignaling takes f16 or f32, got {t}", node.pos)
        ut, exp, man, quiet = _NAN_BITS[t]
        bits = ir.Bitcast(e, ut)

        def masked(mask, want_bits, op):
            return ir.Bin(op, ir.Bin("&", bits, ir.Const(mask, ut), ut), ir.Const(want_bits, ut),
                          DType.bool_)
        cond = ir.Bin("and", masked(exp, exp, "=="), ir.Bin(
            "and", masked(man, 0, "!="), masked(quiet, 0, "=="), DType.bool_), DType.bool_)
        return RVal(cond, DType.bool_)
    return impl


def _abs_impl(want):
    def impl(c, node, env):
        (x,) = call_args(c, node, env, 1)
        if isinstance(x, RVal):
            t = want or x.dtype
            return RVal(ir.Un("abs", c.to_expr(x, t, node.pos), t), t)
        if isinstance(x, CNum):
            return CNum(abs(x.value), x.dtype)
        return abs(x)
    return impl


def _minmax_impl(op, want):
    def impl(c, node, env):
        a, b = call_args(c, node, env, 2)
        if isinstance(a, RVal) or isinstance(b, RVal):
            ta = a.dtype if isinstance(a, (RVal, CNum)) else None
            tb = b.dtype if isinstance(b, (RVal, CNum)) else None
            t = want or (c.peer(ta, tb, op, node.pos) if ta and tb else ta or tb)
            return RVal(ir.Bin(op, c.to_expr(a, t, node.pos), c.to_expr(b, t, node.pos), t), t)
        va = a.value if isinstance(a, CNum) else a
        vb = b.value if isinstance(b, CNum) else b
        r = max(va, vb) if op == "max" else min(va, vb)
        t = want or (a.dtype if isinstance(a, CNum) else b.dtype if isinstance(b, CNum) else None)
        return CNum(r, t) if t is not None else r
    return impl


def _sign_impl(want):
    def impl(c, node, env):
        (x,) = call_args(c, node, env, 1)
        if isinstance(x, RVal):
            t = want or x.dtype
            e = c.to_expr(x, t, node.pos)
            one, zero = ir.Const(1.0, t), ir.Const(0.0, t)
            return RVal(ir.Select(ir.Bin(">", e, zero, DType.bool_), one, ir.Select(
                ir.Bin("<", e, zero, DType.bool_), ir.Un("-", one, t), zero, t), t), t)
        v = x.value if isinstance(x, CNum) else x
        r = 1.0 if v > 0 else (-1.0 if v < 0 else 0.0)
        return _fold(want or (x.dtype if isinstance(x, CNum) else None), r)
    return impl


def _pow_impl(want):
    def impl(c, node, env):
        a, b = call_args(c, node, env, 2)
        ea, va, t = _float_arg(c, a, want, node)
        eb, vb, tb = _float_arg(c, b, want or t, node)
        if ea is None and eb is None:
            return _fold(t, _np_fold(t, np.power, va, vb))
        t = t or tb or DType.f32
        ea = ea if ea is not None else ir.Const(va, t)
        eb = eb if eb is not None else ir.Const(vb, t)
        return RVal(ir.Intrinsic("pow", (ea, eb), t), t)
    return impl


def _fscale_impl(want):
    def impl(c, node, env):
        a, k = call_args(c, node, env, 2)
        ea, va, t = _float_arg(c, a, want, node)
        if ea is None and not isinstance(k, RVal):
            n = max(-4096, min(4096, c.comptime_int(k, node.pos)))   # beyond: 0 or inf
            return _fold(t, _np_fold(t, lambda x: np.ldexp(x, n), va))
        t = t or DType.f32
        ea = ea if ea is not None else ir.Const(va, t)
        return RVal(ir.Intrinsic("fscale", (ea, c.to_expr(k, DType.i16, node.pos)), t), t)
    return impl
