"""Fabric-size sweep of both GEMV programs: time and memory against the PE count.

- the tutorial GEMV (`examples/python/gemv.py`, one launch computes y = A x + b on every PE,
  4x6 tiles) on W x H rectangles up to 750x994, the largest WSE-2 program rectangle;
- the k x k streaming GEMV (`examples/csl/gemv-streaming`, 16x16 tiles; see
  `benchmarks/dataflow.py`) for the given k.

Each size runs in a process of its own, so that its peak resident memory is its own. Per size:
the build time (`compile_csl` / `csl.compile`; for the CSL program also per phase: parse,
layout, tile classes, routes), the first run's extra time over a warm run (the
jitted commands' compilation), the median warm run (a run is every host command of the program:
copies in, launch or streams, copy or stream out), engine ticks, the host round trips per
command (jitted calls dispatched and device-to-host transfers, `SdkRuntime.host_round_trips`),
the emulated bytes per PE against the declared ones, the peak resident memory, and the
machine's limit measured in the same run: `np.matmul` of the same tiles on CPU, `jnp.matmul`
on an accelerator (y = A x + b).

    python benchmarks/sweep.py                        # the default sizes
    python benchmarks/sweep.py --gemv 1x1 64x64 --streaming 4 8
    python benchmarks/sweep.py --plot sweep.png       # also plots time against PE count
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from wsejax import SdkRuntime

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gemv = _load(ROOT / "examples" / "python" / "gemv.py", "_example_gemv")
dataflow = _load(ROOT / "benchmarks" / "dataflow.py", "_bench_dataflow")
bench_gemv = _load(ROOT / "benchmarks" / "gemv.py", "_bench_gemv")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def machine_limit(a, x, b, repeats: int) -> tuple[str, float]:
    """The median time of y = A x + b as one batched matmul: numpy on CPU, jnp elsewhere."""
    on_device = bench_gemv.device_matmul_time(a, x, b, repeats)
    if on_device is not None:
        return "jnp.matmul", on_device
    np.matmul(a, x)                                       # warm-up
    return "numpy", bench_gemv.median_time(lambda _: np.matmul(a, x) + b, repeats)


def sweep_gemv(w: int, h: int, repeats: int, m: int = 4, n: int = 6) -> dict:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((h, w, m * n), dtype=np.float32)
    x = rng.standard_normal((h, w, n), dtype=np.float32)
    b = rng.standard_normal((h, w, m), dtype=np.float32)
    t0 = time.perf_counter()
    program = gemv.compile_gemv(w, h, m, n)
    build_s = time.perf_counter() - t0
    runner = SdkRuntime(program)
    times, trips, ticks = [], {}, 0
    for r in range(repeats + 1):
        runner.load()     # the tutorial advances its column DSD: each run starts afresh
        runner.run()
        before = runner.host_round_trips()
        t0 = time.perf_counter()
        y = gemv.run_gemv(runner, a, x, b, w, h, m, n)
        times.append(time.perf_counter() - t0)
        if r == 0:
            trips = {k: v - before[k] for k, v in runner.host_round_trips().items()}
    want = (np.matmul(a.reshape(-1, m, n), x.reshape(-1, n, 1))[..., 0].reshape(h, w, m) + b)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    mem = runner.engine.bytes_per_pe(runner.state)
    limit = machine_limit(a.reshape(-1, m, n), x.reshape(-1, n, 1), b.reshape(-1, m, 1),
                          repeats)
    return _row("gemv", w, h, build_s, times, limit, ticks, trips, mem)


def sweep_streaming(k: int, repeats: int, tile: int = 16) -> dict:
    phases = {}
    t0 = time.perf_counter()
    program = dataflow.build(k, tile, timings=phases)
    build_s = time.perf_counter() - t0
    data = dataflow.host_data(k, tile)
    a, x, b, _ = data
    y, first_s, run_s, stats = dataflow.run_engine(program, k, tile, data, repeats)
    np.testing.assert_allclose(y, a @ x + b, rtol=1e-4, atol=1e-4)
    limit = machine_limit(a, x, b, max(repeats, 3))
    trips = {key: stats[key] for key in ("commands", "dispatches", "fetches")}
    mem = {"state": stats["state_bytes_per_pe"], "declared": stats["declared_bytes_per_pe"]}
    row = _row("streaming", k, k, build_s, [first_s, run_s], limit, stats["ticks"], trips, mem)
    return dict(row, build_phases=phases)


def _row(program, w, h, build_s, times, limit, ticks, trips, mem) -> dict:
    run_s = statistics.median(times[1:])
    name, limit_s = limit
    return {"program": program, "w": w, "h": h, "pes": w * h, "build_s": build_s,
            "first_run_s": times[0], "compile_s": max(times[0] - run_s, 0.0), "run_s": run_s,
            "ticks": ticks, **trips, "limit": name, "limit_s": limit_s,
            "vs_limit": limit_s / run_s, "state_bytes_per_pe": mem["state"],
            "declared_bytes_per_pe": mem["declared"], "peak_rss_gb": peak_rss_gb()}


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h or w)


def one_case(kind: str, size: str, repeats: int) -> dict:
    """One size in a process of its own (its peak RSS is the case's)."""
    cmd = [sys.executable, __file__, "--case", kind, size, "--repeats", str(repeats)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot(rows: list[dict], device: str, path: Path) -> None:
    """Build time and warm run time against the PE count, one line per program (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, title in ((axes[0], "build_s", "build (compile_csl / csl.compile)"),
                           (axes[1], "run_s", "warm run (every host command)")):
        for program in sorted({r["program"] for r in rows}):
            pts = sorted((r["pes"], r[key]) for r in rows if r["program"] == program)
            ax.loglog(*zip(*pts), "o-", label=program)
        ax.set_xlabel("PEs")
        ax.set_ylabel("seconds")
        ax.set_title(f"{title}, {device}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gemv", nargs="*",
                    default=["1x1", "8x8", "64x64", "256x256", "750x994"])
    ap.add_argument("--streaming", nargs="*", default=["4", "16", "64", "128", "256"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--case", nargs=2, metavar=("PROGRAM", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sweep.json"))
    ap.add_argument("--plot", type=Path, help="also plot time against PE count to this PNG")
    args = ap.parse_args(argv)
    if args.case:
        kind, size = args.case
        row = sweep_gemv(*_size(size), args.repeats) if kind == "gemv" else \
            sweep_streaming(int(size), args.repeats)
        print(json.dumps(row))
        return
    dev = jax.devices()[0]
    print(f"device: {dev.platform} {dev.device_kind}; jax {jax.__version__}")
    print(f"{'program':>9} {'size':>9} {'PEs':>7} {'build':>7} {'compile':>8} {'run':>10} "
          f"{'ticks':>6} {'trips/cmd':>9} {'limit':>9} {'vs limit':>9} {'B/PE':>11} "
          f"{'RSS GB':>7}")
    rows = []
    cases = [("gemv", s) for s in args.gemv] + [("streaming", k) for k in args.streaming]
    for kind, size in cases:
        row = one_case(kind, size, args.repeats)
        rows.append(row)
        trips = (row["dispatches"] + row["fetches"]) / max(row["commands"], 1)
        print(f"{kind:>9} {row['w']:>4}x{row['h']:<4} {row['pes']:>7} {row['build_s']:6.2f}s "
              f"{row['compile_s']:7.2f}s {row['run_s'] * 1e3:8.1f}ms {row['ticks']:>6} "
              f"{trips:9.2f} {row['limit_s'] * 1e3:7.2f}ms {row['vs_limit']:9.3g} "
              f"{row['state_bytes_per_pe']:5.0f}/{row['declared_bytes_per_pe']:<5} "
              f"{row['peak_rss_gb']:7.2f}", flush=True)
        if row.get("build_phases"):
            print(" " * 20 + "build phases: " + ", ".join(
                f"{name} {sec:.2f}s" for name, sec in row["build_phases"].items()), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": f"{dev.platform} {dev.device_kind}", "jax": jax.__version__,
        "limit": rows[0]["limit"] if rows else None, "rows": rows}, indent=1))
    print(f"wrote {out}")
    if args.plot and rows:
        plot(rows, f"{dev.platform} {dev.device_kind}", args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
