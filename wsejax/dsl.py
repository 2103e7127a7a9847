"""The Python program API: write PE programs and layouts in Python, traced into the IR.

Names mirror CSL's builtins (without the `@`). A PE program is a Python function that receives
its params as keyword arguments at comptime and declares globals, DSDs, functions and exports;
function bodies are traced once into IR statements. A layout function places PE programs on a
rectangle and exports names; `compile` runs it and returns a `Program`.

    from wsejax import dsl as csl

    def pe_program(M, N):
        A = csl.var("A", csl.f32[M * N])
        x = csl.var("x", csl.f32[N])
        y = csl.var("y", csl.zeros(csl.f32[M]))
        A_dsd = csl.var("A_dsd", csl.get_dsd(csl.mem1d_dsd,
                        tensor_access=csl.tensor_access(lambda i: A[i * N], M)))
        y_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=y, extent=M)

        @csl.fn
        def compute():
            for i in csl.range(csl.i16, N):          # a runtime loop, traced once
                csl.fmacs(y_dsd, y_dsd, A_dsd, x[i])
                A_dsd.set(csl.increment_dsd_offset(A_dsd, 1, csl.f32))
            csl.unblock_cmd_stream()

        csl.export_symbol(A, "A"); csl.export_symbol(x, "x"); csl.export_symbol(y, "y")
        csl.export_symbol(compute)

    def layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, pe_program, dict(M=4, N=6))
        csl.export_name("A", csl.pointer(csl.f32), True)
        ...

    program = csl.compile(layout, fabric_dims=(8, 3), fabric_offsets=(4, 1))

Dataflow programs span several PEs. Colors are routed in the layout (`set_color_config`) or
by a PE program (`set_local_color_config`); fabric DSDs read and write them; data tasks run
once per arriving wavelet; DSD operations take their config struct as keyword arguments:

    def sender(n, c):
        x = csl.var("x", csl.f32[n])
        out = csl.get_dsd(csl.fabout_dsd, extent=n, fabric_color=c,
                          output_queue=csl.get_output_queue(1))
        done = csl.get_local_task_id(10)

        @csl.task
        def finish():
            csl.unblock_cmd_stream()

        @csl.fn
        def send():
            csl.fmovs(out, csl.get_dsd(csl.mem1d_dsd, base_address=x, extent=n),
                      async_=True, activate=finish)

        csl.bind_local_task(finish, done)
        csl.set_local_color_config(c, rx=csl.RAMP, tx=csl.EAST)

    def receiver(c):
        total = csl.var("total", csl.f32)

        @csl.task
        def recv(v: csl.f32):
            total.set(total + v)

        csl.bind_data_task(recv, csl.get_data_task_id(c))
        csl.set_local_color_config(c, rx=csl.WEST, tx=csl.RAMP)

On wse3 a data task ID is an input queue's (`get_data_task_id(q)`), and every queue a program
uses is bound to its color first with `initialize_queue(q, color=c)`. memcpy's streaming
colors are declared to `compile` (`h2d_colors=`, `d2h_colors=`).

Runtime control flow uses explicit helpers: `csl.range` (loops), `with csl.if_(c):` /
`with csl.else_():`, `with csl.while_(c):`, `csl.break_()`, `csl.continue_()`, `csl.return_(v)`.
A plain Python `for` over `range` unrolls at trace time (comptime).

Raises `ProgramError` for malformed programs and `LayoutError` for invalid layouts.
"""

from __future__ import annotations

import builtins
import contextlib
import enum
import inspect
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from wsejax import dsd as dsd_math
from wsejax import ir, ops
from wsejax.errors import LayoutError, ProgramError
from wsejax.fabric import MAX_COMMANDS, NO_ENTRYPOINT, control_payload, data_task_args
from wsejax.hardware import (
    MAX_CONTROL_TASK_ID,
    MEMCPY_COLORS,
    MEMCPY_CONTROL_IDS,
    MEMCPY_LOCAL_IDS,
    MEMCPY_QUEUES,
    QUEUE_COUNTS,
    ut_id_error,
)
from wsejax.types import (
    ArrayType,
    DType,
    bf16,
    bool_,
    f16,
    f32,
    i8,
    i16,
    i32,
    u8,
    u16,
    u32,
    widens,
)

__all__ = [
    "EAST", "NORTH", "RAMP", "SOUTH", "WEST", "ArrayType", "Color", "DType", "InputQueue",
    "OutputQueue", "UtId", "activate", "addr", "allocate_fifo", "as_", "bf16", "bind_control_task",
    "bind_data_task", "bind_local_task", "bitcast", "block", "bool_", "break_", "compile",
    "constants", "continue_", "control", "else_", "export_name", "export_symbol", "f16", "f32",
    "fabin_dsd", "fabout_dsd", "fn", "fn_type", "get_color", "get_control_task_id",
    "get_data_task_id", "get_dsd", "get_input_queue", "get_local_task_id", "get_output_queue",
    "get_ut_id", "i16", "i32", "i8", "if_", "increment_dsd_offset", "initialize_queue", "local",
    "map", "mem1d_dsd", "mem4d_dsd", "pe_x", "pe_y", "pointer", "range", "return_", "select",
    "set_color_config", "set_dsd_base_addr", "set_dsd_length", "set_dsd_stride",
    "set_local_color_config", "set_rectangle", "set_tile_code", "task", "tensor_access", "u16",
    "u32", "u8", "unblock", "unblock_cmd_stream", "var", "while_", "zeros",
]
__all__ += sorted(ops.OPS)


mem1d_dsd = "mem1d_dsd"
mem4d_dsd = "mem4d_dsd"
fabin_dsd = "fabin_dsd"
fabout_dsd = "fabout_dsd"
_MEMORY_DSDS = (mem1d_dsd, mem4d_dsd)
_FABRIC_DSDS = (fabin_dsd, fabout_dsd)

# router ports, as `wsejax.routes.DIRECTIONS` names them
NORTH, SOUTH, EAST, WEST, RAMP = "NORTH", "SOUTH", "EAST", "WEST", "RAMP"
_DIRECTIONS = (NORTH, SOUTH, EAST, WEST, RAMP)


_local = threading.local()


def _stack() -> list:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def _current(kind):
    for b in reversed(_stack()):
        if isinstance(b, kind):
            return b
    return None


def _program() -> _ProgramBuilder:
    b = _current(_ProgramBuilder)
    if b is None:
        raise ProgramError("this call belongs inside a PE program function")
    return b


def _body(what: str) -> _BodyBuilder:
    b = _stack()[-1] if _stack() else None
    if not isinstance(b, _BodyBuilder):
        raise ProgramError(f"{what} is a runtime operation: call it inside a function body "
                           "(decorated with csl.fn)")
    return b


# ------------------------------------------------------------------------------------------------
# Types and coercion


def _peer(a: DType, b: DType, what: str) -> DType:
    """The common type of two runtime operands (CSL 2.10 coercions), or ProgramError."""
    if a == b:
        return a
    for x, y in ((a, b), (b, a)):
        if widens(x, y):
            return y
    raise ProgramError(f"{what}: operands have types {a} and {b}; convert one with csl.as_")


def _const(value, dtype: DType) -> ir.Const:
    if isinstance(value, (bool, np.bool_)):
        if dtype is not bool_ and not dtype.is_int:
            raise ProgramError(f"cannot use bool {value} as {dtype}")
        return ir.Const(bool(value) if dtype is bool_ else int(value), dtype)
    if dtype is bool_:
        raise ProgramError(f"cannot use {value!r} as bool")
    if dtype.is_float:
        return ir.Const(float(value), dtype)
    if isinstance(value, (float, np.floating)):
        if float(value) != int(value):
            raise ProgramError(f"{value!r} is not an integer, but {dtype} is expected")
        value = int(value)
    value = int(value)
    info = np.iinfo(dtype.np)
    if not info.min <= value <= info.max:
        raise ProgramError(f"{value} does not fit in {dtype}")
    return ir.Const(value, dtype)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, bool, np.integer, np.floating, np.bool_))


def _expr(v, dtype: DType | None = None, what: str = "value") -> ir.Expr:
    """Turn a Python number, Val or scalar symbol into an IR expression (of `dtype` if given)."""
    if isinstance(v, _PerPeParam):
        return v.expr(dtype, what)
    if isinstance(v, _ExprLike):
        e = v._ir()
        if dtype is not None and e.dtype != dtype:
            if widens(e.dtype, dtype):
                return ir.Cast(e, dtype)
            raise ProgramError(f"{what}: expected {dtype}, got {e.dtype}; convert with csl.as_")
        return e
    if _is_number(v):
        if dtype is None:
            if isinstance(v, (bool, np.bool_)):
                dtype = bool_
            elif isinstance(v, (float, np.floating)):
                dtype = f32
            else:
                dtype = i32 if -(2**31) <= int(v) < 2**31 else u32
        return _const(v, dtype)
    raise ProgramError(f"{what}: expected a runtime value or number, got {type(v).__name__}")


class _ExprLike:
    """Operator overloading shared by every runtime scalar value."""

    def _ir(self) -> ir.Expr:
        raise NotImplementedError

    @property
    def dtype(self) -> DType:
        return self._ir().dtype

    def _bin(self, op, other, reverse=False):
        a, b = (other, self) if reverse else (self, other)
        ea = a._ir() if isinstance(a, _ExprLike) else None
        eb = b._ir() if isinstance(b, _ExprLike) else None
        if ea is None:
            ea = _expr(a, eb.dtype, f"operator {op}")
        if eb is None:
            if op in ("<<", ">>") and _is_number(b):
                eb = _expr(b, ea.dtype, f"operator {op}")
            else:
                eb = _expr(b, ea.dtype, f"operator {op}")
        if op in ("<<", ">>"):
            return Val(ir.Bin(op, ea, eb, ea.dtype))
        t = _peer(ea.dtype, eb.dtype, f"operator {op}")
        ea = ea if ea.dtype == t else ir.Cast(ea, t)
        eb = eb if eb.dtype == t else ir.Cast(eb, t)
        if op in ("and", "or") and t is not bool_:
            raise ProgramError(f"operator {op} needs bool operands, got {t}")
        out = bool_ if op in ("==", "!=", "<", "<=", ">", ">=") else t
        return Val(ir.Bin(op, ea, eb, out))

    def __add__(self, o): return self._bin("+", o)
    def __radd__(self, o): return self._bin("+", o, True)
    def __sub__(self, o): return self._bin("-", o)
    def __rsub__(self, o): return self._bin("-", o, True)
    def __mul__(self, o): return self._bin("*", o)
    def __rmul__(self, o): return self._bin("*", o, True)
    def __truediv__(self, o): return self._bin("/", o)
    def __rtruediv__(self, o): return self._bin("/", o, True)
    def __floordiv__(self, o): return self._bin("/", o)
    def __rfloordiv__(self, o): return self._bin("/", o, True)
    def __mod__(self, o): return self._bin("%", o)
    def __rmod__(self, o): return self._bin("%", o, True)
    def __lshift__(self, o): return self._bin("<<", o)
    def __rshift__(self, o): return self._bin(">>", o)
    def __and__(self, o): return self._bin("and" if self.dtype is bool_ else "&", o)
    def __rand__(self, o): return self._bin("and" if self.dtype is bool_ else "&", o, True)
    def __or__(self, o): return self._bin("or" if self.dtype is bool_ else "|", o)
    def __ror__(self, o): return self._bin("or" if self.dtype is bool_ else "|", o, True)
    def __xor__(self, o): return self._bin("^", o)
    def __rxor__(self, o): return self._bin("^", o, True)
    def __eq__(self, o): return self._bin("==", o)  # type: ignore[override]
    def __ne__(self, o): return self._bin("!=", o)  # type: ignore[override]
    def __lt__(self, o): return self._bin("<", o)
    def __le__(self, o): return self._bin("<=", o)
    def __gt__(self, o): return self._bin(">", o)
    def __ge__(self, o): return self._bin(">=", o)

    def __neg__(self):
        return Val(ir.Un("-", self._ir(), self.dtype))

    def __invert__(self):
        e = self._ir()
        return Val(ir.Un("!" if e.dtype is bool_ else "~", e, e.dtype))

    def __abs__(self):
        return Val(ir.Un("abs", self._ir(), self.dtype))

    def __bool__(self):
        raise ProgramError("a runtime value has no Python truth value; use csl.if_ / "
                           "csl.while_ / csl.select for runtime conditions")

    __hash__ = None  # type: ignore[assignment]


