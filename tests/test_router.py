"""wsejax.engine.router: one tick of routing, against a numpy oracle of its contract, on one
shard and on grids split into shards (the tables in a numpy model of the shard-local steps,
and the shard_map itself on 8 CPU devices, in a subprocess since JAX reads
`--xla_force_host_platform_device_count` at start-up)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from jax.sharding import AbstractMesh

from wsejax.engine.router import build_router
from wsejax.routes import ColorRoutes

CAP = 4
MESHES = [(1, 1), (2, 2), (4, 1), (1, 4), (2, 4)]


def random_routes(rng, h: int, w: int, colors) -> dict:
    """Each color: a few random sources, every PE receiving from one of them or nothing
    (any pattern: the router only reads `sources` and `dest_source`)."""
    out = {}
    for col in colors:
        n = int(rng.integers(1, 5))
        flat = rng.choice(h * w, size=n, replace=False)
        sources = np.stack([flat % w, flat // w], 1).astype(np.int32)
        dest = rng.integers(-1, n, size=(h, w)).astype(np.int32)
        out[col] = ColorRoutes(col, sources, dest, np.where(dest >= 0, 1, -1))
    return out


def random_queues(rng, h: int, w: int, c: int):
    count = rng.integers(0, CAP + 1, size=(h, w, c)).astype(np.int32)
    free = rng.integers(0, CAP + 1, size=(h, w, c)).astype(np.int32)
    words = rng.integers(0, 2**32, size=(h, w, c, CAP), dtype=np.uint32)
    return count, free, words


def oracle(routes, colors, count, free, words):
    """The contract, color by color: a source sends as many wavelets as it holds and every
    one of its destinations can take; each destination receives them."""
    n = np.zeros(count.shape, np.int32)
    k = np.zeros(count.shape, np.int32)
    got = np.zeros(words.shape, np.uint32)
    for c, col in enumerate(colors):
        r = routes[col]
        for i, (x, y) in enumerate(r.sources.tolist()):
            dests = np.argwhere(r.dest_source == i)
            if not len(dests):
                continue
            sent = min(count[y, x, c], min(free[dy, dx, c] for dy, dx in dests))
            n[y, x, c] = sent
            for dy, dx in dests:
                k[dy, dx, c] = sent
                got[dy, dx, c] = words[y, x, c]
    return n, k, got


def per_color(count, free, words):
    """The router's arguments: lists of each color's `[H, W, ...]` arrays."""
    return tuple([a[:, :, c] for c in range(a.shape[2])] for a in (count, free, words))


def assert_delivers(result, expected):
    n, k, got = (np.stack([np.asarray(x) for x in a], axis=2) for a in result)
    en, ek, egot = expected
    np.testing.assert_array_equal(n, en)
    np.testing.assert_array_equal(k, ek)
    valid = np.arange(CAP) < ek[..., None]
    np.testing.assert_array_equal(np.where(valid, got, 0), np.where(valid, egot, 0))


def shard_model(router, shape, count, free, words):
    """The shard-local steps of `Router._step` in numpy, shard by shard and color by color,
    with a ppermute between shards modelled by the router's links (what reaches no shard is
    zeros). Returns lists per color, like the router."""
    dy, dx = shape
    h, w, nc, cap = words.shape
    hl, wl = h // dy, w // dx
    npe = hl * wl
    shards = [(sy, sx) for sy in range(dy) for sx in range(dx)]

    def local(a, s, c):
        return a[s[0] * hl:(s[0] + 1) * hl, s[1] * wl:(s[1] + 1) * wl, c].reshape(
            (npe,) + a.shape[3:])

    def segment(table, sizes, c):
        start = sum(sizes[:c])
        return table[start:start + sizes[c]]

    rows = [npe + sum(sizes[c] for sizes in router.sizes) for c in range(nc)]
    big = np.iinfo(np.int32).max
    room, minfree = {}, {}
    for s in shards:
        for c in range(nc):
            g = local(router.gather, s, c)
            room[s, c] = np.full(rows[c] + 1, big, np.int64)
            np.minimum.at(room[s, c], np.where(g >= 0, g, rows[c]), local(free, s, c))
            minfree[s, c] = room[s, c][:npe].copy()
    at = [npe] * nc
    for links, table, sizes in zip(router.links, router.send, router.sizes):
        for a, b in links:
            src, dst = shards[a], shards[b]
            for c in range(nc):
                seg = segment(table[src], sizes, c)
                back = room[dst, c][at[c]:at[c] + sizes[c]]
                np.minimum.at(minfree[src, c], seg[seg < npe], back[seg < npe])
        at = [a + k for a, k in zip(at, sizes)]
    n = {(s, c): np.where(local(router.is_source, s, c),
                          np.minimum(local(count, s, c), minfree[s, c]), 0)
         for s in shards for c in range(nc)}
    n_in = {(s, c): [n[s, c]] for s in shards for c in range(nc)}
    words_in = {(s, c): [local(words, s, c)] for s in shards for c in range(nc)}
    for links, table, sizes in zip(router.links, router.send, router.sizes):
        into = {shards[b]: shards[a] for a, b in links}
        for s in shards:
            for c in range(nc):
                rn = np.zeros(sizes[c], np.int64)
                rw = np.zeros((sizes[c], cap), np.uint32)
                if s in into:
                    seg = segment(table[into[s]], sizes, c)
                    ok = seg < npe
                    rn[ok] = n[into[s], c][seg[ok]]
                    rw[ok] = local(words, into[s], c)[seg[ok]]
                n_in[s, c].append(rn)
                words_in[s, c].append(rw)
    out = [np.zeros(count.shape, np.int64), np.zeros(count.shape, np.int64),
           np.zeros(words.shape, np.uint32)]
    for s in shards:
        sl = np.s_[s[0] * hl:(s[0] + 1) * hl, s[1] * wl:(s[1] + 1) * wl]
        for c in range(nc):
            g = local(router.gather, s, c)
            src = np.maximum(g, 0)
            out[0][sl + (c,)] = n[s, c].reshape(hl, wl)
            out[1][sl + (c,)] = np.where(g >= 0, np.concatenate(n_in[s, c])[src], 0).reshape(
                hl, wl)
            out[2][sl + (c,)] = np.concatenate(words_in[s, c])[src].reshape(hl, wl, cap)
    return tuple([a[:, :, c] for c in range(nc)] for a in out)


def test_one_shard_delivers_like_the_oracle(rng):
    h, w, colors = 4, 6, [3, 7]
    for _ in range(5):
        routes = random_routes(rng, h, w, colors)
        router = build_router(routes, colors, (h, w), None)
        assert router.offsets == () and router.send == ()
        q = random_queues(rng, h, w, len(colors))
        assert_delivers(router(*per_color(*q)), oracle(routes, colors, *q))


def test_no_routed_color():
    router = build_router({}, [], (2, 4), AbstractMesh((2, 2), ("y", "x")))
    assert router.colors == () and router.offsets == () and router.gather.shape == (2, 4, 0)


def test_back_pressure_waits_for_the_fullest_destination():
    # PE (0, 0) multicasts to (1, 0) and (3, 1); (3, 1) has room for one wavelet only
    dest = np.full((2, 4), -1, np.int32)
    dest[0, 1] = dest[1, 3] = 0
    routes = {0: ColorRoutes(0, np.array([[0, 0]], np.int32), dest, dest)}
    count = np.zeros((2, 4, 1), np.int32)
    count[0, 0] = 3
    free = np.full((2, 4, 1), CAP, np.int32)
    free[1, 3] = 1
    words = np.arange(2 * 4 * CAP, dtype=np.uint32).reshape(2, 4, 1, CAP)
    router = build_router(routes, [0], (2, 4), AbstractMesh((2, 2), ("y", "x")))
    assert router.offsets == ((1, 1),)
    (n,), (k,), (got,) = shard_model(router, (2, 2), count, free, words)
    assert n[0, 0] == 1 and k[0, 1] == 1 and k[1, 3] == 1
    assert got[1, 3, 0] == words[0, 0, 0, 0]


@pytest.mark.parametrize("shape", MESHES)
def test_shard_tables_deliver_like_the_oracle(rng, shape):
    h, w, colors = 4, 8, [0, 2, 5]
    for _ in range(4):
        routes = random_routes(rng, h, w, colors)
        router = build_router(routes, colors, (h, w), AbstractMesh(shape, ("y", "x")))
        assert (0, 0) not in router.offsets
        for (oy, ox), links, table in zip(router.offsets, router.links, router.send):
            assert table.shape[:2] == shape
            for a, b in links:
                assert b == a + oy * shape[1] + ox
        q = random_queues(rng, h, w, len(colors))
        assert_delivers(shard_model(router, shape, *q), oracle(routes, colors, *q))


def test_sharded_router_on_eight_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    out = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [tuple(r["mesh"]) for r in rows] == [m for m in MESHES if m != (1, 1)] * 3
    for r in rows:
        assert r["same"], r
        # two collective-permutes an offset, one all-reduce (whether any shard sends to
        # another), nothing gathered across devices
        assert r["collectives"].get("collective-permute", 0) == 2 * r["offsets"], r
        assert r["collectives"].get("all-reduce", 0) == 1, r
        assert "all-gather" not in r["collectives"] and "all-to-all" not in r["collectives"], r


def remote_sources(routes, colors, grid, shape):
    """`[H, W, C]` bool: the sources with a destination in another shard."""
    blk = (grid[0] // shape[0], grid[1] // shape[1])
    out = np.zeros(grid + (len(colors),), bool)
    for c, col in enumerate(colors):
        r = routes[col]
        for y, x in np.argwhere(r.dest_source >= 0):
            sx, sy = r.sources[r.dest_source[y, x]]
            if (y // blk[0], x // blk[1]) != (sy // blk[0], sx // blk[1]):
                out[sy, sx, c] = True
    return out


def _main() -> None:
    """The subprocess of `test_sharded_router_on_eight_devices`: on real meshes of CPU devices,
    the jitted router (inputs split over the mesh) against the oracle; one JSON line each."""
    import collections
    import re

    import jax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    jax.config.update("jax_numpy_dtype_promotion", "strict")
    rng = np.random.default_rng(7)
    h, w, colors = 4, 8, [1, 4]
    for case in range(3):
        routes = random_routes(rng, h, w, colors)
        q = random_queues(rng, h, w, len(colors))
        for shape in MESHES[1:]:
            mesh = Mesh(np.array(jax.devices()[:shape[0] * shape[1]]).reshape(shape), ("y", "x"))
            router = build_router(routes, colors, (h, w), mesh)
            if case == 2:
                # only sources whose destinations are all in their own shard hold wavelets:
                # every offset is idle
                count = q[0] * ~remote_sources(routes, colors, (h, w), shape)
                q = (count,) + q[1:]
            expected = oracle(routes, colors, *q)
            args = jax.device_put(per_color(*q), NamedSharding(mesh, P("y", "x")))
            fn = jax.jit(router.__call__)
            hlo = fn.lower(*args).compile().as_text()
            ops = collections.Counter(re.findall(
                r" (all-gather|all-reduce|collective-permute|all-to-all)(?:-start)?\(", hlo))
            try:
                assert_delivers(fn(*args), expected)
                same = True
            except AssertionError:
                same = False
            print(json.dumps({"mesh": shape, "offsets": len(router.offsets), "same": same,
                              "collectives": dict(ops)}), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    _main()
