"""The runtime pointer family of `Lowerer`: `expr_AddrOf`, `expr_PtrLoad`, `stmt_PtrStore`.

A runtime pointer is a u16 byte address (`[H, W]`); each symbol lies at the address
`ir.PeProgram.addresses` gives it. A load or store of a `dtype` element tries, on every PE at
once, each symbol of `dtype`-wide elements (its candidates): where the address falls on one of
its elements, that element is read (a gather, selected with `where`) or written (a masked
scatter). A PE whose address is in no candidate faults (`diagnostics.bad_pointer`). Only
programs with runtime pointers emit these nodes: a pointer known at compile time is a `Load`
or `Assign` of its symbol, as before.

Uses from the `Lowerer` it is mixed into: `expr`, `lane`, `fault`, `lanes`, `machine`,
`slot`, `pe`, `cur_mask`.
"""

from __future__ import annotations

import jax.numpy as jnp

from wsejax import ir
from wsejax.diagnostics import bad_pointer
from wsejax.engine.access import gather, scatter
from wsejax.engine.machine import Frame, bitview
from wsejax.errors import ProgramError
from wsejax.types import DType

__all__ = ["PointerLowering"]


class PointerLowering:
    """Mixin of `Lowerer`: runtime pointers."""

    def expr_AddrOf(self, e: ir.AddrOf, fr: Frame):
        sym = self.pe.symbol(e.symbol)
        addr = self.pe.addresses[e.symbol] + e.offset * sym.dtype.nbytes
        return jnp.asarray(addr & 0xFFFF, jnp.uint16)

    def _pointer_lanes(self, addr, fr: Frame):
        if fr.ext:
            raise ProgramError(f"{fr.fn}: a runtime pointer inside a @map callback is not "
                               "supported")
        return jnp.broadcast_to(jnp.asarray(addr).astype(jnp.int32), self.lanes)

    def expr_PtrLoad(self, e: ir.PtrLoad, fr: Frame):
        addr = self._pointer_lanes(self.expr(e.addr, fr), fr)
        out = jnp.zeros(self.lanes, e.dtype.np)
        hit = jnp.zeros(self.lanes, bool)
        for sym, inside, k in self._hits(e.dtype, addr):
            flat = self.machine.mem[self.slot[sym.name]].reshape(self.lanes + (-1,))
            v = bitview(gather(flat, jnp.clip(k, 0, sym.size - 1)), sym.dtype, e.dtype)
            out = jnp.where(inside, v, out)
            hit = hit | inside
        self.fault(~hit, self.cur_mask, bad_pointer("reading", e.dtype.value))
        return self.lane(out, fr)

    def stmt_PtrStore(self, s: ir.PtrStore, fr: Frame, m) -> None:
        addr = self._pointer_lanes(self.expr(s.addr, fr), fr)
        v = jnp.broadcast_to(jnp.asarray(self.expr(s.value, fr)).astype(s.dtype.np), self.lanes)
        hit = jnp.zeros(self.lanes, bool)
        for sym, inside, k in self._hits(s.dtype, addr):
            slot = self.slot[sym.name]
            arr = self.machine.mem[slot]
            flat = arr.reshape(self.lanes + (-1,))
            ok = inside if m is None else inside & m
            flat = scatter(flat, jnp.where(ok, k, sym.size), bitview(v, s.dtype, sym.dtype))
            self.machine.mem[slot] = flat.reshape(arr.shape)
            hit = hit | inside
        self.fault(~hit, m, bad_pointer("writing", s.dtype.value))

    def _hits(self, dtype: DType, addr):
        """Per candidate symbol (each of `dtype`-wide elements): (symbol, `[H, W]` bool: the
        address `addr` (`[H, W]` int32) is on one of its elements, `[H, W]` int32: which)."""
        width = dtype.nbytes
        for sym in self.pe.symbols:
            if sym.dtype.nbytes != width:
                continue
            rel = addr - self.pe.addresses[sym.name]
            inside = (rel >= 0) & (rel < sym.nbytes) & (rel % width == 0)
            yield sym, inside, rel // width
