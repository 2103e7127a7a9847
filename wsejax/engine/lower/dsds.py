"""The DSD family of `Lowerer`: DSD values (`dsd_<Class>` per `ir` DSD expression class),
and reading and writing memory through them.

Uses from the `Lowerer` it is mixed into: `handler`, `expr`, `lane`, `fault`, `sym`, `flat`,
`set_flat`, `lanes`, `machine` (its `dsd`), `pe`, `dsd_key`, `dsd_bases`, `_consts` (the DSD
variables no body assigns) and `fifo` (the fabric family's).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from wsejax import ir
from wsejax.diagnostics import dsd_out_of_range, half_an_element
from wsejax.dsd import mem4d_addresses, reads_low_halves
from wsejax.engine.access import gather, progression, read_offset, read_static, scatter
from wsejax.engine.machine import DsdRt, Frame, bitview, is_static, mask_and
from wsejax.engine.plan import mentioned_bases
from wsejax.errors import ProgramError
from wsejax.types import DType

__all__ = ["DsdLowering"]


class DsdLowering:
    """Mixin of `Lowerer`: DSD values and memory access through them."""

    def global_dsd(self, d) -> DsdRt:
        """A DsdRt for a literal whose fields are constants (global DSD initial values)."""
        return self.literal_dsd(d, None)

    def literal_dsd(self, d, fr: Frame | None) -> DsdRt:
        """The DsdRt of DSD literal `d` (`ir.Mem1d`, ...); its fields evaluated in `fr`."""
        def f(x):
            if type(x) is ir.Const:
                return int(x.value)
            if fr is None:
                raise ProgramError("a global DSD needs comptime fields")
            return self.expr(x, fr).astype(jnp.int32)

        if isinstance(d, ir.Mem1d):
            return DsdRt("mem1d", ((d.base, d.base_offset),), 0, f(d.offset), f(d.stride),
                         f(d.length), wavelet_index_offset=d.wavelet_index_offset)
        if isinstance(d, ir.CircBuf):
            return DsdRt("circbuf", ((d.base, d.base_offset),), 0, f(d.offset), 1,
                         f(d.length), wrap=d.wraparound)
        if isinstance(d, ir.FabIn):
            return DsdRt("fabin", (), length=f(d.length), color=d.color, simd=d.simd)
        if isinstance(d, ir.FabOut):
            return DsdRt("fabout", (), length=f(d.length), color=d.color,
                         wavelet_index_offset=d.wavelet_index_offset, control=d.control,
                         zero=d.zero, simd=d.simd, advance_switch=d.advance_switch)
        return DsdRt("mem4d", ((d.base, d.base_offset),), 0, f(d.offset), 0,
                     int(np.prod(d.extents)), tuple(d.coeffs), tuple(d.extents),
                     d.wavelet_index_offset)

    def dsd_init_fields(self, name: str) -> dict:
        """Initial state fields of runtime DSD variable `name` (its runtime fields only)."""
        lit = self.global_dsd(dict(self.pe.dsd_vars)[name].dsd)
        bases, runtime = self.dsd_bases[name]
        values = {"base": bases.index(lit.bases[0]) if lit.bases else 0, "offset": lit.offset,
                  "stride": lit.stride, "length": lit.length}
        return {k: v for k, v in values.items() if k in runtime}

    def declared_dsd(self, name: str) -> DsdRt:
        """DSD variable `name` as declared (its initial value)."""
        return self.global_dsd(dict(self.pe.dsd_vars)[name].dsd)

    def dsd(self, e, fr: Frame) -> DsdRt:
        """The value of DSD expression `e` in frame `fr`."""
        return self.handler("dsd_", e, "DSD expression")(e, fr)

    def dsd_DsdLit(self, e: ir.DsdLit, fr: Frame) -> DsdRt:
        return self.literal_dsd(e.dsd, fr)

    def dsd_DsdVar(self, e: ir.DsdVar, fr: Frame) -> DsdRt:
        if e.name in self._consts:
            return self._consts[e.name]
        # a variable whose assignments change no field has no state
        st = self.machine.dsd.get(self.dsd_key[e.name], {})
        init = self.declared_dsd(e.name)
        bases, _ = self.dsd_bases[e.name]
        if init.memory:
            init = init.replace(bases=bases, base=bases.index(init.bases[0]))
        return init.replace(**{k: self.lane(v, fr) for k, v in st.items()})

    def dsd_DsdLocal(self, e: ir.DsdLocal, fr: Frame) -> DsdRt:
        v = fr.locals.get(e.name)
        if not isinstance(v, DsdRt):
            raise ProgramError(f"{fr.fn}: '{e.name}' is not a DSD")
        return v.replace(**{k: self.lane(x, fr) for k, x in v.fields().items()})

    def dsd_FifoRef(self, e: ir.FifoRef, fr: Frame) -> DsdRt:
        fifo = self.fifo(e.name)
        return DsdRt("fifo", ((fifo.buffer, 0),), length=self.sym(fifo.buffer).size,
                     fifo=e.name)

    def dsd_IncrementOffset(self, e: ir.IncrementOffset, fr: Frame) -> DsdRt:
        d = self.dsd(e.dsd, fr)
        delta = self.expr(e.delta, fr) if type(e.delta) is not ir.Const else int(e.delta.value)
        return d.replace(offset=self._scaled_add(d, delta, e.dtype))

    def dsd_SetBase(self, e: ir.SetBase, fr: Frame) -> DsdRt:
        d = self.dsd(e.dsd, fr)
        return d.replace(bases=((e.symbol, e.base_offset),), base=0, offset=0)

    def dsd_SetLength(self, e: ir.SetLength, fr: Frame) -> DsdRt:
        d = self.dsd(e.dsd, fr)
        return d.replace(length=self._field_value(e.length, fr))

    def dsd_SetStride(self, e: ir.SetStride, fr: Frame) -> DsdRt:
        d = self.dsd(e.dsd, fr)
        return d.replace(stride=self._field_value(e.stride, fr))

    # -- DSD locals of a body that waits, kept in its frame arrays between blocks ---------------

    def frame_dsds(self, cfg, fr: Frame) -> None:
        """Give frame `fr` the DSD locals of waiting body `cfg` that an earlier block stored
        (their static form, found when a block first stored them, and their runtime fields
        from the frame arrays)."""
        for name in cfg.dsd_locals:
            form = self.dsd_forms.get((cfg.entry, name))
            if form is not None:
                key = cfg.frame_key(name)
                fr.locals[name] = form.replace(**{f: self.machine.fab.frames[f"{key}.{f}"]
                                                  for f in form.fields()})

    def keep_frame_dsds(self, cfg, fr: Frame, mask) -> None:
        """Store the DSD locals of frame `fr` in the frame arrays of waiting body `cfg`, on
        the lanes in `mask`, for the blocks after. A memory DSD's base numbers one of every
        base the program mentions, so that each store means the same base by a number."""
        frames = self.machine.fab.frames
        for name in cfg.dsd_locals:
            v = fr.locals.get(name)
            if not isinstance(v, DsdRt):
                continue
            form = self.dsd_forms.get((cfg.entry, name))
            if form is None:
                bases = v.bases
                if v.memory:
                    init = {n: lit.dsd for n, lit in self.pe.dsd_vars}
                    bases = tuple(dict.fromkeys(mentioned_bases(self.pe, init) + v.bases))
                form = v.replace(bases=bases, base=0, offset=0, stride=0, length=0)
                self.dsd_forms[(cfg.entry, name)] = form
            v = self._rebase(v, form.bases)
            if v.replace(base=0, offset=0, stride=0, length=0) != form:
                raise ProgramError(f"{cfg.root}: DSD local '{name}' holds DSDs of different "
                                   "kinds, colors or shapes on either side of a wait")
            key = cfg.frame_key(name)
            for f, x in v.fields().items():
                frames[f"{key}.{f}"] = jnp.where(mask, jnp.broadcast_to(
                    jnp.asarray(x, jnp.int32), self.lanes), frames[f"{key}.{f}"])

    def _field_value(self, e, fr: Frame):
        """A DSD field's new value: an int where `e` is a constant, else `[H, W]` int32."""
        return int(e.value) if type(e) is ir.Const else self.expr(e, fr).astype(jnp.int32)

    def _elem_bits(self, d: DsdRt) -> int:
        bits = {self.sym(b).dtype.bits for b, _ in d.bases}
        if len(bits) != 1:
            raise ProgramError("a DSD may point to arrays of different element widths")
        return bits.pop()

    def _scaled_add(self, d: DsdRt, delta, dtype: DType):
        """offset + delta elements of `dtype`, in units of the base's element type."""
        bits = self._elem_bits(d)
        if dtype.bits == bits:
            step = delta
        elif dtype.bits > bits:
            step = delta * (dtype.bits // bits)
        else:
            if is_static(delta) and delta % (bits // dtype.bits):
                raise ProgramError(half_an_element(delta, dtype, bits))
            step = delta // (bits // dtype.bits)
        if is_static(d.offset) and is_static(step):
            return int(d.offset) + int(step)
        return jnp.asarray(d.offset, jnp.int32) + jnp.asarray(step, jnp.int32)

    def merge_dsd(self, new: DsdRt, old: DsdRt | None, m, bases=None) -> DsdRt:
        """`where(m, new, old)` for DSD values; `bases` fixes the candidate list."""
        if old is None and bases is None:
            return new
        if old is not None and (new.kind, new.color) != (old.kind, old.color):
            raise ProgramError(f"a DSD variable holds a {old.kind}_dsd on some paths and a "
                               f"{new.kind}_dsd on others (or other colors)")
        if bases is None:
            bases = tuple(dict.fromkeys(old.bases + new.bases))
        new = self._rebase(new, bases)
        if old is None or m is None:
            return new
        old = self._rebase(old, bases)
        out = {}
        for k in ("base", "offset", "stride", "length"):
            a, b = new.fields()[k], old.fields()[k]
            if is_static(a) and is_static(b) and a == b:
                out[k] = a
            else:
                out[k] = jnp.where(m, jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32))
        return new.replace(**out)

    def _rebase(self, d: DsdRt, bases) -> DsdRt:
        if d.bases == bases:
            return d
        missing = [b for b in d.bases if b not in bases]
        if missing:
            raise ProgramError(f"a DSD variable is pointed to '{missing[0][0]}', which the "
                               "emulator did not expect")
        table = np.array([bases.index(b) for b in d.bases], np.int32)
        base = int(table[d.base]) if is_static(d.base) else jnp.asarray(table)[d.base]
        return d.replace(bases=bases, base=base)

    def materialize(self, d: DsdRt) -> DsdRt:
        """Every field as a full `[H, W]` int32 array (for loop carries and state)."""
        return d.replace(**{k: jnp.broadcast_to(jnp.asarray(v, jnp.int32), self.lanes)
                            for k, v in d.fields().items()})

    def pattern(self, d: DsdRt, n: int) -> np.ndarray:
        """Static part of the element addresses of the first n elements (relative to offset),
        for static strides; None if the stride is a runtime value."""
        if d.kind == "mem4d":
            return mem4d_addresses(0, d.coeffs, d.extents)[:n]
        if d.kind == "circbuf" or not is_static(d.stride):
            return None
        return d.stride * np.arange(n, dtype=np.int64)

    def bound(self, d: DsdRt) -> int:
        """A static upper bound on the DSD's length."""
        if is_static(d.length):
            return int(d.length)
        sizes = [self.sym(b).size for b, _ in d.bases]
        return max(sizes)

    def _base_iter(self, d: DsdRt):
        for k, (name, boff) in enumerate(d.bases):
            sel = None
            if len(d.bases) > 1:
                sel = d.base == k
                if isinstance(sel, (bool, np.bool_)):
                    if not sel:
                        continue
                    sel = None
            yield name, boff, sel

    def read(self, d: DsdRt, n: int, nvalid, want: DType, m, fr: Frame, what: str):
        """Values of the first n elements of DSD `d` as `want`: `[H, W, n]`."""
        out = None
        for name, boff, sel in self._base_iter(d):
            sym = self.sym(name)
            low = reads_low_halves(sym.dtype, want)
            if not low:
                self._check_width(sym, want, what)
            flat = self.flat(name)
            vals = self._read_base(d, flat, sym, boff, n, nvalid, mask_and(m, sel), what)
            if low:     # a 16-bit op over a 32-bit array: each element's low half
                vals = bitview(vals, sym.dtype, DType.u32).astype(jnp.uint16)
                vals = bitview(vals, DType.u16, want)
            else:
                vals = bitview(vals, sym.dtype, want)
            out = vals if out is None else jnp.where(sel[..., None], vals, out)
        return out

    @staticmethod
    def _check_width(sym: ir.Symbol, want: DType, what: str) -> None:
        if sym.dtype.bits != want.bits:
            raise ProgramError(f"{what}: a DSD over '{sym.name}' ({sym.dtype}) is used for "
                               f"{want.bits}-bit {want} elements")

    def _addresses(self, d: DsdRt, boff: int, n: int):
        """(static numpy addresses, None) or (None, traced [H, W, n] addresses)."""
        if d.addr is not None:
            return None, boff + d.addr
        if d.kind == "circbuf":     # around the ring from the head
            if is_static(d.offset):
                return boff + (d.offset + np.arange(n, dtype=np.int64)) % d.wrap, None
            off = jnp.asarray(d.offset, jnp.int32)[..., None]
            return None, boff + (off + jnp.arange(n, dtype=jnp.int32)) % d.wrap
        pat = self.pattern(d, n)
        if pat is not None and is_static(d.offset):
            return boff + d.offset + pat, None
        if pat is not None:
            off = jnp.asarray(d.offset, jnp.int32)
            return None, (off, boff + pat)
        off = jnp.asarray(d.offset, jnp.int32)
        stride = jnp.asarray(d.stride, jnp.int32)
        idx = boff + off[..., None] + stride[..., None] * jnp.arange(n, dtype=jnp.int32)
        return None, idx

    def _valid(self, n: int, nvalid):
        if nvalid is None:
            return None
        return jnp.arange(n, dtype=jnp.int32) < jnp.asarray(nvalid, jnp.int32)[..., None]

    def _read_base(self, d, flat, sym, boff, n, nvalid, m, what):
        size = sym.size
        static, dyn = self._addresses(d, boff, n)
        valid = self._valid(n, nvalid)
        if static is not None:
            bad = (static < 0) | (static >= size)
            if bad.any():
                badm = jnp.asarray(bad) if valid is None else (valid & jnp.asarray(bad))
                self.fault(badm if valid is not None else True, m,
                           dsd_out_of_range(what, sym.name))
                static = np.clip(static, 0, size - 1)
            return read_static(flat, static)
        if isinstance(dyn, tuple):
            off, pat = dyn
            lo, hi = int(pat.min()), int(pat.max())
            bad = (off + lo < 0) | (off + hi >= size)
            if valid is not None:
                addr = off[..., None] + jnp.asarray(pat.astype(np.int32))
                bad = jnp.any(valid & ((addr < 0) | (addr >= size)), axis=-1)
            self.fault(bad, m, dsd_out_of_range(what, sym.name))
            if off.ndim == 0:
                off = jnp.broadcast_to(off, self.lanes)
            if valid is not None:
                # a run-time length under the static bound: the window of all n elements
                # may run past either end although every valid one is in range. Moving
                # the offset to fit the window would read other elements; pad instead.
                span = hi - lo + 1
                pad = jnp.zeros(flat.shape[:2] + (span,), flat.dtype)
                flat = jnp.concatenate([pad, flat, pad], axis=2)
                off = jnp.clip(off + span, -lo, size + 2 * span - 1 - hi)
                return read_offset(flat, off, pat)
            off = jnp.clip(off, -lo, max(size - 1 - hi, -lo))
            return read_offset(flat, off, pat)
        idx = dyn
        badv = (idx < 0) | (idx >= size)
        if valid is not None:
            badv = badv & valid
        self.fault(jnp.any(badv, axis=-1), m, dsd_out_of_range(what, sym.name))
        return gather(flat, jnp.clip(idx, 0, size - 1))

    def write(self, d: DsdRt, vals, n: int, nvalid, have: DType, m, what: str) -> None:
        """Write `vals` (`[H, W, n]` of type `have`) to the first n elements of DSD `d`."""
        for name, boff, sel in self._base_iter(d):
            sym = self.sym(name)
            self._check_width(sym, have, what)
            mm = mask_and(m, sel)
            v = bitview(vals, have, sym.dtype)
            self._write_base(d, sym, boff, v, n, nvalid, mm, what)

    def _write_base(self, d, sym, boff, vals, n, nvalid, m, what):
        size = sym.size
        flat = self.flat(sym.name)
        static, dyn = self._addresses(d, boff, n)
        valid = self._valid(n, nvalid)
        if static is not None and valid is None:
            bad = (static < 0) | (static >= size)
            if bad.any():
                self.fault(True, m, dsd_out_of_range(what, sym.name))
                keep = ~bad
                static, vals = static[keep], vals[:, :, np.nonzero(keep)[0]]
                if static.size == 0:
                    return
            prog = progression(static)
            if prog is not None and prog[1] == 0:
                # a stride-0 destination keeps the last element written (spec 7.7)
                static, vals = static[-1:], vals[:, :, -1:]
                prog = (int(static[0]), 1)
            if prog is not None and prog[1] > 0:
                start, step = prog
                sl = slice(start, start + step * (static.size - 1) + 1, step)
                old = flat[:, :, sl]
                new = vals if m is None else jnp.where(m[..., None], vals, old)
                self.set_flat(sym.name, flat.at[:, :, sl].set(new))
                return
            idx = jnp.broadcast_to(jnp.asarray(static.astype(np.int32)), self.lanes + static.shape)
        elif static is not None:
            idx = jnp.broadcast_to(jnp.asarray(static.astype(np.int32)), self.lanes + static.shape)
        elif isinstance(dyn, tuple):
            off, pat = dyn
            idx = jnp.asarray(off, jnp.int32)[..., None] + jnp.asarray(pat.astype(np.int32))
            idx = jnp.broadcast_to(idx, self.lanes + (n,))
        else:
            idx = jnp.broadcast_to(dyn, self.lanes + (n,))
        ok = self._written(d, n, nvalid, valid, idx.shape)
        bad = ok & ((idx < 0) | (idx >= size))
        self.fault(jnp.any(bad, axis=-1), m, dsd_out_of_range(what, sym.name))
        ok = ok & ~bad
        if m is not None:
            ok = ok & m[..., None]
        # duplicate addresses (stride 0): every duplicate carries the last valid value
        if not (static is not None and len(set(static.tolist())) == static.size):
            last = self._last_valid(vals, ok)
            dup = self._has_duplicates(idx, ok)
            vals = jnp.where(dup[..., None], last[..., None], vals)
        self.set_flat(sym.name, scatter(flat, jnp.where(ok, idx, size), vals))

    @staticmethod
    def _written(d: DsdRt, n: int, nvalid, valid, shape):
        """Which of the n elements a write stores (`[H, W, n]` bool): the valid ones; of a
        circbuf that goes around its ring more than once, only each address's last write."""
        ok = jnp.ones(shape, bool) if valid is None else jnp.broadcast_to(valid, shape)
        if d.kind == "circbuf" and n > d.wrap:
            count = jnp.asarray(n if nvalid is None else nvalid, jnp.int32)[..., None]
            ok = ok & (jnp.arange(n, dtype=jnp.int32) + d.wrap >= count)
        return ok

    @staticmethod
    def _last_valid(vals, ok):
        n = vals.shape[-1]
        pos = jnp.where(ok, jnp.arange(n, dtype=jnp.int32), -1).max(axis=-1)
        return jnp.take_along_axis(vals, jnp.clip(pos, 0, n - 1)[..., None], axis=-1)[..., 0]

    @staticmethod
    def _has_duplicates(idx, ok):
        """True on lanes whose valid addresses are all equal (the stride-0 case)."""
        first = jnp.take_along_axis(idx, jnp.argmax(ok, axis=-1)[..., None], axis=-1)
        same = jnp.all(~ok | (idx == first), axis=-1)
        return same & (jnp.sum(ok, axis=-1) > 1)
