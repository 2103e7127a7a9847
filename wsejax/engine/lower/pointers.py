"""The runtime pointer family of `Lowerer`: `expr_AddrOf`, `expr_PtrLoad`, `stmt_PtrStore`.

A runtime pointer is a u16 byte address (`[H, W]`); each symbol lies at the address
`ir.PeProgram.addresses` gives it, its elements little-endian (the lower address holds the
low half). A load or store of a `dtype` element tries, on every PE at once, each symbol it may
touch (its candidates: those of `dtype`'s width, and for a 16-, 32- or 64-bit access those of
another of these three widths): where the address lies inside one, aligned to the access
width, that memory is read (gathers, selected with `where`) or written (masked scatters; a
16-bit store into a 32-bit element keeps its other half, as a narrower store into a 64-bit
element keeps its other words). A PE whose address is in no candidate
faults (`diagnostics.bad_pointer`). Only programs with runtime pointers emit these nodes: a
pointer known at compile time is a `Load` or `Assign` of its symbol, as before.

Uses from the `Lowerer` it is mixed into: `expr`, `lane`, `fault`, `lanes`, `machine`,
`slot`, `pe`.
"""

from __future__ import annotations

import jax.numpy as jnp

from wsejax import ir
from wsejax.diagnostics import bad_pointer
from wsejax.engine import wide
from wsejax.engine.access import gather, scatter
from wsejax.engine.machine import Frame, bitview
from wsejax.errors import ProgramError
from wsejax.types import DType

__all__ = ["PointerLowering"]

_BITS = {2: DType.u16, 4: DType.u32}   # the unsigned type of each access width


class PointerLowering:
    """Mixin of `Lowerer`: runtime pointers."""

    def expr_AddrOf(self, e: ir.AddrOf, fr: Frame):
        sym = self.pe.symbol(e.symbol)
        addr = self.pe.addresses[e.symbol] + e.offset * sym.dtype.nbytes
        return jnp.asarray(addr & 0xFFFF, jnp.uint16)

    def _pointer_lanes(self, addr, fr: Frame, store: bool = False):
        """Address `addr` as int32 lanes: `[H, W]`, or in a `@map` callback one per element
        (`[H, W, n]`; a callback only reads memory)."""
        a = jnp.asarray(addr).astype(jnp.int32)
        if fr.ext and a.ndim > 2:
            if store:
                raise ProgramError(f"{fr.fn}: a @map callback writes no memory")
            return a
        return jnp.broadcast_to(a, self.lanes)

    def _hits(self, dtype: DType, addr):
        """Per candidate symbol of a `dtype` access at `addr` (`[H, W]` int32): (symbol, its
        `[H, W, size]` memory, `[H, W]` bool: the access lies inside it, `[H, W]` int32: the
        byte offset of the access in it)."""
        width = dtype.nbytes
        aligned = addr % width == 0
        for sym in self.pe.symbols:
            sw = sym.dtype.nbytes
            if sw != width and not {sw, width} <= {2, 4, 8}:
                continue
            rel = addr - self.pe.addresses[sym.name]
            inside = aligned & (rel >= 0) & (rel + width <= sym.nbytes)
            flat = self.machine.mem[self.slot[sym.name]].reshape(self.lanes + (-1,))
            yield sym, flat, inside, rel

    def expr_PtrLoad(self, e: ir.PtrLoad, fr: Frame):
        addr = self._pointer_lanes(self.expr(e.addr, fr), fr)
        out = jnp.zeros(addr.shape, wide.carrier(e.dtype))
        hit = jnp.zeros(addr.shape, bool)
        for sym, flat, inside, rel in self._hits(e.dtype, addr):
            out = jnp.where(inside, _read(sym, flat, rel, e.dtype), out)
            hit = hit | inside
        self.fault(~hit, self.cur_mask, bad_pointer("reading", e.dtype.value, e.dtype.nbytes))
        return self.lane(out, fr)

    def stmt_PtrStore(self, s: ir.PtrStore, fr: Frame, m) -> None:
        addr = self._pointer_lanes(self.expr(s.addr, fr), fr, store=True)
        v = jnp.broadcast_to(wide.astype(self.expr(s.value, fr), s.dtype), self.lanes)
        hit = jnp.zeros(self.lanes, bool)
        for sym, flat, inside, rel in self._hits(s.dtype, addr):
            ok = inside if m is None else inside & m
            slot = self.slot[sym.name]
            shape = self.machine.mem[slot].shape
            self.machine.mem[slot] = _write(sym, flat, rel, ok, v, s.dtype).reshape(shape)
            hit = hit | inside
        self.fault(~hit, m, bad_pointer("writing", s.dtype.value, s.dtype.nbytes))


def _element(sym: ir.Symbol, flat, k, want: DType):
    """Element `k` (`[H, W]`, clamped into range) of `sym`'s memory, its bits as `want`."""
    return bitview(gather(flat, jnp.clip(k, 0, sym.size - 1)), sym.dtype, want)


