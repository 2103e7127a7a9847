"""CSL builtins (`@name(...)`), evaluated by the comptime evaluator.

Each handler takes `(compiler, node, env)` and returns a value. Builtins that act at run time
(DSD operations, `@map`) emit IR into the current function; layout builtins
(`@set_rectangle`, `@set_tile_code`, `@export_name`) record into the layout being built.

The fabric: queues (`@get_input_queue`, `@initialize_queue`), data tasks
(`@get_data_task_id`, `@bind_data_task`), fabric DSDs (`fabin_dsd`, `fabout_dsd`), FIFOs
(`@allocate_fifo`), microthreads (`@get_ut_id`, wse3) and the config struct of DSD
operations (`.async`, `.activate`, `.unblock`, `.index`, `.ut_id`). On wse3 a queue's color
is known only once its `@initialize_queue` has run, which may come after the DSDs and tasks
that use it: `finish_pe` checks those uses and fills in the colors once the PE program is
complete. The builtins in FABRIC_BUILTINS (control tasks, DSRs, switches, filters, teardown,
...) are reported as not supported.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from wsejax import dsd as dsd_math
from wsejax import ir, ops
from wsejax.csl import ast
from wsejax.csl.env import Env, FnCtx
from wsejax.csl.values import (
    COMPTIME_INT,
    DSD_KINDS,
    MODULE,
    VOID,
    ArrayT,
    ArrayVal,
    CNum,
    ColorVal,
    DsdVal,
    DsdVarRef,
    EnumVal,
    FifoVal,
    FnVal,
    ModuleVal,
    NativeFn,
    PeColorVal,
    PtrT,
    PtrVal,
    PtrVar,
    QueueVal,
    RangeVal,
    RVal,
    Special,
    StructT,
    StructVal,
    SymRef,
    TaskIdVal,
    TensorAccessVal,
    TupleVal,
    UtIdVal,
    describe,
    ieee_float,
    int_range,
    is_type,
)
from wsejax.fabric import data_task_args
from wsejax.frontend.pe import PeBuilder
from wsejax.hardware import (
    MAX_CONTROL_TASK_ID,
    MEMCPY_COLORS,
    MEMCPY_CONTROL_IDS,
    MEMCPY_LOCAL_IDS,
    MEMCPY_QUEUES,
    QUEUE_COUNTS,
    ut_id_error,
)
from wsejax.types import DType

__all__ = ["call", "finish_pe"]

HANDLERS: dict = {}

FABRIC_BUILTINS = {
    "set_control_task_table",
    "bind_rotating_tasks", "set_teardown_handler",
    "set_fifo_read_length", "set_fifo_write_length", "get_dsr", "get_xdsr", "load_to_dsr",
    "load_to_dsr_xdsr", "dfilt", "get_filter_id", "rpc", "get_config", "set_config",
    "get_config_unchecked", "set_config_unchecked", "addc16", "fnorms", "fnormh", "fscales",
    "fscaleh", "random16", "set_active_prng", "get_symbol_id", "get_symbol_value",
    "get_tensor_ptr", "has_exported_tensors", "import_comptime_value", "get_string_from_byte",
}


def builtin(*names):
    def register(f):
        for n in names:
            HANDLERS[n] = f
        return f
    return register


def call(c, node: ast.Builtin, env: Env):
    h = HANDLERS.get(node.name)
    if h is None:
        if node.name in ops.OPS:
            return dsd_op(c, node, env)
        if node.name in FABRIC_BUILTINS:
            raise c.error(f"@{node.name} is not supported yet", node.pos)
        raise c.error(f"unknown builtin @{node.name}", node.pos)
    return h(c, node, env)


def nargs(c, node, *counts):
    if len(node.args) not in counts:
        want = " or ".join(map(str, counts))
        raise c.error(f"@{node.name} takes {want} argument(s), got {len(node.args)}", node.pos)


def args(c, node, env):
    return [c.ev(a, env) for a in node.args]


# ------------------------------------------------------------------------------------------------
# Types, values and comptime utilities


@builtin("as")
def _as(c, node, env):
    nargs(c, node, 2)
    t = c.eval_type(node.args[0], env)
    v = c.ev(node.args[1], env)
    if not isinstance(t, DType):
        return c.coerce(v, t, node.pos, "@as")
    if isinstance(v, RVal):
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
    if not isinstance(t, DType):
        raise c.error(f"@bitcast to {t} is not supported", node.pos)
    if isinstance(v, RVal):
        if v.dtype.bits != t.bits:
            raise c.error(f"@bitcast from {v.dtype} to {t}: widths differ", node.pos)
        return RVal(ir.Bitcast(v.expr, t), t)
    if isinstance(v, CNum):
        if v.dtype.bits != t.bits:
            raise c.error(f"@bitcast from {v.dtype} to {t}: widths differ", node.pos)
        raw = np.array(v.value, v.dtype.np).view(t.np).item()
        return CNum(raw, t)
    if isinstance(v, int) and not isinstance(v, bool) and t.is_int:
        return CNum(int(np.array(v & ((1 << t.bits) - 1), f"u{t.bits // 8}".replace("u", "uint")
                                 if False else {8: np.uint8, 16: np.uint16, 32: np.uint32}
                                 [t.bits]).view(t.np)), t)
    raise c.error(f"@bitcast cannot convert {describe(v)}", node.pos)


@builtin("ptrcast")
def _ptrcast(c, node, env):
    nargs(c, node, 2)
    t = c.eval_type(node.args[0], env)
    p = c.ev(node.args[1], env)
    if not isinstance(t, PtrT) or not isinstance(p, PtrVal):
        raise c.error("@ptrcast takes a pointer type and a pointer", node.pos)
    elem = t.elem.elem if isinstance(t.elem, ArrayT) else t.elem
    if not isinstance(elem, DType) or elem.bits != p.dtype.bits:
        raise c.error(f"@ptrcast from {p.dtype} to {elem}: only same-width element types are "
                      "supported", node.pos)
    return PtrVal(p.name, elem, p.shape, p.offset, t.kind, t.const, isinstance(t.elem, ArrayT))


@builtin("zeros")
def _zeros(c, node, env):
    nargs(c, node, 1)
    t = c.eval_type(node.args[0], env)
    c.check_array_size(t, node.pos, "@zeros")
    if isinstance(t, ArrayT) and isinstance(t.elem, DType):
        return ArrayVal(t.elem, np.zeros(t.shape, t.elem.np))
    if isinstance(t, DType):
        return CNum(False if t is DType.bool_ else 0, t)
    raise c.error(f"@zeros of {t} is not supported", node.pos)


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


@builtin("type_of")
def _type_of(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if isinstance(v, (CNum, RVal)):
        return v.dtype
    if isinstance(v, bool):
        return DType.bool_
    if isinstance(v, int):
        return COMPTIME_INT
    if isinstance(v, float):
        return Special("comptime_float")
    if isinstance(v, ArrayVal):
        return ArrayT(v.elem, v.values.shape)
    if isinstance(v, DsdVal):
        return Special(v.kind)
    if isinstance(v, QueueVal):
        return Special(f"{v.kind}_queue")
    if isinstance(v, TaskIdVal):
        return Special(f"{v.kind}_task_id")
    if isinstance(v, UtIdVal):
        return Special("ut_id")
    if isinstance(v, (ColorVal, PeColorVal)):
        return Special("color")
    if isinstance(v, StructVal):
        return v.stype or Special("comptime_struct")
    if v is None:
        return VOID
    if is_type(v):
        return Special("type")
    if isinstance(v, ModuleVal):
        return MODULE
    if isinstance(v, SymRef):
        return ArrayT(v.dtype, v.shape) if v.shape else v.dtype
    raise c.error(f"@type_of {describe(v)} is not supported", node.pos)


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
    v = c.ev(node.args[0], env) if node.args else None
    if isinstance(v, RVal):
        raise c.error("a runtime @assert is not supported yet", node.pos)
    return _comptime_assert(c, node, env)


@builtin("comptime_print")
def _comptime_print(c, node, env):
    parts = [c.ev(a, env) for a in node.args]
    text = " ".join(p if isinstance(p, str) else str(p.value if isinstance(p, CNum) else p)
                    for p in parts)
    print(text, file=sys.stderr)
    return None


@builtin("strlen")
def _strlen(c, node, env):
    nargs(c, node, 1)
    s = c.ev(node.args[0], env)
    if not isinstance(s, str):
        raise c.error("@strlen takes a comptime string", node.pos)
    return len(s.encode())


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
    return ArrayVal(DType.u8, np.frombuffer(s.encode(), np.uint8).copy())


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
def _field(c, node, env):
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
    if isinstance(v, EnumVal):
        return CNum(v.value, DType.u16)
    raise c.error(f"@get_int of {describe(v)} is not supported yet", node.pos)


# ------------------------------------------------------------------------------------------------
# Modules, layout and exports


@builtin("import_module")
def _import_module(c, node, env):
    nargs(c, node, 1, 2)
    path = c.ev(node.args[0], env)
    if not isinstance(path, str):
        raise c.error("@import_module takes a comptime string path", node.pos)
    params = c.ev(node.args[1], env) if len(node.args) > 1 else StructVal({})
    if isinstance(params, TupleVal) and not params.items:
        params = StructVal({})
    if not isinstance(params, StructVal):
        raise c.error("@import_module params must be a struct like .{ .name = value }",
                      node.pos)
    return c.import_module(path, dict(params.fields), env, node.pos)


@builtin("set_rectangle")
def _set_rectangle(c, node, env):
    nargs(c, node, 2)
    lay = c.layout_for(node)
    w, h = (c.comptime_int(c.ev(a, env), a.pos) for a in node.args)
    lay.set_rectangle(w, h, node.pos)
    return None


@builtin("set_tile_code")
def _set_tile_code(c, node, env):
    nargs(c, node, 2, 3, 4)
    lay = c.layout_for(node)
    x = c.comptime_int(c.ev(node.args[0], env), node.args[0].pos)
    y = c.comptime_int(c.ev(node.args[1], env), node.args[1].pos)
    path = c.ev(node.args[2], env) if len(node.args) > 2 else None
    if path is not None and not isinstance(path, str):
        raise c.error("@set_tile_code takes a file name string", node.args[2].pos)
    params = c.ev(node.args[3], env) if len(node.args) > 3 else StructVal({})
    if isinstance(params, TupleVal) and not params.items:
        params = StructVal({})
    if not isinstance(params, StructVal):
        raise c.error("@set_tile_code params must be a struct", node.pos)
    lay.set_tile_code(x, y, path, params, env, node.pos)
    return None


@builtin("get_rectangle")
def _get_rectangle(c, node, env):
    nargs(c, node, 0)
    return c.rectangle_struct(node.pos)


@builtin("export_name")
def _export_name(c, node, env):
    nargs(c, node, 2, 3)
    lay = c.layout_for(node)
    name = c.ev(node.args[0], env)
    if not isinstance(name, str):
        raise c.error("@export_name takes a string name", node.args[0].pos)
    t = c.eval_type(node.args[1], env)
    mutable = c.ev(node.args[2], env) if len(node.args) > 2 else None
    lay.export_name(name, t, mutable, node.pos)
    return None


@builtin("export_symbol")
def _export_symbol(c, node, env):
    nargs(c, node, 1, 2)
    pe = env.module.pe
    if pe is None or env.fn is not None:
        raise c.error("@export_symbol belongs in a top-level comptime block of a PE program",
                      node.pos)
    v = c.ev_ref(node.args[0], env)
    name = c.ev(node.args[1], env) if len(node.args) > 1 else None
    if name is not None and not isinstance(name, str):
        raise c.error("@export_symbol takes a string name", node.args[1].pos)
    if isinstance(v, PtrVar):
        v = v.ptr
    if isinstance(v, FnVal):
        fenv = v.module.env()
        if any(p.comptime for p in v.decl.params):
            raise c.error("an exported function cannot take comptime parameters", node.pos)
        runtime, key = c.bind_params(v, [None] * 0 + [_param_stub(c, p, fenv)
                                                      for p in v.decl.params], node.pos, fenv)
        fname = c.specialize(v, fenv, runtime, key, node.pos)
        pe.exports.append(ir.ExportFunc(name or v.decl.name, fname))
        return None
    if isinstance(v, SymRef):
        pe.exports.append(ir.ExportData(name or _short(v.name), v.name, 0))
        return None
    if isinstance(v, PtrVal):
        if name is None:
            raise c.error("@export_symbol of a pointer needs a name", node.pos)
        pe.exports.append(ir.ExportData(name, v.name, v.offset))
        return None
    raise c.error(f"@export_symbol cannot export {describe(v)}", node.pos)


def _param_stub(c, p, fenv):
    t = c.eval_type(p.type, fenv)
    if isinstance(t, DType):
        return RVal(ir.Local("%stub", t), t)
    raise c.error(f"exported function parameter '{p.name}' must have a scalar type, not {t}",
                  p.pos)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


# ------------------------------------------------------------------------------------------------
# Colors and routes

DIRECTION_NAMES = ("NORTH", "SOUTH", "EAST", "WEST", "RAMP")


@builtin("get_color")
def _get_color(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if isinstance(v, RVal):
        raise c.error("@get_color with a runtime value is not supported yet", node.pos)
    n = c.comptime_int(v, node.pos)
    if not 0 <= n <= 23:
        raise c.error(f"color {n} is out of range (0 to 23)", node.pos)
    return ColorVal(n)


def _directions(c, v, node, what: str) -> tuple:
    items = v.items if isinstance(v, TupleVal) else [v]
    out = []
    for d in items:
        name = getattr(d, "name", None)
        if name not in DIRECTION_NAMES:
            raise c.error(f"{what} takes directions ({', '.join(DIRECTION_NAMES)}), got "
                          f"{describe(d)}", node.pos)
        out.append(name)
    return tuple(sorted(set(out)))


def _color_config(c, color, config, node):
    """(color id, (rx, tx)) from a color and its `.{ .routes = .{ .rx, .tx } }` config."""
    if not isinstance(color, ColorVal):
        color = c.coerce(color, Special("color"), node.pos, f"@{node.name} color")
    if c.memcpy and color.id in MEMCPY_COLORS:
        raise c.error(f"color {color.id} is reserved by memcpy (colors 21, 22, 23)", node.pos)
    if color.id in c.streams:
        raise c.error(f"color {color.id} is a memcpy streaming color: memcpy routes it, the "
                      "program may not configure it", node.pos)
    if not isinstance(config, StructVal):
        raise c.error(f"@{node.name} takes a config struct like .{{ .routes = .{{ .rx = "
                      ".{WEST}, .tx = .{RAMP} } }", node.pos)
    unknown = set(config.fields) - {"routes", "filter"}
    if unknown:
        raise c.error(f"@{node.name}: .{sorted(unknown)[0]} (switches, teardown) is "
                      "not supported yet", node.pos)
    routes = config.fields.get("routes")
    if isinstance(routes, TupleVal) and not routes.items:
        routes = StructVal({})
    if not isinstance(routes, StructVal):
        raise c.error(f"@{node.name}: .routes must be a struct with .rx and .tx", node.pos)
    extra = set(routes.fields) - {"rx", "tx", "color_swap_x", "color_swap_y"}
    if extra:
        raise c.error(f"@{node.name}: .routes.{sorted(extra)[0]} is not supported yet", node.pos)
    if any(routes.fields.get(k) for k in ("color_swap_x", "color_swap_y")):
        raise c.error(f"@{node.name}: color swapping is not supported yet", node.pos)
    rx = _directions(c, routes.fields.get("rx", TupleVal([])), node, ".rx")
    tx = _directions(c, routes.fields.get("tx", TupleVal([])), node, ".tx")
    filt = None
    if "filter" in config.fields:
        # it filters what this PE's CE receives; what the PE forwards passes unfiltered
        filt = _filter(c, config.fields["filter"], node)
    return color.id, (rx, tx), filt


FILTER_KINDS = ("counter", "sparse_counter", "range")
FILTER_FIELDS = {"kind", "count_data", "count_control", "init_counter", "limit1", "limit2",
                 "max_counter", "filter_control", "max_idx", "min_idx"}


def _filter(c, v, node) -> ir.Filter:
    """The `.filter = .{ .kind = .{ .counter = true }, ... }` of a color config (spec 6.3)."""
    what = f"@{node.name} .filter"
    if not isinstance(v, StructVal):
        raise c.error(f"{what} takes a struct like .{{ .kind = .{{ .counter = true }}, ... }}",
                      node.pos)
    extra = set(v.fields) - FILTER_FIELDS
    if extra:
        raise c.error(f"{what}: unknown field .{sorted(extra)[0]}", node.pos)
    kind = v.fields.get("kind")
    names = [k for k, on in kind.fields.items() if on is True] \
        if isinstance(kind, StructVal) else []
    if len(names) != 1 or set(kind.fields) - set(FILTER_KINDS) - {names[0]}:
        raise c.error(f"{what}: .kind takes one of .{{ .counter = true }}, "
                      ".{ .sparse_counter = true }, .{ .range = true }", node.pos)
    if names[0] not in FILTER_KINDS:
        raise c.error(f"{what}: filter kind .{names[0]} is not supported yet", node.pos)
    out = {"kind": names[0]}
    for k, val in v.fields.items():
        if k == "kind":
            continue
        if k in ("count_data", "count_control", "filter_control"):
            if not isinstance(val, bool):
                raise c.error(f"{what}: .{k} takes a bool, got {describe(val)}", node.pos)
            out[k] = val
        else:
            n = c.comptime_int(val, node.pos)
            if not 0 <= n <= 0xFFFF:
                raise c.error(f"{what}: .{k} = {n} is out of range (0 to 65535)", node.pos)
            out[k] = n
    return ir.Filter(**out)


@builtin("set_color_config")
def _set_color_config(c, node, env):
    nargs(c, node, 4)
    lay = c.layout_for(node)
    x = c.comptime_int(c.ev(node.args[0], env), node.args[0].pos)
    y = c.comptime_int(c.ev(node.args[1], env), node.args[1].pos)
    color, route, filt = _color_config(c, c.ev(node.args[2], env), c.ev(node.args[3], env),
                                       node)
    lay.set_color_config(x, y, color, route, node.pos)
    if filt is not None:
        lay.filters[(x, y, color)] = filt
    return None


@builtin("set_local_color_config")
def _set_local_color_config(c, node, env):
    nargs(c, node, 2)
    pe = env.module.pe
    if pe is None or env.fn is not None:
        raise c.error("@set_local_color_config belongs in a top-level comptime block of a PE "
                      "program", node.pos)
    color, route, filt = _color_config(c, c.ev(node.args[0], env), c.ev(node.args[1], env),
                                       node)
    if color in pe.routes:
        raise c.error(f"color {color} is configured twice", node.pos)
    pe.routes[color] = route
    if filt is not None:
        pe.filters[color] = filt
    return None


# ------------------------------------------------------------------------------------------------
# Tasks



@builtin("get_local_task_id")
def _get_local_task_id(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if isinstance(v, RVal):
        raise c.error("@get_local_task_id with a runtime value is not supported yet", node.pos)
    n = c.comptime_int(v, node.pos)
    lo = 0 if c.arch == "wse2" else 8
    if not lo <= n <= 30:
        raise c.error(f"local task ID {n} is out of range on {c.arch} ({lo} to 30)", node.pos)
    return TaskIdVal("local", n)


def _bound_id(c, v, pos) -> int:
    """The task ID a task declaration is bound to."""
    ident = v.module.pe.task_decls.get((id(v.decl), id(v.module))) if v.module.pe else None
    if ident is None:
        raise c.error(f"task '{v.decl.name}' is not bound to a task ID here (bind it in a "
                      "comptime block that comes before this use)", pos)
    return ident


def _is_task(v) -> bool:
    return isinstance(v, FnVal) and isinstance(v.decl, ast.TaskDecl)


def _task_id(c, v, node, what: str, pos=None) -> int:
    """The task ID `v` names: a task ID, a bound task, or the data task of a color (wse2) or
    of an input queue (wse3)."""
    pos = pos or node.pos
    if isinstance(v, TaskIdVal):
        return v.id
    if isinstance(v, ColorVal):
        if c.arch != "wse2":
            raise c.error(f"{what}: on wse3 a data task is named by its input queue, not by "
                          f"color {v.id}", pos)
        return v.id
    if isinstance(v, QueueVal):
        if c.arch != "wse3" or v.kind != "input":
            raise c.error(f"{what}: {describe(v)} names no task on {c.arch}"
                          + (" (on wse2 a data task is named by its color)"
                             if c.arch == "wse2" else ""), pos)
        return v.id
    if _is_task(v):
        return _bound_id(c, v, pos)
    named = "a color" if c.arch == "wse2" else "an input queue"
    raise c.error(f"{what} takes a task ID, a bound task or {named}, got {describe(v)}", pos)


def _local_id(c, v, node, what: str, pos=None) -> int:
    """The local task ID `v` names: a local task ID or a task bound as a local task."""
    pos = pos or node.pos
    if isinstance(v, TaskIdVal) and v.kind == "local":
        return v.id
    if _is_task(v):
        ident = _bound_id(c, v, pos)
        if v.module.pe.tasks[ident].kind == "local":
            return ident
        raise c.error(f"{what} takes a local task, but '{v.decl.name}' is bound as a "
                      f"{v.module.pe.tasks[ident].kind} task", pos)
    raise c.error(f"{what} takes a local task ID (@get_local_task_id(n)) or a local task, got "
                  f"{describe(v)}", pos)


def _binding_site(c, node, env) -> PeBuilder:
    pe = env.module.pe
    if pe is None or env.fn is not None:
        raise c.error(f"@{node.name} belongs in a top-level comptime block of a PE program",
                      node.pos)
    return pe


def _binding(c, node, env, kind: str, how: str):
    """`(PE program, task, task ID)` of `@bind_<kind>_task(task, id)`; `how` names the ID's
    builtin."""
    nargs(c, node, 2)
    pe = _binding_site(c, node, env)
    t = c.ev(node.args[0], env)
    ident = c.ev(node.args[1], env)
    if not _is_task(t):
        raise c.error(f"@{node.name} takes a task, got {describe(t)}", node.args[0].pos)
    if not isinstance(ident, TaskIdVal) or ident.kind != kind:
        raise c.error(f"@{node.name} takes a {kind} task ID ({how}), got {describe(ident)}",
                      node.args[1].pos)
    return pe, t, ident


@builtin("bind_local_task")
def _bind_local_task(c, node, env):
    pe, t, ident = _binding(c, node, env, "local", "@get_local_task_id(n)")
    if t.decl.params:
        raise c.error(f"local task '{t.decl.name}' takes no parameters", t.decl.pos)
    if c.memcpy and ident.id in MEMCPY_LOCAL_IDS:
        raise c.error(f"local task ID {ident.id} is reserved by {MEMCPY_LOCAL_IDS[ident.id]}",
                      node.args[1].pos)
    if ident.id in pe.tasks:
        raise c.error(f"task ID {ident.id} is bound twice", node.pos)
    # bound now, its body lowered once the PE's comptime is done: a task may name itself
    # (`.unblock = self`) and tasks bound after it
    pe.task_decls[(id(t.decl), id(t.module))] = ident.id
    pe.tasks[ident.id] = ir.Task("", "local", ident.id)

    def lower(ident=ident.id, pos=node.pos):
        fname = c.specialize(t, t.module.env(), [], (), pos)
        pe.tasks[ident] = dataclasses.replace(pe.tasks[ident], fn=fname)

    pe.deferred.append(lower)
    return None


@builtin("get_control_task_id")
def _get_control_task_id(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if isinstance(v, RVal):
        raise c.error("@get_control_task_id with a runtime value is not supported yet",
                      node.pos)
    n = c.comptime_int(v, node.args[0].pos)
    if not 0 <= n <= MAX_CONTROL_TASK_ID:
        raise c.error(f"control task ID {n} is out of range (0 to {MAX_CONTROL_TASK_ID})",
                      node.pos)
    return TaskIdVal("control", n)


@builtin("bind_control_task")
def _bind_control_task(c, node, env):
    pe, t, ident = _binding(c, node, env, "control", "@get_control_task_id(n)")
    if c.memcpy and ident.id in MEMCPY_CONTROL_IDS:
        raise c.error(f"control task ID {ident.id} is reserved by memcpy (IDs "
                      f"{MEMCPY_CONTROL_IDS[0]} to {MEMCPY_CONTROL_IDS[-1]})", node.args[1].pos)
    if ident.id in pe.tasks:
        raise c.error(f"task ID {ident.id} is bound twice", node.pos)
    _bind_wavelet_task(c, pe, t, ident, "control", node)
    return None


def _bind_wavelet_task(c, pe: PeBuilder, t, ident, kind: str, node) -> None:
    """Bind task `t`, whose parameters split a wavelet's 32-bit payload (spec 5.1), to
    `ident` (a data task's `ir.Task` is the caller's to make)."""
    decl, fenv = t.decl, t.module.env()
    widths, stubs = [], []
    for p in decl.params:
        pt = c.eval_type(p.type, fenv)
        if p.comptime or not isinstance(pt, DType):
            raise c.error(f"{kind} task '{decl.name}': parameter '{p.name}' must be a runtime "
                          f"scalar (u32, i32, f32, u16, i16, f16), not {pt}", p.pos)
        widths.append(pt.bits)
        stubs.append(RVal(ir.Local("%stub", pt), pt))
    if widths or kind == "data":
        try:
            data_task_args(tuple(widths))
        except ValueError as err:
            raise c.error(f"{kind} task '{decl.name}': {err}", decl.pos) from None
    runtime, key = c.bind_params(t, stubs, node.pos, fenv)
    # bound now, its body lowered once the PE's comptime is done (it may name tasks bound
    # after it)
    pe.task_decls[(id(decl), id(t.module))] = ident.id

    def lower(ident=ident.id, pos=node.pos):
        fname = c.specialize(t, fenv, runtime, key, pos)
        pe.tasks[ident] = dataclasses.replace(pe.tasks[ident], fn=fname)

    pe.deferred.append(lower)
    if kind == "control":
        pe.tasks[ident.id] = ir.Task("", "control", ident.id)


@builtin("get_data_task_id")
def _get_data_task_id(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if c.arch == "wse3":
        if not isinstance(v, QueueVal) or v.kind != "input":
            raise c.error(f"on wse3 @get_data_task_id takes an input queue "
                          f"(@get_input_queue(n)), got {describe(v)}", node.args[0].pos)
        return TaskIdVal("data", v.id)
    if isinstance(v, RVal):
        raise c.error("@get_data_task_id needs a comptime-known color", node.args[0].pos)
    if isinstance(v, QueueVal):
        raise c.error(f"on wse2 @get_data_task_id takes a color, got {describe(v)}",
                      node.args[0].pos)
    color = c.coerce(v, Special("color"), node.args[0].pos, "@get_data_task_id")
    return TaskIdVal("data", color.id)


@builtin("bind_data_task")
def _bind_data_task(c, node, env):
    pe, t, ident = _binding(c, node, env, "data", "@get_data_task_id(...)")
    if c.memcpy and c.arch == "wse2" and ident.id in MEMCPY_COLORS:
        raise c.error(f"color {ident.id} is reserved by memcpy (colors 21, 22, 23): it cannot "
                      "carry a data task", node.args[1].pos)
    if c.memcpy and c.arch == "wse3" and ident.id in MEMCPY_QUEUES[c.arch]["input"]:
        # on wse2 a data task ID is a color: only memcpy's colors are its own
        raise c.error(f"input queue {ident.id} is reserved by memcpy", node.args[1].pos)
    if ident.id in pe.tasks:
        raise c.error(f"task ID {ident.id} is bound twice", node.pos)
    decl = t.decl
    _bind_wavelet_task(c, pe, t, ident, "data", node)
    fname = ""
    color = ident.id
    if c.arch == "wse3":
        # the queue's color is filled in by finish_pe
        color = -1
        pe.queue_uses.append((("input", ident.id), None, node.pos, f"data task '{decl.name}'"))
    pe.tasks[ident.id] = ir.Task(fname, "data", ident.id, color)
    return None


@builtin("activate", "block", "unblock")
def _task_ctl(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if isinstance(v, UtIdVal) and node.name != "activate":
        return _ut_ctl(c, node, env, v)
    if node.name == "activate":
        ident = _local_id(c, v, node, "@activate")
    else:
        ident = _task_id(c, v, node, f"@{node.name}")
    pe = env.module.pe
    if pe is None:
        raise c.error(f"@{node.name} belongs in a PE program", node.pos)
    if env.fn is None:
        # at comptime: the state the PE starts in
        if node.name == "activate":
            pe.active.add(ident)
        elif node.name == "block":
            pe.blocked.add(ident)
        else:
            pe.blocked.discard(ident)
        return None
    env.fn.emit(ir.TaskCtl(node.name, ir.Const(ident, DType.u16)))
    return None


def _ut_ctl(c, node, env, ut: UtIdVal):
    """`@block(ut)` / `@unblock(ut)` of a microthread (wse3, spec 5.2): a blocked microthread
    suspends the operations that run on it (those whose `.ut_id` names it) until unblocked."""
    ident = _ut_expr(c, ut, node, f"@{node.name}")
    pe = env.module.pe
    if pe is None:
        raise c.error(f"@{node.name} belongs in a PE program", node.pos)
    if env.fn is None:
        if node.name == "block":
            pe.blocked_uts.add(ut.known)
        else:
            pe.blocked_uts.discard(ut.known)
        return None
    env.fn.emit(ir.TaskCtl(node.name, ident, "ut"))
    return None


def _ut_expr(c, ut, node, what: str) -> ir.Expr:
    """The u16 IR expression of microthread `ut` where an operation or `@block` names it."""
    problem = ut_id_error(c.arch, None)
    if problem:
        raise c.error(f"{what}: {problem}", node.pos)
    if not isinstance(ut, UtIdVal):
        raise c.error(f"{what} takes a ut_id (@get_ut_id(n)), got {describe(ut)}", node.pos)
    problem = ut_id_error(c.arch, ut.known, c.memcpy)
    if problem:
        raise c.error(f"{what}: {problem}", node.pos)
    return ir.Const(ut.known, DType.u16) if ut.known is not None else ut.id


@builtin("get_ut_id")
def _get_ut_id(c, node, env):
    """`@get_ut_id(n)` (wse3): microthread n, 0..7; a runtime n must be a u16 (unchecked)."""
    nargs(c, node, 1)
    problem = ut_id_error(c.arch, None)
    if problem:
        raise c.error(f"@get_ut_id: {problem}", node.pos)
    v = c.ev(node.args[0], env)
    if isinstance(v, RVal):
        if v.dtype is not DType.u16:
            raise c.error(f"@get_ut_id takes a u16 at run time, got {describe(v)} (convert "
                          "with @as)", node.args[0].pos)
        return UtIdVal(v.expr)
    n = c.comptime_int(v, node.args[0].pos)
    problem = ut_id_error(c.arch, n)
    if problem:
        raise c.error(f"@get_ut_id: {problem}", node.pos)
    return UtIdVal(n)


# ------------------------------------------------------------------------------------------------
# Queues



def _get_queue(kind):
    def impl(c, node, env):
        nargs(c, node, 1)
        v = c.ev(node.args[0], env)
        if isinstance(v, RVal):
            raise c.error(f"@{node.name} needs a comptime-known queue number", node.args[0].pos)
        n = c.comptime_int(v, node.args[0].pos)
        count = QUEUE_COUNTS[c.arch][kind]
        if not 0 <= n < count:
            raise c.error(f"{kind} queue {n} does not exist on {c.arch} (0 to {count - 1})",
                          node.pos)
        return QueueVal(kind, n)
    return impl


HANDLERS["get_input_queue"] = _get_queue("input")
HANDLERS["get_output_queue"] = _get_queue("output")


def _check_queue(c, q: QueueVal, pos) -> None:
    if c.memcpy and q.id in MEMCPY_QUEUES[c.arch][q.kind]:
        raise c.error(f"{q.kind} queue {q.id} is reserved by memcpy", pos)


def _color_of(c, v, pos, what: str) -> int:
    color = c.coerce(v, Special("color"), pos, what)
    if c.memcpy and color.id in MEMCPY_COLORS:
        raise c.error(f"{what}: color {color.id} is reserved by memcpy (colors 21, 22, 23)",
                      pos)
    return color.id


def _queue_color(c, v, pos, what: str):
    """The color of a fabric DSD or a queue: a number, or a per-PE color's table read (the
    engine picks each PE's queue by it)."""
    return v.expr if isinstance(v, PeColorVal) else _color_of(c, v, pos, what)


