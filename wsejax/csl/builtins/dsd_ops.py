"""DSD operations (`@fmacs`, ...): operands, the config struct, the fabric and FIFO operand
rules; `@allocate_fifo` and `@map`."""

from __future__ import annotations

import numpy as np

from wsejax import ir, ops
from wsejax.csl import ast
from wsejax.csl.builtins._registry import builtin, nargs
from wsejax.csl.builtins.tasks import _local_id, _task_id, _ut_expr
from wsejax.csl.env import Env, FnCtx
from wsejax.csl.values import (
    CNum,
    DsdVal,
    DsdVarRef,
    FifoVal,
    FnVal,
    NativeFn,
    PtrT,
    PtrVal,
    PtrVar,
    RVal,
    StructVal,
    SymRef,
    TupleVal,
    describe,
)
from wsejax.types import DType


def _operand(c, v, t: DType, node, k):
    """('D' | 'p' | 's', IR operand, element type or None)."""
    if isinstance(v, FifoVal):
        return "D", ir.DsdOperand(ir.FifoRef(v.name)), v.dtype
    if isinstance(v, (DsdVal, DsdVarRef)):
        d = c.dsd_of(v, node.pos)
        return "D", ir.DsdOperand(d.expr), d.dtype
    if isinstance(v, PtrVal):
        if v.shape and v.kind == "many":
            raise c.error(f"@{node.name}: operand {k + 1} is a pointer to an array; a pointer "
                          "operand addresses one scalar (&x or &a[i])", node.pos)
        idx = np.unravel_index(v.offset, v.shape) if v.shape else ()
        return "p", ir.PtrOperand(v.name, tuple(ir.Const(int(i), DType.i32) for i in idx)), \
            v.dtype
    e = c.to_expr(_raw_bits(c, v, t, node.args[k].pos), t, node.args[k].pos,
                  f"operand {k + 1} of @{node.name}")
    return "s", ir.ScalarOperand(e), t


def _raw_bits(c, v, t: DType, pos):
    """Integer ops work on raw bit patterns (spec 8): a signed scalar of the op's width, or a
    negative literal, is its two's complement pattern."""
    if not t.is_int or t.is_signed:
        return v
    signed = {16: DType.i16, 32: DType.i32}.get(t.bits)
    if isinstance(v, RVal) and v.dtype == signed:
        return RVal(ir.Bitcast(v.expr, t), t)
    if isinstance(v, CNum) and v.dtype == signed:
        return CNum(v.value & ((1 << t.bits) - 1), t)
    if isinstance(v, int) and not isinstance(v, bool) and -(1 << (t.bits - 1)) <= v < 0:
        return v & ((1 << t.bits) - 1)
    return v


def dsd_op(c, node: ast.Builtin, env: Env):
    spec = ops.OPS[node.name]
    fn = c.need_fn(env, node.pos, f"@{node.name}")
    vals = [c.ev(a, env) for a in node.args]
    config = None
    if vals and isinstance(vals[-1], StructVal):
        config = _op_config(c, vals.pop(), node, env)
    n = 1 + len(spec.srcs)
    if len(vals) != n:
        raise c.error(f"@{node.name} takes {n} operands, got {len(vals)}", node.pos)
    letters, operands = [], []
    for k, (v, t) in enumerate(zip(vals, (spec.dest,) + spec.srcs)):
        letter, o, et = _operand(c, v, t, node, k)
        if et is not None and letter != "s" and et.bits != t.bits:
            raise c.error(f"@{node.name}: operand {k + 1} addresses {et} elements, but "
                          f"@{node.name} works on {t} ({t.bits}-bit)", node.args[k].pos)
        letters.append(letter)
        operands.append(o)
    problem = ops.form_error(node.name, "".join(letters))
    if problem:
        raise c.error(problem, node.pos)
    _check_fabric_operands(c, vals, node, config)
    fn.emit(ir.DsdOp(node.name, operands[0], tuple(operands[1:]), env.module.pe.site(),
                     config))
    return True


# every DSD operation of the op table is a builtin of the same name
builtin(*ops.OPS)(dsd_op)


