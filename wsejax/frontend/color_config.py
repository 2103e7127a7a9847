"""The rules of `<tile_config>.color_config` (spec 6.4, 11) that both front ends apply: the
`fabric_io` directions, the port masks of `reset_routes`, and the value that
`get_color_config_addr` gives.

A call becomes `ir.RouteEdit(color, op, rx, tx)`; each mask has bit i for
`wsejax.routes.DIRECTIONS[i]`. Every function raises `RuleError`.

    >>> io_masks("TX_RAMP", "set_io_direction", "'TX_RAMP'")
    (0, 16)
"""

from __future__ import annotations

from dataclasses import dataclass

from wsejax.frontend.fabric import fail
from wsejax.routes import DIRECTIONS

__all__ = ["FABRIC_IO", "ColorConfigAddr", "check_reset_rx", "io_masks", "route_mask"]

# the `color_config.fabric_io` enum, in its order
FABRIC_IO = tuple(f"{kind}_{d}" for kind in ("TX", "RX")
                  for d in ("WEST", "EAST", "SOUTH", "NORTH", "RAMP"))


@dataclass(frozen=True)
class ColorConfigAddr:
    """`get_color_config_addr(color)`: stands for the color's configuration wherever the
    color is taken. `color` is its number, or the u16 IR expression of a color known only at
    run time."""

    color: object

    def freeze(self):
        return ("color_config_addr", self.color)


def io_masks(name, what: str, shown: str) -> tuple[int, int]:
    """`(rx mask, tx mask)` of the `fabric_io` direction `name` (`shown`: how the front end
    shows the value given)."""
    if name not in FABRIC_IO:
        fail(f"color_config.{what} takes a color_config.fabric_io direction (.TX_EAST, "
             f".RX_RAMP, ...), got {shown}")
    kind, d = name.split("_")
    bit = 1 << DIRECTIONS.index(d)
    return (bit, 0) if kind == "RX" else (0, bit)


def route_mask(items: list, field: str) -> int:
    """The port mask of a `reset_routes` field given as `items`, each (the direction's name,
    how the front end shows the value given)."""
    mask = 0
    for d, shown in items:
        if d not in DIRECTIONS:
            fail(f"color_config.reset_routes: .{field} takes a direction or an array of "
                 f"directions, got {shown}")
        mask |= 1 << DIRECTIONS.index(d)
    return mask


def check_reset_rx(arch: str, count: int) -> None:
    """On wse3 `reset_routes`' `.rx` array holds one direction (`count`: the array's
    length; 0 where a single direction was given)."""
    if arch == "wse3" and count > 1:
        fail("color_config.reset_routes: on wse3 an .rx array holds a single direction "
             f"([1]direction), got {count}")