@builtin("initialize_queue")
def _initialize_queue(c, node, env):
    nargs(c, node, 1, 2)
    pe = _binding_site(c, node, env)
    q = c.ev(node.args[0], env)
    if not isinstance(q, QueueVal):
        raise c.error(f"@initialize_queue takes a queue (@get_input_queue(n) or "
                      f"@get_output_queue(n)), got {describe(q)}", node.args[0].pos)
    cfg = c.ev(node.args[1], env) if len(node.args) > 1 else StructVal({})
    if isinstance(cfg, TupleVal) and not cfg.items:
        cfg = StructVal({})
    if not isinstance(cfg, StructVal):
        raise c.error("@initialize_queue takes a config struct like .{ .color = c }",
                      node.args[1].pos)
    _check_queue(c, q, node.args[0].pos)
    if (q.kind, q.id) in pe.queues:
        raise c.error(f"{describe(q)} is initialised twice", node.pos)
    f = cfg.fields
    for k in f:
        if k not in ("color", "priority", "ctrl_table_id"):
            raise c.error(f"@initialize_queue: unknown option .{k}", node.pos)
    if c.arch == "wse2":
        if q.kind == "output" and f:
            raise c.error("on wse2 an output queue takes no config (its color comes from the "
                          "fabout_dsd)", node.pos)
        if "ctrl_table_id" in f:
            raise c.error("@initialize_queue: .ctrl_table_id exists on wse3 only", node.pos)
    else:
        if "priority" in f:
            raise c.error("on wse3 @initialize_queue takes no .priority (give it on the "
                          "fabin_dsd)", node.pos)
        if "ctrl_table_id" in f:
            if q.kind != "input":
                raise c.error("@initialize_queue: .ctrl_table_id applies to input queues only",
                              node.pos)
            c.comptime_int(f["ctrl_table_id"], node.pos)
            c.ignored("@initialize_queue .ctrl_table_id", node.pos,
                      "control task tables are not modelled")
    if "priority" in f and not isinstance(f["priority"], StructVal):
        raise c.error("@initialize_queue: .priority takes .{ .high = true }, "
                      ".{ .medium = true } or .{ .low = true }", node.pos)
    if "priority" in f:
        c.ignored(".priority", node.pos, "task and queue priorities are not modelled")
    color = None
    if "color" in f:
        color = _queue_color(c, f["color"], node.pos, "@initialize_queue .color")
    elif q.kind == "input" or c.arch == "wse3":
        raise c.error(f"@initialize_queue: {describe(q)} needs a .color", node.pos)
    pe.queues[(q.kind, q.id)] = (color, node.pos)
    return None


