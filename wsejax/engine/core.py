"""The engine: the compiled entry points that run host commands on the fabric state.

One `Engine` per Program. It owns every `jax.jit`: `launch` (one compilation per exported
function), and the copy-mode memcpy scatter/gather (one per symbol slot, word width and padded
transfer size). Host-side checks of the state (faults, PEs still blocking the command stream)
turn into `FabricFault` / `DeadlockError` with PE coordinates.
"""

from __future__ import annotations

import collections
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from wsejax import ir
from wsejax.engine.cfg import Cfg, build_cfg
from wsejax.engine.fabric_ops import (
    FLUSH_PENDING,
    FLUSHED,
    MAX_CONTROL_CAPACITY,
    PICK_BY_SELECT,
    UT_BLOCKED,
    flush_key,
    pick,
    queue_key,
    ring_control,
    ring_data,
    ring_head_control,
    ring_peek,
    ring_pop,
    ring_push,
    slot_key,
    uses_ut_blocking,
)
from wsejax.engine.filters import build_filters
from wsejax.engine.lower import DEFAULT_LOOP_LIMIT, Lowerer, Machine, scatter
from wsejax.engine.router import build_router
from wsejax.engine.state import (
    FabricState,
    has_task,
    init_state,
    lowest_task,
    plan_slots,
    set_task,
    task_bit,
    unpack_tasks,
)
from wsejax.errors import DeadlockError, FabricFault, ProgramError
from wsejax.fabric import (
    NO_ENTRYPOINT,
    QUEUE_CAPACITY,
    control_entry,
    control_ignored,
    data_task_args,
)
from wsejax.hardware import UT_ID_COUNT
from wsejax.types import format_value

__all__ = ["Engine", "dsd_candidates", "fabric_mesh"]

STREAM_BUCKET = 16     # streaming memcpy lengths are padded to a power of two, at least this


def dsd_candidates(pe: ir.PeProgram, runtime_vars) -> dict[str, tuple]:
    """For each runtime DSD variable: `(bases, runtime_fields)`.

    `bases` are the `(symbol, base_offset)` pairs it may point to: a fixpoint over its
    assignments, where literals and `set_dsd_base_addr` add their base, other variables add
    theirs, and a DSD local adds every base the program mentions (conservative).
    `runtime_fields` are the fields some assignment may change (of base, offset, stride,
    length); the others keep their initial values and stay static.
    """
    init = {name: lit.dsd for name, lit in pe.dsd_vars}
    mentioned = {(d.base, d.base_offset) for d in init.values() if hasattr(d, "base")}
    assigns = {name: [] for name in runtime_vars}
    for f in pe.functions:
        for s in ir.walk_stmts(f.body):
            if isinstance(s, ir.DsdAssign):
                assigns[s.name].append(s.value)
            for e in _dsd_exprs(s):
                if isinstance(e, ir.DsdLit) and hasattr(e.dsd, "base"):
                    mentioned.add((e.dsd.base, e.dsd.base_offset))
                elif isinstance(e, ir.SetBase):
                    mentioned.add((e.symbol, e.base_offset))
    all_bases = tuple(sorted(mentioned))
    cands = {name: _own_base(init[name]) for name in runtime_vars}
    fields = {name: set() for name in runtime_vars}

    def bases(e):
        t = type(e)
        if t is ir.DsdLit:
            return _own_base(e.dsd)
        if t is ir.DsdVar:
            return cands.get(e.name, _own_base(init[e.name]))
        if t is ir.FifoRef:
            return []
        if t is ir.SetBase:
            return [(e.symbol, e.base_offset)]
        if t is ir.DsdLocal:
            return list(all_bases)
        return bases(e.dsd)

    def changed(e, name) -> set:
        """Fields of `name` that assigning `e` may change."""
        t = type(e)
        if t is ir.DsdVar and e.name == name:
            return set(fields[name])
        if t is ir.IncrementOffset:
            return changed(e.dsd, name) | {"offset"}
        if t is ir.SetBase:
            return changed(e.dsd, name) | {"base", "offset"}
        if t is ir.SetLength:
            return changed(e.dsd, name) | {"length"}
        if t is ir.SetStride:
            return changed(e.dsd, name) | {"stride"}
        if t is ir.DsdLit and type(e.dsd) is type(init[name]):
            d, d0 = e.dsd, init[name]
            out = set()
            for f in ("offset", "stride", "length"):
                if getattr(d, f, None) != getattr(d0, f, None):
                    out.add(f)
            if _own_base(d) != _own_base(d0):
                out.add("base")
            return out
        return {"base", "offset", "stride", "length"}

    again = True
    while again:
        again = False
        for name, values in assigns.items():
            for v in values:
                for b in bases(v):
                    if b not in cands[name]:
                        cands[name].append(b)
                        again = True
                new = changed(v, name) - fields[name]
                if new:
                    fields[name] |= new
                    again = True
    out = {}
    for name in runtime_vars:
        f = set(fields[name])
        if len(cands[name]) > 1:
            f.add("base")
        out[name] = (tuple(cands[name]), frozenset(f))
    return out


def _own_base(d) -> list:
    """The base of a literal memory DSD as a candidate list (none for fabric DSDs)."""
    return [(d.base, d.base_offset)] if hasattr(d, "base") else []


