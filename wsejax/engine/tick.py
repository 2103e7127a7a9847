"""The fabric loop of a command: ticks, each a chain of stages over the machine.

Contract. `run_ticks(eng, m, host)` runs ticks until one changes nothing or `loop_limit` ticks
have run. A tick is the chain

    m, flushed = queue_flushes(eng, m, healthy)      # @queue_flush of empty queues
    m, started = start_tasks(eng, m, healthy, ticks)  # launches, data/control/local tasks
    m = run_blocks(eng, m, healthy)                  # bodies that wait: one block each
    m, advanced = microthreads(eng, m, healthy)      # fabric and async ops, one window each
    m, gathered = collectives(eng, m, healthy)       # <collectives_2d> every PE issued
    m, moved = route(eng, m)                         # outboxes to inboxes
    m, host, moved = stream_host(eng, m, host)       # the command's streaming memcpy

Each stage takes the machine and returns it; `eng` (the `Engine`) is static configuration:
the program, its lowerers, the router, the filters, the colors and the fault numbering.
Where `eng.band` is set, a tick whose work fits the band runs the same chain over the band's
columns alone (`wsejax.engine.band`), with the same result.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
from jax import lax

from wsejax import ir
from wsejax.diagnostics import fabric_busy, nowhere_to_go, unbound_control_task
from wsejax.engine import cb16
from wsejax.engine.access import scatter
from wsejax.engine.band import band_while_fit, full_until_fit
from wsejax.engine.cfg import Cfg
from wsejax.engine.collectives import collectives
from wsejax.engine.machine import FabricCarry, HostCarry, Machine
from wsejax.engine.rings import (
    FLUSH_PENDING,
    FLUSHED,
    PICK_BY_SELECT,
    Ring,
    pick,
    ring_control,
    ring_data,
    ring_head_control,
    ring_peek,
    ring_pop,
    ring_push,
)
from wsejax.engine.state import has_task, lowest_task, set_task, task_bit, unpack_tasks
from wsejax.engine.switched import route_switched, switched_stuck
from wsejax.engine.task_groups import merge_starts
from wsejax.errors import ProgramError
from wsejax.fabric import NO_ENTRYPOINT, control_entry, control_ignored, data_task_args
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.engine.core import Engine
    from wsejax.engine.lower import Lowerer

__all__ = ["end_ticks", "loop_ticks", "microthreads", "queue_flushes", "route", "run_blocks",
           "run_ticks", "start_body", "start_tasks", "stream_host"]

TEARDOWN_TASK = 29      # the task @queue_flush activates once its queue is empty


def run_ticks(eng: Engine, m: Machine, host: HostCarry) -> tuple[Machine, HostCarry]:
    """Run ticks until a tick changes nothing (spec 12.5: the command then checks its
    condition), or until `loop_limit` ticks; past them, the PEs still busy fault. Each tick
    runs the stages in order: `@queue_flush`, task starts, waiting bodies, microthreads,
    the router, the host's stream."""
    m, host, progress, ticks = loop_ticks(eng, m, host, jnp.bool_(True), jnp.int32(0))
    return end_ticks(eng, m, host, progress, ticks)


def loop_ticks(eng: Engine, m: Machine, host: HostCarry, progress, ticks, stop=None,
               banded=None):
    """Run ticks from `ticks` (the ticks the command has run) while the last one changed
    something (`progress`) and fewer than `stop` (None: `loop_limit`; at most that) have
    run. Returns
    `(m, host, progress, ticks)`: `run_ticks` runs it once to the limit, a command that
    shows its progress in pieces (`end_ticks` ends both).

    With a band (`eng.band`), `banded` picks the loop: False, full ticks until the work fits
    the band (`band.full_until_fit`); True, banded ticks while it does
    (`band.band_while_fit`); the result then has a fifth item, whether it fits. The engine
    runs such a command in pieces, turning from one loop to the other."""
    limit = eng.loop_limit
    stop = limit if stop is None else jnp.minimum(stop, limit)

    def busy(carry: FabricCarry):
        return carry.progress & (carry.ticks < stop)

    def full(carry: FabricCarry) -> FabricCarry:
        m.load(carry.machine)
        machine, host, progress = _tick(eng, m, carry.host, carry.ticks)
        return FabricCarry(machine.carry(), host, progress, carry.ticks + 1)

    carry = FabricCarry(m.carry(), host, progress, ticks)
    if banded is None:
        carry = lax.while_loop(busy, full, carry)
        m.load(carry.machine)
        return m, carry.host, carry.progress, carry.ticks
    if banded:
        carry, fits = band_while_fit(eng, m, busy, functools.partial(_tick, eng), carry)
    else:
        carry, fits = full_until_fit(eng, m, busy, full, carry)
    m.load(carry.machine)
    return m, carry.host, carry.progress, carry.ticks, fits


