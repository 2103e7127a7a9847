"""Runtime values of the Python API: scalars traced into IR expressions (with operator
overloading and CSL's peer typing), DSD values, FIFO handles and the per-PE stand-ins of
params that differ between tiles."""

from __future__ import annotations

import numpy as np

from wsejax import ir
from wsejax.dsl._context import (
    _body,
)
from wsejax.errors import ProgramError
from wsejax.types import (
    DType,
    bool_,
    f32,
    i32,
    i64,
    u16,
    u32,
    u64,
    widens,
)

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


def _int_type(v: int) -> DType:
    """The type a Python int takes where none is asked for: the first of i32, u32, i64, u64
    that holds it."""
    for t in (i32, u32, i64, u64):
        info = np.iinfo(t.np)
        if info.min <= v <= info.max:
            return t
    raise ProgramError(f"{v} does not fit in 64 bits")


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
                dtype = _int_type(int(v))
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

def _dsd_arg(d, what: str) -> DsdValue:
    if not isinstance(d, DsdValue):
        raise ProgramError(f"{what} takes a DSD, got {type(d).__name__}")
    return d

class FifoHandle:
    """A FIFO (`@allocate_fifo`): usable as a DSD operand; a destination pushes, a source
    pops."""

    def __init__(self, name: str, dtype: DType):
        self.name = name
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"<fifo {self.name}>"

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