def _dsd_exprs(s):
    """DSD expressions appearing directly in statement s."""
    out = []

    def visit(x):
        if isinstance(x, (ir.DsdLit, ir.SetBase, ir.IncrementOffset, ir.SetLength, ir.SetStride)):
            out.append(x)
            if not isinstance(x, ir.DsdLit):
                visit(x.dsd)
        elif isinstance(x, (ir.DsdOperand,)):
            visit(x.dsd)
        elif isinstance(x, tuple):
            for y in x:
                visit(y)

    for name in ("value", "dest", "srcs", "inputs", "output", "args"):
        if hasattr(s, name):
            visit(getattr(s, name))
    return out


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


def _has_fabric(pe: ir.PeProgram) -> bool:
    """Does any body of `pe` run a DSD op with a config (async, hooks) or a FIFO?"""
    if pe.fifos:
        return True
    return any(type(s) is ir.DsdOp and (s.config is not None or any(
        type(o) is ir.DsdOperand and _fabric_expr(o.dsd, pe) for o in (s.dest,) + s.srcs))
        for f in pe.functions for s in ir.walk_stmts(f.body))


def _fabric_expr(e, pe: ir.PeProgram) -> bool:
    """Could DSD expression e be a fabric DSD or a FIFO? (a local: maybe)"""
    while not isinstance(e, (ir.DsdLit, ir.DsdVar, ir.DsdLocal, ir.FifoRef)):
        e = e.dsd
    if type(e) is ir.DsdVar:
        e = dict(pe.dsd_vars)[e.name]
    return (type(e) is ir.DsdLit and isinstance(e.dsd, (ir.FabIn, ir.FabOut))) or \
        type(e) in (ir.FifoRef, ir.DsdLocal)


def to_words(arr, bits: int):
    """View `arr` (`[H, W, *shape]`) as `[H, W, n_words]` unsigned words of `bits` bits."""
    h, w = arr.shape[:2]
    have = arr.dtype.itemsize * 8
    flat = arr.reshape(h, w, -1)
    u = {16: jnp.uint16, 32: jnp.uint32}
    if have == bits:
        return lax.bitcast_convert_type(flat, u[bits])
    if have == 32:  # 16-bit words of 32-bit elements, low half first
        return lax.bitcast_convert_type(flat, jnp.uint16).reshape(h, w, -1)
    # 32-bit words of 16-bit elements: pairs (low address = low half)
    if flat.shape[2] % 2:
        flat = jnp.concatenate([flat, jnp.zeros((h, w, 1), flat.dtype)], axis=2)
    return lax.bitcast_convert_type(flat.reshape(h, w, -1, 2), jnp.uint32)


def from_words(words, like):
    """Inverse of `to_words`: words back into an array shaped and typed like `like`."""
    h, w = like.shape[:2]
    have = like.dtype.itemsize * 8
    bits = words.dtype.itemsize * 8
    n = int(np.prod(like.shape[2:], dtype=np.int64))
    if have == bits:
        out = lax.bitcast_convert_type(words, like.dtype)
    elif have == 32:
        out = lax.bitcast_convert_type(words.reshape(h, w, -1, 2), like.dtype)
    else:
        out = lax.bitcast_convert_type(words, like.dtype).reshape(h, w, -1)[:, :, :n]
    return out.reshape(like.shape)


_PUT: dict = {}
_GET: dict = {}


def _put_block(bits: int):
    """The jitted copy-mode H2D: one dynamic update of a block of the word view. Shared by
    every slot and program; jit compiles once per array and block shape."""
    fn = _PUT.get(bits)
    if fn is None:
        def put(arr, block, mask, y, x, k):
            wv = to_words(arr, bits)
            old = lax.dynamic_slice(wv, (y, x, k), block.shape)
            new = jnp.where(mask[:, :, None], block, old)
            return from_words(lax.dynamic_update_slice(wv, new, (y, x, k)), arr)
        # the slot array is donated: a copy updates it in place
        fn = _PUT[bits] = jax.jit(put, donate_argnums=0)
    return fn


