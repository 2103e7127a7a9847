"""DSDs: `@get_dsd` (memory and fabric DSDs, `tensor_access`) and the DSD setters."""

from __future__ import annotations

import numpy as np

from wsejax import dsd as dsd_math
from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.builtins._registry import builtin, nargs, rule
from wsejax.csl.builtins.queues import _check_queue, _queue_color
from wsejax.csl.values import (
    DSD_KINDS,
    ArrayVal,
    CNum,
    DsdVal,
    EnumLitVal,
    PtrCell,
    PtrVal,
    PtrVar,
    QueueVal,
    RPtr,
    RVal,
    Special,
    StructVal,
    SymRef,
    TensorAccessVal,
    TupleVal,
    describe,
)
from wsejax.frontend.dsds import (
    ADDRESSING,
    check_base_width,
    check_fabric_source,
    check_given_once,
    check_length_target,
    check_offset_type,
    check_stride_target,
    circbuf_wraparound,
    coeffs,
    linearize,
    memory_only,
    need_base,
    need_extent,
    need_extents,
    tensor_access_shape,
)
from wsejax.frontend.simd import check_fabric_simd, check_simd_mode
from wsejax.types import DType

MEMORY_FIELDS = {"base_address", "offset", "stride", "extent", "tensor_access",
                 "wavelet_index_offset"}


@builtin("get_dsd")
def _get_dsd(c, node, env):
    nargs(c, node, 2)
    kind = c.ev(node.args[0], env)
    if not isinstance(kind, Special) or kind.name not in DSD_KINDS:
        raise c.error(f"@get_dsd takes a DSD kind (mem1d_dsd, mem4d_dsd, fabin_dsd, "
                      f"fabout_dsd), got {describe(kind)}", node.args[0].pos)
    props = c.ev(node.args[1], env)
    if not isinstance(props, StructVal):
        raise c.error("@get_dsd takes a struct of properties", node.args[1].pos)
    f = dict(props.fields)
    if kind.name == "circbuf_dsd":
        return _circbuf_dsd(c, f, node, env)
    if kind.name in ("fabin_dsd", "fabout_dsd"):
        return _fabric_dsd(c, kind.name, f, node, env)
    return _memory_dsd(c, kind.name, f, node, env)


def _memory_dsd(c, kind: str, f: dict, node, env) -> DsdVal:
    """A mem1d_dsd / mem4d_dsd from its properties: addressing fields, or a tensor_access
    (an access map, or a struct of addressing fields)."""
    extra = set(f) - MEMORY_FIELDS
    if extra:
        raise c.error(f"unknown DSD property '{sorted(extra)[0]}'", node.pos)
    wio = f.pop("wavelet_index_offset", False)
    if not isinstance(wio, bool):
        raise c.error(f"DSD property wavelet_index_offset takes a bool, got {describe(wio)}",
                      node.pos)
    ta = f.get("tensor_access")
    if isinstance(ta, StructVal):
        rule(c, node, check_given_once, f, ta.fields, pos=node.pos)
        f.update(ta.fields)
        ta = None
    if ta is not None:
        rule(c, node, check_given_once, f, ADDRESSING, True, pos=node.pos)
        return _tensor_access(c, kind, ta, node, wio)
    rule(c, node, need_base, kind, "base_address" in f, pos=node.pos)
    base = f["base_address"]
    if isinstance(base, (RPtr, PtrCell)):
        return _runtime_base(c, kind, base, f, wio, node, env)
    sym, boff = _base(c, base, node.pos)
    if kind == "mem1d_dsd":
        rule(c, node, need_extent, "extent" in f, pos=node.pos)
        stride, extent = (_first(f.get("stride", 1)), _first(f["extent"]))
        offset = _dsd_field(c, f.get("offset", 0), DType.i16, node, env)
        d = ir.Mem1d(sym.name, offset, _dsd_field(c, stride, DType.i8, node, env),
                     _dsd_field(c, extent, DType.u16, node, env), boff, wio)
        return DsdVal(ir.DsdLit(d), kind, sym.dtype)
    ext, st = f.get("extent"), f.get("stride")
    exts = rule(c, node, need_extents, None if ext is None else _items(ext), pos=node.pos)
    strides = (1,) * len(exts) if st is None else _items(st)
    exts = tuple(c.comptime_int(e, node.pos) for e in exts)
    strides = tuple(c.comptime_int(s, node.pos) for s in strides)
    coefficients = rule(c, node, coeffs, strides, exts, pos=node.pos)
    offset = _dsd_field(c, f.get("offset", 0), DType.i16, node, env)
    d = ir.Mem4d(sym.name, offset, coefficients, exts, boff, wio)
    return DsdVal(ir.DsdLit(d), kind, sym.dtype)


