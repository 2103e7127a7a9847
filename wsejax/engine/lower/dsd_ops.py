"""The DSD operation family of `Lowerer`: `stmt_DsdOp` and `stmt_Map` on memory operands.

An op over memory runs element-wise on `[H, W, n]` windows, or one element at a time in a
`fori_loop` where an element may read what an earlier one wrote; an op with a fabric or FIFO
operand, or an async one, goes to its microthread slot (`fabric_op`, the fabric family's).

Uses from the `Lowerer` it is mixed into: `dsd`, `expr`, `cast`, `read`, `write`, `pattern`,
`bound`, `_addresses`, `tick`, `lanes`, `machine`, `pe`, `sym`, `block` and
`stmt_Assign`; from the fabric family `needs_fabric`, `fabric_op`, `apply_hooks` and
`_index_offset`.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ir, ops
from wsejax.engine.cfg import map_as_op
from wsejax.engine.machine import DsdRt, Frame, bitview, is_static, mask_and
from wsejax.errors import ProgramError
from wsejax.opspec import CARRIED, ElementOp
from wsejax.types import DType

__all__ = ["DsdOpLowering", "has_call", "loads", "same_dsd"]


class DsdOpLowering:
    """Mixin of `Lowerer`: DSD operations and `@map` over memory."""

    def _operands(self, s, fr):
        out = []
        for o in s:
            if type(o) is ir.DsdOperand:
                out.append(("D", self.dsd(o.dsd, fr)))
            elif type(o) is ir.ScalarOperand:
                out.append(("s", (self.expr(o.value, fr), o.value.dtype)))
            else:
                out.append(("p", o))
        return out

    def _length(self, dsds):
        """(static bound n, runtime length or None) over DSD operands (spec 7.9: the min).

        With no DSD operand (a pointer destination and scalar sources) the op runs once."""
        if not dsds:
            return 1, None
        n = min(self.bound(d) for d in dsds)
        rt = None
        for d in dsds:
            if not is_static(d.length):
                rt = d.length if rt is None else jnp.minimum(rt, d.length)
        if rt is not None:
            statics = [int(d.length) for d in dsds if is_static(d.length)]
            if statics:
                rt = jnp.minimum(rt, min(statics))
        return n, rt

    def op_spec(self, s: ir.DsdOp) -> ElementOp:
        """The element types (and function) of op `s`; for a `@map` run as an op
        (`map_as_op`), its callback's parameter and result types."""
        if s.op != "map":
            return self.op_table[s.op]
        f = self.pe.function(self.map_stmts[s.site].fn)
        return ElementOp("map", f.ret, tuple(t for _, t in f.params), (), None)

    @property
    def map_stmts(self) -> dict:
        """site -> the `@map` over fabric DSDs of that site, run as an op."""
        return self.__dict__.setdefault("_map_stmts", {})

    def stmt_DsdOp(self, s: ir.DsdOp, fr: Frame, m) -> None:
        if s.op == "dfilt":     # a data filter: its fabin is its one operand
            self.fabric_op(s, self._operands([s.dest], fr)[0], [], fr, m)
            return
        spec = self.op_spec(s)
        what = f"@{s.op} in {fr.fn}"
        dest = self._operands([s.dest], fr)[0]
        srcs = self._operands(s.srcs, fr)
        if self.needs_fabric(dest, srcs):
            self.fabric_op(s, dest, srcs, fr, m)
            return
        if s.config is not None and s.config.index is not None:
            index = jnp.broadcast_to(self.expr(s.config.index, fr).astype(jnp.int32),
                                     self.lanes)
            dest, *srcs = [(k, o.replace(offset=self._index_offset(o, index)))
                           if k == "D" and o.wavelet_index_offset else (k, o)
                           for k, o in [dest] + srcs]
        dsds = [d for k, d in [dest] + srcs if k == "D"]
        n, nvalid = self._length(dsds)
        if n == 0:
            self.apply_hooks(s.config, fr, m)
            return
        if n > 1 and self._carried(s, dest, srcs, n):
            self.dsd_op_in_order(s, spec, dest, n, nvalid, m, fr, what)
        else:
            vals = self._source_values(spec, srcs, n, nvalid, m, fr, what)
            if self.fp_checks:
                valid = None if nvalid is None else \
                    jnp.arange(n) < jnp.asarray(nvalid, jnp.int32)[..., None]
                self.fp_op(s.op, spec, vals, n, valid, m, what)
            res = jnp.broadcast_to(spec.fn(*vals), self.lanes + (n,))
            self.store(dest, res, n, nvalid, spec.dest, m, fr, what)
        self.save_addresses(s, n if nvalid is None else nvalid, fr, m)
        self.tick(m, n if nvalid is None else nvalid)
        self.apply_hooks(s.config, fr, m)

    def save_addresses(self, s: ir.DsdOp, count, fr: Frame, m) -> None:
        """Move each `.save_address` register operand of `s` past the `count` elements
        (static or `[H, W]`) the op accessed: the next op continues from there (spec 9)."""
        names = dict.fromkeys(o.dsd.name for o in (s.dest,) + s.srcs
                              if type(o) is ir.DsdOperand and type(o.dsd) is ir.DsdVar)
        for name in names:
            if not self.pe.saved_address(name):
                continue
            d = self.dsd(ir.DsdVar(name), fr)
            count = jnp.asarray(count, jnp.int32)
            if d.kind == "mem4d":       # to one past the last element accessed
                pat = jnp.asarray(self.pattern(d, d.length).astype(np.int32))
                step = jnp.where(count > 0, pat[jnp.clip(count - 1, 0, d.length - 1)] + 1, 0)
            elif d.kind == "circbuf":   # the head goes around the ring
                head = (jnp.asarray(d.offset, jnp.int32) + count) % d.wrap
                self.store_dsd_var(name, d.replace(offset=head), m, fr)
                continue
            else:
                step = jnp.asarray(d.stride, jnp.int32) * count
            self.store_dsd_var(name, d.replace(offset=jnp.asarray(d.offset, jnp.int32) + step),
                               m, fr)

    def _source_values(self, spec, srcs, n, nvalid, m, fr, what):
        vals = []
        for (k, o), t in zip(srcs, spec.srcs):
            if k == "D":
                vals.append(self.read(o, n, nvalid, t, m, fr, what))
            else:
                x, have = o
                x = self.cast(x, have, t) if have != t else x
                vals.append(jnp.asarray(x, t.np)[..., None] if jnp.ndim(x) else
                            jnp.asarray(x, t.np))
        return vals

    def _carried(self, s: ir.DsdOp, dest, srcs, n: int) -> bool:
        """Could element j of the op read what element i < j wrote? (the stride-0 reduction
        idiom `@fadds(acc, acc, x)`, overlapping shifts, a DSD source over a pointer
        destination). Then the op runs in order. Scalar sources are values, read once."""
        kind, d = dest
        dnames = ({b for b, _ in d.bases} if kind == "D" else {d.symbol})
        for k, o in srcs:
            if k != "D" or not dnames & {b for b, _ in o.bases}:
                continue
            if kind != "D":
                return True         # a pointer destination is written at every element
            if same_dsd(o, d):
                if self._distinct(d, n):
                    continue        # each element reads what it then overwrites: no carry
                return True
            wa = self._static_addresses(d, n)
            ra = self._static_addresses(o, n)
            if wa is None or ra is None:
                return True         # runtime addresses over the same array: be exact
            first_write = {}
            for i, a in enumerate(wa.tolist()):
                first_write.setdefault(a, i)
            if any(first_write.get(a, n) < j for j, a in enumerate(ra.tolist())):
                return True
        return False

    def _static_addresses(self, d: DsdRt, n: int):
        """Absolute static addresses (base offset included) of the first n elements, or None."""
        if len(d.bases) != 1 or not is_static(d.offset) or self.pattern(d, 1) is None:
            return None
        return self._addresses(d, d.bases[0][1], n)[0]

    def _distinct(self, d: DsdRt, n: int) -> bool:
        """Are the first n addresses of d distinct (so an in-place op is element-wise)?"""
        pat = self.pattern(d, n)
        return pat is not None and len(set(pat.tolist())) == len(pat)

    def dsd_op_in_order(self, s: ir.DsdOp, spec, dest, n, nvalid, m, fr: Frame,
                        what: str) -> None:
        """Run the op one element at a time, as the hardware does, in a `fori_loop`: each
        element's DSD sources are read after the previous element's write; scalar sources
        are values, evaluated once before the op."""
        srcs = self._operands(s.srcs, fr)

        def element(d: DsdRt, i) -> DsdRt:
            return self._element(d, i, n)

        def body(i, state):
            carry, flag = state
            self.machine.load(carry)
            mi = m
            if nvalid is not None:
                mi = mask_and(m, jnp.broadcast_to(i < jnp.asarray(nvalid, jnp.int32), self.lanes))
            one = [(k, element(o, i) if k == "D" else o) for k, o in srcs]
            vals = self._source_values(spec, one, 1, None, mi, fr, what)
            if self.fp_checks:
                self.fp_op(s.op, spec, vals, 1, None, mi, what)
            if s.op in CARRIED:     # the carry flag goes from each element to the next
                res, flag = ops.add_with_carry(*vals, flag[..., None])
                flag = jnp.broadcast_to(flag, self.lanes + (1,))[..., 0]
            else:
                res = spec.fn(*vals)
            res = jnp.broadcast_to(res, self.lanes + (1,))
            kind, o = dest
            self.store((kind, element(o, i) if kind == "D" else o), res, 1, None, spec.dest,
                       mi, fr, what)
            return self.machine.carry(), flag

        start = (self.machine.carry(), jnp.zeros(self.lanes, jnp.uint16))
        self.machine.load(lax.fori_loop(0, n, body, start)[0])

    def store(self, dest, res, n, nvalid, have: DType, m, fr: Frame, what: str) -> None:
        kind, o = dest
        if kind == "D":
            self.write(o, res, n, nvalid, have, m, what)
            return
        # pointer-to-scalar destination: the last element computed (spec 7.7)
        if nvalid is None:
            last = res[:, :, n - 1]
        else:
            pos = jnp.clip(jnp.asarray(nvalid, jnp.int32) - 1, 0, n - 1)
            last = jnp.take_along_axis(res, jnp.broadcast_to(pos, self.lanes)[..., None],
                                       axis=2)[..., 0]
            m = mask_and(m, jnp.asarray(nvalid) > 0)
        sym = self.sym(o.symbol)
        last = bitview(last, have, sym.dtype)
        self.assign_value(o.symbol, o.indices, last, fr, m)

    def assign_value(self, symbol, indices, v, fr, m) -> None:
        """Assign an already computed `[H, W]` value to `symbol[indices]`."""
        tmp = "%store"
        fr.locals[tmp] = v
        self.stmt_Assign(ir.Assign(symbol, tuple(indices), ir.Local(tmp, self.sym(symbol).dtype)),
                    fr, m)
        del fr.locals[tmp]

    def stmt_Map(self, s: ir.Map, fr: Frame, m) -> None:
        f = self.pe.function(s.fn)
        what = f"@map in {fr.fn}"
        ins = self._operands(s.inputs, fr)
        out = self._operands([s.output], fr)[0] if s.output is not None else None
        dsds = [d for k, d in ins if k == "D"]
        if out is not None and out[0] == "D":
            dsds.append(out[1])
        if any(not d.memory for d in dsds):
            # a fabin input or a fabout output: the map runs on its slot, as an op
            self.map_stmts[s.site] = s
            self.stmt_DsdOp(map_as_op(s), fr, m)
            return
        n, nvalid = self._length(dsds)
        if n == 0:
            return
        if self._map_carried(f, out):
            self.map_in_order(s, f, ins, out, n, nvalid, m, fr, what)
            return
        args = []
        for (k, o), (_, ptype) in zip(ins, f.params):
            if k == "D":
                args.append(self.read(o, n, nvalid, ptype, m, fr, what))
            else:
                x, have = o
                args.append(jnp.broadcast_to(jnp.asarray(x), self.lanes)[..., None])
        callee = Frame(ext=1, fn=s.fn)
        for (pname, _), a in zip(f.params, args):
            callee.locals[pname] = a
        self.block(f.body, callee, None if m is None else m[..., None])
        if out is not None:
            if callee.retval is None:
                raise ProgramError(f"@map callback {s.fn} returned no value")
            res = jnp.broadcast_to(callee.retval.astype(f.ret.np), self.lanes + (n,))
            self.store(out, res, n, nvalid, f.ret, m, fr, what)
        self.tick(m, n if nvalid is None else nvalid)

    def _map_carried(self, f: ir.Function, out) -> bool:
        """Could a call of a `@map` callback see what an earlier call wrote? It can where the
        callback reads what the output writes (the reduction idiom `@map(add, dsd, &acc,
        &acc)`), calls functions, reads through a runtime pointer (which may point to what
        the output writes) or writes memory (a variable, or through a pointer). Then the map
        runs in order."""
        if has_call(f.body) or reads_pointer(f.body) or any(
                isinstance(st, (ir.Call, ir.Assign, ir.PtrStore)) for st in ir.walk_stmts(f.body)):
            return True
        if out is None:
            return False
        kind, o = out
        written = {b for b, _ in o.bases} if kind == "D" else {o.symbol}
        return bool(written & loads(f.body))

    def map_in_order(self, s: ir.Map, f: ir.Function, ins, out, n, nvalid, m, fr: Frame,
                     what: str) -> None:
        """Run a `@map` one element at a time, in a `fori_loop` (vectorised over PEs): each
        call reads its DSD inputs after the previous call's writes."""
        def body(i, carry):
            self.machine.load(carry)
            mi = m
            if nvalid is not None:
                mi = mask_and(m, jnp.broadcast_to(i < jnp.asarray(nvalid, jnp.int32), self.lanes))
            callee = Frame(ext=1, fn=s.fn, writes=True)
            for (k, o), (pname, ptype) in zip(ins, f.params):
                if k == "D":
                    callee.locals[pname] = self.read(self._element(o, i, n), 1, None, ptype,
                                                     mi, fr, what)
                else:
                    callee.locals[pname] = jnp.broadcast_to(jnp.asarray(o[0]),
                                                            self.lanes)[..., None]
            self.block(f.body, callee, None if mi is None else mi[..., None])
            if out is not None:
                if callee.retval is None:
                    raise ProgramError(f"@map callback {s.fn} returned no value")
                res = jnp.broadcast_to(callee.retval.astype(f.ret.np), self.lanes + (1,))
                kind, o = out
                self.store((kind, self._element(o, i, n) if kind == "D" else o), res, 1, None,
                           f.ret, mi, fr, what)
            return self.machine.carry()

        self.machine.load(lax.fori_loop(0, n, body, self.machine.carry()))
        self.tick(m, n if nvalid is None else nvalid)

    def _element(self, d: DsdRt, i, n: int) -> DsdRt:
        """The one-element memory DSD of element `i` of `d` (of `n`)."""
        if d.kind == "mem4d":
            off = jnp.asarray(d.offset, jnp.int32) + jnp.asarray(
                self.pattern(d, n).astype(np.int32))[i]
        elif d.kind == "circbuf":
            off = (jnp.asarray(d.offset, jnp.int32) + i) % d.wrap
        else:
            off = jnp.asarray(d.offset, jnp.int32) + jnp.asarray(d.stride, jnp.int32) * i
        return DsdRt("mem1d", d.bases, d.base, off, 1, 1)


