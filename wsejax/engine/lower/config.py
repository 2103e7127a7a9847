"""The config-space family of `Lowerer`: `expr_ConfigRead` and `stmt_ConfigWrite`, and
`stmt_RouteEditAt`, a router's color config rewritten for a color known only at run time.

A PE's config space is sparse (see `ir.ConfigRead`): the entries of its `ir.CONFIG_ADDRS`
symbol (`[H, W, ir.CONFIG_ENTRIES]` int32, -1 for a free entry) name the addresses written,
those of `ir.CONFIG_WORDS` (`[H, W, ir.CONFIG_ENTRIES]` uint16) their words. A read compares
the address with every entry; a write takes the entry of its address, else the first free one.

Uses from the `Lowerer` it is mixed into: `expr`, `lane`, `fault`, `lanes`, `machine`, `slot`,
`discovering`, `stmt_RouteEdit`.
"""

from __future__ import annotations

import jax.numpy as jnp

from wsejax import ir
from wsejax.diagnostics import config_space_full, map_writes_memory, route_edit_color
from wsejax.engine.machine import Frame, mask_and
from wsejax.errors import ProgramError

__all__ = ["ConfigLowering"]


class ConfigLowering:
    """Mixin of `Lowerer`: reads and writes of the config space."""

    def _config_entries(self):
        """`(addresses, words)` of the config space: `[H, W, CONFIG_ENTRIES]` each."""
        mem = self.machine.mem
        return mem[self.slot[ir.CONFIG_ADDRS]], mem[self.slot[ir.CONFIG_WORDS]]

    def _config_addr(self, e: ir.Expr, fr: Frame):
        """The `[H, W]` int32 address of u16 expression `e`."""
        return jnp.broadcast_to(jnp.asarray(self.expr(e, fr)).astype(jnp.int32), self.lanes)

    def expr_ConfigRead(self, e: ir.ConfigRead, fr: Frame):
        addrs, words = self._config_entries()
        hit = addrs == self._config_addr(e.addr, fr)[..., None]
        word = jnp.max(jnp.where(hit, words, jnp.uint16(0)), axis=-1)
        return self.lane(word, fr)

    def stmt_ConfigWrite(self, s: ir.ConfigWrite, fr: Frame, m) -> None:
        if fr.ext:
            raise ProgramError(map_writes_memory(fr.fn))
        addrs, words = self._config_entries()
        addr = self._config_addr(s.addr, fr)
        value = jnp.broadcast_to(jnp.asarray(self.expr(s.value, fr)).astype(jnp.uint16),
                                 self.lanes)
        hit = addrs == addr[..., None]
        free = addrs < 0
        found = jnp.any(hit, axis=-1)
        ok = found | jnp.any(free, axis=-1)
        self.fault(~ok, m, config_space_full(ir.CONFIG_ENTRIES))
        entry = jnp.where(found, jnp.argmax(hit, axis=-1), jnp.argmax(free, axis=-1))
        take = ok if m is None else ok & m
        sel = (jnp.arange(addrs.shape[-1]) == entry[..., None]) & take[..., None]
        mem = self.machine.mem
        mem[self.slot[ir.CONFIG_ADDRS]] = jnp.where(sel, addr[..., None], addrs)
        mem[self.slot[ir.CONFIG_WORDS]] = jnp.where(sel, value[..., None], words)

    def stmt_RouteEditAt(self, s: ir.RouteEditAt, fr: Frame, m) -> None:
        """A `color_config` call on a color known only at run time, on the lanes in `m`: each
        hop-by-hop color's `RouteEdit` on the lanes naming it; the other lanes fault."""
        if self.discovering:
            return
        color = jnp.broadcast_to(jnp.asarray(self.expr(s.color, fr)).astype(jnp.int32),
                                 self.lanes)
        known = jnp.zeros(self.lanes, bool)
        for c in self.machine.fab.switched:
            on = color == c
            known = known | on
            self.stmt_RouteEdit(ir.RouteEdit(c, s.op, s.rx, s.tx), fr, mask_and(on, m))
        self.fault(~known, m, route_edit_color(s.op))