def _op_config(c, cfg: StructVal, node, env) -> ir.OpConfig | None:
    """The config struct of a DSD operation (spec 5.4); None when it asks for nothing."""
    f = cfg.fields
    for k in f:
        if k == "on_control":
            raise c.error(f"@{node.name}: option .{k} is not supported yet", node.pos)
        if k not in ("async", "activate", "unblock", "index", "priority", "ut_id"):
            raise c.error(f"@{node.name}: unknown option .{k}", node.pos)
    async_ = f.get("async", False)
    async_ = async_.value if isinstance(async_, CNum) else async_
    if not isinstance(async_, bool):
        raise c.error(f"@{node.name}: .async takes a comptime-known bool, got "
                      f"{describe(async_)}", node.pos)
    if "activate" in f and "unblock" in f:
        raise c.error(f"@{node.name}: an operation takes .activate or .unblock, not both",
                      node.pos)
    if "priority" in f and not isinstance(f["priority"], StructVal):
        raise c.error(f"@{node.name}: .priority takes .{{ .high = true }}, .{{ .medium = true }} "
                      "or .{ .low = true }", node.pos)
    if "priority" in f:
        c.ignored(".priority", node.pos, "task and queue priorities are not modelled")
    activate = unblock = index = ut = None
    if "activate" in f:
        activate = _hook(c, f["activate"], node, ".activate", _local_id)
    if "unblock" in f:
        unblock = _hook(c, f["unblock"], node, ".unblock", _task_id)
    if "index" in f:
        index = c.to_expr(f["index"], DType.u16, node.pos, f"@{node.name} .index")
    if "ut_id" in f:
        ut = _ut_expr(c, f["ut_id"], node, f"@{node.name} .ut_id")
    out = ir.OpConfig(async_, activate, unblock, index, ut)
    return None if out == ir.OpConfig() else out


def _hook(c, v, node, what: str, resolve) -> ir.Expr:
    """A task ID of `.activate` / `.unblock`: a u16 constant, or a runtime u16 expression."""
    if isinstance(v, RVal):
        return c.to_expr(v, DType.u16, node.pos, f"@{node.name} {what}")
    return ir.Const(resolve(c, v, node, f"@{node.name} {what}"), DType.u16)


def _check_fabric_operands(c, vals, node, config) -> None:
    """The rules on fabric DSDs and FIFOs as operands (spec 7.4, 7.5, 7.6)."""
    srcs = vals[1:]
    dsds = [c.dsd_of(v, node.pos) if isinstance(v, (DsdVal, DsdVarRef)) else None
            for v in vals]
    if dsds[0] is not None and dsds[0].kind == "fabin_dsd":
        raise c.error(f"@{node.name}: a fabin_dsd cannot be a destination", node.args[0].pos)
    for k, d in enumerate(dsds[1:], 1):
        if d is not None and d.kind == "fabout_dsd":
            raise c.error(f"@{node.name}: a fabout_dsd cannot be a source", node.args[k].pos)
    if c.arch == "wse3" and sum(d is not None and d.kind == "fabin_dsd" for d in dsds) > 1:
        raise c.error(f"@{node.name}: on wse3 an operation takes at most one fabin_dsd",
                      node.pos)
    fifos = [k for k, v in enumerate(srcs, 1) if isinstance(v, FifoVal)]
    if len(fifos) > 1:
        raise c.error(f"@{node.name}: at most one source may be a FIFO", node.pos)
    if fifos and fifos[0] == 1 and len(srcs) > 1:
        raise c.error(f"@{node.name}: a FIFO cannot be the first of two sources",
                      node.args[1].pos)
    if config is None or config.index is None:
        for k, d in enumerate(dsds):
            if d is not None and _index_offset(c, d.expr):
                raise c.error(f"@{node.name}: operand {k + 1} uses wavelet_index_offset, so the "
                              "operation needs an .index", node.pos)


