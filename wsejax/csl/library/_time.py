"""`<time>`: the timestamp counter, the PE's virtual clock."""

from __future__ import annotations

import numpy as np

from wsejax import ir
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import (
    PtrVal,
)
from wsejax.types import DType


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
        "enable_tsc": native_fn("enable_tsc", tsc_switch("enable_tsc")),
        "disable_tsc": native_fn("disable_tsc", tsc_switch("disable_tsc")),
        "reset_tsc_counter": native_fn("reset_tsc_counter", reset),
        "get_timestamp": native_fn("get_timestamp", timestamp),
        "tsc_size_words": 3,
    })
