"""The fabric arrays of the state (`FabricState.fab`), and the wavelet queues as ring buffers.

Contract. `FabricArrays` is a JAX pytree of named fields: the main threads' program counters,
the counters, the launch requests, and typed records per color (`Ring`), FIFO (`FifoCounts`),
microthread slot (`Slot`), waiting body's frame, queue bound at run time, `@queue_flush` and
filter. The records are mutable while a tick or a body is traced (`Machine.fab`);
`FabricArrays.copy` gives fresh records over the same arrays, for a new trace.

Wavelets live in per-(PE, color) ring buffers: `inbox[color]` (what the router delivers to the
PE) and `outbox[color]` (what the PE sends). The ring functions read a `Ring`, and the mutating
ones (`ring_pop`, `ring_push`) update it. Payload conversion follows
`wsejax.fabric.payload_in` / `payload_out`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ir
from wsejax.engine import cb16
from wsejax.types import DType, u32

__all__ = ["FLUSHED", "FLUSH_PENDING", "FabricArrays", "FifoCounts", "MAX_CONTROL_CAPACITY",
           "NO_FLUSH", "PICK_BY_SELECT", "Ring", "Slot", "from_payload", "pick",
           "ring_control", "ring_data", "ring_head_advance", "ring_head_control", "ring_peek",
           "ring_pop", "ring_push", "to_payload", "uses_ut_blocking"]

# `@queue_flush` of a queue: not watched, waiting for it to be empty, or flushed (the teardown
# task was activated for it, until `queue_flush.exit`)
NO_FLUSH, FLUSH_PENDING, FLUSHED = 0, 1, 2
PICK_BY_SELECT = 32     # up to this many source entries, `pick` selects instead of gathering
# a ring's control marks are one uint32 per PE: capacities stay below 32
MAX_CONTROL_CAPACITY = 31


# ------------------------------------------------------------------------------------------------
# The records


@dataclass
class Ring:
    """One color's queue on every PE."""

    buf: jax.Array              # [H, W, cap] uint32: the wavelets, from slot `head` on
    head: jax.Array             # [H, W] int32: the slot of the oldest wavelet
    count: jax.Array            # [H, W] int32: the wavelets held
    ctl: jax.Array | None = None  # [H, W] uint32: bit s marks slot s a control wavelet;
                                  #   None on a color that carries none
    adv: jax.Array | None = None  # [H, W] uint32: bit s marks slot s the last wavelet of a
                                  #   `.advance_switch` fabout; None on a color without any


@dataclass
class FifoCounts:
    """A FIFO's place in its buffer symbol's memory."""

    head: jax.Array             # [H, W] int32
    count: jax.Array            # [H, W] int32
    # [H, W] int32 each: what remains of a set read / write length, -1 never set
    # (`ir.SetFifoLength`)
    read_len: jax.Array = None
    write_len: jax.Array = None


@dataclass
class Slot:
    """The microthread slot of one fabric or async op (`SiteInfo`)."""

    run: jax.Array              # [H, W] bool: the op runs
    pos: jax.Array              # [H, W] int32: the elements done
    fields: dict = field(default_factory=dict)  # captured field -> [H, W]: those kept per PE


