"""Layout validation and Program assembly.

`build_program` checks what the SDK's compiler and memcpy infrastructure would reject, before
anything runs:

- the architecture (`wse2` or `wse3`) and the channel count (1 to 16);
- the fabric: the program rectangle plus memcpy's support columns must fit (spec 12.1):
  `x_off >= 4 + west_buf`, `y_off >= 1`, `W >= x_off + width + 3 + east_buf`,
  `H >= y_off + height + 1`; and the fabric must fit on the wafer (spec 1: 757x996 PEs on
  wse2, 762x1172 on wse3). The CSL front end checks this as soon as `@set_rectangle` runs,
  before any tile's program is evaluated;
- each tile class's memory: at most 48 KiB of symbols per PE;
- exports: every `@export_symbol` matches an `@export_name` of the same name, type and kind.
"""

from __future__ import annotations

import numpy as np

from wsejax import ir
from wsejax.errors import LayoutError
from wsejax.hardware import PE_MEMORY_BYTES
from wsejax.routes import NUM_COLORS, ColorConfig, RouteList, resolve_config_columns
from wsejax.switches import build_switch_tables
from wsejax.types import DType

__all__ = ["ARCHES", "FABRIC_LIMITS", "PE_MEMORY_BYTES", "build_program", "check_fabric",
           "check_fabric_dims", "default_fabric_dims"]

ARCHES = ("wse2", "wse3")
# the whole wafer's fabric, (W, H) in PEs (spec 1: `--fabric-dims` of a hardware run)
FABRIC_LIMITS = {"wse2": (757, 996), "wse3": (762, 1172)}


def default_fabric_dims(width: int, height: int, offsets=(4, 1), west_buf: int = 0,
                        east_buf: int = 0) -> tuple[int, int]:
    """The smallest fabric that holds the rectangle and memcpy's support PEs."""
    return offsets[0] + width + 3 + east_buf, offsets[1] + height + 1


def _wafer(arch: str) -> str:
    fw, fh = FABRIC_LIMITS[arch]
    return f"the {arch} wafer's fabric of {fw}x{fh} PEs"


def check_fabric_dims(arch: str, dims, offsets, west_buf: int = 0) -> None:
    """Check what does not depend on the rectangle: `dims` (None: chosen later) fit on the
    wafer, and `offsets` leave room for memcpy's west columns. Raises LayoutError."""
    ox, oy = offsets
    if dims is not None:
        fw, fh = dims
        if min(fw, fh) < 1 or min(ox, oy) < 0:
            raise LayoutError(f"--fabric-dims={fw},{fh} --fabric-offsets={ox},{oy}: "
                              "dimensions must be positive and offsets non-negative")
        mw, mh = FABRIC_LIMITS.get(arch, (fw, fh))
        if fw > mw or fh > mh:
            raise LayoutError(f"--fabric-dims={fw},{fh} is larger than {_wafer(arch)}")
    if min(ox, oy) < 0:
        raise LayoutError(f"--fabric-offsets={ox},{oy}: offsets must be non-negative")
    if ox < 4 + west_buf:
        raise LayoutError(f"--fabric-offsets x={ox} leaves no room for memcpy's west columns: "
                          f"x must be at least {4 + west_buf}")
    if oy < 1:
        raise LayoutError(f"--fabric-offsets y={oy}: y must be at least 1")


def check_fabric(arch: str, width: int, height: int, dims, offsets, west_buf: int = 0,
                 east_buf: int = 0) -> None:
    """Check that a `width` x `height` rectangle at `offsets`, with memcpy's support columns,
    fits in the fabric `dims` (None: the smallest that holds it) and on the wafer.

    Raises:
      LayoutError: naming the dims, the offsets and what they would need, or the wafer's size.
    """
    check_fabric_dims(arch, dims, offsets, west_buf)
    ox, oy = offsets
    need_w = ox + width + 3 + east_buf
    need_h = oy + height + 1
    if dims is None:
        mw, mh = FABRIC_LIMITS.get(arch, (need_w, need_h))
        if need_w > mw or need_h > mh:
            raise LayoutError(f"a {width}x{height} rectangle at offsets ({ox}, {oy}) with "
                              f"memcpy needs a {need_w}x{need_h} fabric, larger than "
                              f"{_wafer(arch)}")
        return
    fw, fh = dims
    if fw < need_w or fh < need_h:
        raise LayoutError(f"--fabric-dims={fw},{fh} is too small for a {width}x{height} "
                          f"rectangle at offsets ({ox}, {oy}) with memcpy: it needs at least "
                          f"{need_w},{need_h}")


def _check_memory(pe: ir.PeProgram, first_pe: tuple[int, int]) -> None:
    need = pe.memory_bytes
    if need <= PE_MEMORY_BYTES:
        return
    largest = sorted(pe.symbols, key=lambda s: -s.nbytes)[:3]
    names = ", ".join(f"'{s.name}' ({s.nbytes} B)" for s in largest)
    raise LayoutError(f"PE ({first_pe[0]}, {first_pe[1]}) needs {need} bytes of memory, more "
                      f"than the {PE_MEMORY_BYTES} bytes of a PE; largest symbols: {names}")