def _tick(eng: Engine, m: Machine, host: HostCarry, ticks):
    """One tick's stages over `m` (the whole grid, or a band of it: `engine.band`):
    `(m, host, progress)`."""
    healthy = m.fault == 0
    pc_before = m.fab.pc
    m, flushed = queue_flushes(eng, m, healthy) if eng.any_flush else (m, False)
    m, started = start_tasks(eng, m, healthy, ticks)
    m = run_blocks(eng, m, healthy)
    m, advanced = microthreads(eng, m, healthy)
    if eng.any_collective:
        m, gathered = collectives(eng, m, healthy)
        advanced = advanced | gathered
    m, moved = route(eng, m)
    m, host, host_moved = stream_host(eng, m, host)
    progress = (started | flushed) | jnp.any(m.fab.pc != pc_before) | advanced \
        | (moved > 0) | (host_moved > 0)
    m.fab.wavelets = m.fab.wavelets + (moved + host_moved).astype(jnp.uint32)
    return m, host, progress


def end_ticks(eng: Engine, m: Machine, host: HostCarry, progress,
              ticks) -> tuple[Machine, HostCarry]:
    """After the command's last tick (`loop_ticks`): count its ticks, and fault the PEs
    still busy if it ran out of ticks while still changing something."""
    limit = eng.loop_limit
    if eng.switched:
        switched_stuck(eng, m)
    m.fab.ticks = m.fab.ticks + ticks
    runaway = progress & (ticks >= limit)
    code = eng.register_fault(fabric_busy(limit))
    stuck = (m.fab.pc != 0) | m.cmd | jnp.any((m.active & ~m.blocked) != 0, axis=-1)
    m.fault = jnp.where((m.fault == 0) & runaway & stuck, jnp.int32(code), m.fault)
    return m, host


def queue_flushes(eng: Engine, m: Machine, healthy) -> tuple[Machine, jax.Array]:
    """Each `@queue_flush` waiting for its queue, where the queue is empty now: the
    teardown task (29) is activated and the queue is FLUSHED (until `queue_flush.exit`).
    Returns whether any fired."""
    fired = jnp.zeros(healthy.shape, bool)
    fab = m.fab
    for c, low in enumerate(eng.lowerers):
        if not low.pe.flushed:
            continue
        cm = eng.class_mask(m.tables, c, healthy)
        cm = healthy if cm is None else cm
        for kind, n in low.pe.flushed:
            rings = fab.inbox if kind == "input" else fab.outbox
            color = low.queue_color(kind, n)
            empty = low.per_color(m, color, lambda col, rings=rings: rings[col].count == 0
                                  if col in rings else jnp.ones(healthy.shape, bool))
            fire = cm & (fab.flushes[(kind, n)] == FLUSH_PENDING) & empty
            fab.flushes[(kind, n)] = jnp.where(fire, FLUSHED, fab.flushes[(kind, n)])
            m.active = m.active | task_bit(TEARDOWN_TASK, fire)
            fired = fired | fire
    return m, jnp.any(fired)


def _filter(eng: Engine, m: Machine, col: int, k, got, marks):
    """The wavelets of color `col` that pass each receiving PE's filter (`k` `[H, W]`
    delivered, `got` `[H, W, cap]` them, `marks` their control marks or None):
    `(n, packed, packed marks)`; updates the filter state."""
    t = eng.filters.get(col)
    if t is None:
        return k, got, marks
    fab = m.fab
    names = tuple(fab.filters[col])
    n, packed, packed_marks, new = t.apply(k, got, {f: fab.filters[col][f]
                                                     for f in names}, marks)
    for f in names:
        fab.filters[col][f] = new[f]
    return n, packed, packed_marks