class Val(_ExprLike):
    """A runtime scalar value (an IR expression) inside a traced body."""

    __slots__ = ("_e",)

    def __init__(self, e: ir.Expr):
        self._e = e

    def _ir(self) -> ir.Expr:
        return self._e

    def __repr__(self) -> str:
        return f"Val({self._e})"


def as_(dtype: DType, v) -> Val:
    """`@as(T, v)`: numeric conversion (float to int truncates toward zero)."""
    if _is_number(v):
        if dtype.is_float:
            return Val(_const(float(v), dtype))
        if dtype is bool_:
            return Val(_const(bool(v), dtype))
        return Val(_const(int(v), dtype))
    return Val(ir.Cast(_expr(v), dtype))


def bitcast(dtype: DType, v) -> Val:
    """`@bitcast(T, v)`: reinterpret the bits of a value of the same width."""
    e = _expr(v)
    if e.dtype.bits != dtype.bits:
        raise ProgramError(f"@bitcast from {e.dtype} to {dtype}: widths differ")
    return Val(ir.Bitcast(e, dtype))


def select(cond, a, b) -> Val:
    """`if (cond) a else b` as a runtime expression (both sides evaluated)."""
    c = _expr(cond, bool_, "select condition")
    ea = a._ir() if isinstance(a, _ExprLike) else None
    eb = b._ir() if isinstance(b, _ExprLike) else None
    if ea is None and eb is None:
        ea, eb = _expr(a), _expr(b)
    ea = ea if ea is not None else _expr(a, eb.dtype)
    eb = eb if eb is not None else _expr(b, ea.dtype)
    t = _peer(ea.dtype, eb.dtype, "select")
    return Val(ir.Select(c, ea if ea.dtype == t else ir.Cast(ea, t),
                         eb if eb.dtype == t else ir.Cast(eb, t), t))


def pe_x() -> Val:
    """This PE's column in the program rectangle (as `<layout>.get_x_coord()`)."""
    return Val(ir.PeValue("x", u16))


def pe_y() -> Val:
    """This PE's row in the program rectangle (as `<layout>.get_y_coord()`)."""
    return Val(ir.PeValue("y", u16))


# ------------------------------------------------------------------------------------------------
# Globals


@dataclass(frozen=True)
class _Init:
    """An initialiser of an array global: `zeros`, `constants` or explicit values."""

    type: ArrayType
    values: tuple | None


def zeros(t: ArrayType) -> _Init:
    """`@zeros(T)`."""
    return _Init(t, None)


def constants(t: ArrayType, value) -> _Init:
    """`@constants(T, v)`: every element equal to v."""
    n = int(np.prod(t.shape))
    return _Init(t, (value,) * n)


class SymbolRef(_ExprLike):
    """A global of a PE program. Index it (`x[i]`) to read or write an element; a scalar
    global is itself a value and is written with `.set(v)`."""

    def __init__(self, sym: ir.Symbol, builder: _ProgramBuilder):
        self.symbol = sym
        self.name = sym.name
        self._builder = builder

    def _ir(self) -> ir.Expr:
        if self.symbol.shape:
            raise ProgramError(f"'{self.name}' is an array; index it")
        return ir.Load(self.name, (), self.symbol.dtype)

    @property
    def dtype(self) -> DType:
        return self.symbol.dtype

    @property
    def value(self) -> Val:
        return Val(self._ir())

    @value.setter
    def value(self, v) -> None:
        self.set(v)

    def set(self, v) -> None:
        """Assign a scalar global (runtime)."""
        if self.symbol.shape:
            raise ProgramError(f"'{self.name}' is an array; assign elements with "
                               f"{self.name}[i] = v")
        _body("assignment").emit(ir.Assign(self.name, (), _expr(v, self.dtype, self.name)))

    def _indices(self, idx) -> tuple:
        idx = idx if isinstance(idx, tuple) else (idx,)
        if len(idx) != len(self.symbol.shape):
            raise ProgramError(f"'{self.name}' has rank {len(self.symbol.shape)}, "
                               f"indexed with {len(idx)} indices")
        return idx

    def _index_exprs(self, idx) -> tuple:
        exprs = []
        for i, n in zip(idx, self.symbol.shape):
            if _is_number(i) and not 0 <= int(i) < n:
                raise ProgramError(f"index {int(i)} out of range for '{self.name}' "
                                   f"(dimension of {n})")
            e = _expr(i, None, f"index of {self.name}")
            if not e.dtype.is_int:
                raise ProgramError(f"index of '{self.name}' must be an integer, got {e.dtype}")
            exprs.append(e)
        return tuple(exprs)

    def __getitem__(self, idx):
        idx = self._indices(idx)
        if any(isinstance(i, dsd_math.Affine) for i in idx):
            return _TensorRef(self, idx)
        return Val(ir.Load(self.name, self._index_exprs(idx), self.symbol.dtype))

    def __setitem__(self, idx, v) -> None:
        body = _body("element assignment")
        es = self._index_exprs(self._indices(idx))
        body.emit(ir.Assign(self.name, es, _expr(v, self.dtype, self.name)))

    def __repr__(self) -> str:
        return f"<global {self.name}: {ArrayType(self.dtype, self.symbol.shape)}>"


@dataclass(frozen=True)
class _TensorRef:
    """`A[affine indices]` inside a tensor_access lambda."""

    sym: SymbolRef
    indices: tuple


@dataclass(frozen=True)
class Pointer:
    """`&symbol[indices]`: a pointer, used for `base_address`, exports and scalar destinations."""

    sym: SymbolRef
    indices: tuple = ()


def addr(sym: SymbolRef, *indices) -> Pointer:
    """`&sym` or `&sym[i, ...]`."""
    if not isinstance(sym, SymbolRef):
        raise ProgramError(f"csl.addr takes a global, got {type(sym).__name__}")
    return Pointer(sym, tuple(indices))


def var(name: str, type_or_init, init=None):
    """Declare a global `var` of the current PE program.

    `type_or_init` is a DType (scalar; `init` its value), an array type `f32[M, N]` (`init`
    None for zeros, a number to fill, or a sequence/array of values), a `zeros(...)` /
    `constants(...)` initialiser, or a DSD value (a global DSD variable).
    """
    pb = _program()
    if isinstance(type_or_init, DsdValue):
        return pb.add_dsd_var(name, type_or_init)
    if isinstance(type_or_init, _Init):
        t, values = type_or_init.type, type_or_init.values
    elif isinstance(type_or_init, ArrayType):
        t = type_or_init
        values = None if init is None else _init_values(name, t, init)
    elif isinstance(type_or_init, DType):
        t = ArrayType(type_or_init, ())
        values = None if init is None else _init_values(name, t, init)
    else:
        raise ProgramError(f"var '{name}': expected a type, an initialiser or a DSD, "
                           f"got {type(type_or_init).__name__}")
    if values is not None:
        values = tuple(_const(v, t.dtype).value for v in values)
    return pb.add_symbol(ir.Symbol(name, t.dtype, t.shape, values))


def _init_values(name, t: ArrayType, init) -> tuple:
    n = int(np.prod(t.shape)) if t.shape else 1
    if _is_number(init):
        return (init,) * n
    flat = np.asarray(init).reshape(-1)
    if flat.size != n:
        raise ProgramError(f"var '{name}': initialiser has {flat.size} values, {t} needs {n}")
    return tuple(flat.tolist())


# ------------------------------------------------------------------------------------------------
# Locals


class LocalRef(_ExprLike):
    """A runtime local variable of a function body."""

    def __init__(self, name: str, dtype: DType):
        self.name = name
        self._dtype = dtype

    def _ir(self) -> ir.Expr:
        return ir.Local(self.name, self._dtype)

    @property
    def dtype(self) -> DType:
        return self._dtype

    @property
    def value(self) -> Val:
        return Val(self._ir())

    @value.setter
    def value(self, v) -> None:
        self.set(v)

    def set(self, v) -> None:
        _body("assignment").emit(ir.LocalAssign(self.name, _expr(v, self._dtype, self.name)))


def local(dtype_or_value, init=None, name: str | None = None):
    """Declare a runtime local: `local(csl.i16, 0)`, or `local(dsd_value)` for a DSD local."""
    body = _body("csl.local")
    name = name or body.fresh("v")
    if isinstance(dtype_or_value, DsdValue):
        body.emit(ir.LocalAssign(name, dtype_or_value.expr))
        return dtype_or_value._derive(ir.DsdLocal(name))
    if not isinstance(dtype_or_value, DType):
        raise ProgramError("csl.local takes a DType (and an initial value) or a DSD")
    ref = LocalRef(name, dtype_or_value)
    body.emit(ir.LocalAssign(name, _expr(0 if init is None else init, dtype_or_value, name)))
    return ref


# ------------------------------------------------------------------------------------------------
# DSDs


class DsdValue:
    """A DSD value: a literal, a DSD variable or a setter result. `kind` is mem1d_dsd,
    mem4d_dsd, fabin_dsd or fabout_dsd; `dtype` the element type of its base array (None for
    a fabric DSD: the operation decides). `indexed` is set when the DSD has
    wavelet_index_offset; `fabric` is the FabIn/FabOut it was made from."""

    def __init__(self, expr: ir.DsdExpr, kind: str, dtype: DType | None,
                 indexed: bool = False, fabric: ir.FabIn | ir.FabOut | None = None):
        self.expr = expr
        self.kind = kind
        self.dtype = dtype
        self.indexed = indexed
        self.fabric = fabric

    def _derive(self, expr: ir.DsdExpr, dtype: DType | None = None) -> DsdValue:
        return DsdValue(expr, self.kind, dtype or self.dtype, self.indexed, self.fabric)


