"""The rules of a color config's `.switches`, `.teardown` (spec 6.2, 6.4) and `.filter` (spec
6.3) that both front ends share, on plain Python values: the CSL front end
(`wsejax.csl.builtins.switch_config`, `wsejax.csl.builtins.colors`) reads them out of its
comptime structs, the Python API (`wsejax.dsl`) out of keyword arguments. Each check raises
`RuleError` (`fail`), prefixed by `what` (the builtin being checked)."""

from __future__ import annotations

from wsejax import ir
from wsejax.frontend.fabric import check_direction, fail

__all__ = ["FILTER_FLAGS", "FILTER_KINDS", "FILTER_NUMBERS", "SWITCH_FIELDS",
           "WSE3_SWITCH_COLORS", "check_current_switch_pos", "check_filter",
           "check_pop_mode", "check_position_rx", "check_switch_color", "check_switch_flag",
           "make_switches", "positions_of"]

SWITCH_FIELDS = ("pos1", "pos2", "pos3", "current_switch_pos", "ring_mode", "pop_mode")
# the colors a switch may be configured on, on wse3
WSE3_SWITCH_COLORS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16, 17, 20, 21)

FILTER_KINDS = ("counter", "sparse_counter", "range")
FILTER_FLAGS = ("count_data", "count_control", "filter_control")
FILTER_NUMBERS = ("init_counter", "limit1", "limit2", "max_counter", "max_idx", "min_idx")


def check_switch_color(what: str, arch: str | None, color: int) -> None:
    """On wse3 only some colors can have switches."""
    if arch == "wse3" and color not in WSE3_SWITCH_COLORS:
        fail(f"color {color} cannot have switches on wse3 (only colors "
             f"{', '.join(map(str, WSE3_SWITCH_COLORS))} can)", what)


def check_switch_flag(what: str, name: str, v, shown: str | None = None) -> bool:
    """`.ring_mode` or `.teardown`: a bool."""
    if not isinstance(v, bool):
        fail(f".{name} takes a bool, got {shown or repr(v)}", what)
    return v


def check_position_rx(what: str, rx: tuple) -> tuple:
    """A switch position's rx: a single direction."""
    if len(rx) != 1:
        fail(f"{what}.rx takes a single direction, got {len(rx)}")
    return rx


def check_current_switch_pos(what: str, current: int, positions: tuple) -> int:
    """`.current_switch_pos`: 0 to 3, a valid position."""
    if not 0 <= current <= 3:
        fail(f".current_switch_pos = {current} is out of range (0 to 3)", what)
    if current and positions[current - 1] is None:
        fail(f".current_switch_pos = {current} names an invalid position (.pos{current} is "
             "not configured)", what)
    return current


def check_pop_mode(what: str, name) -> str:
    """`.pop_mode`: one of `ir.POP_MODES`."""
    if name not in ir.POP_MODES:
        fail(f".pop_mode takes one of {', '.join(f'.{{ .{m} = true }}' for m in ir.POP_MODES)}",
             what)
    return name


def make_switches(what: str, arch: str | None, color: int, positions: tuple, current: int,
                  ring_mode, pop_mode: str, teardown) -> ir.Switches:
    """The `ir.Switches` of checked fields (`positions`: pos1..pos3, each None or `(rx, tx)`
    of direction tuples, None where position 0's is kept)."""
    check_switch_color(what, arch, color)
    check_current_switch_pos(what, current, positions)
    return ir.Switches(positions, current, check_switch_flag(what, "ring_mode", ring_mode),
                       check_pop_mode(what, pop_mode),
                       check_switch_flag(what, "teardown", teardown))


def check_filter(what: str, kind, fields: dict) -> ir.Filter:
    """The `ir.Filter` of kind `kind` (a name of `FILTER_KINDS`) with `fields` (flags: bools;
    numbers: ints 0 to 65535)."""
    if kind not in FILTER_KINDS:
        fail(f"filter kind .{kind} does not exist (the kinds are .counter, .sparse_counter "
             "and .range)", what)
    out = {"kind": kind}
    for k, v in fields.items():
        if k in FILTER_FLAGS:
            if not isinstance(v, bool):
                fail(f".{k} takes a bool, got {v!r}", what)
        elif k in FILTER_NUMBERS:
            if isinstance(v, bool) or not isinstance(v, int):
                fail(f".{k} takes an integer, got {v!r}", what)
            if not 0 <= v <= 0xFFFF:
                fail(f".{k} = {v} is out of range (0 to 65535)", what)
        else:
            fail(f"unknown field .{k}", what)
        out[k] = v
    return ir.Filter(**out)


def positions_of(what: str, given: dict) -> tuple:
    """pos1..pos3 from the Python API's `{"pos1": {"rx": ..., "tx": ...} | None, ...}`."""
    out = []
    for p in (1, 2, 3):
        v = given.get(f"pos{p}")
        if v is None:
            out.append(None)
            continue
        if not isinstance(v, dict) or not v or set(v) - {"rx", "tx"}:
            fail(f"pos{p} takes a dict with rx and/or tx, or None (invalid), got {v!r}", what)
        rx = tx = None
        if "rx" in v:
            rx = check_position_rx(f"{what} pos{p}", _dirs(v["rx"], f"{what} pos{p}.rx"))
        if "tx" in v:
            tx = _dirs(v["tx"], f"{what} pos{p}.tx")
        out.append((rx, tx))
    return tuple(out)


def _dirs(v, what: str) -> tuple:
    items = (v,) if isinstance(v, str) else tuple(v)
    return tuple(sorted({check_direction(d, what, repr(d)) for d in items}))
