"""The floating-point exceptions an operation raises (`wsejax.fpexc`), with exact fractions.

Contract. `raised(arith, x, y, fmt)` gives, for one step of `wsejax.fpexc` ("+", "-", "*",
"/", "cvt", "scale") on operands of exact values `x` and `y` (Python floats; an int for
"scale", None for "cvt"), one bool per exception of `FP_EXCEPTIONS`, in that order, for a
result rounded to nearest even in format `fmt`. Written apart from the engine's
(`wsejax.engine.fpexc`): here the exact result is a `Fraction` and each condition is read from
it by comparison with the format's bounds.
"""

from __future__ import annotations

import math
from fractions import Fraction

from wsejax import fpexc, ir
from wsejax.diagnostics import fp_exception
from wsejax.reference.elements import element_ops
from wsejax.reference.pe import PE, Fault
from wsejax.types import DType

__all__ = ["FpExcInterpreter", "raised"]


def _pow2(k: int) -> Fraction:
    return Fraction(2) ** k


def _representable(a: Fraction, p: int, emin: int) -> bool:
    """Whether a > 0 (below the overflow bound) is a value of the format: a multiple of its
    binade's spacing, and of the subnormal spacing below the normal range."""
    top = a.numerator.bit_length() - a.denominator.bit_length()
    if _pow2(top) > a:
        top -= 1
    return (a / _pow2(max(top, emin) - (p - 1))).denominator == 1


def _exact(arith: str, x: float, y) -> Fraction:
    fx = Fraction(x)
    if arith == "cvt":
        return fx
    if arith == "scale":
        return fx * _pow2(max(-1000, min(1000, int(y))))
    fy = Fraction(y)
    if arith == "+":
        return fx + fy
    if arith == "-":
        return fx - fy
    if arith == "*":
        return fx * fy
    return fx / fy


def _invalid(arith: str, x: float, y) -> bool:
    if arith in ("cvt", "scale"):
        return False
    if arith in ("+", "-"):
        same = (math.copysign(1.0, x) == math.copysign(1.0, y)) == (arith == "+")
        return math.isinf(x) and math.isinf(y) and not same
    if arith == "*":
        return (math.isinf(x) and y == 0) or (x == 0 and math.isinf(y))
    return (x == 0 and y == 0) or (math.isinf(x) and math.isinf(y))


def raised(arith: str, x: float, y, fmt: DType) -> tuple[bool, ...]:
    """The five flags (INVALID, DIV_BY_0, OVERFLOW, UNDERFLOW, INEXACT) of one step."""
    invalid = _invalid(arith, x, y)
    operands = (x,) if arith in ("cvt", "scale") else (x, y)
    finite = all(math.isfinite(v) for v in operands)
    div0 = arith == "/" and finite and x != 0 and y == 0
    if not finite or (arith == "/" and y == 0):
        return invalid, div0, False, False, False
    a = abs(_exact(arith, x, y))
    if a == 0:
        return invalid, div0, False, False, False
    p, emin, emax = fpexc.FORMATS[fmt]
    # the rounding to p bits, ties to even, reaches 2**(emax + 1) from here on (overflow), and
    # stays below 2**emin below this (tiny)
    overflow = a >= _pow2(emax + 1) - _pow2(emax - p)
    tiny = a < _pow2(emin) - _pow2(emin - p - 1)
    inexact = overflow or not _representable(a, p, emin)
    return invalid, div0, overflow, tiny, inexact


class FpExcInterpreter:
    """The tests of `wsejax.fpexc` in `Reference` (a mixin): only a PE whose program holds the
    exception mask register tests; an operation whose value is not used (a select's branch
    not taken, the right side of `and` / `or` where the left decides) raises nothing
    (`fp_quiet`, while such a side runs).

    Uses from `Reference`: `program` (its `fp16` format)."""

    fp_quiet = 0

    @staticmethod
    def fp_checks(pe: PE) -> bool:
        return fpexc.MASK_SYMBOL in pe.flat

    def fp_check(self, pe: PE, flags, what: str) -> None:
        """Fault with the first exception of `flags` the PE's register unmasks."""
        if self.fp_quiet:
            return
        mask = int(pe.flat[fpexc.MASK_SYMBOL][0])
        for name, on in zip(fpexc.FP_EXCEPTIONS, flags):
            if on and not mask >> fpexc.BITS[name] & 1:
                raise Fault(fp_exception(name, what))

    def fp_quietly(self, fn, quiet: bool):
        """`fn()`, raising no exception where `quiet`."""
        self.fp_quiet += quiet
        try:
            return fn()
        finally:
            self.fp_quiet -= quiet

    def fp_scalar(self, pe: PE, e: ir.Bin, a, b, fn: str) -> None:
        t = e.a.dtype
        if t.is_float and e.op in ("+", "-", "*", "/"):
            self.fp_check(pe, raised(e.op, float(a), float(b), t), f"{t} '{e.op}' in {fn}")

    def fp_cast(self, pe: PE, x, have: DType, want: DType, fn: str) -> None:
        if have.is_float and want.is_float and have != want:
            self.fp_check(pe, raised("cvt", float(x), None, want),
                          f"@as({want}, {have}) in {fn}")

    def fp_op(self, pe: PE, spec, vals: list, what: str) -> None:
        """The test of one element of DSD op `spec` on its source values `vals`."""
        steps = fpexc.op_steps(spec.name, self.program.fp16)
        prev = None
        for k, (arith, xi, yi, fmt, via) in enumerate(steps):
            x = prev if xi == fpexc.PREV else vals[xi]
            y = None if yi is None else prev if yi == fpexc.PREV else vals[yi]
            y = None if y is None else int(y) if arith == "scale" else float(y)
            self.fp_check(pe, raised(arith, float(x), y, fmt), what)
            if k + 1 < len(steps):
                prev = element_ops(self.program.fp16)[via].fn(vals[xi], vals[yi])
