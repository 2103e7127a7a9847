"""The `<tile_config>` library's `color_config`: a PE's program rewrites position 0 of a
color's routes at its own router at run time (CSL's `wsejax.csl.library._color_config`, with
the same rules, `wsejax.frontend.color_config`, and the same IR, `ir.RouteEdit`).

    cc = csl.tile_config.color_config
    cc.reset_routes(c, rx=csl.WEST, tx=[csl.RAMP, csl.EAST])
    cc.set_io_direction(cc.get_color_config_addr(c), cc.fabric_io.TX_RAMP)
"""

from __future__ import annotations

from wsejax import ir
from wsejax.dsl._context import _body, _rule
from wsejax.dsl._fabric import _color
from wsejax.errors import ProgramError
from wsejax.frontend.color_config import (
    FABRIC_IO,
    ColorConfigAddr,
    check_reset_rx,
    io_masks,
    route_mask,
)

__all__ = ["tile_config"]


class _FabricIo:
    """`color_config.fabric_io`: each member is its name (`TX_EAST`, `RX_RAMP`, ...)."""

    def __init__(self):
        for name in FABRIC_IO:
            setattr(self, name, name)

    def __iter__(self):
        return iter(FABRIC_IO)


def _target(v, what: str) -> int:
    """The color a call names: a color, or `get_color_config_addr`'s value for one."""
    if isinstance(v, ColorConfigAddr):
        return v.color
    return _color(v, f"color_config.{what}", ProgramError)


def _emit(color: int, edit: ir.RouteEdit, what: str) -> None:
    body = _body(f"color_config.{what}")
    body.program.teardown_colors.add(color)
    body.emit(edit)


def _io_call(op: str, what: str):
    def call(color, io) -> None:
        c = _target(color, what)
        rx, tx = _rule(io_masks, io if isinstance(io, str) else None, what, repr(io),
                       error=ProgramError)
        _emit(c, ir.RouteEdit(c, op, rx, tx), what)

    call.__name__ = call.__qualname__ = what
    call.__doc__ = (f"`color_config.{what}(color, dir)`: {op} the port `dir` (a "
                    "`fabric_io` member) in position 0 of the color's routes at this PE.")
    return staticmethod(call)


def _mask(v, field: str) -> tuple[int, int]:
    """`(mask, count)` of a `reset_routes` field: a direction, or a list or tuple of them
    (an array: `count` its length)."""
    items = list(v) if isinstance(v, (list, tuple)) else [v]
    mask = _rule(route_mask, [(d if isinstance(d, str) else None, repr(d)) for d in items],
                 field, error=ProgramError)
    return mask, (len(items) if isinstance(v, (list, tuple)) else 0)


class _ColorConfig:
    """`<tile_config>.color_config`."""

    fabric_io = _FabricIo()
    set_io_direction = _io_call("set", "set_io_direction")
    toggle_io_direction = _io_call("toggle", "toggle_io_direction")
    clear_io_direction = _io_call("clear", "clear_io_direction")

    @staticmethod
    def get_color_config_addr(color) -> ColorConfigAddr:
        """The address of `color`'s configuration, which every call takes in its stead."""
        return ColorConfigAddr(_color(color, "color_config.get_color_config_addr",
                                      ProgramError))

    @staticmethod
    def reset_routes(color, *, rx=None, tx=None) -> None:
        """Position 0 of the color's routes at this PE becomes exactly `rx` and `tx` (each a
        direction or a list of them; one not given is cleared). On wse3 an `rx` list holds
        one direction."""
        body = _body("color_config.reset_routes")
        c = _target(color, "reset_routes")
        rx_mask, rx_count = _mask(rx, "rx") if rx is not None else (0, 0)
        tx_mask, _ = _mask(tx, "tx") if tx is not None else (0, 0)
        _rule(check_reset_rx, body.program.arch, rx_count, error=ProgramError)
        _emit(c, ir.RouteEdit(c, "reset", rx_mask, tx_mask), "reset_routes")


class tile_config:
    """The `<tile_config>` library: `color_config` (see `_ColorConfig`)."""

    color_config = _ColorConfig()
