"""DSD operations (`fmacs`, ...) and `@map`: operands, the config struct and the fabric and
FIFO operand rules."""

from __future__ import annotations

import inspect

import numpy as np

from wsejax import ir, opspec
from wsejax.dsl._context import (
    _body,
    _rule,
)
from wsejax.dsl._fabric import (
    _ut_expr,
)
from wsejax.dsl._functions import (
    FnRef,
)
from wsejax.dsl._globals import (
    Pointer,
)
from wsejax.dsl._tasks import (
    _task_id,
)
from wsejax.dsl._values import (
    DsdValue,
    FifoHandle,
    Val,
    _expr,
    _ExprLike,
)
from wsejax.errors import ProgramError
from wsejax.frontend.dsds import check_width, raw_bits_source, raw_literal
from wsejax.frontend.fabric import (
    Operand,
    check_async,
    check_dfilt_async,
    check_dfilt_options,
    check_dfilt_source,
    check_fifo_length,
    check_hooks,
    check_index,
    check_map_arity,
    check_map_input,
    check_map_operands,
    check_map_output,
    check_map_result,
    check_on_control,
    check_stream_operands,
    on_control_action,
    op_may_end_early,
)
from wsejax.frontend.simd import check_map_simd, check_simd_operands
from wsejax.types import (
    DType,
    u16,
)

# DSD operations


def _operand(v, dtype: DType):
    """Classify an operand: ('D', DsdOperand) | ('p', PtrOperand) | ('s', ScalarOperand),
    with the element type it addresses (None where not known)."""
    if isinstance(v, DsdValue):
        return "D", ir.DsdOperand(v.expr), v.dtype
    if isinstance(v, FifoHandle):
        return "D", ir.DsdOperand(ir.FifoRef(v.name)), v.dtype
    if isinstance(v, Pointer):
        sym = v.sym
        if len(v.indices) != len(sym.symbol.shape):
            raise ProgramError(f"pointer to '{sym.name}' must address one element")
        es = tuple(_expr(i, None, f"index of {sym.name}") for i in v.indices)
        return "p", ir.PtrOperand(sym.name, es), sym.dtype
    return "s", ir.ScalarOperand(_expr(_raw_bits(v, dtype), dtype, "scalar operand")), dtype


def _raw_bits(v, t: DType):
    """A scalar operand of an integer op as the raw bit pattern the op works on (spec 8)."""
    if isinstance(v, _ExprLike) and v.dtype == raw_bits_source(t):
        return Val(ir.Bitcast(v._ir(), t))
    if (t.is_int and not t.is_signed and isinstance(v, (np.integer, np.floating, float))
            and float(v).is_integer()):
        v = int(v)
    return raw_literal(v, t)


def _operand_info(v) -> Operand:
    """What the operand rules see of value `v`."""
    if isinstance(v, FifoHandle):
        return Operand("fifo")
    if not isinstance(v, DsdValue):
        return Operand("value")
    return Operand(v.kind, isinstance(v.fabric, ir.FabIn) and v.fabric.queue is None,
                   v.indexed, getattr(v.fabric, "zero", ()))


def _packed(v) -> bool:
    """Is `v` a fabric DSD with `.simd_mode`?"""
    return isinstance(v, DsdValue) and getattr(v.fabric, "simd", None) is not None


def _op_config(name: str, operands, async_, activate, unblock, index,
               ut_id=None, on_control=None) -> ir.OpConfig | None:
    """The config struct of a DSD op (spec 5.4) from its keyword arguments."""
    what = f"@{name}"
    if not isinstance(async_, (bool, np.bool_)):
        raise ProgramError(f"{what}: async_ must be True or False, got {async_!r}")
    _rule(check_hooks, name, activate is not None, unblock is not None)
    infos = [_operand_info(v) for v in operands]
    if async_:
        _rule(check_async, name, infos)
    _rule(check_index, name, infos, index is not None)
    config = ir.OpConfig(
        async_=bool(async_),
        activate=None if activate is None else ir.Const(
            _task_id(activate, f"{what} activate", local_only=True), u16),
        unblock=None if unblock is None else ir.Const(
            _task_id(unblock, f"{what} unblock", local_only=False), u16),
        index=None if index is None else _expr(index, u16, f"{what} index"),
        ut_id=None if ut_id is None else _ut_expr(ut_id, f"{what} ut_id"),
        on_control=None if on_control is None else _on_control(name, on_control, infos))
    return None if config == ir.OpConfig() else config


def _on_control(name: str, fields, infos) -> ir.OnControl:
    """`on_control=`: a dict of one of `terminate=True`, `activate=task`, `unblock=task`
    (CSL's `.on_control` struct), on an op that reads a fabin_dsd."""
    action = _rule(on_control_action, name, fields, repr)
    _rule(check_on_control, name, infos)
    if action == "terminate":
        return ir.OnControl("terminate")
    task = _task_id(fields[action], f"@{name} .{action}", local_only=action == "activate")
    return ir.OnControl(action, ir.Const(task, u16))


