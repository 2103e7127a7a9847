"""wsejax.engine.router with color swapping: a ramp of one color of a pair receiving what a CE
sent on the other, against a numpy oracle of the contract, on one shard and on grids split
into shards (on 8 CPU devices, in a subprocess as in tests/test_router.py)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from wsejax.engine.router import build_router, routed_channels
from wsejax.routes import ColorRoutes, source_colors

CAP = 4
MESHES = [(2, 2), (4, 1), (1, 4), (2, 4)]
COLORS = [2, 3, 6]      # 2 and 3 a swapping pair, 6 a color of its own


def swapped_routes(rng, h: int, w: int) -> dict:
    """Colors 2 and 3 share their sources, each a (PE, color sent) pair, and each PE's ramp of
    either color receives from one of them or nothing; color 6 is routed as without swapping."""
    n = int(rng.integers(2, 6))
    key = rng.choice(h * w * 2, size=n, replace=False)
    key.sort()
    at, sent = key // 2, 2 + key % 2
    sources = np.stack([at % w, at // w], 1).astype(np.int32)
    out = {}
    for col in (2, 3):
        dest = rng.integers(-1, n, size=(h, w)).astype(np.int32)
        out[col] = ColorRoutes(col, sources, dest, np.where(dest >= 0, 1, -1),
                               sent.astype(np.int32))
    flat = rng.choice(h * w, size=3, replace=False)
    dest = rng.integers(-1, 3, size=(h, w)).astype(np.int32)
    out[6] = ColorRoutes(6, np.stack([flat % w, flat // w], 1).astype(np.int32), dest,
                         np.where(dest >= 0, 1, -1))
    return out


def random_queues(rng, h: int, w: int, c: int):
    count = rng.integers(0, CAP + 1, size=(h, w, c)).astype(np.int32)
    free = rng.integers(0, CAP + 1, size=(h, w, c)).astype(np.int32)
    words = rng.integers(0, 2**32, size=(h, w, c, CAP), dtype=np.uint32)
    return count, free, words


def oracle(routes, colors, count, free, words):
    """The contract: a source (a PE and the color it sent on) sends as many wavelets as it
    holds and every destination (a PE and the color its ramp receives them as) can take."""
    dests = {}
    for c, col in enumerate(colors):
        r = routes[col]
        sent = source_colors(r)
        for y, x in np.argwhere(r.dest_source >= 0):
            i = r.dest_source[y, x]
            sx, sy = r.sources[i]
            dests.setdefault((int(sy), int(sx), colors.index(int(sent[i]))), []).append(
                (y, x, c))
    n = np.zeros(count.shape, np.int32)
    k = np.zeros(count.shape, np.int32)
    got = np.zeros(words.shape, np.uint32)
    for (y, x, c), ds in dests.items():
        sent = min(count[y, x, c], min(free[d] for d in ds))
        n[y, x, c] = sent
        for d in ds:
            k[d] = sent
            got[d] = words[y, x, c]
    return n, k, got


def per_color(count, free, words):
    return tuple([a[:, :, c] for c in range(a.shape[2])] for a in (count, free, words))


def assert_delivers(result, expected):
    n, k, got = (np.stack([np.asarray(x) for x in a], axis=2) for a in result)
    en, ek, egot = expected
    np.testing.assert_array_equal(n, en)
    np.testing.assert_array_equal(k, ek)
    valid = np.arange(CAP) < ek[..., None]
    np.testing.assert_array_equal(np.where(valid, got, 0), np.where(valid, egot, 0))


def test_one_shard_delivers_across_the_pair_like_the_oracle():
    rng = np.random.default_rng(3)
    h, w = 4, 6
    for _ in range(6):
        routes = swapped_routes(rng, h, w)
        router = build_router(routes, COLORS, (h, w), None)
        assert router.partner in ((), (1, 0, -1), (1, -1, -1), (-1, 0, -1))
        q = random_queues(rng, h, w, len(COLORS))
        assert_delivers(router(*per_color(*q)), oracle(routes, COLORS, *q))


def test_a_color_that_only_receives_is_routed():
    # PE (0, 0) sends on 3; PE (1, 0) receives it as 2; nothing sends on 2
    src = np.array([[0, 0]], np.int32)
    routes = {2: ColorRoutes(2, src, np.array([[-1, 0]], np.int32), np.array([[-1, 1]]),
                             np.array([3], np.int32)),
              3: ColorRoutes(3, src, np.array([[-1, -1]], np.int32), np.array([[-1, -1]]),
                             np.array([3], np.int32))}
    assert routed_channels(routes, [3]) == [2, 3]
    assert routed_channels(routes, [2]) == []
    router = build_router(routes, [2, 3], (1, 2), None, [3])
    assert router.partner == (1, -1)
    assert router.is_source[0, 0].tolist() == [False, True]
    count = np.array([[[0, 3], [0, 0]]], np.int32)
    free = np.array([[[4, 4], [2, 4]]], np.int32)
    words = np.arange(16, dtype=np.uint32).reshape(1, 2, 2, CAP)
    (n2, n3), (k2, k3), (g2, _) = router(*per_color(count, free, words))
    assert np.asarray(n3).tolist() == [[2, 0]] and np.asarray(n2).tolist() == [[0, 0]]
    assert np.asarray(k2).tolist() == [[0, 2]] and np.asarray(k3).tolist() == [[0, 0]]
    assert np.asarray(g2)[0, 1, :2].tolist() == words[0, 0, 1, :2].tolist()


@pytest.mark.slow
def test_sharded_swapping_router_on_eight_devices():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    out = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [tuple(r["mesh"]) for r in rows] == MESHES * 3
    for r in rows:
        assert r["same"], r
        assert r["offsets"] > 0, r


def _main() -> None:
    """The subprocess: the jitted router on real meshes of CPU devices against the oracle."""
    import jax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    jax.config.update("jax_numpy_dtype_promotion", "strict")
    rng = np.random.default_rng(11)
    h, w = 4, 8
    for _ in range(3):
        routes = swapped_routes(rng, h, w)
        q = random_queues(rng, h, w, len(COLORS))
        expected = oracle(routes, COLORS, *q)
        for shape in MESHES:
            mesh = Mesh(np.array(jax.devices()[:shape[0] * shape[1]]).reshape(shape), ("y", "x"))
            router = build_router(routes, COLORS, (h, w), mesh)
            args = jax.device_put(per_color(*q), NamedSharding(mesh, P("y", "x")))
            try:
                assert_delivers(jax.jit(router.__call__)(*args), expected)
                same = True
            except AssertionError:
                same = False
            print(json.dumps({"mesh": shape, "offsets": len(router.offsets), "same": same}),
                  flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    _main()
