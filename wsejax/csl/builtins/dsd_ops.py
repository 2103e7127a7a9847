"""DSD operations (`@fmacs`, ...): operands (DSDs, DSRs, FIFOs, scalars, pointers), the fabric
and FIFO operand rules; `@allocate_fifo` and `@map`."""

from __future__ import annotations

import numpy as np

from wsejax import ir, opspec
from wsejax.csl import ast
from wsejax.csl.builtins._registry import builtin, nargs, rule
from wsejax.csl.builtins.dsrs import (
    DsrVal,
    XdsrVal,
    dsd_literal,
    dsr_operand,
    map_dsr_operand,
    op_config_of_dsrs,
)
from wsejax.csl.builtins.op_config import op_config
from wsejax.csl.builtins.tasks import _local_id
from wsejax.csl.env import Env, FnCtx
from wsejax.csl.values import (
    CNum,
    DsdVal,
    DsdVarRef,
    EnumLitVal,
    FifoVal,
    FnVal,
    NativeFn,
    PickedDsd,
    PickedVar,
    PtrT,
    PtrVal,
    PtrVar,
    RPtr,
    RVal,
    StructVal,
    SymRef,
    TupleVal,
    describe,
    flat_indices,
)
from wsejax.frontend.dsds import (
    check_fifo_action,
    check_fifo_buffer,
    check_fifo_registers,
    check_width,
    raw_bits_source,
    raw_literal,
)
from wsejax.frontend.fabric import (
    Operand,
    check_async,
    check_fifo_length,
    check_index,
    check_map_arity,
    check_map_input,
    check_map_operands,
    check_map_output,
    check_map_result,
    check_on_control,
    check_stream_operands,
    op_may_end_early,
)
from wsejax.frontend.simd import (
    check_fifo_simd,
    check_map_simd,
    check_simd_mode,
    check_simd_operands,
)
from wsejax.types import DType


def _operand(c, v, t: DType, node, k, pe=None):
    """('D' | 'p' | 's', IR operand, element type or None)."""
    if isinstance(v, DsrVal):
        rec = dsr_operand(c, pe, v, node, k)
        return "D", ir.DsdOperand(ir.DsdVar(v.name)), rec.dtype
    if isinstance(v, FifoVal):
        return "D", ir.DsdOperand(ir.FifoRef(v.name)), v.dtype
    if isinstance(v, (DsdVal, DsdVarRef)):
        d = c.dsd_of(v, node.pos)
        _not_circbuf(c, d, node, k)
        return "D", ir.DsdOperand(d.expr), d.dtype
    if isinstance(v, PtrVal):
        if v.shape and v.kind == "many":
            raise c.error(f"@{node.name}: operand {k + 1} is a pointer to an array; a pointer "
                          "operand addresses one scalar (&x or &a[i])", node.pos)
        idx = np.unravel_index(v.offset, v.shape) if v.shape else ()
        return "p", ir.PtrOperand(v.name, tuple(ir.Const(int(i), DType.i32) for i in idx)), \
            v.dtype
    e = c.to_expr(_raw_bits(v, t), t, node.args[k].pos, f"operand {k + 1} of @{node.name}")
    return "s", ir.ScalarOperand(e), t


def _is_memory(c, v, node) -> bool:
    """Whether operand value `v` is a memory DSD (not a register, FIFO or fabric DSD)."""
    return isinstance(v, (DsdVal, DsdVarRef)) and c.dsd_of(v, node.pos).kind in (
        "mem1d_dsd", "mem4d_dsd")


def _not_circbuf(c, d: DsdVal, node, k: int) -> None:
    """A circbuf_dsd is an operand only from a register (spec 7.3)."""
    if d.kind == "circbuf_dsd":
        pos = node.args[k].pos if k < len(node.args) else node.pos
        raise c.error(f"@{node.name}: a circbuf_dsd is not an operand itself; load it into a "
                      "DSR with @load_to_dsr_xdsr(dsr, xdsr, dsd) and use the DSR", pos)


