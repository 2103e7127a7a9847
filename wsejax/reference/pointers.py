"""Runtime pointers in the reference interpreter: `AddrOf`, `PtrLoad` and `PtrStore`.

Contract: a runtime pointer is a u16 byte address; each symbol of the PE's program lies at the
address `ir.PeProgram.addresses` gives it, its elements little-endian. A load or store of a
`dtype` element reads or writes the bytes at the address in the symbol that holds them all, if
that symbol's elements have `dtype`'s width or (for 16-, 32- and 64-bit accesses) another of these
three widths, and the address is a multiple of the access width; any other access faults the PE
(`diagnostics.bad_pointer`).
"""

from __future__ import annotations

import numpy as np

from wsejax import ir
from wsejax.diagnostics import bad_pointer
from wsejax.reference.pe import PE, Fault, Frame
from wsejax.reference.scalars import cast, dtype_of
from wsejax.types import DType, bits16_of, from_bits16

__all__ = ["PointerInterpreter"]


class PointerInterpreter:
    """Mixin of `Reference`: the runtime pointer nodes. Uses `_expr` of `Interpreter`."""

    def expr_AddrOf(self, pe: PE, e: ir.AddrOf, fr: Frame):
        sym = pe.cls.symbol(e.symbol)
        return np.uint16((pe.cls.addresses[e.symbol] + e.offset * sym.dtype.nbytes) & 0xFFFF)

    def _symbol_at(self, pe: PE, addr: int, dtype: DType, doing: str):
        """The symbol holding the `dtype` access at byte address `addr`, and the access's byte
        offset in it."""
        width = dtype.nbytes
        if addr % width == 0:
            for s in pe.cls.symbols:
                sw = s.dtype.nbytes
                rel = addr - pe.cls.addresses[s.name]
                if (sw == width or {sw, width} <= {2, 4, 8}) and 0 <= rel <= s.nbytes - width:
                    return s, rel
        raise Fault(bad_pointer(doing, dtype.value, width))

    def expr_PtrLoad(self, pe: PE, e: ir.PtrLoad, fr: Frame):
        addr = int(self._expr(pe, e.addr, fr))
        s, rel = self._symbol_at(pe, addr, e.dtype, "reading")
        raw = _image(pe, s)[rel:rel + e.dtype.nbytes].copy()
        if e.dtype is DType.bool_:
            return np.bool_(raw[0] != 0)
        if e.dtype is DType.cb16:
            return from_bits16(raw.view(np.uint16)[0], e.dtype)[()]
        return raw.view(e.dtype.np)[0]

    def stmt_PtrStore(self, pe: PE, s: ir.PtrStore, fr: Frame) -> None:
        addr = int(self._expr(pe, s.addr, fr))
        v = self._expr(pe, s.value, fr)
        if v.dtype != s.dtype.np:
            v = cast(v, dtype_of(v), s.dtype)
        sym, rel = self._symbol_at(pe, addr, s.dtype, "writing")
        img = _image(pe, sym)
        if s.dtype is DType.cb16:
            img[rel:rel + 2] = bits16_of(v, s.dtype).reshape(1).view(np.uint8)
        else:
            img[rel:rel + s.dtype.nbytes] = np.array([v], s.dtype.np).view(np.uint8)
        if sym.dtype is DType.cb16:         # the image was a copy: its values back
            pe.flat[sym.name][:] = from_bits16(img.view(np.uint16), sym.dtype)


def _image(pe: PE, s: ir.Symbol) -> np.ndarray:
    """The bytes of symbol `s` in memory: a writable view, or for cb16 (held as f32) a copy of
    its values' 16-bit patterns."""
    flat = pe.flat[s.name]
    if s.dtype is DType.cb16:
        return bits16_of(flat, s.dtype).view(np.uint8)
    return flat.view(np.uint8)