@builtin("queue_flush")
def _queue_flush(c, node, env):
    nargs(c, node, 1)
    if c.arch != "wse3":
        raise c.error(f"@queue_flush exists on wse3 only (this program is compiled for "
                      f"{c.arch})", node.pos)
    q = c.ev(node.args[0], env)
    if not isinstance(q, QueueVal):
        raise c.error(f"@queue_flush takes an input or output queue, got {describe(q)}",
                      node.args[0].pos)
    fn = c.need_fn(env, node.pos, "@queue_flush")
    env.module.pe.flushed.setdefault((q.kind, q.id), node.pos)
    fn.emit(ir.QueueCtl("flush", q.kind, q.id))
    return None


@builtin("set_empty_queue_handler")
def _set_empty_queue_handler(c, node, env):
    nargs(c, node, 2)
    if c.arch != "wse3":
        raise c.error(f"@set_empty_queue_handler exists on wse3 only (this program is compiled "
                      f"for {c.arch})", node.pos)
    pe = _binding_site(c, node, env)
    f = c.ev(node.args[0], env)
    q = c.ev(node.args[1], env)
    if not isinstance(f, FnVal) or _is_task(f):
        raise c.error(f"@set_empty_queue_handler takes a function, got {describe(f)}",
                      node.args[0].pos)
    if f.decl.params:
        raise c.error(f"the empty-queue handler '{f.decl.name}' takes no parameters",
                      f.decl.pos)
    if not isinstance(q, QueueVal):
        raise c.error(f"@set_empty_queue_handler takes an input or output queue, got "
                      f"{describe(q)}", node.args[1].pos)
    if (q.kind, q.id) in pe.empty_handlers:
        raise c.error(f"{describe(q)} has an empty-queue handler already", node.pos)
    pe.empty_handlers[(q.kind, q.id)] = ("", node.pos)

    def lower(key=(q.kind, q.id), pos=node.pos):
        pe.empty_handlers[key] = (c.specialize(f, f.module.env(), [], (), pos), pos)

    pe.deferred.append(lower)
    return None


