"""The standard library modules (`@import_module("<name>")`), implemented natively.

- `<memcpy/get_params>` (layout side): `get_params(x)` gives the params a PE's
  `<memcpy/memcpy>` import takes. The emulator's memcpy needs nothing per column, so every
  column gets the same value and memcpy params never split a tile class.
  Its streaming colors `.MEMCPYH2D_1..4` / `.MEMCPYD2H_1..4` become the Program's `streams`
  (memcpy routes them).
- `<memcpy/memcpy>` (PE side): `unblock_cmd_stream()`; `get_streaming_fabout_dsd(color,
  extent, output_queue)`, a fabout_dsd on that color through that queue; the streaming colors
  `MEMCPYH2D_1..4`, `MEMCPYD2H_1..4`, each as it was given to `get_params` (a color, or a
  number that the program turns into one with `@get_color(@bitcast(u16, ...))`); in the params
  struct a stream not given is void.
- `<layout>`: `get_x_coord()`, `get_y_coord()`.
- `<math>`: PI, E, infinities, NaN; abs, min, max, sign, floor, ceil, sqrt, exp, log, sin, cos,
  tanh, pow, inv, invsqrt, fscale, isNaN, isInf, isFinite, signbit, and `_f16` / `_f32`
  variants. Comptime arguments fold; runtime ones become intrinsics.
- `<time>`: `enable_tsc`, `disable_tsc`, `reset_tsc_counter`, `get_timestamp(*[3]u16)`,
  `tsc_size_words`. The counter is the PE's virtual clock (`cycles` in the state: one cycle
  per statement and per DSD element), 32 bits wide, read as three little-endian u16 words.
- `<random>`: `set_global_prng_seed`, `random16`-based `random_f32`, `random_f16`,
  `random_pow_u32`, `random_normal_f32`. The generator is the documented 23-bit LFSR
  (x^23 + x^18 + 1, 128 steps per draw, seeded with 0xdeadbeef's low 23 bits) in the usual
  Fibonacci form (shift right, the new top bit is bit 0 ^ bit 5), a draw its low 16 bits; a
  u32 is two draws, the first the low half, and a float in [lo, hi) takes that u32's top 24
  bits. The hardware's shift direction and the library's mapping are not documented, so the
  bits may differ from the hardware's.
- `<tile_config>`: `input_queue_config.encode_input_queue(queue_id, color, filter_enable)`
  and `output_queue_config.encode_output_queue(queue_id, color)` bind a queue to a color from
  then on (the engine keeps each PE's binding; a queue bound at run time takes one of the colors
  the program names for it, or, for a runtime color, of the colors its PE program configures);
  `queue_flush.exit(q)` resets the state `@queue_flush(q)` left; constants `target_name`,
  `word_size` (16) and `reg_type` (u16). Every other member is reported as not supported yet.
  `filter_enable` is accepted: a color's filter applies to every wavelet of that color its
  PE receives.
- `<control>`: `encode_control_task_payload`, `encode_single_payload`, `encode_payload`,
  `opcode` (NOP, SWITCH_ADV, SWITCH_RST, TEARDOWN), `MAX_CMDS`: control wavelet payloads in
  the SDK's bit layout (`wsejax.fabric.control_payload`).
- `<simprint>`: `print_string`, `print_u16/u32_decimal/hex/binary`, `print_f16/f32`, `fmt`,
  `fmt_no_nl`, `fmt_with_coords` (`{d} {X} {b} {f}`); text goes to the host's stdout a line
  at a time, as the PE completes it.
"""

from __future__ import annotations

import math

import numpy as np

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.builtins import _check_queue, fabric_dsd
from wsejax.csl.values import (
    VOID,
    ArrayVal,
    CNum,
    EnumT,
    ModuleVal,
    NativeFn,
    PtrVal,
    QueueVal,
    RVal,
    Special,
    StructVal,
    TaskIdVal,
    TupleVal,
    describe,
    ieee_float,
)
from wsejax.fabric import MAX_COMMANDS, NO_ENTRYPOINT, control_payload
from wsejax.hardware import QUEUE_COUNTS
from wsejax.types import DType, format_value

__all__ = ["NativeModule", "load"]


