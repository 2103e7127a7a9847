"""A pure-Python reference interpreter of the IR: the oracle for the vectorised engine.

Contract: `Reference(program)` holds one small state per PE (a dict symbol -> numpy array of
the symbol's dtype and shape, the global DSD variables as concrete descriptors, a cycle counter,
a PRNG state, a fault text, the command-stream bit, task bits, and the fabric: an inbox and an
outbox per color, FIFO states, the running asynchronous ops by site, the main thread's
suspended body) and runs host commands on it with plain Python control flow: a command runs
the fabric in rounds until nothing changes (the model of `wsejax.fabric`); in a round the
router and the host move wavelets, then each PE in row-major order advances its asynchronous
ops and resumes its main thread or starts one task. Bodies run one statement at a time, and
every DSD operation one element at a time in order (read the sources' element i, compute,
write element i). A body is a Python generator that yields where a synchronous fabric or FIFO
op cannot go on; an asynchronous op is an object the rounds advance. Nothing here imports or
calls JAX; the element semantics of the DSD operations (spec §8, with the policies documented
in `wsejax.ops`) and of expressions are written out here again over Python numbers and numpy
scalars (`elements`, `scalars`). Floating-point results are computed in double precision and rounded
once to the destination type, which is the correctly rounded IEEE result for +, -, *, / of f32
and f16 operands (double has more than 2p+2 bits), subnormals included.

The semantics it implements, with the engine's choices where the spec leaves room:

- Integers wrap (two's complement); `x / 0 == x % 0 == 0`; division truncates toward zero.
  Shifts: the count is converted to the shifted type; a count >= the width (or negative, for
  signed types) gives 0, or the sign fill for a signed `>>`.
- Casts: float -> int truncates toward zero and saturates, NaN -> 0; int -> int wraps; x -> bool
  is x != 0. Float min/max propagate NaN, and +0 > -0.
- A DSD operation processes `n = min(length of its DSD operands)` elements (1 with none); a
  pointer destination is written at every element, so it keeps the last one (spec 7.7). An
  operation that would touch an address outside its symbol faults before changing anything;
  the fault names the first bad operand, sources in order, then the destination.
- `@map` reads the next element of each DSD input, calls the callback, writes the result, in
  order (spec 8.1); scalar inputs are passed unchanged. A callback may write variables and
  through pointers; each call sees what the calls before it wrote.
- Every loop has a budget: a loop nest (a `for` or `while` with the loops inside it and in
  the functions it calls) runs at most `loop_limit` iterations in all; the loop that would
  start one more faults (`wsejax.diagnostics.loop_ran_past`), so no loop runs on forever.
  In a `@map` callback only while loops count, each element's call on a budget of its own.
- Timing (the engine's model): one cycle per statement other than if/for/while/call, one more
  per runtime `if` condition evaluated, and a DSD operation or `@map` costs its element count
  on top of its one cycle. Statements inside `@map` callbacks cost nothing.
- `<math>` functions are computed in double and rounded once (sqrt, floor, ceil, fscale and
  inv are then exact; exp, log, sin, cos, tanh, pow, invsqrt are correctly rounded in almost
  every case, where the engine uses XLA's approximations, a few ulp away at times).
- `@random16()` advances the 23-bit LFSR x^23 + x^18 + 1 (Fibonacci form, shifting right) by
  128 single-bit steps and returns its low 16 bits.
- Tasks (spec 5.3): a launched function waits for its PE's main thread to be idle, then runs
  first; an idle main thread starts, one per round, its runnable task with the lowest ID (a
  local task: bound, active and not blocked, the activation consumed; a data task: a wavelet
  in its color's inbox, not blocked, no running op reading that color, the wavelet popped and
  split per `fabric.data_task_args`). `@activate`, `@block` and `@unblock` of an ID outside
  0..63 do nothing. An active, unblocked ID with no task bound is picked like the engine's
  scheduler does, runs nothing and keeps its activation, so the PE never goes idle. Past
  `loop_limit` rounds, the PEs still busy (a waiting main thread, a blocked command stream or
  an active, unblocked ID) fault.
- Fabric ops: a fabin source pops one wavelet per element (`fabric.payload_in`), a fabout
  destination appends one (`fabric.payload_out`, with `.index` in the high half under
  wavelet_index_offset); a memory DSD with wavelet_index_offset moves by `.index` 16-bit
  words (an odd `.index` on a 32-bit symbol faults; `.index` missing is a ProgramError). An
  op runs `min(lengths of its non-FIFO DSD operands)` elements as far as its inboxes hold
  wavelets, its outboxes and FIFO destinations room and its FIFO sources data; memory
  operands are range-checked when it starts. A synchronous one suspends its body until done
  (cost 1 + n cycles), an asynchronous one runs on its site's microthread (cost 1 cycle);
  `.activate` / `.unblock` apply on completion (also on memory-only ops). Faults: an async op
  started while its site runs; an op starting on the microthread its `.ut_id` names while
  another running op of the PE names the same one; an op starting to read (write) a color
  another running op reads (writes); a wavelet in an outbox that no route takes to a ramp
  ("nowhere to go"). An op whose `.ut_id` names a blocked microthread (`@block(ut)`, IDs
  0..7) does no element until it is unblocked.
  Fabric and FIFO operands in `@map`, and a call in an expression or @map callback that
  waits on the fabric, are ProgramErrors.
- `<collectives_2d>` (`reference.collectives`, `engine.collectives`): an operation is recorded
  when issued (one cycle, as any statement); between rounds, each row or column whose PEs all
  hold the same one completes at once (the data moves, each PE's callback is activated).
- FIFOs: a ring over the whole buffer symbol (elements of the op's width); a push into an
  empty FIFO activates `activate_push`, a pop from a full one `activate_pop`.
- Commands: `launch` is done when every PE called `unblock_cmd_stream()`; streaming
  `memcpy_h2d` when the host injected every wavelet (as inbox space allows); streaming
  `memcpy_d2h` when it took `l` wavelets from each ROI PE's outbox (it takes no more); copy
  mode copies at once between quiescent states. A command that is not done at quiescence
  raises DeadlockError naming the stuck PEs, their task IDs, what their main thread waits in
  and their non-empty queues; wavelets a failed H2D did not inject stay on the host.

A PE that faults stops where it faulted and runs nothing more (its memory is then whatever the
steps before the fault left; the engine, which keeps running the PE masked, leaves different
garbage, so a faulted PE's memory and clock are not comparable); the router still moves its
outbox and fills its inboxes. Printed lines are collected in the order PEs run them here,
statement by statement (all PEs) in the engine. When PEs fault with different texts,
FabricFault names the first text in row-major PE order (the engine: the first it traced).

Known differences from the engine, where the engine departs from the spec (each has a minimal
repro, xfail, in tests/test_reference.py or tests/test_reference_fabric.py):
- a runtime DSD length larger than the symbol is cut to the symbol's size there;
- `@map` reads every input before writing any output there;
- f32 expressions are not always rounded step by step there: XLA may contract `a + b * c` into
  an FMA and reassociates constants (`(x + 1.5) - 1.5` becomes `x`);
- exp, log, sin, cos, tanh differ by an ulp or so there (XLA's approximations);
- `@random16()`/`reset_cycles()` inside a `@map` callback act once for all elements (and for
  every PE) there; with effects in a `while` condition they follow stale masks there;
- with `matvec_loops=True`, `@fmacs` loops sum in another order there;
- the seeded random-order task scheduling (`schedule_seed`) is not modelled here;
- a launched function runs there even while its PE's main thread waits in a task (spec
  12.5: it runs in a task context, so it waits for the main thread here).

Example:
    >>> from wsejax import dsl as csl
    >>> def pe():
    ...     a = csl.var("a", csl.f32[4], [1.0, 2.0, 3.0, 4.0])
    ...     d = csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=4)
    ...     @csl.fn
    ...     def run():
    ...         csl.fadds(d, d, 0.5)
    ...         csl.unblock_cmd_stream()
    ...     csl.export_symbol(a)
    ...     csl.export_symbol(run)
    >>> def layout():
    ...     csl.set_rectangle(1, 1)
    ...     csl.set_tile_code(0, 0, pe)
    ...     csl.export_name("a", csl.pointer(csl.f32), True)
    ...     csl.export_name("run", csl.fn_type())
    >>> ref = Reference(csl.compile(layout))
    >>> ref.launch("run")
    >>> ref.memory(0, 0)["a"].tolist(), int(ref.cycles[0, 0])
    ([1.5, 2.5, 3.5, 4.5], 6)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from wsejax import ir
from wsejax.diagnostics import DEFAULT_LOOP_LIMIT
from wsejax.fabric import QUEUE_CAPACITY
from wsejax.reference.collectives import CollectiveInterpreter
from wsejax.reference.config import ConfigInterpreter
from wsejax.reference.dsds import DsdInterpreter
from wsejax.reference.elements import ELEMENT_OPS
from wsejax.reference.fpexc import FpExcInterpreter
from wsejax.reference.host import HostCommands
from wsejax.reference.interp import Interpreter
from wsejax.reference.pe import PAYLOAD, PE
from wsejax.reference.pointers import PointerInterpreter
from wsejax.reference.scheduler import Scheduler
from wsejax.reference.switched import SwitchedRouter
from wsejax.reference.tile_status import TileStatusInterpreter
from wsejax.routes import routes_table, source_colors

__all__ = ["DEFAULT_LOOP_LIMIT", "ELEMENT_OPS", "Reference"]



class Reference(HostCommands, Scheduler, SwitchedRouter, DsdInterpreter, PointerInterpreter,
                Interpreter, ConfigInterpreter, CollectiveInterpreter, TileStatusInterpreter,
                FpExcInterpreter):
    """Runs a Program one PE at a time, statement by statement, element by element.

    Every IR statement, expression and DSD expression class has its handler here,
    `stmt_<Class>`, `expr_<Class>` or `dsd_<Class>` (as in the engine's `Lowerer`).

    Args:
      program: the compiled Program.
      loop_limit: iterations after which a runtime `while` loop faults, and scheduling rounds
        after which a command whose PEs are still busy faults them.
      queue_capacity: wavelets each inbox and outbox holds.

    Attributes:
      output: lines printed by `<simprint>` (`PE(x,y): ` prefixed where the print asks).
    """

    def __init__(self, program: ir.Program, *, loop_limit: int = DEFAULT_LOOP_LIMIT,
                 queue_capacity: int = QUEUE_CAPACITY):
        if queue_capacity < 1:
            raise ValueError(f"queue_capacity must be at least 1, got {queue_capacity}")
        self.program = program
        self.loop_limit = loop_limit
        self.queue_capacity = queue_capacity
        self.output: list[str] = []
        self._handlers: dict[tuple[str, type], Callable | None] = {}
        self._pes = [[PE(program, x, y) for x in range(program.width)]
                     for y in range(program.height)]
        self._all = [pe for row in self._pes for pe in row]
        self._streams = {int(c): kind for c, kind in program.streams}
        # color sent on -> {flat index of a source PE: (PE, color received) of the ramps it
        # feeds} (with color swapping, a ramp may receive a wavelet as the other color of a pair)
        self._dests: dict[int, dict[int, list[tuple[PE, int]]]] = {}
        for color, routes in program.resolved.items():
            table = routes_table(routes)
            sent = source_colors(routes)
            for (x, y), col in zip(routes.sources.tolist(), sent.tolist()):
                self._dests.setdefault(col, {}).setdefault(x + y * program.width, [])
            for (y, x), src in np.ndenumerate(routes.dest_source):
                if src >= 0:
                    self._dests[int(sent[src])][int(table[y, x])].append(
                        (self._pes[y][x], int(color)))
        self._init_switched()
        self._h2d: tuple | None = None   # (color, {PE: deque of wavelets the host still holds})
        self._d2h: tuple | None = None   # (color, l, {PE: list of wavelets received})

    @property
    def cycles(self) -> np.ndarray:
        """Each PE's cycle counter. `[H, W] uint32`"""
        return np.array([[pe.cycles & 0xFFFFFFFF for pe in row] for row in self._pes],
                        np.uint32)

    @property
    def faults(self) -> dict[tuple[int, int], str]:
        """The fault text of each PE that faulted, by `(x, y)`."""
        return {(pe.x, pe.y): pe.fault for row in self._pes for pe in row if pe.fault}

    def memory(self, x: int, y: int) -> dict[str, np.ndarray]:
        """A copy of PE (x, y)'s symbols."""
        return {name: arr.copy() for name, arr in self._pes[y][x].mem.items()}

    def set_symbol(self, x: int, y: int, name: str, values) -> None:
        """Overwrite PE (x, y)'s symbol `name` with `values` (its element type, any shape)."""
        mem = self._pes[y][x].mem[name]
        mem[...] = np.asarray(values).astype(mem.dtype).reshape(mem.shape)

    def queues(self, x: int, y: int) -> dict[str, dict[int, list[int]]]:
        """PE (x, y)'s non-empty queues: `{"inbox": {color: wavelets}, "outbox": {...}}`."""
        pe = self._pes[y][x]
        return {name: {c: [w & PAYLOAD for w in q] for c, q in sorted(boxes.items()) if q}
                for name, boxes in (("inbox", pe.inbox), ("outbox", pe.outbox))}
