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
from wsejax.types import DType

__all__ = ["PointerInterpreter"]


class PointerInterpreter:
    """Mixin of `Reference`: the runtime pointer nodes. Uses `_expr` of `Interpreter`."""

    def expr_AddrOf(self, pe: PE, e: ir.AddrOf, fr: Frame):
        sym = pe.cls.symbol(e.symbol)
        return np.uint16((pe.cls.addresses[e.symbol] + e.offset * sym.dtype.nbytes) & 0xFFFF)

    def _bytes_at(self, pe: PE, addr: int, dtype: DType, doing: str) -> np.ndarray:
        """The bytes (a writable uint8 view) of the `dtype` access at byte address `addr`."""
        width = dtype.nbytes
        if addr % width == 0:
            for s in pe.cls.symbols:
                sw = s.dtype.nbytes
                rel = addr - pe.cls.addresses[s.name]
                if (sw == width or {sw, width} <= {2, 4, 8}) and 0 <= rel <= s.nbytes - width:
                    return pe.flat[s.name].view(np.uint8)[rel:rel + width]
        raise Fault(bad_pointer(doing, dtype.value, width))

    def expr_PtrLoad(self, pe: PE, e: ir.PtrLoad, fr: Frame):
        addr = int(self._expr(pe, e.addr, fr))
        raw = self._bytes_at(pe, addr, e.dtype, "reading")
        if e.dtype is DType.bool_:
            return np.bool_(raw[0] != 0)
        return raw.copy().view(e.dtype.np)[0]

    def stmt_PtrStore(self, pe: PE, s: ir.PtrStore, fr: Frame) -> None:
        addr = int(self._expr(pe, s.addr, fr))
        v = self._expr(pe, s.value, fr)
        if v.dtype != s.dtype.np:
            v = cast(v, dtype_of(v), s.dtype)
        raw = self._bytes_at(pe, addr, s.dtype, "writing")
        raw[:] = np.array([v], s.dtype.np).view(np.uint8)
