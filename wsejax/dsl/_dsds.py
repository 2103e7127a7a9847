"""DSDs of the Python API: `get_dsd` (memory and fabric DSDs), `tensor_access`, the setters
and `allocate_fifo`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from wsejax import dsd as dsd_math
from wsejax import ir
from wsejax.dsl._context import (
    _FABRIC_DSDS,
    _MEMORY_DSDS,
    _body,
    _program,
    _top_level,
    fabin_dsd,
    mem1d_dsd,
    mem4d_dsd,
)
from wsejax.dsl._fabric import (
    InputQueue,
    OutputQueue,
    TaskId,
    _queue_color,
    _queue_key,
)
from wsejax.dsl._functions import (
    FnRef,
)
from wsejax.dsl._globals import (
    Pointer,
    SymbolRef,
    _TensorRef,
)
from wsejax.dsl._values import (
    DsdValue,
    FifoHandle,
    _const,
    _dsd_arg,
    _expr,
    _ExprLike,
    _is_number,
)
from wsejax.errors import ProgramError
from wsejax.types import (
    DType,
    bf16,
    f16,
    f32,
    i8,
    i16,
    i32,
    u16,
    u32,
)


@dataclass(frozen=True)
class TensorAccess:
    """`|i, j, ...|{L0, L1, ...} -> A[...]` as (symbol, offset, coeffs, extents)."""

    sym: SymbolRef
    offset: int
    coeffs: tuple[int, ...]
    extents: tuple[int, ...]


def tensor_access(fn: Callable, extents) -> TensorAccess:
    """Build a tensor_access map: `tensor_access(lambda i: A[2 * i + 1], 5)` is CSL's
    `|i|{5} -> A[2*i+1]`; `tensor_access(lambda i, j: A[i, j], (4, 3))` has two variables."""
    extents = tuple(extents) if isinstance(extents, (tuple, list)) else (extents,)
    n = sum(p.default is inspect.Parameter.empty for p in inspect.signature(fn).parameters.values())
    if n != len(extents):
        raise ProgramError(f"tensor_access: {n} induction variables but {len(extents)} extents")
    if not 1 <= n <= 4:
        raise ProgramError("tensor_access takes 1 to 4 induction variables")
    ref = fn(*dsd_math.induction_vars(n))
    if isinstance(ref, SymbolRef) and not ref.symbol.shape:
        ref = _TensorRef(ref, ())
    if not isinstance(ref, _TensorRef):
        raise ProgramError("tensor_access must return an indexed global, like A[i * N]")
    try:
        offset, coeffs = dsd_math.linearize(ref.sym.symbol.shape, ref.indices, n)
    except (TypeError, ValueError) as e:
        raise ProgramError(f"tensor_access: {e}") from None
    for e in extents:
        if not 0 <= int(e) <= 0xFFFF:
            raise ProgramError(f"tensor_access extent {e} is not a u16")
    return TensorAccess(ref.sym, offset, coeffs, tuple(int(e) for e in extents))


def _field_expr(v, dtype: DType, what: str) -> ir.Expr:
    if _is_number(v):
        return _const(v, dtype)
    if isinstance(v, _ExprLike):
        _body(f"a runtime {what}")
        return _expr(v, None, what) if v.dtype == dtype else ir.Cast(_expr(v), dtype)
    raise ProgramError(f"DSD {what} must be an integer, got {type(v).__name__}")


def _base(base_address) -> tuple[SymbolRef, int]:
    if isinstance(base_address, SymbolRef):
        return base_address, 0
    if isinstance(base_address, Pointer):
        sym = base_address.sym
        idx = base_address.indices
        if not idx:
            return sym, 0
        if not all(_is_number(i) for i in idx):
            raise ProgramError("base_address index must be comptime-known")
        off, _ = dsd_math.linearize(sym.symbol.shape, tuple(int(i) for i in idx), 0)
        return sym, off
    raise ProgramError(f"base_address must be a global or csl.addr(...), "
                       f"got {type(base_address).__name__}")


def get_dsd(kind: str, *, base_address=None, offset=None, stride=None, extent=None,
            tensor_access: TensorAccess | dict | None = None,
            wavelet_index_offset: bool = False, fabric_color=None, input_queue=None,
            output_queue=None, control: bool = False) -> DsdValue:
    """`@get_dsd(kind, .{...})`.

    mem1d: `base_address`, `offset` (i16), `stride` (i8, default 1), `extent` (u16), or a
    `tensor_access` with one variable. mem4d: `base_address` with `stride` (innermost first)
    and `extent` (outermost first) tuples, or a `tensor_access` with up to four variables.
    A `tensor_access` may also be a dict with base_address/offset/stride/extent.
    With `wavelet_index_offset`, an operation's `index` (16-bit words) is added to the address.

    fabin: `extent` (wavelets), `fabric_color`, `input_queue`. fabout: `extent`,
    `fabric_color`, `output_queue`, `wavelet_index_offset` (a 16-bit op sends its `index` in
    the high half), `control` (it sends control wavelets, spec 6.6). On wse3 the color is the
    one the queue was initialised with.
    """
    if kind in _FABRIC_DSDS:
        for key, v in (("base_address", base_address), ("offset", offset),
                       ("stride", stride), ("tensor_access", tensor_access)):
            if v is not None:
                raise ProgramError(f"{kind} has no property '{key}'")
        return _fabric_dsd(kind, extent, fabric_color, input_queue, output_queue,
                           wavelet_index_offset, control)
    if control:
        raise ProgramError(f"{kind} has no property 'control' (it belongs to fabout DSDs)")
    if kind not in _MEMORY_DSDS:
        raise ProgramError(f"unknown DSD kind {kind!r} (expected csl.mem1d_dsd, csl.mem4d_dsd, "
                           "csl.fabin_dsd or csl.fabout_dsd)")
    for key, v in (("fabric_color", fabric_color), ("input_queue", input_queue),
                   ("output_queue", output_queue)):
        if v is not None:
            raise ProgramError(f"{kind} has no property '{key}' (it belongs to fabric DSDs)")
    wavelet_index_offset = bool(wavelet_index_offset)
    if isinstance(tensor_access, dict):
        d = dict(tensor_access)
        for key in ("base_address", "offset", "stride", "extent"):
            if key in d and locals()[key] is not None:
                raise ProgramError(f"DSD property '{key}' given twice")
        base_address = d.get("base_address", base_address)
        offset = d.get("offset", offset)
        stride = d.get("stride", stride)
        extent = d.get("extent", extent)
        tensor_access = None
    if tensor_access is not None:
        for key, v in (("base_address", base_address), ("offset", offset), ("stride", stride),
                       ("extent", extent)):
            if v is not None:
                raise ProgramError(f"DSD property '{key}' given twice (also by tensor_access)")
        ta = tensor_access
        base_sym, base_off = ta.sym, 0
        if kind == mem1d_dsd:
            if len(ta.extents) != 1:
                raise ProgramError("a mem1d_dsd tensor_access takes one induction variable")
            d = ir.Mem1d(ta.sym.name, _const(ta.offset, i16), _const(ta.coeffs[0], i8),
                         _const(ta.extents[0], u16), 0, wavelet_index_offset)
        else:
            d = ir.Mem4d(ta.sym.name, _const(ta.offset, i16), ta.coeffs, ta.extents, 0,
                         wavelet_index_offset)
        return DsdValue(ir.DsdLit(d), kind, base_sym.dtype, wavelet_index_offset)
    if base_address is None:
        raise ProgramError(f"{kind} needs a base_address or a tensor_access")
    base_sym, base_off = _base(base_address)
    if kind == mem1d_dsd:
        if extent is None:
            raise ProgramError("mem1d_dsd needs an extent")
        if isinstance(stride, (tuple, list)):
            stride = stride[0]
        if isinstance(extent, (tuple, list)):
            extent = extent[0]
        d = ir.Mem1d(base_sym.name,
                     _field_expr(0 if offset is None else offset, i16, "offset"),
                     _field_expr(1 if stride is None else stride, i8, "stride"),
                     _field_expr(extent, u16, "extent"), base_off, wavelet_index_offset)
        return DsdValue(ir.DsdLit(d), kind, base_sym.dtype, wavelet_index_offset)
    extents = tuple(extent) if isinstance(extent, (tuple, list)) else (extent,)
    if extent is None or not 1 <= len(extents) <= 4:
        raise ProgramError("mem4d_dsd needs an extent tuple of 1 to 4 entries")
    strides = (1,) * len(extents) if stride is None else (
        tuple(stride) if isinstance(stride, (tuple, list)) else (stride,))
    if not all(_is_number(v) for v in strides + extents):
        raise ProgramError("mem4d_dsd stride and extent must be comptime-known")
    try:
        coeffs = dsd_math.coeffs_from_strides(tuple(int(s) for s in strides),
                                              tuple(int(e) for e in extents))
    except ValueError as e:
        raise ProgramError(str(e)) from None
    d = ir.Mem4d(base_sym.name, _field_expr(0 if offset is None else offset, i16, "offset"),
                 coeffs, tuple(int(e) for e in extents), base_off, wavelet_index_offset)
    return DsdValue(ir.DsdLit(d), kind, base_sym.dtype, wavelet_index_offset)


def _fabric_dsd(kind, extent, fabric_color, input_queue, output_queue,
                wavelet_index_offset, control=False) -> DsdValue:
    """A fabin_dsd or fabout_dsd: its color is `fabric_color` (wse2) or its queue's (wse3)."""
    pb = _program()
    qname, queue = ("input_queue", input_queue) if kind == fabin_dsd else (
        "output_queue", output_queue)
    wrong = "output_queue" if kind == fabin_dsd else "input_queue"
    if (output_queue if kind == fabin_dsd else input_queue) is not None:
        raise ProgramError(f"{kind} has no property '{wrong}'; it takes an {qname}")
    if not isinstance(control, bool):
        raise ProgramError(f"{kind} control takes a bool, got {control!r}")
    if kind == fabin_dsd and control:
        raise ProgramError("fabin_dsd has no property 'control' (a fabout_dsd sends control "
                           "wavelets)")
    if kind == fabin_dsd and wavelet_index_offset:
        raise ProgramError("fabin_dsd has no property 'wavelet_index_offset' (a received "
                           "wavelet's high half is ignored)")
    if extent is None:
        raise ProgramError(f"{kind} needs an extent (the number of wavelets)")
    want = InputQueue if kind == fabin_dsd else OutputQueue
    if queue is not None and not isinstance(queue, want):
        raise ProgramError(f"{kind} {qname} takes csl.get_{qname}(n), got {queue!r}")
    q = None
    if queue is not None:
        q = _queue_key(queue, f"{kind} {qname}")[1]
    bound = pb.queues.get((qname.split("_")[0], q), (None, None))[0]
    color = None if fabric_color is None else _queue_color(fabric_color, f"{kind} fabric_color")
    if pb.arch == "wse3":
        if q is None:
            raise ProgramError(f"on wse3 a {kind} needs an {qname}, initialised with its color "
                               "(csl.initialize_queue(q, color=c))")
        if bound is None:
            raise ProgramError(f"{kind}: {qname} {q} is not initialised; on wse3 call "
                               "csl.initialize_queue(q, color=c) before using it")
    if color is not None and bound is not None and color != bound:
        raise ProgramError(f"{kind}: fabric_color {color} differs from color {bound} of "
                           f"{qname} {q}")
    color = color if color is not None else bound
    if color is None:
        raise ProgramError(f"{kind} needs a fabric_color (or an {qname} initialised with one)")
    length = _field_expr(extent, u16, "extent")
    if kind == fabin_dsd:
        d = ir.FabIn(color, length, q)
    else:
        d = ir.FabOut(color, length, q, bool(wavelet_index_offset), control)
    return DsdValue(ir.DsdLit(d), kind, None, bool(wavelet_index_offset), d)


