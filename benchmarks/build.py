"""Build times of wafer-sized programs: `wsejax cslc` of the relay (`examples/csl/relay-colors`,
every PE placed by the layout with its own coordinate params and routes) at W x H and of the
streaming GEMV (`examples/csl/gemv-streaming`, 16x16 tiles) at k x k.

Each build runs in a process of its own, so that its peak resident memory is its own. Per
build: the seconds of each phase (`compile_csl(timings=...)`: parse, layout, tile_classes,
routes; then write, `save_program`), the total, and the peak resident memory, as a markdown
table.

    python benchmarks/build.py                                 # the default sizes
    python benchmarks/build.py --relay 100x100 750x994 --streaming 256 750
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("parse", "layout", "tile_classes", "routes", "write")


def build(kind: str, size: str) -> dict:
    """One build in this process: its phase times (s) and peak resident memory (GB)."""
    from wsejax.artifacts import save_program
    from wsejax.csl import compile_csl

    if kind == "relay":
        w, h = (int(v) for v in size.split("x"))
        top = ROOT / "examples" / "csl" / "relay-colors" / "layout.csl"
        params = {"width": w, "height": h, "n": 4}
    else:
        top = ROOT / "examples" / "csl" / "gemv-streaming" / "layout.csl"
        params = {"k": int(size), "Mt": 16, "Nt": 16, "MEMCPYH2D_DATA_1_ID": 0,
                  "MEMCPYH2D_DATA_2_ID": 1, "MEMCPYD2H_DATA_1_ID": 2}
    timings: dict = {}
    program = compile_csl(top, params=params, memcpy=True, timings=timings,
                          warn=lambda message: None)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        save_program(program, out)
        timings["write"] = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return {"kind": kind, "size": size, "timings": timings, "peak_rss_gb": rss,
            "pes": program.width * program.height, "classes": len(program.classes)}


def build_apart(kind: str, size: str) -> dict:
    """`build` in a process of its own."""
    done = subprocess.run([sys.executable, __file__, "--one", kind, size], check=True,
                          capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    head = ["program", "size", "PEs"] + list(PHASES) + ["total (s)", "peak RSS (GB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t = r["timings"]
        cells = [r["kind"], r["size"], str(r["pes"])]
        cells += [f"{t.get(p, 0.0):.2f}" for p in PHASES]
        cells += [f"{sum(t.values()):.2f}", f"{r['peak_rss_gb']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--relay", nargs="*", default=["100x100", "375x497", "750x994"],
                    help="relay rectangles, WxH")
    ap.add_argument("--streaming", nargs="*", default=["256", "750"],
                    help="streaming GEMV sizes k")
    ap.add_argument("--one", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(build(*args.one)))
        return
    rows = [build_apart("relay", s) for s in args.relay]
    rows += [build_apart("streaming", s) for s in args.streaming]
    print(table(rows))


if __name__ == "__main__":
    main()
