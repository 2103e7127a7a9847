"""The dataflow CSL examples, run by their own host scripts on the engine and on the reference
interpreter at once (DESIGN §8).

`DualRuntime` is an `SdkRuntime` that forwards every host command to a `Reference` of the same
program as well: each D2H must bring back the same bits from both, each launch must raise
alike, and at `stop()` every PE's memory and clock must agree. The host script runs unmodified
(`wsejax python` in-process) and must still print SUCCESS!.
"""

from __future__ import annotations

import pathlib
import shlex
import shutil

import numpy as np
import pytest
from harness import uses_fabric

from wsejax import DeadlockError, FabricFault, cli
from wsejax.compat import sdkruntimepybind
from wsejax.memcpy import MemcpyDataType, MemcpyOrder
from wsejax.reference import Reference
from wsejax.runtime import SdkRuntime

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "csl"

NAMES = sorted(p.name for p in EXAMPLES.iterdir()
               if (p / "commands.txt").is_file() and uses_fabric(p))


def _outcome(fn):
    try:
        return fn(), None
    except (DeadlockError, FabricFault) as err:
        return None, err


class DualRuntime(SdkRuntime):
    """An SdkRuntime whose every command also runs on the reference interpreter."""

    mismatches: list = []

    def load(self) -> None:
        super().load()
        self.ref = Reference(self.program)

    def _name(self, sym_id, streaming: bool):
        return int(sym_id) if streaming else self.program.exports[int(sym_id)].name

    def _h2d_both(self, kind, dest, src, px, py, w, h, l, streaming, data_type, order,
                  nonblock):
        method = {"roi": super().memcpy_h2d, "rowbcast": super().memcpy_h2d_rowbcast,
                  "colbcast": super().memcpy_h2d_colbcast}[kind]
        task = method(dest, src, px, py, w, h, l, streaming=streaming, data_type=data_type,
                      order=order, nonblock=nonblock)
        self.task_wait(task)
        words = np.ascontiguousarray(src).reshape(-1).view(np.uint32).copy()
        _, err = _outcome(lambda: self.ref.memcpy_h2d(
            self._name(dest, streaming), words, px, py, w, h, l, order=MemcpyOrder(order),
            data_type=MemcpyDataType(data_type), kind=kind, streaming=streaming))
        assert err is None, f"the reference failed where the engine did not: {err}"
        return task

    def memcpy_h2d(self, dest, src, px, py, w, h, elem_per_pe, *, streaming=False,
                   data_type=MemcpyDataType.MEMCPY_32BIT, order=MemcpyOrder.ROW_MAJOR,
                   nonblock=False):
        return self._h2d_both("roi", dest, src, px, py, w, h, elem_per_pe, streaming,
                              data_type, order, nonblock)

    def memcpy_h2d_rowbcast(self, dest, src, px, py, w, h, elem_per_pe, *, streaming=False,
                            data_type=MemcpyDataType.MEMCPY_32BIT,
                            order=MemcpyOrder.ROW_MAJOR, nonblock=False):
        return self._h2d_both("rowbcast", dest, src, px, py, w, h, elem_per_pe, streaming,
                              data_type, order, nonblock)

    def memcpy_h2d_colbcast(self, dest, src, px, py, w, h, elem_per_pe, *, streaming=False,
                            data_type=MemcpyDataType.MEMCPY_32BIT,
                            order=MemcpyOrder.ROW_MAJOR, nonblock=False):
        return self._h2d_both("colbcast", dest, src, px, py, w, h, elem_per_pe, streaming,
                              data_type, order, nonblock)

    def memcpy_d2h(self, dest, src, px, py, w, h, elem_per_pe, *, streaming=False,
                   data_type=MemcpyDataType.MEMCPY_32BIT, order=MemcpyOrder.ROW_MAJOR,
                   nonblock=False):
        task = super().memcpy_d2h(dest, src, px, py, w, h, elem_per_pe, streaming=streaming,
                                  data_type=data_type, order=order, nonblock=nonblock)
        self.task_wait(task)
        mine = np.zeros(dest.size, np.uint32)
        _, err = _outcome(lambda: self.ref.memcpy_d2h(
            mine, self._name(src, streaming), px, py, w, h, elem_per_pe,
            order=MemcpyOrder(order), data_type=MemcpyDataType(data_type),
            streaming=streaming))
        assert err is None, f"the reference failed where the engine did not: {err}"
        got = np.ascontiguousarray(dest).reshape(-1).view(np.uint32)
        if not np.array_equal(got, mine):
            self.mismatches.append(f"memcpy_d2h of {src}: engine {got[:8]}..., reference "
                                   f"{mine[:8]}...")
        return task

    def launch(self, symbol, *args, nonblock=False):
        task, got = _outcome(lambda: self.task_wait(super(DualRuntime, self).launch(
            symbol, *args, nonblock=nonblock)))
        _, want = _outcome(lambda: self.ref.launch(symbol, *args))
        assert type(got) is type(want), f"launch {symbol}: engine {got!r}, reference {want!r}"
        if got is not None:
            assert got.pes == want.pes
            raise got
        return task

    def stop(self) -> None:
        super().stop()
        self.ref.stop()
        p = self.program
        cycles = np.asarray(self.state.cycles)
        for y in range(p.height):
            for x in range(p.width):
                c = int(p.class_of[y, x])
                for name, want in self.ref.memory(x, y).items():
                    slot = self.engine.plan.symbol_slot[c][name]
                    got = np.asarray(self.state.mem[slot][y, x]).reshape(-1)
                    want = np.asarray(want).reshape(-1)
                    if got.view(np.uint8).tobytes() != want.view(np.uint8).tobytes():
                        self.mismatches.append(f"'{name}' at PE ({x}, {y})")
        if not np.array_equal(cycles, self.ref.cycles):
            self.mismatches.append(f"cycles: engine {cycles.tolist()}, reference "
                                   f"{self.ref.cycles.tolist()}")


@pytest.mark.parametrize("name", NAMES, ids=NAMES)
def test_example_agrees_with_the_reference(name, tmp_path, monkeypatch, capsys):
    work = tmp_path / name
    shutil.copytree(EXAMPLES / name, work, ignore=shutil.ignore_patterns("out", "__pycache__"))
    lines = [ln for ln in (work / "commands.txt").read_text().splitlines() if ln.strip()]
    compile_argv, run_argv = (shlex.split(ln)[1:] for ln in lines)
    monkeypatch.chdir(work)
    assert cli.main(compile_argv) == 0
    DualRuntime.mismatches = []
    monkeypatch.setattr(sdkruntimepybind, "SdkRuntime", DualRuntime)
    assert cli.run_script(run_argv[1], run_argv[2:]) == 0, capsys.readouterr().err
    assert "SUCCESS!" in capsys.readouterr().out
    assert not DualRuntime.mismatches, "\n".join(DualRuntime.mismatches[:20])