def _raw_bits(v, t: DType):
    """A scalar operand of an integer op as the raw bit pattern the op works on (spec 8)."""
    signed = raw_bits_source(t)
    if signed is not None and isinstance(v, RVal) and v.dtype == signed:
        return RVal(ir.Bitcast(v.expr, t), t)
    if signed is not None and isinstance(v, CNum) and v.dtype == signed:
        return CNum(v.value & ((1 << t.bits) - 1), t)
    return raw_literal(v, t)


def dsd_op(c, node: ast.Builtin, env: Env):
    spec = opspec.for_fp16(c.fp16)[node.name]
    fn = c.need_fn(env, node.pos, f"@{node.name}")
    vals = [c.ev(a, env) for a in node.args]
    config = None
    if vals and isinstance(vals[-1], StructVal):
        config = op_config(c, vals.pop(), node, env)
    n = 1 + len(spec.srcs)
    if len(vals) != n:
        raise c.error(f"@{node.name} takes {n} operands, got {len(vals)}", node.pos)
    return c.each_arm(picked(c, vals, node), env,
                      lambda vs: _dsd_op_of(c, node, env, spec, fn, vs, config), node.pos)


def picked(c, vals: list, node) -> list:
    """Values `vals` with each DSD variable that may hold several fixed parts read (a
    `PickedDsd`, which `each_arm` splits)."""
    return [c.dsd_or_picked(v, node.pos) if isinstance(v, (PickedDsd, PickedVar)) else v
            for v in vals]


def _dsd_op_of(c, node, env: Env, spec, fn: FnCtx, vals: list, config):
    """DSD op `node` of operand values `vals` (no `PickedDsd` among them)."""
    letters, operands = [], []
    ptr = vals[0] if vals and isinstance(vals[0], RPtr) else None
    if ptr is not None:
        vals[0] = _pointer_destination(c, ptr, node, env.module.pe)
    for k, (v, t) in enumerate(zip(vals, (spec.dest,) + spec.srcs)):
        letter, o, et = _operand(c, v, t, node, k, env.module.pe)
        if letter != "s":
            rule(c, node, check_width, node.name, k, et, t,
                 node.name == "mov16" and _is_memory(c, v, node))
        letters.append(letter)
        operands.append(o)
    problem = opspec.form_error(node.name, "".join(letters))
    if problem:
        raise c.error(problem, node.pos)
    config = _dsr_config(c, vals, node, config, env.module.pe)
    _check_fabric_operands(c, vals, node, config, env.module.pe)
    _check_simd_operands(c, vals, node, (spec.dest,) + spec.srcs, env.module.pe)
    if ptr is not None and config is not None and config.async_:
        _async_through_pointer(c, node, ptr, operands, config, fn, env.module.pe)
        return _op_result(vals, config, None)
    site = env.module.pe.site()
    if ptr is None:
        fn.emit(ir.DsdOp(node.name, operands[0], tuple(operands[1:]), site, config))
        return _op_result(vals, config, site)
    # synchronous: the op writes its scalar, loaded from `p.*` first (so that an op ending
    # before its first element leaves `p.*` as it was, spec 7.5), then stored back through
    # the address `p` had when the op began
    value, elem = vals[0].name, ptr.type.elem
    at = ir.Load(f"{value}.addr", (), ir.POINTER)
    fn.emit(ir.Assign(at.symbol, (), ptr.expr))
    fn.emit(ir.Assign(value, (), ir.PtrLoad(at, elem)))
    fn.emit(ir.DsdOp(node.name, operands[0], tuple(operands[1:]), site, config))
    fn.emit(ir.PtrStore(at, ir.Load(value, (), elem), elem))
    return _op_result(vals, config, site)


def _pointer_destination(c, p: RPtr, node, pe) -> PtrVal:
    """A destination known only at run time (`@fadds(p, ...)` with `p` a runtime `*T`): a
    scalar of the op's own (`%pdst.N`, its address kept beside it in `%pdst.N.addr`), which
    stands for the destination while the operands are checked."""
    pos = node.args[0].pos
    if p.type.kind != "single" or not isinstance(p.type.elem, DType):
        raise c.error(f"@{node.name}: a destination pointer addresses one number (a *T), got "
                      f"{p.type}", pos)
    if p.type.const:
        raise c.error(f"@{node.name}: cannot write through {p.type} (a pointer to const)", pos)
    elem = p.type.elem
    value = pe.fresh("pdst.")
    pe.symbols[f"{value}.addr"] = ir.Symbol(f"{value}.addr", ir.POINTER, ())
    pe.symbols[value] = ir.Symbol(value, elem, ())
    return PtrVal(value, elem, (), kind="single")


