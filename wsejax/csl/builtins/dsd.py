"""DSDs: `@get_dsd` (memory and fabric DSDs, `tensor_access`) and the DSD setters."""

from __future__ import annotations

from wsejax import dsd as dsd_math
from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.builtins._registry import builtin, nargs
from wsejax.csl.builtins.queues import _check_queue, _queue_color
from wsejax.csl.values import (
    DSD_KINDS,
    ArrayVal,
    CNum,
    DsdVal,
    PtrVal,
    PtrVar,
    QueueVal,
    RVal,
    Special,
    StructVal,
    SymRef,
    TensorAccessVal,
    TupleVal,
    describe,
)
from wsejax.types import DType


@builtin("get_dsd")
def _get_dsd(c, node, env):
    nargs(c, node, 2)
    kind = c.ev(node.args[0], env)
    if not isinstance(kind, Special) or kind.name not in DSD_KINDS:
        raise c.error(f"@get_dsd takes a DSD kind (mem1d_dsd, mem4d_dsd, fabin_dsd, "
                      f"fabout_dsd), got {describe(kind)}", node.args[0].pos)
    if kind.name == "circbuf_dsd":
        raise c.error("circbuf_dsd is not supported yet", node.pos)
    props = c.ev(node.args[1], env)
    if not isinstance(props, StructVal):
        raise c.error("@get_dsd takes a struct of properties", node.args[1].pos)
    f = dict(props.fields)
    if kind.name in ("fabin_dsd", "fabout_dsd"):
        return _fabric_dsd(c, kind.name, f, node, env)
    known = {"base_address", "offset", "stride", "extent", "tensor_access",
             "wavelet_index_offset"}
    extra = set(f) - known
    if extra:
        raise c.error(f"unknown DSD property '{sorted(extra)[0]}'", node.pos)
    wio = f.pop("wavelet_index_offset", False)
    if not isinstance(wio, bool):
        raise c.error(f"DSD property wavelet_index_offset takes a bool, got {describe(wio)}",
                      node.pos)
    ta = f.get("tensor_access")
    if isinstance(ta, StructVal):
        for k in ("base_address", "offset", "stride", "extent"):
            if k in ta.fields and k in f:
                raise c.error(f"DSD property '{k}' given twice", node.pos)
        f.update(ta.fields)
        ta = None
    if ta is not None:
        for k in ("base_address", "offset", "stride", "extent"):
            if k in f:
                raise c.error(f"DSD property '{k}' given twice (also by tensor_access)",
                              node.pos)
        return _tensor_access(c, kind.name, ta, node, wio)
    if "base_address" not in f:
        raise c.error(f"{kind.name} needs a base_address or a tensor_access", node.pos)
    base = f["base_address"]
    sym, boff = _base(c, base, node.pos)
    if kind.name == "mem1d_dsd":
        if "extent" not in f:
            raise c.error("mem1d_dsd needs an extent", node.pos)
        stride = f.get("stride", 1)
        if isinstance(stride, TupleVal):
            stride = stride.items[0]
        extent = f["extent"]
        if isinstance(extent, TupleVal):
            extent = extent.items[0]
        d = ir.Mem1d(sym.name, _dsd_field(c, f.get("offset", 0), DType.i16, node, env),
                     _dsd_field(c, stride, DType.i8, node, env),
                     _dsd_field(c, extent, DType.u16, node, env), boff, wio)
        return DsdVal(ir.DsdLit(d), "mem1d_dsd", sym.dtype)
    ext = f.get("extent")
    st = f.get("stride")
    exts = tuple(ext.items) if isinstance(ext, TupleVal) else (ext,)
    if ext is None or not 1 <= len(exts) <= 4:
        raise c.error("mem4d_dsd needs an extent tuple of 1 to 4 entries", node.pos)
    strides = (1,) * len(exts) if st is None else (
        tuple(st.items) if isinstance(st, TupleVal) else (st,))
    exts = tuple(c.comptime_int(e, node.pos) for e in exts)
    strides = tuple(c.comptime_int(s, node.pos) for s in strides)
    try:
        coeffs = dsd_math.coeffs_from_strides(strides, exts)
    except ValueError as err:
        raise c.error(str(err), node.pos) from None
    d = ir.Mem4d(sym.name, _dsd_field(c, f.get("offset", 0), DType.i16, node, env), coeffs, exts,
                 boff, wio)
    return DsdVal(ir.DsdLit(d), "mem4d_dsd", sym.dtype)


