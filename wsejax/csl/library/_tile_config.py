"""`<tile_config>`: queue bindings and queue flush."""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins import _check_queue
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.library._task_priority import task_priority_module
from wsejax.csl.values import (
    ModuleVal,
    QueueVal,
    RVal,
)
from wsejax.hardware import QUEUE_COUNTS
from wsejax.types import DType

# the members of the SDK's <tile_config> (and of its submodules) wsejax does not provide
TILE_CONFIG_UNSUPPORTED = {
    "": ("FIFO_MIN_ALIGNMENT", "get_fabric_coord", "color_config", "switch_config", "filters",
         "teardown", "exceptions", "main_thread_priority",
         "input_queue_status", "output_queue_status", "control_transform", "addresses"),
    "queue_flush": ("is_flushed", "get_pending", "is_pending"),
}


def _queue_id(c, v, node, kind: str, what: str) -> int:
    """A queue number given to `<tile_config>` (comptime: the engine keeps a binding per
    queue), checked against the architecture and memcpy's own queues."""
    if isinstance(v, RVal):
        raise c.error(f"{what}: a queue ID known only at run time is not supported yet",
                      node.pos)
    n = c.comptime_int(v, node.pos)
    count = QUEUE_COUNTS[c.arch][kind]
    if not 0 <= n < count:
        raise c.error(f"{what}: {kind} queue {n} does not exist on {c.arch} (0 to "
                      f"{count - 1})", node.pos)
    _check_queue(c, QueueVal(kind, n), node.pos)
    return n


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
        q = _queue_id(c, vals[0], node, kind, what)
        color = vals[1]
        if kind == "input" and not isinstance(vals[2], (bool, RVal)):
            raise c.error(f"{what}: filter_enable takes a bool, got {vals[2]!r}", node.pos)
        pe = env.module.pe
        consts, runtime, pos = pe.rebinds.get((kind, q), (set(), False, node.pos))
        if isinstance(color, RVal):
            expr = color.expr if color.dtype == DType.u16 else ir.Cast(color.expr, DType.u16)
            runtime = True
        else:
            n = c.comptime_int(color, node.args[1].pos)
            if not 0 <= n <= 23:
                raise c.error(f"{what}: color {n} is out of range (0 to 23)", node.args[1].pos)
            consts = consts | {n}
            expr = ir.Const(n, DType.u16)
        pe.rebinds[(kind, q)] = (consts, runtime, pos)
        fn.emit(ir.QueueBind(kind, q, expr))
        return None

    return native_fn(name, impl)


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
        return ModuleVal(NativeModule(f"tile_config/{name}", members,
                                      TILE_CONFIG_UNSUPPORTED.get(name, ())))

    members = {
        "target_name": c.arch,
        "word_size": 16,
        "reg_type": DType.u16,
        "input_queue_config": sub("input_queue_config",
                                  {"encode_input_queue": _bind_queue("input")}),
        "output_queue_config": sub("output_queue_config",
                                   {"encode_output_queue": _bind_queue("output")}),
        "queue_flush": sub("queue_flush", {"exit": native_fn("exit", flush_exit)}),
        "task_priority": ModuleVal(task_priority_module(c)),
    }
    return NativeModule("tile_config", members, TILE_CONFIG_UNSUPPORTED[""])
