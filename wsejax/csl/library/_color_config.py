"""`<tile_config>.color_config`: a PE's program rewrites the routes of a color at its own
router (spec 6.4, 11).

Members: `fabric_io` (enum: TX_WEST, TX_EAST, TX_SOUTH, TX_NORTH, TX_RAMP, RX_WEST, RX_EAST,
RX_SOUTH, RX_NORTH, RX_RAMP), `get_color_config_addr(c)`, `set_io_direction(c, dir)`,
`toggle_io_direction(c, dir)`, `clear_io_direction(c, dir)` and
`reset_routes(c, comptime .{ .rx = ..., .tx = ... })`, where `c` is a color or the address
`get_color_config_addr` gave for one.

Policy. The color must be known at compile time (a color known only at run time is a located
error), and so is the address: `get_color_config_addr` of a comptime color is a comptime value
standing for that color's configuration. Any call naming a color makes that color routed hop
by hop (`wsejax.switches`), with position 0's rx and tx held per PE at run time; the call
(`ir.RouteEdit`) changes them on the calling PE only, from the moment it runs, teardown or not
(the SDK describes the calls for use in a teardown phase; outside it the router simply uses
the new ports from its next move, wavelets it already holds included). Positions 1..3 keep the
ports they were given at load time. A PE with no config for the color has one afterwards (the
rewritten position 0). `reset_routes` takes for `rx` and `tx` a direction or an array of
directions (a missing field clears it); on wse3 an `rx` array must hold one direction, as the
SDK requires.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsejax import ir
from wsejax.csl.builtins.teardown import _color
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import (
    ArrayVal,
    EnumLitVal,
    EnumT,
    EnumVal,
    ObjArrayVal,
    StructVal,
    TupleVal,
    describe,
)
from wsejax.routes import DIRECTIONS

__all__ = ["ColorConfigAddr", "color_config_module"]

FABRIC_IO = tuple((f"{kind}_{d}", i) for i, (kind, d) in enumerate(
    [("TX", d) for d in ("WEST", "EAST", "SOUTH", "NORTH", "RAMP")]
    + [("RX", d) for d in ("WEST", "EAST", "SOUTH", "NORTH", "RAMP")]))


@dataclass(frozen=True)
class ColorConfigAddr:
    """`get_color_config_addr(color)` of a comptime color: stands for its configuration."""

    color: int

    def freeze(self):
        return ("color_config_addr", self.color)


def _target(c, v, node, what: str) -> int:
    if isinstance(v, ColorConfigAddr):
        return v.color
    return _color(c, v, node, f"color_config.{what}")


def _emit(c, node, env, color: int, edit: ir.RouteEdit, what: str) -> None:
    fn = c.need_fn(env, node.pos, f"color_config.{what}()")
    env.module.pe.teardown_colors.add(color)
    fn.emit(edit)


def _io(c, v, node, what: str) -> tuple[int, int]:
    """`(rx mask, tx mask)` of one `fabric_io` value."""
    name = v.name if isinstance(v, (EnumVal, EnumLitVal)) else None
    if name not in dict(FABRIC_IO):
        raise c.error(f"color_config.{what} takes a color_config.fabric_io direction "
                      f"(.TX_EAST, .RX_RAMP, ...), got {describe(v)}", node.pos)
    kind, d = name.split("_")
    bit = 1 << DIRECTIONS.index(d)
    return (bit, 0) if kind == "RX" else (0, bit)


def _io_fn(op: str, what: str):
    def impl(c, node, env):
        target, io = call_args(c, node, env, 2)
        color = _target(c, target, node, what)
        rx, tx = _io(c, io, node, what)
        _emit(c, node, env, color, ir.RouteEdit(color, op, rx, tx), what)

    return native_fn(what, impl)


def _directions(c, v, node, field: str) -> tuple[int, int]:
    """`(mask, count)` of a `reset_routes` field: a direction or an array of them."""
    if isinstance(v, (ObjArrayVal, ArrayVal)):
        items = v.values.reshape(-1).tolist()
    elif isinstance(v, TupleVal):
        items = list(v.items)
    else:
        items = [v]
    mask = 0
    for d in items:
        name = getattr(d, "name", None)
        if name not in DIRECTIONS:
            raise c.error(f"color_config.reset_routes: .{field} takes a direction or an array "
                          f"of directions, got {describe(d)}", node.pos)
        mask |= 1 << DIRECTIONS.index(name)
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
    if c.arch == "wse3" and rx_count > 1:
        raise c.error("color_config.reset_routes: on wse3 an .rx array holds a single "
                      f"direction ([1]direction), got {rx_count}", node.pos)
    _emit(c, node, env, color, ir.RouteEdit(color, "reset", rx, tx), "reset_routes")


def _addr(c, node, env):
    (v,) = call_args(c, node, env, 1)
    return ColorConfigAddr(_color(c, v, node, "color_config.get_color_config_addr"))


def color_config_module() -> NativeModule:
    return NativeModule("tile_config/color_config", {
        "fabric_io": EnumT(object(), FABRIC_IO, "fabric_io"),
        "get_color_config_addr": native_fn("get_color_config_addr", _addr),
        "set_io_direction": _io_fn("set", "set_io_direction"),
        "toggle_io_direction": _io_fn("toggle", "toggle_io_direction"),
        "clear_io_direction": _io_fn("clear", "clear_io_direction"),
        "reset_routes": native_fn("reset_routes", _reset),
    })
