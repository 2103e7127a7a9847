"""The `.switches` of a color config (spec 6.2): positions pos1..pos3, `current_switch_pos`,
`ring_mode` and `pop_mode`, given under `.switches` or, in the older spelling, beside `.rx` and
`.tx` in `.routes` (where `pop_mode` is a deprecated alias too); and its `.teardown` (spec 6.4),
kept with them (`ir.Switches.teardown`)."""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import rule
from wsejax.csl.values import StructVal, TupleVal, describe
from wsejax.frontend.fabric import check_direction
from wsejax.frontend.switches import (
    SWITCH_FIELDS,
    WSE3_SWITCH_COLORS,
    check_pop_mode,
    check_position_rx,
    make_switches,
)

__all__ = ["SWITCH_FIELDS", "WSE3_SWITCH_COLORS", "parse_switches", "split_routes"]


def split_routes(c, routes, node):
    """`(.routes without the switch fields, those fields)` for the older spelling that puts
    `pos1..3`, `ring_mode`, `current_switch_pos`, `pop_mode` beside `.rx` and `.tx`."""
    if not isinstance(routes, StructVal):
        return routes, {}
    legacy = {k: v for k, v in routes.fields.items() if k in SWITCH_FIELDS}
    if not legacy:
        return routes, {}
    return StructVal({k: v for k, v in routes.fields.items() if k not in SWITCH_FIELDS}), legacy


def parse_switches(c, value, legacy: dict, color: int, node,
                   teardown=False) -> ir.Switches | None:
    """The `ir.Switches` of `.switches = value` (None if absent) merged with the fields given
    in `.routes` (`legacy`) and the config's `.teardown`; None when none gives any."""
    what = f"@{node.name}"
    if not isinstance(teardown, bool):
        raise c.error(f"{what}: .teardown takes a bool, got {describe(teardown)}", node.pos)
    fields = _fields(c, value, legacy, node)
    if not fields:
        return ir.Switches(teardown=True) if teardown else None
    positions = tuple(_position(c, fields.get(f"pos{p}"), p, node) for p in (1, 2, 3))
    current = c.comptime_int(fields["current_switch_pos"], node.pos) \
        if "current_switch_pos" in fields else 0
    ring = fields.get("ring_mode", False)
    if not isinstance(ring, bool):
        raise c.error(f"{what}: .ring_mode takes a bool, got {describe(ring)}", node.pos)
    return rule(c, node, make_switches, what, c.arch, color, positions, current, ring,
                _pop_mode(c, fields.get("pop_mode"), node), teardown, pos=node.pos)


def _fields(c, value, legacy: dict, node) -> dict:
    """The switch fields of `.switches` and of `.routes`, each given once."""
    fields = {}
    if value is not None:
        if not isinstance(value, StructVal):
            raise c.error(f"@{node.name}: .switches takes a struct like .{{ .pos1 = .{{ .tx = "
                          "WEST }, .ring_mode = true }", node.pos)
        extra = set(value.fields) - set(SWITCH_FIELDS)
        if extra:
            raise c.error(f"@{node.name}: .switches has no field .{sorted(extra)[0]} (it takes "
                          f"{', '.join('.' + f for f in SWITCH_FIELDS)})", node.pos)
        fields.update(value.fields)
    for k, v in legacy.items():
        if k in fields:
            raise c.error(f"@{node.name}: .{k} is given both in .switches and in .routes",
                          node.pos)
        fields[k] = v
    return fields


def _position(c, v, p: int, node):
    """pos`p`: None (invalid) or `(rx, tx)`, each a tuple of directions or None (kept)."""
    what = f"@{node.name} .pos{p}"
    if v is None:
        return None
    if not isinstance(v, StructVal) or not v.fields or set(v.fields) - {"rx", "tx", "invalid"}:
        raise c.error(f"{what} takes .{{ .rx = DIR }}, .{{ .tx = DIRS }} or .{{ .invalid = "
                      "true }", node.pos)
    if "invalid" in v.fields:
        if v.fields["invalid"] is not True or len(v.fields) > 1:
            raise c.error(f"{what}: .invalid takes true, alone", node.pos)
        return None
    rx = tx = None
    if "rx" in v.fields:
        rx = rule(c, node, check_position_rx, what, _dirs(c, v.fields["rx"], node, f"{what}.rx"),
                  pos=node.pos)
    if "tx" in v.fields:
        tx = _dirs(c, v.fields["tx"], node, f"{what}.tx")
    return rx, tx


def _dirs(c, v, node, what: str) -> tuple:
    items = v.items if isinstance(v, TupleVal) else [v]
    return tuple(sorted({rule(c, node, check_direction, getattr(d, "name", None), what,
                              describe(d), pos=node.pos) for d in items}))


def _pop_mode(c, v, node) -> str:
    if v is None:
        return "no_pop"
    names = [k for k, on in v.fields.items() if on is True] if isinstance(v, StructVal) else []
    name = names[0] if len(names) == 1 and len(v.fields) == 1 else None
    return rule(c, node, check_pop_mode, f"@{node.name}", name, pos=node.pos)
