"""The SDK's `SdkLayout` (spec 13.4): code regions of PEs running one CSL file, placed on the
fabric, with their params, colors and routes; ports on a region's edges; connections between an
output port and an input port; streams between a port and the host.

    layout = SdkLayout(platform)
    code = layout.create_code_region("./gv.csl", "gv", 1, 1)
    code.set_param_all("value", 550)
    artifacts = layout.compile(out_prefix="out")   # then SdkRuntime(artifacts, platform)

What the SDK leaves open and wsejax decides:
- a region that is never placed sits at (0, 0); coordinates (`place`, `read_symbol`) are those
  of the compiled rectangle, which spans (0, 0) to the farthest PE used;
- each `Color` is one fabric color: a color left without a value gets a free one at compile
  time; the two colors of connected ports become one color (wavelets keep their color);
- a connection's path leaves the output port across its edge and enters the input port across
  its edge, through PEs outside every region (the shortest such path);
- a port's routing positions give the side away from the edge; its edge side is added (an
  input port receives from beyond its edge, an output port sends there); on the port's PEs they
  replace what `paint*` gave that color;
- a stream enters or leaves a one-PE port through a relay PE outside the regions, the free PE
  nearest the port's edge, which holds the stream's `size` wavelets (32-bit each; at most
  8192) and passes them on: `SdkRuntime.send` finishes once the relay holds the data, and a
  port's output waits there until `SdkRuntime.receive` takes it.
- `set_symbol_all(name, data, width, height)`: `data` is a `height` x `width` matrix split in
  equal blocks over the region's PEs; `SdkRuntime.load()` writes each block over the global.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from wsejax.errors import LayoutError
from wsejax.sdklayout.basics import (
    Color,
    Edge,
    EdgeRouting,
    Route,
    RoutingPosition,
    get_edge_routing,
)
from wsejax.sdklayout.basics import position_list as _positions
from wsejax.sdklayout.geometry import IntRectangle, IntVector

__all__ = ["CodeRegion", "Color", "Edge", "EdgeRouting", "Port", "Route", "RoutingPosition",
           "SdkLayout", "Stream", "get_edge_routing"]


def _point(what: str, at) -> tuple[int, int]:
    if isinstance(at, IntVector):
        return at.x, at.y
    if isinstance(at, tuple) and len(at) == 2:
        return at
    raise LayoutError(f"{what}: expected an IntVector, got {at!r}")


class Port:
    """PEs on one edge of a region that receive (input) or send (output) on one color."""

    def __init__(self, region: CodeRegion, kind: str, color: Color, edge: Edge, positions,
                 size: int):
        self.region, self.kind, self.color, self.edge = region, kind, color, edge
        self.positions = positions
        self.size = size
        self.peer = None   # the Port or Stream at its other end

    def pes(self) -> list[tuple[int, int]]:
        """The port's PEs in region coordinates, in order along the edge."""
        w, h = self.region.width, self.region.height
        if self.edge in (Edge.TOP, Edge.BOTTOM):
            y = 0 if self.edge is Edge.TOP else h - 1
            return [(x, y) for x in range(w)]
        x = 0 if self.edge is Edge.LEFT else w - 1
        return [(x, y) for y in range(h)]

    def name(self) -> str:
        return f"{self.kind} port on color '{self.color.name}' of region '{self.region.name}'"


class Stream:
    """A port's link to the host: `SdkRuntime.send` (input) or `receive` (output).
    `compile` fills in where it is (`x`, `y` the relay PE) and its memcpy color."""

    def __init__(self, port: Port):
        self.port = port
        self.kind = "h2d" if port.kind == "input" else "d2h"
        self.size = port.size
        self.x = self.y = self.color = None


