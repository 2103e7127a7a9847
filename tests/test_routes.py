"""wsejax.routes: static route resolution (csl-spec §6.1), against hand-built patterns and an
independent step-by-step simulator."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax.errors import LayoutError
from wsejax.routes import DIRECTIONS, ColorConfig, ColorRoutes, resolve_routes, routes_table

STEP = {"NORTH": (0, -1), "SOUTH": (0, 1), "EAST": (1, 0), "WEST": (-1, 0)}
OPPOSITE = {"NORTH": "SOUTH", "SOUTH": "NORTH", "EAST": "WEST", "WEST": "EAST"}


def cc(rx=(), tx=()):
    return ColorConfig(frozenset(rx), frozenset(tx))


def row_chains(width, height, color=0, rows=None):
    """Every row: PE 0 injects and sends EAST; every other PE delivers to its ramp and forwards
    EAST (the last one only delivers)."""
    configs = {}
    for y in rows if rows is not None else range(height):
        configs[(0, y, color)] = cc({"RAMP"}, {"EAST"})
        for x in range(1, width):
            configs[(x, y, color)] = cc({"WEST"}, {"RAMP", "EAST"} if x < width - 1 else {"RAMP"})
    return configs


def column_broadcasts(width, height, color=0):
    """Every column: the top PE injects, and every PE of the column (itself included) receives."""
    configs = {}
    for x in range(width):
        configs[(x, 0, color)] = cc({"RAMP"}, {"RAMP", "SOUTH"} if height > 1 else {"RAMP"})
        for y in range(1, height):
            configs[(x, y, color)] = cc({"NORTH"},
                                        {"RAMP", "SOUTH"} if y < height - 1 else {"RAMP"})
    return configs


def corner_broadcast(width, height, color=0):
    """(0, 0) injects; row 0 carries it EAST and every PE of row 0 also sends it SOUTH."""
    configs = {}
    for x in range(width):
        tx = {"RAMP"} | ({"EAST"} if x < width - 1 else set())
        tx |= {"SOUTH"} if height > 1 else set()
        configs[(x, 0, color)] = cc({"RAMP"} if x == 0 else {"WEST"}, tx)
        for y in range(1, height):
            configs[(x, y, color)] = cc({"NORTH"},
                                        {"RAMP", "SOUTH"} if y < height - 1 else {"RAMP"})
    return configs


def layout_error(width, height, configs) -> str:
    with pytest.raises(LayoutError) as info:
        resolve_routes(width, height, configs)
    return str(info.value)


# -- patterns ------------------------------------------------------------------------------------


def test_row_chain():
    routes = resolve_routes(4, 2, row_chains(4, 2))
    assert list(routes) == [0]
    r = routes[0]
    assert isinstance(r, ColorRoutes) and r.color == 0 and (r.width, r.height) == (4, 2)
    assert r.sources.dtype == np.int32 and r.sources.tolist() == [[0, 0], [0, 1]]
    assert r.dest_source.dtype == np.int32 and r.hops.dtype == np.int32
    assert r.dest_source.tolist() == [[-1, 0, 0, 0], [-1, 1, 1, 1]]
    assert r.hops.tolist() == [[-1, 1, 2, 3], [-1, 1, 2, 3]]
    assert routes_table(r).tolist() == [[-1, 0, 0, 0], [-1, 4, 4, 4]]
    assert np.argwhere(r.dest_source == 1).tolist() == [[1, 1], [1, 2], [1, 3]]


def test_column_broadcast_multicasts_to_every_pe_of_the_column():
    r = resolve_routes(3, 4, column_broadcasts(3, 4))[0]
    assert r.sources.tolist() == [[0, 0], [1, 0], [2, 0]]
    assert (r.dest_source == np.arange(3)[None, :]).all()
    assert (r.hops == np.arange(4)[:, None]).all()  # the source receives its own wavelets: 0 hops
    assert (routes_table(r) == np.arange(3)[None, :]).all()


def test_row_then_columns_from_the_corner():
    r = resolve_routes(4, 3, corner_broadcast(4, 3))[0]
    assert r.sources.tolist() == [[0, 0]]
    assert (r.dest_source == 0).all()
    y, x = np.mgrid[0:3, 0:4]
    assert (r.hops == x + y).all()  # manhattan distance: EAST along row 0, then SOUTH


def test_two_colors_are_independent():
    configs = row_chains(3, 2, color=5) | column_broadcasts(3, 2, color=2)
    routes = resolve_routes(3, 2, configs)
    assert sorted(routes) == [2, 5]
    assert routes[5].dest_source.tolist() == [[-1, 0, 0], [-1, 1, 1]]
    assert routes[2].dest_source.tolist() == [[0, 1, 2], [0, 1, 2]]


def test_hops_count_router_to_router_steps_along_a_bent_route():
    # (0, 0) -> EAST -> (1, 0) -> SOUTH -> (1, 1) -> SOUTH -> (1, 2) -> WEST -> (0, 2)
    configs = {
        (0, 0, 7): cc({"RAMP"}, {"EAST"}),
        (1, 0, 7): cc({"WEST"}, {"SOUTH"}),
        (1, 1, 7): cc({"NORTH"}, {"SOUTH", "RAMP"}),
        (1, 2, 7): cc({"NORTH"}, {"WEST"}),
        (0, 2, 7): cc({"EAST"}, {"RAMP"}),
    }
    r = resolve_routes(2, 3, configs)[7]
    assert r.dest_source.tolist() == [[-1, -1], [-1, 0], [0, -1]]
    assert r.hops.tolist() == [[-1, -1], [-1, 2], [4, -1]]


def test_a_pe_may_accept_from_two_ports_when_only_one_carries_traffic():
    # (1, 0) accepts from WEST and from SOUTH; (1, 1) sends NORTH to it but nothing reaches (1, 1).
    configs = {
        (0, 0, 0): cc({"RAMP"}, {"EAST"}),
        (1, 0, 0): cc({"WEST", "SOUTH"}, {"RAMP"}),
        (1, 1, 0): cc({"EAST"}, {"NORTH", "EAST"}),
        (2, 1, 0): cc({"WEST"}, {"WEST"}),  # a loop (1, 1) <-> (2, 1) that nothing enters
    }
    r = resolve_routes(3, 2, configs)[0]
    assert r.dest_source.tolist() == [[-1, 0, -1], [-1, -1, -1]]
    assert r.hops.tolist() == [[-1, 1, -1], [-1, -1, -1]]


def test_colors_without_sources_and_unreached_configs_are_fine():
    configs = {
        (0, 0, 3): cc({"WEST"}, {"WEST"}),  # would go off the edge, but nothing reaches it
        (1, 0, 3): cc({"NORTH"}, {"SOUTH", "EAST"}),
    }
    r = resolve_routes(2, 1, configs)[3]
    assert r.sources.shape == (0, 2)
    assert (r.dest_source == -1).all() and (r.hops == -1).all()
    assert (routes_table(r) == -1).all()
    assert resolve_routes(2, 1, {}) == {}


def test_loopback_and_empty_tx():
    configs = {(0, 0, 1): cc({"RAMP"}, {"RAMP"}), (1, 0, 1): cc({"RAMP"}, ())}
    r = resolve_routes(2, 1, configs)[1]
    assert r.sources.tolist() == [[0, 0], [1, 0]]
    assert r.dest_source.tolist() == [[0, -1]]
    assert r.hops.tolist() == [[0, -1]]


def test_color_config_normalises_its_port_sets():
    c = ColorConfig("RAMP", ["EAST", "RAMP"])
    assert c.rx == frozenset({"RAMP"}) and c.tx == frozenset({"EAST", "RAMP"})
    assert c == cc({"RAMP"}, {"RAMP", "EAST"}) and hash(c) == hash(cc({"RAMP"}, {"RAMP", "EAST"}))


# -- errors --------------------------------------------------------------------------------------


def test_off_the_edge():
    configs = {(0, 0, 3): cc({"RAMP"}, {"EAST"}), (1, 0, 3): cc({"WEST"}, {"EAST"}),
               (2, 0, 3): cc({"WEST"}, {"EAST", "RAMP"})}
    assert layout_error(3, 1, configs) == (
        "color 3: a wavelet from PE (0, 0) leaves PE (2, 0) to the EAST, off the edge of the "
        "3x1 rectangle")
    msg = layout_error(2, 2, {(1, 1, 9): cc({"RAMP"}, {"SOUTH", "RAMP"})})
    assert msg == ("color 9: a wavelet from PE (1, 1) leaves PE (1, 1) to the SOUTH, off the edge "
                   "of the 2x2 rectangle")


def test_a_route_that_only_leaves_the_rectangle_is_accepted_and_delivers_nothing():
    # as on PEs that configure a route toward the edge and never send on it
    configs = {(0, 0, 3): cc({"RAMP"}, {"EAST"}), (1, 0, 3): cc({"WEST"}, {"EAST"}),
               (0, 0, 4): cc({"RAMP"}, {"EAST"}), (1, 0, 4): cc({"WEST"}, {"RAMP"})}
    routes = resolve_routes(2, 1, configs)
    assert routes[3].sources.tolist() == [[0, 0]]
    assert routes[3].dest_source.tolist() == [[-1, -1]]
    assert routes[4].dest_source.tolist() == [[-1, 0]]


def test_unroutable_when_the_neighbour_has_no_config():
    msg = layout_error(3, 1, {(0, 0, 4): cc({"RAMP"}, {"EAST"}),
                              (1, 0, 4): cc({"WEST"}, {"EAST"})})
    assert msg == ("color 4: unroutable wavelet: a wavelet from PE (0, 0) sent EAST by PE (1, 0) "
                   "reaches PE (2, 0), which has no route for color 4; the hardware would stall")


def test_unroutable_when_the_neighbour_does_not_accept_that_port():
    msg = layout_error(1, 2, {(0, 1, 2): cc({"RAMP"}, {"NORTH"}),
                              (0, 0, 2): cc({"WEST", "RAMP"}, {"RAMP"})})
    assert msg == ("color 2: unroutable wavelet: a wavelet from PE (0, 1) sent NORTH by PE (0, 1) "
                   "reaches PE (0, 0), which does not accept it from its SOUTH (its rx is "
                   "{WEST, RAMP}); the hardware would stall")


def test_a_ramp_receiving_from_two_sources():
    configs = {(0, 0, 6): cc({"RAMP"}, {"EAST"}), (2, 0, 6): cc({"RAMP"}, {"WEST"}),
               (1, 0, 6): cc({"WEST", "EAST"}, {"RAMP"})}
    assert layout_error(3, 1, configs) == (
        "PE (1, 0) receives color 6 from both PE (0, 0) and PE (2, 0); merging routes are not "
        "supported")


def test_a_chain_into_another_source():
    configs = row_chains(3, 1, color=1)
    configs[(1, 0, 1)] = cc({"WEST", "RAMP"}, {"RAMP", "EAST"})
    assert layout_error(3, 1, configs) == (
        "PE (1, 0) receives color 1 from both PE (0, 0) and PE (1, 0); merging routes are not "
        "supported")


def test_two_paths_of_one_source():
    # (0, 0) sends EAST and SOUTH; both paths meet at (1, 1)
    configs = {(0, 0, 0): cc({"RAMP"}, {"EAST", "SOUTH"}), (1, 0, 0): cc({"WEST"}, {"SOUTH"}),
               (0, 1, 0): cc({"NORTH"}, {"EAST"}), (1, 1, 0): cc({"NORTH", "WEST"}, {"RAMP"})}
    assert layout_error(2, 2, configs) == (
        "PE (1, 1) receives color 0 twice from PE (0, 0), along two paths; merging routes are "
        "not supported")


def test_cycle_through_the_source():
    configs = {(0, 0, 8): cc({"RAMP", "SOUTH"}, {"EAST"}), (1, 0, 8): cc({"WEST"}, {"SOUTH"}),
               (1, 1, 8): cc({"NORTH"}, {"WEST", "RAMP"}), (0, 1, 8): cc({"EAST"}, {"NORTH"})}
    assert layout_error(2, 2, configs) == (
        "color 8: the route of a wavelet from PE (0, 0) returns to PE (0, 0), a cycle: the "
        "wavelet would circulate forever")


def test_cycle_downstream_of_the_source():
    # (0, 0) -> (1, 0) -> (2, 0) -> (2, 1) -> (1, 1) -> back to (1, 0)
    configs = {(0, 0, 0): cc({"RAMP"}, {"EAST"}), (1, 0, 0): cc({"WEST", "SOUTH"}, {"EAST"}),
               (2, 0, 0): cc({"WEST"}, {"SOUTH"}), (2, 1, 0): cc({"NORTH"}, {"WEST", "RAMP"}),
               (1, 1, 0): cc({"EAST"}, {"NORTH"})}
    assert layout_error(3, 2, configs) == (
        "color 0: the route of a wavelet from PE (0, 0) returns to PE (1, 0), a cycle: the "
        "wavelet would circulate forever")


def test_cycle_through_a_junction():
    # as above, and (2, 0) on the loop also accepts from (3, 0), which nothing reaches
    configs = {(0, 0, 0): cc({"RAMP"}, {"EAST"}), (1, 0, 0): cc({"WEST", "SOUTH"}, {"EAST"}),
               (2, 0, 0): cc({"WEST", "EAST"}, {"SOUTH"}), (3, 0, 0): cc((), {"WEST"}),
               (2, 1, 0): cc({"NORTH"}, {"WEST"}), (1, 1, 0): cc({"EAST"}, {"NORTH"})}
    assert layout_error(4, 2, configs) == (
        "color 0: the route of a wavelet from PE (0, 0) returns to PE (1, 0), a cycle: the "
        "wavelet would circulate forever")


def test_back_and_forth_is_a_cycle():
    configs = {(0, 0, 0): cc({"RAMP", "EAST"}, {"EAST"}), (1, 0, 0): cc({"WEST"}, {"WEST"})}
    assert "returns to PE (0, 0), a cycle" in layout_error(2, 1, configs)


def test_the_first_error_along_the_route_is_reported():
    configs = row_chains(5, 1)
    configs[(4, 0, 0)] = cc({"WEST"}, {"EAST"})   # off the edge at 4 hops
    configs[(1, 0, 0)] = cc({"WEST"}, {"NORTH", "EAST"})  # off the edge at 1 hop
    assert "leaves PE (1, 0) to the NORTH" in layout_error(5, 1, configs)


@pytest.mark.parametrize("configs, message", [
    ({(0, 0, 0): cc({"UP"}, ())},
     "color 0: PE (0, 0) has an invalid rx direction 'UP' (expected one of NORTH, SOUTH, EAST, "
     "WEST, RAMP)"),
    ({(1, 0, 2): cc({"RAMP"}, {"ramp"})},
     "color 2: PE (1, 0) has an invalid tx direction 'ramp'"),
    ({(0, 0, 24): cc({"RAMP"}, ())},
     "color 24: route configured at PE (0, 0), but colors are 0..23"),
    ({(0, 0, -1): cc({"RAMP"}, ())},
     "color -1: route configured at PE (0, 0), but colors are 0..23"),
    ({(2, 0, 1): cc({"RAMP"}, ())},
     "color 1: route configured at PE (2, 0), outside the 2x1 rectangle"),
    ({(0, -1, 1): cc({"RAMP"}, ())},
     "color 1: route configured at PE (0, -1), outside the 2x1 rectangle"),
    ({(0, 0, 1): {"rx": "RAMP"}},
     "color 1: PE (0, 0): the route is a dict, not a ColorConfig"),
    ({(0, 0): cc()}, "routes: config key (0, 0) is not (x, y, color) integers"),
    ({(0, 0.0, 1): cc()}, "routes: config key (0, 0.0, 1) is not (x, y, color) integers"),
])
def test_malformed_configs(configs, message):
    assert layout_error(2, 1, configs).startswith(message)


def test_bad_rectangle():
    with pytest.raises(LayoutError, match=r"at least 1x1, got 0x3"):
        resolve_routes(0, 3, {})


# -- an independent simulator --------------------------------------------------------------------


def simulate(width, height, configs, max_steps=20000):
    """Walk every wavelet router by router. Per color: the sources (row-major), what each ramp
    receives ({(x, y): [(source index, hops), ...]}) and the set of error kinds (None when the
    walk was cut short: some error, kind unknown)."""
    result = {}
    for color in sorted({c for _, _, c in configs}):
        cfg = {(x, y): v for (x, y, c), v in configs.items() if c == color}
        sources = sorted((p for p, v in cfg.items() if "RAMP" in v.rx), key=lambda p: (p[1], p[0]))
        received, errors, visits, steps = defaultdict(list), set(), Counter(), 0
        for k, s in enumerate(sources):
            visits[s] += 1
            wavelets = [(s, (s,))]  # (router, routers passed)
            leaves = False  # leaving the rectangle is an error only if some ramp receives it
            while wavelets and steps < max_steps:
                moved = []
                for here, path in wavelets:
                    steps += 1
                    for port in sorted(cfg[here].tx):
                        if port == "RAMP":
                            received[here].append((k, len(path) - 1))
                            continue
                        there = (here[0] + STEP[port][0], here[1] + STEP[port][1])
                        if not (0 <= there[0] < width and 0 <= there[1] < height):
                            leaves = True
                        elif there not in cfg or OPPOSITE[port] not in cfg[there].rx:
                            errors.add("unroutable")
                        elif there in path:
                            visits[there] += 1
                            errors.add("cycle")
                        else:
                            visits[there] += 1
                            moved.append((there, path + (there,)))
                wavelets = moved
            if leaves and any(j == k for got in received.values() for j, _ in got):
                errors.add("edge")
        if any(n >= 2 for n in visits.values()):
            errors.add("merge")
        result[color] = (sources, dict(received), None if steps >= max_steps else errors)
    return result


def error_kind(message):
    for pattern, kind in (("off the edge", "edge"), ("unroutable wavelet", "unroutable"),
                          ("a cycle", "cycle"), ("receives color", "merge")):
        if pattern in message:
            return kind
    raise AssertionError(message)


def check_against_simulator(width, height, configs):
    expected = simulate(width, height, configs)
    failing = [c for c, (_, _, errors) in expected.items() if errors != set()]
    if failing:
        color = failing[0]
        message = layout_error(width, height, configs)
        assert re.search(rf"\bcolor {color}\b", message), message
        errors = expected[color][2]
        assert errors is None or error_kind(message) in errors, (message, errors)
        return False
    routes = resolve_routes(width, height, configs)
    assert sorted(routes) == sorted(expected)
    for color, (sources, received, _) in expected.items():
        r = routes[color]
        assert [tuple(p) for p in r.sources.tolist()] == sources
        dest = np.full((height, width), -1)
        hops = np.full((height, width), -1)
        for (x, y), got in received.items():
            assert len(got) == 1  # no merge: each ramp receives from one source, one path
            dest[y, x], hops[y, x] = got[0]
        assert (r.dest_source == dest).all() and (r.hops == hops).all()
    return True


def test_the_simulator_agrees_on_the_patterns():
    for configs in (row_chains(4, 3), column_broadcasts(3, 4), corner_broadcast(4, 3)):
        assert check_against_simulator(4, 4, configs)


port_sets = st.frozensets(st.sampled_from(DIRECTIONS), max_size=3)


@st.composite
def random_configs(draw):
    """Any rx/tx on any PE: mostly invalid routes."""
    width, height = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pes = [(x, y, c) for x in range(width) for y in range(height) for c in (0, 23)]
    chosen = draw(st.lists(st.sampled_from(pes), unique=True, min_size=1, max_size=len(pes)))
    ramp = st.sampled_from((frozenset(), frozenset({"RAMP"})))
    return width, height, {p: ColorConfig(draw(port_sets) | draw(ramp), draw(port_sets))
                           for p in chosen}


@st.composite
def segment_configs(draw):
    """Straight row/column segments, each injected at its start or branching off whatever reaches
    its start, delivering to some ramps; overlapping segments merge their ports."""
    width, height = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rx, tx = defaultdict(set), defaultdict(set)
    for _ in range(draw(st.integers(1, 5))):
        color = draw(st.sampled_from((0, 1)))
        x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        direction = draw(st.sampled_from(sorted(STEP)))
        dx, dy = STEP[direction]
        room = (width - 1 - x, x, height - 1 - y, y)[("EAST", "WEST", "SOUTH", "NORTH")
                                                    .index(direction)]
        length = draw(st.integers(0, room))
        overrun = draw(st.booleans()) and draw(st.booleans())  # keep sending past the end
        if draw(st.integers(0, 3)) > 0:
            rx[(x, y, color)].add("RAMP")
        for i in range(length + 1):
            p = (x + i * dx, y + i * dy, color)
            rx.setdefault(p, set())  # configured even if only passed through
            if i > 0:
                rx[p].add(OPPOSITE[direction])
            if i < length or overrun:
                tx[p].add(direction)
            if draw(st.booleans()):
                tx[p].add("RAMP")
    return width, height, {p: ColorConfig(rx[p], tx[p]) for p in rx}


@st.composite
def walk_configs(draw):
    """Random walks that stay on the rectangle, some crossing themselves (loops), some not, and
    crossing each other (merges, or PEs that accept from two ports): long bent routes."""
    width, height = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    rx, tx = defaultdict(set), defaultdict(set)
    for _ in range(draw(st.integers(1, 3))):
        color = draw(st.sampled_from((0, 1)))
        here = (draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1)))
        if draw(st.integers(0, 3)) > 0:
            rx[(*here, color)].add("RAMP")
        self_avoiding, passed = draw(st.booleans()), {here}
        for _ in range(draw(st.integers(0, 12))):
            if draw(st.booleans()):
                tx[(*here, color)].add("RAMP")
            moves = [d for d, (dx, dy) in STEP.items()
                     if 0 <= here[0] + dx < width and 0 <= here[1] + dy < height
                     and not (self_avoiding and (here[0] + dx, here[1] + dy) in passed)]
            if not moves:
                break
            direction = draw(st.sampled_from(moves))
            tx[(*here, color)].add(direction)
            here = (here[0] + STEP[direction][0], here[1] + STEP[direction][1])
            rx[(*here, color)].add(OPPOSITE[direction])
            passed.add(here)
        tx[(*here, color)].add("RAMP")
    return width, height, {p: ColorConfig(rx[p], tx[p]) for p in rx}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_configs())
def test_random_configs_match_the_simulator(case):
    check_against_simulator(*case)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segment_configs())
def test_random_row_and_column_routes_match_the_simulator(case):
    check_against_simulator(*case)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walk_configs())
def test_random_walks_match_the_simulator(case):
    check_against_simulator(*case)


# -- scale ---------------------------------------------------------------------------------------


def test_a_256x256_rectangle_resolves_quickly():
    n = 256
    configs = column_broadcasts(n, n, color=0) | row_chains(n, n, color=1)
    start = time.perf_counter()
    routes = resolve_routes(n, n, configs)
    elapsed = time.perf_counter() - start
    assert (routes[0].dest_source == np.arange(n)[None, :]).all()
    assert (routes[0].hops == np.arange(n)[:, None]).all()
    assert (routes[1].dest_source[:, 1:] == np.arange(n)[:, None]).all()
    assert (routes[1].hops[:, 1:] == np.arange(1, n)[None, :]).all()
    assert elapsed < 10, elapsed