def start_tasks(eng: Engine, m: Machine, healthy, ticks) -> tuple[Machine, jax.Array]:
    """Each PE whose main thread is idle starts a launch it was asked for, or else its
    runnable task with the lowest ID, a HIGH priority one first (a local task consumes its
    activation, a data task its wavelet, a control task its control wavelet). Returns whether
    any started."""
    idle = healthy & (m.fab.pc == 0)
    launched = _start_launches(eng, m, idle) if eng.launchables else None
    if launched is not None:
        idle = idle & ~launched & (m.fab.pc == 0)
    runnable = m.active & ~m.blocked
    consuming = _consuming(eng, m)
    started_control = _control_arrivals(eng, m, healthy)
    # what starts a control task: one peek of each inbox, shared by every control task
    heads = _control_heads(eng, m)
    runnable = _ready_tasks(eng, m, runnable, consuming, heads)
    runnable = jnp.where(idle[..., None], runnable, jnp.uint32(0))
    has = jnp.any(runnable != 0, axis=-1)
    first = _first_task(eng, _favour_high(m, runnable), ticks)
    for c, low in enumerate(eng.lowerers):
        cm = eng.class_mask(m.tables, c, None)
        # tasks sharing a body start it once, on all their lanes (`engine.task_groups`)
        for fn, tasks in eng.task_groups[c]:
            starts = []
            for task in tasks:
                mask = has & (first == task.id)
                mask = mask if cm is None else mask & cm
                rotation = _rotation(low, task)
                if rotation is not None:
                    m = _start_rotating(eng, m, c, low, task, rotation, mask)
                else:
                    starts.append((mask, _take_task(eng, m, low, task, mask, heads)))
            if starts:
                m = start_body(eng, m, c, fn, *merge_starts(starts))
    started = jnp.any(has) | started_control
    return m, (started if launched is None else started | jnp.any(launched))


def _take_task(eng: Engine, m: Machine, low: Lowerer, task: ir.Task, mask, heads):
    """Take what starts `task` on the lanes in `mask` (its activation, wavelet or control
    wavelet) and count the run; its arguments."""
    if task.kind == "data":
        args = _pop_wavelet(eng, m, task, low, mask)
    elif task.kind == "control":
        args = _pop_control(eng, m, task, low, mask, heads)
    else:
        m.active = m.active & ~task_bit(task.id, mask)
        args = ()
    m.fab.runs = m.fab.runs + mask.astype(jnp.uint32)
    return args


def _ready_tasks(eng: Engine, m: Machine, runnable, consuming: dict, heads):
    """`runnable` with each data and control task set where it may start: a data wavelet
    waits on its color that no running operation reads, or its control wavelet is at the
    front of an open inbox (`[H, W, TASK_WORDS]` uint32)."""
    fab = m.fab

    def waiting(col):
        """A data wavelet waits on color col, and no running operation reads it."""
        has = ring_data(fab.inbox[col]) > 0
        return has & ~consuming[col] if col in consuming else has

    for c, low in enumerate(eng.lowerers):
        cm = eng.class_mask(m.tables, c, None)
        for t in low.pe.tasks:
            if t.kind == "data":
                ready = low.per_color(m, t.color, waiting)
            elif t.kind == "control":
                ready = _control_ready(eng, m, low, t.id, heads)[0]
            else:
                continue
            ready = ready & ~has_task(m.blocked, t.id)
            if cm is not None:
                # only this class's PEs: another class may bind the ID otherwise
                ready = jnp.where(cm, ready, has_task(runnable, t.id))
            runnable = set_task(runnable, t.id, ready)
    return runnable


def _favour_high(m: Machine, runnable):
    """`runnable` cut to its HIGH priority tasks (`ir.TASK_PRIORITY`) on the PEs that have
    some runnable, else as it is (`[H, W, TASK_WORDS]` uint32)."""
    high = m.mem.get(ir.TASK_PRIORITY)
    if high is None:
        return runnable
    high = runnable & high
    return jnp.where(jnp.any(high != 0, axis=-1)[..., None], high, runnable)


