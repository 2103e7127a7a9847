"""wsejax.routes with color swapping (csl-spec §6.5): a pair of colors resolved as one graph over
(PE, color) nodes, against hand-built cases and an independent step-by-step simulator."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wsejax.errors import LayoutError, ProgramError
from wsejax.routes import DIRECTIONS, ColorConfig, resolve_routes, source_colors

STEP = {"NORTH": (0, -1), "SOUTH": (0, 1), "EAST": (1, 0), "WEST": (-1, 0)}
OPPOSITE = {"NORTH": "SOUTH", "SOUTH": "NORTH", "EAST": "WEST", "WEST": "EAST"}


def cc(rx=(), tx=(), x=False, y=False):
    return ColorConfig(frozenset(rx), frozenset(tx), x, y)


def table(r):
    return r.dest_source.tolist(), r.hops.tolist()


def test_both_colors_swapping_alternate_along_a_row():
    configs = {}
    for x in range(4):
        for c in (4, 5):
            configs[(x, 0, c)] = cc({"RAMP"} if x == 0 else {"WEST"},
                                    {"RAMP", "EAST"} if x < 3 else {"RAMP"}, x=True)
    routes = resolve_routes(4, 1, configs)
    assert sorted(routes) == [4, 5]
    for r in routes.values():
        assert r.sources.tolist() == [[0, 0], [0, 0]] and r.source_colors.tolist() == [4, 5]
    assert table(routes[4]) == ([[0, 1, 0, 1]], [[0, 1, 2, 3]])
    assert table(routes[5]) == ([[1, 0, 1, 0]], [[0, 1, 2, 3]])


def test_a_color_without_swapping_keeps_its_routes_and_its_source_colors():
    configs = {(0, 0, 7): cc({"RAMP"}, {"EAST"}), (1, 0, 7): cc({"WEST"}, {"RAMP"}),
               (0, 0, 2): cc({"RAMP"}, {"RAMP"}, x=True)}
    routes = resolve_routes(2, 1, configs)
    assert routes[7].source_colors is None
    assert source_colors(routes[7]).tolist() == [7]
    assert table(routes[7]) == ([[-1, 0]], [[-1, 1]])
    # the pair of a swapping color gets routes for both colors, configured or not
    assert sorted(routes) == [2, 3, 7]
    assert routes[3].source_colors.tolist() == [2] and (routes[3].dest_source == -1).all()


def test_only_one_color_swapping_receives_the_other_as_both():
    configs = {(0, 0, 0): cc({"RAMP"}, {"SOUTH"}),
               (0, 1, 0): cc({"NORTH"}, {"RAMP"}),
               (0, 1, 1): cc({"NORTH"}, {"RAMP", "SOUTH"}, y=True),
               (0, 2, 1): cc({"NORTH"}, {"RAMP"})}
    routes = resolve_routes(1, 3, configs)
    assert routes[0].source_colors.tolist() == [0]
    assert table(routes[0]) == ([[-1], [0], [-1]], [[-1], [1], [-1]])
    assert table(routes[1]) == ([[-1], [0], [0]], [[-1], [1], [2]])


def test_swap_x_does_not_swap_what_arrives_vertically():
    configs = {(0, 0, 0): cc({"RAMP"}, {"SOUTH"}),
               (0, 1, 0): cc({"NORTH"}, {"RAMP"}, x=True),
               (0, 1, 1): cc({"NORTH"}, {"RAMP"}, x=True)}
    routes = resolve_routes(1, 2, configs)
    assert table(routes[0]) == ([[-1], [0]], [[-1], [1]])
    assert (routes[1].dest_source == -1).all()


def test_both_swaps_swap_the_ramp_and_one_wavelet_may_enter_as_both_colors():
    # at PE (0, 0) color 1 swaps on both axes: it takes what the CE sends on 0, as color 0
    # (which does not swap) does too
    configs = {(0, 0, 0): cc({"RAMP"}, {"RAMP"}),
               (0, 0, 1): cc({"RAMP"}, {"EAST"}, x=True, y=True),
               (1, 0, 1): cc({"WEST"}, {"RAMP"})}
    routes = resolve_routes(2, 1, configs)
    assert routes[0].source_colors.tolist() == [0]
    assert table(routes[0]) == ([[0, -1]], [[0, -1]])
    assert table(routes[1]) == ([[-1, 0]], [[-1, 1]])


@pytest.mark.parametrize("configs, message", [
    # only the color the wavelet arrives on swaps: nothing takes it
    ({(0, 0, 8): cc({"RAMP"}, {"EAST"}), (1, 0, 8): cc({"WEST"}, {"RAMP"}, x=True)},
     r"color 8: unroutable wavelet: a wavelet from PE \(0, 0\) \(sent on color 8\) sent EAST "
     r"by PE \(0, 0\) reaches PE \(1, 0\), where no color takes a wavelet of color 8 arriving "
     r"from its WEST \(color 9 takes it only with color_swap_x, color 8 only without\); the "
     r"hardware would stall"),
    # PE (1, 0)'s color 1 takes color 0 from both sides
    ({(0, 0, 0): cc({"RAMP"}, {"EAST"}), (2, 0, 0): cc({"RAMP"}, {"WEST"}),
      (1, 0, 1): cc({"WEST", "EAST"}, {"RAMP"}, x=True)},
     r"PE \(1, 0\) receives color 1 from both PE \(0, 0\) \(sent on color 0\) and PE \(2, 0\) "
     r"\(sent on color 0\); merging routes are not supported"),
    # out on 0, back on 1, and taken as 0 again
    ({(0, 0, 0): cc({"RAMP", "EAST"}, {"EAST"}, x=True),
      (1, 0, 1): cc({"WEST"}, {"WEST", "RAMP"}, x=True)},
     r"color 0: the route of a wavelet from PE \(0, 0\) \(sent on color 0\) returns to PE "
     r"\(0, 0\), a cycle"),
    ({(0, 0, 0): cc({"RAMP"}, {"EAST", "RAMP"}, x=True),
      (1, 0, 1): cc({"WEST"}, {"EAST"}, x=True)},
     r"color 1: a wavelet from PE \(0, 0\) \(sent on color 0\) leaves PE \(1, 0\) to the EAST, "
     r"off the edge of the 2x1 rectangle"),
])
def test_route_errors_on_the_pair_graph(configs, message):
    with pytest.raises(LayoutError, match=message):
        resolve_routes(3 if any(x == 2 for x, _, _ in configs) else 2, 1, configs)


# -- an independent simulator --------------------------------------------------------------------


def takes(cfg, node, port, color):
    """Whether node (x, y, c) accepts a wavelet of `color` arriving on `port`."""
    v = cfg.get(node)
    if v is None or port not in v.rx:
        return False
    if port == "RAMP":
        swap = v.swap_x and v.swap_y
    else:
        swap = v.swap_x if port in ("EAST", "WEST") else v.swap_y
    return (node[2] ^ swap) == color


def simulate(width, height, configs, max_steps=20000):
    """Walk every wavelet router by router over (x, y, color) nodes of the pair 0, 1. Returns
    the sources ((x, y, color sent), row-major), what each ramp receives ({(x, y, c): [(source
    index, hops), ...]}) and the set of error kinds (None: the walk was cut short)."""
    cfg = dict(configs)
    sources = sorted({(x, y, c) for (x, y, c0) in cfg for c in (0, 1)
                      if any(takes(cfg, (x, y, k), "RAMP", c) for k in (0, 1))},
                     key=lambda s: (s[1], s[0], s[2]))
    received, errors, visits, steps = defaultdict(list), set(), Counter(), 0
    for k, (sx, sy, sc) in enumerate(sources):
        wavelets = [((sx, sy, c), ((sx, sy, c),)) for c in (0, 1)
                    if takes(cfg, (sx, sy, c), "RAMP", sc)]
        visits.update(node for node, _ in wavelets)
        leaves = False
        while wavelets and steps < max_steps:
            moved = []
            for here, path in wavelets:
                steps += 1
                for port in sorted(cfg[here].tx):
                    if port == "RAMP":
                        received[here].append((k, len(path) - 1))
                        continue
                    x, y = here[0] + STEP[port][0], here[1] + STEP[port][1]
                    if not (0 <= x < width and 0 <= y < height):
                        leaves = True
                        continue
                    nodes = [(x, y, c) for c in (0, 1)
                             if takes(cfg, (x, y, c), OPPOSITE[port], here[2])]
                    if not nodes:
                        errors.add("unroutable")
                    for there in nodes:
                        visits[there] += 1
                        if there in path:
                            errors.add("cycle")
                        else:
                            moved.append((there, path + (there,)))
            wavelets = moved
        if leaves and any(j == k for got in received.values() for j, _ in got):
            errors.add("edge")
    if any(n >= 2 for n in visits.values()):
        errors.add("merge")
    return sources, dict(received), None if steps >= max_steps else errors


def error_kind(message):
    for pattern, kind in (("off the edge", "edge"), ("unroutable wavelet", "unroutable"),
                          ("a cycle", "cycle"), ("receives color", "merge")):
        if pattern in message:
            return kind
    raise AssertionError(message)


def check_against_simulator(width, height, configs):
    sources, received, errors = simulate(width, height, configs)
    if errors != set():
        with pytest.raises(LayoutError) as err:
            resolve_routes(width, height, configs)
        message = str(err.value)
        assert re.search(r"\bcolor [01]\b", message), message
        assert errors is None or error_kind(message) in errors, (message, errors)
        return False
    routes = resolve_routes(width, height, configs)
    assert sorted(routes) == [0, 1]
    for c in (0, 1):
        r = routes[c]
        assert [(x, y, s) for (x, y), s in zip(r.sources.tolist(),
                                               source_colors(r).tolist())] == sources
        dest = np.full((height, width), -1)
        hops = np.full((height, width), -1)
        for (x, y, col), got in received.items():
            if col == c:
                assert len(got) == 1
                dest[y, x], hops[y, x] = got[0]
        assert (r.dest_source == dest).all() and (r.hops == hops).all()
    return True


port_sets = st.frozensets(st.sampled_from(DIRECTIONS), max_size=3)


@st.composite
def random_configs(draw):
    """Any rx/tx and swaps on any (PE, color) of the pair: mostly invalid routes."""
    width, height = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pes = [(x, y, c) for x in range(width) for y in range(height) for c in (0, 1)]
    chosen = draw(st.lists(st.sampled_from(pes), unique=True, min_size=1, max_size=len(pes)))
    ramp = st.sampled_from((frozenset(), frozenset({"RAMP"})))
    out = {p: cc(draw(port_sets) | draw(ramp), draw(port_sets), draw(st.booleans()),
                 draw(st.booleans())) for p in chosen}
    if not any(v.swap_x or v.swap_y for v in out.values()):
        p = chosen[0]
        out[p] = cc(out[p].rx, out[p].tx, True, out[p].swap_y)
    return width, height, out


@st.composite
def walk_configs(draw):
    """Random walks over the rectangle, each hop entering the neighbour on the color the
    wavelet has or, by a swap there, on the other: long bent routes changing colors."""
    width, height = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    rx, tx, swap = defaultdict(set), defaultdict(set), defaultdict(lambda: [False, False])
    for _ in range(draw(st.integers(1, 3))):
        color = draw(st.sampled_from((0, 1)))
        here = (draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1)))
        if draw(st.integers(0, 3)) > 0:
            rx[(*here, color)].add("RAMP")
        for _ in range(draw(st.integers(0, 10))):
            if draw(st.booleans()):
                tx[(*here, color)].add("RAMP")
            moves = [d for d, (dx, dy) in STEP.items()
                     if 0 <= here[0] + dx < width and 0 <= here[1] + dy < height]
            if not moves:
                break
            direction = draw(st.sampled_from(moves))
            tx[(*here, color)].add(direction)
            here = (here[0] + STEP[direction][0], here[1] + STEP[direction][1])
            if draw(st.booleans()):
                color ^= 1
                swap[(*here, color)][direction in ("NORTH", "SOUTH")] = True
            rx[(*here, color)].add(OPPOSITE[direction])
        tx[(*here, color)].add("RAMP")
    keys = set(rx) | set(tx)
    swap[next(iter(sorted(keys)))][0] |= not any(any(v) for v in swap.values())
    return width, height, {p: cc(rx[p], tx[p], *swap[p]) for p in keys | set(swap)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_configs())
# one ramp wavelet entering as both colors: one copy leaves the fabric, the other is received
@example(case=(1, 1, {(0, 0, 0): cc({"RAMP"}, {"NORTH"}),
                      (0, 0, 1): cc({"RAMP"}, {"RAMP"}, True, True)}))
def test_random_configs_match_the_simulator(case):
    check_against_simulator(*case)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walk_configs())
def test_random_walks_match_the_simulator(case):
    check_against_simulator(*case)


# -- the Python API ------------------------------------------------------------------------------


def test_the_python_api_sets_color_swapping_and_refuses_it_on_wse3():
    from wsejax import dsl as csl

    def pe():
        csl.set_local_color_config(3, rx=csl.WEST, tx=csl.RAMP, color_swap_x=True)

    def layout():
        csl.set_rectangle(2, 1)
        csl.set_tile_code(0, 0, empty, {})
        csl.set_tile_code(1, 0, pe, {})
        csl.set_color_config(0, 0, 2, rx=csl.RAMP, tx=csl.EAST)

    def empty():
        pass

    p = csl.compile(layout)
    assert p.classes[1].routes == ((3, (("WEST",), ("RAMP",), True, False)),)
    assert p.resolved[3].source_colors.tolist() == [2]
    assert table(p.resolved[3]) == ([[-1, 0]], [[-1, 1]])
    with pytest.raises(ProgramError, match=r"set_local_color_config routes: color swapping "
                                        r"\(\.color_swap_x, \.color_swap_y\) is not supported "
                                        r"on wse3"):
        csl.compile(layout, arch="wse3")

    def swapping_layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, empty, {})
        csl.set_color_config(0, 0, 2, rx=csl.RAMP, tx=csl.RAMP, color_swap_y=True)

    assert csl.compile(swapping_layout).routes == (((0, 0, 2), (("RAMP",), ("RAMP",), False,
                                                                True)),)
    with pytest.raises(LayoutError, match=r"@set_color_config routes: color swapping .* not "
                                          r"supported on wse3"):
        csl.compile(swapping_layout, arch="wse3")