def _memory_dsd_arg(d, what: str) -> DsdValue:
    d = _dsd_arg(d, what)
    if d.kind not in _MEMORY_DSDS:
        raise ProgramError(f"{what} applies to memory DSDs, not a {d.kind}")
    return d


def increment_dsd_offset(d: DsdValue, off, dtype: DType) -> DsdValue:
    """`@increment_dsd_offset(d, off, T)`: move the DSD's base by `off` elements of T."""
    d = _memory_dsd_arg(d, "increment_dsd_offset")
    if dtype.bits not in (16, 32):
        raise ProgramError(f"increment_dsd_offset: type {dtype} is not a 16- or 32-bit type")
    return d._derive(ir.IncrementOffset(d.expr, _field_expr(off, i16, "offset increment"),
                                        dtype))


def set_dsd_base_addr(d: DsdValue, base) -> DsdValue:
    """`@set_dsd_base_addr(d, A)`: same access pattern over another array, offset reset to 0."""
    d = _memory_dsd_arg(d, "set_dsd_base_addr")
    sym, off = _base(base)
    if d.dtype is not None and sym.dtype.bits != d.dtype.bits:
        raise ProgramError(f"set_dsd_base_addr: '{sym.name}' holds {sym.dtype}, the DSD "
                           f"addresses {d.dtype} elements")
    return d._derive(ir.SetBase(d.expr, sym.name, off), sym.dtype)