TEARDOWN_TASK = 29


def _finish_queue_config(c, pe: PeBuilder, colors: dict) -> dict:
    """The queues a program rebinds at run time and its teardown task: returns `colors` with
    each rebound queue's color a `QueueColor` (the colors it can take: its initial one, the
    comptime ones it is bound to, and for a runtime color every color the program routes),
    and binds task 29 to a function that calls the empty-queue handler of each flushed
    queue. Raises CslError."""
    colors = dict(colors)
    for key, (consts, runtime, pos) in sorted(pe.rebinds.items()):
        init = colors.get(key)
        name = f"{key[0]} queue {key[1]}"
        if init is None:
            raise c.error(f"{name} is bound to a color at run time but never initialised: give "
                          f"it its first color with @initialize_queue(@get_{key[0]}_queue("
                          f"{key[1]}), .{{ .color = ... }})", pos)
        if not isinstance(init, int):
            raise c.error(f"rebinding {name}, whose initial color differs between PEs, is not "
                          "supported yet", pos)
        more = set(consts) | (set(pe.routes) if runtime else set())
        colors[key] = ir.QueueColor(key[0], key[1], (init,) + tuple(sorted(more - {init})))
    for key, pos in pe.flushed.items():
        if key not in colors:
            raise c.error(f"@queue_flush of {key[0]} queue {key[1]}, which is never "
                          "initialised", pos)
    if pe.flushed or pe.empty_handlers:
        if TEARDOWN_TASK in pe.tasks:
            pos = next(iter(pe.empty_handlers.values()))[1] if pe.empty_handlers \
                else next(iter(pe.flushed.values()))
            raise c.error(f"task ID {TEARDOWN_TASK} (the teardown task) is bound, but "
                          "@queue_flush and @set_empty_queue_handler need it", pos)
        body = tuple(ir.If(ir.QueueFlushed(*key), (ir.Call(fname, ()),))
                     for key, (fname, _) in sorted(pe.empty_handlers.items()))
        fname = pe.fresh("teardown")
        pe.functions[fname] = ir.Function(fname, (), None, body)
        pe.tasks[TEARDOWN_TASK] = ir.Task(fname, "local", TEARDOWN_TASK)
    pe.queue_colors = tuple((kind, n, color) for (kind, n), color in sorted(colors.items())
                            if color is not None)
    return colors


