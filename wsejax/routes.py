"""Static routes of the fabric: for each color, which PE's ramp receives what another PE injects.

Contract (csl-spec §6.1). A program configures, per PE and color, a `ColorConfig`: the input ports
the router accepts (`rx`) and the output ports every accepted wavelet is copied to (`tx`).
`resolve_routes(width, height, configs)` follows them once, at load time:

- a wavelet the CE of PE p emits on color c enters p's router from RAMP; it is accepted only if
  RAMP is in p's `rx` for c. Those PEs are the *sources* of c;
- an accepted wavelet goes to every port in `tx`: RAMP delivers it to the PE's own CE; a direction
  sends it to that neighbour (EAST x+1, WEST x-1, SOUTH y+1, NORTH y-1; (0, 0) is the north-west
  corner), where it arrives on the opposite port and is accepted only if that port is in the
  neighbour's `rx` for c; it then continues with the neighbour's `tx`;
- the result, per color with at least one config, is a `ColorRoutes`: the sources and, for every
  PE, which source its ramp receives from and over how many router-to-router hops.

A route is rejected with a `LayoutError` naming the color and the PEs when a wavelet from a source
would: leave the rectangle while its other copies reach ramps (on hardware memcpy PEs sit there,
and take no user color); reach a neighbour that does not accept it ("unroutable wavelet": the
hardware stalls); reach a router along two paths, from two sources or twice from one ("merge":
the spec leaves the order of simultaneous arrivals undefined, so this covers any ramp receiving
from two sources); or return to a router it has passed (a cycle: it would circulate forever).
Configs no source reaches are not checked; a color whose configs have no RAMP in any `rx` simply
has no sources. A wavelet accepted by a router whose `tx` is empty goes nowhere (not an error),
and so does the route of a source that reaches no ramp at all and leaves the rectangle: the SDK's
programs configure such routes on PEs that never send on them, and a wavelet sent there faults
at run time ("nowhere to go"). Malformed input (a direction that is not one of DIRECTIONS, a
color outside 0..23, a PE outside the rectangle) is a `LayoutError` too.
Color swapping (§6.5): where a config of color c or c ^ 1 sets `swap_x` / `swap_y`, the pair is
resolved as one graph over (PE, color) nodes (see `_resolve_pair`), so a ramp of color c may
receive what a CE sent on c ^ 1: `ColorRoutes.source_colors` names the color each source sent on,
and both colors of the pair get a `ColorRoutes`. The checks above hold on that graph.
Switches (§6.2), filters and teardown are not modelled here; whether a color is reserved by
memcpy (21, 22, 23 with --memcpy) is the caller's check.

Algorithm (numpy; no per-PE Python loop). The accepted links u -> v form a graph. A PE with exactly
one incoming link that is not a source hangs off that link: it is reached iff its parent is, with
the same source and one hop more. Pointer jumping gives every PE the head of its chain of such
links and its distance to it (log2 of the longest chain numpy steps). Heads are sources, PEs nothing
links to, and *junctions* (two or more incoming links, legal while at most one carries traffic);
junctions are entered round by round from heads reached in the round before (one numpy step per
junction along the longest route). Then the reached PEs are checked for the errors above.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wsejax.errors import LayoutError

__all__ = ["DIRECTIONS", "NUM_COLORS", "ColorConfig", "ColorRoutes", "RouteList",
           "resolve_config_columns",
           "resolve_routes", "routes_table", "source_colors"]

DIRECTIONS = ("NORTH", "SOUTH", "EAST", "WEST", "RAMP")
NUM_COLORS = 24

_BIT = {d: 1 << i for i, d in enumerate(DIRECTIONS)}
_RAMP = _BIT["RAMP"]
_CONFIGURED = 1 << len(DIRECTIONS)  # set in the rx grid of every PE that has a config for the color
# (direction, dx, dy, the port the wavelet arrives on at the neighbour)
_STEPS = (("NORTH", 0, -1, "SOUTH"), ("SOUTH", 0, 1, "NORTH"),
          ("EAST", 1, 0, "WEST"), ("WEST", -1, 0, "EAST"))


@dataclass(frozen=True)
class ColorConfig:
    """The route of one color at one PE: input ports accepted (rx) and output ports (tx).

    Each is a set of DIRECTIONS; a single direction string or any iterable is accepted and
    stored as a frozenset. Directions are validated by `resolve_routes`, which knows the PE."""

    rx: frozenset[str]
    tx: frozenset[str]
    swap_x: bool = False    # color_swap_x: wavelets arriving from EAST/WEST (§6.5)
    swap_y: bool = False    # color_swap_y: wavelets arriving from NORTH/SOUTH

    def __post_init__(self):
        for name in ("rx", "tx"):
            ports = getattr(self, name)
            object.__setattr__(self, name,
                               frozenset((ports,) if isinstance(ports, str) else ports))


@dataclass(frozen=True, eq=False)
class ColorRoutes:
    """Resolved routes of one color over a width x height rectangle.

    `sources` are in row-major order. The destinations of source k are
    `np.argwhere(dest_source == k)` (as (y, x))."""

    color: int
    sources: np.ndarray      # [n_src, 2] int32 (x, y): PEs whose ramp injects on this color
    dest_source: np.ndarray  # [H, W] int32: index into `sources` of what this PE's ramp
    #                          receives on this color, or -1
    hops: np.ndarray         # [H, W] int32: router-to-router hops from that source
    #                          (0 = itself), or -1
    source_colors: np.ndarray | None = None  # [n_src] int32: the color each source's CE sent
    #                          on (None: this color; another only with color swapping)

    @property
    def height(self) -> int:
        return self.dest_source.shape[0]

    @property
    def width(self) -> int:
        return self.dest_source.shape[1]


def routes_table(routes: ColorRoutes) -> np.ndarray:
    """The gather table of a color: [H, W] int32, the flat index `y * W + x` of the source PE
    whose wavelets this PE's ramp receives, or -1."""
    flat = routes.sources[:, 1] * routes.width + routes.sources[:, 0]
    return np.append(flat, -1).astype(np.int32)[routes.dest_source]


