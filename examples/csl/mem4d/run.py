#!/usr/bin/env cs_python
"""mem4d_dsd: tensor_access over several variables and explicit stride/extent tuples."""

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

m = np.arange(24, dtype=np.float32).reshape(4, 6) + 0.5
t = (np.arange(60, dtype=np.float32) * 3).reshape(3, 4, 5)
u = -np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3) - 1

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
runner.load()
runner.run()


def copy(name, data=None, n=None):
    kw = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR,
              data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
    if data is not None:
        runner.memcpy_h2d(runner.get_id(name), data.ravel(), 0, 0, 1, 1, data.size, **kw)
        return None
    out = np.zeros(n, np.float32)
    runner.memcpy_d2h(out, runner.get_id(name), 0, 0, 1, 1, n, **kw)
    return out


copy("m", m)
copy("t", t)
copy("u", u)
runner.launch("go", nonblock=False)
res = copy("res", n=72)
mt = copy("mt", n=24)
runner.stop()

# closed form of every DSD, element by element in iteration order (last variable fastest)
slice_t = [t[1 + i, 3 - j, 2 * k] for i in range(2) for j in range(3) for k in range(2)]
rev_u = [u[l_, k, j, i] for i in range(3) for j in range(2) for k in range(2) for l_ in range(2)]
block = [m[a, 1 + 2 * b] for a in range(3) for b in range(2)]
planes = [t[0, j, k] + t[1, j, k] for j in range(2) for k in range(3)]

np.testing.assert_array_equal(res[0:24], m.T.ravel())
np.testing.assert_array_equal(res[24:36], slice_t)
np.testing.assert_array_equal(res[36:60], rev_u)
np.testing.assert_array_equal(res[60:66], block)
np.testing.assert_array_equal(res[66:72], planes)
np.testing.assert_array_equal(mt.reshape(6, 4), m.T)
print("SUCCESS!")