CIRCBUF_FIELDS = {"base_address", "extent", "wraparound"}


def _circbuf_dsd(c, f: dict, node, env) -> DsdVal:
    """A circbuf_dsd (spec 7.3) from its properties: a comptime base, an extent and maybe a
    wraparound (a comptime u16)."""
    extra = set(f) - CIRCBUF_FIELDS
    if extra:
        raise c.error(f"unknown circbuf_dsd property '{sorted(extra)[0]}'", node.pos)
    rule(c, node, need_base, "circbuf_dsd", "base_address" in f, pos=node.pos)
    if "extent" not in f:
        raise c.error("circbuf_dsd needs an extent", node.pos)
    base = f["base_address"].ptr if isinstance(f["base_address"], PtrVar) else f["base_address"]
    sym, boff = _base(c, base, node.pos)
    whole = isinstance(base, SymRef) or (isinstance(base, PtrVal) and base.array)
    wrap = f.get("wraparound")
    if wrap is not None:
        wrap = c.coerce(wrap, DType.u16, node.pos, "circbuf_dsd .wraparound").value
    size = int(np.prod(sym.shape)) if sym.shape else 1
    wrap = rule(c, node, circbuf_wraparound, sym.name, size, boff, whole, wrap, pos=node.pos)
    d = ir.CircBuf(sym.name, _dsd_field(c, f["extent"], DType.u16, node, env), wrap, boff)
    return DsdVal(ir.DsdLit(d), "circbuf_dsd", sym.dtype)


def _runtime_base(c, kind: str, p, f: dict, wio: bool, node, env) -> DsdVal:
    """A memory DSD whose base_address is a runtime pointer."""
    p = p.value() if isinstance(p, PtrCell) else p
    offset = _dsd_field(c, f.get("offset", 0), DType.i16, node, env)
    if kind == "mem1d_dsd":
        rule(c, node, need_extent, "extent" in f, pos=node.pos)
        stride = _dsd_field(c, _first(f.get("stride", 1)), DType.i8, node, env)
        extent = _dsd_field(c, _first(f["extent"]), DType.u16, node, env)
        return c.runtime_dsd(lambda s: ir.DsdLit(ir.Mem1d(s, offset, stride, extent, 0, wio)),
                             kind, p, env, node.pos)
    ext, st = f.get("extent"), f.get("stride")
    exts = rule(c, node, need_extents, None if ext is None else _items(ext), pos=node.pos)
    strides = (1,) * len(exts) if st is None else _items(st)
    exts = tuple(c.comptime_int(e, node.pos) for e in exts)
    strides = tuple(c.comptime_int(s, node.pos) for s in strides)
    coefficients = rule(c, node, coeffs, strides, exts, pos=node.pos)
    return c.runtime_dsd(lambda s: ir.DsdLit(ir.Mem4d(s, offset, coefficients, exts, 0, wio)),
                         kind, p, env, node.pos)


def _items(v) -> tuple:
    """The entries of a tuple field, or the one value given in its place."""
    return tuple(v.items) if isinstance(v, TupleVal) else (v,)


def _first(v):
    """A mem1d_dsd's stride or extent, given as a value or a tuple of one."""
    return v.items[0] if isinstance(v, TupleVal) else v


FABRIC_FIELDS = {
    # kind: (queue field, fields accepted; `.control_transform` is refused with its reason)
    "fabin_dsd": ("input_queue", {"extent", "fabric_color", "input_queue", "priority",
                                  "simd_mode"}),
    "fabout_dsd": ("output_queue", {"extent", "fabric_color", "output_queue",
                                    "wavelet_index_offset", "priority", "control", "zero",
                                    "simd_mode", "advance_switch"}),
}


def _fabric_dsd(c, kind: str, f: dict, node, env):
    """A fabin_dsd / fabout_dsd. Its color is `.fabric_color` or else the color its queue is
    initialised with, which may come later in the PE's comptime (filled in by finish_pe); on
    wse2 only an input queue is bound to a color, so a fabout_dsd needs a `.fabric_color`."""
    qfield = FABRIC_FIELDS[kind][0]
    _check_fabric_fields(c, kind, f, node)
    pe = env.module.pe
    if pe is None:
        raise c.error(f"a {kind} belongs in a PE program", node.pos)
    rule(c, node, check_fabric_source, kind, c.arch, "extent" in f, "fabric_color" in f,
         qfield in f, pos=node.pos)
    length = _dsd_field(c, f["extent"], DType.u16, node, env)
    color = None
    if "fabric_color" in f:
        color = _queue_color(c, f["fabric_color"], node.pos, f"{kind} .fabric_color")
    queue = _fabric_queue(c, kind, f.get(qfield), node)
    if queue is not None:
        pe.queue_uses.append(((qfield.split("_")[0], queue), color, node.pos, f"this {kind}"))
    if color is None:
        color = -1
    simd = _simd_mode(c, kind, f, node)
    if kind == "fabin_dsd":
        return DsdVal(ir.DsdLit(ir.FabIn(color, length, queue, simd)), kind, None)
    wio = f.get("wavelet_index_offset", False)
    control = f.get("control", False)
    zero = _zeroed_sources(c, f.get("zero"), node)
    advance = f.get("advance_switch", False)
    return DsdVal(ir.DsdLit(ir.FabOut(color, length, queue, wio, control, zero, simd, advance)),
                  kind, None)