class CodeRegion:
    """A `width` x `height` block of PEs running one CSL file."""

    def __init__(self, layout: SdkLayout, path: str, name: str, width: int, height: int):
        self.layout, self.path, self.name = layout, path, name
        self.width, self.height = width, height
        self.origin: tuple[int, int] | None = None
        self.params: dict[tuple[int, int], dict] = {(x, y): {} for y in range(height)
                                                    for x in range(width)}
        self.paints: dict[tuple[int, int, int], tuple] = {}   # (x, y, id(color)) -> positions
        self.symbols: dict[tuple[int, int, str], np.ndarray] = {}   # (x, y, name) -> values
        self.ports: list[Port] = []

    def _inside(self, what: str, x: int, y: int) -> None:
        if not (0 <= x < self.width and 0 <= y < self.height):
            raise LayoutError(f"{what}: PE ({x}, {y}) is outside region '{self.name}' "
                              f"({self.width}x{self.height})")

    def _set(self, what: str, points, name, value) -> None:
        if isinstance(name, Color):
            name, value = name.name, name
        elif not isinstance(name, str):
            raise LayoutError(f"{what}: expected a param name or a Color, got {name!r}")
        elif value is None:
            raise LayoutError(f"{what}('{name}'): no value given")
        if not isinstance(value, (int, Color)) or isinstance(value, bool):
            raise LayoutError(f"{what}('{name}'): a value is an integer or a Color, got "
                              f"{value!r}")
        for x, y in points:
            self._inside(what, x, y)
            self.params[(x, y)][name] = value

    def set_param_all(self, name, value=None) -> None:
        """Param `name` = `value` on every PE; `set_param_all(color)` sets the param named as
        the color to its number."""
        self._set("set_param_all", list(self.params), name, value)

    def set_param(self, at, name, value=None) -> None:
        self._set("set_param", [_point("set_param", at)], name, value)

    def set_param_range(self, rect: IntRectangle, name, value=None) -> None:
        self._set("set_param_range", _rect("set_param_range", rect), name, value)

    def set_symbol(self, at, name: str, data) -> None:
        """Global `name` of one PE starts with `data` (its elements in memory order)."""
        x, y = _point("set_symbol", at)
        self._inside("set_symbol", x, y)
        self.symbols[(x, y, name)] = np.asarray(data).reshape(-1)

    def set_symbol_all(self, name: str, data, width: int, height: int) -> None:
        """`data`, a `height` x `width` matrix (row-major), split into equal blocks, one per
        PE of the region: PE (x, y)'s global `name` starts with block (y, x), row-major."""
        data = np.asarray(data)
        if data.size != width * height or width % self.width or height % self.height:
            raise LayoutError(f"set_symbol_all('{name}'): {data.size} elements do not form a "
                              f"{height}x{width} matrix in equal blocks over the "
                              f"{self.width}x{self.height} PEs of region '{self.name}'")
        bw, bh = width // self.width, height // self.height
        blocks = data.reshape(self.height, bh, self.width, bw)
        for x, y in self.params:
            self.symbols[(x, y, name)] = blocks[y, :, x, :].reshape(-1).copy()

    def color(self, name: str, value: int | None = None) -> Color:
        """A new color of this region."""
        return Color(name, value)

    def _paint(self, what: str, points, color: Color, positions) -> None:
        if not isinstance(color, Color):
            raise LayoutError(f"{what}: expected a Color, got {color!r}")
        positions = _positions(what, positions)
        for x, y in points:
            self._inside(what, x, y)
            self.paints[(x, y, id(color))] = (color, positions)

    def paint(self, at, color: Color, positions) -> None:
        """The routes of `color` at one PE."""
        self._paint("paint", [_point("paint", at)], color, positions)

    def paint_range(self, rect: IntRectangle, color: Color, positions) -> None:
        self._paint("paint_range", _rect("paint_range", rect), color, positions)

    def paint_all(self, color: Color, positions, edges=()) -> None:
        """The routes of `color` on every PE; an `EdgeRouting` replaces them on its edge."""
        self._paint("paint_all", list(self.params), color, positions)
        for e in edges:
            if not isinstance(e, EdgeRouting):
                raise LayoutError(f"paint_all: expected EdgeRouting values, got {e!r}")
            port = Port(self, "edge", color, e.edge, e.positions, 0)
            self._paint("paint_all", port.pes(), color, e.positions)

    def _port(self, kind: str, color, edge, positions, size) -> Port:
        what = f"create_{kind}_port"
        if not isinstance(color, Color):
            raise LayoutError(f"{what}: expected a Color, got {color!r}")
        if not isinstance(edge, Edge):
            raise LayoutError(f"{what}: expected an Edge, got {edge!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise LayoutError(f"{what}: size must be a positive integer, got {size!r}")
        port = Port(self, kind, color, edge, _positions(what, positions), size)
        self.ports.append(port)
        return port

    def create_input_port(self, color: Color, edge: Edge, positions, size: int,
                          prefix: str = "") -> Port:
        """PEs on `edge` that receive `color` from beyond it."""
        return self._port("input", color, edge, positions, size)

    def create_output_port(self, color: Color, edge: Edge, positions, size: int,
                           prefix: str = "") -> Port:
        """PEs on `edge` that send `color` beyond it."""
        return self._port("output", color, edge, positions, size)

    def place(self, x: int, y: int) -> None:
        """Put the region's upper-left PE at (x, y)."""
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (x, y)):
            raise LayoutError(f"place: region '{self.name}' needs non-negative integer "
                              f"coordinates, got ({x!r}, {y!r})")
        self.origin = (x, y)