def _index_offset(c, e) -> bool:
    """Whether DSD expression `e` is known to have wavelet_index_offset set."""
    while isinstance(e, (ir.IncrementOffset, ir.SetBase, ir.SetLength, ir.SetStride)):
        e = e.dsd
    if isinstance(e, ir.DsdLit):
        return getattr(e.dsd, "wavelet_index_offset", False)
    if isinstance(e, ir.DsdVar):
        return getattr(c.pe_dsd_init(e.name), "wavelet_index_offset", False)
    return False


@builtin("allocate_fifo")
def _allocate_fifo(c, node, env):
    nargs(c, node, 1, 2)
    pe = env.module.pe
    if pe is None or env.fn is not None or c.decl_name is None:
        raise c.error("@allocate_fifo belongs in a global const of a PE program: "
                      "const f = @allocate_fifo(buf);", node.pos)
    buf = c.ev_ref(node.args[0], env)
    if isinstance(buf, PtrVar):
        buf = buf.ptr
    if isinstance(buf, PtrVal) and buf.offset == 0 and buf.shape:
        buf = SymRef(buf.name, buf.dtype, buf.shape)
    if not isinstance(buf, SymRef) or not buf.shape or buf.dtype.bits not in (16, 32) \
            or buf.dtype is DType.bool_:
        raise c.error(f"@allocate_fifo takes a global var array of 16- or 32-bit elements, got "
                      f"{describe(buf)}", node.args[0].pos)
    other = next((x for x in pe.fifos.values() if x.buffer == buf.name), None)
    if other is not None:
        raise c.error(f"'{buf.name}' already holds the FIFO '{other.name}'", node.args[0].pos)
    cfg = c.ev(node.args[1], env) if len(node.args) > 1 else StructVal({})
    if isinstance(cfg, TupleVal) and not cfg.items:
        cfg = StructVal({})
    if not isinstance(cfg, StructVal):
        raise c.error("@allocate_fifo takes a config struct like .{ .activate_push = t }",
                      node.args[1].pos)
    hooks = {}
    for k, v in cfg.fields.items():
        if k in ("activate_push", "activate_pop"):
            hooks[k] = _local_id(c, v, node, f"@allocate_fifo .{k}")
        elif k in ("empty_action", "full_action", "simd_mode", "dest", "src", "xdsr"):
            raise c.error(f"@allocate_fifo: .{k} is not supported yet", node.pos)
        elif k == "priority":
            c.ignored(".priority", node.pos, "task and queue priorities are not modelled")
        else:
            raise c.error(f"@allocate_fifo: unknown option .{k}", node.pos)
    name = c.decl_name
    pe.fifos[name] = ir.Fifo(name, buf.name, hooks.get("activate_push"),
                             hooks.get("activate_pop"))
    return FifoVal(name, buf.name, buf.dtype)


