"""Host round trips: a command costs a fixed number of jitted dispatches and device-to-host
transfers, however many engine ticks its fabric loop runs (no Python runs per tick)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from wsejax import MemcpyDataType, MemcpyOrder, SdkRuntime
from wsejax.csl import compile_csl

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "csl" / \
    "gemv-streaming" / "layout.csl"
ROW, B32 = MemcpyOrder.ROW_MAJOR, MemcpyDataType.MEMCPY_32BIT


def streaming_gemv(k: int, tile: int):
    """Run the streaming GEMV's four commands; (y is right, ticks, round trips)."""
    program = compile_csl(EXAMPLE, memcpy=True, params={
        "k": k, "Mt": tile, "Nt": tile, "MEMCPYH2D_DATA_1_ID": 0, "MEMCPYH2D_DATA_2_ID": 1,
        "MEMCPYD2H_DATA_1_ID": 2})
    rng = np.random.default_rng(k)
    a = rng.standard_normal((k * tile, k * tile)).astype(np.float32)
    x = rng.standard_normal(k * tile).astype(np.float32)
    b = rng.standard_normal(k * tile).astype(np.float32)
    r = SdkRuntime(program)
    r.load()
    r.run()
    kw = dict(order=ROW, data_type=B32, nonblock=False)
    tiles = a.reshape(k, tile, k, tile).transpose(0, 2, 1, 3).ravel()
    r.memcpy_h2d(r.get_id("A"), tiles, 0, 0, k, k, tile * tile, streaming=False, **kw)
    r.memcpy_h2d(0, x, 0, 0, k, 1, tile, streaming=True, **kw)
    r.memcpy_h2d(1, b, 0, 0, 1, k, tile, streaming=True, **kw)
    y = np.zeros(k * tile, np.float32)
    r.memcpy_d2h(y, 2, k - 1, 0, 1, k, tile, streaming=True, **kw)
    r.stop()
    ok = np.allclose(y, a @ x + b, rtol=1e-4, atol=1e-4)
    return ok, int(r.state.fab.ticks), r.host_round_trips()


@pytest.fixture(scope="module")
def runs():
    return [streaming_gemv(2, 2), streaming_gemv(5, 12)]


def test_round_trips_do_not_grow_with_ticks(runs):
    (ok_small, ticks_small, small), (ok_big, ticks_big, big) = runs
    assert ok_small and ok_big
    assert ticks_big > 2 * ticks_small          # the fabric loops ran very different lengths
    assert small == big                          # ... with the same host round trips
    assert small["commands"] == 4


def test_each_command_makes_at_most_three_round_trips(runs):
    _, _, trips = runs[0]
    # a stream: its loop, the check of three flags, and (out) the fetch of its wavelets
    assert trips["dispatches"] + trips["fetches"] <= 3 * trips["commands"]
