"""Signatures of the DSD operation builtins (spec §8): element types and accepted operand forms.

Contract: `OPS` holds one `OpSpec` per operation, keyed by its CSL builtin name without the `@`
(`"fadds"`, `"fmach"`, `"sll16"`, ...): the element type it writes, the element type of each
source in the order the builtin takes them after the destination, and its accepted call forms.
The front ends check calls against it (`form_error`); the engine (`wsejax.ops`) and the
reference interpreter (`wsejax.reference`) each pair it with their own element functions
(`with_functions`), so that the two stay independent and can check each other. Nothing here
imports JAX.

Example:
    >>> [str(t) for t in OPS["fmacs"].srcs], OPS["fmacs"].forms
    (['f32', 'f32', 'f32'], ('DDDs',))
    >>> form_error("fmacs", "DDDs") is None
    True
    >>> form_error("sub16", "DsD").split("; ")[0]
    '@sub16 does not accept operand form (D, s, D)'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from wsejax.types import DType

__all__ = ["CARRIED", "FORM_LETTERS", "FP16_FORMATS", "OPS", "ElementOp", "OpSpec", "for_fp16",
           "form_error", "with_functions"]

F32, F16, I16, U16, U32 = DType.f32, DType.f16, DType.i16, DType.u16, DType.u32

# the letters of a call form, one per operand, destination first
FORM_LETTERS = {"D": "DSD", "s": "scalar", "p": "pointer"}


@dataclass(frozen=True)
class OpSpec:
    """Element types and accepted operand forms of one DSD operation builtin.

    `forms` holds one string per accepted call form, one letter per operand, destination first:
    'D' a DSD/DSR operand, 's' a scalar value, 'p' a pointer to a scalar (destination only).
    """

    name: str  # CSL builtin name without '@', e.g. "fadds"
    dest: DType  # element type written to the destination
    srcs: tuple[DType, ...]  # element type of each source operand, scalars included
    forms: tuple[str, ...]  # e.g. ("DDD", "DsD", "DDs", "psD")


@dataclass(frozen=True)
class ElementOp(OpSpec):
    """An `OpSpec` with the function that computes destination elements from source elements:
    `fn(*srcs)`, one argument per source, in the caller's representation (jax arrays in the
    engine, numpy scalars in the reference)."""

    fn: Callable


def form_error(name: str, form: str) -> str | None:
    """Why operand form `form` (letters D, s, p; destination first) is not accepted by op
    `name`, or None if it is. Both front ends report this text."""
    spec = OPS[name]
    if form in spec.forms:
        return None
    accepted = " ".join("(" + ", ".join(f) + ")" for f in spec.forms)
    letters = ", ".join(f"{letter} = {meaning}" for letter, meaning in FORM_LETTERS.items())
    return (f"@{name} does not accept operand form ({', '.join(form)}); accepted: {accepted} "
            f"({letters})")


def with_functions(fns: Mapping[str, Callable],
                   table: Mapping[str, OpSpec] | None = None) -> dict[str, ElementOp]:
    """The table `table` (default `OPS`) with each op's element function from `fns`, which
    names every op.

    Raises:
      ValueError: `fns` misses an op or names one that the table does not hold.
    """
    table = OPS if table is None else table
    if set(fns) != set(table):
        missing, extra = sorted(set(table) - set(fns)), sorted(set(fns) - set(table))
        raise ValueError(f"element functions missing for {missing}, unknown ops {extra}")
    return {name: ElementOp(spec.name, spec.dest, spec.srcs, spec.forms, fns[name])
            for name, spec in table.items()}


# the 16-bit float formats a program may select (`cslc --fp16-format`): the type `@fp16()` is
# and the type of the fp16 operands of the `...h` operations
FP16_FORMATS = {"f16": DType.f16, "cb16": DType.cb16, "bf16": DType.bf16}


def for_fp16(fp16: DType) -> dict[str, OpSpec]:
    """The table `OPS` of a program whose fp16 format is `fp16`: f16 operands become fp16.

    Example:
        >>> str(for_fp16(DType.bf16)["faddh"].dest)
        'bf16'
    """
    if fp16 == F16:
        return OPS
    got = _BY_FP16.get(fp16)
    if got is None:
        def sub(t: DType) -> DType:
            return fp16 if t == F16 else t
        got = _BY_FP16[fp16] = {
            name: OpSpec(s.name, sub(s.dest), tuple(sub(t) for t in s.srcs), s.forms)
            for name, s in OPS.items()}
    return got


_BY_FP16: dict = {}


# The ops whose elements are not independent: `addc16` adds with a carry that each element
# passes to the next, from 0 at the op's start (spec §8 notes; [U], our policy).
CARRIED = frozenset({"addc16"})


# -- the table (forms from spec §8; 'v16'/'vh'/'vs' written as 's') --------------------------------

_BINARY = ("DDD", "DsD", "DDs", "psD")
_BINARY16 = ("DDD", "DsD", "DDs")
_MAC = ("DDDs",)
_MOVE = ("DD", "pD", "Ds")
_UNARY = ("DD", "Ds")
_TO_XP16 = ("DD", "Ds", "ps")
_NORM = ("ps",)
_SCALE = ("pss",)

OPS: dict[str, OpSpec] = {
    op.name: op
    for op in (
        OpSpec("fadds", F32, (F32, F32), _BINARY),
        OpSpec("fsubs", F32, (F32, F32), _BINARY),
        OpSpec("fmuls", F32, (F32, F32), _BINARY),
        OpSpec("fmaxs", F32, (F32, F32), _BINARY),
        OpSpec("fmacs", F32, (F32, F32, F32), _MAC),
        OpSpec("fmovs", F32, (F32,), _MOVE),
        OpSpec("fnegs", F32, (F32,), _UNARY),
        OpSpec("fabss", F32, (F32,), _UNARY),
        OpSpec("fnorms", F32, (F32,), _NORM),
        OpSpec("fscales", F32, (F32, I16), _SCALE),
        OpSpec("faddh", F16, (F16, F16), _BINARY),
        OpSpec("fsubh", F16, (F16, F16), _BINARY),
        OpSpec("fmulh", F16, (F16, F16), _BINARY),
        OpSpec("fmaxh", F16, (F16, F16), _BINARY),
        OpSpec("fmach", F16, (F16, F16, F16), _MAC),
        OpSpec("fmovh", F16, (F16,), _MOVE),
        OpSpec("fnegh", F16, (F16,), _UNARY),
        OpSpec("fabsh", F16, (F16,), _UNARY),
        OpSpec("fnormh", F16, (F16,), _NORM),
        OpSpec("fscaleh", F16, (F16, I16), _SCALE),
        OpSpec("fmachs", F32, (F32, F16, F16), _MAC),
        OpSpec("faddhs", F32, (F32, F16), _BINARY),
        OpSpec("fh2s", F32, (F16,), _UNARY),
        OpSpec("fs2h", F16, (F32,), _UNARY),
        OpSpec("fs2xp16", I16, (F32,), _TO_XP16),
        OpSpec("fh2xp16", I16, (F16,), _TO_XP16),
        OpSpec("xp162fs", F32, (I16,), _UNARY),
        OpSpec("xp162fh", F16, (I16,), _UNARY),
        OpSpec("add16", U16, (U16, U16), _BINARY16),
        OpSpec("addc16", U16, (U16, U16), _BINARY16),
        OpSpec("sub16", U16, (U16, U16), ("DDD", "DDs")),
        OpSpec("and16", U16, (U16, U16), _BINARY16),
        OpSpec("or16", U16, (U16, U16), _BINARY16),
        OpSpec("xor16", U16, (U16, U16), _BINARY16),
        OpSpec("sll16", U16, (U16, U16), _BINARY16),
        OpSpec("slr16", U16, (U16, U16), _BINARY16),
        OpSpec("sar16", U16, (U16, U16), _BINARY16),
        OpSpec("mov16", U16, (U16,), _MOVE),
        OpSpec("popcnt", U16, (U16,), _UNARY),
        OpSpec("clz", U16, (U16,), _UNARY),
        OpSpec("ctz", U16, (U16,), _UNARY),
        OpSpec("mov32", U32, (U32,), _MOVE),
    )
}