def _async_through_pointer(c, node, p: RPtr, operands, config, fn, pe) -> None:
    """An asynchronous op writing its scalar through runtime pointer `p`: the address is read
    as the op starts, and the op writes the element of the array (of the pointer's element
    type) that holds it, one op site per such array, chosen where the address lies. An
    address in no such array fails a runtime check."""
    elem = p.type.elem
    cands = [s for s in pe.symbols.values() if s.dtype == elem and
             not s.name.startswith("%pdst.")]
    at = ir.Load(f"{operands[0].symbol}.addr", (), ir.POINTER)
    fn.emit(ir.Assign(at.symbol, (), p.expr))
    found, ops = None, []
    for sym in cands:
        base = ir.AddrOf(sym.name)
        rel = ir.Bin("-", at, base, ir.POINTER)
        inside = ir.Bin("and", ir.Bin(">=", at, base, DType.bool_), ir.Bin(
            "<", rel, ir.Const(sym.nbytes, ir.POINTER), DType.bool_), DType.bool_)
        k = ir.Cast(ir.Bin("/", rel, ir.Const(elem.nbytes, ir.POINTER), ir.POINTER), DType.i32)
        dest = ir.PtrOperand(sym.name, flat_indices(k, sym.shape) if sym.shape else ())
        ops.append(ir.If(inside, (ir.DsdOp(node.name, dest, tuple(operands[1:]), pe.site(),
                                           config),), ()))
        found = inside if found is None else ir.Bin("or", found, inside, DType.bool_)
    pos = node.args[0].pos
    where = f"{pos.file}:{pos.line}:{pos.col} (@{node.name}'s destination pointer into no " \
            f"{elem} variable)"
    fn.emit(ir.Assert(found if found is not None else ir.Const(False, DType.bool_), where))
    for s in ops:
        fn.emit(s)


def _op_result(vals, config, site: int):
    """What the builtin gives (spec 7.5, 8): a synchronous op with a FIFO operand may end
    early, false, at run time; any other completes (an asynchronous one is started): true."""
    if op_may_end_early(config is not None and config.async_,
                        any(isinstance(v, FifoVal) for v in vals)):
        return RVal(ir.OpOk(site), DType.bool_)
    return True


# every DSD operation of the op table is a builtin of the same name
builtin(*opspec.OPS)(dsd_op)


def _check_fabric_operands(c, vals, node, config, pe) -> None:
    """The rules on fabric DSDs and FIFOs as operands (spec 7.4, 7.5, 7.6) and on the
    config that streams need."""
    operands = [_operand_info(c, v, node, pe) for v in vals]
    rule(c, node, check_stream_operands, node.name, c.arch, operands)
    if config is not None and config.async_:
        rule(c, node, check_async, node.name, operands, pos=node.pos)
    if config is not None and config.on_control is not None:
        rule(c, node, check_on_control, node.name, operands, pos=node.pos)
    rule(c, node, check_index, node.name, operands,
         config is not None and config.index is not None, pos=node.pos)


def _check_simd_operands(c, vals, node, types, pe) -> None:
    """A fabric operand with `.simd_mode` is a 16-bit operand of the op."""
    rule(c, node, check_simd_operands, node.name, [_simd_of(c, v, node, pe) for v in vals],
         [t.bits for t in types])


def _simd_of(c, v, node, pe) -> bool:
    """Is value `v` a fabric DSD with `.simd_mode`?"""
    if isinstance(v, DsrVal):
        return getattr(pe.dsrs[v.name].literal, "simd", None) is not None
    if not isinstance(v, (DsdVal, DsdVarRef)):
        return False
    return getattr(dsd_literal(c, c.dsd_of(v, node.pos).expr), "simd", None) is not None