class DsdVarRef(DsdValue):
    """A global DSD variable. Change it at run time with `.set(new_dsd)`."""

    def __init__(self, name: str, init: DsdValue):
        super().__init__(ir.DsdVar(name), init.kind, init.dtype, init.indexed, init.fabric)
        self.name = name

    def set(self, value: DsdValue) -> None:
        if not isinstance(value, DsdValue):
            raise ProgramError(f"DSD variable '{self.name}' takes a DSD value")
        if value.kind != self.kind:
            raise ProgramError(f"DSD variable '{self.name}' is a {self.kind}, got {value.kind}")
        _body("DSD assignment").emit(ir.DsdAssign(self.name, value.expr))


@dataclass(frozen=True)
class TensorAccess:
    """`|i, j, ...|{L0, L1, ...} -> A[...]` as (symbol, offset, coeffs, extents)."""

    sym: SymbolRef
    offset: int
    coeffs: tuple[int, ...]
    extents: tuple[int, ...]


def tensor_access(fn: Callable, extents) -> TensorAccess:
    """Build a tensor_access map: `tensor_access(lambda i: A[2 * i + 1], 5)` is CSL's
    `|i|{5} -> A[2*i+1]`; `tensor_access(lambda i, j: A[i, j], (4, 3))` has two variables."""
    extents = tuple(extents) if isinstance(extents, (tuple, list)) else (extents,)
    n = sum(p.default is inspect.Parameter.empty for p in inspect.signature(fn).parameters.values())
    if n != len(extents):
        raise ProgramError(f"tensor_access: {n} induction variables but {len(extents)} extents")
    if not 1 <= n <= 4:
        raise ProgramError("tensor_access takes 1 to 4 induction variables")
    ref = fn(*dsd_math.induction_vars(n))
    if isinstance(ref, SymbolRef) and not ref.symbol.shape:
        ref = _TensorRef(ref, ())
    if not isinstance(ref, _TensorRef):
        raise ProgramError("tensor_access must return an indexed global, like A[i * N]")
    try:
        offset, coeffs = dsd_math.linearize(ref.sym.symbol.shape, ref.indices, n)
    except (TypeError, ValueError) as e:
        raise ProgramError(f"tensor_access: {e}") from None
    for e in extents:
        if not 0 <= int(e) <= 0xFFFF:
            raise ProgramError(f"tensor_access extent {e} is not a u16")
    return TensorAccess(ref.sym, offset, coeffs, tuple(int(e) for e in extents))


def _field_expr(v, dtype: DType, what: str) -> ir.Expr:
    if _is_number(v):
        return _const(v, dtype)
    if isinstance(v, _ExprLike):
        _body(f"a runtime {what}")
        return _expr(v, None, what) if v.dtype == dtype else ir.Cast(_expr(v), dtype)
    raise ProgramError(f"DSD {what} must be an integer, got {type(v).__name__}")


def _base(base_address) -> tuple[SymbolRef, int]:
    if isinstance(base_address, SymbolRef):
        return base_address, 0
    if isinstance(base_address, Pointer):
        sym = base_address.sym
        idx = base_address.indices
        if not idx:
            return sym, 0
        if not all(_is_number(i) for i in idx):
            raise ProgramError("base_address index must be comptime-known")
        off, _ = dsd_math.linearize(sym.symbol.shape, tuple(int(i) for i in idx), 0)
        return sym, off
    raise ProgramError(f"base_address must be a global or csl.addr(...), "
                       f"got {type(base_address).__name__}")


def get_dsd(kind: str, *, base_address=None, offset=None, stride=None, extent=None,
            tensor_access: TensorAccess | dict | None = None,
            wavelet_index_offset: bool = False, fabric_color=None, input_queue=None,
            output_queue=None, control: bool = False) -> DsdValue:
    """`@get_dsd(kind, .{...})`.

    mem1d: `base_address`, `offset` (i16), `stride` (i8, default 1), `extent` (u16), or a
    `tensor_access` with one variable. mem4d: `base_address` with `stride` (innermost first)
    and `extent` (outermost first) tuples, or a `tensor_access` with up to four variables.
    A `tensor_access` may also be a dict with base_address/offset/stride/extent.
    With `wavelet_index_offset`, an operation's `index` (16-bit words) is added to the address.

    fabin: `extent` (wavelets), `fabric_color`, `input_queue`. fabout: `extent`,
    `fabric_color`, `output_queue`, `wavelet_index_offset` (a 16-bit op sends its `index` in
    the high half), `control` (it sends control wavelets, spec 6.6). On wse3 the color is the
    one the queue was initialised with.
    """
    if kind in _FABRIC_DSDS:
        for key, v in (("base_address", base_address), ("offset", offset),
                       ("stride", stride), ("tensor_access", tensor_access)):
            if v is not None:
                raise ProgramError(f"{kind} has no property '{key}'")
        return _fabric_dsd(kind, extent, fabric_color, input_queue, output_queue,
                           wavelet_index_offset, control)
    if control:
        raise ProgramError(f"{kind} has no property 'control' (it belongs to fabout DSDs)")
    if kind not in _MEMORY_DSDS:
        raise ProgramError(f"unknown DSD kind {kind!r} (expected csl.mem1d_dsd, csl.mem4d_dsd, "
                           "csl.fabin_dsd or csl.fabout_dsd)")
    for key, v in (("fabric_color", fabric_color), ("input_queue", input_queue),
                   ("output_queue", output_queue)):
        if v is not None:
            raise ProgramError(f"{kind} has no property '{key}' (it belongs to fabric DSDs)")
    wavelet_index_offset = bool(wavelet_index_offset)
    if isinstance(tensor_access, dict):
        d = dict(tensor_access)
        for key in ("base_address", "offset", "stride", "extent"):
            if key in d and locals()[key] is not None:
                raise ProgramError(f"DSD property '{key}' given twice")
        base_address = d.get("base_address", base_address)
        offset = d.get("offset", offset)
        stride = d.get("stride", stride)
        extent = d.get("extent", extent)
        tensor_access = None
    if tensor_access is not None:
        for key, v in (("base_address", base_address), ("offset", offset), ("stride", stride),
                       ("extent", extent)):
            if v is not None:
                raise ProgramError(f"DSD property '{key}' given twice (also by tensor_access)")
        ta = tensor_access
        base_sym, base_off = ta.sym, 0
        if kind == mem1d_dsd:
            if len(ta.extents) != 1:
                raise ProgramError("a mem1d_dsd tensor_access takes one induction variable")
            d = ir.Mem1d(ta.sym.name, _const(ta.offset, i16), _const(ta.coeffs[0], i8),
                         _const(ta.extents[0], u16), 0, wavelet_index_offset)
        else:
            d = ir.Mem4d(ta.sym.name, _const(ta.offset, i16), ta.coeffs, ta.extents, 0,
                         wavelet_index_offset)
        return DsdValue(ir.DsdLit(d), kind, base_sym.dtype, wavelet_index_offset)
    if base_address is None:
        raise ProgramError(f"{kind} needs a base_address or a tensor_access")
    base_sym, base_off = _base(base_address)
    if kind == mem1d_dsd:
        if extent is None:
            raise ProgramError("mem1d_dsd needs an extent")
        if isinstance(stride, (tuple, list)):
            stride = stride[0]
        if isinstance(extent, (tuple, list)):
            extent = extent[0]
        d = ir.Mem1d(base_sym.name,
                     _field_expr(0 if offset is None else offset, i16, "offset"),
                     _field_expr(1 if stride is None else stride, i8, "stride"),
                     _field_expr(extent, u16, "extent"), base_off, wavelet_index_offset)
        return DsdValue(ir.DsdLit(d), kind, base_sym.dtype, wavelet_index_offset)
    extents = tuple(extent) if isinstance(extent, (tuple, list)) else (extent,)
    if extent is None or not 1 <= len(extents) <= 4:
        raise ProgramError("mem4d_dsd needs an extent tuple of 1 to 4 entries")
    strides = (1,) * len(extents) if stride is None else (
        tuple(stride) if isinstance(stride, (tuple, list)) else (stride,))
    if not all(_is_number(v) for v in strides + extents):
        raise ProgramError("mem4d_dsd stride and extent must be comptime-known")
    try:
        coeffs = dsd_math.coeffs_from_strides(tuple(int(s) for s in strides),
                                              tuple(int(e) for e in extents))
    except ValueError as e:
        raise ProgramError(str(e)) from None
    d = ir.Mem4d(base_sym.name, _field_expr(0 if offset is None else offset, i16, "offset"),
                 coeffs, tuple(int(e) for e in extents), base_off, wavelet_index_offset)
    return DsdValue(ir.DsdLit(d), kind, base_sym.dtype, wavelet_index_offset)


def _fabric_dsd(kind, extent, fabric_color, input_queue, output_queue,
                wavelet_index_offset, control=False) -> DsdValue:
    """A fabin_dsd or fabout_dsd: its color is `fabric_color` (wse2) or its queue's (wse3)."""
    pb = _program()
    qname, queue = ("input_queue", input_queue) if kind == fabin_dsd else (
        "output_queue", output_queue)
    wrong = "output_queue" if kind == fabin_dsd else "input_queue"
    if (output_queue if kind == fabin_dsd else input_queue) is not None:
        raise ProgramError(f"{kind} has no property '{wrong}'; it takes an {qname}")
    if not isinstance(control, bool):
        raise ProgramError(f"{kind} control takes a bool, got {control!r}")
    if kind == fabin_dsd and control:
        raise ProgramError("fabin_dsd has no property 'control' (a fabout_dsd sends control "
                           "wavelets)")
    if kind == fabin_dsd and wavelet_index_offset:
        raise ProgramError("fabin_dsd has no property 'wavelet_index_offset' (a received "
                           "wavelet's high half is ignored)")
    if extent is None:
        raise ProgramError(f"{kind} needs an extent (the number of wavelets)")
    want = InputQueue if kind == fabin_dsd else OutputQueue
    if queue is not None and not isinstance(queue, want):
        raise ProgramError(f"{kind} {qname} takes csl.get_{qname}(n), got {queue!r}")
    q = None
    if queue is not None:
        q = _queue_key(queue, f"{kind} {qname}")[1]
    bound = pb.queues.get(("in" if kind == fabin_dsd else "out", q)) if q is not None else None
    color = None if fabric_color is None else _queue_color(fabric_color, f"{kind} fabric_color")
    if pb.arch == "wse3":
        if q is None:
            raise ProgramError(f"on wse3 a {kind} needs an {qname}, initialised with its color "
                               "(csl.initialize_queue(q, color=c))")
        if bound is None:
            raise ProgramError(f"{kind}: {qname} {q} is not initialised; on wse3 call "
                               "csl.initialize_queue(q, color=c) before using it")
    if color is not None and bound is not None and color != bound:
        raise ProgramError(f"{kind}: fabric_color {color} differs from color {bound} of "
                           f"{qname} {q}")
    color = color if color is not None else bound
    if color is None:
        raise ProgramError(f"{kind} needs a fabric_color (or an {qname} initialised with one)")
    length = _field_expr(extent, u16, "extent")
    if kind == fabin_dsd:
        d = ir.FabIn(color, length, q)
    else:
        d = ir.FabOut(color, length, q, bool(wavelet_index_offset), control)
    return DsdValue(ir.DsdLit(d), kind, None, bool(wavelet_index_offset), d)


