"""The values an `SdkLayout` is described with: edges of a code region, router ports,
colors, routing positions."""

from __future__ import annotations

import enum

from wsejax.errors import LayoutError

__all__ = ["EDGE_ROUTE", "OPPOSITE", "STEP", "Color", "Edge", "EdgeRouting", "Route",
           "RoutingPosition", "get_edge_routing", "position_list"]


class Edge(enum.Enum):
    """A side of a code region."""

    TOP = "top"
    BOTTOM = "bottom"
    LEFT = "left"
    RIGHT = "right"


class Route(enum.Enum):
    """A router port: the PE's own (RAMP) or a neighbour's."""

    RAMP = "RAMP"
    NORTH = "NORTH"
    SOUTH = "SOUTH"
    EAST = "EAST"
    WEST = "WEST"


# the router port facing beyond each edge, and the step (dx, dy) across it
EDGE_ROUTE = {Edge.TOP: Route.NORTH, Edge.BOTTOM: Route.SOUTH, Edge.LEFT: Route.WEST,
              Edge.RIGHT: Route.EAST}
STEP = {Route.NORTH: (0, -1), Route.SOUTH: (0, 1), Route.WEST: (-1, 0), Route.EAST: (1, 0)}


class Color:
    """A fabric color; `value` None lets the compiler pick a free one."""

    def __init__(self, name: str, value: int | None = None):
        if not isinstance(name, str):
            raise LayoutError(f"Color: the name must be a str, got {name!r}")
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise LayoutError(f"Color('{name}'): the value must be a color number, got {value!r}")
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"Color({self.name!r}, {self.value!r})"


class RoutingPosition:
    """One switch position of a color's router: where wavelets come from (`set_input`) and
    where they go (`set_output`)."""

    def __init__(self):
        self.inputs: tuple[Route, ...] = ()
        self.outputs: tuple[Route, ...] = ()

    def _routes(self, what: str, routes) -> tuple[Route, ...]:
        routes = tuple(routes)
        bad = [r for r in routes if not isinstance(r, Route)]
        if bad:
            raise LayoutError(f"RoutingPosition.{what}: expected Route values, got {bad[0]!r}")
        return routes

    def set_input(self, routes) -> RoutingPosition:
        self.inputs = self._routes("set_input", routes)
        return self

    def set_output(self, routes) -> RoutingPosition:
        self.outputs = self._routes("set_output", routes)
        return self

    def key(self) -> tuple:
        return (frozenset(self.inputs), frozenset(self.outputs))

    def __repr__(self) -> str:
        return f"RoutingPosition(in={[r.name for r in self.inputs]}, " \
               f"out={[r.name for r in self.outputs]})"


class EdgeRouting:
    """The positions the PEs on one edge of a region take instead of `paint_all`'s."""

    def __init__(self, edge: Edge, positions):
        if not isinstance(edge, Edge):
            raise LayoutError(f"get_edge_routing: expected an Edge, got {edge!r}")
        self.edge = edge
        self.positions = position_list("get_edge_routing", positions)


def get_edge_routing(edge: Edge, positions) -> EdgeRouting:
    return EdgeRouting(edge, positions)


def position_list(what: str, positions) -> tuple[RoutingPosition, ...]:
    positions = tuple(positions)
    if not positions or not all(isinstance(p, RoutingPosition) for p in positions):
        raise LayoutError(f"{what}: expected a non-empty list of RoutingPosition")
    return positions


OPPOSITE = {Route.NORTH: Route.SOUTH, Route.SOUTH: Route.NORTH, Route.EAST: Route.WEST,
            Route.WEST: Route.EAST}
