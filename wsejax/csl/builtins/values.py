"""Builtins on types, values and comptime: `@as`, `@bitcast`, `@zeros`, `@range`, `@type_of`,
`@comptime_assert`, `@strcat`, `@field`, `@element_count`, `@get_int`, ..."""

from __future__ import annotations

import sys

import numpy as np

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.builtins._registry import args, builtin, nargs
from wsejax.csl.builtins.dsrs import DsrVal
from wsejax.csl.pointers import pointer_type
from wsejax.csl.values import (
    COMPTIME_INT,
    COMPTIME_STRING,
    COMPTIME_STRUCT,
    MODULE,
    VOID,
    ArrayT,
    ArrayVal,
    CNum,
    ColorVal,
    DsdVal,
    EnumRVal,
    EnumVal,
    FnT,
    FnVal,
    ModuleVal,
    NativeFn,
    ObjArrayVal,
    PeColorVal,
    PtrT,
    PtrVal,
    QueueVal,
    RangeVal,
    RFnPtr,
    RPtr,
    RtHandleVal,
    RVal,
    Special,
    StructRef,
    StructT,
    StructVal,
    SymRef,
    TaskIdVal,
    TupleVal,
    UtIdVal,
    describe,
    ieee_float,
    int_range,
    is_type,
    string_bytes,
    string_text,
)
from wsejax.types import DType, bits16_of, from_bits16


@builtin("as")
def _as(c, node, env):
    nargs(c, node, 2)
    t = c.eval_type(node.args[0], env)
    v = c.ev(node.args[1], env)
    if not isinstance(t, DType):
        return c.as_type(t, v, node.pos)
    if isinstance(v, RVal):
        c.checked_fp16(t, node.pos, "@as")
        return RVal(v.expr if v.dtype == t else ir.Cast(v.expr, t), t)
    if isinstance(v, EnumVal):
        return CNum(v.value, t)
    raw = v.value if isinstance(v, CNum) else v
    if not isinstance(raw, (int, float, bool)):
        raise c.error(f"@as({t}, ...) cannot convert {describe(v)}", node.pos)
    if t is DType.bool_:
        return CNum(bool(raw != 0) if not isinstance(raw, float) or raw == raw else True, t)
    if t.is_float:
        return CNum(ieee_float(raw, t), t)
    if isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise c.error(f"@as({t}, {raw}) is not a number that fits", node.pos)
        raw = int(raw)
    lo, hi = int_range(t)
    if not lo <= int(raw) <= hi:
        raise c.error(f"@as({t}, {raw}): {raw} does not fit in {t}", node.pos)
    return CNum(int(raw), t)


@builtin("bitcast")
def _bitcast(c, node, env):
    nargs(c, node, 2)
    t = c.eval_type(node.args[0], env)
    v = c.ev(node.args[1], env)
    c.refuse_fn_pointer_bitcast(t, v, node.pos)
    p = c.bitcast_pointer(t, v, node.pos)
    if p is not None:
        return p
    if not isinstance(t, DType):
        raise c.error(f"@bitcast to {t}: @bitcast reinterprets a value as a number or a "
                      f"pointer of the same width, and {t} is neither", node.pos)
    if isinstance(v, RVal):
        if v.dtype.bits != t.bits:
            raise c.error(f"@bitcast from {v.dtype} to {t}: widths differ", node.pos)
        return RVal(ir.Bitcast(v.expr, t), t)
    if isinstance(v, CNum):
        if v.dtype.bits != t.bits:
            raise c.error(f"@bitcast from {v.dtype} to {t}: widths differ", node.pos)
        if DType.cb16 in (v.dtype, t):
            raw = from_bits16(bits16_of(v.value, v.dtype), t).item()
        else:
            raw = np.array(v.value, v.dtype.np).view(t.np).item()
        return CNum(raw, t)
    if isinstance(v, int) and not isinstance(v, bool) and t.is_int:
        unsigned = {8: np.uint8, 16: np.uint16, 32: np.uint32}[t.bits]
        return CNum(int(np.array(v & ((1 << t.bits) - 1), unsigned).view(t.np)), t)
    raise c.error(f"@bitcast cannot convert {describe(v)}", node.pos)