@builtin("map")
def _map(c, node, env):
    fn = c.need_fn(env, node.pos, "@map")
    if len(node.args) < 2:
        raise c.error("@map takes a function and at least one input", node.pos)
    callee = c.ev(node.args[0], env)
    if isinstance(callee, NativeFn) and callee.arity is not None:
        fname, np_ = callee.name, callee.arity
    elif isinstance(callee, FnVal):
        fname, np_ = callee.decl.name, len(callee.decl.params)
    else:
        raise c.error("@map's first argument must be a function", node.args[0].pos)
    rest = [c.ev(a, env) for a in node.args[1:]]
    if len(rest) not in (np_, np_ + 1):
        raise c.error(f"@map: {fname} takes {np_} inputs, got {len(rest)} arguments",
                      node.pos)
    inputs, output = rest[:np_], (rest[np_] if len(rest) > np_ else None)
    for k, v in enumerate(rest, 1):
        if isinstance(v, FifoVal):
            raise c.error("@map cannot take a FIFO operand", node.args[k].pos)
    if not any(isinstance(v, (DsdVal, DsdVarRef)) for v in inputs):
        raise c.error("@map needs at least one DSD input", node.pos)
    if isinstance(callee, NativeFn):
        types = [_map_input_type(c, v, node, k) for k, v in enumerate(inputs, 1)]
    else:
        fenv = callee.module.env()
        types = []
        for p in callee.decl.params:
            t = c.eval_type(p.type, fenv)
            if not isinstance(t, (DType, PtrT)):
                raise c.error(f"@map: parameter '{p.name}' must have a scalar or pointer "
                              "type", p.pos)
            types.append(t)
    in_ops, stubs = [], []
    for k, (t, v) in enumerate(zip(types, inputs), 1):
        what = f"input {k}" if isinstance(callee, NativeFn) else \
            f"parameter '{callee.decl.params[k - 1].name}'"
        if isinstance(t, PtrT):
            # a pointer is passed as it is to every call (the callback reads through it)
            v = v.ptr if isinstance(v, PtrVar) else v
            if not isinstance(v, PtrVal):
                raise c.error(f"@map: {what} is a pointer, got {describe(v)}",
                              node.args[k].pos)
            stubs.append(v)
            continue
        if isinstance(v, (DsdVal, DsdVarRef)):
            d = c.dsd_of(v, node.pos)
            if d.dtype is not None and d.dtype.bits != t.bits:
                raise c.error(f"@map: {what} is {t}, its DSD holds {d.dtype}", node.pos)
            in_ops.append(ir.DsdOperand(d.expr))
        else:
            in_ops.append(ir.ScalarOperand(c.to_expr(v, t, node.pos, f"@map {what}")))
        stubs.append(RVal(ir.Local("%stub", t), t))
    if isinstance(callee, NativeFn):
        name = _native_map_fn(c, callee, types, node, env)
    else:
        runtime, key = c.bind_params(callee, stubs, node.pos, fenv)
        name = c.specialize(callee, fenv, runtime, key, node.pos)
    ret = env.module.pe.functions[name].ret
    out_op = None
    if ret is not None:
        if output is None:
            raise c.error(f"@map: {fname} returns a value, so an output is required",
                          node.pos)
        letter, out_op, et = _operand(c, output, ret, node, len(node.args) - 1)
        if letter == "s":
            raise c.error("@map output must be a DSD or a pointer", node.pos)
        if et is not None and et.bits != ret.bits:
            raise c.error(f"@map: output holds {et}, {fname} returns {ret}", node.pos)
    elif output is not None:
        raise c.error(f"@map: {fname} returns void, so no output is taken", node.pos)
    fn.emit(ir.Map(name, tuple(in_ops), out_op, env.module.pe.site()))
    return None



def _map_input_type(c, v, node, k) -> DType:
    """The element type a library function called by `@map` receives from input `k`."""
    if isinstance(v, (DsdVal, DsdVarRef)):
        t = c.dsd_of(v, node.pos).dtype
    else:
        t = v.dtype if isinstance(v, (RVal, CNum)) else None
    if t is None:
        raise c.error(f"@map: the element type of input {k} is not known; give the library "
                      "function a DSD over a typed array, or a scalar made with @as",
                      node.args[k].pos)
    return t


def _native_map_fn(c, callee: NativeFn, types, node, env) -> str:
    """The IR function `@map` calls per element for a library function: one per function
    and input types, whose body is the library function applied to its parameters."""
    pe = env.module.pe
    key = ("native-map", callee.freeze(), tuple(types))
    if key in pe.specs:
        return pe.specs[key]
    name = pe.fresh(f"map.{callee.name}.")
    pe.specs[key] = name
    params = tuple((pe.fresh(f"x{k}."), t) for k, t in enumerate(types))
    fenv = Env(env.module, [{}], FnCtx(name, None))
    args = []
    for k, (pname, t) in enumerate(params):
        fenv.bind(f"%x{k}", RVal(ir.Local(pname, t), t))
        args.append(ast.Ident(f"%x{k}", node.args[0].pos))
    v = callee.impl(c, ast.Call(node.args[0], tuple(args), node.pos), fenv)
    if isinstance(v, (RVal, CNum)):
        ret = v.dtype
        body = tuple(fenv.fn.blocks[0]) + (ir.Return(c.to_expr(v, ret, node.pos)),)
    elif v is None:
        ret, body = None, tuple(fenv.fn.blocks[0])
    else:
        raise c.error(f"@map: {callee.name} gives {describe(v)}, not a number",
                      node.args[0].pos)
    pe.functions[name] = ir.Function(name, params, ret, body)
    return name
