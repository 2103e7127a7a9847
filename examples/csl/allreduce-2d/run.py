#!/usr/bin/env cs_python
"""Allreduce (sum) of one f32 vector per PE over a k x k grid, checked against numpy."""

import argparse
import json

import numpy as np
from cerebras.sdk.runtime.sdkruntimepybind import (  # pylint: disable=no-name-in-module
    MemcpyDataType,
    MemcpyOrder,
    SdkRuntime,
)

parser = argparse.ArgumentParser()
parser.add_argument("--name", help="the compile output directory")
parser.add_argument("--cmaddr", help="IP:port of a CS system")
args = parser.parse_args()

with open(f"{args.name}/out.json", encoding="utf-8") as f:
    params = json.load(f)["params"]
K, N = int(params["k"]), int(params["n"])

rng = np.random.default_rng(11)
v = rng.standard_normal((K, K, N)).astype(np.float32)  # [y][x][element]

ROW, B32 = MemcpyOrder.ROW_MAJOR, MemcpyDataType.MEMCPY_32BIT
runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
v_id, total_id = runner.get_id("v"), runner.get_id("total")
runner.load()
runner.run()
runner.memcpy_h2d(v_id, v.ravel(), 0, 0, K, K, N, streaming=False, order=ROW,
                  data_type=B32, nonblock=False)
runner.launch("allreduce", nonblock=False)
total = np.zeros(K * K * N, np.float32)
runner.memcpy_d2h(total, total_id, 0, 0, K, K, N, streaming=False, order=ROW,
                  data_type=B32, nonblock=False)
runner.stop()

expected = v.astype(np.float64).sum(axis=(0, 1))
np.testing.assert_allclose(total.reshape(K, K, N), np.broadcast_to(expected, (K, K, N)),
                           rtol=1e-4, atol=1e-4 * K)
print(f"allreduce of {N} f32 over {K}x{K} PEs matches numpy")
print("SUCCESS!")
