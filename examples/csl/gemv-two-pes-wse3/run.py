#!/usr/bin/env cs_python
"""WSE-3: y = A*x + b over two PEs, the partial ys reduced over the fabric through queues."""

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
M = int(params["M"])
N = int(params["N"])
Nh = N // 2

rng = np.random.default_rng(1)
A = rng.standard_normal((M, N)).astype(np.float32)
x = rng.standard_normal(N).astype(np.float32)
b = rng.standard_normal(M).astype(np.float32)

# PE (i, 0) holds columns i*Nh .. (i+1)*Nh of A, row-major: host tensor [h=1][w=2][M*Nh]
A_tiles = A.reshape(M, 2, Nh).transpose(1, 0, 2).ravel()

ROW, B32 = MemcpyOrder.ROW_MAJOR, MemcpyDataType.MEMCPY_32BIT
runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
A_id, x_id, b_id, y_id = (runner.get_id(s) for s in ("A", "x", "b", "y"))
runner.load()
runner.run()

runner.memcpy_h2d(A_id, A_tiles, 0, 0, 2, 1, M * Nh, streaming=False, order=ROW,
                  data_type=B32, nonblock=False)
runner.memcpy_h2d(x_id, x, 0, 0, 2, 1, Nh, streaming=False, order=ROW, data_type=B32,
                  nonblock=False)
runner.memcpy_h2d(b_id, b, 1, 0, 1, 1, M, streaming=False, order=ROW, data_type=B32,
                  nonblock=False)
runner.launch("compute", nonblock=False)

y = np.zeros(M, np.float32)
runner.memcpy_d2h(y, y_id, 1, 0, 1, 1, M, streaming=False, order=ROW, data_type=B32,
                  nonblock=False)
runner.stop()

np.testing.assert_allclose(y, A @ x + b, rtol=1e-5, atol=1e-5)
print("SUCCESS!")
