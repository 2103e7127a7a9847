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


def assert_delivers(result, expected):
    n, k, got = (np.asarray(a) for a in result)
    en, ek, egot = expected
    np.testing.assert_array_equal(n, en)
    np.testing.assert_array_equal(k, ek)
    valid = np.arange(CAP) < ek[..., None]
    np.testing.assert_array_equal(np.where(valid, got, 0), np.where(valid, egot, 0))


def shard_model(router, shape, count, free, words):
    """The shard-local steps of `Router._tick` in numpy, shard by shard, with a ppermute
    between shards modelled by the router's links (what reaches no shard is zeros)."""
    dy, dx = shape
    h, w, c, cap = words.shape
    hl, wl = h // dy, w // dx
    L = hl * wl * c
    shards = [(sy, sx) for sy in range(dy) for sx in range(dx)]

    def local(a, s):
        return a[s[0] * hl:(s[0] + 1) * hl, s[1] * wl:(s[1] + 1) * wl].reshape((L,) + a.shape[3:])

    sizes = [t.shape[-1] for t in router.send]
    rows = L + sum(sizes)
    big = np.iinfo(np.int32).max
    room, minfree = {}, {}
    for s in shards:
        g = local(router.gather, s)
        room[s] = np.full(rows + 1, big, np.int64)
        np.minimum.at(room[s], np.where(g >= 0, g, rows), local(free, s))
        minfree[s] = room[s][:L].copy()
    base = L
    for links, table, size in zip(router.links, router.send, sizes):
        for a, b in links:
            src = shards[a]
            idx = table[src]
            back = room[shards[b]][base:base + size]
            ok = idx < L
            np.minimum.at(minfree[src], idx[ok], back[ok])
        base += size
    n = {s: np.where(local(router.is_source, s), np.minimum(local(count, s), minfree[s]), 0)
         for s in shards}
    packet = {s: np.concatenate([n[s][:, None].astype(np.uint32), local(words, s)], 1)
              for s in shards}
    received = {s: [packet[s]] for s in shards}
    for links, table, size in zip(router.links, router.send, sizes):
        into = {shards[b]: shards[a] for a, b in links}
        for s in shards:
            part = np.zeros((size, cap + 1), np.uint32)
            if s in into:
                src = into[s]
                idx = table[src]
                part[idx < L] = packet[src][idx[idx < L]]
            received[s].append(part)
    out_n = np.zeros(count.shape, np.int32)
    out_k = np.zeros(count.shape, np.int32)
    out_got = np.zeros(words.shape, np.uint32)
    for s in shards:
        g = local(router.gather, s)
        rows_in = np.concatenate(received[s])
        got = rows_in[np.maximum(g, 0)]
        sl = np.s_[s[0] * hl:(s[0] + 1) * hl, s[1] * wl:(s[1] + 1) * wl]
        out_n[sl] = n[s].reshape(hl, wl, c)
        out_k[sl] = np.where(g >= 0, got[:, 0].astype(np.int32), 0).reshape(hl, wl, c)
        out_got[sl] = got[:, 1:].reshape(hl, wl, c, cap)
    return out_n, out_k, out_got


def test_one_shard_delivers_like_the_oracle(rng):
    h, w, colors = 4, 6, [3, 7]
    for _ in range(5):
        routes = random_routes(rng, h, w, colors)
        router = build_router(routes, colors, (h, w), None)
        assert router.offsets == () and router.send == ()
        q = random_queues(rng, h, w, len(colors))
        assert_delivers(router(*q), oracle(routes, colors, *q))


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
    n, k, got = shard_model(router, (2, 2), count, free, words)
    assert n[0, 0, 0] == 1 and k[0, 1, 0] == 1 and k[1, 3, 0] == 1
    assert got[1, 3, 0, 0] == words[0, 0, 0, 0]


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
            args = [jax.device_put(a, NamedSharding(mesh, P("y", "x"))) for a in q]
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