def _first_task(eng: Engine, runnable, ticks):
    """The task each PE starts (`[H, W]` int32): the lowest runnable ID, or in the seeded
    random-order mode any runnable one."""
    if eng.schedule_seed is None:
        return lowest_task(runnable)
    each = unpack_tasks(runnable)
    key = jax.random.fold_in(jax.random.PRNGKey(eng.schedule_seed), ticks)
    noise = jax.random.uniform(key, each.shape)
    return jnp.argmax(jnp.where(each, noise, -1.0), axis=-1)


def _start_launches(eng: Engine, m: Machine, idle):
    """Idle PEs with a launch request start the launched function; returns the PEs that
    started one."""
    fab = m.fab
    started = jnp.zeros_like(idle)
    for idx, e in enumerate(eng.launchables):
        pend = idle & (fab.launch == idx + 1)
        args = fab.args[idx]
        for c in range(len(eng.lowerers)):
            f = eng.exported_function(c, e.name)
            if f is None:
                continue
            mask = eng.class_mask(m.tables, c, pend)
            m.fab.launch = jnp.where(mask, 0, m.fab.launch)
            m = start_body(eng, m, c, f.name, mask, args)
        started = started | pend
    return started


def start_body(eng: Engine, m: Machine, c: int, fn: str, mask, args) -> Machine:
    """Start function `fn` of class c on the lanes in `mask`: a body that waits enters
    its first block (the fabric loop runs it), any other runs to its end now."""
    cfg = eng.cfg_of.get((c, fn))
    if cfg is not None:
        _enter(m, cfg, mask, args)
        return m
    low = eng.lowerers[c]

    def run(inner):
        m.load(inner)
        low.run(m, fn, args, mask)
        return m.carry()

    m.load(lax.cond(jnp.any(mask), run, lambda inner: inner, m.carry()))
    return m


def _enter(m: Machine, cfg: Cfg, mask, args) -> None:
    """Start a body that waits on the lanes in `mask`: its first block, its arguments."""
    fab = m.fab
    fab.pc = jnp.where(mask, cfg.entry, fab.pc)
    for (pname, t), a in zip(cfg.params, args):
        if t == "dsd":
            raise ProgramError(f"{cfg.root}: a DSD parameter of a body that waits")
        key = cfg.frame_key(pname)
        fab.frames[key] = jnp.where(mask, jnp.asarray(a).astype(t.np), fab.frames[key])


def _channel_open(eng: Engine, m: Machine, low: Lowerer, col: int):
    """Where a control wavelet at the front of color col's inbox may reach the CE: on
    wse2 while the color is unblocked, on wse3 while the input queue bound to it is."""
    if eng.program.arch == "wse2":
        return ~has_task(m.blocked, col)
    for kind, q, c in low.pe.queues:
        if kind == "input" and c == col:
            return ~has_task(m.blocked, q)
    return jnp.zeros(m.fab.pc.shape, bool)


def _control_heads(eng: Engine, m: Machine):
    """`(color, front, payload)` of each inbox that may hold control wavelets: whether its
    oldest wavelet is one (and no running op with `.on_control` takes it), and that
    wavelet."""
    fab = m.fab
    takers = {}
    for low in eng.lowerers:
        for col, where in low.control_takers(m).items():
            takers[col] = where if col not in takers else takers[col] | where
    out = []
    for col in eng.control_colors:
        if col not in fab.inbox or fab.inbox[col].ctl is None:
            continue
        front = ring_head_control(fab.inbox[col])
        if col in takers:
            front = front & ~takers[col]
        out.append((col, front, ring_peek(fab.inbox[col], 1)[..., 0]))
    return out


def _control_ready(eng: Engine, m: Machine, low: Lowerer, ident: int, heads):
    """Where control task `ident` may start (`[H, W]` bool), and per control color where
    its wavelet is the one that starts it; `heads` from `_control_heads`."""
    ready = jnp.zeros(m.fab.pc.shape, bool)
    by_color = []
    for col, front, w in heads:
        mine = front & (control_entry(w) == ident) & ~control_ignored(w) \
            & _channel_open(eng, m, low, col)
        by_color.append((col, mine & ~ready, w))
        ready = ready | mine
    return ready, by_color


