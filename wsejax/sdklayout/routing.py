"""Where an `SdkLayout`'s colors go: one number per color, and the routes of every PE and
color (`paint*`, ports, the paths of connections and streams).

A route here is a list of switch positions, each `(inputs, outputs)`, two frozensets of
`Route`; `build` writes them as `@set_color_config` calls.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from wsejax.errors import LayoutError
from wsejax.sdklayout.basics import EDGE_ROUTE, OPPOSITE, STEP, Color, Route

if TYPE_CHECKING:
    from wsejax.sdklayout.api import Port, SdkLayout

__all__ = ["FABRIC_COLORS", "assign_colors", "port_cells", "route_layout"]

# the colors a route can carry (spec 4)
FABRIC_COLORS = 24



def _colors_of(layout: SdkLayout) -> list[Color]:
    seen: dict[int, Color] = {}
    for r in layout.regions:
        for params in r.params.values():
            for v in params.values():
                if isinstance(v, Color):
                    seen.setdefault(id(v), v)
        for color, _ in r.paints.values():
            seen.setdefault(id(color), color)
        for p in r.ports:
            seen.setdefault(id(p.color), p.color)
    return list(seen.values())


def _groups(layout: SdkLayout, colors: list[Color]):
    """find(id(color)) -> the id naming its group: the colors of connected ports are one."""
    group = {id(c): id(c) for c in colors}

    def find(k):
        while group[k] != k:
            k = group[k]
        return k

    for out_port, in_port in layout.connections:
        group[find(id(out_port.color))] = find(id(in_port.color))
    return find


def _fixed(colors: list[Color], find, reserved: set[int]) -> dict[int, int]:
    """group -> the number a color of it was given."""
    fixed: dict[int, int] = {}
    for c in colors:
        if c.value is None:
            continue
        g = find(id(c))
        if fixed.setdefault(g, c.value) != c.value:
            raise LayoutError(f"connect: connected ports' colors have the numbers "
                              f"{fixed[g]} and {c.value}; a wavelet keeps its color")
        if c.value >= FABRIC_COLORS or c.value in reserved:
            raise LayoutError(f"Color('{c.name}', {c.value}): not a color a layout can route "
                              f"(0..{FABRIC_COLORS - 1}, not {sorted(reserved)})")
    return fixed


def assign_colors(layout: SdkLayout, reserved: set[int]) -> dict[int, int]:
    """id(Color) -> its number. Connected ports share one; numbers given stay; the others take
    the lowest numbers free (none of `reserved`)."""
    colors = _colors_of(layout)
    find = _groups(layout, colors)
    fixed = _fixed(colors, find, reserved)
    used = set(fixed.values()) | reserved
    free = iter(n for n in range(FABRIC_COLORS) if n not in used)
    number: dict[int, int] = {}
    for c in colors:
        g = find(id(c))
        if g not in fixed:
            fixed[g] = next(free, None)
            if fixed[g] is None:
                raise LayoutError(f"compile: more colors than the {FABRIC_COLORS} the fabric "
                                  "routes")
        number[id(c)] = fixed[g]
    return number


def port_cells(port: Port) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Each PE of `port` on the fabric, with the PE beyond its edge."""
    ox, oy = port.region.origin
    dx, dy = STEP[EDGE_ROUTE[port.edge]]
    return [((ox + x, oy + y), (ox + x + dx, oy + y + dy)) for x, y in port.pes()]


class Routes:
    """The routes of a layout: (x, y, color number) -> switch positions."""

    def __init__(self, layout: SdkLayout, number: dict[int, int]):
        self.layout, self.number = layout, number
        self.table: dict[tuple[int, int, int], list] = {}
        self.owner: dict[tuple[int, int], str] = {}
        for r in layout.regions:
            ox, oy = r.origin
            for x, y in r.params:
                self.owner[(ox + x, oy + y)] = r.name

    def paint(self, x, y, color: Color, positions, extra_in=(), extra_out=()) -> None:
        self.table[(x, y, self.number[id(color)])] = [
            (frozenset(p.inputs) | frozenset(extra_in), frozenset(p.outputs) | frozenset(extra_out))
            for p in positions]

    def path(self, start, goal, first_in: Route, last_out: Route, color: int, what: str):
        """Routes of `color` along the shortest path of PEs outside every region from
        `start` (entered from `first_in`) to `goal` (left towards `last_out`)."""
        cells = _shortest(start, goal, self._blocked(color), self.bounds())
        if cells is None:
            raise LayoutError(f"compile: no path for the {what} from PE {start} to PE {goal} "
                              "outside the code regions")
        for k, (x, y) in enumerate(cells):
            came = first_in if k == 0 else _facing(cells[k], cells[k - 1])
            goes = last_out if k == len(cells) - 1 else _facing(cells[k], cells[k + 1])
            self.table[(x, y, color)] = [(frozenset({came}), frozenset({goes}))]

    def _blocked(self, color: int):
        def blocked(cell):
            return cell in self.owner or (cell[0], cell[1], color) in self.table
        return blocked

    def bounds(self) -> tuple[int, int]:
        xs = [x for x, _ in self.owner] or [0]
        ys = [y for _, y in self.owner] or [0]
        return max(xs) + 3, max(ys) + 3


def _facing(cell, other) -> Route:
    d = (other[0] - cell[0], other[1] - cell[1])
    return next(r for r, s in STEP.items() if s == d)


def _shortest(start, goal, blocked, bounds):
    w, h = bounds

    def ok(c):
        return 0 <= c[0] < w and 0 <= c[1] < h and not blocked(c)

    if not (ok(start) and ok(goal)):
        return None
    prev = {start: None}
    todo = collections.deque([start])
    while todo:
        cell = todo.popleft()
        if cell == goal:
            path = []
            while cell is not None:
                path.append(cell)
                cell = prev[cell]
            return path[::-1]
        for dx, dy in STEP.values():
            nxt = (cell[0] + dx, cell[1] + dy)
            if nxt not in prev and ok(nxt):
                prev[nxt] = cell
                todo.append(nxt)
    return None


def _connect(routes: Routes, out_port: Port, in_port: Port) -> None:
    color = routes.number[id(out_port.color)]
    out_dir, in_dir = EDGE_ROUTE[out_port.edge], EDGE_ROUTE[in_port.edge]
    for (_, a), (_, b) in zip(port_cells(out_port), port_cells(in_port)):
        routes.path(a, b, OPPOSITE[out_dir], OPPOSITE[in_dir], color,
                    f"connection of the {out_port.name()} to the {in_port.name()}")


def route_layout(layout: SdkLayout, number: dict[int, int]) -> Routes:
    """Every route of the layout: paints, then ports (which replace paints on their PEs),
    then the paths of connections; streams' relay PEs are added by the caller."""
    routes = Routes(layout, number)
    for r in layout.regions:
        ox, oy = r.origin
        for (x, y, _), (color, positions) in r.paints.items():
            routes.paint(ox + x, oy + y, color, positions)
    for r in layout.regions:
        for p in r.ports:
            side = EDGE_ROUTE[p.edge]
            for (x, y), _ in port_cells(p):
                if p.kind == "input":
                    routes.paint(x, y, p.color, p.positions, extra_in=(side,))
                else:
                    routes.paint(x, y, p.color, p.positions, extra_out=(side,))
    for out_port, in_port in layout.connections:
        _connect(routes, out_port, in_port)
    return routes
