"""Lowering of `<tile_config>`'s reads of the PE's own state, the queue status masks
(`ir.QueueStatus`), and of its writes of a counter filter's state (`ir.FilterEdit`) and of a
switched color's switch state (`ir.SwitchEdit`, on the state of `wsejax.engine.switched`).

A queue's occupancy is the count of the ring of the color it carries (`FabricLowering.queues`
picks each PE's color of a per-PE or runtime-bound one); a queue with no color, or whose
color has no ring (nothing is ever sent or delivered on it), holds no wavelet.

A filter's ID is its color's number: a `FilterEdit` sets the state (`wsejax.engine.filters`:
`cnt`, `lim`, `max`) of the filter of that color, on the PEs that have one.

Mixin of `Lowerer`; uses `machine`, `lanes`, `capacity`, `discovering`, `lane`, `expr`,
`fault`, `boxes` and `queues`.
"""

from __future__ import annotations

import jax.numpy as jnp

from wsejax import ir
from wsejax.engine.machine import Frame

__all__ = ["TileStatusLowering"]


# the filter state each `ir.FilterEdit` field sets
FILTER_STATE = {"counter": "cnt", "limit": "lim", "max_counter": "max"}


class TileStatusLowering:
    """Mixin of `Lowerer`: the PE's reads of its queues' occupancy, its writes of its
    filters' state."""

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

    def stmt_FilterEdit(self, s: ir.FilterEdit, fr: Frame, m) -> None:
        """`filters.set_counter` / `set_active_limit` / `set_max_counter` on the lanes in `m`."""
        ident = self.expr(s.filter, fr)
        value = self.expr(s.value, fr)
        if self.discovering:
            return
        key = FILTER_STATE[s.field]
        mm = jnp.ones(self.lanes, bool) if m is None else m
        for col, state in self.machine.fab.filters.items():
            hit = mm & jnp.broadcast_to(ident == col, self.lanes)
            state[key] = jnp.where(hit, jnp.broadcast_to(value, self.lanes).astype(jnp.int32),
                                   state[key])

    def stmt_SwitchEdit(self, s: ir.SwitchEdit, fr: Frame, m) -> None:
        """A `switch_config` call on the lanes in `m`."""
        value = self.expr(s.value, fr) if s.op == "position" else None
        st = self.machine.fab.switched.get(s.color)
        if self.discovering or st is None:
            return
        mm = jnp.ones(self.lanes, bool) if m is None else m
        mm = mm.reshape(st["pos"].shape)
        if s.op == "position":
            value = jnp.broadcast_to(value, self.lanes).astype(jnp.int32)
            self.fault(mm & (value > 3), None, f"switch_config.set_current_switch_position: "
                       f"color {s.color} has no switch position past 3")
            st["pos"] = jnp.where(mm & (value <= 3), value, st["pos"])
        elif s.op == "ring":
            st["ring"] = jnp.where(mm, bool(s.value), st["ring"])
        elif s.op == "pop":
            st["pop"] = jnp.where(mm, jnp.int32(s.value), st["pop"])
        elif s.op == "invalid":
            # positions 1..3 invalid, holding position 0's ports of now
            hit = mm[..., None] & (jnp.arange(4) > 0)
            for key, first in (("prx", "rx0"), ("ptx", "tx0")):
                st[key] = jnp.where(hit, st[first][..., None], st[key])
            st["pvalid"] = st["pvalid"] & ~hit
        else:
            self.set_port(st, mm, s)

    def set_port(self, st: dict, mm, s: ir.SwitchEdit) -> None:
        """Position `s.value` valid, with the rx and tx given."""
        at = jnp.arange(4) == s.value
        hit = mm[..., None] & at
        for key, mask in (("prx", s.rx), ("ptx", s.tx)):
            if mask is not None:
                st[key] = jnp.where(hit, jnp.int32(mask), st[key])
        st["pvalid"] = st["pvalid"] | hit
