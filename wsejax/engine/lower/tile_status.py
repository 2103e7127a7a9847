"""Lowering of `<tile_config>`'s reads of the PE's own state: the queue status masks
(`ir.QueueStatus`).

A queue's occupancy is the count of the ring of the color it carries (`FabricLowering.queues`
picks each PE's color of a per-PE or runtime-bound one); a queue with no color, or whose
color has no ring (nothing is ever sent or delivered on it), holds no wavelet.

Mixin of `Lowerer`; uses `machine`, `lanes`, `capacity`, `lane`, `boxes` and `queues`.
"""

from __future__ import annotations

import jax.numpy as jnp

from wsejax import ir
from wsejax.engine.machine import Frame

__all__ = ["TileStatusLowering"]


class TileStatusLowering:
    """Mixin of `Lowerer`: the PE's reads of its queues' occupancy."""

    def held(self, io: str, color):
        """The wavelets the PE's ring of `color` holds (`io` "in" or "out"): `[H, W]` int32."""
        rings = self.boxes(self.machine, io)
        out = jnp.zeros(self.lanes, jnp.int32)
        for c, where in self.queues(self.machine, color):
            if c in rings:
                count = rings[c].count
                out = count if where is None else jnp.where(where, count, out)
        return out

    def expr_QueueStatus(self, e: ir.QueueStatus, fr: Frame):
        """`input_queue_status.get()` / `output_queue_status.get()`: bit i of the empty (or
        full) mask for queue i."""
        io = "in" if e.kind == "input" else "out"
        mask = jnp.zeros(self.lanes, jnp.uint8)
        for i, color in enumerate(e.colors or ()):
            if color is None:
                bit = jnp.full(self.lanes, not e.full)
            else:
                n = self.held(io, color)
                bit = n >= self.capacity if e.full else n == 0
            mask = mask | (bit.astype(jnp.uint8) << jnp.uint8(i))
        return self.lane(mask, fr)
