"""The types every stage of the engine shares: the machine, DSD values, frames, loop carries.

Contract. This module sits under the lowering (`wsejax.engine.lower`), the fabric loop
(`wsejax.engine.tick`) and the engine (`wsejax.engine.core`), and imports none of them.

- `Machine` is the mutable view of the `FabricState` arrays while a body is lowered or a tick
  runs; `carry()` / `load()` pass it through `lax` loops and conditionals as a NamedTuple.
- `DsdRt` is a DSD value during lowering, `Frame` one function activation (its locals and
  the lane masks of `return`, `break` and `continue`).
- Lane masks are `[H, W]` bool arrays, or None for every lane; `mask_and`, `mask_or` and
  `mask_and_not` combine them without materialising "every lane".
- The loop carries are NamedTuples: `FabricCarry` (a command's tick loop), `HostCarry` (its
  streaming memcpy) and `LoopCarry` (a lowered runtime loop).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import jax
import numpy as np
from jax import lax

from wsejax.engine import cb16
from wsejax.engine.rings import FabricArrays
from wsejax.types import DType, bool_

__all__ = ["DsdRt", "FabricCarry", "Frame", "HostCarry", "Loop", "LoopCarry", "Machine",
           "MachineArrays", "Nest", "bitview", "is_static", "mask_and", "mask_and_not",
           "mask_or"]


# ------------------------------------------------------------------------------------------------
# Lane masks (None: every lane)


def mask_and(a, b):
    """Lane mask conjunction; None means all lanes."""
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def mask_or(a, b):
    """Disjunction of masks of lanes switched off (returned, broken, continued), where None
    means no lane."""
    if a is None or b is None:
        return None if a is None and b is None else (a if b is None else b)
    return a | b


def mask_and_not(m, off):
    """`m & ~off` with None-aware operands (off None = nothing off)."""
    if off is None:
        return m
    return ~off if m is None else m & ~off


# ------------------------------------------------------------------------------------------------
# Runtime values


@dataclass
class DsdRt:
    """A DSD value during lowering. Fields are Python ints when static, else int32 arrays.

    `bases` lists the candidate `(symbol, base_offset)` pairs; `base` indexes it.
    """

    kind: str                       # "mem1d" | "mem4d" | "circbuf" | "fabin" | "fabout" | "fifo"
    bases: tuple
    base: object = 0
    offset: object = 0
    stride: object = 1
    length: object = 0
    coeffs: tuple = ()
    extents: tuple = ()
    wavelet_index_offset: bool = False
    color: int = -1                 # fabin / fabout
    control: bool = False           # fabout: it sends control wavelets
    advance_switch: bool = False    # fabout: its last wavelet advances the sender's switch
    fifo: str = ""                  # fifo
    addr: object = None             # explicit [H, W, n] element addresses (a window of an op)
    wrap: int = 0                   # circbuf: element i is at offset + i mod wrap (offset: head)
    zero: tuple = ()                # fabout: the sources it zeroes as they are read
    simd: str | None = None         # fabin / fabout: `.simd_mode` (`wsejax.engine.lower.simd`)

    def fields(self):
        return {"base": self.base, "offset": self.offset, "stride": self.stride,
                "length": self.length}

    def replace(self, **kw) -> DsdRt:
        return dataclasses.replace(self, **kw)

    @property
    def static(self) -> bool:
        return all(isinstance(v, int) for v in self.fields().values())

    @property
    def memory(self) -> bool:
        return self.kind in ("mem1d", "mem4d", "circbuf")


def is_static(v) -> bool:
    """Is `v` known at trace time (a Python or numpy integer)?"""
    return isinstance(v, (int, np.integer))


class MachineArrays(NamedTuple):
    """The arrays of a `Machine`, as a `lax` loop or conditional carries them."""

    mem: dict
    dsd: dict
    cmd: jax.Array
    cycles: jax.Array
    prng: jax.Array
    fault: jax.Array
    active: jax.Array
    blocked: jax.Array
    fab: FabricArrays



@dataclass
class Machine:
    """The mutable view of the state arrays while a body is lowered or a tick runs."""

    mem: dict            # slot -> [H, W, *shape] of the symbol's dtype
    dsd: dict            # runtime DSD variable key -> {field: [H, W] int32}
    cmd: jax.Array       # [H, W] bool: the command stream waits for unblock_cmd_stream
    cycles: jax.Array    # [H, W] uint32
    prng: jax.Array      # [H, W] uint32
    fault: jax.Array     # [H, W] int32: 0, or the code of the PE's first fault
    tables: dict         # name -> [H, W]: per-PE constants; read-only
    active: jax.Array = None    # [H, W, TASK_WORDS] uint32: task IDs activated
    blocked: jax.Array = None   # [H, W, TASK_WORDS] uint32: task IDs blocked
    fab: FabricArrays = field(default_factory=FabricArrays)  # `FabricState.fab`

    def carry(self) -> MachineArrays:
        return MachineArrays(self.mem, self.dsd, self.cmd, self.cycles, self.prng, self.fault,
                             self.active, self.blocked, self.fab)

    def load(self, carry: MachineArrays) -> None:
        (self.mem, self.dsd, self.cmd, self.cycles, self.prng, self.fault, self.active,
         self.blocked, self.fab) = carry
        self.mem = dict(self.mem)
        self.dsd = {k: dict(v) for k, v in self.dsd.items()}
        self.fab = self.fab.copy()



@dataclass
class Loop:
    """The lanes that left the innermost loop (`break`) or its current iteration
    (`continue`)."""

    broken: object = None
    cont: object = None


@dataclass
class Nest:
    """The iterations a loop nest has run on each PE (`[H, W]` int32); shared by the frames
    of the functions called inside it."""

    used: object


@dataclass
class Frame:
    """Locals and control masks of one function activation."""

    locals: dict = field(default_factory=dict)
    returned: object = None
    retval: object = None
    loops: list = field(default_factory=list)
    ext: int = 0          # extra trailing lane axes (1 inside @map callbacks)
    fn: str = ""
    nest: Nest | None = None
    writes: bool = False  # a @map callback run one element at a time: it may write memory

    @classmethod
    def microthread(cls) -> Frame:
        """The frame a microthread's element window runs in: no locals of its own (a pointer
        destination's indices are constants; `store` removes its temporary again)."""
        return cls(fn="a microthread")

    def off(self):
        """The lanes switched off here: returned, or out of the innermost loop's iteration."""
        off = self.returned
        if self.loops:
            off = mask_or(off, mask_or(self.loops[-1].broken, self.loops[-1].cont))
        return off


