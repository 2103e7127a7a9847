"""Pointers to named structs: `&s`, `&ps[i]`, `*S`, `*const S`, `[*]S`, `p.*`, `q[i]`.

Memory layout. A struct stays one symbol per scalar field (`structs.py`), so that the many
programs that never take a struct's address keep their symbols, loads and stores as they
are. A struct whose address the program takes instead lives in the *pool* of its type: one
1-D array symbol per field, `%pool<n>.<S>.<field>`, one element per struct placed there (for a
struct field, its slots: below).
Every global or local struct (or array of structs) of type S that the module writes `&name`
or `&name[...]` of gets a run of consecutive elements of S's pool, in declaration order; its
fields are then pool elements, read and written with plain `Load` / `Assign` at a known index.

A pointer to a struct is a runtime pointer (`RPtr`): the u16 byte address of the struct's
element of the pool's first field symbol. Its element index is `(address - &first) / width`
(width: the byte width of the first field), the same index in every other field symbol of
the pool, so that `p.*.f` is a `Load` of `%pool.S.f` at that index: a struct pointer is an
"array of structs" address with a stride per field, not a contiguous record. The address of
`ps[i]` is `&first[base + i]`, so that `[*]S` indexing and `&q[i]` step by `width` bytes like
any other pointer. An address made otherwise (`@bitcast` of a number) indexes the pool
alike.

A struct field of struct type T of a struct in a pool is held in T's pool, like every other T
whose address is taken: the host's array for that field holds *slots*, u16 element indices
into T's pool, one per host element. So every T in a pool, standalone or a field of any pooled
struct at any depth, is an element of the one pool of T, and a `*T` is one kind of address
whatever holds the T: `&s.f` is the address of the element that s's slot for f names, next to
the address of a standalone T. Placing n structs in a pool places their struct fields, n per
field, in the fields' pools first and fills the slots; a slot is written only then, never by
the program, so a struct at a known index has the pool index of its field known too, and one
at a run-time index reads its slot (`p.*.f.x` loads the slot, then the field). A whole-struct
copy (`p.* = v`) writes the leaves that the slots name, never the slots.

The pool's symbols grow as structs join it; their addresses are resolved when the PE program
is built, after all of them have joined.

`StructPointerMixin` uses from `self`: `error`, `ev`, `files`, `leaves`, `store`, `struct_member`,
`to_index`, `need_fn`, the PE program being built (`_pe_stack`) and that of the module being
built (`env.module.pe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.values import (
    UNDEFINED,
    ArrayT,
    EnumT,
    MemArray,
    PtrT,
    PtrVal,
    RPtr,
    StructRef,
    StructT,
    StructVal,
    describe,
    is_runtime_handle_type,
    leaf_const,
    leaf_dtype,
)
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.csl.env import Env, Module

__all__ = ["PooledArray", "StructPointerMixin", "is_struct_pointer"]

U16 = ir.POINTER
I32 = DType.i32


@dataclass(frozen=True)
class PooledArray(MemArray):
    """An array of structs held in the pool of its element type: element `k` (row-major) is
    pool element `base + k` (`base` an i32 IR expression)."""

    base: object = None
    const: bool = False

    def flat(self, idx: tuple) -> ir.Expr:
        """The pool index of element `idx` (i32 IR expressions)."""
        out = self.base
        inner = 1
        for i, n in reversed(list(zip(idx, self.shape))):
            out = _add(out, _mul(_i32(i), inner))
            inner *= n
        return out


@dataclass
class _Pool:
    prefix: str
    stype: StructT
    fields: list                  # (field name, IR dtype) of each array: its slots for `held`
    held: list                    # (field name, struct type) of each field held in its pool
    items: list = field(default_factory=list)   # the initial value of each element
    slots: dict = field(default_factory=dict)   # held field -> its element index, per element
    align: int = 0                # the largest `align(N)` of a struct placed in it

    @property
    def first(self) -> str:
        """The symbol of the first field, whose addresses are the structs' addresses."""
        return f"{self.prefix}.{self.fields[0][0]}"

    @property
    def width(self) -> int:
        """The byte width of an element of the first field."""
        return self.fields[0][1].nbytes


def is_struct_pointer(t) -> bool:
    """Whether pointer type `t` points to a struct or an array of structs."""
    if not isinstance(t, PtrT):
        return False
    elem = t.elem.elem if isinstance(t.elem, ArrayT) else t.elem
    return isinstance(elem, StructT)


def _address_operands(tree):
    """The operands `x` of every `&x` in an AST subtree."""
    return [n.a for n in ast.walk(tree) if isinstance(n, ast.Unary) and n.op == "&"]


