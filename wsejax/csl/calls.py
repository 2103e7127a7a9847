"""Calls of the comptime evaluator. A call made at comptime is interpreted; in a function
body an `inline fn` is expanded where it is called, and any other function becomes one IR
function per distinct set of comptime arguments (its specialisations).

`CallMixin` uses from `self`: `error`, `exec_block`, `ev`, `ev_as`, the conversions of `CoerceMixin`
(`eval_type`, `coerce`, `to_expr`, `dsd_of`) and the call nesting count `_depth_guard`.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.directions import held_type
from wsejax.csl.env import DSD_WHY, STRUCT_WHY, Env, FnCtx, _Break, _Continue, _Return
from wsejax.csl.fn_pointers import dispatched_type
from wsejax.csl.handles import assigned_in_branches
from wsejax.csl.jumps import Target, always_leaves, jump_init
from wsejax.csl.structs import aggregate_type_of
from wsejax.csl.values import (
    ANYTYPE,
    DSD_KINDS,
    TYPE,
    VOID,
    CNum,
    DsdVal,
    EnumRVal,
    EnumT,
    FnT,
    FnVal,
    LocalDsd,
    LocalVar,
    NativeFn,
    PickedVar,
    PtrT,
    RFnPtr,
    RPtr,
    RtHandleVal,
    RVal,
    Special,
    StructRef,
    StructT,
    describe,
    freeze,
    is_comptime_value,
    is_fn_pointer_type,
)
from wsejax.errors import CslError
from wsejax.ir_calls import callees
from wsejax.types import DType

__all__ = ["CallMixin"]


class CallMixin:
    """Calls of CSL functions."""

    # calls (comptime, inline, or a runtime function's specializations) nested in one
    # another; Python's own recursion limit is raised so that this one is always met first
    MAX_CALL_DEPTH = 200

    def ev_Call(self, e: ast.Call, env: Env):
        callee = self.ev(e.fn, env)
        if isinstance(callee, RFnPtr):
            return self.call_fn_pointer(callee, e, env)
        if isinstance(callee, NativeFn):
            return callee.impl(self, e, env)
        if not isinstance(callee, FnVal):
            raise self.error(f"{describe(callee)} is not a function", e.pos)
        decl = callee.decl
        if isinstance(decl, ast.TaskDecl):
            raise self.error(f"task '{decl.name}' cannot be called", e.pos)
        if len(e.args) != len(decl.params):
            raise self.error(f"{decl.name} takes {len(decl.params)} argument(s), got "
                             f"{len(e.args)}", e.pos)
        args = self.call_args(callee, e.args, env)
        comptime_only = isinstance(decl.ret, ast.Ident) and decl.ret.name in (
            "comptime_int", "comptime_float", "type", "comptime_struct", "comptime_string")
        if env.fn is None or comptime_only:
            return self.comptime_call(callee, args, e.pos)
        # a DSD chosen at run time among different fixed parts: one call per part
        args = [self.dsd_or_picked(a, e.pos) if isinstance(a, PickedVar) else a for a in args]
        if decl.inline:
            return self.each_arm(args, env, lambda a: self.inline_call(callee, a, env, e.pos),
                                 e.pos)
        return self.each_arm(args, env, lambda a: self.runtime_call(callee, a, env, e.pos),
                             e.pos)

    def call_args(self, fv: FnVal, nodes, env: Env) -> list:
        """The values of a call's arguments. An if, switch or labelled block takes its
        parameter's type as its result type, where that type is known from the arguments
        before it (not `anytype`)."""
        scratch = fv.module.env()      # earlier arguments by parameter name, for `x: T`
        out = []
        for p, node in zip(fv.decl.params, nodes):
            want = None
            if isinstance(node, (ast.IfExpr, ast.SwitchExpr)) or (
                    isinstance(node, ast.Block) and node.label is not None):
                want = self.param_result_type(p, scratch)
            v = self.ev_as(node, want, env)
            scratch.bind(p.name, v)
            out.append(v)
        return out

    def param_result_type(self, p, scratch: Env):
        """Parameter `p`'s type where it can be known before the call, else None."""
        try:
            t = held_type(self.eval_type(p.type, scratch))
        except CslError:
            return None      # made of a comptime parameter the call binds later
        return None if t is ANYTYPE or t is TYPE else t

    def bind_params(self, fv: FnVal, args, pos, fenv: Env):
        """Bind params in `fenv`; returns `(runtime params, comptime key)`."""
        decl = fv.decl
        runtime, key = [], []
        for p, a in zip(decl.params, args):
            t = held_type(self.eval_type(p.type, fenv))
            handle = _runtime_id_arg(self, t, a, decl, p, pos)
            if handle is not None:
                runtime.append((p, DType.u16, handle))
                key.append(("id", p.name, handle.kind))
                continue
            comptime = _comptime_param(decl, p, t, a)
            if t is ANYTYPE and not comptime:
                t = aggregate_type_of(a) if isinstance(a, (StructRef, EnumRVal)) else (
                    a.dtype if isinstance(a, (RVal, CNum)) else (
                        "dsd" if isinstance(a, DsdVal) else None))
                if t is None:
                    raise self.error(f"argument '{p.name}' of {decl.name}: cannot pass "
                                     f"{describe(a)}", pos)
                key.append(("anytype", p.name, freeze(t) if isinstance(t, (StructT, EnumT))
                            else str(t)))
            if comptime:
                if isinstance(a, (RVal, LocalVar)):
                    raise self.error(f"argument '{p.name}' of {decl.name} must be "
                                     "comptime-known", pos)
                v = self.coerce(a, t, pos, f"argument '{p.name}' of {decl.name}")
                fenv.bind(p.name, v)
                key.append((p.name, freeze(v)))
            else:
                self.runtime_param(decl, p, t, a, pos, runtime, key)
        return runtime, tuple(key)

    def runtime_param(self, decl, p, t, a, pos, runtime: list, key: list) -> None:
        """Add parameter `p` of type t, given argument a, to the runtime params of a call."""
        if isinstance(t, Special) and t.name in DSD_KINDS or t == "dsd":
            d = self.dsd_of(a, pos)
            fabric = ("fabin_dsd", "fabout_dsd")
            if isinstance(t, Special) and t.name != d.kind and (
                    t.name in fabric or d.kind in fabric):
                raise self.error(f"argument '{p.name}' of {decl.name}: expected a {t.name}, "
                                 f"got a {d.kind}", pos)
            runtime.append((p, "dsd", d))
            # the kind is static: a DSD parameter takes one kind per specialization, and a
            # fabric DSD one fixed part (its operations' sites stream on one color)
            key.append(("dsd", p.name, d.kind) + self.fabric_part(d))
        elif isinstance(t, (DType, StructT, EnumT)):
            runtime.append((p, self.checked_fp16(t, p.pos, f"parameter '{p.name}'"), a))
        elif is_fn_pointer_type(t):
            runtime.append((p, DType.u16, self.fn_pointer_of(a, t, pos, f"argument "
                                                            f"'{p.name}' of {decl.name}")))
            key.append(("fnptr", p.name))
        elif isinstance(t, PtrT):
            runtime.append((p, t, self.runtime_pointer(a, t, pos, f"argument '{p.name}' "
                                                       f"of {decl.name}")))
            key.append(("ptr", p.name))
        else:
            raise self.error(f"parameter '{p.name}' of {decl.name}: type {t} is not "
                             "supported at run time", p.pos)

    def fabric_part(self, d) -> tuple:
        """Of a fabric DSD value `d`: its fixed part where known, as a 1-tuple; else ()."""
        part = self._fixed_part(d.expr) if d.kind in ("fabin_dsd", "fabout_dsd") else None
        return () if part is None else (part,)

    def runtime_call(self, fv: FnVal, args, env: Env, pos):
        fn = env.fn
        decl = fv.decl
        mod = fv.module
        fenv = mod.env()
        runtime, key = self.bind_params(fv, args, pos, fenv)
        name = self.specialize(fv, fenv, runtime, key, pos)
        if name not in mod.pe.functions:
            # its body is still being compiled: this call is reached from inside it
            self.found_cycle(mod.pe, name, pos)
        irargs = []
        for p, t, a in runtime:
            if t == "dsd" or isinstance(t, PtrT) or isinstance(a, (RtHandleVal, RFnPtr)):
                irargs.append(a.expr)
            elif isinstance(t, (StructT, EnumT)):
                irargs.extend(self.aggregate_args(a, t, pos, f"argument '{p.name}' of "
                                                  f"{decl.name}"))
            else:
                irargs.append(self.to_expr(a, t, pos, f"argument '{p.name}' of {decl.name}"))
        ret = self.ret_type(decl, fenv)
        if isinstance(ret, (StructT, EnumT)):
            return self.aggregate_result(name, irargs, ret, env)
        if ret is None:
            fn.emit(ir.Call(name, tuple(irargs)))
            return None
        if ret == "dsd":
            return self.dsd_result(name, tuple(irargs), env, self.eval_type(decl.ret, fenv).name)
        tmp = env.module.pe.fresh("ret")
        fn.emit(ir.LocalAssign(tmp, ir.CallExpr(name, tuple(irargs), ret)))
        declared = self.eval_type(decl.ret, fenv)
        if is_fn_pointer_type(declared):
            return RFnPtr(ir.Local(tmp, ret), declared)
        if isinstance(declared, PtrT):
            return RPtr(ir.Local(tmp, ret), declared)
        return RVal(ir.Local(tmp, ret), ret)

    def ret_type(self, decl, fenv: Env):
        if isinstance(decl, ast.TaskDecl):
            return None
        t = held_type(self.eval_type(decl.ret, fenv))
        if t is VOID:
            return None
        if isinstance(t, (DType, StructT, EnumT)):
            return self.checked_fp16(t, decl.pos, f"{decl.name}'s return type")
        if isinstance(t, Special) and t.name in DSD_KINDS:
            return "dsd"
        if isinstance(t, PtrT):
            return ir.POINTER
        raise self.error(f"{decl.name} returns {t}, which a runtime function cannot", decl.pos)

    def specialize(self, fv: FnVal, fenv: Env, runtime, key, pos) -> str:
        """The IR function for `fv` with these comptime arguments (emitted once)."""
        decl = fv.decl
        mod = fv.module
        pe = mod.pe
        if pe is None:
            raise self.error(f"{decl.name} cannot run on a PE from here", pos)
        full = (id(decl), id(mod), key)
        if full in pe.specs:
            return pe.specs[full]
        base = mod.prefix + decl.name
        name = base if base not in pe.functions and not any(
            v == base for v in pe.specs.values()) else f"{base}#{len(pe.specs)}"
        pe.specs[full] = name
        if decl.body is None:
            raise self.error(f"extern function {decl.name} has no body", pos)
        ret = self.ret_type(decl, fenv)
        if isinstance(ret, StructT):
            self.declare_leaves(pe, self.ret_prefix(name), ret, ())
        params = self.bind_runtime_params(pe, fenv, runtime)
        ctx = FnCtx(name, ret, addressed=_addressed(decl.body),
                    nested=assigned_in_branches(decl.body))
        declared = self.eval_type(decl.ret, fenv) if ret is not None else None
        ctx.ret_ptr = declared if isinstance(declared, PtrT) else None
        _unrecursive_signature(decl, ctx, runtime, ret)
        self.addressed_params(runtime, params, ctx, Env(mod, fenv.scopes, ctx))
        body_env = Env(mod, fenv.scopes + [{}], ctx)
        self.enter_call(decl, pos)
        self._compiling.append((pe, name, fv))
        try:
            self.exec_block(decl.body, body_env)
        except RecursionError:
            raise self.deep_error(decl, pos) from None
        except _Return:
            raise self.error("return from an inline context escaped its function",
                             decl.pos) from None
        except (_Break, _Continue) as sig:
            raise self.error("break/continue outside a loop", sig.pos) from None
        finally:
            self._depth_guard -= 1
            self._compiling.pop()
        body, ir_ret = jump_init(ctx) + tuple(ctx.blocks[0]), self.ir_ret(ret)
        if ret == "dsd":
            body, ir_ret = self.dsd_returns(pe, name, ctx, body, decl.name)
        pe.functions[name] = ir.Function(name, tuple(params), ir_ret, body)
        if (id(pe), name) in self._recursive:
            self.check_recursive(pe, name, decl, ctx)
        return name

    def found_cycle(self, pe, name: str, pos) -> None:
        """A call of `name` from inside its own body: it and the functions being compiled
        between (each calls the next) form a cycle, and so recurse. A call through a function
        pointer may not recurse: it is expanded in place over the functions it may name."""
        names = [(n, fv) for p, n, fv in self._compiling if p is pe]
        cycle = names[[n for n, _ in names].index(name):]
        for _, fv in cycle:
            through = dispatched_type(fv)
            if through is not None:
                raise self.error(f"recursive call through a {through}: a function it may name "
                                 "calls, directly or through others, a function pointer of the "
                                 "same type; wsejax expands each call through a pointer in "
                                 "place, over the functions it may name", pos)
        for n, _ in cycle:
            self._recursive.add((id(pe), n))

    def check_recursive(self, pe, name: str, decl, ctx: FnCtx) -> None:
        """Recursive function `name` (compiled as `decl`) holds only what a call stack
        keeps: scalar locals and parameters, no DSD operation (nor in a function it calls)."""
        if not ctx.unrecursive and _runs_dsd_ops(pe, name):
            ctx.unrecursive.append((decl.pos, "a call of a function that runs a DSD operation",
                                    DSD_WHY))
        if ctx.unrecursive:
            pos, what, why = ctx.unrecursive[0]
            raise self.error(f"{what} in recursive function '{decl.name}' (it calls itself, "
                             f"directly or through others) is not supported: {why}", pos)

    def bind_runtime_params(self, pe, fenv: Env, runtime) -> list:
        """Bind a specialization's runtime params in `fenv`; its IR params `(name, type)`."""
        params = []
        for p, t, a in runtime:
            pname = pe.fresh(p.name + ".")
            if isinstance(t, (StructT, EnumT)):
                params.extend(self.aggregate_params(pname, t, p.pos))
                fenv.bind(p.name, self.aggregate_param_value(pname, t))
                continue
            if isinstance(t, PtrT):
                params.append((pname, ir.POINTER))
                fenv.bind(p.name, RPtr(ir.Local(pname, ir.POINTER), t))
                continue
            params.append((pname, t))
            if t == "dsd":
                fenv.bind(p.name, LocalDsd(pname, a.kind, None).value())
                if self.fabric_part(a):
                    self._remember_literal(pe, pname, a.expr)
            elif isinstance(a, RtHandleVal):
                fenv.bind(p.name, RtHandleVal(a.kind, ir.Local(pname, t)))
            elif isinstance(a, RFnPtr):
                fenv.bind(p.name, RFnPtr(ir.Local(pname, t), a.type))
            else:
                fenv.bind(p.name, RVal(ir.Local(pname, t), t))
        return params

    @staticmethod
    def ir_ret(ret):
        """The IR return type of a function returning CSL type `ret` (a struct comes back
        through memory)."""
        if isinstance(ret, EnumT):
            return ret.tag
        return None if isinstance(ret, StructT) else ret

    def enter_call(self, decl, pos) -> None:
        """Count one more nested call of `decl`; leave with `self._depth_guard -= 1`."""
        if self._depth_guard >= self.MAX_CALL_DEPTH:
            raise self.deep_error(decl, pos)
        self._depth_guard += 1

    def deep_error(self, decl, pos) -> CslError:
        return self.error(f"comptime evaluation recursed too deeply: calls of {decl.name} nest "
                          f"more than {self.MAX_CALL_DEPTH} deep (a recursion without end?)",
                          pos)

    def inline_call(self, fv: FnVal, args, env: Env, pos):
        decl = fv.decl
        mod = fv.module
        fenv = mod.env()
        for p, a in zip(decl.params, args):
            t = self.eval_type(p.type, fenv)
            v = self.coerce(a, t, pos, f"argument '{p.name}' of {decl.name}") \
                if t is not ANYTYPE else a
            fenv.bind(p.name, v)
        fn = env.fn
        fn.addressed |= _addressed(decl.body)
        fn.nested |= assigned_in_branches(decl.body)
        body_env = Env(mod, fenv.scopes + [{}], fn, fn.depth)
        t = Target("inline", None, fn.depth)
        lst, start = fn.blocks[-1], len(fn.blocks[-1])
        self.enter_call(decl, pos)
        fn.loops.append(t)
        try:
            self.exec_block(decl.body, body_env)
        except RecursionError:
            raise self.deep_error(decl, pos) from None
        except _Return as r:
            if r.depth != fn.depth:
                raise
            return self.coerce_ret(r.value, decl, fenv, pos)
        finally:
            fn.loops.remove(t)
            self._depth_guard -= 1
        return self.inline_result(decl, fenv, fn, t, (lst, start), pos)

    def inline_result(self, decl, fenv: Env, fn: FnCtx, t: Target, where: tuple, pos):
        """The value of an inline call whose body ended without a comptime return: that of
        its run-time returns (None without any); `where` is (block, index) where the body's
        statements start."""
        if t.values and not always_leaves(decl.body):
            raise self.error(f"{decl.name} must return a value (a path through it ends "
                             "without a return)", decl.pos)
        ret = self.eval_type(decl.ret, fenv)
        v = self.jump_value(fn, t, ret if isinstance(ret, DType) else None, *where,
                            f"the result of {decl.name}", pos)
        self.arrive(fn, t, "return")
        return v

    def coerce_ret(self, v, decl, fenv: Env, pos):
        t = self.eval_type(decl.ret, fenv)
        if t is VOID or v is None:
            return None
        if t is ANYTYPE or t is TYPE:
            return v
        if isinstance(v, RVal) and isinstance(t, DType):
            return RVal(self.to_expr(v, t, pos, "return value"), t)
        return self.coerce(v, t, pos, f"return value of {decl.name}")

    def comptime_call(self, fv: FnVal, args, pos):
        """Interpret a call at comptime: every argument and the result are comptime-known."""
        decl = fv.decl
        mod = fv.module
        fenv = mod.env()
        for p, a in zip(decl.params, args):
            if isinstance(a, (RVal, LocalVar)):
                raise self.error(f"argument '{p.name}' of {decl.name} is not comptime-known",
                                 pos)
            t = self.eval_type(p.type, fenv)
            fenv.bind(p.name, self.coerce(a, t, pos, f"argument '{p.name}' of {decl.name}")
                      if t is not ANYTYPE else a)
        self.enter_call(decl, pos)
        try:
            self.exec_block(decl.body, Env(mod, fenv.scopes + [{}], None))
        except RecursionError:
            raise self.deep_error(decl, pos) from None
        except _Return as r:
            return self.coerce_ret(r.value, decl, fenv, pos)
        except (_Break, _Continue) as sig:
            raise self.error("break/continue outside a loop", sig.pos) from None
        finally:
            self._depth_guard -= 1
        return None


