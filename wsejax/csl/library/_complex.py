"""`<complex>`: complex numbers as structs `{ real: T, imag: T }` of f16 or f32.

`complex(T)` is the struct type (one type per T: `complex_32` is `complex(f16)`,
`complex_64` is `complex(f32)`); `get_complex(r, i)` (T from `r`), `get_complex_32`,
`get_complex_64` build values; `add_complex`, `subtract_complex`, `multiply_complex` and their
`_32` / `_64` forms compute with T's arithmetic, each operation rounded to T (the product's
real part is `x.real * y.real - x.imag * y.imag`). Comptime values fold; a runtime part is
held in a fresh local where it is made, so a complex value is a value, not an expression
read again later. A complex value may also live in a `var` (a struct held at run time).
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import CNum, RVal, StructRef, StructT, StructVal, describe
from wsejax.types import DType

_TYPES: dict = {}


def complex_type(t: DType) -> StructT:
    """`complex(t)`, the same type object every time."""
    if t not in _TYPES:
        _TYPES[t] = StructT((("real", t, None), ("imag", t, None)), f"complex({t})")
    return _TYPES[t]


def _elem(c, v, what: str, pos) -> DType:
    t = v.dtype if isinstance(v, (CNum, RVal)) else None
    if t not in (DType.f16, DType.f32):
        raise c.error(f"{what} takes f16 or f32 values, got {describe(v)}", pos)
    return t


def _hold(c, v, t: DType, env, pos, what: str):
    """`v` as a T, a runtime value held in a fresh local of the function being built."""
    v = c.coerce(v, t, pos, what)
    if isinstance(v, RVal) and type(v.expr) is not ir.Local:
        name = env.module.pe.fresh("cx")
        c.need_fn(env, pos, what).emit(ir.LocalAssign(name, v.expr))
        return RVal(ir.Local(name, t), t)
    return v


def _make(c, t: DType, r, i, env, pos, what: str) -> StructVal:
    return StructVal({"real": _hold(c, r, t, env, pos, what),
                      "imag": _hold(c, i, t, env, pos, what)}, complex_type(t))


def _fields(c, v, pos):
    """A complex value held at run time (a local or global of a complex type) as a value of
    its fields, read now; any other value as it is."""
    if isinstance(v, StructRef):
        return StructVal({name: c.member_value(v, name, pos) for name, _, _ in v.stype.fields},
                         v.stype)
    return v


def _operand(c, v, what: str, pos, t: DType | None) -> DType:
    """The element type of complex value `v` (which must be `complex(t)` where t is given)."""
    if isinstance(v, StructVal) and v.stype is not None:
        for et in (DType.f16, DType.f32):
            if v.stype is _TYPES.get(et) and (t is None or t is et):
                return et
    want = "a complex value" if t is None else f"a {complex_type(t)}"
    raise c.error(f"{what} takes {want}, got {describe(v)}", pos)


def _arith(c, op, a, b, pos):
    if isinstance(a, RVal) or isinstance(b, RVal):
        return c.runtime_bin(op, a, b, pos)
    return c.fold_binary(op, a, b, pos)


def _combine(kind: str, x: StructVal, y: StructVal, c, pos):
    xr, xi, yr, yi = x.fields["real"], x.fields["imag"], y.fields["real"], y.fields["imag"]
    if kind == "multiply":
        return (_arith(c, "-", _arith(c, "*", xr, yr, pos), _arith(c, "*", xi, yi, pos), pos),
                _arith(c, "+", _arith(c, "*", xr, yi, pos), _arith(c, "*", xi, yr, pos), pos))
    op = "+" if kind == "add" else "-"
    return _arith(c, op, xr, yr, pos), _arith(c, op, xi, yi, pos)


def _binary(kind: str, t: DType | None, suffix: str):
    name = f"{kind}_complex{suffix}"

    def impl(c, node, env):
        x, y = (_fields(c, v, node.pos) for v in call_args(c, node, env, 2))
        et = _operand(c, x, name, node.args[0].pos, t)
        _operand(c, y, name, node.args[1].pos, et)
        re, im = _combine(kind, x, y, c, node.pos)
        return _make(c, et, re, im, env, node.pos, name)
    return native_fn(name, impl)


def _getter(t: DType | None, suffix: str):
    name = f"get_complex{suffix}"

    def impl(c, node, env):
        r, i = call_args(c, node, env, 2)
        et = t or _elem(c, r, name, node.args[0].pos)
        return _make(c, et, r, i, env, node.pos, name)
    return native_fn(name, impl)


def complex_module(c, params, pos):
    def complex_fn(c2, node, env):
        (t,) = call_args(c2, node, env, 1)
        if t not in (DType.f16, DType.f32):
            raise c2.error(f"complex takes f16 or f32, got {describe(t)}", node.args[0].pos)
        return complex_type(t)

    members = {"complex": native_fn("complex", complex_fn),
               "complex_32": complex_type(DType.f16), "complex_64": complex_type(DType.f32)}
    for t, suffix in ((None, ""), (DType.f16, "_32"), (DType.f32, "_64")):
        members[f"get_complex{suffix}"] = _getter(t, suffix)
        for kind in ("add", "subtract", "multiply"):
            members[f"{kind}_complex{suffix}"] = _binary(kind, t, suffix)
    return NativeModule("complex", members)
