"""Runtime pointers in the reference interpreter: `AddrOf`, `PtrLoad` and `PtrStore`.

Contract: a runtime pointer is a u16 byte address; each symbol of the PE's program lies at the
address `ir.PeProgram.addresses` gives it. A load or store of a `dtype` element finds the
symbol of `dtype`-wide elements that holds the address (on an element boundary) and reads or
writes that element, its bits seen as `dtype`; any other address faults the PE
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

    def _element_at(self, pe: PE, addr: int, dtype: DType, doing: str):
        """(symbol, element index) of the `dtype`-wide element at byte address `addr`."""
        width = dtype.nbytes
        for s in pe.cls.symbols:
            base = pe.cls.addresses[s.name]
            if s.dtype.nbytes == width and base <= addr < base + s.nbytes \
                    and (addr - base) % width == 0:
                return s, (addr - base) // width
        raise Fault(bad_pointer(doing, dtype.value))

    def expr_PtrLoad(self, pe: PE, e: ir.PtrLoad, fr: Frame):
        addr = int(self._expr(pe, e.addr, fr))
        sym, k = self._element_at(pe, addr, e.dtype, "reading")
        v = pe.flat[sym.name][k:k + 1]
        return v.view(e.dtype.np)[0] if sym.dtype is not DType.bool_ and \
            e.dtype is not DType.bool_ else v.astype(e.dtype.np)[0]

    def stmt_PtrStore(self, pe: PE, s: ir.PtrStore, fr: Frame) -> None:
        addr = int(self._expr(pe, s.addr, fr))
        v = self._expr(pe, s.value, fr)
        if v.dtype != s.dtype.np:
            v = cast(v, dtype_of(v), s.dtype)
        sym, k = self._element_at(pe, addr, s.dtype, "writing")
        out = pe.flat[sym.name][k:k + 1]
        if sym.dtype is DType.bool_ or s.dtype is DType.bool_:
            out[0] = v
        else:
            out.view(s.dtype.np)[0] = v
