#!/usr/bin/env cs_python
"""Initialise on device, compute y = A*x + b on each PE of a 2x2 rectangle, check on the host."""

import argparse

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

W, H = 2, 2      # the rectangle (layout.csl)
M, N = 4, 5      # the default params

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
y_id = runner.get_id("y")
runner.load()
runner.run()

runner.launch("init", nonblock=False)
runner.launch("compute", nonblock=False)

y = np.zeros(W * H * M, np.float32)
runner.memcpy_d2h(y, y_id, 0, 0, W, H, M, streaming=False, order=MemcpyOrder.ROW_MAJOR,
                  data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
runner.stop()

expected = np.zeros((H, W, M), np.float32)
r = np.arange(M, dtype=np.float32)[:, None]
c = np.arange(N, dtype=np.float32)[None, :]
for py in range(H):
    for px in range(W):
        kind = (px + py) % 3
        A = 10 * px + py + r - c * 0.5
        x = np.arange(1, N + 1, dtype=np.float32) * {0: 1.0, 1: 2.0, 2: -1.0}[kind]
        b = 100 * (py * W + px) + np.arange(M, dtype=np.float32) + (0.5 if kind == 0 else 0.25)
        expected[py, px] = A @ x + b

np.testing.assert_allclose(y.reshape(H, W, M), expected, rtol=1e-6)
print("y =", y.reshape(H, W, M))
print("SUCCESS!")
