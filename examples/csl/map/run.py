#!/usr/bin/env cs_python
"""@map with user functions: scalar input, DSD inputs, DSD and pointer outputs, i16 results."""

import argparse

import numpy as np
from cerebras.sdk.runtime.sdkruntimepybind import (  # pylint: disable=no-name-in-module
    MemcpyDataType,
    MemcpyOrder,
    SdkRuntime,
)
from cerebras.sdk.sdk_utils import memcpy_view

parser = argparse.ArgumentParser()
parser.add_argument("--name", help="the compile output directory")
parser.add_argument("--cmaddr", help="IP:port of a CS system")
args = parser.parse_args()

W, N = 2, 8
A = 1.5

x = (np.arange(W * N, dtype=np.float32) - 6.5).reshape(W, N) * 1.25
b = np.linspace(-4, 4, W * N, dtype=np.float32).reshape(W, N)

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
runner.load()
runner.run()
kw = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR, nonblock=False)
runner.memcpy_h2d(runner.get_id("x"), x.ravel(), 0, 0, W, 1, N,
                  data_type=MemcpyDataType.MEMCPY_32BIT, **kw)
runner.memcpy_h2d(runner.get_id("b"), b.ravel(), 0, 0, W, 1, N,
                  data_type=MemcpyDataType.MEMCPY_32BIT, **kw)
runner.launch("go", np.float32(A), nonblock=False)
y = np.zeros(W * N, np.float32)
runner.memcpy_d2h(y, runner.get_id("y"), 0, 0, W, 1, N,
                  data_type=MemcpyDataType.MEMCPY_32BIT, **kw)
q = np.zeros(W * N, np.uint32)
runner.memcpy_d2h(q, runner.get_id("q"), 0, 0, W, 1, N,
                  data_type=MemcpyDataType.MEMCPY_16BIT, **kw)
last = np.zeros(W, np.float32)
runner.memcpy_d2h(last, runner.get_id("last"), 0, 0, W, 1, 1,
                  data_type=MemcpyDataType.MEMCPY_32BIT, **kw)
runner.stop()

alpha = (A + np.arange(W, dtype=np.float32))[:, None]
y_exp = (alpha * x + b).astype(np.float32)
q_exp = (np.clip(y_exp, -20, 20) * 2).astype(np.int16)     # @as(i16, f) truncates toward zero
last_exp = x[:, 1] * x[:, 1] * x[:, 1] - 1

np.testing.assert_array_equal(y.reshape(W, N), y_exp)
np.testing.assert_array_equal(memcpy_view(q, np.dtype(np.int16)).reshape(W, N), q_exp)
np.testing.assert_array_equal(last, last_exp.astype(np.float32))
print("SUCCESS!")
