"""IR of the routers (spec 6.2-6.4): a color config's `.switches` and `.teardown`
(`Switches`) and its `.filter` (`Filter`), and the runtime side of teardown (`TeardownExit`,
`TeardownPending`), which `wsejax.ir` joins to its statements and expressions."""

from __future__ import annotations

from dataclasses import dataclass

from wsejax.types import DType

__all__ = ["FILTER_FIELDS", "ROUTE_EDITS", "SWITCH_EDITS", "Filter", "FilterEdit", "POP_MODES",
           "QueueStatus", "RouteEdit", "RouteEditAt", "SwitchEdit", "Switches", "TeardownExit",
           "TeardownPending"]


POP_MODES = ("no_pop", "always_pop", "pop_on_advance", "pop_on_advance_nop")


@dataclass(frozen=True)
class Switches:
    """The `.switches` of a color's configuration at a PE (spec 6.2). `positions` are pos1..pos3,
    each None (invalid) or `(rx, tx)`: the ports it replaces, each a tuple of directions or None
    where the position keeps position 0's. `current` is the position at start-up; `pop_mode` one
    of `POP_MODES`."""

    positions: tuple = (None, None, None)
    current: int = 0
    ring_mode: bool = False
    pop_mode: str = "no_pop"
    teardown: bool = False          # `.teardown = true`: the color starts in teardown


# ------------------------------------------------------------------------------------------------
# Teardown (spec 6.4): the router of a color in teardown moves none of its wavelets


@dataclass(frozen=True)
class TeardownExit:
    """`<tile_config>.teardown.exit(color)`: the PE's router takes color `color` out of
    teardown."""

    color: int


@dataclass(frozen=True)
class TeardownPending:
    """`<tile_config>.teardown.is_pending(color)` (bool: the PE's router holds `color` in
    teardown) or, with `color` None, `get_pending()` (u32: bit c set for each such color)."""

    color: int | None
    dtype: DType = DType.bool_


@dataclass(frozen=True)
class Filter:
    """The filter of a color's configuration at a PE (spec 6.3), applied to the wavelets of
    that color its CE receives. `kind` is "counter", "sparse_counter" or "range"; a limit
    that is None was not given."""

    kind: str
    count_data: bool = False
    count_control: bool = False
    init_counter: int = 0
    limit1: int | None = None
    limit2: int | None = None
    max_counter: int = 0
    filter_control: bool = False
    min_idx: int = 0
    max_idx: int = 0


# ------------------------------------------------------------------------------------------------
# `<tile_config>.color_config`: the PE's program rewrites position 0 of a color's routes

ROUTE_EDITS = ("reset", "set", "clear", "toggle")


@dataclass(frozen=True)
class RouteEdit:
    """A `color_config` call on the PE's router for `color`: `op` "reset" makes position 0's
    rx and tx exactly the port masks `rx` and `tx` (bit i is `wsejax.routes.DIRECTIONS[i]`);
    "set", "clear" and "toggle" OR, AND NOT or XOR the masks into them. Afterwards the PE has
    a config for the color."""

    color: int
    op: str
    rx: int
    tx: int


@dataclass(frozen=True)
class RouteEditAt:
    """A `color_config` call on the PE's router for a color known only at run time: `color`
    is its u16 expression; otherwise a `RouteEdit`. A program holding one moves every color
    it configures (by the layout or a PE program, or with switches or teardown) hop by hop;
    the call acts on the color's row of those routers' tables, and a color not among them
    faults the PE (`diagnostics.route_edit_color`)."""

    color: object      # an `ir.Expr` of type u16
    op: str
    rx: int
    tx: int


# ------------------------------------------------------------------------------------------------
# `<tile_config>.input_queue_status` / `output_queue_status`: the occupancy of the PE's queues


@dataclass(frozen=True)
class QueueStatus:
    """The `empty` (`full` False) or `full` mask of the PE's input or output queues (`kind`),
    a u8: bit i set where queue i holds no wavelet (empty) or as many as its capacity (full).
    `colors[i]` is the color queue i carries (a number, a per-PE table entry (`PeValue`) or a
    queue bound at run time, as a fabric DSD's color), or None: a queue bound to no color,
    which reads as empty and never full. None for `colors` until the PE program's queues are
    known (`wsejax.csl` fills it in)."""

    kind: str
    full: bool
    colors: tuple | None = None
    dtype: DType = DType.u8


# ------------------------------------------------------------------------------------------------
# `<tile_config>.filters`: the PE's program sets a counter filter's state

FILTER_FIELDS = ("counter", "limit", "max_counter")


@dataclass(frozen=True)
class FilterEdit:
    """`filters.set_counter` / `set_active_limit` / `set_max_counter` on the PE: set `field`
    (one of `FILTER_FIELDS`) of the filter whose ID is `filter` (a u16 expression; a filter's
    ID is its color's number) to `value` (a u16 expression). A PE whose color has no filter,
    or an ID that is no color, changes nothing."""

    field: str
    filter: object
    value: object


# ------------------------------------------------------------------------------------------------
# `<tile_config>.switch_config`: the PE's program rewrites its router's switch state of a color

SWITCH_EDITS = ("position", "ring", "pop", "invalid", "port")


@dataclass(frozen=True)
class SwitchEdit:
    """A `switch_config` call on the PE's router for `color`. `op` "position" sets the current
    position to `value` (a u16 expression, 0 to 3: a larger one faults the PE); "ring" the ring
    mode to `value` (bool); "pop" the pop mode to `value` (its index in `POP_MODES`);
    "invalid" makes positions 1..3 invalid (holding position 0's ports of the moment);
    "port" sets position `value` (1 to 3) valid, with rx `rx` and tx `tx` (port masks, bit i
    `wsejax.routes.DIRECTIONS[i]`; None keeps the one it has)."""

    color: int
    op: str
    value: object = None
    rx: int | None = None
    tx: int | None = None