FABRIC_FIELDS = {
    # kind: (queue field, fields accepted, fields not supported)
    "fabin_dsd": ("input_queue", {"extent", "fabric_color", "input_queue", "priority"},
                  ("control_transform", "simd_mode")),
    "fabout_dsd": ("output_queue", {"extent", "fabric_color", "output_queue",
                                    "wavelet_index_offset", "priority", "control"},
                   ("simd_mode", "zero", "advance_switch", "control_transform")),
}


def _fabric_dsd(c, kind: str, f: dict, node, env):
    """A fabin_dsd / fabout_dsd. Its color is `.fabric_color` or else the color its queue is
    initialised with, which may come later in the PE's comptime (filled in by finish_pe); on
    wse2 only an input queue is bound to a color, so a fabout_dsd needs a `.fabric_color`."""
    qfield, known, unsupported = FABRIC_FIELDS[kind]
    qkind = qfield.split("_")[0]
    for k in f:
        if k in unsupported:
            if k == "advance_switch" and f[k] is False:
                continue
            raise c.error(f"{kind}: .{k} is not supported yet", node.pos)
        if k not in known:
            raise c.error(f"unknown {kind} property '.{k}'", node.pos)
        if k == "priority":
            c.ignored(".priority", node.pos, "task and queue priorities are not modelled")
    pe = env.module.pe
    if pe is None:
        raise c.error(f"a {kind} belongs in a PE program", node.pos)
    if "extent" not in f:
        raise c.error(f"{kind} needs an .extent (the number of wavelets)", node.pos)
    length = _dsd_field(c, f["extent"], DType.u16, node, env)
    color = None
    if "fabric_color" in f:
        color = _queue_color(c, f["fabric_color"], node.pos, f"{kind} .fabric_color")
    queue = None
    if qfield in f:
        q = f[qfield]
        if not isinstance(q, QueueVal) or q.kind != qkind:
            raise c.error(f"{kind} .{qfield} takes an {qfield} (@get_{qfield}(n)), got "
                          f"{describe(q)}", node.pos)
        _check_queue(c, q, node.pos)
        queue = q.id
    wio = f.get("wavelet_index_offset", False)
    control = f.get("control", False)
    for name, v in (("wavelet_index_offset", wio), ("control", control)):
        if not isinstance(v, bool):
            raise c.error(f"{kind} .{name} takes a comptime bool, got {describe(v)}", node.pos)
    if c.arch == "wse2" and color is None and (kind == "fabout_dsd" or queue is None):
        raise c.error(f"on wse2 a {kind} needs a .fabric_color" +
                      (" or an .input_queue bound to a color" if kind == "fabin_dsd" else ""),
                      node.pos)
    if c.arch == "wse3" and queue is None:
        raise c.error(f"on wse3 a {kind} needs an .{qfield}: its color is the one the queue "
                      "is initialised with", node.pos)
    if queue is not None:
        pe.queue_uses.append(((qkind, queue), color, node.pos, f"this {kind}"))
    if color is None:
        color = -1
    d = ir.FabIn(color, length, queue) if kind == "fabin_dsd" else \
        ir.FabOut(color, length, queue, wio, control)
    return DsdVal(ir.DsdLit(d), kind, None)


def fabric_dsd(c, kind: str, fields: dict, node, env) -> DsdVal:
    """A fabin_dsd / fabout_dsd made from `fields` as `@get_dsd(kind, .{ fields })` would make
    it, errors located at `node` (for library modules that build fabric DSDs)."""
    return _fabric_dsd(c, kind, dict(fields), node, env)


def _dsd_field(c, v, t: DType, node, env):
    if isinstance(v, RVal):
        c.need_fn(env, node.pos, "a DSD with a runtime field")
        return v.expr if v.dtype == t else ir.Cast(v.expr, t)
    return ir.Const(c.coerce(v, t, node.pos, "DSD field").value, t)


def _base(c, base, pos):
    if isinstance(base, PtrVar):
        base = base.ptr
    if isinstance(base, SymRef):
        return base, 0
    if isinstance(base, PtrVal):
        return SymRef(base.name, base.dtype, base.shape), base.offset
    raise c.error(f"base_address must be a global array or a pointer to one, got "
                  f"{describe(base)}", pos)


