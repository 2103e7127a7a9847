"""DSDs of the Python API: `get_dsd` (memory and fabric DSDs), `tensor_access`, the setters
and `allocate_fifo`."""

from __future__ import annotations

import dataclasses
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
    _rule,
    _top_level,
    fabin_dsd,
    fabout_dsd,
    mem1d_dsd,
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
from wsejax.frontend.dsds import (
    ADDRESSING,
    check_base_width,
    check_fabric_source,
    check_fifo_action,
    check_fifo_buffer,
    check_given_once,
    check_length_target,
    check_offset_type,
    check_stride_target,
    coeffs,
    linearize,
    memory_only,
    need_base,
    need_extent,
    need_extents,
    tensor_access_shape,
)
from wsejax.frontend.simd import check_fabric_simd, check_fifo_simd, check_simd_mode
from wsejax.types import (
    DType,
    i8,
    i16,
    u16,
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
    params = inspect.signature(fn).parameters.values()
    n = sum(p.default is inspect.Parameter.empty for p in params)
    _rule(tensor_access_shape, None, n, len(extents))
    ref = fn(*dsd_math.induction_vars(n))
    if isinstance(ref, SymbolRef) and not ref.symbol.shape:
        ref = _TensorRef(ref, ())
    if not isinstance(ref, _TensorRef):
        raise ProgramError("tensor_access must return an indexed global, like A[i * N]")
    offset, coeffs = _rule(linearize, ref.sym.symbol.shape, ref.indices, n)
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
            output_queue=None, control: bool = False, zero=(),
            simd_mode: str | None = None, advance_switch: bool = False) -> DsdValue:
    """`@get_dsd(kind, .{...})`.

    mem1d: `base_address`, `offset` (i16), `stride` (i8, default 1), `extent` (u16), or a
    `tensor_access` with one variable. mem4d: `base_address` with `stride` (innermost first)
    and `extent` (outermost first) tuples, or a `tensor_access` with up to four variables.
    A `tensor_access` may also be a dict with base_address/offset/stride/extent.
    With `wavelet_index_offset`, an operation's `index` (16-bit words) is added to the address.

    fabin: `extent` (wavelets), `fabric_color`, `input_queue`. fabout: `extent`,
    `fabric_color`, `output_queue`, `wavelet_index_offset` (a 16-bit op sends its `index` in
    the high half), `control` (it sends control wavelets, spec 6.6), `zero` (the sources an op
    sending through it leaves zero: "first_source" and/or "second_source"). On wse3 the color is
    the one the queue was initialised with. Both take `simd_mode` ("simd_32", "simd_64" or
    "simd_32_or_64"): a 16-bit op's elements travel two a wavelet, the first in the low half
    (`wsejax.frontend.simd`). A fabout's `advance_switch`: once its last wavelet has left the
    sender's router, that router's switch of the color advances (`wsejax.switches`).
    """
    if kind in _FABRIC_DSDS:
        _no_properties(kind, "", base_address=base_address, offset=offset, stride=stride,
                       tensor_access=tensor_access)
        d = _fabric_dsd(kind, extent, fabric_color, input_queue, output_queue,
                        wavelet_index_offset, control)
        d = _with_simd(d, simd_mode, wavelet_index_offset) if simd_mode is not None else d
        d = _with_advance(d, advance_switch) if advance_switch is not False else d
        return _with_zero(d, zero) if zero else d
    if control or zero or advance_switch:
        what = "control" if control else "zero" if zero else "advance_switch"
        raise ProgramError(f"{kind} has no property '{what}' (it belongs to fabout DSDs)")
    if kind not in _MEMORY_DSDS:
        raise ProgramError(f"unknown DSD kind {kind!r} (expected csl.mem1d_dsd, csl.mem4d_dsd, "
                           "csl.fabin_dsd or csl.fabout_dsd)")
    _no_properties(kind, " (it belongs to fabric DSDs)", fabric_color=fabric_color,
                   input_queue=input_queue, output_queue=output_queue, simd_mode=simd_mode)
    fields = dict(base_address=base_address, offset=offset, stride=stride, extent=extent)
    given = {k for k, v in fields.items() if v is not None}
    wio = bool(wavelet_index_offset)
    if isinstance(tensor_access, dict):
        _rule(check_given_once, given, tensor_access)
        fields.update((k, tensor_access[k]) for k in ADDRESSING if k in tensor_access)
    elif tensor_access is not None:
        _rule(check_given_once, given, ADDRESSING, True)
        return _access_dsd(kind, tensor_access, wio)
    return _addressed_dsd(kind, wio, **fields)


