"""The rules of `.simd_mode` (spec 7.4, 7.5), shared by the front ends.

A fabric DSD with `.simd_mode` moves a 16-bit operation's elements two a wavelet: element 2k
in the low half, element 2k+1 in the high half (the spec leaves the order open and
recommends the low half first). Its `.extent` counts elements, as every DSD length does, so
`n` elements travel in `ceil(n / 2)` wavelets, the high half of the last one 0 when `n` is
odd. The three modes (`wsejax.ir.SIMD_MODES`) differ only in how many wavelets a step waits
for, which is timing the emulator does not model; they move the same wavelets. A 32-bit
operation has no halves to pack, and the high half cannot carry both an element and the
`.index` of wavelet_index_offset: both are refused.

A FIFO's `.simd_mode` (wse2 only) is how the hardware moves the FIFO's 16-bit elements; it
changes no value, and the emulator only checks it.
"""

from __future__ import annotations

from wsejax.frontend.fabric import fail
from wsejax.ir import SIMD_MODES

MODES_TEXT = " | ".join(f".{m}" for m in SIMD_MODES)


def check_simd_mode(what: str, mode: str | None) -> str:
    """A `.simd_mode` value: one of `SIMD_MODES` (None: not a mode name)."""
    if mode not in SIMD_MODES:
        got = "a value that is not a mode name" if mode is None else f".{mode}"
        fail(f".simd_mode takes one of {MODES_TEXT}, got {got}", what)
    return mode


def check_fabric_simd(kind: str, indexed: bool) -> None:
    """A fabric DSD's `.simd_mode` beside its other fields."""
    if indexed:
        fail(".simd_mode packs two elements a wavelet, so the high half cannot also carry "
             "the .index of wavelet_index_offset", kind)


def check_fifo_simd(arch: str) -> None:
    """A FIFO's `.simd_mode` is wse2 only (spec 7.5)."""
    if arch != "wse2":
        fail(".simd_mode is WSE-2 only", "@allocate_fifo")


def check_simd_operands(op: str, simd: list[bool], bits: list[int]) -> None:
    """An operation's fabric operands with `.simd_mode` (`simd`, destination first) are of
    16 bits in the operation (`bits`)."""
    for k, (packed, width) in enumerate(zip(simd, bits)):
        if packed and width != 16:
            fail(f"operand {k + 1} is a fabric DSD with .simd_mode, which packs 16-bit "
                 f"elements, and this operation's operand {k + 1} is {width}-bit", f"@{op}", k)


def check_map_simd(simd: list[bool], bits: list[int], output: bool) -> None:
    """`@map`'s fabric operands with `.simd_mode` (`simd`: the inputs, then the output where
    `output`) stand for 16-bit parameters or the 16-bit result of its callback (`bits`,
    likewise)."""
    for k, (packed, width) in enumerate(zip(simd, bits)):
        if packed and width != 16:
            what = "result" if output and k == len(simd) - 1 else f"parameter {k + 1}"
            fail(f"argument {k + 1} is a fabric DSD with .simd_mode, which packs 16-bit "
                 f"elements, and the callback's {what} is {width}-bit", "@map", k)
