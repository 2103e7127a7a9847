"""Fabric-size sweep of both GEMV programs: time and memory against the PE count.

- the tutorial GEMV (`examples/python/gemv.py`, one launch computes y = A x + b on every PE,
  4x6 tiles) on W x H rectangles up to 750x994, the largest WSE-2 program rectangle;
- the k x k streaming GEMV (`examples/csl/gemv-streaming`, 16x16 tiles; see
  `benchmarks/dataflow.py`) for the given k.

Per size: build time, first run (with compilation) and the median warm run (a run is every host
command of the program: copies in, launch or streams, copy or stream out), the emulated bytes
per PE against the declared ones, the process's peak resident memory so far, and the machine's
limit measured in the same run: numpy's batched matmul of the same tiles (y = A x + b).

    python benchmarks/sweep.py                        # the default sizes
    python benchmarks/sweep.py --gemv 1x1 64x64 --streaming 4 8
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import resource
import statistics
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


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def numpy_limit(a, x, b, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, x) + b
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def sweep_gemv(w: int, h: int, repeats: int, m: int = 4, n: int = 6) -> dict:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((h, w, m * n), dtype=np.float32)
    x = rng.standard_normal((h, w, n), dtype=np.float32)
    b = rng.standard_normal((h, w, m), dtype=np.float32)
    t0 = time.perf_counter()
    program = gemv.compile_gemv(w, h, m, n)
    build_s = time.perf_counter() - t0
    runner = SdkRuntime(program)
    times = []
    for _ in range(repeats + 1):
        runner.load()     # the tutorial advances its column DSD: each run starts afresh
        runner.run()
        t0 = time.perf_counter()
        y = gemv.run_gemv(runner, a, x, b, w, h, m, n)
        times.append(time.perf_counter() - t0)
    want = (np.matmul(a.reshape(-1, m, n), x.reshape(-1, n, 1))[..., 0].reshape(h, w, m) + b)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    mem = runner.engine.bytes_per_pe(runner.state)
    limit = numpy_limit(a.reshape(-1, m, n), x.reshape(-1, n, 1), b.reshape(-1, m, 1), repeats)
    run_s = statistics.median(times[1:])
    return {"program": "gemv", "w": w, "h": h, "pes": w * h, "build_s": build_s,
            "first_run_s": times[0], "run_s": run_s, "numpy_s": limit,
            "vs_numpy": limit / run_s, "state_bytes_per_pe": mem["state"],
            "declared_bytes_per_pe": mem["declared"], "peak_rss_gb": peak_rss_gb()}


def sweep_streaming(k: int, repeats: int, tile: int = 16) -> dict:
    t0 = time.perf_counter()
    program = dataflow.build(k, tile)
    build_s = time.perf_counter() - t0
    data = dataflow.host_data(k, tile)
    a, x, b, _ = data
    y, first_s, run_s, stats = dataflow.run_engine(program, k, tile, data, repeats)
    np.testing.assert_allclose(y, a @ x + b, rtol=1e-4, atol=1e-4)
    limit = numpy_limit(a, x, b, repeats)
    return {"program": "streaming", "w": k, "h": k, "pes": k * k, "build_s": build_s,
            "first_run_s": first_s, "run_s": run_s, "numpy_s": limit,
            "vs_numpy": limit / run_s, "ticks": stats["ticks"],
            "state_bytes_per_pe": stats["state_bytes_per_pe"],
            "declared_bytes_per_pe": stats["declared_bytes_per_pe"],
            "peak_rss_gb": peak_rss_gb()}


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.partition("x")
    return int(w), int(h or w)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gemv", type=_size, nargs="*",
                    default=[_size(s) for s in ("1x1", "8x8", "64x64", "256x256", "750x994")])
    ap.add_argument("--streaming", type=int, nargs="*", default=[4, 16, 64, 128])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sweep.json"))
    args = ap.parse_args(argv)
    dev = jax.devices()[0]
    print(f"device: {dev.platform} {dev.device_kind}; jax {jax.__version__}")
    print(f"{'program':>9} {'size':>9} {'PEs':>7} {'build':>7} {'first':>7} {'run':>9} "
          f"{'numpy':>9} {'vs numpy':>9} {'B/PE':>11} {'RSS GB':>7}")
    rows = []
    cases = [("gemv", s) for s in args.gemv] + [("streaming", k) for k in args.streaming]
    for kind, size in cases:
        row = sweep_gemv(*size, args.repeats) if kind == "gemv" else \
            sweep_streaming(size, args.repeats)
        rows.append(row)
        print(f"{kind:>9} {row['w']:>4}x{row['h']:<4} {row['pes']:>7} {row['build_s']:6.2f}s "
              f"{row['first_run_s']:6.2f}s {row['run_s'] * 1e3:7.1f}ms "
              f"{row['numpy_s'] * 1e3:7.2f}ms {row['vs_numpy']:9.3g} "
              f"{row['state_bytes_per_pe']:5.0f}/{row['declared_bytes_per_pe']:<5} "
              f"{row['peak_rss_gb']:7.2f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "when": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": f"{dev.platform} {dev.device_kind}", "jax": jax.__version__,
        "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