def same_dsd(a: DsdRt, b: DsdRt) -> bool:
    """Do a and b address the same elements (equal static fields, or the very same arrays)?"""
    if a is b:
        return True
    if (a.kind, a.bases, a.coeffs, a.extents) != (b.kind, b.bases, b.coeffs, b.extents):
        return False
    for x, y in zip(a.fields().values(), b.fields().values()):
        if x is y:
            continue
        if not (is_static(x) and is_static(y) and x == y):
            return False
    return True


def _contains(e, kind) -> bool:
    """Does IR expression (or statement) `e` hold a node of class `kind`?"""
    if type(e) is kind:
        return True
    if dataclasses.is_dataclass(e):
        return any(_contains(getattr(e, f.name), kind) for f in dataclasses.fields(e))
    if isinstance(e, tuple):
        return any(_contains(x, kind) for x in e)
    return False


def has_call(e) -> bool:
    """Does expression `e` call a function?"""
    return _contains(e, ir.CallExpr)


def reads_pointer(e) -> bool:
    """Does expression (or statement) `e` read memory through a runtime pointer?"""
    return _contains(e, ir.PtrLoad)


def loads(e) -> set:
    """The symbols expression `e` reads."""
    if type(e) is ir.Load:
        return {e.symbol} | set().union(*(loads(i) for i in e.indices))
    if dataclasses.is_dataclass(e):
        return set().union(set(), *(loads(getattr(e, f.name)) for f in dataclasses.fields(e)))
    if isinstance(e, tuple):
        return set().union(set(), *(loads(x) for x in e))
    return set()