def _get_block(bits: int, shape: tuple):
    """The jitted copy-mode D2H of a block of `shape` from the word view."""
    key = (bits, shape)
    fn = _GET.get(key)
    if fn is None:
        def get(arr, y, x, k):
            return lax.dynamic_slice(to_words(arr, bits), (y, x, k), shape)
        fn = _GET[key] = jax.jit(get)
    return fn


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
      loop_limit: the iteration budget of each loop nest (`wsejax.fabric.loop_limit_text`)
        and the ticks a command may run before the PEs still busy fault.
      matvec_loops: lower a loop of `@fmacs` over an advancing DSD to one matrix product, at
        BLAS speed but not bit-exact: it sums in another order and, on CPU, flushes f32
        subnormals. False (the default) runs it step by step, as written, IEEE-exact.
      schedule_seed: None for the deterministic policy (the lowest runnable task ID first);
        an int picks among runnable tasks at random, reproducibly, to flush out programs that
        rely on an order the hardware does not promise.
    """

    def __init__(self, program: ir.Program, *, loop_limit: int = DEFAULT_LOOP_LIMIT,
                 matvec_loops: bool = False, schedule_seed: int | None = None,
                 queue_capacity: int = QUEUE_CAPACITY, devices: int | None = None):
        self.program = program
        self.mesh = fabric_mesh(program.height, program.width, devices)
        self.loop_limit = loop_limit
        self.schedule_seed = schedule_seed
        self.capacity = int(queue_capacity)
        if self.capacity < 1:
            raise ValueError(f"queue_capacity={queue_capacity}: expected at least 1")
        self.plan = plan_slots(program)
        self.fault_texts: list[str] = [""]
        self.lowerers = []
        for c, pe in enumerate(program.classes):
            runtime = list(self.plan.dsd_key[c])
            self.lowerers.append(Lowerer(
                pe, self.plan.symbol_slot[c], self.plan.dsd_key[c], dsd_candidates(pe, runtime),
                (program.height, program.width), self._register_fault, loop_limit,
                matvec_loops, cls=c, capacity=self.capacity))
        for c, low in enumerate(self.lowerers):
            low.table_values = functools.cache(functools.partial(self._table_values, c))
        self._launch: dict[str, object] = {}
        self._commands: dict = {}
        self.output = sys.stdout
        self._lines: dict = {}
        for low in self.lowerers:
            low.printer = self._print
        self._discover()
        self.filters = build_filters(program)
        self._any_flush = any(pe.flushed for pe in program.classes)
        self.router = build_router(
            program.resolved, [col for col, r in program.resolved.items()
                               if col in self.outboxes and (r.dest_source >= 0).any()],
            (program.height, program.width), self.mesh)
        # host round trips: jitted calls dispatched, device-to-host transfers
        self.counts = collections.Counter()

    # -- what the program does on the fabric ------------------------------------------------

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
        base = init_state(self.program, self.plan,
                          lambda c, name: self.lowerers[c].dsd_init_fields(name))

        def trace(state):
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

        if any(low.pe.tasks or _has_fabric(low.pe) for low in self.lowerers):
            jax.eval_shape(trace, base)
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
        p = self.program
        # a PE has an inbox for each color something consumes, the host injects, or a route
        # delivers from a producer; an outbox for each color it sends on or the host drains
        produced = {col for col, kind in p.streams if kind == "d2h"}
        consumed = {col for col, kind in p.streams if kind == "h2d"}
        control = set()     # the colors some PE sends control wavelets on
        for low in self.lowerers:
            for t in low.pe.tasks:
                if t.kind == "data":
                    consumed.update(low.colors(t.color))
            for info in low.sites.values():
                for col in info.fabric_outputs():
                    produced.update(low.colors(col))
                for col in info.control_outputs():
                    control.update(low.colors(col))
                for col in info.fabric_inputs():
                    consumed.update(low.colors(col))
        self.outboxes = sorted(produced)
        self.inboxes = sorted(consumed | (set(p.resolved) & produced))
        self.colors = sorted(produced | consumed)
        self.control_colors = sorted(control)
        if control and self.capacity > MAX_CONTROL_CAPACITY:
            raise ProgramError(f"queue_capacity={self.capacity}: a program that sends control "
                               f"wavelets runs with queues of at most {MAX_CONTROL_CAPACITY}")
        self.dynamic = bool(self.cfgs or self.colors or any(
            low.pe.tasks or low.sites or low.pe.fifos for low in self.lowerers))
        self.launchables = [e for e in p.exports if e.kind == "func"]

    def _fabric_state(self) -> dict:
        h, w = self.program.height, self.program.width
        cap = self.capacity
        z = np.zeros((h, w), np.int32)
        fab = {"pc": z, "runs": np.zeros((h, w), np.uint32), "ticks": np.int32(0),
               "wavelets": np.uint32(0)}
        for io, cols in (("in", self.inboxes), ("out", self.outboxes)):
            for col in cols:
                q = f"{io}{col}"
                fab[q + ".buf"] = np.zeros((h, w, cap), np.uint32)
                fab[q + ".head"] = z
                fab[q + ".count"] = z
                if col in self.control_colors:
                    fab[q + ".ctl"] = np.zeros((h, w), np.uint32)
        for c, low in enumerate(self.lowerers):
            for f in low.pe.fifos:
                fab[low.fifo_key(f.name) + ".head"] = z
                fab[low.fifo_key(f.name) + ".count"] = z
            for site, info in low.sites.items():
                key = slot_key(c, site)
                fab[key + ".run"] = np.zeros((h, w), bool)
                fab[key + ".pos"] = z
                # the captured fields that differ between starts or PEs (SiteInfo.fields)
                for f in info.slot_fields():
                    dtype, unset = info.field_init(f)
                    fab[f"{key}.{f}"] = np.full((h, w), unset, dtype)
        for cfg in self.cfgs:
            for name, t in cfg.locals.items():
                fab[cfg.frame_key(name)] = np.zeros((h, w), t.np)
        fab.update(self._queue_state())
        if any(uses_ut_blocking(pe) for pe in self.program.classes):
            blocked = np.zeros((h, w), np.uint32)
            for c, pe in enumerate(self.program.classes):
                blocked[self.program.class_of == c] = sum(1 << k for k in pe.blocked_uts)
            fab[UT_BLOCKED] = blocked
        fab["launch"] = z
        for idx, e in enumerate(self.launchables):
            for k, t in enumerate(e.params):
                fab[f"arg{idx}.{k}"] = np.zeros((h, w), t.np)
        return {k: jnp.asarray(v) for k, v in fab.items()}

    def _queue_state(self) -> dict:
        """The state of queues bound at run time (each PE's color, initially its
        `@initialize_queue` one), of `@queue_flush` (NO_FLUSH) and of the color filters."""
        h, w = self.program.height, self.program.width
        class_of = self.program.class_of
        fab = {}
        for c, low in enumerate(self.lowerers):
            for _, _, color in low.pe.queues:
                if isinstance(color, ir.QueueColor):
                    key = queue_key(color)
                    fab.setdefault(key, np.full((h, w), -1, np.int32))
                    fab[key][class_of == c] = color.colors[0]
            for kind, n in low.pe.flushed:
                fab[flush_key(kind, n)] = np.zeros((h, w), np.int32)
        for col, t in self.filters.items():
            for f, v in t.initial().items():
                fab[f"filter{col}.{f}"] = v
        return fab

    def _queue_flushes(self, m: Machine, healthy):
        """Each `@queue_flush` waiting for its queue, where the queue is empty now: the
        teardown task (29) is activated and the queue is FLUSHED (until `queue_flush.exit`).
        Returns whether any fired."""
        fired = jnp.zeros(healthy.shape, bool)
        F = m.fab
        for c, low in enumerate(self.lowerers):
            if not low.pe.flushed:
                continue
            low.M = m
            cm = self._class_mask(m.tables, c, healthy)
            cm = healthy if cm is None else cm
            for kind, n in low.pe.flushed:
                key = flush_key(kind, n)
                io = "in" if kind == "input" else "out"
                color = low.queue_color(kind, n)
                empty = low.per_color(color, lambda col, io=io: F[f"{io}{col}.count"] == 0
                                      if f"{io}{col}.count" in F else
                                      jnp.ones(healthy.shape, bool))
                fire = cm & (F[key] == FLUSH_PENDING) & empty
                F[key] = jnp.where(fire, FLUSHED, F[key])
                m.active = m.active | task_bit(29, fire)
                fired = fired | fire
        return jnp.any(fired)

    def _filter(self, m: Machine, col: int, k, got, marks):
        """The wavelets of color `col` that pass each receiving PE's filter (`k` `[H, W]`
        delivered, `got` `[H, W, cap]` them, `marks` their control marks or None):
        `(n, packed, packed marks)`; updates the filter state."""
        t = self.filters.get(col)
        if t is None:
            return k, got, marks
        F = m.fab
        names = ("cnt", "lim", "phase")
        n, packed, packed_marks, new = t.apply(k, got, {f: F[f"filter{col}.{f}"]
                                                         for f in names}, marks)
        for f in names:
            F[f"filter{col}.{f}"] = new[f]
        return n, packed, packed_marks

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
                    text.append(format_value(values[k][y, x], p[1]))
                    k += 1
            key = (int(x), int(y))
            buf = self._lines.get(key, "") + "".join(text)
            *lines, rest = buf.split("\n")
            for line in lines:
                prefix = f"PE({x},{y}): " if coords else ""
                print(prefix + line, file=self.output, flush=True)
            self._lines[key] = rest

    def _register_fault(self, text: str) -> int:
        if text not in self.fault_texts:
            self.fault_texts.append(text)
        return self.fault_texts.index(text)

    def initial_state(self) -> FabricState:
        state = init_state(self.program, self.plan,
                           lambda c, name: self.lowerers[c].dsd_init_fields(name))
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
                       blocked=state.blocked, fab=dict(state.fab))

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

    def _class_mask(self, tables: dict, c: int, healthy):
        """The PEs of tile class c (among `healthy`, when given); `tables` are the state's."""
        if len(self.program.classes) == 1:
            return healthy
        mask = tables["class"] == c
        return mask if healthy is None else mask & healthy

    def _start_body(self, m: Machine, c: int, fn: str, mask, args) -> None:
        """Start function `fn` of class c on the lanes in `mask`: a body that waits enters
        its first block (the fabric loop runs it), any other runs to its end now."""
        cfg = self.cfg_of.get((c, fn))
        if cfg is not None:
            self._enter(m, cfg, mask, args)
            return
        low = self.lowerers[c]

        def run(inner):
            m.load(inner)
            low.run(m, fn, args, mask)
            return m.carry()

        m.load(lax.cond(jnp.any(mask), run, lambda inner: inner, m.carry()))

    def _run_launch(self, name: str, state: FabricState, args) -> FabricState:
        m = self._machine(state)
        for c, low in enumerate(self.lowerers):
            f = self.exported_function(c, name)
            if f is None:
                continue
            # a PE that faulted earlier runs nothing more
            mask = self._class_mask(state.tables, c, state.fault == 0)
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
                fab = dict(state.fab)
                mask = jnp.zeros(state.fault.shape, bool)
                for c in range(len(self.program.classes)):
                    if self.exported_function(c, name) is not None:
                        mask = mask | (state.tables["class"] == c)
                mask = mask & (state.fault == 0)
                fab["launch"] = jnp.where(mask, idx + 1, fab["launch"])
                for k, a in enumerate(args):
                    key = f"arg{idx}.{k}"
                    fab[key] = jnp.where(mask, jnp.asarray(a, fab[key].dtype), fab[key])
                return state.replace(fab=fab, cmd_blocked=state.cmd_blocked | mask)

            fn = jax.jit(run, donate_argnums=0)
            self._commands[key] = fn
        return fn

    def _start_launches(self, m: Machine, idle):
        """Idle PEs with a launch request start the launched function; returns the PEs that
        started one."""
        F = m.fab
        started = jnp.zeros_like(idle)
        for idx, e in enumerate(self.launchables):
            pend = idle & (F["launch"] == idx + 1)
            args = tuple(F[f"arg{idx}.{k}"] for k in range(len(e.params)))
            for c in range(len(self.lowerers)):
                f = self.exported_function(c, e.name)
                if f is None:
                    continue
                mask = self._class_mask(m.tables, c, pend)
                m.fab["launch"] = jnp.where(mask, 0, m.fab["launch"])
                self._start_body(m, c, f.name, mask, args)
            started = started | pend
        return started

    def _enter(self, m: Machine, cfg: Cfg, mask, args) -> None:
        """Start a body that waits on the lanes in `mask`: its first block, its arguments."""
        F = m.fab
        F["pc"] = jnp.where(mask, cfg.entry, F["pc"])
        for (pname, t), a in zip(cfg.params, args):
            if t == "dsd":
                raise ProgramError(f"{cfg.root}: a DSD parameter of a body that waits")
            key = cfg.frame_key(pname)
            F[key] = jnp.where(mask, jnp.asarray(a).astype(t.np), F[key])

    # -- the fabric loop --------------------------------------------------------------------

    def _run_fabric(self, m: Machine, host):
        """Run ticks (tasks, waiting bodies, microthreads, router, host transfers) until a
        tick changes nothing (spec 12.5: the command then checks its condition), or until
        `loop_limit` ticks. `host` is `(stream, data, total, done)`: the index of the
        streaming memcpy in `program.streams` (-1: none) and its wavelets; returns
        `(machine, host)`."""
        limit = self.loop_limit

        def tick(carry):
            mc, hc, _, ticks = carry
            m.load(mc)
            healthy = m.fault == 0
            pc0 = m.fab["pc"]
            flushed = self._queue_flushes(m, healthy) if self._any_flush else False
            started = self._start_tasks(m, healthy, ticks) | flushed
            self._run_blocks(m, healthy)
            advanced = self._microthreads(m, healthy)
            moved = self._route(m)
            hc, hmoved = self._host(m, hc)
            progress = started | jnp.any(m.fab["pc"] != pc0) | advanced | (moved > 0) \
                | (hmoved > 0)
            m.fab["wavelets"] = m.fab["wavelets"] + (moved + hmoved).astype(jnp.uint32)
            return m.carry(), hc, progress, ticks + 1

        def cond(carry):
            return carry[2] & (carry[3] < limit)

        carry = lax.while_loop(cond, tick, (m.carry(), host, jnp.bool_(True), jnp.int32(0)))
        m.load(carry[0])
        m.fab["ticks"] = m.fab["ticks"] + carry[3]
        runaway = carry[2] & (carry[3] >= limit)
        code = self._register_fault(f"the fabric was still busy after {limit} ticks (a task "
                                    "that keeps re-activating itself, or an endless loop?)")
        stuck = (m.fab["pc"] != 0) | m.cmd | jnp.any((m.active & ~m.blocked) != 0, axis=-1)
        m.fault = jnp.where((m.fault == 0) & runaway & stuck, jnp.int32(code), m.fault)
        return m, carry[1]

    def _start_tasks(self, m: Machine, healthy, ticks):
        """Each PE whose main thread is idle starts its runnable task with the lowest ID (a
        local task consumes its activation, a data task its wavelet)."""
        idle = healthy & (m.fab["pc"] == 0)
        launched = self._start_launches(m, idle) if self.launchables else None
        F = m.fab
        if launched is not None:
            idle = idle & ~launched & (F["pc"] == 0)
        runnable = m.active & ~m.blocked
        consuming = self._consuming(m)

        def waiting(col):
            """A data wavelet waits on color col, and no running operation reads it."""
            has = ring_data(F, f"in{col}") > 0
            return has & ~consuming[col] if col in consuming else has

        started_control = self._control_arrivals(m, healthy)
        # what starts a control task: one peek of each inbox, shared by every control task
        heads = self._control_heads(m)

        for c, low in enumerate(self.lowerers):
            cm = self._class_mask(m.tables, c, None)
            low.M = m
            for t in low.pe.tasks:
                if t.kind != "data":
                    continue
                ready = low.per_color(t.color, waiting)
                ready = ready & ~has_task(m.blocked, t.id)
                if cm is not None:
                    # only this class's PEs: another class may bind the ID otherwise
                    ready = jnp.where(cm, ready, has_task(runnable, t.id))
                runnable = set_task(runnable, t.id, ready)
            for t in low.pe.tasks:
                if t.kind == "control":
                    ready = self._control_ready(m, low, t.id, heads)[0] \
                        & ~has_task(m.blocked, t.id)
                    if cm is not None:
                        ready = jnp.where(cm, ready, has_task(runnable, t.id))
                    runnable = set_task(runnable, t.id, ready)
        runnable = jnp.where(idle[..., None], runnable, jnp.uint32(0))
        has = jnp.any(runnable != 0, axis=-1)
        if self.schedule_seed is None:
            first = lowest_task(runnable)
        else:
            # the seeded random-order mode: any runnable task may go first
            each = unpack_tasks(runnable)
            key = jax.random.fold_in(jax.random.PRNGKey(self.schedule_seed), ticks)
            noise = jax.random.uniform(key, each.shape)
            first = jnp.argmax(jnp.where(each, noise, -1.0), axis=-1)
        for c, low in enumerate(self.lowerers):
            cm = self._class_mask(m.tables, c, None)
            for task in low.pe.tasks:
                mask = has & (first == task.id)
                if cm is not None:
                    mask = mask & cm
                if task.kind == "data":
                    args = self._pop_wavelet(m, task, low, mask)
                elif task.kind == "control":
                    args = self._pop_control(m, task, low, mask, heads)
                else:
                    m.active = m.active & ~task_bit(task.id, mask)
                    args = ()
                m.fab["runs"] = m.fab["runs"] + mask.astype(jnp.uint32)
                self._start_body(m, c, task.fn, mask, args)
        started = jnp.any(has) | started_control
        return started if launched is None else started | jnp.any(launched)

    # -- control wavelets (spec 6.6) --------------------------------------------------------

    def _channel_open(self, m: Machine, low: Lowerer, col: int):
        """Where a control wavelet at the front of color col's inbox may reach the CE: on
        wse2 while the color is unblocked, on wse3 while the input queue bound to it is."""
        if self.program.arch == "wse2":
            return ~has_task(m.blocked, col)
        for kind, q, c in low.pe.queues:
            if kind == "input" and c == col:
                return ~has_task(m.blocked, q)
        return jnp.zeros(m.fab["pc"].shape, bool)

    def _control_heads(self, m: Machine):
        """`(color, front, payload)` of each inbox that may hold control wavelets: whether its
        oldest wavelet is one, and that wavelet."""
        F = m.fab
        return [(col, ring_head_control(F, f"in{col}"), ring_peek(F, f"in{col}", 1)[..., 0])
                for col in self.control_colors if f"in{col}.ctl" in F]

    def _control_ready(self, m: Machine, low: Lowerer, ident: int, heads):
        """Where control task `ident` may start (`[H, W]` bool), and per control color where
        its wavelet is the one that starts it; `heads` from `_control_heads`."""
        ready = jnp.zeros(m.fab["pc"].shape, bool)
        by_color = []
        for col, front, w in heads:
            mine = front & (control_entry(w) == ident) & ~control_ignored(w) \
                & self._channel_open(m, low, col)
            by_color.append((col, mine & ~ready, w))
            ready = ready | mine
        return ready, by_color

    def _pop_control(self, m: Machine, task: ir.Task, low: Lowerer, mask, heads):
        """Pop the control wavelet that starts `task` on the lanes in `mask` (a PE starts one
        task a tick, so the heads taken before any pop still hold); its arguments."""
        _, by_color = self._control_ready(m, low, task.id, heads)
        w = jnp.zeros(mask.shape, jnp.uint32)
        for col, mine, wavelet in by_color:
            take = mask & mine
            w = jnp.where(take, wavelet, w)
            ring_pop(m.fab, f"in{col}", take.astype(jnp.int32))
        return self._task_args(low, task, w)

    def _control_arrivals(self, m: Machine, healthy):
        """Control wavelets that activate no task on the PE leave its inboxes: those whose
        current command has ce_ignore set, or that name no entrypoint. One naming a task ID
        the PE binds no control task to faults it. Returns whether any left."""
        F = m.fab
        gone = jnp.bool_(False)
        for col, front, w in self._control_heads(m):
            front = front & healthy
            drop = front & (control_ignored(w) | (control_entry(w) == NO_ENTRYPOINT))
            unbound = front & ~drop
            for c, low in enumerate(self.lowerers):
                cm = self._class_mask(m.tables, c, None)
                bound = jnp.zeros(front.shape, bool)
                for t in low.pe.tasks:
                    if t.kind == "control":
                        bound = bound | (control_entry(w) == t.id)
                bound = bound | ~self._channel_open(m, low, col)
                unbound = unbound & ~(bound if cm is None else cm & bound)
            code = self._register_fault(
                f"a control wavelet on color {col} names a control task ID that no control task "
                "of this PE is bound to")
            m.fault = jnp.where(unbound & (m.fault == 0), jnp.int32(code), m.fault)
            ring_pop(F, f"in{col}", drop.astype(jnp.int32))
            gone = gone | jnp.any(drop)
        return gone

    def _consuming(self, m: Machine) -> dict:
        """color -> PEs where a running operation reads that color from the fabric."""
        out = {}
        for c, low in enumerate(self.lowerers):
            low.M = m
            for site, info in low.sites.items():
                run = m.fab[slot_key(c, site) + ".run"]
                for color in info.fabric_inputs():
                    for col, where in low.queues(color):
                        mine = run if where is None else run & where
                        out[col] = mine if col not in out else out[col] | mine
        return out

    def _pop_wavelet(self, m: Machine, task: ir.Task, low: Lowerer, mask):
        """Pop one wavelet of the task's color on the lanes in `mask`; its arguments."""
        low.M = m
        w = low.queue_peek("in", task.color, 1)[..., 0]
        low.queue_pop("in", task.color, mask.astype(jnp.int32))
        return self._task_args(low, task, w)

    @staticmethod
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
            args.append(lax.bitcast_convert_type(raw, t.np) if raw.dtype != t.np else raw)
        return tuple(args)

    def _run_blocks(self, m: Machine, healthy) -> None:
        for cfg in self.cfgs:
            low = self.lowerers[cfg.cls]
            for b in cfg.blocks:
                mask = healthy & (m.fab["pc"] == b.gid)

                def run(inner, low=low, cfg=cfg, b=b, mask=mask):
                    m.load(inner)
                    low.run_block(m, cfg, b, mask)
                    return m.carry()

                m.load(lax.cond(jnp.any(mask), run, lambda inner: inner, m.carry()))

    def _microthreads(self, m: Machine, healthy):
        """Advance every running microthread slot; returns whether any element was done."""
        # summed per PE and reduced once: on a mesh, each reduction is a collective
        total = jnp.zeros(healthy.shape, jnp.int32)
        for c, low in enumerate(self.lowerers):
            for site in sorted(low.sites):
                run = m.fab[slot_key(c, site) + ".run"] & healthy

                def adv(inner, low=low, site=site):
                    m.load(inner)
                    low.M = m
                    n = low.advance(site, healthy)
                    return m.carry(), n

                mc, n = lax.cond(jnp.any(run), adv,
                                 lambda inner: (inner, jnp.zeros(healthy.shape, jnp.int32)),
                                 m.carry())
                m.load(mc)
                total = total + n
        return jnp.any(total > 0)

    def _route(self, m: Machine):
        """Move wavelets from outboxes to the inboxes their routes reach (`engine.router`);
        a wavelet in an outbox no route leads from is a fault."""
        F = m.fab
        cap = self.capacity
        resolved = self.program.resolved
        drained = {c for c, k in self.program.streams if k == "d2h"}
        router = self.router
        for col in self.outboxes:
            if col not in resolved and col not in drained:
                self._nowhere(m, col, F[f"out{col}.count"] > 0)
        for col in resolved:
            if col in self.outboxes:
                # a PE sending on a color no route of which leads from its ramp to a ramp
                lost = F[f"out{col}.count"] > 0
                if col in router.colors:
                    lost = lost & ~router.is_source[..., router.colors.index(col)]
                self._nowhere(m, col, lost)
        if not router.colors:
            return jnp.int32(0)
        words = [ring_peek(F, f"out{col}", cap) for col in router.colors]
        if self.control_colors:
            # one more word per outbox: which of its wavelets are control wavelets
            zero = jnp.zeros(F["pc"].shape, jnp.uint32)
            words = [jnp.concatenate([wd, (ring_control(F, f"out{col}")
                                           if f"out{col}.ctl" in F else zero)[..., None]], -1)
                     for wd, col in zip(words, router.colors)]
        n, k, got = router([F[f"out{col}.count"] for col in router.colors],
                           [cap - F[f"in{col}.count"] for col in router.colors], words)
        for i, col in enumerate(router.colors):
            words, marks = got[i][..., :cap], None
            if self.control_colors:
                # the control marks of the delivered wavelets, oldest first
                marks = (got[i][..., cap:] >> jnp.arange(cap, dtype=jnp.uint32)) & 1
            kept, words, marks = self._filter(m, col, k[i], words, marks)
            ring_push(F, f"in{col}", kept, lambda at, words=words: pick(words, at),
                      None if marks is None else lambda at, marks=marks: pick(marks, at))
            ring_pop(F, f"out{col}", n[i])
        return jnp.sum(sum(k))

    def _nowhere(self, m: Machine, col: int, lost) -> None:
        code = self._register_fault(f"a wavelet on color {col} has nowhere to go (no route "
                                    "from this PE's ramp reaches a ramp)")
        m.fault = jnp.where(lost & (m.fault == 0), jnp.int32(code), m.fault)

    def _host(self, m: Machine, hc):
        """The streaming memcpy of the running command, if any: inject its wavelets into the
        PEs' inboxes (H2D) or drain their outboxes into it (D2H). Every stream of the
        program is lowered here, each in a branch of its own; the command's index picks the
        one that runs (none after a launch)."""
        stream, data, total, done = hc
        F = m.fab
        streams = self.program.streams
        if not streams:
            return hc, jnp.int32(0)
        cap = self.capacity
        j = jnp.arange(cap, dtype=jnp.int32)
        L = data.shape[-1]
        queues = [f"in{col}" if kind == "h2d" else f"out{col}" for col, kind in streams]
        # a ring's parts: its control marks too where it carries control wavelets
        parts = [(".buf", ".head", ".count") + ((".ctl",) if q + ".ctl" in F else ())
                 for q in queues]

        def branch(idx):
            def run(operand):
                rings, data = operand
                Q = {q + p: v for q, ring, ps in zip(queues, rings, parts)
                     for p, v in zip(ps, ring)}
                q = queues[idx]
                if streams[idx][1] == "h2d":
                    k = jnp.minimum(total - done, cap - Q[q + ".count"])
                    ring_push(Q, q, k, lambda at: pick(
                        data, jnp.clip(done[..., None] + at, 0, L - 1)))
                else:
                    k = jnp.minimum(Q[q + ".count"], total - done)
                    sent = ring_peek(Q, q, cap)
                    # wavelet i of the stream lands at data[..., done + i]
                    if L <= PICK_BY_SELECT:
                        at = jnp.arange(L, dtype=jnp.int32) - done[..., None]
                        data = jnp.where((at >= 0) & (at < k[..., None]),
                                         pick(sent, jnp.clip(at, 0, cap - 1)), data)
                    else:
                        dst = jnp.where(j < k[..., None], done[..., None] + j, L)
                        data = scatter(data, dst, sent)
                    ring_pop(Q, q, k)
                return tuple(tuple(Q[q + p] for p in ps) for q, ps in zip(queues, parts)), \
                    data, k
            return run

        def idle(operand):
            rings, data = operand
            return rings, data, jnp.zeros_like(done)

        rings = tuple(tuple(F[q + p] for p in ps) for q, ps in zip(queues, parts))
        rings, data, moved = lax.switch(jnp.clip(stream + 1, 0, len(streams)),
                                        [idle] + [branch(i) for i in range(len(streams))],
                                        (rings, data))
        for q, ring, ps in zip(queues, rings, parts):
            for p, v in zip(ps, ring):
                F[q + p] = v
        return (stream, data, total, done + moved), jnp.sum(moved)

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
        fn = self._commands.get("fabric")
        if fn is None:
            def run(state, stream, data, total):
                m = self._machine(state)
                host = (stream, data, total, jnp.zeros_like(total))
                m, (_, data, _, done) = self._run_fabric(m, host)
                return self._state(state, m), data, done

            fn = jax.jit(run, donate_argnums=0)
            self._commands["fabric"] = fn
        self.counts["dispatches"] += 1
        state, out, done = fn(state, np.int32(stream), padded, np.asarray(total, np.int32))
        return state, out[:, :, :l], done

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
        mem[slot] = _put_block(bits)(state.mem[slot], jnp.asarray(block), jnp.asarray(mask),
                                     np.int32(py), np.int32(px), np.int32(first))
        return state.replace(mem=mem)

    def d2h(self, state: FabricState, slot: str, bits: int, px: int, py: int, first: int,
            h: int, w: int, l: int) -> np.ndarray:
        """The `[h, w, l]` uint words (`bits` wide) of the slot's word view at PEs
        `(px.., py..)`, words `first..`."""
        self.counts["dispatches"] += 1
        out = _get_block(bits, (h, w, l))(state.mem[slot], np.int32(py), np.int32(px),
                                          np.int32(first))
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
        others = "" if len(codes) == 1 else f" (and {len(codes) - 1} other kinds of fault)"
        raise FabricFault(f"device fault: {text}{others}", pes)

    def check_command_stream(self, state: FabricState, command: str) -> None:
        blocked = np.asarray(state.cmd_blocked)
        if not blocked.any():
            return
        ys, xs = np.nonzero(blocked)
        pes = [(int(x), int(y)) for y, x in zip(ys, xs)]
        raise DeadlockError(
            f"{command} cannot finish: {len(pes)} PE(s) never called unblock_cmd_stream(), and "
            "nothing on the fabric can make progress", pes,
            "\n".join(self.stuck_lines(state, pes) + [
                "each PE must call sys_mod.unblock_cmd_stream() once its work is done"]))

    def check_stream(self, state: FabricState, command: str, done, total) -> None:
        """A streaming memcpy that stopped short: the PEs whose wavelets did not all move."""
        short = np.asarray(done) < np.asarray(total)
        if not short.any():
            return
        ys, xs = np.nonzero(short)
        pes = [(int(x), int(y)) for y, x in zip(ys, xs)]
        done, total = np.asarray(done), np.asarray(total)
        verb = "took" if command.startswith("memcpy_h2d") else "sent"
        lines = [f"  PE ({x}, {y}): {verb} {done[y, x]} of {total[y, x]} wavelets"
                 for x, y in pes[:8]]
        raise DeadlockError(
            f"{command} cannot finish: {len(pes)} PE(s) stopped short, and nothing on the "
            "fabric can make progress", pes, "\n".join(lines + self.stuck_lines(state, pes)))

    def stuck_lines(self, state: FabricState, pes) -> list[str]:
        """What each of (at most 8 of) `pes` is doing: tasks, a waiting body, queues."""
        active = unpack_tasks(np.asarray(state.active))
        blocked_ids = unpack_tasks(np.asarray(state.blocked))
        fab = {k: np.asarray(v) for k, v in state.fab.items()}
        where = {}
        for cfg in self.cfgs:
            for b in cfg.blocks:
                where[b.gid] = cfg.root
        lines = []
        for x, y in pes[:8]:
            act = np.nonzero(active[y, x])[0].tolist()
            blk = np.nonzero(blocked_ids[y, x])[0].tolist()
            text = (f"  PE ({x}, {y}): active task IDs {act or 'none'}, blocked task IDs "
                    f"{blk or 'none'}")
            uts = [k for k in range(UT_ID_COUNT)
                   if UT_BLOCKED in fab and int(fab[UT_BLOCKED][y, x]) >> k & 1]
            if uts:
                text += f", blocked microthreads {uts}"
            pc = int(fab["pc"][y, x]) if "pc" in fab else 0
            if pc:
                text += f"; its main thread waits in {where.get(pc, '?')}"
            queues = []
            for col in self.colors:
                for q, name in ((f"in{col}", "in"), (f"out{col}", "out")):
                    if q + ".count" not in fab:
                        continue
                    n = int(fab[q + ".count"][y, x])
                    if n:
                        queues.append(f"color {col} {name}: {n}")
            text += f"; queues: {', '.join(queues) if queues else 'all empty'}"
            lines.append(text)
        if len(pes) > 8:
            lines.append(f"  ... and {len(pes) - 8} more")
        return lines
