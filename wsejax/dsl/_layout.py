"""Layouts of the Python API: `set_rectangle`, `set_tile_code`, color configs, exports, and
`compile`, which groups tiles into tile classes and builds the Program."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from wsejax import ir
from wsejax.dsl._builders import (
    build_pe_program,
)
from wsejax.dsl._context import (
    _layout,
    _LayoutBuilder,
    _rule,
    _stack,
    _top_level,
)
from wsejax.dsl._fabric import (
    Color,
    _color,
    _comptime_int,
)
from wsejax.dsl._values import (
    _is_number,
    _PerPeColor,
    _PerPeParam,
)
from wsejax.errors import LayoutError, ProgramError
from wsejax.frontend.fabric import check_color_swap, check_direction
from wsejax.frontend.switches import (
    FILTER_KINDS,
    SWITCH_FIELDS,
    check_filter,
    check_switch_flag,
    make_switches,
    positions_of,
)
from wsejax.frontend.tiles import ParamKinds, group_tiles
from wsejax.hardware import (
    MEMCPY_COLORS,
)
from wsejax.layout import ARCHES, build_program
from wsejax.tile_classes import tile_classes
from wsejax.types import (
    DType,
    bool_,
    f32,
    i32,
    u32,
)

# Layout


@dataclass(frozen=True)
class PointerType:
    """The type `[*]T` of an exported data name."""

    dtype: DType


@dataclass(frozen=True)
class FnType:
    """The type `fn(T1, ...) void` of an exported function."""

    params: tuple[DType, ...]


def pointer(dtype: DType) -> PointerType:
    """`[*]T`."""
    return PointerType(dtype)


def fn_type(*params: DType) -> FnType:
    """`fn(T1, ...) void`."""
    return FnType(tuple(params))


def set_rectangle(width: int, height: int) -> None:
    """`@set_rectangle(w, h)`: exactly once, before any set_tile_code."""
    _rule(_layout().record_rectangle, int(width), int(height), error=LayoutError)


def set_tile_code(x: int, y: int, pe_program: Callable, params: dict | None = None) -> None:
    """`@set_tile_code(x, y, program, params)`: once per coordinate of the rectangle."""
    _rule(_layout().record_tile, x, y, (pe_program, dict(params or {})), error=LayoutError)


def _ports(v, what: str, err) -> tuple[str, ...]:
    """Router ports given as one direction or a sequence of them, as sorted unique names."""
    items = (v,) if isinstance(v, str) else v
    try:
        items = tuple(items)
    except TypeError:
        _rule(check_direction, None, what, repr(v), error=err)
    return tuple(sorted({_rule(check_direction, d, what, repr(d), error=err) for d in items}))


def _route(color, rx, tx, what: str, err, swap=(False, False), arch=None) -> tuple[int, tuple]:
    c = _color(color, what, err)
    swapping = _rule(check_color_swap, f"{what} routes", arch, *swap, error=err)
    return c, (_ports(rx, f"{what} rx", err), _ports(tx, f"{what} tx", err)) + swapping


def _switches(what: str, arch, color: int, switches, teardown, err) -> ir.Switches | None:
    """A color config's `switches` (a dict of the `.switches` fields: pos1..pos3, each
    `{"rx": dir, "tx": dirs}` with either or both, or None; current_switch_pos; ring_mode;
    pop_mode, a name of `ir.POP_MODES`) and `teardown`, checked as the CSL front end does."""
    if switches is None:
        _rule(check_switch_flag, what, "teardown", teardown, error=err)
        return ir.Switches(teardown=True) if teardown else None
    if not isinstance(switches, dict) or set(switches) - set(SWITCH_FIELDS):
        raise err(f"{what}: switches takes a dict of {', '.join(SWITCH_FIELDS)}, got "
                  f"{switches!r}")
    positions = _rule(positions_of, what, switches, error=err)
    current = _comptime_int(switches.get("current_switch_pos", 0),
                            f"{what} current_switch_pos")
    return _rule(make_switches, what, arch, color, positions, current,
                 switches.get("ring_mode", False), switches.get("pop_mode", "no_pop"),
                 teardown, error=err)


def _filter(what: str, filter, err) -> ir.Filter | None:
    """A color config's `filter`: a dict with "kind" ("counter", "sparse_counter", "range")
    and the `.filter` fields (spec 6.3), checked as the CSL front end does."""
    if filter is None:
        return None
    if not isinstance(filter, dict) or "kind" not in filter:
        raise err(f"{what}: filter takes a dict with a kind (one of "
                  f"{', '.join(FILTER_KINDS)}) and its fields, got {filter!r}")
    fields = {k: v for k, v in filter.items() if k != "kind"}
    return _rule(check_filter, f"{what} filter", filter["kind"], fields, error=err)


def set_color_config(x: int, y: int, color, *, rx=(), tx=(), color_swap_x=False,
                     color_swap_y=False, switches=None, teardown=False, filter=None) -> None:
    """`@set_color_config(x, y, color, .{ .routes = .{ .rx = rx, .tx = tx } })` in the layout:
    PE (x, y)'s router accepts `color` from the ports `rx` and copies it to the ports `tx`
    (each a direction, csl.NORTH ... csl.RAMP, or a sequence of them). Once per PE and color.
    `color_swap_x` / `color_swap_y`: color swapping (spec 6.5; WSE-2 only). `switches`,
    `teardown` and `filter`: the config's `.switches` (spec 6.2; see `_switches`),
    `.teardown` (spec 6.4) and `.filter` (spec 6.3; see `_filter`).
    """
    lb = _layout()
    x = _comptime_int(x, "@set_color_config x")
    y = _comptime_int(y, "@set_color_config y")
    c, route = _route(color, rx, tx, "@set_color_config", LayoutError,
                      (color_swap_x, color_swap_y), lb.arch)
    sw = _switches("@set_color_config", lb.arch, c, switches, teardown, LayoutError)
    filt = _filter("@set_color_config", filter, LayoutError)
    _rule(lb.record_route, x, y, c, route, error=LayoutError)
    if sw is not None:
        lb.switches[(x, y, c)] = sw
    if filt is not None:
        lb.filters[(x, y, c)] = filt


def set_local_color_config(color, *, rx=(), tx=(), color_swap_x=False,
                           color_swap_y=False, switches=None, teardown=False,
                           filter=None) -> None:
    """`@set_local_color_config(color, .{ .routes = .{ .rx = rx, .tx = tx } })` at the top
    level of a PE program: the route of `color` at every PE running this program (with
    `switches`, `teardown` and `filter` as `set_color_config` takes them)."""
    pb = _top_level("set_local_color_config")
    c, route = _route(color, rx, tx, "set_local_color_config", ProgramError,
                      (color_swap_x, color_swap_y), pb.arch)
    if c in pb.routes:
        raise ProgramError(f"set_local_color_config: color {c} is configured twice")
    sw = _switches("set_local_color_config", pb.arch, c, switches, teardown, ProgramError)
    filt = _filter("set_local_color_config", filter, ProgramError)
    pb.routes[c] = route
    if sw is not None:
        pb.switches[c] = sw
    if filt is not None:
        pb.filters[c] = filt


def export_name(name: str, type_, mutable: bool | None = None) -> None:
    """`@export_name(name, type, mutable)`: `type` is `csl.pointer(T)` or `csl.fn_type(...)`."""
    lb = _layout()
    if isinstance(type_, PointerType):
        _rule(lb.record_data_export, name, type_.dtype, None if mutable is None else bool(mutable),
              error=LayoutError)
    elif isinstance(type_, FnType):
        _rule(lb.record_fn_export, name, type_.params, error=LayoutError)
    else:
        raise LayoutError(f"@export_name('{name}'): type must be csl.pointer(T) or "
                          f"csl.fn_type(...), got {type_!r}")


def _freeze(v):
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.str, v.shape, v.tobytes())
    hash(v)
    return v


def _stream_colors(colors, what: str) -> tuple[int, ...]:
    colors = (colors,) if isinstance(colors, (Color, int, np.integer)) else tuple(colors)
    if len(colors) > 4:
        raise LayoutError(f"{what}: memcpy streams on at most 4 colors, got {len(colors)}")
    out = tuple(_color(c, what, LayoutError) for c in colors)
    if len(set(out)) != len(out):
        raise LayoutError(f"{what}: color {sorted(c for c in out if out.count(c) > 1)[0]} "
                          "is given twice")
    return out

def _number_key(v) -> tuple:
    """`(kind, value)` of a Python or numpy number, kind being bool, int or float."""
    t = type(v)
    if t is int or t is float or t is bool:
        return t, v
    kind = bool if isinstance(v, np.bool_) else int if isinstance(v, np.integer) else float
    return kind, kind(v)


def _per_pe_numbers(keys: list) -> tuple | None:
    """The kind, table type, `_expr` type (None where the numbers take different ones),
    extremes and `[n]` table entries of a param's numbers, given as `_number_key`s (one per
    tile); None where they have no one kind or do not fit a 32-bit table."""
    kinds = {kind for kind, _ in keys}
    if len(kinds) != 1:
        return None
    (kind,) = kinds
    raw = np.asarray([v for _, v in keys])
    lo, hi = raw.min().item(), raw.max().item()
    if kind is bool:
        t, default = bool_, bool_
    elif kind is float:
        t, default = f32, f32
    elif -(2**31) <= lo and hi < 2**31:
        t, default = i32, i32
    elif 0 <= lo and hi < 2**32:
        t, default = u32, (u32 if lo >= 2**31 else None)
    else:
        return None
    return kind, t, default, (lo, hi), raw.astype(t.np)


def _number_keys(program, name: str, values: list):
    """The keys of a param's numbers and, where they can be, their per-PE value: a
    `_PerPeParam` reading table `<function name>:<param>`; None where all are equal."""
    keys = [_number_key(u) for u in values]
    if len(set(keys)) == 1:
        return None
    found = _per_pe_numbers(keys)
    if found is None:
        return keys, None
    kind, t, default, extremes, entries = found
    return keys, (t, entries, lambda table: _PerPeParam(table, kind, extremes, default))


def _shape(x: int, y: int, params: dict):
    """What tiles share to be one group: their params other than numbers and colors (a tile
    with unhashable params is alone)."""
    try:
        return tuple(sorted((k, None if _is_number(v) or isinstance(v, Color) else _freeze(v))
                            for k, v in params.items()))
    except TypeError:
        return (x, y)


_PARAM_KINDS = ParamKinds(
    shape=_shape,
    may_vary=lambda v: _is_number(v) or isinstance(v, Color),
    color_ids=lambda program, name, values: (
        [u.id for u in values] if all(isinstance(u, Color) for u in values) else None),
    is_color=lambda v: isinstance(v, Color),
    freeze=_freeze,
    numbers=_number_keys,
    stem=lambda program: getattr(program, "__name__", "pe_program"),
    color_stand_in=_PerPeColor,
    reserved_colors=MEMCPY_COLORS,   # every dsl program is compiled with memcpy
)


def _tile_groups(tiles: dict) -> list:
    """The layout's tiles as `wsejax.tile_classes` groups (`wsejax.frontend.tiles`)."""
    return group_tiles(((x, y, prog, p) for (x, y), (prog, p)
                        in sorted(tiles.items(), key=lambda t: (t[0][1], t[0][0]))),
                       _PARAM_KINDS)