def _pop_control(eng: Engine, m: Machine, task: ir.Task, low: Lowerer, mask, heads):
    """Pop the control wavelet that starts `task` on the lanes in `mask` (a PE starts one
    task a tick, so the heads taken before any pop still hold); its arguments."""
    _, by_color = _control_ready(eng, m, low, task.id, heads)
    w = jnp.zeros(mask.shape, jnp.uint32)
    for col, mine, wavelet in by_color:
        take = mask & mine
        w = jnp.where(take, wavelet, w)
        ring_pop(m.fab.inbox[col], take.astype(jnp.int32))
    return _task_args(low, task, w)


def _control_arrivals(eng: Engine, m: Machine, healthy):
    """Control wavelets that activate no task on the PE leave its inboxes: those whose
    current command has ce_ignore set, or that name no entrypoint. One naming a task ID
    the PE binds no control task to faults it. Returns whether any left."""
    fab = m.fab
    gone = jnp.bool_(False)
    for col, front, w in _control_heads(eng, m):
        front = front & healthy
        drop = front & (control_ignored(w) | (control_entry(w) == NO_ENTRYPOINT))
        unbound = front & ~drop
        for c, low in enumerate(eng.lowerers):
            cm = eng.class_mask(m.tables, c, None)
            bound = jnp.zeros(front.shape, bool)
            for t in low.pe.tasks:
                if t.kind == "control":
                    bound = bound | (control_entry(w) == t.id)
            bound = bound | ~_channel_open(eng, m, low, col)
            unbound = unbound & ~(bound if cm is None else cm & bound)
        code = eng.register_fault(unbound_control_task(col))
        m.fault = jnp.where(unbound & (m.fault == 0), jnp.int32(code), m.fault)
        ring_pop(fab.inbox[col], drop.astype(jnp.int32))
        gone = gone | jnp.any(drop)
    return gone


def _consuming(eng: Engine, m: Machine) -> dict:
    """color -> PEs where a running operation reads that color from the fabric."""
    out = {}
    for c, low in enumerate(eng.lowerers):
        for site, info in low.sites.items():
            run = m.fab.slots[(c, site)].run
            for color in info.fabric_inputs():
                for col, where in low.queues(m, color):
                    mine = run if where is None else run & where
                    out[col] = mine if col not in out else out[col] | mine
    return out


def _pop_wavelet(eng: Engine, m: Machine, task: ir.Task, low: Lowerer, mask):
    """Pop one wavelet of the task's color on the lanes in `mask`; its arguments."""
    return _task_args(low, task, _pop_raw(m, task, low, mask))


def _pop_raw(m: Machine, task: ir.Task, low: Lowerer, mask):
    """Pop one wavelet of the task's color on the lanes in `mask`; the wavelet."""
    w = low.queue_peek(m, "in", task.color, 1)[..., 0]
    low.queue_pop(m, "in", task.color, mask.astype(jnp.int32))
    return w


def _rotation(low: Lowerer, task: ir.Task):
    """The `@bind_rotating_tasks` pair whose data task `task` is, or None."""
    if task.kind != "data":
        return None
    return next((r for r in low.pe.rotations if r.data == task.id), None)


def _start_rotating(eng: Engine, m: Machine, c: int, low: Lowerer, task: ir.Task,
                    rotation: ir.Rotation, mask) -> Machine:
    """Start data task `task` of a rotating pair on the lanes in `mask`: its wavelet is taken;
    where the pair's counter has reached the limit the alternate task runs on it and the
    counter goes back to 0, elsewhere `task` runs and the counter goes up by one."""
    w = _pop_raw(m, task, low, mask)
    slot = low.slot[rotation.counter]
    raw = m.mem[slot]
    count = raw if raw.dtype == jnp.uint16 else lax.bitcast_convert_type(raw, jnp.uint16)
    alt = mask & (count == rotation.limit)
    main = mask & ~alt
    count = jnp.where(alt, jnp.uint16(0), jnp.where(main, count + jnp.uint16(1), count))
    m.mem[slot] = count if raw.dtype == jnp.uint16 else \
        lax.bitcast_convert_type(count, raw.dtype)
    m.fab.runs = m.fab.runs + mask.astype(jnp.uint32)
    alt_task = next(t for t in low.pe.tasks if t.kind == "control" and t.id == rotation.alt)
    m = start_body(eng, m, c, task.fn, main, _task_args(low, task, w))
    return start_body(eng, m, c, alt_task.fn, alt, _task_args(low, alt_task, w))