def _tensor_access(c, kind: str, ta, node, wio: bool = False):
    if not isinstance(ta, TensorAccessVal):
        raise c.error("tensor_access must be a |i|{L} -> A[...] expression", node.pos)
    e = ta.node
    env = ta.env
    m = len(e.vars)
    if not 1 <= m <= 4 or len(e.extents) != m:
        raise c.error("tensor_access takes 1 to 4 induction variables, one extent each", e.pos)
    if kind == "mem1d_dsd" and m != 1:
        raise c.error("a mem1d_dsd tensor_access takes one induction variable", e.pos)
    exts = tuple(c.comptime_int(c.ev(x, env), x.pos) for x in e.extents)
    inner = env.child()
    for v, aff in zip(e.vars, dsd_math.induction_vars(m)):
        inner.bind(v, aff)
    body = e.body
    if not isinstance(body, ast.Index):
        raise c.error("tensor_access must index a global array: -> A[...]", body.pos)
    sym = c.ev_ref(body.obj, inner)
    if isinstance(sym, PtrVar):
        sym = sym.ptr
    if isinstance(sym, PtrVal):
        sym = SymRef(sym.name, sym.dtype, sym.shape)
    if isinstance(sym, ArrayVal):
        sym = c.const_symbol(sym, env, body.pos)   # a const array, placed in PE memory
    if not isinstance(sym, SymRef):
        raise c.error(f"tensor_access indexes {describe(sym)}, not a global array", body.pos)
    idx = tuple(_affine(c, c.ev(i, inner), i.pos) for i in body.indices)
    try:
        offset, coeffs = dsd_math.linearize(sym.shape, idx, m)
    except (ValueError, TypeError) as err:
        raise c.error(f"tensor_access: {err}", body.pos) from None
    if kind == "mem1d_dsd":
        d = ir.Mem1d(sym.name, ir.Const(offset, DType.i16), ir.Const(coeffs[0], DType.i8),
                     ir.Const(exts[0], DType.u16), wavelet_index_offset=wio)
        return DsdVal(ir.DsdLit(d), kind, sym.dtype)
    return DsdVal(ir.DsdLit(ir.Mem4d(sym.name, ir.Const(offset, DType.i16), coeffs, exts,
                                     wavelet_index_offset=wio)), kind, sym.dtype)


def _affine(c, v, pos):
    if isinstance(v, dsd_math.Affine):
        return v
    if isinstance(v, CNum) and v.dtype.is_int:
        return v.value
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise c.error(f"a tensor_access index must be affine in the induction variables, got "
                  f"{describe(v)}", pos)


@builtin("increment_dsd_offset")
def _increment(c, node, env):
    nargs(c, node, 3)
    d = c.dsd_of(c.ev(node.args[0], env), node.pos)
    _memory_only(c, d, node)
    off = c.ev(node.args[1], env)
    t = c.eval_type(node.args[2], env)
    if not isinstance(t, DType) or t.bits not in (16, 32):
        raise c.error(f"@increment_dsd_offset: {t} is not a 16- or 32-bit type", node.pos)
    return DsdVal(ir.IncrementOffset(d.expr, _dsd_field(c, off, DType.i16, node, env), t), d.kind,
                  d.dtype)


def _memory_only(c, d: DsdVal, node) -> None:
    if d.kind in ("fabin_dsd", "fabout_dsd"):
        raise c.error(f"@{node.name} does not apply to a {d.kind} (memory DSDs only)", node.pos)


@builtin("set_dsd_base_addr")
def _set_base(c, node, env):
    nargs(c, node, 2)
    d = c.dsd_of(c.ev(node.args[0], env), node.pos)
    _memory_only(c, d, node)
    sym, boff = _base(c, c.ev_ref(node.args[1], env), node.pos)
    if d.dtype is not None and sym.dtype.bits != d.dtype.bits:
        raise c.error(f"@set_dsd_base_addr: '{sym.name}' holds {sym.dtype}, the DSD addresses "
                      f"{d.dtype} elements", node.pos)
    return DsdVal(ir.SetBase(d.expr, sym.name, boff), d.kind, sym.dtype)


@builtin("set_dsd_length")
def _set_length(c, node, env):
    nargs(c, node, 2)
    d = c.dsd_of(c.ev(node.args[0], env), node.pos)
    if d.kind == "mem4d_dsd":
        raise c.error("@set_dsd_length does not apply to a mem4d_dsd", node.pos)
    return DsdVal(ir.SetLength(d.expr, _dsd_field(c, c.ev(node.args[1], env), DType.u16, node,
                                              env)), d.kind, d.dtype)


@builtin("set_dsd_stride")
def _set_stride(c, node, env):
    nargs(c, node, 2)
    d = c.dsd_of(c.ev(node.args[0], env), node.pos)
    if d.kind != "mem1d_dsd":
        raise c.error("@set_dsd_stride applies to a mem1d_dsd only", node.pos)
    return DsdVal(ir.SetStride(d.expr, _dsd_field(c, c.ev(node.args[1], env), DType.i8, node,
                                              env)), d.kind, d.dtype)
