"""Runtime pointers of the comptime evaluator.

A pointer whose target is known at compile time stays a `PtrVal` (reads and writes through it
are `Load`s and `Assign`s of its symbol, as fast as naming the symbol). A pointer that can
change at run time is a u16 byte address into the PE's memory (`RPtr`, an IR expression; see
`ir.symbol_addresses`): a pointer variable that some code assigns to, or whose address is
taken (`PtrCell`), a local `var` of pointer type, a pointer parameter passed such a pointer,
a function's returned pointer, `@bitcast` of an integer, `@ptrcast` to another element width
or from `*anyopaque`, `&a[i]` with a runtime index. Reads and writes through it are
`ir.PtrLoad` / `ir.PtrStore`; a DSD over it (`runtime_dsd`) is picked, per PE, among the
arrays of its element width.

`PointerMixin` uses from `self`: `error`, `ev`, `ev_ref`, `coerce`, `to_expr`, `to_index`,
`need_fn`, `const_symbol`, `static_local`, `sym_dtype`, `pointee_array`, `emit_block`,
`exec_block`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.env import STATIC_WHY
from wsejax.csl.stmt import _loop
from wsejax.csl.struct_pointers import is_struct_pointer
from wsejax.csl.values import (
    UNDEFINED,
    ArrayT,
    ArrayVal,
    CNum,
    DsdVal,
    EnumRVal,
    EnumT,
    EnumVal,
    LocalVar,
    MemArray,
    PtrCell,
    PtrT,
    PtrVal,
    PtrVar,
    RArray,
    RFnPtr,
    RPtr,
    RtHandleVal,
    RVal,
    Slot,
    Special,
    StructT,
    SymRef,
    UtIdVal,
    describe,
    flat_indices,
    is_fn_pointer_type,
    is_runtime_handle_type,
    leaf_dtype,
)
from wsejax.types import DType

_MAX_ENUM_COPY = 1024     # enums `p.* = v` writes one by one through a `*[N]E`

if TYPE_CHECKING:
    from wsejax.csl.env import Env, Module

__all__ = ["PointerMixin", "pointer_type"]

U16 = ir.POINTER


def pointer_type(p) -> PtrT:
    """The pointer type of a PtrVal or RPtr."""
    if isinstance(p, RPtr):
        return p.type
    if p.array:
        return PtrT("single", p.const, ArrayT(p.dtype, p.shape))
    return PtrT(p.kind, p.const, p.dtype)


def _elem_dtype(t: PtrT):
    """The type of `p[i]` through a pointer of type t: a DType, a PtrT, or None."""
    elem = t.elem
    if isinstance(elem, ArrayT):
        elem = elem.elem
    return elem if isinstance(elem, (DType, PtrT, EnumT)) else None


def _static_address(v) -> bool:
    """Whether `v` is a runtime pointer to a fixed place (`&s` of a struct)."""
    return isinstance(v, RPtr) and isinstance(v.expr, ir.AddrOf)


def _scaled(i: ir.Expr, width: int) -> ir.Expr:
    """Byte offset `i * width` as a u16 expression (wrapping, as a 16-bit address does)."""
    if type(i) is ir.Const:
        return ir.Const((int(i.value) * width) & 0xFFFF, U16)
    k = i if i.dtype == U16 else ir.Cast(i, U16)
    return k if width == 1 else ir.Bin("*", k, ir.Const(width, U16), U16)


def _plus(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    if type(b) is ir.Const and b.value == 0:
        return a
    return ir.Bin("+", a, b, U16)


class PointerMixin:
    """Runtime pointers: variables, reads, writes, comparisons and conversions."""

    # -- what a pointer is ------------------------------------------------------------------

    def ptr_expr(self, p, pos) -> ir.Expr:
        """The u16 byte address of pointer `p` (a PtrVal or RPtr)."""
        if isinstance(p, RPtr):
            return p.expr
        if isinstance(p, PtrVal):
            return ir.AddrOf(p.name, p.offset)
        if isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 0xFFFF:
            return ir.Const(p, U16)
        raise self.error(f"expected a pointer, got {describe(p)}", pos)

    def runtime_pointer(self, v, t, pos, what: str) -> RPtr:
        """`v` (a pointer, or undefined) as a runtime pointer of type t (None: its own)."""
        if v is UNDEFINED:
            return RPtr(ir.Const(0, U16), t)
        if t is not None:
            elem = _elem_dtype(t)
            if isinstance(v, PtrVal) and isinstance(elem, (DType, EnumT)) and \
                    leaf_dtype(elem) != v.dtype:
                raise self.error(f"{what}: expected {t}, got {pointer_type(v)}", pos)
            v = self.coerce(v, t, pos, what)
        if isinstance(v, RPtr):
            return v
        if isinstance(v, PtrVal):
            return RPtr(ir.AddrOf(v.name, v.offset), pointer_type(v))
        raise self.error(f"{what}: expected a pointer, got {describe(v)}", pos)

    def branch_pointer_type(self, values: list, want, pos):
        """The pointer type of a run-time if or switch whose branches give `values`: `want`
        where it is a pointer type, else their peer type where every one is a pointer (a
        `*const T` where some are), else None (not pointers)."""
        if want is not None:
            return want if isinstance(want, PtrT) else None
        if not values or not all(isinstance(v, (PtrVal, RPtr)) for v in values):
            return None
        types = [pointer_type(v) for v in values]
        t = types[0]
        for u in types[1:]:
            if (u.kind, u.elem) != (t.kind, t.elem):
                raise self.error(f"the branches give pointers of different types, {t} and {u}:"
                                 " declare the type of the result", pos)
            t = PtrT(t.kind, t.const or u.const, t.elem)
        return t

    def branch_address(self, v, t: PtrT, pos) -> ir.Expr:
        """The u16 address of branch value `v` as a pointer of type `t`."""
        return self.runtime_pointer(v, t, pos, "value of a branch").expr

    @staticmethod
    def array_at_element(v: PtrVal, t: PtrT) -> RPtr:
        """A pointer of type `t` to a whole array (`*[N]T`) made from a pointer to an element
        other than the first (`&a[k]`): the N elements from there, through their address."""
        return RPtr(ir.AddrOf(v.name, v.offset), t)

    def coerce_runtime_pointer(self, v: RPtr, t: PtrT, pos, what: str) -> RPtr:
        """The implicit conversions of spec 3.2 on a runtime pointer."""
        have = v.type
        if have.const and not t.const:
            raise self.error(f"{what}: expected {t}, got {have}: a const pointer does not "
                             "convert to a non-const one", pos)
        if isinstance(t.elem, Special) and t.elem.name == "anyopaque":
            return RPtr(v.expr, t)
        a, b = have.elem, t.elem
        if isinstance(a, ArrayT) and not isinstance(b, ArrayT) and len(a.shape) == 1:
            a = a.elem                       # *[N]T -> [*]T
        if isinstance(b, ArrayT) and not isinstance(a, ArrayT) and b.shape == (1,):
            b = b.elem                       # *T -> *[1]T
        if a != b:
            raise self.error(f"{what}: expected {t}, got {have}", pos)
        return RPtr(v.expr, t)

    # -- pointer variables ------------------------------------------------------------------

    def runtime_pointer_names(self, mod: Module) -> set:
        """Names of module `mod` that some code assigns to as a whole (`p = ...`) or takes
        the address of (`&p`): a pointer variable by such a name is held at run time."""
        names = getattr(mod, "_runtime_pointers", None)
        if names is None:
            names = set()
            for n in ast.walk(mod.file):
                if isinstance(n, ast.Assign) and isinstance(n.target, ast.Ident):
                    names.add(n.target.name)
                elif isinstance(n, ast.Unary) and n.op == "&" and isinstance(n.a, ast.Ident):
                    names.add(n.a.name)
            names |= self.member_address_names()
            mod._runtime_pointers = names
        return names

    def member_address_names(self) -> set:
        """Names `p` of the `&m.p` that the source files read so far write: the address of a
        pointer variable of another module (which is read before that module runs)."""
        out = set()
        for f in self.files.values():
            out |= {n.a.name for n in ast.walk(f) if isinstance(n, ast.Unary) and n.op == "&"
                    and isinstance(n.a, ast.Field)}
        return out

    def global_pointer(self, mod: Module, d, t, v) -> PtrCell:
        """A global pointer variable held in PE memory (a u16 symbol), initialised with the
        address of what it points to (resolved when the PE program is built)."""
        what = f"'{d.name}'"
        if v is None:
            v = UNDEFINED
        if t is None and not isinstance(v, PtrVal):
            raise self.error(f"pointer variable {what} needs a type or an initial pointer",
                             d.pos)
        if v is not UNDEFINED:
            if not isinstance(v, PtrVal) and not _static_address(v):
                raise self.error(f"pointer variable {what} needs a comptime-known initial "
                                 f"pointer (like &A), got {describe(v)}", d.pos)
            v = self.coerce(v, t, d.pos, what) if t is not None else v
        name = mod.prefix + d.name
        init = None
        if isinstance(v, PtrVal):
            init = (ir.AddrOf(v.name, v.offset),)
        elif isinstance(v, RPtr):
            init = (v.expr,)
        mod.pe.symbols[name] = ir.Symbol(name, U16, (), init)
        return PtrCell(name, t if t is not None else pointer_type(v), False,
                       v if isinstance(v, PtrVal) else None)

    def local_pointer(self, d, t, v, env: Env) -> None:
        """A pointer local of a function: a u16 local (static memory where its address is
        taken), or a snapshot of a runtime pointer for a const."""
        what = f"'{d.name}'"
        if t is not None and not isinstance(t, PtrT):
            raise self.error(f"{what}: expected {t}, got {describe(v)}", d.pos)
        p = self.runtime_pointer(v, t, d.pos, what)
        if t is None:
            t = p.type
        fn = env.fn
        if d.name in fn.addressed:
            ref = self.static_local(env, d.name, U16, ())
            fn.emit(ir.Assign(ref.name, (), p.expr))
            cell = PtrCell(ref.name, t)
            env.bind(d.name, cell if not d.const else cell.value())
            return
        name = env.module.pe.fresh(d.name + ".")
        fn.emit(ir.LocalAssign(name, p.expr))
        cell = PtrCell(name, t, True)
        env.bind(d.name, cell if not d.const else cell.value())

    def address_of_pointer(self, cell: PtrCell, pos) -> RPtr:
        """`&p` of a pointer variable: a pointer to its u16 memory."""
        if cell.is_local:
            raise self.error("the address of this pointer variable cannot be taken here", pos)
        return RPtr(ir.AddrOf(cell.name), PtrT("single", False, cell.type))

    def path_address(self, node, env: Env, pos):
        """`&p.*` and `&s.f` (of a struct held at run time), else None."""
        if isinstance(node, ast.Deref):
            return self.deref_address(node, env, pos)
        if isinstance(node, ast.Field):
            return self.field_address(node, env, pos)
        if isinstance(node, ast.Ident):
            return self.enum_address(node, env, pos)
        return None

    def enum_address(self, node: ast.Ident, env: Env, pos):
        """`&e` of an enum variable held in memory: a pointer to its tag, of type `*E`; None
        for other names."""
        found, v = env.lookup(node.name)
        if not found and env.module.has(node.name):
            found, v = True, env.module.get(node.name, pos)
        if not (found and isinstance(v, Slot) and (isinstance(v.ctype, EnumT)
                                                   or is_runtime_handle_type(v.ctype))):
            return None
        if v.kind != "sym" or v.indices:
            raise self.error(f"cannot take the address of '{node.name}' here", pos)
        return RPtr(ir.AddrOf(v.name), PtrT("single", v.const, v.ctype))

    def enum_element_address(self, arr, idx: list, pos) -> RPtr:
        """`&es[i]` of an array of enums (or handles) in memory: a pointer to the element's
        tag (number)."""
        t = arr.elem
        base = RArray(ir.AddrOf(arr.prefix), ArrayT(leaf_dtype(t), arr.shape))
        return RPtr(self.runtime_element_address(base, idx, pos).expr, PtrT("single", False, t))

    def address_error(self, v, node, pos):
        """The error of `&x` where x has no address."""
        if isinstance(v, PtrVar):
            return self.error("cannot take the address of this pointer variable: its module "
                              "read it as a constant before the file that takes its address "
                              "was read; take its address in a module that imports it first",
                              pos)
        if isinstance(v, RVal) and not isinstance(node, ast.Ident):
            return self.error("a pointer is made with `&` of a variable (spec 3.1), not of the "
                              "value of an expression", pos)
        if isinstance(v, (LocalVar, RVal)):
            return self.error("pointers to runtime locals are not supported here; use a "
                              "global", pos)
        return self.error(f"cannot take the address of {describe(v)}", pos)

    def deref_address(self, node: ast.Deref, env: Env, pos):
        """`&p.*`: the pointer `p` itself."""
        p = self.ev(node.obj, env)
        if not isinstance(p, (PtrVal, RPtr)):
            raise self.error(f"cannot dereference {describe(p)}", pos)
        return p

    def value_address(self, v: RVal, node, env: Env) -> PtrVal:
        """`&x` of a value known at run time (a loop's capture, a `const` holding a runtime
        value): a `*const` pointer to a copy of it, in memory of the function's own."""
        name = node.name if isinstance(node, ast.Ident) else "value"
        ref = self.static_local(env, name, v.dtype, ())
        env.fn.emit(ir.Assign(ref.name, (), v.expr))
        if isinstance(v, EnumRVal):
            return RPtr(ir.AddrOf(ref.name), PtrT("single", True, v.etype))
        return PtrVal(ref.name, v.dtype, (), 0, "single", const=True)

    def addressed_params(self, runtime, params, fn, env: Env) -> None:
        """Parameters whose address the function takes (`&x`) live in memory: each is copied
        there as the function starts, and its name then names that memory."""
        k = 0
        for p, t, a in runtime:
            n = len(self.leaves(t, p.pos, p.name)) if isinstance(t, (StructT, EnumT)) else 1
            pname, irt = params[k]
            k += n
            if p.name not in fn.addressed:
                continue
            fn.unrecursive.append((p.pos, f"parameter '{p.name}', whose address is taken,",
                                   STATIC_WHY))
            if isinstance(a, RFnPtr):
                t = a.type
            if isinstance(t, EnumT) or is_fn_pointer_type(t):
                irt = t.tag if isinstance(t, EnumT) else U16
                ref = self.static_local(env, p.name, irt, ())
                fn.emit(ir.Assign(ref.name, (), ir.Local(pname, irt)))
                env.bind(p.name, Slot("sym", ref.name, (), t, True))
                continue
            if isinstance(t, StructT):
                self.addressed_struct_param(p, t, fn, env)
                continue
            if not isinstance(irt, DType):
                continue
            ref = self.static_local(env, p.name, irt, ())
            fn.emit(ir.Assign(ref.name, (), ir.Local(pname, irt)))
            env.bind(p.name, PtrCell(ref.name, t) if isinstance(t, PtrT) else ref)

    def assign_pointer(self, cell: PtrCell, v, env: Env, pos, what: str) -> None:
        """`p = q;` for a pointer variable held at run time."""
        fn = self.need_fn(env, pos, "assignment to a pointer variable")
        addr = self.runtime_pointer(v, cell.type, pos, what).expr
        fn.emit(ir.LocalAssign(cell.name, addr) if cell.is_local
                else ir.Assign(cell.name, (), addr))

    # -- reads and writes through a runtime pointer ----------------------------------------

    def rptr_address(self, p, indices, pos):
        """(byte address, element type) of `p[i...]` for a RPtr or RArray."""
        if isinstance(p, RArray):
            shape, elem, base = p.type.shape, p.type.elem, p.expr
        else:
            elem = _elem_dtype(p.type)
            if elem is None and is_struct_pointer(p.type):
                elem = p.type.elem.elem if isinstance(p.type.elem, ArrayT) else p.type.elem
            if elem is None:
                raise self.error(f"cannot index or dereference a {p.type} (@ptrcast it to a "
                                 "typed pointer first)", pos)
            base = p.expr
            shape = (None,)
        if len(indices) != len(shape):
            raise self.error(f"{describe(p)} takes {len(shape)} index(es), got {len(indices)}",
                             pos)
        width = self.element_width(elem, pos)
        flat = None
        for k, i in enumerate(indices):
            term = self.to_index(i, pos)
            inner = 1
            for n in shape[k + 1:]:
                inner *= n
            term = _scaled(term, width * inner)
            flat = term if flat is None else ir.Bin("+", flat, term, U16)
        return _plus(base, flat), elem

    def element_width(self, elem, pos) -> int:
        """The byte step between consecutive elements of type `elem` behind a pointer."""
        if isinstance(elem, PtrT):
            return U16.nbytes
        if isinstance(elem, StructT):
            return self.struct_stride(elem, self._pe_stack[-1], pos)
        return leaf_dtype(elem).nbytes

    def runtime_element_address(self, base, idx: list, pos) -> RPtr:
        """`&p[i]` through a runtime pointer, or `&a[i]` with an index known at run time."""
        const = False
        if isinstance(base, SymRef):
            base = RArray(ir.AddrOf(base.name), ArrayT(base.dtype, base.shape))
        elif isinstance(base, RPtr):
            const = base.type.const
        else:
            const = base.const
        addr, elem = self.rptr_address(base, idx, pos)
        return RPtr(addr, PtrT("single", const, elem))

    def rptr_load(self, addr, elem, const: bool = False, pos=None):
        """The value of the element of type `elem` at byte address `addr` (a struct: its
        place)."""
        if isinstance(elem, StructT):
            return self.struct_at(addr, elem, const, self._pe_stack[-1], pos)
        if isinstance(elem, PtrT) and not is_runtime_handle_type(elem):
            return RPtr(ir.PtrLoad(addr, U16), elem)
        if isinstance(elem, EnumT):
            return EnumRVal(ir.PtrLoad(addr, elem.tag), elem.tag, elem)
        if is_runtime_handle_type(elem):
            return self.handle_value(ir.PtrLoad(addr, U16), elem)
        return RVal(ir.PtrLoad(addr, elem), elem)

    def held_read(self, v, env: Env):
        """A value read through a pointer: a handle's number copied to a local now (a later
        store through the pointer does not change it)."""
        return self.held_handle(v, env) if isinstance(v, (RtHandleVal, UtIdVal)) else v

    def rptr_index(self, p, e: ast.Index, env: Env):
        """`p[i]` read through a runtime pointer (or `(p.*)[i]`)."""
        self.need_fn(env, e.pos, "reading PE memory")
        addr, elem = self.rptr_address(p, [self.ev(i, env) for i in e.indices], e.pos)
        return self.held_read(self.rptr_load(
            addr, elem, p.const if isinstance(p, RArray) else p.type.const, e.pos), env)

    def rptr_deref(self, p: RPtr, pos):
        """`p.*` of a runtime pointer."""
        elem = p.type.elem
        if is_struct_pointer(p.type):
            return self.struct_deref(p, pos)
        if isinstance(elem, ArrayT):
            if not isinstance(elem.elem, (DType, EnumT)):
                raise self.error(f"cannot dereference a {p.type}", pos)
            return RArray(p.expr, elem, p.type.const)
        if not isinstance(elem, (DType, PtrT, EnumT)) and not is_runtime_handle_type(elem):
            raise self.error(f"cannot dereference a {p.type} (@ptrcast it to a typed pointer "
                             "first)", pos)
        return self.rptr_load(p.expr, elem)

    def pointer_target(self, target, env: Env):
        """What an assignment to `target` writes through a pointer: `("ptr", address, type,
        const)` for an element through a runtime pointer, `("array", destination)` for a
        whole array (`p.* = ...`), or None for any other target."""
        if isinstance(target, ast.Deref):
            return self.deref_target(target, env)
        if isinstance(target, ast.Index):
            obj = self.ev_ref(target.obj, env)
            if isinstance(obj, PtrCell):
                obj = obj.value()
            if isinstance(obj, (PtrVal, PtrVar)) and (obj.ptr if isinstance(obj, PtrVar)
                                                      else obj).const:
                raise self.error("cannot assign through a pointer to const", target.pos)
            if isinstance(obj, (RPtr, RArray)):
                idx = [self.ev(i, env) for i in target.indices]
                addr, elem = self.rptr_address(obj, idx, target.pos)
                const = obj.const if isinstance(obj, RArray) else obj.type.const
                return ("ptr", addr, elem, const)
        return None

    def deref_target(self, target: ast.Deref, env: Env):
        """`pointer_target` of `p.* = ...`."""
        p = self.ev(target.obj, env)
        if isinstance(p, RPtr):
            elem = p.type.elem
            if isinstance(elem, StructT):
                return ("ptr", p.expr, elem, p.type.const)
            if isinstance(elem, ArrayT):
                if is_struct_pointer(p.type):
                    return ("structs", self.struct_deref(p, target.pos), p.type.const)
                kind = "enums" if isinstance(elem.elem, EnumT) else "array"
                return (kind, self.rptr_deref(p, target.pos), p.type.const)
            return ("ptr", p.expr, self.rptr_element_type(p, target.pos), p.type.const)
        if isinstance(p, PtrVal) and p.array:
            return ("array", self.pointee_array(p, target.pos), p.const)
        if isinstance(p, PtrVal) and p.const:
            raise self.error("cannot assign through a pointer to const", target.pos)
        return None

    def rptr_element_type(self, p: RPtr, pos):
        elem = p.type.elem
        if not isinstance(elem, (DType, PtrT, EnumT)) and not is_runtime_handle_type(elem):
            raise self.error(f"cannot dereference a {p.type}", pos)
        return elem

    def store_through(self, ref, v, env: Env, pos) -> None:
        """Emit the write an assignment through a pointer (`pointer_target`) does."""
        fn = self.need_fn(env, pos, "assignment to memory")
        if ref[-1]:
            raise self.error("cannot assign through a pointer to const", pos)
        if ref[0] == "array":
            self.copy_array(ref[1], v, fn, env, pos)
            return
        if ref[0] == "enums":
            self.store_enum_array(ref[1], v, env, pos)
            return
        if ref[0] == "structs":
            arr = ref[1]
            self.store_mem_array(arr, v, env, pos,
                                 f"the {ArrayT(arr.elem, tuple(arr.shape))} pointed to")
            return
        _, addr, elem, _ = ref
        if isinstance(elem, StructT):
            self.store(fn, self.struct_at(addr, elem, False, env.module.pe, pos), v, pos,
                       f"the {elem} pointed to")
            return
        if isinstance(elem, PtrT) and not is_runtime_handle_type(elem):
            value = self.runtime_pointer(v, elem, pos, "pointer").expr
            fn.emit(ir.PtrStore(addr, value, U16))
            return
        if isinstance(elem, EnumT):
            fn.emit(ir.PtrStore(addr, self.leaf_expr(v, elem, pos, f"the {elem} pointed to"),
                                elem.tag))
            return
        if is_runtime_handle_type(elem):
            fn.emit(ir.PtrStore(addr, self.handle_number(v, elem, pos,
                                                         f"the {elem} pointed to"), U16))
            return
        fn.emit(ir.PtrStore(addr, self.to_expr(v, elem, pos, "element"), elem))

    # -- whole arrays ----------------------------------------------------------------------

    def store_enum_array(self, dst: RArray, v, env: Env, pos) -> None:
        """`p.* = v` through a `*[N]E`: each element's tag, from a comptime array or another
        array of E in memory (read in full before the first write)."""
        t = dst.type
        what = f"the {t} pointed to"
        n = int(np.prod(t.shape))
        if n > _MAX_ENUM_COPY:
            self.copy_enum_array(dst, v, env, pos)
            return
        idx = [tuple(int(i) for i in np.unravel_index(k, t.shape)) for k in range(n)]
        if isinstance(v, MemArray) and v.elem == t.elem and tuple(v.shape) == t.shape:
            items = [self.mem_array_item(v, tuple(ir.Const(k, DType.i32) for k in i))
                     for i in idx]
        elif isinstance(v, RArray) and v.type == t:
            items = [self.rptr_load(self.rptr_address(v, list(i), pos)[0], t.elem)
                     for i in idx]
        else:
            items = self.coerce(v, t, pos, what).values.reshape(-1).tolist()
        tag = t.elem.tag
        exprs = []
        for x in items:
            e = self.leaf_expr(x, t.elem, pos, what)
            if not isinstance(e, ir.Const):
                name = env.module.pe.fresh("e.")
                env.fn.emit(ir.LocalAssign(name, e))
                e = ir.Local(name, tag)
            exprs.append(e)
        for i, e in zip(idx, exprs):
            env.fn.emit(ir.PtrStore(self.rptr_address(dst, list(i), pos)[0], e, tag))

    def copy_enum_array(self, dst: RArray, v, env: Env, pos) -> None:
        """`p.* = v` through a `*[N]E` of many elements: the tags copied by runtime loops,
        from a comptime array's tags in PE memory, or from an array of E in memory (first
        into a buffer of their own, so that the whole source is read before the first
        write)."""
        t = dst.type
        tag = t.elem.tag
        shape = tuple(t.shape)
        src = None
        if isinstance(v, MemArray) and v.elem == t.elem and tuple(v.shape) == shape and \
                v.prefix in env.module.pe.symbols:
            src = SymRef(v.prefix, tag, shape)
        elif isinstance(v, RArray) and v.type == t:
            src = RArray(v.expr, ArrayT(tag, shape))
        if src is not None:
            buf = env.module.pe.fresh("enums.")
            env.module.pe.symbols[buf] = ir.Symbol(buf, tag, shape, None)
            self.copy_array(SymRef(buf, tag, shape), src, env.fn, env, pos)
            src = SymRef(buf, tag, shape)
        else:
            items = self.coerce(v, t, pos, f"the {t} pointed to").values.reshape(-1).tolist()
            if not all(isinstance(x, EnumVal) for x in items):
                raise self.error(f"the {t} pointed to: a value of more than {_MAX_ENUM_COPY} "
                                 "enums assigned at once is a comptime array or an array in "
                                 "memory", pos)
            src = ArrayVal(tag, np.array([x.value for x in items], tag.np).reshape(shape))
        self.copy_array(RArray(dst.expr, ArrayT(tag, shape)), src, env.fn, env, pos)

    def copy_array(self, dst, src, fn, env: Env, pos) -> None:
        """`p.* = src`: copy every element of array `src` (a global or a comptime array, or
        an array a runtime pointer points to) into array `dst` (a SymRef or RArray)."""
        if isinstance(src, ArrayVal):
            src = self.const_symbol(src, env, pos)
        if not isinstance(src, (SymRef, RArray)):
            raise self.error(f"assigning a whole array: expected an array, got "
                             f"{describe(src)}", pos)
        d_elem, d_shape = _array_of(dst)
        s_elem, s_shape = _array_of(src)
        if d_elem != s_elem or _count(d_shape) != _count(s_shape):
            raise self.error(f"assigning a whole array: expected [{_count(d_shape)}]{d_elem}, "
                             f"got [{_count(s_shape)}]{s_elem}", pos)
        var = env.module.pe.fresh("copy.")
        k = ir.Local(var, DType.i32)
        value = _element(src, k)
        if isinstance(dst, SymRef):
            store = ir.Assign(dst.name, flat_indices(k, dst.shape), value)
        else:
            store = ir.PtrStore(_plus(dst.expr, _scaled(k, d_elem.nbytes)), value, d_elem)
        fn.emit(ir.For(var, DType.i32, 0, _count(d_shape), 1, (store,)))

    # -- rows of multi-dimensional arrays --------------------------------------------------

    def row_target(self, target, env: Env):
        """`(symbol, leading indices)` where `target` is `A[i]` (fewer indices than its rank)
        of a global array A, else None."""
        if not isinstance(target, ast.Index) or not isinstance(target.obj,
                                                               (ast.Ident, ast.Field)):
            return None
        base = self.ev_ref(target.obj, env)
        if not isinstance(base, SymRef) or not 0 < len(target.indices) < len(base.shape):
            return None
        indices = []
        for e, n in zip(target.indices, base.shape):
            i = self.to_index(self.ev(e, env), e.pos)
            if type(i) is ir.Const and not 0 <= int(i.value) < n:
                raise self.error(f"index {int(i.value)} out of range of '{base.name}' (shape "
                                 f"{list(base.shape)})", e.pos)
            indices.append(i if i.dtype == DType.i32 else ir.Cast(i, DType.i32))
        return base, tuple(indices)

    def assign_row(self, s: ast.Assign, sym: SymRef, indices: tuple, value, env: Env) -> None:
        """`A[i] = row`: copy array `row` (a global or a comptime array, or one a runtime
        pointer points to) into the elements `A[i, ...]`."""
        if s.op != "=":
            raise self.error(f"'{s.op}' on a row of an array: CSL has no arithmetic on "
                             "arrays, only on their elements; write a loop or a DSD operation",
                             s.pos)
        fn = self.need_fn(env, s.pos, "assignment to memory")
        shape = sym.shape[len(indices):]
        want = f"[{', '.join(map(str, shape))}]{sym.dtype}"
        src_row = self.row_target(value, env)
        if src_row is not None:
            src, src_indices = src_row    # a row of a global array: read in the same loop
            s_elem, s_shape = src.dtype, src.shape[len(src_indices):]
        else:
            src = self.ev(value, env)
            if isinstance(src, ArrayVal):
                src = self.const_symbol(src, env, s.pos)
            if not isinstance(src, (SymRef, RArray)):
                raise self.error(f"assigning a row of '{sym.name}': expected {want}, got "
                                 f"{describe(src)}", s.pos)
            s_elem, s_shape = _array_of(src)
        if s_elem != sym.dtype or _count(s_shape) != _count(shape):
            raise self.error(f"assigning a row of '{sym.name}': expected {want}, got "
                             f"[{', '.join(map(str, s_shape))}]{s_elem}", s.pos)
        var = env.module.pe.fresh("row.")
        k = ir.Local(var, DType.i32)
        load = ir.Load(src.name, src_indices + flat_indices(k, s_shape), s_elem) \
            if src_row is not None else _element(src, k)
        store = ir.Assign(sym.name, indices + flat_indices(k, shape), load)
        fn.emit(ir.For(var, DType.i32, 0, _count(shape), 1, (store,)))

    # -- DSDs over a runtime pointer --------------------------------------------------------

    def runtime_dsd_base(self, d, p: RPtr, env: Env, pos):
        """`@set_dsd_base_addr(d, p)` for a runtime pointer `p`."""
        elem = self.dsd_pointee(p, pos)
        if d.dtype is not None and d.dtype.bits != elem.bits:
            raise self.error(f"@set_dsd_base_addr: the DSD addresses {d.dtype} elements, the "
                             f"pointer {elem}", pos)
        return self.runtime_dsd(lambda sym: ir.SetBase(d.expr, sym), d.kind, p, env, pos)

    def dsd_pointee(self, p: RPtr, pos) -> DType:
        elem = _elem_dtype(p.type)
        if not isinstance(elem, DType) or elem.nbytes not in (2, 4):
            raise self.error(f"a DSD over a {p.type}: its elements must be 16 or 32 bits wide",
                             pos)
        return elem

    def runtime_dsd(self, make, kind: str, p: RPtr, env: Env, pos) -> DsdVal:
        """A memory DSD whose base is runtime pointer `p`: a DSD local set, on each PE, to
        `make(symbol)` (the DSD over that symbol from its start) moved to p's address, for the
        array of p's element width that holds it. An address in no such array fails a runtime
        check."""
        fn = self.need_fn(env, pos, "a DSD over a runtime pointer")
        elem = self.dsd_pointee(p, pos)
        pe = env.module.pe
        cands = [s for s in pe.symbols.values() if s.dtype.nbytes == elem.nbytes]
        if not cands:
            raise self.error(f"a DSD over a {p.type}: the PE program has no array of "
                             f"{elem.bits}-bit elements it could point into", pos)
        addr = ir.Local(pe.fresh("addr."), U16)
        fn.emit(ir.LocalAssign(addr.name, p.expr))
        name = pe.fresh("dsd.")
        found = None
        for k, sym in enumerate(cands):
            base = ir.AddrOf(sym.name)
            rel = ir.Bin("-", addr, base, U16)
            inside = ir.Bin("and", ir.Bin(">=", addr, base, DType.bool_), ir.Bin(
                "<", rel, ir.Const(sym.nbytes, U16), DType.bool_), DType.bool_)
            delta = ir.Bitcast(ir.Bin("/", rel, ir.Const(elem.nbytes, U16), U16), DType.i16)
            based = ir.IncrementOffset(make(sym.name), delta, sym.dtype)
            fn.emit(ir.LocalAssign(name, based) if k == 0 else
                    ir.If(inside, (ir.LocalAssign(name, based),)))
            found = inside if found is None else ir.Bin("or", found, inside, DType.bool_)
        where = f"{pos.file}:{pos.line}:{pos.col} (a DSD over a pointer into no array of " \
                f"{elem.bits}-bit elements)"
        fn.emit(ir.Assert(found, where))
        return DsdVal(ir.DsdLocal(name), kind, cands[0].dtype)

    def pointee_loop(self, s, arr: RArray, env: Env) -> None:
        """`for (p.*) |x, k|` over the array a runtime pointer points to: its elements in
        row-major order, `k` counting them."""
        fn = env.fn
        var = env.module.pe.fresh("k.")
        k = ir.Local(var, DType.i32)
        elem = arr.type.elem
        inner = env.child()
        inner.bind(s.capture, RVal(_element(arr, k), elem))
        if s.index:
            inner.bind(s.index, RVal(k, DType.i32))
        with _loop(fn, s.label, "runtime", fn.depth + 1):
            body = self.emit_block(fn, lambda: self.exec_block(s.body, inner))
        fn.emit(ir.For(var, DType.i32, 0, _count(arr.type.shape), 1, body))

    # -- comparisons and casts -------------------------------------------------------------

    def pointer_compare(self, op: str, a, b, pos):
        """`p == q` / `p != q` on pointers: comptime where both are known."""
        if op not in ("==", "!="):
            raise self.error(f"operator '{op}' cannot take pointers (only == and !=)", pos)
        if isinstance(a, PtrVal) and isinstance(b, PtrVal):
            same = (a.name, a.offset * _width(self, a)) == (b.name, b.offset * _width(self, b))
            return same if op == "==" else not same
        return RVal(ir.Bin(op, self.ptr_expr(a, pos), self.ptr_expr(b, pos), DType.bool_),
                    DType.bool_)

    def bitcast_pointer(self, t, v, pos):
        """`@bitcast` between a pointer and a 16-bit integer (either way), or None where
        neither side is a pointer."""
        if isinstance(t, PtrT):
            if isinstance(v, (PtrVal, RPtr)):
                return RPtr(self.ptr_expr(v, pos), t)
            if isinstance(v, RVal) and v.dtype.bits == 16:
                return RPtr(v.expr if v.dtype == U16 else ir.Bitcast(v.expr, U16), t)
            raw = v.value if isinstance(v, CNum) and v.dtype.bits == 16 else v
            if isinstance(raw, int) and not isinstance(raw, bool):
                return RPtr(ir.Const(raw & 0xFFFF, U16), t)
            raise self.error(f"@bitcast to {t} takes a 16-bit integer (a pointer is 16 bits "
                             f"wide), got {describe(v)}", pos)
        if isinstance(v, (PtrVal, RPtr)):
            if not isinstance(t, DType) or t.bits != 16:
                raise self.error(f"@bitcast of a pointer to {t}: a pointer is 16 bits wide "
                                 "(use u16 or i16)", pos)
            addr = self.ptr_expr(v, pos)
            return RVal(addr if t == U16 else ir.Bitcast(addr, t), t)
        return None

    def ptrcast_runtime(self, t: PtrT, p, pos):
        """`@ptrcast(P, p)` where the result is a runtime pointer: `p` is one, P or p is
        `*anyopaque`, or P's elements have another width than those p points to."""
        return RPtr(self.ptr_expr(p, pos), t)


def _width(c, p: PtrVal) -> int:
    return c.sym_dtype(p).nbytes


def _array_of(a):
    if isinstance(a, SymRef):
        return a.dtype, a.shape
    return a.type.elem, a.type.shape


def _count(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _element(src, k: ir.Expr) -> ir.Expr:
    """Element `k` (row-major) of array `src`."""
    if isinstance(src, SymRef):
        return ir.Load(src.name, flat_indices(k, src.shape), src.dtype)
    elem = src.type.elem
    return ir.PtrLoad(_plus(src.expr, _scaled(k, elem.nbytes)), elem)