def _dsr_config(c, vals, node, config, pe):
    """The operation's config, where its DSR operands were loaded with `.async` (spec 7.8).
    A register loaded with `.single_step` is for `@map` only (elsewhere the SDK leaves it
    undefined)."""
    for k, v in enumerate(vals):
        if isinstance(v, DsrVal) and pe.dsrs[v.name].single_step:
            raise c.error(f"@{node.name}: the {v.type} {v.id} was loaded with .single_step, "
                          "which readies it for @map only (its use by other operations is "
                          "undefined)", node.args[k].pos)
    recs = [pe.dsrs[v.name] for v in vals if isinstance(v, DsrVal)]
    return op_config_of_dsrs(c, node, recs, config)


def _operand_info(c, v, node, pe=None) -> Operand:
    """What the operand rules see of value `v`."""
    if isinstance(v, FifoVal):
        return Operand("fifo")
    if isinstance(v, DsrVal):
        rec = pe.dsrs[v.name]
        return Operand(rec.kind, isinstance(rec.literal, ir.FabIn) and
                       rec.literal.queue is None,
                       bool(getattr(rec.literal, "wavelet_index_offset", False)),
                       getattr(rec.literal, "zero", ()))
    if not isinstance(v, (DsdVal, DsdVarRef)):
        return Operand("value")
    d = c.dsd_of(v, node.pos)
    lit = dsd_literal(c, d.expr)
    return Operand(d.kind, isinstance(lit, ir.FabIn) and lit.queue is None,
                   bool(getattr(lit, "wavelet_index_offset", False)), getattr(lit, "zero", ()))


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
    if not isinstance(buf, SymRef) or not buf.shape:
        raise c.error(f"@allocate_fifo takes a global var array of 16- or 32-bit elements, got "
                      f"{describe(buf)}", node.args[0].pos)
    other = next((x.name for x in pe.fifos.values() if x.buffer == buf.name), None)
    rule(c, node, check_fifo_buffer, buf.name, buf.dtype, other, pos=node.args[0].pos)
    cfg = c.ev(node.args[1], env) if len(node.args) > 1 else StructVal({})
    if isinstance(cfg, TupleVal) and not cfg.items:
        cfg = StructVal({})
    if not isinstance(cfg, StructVal):
        raise c.error("@allocate_fifo takes a config struct like .{ .activate_push = t }",
                      node.args[1].pos)
    hooks = _fifo_hooks(c, cfg.fields, node)
    name = c.decl_name
    _fifo_registers(c, pe, name, cfg.fields, node)
    pe.fifos[name] = ir.Fifo(name, buf.name, hooks.get("activate_push"),
                             hooks.get("activate_pop"),
                             hooks.get("empty_action", "test_or_suspend"),
                             hooks.get("full_action", "test_or_suspend"))
    return FifoVal(name, buf.name, buf.dtype)


def _fifo_hooks(c, options: dict, node) -> dict:
    """The local task IDs a FIFO's config activates (`activate_push`, `activate_pop`) and
    its actions (`empty_action`, `full_action`); its other options are checked."""
    hooks = {}
    for k, v in options.items():
        if k in ("activate_push", "activate_pop"):
            hooks[k] = _local_id(c, v, node, f"@allocate_fifo .{k}")
        elif k in ("empty_action", "full_action"):
            hooks[k] = _fifo_action(c, k, v, node)
            rule(c, node, check_fifo_action, c.arch, k, hooks[k], pos=node.args[1].pos)
        elif k in ("dest", "src", "xdsr"):
            continue            # `_fifo_registers`
        elif k == "simd_mode":
            _fifo_simd(c, v, node)
        elif k == "priority":
            c.ignored(".priority", node.pos, "task and queue priorities are not modelled")
        else:
            raise c.error(f"@allocate_fifo: unknown option .{k}", node.pos)
    return hooks


def _fifo_simd(c, v, node) -> None:
    """A FIFO's `.simd_mode` (wse2 only): checked; it changes no value
    (`wsejax.frontend.simd`)."""
    rule(c, node, check_simd_mode, "@allocate_fifo",
         v.name if isinstance(v, EnumLitVal) else None, pos=node.args[1].pos)
    rule(c, node, check_fifo_simd, c.arch, pos=node.args[1].pos)


