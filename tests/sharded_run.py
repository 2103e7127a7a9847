"""Run the dataflow CSL examples' host scripts on one device and on a mesh of devices, and
report whether every D2H and every final memory agree (a JSON line per example on stdout).

Run by tests/test_sharding.py in a subprocess, with
XLA_FLAGS=--xla_force_host_platform_device_count=N set before JAX starts.

    python tests/sharded_run.py DEVICES WORKDIR NAME...
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import shlex
import shutil
import sys

import jax
import numpy as np

from wsejax import cli
from wsejax.compat import sdkruntimepybind
from wsejax.runtime import SdkRuntime

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "csl"


class Recording(SdkRuntime):
    """An SdkRuntime on `DEVICES` devices that keeps every D2H result and the final state."""

    devices = None
    log: list = []

    def __init__(self, *args, **kw):
        super().__init__(*args, devices=Recording.devices, **kw)

    def memcpy_d2h(self, dest, *args, **kw):
        task = super().memcpy_d2h(dest, *args, **kw)
        self.task_wait(task)
        Recording.log.append(np.array(dest, copy=True).view(np.uint32).tolist())
        return task

    def stop(self) -> None:
        super().stop()
        mem = {k: np.asarray(v).view(np.uint8).reshape(-1).tolist()
               for k, v in sorted(self.state.mem.items())}
        Recording.log.append(mem)
        Recording.log.append(np.asarray(self.state.cycles).tolist())
        shards = {len(v.sharding.device_set) for v in self.state.mem.values()}
        Recording.log.append({"devices": max(shards),
                              "pes": self.program.width * self.program.height})


def run(name: str, work: pathlib.Path, devices):
    d = work / f"{name}-{devices}"
    shutil.copytree(EXAMPLES / name, d, ignore=shutil.ignore_patterns("out", "__pycache__"))
    lines = [ln for ln in (d / "commands.txt").read_text().splitlines() if ln.strip()]
    compile_argv, run_argv = (shlex.split(ln)[1:] for ln in lines)
    with contextlib.chdir(d), contextlib.redirect_stdout(io.StringIO()) as out:
        assert cli.main(compile_argv) == 0
        Recording.devices, Recording.log = devices, []
        sdkruntimepybind.SdkRuntime = Recording
        status = cli.run_script(run_argv[1], run_argv[2:])
    return status, "SUCCESS!" in out.getvalue(), Recording.log


def main() -> None:
    devices, work, names = int(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3:]
    for name in names:
        one = run(name, work, None)
        many = run(name, work, devices)
        print(json.dumps({"name": name, "visible": len(jax.devices()),
                          "status": [one[0], many[0]], "success": [one[1], many[1]],
                          "used": many[2][-1]["devices"] if many[2] else 0,
                          "pes": many[2][-1]["pes"] if many[2] else 0,
                          "same": one[2][:-1] == many[2][:-1]}), flush=True)


if __name__ == "__main__":
    main()
