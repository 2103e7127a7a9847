#!/usr/bin/env cs_python
"""<math>, <time>, <random> and <layout> on a 3x2 rectangle."""

import argparse
import math

import numpy as np
from cerebras.sdk.runtime.sdkruntimepybind import (  # pylint: disable=no-name-in-module
    MemcpyDataType,
    MemcpyOrder,
    SdkRuntime,
)
from cerebras.sdk.sdk_utils import calculate_cycles, memcpy_view

parser = argparse.ArgumentParser()
parser.add_argument("--name", help="the compile output directory")
parser.add_argument("--cmaddr", help="IP:port of a CS system")
args = parser.parse_args()

W, H, NR = 3, 2, 8
B32, B16 = MemcpyDataType.MEMCPY_32BIT, MemcpyDataType.MEMCPY_16BIT

xin = np.array([0.25, 1.0, 2.0, 9.5], np.float32)

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
runner.load()
runner.run()
kw = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR, nonblock=False)
runner.memcpy_h2d(runner.get_id("xin"), np.tile(xin, W * H), 0, 0, W, H, 4, data_type=B32, **kw)
runner.launch("go", nonblock=False)


def d2h(name, n, dtype, data_type=B32):
    out = np.zeros(W * H * n, dtype)
    runner.memcpy_d2h(out, runner.get_id(name), 0, 0, W, H, n, data_type=data_type, **kw)
    return out.reshape(H, W, n)


mres = d2h("mres", 21, np.float32)
ts = d2h("ts", 3, np.float32)     # raw bits, as calculate_cycles takes them
rnd = d2h("rnd", 2 * NR, np.float32)
rpow = d2h("rpow", NR, np.uint32)
coord = memcpy_view(d2h("coord", 2, np.uint32, B16), np.dtype(np.uint16))
runner.stop()

# <math>: the same on every PE
x = xin.astype(np.float64)
per_x = np.stack([np.sqrt(x), np.exp(-x), np.log(x), np.sin(x + np.pi / 2)], 1).ravel()
consts = [math.sqrt(2), np.float32(math.pi) / 2, math.tanh(0.5), -3.0, 48.0]
for y in range(H):
    for xx in range(W):
        np.testing.assert_allclose(mres[y, xx], np.concatenate([per_x, consts]), rtol=1e-5,
                                   atol=1e-6)

# <time>: end after start, by calculate_cycles and decoded by hand
for y in range(H):
    for xx in range(W):
        words = ts[y, xx]
        half = words.view(np.uint16).astype(np.int64)     # little-endian 16-bit words
        start = half[0] + (half[1] << 16) + (half[2] << 32)
        end = half[3] + (half[4] << 16) + (half[5] << 32)
        assert end > start, (y, xx, start, end)
        assert calculate_cycles(words) == end - start > 0

# <random>: in range; the same seed gives the same numbers, another seed others
uni, nrm = rnd[..., :NR], rnd[..., NR:]
assert np.all((uni >= -2) & (uni < 3)), uni
assert np.all(rpow < 32), rpow
assert np.all(np.isfinite(nrm)) and np.all(np.abs(nrm) < 10), nrm
for y in range(H):
    np.testing.assert_array_equal(rnd[y, 0], rnd[y, 1])
    np.testing.assert_array_equal(rpow[y, 0], rpow[y, 1])
    assert not np.array_equal(rnd[y, 0], rnd[y, 2])
    np.testing.assert_array_equal(rnd[0, 0], rnd[y, 0])      # rows too: the seed is all it takes
assert len(np.unique(uni[0, 0])) > NR // 2                   # not one value repeated

# <layout>: each PE knows where it is
ys, xs = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
np.testing.assert_array_equal(coord, np.stack([xs, ys], -1))
print("SUCCESS!")
