#!/usr/bin/env cs_python
"""Memory DSDs: tensor_access row/column/diagonal, offset/stride/extent, runtime changes."""

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

R, C = 4, 5
N_ROWS = 3   # rows summed by row_sum

mat = (np.arange(R * C, dtype=np.float32) * 1.5 - 7).reshape(R, C)
vec = np.arange(16, dtype=np.float32) ** 2 / 4

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
runner.load()
runner.run()


def h2d(name, data):
    runner.memcpy_h2d(runner.get_id(name), data.ravel(), 0, 0, 1, 1, data.size, streaming=False,
                      order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                      nonblock=False)


def d2h(name, n):
    out = np.zeros(n, np.float32)
    runner.memcpy_d2h(out, runner.get_id(name), 0, 0, 1, 1, n, streaming=False,
                      order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                      nonblock=False)
    return out


h2d("mat", mat)
h2d("vec", vec)
runner.launch("run_all", np.int16(N_ROWS), nonblock=False)
sizes = {"row": C, "col": R, "diag": R, "picked": 8, "rsum": C, "other": 6, "total": 1}
got = {name: d2h(name, n) for name, n in sizes.items()}
runner.stop()

np.testing.assert_array_equal(got["row"], mat[2, :])
np.testing.assert_array_equal(got["col"], mat[:, 3])
np.testing.assert_array_equal(got["diag"], np.diagonal(mat))
np.testing.assert_array_equal(got["picked"], np.concatenate([vec[1:13:3], vec[15:7:-2]]))
np.testing.assert_array_equal(got["rsum"], mat[:N_ROWS].sum(axis=0))
flat = mat.ravel()
np.testing.assert_array_equal(got["other"], np.concatenate([flat[0:6:2], vec[[0, 5]] + 1, [0]]))
np.testing.assert_array_equal(got["total"], [vec.sum()])
print("SUCCESS!")