def _i32(e: ir.Expr) -> ir.Expr:
    if type(e) is ir.Const:
        return ir.Const(int(e.value), I32)
    return e if e.dtype == I32 else ir.Cast(e, I32)


def _add(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    if type(a) is ir.Const and type(b) is ir.Const:
        return ir.Const(int(a.value) + int(b.value), I32)
    if type(b) is ir.Const and b.value == 0:
        return a
    if type(a) is ir.Const and a.value == 0:
        return b
    return ir.Bin("+", a, b, I32)


def _mul(a: ir.Expr, n: int) -> ir.Expr:
    if type(a) is ir.Const:
        return ir.Const(int(a.value) * n, I32)
    return a if n == 1 else ir.Bin("*", a, ir.Const(n, I32), I32)


class StructPointerMixin:
    """Structs whose address is taken, and pointers to them."""

    # -- pools --------------------------------------------------------------------------------

    def struct_address_names(self, mod: Module) -> set:
        """Names `x` that module `mod` writes `&x`, `&x[...]` or `&x.f` of, and `x` of the
        `&m.x...` that the source files read so far write: a struct (or array of structs) of
        such a name lives in the pool of its type."""
        names = getattr(mod, "_struct_addressed", None)
        if names is None:
            names = set()
            for n in _address_operands(mod.file):
                while isinstance(n, (ast.Index, ast.Field)):
                    n = n.obj
                if isinstance(n, ast.Ident):
                    names.add(n.name)
            for f in self.files.values():
                for n in _address_operands(f):
                    while isinstance(n, (ast.Index, ast.Field)):
                        if isinstance(n, ast.Field):
                            names.add(n.name)
                        n = n.obj
            mod._struct_addressed = names
        return names

    def is_pooled(self, mod: Module, name: str, t) -> bool:
        """Whether a struct variable `name` of type `t` (a struct or an array of them) of
        module `mod` lives in its type's pool."""
        elem = t.elem if isinstance(t, ArrayT) else t
        return isinstance(elem, StructT) and name in self.struct_address_names(mod)

    def struct_pool(self, pe, stype: StructT, pos) -> _Pool:
        """The pool of struct type `stype` in PE program `pe` (made on first use)."""
        pools = pe.struct_pools
        pool = pools.get(id(stype))
        if pool is None:
            fields, held = [], []
            for name, ft, _ in stype.fields:
                leaves = self.leaves(ft, pos, f"{stype.name}.{name}")
                if isinstance(ft, StructT) and leaves:
                    fields.append((name, U16))
                    held.append((name, ft))
                elif not isinstance(ft, StructT):
                    fields.append((name, leaf_dtype(leaves[0][1])))
            if not fields:
                raise self.error(f"a pointer to {stype}: the struct has no fields", pos)
            pool = pools[id(stype)] = _Pool(f"%pool{len(pools)}.{stype.name}", stype, fields,
                                            held, slots={name: [] for name, _ in held})
        return pool

    def pool_place(self, pe, stype: StructT, count: int, items, pos) -> tuple:
        """Place `count` structs of type `stype` (initial values `items`, None for zeros) in
        its pool, and their struct fields in theirs: (the pool, the index of the first)."""
        pool = self.struct_pool(pe, stype, pos)
        base = len(pool.items)
        n = self.__dict__.get("placing_align", 0)
        if n:
            base = self.pool_align(pool, base, n)
        for name, ft in pool.held:
            inner = None if items is None else [
                x.fields[name] if isinstance(x, StructVal) else UNDEFINED for x in items]
            first = self.pool_place(pe, ft, count, inner, pos)[1]
            pool.slots[name] += range(first, first + count)
        pool.items += list(items) if items is not None else [UNDEFINED] * count
        self.declare_pool(pe, pool)
        return pool, base

    @staticmethod
    def declare_pool(pe, pool: _Pool) -> None:
        """The symbols of `pool`, one array per field, with the initial values so far."""
        size = (len(pool.items),)
        for name, dt in pool.fields:
            vals = pool.slots.get(name) or [leaf_const(x, (name,)) for x in pool.items]
            init = tuple(vals) if any(vals) else None
            sym = f"{pool.prefix}.{name}"
            pe.symbols[sym] = ir.Symbol(sym, dt, size, init, align=pool.align)

    @staticmethod
    def pool_align(pool: _Pool, base: int, n: int) -> int:
        """Pad `pool` so that its next element, at `base` or past it, lies at a multiple of
        `n` bytes in every field array (each of which starts at such a multiple): the index
        of that element. (The widths are powers of two: a multiple of the narrowest field's
        step is one of every field's.)"""
        narrowest = min(dt.nbytes for _, dt in pool.fields)
        step = max(1, n // narrowest)
        pad = -base % step
        pool.items += [UNDEFINED] * pad
        for slots in pool.slots.values():
            slots += [0] * pad
        pool.align = max(pool.align, n)
        return base + pad

    def pooled_variable(self, pe, elem: StructT, shape: tuple, items, pos):
        """A struct (`shape` ()) or array of structs held in its type's pool: its StructRef or
        PooledArray."""
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        pool, base = self.pool_place(pe, elem, count, items, pos)
        if shape:
            return PooledArray(elem, pool.prefix, shape, ir.Const(base, I32))
        return StructRef(elem, "sym", pool.prefix, (ir.Const(base, I32),))

    def addressed_struct_param(self, p, t: StructT, fn, env: Env) -> None:
        """A struct parameter whose address the function takes (`&q`): copied, as the
        function starts, into its type's pool, where `&q` is a `*const` pointer to it."""
        _, arg = env.lookup(p.name)
        place = self.pooled_variable(env.module.pe, t, (), None, p.pos)
        self.store(fn, place, arg, p.pos, f"parameter '{p.name}'", init=True)
        env.bind(p.name, StructRef(t, "sym", place.prefix, place.indices, True))

    # -- addresses ----------------------------------------------------------------------------

    def _pool_of_ref(self, pe, prefix: str, stype, pos) -> _Pool | None:
        pool = pe.struct_pools.get(id(stype)) if pe is not None else None
        return pool if pool is not None and pool.prefix == prefix else None

    def pooled_member(self, ref: StructRef, name: str, ft: StructT) -> StructRef | None:
        """Struct field `name` (of type `ft`) of a struct in a pool: the element of ft's pool
        that its slot names, or None where `ref` is no struct in a pool."""
        pe = self._pe_stack[-1] if self._pe_stack else None
        pool = self._pool_of_ref(pe, ref.prefix, ref.stype, None) if ref.kind == "sym" else None
        if pool is None or name not in pool.slots:
            return None
        k = ref.indices[0]
        if type(k) is ir.Const:
            # the slots never change: a struct at a known place has its field's index known
            at = ir.Const(pool.slots[name][int(k.value)], I32)
        else:
            at = ir.Cast(ir.Load(f"{pool.prefix}.{name}", (k,), U16), I32)
        inner = pe.struct_pools[id(ft)]
        return StructRef(ft, "sym", inner.prefix, (at,), ref.const)

    def struct_address(self, v, env: Env, pos) -> RPtr:
        """`&s` of a struct, or `&ps` of an array of structs (or of enums or pointers)."""
        pe = env.module.pe
        if isinstance(v, MemArray) and isinstance(v.elem, (EnumT, PtrT)):
            return RPtr(ir.AddrOf(v.prefix), PtrT("single", False, ArrayT(v.elem, v.shape)))
        if isinstance(v, PooledArray):
            pool = self.struct_pool(pe, v.elem, pos)
            return RPtr(self.pool_address(pool, v.base),
                        PtrT("single", v.const, ArrayT(v.elem, v.shape)))
        if isinstance(v, StructRef):
            pool = self._pool_of_ref(pe, v.prefix, v.stype, pos)
            if pool is not None:
                return RPtr(self.pool_address(pool, v.indices[0]),
                            PtrT("single", v.const, v.stype))
        raise self.error(f"cannot take the address of {describe(v)} here: only a struct "
                         "variable (global or local), an element of an array of structs or "
                         "a struct field of one of those has an address, not a struct "
                         "parameter or a value", pos)

    def struct_element_address(self, arr, idx: list, env: Env, pos) -> RPtr:
        """`&ps[i]` of an array of structs (or of enums, handles or pointers)."""
        if isinstance(arr.elem, (EnumT, PtrT)) or is_runtime_handle_type(arr.elem):
            return self.enum_element_address(arr, idx, pos)
        if not isinstance(arr, PooledArray):
            raise self.error(f"cannot take the address of an element of {describe(arr)}",
                             pos)
        if len(idx) != len(arr.shape):
            raise self.error(f"&{arr.prefix}[...]: an array of rank {len(arr.shape)} takes "
                             f"{len(arr.shape)} indices, got {len(idx)}", pos)
        ix = tuple(self.to_index(i, pos) for i in idx)
        for i, n in zip(ix, arr.shape):
            if type(i) is ir.Const and not 0 <= i.value < n:
                raise self.error(f"index {i.value} out of range of an array of shape "
                                 f"{list(arr.shape)}", pos)
        pool = self.struct_pool(env.module.pe, arr.elem, pos)
        return RPtr(self.pool_address(pool, arr.flat(ix)),
                    PtrT("single", arr.const, arr.elem))

    def field_address(self, node: ast.Field, env: Env, pos):
        """`&s.f` of a scalar field of a struct in PE memory, or None where `s` is not a
        struct held at run time."""
        obj = self.ev(node.obj, env)
        if not isinstance(obj, StructRef):
            return None
        m = self.struct_member(obj, node.name, pos)
        if isinstance(m, StructRef):
            return self.struct_address(m, env, pos)
        if m.kind != "sym" or not (isinstance(m.ctype, (DType, EnumT))
                                   or is_runtime_handle_type(m.ctype)):
            raise self.error(f"cannot take the address of field '{node.name}' of "
                             f"{describe(obj)} here: only a field of a struct variable "
                             "(global or local) has an address", pos)
        shape = env.module.pe.symbols[m.name].shape
        flat = ir.Const(0, I32)
        inner = 1
        for i, n in reversed(list(zip(m.indices, shape))):
            flat = _add(flat, _mul(_i32(i), inner))
            inner *= n
        if type(flat) is ir.Const and isinstance(m.ctype, DType):
            return PtrVal(m.name, m.ctype, shape, int(flat.value), "single", obj.const)
        width = leaf_dtype(m.ctype).nbytes
        addr = ir.Bin("+", ir.AddrOf(m.name), ir.Bin("*", ir.Cast(flat, U16), ir.Const(
            width, U16), U16), U16)
        return RPtr(addr, PtrT("single", obj.const, m.ctype))

    @staticmethod
    def pool_address(pool: _Pool, index: ir.Expr) -> ir.Expr:
        """The byte address of pool element `index` (an i32 expression)."""
        if type(index) is ir.Const:
            return ir.AddrOf(pool.first, int(index.value))
        k = ir.Cast(index, U16)
        scaled = k if pool.width == 1 else ir.Bin("*", k, ir.Const(pool.width, U16), U16)
        return ir.Bin("+", ir.AddrOf(pool.first), scaled, U16)

    @staticmethod
    def pool_index(pool: _Pool, addr: ir.Expr) -> ir.Expr:
        """The pool element index (i32) at byte address `addr`."""
        if isinstance(addr, ir.AddrOf) and addr.symbol == pool.first:
            return ir.Const(addr.offset, I32)
        rel = ir.Bin("-", addr, ir.AddrOf(pool.first), U16)
        if pool.width > 1:
            rel = ir.Bin("/", rel, ir.Const(pool.width, U16), U16)
        return ir.Cast(rel, I32)

    def struct_stride(self, stype: StructT, pe, pos) -> int:
        """The byte step between consecutive structs of type `stype` behind a pointer."""
        return self._known_pool(pe, stype, pos).width

    def _known_pool(self, pe, stype: StructT, pos) -> _Pool:
        pool = pe.struct_pools.get(id(stype)) if pe is not None else None
        if pool is None:
            raise self.error(f"a pointer to {stype}, but the program takes the address of no "
                             f"{stype} (`&s`), so there is none it could point to", pos)
        return pool

    # -- through a pointer --------------------------------------------------------------------

    def struct_at(self, addr: ir.Expr, stype: StructT, const: bool, pe, pos) -> StructRef:
        """The struct of type `stype` at byte address `addr`."""
        pool = self._known_pool(pe, stype, pos)
        return StructRef(stype, "sym", pool.prefix, (self.pool_index(pool, addr),), const)

    def struct_array_at(self, p: RPtr, pe, pos) -> PooledArray:
        """`p.*` of a `*[N]S`: the array of structs it points to."""
        t = p.type.elem
        pool = self._known_pool(pe, t.elem, pos)
        return PooledArray(t.elem, pool.prefix, tuple(t.shape), self.pool_index(pool, p.expr),
                           p.type.const)

    def struct_deref(self, p: RPtr, pos):
        """`p.*` of a pointer to a struct or an array of structs."""
        pe = self._pe_stack[-1] if self._pe_stack else None
        if isinstance(p.type.elem, ArrayT):
            return self.struct_array_at(p, pe, pos)
        return self.struct_at(p.expr, p.type.elem, p.type.const, pe, pos)

    def pointer_field_error(self, p: RPtr, name: str, pos):
        """`p.name` on a pointer to a struct: the error naming the spec rule."""
        return self.error(f"'.{name}' on a {p.type}: a single-item pointer's only operation "
                          f"is `.*` (spec 3.1); write `p.*.{name}`", pos)
