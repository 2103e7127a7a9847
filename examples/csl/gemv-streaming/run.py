#!/usr/bin/env cs_python
"""Streaming y = A*x + b on k x k PEs: A copied in, x and b streamed in, y streamed out."""

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
K = int(params["k"])
Mt = int(params["Mt"])
Nt = int(params["Nt"])
x_color = int(params["MEMCPYH2D_DATA_1_ID"])
b_color = int(params["MEMCPYH2D_DATA_2_ID"])
y_color = int(params["MEMCPYD2H_DATA_1_ID"])
M, N = K * Mt, K * Nt

rng = np.random.default_rng(4)
A = rng.standard_normal((M, N)).astype(np.float32)
x = rng.standard_normal(N).astype(np.float32)
b = rng.standard_normal(M).astype(np.float32)

# host tensor [row r][column c][tile A[r*Mt:(r+1)*Mt, c*Nt:(c+1)*Nt] row-major]
A_tiles = A.reshape(K, Mt, K, Nt).transpose(0, 2, 1, 3).ravel()

ROW, B32 = MemcpyOrder.ROW_MAJOR, MemcpyDataType.MEMCPY_32BIT
runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
A_id = runner.get_id("A")
runner.load()
runner.run()

runner.memcpy_h2d(A_id, A_tiles, 0, 0, K, K, Mt * Nt, streaming=False, order=ROW,
                  data_type=B32, nonblock=False)
# x segment c streams to the top PE of column c; b segment r to the west PE of row r
runner.memcpy_h2d(x_color, x, 0, 0, K, 1, Nt, streaming=True, order=ROW, data_type=B32,
                  nonblock=False)
runner.memcpy_h2d(b_color, b, 0, 0, 1, K, Mt, streaming=True, order=ROW, data_type=B32,
                  nonblock=False)
# y segment r streams out of the east PE of row r
y = np.zeros(M, np.float32)
runner.memcpy_d2h(y, y_color, K - 1, 0, 1, K, Mt, streaming=True, order=ROW, data_type=B32,
                  nonblock=False)

# each PE's cycle counter when it started and when its partial y was complete
stamps = {}
for name in ("t_start", "t_done"):
    words = np.zeros(K * K * 3, np.uint32)
    runner.memcpy_d2h(words, runner.get_id(name), 0, 0, K, K, 3, streaming=False, order=ROW,
                      data_type=MemcpyDataType.MEMCPY_16BIT, nonblock=False)
    w = words.reshape(K, K, 3).astype(np.int64)
    stamps[name] = w[..., 0] | (w[..., 1] << 16) | (w[..., 2] << 32)
runner.stop()

cycles = stamps["t_done"] - stamps["t_start"]
print(f"cycles from start to a complete partial y: {cycles.min()} to {cycles.max()} per PE")
assert (cycles > 0).all()
np.testing.assert_allclose(y, A @ x + b, rtol=1e-5, atol=1e-5)
print("SUCCESS!")