def source_colors(routes: ColorRoutes) -> np.ndarray:
    """[n_src] int32: the color each source of `routes` sent on (its own color without
    swapping)."""
    if routes.source_colors is not None:
        return routes.source_colors
    return np.full(routes.sources.shape[0], routes.color, np.int32)


class RouteList(Sequence):
    """The `((x, y, color), route)` entries of a layout's color configs in (x, y, color) order,
    held as columns: entry i is `((xs[i], ys[i], cs[i]), routes[rid[i]])`. A wafer's layout
    has a million entries; as columns they take a few bytes each, not a tuple's hundreds.
    Equal to any sequence of the same entries (a tuple of them included)."""

    def __init__(self, xs, ys, cs, rid, routes: tuple):
        xs, ys, cs = (np.asarray(v, np.int32).reshape(-1) for v in (xs, ys, cs))
        order = _order(xs, ys, cs)
        self.xs, self.ys, self.cs = xs[order], ys[order], cs[order]    # [n]
        self.rid = np.asarray(rid, np.int32).reshape(-1)[order]        # [n] into routes
        self.routes = tuple(routes)

    @classmethod
    def of(cls, items) -> RouteList:
        """The entries `items` (`((x, y, color), route)`, or a RouteList) as a RouteList."""
        if isinstance(items, RouteList):
            return items
        items = list(items)
        index: dict = {}
        rid = [index.setdefault(route, len(index)) for _, route in items]
        keys = np.asarray([k for k, _ in items], np.int64).reshape(-1, 3)
        return cls(keys[:, 0], keys[:, 1], keys[:, 2], rid, tuple(index))

    def __len__(self) -> int:
        return int(self.xs.size)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tuple(self[k] for k in range(*i.indices(len(self))))
        return ((int(self.xs[i]), int(self.ys[i]), int(self.cs[i])), self.routes[self.rid[i]])

    def __iter__(self):
        routes = self.routes
        return zip(zip(self.xs.tolist(), self.ys.tolist(), self.cs.tolist()),
                   (routes[k] for k in self.rid.tolist()))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return False
        return all(a == b for a, b in zip(self, other))

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"RouteList({len(self)} entries)"