def _simd_mode(c, kind: str, f: dict, node) -> str | None:
    """A fabric DSD's `.simd_mode` (`.simd_32`, ...; `wsejax.frontend.simd`), or None."""
    if "simd_mode" not in f:
        return None
    v = f["simd_mode"]
    mode = v.name if isinstance(v, EnumLitVal) else None
    rule(c, node, check_simd_mode, kind, mode, pos=node.pos)
    rule(c, node, check_fabric_simd, kind, f.get("wavelet_index_offset") is True,
         pos=node.pos)
    return mode


def _zeroed_sources(c, v, node) -> tuple[int, ...]:
    """A fabout_dsd's `.zero = .{ .first_source = true, .second_source = true }`: the sources
    (0: the first) an op sending through it zeroes (spec 7.4)."""
    if v is None or (isinstance(v, TupleVal) and not v.items):
        return ()
    if not isinstance(v, StructVal):
        raise c.error(f"fabout_dsd .zero takes .{{ .first_source = true }} and/or "
                      f".{{ .second_source = true }}, got {describe(v)}", node.pos)
    out = []
    for k, name in enumerate(("first_source", "second_source")):
        flag = v.fields.get(name, False)
        if not isinstance(flag, bool):
            raise c.error(f"fabout_dsd .zero .{name} takes a comptime bool, got "
                          f"{describe(flag)}", node.pos)
        if flag:
            out.append(k)
    extra = set(v.fields) - {"first_source", "second_source"}
    if extra:
        raise c.error(f"fabout_dsd .zero takes .first_source and .second_source, got "
                      f".{sorted(extra)[0]}", node.pos)
    return tuple(out)


# why `.control_transform` is refused on both fabric DSD kinds
CONTROL_TRANSFORM_WHY = (
    "is refused: the SDK says that it marks a control wavelet in the top two bits of the "
    "index half so that it survives memory and is sent again as a control wavelet, but not "
    "which bit values mark it, so wsejax cannot give the words a program would read")


def _check_fabric_fields(c, kind: str, f: dict, node) -> None:
    """The properties of a fabric DSD are known and supported; its flags are bools."""
    if "control_transform" in f:
        raise c.error(f"{kind}: .control_transform {CONTROL_TRANSFORM_WHY}", node.pos)
    _, known = FABRIC_FIELDS[kind]
    for k in f:
        if k not in known:
            raise c.error(f"unknown {kind} property '.{k}'", node.pos)
        if k == "priority":
            c.ignored(".priority", node.pos, "task and queue priorities are not modelled")
    for name in ("wavelet_index_offset", "control", "advance_switch"):
        v = f.get(name, False)
        if isinstance(v, CNum) and v.dtype == DType.bool_:
            f[name] = bool(v.value)         # a comptime bool parameter or variable
        elif not isinstance(v, bool):
            raise c.error(f"{kind} .{name} takes a comptime bool, got {describe(f[name])}",
                          node.pos)


def _fabric_queue(c, kind: str, q, node) -> int | None:
    """The number of a fabric DSD's queue (None: none given)."""
    if q is None:
        return None
    qfield = FABRIC_FIELDS[kind][0]
    if not isinstance(q, QueueVal) or q.kind != qfield.split("_")[0]:
        raise c.error(f"{kind} .{qfield} takes an {qfield} (@get_{qfield}(n)), got "
                      f"{describe(q)}", node.pos)
    _check_queue(c, q, node.pos)
    return q.id


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
    rule(c, node, tensor_access_shape, kind, m, len(e.extents), pos=e.pos)
    exts = tuple(c.comptime_int(c.ev(x, env), x.pos) for x in e.extents)
    inner = env.child()
    for v, aff in zip(e.vars, dsd_math.induction_vars(m)):
        inner.bind(v, aff)
    body = e.body
    if not isinstance(body, ast.Index):
        raise c.error("tensor_access must index a global array: -> A[...]", body.pos)
    obj = c.ev_ref(body.obj, inner)
    idx = tuple(_affine(c, c.ev(i, inner), i.pos) for i in body.indices)
    if isinstance(obj, (RPtr, PtrCell)):
        return _pointer_access(c, kind, obj, idx, exts, m, wio, node, env)
    sym = _accessed(c, obj, env, body.pos)
    offset, coeffs = rule(c, node, linearize, sym.shape, idx, m, pos=body.pos)
    if kind == "mem1d_dsd":
        d = ir.Mem1d(sym.name, ir.Const(offset, DType.i16), ir.Const(coeffs[0], DType.i8),
                     ir.Const(exts[0], DType.u16), wavelet_index_offset=wio)
        return DsdVal(ir.DsdLit(d), kind, sym.dtype)
    return DsdVal(ir.DsdLit(ir.Mem4d(sym.name, ir.Const(offset, DType.i16), coeffs, exts,
                                     wavelet_index_offset=wio)), kind, sym.dtype)