def _unrecursive_signature(decl, ctx: FnCtx, runtime, ret) -> None:
    """Note in `ctx` the parameters and result a recursive function may not have."""
    for p, t, _ in runtime:
        if t == "dsd":
            ctx.unrecursive.append((p.pos, f"DSD parameter '{p.name}'", DSD_WHY))
        elif isinstance(t, StructT):
            ctx.unrecursive.append((p.pos, f"struct parameter '{p.name}'", STRUCT_WHY))
    if ret == "dsd":
        ctx.unrecursive.append((decl.pos, "a DSD result", DSD_WHY))
    elif isinstance(ret, StructT):
        ctx.unrecursive.append((decl.pos, "a struct result", STRUCT_WHY))


def _runs_dsd_ops(pe, name: str) -> bool:
    """Does function `name` of `pe`, or one it calls, run a DSD operation?"""
    seen, todo = set(), [name]
    while todo:
        f = pe.functions.get(todo.pop())
        if f is None or f.name in seen:
            continue
        seen.add(f.name)
        if any(type(s) in (ir.DsdOp, ir.Map, ir.DsdAssign) for s in ir.walk_stmts(f.body)):
            return True
        todo.extend(callees(f))
    return False


def _addressed(node) -> set:
    """Names `x` that appear as `&x` anywhere in an AST subtree."""
    return {n.a.name for n in ast.walk(node)
            if isinstance(n, ast.Unary) and n.op == "&" and isinstance(n.a, ast.Ident)}


