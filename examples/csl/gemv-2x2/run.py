#!/usr/bin/env cs_python
"""y = A*x + b on 2x2 PEs: x multicast down the columns, partial ys reduced along the rows."""

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
Mt = int(params["Mt"])
Nt = int(params["Nt"])
K = 2
M, N = K * Mt, K * Nt

rng = np.random.default_rng(2)
A = rng.standard_normal((M, N)).astype(np.float32)
x = rng.standard_normal(N).astype(np.float32)
b = rng.standard_normal(M).astype(np.float32)

# host tensor [row r][column c][tile A[r*Mt:(r+1)*Mt, c*Nt:(c+1)*Nt] row-major]
A_tiles = A.reshape(K, Mt, K, Nt).transpose(0, 2, 1, 3).ravel()

ROW, B32 = MemcpyOrder.ROW_MAJOR, MemcpyDataType.MEMCPY_32BIT
runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
A_id, x_id, b_id, y_id = (runner.get_id(s) for s in ("A", "x", "b", "y"))
runner.load()
runner.run()

runner.memcpy_h2d(A_id, A_tiles, 0, 0, K, K, Mt * Nt, streaming=False, order=ROW,
                  data_type=B32, nonblock=False)
# x segments to the top row, b segments to the east column
runner.memcpy_h2d(x_id, x, 0, 0, K, 1, Nt, streaming=False, order=ROW, data_type=B32,
                  nonblock=False)
runner.memcpy_h2d(b_id, b, K - 1, 0, 1, K, Mt, streaming=False, order=ROW, data_type=B32,
                  nonblock=False)
runner.launch("compute", nonblock=False)

y = np.zeros(M, np.float32)
runner.memcpy_d2h(y, y_id, K - 1, 0, 1, K, Mt, streaming=False, order=ROW, data_type=B32,
                  nonblock=False)
runner.stop()

np.testing.assert_allclose(y, A @ x + b, rtol=1e-5, atol=1e-5)
print("SUCCESS!")