class NativeModule:
    """A library module: members are values or NativeFn. Names in `unsupported` are members
    of the SDK's module that wsejax does not provide (reported as such)."""

    def __init__(self, name: str, members: dict, unsupported=()):
        self.name = name
        self.members = members
        self.unsupported = frozenset(unsupported)

    def has(self, name: str) -> bool:
        return name in self.members

    def member(self, name: str, c, pos):
        if name not in self.members:
            if name in self.unsupported:
                raise c.error(f"{self.name.replace('/', '.')}.{name} (of <"
                              f"{self.name.split('/')[0]}>) is not supported yet", pos)
            raise c.error(f"module <{self.name}> has no member '{name}' (wsejax provides: "
                          f"{', '.join(sorted(self.members))})", pos)
        return self.members[name]


def _fn(name, impl, arity=None):
    return NativeFn(name, impl, arity)


def _args(c, node, env, n):
    if len(node.args) not in (n if isinstance(n, tuple) else (n,)):
        raise c.error(f"{getattr(node.fn, 'name', 'function')} takes {n} argument(s), got "
                      f"{len(node.args)}", node.pos)
    return [c.ev(a, env) for a in node.args]


def load(c, name: str, params: dict, env, pos) -> NativeModule:
    """The library module `<name>` with `params`, or CslError."""
    maker = MODULES.get(name)
    if maker is None:
        raise c.error(f"library module <{name}> is not available in wsejax (available: "
                      f"{', '.join('<' + m + '>' for m in sorted(MODULES))})", pos)
    return maker(c, params, pos)


# ------------------------------------------------------------------------------------------------
# memcpy

STREAM_NAMES = tuple(f"MEMCPYH2D_{k}" for k in range(1, 5)) + tuple(
    f"MEMCPYD2H_{k}" for k in range(1, 5))


def _memcpy_params(c, params, pos):
    for k in ("width", "height"):
        if k not in params:
            raise c.error(f"<memcpy/get_params> needs .{k}", pos)
    known = {"width", "height"} | set(STREAM_NAMES)
    extra = set(params) - known
    if extra:
        c.warn(f"<memcpy/get_params>: unknown param '{sorted(extra)[0]}' ignored")
    width = c.comptime_int(params["width"], pos)
    height = c.comptime_int(params["height"], pos)
    fields = {"width": width, "height": height, **_stream_colors(c, params, pos)}

    def get_params(c2, node, env):
        (x,) = _args(c2, node, env, 1)
        x = c2.comptime_int(x, node.pos)
        if not 0 <= x < width:
            raise c2.error(f"memcpy.get_params({x}): column outside the width {width}",
                           node.pos)
        # the same value for every column: the emulator's memcpy needs no per-column state
        return StructVal(dict(fields))

    return NativeModule("memcpy/get_params", {"get_params": _fn("get_params", get_params)})


def _stream_colors(c, params, pos) -> dict:
    """The streaming colors given to `<memcpy/get_params>` (each as given: the SDK's programs
    pass a number or a color; a stream not given is void, `@type_of(p.MEMCPYH2D_2)`),
    recorded in the compiler's `streams`."""
    fields = {}
    seen = {}
    for k in STREAM_NAMES:
        if k not in params:
            continue
        color = c.coerce(params[k], Special("color"), pos, f"<memcpy/get_params> .{k}")
        if color.id in (21, 22, 23):
            raise c.error(f"<memcpy/get_params> .{k}: color {color.id} is memcpy's own (21, 22, "
                          "23); a streaming color is one of 0..20", pos)
        if color.id in seen:
            raise c.error(f"<memcpy/get_params>: color {color.id} is both .{seen[color.id]} and "
                          f".{k}", pos)
        seen[color.id] = k
        kind = "h2d" if "H2D" in k else "d2h"
        if c.streams.get(color.id, (kind,))[0] != kind:
            raise c.error(f"<memcpy/get_params> .{k}: color {color.id} is already a "
                          f"{c.streams[color.id][0].upper()} streaming color", pos)
        c.streams.setdefault(color.id, (kind, pos))
        fields[k] = params[k]
    for k in STREAM_NAMES:
        fields.setdefault(k, None)
    return fields


