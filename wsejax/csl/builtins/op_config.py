"""The config struct of a DSD operation (spec 5.4: `.async`, `.activate`, `.unblock`,
`.index`, `.ut_id`, `.priority`, `.on_control`), read where an operation or a `@load_to_dsr`
gives it."""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import rule
from wsejax.csl.builtins.queues import _priority
from wsejax.csl.builtins.tasks import _local_id, _task_id, _ut_expr, runtime_id
from wsejax.csl.values import CNum, RtHandleVal, RVal, StructVal, describe
from wsejax.frontend.fabric import check_hooks, on_control_action
from wsejax.types import DType

__all__ = ["OP_OPTIONS", "op_config"]


OP_OPTIONS = ("async", "activate", "unblock", "index", "priority", "ut_id", "on_control")


def op_config(c, cfg: StructVal, node, env) -> ir.OpConfig | None:
    """The config struct of a DSD operation (spec 5.4); None when it asks for nothing."""
    f = cfg.fields
    for k in f:
        if k not in OP_OPTIONS:
            raise c.error(f"@{node.name}: unknown option .{k}", node.pos)
    async_ = f.get("async", False)
    async_ = async_.value if isinstance(async_, CNum) else async_
    if not isinstance(async_, bool):
        raise c.error(f"@{node.name}: .async takes a comptime-known bool, got "
                      f"{describe(async_)}", node.pos)
    rule(c, node, check_hooks, node.name, "activate" in f, "unblock" in f, pos=node.pos)
    if "priority" in f:
        _priority(c, f["priority"], node, f"@{node.name}: .priority")
    out = ir.OpConfig(async_, *(_OP_FIELDS[k](c, f[k], node) if k in f else None
                                for k in ("activate", "unblock", "index", "ut_id")),
                      on_control=_on_control(c, f["on_control"], node)
                      if "on_control" in f else None)
    return None if out == ir.OpConfig() else out


def _hook(resolve, what: str):
    """The reader of a task ID option (`.activate` / `.unblock`): a u16 constant, or a
    runtime u16 expression."""
    def read(c, v, node) -> ir.Expr:
        if isinstance(v, RVal):
            return c.to_expr(v, DType.u16, node.pos, f"@{node.name} {what}")
        if isinstance(v, RtHandleVal):
            return runtime_id(c, v, node, f"@{node.name} {what}", resolve is _local_id)
        return ir.Const(resolve(c, v, node, f"@{node.name} {what}"), DType.u16)
    return read


def _on_control(c, v, node) -> ir.OnControl:
    """`.on_control = .{ .terminate = true }`, `.{ .activate = t }` or `.{ .unblock = t }`."""
    fields = v.fields if isinstance(v, StructVal) else None
    action = rule(c, node, on_control_action, node.name, fields, describe, pos=node.pos)
    if action == "terminate":
        return ir.OnControl("terminate")
    return ir.OnControl(action, _OP_FIELDS[action](c, fields[action], node))


# the readers of the config options that become IR, in `ir.OpConfig`'s order
_OP_FIELDS = {
    "activate": _hook(_local_id, ".activate"),
    "unblock": _hook(_task_id, ".unblock"),
    "index": lambda c, v, node: c.to_expr(v, DType.u16, node.pos, f"@{node.name} .index"),
    "ut_id": lambda c, v, node: _ut_expr(c, v, node, f"@{node.name} .ut_id"),
}
