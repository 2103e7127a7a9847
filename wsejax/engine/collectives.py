"""The fabric loop's `<collectives_2d>` stage: completes the collectives every PE of a line has
issued (`ir.Collective`; the PEs record them, `engine.lower.collectives`).

Per axis, a line (a row for "x", a column for "y") is complete when each of its healthy PEs
holds a pending record and all records agree on kind, root and count; where they all hold
one but disagree, each PE of the line faults (`diagnostics.collective_mismatch`). For the
complete lines, at once on every PE: each PE's send buffer is read (`L` elements from its
offset, `L` the largest collective buffer of any class), the 32-bit elements move along the
line as MPI's broadcast / scatter / gather / reduce (f32 sums or `fmaxs` maxima, in rank
order from 0) would,
the receive buffers are written, the records cleared and the callback tasks activated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp
from jax import lax

from wsejax import ir, ops
from wsejax.diagnostics import collective_mismatch
from wsejax.engine.machine import Machine, bitview
from wsejax.engine.state import task_bit
from wsejax.fabric import collective_buffers
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.engine.core import Engine

__all__ = ["collectives"]

_KIND, _ROOT, _COUNT, _CB, _SEND, _SEND_AT, _RECV, _RECV_AT = range(len(ir.COLLECTIVE_FIELDS))


def collectives(eng: Engine, m: Machine, healthy):
    """Complete the collectives whose lines have all issued them; returns the machine and
    whether any completed."""
    done_any = jnp.bool_(False)
    for axis in ("x", "y"):
        name = ir.collective_record(axis)
        slots = {low.slot[name] for low in eng.lowerers if name in low.slot}
        if not slots:
            continue
        (slot,) = slots
        m, done = _axis(eng, m, healthy, axis, slot)
        done_any = done_any | done
    return m, done_any


def _lines(a, axis: str):
    """`a` (`[H, W, ...]`) with the lines first: rows for "x", columns for "y" (its own
    inverse)."""
    return a if axis == "x" else jnp.swapaxes(a, 0, 1)


def _axis(eng: Engine, m: Machine, healthy, axis: str, slot: str):
    rec = m.mem[slot].astype(jnp.int32)
    lines = _lines(rec, axis)
    pending = (lines[..., _KIND] != 0) & _lines(healthy, axis)
    full = jnp.all(pending, axis=1)
    head = lines[:, :1, :_CB]
    same = jnp.all(lines[..., :_CB] == head, axis=(1, 2))
    done = full & same
    bad = _lines(jnp.broadcast_to((full & ~same)[:, None], pending.shape), axis)
    code = eng.register_fault(collective_mismatch(axis))
    m.fault = jnp.where((m.fault == 0) & bad, jnp.int32(code), m.fault)
    done_pe = _lines(jnp.broadcast_to(done[:, None], pending.shape), axis)
    slots = sorted({low.slot[s.name] for low in eng.lowerers
                    for s in collective_buffers(low.pe.symbols)})
    mem = {k: m.mem[k] for k in slots}

    def apply():
        out, wm = _moved(eng, m, rec, mem, axis, done)
        new = _written(eng, m, rec, mem, out, wm)
        act = m.active | task_bit(rec[..., _CB], done_pe)
        return new, act, jnp.where(done_pe[..., None], jnp.zeros_like(m.mem[slot]), m.mem[slot])

    new, m.active, m.mem[slot] = lax.cond(jnp.any(done), apply,
                                          lambda: (mem, m.active, m.mem[slot]))
    m.mem.update(new)
    return m, jnp.any(done)


def _class_masks(eng: Engine, m: Machine):
    for c, low in enumerate(eng.lowerers):
        yield low, eng.class_mask(m.tables, c, None)


def _sources(eng: Engine, m: Machine, rec, mem, size: int):
    """`[H, W, size]` uint32: each PE's send buffer from its offset on (bits)."""
    h, w = rec.shape[:2]
    src = jnp.zeros((h, w, size), jnp.uint32)
    k = jnp.arange(size, dtype=jnp.int32)
    for low, cm in _class_masks(eng, m):
        for i, sym in enumerate(collective_buffers(low.pe.symbols)):
            flat = bitview(mem[low.slot[sym.name]].reshape(h, w, -1), sym.dtype, DType.u32)
            idx = jnp.clip(rec[..., _SEND_AT, None] + k, 0, sym.size - 1)
            sel = rec[..., _SEND] == i
            sel = sel if cm is None else sel & cm
            src = jnp.where(sel[..., None], jnp.take_along_axis(flat, idx, axis=2), src)
    return src


