"""Functions and runtime control flow: `fn`, `if_`, `else_`, `while_`, the runtime loop,
`break_`, `continue_`, `return_`."""

from __future__ import annotations

import contextlib
import inspect

from wsejax import ir
from wsejax.dsl._context import (
    _FABRIC_DSDS,
    _MEMORY_DSDS,
    _body,
    _program,
)
from wsejax.dsl._values import (
    Val,
    _dsd_arg,
    _expr,
    _is_number,
)
from wsejax.errors import ProgramError
from wsejax.types import (
    DType,
    bool_,
    i16,
)

# Functions and control flow


class FnRef:
    """A function of a PE program; calling it inside a body emits a call."""

    def __init__(self, name, pyfn, param_types, ret, builder):
        self.name = name
        self.pyfn = pyfn
        self.param_types = param_types
        self.ret = ret
        self._builder = builder

    def __call__(self, *args):
        body = _body(f"call of {self.name}")
        if len(args) != len(self.param_types):
            raise ProgramError(f"{self.name} takes {len(self.param_types)} arguments, "
                               f"got {len(args)}")
        vals = []
        for a, t in zip(args, self.param_types):
            if t == "dsd":
                vals.append(_dsd_arg(a, f"argument of {self.name}").expr)
            else:
                vals.append(_expr(a, t, f"argument of {self.name}"))
        if self.ret is None:
            body.emit(ir.Call(self.name, tuple(vals)))
            return None
        tmp = body.fresh("ret")
        body.emit(ir.LocalAssign(tmp, ir.CallExpr(self.name, tuple(vals), self.ret)))
        return Val(ir.Local(tmp, self.ret))


def fn(pyfn=None, *, name: str | None = None):
    """Declare a function of the current PE program (a decorator).

    Parameters are annotated with their types (`a: csl.f32`, `d: csl.mem1d_dsd`); the return
    annotation gives the result type (none or None for void). The body is traced once.
    """
    def deco(f):
        try:
            sig = inspect.signature(f, eval_str=True)
        except NameError as e:
            raise ProgramError(f"annotations of {f.__name__}: {e}") from None
        types = []
        for p in sig.parameters.values():
            t = p.annotation
            if isinstance(t, str) and t in (*_MEMORY_DSDS, *_FABRIC_DSDS, "dsd"):
                t = "dsd"
            elif not isinstance(t, DType):
                raise ProgramError(f"parameter '{p.name}' of {f.__name__} needs a type "
                                   "annotation (a csl type or csl.mem1d_dsd)")
            types.append(t)
        ret = sig.return_annotation
        if ret is inspect.Signature.empty:
            ret = None
        if ret is not None and not isinstance(ret, DType):
            raise ProgramError(f"return type of {f.__name__} must be a csl type or None")
        return _program().define_fn(f, name or f.__name__, tuple(types), ret)

    return deco(pyfn) if pyfn is not None else deco


@contextlib.contextmanager
def if_(cond):
    """`with csl.if_(c):` runs its block where c holds (runtime)."""
    body = _body("csl.if_")
    c = _expr(cond, bool_, "if condition")
    body.push()
    try:
        yield
    finally:
        then = body.pop()
        body.emit(ir.If(c, then, ()))


@contextlib.contextmanager
def else_():
    """`with csl.else_():` right after a `csl.if_` block: its else branch."""
    body = _body("csl.else_")
    last = body.last()
    if not isinstance(last, ir.If) or last.orelse:
        raise ProgramError("csl.else_ must follow a csl.if_ block")
    body.drop_last()
    body.push()
    try:
        yield
    finally:
        orelse = body.pop()
        body.emit(ir.If(last.cond, last.then, orelse))


@contextlib.contextmanager
def while_(cond):
    """`with csl.while_(c):` repeats its block while c holds; c is re-evaluated each time."""
    body = _body("csl.while_")
    c = _expr(cond, bool_, "while condition")
    body.push()
    try:
        yield
    finally:
        stmts = body.pop()
        body.emit(ir.While(c, stmts, ()))


def loop_range(*args):
    """A runtime loop traced once: `for i in csl.range(csl.i16, N):`, like CSL's
    `for (@range(i16, N)) |i|`. Also `range(T, start, stop[, step])` and `range(N)` (i16).
    Bounds are comptime integers."""
    body = _body("csl.range")
    dtype = i16
    if args and isinstance(args[0], DType):
        dtype, args = args[0], args[1:]
    if not 1 <= len(args) <= 3 or not all(_is_number(a) for a in args):
        raise ProgramError("csl.range takes comptime integer bounds: (stop), (start, stop) or "
                           "(start, stop, step)")
    r = range(*(int(a) for a in args))
    if r.step == 0:
        raise ProgramError("csl.range step must not be 0")
    name = body.fresh("i")
    return _range_gen(body, name, dtype, r)


def _range_gen(body, name, dtype, r):
    body.push()
    try:
        yield Val(ir.Local(name, dtype))
    finally:
        stmts = body.pop()
        body.emit(ir.For(name, dtype, r.start, r.stop, r.step, stmts))


def break_() -> None:
    _body("csl.break_").emit(ir.Break())


def continue_() -> None:
    _body("csl.continue_").emit(ir.Continue())


def return_(value=None) -> None:
    """Return from the current function (with a value for non-void functions)."""
    body = _body("csl.return_")
    ret = body.ret
    if ret is None:
        if value is not None:
            raise ProgramError(f"{body.fn_name} returns void")
        body.emit(ir.Return(None))
    else:
        if value is None:
            raise ProgramError(f"{body.fn_name} must return a {ret}")
        body.emit(ir.Return(_expr(value, ret, f"return value of {body.fn_name}")))
