"""DSD operations (`fmacs`, ...) and `@map`: operands, the config struct and the fabric and
FIFO operand rules."""

from __future__ import annotations

import inspect

import numpy as np

from wsejax import ir, ops
from wsejax.dsl._context import (
    _FABRIC_DSDS,
    _body,
    fabin_dsd,
    fabout_dsd,
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
    _expr,
    _ExprLike,
    _is_number,
)
from wsejax.errors import ProgramError
from wsejax.types import (
    DType,
    i16,
    i32,
    u16,
)

# DSD operations


def _operand(v, dtype: DType, letter_only=False):
    """Classify an operand: ('D', DsdOperand) | ('p', PtrOperand) | ('s', ScalarOperand)."""
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
    if dtype.is_int and not dtype.is_signed:
        # integer ops work on raw bit patterns: a signed value is its two's complement
        signed = {16: i16, 32: i32}.get(dtype.bits)
        if isinstance(v, _ExprLike) and v.dtype == signed:
            return "s", ir.ScalarOperand(ir.Bitcast(v._ir(), dtype)), dtype
        if _is_number(v) and not isinstance(v, bool) and -(1 << (dtype.bits - 1)) <= v < 0:
            v = int(v) & ((1 << dtype.bits) - 1)
    return "s", ir.ScalarOperand(_expr(v, dtype, "scalar operand")), dtype


def _check_width(op: str, what: str, have: DType | None, want: DType) -> None:
    if have is not None and have.bits != want.bits:
        raise ProgramError(f"@{op}: {what} addresses {have} elements, but @{op} works on "
                           f"{want} ({want.bits}-bit)")


def _op_config(name: str, operands, async_, activate, unblock, index,
               ut_id=None) -> ir.OpConfig | None:
    """The config struct of a DSD op (spec 5.4) from its keyword arguments."""
    what = f"@{name}"
    if not isinstance(async_, (bool, np.bool_)):
        raise ProgramError(f"{what}: async_ must be True or False, got {async_!r}")
    if activate is not None and unblock is not None:
        raise ProgramError(f"{what}: an operation takes at most one of activate and unblock")
    streams = [v for v in operands if isinstance(v, FifoHandle)
               or (isinstance(v, DsdValue) and v.kind in _FABRIC_DSDS)]
    if async_:
        if not streams:
            raise ProgramError(f"{what}: async_ needs a fabric or FIFO operand (an operation on "
                               "memory only is synchronous)")
        for v in streams:
            if (isinstance(v, DsdValue) and isinstance(v.fabric, ir.FabIn)
                    and v.fabric.queue is None):
                raise ProgramError(f"{what}: an asynchronous operation's fabin_dsd needs an "
                                   "input_queue")
    indexed = [v for v in operands if isinstance(v, DsdValue) and v.indexed]
    if indexed and index is None:
        raise ProgramError(f"{what}: a DSD with wavelet_index_offset needs the operation's "
                           "index (index=...)")
    config = ir.OpConfig(
        async_=bool(async_),
        activate=None if activate is None else ir.Const(
            _task_id(activate, f"{what} activate", local_only=True), u16),
        unblock=None if unblock is None else ir.Const(
            _task_id(unblock, f"{what} unblock", local_only=False), u16),
        index=None if index is None else _expr(index, u16, f"{what} index"),
        ut_id=None if ut_id is None else _ut_expr(ut_id, f"{what} ut_id"))
    return None if config == ir.OpConfig() else config


def _check_streams(name: str, arch: str, dest, srcs) -> None:
    """Directions of fabric operands and the placement rules of FIFOs (spec 7.4, 7.5)."""
    if isinstance(dest, DsdValue) and dest.kind == fabin_dsd:
        raise ProgramError(f"@{name}: a fabin_dsd receives; it cannot be the destination")
    for k, v in enumerate(srcs):
        if isinstance(v, DsdValue) and v.kind == fabout_dsd:
            raise ProgramError(f"@{name}: a fabout_dsd sends; it cannot be source {k + 1}")
    fabins = [v for v in srcs if isinstance(v, DsdValue) and v.kind == fabin_dsd]
    if arch == "wse3" and len(fabins) > 1:
        raise ProgramError(f"@{name}: on wse3 an operation takes at most one fabin_dsd")
    fifos = [k for k, v in enumerate(srcs) if isinstance(v, FifoHandle)]
    if len(srcs) > 1 and len(fifos) > 1:
        raise ProgramError(f"@{name}: at most one source may be a FIFO")
    if len(srcs) > 1 and fifos == [0]:
        raise ProgramError(f"@{name}: a FIFO cannot be the first of several sources")


