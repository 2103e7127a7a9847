"""`<time>`: the timestamp counter, the PE's virtual clock, and the performance counters
(`get_perf_cntr`, ids 0 and 1: both count the PE's cycles since it started; unlike the
timestamp counter they are not reset by `reset_tsc_counter`)."""

from __future__ import annotations

import numpy as np

from wsejax import ir
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import (
    PtrVal,
    RVal,
)
from wsejax.types import DType


def _counter_ptr(c, p, node, what: str) -> PtrVal:
    if not isinstance(p, PtrVal) or p.dtype is not DType.u16 or (
            p.shape and int(np.prod(p.shape)) - p.offset < 3):
        raise c.error(f"{what} takes a pointer to a [3]u16 array", node.pos)
    return p


def counter_words(env, fn, value: ir.Expr) -> tuple:
    """The u32 `value`, read once into a local, as a 48-bit counter: three u16 words, low
    first."""
    tmp = env.module.pe.fresh("tsc")
    fn.emit(ir.LocalAssign(tmp, value))
    now = ir.Local(tmp, DType.u32)
    words = (ir.Bin("&", now, ir.Const(0xFFFF, DType.u32), DType.u32),
             ir.Bin(">>", now, ir.Const(16, DType.u32), DType.u32),
             ir.Const(0, DType.u32))
    return tuple(ir.Cast(w, DType.u16) for w in words)


def _store_words(env, fn, p: PtrVal, value: ir.Expr) -> None:
    """Write the u32 `value` to `p` as a 48-bit counter."""
    for k, w in enumerate(counter_words(env, fn, value)):
        fn.emit(ir.Assign(p.name, (ir.Const(p.offset + k, DType.i32),), w))


def _perf_base(pe) -> None:
    """The performance counters' base symbol (`ir.PERF_BASE`), made where there is none."""
    if ir.PERF_BASE not in pe.symbols:
        pe.symbols[ir.PERF_BASE] = ir.Symbol(ir.PERF_BASE, DType.u32, (1,), None)


def time_module(c, params, pos):
    def noop(name):
        def impl(c2, node, env):
            call_args(c2, node, env, 0)
            c2.need_fn(env, node.pos, f"{name}()")
            return None
        return impl

    def reset(c2, node, env):
        call_args(c2, node, env, 0)
        fn = c2.need_fn(env, node.pos, "reset_tsc_counter()")
        fn.emit(ir.ExprStmt(ir.Intrinsic("reset_cycles", (), DType.u32)))
        return None

    def timestamp(c2, node, env):
        (p,) = call_args(c2, node, env, 1)
        fn = c2.need_fn(env, node.pos, "get_timestamp()")
        _store_words(env, fn, _counter_ptr(c2, p, node, "get_timestamp"),
                     ir.Intrinsic("cycles", (), DType.u32))
        return None

    def perf_counter(c2, node, env):
        p, ident = call_args(c2, node, env, 2)
        fn = c2.need_fn(env, node.pos, "get_perf_cntr()")
        p = _counter_ptr(c2, p, node, "get_perf_cntr")
        if not isinstance(ident, RVal):
            n = c2.comptime_int(ident, node.args[1].pos)
            if n not in (0, 1):
                raise c2.error(f"get_perf_cntr: there is no counter {n} (0 or 1)",
                               node.args[1].pos)
        _perf_base(env.module.pe)
        base = ir.Load(ir.PERF_BASE, (ir.Const(0, DType.i32),), DType.u32)
        _store_words(env, fn, p, ir.Bin("+", base, ir.Intrinsic("cycles", (), DType.u32),
                                            DType.u32))
        return None

    def tsc_switch(name):
        run = noop(name)

        def impl(c2, node, env):
            out = run(c2, node, env)
            c2.ignored(f"<time>.{name}()", node.pos, "the timestamp counter always runs here")
            return out
        return impl

    return NativeModule("time", {
        "enable_tsc": native_fn("enable_tsc", tsc_switch("enable_tsc")),
        "disable_tsc": native_fn("disable_tsc", tsc_switch("disable_tsc")),
        "reset_tsc_counter": native_fn("reset_tsc_counter", reset),
        "get_timestamp": native_fn("get_timestamp", timestamp),
        "get_perf_cntr": native_fn("get_perf_cntr", perf_counter),
        "tsc_size_words": 3,
    })