def _size(eng: Engine) -> int:
    return max((s.size for low in eng.lowerers for s in collective_buffers(low.pe.symbols)),
               default=1)


def _moved(eng: Engine, m: Machine, rec, mem, axis: str, done):
    """What each PE receives (`[H, W, L]` uint32) and where (`[H, W, L]` bool)."""
    size = _size(eng)
    s = _lines(_sources(eng, m, rec, mem, size), axis)          # [N, P, L]
    first = _lines(rec, axis)[:, 0]
    n, p_count = s.shape[:2]
    kind, root, cnt = (first[:, f, None, None] for f in (_KIND, _ROOT, _COUNT))
    p = jnp.arange(p_count, dtype=jnp.int32)[None, :, None]
    k = jnp.arange(size, dtype=jnp.int32)[None, None, :]
    at_root = p == root
    pick = jnp.broadcast_to(jnp.clip(root, 0, p_count - 1), (n, 1, size))
    from_root = jnp.take_along_axis(s, pick, axis=1)                            # [N, 1, L]
    bcast = jnp.broadcast_to(from_root, s.shape)
    scat = jnp.take_along_axis(jnp.broadcast_to(from_root, s.shape),
                               jnp.clip(p * cnt + k, 0, size - 1), axis=2)
    safe = jnp.maximum(cnt, 1)
    gat = jnp.take_along_axis(s.reshape(n, 1, -1), jnp.clip(
        jnp.minimum(k // safe, p_count - 1) * size + k % safe, 0, p_count * size - 1), axis=2)
    red = _reduced(s, ops.OPS["fadds"].fn, from_zero=True)
    rmax = _reduced(s, ops.OPS["fmaxs"].fn, from_zero=False)
    choices = [(bcast, ~at_root & (k < cnt)), (scat, k < cnt),
               (jnp.broadcast_to(gat, s.shape), at_root & (k < cnt * p_count)),
               (jnp.broadcast_to(red, s.shape), at_root & (k < cnt)),
               (jnp.broadcast_to(rmax, s.shape), at_root & (k < cnt))]
    out = jnp.zeros(s.shape, jnp.uint32)
    wm = jnp.zeros(s.shape, bool)
    for code, (v, where) in enumerate(choices, start=1):
        out = jnp.where(kind == code, v, out)
        wm = jnp.where(kind == code, where, wm)
    return _lines(out, axis), _lines(wm & done[:, None, None], axis)


def _reduced(s, fn, from_zero: bool):
    """`[N, 1, L]` uint32: the f32 elements of `s` (`[N, P, L]` bits) combined by `fn` along
    the line in rank order, from +0 (sums) or from rank 0's elements (maxima)."""
    vals = jnp.swapaxes(bitview(s, DType.u32, DType.f32), 0, 1)
    init, rest = (jnp.zeros_like(vals[0]), vals) if from_zero else (vals[0], vals[1:])
    total, _ = lax.scan(lambda acc, x: (fn(acc, x), None), init, rest)
    return bitview(total, DType.f32, DType.u32)[:, None, :]


def _written(eng: Engine, m: Machine, rec, mem, out, wm) -> dict:
    """`mem` with each PE's receive buffer written where `wm` says."""
    new = dict(mem)
    h, w, size = out.shape
    for low, cm in _class_masks(eng, m):
        for i, sym in enumerate(collective_buffers(low.pe.symbols)):
            slot = low.slot[sym.name]
            flat = new[slot].reshape(h, w, -1)
            kk = jnp.arange(sym.size, dtype=jnp.int32)[None, None, :] - rec[..., _RECV_AT, None]
            idx = jnp.clip(kk, 0, size - 1)
            sel = rec[..., _RECV] == i
            sel = sel if cm is None else sel & cm
            put = sel[..., None] & (kk >= 0) & (kk < size) & jnp.take_along_axis(wm, idx, 2)
            vals = bitview(jnp.take_along_axis(out, idx, axis=2), DType.u32, sym.dtype)
            new[slot] = jnp.where(put, vals, flat).reshape(new[slot].shape)
    return new
