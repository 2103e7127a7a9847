"""`<collectives_2d>` in the reference interpreter: `stmt_Collective` records a PE's collective
(`ir.collective_record`); `_collectives` completes those every PE of a line has issued.

Contract (the engine's, `engine.collectives`): the issuing PE faults if a collective of its on
that axis is pending, if the root is not a PE of the line, or if a buffer it uses is not inside
one array of 32-bit elements (`fabric.collective_buffers`) with room for what moves; else it
records kind, root, count, callback and of each buffer the array's index and element offset.
A line whose healthy PEs all hold a record completes when the records agree on kind, root and
count (else each of its PEs faults): the elements move as MPI's would (reduce_fadds sums f32
in rank order from 0, each step rounded to f32; reduce_fmax takes IEEE maxNum, `@fmaxs`'s
rule, in rank order), the records clear and each PE's callback task
is activated.
"""

from __future__ import annotations

import numpy as np

from wsejax import ir
from wsejax.diagnostics import (
    collective_buffer,
    collective_busy,
    collective_mismatch,
    collective_root,
)
from wsejax.fabric import collective_buffers
from wsejax.reference.pe import PE, Fault, Frame
from wsejax.reference.scalars import maxnum

__all__ = ["CollectiveInterpreter"]

_MAX_COUNT = 1 << 20
_NONE = 0xFFFFFFFF


def _needs(kind: str, count: int, is_root: bool, line: int) -> tuple[int, int]:
    """The elements the send and receive buffers must hold (0: not used)."""
    if kind == "broadcast":
        return count, 0
    if kind == "scatter":
        return (count * line if is_root else 0), count
    if kind == "gather":
        return count, (count * line if is_root else 0)
    return count, (count if is_root else 0)


class CollectiveInterpreter:
    """Mixin of `Reference`. Uses `_expr`, `program`, `_pes`."""

    def _c2d_u(self, pe: PE, e, fr: Frame) -> int:
        return min(int(self._expr(pe, e, fr)) & 0xFFFFFFFF, _MAX_COUNT)

    @staticmethod
    def _c2d_buffer(pe: PE, addr: int) -> tuple[int, int, int]:
        """(index among the PE's collective buffers or _NONE, element offset, elements to
        the array's end) of byte address `addr`."""
        for i, sym in enumerate(collective_buffers(pe.cls.symbols)):
            rel = addr - pe.cls.addresses[sym.name]
            if addr % 4 == 0 and 0 <= rel < sym.nbytes:
                return i, rel // 4, (sym.nbytes - rel) // 4
        return _NONE, 0, 0

    def _c2d_line(self, axis: str) -> int:
        return self.program.width if axis == "x" else self.program.height

    def stmt_Collective(self, pe: PE, s: ir.Collective, fr: Frame) -> None:
        rec = pe.flat[ir.collective_record(s.axis)]
        line = self._c2d_line(s.axis)
        root, count = self._c2d_u(pe, s.root, fr), self._c2d_u(pe, s.count, fr)
        if rec[0] != 0:
            raise Fault(collective_busy(s.kind, s.axis))
        if root >= line:
            raise Fault(collective_root(s.kind, s.axis))
        rank = pe.x if s.axis == "x" else pe.y
        bufs = []
        for addr, n in zip((s.send, s.recv), _needs(s.kind, count, rank == root, line)):
            if addr is None:
                bufs.append(bufs[0])
                continue
            idx, at, room = self._c2d_buffer(pe, self._c2d_u(pe, addr, fr))
            if n > 0 and (idx == _NONE or n > room):
                raise Fault(collective_buffer(s.kind))
            bufs.append((idx, at))
        kind = 1 + ir.COLLECTIVE_KINDS.index(s.kind)
        rec[:] = [kind, root, count, self._c2d_u(pe, s.callback, fr), *bufs[0], *bufs[1]]

    def _collectives(self) -> bool:
        """Complete every line whose PEs all issued the same collective; whether any did."""
        done = False
        for axis in ("x", "y"):
            name = ir.collective_record(axis)
            if not any(name in c.addresses for c in self.program.classes):
                continue
            rows = self._pes if axis == "x" else [list(col) for col in zip(*self._pes)]
            for pes in rows:
                done = self._c2d_complete(pes, axis, name) or done
        return done

    def _c2d_complete(self, pes: list[PE], axis: str, name: str) -> bool:
        recs = [pe.flat.get(name) for pe in pes]
        if any(pe.fault or r is None or r[0] == 0 for pe, r in zip(pes, recs)):
            return False
        if any(list(r[:3]) != list(recs[0][:3]) for r in recs):
            for pe in pes:
                pe.halt(collective_mismatch(axis))
            return True
        kind = ir.COLLECTIVE_KINDS[int(recs[0][0]) - 1]
        root, count = int(recs[0][1]), int(recs[0][2])
        sends = [self._c2d_send(pe, r) for pe, r in zip(pes, recs)]
        for p, (pe, r) in enumerate(zip(pes, recs)):
            out = _received(kind, p, root, count, sends)
            if out is not None:
                self._c2d_recv(pe, r, out)
        for pe, r in zip(pes, recs):
            cb = int(r[3])
            r[:] = 0
            pe.activate(cb)
        return True

    @staticmethod
    def _c2d_send(pe: PE, r) -> np.ndarray:
        """The 32-bit words of `pe`'s send buffer from its offset on (none where unused)."""
        bufs = collective_buffers(pe.cls.symbols)
        if int(r[4]) >= len(bufs):
            return np.zeros(0, np.uint32)
        return pe.flat[bufs[int(r[4])].name].view(np.uint32)[int(r[5]):].copy()

    @staticmethod
    def _c2d_recv(pe: PE, r, out: np.ndarray) -> None:
        if not len(out):
            return
        sym = collective_buffers(pe.cls.symbols)[int(r[6])]
        at = int(r[7])
        pe.flat[sym.name].view(np.uint32)[at:at + len(out)] = out


def _received(kind: str, p: int, root: int, count: int, sends: list):
    """The words PE `p` of the line receives (`sends` each PE's send words), or None."""
    if kind == "broadcast":
        return None if p == root else sends[root][:count].copy()
    if kind == "scatter":
        return sends[root][p * count:(p + 1) * count].copy()
    if p != root:
        return None
    if kind == "gather":
        return np.concatenate([s[:count] for s in sends]).astype(np.uint32)
    if kind == "reduce_fmax":
        best = sends[0][:count].view(np.float32).copy()
        for s in sends[1:]:
            for i, v in enumerate(s[:count].view(np.float32)):
                best[i] = maxnum(best[i], v)
        return best.view(np.uint32)
    total = np.zeros(count, np.float32)
    for s in sends:
        total = (total + s[:count].view(np.float32)).astype(np.float32)
    return total.view(np.uint32)
