"""`<tile_config>`: queue bindings and queue flush, the status of the queues, the PE's
coordinates, and the submodules of their own modules (task priority, teardown, color config,
exceptions)."""

from __future__ import annotations

import dataclasses

from wsejax import ir
from wsejax.csl.builtins import _check_queue
from wsejax.csl.builtins.teardown import teardown_members
from wsejax.csl.library._color_config import color_config_module
from wsejax.csl.library._exceptions import exceptions_module
from wsejax.csl.library._filters import filters_module
from wsejax.csl.library._main_thread_priority import main_thread_priority_module
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.library._queue_status import queue_status_module
from wsejax.csl.library._switch_config import switch_config_module
from wsejax.csl.library._task_priority import task_priority_module
from wsejax.csl.values import (
    EnumLitVal,
    EnumRVal,
    EnumT,
    EnumVal,
    ModuleVal,
    QueueVal,
    RVal,
    describe,
)
from wsejax.hardware import MEMCPY_QUEUES, QUEUE_COUNTS
from wsejax.types import DType

# the members of the SDK's <tile_config> (and of its submodules) wsejax does not provide
TILE_CONFIG_UNSUPPORTED = {
    "": ("control_transform",),
    "queue_flush": ("is_flushed", "get_pending", "is_pending"),
}


# why some of them are missing
_NOT_IN_REFERENCE = "the SDK's <tile_config> reference does not document it"
TILE_CONFIG_WHY = {
    "FIFO_MIN_ALIGNMENT": "the SDK does not document its value",
    "addresses": "raw register addresses are not modelled: <tile_config>'s functions act on "
                 "the state they name directly",
}

# control_transform: its function acts on bits whose encoding is undocumented
TILE_CONFIG_WHY.update({
    "control_transform": "set_mask changes the index bits of wavelets a .control_transform "
                         "fabric DSD marks, and .control_transform is refused (the bits that "
                         "mark a control wavelet are not documented)",
})


def _queue_id(c, v, node, kind: str, what: str) -> int:
    """A comptime queue number given to `<tile_config>`, checked against the architecture and
    memcpy's own queues."""
    n = c.comptime_int(v, node.pos)
    count = QUEUE_COUNTS[c.arch][kind]
    if not 0 <= n < count:
        raise c.error(f"{what}: {kind} queue {n} does not exist on {c.arch} (0 to "
                      f"{count - 1})", node.pos)
    _check_queue(c, QueueVal(kind, n), node.pos)
    return n


def _rebind(pe, key, const, pos) -> None:
    """Note that queue `key` is rebound at run time, to color `const` (None: a runtime one)."""
    consts, runtime, first = pe.rebinds.get(key, (set(), False, pos))
    pe.rebinds[key] = (consts | {const} if const is not None else consts,
                       runtime or const is None, first)


def _color(c, v, node, what: str):
    """`(u16 expression, comptime color or None)` of the color a queue is bound to."""
    if isinstance(v, RVal):
        expr = v.expr if v.dtype == DType.u16 else ir.Cast(v.expr, DType.u16)
        return expr, None
    n = c.comptime_int(v, node.args[1].pos)
    if not 0 <= n <= 23:
        raise c.error(f"{what}: color {n} is out of range (0 to 23)", node.args[1].pos)
    return ir.Const(n, DType.u16), n


def _bind_queue(kind: str):
    """`encode_input_queue(queue_id, color, filter_enable)` /
    `encode_output_queue(queue_id, color)`: bind the queue to a color from now on."""
    name = f"encode_{kind}_queue"

    def impl(c, node, env):
        vals = call_args(c, node, env, 3 if kind == "input" else 2)
        what = f"{kind}_queue_config.{name}"
        if kind == "output" and c.arch == "wse2":
            raise c.error(f"{what}: on wse2 an output queue is not bound to a color (a fabout "
                          "DSD's .fabric_color gives it)", node.pos)
        fn = c.need_fn(env, node.pos, f"{name}()")
        if kind == "input" and not isinstance(vals[2], (bool, RVal)):
            raise c.error(f"{what}: filter_enable takes a bool, got {vals[2]!r}", node.pos)
        color, const = _color(c, vals[1], node, what)
        if isinstance(vals[0], RVal):
            _bind_runtime_queue(c, node, env, kind, vals[0], color, const, what)
            return None
        q = _queue_id(c, vals[0], node, kind, what)
        _rebind(env.module.pe, (kind, q), const, node.pos)
        fn.emit(ir.QueueBind(kind, q, color))
        return None

    return native_fn(name, impl)


