"""The matrix-vector family of `Lowerer`: a static loop of `@fmacs` over an advancing DSD as
one `dot_general` (opt-in: `matvec_loops`).

Uses from the `Lowerer` it is mixed into: `dsd`, `expr`, `read`, `write`, `pattern`, `fault`,
`tick`, `flat`, `sym`, `lanes`, `matvec`, `loop_limit`, `dsd_key`, `dsd_bases`, `pe`,
`_consts`, `_scaled_add`, `declared_dsd` and `store_dsd_var`.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ir, ops
from wsejax.diagnostics import dsd_out_of_range, loop_ran_past
from wsejax.engine.access import read_offset, read_static
from wsejax.engine.lower.dsd_ops import has_call, loads
from wsejax.engine.machine import Frame, bitview, is_static, mask_and_not
from wsejax.errors import ProgramError

__all__ = ["MatvecLowering"]


class MatvecLowering:
    """Mixin of `Lowerer`: `@fmacs` loops as matrix products."""

    def _matvec_dest(self, dest, b, sc, fr: Frame):
        """The accumulator `y` of a matrix-form `@fmacs` loop, or None where the loop cannot be
        one product: `y` of runtime length, over several arrays, or read by `B` or the scalar."""
        y = self.dsd(dest.dsd, fr)
        if not y.static and not is_static(y.length):
            return None
        ysyms = {name for name, _ in y.bases}
        if ysyms & loads(sc.value) or ysyms & _dsd_symbols(b.dsd, self):
            return None
        return y if len(y.bases) == 1 else None

    def vectorize_fmacs(self, s: ir.For, fr: Frame, m, outer: bool) -> bool:
        """Lower `for i: @fmacs(y, y, B, s_i); B = increment(B, c)` to one dot_general.

        Returns False (and lowers nothing) when the loop does not have that shape. PEs
        whose loop nest has less budget left than the loop's iterations fault (their memory
        is then undefined, as after any fault) and write nothing.
        """
        form = self._matvec_form(s)
        if form is None:
            return False
        dest, b, sc, incs = form
        y = self._matvec_dest(dest, b, sc, fr)
        if y is None:
            return False
        n_iter = s.trip_count
        # evaluate B and s for every iteration at once: an extra trailing lane axis
        vf = Frame(locals=dict(fr.locals), ext=1, fn=fr.fn)
        vf.locals[s.var] = np.asarray(s.start + s.step * np.arange(n_iter),
                                      s.dtype.np).reshape(1, 1, n_iter)
        k = jnp.arange(n_iter, dtype=jnp.int32).reshape(1, 1, n_iter)
        for name, inc in incs.items():
            cur = self.dsd(ir.DsdVar(name), fr)
            step = self._scaled_add(cur.replace(offset=0), int(inc.delta.value), inc.dtype)
            vf.locals[f"%vec_{name}"] = (jnp.asarray(cur.offset, jnp.int32)[..., None]
                                         + k * jnp.int32(step))
        bdsd = self._dsd_vec(b.dsd, vf, incs)
        if bdsd is None or len(bdsd.bases) != 1 or not is_static(bdsd.stride) \
                or not is_static(bdsd.length):
            return False
        n = min(int(y.length), int(bdsd.length))
        if n == 0:
            m = self._budget(fr, m, n_iter, outer)
            self._advance(incs, n_iter, m, fr)
            self.tick(m, n_iter * (1 + len(incs)))
            return True
        svals = self.expr(sc.value, vf)
        svals = jnp.broadcast_to(svals.astype(jnp.float32), self.lanes + (n_iter,))
        what = f"@fmacs in {fr.fn}"
        bname, boff = bdsd.bases[0]
        bsym = self.sym(bname)
        pat = self.pattern(bdsd, n)                      # [n]
        off = bdsd.offset                                # [1|H, 1|W, n_iter] or int
        size = bsym.size
        flat = self.flat(bname)
        src_type = ops.OPS["fmacs"].srcs[1]

        def matvec(mats):
            mats = bitview(mats, bsym.dtype, src_type)
            return jnp.einsum("hwkj,hwk->hwj", mats, svals, precision=lax.Precision.HIGHEST,
                              preferred_element_type=jnp.float32)

        if is_static(off):
            m = self._budget(fr, m, n_iter, outer)
            addr = boff + off + pat[None, :]
            bad = (addr < 0) | (addr >= size)
            if bad.any():
                self.fault(True, m, dsd_out_of_range(what, bname))
                addr = np.clip(addr, 0, size - 1)
            contrib = matvec(read_static(flat, np.broadcast_to(addr, (n_iter, n)).copy()))
        else:
            off = jnp.broadcast_to(jnp.asarray(off, jnp.int32), self.lanes + (n_iter,))
            first = off[:, :, 0]
            # iteration k reads at first + step_pat[k]: the step is a constant
            step_pat = self._iteration_pattern(b.dsd, incs, n_iter)
            if step_pat is None:
                return False
            m = self._budget(fr, m, n_iter, outer)
            addr_pat = boff + step_pat[:, None] + pat[None, :]          # [n_iter, n]
            lo, hi = int(addr_pat.min()), int(addr_pat.max())
            bad = (first + lo < 0) | (first + hi >= size)
            self.fault(bad, m, dsd_out_of_range(what, bname))
            first = jnp.clip(first, -lo, max(size - 1 - hi, -lo))
            contrib = read_offset(flat, first, addr_pat, matvec)
        yv = self.read(y, n, None, ops.OPS["fmacs"].srcs[0], m, fr, what)
        self.write(y, yv + contrib, n, None, ops.OPS["fmacs"].dest, m, what)
        self._advance(incs, n_iter, m, fr)
        # what the loop costs step by step: the op (n elements + 1) and one per increment
        self.tick(m, n_iter * (n + 1 + len(incs)))
        return True

    def _matvec_form(self, s: ir.For):
        """`(dest, B, s, increments)` of a loop `for i: @fmacs(y, y, B, s_i); B = increment(B,
        c)` whose destination stays put and whose scalar calls nothing, else None."""
        body = s.body
        if not self.matvec or not body or type(body[0]) is not ir.DsdOp \
                or body[0].op != "fmacs":
            return None
        incs = {}
        for st in body[1:]:
            if (type(st) is ir.DsdAssign and type(st.value) is ir.IncrementOffset
                    and st.value.dsd == ir.DsdVar(st.name) and type(st.value.delta) is ir.Const
                    and st.name in self.dsd_key and st.name not in incs):
                incs[st.name] = st.value
            else:
                return None
        dest, a, b, sc = body[0].dest, *body[0].srcs
        if not (type(dest) is ir.DsdOperand and a == dest and type(b) is ir.DsdOperand
                and type(sc) is ir.ScalarOperand):
            return None
        if _mentions(dest.dsd, set(incs) | {s.var}) or has_call(sc.value):
            return None
        return dest, b, sc, incs

    def _budget(self, fr: Frame, m, n_iter: int, outer: bool):
        """Spend `n_iter` iterations of the nest's budget at once: the lanes of `m` that
        have them; the others fault (as step by step they would, later in the loop)."""
        short = fr.nest.used > self.loop_limit - n_iter
        self.fault(short, m, loop_ran_past(fr.fn, "for", self.loop_limit, outer))
        m = mask_and_not(m, short)
        fr.nest.used = fr.nest.used + jnp.where(True if m is None else m, n_iter, 0)
        return m

    def _advance(self, incs, n_iter: int, m, fr: Frame) -> None:
        """Apply a vectorised loop's DSD increments for all its iterations at once."""
        for name, inc in incs.items():
            cur = self.dsd(ir.DsdVar(name), fr)
            total = self._scaled_add(cur.replace(offset=0), int(inc.delta.value) * n_iter,
                                     inc.dtype)
            new = cur.replace(offset=jnp.asarray(cur.offset, jnp.int32) + jnp.int32(total))
            self.store_dsd_var(name, new, m, fr)

    def _iteration_pattern(self, b, incs, n_iter):
        """Static offsets (relative to iteration 0) of B over the iterations, or None."""
        if type(b) is ir.DsdVar and b.name in incs:
            inc = incs[b.name]
            d = self.declared_dsd(b.name).replace(bases=self.dsd_bases[b.name][0])
            step = self._scaled_add(d.replace(offset=0), int(inc.delta.value), inc.dtype)
            return step * np.arange(n_iter, dtype=np.int64)
        return None

    def _dsd_vec(self, e, vf: Frame, incs):
        """B's DSD with the incremented variables' per-iteration offsets."""
        if type(e) is ir.DsdVar and e.name in incs:
            cur = self.dsd(e, vf)
            return cur.replace(offset=vf.locals[f"%vec_{e.name}"])
        if _mentions(e, set(incs)):
            return None
        try:
            return self.dsd(e, vf)
        except ProgramError:
            return None


def _mentions(e, names: set) -> bool:
    """Does DSD expression or expression `e` read any of `names` (DSD vars or locals)?"""
    t = type(e)
    if t in (ir.DsdVar, ir.DsdLocal, ir.Local):
        return e.name in names
    if dataclasses.is_dataclass(e):
        return any(_mentions(getattr(e, f.name), names) for f in dataclasses.fields(e))
    if isinstance(e, tuple):
        return any(_mentions(x, names) for x in e)
    return False


def _dsd_symbols(e, low) -> set:
    """The symbols DSD expression `e` may point to, as `Lowerer` `low` sees it."""
    t = type(e)
    if t is ir.DsdLit:
        return {e.dsd.base}
    if t is ir.DsdVar:
        return {b for b, _ in low.dsd_bases.get(e.name, ((),))[0]} | (
            {low._consts[e.name].bases[0][0]} if e.name in low._consts else set())
    if t is ir.SetBase:
        return {e.symbol}
    if t is ir.DsdLocal:
        return {s.name for s in low.pe.symbols}
    if t in (ir.IncrementOffset, ir.SetLength, ir.SetStride):
        return _dsd_symbols(e.dsd, low)
    return set()
