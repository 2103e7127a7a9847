"""The fabric arrays in `FabricState.fab`: their keys, and the wavelet queues as ring buffers.

Contract. Wavelets live in per-(PE, color) ring buffers: `in{color}` (what the router delivers
to the PE) and `out{color}` (what the PE sends), each `.buf` `[H, W, cap]` uint32 with `.head`
and `.count` `[H, W]` int32, and on a color that carries control wavelets `.ctl` `[H, W]`
uint32, bit s marking the wavelet in slot s as a control wavelet. The ring functions read a
ring `q` of a fab dict, and the mutating ones (`ring_pop`, `ring_push`) update the dict they
are given. Payload conversion follows `wsejax.fabric.payload_in` / `payload_out`.

The other entries: a microthread slot's fields under `slot_key(cls, site)`, a queue bound at
run time under `queue_key`, `@queue_flush` state under `flush_key`, the blocked microthreads
under `UT_BLOCKED`.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ir
from wsejax.types import DType, u32

__all__ = ["FLUSHED", "FLUSH_PENDING", "MAX_CONTROL_CAPACITY", "NO_FLUSH", "PICK_BY_SELECT",
           "UT_BLOCKED", "flush_key", "from_payload", "pick", "queue_key", "ring_control",
           "ring_data", "ring_head_control", "ring_peek", "ring_pop", "ring_push", "slot_key",
           "to_payload", "uses_ut_blocking"]

UT_BLOCKED = "utblocked"   # fab key: `[H, W]` uint32, bit k set = microthread k blocked
NO_FLUSH, FLUSH_PENDING, FLUSHED = 0, 1, 2
PICK_BY_SELECT = 32     # up to this many source entries, `pick` selects instead of gathering
# a ring's control marks are one uint32 per PE: capacities stay below 32
MAX_CONTROL_CAPACITY = 31


# ------------------------------------------------------------------------------------------------
# Keys


def slot_key(cls: int, site: int) -> str:
    return f"slot{cls}.{site}"


def queue_key(color: ir.QueueColor) -> str:
    """The state entry (`[H, W]` int32) of the color a queue is bound to now."""
    return f"{color.key}.color"


def flush_key(kind: str, n: int) -> str:
    """The state entry (`[H, W]` int32) of `@queue_flush` of a queue: NO_FLUSH,
    FLUSH_PENDING (waiting for it to be empty) or FLUSHED (the teardown task was activated
    for it, until `queue_flush.exit`)."""
    return f"q{kind[0]}{n}.flush"


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
    out = jnp.broadcast_to(src[..., :1], idx.shape)
    for s in range(1, src.shape[-1]):
        out = jnp.where(idx == s, src[..., s:s + 1], out)
    return out


def ring_peek(fab: dict, q: str, n: int):
    """The first n wavelets of ring q, oldest first (`[H, W, n]`; past its count, garbage)."""
    cap = fab[q + ".buf"].shape[-1]
    j = jnp.arange(n, dtype=jnp.int32)
    return pick(fab[q + ".buf"], (fab[q + ".head"][..., None] + j) % cap)


def ring_pop(fab: dict, q: str, k) -> None:
    """Drop the first k (`[H, W]`) wavelets of ring q."""
    cap = fab[q + ".buf"].shape[-1]
    fab[q + ".head"] = (fab[q + ".head"] + k) % cap
    fab[q + ".count"] = fab[q + ".count"] - k


def ring_push(fab: dict, q: str, k, value_at, control_at=None) -> None:
    """Append k (`[H, W]`) wavelets to ring q: the j-th appended one is `value_at(j)`, where
    `j` is `[H, W, cap]` (each slot's place after the tail; values where j >= k are unused).
    On a ring that carries control wavelets, `control_at(j)` (nonzero: a control wavelet)
    marks them; None appends data wavelets."""
    cap = fab[q + ".buf"].shape[-1]
    tail = fab[q + ".head"] + fab[q + ".count"]
    j = (jnp.arange(cap, dtype=jnp.int32) - tail[..., None]) % cap
    new = j < k[..., None]
    fab[q + ".buf"] = jnp.where(new, value_at(j), fab[q + ".buf"])
    fab[q + ".count"] = fab[q + ".count"] + k
    if q + ".ctl" in fab:
        bit = jnp.uint32(1) << jnp.arange(cap, dtype=jnp.uint32)
        marked = new if control_at is None else new & (control_at(j) != 0)
        clear = jnp.sum(jnp.where(new, bit, 0), axis=-1, dtype=jnp.uint32)
        mark = jnp.sum(jnp.where(marked, bit, 0), axis=-1, dtype=jnp.uint32) \
            if control_at is not None else jnp.uint32(0)
        fab[q + ".ctl"] = (fab[q + ".ctl"] & ~clear) | mark


def ring_control(fab: dict, q: str):
    """Bit j set where the j-th wavelet of ring q (oldest first) is a control wavelet
    (`[H, W]` uint32; bits past its count are stale), or None for a ring without any."""
    if q + ".ctl" not in fab:
        return None
    cap = fab[q + ".buf"].shape[-1]
    head = fab[q + ".head"].astype(jnp.uint32)
    m = fab[q + ".ctl"]
    return ((m >> head) | (m << (jnp.uint32(cap) - head))) & jnp.uint32((1 << cap) - 1)


def ring_data(fab: dict, q: str):
    """The data wavelets at the front of ring q, before its first control wavelet
    (`[H, W]` int32): what a data task or a fabin operand may take."""
    n = fab[q + ".count"]
    rot = ring_control(fab, q)
    if rot is None:
        return n
    # trailing zeros of rot: the popcount of the bits below its lowest set bit (32 for none)
    lead = lax.population_count((rot & (~rot + jnp.uint32(1))) - jnp.uint32(1))
    return jnp.minimum(n, lead.astype(jnp.int32))


def ring_head_control(fab: dict, q: str):
    """Whether the oldest wavelet of ring q is a control wavelet (`[H, W]` bool)."""
    rot = ring_control(fab, q)
    if rot is None:
        return jnp.zeros(fab[q + ".count"].shape, bool)
    return (fab[q + ".count"] > 0) & ((rot & 1) != 0)


# ------------------------------------------------------------------------------------------------
# Payloads


def to_payload(res, have: DType, index):
    """Wavelets carrying `res` (of type `have`): 32-bit values whole, 16-bit values in the low
    half with `index` in the high half (`wsejax.fabric.payload_out`)."""
    if have.bits == 32:
        return lax.bitcast_convert_type(res, jnp.uint32) if res.dtype != u32.np else res
    low = lax.bitcast_convert_type(res, jnp.uint16).astype(jnp.uint32)
    index = jnp.asarray(index, jnp.uint32)
    if index.ndim:
        index = index[..., None]
    return low | ((index & 0xFFFF) << 16)


def from_payload(w, want: DType):
    """Element values of type `want` from wavelets `w` (`wsejax.fabric.payload_in`)."""
    if want.bits == 32:
        return lax.bitcast_convert_type(w, want.np) if want.np != np.uint32 else w
    return lax.bitcast_convert_type((w & 0xFFFF).astype(jnp.uint16), want.np)