def _dsd_arg(d, what: str) -> DsdValue:
    if not isinstance(d, DsdValue):
        raise ProgramError(f"{what} takes a DSD, got {type(d).__name__}")
    return d


def _memory_dsd_arg(d, what: str) -> DsdValue:
    d = _dsd_arg(d, what)
    if d.kind not in _MEMORY_DSDS:
        raise ProgramError(f"{what} applies to memory DSDs, not a {d.kind}")
    return d


def increment_dsd_offset(d: DsdValue, off, dtype: DType) -> DsdValue:
    """`@increment_dsd_offset(d, off, T)`: move the DSD's base by `off` elements of T."""
    d = _memory_dsd_arg(d, "increment_dsd_offset")
    if dtype.bits not in (16, 32):
        raise ProgramError(f"increment_dsd_offset: type {dtype} is not a 16- or 32-bit type")
    return d._derive(ir.IncrementOffset(d.expr, _field_expr(off, i16, "offset increment"),
                                        dtype))


def set_dsd_base_addr(d: DsdValue, base) -> DsdValue:
    """`@set_dsd_base_addr(d, A)`: same access pattern over another array, offset reset to 0."""
    d = _memory_dsd_arg(d, "set_dsd_base_addr")
    sym, off = _base(base)
    if d.dtype is not None and sym.dtype.bits != d.dtype.bits:
        raise ProgramError(f"set_dsd_base_addr: '{sym.name}' holds {sym.dtype}, the DSD "
                           f"addresses {d.dtype} elements")
    return d._derive(ir.SetBase(d.expr, sym.name, off), sym.dtype)


def set_dsd_length(d: DsdValue, n) -> DsdValue:
    """`@set_dsd_length(d, n)` (not for mem4d_dsd; for a fabric DSD, the wavelet count)."""
    d = _dsd_arg(d, "set_dsd_length")
    if d.kind == mem4d_dsd:
        raise ProgramError("set_dsd_length does not apply to a mem4d_dsd")
    return d._derive(ir.SetLength(d.expr, _field_expr(n, u16, "length")))


def set_dsd_stride(d: DsdValue, s) -> DsdValue:
    """`@set_dsd_stride(d, s)` (mem1d_dsd only)."""
    d = _dsd_arg(d, "set_dsd_stride")
    if d.kind != mem1d_dsd:
        raise ProgramError("set_dsd_stride applies to a mem1d_dsd only")
    return d._derive(ir.SetStride(d.expr, _field_expr(s, i8, "stride")))


class FifoHandle:
    """A FIFO (`@allocate_fifo`): usable as a DSD operand; a destination pushes, a source
    pops."""

    def __init__(self, name: str, dtype: DType):
        self.name = name
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"<fifo {self.name}>"


_FIFO_TYPES = (i16, u16, f16, bf16, i32, u32, f32)


def allocate_fifo(buffer, *, activate_push=None, activate_pop=None) -> FifoHandle:
    """`@allocate_fifo(buf, .{ .activate_push = t, .activate_pop = t })`: a FIFO over the whole
    of global array `buffer` (at the top level of the PE program, once per buffer).

    Pushing into an empty FIFO activates local task `activate_push`; popping from a full one
    activates `activate_pop` (a local task ID or a task bound as a local task)."""
    pb = _top_level("allocate_fifo")
    if not isinstance(buffer, SymbolRef) or not buffer.symbol.shape:
        raise ProgramError(f"allocate_fifo takes a global array, got {buffer!r}")
    if buffer.dtype not in _FIFO_TYPES:
        raise ProgramError(f"allocate_fifo: '{buffer.name}' holds {buffer.dtype}; a FIFO holds "
                           f"16- or 32-bit elements ({', '.join(str(t) for t in _FIFO_TYPES)})")
    if buffer.name in pb.fifos:
        raise ProgramError(f"allocate_fifo: '{buffer.name}' already holds a FIFO")
    for what, v in (("activate_push", activate_push), ("activate_pop", activate_pop)):
        if v is not None and not isinstance(v, (TaskId, FnRef)):
            raise ProgramError(f"allocate_fifo {what} takes a local task ID or a task, "
                               f"got {v!r}")
        if isinstance(v, TaskId) and v.kind != "local":
            raise ProgramError(f"allocate_fifo {what} takes a local task ID, got data task ID "
                               f"{v.id}")
    pb.fifos[buffer.name] = (buffer.name, activate_push, activate_pop)
    return FifoHandle(buffer.name, buffer.dtype)


# ------------------------------------------------------------------------------------------------
# DSD operations


def _operand(v, dtype: DType, letter_only=False):
    """Classify an operand: ('D', DsdOperand) | ('p', PtrOperand) | ('s', ScalarOperand)."""
    if isinstance(v, DsdValue):
        return "D", ir.DsdOperand(v.expr), v.dtype
    if isinstance(v, FifoHandle):
        return "D", ir.DsdOperand(ir.FifoRef(v.name)), v.dtype
    if isinstance(v, Pointer):
        sym = v.sym
        if len(v.indices) != len(sym.symbol.shape):
            raise ProgramError(f"pointer to '{sym.name}' must address one element")
        es = tuple(_expr(i, None, f"index of {sym.name}") for i in v.indices)
        return "p", ir.PtrOperand(sym.name, es), sym.dtype
    if dtype.is_int and not dtype.is_signed:
        # integer ops work on raw bit patterns: a signed value is its two's complement
        signed = {16: i16, 32: i32}.get(dtype.bits)
        if isinstance(v, _ExprLike) and v.dtype == signed:
            return "s", ir.ScalarOperand(ir.Bitcast(v._ir(), dtype)), dtype
        if _is_number(v) and not isinstance(v, bool) and -(1 << (dtype.bits - 1)) <= v < 0:
            v = int(v) & ((1 << dtype.bits) - 1)
    return "s", ir.ScalarOperand(_expr(v, dtype, "scalar operand")), dtype


def _check_width(op: str, what: str, have: DType | None, want: DType) -> None:
    if have is not None and have.bits != want.bits:
        raise ProgramError(f"@{op}: {what} addresses {have} elements, but @{op} works on "
                           f"{want} ({want.bits}-bit)")


def _op_config(name: str, operands, async_, activate, unblock, index,
               ut_id=None) -> ir.OpConfig | None:
    """The config struct of a DSD op (spec 5.4) from its keyword arguments."""
    what = f"@{name}"
    if not isinstance(async_, (bool, np.bool_)):
        raise ProgramError(f"{what}: async_ must be True or False, got {async_!r}")
    if activate is not None and unblock is not None:
        raise ProgramError(f"{what}: an operation takes at most one of activate and unblock")
    streams = [v for v in operands if isinstance(v, FifoHandle)
               or (isinstance(v, DsdValue) and v.kind in _FABRIC_DSDS)]
    if async_:
        if not streams:
            raise ProgramError(f"{what}: async_ needs a fabric or FIFO operand (an operation on "
                               "memory only is synchronous)")
        for v in streams:
            if (isinstance(v, DsdValue) and isinstance(v.fabric, ir.FabIn)
                    and v.fabric.queue is None):
                raise ProgramError(f"{what}: an asynchronous operation's fabin_dsd needs an "
                                   "input_queue")
    indexed = [v for v in operands if isinstance(v, DsdValue) and v.indexed]
    if indexed and index is None:
        raise ProgramError(f"{what}: a DSD with wavelet_index_offset needs the operation's "
                           "index (index=...)")
    config = ir.OpConfig(
        async_=bool(async_),
        activate=None if activate is None else ir.Const(
            _task_id(activate, f"{what} activate", local_only=True), u16),
        unblock=None if unblock is None else ir.Const(
            _task_id(unblock, f"{what} unblock", local_only=False), u16),
        index=None if index is None else _expr(index, u16, f"{what} index"),
        ut_id=None if ut_id is None else _ut_expr(ut_id, f"{what} ut_id"))
    return None if config == ir.OpConfig() else config


def _check_streams(name: str, arch: str, dest, srcs) -> None:
    """Directions of fabric operands and the placement rules of FIFOs (spec 7.4, 7.5)."""
    if isinstance(dest, DsdValue) and dest.kind == fabin_dsd:
        raise ProgramError(f"@{name}: a fabin_dsd receives; it cannot be the destination")
    for k, v in enumerate(srcs):
        if isinstance(v, DsdValue) and v.kind == fabout_dsd:
            raise ProgramError(f"@{name}: a fabout_dsd sends; it cannot be source {k + 1}")
    fabins = [v for v in srcs if isinstance(v, DsdValue) and v.kind == fabin_dsd]
    if arch == "wse3" and len(fabins) > 1:
        raise ProgramError(f"@{name}: on wse3 an operation takes at most one fabin_dsd")
    fifos = [k for k, v in enumerate(srcs) if isinstance(v, FifoHandle)]
    if len(srcs) > 1 and len(fifos) > 1:
        raise ProgramError(f"@{name}: at most one source may be a FIFO")
    if len(srcs) > 1 and fifos == [0]:
        raise ProgramError(f"@{name}: a FIFO cannot be the first of several sources")


def _dsd_op(name: str, dest, *srcs, async_=False, activate=None, unblock=None,
            index=None, ut_id=None) -> bool:
    spec = ops.OPS[name]
    body = _body(f"@{name}")
    if len(srcs) != len(spec.srcs):
        raise ProgramError(f"@{name} takes {1 + len(spec.srcs)} operands, got {1 + len(srcs)}")
    dl, dop, dt = _operand(dest, spec.dest)
    if dl == "s":
        raise ProgramError(f"@{name}: the destination must be a DSD or a pointer")
    _check_width(name, "the destination", dt, spec.dest)
    letters, operands = [dl], []
    for k, (s, t) in enumerate(zip(srcs, spec.srcs)):
        letter, o, st = _operand(s, t)
        if letter == "p":
            raise ProgramError(f"@{name}: a pointer is accepted as destination only")
        if letter == "D":
            _check_width(name, f"source {k + 1}", st, t)
        letters.append(letter)
        operands.append(o)
    problem = ops.form_error(name, "".join(letters))
    if problem:
        raise ProgramError(problem)
    _check_streams(name, body.program.arch, dest, srcs)
    config = _op_config(name, (dest,) + srcs, async_, activate, unblock, index, ut_id)
    body.emit(ir.DsdOp(name, dop, tuple(operands), body.program.next_site(), config))
    return True


