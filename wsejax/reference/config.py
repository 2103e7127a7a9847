"""The config space of a PE in the reference: `expr_ConfigRead` and `stmt_ConfigWrite` (a
mixin of `Reference`).

The space is sparse (see `ir.ConfigRead`): entry k of the PE's `ir.CONFIG_ADDRS` symbol is an
address written (-1: free), entry k of `ir.CONFIG_WORDS` its word. The engine keeps the same
two symbols, so check mode compares them as memory.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.diagnostics import config_space_full
from wsejax.reference.interp import map_write_error
from wsejax.reference.pe import PE, Fault, Frame
from wsejax.types import DType

__all__ = ["ConfigInterpreter"]


class ConfigInterpreter:
    """Reads and writes of the config space. Uses `_expr` from `Interpreter`."""

    def expr_ConfigRead(self, pe: PE, e: ir.ConfigRead, fr: Frame):
        addr = int(self._expr(pe, e.addr, fr))
        addrs = pe.flat[ir.CONFIG_ADDRS].tolist()
        word = pe.flat[ir.CONFIG_WORDS][addrs.index(addr)] if addr in addrs else 0
        return DType.u16.np.type(word)

    def stmt_ConfigWrite(self, pe: PE, s: ir.ConfigWrite, fr: Frame) -> None:
        if fr.in_map:
            raise map_write_error(fr)
        addr = int(self._expr(pe, s.addr, fr))
        value = int(self._expr(pe, s.value, fr)) & 0xFFFF
        addrs = pe.flat[ir.CONFIG_ADDRS].tolist()
        if addr in addrs:
            k = addrs.index(addr)
        elif -1 in addrs:
            k = addrs.index(-1)
        else:
            raise Fault(config_space_full(len(addrs)))
        pe.flat[ir.CONFIG_ADDRS][k] = addr
        pe.flat[ir.CONFIG_WORDS][k] = value

