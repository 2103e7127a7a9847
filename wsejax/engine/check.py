"""Check mode: the reference interpreter runs beside the engine and every command is compared.

With `SdkRuntime(..., check=True)` (or the environment variable `WSEJAX_CHECK=1`) each host
command (copy-mode and streaming memcpy, `launch`, `call`) runs on the engine and on a
`wsejax.reference.Reference` of the same program, from the same host data. After each command
the two must agree: the errors the command raised (class, text and PEs), the words a D2H
brought back, and on every PE each symbol's bits and the clock. The first difference raises
`CheckError` naming the command, the PE and the symbol.

The reference runs one PE at a time in Python, so check mode is for small fabrics: it refuses
programs of more than `MAX_CHECKED_PES` PEs. The engine then runs `@fmacs` loops step by step
(`matvec_loops=False`), the path the reference defines bit for bit; commands issued with
`nonblock=True` complete (and raise) when issued.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from wsejax.errors import CheckError, DeadlockError, FabricFault
from wsejax.memcpy import MemcpyDataType, MemcpyOrder
from wsejax.reference import Reference

__all__ = ["MAX_CHECKED_PES", "Checker", "mirrored"]

MAX_CHECKED_PES = 64


def _outcome(fn):
    try:
        return fn(), None
    except (DeadlockError, FabricFault) as err:
        return None, err


def mirrored(method):
    """Mark an `SdkRuntime` command: with check mode on, it runs through `Checker.command`."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        checker = getattr(self, "checker", None)
        if checker is None:
            return method(self, *args, **kwargs)
        return checker.command(self, method, args, kwargs)

    return run