@builtin("ptrcast")
def _ptrcast(c, node, env):
    nargs(c, node, 2)
    t = c.eval_type(node.args[0], env)
    p = c.ev(node.args[1], env)
    fp = c.fn_pointer_ptrcast(t, p, env, node.pos) if isinstance(t, PtrT) else None
    if fp is not None:
        return fp
    if not isinstance(t, PtrT) or not isinstance(p, (PtrVal, RPtr)):
        raise c.error("@ptrcast takes a pointer type and a pointer", node.pos)
    elem = _pointee(t)
    if isinstance(p, RPtr) or not isinstance(elem, DType) or elem.bits != p.dtype.bits:
        # another width views the memory as other elements: through a runtime pointer
        return c.ptrcast_runtime(t, p, node.pos)
    if p.offset and isinstance(t.elem, ArrayT):
        return c.array_at_element(p, t)
    return PtrVal(p.name, elem, p.shape, p.offset, t.kind, t.const, isinstance(t.elem, ArrayT))


def _pointee(t: PtrT):
    return t.elem.elem if isinstance(t.elem, ArrayT) else t.elem


@builtin("zeros")
def _zeros(c, node, env):
    nargs(c, node, 1)
    t = c.eval_type(node.args[0], env)
    c.check_array_size(t, node.pos, "@zeros")
    if isinstance(t, ArrayT) and isinstance(t.elem, DType):
        return ArrayVal(t.elem, np.zeros(t.shape, t.elem.np))
    if isinstance(t, DType):
        return CNum(False if t is DType.bool_ else 0, t)
    return c.zero_value(t, node.pos)


@builtin("constants")
def _constants(c, node, env):
    nargs(c, node, 2)
    t = c.eval_type(node.args[0], env)
    v = c.ev(node.args[1], env)
    if not isinstance(t, ArrayT) or not isinstance(t.elem, DType):
        raise c.error("@constants takes an array type", node.pos)
    c.check_array_size(t, node.pos, "@constants")
    v = c.coerce(v, t.elem, node.pos, "@constants value")
    if not isinstance(v, CNum):
        raise c.error("@constants needs a comptime-known value", node.pos)
    return ArrayVal(t.elem, np.full(t.shape, v.value, t.elem.np))


@builtin("range")
def _range(c, node, env):
    nargs(c, node, 2, 3, 4)
    t = c.eval_type(node.args[0], env)
    vals = [c.comptime_int(c.ev(a, env), a.pos) for a in node.args[1:]]
    if len(vals) == 1:
        start, stop, step = 0, vals[0], 1
    elif len(vals) == 2:
        start, stop, step = vals[0], vals[1], 1
    else:
        start, stop, step = vals
    if step == 0:
        raise c.error("@range step must not be 0", node.pos)
    if isinstance(t, DType):
        for v in (start, stop - step if len(range(start, stop, step)) else start):
            c.num_in(v, t, node.pos, "@range bound")
    return RangeVal(t, start, stop, step)


# what @type_of gives, by the value's class (the first that matches); a type is a `type`
_TYPE_OF = (
    (EnumRVal, lambda v: v.etype),
    (StructRef, lambda v: v.stype),
    ((CNum, RVal), lambda v: v.dtype),
    (bool, lambda v: DType.bool_),
    (int, lambda v: COMPTIME_INT),
    (float, lambda v: Special("comptime_float")),
    ((ArrayVal, ObjArrayVal), lambda v: ArrayT(v.elem, tuple(v.values.shape))),
    (DsdVal, lambda v: Special(v.kind)),
    (QueueVal, lambda v: Special(f"{v.kind}_queue")),
    (TaskIdVal, lambda v: Special(f"{v.kind}_task_id")),
    (UtIdVal, lambda v: Special("ut_id")),
    ((ColorVal, PeColorVal), lambda v: Special("color")),
    (RtHandleVal, lambda v: Special(v.type_name)),
    (StructVal, lambda v: v.stype or Special("comptime_struct")),
    (type(None), lambda v: VOID),
)


def _range_part(field: str):
    """`@range_start/stop/step(r)`: one bound of a range, of the range's element type."""
    def part(c, node, env):
        nargs(c, node, 1)
        r = c.ev(node.args[0], env)
        if not isinstance(r, RangeVal):
            raise c.error(f"@range_{field} takes a range, got {describe(r)}", node.args[0].pos)
        v = getattr(r, field)
        return CNum(v, r.dtype) if isinstance(r.dtype, DType) else v
    return part


for _field_name in ("start", "stop", "step"):
    builtin(f"range_{_field_name}")(_range_part(_field_name))


def _element_of_global(c, e, env):
    """The element type of `A[i, ...]` where A is a global array indexed in full, else None:
    @type_of reads no memory (it generates no code for its argument)."""
    if not isinstance(e, ast.Index) or not isinstance(e.obj, (ast.Ident, ast.Field)):
        return None
    base = c.ev_ref(e.obj, env)
    if isinstance(base, SymRef) and base.shape and len(e.indices) == len(base.shape):
        return base.dtype
    return None