@dataclass
class FabricArrays:
    """The fabric side of the state. Defaults make the empty record a body is discovered
    with (no fabric arrays yet)."""

    pc: jax.Array = None        # [H, W] int32: the block a waiting body is at, 0 idle
    runs: jax.Array = None      # [H, W] uint32: the tasks each PE started
    ticks: jax.Array = None     # [] int32: the ticks run, over all commands
    wavelets: jax.Array = None  # [] uint32: the wavelets moved, over all commands
    launch: jax.Array = None    # [H, W] int32: 1 + the launchable requested, 0 none
    args: dict = field(default_factory=dict)     # launchable -> its arguments, [H, W] each
    inbox: dict = field(default_factory=dict)    # color -> Ring
    outbox: dict = field(default_factory=dict)   # color -> Ring
    fifos: dict = field(default_factory=dict)    # (class, FIFO name) -> FifoCounts
    slots: dict = field(default_factory=dict)    # (class, site) -> Slot
    frames: dict = field(default_factory=dict)   # (entry pc, local) -> [H, W] of its type
    queue_colors: dict = field(default_factory=dict)  # QueueColor.key -> [H, W] int32
    flushes: dict = field(default_factory=dict)  # (queue kind, queue) -> [H, W] int32
    filters: dict = field(default_factory=dict)  # color -> {"cnt", "lim", "phase"}: [H, W]
    ut_blocked: jax.Array | None = None  # [H, W] uint32: bit k set = microthread k blocked
    switched: dict = field(default_factory=dict)  # color -> its routers (`engine.switched`)

    def copy(self) -> FabricArrays:
        """Fresh records over the same arrays."""
        return jax.tree_util.tree_map(lambda x: x, self)


for _cls in (Ring, FifoCounts, Slot, FabricArrays):
    jax.tree_util.register_dataclass(
        _cls, data_fields=[f.name for f in _cls.__dataclass_fields__.values()], meta_fields=[])


def uses_ut_blocking(pe: ir.PeProgram) -> bool:
    """Whether PE program `pe` blocks or unblocks a microthread (at start-up or at run time)."""
    return bool(pe.blocked_uts) or any(
        type(s) is ir.TaskCtl and s.target == "ut"
        for f in pe.functions for s in ir.walk_stmts(f.body))


# ------------------------------------------------------------------------------------------------
# The rings


def pick(src, idx):
    """`out[..., p] = src[..., idx[..., p]]` for indices in `[0, src.shape[-1])`: along a short
    last axis a select per source entry, which XLA:CPU runs faster than a gather."""
    if src.shape[-1] > PICK_BY_SELECT:
        return jnp.take_along_axis(src, idx, axis=-1)
    if jnp.issubdtype(src.dtype, jnp.integer):
        # integers: one compare against every entry and a sum of the one hit, a handful of
        # ops where a select per entry costs several each
        hit = idx[..., None] == jnp.arange(src.shape[-1], dtype=idx.dtype)
        return jnp.sum(jnp.where(hit, src[..., None, :], src.dtype.type(0)), axis=-1,
                       dtype=src.dtype)
    out = jnp.broadcast_to(src[..., :1], idx.shape)
    for s in range(1, src.shape[-1]):
        out = jnp.where(idx == s, src[..., s:s + 1], out)
    return out


def ring_peek(ring: Ring, n: int):
    """The first n wavelets of the ring, oldest first (`[H, W, n]`; past its count, garbage)."""
    cap = ring.buf.shape[-1]
    j = jnp.arange(n, dtype=jnp.int32)
    return pick(ring.buf, (ring.head[..., None] + j) % cap)


def ring_pop(ring: Ring, k) -> None:
    """Drop the first k (`[H, W]`) wavelets of the ring."""
    cap = ring.buf.shape[-1]
    ring.head = (ring.head + k) % cap
    ring.count = ring.count - k


def ring_push(ring: Ring, k, value_at, control_at=None, advance_at=None) -> None:
    """Append k (`[H, W]`) wavelets to the ring: the j-th appended one is `value_at(j)`, where
    `j` is `[H, W, cap]` (each slot's place after the tail; values where j >= k are unused).
    On a ring that carries control wavelets, `control_at(j)` (nonzero: a control wavelet)
    marks them; None appends data wavelets. On a ring with advance marks, `advance_at(j)`
    (nonzero: the switch advances after it) marks them likewise."""
    cap = ring.buf.shape[-1]
    tail = ring.head + ring.count
    j = (jnp.arange(cap, dtype=jnp.int32) - tail[..., None]) % cap
    new = j < k[..., None]
    ring.buf = jnp.where(new, value_at(j), ring.buf)
    ring.count = ring.count + k
    if ring.ctl is not None:
        bit = jnp.uint32(1) << jnp.arange(cap, dtype=jnp.uint32)
        marked = new if control_at is None else new & (control_at(j) != 0)
        clear = jnp.sum(jnp.where(new, bit, 0), axis=-1, dtype=jnp.uint32)
        mark = jnp.sum(jnp.where(marked, bit, 0), axis=-1, dtype=jnp.uint32) \
            if control_at is not None else jnp.uint32(0)
        ring.ctl = (ring.ctl & ~clear) | mark
    if ring.adv is not None:
        ring.adv = _marked(ring.adv, new, None if advance_at is None else advance_at(j))