def _memcpy(c, params, pos):
    def unblock(c2, node, env):
        _args(c2, node, env, 0)
        fn = c2.need_fn(env, node.pos, "unblock_cmd_stream()")
        fn.emit(ir.UnblockCmdStream())
        return None

    def streaming_fabout_dsd(c2, node, env):
        # the module's own: on wse2 the DSD carries the color; on wse3 the color is the one
        # its queue is bound to, which must be the color given
        color, extent, oq = _args(c2, node, env, 3)
        color = c2.coerce(color, Special("color"), node.args[0].pos,
                          "get_streaming_fabout_dsd's color")
        return fabric_dsd(c2, "fabout_dsd", {"fabric_color": color, "extent": extent,
                                             "output_queue": oq}, node, env)

    members = {"unblock_cmd_stream": _fn("unblock_cmd_stream", unblock),
               "get_streaming_fabout_dsd": _fn("get_streaming_fabout_dsd",
                                               streaming_fabout_dsd)}
    for k in STREAM_NAMES:
        if params.get(k) is not None:
            members[k] = params[k]
    return NativeModule("memcpy/memcpy", members)


# ------------------------------------------------------------------------------------------------
# layout


def _layout(c, params, pos):
    def coord(table):
        def impl(c2, node, env):
            _args(c2, node, env, 0)
            c2.need_fn(env, node.pos, f"get_{table}_coord()")
            return RVal(ir.PeValue(table, DType.u16), DType.u16)
        return impl

    return NativeModule("layout", {"get_x_coord": _fn("get_x_coord", coord("x")),
                                   "get_y_coord": _fn("get_y_coord", coord("y"))})


# ------------------------------------------------------------------------------------------------
# math

# folded in the operand's numpy type (f64 for comptime_float) with IEEE results, as the run-time
# op computes them: exp overflows to inf, log(0) is -inf, log(-1) and sqrt(-1) are NaN
_UNARY = {
    "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos,
    "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil,
    "inv": lambda x: np.divide(x.dtype.type(1), x),
    "invsqrt": lambda x: np.divide(x.dtype.type(1), np.sqrt(x)),
}
_PRED = {"isNaN": ("isnan", math.isnan), "isInf": ("isinf", math.isinf),
         "isFinite": ("isfinite", math.isfinite),
         "signbit": ("signbit", lambda x: math.copysign(1.0, x) < 0)}


def _float_arg(c, v, want: DType | None, node):
    """(runtime expr or None, comptime float or None, type)."""
    if isinstance(v, RVal):
        if not v.dtype.is_float:
            raise c.error(f"<math> function takes a float, got {v.dtype}", node.pos)
        t = want or v.dtype
        return c.to_expr(v, t, node.pos), None, t
    if isinstance(v, CNum):
        if not v.dtype.is_float:
            raise c.error(f"<math> function takes a float, got {v.dtype}", node.pos)
        return None, ieee_float(v.value, want or v.dtype), want or v.dtype
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return None, ieee_float(v, want), want
    raise c.error("<math> function takes a float", node.pos)


def _math(c, params, pos):
    members = {"PI": math.pi, "E": math.e}
    for suffix, want in (("", None), ("_f16", DType.f16), ("_f32", DType.f32)):
        t = want or DType.f32
        members["POSITIVE_INF" + suffix] = CNum(math.inf, t)
        members["NEGATIVE_INF" + suffix] = CNum(-math.inf, t)
        members["NaN" + suffix] = CNum(math.nan, t)
        for name, f in _UNARY.items():
            members[name + suffix] = _fn(name, _unary_impl(name, f, want), 1)
        for name, (intr, f) in _PRED.items():
            members[name + suffix] = _fn(name, _pred_impl(intr, f, want), 1)
        members["abs" + suffix] = _fn("abs", _abs_impl(want), 1)
        members["max" + suffix] = _fn("max", _minmax_impl("max", want), 2)
        members["min" + suffix] = _fn("min", _minmax_impl("min", want), 2)
        members["sign" + suffix] = _fn("sign", _sign_impl(want), 1)
        members["pow" + suffix] = _fn("pow", _pow_impl(want), 2)
        members["fscale" + suffix] = _fn("fscale", _fscale_impl(want), 2)
    return NativeModule("math", members)


def _fold(t, value):
    if t is None:
        return ieee_float(value)
    return CNum(ieee_float(value, t), t)


def _np_fold(t, f, *vals) -> float:
    """`f` applied to comptime floats in type t's numpy type (f64 for comptime_float), with
    IEEE results (inf, NaN) where the operation overflows or has no real value."""
    dt = t.np if t is not None else np.dtype(np.float64)
    with np.errstate(all="ignore"):
        return float(f(*(dt.type(v) for v in vals)))


def _unary_impl(name, f, want):
    def impl(c, node, env):
        (x,) = _args(c, node, env, 1)
        e, v, t = _float_arg(c, x, want, node)
        if e is None:
            return _fold(t, _np_fold(t, f, v))
        return RVal(ir.Intrinsic(name, (e,), t), t)
    return impl


