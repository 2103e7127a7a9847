"""The fabric family of `Lowerer`: DSD operations with fabric or FIFO operands, asynchronous
operations, the queues, and the blocks of bodies that wait.

Every such operation runs on the microthread slot of its site (one slot per textual op and tile
class). Starting it captures its operands in the slot: the runtime fields of its memory DSDs,
its scalar values, its length, its `.index` and its completion hooks. Each engine tick then
advances every running slot by as many elements as its inputs hold wavelets (or FIFO data) and
its outputs hold free slots, processing a window of at most `SiteInfo.window` elements with a
per-element mask: the window is static per site (the queue or FIFO capacity, or the memory
operands' bound), so a tick costs `O(window)` per site whatever the op's length. A synchronous
op is started the same way on a hidden slot, and its PE's main thread waits until the slot is
done (`wsejax.engine.cfg`).

Wavelets live in the rings of `wsejax.engine.rings`. FIFOs keep `.head` / `.count` beside
their buffer symbol's memory.

A fabric DSD's color is a number, or a per-PE value (`ir.PeValue`: a color param whose value
differs between the PEs of one tile class), and so is a data task's color on wse3 (its input
queue's). Such an operand reads and writes the rings of each color its table holds on the
class's PEs (`queues`), each PE its own: counts and peeks are selected by the table's value,
pops and pushes are masked by it. The queue helpers take the machine they act on, as the
fabric loop (`wsejax.engine.tick`) calls them between lowerings.

Uses from the `Lowerer` it is mixed into: `expr`, `stmt`, `lane`, `fault`, `tick`, `sym`,
`lanes`, `machine`, `pe`, `cls`, `capacity`, `discovering`, `sites`, `stall_fns`,
`table_values`, `_call_stack`; from the other families `read`, `write`, `store`, `cast`,
`bound`, `pattern`, `_elem_bits`, `_operands`, `_carried`, `stmt_LocalAssign` and
`stmt_TaskCtl`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from wsejax import ir, ops
from wsejax.diagnostics import fifo_fault, microthread_clash, started_while_running
from wsejax.engine.cfg import Free
from wsejax.engine.lower import simd
from wsejax.engine.machine import DsdRt, Frame, Machine
from wsejax.engine.rings import (
    FLUSH_PENDING,
    FLUSHED,
    NO_FLUSH,
    FifoCounts,
    from_payload,
    pick,
    ring_data,
    ring_peek,
    ring_pop,
    ring_push,
    to_payload,
)
from wsejax.engine.state import task_bit
from wsejax.errors import ProgramError
from wsejax.hardware import UT_ID_COUNT
from wsejax.opspec import CARRIED
from wsejax.types import DType

__all__ = ["DSD_FIELDS", "FabricLowering", "SiteInfo", "is_fabric", "operand_field"]

DSD_FIELDS = ("base", "offset", "stride", "length")


def operand_field(k: int, name: str) -> str:
    """The slot field of operand k's `name` (a DSD field, or "val" for a scalar's value)."""
    return f"o{k}.{name}"


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
    field_types: dict = field(default_factory=dict)   # slot field -> numpy dtype, not int32
    # slot field -> its value on every start (an int), or None: kept per PE in the slot
    fields: dict = field(default_factory=dict)

    def slot_fields(self):
        """The fields kept per PE (those not the same constant on every start)."""
        return [f for f, v in self.fields.items() if v is None]

    def field_init(self, f: str):
        """`(numpy dtype, value before any start)` of slot field f: a scalar operand's
        value has the operand's type; a hook (`act`, `unb`, `.on_control`'s `oct`) is -1, no
        task, and so is `ut`, no named microthread."""
        for k, (kind, t) in enumerate(self.operands):
            if kind == "s" and f == operand_field(k, "val"):
                return t.np, 0
        if f in self.field_types:
            return self.field_types[f], 0
        return np.dtype(np.int32), -1 if f in ("act", "unb", "ut", "oct") else 0

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
        """The colors (numbers or `ir.PeValue`s) the op reads from the fabric (a `@dfilt`'s
        fabin is its one operand)."""
        return [o.color for k, o in self.operands if k == "D" and o.kind == "fabin"]

    def takes_control(self) -> bool:
        """Whether the op takes the control wavelets of its fabric input: a `@dfilt`, or an
        op with `.on_control`."""
        cfg = self.stmt.config
        return self.stmt.op == "dfilt" or (cfg is not None and cfg.on_control is not None)

    def fabric_outputs(self):
        """The colors the op writes to the fabric."""
        return [o.color for k, o in self.operands if k == "D" and o.kind == "fabout"]

    def control_outputs(self):
        """The colors the op sends control wavelets on."""
        return [o.color for k, o in self.operands
                if k == "D" and o.kind == "fabout" and o.control]

    def advance_outputs(self):
        """The colors of the op's `.advance_switch` fabout operands."""
        return [o.color for k, o in self.operands
                if k == "D" and o.kind == "fabout" and o.advance_switch]