def _make_op(name: str):
    spec = ops.OPS[name]

    def op(dest, *srcs, async_=False, activate=None, unblock=None, index=None, ut_id=None):
        return _dsd_op(name, dest, *srcs, async_=async_, activate=activate, unblock=unblock,
                       index=index, ut_id=ut_id)

    op.__name__ = name
    op.__qualname__ = name
    op.__doc__ = (f"`@{name}`: destination {spec.dest}, sources "
                  f"{', '.join(map(str, spec.srcs))}; forms {', '.join(spec.forms)}. "
                  "Keyword arguments are the config struct: async_, activate, unblock, index, "
                  "ut_id (wse3).")
    return op


for _name in ops.OPS:
    globals()[_name] = _make_op(_name)


def map(callback, *args) -> None:
    """`@map(callback, inputs..., output)`: call `callback` per element of the DSD inputs.

    `callback` is a `csl.fn` function or a plain Python function of one argument per input;
    if it returns a value the last argument is the output (a DSD or `csl.addr(scalar)`).
    """
    body = _body("@map")
    pb = body.program
    fnref = callback if isinstance(callback, FnRef) else None
    if not args:
        raise ProgramError("@map needs at least one input")
    if fnref is None:
        n_params = len(inspect.signature(callback).parameters)
    else:
        n_params = len(fnref.param_types)
    if len(args) not in (n_params, n_params + 1):
        raise ProgramError(f"@map: callback takes {n_params} inputs, got {len(args)} arguments")
    inputs, output = args[:n_params], (args[n_params] if len(args) > n_params else None)
    if any(isinstance(a, FifoHandle) for a in args):
        raise ProgramError("@map does not take FIFOs")
    if any(isinstance(a, DsdValue) and a.indexed for a in args):
        raise ProgramError("@map takes no index, so no DSD with wavelet_index_offset")
    if any(isinstance(a, DsdValue) and a.kind == fabout_dsd for a in inputs):
        raise ProgramError("@map: a fabout_dsd cannot be an input")
    if isinstance(output, DsdValue) and output.kind == fabin_dsd:
        raise ProgramError("@map: a fabin_dsd cannot be the output")
    if fnref is None and any(isinstance(a, DsdValue) and a.dtype is None for a in inputs):
        raise ProgramError("@map: a fabric input has no element type of its own; give a "
                           "csl.fn callback with typed parameters")
    if not any(isinstance(a, DsdValue) for a in inputs):
        raise ProgramError("@map needs at least one DSD input")
    in_types = []
    in_ops = []
    for a in inputs:
        if isinstance(a, DsdValue):
            in_types.append(a.dtype)
            in_ops.append(ir.DsdOperand(a.expr))
        else:
            e = _expr(a)
            in_types.append(e.dtype)
            in_ops.append(ir.ScalarOperand(e))
    if fnref is None:
        fnref = pb.define_fn(callback, f"map{pb.next_site()}", tuple(in_types), None,
                             infer_ret=True)
    for t, want in zip(in_types, fnref.param_types):
        if isinstance(want, DType) and t is not None and t.bits != want.bits:
            raise ProgramError(f"@map: callback parameter of type {want} given {t} elements")
    ret = fnref.ret
    out_op = None
    if ret is not None:
        if output is None:
            raise ProgramError("@map: the callback returns a value, so an output is required")
        letter, out_op, ot = _operand(output, ret)
        if letter == "s":
            raise ProgramError("@map output must be a DSD or a pointer")
        if ot is not None and ot.bits != ret.bits:
            raise ProgramError(f"@map: output holds {ot}, callback returns {ret}")
    elif output is not None:
        raise ProgramError("@map: the callback returns void, so no output is taken")
    body.emit(ir.Map(fnref.name, tuple(in_ops), out_op, pb.next_site()))


# ------------------------------------------------------------------------------------------------
# Colors, queues and tasks


@dataclass(frozen=True)
class Color:
    """A routable color (`@get_color(n)`), 0..23. Where a color is expected, a plain integer
    is accepted too."""

    id: int


@dataclass(frozen=True)
class InputQueue:
    """An input queue (`@get_input_queue(n)`)."""

    id: int


@dataclass(frozen=True)
class OutputQueue:
    """An output queue (`@get_output_queue(n)`)."""

    id: int


@dataclass(frozen=True)
class UtId:
    """A microthread ID (`@get_ut_id(n)`, wse3): `id` is its number, 0..7, or the IR u16
    expression of a runtime one."""

    id: int | ir.Expr


def get_ut_id(n) -> UtId:
    """`@get_ut_id(n)` (wse3 only): microthread n, 0 to 7. A runtime n must be a u16 (its
    value is not checked). An operation names the microthread it runs on with `ut_id=`; two
    operations running at once must not name the same one (a device fault); `block(ut)`
    suspends the operations that name it until `unblock(ut)`."""
    arch = _program().arch
    problem = ut_id_error(arch, None)
    if problem:
        raise ProgramError(f"get_ut_id: {problem}")
    if isinstance(n, _ExprLike):
        if n.dtype is not u16:
            raise ProgramError(f"get_ut_id takes a u16 at run time, got a {n.dtype} (convert "
                               "with csl.as_)")
        return UtId(n._ir())
    n = _comptime_int(n, "get_ut_id")
    problem = ut_id_error(arch, n)
    if problem:
        raise ProgramError(f"get_ut_id: {problem}")
    return UtId(n)


def _ut_expr(v, what: str) -> ir.Expr:
    """The u16 IR expression of microthread `v` where an operation or `block` names it."""
    arch = _program().arch
    problem = ut_id_error(arch, None)
    if problem:
        raise ProgramError(f"{what}: {problem}")
    if not isinstance(v, UtId):
        raise ProgramError(f"{what} takes a microthread ID (csl.get_ut_id(n)), got {v!r}")
    n = v.id if isinstance(v.id, int) else None
    # every dsl program is compiled with memcpy
    problem = ut_id_error(arch, n, memcpy=True)
    if problem:
        raise ProgramError(f"{what}: {problem}")
    return ir.Const(n, u16) if n is not None else v.id


def _error():
    """The error class of the current context: LayoutError in a layout, else ProgramError."""
    stack = _stack()
    return LayoutError if stack and isinstance(stack[-1], _LayoutBuilder) else ProgramError


def _arch() -> str | None:
    pb = _current(_ProgramBuilder)
    return pb.arch if pb is not None else None


def _queue_counts() -> dict:
    """The queues of the program's architecture (outside a program: the most of any)."""
    return QUEUE_COUNTS.get(_arch(), QUEUE_COUNTS["wse3"])