def _pred_impl(intr, f, want):
    def impl(c, node, env):
        (x,) = _args(c, node, env, 1)
        e, v, t = _float_arg(c, x, want, node)
        if e is None:
            return bool(f(v))
        return RVal(ir.Intrinsic(intr, (e,), DType.bool_), DType.bool_)
    return impl


def _abs_impl(want):
    def impl(c, node, env):
        (x,) = _args(c, node, env, 1)
        if isinstance(x, RVal):
            t = want or x.dtype
            return RVal(ir.Un("abs", c.to_expr(x, t, node.pos), t), t)
        if isinstance(x, CNum):
            return CNum(abs(x.value), x.dtype)
        return abs(x)
    return impl


def _minmax_impl(op, want):
    def impl(c, node, env):
        a, b = _args(c, node, env, 2)
        if isinstance(a, RVal) or isinstance(b, RVal):
            ta = a.dtype if isinstance(a, (RVal, CNum)) else None
            tb = b.dtype if isinstance(b, (RVal, CNum)) else None
            t = want or (c.peer(ta, tb, op, node.pos) if ta and tb else ta or tb)
            return RVal(ir.Bin(op, c.to_expr(a, t, node.pos), c.to_expr(b, t, node.pos), t), t)
        va = a.value if isinstance(a, CNum) else a
        vb = b.value if isinstance(b, CNum) else b
        r = max(va, vb) if op == "max" else min(va, vb)
        t = want or (a.dtype if isinstance(a, CNum) else b.dtype if isinstance(b, CNum) else None)
        return CNum(r, t) if t is not None else r
    return impl


def _sign_impl(want):
    def impl(c, node, env):
        (x,) = _args(c, node, env, 1)
        if isinstance(x, RVal):
            t = want or x.dtype
            e = c.to_expr(x, t, node.pos)
            one, zero = ir.Const(1.0, t), ir.Const(0.0, t)
            return RVal(ir.Select(ir.Bin(">", e, zero, DType.bool_), one, ir.Select(
                ir.Bin("<", e, zero, DType.bool_), ir.Un("-", one, t), zero, t), t), t)
        v = x.value if isinstance(x, CNum) else x
        r = 1.0 if v > 0 else (-1.0 if v < 0 else 0.0)
        return _fold(want or (x.dtype if isinstance(x, CNum) else None), r)
    return impl


def _pow_impl(want):
    def impl(c, node, env):
        a, b = _args(c, node, env, 2)
        ea, va, t = _float_arg(c, a, want, node)
        eb, vb, tb = _float_arg(c, b, want or t, node)
        if ea is None and eb is None:
            return _fold(t, _np_fold(t, np.power, va, vb))
        t = t or tb or DType.f32
        ea = ea if ea is not None else ir.Const(va, t)
        eb = eb if eb is not None else ir.Const(vb, t)
        return RVal(ir.Intrinsic("pow", (ea, eb), t), t)
    return impl


def _fscale_impl(want):
    def impl(c, node, env):
        a, k = _args(c, node, env, 2)
        ea, va, t = _float_arg(c, a, want, node)
        if ea is None and not isinstance(k, RVal):
            n = max(-4096, min(4096, c.comptime_int(k, node.pos)))   # beyond: 0 or inf
            return _fold(t, _np_fold(t, lambda x: np.ldexp(x, n), va))
        t = t or DType.f32
        ea = ea if ea is not None else ir.Const(va, t)
        return RVal(ir.Intrinsic("fscale", (ea, c.to_expr(k, DType.i16, node.pos)), t), t)
    return impl


# ------------------------------------------------------------------------------------------------
# time