@builtin("type_of")
def _type_of(c, node, env):
    nargs(c, node, 1)
    elem = _element_of_global(c, node.args[0], env)
    if elem is not None:
        return elem
    v = c.ev(node.args[0], env)
    for cls, type_of in _TYPE_OF:
        if isinstance(v, cls):
            return type_of(v)
    if is_type(v):
        return Special("type")
    if isinstance(v, ModuleVal):
        return MODULE
    if isinstance(v, SymRef):
        return ArrayT(v.dtype, v.shape) if v.shape else v.dtype
    t = _type_of_other(c, v, node)
    if t is None:
        raise c.error(_no_type_reason(v) or f"@type_of {describe(v)} is not supported",
                      node.pos)
    return t


def _no_type_reason(v) -> str | None:
    """Why `@type_of(v)` has no answer, for the values CSL gives no type name to."""
    if isinstance(v, RangeVal):
        return ("@type_of a range: CSL names no type for the value of @range (it is only "
                "iterated by `for` and read by @range_start / @range_stop / @range_step); "
                f"its elements are {v.dtype}: write @type_of(@range_start(r))")
    if isinstance(v, NativeFn):
        return (f"@type_of the library function '{v.name}': the SDK documents its library "
                "functions by the arguments they accept, not by a CSL function type, and "
                "most are generic over their argument types (a generic function has no "
                "single type); call it, or wrap it in a CSL function of your own")
    return None


def _type_of_other(c, v, node):
    """The type of a pointer, a function, a tuple, a string or a DSR; None for others."""
    if isinstance(v, (PtrVal, RPtr)):
        return pointer_type(v)
    if isinstance(v, RFnPtr):
        return v.type
    if isinstance(v, TupleVal):
        return COMPTIME_STRUCT
    if isinstance(v, str):
        return COMPTIME_STRING
    if isinstance(v, DsrVal):
        return Special(v.type)
    if isinstance(v, FnVal):
        return _function_type(c, v, node)
    return None


def _function_type(c, fv: FnVal, node) -> FnT:
    """`fn(A, B) R` of a declared function; a generic one (comptime or anytype parameters)
    is a family of functions, with no one type."""
    decl = fv.decl
    if any(p.comptime or (isinstance(p.type, ast.Ident) and p.type.name == "anytype")
           for p in decl.params):
        raise c.error(f"@type_of '{decl.name}': a function with comptime or anytype "
                      "parameters is generic and has no single type", node.pos)
    fenv = fv.module.env()
    return FnT(tuple(c.eval_type(p.type, fenv) for p in decl.params),
               c.eval_type(decl.ret, fenv))


@builtin("is_same_type")
def _is_same_type(c, node, env):
    nargs(c, node, 2)
    a, b = (c.eval_type(x, env) for x in node.args)
    return a is b if isinstance(a, StructT) else a == b


@builtin("is_comptime")
def _is_comptime(c, node, env):
    nargs(c, node, 0)
    return env.fn is None


@builtin("is_arch")
def _is_arch(c, node, env):
    nargs(c, node, 1)
    name = c.ev(node.args[0], env)
    if name not in ("wse2", "wse3"):
        raise c.error(f"@is_arch takes \"wse2\" or \"wse3\", got {describe(name)}", node.pos)
    return c.arch == name


@builtin("fp16")
def _fp16(c, node, env):
    nargs(c, node, 0)
    return c.fp16


@builtin("comptime_assert")
def _comptime_assert(c, node, env):
    nargs(c, node, 1, 2)
    v = c.ev(node.args[0], env)
    v = v.value if isinstance(v, CNum) else v
    if not isinstance(v, bool):
        raise c.error(f"@comptime_assert needs a comptime-known bool, got {describe(v)}",
                      node.pos)
    if not v:
        msg = c.ev(node.args[1], env) if len(node.args) > 1 else "assertion failed"
        raise c.error(f"@comptime_assert failed: {msg}", node.pos)
    return None


@builtin("assert")
def _assert(c, node, env):
    """`@assert(cond)`: a comptime assert where `cond` is comptime-known; else, at run time,
    a PE where it is false faults, naming the assertion's `file:line:col`."""
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if not isinstance(v, RVal):
        return _comptime_assert(c, node, env)
    if v.dtype is not DType.bool_:
        raise c.error(f"@assert needs a bool, got {describe(v)}", node.args[0].pos)
    fn = c.need_fn(env, node.pos, "a runtime @assert")
    fn.emit(ir.Assert(v.expr, str(node.pos)))
    return None