def _fifo_action(c, field: str, v, node) -> str:
    """The action `.{ .name = true }` names (`.empty_action` / `.full_action`)."""
    names = [k for k, x in v.fields.items() if x is True] if isinstance(v, StructVal) else []
    if not isinstance(v, StructVal) or len(names) != 1 or len(v.fields) != 1:
        raise c.error(f"@allocate_fifo .{field} takes one action, like "
                      f".{{ .suspend = true }}, got {describe(v)}", node.args[1].pos)
    return names[0]


def _fifo_registers(c, pe, fifo: str, options: dict, node) -> None:
    """A FIFO's explicit `.dest`, `.src` and `.xdsr` registers (checked, then marked as the
    FIFO's: the FIFO works as with the registers the compiler would pick)."""
    dest, src, x = options.get("dest"), options.get("src"), options.get("xdsr")
    if dest is None and src is None and x is None:
        return
    for field, v, want in (("dest", dest, DsrVal), ("src", src, DsrVal), ("xdsr", x, XdsrVal)):
        if v is not None and not isinstance(v, want):
            raise c.error(f"@allocate_fifo .{field} takes a "
                          f"{'@get_xdsr(n)' if want is XdsrVal else '@get_dsr(...)'}, got "
                          f"{describe(v)}", node.args[1].pos)
    regs = [(r.name, f"the {r.type} {r.id}") for r in (dest, src) if r is not None]
    regs += [] if x is None else [(f"%xdsr.{x.id}", f"the xdsr {x.id}")]
    what = None
    for n, label in regs:
        if n in pe.fifo_registers:
            what = f"{label} (FIFO '{pe.fifo_registers[n]}')"
        elif n in pe.dsrs:
            what = f"{label} (a @load_to_dsr)"
        if what:
            break
    rule(c, node, check_fifo_registers, None if dest is None else (dest.type, dest.id),
         None if src is None else (src.type, src.id), None if x is None else x.id, what,
         pos=node.args[1].pos)
    for n, _ in regs:
        pe.fifo_registers[n] = fifo


@builtin("set_fifo_read_length", "set_fifo_write_length")
def _set_fifo_length(c, node, env):
    """`@set_fifo_read_length(f, n)` / `@set_fifo_write_length(f, n)`: at run time, FIFO
    `f`'s read / write length is n (u16) from now on (`ir.SetFifoLength` says how ops use
    it)."""
    nargs(c, node, 2)
    fn = c.need_fn(env, node.pos, f"@{node.name}")
    f = c.ev(node.args[0], env)
    rule(c, node, check_fifo_length, node.name, isinstance(f, FifoVal), describe(f),
         pos=node.args[0].pos)
    n = c.to_expr(c.ev(node.args[1], env), DType.u16, node.args[1].pos,
                  f"the length of @{node.name}")
    end = "read" if node.name == "set_fifo_read_length" else "write"
    fn.emit(ir.SetFifoLength(f.name, end, n))
    return None


@builtin("map")
def _map(c, node, env):
    fn = c.need_fn(env, node.pos, "@map")
    rule(c, node, check_map_arity, "", None, len(node.args) - 1, pos=node.pos)
    callee = c.ev(node.args[0], env)
    if isinstance(callee, NativeFn) and callee.arity is not None:
        fname, n = callee.name, callee.arity
    elif isinstance(callee, FnVal):
        fname, n = callee.decl.name, len(callee.decl.params)
    else:
        raise c.error("@map's first argument must be a function", node.args[0].pos)
    rest = [c.ev(a, env) for a in node.args[1:]]
    rule(c, node, check_map_arity, fname, n, len(rest), pos=node.pos)
    return c.each_arm(picked(c, rest, node), env,
                      lambda vs: _map_of(c, node, env, fn, callee, fname, n, vs), node.pos)


