"""`<random>`: draws from the PE's LFSR."""

from __future__ import annotations

import math

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.builtins.runtime import random_draw
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import (
    RVal,
)
from wsejax.types import DType


def random_module(c, params, pos):
    def draw16(c2, env, node):
        return random_draw(c2, env, node.pos, "a random draw")

    def u32_of(c2, env, node):
        lo = ir.Cast(draw16(c2, env, node), DType.u32)
        hi = ir.Cast(draw16(c2, env, node), DType.u32)
        return ir.Bin("|", lo, ir.Bin("<<", hi, ir.Const(16, DType.u32), DType.u32), DType.u32)

    def seed(c2, node, env):
        (s,) = call_args(c2, node, env, 1)
        fn = c2.need_fn(env, node.pos, "set_global_prng_seed()")
        fn.emit(ir.ExprStmt(ir.Intrinsic("seed_prng", (c2.to_expr(s, DType.u32, node.pos),),
                                         DType.u32)))
        return None

    def uniform(t):
        def impl(c2, node, env):
            lo, hi = call_args(c2, node, env, 2)
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
        (p,) = call_args(c2, node, env, 1)
        bits = u32_of(c2, env, node)
        ep = c2.to_expr(p, DType.u32, node.pos)
        mask = ir.Bin("-", ir.Bin("<<", ir.Const(1, DType.u32), ep, DType.u32),
                      ir.Const(1, DType.u32), DType.u32)
        full = ir.Bin(">=", ep, ir.Const(32, DType.u32), DType.bool_)
        return RVal(ir.Select(full, bits, ir.Bin("&", bits, mask, DType.u32), DType.u32),
                    DType.u32)

    def normal(c2, node, env):
        call_args(c2, node, env, 0)
        u1 = uniform(DType.f32)(c2, _Stub(node), env).expr
        u2 = uniform(DType.f32)(c2, _Stub(node), env).expr
        one = ir.Const(1.0, DType.f32)
        r = ir.Intrinsic("sqrt", (ir.Bin("*", ir.Const(-2.0, DType.f32), ir.Intrinsic(
            "log", (ir.Bin("-", one, u1, DType.f32),), DType.f32), DType.f32),), DType.f32)
        theta = ir.Bin("*", ir.Const(2 * math.pi, DType.f32), u2, DType.f32)
        return RVal(ir.Bin("*", r, ir.Intrinsic("cos", (theta,), DType.f32), DType.f32),
                    DType.f32)

    return NativeModule("random", {
        "set_global_prng_seed": native_fn("set_global_prng_seed", seed),
        "random_f32": native_fn("random_f32", uniform(DType.f32)),
        "random_f16": native_fn("random_f16", uniform(DType.f16)),
        "random_pow_u32": native_fn("random_pow_u32", pow_u32),
        "random_normal_f32": native_fn("random_normal_f32", normal),
    })


class _Stub:
    """A call node with constant [0, 1) bounds, for draws made inside other draws."""

    def __init__(self, node):
        self.args = (ast.FloatLit(0.0, node.pos), ast.FloatLit(1.0, node.pos))
        self.pos = node.pos
        self.fn = node.fn