def _task_args(low: Lowerer, task: ir.Task, w):
    """The arguments a task's parameters take from wavelet `w` (spec 5.1)."""
    params = low.pe.function(task.fn).params
    if not params:
        return ()
    args = []
    for (shift, width), (_, t) in zip(data_task_args(tuple(t.bits for _, t in params)),
                                      params):
        bits = (w >> shift) & ((1 << width) - 1) if width < 32 else w
        raw = bits.astype(jnp.uint16) if width == 16 else bits
        if t is DType.cb16:
            args.append(cb16.from_bits16(raw, t))
        else:
            args.append(lax.bitcast_convert_type(raw, t.np) if raw.dtype != t.np else raw)
    return tuple(args)


def run_blocks(eng: Engine, m: Machine, healthy) -> Machine:
    """Each busy PE runs the block of its waiting body its pc is at."""
    for cfg in eng.cfgs:
        low = eng.lowerers[cfg.cls]
        for b in cfg.blocks:
            mask = healthy & (m.fab.pc == b.gid)

            def run(inner, low=low, cfg=cfg, b=b, mask=mask):
                m.load(inner)
                low.run_block(m, cfg, b, mask)
                return m.carry()

            m.load(lax.cond(jnp.any(mask), run, lambda inner: inner, m.carry()))
    return m


def microthreads(eng: Engine, m: Machine, healthy) -> tuple[Machine, jax.Array]:
    """Advance every running microthread slot; returns whether any element was done."""
    # summed per PE and reduced once: on a mesh, each reduction is a collective
    total = jnp.zeros(healthy.shape, jnp.int32)
    for c, low in enumerate(eng.lowerers):
        for site in sorted(low.sites):
            run = m.fab.slots[(c, site)].run & healthy

            def advance(inner, low=low, site=site):
                m.load(inner)
                machine, n = low.advance(m, site, healthy)
                return machine.carry(), n

            arrays, n = lax.cond(jnp.any(run), advance,
                                 lambda inner: (inner, jnp.zeros(healthy.shape, jnp.int32)),
                                 m.carry())
            m.load(arrays)
            total = total + n
    return m, jnp.any(total > 0)


def route(eng: Engine, m: Machine) -> tuple[Machine, jax.Array]:
    """Move wavelets from outboxes to the inboxes their routes reach (`engine.router`);
    a wavelet in an outbox no route leads from is a fault. Returns the wavelets moved."""
    fab = m.fab
    cap = eng.capacity
    resolved = eng.program.resolved
    drained = {c for c, k in eng.program.streams if k == "d2h"}
    router = eng.router
    for col in eng.outboxes:
        if col not in resolved and col not in drained and col not in eng.switched:
            _nowhere(eng, m, col, fab.outbox[col].count > 0)
    for col in resolved:
        if col in eng.outboxes:
            # a PE sending on a color no route of which leads from its ramp to a ramp
            lost = fab.outbox[col].count > 0
            if col in router.colors:
                lost = lost & ~router.is_source[..., router.colors.index(col)]
            _nowhere(eng, m, col, lost)
    hops = route_switched(eng, m, _filter) if eng.switched else jnp.int32(0)
    if not router.colors:
        return m, hops
    sends, count, free, words = _router_inputs(eng, fab, router.colors)
    n, k, got = router(count, free, words)
    for i, col in enumerate(router.colors):
        words, marks = got[i][..., :cap], None
        if eng.control_colors:
            # the control marks of the delivered wavelets, oldest first
            marks = (got[i][..., cap:] >> jnp.arange(cap, dtype=jnp.uint32)) & 1
        kept, words, marks = _filter(eng, m, col, k[i], words, marks)
        ring_push(fab.inbox[col], kept, lambda at, words=words: pick(words, at),
                  None if marks is None else lambda at, marks=marks: pick(marks, at))
        if sends[i]:
            ring_pop(fab.outbox[col], n[i])
    return m, jnp.sum(sum(k)) + hops


