"""`SdkLayout.compile`: the layout written as a CSL layout file (one `@set_tile_code` per PE,
one `@set_color_config` per PE and color), compiled by the CSL front end like any other.

Streams go through a relay PE near their port's edge (`relay.csl`), which the host reaches
with streaming memcpy on a color of its own and which holds the whole stream (so that one host
command finishes before the next starts, as wsejax runs them); PEs outside every region that
only route run `idle.csl`.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

from wsejax.artifacts import save_program
from wsejax.csl import compile_csl
from wsejax.errors import LayoutError
from wsejax.hardware import MEMCPY_COLORS
from wsejax.sdklayout.basics import EDGE_ROUTE, OPPOSITE, STEP, Color, Route
from wsejax.sdklayout.routing import Routes, assign_colors, port_cells, route_layout

if TYPE_CHECKING:
    from wsejax.sdklayout.api import SdkLayout, Stream

__all__ = ["LayoutArtifacts", "compile_layout"]

HERE = pathlib.Path(__file__).resolve().parent
MAX_STREAMS = 4   # memcpy streams per direction
# the elements a stream's relay PE holds (32 KiB of its memory)
MAX_STREAM_SIZE = 8192


class LayoutArtifacts:
    """A compiled layout, as `SdkRuntime(artifacts, platform)` takes it."""

    def __init__(self, artifacts_path: str, colors: dict[str, int], symbols: tuple = ()):
        self.artifacts_path = artifacts_path
        self.colors = colors
        # (x, y, name, values): globals `SdkRuntime.load()` writes (the `set_symbol*` calls)
        self.symbols = symbols

    def __repr__(self) -> str:
        return f"LayoutArtifacts({self.artifacts_path!r})"


def _place(layout: SdkLayout) -> None:
    """Unplaced regions at (0, 0); no two regions share a PE."""
    taken: dict[tuple[int, int], str] = {}
    for r in layout.regions:
        if r.origin is None:
            r.origin = (0, 0)
        ox, oy = r.origin
        for x, y in r.params:
            other = taken.setdefault((ox + x, oy + y), r.name)
            if other != r.name:
                raise LayoutError(f"compile: regions '{other}' and '{r.name}' both cover PE "
                                  f"({ox + x}, {oy + y})")


def _stream_colors(layout: SdkLayout, number: dict[int, int]) -> dict[int, int]:
    """id(Stream) -> its memcpy streaming color: the lowest numbers no Color took."""
    big = [s for s in layout.streams if s.size > MAX_STREAM_SIZE]
    if big:
        raise LayoutError(f"compile: the stream of the {big[0].port.name()} moves "
                          f"{big[0].size} elements; a stream moves at most {MAX_STREAM_SIZE}")
    kinds = [s.kind for s in layout.streams]
    for kind in ("h2d", "d2h"):
        if kinds.count(kind) > MAX_STREAMS:
            raise LayoutError(f"compile: at most {MAX_STREAMS} {kind.upper()} streams, got "
                              f"{kinds.count(kind)}")
    used = set(number.values()) | set(MEMCPY_COLORS)
    free = [n for n in range(24) if n not in used]
    if len(free) < len(layout.streams):
        raise LayoutError("compile: no color left for the streams")
    return {id(s): free[k] for k, s in enumerate(layout.streams)}


def _relay_cell(routes: Routes, start, taken: set) -> tuple[int, int] | None:
    """The PE nearest `start` (itself first) outside every region and every other relay."""
    w, h = routes.bounds()
    seen, todo = {start}, [start]
    while todo:
        cell = todo.pop(0)
        if cell not in routes.owner and cell not in taken:
            return cell
        for dx, dy in STEP.values():
            nxt = (cell[0] + dx, cell[1] + dy)
            if nxt not in seen and 0 <= nxt[0] < w and 0 <= nxt[1] < h \
                    and nxt not in routes.owner:
                seen.add(nxt)
                todo.append(nxt)
    return None


def _relay(routes: Routes, stream: Stream, color: int, taken: set) -> tuple:
    """The relay PE of `stream` with its tile params; the path between it and the port."""
    port = stream.port
    (_, beyond), = port_cells(port)
    cell = _relay_cell(routes, beyond, taken) if min(beyond) >= 0 else None
    if cell is None:
        raise LayoutError(f"compile: no PE outside the code regions near PE {beyond} for the "
                          f"stream of the {port.name()}")
    taken.add(cell)
    toward_port = OPPOSITE[EDGE_ROUTE[port.edge]]
    port_color = routes.number[id(port.color)]
    what = f"stream of the {port.name()}"
    if stream.kind == "h2d":
        routes.path(cell, beyond, Route.RAMP, toward_port, port_color, what)
        frm, to = color, port_color
    else:
        routes.path(beyond, cell, OPPOSITE[EDGE_ROUTE[port.edge]], Route.RAMP, port_color,
                    what)
        frm, to = port_color, color
    stream.x, stream.y, stream.color = cell[0], cell[1], color
    return cell[0], cell[1], {"size": stream.size, "from_color": frm, "to_color": to}


def _value(v, number: dict[int, int]) -> int:
    return number[id(v)] if isinstance(v, Color) else int(v)


def _struct(params: dict) -> str:
    return ".{" + ", ".join(f".{k} = {v}" for k, v in params.items()) + "}"


def _routes_text(positions) -> str:
    def dirs(rs):
        return ".{" + ", ".join(sorted(r.name for r in rs)) + "}"

    (rx, tx), rest = positions[0], positions[1:]
    text = f".routes = .{{.rx = {dirs(rx)}, .tx = {dirs(tx)}}}"
    if not rest:
        return text
    pos = []
    for k, (i, o) in enumerate(rest, 1):
        if i != rx and o != tx:
            raise LayoutError("compile: a routing position after the first changes either "
                              f"its inputs or its outputs, not both ({sorted(r.name for r in i)}"
                              f" -> {sorted(r.name for r in o)})")
        pos.append(f".pos{k} = .{{.tx = {dirs(o)}}}" if i == rx else
                   f".pos{k} = .{{.rx = {dirs(i)}}}")
    if len(rest) > 3:
        raise LayoutError("compile: a router holds at most 4 routing positions")
    return text + ", .switches = .{" + ", ".join(pos) + "}"


def _layout_text(layout, routes, number, relays, rect) -> str:
    w, h = rect
    lines = []
    if relays:
        h2d = [c for (_, _, p), s in relays for c in [p["from_color"]] if s.kind == "h2d"]
        d2h = [c for (_, _, p), s in relays for c in [p["to_color"]] if s.kind == "d2h"]
        fields = [f".width = {w}", f".height = {h}"]
        fields += [f".MEMCPYH2D_{k} = {c}" for k, c in enumerate(h2d, 1)]
        fields += [f".MEMCPYD2H_{k} = {c}" for k, c in enumerate(d2h, 1)]
        lines.append(f'const memcpy = @import_module("<memcpy/get_params>", '
                     f'.{{{", ".join(fields)}}});')
    lines += ["layout {", f"  @set_rectangle({w}, {h});"]
    tiles = {}
    for r in layout.regions:
        ox, oy = r.origin
        for (x, y), params in r.params.items():
            vals = {k: _value(v, number) for k, v in params.items()}
            tiles[(ox + x, oy + y)] = (r.path, _struct(vals))
    for (x, y, params), _ in relays:
        tiles[(x, y)] = (str(HERE / "relay.csl"),
                         _struct({"memcpy_params": f"memcpy.get_params({x})", **params}))
    for y in range(h):
        for x in range(w):
            path, args = tiles.get((x, y), (str(HERE / "idle.csl"), ".{}"))
            lines.append(f'  @set_tile_code({x}, {y}, "{path}", {args});')
    for (x, y, c), positions in sorted(routes.table.items()):
        lines.append(f"  @set_color_config({x}, {y}, @get_color({c}), "
                     f".{{{_routes_text(positions)}}});")
    lines.append("}")
    return "\n".join(lines) + "\n"


def compile_layout(layout: SdkLayout, out_prefix: str) -> LayoutArtifacts:
    """Compile `layout` into directory `out_prefix` (see the module docstring)."""
    if not layout.regions:
        raise LayoutError("compile: the layout has no code region")
    _place(layout)
    reserved = set(MEMCPY_COLORS) if layout.streams else set()
    number = assign_colors(layout, reserved)
    streams = _stream_colors(layout, number) if layout.streams else {}
    routes = route_layout(layout, number)
    taken: set = set()
    relays = [(_relay(routes, s, streams[id(s)], taken), s) for s in layout.streams]
    cells = list(routes.owner) + [(x, y) for x, y, _ in routes.table]
    rect = (max(x for x, _ in cells) + 1, max(y for _, y in cells) + 1)
    out = pathlib.Path(out_prefix)
    (out / "sdklayout").mkdir(parents=True, exist_ok=True)
    top = out / "sdklayout" / "layout.csl"
    top.write_text(_layout_text(layout, routes, number, relays, rect))
    program = compile_csl(top, arch=layout.arch, memcpy=bool(relays),
                          memcpy_files=[HERE / "relay.csl"])
    colors = {}
    for r in layout.regions:
        for params in r.params.values():
            colors.update({v.name: number[id(v)] for v in params.values() if isinstance(v, Color)})
    save_program(program, out, params={}, colors=colors)
    symbols = tuple((r.origin[0] + x, r.origin[1] + y, name, values)
                    for r in layout.regions for (x, y, name), values in r.symbols.items())
    return LayoutArtifacts(str(out), colors, symbols)
