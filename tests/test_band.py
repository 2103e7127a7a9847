"""Banded ticks (`wsejax.engine.band`): a program run with the narrowest band its routes allow
(WSEJAX_BAND=1) ends in the state, output and errors of the same program run with full ticks
only (WSEJAX_BAND=0), leaf for leaf, bit for bit; and the band's geometry by hand."""

from __future__ import annotations

import os
import pathlib
import shlex
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_progress import CHAIN_LAYOUT, CHAIN_PE

from wsejax import MemcpyDataType, MemcpyOrder, SdkRuntime, cli
from wsejax.csl import compile_csl
from wsejax.engine import band as band_module
from wsejax.engine.band import Band, band_origin, route_reach
from wsejax.errors import WsejaxError

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "csl"
ROW, B32 = MemcpyOrder.ROW_MAJOR, MemcpyDataType.MEMCPY_32BIT
# examples whose ticks may run banded; allreduce-2d runs <collectives_2d> (never banded)
BANDED = ["complete-program", "coords-classes", "data-index-task", "gemv-kxk",
          "gemv-streaming", "memcpy-orders", "relay-colors"]
FULL_ONLY = ["allreduce-2d"]


class Recorder:
    """The runtimes a test made, as they stop: their final state on the host."""

    def __init__(self, monkeypatch):
        self.runs = []
        stop = SdkRuntime.stop
        recorder = self

        def recording_stop(runtime):
            stop(runtime)
            recorder.runs.append(snapshot(runtime))

        monkeypatch.setattr(SdkRuntime, "stop", recording_stop)


def full_ticks_leaf(run: dict) -> int:
    """The index of the state's tick counter among a snapshot's leaves."""
    paths = jax.tree_util.tree_flatten_with_path(run["tree"].unflatten(run["leaves"]))[0]
    return next(i for i, (path, _) in enumerate(paths)
                if jax.tree_util.keystr(path).endswith(".ticks"))


def snapshot(runtime) -> dict:
    """Everything a run leaves: every array of the state, the fault texts, the band."""
    leaves, tree = jax.tree_util.tree_flatten(runtime.state)
    return {"leaves": [np.asarray(x) for x in leaves], "tree": tree,
            "faults": list(runtime.engine.fault_texts), "band": runtime.engine.band}


def assert_same_runs(full: list, banded: list) -> None:
    assert len(full) == len(banded) > 0
    for a, b in zip(full, banded):
        assert a["band"] is None
        assert a["tree"] == b["tree"]
        assert a["faults"] == b["faults"]
        for i, (x, y) in enumerate(zip(a["leaves"], b["leaves"])):
            assert x.dtype == y.dtype and x.shape == y.shape, i
            # bit for bit: NaNs and signed zeros included
            np.testing.assert_array_equal(np.atleast_1d(x).view(np.uint8),
                                          np.atleast_1d(y).view(np.uint8), err_msg=str(i))


def run_example(name: str, work: pathlib.Path, band: int, monkeypatch, capsys):
    """Compile example `name` in `work` (once) and run its host script in this process with
    WSEJAX_BAND=band: (its runs, what it printed)."""
    if not work.exists():
        shutil.copytree(EXAMPLES / name, work, ignore=shutil.ignore_patterns("out",
                                                                            "__pycache__"))
    monkeypatch.chdir(work)
    lines = [ln for ln in (work / "commands.txt").read_text().splitlines() if ln.strip()]
    compile_argv, run_argv = (shlex.split(ln)[1:] for ln in lines)
    if not (work / "out").exists():
        assert cli.main(compile_argv) == 0
    capsys.readouterr()
    with monkeypatch.context() as m:
        m.setenv("WSEJAX_BAND", str(band))
        recorder = Recorder(m)
        assert cli.main(run_argv) == 0
    out = capsys.readouterr().out
    assert "SUCCESS!" in out
    return recorder.runs, out


@pytest.mark.parametrize("name", BANDED + FULL_ONLY)
def test_an_example_runs_banded_as_with_full_ticks(name, tmp_path, monkeypatch, capsys):
    work = tmp_path / name
    full, out_full = run_example(name, work, 0, monkeypatch, capsys)
    banded, out_banded = run_example(name, work, 1, monkeypatch, capsys)
    assert out_full == out_banded
    assert_same_runs(full, banded)
    if name in BANDED:
        assert all(isinstance(r["band"], Band) for r in banded)
    else:
        assert all(r["band"] is None for r in banded)