def _dsd_op(name: str, dest, *srcs, async_=False, activate=None, unblock=None,
            index=None, ut_id=None) -> bool:
    spec = ops.OPS[name]
    body = _body(f"@{name}")
    if len(srcs) != len(spec.srcs):
        raise ProgramError(f"@{name} takes {1 + len(spec.srcs)} operands, got {1 + len(srcs)}")
    dl, dop, dt = _operand(dest, spec.dest)
    if dl == "s":
        raise ProgramError(f"@{name}: the destination must be a DSD or a pointer")
    _check_width(name, "the destination", dt, spec.dest)
    letters, operands = [dl], []
    for k, (s, t) in enumerate(zip(srcs, spec.srcs)):
        letter, o, st = _operand(s, t)
        if letter == "p":
            raise ProgramError(f"@{name}: a pointer is accepted as destination only")
        if letter == "D":
            _check_width(name, f"source {k + 1}", st, t)
        letters.append(letter)
        operands.append(o)
    problem = ops.form_error(name, "".join(letters))
    if problem:
        raise ProgramError(problem)
    _check_streams(name, body.program.arch, dest, srcs)
    config = _op_config(name, (dest,) + srcs, async_, activate, unblock, index, ut_id)
    body.emit(ir.DsdOp(name, dop, tuple(operands), body.program.site(), config))
    return True


def _make_op(name: str):
    spec = ops.OPS[name]

    def op(dest, *srcs, async_=False, activate=None, unblock=None, index=None, ut_id=None):
        return _dsd_op(name, dest, *srcs, async_=async_, activate=activate, unblock=unblock,
                       index=index, ut_id=ut_id)

    op.__name__ = name
    op.__qualname__ = name
    op.__doc__ = (f"`@{name}`: destination {spec.dest}, sources "
                  f"{', '.join(map(str, spec.srcs))}; forms {', '.join(spec.forms)}. "
                  "Keyword arguments are the config struct: async_, activate, unblock, index, "
                  "ut_id (wse3).")
    return op


# one function per operation of the op table (`tests/test_frontend_rules.py` checks that none
# is missing)
add16 = _make_op("add16")
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
fs2h = _make_op("fs2h")
fs2xp16 = _make_op("fs2xp16")
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
    if not args:
        raise ProgramError("@map needs at least one input")
    if fnref is None:
        n_params = len(inspect.signature(callback).parameters)
    else:
        n_params = len(fnref.param_types)
    if len(args) not in (n_params, n_params + 1):
        raise ProgramError(f"@map: callback takes {n_params} inputs, got {len(args)} arguments")
    inputs, output = args[:n_params], (args[n_params] if len(args) > n_params else None)
    if any(isinstance(a, FifoHandle) for a in args):
        raise ProgramError("@map does not take FIFOs")
    if any(isinstance(a, DsdValue) and a.indexed for a in args):
        raise ProgramError("@map takes no index, so no DSD with wavelet_index_offset")
    if any(isinstance(a, DsdValue) and a.kind == fabout_dsd for a in inputs):
        raise ProgramError("@map: a fabout_dsd cannot be an input")
    if isinstance(output, DsdValue) and output.kind == fabin_dsd:
        raise ProgramError("@map: a fabin_dsd cannot be the output")
    if fnref is None and any(isinstance(a, DsdValue) and a.dtype is None for a in inputs):
        raise ProgramError("@map: a fabric input has no element type of its own; give a "
                           "csl.fn callback with typed parameters")
    if not any(isinstance(a, DsdValue) for a in inputs):
        raise ProgramError("@map needs at least one DSD input")
    in_types = []
    in_ops = []
    for a in inputs:
        if isinstance(a, DsdValue):
            in_types.append(a.dtype)
            in_ops.append(ir.DsdOperand(a.expr))
        else:
            e = _expr(a)
            in_types.append(e.dtype)
            in_ops.append(ir.ScalarOperand(e))
    if fnref is None:
        fnref = pb.define_fn(callback, f"map{pb.site()}", tuple(in_types), None,
                             infer_ret=True)
    for t, want in zip(in_types, fnref.param_types):
        if isinstance(want, DType) and t is not None and t.bits != want.bits:
            raise ProgramError(f"@map: callback parameter of type {want} given {t} elements")
    ret = fnref.ret
    out_op = None
    if ret is not None:
        if output is None:
            raise ProgramError("@map: the callback returns a value, so an output is required")
        letter, out_op, ot = _operand(output, ret)
        if letter == "s":
            raise ProgramError("@map output must be a DSD or a pointer")
        if ot is not None and ot.bits != ret.bits:
            raise ProgramError(f"@map: output holds {ot}, callback returns {ret}")
    elif output is not None:
        raise ProgramError("@map: the callback returns void, so no output is taken")
    body.emit(ir.Map(fnref.name, tuple(in_ops), out_op, pb.site()))
