"""Named structs and enums held at run time, and runtime locals of handle types.

A struct in PE memory is its scalar fields, each a symbol named after the variable and the
field's path (`p.x`, `p.inner.a`); an array of structs is one array symbol per field
(`ps.x` of shape `[4]`). A runtime struct local is its fields as IR locals, and a struct
parameter is one IR parameter per field. A function returning a struct writes the fields to
symbols of its own (`f.%ret.x`, a recursive one has none) that the caller copies out after
the call. An enum is its tag: a symbol, local or parameter of the enum's tag type, read as an
`EnumRVal` that only compares with `==` / `!=` and converts with `@as`. A pointer held as a
leaf (an element of an array of pointers, a pointer field of a struct) is its u16 byte address,
as a pointer variable is (`pointers.py`): read, it is an `RPtr` over the load; its initial value
in memory is an `ir.AddrOf`, resolved when the PE program is built.

No IR node is new: everything here lowers to loads, stores, locals and calls.

`AggregateMixin` uses from `self`: `error`, `ev`, `ev_as`, `need_fn`, `to_expr`, `to_index`,
`coerce`, `runtime_pointer` and the PE program of the module being built (`env.module.pe`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.env import STATIC_WHY, STRUCT_WHY
from wsejax.csl.struct_pointers import PooledArray
from wsejax.csl.values import (
    COMPTIME_FLOAT,
    COMPTIME_INT,
    HANDLE_TYPES,
    UNDEFINED,
    ArrayT,
    ColorVal,
    EnumLitVal,
    EnumRVal,
    EnumT,
    EnumVal,
    FixedLocal,
    FnT,
    MemArray,
    ObjArrayVal,
    PtrT,
    QueueVal,
    RPtr,
    RtHandleVal,
    RVal,
    Slot,
    Special,
    StructRef,
    StructT,
    StructVal,
    SymRef,
    TaskIdVal,
    UtIdVal,
    describe,
    is_comptime_value,
    is_fn_pointer_type,
    is_runtime_handle_type,
    leaf_const,
    leaf_dtype,
    object_array,
    static_pointer,
)
from wsejax.hardware import PE_MEMORY_BYTES
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.csl.env import Env, FnCtx

__all__ = ["AggregateMixin", "aggregate_type_of", "is_aggregate_type", "name_type"]

_MAX_LOCAL_ELEMENTS = 1024    # initialised elements of a local array of structs
_MAX_ZEROS = 65536            # elements of a comptime @zeros array of structs
_HANDLE_VALUES = (ColorVal, TaskIdVal, QueueVal, UtIdVal)


def is_aggregate_type(t) -> bool:
    """Whether `t` is a struct or enum type, or an array of them, of handles held at run
    time (colors, task IDs, queues) or of pointers."""
    if isinstance(t, ArrayT):
        t = t.elem
        if is_runtime_handle_type(t) or isinstance(t, PtrT):
            return True
    return isinstance(t, (StructT, EnumT))


def name_type(d: ast.VarDecl, v) -> None:
    """A `const` declaration names the struct or enum type it is given (`const P = struct
    {...};`), as error messages then call it."""
    if d.const and isinstance(v, (StructT, EnumT)) and v.name in ("struct", "enum"):
        object.__setattr__(v, "name", d.name)


def _join(prefix: str, path: tuple) -> str:
    return ".".join((prefix, *path))


def aggregate_type_of(v):
    """The struct or enum type of a value held at run time, else None."""
    if isinstance(v, StructVal):
        return v.stype
    if isinstance(v, StructRef):
        return v.stype
    if isinstance(v, (EnumVal, EnumRVal)):
        return v.etype
    if isinstance(v, ObjArrayVal) and (isinstance(v.elem, (StructT, EnumT, PtrT))
                                       or is_runtime_handle_type(v.elem)):
        return ArrayT(v.elem, tuple(v.values.shape))
    return None


def _has_runtime(v) -> bool:
    """Whether a struct value has a field known only at run time."""
    if isinstance(v, (RVal, StructRef)):
        return True
    if isinstance(v, StructVal):
        return any(_has_runtime(x) for x in v.fields.values())
    return False


class AggregateMixin:
    """Structs and enums in PE memory, in locals, parameters and return values."""

    # -- types --------------------------------------------------------------------------------

    def leaves(self, t, pos, what: str) -> list:
        """The scalar leaves `(path, ctype)` of a struct or enum type `t`, in field order."""
        if isinstance(t, DType):
            return [((), self.checked_fp16(t, pos, what))]
        if isinstance(t, EnumT):
            if not isinstance(t.tag, DType) or not t.tag.is_int:
                raise self.error(f"{what}: enum tag type {t.tag} is not an integer type", pos)
            return [((), t)]
        if is_runtime_handle_type(t) or isinstance(t, PtrT):
            return [((), t)]
        if isinstance(t, StructT):
            out = []
            for name, ft, _ in t.fields:
                out += [((name, *p), leaf) for p, leaf in self.leaves(ft, pos, f"{what}.{name}")]
            return out
        raise self.error(f"{what}: a struct field of type {t} cannot be held at run time (only "
                         "numbers, bools, enums and structs of them)", pos)

    def checked_fp16(self, t, pos, what: str):
        """`t`, where it is not a 16-bit float type other than the program's fp16 format
        (only that one may appear in runtime code)."""
        if isinstance(t, DType) and t.is_float and t.bits == 16 and t != self.fp16:
            raise self.error(f"{what}: {t} in runtime code, but the program's fp16 format is "
                             f"{self.fp16} (cslc --fp16-format); only {self.fp16} may be held "
                             "or computed at run time", pos)
        return t

    def zero_value(self, t, pos):
        """`@zeros(t)` of a struct or enum type, or an array of them."""
        if isinstance(t, DType):
            return self.coerce(0 if t is not DType.bool_ else False, t, pos, "@zeros")
        if isinstance(t, EnumT):
            for name, value in t.members:
                if value == 0:
                    return EnumVal(t, name, 0)
            raise self.error(f"@zeros({t}): {t} has no member of value 0", pos)
        if isinstance(t, StructT):
            return StructVal({name: self.zero_value(ft, pos) for name, ft, _ in t.fields}, t)
        if isinstance(t, ArrayT) and isinstance(t.elem, (StructT, EnumT)):
            n = int(np.prod(t.shape, dtype=np.int64))
            if n > _MAX_ZEROS:
                raise self.error(f"@zeros({t}): more than {_MAX_ZEROS} elements", pos)
            return ObjArrayVal(t.elem, object_array([self.zero_value(t.elem, pos)
                                                     for _ in range(n)], t.shape))
        if t is COMPTIME_INT or t is COMPTIME_FLOAT:
            return 0 if t is COMPTIME_INT else 0.0
        raise self.error(f"@zeros({t}): {t} has no zero value (a pointer is never null, a "
                         "handle type has no zero); @zeros takes numbers, bools, enums, "
                         "structs and arrays of them", pos)

    # -- slots --------------------------------------------------------------------------------

    def read_slot(self, slot: Slot) -> RVal:
        dt = slot.dtype
        e = ir.Load(slot.name, slot.indices, dt) if slot.kind == "sym" else ir.Local(slot.name,
                                                                                     dt)
        if is_runtime_handle_type(slot.ctype):
            return self.handle_value(e, slot.ctype)
        if isinstance(slot.ctype, PtrT):
            return RPtr(e, slot.ctype)
        return EnumRVal(e, dt, slot.ctype) if isinstance(slot.ctype, EnumT) else RVal(e, dt)

    @staticmethod
    def write_slot(fn: FnCtx, slot: Slot, e) -> None:
        if slot.kind == "sym":
            fn.emit(ir.Assign(slot.name, slot.indices, e))
        else:
            fn.emit(ir.LocalAssign(slot.name, e))

    def leaf_expr(self, v, ctype, pos, what: str):
        """The IR expression of value `v` stored in a leaf of type `ctype`."""
        if isinstance(ctype, EnumT):
            if v is UNDEFINED:
                return ir.Const(0, ctype.tag)
            v = self.coerce(v, ctype, pos, what)
            return v.expr if isinstance(v, EnumRVal) else ir.Const(v.value, ctype.tag)
        if is_runtime_handle_type(ctype):
            return self.handle_number(v, ctype, pos, what)
        if isinstance(ctype, PtrT):
            return self.runtime_pointer(v, ctype, pos, what).expr
        return self.to_expr(v, ctype, pos, what)

    def struct_member(self, ref: StructRef, name: str, pos):
        """Field `name` of a struct held at run time: a Slot, or a StructRef of a struct."""
        for fname, ft, _ in ref.stype.fields:
            if fname == name:
                full = f"{ref.prefix}.{name}"
                if isinstance(ft, StructT):
                    held = self.pooled_member(ref, name, ft)
                    return held if held is not None else StructRef(ft, ref.kind, full,
                                                                   ref.indices, ref.const)
                return Slot(ref.kind, full, ref.indices, ft, ref.const)
        fields = ", ".join(f[0] for f in ref.stype.fields) or "none"
        raise self.error(f"{ref.stype} has no field '{name}' (fields: {fields})", pos)

    def member_value(self, obj, name: str, pos):
        """`obj.name` of a struct or array held at run time."""
        if isinstance(obj, MemArray):
            if name == "len":
                return obj.shape[0]
            raise self.error(f"{describe(obj)} has no member '{name}'", pos)
        m = self.struct_member(obj, name, pos)
        return self.read_slot(m) if isinstance(m, Slot) else m

    def leaf_values(self, v, t, pos, what: str) -> list:
        """`(path, ctype, value)` of every leaf of value `v` of struct or enum type `t`."""
        if not isinstance(t, StructT):
            return [((), t, v)]
        if v is UNDEFINED:
            v = self.zero_value(t, pos)
        v = self.coerce(v, t, pos, what)
        out = []
        for name, ft, _ in t.fields:
            fv = self.member_value(v, name, pos) if isinstance(v, StructRef) else v.fields[name]
            out += [((name, *p), c, x) for p, c, x in self.leaf_values(fv, ft, pos,
                                                                       f"{what}.{name}")]
        return out

    def store(self, fn: FnCtx, place, v, pos, what: str, init: bool = False) -> None:
        """Emit the stores of value `v` into `place` (a Slot or a StructRef)."""
        if place.const and not init:
            raise self.error(f"{what} is constant (a parameter, a value, or reached through "
                             "a pointer to const); it cannot be assigned", pos)
        if isinstance(place, Slot):
            self.write_slot(fn, place, self.leaf_expr(v, place.ctype, pos, what))
            return
        exprs = [(p, self.leaf_expr(x, c, pos, f"{what}.{'.'.join(p)}"))
                 for p, c, x in self.leaf_values(v, place.stype, pos, what)]
        if len(exprs) > 1:
            # every field is read before any is written (`p = .{ .x = p.y, .y = p.x }`)
            held = []
            for p, e in exprs:
                if not isinstance(e, ir.Const):
                    tmp = self._pe_stack[-1].fresh("field.")
                    fn.emit(ir.LocalAssign(tmp, e))
                    e = ir.Local(tmp, e.dtype)
                held.append((p, e))
            exprs = held
        targets = dict(self.place_slots(place, pos))
        for p, e in exprs:
            self.write_slot(fn, targets[p], e)

    def place_slots(self, place, pos) -> list:
        """`(path, Slot)` of every scalar leaf of a Slot or StructRef held at run time, in
        field order (a struct in a pool holds its struct fields in their types' pools)."""
        if isinstance(place, Slot):
            return [((), place)]
        out = []
        for name, _, _ in place.stype.fields:
            m = self.struct_member(place, name, pos)
            out += [((name, *p), s) for p, s in self.place_slots(m, pos)]
        return out

    # -- globals ------------------------------------------------------------------------------

    def declare_leaves(self, pe, prefix: str, t, shape: tuple, items=None) -> None:
        """The symbols of a struct or enum held in PE memory (`items`: the initial element
        values in row-major order, None for zeros)."""
        for path, ctype in self.leaves(t, None, prefix):
            name = _join(prefix, path) if path else prefix
            dt = leaf_dtype(ctype)
            init = None
            if items is not None:
                vals = [leaf_const(x, path) for x in items]
                init = tuple(vals) if any(vals) else None
            pe.symbols[name] = ir.Symbol(name, dt, shape, init)

    def aggregate_global(self, mod, d: ast.VarDecl, t, v):
        """A PE program's `var` of a struct or enum type, or an array of them."""
        name = mod.prefix + d.name
        what = f"'var {d.name}'"
        elem, shape = (t.elem, tuple(t.shape)) if isinstance(t, ArrayT) else (t, ())
        leaves = self.leaves(elem, d.pos, what)
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        need = n * sum(leaf_dtype(c).nbytes for _, c in leaves)
        if need > PE_MEMORY_BYTES:
            raise self.error(f"{what}: {t} needs {need} bytes, more than the {PE_MEMORY_BYTES} "
                             "bytes of a PE's memory", d.pos)
        items = None
        if v is not None and v is not UNDEFINED:
            if _has_runtime(v) or isinstance(v, RVal):
                raise self.error(f"the initial value of '{d.name}' must be comptime-known",
                                 d.pos)
            v = self.coerce(v, t, d.pos, f"'{d.name}'")
            items = v.values.reshape(-1).tolist() if shape else [v]
            if isinstance(elem, PtrT) and not is_fn_pointer_type(elem) and not all(
                    static_pointer(x) or x is UNDEFINED for x in items):
                raise self.error(f"the initial pointers of '{d.name}' must be comptime-known "
                                 "(like &A)", d.pos)
        if self.is_pooled(mod, d.name, elem):
            return self.pooled_variable(mod.pe, elem, shape, items, d.pos)
        self.declare_leaves(mod.pe, name, elem, shape, items)
        if shape:
            return MemArray(elem, name, shape)
        if isinstance(elem, StructT):
            return StructRef(elem, "sym", name)
        return Slot("sym", name, (), elem)

    def index_mem_array(self, arr: MemArray, e: ast.Index, env: Env, read: bool = True):
        """`ps[i]` of an array of structs (a StructRef) or enums (its value, or its Slot)."""
        self.need_fn(env, e.pos, "indexing an array of structs or enums")
        if len(e.indices) != len(arr.shape):
            raise self.error(f"'{arr.prefix}' has rank {len(arr.shape)}, indexed with "
                             f"{len(e.indices)} indices", e.pos)
        idx = tuple(self.to_index(self.ev(i, env), i.pos) for i in e.indices)
        for i, n in zip(idx, arr.shape):
            if isinstance(i, ir.Const) and not 0 <= i.value < n:
                raise self.error(f"index {i.value} out of range of '{arr.prefix}' (shape "
                                 f"{list(arr.shape)})", e.pos)
        if isinstance(arr, PooledArray):
            return StructRef(arr.elem, "sym", arr.prefix, (arr.flat(idx),), arr.const)
        if isinstance(arr.elem, StructT):
            return StructRef(arr.elem, "sym", arr.prefix, idx)
        slot = Slot("sym", arr.prefix, idx, arr.elem)
        if read and is_runtime_handle_type(arr.elem):
            return self.held_handle(self.read_slot(slot), env)
        return self.read_slot(slot) if read else slot

    def index_const_structs(self, arr: ObjArrayVal, e: ast.Index, env: Env):
        """A runtime index into a comptime array of structs or enums: the array placed in PE
        memory (once per array), its element read from there."""
        pe = env.module.pe
        self.need_fn(env, e.pos, "indexing a comptime array with a runtime index")
        ref = pe.const_arrays.get(id(arr))
        if ref is None:
            name = f"%const{len(pe.const_arrays)}"
            shape = tuple(arr.values.shape)
            self.declare_leaves(pe, name, arr.elem, shape, arr.values.reshape(-1).tolist())
            ref = pe.const_arrays[id(arr)] = (MemArray(arr.elem, name, shape), arr)
        got = self.index_mem_array(ref[0], e, env)
        return StructRef(got.stype, got.kind, got.prefix, got.indices, True) \
            if isinstance(got, StructRef) else got

    def mem_array_item(self, arr: MemArray, idx: tuple):
        """Element `idx` of an array of structs or enums as a loop's capture (a value)."""
        if isinstance(arr, PooledArray):
            return StructRef(arr.elem, "sym", arr.prefix, (arr.flat(idx),), True)
        if isinstance(arr.elem, StructT):
            return StructRef(arr.elem, "sym", arr.prefix, idx, True)
        return self.read_slot(Slot("sym", arr.prefix, idx, arr.elem))

    # -- locals -------------------------------------------------------------------------------

    def is_aggregate_local(self, d: ast.VarDecl, t, v) -> bool:
        """Whether a function's `var`/`const` declaration holds a struct or enum at run
        time."""
        if is_aggregate_type(t):
            return not d.const or _has_runtime(v) or isinstance(v, RVal)
        if t is not None:
            return False
        if d.const:
            return isinstance(v, (StructRef, EnumRVal)) or (
                isinstance(v, StructVal) and v.stype is not None and _has_runtime(v))
        return aggregate_type_of(v) is not None

    def aggregate_local(self, d: ast.VarDecl, t, v, env: Env) -> None:
        fn = env.fn
        what = f"'{d.name}'"
        t = t if t is not None else aggregate_type_of(v)
        if t is None:
            raise self.error(f"{what} needs a type: `var {d.name}: T = ...`", d.pos)
        if isinstance(t, ArrayT):
            fn.unrecursive.append((d.pos, f"array local '{d.name}'", STATIC_WHY))
            env.bind(d.name, self.local_mem_array(d, t, v, env))
            return
        if isinstance(t, StructT):
            fn.unrecursive.append((d.pos, f"struct local '{d.name}'", STRUCT_WHY))
        prefix = env.module.pe.fresh(d.name + ".")
        if self.is_pooled(env.module, d.name, t):
            place = self.pooled_variable(env.module.pe, t, (), None, d.pos)
            prefix = place.prefix
        elif isinstance(t, StructT):
            place = StructRef(t, "local", prefix)
        elif d.name in fn.addressed:       # an enum whose address is taken: in memory
            place = Slot("sym", self.static_local(env, d.name, t.tag, ()).name, (), t)
        else:
            place = Slot("local", prefix, (), t)
        self.store(fn, place, v if v is not UNDEFINED else self.zero_or_undefined(t, d),
                   d.pos, what, init=True)
        if isinstance(place, Slot):
            env.bind(d.name, self.read_slot(place) if d.const else place)
        else:
            env.bind(d.name, StructRef(t, place.kind, prefix, place.indices, d.const))

    def zero_or_undefined(self, t, d):
        return UNDEFINED if isinstance(t, EnumT) else self.zero_value(t, d.pos)

    def local_mem_array(self, d: ast.VarDecl, t: ArrayT, v, env: Env) -> MemArray:
        """A local array of structs or enums: static memory named after the function."""
        pe = env.module.pe
        shape = tuple(t.shape)
        if self.is_pooled(env.module, d.name, t):
            arr = self.pooled_variable(pe, t.elem, shape, None, d.pos)
        else:
            base = f"{env.module.prefix}{env.fn.name}.{d.name}"
            name, k = base, 1
            while any(s == name or s.startswith(name + ".") for s in pe.symbols):
                k += 1
                name = f"{base}#{k}"
            self.declare_leaves(pe, name, t.elem, shape)
            arr = MemArray(t.elem, name, shape)
        if v is UNDEFINED:
            return arr
        v = self.coerce(v, t, d.pos, f"'{d.name}'")
        items = v.values.reshape(-1).tolist()
        if len(items) > _MAX_LOCAL_ELEMENTS:
            self.copy_initial_items(env, arr, items, d.pos)
            return arr
        for k, x in enumerate(items):
            idx = tuple(ir.Const(int(i), DType.i32) for i in np.unravel_index(k, t.shape))
            self.store(env.fn, self.mem_array_place(arr, idx), x, d.pos, f"'{d.name}'")
        return arr

    def assign_mem_array(self, arr: MemArray, value, env: Env, pos, what: str) -> None:
        """`a = v` of a whole array of structs, enums or handles in PE memory: element by
        element, from a comptime array or another such array of the same type."""
        self.need_fn(env, pos, "assignment to a runtime variable")
        self.store_mem_array(arr, self.ev(value, env), env, pos, what)

    def store_mem_array(self, arr: MemArray, v, env: Env, pos, what: str) -> None:
        """The writes of `assign_mem_array`, of value `v`."""
        fn = env.fn
        t = ArrayT(arr.elem, arr.shape)
        shape = tuple(arr.shape)
        count = int(np.prod(shape))
        if isinstance(v, MemArray):
            if v.elem != arr.elem or tuple(v.shape) != shape:
                raise self.error(f"{what}: expected {t}, got {describe(v)} of shape "
                                 f"{list(v.shape)}", pos)
            if count > _MAX_LOCAL_ELEMENTS:
                self.copy_mem_array(env, arr, v, pos)
                return
            items = [self.mem_array_item(v, _const_index(k, shape)) for k in range(count)]
        else:
            items = self.coerce(v, t, pos, what).values.reshape(-1).tolist()
            if count > _MAX_LOCAL_ELEMENTS:
                self.copy_initial_items(env, arr, items, pos)
                return
        for k, x in enumerate(items):
            idx = _const_index(k, shape)
            self.store(fn, self.mem_array_place(arr, idx), x, pos, what)

    @staticmethod
    def mem_array_place(arr: MemArray, idx: tuple):
        """The Slot or StructRef of element `idx` of an array of structs or enums."""
        if isinstance(arr, PooledArray):
            return StructRef(arr.elem, "sym", arr.prefix, (arr.flat(idx),))
        if isinstance(arr.elem, StructT):
            return StructRef(arr.elem, "sym", arr.prefix, idx)
        return Slot("sym", arr.prefix, idx, arr.elem)

    def copy_initial_items(self, env: Env, arr: MemArray, items: list, pos) -> None:
        """A large local array of structs or enums takes its initial value field by field:
        each field's initial values kept in a symbol of their own, copied in by a loop each
        time the declaration runs."""
        pe = env.module.pe
        pooled = isinstance(arr, PooledArray)
        k = ir.Local(pe.fresh("k."), DType.i32) if pooled else None
        inits = {}       # leaf path -> its initial value at element k (an array in a pool)
        for path, ctype in self.leaves(arr.elem, pos, arr.prefix):
            name = _join(arr.prefix, path) if path else arr.prefix
            dt = leaf_dtype(ctype)
            flat = np.array([leaf_const(x, path) for x in items], dtype=object)
            if not pooled:
                env.fn.emit(self.copy_initial_value(env, SymRef(name, dt, arr.shape), flat))
                continue
            init = pe.fresh(f"{name}.init")
            pe.symbols[init] = ir.Symbol(init, dt, (len(items),), tuple(flat.tolist()))
            inits[path] = ir.Load(init, (k,), dt)
        if pooled:
            at = StructRef(arr.elem, "sym", arr.prefix, (ir.Bin("+", arr.base, k, DType.i32),))
            body = tuple(ir.Assign(s.name, s.indices, inits[p])
                         for p, s in self.place_slots(at, pos))
            env.fn.emit(ir.For(k.name, DType.i32, 0, len(items), 1, body))

    def copy_mem_array(self, env: Env, dst: MemArray, src: MemArray, pos) -> None:
        """`dst = src` of two large arrays of structs, enums or handles of one type: a
        runtime loop over the elements copies each leaf."""
        def copy(idx):
            reads = dict(self.place_slots(self.mem_array_place(src, idx), pos))
            for path, s in self.place_slots(self.mem_array_place(dst, idx), pos):
                r = reads[path]
                yield ir.Assign(s.name, s.indices, ir.Load(r.name, r.indices, r.dtype))

        env.fn.emit(self.index_loops(env, dst.prefix, tuple(dst.shape), copy))

    def comptime_only_local(self, d: ast.VarDecl, t) -> None:
        """Refuse a runtime `var` of a comptime-only type (spec 3.1: such variables must be
        `const` or `comptime var`)."""
        if isinstance(t, (Special, FnT)) and not (isinstance(t, Special) and t.name in
                                                   HANDLE_TYPES):
            raise self.error(f"'{d.name}': {t} is a comptime-only type; a variable of it must "
                             "be const or comptime var", d.pos)

    def is_handle_local(self, t, v) -> bool:
        return (isinstance(t, Special) and t.name in HANDLE_TYPES) or (
            t is None and (isinstance(v, _HANDLE_VALUES) or isinstance(v, RtHandleVal)))

    def handle_local(self, d: ast.VarDecl, t, v, env: Env) -> None:
        """A runtime local of a handle type (color, task ID, queue, ...): it holds a
        comptime-known value, or, where its initial value is known only at run time, a u16
        number."""
        what = f"'{d.name}'"
        if isinstance(v, RtHandleVal) or isinstance(v, UtIdVal) and v.known is None:
            self.runtime_handle_local(d, t, v, env)
            return
        if not d.const and d.name in env.fn.nested and v is not UNDEFINED:
            self.held_handle_local(d, t, v, env)
            return
        if v is UNDEFINED:
            raise self.error(f"{what}: a runtime var of type {t} needs a comptime-known "
                             "initial value", d.pos)
        if t is not None:
            v = self.coerce(v, t, d.pos, what)
        if not is_comptime_value(v) or isinstance(v, UtIdVal) and v.known is None:
            raise self.error(f"{what}: a runtime var of type {t or 'a handle'} holds a "
                             f"comptime-known value here, got {describe(v)}", d.pos)
        env.bind(d.name, v if d.const else FixedLocal(d.name, v, t, env.fn.depth,
                                                      _runtime_loops(env.fn)))

    def runtime_handle_local(self, d: ast.VarDecl, t, v, env: Env) -> None:
        """A local of a handle type whose initial value is known only at run time: a const
        is that handle, a var a u16 local that takes handles of its type."""
        what = f"'{d.name}'"
        if t is not None:
            v = self.coerce(v, t, d.pos, what)
        if d.const:
            env.bind(d.name, v)
            return
        t = Special(v.type_name if isinstance(v, RtHandleVal) else "ut_id")
        slot = Slot("local", env.module.pe.fresh(d.name + "."), (), t)
        self.store(env.fn, slot, v, d.pos, what, init=True)
        env.bind(d.name, slot)

    def assign_fixed(self, b: FixedLocal, value, env: Env, pos) -> None:
        """Assignment to a runtime var of a handle type: a new comptime-known value, outside
        any runtime branch or loop of its declaration."""
        v = self.ev(value, env)
        if b.type is not None:
            v = self.coerce(v, b.type, pos, f"'{b.name}'")
        if not is_comptime_value(v) or isinstance(v, (RVal, UtIdVal)) and getattr(
                v, "known", 0) is None:
            raise self.error(f"'{b.name}' takes comptime-known values only, got "
                             f"{describe(v)}", pos)
        fn = env.fn
        if fn is None or fn.depth != b.depth or _runtime_loops(fn) != b.loops:
            raise self.error(f"'{b.name}' (of type {b.type or 'a handle'}) is assigned inside "
                             "a runtime branch or loop; wsejax holds such a var as a "
                             "comptime-known value, which cannot change at run time", pos)
        b.value = v

    # -- places -------------------------------------------------------------------------------

    def aggregate_target(self, target, env: Env):
        """The Slot or StructRef that assignment target `target` names, else None (without
        evaluating anything but the names of a plain `a[i]`)."""
        if isinstance(target, ast.Index) and isinstance(target.obj, ast.Ident):
            found, b = env.lookup(target.obj.name)
            if not found and env.module.has(target.obj.name):
                b = env.module.get(target.obj.name, target.obj.pos)
            if isinstance(b, MemArray):
                return self.index_mem_array(b, target, env, read=False)
        return None

    def assign_place(self, place, value, env: Env, pos, what: str) -> None:
        fn = self.need_fn(env, pos, "assignment to a runtime variable")
        want = place.ctype if isinstance(place, Slot) else place.stype
        self.store(fn, place, self.ev_as(value, want, env), pos, what)

    # -- enums --------------------------------------------------------------------------------

    def runtime_enum_compare(self, op, a, b, pos) -> RVal:
        """`==` / `!=` with a runtime enum operand."""
        if op not in ("==", "!="):
            raise self.error(f"enums compare only with == and !=, not '{op}'", pos)
        et = a.etype if isinstance(a, EnumRVal) else b.etype
        ea = self.leaf_expr(a, et, pos, f"operand of '{op}'")
        eb = self.leaf_expr(b, et, pos, f"operand of '{op}'")
        return RVal(ir.Bin(op, ea, eb, DType.bool_), DType.bool_)

    def as_type(self, t, v, pos):
        """`@as(t, v)` to a type other than a number's: an enum from its value, else the
        implicit conversion."""
        return self.enum_as(t, v, pos) if isinstance(t, EnumT) else self.coerce(v, t, pos, "@as")

    def enum_as(self, t: EnumT, v, pos):
        """`@as(E, x)`: the member of E whose value is integer x."""
        if isinstance(v, (EnumVal, EnumRVal, EnumLitVal)):
            return self.coerce(v, t, pos, "@as")
        if isinstance(v, RVal):
            if not v.dtype.is_int:
                raise self.error(f"@as({t}, ...) takes an integer, got {v.dtype}", pos)
            e = v.expr if v.dtype == t.tag else ir.Cast(v.expr, t.tag)
            return EnumRVal(e, t.tag, t)
        n = v.value if hasattr(v, "value") and not isinstance(v, EnumVal) else v
        if isinstance(n, int) and not isinstance(n, bool):
            for name, value in t.members:
                if value == n:
                    return EnumVal(t, name, value)
            raise self.error(f"@as({t}, {n}): {t} has no member of value {n}", pos)
        raise self.error(f"@as({t}, ...) cannot convert {describe(v)}", pos)

    def covers_enum(self, x, prongs, env: Env) -> bool:
        """Whether the prongs of a switch on runtime enum `x` name every member."""
        if not isinstance(x, EnumRVal):
            return False
        names = set()
        for p in prongs:
            for v in p.values:
                w = self.ev(v, env)
                if isinstance(w, (EnumVal, EnumLitVal)):
                    names.add(w.name)
        return names >= {n for n, _ in x.etype.members}

    def select_held(self, cond, a, b, want, pos):
        """`if (cond) a else b` on a runtime condition where a and b are structs or enums
        (of type `want` where given): both evaluated, each leaf selected; None for other
        values."""
        fns = self.select_fn_pointers(cond, a, b, want, pos)
        if fns is not None:
            return fns
        t = want if isinstance(want, (StructT, EnumT)) else (
            aggregate_type_of(a) or aggregate_type_of(b))
        if not isinstance(t, (StructT, EnumT)):
            return None
        if isinstance(t, EnumT):
            e = ir.Select(cond, self.leaf_expr(a, t, pos, "if branch"),
                          self.leaf_expr(b, t, pos, "if branch"), t.tag)
            return EnumRVal(e, t.tag, t)
        a = self.coerce(a, t, pos, "if branch")
        b = self.coerce(b, t, pos, "if branch")
        fields = {}
        for name, ft, _ in t.fields:
            x, y = self._field(a, name, pos), self._field(b, name, pos)
            if isinstance(ft, (StructT, EnumT)):
                fields[name] = self.select_held(cond, x, y, ft, pos)
            else:
                fields[name] = RVal(ir.Select(cond, self.to_expr(x, ft, pos),
                                              self.to_expr(y, ft, pos), ft), ft)
        return StructVal(fields, t)

    def _field(self, v, name: str, pos):
        return self.member_value(v, name, pos) if isinstance(v, StructRef) else v.fields[name]

    # -- parameters and return values -----------------------------------------------------

    def aggregate_args(self, a, t, pos, what: str) -> list:
        """The IR arguments of one struct or enum argument: one per leaf."""
        return [self.leaf_expr(x, c, pos, what) for _, c, x in self.leaf_values(a, t, pos, what)]

    def aggregate_params(self, pname: str, t, pos) -> list:
        """The IR parameters `(name, dtype)` of one struct or enum parameter."""
        return [(_join(pname, p) if p else pname, leaf_dtype(c))
                for p, c in self.leaves(t, pos, pname)]

    @staticmethod
    def aggregate_param_value(pname: str, t):
        if isinstance(t, StructT):
            return StructRef(t, "local", pname, (), True)
        return EnumRVal(ir.Local(pname, t.tag), t.tag, t)

    @staticmethod
    def ret_prefix(fname: str) -> str:
        return f"{fname}.%ret"

    def aggregate_result(self, name: str, irargs, t, env: Env):
        """The value of a call of function `name` that returns struct or enum type `t`."""
        fn = env.fn
        pe = env.module.pe
        if isinstance(t, EnumT):
            tmp = pe.fresh("ret")
            fn.emit(ir.LocalAssign(tmp, ir.CallExpr(name, tuple(irargs), t.tag)))
            return EnumRVal(ir.Local(tmp, t.tag), t.tag, t)
        fn.emit(ir.Call(name, tuple(irargs)))
        out = StructRef(t, "local", pe.fresh("ret."), (), True)
        self.store(fn, out, StructRef(t, "sym", self.ret_prefix(name)), None, "return value",
                   init=True)
        return out

    def aggregate_return(self, fn: FnCtx, v, pos) -> None:
        if isinstance(fn.ret, EnumT):
            fn.emit(ir.Return(self.leaf_expr(v, fn.ret, pos, "return value")))
            return
        self.store(fn, StructRef(fn.ret, "sym", self.ret_prefix(fn.name)), v, pos,
                   "return value", init=True)
        fn.emit(ir.Return(None))


def _runtime_loops(fn) -> int:
    return 0 if fn is None else sum(kind == "runtime" for _, kind, _ in fn.loops)


def _const_index(k: int, shape: tuple) -> tuple:
    """The constant IR indices of element `k` (row-major) of an array of shape `shape`."""
    return tuple(ir.Const(int(i), DType.i32) for i in np.unravel_index(k, shape))
