"""Globals and locals of a PE program: `var`, `zeros`, `constants`, `addr`, `local`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsejax import dsd as dsd_math
from wsejax import ir
from wsejax.dsl._context import (
    _body,
    _program,
    _ProgramState,
)
from wsejax.dsl._values import (
    DsdValue,
    Val,
    _const,
    _expr,
    _ExprLike,
    _is_number,
)
from wsejax.errors import ProgramError
from wsejax.types import (
    ArrayType,
    DType,
)

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

    def __init__(self, sym: ir.Symbol, builder: _ProgramState):
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
