"""The colors behind `<tile_config>`'s queue status reads (`ir.QueueStatus`).

A status read is emitted while the PE's functions are lowered, before its queues are known:
its `colors` stay None until `fill_queue_status` (called by `finish_pe` once the queue
bindings are settled) gives each queue number the color it carries. That color is the one
`@initialize_queue` binds it to (a `QueueColor` where the program rebinds it at run time),
else, on wse2, the `.fabric_color` of the fabric DSDs that name the queue. A queue with
neither carries no wavelets here: it reads as empty and never full.
"""

from __future__ import annotations

import dataclasses

from wsejax import ir
from wsejax.csl.rewrite import rewrite
from wsejax.hardware import QUEUE_COUNTS

__all__ = ["READS_STATUS", "fill_queue_status", "queue_colors"]

# the attribute a PeBuilder carries once its program reads a queue status
READS_STATUS = "reads_queue_status"


def queue_colors(arch: str, pe, colors: dict, kind: str) -> tuple:
    """The color each `kind` queue of the PE carries (None: none), by queue number."""
    used = {}
    for key, color, _pos, _what in pe.queue_uses:
        if key[0] == kind and color is not None and not (isinstance(color, int) and color < 0):
            used.setdefault(key[1], color)
    return tuple(colors.get((kind, n), used.get(n)) for n in range(QUEUE_COUNTS[arch][kind]))


def fill_queue_status(arch: str, pe, colors: dict) -> None:
    """Give every status read of the PE's functions its queues' colors."""
    if not getattr(pe, READS_STATUS, False):
        return
    fill = _Fill({kind: queue_colors(arch, pe, colors, kind) for kind in ("input", "output")})
    pe.functions = {k: fill(f) for k, f in pe.functions.items()}


class _Fill:
    """Rewrites IR so that each `QueueStatus` has its colors."""

    def __init__(self, colors: dict):
        self.colors = colors

    def __call__(self, x):
        return rewrite(x, self.leaf)

    def leaf(self, x):
        if isinstance(x, ir.QueueStatus):
            return dataclasses.replace(x, colors=self.colors[x.kind])
        return None
