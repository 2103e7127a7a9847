"""Compile and run time of one launch of a CSL example, measured apart.

The example (`examples/csl/NAME`, compiled as its `commands.txt` says) is loaded and its host
commands before the launch are not run: the launch starts from the loaded state. For the
exported function given, the benchmark reports the time to trace and lower its jitted launch,
the time XLA takes to compile it, and the median of warm launches from that same state. It then
checks that every warm launch left the same state as the first (a launch is a pure function of
its state) and fails otherwise.

    python benchmarks/launch.py                                  # complete-program, init
    python benchmarks/launch.py --example complete-program --function compute --repeats 9
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

from wsejax import SdkRuntime
from wsejax.cli import parse_cslc
from wsejax.csl import compile_csl

ROOT = Path(__file__).resolve().parents[1]


def compile_example(name: str):
    """The Program of `examples/csl/NAME`, built with the flags of its `wsejax cslc` line."""
    folder = ROOT / "examples" / "csl" / name
    line = next(ln for ln in (folder / "commands.txt").read_text().splitlines()
                if ln.startswith("wsejax cslc"))
    opts = parse_cslc(shlex.split(line)[2:])
    return compile_csl(str(folder / opts.top), **opts.compile_kwargs())


def measure(name: str, function: str, repeats: int) -> dict:
    rt = SdkRuntime(compile_example(name))
    rt.load()
    rt.run()
    start = jax.block_until_ready(rt.state)
    t = time.perf_counter()
    lowered = rt.engine.launch_fn(function).lower(start, ())
    lower_s = time.perf_counter() - t
    t = time.perf_counter()
    launch = lowered.compile()
    compile_s = time.perf_counter() - t

    def fresh():
        return jax.block_until_ready(jax.tree.map(lambda x: x.copy(), start))

    first = jax.block_until_ready(launch(fresh(), ()))
    runs = []
    for _ in range(repeats):
        s = fresh()
        t = time.perf_counter()
        out = jax.block_until_ready(launch(s, ()))
        runs.append(time.perf_counter() - t)
        same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b, equal_nan=True)), first, out)
        if not all(jax.tree.leaves(same)):
            raise SystemExit(f"{name}.{function}: a warm launch left another state")
    return {"example": name, "function": function, "lower_s": lower_s,
            "compile_s": compile_s, "launch_ms": statistics.median(runs) * 1e3,
            "repeats": repeats, "platform": jax.devices()[0].platform}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--example", default="complete-program")
    ap.add_argument("--function", default="init", help="the exported function to launch")
    ap.add_argument("--repeats", type=int, default=7, help="warm launches (median)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    a = ap.parse_args(argv)
    row = measure(a.example, a.function, a.repeats)
    print(f"{row['example']} {row['function']}: trace+lower {row['lower_s']:.2f} s, XLA compile "
          f"{row['compile_s']:.2f} s, launch median {row['launch_ms']:.2f} ms "
          f"({row['platform']}, {row['repeats']} launches)")
    if a.json:
        Path(a.json).write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    sys.exit(main())
