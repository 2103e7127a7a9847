"""Values and types of the CSL comptime evaluator.

Comptime values are plain Python objects where possible: `int` is comptime_int, `float` is
comptime_float, `bool`, `str` (comptime_string). Everything else is a small class here:

- types: `DType` scalars (from `wsejax.types`), and `ArrayT`, `PtrT`, `FnT`, `StructT`, `EnumT`,
  `Special` (void, type, comptime_int, anytype, mem1d_dsd, color, ...);
- typed comptime numbers `CNum` (`const M: i16 = 4`), structs, tuples, arrays, enums;
- program objects: functions, modules, ranges, globals (`SymRef`), pointers (`PtrVal`), DSDs;
- runtime values inside function bodies: `RVal` (an IR expression) and `LocalVar`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from wsejax import cb16, ir
from wsejax.errors import CslError
from wsejax.types import DType

__all__ = [
    "ArrayT", "ArrayVal", "CNum", "CellVar", "ColorVal", "DsdArray", "DsdVal", "DsdVarRef",
    "PickedDsd", "PickedVar",
    "EnumRVal",
    "EnumT", "EnumVal", "FifoVal", "FixedLocal", "FnT", "FnVal", "LocalVar", "MemArray",
    "ModuleVal", "NativeFn", "ObjArrayVal", "Slot", "StructRef",
    "PeColorVal",
    "PtrCell", "PtrT", "PtrVal", "RArray", "RPtr",
    "QueueVal", "RVal", "RangeVal", "Special", "StructT", "StructVal", "SymRef", "TaskIdVal",
    "TensorAccessVal", "TupleVal", "UtIdVal", "ieee_float", "type_name",
    "RtHandleVal", "RUNTIME_HANDLE_KINDS", "is_runtime_handle_type", "static_pointer",
    "RFnPtr", "function_number", "is_fn_pointer_type",
]


# ------------------------------------------------------------------------------------------------
# Types


@dataclass(frozen=True)
class Special:
    """A type with no DType: void, type, comptime_int, comptime_float, comptime_struct,
    comptime_string, anytype, imported_module, noreturn, and the handle types (color,
    mem1d_dsd, ...)."""

    name: str

    def __str__(self) -> str:
        return self.name


VOID = Special("void")
TYPE = Special("type")
COMPTIME_INT = Special("comptime_int")
COMPTIME_FLOAT = Special("comptime_float")
COMPTIME_STRUCT = Special("comptime_struct")
COMPTIME_STRING = Special("comptime_string")
ANYTYPE = Special("anytype")
MODULE = Special("imported_module")
DSD_KINDS = ("mem1d_dsd", "mem4d_dsd", "fabin_dsd", "fabout_dsd", "circbuf_dsd")
HANDLE_TYPES = ("color", "data_task_id", "local_task_id", "control_task_id", "input_queue",
                "output_queue", "ut_id", "direction", "dsr_dest", "dsr_src0", "dsr_src1",
                "dsr_fifo_dest", "dsr_fifo_src1", "xdsr", "anyopaque")


@dataclass(frozen=True)
class ArrayT:
    """`[d0, d1, ...]elem`."""

    elem: object
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"[{', '.join(map(str, self.shape))}]{type_name(self.elem)}"


@dataclass(frozen=True)
class PtrT:
    """`*T` / `*const T` (kind "single") or `[*]T` / `[*]const T` (kind "many")."""

    kind: str
    const: bool
    elem: object

    def __str__(self) -> str:
        head = "*" if self.kind == "single" else "[*]"
        return f"{head}{'const ' if self.const else ''}{type_name(self.elem)}"


@dataclass(frozen=True)
class FnT:
    params: tuple
    ret: object

    def __str__(self) -> str:
        return f"fn({', '.join(type_name(p) for p in self.params)}) {type_name(self.ret)}"


@dataclass(frozen=True, eq=False)
class StructT:
    """A named struct type (nominal: compared by identity)."""

    fields: tuple            # (name, type, default value or None)
    name: str = "struct"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, eq=False)
class EnumT:
    tag: object
    members: tuple           # (name, int)
    name: str = "enum"

    def __str__(self) -> str:
        return self.name


def type_name(t) -> str:
    return str(t)


_PRECISION = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}   # significand bits


def ieee_float(v, t: DType | None = None) -> float:
    """`v` (a Python int or float) rounded to float type `t` (None: comptime_float, f64) as
    IEEE round-to-nearest-even does: a value beyond the type's largest finite one becomes an
    infinity, never an OverflowError. Integers too wide for f64 are rounded once, straight to
    the target's precision (no double rounding)."""
    if t is DType.cb16:
        return _cb16_float(v)
    dt = t.np if t is not None else np.dtype(np.float64)
    if isinstance(v, int) and not isinstance(v, bool):
        bits = abs(v).bit_length()
        prec = _PRECISION.get(dt.name, 53)
        if bits > 53:
            shift = bits - prec
            q, r = divmod(abs(v), 1 << shift)
            half = 1 << (shift - 1)
            if r > half or (r == half and q & 1):
                q += 1
            try:
                x = math.ldexp(float(q), shift)
            except OverflowError:
                x = math.inf
            v = -x if v < 0 else x
    with np.errstate(over="ignore"):
        return float(dt.type(v))