def finish_pe(c, pe: PeBuilder) -> None:
    """Check the queues used by fabric DSDs and data tasks against their `@initialize_queue`
    and give those that have no color of their own (a fabin_dsd without .fabric_color, and on
    wse3 every fabric DSD and data task) their queue's color. Raises CslError."""
    # the task bodies (lowering one may bind nothing more, but run until none is left)
    while pe.deferred:
        pe.deferred.pop(0)()
    init = {key: color for key, (color, _) in pe.queues.items()}
    colors = _finish_queue_config(c, pe, init)
    late = bool(pe.rebinds)
    for key, color, pos, what in pe.queue_uses:
        first = init.get(key)
        name = f"{key[0]} queue {key[1]}"
        late = late or color is None
        if first is None:
            if c.arch == "wse3":
                raise c.error(f"{what} uses {name}, which is never initialised: on wse3 give it "
                              f"a color with @initialize_queue(@get_{key[0]}_queue({key[1]}), "
                              ".{ .color = ... })", pos)
            if color is None:
                raise c.error(f"{what} has no .fabric_color and its {name} is never given one: "
                              f"give it a .fabric_color or bind the queue with "
                              f"@initialize_queue(@get_{key[0]}_queue({key[1]}), "
                              ".{ .color = ... })", pos)
            continue
        if color is not None and color != first:
            raise c.error(f"{what} is on color {color}, but {name} is initialised with color "
                          f"{first}", pos)
    if not late:
        return

    def fill(x):
        if isinstance(x, (ir.FabIn, ir.FabOut)):
            kind = "input" if isinstance(x, ir.FabIn) else "output"
            if isinstance(x.color, int) and x.color < 0:
                return dataclasses.replace(x, color=colors[(kind, x.queue)])
            # on wse3 a queue's wavelets have the queue's color, whatever the DSD says
            if c.arch == "wse3" and isinstance(colors.get((kind, x.queue)), ir.QueueColor):
                return dataclasses.replace(x, color=colors[(kind, x.queue)])
            return x
        if isinstance(x, tuple):
            items = tuple(fill(v) for v in x)
            return items if any(a is not b for a, b in zip(items, x)) else x
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            new = {f.name: fill(getattr(x, f.name)) for f in dataclasses.fields(x)}
            if any(new[k] is not getattr(x, k) for k in new):
                return dataclasses.replace(x, **new)
        return x

    for k, t in pe.tasks.items():
        if t.kind == "data" and t.color < 0:
            pe.tasks[k] = dataclasses.replace(t, color=colors[("input", t.id)])
    pe.functions = {k: fill(f) for k, f in pe.functions.items()}
    pe.dsd_vars = {k: fill(d) for k, d in pe.dsd_vars.items()}


# ------------------------------------------------------------------------------------------------
# DSDs


