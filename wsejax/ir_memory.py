"""Where a PE program's symbols live in its memory: the byte address of each."""

from __future__ import annotations

__all__ = ["symbol_addresses"]


def symbol_addresses(symbols) -> dict[str, int]:
    """The byte address of each symbol of a PE program: in declaration order, each aligned to
    its element size (or `align`, if larger), the first at 16 (0 is a null pointer)."""
    out = {}
    at = 16
    for s in symbols:
        w = max(s.dtype.nbytes, s.align)
        at += -at % w
        out[s.name] = at
        at += s.nbytes
    return out
