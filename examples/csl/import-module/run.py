#!/usr/bin/env cs_python
"""A user module (lib/blas.csl) imported twice with different params: separate n, separate state."""

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

W = 2
A = np.float32(0.75)
rng = np.random.default_rng(3)
data = {"u": 4, "v": 4, "p": 6, "q": 6}
host = {k: rng.integers(-8, 8, size=(W, n)).astype(np.float32) for k, n in data.items()}

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
runner.load()
runner.run()
kw = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
          nonblock=False)
for k, n in data.items():
    runner.memcpy_h2d(runner.get_id(k), host[k].ravel(), 0, 0, W, 1, n, **kw)
runner.launch("go", A, nonblock=False)
res = np.zeros(W * 6, np.float32)
runner.memcpy_d2h(res, runner.get_id("res"), 0, 0, W, 1, 6, **kw)
runner.stop()

u = host["u"] + A * host["v"]
p = host["p"] + A * host["q"] - host["q"]
expected = np.zeros((W, 6), np.float32)
for x in range(W):
    acc = np.float32(0)
    for a, b in zip(u[x], host["v"][x]):
        acc = np.float32(acc + a * b)
    expected[x, 0] = acc
    acc = np.float32(0)
    for a, b in zip(p[x], host["q"][x]):
        acc = np.float32(acc + a * b)
    expected[x, 1] = acc
expected[:, 2:] = [2, 3, 4, 6]     # blas4: axpy + dot; blas6: 2 axpy + dot; the two n
np.testing.assert_array_equal(res.reshape(W, 6), expected)
print("SUCCESS!")
