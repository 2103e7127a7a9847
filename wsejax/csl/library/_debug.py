"""`<debug>`: trace buffers a PE writes and the host reads back after the run.

`@import_module("<debug>", .{ .key = "name", .buffer_size = N })` gives one buffer: the global
`<debug>.name` of N 16-bit words, with its fill count `<debug>.name.count`. Its functions append
one record each (the format is in `wsejax.trace`): `trace_bool`, `trace_u8`, `trace_i8`,
`trace_u16`, `trace_i16`, `trace_f16`, `trace_u32`, `trace_i32`, `trace_f32`, `trace(x)` (by the
type of x), `trace_string(comptime s)` and `trace_timestamp()` (the `<time>` counter).
"""

from __future__ import annotations

from wsejax import ir, trace
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.library._time import counter_words
from wsejax.csl.values import CNum, RVal, string_bytes
from wsejax.types import DType

# words of a buffer whose import does not give `.buffer_size`
DEFAULT_BUFFER_WORDS = 256

U16 = DType.u16
I32 = DType.i32


def debug_module(c, params, pos):
    key = params.get("key")
    if not isinstance(key, str) or not key:
        raise c.error("<debug> needs a .key naming its trace buffer (a comptime string)", pos)
    size = params.get("buffer_size", DEFAULT_BUFFER_WORDS)
    size = size.value if isinstance(size, CNum) else size
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 0x7FFF:
        raise c.error(f"<debug> .buffer_size must be a word count from 1 to 32767, got {size}",
                      pos)
    buf = Buffer(f"<debug>.{key}", size)
    members = {f"trace_{name}": native_fn(f"trace_{name}", _typed(buf, t), 1)
               for name, t in trace.TRACED_TYPES.items()}
    members["trace"] = native_fn("trace", _generic(buf), 1)
    members["trace_string"] = native_fn("trace_string", _string(buf), 1)
    members["trace_timestamp"] = native_fn("trace_timestamp", _timestamp(buf), 0)
    return NativeModule("debug", members, unsupported=("tagged_put_u8", "put_u16", "put_u32"))


class Buffer:
    """One trace buffer: its symbols are made in the PE program of the first record."""

    def __init__(self, name: str, size: int):
        self.name = name
        self.size = size

    def append(self, c, env, node, tag: int, payload: list) -> None:
        """Emit: if the record fits, write `tag` and the payload words and move the count."""
        fn = c.need_fn(env, node.pos, "a trace record")
        pe = env.module.pe
        count = self.name + ".count"
        if self.name not in pe.symbols:
            pe.symbols[self.name] = ir.Symbol(self.name, U16, (self.size,))
            pe.symbols[count] = ir.Symbol(count, U16, ())
        n = 1 + len(payload)
        at = pe.fresh("trace")
        base = ir.Cast(ir.Load(count, (), U16), I32)
        fn.emit(ir.LocalAssign(at, base))
        here = ir.Local(at, I32)
        words = [ir.Const(tag, U16), *payload]
        body = tuple(ir.Assign(self.name, (ir.Bin("+", here, ir.Const(k, I32), I32),), w)
                     for k, w in enumerate(words))
        body += (ir.Assign(count, (), ir.Cast(ir.Bin("+", here, ir.Const(n, I32), I32), U16)),)
        fits = ir.Bin("<=", ir.Bin("+", here, ir.Const(n, I32), I32),
                      ir.Const(self.size, I32), DType.bool_)
        fn.emit(ir.If(fits, body))


def _words(e: ir.Expr, t: DType) -> list:
    """The payload words of value `e` of type t: its bits, low word first."""
    if t is DType.bool_:
        return [ir.Cast(e, U16)]
    if t in (DType.u8, DType.i8):
        wide = DType.u16 if t is DType.u8 else DType.i16
        return [ir.Bitcast(ir.Cast(e, wide), U16)]
    if t.nbytes == 2:
        return [ir.Bitcast(e, U16)]
    bits = ir.Bitcast(e, DType.u32)
    return [ir.Cast(ir.Bin("&", bits, ir.Const(0xFFFF, DType.u32), DType.u32), U16),
            ir.Cast(ir.Bin(">>", bits, ir.Const(16, DType.u32), DType.u32), U16)]


def _typed(buf: Buffer, t: DType):
    def impl(c, node, env):
        (x,) = call_args(c, node, env, 1)
        e = c.to_expr(c.coerce(x, t, node.pos, f"trace_{t.value}"), t, node.pos)
        buf.append(c, env, node, trace.TAG_OF[t.value if t is not DType.bool_ else "bool"],
                   _words(e, t))
        return None
    return impl


def _generic(buf: Buffer):
    """`trace(x)`: the record of x's own type (a comptime number needs a typed function)."""
    def impl(c, node, env):
        (x,) = call_args(c, node, env, 1)
        t = x.dtype if isinstance(x, (RVal, CNum)) else None
        if t not in trace.TRACED_TYPES.values():
            raise c.error("trace(x) takes a runtime bool, integer or float of 8 to 32 bits "
                          "(or use trace_u16, trace_f32, ...)", node.pos)
        e = c.to_expr(x, t, node.pos)
        name = "bool" if t is DType.bool_ else t.value
        buf.append(c, env, node, trace.TAG_OF[name], _words(e, t))
        return None
    return impl


def _string(buf: Buffer):
    def impl(c, node, env):
        (s,) = call_args(c, node, env, 1)
        if not isinstance(s, str):
            raise c.error("trace_string takes a comptime string", node.pos)
        words = trace.string_words(string_bytes(s))
        buf.append(c, env, node, trace.TAG_OF["string"], [ir.Const(w, U16) for w in words])
        return None
    return impl


def _timestamp(buf: Buffer):
    def impl(c, node, env):
        call_args(c, node, env, 0)
        fn = c.need_fn(env, node.pos, "trace_timestamp()")
        words = counter_words(env, fn, ir.Intrinsic("cycles", (), DType.u32))
        buf.append(c, env, node, trace.TAG_OF["timestamp"], list(words))
        return None
    return impl
