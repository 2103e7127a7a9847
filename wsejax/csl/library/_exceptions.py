"""`<tile_config>.exceptions`: the exception mask register, which decides which exceptions stop
the PE (`wsejax.fpexc`: the register, the constants' bits, which operations are tested).

Members: the constants `PERF_CNT_0_OVERFLOW`, `PERF_CNT_1_OVERFLOW`, `SW_EXCEPTION`,
`FP_UNDERFLOW`, `FP_OVERFLOW`, `FP_INEXACT`, `FP_INVALID`, `FP_DIV_BY_0` (u16 words, each all
ones but its own bit; the bit positions are wsejax's choice, the SDK does not give them) and
`set_exception_mask(mask)`, which overwrites the register: the exceptions whose bits are 0 in
`mask` are unmasked, the others masked (so `FP_OVERFLOW & FP_UNDERFLOW` unmasks both). At
top-level comptime it sets the register the PE starts with; in a function it sets it from then
on (a comptime or a u16 runtime mask). A PE program that never calls it has no register and
tests no operation.
"""

from __future__ import annotations

from wsejax import fpexc, ir
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import CNum, LocalVar, RVal, describe
from wsejax.types import DType

__all__ = ["exceptions_module"]

U16 = DType.u16
_HINT = ("combine the module's constants with &, as in "
         "exceptions.set_exception_mask(exceptions.FP_OVERFLOW & exceptions.FP_UNDERFLOW)")


def _register(pe, value: int | None = None) -> None:
    """Make the PE program's register (all masked), or set the value it starts with."""
    if value is None and fpexc.MASK_SYMBOL in pe.symbols:
        return
    start = fpexc.ALL_MASKED if value is None else value
    pe.symbols[fpexc.MASK_SYMBOL] = ir.Symbol(fpexc.MASK_SYMBOL, U16, (), (start,))


def _mask(c, v, pos) -> ir.Expr:
    """The u16 expression of mask `v`, or a located error."""
    what = "exceptions.set_exception_mask"
    if isinstance(v, LocalVar):
        v = v.value()
    if isinstance(v, RVal):
        if v.dtype is not U16:
            raise c.error(f"{what} takes a reg_type (u16) mask, got {describe(v)} (convert "
                          "with @as(u16, ...), or " + _HINT + ")", pos)
        return v.expr
    if isinstance(v, bool) or not (isinstance(v, int) or
                                   (isinstance(v, CNum) and v.dtype.is_int)):
        raise c.error(f"{what} takes a reg_type (u16) mask, got {describe(v)} ({_HINT})", pos)
    n = c.comptime_int(v, pos)
    if not 0 <= n <= fpexc.ALL_MASKED:
        raise c.error(f"{what}: mask {n} does not fit reg_type (u16: 0 to 0xFFFF; {_HINT})",
                      pos)
    return ir.Const(n, U16)


def _set(c, node, env):
    (v,) = call_args(c, node, env, 1)
    pe = env.module.pe
    if pe is None:
        raise c.error("exceptions.set_exception_mask belongs in a PE program", node.pos)
    mask = _mask(c, v, node.args[0].pos)
    _register(pe)
    if env.fn is None:
        if not isinstance(mask, ir.Const):
            raise c.error("exceptions.set_exception_mask at comptime needs a comptime-known "
                          "mask", node.args[0].pos)
        _register(pe, int(mask.value))
        return None
    env.fn.emit(ir.Assign(fpexc.MASK_SYMBOL, (), mask))
    return None


def exceptions_module() -> NativeModule:
    members = {name: CNum(fpexc.constant(name), U16) for name in fpexc.BITS}
    members["set_exception_mask"] = native_fn("set_exception_mask", _set)
    return NativeModule("tile_config/exceptions", members)
