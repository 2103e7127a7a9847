#!/usr/bin/env cs_python
"""A FIFO between two streams: in -> negate -> FIFO -> add bias -> out, over several rounds."""

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
F = int(params["F"])
h2d_color = int(params["MEMCPYH2D_DATA_1_ID"])
d2h_color = int(params["MEMCPYD2H_DATA_1_ID"])

# (length, bias) per round; later rounds reuse the FIFO from where the previous one stopped
ROUNDS = [(F, 0.5), (F // 3, -2.0), (F - 1, 100.0)]
rng = np.random.default_rng(5)

ROW, B32 = MemcpyOrder.ROW_MAJOR, MemcpyDataType.MEMCPY_32BIT
runner = SdkRuntime(args.name, cmaddr=args.cmaddr)
rounds_id = runner.get_id("rounds")
moved_id = runner.get_id("moved")
runner.load()
runner.run()

for n, bias in ROUNDS:
    data = rng.standard_normal(n).astype(np.float32)
    runner.launch("start", np.uint16(n), np.float32(bias), nonblock=False)
    # a whole round fits in the FIFO, so the input stream completes before the output starts
    runner.memcpy_h2d(h2d_color, data, 0, 0, 1, 1, n, streaming=True, order=ROW,
                      data_type=B32, nonblock=False)
    out = np.zeros(n, np.float32)
    runner.memcpy_d2h(out, d2h_color, 0, 0, 1, 1, n, streaming=True, order=ROW,
                      data_type=B32, nonblock=False)
    np.testing.assert_array_equal(out, -data + np.float32(bias))

counts = np.zeros(2, np.uint32)
runner.memcpy_d2h(counts[:1], rounds_id, 0, 0, 1, 1, 1, streaming=False, order=ROW,
                  data_type=B32, nonblock=False)
runner.memcpy_d2h(counts[1:], moved_id, 0, 0, 1, 1, 1, streaming=False, order=ROW,
                  data_type=B32, nonblock=False)
runner.stop()

assert counts.tolist() == [len(ROUNDS), sum(n for n, _ in ROUNDS)], counts
print("SUCCESS!")