@builtin("comptime_print")
def _comptime_print(c, node, env):
    parts = [c.ev(a, env) for a in node.args]
    text = " ".join(string_text(p) if isinstance(p, str)
                    else str(p.value if isinstance(p, CNum) else p) for p in parts)
    print(text, file=sys.stderr)
    return None


@builtin("strlen")
def _strlen(c, node, env):
    nargs(c, node, 1)
    s = c.ev(node.args[0], env)
    if not isinstance(s, str):
        raise c.error("@strlen takes a comptime string", node.pos)
    return len(string_bytes(s))


@builtin("strcat")
def _strcat(c, node, env):
    parts = args(c, node, env)
    if not all(isinstance(p, str) for p in parts):
        raise c.error("@strcat takes comptime strings", node.pos)
    return "".join(parts)


@builtin("get_array")
def _get_array(c, node, env):
    nargs(c, node, 1)
    s = c.ev(node.args[0], env)
    if not isinstance(s, str):
        raise c.error("@get_array takes a comptime string", node.pos)
    return ArrayVal(DType.u8, np.frombuffer(string_bytes(s), np.uint8).copy())


@builtin("concat_structs")
def _concat_structs(c, node, env):
    nargs(c, node, 2)
    a, b = args(c, node, env)
    if isinstance(a, TupleVal) and isinstance(b, TupleVal):
        return TupleVal(a.items + b.items)
    if isinstance(a, TupleVal) and not a.items:
        a = StructVal({})
    if isinstance(b, TupleVal) and not b.items:
        b = StructVal({})
    if not isinstance(a, StructVal) or not isinstance(b, StructVal):
        raise c.error("@concat_structs takes two structs (or two tuples)", node.pos)
    dup = set(a.fields) & set(b.fields)
    if dup:
        raise c.error(f"@concat_structs: field '{sorted(dup)[0]}' is in both", node.pos)
    return StructVal({**a.fields, **b.fields})


@builtin("field")
def _struct_field(c, node, env):
    nargs(c, node, 2)
    s, name = args(c, node, env)
    if not isinstance(name, str):
        raise c.error("@field takes a comptime string name", node.pos)
    if isinstance(s, StructVal):
        if name not in s.fields:
            raise c.error(f"struct has no field '{name}'", node.pos)
        return s.fields[name]
    if isinstance(s, ModuleVal):
        return c.field(ast.Field(node.args[0], name, node.pos), env)
    if isinstance(s, StructRef):
        return c.member_value(s, name, node.pos)
    raise c.error(f"@field of {describe(s)}", node.pos)


@builtin("has_field")
def _has_field(c, node, env):
    nargs(c, node, 2)
    s, name = args(c, node, env)
    if isinstance(s, StructVal):
        return name in s.fields
    if isinstance(s, StructT):
        return any(f[0] == name for f in s.fields)
    if isinstance(s, ModuleVal):
        m = s.module
        return m.has(name) if hasattr(m, "has") else False
    raise c.error(f"@has_field of {describe(s)}", node.pos)


def _array_type(c, node, env):
    t = c.eval_type(node.args[0], env)
    if not isinstance(t, ArrayT):
        raise c.error(f"@{node.name} takes an array type, got {t}", node.pos)
    return t


@builtin("element_count")
def _element_count(c, node, env):
    nargs(c, node, 1)
    return CNum(int(np.prod(_array_type(c, node, env).shape)), DType.u32)


@builtin("dimensions")
def _dimensions(c, node, env):
    nargs(c, node, 1)
    t = _array_type(c, node, env)
    return ArrayVal(DType.u32, np.array(t.shape, np.uint32))


@builtin("element_type")
def _element_type(c, node, env):
    nargs(c, node, 1)
    return _array_type(c, node, env).elem


@builtin("rank")
def _rank(c, node, env):
    nargs(c, node, 1)
    return CNum(len(_array_type(c, node, env).shape), DType.u16)


@builtin("get_int")
def _get_int(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if isinstance(v, (TaskIdVal, ColorVal, QueueVal)):
        return CNum(v.id, DType.u16)
    if isinstance(v, UtIdVal):
        return CNum(v.id, DType.u16) if v.known is not None else RVal(v.id, DType.u16)
    if isinstance(v, RtHandleVal):
        return RVal(v.expr, DType.u16)
    if isinstance(v, EnumVal):
        return CNum(v.value, DType.u16)
    raise c.error(f"@get_int takes a color, a task ID, a queue or a microthread ID (the "
                  f"handles that wrap an integer), got {describe(v)}", node.pos)