@builtin("get_dsd")
def _get_dsd(c, node, env):
    nargs(c, node, 2)
    kind = c.ev(node.args[0], env)
    if not isinstance(kind, Special) or kind.name not in DSD_KINDS:
        raise c.error(f"@get_dsd takes a DSD kind (mem1d_dsd, mem4d_dsd, fabin_dsd, "
                      f"fabout_dsd), got {describe(kind)}", node.args[0].pos)
    if kind.name == "circbuf_dsd":
        raise c.error("circbuf_dsd is not supported yet", node.pos)
    props = c.ev(node.args[1], env)
    if not isinstance(props, StructVal):
        raise c.error("@get_dsd takes a struct of properties", node.args[1].pos)
    f = dict(props.fields)
    if kind.name in ("fabin_dsd", "fabout_dsd"):
        return _fabric_dsd(c, kind.name, f, node, env)
    known = {"base_address", "offset", "stride", "extent", "tensor_access",
             "wavelet_index_offset"}
    extra = set(f) - known
    if extra:
        raise c.error(f"unknown DSD property '{sorted(extra)[0]}'", node.pos)
    wio = f.pop("wavelet_index_offset", False)
    if not isinstance(wio, bool):
        raise c.error(f"DSD property wavelet_index_offset takes a bool, got {describe(wio)}",
                      node.pos)
    ta = f.get("tensor_access")
    if isinstance(ta, StructVal):
        for k in ("base_address", "offset", "stride", "extent"):
            if k in ta.fields and k in f:
                raise c.error(f"DSD property '{k}' given twice", node.pos)
        f.update(ta.fields)
        ta = None
    if ta is not None:
        for k in ("base_address", "offset", "stride", "extent"):
            if k in f:
                raise c.error(f"DSD property '{k}' given twice (also by tensor_access)",
                              node.pos)
        return _tensor_access(c, kind.name, ta, node, wio)
    if "base_address" not in f:
        raise c.error(f"{kind.name} needs a base_address or a tensor_access", node.pos)
    base = f["base_address"]
    sym, boff = _base(c, base, node.pos)
    if kind.name == "mem1d_dsd":
        if "extent" not in f:
            raise c.error("mem1d_dsd needs an extent", node.pos)
        stride = f.get("stride", 1)
        if isinstance(stride, TupleVal):
            stride = stride.items[0]
        extent = f["extent"]
        if isinstance(extent, TupleVal):
            extent = extent.items[0]
        d = ir.Mem1d(sym.name, _field(c, f.get("offset", 0), DType.i16, node, env),
                     _field(c, stride, DType.i8, node, env),
                     _field(c, extent, DType.u16, node, env), boff, wio)
        return DsdVal(ir.DsdLit(d), "mem1d_dsd", sym.dtype)
    ext = f.get("extent")
    st = f.get("stride")
    exts = tuple(ext.items) if isinstance(ext, TupleVal) else (ext,)
    if ext is None or not 1 <= len(exts) <= 4:
        raise c.error("mem4d_dsd needs an extent tuple of 1 to 4 entries", node.pos)
    strides = (1,) * len(exts) if st is None else (
        tuple(st.items) if isinstance(st, TupleVal) else (st,))
    exts = tuple(c.comptime_int(e, node.pos) for e in exts)
    strides = tuple(c.comptime_int(s, node.pos) for s in strides)
    try:
        coeffs = dsd_math.coeffs_from_strides(strides, exts)
    except ValueError as err:
        raise c.error(str(err), node.pos) from None
    d = ir.Mem4d(sym.name, _field(c, f.get("offset", 0), DType.i16, node, env), coeffs, exts,
                 boff, wio)
    return DsdVal(ir.DsdLit(d), "mem4d_dsd", sym.dtype)


FABRIC_FIELDS = {
    # kind: (queue field, fields accepted, fields not supported)
    "fabin_dsd": ("input_queue", {"extent", "fabric_color", "input_queue", "priority"},
                  ("control_transform", "simd_mode")),
    "fabout_dsd": ("output_queue", {"extent", "fabric_color", "output_queue",
                                    "wavelet_index_offset", "priority", "control"},
                   ("simd_mode", "zero", "advance_switch", "control_transform")),
}


def _fabric_dsd(c, kind: str, f: dict, node, env):
    """A fabin_dsd / fabout_dsd. Its color is `.fabric_color` or else the color its queue is
    initialised with, which may come later in the PE's comptime (filled in by finish_pe); on
    wse2 only an input queue is bound to a color, so a fabout_dsd needs a `.fabric_color`."""
    qfield, known, unsupported = FABRIC_FIELDS[kind]
    qkind = qfield.split("_")[0]
    for k in f:
        if k in unsupported:
            if k == "advance_switch" and f[k] is False:
                continue
            raise c.error(f"{kind}: .{k} is not supported yet", node.pos)
        if k not in known:
            raise c.error(f"unknown {kind} property '.{k}'", node.pos)
        if k == "priority":
            c.ignored(".priority", node.pos, "task and queue priorities are not modelled")
    pe = env.module.pe
    if pe is None:
        raise c.error(f"a {kind} belongs in a PE program", node.pos)
    if "extent" not in f:
        raise c.error(f"{kind} needs an .extent (the number of wavelets)", node.pos)
    length = _field(c, f["extent"], DType.u16, node, env)
    color = None
    if "fabric_color" in f:
        color = _queue_color(c, f["fabric_color"], node.pos, f"{kind} .fabric_color")
    queue = None
    if qfield in f:
        q = f[qfield]
        if not isinstance(q, QueueVal) or q.kind != qkind:
            raise c.error(f"{kind} .{qfield} takes an {qfield} (@get_{qfield}(n)), got "
                          f"{describe(q)}", node.pos)
        _check_queue(c, q, node.pos)
        queue = q.id
    wio = f.get("wavelet_index_offset", False)
    control = f.get("control", False)
    for name, v in (("wavelet_index_offset", wio), ("control", control)):
        if not isinstance(v, bool):
            raise c.error(f"{kind} .{name} takes a comptime bool, got {describe(v)}", node.pos)
    if c.arch == "wse2" and color is None and (kind == "fabout_dsd" or queue is None):
        raise c.error(f"on wse2 a {kind} needs a .fabric_color" +
                      (" or an .input_queue bound to a color" if kind == "fabin_dsd" else ""),
                      node.pos)
    if c.arch == "wse3" and queue is None:
        raise c.error(f"on wse3 a {kind} needs an .{qfield}: its color is the one the queue "
                      "is initialised with", node.pos)
    if queue is not None:
        pe.queue_uses.append(((qkind, queue), color, node.pos, f"this {kind}"))
    if color is None:
        color = -1
    d = ir.FabIn(color, length, queue) if kind == "fabin_dsd" else \
        ir.FabOut(color, length, queue, wio, control)
    return DsdVal(ir.DsdLit(d), kind, None)


def fabric_dsd(c, kind: str, fields: dict, node, env) -> DsdVal:
    """A fabin_dsd / fabout_dsd made from `fields` as `@get_dsd(kind, .{ fields })` would make
    it, errors located at `node` (for library modules that build fabric DSDs)."""
    return _fabric_dsd(c, kind, dict(fields), node, env)


def _field(c, v, t: DType, node, env):
    if isinstance(v, RVal):
        c.need_fn(env, node.pos, "a DSD with a runtime field")
        return v.expr if v.dtype == t else ir.Cast(v.expr, t)
    return ir.Const(c.coerce(v, t, node.pos, "DSD field").value, t)


def _base(c, base, pos):
    if isinstance(base, PtrVar):
        base = base.ptr
    if isinstance(base, SymRef):
        return base, 0
    if isinstance(base, PtrVal):
        return SymRef(base.name, base.dtype, base.shape), base.offset
    raise c.error(f"base_address must be a global array or a pointer to one, got "
                  f"{describe(base)}", pos)


class _Tensor:
    """`A[...]` inside a tensor_access: the indexed global and its affine indices."""

    def __init__(self, sym, indices):
        self.sym = sym
        self.indices = indices


def _tensor_access(c, kind: str, ta, node, wio: bool = False):
    if not isinstance(ta, TensorAccessVal):
        raise c.error("tensor_access must be a |i|{L} -> A[...] expression", node.pos)
    e = ta.node
    env = ta.env
    m = len(e.vars)
    if not 1 <= m <= 4 or len(e.extents) != m:
        raise c.error("tensor_access takes 1 to 4 induction variables, one extent each", e.pos)
    if kind == "mem1d_dsd" and m != 1:
        raise c.error("a mem1d_dsd tensor_access takes one induction variable", e.pos)
    exts = tuple(c.comptime_int(c.ev(x, env), x.pos) for x in e.extents)
    inner = env.child()
    for v, aff in zip(e.vars, dsd_math.induction_vars(m)):
        inner.bind(v, aff)
    body = e.body
    if not isinstance(body, ast.Index):
        raise c.error("tensor_access must index a global array: -> A[...]", body.pos)
    sym = c.ev_ref(body.obj, inner)
    if isinstance(sym, PtrVar):
        sym = sym.ptr
    if isinstance(sym, PtrVal):
        sym = SymRef(sym.name, sym.dtype, sym.shape)
    if isinstance(sym, ArrayVal):
        sym = c.const_symbol(sym, env, body.pos)   # a const array, placed in PE memory
    if not isinstance(sym, SymRef):
        raise c.error(f"tensor_access indexes {describe(sym)}, not a global array", body.pos)
    idx = tuple(_affine(c, c.ev(i, inner), i.pos) for i in body.indices)
    try:
        offset, coeffs = dsd_math.linearize(sym.shape, idx, m)
    except (ValueError, TypeError) as err:
        raise c.error(f"tensor_access: {err}", body.pos) from None
    if kind == "mem1d_dsd":
        d = ir.Mem1d(sym.name, ir.Const(offset, DType.i16), ir.Const(coeffs[0], DType.i8),
                     ir.Const(exts[0], DType.u16), wavelet_index_offset=wio)
        return DsdVal(ir.DsdLit(d), kind, sym.dtype)
    return DsdVal(ir.DsdLit(ir.Mem4d(sym.name, ir.Const(offset, DType.i16), coeffs, exts,
                                     wavelet_index_offset=wio)), kind, sym.dtype)


def _affine(c, v, pos):
    if isinstance(v, dsd_math.Affine):
        return v
    if isinstance(v, CNum) and v.dtype.is_int:
        return v.value
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise c.error(f"a tensor_access index must be affine in the induction variables, got "
                  f"{describe(v)}", pos)