def set_dsd_length(d: DsdValue, n) -> DsdValue:
    """`@set_dsd_length(d, n)` (not for mem4d_dsd; for a fabric DSD, the wavelet count)."""
    d = _dsd_arg(d, "set_dsd_length")
    if d.kind == mem4d_dsd:
        raise ProgramError("set_dsd_length does not apply to a mem4d_dsd")
    return d._derive(ir.SetLength(d.expr, _field_expr(n, u16, "length")))


def set_dsd_stride(d: DsdValue, s) -> DsdValue:
    """`@set_dsd_stride(d, s)` (mem1d_dsd only)."""
    d = _dsd_arg(d, "set_dsd_stride")
    if d.kind != mem1d_dsd:
        raise ProgramError("set_dsd_stride applies to a mem1d_dsd only")
    return d._derive(ir.SetStride(d.expr, _field_expr(s, i8, "stride")))


_FIFO_TYPES = (i16, u16, f16, bf16, i32, u32, f32)


def allocate_fifo(buffer, *, activate_push=None, activate_pop=None) -> FifoHandle:
    """`@allocate_fifo(buf, .{ .activate_push = t, .activate_pop = t })`: a FIFO over the whole
    of global array `buffer` (at the top level of the PE program, once per buffer).

    Pushing into an empty FIFO activates local task `activate_push`; popping from a full one
    activates `activate_pop` (a local task ID or a task bound as a local task)."""
    pb = _top_level("allocate_fifo")
    if not isinstance(buffer, SymbolRef) or not buffer.symbol.shape:
        raise ProgramError(f"allocate_fifo takes a global array, got {buffer!r}")
    if buffer.dtype not in _FIFO_TYPES:
        raise ProgramError(f"allocate_fifo: '{buffer.name}' holds {buffer.dtype}; a FIFO holds "
                           f"16- or 32-bit elements ({', '.join(str(t) for t in _FIFO_TYPES)})")
    if buffer.name in pb.fifo_hooks:
        raise ProgramError(f"allocate_fifo: '{buffer.name}' already holds a FIFO")
    for what, v in (("activate_push", activate_push), ("activate_pop", activate_pop)):
        if v is not None and not isinstance(v, (TaskId, FnRef)):
            raise ProgramError(f"allocate_fifo {what} takes a local task ID or a task, "
                               f"got {v!r}")
        if isinstance(v, TaskId) and v.kind != "local":
            raise ProgramError(f"allocate_fifo {what} takes a local task ID, got data task ID "
                               f"{v.id}")
    pb.fifo_hooks[buffer.name] = (activate_push, activate_pop)
    return FifoHandle(buffer.name, buffer.dtype)
