"""Builtins of the layout block and of exports: `@import_module`, `@set_rectangle`,
`@set_tile_code`, `@get_rectangle`, `@export_name`, `@export_symbol`."""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import builtin, nargs
from wsejax.csl.values import (
    FnVal,
    PtrCell,
    PtrVal,
    PtrVar,
    RVal,
    StructVal,
    SymRef,
    TupleVal,
    describe,
)
from wsejax.types import DType


@builtin("import_module")
def _import_module(c, node, env):
    nargs(c, node, 1, 2)
    path = c.ev(node.args[0], env)
    if not isinstance(path, str):
        raise c.error("@import_module takes a comptime string path", node.pos)
    params = c.ev(node.args[1], env) if len(node.args) > 1 else StructVal({})
    if isinstance(params, TupleVal) and not params.items:
        params = StructVal({})
    if not isinstance(params, StructVal):
        raise c.error("@import_module params must be a struct like .{ .name = value }",
                      node.pos)
    return c.import_module(path, dict(params.fields), env, node.pos)


@builtin("set_rectangle")
def _set_rectangle(c, node, env):
    nargs(c, node, 2)
    lay = c.layout_for(node)
    w, h = (c.comptime_int(c.ev(a, env), a.pos) for a in node.args)
    lay.set_rectangle(w, h, node.pos)
    return None


@builtin("set_tile_code")
def _set_tile_code(c, node, env):
    nargs(c, node, 2, 3, 4)
    lay = c.layout_for(node)
    x = c.comptime_int(c.ev(node.args[0], env), node.args[0].pos)
    y = c.comptime_int(c.ev(node.args[1], env), node.args[1].pos)
    path = c.ev(node.args[2], env) if len(node.args) > 2 else None
    if path is not None and not isinstance(path, str):
        raise c.error("@set_tile_code takes a file name string", node.args[2].pos)
    params = c.ev(node.args[3], env) if len(node.args) > 3 else StructVal({})
    if isinstance(params, TupleVal) and not params.items:
        params = StructVal({})
    if not isinstance(params, StructVal):
        raise c.error("@set_tile_code params must be a struct", node.pos)
    lay.set_tile_code(x, y, path, params, env, node.pos)
    return None


@builtin("get_rectangle")
def _get_rectangle(c, node, env):
    nargs(c, node, 0)
    return c.rectangle_struct(node.pos)


@builtin("export_name")
def _export_name(c, node, env):
    nargs(c, node, 2, 3)
    lay = c.layout_for(node)
    name = c.ev(node.args[0], env)
    if not isinstance(name, str):
        raise c.error("@export_name takes a string name", node.args[0].pos)
    t = c.eval_type(node.args[1], env)
    mutable = c.ev(node.args[2], env) if len(node.args) > 2 else None
    lay.export_name(name, t, mutable, node.pos)
    return None


@builtin("export_symbol")
def _export_symbol(c, node, env):
    nargs(c, node, 1, 2)
    pe = env.module.pe
    if pe is None or env.fn is not None:
        raise c.error("@export_symbol belongs in a top-level comptime block of a PE program",
                      node.pos)
    v = c.ev_ref(node.args[0], env)
    name = c.ev(node.args[1], env) if len(node.args) > 1 else None
    if name is not None and not isinstance(name, str):
        raise c.error("@export_symbol takes a string name", node.args[1].pos)
    if isinstance(v, PtrVar):
        v = v.ptr
    if isinstance(v, FnVal):
        fenv = v.module.env()
        if any(p.comptime for p in v.decl.params):
            raise c.error("an exported function cannot take comptime parameters", node.pos)
        stubs = [_param_stub(c, p, fenv) for p in v.decl.params]
        runtime, key = c.bind_params(v, stubs, node.pos, fenv)
        fname = c.specialize(v, fenv, runtime, key, node.pos)
        pe.exports.append(ir.ExportFunc(name or v.decl.name, fname))
        return None
    if isinstance(v, SymRef):
        pe.exports.append(ir.ExportData(name or _short(v.name), v.name, 0))
        return None
    if isinstance(v, PtrVal):
        if name is None:
            raise c.error("@export_symbol of a pointer needs a name", node.pos)
        pe.exports.append(ir.ExportData(name, v.name, v.offset))
        return None
    if isinstance(v, PtrCell):
        return _export_pointer_cell(c, pe, v, name, node)
    raise c.error(f"@export_symbol cannot export {describe(v)}", node.pos)


def _export_pointer_cell(c, pe, v: PtrCell, name, node) -> None:
    """`@export_symbol` of a pointer variable the program changes at run time: the host's
    copies go where it points as each copy runs."""
    if name is None:
        raise c.error("@export_symbol of a pointer needs a name", node.pos)
    if v.is_local or not isinstance(v.init, PtrVal):
        raise c.error(f"@export_symbol of pointer variable '{_short(v.name)}': it needs an "
                      "initial pointer (like &A), which gives the host the type of what it "
                      "points to", node.pos)
    pe.exports.append(ir.ExportData(name, v.init.name, v.init.offset, via=v.name))
    return None


def _param_stub(c, p, fenv):
    t = c.eval_type(p.type, fenv)
    if isinstance(t, DType):
        return RVal(ir.Local("%stub", t), t)
    raise c.error(f"exported function parameter '{p.name}' must have a scalar type, not {t}",
                  p.pos)


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]
