"""`<collectives_2d/params>` (layout side) and `<collectives_2d/pe>` (PE side): MPI-like
collectives over the PEs of a row (the x axis) or a column (the y axis) of the rectangle.

`get_params(Px, Py, .{ .x_colors, .x_entrypoints, .y_colors, .y_entrypoints })` gives `.x`
and `.y`, each the `.dim_params` of one `<collectives_2d/pe>` import. The value is the same on
every PE (ranks are the PE's coordinates), so it never splits a tile class. The two colors and
two local task IDs of each axis belong to the library: the program may not route those colors
itself (`@set_color_config` / `@set_local_color_config` of one is a located error, in either
order), nor bind those IDs in a PE program that imports `<collectives_2d/pe>`. The PE side's
`init()`, `broadcast`, `scatter`, `gather`, `reduce_fadds` and `reduce_fmax` become
`ir.Collective` nodes (buffers: `[*]u32`, `[*]f32` for the reductions, known at compile time
or not; the root, the count: comptime or runtime integers; the callback: a local task ID);
each records the operation and returns; the engine and the reference
complete it once every PE of the line has issued it, then activate each PE's callback task.
`pe_id` is the PE's rank on its axis (its x coordinate for the x axis, y for the y axis).
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import (
    ArrayVal,
    ColorVal,
    PtrVal,
    RPtr,
    RVal,
    StructVal,
    TaskIdVal,
    TupleVal,
    describe,
)
from wsejax.frontend import RuleError
from wsejax.frontend.fabric import check_queue, check_queue_free
from wsejax.ir_collectives import COLLECTIVE_REDUCTIONS
from wsejax.types import DType

U32 = DType.u32
AXES = ("x", "y")
# the optional params of a `<collectives_2d/pe>` import: name -> how many u16 entries
OPTIONAL = {"queues": 2, "dest_dsr_ids": 1, "src0_dsr_ids": 1, "src1_dsr_ids": 1}


def owned_colors(c) -> dict:
    """The colors `<collectives_2d/params>` was given: color id -> the position of the
    `get_params` that took it."""
    if not hasattr(c, "collective_colors"):
        c.collective_colors = {}
    return c.collective_colors


def _pair(c, v, what: str, kind, pos) -> tuple:
    items = v.items if isinstance(v, TupleVal) else None
    if not isinstance(items, (list, tuple)) or len(items) != 2 or not all(
            isinstance(x, kind) for x in items):
        name = "colors" if kind is ColorVal else "local task IDs"
        raise c.error(f"collectives_2d.get_params: .{what} takes two {name}", pos)
    return tuple(items)


def params_module(c, params, pos):
    def get_params(c2, node, env):
        px, py, ids = call_args(c2, node, env, 3)
        for v, a in ((px, node.args[0]), (py, node.args[1])):
            if c2.comptime_int(v, a.pos) < 0:
                raise c2.error("collectives_2d.get_params: a coordinate is not negative",
                               a.pos)
        if not isinstance(ids, StructVal):
            raise c2.error("collectives_2d.get_params takes .{ .x_colors, .x_entrypoints, "
                           ".y_colors, .y_entrypoints } as its third argument", node.pos)
        extra = sorted(set(ids.fields) - {f"{a}_{k}" for a in AXES
                                          for k in ("colors", "entrypoints")})
        if extra:
            raise c2.error(f"collectives_2d.get_params: no parameter .{extra[0]}", node.pos)
        out = {}
        for axis in AXES:
            for k in ("colors", "entrypoints"):
                if f"{axis}_{k}" not in ids.fields:
                    raise c2.error(f"collectives_2d.get_params needs .{axis}_{k}", node.pos)
            colors = _pair(c2, ids.fields[f"{axis}_colors"], f"{axis}_colors", ColorVal,
                           node.pos)
            tasks = _pair(c2, ids.fields[f"{axis}_entrypoints"], f"{axis}_entrypoints",
                          TaskIdVal, node.pos)
            if any(t.kind != "local" for t in tasks):
                raise c2.error(f"collectives_2d.get_params: .{axis}_entrypoints takes local "
                               "task IDs", node.pos)
            _own(c2, colors, node.pos)
            out[axis] = StructVal({"axis": axis, "colors": StructVal(
                {"0": colors[0], "1": colors[1]}), "entrypoints": StructVal(
                {"0": tasks[0], "1": tasks[1]})})
        return StructVal(out)

    return NativeModule("collectives_2d/params",
                        {"get_params": native_fn("get_params", get_params, 3)})


def _own(c, colors, pos) -> None:
    owned = owned_colors(c)
    routed = getattr(c, "routed_colors", {})
    for col in colors:
        if col.id in routed:
            raise c.error(f"color {col.id} is routed by the program (at "
                          f"{routed[col.id].file}:{routed[col.id].line}:{routed[col.id].col}); "
                          "<collectives_2d> needs colors of its own", pos)
        owned.setdefault(col.id, pos)
    if colors[0].id == colors[1].id:
        raise c.error(f"collectives_2d.get_params: color {colors[0].id} given twice", pos)


def _check_optional(c, params, pos) -> None:
    for k, n in OPTIONAL.items():
        v = params.get(k)
        if v is None:
            continue
        vals = v.values.ravel().tolist() if isinstance(v, ArrayVal) else None
        if vals is None or len(vals) != n or not all(0 <= int(x) <= 0xFFFF for x in vals):
            raise c.error(f"<collectives_2d/pe> .{k} takes [{n}]u16", pos)
        if k == "queues":
            if len(set(vals)) != 2:
                raise c.error("<collectives_2d/pe> .queues takes two different queues", pos)
            _check_queues(c, [int(q) for q in vals], pos)
    extra = sorted(set(params) - set(OPTIONAL) - {"dim_params"})
    if extra:
        raise c.error(f"<collectives_2d/pe> has no parameter .{extra[0]}", pos)


def _check_queues(c, queues: list, pos) -> None:
    """The library's queues (each an input and an output queue) exist on the arch and are
    not memcpy's."""
    for q in queues:
        for kind in ("input", "output"):
            try:
                check_queue(kind, q, c.arch)
                if c.memcpy:
                    check_queue_free(kind, q, c.arch)
            except RuleError as err:
                raise c.error(f"<collectives_2d/pe> .queues: {err}", pos) from None