def _pointer_access(c, kind, p, idx, exts, m, wio, node, env) -> DsdVal:
    """A tensor_access `|i|{L} -> p[...]` over a runtime pointer (indexed as a flat array)."""
    p = p.value() if isinstance(p, PtrCell) else p
    if len(idx) != 1:
        raise c.error("a tensor_access through a pointer takes one index", node.pos)
    offset, co = rule(c, node, linearize, (0xFFFF,), idx, m, pos=node.pos)
    if kind == "mem1d_dsd":
        return c.runtime_dsd(lambda s: ir.DsdLit(ir.Mem1d(
            s, ir.Const(offset, DType.i16), ir.Const(co[0], DType.i8),
            ir.Const(exts[0], DType.u16), wavelet_index_offset=wio)), kind, p, env, node.pos)
    return c.runtime_dsd(lambda s: ir.DsdLit(ir.Mem4d(
        s, ir.Const(offset, DType.i16), co, exts, wavelet_index_offset=wio)), kind, p, env,
        node.pos)


def _accessed(c, sym, env, pos) -> SymRef:
    """The global array a tensor_access indexes (a const array is placed in PE memory)."""
    if isinstance(sym, PtrVar):
        sym = sym.ptr
    if isinstance(sym, PtrVal):
        sym = SymRef(sym.name, sym.dtype, sym.shape)
    if isinstance(sym, ArrayVal):
        sym = c.const_symbol(sym, env, pos)
    if not isinstance(sym, SymRef):
        raise c.error(f"tensor_access indexes {describe(sym)}, not a global array", pos)
    return sym


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
    d = c.dsd_or_picked(c.ev(node.args[0], env), node.pos)
    rule(c, node, memory_only, node.name, d.kind, pos=node.pos)
    off = c.ev(node.args[1], env)
    t = c.eval_type(node.args[2], env)
    rule(c, node, check_offset_type, t, pos=node.pos)
    delta = _dsd_field(c, off, DType.i16, node, env)
    return c.map_arms(d, lambda a: DsdVal(ir.IncrementOffset(a.expr, delta, t), a.kind,
                                          a.dtype))


@builtin("set_dsd_base_addr")
def _set_base(c, node, env):
    nargs(c, node, 2)
    d = c.dsd_or_picked(c.ev(node.args[0], env), node.pos)
    rule(c, node, memory_only, node.name, d.kind, pos=node.pos)
    base = c.ev_ref(node.args[1], env)
    if isinstance(base, PtrCell):
        base = base.value()
    if isinstance(base, RPtr):
        return c.map_arms(d, lambda a: c.runtime_dsd_base(a, base, env, node.pos))
    sym, boff = _base(c, base, node.pos)
    rule(c, node, check_base_width, sym.name, sym.dtype, d.dtype, pos=node.pos)
    return c.map_arms(d, lambda a: DsdVal(ir.SetBase(a.expr, sym.name, boff), a.kind,
                                          sym.dtype))


@builtin("set_dsd_length")
def _set_length(c, node, env):
    nargs(c, node, 2)
    d = c.dsd_or_picked(c.ev(node.args[0], env), node.pos)
    rule(c, node, check_length_target, d.kind, pos=node.pos)
    n = _dsd_field(c, c.ev(node.args[1], env), DType.u16, node, env)
    return c.map_arms(d, lambda a: DsdVal(ir.SetLength(a.expr, n), a.kind, a.dtype))


@builtin("set_dsd_stride")
def _set_stride(c, node, env):
    nargs(c, node, 2)
    d = c.dsd_or_picked(c.ev(node.args[0], env), node.pos)
    rule(c, node, check_stride_target, d.kind, pos=node.pos)
    stride = _dsd_field(c, c.ev(node.args[1], env), DType.i8, node, env)
    return c.map_arms(d, lambda a: DsdVal(ir.SetStride(a.expr, stride), a.kind, a.dtype))
