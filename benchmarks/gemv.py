"""Throughput of the GEMV tutorial program (y = A x + b on every PE) on the emulated fabric.

Each PE of a k x k fabric holds an M x N tile of A and computes y with `@fmacs` over the columns
of A, advancing the column DSD with `@increment_dsd_offset`. The benchmark reports, per case:
the time to build the Program, the time to compile the launch (apart), and the median of several
warm launches, with two baselines measured in the same run:

- numpy: one batched `np.matmul` over every PE's tile, the machine's BLAS limit;
- jnp (on an accelerator only): the same batched product as one jitted `jnp.matmul` on the
  device the fabric runs on, that device's limit;
- loop: the tutorial's column loop run PE after PE in numpy (slow, so only up to
  `--loop-max-pes` PEs; above that it is reported as null, never extrapolated).

The engine runs the `@fmacs` loop as one matrix product (`SdkRuntime(..., matvec_loops=True)`,
opt-in: another summation order, f32 subnormals flushed on CPU); `--exact` measures the
default instead, step by step and IEEE-exact.

    python benchmarks/gemv.py                     # the full sweep, ~minutes
    python benchmarks/gemv.py --quick             # a smoke run
    python benchmarks/gemv.py --sizes 128 --tiles 32 --repeats 9
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

from wsejax import MemcpyDataType, MemcpyOrder, SdkRuntime

ROOT = Path(__file__).resolve().parents[1]


def _load_example(name: str):
    # loaded by path under its own name: this file is also called gemv.py
    spec = importlib.util.spec_from_file_location(f"_example_{name}",
                                                  ROOT / "examples" / "python" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compile_gemv = _load_example("gemv").compile_gemv

KW = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
          nonblock=False)


def median_time(fn, repeats: int, prepare=None) -> float:
    """Median wall time of `fn(arg)` over `repeats` runs; `prepare()` makes `arg` off the clock."""
    times = []
    for _ in range(repeats):
        arg = prepare() if prepare is not None else None
        t0 = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def device_matmul_time(A3, x3, b3, repeats: int) -> float | None:
    """The median time of y = A x + b as one jitted batched `jnp.matmul` on JAX's default
    device, or None on a CPU (numpy's BLAS is the limit there)."""
    if jax.devices()[0].platform == "cpu":
        return None
    import jax.numpy as jnp

    a, x, b = (jax.device_put(v) for v in (A3, x3, b3))
    gemv = jax.jit(lambda a, x, b: jnp.matmul(a, x) + b)
    jax.block_until_ready(gemv(a, x, b))                  # compile and warm up
    return median_time(lambda _: jax.block_until_ready(gemv(a, x, b)), repeats)


def fresh_copy(state):
    """A ready copy of the state: the launch donates its argument, so each run needs its own."""
    return jax.block_until_ready(jax.tree_util.tree_map(lambda a: a.copy(), state))


def copy_in(runner: SdkRuntime, A, x, b, k: int, M: int, N: int) -> None:
    """memcpy_h2d A [k, k, M*N], x [k, k, N], b [k, k, M] onto the whole k x k fabric."""
    runner.memcpy_h2d(runner.get_id("A"), A.reshape(-1), 0, 0, k, k, M * N, **KW)
    runner.memcpy_h2d(runner.get_id("x"), x.reshape(-1), 0, 0, k, k, N, **KW)
    runner.memcpy_h2d(runner.get_id("b"), b.reshape(-1), 0, 0, k, k, M, **KW)


def pe_loop(A, x, b, M: int, N: int) -> np.ndarray:
    """The tutorial's column loop, one PE after another (the unvectorised baseline)."""
    H, W = A.shape[:2]
    y = np.empty((H, W, M), np.float32)
    for py in range(H):
        for px in range(W):
            tile = A[py, px].reshape(M, N)
            xv = x[py, px]
            acc = b[py, px].copy()
            for i in range(N):
                acc += tile[:, i] * xv[i]
            y[py, px] = acc
    return y


def bench_case(k: int, t: int, repeats: int, loop_max_pes: int, seed: int = 0,
               exact: bool = False) -> dict:
    M = N = t
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((k, k, M * N), dtype=np.float32)
    x = rng.standard_normal((k, k, N), dtype=np.float32)
    b = rng.standard_normal((k, k, M), dtype=np.float32)

    t0 = time.perf_counter()
    program = compile_gemv(k, k, M, N)
    build_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    runner = SdkRuntime(program, matvec_loops=not exact)
    runner.load()
    runner.run()
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    copy_in(runner, A, x, b, k, M, N)
    jax.block_until_ready(runner.state)
    h2d_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    launch = runner.engine.launch_fn("init_and_compute").lower(runner.state, ()).compile()
    compile_s = time.perf_counter() - t0

    # the state before any launch: A_dsd's offset advances with every launch and the tutorial
    # never resets it, so only launches from this state run the same work without faulting
    s0 = fresh_copy(runner.state)

    # correctness, on the first launch only, read back through the public memcpy_d2h
    runner.state = launch(runner.state, ())
    runner.engine.check_faults(runner.state)
    runner.engine.check_command_stream(runner.state, "launch('init_and_compute')")
    y = np.zeros(k * k * M, np.float32)
    runner.memcpy_d2h(y, runner.get_id("y"), 0, 0, k, k, M, **KW)
    y = y.reshape(k, k, M)
    y_ref = (np.matmul(A.reshape(k * k, M, N), x.reshape(k * k, N, 1))
             + b.reshape(k * k, M, 1)).reshape(k, k, M)
    max_abs_err = float(np.max(np.abs(y - y_ref)))
    tol = 1e-4 * float(np.max(np.abs(y_ref)))
    if not max_abs_err <= tol:
        raise AssertionError(f"gemv {k}x{k} fabric, {t}x{t} tiles: max |y - y_ref| = "
                             f"{max_abs_err:.3g} > {tol:.3g}")
    runner.stop()
    del runner, y

    # warm-up, then timed launches; each starts from its own copy of s0, made (and the previous
    # result freed: unmapping a large buffer costs milliseconds) before the clock starts
    jax.block_until_ready(launch(fresh_copy(s0), ()))
    times, faults = [], 0
    for _ in range(repeats):
        state = fresh_copy(s0)
        t0 = time.perf_counter()
        state = jax.block_until_ready(launch(state, ()))
        times.append(time.perf_counter() - t0)
        faults = max(faults, int(np.count_nonzero(np.asarray(state.fault))))
        del state
    launch_s = statistics.median(times)
    del s0
    gc.collect()

    A3 = A.reshape(k * k, M, N)
    x3 = x.reshape(k * k, N, 1)
    b3 = b.reshape(k * k, M, 1)
    np.matmul(A3, x3)                                     # warm-up
    numpy_s = median_time(lambda _: np.matmul(A3, x3) + b3, repeats)

    jnp_s = device_matmul_time(A3, x3, b3, repeats)

    loop_s = None
    if k * k <= loop_max_pes:
        loop_s = median_time(lambda _: pe_loop(A, x, b, M, N), min(repeats, 3))

    a_bytes = k * k * M * N * 4
    return dict(
        fabric=k, pes=k * k, M=M, N=N, a_bytes=a_bytes,
        build_s=build_s, load_s=load_s, h2d_s=h2d_s, compile_s=compile_s,
        launch_s=launch_s, bytes_per_s=a_bytes / launch_s,
        numpy_s=numpy_s, numpy_bytes_per_s=a_bytes / numpy_s,
        ratio_vs_numpy=numpy_s / launch_s,
        jnp_s=jnp_s, ratio_vs_jnp=None if jnp_s is None else jnp_s / launch_s,
        loop_s=loop_s, speedup_vs_loop=None if loop_s is None else loop_s / launch_s,
        max_abs_err=max_abs_err, timed_faults=faults, repeats=repeats,
    )


HEADER = (f"{'fabric':>9} {'tile':>7} {'build_s':>8} {'compile_s':>9} {'launch_ms':>10} "
          f"{'GB/s':>7} {'vs numpy':>9} {'vs jnp':>7} {'vs loop':>9}")


def row(r: dict) -> str:
    loop = "-" if r["speedup_vs_loop"] is None else f"{r['speedup_vs_loop']:.0f}x"
    vs_jnp = "-" if r["ratio_vs_jnp"] is None else f"{r['ratio_vs_jnp']:.3f}"
    fabric = f"{r['fabric']}x{r['fabric']}"
    tile = f"{r['M']}x{r['N']}"
    return (f"{fabric:>9} {tile:>7} {r['build_s']:8.3f} {r['compile_s']:9.3f} "
            f"{r['launch_s'] * 1e3:10.3f} {r['bytes_per_s'] / 1e9:7.2f} "
            f"{r['ratio_vs_numpy']:9.3f} {vs_jnp:>7} {loop:>9}")


def metadata() -> dict:
    dev = jax.devices()[0]
    return dict(
        jax=jax.__version__, numpy=np.__version__, device_kind=dev.device_kind,
        device_platform=dev.platform, platform=platform.platform(),
        python=platform.python_version(), cpu_count=os.cpu_count(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command=" ".join([sys.executable] + sys.argv),
    )


def targets(rows: list[dict]) -> list[str]:
    lines = []
    r = next((r for r in rows if r["fabric"] == 128 and r["M"] == 32), None)
    got = "not measured" if r is None else f"{r['ratio_vs_numpy']:.3f}"
    ok = "" if r is None else ("  ok" if r["ratio_vs_numpy"] >= 0.5 else "  MISSED")
    lines.append(f"target: ratio vs numpy at 128x128 fabric, 32x32 tiles >= 0.5: {got}{ok}")
    on_device = [r for r in rows if r["ratio_vs_jnp"] is not None]
    if on_device:
        r = max(on_device, key=lambda r: (r["pes"], r["M"]))
        ok = "  ok" if r["ratio_vs_jnp"] >= 0.7 else "  MISSED"
        lines.append(f"target: ratio vs jnp.matmul on the device at {r['fabric']}x{r['fabric']} "
                     f"fabric, {r['M']}x{r['N']} tiles >= 0.7: {r['ratio_vs_jnp']:.3f}{ok}")
    looped = [r for r in rows if r["speedup_vs_loop"] is not None]
    if not looped:
        lines.append("target: speedup vs per-PE loop >= 100x: not measured")
    else:
        k = max(r["fabric"] for r in looped)
        for r in (r for r in looped if r["fabric"] == k):
            s = r["speedup_vs_loop"]
            lines.append(f"target: speedup vs per-PE loop at {k}x{k} fabric, {r['M']}x{r['N']} "
                         f"tiles >= 100x: {s:.0f}x{'  ok' if s >= 100 else '  MISSED'}")
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128, 256],
                   help="fabric side lengths k (a k x k fabric)")
    p.add_argument("--tiles", type=int, nargs="+", default=[32, 64],
                   help="tile sizes t (M = N = t)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per case (median)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "gemv.json")
    p.add_argument("--loop-max-pes", type=int, default=4096,
                   help="skip the per-PE python loop baseline above this many PEs")
    p.add_argument("--quick", action="store_true", help="sizes 1 2 4 16, tiles 32, repeats 3")
    p.add_argument("--exact", action="store_true",
                   help="the default step-by-step @fmacs loop instead of the matrix product")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.tiles, args.repeats = [1, 2, 4, 16], [32], 3

    meta = metadata()
    meta["fmacs_loops"] = "step by step" if args.exact else "matrix product (matvec_loops)"
    print(f"jax {meta['jax']} on {meta['device_kind']} ({meta['device_platform']}), "
          f"numpy {meta['numpy']}, {meta['cpu_count']} CPUs, {meta['platform']}")
    print(HEADER, flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in args.sizes:
        for t in args.tiles:
            r = bench_case(k, t, args.repeats, args.loop_max_pes, exact=args.exact)
            rows.append(r)
            print(row(r), flush=True)
            # written after every case, so a sweep cut short still leaves its results
            args.json.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1) + "\n")
            gc.collect()
            jax.clear_caches()
    for line in targets(rows):
        print(line)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
