"""DSDs chosen at run time among DSDs that differ in what the emulator fixes at compile time.

The engine fixes some parts of a DSD when it compiles the program (`dsd_arrays._FIXED_FIELDS`:
a fabric DSD's color and queue, a mem4d_dsd's shape, a circbuf_dsd's ring, ...). A DSD picked
at run time among DSDs that differ there is a `PickedDsd`: a u16 tag, the number of the part
it has, beside one DSD of each part (the arm the tag names holds its runtime fields). A DSD
variable that may hold any of several parts is a `PickedVar` (its tag and its arms held in
locals, or in globals for an element of a global array).

Each use runs as an if chain on the tag (`each_arm`), as a runtime `switch` does, each arm the
ordinary use of one arm: an operation through it (so an asynchronous one starts one op, on the
site of its arm), a register load, a call. A setter (`@increment_dsd_offset`, ...) gives a
`PickedDsd` again, set in every arm (`map_arms`); an assignment stores the tag and the arm
it names (`store_dsd`). A function whose returns give DSDs of several fixed parts (a
`PickedDsd`, or DSDs of different parts) stores the DSD in its DSD variable of that part
and returns the part's number (`dsd_returns`); its call gives a `PickedDsd` of copies of
them (`picked_call`). No IR node is new.

`DsdPickMixin` uses from `self`: `error`, `need_fn`, `emit_block`, `_fixed_part`, `_literal`,
`_remember_literal`, `ret_prefix`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from wsejax import ir
from wsejax.csl.rewrite import expand
from wsejax.csl.values import DsdVal, DsdVarRef, LocalDsd, PickedDsd, PickedVar, RVal
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.csl.env import Env

__all__ = ["DsdPickMixin", "dsd_store", "fixed_what", "if_chain", "unloaded"]


class DsdPickMixin:
    """DSDs picked at run time among different fixed parts, and their uses."""

    def each_arm(self, vals: list, env: Env, use, pos):
        """`use(vals)` with each `PickedDsd` of `vals` replaced by one of its arms, once for
        every arm, each in the branch of an if chain on the tag that takes it. What `use`
        gives: the same from every arm (None, True), or a runtime value of one type (then
        held in a local each arm assigns)."""
        k = next((i for i, v in enumerate(vals) if isinstance(v, PickedDsd)), None)
        if k is None:
            return use(vals)
        fn = self.need_fn(env, pos, "a DSD chosen at run time")
        p = vals[k]
        results, bodies = [], []
        for arm in p.arms:
            def run(arm=arm):
                results.append(self.each_arm(vals[:k] + [arm] + vals[k + 1:], env, use, pos))
            bodies.append(self.emit_block(fn, run))
        out = results[0]
        if all(isinstance(r, RVal) and r.dtype == out.dtype for r in results):
            held = env.module.pe.fresh("picked.")
            bodies = [b + (ir.LocalAssign(held, r.expr),) for b, r in zip(bodies, results)]
            out = RVal(ir.Local(held, out.dtype), out.dtype)
        elif any(r != out for r in results):
            raise self.error(f"this use of a {p.kind} chosen at run time among DSDs that "
                             f"differ in their {fixed_what(p.kind)} gives a value of another "
                             "kind for each of them, which wsejax does not merge (a number "
                             "it does)", pos)
        fn.emit(if_chain(p.tag, bodies)[0])
        return out

    def map_arms(self, d, f):
        """`f(d)` of a DSD value; of a `PickedDsd`, the same pick with `f` of every arm."""
        if not isinstance(d, PickedDsd):
            return f(d)
        arms = tuple(f(a) for a in d.arms)
        return PickedDsd(d.tag, arms, d.kind, arms[0].dtype, d.parts)

    def dsd_or_picked(self, v, pos):
        """DSD value `v` (a DsdVal, or a `PickedDsd` as it is)."""
        if isinstance(v, PickedDsd):
            return v
        if isinstance(v, PickedVar):
            return v.value()
        return self.dsd_of(v, pos)

    # -- picking --------------------------------------------------------------------------------

    def index_picked_array(self, arr, e, env: Env) -> PickedDsd:
        """`ds[i]` at a runtime index of DSD array `arr`, whose elements are `PickedVar`s.
        Of a local array, the chosen element is copied to DSD locals. Of a global one, arm
        (k, g) is element k's DSD variable of part g, read where the pick is used (so a
        use after the element is assigned sees the new value); only the tag is taken now,
        a u16 that lives on where a body is cut at a wait (a DSD local does not)."""
        self.need_fn(env, e.pos, "indexing an array of DSDs with a runtime index")
        pick = self.element_number(arr.shape, ("dsd array", arr.name), e, env)
        elems = arr.elems.reshape(-1).tolist()
        if not elems[0].held:
            cands = [self.candidate(x, arr.parts, e.pos) for x in elems]
            return self.pick_parts(cands, pick, env, arr.kind, arr.dtype, arr.parts)
        u16 = DType.u16
        tag = env.module.pe.fresh("tag.")
        env.fn.emit(ir.LocalAssign(tag, ir.Bin("+", ir.Bin(
            "*", pick, ir.Const(len(arr.parts), u16), u16), ir.Load(elems[0].tag, (pick,), u16),
            u16)))
        return PickedDsd(ir.Local(tag, u16), tuple(a.value() for x in elems for a in x.arms),
                         arr.kind, arr.dtype, arr.parts * len(elems))

    def pick_parts(self, cands: list, pick: ir.Local, env: Env, kind: str, dtype,
                   parts: tuple) -> PickedDsd:
        """The `PickedDsd` that takes candidate k where `pick` is k. Each candidate is a pair:
        its tag (a u16 expression) and its DSD expression of each part it may hold (a dict:
        part number -> DSD expression)."""
        pe, fn = env.module.pe, env.fn
        tag = pe.fresh("tag.")
        arms = [pe.fresh("dsd.") for _ in parts]
        fn.emit(ir.LocalAssign(tag, cands[0][0]))
        for g, local in enumerate(arms):
            first = next(c[1][g] for c in cands if g in c[1])
            fn.emit(ir.LocalAssign(local, first))
            self._remember_literal(pe, local, first)
        for k, (t, exprs) in enumerate(cands[1:], 1):
            body = (ir.LocalAssign(tag, t),) + tuple(
                ir.LocalAssign(arms[g], x) for g, x in sorted(exprs.items()))
            fn.emit(ir.If(_is(pick, k), body, ()))
        return PickedDsd(ir.Local(tag, DType.u16),
                         tuple(LocalDsd(a, kind, dtype).value() for a in arms), kind, dtype,
                         parts)

    def candidate(self, x, parts: tuple, pos) -> tuple:
        """Element `x` of an array of DSDs (a DsdVal, a DSD variable or a `PickedVar`) as a
        candidate of `pick_parts`."""
        if isinstance(x, PickedVar):
            return x.tag_expr(), {g: a.value().expr for g, a in enumerate(x.arms)}
        d = self.dsd_of(x, pos) if not isinstance(x, DsdVal) else x
        g = parts.index(self._fixed_part(d.expr))
        return ir.Const(g, DType.u16), {g: d.expr}

    # -- variables that hold a PickedDsd ----------------------------------------------------------

    def picked_local(self, name: str, v, env: Env, parts: tuple, lits=None) -> PickedVar:
        """A DSD local (tag and arms, locals named after `name`) that may hold DSDs of
        `parts`, holding DSD value `v` (a DsdVal of one of them, or a `PickedDsd`); `lits`
        gives a DSD literal of each part (by default, from `v`)."""
        pe = env.module.pe
        kind, dtype = v.kind, v.dtype
        parts = tuple(dict.fromkeys(parts))
        tag = pe.fresh(f"{name}.tag.")
        arms = []
        for g, part in enumerate(parts):
            local = pe.fresh(f"{name}.{g}.")
            lit = lits[g] if lits is not None else ir.DsdLit(_literal_of(part, v, self))
            env.fn.emit(ir.LocalAssign(local, lit))
            self._remember_literal(pe, local, lit)
            arms.append(LocalDsd(local, kind, dtype))
        env.fn.emit(ir.LocalAssign(tag, ir.Const(0, DType.u16)))
        var = PickedVar(tag, False, tuple(arms), kind, dtype, parts)
        for s in self.store_dsd(var, v, None, name):
            env.fn.emit(s)
        return var

    def store_dsd(self, elem, v, pos, what: str) -> list:
        """The statements that store DSD value `v` into DSD variable `elem` (a DSD variable or
        local, or a `PickedVar`: its tag and the arm the tag names)."""
        if not isinstance(elem, PickedVar):
            if isinstance(v, PickedDsd):
                raise self.error(f"{what} holds one {fixed_what(v.kind)}, but this "
                                 f"{v.kind} is chosen at run time among several", pos)
            return [dsd_store(elem, v.expr)]
        if isinstance(v, DsdVal):
            g = self._part_in(elem, self._fixed_part(v.expr), v.kind, pos, what)
            return [_tag_store(elem, g), dsd_store(elem.arms[g], v.expr)]
        bodies = []
        for part, arm in zip(v.parts, v.arms):
            g = self._part_in(elem, part, v.kind, pos, what)
            bodies.append((_tag_store(elem, g), dsd_store(elem.arms[g], arm.expr)))
        return list(if_chain(v.tag, bodies))

    # -- functions that return a DSD --------------------------------------------------------------

    def returned_dsd(self, fn, v, pos) -> ir.DsdLocal:
        """The IR value of `return v;` in function `fn`, which returns a DSD: a stand-in
        that `dsd_returns` replaces once every return of the function is known."""
        held = f"%returned.{len(fn.dsd_returns)}"
        fn.dsd_returns[held] = (self.dsd_or_picked(v, pos), pos)
        return ir.DsdLocal(held)

    def dsd_returns(self, pe, name: str, fn, body: tuple, what: str) -> tuple:
        """Body `body` of function `name` (`what` in messages, `fn` its context) with each
        return's stand-in replaced, and its IR return type. Where its returns give DSDs of
        one fixed part, each returns its DSD ("dsd"); where of several, each stores its DSD
        in the function's DSD variable of its part and returns the number of the part (u16),
        of which `picked_call` makes a `PickedDsd`."""
        rets = fn.dsd_returns
        parts = list(dict.fromkeys(self._fixed_part(a.expr) for d, _ in rets.values()
                                   for a in _arms(d)))
        if len([p for p in parts if p is not None]) < 2:
            return expand(body, lambda s: (ir.Return(rets[s.value.name][0].expr),)
                          if _stand_in(s, rets) else None), "dsd"
        first = next(iter(rets.values()))[0]
        for d, pos in rets.values():
            if None in (self._fixed_part(a.expr) for a in _arms(d)):
                raise self.error(f"{what} returns {first.kind}s that differ "
                                 f"in their {fixed_what(first.kind)}, and this one's is not "
                                 "known here (a DSD parameter?); return DSDs made by @get_dsd "
                                 "or held in DSD variables", pos)
        held = [f"{self.ret_prefix(name)}.dsd.{g}" for g in range(len(parts))]
        for d, _ in rets.values():
            for a in _arms(d):
                g = parts.index(self._fixed_part(a.expr))
                pe.dsd_vars.setdefault(held[g], ir.DsdLit(unloaded(self._literal(a.expr))))
        dtype = next((d.dtype for d, _ in rets.values() if d.dtype is not None), None)
        self._picked_results()[(id(pe), name)] = (tuple(held), tuple(parts), first.kind,
                                                  dtype)

        def ret(s):
            if not _stand_in(s, rets):
                return None
            d = rets[s.value.name][0]
            bodies = []
            for a in _arms(d):
                g = parts.index(self._fixed_part(a.expr))
                bodies.append((ir.DsdAssign(held[g], a.expr), ir.Return(ir.Const(g, DType.u16))))
            return if_chain(d.tag, bodies) if isinstance(d, PickedDsd) else bodies[0]

        return expand(body, ret), DType.u16

    def dsd_result(self, name: str, args: tuple, env: Env, kind: str):
        """The value of a call of function `name` (IR arguments `args`), which returns a DSD
        of kind `kind`: a DSD local, or where its returns give several fixed parts, a
        `PickedDsd` (`picked_call`)."""
        pe = env.module.pe
        if self.picked_result(pe, name) is not None:
            return self.picked_call(name, args, env)
        tmp = pe.fresh("ret")
        env.fn.emit(ir.LocalAssign(tmp, ir.CallExpr(name, args, "dsd")))
        return LocalDsd(tmp, kind, None).value()

    def picked_result(self, pe, name: str):
        """Of function `name` whose returns give DSDs of several fixed parts: the DSD
        variables that hold them, the parts, their kind and element type; else None."""
        return self._picked_results().get((id(pe), name))

    def picked_call(self, name: str, args: tuple, env: Env) -> PickedDsd:
        """The value of a call of function `name` (IR arguments `args`) whose returns give
        DSDs of several fixed parts: the part it returns, beside a copy of its DSD of each
        part (the next call overwrites them)."""
        pe, fn = env.module.pe, env.fn
        held, parts, kind, dtype = self.picked_result(pe, name)
        tag = pe.fresh("tag.")
        fn.emit(ir.LocalAssign(tag, ir.CallExpr(name, args, DType.u16)))
        arms = []
        for var in held:
            local = pe.fresh("dsd.")
            fn.emit(ir.LocalAssign(local, ir.DsdVar(var)))
            self._remember_literal(pe, local, ir.DsdVar(var))
            arms.append(LocalDsd(local, kind, dtype).value())
        return PickedDsd(ir.Local(tag, DType.u16), tuple(arms), kind, dtype, parts)

    def _picked_results(self) -> dict:
        return self.__dict__.setdefault("_picked_result_vars", {})

    def _part_in(self, elem: PickedVar, part, kind: str, pos, what: str) -> int:
        if part not in elem.parts:
            raise self.error(f"{what}: this {kind} differs from each DSD it was declared with "
                             f"in {fixed_what(kind)}, which wsejax fixes when it compiles the "
                             "program (it holds those of its initial values)", pos)
        return elem.parts.index(part)


def _arms(d) -> tuple:
    """The DSD values a DSD value `d` (a DsdVal or a `PickedDsd`) may be."""
    return d.arms if isinstance(d, PickedDsd) else (d,)


def _stand_in(s, rets: dict) -> bool:
    """Whether statement `s` is a return of a stand-in of `rets` (`returned_dsd`)."""
    return isinstance(s, ir.Return) and isinstance(s.value, ir.DsdLocal) and \
        s.value.name in rets


def unloaded(lit):
    """DSD literal `lit` as the initial value of a DSD variable that some body assigns
    before its use (a register before a run-time load, a function's result): its kind,
    base and fixed part, with length 0 (an operation on it does nothing); a circbuf keeps
    its (comptime) extent."""
    if isinstance(lit, ir.CircBuf):
        return lit
    zero = ir.Const(0, DType.u16)
    if isinstance(lit, ir.Mem1d):
        return dataclasses.replace(lit, offset=ir.Const(0, DType.i16),
                                   stride=ir.Const(1, DType.i8), length=zero)
    if isinstance(lit, ir.Mem4d):
        return dataclasses.replace(lit, offset=ir.Const(0, DType.i16))
    return dataclasses.replace(lit, length=zero)


def _literal_of(part, v, c):
    """A DSD literal of fixed part `part`, from the arms of DSD value `v`."""
    arms = v.arms if isinstance(v, PickedDsd) else (v,)
    for a in arms:
        if c._fixed_part(a.expr) == part:
            return c._literal(a.expr)
    raise AssertionError(part)


def if_chain(tag: ir.Expr, bodies: list) -> tuple:
    """`bodies[g]` where u16 `tag` is g, as an if chain (the last body its else)."""
    out = tuple(bodies[-1])
    for g in range(len(bodies) - 2, -1, -1):
        out = (ir.If(ir.Bin("==", tag, ir.Const(g, DType.u16), DType.bool_), tuple(bodies[g]),
                     out),)
    return out


def _is(pick: ir.Local, k: int) -> ir.Expr:
    return ir.Bin("==", pick, ir.Const(k, DType.u16), DType.bool_)


def _tag_store(var: PickedVar, g: int) -> ir.Stmt:
    if var.held:
        return ir.Assign(var.tag, (ir.Const(var.at, DType.i32),), ir.Const(g, DType.u16))
    return ir.LocalAssign(var.tag, ir.Const(g, DType.u16))


def dsd_store(elem, expr) -> ir.Stmt:
    """The assignment of DSD expression `expr` to DSD variable or local `elem`."""
    if isinstance(elem, DsdVarRef):
        return ir.DsdAssign(elem.name, expr)
    return ir.LocalAssign(elem.name, expr)


_WHAT = {
    "mem1d_dsd": ".wavelet_index_offset",
    "mem4d_dsd": "dimensions (extents and strides) or .wavelet_index_offset",
    "fabin_dsd": "color, input queue or .simd_mode",
    "fabout_dsd": "color, output queue, .wavelet_index_offset, .control, .zero or .simd_mode",
    "circbuf_dsd": "extent or .wraparound",
}


def fixed_what(kind: str) -> str:
    return _WHAT[kind]