def _rect(what: str, rect) -> list[tuple[int, int]]:
    if not isinstance(rect, IntRectangle):
        raise LayoutError(f"{what}: expected an IntRectangle, got {rect!r}")
    return rect.points()


class SdkLayout:
    """The layout being built for `platform` (its `target` picks wse2 or wse3)."""

    def __init__(self, platform=None):
        target = getattr(platform, "target", None)
        self.arch = getattr(target, "value", "wse3") if target is not None else "wse3"
        self.regions: list[CodeRegion] = []
        self.connections: list[tuple[Port, Port]] = []
        self.streams: list[Stream] = []

    def create_code_region(self, csl_file, name: str, width: int, height: int) -> CodeRegion:
        """`width` x `height` PEs running `csl_file` (relative to the working directory)."""
        path = pathlib.Path(os.fspath(csl_file)).resolve()
        if not path.is_file():
            raise LayoutError(f"create_code_region('{name}'): no CSL file {csl_file}")
        if any(r.name == name for r in self.regions):
            raise LayoutError(f"create_code_region: a region named '{name}' exists already")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1
                   for v in (width, height)):
            raise LayoutError(f"create_code_region('{name}'): width and height must be "
                              f"positive integers, got {width!r}, {height!r}")
        region = CodeRegion(self, str(path), name, width, height)
        self.regions.append(region)
        return region

    def _free(self, what: str, port) -> None:
        if not isinstance(port, Port) or port.kind not in ("input", "output"):
            raise LayoutError(f"{what}: expected a port, got {port!r}")
        if port.peer is not None:
            raise LayoutError(f"{what}: the {port.name()} is connected already")

    def connect(self, out_port: Port, in_port: Port) -> None:
        """Route `out_port`'s wavelets to `in_port`."""
        for p, kind in ((out_port, "output"), (in_port, "input")):
            self._free("connect", p)
            if p.kind != kind:
                raise LayoutError(f"connect: expected an {kind} port, got the {p.name()}")
        if len(out_port.pes()) != len(in_port.pes()):
            raise LayoutError(f"connect: the {out_port.name()} has {len(out_port.pes())} PEs, "
                              f"the {in_port.name()} {len(in_port.pes())}")
        out_port.peer, in_port.peer = in_port, out_port
        self.connections.append((out_port, in_port))

    def _stream(self, what: str, port: Port, kind: str) -> Stream:
        self._free(what, port)
        if port.kind != kind:
            raise LayoutError(f"{what}: expected an {kind} port, got the {port.name()}")
        if len(port.pes()) != 1:
            raise LayoutError(f"{what}: a stream reaches a one-PE port only; the {port.name()} "
                              f"has {len(port.pes())} PEs (funnel them through an adaptor "
                              "region)")
        stream = Stream(port)
        port.peer = stream
        self.streams.append(stream)
        return stream

    def create_input_stream(self, port: Port) -> Stream:
        """Host-to-device data into input port `port` (`SdkRuntime.send`)."""
        return self._stream("create_input_stream", port, "input")

    def create_output_stream(self, port: Port) -> Stream:
        """Device-to-host data out of output port `port` (`SdkRuntime.receive`)."""
        return self._stream("create_output_stream", port, "output")

    def compile(self, out_prefix: str = "out", cslc_prefix: str = ""):
        """Compile the layout into directory `out_prefix`; returns what `SdkRuntime` takes."""
        from wsejax.sdklayout.build import compile_layout
        return compile_layout(self, out_prefix)
