"""The reference's reads of a PE's own state for `<tile_config>`, the queue status masks
(`ir.QueueStatus`), and its writes of a counter filter's state (`ir.FilterEdit`) and of a
switched color's switch state (`ir.SwitchEdit`, `SwitchedRouter._switch_edit`), as
`wsejax.engine.lower.tile_status` lowers them.

A mixin of `Reference`; uses `queue_capacity`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wsejax import ir
from wsejax.reference.pe import PE, Frame, color_on

__all__ = ["TileStatusInterpreter"]


class TileStatusInterpreter:
    """A mixin of `Reference`: the PE's reads of its queues' occupancy, its writes of its
    filters' state."""

    queue_capacity: int

    def expr_QueueStatus(self, pe: PE, e: ir.QueueStatus, fr: Frame):
        boxes = pe.inbox if e.kind == "input" else pe.outbox
        mask = 0
        for i, color in enumerate(e.colors or ()):
            # a queue bound to no color holds no wavelet
            held = 0 if color is None else \
                len(boxes.get(pe.color_now(color_on(color, pe.tables)), ()))
            bit = held >= self.queue_capacity if e.full else held == 0
            mask |= int(bit) << i
        return np.uint8(mask)

    def stmt_FilterEdit(self, pe: PE, s: ir.FilterEdit, fr: Frame) -> None:
        ident = int(self._expr(pe, s.filter, fr))
        value = int(self._expr(pe, s.value, fr))
        state = pe.filters.get(ident)     # a filter's ID is its color's number
        if state is None:
            return
        if s.field == "counter":
            state.counter = value
        elif s.field == "limit":
            state.limit = value
        else:
            state.max_counter = value

    def stmt_SwitchEdit(self, pe: PE, s: ir.SwitchEdit, fr: Frame) -> None:
        if s.op == "position":
            s = dataclasses.replace(s, value=int(self._expr(pe, s.value, fr)))
        self._switch_edit(pe, s)