def bitview(x, have: DType, want: DType):
    """Reinterpret the bits of `x` (dtype `have`) as `want` (same width)."""
    if have == want or (have.is_wide and want.is_wide):     # one carrier (`engine.wide`)
        return x
    if have is bool_ or want is bool_:
        return x.astype(want.np)
    if DType.cb16 in (have, want):
        return cb16.from_bits16(cb16.to_bits16(x, have), want)
    return lax.bitcast_convert_type(x, want.np)


# ------------------------------------------------------------------------------------------------
# Loop carries


class HostCarry(NamedTuple):
    """The streaming memcpy of the running command, through its tick loop."""

    stream: jax.Array    # [] int32: its index in `Program.streams`, -1 for none
    data: jax.Array      # [H, W, bucket] uint32: its wavelets, in stream order
    total: jax.Array     # [H, W] int32: the wavelets of each PE
    done: jax.Array      # [H, W] int32: the wavelets moved so far


class FabricCarry(NamedTuple):
    """The carry of a command's tick loop (`wsejax.engine.tick.run_ticks`)."""

    machine: MachineArrays
    host: HostCarry
    progress: jax.Array  # [] bool: the last tick changed something
    ticks: jax.Array     # [] int32: ticks run


class LoopCarry(NamedTuple):
    """The carry of a lowered runtime loop: the machine, the loop's locals (a DSD local as its
    fields) and the lane masks of the enclosing frame and loop."""

    machine: MachineArrays
    locals: dict
    returned: object
    retval: object
    broken: object
    used: object         # [H, W] int32: iterations the loop nest has run