def _no_properties(kind: str, why: str, **given) -> None:
    """None of the keyword arguments `given` is set: they are not properties of `kind`."""
    for key, v in given.items():
        if v is not None:
            raise ProgramError(f"{kind} has no property '{key}'{why}")


def _access_dsd(kind: str, ta: TensorAccess, wio: bool) -> DsdValue:
    """A memory DSD from a tensor_access map."""
    _rule(tensor_access_shape, kind, len(ta.extents), len(ta.extents))
    if kind == mem1d_dsd:
        d = ir.Mem1d(ta.sym.name, _const(ta.offset, i16), _const(ta.coeffs[0], i8),
                     _const(ta.extents[0], u16), 0, wio)
    else:
        d = ir.Mem4d(ta.sym.name, _const(ta.offset, i16), ta.coeffs, ta.extents, 0, wio)
    return DsdValue(ir.DsdLit(d), kind, ta.sym.dtype, wio)


def _addressed_dsd(kind: str, wio: bool, base_address, offset, stride, extent) -> DsdValue:
    """A memory DSD from its base address and addressing fields."""
    _rule(need_base, kind, base_address is not None)
    base_sym, base_off = _base(base_address)
    offset = _field_expr(0 if offset is None else offset, i16, "offset")
    if kind == mem1d_dsd:
        _rule(need_extent, extent is not None)
        d = ir.Mem1d(base_sym.name, offset, _field_expr(1 if stride is None else _first(stride),
                                                        i8, "stride"),
                     _field_expr(_first(extent), u16, "extent"), base_off, wio)
        return DsdValue(ir.DsdLit(d), kind, base_sym.dtype, wio)
    extents = _rule(need_extents, None if extent is None else _items(extent))
    strides = (1,) * len(extents) if stride is None else _items(stride)
    if not all(_is_number(v) for v in strides + extents):
        raise ProgramError("mem4d_dsd stride and extent must be comptime-known")
    extents = tuple(int(e) for e in extents)
    d = ir.Mem4d(base_sym.name, offset, _rule(coeffs, tuple(int(s) for s in strides), extents),
                 extents, base_off, wio)
    return DsdValue(ir.DsdLit(d), kind, base_sym.dtype, wio)


def _items(v) -> tuple:
    """The entries of a tuple field, or the one value given in its place."""
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _first(v):
    """A mem1d_dsd's stride or extent, given as a value or a sequence of one."""
    return v[0] if isinstance(v, (tuple, list)) else v