def _time(c, params, pos):
    def noop(name):
        def impl(c2, node, env):
            _args(c2, node, env, 0)
            c2.need_fn(env, node.pos, f"{name}()")
            return None
        return impl

    def reset(c2, node, env):
        _args(c2, node, env, 0)
        fn = c2.need_fn(env, node.pos, "reset_tsc_counter()")
        fn.emit(ir.ExprStmt(ir.Intrinsic("reset_cycles", (), DType.u32)))
        return None

    def timestamp(c2, node, env):
        (p,) = _args(c2, node, env, 1)
        fn = c2.need_fn(env, node.pos, "get_timestamp()")
        if not isinstance(p, PtrVal) or p.dtype is not DType.u16 or (
                p.shape and int(np.prod(p.shape)) - p.offset < 3):
            raise c2.error("get_timestamp takes a pointer to a [3]u16 array", node.pos)
        tmp = env.module.pe.fresh("tsc")
        fn.emit(ir.LocalAssign(tmp, ir.Intrinsic("cycles", (), DType.u32)))
        now = ir.Local(tmp, DType.u32)
        words = (ir.Bin("&", now, ir.Const(0xFFFF, DType.u32), DType.u32),
                 ir.Bin(">>", now, ir.Const(16, DType.u32), DType.u32),
                 ir.Const(0, DType.u32))
        for k, w in enumerate(words):
            fn.emit(ir.Assign(p.name, (ir.Const(p.offset + k, DType.i32),),
                              ir.Cast(w, DType.u16)))
        return None

    def tsc_switch(name):
        run = noop(name)

        def impl(c2, node, env):
            out = run(c2, node, env)
            c2.ignored(f"<time>.{name}()", node.pos, "the timestamp counter always runs here")
            return out
        return impl

    return NativeModule("time", {
        "enable_tsc": _fn("enable_tsc", tsc_switch("enable_tsc")),
        "disable_tsc": _fn("disable_tsc", tsc_switch("disable_tsc")),
        "reset_tsc_counter": _fn("reset_tsc_counter", reset),
        "get_timestamp": _fn("get_timestamp", timestamp),
        "tsc_size_words": 3,
    })


# ------------------------------------------------------------------------------------------------
# control

OPCODES = (("NOP", 0), ("SWITCH_ADV", 1), ("SWITCH_RST", 2), ("TEARDOWN", 3))


def _entrypoint(c, v, node) -> int:
    if v is None or v is VOID:
        return NO_ENTRYPOINT
    if isinstance(v, TaskIdVal) and v.kind == "control":
        return v.id
    raise c.error(f"a control payload's entrypoint is a control task ID "
                  f"(@get_control_task_id(n)) or {{}}, got {describe(v)}", node.pos)


def _opcode(c, v, node, opcode: EnumT) -> int:
    if isinstance(v, RVal):
        raise c.error("a control payload's opcode must be comptime-known", node.pos)
    return c.coerce(v, opcode, node.pos, "a <control> opcode").value


def _flag(c, v, node) -> int:
    if not isinstance(v, bool):
        raise c.error(f"expected a comptime bool, got {describe(v)}", node.pos)
    return int(v)


def _items(c, v, node, n: int) -> list:
    seq = v.items if isinstance(v, TupleVal) else (
        v.values.reshape(-1).tolist() if isinstance(v, ArrayVal) else None)
    if seq is None or len(seq) < n:
        raise c.error(f"expected an array of at least {n} values, got {describe(v)}", node.pos)
    return list(seq[:n])


def _payload(bits: int, runtime=None):
    if runtime is None:
        return CNum(bits, DType.u32)
    return RVal(ir.Bin("|", ir.Const(bits, DType.u32), runtime, DType.u32), DType.u32)


def _control(c, params, pos):
    opcode = EnumT(object(), OPCODES, "opcode")

    def task_payload(c2, node, env):
        (ep,) = _args(c2, node, env, 1)
        return _payload(control_payload(_entrypoint(c2, ep, node)))

    def single_payload(c2, node, env):
        cmd, ignore, ep, data = _args(c2, node, env, 4)
        bits = control_payload(_entrypoint(c2, ep, node),
                               [(_opcode(c2, cmd, node, opcode), _flag(c2, ignore, node))])
        if isinstance(data, RVal):
            return _payload(bits, ir.Cast(c2.to_expr(data, DType.u16, node.pos), DType.u32))
        return _payload(bits | c2.comptime_int(c2.coerce(data, DType.u16, node.pos,
                                                         "the payload's data"), node.pos))

    def full_payload(c2, node, env):
        n, cmds, ignores, rest, ep = _args(c2, node, env, 5)
        n = c2.comptime_int(n, node.pos)
        if not 0 <= n <= MAX_COMMANDS:
            raise c2.error(f"a control payload holds 0 to {MAX_COMMANDS} commands, got {n}",
                           node.pos)
        cmds, ignores = _items(c2, cmds, node, n), _items(c2, ignores, node, n)
        return _payload(control_payload(
            _entrypoint(c2, ep, node), [(_opcode(c2, a, node, opcode), _flag(c2, b, node))
                                        for a, b in zip(cmds, ignores)], _flag(c2, rest, node)))

    return NativeModule("control", {
        "MAX_CMDS": CNum(MAX_COMMANDS, DType.u16),
        "opcode": opcode,
        "encode_control_task_payload": _fn("encode_control_task_payload", task_payload),
        "encode_single_payload": _fn("encode_single_payload", single_payload),
        "encode_payload": _fn("encode_payload", full_payload),
    })


