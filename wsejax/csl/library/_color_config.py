"""`<tile_config>.color_config`: a PE's program rewrites the routes of a color at its own
router (spec 6.4, 11).

Members: `fabric_io` (enum: TX_WEST, TX_EAST, TX_SOUTH, TX_NORTH, TX_RAMP, RX_WEST, RX_EAST,
RX_SOUTH, RX_NORTH, RX_RAMP), `get_color_config_addr(c)`, `set_io_direction(c, dir)`,
`toggle_io_direction(c, dir)`, `clear_io_direction(c, dir)` and
`reset_routes(c, comptime .{ .rx = ..., .tx = ... })`, where `c` is a color or the address
`get_color_config_addr` gave for one.

Policy. `get_color_config_addr` of a color stands for that color's configuration (a comptime
value, or one known at run time with the color). Any call naming a comptime color makes that
color routed hop by hop (`wsejax.switches`), with position 0's rx and tx held per PE at run
time; a call naming a color known only at run time (a `color` handle held at run time,
`ir.RouteEditAt`) makes every color the program configures routed hop by hop, and names one of
them (another color faults the PE, saying so). The call (`ir.RouteEdit`) changes position 0 on
the calling PE only, from the moment it runs, teardown or not
(the SDK describes the calls for use in a teardown phase; outside it the router simply uses
the new ports from its next move, wavelets it already holds included). Positions 1..3 keep the
ports they were given at load time. A PE with no config for the color has one afterwards (the
rewritten position 0). `reset_routes` takes for `rx` and `tx` a direction or an array of
directions (a missing field clears it); on wse3 an `rx` array must hold one direction, as the
SDK requires.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import rule
from wsejax.csl.builtins.teardown import _color
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import (
    ArrayVal,
    EnumLitVal,
    EnumT,
    EnumVal,
    ObjArrayVal,
    RtHandleVal,
    RVal,
    StructVal,
    TupleVal,
    describe,
)
from wsejax.frontend.color_config import (
    FABRIC_IO,
    ColorConfigAddr,
    check_reset_rx,
    io_masks,
    route_mask,
)

__all__ = ["ColorConfigAddr", "color_config_module"]


def _target(c, v, node, what: str):
    """The color a call names: its number, or the u16 expression of one known only at run
    time."""
    if isinstance(v, ColorConfigAddr):
        return v.color
    if isinstance(v, RtHandleVal) and v.kind == "color":
        return v.expr
    if isinstance(v, (RVal, RtHandleVal)):
        raise c.error(f"color_config.{what} takes a color, got {describe(v)}", node.pos)
    return _color(c, v, node, f"color_config.{what}")


def _emit(c, node, env, color, op: str, rx: int, tx: int, what: str) -> None:
    fn = c.need_fn(env, node.pos, f"color_config.{what}()")
    if isinstance(color, int):
        env.module.pe.teardown_colors.add(color)
        fn.emit(ir.RouteEdit(color, op, rx, tx))
    else:
        fn.emit(ir.RouteEditAt(color, op, rx, tx))


def _io(c, v, node, what: str) -> tuple[int, int]:
    """`(rx mask, tx mask)` of one `fabric_io` value."""
    name = v.name if isinstance(v, (EnumVal, EnumLitVal)) else None
    return rule(c, node, io_masks, name, what, describe(v), pos=node.pos)


def _io_fn(op: str, what: str):
    def impl(c, node, env):
        target, io = call_args(c, node, env, 2)
        color = _target(c, target, node, what)
        rx, tx = _io(c, io, node, what)
        _emit(c, node, env, color, op, rx, tx, what)

    return native_fn(what, impl)


def _directions(c, v, node, field: str) -> tuple[int, int]:
    """`(mask, count)` of a `reset_routes` field: a direction or an array of them."""
    if isinstance(v, (ObjArrayVal, ArrayVal)):
        items = v.values.reshape(-1).tolist()
    elif isinstance(v, TupleVal):
        items = list(v.items)
    else:
        items = [v]
    mask = rule(c, node, route_mask, [(getattr(d, "name", None), describe(d)) for d in items],
                field, pos=node.pos)
    return mask, (len(items) if isinstance(v, (ObjArrayVal, ArrayVal, TupleVal)) else 0)


def _reset(c, node, env):
    target, routes = call_args(c, node, env, 2)
    color = _target(c, target, node, "reset_routes")
    if not isinstance(routes, StructVal) or set(routes.fields) - {"rx", "tx"}:
        raise c.error("color_config.reset_routes takes a comptime struct .{ .rx = ..., "
                      f".tx = ... }}, got {describe(routes)}", node.pos)
    rx, rx_count = (_directions(c, routes.fields["rx"], node, "rx")
                    if "rx" in routes.fields else (0, 0))
    tx, _ = _directions(c, routes.fields["tx"], node, "tx") if "tx" in routes.fields else (0, 0)
    rule(c, node, check_reset_rx, c.arch, rx_count, pos=node.pos)
    _emit(c, node, env, color, "reset", rx, tx, "reset_routes")


def _addr(c, node, env):
    (v,) = call_args(c, node, env, 1)
    return ColorConfigAddr(_target(c, v, node, "get_color_config_addr"))


def color_config_module() -> NativeModule:
    return NativeModule("tile_config/color_config", {
        "fabric_io": EnumT(object(), tuple((n, i) for i, n in enumerate(FABRIC_IO)),
                           "fabric_io"),
        "get_color_config_addr": native_fn("get_color_config_addr", _addr),
        "set_io_direction": _io_fn("set", "set_io_direction"),
        "toggle_io_direction": _io_fn("toggle", "toggle_io_direction"),
        "clear_io_direction": _io_fn("clear", "clear_io_direction"),
        "reset_routes": native_fn("reset_routes", _reset),
    })
