"""Banded ticks: a tick over the band of columns where something can happen.

Contract. A tick changes only the PEs that have work on it (`column_work`: a main thread in a
waiting body, a launch request, a runnable task, a wavelet in an inbox or an outbox, a running
microthread, a `@queue_flush` waiting for its queue, a host stream wavelet still to move) and
the PEs a route delivers to from them, at most `Band.reach` columns away (the router collapses
a route to one tick, so the reach is that of its tables, not one hop). When all of those lie
in a window of `Band.width` columns inside the fabric, `banded_tick` runs the ordinary tick on
that window alone: every per-PE array (`[H, W, ...]`: the machine, its tables, the host
stream) is cut to the window with `lax.dynamic_slice`, the lowerers trace over `(H, width)`
lanes, the router reads its tables translated to the window (a source outside it sends
nothing: it has nothing to send), and the window is written back. Outside the window the
tick would have changed nothing, so the result is bit-identical to the full tick; the
per-PE clocks only advance where a PE runs, and the tick counters are global.

A band is planned (`plan_band`) only where the tick is local in that sense: one device (no
mesh), no `<collectives_2d>` (a row or a column at once), no switched colors and no wavelet
filters (their tables are static per-PE numpy), the deterministic schedule (the random one
draws over the whole grid), a fabric wider than the band, and a band of at least
`2 * reach + 1` columns (one column with work and its reach on each side).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax.engine.machine import Machine
from wsejax.engine.rings import FLUSH_PENDING

if TYPE_CHECKING:
    from wsejax.engine.core import Engine
    from wsejax.engine.machine import HostCarry

__all__ = ["AUTO_WIDTH", "PATIENCE", "Band", "band_origin", "band_while_fit", "banded_tick",
           "column_work", "full_until_fit", "plan_band", "route_reach"]

AUTO_WIDTH = 16     # the band of a fabric at least twice as wide, unless its routes reach far

# full ticks in a row whose work fits the band before a command turns to banded ticks (each
# turn is a return to the host: a higher number keeps a program whose work fits the band
# only now and then on full ticks, at the price of full ticks where banded ones would do)
PATIENCE = 4


@dataclass(frozen=True)
class Band:
    """The static shape of the banded tick of an `Engine`."""

    width: int          # columns of the band
    reach: int          # the most columns between a route's source and its destination


def route_reach(gather: np.ndarray) -> int:
    """The most columns between a destination and its source over the router's `gather`
    (`[H, W, C]` rows of one shard of the whole grid; a row past `H * W` is a partner
    color's PE, numbered the same)."""
    h, w = gather.shape[:2]
    ys, xs, cs = np.nonzero(gather >= 0)
    if not xs.size:
        return 0
    src = gather[ys, xs, cs] % (h * w)
    return int(np.max(np.abs(src % w - xs)))


def plan_band(eng: Engine, width: int | None) -> Band | None:
    """The band of `eng`'s ticks: `width` columns, or the `2 * reach + 1` its routes need
    (None: `AUTO_WIDTH`, or wider where the routes reach far, on fabrics at least twice as
    wide), or None for full ticks only (0, a band as wide as the fabric, or a program whose
    tick is not local: see the module docstring)."""
    w = eng.program.width
    if width == 0 or eng.mesh is not None or eng.any_collective or eng.switched \
            or eng.filters or eng.schedule_seed is not None or eng.router.offsets:
        return None
    reach = route_reach(eng.router.gather)
    if width is None:
        width = max(AUTO_WIDTH, 1 << (4 * reach + 1).bit_length())
        if 2 * width > w:
            return None
    width = max(width, 2 * reach + 1)
    if width >= w:
        return None
    return Band(width, reach)


def column_work(eng: Engine, m: Machine, host: HostCarry):
    """The columns where some PE has work for a tick (`[W]` bool; over a band, its
    columns)."""
    fab = m.fab
    busy = (fab.pc != 0) | (fab.launch != 0) | (host.done < host.total) \
        | jnp.any((m.active & ~m.blocked) != 0, axis=-1)
    for ring in list(fab.inbox.values()) + list(fab.outbox.values()):
        busy = busy | (ring.count > 0)
    for c, low in enumerate(eng.lowerers):
        for site, info in low.sites.items():
            slot = fab.slots[(c, site)]
            starved = _starved(low, m, site, info)
            busy = busy | (slot.run if starved is None else slot.run & ~starved)
    for state in fab.flushes.values():
        busy = busy | (state == FLUSH_PENDING)
    return jnp.any(busy, axis=0)


def _starved(low, m: Machine, site: int, info):
    """Where the op of `site`, short of its length, finds the inbox of one of its fabins
    empty: it moves no element, ends on no control wavelet and completes nothing, so its
    PE has no work from it (`Lowerer.advance`). None for an op whose advance depends on
    more (a FIFO's action, `@dfilt`, a `@map` callback, which runs on the window read)."""
    fabins = [o.color for k, o in info.operands if k == "D" and o.kind == "fabin"]
    if not fabins or info.stmt.op in ("dfilt", "map") or any(
            k == "D" and o.kind == "fifo" for k, o in info.operands):
        return None
    low.machine = m
    short = m.fab.slots[(low.cls, site)].pos < low.slot_field(site, "len")
    empty = functools.reduce(jnp.logical_or, [low.queue_count(m, "in", color) == 0
                                              for color in fabins])
    return short & empty


def band_origin(band: Band, work):
    """`(x0, fits)`: the first column of the band over the columns with work (`[W]` bool)
    and their reach, inside the fabric, and whether it holds them all (no work: it does)."""
    w = work.shape[0]
    lo = jnp.argmax(work).astype(jnp.int32)
    hi = (w - 1 - jnp.argmax(work[::-1])).astype(jnp.int32)
    x0 = jnp.clip(lo - band.reach, 0, w - band.width)
    fits = ~jnp.any(work) | (jnp.minimum(hi + band.reach, w - 1) < x0 + band.width)
    return x0, fits


def _is_pe(x, h: int, w: int) -> bool:
    return getattr(x, "ndim", 0) >= 2 and x.shape[:2] == (h, w)


def _cut(tree, x0, h: int, w: int, width: int):
    """Every per-PE array of `tree` cut to columns `x0 .. x0 + width`."""
    return jax.tree_util.tree_map(
        lambda x: lax.dynamic_slice_in_dim(x, x0, width, axis=1) if _is_pe(x, h, w) else x,
        tree)


def _paste(full, cut, part, x0, h: int, w: int):
    """`full` with the band `part` written back where it is not still `cut` (the band as
    `_cut` gave it: an array the tick did not touch keeps its buffer, uncopied); its other
    leaves from `part`."""
    def paste(f, c, p):
        if not _is_pe(f, h, w):
            return p
        return f if p is c else lax.dynamic_update_slice_in_dim(f, p, x0, axis=1)

    return jax.tree_util.tree_map(paste, full, cut, part)


def _band_router(router, x0, h: int, w: int, width: int):
    """`router` over the band: its rows of the whole grid (`y * W + x`, past `H * W` a partner
    color's) renumbered over the band; a source outside the band is no source (-1)."""
    gather = lax.dynamic_slice_in_dim(jnp.asarray(router.gather), x0, width, axis=1)
    npe = h * w
    part, pe = gather // npe, gather % npe
    sy, sx = pe // w, pe % w - x0
    inside = (gather >= 0) & (sx >= 0) & (sx < width)
    gather = jnp.where(inside, part * (h * width) + sy * width + sx, -1)
    is_source = lax.dynamic_slice_in_dim(jnp.asarray(router.is_source), x0, width, axis=1)
    return dataclasses.replace(router, gather=gather, is_source=is_source)


@contextlib.contextmanager
def _narrowed(eng: Engine, router, lanes: tuple, widen):
    """Trace with the lowerers over `lanes` and the band's router; `widen` puts a band array
    back on the whole grid (for what the host sees of it: `<simprint>` masks)."""
    saved = eng.router, [(low.lanes, low.widen) for low in eng.lowerers]
    eng.router = router
    for low in eng.lowerers:
        low.lanes, low.widen = lanes, widen
    try:
        yield
    finally:
        eng.router = saved[0]
        for low, (lanes_, widen_) in zip(eng.lowerers, saved[1]):
            low.lanes, low.widen = lanes_, widen_


def full_until_fit(eng: Engine, m: Machine, busy, full, carry):
    """Run full ticks (`full(carry) -> carry`) while `busy(carry)`, until the work has fitted
    the band `PATIENCE` ticks in a row. Returns `(carry, fits)`: fits, whether it stopped
    for that. The banded ticks are a loop of their own (`band_while_fit`), compiled the
    first time a command turns to them, so that a program whose work never fits the band
    compiles only the full tick."""
    band = eng.band

    def step(state):
        carry, streak = state
        carry = full(carry)
        m.load(carry.machine)
        fits = band_origin(band, column_work(eng, m, carry.host))[1]
        return carry, jnp.where(fits, streak + 1, 0)

    carry, streak = lax.while_loop(lambda s: busy(s[0]) & (s[1] < PATIENCE), step,
                                   (carry, jnp.int32(0)))
    return carry, streak >= PATIENCE


def band_while_fit(eng: Engine, m: Machine, busy, one, carry):
    """Run banded ticks (`one` on the band: `banded_tick`) while `busy(carry)` and the work
    fits the band. The columns with work (`column_work`) are carried: a banded tick changes
    only its band, whose columns it recomputes. Returns `(carry, fits)`."""
    band = eng.band

    def step(state):
        carry, work = state
        x0, _ = band_origin(band, work)
        m.load(carry.machine)
        arrays, host, progress, part = banded_tick(
            eng, lambda inner, host: one(inner, host, carry.ticks), m, carry.host, x0)
        return (type(carry)(arrays, host, progress, carry.ticks + 1),
                lax.dynamic_update_slice_in_dim(work, part, x0, axis=0))

    m.load(carry.machine)
    state = (carry, column_work(eng, m, carry.host))
    carry, work = lax.while_loop(lambda s: busy(s[0]) & band_origin(band, s[1])[1], step,
                                 state)
    return carry, band_origin(band, work)[1]


def banded_tick(eng: Engine, tick, m: Machine, host: HostCarry, x0):
    """`tick(m, host) -> (m, host, progress)` run on the band from column `x0`: returns
    the machine's arrays, the host carry and the progress, as the full tick would, and the
    band's columns with work after it."""
    h, w = eng.program.height, eng.program.width
    width = eng.band.width
    full_arrays, full_host = m.carry(), host
    inner = Machine(mem={}, dsd={}, cmd=None, cycles=None, prng=None, fault=None,
                    tables=_cut(m.tables, x0, h, w, width))
    cut_arrays, cut_host = _cut(full_arrays, x0, h, w, width), _cut(host, x0, h, w, width)
    inner.load(cut_arrays)
    band_host = cut_host

    def widen(x):
        return lax.dynamic_update_slice_in_dim(jnp.zeros((h, w) + x.shape[2:], x.dtype), x,
                                               x0, axis=1)

    with _narrowed(eng, _band_router(eng.router, x0, h, w, width), (h, width), widen):
        inner, band_host, progress = tick(inner, band_host)
        work = column_work(eng, inner, band_host)
    return (_paste(full_arrays, cut_arrays, inner.carry(), x0, h, w),
            _paste(full_host, cut_host, band_host, x0, h, w), progress, work)
