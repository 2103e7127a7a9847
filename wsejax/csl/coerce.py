"""Types and conversions of the comptime evaluator: `eval_type`, the implicit conversions of
`coerce` (one helper per kind of target type), runtime expressions and indices of values, peer
types of binary operators, and comptime arithmetic on typed and untyped numbers
(`fold_binary`, on the functions of `wsejax.csl.fold`).

`CoerceMixin` uses from `self`: `error(message, pos) -> CslError` and `ev(node, env)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wsejax import ir
from wsejax.csl.fold import fold_python, fold_typed
from wsejax.csl.values import (
    ANYTYPE,
    COMPTIME_FLOAT,
    COMPTIME_INT,
    COMPTIME_STRING,
    COMPTIME_STRUCT,
    DSD_KINDS,
    HANDLE_TYPES,
    MODULE,
    TYPE,
    UNDEFINED,
    ArrayT,
    ArrayVal,
    CNum,
    ColorVal,
    DsdVal,
    DsdVarRef,
    EnumLitVal,
    EnumRVal,
    EnumT,
    EnumVal,
    FnT,
    FnVal,
    LocalVar,
    ModuleVal,
    ObjArrayVal,
    PeColorVal,
    PickedDsd,
    PickedVar,
    PtrT,
    PtrVal,
    QueueVal,
    RFnPtr,
    RPtr,
    RtHandleVal,
    RVal,
    Special,
    StructRef,
    StructT,
    StructVal,
    TaskIdVal,
    TupleVal,
    UtIdVal,
    describe,
    ieee_float,
    int_range,
    is_comptime_value,
    is_type,
    object_array,
)
from wsejax.hardware import COMPTIME_ARRAY_BYTES, PE_MEMORY_BYTES
from wsejax.types import DType, rounded, widens

if TYPE_CHECKING:
    from wsejax.csl.env import Env

__all__ = ["CoerceMixin"]


# comptime-only types that take a value as it is, and the classes of the values they take
_COMPTIME_VALUES = ((COMPTIME_STRUCT, (StructVal, TupleVal)), (COMPTIME_STRING, str),
                    (MODULE, ModuleVal))

# handle types: the value class each takes, the kind that value must have (None: any), and
# what its error says is expected
_HANDLES = {"input_queue": (QueueVal, "input", "an input_queue (@get_input_queue(n))"),
            "output_queue": (QueueVal, "output", "an output_queue (@get_output_queue(n))"),
            "local_task_id": (TaskIdVal, "local",
                              "a local_task_id (@get_local_task_id(...))"),
            "data_task_id": (TaskIdVal, "data", "a data_task_id (@get_data_task_id(...))"),
            "ut_id": (UtIdVal, None, "a ut_id (@get_ut_id(n))")}


class CoerceMixin:
    """Types and implicit conversions."""

    def check_array_size(self, t, pos, what: str) -> None:
        """Refuse to build a comptime array of type t larger than COMPTIME_ARRAY_BYTES."""
        if isinstance(t, ArrayT) and isinstance(t.elem, DType):
            need = int(np.prod(t.shape, dtype=np.int64)) * t.elem.nbytes
            if need > COMPTIME_ARRAY_BYTES:
                raise self.error(f"{what}: {t} holds {need} bytes, more than wsejax builds at "
                                 f"comptime ({COMPTIME_ARRAY_BYTES} bytes; a PE's memory is "
                                 f"{PE_MEMORY_BYTES})", pos)

    def eval_type(self, node, env: Env):
        t = self.ev(node, env.comptime() if env.fn is not None else env)
        if not is_type(t):
            raise self.error(f"expected a type, got {describe(t)}", node.pos)
        return t

    # -- coercion ---------------------------------------------------------------------------

    def coerce(self, v, t, pos, what: str):
        """`v` as a value of type `t` (implicit conversions only), or CslError."""
        if t is None or t is ANYTYPE or t is TYPE and is_type(v):
            return v
        if isinstance(v, EnumRVal) and not isinstance(t, EnumT):
            raise self.error(f"{what}: expected {t}, got {describe(v)} (use @as)", pos)
        if isinstance(v, RtHandleVal) and isinstance(t, Special) and v.type_name == t.name:
            return v    # a handle known only at run time, of the type wanted
        to = _COERCE_TO.get(type(t))
        return v if to is None else to(self, v, t, pos, what)

    def coerce_scalar(self, v, t: DType, pos, what: str):
        if v is UNDEFINED:
            return CNum(0, t)
        if isinstance(v, (bool, int, float)):
            return CNum(self.num_in(v, t, pos, what), t)
        if isinstance(v, CNum):
            if v.dtype == t:
                return v
            # a comptime-known integer converts to any numeric type it fits in
            if widens(v.dtype, t) or (v.dtype.is_int and (t.is_int or t.is_float)):
                return CNum(self.num_in(v.value, t, pos, what), t)
            raise self.error(f"{what}: expected {t}, got {v.dtype} (convert with @as)", pos)
        if isinstance(v, RVal):
            if v.dtype == t:
                return v
            if widens(v.dtype, t):
                return RVal(ir.Cast(v.expr, t), t)
            raise self.error(f"{what}: expected {t}, got {v.dtype} (convert with @as)", pos)
        if isinstance(v, EnumVal) and t.is_int:
            raise self.error(f"{what}: expected {t}, got an enum (use @as)", pos)
        raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)

    def coerce_array(self, v, t: ArrayT, pos, what: str):
        if isinstance(v, TupleVal):
            v = self.tuple_array(v, t, pos, what)
        if not isinstance(t.elem, DType):
            return self.coerce_object_array(v, t, pos, what)
        if isinstance(v, ArrayVal):
            if tuple(v.values.shape) != tuple(t.shape):
                raise self.error(f"{what}: expected {t}, got an array of shape "
                                 f"{list(v.values.shape)}", pos)
            return ArrayVal(t.elem, rounded(v.values, t.elem))
        if v is UNDEFINED:
            return ArrayVal(t.elem, np.zeros(t.shape, t.elem.np))
        raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)

    def tuple_array(self, v: TupleVal, t: ArrayT, pos, what: str):
        """An anonymous list literal `.{ a, b }` as a comptime array of type `t` (one
        dimension, one element per item), as `[N]T { a, b }` would be."""
        if len(t.shape) != 1 or len(v.items) != t.shape[0] or (
                isinstance(t.elem, Special) and t.elem.name in DSD_KINDS):
            raise self.error(f"{what}: expected {t}, got {describe(v)} of {len(v.items)} "
                             "elements", pos)
        items = [self.coerce(x, t.elem, pos, f"element of {what}") for x in v.items]
        if any(isinstance(i, (RVal, LocalVar)) or not is_comptime_value(i) for i in items):
            raise self.error(f"{what}: array literal elements must be comptime-known", pos)
        if isinstance(t.elem, DType):
            return ArrayVal(t.elem, np.array([i.value for i in items], t.elem.np))
        return ObjArrayVal(t.elem, object_array(items, t.shape))

    def coerce_object_array(self, v, t: ArrayT, pos, what: str) -> ObjArrayVal:
        """`v` as a comptime array of `t.elem` (colors, task IDs, structs, ...), each element
        converted to it."""
        if v is UNDEFINED:
            return ObjArrayVal(t.elem, np.full(t.shape, UNDEFINED, object))
        if not isinstance(v, ObjArrayVal):
            raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)
        if tuple(v.values.shape) != tuple(t.shape):
            raise self.error(f"{what}: expected {t}, got an array of shape "
                             f"{list(v.values.shape)}", pos)
        items = [self.coerce(x, t.elem, pos, f"element of {what}")
                 for x in v.values.reshape(-1).tolist()]
        return ObjArrayVal(t.elem, object_array(items, t.shape))

    def coerce_pointer(self, v, t: PtrT, pos, what: str):
        if isinstance(v, RPtr):
            return self.coerce_runtime_pointer(v, t, pos, what)
        if isinstance(v, PtrVal) and v.const and not t.const:
            raise self.error(f"{what}: expected {t}, got a pointer to const", pos)
        if isinstance(v, PtrVal) and isinstance(t.elem, Special) and t.elem.name == "anyopaque":
            return RPtr(ir.AddrOf(v.name, v.offset), t)
        if isinstance(v, PtrVal):
            if isinstance(t.elem, DType) and t.elem != v.dtype and not v.shape:
                raise self.error(f"{what}: expected {t}, got a pointer to {v.dtype}", pos)
            if v.offset and isinstance(t.elem, ArrayT):
                return self.array_at_element(v, t)
            return PtrVal(v.name, v.dtype, v.shape, v.offset, t.kind, t.const,
                          isinstance(t.elem, ArrayT))
        if isinstance(v, FnVal) and isinstance(t.elem, FnT):
            if not _generic(v):
                self.check_function_type(v, t, pos, what)
            return v
        if isinstance(v, RFnPtr) and isinstance(t.elem, FnT):
            return self.fn_pointer_of(v, t, pos, what)
        raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)

    def coerce_special(self, v, t: Special, pos, what: str):
        if t.name in DSD_KINDS:
            if isinstance(v, DsdVal) or isinstance(v, PickedDsd) and v.kind == t.name:
                return v
            raise self.error(f"{what}: expected a {t.name}, got {describe(v)}", pos)
        if t is COMPTIME_INT and isinstance(v, int) and not isinstance(v, bool):
            return v
        if t is COMPTIME_FLOAT and isinstance(v, (int, float)):
            return float(v)
        if any(t is special and isinstance(v, kind) for special, kind in _COMPTIME_VALUES):
            return v
        if t.name == "color":
            return self.coerce_color(v, pos, what)
        if t.name in _HANDLES:
            cls, kind, expected = _HANDLES[t.name]
            if isinstance(v, cls) and (kind is None or v.kind == kind):
                return v
            raise self.error(f"{what}: expected {expected}, got {describe(v)}", pos)
        if t.name in HANDLE_TYPES:
            return v
        raise self.error(f"{what}: expected {t.name}, got {describe(v)}", pos)

    def coerce_color(self, v, pos, what: str):
        if isinstance(v, (ColorVal, PeColorVal)):
            return v
        n = v.value if isinstance(v, CNum) else v
        if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 23:
            return ColorVal(n)
        raise self.error(f"{what}: expected a color (0 to 23), got {describe(v)}", pos)

    def coerce_struct(self, v, t: StructT, pos, what: str):
        if isinstance(v, (StructVal, StructRef)) and getattr(v, "stype", None) is t:
            return v
        if isinstance(v, StructRef):
            raise self.error(f"{what}: expected {t.name}, got {describe(v)}", pos)
        if not isinstance(v, (StructVal, TupleVal)):
            raise self.error(f"{what}: expected {t.name}, got {describe(v)}", pos)
        fields = v.fields if isinstance(v, StructVal) else {}
        extra = set(fields) - {f[0] for f in t.fields}
        if extra:
            raise self.error(f"{what}: {t.name} has no field '{sorted(extra)[0]}'", pos)
        out = {}
        for name, ft, default in t.fields:
            if name in fields:
                out[name] = self.coerce(fields[name], ft, pos, f"{what}.{name}")
            elif default is not None:
                out[name] = default
            else:
                raise self.error(f"{what}: missing field '{name}' of {t.name}", pos)
        return StructVal(out, t)

    def coerce_enum(self, v, t: EnumT, pos, what: str):
        if isinstance(v, (EnumVal, EnumRVal)) and v.etype is t:
            return v
        if isinstance(v, EnumLitVal):
            for name, value in t.members:
                if name == v.name:
                    return EnumVal(t, name, value)
            raise self.error(f"{what}: {t.name} has no member '{v.name}'", pos)
        raise self.error(f"{what}: expected {t.name}, got {describe(v)}", pos)

    def num_in(self, v, t: DType, pos, what):
        if t is DType.bool_:
            if not isinstance(v, bool):
                raise self.error(f"{what}: expected bool, got {describe(v)}", pos)
            return v
        if isinstance(v, bool):
            raise self.error(f"{what}: expected {t}, got bool", pos)
        if t.is_float:
            return ieee_float(v, t)
        if isinstance(v, float):
            if v != int(v):
                raise self.error(f"{what}: {v} is not an integer ({t} expected)", pos)
            v = int(v)
        lo, hi = int_range(t)
        if not lo <= v <= hi:
            raise self.error(f"{what}: {v} does not fit in {t}", pos)
        return int(v)

    # -- runtime expressions and comptime integers ------------------------------------------

    def to_expr(self, v, t: DType, pos, what: str = "value") -> ir.Expr:
        """A runtime expression of type t for value v (with implicit conversions)."""
        if isinstance(v, LocalVar):
            v = v.value()
        if isinstance(v, EnumRVal):
            raise self.error(f"{what}: expected {t}, got {describe(v)} (use @as)", pos)
        if isinstance(v, RVal):
            if v.dtype == t:
                return v.expr
            if widens(v.dtype, t):
                return ir.Cast(v.expr, t)
            raise self.error(f"{what}: expected {t}, got {v.dtype} (convert with @as)", pos)
        c = self.coerce(v, t, pos, what)
        if not isinstance(c, CNum):
            raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)
        return ir.Const(c.value, t)

    def to_index(self, v, pos) -> ir.Expr:
        if isinstance(v, RVal):
            if not v.dtype.is_int:
                raise self.error(f"an index must be an integer, got {v.dtype}", pos)
            return v.expr
        if isinstance(v, CNum):
            if not v.dtype.is_int:
                raise self.error(f"an index must be an integer, got {v.dtype}", pos)
            return ir.Const(v.value, v.dtype)
        if isinstance(v, int) and not isinstance(v, bool):
            return ir.Const(v, DType.i32 if -(2**31) <= v < 2**31 else DType.u32)
        raise self.error(f"an index must be an integer, got {describe(v)}", pos)

    def comptime_int(self, v, pos) -> int:
        if isinstance(v, CNum) and v.dtype.is_int:
            return int(v.value)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        raise self.error(f"expected a comptime-known integer, got {describe(v)}", pos)

    def dsd_of(self, v, pos) -> DsdVal:
        if isinstance(v, DsdVal):
            return v
        if isinstance(v, DsdVarRef):
            return v.value()
        if isinstance(v, (PickedDsd, PickedVar)):
            raise self.error(f"{describe(v)} among DSDs that differ in what wsejax fixes when "
                             "it compiles the program cannot be used here", pos)
        raise self.error(f"expected a DSD, got {describe(v)}", pos)

    # -- operator typing and comptime arithmetic --------------------------------------------

    def peer(self, a: DType, b: DType, op, pos) -> DType:
        if a == b:
            return a
        if widens(a, b):
            return b
        if widens(b, a):
            return a
        raise self.error(f"operator '{op}': operands have types {a} and {b}; convert one with "
                         "@as", pos)

    def enum_compare(self, op, a, b, pos):
        if op not in ("==", "!="):
            raise self.error("enums compare only with == and !=", pos)
        na = a.name if isinstance(a, (EnumVal, EnumLitVal)) else None
        nb = b.name if isinstance(b, (EnumVal, EnumLitVal)) else None
        if na is None or nb is None:
            raise self.error("an enum compares only with an enum", pos)
        return (na == nb) if op == "==" else (na != nb)

    def fold_binary(self, op, a, b, pos):
        for v in (a, b):
            if not isinstance(v, (int, float, bool, CNum)):
                raise self.error(f"operator '{op}' cannot take {describe(v)}", pos)
        ta = a.dtype if isinstance(a, CNum) else None
        tb = b.dtype if isinstance(b, CNum) else None
        va = a.value if isinstance(a, CNum) else a
        vb = b.value if isinstance(b, CNum) else b
        if op in ("<<", ">>"):
            t = ta
        elif ta is not None and tb is not None:
            t = self.peer(ta, tb, op, pos)
        else:
            t = ta or tb
        if t is None:
            return fold_python(op, va, vb, self, pos)
        if t is DType.bool_ and op not in ("==", "!=", "and", "or"):
            raise self.error(f"operator '{op}' cannot take bools", pos)
        if op in ("/", "%") and not t.is_float and vb == 0:
            raise self.error("division by zero at comptime", pos)
        va = self.operand_in(va, t, op, pos)
        if op not in ("<<", ">>"):
            vb = self.operand_in(vb, t, op, pos)
        r = fold_typed(op, va, vb, t)
        if isinstance(r, bool):
            return r
        return CNum(r, t)

    def operand_in(self, v, t: DType, op, pos):
        """Operand `v` of `op` as a value of type t; a bool stays one unless t is bool."""
        if isinstance(v, bool) and t is not DType.bool_:
            return v
        return self.num_in(v, t, pos, f"operand of '{op}'")


_COERCE_TO = {DType: CoerceMixin.coerce_scalar, ArrayT: CoerceMixin.coerce_array,
              PtrT: CoerceMixin.coerce_pointer, Special: CoerceMixin.coerce_special,
              StructT: CoerceMixin.coerce_struct, EnumT: CoerceMixin.coerce_enum,
              FnT: lambda self, v, t, pos, what: v}


def _generic(fv: FnVal) -> bool:
    """Whether function `fv` has comptime or anytype parameters (it then has no one type;
    a comptime pointer to it is the function itself)."""
    return any(p.comptime or getattr(p.type, "name", None) == "anytype"
               for p in fv.decl.params) or not hasattr(fv.decl, "ret")
