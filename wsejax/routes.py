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
Switches (§6.2), filters, teardown and color swapping (§6.5) are not modelled here; whether a
color is reserved by memcpy (21, 22, 23 with --memcpy) is the caller's check.

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
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from wsejax.errors import LayoutError

__all__ = ["DIRECTIONS", "NUM_COLORS", "ColorConfig", "ColorRoutes", "resolve_routes",
           "routes_table"]

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
    for i in np.flatnonzero((cs < 0) | (cs >= NUM_COLORS))[:1]:
        raise LayoutError(f"color {cs[i]}: route configured at PE ({xs[i]}, {ys[i]}), "
                          f"but colors are 0..{NUM_COLORS - 1}")
    for i in np.flatnonzero((xs < 0) | (xs >= width) | (ys < 0) | (ys >= height))[:1]:
        raise LayoutError(f"color {cs[i]}: route configured at PE ({xs[i]}, {ys[i]}), outside "
                          f"the {width}x{height} rectangle")
    rx_masks, tx_masks = _parse_configs(configs, xs, ys, cs)
    flat = ys * width + xs
    routes = {}
    for color in np.unique(cs).tolist():
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


def _parse_configs(configs, xs, ys, cs) -> tuple[np.ndarray, np.ndarray]:
    """Per config entry, the rx and tx port bit masks (uint8). Each distinct port set is checked
    once; the per-entry work stays in C (a full wafer has a million entries)."""
    values = list(configs.values())
    if not all(issubclass(t, ColorConfig) for t in set(map(type, values))):
        i = next(i for i, cfg in enumerate(values) if not isinstance(cfg, ColorConfig))
        raise LayoutError(f"color {cs[i]}: PE ({xs[i]}, {ys[i]}): the route is a "
                          f"{type(values[i]).__name__}, not a ColorConfig")
    masks = []
    for name in ("rx", "tx"):
        port_sets = list(map(attrgetter(name), values))
        mask_of = dict.fromkeys(port_sets, 0)
        for ports in mask_of:
            for port in ports:
                if port not in _BIT:
                    i = port_sets.index(ports)
                    raise LayoutError(f"color {cs[i]}: PE ({xs[i]}, {ys[i]}) has an invalid "
                                      f"{name} direction {port!r} (expected one of "
                                      f"{', '.join(DIRECTIONS)})")
                mask_of[ports] |= _BIT[port]
        masks.append(np.fromiter(map(mask_of.__getitem__, port_sets), np.uint8, len(values)))
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
    link_u, link_v = np.concatenate(link_u), np.concatenate(link_v)

    # PEs with one incoming link that are not sources hang off it; the other links enter heads.
    hangs = (np.bincount(link_v, minlength=n) == 1) & ~is_source
    parent = np.full(n, -1, np.int64)
    tree = hangs[link_v]
    parent[link_v[tree]] = link_u[tree]
    cross_u, cross_v = link_u[~tree], link_v[~tree]
    top, dist = _chain_heads(parent)

    # Which source reaches each head, in rounds: sources, then junctions entered from reached PEs.
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
    reached = src >= 0

    receives = reached & ((tx & _RAMP) != 0)
    delivers = np.zeros(sources.size, bool)  # [n_src]: some ramp receives the source
    delivers[src[receives]] = True
    _check(color, width, height, rx, sources, src, hops, reached, delivers, dead_ends,
           cross_u, cross_v, is_source, parent, entry)

    return ColorRoutes(
        color=color,
        sources=np.stack([sources % width, sources // width], axis=1).astype(np.int32),
        dest_source=np.where(receives, src, -1).reshape(height, width).astype(np.int32),
        hops=np.where(receives, hops, -1).reshape(height, width).astype(np.int32),
    )


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


def _dead_ends_and_merges(src, reached, delivers, dead_ends, cross_u, cross_v, is_source):
    """Every PE where a route goes wrong, as (kinds, pes, directions): kind 0 sends off the edge,
    1 is refused by its neighbour (both with the direction's index), 2 is a merge (direction -1)."""
    kinds, pes, dirs = [], [], []
    for d, (off_edge, refused) in enumerate(dead_ends):
        for kind, where in ((0, off_edge), (1, refused)):
            where = where[reached[where]]
            if kind == 0:
                where = where[delivers[src[where]]]
            kinds.append(np.full(where.size, kind))
            pes.append(where)
            dirs.append(np.full(where.size, d))
    arrivals = np.bincount(cross_v[reached[cross_u]], minlength=src.size) + is_source
    merged = np.flatnonzero(arrivals >= 2)
    kinds.append(np.full(merged.size, 2))
    pes.append(merged)
    dirs.append(np.full(merged.size, -1))
    return np.concatenate(kinds), np.concatenate(pes), np.concatenate(dirs)


def _check(color, width, height, rx, sources, src, hops, reached, delivers, dead_ends, cross_u,
           cross_v, is_source, parent, entry):
    """Raise the error that happens first along the routes (fewest hops), if any."""
    kinds, pes, dirs = _dead_ends_and_merges(src, reached, delivers, dead_ends, cross_u,
                                             cross_v, is_source)
    if pes.size == 0:
        return
    first = np.lexsort((kinds, pes, hops[pes]))[0]
    kind, pe = int(kinds[first]), int(pes[first])
    direction, dx, dy, port = _STEPS[dirs[first]] if kind < 2 else (None, 0, 0, None)

    def at(p):
        return f"PE ({p % width}, {p // width})"

    def source_of(p):
        return at(sources[src[p]])

    if kind == 0:
        raise LayoutError(f"color {color}: a wavelet from {source_of(pe)} leaves {at(pe)} to the "
                          f"{direction}, off the edge of the {width}x{height} rectangle")
    if kind == 1:
        nb = pe + dy * width + dx
        if not rx[nb] & _CONFIGURED:
            why = f"which has no route for color {color}"
        else:
            ports = [d for d in DIRECTIONS if rx[nb] & _BIT[d]]
            why = (f"which does not accept it from its {port} "
                   f"(its rx is {{{', '.join(ports)}}})")
        raise LayoutError(f"color {color}: unroutable wavelet: a wavelet from {source_of(pe)} sent "
                          f"{direction} by {at(pe)} reaches {at(nb)}, {why}; the hardware "
                          f"would stall")
    senders = cross_u[(cross_v == pe) & reached[cross_u]].tolist()
    _check_cycle(color, pe, senders, parent, entry, at, source_of)
    owners = sorted({int(src[u]) for u in senders} | ({int(src[pe])} if is_source[pe] else set()))
    if len(owners) >= 2:
        raise LayoutError(f"{at(pe)} receives color {color} from both "
                          f"{at(sources[owners[0]])} and {at(sources[owners[1]])}; merging "
                          f"routes are not supported")
    raise LayoutError(f"{at(pe)} receives color {color} twice from {at(sources[owners[0]])}, "
                      f"along two paths; merging routes are not supported")


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