def pe_module(c, params, pos, env):
    dim = params.get("dim_params")
    if not (isinstance(dim, StructVal) and dim.fields.get("axis") in AXES):
        raise c.error("<collectives_2d/pe> needs .dim_params, the .x or .y of "
                      "<collectives_2d/params>' get_params", pos)
    _check_optional(c, params, pos)
    _take_tasks(c, env.module.pe, dim.fields["entrypoints"], pos)
    axis = dim.fields["axis"]
    op = _Ops(axis)
    members = {k: native_fn(k, op.make(k)) for k in ir.COLLECTIVE_KINDS}
    members["init"] = native_fn("init", op.init, 0)
    members["pe_id"] = RVal(ir.PeValue(axis, DType.u16), DType.u16)
    return NativeModule("collectives_2d/pe", members)


pe_module.takes_env = True


def _take_tasks(c, pe, entrypoints: StructVal, pos) -> None:
    """The library's two local task IDs of this axis are its own on PE program `pe`: one the
    program binds is a located error (`csl.builtins.tasks`, in either order)."""
    if pe is None:
        return
    bound = getattr(c, "bound_tasks", {}).get(id(pe), {})
    if not hasattr(c, "collective_tasks"):
        c.collective_tasks = {}
    taken = c.collective_tasks.setdefault(id(pe), {})
    for t in entrypoints.fields.values():
        if t.id in bound:
            at = bound[t.id]
            raise c.error(f"local task ID {t.id} is an entrypoint of <collectives_2d>, but the "
                          f"program binds it (at {at.file}:{at.line}:{at.col})", pos)
        taken.setdefault(t.id, pos)


class _Ops:
    """The operations of one `<collectives_2d/pe>` import (one axis)."""

    def __init__(self, axis: str):
        self.axis = axis

    def init(self, c, node, env):
        call_args(c, node, env, 0)
        c.need_fn(env, node.pos, "init()")
        self.record(env.module.pe, node.pos, c)
        return None

    def record(self, pe, pos, c) -> str:
        name = ir.collective_record(self.axis)
        if name not in pe.symbols:
            pe.symbols[name] = ir.Symbol(name, U32, (len(ir.COLLECTIVE_FIELDS),))
        return name

    def make(self, kind: str):
        nbuf = 1 if kind == "broadcast" else 2

        def impl(c, node, env):
            args = call_args(c, node, env, 3 + nbuf)
            fn = c.need_fn(env, node.pos, f"{kind}()")
            self.record(env.module.pe, node.pos, c)
            root = c.to_expr(args[0], DType.u16, node.args[0].pos, f"{kind}'s root")
            count = c.to_expr(args[1 + nbuf], DType.u16, node.args[1 + nbuf].pos,
                              f"{kind}'s count")
            cb = args[2 + nbuf]
            if not (isinstance(cb, TaskIdVal) and cb.kind == "local"):
                raise c.error(f"{kind}: the callback is a local task ID", node.args[2 + nbuf].pos)
            dtype = DType.f32 if kind in COLLECTIVE_REDUCTIONS else U32
            bufs = [_buffer(c, env, args[1 + k], node.args[1 + k].pos, kind, dtype)
                    for k in range(nbuf)]
            send, recv = (bufs[0], None) if nbuf == 1 else bufs
            fn.emit(ir.Collective(kind, self.axis, root, count, send, recv,
                                  ir.Const(cb.id, DType.u16)))
            return None
        return impl


def _buffer(c, env, v, pos, kind: str, dtype) -> ir.Expr:
    """The u16 byte address of a buffer argument: a pointer (known at compile time or not) to
    `dtype` elements (u32, or f32 for the reductions)."""
    if isinstance(v, RPtr):
        elem = v.type.elem
    elif isinstance(v, PtrVal):
        elem = v.dtype
    else:
        raise c.error(f"{kind} takes pointers ([*]{dtype.value}) as its buffers, got "
                      f"{describe(v)}", pos)
    if not isinstance(elem, DType) or elem.nbytes != 4:
        raise c.error(f"{kind} moves 32-bit elements: its buffer points to {describe(elem)}",
                      pos)
    if elem is not dtype:
        raise c.error(f"{kind} takes [*]{dtype.value} buffers, got [*]{elem.value}", pos)
    if isinstance(v, RPtr):
        return v.expr
    sym = env.module.pe.symbols.get(v.name)
    if sym is None:
        raise c.error(f"{kind}: the buffer is not an array of this PE program", pos)
    return ir.AddrOf(v.name, v.offset)
