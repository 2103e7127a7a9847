"""The engine: the compiled entry points that run host commands on the fabric state.

One `Engine` per Program. It owns every `jax.jit`: `launch` (one compilation per exported
function), the fabric loop of a command (`run_fabric`, one for every command: its ticks are
in `wsejax.engine.tick`), and the copy-mode memcpy scatter/gather (`wsejax.engine.copy_mode`).
Host-side checks of the state (faults, PEs still blocking the command stream) turn into
`FabricFault` / `DeadlockError` with PE coordinates (texts from `wsejax.diagnostics`).
"""

from __future__ import annotations

import collections
import functools
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from wsejax import ir
from wsejax.diagnostics import (
    DEFAULT_LOOP_LIMIT,
    MAX_LISTED_PES,
    PeSummary,
    command_stuck,
    device_fault,
    stream_short,
    stuck_lines,
)
from wsejax.engine import cb16
from wsejax.engine.band import plan_band
from wsejax.engine.cfg import Cfg, build_cfg
from wsejax.engine.copy_mode import get_block, put_block
from wsejax.engine.filters import build_filters
from wsejax.engine.lower import Lowerer
from wsejax.engine.machine import HostCarry, Machine
from wsejax.engine.plan import dsd_candidates, has_fabric
from wsejax.engine.rings import (
    MAX_CONTROL_CAPACITY,
    FabricArrays,
    FifoCounts,
    Ring,
    Slot,
    uses_ut_blocking,
)
from wsejax.engine.router import build_router, routed_channels
from wsejax.engine.state import FabricState, init_state, plan_slots, unpack_tasks
from wsejax.engine.switched import SwitchedColor, initial_state
from wsejax.engine.task_groups import shared_bodies
from wsejax.engine.tick import end_ticks, loop_ticks, run_ticks
from wsejax.engine.wide import host_view
from wsejax.errors import ProgramError
from wsejax.fabric import QUEUE_CAPACITY
from wsejax.hardware import UT_ID_COUNT
from wsejax.progress import RATE, Progress
from wsejax.types import DType, format_value

__all__ = ["Engine", "dsd_candidates", "fabric_mesh"]

STREAM_BUCKET = 16     # streaming memcpy lengths are padded to a power of two, at least this


