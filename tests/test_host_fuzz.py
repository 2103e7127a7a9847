"""Host calls with mutated arguments: every `SdkRuntime` call either works or raises a
`WsejaxError`, and a runtime that refused a call still serves good ones (its state is intact).

`make test` draws the same examples every time (derandomized); the wide run is marked slow."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax import MemcpyDataType, MemcpyOrder, SdkRuntime, WsejaxError
from wsejax.csl import compile_csl

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAMES = ["A", "x", "b", "y", "compute", "nope", ""]
W, H, N = 2, 2, 5           # the program's rectangle; x holds N f32 per PE


@pytest.fixture(scope="module")
def runner():
    prog = compile_csl(ROOT / "examples" / "csl" / "gemv-2x2" / "layout.csl",
                       params={"Mt": 4, "Nt": N}, memcpy=True, fabric_dims=(9, 4),
                       fabric_offsets=(4, 1))
    r = SdkRuntime(prog)
    r.load()
    r.run()
    return r


ints = st.one_of(st.integers(-2, 12), st.sampled_from([2**31, 2**40, -(2**33)]),
                 st.floats(allow_nan=True, width=32), st.none(), st.text(max_size=2),
                 st.booleans())
dtypes = st.sampled_from([np.float32, np.uint32, np.int16, np.float64, np.uint8, ">f4", "<u4",
                          np.bool_, np.complex64])
arrays = st.builds(lambda n, dt, two: np.zeros((n // 2, 2) if two else n, dt),
                   st.integers(0, 48), dtypes, st.booleans()) | st.sampled_from(
                       [None, [1.0, 2.0], "data", 3.5])
orders = st.sampled_from([MemcpyOrder.ROW_MAJOR, MemcpyOrder.COL_MAJOR, 0, 1, 7, "ROW", None,
                          MemcpyDataType.MEMCPY_32BIT])
data_types = st.sampled_from([MemcpyDataType.MEMCPY_32BIT, MemcpyDataType.MEMCPY_16BIT, 0, 1,
                              5, "32", None, MemcpyOrder.COL_MAJOR])


@st.composite
def host_call(draw):
    """A method name and its arguments, each possibly wrong."""
    kind = draw(st.sampled_from(["memcpy_h2d", "memcpy_h2d_rowbcast", "memcpy_h2d_colbcast",
                                 "memcpy_d2h", "launch", "call", "read_symbol", "get_id"]))
    sym = draw(st.one_of(st.sampled_from(NAMES), ints))
    if kind == "get_id":
        return kind, (sym,), {}
    if kind in ("launch", "call"):
        # a well-formed launch of `compute` runs the program (a second run overflows its
        # DSDs, a device fault the program earns): only launches with something wrong
        args = draw(st.lists(ints, min_size=1 if sym == "compute" else 0, max_size=2))
        if kind == "call":
            return kind, (sym, args), {"nonblock": draw(st.booleans())}
        return kind, (sym, *args), {"nonblock": draw(st.booleans())}
    if kind == "read_symbol":
        return kind, (draw(ints), draw(ints), sym), {"dtype": draw(dtypes | st.just("nope"))}
    roi = tuple(draw(ints) for _ in range(5))
    kw = {"streaming": draw(st.booleans()), "order": draw(orders),
          "data_type": draw(data_types), "nonblock": draw(st.booleans())}
    if draw(st.booleans()):
        # the symbol as the SDK passes it: an id from get_id
        sym = draw(st.sampled_from([0, 1, 2, 3, 4, 99, -1]))
    if kind == "memcpy_d2h":
        return kind, (draw(arrays), sym, *roi), kw
    return kind, (sym, draw(arrays), *roi), kw


def call_quietly(runner, kind, args, kw):
    try:
        getattr(runner, kind)(*args, **kw)
    except WsejaxError:
        pass


def round_trip_works(runner):
    """A good h2d then d2h of `x` gives back what was sent."""
    x = np.arange(W * H * N, dtype=np.float32) * 0.5 - 3.0
    runner.memcpy_h2d(runner.get_id("x"), x.copy(), 0, 0, W, H, N, streaming=False,
                      order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT)
    back = np.zeros_like(x)
    runner.memcpy_d2h(back, runner.get_id("x"), 0, 0, W, H, N, streaming=False,
                      order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT)
    np.testing.assert_array_equal(back, x)


def fuzz(max_examples: int, wide: bool):
    return settings(max_examples=max_examples, deadline=None, derandomize=not wide,
                    database=None if not wide else settings.default.database,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@fuzz(150, wide=False)
@given(st.lists(host_call(), min_size=1, max_size=4))
def test_mutated_host_calls_fail_only_with_wsejax_errors(runner, calls):
    for kind, args, kw in calls:
        call_quietly(runner, kind, args, kw)
    round_trip_works(runner)


@pytest.mark.slow
@fuzz(1500, wide=True)
@given(st.lists(host_call(), min_size=1, max_size=6))
def test_mutated_host_calls_fail_only_with_wsejax_errors_wide(runner, calls):
    for kind, args, kw in calls:
        call_quietly(runner, kind, args, kw)
    round_trip_works(runner)