def _read(sym: ir.Symbol, flat, rel, dtype: DType):
    """The `dtype` value at byte offset `rel` of `sym` (where it lies inside)."""
    sw, aw = sym.dtype.nbytes, dtype.nbytes
    if sw == aw:
        return _element(sym, flat, rel // sw, dtype)
    if 8 in (sw, aw):
        return _read_words(sym, flat, rel, dtype)
    if sw == 2:         # a 32-bit value over two 16-bit elements, the low half first
        lo = _element(sym, flat, rel // 2, DType.u16).astype(jnp.uint32)
        hi = _element(sym, flat, rel // 2 + 1, DType.u16).astype(jnp.uint32)
        return bitview(lo | (hi << 16), DType.u32, dtype)
    word = _element(sym, flat, rel // 4, DType.u32)      # a 16-bit half of a 32-bit element
    half = (word >> (16 * ((rel % 4) // 2)).astype(jnp.uint32)) & 0xFFFF
    return bitview(half.astype(jnp.uint16), DType.u16, dtype)


def _write(sym: ir.Symbol, flat, rel, ok, v, dtype: DType):
    """`sym`'s memory with `v` (a `dtype` value) stored at byte offset `rel` where `ok`."""
    sw, aw = sym.dtype.nbytes, dtype.nbytes

    def put(flat, k, bits, have: DType):
        return scatter(flat, jnp.where(ok, k, sym.size), bitview(bits, have, sym.dtype))

    if sw == aw:
        return put(flat, rel // sw, v, dtype)
    if 8 in (sw, aw):
        return _write_words(sym, flat, rel, ok, v, dtype)
    bits = bitview(v, dtype, _BITS[aw])
    if sw == 2:
        flat = put(flat, rel // 2, (bits & 0xFFFF).astype(jnp.uint16), DType.u16)
        return put(flat, rel // 2 + 1, (bits >> 16).astype(jnp.uint16), DType.u16)
    word = _element(sym, flat, rel // 4, DType.u32)
    low = (rel % 4) == 0
    bits = bits.astype(jnp.uint32)
    new = jnp.where(low, (word & jnp.uint32(0xFFFF0000)) | bits,
                    (word & jnp.uint32(0xFFFF)) | (bits << 16))
    return put(flat, rel // 4, new, DType.u32)


# -- accesses of another width than a 64-bit array's, or 64-bit ones of a narrower array ----------


def _words(x, t: DType) -> list:
    """The 16-bit words of values `x` of type t (2, 4 or 8 bytes), the lowest first."""
    if t.nbytes == 2:
        return [bitview(x, t, DType.u16)]
    halves = wide.unpack(x) if t.is_wide else (bitview(x, t, DType.u32),)
    return [(h >> s).astype(jnp.uint16) for h in halves for s in (0, 16)]


def _joined(ws: list, t: DType):
    """The value of type t made of the 16-bit words `ws`, the lowest first."""
    if t.nbytes == 2:
        return bitview(ws[0], DType.u16, t)
    halves = [ws[k].astype(jnp.uint32) | (ws[k + 1].astype(jnp.uint32) << 16)
              for k in range(0, len(ws), 2)]
    return wide.pack(*halves) if t.is_wide else bitview(halves[0], DType.u32, t)


def _pick(ws: list, k):
    """`ws[k]` for a traced index k."""
    out = ws[0]
    for j in range(1, len(ws)):
        out = jnp.where(k == j, ws[j], out)
    return out


def _read_words(sym: ir.Symbol, flat, rel, dtype: DType):
    """A `dtype` value over elements of another width, one of the two 64 bits wide."""
    sw, aw = sym.dtype.nbytes, dtype.nbytes
    if aw < sw:             # a part of one element
        ws = _words(_element(sym, flat, rel // sw, sym.dtype), sym.dtype)
        first = (rel % sw) // 2
        return _joined([_pick(ws, first + j) for j in range(aw // 2)], dtype)
    ws = [w for i in range(aw // sw)
          for w in _words(_element(sym, flat, rel // sw + i, sym.dtype), sym.dtype)]
    return _joined(ws, dtype)


def _write_words(sym: ir.Symbol, flat, rel, ok, v, dtype: DType):
    """`sym`'s memory with the `dtype` value v stored over elements of another width, one of
    the two 64 bits wide, where `ok`."""
    sw, aw = sym.dtype.nbytes, dtype.nbytes
    vw = _words(v, dtype)
    if aw < sw:             # a part of one element: its other words stay
        k = rel // sw
        old = _words(_element(sym, flat, k, sym.dtype), sym.dtype)
        at = (rel % sw) // 2
        new = list(old)
        for j in range(len(old)):
            for i, x in enumerate(vw):
                new[j] = jnp.where(at + i == j, x, new[j])
        return scatter(flat, jnp.where(ok, k, sym.size), _joined(new, sym.dtype))
    n = sw // 2
    for i in range(aw // sw):
        elem = _joined(vw[i * n:(i + 1) * n], sym.dtype)
        flat = scatter(flat, jnp.where(ok, rel // sw + i, sym.size), elem)
    return flat
