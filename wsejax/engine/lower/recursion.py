"""The recursion family of `Lowerer`: a call into a cycle of recursive functions, run as a
state machine per PE (the blocks of `engine.recursion`) inside one `lax.while_loop`.

Each iteration runs every block of the cycle, each under the mask of the PEs whose program
counter is at it, so a PE runs one block an iteration; the loop ends when no PE is left in the
cycle. A PE's state: its program counter and stack pointer, the current locals of each
function of the cycle, a stack of `MAX_RECURSION_DEPTH` frames (the locals of the caller and
the block it resumes at; a lane array per slot and local) and each function's last result. A
call that would hold more than `MAX_RECURSION_DEPTH` activations at once faults its PE, which
leaves the cycle; so does a PE still in it after `loop_limit` iterations.

Uses from the `Lowerer` it is mixed into: `lanes`, `machine`, `pe`, `loop_limit`, `stmt`,
`stmt_LocalAssign`, `value`, `expr`, `tick`, `fault`, `_call_stack`, `_cycles`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from wsejax.diagnostics import recursion_too_deep
from wsejax.engine import wide
from wsejax.engine.cfg import Free
from wsejax.engine.machine import Frame
from wsejax.engine.recursion import Cycle, Resume, build_cycle
from wsejax.errors import ProgramError
from wsejax.ir_calls import MAX_RECURSION_DEPTH, call_cycles
from wsejax.types import DType

__all__ = ["RecursionLowering"]

_DONE = -1      # the program counter of a PE out of the cycle


class RecursionLowering:
    """Mixin of `Lowerer`: calls of recursive functions."""

    def recursive(self, name: str) -> bool:
        """Is `name` a function of a call cycle?"""
        return name in call_cycles(self.pe)

    def cycle_of(self, name: str) -> Cycle:
        members = call_cycles(self.pe)[name]
        if members not in self._cycles:
            self._cycles[members] = build_cycle(self.pe, members)
        return self._cycles[members]

    def cycle_call(self, name: str, args: list, fr: Frame, m):
        """Call `name`, a function of a call cycle, with `args` on the lanes in `m`; its
        result (None for a void function)."""
        if fr.ext:
            raise ProgramError(f"{fr.fn}: a @map callback cannot call recursive function "
                               f"'{name}'")
        cyc = self.cycle_of(name)
        st = self._cycle_state(cyc, name, args, m)

        def cond(st):
            return jnp.any(st["pc"] != _DONE) & (st["n"] < self.loop_limit)

        def body(st):
            self.machine.load(st["machine"])
            st = self._cycle_step(cyc, st)
            st["machine"] = self.machine.carry()
            return st

        st = lax.while_loop(cond, body, st)
        self.machine.load(st["machine"])
        self.fault(st["pc"] != _DONE, None, f"{name}: recursion ran past {self.loop_limit} "
                                            "steps")
        return st["ret"].get(name)

    def _cycle_state(self, cyc: Cycle, name: str, args: list, m) -> dict:
        lanes = self.lanes
        locs = {f: {n: jnp.zeros(lanes, wide.carrier(t)) for n, t in ts.items()}
                for f, ts in cyc.locals.items()}
        for (pname, ptype), a in zip(self.pe.function(name).params, args):
            locs[name][pname] = _lane(a, ptype, lanes)
        live = jnp.ones(lanes, bool) if m is None else jnp.broadcast_to(m, lanes)
        deep = (MAX_RECURSION_DEPTH,) + lanes
        return {
            "pc": jnp.where(live, cyc.entry[name], _DONE).astype(jnp.int32),
            "sp": jnp.zeros(lanes, jnp.int32),
            "locals": locs,
            "stack": {f: {n: jnp.zeros(deep, wide.carrier(t)) for n, t in ts.items()}
                      for f, ts in cyc.locals.items()},
            "back": jnp.zeros(deep, jnp.int32),
            "ret": {f: jnp.zeros(lanes, wide.carrier(t)) for f, t in cyc.rets.items()
                    if t is not None},
            "n": jnp.int32(0),
            "machine": self.machine.carry(),
        }

    def _cycle_step(self, cyc: Cycle, st: dict) -> dict:
        """One iteration: every PE in the cycle runs the block its program counter names."""
        frames = {f: Frame(fn=f, locals=dict(st["locals"][f])) for f in cyc.members}
        new = {**st, "stack": {f: dict(v) for f, v in st["stack"].items()},
               "ret": dict(st["ret"]), "n": st["n"] + 1}
        for b in cyc.blocks:
            mb = st["pc"] == b.gid
            fr = frames[cyc.owner[b.gid]]
            r = cyc.resume.get(b.gid)
            if r is not None:
                self._resume(cyc, r, fr, new, mb)
            self._call_stack.append(fr.fn)
            try:
                for s in b.stmts:
                    if type(s) is Free:
                        self.stmt_LocalAssign(s.stmt, fr, mb)
                    else:
                        self.stmt(s, fr, mb)
                self._cycle_term(cyc, b.term, fr, frames, new, mb)
            finally:
                self._call_stack.pop()
        new["locals"] = {f: {n: _lane(frames[f].locals.get(n, st["locals"][f][n]), t,
                                      self.lanes)
                             for n, t in cyc.locals[f].items()}
                         for f in cyc.members}
        return new

    def _resume(self, cyc: Cycle, r: Resume, fr: Frame, new: dict, mb) -> None:
        """A call returns to this block: the caller's locals come back from the stack, and
        its local `r.dest` takes the result."""
        sp = new["sp"]
        for n, stack in new["stack"][r.fn].items():
            fr.locals[n] = jnp.where(mb, _top(stack, sp), fr.locals[n])
        if r.dest is not None:
            v = _lane(new["ret"][r.callee], cyc.rets[r.callee], self.lanes)
            fr.locals[r.dest] = jnp.where(mb, v, fr.locals[r.dest])
        if r.ticks:
            self.tick(mb, r.ticks)

    def _cycle_term(self, cyc: Cycle, term: tuple, fr: Frame, frames: dict, new: dict,
                    mb) -> None:
        kind = term[0]
        pc = new["pc"]
        if term[-1] == "jump":
            self.tick(mb, 1)      # a jump (break, continue, return) costs its cycle
        if kind == "goto":
            new["pc"] = jnp.where(mb, term[1], pc)
        elif kind == "branch":
            _, cond, then, orelse, ticks = term
            c = jnp.broadcast_to(self.expr(cond, fr), self.lanes)
            if ticks:
                self.tick(mb, 1)
            new["pc"] = jnp.where(mb & c, then, jnp.where(mb, orelse, pc))
        elif kind == "call":
            self._push(cyc, term, fr, frames, new, mb)
        else:
            self._return(cyc, term[1], fr, new, mb)

    def _push(self, cyc: Cycle, term: tuple, fr: Frame, frames: dict, new: dict, mb) -> None:
        """A call: push the caller's locals and the block it resumes at, pass the arguments
        and jump to the callee's first block; a PE whose stack is full faults instead."""
        _, callee, args, back = term
        vals = [self.value(a, fr, mb) for a in args]
        sp = new["sp"]
        deep = mb & (sp >= MAX_RECURSION_DEPTH - 1)
        self.fault(deep, None, recursion_too_deep(callee, MAX_RECURSION_DEPTH))
        ok = mb & ~deep
        at = (jnp.arange(MAX_RECURSION_DEPTH)[:, None, None] == sp) & ok
        for n, stack in new["stack"][fr.fn].items():
            new["stack"][fr.fn][n] = jnp.where(at, fr.locals[n], stack)
        new["back"] = jnp.where(at, back, new["back"])
        new["sp"] = jnp.where(ok, sp + 1, sp)
        to = frames[callee]
        for (pname, ptype), v in zip(self.pe.function(callee).params, vals):
            to.locals[pname] = jnp.where(ok, _lane(v, ptype, self.lanes), to.locals[pname])
        new["pc"] = jnp.where(ok, cyc.entry[callee], jnp.where(deep, _DONE, new["pc"]))

    def _return(self, cyc: Cycle, value, fr: Frame, new: dict, mb) -> None:
        """A return: keep the result and pop the block to resume at (none: the PE leaves
        the cycle)."""
        if value is not None:
            v = _lane(self.value(value, fr, mb), cyc.rets[fr.fn], self.lanes)
            new["ret"][fr.fn] = jnp.where(mb, v, new["ret"][fr.fn])
        sp = new["sp"]
        out = sp == 0
        resume = _top(new["back"], jnp.maximum(sp - 1, 0))
        new["pc"] = jnp.where(mb & out, _DONE, jnp.where(mb, resume, new["pc"]))
        new["sp"] = jnp.where(mb & ~out, sp - 1, sp)


def _top(stack, sp):
    """The entry of `stack` (`[D, H, W]`) at each lane's index `sp` (`[H, W]`)."""
    return jnp.take_along_axis(stack, sp[None], axis=0)[0]


def _lane(v, t, lanes):
    """Value `v` as a lane array of the carrier of type `t`."""
    v = jnp.asarray(v)
    if isinstance(t, DType):
        v = wide.astype(v, t)
    return jnp.broadcast_to(v, lanes)