def fabric_mesh(h: int, w: int, devices: int | None):
    """A `("y", "x")` mesh of at most `devices` devices splitting an h x w grid evenly (the
    most devices that divide it; rows preferred), or None for one device."""
    if devices is None or devices <= 1:
        return None
    available = jax.devices()
    if devices > len(available):
        raise ValueError(f"devices={devices}: only {len(available)} "
                         f"{available[0].platform} device(s) are visible")
    best = (1, 1)
    for dy in range(devices, 0, -1):
        for dx in range(1, devices // dy + 1):
            if h % dy == 0 and w % dx == 0 and dy * dx > best[0] * best[1]:
                best = (dy, dx)
    if best == (1, 1):
        return None
    grid = np.array(available[:best[0] * best[1]]).reshape(best)
    return Mesh(grid, ("y", "x"))


@functools.partial(jax.jit, static_argnums=4)
def _flags(fault, cmd_blocked, done, total, launch: bool):
    """[any fault, (after a launch) any PE still blocking the command stream, any PE whose
    stream stopped short]."""
    blocked = jnp.any(cmd_blocked) if launch else jnp.bool_(False)
    return jnp.stack([jnp.any(fault != 0), blocked, jnp.any(done < total)])


class Engine:
    """Compiled entry points for one Program.

    Args:
      program: the compiled Program.
      loop_limit: the iteration budget of each loop nest (`wsejax.diagnostics.loop_ran_past`)
        and the ticks a command may run before the PEs still busy fault.
      matvec_loops: lower a loop of `@fmacs` over an advancing DSD to one matrix product, at
        BLAS speed but not bit-exact: it sums in another order and, on CPU, flushes f32
        subnormals. False (the default) runs it step by step, as written, IEEE-exact.
      schedule_seed: None for the deterministic policy (the lowest runnable task ID first);
        an int picks among runnable tasks at random, reproducibly, to flush out programs that
        rely on an order the hardware does not promise.
      band: the columns of a banded tick (`wsejax.engine.band`): None picks a width (or none)
        from the fabric and its routes, 0 runs every tick over the whole grid.
    """

    def __init__(self, program: ir.Program, *, loop_limit: int = DEFAULT_LOOP_LIMIT,
                 matvec_loops: bool = False, schedule_seed: int | None = None,
                 queue_capacity: int = QUEUE_CAPACITY, devices: int | None = None,
                 band: int | None = None):
        self.program = program
        self.mesh = fabric_mesh(program.height, program.width, devices)
        self.loop_limit = loop_limit
        self.schedule_seed = schedule_seed
        self.capacity = int(queue_capacity)
        if self.capacity < 1:
            raise ValueError(f"queue_capacity={queue_capacity}: expected at least 1")
        self.plan = plan_slots(program)
        self.fault_texts: list[str] = [""]
        self._launch: dict[str, object] = {}
        self._commands: dict = {}
        self.output = sys.stdout
        self._lines: dict = {}
        self.lowerers = [
            Lowerer(pe, self.plan.symbol_slot[c], self.plan.dsd_key[c],
                    dsd_candidates(pe, list(self.plan.dsd_key[c])),
                    (program.height, program.width), self.register_fault, loop_limit,
                    matvec_loops, cls=c, capacity=self.capacity,
                    table_values=functools.cache(functools.partial(self._table_values, c)),
                    printer=self._print, fp16=program.fp16)
            for c, pe in enumerate(program.classes)]
        self._discover()
        self.task_groups = [shared_bodies(pe) for pe in program.classes]
        self.filters = build_filters(program)
        self.switched = {col: SwitchedColor.of(t) for col, t in program.switched.items()}
        self.any_flush = any(pe.flushed for pe in program.classes)
        self.any_collective = any(ir.collective_record(a) in pe.addresses
                                  for pe in program.classes for a in ("x", "y"))
        self.router = build_router(
            program.resolved, routed_channels(program.resolved, self.outboxes),
            (program.height, program.width), self.mesh, self.outboxes)
        self.band = plan_band(self, band)
        # host round trips: jitted calls dispatched, device-to-host transfers
        self.counts = collections.Counter()

    def _table_values(self, c: int, table: str) -> tuple:
        """The values per-PE table `table` holds on the PEs of tile class c."""
        values = self.program.table(table)[self.program.class_of == c]
        return tuple(np.unique(values).tolist())

    def _roots(self, c: int) -> list[str]:
        pe = self.program.classes[c]
        names = [e.fn for e in pe.exports if isinstance(e, ir.ExportFunc)]
        return names + [t.fn for t in pe.tasks if t.fn not in names]

    def _discover(self) -> None:
        """Trace every body once (shapes only) to find the fabric operations, the functions
        that wait on one, and so the blocks of the bodies that wait (`engine.cfg`)."""
        if any(low.pe.tasks or has_fabric(low.pe) for low in self.lowerers):
            jax.eval_shape(self._trace_all, init_state(self.program, self.plan,
                                                       self._dsd_init))
        self.cfgs: list[Cfg] = []
        self.cfg_of: dict = {}
        nxt = 1
        for c, low in enumerate(self.lowerers):
            stall_sites = {k for k, v in low.sites.items() if v.hidden}
            for fn in self._roots(c):
                if fn in low.stall_fns:
                    cfg = build_cfg(low.pe, c, fn, stall_sites, low.stall_fns, nxt)
                    nxt += len(cfg.blocks)
                    self.cfgs.append(cfg)
                    self.cfg_of[(c, fn)] = cfg
        self._plan_queues()
        self.dynamic = bool(self.cfgs or self.colors or any(
            low.pe.tasks or low.sites or low.pe.fifos for low in self.lowerers))
        self.launchables = [e for e in self.program.exports if e.kind == "func"]

    def _dsd_init(self, c: int, name: str) -> dict:
        return self.lowerers[c].dsd_init_fields(name)

    def _trace_all(self, state: FabricState):
        """Lower every root body of every class once, in discovery mode."""
        m = self._machine(state)
        for c, low in enumerate(self.lowerers):
            low.discovering = True
            try:
                for fn in self._roots(c):
                    f = low.pe.function(fn)
                    args = [jnp.zeros((), t.np) for _, t in f.params]
                    low.run(m, fn, args, None)
            finally:
                low.discovering = False
        return m.fault

    def _plan_queues(self) -> None:
        """The colors each PE has an inbox for (each color something consumes, the host
        injects, or a route delivers from a producer) and an outbox for (each color it sends
        on or the host drains), and those that carry control wavelets."""
        p = self.program
        produced = {col for col, kind in p.streams if kind == "d2h"}
        consumed = {col for col, kind in p.streams if kind == "h2d"}
        control = set()     # the colors some PE sends control wavelets on
        advancing = set()   # the colors of some `.advance_switch` fabout
        for low in self.lowerers:
            for t in low.pe.tasks:
                if t.kind == "data":
                    consumed.update(low.colors(t.color))
            for info in low.sites.values():
                for col in info.fabric_outputs():
                    produced.update(low.colors(col))
                for col in info.control_outputs():
                    control.update(low.colors(col))
                for col in info.advance_outputs():
                    advancing.update(low.colors(col))
                for col in info.fabric_inputs():
                    consumed.update(low.colors(col))
        self.outboxes = sorted(produced)
        self.inboxes = sorted(consumed | ((set(p.resolved) | set(p.switched)) & produced)
                              | set(routed_channels(p.resolved, produced)))
        self.colors = sorted(produced | consumed)
        self.control_colors = sorted(control)
        # a static color has no switch to advance: only a switched one keeps the marks
        self.advance_colors = sorted(advancing & set(p.switched))
        if (control or self.advance_colors) and self.capacity > MAX_CONTROL_CAPACITY:
            what = "sends control wavelets" if control else "advances a switch from a fabout"
            raise ProgramError(f"queue_capacity={self.capacity}: a program that {what} "
                               f"runs with queues of at most {MAX_CONTROL_CAPACITY}")

    def _fabric_state(self) -> FabricArrays:
        """The fabric arrays of `FabricState.fab` after load (`wsejax.engine.rings`)."""
        h, w = self.program.height, self.program.width

        def zeros(dtype=jnp.int32):
            # a buffer of its own for each field: the state is donated, field by field
            return jnp.zeros((h, w), dtype)

        ut_blocked = None
        if any(uses_ut_blocking(pe) for pe in self.program.classes):
            blocked = np.zeros((h, w), np.uint32)
            for c, pe in enumerate(self.program.classes):
                blocked[self.program.class_of == c] = sum(1 << k for k in pe.blocked_uts)
            ut_blocked = jnp.asarray(blocked)
        return FabricArrays(
            pc=zeros(), runs=zeros(jnp.uint32), ticks=jnp.int32(0), wavelets=jnp.uint32(0),
            launch=zeros(),
            args={idx: tuple(zeros(t.np) for t in e.params)
                  for idx, e in enumerate(self.launchables)},
            inbox={col: self._ring(col) for col in self.inboxes},
            outbox={col: self._ring(col, col in self.advance_colors) for col in self.outboxes},
            fifos={(c, f.name): FifoCounts(zeros(), zeros(), zeros() - 1, zeros() - 1)
                   for c, low in enumerate(self.lowerers) for f in low.pe.fifos},
            slots={(c, site): self._slot(info)
                   for c, low in enumerate(self.lowerers) for site, info in low.sites.items()},
            frames={cfg.frame_key(name): zeros(t.np)
                    for cfg in self.cfgs for name, t in cfg.locals.items()} | {
                f"{cfg.frame_key(name)}.{f}": zeros(jnp.int32) for cfg in self.cfgs
                for name in cfg.dsd_locals for f in ("base", "offset", "stride", "length")},
            queue_colors=self._queue_colors(),
            flushes={(kind, n): zeros() for low in self.lowerers for kind, n in low.pe.flushed},
            filters={col: {f: jnp.asarray(v) for f, v in t.initial().items()}
                     for col, t in self.filters.items()},
            ut_blocked=ut_blocked,
            switched={col: initial_state(t) for col, t in self.switched.items()
                      if col in self.outboxes})

    def _ring(self, col: int, advance: bool = False) -> Ring:
        """An empty queue of color col, with control marks where the color needs them (and
        advance marks with `advance`)."""
        h, w = self.program.height, self.program.width
        ctl = jnp.zeros((h, w), jnp.uint32) if col in self.control_colors else None
        adv = jnp.zeros((h, w), jnp.uint32) if advance else None
        return Ring(jnp.zeros((h, w, self.capacity), jnp.uint32), jnp.zeros((h, w), jnp.int32),
                    jnp.zeros((h, w), jnp.int32), ctl, adv)

    def _slot(self, info) -> Slot:
        """An idle microthread slot, with the captured fields it keeps per PE
        (`SiteInfo.fields`) at their values before any start."""
        h, w = self.program.height, self.program.width
        fields = {}
        for f in info.slot_fields():
            dtype, unset = info.field_init(f)
            fields[f] = jnp.full((h, w), unset, dtype)
        return Slot(jnp.zeros((h, w), bool), jnp.zeros((h, w), jnp.int32), fields)

    def _queue_colors(self) -> dict:
        """Each queue bound at run time: each PE's color, initially its `@initialize_queue`
        one."""
        h, w = self.program.height, self.program.width
        out = {}
        for c, low in enumerate(self.lowerers):
            for _, _, color in low.pe.queues:
                if isinstance(color, ir.QueueColor):
                    out.setdefault(color.key, np.full((h, w), -1, np.int32))
                    out[color.key][self.program.class_of == c] = color.colors[0]
        return {k: jnp.asarray(v) for k, v in out.items()}

    def _print(self, parts, coords, mask, values) -> None:
        """Host side of `<simprint>`: append each printing PE's text to its line buffer and
        write out complete lines (PEs in row-major order)."""
        mask = np.asarray(mask)
        values = [np.asarray(v) for v in values]
        for y, x in zip(*np.nonzero(mask)):
            text = []
            k = 0
            for p in parts:
                if isinstance(p, str):
                    text.append(p)
                else:
                    t = p[0].dtype
                    text.append(format_value(host_view(values[k][y, x], t), p[1], t))
                    k += 1
            key = (int(x), int(y))
            buf = self._lines.get(key, "") + "".join(text)
            *lines, rest = buf.split("\n")
            for line in lines:
                prefix = f"PE({x},{y}): " if coords else ""
                print(prefix + line, file=self.output, flush=True)
            self._lines[key] = rest

    def register_fault(self, text: str) -> int:
        """The code of fault `text` (`FabricState.fault`), numbered on first use."""
        if text not in self.fault_texts:
            self.fault_texts.append(text)
        return self.fault_texts.index(text)

    def initial_state(self) -> FabricState:
        state = init_state(self.program, self.plan, self._dsd_init)
        state = state.replace(fab=self._fabric_state())
        if self.mesh is None:
            return state
        # every per-PE array is split over the mesh by its [H, W] axes; XLA partitions the
        # jitted loops and moves what crosses a shard edge with collectives
        h, w = self.program.height, self.program.width

        def place(x):
            x = jnp.asarray(x)
            spec = P("y", "x") if x.ndim >= 2 and x.shape[:2] == (h, w) else P()
            return jax.device_put(x, NamedSharding(self.mesh, spec))

        return jax.tree_util.tree_map(place, state)

    def bytes_per_pe(self, state: FabricState) -> dict:
        """Emulated bytes per PE: `{"state": all per-PE arrays (memory, DSD fields, task bits,
        queues, slots, tables), "declared": the largest PE program's memory}`."""
        h, w = self.program.height, self.program.width
        total = sum(x.nbytes for x in jax.tree_util.tree_leaves(state)
                    if x.ndim >= 2 and x.shape[:2] == (h, w))
        return {"state": total / (h * w),
                "declared": max(pe.memory_bytes for pe in self.program.classes)}

    @staticmethod
    def _machine(state: FabricState) -> Machine:
        return Machine(mem=dict(state.mem), dsd={k: dict(v) for k, v in state.dsd.items()},
                       cmd=state.cmd_blocked, cycles=state.cycles, prng=state.prng,
                       fault=state.fault, tables=state.tables, active=state.active,
                       blocked=state.blocked, fab=state.fab.copy())

    @staticmethod
    def _state(state: FabricState, m: Machine) -> FabricState:
        return state.replace(mem=m.mem, dsd=m.dsd, cmd_blocked=m.cmd, cycles=m.cycles,
                             prng=m.prng, fault=m.fault, active=m.active, blocked=m.blocked,
                             fab=m.fab)

    # -- launch -----------------------------------------------------------------------------

    def exported_function(self, c: int, name: str) -> ir.Function | None:
        pe = self.program.classes[c]
        for e in pe.exports:
            if isinstance(e, ir.ExportFunc) and e.name == name:
                return pe.function(e.fn)
        return None

    def launch_fn(self, name: str):
        """The jitted `launch(state, args) -> state` of exported function `name`, for a
        program without tasks or fabric traffic (others go through `request_fn`)."""
        fn = self._launch.get(name)
        if fn is None:
            # the state is donated: a launch updates it in place instead of copying every
            # symbol it does not write
            fn = jax.jit(lambda state, args: self._run_launch(name, state, args),
                         donate_argnums=0)
            self._launch[name] = fn
        return fn

    def class_mask(self, tables: dict, c: int, healthy):
        """The PEs of tile class c (among `healthy`, when given); `tables` are the state's."""
        if len(self.program.classes) == 1:
            return healthy
        mask = tables["class"] == c
        return mask if healthy is None else mask & healthy

    def _run_launch(self, name: str, state: FabricState, args) -> FabricState:
        m = self._machine(state)
        for c, low in enumerate(self.lowerers):
            f = self.exported_function(c, name)
            if f is None:
                continue
            # a PE that faulted earlier runs nothing more
            mask = self.class_mask(state.tables, c, state.fault == 0)
            m.cmd = m.cmd | mask
            m = low.run(m, f.name, args, mask)
        return self._state(state, m)

    def request_fn(self, name: str):
        """The jitted `(state, args) -> state` that asks every PE exporting function `name`
        to run it, with `args`, as soon as its main thread is idle (spec 12.5); the fabric
        loop (`run_fabric`) then starts it. For programs with tasks or fabric traffic."""
        key = ("request", name)
        fn = self._commands.get(key)
        if fn is None:
            idx = next(k for k, e in enumerate(self.launchables) if e.name == name)

            def run(state, args):
                fab = state.fab.copy()
                mask = jnp.zeros(state.fault.shape, bool)
                for c in range(len(self.program.classes)):
                    if self.exported_function(c, name) is not None:
                        mask = mask | (state.tables["class"] == c)
                mask = mask & (state.fault == 0)
                fab.launch = jnp.where(mask, idx + 1, fab.launch)
                fab.args[idx] = tuple(jnp.where(mask, jnp.asarray(a, old.dtype), old)
                                      for a, old in zip(args, fab.args[idx]))
                return state.replace(fab=fab, cmd_blocked=state.cmd_blocked | mask)

            fn = jax.jit(run, donate_argnums=0)
            self._commands[key] = fn
        return fn

    # -- the fabric command -----------------------------------------------------------------

    def run_fabric(self, state: FabricState, stream: int = -1, data=None, total=None):
        """Run the fabric to quiescence: after a launch (`stream` -1), or for the streaming
        memcpy `program.streams[stream]` with its wavelets `data` (`[H, W, l]` uint32) and
        per-PE counts `total`. Returns `(state, data, done)`, done the wavelets moved per PE.

        One jitted loop serves every command; `data` is padded to a bucket of lengths so
        that streams of different lengths share it."""
        h, w = self.program.height, self.program.width
        l = 0 if data is None else data.shape[-1]
        bucket = max(STREAM_BUCKET, 1 << max(l - 1, 0).bit_length())
        padded = np.zeros((h, w, bucket), np.uint32)
        if data is not None:
            padded[:, :, :l] = data
        if total is None:
            total = np.zeros((h, w), np.int32)
        args = (np.int32(stream), padded, np.asarray(total, np.int32))
        line = Progress("run", 0)
        if line.enabled or self.band is not None:
            state, out, done = self._run_in_pieces(state, line, *args)
            return state, out[:, :, :l], done
        fn = self._commands.get("fabric")
        if fn is None:
            def run(state, stream, data, total):
                m = self._machine(state)
                host = HostCarry(stream, data, total, jnp.zeros_like(total))
                m, host = run_ticks(self, m, host)
                return self._state(state, m), host.data, host.done

            fn = jax.jit(run, donate_argnums=0)
            self._commands["fabric"] = fn
        self.counts["dispatches"] += 1
        state, out, done = fn(state, *args)
        return state, out[:, :, :l], done

    def _pieces(self):
        """The jitted `pieces[banded](state, host, progress, ticks, stop)` (ticks up to
        `stop`; with a band, full ticks (`False`) until the work fits it, banded ticks
        (`True`) while it does, also returning whether it fits) and `end(state, host,
        progress, ticks)` of a command run in pieces. `jax.jit` compiles on first call: the
        banded loop only once a command's work fits the band."""
        fns = self._commands.get("pieces")
        if fns is None:
            def piece(banded, state, host, going, ticks, stop):
                m = self._machine(state)
                m, host, going, ticks, *fits = loop_ticks(self, m, host, going, ticks, stop,
                                                          banded)
                return (self._state(state, m), host, going, ticks,
                        fits[0] if fits else jnp.bool_(False))

            def end(state, host, going, ticks):
                m = self._machine(state)
                m, host = end_ticks(self, m, host, going, ticks)
                return self._state(state, m), host.data, host.done

            def jitted(banded):
                return jax.jit(functools.partial(piece, banded), donate_argnums=(0, 1))

            if self.band is None:
                pieces = dict.fromkeys((False, True), jitted(None))
            else:
                pieces = {False: jitted(False), True: jitted(True)}
            fns = (pieces, jax.jit(end, donate_argnums=(0, 1)))
            self._commands["pieces"] = fns
        return fns

    def _run_in_pieces(self, state: FabricState, line: Progress, stream, data, total):
        """`run_fabric`'s loop in pieces of ticks, each about a refresh of the progress `line`
        long, with the line drawn between them, or, off a terminal, to the end; with a band,
        also turning between full and banded ticks (the same ticks as one loop)."""
        pieces, end = self._pieces()
        host = HostCarry(jnp.asarray(stream), jnp.asarray(data), jnp.asarray(total),
                         jnp.zeros(total.shape, jnp.int32))
        going, ticks, n, size = jnp.bool_(True), jnp.int32(0), 0, 1
        banded = False
        t0 = time.monotonic()
        while True:
            t = time.monotonic()
            stop = n + size if line.enabled else self.loop_limit
            state, host, going, ticks, fits = pieces[banded](state, host, going, ticks,
                                                             np.int32(stop))
            self.counts["dispatches"] += 1
            self.counts["fetches"] += 3
            n = int(ticks)
            if not bool(going) or n >= self.loop_limit:
                break
            banded = bool(fits)
            if not line.enabled:
                continue
            now = time.monotonic()
            line.show(f"tick {n} ({now - t0:.1f} s)")
            size = max(1, min(4 * size, int(size / RATE / max(now - t, 1e-3))))
        self.counts["dispatches"] += 1
        out = end(state, host, going, ticks)
        line.close()
        return out

    def stream_index(self, kind: str, color: int) -> int:
        return self.program.streams.index((color, kind))

    # -- copy-mode memcpy -------------------------------------------------------------------

    def h2d(self, state: FabricState, slot: str, bits: int, px: int, py: int, first: int,
            block: np.ndarray, mask: np.ndarray | None = None) -> FabricState:
        """Write `block` (`[h, w, l]` uint words, `bits` wide) into the slot's word view at PEs
        `(px.., py..)`, words `first..`; only PEs where `mask` (`[h, w]`) holds, if given."""
        h, w = block.shape[:2]
        if mask is None:
            mask = np.ones((h, w), bool)
        mem = dict(state.mem)
        self.counts["dispatches"] += 1
        put = put_block(bits)(self._word_image(state, slot), jnp.asarray(block),
                              jnp.asarray(mask), np.int32(py), np.int32(px), np.int32(first))
        mem[slot] = cb16.decode(put) if self._is_cb16(slot) else put
        return state.replace(mem=mem)

    def _is_cb16(self, slot: str) -> bool:
        return self.plan.slots[slot][0] is DType.cb16

    def _word_image(self, state: FabricState, slot: str):
        """The slot's array as memcpy sees its bits: cb16 values (held as f32) as their
        16-bit patterns."""
        arr = state.mem[slot]
        return cb16.encode(arr) if self._is_cb16(slot) else arr

    def d2h(self, state: FabricState, slot: str, bits: int, px: int, py: int, first: int,
            h: int, w: int, l: int) -> np.ndarray:
        """The `[h, w, l]` uint words (`bits` wide) of the slot's word view at PEs
        `(px.., py..)`, words `first..`."""
        self.counts["dispatches"] += 1
        out = get_block(bits, (h, w, l))(self._word_image(state, slot), np.int32(py),
                                          np.int32(px), np.int32(first))
        return self.fetch(out)

    def words_per_pe(self, slot: str, bits: int) -> int:
        dtype, shape = self.plan.slots[slot]
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        have = dtype.bits
        if have == bits:
            return n
        return n * 2 if have == 32 else (n + 1) // 2

    # -- host-side checks -------------------------------------------------------------------

    def fetch(self, x) -> np.ndarray:
        """`x` on the host: one device-to-host transfer (counted in `counts["fetches"]`)."""
        self.counts["fetches"] += 1
        return np.asarray(x)

    def check(self, state: FabricState, command: str, done=None, total=None) -> None:
        """Raise what a command left wrong: a device fault; after a launch, PEs that never
        unblocked the command stream; after a stream, PEs that stopped short. All is well
        in one dispatch and one transfer of three flags; the per-PE arrays come to the host
        only to describe a failure."""
        launch = done is None
        if launch:
            done = total = jnp.zeros((), jnp.int32)
        self.counts["dispatches"] += 1
        flags = self.fetch(_flags(state.fault, state.cmd_blocked, jnp.asarray(done),
                                  jnp.asarray(total), launch))
        if flags[0]:
            self.check_faults(state)
        if flags[1]:
            self.check_command_stream(state, command)
        if flags[2]:
            self.check_stream(state, command, done, total)

    def check_faults(self, state: FabricState) -> None:
        fault = np.asarray(state.fault)
        if not fault.any():
            return
        ys, xs = np.nonzero(fault)
        codes = sorted(set(fault[ys, xs].tolist()))
        code = codes[0]
        pes = [(int(x), int(y)) for y, x in zip(ys, xs) if fault[y, x] == code]
        text = self.fault_texts[code] if code < len(self.fault_texts) else f"fault {code}"
        raise device_fault(text, len(codes), pes)

    def check_command_stream(self, state: FabricState, command: str) -> None:
        blocked = np.asarray(state.cmd_blocked)
        if not blocked.any():
            return
        ys, xs = np.nonzero(blocked)
        pes = [(int(x), int(y)) for y, x in zip(ys, xs)]
        raise command_stuck(command, pes, self.stuck_lines(state, pes))

    def check_stream(self, state: FabricState, command: str, done, total) -> None:
        """A streaming memcpy that stopped short: the PEs whose wavelets did not all move."""
        done, total = np.asarray(done), np.asarray(total)
        short = done < total
        if not short.any():
            return
        ys, xs = np.nonzero(short)
        pes = [(int(x), int(y)) for y, x in zip(ys, xs)]
        verb = "took" if command.startswith("memcpy_h2d") else "sent"
        raise stream_short(command, [(x, y, done[y, x], total[y, x]) for x, y in pes], verb,
                           self.stuck_lines(state, pes))

    def _collective_records(self, state: FabricState) -> dict:
        """axis -> `[H, W, fields]` numpy array of the pending `<collectives_2d>` records."""
        out = {}
        for axis in ("x", "y"):
            name = ir.collective_record(axis)
            slots = [low.slot[name] for low in self.lowerers if name in low.slot]
            if slots:
                out[axis] = np.asarray(state.mem[slots[0]])
        return out

    def stuck_lines(self, state: FabricState, pes) -> list[str]:
        """What each of (at most `MAX_LISTED_PES` of) `pes` is doing: tasks, a waiting body,
        queues (`wsejax.diagnostics.stuck_lines`)."""
        active = unpack_tasks(np.asarray(state.active))
        blocked_ids = unpack_tasks(np.asarray(state.blocked))
        fab = state.fab
        pcs = np.asarray(fab.pc)
        ut_blocked = None if fab.ut_blocked is None else np.asarray(fab.ut_blocked)
        counts = {(col, io): np.asarray(rings[col].count) for io, rings in
                  (("in", fab.inbox), ("out", fab.outbox)) for col in rings}
        where = {b.gid: cfg.root for cfg in self.cfgs for b in cfg.blocks}
        records = self._collective_records(state)
        summaries = []
        for x, y in pes[:MAX_LISTED_PES]:
            pc = int(pcs[y, x])
            uts = [k for k in range(UT_ID_COUNT)
                   if ut_blocked is not None and int(ut_blocked[y, x]) >> k & 1]
            queues = [(col, io, int(counts[(col, io)][y, x])) for col in self.colors
                      for io in ("in", "out") if (col, io) in counts]
            summaries.append(PeSummary(
                x, y, np.nonzero(active[y, x])[0].tolist(),
                np.nonzero(blocked_ids[y, x])[0].tolist(), uts,
                where.get(pc, "?") if pc else None, [q for q in queues if q[2]],
                tuple((ir.COLLECTIVE_KINDS[int(r[y, x, 0]) - 1], axis)
                      for axis, r in records.items() if r[y, x, 0] != 0)))
        return stuck_lines(summaries, len(pes))