def _comptime_int(v, what: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise _error()(f"{what} takes a comptime integer, got {v!r}")
    return int(v)


def get_color(n: int) -> Color:
    """`@get_color(n)`: color n, 0 to 23."""
    n = _comptime_int(n, "get_color")
    if not 0 <= n <= 23:
        raise _error()(f"color {n} is out of range (0 to 23)")
    return Color(n)


def _queue_color(v, what: str) -> int | ir.PeValue:
    """The color of a fabric DSD or a queue: a number, or a per-PE color's table read (the
    engine picks each PE's queue by it)."""
    if isinstance(v, _PerPeColor):
        return ir.PeValue(v.table, u16)
    return _color(v, what)


def _color(v, what: str, err=None) -> int:
    """The number of a color given as a Color or an integer; memcpy's colors are refused."""
    err = err or _error()
    if isinstance(v, _PerPeColor):
        raise err(f"{what}: the per-PE color {v.table} is used where its number is needed")
    if isinstance(v, Color):
        n = v.id
    elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        n = int(v)
        if not 0 <= n <= 23:
            raise err(f"{what}: color {n} is out of range (0 to 23)")
    else:
        raise err(f"{what} takes a color (csl.get_color(n)), got {v!r}")
    if n in MEMCPY_COLORS:
        raise err(f"{what}: color {n} is reserved by memcpy (colors 21, 22, 23)")
    return n


def get_input_queue(n: int) -> InputQueue:
    """`@get_input_queue(n)`: input queues are 0 to 7."""
    n = _comptime_int(n, "get_input_queue")
    hi = _queue_counts()["input"] - 1
    if not 0 <= n <= hi:
        raise ProgramError(f"input queue {n} is out of range (0 to {hi})")
    return InputQueue(n)


def get_output_queue(n: int) -> OutputQueue:
    """`@get_output_queue(n)`: output queues are 0 to 5 on wse2, 0 to 7 on wse3."""
    n = _comptime_int(n, "get_output_queue")
    hi = _queue_counts()["output"] - 1
    if not 0 <= n <= hi:
        raise ProgramError(f"output queue {n} is out of range (0 to {hi})"
                           + (" on wse2" if hi == 5 else ""))
    return OutputQueue(n)


def _queue_key(q, what: str) -> tuple[str, int]:
    """("in" | "out", id) of a queue the program may use: memcpy's are refused (spec 4)."""
    if not isinstance(q, (InputQueue, OutputQueue)):
        raise ProgramError(f"{what} takes a queue (csl.get_input_queue(n) or "
                           f"csl.get_output_queue(n)), got {q!r}")
    kind = "in" if isinstance(q, InputQueue) else "out"
    name = "input" if kind == "in" else "output"
    # every dsl program is compiled with memcpy
    if q.id in MEMCPY_QUEUES.get(_arch(), MEMCPY_QUEUES["wse2"])[name]:
        raise ProgramError(f"{what}: {name} queue {q.id} is reserved by memcpy")
    return kind, q.id


def _top_level(what: str) -> _ProgramBuilder:
    pb = _program()
    if _stack()[-1] is not pb:
        raise ProgramError(f"{what} belongs at the top level of the PE program (comptime)")
    return pb


def initialize_queue(q, *, color=None, priority: str | None = None) -> None:
    """`@initialize_queue(q, .{ .color = c, .priority = ... })`: bind a queue to its color,
    once per queue, at the top level of the PE program.

    wse2: an input queue needs `color` and may set `priority` ("high", "medium" or "low"; the
    emulator does not model priorities); an output queue takes no config (its color comes from
    the fabout DSD). wse3: both kinds need `color`; no `priority`.
    """
    pb = _top_level("initialize_queue")
    key = _queue_key(q, "initialize_queue")
    name = f"{'input' if key[0] == 'in' else 'output'} queue {key[1]}"
    if key in pb.queues:
        raise ProgramError(f"initialize_queue: {name} is initialised twice")
    if priority is not None:
        if pb.arch != "wse2" or key[0] != "in":
            raise ProgramError(f"initialize_queue: {name} takes no priority on {pb.arch} (only "
                               "wse2 input queues have one)")
        if priority not in ("high", "medium", "low"):
            raise ProgramError(f"initialize_queue: priority must be 'high', 'medium' or 'low', "
                               f"got {priority!r}")
    if pb.arch == "wse2" and key[0] == "out":
        if color is not None:
            raise ProgramError(f"initialize_queue: on wse2 {name} takes no config; its color "
                               "comes from the fabout_dsd")
        pb.queues[key] = None
        return
    if color is None:
        raise ProgramError(f"initialize_queue: {name} needs a color "
                           "(csl.initialize_queue(q, color=c))")
    c = _queue_color(color, f"initialize_queue of {name}")
    if key[0] == "in":
        other = [k for k, v in pb.queues.items() if k[0] == "in" and v == c]
        if other:
            raise ProgramError(f"initialize_queue: color {c} is bound to input queue "
                               f"{other[0][1]} already; it cannot also feed {name}")
    pb.queues[key] = c


@dataclass(frozen=True)
class TaskId:
    """A task ID: `kind` "local" (`@get_local_task_id(n)`), "data"
    (`@get_data_task_id(c | q)`; `source` is that Color or InputQueue) or "control"
    (`@get_control_task_id(n)`)."""

    kind: str
    id: int
    source: Color | InputQueue | None = None


def get_local_task_id(n: int) -> TaskId:
    """`@get_local_task_id(n)`: local task IDs are 0..30 on wse2, 8..30 on wse3."""
    if not isinstance(n, (int, np.integer)) or not 0 <= int(n) <= 30:
        raise ProgramError(f"local task ID {n!r} is out of range (0 to 30)")
    if _arch() == "wse3" and int(n) < 8:
        raise ProgramError(f"local task ID {n} is out of range on wse3 (8 to 30; 0 to 7 are "
                           "data task IDs)")
    return TaskId("local", int(n))


def get_control_task_id(n: int) -> TaskId:
    """`@get_control_task_id(n)`: control task IDs are 0..63."""
    if not isinstance(n, (int, np.integer)) or not 0 <= int(n) <= MAX_CONTROL_TASK_ID:
        raise ProgramError(f"control task ID {n!r} is out of range (0 to "
                           f"{MAX_CONTROL_TASK_ID})")
    return TaskId("control", int(n))


def get_data_task_id(source) -> TaskId:
    """`@get_data_task_id(c)` on wse2 (the ID is the color's number) or
    `@get_data_task_id(q)` on wse3 (the ID is the input queue's number)."""
    arch = _program().arch
    if arch == "wse2":
        if isinstance(source, InputQueue):
            raise ProgramError("get_data_task_id: on wse2 a data task ID comes from a color, "
                               "not an input queue")
        c = _color(source, "get_data_task_id")
        return TaskId("data", c, Color(c))
    if not isinstance(source, InputQueue):
        raise ProgramError(f"get_data_task_id: on wse3 a data task ID comes from an input "
                           f"queue (csl.get_input_queue(n)), got {source!r}")
    _queue_key(source, "get_data_task_id")
    return TaskId("data", source.id, source)


def _task_signature(pyfn) -> tuple:
    """The parameter types of a task function (parameters with defaults are not parameters)."""
    try:
        sig = inspect.signature(pyfn, eval_str=True)
    except NameError as e:
        raise ProgramError(f"annotations of {pyfn.__name__}: {e}") from None
    types = []
    for p in sig.parameters.values():
        if p.default is not inspect.Parameter.empty:
            continue
        if not isinstance(p.annotation, DType):
            raise ProgramError(f"parameter '{p.name}' of task {pyfn.__name__} needs a type "
                               "annotation (a csl type): data task parameters split the "
                               "wavelet")
        types.append(p.annotation)
    return tuple(types)


def task(pyfn):
    """Declare a task of the current PE program (a decorator). A local task takes no
    parameters (bind it with `bind_local_task`); a data task takes the parts of its wavelet,
    annotated with their types (bind it with `bind_data_task`)."""
    types = _task_signature(pyfn)
    ref = _program().define_fn(pyfn, pyfn.__name__, types, None)
    ref.is_task = True
    return ref


def _bind_check(t, what: str) -> _ProgramBuilder:
    pb = _top_level(what)
    if not isinstance(t, FnRef) or not getattr(t, "is_task", False):
        raise ProgramError(f"{what} takes a function declared with csl.task")
    return pb


def _check_task_id(ident, kind: str, what: str, how: str) -> None:
    if not isinstance(ident, TaskId) or ident.kind != kind:
        raise ProgramError(f"{what} takes a {kind} task ID ({how})")


def _bind(pb: _ProgramBuilder, task: ir.Task) -> None:
    if task.id in pb.tasks:
        raise ProgramError(f"task ID {task.id} is bound twice")
    pb.tasks[task.id] = task


def bind_local_task(t, ident: TaskId) -> None:
    """`@bind_local_task(task, id)` (at the top level of the PE program)."""
    pb = _bind_check(t, "bind_local_task")
    if t.param_types:
        raise ProgramError(f"local task {t.name} takes no parameters; a task with parameters "
                           "is a data task (csl.bind_data_task)")
    _check_task_id(ident, "local", "bind_local_task", "csl.get_local_task_id(n)")
    if ident.id in MEMCPY_LOCAL_IDS:
        raise ProgramError(f"local task ID {ident.id} is reserved by "
                           f"{MEMCPY_LOCAL_IDS[ident.id]}")
    _bind(pb, ir.Task(t.name, "local", ident.id))


def bind_data_task(t, ident: TaskId) -> None:
    """`@bind_data_task(task, id)` (at the top level of the PE program): the task runs once
    per wavelet arriving on the ID's color (wse2) or input queue (wse3). Its parameters take
    one 32-bit value, one 16-bit value (the low half) or two 16-bit values (low, high half)."""
    pb = _bind_check(t, "bind_data_task")
    _check_task_id(ident, "data", "bind_data_task", "csl.get_data_task_id(...)")
    try:
        data_task_args(tuple(p.bits for p in t.param_types))
    except ValueError as e:
        raise ProgramError(f"bind_data_task: task {t.name}: {e}") from None
    queued = isinstance(ident.source, InputQueue)
    _bind(pb, ir.Task(t.name, "data", ident.id, -1 if queued else ident.id))
    if queued:
        pb.data_queues[ident.id] = ident.source.id   # its color is known once initialised


def bind_control_task(t, ident: TaskId) -> None:
    """`@bind_control_task(task, id)` (at the top level of the PE program): the task runs once
    per control wavelet reaching the PE whose payload names `id` (spec 6.6); its parameters
    split that payload as a data task's do, or it takes none."""
    pb = _bind_check(t, "bind_control_task")
    _check_task_id(ident, "control", "bind_control_task", "csl.get_control_task_id(n)")
    if t.param_types:
        try:
            data_task_args(tuple(p.bits for p in t.param_types))
        except ValueError as e:
            raise ProgramError(f"bind_control_task: task {t.name}: {e}") from None
    if ident.id in MEMCPY_CONTROL_IDS:
        raise ProgramError(f"control task ID {ident.id} is reserved by memcpy (IDs "
                           f"{MEMCPY_CONTROL_IDS[0]} to {MEMCPY_CONTROL_IDS[-1]})")
    _bind(pb, ir.Task(t.name, "control", ident.id))


class control:
    """The `<control>` library: payloads of control wavelets (spec 6.6), as u32 numbers."""

    class opcode(enum.IntEnum):
        NOP = 0
        SWITCH_ADV = 1
        SWITCH_RST = 2
        TEARDOWN = 3

    MAX_CMDS = MAX_COMMANDS

    @staticmethod
    def _entry(ident) -> int:
        if ident is None:
            return NO_ENTRYPOINT
        if not isinstance(ident, TaskId) or ident.kind != "control":
            raise ProgramError("a control payload's entrypoint is a control task ID "
                               f"(csl.get_control_task_id(n)) or None, got {ident!r}")
        return ident.id

    @staticmethod
    def encode_control_task_payload(entrypoint: TaskId) -> int:
        """A payload that activates control task `entrypoint` on every PE it reaches."""
        return control_payload(control._entry(entrypoint))

    @staticmethod
    def encode_single_payload(cmd, ce_ignore: bool, entrypoint, data: int) -> int:
        """One command, an optional control task (None: none) and its 16-bit data."""
        return control_payload(control._entry(entrypoint), [(cmd, ce_ignore)]) | \
            (int(data) & 0xFFFF)

    @staticmethod
    def encode_payload(n: int, cmds, ce_ignore, ce_ignore_remaining: bool, entrypoint) -> int:
        """`n` commands with their ce_ignore bits; the rest NOPs with ce_ignore_remaining."""
        try:
            return control_payload(control._entry(entrypoint),
                                   list(zip(list(cmds)[:n], list(ce_ignore)[:n])),
                                   ce_ignore_remaining)
        except ValueError as e:
            raise ProgramError(str(e)) from None


def _task_id(v, what: str, *, local_only: bool) -> int:
    """The task ID meant by a TaskId, a bound task, or (unless `local_only`) the color (wse2)
    or input queue (wse3) of a data task."""
    if isinstance(v, FnRef):
        pb = _program()
        found = [t for t in pb.tasks.values() if t.fn == v.name]
        if not found:
            raise ProgramError(f"{what}: task {v.name} is not bound to a task ID")
        if local_only and found[0].kind != "local":
            raise ProgramError(f"{what} takes a local task; {v.name} is a data task")
        return found[0].id
    if isinstance(v, TaskId):
        if local_only and v.kind != "local":
            raise ProgramError(f"{what} takes a local task ID, got data task ID {v.id}")
        return v.id
    if not local_only and isinstance(v, (Color, InputQueue)):
        arch = _program().arch
        if isinstance(v, Color) and arch != "wse2":
            raise ProgramError(f"{what}: on {arch} a data task is named by its input queue, "
                               "not a color")
        if isinstance(v, InputQueue) and arch != "wse3":
            raise ProgramError(f"{what}: on {arch} a data task is named by its color, not an "
                               "input queue")
        return v.id
    wanted = "a local task ID or a bound local task" if local_only else (
        "a task ID, a bound task, a color (wse2) or an input queue (wse3)")
    raise ProgramError(f"{what} takes {wanted}, got {v!r}")


def _task_ctl(op: str, ident) -> None:
    if isinstance(ident, UtId) and op != "activate":
        _ut_ctl(op, ident)
        return
    n = _task_id(ident, f"@{op}", local_only=op == "activate")
    stack = _stack()
    if stack and isinstance(stack[-1], _BodyBuilder):
        stack[-1].emit(ir.TaskCtl(op, ir.Const(n, u16)))
        return
    pb = _program()
    if op == "activate":
        pb.active.add(n)
    elif op == "block":
        pb.blocked.add(n)
    else:
        pb.blocked.discard(n)


def _ut_ctl(op: str, ut: UtId) -> None:
    """`block(ut)` / `unblock(ut)` of a microthread (wse3, spec 5.2): at the top level, its
    state at start-up; in a body, at run time."""
    e = _ut_expr(ut, f"@{op}")
    stack = _stack()
    if stack and isinstance(stack[-1], _BodyBuilder):
        stack[-1].emit(ir.TaskCtl(op, e, "ut"))
        return
    pb = _program()
    if op == "block":
        pb.blocked_uts.add(ut.id)
    else:
        pb.blocked_uts.discard(ut.id)


def activate(ident) -> None:
    """`@activate(id)` of a local task: at the top level, the task starts active; in a body,
    at run time."""
    _task_ctl("activate", ident)


def block(ident) -> None:
    """`@block(id)`: the task does not run until unblocked. A color (wse2) or input queue
    (wse3) names its data task ID; a microthread (`get_ut_id(n)`, wse3) suspends the
    operations that run on it."""
    _task_ctl("block", ident)


def unblock(ident) -> None:
    """`@unblock(id)`; a color (wse2) or input queue (wse3) names its data task ID; a
    microthread (wse3) resumes the operations that run on it."""
    _task_ctl("unblock", ident)


def unblock_cmd_stream() -> None:
    """`sys_mod.unblock_cmd_stream()`: let the host's next command proceed on this PE."""
    _body("unblock_cmd_stream").emit(ir.UnblockCmdStream())


# ------------------------------------------------------------------------------------------------
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


def range(*args):
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
    r = builtins.range(*(int(a) for a in args))
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


# ------------------------------------------------------------------------------------------------
# Builders


class _BodyBuilder:
    """Collects the statements of one function body while it is traced."""

    def __init__(self, program: _ProgramBuilder, fn_name: str, ret):
        self.program = program
        self.fn_name = fn_name
        self.ret = ret
        self._blocks: list[list] = [[]]

    def emit(self, stmt) -> None:
        self._blocks[-1].append(stmt)

    def last(self):
        return self._blocks[-1][-1] if self._blocks[-1] else None

    def drop_last(self) -> None:
        self._blocks[-1].pop()

    def push(self) -> None:
        self._blocks.append([])

    def pop(self) -> tuple:
        return tuple(self._blocks.pop())

    def fresh(self, prefix: str) -> str:
        return f"%{prefix}{next(self.program.counter)}"


class _ProgramBuilder:
    """Collects the declarations of one PE program instantiation."""

    def __init__(self, name: str, arch: str = "wse2"):
        self.name = name
        self.arch = arch
        self.symbols: dict[str, ir.Symbol] = {}
        self.dsd_vars: dict[str, ir.DsdLit] = {}
        self.fns: dict[str, FnRef] = {}
        self.traced: dict[str, ir.Function] = {}
        self.exports: list = []
        self.tasks: dict[int, ir.Task] = {}
        self.active: set[int] = set()
        self.blocked: set[int] = set()
        self.blocked_uts: set[int] = set()                    # microthreads (wse3)
        self.queues: dict[tuple[str, int], int | None] = {}   # ("in" | "out", id) -> color
        self.data_queues: dict[int, int] = {}                  # wse3 data task ID -> queue
        self.routes: dict[int, tuple] = {}                     # color -> (rx, tx)
        self.fifos: dict[str, tuple] = {}                      # name -> (buffer, push, pop)
        self.counter = itertools.count()
        self._sites = itertools.count(1)

    def next_site(self) -> int:
        return next(self._sites)

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ProgramError(f"a global needs a non-empty string name, got {name!r}")
        if name in self.symbols or name in self.dsd_vars or name in self.fns:
            raise ProgramError(f"'{name}' is declared twice")

    def add_symbol(self, sym: ir.Symbol) -> SymbolRef:
        self._check_name(sym.name)
        self.symbols[sym.name] = sym
        return SymbolRef(sym, self)

    def add_dsd_var(self, name: str, init: DsdValue) -> DsdVarRef:
        self._check_name(name)
        if not isinstance(init.expr, ir.DsdLit) or _has_runtime_field(init.expr.dsd):
            raise ProgramError(f"DSD variable '{name}' needs a comptime-known initial DSD")
        self.dsd_vars[name] = init.expr
        return DsdVarRef(name, init)

    def define_fn(self, pyfn, name, param_types, ret, infer_ret=False) -> FnRef:
        self._check_name(name)
        ref = FnRef(name, pyfn, param_types, ret, self)
        ref.infer_ret = infer_ret
        self.fns[name] = ref
        if infer_ret:
            self.trace(ref)
        return ref

    def trace(self, ref: FnRef) -> None:
        if ref.name in self.traced:
            return
        body = _BodyBuilder(self, ref.name, ref.ret)
        params = []
        args = []
        for k, t in enumerate(ref.param_types):
            pname = f"%arg{k}_{ref.name}"
            params.append((pname, t))
            if t == "dsd":
                # the element type of a DSD parameter is known only at a call: checked there
                args.append(DsdValue(ir.DsdLocal(pname), mem1d_dsd, None))
            else:
                args.append(Val(ir.Local(pname, t)))
        _stack().append(body)
        try:
            result = ref.pyfn(*args)
        finally:
            _stack().pop()
        if getattr(ref, "infer_ret", False) and result is not None:
            ref.ret = _expr(result).dtype
            body.ret = ref.ret
        if ref.ret is not None:
            if result is None:
                last = body.last()
                if not isinstance(last, ir.Return):
                    raise ProgramError(f"{ref.name} must return a {ref.ret}")
            else:
                body.emit(ir.Return(_expr(result, ref.ret, f"return value of {ref.name}")))
        elif result is not None:
            raise ProgramError(f"{ref.name} is declared void but returned a value; annotate "
                               "its return type")
        self.traced[ref.name] = ir.Function(ref.name, tuple(params), ref.ret, body.pop())

    def build(self) -> ir.PeProgram:
        for ref in list(self.fns.values()):
            self.trace(ref)
        names = {e.name for e in self.exports}
        if len(names) != len(self.exports):
            dup = [n for n in names if sum(e.name == n for e in self.exports) > 1]
            raise ProgramError(f"'{dup[0]}' is exported twice")
        return ir.PeProgram(
            name=self.name,
            symbols=tuple(self.symbols.values()),
            dsd_vars=tuple(self.dsd_vars.items()),
            functions=tuple(self.traced[n] for n in self.fns),
            exports=tuple(self.exports),
            tasks=tuple(self._data_task_colors(t) for t in self.tasks.values()),
            active=tuple(sorted(self.active)),
            blocked=tuple(sorted(self.blocked)),
            routes=tuple(sorted(self.routes.items())),
            fifos=tuple(ir.Fifo(name, buf, self._hook(push, name, "activate_push"),
                                self._hook(pop, name, "activate_pop"))
                        for name, (buf, push, pop) in self.fifos.items()),
            queues=tuple(("input" if kind == "in" else "output", q, color)
                         for (kind, q), color in sorted(self.queues.items())
                         if color is not None),
            blocked_uts=tuple(sorted(self.blocked_uts)),
        )

    def _data_task_colors(self, t: ir.Task) -> ir.Task:
        """A wse3 data task gets the color its input queue was initialised with."""
        q = self.data_queues.get(t.id) if t.kind == "data" else None
        if q is None:
            return t
        color = self.queues.get(("in", q))
        if color is None:
            raise ProgramError(f"data task {t.fn} is bound to input queue {q}, which is never "
                               "initialised (csl.initialize_queue(q, color=c))")
        return ir.Task(t.fn, t.kind, t.id, color)

    def _hook(self, v, fifo: str, what: str) -> int | None:
        """A FIFO hook's local task ID (a task bound anywhere in the program)."""
        if v is None:
            return None
        return _task_id(v, f"allocate_fifo({fifo}) {what}", local_only=True)


def _has_runtime_field(d) -> bool:
    if isinstance(d, ir.Mem1d):
        fields = (d.offset, d.stride, d.length)
    elif isinstance(d, ir.Mem4d):
        fields = (d.offset,)
    else:
        fields = (d.length,)
    return not all(isinstance(f, ir.Const) for f in fields)


def export_symbol(target, name: str | None = None) -> None:
    """`@export_symbol(sym, name)`: advertise a global (or `csl.addr(...)`) or a function."""
    pb = _program()
    if _stack()[-1] is not pb:
        raise ProgramError("export_symbol belongs at the top level of the PE program")
    if isinstance(target, FnRef):
        if target.name not in pb.fns:
            raise ProgramError(f"'{target.name}' is not a function of this program")
        pb.exports.append(ir.ExportFunc(name or target.name, target.name))
        return
    sym, off = _base(target)
    pb.exports.append(ir.ExportData(name or sym.name, sym.name, off))


def build_pe_program(pe_program: Callable, params: dict[str, Any], name: str,
                     arch: str = "wse2") -> ir.PeProgram:
    """Run a PE program function with its params and return its IR (for `arch`)."""
    pb = _ProgramBuilder(name, arch)
    _stack().append(pb)
    try:
        pe_program(**params)
        return pb.build()
    except TypeError as e:
        if "argument" in str(e) and pe_program.__name__ in str(e):
            raise ProgramError(f"PE program {pe_program.__name__}: {e}") from None
        raise
    finally:
        _stack().remove(pb)


# ------------------------------------------------------------------------------------------------
# Layout


@dataclass(frozen=True)
class PointerType:
    """The type `[*]T` of an exported data name."""

    dtype: DType


@dataclass(frozen=True)
class FnType:
    """The type `fn(T1, ...) void` of an exported function."""

    params: tuple[DType, ...]


def pointer(dtype: DType) -> PointerType:
    """`[*]T`."""
    return PointerType(dtype)


def fn_type(*params: DType) -> FnType:
    """`fn(T1, ...) void`."""
    return FnType(tuple(params))


class _LayoutBuilder:
    def __init__(self):
        self.rect: tuple[int, int] | None = None
        self.tiles: dict[tuple[int, int], tuple[Callable, dict]] = {}
        self.exports: dict[str, ir.ExportName] = {}
        self.routes: dict[tuple[int, int, int], tuple] = {}


def _layout() -> _LayoutBuilder:
    b = _current(_LayoutBuilder)
    if b is None:
        raise LayoutError("layout calls belong inside the layout function given to csl.compile")
    return b


def set_rectangle(width: int, height: int) -> None:
    """`@set_rectangle(w, h)`: exactly once, before any set_tile_code."""
    lb = _layout()
    if lb.rect is not None:
        raise LayoutError("@set_rectangle called twice")
    if int(width) < 1 or int(height) < 1:
        raise LayoutError(f"@set_rectangle({width}, {height}): dimensions must be positive")
    lb.rect = (int(width), int(height))


def set_tile_code(x: int, y: int, pe_program: Callable, params: dict | None = None) -> None:
    """`@set_tile_code(x, y, program, params)`: once per coordinate of the rectangle."""
    lb = _layout()
    if lb.rect is None:
        raise LayoutError("@set_tile_code before @set_rectangle")
    w, h = lb.rect
    if not (0 <= x < w and 0 <= y < h):
        raise LayoutError(f"@set_tile_code({x}, {y}) is outside the {w}x{h} rectangle")
    if (x, y) in lb.tiles:
        raise LayoutError(f"@set_tile_code({x}, {y}) called twice")
    lb.tiles[(x, y)] = (pe_program, dict(params or {}))


def _ports(v, what: str, err) -> tuple[str, ...]:
    """Router ports given as one direction or a sequence of them, as sorted unique names."""
    items = (v,) if isinstance(v, str) else v
    try:
        items = tuple(items)
    except TypeError:
        raise err(f"{what} takes directions ({', '.join(_DIRECTIONS)}), got {v!r}") from None
    for d in items:
        if d not in _DIRECTIONS:
            raise err(f"{what} takes directions ({', '.join(_DIRECTIONS)}), got {d!r}")
    return tuple(sorted(set(items)))


def _route(color, rx, tx, what: str, err) -> tuple[int, tuple]:
    c = _color(color, what, err)
    return c, (_ports(rx, f"{what} rx", err), _ports(tx, f"{what} tx", err))


def set_color_config(x: int, y: int, color, *, rx=(), tx=()) -> None:
    """`@set_color_config(x, y, color, .{ .routes = .{ .rx = rx, .tx = tx } })` in the layout:
    PE (x, y)'s router accepts `color` from the ports `rx` and copies it to the ports `tx`
    (each a direction, csl.NORTH ... csl.RAMP, or a sequence of them). Once per PE and color.
    """
    lb = _layout()
    if lb.rect is None:
        raise LayoutError("@set_color_config before @set_rectangle")
    w, h = lb.rect
    x = _comptime_int(x, "@set_color_config x")
    y = _comptime_int(y, "@set_color_config y")
    if not (0 <= x < w and 0 <= y < h):
        raise LayoutError(f"@set_color_config({x}, {y}, ...) is outside the {w}x{h} rectangle")
    c, route = _route(color, rx, tx, "@set_color_config", LayoutError)
    if (x, y, c) in lb.routes:
        raise LayoutError(f"@set_color_config: color {c} at PE ({x}, {y}) is configured twice")
    lb.routes[(x, y, c)] = route


def set_local_color_config(color, *, rx=(), tx=()) -> None:
    """`@set_local_color_config(color, .{ .routes = .{ .rx = rx, .tx = tx } })` at the top
    level of a PE program: the route of `color` at every PE running this program."""
    pb = _top_level("set_local_color_config")
    c, route = _route(color, rx, tx, "set_local_color_config", ProgramError)
    if c in pb.routes:
        raise ProgramError(f"set_local_color_config: color {c} is configured twice")
    pb.routes[c] = route


def export_name(name: str, type_, mutable: bool | None = None) -> None:
    """`@export_name(name, type, mutable)`: `type` is `csl.pointer(T)` or `csl.fn_type(...)`."""
    lb = _layout()
    if name in lb.exports:
        raise LayoutError(f"@export_name('{name}') called twice")
    if isinstance(type_, PointerType):
        if mutable is None:
            raise LayoutError(f"@export_name('{name}'): data names need a mutability")
        lb.exports[name] = ir.ExportName(name, "data", type_.dtype, bool(mutable))
    elif isinstance(type_, FnType):
        if len(type_.params) > 15:
            raise LayoutError(f"@export_name('{name}'): functions take at most 15 params")
        lb.exports[name] = ir.ExportName(name, "func", None, False, type_.params)
    else:
        raise LayoutError(f"@export_name('{name}'): type must be csl.pointer(T) or "
                          f"csl.fn_type(...), got {type_!r}")


def _freeze(v):
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, np.ndarray):
        return ("ndarray", v.dtype.str, v.shape, v.tobytes())
    hash(v)
    return v


