"""Throughput of the k x k streaming GEMV (`examples/csl/gemv-streaming`) on the emulated fabric.

The CSL program is compiled for each k; A is copied in, x and b stream in, y streams out
(four host commands, spec 12.4-12.5). Per k the benchmark reports:

- the time to build the Program (`compile_csl`), the first run (which compiles every command's
  jitted loop) apart from the median of warm runs (`load()` resets the state, same engine);
- engine ticks, wavelets moved (routed, injected and drained) and PE-task invocations per run,
  and their rates over the warm run time;
- the emulated bytes per PE (every per-PE array of the state: memory, task bits, queues,
  microthread slots, tables) against the PE program's declared memory ("B/PE");
- the reference interpreter (`wsejax.reference`, pure Python, one PE at a time) on the same
  program and host data, as the unvectorised baseline, up to `--reference-max-k` (above that
  reported as null, never extrapolated), with the speed-up over it;
- the warm run's cost per PE per tick ("ns/PE/tick"), beside the machine's bound for a step of
  the same fabric: a numpy stencil step over arrays of the run's shapes (`stencil_step`: the
  wavelet queues of the three routed colors moved one PE south or east with slices, and one
  multiply-add of a column of each PE's tile into its y), timed on its own in the same process.

    python benchmarks/dataflow.py                   # k = 4, 8, 16, 32, 64
    python benchmarks/dataflow.py --quick           # a smoke run
    python benchmarks/dataflow.py --ks 32 --tile 16 --repeats 5
    python benchmarks/dataflow.py --ks 750 --repeats 1 --programs DIR   # builds once into DIR
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import numpy as np

from wsejax import MemcpyDataType, MemcpyOrder, SdkRuntime
from wsejax.artifacts import load_program, save_program
from wsejax.csl import compile_csl
from wsejax.fabric import QUEUE_CAPACITY
from wsejax.reference import Reference

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "csl" / "gemv-streaming" / "layout.csl"
X_COLOR, B_COLOR, Y_COLOR = 0, 1, 2
ROW, B32 = MemcpyOrder.ROW_MAJOR, MemcpyDataType.MEMCPY_32BIT


def build(k: int, tile: int, programs: str | None = None, timings: dict | None = None):
    """The Program for k x k PEs; with `programs`, read from (or, the first time, compiled
    into) the compile output directory `programs/k<k>-t<tile>`. `timings` receives the
    seconds of each build phase (`compile_csl(timings=...)`)."""
    out = None if programs is None else Path(programs) / f"k{k}-t{tile}"
    if out is not None and (out / "out.json").exists():
        return load_program(out)
    params = {"k": k, "Mt": tile, "Nt": tile, "MEMCPYH2D_DATA_1_ID": X_COLOR,
              "MEMCPYH2D_DATA_2_ID": B_COLOR, "MEMCPYD2H_DATA_1_ID": Y_COLOR}
    program = compile_csl(EXAMPLE, params=params, memcpy=True, channels=1, timings=timings)
    if out is not None:
        save_program(program, out)
    return program


def stencil_step(rings, y, a, j: int, tile: int) -> None:
    """One step of the fabric as a plain numpy stencil: the queues of x (`[H, W, cap]`
    words) move one PE south, those of the two reduction colors one PE east, and each PE
    adds column j of its tile (`a`, `[H, W, tile * tile]`, row-major) times the x word at
    the front of its queue into its y (`[H, W, tile]`)."""
    x_ring, ya_ring, yb_ring = rings
    x_ring[1:] = x_ring[:-1]
    ya_ring[:, 1:] = ya_ring[:, :-1]
    yb_ring[:, 1:] = yb_ring[:, :-1]
    y += a[:, :, j::tile] * x_ring[:, :, :1].view(np.float32)


def stencil_bound(k: int, tile: int, cap: int, seconds: float = 1.0) -> float:
    """The median time of one `stencil_step` over k x k PEs (queues of `cap` words)."""
    rng = np.random.default_rng(1)
    words = [rng.standard_normal((k, k, cap)).astype(np.float32).view(np.uint32)
             for _ in range(3)]
    y = np.zeros((k, k, tile), np.float32)
    a = rng.standard_normal((k, k, tile * tile)).astype(np.float32) * np.float32(1e-3)
    stencil_step(words, y, a, 0, tile)
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < 5 or (time.perf_counter() < t_end and len(times) < 200):
        t0 = time.perf_counter()
        stencil_step(words, y, a, len(times) % tile, tile)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def host_data(k: int, tile: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    m = n = k * tile
    a = rng.standard_normal((m, n)).astype(np.float32)
    x = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    tiles = a.reshape(k, tile, k, tile).transpose(0, 2, 1, 3).ravel()
    return a, x, b, tiles


def commands(device, k: int, tile: int, data, a_id) -> np.ndarray:
    """The host commands of the example on `device` (an SdkRuntime or a Reference)."""
    _, x, b, tiles = data
    y = np.zeros(k * tile, np.float32)
    if isinstance(device, Reference):
        device.memcpy_h2d("A", tiles.view(np.uint32).copy(), 0, 0, k, k, tile * tile,
                          order=ROW, data_type=B32)
        device.memcpy_h2d(X_COLOR, x.view(np.uint32).copy(), 0, 0, k, 1, tile, order=ROW,
                          streaming=True)
        device.memcpy_h2d(B_COLOR, b.view(np.uint32).copy(), 0, 0, 1, k, tile, order=ROW,
                          streaming=True)
        device.memcpy_d2h(y.view(np.uint32), Y_COLOR, k - 1, 0, 1, k, tile, order=ROW,
                          streaming=True)
        return y
    kw = dict(order=ROW, data_type=B32, nonblock=False)
    device.memcpy_h2d(a_id, tiles, 0, 0, k, k, tile * tile, streaming=False, **kw)
    device.memcpy_h2d(X_COLOR, x, 0, 0, k, 1, tile, streaming=True, **kw)
    device.memcpy_h2d(B_COLOR, b, 0, 0, 1, k, tile, streaming=True, **kw)
    device.memcpy_d2h(y, Y_COLOR, k - 1, 0, 1, k, tile, streaming=True, **kw)
    return y


def run_engine(program, k, tile, data, repeats):
    runner = SdkRuntime(program)
    a_id = runner.get_id("A")
    times, y = [], None
    stats = {}
    for r in range(repeats + 1):
        runner.load()
        runner.run()
        before = runner.host_round_trips()
        t0 = time.perf_counter()
        y = commands(runner, k, tile, data, a_id)
        jax.block_until_ready(runner.state.fab.ticks)
        times.append(time.perf_counter() - t0)
        if r == 0:
            fab = runner.state.fab
            mem = runner.engine.bytes_per_pe(runner.state)
            trips = {key: v - before[key] for key, v in runner.host_round_trips().items()}
            stats = {"ticks": int(fab.ticks), "wavelets": int(fab.wavelets),
                     "task_invocations": int(np.asarray(fab.runs).sum()),
                     "state_bytes_per_pe": mem["state"], "declared_bytes_per_pe": mem["declared"],
                     **trips}
    return y, times[0], statistics.median(times[1:]), stats


def run_reference(program, k, tile, data):
    ref = Reference(program)
    t0 = time.perf_counter()
    y = commands(ref, k, tile, data, None)
    return y, time.perf_counter() - t0


def bench_case(k, tile, repeats, reference_max_k, programs=None):
    t0 = time.perf_counter()
    program = build(k, tile, programs)
    build_s = time.perf_counter() - t0
    data = host_data(k, tile)
    a, x, b, _ = data
    want = a @ x + b
    y, first_s, run_s, stats = run_engine(program, k, tile, data, repeats)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    stencil_s = stencil_bound(k, tile, QUEUE_CAPACITY)
    per_pe_tick = run_s / (k * k * stats["ticks"])
    row = {"k": k, "pes": k * k, "tile": tile, "classes": len(program.classes),
           "build_s": build_s, "first_run_s": first_s, "compile_s": first_s - run_s,
           "run_s": run_s, **stats,
           "ns_per_pe_tick": per_pe_tick * 1e9,
           "stencil_ns_per_pe_tick": stencil_s / (k * k) * 1e9,
           "vs_stencil": per_pe_tick * k * k / stencil_s,
           "load_average": os.getloadavg()[0],
           "wavelets_per_s": stats["wavelets"] / run_s,
           "task_invocations_per_s": stats["task_invocations"] / run_s,
           "reference_s": None, "speedup": None}
    if k <= reference_max_k:
        y_ref, ref_s = run_reference(program, k, tile, data)
        np.testing.assert_array_equal(y_ref, y)
        row["reference_s"] = ref_s
        row["speedup"] = ref_s / run_s
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    ap.add_argument("--tile", type=int, default=16, help="Mt = Nt, the tile edge per PE")
    ap.add_argument("--repeats", type=int, default=3, help="warm runs per case")
    ap.add_argument("--reference-max-k", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="k = 2, 4 only, tile 4")
    ap.add_argument("--programs", default=None,
                    help="a directory of compiled programs: each k is read from it, or built "
                         "into it the first time")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dataflow.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.ks, args.tile, args.repeats = [2, 4], 4, 1
    dev = jax.devices()[0]
    print(f"device: {dev.platform} {dev.device_kind}; jax {jax.__version__}; "
          f"{platform.processor() or platform.machine()}")
    head = (f"{'k':>4} {'PEs':>6} {'build':>7} {'compile':>8} {'run':>8} {'ticks':>6} "
            f"{'wavelets/s':>11} {'tasks/s':>10} {'B/PE':>12} {'reference':>10} "
            f"{'speed-up':>9} {'ns/PE/tick':>10} {'stencil':>8} {'vs stencil':>10} "
            f"{'load':>5}")
    print(head)
    rows = []
    for k in args.ks:
        row = bench_case(k, args.tile, args.repeats, args.reference_max_k, args.programs)
        rows.append(row)
        ref = f"{row['reference_s']:9.2f}s" if row["reference_s"] is not None else f"{'-':>10}"
        sp = f"{row['speedup']:8.1f}x" if row["speedup"] is not None else f"{'-':>9}"
        print(f"{k:>4} {row['pes']:>6} {row['build_s']:6.2f}s {row['compile_s']:7.2f}s "
              f"{row['run_s'] * 1e3:6.1f}ms {row['ticks']:>6} {row['wavelets_per_s']:11.3g} "
              f"{row['task_invocations_per_s']:10.3g} "
              f"{row['state_bytes_per_pe']:6.0f}/{row['declared_bytes_per_pe']:<5} {ref} {sp} "
              f"{row['ns_per_pe_tick']:10.1f} {row['stencil_ns_per_pe_tick']:8.1f} "
              f"{row['vs_stencil']:9.1f}x {row['load_average']:5.1f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": f"{dev.platform} {dev.device_kind}", "jax": jax.__version__,
        "tile": args.tile, "repeats": args.repeats, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
