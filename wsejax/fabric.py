"""The fabric model: how wavelets move, who consumes them, and when a command is done.

Both the JAX engine and the reference interpreter follow these rules; the helpers below are
the parts they share. Nothing here imports JAX.

Queues
    Every PE has an *inbox* for each color that arrives at its ramp (wavelets a consumer has
    not taken yet) and an *outbox* for each color it sends on (wavelets its fabric outputs
    sent and the router has not moved yet). Both are ring buffers of 32-bit payloads with a
    fixed capacity (`queue_capacity`, default `QUEUE_CAPACITY` = 8: the deepest hardware
    queue, spec 2; WSE-2 input queues hold 2 to 6 words, and routers buffer more on the
    way). Nothing is ever dropped: a full queue stops its producer (back-pressure).

Router
    Routes are resolved at load time into, per color, the source PE of each receiving ramp.
    A source's outbox moves as many wavelets as *every* one of its destinations can take
    (multicast keeps the copies in step), in order. A wavelet in an outbox whose color has no
    route from that PE's ramp is a fault ("nowhere to go") at that PE.
    memcpy's streaming colors are routed by memcpy: an H2D color feeds each PE's inbox from
    the host, and a D2H color drains each PE's outbox to the host (spec 12.4).

Consumers of an inbox (spec 5.2)
    A running operation with a fabric input on that color takes wavelets first. Otherwise a
    data task bound to the color runs once per wavelet, when its ID is not blocked; the
    wavelet is popped when the task starts and split into its arguments by
    `data_task_args`. Otherwise wavelets wait.

Operations with fabric or FIFO operands
    Element i reads its fabric input's next wavelet and writes its fabric output's next
    slot; `payload_in` / `payload_out` convert between wavelets and 16- or 32-bit element
    bits (spec 7.4). An op runs `min(lengths of its DSD operands)` elements (spec 7.9); a
    FIFO operand does not bound it. An op advances as far as its inputs hold wavelets and
    its outputs hold free slots, and resumes later. An asynchronous op (`.async = true`)
    runs on the microthread of its site: the issuing task goes on at once, and on
    completion the op applies `.activate` / `.unblock`. A synchronous op with a fabric or
    FIFO operand stalls its PE's main thread until it completes; no other task runs on that
    PE meanwhile, while microthreads and the router go on. Starting an async op whose site is
    still running is a fault.

Control wavelets (spec 6.6)
    A fabout DSD with `.control = true` sends control wavelets: a 32-bit payload marked as
    control, kept in order with the color's data wavelets. At a receiving PE a control
    wavelet at the front of its inbox is never taken as data: data tasks and fabric inputs
    take only the data wavelets before it. It activates the control task whose ID is in the
    payload's bits 16..21 (`control_entry`) once the arrival channel is unblocked (wse2: the
    color's ID; wse3: the input queue bound to the color), and is popped when that task
    starts, its parameters splitting the payload as a data task's do. One whose current
    command has ce_ignore set (`control_ignored`), or that names no entrypoint
    (`NO_ENTRYPOINT`), leaves the inbox without running anything; one naming an ID that no
    control task of the PE is bound to is a fault. Routers execute the commands only on colors
    with switches or teardown (`wsejax.switches`).

Microthreads (wse3, spec 5.2, 5.4)
    An op whose config names a microthread (`.ut_id`) runs on it: starting it while another
    op of the PE still runs on that microthread is a fault (running ops must not share one),
    and while the microthread is blocked (`@block(ut)`) its op does no element. An op
    without `.ut_id` runs on a microthread of its own (its site's slot), which no `@block`
    names.

Operations ended by control wavelets (spec 5.4)
    A running operation with `.on_control` that reads a color takes a control wavelet at the
    front of that color's inbox (once the data before it are read) instead of the rules
    above: the operation ends there (its completion hooks fire as on a normal end) and
    `.on_control`'s `.activate` / `.unblock` acts. The SDK does not say whether the wavelet
    is consumed [U]; here it is, so the control task it names does not run.

FIFOs
    A ring buffer over the whole of its buffer symbol: a destination FIFO pushes at the tail,
    a source pops from the head; an op waits while the FIFO is full (push) or empty (pop).
    A push into an empty FIFO activates `activate_push`; a pop from a full one activates
    `activate_pop`.

Main thread and scheduling (spec 5.3)
    A PE whose main thread is idle picks, among its runnable task IDs (a local task: active
    and not blocked; a data task: a waiting wavelet, not blocked, no running fabric input on
    its color), the lowest ID; the seeded random mode picks any. A local task's activation
    is consumed when it starts.

Timing (the `<time>` clock)
    One cycle per statement and one per element of a synchronous DSD op, fabric or not.
    Waiting costs nothing; an async op's elements run on the microthread and cost nothing.

Collectives (`<collectives_2d>`, `ir.Collective`)
    No wavelets: a PE records the collective it issues (its buffers found among
    `collective_buffers`); once each PE of its row (x axis) or column (y axis) holds one and
    they agree on operation, root and count, the data moves at once, as MPI's would, and each
    PE's callback task is activated. Completing one costs no cycles.

Commands (spec 12.5)
    Host commands run in order. Each runs the fabric until no PE, microthread, router or host
    transfer can make progress (quiescence), then checks its condition:
    - launch: every PE has called `unblock_cmd_stream()`;
    - streaming H2D: every wavelet was injected into its PE's inbox;
    - streaming D2H: every PE of the region sent its `l` wavelets;
    - copy-mode memcpy: copies between quiescent states.
    A command whose condition fails at quiescence is a deadlock (DeadlockError names the
    stuck PEs, their tasks and their non-empty queues).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_COMMANDS", "NO_ENTRYPOINT", "QUEUE_CAPACITY", "collective_buffers", "command_bits",
           "control_entry", "control_ignored", "control_payload", "data_task_args", "payload_in",
           "payload_out"]

QUEUE_CAPACITY = 8

NO_ENTRYPOINT = 31          # a control payload's task ID field when it activates no task


def command_bits(k: int) -> tuple[int, int]:
    """Where command k (0..7) of a control payload sits: the first bit of its 2-bit opcode
    and its ce_ignore bit (spec 6.6: packed from bit 22, three bits each, modulo 30)."""
    first = (22 + 3 * k) % 30
    return first, (first + 2) % 30


MAX_COMMANDS = 8            # commands a control payload carries


def control_payload(entry: int = NO_ENTRYPOINT, commands=(), ignore_rest: bool = False) -> int:
    """A control wavelet's payload (spec 6.6): it activates control task `entry`, and carries
    `commands`, `(opcode, ce_ignore)` pairs (at most 8); the commands after them are NOPs
    whose ce_ignore is `ignore_rest`. Raises ValueError past 8 commands."""
    if len(commands) > MAX_COMMANDS:
        raise ValueError(f"a control payload holds 0 to {MAX_COMMANDS} commands, got "
                         f"{len(commands)}")
    bits = (entry & 0x3F) << 16
    for k in range(MAX_COMMANDS):
        at, ign = command_bits(k)
        if k < len(commands):
            op, ignore = commands[k]
            bits |= (int(op) & 3) << at | int(bool(ignore)) << ign
        else:
            bits |= int(bool(ignore_rest)) << ign
    return bits


def control_entry(payload):
    """The control task ID a control payload activates (bits 16..21)."""
    return (payload >> 16) & 0x3F


def control_ignored(payload):
    """Whether a control payload's current command keeps it from the CE (its ce_ignore)."""
    return ((payload >> command_bits(0)[1]) & 1) != 0


