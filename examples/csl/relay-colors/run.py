#!/usr/bin/env cs_python
"""Running sums along each row, relayed over two alternating colors."""

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
width = int(params["width"])
height = int(params["height"])
n = int(params["n"])

x = np.random.default_rng(7).standard_normal((height, width, n)).astype(np.float32)

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
x_id = runner.get_id("x")
sum_id = runner.get_id("sum")
runner.load()
runner.run()
kw = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR,
          data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
runner.memcpy_h2d(x_id, x.ravel(), 0, 0, width, height, n, **kw)
runner.launch("relay", nonblock=False)
sums = np.zeros(height * width * n, np.float32)
runner.memcpy_d2h(sums, sum_id, 0, 0, width, height, n, **kw)
runner.stop()

# the relay adds west to east, one PE at a time, as a sequential cumulative sum does
expected = np.cumsum(x, axis=1, dtype=np.float32)
np.testing.assert_allclose(sums.reshape(height, width, n), expected, rtol=1e-6, atol=1e-6)
print("SUCCESS!")