def _cb16_float(v) -> float:
    """`v` (a Python int or float) rounded once to cb16."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 1 << 24:
        return math.copysign(math.inf, v)       # past cb16's range (exact below 2**24)
    return cb16.round_float(float(v))


# ------------------------------------------------------------------------------------------------
# Comptime values


@dataclass(frozen=True)
class CNum:
    """A comptime-known number of a runtime type (`const M: i16 = 4;`)."""

    value: object
    dtype: DType


@dataclass
class StructVal:
    """An anonymous (`stype` None) or named struct value; `fields` keeps declaration order."""

    fields: dict
    stype: StructT | None = None

    def freeze(self):
        return ("struct", tuple((k, freeze(v)) for k, v in self.fields.items()), id(self.stype))


@dataclass
class TupleVal:
    items: list

    def freeze(self):
        return ("tuple", tuple(freeze(v) for v in self.items))


@dataclass
class ArrayVal:
    """A comptime array: `values` is a numpy array of `elem`'s dtype with the array's shape."""

    elem: DType
    values: np.ndarray

    def freeze(self):
        return ("array", str(self.elem), self.values.shape, self.values.tobytes())


@dataclass
class ObjArrayVal:
    """A comptime array whose elements are not numbers: colors, task IDs, queues, DSDs,
    structs, enums, pointers (`[3]color { c0, c1, c2 }`). `values` is a numpy object array of
    the array's shape holding the element values; the array exists only at compile time."""

    elem: object
    values: np.ndarray

    def freeze(self):
        return ("objarray", freeze(self.elem), self.values.shape,
                tuple(freeze(v) for v in self.values.reshape(-1).tolist()))


def string_bytes(s: str) -> bytes:
    """The bytes of comptime string `s`. A comptime string is text whose bytes that are not
    UTF-8 (from `@get_string_from_byte`) are held as lone surrogates, as Python's
    "surrogateescape" does, so that every byte from 0 to 255 has a string."""
    return s.encode("utf-8", "surrogateescape")