def _dsd_op(name: str, dest, *srcs, async_=False, activate=None, unblock=None,
            index=None, ut_id=None, on_control=None):
    """Emit DSD operation `name`; gives its result: a runtime bool (`Val`) where a
    synchronous op with a FIFO operand may end early, else True."""
    spec = opspec.OPS[name]
    body = _body(f"@{name}")
    if len(srcs) != len(spec.srcs):
        raise ProgramError(f"@{name} takes {1 + len(spec.srcs)} operands, got {1 + len(srcs)}")
    dl, dop, dt = _operand(dest, spec.dest)
    if dl == "s":
        raise ProgramError(f"@{name}: the destination must be a DSD or a pointer")
    _rule(check_width, name, 0, dt, spec.dest)
    letters, operands = [dl], []
    for k, (s, t) in enumerate(zip(srcs, spec.srcs), 1):
        letter, o, st = _operand(s, t)
        if letter == "p":
            raise ProgramError(f"@{name}: a pointer is accepted as destination only")
        if letter == "D":
            _rule(check_width, name, k, st, t)
        letters.append(letter)
        operands.append(o)
    problem = opspec.form_error(name, "".join(letters))
    if problem:
        raise ProgramError(problem)
    _rule(check_stream_operands, name, body.program.arch,
          [_operand_info(v) for v in (dest,) + srcs])
    _rule(check_simd_operands, name, [_packed(v) for v in (dest,) + srcs],
          [t.bits for t in (spec.dest,) + spec.srcs])
    config = _op_config(name, (dest,) + srcs, async_, activate, unblock, index, ut_id,
                        on_control)
    site = body.program.site()
    body.emit(ir.DsdOp(name, dop, tuple(operands), site, config))
    if op_may_end_early(bool(async_), any(isinstance(v, FifoHandle) for v in (dest,) + srcs)):
        return Val(ir.OpOk(site))
    return True


def dfilt(fabin, *, async_=False, activate=None, unblock=None, ut_id=None, index=None,
          on_control=None) -> None:
    """`@dfilt(fabin, .{ .async = true, ... })`: a data filter on `fabin`'s input queue drops
    the data wavelets until it has seen `extent` control wavelets, then completes with its
    hooks (`activate`, `unblock`). It runs asynchronously (`async_=True`); `index` and
    `on_control` do not apply to it."""
    body = _body("@dfilt")
    kind = fabin.kind if isinstance(fabin, DsdValue) else None
    _rule(check_dfilt_source, kind if kind == "fabin_dsd" else f"a {kind}" if kind else
          repr(fabin))
    _rule(check_dfilt_options, [k for k, v in (("index", index), ("on_control", on_control))
                                if v is not None])
    _rule(check_dfilt_async, bool(async_))
    config = _op_config("dfilt", (fabin,), async_, activate, unblock, None, ut_id)
    body.emit(ir.DsdOp("dfilt", ir.DsdOperand(fabin.expr), (), body.program.site(), config))


def set_fifo_read_length(fifo, n) -> None:
    """`@set_fifo_read_length(f, n)`: FIFO `f`'s read length is n (u16) from now on."""
    _set_fifo_length("set_fifo_read_length", "read", fifo, n)


def set_fifo_write_length(fifo, n) -> None:
    """`@set_fifo_write_length(f, n)`: FIFO `f`'s write length is n (u16) from now on."""
    _set_fifo_length("set_fifo_write_length", "write", fifo, n)


def _set_fifo_length(op: str, end: str, fifo, n) -> None:
    body = _body(f"@{op}")
    _rule(check_fifo_length, op, isinstance(fifo, FifoHandle), repr(fifo))
    body.emit(ir.SetFifoLength(fifo.name, end, _expr(n, u16, f"the length of @{op}")))


def _make_op(name: str):
    spec = opspec.OPS[name]

    def op(dest, *srcs, async_=False, activate=None, unblock=None, index=None, ut_id=None,
           on_control=None):
        return _dsd_op(name, dest, *srcs, async_=async_, activate=activate, unblock=unblock,
                       index=index, ut_id=ut_id, on_control=on_control)

    op.__name__ = name
    op.__qualname__ = name
    op.__doc__ = (f"`@{name}`: destination {spec.dest}, sources "
                  f"{', '.join(map(str, spec.srcs))}; forms {', '.join(spec.forms)}. "
                  "Keyword arguments are the config struct: async_, activate, unblock, index, "
                  "ut_id (wse3), on_control (a dict: terminate=True, activate=task or "
                  "unblock=task).")
    return op