def _stream_colors(colors, what: str) -> tuple[int, ...]:
    colors = (colors,) if isinstance(colors, (Color, int, np.integer)) else tuple(colors)
    if len(colors) > 4:
        raise LayoutError(f"{what}: memcpy streams on at most 4 colors, got {len(colors)}")
    out = tuple(_color(c, what, LayoutError) for c in colors)
    if len(set(out)) != len(out):
        raise LayoutError(f"{what}: color {sorted(c for c in out if out.count(c) > 1)[0]} "
                          "is given twice")
    return out


class _PerPeColor:
    """A PE program param whose color differs between tiles, traced as a per-PE table read:
    a fabric DSD's `fabric_color` takes it (each PE uses its own color's queue); any use
    that needs the color's number (a route, a data task, a queue's color) raises, and
    `compile` traces per color instead."""

    def __init__(self, table: str):
        self.table = table


class _PerPeParam:
    """A PE program param whose number differs between tiles, traced as a per-PE table read.

    `compile` passes it in place of the number while tracing a tile class. It becomes a runtime
    value where the number would become a constant (`_expr`: an assignment, an operand beside
    a runtime value, a condition), of the type the number would take there, if every tile's
    number converts to it (`csl.as_` converts it at run time). Any use that needs the number
    itself (Python arithmetic, comparison or truth, `range`, a size, a color) raises, and
    `compile` traces per value instead.
    """

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, table: str, kind: type, extremes: tuple, default: DType | None):
        self.table = table
        self.kind = kind                # bool, int or float: the tiles' numbers
        self.extremes = extremes        # (smallest, largest) of them
        self.default = default          # the type `_expr` gives all of them, if one

    def expr(self, dtype: DType | None, what: str) -> ir.PeValue:
        t = dtype if dtype is not None else self.default
        if t is None or (self.kind is float and t is not f32):
            raise ProgramError(f"{what}: the per-PE param {self.table} has no one type here")
        for v in self.extremes:
            _const(v, t)
        return ir.PeValue(self.table, t)

    def _compare(self, other):
        if isinstance(other, _ExprLike):
            return NotImplemented       # the runtime operand's reflected operator traces it
        raise ProgramError(f"the per-PE param {self.table} is compared as a Python number")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _compare  # type: ignore[assignment]

    def __bool__(self):
        raise ProgramError(f"the per-PE param {self.table} is used as a Python truth value")