def payload_out(bits: np.ndarray, width: int, index=0):
    """The 32-bit wavelet carrying one element's raw `bits` (`width` 16 or 32): a 16-bit
    value rides in the low half, with `index` (the op's `.index` under
    wavelet_index_offset, else 0) in the high half."""
    if width == 32:
        return bits.astype(np.uint32) if hasattr(bits, "astype") else np.uint32(bits)
    low = bits.astype(np.uint32) & 0xFFFF if hasattr(bits, "astype") else np.uint32(bits) & 0xFFFF
    return low | (np.uint32(index) & 0xFFFF) << 16


def payload_in(wavelet, width: int):
    """The raw element bits a `width`-bit op reads from a wavelet: all 32 bits, or the low
    half (the index half is ignored)."""
    if width == 32:
        return wavelet
    return wavelet & 0xFFFF


def data_task_args(widths: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """How a data task's parameters split its wavelet (spec 5.1): `(shift, width)` per
    parameter, for parameter widths `widths`. Raises ValueError for other signatures."""
    if widths == (32,):
        return ((0, 32),)
    if widths == (16,):
        return ((0, 16),)
    if widths == (16, 16):
        return ((0, 16), (16, 16))
    raise ValueError("a data task takes one 32-bit argument, one 16-bit argument, or two "
                     f"16-bit arguments (data, index); this one takes {len(widths)} of "
                     f"{', '.join(str(w) for w in widths) or 'no'} bits")


def collective_buffers(symbols) -> list:
    """The symbols a `<collectives_2d>` buffer may lie in (`ir.Collective`), in the order a
    pending collective's record numbers them: the arrays of 32-bit elements, the library's own
    records (`%c2d.*`) aside."""
    return [s for s in symbols if s.dtype.nbytes == 4 and not s.dtype.is_wide
            and not s.name.startswith("%c2d.")]
