"""The streaming GEMV on one device and on a mesh of devices: what XLA does across shards.

Runs `examples/csl/gemv-streaming` (k x k PEs, 16x16 tiles) with `SdkRuntime(devices=n)` for
n = 1 and the given count, checks y, and reports the mesh, the collectives in the compiled
fabric loop (counted in its optimized HLO, one per op: an all-reduce of a tuple, which XLA
makes of several small ones, counts once; the router's ppermutes are the collective-permutes)
and the best of `--repeats` warm runs. On a CPU, several devices need
`--xla_force_host_platform_device_count`, which this script sets before JAX starts (they share
the same cores, so the times measure overhead, not speed-up).

    python benchmarks/sharding.py --k 32 --devices 8
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import time


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = \
            f"{flags} --xla_force_host_platform_device_count={args.devices}".strip()

    import dataflow
    import jax
    import numpy as np

    from wsejax import SdkRuntime

    k, tile = args.k, 16
    program = dataflow.build(k, tile)
    a, x, b, tiles = dataflow.host_data(k, tile)
    print(f"device: {jax.devices()[0].platform}, {len(jax.devices())} visible; k = {k}")
    for devices in (1, args.devices):
        runner = SdkRuntime(program, devices=devices)
        times = []
        for _ in range(args.repeats + 1):
            runner.load()
            runner.run()
            t0 = time.perf_counter()
            y = dataflow.commands(runner, k, tile, (a, x, b, tiles), runner.get_id("A"))
            times.append(time.perf_counter() - t0)
        np.testing.assert_allclose(y, a @ x + b, rtol=1e-4, atol=1e-4)
        engine = runner.engine
        h = w = k
        hlo = engine._commands["fabric"].lower(
            runner.state, np.int32(-1), np.zeros((h, w, 16), np.uint32),
            np.zeros((h, w), np.int32)).compile().as_text()
        # an op whose result is a tuple (XLA combines small all-reduces) counts once
        ops = collections.Counter(re.findall(
            r" (all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter)"
            r"(?:-start)?\(", hlo))
        mesh = None if engine.mesh is None else dict(engine.mesh.shape)
        print(f"devices={devices}: mesh {mesh}, collectives in the fabric loop "
              f"{dict(ops) or 'none'}, warm run {min(times[1:]) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