@builtin("increment_dsd_offset")
def _increment(c, node, env):
    nargs(c, node, 3)
    d = c.dsd_of(c.ev(node.args[0], env), node.pos)
    _memory_only(c, d, node)
    off = c.ev(node.args[1], env)
    t = c.eval_type(node.args[2], env)
    if not isinstance(t, DType) or t.bits not in (16, 32):
        raise c.error(f"@increment_dsd_offset: {t} is not a 16- or 32-bit type", node.pos)
    return DsdVal(ir.IncrementOffset(d.expr, _field(c, off, DType.i16, node, env), t), d.kind,
                  d.dtype)


def _memory_only(c, d: DsdVal, node) -> None:
    if d.kind in ("fabin_dsd", "fabout_dsd"):
        raise c.error(f"@{node.name} does not apply to a {d.kind} (memory DSDs only)", node.pos)


@builtin("set_dsd_base_addr")
def _set_base(c, node, env):
    nargs(c, node, 2)
    d = c.dsd_of(c.ev(node.args[0], env), node.pos)
    _memory_only(c, d, node)
    sym, boff = _base(c, c.ev_ref(node.args[1], env), node.pos)
    if d.dtype is not None and sym.dtype.bits != d.dtype.bits:
        raise c.error(f"@set_dsd_base_addr: '{sym.name}' holds {sym.dtype}, the DSD addresses "
                      f"{d.dtype} elements", node.pos)
    return DsdVal(ir.SetBase(d.expr, sym.name, boff), d.kind, sym.dtype)


@builtin("set_dsd_length")
def _set_length(c, node, env):
    nargs(c, node, 2)
    d = c.dsd_of(c.ev(node.args[0], env), node.pos)
    if d.kind == "mem4d_dsd":
        raise c.error("@set_dsd_length does not apply to a mem4d_dsd", node.pos)
    return DsdVal(ir.SetLength(d.expr, _field(c, c.ev(node.args[1], env), DType.u16, node,
                                              env)), d.kind, d.dtype)


@builtin("set_dsd_stride")
def _set_stride(c, node, env):
    nargs(c, node, 2)
    d = c.dsd_of(c.ev(node.args[0], env), node.pos)
    if d.kind != "mem1d_dsd":
        raise c.error("@set_dsd_stride applies to a mem1d_dsd only", node.pos)
    return DsdVal(ir.SetStride(d.expr, _field(c, c.ev(node.args[1], env), DType.i8, node,
                                              env)), d.kind, d.dtype)


# ------------------------------------------------------------------------------------------------
# DSD operations


def _operand(c, v, t: DType, node, k):
    """('D' | 'p' | 's', IR operand, element type or None)."""
    if isinstance(v, FifoVal):
        return "D", ir.DsdOperand(ir.FifoRef(v.name)), v.dtype
    if isinstance(v, (DsdVal, DsdVarRef)):
        d = c.dsd_of(v, node.pos)
        return "D", ir.DsdOperand(d.expr), d.dtype
    if isinstance(v, PtrVal):
        if v.shape and v.kind == "many":
            raise c.error(f"@{node.name}: operand {k + 1} is a pointer to an array; a pointer "
                          "operand addresses one scalar (&x or &a[i])", node.pos)
        idx = np.unravel_index(v.offset, v.shape) if v.shape else ()
        return "p", ir.PtrOperand(v.name, tuple(ir.Const(int(i), DType.i32) for i in idx)), \
            v.dtype
    e = c.to_expr(_raw_bits(c, v, t, node.args[k].pos), t, node.args[k].pos,
                  f"operand {k + 1} of @{node.name}")
    return "s", ir.ScalarOperand(e), t


def _raw_bits(c, v, t: DType, pos):
    """Integer ops work on raw bit patterns (spec 8): a signed scalar of the op's width, or a
    negative literal, is its two's complement pattern."""
    if not t.is_int or t.is_signed:
        return v
    signed = {16: DType.i16, 32: DType.i32}.get(t.bits)
    if isinstance(v, RVal) and v.dtype == signed:
        return RVal(ir.Bitcast(v.expr, t), t)
    if isinstance(v, CNum) and v.dtype == signed:
        return CNum(v.value & ((1 << t.bits) - 1), t)
    if isinstance(v, int) and not isinstance(v, bool) and -(1 << (t.bits - 1)) <= v < 0:
        return v & ((1 << t.bits) - 1)
    return v


def dsd_op(c, node: ast.Builtin, env: Env):
    spec = ops.OPS[node.name]
    fn = c.need_fn(env, node.pos, f"@{node.name}")
    vals = [c.ev(a, env) for a in node.args]
    config = None
    if vals and isinstance(vals[-1], StructVal):
        config = _op_config(c, vals.pop(), node, env)
    n = 1 + len(spec.srcs)
    if len(vals) != n:
        raise c.error(f"@{node.name} takes {n} operands, got {len(vals)}", node.pos)
    letters, operands = [], []
    for k, (v, t) in enumerate(zip(vals, (spec.dest,) + spec.srcs)):
        letter, o, et = _operand(c, v, t, node, k)
        if et is not None and letter != "s" and et.bits != t.bits:
            raise c.error(f"@{node.name}: operand {k + 1} addresses {et} elements, but "
                          f"@{node.name} works on {t} ({t.bits}-bit)", node.args[k].pos)
        letters.append(letter)
        operands.append(o)
    problem = ops.form_error(node.name, "".join(letters))
    if problem:
        raise c.error(problem, node.pos)
    _check_fabric_operands(c, vals, node, config)
    fn.emit(ir.DsdOp(node.name, operands[0], tuple(operands[1:]), env.module.pe.site(),
                     config))
    return True


def _op_config(c, cfg: StructVal, node, env) -> ir.OpConfig | None:
    """The config struct of a DSD operation (spec 5.4); None when it asks for nothing."""
    f = cfg.fields
    for k in f:
        if k == "on_control":
            raise c.error(f"@{node.name}: option .{k} is not supported yet", node.pos)
        if k not in ("async", "activate", "unblock", "index", "priority", "ut_id"):
            raise c.error(f"@{node.name}: unknown option .{k}", node.pos)
    async_ = f.get("async", False)
    async_ = async_.value if isinstance(async_, CNum) else async_
    if not isinstance(async_, bool):
        raise c.error(f"@{node.name}: .async takes a comptime-known bool, got "
                      f"{describe(async_)}", node.pos)
    if "activate" in f and "unblock" in f:
        raise c.error(f"@{node.name}: an operation takes .activate or .unblock, not both",
                      node.pos)
    if "priority" in f and not isinstance(f["priority"], StructVal):
        raise c.error(f"@{node.name}: .priority takes .{{ .high = true }}, .{{ .medium = true }} "
                      "or .{ .low = true }", node.pos)
    if "priority" in f:
        c.ignored(".priority", node.pos, "task and queue priorities are not modelled")
    activate = unblock = index = ut = None
    if "activate" in f:
        activate = _hook(c, f["activate"], node, ".activate", _local_id)
    if "unblock" in f:
        unblock = _hook(c, f["unblock"], node, ".unblock", _task_id)
    if "index" in f:
        index = c.to_expr(f["index"], DType.u16, node.pos, f"@{node.name} .index")
    if "ut_id" in f:
        ut = _ut_expr(c, f["ut_id"], node, f"@{node.name} .ut_id")
    out = ir.OpConfig(async_, activate, unblock, index, ut)
    return None if out == ir.OpConfig() else out


def _hook(c, v, node, what: str, resolve) -> ir.Expr:
    """A task ID of `.activate` / `.unblock`: a u16 constant, or a runtime u16 expression."""
    if isinstance(v, RVal):
        return c.to_expr(v, DType.u16, node.pos, f"@{node.name} {what}")
    return ir.Const(resolve(c, v, node, f"@{node.name} {what}"), DType.u16)


def _check_fabric_operands(c, vals, node, config) -> None:
    """The rules on fabric DSDs and FIFOs as operands (spec 7.4, 7.5, 7.6)."""
    srcs = vals[1:]
    dsds = [c.dsd_of(v, node.pos) if isinstance(v, (DsdVal, DsdVarRef)) else None
            for v in vals]
    if dsds[0] is not None and dsds[0].kind == "fabin_dsd":
        raise c.error(f"@{node.name}: a fabin_dsd cannot be a destination", node.args[0].pos)
    for k, d in enumerate(dsds[1:], 1):
        if d is not None and d.kind == "fabout_dsd":
            raise c.error(f"@{node.name}: a fabout_dsd cannot be a source", node.args[k].pos)
    if c.arch == "wse3" and sum(d is not None and d.kind == "fabin_dsd" for d in dsds) > 1:
        raise c.error(f"@{node.name}: on wse3 an operation takes at most one fabin_dsd",
                      node.pos)
    fifos = [k for k, v in enumerate(srcs, 1) if isinstance(v, FifoVal)]
    if len(fifos) > 1:
        raise c.error(f"@{node.name}: at most one source may be a FIFO", node.pos)
    if fifos and fifos[0] == 1 and len(srcs) > 1:
        raise c.error(f"@{node.name}: a FIFO cannot be the first of two sources",
                      node.args[1].pos)
    if config is None or config.index is None:
        for k, d in enumerate(dsds):
            if d is not None and _index_offset(c, d.expr):
                raise c.error(f"@{node.name}: operand {k + 1} uses wavelet_index_offset, so the "
                              "operation needs an .index", node.pos)


