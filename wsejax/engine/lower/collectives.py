"""The `<collectives_2d>` family of `Lowerer`: `stmt_Collective`, a PE issuing a collective.

The issuing PEs check the operation (none of theirs pending on that axis, the root a PE of the
line, each buffer it uses inside one array of 32-bit elements with room for what moves) and
record it in `ir.collective_record(axis)`: kind, root, count, callback, and of each buffer the
index of its array among `fabric.collective_buffers` of the class and its element offset. The
fabric loop completes it (`engine.collectives`).

Uses from the `Lowerer` it is mixed into: `expr`, `fault`, `lanes`, `machine`, `slot`, `pe`.
"""

from __future__ import annotations

import jax.numpy as jnp

from wsejax import ir
from wsejax.diagnostics import collective_buffer, collective_busy, collective_root
from wsejax.engine.machine import Frame, mask_and
from wsejax.fabric import collective_buffers
from wsejax.types import DType

__all__ = ["CollectiveLowering", "buffer_needs"]

_MAX_COUNT = 1 << 20     # counts past any memory (64 KiB) are all "too many"


def buffer_needs(kind: str, count, is_root, line: int) -> tuple:
    """The elements a PE's send and receive buffers must hold (`count` and `is_root`
    numbers or arrays, `line` the PEs of the line), 0 where the buffer is not used."""
    def on(cond, n):
        return jnp.where(cond, n, 0) if hasattr(cond, "shape") else (n if cond else 0)

    if kind == "broadcast":
        return count, 0
    if kind == "scatter":
        return on(is_root, count * line), count
    if kind == "gather":
        return count, on(is_root, count * line)
    return count, on(is_root, count)


class CollectiveLowering:
    """Mixin of `Lowerer`: issuing a collective."""

    def _int_lanes(self, e: ir.Expr, fr: Frame):
        v = jnp.broadcast_to(self.expr(e, fr), self.lanes).astype(jnp.uint32)
        return jnp.minimum(v, jnp.uint32(_MAX_COUNT)).astype(jnp.int32)

    def _buffer_at(self, addr):
        """(index among the class's collective buffers or -1, element offset, elements from
        there to the array's end) of byte address `addr` (`[H, W]` int32)."""
        idx = jnp.full(self.lanes, -1, jnp.int32)
        at = jnp.zeros(self.lanes, jnp.int32)
        room = jnp.zeros(self.lanes, jnp.int32)
        for i, sym in enumerate(collective_buffers(self.pe.symbols)):
            rel = addr - self.pe.addresses[sym.name]
            inside = (addr % 4 == 0) & (rel >= 0) & (rel < sym.nbytes)
            idx = jnp.where(inside, i, idx)
            at = jnp.where(inside, rel // 4, at)
            room = jnp.where(inside, (sym.nbytes - rel) // 4, room)
        return idx, at, room

    def stmt_Collective(self, s: ir.Collective, fr: Frame, m) -> None:
        slot = self.slot[ir.collective_record(s.axis)]
        rec = self.machine.mem[slot]
        line = self.lanes[1] if s.axis == "x" else self.lanes[0]
        rank = self._int_lanes(ir.PeValue(s.axis, DType.u16), fr)
        root = self._int_lanes(s.root, fr)
        count = self._int_lanes(s.count, fr)
        busy = rec[..., 0] != 0
        self.fault(busy, m, collective_busy(s.kind, s.axis))
        bad_root = root >= line
        self.fault(bad_root & ~busy, m, collective_root(s.kind, s.axis))
        need = buffer_needs(s.kind, count, rank == root, line)
        bufs = []
        bad = jnp.zeros(self.lanes, bool)
        for addr, n in zip((s.send, s.recv), need):
            if addr is None:
                bufs.append(bufs[0])
                continue
            idx, at, room = self._buffer_at(self._int_lanes(addr, fr))
            bad = bad | ((n > 0) & ((idx < 0) | (n > room)))
            bufs.append((idx, at))
        self.fault(bad & ~busy & ~bad_root, m, collective_buffer(s.kind))
        kind = jnp.full(self.lanes, 1 + ir.COLLECTIVE_KINDS.index(s.kind), jnp.int32)
        cb = self._int_lanes(s.callback, fr)
        fields = (kind, root, count, cb, *bufs[0], *bufs[1])
        new = jnp.stack([f.astype(jnp.uint32) for f in fields], axis=-1)
        ok = mask_and(~(busy | bad_root | bad), m)
        self.machine.mem[slot] = jnp.where(ok[..., None], new, rec)