def _map_of(c, node, env: Env, fn: FnCtx, callee, fname: str, n: int, rest: list) -> None:
    """`@map` of `callee` (`fname`, `n` inputs) over operand values `rest` (no
    `PickedDsd` among them)."""
    pe = env.module.pe
    for k, v in enumerate(rest, 1):
        if isinstance(v, DsrVal):
            map_dsr_operand(c, pe, v, node, k, k > n)
    inputs, output = rest[:n], (rest[n] if len(rest) > n else None)
    rule(c, node, check_map_operands, [_operand_info(c, v, node, pe) for v in inputs],
         None if output is None else _operand_info(c, output, node, pe), offset=1)
    if isinstance(callee, NativeFn):
        types = [_map_input_type(c, v, node, k, pe) for k, v in enumerate(inputs, 1)]
        in_ops, _ = _map_inputs(c, callee, types, inputs, node, pe)
        name = _native_map_fn(c, callee, types, node, env)
    else:
        fenv = callee.module.env()
        types = [_map_param_type(c, p, fenv) for p in callee.decl.params]
        in_ops, stubs = _map_inputs(c, callee, types, inputs, node, pe)
        runtime, key = c.bind_params(callee, stubs, node.pos, fenv)
        name = c.specialize(callee, fenv, runtime, key, node.pos)
    ret = pe.functions[name].ret
    bits = [getattr(t, "bits", 0) for t in types] + [getattr(ret, "bits", 0)]
    rule(c, node, check_map_simd, [_simd_of(c, v, node, pe) for v in inputs] +
         ([] if output is None else [_simd_of(c, output, node, pe)]),
         bits[:len(inputs)] + ([] if output is None else bits[-1:]), output is not None,
         offset=1)
    rule(c, node, check_map_output, fname, ret, output is not None, pos=node.pos)
    out_op = None
    if ret is not None:
        letter, out_op, et = _map_output(c, output, ret, node, pe)
        rule(c, node, check_map_result, fname, ret, letter, et, pos=node.pos)
    fn.emit(ir.Map(name, tuple(in_ops), out_op, env.module.pe.site()))
    return None


def _map_output(c, output, ret, node, pe):
    """('D' | 'p' | 's', IR operand, element type or None) of `@map`'s output (a DSR there
    is a dsr_dest, checked by `map_dsr_operand`)."""
    if isinstance(output, DsrVal):
        return "D", ir.DsdOperand(ir.DsdVar(output.name)), pe.dsrs[output.name].dtype
    return _operand(c, output, ret, node, len(node.args) - 1, pe)


def _map_param_type(c, p, fenv):
    """The type of a parameter of a function called by `@map`: a scalar or a pointer."""
    t = c.eval_type(p.type, fenv)
    if not isinstance(t, (DType, PtrT)):
        raise c.error(f"@map: parameter '{p.name}' must have a scalar or pointer type", p.pos)
    return t


def _map_inputs(c, callee, types, inputs, node, pe) -> tuple[list, list]:
    """The IR operands of `@map`'s inputs, and the values the callback's parameters stand
    for while it is specialised (a pointer is passed as it is to every call)."""
    in_ops, stubs = [], []
    for k, (t, v) in enumerate(zip(types, inputs), 1):
        what = f"input {k}" if isinstance(callee, NativeFn) else \
            f"parameter '{callee.decl.params[k - 1].name}'"
        if isinstance(t, PtrT):
            v = v.ptr if isinstance(v, PtrVar) else v
            if not isinstance(v, PtrVal):
                raise c.error(f"@map: {what} is a pointer, got {describe(v)}",
                              node.args[k].pos)
            stubs.append(v)
            continue
        if isinstance(v, DsrVal):
            rule(c, node, check_map_input, what, t, pe.dsrs[v.name].dtype, pos=node.pos)
            in_ops.append(ir.DsdOperand(ir.DsdVar(v.name)))
        elif isinstance(v, (DsdVal, DsdVarRef)):
            d = c.dsd_of(v, node.pos)
            _not_circbuf(c, d, node, k)
            rule(c, node, check_map_input, what, t, d.dtype, pos=node.pos)
            in_ops.append(ir.DsdOperand(d.expr))
        else:
            in_ops.append(ir.ScalarOperand(c.to_expr(v, t, node.pos, f"@map {what}")))
        stubs.append(RVal(ir.Local("%stub", t), t))
    return in_ops, stubs


def _map_input_type(c, v, node, k, pe) -> DType:
    """The element type a library function called by `@map` receives from input `k`."""
    if isinstance(v, DsrVal):
        t = pe.dsrs[v.name].dtype
    elif isinstance(v, (DsdVal, DsdVarRef)):
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
