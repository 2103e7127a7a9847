#!/usr/bin/env cs_python
"""Per-PE params (coordinates, an id) read at run time; a flag that sizes an array."""

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

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
out_id = runner.get_id("out")
runner.load()
runner.run()
runner.launch("go", nonblock=False)
kw = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR,
          data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
out = np.zeros(width * height * 2, np.uint32)
runner.memcpy_d2h(out, out_id, 0, 0, width, height, 2, **kw)
ys, xs = np.mgrid[0:height, 0:width]
odd = (xs + ys) % 2 == 1
third = {}
for y, x in zip(*np.nonzero(odd)):
    word = np.zeros(3, np.uint32)
    runner.memcpy_d2h(word, out_id, int(x), int(y), 1, 1, 3, **kw)
    third[(int(x), int(y))] = int(word[2])
runner.stop()

pe_id = ys * width + xs
expected = np.stack([xs * 1000 + ys, pe_id], -1).astype(np.uint32)
np.testing.assert_array_equal(out.reshape(height, width, 2), expected)
assert third == {(int(x), int(y)): int(pe_id[y, x]) * 2 for y, x in zip(*np.nonzero(odd))}
print("SUCCESS!")
