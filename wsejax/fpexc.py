"""Floating-point exceptions and the exception mask register of `<tile_config>.exceptions`.

Contract. A PE program that sets its mask (`set_exception_mask`) holds the register in its
symbol `MASK_SYMBOL` (u16, all ones at start: every exception masked); a program without that
symbol never tests an operation. A 0 bit unmasks its exception: a floating-point operation that
raises an unmasked exception stops its PE with a device fault (`diagnostics.fp_exception`).
Both interpreters test the same operations, each its own way (`wsejax.engine.fpexc` on the
bits, `wsejax.reference.fpexc` with exact fractions), against the facts written here once.

Policies:
- The SDK gives the constants' names, not their values; that each is a 16-bit word with every
  bit set except its own (`FP_OVERFLOW & FP_UNDERFLOW` unmasks both) follows from its examples.
  The bit positions (`BITS`) are wsejax's choice.
- The five IEEE 754 exceptions (`FP_EXCEPTIONS`, in the order a fault names the first unmasked
  one an operation raises), for a result rounded to nearest even in a format of `FORMATS`:
  INVALID, a NaN from operands that are not NaN (0/0, inf - inf, 0 * inf); DIV_BY_0, a finite
  nonzero number divided by zero; OVERFLOW, an infinite result from finite operands; UNDERFLOW,
  a nonzero exact result that, rounded to the format's precision with an unbounded exponent,
  is below the smallest normal magnitude (tininess after rounding); INEXACT, a rounded result
  (overflow included) that differs from the exact one. Each test is exact.
- `PERF_CNT_0_OVERFLOW`, `PERF_CNT_1_OVERFLOW` and `SW_EXCEPTION` are mask bits no operation
  raises: wsejax has no performance counter that overflows into an exception, and the SDK
  documents no instruction that raises a software exception.
- Tested: the scalar `+ - * /` of floats and the conversions between float types (`@as`); the
  float DSD operations of `OP_STEPS`, each element in turn, each step of a mac in turn (its
  product rounded before the add). Not tested (they raise nothing): float `%`, `min`, `max`,
  negation and `abs`, conversions between integers and floats, `<math>` functions, `fmax*`,
  `fnorm*`, the xp16 conversions, the float operations of a `@map` callback and the sums of
  `<collectives_2d>`'s `reduce_fadds`. No DSD operation divides, so only a scalar `/` raises
  FP_DIV_BY_0. An operation whose operands are all comptime-known is folded when the program
  is compiled: it runs on no PE and raises nothing.
"""

from __future__ import annotations

from wsejax.types import DType

__all__ = ["ALL_MASKED", "BITS", "FORMATS", "FP_EXCEPTIONS", "MASK_SYMBOL", "OP_STEPS", "PREV",
           "constant", "op_steps"]

# the PE program's exception mask register, where it sets one
MASK_SYMBOL = "%exceptions.mask"
ALL_MASKED = 0xFFFF

# the constants of `<tile_config>.exceptions`: the bit each clears (wsejax's choice)
BITS = {"PERF_CNT_0_OVERFLOW": 0, "PERF_CNT_1_OVERFLOW": 1, "SW_EXCEPTION": 2,
        "FP_UNDERFLOW": 3, "FP_OVERFLOW": 4, "FP_INEXACT": 5, "FP_INVALID": 6,
        "FP_DIV_BY_0": 7}

FP_EXCEPTIONS = ("FP_INVALID", "FP_DIV_BY_0", "FP_OVERFLOW", "FP_UNDERFLOW", "FP_INEXACT")

# float format -> (precision in bits with the hidden one, smallest and largest normal exponent)
FORMATS = {DType.f32: (24, -126, 127), DType.f16: (11, -14, 15), DType.bf16: (8, -126, 127),
           DType.cb16: (10, -41, 20)}


def constant(name: str) -> int:
    """The value of constant `name`: all ones but its bit."""
    return ALL_MASKED & ~(1 << BITS[name])


# The floating-point steps of the DSD operations, one element at a time: (arith, x, y, format,
# op) where arith is "+", "-", "*", "cvt" (x converted) or "scale" (x * 2**y); x and y are
# source positions, or PREV, the rounded result of the step before (computed by DSD op `op`);
# F16 stands for the program's 16-bit format.
PREV = -1
_F32, _F16 = DType.f32, DType.f16
OP_STEPS = {
    "fadds": (("+", 0, 1, _F32, "fadds"),),
    "fsubs": (("-", 0, 1, _F32, "fsubs"),),
    "fmuls": (("*", 0, 1, _F32, "fmuls"),),
    "fmacs": (("*", 1, 2, _F32, "fmuls"), ("+", 0, PREV, _F32, "fadds")),
    "faddh": (("+", 0, 1, _F16, "faddh"),),
    "fsubh": (("-", 0, 1, _F16, "fsubh"),),
    "fmulh": (("*", 0, 1, _F16, "fmulh"),),
    "fmach": (("*", 1, 2, _F16, "fmulh"), ("+", 0, PREV, _F16, "faddh")),
    "fmachs": (("*", 1, 2, _F16, "fmulh"), ("+", 0, PREV, _F32, "fadds")),
    "faddhs": (("+", 0, 1, _F32, "faddhs"),),
    "fs2h": (("cvt", 0, None, _F16, "fs2h"),),
    "xp162fh": (("cvt", 0, None, _F16, "xp162fh"),),
    "fscales": (("scale", 0, 1, _F32, "fscales"),),
    "fscaleh": (("scale", 0, 1, _F16, "fscaleh"),),
}


def op_steps(name: str, fp16: DType) -> tuple:
    """The steps of DSD op `name` in a program whose 16-bit format is `fp16` (() for an op
    that raises nothing)."""
    return tuple((a, x, y, fp16 if t is _F16 else t, op)
                 for a, x, y, t, op in OP_STEPS.get(name, ()))
