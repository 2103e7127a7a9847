#!/usr/bin/env cs_python
"""--params in the layout and PE program; the host sizes its arrays from out/out.json."""

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
N = int(params["N"])
scale = int(params["scale"])
print(f"width={width} height={height} N={N} scale={scale}")

rng = np.random.default_rng(7)
v = rng.integers(-50, 50, size=(height, width, N)).astype(np.float32)

runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
v_id = runner.get_id("v")
halves_id = runner.get_id("halves")
runner.load()
runner.run()
runner.memcpy_h2d(v_id, v.ravel(), 0, 0, width, height, N, streaming=False,
                  order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                  nonblock=False)
runner.launch("go", nonblock=False)
v_out = np.zeros(width * height * N, np.float32)
runner.memcpy_d2h(v_out, v_id, 0, 0, width, height, N, streaming=False,
                  order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                  nonblock=False)
halves = np.zeros(width * height * 2, np.float32)
runner.memcpy_d2h(halves, halves_id, 0, 0, width, height, 2, streaming=False,
                  order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                  nonblock=False)
runner.stop()

offset = np.zeros((height, width, 1), np.float32)
offset[:, width - 1] = 1000
expected = v * scale + offset
np.testing.assert_array_equal(v_out.reshape(height, width, N), expected)
expected_halves = np.stack([expected[..., : N // 2].sum(-1), expected[..., N // 2:].sum(-1)], -1)
np.testing.assert_array_equal(halves.reshape(height, width, 2), expected_halves)
print("SUCCESS!")