def is_fabric(d) -> bool:
    """Is DsdRt `d` a fabric DSD or a FIFO (an operand that runs on a microthread slot)?"""
    return d.kind in ("fabin", "fabout", "fifo")


class FabricLowering:
    """Mixin of `Lowerer`: the fabric side of DSD operations."""

    def fifo(self, name: str) -> ir.Fifo:
        for f in self.pe.fifos:
            if f.name == name:
                return f
        raise ProgramError(f"unknown FIFO '{name}'")

    def fifo_counts(self, name: str) -> FifoCounts:
        """The head and count of FIFO `name` of this class."""
        return self.machine.fab.fifos[(self.cls, name)]

    def colors(self, color) -> tuple:
        """The colors a fabric operand or data task of `color` uses: the number, each color a
        per-PE color's table holds on this class's PEs, or each color a queue bound at run
        time can take."""
        if isinstance(color, ir.PeValue):
            return self.table_values(color.table)
        if isinstance(color, ir.QueueColor):
            return color.colors
        return (color,)

    def queues(self, machine: Machine, color) -> list:
        """`(c, where)` for each of `colors(color)`: where None for a number, else the PEs
        whose per-PE color (or whose queue's binding now) is c."""
        if isinstance(color, ir.QueueColor):
            now = machine.fab.queue_colors[color.key]
            return [(c, now == c) for c in color.colors]
        if not isinstance(color, ir.PeValue):
            return [(color, None)]
        table = machine.tables[color.table]
        return [(c, table == c) for c in self.colors(color)]

    def queue_color(self, kind: str, n: int):
        """The color of queue n (`kind` "input" / "output") of this class, or None."""
        for k, q, color in self.pe.queues:
            if (k, q) == (kind, n):
                return color
        return None

    def stmt_QueueBind(self, s: ir.QueueBind, fr, m) -> None:
        """`encode_*_queue`: bind the queue to a color on the lanes in `m`. Faults where the
        color is not one the program names for the queue, where an operation running on a
        microthread uses the queue, and, for an output queue, where it still holds wavelets
        (they would leave on the new color: @queue_flush waits for it to drain)."""
        qc = self.queue_color(s.kind, s.queue)
        color = jnp.broadcast_to(self.expr(s.color, fr).astype(jnp.int32), self.lanes)
        if self.discovering:
            return
        mm = jnp.ones(self.lanes, bool) if m is None else m
        fab = self.machine.fab
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
                    self.fault(mm & fab.slots[(self.cls, site)].run, None,
                               f"{name} rebound while an operation on a microthread uses it")
        if s.kind == "output":
            held = jnp.zeros(self.lanes, bool)
            for c, where in self.queues(self.machine, qc):
                if c in fab.outbox:
                    held = held | (where & (fab.outbox[c].count > 0))
            self.fault(mm & held, None,
                       f"{name} rebound while it still holds wavelets (wait until it is "
                       "empty: @queue_flush)")
        fab.queue_colors[qc.key] = jnp.where(mm & ok, color, fab.queue_colors[qc.key])

    def stmt_QueueCtl(self, s: ir.QueueCtl, fr, m) -> None:
        """`@queue_flush` (watch the queue: FLUSH_PENDING) or `queue_flush.exit` (NO_FLUSH)
        on the lanes in `m`."""
        key = (s.kind, s.queue)
        flushes = self.machine.fab.flushes
        if self.discovering or key not in flushes:  # exit of a queue no @queue_flush watches
            return
        mm = jnp.ones(self.lanes, bool) if m is None else m
        flushes[key] = jnp.where(mm, FLUSH_PENDING if s.op == "flush" else NO_FLUSH,
                                 flushes[key])

    def expr_QueueFlushed(self, e: ir.QueueFlushed, fr: Frame):
        state = self.machine.fab.flushes.get((e.kind, e.queue))
        if state is None:
            return self.lane(jnp.zeros(self.lanes, bool), fr)
        return self.lane(state == FLUSHED, fr)

    def stmt_TeardownExit(self, s: ir.TeardownExit, fr, m) -> None:
        """`teardown.exit(color)` on the lanes in `m`: the router moves the color again."""
        st = self.machine.fab.switched.get(s.color)
        if self.discovering or st is None:
            return
        mm = jnp.ones(self.lanes, bool) if m is None else m
        st["down"] = st["down"] & ~mm

    def stmt_RouteEdit(self, s: ir.RouteEdit, fr, m) -> None:
        """A `color_config` call on the lanes in `m`: rewrite position 0's rx and tx."""
        st = self.machine.fab.switched.get(s.color)
        if self.discovering or st is None:
            return
        mm = jnp.ones(self.lanes, bool) if m is None else m
        mm = mm.reshape(st["rx0"].shape)
        for key, mask in (("rx0", s.rx), ("tx0", s.tx)):
            old, k = st[key], jnp.int32(mask)
            new = {"reset": k, "set": old | k, "clear": old & ~k, "toggle": old ^ k}[s.op]
            st[key] = jnp.where(mm, new, old)
        st["conf"] = st["conf"] | mm

    def expr_TeardownPending(self, e: ir.TeardownPending, fr: Frame):
        """`teardown.is_pending(color)`, or `get_pending()`: one bit per color in teardown."""
        switched = self.machine.fab.switched
        if e.color is not None:
            st = switched.get(e.color)
            return self.lane(jnp.zeros(self.lanes, bool) if st is None else st["down"], fr)
        mask = jnp.zeros(self.lanes, jnp.uint32)
        for col, st in switched.items():
            mask = mask | (st["down"].astype(jnp.uint32) << col)
        return self.lane(mask, fr)

    def per_color(self, machine: Machine, color, value_of):
        """`value_of(c)` (an `[H, W, ...]` array) of each PE's own color c of `color`."""
        out = None
        for c, where in self.queues(machine, color):
            v = value_of(c)
            if where is not None and out is not None:
                v = jnp.where(where.reshape(where.shape + (1,) * (v.ndim - 2)), v, out)
            out = v
        return out

    @staticmethod
    def boxes(machine: Machine, io: str) -> dict:
        """The rings of `io`: "in" (inboxes) or "out" (outboxes), by color."""
        return machine.fab.inbox if io == "in" else machine.fab.outbox

    def queue_count(self, machine: Machine, io: str, color):
        """The wavelets in each PE's ring of `color` (`io`: "in" or "out")."""
        rings = self.boxes(machine, io)
        return self.per_color(machine, color, lambda c: rings[c].count)

    def queue_peek(self, machine: Machine, io: str, color, n: int):
        """The first n wavelets of each PE's ring of `color` (`ring_peek`)."""
        rings = self.boxes(machine, io)
        return self.per_color(machine, color, lambda c: ring_peek(rings[c], n))

    def queue_pop(self, machine: Machine, io: str, color, k) -> None:
        rings = self.boxes(machine, io)
        for c, where in self.queues(machine, color):
            ring_pop(rings[c], k if where is None else jnp.where(where, k, 0))

    def queue_data(self, machine: Machine, color):
        """The data wavelets at the front of each PE's inbox of `color` (`ring_data`)."""
        return self.per_color(machine, color, lambda c: ring_data(machine.fab.inbox[c]))

    def queue_push(self, machine: Machine, io: str, color, k, value_at,
                   control_at=None, advance_at=None) -> None:
        rings = self.boxes(machine, io)
        for c, where in self.queues(machine, color):
            ring_push(rings[c], k if where is None else jnp.where(where, k, 0), value_at,
                      control_at, advance_at)

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
        in_order = self._in_order(s, dest, srcs, window)
        info = SiteInfo(self.cls, s, _template(dest), tuple(_template(o) for o in srcs),
                        1 if in_order else window, hidden, in_order, fr.fn)
        if s.op in CARRIED:
            info.fields["carry"] = None     # kept per PE, 0 at each start
        fifos = [o.fifo for k, o in (dest,) + tuple(srcs) if k == "D" and o.kind == "fifo"]
        if hidden and fifos:
            info.fields["ok"] = None        # what the builtin gives, 1 at each start
        if hidden and fifos and dest[0] == "p":
            # the value a pointer destination keeps where a FIFO ends the op (spec 7.5)
            info.fields["keep"] = None
            info.field_types["keep"] = self.sym(dest[1].symbol).dtype.np
        if set(fifos) & self.sized_fifos():
            info.fields["len"] = None       # a FIFO's length set at run time bounds it
        _packed_fields(info, dest)
        self.sites[s.site] = info
        return info

    def _in_order(self, s: ir.DsdOp, dest, srcs, window: int) -> bool:
        """Must the op of site `s` go one element a tick? Where an element may read what an
        earlier one wrote (a stride-0 accumulator, a `@map` callback reading its output), or
        the carry of `@addc16` goes from each element to the next."""
        if s.op == "map":
            return self._map_carried(self.pe.function(self.map_stmts[s.site].fn),
                                     None if dest[1] is None else dest)
        in_order = self._carried(s, dest, list(srcs), window) \
            if dest[0] != "D" or dest[1].memory else False
        if dest[0] == "D" and dest[1].kind == "fifo":
            in_order = in_order or any(k == "D" and o.kind == "fifo" for k, o in srcs)
        return in_order or s.op in CARRIED

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
            if kind == "D":
                if o.kind != "fifo" and not (free and o.kind == "fabout"):
                    length = o.length if length is None else _minimum(length, o.length)
                if o.memory:
                    if o.wavelet_index_offset and index is not None:
                        o = o.replace(offset=self._index_offset(o, index))
                    for f, v in o.fields().items():
                        out[operand_field(k, f)] = v
            elif kind == "s":
                out[operand_field(k, "val")] = o[0]
        out["len"] = self._fifo_bound(dest, srcs, length)
        out.update(self._hook_values(cfg, fr))
        return out

    def _hook_values(self, cfg: ir.OpConfig, fr) -> dict:
        """The task IDs of an op's hooks (`act`, `unb`, `.on_control`'s `oct`; -1: none) and
        its microthread (`ut`)."""
        oc = cfg.on_control
        out = {}
        for hook, e in (("act", cfg.activate), ("unb", cfg.unblock), ("ut", cfg.ut_id),
                        ("oct", None if oc is None else oc.task)):
            out[hook] = -1 if e is None else self._config_value(e, fr)
        return out

    def sized_fifos(self) -> set:
        """The FIFOs of this class whose read or write length the program sets."""
        if getattr(self, "_sized_fifos", None) is None:
            self._sized_fifos = {s.fifo for f in self.pe.functions
                                 for s in ir.walk_stmts(f.body) if type(s) is ir.SetFifoLength}
        return self._sized_fifos

    def _fifo_bound(self, dest, srcs, length):
        """An op's `length` (None: no DSD operand but FIFOs gives one) with the set read
        length of its FIFO source and the set write length of its FIFO destination
        (`ir.SetFifoLength`) as those operands' lengths: the shortest; with none, 1."""
        unset = np.iinfo(np.int32).max
        bound = unset if length is None else length
        for k, (kind, o) in enumerate((dest,) + tuple(srcs)):
            if self.discovering or kind != "D" or o.kind != "fifo" \
                    or o.fifo not in self.sized_fifos():
                continue
            counts = self.fifo_counts(o.fifo)
            left = counts.write_len if k == 0 else counts.read_len
            bound = jnp.where(left >= 0, jnp.minimum(bound, left), bound)
        if length is None:
            return 1 if bound is unset else jnp.where(bound == unset, 1, bound)
        return bound

    def stmt_SetFifoLength(self, s: ir.SetFifoLength, fr, m) -> None:
        n = jnp.broadcast_to(self.expr(s.length, fr).astype(jnp.int32) & 0xFFFF, self.lanes)
        if self.discovering:
            return
        counts = self.fifo_counts(s.fifo)
        mm = jnp.ones(self.lanes, bool) if m is None else m
        if s.end == "read":
            counts.read_len = jnp.where(mm, n, counts.read_len)
        else:
            counts.write_len = jnp.where(mm, n, counts.write_len)

    def _config_value(self, e, fr):
        return int(e.value) if type(e) is ir.Const else self.expr(e, fr)

    def _learn_fields(self, s: ir.DsdOp, dest, srcs, fr) -> None:
        """During discovery: note which slot fields of `s` hold the same constant on every
        start (kept in the site, not per PE)."""
        info = self.sites[s.site]
        for f, v in self._start_values(s, dest, srcs, fr).items():
            c = _same_everywhere(v)
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
            return self.machine.fab.slots[(self.cls, site)].fields[f]
        return jnp.full(self.lanes, v, dtype)

    def start_op(self, s: ir.DsdOp, dest, srcs, fr, m) -> None:
        """Capture the operands of `s` in its slot and mark it running on the lanes in `m`."""
        info = self.sites[s.site]
        slot = self.machine.fab.slots[(self.cls, s.site)]
        mm = jnp.ones(self.lanes, bool) if m is None else m
        values = self._start_values(s, dest, srcs, fr)
        if s.op in CARRIED:
            values["carry"] = 0     # each start adds from a carry of 0
        if "ok" in info.fields:
            values["ok"] = 1
        if "keep" in info.fields:
            ptr = dest[1]
            values["keep"] = self.expr(ir.Load(ptr.symbol, tuple(ptr.indices),
                                               self.sym(ptr.symbol).dtype), fr)
        busy = slot.run & mm
        self.fault(busy, None, started_while_running(f"@{s.op} in {fr.fn}"))
        if s.config is not None and s.config.ut_id is not None:
            self._check_microthread(s, info, values["ut"], mm)
        kept = set(info.slot_fields())
        for f, v in values.items():
            if f in kept:
                v = jnp.broadcast_to(jnp.asarray(v).astype(slot.fields[f].dtype), self.lanes)
                slot.fields[f] = jnp.where(mm, v, slot.fields[f])
        slot.pos = jnp.where(mm, 0, slot.pos)
        slot.run = slot.run | mm

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
            same = self.machine.fab.slots[(self.cls, site)].run & mm & (
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
            self.stmt_TaskCtl(ir.TaskCtl("activate", cfg.activate), fr, m)
        if cfg.unblock is not None:
            self.stmt_TaskCtl(ir.TaskCtl("unblock", cfg.unblock), fr, m)

    def run_block(self, machine, cfg, b, mask) -> None:
        """Run block `b` of `cfg` on the lanes in `mask` (those whose pc is at it)."""
        self.machine = machine
        fr = Frame(fn=cfg.root)
        for name in cfg.locals:
            fr.locals[name] = self.machine.fab.frames[cfg.frame_key(name)]
        self.frame_dsds(cfg, fr)
        self._call_stack.append(cfg.root)
        try:
            for st in b.stmts:
                if type(st) is Free:
                    self.stmt_LocalAssign(st.stmt, fr, mask)
                else:
                    self.stmt(st, fr, mask)
            pc = self._terminate(b.term, fr, mask)
        finally:
            self._call_stack.pop()
        self.keep_frame_dsds(cfg, fr, mask)
        fab = self.machine.fab
        fab.pc = pc
        for name, t in cfg.locals.items():
            v = fr.locals.get(name)
            if v is None or isinstance(v, DsdRt):
                continue
            key = cfg.frame_key(name)
            fab.frames[key] = jnp.where(
                mask, jnp.broadcast_to(jnp.asarray(v).astype(t.np), self.lanes), fab.frames[key])

    def _terminate(self, term, fr, mask):
        pc = self.machine.fab.pc
        kind = term[0]
        if term[-1] == "jump":
            self.tick(mask, 1)      # a jump (break, continue, return) costs its cycle
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
            return jnp.where(mask, wait, self.machine.fab.pc)
        _, s, nxt = term
        done = mask & ~self.machine.fab.slots[(self.cls, s.site)].run
        # the op's cycles count when it completes (one, and one per element)
        self.tick(done, 1 + self.slot_field(s.site, "len"))
        self.save_addresses(s, self.slot_field(s.site, "len"), fr, done)
        if "keep" in self.sites[s.site].fields:
            ptr = s.dest
            lost = done & (self.slot_field(s.site, "ok") == 0)
            self.assign_value(ptr.symbol, ptr.indices, self.slot_field(s.site, "keep"), fr, lost)
        self.apply_hooks(s.config, fr, done)
        return jnp.where(done, nxt, pc)

    def advance(self, machine: Machine, site: int, healthy) -> tuple[Machine, jnp.ndarray]:
        """Advance the slot of `site` by what its operands allow: read a window of elements,
        compute, write, consume the inputs and finish the op where it is done. Returns the
        machine and the elements done per PE (`[H, W]` int32)."""
        self.machine = machine
        info = self.sites[site]
        if info.stmt.op == "dfilt":
            return self._advance_dfilt(site, info, healthy)
        spec = self.op_spec(info.stmt)
        slot = machine.fab.slots[(self.cls, site)]
        run = slot.run & healthy & ~self.suspended(site)
        pos, length = slot.pos, self.slot_field(site, "len")
        avail = jnp.where(run, jnp.clip(length - pos, 0, info.window), 0)
        operands, avail = self._operands_now(site, info, avail, pos)
        j = jnp.arange(info.window, dtype=jnp.int32)
        what = f"@{info.stmt.op}"
        vals = [self._window_read(o, pos, j, avail, want, run, what) if kind == "D" else
                self._scalar_source(o, want) for (kind, o), want in zip(operands[1:], spec.srcs)]
        res = self._results(site, info, spec, vals, avail, run)
        kind, o = operands[0]
        if kind == "D":
            self._window_write(o, res, pos, j, avail, spec.dest, run, what, site)
            self._zero_sources(o, operands, spec, pos, j, avail, run, what, site)
        elif o is not None:     # None: a @map whose callback returns void
            self.store(("p", o), res, info.window, avail, spec.dest, run, Frame.microthread(),
                       what)
        for kind, o in operands[1:]:
            if kind == "D" and o.kind == "fabin":
                self.queue_pop(machine, "in", o.color, simd.wavelets_of(pos, avail, length)
                               if simd.packed(o) else avail)
            elif kind == "D" and o.kind == "fifo":
                self._fifo_pop(o.fifo, avail)
        new = pos + avail
        slot.pos = new
        ended = self._fifo_actions(site, info, operands, run & (new < length))
        ended = ended | self._control_end(site, info, operands, run & (new < length) & ~ended)
        done = run & ((new >= length) | ended)
        slot.run = slot.run & ~done
        if not info.hidden:
            # an async op moves its `.save_address` registers as it completes
            self.save_addresses(info.stmt, length, Frame.microthread(), done)
            self._completion_hooks(site, info, done)
        return self.machine, avail

    def _advance_dfilt(self, site: int, info: SiteInfo, healthy):
        """A running `@dfilt` (`wsejax.csl.builtins.dfilt`): drop the data wavelets at the
        front of its fabin's inbox, then take a control wavelet there as one element; it
        completes at its length. Returns the machine and the wavelets taken per PE."""
        m = self.machine
        slot = m.fab.slots[(self.cls, site)]
        run = slot.run & healthy & ~self.suspended(site)
        pos, length = slot.pos, self.slot_field(site, "len")
        color = info.operands[0][1].color
        data = jnp.where(run & (pos < length), self.queue_data(m, color), 0)
        self.queue_pop(m, "in", color, data)
        front = run & (pos < length) & (self.queue_count(m, "in", color) > 0) & \
            (self.queue_data(m, color) == 0)
        self.queue_pop(m, "in", color, front.astype(jnp.int32))
        slot.pos = pos + front.astype(jnp.int32)
        done = run & (slot.pos >= length)
        slot.run = slot.run & ~done
        self._completion_hooks(site, info, done)
        return self.machine, data + front.astype(jnp.int32)

    def _results(self, site: int, info: SiteInfo, spec, vals, avail, run):
        """The window's results (`[H, W, window]`); an op of `CARRIED` (window 1) takes its
        slot's carry in and keeps the carry out where the element ran; a `@map` calls its
        callback on the window (None where it returns void)."""
        shape = self.lanes + (info.window,)
        if info.stmt.op == "map":
            # one element a tick: the callback runs only where that element is there
            on = run & (avail > 0) if info.in_order else run
            res = self._map_window(self.map_stmts[site].fn, vals, on, info.in_order)
            return None if res is None else jnp.broadcast_to(res, shape)
        if info.stmt.op not in CARRIED:
            if self.fp_checks:
                j = jnp.arange(info.window, dtype=jnp.int32)
                self.fp_op(info.stmt.op, spec, vals, info.window,
                           run[..., None] & (j < avail[..., None]), run, info.what)
            return jnp.broadcast_to(spec.fn(*vals), shape)
        slot = self.machine.fab.slots[(self.cls, site)]
        carry = slot.fields["carry"]
        res, out = ops.add_with_carry(*vals, carry[..., None])
        out = jnp.broadcast_to(out, self.lanes + (1,))[..., 0].astype(carry.dtype)
        slot.fields["carry"] = jnp.where(avail > 0, out, carry)
        return jnp.broadcast_to(res, shape)

    def _map_window(self, name: str, vals, run, in_order: bool = False):
        """A `@map` callback `name` called on a window of its inputs (`vals`, each
        `[H, W, window]` or `[H, W, 1]`; a window of one element `in_order`, where the
        callback may write memory) on the PEs in `run`: its results, or None (void)."""
        f = self.pe.function(name)
        callee = Frame(ext=1, fn=name, writes=in_order)
        for (pname, _), a in zip(f.params, vals):
            callee.locals[pname] = a
        self.block(f.body, callee, run[..., None])
        if f.ret is None:
            return None
        if callee.retval is None:
            raise ProgramError(f"@map callback {name} returned no value")
        return callee.retval.astype(f.ret.np)

    def _fifo_actions(self, site: int, info: SiteInfo, operands, short):
        """Spec 7.5: where the op is `short` of its length and finds a FIFO source empty or its
        FIFO destination full, the FIFO's action ends it (`terminate`; `test_or_suspend` of a
        synchronous op, whose builtin then gives false), faults the PE (`fault`) or lets it
        wait. Returns the lanes where it ended."""
        ended = jnp.zeros(self.lanes, bool)
        for k, (kind, o) in enumerate(operands):
            if kind != "D" or o.kind != "fifo":
                continue
            f = self.fifo(o.fifo)
            count = self.fifo_counts(o.fifo).count
            if k == 0:
                state, action = "full", f.full_action
                stuck = short & (count >= self.sym(f.buffer).size)
            else:
                state, action = "empty", f.empty_action
                stuck = short & (count == 0)
            if action == "fault":
                self.fault(stuck, None, fifo_fault(info.what, o.fifo, state))
            elif action == "terminate" or (action == "test_or_suspend" and info.hidden):
                ended = ended | stuck
                if action == "test_or_suspend":
                    slot = self.machine.fab.slots[(self.cls, site)]
                    slot.fields["ok"] = jnp.where(stuck, 0, slot.fields["ok"])
        return ended

    def _control_end(self, site: int, info: SiteInfo, operands, short):
        """`.on_control` (spec 5.4): where the op is `short` of its length and a control
        wavelet is at the front of its fabin's inbox, the op takes it and ends, and its action
        activates or unblocks a task. Returns the lanes where it ended."""
        oc = None if info.stmt.config is None else info.stmt.config.on_control
        hit = jnp.zeros(self.lanes, bool)
        if oc is None:
            return hit
        m = self.machine
        for kind, o in operands[1:]:
            if kind == "D" and o.kind == "fabin":
                front = short & ~hit & (self.queue_count(m, "in", o.color) > 0) & \
                    (self.queue_data(m, o.color) == 0)
                self.queue_pop(m, "in", o.color, front.astype(jnp.int32))
                hit = hit | front
        if oc.action != "terminate":
            bit = task_bit(self.slot_field(site, "oct"), hit)
            if oc.action == "activate":
                m.active = m.active | bit
            else:
                m.blocked = m.blocked & ~bit
        return hit

    def control_takers(self, machine: Machine) -> dict:
        """color -> the PEs where a running op with `.on_control` (`_control_end`) or a
        `@dfilt` (`_advance_dfilt`) reads it: that op takes the color's control wavelets."""
        out = {}
        for site, info in self.sites.items():
            if not info.takes_control():
                continue
            run = machine.fab.slots[(self.cls, site)].run
            for color in info.fabric_inputs():
                for col, where in self.queues(machine, color):
                    mine = run if where is None else run & where
                    out[col] = mine if col not in out else out[col] | mine
        return out

    def expr_OpOk(self, e: ir.OpOk, fr: Frame):
        slot = self.machine.fab.slots.get((self.cls, e.site))
        if slot is None or "ok" not in slot.fields:
            return self.lane(jnp.ones(self.lanes, bool), fr)
        return self.lane(slot.fields["ok"] != 0, fr)

    def _zero_sources(self, dest, operands, spec, pos, j, avail, run, what, site) -> None:
        """A fabout destination's `.zero`: the memory sources it names are zeroed where this
        window read them."""
        for k in dest.zero:
            kind, o = operands[1 + k]
            if kind == "D" and o.memory:
                t = spec.srcs[k]
                zeros = jnp.zeros(self.lanes + (j.shape[0],), t.np)
                self._window_write(o, zeros, pos, j, avail, t, run, what, site)

    def _operands_now(self, site: int, info: SiteInfo, avail, pos):
        """The site's operands as of now (a memory DSD with the fields its slot holds), and
        `avail` lowered to the elements each fabric or FIFO operand allows."""
        operands = []
        for k, (kind, t) in enumerate(info.operands):
            if kind == "D" and t.memory:
                operands.append(("D", t.replace(**{f: self.slot_field(site, operand_field(k, f))
                                                   for f in DSD_FIELDS})))
            elif kind == "D":
                operands.append(("D", t))
                if t.kind in ("fabin", "fabout"):
                    avail = jnp.minimum(avail, self._fabric_room(t, pos))
                else:
                    cap = self.sym(self.fifo(t.fifo).buffer).size
                    cnt = self.fifo_counts(t.fifo).count
                    avail = jnp.minimum(avail, cap - cnt if k == 0 else cnt)
            elif kind == "s":
                operands.append(("s", (self.slot_field(site, operand_field(k, "val")), t)))
            else:
                operands.append(("p", t))
        return operands, jnp.maximum(avail, 0)

    def _fabric_room(self, t, pos):
        """The elements a fabric operand allows now: the data wavelets of a fabin's queue,
        the free slots of a fabout's (two elements a wavelet where packed)."""
        if t.kind == "fabin":
            n = self.queue_data(self.machine, t.color)
        else:
            n = self.capacity - self.queue_count(self.machine, "out", t.color)
        return simd.elements_of(n, pos) if simd.packed(t) else n

    def _scalar_source(self, operand, want: DType):
        """A scalar source's value as `want`, with a trailing element axis."""
        x, have = operand
        x = self.cast(x, have, want) if have != want else x
        return jnp.asarray(x, want.np)[..., None]

    def _completion_hooks(self, site: int, info: SiteInfo, done) -> None:
        """`.activate` / `.unblock` of an async op on the lanes where it completed."""
        for hook in ("act", "unb"):
            ident = info.fields.get(hook, -1)
            if ident == -1:
                continue
            # a task ID equal on every start is a constant: its bit set is one select
            bit = task_bit(self.slot_field(site, hook) if ident is None else ident, done)
            if hook == "act":
                self.machine.active = self.machine.active | bit
            else:
                self.machine.blocked = self.machine.blocked & ~bit

    def suspended(self, site: int):
        """The PEs where the op of `site` runs on a blocked microthread (spec 5.2)."""
        if self.machine.fab.ut_blocked is None or not self.sites[site].may_name_ut():
            return jnp.zeros(self.lanes, bool)
        ut = self.slot_field(site, "ut")
        bit = jnp.left_shift(jnp.uint32(1), jnp.clip(ut, 0, UT_ID_COUNT - 1).astype(jnp.uint32))
        return (ut >= 0) & (ut < UT_ID_COUNT) & ((self.machine.fab.ut_blocked & bit) != 0)

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
        fab = self.machine.fab
        fab.ut_blocked = fab.ut_blocked | bit if s.op == "block" else fab.ut_blocked & ~bit

    def _elements(self, d, pos, j):
        """Addresses (relative to the base offset) of elements `pos + j` of memory DSD d."""
        i = pos[..., None] + j
        if d.kind == "mem4d":
            pat = jnp.asarray(self.pattern(d, int(np.prod(d.extents))).astype(np.int32))
            return d.offset[..., None] + pat[jnp.clip(i, 0, pat.shape[0] - 1)]
        if d.kind == "circbuf":
            return (d.offset[..., None] + i) % d.wrap
        return d.offset[..., None] + d.stride[..., None] * i

    def _window_read(self, d, pos, j, avail, want: DType, run, what):
        window = j.shape[0]
        if d.kind == "fabin":
            w = self.queue_peek(self.machine, "in", d.color, window)
            return from_payload(simd.unpack(w, pos, j) if simd.packed(d) else w, want)
        if d.kind == "fifo":
            f = self.fifo(d.fifo)
            cap = self.sym(f.buffer).size
            addr = (self.fifo_counts(d.fifo).head[..., None] + j) % cap
            d = d.replace(kind="mem1d", addr=addr, length=window)
        elif d.kind == "fabout":
            raise ProgramError(f"{what}: a fabout_dsd cannot be a source")
        else:
            d = d.replace(addr=self._elements(d, pos, j), length=window)
        return self.read(d, window, avail, want, run, Frame.microthread(), what)

    def _window_write(self, d, res, pos, j, avail, have: DType, run, what, site):
        window = j.shape[0]
        if d.kind == "fabout" and simd.packed(d):
            self._send_packed(d, res, pos, j, avail, have, site)
            return
        if d.kind == "fabout":
            index = self.slot_field(site, "idx") if d.wavelet_index_offset else 0
            w = to_payload(res, have, index)
            # avail is 0 where the slot does not run; window <= the queue's capacity
            self.queue_push(self.machine, "out", d.color, avail,
                            lambda at: pick(w, jnp.clip(at, 0, window - 1)),
                            (lambda at: jnp.ones_like(at)) if d.control else None,
                            self._last_sent(d, pos, self.slot_field(site, "len")))
            return
        if d.kind == "fabin":
            raise ProgramError(f"{what}: a fabin_dsd cannot be a destination")
        if d.kind == "fifo":
            f = self.fifo(d.fifo)
            cap = self.sym(f.buffer).size
            counts = self.fifo_counts(d.fifo)
            tail = counts.head + counts.count
            addr = (tail[..., None] + j) % cap
            self.write(d.replace(kind="mem1d", addr=addr, length=window), res, window, avail,
                       have, run, what)
            self._fifo_push(d.fifo, avail)
            return
        self.write(d.replace(addr=self._elements(d, pos, j), length=window), res, window, avail,
                   have, run, what)

    def _send_packed(self, d, res, pos, j, avail, have: DType, site: int) -> None:
        """A window of elements into a `.simd_mode` fabout: the wavelets they complete are
        sent, a low half left over waits in the slot (`wsejax.engine.lower.simd`)."""
        slot = self.machine.fab.slots[(self.cls, site)]
        length = self.slot_field(site, "len")
        low16 = to_payload(res, have, 0) & 0xFFFF
        words, slot.fields["pend"] = simd.pack(low16, pos, j, avail, slot.fields["pend"])
        window = j.shape[0]
        self.queue_push(self.machine, "out", d.color, simd.wavelets_of(pos, avail, length),
                        lambda at: pick(words, jnp.clip(at, 0, window - 1)),
                        (lambda at: jnp.ones_like(at)) if d.control else None,
                        self._last_sent(d, pos // 2, (length + 1) // 2))

    @staticmethod
    def _last_sent(d, first, count):
        """A fabout's `.advance_switch` marks: the wavelet at window place `at` (number
        `first + at` of the op's `count`) is its last (None: the DSD advances nothing)."""
        if not d.advance_switch:
            return None
        return lambda at: (first[..., None] + at) == jnp.asarray(count)[..., None] - 1

    def _fifo_push(self, name: str, n) -> None:
        f = self.fifo(name)
        counts = self.fifo_counts(name)
        was_empty = counts.count == 0
        counts.count = counts.count + n
        counts.write_len = _spend(counts.write_len, n)
        if f.activate_push is not None:
            self.machine.active = self.machine.active | task_bit(f.activate_push,
                                                                 was_empty & (n > 0))

    def _fifo_pop(self, name: str, n) -> None:
        f = self.fifo(name)
        counts = self.fifo_counts(name)
        cap = self.sym(f.buffer).size
        was_full = counts.count == cap
        counts.head = (counts.head + n) % cap
        counts.count = counts.count - n
        counts.read_len = _spend(counts.read_len, n)
        if f.activate_pop is not None:
            self.machine.active = self.machine.active | task_bit(f.activate_pop, was_full & (n > 0))


def _spend(left, n):
    """A set FIFO length (`left` >= 0) less the n elements an op popped or pushed."""
    return jnp.where(left >= 0, jnp.maximum(left - n, 0), left)


def _minimum(a, b):
    """min(a, b) of DSD lengths: an int where both are."""
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        return min(int(a), int(b))
    return jnp.minimum(a, b)


def _same_everywhere(v):
    """`v` as an int if it is the same known number on every PE, else None."""
    if isinstance(v, jax.core.Tracer):
        return None
    a = np.asarray(v)
    if a.size == 0 or a.dtype.kind not in "iubf" or not (a == a.flat[0]).all():
        return None
    return a.flat[0].item()


def _static_int(v):
    return int(v) if isinstance(v, (int, np.integer)) else None


def _packed_fields(info: SiteInfo, dest) -> None:
    """A `.simd_mode` fabout destination keeps, per PE, the low half it has made until its
    pair is done (`pend`)."""
    if dest[0] == "D" and simd.packed(dest[1]):
        info.fields["pend"] = None
        info.field_types["pend"] = np.dtype(np.uint32)


def _template(operand):
    """An operand as a site keeps it: a DSD without its runtime fields, a scalar's type."""
    kind, o = operand
    if kind == "D":
        return ("D", o.replace(base=0, offset=0, stride=1, length=0, addr=None))
    if kind == "s":
        return ("s", o[1])
    return ("p", o)
