"""`<directions>`: `rotate_clockwise`, `rotate_counterclockwise`, `flip_vertical`,
`flip_horizontal`, `flip` of a `direction` (NORTH, EAST, SOUTH, WEST).

Each function takes and gives a comptime direction; given a direction held at run time
(`wsejax/csl/directions.py`), it gives one too, read from a table in PE memory (RAMP faults
the PE there). Clockwise is NORTH -> EAST -> SOUTH -> WEST; a vertical
flip swaps NORTH and SOUTH, a horizontal flip EAST and WEST, `flip` gives the opposite
direction. RAMP has no rotation or mirror image and is an error.
"""

from __future__ import annotations

from wsejax.csl.directions import is_runtime_direction
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import EnumLitVal, describe

CLOCKWISE = ("NORTH", "EAST", "SOUTH", "WEST")

MAPS = {
    "rotate_clockwise": {d: CLOCKWISE[(k + 1) % 4] for k, d in enumerate(CLOCKWISE)},
    "rotate_counterclockwise": {d: CLOCKWISE[(k - 1) % 4] for k, d in enumerate(CLOCKWISE)},
    "flip_vertical": {"NORTH": "SOUTH", "SOUTH": "NORTH", "EAST": "EAST", "WEST": "WEST"},
    "flip_horizontal": {"NORTH": "NORTH", "SOUTH": "SOUTH", "EAST": "WEST", "WEST": "EAST"},
    "flip": {d: CLOCKWISE[(k + 2) % 4] for k, d in enumerate(CLOCKWISE)},
}


def _fn(name: str):
    table = MAPS[name]

    def impl(c, node, env):
        (d,) = call_args(c, node, env, 1)
        if is_runtime_direction(d):
            return c.map_direction(name, table, d, env, node.args[0].pos)
        if not isinstance(d, EnumLitVal) or d.name not in table:
            raise c.error(f"directions.{name} takes NORTH, EAST, SOUTH or WEST, got "
                          f"{d.name if isinstance(d, EnumLitVal) else describe(d)}",
                          node.args[0].pos)
        return EnumLitVal(table[d.name])
    return impl


def directions_module(c, params, pos):
    return NativeModule("directions", {n: native_fn(n, _fn(n)) for n in MAPS})