def _number_key(v) -> tuple:
    """`(kind, value)` of a Python or numpy number, kind being bool, int or float."""
    t = type(v)
    if t is int or t is float or t is bool:
        return t, v
    kind = bool if isinstance(v, np.bool_) else int if isinstance(v, np.integer) else float
    return kind, kind(v)


def _per_pe_numbers(keys: list) -> tuple | None:
    """The kind, table type, `_expr` type (None where the numbers take different ones),
    extremes and `[n]` table entries of a param's numbers, given as `_number_key`s (one per
    tile); None where they have no one kind or do not fit a 32-bit table."""
    kinds = {kind for kind, _ in keys}
    if len(kinds) != 1:
        return None
    (kind,) = kinds
    raw = np.asarray([v for _, v in keys])
    lo, hi = raw.min().item(), raw.max().item()
    if kind is bool:
        t, default = bool_, bool_
    elif kind is float:
        t, default = f32, f32
    elif -(2**31) <= lo and hi < 2**31:
        t, default = i32, i32
    elif 0 <= lo and hi < 2**32:
        t, default = u32, (u32 if lo >= 2**31 else None)
    else:
        return None
    return kind, t, default, (lo, hi), raw.astype(t.np)


def _tile_groups(tiles: dict) -> list:
    """The layout's tiles as `wsejax.tile_classes` groups: one per PE program and params
    other than numbers (a tile with unhashable params alone), declaring the numbers that vary
    and, where they can be, their per-PE stand-ins (tables `<function name>:<param>`)."""
    from wsejax.tile_classes import Group, TableNames, vary_color

    grouped: dict = {}
    for (x, y), (prog, p) in sorted(tiles.items(), key=lambda t: (t[0][1], t[0][0])):
        try:
            shape = tuple(sorted((k, None if _is_number(v) or isinstance(v, Color)
                                  else _freeze(v)) for k, v in p.items()))
        except TypeError:
            shape = (x, y)
        grouped.setdefault((prog, shape), []).append((x, y, p))
    names = TableNames()
    groups = []
    for (prog, _), members in grouped.items():
        g = Group(prog, members)
        stem = getattr(prog, "__name__", "pe_program")
        for k, v in g.params[0].items():
            if all(isinstance(p[k], Color) for p in g.params):
                vary_color(g, k, [p[k].id for p in g.params], names, stem, _PerPeColor,
                           MEMCPY_COLORS)
                continue
            if isinstance(v, Color) or any(isinstance(p[k], Color) for p in g.params):
                g.vary(k, [_freeze(p[k]) for p in g.params])    # colors and numbers: split
                continue
            if not _is_number(v):
                continue
            keys = [_number_key(p[k]) for p in g.params]
            if len(set(keys)) == 1:
                continue
            found = _per_pe_numbers(keys)
            per_pe = None
            if found is not None:
                kind, t, default, extremes, entries = found
                table = names.new(f"{stem}:{k}", t)
                per_pe = (_PerPeParam(table, kind, extremes, default), table, entries)
            g.vary(k, keys, per_pe)
        groups.append(g)
    return groups


def compile(layout_fn: Callable, *, arch: str = "wse2", fabric_dims=None, fabric_offsets=(4, 1),
            channels: int = 1, width_west_buf: int = 0, width_east_buf: int = 0,
            params: dict | None = None, h2d_colors=(), d2h_colors=()) -> ir.Program:
    """Run a layout function and build the Program.

    `fabric_dims` defaults to the smallest fabric memcpy accepts (spec 12.1). `params` are
    passed to `layout_fn` as keyword arguments. PEs with the same PE program and params share
    one tile class, traced once; so do PEs whose params differ only in numbers (ints, floats,
    bools) that the program uses as runtime values: those read per-PE tables
    (`wsejax.tile_classes`; a number the program needs in Python splits the class by its
    values). `h2d_colors` and `d2h_colors` are memcpy's streaming colors (up to 4 each, like
    `MEMCPYH2D_DATA_<n>_ID`; spec 12.4): memcpy routes them, so the program may not configure
    them.
    """
    from wsejax.layout import ARCHES, build_program
    from wsejax.tile_classes import tile_classes

    if arch not in ARCHES:
        raise LayoutError(f"--arch={arch}: expected one of {', '.join(ARCHES)}")
    streams = tuple((c, "h2d") for c in _stream_colors(h2d_colors, "compile h2d_colors"))
    streams += tuple((c, "d2h") for c in _stream_colors(d2h_colors, "compile d2h_colors"))

    lb = _LayoutBuilder()
    _stack().append(lb)
    try:
        layout_fn(**(params or {}))
    finally:
        _stack().remove(lb)
    if lb.rect is None:
        raise LayoutError("the layout never called @set_rectangle")
    w, h = lb.rect
    missing = [(x, y) for y in builtins.range(h) for x in builtins.range(w)
               if (x, y) not in lb.tiles]
    if missing:
        raise LayoutError(f"no @set_tile_code for PE {missing[0]} "
                          f"({len(missing)} of {w * h} PEs have none)")
    classes, class_of, tables = tile_classes(
        _tile_groups(lb.tiles), h, w,
        lambda prog, p: build_pe_program(prog, p, getattr(prog, "__name__", "pe_program"), arch),
        Exception)
    return build_program(
        width=w, height=h, arch=arch, fabric_dims=fabric_dims, fabric_offsets=fabric_offsets,
        channels=channels, exports=tuple(lb.exports.values()), classes=tuple(classes),
        class_of=class_of, params=tuple(sorted((params or {}).items())),
        width_west_buf=width_west_buf, width_east_buf=width_east_buf, tables=tables,
        routes=tuple(sorted(lb.routes.items())), streams=streams)