# parameter types that take a color, task ID or queue: a comptime-known one specializes the
# function, one known only at run time (`RtHandleVal`) is passed as its u16 number
_ID_PARAMS = {"color": "color", "local_task_id": "local", "data_task_id": "data",
              "control_task_id": "control", "input_queue": "input_queue",
              "output_queue": "output_queue"}


def _runtime_id_arg(c, t, a, decl, p, pos) -> RtHandleVal | None:
    """Runtime handle `a` where it is the argument of parameter `p` (of type `t`), else
    None."""
    if not isinstance(a, RtHandleVal) or p.comptime:
        return None
    if t is ANYTYPE:
        return a
    if not isinstance(t, Special) or a.kind != _ID_PARAMS.get(t.name):
        raise c.error(f"argument '{p.name}' of {decl.name}: expected a {t}, got "
                      f"{describe(a)}", pos)
    return a


def _comptime_param(decl, p, t, a) -> bool:
    """Whether parameter `p` of type `t` takes `a` at comptime (specializing the function).
    A function given to a function pointer parameter whose address the body takes is passed
    as its number: `&p` then points at a u16 in memory, as for a pointer held at run time."""
    if isinstance(a, FnVal) and is_fn_pointer_type(t) and decl.body is not None and \
            p.name in _addressed(decl.body):
        return False
    return p.comptime or t is ANYTYPE and is_comptime_value(a) or \
        (isinstance(t, Special) and t.name in ("type", "comptime_int", "comptime_float",
                                               "comptime_struct", "comptime_string",
                                               "imported_module", *_ID_PARAMS)) \
        or isinstance(t, FnT) or t is TYPE or isinstance(t, PtrT) and not isinstance(
            a, (RPtr, RFnPtr))
