"""Teardown (spec 6.4): `@set_teardown_handler(fn, color)` and the `<tile_config>.teardown`
functions (`exit`, `is_pending`, `get_pending`, `get_task_id`). The colors they name are
routed hop by hop (`wsejax.switches`), where a router in teardown moves nothing; a TEARDOWN
command puts a router's color into teardown and activates task 29, whose body (built by
`finish_pe`) calls the handler of each color in teardown."""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import builtin, nargs, rule
from wsejax.csl.builtins.tasks import _binding_site, _is_task
from wsejax.csl.library._native import call_args, native_fn
from wsejax.csl.values import (
    ColorVal,
    FnVal,
    RtHandleVal,
    RVal,
    Special,
    TaskIdVal,
    describe,
)
from wsejax.frontend.fabric import check_color
from wsejax.switches import TEARDOWN_TASK
from wsejax.types import DType

__all__ = ["teardown_members"]


def _color(c, v, node, what: str) -> int:
    """A comptime color's number (a routable color, not memcpy's)."""
    if isinstance(v, (RVal, RtHandleVal)):
        raise c.error(f"{what} takes a color known at compile time, got {describe(v)}",
                      node.pos)
    if not isinstance(v, ColorVal):
        v = c.coerce(v, Special("color"), node.pos, what)
    return rule(c, node, check_color, v.id, c.memcpy, pos=node.pos)


@builtin("set_teardown_handler")
def _set_teardown_handler(c, node, env):
    nargs(c, node, 2)
    pe = _binding_site(c, node, env)
    f = c.ev(node.args[0], env)
    if not isinstance(f, FnVal) or _is_task(f):
        raise c.error(f"@set_teardown_handler takes a function, got {describe(f)}",
                      node.args[0].pos)
    if f.decl.params:
        raise c.error(f"the teardown handler '{f.decl.name}' takes no parameters", f.decl.pos)
    color = _color(c, c.ev(node.args[1], env), node, "@set_teardown_handler")
    if color in pe.teardown_handlers:
        raise c.error(f"color {color} has a teardown handler already", node.pos)
    pe.teardown_handlers[color] = ("", node.pos)

    def lower(pos=node.pos):
        pe.teardown_handlers[color] = (c.specialize(f, f.module.env(), [], (), pos), pos)

    pe.deferred.append(lower)
    return None


def teardown_members() -> dict:
    """The members of `<tile_config>.teardown`."""

    def exit_(c, node, env):
        (v,) = call_args(c, node, env, 1)
        color = _color(c, v, node, "teardown.exit")
        fn = c.need_fn(env, node.pos, "teardown.exit()")
        env.module.pe.teardown_colors.add(color)
        fn.emit(ir.TeardownExit(color))
        return None

    def is_pending(c, node, env):
        (v,) = call_args(c, node, env, 1)
        color = _color(c, v, node, "teardown.is_pending")
        c.need_fn(env, node.pos, "teardown.is_pending()")
        env.module.pe.teardown_colors.add(color)
        return RVal(ir.TeardownPending(color), DType.bool_)

    def get_pending(c, node, env):
        call_args(c, node, env, 0)
        c.need_fn(env, node.pos, "teardown.get_pending()")
        return RVal(ir.TeardownPending(None, DType.u32), DType.u32)

    def get_task_id(c, node, env):
        call_args(c, node, env, 0)
        return TaskIdVal("local", TEARDOWN_TASK)

    return {"exit": native_fn("exit", exit_), "is_pending": native_fn("is_pending", is_pending),
            "get_pending": native_fn("get_pending", get_pending),
            "get_task_id": native_fn("get_task_id", get_task_id)}