def _bind_runtime_queue(c, node, env, kind: str, v: RVal, color, const, what: str) -> None:
    """Bind the queue whose ID is known only at run time: one `QueueBind` per queue the
    program initialises, under the test of the ID (an ID naming no such queue binds none)."""
    if v.dtype is not DType.u16:
        raise c.error(f"{what}: a queue ID known at run time is a u16, got {describe(v)} "
                      "(convert with @as)", node.args[0].pos)
    pe, fn = env.module.pe, env.fn
    ident = pe.fresh("queue.")
    fn.emit(ir.LocalAssign(ident, v.expr))
    ident = ir.Local(ident, DType.u16)
    queues = [n for n in range(QUEUE_COUNTS[c.arch][kind])
              if not (c.memcpy and n in MEMCPY_QUEUES[c.arch][kind])]
    for n in queues:
        fn.emit(ir.If(ir.Bin("==", ident, ir.Const(n, DType.u16), DType.bool_),
                      (ir.QueueBind(kind, n, color),)))

    def keep_initialised():
        # the queues are known once the PE's comptime is done: those never initialised
        # cannot be bound, and lose their QueueBind
        live = [n for n in queues if (kind, n) in pe.queues]
        if not live:
            raise c.error(f"{what}: a queue ID known only at run time, but the program "
                          f"initialises no {kind} queue (@initialize_queue) it could name",
                          node.pos)
        for n in live:
            _rebind(pe, (kind, n), const, node.pos)
        dead = {(kind, n) for n in queues if n not in live}
        pe.functions = {k: _DropBinds(dead)(f) for k, f in pe.functions.items()}

    pe.deferred.append(keep_initialised)


class _DropBinds:
    """Rewrites IR without the `QueueBind`s of the queues in `dead`."""

    def __init__(self, dead: set):
        self.dead = dead

    def __call__(self, x):
        if isinstance(x, tuple):
            items = tuple(self(v) for v in x if not (isinstance(v, ir.QueueBind) and
                                                    (v.kind, v.queue) in self.dead))
            return items if len(items) != len(x) or any(a is not b for a, b in
                                                         zip(items, x)) else x
        if isinstance(x, (ir.Function, ir.If, ir.For, ir.While)):
            new = {f.name: self(getattr(x, f.name)) for f in dataclasses.fields(x)}
            if any(new[k] is not getattr(x, k) for k in new):
                return dataclasses.replace(x, **new)
        return x


# `fabric_coord`: the dimension `get_fabric_coord` reads
FABRIC_COORD = EnumT(DType.u16, (("X", 0), ("Y", 1)), "fabric_coord")


def _fabric_coord(c, node, env):
    """`get_fabric_coord(dimension)`: the PE's x or y in the program's rectangle (not on the
    fabric: `--fabric-offsets` does not change it), a u16 read from the per-PE coordinate
    tables."""
    (dim,) = call_args(c, node, env, 1)
    c.need_fn(env, node.pos, "get_fabric_coord()")
    x, y = ir.PeValue("x", DType.u16), ir.PeValue("y", DType.u16)
    if isinstance(dim, EnumLitVal) and dim.name in ("X", "Y"):
        dim = EnumVal(FABRIC_COORD, dim.name, dict(FABRIC_COORD.members)[dim.name])
    if isinstance(dim, EnumVal) and dim.etype is FABRIC_COORD:
        return RVal(x if dim.value == 0 else y, DType.u16)
    if isinstance(dim, EnumRVal) and dim.etype is FABRIC_COORD:
        is_x = ir.Bin("==", dim.expr, ir.Const(0, DType.u16), DType.bool_)
        return RVal(ir.Select(is_x, x, y, DType.u16), DType.u16)
    raise c.error(f"get_fabric_coord takes a fabric_coord (.X or .Y), got {describe(dim)}",
                  node.args[0].pos)


def tile_config_module(c, params, pos):
    def flush_exit(c2, node, env):
        (q,) = call_args(c2, node, env, 1)
        if c2.arch != "wse3":
            raise c2.error(f"queue_flush.exit exists on wse3 only (this program is compiled for "
                           f"{c2.arch})", node.pos)
        if not isinstance(q, QueueVal):
            raise c2.error(f"queue_flush.exit takes an input or output queue "
                           f"(@get_output_queue(n)), got {q!r}", node.pos)
        fn = c2.need_fn(env, node.pos, "queue_flush.exit()")
        fn.emit(ir.QueueCtl("exit", q.kind, q.id))
        return None

    def sub(name, members):
        missing = TILE_CONFIG_UNSUPPORTED.get(name, ())
        return ModuleVal(NativeModule(f"tile_config/{name}", members, missing,
                                      dict.fromkeys(missing, _NOT_IN_REFERENCE)))

    members = {
        "target_name": c.arch,
        "word_size": 16,
        "reg_type": DType.u16,
        # a register of two 16-bit words (teardown.get_pending() returns one)
        "double_reg_type": DType.u32,
        "main_thread_priority": ModuleVal(main_thread_priority_module()),
        "filters": ModuleVal(filters_module()),
        "switch_config": ModuleVal(switch_config_module()),
        "input_queue_config": sub("input_queue_config",
                                  {"encode_input_queue": _bind_queue("input")}),
        "output_queue_config": sub("output_queue_config",
                                   {"encode_output_queue": _bind_queue("output")}),
        "queue_flush": sub("queue_flush", {"exit": native_fn("exit", flush_exit)}),
        "teardown": sub("teardown", teardown_members()),
        "task_priority": ModuleVal(task_priority_module(c)),
        "color_config": ModuleVal(color_config_module()),
        "exceptions": ModuleVal(exceptions_module()),
        "input_queue_status": ModuleVal(queue_status_module("input")),
        "output_queue_status": ModuleVal(queue_status_module("output")),
        "fabric_coord": FABRIC_COORD,
        "get_fabric_coord": native_fn("get_fabric_coord", _fabric_coord),
    }
    return NativeModule("tile_config", members, TILE_CONFIG_UNSUPPORTED[""], TILE_CONFIG_WHY)
