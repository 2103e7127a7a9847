"""Handles chosen at run time: colors, task IDs, queues and microthread IDs held as u16
numbers (in PE memory, or read from a comptime array at a runtime index).

A handle whose number is known only at run time is an `RtHandleVal` (a `UtIdVal` for a
microthread); its number is read once, into a local, where the handle is made, so the handle
keeps it however the array it came from changes. A comptime array of handles read at a
runtime index is placed in PE memory (one u16 symbol per array), as the arrays of structs and
enums are (`structs.py`); an out-of-range index faults the PE as for an array of numbers.

A `var` of a handle type that its function assigns inside an if, a loop or a switch is a u16
local from its declaration on, even where its initial value is known at compile time
(`held_handle_local`); one assigned only at the nesting of its declaration keeps a
comptime-known value while it has one.

A DSD chosen at run time is `dsd_arrays.py`'s.

`HandleMixin` uses from `self`: `error`, `need_fn`, `coerce`, `lvalue`, `const_symbol`, and
from `AggregateMixin` `declare_leaves`, `index_const_structs` and `index_mem_array`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.values import (
    RUNTIME_HANDLE_KINDS,
    ColorVal,
    MemArray,
    ObjArrayVal,
    PeColorVal,
    QueueVal,
    RFnPtr,
    RtHandleVal,
    Slot,
    Special,
    TaskIdVal,
    UtIdVal,
    describe,
    is_fn_pointer_type,
    is_runtime_handle_type,
)
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.csl.env import Env

__all__ = ["HandleMixin"]


class HandleMixin:
    """Handles held at run time, and DSDs chosen at run time."""

    def handle_value(self, expr, t: Special):
        """The runtime handle of type `t` whose u16 number is IR expression `expr`."""
        if is_fn_pointer_type(t):
            return RFnPtr(expr, t)
        kind = RUNTIME_HANDLE_KINDS[t.name]
        return UtIdVal(expr) if kind is None else RtHandleVal(kind, expr)

    def handle_number(self, v, t: Special, pos, what: str) -> ir.Expr:
        """The u16 IR expression of handle `v` stored where a `t` is held."""
        if is_fn_pointer_type(t):
            return self.fn_pointer_number(v, t, pos, what)
        if isinstance(v, RtHandleVal):
            if v.type_name != t.name:
                raise self.error(f"{what}: expected a {t}, got {describe(v)}", pos)
            return v.expr
        if isinstance(v, UtIdVal) and t.name == "ut_id" and v.known is None:
            return v.id
        v = self.coerce(v, t, pos, what)
        if isinstance(v, PeColorVal):
            return v.expr
        return ir.Const(v.known if isinstance(v, UtIdVal) else v.id, DType.u16)

    def held_handle(self, v, env: Env):
        """Runtime handle `v` read from memory, its number copied to a local now (a later
        store to the memory it came from does not change it)."""
        if isinstance(v, RFnPtr):
            return self.held_fn_pointer(v, env)
        expr = v.id if isinstance(v, UtIdVal) else v.expr
        if type(expr) is ir.Const or env.fn is None:
            return v
        name = env.module.pe.fresh("handle.")
        env.fn.emit(ir.LocalAssign(name, expr))
        local = ir.Local(name, DType.u16)
        return UtIdVal(local) if isinstance(v, UtIdVal) else RtHandleVal(v.kind, local)

    def index_handle_array(self, arr: ObjArrayVal, e: ast.Index, env: Env):
        """`hs[i]` of a comptime array of handles at a runtime index. An array whose
        elements are all known at compile time is placed in PE memory once (as the arrays of
        structs are); one holding runtime handles is copied to memory of its own where it
        is indexed."""
        items = arr.values.reshape(-1).tolist()
        if all(_known(h) for h in items):
            return self.index_const_structs(arr, e, env)
        fn = self.need_fn(env, e.pos, "indexing a comptime array with a runtime index")
        pe = env.module.pe
        name = pe.fresh("handles.")
        shape = tuple(arr.values.shape)
        self.declare_leaves(pe, name, arr.elem, shape)
        for k, h in enumerate(items):
            idx = tuple(ir.Const(int(i), DType.i32) for i in np.unravel_index(k, shape))
            fn.emit(ir.Assign(name, idx, self.handle_number(h, arr.elem, e.pos, "element")))
        return self.index_mem_array(MemArray(arr.elem, name, shape), e, env)

    def read_held(self, slot, env: Env):
        """The value of a scalar held at run time (a `Slot`); a handle's number is copied to
        a local as it is read."""
        v = self.read_slot(slot)
        return self.held_handle(v, env) if is_runtime_handle_type(slot.ctype) else v

    def held_handle_local(self, d: ast.VarDecl, t, v, env: Env) -> None:
        """A `var` of a handle type that its function assigns inside an if, a loop or a
        switch: a u16 local from its declaration on, whatever its initial value (a value
        known at compile time could not change in one branch only, or from one iteration to
        the next)."""
        what = f"'{d.name}'"
        if t is None:
            t = _handle_type(v)
            if t is None:
                raise self.error(f"{what}: expected a handle, got {describe(v)}", d.pos)
        v = self.coerce(v, t, d.pos, what)
        slot = Slot("local", env.module.pe.fresh(d.name + "."), (), t)
        self.store(env.fn, slot, v, d.pos, what, init=True)
        env.bind(d.name, slot)


def _known(h) -> bool:
    """Whether handle `h` is known at compile time."""
    return not isinstance(h, RtHandleVal) and not (isinstance(h, UtIdVal) and h.known is None)


def _handle_type(v) -> Special | None:
    """The handle type of handle value `v` (comptime or runtime), else None."""
    if isinstance(v, RtHandleVal):
        return Special(v.type_name)
    if isinstance(v, UtIdVal):
        return Special("ut_id")
    if isinstance(v, ColorVal):
        return Special("color")
    if isinstance(v, TaskIdVal):
        return Special(f"{v.kind}_task_id")
    if isinstance(v, QueueVal):
        return Special(f"{v.kind}_queue")
    return None


_BRANCHES = (ast.If, ast.While, ast.For, ast.SwitchExpr, ast.IfExpr)


def assigned_in_branches(body) -> set:
    """Names `x` assigned (`x = ...`) inside an if, a loop or a switch of an AST subtree:
    a handle `var` of that name is held at run time (`held_handle_local`)."""
    out = set()
    for n in ast.walk(body):
        if isinstance(n, _BRANCHES):
            out |= {a.target.name for a in ast.walk(n)
                    if isinstance(a, ast.Assign) and isinstance(a.target, ast.Ident)}
    return out