def gemv(k: int, tile: int):
    params = {"k": k, "Mt": tile, "Nt": tile, "MEMCPYH2D_DATA_1_ID": 0,
              "MEMCPYH2D_DATA_2_ID": 1, "MEMCPYD2H_DATA_1_ID": 2}
    return compile_csl(EXAMPLES / "gemv-streaming" / "layout.csl", params=params, memcpy=True,
                       channels=1)


def run_gemv(program, k: int, tile: int, band: int, seed: int):
    """y = A x + b on the streaming GEMV with WSEJAX_BAND=band: (y, the runtime's snapshot)."""
    rng = np.random.default_rng(seed)
    n = k * tile
    a = rng.standard_normal((n, n)).astype(np.float32)
    x, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    tiles = a.reshape(k, tile, k, tile).transpose(0, 2, 1, 3).ravel()
    os.environ["WSEJAX_BAND"] = str(band)
    try:
        r = SdkRuntime(program)
    finally:
        del os.environ["WSEJAX_BAND"]
    r.load()
    r.run()
    kw = dict(order=ROW, data_type=B32, nonblock=False)
    y = np.zeros(n, np.float32)
    r.memcpy_h2d(r.get_id("A"), tiles, 0, 0, k, k, tile * tile, streaming=False, **kw)
    r.memcpy_h2d(0, x, 0, 0, k, 1, tile, streaming=True, **kw)
    r.memcpy_h2d(1, b, 0, 0, 1, k, tile, streaming=True, **kw)
    r.memcpy_d2h(y, 2, k - 1, 0, 1, k, tile, streaming=True, **kw)
    r.stop()
    np.testing.assert_allclose(y, a @ x + b, rtol=1e-4, atol=1e-4)
    return y, snapshot(r)


def count_banded(monkeypatch) -> list:
    """[the banded ticks run from now on]."""
    count = [0]
    real = band_module.banded_tick

    def counted(*args):
        out = real(*args)
        jax.debug.callback(lambda: count.__setitem__(0, count[0] + 1))
        return out

    monkeypatch.setattr(band_module, "banded_tick", counted)
    return count


@pytest.mark.parametrize("k, tile, band", [(5, 2, 1), (8, 3, 4), (12, 2, 5)])
def test_the_streaming_gemv_runs_banded_as_with_full_ticks(k, tile, band, monkeypatch):
    program = gemv(k, tile)
    y0, full = run_gemv(program, k, tile, 0, seed=k)
    # turn to banded ticks at the first tick that fits, so that nearly every such tick is
    # banded (by default a few full ticks come first)
    monkeypatch.setattr(band_module, "PATIENCE", 1)
    count = count_banded(monkeypatch)
    y1, banded = run_gemv(program, k, tile, band, seed=k)
    assert banded["band"] == Band(max(band, 3), 1)
    # the row reduction's ticks, most of the run, have work in a few columns only
    ticks = int(full["leaves"][full_ticks_leaf(full)])
    assert ticks / 2 < count[0] <= ticks
    np.testing.assert_array_equal(y0.view(np.uint32), y1.view(np.uint32))
    assert_same_runs([full], [banded])


def chain(tmp_path, band: int, monkeypatch, loop_limit=None, n=12, pe=CHAIN_PE):
    """The relay chain of `test_progress` (4 PEs, each adds 1) streaming n values with
    WSEJAX_BAND=band: (y or the error it raised, the snapshot)."""
    (tmp_path / "layout.csl").write_text(CHAIN_LAYOUT)
    (tmp_path / "pe.csl").write_text(pe)
    program = compile_csl(tmp_path / "layout.csl", memcpy=True)
    monkeypatch.setenv("WSEJAX_BAND", str(band))
    r = SdkRuntime(program, loop_limit=loop_limit)
    r.load()
    r.run()
    x = np.arange(n, dtype=np.float32)
    y = np.zeros(n, np.float32)
    kw = dict(order=ROW, data_type=B32, nonblock=False)
    try:
        r.memcpy_h2d(2, x, 0, 0, 1, 1, n, streaming=True, **kw)
        r.memcpy_d2h(y, 3, 3, 0, 1, 1, n, streaming=True, **kw)
        got = y
    except WsejaxError as err:
        got = str(err)
    return got, snapshot(r)


def test_a_deadlock_is_reported_alike_banded(tmp_path, monkeypatch):
    # one tick a command: the chain stops short, and the report names what each PE holds
    full_text, full = chain(tmp_path, 0, monkeypatch, loop_limit=1)
    band_text, banded = chain(tmp_path, 1, monkeypatch, loop_limit=1)
    assert isinstance(full_text, str) and "took 8 of 12 wavelets" in full_text, full_text
    assert band_text == full_text
    assert banded["band"] == Band(3, 1)
    assert_same_runs([full], [banded])