# ------------------------------------------------------------------------------------------------
# random


def _random(c, params, pos):
    def draw16(c2, env, node):
        fn = c2.need_fn(env, node.pos, "a random draw")
        tmp = env.module.pe.fresh("rnd")
        fn.emit(ir.LocalAssign(tmp, ir.Intrinsic("random16", (), DType.u16)))
        return ir.Local(tmp, DType.u16)

    def u32_of(c2, env, node):
        lo = ir.Cast(draw16(c2, env, node), DType.u32)
        hi = ir.Cast(draw16(c2, env, node), DType.u32)
        return ir.Bin("|", lo, ir.Bin("<<", hi, ir.Const(16, DType.u32), DType.u32), DType.u32)

    def seed(c2, node, env):
        (s,) = _args(c2, node, env, 1)
        fn = c2.need_fn(env, node.pos, "set_global_prng_seed()")
        fn.emit(ir.ExprStmt(ir.Intrinsic("seed_prng", (c2.to_expr(s, DType.u32, node.pos),),
                                         DType.u32)))
        return None

    def uniform(t):
        def impl(c2, node, env):
            lo, hi = _args(c2, node, env, 2)
            bits = u32_of(c2, env, node)
            # 24 random bits give a float in [0, 1)
            frac = ir.Bin("*", ir.Cast(ir.Bin(">>", bits, ir.Const(8, DType.u32), DType.u32),
                                       DType.f32), ir.Const(2.0 ** -24, DType.f32), DType.f32)
            elo = c2.to_expr(lo, DType.f32, node.pos)
            ehi = c2.to_expr(hi, DType.f32, node.pos)
            v = ir.Bin("+", elo, ir.Bin("*", ir.Bin("-", ehi, elo, DType.f32), frac, DType.f32),
                       DType.f32)
            return RVal(v if t is DType.f32 else ir.Cast(v, t), t)
        return impl

    def pow_u32(c2, node, env):
        (p,) = _args(c2, node, env, 1)
        bits = u32_of(c2, env, node)
        ep = c2.to_expr(p, DType.u32, node.pos)
        mask = ir.Bin("-", ir.Bin("<<", ir.Const(1, DType.u32), ep, DType.u32),
                      ir.Const(1, DType.u32), DType.u32)
        full = ir.Bin(">=", ep, ir.Const(32, DType.u32), DType.bool_)
        return RVal(ir.Select(full, bits, ir.Bin("&", bits, mask, DType.u32), DType.u32),
                    DType.u32)

    def normal(c2, node, env):
        _args(c2, node, env, 0)
        u1 = uniform(DType.f32)(c2, _Stub(node, 2), env).expr
        u2 = uniform(DType.f32)(c2, _Stub(node, 2), env).expr
        one = ir.Const(1.0, DType.f32)
        r = ir.Intrinsic("sqrt", (ir.Bin("*", ir.Const(-2.0, DType.f32), ir.Intrinsic(
            "log", (ir.Bin("-", one, u1, DType.f32),), DType.f32), DType.f32),), DType.f32)
        theta = ir.Bin("*", ir.Const(2 * math.pi, DType.f32), u2, DType.f32)
        return RVal(ir.Bin("*", r, ir.Intrinsic("cos", (theta,), DType.f32), DType.f32),
                    DType.f32)

    return NativeModule("random", {
        "set_global_prng_seed": _fn("set_global_prng_seed", seed),
        "random_f32": _fn("random_f32", uniform(DType.f32)),
        "random_f16": _fn("random_f16", uniform(DType.f16)),
        "random_pow_u32": _fn("random_pow_u32", pow_u32),
        "random_normal_f32": _fn("random_normal_f32", normal),
    })


class _Stub:
    """A call node with constant [0, 1) bounds, for draws made inside other draws."""

    def __init__(self, node, n):
        self.args = (ast.FloatLit(0.0, node.pos), ast.FloatLit(1.0, node.pos))
        self.pos = node.pos
        self.fn = node.fn


