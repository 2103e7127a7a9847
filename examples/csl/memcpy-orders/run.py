#!/usr/bin/env cs_python
"""memcpy on a 4x3 rectangle: ROW_MAJOR / COL_MAJOR, 32-bit / 16-bit, sub-regions, broadcasts."""

import argparse

import numpy as np
from cerebras.sdk.runtime.sdkruntimepybind import (  # pylint: disable=no-name-in-module
    MemcpyDataType,
    MemcpyOrder,
    SdkRuntime,
)
from cerebras.sdk.sdk_utils import input_array_to_u32, memcpy_view

parser = argparse.ArgumentParser()
parser.add_argument("--name", help="the compile output directory")
parser.add_argument("--cmaddr", help="IP:port of a CS system")
args = parser.parse_args()

W, H, L = 4, 3, 3
ROW, COL = MemcpyOrder.ROW_MAJOR, MemcpyOrder.COL_MAJOR
B32, B16 = MemcpyDataType.MEMCPY_32BIT, MemcpyDataType.MEMCPY_16BIT

# host tensors are indexed [y, x, k] (PE row, PE column, element)
a = np.arange(H * W * L, dtype=np.float32).reshape(H, W, L) + 0.25
a_patch = -np.arange(2 * 2 * L, dtype=np.float32).reshape(2, 2, L) - 1000   # PEs x=1..2, y=1..2
b = (np.arange(H * W * L, dtype=np.int16).reshape(H, W, L) * 7 - 60).astype(np.int16)
rb = np.arange(H * L, dtype=np.float32).reshape(H, L) * 3 + 1     # one row of data per PE row
cb = np.arange(W * L, dtype=np.float32).reshape(W, L) * 5 + 2     # one column's data per PE column

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
sym = {s: runner.get_id(s) for s in ("a", "b", "rb", "cb", "out32", "out16")}
runner.load()
runner.run()

# a: everything in ROW_MAJOR, then a 2x2 patch at (1, 1) in COL_MAJOR
runner.memcpy_h2d(sym["a"], a.ravel(), 0, 0, W, H, L, streaming=False, order=ROW,
                  data_type=B32, nonblock=False)
runner.memcpy_h2d(sym["a"], a_patch.ravel(order="F"), 1, 1, 2, 2, L, streaming=False,
                  order=COL, data_type=B32, nonblock=False)
# b: 16-bit, COL_MAJOR; the host words hold the value in their low half
runner.memcpy_h2d(sym["b"], input_array_to_u32(b.ravel(order="F"), None, L), 0, 0, W, H, L,
                  streaming=False, order=COL, data_type=B16, nonblock=False)
# rb: row j gets rb[j] (ROW_MAJOR, n = j*L + k); cb: column i gets cb[i] (COL_MAJOR, n = i + W*k)
runner.memcpy_h2d_rowbcast(sym["rb"], rb.ravel(), 0, 0, W, H, L, streaming=False, order=ROW,
                           data_type=B32, nonblock=False)
runner.memcpy_h2d_colbcast(sym["cb"], cb.ravel(order="F"), 0, 0, W, H, L, streaming=False,
                           order=COL, data_type=B32, nonblock=False)

runner.launch("compute", nonblock=False)

out32_col = np.zeros(W * H * L, np.float32)
runner.memcpy_d2h(out32_col, sym["out32"], 0, 0, W, H, L, streaming=False, order=COL,
                  data_type=B32, nonblock=False)
out32_sub = np.zeros(2 * 2 * L, np.float32)           # x = 2..3, y = 1..2
runner.memcpy_d2h(out32_sub, sym["out32"], 2, 1, 2, 2, L, streaming=False, order=ROW,
                  data_type=B32, nonblock=False)
out16_words = np.full(W * H * L, 0xFFFFFFFF, np.uint32)
runner.memcpy_d2h(out16_words, sym["out16"], 0, 0, W, H, L, streaming=False, order=ROW,
                  data_type=B16, nonblock=False)
out16_col_words = np.zeros(W * H * L, np.uint32)
runner.memcpy_d2h(out16_col_words, sym["out16"], 0, 0, W, H, L, streaming=False, order=COL,
                  data_type=B16, nonblock=False)
runner.stop()

ys, xs = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
a_dev = a.copy()
a_dev[1:3, 1:3] = a_patch
expected32 = (2 * a_dev + (100 * xs + 10 * ys)[..., None] + rb[:, None, :] - cb[None, :, :])
expected32 = expected32.astype(np.float32)
expected16 = (b.astype(np.int32) + (16 * xs + ys)[..., None]).astype(np.int16)

np.testing.assert_array_equal(out32_col.reshape((H, W, L), order="F"), expected32)
np.testing.assert_array_equal(out32_sub.reshape(2, 2, L), expected32[1:3, 2:4])
np.testing.assert_array_equal(out16_words >> 16, 0)     # 16-bit D2H: upper halves are zero
np.testing.assert_array_equal(memcpy_view(out16_words, np.dtype(np.int16)).reshape(H, W, L),
                              expected16)
np.testing.assert_array_equal(
    memcpy_view(out16_col_words, np.dtype(np.int16)).reshape((H, W, L), order="F"), expected16)
print("SUCCESS!")