def _fabric_dsd(kind, extent, fabric_color, input_queue, output_queue,
                wavelet_index_offset, control=False) -> DsdValue:
    """A fabin_dsd or fabout_dsd: its color is `fabric_color` (wse2) or its queue's (wse3)."""
    pb = _program()
    qname, queue = ("input_queue", input_queue) if kind == fabin_dsd else (
        "output_queue", output_queue)
    _check_fabric_flags(kind, output_queue if kind == fabin_dsd else input_queue, control,
                        wavelet_index_offset)
    want = InputQueue if kind == fabin_dsd else OutputQueue
    if queue is not None and not isinstance(queue, want):
        raise ProgramError(f"{kind} {qname} takes csl.get_{qname}(n), got {queue!r}")
    q = None if queue is None else _queue_key(queue, f"{kind} {qname}")[1]
    bound = pb.queues.get((qname.split("_")[0], q), (None, None))[0]
    # on wse2 a fabin_dsd may take its color from its queue, if the queue has one by now
    _rule(check_fabric_source, kind, pb.arch, extent is not None, fabric_color is not None,
          q is not None and (pb.arch == "wse3" or bound is not None))
    color = None if fabric_color is None else _queue_color(fabric_color, f"{kind} fabric_color")
    if pb.arch == "wse3" and bound is None:
        raise ProgramError(f"{kind}: {qname} {q} is not initialised; on wse3 call "
                           "csl.initialize_queue(q, color=c) before using it")
    if color is not None and bound is not None and color != bound:
        raise ProgramError(f"{kind}: fabric_color {color} differs from color {bound} of "
                           f"{qname} {q}")
    color = color if color is not None else bound
    length = _field_expr(extent, u16, "extent")
    if kind == fabin_dsd:
        d = ir.FabIn(color, length, q)
    else:
        d = ir.FabOut(color, length, q, bool(wavelet_index_offset), control)
    return DsdValue(ir.DsdLit(d), kind, None, bool(wavelet_index_offset), d)


_ZERO_SOURCES = ("first_source", "second_source")


def _with_zero(d: DsdValue, zero) -> DsdValue:
    """fabout_dsd `d` with `.zero` (spec 7.4): the sources, by name, its ops leave zero."""
    if d.kind != fabout_dsd:
        raise ProgramError(f"{d.kind} has no property 'zero' (it belongs to fabout DSDs)")
    names = (zero,) if isinstance(zero, str) else tuple(zero)
    bad = [n for n in names if n not in _ZERO_SOURCES]
    if bad:
        raise ProgramError(f"fabout_dsd zero takes 'first_source' and/or 'second_source', "
                           f"got {bad[0]!r}")
    fab = dataclasses.replace(d.fabric, zero=tuple(k for k, n in enumerate(_ZERO_SOURCES)
                                                   if n in names))
    return DsdValue(ir.DsdLit(fab), d.kind, None, d.indexed, fab)


def _with_advance(d: DsdValue, advance) -> DsdValue:
    """fabout_dsd `d` with `.advance_switch` (spec 6.2)."""
    if d.kind != fabout_dsd:
        raise ProgramError(f"{d.kind} has no property 'advance_switch' (it belongs to fabout "
                           "DSDs)")
    if not isinstance(advance, bool):
        raise ProgramError(f"fabout_dsd advance_switch takes a bool, got {advance!r}")
    fab = dataclasses.replace(d.fabric, advance_switch=advance)
    return DsdValue(ir.DsdLit(fab), d.kind, None, d.indexed, fab)


def _with_simd(d: DsdValue, mode, wavelet_index_offset) -> DsdValue:
    """fabric DSD `d` with `.simd_mode` `mode` (`wsejax.frontend.simd`)."""
    _rule(check_simd_mode, d.kind, mode if isinstance(mode, str) else None)
    _rule(check_fabric_simd, d.kind, bool(wavelet_index_offset))
    fab = dataclasses.replace(d.fabric, simd=mode)
    return DsdValue(ir.DsdLit(fab), d.kind, None, d.indexed, fab)


def _check_fabric_flags(kind: str, other_queue, control, wavelet_index_offset) -> None:
    """The properties a fabric DSD of `kind` does not take, and its flags."""
    if other_queue is not None:
        qname, wrong = (("input_queue", "output_queue") if kind == fabin_dsd
                        else ("output_queue", "input_queue"))
        raise ProgramError(f"{kind} has no property '{wrong}'; it takes an {qname}")
    if not isinstance(control, bool):
        raise ProgramError(f"{kind} control takes a bool, got {control!r}")
    if kind == fabin_dsd and control:
        raise ProgramError("fabin_dsd has no property 'control' (a fabout_dsd sends control "
                           "wavelets)")
    if kind == fabin_dsd and wavelet_index_offset:
        raise ProgramError("fabin_dsd has no property 'wavelet_index_offset' (a received "
                           "wavelet's high half is ignored)")


