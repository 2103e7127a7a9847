"""The PE grid split over several devices (`SdkRuntime(..., devices=n)`): on 8 CPU devices
(`--xla_force_host_platform_device_count=8`, in a subprocess, as JAX reads it at start-up),
every dataflow example's host script must succeed and leave the same D2H results, memories
and clocks as on one device."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
from harness import uses_fabric

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "csl"
NAMES = sorted(p.name for p in EXAMPLES.iterdir()
               if (p / "commands.txt").is_file() and uses_fabric(p))


# the fast suite runs one example that multicasts, streams in and out and relays along rows
FAST = ["gemv-streaming"]


@pytest.mark.parametrize("names", [
    pytest.param(FAST, id="one"),
    pytest.param(NAMES, id="every", marks=pytest.mark.slow),
])
def test_dataflow_examples_agree_on_eight_devices(tmp_path, names):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "sharded_run.py"), "8",
                          str(tmp_path), *names], env=env, capture_output=True, text=True,
                         timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [r["name"] for r in rows] == names
    for r in rows:
        assert r["visible"] == 8
        assert r["status"] == [0, 0] and r["success"] == [True, True], r
        # split over more than one device wherever there is more than one PE (2x1: 2 devices)
        assert r["used"] > 1 or r["pes"] == 1, r
        assert r["same"], f"{r['name']}: the sharded run differs from the single-device run"
