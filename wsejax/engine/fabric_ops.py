"""Lowering of DSD operations with fabric or FIFO operands, and of asynchronous operations.

Every such operation runs on the microthread slot of its site (one slot per textual op and tile
class). Starting it captures its operands in the slot: the runtime fields of its memory DSDs,
its scalar values, its length, its `.index` and its completion hooks. Each engine tick then
advances every running slot by as many elements as its inputs hold wavelets (or FIFO data) and
its outputs hold free slots, processing a window of at most `K` elements with a per-element
mask: `K` is static per site (the queue or FIFO capacity, or the memory operands' bound), so a
tick costs `O(K)` per site whatever the op's length. A synchronous op is started the same way
on a hidden slot, and its PE's main thread waits until the slot is done (`wsejax.engine.cfg`).

Wavelets live in per-(PE, color) ring buffers in `Machine.fab`:
`in{color}.buf` `[H, W, cap]` uint32 with `.head` and `.count` `[H, W]` int32, and the same for
`out{color}`, and on a color that carries control wavelets a bit mask `.ctl` marking them.
FIFOs keep `.head` / `.count` beside their buffer symbol's memory.

A fabric DSD's color is a number, or a per-PE value (`ir.PeValue`: a color param whose value
differs between the PEs of one tile class), and so is a data task's color on wse3 (its input
queue's). Such an operand reads and writes the rings of each color its table holds on the
class's PEs (`FabricOps.queues`), each PE its own: counts and peeks are selected by the
table's value, pops and pushes are masked by it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ir, ops
from wsejax.engine.cfg import Free
from wsejax.engine.state import task_bit
from wsejax.errors import ProgramError
from wsejax.fabric import microthread_clash
from wsejax.hardware import UT_ID_COUNT
from wsejax.types import DType, u32

__all__ = ["FLUSHED", "FLUSH_PENDING", "UT_BLOCKED", "FabricOps", "NO_FLUSH", "SiteInfo",
           "flush_key", "pick", "queue_key", "ring_control", "ring_data", "ring_head_control",
           "ring_peek", "ring_pop", "ring_push", "slot_key", "uses_ut_blocking"]

UT_BLOCKED = "utblocked"   # Machine.fab key: `[H, W]` uint32, bit k set = microthread k blocked


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


NO_FLUSH, FLUSH_PENDING, FLUSHED = 0, 1, 2


def uses_ut_blocking(pe: ir.PeProgram) -> bool:
    """Whether PE program `pe` blocks or unblocks a microthread (at start-up or at run time)."""
    return bool(pe.blocked_uts) or any(
        type(s) is ir.TaskCtl and s.target == "ut"
        for f in pe.functions for s in ir.walk_stmts(f.body))


# ------------------------------------------------------------------------------------------------
# The queues: ring buffers `q.buf` [H, W, cap] with `q.head` and `q.count` [H, W]


PICK_BY_SELECT = 32     # up to this many source entries, `pick` selects instead of gathering


def pick(src, idx):
    """`out[..., p] = src[..., idx[..., p]]` for indices in `[0, src.shape[-1])`: along a short
    last axis a select per source entry, which XLA:CPU runs faster than a gather."""
    if src.shape[-1] > PICK_BY_SELECT:
        return jnp.take_along_axis(src, idx, axis=-1)
    out = jnp.broadcast_to(src[..., :1], idx.shape)
    for s in range(1, src.shape[-1]):
        out = jnp.where(idx == s, src[..., s:s + 1], out)
    return out


def ring_peek(F: dict, q: str, n: int):
    """The first n wavelets of ring q, oldest first (`[H, W, n]`; past its count, garbage)."""
    cap = F[q + ".buf"].shape[-1]
    j = jnp.arange(n, dtype=jnp.int32)
    return pick(F[q + ".buf"], (F[q + ".head"][..., None] + j) % cap)


def ring_pop(F: dict, q: str, k) -> None:
    """Drop the first k (`[H, W]`) wavelets of ring q."""
    cap = F[q + ".buf"].shape[-1]
    F[q + ".head"] = (F[q + ".head"] + k) % cap
    F[q + ".count"] = F[q + ".count"] - k


def ring_push(F: dict, q: str, k, value_at, control_at=None) -> None:
    """Append k (`[H, W]`) wavelets to ring q: the j-th appended one is `value_at(j)`, where
    `j` is `[H, W, cap]` (each slot's place after the tail; values where j >= k are unused).
    On a ring that carries control wavelets, `control_at(j)` (nonzero: a control wavelet)
    marks them; None appends data wavelets."""
    cap = F[q + ".buf"].shape[-1]
    tail = F[q + ".head"] + F[q + ".count"]
    j = (jnp.arange(cap, dtype=jnp.int32) - tail[..., None]) % cap
    new = j < k[..., None]
    F[q + ".buf"] = jnp.where(new, value_at(j), F[q + ".buf"])
    F[q + ".count"] = F[q + ".count"] + k
    if q + ".ctl" in F:
        bit = jnp.uint32(1) << jnp.arange(cap, dtype=jnp.uint32)
        marked = new if control_at is None else new & (control_at(j) != 0)
        clear = jnp.sum(jnp.where(new, bit, 0), axis=-1, dtype=jnp.uint32)
        mark = jnp.sum(jnp.where(marked, bit, 0), axis=-1, dtype=jnp.uint32) \
            if control_at is not None else jnp.uint32(0)
        F[q + ".ctl"] = (F[q + ".ctl"] & ~clear) | mark


# A ring that carries control wavelets keeps `q.ctl` `[H, W]` uint32 beside its buffer: bit s
# marks the wavelet in slot s as a control wavelet (so capacities stay below 32).
MAX_CONTROL_CAPACITY = 31


def ring_control(F: dict, q: str):
    """Bit j set where the j-th wavelet of ring q (oldest first) is a control wavelet
    (`[H, W]` uint32; bits past its count are stale), or None for a ring without any."""
    if q + ".ctl" not in F:
        return None
    cap = F[q + ".buf"].shape[-1]
    head = F[q + ".head"].astype(jnp.uint32)
    m = F[q + ".ctl"]
    return ((m >> head) | (m << (jnp.uint32(cap) - head))) & jnp.uint32((1 << cap) - 1)


def ring_data(F: dict, q: str):
    """The data wavelets at the front of ring q, before its first control wavelet
    (`[H, W]` int32): what a data task or a fabin operand may take."""
    n = F[q + ".count"]
    rot = ring_control(F, q)
    if rot is None:
        return n
    # trailing zeros of rot: the popcount of the bits below its lowest set bit (32 for none)
    lead = lax.population_count((rot & (~rot + jnp.uint32(1))) - jnp.uint32(1))
    return jnp.minimum(n, lead.astype(jnp.int32))


def ring_head_control(F: dict, q: str):
    """Whether the oldest wavelet of ring q is a control wavelet (`[H, W]` bool)."""
    rot = ring_control(F, q)
    if rot is None:
        return jnp.zeros(F[q + ".count"].shape, bool)
    return (F[q + ".count"] > 0) & ((rot & 1) != 0)


@dataclass
class SiteInfo:
    """What the trace of a site's start learned, used to advance it: the operand templates
    (`("D", DsdRt)`, `("s", dtype)`, `("p", PtrOperand)`; runtime fields come from the slot),
    the static window size, and whether elements must go one at a time."""

    cls: int
    stmt: ir.DsdOp
    dest: tuple
    srcs: tuple
    window: int
    hidden: bool
    in_order: bool = False
    fn: str = ""         # the function the op is written in
    # slot field -> its value on every start (an int), or None: kept per PE in the slot
    fields: dict = field(default_factory=dict)

    def slot_fields(self):
        """The fields kept per PE (those not the same constant on every start)."""
        return [f for f, v in self.fields.items() if v is None]

    def field_init(self, f: str):
        """`(numpy dtype, value before any start)` of slot field f: a scalar operand's
        `o{k}.val` has the operand's type; a hook (`act`, `unb`) is -1, no task, and so is
        `ut`, no named microthread."""
        if f.endswith(".val"):
            return self.operands[int(f[1:f.index(".")])][1].np, 0
        return np.dtype(np.int32), -1 if f in ("act", "unb", "ut") else 0

    @property
    def what(self) -> str:
        return f"@{self.stmt.op} in {self.fn}"

    def may_name_ut(self) -> bool:
        """Whether some start of the op names a microthread (`.ut_id`)."""
        return self.fields.get("ut", -1) != -1

    @property
    def operands(self):
        return (self.dest,) + tuple(self.srcs)

    def fabric_inputs(self):
        """The colors (numbers or `ir.PeValue`s) the op reads from the fabric."""
        return [o.color for k, o in self.srcs if k == "D" and o.kind == "fabin"]

    def fabric_outputs(self):
        """The colors the op writes to the fabric."""
        return [o.color for k, o in self.operands if k == "D" and o.kind == "fabout"]

    def control_outputs(self):
        """The colors the op sends control wavelets on."""
        return [o.color for k, o in self.operands
                if k == "D" and o.kind == "fabout" and o.control]


def is_fabric(d) -> bool:
    return d.kind in ("fabin", "fabout", "fifo")


class FabricOps:
    """Mixin of `Lowerer`: the fabric side of DSD operations."""

    # -- set up by the Lowerer --------------------------------------------------------------
    cls: int
    capacity: int
    discovering: bool
    sites: dict          # site -> SiteInfo (shared with the Engine)
    stall_fns: set       # functions containing a synchronous fabric op (shared)
    table_values: object  # table name -> the values it holds on this class's PEs (a tuple)

    def fifo(self, name: str) -> ir.Fifo:
        for f in self.pe.fifos:
            if f.name == name:
                return f
        raise ProgramError(f"unknown FIFO '{name}'")

    def fifo_key(self, name: str) -> str:
        return f"fifo{self.cls}.{name}"

    # -- the rings of a fabric operand -------------------------------------------------------

    def colors(self, color) -> tuple:
        """The colors a fabric operand or data task of `color` uses: the number, each color a
        per-PE color's table holds on this class's PEs, or each color a queue bound at run
        time can take."""
        if isinstance(color, ir.PeValue):
            return self.table_values(color.table)
        if isinstance(color, ir.QueueColor):
            return color.colors
        return (color,)

    def queues(self, color) -> list:
        """`(c, where)` for each of `colors(color)`: where None for a number, else the PEs
        whose per-PE color (or whose queue's binding now) is c."""
        if isinstance(color, ir.QueueColor):
            now = self.M.fab[queue_key(color)]
            return [(c, now == c) for c in color.colors]
        if not isinstance(color, ir.PeValue):
            return [(color, None)]
        table = self.M.tables[color.table]
        return [(c, table == c) for c in self.colors(color)]

    # -- queues bound at run time, @queue_flush ----------------------------------------------

    def queue_color(self, kind: str, n: int):
        """The color of queue n (`kind` "input" / "output") of this class, or None."""
        for k, q, color in self.pe.queues:
            if (k, q) == (kind, n):
                return color
        return None

    def queue_bind(self, s: ir.QueueBind, fr, m) -> None:
        """`encode_*_queue`: bind the queue to a color on the lanes in `m`. Faults where the
        color is not one the program names for the queue, where an operation running on a
        microthread uses the queue, and, for an output queue, where it still holds wavelets
        (they would leave on the new color: @queue_flush waits for it to drain)."""
        qc = self.queue_color(s.kind, s.queue)
        color = jnp.broadcast_to(self.expr(s.color, fr).astype(jnp.int32), self.lanes)
        if self.discovering:
            return
        mm = jnp.ones(self.lanes, bool) if m is None else m
        F = self.M.fab
        name = f"{s.kind} queue {s.queue}"
        ok = jnp.zeros(self.lanes, bool)
        for c in qc.colors:
            ok = ok | (color == c)
        self.fault(mm & ~ok, None, f"{name} bound at run time to a color other than "
                                   f"{', '.join(map(str, qc.colors))} (the colors this "
                                   "program names for it or routes)")
        if not self.discovering:
            for site, info in self.sites.items():
                if any(k == "D" and o.kind in ("fabin", "fabout") and o.color == qc
                       for k, o in info.operands):
                    self.fault(mm & F[slot_key(self.cls, site) + ".run"], None,
                               f"{name} rebound while an operation on a microthread uses it")
        if s.kind == "output":
            held = jnp.zeros(self.lanes, bool)
            for c, where in self.queues(qc):
                if f"out{c}.count" in F:
                    held = held | (where & (F[f"out{c}.count"] > 0))
            self.fault(mm & held, None,
                       f"{name} rebound while it still holds wavelets (wait until it is "
                       "empty: @queue_flush)")
        key = queue_key(qc)
        F[key] = jnp.where(mm & ok, color, F[key])

    def queue_ctl(self, s: ir.QueueCtl, fr, m) -> None:
        """`@queue_flush` (watch the queue: FLUSH_PENDING) or `queue_flush.exit` (NO_FLUSH)
        on the lanes in `m`."""
        key = flush_key(s.kind, s.queue)
        F = self.M.fab
        if self.discovering or key not in F:    # exit of a queue no @queue_flush watches
            return
        mm = jnp.ones(self.lanes, bool) if m is None else m
        F[key] = jnp.where(mm, FLUSH_PENDING if s.op == "flush" else NO_FLUSH, F[key])

    def queue_flushed(self, e: ir.QueueFlushed):
        key = flush_key(e.kind, e.queue)
        F = self.M.fab
        if key not in F:
            return jnp.zeros(self.lanes, bool)
        return F[key] == FLUSHED

    def per_color(self, color, value_of):
        """`value_of(c)` (an `[H, W, ...]` array) of each PE's own color c of `color`."""
        out = None
        for c, where in self.queues(color):
            v = value_of(c)
            if where is not None and out is not None:
                v = jnp.where(where.reshape(where.shape + (1,) * (v.ndim - 2)), v, out)
            out = v
        return out

    def queue_count(self, io: str, color):
        """The wavelets in each PE's ring of `color` (`io`: "in" or "out")."""
        return self.per_color(color, lambda c: self.M.fab[f"{io}{c}.count"])

    def queue_peek(self, io: str, color, n: int):
        return self.per_color(color, lambda c: ring_peek(self.M.fab, f"{io}{c}", n))

    def queue_pop(self, io: str, color, k) -> None:
        for c, where in self.queues(color):
            ring_pop(self.M.fab, f"{io}{c}", k if where is None else jnp.where(where, k, 0))

    def queue_data(self, color):
        """The data wavelets at the front of each PE's inbox of `color` (`ring_data`)."""
        return self.per_color(color, lambda c: ring_data(self.M.fab, f"in{c}"))

    def queue_push(self, io: str, color, k, value_at, control_at=None) -> None:
        for c, where in self.queues(color):
            ring_push(self.M.fab, f"{io}{c}", k if where is None else jnp.where(where, k, 0),
                      value_at, control_at)

    # -- classification ---------------------------------------------------------------------

    def needs_fabric(self, dest, srcs) -> bool:
        return any(k == "D" and is_fabric(o) for k, o in (dest,) + tuple(srcs))

    def fabric_op(self, s: ir.DsdOp, dest, srcs, fr, m) -> None:
        """A DSD op with a fabric or FIFO operand, or an async one: start it on its slot.

        A synchronous one may only appear where its PE can wait (`wsejax.engine.cfg` turns it
        into a start and a wait); during discovery it marks its callers as stalling."""
        cfg = s.config or ir.OpConfig()
        if not cfg.async_:
            self.stall_fns.update(self._call_stack)
            if self.discovering:
                self._record(s, dest, srcs, fr, hidden=True)
                self._learn_fields(s, dest, srcs, fr)
                return
            raise ProgramError(f"@{s.op} in {fr.fn}: a synchronous operation on the fabric "
                               "cannot run here (inside a @map callback or an expression)")
        self._record(s, dest, srcs, fr, hidden=False)
        if self.discovering:
            self._learn_fields(s, dest, srcs, fr)
        else:
            self.start_op(s, dest, srcs, fr, m)

    def _record(self, s: ir.DsdOp, dest, srcs, fr, hidden: bool) -> SiteInfo:
        info = self.sites.get(s.site)
        if info is not None:
            return info
        dsds = [o for k, o in (dest,) + tuple(srcs) if k == "D"]
        window = None
        for d in dsds:
            if d.kind in ("fabin", "fabout"):
                b = self.capacity
            elif d.kind == "fifo":
                b = self.sym(self.fifo(d.fifo).buffer).size
            else:
                b = self.bound(d)
            if _static_int(d.length) is not None and d.kind != "fifo":
                b = min(b, int(d.length))
            window = b if window is None else min(window, b)
        window = max(1, window or 1)
        # an element reading what an earlier one wrote (a stride-0 accumulator): one a tick
        in_order = self._carried(s, dest, list(srcs), window) \
            if dest[0] != "D" or dest[1].memory else False
        if dest[0] == "D" and dest[1].kind == "fifo":
            in_order = in_order or any(k == "D" and o.kind == "fifo" for k, o in srcs)
        info = SiteInfo(self.cls, s, _template(dest), tuple(_template(o) for o in srcs),
                        1 if in_order else window, hidden, in_order, fr.fn)
        self.sites[s.site] = info
        return info

    # -- start ------------------------------------------------------------------------------

    def _start_values(self, s: ir.DsdOp, dest, srcs, fr) -> dict:
        """What starting `s` captures: slot field -> value (an int or an array): the runtime
        fields of its memory DSDs, its scalar operands, its length, `.index` and hooks."""
        cfg = s.config or ir.OpConfig()
        out = {}
        index = None
        if cfg.index is not None:
            index = self._config_value(cfg.index, fr)
            out["idx"] = index
        length = None
        # as the reference's: a fabout destination bounds the op only where nothing else does
        sized = [o for kind, o in (dest,) + tuple(srcs) if kind == "D" and o.kind != "fifo"]
        free = any(o.kind != "fabout" for o in sized)
        for k, (kind, o) in enumerate((dest,) + tuple(srcs)):
            pre = f"o{k}"
            if kind == "D":
                if o.kind != "fifo" and not (free and o.kind == "fabout"):
                    length = o.length if length is None else _minimum(length, o.length)
                if o.memory:
                    if o.wio and index is not None:
                        o = o.replace(offset=self._index_offset(o, index))
                    for f, v in o.fields().items():
                        out[f"{pre}.{f}"] = v
            elif kind == "s":
                out[pre + ".val"] = o[0]
        out["len"] = 1 if length is None else length
        for hook, e in (("act", cfg.activate), ("unb", cfg.unblock), ("ut", cfg.ut_id)):
            out[hook] = -1 if e is None else self._config_value(e, fr)
        return out

    def _config_value(self, e, fr):
        return int(e.value) if type(e) is ir.Const else self.expr(e, fr)

    def _learn_fields(self, s: ir.DsdOp, dest, srcs, fr) -> None:
        """During discovery: note which slot fields of `s` hold the same constant on every
        start (kept in the site, not per PE)."""
        info = self.sites[s.site]
        for f, v in self._start_values(s, dest, srcs, fr).items():
            c = _constant(v)
            if f not in info.fields:
                info.fields[f] = c
            elif info.fields[f] != c:
                info.fields[f] = None

    def slot_field(self, site: int, f: str):
        """Slot field `f` of `site`: its per-PE array, or its constant."""
        info = self.sites[site]
        dtype, unset = info.field_init(f)
        v = info.fields.get(f, unset)
        if v is None:
            return self.M.fab[f"{slot_key(self.cls, site)}.{f}"]
        return jnp.full(self.lanes, v, dtype)

    def start_op(self, s: ir.DsdOp, dest, srcs, fr, m) -> None:
        """Capture the operands of `s` in its slot and mark it running on the lanes in `m`."""
        key = slot_key(self.cls, s.site)
        info = self.sites[s.site]
        F = self.M.fab
        mm = jnp.ones(self.lanes, bool) if m is None else m
        values = self._start_values(s, dest, srcs, fr)
        busy = F[key + ".run"] & mm
        self.fault(busy, None, f"@{s.op} in {fr.fn}: started while the same operation still "
                               "runs on its microthread")
        if s.config is not None and s.config.ut_id is not None:
            self._check_microthread(s, info, values["ut"], mm)
        kept = set(info.slot_fields())
        for f, v in values.items():
            if f in kept:
                k = f"{key}.{f}"
                v = jnp.broadcast_to(jnp.asarray(v).astype(F[k].dtype), self.lanes)
                F[k] = jnp.where(mm, v, F[k])
        F[key + ".pos"] = jnp.where(mm, 0, F[key + ".pos"])
        F[key + ".run"] = F[key + ".run"] | mm

    def _check_microthread(self, s: ir.DsdOp, info: SiteInfo, ut, mm) -> None:
        """Spec 5.4: two running operations must not share a microthread. Fault the lanes in
        `mm` where another op of the PE still runs on microthread `ut`, the one `s` names."""
        known = type(s.config.ut_id) is ir.Const
        if not known:
            ut = jnp.asarray(ut).astype(jnp.int32)
        for site, other in sorted(self.sites.items()):
            if site == s.site or not other.may_name_ut():
                continue
            theirs = other.fields["ut"]
            if known and theirs is not None and theirs != int(ut):
                continue
            same = self.M.fab[slot_key(self.cls, site) + ".run"] & mm & (
                self.slot_field(site, "ut") == ut)
            self.fault(same, None, microthread_clash(info.what, other.what,
                                                     int(ut) if known else None))

    def _index_offset(self, d, index):
        """A memory DSD's offset moved by `.index` 16-bit words (wavelet_index_offset)."""
        words = self._elem_bits(d) // 16
        return jnp.asarray(d.offset, jnp.int32) + index // words

    def apply_hooks(self, cfg: ir.OpConfig | None, fr, m) -> None:
        """`.activate` / `.unblock` of a completed synchronous op on the lanes in `m`."""
        if cfg is None:
            return
        if cfg.activate is not None:
            self.task_ctl(ir.TaskCtl("activate", cfg.activate), fr, m)
        if cfg.unblock is not None:
            self.task_ctl(ir.TaskCtl("unblock", cfg.unblock), fr, m)

    # -- bodies that wait (wsejax.engine.cfg) ------------------------------------------------

    def run_block(self, machine, cfg, b, mask) -> None:
        """Run block `b` of `cfg` on the lanes in `mask` (those whose pc is at it)."""
        from wsejax.engine.lower import DsdRt, Frame

        self.M = machine
        fr = Frame(fn=cfg.root)
        for name in cfg.locals:
            fr.locals[name] = self.M.fab[cfg.frame_key(name)]
        self._call_stack.append(cfg.root)
        try:
            for st in b.stmts:
                if type(st) is Free:
                    self.local_assign(st.stmt, fr, mask)
                else:
                    self.stmt(st, fr, mask)
            pc = self._terminate(b.term, fr, mask)
        finally:
            self._call_stack.pop()
        F = self.M.fab
        F["pc"] = pc
        for name, t in cfg.locals.items():
            v = fr.locals.get(name)
            if v is None or isinstance(v, DsdRt):
                continue
            key = cfg.frame_key(name)
            F[key] = jnp.where(mask, jnp.broadcast_to(jnp.asarray(v).astype(t.np), self.lanes),
                               F[key])

    def _terminate(self, term, fr, mask):
        pc = self.M.fab["pc"]
        kind = term[0]
        if kind == "goto":
            return jnp.where(mask, term[1], pc)
        if kind == "end":
            return jnp.where(mask, 0, pc)
        if kind == "branch":
            _, cond, then, orelse, ticks = term
            c = jnp.broadcast_to(self.expr(cond, fr), self.lanes)
            if ticks:
                self.tick(mask, 1)
            return jnp.where(mask & c, then, jnp.where(mask, orelse, pc))
        if kind == "stall":
            _, s, wait = term
            dest = self._operands([s.dest], fr)[0]
            srcs = self._operands(s.srcs, fr)
            self.start_op(s, dest, srcs, fr, mask)
            return jnp.where(mask, wait, self.M.fab["pc"])
        _, s, nxt = term
        key = slot_key(self.cls, s.site)
        done = mask & ~self.M.fab[key + ".run"]
        # the op's cycles count when it completes (one, and one per element)
        self.tick(done, 1 + self.slot_field(s.site, "len"))
        self.apply_hooks(s.config, fr, done)
        return jnp.where(done, nxt, pc)

    # -- advance ----------------------------------------------------------------------------

    def advance(self, site: int, healthy) -> jnp.ndarray:
        """Advance the slot of `site` by what its operands allow; returns the elements done
        per PE (`[H, W]` int32)."""
        info = self.sites[site]
        s = info.stmt
        spec = ops.OPS[s.op]
        key = slot_key(self.cls, site)
        F = self.M.fab
        run = F[key + ".run"] & healthy & ~self.suspended(site)
        pos, length = F[key + ".pos"], self.slot_field(site, "len")
        K = info.window
        avail = jnp.where(run, jnp.clip(length - pos, 0, K), 0)
        # operands as of now, and how many elements each allows
        ops_rt = []
        for k, (kind, t) in enumerate(info.operands):
            pre = f"o{k}"
            if kind == "D" and t.memory:
                d = t.replace(**{f: self.slot_field(site, f"{pre}.{f}")
                                 for f in ("base", "offset", "stride", "length")})
                ops_rt.append(("D", d))
            elif kind == "D":
                ops_rt.append(("D", t))
                if t.kind == "fabin":
                    avail = jnp.minimum(avail, self.queue_data(t.color))
                elif t.kind == "fabout":
                    avail = jnp.minimum(avail, self.capacity - self.queue_count("out", t.color))
                else:
                    cap = self.sym(self.fifo(t.fifo).buffer).size
                    cnt = F[self.fifo_key(t.fifo) + ".count"]
                    avail = jnp.minimum(avail, cap - cnt if k == 0 else cnt)
            elif kind == "s":
                ops_rt.append(("s", (self.slot_field(site, pre + ".val"), t)))
            else:
                ops_rt.append(("p", t))
        avail = jnp.maximum(avail, 0)
        j = jnp.arange(K, dtype=jnp.int32)
        what = f"@{s.op}"
        # sources
        vals = []
        for (kind, o), want in zip(ops_rt[1:], spec.srcs):
            if kind == "D":
                vals.append(self._window_read(o, pos, j, avail, want, run, what))
            else:
                x, have = o
                x = self.cast(x, have, want) if have != want else x
                vals.append(jnp.asarray(x, want.np)[..., None])
        res = jnp.broadcast_to(spec.fn(*vals), self.lanes + (K,))
        kind, o = ops_rt[0]
        if kind == "D":
            self._window_write(o, res, pos, j, avail, spec.dest, run, what, site)
        else:
            self.store(("p", o), res, K, avail, spec.dest, run, _EMPTY, what)
        # consume inputs
        for kind, o in ops_rt[1:]:
            if kind == "D" and o.kind == "fabin":
                self.queue_pop("in", o.color, avail)
            elif kind == "D" and o.kind == "fifo":
                self._fifo_pop(o.fifo, avail)
        new = pos + avail
        F[key + ".pos"] = new
        done = run & (new >= length)
        F[key + ".run"] = F[key + ".run"] & ~done
        if not info.hidden:
            for hook, op in (("act", "activate"), ("unb", "unblock")):
                if info.fields.get(hook, -1) == -1:
                    continue
                bit = task_bit(self.slot_field(site, hook), done)
                if op == "activate":
                    self.M.active = self.M.active | bit
                else:
                    self.M.blocked = self.M.blocked & ~bit
        return avail

    def suspended(self, site: int):
        """The PEs where the op of `site` runs on a blocked microthread (spec 5.2)."""
        if UT_BLOCKED not in self.M.fab or not self.sites[site].may_name_ut():
            return jnp.zeros(self.lanes, bool)
        ut = self.slot_field(site, "ut")
        bit = jnp.left_shift(jnp.uint32(1), jnp.clip(ut, 0, UT_ID_COUNT - 1).astype(jnp.uint32))
        return (ut >= 0) & (ut < UT_ID_COUNT) & ((self.M.fab[UT_BLOCKED] & bit) != 0)

    def ut_ctl(self, s: ir.TaskCtl, ident, m) -> None:
        """`@block` / `@unblock` of microthread `ident` (an int or `[H, W]`) on the lanes in
        `m`; an ID outside 0..7 does nothing."""
        if self.discovering:
            return                # the machine has no fabric state yet
        ident = jnp.asarray(ident, jnp.int32)
        on = (ident >= 0) & (ident < UT_ID_COUNT)
        if m is not None:
            on = on & m
        bit = jnp.left_shift(jnp.uint32(1),
                             jnp.clip(ident, 0, UT_ID_COUNT - 1).astype(jnp.uint32))
        bit = jnp.where(on, bit, jnp.uint32(0))
        F = self.M.fab
        F[UT_BLOCKED] = F[UT_BLOCKED] | bit if s.op == "block" else F[UT_BLOCKED] & ~bit

    def _elements(self, d, pos, j):
        """Addresses (relative to the base offset) of elements `pos + j` of memory DSD d."""
        i = pos[..., None] + j
        if d.kind == "mem4d":
            pat = jnp.asarray(self.pattern(d, int(np.prod(d.extents))).astype(np.int32))
            return d.offset[..., None] + pat[jnp.clip(i, 0, pat.shape[0] - 1)]
        return d.offset[..., None] + d.stride[..., None] * i

    def _window_read(self, d, pos, j, avail, want: DType, run, what):
        F = self.M.fab
        K = j.shape[0]
        if d.kind == "fabin":
            return _from_payload(self.queue_peek("in", d.color, K), want)
        if d.kind == "fifo":
            f = self.fifo(d.fifo)
            cap = self.sym(f.buffer).size
            addr = (F[self.fifo_key(d.fifo) + ".head"][..., None] + j) % cap
            d = d.replace(kind="mem1d", addr=addr, length=K)
        elif d.kind == "fabout":
            raise ProgramError(f"{what}: a fabout_dsd cannot be a source")
        else:
            d = d.replace(addr=self._elements(d, pos, j), length=K)
        return self.read(d, K, avail, want, run, _EMPTY, what)

    def _window_write(self, d, res, pos, j, avail, have: DType, run, what, site):
        F = self.M.fab
        K = j.shape[0]
        if d.kind == "fabout":
            index = self.slot_field(site, "idx") if d.wio else 0
            w = _to_payload(res, have, index)
            # avail is 0 where the slot does not run; K <= the queue's capacity
            self.queue_push("out", d.color, avail, lambda at: pick(w, jnp.clip(at, 0, K - 1)),
                            (lambda at: jnp.ones_like(at)) if d.control else None)
            return
        if d.kind == "fabin":
            raise ProgramError(f"{what}: a fabin_dsd cannot be a destination")
        if d.kind == "fifo":
            f = self.fifo(d.fifo)
            cap = self.sym(f.buffer).size
            fk = self.fifo_key(d.fifo)
            tail = F[fk + ".head"] + F[fk + ".count"]
            addr = (tail[..., None] + j) % cap
            self.write(d.replace(kind="mem1d", addr=addr, length=K), res, K, avail, have, run,
                       what)
            self._fifo_push(d.fifo, avail)
            return
        self.write(d.replace(addr=self._elements(d, pos, j), length=K), res, K, avail, have,
                   run, what)

    def _fifo_push(self, name: str, n) -> None:
        f = self.fifo(name)
        F = self.M.fab
        fk = self.fifo_key(name)
        was_empty = F[fk + ".count"] == 0
        F[fk + ".count"] = F[fk + ".count"] + n
        if f.activate_push is not None:
            self.M.active = self.M.active | task_bit(f.activate_push, was_empty & (n > 0))

    def _fifo_pop(self, name: str, n) -> None:
        f = self.fifo(name)
        F = self.M.fab
        fk = self.fifo_key(name)
        cap = self.sym(f.buffer).size
        was_full = F[fk + ".count"] == cap
        F[fk + ".head"] = (F[fk + ".head"] + n) % cap
        F[fk + ".count"] = F[fk + ".count"] - n
        if f.activate_pop is not None:
            self.M.active = self.M.active | task_bit(f.activate_pop, was_full & (n > 0))


class _Empty:
    """The frame of a microthread: no locals (a pointer destination's indices are constants,
    and the temporary `store` sets is removed again)."""

    locals: dict = {}
    ext = 0
    fn = "a microthread"
    loops: list = []
    returned = None
    retval = None

    def off(self):
        return None


_EMPTY = _Empty()


def _minimum(a, b):
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        return min(int(a), int(b))
    return jnp.minimum(a, b)


def _constant(v):
    """`v` as an int if it is the same known number on every PE, else None."""
    if isinstance(v, jax.core.Tracer):
        return None
    a = np.asarray(v)
    if a.size == 0 or a.dtype.kind not in "iubf" or not (a == a.flat[0]).all():
        return None
    return a.flat[0].item()


def _static_int(v):
    return int(v) if isinstance(v, (int, np.integer)) else None


def _template(operand):
    kind, o = operand
    if kind == "D":
        return ("D", o.replace(base=0, offset=0, stride=1, length=0, addr=None))
    if kind == "s":
        return ("s", o[1])
    return ("p", o)


def _to_payload(res, have: DType, index):
    """Wavelets carrying `res` (of type `have`): 32-bit values whole, 16-bit values in the low
    half with `index` in the high half (`wsejax.fabric.payload_out`)."""
    if have.bits == 32:
        return lax.bitcast_convert_type(res, jnp.uint32) if res.dtype != u32.np else res
    low = lax.bitcast_convert_type(res, jnp.uint16).astype(jnp.uint32)
    index = jnp.asarray(index, jnp.uint32)
    if index.ndim:
        index = index[..., None]
    return low | ((index & 0xFFFF) << 16)


def _from_payload(w, want: DType):
    """Element values of type `want` from wavelets `w` (`wsejax.fabric.payload_in`)."""
    if want.bits == 32:
        return lax.bitcast_convert_type(w, want.np) if want.np != np.uint32 else w
    return lax.bitcast_convert_type((w & 0xFFFF).astype(jnp.uint16), want.np)