def string_from_bytes(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def string_text(s: str) -> str:
    """Comptime string `s` as printable text (bytes that are not UTF-8 shown as U+FFFD)."""
    return string_bytes(s).decode("utf-8", "replace")


def object_array(items: list, shape: tuple) -> np.ndarray:
    """A numpy object array of `shape` holding `items` in row-major order, as they are (numpy
    would otherwise unpack a sequence-like item)."""
    out = np.empty(len(items), object)
    for k, v in enumerate(items):
        out[k] = v
    return out.reshape(shape)


def flat_indices(k, shape: tuple) -> tuple:
    """The indices of element `k` (an i32 IR expression counting elements in row-major order)
    of an array of `shape`."""
    out = []
    inner = 1
    for d in reversed(range(len(shape))):
        i = k if inner == 1 else ir.Bin("/", k, ir.Const(inner, DType.i32), DType.i32)
        if d > 0:
            i = ir.Bin("%", i, ir.Const(shape[d], DType.i32), DType.i32)
        out.append(i)
        inner *= shape[d]
    return tuple(reversed(out))


@dataclass(frozen=True)
class EnumVal:
    etype: EnumT
    name: str
    value: int


@dataclass(frozen=True)
class ColorVal:
    """A routable color (`@get_color(n)`, or a `color` param), 0..23."""

    id: int


@dataclass(frozen=True)
class PeColorVal:
    """A color that differs between the PEs of one tile class: a `color` param read from a
    per-PE table (`expr`, an `ir.PeValue`). A fabric DSD takes it as its `.fabric_color`;
    whatever needs the color's number while the program is specialised (a route, a data
    task, `@get_int`) gets a CslError from `id`, and the tiles are split by the param."""

    expr: object

    @property
    def id(self) -> int:
        raise CslError("a color that differs between PEs is used where its number is needed "
                       "at compile time")


@dataclass(frozen=True)
class TaskIdVal:
    """A task ID handle (`@get_local_task_id(n)`): `kind` is "local", "data" or "control"."""

    kind: str
    id: int


@dataclass(frozen=True)
class QueueVal:
    """A hardware queue handle (`@get_input_queue(n)`, `@get_output_queue(n)`): `kind` is
    "input" or "output"."""

    kind: str
    id: int


@dataclass(frozen=True)
class UtIdVal:
    """A microthread ID (`@get_ut_id(n)`, wse3): `id` is its number, 0..7, or the IR u16
    expression of a runtime one."""

    id: object

    @property
    def known(self) -> int | None:
        """The number where it is comptime-known, else None."""
        return self.id if isinstance(self.id, int) else None


@dataclass(frozen=True)
class RtHandleVal:
    """A color, task ID or queue whose number is known only at run time (`@get_color(n)`,
    `@get_local_task_id(n)`, ... of a runtime u16, or an element of an array of handles read
    at a runtime index): `kind` is "color", "local", "data", "control", "input_queue" or
    "output_queue"; `expr` is its u16 IR expression, read once where the handle was made."""

    kind: str
    expr: object

    @property
    def type_name(self) -> str:
        """The CSL type of the handle (`color`, `local_task_id`, `input_queue`, ...)."""
        return self.kind if self.kind in ("color", "input_queue", "output_queue") else \
            f"{self.kind}_task_id"


# the handle types whose values are u16 numbers at run time (held in PE memory, chosen by a
# runtime index), each with the `RtHandleVal` kind of a runtime one (None: a `UtIdVal`)
RUNTIME_HANDLE_KINDS = {"color": "color", "local_task_id": "local", "data_task_id": "data",
                        "control_task_id": "control", "input_queue": "input_queue",
                        "output_queue": "output_queue", "ut_id": None}


def is_runtime_handle_type(t) -> bool:
    """Whether `t` is a handle type held at run time as a u16 number (a function pointer
    type among them)."""
    return isinstance(t, Special) and t.name in RUNTIME_HANDLE_KINDS or is_fn_pointer_type(t)


def is_fn_pointer_type(t) -> bool:
    """Whether `t` is a function pointer type (`*const fn(A) R`)."""
    return isinstance(t, PtrT) and isinstance(t.elem, FnT)


def leaf_dtype(c) -> DType:
    """The dtype that holds a leaf of CSL type `c` (a number, an enum's tag, a handle, a
    pointer's byte address)."""
    if isinstance(c, EnumT):
        return c.tag
    return DType.u16 if is_runtime_handle_type(c) or isinstance(c, PtrT) else c


def leaf_const(item, path: tuple):
    """The initial value of leaf `path` of comptime struct or enum value `item`."""
    for name in path:
        if item is UNDEFINED:
            break
        item = item.fields[name]
    if item is UNDEFINED or item is None:
        return 0
    if isinstance(item, UtIdVal):
        return item.known
    if isinstance(item, FnVal):
        return function_number(item)
    if isinstance(item, PtrVal):
        return ir.AddrOf(item.name, item.offset)     # resolved as the PE program is built
    if isinstance(item, RPtr):
        return item.expr       # a fixed address (`static_pointer`)
    if isinstance(item, (int, float)):
        return item     # a field a comptime assignment set to a plain number
    return item.id if isinstance(item, (ColorVal, TaskIdVal, QueueVal)) else item.value


@dataclass(frozen=True)
class RangeVal:
    """`@range(T, start, stop, step)`."""

    dtype: object
    start: int
    stop: int
    step: int

    def __len__(self) -> int:
        return len(range(self.start, self.stop, self.step))


@dataclass(eq=False)
class FnVal:
    """A function (or task) declared in a module instance."""

    decl: object
    module: object

    def freeze(self):
        return ("fn", id(self.decl), id(self.module))


def function_number(fv: FnVal) -> int:
    """The u16 number that names function `fv` in its PE program's function pointers
    held at run time (`fn_pointers.py`); 0 names none (an `undefined` pointer).

    A function is numbered by where it is declared: its module's place among the PE
    program's module instances (in the order they are imported, which comes before any
    body is compiled) and its place among that module's declarations, so the numbers do
    not depend on the order in which bodies are compiled."""
    mod = fv.module
    table = mod.pe.fn_pointers
    key = (id(fv.decl), id(mod))
    if key not in table:
        number = 1
        for m in mod.c.modules_of(mod.pe):
            if m is mod:
                break
            number += len(m.file.decls)
        else:
            number = 0x8000 + len(table)     # a module no list holds: after every listed one
        place = next((k for k, d in enumerate(mod.file.decls) if d is fv.decl), len(table))
        table[key] = (number + place, fv)
    return table[key][0]


@dataclass(frozen=True)
class RFnPtr:
    """A function pointer known only at run time: `expr` is the u16 number of the function
    it names (`function_number`), `type` its type (a `*const fn(...) R` PtrT)."""

    expr: object
    type: PtrT


@dataclass(eq=False)
class NativeFn:
    """A function implemented in Python (library modules): `impl(ev, args, env, pos)`.

    `arity` is the number of arguments it takes, where fixed (what `@map` needs to tell its
    inputs from its output); None where it varies or is not declared."""

    name: str
    impl: object
    arity: int | None = None

    def freeze(self):
        return ("native", self.name, id(self.impl))


@dataclass(eq=False)
class ModuleVal:
    module: object

    def freeze(self):
        return ("module", id(self.module))


@dataclass(eq=False)
class CellVar:
    """A `comptime var`: a mutable comptime value. `loops` counts the run-time loops around
    its declaration (a run-time loop nested deeper may not change it: it would change once,
    at compile time, not once per iteration)."""

    value: object
    type: object = None
    loops: int = 0


@dataclass
class TensorAccessVal:
    """A `|i|{L} -> A[...]` expression kept with the environment it was written in."""

    node: object
    env: object


# ------------------------------------------------------------------------------------------------
# Program objects


@dataclass(frozen=True)
class SymRef:
    """A runtime global (`var`) of the PE program: IR symbol `name`."""

    name: str
    dtype: DType
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def freeze(self):
        return ("sym", self.name)


@dataclass(frozen=True)
class PtrVal:
    """A pointer to global data: `&A` or `&A[k]` (element `offset` of symbol `name`).

    `array` is set where the pointee is the whole array (`&A`, or a `*[N]T`), so that `p.*` is
    the array itself rather than its first element."""

    name: str
    dtype: DType
    shape: tuple[int, ...]
    offset: int = 0
    kind: str = "many"
    const: bool = False
    array: bool = False

    def freeze(self):
        return ("ptr", self.name, self.offset, self.kind, self.array)


@dataclass(frozen=True)
class DsdVal:
    """A DSD value: an IR DSD expression, its kind (`mem1d_dsd`, ...) and element type (None
    where unknown until used)."""

    expr: object
    kind: str
    dtype: DType | None

    def freeze(self):
        return ("dsd", self.expr if isinstance(self.expr, ir.DsdLit) else id(self.expr))


@dataclass(frozen=True)
class FifoVal:
    """A FIFO (`const f = @allocate_fifo(buf)`): IR FIFO `name` over symbol `buffer`."""

    name: str
    buffer: str
    dtype: DType


@dataclass(frozen=True)
class DsdVarRef:
    """A global DSD variable (`var A_dsd = @get_dsd(...)`)."""

    name: str
    kind: str
    dtype: DType

    def value(self) -> DsdVal:
        return DsdVal(ir.DsdVar(self.name), self.kind, self.dtype)


@dataclass(frozen=True)
class RVal:
    """A runtime value inside a function body."""

    expr: object
    dtype: DType


@dataclass(frozen=True)
class LocalVar:
    """A runtime local variable (assignable)."""

    name: str
    dtype: DType

    def value(self) -> RVal:
        return RVal(ir.Local(self.name, self.dtype), self.dtype)


@dataclass(frozen=True)
class PtrVar:
    """A global `var p: [*]T = &A;`: its value is the pointer it was initialised with."""

    ptr: PtrVal
    pos: object = field(default=None, compare=False)


@dataclass(frozen=True)
class RPtr:
    """A pointer known only at run time: `expr` is its u16 byte address (an IR expression),
    `type` its pointer type (a PtrT)."""

    expr: object
    type: PtrT


def static_pointer(v) -> bool:
    """Whether `v` is a pointer to a fixed place, known before the program runs (`&A`,
    `&s` of a struct), as the initial value of a pointer in memory must be."""
    return isinstance(v, PtrVal) or isinstance(v, RPtr) and isinstance(v.expr, ir.AddrOf)


@dataclass(frozen=True)
class RArray:
    """`p.*` of a runtime pointer to a whole array (`*[N]T`): the array at byte address `expr`
    (an IR u16 expression), of type `type` (an ArrayT of a DType)."""

    expr: object
    type: ArrayT
    const: bool = False


@dataclass(frozen=True)
class PtrCell:
    """A pointer variable held at run time, so that it can change: a global (u16 symbol
    `name`) or a function's local (u16 IR local `name`) holding the byte address it points
    to. `init` is a global's initial pointer (a PtrVal, or None)."""

    name: str
    type: PtrT
    is_local: bool = False
    init: object = field(default=None, compare=False)

    def value(self) -> RPtr:
        read = ir.Local(self.name, ir.POINTER) if self.is_local else \
            ir.Load(self.name, (), ir.POINTER)
        return RPtr(read, self.type)


def freeze(v):
    """A hashable key for a comptime value (for tile-class and specialization caches)."""
    if isinstance(v, (int, float, bool, str, type(None))):
        return (type(v).__name__, v)
    if hasattr(v, "freeze"):
        return v.freeze()
    if isinstance(v, (CNum, EnumVal, RangeVal, Special, ArrayT, PtrT, FnT, DType, TaskIdVal,
                      ColorVal, QueueVal, FifoVal, UtIdVal)):
        return v
    if isinstance(v, (StructT, EnumT)):
        return ("type", id(v))
    return ("obj", id(v))


# ------------------------------------------------------------------------------------------------
# Names of the language, and what a value is

SCALARS = {t.value: t for t in DType}
SCALARS["bool"] = DType.bool_
SPECIALS = {s.name: s for s in (VOID, TYPE, COMPTIME_INT, COMPTIME_FLOAT, COMPTIME_STRUCT,
                                  COMPTIME_STRING, ANYTYPE, MODULE)}
SPECIALS.update({k: Special(k) for k in DSD_KINDS + HANDLE_TYPES})
SPECIALS["noreturn"] = Special("noreturn")
DIRECTIONS = ("NORTH", "SOUTH", "EAST", "WEST", "RAMP")

UNDEFINED = Special("undefined")


@dataclass(eq=False)
class EnumLitVal:
    """A bare `.name` before it meets its enum type."""

    name: str


@dataclass(eq=False)
class LocalDsd:
    """A runtime DSD local."""

    name: str
    kind: str
    dtype: object

    def value(self) -> DsdVal:
        return DsdVal(ir.DsdLocal(self.name), self.kind, self.dtype)


@functools.cache
def int_range(t: DType) -> tuple[int, int]:
    """The smallest and largest value of integer type t (comptime checks run per value)."""
    info = np.iinfo(t.np)
    return int(info.min), int(info.max)


def is_type(v) -> bool:
    return isinstance(v, (DType, ArrayT, PtrT, FnT, StructT, EnumT)) or (
        isinstance(v, Special) and v is not UNDEFINED)


def is_comptime(v) -> bool:
    return isinstance(v, (int, float, bool, CNum)) and not isinstance(v, RVal)


def is_comptime_value(v) -> bool:
    if isinstance(v, StructRef):
        return False
    if isinstance(v, StructVal):
        return all(is_comptime_value(x) for x in v.fields.values())
    return not isinstance(v, (RVal, LocalVar, DsdVal)) or (
        isinstance(v, DsdVal) and isinstance(v.expr, ir.DsdLit))


def describe(v) -> str:
    """How an error message names value `v` ("a runtime i16", "the global 'A'", ...)."""
    if v is None:
        return "void"
    if v is UNDEFINED:
        return "undefined"
    if is_type(v):
        return f"the type {v}"
    for cls in type(v).__mro__:
        how = _DESCRIBE.get(cls)
        if how is not None:
            return how(v)
    return type(v).__name__


_DESCRIBE = {
    bool: lambda v: "a bool",
    int: lambda v: f"the comptime_int {v}",
    float: lambda v: f"the comptime_float {v}",
    str: lambda v: "a string",
    CNum: lambda v: f"a {v.dtype}",
    RVal: lambda v: f"a runtime {v.dtype}",
    LocalVar: lambda v: f"a runtime {v.dtype} variable",
    SymRef: lambda v: f"the global '{v.name}'",
    PtrVal: lambda v: f"a pointer to '{v.name}'",
    DsdVal: lambda v: f"a {v.kind}",
    StructVal: lambda v: "a struct",
    TupleVal: lambda v: "a tuple",
    ArrayVal: lambda v: "a comptime array",
    ObjArrayVal: lambda v: f"a comptime array of {v.elem}",
    FnVal: lambda v: f"the function '{v.decl.name}'",
    ModuleVal: lambda v: "a module",
    RangeVal: lambda v: "a range",
    EnumVal: lambda v: f"the enum value .{v.name}",
    EnumLitVal: lambda v: f"the enum value .{v.name}",
    ColorVal: lambda v: f"color {v.id}",
    PeColorVal: lambda v: "a color that differs between PEs",
    QueueVal: lambda v: f"{v.kind} queue {v.id}",
    TaskIdVal: lambda v: f"{v.kind} task ID {v.id}",
    UtIdVal: lambda v: "a runtime microthread ID" if v.known is None else f"microthread {v.id}",
    FifoVal: lambda v: f"the FIFO '{v.name}'",
    RPtr: lambda v: f"a runtime pointer ({v.type})",
    RFnPtr: lambda v: f"a runtime function pointer ({v.type})",
    RArray: lambda v: f"the array a runtime pointer points to ({v.type})",
    PtrCell: lambda v: f"the pointer variable '{v.name}'",
    RtHandleVal: lambda v: f"a runtime {v.type_name.replace('_task_id', ' task ID')}"
    .replace("_", " "),
}


# ------------------------------------------------------------------------------------------------
# Named structs and enums held at run time


@dataclass(frozen=True)
class EnumRVal(RVal):
    """A runtime value of enum type `etype`: its tag (of the enum's tag type `dtype`) as an
    IR expression."""

    etype: object = None


@dataclass(frozen=True)
class Slot:
    """One scalar held at run time, of CSL type `ctype` (a DType or an EnumT): element
    `indices` of symbol `name` (kind "sym") or local `name` (kind "local"). `const` where it
    may not be assigned (a parameter)."""

    kind: str
    name: str
    indices: tuple
    ctype: object
    const: bool = False

    @property
    def dtype(self) -> DType:
        if isinstance(self.ctype, Special):
            return DType.u16      # a handle held at run time
        return leaf_dtype(self.ctype)


@dataclass(frozen=True)
class StructRef:
    """A named struct held at run time: field `f` is the slot (or, for a struct field, the
    struct) named `prefix.f`, a symbol of PE memory at `indices` (kind "sym") or a local
    (kind "local")."""

    stype: StructT
    kind: str
    prefix: str
    indices: tuple = ()
    const: bool = False


@dataclass(frozen=True)
class MemArray:
    """An array of structs or enums in PE memory: one symbol of shape `shape` per scalar leaf
    of `elem` (`prefix.f` for field f; `prefix` itself for an enum)."""

    elem: object
    prefix: str
    shape: tuple


@dataclass(eq=False)
class FixedLocal:
    """A runtime `var` of a handle type (color, task ID, queue, ...): a comptime-known value,
    which an assignment may replace only at the runtime nesting (`depth`, `loops`) of its
    declaration."""

    name: str
    value: object
    type: object = None
    depth: int = 0
    loops: int = 0


_DESCRIBE.update({
    EnumRVal: lambda v: f"a runtime {v.etype}",
    Slot: lambda v: f"a runtime {v.ctype} variable",
    StructRef: lambda v: f"a runtime {v.stype}",
    MemArray: lambda v: f"an array of {v.elem}",
    FixedLocal: lambda v: f"the {describe(v.value)} held by '{v.name}'",
})


# ------------------------------------------------------------------------------------------------
# Arrays of DSDs held at run time


@dataclass(eq=False)
class DsdArray:
    """A `var` array of DSDs: one DSD variable (`DsdVarRef`, a global) or DSD local
    (`LocalDsd`) per element, in `elems` (an object array of shape `shape`). The elements
    share their kind and element type; `parts` lists the distinct parts of them that the
    emulator fixes at compile time (`csl.dsd_arrays`): where there are two or more, each
    element is a `PickedVar` over them all."""

    name: str
    elems: np.ndarray
    kind: str
    dtype: object
    parts: tuple = ()

    @property
    def shape(self) -> tuple:
        return tuple(self.elems.shape)


_DESCRIBE[DsdArray] = lambda v: f"the array of {v.kind} '{v.name}'"


@dataclass(frozen=True)
class PickedDsd:
    """A DSD chosen at run time among DSDs that differ in what the emulator fixes at compile
    time (a fabric DSD's color, a mem4d_dsd's shape, ...): it is `arms[j]` (a DsdVal, of
    fixed part `parts[j]`) where `tag` (a u16 expression) is j. A use runs as an if chain
    on the tag, each branch the use of one arm (`csl.dsd_picks`)."""

    tag: object
    arms: tuple
    kind: str
    dtype: object
    parts: tuple


@dataclass(frozen=True)
class PickedVar:
    """A DSD variable (an element of a `DsdArray`, or a DSD local) that may hold a DSD of any
    of the distinct fixed parts `parts`: the number of the part it holds in u16 `tag` (where
    `held`, element `at` of a global symbol, else a local), and one DSD variable per part
    (`arms`: `DsdVarRef`s or `LocalDsd`s)."""

    tag: str
    held: bool
    arms: tuple
    kind: str
    dtype: object
    parts: tuple
    at: int = 0

    def tag_expr(self):
        if self.held:
            return ir.Load(self.tag, (ir.Const(self.at, DType.i32),), DType.u16)
        return ir.Local(self.tag, DType.u16)

    def value(self) -> PickedDsd:
        return PickedDsd(self.tag_expr(), tuple(a.value() for a in self.arms), self.kind,
                         self.dtype, self.parts)


_DESCRIBE[PickedDsd] = lambda v: f"a {v.kind} chosen at run time"
_DESCRIBE[PickedVar] = lambda v: f"a {v.kind} variable"
