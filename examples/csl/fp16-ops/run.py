#!/usr/bin/env cs_python
"""f16 arithmetic, fp16/f32/int16 conversions and 16-bit integer ops, bit-exact against numpy."""

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

N = 8
K = np.float16(0.3)   # the fmach scalar (not exact in binary: rounding matters)

h1 = np.array([1.0, -2.5, 0.1, 1000.0, 3e-5, 65000.0, -0.333, 7.75], np.float16)
h2 = np.array([0.2, 3.0, 0.1, -999.0, 2e-5, 0.5, 3.0, -7.75], np.float16)
fin = np.array([1 / 3, -1e-3, 70000.0 / 2, 2.0 ** -20, 1.00048828125, -4.2, 123.456, 0.0],
               np.float32)
w = np.array([0x0000, 0x0001, 0x8000, 0xFFFF, 0x1234, 0x0F0F, 0xABCD, 0x7FFF], np.uint16)
s = np.array([-1, 2, -32768, 300, -7, 32767, 0, -12345], np.int16)
sh = np.array([0, 1, 15, 4, 3, 8, 7, 12], np.uint16)

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
runner.load()
runner.run()


def h2d(name, arr):
    words = arr.view(np.uint32) if arr.dtype.itemsize == 4 else input_array_to_u32(arr, None, N)
    dt = MemcpyDataType.MEMCPY_32BIT if arr.dtype.itemsize == 4 else MemcpyDataType.MEMCPY_16BIT
    runner.memcpy_h2d(runner.get_id(name), words, 0, 0, 1, 1, arr.size, streaming=False,
                      order=MemcpyOrder.ROW_MAJOR, data_type=dt, nonblock=False)


def d2h(name, n, bits):
    words = np.zeros(n, np.uint32)
    dt = MemcpyDataType.MEMCPY_32BIT if bits == 32 else MemcpyDataType.MEMCPY_16BIT
    runner.memcpy_d2h(words, runner.get_id(name), 0, 0, 1, 1, n, streaming=False,
                      order=MemcpyOrder.ROW_MAJOR, data_type=dt, nonblock=False)
    return words


for name, arr in [("h1", h1), ("h2", h2), ("fin", fin), ("w", w), ("s", s), ("sh", sh)]:
    h2d(name, arr)
runner.launch("go", K, nonblock=False)
ho = memcpy_view(d2h("ho", 4 * N, 16), np.dtype(np.uint16))
fo = d2h("fo", 2 * N, 32)
io = memcpy_view(d2h("io", 8 * N, 16), np.dtype(np.uint16))
runner.stop()

# expected values; every f16 op rounds its result to f16 (fmach: the product, then the sum);
# 1000 * -999 overflows to -inf
with np.errstate(over="ignore"):
    ho_exp = np.concatenate([
        h1 + h2,
        h1 * h2,
        h1 + (h2 * K).astype(np.float16),
        fin.astype(np.float16),
    ]).astype(np.float16)
fo_exp = np.concatenate([h1.astype(np.float32), s.astype(np.float32)])
w32 = w.astype(np.uint32)
s16u = s.view(np.uint16).astype(np.uint32)
bits = (w32[:, None] >> np.arange(16)) & 1
popcnt = bits.sum(1)
clz = np.array([16 if v == 0 else 15 - int(v).bit_length() + 1 for v in w], np.uint32)
ctz = np.array([16 if v == 0 else (int(v) & -int(v)).bit_length() - 1 for v in w], np.uint32)
io_exp = np.concatenate([
    (w32 + s16u) & 0xFFFF,
    (w32 << sh) & 0xFFFF,
    w32 >> sh,
    (s.astype(np.int32) >> sh).astype(np.int16).view(np.uint16),
    popcnt,
    clz,
    ctz,
    (w32 + 40000) & 0xFFFF,
]).astype(np.uint16)

np.testing.assert_array_equal(ho, ho_exp.view(np.uint16))
np.testing.assert_array_equal(fo, fo_exp.view(np.uint32))
np.testing.assert_array_equal(io, io_exp)
print("SUCCESS!")