# one function per operation of the op table (`tests/test_frontend_rules.py` checks that none
# is missing)
add16 = _make_op("add16")
addc16 = _make_op("addc16")
and16 = _make_op("and16")
clz = _make_op("clz")
ctz = _make_op("ctz")
fabsh = _make_op("fabsh")
fabss = _make_op("fabss")
faddh = _make_op("faddh")
faddhs = _make_op("faddhs")
fadds = _make_op("fadds")
fh2s = _make_op("fh2s")
fh2xp16 = _make_op("fh2xp16")
fmach = _make_op("fmach")
fmachs = _make_op("fmachs")
fmacs = _make_op("fmacs")
fmaxh = _make_op("fmaxh")
fmaxs = _make_op("fmaxs")
fmovh = _make_op("fmovh")
fmovs = _make_op("fmovs")
fmulh = _make_op("fmulh")
fmuls = _make_op("fmuls")
fnegh = _make_op("fnegh")
fnegs = _make_op("fnegs")
fnormh = _make_op("fnormh")
fnorms = _make_op("fnorms")
fs2h = _make_op("fs2h")
fs2xp16 = _make_op("fs2xp16")
fscaleh = _make_op("fscaleh")
fscales = _make_op("fscales")
fsubh = _make_op("fsubh")
fsubs = _make_op("fsubs")
mov16 = _make_op("mov16")
mov32 = _make_op("mov32")
or16 = _make_op("or16")
popcnt = _make_op("popcnt")
sar16 = _make_op("sar16")
sll16 = _make_op("sll16")
slr16 = _make_op("slr16")
sub16 = _make_op("sub16")
xor16 = _make_op("xor16")
xp162fh = _make_op("xp162fh")
xp162fs = _make_op("xp162fs")


def map_elements(callback, *args) -> None:
    """`@map(callback, inputs..., output)`: call `callback` per element of the DSD inputs.

    `callback` is a `csl.fn` function or a plain Python function of one argument per input;
    if it returns a value the last argument is the output (a DSD or `csl.addr(scalar)`).
    """
    body = _body("@map")
    pb = body.program
    fnref = callback if isinstance(callback, FnRef) else None
    _rule(check_map_arity, "the callback", None, len(args))
    n_params = len(fnref.param_types) if fnref else len(inspect.signature(callback).parameters)
    _rule(check_map_arity, "the callback", n_params, len(args))
    inputs, output = args[:n_params], (args[n_params] if len(args) > n_params else None)
    _rule(check_map_operands, [_operand_info(a) for a in inputs],
          None if output is None else _operand_info(output))
    if fnref is None and any(isinstance(a, DsdValue) and a.dtype is None for a in inputs):
        raise ProgramError("@map: a fabric input has no element type of its own; give a "
                           "csl.fn callback with typed parameters")
    in_types, in_ops = _map_inputs(inputs)
    if fnref is None:
        fnref = pb.define_fn(callback, f"map{pb.site()}", tuple(in_types), None,
                             infer_ret=True)
    _check_map_types(inputs, in_types, fnref.param_types)
    bits = [getattr(t, "bits", 0) for t in fnref.param_types]
    _rule(check_map_simd, [_packed(a) for a in inputs] + ([] if output is None
                                                        else [_packed(output)]),
          bits + ([] if output is None else [getattr(fnref.ret, "bits", 0)]),
          output is not None)
    _rule(check_map_output, "the callback", fnref.ret, output is not None)
    out_op = None
    if fnref.ret is not None:
        letter, out_op, ot = _operand(output, fnref.ret)
        _rule(check_map_result, "the callback", fnref.ret, letter, ot)
    body.emit(ir.Map(fnref.name, tuple(in_ops), out_op, pb.site()))


def _map_inputs(inputs) -> tuple[list, list]:
    """The element types and IR operands of `@map`'s inputs."""
    in_types, in_ops = [], []
    for a in inputs:
        if isinstance(a, DsdValue):
            in_types.append(a.dtype)
            in_ops.append(ir.DsdOperand(a.expr))
        else:
            e = _expr(a)
            in_types.append(e.dtype)
            in_ops.append(ir.ScalarOperand(e))
    return in_types, in_ops


def _check_map_types(inputs, in_types, param_types) -> None:
    """Each input of `@map` has the width of the callback's parameter it is given to."""
    for k, (a, t, want) in enumerate(zip(inputs, in_types, param_types), 1):
        if not isinstance(want, DType):
            continue
        if isinstance(a, DsdValue):
            _rule(check_map_input, f"parameter {k} of the callback", want, t)
        elif t.bits != want.bits:
            raise ProgramError(f"@map: callback parameter of type {want} given {t} elements")