def test_a_fault_is_reported_alike_banded(tmp_path, monkeypatch):
    # the last PE sends on, where no route leads from its ramp: it faults
    pe = CHAIN_PE.replace("const out_color = if (last) sys.MEMCPYD2H_1 else send;",
                          "const out_color = send;")
    assert pe != CHAIN_PE
    full_text, full = chain(tmp_path, 0, monkeypatch, pe=pe)
    band_text, banded = chain(tmp_path, 1, monkeypatch, pe=pe)
    assert isinstance(full_text, str) and "PE (3, 0)" in full_text, full_text
    assert "color 6 has nowhere to go" in full_text, full_text
    assert band_text == full_text
    assert banded["band"] == Band(3, 1)
    assert_same_runs([full], [banded])


def test_the_chain_runs_banded_as_with_full_ticks(tmp_path, monkeypatch):
    y0, full = chain(tmp_path, 0, monkeypatch)
    y1, banded = chain(tmp_path, 1, monkeypatch)
    np.testing.assert_array_equal(y0, np.arange(12, dtype=np.float32) + 4)
    np.testing.assert_array_equal(y1, y0)
    assert_same_runs([full], [banded])


def test_route_reach_is_the_farthest_column_a_route_delivers_from():
    h, w = 2, 5
    gather = np.full((h, w, 2), -1, np.int32)
    gather[0, 1, 0] = 0 * w + 0          # (0, 1) reads (0, 0): one column
    gather[1, 4, 1] = 0 * w + 1          # (1, 4) reads (0, 1): three columns
    assert route_reach(gather) == 3
    gather[1, 4, 1] = h * w + 1 * w + 4  # a partner color's row of (1, 4): none
    assert route_reach(gather) == 1
    assert route_reach(np.full((h, w, 1), -1, np.int32)) == 0


@pytest.mark.parametrize("work, origin, fits", [
    ("..........", 0, True),         # no work: any band
    ("...##.....", 2, True),         # [3, 4] and one column each side
    ("#.........", 0, True),         # at the west edge: no column beyond it
    (".........#", 4, True),         # at the east edge: the band ends there
    ("..#...#...", 1, False),        # [1, 7] is wider than 6 columns
    ("..#..#....", 1, True),         # [1, 6] is not
])
def test_the_band_holds_the_columns_with_work_and_their_reach(work, origin, fits):
    x0, ok = band_origin(Band(6, 1), jnp.asarray([c == "#" for c in work]))
    assert (int(x0), bool(ok)) == (origin, fits)


def test_work_that_fits_the_band_only_briefly_compiles_no_banded_loop(tmp_path):
    # Jacobi sweeps: every column works on nearly every tick; the banded loop, compiled only
    # once PATIENCE ticks in a row fit the band, is never compiled, and the result is numpy's
    work = tmp_path / "jacobi"
    shutil.copytree(EXAMPLES / "jacobi-2d", work)
    w, h, nz, iters = 32, 2, 2, 2
    program = compile_csl(work / "layout.csl", memcpy=True, params=dict(
        width=w, height=h, nz=nz, iters=iters))
    r = SdkRuntime(program)
    u0 = np.random.default_rng(5).standard_normal((h, w, nz)).astype(np.float32)
    r.load()
    r.run()
    assert r.engine.band is not None
    r.memcpy_h2d(r.get_id("u"), u0.ravel(), 0, 0, w, h, nz, streaming=False, order=ROW,
                 data_type=B32, nonblock=False)
    r.launch("sweep", nonblock=False)
    u = np.zeros(w * h * nz, np.float32)
    r.memcpy_d2h(u, r.get_id("u"), 0, 0, w, h, nz, streaming=False, order=ROW,
                 data_type=B32, nonblock=False)
    r.stop()
    pieces = r.engine._commands["pieces"][0]
    assert pieces[False]._cache_size() == 1 and pieces[True]._cache_size() == 0
    want = u0
    for _ in range(iters):
        pad = np.pad(want, ((1, 1), (1, 1), (0, 0)))
        acc = np.zeros_like(want)
        for part in (pad[1:-1, :-2], pad[1:-1, 2:], pad[:-2, 1:-1], pad[2:, 1:-1]):
            acc = acc + part
        want = acc * np.float32(0.25)
    np.testing.assert_allclose(u.reshape(h, w, nz), want, rtol=1e-6, atol=1e-6)
