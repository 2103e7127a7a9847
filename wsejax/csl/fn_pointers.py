"""Function pointers held at run time (spec 3.1: `*const fn(A, B) R`; a function value
coerces to one, and `&f` gives the same).

A function pointer known at compile time stays the function itself (`FnVal`): a call through
it is a call of the function. One held at run time (a `var`, an element of an array read at a
runtime index, a struct field, a parameter or a result) is a u16 number (`RFnPtr`), held
where the handles are held (`handles.py`: a u16 symbol, local, struct leaf or array element).
Each function of a PE program that the program makes such a pointer of is numbered by where
it is declared (`values.function_number`), whatever order the bodies are compiled in; 0 names
no function (an `undefined` pointer). `&fp` of a pointer held in memory is a `*T` to that
u16 (`PointerMixin.enum_address`); a local or parameter whose address the function takes is
held in static memory of the function's own for that, as other such locals are.

A call through a runtime pointer of type `*const fn(A) R` is a call of the PE program's
dispatch function of `fn(A) R`: an if chain over the number, one branch per function of that
type the program makes pointers of, each calling that function. The chain is written as a CSL
function (`_dispatch_decl`) and compiled like any other, so its arguments and result take
every form a function's do. A call site knows the functions made pointers so far; once the PE
program's bodies are all compiled, each dispatch function whose set of functions grew is
compiled again (`finish_fn_pointers`) and replaces the one the call sites name. A call
through the number 0 faults the PE.

`@ptrcast` turns a function pointer into a `*anyopaque` holding its number, and that (or a
function pointer of another type) back into a function pointer; once a PE program makes a
pointer of type T so, its dispatch function of T first checks that the number names a
function of T, and faults the PE where it does not (the SDK leaves such a call undefined).
A cast to a data pointer is refused (a number is no address in PE memory), as is `@bitcast`
of a function pointer (the SDK's `@bitcast` takes a numeric value) or to one (wsejax holds
no code addresses).

`FnPointerMixin` uses from `self`: `error`, `ev`, `eval_type`, `need_fn`, `runtime_call`,
`specialize`, `held_handle`, `store`, `static_local`, `ptr_expr`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.env import Env, Module
from wsejax.csl.values import (
    UNDEFINED,
    VOID,
    FnT,
    FnVal,
    PtrT,
    RFnPtr,
    RPtr,
    RVal,
    Slot,
    Special,
    describe,
    function_number,
    is_fn_pointer_type,
    is_runtime_handle_type,
)
from wsejax.errors import CslError
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.frontend.pe import PeBuilder

__all__ = ["FnPointerMixin", "dispatched_type"]

U16 = DType.u16
_HERE = ast.Pos("<function pointers>", 0, 0)
_DISPATCH = "%fnptr("     # the name of a dispatch function opens with this


def fn_pointer_type(ft: FnT) -> PtrT:
    return PtrT("single", True, ft)


def dispatched_type(fv: FnVal) -> str | None:
    """The function pointer type a dispatch function calls through, as written; None for any
    other function."""
    name = fv.decl.name
    return f"*const {name[len(_DISPATCH):-1]}" if name.startswith(_DISPATCH) else None


class _DispatchScope(Module):
    """The scope a dispatch function is compiled in: the types of its parameters and result,
    and the functions it chooses among, under names of its own."""

    def __init__(self, base: Module, bound: dict):
        super().__init__(base.c, ast.File("<function pointers>", ()), {}, "", base.pe,
                         "fnptr")
        self.bound = bound

    def env(self) -> Env:
        return Env(self, [dict(self.bound)], None)


@dataclasses.dataclass
class _Dispatch:
    """The dispatch function of one function type on one PE program: its IR name and the
    numbers of the functions its compiled body chooses among."""

    name: str
    numbers: tuple
    module: Module
    type: FnT
    key: tuple           # its specialization key (`bind_params`'s)
    pos: object          # where a call first made it
    callee: FnVal        # the function value whose calls compile to calls of it
    checked: bool = False    # whether it faults on a number naming no function of its type
    # the function values compiled since, kept so that their ids (in `PeBuilder.specs`'
    # keys) stay theirs
    kept: list = dataclasses.field(default_factory=list)


class FnPointerMixin:
    """Function pointers held at run time: their numbers, calls and comparisons."""

    # -- what a function pointer is ---------------------------------------------------------

    def function_type(self, fv: FnVal, pos) -> FnT:
        """`fn(A, B) R` of a declared function (a generic one has none)."""
        decl = fv.decl
        if isinstance(decl, ast.TaskDecl):
            raise self.error(f"'{decl.name}' is a task; a function pointer names a function",
                             pos)
        if any(p.comptime or (isinstance(p.type, ast.Ident) and p.type.name == "anytype")
               for p in decl.params):
            raise self.error(f"'{decl.name}' has comptime or anytype parameters: it is "
                             "generic, and a function pointer names one function of one type",
                             pos)
        fenv = fv.module.env()
        return FnT(tuple(self.eval_type(p.type, fenv) for p in decl.params),
                   self.eval_type(decl.ret, fenv))

    def check_function_type(self, fv: FnVal, t: PtrT, pos, what: str) -> None:
        """Refuse function `fv` where a pointer of type `t` is expected and its type is
        another."""
        got = self.function_type(fv, pos)
        if got != t.elem:
            raise self.error(f"{what}: expected {t}, got the function '{fv.decl.name}' of "
                             f"type {got}", pos)

    def fn_pointer_number(self, v, t: PtrT, pos, what: str) -> ir.Expr:
        """The u16 IR expression of function pointer `v` stored where a `t` is held."""
        if v is UNDEFINED:
            return ir.Const(0, U16)
        if isinstance(v, RFnPtr):
            if v.type.elem != t.elem:
                raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)
            return v.expr
        if isinstance(v, FnVal):
            self.check_function_type(v, t, pos, what)
            return ir.Const(function_number(v), U16)
        raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)

    def fn_pointer_of(self, v, t, pos, what: str):
        """Function `v` (a FnVal) or runtime pointer as a runtime pointer of type `t` (None:
        its own)."""
        if t is None:
            t = v.type if isinstance(v, RFnPtr) else fn_pointer_type(self.function_type(v, pos))
        return RFnPtr(self.fn_pointer_number(v, t, pos, what), t)

    @staticmethod
    def is_fn_pointer_local(d: ast.VarDecl, t, v, addressed: set) -> bool:
        """Whether a function's declaration holds a function pointer at run time: a `var`
        of a function pointer type or given a function, a `const` given a runtime one, or a
        `const` pointer to a function (`: *const fn ...`, or `= &f`) whose address is
        taken."""
        if isinstance(v, RFnPtr):
            return t is None or is_fn_pointer_type(t)
        if not d.const:
            return is_fn_pointer_type(t) or t is None and isinstance(v, FnVal)
        return d.name in addressed and isinstance(v, FnVal) and (
            is_fn_pointer_type(t) or t is None and isinstance(d.value, ast.Unary)
            and d.value.op == "&")

    def fn_pointer_local(self, d: ast.VarDecl, t, v, env: Env) -> None:
        """A function's local function pointer: a u16 local, or static memory where its
        address is taken (a `const` keeps the runtime pointer it is given)."""
        what = f"'{d.name}'"
        if t is None:
            t = v.type if isinstance(v, RFnPtr) else fn_pointer_type(
                self.function_type(v, d.pos))
        if d.name in env.fn.addressed:
            # `&fp` is a pointer to a u16 in PE memory, as of a global pointer
            slot = Slot("sym", self.static_local(env, d.name, U16, ()).name, (), t)
        elif d.const:
            # the number as it is now: a later store where it was read does not change it
            v = RFnPtr(self.fn_pointer_number(v, t, d.pos, what), t)
            env.bind(d.name, self.held_fn_pointer(v, env))
            return
        else:
            slot = Slot("local", env.module.pe.fresh(d.name + "."), (), t)
        self.store(env.fn, slot, v, d.pos, what, init=True)
        env.bind(d.name, dataclasses.replace(slot, const=d.const))

    def held_fn_pointer(self, v: RFnPtr, env: Env) -> RFnPtr:
        """Runtime pointer `v` read from memory, its number copied to a local now."""
        if type(v.expr) is ir.Const or env.fn is None:
            return v
        name = env.module.pe.fresh("fnptr.")
        env.fn.emit(ir.LocalAssign(name, v.expr))
        return RFnPtr(ir.Local(name, U16), v.type)

    def select_fn_pointers(self, cond, a, b, want, pos):
        """`if (cond) a else b` on a runtime condition where a or b is a function pointer;
        None for other values."""
        if not (is_fn_pointer_type(want) or isinstance(a, (FnVal, RFnPtr))
                or isinstance(b, (FnVal, RFnPtr))):
            return None
        t = want if is_fn_pointer_type(want) else None
        if t is None:
            known = a if isinstance(a, (FnVal, RFnPtr)) else b
            t = self.fn_pointer_of(known, None, pos, "if branch").type
        e = ir.Select(cond, self.fn_pointer_number(a, t, pos, "if branch"),
                      self.fn_pointer_number(b, t, pos, "if branch"), U16)
        return RFnPtr(e, t)

    def compare_fn_pointers(self, op: str, a, b, pos):
        """`a == b` / `a != b` of function pointers (at least one held at run time, or two
        functions); None where neither operand is one."""
        if not (isinstance(a, (FnVal, RFnPtr)) or isinstance(b, (FnVal, RFnPtr))):
            return None
        if op not in ("==", "!="):
            raise self.error(f"operator '{op}' cannot take function pointers (only == and !=)",
                             pos)
        if isinstance(a, FnVal) and isinstance(b, FnVal):
            same = a.decl is b.decl and a.module is b.module
            return same if op == "==" else not same
        known = a if isinstance(a, RFnPtr) else b
        if not isinstance(known, RFnPtr):
            raise self.error(f"cannot compare {describe(a)} with {describe(b)}", pos)
        t = known.type
        ea = self.fn_pointer_number(a, t, pos, f"operand of '{op}'")
        eb = self.fn_pointer_number(b, t, pos, f"operand of '{op}'")
        return RVal(ir.Bin(op, ea, eb, DType.bool_), DType.bool_)

    # -- casts ------------------------------------------------------------------------------

    def refuse_fn_pointer_bitcast(self, t, v, pos) -> None:
        """Refuse `@bitcast` of a function pointer, or to a function pointer type."""
        if isinstance(v, (FnVal, RFnPtr)):
            raise self.error(f"@bitcast({t}, ...) of {describe(v)}: @bitcast takes a numeric "
                             "value (a bool, integer or float), and a function pointer is not "
                             "one (the CSL compiler rejects this too); @ptrcast it to "
                             "*anyopaque to hold it in a pointer of another type", pos)
        if is_fn_pointer_type(t):
            raise self.error(f"@bitcast to {t}: wsejax holds a function pointer as the number "
                             "of the function it names, not as a code address, so no integer "
                             "becomes one; take &f of a function", pos)

    def fn_pointer_ptrcast(self, t: PtrT, p, env: Env, pos):
        """`@ptrcast(t, p)` where `t` or `p` is a function pointer: a `*anyopaque` holding
        the function's number, or a function pointer of type `t` from one or from a function
        pointer of another type; None where neither is a function pointer."""
        if not (is_fn_pointer_type(t) or isinstance(p, (FnVal, RFnPtr))):
            return None
        self.need_fn(env, pos, f"@ptrcast to {t}")
        if isinstance(p, (FnVal, RFnPtr)):
            own = self.fn_pointer_of(p, None, pos, "@ptrcast")
            if is_fn_pointer_type(t):
                if own.type.elem != t.elem:
                    env.module.pe.fn_casts.setdefault(t.elem, pos)
                return p if own.type.elem == t.elem else RFnPtr(own.expr, t)
            if _opaque(t):
                return RPtr(own.expr, t)
            raise self.error(f"@ptrcast of {describe(p)} to {t}: wsejax holds a function "
                             "pointer as the number of its function, not as an address in PE "
                             f"memory, so a {t} made from it would point at no data; @ptrcast "
                             "it to *anyopaque (and back to a function pointer type) instead",
                             pos)
        if isinstance(p, RPtr) and _opaque(p.type):
            env.module.pe.fn_casts.setdefault(t.elem, pos)
            return RFnPtr(p.expr, t)
        raise self.error(f"@ptrcast of {describe(p)} to {t}: it points at data, not at a "
                         "function; a function pointer is made by &f of a function, or by "
                         "@ptrcast of a *anyopaque made from one", pos)

    def checked_dispatch(self, pe: PeBuilder, d: _Dispatch) -> None:
        """Where the PE program makes pointers of d's type by @ptrcast: the dispatch function
        first faults on a number that names no function of that type."""
        d.checked = d.type in pe.fn_casts
        if not d.checked:
            return
        f = pe.functions[d.name]
        k = ir.Local(f.params[0][0], U16)
        named = ir.Const(False, DType.bool_)
        for n in d.numbers:
            test = ir.Bin("==", k, ir.Const(n, U16), DType.bool_)
            named = test if type(named) is ir.Const else ir.Bin("or", named, test, DType.bool_)
        where = f"{pe.fn_casts[d.type]} (a call through a {fn_pointer_type(d.type)} made by " \
                "@ptrcast: its value names no function of that type, and the SDK leaves the " \
                "call undefined)"
        pe.functions[d.name] = dataclasses.replace(f, body=(ir.Assert(named, where), *f.body))

    # -- calls through a runtime pointer ----------------------------------------------------

    def call_fn_pointer(self, p: RFnPtr, e: ast.Call, env: Env):
        """`p(args)`: a call of the dispatch function of p's type, given p's number; a
        number that names no function faults the PE."""
        fn = self.need_fn(env, e.pos, "a call through a function pointer held at run time")
        ft = p.type.elem
        if len(e.args) != len(ft.params):
            raise self.error(f"a call through {p.type} takes {len(ft.params)} argument(s), "
                             f"got {len(e.args)}", e.pos)
        if ft.ret is not VOID and isinstance(ft.ret, FnT):
            raise self.error(f"{p.type}: a function cannot return a function", e.pos)
        args = [self.runtime_argument(self.ev(a, env), t, a.pos,
                                      f"argument {k + 1} of a call through {p.type}")
                for k, (a, t) in enumerate(zip(e.args, ft.params))]
        number = self.held_fn_pointer(p, env).expr
        fn.emit(ir.Assert(ir.Bin("!=", number, ir.Const(0, U16), DType.bool_),
                          f"{e.pos} (a call through an undefined {p.type}: its value names "
                          "no function)"))
        args = [RVal(number, U16), *args]
        return self.runtime_call(self.dispatch_for(env.module, ft, args, e.pos), args, env,
                                 e.pos)

    def runtime_argument(self, v, t, pos, what: str):
        """Argument `v` of a parameter of type `t` of a call through a pointer, as a value
        known at run time (a pointer or handle known at compile time would specialize the
        dispatch function by its value)."""
        if is_fn_pointer_type(t):
            return self.fn_pointer_of(v, t, pos, what)
        if is_runtime_handle_type(t):
            return self.handle_value(self.handle_number(v, t, pos, what), t)
        if isinstance(t, PtrT):
            return self.runtime_pointer(v, t, pos, what)
        if not isinstance(t, DType):
            return v
        if isinstance(v, RVal):
            return RVal(self.to_expr(v, t, pos, what), t)
        return self.coerce(v, t, pos, what)

    def dispatch_for(self, mod: Module, ft: FnT, args: list, pos) -> FnVal:
        """The dispatch function of type `ft` on `mod`'s PE program, over the functions of
        that type made pointers so far (compiled, or compiled again, where that set grew),
        as the callee of a call with `args`."""
        pe = mod.pe
        if not pe.fn_dispatch:
            pe.deferred.append(lambda: self.finish_fn_pointers(pe))
        have = pe.fn_dispatch.get(ft)
        numbers = self.candidates(pe, ft, pos)
        try:
            if have is None:
                callee, name, key = self.compile_dispatch(mod, ft, numbers, pos)
                have = pe.fn_dispatch[ft] = _Dispatch(name, numbers, mod, ft, key, pos,
                                                      callee)
                self.checked_dispatch(pe, have)
            elif have.numbers != numbers or have.checked != (ft in pe.fn_casts):
                self.replace_dispatch(pe, have, numbers, pos)
        except CslError as err:
            if err.file != _HERE.file:
                raise
            # met in the dispatch function's own body: the call through the pointer made it
            raise self.error(f"{err.message} (through a function pointer)", pos) from None
        # the first compiled dispatch function is the callee of every call: its
        # specialization keeps its name, whose body a later compilation replaces
        callee = have.callee
        if self.bind_params(callee, args, pos, callee.module.env())[1] != have.key:
            raise self.error(f"a call through {fn_pointer_type(ft)}: a parameter of it "
                             "takes its argument at compile time (a DSD, a direction, ...), "
                             "which a call through a pointer cannot pass", pos)
        return callee

    def candidates(self, pe: PeBuilder, ft: FnT, pos) -> tuple:
        """The numbers of the functions of type `ft` that the PE program makes pointers of."""
        return tuple(n for n, fv in sorted(pe.fn_pointers.values(), key=lambda x: x[0])
                     if self.function_type(fv, pos) == ft)

    def dispatch_decl(self, mod: Module, ft: FnT, numbers: tuple, pe: PeBuilder):
        """The CSL function that calls, for number `k`, the function numbered `k`: an if
        chain over `numbers`, with the scope it is compiled in."""
        by_number = {n: fv for n, fv in pe.fn_pointers.values()}
        bound = {f"P{k}": t for k, t in enumerate(ft.params)}
        bound["R"] = ft.ret
        args = tuple(ast.Ident(f"a{k}", _HERE) for k in range(len(ft.params)))
        void = ft.ret is VOID
        body = None
        for n in reversed(numbers):
            bound[f"f{n}"] = by_number[n]
            call = ast.Call(ast.Ident(f"f{n}", _HERE), args, _HERE)
            stmts = (ast.ExprStmt(call, _HERE), ast.Return(None, _HERE)) if void else \
                (ast.Return(call, _HERE),)
            block = ast.Block(stmts, pos=_HERE)
            if body is None:
                body = block
                continue
            cond = ast.Binary("==", ast.Ident("k", _HERE), ast.IntLit(n, _HERE), _HERE)
            body = ast.Block((ast.If(cond, block, body, _HERE),), pos=_HERE)
        if body is None:
            # no function of this type is ever made a pointer: every call faults first
            body = ast.Block(() if void else (ast.Return(ast.UndefinedLit(_HERE), _HERE),),
                             pos=_HERE)
        params = (ast.FnParam("k", ast.Ident("u16", _HERE), pos=_HERE),) + tuple(
            ast.FnParam(f"a{k}", ast.Ident(f"P{k}", _HERE), pos=_HERE)
            for k in range(len(ft.params)))
        decl = ast.FnDecl(f"{_DISPATCH}{ft})", params, ast.Ident("R", _HERE), body, pos=_HERE)
        return decl, _DispatchScope(mod, bound)

    def compile_dispatch(self, mod: Module, ft: FnT, numbers: tuple, pos) -> tuple:
        """Compile the dispatch function over `numbers`: its function value, IR name and
        specialization key."""
        decl, scope = self.dispatch_decl(mod, ft, numbers, mod.pe)
        fv = FnVal(decl, scope)
        fenv = scope.env()
        args = [RVal(ir.Const(0, U16), U16)] + [self.placeholder(t) for t in ft.params]
        runtime, key = self.bind_params(fv, args, pos, fenv)
        return fv, self.specialize(fv, fenv, runtime, key, pos), key

    def replace_dispatch(self, pe: PeBuilder, d: _Dispatch, numbers: tuple, pos) -> None:
        """Compile dispatch function `d` anew over `numbers`, under its name."""
        fv, name, _ = self.compile_dispatch(d.module, d.type, numbers, pos)
        d.kept.append(fv)
        new = pe.functions.pop(name)
        pe.functions[d.name] = dataclasses.replace(new, name=d.name)
        d.numbers = numbers
        self.checked_dispatch(pe, d)

    def placeholder(self, t):
        """A runtime argument of type `t` for compiling a dispatch function (its value is
        never read: only its type matters)."""
        if is_fn_pointer_type(t):
            return RFnPtr(ir.Const(0, U16), t)
        if is_runtime_handle_type(t):
            return self.handle_value(ir.Const(0, U16), t)
        if isinstance(t, PtrT):
            return RPtr(ir.Const(0, U16), t)
        if isinstance(t, DType):
            return RVal(ir.Const(0, t), t)
        return None

    def finish_fn_pointers(self, pe: PeBuilder) -> None:
        """Once every other body of the PE program is compiled: compile again each dispatch
        function whose set of functions grew (compiling one may make more pointers)."""
        if pe.deferred:
            pe.deferred.append(lambda: self.finish_fn_pointers(pe))
            return
        changed = True
        while changed:
            changed = False
            for ft, d in list(pe.fn_dispatch.items()):
                numbers = self.candidates(pe, ft, d.pos)
                if numbers != d.numbers or d.checked != (ft in pe.fn_casts):
                    self.replace_dispatch(pe, d, numbers, d.pos)
                    changed = True
        for d in pe.fn_dispatch.values():
            if d.name in _callees(pe.functions, d.name):
                raise self.error(f"recursive call through a {fn_pointer_type(d.type)}: a "
                                 "function it may name calls, directly or through others, a "
                                 "function pointer of the same type; wsejax expands each call "
                                 "in place and keeps no call stack", d.pos)


def _callees(functions: dict, name: str) -> set:
    """The IR functions that function `name` calls, directly or through others."""
    seen: set = set()
    todo = [name]
    while todo:
        f = functions.get(todo.pop())
        if f is None:
            continue
        for s in ir.walk_stmts(f.body):
            callee = s.fn if isinstance(s, ir.Call) else (
                s.value.fn if isinstance(s, ir.LocalAssign) and isinstance(s.value, ir.CallExpr)
                else None)
            if callee is not None and callee not in seen:
                seen.add(callee)
                todo.append(callee)
    return seen


def _opaque(t: PtrT) -> bool:
    return isinstance(t.elem, Special) and t.elem.name == "anyopaque"
