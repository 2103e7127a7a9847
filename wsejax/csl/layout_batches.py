"""What a layout loop run over all its iterations at once records (`wsejax.csl.layout_vec`):
its tiles and color configs kept as batches of coordinate arrays, beside the ones placed one
at a time in `LayoutRecorder.tiles` / `.routes`.

`Batches` is a mixin of the CSL front end's layout recorder: it holds, per color and for the
tiles, which PEs the batches took (`[H * W]` bools), so that a tile or config placed twice
is an error whichever way either was placed; it commits a loop's records only where none
would be an error (the loop then runs per iteration and reports it).
"""

from __future__ import annotations

import itertools

import numpy as np

from wsejax.csl.layout_vec import RouteBatch, TileBatch
from wsejax.errors import CslError
from wsejax.frontend.fabric import fail
from wsejax.routes import RouteList

__all__ = ["Batches"]


class Batches:
    """Tiles and color configs placed in batches (needs `rect`, `tiles`, `routes`, `filters`,
    `switches`, `resolve_file` and `progress` of the recorder)."""

    def init_batches(self) -> None:
        self.batches: list = []         # (file, TileBatch)
        self.route_batches: list = []   # RouteBatch
        self._tiles_taken = None        # [H * W] bool: the PEs a batch placed
        self._routes_taken: dict = {}   # color -> [H * W] bool

    def placed(self) -> int:
        """How many tiles have their program."""
        return len(self.tiles) + sum(b.xs.size for _, b in self.batches)

    def check_tile(self, x: int, y: int) -> None:
        """RuleError where a batch placed tile (x, y)."""
        w = self.rect[0] if self.rect else 0
        if self._tiles_taken is not None and 0 <= x < w and 0 <= y < self.rect[1] and \
                self._tiles_taken[y * w + x]:
            fail(f"@set_tile_code({x}, {y}) called twice")

    def check_route(self, x: int, y: int, color: int) -> None:
        """RuleError where a batch configured `color` at PE (x, y)."""
        taken = self._routes_taken.get(color)
        w = self.rect[0] if self.rect else 0
        if taken is not None and 0 <= x < w and 0 <= y < self.rect[1] and taken[y * w + x]:
            fail(f"color {color} at PE ({x}, {y}) is configured twice")

    def commit(self, records: list) -> bool:
        """Record the batches of a layout loop; False, recording nothing, where one would be
        an error."""
        if self.rect is None:
            return False
        tiles = [r for r in records if isinstance(r, TileBatch)]
        routes = [r for r in records if isinstance(r, RouteBatch)]
        tile_parts = [(r.xs, r.ys, -1) for r in tiles]
        route_parts = [(r.xs, r.ys, r.color) for r in routes]
        if not (self._fresh(tile_parts, self.tiles) and self._fresh(route_parts, self.routes)):
            return False
        try:
            files = [self.resolve_file(r.path, r.env, r.pos) for r in tiles]
        except CslError:
            return False
        self._take(tile_parts + route_parts)
        self.batches.extend(zip(files, tiles))
        for r in routes:
            self.route_batches.append(r)
            if r.filter is not None or r.switches is not None:
                keys = list(zip(r.xs.tolist(), r.ys.tolist(), itertools.repeat(r.color)))
                if r.filter is not None:
                    self.filters.update(zip(keys, itertools.repeat(r.filter)))
                if r.switches is not None:
                    self.switches.update(zip(keys, itertools.repeat(r.switches)))
        self.progress.update(self.placed())
        return True

    def _fresh(self, parts: list, recorded: dict) -> bool:
        """Whether the keys of `parts` (`(xs, ys, color)`, color -1 for tiles) lie inside the
        rectangle, once each, and were not placed before."""
        if not parts:
            return True
        w, h = self.rect
        xs = np.concatenate([p[0] for p in parts])
        ys = np.concatenate([p[1] for p in parts])
        if xs.size and (xs.min() < 0 or ys.min() < 0 or xs.max() >= w or ys.max() >= h):
            return False
        cs = np.concatenate([np.full(p[0].size, p[2], np.int64) for p in parts])
        for color in np.unique(cs).tolist():
            mine = cs == color
            flat = ys[mine] * w + xs[mine]
            if np.bincount(flat, minlength=w * h).max(initial=0) > 1:
                return False
            taken = self._tiles_taken if color < 0 else self._routes_taken.get(color)
            if taken is not None and taken[flat].any():
                return False
        if not recorded:
            return True
        keys = zip(xs.tolist(), ys.tolist()) if parts[0][2] < 0 else \
            zip(xs.tolist(), ys.tolist(), cs.tolist())
        return recorded.keys().isdisjoint(keys)

    def _take(self, parts: list) -> None:
        w, h = self.rect
        for xs, ys, color in parts:
            if color < 0:
                if self._tiles_taken is None:
                    self._tiles_taken = np.zeros(w * h, bool)
                taken = self._tiles_taken
            else:
                taken = self._routes_taken.setdefault(color, np.zeros(w * h, bool))
            taken[ys * w + xs] = True

    def route_list(self) -> RouteList:
        """Every color config of the layout, `((x, y, color), route)` in (x, y, color)
        order."""
        index: dict = {}
        parts = []
        if self.routes:
            keys = np.asarray(list(self.routes), np.int64).reshape(-1, 3)
            rid = [index.setdefault(r, len(index)) for r, _ in self.routes.values()]
            parts.append((keys[:, 0], keys[:, 1], keys[:, 2], np.asarray(rid, np.int64)))
        for b in self.route_batches:
            k = index.setdefault(b.route, len(index))
            parts.append((b.xs, b.ys, np.full(b.xs.size, b.color), np.full(b.xs.size, k)))
        if not parts:
            return RouteList((), (), (), (), ())
        return RouteList(*(np.concatenate([p[k] for p in parts]) for k in range(4)),
                         tuple(index))

    def tile_pos(self, x: int, y: int):
        """The position of the @set_tile_code that placed tile (x, y), or None."""
        if (x, y) in self.tiles:
            return self.tiles[(x, y)][2]
        for _, b in self.batches:
            if ((b.xs == x) & (b.ys == y)).any():
                return b.pos
        return None

    def route_pos(self, x: int, y: int, color: int):
        """The position of the @set_color_config of `color` at PE (x, y), or None."""
        if (x, y, color) in self.routes:
            return self.routes[(x, y, color)][1]
        for b in self.route_batches:
            if b.color == color and ((b.xs == x) & (b.ys == y)).any():
                return b.pos
        return None