def _simprint(c, params, pos):
    enabled = params.get("enable", True)
    if not isinstance(enabled, bool):
        raise c.error("<simprint> .enable must be a bool", pos)
    members = {"print_string": _fn("print_string", _print_string(enabled)),
               "fmt": _fn("fmt", _fmt(enabled, True, False)),
               "fmt_no_nl": _fn("fmt_no_nl", _fmt(enabled, False, False)),
               "fmt_with_coords": _fn("fmt_with_coords", _fmt(enabled, True, True))}
    for t in (DType.u16, DType.u32):
        for suffix, spec in (("decimal", "d"), ("hex", "X"), ("binary", "b")):
            members[f"print_{t}_{suffix}"] = _fn(f"print_{t}_{suffix}",
                                                 _print_typed(enabled, t, spec))
    members["print_f16"] = _fn("print_f16", _print_typed(enabled, DType.f16, "f"))
    members["print_f32"] = _fn("print_f32", _print_typed(enabled, DType.f32, "f"))
    return NativeModule("simprint", members)


def _print(c, node, env, parts, enabled: bool, coords=False):
    """Emit the printing of a line's parts (nothing where <simprint> is not enabled)."""
    fn = c.need_fn(env, node.pos, "printing")
    if enabled:
        fn.emit(ir.Print(tuple(parts), coords))
    return None


def _print_string(enabled: bool):
    def impl(c, node, env):
        (s_,) = _args(c, node, env, 1)
        if not isinstance(s_, str):
            raise c.error("print_string takes a comptime string", node.pos)
        return _print(c, node, env, [s_], enabled)
    return impl


def _print_typed(enabled: bool, t: DType, spec: str):
    def impl(c, node, env):
        (v,) = _args(c, node, env, 1)
        return _print(c, node, env, [_print_part(c, v, spec, node, t)], enabled)
    return impl


def _fmt(enabled: bool, newline: bool, coords: bool):
    def impl(c, node, env):
        vals = [c.ev(a, env) for a in node.args]
        if not vals or not isinstance(vals[0], str):
            raise c.error("fmt takes a comptime format string first", node.pos)
        rest = vals[1:]
        if len(rest) == 1 and isinstance(rest[0], TupleVal):
            rest = list(rest[0].items)
        parts = _format(c, vals[0], rest, node)
        if newline:
            parts.append("\n")
        return _print(c, node, env, _merge(parts), enabled, coords)
    return impl


def _print_part(c, v, spec, node, want=None):
    """A part of a printed line: text, or (runtime expression, format spec)."""
    if isinstance(v, RVal):
        e = v.expr if want is None else c.to_expr(v, want, node.pos)
        return (e, spec)
    if isinstance(v, CNum):
        return format_value(want.np.type(v.value) if want else v.dtype.np.type(v.value), spec)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        t = want or (DType.f32 if isinstance(v, float) or spec == "f" else DType.u32)
        return _print_part(c, CNum(c.num_in(v, t, node.pos, "print value"), t), spec, node, t)
    if isinstance(v, str):
        return v
    raise c.error(f"cannot print {type(v).__name__}", node.pos)


def _format(c, fstr: str, args: list, node) -> list:
    """The parts `fmt(fstr, args)` prints: `{{` and `}}` are braces, `{d}`, `{X}`, `{b}`,
    `{f}` take the next argument."""
    parts, k, i = [], 0, 0
    while i < len(fstr):
        if fstr.startswith(("{{", "}}"), i):
            parts.append(fstr[i])
            i += 2
            continue
        if fstr[i] != "{":
            parts.append(fstr[i])
            i += 1
            continue
        end = fstr.find("}", i)
        spec = fstr[i + 1:end] if end > 0 else None
        if spec not in ("d", "X", "b", "f"):
            raise c.error(f"fmt: unknown specifier {fstr[i:end + 1]!r} (use {{d}}, {{X}}, "
                          "{b}, {f})", node.pos)
        if k >= len(args):
            raise c.error("fmt: more specifiers than arguments", node.pos)
        parts.append(_print_part(c, args[k], spec, node))
        k += 1
        i = end + 1
    if k != len(args):
        raise c.error(f"fmt: {len(args)} arguments for {k} specifiers", node.pos)
    return parts


def _merge(parts):
    out = []
    for p in parts:
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] += p
        else:
            out.append(p)
    return out


# ------------------------------------------------------------------------------------------------
# tile_config

