"""Colors and routes: `@get_color`, `@set_color_config`, `@set_local_color_config` and a color
config's `.filter`."""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import builtin, nargs, rule
from wsejax.csl.builtins.switch_config import parse_switches, split_routes
from wsejax.csl.builtins.tasks import runtime_handle
from wsejax.csl.values import (
    CNum,
    ColorVal,
    PeColorVal,
    RtHandleVal,
    RVal,
    Special,
    StructVal,
    TupleVal,
    describe,
    is_comptime_value,
)
from wsejax.frontend.fabric import check_color, check_color_swap, check_direction
from wsejax.frontend.switches import FILTER_FLAGS, FILTER_KINDS, FILTER_NUMBERS, check_filter
from wsejax.types import DType


@builtin("get_color")
def _get_color(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if isinstance(v, RVal):
        return runtime_handle(c, node, env, v, "color")
    return ColorVal(rule(c, node, check_color, c.comptime_int(v, node.pos), False))


def _directions(c, v, node, what: str) -> tuple:
    items = v.items if isinstance(v, TupleVal) else [v]
    return tuple(sorted({rule(c, node, check_direction, getattr(d, "name", None), what,
                              describe(d), pos=node.pos) for d in items}))


def _color_config(c, color, config, node):
    """(color id, (rx, tx) or (rx, tx, swap_x, swap_y), filter) from a color and its
    `.{ .routes = .{ .rx, .tx, .color_swap_x, .color_swap_y } }` config."""
    if not isinstance(color, ColorVal):
        color = c.coerce(color, Special("color"), node.pos, f"@{node.name} color")
    rule(c, node, check_color, color.id, c.memcpy, pos=node.pos)
    if color.id in c.streams:
        raise c.error(f"color {color.id} is a memcpy streaming color: memcpy routes it, the "
                      "program may not configure it", node.pos)
    if c.launch is not None and color.id == c.launch[0]:
        raise c.error(f"color {color.id} is memcpy's launch color (.LAUNCH): memcpy routes it, "
                      "the program may not configure it", node.pos)
    _library_color(c, color.id, node)
    if not isinstance(config, StructVal):
        raise c.error(f"@{node.name} takes a config struct like .{{ .routes = .{{ .rx = "
                      ".{WEST}, .tx = .{RAMP} } }", node.pos)
    unknown = set(config.fields) - {"routes", "filter", "switches", "teardown"}
    if unknown:
        raise c.error(f"@{node.name}: a color config has no field .{sorted(unknown)[0]} (it "
                      "takes .routes, .switches, .filter, .teardown)", node.pos)
    routes, legacy = split_routes(c, config.fields.get("routes"), node)
    routes = _routes(c, routes, node)
    switches = parse_switches(c, config.fields.get("switches"), legacy, color.id, node,
                              config.fields.get("teardown", False))
    rx = _directions(c, routes.fields.get("rx", TupleVal([])), node, ".rx")
    tx = _directions(c, routes.fields.get("tx", TupleVal([])), node, ".tx")
    swap = _color_swap(c, routes, node)
    filt = None
    if "filter" in config.fields:
        # it filters what this PE's CE receives; what the PE forwards passes unfiltered
        filt = _filter(c, config.fields["filter"], node)
    return color.id, (rx, tx) + swap, filt, switches


# what a layout loop run over all its iterations at once checks per distinct config
color_config = _color_config


def _color_swap(c, routes, node) -> tuple:
    """`()`, or `(color_swap_x, color_swap_y)` where one is set (spec 6.5)."""
    f = routes.fields
    return rule(c, node, check_color_swap, f"@{node.name} .routes", c.arch,
                f.get("color_swap_x", False), f.get("color_swap_y", False), pos=node.pos)


def _routes(c, routes, node) -> StructVal:
    """The `.routes` struct of a color config (`.rx`, `.tx`, `.color_swap_x`, `.color_swap_y`)."""
    if isinstance(routes, TupleVal) and not routes.items:
        routes = StructVal({})
    if not isinstance(routes, StructVal):
        raise c.error(f"@{node.name}: .routes must be a struct with .rx and .tx", node.pos)
    extra = set(routes.fields) - {"rx", "tx", "color_swap_x", "color_swap_y"}
    if extra:
        raise c.error(f"@{node.name}: .routes has no field .{sorted(extra)[0]} (it takes .rx, "
                      ".tx, .color_swap_x, .color_swap_y, and the switch fields of older "
                      "programs)", node.pos)
    return routes


FILTER_FIELDS = {"kind"} | set(FILTER_FLAGS) | set(FILTER_NUMBERS)


def _filter(c, v, node) -> ir.Filter:
    """The `.filter = .{ .kind = .{ .counter = true }, ... }` of a color config (spec 6.3)."""
    what = f"@{node.name} .filter"
    if not isinstance(v, StructVal):
        raise c.error(f"{what} takes a struct like .{{ .kind = .{{ .counter = true }}, ... }}",
                      node.pos)
    extra = set(v.fields) - FILTER_FIELDS
    if extra:
        raise c.error(f"{what}: unknown field .{sorted(extra)[0]}", node.pos)
    kind = v.fields.get("kind")
    names = [k for k, on in kind.fields.items() if on is True] \
        if isinstance(kind, StructVal) else []
    if len(names) != 1 or set(kind.fields) - set(FILTER_KINDS) - {names[0]}:
        raise c.error(f"{what}: .kind takes one of .{{ .counter = true }}, "
                      ".{ .sparse_counter = true }, .{ .range = true }", node.pos)
    out = {}
    for k, val in v.fields.items():
        if k == "kind":
            continue
        if k in FILTER_FLAGS:
            if not isinstance(val, bool):
                raise c.error(f"{what}: .{k} takes a bool, got {describe(val)}", node.pos)
            out[k] = val
        else:
            out[k] = c.comptime_int(val, node.pos)
    return rule(c, node, check_filter, what, names[0], out, pos=node.pos)


def _library_color(c, color: int, node) -> None:
    """Record that the program routes `color`; a CslError where `<collectives_2d>` owns it
    (`wsejax.csl.library._collectives`)."""
    owner = getattr(c, "collective_colors", {}).get(color)
    if owner is not None:
        raise c.error(f"color {color} belongs to <collectives_2d> (given to get_params at "
                      f"{owner.file}:{owner.line}:{owner.col}); the program may not route it",
                      node.pos)
    if not hasattr(c, "routed_colors"):
        c.routed_colors = {}
    c.routed_colors.setdefault(color, node.pos)


@builtin("set_color_config")
def _set_color_config(c, node, env):
    nargs(c, node, 4)
    lay = c.layout_for(node)
    x = c.comptime_int(c.ev(node.args[0], env), node.args[0].pos)
    y = c.comptime_int(c.ev(node.args[1], env), node.args[1].pos)
    color, route, filt, switches = _color_config(c, c.ev(node.args[2], env),
                                                 c.ev(node.args[3], env), node)
    lay.set_color_config(x, y, color, route, node.pos)
    if filt is not None:
        lay.filters[(x, y, color)] = filt
    if switches is not None:
        lay.switches[(x, y, color)] = switches
    return None


@builtin("set_local_color_config")
def _set_local_color_config(c, node, env):
    nargs(c, node, 2)
    pe = env.module.pe
    if pe is None or env.fn is not None:
        raise c.error("@set_local_color_config belongs in a top-level comptime block of a PE "
                      "program", node.pos)
    color, route, filt, switches = _color_config(c, c.ev(node.args[0], env),
                                                 c.ev(node.args[1], env), node)
    if color in pe.routes:
        raise c.error(f"color {color} is configured twice", node.pos)
    pe.routes[color] = route
    if filt is not None:
        pe.filters[color] = filt
    if switches is not None:
        pe.switches[color] = switches
    return None


@builtin("get_filter_id")
def _get_filter_id(c, node, env):
    """`@get_filter_id(color)`: the comptime u16 ID of the color's filter, which
    `<tile_config>.filters` takes. The SDK leaves the number opaque: wsejax numbers a PE's
    filters by their colors (`wsejax.csl.library._filters`)."""
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if not isinstance(v, ColorVal):
        if isinstance(v, (RVal, RtHandleVal, PeColorVal)) or not is_comptime_value(v):
            raise c.error(f"@get_filter_id takes a color known at compile time, got "
                          f"{describe(v)}", node.args[0].pos)
        v = c.coerce(v, Special("color"), node.args[0].pos, "@get_filter_id")
    n = rule(c, node, check_color, v.id, c.memcpy, pos=node.args[0].pos)
    return CNum(n, DType.u16)
