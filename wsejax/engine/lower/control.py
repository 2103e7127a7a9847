"""The statement family of `Lowerer`: one `stmt_<Class>` per `ir` statement class, calls,
and loops.

Uses from the `Lowerer` it is mixed into: `handler`, `expr`, `dsd`, `lane`, `mask_ext`,
`fault`, `tick`, `sym`, `lanes`, `machine`, `pe`, `slot`, `dsd_key`, `dsd_bases`,
`loop_limit`, `printer`, `cur_mask`, `_call_stack`; from the other families `flat_index`,
`merge_dsd`, `materialize`, `vectorize_fmacs`, `ut_ctl`, and `recursive` / `cycle_call` (a
call into a cycle of recursive functions, `lower.recursion`). The statements of the DSD
operations (`stmt_DsdOp`, `stmt_Map`) and of the queues (`stmt_QueueBind`, `stmt_QueueCtl`)
are in their own families.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ir
from wsejax.diagnostics import (
    assertion_failed,
    index_out_of_range,
    loop_ran_past,
    map_writes_memory,
)
from wsejax.engine import wide
from wsejax.engine.access import scatter
from wsejax.engine.machine import (
    DsdRt,
    Frame,
    Loop,
    LoopCarry,
    Nest,
    mask_and,
    mask_and_not,
    mask_or,
)
from wsejax.engine.state import task_bit
from wsejax.errors import ProgramError
from wsejax.types import DType

__all__ = ["ControlLowering", "UNROLL_LIMIT"]

_RETVAL = "%retval"     # the key of the returned value's template among a loop's templates

UNROLL_LIMIT = 4     # a static loop of at most this many iterations unrolls
# statements a @map callback may not run: they write memory or state
_WRITES = (ir.Assign, ir.DsdOp, ir.DsdAssign, ir.Map, ir.UnblockCmdStream, ir.Print,
           ir.TaskCtl, ir.QueueBind, ir.QueueCtl, ir.PtrStore)
# the writes a @map callback run one element at a time may make
_ELEMENT_WRITES = (ir.Assign, ir.PtrStore)
# statements that cost no cycle of their own
_UNTIMED = (ir.If, ir.For, ir.While, ir.Call)


class ControlLowering:
    """Mixin of `Lowerer`: statements, calls and loops."""

    def block(self, stmts, fr: Frame, mask) -> None:
        for s in stmts:
            m = mask_and_not(mask, fr.off())
            self.stmt(s, fr, m)

    def stmt(self, s, fr: Frame, m) -> None:
        """Run statement `s` in frame `fr` on the lanes in `m`; it costs one cycle, except a
        structure or a call, whose statements cost theirs."""
        t = type(s)
        self.cur_mask = m if not fr.ext else None
        if fr.ext and t in _WRITES:
            if not (fr.writes and t in _ELEMENT_WRITES):
                raise ProgramError(map_writes_memory(fr.fn))
            self.element_write(s, fr, m)
            return
        self.handler("stmt_", s, "statement")(s, fr, m)
        if t not in _UNTIMED and not fr.ext:
            self.tick(m, 1)

    def element_write(self, s, fr: Frame, m) -> None:
        """A write of a `@map` callback run one element at a time (its element axis has
        size 1): made as in a plain function on the `[H, W]` lanes, at no cycle's cost."""
        def lanes(x):
            if getattr(x, "ndim", 0) == len(self.lanes) + 1 and x.shape[-1] == 1:
                return x[..., 0]
            return x

        flat = Frame(locals={k: lanes(v) for k, v in fr.locals.items()}, fn=fr.fn,
                     nest=fr.nest)
        m = None if m is None else lanes(jnp.broadcast_to(m, self.lanes + (1,)))
        self.cur_mask = m
        self.handler("stmt_", s, "statement")(s, flat, m)

    def stmt_Break(self, s: ir.Break, fr: Frame, m) -> None:
        loop = fr.loops[-1]
        loop.broken = mask_or(loop.broken, m) if m is not None else jnp.ones(self.lanes, bool)

    def stmt_Continue(self, s: ir.Continue, fr: Frame, m) -> None:
        loop = fr.loops[-1]
        loop.cont = mask_or(loop.cont, m) if m is not None else jnp.ones(self.lanes, bool)

    def stmt_Call(self, s: ir.Call, fr: Frame, m) -> None:
        self._call(s.fn, [self.value(a, fr, m) for a in s.args], fr, m)

    def stmt_ExprStmt(self, s: ir.ExprStmt, fr: Frame, m) -> None:
        self.expr(s.value, fr)

    def stmt_Assert(self, s: ir.Assert, fr: Frame, m) -> None:
        """A runtime `@assert`: the lanes in `m` where the condition is false fault."""
        bad = ~jnp.asarray(self.expr(s.cond, fr), bool)
        if m is not None:
            # in a @map callback both carry the element axis: mask before `fault` reduces it
            m = m.reshape(m.shape + (1,) * (bad.ndim - m.ndim)) if bad.ndim > m.ndim else m
            bad = bad & m
        self.fault(bad, None, assertion_failed(s.where))

    def stmt_UnblockCmdStream(self, s: ir.UnblockCmdStream, fr: Frame, m) -> None:
        cmd = self.machine.cmd
        self.machine.cmd = jnp.zeros_like(cmd) if m is None else cmd & ~m

    def stmt_TaskCtl(self, s: ir.TaskCtl, fr: Frame, m) -> None:
        """`@activate` / `@block` / `@unblock` of a task ID (or a microthread) on the lanes in
        `m`."""
        if type(s.id) is ir.Const:
            ident = int(s.id.value)
        else:
            ident = jnp.broadcast_to(self.expr(s.id, fr).astype(jnp.int32), self.lanes)
        if s.target == "ut":
            self.ut_ctl(s, ident, m)
            return
        bit = task_bit(ident, m)
        if s.op == "activate":
            self.machine.active = self.machine.active | bit
        elif s.op == "block":
            self.machine.blocked = self.machine.blocked | bit
        else:
            self.machine.blocked = self.machine.blocked & ~bit

    def stmt_Print(self, s: ir.Print, fr: Frame, m) -> None:
        """Send the values of a print to the host, for the PEs in `m`, in order."""
        if self.printer is None:
            return
        exprs = [p[0] for p in s.parts if not isinstance(p, str)]
        vals = [jnp.broadcast_to(self.expr(e, fr), self.lanes) for e in exprs]
        mask = jnp.ones(self.lanes, bool) if m is None else m
        if self.widen is not None:
            # the host numbers the PEs of the whole grid
            mask, vals = self.widen(mask), [self.widen(v) for v in vals]
        printer, parts, coords = self.printer, s.parts, s.coords
        jax.debug.callback(lambda mk, *vs: printer(parts, coords, mk, vs), mask, *vals,
                           ordered=True)

    def value(self, v, fr: Frame, m=None):
        """A value for a local, an argument or a return: an array, a DsdRt, or the result of
        a call run on the lanes in `m`."""
        if isinstance(v, ir.DsdExpr):
            return self.dsd(v, fr)
        if type(v) is ir.CallExpr:
            return self._call(v.fn, [self.value(a, fr, m) for a in v.args], fr, m)
        return self.expr(v, fr)

    def stmt_Assign(self, s: ir.Assign, fr: Frame, m) -> None:
        sym = self.sym(s.symbol)
        v = wide.astype(self.expr(s.value, fr), sym.dtype)
        slot = self.slot[s.symbol]
        arr = self.machine.mem[slot]
        if not s.indices:
            v = jnp.broadcast_to(v, self.lanes)
            self.machine.mem[slot] = v if m is None else jnp.where(m, v, arr)
            return
        idx, bad = self.flat_index(sym, s.indices, fr)
        flat = arr.reshape(self.lanes + (-1,))
        v = jnp.broadcast_to(v, self.lanes)
        if isinstance(idx, np.ndarray):
            if idx.ndim:
                raise ProgramError(f"a vector index writing '{s.symbol}'")
            bad = None if bad is None else True
            idx = int(idx)
        if isinstance(idx, int):
            if bad is not None:
                self.fault(True, m, index_out_of_range("writing", s.symbol))
                return
            new = v if m is None else jnp.where(m, v, flat[:, :, idx])
            flat = flat.at[:, :, idx].set(new)
        else:
            self.fault(bad, m, index_out_of_range("writing", s.symbol))
            ok = ~bad if m is None else (m & ~bad)
            flat = scatter(flat, jnp.where(ok, jnp.broadcast_to(idx, self.lanes), sym.size), v)
        self.machine.mem[slot] = flat.reshape(arr.shape)

    def stmt_LocalAssign(self, s: ir.LocalAssign, fr: Frame, m) -> None:
        v = self.value(s.value, fr, m)
        old = fr.locals.get(s.name)
        if isinstance(v, DsdRt):
            fr.locals[s.name] = self.merge_dsd(v, old if isinstance(old, DsdRt) else None, m)
            return
        if fr.ext:
            shape = jnp.broadcast_shapes(jnp.shape(v), self.lanes + (1,) * fr.ext)
            v = jnp.broadcast_to(v, shape)
        else:
            v = jnp.broadcast_to(v, self.lanes)
        if old is None or m is None:
            fr.locals[s.name] = v
        else:
            fr.locals[s.name] = jnp.where(self.mask_ext(m, fr), v, old)

    def stmt_DsdAssign(self, s: ir.DsdAssign, fr: Frame, m) -> None:
        if s.name not in self.dsd_key:
            raise ProgramError(f"'{s.name}' is not a DSD variable")
        self.store_dsd_var(s.name, self.dsd(s.value, fr), m, fr)

    def store_dsd_var(self, name: str, new: DsdRt, m, fr: Frame) -> None:
        """`name = new` on the lanes in `m`; only the variable's runtime fields are stored."""
        bases, runtime = self.dsd_bases[name]
        if not runtime:
            return
        old = self.dsd(ir.DsdVar(name), fr)
        merged = self.materialize(self.merge_dsd(new, old, m, bases=bases))
        self.machine.dsd[self.dsd_key[name]] = {k: v for k, v in merged.fields().items()
                                          if k in runtime}

    def stmt_If(self, s: ir.If, fr: Frame, m) -> None:
        if type(s.cond) is ir.Const:
            self.block(s.then if s.cond.value else s.orelse, fr, m)
            return
        c = self.expr(s.cond, fr)
        if not fr.ext:
            c = jnp.broadcast_to(c, self.lanes)
            self.tick(m, 1)
        m = self.mask_ext(m, fr)
        if s.then:
            self.block(s.then, fr, mask_and(m, c))
        if s.orelse:
            self.block(s.orelse, fr, mask_and(m, ~c))

    def stmt_Return(self, s: ir.Return, fr: Frame, m) -> None:
        if s.value is not None:
            v = self.value(s.value, fr, m)
            if isinstance(v, DsdRt):
                fr.retval = self.merge_dsd(v, fr.retval, m)
            else:
                v = jnp.broadcast_to(v, jnp.broadcast_shapes(jnp.shape(v), self.lanes + (1,) *
                                                             fr.ext if fr.ext else self.lanes))
                if fr.retval is None or m is None:
                    fr.retval = v
                else:
                    fr.retval = jnp.where(self.mask_ext(m, fr), v, fr.retval)
        full = jnp.ones(self.lanes + (1,) * fr.ext, bool) if fr.ext else jnp.ones(self.lanes, bool)
        fr.returned = mask_or(fr.returned, m) if m is not None else full

    def _call(self, name: str, args: list, fr: Frame, m):
        if self.recursive(name):
            return self.cycle_call(name, args, fr, m)
        f = self.pe.function(name)
        self._call_stack.append(name)
        try:
            callee = Frame(ext=fr.ext, fn=name, nest=fr.nest, writes=fr.writes)
            for (pname, ptype), a in zip(f.params, args):
                if isinstance(a, DsdRt):
                    callee.locals[pname] = a
                else:
                    a = jnp.asarray(a)
                    if isinstance(ptype, DType):
                        a = wide.astype(a, ptype)
                    callee.locals[pname] = a if fr.ext else jnp.broadcast_to(a, self.lanes)
            self.block(f.body, callee, m)
            return callee.retval
        finally:
            self._call_stack.pop()

    def _assigned_locals(self, body, fr: Frame) -> list[str]:
        names = []
        for s in ir.walk_stmts(body):
            if type(s) is ir.LocalAssign and s.name in fr.locals and s.name not in names:
                names.append(s.name)
        return names

    def _has(self, body, kinds) -> bool:
        return any(isinstance(s, kinds) for s in ir.walk_stmts(body))

    def _pack(self, fr: Frame, names, loop: Loop) -> LoopCarry:
        locs = {}
        for n in names:
            v = fr.locals[n]
            locs[n] = self.materialize(v).fields() if isinstance(v, DsdRt) else v
        ret = self.materialize(fr.retval).fields() if isinstance(fr.retval, DsdRt) else \
            fr.retval
        return LoopCarry(self.machine.carry(), locs, fr.returned, ret, loop.broken,
                         fr.nest.used)

    def _unpack(self, carry: LoopCarry, fr: Frame, names, loop: Loop, templates) -> None:
        self.machine.load(carry.machine)
        fr.returned, fr.retval, loop.broken = carry.returned, carry.retval, carry.broken
        if isinstance(templates.get(_RETVAL), DsdRt):
            fr.retval = templates[_RETVAL].replace(**carry.retval)
        fr.nest.used = carry.used
        for n in names:
            t = templates[n]
            fr.locals[n] = t.replace(**carry.locals[n]) if isinstance(t, DsdRt) else \
                carry.locals[n]

    def _prepare_carry(self, body, fr: Frame, loop: Loop, shape=None):
        """Give every value the loop may change a fixed array form before the loop: that of
        the lanes, or `shape` (the lanes and elements of a @map callback)."""
        shape = shape or self.lanes
        if self._has(body, ir.Return):
            if fr.returned is None:
                fr.returned = jnp.zeros(shape, bool)
            ret = self.pe.function(fr.fn).ret
            if ret == "dsd" or isinstance(fr.retval, DsdRt):
                fr.retval = self._dsd_retval(body, fr)
            elif fr.retval is None and ret is not None:
                fr.retval = jnp.zeros(shape, wide.carrier(ret))
        if fr.ext:
            fr.returned = _spread(fr.returned, shape)
            fr.retval = _spread(fr.retval, shape)
        loop.broken = jnp.zeros(shape, bool)
        names = self._assigned_locals(body, fr)
        templates = {_RETVAL: fr.retval}
        for n in names:
            v = fr.locals[n]
            if isinstance(v, DsdRt):
                v = self.materialize(v)
            elif fr.ext:
                v = _spread(v, shape)
            fr.locals[n] = v
            templates[n] = v
        return names, templates

    def _dsd_retval(self, body, fr: Frame) -> DsdRt:
        """The form of the DSD a loop's `return` may give (and the one returned before it, if
        any): the same kind, over every base symbol the returns name, each field a lane
        array. Only the form matters here, so the returns' DSDs are built in a scratch frame
        from the values at the loop's start, with the locals the body declares standing in
        as placeholders (`_form_frame`)."""
        vals = [fr.retval] if isinstance(fr.retval, DsdRt) else []
        scratch = self._form_frame(body, fr)
        for st in ir.walk_stmts(body):
            if type(st) is ir.Return and isinstance(st.value, ir.DsdExpr):
                vals.append(self.dsd(st.value, scratch))
        bases = tuple(dict.fromkeys(b for d in vals for b in d.bases))
        out = self.merge_dsd(vals[0], None, None, bases=bases)
        for d in vals[1:]:
            self.merge_dsd(d, out, None, bases=bases)   # the same kind and color, or it raises
        return self.materialize(out)

    def _form_frame(self, body, fr: Frame) -> Frame:
        """A copy of `fr` where each local the loop body declares holds a stand-in of its
        form: a DSD built from the stand-ins before it (DSD construction reads no memory and
        changes nothing), any other value zeros of its dtype. Its values are never used, only
        the kinds and base symbols of the DSDs."""
        scratch = dataclasses.replace(fr, locals=dict(fr.locals))
        for st in ir.walk_stmts(body):
            if type(st) is not ir.LocalAssign or st.name in scratch.locals:
                continue
            if isinstance(st.value, ir.DsdExpr):
                scratch.locals[st.name] = self.dsd(st.value, scratch)
            elif isinstance(getattr(st.value, "dtype", None), DType):
                scratch.locals[st.name] = jnp.zeros(self.lanes, st.value.dtype.np)
        return scratch

    def _ext_shape(self, fr: Frame) -> tuple:
        """The lanes and elements of a @map callback's frame: the shape its values take."""
        shapes = [jnp.shape(v) for v in fr.locals.values() if not isinstance(v, DsdRt)]
        return jnp.broadcast_shapes(self.lanes + (1,) * fr.ext, *shapes)

    def _enter_nest(self, fr: Frame, shape=None) -> bool:
        """Start counting the iterations of a loop nest (on each lane, or each element of
        `shape` in a @map callback), unless one is running; returns whether this loop is the
        outermost."""
        if fr.nest is not None:
            return False
        fr.nest = Nest(jnp.zeros(shape or self.lanes, jnp.int32))
        return True

    def _iteration(self, fr: Frame, live, kind: str, outer: bool):
        """The lanes of `live` that may start one more iteration of a loop: those within the
        nest's budget (`loop_limit` iterations in all). The others fault; they run nothing
        more of the nest."""
        over = fr.nest.used >= self.loop_limit
        self.fault(over, live, loop_ran_past(fr.fn, kind, self.loop_limit, outer))
        run = ~over if live is None else live & ~over
        fr.nest.used = fr.nest.used + run.astype(jnp.int32)
        return run

    def stmt_For(self, s: ir.For, fr: Frame, m) -> None:
        n = s.trip_count
        if n == 0:
            return
        if fr.ext:
            loop = Loop()
            fr.loops.append(loop)
            before = set(fr.locals)
            try:
                for k in range(n):
                    fr.locals[s.var] = _loop_value(s, k)
                    loop.cont = None
                    self.block(s.body, fr, mask_and_not(m, loop.broken))
            finally:
                fr.loops.pop()
                self._end_scope(fr, before)
            return
        outer = self._enter_nest(fr)
        loop = Loop()
        fr.loops.append(loop)
        before = set(fr.locals)
        try:
            if n <= self.loop_limit and self.vectorize_fmacs(s, fr, m, outer):
                return
            if n <= UNROLL_LIMIT:
                for k in range(n):
                    fr.locals[s.var] = _loop_value(s, k)
                    loop.cont = None
                    live = mask_and_not(mask_and_not(m, loop.broken), fr.returned)
                    self.block(s.body, fr, self._iteration(fr, live, "for", outer))
                return
            fr.locals[s.var] = _loop_value(s, 0)   # for a returned DSD's form
            names, templates = self._prepare_carry(s.body, fr, loop)
            fr.locals.pop(s.var)
            # past the budget no lane runs: the loop stops there, and its next lane faults
            trips = min(n, self.loop_limit)

            def body(k, carry):
                self._unpack(carry, fr, names, loop, templates)
                fr.locals[s.var] = _loop_value(s, k)
                loop.cont = None
                live = mask_and_not(mask_and_not(m, loop.broken), fr.returned)
                self.block(s.body, fr, self._iteration(fr, live, "for", outer))
                fr.locals.pop(s.var, None)
                return self._pack(fr, names, loop)

            carry = lax.fori_loop(0, trips, body, self._pack(fr, names, loop))
            self._unpack(carry, fr, names, loop, templates)
            if trips < n:
                self._iteration(fr, mask_and_not(mask_and_not(m, loop.broken), fr.returned), "for",
                                outer)
        finally:
            fr.loops.pop()
            self._end_scope(fr, before)
            if outer:
                fr.nest = None

    def stmt_While(self, s: ir.While, fr: Frame, m) -> None:
        # in a @map callback each element runs its own trips: the loop runs over the lanes
        # and elements still in it
        shape = self._ext_shape(fr) if fr.ext else self.lanes
        if fr.ext and m is not None:
            m = jnp.broadcast_to(self.mask_ext(m, fr), shape)
        outer = self._enter_nest(fr, shape)
        loop = Loop()
        fr.loops.append(loop)
        before = set(fr.locals)
        try:
            names, templates = self._prepare_carry(s.body + s.cont, fr, loop, shape)

            def running(carry):
                self._unpack(carry, fr, names, loop, templates)
                live = mask_and_not(m, fr.off())
                c = jnp.broadcast_to(self.expr(s.cond, fr), shape)
                return mask_and(live, c)

            def cond(carry):
                # every lane that runs an iteration spends one of its nest's budget
                return jnp.any(running(carry) & (fr.nest.used < self.loop_limit))

            def body(carry):
                mi = self._iteration(fr, running(carry), "while", outer)
                loop.cont = None
                self.block(s.body, fr, mi)
                loop.cont = None
                self.block(s.cont, fr, mask_and_not(mi, mask_or(fr.returned, loop.broken)))
                return self._pack(fr, names, loop)

            carry = lax.while_loop(cond, body, self._pack(fr, names, loop))
            still = running(carry)
            self._unpack(carry, fr, names, loop, templates)
            self._iteration(fr, still, "while", outer)
        finally:
            fr.loops.pop()
            self._end_scope(fr, before)
            if outer:
                fr.nest = None

    @staticmethod
    def _end_scope(fr: Frame, before: set) -> None:
        """Drop the locals a loop body declared: they are scoped to it, and inside a
        `lax` loop they hold values of that loop's trace."""
        for name in [k for k in fr.locals if k not in before]:
            del fr.locals[name]


def _spread(v, shape):
    """Value `v` (None stays None) broadcast to `shape`."""
    return None if v is None else jnp.broadcast_to(v, shape)


def _loop_value(s: ir.For, k):
    """The value of loop variable `s.var` in iteration k (an int, or traced int32)."""
    t = s.dtype
    if isinstance(k, int):
        return wide.const(s.start + k * s.step) if t.is_wide else \
            np.asarray(s.start + k * s.step, t.np)
    if not t.is_wide:
        return (s.start + k * s.step).astype(t.np)
    step = wide.binary("*", wide.astype(k, t), wide.const(s.step), t)
    return wide.binary("+", wide.const(s.start), step, t)