def _order(xs: np.ndarray, ys: np.ndarray, cs: np.ndarray) -> np.ndarray:
    """The (x, y, color) order of entries: one integer key per entry where they fit."""
    if xs.size and min(xs.min(), ys.min(), cs.min()) >= 0 and cs.max() < NUM_COLORS and \
            int(xs.max()) * (int(ys.max()) + 1) * NUM_COLORS < (1 << 62):
        key = (xs.astype(np.int64) * (int(ys.max()) + 1) + ys) * NUM_COLORS + cs
        return np.argsort(key, kind="stable")
    return np.lexsort((cs, ys, xs))


def resolve_routes(width: int, height: int,
                   configs: dict[tuple[int, int, int], ColorConfig]) -> dict[int, ColorRoutes]:
    """Resolve the routes `configs` ((x, y, color) -> ColorConfig, program-rectangle coordinates)
    over a width x height rectangle: one `ColorRoutes` per color that has a config.

    Raises LayoutError for malformed configs and for routes that go off the rectangle, are not
    accepted, merge or cycle (see the module docstring)."""
    for v in (width, height):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise LayoutError(f"routes: the rectangle must be at least 1x1, got {width}x{height}")
    width, height = int(width), int(height)
    if not configs:
        return {}
    xs, ys, cs = _parse_keys(configs)
    first: dict = {}        # id(config) -> its index among the distinct configs
    values = list(configs.values())
    rid = np.fromiter((first.setdefault(id(v), len(first)) for v in values), np.int64,
                      len(values))
    distinct = list({id(v): v for v in values}.values())
    return resolve_config_columns(width, height, xs, ys, cs, rid, distinct)


def resolve_config_columns(width: int, height: int, xs: np.ndarray, ys: np.ndarray,
                           cs: np.ndarray, rid: np.ndarray, configs: list) -> dict:
    """`resolve_routes` of configs given as columns: entry i configures color `cs[i]` at PE
    (`xs[i]`, `ys[i]`) with `configs[rid[i]]` (all `[n]` integer arrays)."""
    width, height = int(width), int(height)
    if not cs.size:
        return {}
    for i in np.flatnonzero((cs < 0) | (cs >= NUM_COLORS))[:1]:
        raise LayoutError(f"color {cs[i]}: route configured at PE ({xs[i]}, {ys[i]}), "
                          f"but colors are 0..{NUM_COLORS - 1}")
    for i in np.flatnonzero((xs < 0) | (xs >= width) | (ys < 0) | (ys >= height))[:1]:
        raise LayoutError(f"color {cs[i]}: route configured at PE ({xs[i]}, {ys[i]}), outside "
                          f"the {width}x{height} rectangle")
    rx_masks, tx_masks = _parse_configs(configs, rid, xs, ys, cs)
    flat = ys * width + xs
    routes = {}
    swapped = _swapped_pairs(configs, rid, cs, rx_masks)
    for pair in sorted(swapped):
        routes.update(_resolve_pair(pair, width, height,
                                    _pair_masks(pair, width * height, flat, cs, rx_masks,
                                                tx_masks)))
    for color in np.unique(cs).tolist():
        if color & ~1 in swapped:
            continue
        mine = cs == color
        rx = np.zeros(width * height, np.uint8)
        tx = np.zeros(width * height, np.uint8)
        rx[flat[mine]] = rx_masks[mine] | _CONFIGURED
        tx[flat[mine]] = tx_masks[mine]
        routes[color] = _resolve_color(color, width, height, rx, tx)
    return routes


# ------------------------------------------------------------------------------------------------
# Input checks


def _parse_keys(configs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    keys = list(configs)
    try:
        ok = set(map(len, keys)) == {3}
        kinds = set(map(type, itertools.chain.from_iterable(keys)))
    except TypeError:
        ok = False
    ok = ok and all(issubclass(k, (int, np.integer)) and k is not bool for k in kinds)
    if not ok:
        bad = next(k for k in keys if not _is_key(k))
        raise LayoutError(f"routes: config key {bad!r} is not (x, y, color) integers")
    xyc = np.fromiter(itertools.chain.from_iterable(keys), np.int64, 3 * len(keys))
    xyc = xyc.reshape(-1, 3)
    return xyc[:, 0], xyc[:, 1], xyc[:, 2]


def _is_key(key) -> bool:
    return (isinstance(key, tuple) and len(key) == 3
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in key))


