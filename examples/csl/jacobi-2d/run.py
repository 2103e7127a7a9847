#!/usr/bin/env cs_python
"""Jacobi sweeps of the 2-D Laplace equation, one column of points per PE, checked against
numpy."""

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
width, height = int(params["width"]), int(params["height"])
nz, iters = int(params["nz"]), int(params["iters"])

u0 = np.random.default_rng(3).standard_normal((height, width, nz)).astype(np.float32)

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
u_id = runner.get_id("u")
runner.load()
runner.run()
kw = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR,
          data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
runner.memcpy_h2d(u_id, u0.ravel(), 0, 0, width, height, nz, **kw)
runner.launch("sweep", nonblock=False)
u = np.zeros(height * width * nz, np.float32)
runner.memcpy_d2h(u, u_id, 0, 0, width, height, nz, **kw)
runner.stop()

# the same sweeps in numpy, summing in the PEs' order: from the west, east, north, south
want = u0.copy()
for _ in range(iters):
    pad = np.pad(want, ((1, 1), (1, 1), (0, 0)))
    acc = np.zeros_like(want)
    for part in (pad[1:-1, :-2], pad[1:-1, 2:], pad[:-2, 1:-1], pad[2:, 1:-1]):
        acc = acc + part
    want = (acc * np.float32(0.25)).astype(np.float32)
np.testing.assert_allclose(u.reshape(height, width, nz), want, rtol=1e-6, atol=1e-6)
print("SUCCESS!")
