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
from wsejax.frontend.fabric import check_direction
from wsejax.hardware import (
    MEMCPY_COLORS,
)
from wsejax.layout import ARCHES, build_program
from wsejax.tile_classes import Group, TableNames, tile_classes, vary_color
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
    lb = _layout()
    if lb.rect is not None:
        raise LayoutError("@set_rectangle called twice")
    if int(width) < 1 or int(height) < 1:
        raise LayoutError(f"@set_rectangle({width}, {height}): dimensions must be positive")
    lb.rect = (int(width), int(height))


def set_tile_code(x: int, y: int, pe_program: Callable, params: dict | None = None) -> None:
    """`@set_tile_code(x, y, program, params)`: once per coordinate of the rectangle."""
    lb = _layout()
    if lb.rect is None:
        raise LayoutError("@set_tile_code before @set_rectangle")
    w, h = lb.rect
    if not (0 <= x < w and 0 <= y < h):
        raise LayoutError(f"@set_tile_code({x}, {y}) is outside the {w}x{h} rectangle")
    if (x, y) in lb.tiles:
        raise LayoutError(f"@set_tile_code({x}, {y}) called twice")
    lb.tiles[(x, y)] = (pe_program, dict(params or {}))


def _ports(v, what: str, err) -> tuple[str, ...]:
    """Router ports given as one direction or a sequence of them, as sorted unique names."""
    items = (v,) if isinstance(v, str) else v
    try:
        items = tuple(items)
    except TypeError:
        _rule(check_direction, None, what, repr(v), error=err)
    return tuple(sorted({_rule(check_direction, d, what, repr(d), error=err) for d in items}))


def _route(color, rx, tx, what: str, err) -> tuple[int, tuple]:
    c = _color(color, what, err)
    return c, (_ports(rx, f"{what} rx", err), _ports(tx, f"{what} tx", err))


def set_color_config(x: int, y: int, color, *, rx=(), tx=()) -> None:
    """`@set_color_config(x, y, color, .{ .routes = .{ .rx = rx, .tx = tx } })` in the layout:
    PE (x, y)'s router accepts `color` from the ports `rx` and copies it to the ports `tx`
    (each a direction, csl.NORTH ... csl.RAMP, or a sequence of them). Once per PE and color.
    """
    lb = _layout()
    if lb.rect is None:
        raise LayoutError("@set_color_config before @set_rectangle")
    w, h = lb.rect
    x = _comptime_int(x, "@set_color_config x")
    y = _comptime_int(y, "@set_color_config y")
    if not (0 <= x < w and 0 <= y < h):
        raise LayoutError(f"@set_color_config({x}, {y}, ...) is outside the {w}x{h} rectangle")
    c, route = _route(color, rx, tx, "@set_color_config", LayoutError)
    if (x, y, c) in lb.routes:
        raise LayoutError(f"@set_color_config: color {c} at PE ({x}, {y}) is configured twice")
    lb.routes[(x, y, c)] = route


def set_local_color_config(color, *, rx=(), tx=()) -> None:
    """`@set_local_color_config(color, .{ .routes = .{ .rx = rx, .tx = tx } })` at the top
    level of a PE program: the route of `color` at every PE running this program."""
    pb = _top_level("set_local_color_config")
    c, route = _route(color, rx, tx, "set_local_color_config", ProgramError)
    if c in pb.routes:
        raise ProgramError(f"set_local_color_config: color {c} is configured twice")
    pb.routes[c] = route


def export_name(name: str, type_, mutable: bool | None = None) -> None:
    """`@export_name(name, type, mutable)`: `type` is `csl.pointer(T)` or `csl.fn_type(...)`."""
    lb = _layout()
    if name in lb.exports:
        raise LayoutError(f"@export_name('{name}') called twice")
    if isinstance(type_, PointerType):
        if mutable is None:
            raise LayoutError(f"@export_name('{name}'): data names need a mutability")
        lb.exports[name] = ir.ExportName(name, "data", type_.dtype, bool(mutable))
    elif isinstance(type_, FnType):
        if len(type_.params) > 15:
            raise LayoutError(f"@export_name('{name}'): functions take at most 15 params")
        lb.exports[name] = ir.ExportName(name, "func", None, False, type_.params)
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


def _tile_groups(tiles: dict) -> list:
    """The layout's tiles as `wsejax.tile_classes` groups: one per PE program and params
    other than numbers (a tile with unhashable params alone), declaring the numbers that vary
    and, where they can be, their per-PE stand-ins (tables `<function name>:<param>`)."""
    grouped: dict = {}
    for (x, y), (prog, p) in sorted(tiles.items(), key=lambda t: (t[0][1], t[0][0])):
        try:
            shape = tuple(sorted((k, None if _is_number(v) or isinstance(v, Color)
                                  else _freeze(v)) for k, v in p.items()))
        except TypeError:
            shape = (x, y)
        grouped.setdefault((prog, shape), []).append((x, y, p))
    names = TableNames()
    groups = []
    for (prog, _), members in grouped.items():
        g = Group(prog, members)
        stem = getattr(prog, "__name__", "pe_program")
        for k, v in g.params[0].items():
            if all(isinstance(p[k], Color) for p in g.params):
                vary_color(g, k, [p[k].id for p in g.params], names, stem, _PerPeColor,
                           MEMCPY_COLORS)
                continue
            if isinstance(v, Color) or any(isinstance(p[k], Color) for p in g.params):
                g.vary(k, [_freeze(p[k]) for p in g.params])    # colors and numbers: split
                continue
            if not _is_number(v):
                continue
            keys = [_number_key(p[k]) for p in g.params]
            if len(set(keys)) == 1:
                continue
            found = _per_pe_numbers(keys)
            per_pe = None
            if found is not None:
                kind, t, default, extremes, entries = found
                table = names.new(f"{stem}:{k}", t)
                per_pe = (_PerPeParam(table, kind, extremes, default), table, entries)
            g.vary(k, keys, per_pe)
        groups.append(g)
    return groups


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
    _stack().append(lb)
    try:
        layout_fn(**(params or {}))
    finally:
        _stack().remove(lb)
    if lb.rect is None:
        raise LayoutError("the layout never called @set_rectangle")
    w, h = lb.rect
    missing = [(x, y) for y in range(h) for x in range(w)
               if (x, y) not in lb.tiles]
    if missing:
        raise LayoutError(f"no @set_tile_code for PE {missing[0]} "
                          f"({len(missing)} of {w * h} PEs have none)")
    classes, class_of, tables = tile_classes(
        _tile_groups(lb.tiles), h, w,
        lambda prog, p: build_pe_program(prog, p, getattr(prog, "__name__", "pe_program"), arch),
        Exception)
    return build_program(
        width=w, height=h, arch=arch, fabric_dims=fabric_dims, fabric_offsets=fabric_offsets,
        channels=channels, exports=tuple(lb.exports.values()), classes=tuple(classes),
        class_of=class_of, params=tuple(sorted((params or {}).items())),
        width_west_buf=width_west_buf, width_east_buf=width_east_buf, tables=tables,
        routes=tuple(sorted(lb.routes.items())), streams=streams)