def _check_exports(pe: ir.PeProgram, names: dict[str, ir.ExportName], where: str) -> None:
    for e in pe.exports:
        decl = names.get(e.name)
        if decl is None:
            raise LayoutError(f"{where}: @export_symbol '{e.name}' has no matching "
                              f"@export_name in the layout")
        if isinstance(e, ir.ExportData):
            if decl.kind != "data":
                raise LayoutError(f"{where}: '{e.name}' is exported as data but declared as a "
                                  "function by @export_name")
            sym = pe.symbol(e.symbol)
            if sym.dtype != decl.dtype:
                raise LayoutError(f"{where}: '{e.name}' points to {sym.dtype} data, but "
                                  f"@export_name declares [*]{decl.dtype}")
        else:
            if decl.kind != "func":
                raise LayoutError(f"{where}: '{e.name}' is exported as a function but declared "
                                  "as data by @export_name")
            f = pe.function(e.fn)
            types = tuple(t for _, t in f.params)
            if types != decl.params or f.ret is not None:
                raise LayoutError(f"{where}: function '{e.name}' has signature "
                                  f"fn({', '.join(map(str, types))}) "
                                  f"{f.ret or 'void'}, but @export_name declares "
                                  f"fn({', '.join(map(str, decl.params))}) void")


def build_program(*, width, height, arch, fabric_dims, fabric_offsets, channels, exports,
                  classes, class_of, params=(), width_west_buf=0,
                  width_east_buf=0, tables=(), routes=(), streams=(), filters=(),
                  memcpy=True, fp16=DType.f16, switches=()) -> ir.Program:
    """Validate a placed program and return it as a Program. Raises LayoutError.

    `tables` are per-PE constant tables (`[H, W]` arrays read by `ir.PeValue`), beside the
    coordinate tables "x" and "y" added here. `routes` are `((x, y, color), (rx, tx))` (or
    `(rx, tx, swap_x, swap_y)` with color swapping) of the layout; with the classes' local
    color configs they are resolved here (`wsejax.routes`).
    `streams` are memcpy's streaming colors, `(color, "h2d" | "d2h")`, which memcpy routes.
    `memcpy` is False for a program compiled without `--memcpy`: the host cannot reach it.
    `switches` are the layout's `((x, y, color), ir.Switches)`; the colors that have switches
    (here or in a class) are routed hop by hop (`wsejax.switches`), not resolved statically.
    """
    if arch not in ARCHES:
        raise LayoutError(f"--arch={arch}: expected one of {', '.join(ARCHES)}")
    if not 1 <= int(channels) <= 16:
        raise LayoutError(f"--channels={channels}: memcpy needs 1 to 16 channels")
    offsets = tuple(int(v) for v in fabric_offsets)
    given = tuple(int(v) for v in fabric_dims) if fabric_dims is not None else None
    check_fabric(arch, width, height, given, offsets, width_west_buf, width_east_buf)
    dims = given or default_fabric_dims(width, height, offsets, width_west_buf, width_east_buf)
    names = {e.name: e for e in exports}
    class_of = np.asarray(class_of, np.int32)
    for c, pe in enumerate(classes):
        ys, xs = np.nonzero(class_of == c)
        first = (int(xs[0]), int(ys[0]))
        _check_memory(pe, first)
        _check_exports(pe, names, f"PE ({first[0]}, {first[1]})")
    ys, xs = np.mgrid[0:height, 0:width]
    tables = (("x", xs.astype(np.uint16)), ("y", ys.astype(np.uint16))) + tuple(tables)
    routes = RouteList.of(routes)
    configs = _Configs(classes, class_of, routes)
    streams = _check_streams(streams, configs)
    switched = _switch_tables(width, height, classes, class_of, configs, switches)
    program = ir.Program(width=width, height=height, arch=arch, fabric_dims=dims,
                      fabric_offsets=offsets, channels=int(channels), exports=tuple(exports),
                      classes=tuple(classes), class_of=class_of, tables=tables,
                      params=tuple(params), width_west_buf=width_west_buf,
                      width_east_buf=width_east_buf, routes=routes,
                      resolved=configs.resolve(width, height, switched), streams=streams,
                      filters=tuple(filters), memcpy=bool(memcpy), fp16=fp16,
                      switches=tuple(switches))
    program.switched.update(switched)
    return program


def _check_streams(streams, configs: _Configs) -> tuple:
    seen = {}
    for color, kind in streams:
        color = int(color)
        if not 0 <= color < 21:
            raise LayoutError(f"memcpy streaming color {color}: expected a routable color "
                              "0..20 (21..23 belong to memcpy)")
        if seen.get(color, kind) != kind:
            raise LayoutError(f"color {color} is both a memcpy H2D and a D2H streaming color")
        seen[color] = kind
    for i in np.flatnonzero(np.isin(configs.cs, list(seen)))[:1].tolist():
        x, y, color = int(configs.xs[i]), int(configs.ys[i]), int(configs.cs[i])
        raise LayoutError(f"color {color} at PE ({x}, {y}): memcpy routes its streaming "
                          "colors; the program may not configure them")
    return tuple(sorted(seen.items()))