def _index_offset(c, e) -> bool:
    """Whether DSD expression `e` is known to have wavelet_index_offset set."""
    while isinstance(e, (ir.IncrementOffset, ir.SetBase, ir.SetLength, ir.SetStride)):
        e = e.dsd
    if isinstance(e, ir.DsdLit):
        return getattr(e.dsd, "wavelet_index_offset", False)
    if isinstance(e, ir.DsdVar):
        return getattr(c.pe_dsd_init(e.name), "wavelet_index_offset", False)
    return False


@builtin("allocate_fifo")
def _allocate_fifo(c, node, env):
    nargs(c, node, 1, 2)
    pe = env.module.pe
    if pe is None or env.fn is not None or c.decl_name is None:
        raise c.error("@allocate_fifo belongs in a global const of a PE program: "
                      "const f = @allocate_fifo(buf);", node.pos)
    buf = c.ev_ref(node.args[0], env)
    if isinstance(buf, PtrVar):
        buf = buf.ptr
    if isinstance(buf, PtrVal) and buf.offset == 0 and buf.shape:
        buf = SymRef(buf.name, buf.dtype, buf.shape)
    if not isinstance(buf, SymRef) or not buf.shape or buf.dtype.bits not in (16, 32) \
            or buf.dtype is DType.bool_:
        raise c.error(f"@allocate_fifo takes a global var array of 16- or 32-bit elements, got "
                      f"{describe(buf)}", node.args[0].pos)
    other = next((x for x in pe.fifos.values() if x.buffer == buf.name), None)
    if other is not None:
        raise c.error(f"'{buf.name}' already holds the FIFO '{other.name}'", node.args[0].pos)
    cfg = c.ev(node.args[1], env) if len(node.args) > 1 else StructVal({})
    if isinstance(cfg, TupleVal) and not cfg.items:
        cfg = StructVal({})
    if not isinstance(cfg, StructVal):
        raise c.error("@allocate_fifo takes a config struct like .{ .activate_push = t }",
                      node.args[1].pos)
    hooks = {}
    for k, v in cfg.fields.items():
        if k in ("activate_push", "activate_pop"):
            hooks[k] = _local_id(c, v, node, f"@allocate_fifo .{k}")
        elif k in ("empty_action", "full_action", "simd_mode", "dest", "src", "xdsr"):
            raise c.error(f"@allocate_fifo: .{k} is not supported yet", node.pos)
        elif k == "priority":
            c.ignored(".priority", node.pos, "task and queue priorities are not modelled")
        else:
            raise c.error(f"@allocate_fifo: unknown option .{k}", node.pos)
    name = c.decl_name
    pe.fifos[name] = ir.Fifo(name, buf.name, hooks.get("activate_push"),
                             hooks.get("activate_pop"))
    return FifoVal(name, buf.name, buf.dtype)


@builtin("map")
def _map(c, node, env):
    fn = c.need_fn(env, node.pos, "@map")
    if len(node.args) < 2:
        raise c.error("@map takes a function and at least one input", node.pos)
    callee = c.ev(node.args[0], env)
    if isinstance(callee, NativeFn) and callee.arity is not None:
        fname, np_ = callee.name, callee.arity
    elif isinstance(callee, FnVal):
        fname, np_ = callee.decl.name, len(callee.decl.params)
    else:
        raise c.error("@map's first argument must be a function", node.args[0].pos)
    rest = [c.ev(a, env) for a in node.args[1:]]
    if len(rest) not in (np_, np_ + 1):
        raise c.error(f"@map: {fname} takes {np_} inputs, got {len(rest)} arguments",
                      node.pos)
    inputs, output = rest[:np_], (rest[np_] if len(rest) > np_ else None)
    for k, v in enumerate(rest, 1):
        if isinstance(v, FifoVal):
            raise c.error("@map cannot take a FIFO operand", node.args[k].pos)
    if not any(isinstance(v, (DsdVal, DsdVarRef)) for v in inputs):
        raise c.error("@map needs at least one DSD input", node.pos)
    if isinstance(callee, NativeFn):
        types = [_map_input_type(c, v, node, k) for k, v in enumerate(inputs, 1)]
    else:
        fenv = callee.module.env()
        types = []
        for p in callee.decl.params:
            t = c.eval_type(p.type, fenv)
            if not isinstance(t, (DType, PtrT)):
                raise c.error(f"@map: parameter '{p.name}' must have a scalar or pointer "
                              "type", p.pos)
            types.append(t)
    in_ops, stubs = [], []
    for k, (t, v) in enumerate(zip(types, inputs), 1):
        what = f"input {k}" if isinstance(callee, NativeFn) else \
            f"parameter '{callee.decl.params[k - 1].name}'"
        if isinstance(t, PtrT):
            # a pointer is passed as it is to every call (the callback reads through it)
            v = v.ptr if isinstance(v, PtrVar) else v
            if not isinstance(v, PtrVal):
                raise c.error(f"@map: {what} is a pointer, got {describe(v)}",
                              node.args[k].pos)
            stubs.append(v)
            continue
        if isinstance(v, (DsdVal, DsdVarRef)):
            d = c.dsd_of(v, node.pos)
            if d.dtype is not None and d.dtype.bits != t.bits:
                raise c.error(f"@map: {what} is {t}, its DSD holds {d.dtype}", node.pos)
            in_ops.append(ir.DsdOperand(d.expr))
        else:
            in_ops.append(ir.ScalarOperand(c.to_expr(v, t, node.pos, f"@map {what}")))
        stubs.append(RVal(ir.Local("%stub", t), t))
    if isinstance(callee, NativeFn):
        name = _native_map_fn(c, callee, types, node, env)
    else:
        runtime, key = c.bind_params(callee, stubs, node.pos, fenv)
        name = c.specialize(callee, fenv, runtime, key, node.pos)
    ret = env.module.pe.functions[name].ret
    out_op = None
    if ret is not None:
        if output is None:
            raise c.error(f"@map: {fname} returns a value, so an output is required",
                          node.pos)
        letter, out_op, et = _operand(c, output, ret, node, len(node.args) - 1)
        if letter == "s":
            raise c.error("@map output must be a DSD or a pointer", node.pos)
        if et is not None and et.bits != ret.bits:
            raise c.error(f"@map: output holds {et}, {fname} returns {ret}", node.pos)
    elif output is not None:
        raise c.error(f"@map: {fname} returns void, so no output is taken", node.pos)
    fn.emit(ir.Map(name, tuple(in_ops), out_op, env.module.pe.site()))
    return None



def _map_input_type(c, v, node, k) -> DType:
    """The element type a library function called by `@map` receives from input `k`."""
    if isinstance(v, (DsdVal, DsdVarRef)):
        t = c.dsd_of(v, node.pos).dtype
    else:
        t = v.dtype if isinstance(v, (RVal, CNum)) else None
    if t is None:
        raise c.error(f"@map: the element type of input {k} is not known; give the library "
                      "function a DSD over a typed array, or a scalar made with @as",
                      node.args[k].pos)
    return t


def _native_map_fn(c, callee: NativeFn, types, node, env) -> str:
    """The IR function `@map` calls per element for a library function: one per function
    and input types, whose body is the library function applied to its parameters."""
    pe = env.module.pe
    key = ("native-map", callee.freeze(), tuple(types))
    if key in pe.specs:
        return pe.specs[key]
    name = pe.fresh(f"map.{callee.name}.")
    pe.specs[key] = name
    params = tuple((pe.fresh(f"x{k}."), t) for k, t in enumerate(types))
    fenv = Env(env.module, [{}], FnCtx(name, None))
    args = []
    for k, (pname, t) in enumerate(params):
        fenv.bind(f"%x{k}", RVal(ir.Local(pname, t), t))
        args.append(ast.Ident(f"%x{k}", node.args[0].pos))
    v = callee.impl(c, ast.Call(node.args[0], tuple(args), node.pos), fenv)
    if isinstance(v, (RVal, CNum)):
        ret = v.dtype
        body = tuple(fenv.fn.blocks[0]) + (ir.Return(c.to_expr(v, ret, node.pos)),)
    elif v is None:
        ret, body = None, tuple(fenv.fn.blocks[0])
    else:
        raise c.error(f"@map: {callee.name} gives {describe(v)}, not a number",
                      node.args[0].pos)
    pe.functions[name] = ir.Function(name, params, ret, body)
    return name
