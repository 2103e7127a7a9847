"""The builtins over advertised symbols (`@export_symbol`): `@get_symbol_id`,
`@get_symbol_value`, `@get_tensor_ptr`, `@has_exported_tensors`.

A symbol's id is the one the host's `get_id` gives the name it is advertised under: the index
of that name among the layout's `@export_name`s (a PE program compiled without a layout numbers
its own advertised names in order). The runtime builtins pick, by id, among the data the PE
program advertises: a chain of selects, one per advertised symbol (an id no symbol has gives
the last one's, as the behaviour is undefined there).
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.builtins._registry import builtin, nargs
from wsejax.csl.values import (
    CNum,
    FnVal,
    PtrCell,
    PtrT,
    PtrVal,
    PtrVar,
    RPtr,
    RVal,
    SymRef,
    describe,
)
from wsejax.types import DType


def _advertised(c, env) -> list:
    """`(name, value)` of each `@export_symbol(value [, name])` in the top-level comptime
    blocks of the module (read from its source, so that a function body may name a symbol
    advertised after it), values as `ev_ref` gives them."""
    mod = env.module
    found = getattr(mod, "_advertised", None)
    if found is None:
        found = []
        menv = mod.env()
        for d in mod.file.decls:
            if not isinstance(d, ast.ComptimeBlock):
                continue
            for n in ast.walk(d.body):
                if isinstance(n, ast.Builtin) and n.name == "export_symbol" and n.args:
                    v = c.ev_ref(n.args[0], menv)
                    v = v.ptr if isinstance(v, PtrVar) else v
                    name = c.ev(n.args[1], menv) if len(n.args) > 1 else _own_name(v)
                    found.append((name, v))
        mod._advertised = found
    return found


def _own_name(v):
    if isinstance(v, FnVal):
        return v.decl.name
    if isinstance(v, SymRef):
        return v.name.rsplit(".", 1)[-1]
    return None


def _ids(c, names) -> dict:
    """The id of each advertised name."""
    layout = getattr(c, "layout", None)
    order = list(layout.exports) if layout is not None else []
    for name in names:
        if name not in order:
            order.append(name)
    return {name: k for k, name in enumerate(order)}


def _same(a, b) -> bool:
    if isinstance(a, SymRef) and isinstance(b, SymRef):
        return a.name == b.name
    if isinstance(a, PtrVal) and isinstance(b, PtrVal):
        return (a.name, a.offset) == (b.name, b.offset)
    if isinstance(a, FnVal) and isinstance(b, FnVal):
        return a.decl is b.decl and a.module is b.module
    if isinstance(a, PtrCell) and isinstance(b, PtrCell):
        return a.name == b.name
    return False


def _pe(c, node, env):
    pe = env.module.pe
    if pe is None:
        raise c.error(f"@{node.name} belongs in a PE program", node.pos)
    return pe


@builtin("get_symbol_id")
def _get_symbol_id(c, node, env):
    nargs(c, node, 1)
    _pe(c, node, env)
    v = c.ev_ref(node.args[0], env)
    if isinstance(v, PtrVar):
        v = v.ptr
    found = _advertised(c, env)
    ids = _ids(c, [name for name, _ in found])
    for name, w in found:
        if _same(v, w):
            return CNum(ids[name], DType.u16)
    raise c.error(f"@get_symbol_id: {describe(v)} is not advertised with @export_symbol",
                  node.pos)


def _by_id(c, node, env, pick):
    """`(id expression, its type, [(id, value expression), ...])` of the advertised data
    `pick` keeps (`pick(symbol, element offset)` gives the value expression, or None)."""
    pe = _pe(c, node, env)
    c.need_fn(env, node.pos, f"@{node.name}")
    ident = c.ev(node.args[-1], env)
    t = ident.dtype if isinstance(ident, (RVal, CNum)) else DType.u16
    if isinstance(ident, bool) or not isinstance(ident, (RVal, CNum, int)) or not t.is_int:
        raise c.error(f"@{node.name}: the id must be an integer, got {describe(ident)}",
                      node.pos)
    found = _advertised(c, env)
    ids = _ids(c, [name for name, _ in found])
    chosen = []
    for name, v in found:
        if isinstance(v, (SymRef, PtrVal)):
            value = pick(pe.symbols[v.name], v.offset if isinstance(v, PtrVal) else 0)
            if value is not None:
                chosen.append((ids[name], value))
        elif isinstance(v, PtrCell) and not v.is_local and node.name == "get_tensor_ptr":
            # a pointer variable the program changes: where it points now
            chosen.append((ids[name], ir.Load(v.name, (), ir.POINTER)))
    return c.to_expr(ident, t, node.pos, f"@{node.name} id"), t, chosen


def _select(key: ir.Expr, t: DType, chosen: list, dtype: DType) -> ir.Expr:
    out = chosen[-1][1]
    for k, value in reversed(chosen[:-1]):
        out = ir.Select(ir.Bin("==", key, ir.Const(k, t), DType.bool_), value, out, dtype)
    return out


@builtin("get_symbol_value")
def _get_symbol_value(c, node, env):
    nargs(c, node, 2)
    want = c.eval_type(node.args[0], env)
    if not isinstance(want, DType):
        raise c.error(f"@get_symbol_value: type {want} is not a scalar type", node.pos)

    def pick(sym, offset):
        if sym.dtype != want or sym.shape:
            return None
        return ir.Load(sym.name, (), want)

    key, t, chosen = _by_id(c, node, env, pick)
    if not chosen:
        raise c.error(f"@get_symbol_value: no advertised global symbol has type {want}",
                      node.pos)
    return RVal(_select(key, t, chosen, want), want)


@builtin("get_tensor_ptr")
def _get_tensor_ptr(c, node, env):
    nargs(c, node, 1)
    key, t, chosen = _by_id(c, node, env, lambda sym, offset: ir.AddrOf(sym.name, offset))
    if not chosen:
        raise c.error("@get_tensor_ptr: the PE program advertises no tensor", node.pos)
    return RPtr(_select(key, t, chosen, ir.POINTER), PtrT("many", False, DType.u16))


@builtin("has_exported_tensors")
def _has_exported_tensors(c, node, env):
    nargs(c, node, 0)
    _pe(c, node, env)
    if env.fn is None:
        raise c.error("@has_exported_tensors belongs in a function body", node.pos)
    return any(isinstance(v, (SymRef, PtrVal, PtrCell)) for _, v in _advertised(c, env))
