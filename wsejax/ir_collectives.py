"""IR of `<collectives_2d>` (spec 11): one `Collective` statement per operation a PE issues
on its row or column, and the per-PE record it leaves until the line completes, which
`wsejax.ir` joins to its statements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wsejax.ir import Expr

__all__ = [
    "COLLECTIVE_FIELDS", "COLLECTIVE_KINDS", "COLLECTIVE_REDUCTIONS", "Collective",
    "collective_record",
]


COLLECTIVE_KINDS = ("broadcast", "scatter", "gather", "reduce_fadds", "reduce_fmax")
# the reductions: f32 buffers, the root receives the line's elements combined in rank order
COLLECTIVE_REDUCTIONS = ("reduce_fadds", "reduce_fmax")
COLLECTIVE_FIELDS = ("kind", "root", "count", "callback", "send", "send_at", "recv", "recv_at")


def collective_record(axis: str) -> str:
    """The `[len(COLLECTIVE_FIELDS)]u32` symbol of a PE's pending collective on `axis` (x: its
    row): kind (1 + index in COLLECTIVE_KINDS; 0: none), root, count, callback task ID, and of
    each buffer the index of its symbol in the PE program's symbols and its element offset."""
    return f"%c2d.{axis}"


@dataclass(frozen=True)
class Collective:
    """A `<collectives_2d/pe>` operation `kind` on `axis` ("x" the row, "y" the column): it is
    recorded in `collective_record(axis)`. Once every PE of the line has issued one with the same
    kind, root and count, the 32-bit elements move as MPI's would (ranks along the line from 0),
    the records clear and each PE's `callback` task is activated. `send` / `recv`: u16 byte
    addresses of the buffers, or None (broadcast: `send` is its one buffer)."""

    kind: str
    axis: str
    root: Expr
    count: Expr
    send: Expr | None
    recv: Expr | None
    callback: Expr