def _memory_dsd_arg(d, what: str) -> DsdValue:
    d = _dsd_arg(d, what)
    _rule(memory_only, what, d.kind)
    return d


def increment_dsd_offset(d: DsdValue, off, dtype: DType) -> DsdValue:
    """`@increment_dsd_offset(d, off, T)`: move the DSD's base by `off` elements of T."""
    d = _memory_dsd_arg(d, "increment_dsd_offset")
    _rule(check_offset_type, dtype)
    return d._derive(ir.IncrementOffset(d.expr, _field_expr(off, i16, "offset increment"),
                                        dtype))


def set_dsd_base_addr(d: DsdValue, base) -> DsdValue:
    """`@set_dsd_base_addr(d, A)`: same access pattern over another array, offset reset to 0."""
    d = _memory_dsd_arg(d, "set_dsd_base_addr")
    sym, off = _base(base)
    _rule(check_base_width, sym.name, sym.dtype, d.dtype)
    return d._derive(ir.SetBase(d.expr, sym.name, off), sym.dtype)


def set_dsd_length(d: DsdValue, n) -> DsdValue:
    """`@set_dsd_length(d, n)` (not for mem4d_dsd; for a fabric DSD, the wavelet count)."""
    d = _dsd_arg(d, "set_dsd_length")
    _rule(check_length_target, d.kind)
    return d._derive(ir.SetLength(d.expr, _field_expr(n, u16, "length")))


def set_dsd_stride(d: DsdValue, s) -> DsdValue:
    """`@set_dsd_stride(d, s)` (mem1d_dsd only)."""
    d = _dsd_arg(d, "set_dsd_stride")
    _rule(check_stride_target, d.kind)
    return d._derive(ir.SetStride(d.expr, _field_expr(s, i8, "stride")))


def allocate_fifo(buffer, *, activate_push=None, activate_pop=None, empty_action=None,
                  full_action=None, simd_mode: str | None = None) -> FifoHandle:
    """`@allocate_fifo(buf, .{ .activate_push = t, .activate_pop = t })`: a FIFO over the whole
    of global array `buffer` (at the top level of the PE program, once per buffer).

    Pushing into an empty FIFO activates local task `activate_push`; popping from a full one
    activates `activate_pop` (a local task ID or a task bound as a local task).
    `empty_action` / `full_action` name the action on an empty / full FIFO (spec 7.5):
    "test_or_suspend" (the default), "terminate", or "suspend" and "fault" (wse3;
    `full_action` is wse3 only). `simd_mode` (wse2 only; "simd_32", "simd_64" or
    "simd_32_or_64") is checked and changes no value (`wsejax.frontend.simd`)."""
    pb = _top_level("allocate_fifo")
    if simd_mode is not None:
        _rule(check_simd_mode, "allocate_fifo", simd_mode if isinstance(simd_mode, str) else None)
        _rule(check_fifo_simd, pb.arch)
    for field, action in (("empty_action", empty_action), ("full_action", full_action)):
        if action is not None:
            _rule(check_fifo_action, pb.arch, field, action)
    if not isinstance(buffer, SymbolRef) or not buffer.symbol.shape:
        raise ProgramError(f"allocate_fifo takes a global array, got {buffer!r}")
    _rule(check_fifo_buffer, buffer.name, buffer.dtype,
          buffer.name if buffer.name in pb.fifo_hooks else None)
    for what, v in (("activate_push", activate_push), ("activate_pop", activate_pop)):
        if v is not None and not isinstance(v, (TaskId, FnRef)):
            raise ProgramError(f"allocate_fifo {what} takes a local task ID or a task, "
                               f"got {v!r}")
        if isinstance(v, TaskId) and v.kind != "local":
            raise ProgramError(f"allocate_fifo {what} takes a local task ID, got data task ID "
                               f"{v.id}")
    pb.fifo_hooks[buffer.name] = (activate_push, activate_pop)
    pb.fifo_actions[buffer.name] = (empty_action or "test_or_suspend",
                                    full_action or "test_or_suspend")
    return FifoHandle(buffer.name, buffer.dtype)