def _router_inputs(eng: Engine, fab, colors) -> tuple:
    """Per routed color: whether it has an outbox, the outbox counts, the inbox room and the
    first wavelets of each outbox (with color swapping, a routed color may only receive, with
    no outbox; each has an inbox: `Engine._plan_queues`)."""
    cap = eng.capacity
    sends = [col in fab.outbox for col in colors]
    words = [ring_peek(fab.outbox[col], cap) if s else jnp.zeros(fab.pc.shape + (cap,),
                                                                 jnp.uint32)
             for s, col in zip(sends, colors)]
    if eng.control_colors:
        # one more word per outbox: which of its wavelets are control wavelets
        zero = jnp.zeros(fab.pc.shape, jnp.uint32)
        words = [jnp.concatenate([wd, (ring_control(fab.outbox[col]) if s and
                                       fab.outbox[col].ctl is not None else zero)[..., None]],
                                 -1)
                 for s, wd, col in zip(sends, words, colors)]
    count = [fab.outbox[col].count if s else jnp.zeros(fab.pc.shape, jnp.int32)
             for s, col in zip(sends, colors)]
    free = [cap - fab.inbox[col].count for col in colors]
    return sends, count, free, words


def _nowhere(eng: Engine, m: Machine, col: int, lost) -> None:
    code = eng.register_fault(nowhere_to_go(col))
    m.fault = jnp.where(lost & (m.fault == 0), jnp.int32(code), m.fault)


def stream_host(eng: Engine, m: Machine, host: HostCarry) -> tuple[Machine, HostCarry,
                                                                     jax.Array]:
    """The streaming memcpy of the running command, if any: inject its wavelets into the
    PEs' inboxes (H2D) or drain their outboxes into it (D2H). Every stream of the
    program is lowered here, each in a branch of its own; the command's index picks the
    one that runs (none after a launch). Returns the wavelets moved."""
    fab = m.fab
    streams = eng.program.streams
    if not streams:
        return m, host, jnp.int32(0)
    boxes = [fab.inbox if kind == "h2d" else fab.outbox for _, kind in streams]

    def branch(idx):
        def run(operand):
            rings, data = operand
            move = _inject if streams[idx][1] == "h2d" else _drain
            data, k = move(rings[idx], data, host, eng.capacity)
            return rings, data, k
        return run

    def idle(operand):
        rings, data = operand
        return rings, data, jnp.zeros_like(host.done)

    rings = tuple(box[col] for box, (col, _) in zip(boxes, streams))
    rings, data, moved = lax.switch(jnp.clip(host.stream + 1, 0, len(streams)),
                                    [idle] + [branch(i) for i in range(len(streams))],
                                    (rings, host.data))
    for box, (col, _), ring in zip(boxes, streams, rings):
        box[col] = ring
    return m, host._replace(data=data, done=host.done + moved), jnp.sum(moved)


def _inject(ring: Ring, data, host: HostCarry, cap: int):
    """H2D: push the stream's next wavelets into its inbox, as many as it has room for."""
    done, length = host.done, data.shape[-1]
    k = jnp.minimum(host.total - done, cap - ring.count)
    ring_push(ring, k, lambda at: pick(data, jnp.clip(done[..., None] + at, 0, length - 1)))
    return data, k


def _drain(ring: Ring, data, host: HostCarry, cap: int):
    """D2H: pop its outbox into the stream's wavelets, as many as the stream still takes."""
    done, length = host.done, data.shape[-1]
    k = jnp.minimum(ring.count, host.total - done)
    sent = ring_peek(ring, cap)
    # wavelet i of the stream lands at data[..., done + i]
    if length <= PICK_BY_SELECT:
        at = jnp.arange(length, dtype=jnp.int32) - done[..., None]
        data = jnp.where((at >= 0) & (at < k[..., None]),
                         pick(sent, jnp.clip(at, 0, cap - 1)), data)
    else:
        j = jnp.arange(cap, dtype=jnp.int32)
        dst = jnp.where(j < k[..., None], done[..., None] + j, length)
        data = scatter(data, dst, sent)
    ring_pop(ring, k)
    return data, k
