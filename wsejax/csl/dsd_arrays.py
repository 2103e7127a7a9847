"""DSDs chosen at run time (spec 3.1, 7): arrays of DSDs held in PE memory, and a runtime index
into an array of DSDs.

A `var ds: [N]mem1d_dsd = ...` is a `DsdArray`: each element a DSD variable of its own (a
global DSD variable at the top of a PE program, a DSD local in a function), which holds the
element's runtime fields (base address, offset, stride, length) as a data structure register
does (`builtins/dsrs.py`). A comptime index names one element (read, or assigned); a runtime
index is first read from a u16 table of the element numbers (so a bad index faults the PE as a
numeric array's would), then the chosen element is copied into a DSD local (a read), or the
value assigned where the index names it (a write). A comptime array of DSDs (`const`) read at
a runtime index is picked the same way. No IR node is new.

The elements of one array share their kind and element type. Where they differ in what the
emulator fixes when it compiles the program (`_FIXED_FIELDS`: a fabric DSD's color and queue,
a mem4d_dsd's shape, a circbuf_dsd's extent and ring: its fixed part), each element is a
`PickedVar` over the distinct fixed parts of the initial elements, and an element read at a
runtime index is a `PickedDsd` (`csl.dsd_picks`); a value assigned to an element must have
one of those parts. Where they share it, a DSD picked at run time is a plain DSD local, which
may be loaded into a register (`@load_to_dsr`, `@load_to_dsr_xdsr` for a circbuf_dsd):
`picked_literal` gives the register's rules the literal its candidates share.

`DsdArrayMixin` uses from `self`: `error`, `need_fn`, `dsd_of`, `ev`, `lvalue`,
`const_symbol`, `pe_dsd_init`, `array_index`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.dsd_picks import fixed_what
from wsejax.csl.values import (
    UNDEFINED,
    ArrayT,
    ArrayVal,
    DsdArray,
    DsdVal,
    DsdVarRef,
    LocalDsd,
    ObjArrayVal,
    PickedDsd,
    PickedVar,
    Special,
    describe,
    is_comptime,
    object_array,
)
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.csl.env import Env

__all__ = ["DsdArrayMixin", "holds_dsd_array", "is_dsd_array_type"]


def is_dsd_array_type(t) -> bool:
    """Whether type `t` is an array of DSDs (`[N]mem1d_dsd`)."""
    return isinstance(t, ArrayT) and isinstance(t.elem, Special) and t.elem.name in _KINDS


_KINDS = ("mem1d_dsd", "mem4d_dsd", "fabin_dsd", "fabout_dsd", "circbuf_dsd")


class DsdArrayMixin:
    """Arrays of DSDs in memory, and DSDs picked by a runtime index."""

    # -- declarations ---------------------------------------------------------------------------

    def dsd_array_global(self, mod, d: ast.VarDecl, t, v) -> DsdArray:
        """`var ds: [N]K = ...` at the top of a PE program: one global DSD variable per
        element, initialised with the element's (comptime-known) DSD."""
        items, shape, kind, dtype, parts = self._dsd_array_init(d, t, v)
        name = mod.prefix + d.name
        elems, tags = [], []
        for k, x in enumerate(items):
            if not isinstance(x.expr, ir.DsdLit):
                raise self.error(f"'var {d.name}': element {k} needs a comptime-known "
                                 "@get_dsd", d.pos)
            if len(parts) < 2:
                mod.pe.dsd_vars[f"{name}.{k}"] = x.expr
                elems.append(DsdVarRef(f"{name}.{k}", kind, dtype))
                continue
            g = parts.index(self._fixed_part(x.expr))
            arms = []
            for h, lit in enumerate(self._part_literals(items, parts)):
                mod.pe.dsd_vars[f"{name}.{k}.{h}"] = x.expr if h == g else lit
                arms.append(DsdVarRef(f"{name}.{k}.{h}", kind, dtype))
            tags.append(g)
            elems.append(PickedVar(f"{name}.tag", True, tuple(arms), kind, dtype, parts, k))
        if tags:
            mod.pe.symbols[f"{name}.tag"] = ir.Symbol(f"{name}.tag", DType.u16, (len(tags),),
                                                      tuple(tags))
        return DsdArray(d.name, object_array(elems, shape), kind, dtype, parts)

    def _part_literals(self, items: list, parts: tuple) -> list:
        """A DSD literal of each of fixed parts `parts`, from DSDs `items`."""
        lits = {}
        for x in items:
            lits.setdefault(parts.index(self._fixed_part(x.expr)), ir.DsdLit(
                self._literal(x.expr)))
        return [lits[g] for g in range(len(parts))]

    def dsd_array_local(self, d: ast.VarDecl, t, v, env: Env) -> None:
        """`var ds: [N]K = ...` in a function body: one DSD local per element."""
        items, shape, kind, dtype, parts = self._dsd_array_init(d, t, v)
        pe = env.module.pe
        lits = self._part_literals(items, parts) if len(parts) > 1 else None
        elems = []
        for k, x in enumerate(items):
            if lits is not None:
                elems.append(self.picked_local(f"{d.name}.{k}", x, env, parts, lits))
                continue
            local = pe.fresh(f"{d.name}.{k}.")
            env.fn.emit(ir.LocalAssign(local, x.expr))
            self._remember_literal(pe, local, x.expr)
            elems.append(LocalDsd(local, kind, dtype))
        env.bind(d.name, DsdArray(d.name, object_array(elems, shape), kind, dtype, parts))

    def _dsd_array_init(self, d: ast.VarDecl, t, v):
        """The elements of the initial value of DSD array `d` (flat), its shape, kind,
        element type and distinct fixed parts."""
        if isinstance(v, DsdArray):
            v = ObjArrayVal(Special(v.kind), np.vectorize(
                lambda x: x.value(), otypes=[object])(v.elems))
        if t is not None and v is not None:
            v = self.coerce(v, t, d.pos, f"'{d.name}'")
        if not isinstance(v, ObjArrayVal) or any(
                not isinstance(x, (DsdVal, DsdVarRef)) for x in v.values.reshape(-1)):
            got = "" if v is None or v is UNDEFINED else f", got {describe(v)}"
            raise self.error(f"'var {d.name}': an array of DSDs needs an initial value, each "
                             f"element a DSD (made by @get_dsd){got}", d.pos)
        items = [self.dsd_of(x, d.pos) for x in v.values.reshape(-1).tolist()]
        kind, dtype, parts = self.dsd_choice(items, v.elem, d.pos,
                                             f"'var {d.name}' holds an array of {v.elem}")
        return items, tuple(v.values.shape), kind, dtype, parts

    # -- what the elements share ----------------------------------------------------------------

    def dsd_choice(self, items: list, elem, pos, lead: str):
        """The kind and element type that DSDs `items` (one of which is chosen at run time)
        share, a located error where they differ; and their distinct fixed parts (in the
        order of the items)."""
        kinds = {d.kind for d in items if isinstance(d, DsdVal)}
        if len(kinds) != 1 or not all(isinstance(d, DsdVal) for d in items):
            raise self.error(f"{lead}: its elements are not DSDs of one kind", pos)
        kind = kinds.pop()
        dtypes = {d.dtype for d in items} - {None}
        if len(dtypes) > 1:
            raise self.error(f"{lead}, but its elements are DSDs of different element types "
                             f"({', '.join(sorted(str(t) for t in dtypes))})", pos)
        fixed = [self._fixed_part(d.expr) for d in items]
        parts = tuple(dict.fromkeys(f for f in fixed if f is not None))
        if len(parts) > 1 and None in fixed:
            raise self.error(f"{lead}, but its elements differ in their {fixed_what(kind)}, "
                             "which wsejax fixes when it compiles the program, and element "
                             f"{fixed.index(None)} is a DSD whose own is not known here (a "
                             "DSD parameter?)", pos)
        return kind, (dtypes.pop() if dtypes else None), parts

    def _fixed_part(self, expr):
        """The compile-time part of DSD expression `expr` (of the literal it was made from,
        through its setters), or None where it is not known here."""
        lit = self._literal(expr)
        fields = _FIXED_FIELDS.get(type(lit))
        if fields is None:
            return None
        return (type(lit).__name__, *(getattr(lit, f) for f in fields))

    def _literal(self, expr):
        """The DSD literal under DSD expression `expr`'s setters (of a DSD variable, its
        initial value; of a picked DSD local, its candidates'), or None."""
        while not isinstance(expr, ir.DsdLit):
            if isinstance(expr, ir.DsdVar):
                return self.pe_dsd_init(expr.name)
            if isinstance(expr, ir.DsdLocal):
                return self._picked().get((id(self._pe_stack[-1]), expr.name))
            expr = getattr(expr, "dsd", None)
            if expr is None:
                return None
        return expr.dsd

    def _picked(self) -> dict:
        return self.__dict__.setdefault("_picked_literals", {})

    def _remember_literal(self, pe, local: str, expr) -> None:
        lit = self._literal(expr)
        if lit is not None:
            self._picked()[(id(pe), local)] = lit

    def picked_literal(self, pe, expr):
        """The literal that DSD local `expr` (a DSD picked at run time, or an element of a
        local DSD array) was made from, or None."""
        if not isinstance(expr, ir.DsdLocal):
            return None
        return self._picked().get((id(pe), expr.name))

    def held_dsds(self, items: list, env: Env) -> list:
        """The elements of an array literal of DSDs: one known only at run time is copied
        to a DSD local of its own (the array keeps the value it had when it was made)."""
        out = []
        for x in items:
            if isinstance(x, DsdVal) and not isinstance(x.expr, ir.DsdLit) and \
                    env.fn is not None:
                local = env.module.pe.fresh("dsd.")
                env.fn.emit(ir.LocalAssign(local, x.expr))
                self._remember_literal(env.module.pe, local, x.expr)
                x = LocalDsd(local, x.kind, x.dtype).value()
            out.append(x)
        return out

    # -- reads ----------------------------------------------------------------------------------

    def dsd_element_at(self, arr, idx: list, pos) -> tuple:
        """The element of DSD array `arr` that the comptime indices `idx` name (one per
        dimension)."""
        k = self.array_index(ArrayVal(DType.u16, np.zeros(arr.shape, np.uint16)), idx, pos)
        if len(k) != len(arr.shape):
            raise self.error(f"'{arr.name}' has rank {len(arr.shape)}, indexed with "
                             f"{len(k)} indices", pos)
        return k

    def index_dsd_array(self, arr: DsdArray, e: ast.Index, env: Env):
        """`ds[i]` of a DSD array: the element (comptime index), or a DSD local holding the
        element the runtime index names."""
        idx = [self.ev(i, env) for i in e.indices]
        if all(is_comptime(i) for i in idx):
            return self.read(arr.elems[self.dsd_element_at(arr, idx, e.pos)], env, e.pos)
        if len(arr.parts) > 1:
            return self.index_picked_array(arr, e, env)
        exprs = [x.value().expr for x in arr.elems.reshape(-1).tolist()]
        return self.pick_dsd(exprs, arr.shape, ("dsd array", arr.name), e, env, arr.kind,
                             arr.dtype)

    def index_const_dsds(self, arr: ObjArrayVal, e: ast.Index, env: Env) -> DsdVal:
        """`ds[i]` of a comptime array of DSDs at a runtime index: a DSD local that takes the
        element the index names."""
        self.need_fn(env, e.pos, "indexing a comptime array with a runtime index")
        items = arr.values.reshape(-1).tolist()
        kind, dtype, parts = self.dsd_choice(items, arr.elem, e.pos, f"an array of {arr.elem} "
                                             "is indexed with a runtime index")
        if len(parts) > 1:
            # each element an arm: the literals need no copy, and the u16 that picks one
            # lives on where the body is cut at a wait (a DSD local does not)
            pick = self.element_number(tuple(arr.values.shape), ("element numbers", id(arr)),
                                       e, env)
            return PickedDsd(pick, tuple(items), kind, dtype,
                             tuple(self._fixed_part(d.expr) for d in items))
        return self.pick_dsd([d.expr for d in items], tuple(arr.values.shape),
                             ("element numbers", id(arr)), e, env, kind, dtype)

    def pick_dsd(self, exprs: list, shape: tuple, key, e: ast.Index, env: Env, kind: str,
                 dtype) -> DsdVal:
        """A DSD local that takes the one of DSD expressions `exprs` (an array of `shape`)
        that the runtime index of `e` names."""
        fn = self.need_fn(env, e.pos, "indexing an array of DSDs with a runtime index")
        pe = env.module.pe
        pick = self.element_number(shape, key, e, env)
        local = pe.fresh("dsd.")
        fn.emit(ir.LocalAssign(local, exprs[0]))
        for k, x in enumerate(exprs[1:], 1):
            fn.emit(ir.If(_is(pick, k), (ir.LocalAssign(local, x),), ()))
        self._remember_literal(pe, local, exprs[0])
        return LocalDsd(local, kind, dtype).value()

    def element_number(self, shape: tuple, key, e: ast.Index, env: Env) -> ir.Local:
        """The row-major number of the element of an array of `shape` that the runtime
        indices of `e` name, read from a u16 table (a bad index faults the PE), in a local."""
        pe = env.module.pe
        if key not in pe.const_arrays:
            n = int(np.prod(shape, dtype=np.int64))
            table = ArrayVal(DType.u16, np.arange(n, dtype=np.uint16).reshape(shape))
            pe.const_arrays[key] = (self.const_symbol(table, env, e.pos), None)
        sym = pe.const_arrays[key][0]
        name, indices, _, _ = self.lvalue(ast.Index(ast.Ident("%const"), e.indices, e.pos),
                                          env, sym)
        pick = pe.fresh("pick.")
        env.fn.emit(ir.LocalAssign(pick, ir.Load(name, indices, DType.u16)))
        return ir.Local(pick, DType.u16)

    def dsd_array_target(self, target, env: Env) -> DsdArray | None:
        """The DSD array that assignment target `target` (`ds[i]`) indexes, or None."""
        if not (isinstance(target, ast.Index) and isinstance(target.obj, ast.Ident)):
            return None
        found, b = env.lookup(target.obj.name)
        if not found and env.module.has(target.obj.name):
            b = env.module.get(target.obj.name, target.obj.pos)
        return b if isinstance(b, DsdArray) else None

    # -- writes ---------------------------------------------------------------------------------

    def assign_dsd_element(self, s: ast.Assign, arr: DsdArray, target: ast.Index, env: Env):
        """`ds[i] = d`: the element the index names takes DSD `d`."""
        if s.op != "=":
            raise self.error(f"'{s.op}' on a DSD: a DSD takes only '=' (move it with "
                             "@increment_dsd_offset)", s.pos)
        fn = self.need_fn(env, s.pos, "assignment to an element of an array of DSDs")
        idx = [self.ev(i, env) for i in target.indices]
        v = self.dsd_element_value(arr, self.ev(s.value, env), s.value.pos)
        elems = arr.elems.reshape(-1).tolist()
        what = f"an element of '{arr.name}'"
        if all(is_comptime(i) for i in idx):
            for st in self.store_dsd(arr.elems[self.dsd_element_at(arr, idx, target.pos)], v,
                                     s.value.pos, what):
                fn.emit(st)
            return
        held = self.held_dsd(v, env)
        pick = self.element_number(arr.shape, ("dsd array", arr.name), target, env)
        for k, x in enumerate(elems):
            fn.emit(ir.If(_is(pick, k), tuple(self.store_dsd(x, held, s.value.pos, what)), ()))

    def assign_dsd_array(self, s: ast.Assign, arr: DsdArray, value, env: Env) -> None:
        """`ds = .{...}` / `ds = other`: every element takes its counterpart."""
        fn = self.need_fn(env, s.pos, "assignment to an array of DSDs")
        v = self.ev(value, env)
        if isinstance(v, DsdArray):
            v = ObjArrayVal(Special(v.kind), np.vectorize(
                lambda x: x.value(), otypes=[object])(v.elems))
        v = self.coerce(v, ArrayT(Special(arr.kind), arr.shape), s.pos, f"'{arr.name}'")
        news = [self.dsd_element_value(arr, x, s.pos) for x in v.values.reshape(-1).tolist()]
        # every value is read before any element changes (`ds = .{ ds[1], ds[0] }`)
        held = [self.held_dsd(x, env) for x in news]
        for x, v in zip(arr.elems.reshape(-1).tolist(), held):
            for st in self.store_dsd(x, v, s.pos, f"an element of '{arr.name}'"):
                fn.emit(st)

    def held_dsd(self, v, env: Env):
        """DSD value `v` copied to a local of its own (a `PickedDsd`'s tag and arms too)."""
        if isinstance(v, PickedDsd):
            return self.picked_local("dsd", v, env, v.parts).value()
        tmp = env.module.pe.fresh("dsd.")
        env.fn.emit(ir.LocalAssign(tmp, v.expr))
        self._remember_literal(env.module.pe, tmp, v.expr)
        return LocalDsd(tmp, v.kind, v.dtype).value()

    def dsd_element_value(self, arr: DsdArray, v, pos):
        """Value `v` as an element of DSD array `arr`: a DSD (a DsdVal or `PickedDsd`) of its
        kind and element type (and, where its elements share one, its fixed part)."""
        if not isinstance(v, (DsdVal, DsdVarRef, PickedDsd, PickedVar)):
            raise self.error(f"an element of '{arr.name}': expected a {arr.kind}, got "
                             f"{describe(v)}", pos)
        v = self.dsd_or_picked(v, pos)
        if v.kind != arr.kind:
            raise self.error(f"an element of '{arr.name}': expected a {arr.kind}, got a "
                             f"{v.kind}", pos)
        if arr.dtype is not None and v.dtype is not None and v.dtype != arr.dtype:
            raise self.error(f"an element of '{arr.name}': its elements are DSDs of "
                             f"{arr.dtype}, got one of {v.dtype}", pos)
        if isinstance(v, PickedDsd) or len(arr.parts) != 1:
            return v
        fixed = self._fixed_part(v.expr)
        if fixed is not None and fixed != arr.parts[0]:
            raise self.error(f"an element of '{arr.name}': this {arr.kind} differs from its "
                             f"elements in their {fixed_what(arr.kind)}, which wsejax fixes "
                             "when it compiles the program", pos)
        return v


def _is(pick: ir.Local, k: int) -> ir.Expr:
    return ir.Bin("==", pick, ir.Const(k, DType.u16), DType.bool_)


# what each DSD kind fixes at compile time, in the emulator's model: a DSD chosen at run time
# keeps it from whichever element it takes
_FIXED_FIELDS = {
    ir.Mem1d: ("wavelet_index_offset",),
    ir.Mem4d: ("coeffs", "extents", "wavelet_index_offset"),
    ir.FabIn: ("color", "queue", "simd"),
    ir.FabOut: ("color", "queue", "wavelet_index_offset", "control", "zero", "simd"),
    ir.CircBuf: ("length", "wraparound"),
}


def holds_dsd_array(t, v) -> bool:
    """Whether a `var` of declared type `t` (or None) and initial value `v` is an array of
    DSDs."""
    if t is not None:
        return is_dsd_array_type(t)
    return isinstance(v, DsdArray) or (isinstance(v, ObjArrayVal) and isinstance(
        v.elem, Special) and v.elem.name in _KINDS)