class Checker:
    """The reference beside one runtime. `program` is the runtime's Program; `loop_limit`
    the runtime's, or None for the default.

    Raises:
      CheckError: the program has more than `MAX_CHECKED_PES` PEs, or runs in the
        random-order scheduling mode, which the reference does not model.
    """

    def __init__(self, program, loop_limit: int | None = None, schedule_seed=None):
        n = program.width * program.height
        if n > MAX_CHECKED_PES:
            raise CheckError(f"check mode runs the reference interpreter beside the engine, "
                             f"for fabrics of at most {MAX_CHECKED_PES} PEs; this program has "
                             f"{program.width}x{program.height} = {n}")
        if schedule_seed is not None:
            raise CheckError("check mode follows the lowest-ID scheduling of the reference; "
                             "unset schedule_seed (WSEJAX_SCHEDULE_SEED)")
        self.program = program
        self.loop_limit = loop_limit
        self.ref = None

    def reset(self) -> None:
        """A fresh reference, as `SdkRuntime.load()` gives a fresh engine state."""
        kw = {} if self.loop_limit is None else {"loop_limit": self.loop_limit}
        self.ref = Reference(self.program, **kw)

    # -- one command ------------------------------------------------------------------------

    def command(self, rt, method, args, kwargs):
        """Run `method(rt, *args, **kwargs)` on the engine and mirror it on the reference;
        raise what the engine raised, or CheckError where the two differ."""
        call = inspect.signature(method).bind(rt, *args, **kwargs)
        call.apply_defaults()
        a = dict(call.arguments)
        a.pop("self")
        name = method.__name__
        what = self._describe(name, a, self.program)
        d2h = name == "memcpy_d2h"
        if d2h:
            mine = np.zeros(np.asarray(a["dest"]).size, np.uint32)
        task, got = _outcome(lambda: self._finish(rt, method(rt, *args, **kwargs)))
        _, want = _outcome(lambda: self._mirror(rt, name, a, mine if d2h else None))
        if type(got) is not type(want) or (got is not None and (
                str(got) != str(want) or got.pes != want.pes)):
            raise CheckError(f"{what}: the engine raised {got!r}, the reference {want!r}")
        problems = []
        if d2h and got is None:
            out = np.ascontiguousarray(a["dest"]).reshape(-1).view(np.uint32)
            bad = np.nonzero(out != mine)[0]
            if bad.size:
                k = int(bad[0])
                problems.append(f"the host array differs at element {k}: engine "
                                f"{int(out[k]):#010x}, reference {int(mine[k]):#010x}")
        problems = problems or self.compare(rt)
        if problems:
            raise CheckError(f"{what}: engine and reference disagree after it: {problems[0]}"
                             + (f" (and {len(problems) - 1} more differences)"
                                if len(problems) > 1 else ""))
        if got is not None:
            raise got
        return task

    @staticmethod
    def _finish(rt, task):
        if task is not None:
            rt.task_wait(task)
        return task

    @staticmethod
    def _describe(name: str, a: dict, program) -> str:
        """The command as the host wrote it, with the symbol's name (or the color)."""
        if name in ("launch", "call"):
            return f"{name}('{a['symbol']}')"
        sym = a["dest"] if name.startswith("memcpy_h2d") else a["src"]
        try:
            sym = f"color {int(sym)}" if a["streaming"] else repr(program.exports[int(sym)].name)
        except (TypeError, ValueError, IndexError):
            sym = repr(sym)
        return f"{name}({sym}, px={a['px']}, py={a['py']}, w={a['w']}, h={a['h']}, " \
               f"elem_per_pe={a['elem_per_pe']})"

    def _mirror(self, rt, name: str, a: dict, out) -> None:
        ref, program = self.ref, self.program
        if name in ("launch", "call"):
            export = program.export(a["symbol"])
            if name == "call":
                values = list(rt.call_arguments("call", a["params"], export))
            else:
                values = list(a["args"])
            ref.launch(a["symbol"], *values)
            return
        streaming = a["streaming"]
        sym = a["dest"] if name.startswith("memcpy_h2d") else a["src"]
        target = int(sym) if streaming else program.exports[int(sym)].name
        common = dict(order=MemcpyOrder(a["order"]), data_type=MemcpyDataType(a["data_type"]),
                      streaming=streaming)
        region = (a["px"], a["py"], a["w"], a["h"], a["elem_per_pe"])
        if name == "memcpy_d2h":
            ref.memcpy_d2h(out, target, *region, **common)
            return
        kind = {"memcpy_h2d": "roi", "memcpy_h2d_rowbcast": "rowbcast",
                "memcpy_h2d_colbcast": "colbcast", "memcpy_h2d_stride": "roi"}[name]
        strides = (a["row_stride"], a["col_stride"]) if name == "memcpy_h2d_stride" else None
        words = np.ascontiguousarray(a["src"]).reshape(-1).view(np.uint32).copy()
        ref.memcpy_h2d(target, words, *region, kind=kind, strides=strides, **common)

    # -- the states -------------------------------------------------------------------------

    def compare(self, rt) -> list[str]:
        """Every difference between the engine's state and the reference's, as text, PEs in
        row-major order and each PE's symbols in program order, its clock last. PEs that
        faulted (alike, as the errors were compared) are skipped: after a fault a PE's
        memory is undefined."""
        p, ref = self.program, self.ref
        faults = ref.faults
        mem = {k: np.asarray(v) for k, v in rt.state.mem.items()}
        cycles = np.asarray(rt.state.cycles)
        ref_cycles = ref.cycles
        out = []
        for y in range(p.height):
            for x in range(p.width):
                if (x, y) in faults:
                    continue
                c = int(p.class_of[y, x])
                want_mem = ref.memory(x, y)
                for sym in p.classes[c].symbols:
                    slot = rt.engine.plan.symbol_slot[c][sym.name]
                    got = np.ascontiguousarray(mem[slot][y, x]).reshape(-1).view(sym.dtype.np)
                    want = np.ascontiguousarray(want_mem[sym.name]).reshape(-1)
                    u = f"u{sym.dtype.np.itemsize}"
                    same = got.view(u) == want.view(u)
                    if sym.dtype.is_float:
                        same |= np.isnan(got.astype(np.float32)) & \
                            np.isnan(want.astype(np.float32))
                    if not same.all():
                        k = int(np.nonzero(~same)[0][0])
                        at = f"[{k}]" if got.size > 1 else ""
                        out.append(f"PE ({x}, {y}) symbol '{sym.name}'{at}: engine "
                                   f"{got[k].item()!r}, reference {want[k].item()!r}")
                if cycles[y, x] != ref_cycles[y, x]:
                    out.append(f"PE ({x}, {y}) clock: engine {int(cycles[y, x])} cycles, "
                               f"reference {int(ref_cycles[y, x])}")
        return out