# the members of the SDK's <tile_config> (and of its submodules) wsejax does not provide
TILE_CONFIG_UNSUPPORTED = {
    "": ("FIFO_MIN_ALIGNMENT", "get_fabric_coord", "color_config", "switch_config", "filters",
         "teardown", "exceptions", "main_thread_priority", "task_priority",
         "input_queue_status", "output_queue_status", "control_transform", "addresses"),
    "queue_flush": ("is_flushed", "get_pending", "is_pending"),
}


def _queue_id(c, v, node, kind: str, what: str) -> int:
    """A queue number given to `<tile_config>` (comptime: the engine keeps a binding per
    queue), checked against the architecture and memcpy's own queues."""
    if isinstance(v, RVal):
        raise c.error(f"{what}: a queue ID known only at run time is not supported yet",
                      node.pos)
    n = c.comptime_int(v, node.pos)
    count = QUEUE_COUNTS[c.arch][kind]
    if not 0 <= n < count:
        raise c.error(f"{what}: {kind} queue {n} does not exist on {c.arch} (0 to "
                      f"{count - 1})", node.pos)
    _check_queue(c, QueueVal(kind, n), node.pos)
    return n


def _bind_queue(kind: str):
    """`encode_input_queue(queue_id, color, filter_enable)` /
    `encode_output_queue(queue_id, color)`: bind the queue to a color from now on."""
    name = f"encode_{kind}_queue"

    def impl(c, node, env):
        vals = _args(c, node, env, 3 if kind == "input" else 2)
        what = f"{kind}_queue_config.{name}"
        if kind == "output" and c.arch == "wse2":
            raise c.error(f"{what}: on wse2 an output queue is not bound to a color (a fabout "
                          "DSD's .fabric_color gives it)", node.pos)
        fn = c.need_fn(env, node.pos, f"{name}()")
        q = _queue_id(c, vals[0], node, kind, what)
        color = vals[1]
        if kind == "input" and not isinstance(vals[2], (bool, RVal)):
            raise c.error(f"{what}: filter_enable takes a bool, got {vals[2]!r}", node.pos)
        pe = env.module.pe
        consts, runtime, pos = pe.rebinds.get((kind, q), (set(), False, node.pos))
        if isinstance(color, RVal):
            expr = color.expr if color.dtype == DType.u16 else ir.Cast(color.expr, DType.u16)
            runtime = True
        else:
            n = c.comptime_int(color, node.args[1].pos)
            if not 0 <= n <= 23:
                raise c.error(f"{what}: color {n} is out of range (0 to 23)", node.args[1].pos)
            consts = consts | {n}
            expr = ir.Const(n, DType.u16)
        pe.rebinds[(kind, q)] = (consts, runtime, pos)
        fn.emit(ir.QueueBind(kind, q, expr))
        return None

    return _fn(name, impl)


def _tile_config(c, params, pos):
    def flush_exit(c2, node, env):
        (q,) = _args(c2, node, env, 1)
        if c2.arch != "wse3":
            raise c2.error(f"queue_flush.exit exists on wse3 only (this program is compiled for "
                           f"{c2.arch})", node.pos)
        if not isinstance(q, QueueVal):
            raise c2.error(f"queue_flush.exit takes an input or output queue "
                           f"(@get_output_queue(n)), got {q!r}", node.pos)
        fn = c2.need_fn(env, node.pos, "queue_flush.exit()")
        fn.emit(ir.QueueCtl("exit", q.kind, q.id))
        return None

    def sub(name, members):
        return ModuleVal(NativeModule(f"tile_config/{name}", members,
                                      TILE_CONFIG_UNSUPPORTED.get(name, ())))

    members = {
        "target_name": c.arch,
        "word_size": 16,
        "reg_type": DType.u16,
        "input_queue_config": sub("input_queue_config",
                                  {"encode_input_queue": _bind_queue("input")}),
        "output_queue_config": sub("output_queue_config",
                                   {"encode_output_queue": _bind_queue("output")}),
        "queue_flush": sub("queue_flush", {"exit": _fn("exit", flush_exit)}),
    }
    return NativeModule("tile_config", members, TILE_CONFIG_UNSUPPORTED[""])


MODULES = {
    "memcpy/get_params": _memcpy_params,
    "memcpy/memcpy": _memcpy,
    "layout": _layout,
    "control": _control,
    "math": _math,
    "time": _time,
    "random": _random,
    "simprint": _simprint,
    "tile_config": _tile_config,
}