class _Configs:
    """Every color config, as columns: entry i configures color `cs[i]` at PE (`xs[i]`,
    `ys[i]`) with route `routes[rid[i]]` ((rx, tx) or (rx, tx, swap_x, swap_y)). The classes'
    local configs (class by class, color by color, PEs row-major) come first, then the
    layout's (a `RouteList`)."""

    def __init__(self, classes, class_of, layout: RouteList):
        self.routes = list(layout.routes)
        index = {r: k for k, r in enumerate(self.routes)}
        parts = []
        local = np.zeros((NUM_COLORS,) + class_of.shape, bool)    # [24, H, W]
        for c, pe in enumerate(classes):
            if not pe.routes:
                continue
            ys, xs = np.nonzero(class_of == c)
            for color, route in pe.routes:
                k = index.setdefault(route, len(index))
                if k == len(self.routes):
                    self.routes.append(route)
                parts.append((xs, ys, np.full(xs.size, color), np.full(xs.size, k)))
                local[color % NUM_COLORS, ys, xs] = True
        if parts:
            self._clash(layout, local)
        parts.append((layout.xs, layout.ys, layout.cs, layout.rid))
        self.xs, self.ys, self.cs, self.rid = (
            np.concatenate([np.asarray(p[k], np.int64) for p in parts]) for k in range(4))

    @staticmethod
    def _clash(layout: RouteList, local: np.ndarray) -> None:
        """A LayoutError for the first config of the layout that a class configures too."""
        inside = (layout.cs >= 0) & (layout.cs < NUM_COLORS) & (layout.xs >= 0) & \
            (layout.ys >= 0) & (layout.xs < local.shape[2]) & (layout.ys < local.shape[1])
        clash = np.zeros(len(layout), bool)
        clash[inside] = local[layout.cs[inside], layout.ys[inside], layout.xs[inside]]
        for i in np.flatnonzero(clash)[:1].tolist():
            x, y, color = int(layout.xs[i]), int(layout.ys[i]), int(layout.cs[i])
            raise LayoutError(f"color {color} at PE ({x}, {y}) is configured twice (by "
                              "the layout and by @set_local_color_config)")

    def as_dict(self) -> dict:
        """`(x, y, color) -> route` of every config."""
        routes = self.routes
        return dict(zip(zip(self.xs.tolist(), self.ys.tolist(), self.cs.tolist()),
                        (routes[k] for k in self.rid.tolist())))

    def resolve(self, width: int, height: int, skip) -> dict:
        """`resolve_routes` of the configs of the colors not in `skip`."""
        keep = ~np.isin(self.cs, list(skip))
        if not keep.any():
            return {}
        made = [ColorConfig(frozenset(rx), frozenset(tx), *swap)
                for rx, tx, *swap in self.routes]
        return resolve_config_columns(width, height, self.xs[keep], self.ys[keep],
                                      self.cs[keep], self.rid[keep], made)


def _switch_tables(width, height, classes, class_of, configs, switches) -> dict:
    """The hop-by-hop tables of the colors with switches (`wsejax.switches`)."""
    every = dict(switches)
    more = {col for pe in classes for col in pe.teardown_colors}
    if any(_edits_a_runtime_color(pe) for pe in classes):
        more |= _hop_by_hop_candidates(configs, switches)
    for c, pe in enumerate(classes):
        if pe.switches:
            ys, xs = np.nonzero(class_of == c)
            for color, sw in pe.switches:
                every.update({(x, y, color): sw for x, y in zip(xs.tolist(), ys.tolist())})
    if not every and not more:
        return {}
    return build_switch_tables(width, height, configs.as_dict(), every, more)


def _edits_a_runtime_color(pe: ir.PeProgram) -> bool:
    """Does `pe` rewrite the routes of a color known only at run time (`ir.RouteEditAt`)?
    Then every color the program configures moves hop by hop: those are the colors it may
    name."""
    return any(isinstance(s, ir.RouteEditAt) for f in pe.functions
               for s in ir.walk_stmts(f.body))


def _hop_by_hop_candidates(configs: _Configs, switches) -> set:
    """The colors configured at some PE, but the pairs (c, c ^ 1) that swap colors, whose
    wavelets change color on the way (`wsejax.routes`)."""
    swaps = np.array([any(r[2:]) for r in configs.routes], bool)
    swapping = {c & ~1 for c in configs.cs[swaps[configs.rid]].tolist()}
    colors = set(configs.cs.tolist()) | {col for _, _, col in switches}
    return {col for col in colors if col & ~1 not in swapping}