def _marked(marks, new, flags):
    """`marks` with the bits of the `new` slots set where `flags` is nonzero (None: cleared)."""
    cap = new.shape[-1]
    bit = jnp.uint32(1) << jnp.arange(cap, dtype=jnp.uint32)
    clear = jnp.sum(jnp.where(new, bit, 0), axis=-1, dtype=jnp.uint32)
    if flags is None:
        return marks & ~clear
    mark = jnp.sum(jnp.where(new & flags.astype(bool), bit, 0), axis=-1, dtype=jnp.uint32)
    return (marks & ~clear) | mark


def ring_head_advance(ring: Ring):
    """Whether the oldest wavelet of the ring carries an advance mark (`[H, W]` bool)."""
    if ring.adv is None:
        return jnp.zeros(ring.count.shape, bool)
    return (ring.count > 0) & (((ring.adv >> ring.head.astype(jnp.uint32)) & 1) != 0)


def ring_control(ring: Ring):
    """Bit j set where the j-th wavelet of the ring (oldest first) is a control wavelet
    (`[H, W]` uint32; bits past its count are stale), or None for a ring without any."""
    if ring.ctl is None:
        return None
    cap = ring.buf.shape[-1]
    head = ring.head.astype(jnp.uint32)
    marks = ring.ctl
    return ((marks >> head) | (marks << (jnp.uint32(cap) - head))) \
        & jnp.uint32((1 << cap) - 1)


def ring_data(ring: Ring):
    """The data wavelets at the front of the ring, before its first control wavelet
    (`[H, W]` int32): what a data task or a fabin operand may take."""
    n = ring.count
    rot = ring_control(ring)
    if rot is None:
        return n
    # trailing zeros of rot: the popcount of the bits below its lowest set bit (32 for none)
    lead = lax.population_count((rot & (~rot + jnp.uint32(1))) - jnp.uint32(1))
    return jnp.minimum(n, lead.astype(jnp.int32))


def ring_head_control(ring: Ring):
    """Whether the oldest wavelet of the ring is a control wavelet (`[H, W]` bool)."""
    rot = ring_control(ring)
    if rot is None:
        return jnp.zeros(ring.count.shape, bool)
    return (ring.count > 0) & ((rot & 1) != 0)


# ------------------------------------------------------------------------------------------------
# Payloads


def to_payload(res, have: DType, index):
    """Wavelets carrying `res` (of type `have`): 32-bit values whole, 16-bit values in the low
    half with `index` in the high half (`wsejax.fabric.payload_out`)."""
    if have.bits == 32:
        return lax.bitcast_convert_type(res, jnp.uint32) if res.dtype != u32.np else res
    low = cb16.to_bits16(res, have).astype(jnp.uint32)
    index = jnp.asarray(index, jnp.uint32)
    if index.ndim:
        index = index[..., None]
    return low | ((index & 0xFFFF) << 16)


def from_payload(w, want: DType):
    """Element values of type `want` from wavelets `w` (`wsejax.fabric.payload_in`)."""
    if want.bits == 32:
        return lax.bitcast_convert_type(w, want.np) if want.np != np.uint32 else w
    return cb16.from_bits16((w & 0xFFFF).astype(jnp.uint16), want)