def compile_layout(layout_fn: Callable, *, arch: str = "wse2", fabric_dims=None,
                   fabric_offsets=(4, 1), channels: int = 1, width_west_buf: int = 0,
                   width_east_buf: int = 0, params: dict | None = None, h2d_colors=(),
                   d2h_colors=()) -> ir.Program:
    """Run a layout function and build the Program.

    `fabric_dims` defaults to the smallest fabric memcpy accepts (spec 12.1). `params` are
    passed to `layout_fn` as keyword arguments. PEs with the same PE program and params share
    one tile class, traced once; so do PEs whose params differ only in numbers (ints, floats,
    bools) that the program uses as runtime values: those read per-PE tables
    (`wsejax.tile_classes`; a number the program needs in Python splits the class by its
    values). `h2d_colors` and `d2h_colors` are memcpy's streaming colors (up to 4 each, like
    `MEMCPYH2D_DATA_<n>_ID`; spec 12.4): memcpy routes them, so the program may not configure
    them.
    """
    if arch not in ARCHES:
        raise LayoutError(f"--arch={arch}: expected one of {', '.join(ARCHES)}")
    streams = tuple((c, "h2d") for c in _stream_colors(h2d_colors, "compile h2d_colors"))
    streams += tuple((c, "d2h") for c in _stream_colors(d2h_colors, "compile d2h_colors"))

    lb = _LayoutBuilder()
    lb.arch = arch
    _stack().append(lb)
    try:
        layout_fn(**(params or {}))
    finally:
        _stack().remove(lb)
    w, h = _rule(lb.check_complete, error=LayoutError)
    classes, class_of, tables = tile_classes(
        _tile_groups(lb.tiles), h, w,
        lambda prog, p: build_pe_program(prog, p, getattr(prog, "__name__", "pe_program"), arch),
        Exception)
    return build_program(
        width=w, height=h, arch=arch, fabric_dims=fabric_dims, fabric_offsets=fabric_offsets,
        channels=channels, exports=tuple(lb.exports.values()), classes=tuple(classes),
        class_of=class_of, params=tuple(sorted((params or {}).items())),
        width_west_buf=width_west_buf, width_east_buf=width_east_buf, tables=tables,
        routes=tuple(sorted(lb.routes.items())), streams=streams,
        filters=tuple(sorted(lb.filters.items())), switches=tuple(sorted(lb.switches.items())))