def _parse_configs(configs, rid, xs, ys, cs) -> tuple[np.ndarray, np.ndarray]:
    """Per config entry, the rx and tx port bit masks (uint8). Each distinct config is checked
    once; the per-entry work stays in numpy (a full wafer has a million entries)."""
    def first(k: int) -> int:
        return int(np.argmax(rid == k))

    for k, cfg in enumerate(configs):
        if not isinstance(cfg, ColorConfig):
            i = first(k)
            raise LayoutError(f"color {cs[i]}: PE ({xs[i]}, {ys[i]}): the route is a "
                              f"{type(cfg).__name__}, not a ColorConfig")
    masks = []
    for name in ("rx", "tx"):
        mask_of = np.zeros(len(configs), np.uint8)
        for k, cfg in enumerate(configs):
            ports = getattr(cfg, name)
            for port in ports:
                if port not in _BIT:
                    i = min(first(j) for j, other in enumerate(configs)
                            if getattr(other, name) == ports)
                    raise LayoutError(f"color {cs[i]}: PE ({xs[i]}, {ys[i]}) has an invalid "
                                      f"{name} direction {port!r} (expected one of "
                                      f"{', '.join(DIRECTIONS)})")
                mask_of[k] |= _BIT[port]
        masks.append(mask_of[rid])
    return masks[0], masks[1]


# ------------------------------------------------------------------------------------------------
# One color


