"""Statements of the comptime evaluator: `exec` dispatches on the node's class to
`exec_<Class>`. At comptime a statement runs; in a function body a statement on runtime values
is emitted into the function being built (`env.fn`). Also: locals, assignments and their
targets (`lvalue`), loops (unrolled at comptime or emitted), and the jumps.

`StmtMixin` uses from `self`: `error`, `placed`, the limits `max_steps` and
`max_loop_iterations`, the step count `_steps` and its dispatch cache `_exec_handlers`; the
expressions of `ExprMixin` (`ev`, `ev_as`, `ev_ref`, `array_index`, `ptr_element`,
`sym_dtype`) and the conversions of `CoerceMixin` (`eval_type`, `coerce`, `to_expr`,
`to_index`, `dsd_of`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.dsd_arrays import holds_dsd_array
from wsejax.csl.env import DSD_WHY, STATIC_WHY, Env, FnCtx, _Break, _Continue, _Return
from wsejax.csl.jumps import Guards, Target, has_effects
from wsejax.csl.structs import name_type
from wsejax.csl.values import (
    DSD_KINDS,
    UNDEFINED,
    ArrayT,
    ArrayVal,
    CellVar,
    CNum,
    DsdArray,
    DsdVal,
    DsdVarRef,
    EnumT,
    FixedLocal,
    FnVal,
    LocalDsd,
    LocalVar,
    MemArray,
    ModuleVal,
    ObjArrayVal,
    PickedDsd,
    PickedVar,
    PtrCell,
    PtrT,
    PtrVal,
    PtrVar,
    RangeVal,
    RArray,
    RPtr,
    RVal,
    Slot,
    Special,
    StructRef,
    StructT,
    StructVal,
    SymRef,
    TupleVal,
    describe,
    flat_indices,
    int_range,
    is_fn_pointer_type,
    is_type,
    string_bytes,
)
from wsejax.types import DType

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["StmtMixin"]

_MAX_FOR_TRIPS = 2**31 - 1    # the most trips an ir.For carries (a counter of type i32)


# a local array's initial value of more elements than this is copied by a loop
_UNROLLED_INIT = 64


class StmtMixin:
    """Statements: `exec(stmt, env)` runs or emits one."""

    def exec(self, s, env: Env) -> None:
        self.step(getattr(s, "pos", None))
        if env.fn is not None:
            env.fn.at = s.pos
        handler = self._exec_handlers.get(type(s))
        if handler is None:
            handler = self._exec_handlers[type(s)] = getattr(
                self, "exec_" + type(s).__name__, None) or self.exec_unexpected
        handler(s, env)

    def exec_unexpected(self, s, env: Env) -> None:
        raise self.error(f"unexpected statement {type(s).__name__}", getattr(s, "pos", None))

    def step(self, pos) -> None:
        """Count one step of comptime evaluation; too many is an error, not a hang."""
        self._steps += 1
        if self._steps > self.max_steps:
            raise self.error(f"comptime evaluation ran past {self.max_steps} steps (an endless "
                             "comptime loop?)", pos)

    def exec_block(self, block: ast.Block, env: Env) -> None:
        if block.label is not None:
            self.labelled_block(block, env)
            return
        inner = env.child()
        if block.comptime and env.fn is not None:
            inner = Env(env.module, inner.scopes, None)
        guards = Guards(inner.fn)
        try:
            for s in block.stmts:
                guards.check()
                self.exec(s, inner)
        finally:
            guards.close()

    exec_Block = exec_block

    def exec_ExprStmt(self, s: ast.ExprStmt, env: Env) -> None:
        v = self.ev(s.expr, env)
        if v is not None and env.fn is None and isinstance(v, RVal):
            raise self.error("a runtime value in a comptime context", s.pos)

    def need_fn(self, env: Env, pos, what: str) -> FnCtx:
        if env.fn is None:
            raise self.error(f"{what} happens at run time: it belongs in a function body, not "
                             "in a comptime context", pos)
        return env.fn

    # -- locals -----------------------------------------------------------------------------

    def exec_VarDecl(self, d: ast.VarDecl, env: Env) -> None:
        if d.attrs:
            self.placed(d, env, lambda: self.declare_local(d, env))
        else:
            self.declare_local(d, env)

    def declare_local(self, d: ast.VarDecl, env: Env) -> None:
        t = self.eval_type(d.type, env) if d.type is not None else None
        v = self.ev_as(d.value, t, env) if d.value is not None else UNDEFINED
        t, v = self.held_local_directions(d, t, v, env)
        what = f"'{d.name}'"
        name_type(d, v)
        if d.comptime or env.fn is None:
            self.comptime_local(d, t, v, env)
        elif self.dsd_or_fn_pointer_local(d, t, v, env):
            return
        elif isinstance(v, RPtr) or (not d.const and (isinstance(t, PtrT)
                                                      or isinstance(v, PtrVal))):
            self.local_pointer(d, t, v, env)
        elif self.is_aggregate_local(d, t, v):
            self.aggregate_local(d, t, v, env)
        elif self.is_handle_local(t, v):
            self.handle_local(d, t, v, env)
        elif d.const and not isinstance(v, RVal):
            env.bind(d.name, self.coerce(v, t, d.pos, what) if t is not None else v)
        elif isinstance(t, ArrayT) or isinstance(v, (ArrayVal, ObjArrayVal)):
            env.bind(d.name, self.local_array(d, t, v, env))
        elif isinstance(v, (PtrVal, FnVal, ModuleVal, StructVal, TupleVal, RangeVal)) or \
                is_type(v):
            if not d.const:
                raise self.error(f"{what}: a runtime var cannot hold {describe(v)}; use const",
                                 d.pos)
            env.bind(d.name, v)
        else:
            self.runtime_local(d, t, v, env)

    def dsd_or_fn_pointer_local(self, d: ast.VarDecl, t, v, env: Env) -> bool:
        """Declare a DSD local (or an array of them) or a function pointer held at run time;
        whether `d` declares one."""
        if isinstance(v, (DsdVal, PickedDsd)) or (isinstance(t, Special) and
                                                  t.name in DSD_KINDS) or \
                (not d.const and holds_dsd_array(t, v)):
            self.local_dsd(d, t, v, env)
            return True
        if self.is_fn_pointer_local(d, t, v, env.fn.addressed):
            self.fn_pointer_local(d, t, v, env)
            return True
        return False

    def comptime_local(self, d: ast.VarDecl, t, v, env: Env) -> None:
        what = f"'{d.name}'"
        if isinstance(v, (RVal, LocalVar)):
            raise self.error(f"{what} is comptime, but its value is only known at run time",
                             d.pos)
        v = self.coerce(v, t, d.pos, what) if t is not None and v is not UNDEFINED else v
        if v is UNDEFINED and isinstance(t, (DType, ArrayT)):
            v = self.coerce(UNDEFINED, t, d.pos, what)
        env.bind(d.name, CellVar(v, t, _runtime_loops(env.fn)) if not d.const else v)

    def local_dsd(self, d: ast.VarDecl, t, v, env: Env) -> None:
        """A DSD local, or an array of them (`var ds: [2]mem1d_dsd`)."""
        env.fn.unrecursive.append((d.pos, f"DSD local '{d.name}'", DSD_WHY))
        if holds_dsd_array(t, v):
            self.dsd_array_local(d, t, v, env)
            return
        if isinstance(v, PickedDsd):
            env.bind(d.name, v if d.const else self.picked_local(d.name, v, env, v.parts))
            return
        if not isinstance(v, DsdVal):
            raise self.error(f"'{d.name}': expected a DSD", d.pos)
        if d.const and isinstance(v.expr, ir.DsdLit):
            env.bind(d.name, v)
            return
        name = env.module.pe.fresh(d.name + ".")
        env.fn.emit(ir.LocalAssign(name, v.expr))
        env.bind(d.name, LocalDsd(name, v.kind, v.dtype))

    def runtime_local(self, d: ast.VarDecl, t, v, env: Env) -> None:
        """A scalar local of a function: an IR local, or static memory where its address is
        taken (a recursive function may hold neither)."""
        what = f"'{d.name}'"
        if t is None:
            if not isinstance(v, (RVal, CNum)):
                raise self.error(f"{what} needs a type: `var {d.name}: T = ...`", d.pos)
            t = v.dtype
        if not isinstance(t, DType):
            self.comptime_only_local(d, t)
            raise self.error(f"{what}: runtime locals of type {t} are not supported", d.pos)
        self.checked_fp16(t, d.pos, what)
        init = self.to_expr(self.coerce(v if v is not UNDEFINED else 0, t, d.pos, what), t,
                            d.pos)
        if d.name in env.fn.addressed:
            env.fn.unrecursive.append((d.pos, f"local '{d.name}', whose address is taken,",
                                       STATIC_WHY))
            ref = self.static_local(env, d.name, t, ())
            env.fn.emit(ir.Assign(ref.name, (), init))
            env.bind(d.name, ref)
            return
        name = env.module.pe.fresh(d.name + ".")
        env.fn.emit(ir.LocalAssign(name, init))
        lv = LocalVar(name, t)
        env.bind(d.name, lv.value() if d.const else lv)

    def local_array(self, d: ast.VarDecl, t, v, env: Env) -> SymRef:
        """A local array of a function: static storage (a recursive function may hold none)."""
        if t is None:
            t = ArrayT(v.elem, tuple(v.values.shape))
        if not isinstance(t.elem, DType):
            raise self.error(f"'{d.name}': a runtime var cannot hold an array of {t.elem} "
                             "(its elements exist only at compile time); use const", d.pos)
        self.checked_fp16(t.elem, d.pos, f"'{d.name}'")
        env.fn.unrecursive.append((d.pos, f"array local '{d.name}'", STATIC_WHY))
        ref = self.static_local(env, d.name, t.elem, tuple(t.shape))
        name = ref.name
        if v is not UNDEFINED:
            v = self.coerce(v, t, d.pos, f"'{d.name}'")
            flat = v.values.reshape(-1)
            if flat.size > _UNROLLED_INIT:
                env.fn.emit(self.copy_initial_value(env, ref, flat))
                return ref
            for k, x in enumerate(flat.tolist()):
                idx = np.unravel_index(k, t.shape)
                env.fn.emit(ir.Assign(name, tuple(ir.Const(int(i), DType.i32) for i in idx),
                                      ir.Const(x, t.elem)))
        return ref

    def copy_initial_value(self, env: Env, ref: SymRef, flat) -> ir.Stmt:
        """The loops that copy a large array's value `flat` (comptime), kept in a symbol of
        its own (one per copy: an array may be assigned several values), into the array each
        time the statement runs."""
        pe = env.module.pe
        init = pe.fresh(f"{ref.name}.init")
        pe.symbols[init] = ir.Symbol(init, ref.dtype, ref.shape, tuple(flat.tolist()))
        return self.index_loops(env, ref.name, ref.shape, lambda idx: (
            ir.Assign(ref.name, idx, ir.Load(init, idx, ref.dtype)),))

    @staticmethod
    def index_loops(env: Env, name: str, shape: tuple, body_of) -> ir.Stmt:
        """Nested runtime loops over every index of `shape`, in row-major order, around the
        statements `body_of(idx)` (`idx`: the i32 loop variables, one per dimension)."""
        names = [env.module.pe.fresh(f"{name}.i") for _ in shape]
        stmts = tuple(body_of(tuple(ir.Local(n, DType.i32) for n in names)))
        for n, extent in reversed(list(zip(names, shape))):
            stmts = (ir.For(n, DType.i32, 0, extent, 1, stmts),)
        return stmts[0]

    def static_local(self, env: Env, name: str, dtype: DType, shape: tuple) -> SymRef:
        """Memory for a local of the current function (an array, or a scalar whose address
        is taken): a global symbol named after the function."""
        pe = env.module.pe
        sym = f"{env.module.prefix}{env.fn.name}.{name}"
        k = 1
        while sym in pe.symbols:
            k += 1
            sym = f"{env.module.prefix}{env.fn.name}.{name}#{k}"
        pe.symbols[sym] = ir.Symbol(sym, dtype, shape, None)
        return SymRef(sym, dtype, shape)

    # -- assignments ------------------------------------------------------------------------

    def exec_Assign(self, s: ast.Assign, env: Env) -> None:
        value = s.value
        if s.op != "=":
            value = ast.Binary(s.op[:-1], s.target, s.value, s.pos)
        target = s.target
        if isinstance(target, ast.Ident):
            if target.name == "_" and s.op == "=":
                self.ev(value, env)          # `_ = e;` evaluates e and drops it
            else:
                self.assign_name(s, target, value, env)
            return
        if isinstance(target, (ast.Index, ast.Deref)):
            self.assign_memory(s, target, value, env)
            return
        self.assign_field(s, target, value, env)

    def assign_field(self, s: ast.Assign, target, value, env: Env) -> None:
        """Assignment to `obj.name` or `@field(obj, name)`."""
        obj, name = None, None
        if isinstance(target, ast.Field):
            obj, name = self.ev(target.obj, env), target.name
            if isinstance(obj, StructRef):
                self.assign_place(self.struct_member(obj, name, target.pos), value, env, s.pos,
                                  f"field '{name}'")
                return
            if isinstance(obj, StructVal) and name not in obj.fields and obj.stype is not None:
                raise self.error(f"no field '{name}'", target.pos)
        elif isinstance(target, ast.Builtin) and target.name == "field":
            obj, name = self.ev(target.args[0], env), self.ev(target.args[1], env)
            if isinstance(obj, StructRef) and isinstance(name, str):
                self.assign_place(self.struct_member(obj, name, target.pos), value, env, s.pos,
                                  f"field '{name}'")
                return
        if isinstance(obj, StructVal) and isinstance(name, str):
            obj.fields[name] = self.ev(value, env)
            return
        raise self.error("this cannot be assigned to", s.pos)

    def assign_name(self, s: ast.Assign, target: ast.Ident, value, env: Env) -> None:
        found, b = env.lookup(target.name)
        if not found and env.module.has(target.name):
            b = env.module.get(target.name, target.pos)
            found = True
        if not found:
            raise self.error(f"unknown name '{target.name}'", target.pos)
        if isinstance(b, (Slot, StructRef)):
            self.assign_place(b, value, env, s.pos, f"'{target.name}'")
            return
        if isinstance(b, FixedLocal):
            self.assign_fixed(b, value, env, s.pos)
            return
        if isinstance(b, DsdArray) and s.op == "=":
            self.assign_dsd_array(s, b, value, env)
            return
        if isinstance(b, MemArray) and s.op == "=":
            self.assign_mem_array(b, value, env, s.pos, f"'{target.name}'")
            return
        want = b.dtype if isinstance(b, (LocalVar, SymRef)) else (
            b.type if isinstance(b, PtrCell) else None)
        v = self.ev_as(value, want, env)
        if isinstance(b, CellVar):
            self.assign_cell(s, target.name, b, v, env)
            return
        if isinstance(b, PtrCell):
            self.assign_pointer(b, v, env, s.pos, f"'{target.name}'")
            return
        self.assign_runtime_name(s, target.name, b, v, env)

    def assign_runtime_name(self, s: ast.Assign, name: str, b, v, env: Env) -> None:
        """Emit the assignment of v to the runtime variable `name` bound to b."""
        fn = self.need_fn(env, s.pos, "assignment to a runtime variable")
        what = f"'{name}'"
        if isinstance(b, LocalVar):
            fn.emit(ir.LocalAssign(b.name, self.to_expr(v, b.dtype, s.pos, what)))
        elif isinstance(b, SymRef) and not b.shape:
            fn.emit(ir.Assign(b.name, (), self.to_expr(v, b.dtype, s.pos, what)))
        elif isinstance(b, (DsdVarRef, LocalDsd, PickedVar)):
            for st in self.store_dsd(b, self.dsd_or_picked(v, s.pos), s.pos, what):
                fn.emit(st)
        else:
            raise self.error(f"cannot assign to {describe(b)} {what}", s.pos)

    def assign_cell(self, s: ast.Assign, name: str, b: CellVar, v, env: Env) -> None:
        """Assignment to a comptime var."""
        if isinstance(v, (RVal, LocalVar)):
            raise self.error(f"comptime var '{name}' cannot take a runtime value", s.pos)
        if _runtime_loops(env.fn) > b.loops:
            raise self.error(f"comptime var '{name}' is changed inside a run-time loop (it "
                             "would change once, at compile time); make the loop `inline`, "
                             "or the variable a runtime var", s.pos)
        b.value = self.coerce(v, b.type, s.pos, f"'{name}'") if b.type is not None else v

    def assign_memory(self, s: ast.Assign, target, value, env: Env) -> None:
        """Assignment to an element (`a[i] = x`, `p.* = x`): of a comptime array, or
        emitted."""
        arr = self.dsd_array_target(target, env)
        if arr is not None:
            self.assign_dsd_element(s, arr, target, env)
            return
        place = self.aggregate_target(target, env)
        if place is not None:
            self.assign_place(place, value, env, s.pos, "element")
            return
        row = self.row_target(target, env)
        if row is not None:
            self.assign_row(s, *row, value, env)
            return
        through = self.pointer_target(target, env)
        if through is not None:
            if through[0] == "array" and s.op != "=":
                raise self.error(f"'{s.op}' on a whole array: CSL has no arithmetic on arrays, "
                                 "only on their elements; write a loop or a DSD operation",
                                 s.pos)
            want = through[2] if through[0] == "ptr" else None
            self.store_through(through, self.ev_as(value, want, env), env, s.pos)
            return
        ref = self.lvalue(target, env)
        v = self.ev_as(value, ref[3] if len(ref) == 4 else None, env)
        if isinstance(ref, tuple) and ref[0] == "comptime":
            self.assign_comptime_element(s, ref[1], ref[2], v)
            return
        fn = self.need_fn(env, s.pos, "assignment to memory")
        name, indices, dtype, view = ref
        e = self.to_expr(v, view, s.pos, f"element of '{name}'")
        if view != dtype:
            e = ir.Bitcast(e, dtype)
        fn.emit(ir.Assign(name, indices, e))

    def assign_comptime_element(self, s: ast.Assign, arr, idx: tuple, v) -> None:
        """`a[i] = x` on a comptime array (a `comptime var`)."""
        if isinstance(v, (RVal, LocalVar)):
            raise self.error("an element of a comptime array cannot take a runtime value", s.pos)
        if len(idx) != arr.values.ndim:
            self.assign_comptime_row(s, arr, idx, v)
            return
        x = self.coerce(v, arr.elem, s.pos, "element")
        arr.values[idx] = x.value if isinstance(arr, ArrayVal) else x

    def assign_comptime_row(self, s: ast.Assign, arr, idx: tuple, v) -> None:
        """`a[i] = row` on a comptime array of higher rank: the row's elements, from an array
        of the row's shape."""
        shape = arr.values.shape[len(idx):]
        if not isinstance(v, ArrayVal) or v.values.shape != shape:
            raise self.error(f"assigning a row of an array of shape {list(arr.values.shape)}: "
                             f"expected an array of shape {list(shape)}, got {describe(v)}",
                             s.pos)
        x = self.coerce(v, ArrayT(arr.elem, shape), s.pos, "row")
        arr.values[idx] = x.values

    def lvalue(self, target, env: Env, base=None):
        """`("comptime", ArrayVal, index)` or `(symbol, indices, symbol dtype, view dtype)`.
        A `p.*` here points to one element: callers take whole arrays (`pointer_target`,
        `pointee_array`) first."""
        if isinstance(target, ast.Deref):
            p = self.ev(target.obj, env)
            if not isinstance(p, PtrVal):
                raise self.error(f"cannot dereference {describe(p)}", target.pos)
            idx = np.unravel_index(p.offset, p.shape) if p.shape else ()
            return (p.name, tuple(ir.Const(int(i), DType.i32) for i in idx), self.sym_dtype(p),
                    p.dtype)
        obj = base if base is not None else self.ev_ref(target.obj, env)
        if isinstance(obj, CellVar):
            obj = obj.value
        if isinstance(obj, (ArrayVal, ObjArrayVal)):
            idx = [self.ev(i, env) for i in target.indices]
            return ("comptime", obj, self.array_index(obj, idx, target.pos))
        if isinstance(obj, SymRef):
            indices = tuple(self.to_index(self.ev(i, env), i.pos) for i in target.indices)
            if len(indices) != len(obj.shape):
                raise self.error(f"'{obj.name}' has rank {len(obj.shape)}, indexed with "
                                 f"{len(indices)} indices", target.pos)
            return (obj.name, indices, obj.dtype, obj.dtype)
        if isinstance(obj, (PtrVal, PtrVar)):
            p = obj.ptr if isinstance(obj, PtrVar) else obj
            if len(target.indices) != 1:
                raise self.error("a pointer takes one index", target.pos)
            return self.ptr_element(p, self.ev(target.indices[0], env), target.pos)
        raise self.error(f"cannot index {describe(obj)}", target.pos)

    # -- if ---------------------------------------------------------------------------------

    def exec_If(self, s: ast.If, env: Env) -> None:
        c = self.ev(s.cond, env)
        if isinstance(c, (bool, CNum)):
            c = c.value if isinstance(c, CNum) else c
            if not isinstance(c, bool):
                raise self.error("if condition must be a bool", s.cond.pos)
            if c:
                self.exec_block(s.then, env)
            elif s.orelse is not None:
                self.exec(s.orelse, env)
            return
        if not isinstance(c, RVal) or c.dtype is not DType.bool_:
            raise self.error(f"if condition must be a bool, got {describe(c)}", s.cond.pos)
        fn = self.need_fn(env, s.cond.pos, "a condition known only at run time")
        then = self.emit_block(fn, lambda: self.exec_block(s.then, env))
        orelse = ()
        if s.orelse is not None:
            orelse = self.emit_block(fn, lambda: self.exec(s.orelse, env))
        fn.emit(ir.If(c.expr, then, orelse))

    def emit_block(self, fn: FnCtx, body) -> tuple:
        """Run `body` collecting the statements it emits into a nested runtime block."""
        fn.blocks.append([])
        fn.depth += 1
        try:
            body()
        except (_Break, _Continue, _Return) as sig:
            if sig.depth >= fn.depth:
                raise
            raise self.error("this jump cannot leave the run-time block it is in (a break, "
                             "continue or return out of its function?)",
                             getattr(sig, "pos", None)) from None
        finally:
            fn.depth -= 1
            out = tuple(fn.blocks.pop())
        return out

    # -- loops ------------------------------------------------------------------------------

    def exec_While(self, s: ast.While, env: Env) -> None:
        fn = env.fn
        pre = []
        if fn is not None and not s.inline:
            # what the condition emits (a call's statements) runs before every test of it
            fn.blocks.append([])
            try:
                c = self.ev(s.cond, env)
            finally:
                pre = fn.blocks.pop()
        else:
            c = self.ev(s.cond, env)
        if env.fn is not None and not s.inline and (c is True or c == CNum(True, DType.bool_)) \
                and not self.reads_comptime_var(s.cond, env):
            # `while (true)` in a function body is a run-time loop (it ends by a break, which
            # may be known only at run time); a condition over comptime vars unrolls
            c = RVal(ir.Const(True, DType.bool_), DType.bool_)
        if env.fn is None or s.inline or isinstance(c, (bool, CNum)):
            for st in pre:
                fn.emit(st)
            self.unroll_while(s, env, c)
            return
        if not isinstance(c, RVal) or c.dtype is not DType.bool_:
            raise self.error(f"while condition must be a bool, got {describe(c)}", s.cond.pos)
        cond = c.expr
        with _loop(fn, s.label, "runtime", fn.depth + 1) as t:
            if pre or has_effects(c.expr):
                # `while (true) { pre; if (!c) break; body }`: the condition's calls run at
                # every test
                cond = ir.Const(True, DType.bool_)
                body = self.emit_block(fn, lambda: self.tested_body(s, env, pre, c.expr))
            else:
                body = self.emit_block(fn, lambda: self.exec_block(s.body, env))
            cont = () if s.cont is None else self.emit_block(fn, lambda: self.exec(s.cont, env))
        fn.emit(ir.While(cond, body, cont))
        self.after_loop(fn, t)

    def tested_body(self, s: ast.While, env: Env, pre: list, cond) -> None:
        """The body of a while loop whose condition has effects: the test, then the body."""
        for st in pre:
            env.fn.emit(st)
        env.fn.emit(ir.If(ir.Un("!", cond, DType.bool_), (ir.Break(),)))
        self.exec_block(s.body, env)

    def reads_comptime_var(self, node, env: Env) -> bool:
        """Whether expression `node` names a comptime var (local or global)."""
        for n in ast.walk(node):
            if isinstance(n, ast.Ident):
                found, v = env.lookup(n.name)
                if not found:
                    v = env.module.values.get(n.name)
                if isinstance(v, CellVar):
                    return True
        return False

    def unroll_while(self, s: ast.While, env: Env, c) -> None:
        if isinstance(c, RVal):
            raise self.error("this while condition is known only at run time, but the loop "
                             "runs at comptime (inline, or outside a function body)", s.cond.pos)
        depth = env.fn.depth if env.fn else 0
        count = 0
        guards = Guards(env.fn)
        with _loop(env.fn, s.label, "comptime", depth) as t:
            try:
                while self.comptime_condition(c, s):
                    self.step(s.pos)
                    count += 1
                    if count > self.max_loop_iterations:
                        raise self.error(f"this {'inline' if s.inline else 'comptime'} while "
                                         f"loop ran more than {self.max_loop_iterations} "
                                         "iterations at comptime (a loop without end?)", s.pos)
                    guards.check()
                    if not self.comptime_iteration(s, env, t):
                        break
                    guards.check()
                    if s.cont is not None:
                        self.exec(s.cont, env)
                    c = self.ev(s.cond, env)
            finally:
                guards.close()
        if t is not None:
            self.arrive(env.fn, t, "break")

    def comptime_condition(self, c, s: ast.While) -> bool:
        if isinstance(c, CNum):
            c = c.value
        if not isinstance(c, bool):
            raise self.error("an inline or comptime while needs a comptime-known bool "
                             "condition", s.cond.pos)
        return c

    def comptime_iteration(self, s, env: Env, t: Target | None) -> bool:
        """Run the body of loop `s` once at comptime; False where a break leaves the loop."""
        depth = t.depth if t is not None else 0
        try:
            self.exec_block(s.body, env)
        except _Continue as k:
            if k.label not in (None, s.label) or k.depth != depth:
                raise
        except _Break as b:
            if b.label not in (None, s.label) or b.depth != depth:
                raise
            return False
        if t is not None:
            self.arrive(env.fn, t, "continue")
        return True

    def exec_For(self, s: ast.For, env: Env) -> None:
        it = self.ev(s.iterable, env)
        runtime = env.fn is not None and not s.inline
        if runtime and isinstance(it, RangeVal):
            self.runtime_range(s, it, env)
            return
        if runtime and isinstance(it, (SymRef, MemArray)):
            self.runtime_array_loop(s, it, env)
            return
        if runtime and isinstance(it, RArray):
            self.pointee_loop(s, it, env)
            return
        items = self.comptime_items(s, it)
        depth = env.fn.depth if env.fn else 0
        guards = Guards(env.fn)
        with _loop(env.fn, s.label, "comptime", depth) as t:
            try:
                for k, item in enumerate(items):
                    inner = env.child()
                    inner.bind(s.capture, item)
                    if s.index:
                        inner.bind(s.index, k)
                    guards.check()
                    if not self.comptime_iteration(s, inner, t):
                        break
            finally:
                guards.close()
        if t is not None:
            self.arrive(env.fn, t, "break")

    def comptime_items(self, s: ast.For, it) -> list:
        """The items a for loop unrolled at comptime iterates over."""
        if isinstance(it, RangeVal):
            if len(it) > self.max_loop_iterations:
                raise self.error(f"this {'inline' if s.inline else 'comptime'} for loop would run "
                                 f"{len(it)} iterations at comptime, more than "
                                 f"{self.max_loop_iterations}", s.pos)
            dt = it.dtype
            return [CNum(v, dt) if isinstance(dt, DType) else v
                    for v in range(it.start, it.stop, it.step)]
        if isinstance(it, TupleVal):
            return list(it.items)
        if isinstance(it, ArrayVal):
            return [CNum(v, it.elem) for v in it.values.reshape(-1).tolist()]
        if isinstance(it, ObjArrayVal):
            return it.values.reshape(-1).tolist()
        if isinstance(it, str):
            return [CNum(b, DType.u8) for b in string_bytes(it)]
        raise self.error(f"cannot iterate over {describe(it)}", s.iterable.pos)

    def runtime_range(self, s: ast.For, r: RangeVal, env: Env) -> None:
        fn = env.fn
        dt = r.dtype if isinstance(r.dtype, DType) else DType.i32
        var = env.module.pe.fresh(s.capture + ".")
        inner = env.child()
        inner.bind(s.capture, RVal(ir.Local(var, dt), dt))
        if s.index:
            k = ir.Bin("-", ir.Local(var, dt), ir.Const(r.start, dt), dt)
            if r.step != 1:
                k = ir.Bin("/", k, ir.Const(r.step, dt), dt)
            inner.bind(s.index, RVal(k, dt))
        n = len(r)
        lo, hi = int_range(dt) if dt.is_int else (None, None)
        for v in (r.start, r.start + (n - 1) * r.step) if n else ():
            if lo is not None and not lo <= v <= hi:
                raise self.error(f"a run-time loop over {dt} cannot take the value {v}; give "
                                 "@range a wider type", s.iterable.pos)
        with _loop(fn, s.label, "runtime", fn.depth + 1) as t:
            body = self.emit_block(fn, lambda: self.exec_block(s.body, inner))
        if n <= _MAX_FOR_TRIPS:
            fn.emit(ir.For(var, dt, r.start, r.stop, r.step, body))
            self.after_loop(fn, t)
            return
        # a trip count an ir.For cannot carry (the engine counts trips in i32): the same loop
        # as a while over the loop variable, which needs the value after the last in dt
        after = r.start + n * r.step
        if lo is None or not lo <= after <= hi:
            raise self.error(f"a run-time loop of {n} iterations over {dt}: its counter would "
                             f"overflow (the value after the last, {after}, does not fit in "
                             f"{dt})", s.iterable.pos)
        v = ir.Local(var, dt)
        fn.emit(ir.LocalAssign(var, ir.Const(r.start, dt)))
        fn.emit(ir.While(ir.Bin("<" if r.step > 0 else ">", v, ir.Const(r.stop, dt), DType.bool_),
                         body, (ir.LocalAssign(var, ir.Bin(
                             "+" if r.step > 0 else "-", v, ir.Const(abs(r.step), dt), dt)),)))
        self.after_loop(fn, t)

    def runtime_array_loop(self, s: ast.For, arr, env: Env) -> None:
        """`for (A) |x, k|` over a global array (of numbers, structs or enums): its elements
        in row-major order, `k` counting them (a multi-dimensional array's flat index)."""
        fn = env.fn
        var = env.module.pe.fresh("k.")
        k = ir.Local(var, DType.i32)
        inner = env.child()
        if isinstance(arr, MemArray):
            inner.bind(s.capture, self.mem_array_item(arr, flat_indices(k, arr.shape)))
        else:
            inner.bind(s.capture, RVal(ir.Load(arr.name, flat_indices(k, arr.shape), arr.dtype),
                                       arr.dtype))
        if s.index:
            inner.bind(s.index, RVal(k, DType.i32))
        with _loop(fn, s.label, "runtime", fn.depth + 1) as t:
            body = self.emit_block(fn, lambda: self.exec_block(s.body, inner))
        fn.emit(ir.For(var, DType.i32, 0, int(np.prod(arr.shape)), 1, body))
        self.after_loop(fn, t)

    # -- jumps ------------------------------------------------------------------------------

    def exec_Return(self, s: ast.Return, env: Env) -> None:
        v = self.ev_as(s.value, _result_type(env), env) if s.value is not None else None
        fn = env.fn
        inline = env.inline_depth
        if fn is None:
            raise _Return(v, 0, s.pos)
        if inline is not None:
            t = self.jump_target(fn, "return", None, s.pos)
            if t is None:
                raise _Return(v, inline, s.pos)
            self.jump(env, t, "return", v, s.pos)
            return
        if fn.ret is None:
            if v is not None:
                raise self.error(f"{fn.name} returns void", s.pos)
            fn.emit(ir.Return(None))
            return
        if v is None:
            raise self.error(f"{fn.name} must return a value", s.pos)
        if isinstance(fn.ret, (StructT, EnumT)):
            self.aggregate_return(fn, v, s.pos)
            return
        fn.emit(ir.Return(self.returned(fn, v, s.pos)))

    def returned(self, fn: FnCtx, v, pos) -> ir.Expr:
        """The IR value of `return v;` in runtime function `fn` (not a struct or enum)."""
        if fn.ret == "dsd":
            return self.returned_dsd(fn, v, pos)
        if is_fn_pointer_type(fn.ret_ptr):
            return self.fn_pointer_number(v, fn.ret_ptr, pos, "return value")
        if fn.ret_ptr is not None:
            return self.runtime_pointer(v, fn.ret_ptr, pos, "return value").expr
        return self.to_expr(v, fn.ret, pos, "return value")

    def exec_Break(self, s: ast.Break, env: Env) -> None:
        fn = env.fn
        value = self.ev(s.value, env) if s.value is not None else None
        t = self.jump_target(fn, "break", s.label, s.pos) if fn is not None else None
        if t is None:
            raise _Break(s.label, value, fn.depth if fn else 0, s.pos)
        self.jump(env, t, "break", value, s.pos)

    def exec_Continue(self, s: ast.Continue, env: Env) -> None:
        fn = env.fn
        t = self.jump_target(fn, "continue", s.label, s.pos) if fn is not None else None
        if t is None:
            raise _Continue(s.label, fn.depth if fn else 0, s.pos)
        self.jump(env, t, "continue", None, s.pos)


@contextlib.contextmanager
def _loop(fn: FnCtx | None, label, kind: str, depth: int) -> Iterator[Target | None]:
    """A loop open in function `fn` (None outside a function), for break and continue."""
    if fn is None:
        yield None
        return
    t = Target(kind, label, depth)
    fn.loops.append(t)
    try:
        yield t
    finally:
        fn.loops.remove(t)


def _result_type(env: Env):
    """The type a `return` in `env` gives its value: the function's declared return type
    (None in an inline expansion)."""
    if env.fn is None or env.inline_depth is not None:
        return None
    return env.fn.ret_ptr or env.fn.ret


def _runtime_loops(fn: FnCtx | None) -> int:
    """How many run-time loops are open in the function being emitted."""
    return 0 if fn is None else sum(t.kind == "runtime" for t in fn.loops)
