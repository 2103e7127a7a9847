"""Expressions of the comptime evaluator: `ev` dispatches on the node's class to `ev_<Class>`
(pycparser's visitor), names and member reads, indexing, operators, if and switch
expressions, literals and type expressions.

Comptime operands fold to values; a runtime operand makes the result an `RVal` holding an IR
expression.

`ExprMixin` uses from `self`: `error`; the conversions of `CoerceMixin` (`eval_type`, `coerce`,
`to_expr`, `to_index`, `comptime_int`, `peer`, `fold_binary`, `enum_compare`); `exec_block`,
`emit_block`, `need_fn` and `lvalue` of `StmtMixin`; the PE programs being built
(`_pe_stack`) and its dispatch cache `_ev_handlers`. Calls (`ev_Call`) are `CallMixin`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wsejax import ir
from wsejax.csl import ast, builtins
from wsejax.csl.env import Module
from wsejax.csl.fold import fold_unary
from wsejax.csl.struct_pointers import is_struct_pointer
from wsejax.csl.values import (
    DIRECTIONS,
    DSD_KINDS,
    SCALARS,
    SPECIALS,
    UNDEFINED,
    ArrayT,
    ArrayVal,
    CellVar,
    CNum,
    DsdArray,
    DsdVal,
    DsdVarRef,
    EnumLitVal,
    EnumRVal,
    EnumT,
    EnumVal,
    FixedLocal,
    FnT,
    FnVal,
    LocalDsd,
    LocalVar,
    MemArray,
    ModuleVal,
    NativeFn,
    ObjArrayVal,
    PickedVar,
    PtrCell,
    PtrT,
    PtrVal,
    PtrVar,
    RArray,
    RPtr,
    RVal,
    Slot,
    Special,
    StructRef,
    StructT,
    StructVal,
    SymRef,
    TensorAccessVal,
    TupleVal,
    describe,
    flat_indices,
    is_comptime,
    is_comptime_value,
    is_runtime_handle_type,
    is_type,
    object_array,
    static_pointer,
    string_bytes,
)
from wsejax.dsd import Affine
from wsejax.errors import CslError
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.csl.env import Env

__all__ = ["ExprMixin"]

# types whose values no array holds
_NOT_ELEMENTS = ("void", "noreturn", "undefined", "anytype")
_ARRAYS_OF_ARRAYS = ("CSL has no arrays of arrays ([N]{elem}); write a multi-dimensional "
                     "array [N, M]T")


class ExprMixin:
    """Expressions: `ev(node, env)` is the node's value."""

    def ev(self, e, env: Env):
        handler = self._ev_handlers.get(type(e))
        if handler is None:
            handler = self._ev_handlers[type(e)] = getattr(
                self, "ev_" + type(e).__name__, None) or self.ev_unexpected
        return handler(e, env)

    def ev_unexpected(self, e, env: Env):
        raise self.error(f"unexpected expression {type(e).__name__}", getattr(e, "pos", None))

    # -- literals ---------------------------------------------------------------------------

    def ev_IntLit(self, e: ast.IntLit, env: Env):
        return e.value

    ev_FloatLit = ev_BoolLit = ev_StringLit = ev_IntLit

    def ev_UndefinedLit(self, e: ast.UndefinedLit, env: Env):
        return UNDEFINED

    def ev_EnumLit(self, e: ast.EnumLit, env: Env):
        return EnumLitVal(e.name)

    def ev_StructLit(self, e: ast.StructLit, env: Env):
        fields = {}
        for name, x in e.fields:
            if name in fields:
                raise self.error(f"field '{name}' given twice", x.pos)
            fields[name] = self.ev(x, env)
        if e.type is not None:
            st = self.eval_type(e.type, env)
            return self.coerce(StructVal(fields), st, e.pos, str(st))
        return StructVal(fields)

    def ev_TupleLit(self, e: ast.TupleLit, env: Env):
        return TupleVal([self.ev(x, env) for x in e.items])

    def ev_ArrayLit(self, e: ast.ArrayLit, env: Env):
        """`[3]i16 {1, 2, 3}`; a multi-dimensional literal lists its elements in row-major
        order (`[2, 3]i16 {1, 2, 3, 4, 5, 6}`), as the array is laid out."""
        t = e.type
        if not isinstance(t, ast.ArrayType):
            raise self.error("an array literal needs an array type like [3]i16", e.pos)
        elem = self.eval_type(t.elem, env)
        if isinstance(elem, ArrayT):
            raise self.error(_ARRAYS_OF_ARRAYS.format(elem=elem), e.pos)
        if isinstance(elem, Special) and elem.name in _NOT_ELEMENTS:
            raise self.error(f"an array cannot hold {elem}", e.pos)
        items = [self.coerce(self.ev(x, env), elem, x.pos, "array element") for x in e.items]
        if isinstance(elem, Special) and elem.name in DSD_KINDS:
            items = self.held_dsds(items, env)
        elif any(isinstance(i, (RVal, LocalVar)) or not is_comptime_value(i) for i in items):
            raise self.error("array literal elements must be comptime-known", e.pos)
        dims = [None if d is None else self.comptime_int(self.ev(d, env), e.pos) for d in t.dims]
        shape = self.literal_shape(dims, len(items), e.pos)
        if isinstance(elem, DType):
            return ArrayVal(elem, np.array([i.value for i in items], elem.np).reshape(shape))
        return ObjArrayVal(elem, object_array(items, shape))

    def literal_shape(self, dims: list, n: int, pos) -> tuple:
        """The shape of an array literal of n elements whose type has dimensions `dims`
        (`_`, None, in the first one: what the elements make it)."""
        if any(d is None for d in dims[1:]):
            raise self.error("only the first dimension of an array literal may be _", pos)
        rest = int(np.prod(dims[1:], dtype=np.int64))
        if dims[0] is None:
            if rest == 0 or n % rest:
                raise self.error(f"array literal has {n} elements, not a whole number of "
                                 f"rows of {rest}", pos)
            dims = [n // rest, *dims[1:]]
        need = int(np.prod(dims, dtype=np.int64))
        if need != n:
            shape = ", ".join(map(str, dims))
            raise self.error(f"array literal has {n} elements, its type [{shape}] holds "
                             f"{need}", pos)
        return tuple(dims)

    def ev_Builtin(self, e: ast.Builtin, env: Env):
        return builtins.call(self, e, env)

    def ev_TensorAccess(self, e: ast.TensorAccess, env: Env):
        return TensorAccessVal(e, env)

    def ev_ComptimeExpr(self, e: ast.ComptimeExpr, env: Env):
        v = self.ev(e.expr, env.comptime())
        if isinstance(v, (RVal, LocalVar)):
            raise self.error("this is not comptime-known", e.pos)
        return v

    def ev_Block(self, e: ast.Block, env: Env, want=None):
        """A block as an expression: its value is what `break :label value` leaves with."""
        if e.label is None:
            self.exec_block(e, env)
            return None
        return self.labelled_block(e, env, want, value=True)

    # -- names ------------------------------------------------------------------------------

    def ev_Ident(self, e: ast.Ident, env: Env):
        found, v = env.lookup(e.name)
        if found:
            return self.read(v, env, e.pos)
        mod = env.module
        if mod.has(e.name):
            return self.read(mod.get(e.name, e.pos), env, e.pos)
        if e.name in SCALARS:
            return SCALARS[e.name]
        if e.name in SPECIALS:
            return SPECIALS[e.name]
        if e.name in DIRECTIONS:
            return EnumLitVal(e.name)
        if e.name == "null":
            return UNDEFINED
        raise self.error(f"unknown name '{e.name}'", e.pos)

    def read(self, v, env: Env, pos):
        """The value of a binding when read."""
        if isinstance(v, CellVar):
            return v.value
        if isinstance(v, (LocalVar, LocalDsd, PickedVar)):
            return v.value()
        if isinstance(v, DsdVarRef):
            return v.value() if env.fn is not None else DsdVal(
                ir.DsdLit(self.pe_dsd_init(v.name)), v.kind, v.dtype)
        if isinstance(v, SymRef) and not v.shape:
            if env.fn is None:
                return v
            return RVal(ir.Load(v.name, (), v.dtype), v.dtype)
        if isinstance(v, PtrVar):
            return v.ptr
        if isinstance(v, Slot) and env.fn is not None:
            return self.read_held(v, env)
        if isinstance(v, FixedLocal):
            return v.value
        if isinstance(v, PtrCell):
            return v.value()
        return v

    def pe_dsd_init(self, name: str):
        for pe in self._pe_stack:
            if name in pe.dsd_vars:
                return pe.dsd_vars[name].dsd
        raise CslError(f"unknown DSD variable {name}")

    def ev_ref(self, e, env: Env):
        """Like ev, but a global array or scalar stays a SymRef (for &x, x[i], exports)."""
        if isinstance(e, ast.Ident):
            found, v = env.lookup(e.name)
            if not found and env.module.has(e.name):
                v = env.module.get(e.name, e.pos)
                found = True
            if found:
                if isinstance(v, (SymRef, PtrVar, CellVar, PtrCell)):
                    return v
                return self.read(v, env, e.pos)
        if isinstance(e, ast.Field):
            obj = self.ev(e.obj, env)
            if isinstance(obj, ModuleVal):
                m = obj.module
                if isinstance(m, Module) and m.has(e.name):
                    v = m.get(e.name, e.pos)
                    if isinstance(v, (SymRef, PtrVar, PtrCell)):
                        return v
        return self.ev(e, env)

    def ev_Field(self, e: ast.Field, env: Env):
        obj = self.ev(e.obj, env)
        name = e.name
        if isinstance(obj, ModuleVal):
            m = obj.module
            if isinstance(m, Module):
                if not m.has(name):
                    raise self.error(f"module '{m.name}' has no member '{name}'", e.pos)
                return self.read(m.get(name, e.pos), env, e.pos)
            return m.member(name, self, e.pos)
        if isinstance(obj, StructVal):
            if name in obj.fields:
                return obj.fields[name]
            raise self.error(f"struct has no field '{name}' (fields: "
                             f"{', '.join(obj.fields) or 'none'})", e.pos)
        if isinstance(obj, EnumT):
            for n, v in obj.members:
                if n == name:
                    return EnumVal(obj, n, v)
            raise self.error(f"{obj.name} has no member '{name}'", e.pos)
        return self.other_member(obj, name, e.pos)

    def other_member(self, obj, name: str, pos):
        """`obj.name` of a struct or array held at run time, or `.len`."""
        if isinstance(obj, (StructRef, MemArray)):
            return self.member_value(obj, name, pos)
        if isinstance(obj, RPtr) and is_struct_pointer(obj.type):
            raise self.pointer_field_error(obj, name, pos)
        n = _length(obj) if name == "len" else None
        if n is None:
            raise self.error(f"{describe(obj)} has no member '{name}'", pos)
        return n

    # the @field builtin reads a member by name through this
    field = ev_Field

    # -- indexing and pointers --------------------------------------------------------------

    def ev_Index(self, e: ast.Index, env: Env):
        obj = _indexed(self.ev_ref(e.obj, env))
        if isinstance(obj, (RPtr, RArray)):
            return self.rptr_index(obj, e, env)
        if isinstance(obj, TupleVal):
            k = self.comptime_int(self.ev(e.indices[0], env), e.pos)
            if not 0 <= k < len(obj.items):
                raise self.error(f"index {k} out of range of a tuple of {len(obj.items)}", e.pos)
            return obj.items[k]
        if isinstance(obj, ArrayVal):
            return self.index_array(obj, e, env)
        if isinstance(obj, ObjArrayVal):
            return self.index_object_array(obj, e, env)
        if isinstance(obj, DsdArray):
            return self.index_dsd_array(obj, e, env)
        if isinstance(obj, str):
            return self.index_string(obj, e, env)
        if isinstance(obj, (SymRef, PtrVal)):
            return self.index_memory(obj, e, env)
        return self.index_other(obj, e, env)

    def index_other(self, obj, e: ast.Index, env: Env):
        """`obj[i]` of an array of structs or enums, else the error of what cannot be
        indexed."""
        if isinstance(obj, MemArray):
            return self.index_mem_array(obj, e, env)
        if isinstance(obj, (ArrayT, DType)):
            raise self.error("indexing a type", e.pos)
        raise self.error(f"cannot index {describe(obj)}", e.pos)

    def index_array(self, obj: ArrayVal, e: ast.Index, env: Env):
        """An element or sub-array of a comptime array; a runtime index reads it from the PE
        memory symbol that holds the array."""
        idx = [self.ev(i, env) for i in e.indices]
        if all(is_comptime(i) for i in idx):
            idx = self.array_index(obj, idx, e.pos)
            return CNum(obj.values[idx].item(), obj.elem) if len(idx) == obj.values.ndim \
                else ArrayVal(obj.elem, obj.values[idx])
        self.need_fn(env, e.pos, "indexing a comptime array with a runtime index")
        obj = self.const_symbol(obj, env, e.pos)
        name, indices, dtype, view = self.lvalue(ast.Index(ast.Ident("%const"), e.indices,
                                                           e.pos), env, obj)
        return RVal(ir.Load(name, indices, dtype), dtype)

    def index_object_array(self, obj: ObjArrayVal, e: ast.Index, env: Env):
        """An element or sub-array of a comptime array of colors, task IDs, structs, ...:
        its elements exist only at compile time, so the index must be comptime-known."""
        idx = [self.ev(i, env) for i in e.indices]
        runtime = not all(is_comptime(i) for i in idx)
        if runtime and isinstance(obj.elem, (StructT, EnumT)):
            return self.index_const_structs(obj, e, env)
        if runtime and is_runtime_handle_type(obj.elem):
            return self.index_handle_array(obj, e, env)
        if runtime and isinstance(obj.elem, PtrT):
            return self.index_const_pointers(obj, e, env)
        if runtime and isinstance(obj.elem, Special) and obj.elem.name in DSD_KINDS:
            return self.index_const_dsds(obj, e, env)
        if runtime and obj.elem == Special("direction"):
            return self.index_directions(obj, e, env)
        if runtime:
            raise self.error(f"an array of {obj.elem} is indexed with a runtime index: its "
                             "elements exist only at compile time; index it with a "
                             "comptime-known value (an `inline for`, or a comptime param)",
                             e.pos)
        idx = self.array_index(obj, idx, e.pos)
        v = obj.values[idx]
        return v if len(idx) == obj.values.ndim else ObjArrayVal(obj.elem, v)

    def index_const_pointers(self, obj: ObjArrayVal, e: ast.Index, env: Env) -> RPtr:
        """A runtime index into a comptime array of pointers: the array placed in PE memory
        as its addresses, where every one is fixed before the program runs."""
        if not all(static_pointer(p) for p in obj.values.reshape(-1).tolist()):
            raise self.error(f"an array of {obj.elem} holding pointers known only at run time "
                             "is indexed with a runtime index; declare it `var`, so that it "
                             "is held in memory", e.pos)
        return self.index_const_structs(obj, e, env)

    def index_string(self, s: str, e: ast.Index, env: Env) -> CNum:
        if len(e.indices) != 1:
            raise self.error("a string takes one index", e.pos)
        k = self.comptime_int(self.ev(e.indices[0], env), e.pos)
        data = string_bytes(s)
        if not 0 <= k < len(data):
            raise self.error(f"index {k} out of range of a string of {len(data)} bytes", e.pos)
        return CNum(data[k], DType.u8)

    def index_memory(self, obj, e: ast.Index, env: Env) -> RVal:
        """A runtime read of an element of a global array (SymRef) or through a pointer."""
        self.need_fn(env, e.pos, "reading PE memory")
        if isinstance(obj, SymRef):
            ref = self.lvalue(e, env)
        else:
            if len(e.indices) != 1:
                raise self.error("a pointer takes one index", e.pos)
            ref = self.ptr_element(obj, self.ev(e.indices[0], env), e.pos)
        name, indices, dtype, view = ref
        load = ir.Load(name, indices, dtype)
        return RVal(load if view == dtype else ir.Bitcast(load, view), view)

    def array_index(self, arr, idx, pos) -> tuple:
        """Comptime indices into a comptime array, each within its dimension (no wrapping
        around from the end, as a Python index would)."""
        shape = arr.values.shape
        if len(idx) > len(shape):
            raise self.error(f"an array of rank {len(shape)} indexed with {len(idx)} indices",
                             pos)
        out = tuple(self.comptime_int(i, pos) for i in idx)
        if not all(0 <= k < n for k, n in zip(out, shape)):
            raise self.error(f"index {list(out)} out of range of an array of shape "
                             f"{list(shape)}", pos)
        return out

    def const_symbol(self, arr: ArrayVal, env: Env, pos) -> SymRef:
        """The PE memory symbol that holds comptime array `arr`, read at run time (by a runtime
        index or a DSD): one symbol per array."""
        pe = env.module.pe
        if pe is None:
            raise self.error("a comptime array placed in PE memory outside a PE program", pos)
        key = id(arr)
        ref = pe.const_arrays.get(key)
        if ref is None:
            name = f"%const{len(pe.const_arrays)}"
            init = tuple(arr.values.reshape(-1).tolist())
            pe.symbols[name] = ir.Symbol(name, arr.elem, tuple(arr.values.shape),
                                         init if any(init) else None)
            ref = pe.const_arrays[key] = (SymRef(name, arr.elem, tuple(arr.values.shape)), arr)
        return ref[0]

    def ptr_element(self, p: PtrVal, i, pos):
        """(symbol, flat-index tuple, symbol dtype, view dtype) of `p[i]`."""
        flat = self.to_index(i, pos)
        if p.offset:
            flat = ir.Bin("+", ir.Cast(flat, DType.i32) if flat.dtype != DType.i32 else flat,
                          ir.Const(p.offset, DType.i32), DType.i32)
        if len(p.shape) > 1:
            # a many-item pointer to a multi-dimensional array counts its elements in
            # row-major order
            if flat.dtype != DType.i32:
                flat = ir.Cast(flat, DType.i32)
            return (p.name, flat_indices(flat, p.shape), self.sym_dtype(p), p.dtype)
        return (p.name, (flat,) if p.shape else (), self.sym_dtype(p), p.dtype)

    def sym_dtype(self, p: PtrVal) -> DType:
        for pe in self._pe_stack:
            if p.name in pe.symbols:
                return pe.symbols[p.name].dtype
        return p.dtype

    def ev_Deref(self, e: ast.Deref, env: Env):
        p = self.ev(e.obj, env)
        if isinstance(p, RPtr):
            if not isinstance(p.type.elem, ArrayT):
                self.need_fn(env, e.pos, "reading PE memory")
            return self.held_read(self.rptr_deref(p, e.pos), env)
        if not isinstance(p, PtrVal):
            raise self.error(f"cannot dereference {describe(p)}", e.pos)
        if p.array:
            return self.pointee_array(p, e.pos)
        self.need_fn(env, e.pos, "reading PE memory")
        name, indices, dtype, view = self.lvalue(e, env)
        load = ir.Load(name, indices, dtype)
        return RVal(load if view == dtype else ir.Bitcast(load, view), view)

    def pointee_array(self, p: PtrVal, pos) -> SymRef | RArray:
        """`p.*` for a pointer to a whole array: the array it points to (seen through a
        runtime pointer where `@ptrcast` gave its elements another type)."""
        if not p.shape:     # a `*[1]T` made from `&x` of a scalar: a one-element array
            return RArray(ir.AddrOf(p.name), ArrayT(p.dtype, (1,)), p.const)
        if p.dtype != self.sym_dtype(p):
            return RArray(ir.AddrOf(p.name), ArrayT(p.dtype, p.shape), p.const)
        return SymRef(p.name, p.dtype, p.shape)

    def address_of(self, node, env: Env, pos):
        if isinstance(node, ast.Index):
            return self.element_address(node, env, pos)
        got = self.path_address(node, env, pos)
        if got is not None:
            return got
        v = self.ev_ref(node, env)
        if isinstance(v, SymRef):
            return PtrVal(v.name, v.dtype, v.shape, 0, "many" if v.shape else "single",
                          array=bool(v.shape))
        if isinstance(v, PtrCell):
            return self.address_of_pointer(v, pos)
        if isinstance(v, ArrayVal) and env.module.pe is not None:
            ref = self.const_symbol(v, env, pos)
            return PtrVal(ref.name, ref.dtype, ref.shape, 0, "many", const=True, array=True)
        if isinstance(v, (StructRef, MemArray)):
            return self.struct_address(v, env, pos)
        if isinstance(v, (FnVal, NativeFn, PtrVal)):
            return v
        if isinstance(v, RVal) and env.fn is not None and isinstance(node, ast.Ident):
            return self.value_address(v, node, env)
        raise self.address_error(v, node, pos)

    def element_address(self, node: ast.Index, env: Env, pos) -> PtrVal:
        """`&a[i]`: a pointer to one element of a global array."""
        base = _indexed(self.ev_ref(node.obj, env))
        idx = [self.ev(i, env) for i in node.indices]
        if isinstance(base, MemArray):
            return self.struct_element_address(base, idx, env, pos)
        if isinstance(base, (RPtr, RArray)) or isinstance(base, SymRef) and not all(
                is_comptime(i) for i in idx):
            return self.runtime_element_address(base, idx, pos)
        if not isinstance(base, SymRef):
            raise self.error(f"cannot take the address of an element of {describe(base)}", pos)
        idx = tuple(self.comptime_int(i, pos) for i in idx)
        if len(idx) != len(base.shape) or not all(
                0 <= k < n for k, n in zip(idx, base.shape)):
            raise self.error(f"&{base.name}{list(idx)}: index out of range of an array "
                             f"of shape {list(base.shape)}", pos)
        flat = int(np.ravel_multi_index(idx, base.shape))
        return PtrVal(base.name, base.dtype, base.shape, flat, "single")

    # -- operators --------------------------------------------------------------------------

    def ev_Unary(self, e: ast.Unary, env: Env):
        if e.op == "&":
            return self.address_of(e.a, env, e.pos)
        a = self.ev(e.a, env)
        if isinstance(a, Affine) and e.op == "-":
            return -a
        if isinstance(a, RVal):
            return self.runtime_unary(e, a)
        if isinstance(a, CNum):
            return CNum(fold_unary(e.op, a.value, a.dtype), a.dtype)
        return self.comptime_unary(e, a)

    def comptime_unary(self, e: ast.Unary, a):
        """A unary operator on a comptime bool, comptime_int or comptime_float."""
        if e.op == "!":
            if not isinstance(a, bool):
                raise self.error(f"'!' needs a bool, got {describe(a)}", e.pos)
            return not a
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            raise self.error(f"'{e.op}' needs a number, got {describe(a)}", e.pos)
        if e.op == "-":
            return -a
        if e.op == "~":
            if not isinstance(a, int):
                raise self.error("'~' needs an integer", e.pos)
            return ~a
        raise self.error(f"unknown operator {e.op}", e.pos)

    def runtime_unary(self, e: ast.Unary, a: RVal) -> RVal:
        if e.op == "!" and a.dtype is not DType.bool_:
            raise self.error(f"'!' needs a bool, got {a.dtype}", e.pos)
        if e.op == "~" and not a.dtype.is_int:
            raise self.error(f"'~' needs an integer, got {a.dtype}", e.pos)
        return RVal(ir.Un(e.op, a.expr, a.dtype), a.dtype)

    def ev_Binary(self, e: ast.Binary, env: Env):
        op = e.op
        if op in ("and", "or"):
            return self.logic(e, env)
        a = self.ev(e.a, env)
        b = self.ev(e.b, env)
        if isinstance(a, Affine) or isinstance(b, Affine):
            return self.affine_op(op, a, b, e.pos)
        if op == "++":
            return self.concat(a, b, e.pos)
        if isinstance(a, (PtrVal, RPtr)) or isinstance(b, (PtrVal, RPtr)):
            return self.pointer_compare(op, a, b, e.pos)
        fns = self.compare_fn_pointers(op, a, b, e.pos)
        if fns is not None:
            return fns
        if isinstance(a, RVal) or isinstance(b, RVal):
            return self.runtime_bin(op, a, b, e.pos)
        if isinstance(a, (EnumVal, EnumLitVal)) or isinstance(b, (EnumVal, EnumLitVal)):
            return self.enum_compare(op, a, b, e.pos)
        if op in ("==", "!=") and (is_type(a) or is_type(b)):
            same = a == b if not isinstance(a, (StructT, EnumT)) else a is b
            return same if op == "==" else not same
        return self.fold_binary(op, a, b, e.pos)

    def logic(self, e: ast.Binary, env: Env):
        """`and` / `or`: a comptime-known left operand short-circuits."""
        a = self.ev(e.a, env)
        if isinstance(a, CNum):
            a = a.value
        if isinstance(a, bool):
            if (e.op == "and" and not a) or (e.op == "or" and a):
                return a
            b = self.ev(e.b, env)
            return b.value if isinstance(b, CNum) else b
        if isinstance(a, RVal):
            return self.short_circuit(e, a, env)
        return self.runtime_bin(e.op, a, self.ev(e.b, env), e.pos)

    def concat(self, a, b, pos):
        if isinstance(a, str) and isinstance(b, str):
            return a + b
        if isinstance(a, TupleVal) and isinstance(b, TupleVal):
            return TupleVal(a.items + b.items)
        raise self.error("'++' concatenates comptime strings or tuples", pos)

    def affine_op(self, op, a, b, pos):
        """Arithmetic on tensor_access induction variables (affine maps)."""
        vals = []
        for v in (a, b):
            if isinstance(v, CNum) and v.dtype.is_int:
                v = v.value
            if not isinstance(v, (Affine, int)) or isinstance(v, bool):
                raise self.error(f"a tensor_access index must be affine; operator '{op}' got "
                                 f"{describe(v)}", pos)
            vals.append(v)
        x, y = vals
        try:
            if op == "+":
                return x + y
            if op == "-":
                return x - y
            if op == "*":
                return x * y
        except TypeError as err:
            raise self.error(f"tensor_access: {err}", pos) from None
        raise self.error(f"a tensor_access index must be affine: operator '{op}' is not", pos)

    def runtime_bin(self, op, a, b, pos):
        if isinstance(a, EnumRVal) or isinstance(b, EnumRVal):
            return self.runtime_enum_compare(op, a, b, pos)
        ta = a.dtype if isinstance(a, (RVal, CNum)) else None
        tb = b.dtype if isinstance(b, (RVal, CNum)) else None
        if op in ("<<", ">>"):
            t = ta or tb
            if t is None or not t.is_int:
                raise self.error(f"operator '{op}' needs integers", pos)
            ea = self.to_expr(a, ta or t, pos)
            eb = self.to_expr(b, tb if tb is not None and tb.is_int else t, pos)
            return RVal(ir.Bin(op, ea, eb, ea.dtype), ea.dtype)
        if ta is None and tb is None:
            raise self.error(f"operator '{op}' cannot take {describe(a)} and {describe(b)}",
                             pos)
        t = self.peer(ta, tb, op, pos) if ta is not None and tb is not None else (ta or tb)
        ea = self.to_expr(a, t, pos, f"operand of '{op}'")
        eb = self.to_expr(b, t, pos, f"operand of '{op}'")
        if op in ("and", "or") and t is not DType.bool_:
            raise self.error(f"operator '{op}' needs bools, got {t}", pos)
        if op in ("&", "|", "^") and t.is_float:
            raise self.error(f"operator '{op}' needs integers, got {t}", pos)
        out = DType.bool_ if op in ("==", "!=", "<", "<=", ">", ">=") else t
        return RVal(ir.Bin(op, ea, eb, out), out)

    # -- if and switch expressions ----------------------------------------------------------

    def ev_as(self, e, t, env: Env):
        """Evaluate e where a value of type t is expected (its result type: a declaration's,
        an assignment target's, a parameter's or a return type): a runtime if-expression or
        switch takes t, whatever its branches give (untyped numbers, `&x`, `.{...}`, `.tag`),
        as Zig's result locations do (spec 2.10)."""
        if isinstance(t, (DType, StructT, EnumT, PtrT)) and isinstance(e, ast.IfExpr):
            return self.ev_IfExpr(e, env, t)
        if isinstance(t, (DType, StructT, EnumT, PtrT)) and isinstance(e, ast.Block) \
                and e.label is not None:
            return self.ev_Block(e, env, t)
        if isinstance(t, (DType, StructT, EnumT, PtrT)) and isinstance(e, ast.SwitchExpr):
            return self.ev_SwitchExpr(e, env, t)
        return self.ev(e, env)

    def ev_IfExpr(self, e: ast.IfExpr, env: Env, want: DType | None = None):
        c = self.ev(e.cond, env)
        if isinstance(c, CNum):
            c = c.value
        if isinstance(c, bool):
            if not c and e.b is None:
                return None  # no `else`: void
            return self.ev_as(e.a if c else e.b, want, env)
        if not isinstance(c, RVal) or c.dtype is not DType.bool_:
            raise self.error(f"if condition must be a bool, got {describe(c)}", e.cond.pos)
        if e.b is None:
            raise self.error("an if-expression on a runtime condition needs an else", e.pos)
        a, b, merge = self.lazy_if(e, c, env, want)
        held = self.select_held(c.expr, a, b, want, e.pos)
        if held is not None:
            merge.emit_branches()
            return held
        pt = self.branch_pointer_type([a, b], want, e.pos)
        if pt is not None:
            return RPtr(merge(self.branch_address(a, pt, e.pos),
                              self.branch_address(b, pt, e.pos), ir.POINTER).expr, pt)
        ta = a.dtype if isinstance(a, (RVal, CNum)) else None
        tb = b.dtype if isinstance(b, (RVal, CNum)) else None
        if want is not None:
            t = want
        elif ta is None and tb is None:
            raise self.error("a runtime if-expression with untyped branches needs a result "
                             "type: declare the variable's type or use @as", e.pos)
        else:
            t = self.peer(ta, tb, "if", e.pos) if ta and tb else (ta or tb)
        return merge(self.to_expr(a, t, e.pos), self.to_expr(b, t, e.pos), t)

    def ev_SwitchExpr(self, e: ast.SwitchExpr, env: Env, want: DType | None = None):
        x = self.ev(e.subject, env)
        if isinstance(x, RVal):
            return self.runtime_switch(e, x, env, want)
        default = None
        for p in e.prongs:
            if not p.values:
                default = p
                continue
            for v in p.values:
                w = self.ev(v, env)
                if self.switch_match(x, w, e.pos):
                    return self.prong(p, env, want)
        if default is None:
            raise self.error("switch is not exhaustive: no prong matches and there is no else",
                             e.pos)
        return self.prong(default, env, want)

    def switch_match(self, x, w, pos) -> bool:
        if isinstance(x, (EnumVal, EnumLitVal)) or isinstance(w, (EnumVal, EnumLitVal)):
            return self.enum_compare("==", x, w, pos)
        return bool(self.fold_binary("==", x, w, pos))

    def prong(self, p: ast.SwitchProng, env: Env, want: DType | None = None):
        if isinstance(p.body, ast.Block) and p.body.label is None:
            self.exec_block(p.body, env)
            return None
        return self.ev_as(p.body, want, env)

    def runtime_switch(self, e: ast.SwitchExpr, x: RVal, env: Env, want: DType | None = None):
        """A runtime switch: expression prongs become selects; block prongs, or a switch
        written as a statement, emit an if chain.
        Its value takes `want` (the result type where one is expected), else the prongs'
        peer type."""
        fn = self.need_fn(env, e.pos, "a runtime switch")
        conds = []
        default = None
        for p in e.prongs:
            if not p.values:
                default = p
                continue
            c = None
            for v in p.values:
                eq = self.runtime_bin("==", x, self.ev(v, env), v.pos).expr
                c = eq if c is None else ir.Bin("or", c, eq, DType.bool_)
            conds.append((c, p))
        if e.stmt or any(isinstance(p.body, ast.Block) and p.body.label is None
                         for p in e.prongs):
            for s in self.switch_chain(fn, conds, default, env):
                fn.emit(s)
            return None
        if default is None and conds and self.covers_enum(x, e.prongs, env):
            default = conds.pop()[1]
        if default is None:
            raise self.error("a runtime switch expression needs an else prong", e.pos)
        out = self.branch_value(env, default.body)
        values = [(c, *self.branch_value(env, p.body)) for c, p in reversed(conds)]
        held = self.held_switch(env, out, values, want, e.pos)
        if held is not None:
            return held
        pt = self.branch_pointer_type([out[0]] + [v for _, v, _ in values], want, e.pos)
        if pt is not None:
            out = (RVal(self.branch_address(out[0], pt, e.pos), ir.POINTER), out[1])
            values = [(c, RVal(self.branch_address(v, pt, e.pos), ir.POINTER), st)
                      for c, v, st in values]
            return RPtr(self.switch_value(env, out, values, ir.POINTER, e.pos).expr, pt)
        t = want or self.switch_type([out[0]] + [v for _, v, _ in values], e.pos)
        return self.switch_value(env, out, values, t, e.pos)

    def switch_type(self, values: list, pos) -> DType:
        """The peer type of a run-time switch's prong values (i32 where none is typed)."""
        types = [v.dtype for v in values if isinstance(v, (RVal, CNum))]
        t = types[0] if types else DType.i32
        for u in types[1:]:
            t = self.peer(t, u, "switch", pos)
        return t

    def switch_chain(self, fn, conds: list, default, env: Env, k: int = 0) -> tuple:
        """The if chain of a runtime switch with block prongs, from its k-th condition on."""
        if k == len(conds):
            if default is None:
                return ()
            return self.emit_block(fn, lambda: self.prong(default, env))
        c, p = conds[k]
        then = self.emit_block(fn, lambda: self.prong(p, env))
        return (ir.If(c, then, self.switch_chain(fn, conds, default, env, k + 1)),)

    # -- type expressions -------------------------------------------------------------------

    def ev_ArrayType(self, e: ast.ArrayType, env: Env) -> ArrayT:
        elem = self.eval_type(e.elem, env)
        if isinstance(elem, ArrayT):
            raise self.error(_ARRAYS_OF_ARRAYS.format(elem=elem), e.pos)
        dims = []
        for d in e.dims:
            if d is None:
                raise self.error("[_] needs an array literal", e.pos)
            n = self.comptime_int(self.ev(d, env), d.pos)
            if n < 0:
                raise self.error(f"array dimension {n} is negative", d.pos)
            dims.append(n)
        return ArrayT(elem, tuple(dims))

    def ev_PtrType(self, e: ast.PtrType, env: Env) -> PtrT:
        return PtrT(e.kind, e.const, self.eval_type(e.elem, env))

    def ev_FnType(self, e: ast.FnType, env: Env) -> FnT:
        return FnT(tuple(self.eval_type(p, env) for p in e.params), self.eval_type(e.ret, env))

    def ev_StructType(self, e: ast.StructType, env: Env) -> StructT:
        fields = []
        for name, ft, default in e.fields:
            t = self.eval_type(ft, env)
            d = self.coerce(self.ev(default, env), t, default.pos, name) \
                if default is not None else None
            fields.append((name, t, d))
        return StructT(tuple(fields))

    def ev_EnumType(self, e: ast.EnumType, env: Env) -> EnumT:
        tag = self.eval_type(e.tag, env) if e.tag is not None else DType.u16
        members, nxt = [], 0
        explicit = {n: self.comptime_int(self.ev(v, env), v.pos) for n, v in e.members
                    if v is not None}
        used = set(explicit.values())
        for n, v in e.members:
            if v is not None:
                members.append((n, explicit[n]))
                continue
            while nxt in used:
                nxt += 1
            members.append((n, nxt))
            used.add(nxt)
        return EnumT(tag, tuple(members))


def _indexed(obj):
    """What indexing a binding indexes: a comptime var's value, a pointer variable's pointer."""
    if isinstance(obj, CellVar):
        return obj.value
    if isinstance(obj, PtrVar):
        return obj.ptr
    if isinstance(obj, PtrCell):
        return obj.value()
    return obj


def _length(obj) -> int | None:
    """`obj.len` of a comptime tuple, array, string, array type or global array, else None."""
    if isinstance(obj, TupleVal):
        return len(obj.items)
    if isinstance(obj, (ArrayVal, ObjArrayVal)):
        return int(obj.values.shape[0])
    if isinstance(obj, SymRef) and obj.shape:
        return obj.shape[0]
    if isinstance(obj, str):
        return len(string_bytes(obj))
    if isinstance(obj, ArrayT):
        return obj.shape[0]
    if isinstance(obj, RArray):
        return obj.type.shape[0]
    if isinstance(obj, DsdArray):
        return obj.shape[0]
    return None