def _resolve_color(color: int, width: int, height: int, rx: np.ndarray,
                   tx: np.ndarray) -> ColorRoutes:
    """rx, tx: [H*W] port masks of the color (rx carries _CONFIGURED where a config exists)."""
    n = width * height
    is_source = (rx & _RAMP) != 0
    sources = np.flatnonzero(is_source)
    none = np.full((height, width), -1, np.int32)
    if sources.size == 0:
        return ColorRoutes(color, np.zeros((0, 2), np.int32), none, none.copy())
    pe = np.arange(n)
    x, y = pe % width, pe // width

    # The links u -> v of the router graph, and per direction the PEs whose sends go off the
    # rectangle or are refused by the neighbour.
    link_u, link_v, dead_ends = [], [], []
    for direction, dx, dy, port in _STEPS:
        sends = (tx & _BIT[direction]) != 0
        inside = (x + dx >= 0) & (x + dx < width) & (y + dy >= 0) & (y + dy < height)
        u = np.flatnonzero(sends & inside)
        v = u + dy * width + dx
        accepted = (rx[v] & _BIT[port]) != 0
        link_u.append(u[accepted])
        link_v.append(v[accepted])
        dead_ends.append((np.flatnonzero(sends & ~inside), u[~accepted]))
    g = _follow(is_source, np.concatenate(link_u), np.concatenate(link_v))
    receives = g.reached & ((tx & _RAMP) != 0)
    delivers = np.zeros(sources.size, bool)  # [n_src]: some ramp receives the source
    delivers[g.src[receives]] = True
    _check(_Names(width, height, (color,), None), rx, sources, g, delivers, dead_ends, is_source)

    return ColorRoutes(
        color=color,
        sources=np.stack([sources % width, sources // width], axis=1).astype(np.int32),
        dest_source=np.where(receives, g.src, -1).reshape(height, width).astype(np.int32),
        hops=np.where(receives, g.hops, -1).reshape(height, width).astype(np.int32),
    )


# ------------------------------------------------------------------------------------------------
# Color swapping (§6.5): a pair of colors c, c ^ 1 whose configs swap at some PE is one graph
# over (PE, color) nodes, node k * W * H + pe for color `pair + k`. Color k of a PE takes, from
# a port of its rx, what arrives there on color k ^ 1 if it swaps on that axis (color_swap_x:
# EAST/WEST, color_swap_y: NORTH/SOUTH), else what arrives on k; with both set, it takes from its
# own CE what the CE sends on k ^ 1. So a wavelet may enter the router as both colors (only one
# swaps), as the other (both swap), or as neither (only its own color swaps: a stall).

_SWAP_X = 1 << 6   # in a config's rx mask, besides the ports and _CONFIGURED
_SWAP_Y = 1 << 7


def _swapped_pairs(configs, rid, cs, rx_masks) -> set:
    """The even colors of the pairs some config of which swaps; marks the swaps in rx_masks."""
    if not any(cfg.swap_x or cfg.swap_y for cfg in configs):
        return set()
    sx = np.array([bool(cfg.swap_x) for cfg in configs])[rid]
    sy = np.array([bool(cfg.swap_y) for cfg in configs])[rid]
    rx_masks |= np.where(sx, _SWAP_X, 0).astype(np.uint8) | np.where(sy, _SWAP_Y, 0).astype(
        np.uint8)
    return set((cs[sx | sy] & ~1).tolist())


def _pair_masks(pair, n, flat, cs, rx_masks, tx_masks) -> tuple[np.ndarray, np.ndarray]:
    """[2, n] rx and tx masks of the colors pair, pair + 1 (rx with _CONFIGURED, swaps)."""
    rx = np.zeros((2, n), np.uint8)
    tx = np.zeros((2, n), np.uint8)
    for k in range(2):
        mine = cs == pair + k
        rx[k, flat[mine]] = rx_masks[mine] | _CONFIGURED
        tx[k, flat[mine]] = tx_masks[mine]
    return rx, tx


def _pair_links(width, height, rx, tx):
    """The links of a pair's node graph, and per direction its dead ends (off the edge,
    refused), as node ids."""
    n = width * height
    pe = np.arange(n)
    x, y = pe % width, pe // width
    link_u, link_v = [], []
    dead_ends = [([], []) for _ in _STEPS]
    for k in range(2):
        for d, (direction, dx, dy, port) in enumerate(_STEPS):
            swap = _SWAP_X if port in ("EAST", "WEST") else _SWAP_Y
            sends = (tx[k] & _BIT[direction]) != 0
            inside = (x + dx >= 0) & (x + dx < width) & (y + dy >= 0) & (y + dy < height)
            u = np.flatnonzero(sends & inside)
            v = u + dy * width + dx
            taken = np.zeros(u.size, bool)
            for kv in range(2):
                takes = ((rx[kv, v] & _BIT[port]) != 0) & (((rx[kv, v] & swap) != 0) == (kv != k))
                link_u.append(k * n + u[takes])
                link_v.append(kv * n + v[takes])
                taken |= takes
            dead_ends[d][0].append(k * n + np.flatnonzero(sends & ~inside))
            dead_ends[d][1].append(k * n + u[~taken])
    dead_ends = [(np.concatenate(a), np.concatenate(b)) for a, b in dead_ends]
    return np.concatenate(link_u), np.concatenate(link_v), dead_ends


def _resolve_pair(pair, width, height, masks) -> dict[int, ColorRoutes]:
    """The routes of both colors of a swapping pair (each configured at some PE, or not)."""
    rx, tx = masks
    n = width * height
    is_source = ((rx & _RAMP) != 0).reshape(-1)
    sources = np.flatnonzero(is_source)
    # the color each source node's CE sent on: its own, or the other with both swaps
    both = ((rx & _SWAP_X) != 0) & ((rx & _SWAP_Y) != 0)
    sent_k = (sources // n) ^ both.reshape(-1)[sources]
    # one source per (PE, color sent): a wavelet may enter the router as both colors
    inject, of_source = np.unique(sources % n * 2 + sent_k, return_inverse=True)
    link_u, link_v, dead_ends = _pair_links(width, height, rx, tx)
    g = _follow(is_source, link_u, link_v)
    receives = g.reached & ((tx & _RAMP) != 0).reshape(-1)
    # a wavelet entering as both colors is delivered if either copy is: then neither may leave
    # the fabric
    delivered = np.zeros(inject.size, bool)
    delivered[of_source[g.src[receives]]] = True
    delivers = delivered[of_source]
    _check(_Names(width, height, (pair, pair + 1), pair + sent_k), rx.reshape(-1), sources, g,
           delivers, dead_ends, is_source)
    dest = np.where(receives, np.append(of_source, -1)[g.src], -1).reshape(2, height, width)
    hops = np.where(receives, g.hops, -1).reshape(2, height, width)
    at = inject // 2
    xy = np.stack([at % width, at // width], axis=1).astype(np.int32).reshape(-1, 2)
    return {pair + k: ColorRoutes(pair + k, xy, dest[k].astype(np.int32),
                                  hops[k].astype(np.int32),
                                  (pair + inject % 2).astype(np.int32))
            for k in range(2)}


@dataclass(frozen=True)
class _Graph:
    """What `_follow` finds: per node, the source reaching it (-1: none) and the hops from it;
    the links into heads; each node's parent link (-1 at heads) and the link that entered each
    junction (-1 elsewhere)."""

    src: np.ndarray
    hops: np.ndarray
    reached: np.ndarray
    cross_u: np.ndarray
    cross_v: np.ndarray
    parent: np.ndarray
    entry: np.ndarray


def _follow(is_source: np.ndarray, link_u: np.ndarray, link_v: np.ndarray) -> _Graph:
    """Which source reaches each node of the graph of links u -> v (see the module docstring)."""
    n = is_source.size
    sources = np.flatnonzero(is_source)
    # Nodes with one incoming link that are not sources hang off it; the other links enter heads.
    hangs = (np.bincount(link_v, minlength=n) == 1) & ~is_source
    parent = np.full(n, -1, np.int64)
    tree = hangs[link_v]
    parent[link_v[tree]] = link_u[tree]
    cross_u, cross_v = link_u[~tree], link_v[~tree]
    top, dist = _chain_heads(parent)

    # Which source reaches each head, in rounds: sources, then junctions entered from reached nodes.
    head_source = np.full(n, -1, np.int64)
    head_hops = np.full(n, -1, np.int64)
    entry = np.full(n, -1, np.int64)
    head_source[sources] = np.arange(sources.size)
    head_hops[sources] = 0
    order = np.argsort(top[cross_u], kind="stable")  # links into heads, by the head of their tail
    cross_u, cross_v = cross_u[order], cross_v[order]
    tail_head = top[cross_u]
    frontier = sources  # heads reached in the last round
    while frontier.size:
        lo = np.searchsorted(tail_head, frontier, "left")
        count = np.searchsorted(tail_head, frontier, "right") - lo
        out = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(count.sum())
        out = out[head_source[cross_v[out]] < 0]
        frontier, first = np.unique(cross_v[out], return_index=True)
        u = cross_u[out[first]]
        head_source[frontier] = head_source[top[u]]
        head_hops[frontier] = head_hops[top[u]] + dist[u] + 1
        entry[frontier] = u
    src = head_source[top]
    hops = np.where(src >= 0, head_hops[top] + dist, -1)
    return _Graph(src, hops, src >= 0, cross_u, cross_v, parent, entry)


def _chain_heads(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pointer jumping over `parent` (-1 at heads): each PE's head and its distance from it.
    PEs on (or hanging off) a closed loop of parents have no head: they end on a PE of the loop,
    which is not a head, so no source reaches them."""
    n = parent.size
    ptr = np.where(parent >= 0, parent, np.arange(n))
    dist = (parent >= 0).astype(np.int64)
    for _ in range(n.bit_length() + 1):  # 2**steps > n: every chain has reached its head
        after = ptr[ptr]
        if np.array_equal(after, ptr):
            break
        dist += dist[ptr]
        ptr = after
    return ptr, dist


# ------------------------------------------------------------------------------------------------
# Errors


@dataclass(frozen=True)
class _Names:
    """How errors name the nodes of a route graph: node `k * W * H + y * W + x` is PE (x, y) on
    `colors[k]`; `sent[s]` is the color source s's CE sent on (None: its node's color)."""

    width: int
    height: int
    colors: tuple
    sent: np.ndarray | None

    def at(self, p) -> str:
        p = int(p) % (self.width * self.height)
        return f"PE ({p % self.width}, {p // self.width})"

    def color(self, p) -> int:
        return self.colors[int(p) // (self.width * self.height)]

    def on(self, p) -> str:
        """' on color c' where the graph has more than one color."""
        return f" on color {self.color(p)}" if len(self.colors) > 1 else ""

    def source(self, sources, s) -> str:
        node = sources[s]
        if self.sent is None:
            return self.at(node)
        return f"{self.at(node)} (sent on color {self.sent[s]})"


def _dead_ends_and_merges(g, delivers, dead_ends, is_source):
    """Every node where a route goes wrong, as (kinds, nodes, directions): kind 0 sends off the
    edge, 1 is refused by its neighbour (both with the direction's index), 2 is a merge
    (direction -1)."""
    src, reached = g.src, g.reached
    kinds, pes, dirs = [], [], []
    for d, (off_edge, refused) in enumerate(dead_ends):
        for kind, where in ((0, off_edge), (1, refused)):
            where = where[reached[where]]
            if kind == 0:
                where = where[delivers[src[where]]]
            kinds.append(np.full(where.size, kind))
            pes.append(where)
            dirs.append(np.full(where.size, d))
    arrivals = np.bincount(g.cross_v[reached[g.cross_u]], minlength=src.size) + is_source
    merged = np.flatnonzero(arrivals >= 2)
    kinds.append(np.full(merged.size, 2))
    pes.append(merged)
    dirs.append(np.full(merged.size, -1))
    return np.concatenate(kinds), np.concatenate(pes), np.concatenate(dirs)


def _check(names, rx, sources, g, delivers, dead_ends, is_source):
    """Raise the error that happens first along the routes (fewest hops), if any."""
    kinds, pes, dirs = _dead_ends_and_merges(g, delivers, dead_ends, is_source)
    if pes.size == 0:
        return
    first = np.lexsort((kinds, pes, g.hops[pes]))[0]
    kind, pe = int(kinds[first]), int(pes[first])
    direction, dx, dy, port = _STEPS[dirs[first]] if kind < 2 else (None, 0, 0, None)
    at, color = names.at, names.color(pe)

    def source_of(p):
        return names.source(sources, g.src[p])

    if kind == 0:
        raise LayoutError(f"color {color}: a wavelet from {source_of(pe)} leaves {at(pe)} to the "
                          f"{direction}, off the edge of the {names.width}x{names.height} "
                          f"rectangle")
    if kind == 1:
        _unroutable(names, rx, pe, direction, dx, dy, port, source_of(pe))
    senders = g.cross_u[(g.cross_v == pe) & g.reached[g.cross_u]].tolist()
    _check_cycle(color, pe, senders, g.parent, g.entry, at, source_of)
    owners = sorted({int(g.src[u]) for u in senders} | ({int(g.src[pe])} if is_source[pe]
                                                         else set()))
    if len(owners) >= 2:
        raise LayoutError(f"{at(pe)} receives color {color} from both "
                          f"{names.source(sources, owners[0])} and "
                          f"{names.source(sources, owners[1])}; merging routes are not "
                          f"supported")
    raise LayoutError(f"{at(pe)} receives color {color} twice from "
                      f"{names.source(sources, owners[0])}, along two paths; merging routes "
                      f"are not supported")


def _unroutable(names, rx, pe, direction, dx, dy, port, source):
    color, n = names.color(pe), names.width * names.height
    nb = pe % n + dy * names.width + dx
    if len(names.colors) > 1:
        axis = "x" if port in ("EAST", "WEST") else "y"
        why = (f"where no color takes a wavelet of color {color} arriving from its {port} "
               f"(color {color ^ 1} takes it only with color_swap_{axis}, color {color} only "
               f"without)")
    elif not rx[nb] & _CONFIGURED:
        why = f"which has no route for color {color}"
    else:
        ports = [d for d in DIRECTIONS if rx[nb] & _BIT[d]]
        why = (f"which does not accept it from its {port} "
               f"(its rx is {{{', '.join(ports)}}})")
    raise LayoutError(f"color {color}: unroutable wavelet: a wavelet from {source} sent "
                      f"{direction} by {names.at(pe)} reaches {names.at(nb)}, {why}; the "
                      f"hardware would stall")


def _check_cycle(color, pe, senders, parent, entry, at, source_of) -> None:
    """A wavelet that reaches `pe` again along its own route circulates forever."""
    for u in senders:
        p = u
        while p >= 0:
            if p == pe:
                raise LayoutError(f"color {color}: the route of a wavelet from {source_of(u)} "
                                  f"returns to {at(pe)}, a cycle: the wavelet would circulate "
                                  f"forever")
            p = parent[p] if parent[p] >= 0 else entry[p]
