"""The state of one PE in the reference interpreter, and its runtime values.

Contract: `PE(program, x, y)` holds one PE's memory (symbol -> numpy array, with a flat view),
its global DSD variables as concrete `Dsd`s, clock, PRNG, fault, task and microthread bits,
and its side of the fabric (inbox and outbox per color, FIFOs, queues bound at run time, filters,
the running asynchronous ops). `literal` turns an IR DSD literal into a `Dsd`, given how to
read its fields. Nothing here runs code: the interpreter (`wsejax.reference.interp`) does.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from wsejax import ir
from wsejax.diagnostics import PRNG_SEED
from wsejax.errors import ProgramError
from wsejax.opspec import ElementOp
from wsejax.types import DType, bits16_of, from_bits16

__all__ = ["CONTROL", "FLUSHED", "FLUSH_PENDING", "NO_FLUSH", "PAYLOAD", "PE", "PRNG_SEED",
           "STREAM_KINDS", "TASK_ID_COUNT", "Dsd", "Fault", "FifoState", "Frame", "RunningOp",
           "data_ahead", "literal"]

PAYLOAD = 0xFFFFFFFF
CONTROL = 1 << 32                     # a queued wavelet with this bit is a control wavelet
ADVANCE = 1 << 33                     # ... the last of an `.advance_switch` fabout (switched
                                      # colors only: `wsejax.reference.switched`)
TASK_ID_COUNT = 64                    # task IDs 0..63 (spec 2)
NO_FLUSH, FLUSH_PENDING, FLUSHED = 0, 1, 2   # a queue's @queue_flush state, as the engine's
STREAM_KINDS = ("fabin", "fabout", "fifo")


def data_ahead(queue) -> int:
    """The data wavelets at the front of `queue`, before its first control wavelet."""
    n = 0
    for wavelet in queue:
        if wavelet & CONTROL:
            break
        n += 1
    return n


@dataclass(frozen=True)
class Dsd:
    """A concrete DSD. Memory DSDs: element i is at flat index `base_offset + offset + stride *
    i` of `base` (mem1d), or at `base_offset + offset + sum(coeffs[d] * i_d)` with the counters
    `i_d` of i in row-major order over `extents` (mem4d). Fabric DSDs ("fabin", "fabout") move
    `length` wavelets on `color`; a "fifo" names the FIFO in `base`. `index_offset` is the
    DSD's wavelet_index_offset."""

    kind: str           # "mem1d" | "mem4d" | "fabin" | "fabout" | "fifo"
    base: str
    base_offset: int
    offset: int
    stride: int = 1
    length: int = 0
    coeffs: tuple[int, ...] = ()
    extents: tuple[int, ...] = ()
    color: int = -1
    index_offset: bool = False
    control: bool = False
    queue: tuple | None = None   # (kind, n) of a queue bound at run time whose color it has
    wrap: int = 0               # circbuf: element i is at offset + i mod wrap (offset: head)
    zero: tuple = ()            # fabout: the sources it zeroes as they are read
    simd: str | None = None     # fabin / fabout: `.simd_mode`, two 16-bit elements a wavelet
    advance: bool = False       # fabout: `.advance_switch`

    def address(self, i: int) -> int:
        if self.kind == "mem1d":
            return self.base_offset + self.offset + self.stride * i
        if self.kind == "circbuf":
            return self.base_offset + (self.offset + i) % self.wrap
        addr = self.base_offset + self.offset
        for coeff, extent in zip(reversed(self.coeffs), reversed(self.extents)):
            i, counter = divmod(i, extent)
            addr += coeff * counter
        return addr

    @property
    def is_memory(self) -> bool:
        return self.kind in ("mem1d", "mem4d", "circbuf")


def color_on(color, tables: dict):
    """A fabric DSD's color on one PE: a number, or its entry of a per-PE table (a queue
    bound at run time stays a QueueColor: `PE.color_now` reads its binding)."""
    return int(tables[color.table]) if isinstance(color, ir.PeValue) else color


def literal(d, tables: dict, int_of: Callable) -> Dsd:
    """The DSD literal `d` on the PE whose per-PE values are `tables`; `int_of` gives the value
    of each field expression (offset, stride, length, in that order)."""
    if isinstance(d, ir.FabIn):
        return Dsd("fabin", "", 0, 0, 0, int_of(d.length), color=color_on(d.color, tables),
                   simd=d.simd)
    if isinstance(d, ir.FabOut):
        return Dsd("fabout", "", 0, 0, 0, int_of(d.length), color=color_on(d.color, tables),
                   index_offset=d.wavelet_index_offset, control=d.control, zero=d.zero,
                   simd=d.simd, advance=d.advance_switch)
    if isinstance(d, ir.CircBuf):
        return Dsd("circbuf", d.base, d.base_offset, int_of(d.offset), 1, int_of(d.length),
                   wrap=d.wraparound)
    if isinstance(d, ir.Mem1d):
        return Dsd("mem1d", d.base, d.base_offset, int_of(d.offset), int_of(d.stride),
                   int_of(d.length), index_offset=d.wavelet_index_offset)
    return Dsd("mem4d", d.base, d.base_offset, int_of(d.offset), 0, int(np.prod(d.extents)),
               tuple(d.coeffs), tuple(d.extents), index_offset=d.wavelet_index_offset)


def _comptime_field(x) -> int:
    """A field of a global DSD variable's initial value, which must be a constant."""
    if type(x) is not ir.Const:
        raise ProgramError("a global DSD needs comptime fields")
    return int(x.value)


@dataclass
class FifoState:
    """A FIFO: `count` elements from `head` of its buffer's `size` elements."""

    spec: ir.Fifo
    size: int
    head: int = 0
    count: int = 0
    read_len: int | None = None     # what remains of a set read length (ir.SetFifoLength)
    write_len: int | None = None


@dataclass
class FilterState:
    """The filter of a color at a PE (spec 6.3; the rule of `wsejax.engine.filters`)."""

    spec: ir.Filter
    counter: int = 0
    limit: int | None = None
    phase: int = 0      # a sparse counter's: 0, 1 after reaching limit1, 2 (off) after again
    max_counter: int = 0

    def __post_init__(self):
        self.counter = self.spec.init_counter
        self.limit = self.spec.limit1
        self.max_counter = self.spec.max_counter
        if self.spec.kind == "sparse_counter" and self.limit is None:
            self.phase = 2

    def passes(self, wavelet: int) -> bool:
        """Whether a wavelet passes (and count it); `wavelet` carries `CONTROL` for a
        control wavelet."""
        f = self.spec
        control = bool(wavelet & CONTROL)
        if f.kind == "range":
            return control or f.min_idx <= ((wavelet & PAYLOAD) >> 16) <= f.max_idx
        if self.phase == 2:
            return True
        counted = f.count_control if control else f.count_data
        if counted:
            self.counter += 1
        if control:
            ok = not f.filter_control or self.counter == self.max_counter
        else:
            ok = self.counter <= self.max_counter
        if counted and self.limit is not None and self.counter == self.limit:
            self.counter = 0
            if f.kind == "sparse_counter":
                if self.phase == 0 and f.limit2 is not None:
                    self.limit = f.limit2
                self.phase += 1
        return ok


@dataclass
class RunningOp:
    """A DSD operation with fabric or FIFO operands, in progress: `done` of its `length`
    elements are. `need_in` / `need_pop` count the wavelets / FIFO elements one element takes;
    `out_color` is the color its fabric output writes (-1: none)."""

    what: str
    spec: ElementOp
    dest: tuple                 # (letter, operand): see `DsdInterpreter._operands`
    srcs: list
    ptr_index: int | None       # a pointer destination's flat index
    scalars: list               # each scalar source's value, cast to its type (None: a DSD)
    length: int
    index: int                  # the op's `.index`
    activate: int | None
    unblock: int | None
    need_in: Counter
    need_pop: Counter
    out_color: int = -1
    ut: int | None = None       # the microthread its `.ut_id` names (None: one of its own)
    done: int = 0
    queues: tuple = ()          # the queues bound at run time it uses, (kind, n)
    saved: tuple = ()           # its `.save_address` registers, moved when it completes
    carry: int = 0              # the carry of an op of `opspec.CARRIED`, 0 at its start
    sync: bool = False          # a synchronous op (its PE's main thread waits for it)
    ended: bool = False         # a FIFO operand's action ended it before its length
    ok: bool = True             # what its builtin gives (false: `test_or_suspend` ended it)
    pend: int = 0               # a `.simd_mode` fabout's low half, until its pair is done
    on_control: tuple | None = None   # `.on_control`: (action, task ID or None)
    dfilt: bool = False         # a `@dfilt`: it drops data and takes control wavelets

    @property
    def finished(self) -> bool:
        return self.ended or self.done >= self.length


class Fault(Exception):
    """A PE fault: the PE stops here."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


@dataclass
class Frame:
    """A running function's locals and return value."""

    fn: str
    locals: dict = field(default_factory=dict)
    retval: object = None
    in_map: bool = False
    nest: list | None = None      # [iterations] of the loop nest running, shared with callees


class PE:
    """The state of one PE."""

    def __init__(self, program: ir.Program, x: int, y: int):
        self.x, self.y = x, y
        self.cls: ir.PeProgram = program.classes[int(program.class_of[y, x])]
        self.mem: dict[str, np.ndarray] = {}
        self.flat: dict[str, np.ndarray] = {}
        for s in self.cls.symbols:
            arr = np.zeros(s.shape, s.dtype.np) if s.init is None else \
                np.asarray(s.init, s.dtype.np).reshape(s.shape)
            arr = np.ascontiguousarray(arr)
            self.mem[s.name] = arr
            self.flat[s.name] = arr.reshape(-1)
        self.dtypes: dict[str, DType] = {s.name: s.dtype for s in self.cls.symbols}
        self.tables = {name: t[y, x] for name, t in program.tables}
        self.dsd: dict[str, Dsd] = {name: literal(lit.dsd, self.tables, _comptime_field)
                                    for name, lit in self.cls.dsd_vars}
        self.local_tasks = {t.id: t.fn for t in self.cls.tasks if t.kind == "local"}
        self.control_tasks = {t.id: t.fn for t in self.cls.tasks if t.kind == "control"}
        # wse3: the input queue whose block state a control wavelet on each color obeys
        self.channels = {color: q for kind, q, color in self.cls.queues
                         if kind == "input" and isinstance(color, int)} \
            if program.arch == "wse3" else None
        self.data_tasks = {t.id: (t.fn, color_on(t.color, self.tables))
                           for t in self.cls.tasks if t.kind == "data"}
        self.active = set(self.cls.active)
        self.blocked = set(self.cls.blocked)
        self.blocked_uts = set(self.cls.blocked_uts)
        self.cycles = 0
        self.prng = PRNG_SEED
        self.fault: str | None = None
        self.cmd_blocked = False
        self.line = ""
        self.stack: list[str] = []
        # the fabric
        self.inbox: dict[int, deque] = {}
        self.outbox: dict[int, deque] = {}
        self.fifos = {f.name: FifoState(f, self.cls.symbol(f.buffer).size)
                      for f in self.cls.fifos}
        # queues bound at run time: (kind, n) -> color now; @queue_flush: (kind, n) -> state
        self.queue_colors = {(k, n): c for k, n, c in self.cls.queues}
        self.queue_binding = {(k, n): c.colors[0] for k, n, c in self.cls.queues
                              if isinstance(c, ir.QueueColor)}
        self.queue_flush = {key: NO_FLUSH for key in self.cls.flushed}
        self.switched = frozenset(program.switched)   # the colors routed hop by hop
        self.filters = {color: FilterState(f) for (fx, fy, color), f
                        in program.filter_configs().items() if (fx, fy) == (x, y)}
        self.main = None                  # the main thread's suspended body (a generator)
        self.root = ""                    # the task or launched function it runs
        self.launch: tuple | None = None  # a launched function waiting for the main thread
        self.micro: dict[int, RunningOp] = {}   # running asynchronous ops by site
        self.op_ok: dict[int, bool] = {}        # the result of each synchronous op by site
        self.fabin_users: Counter = Counter()   # running ops reading each color
        self.fabout_users: Counter = Counter()  # running ops writing each color
        self.control_takers: Counter = Counter()   # running `.on_control` ops reading each

    def color_now(self, color) -> int:
        """A color, or the color a queue bound at run time has now."""
        if isinstance(color, ir.QueueColor):
            return self.queue_binding[(color.kind, color.queue)]
        return color

    def queue(self, boxes: dict, color: int) -> deque:
        """The inbox or outbox (`boxes`) of `color`, made empty where there is none yet."""
        q = boxes.get(color)
        if q is None:
            q = boxes[color] = deque()
        return q

    def activate(self, ident: int) -> None:
        """`@activate(ident)`; an ID outside 0..63 does nothing."""
        if 0 <= ident < TASK_ID_COUNT:
            self.active.add(ident)

    def halt(self, text: str) -> None:
        """Fault: the PE runs nothing more."""
        self.fault = text
        if self.main is not None:
            main, self.main = self.main, None
            main.close()
        self.micro.clear()

    def fifo_pop(self, name: str, want):
        """The next element of FIFO `name`, as `want` elements; a pop from a full FIFO
        activates its `activate_pop` task."""
        f = self.fifos[name]
        v = self.load(f.spec.buffer, f.head, want)
        f.head = (f.head + 1) % f.size
        f.count -= 1
        if f.read_len is not None:
            f.read_len = max(f.read_len - 1, 0)
        if f.count == f.size - 1 and f.spec.activate_pop is not None:
            self.activate(f.spec.activate_pop)
        return v

    def fifo_push(self, name: str, v, have) -> None:
        """Append `v` (a `have` element) to FIFO `name`; a push into an empty FIFO activates
        its `activate_push` task."""
        f = self.fifos[name]
        self.store(f.spec.buffer, (f.head + f.count) % f.size, v, have)
        f.count += 1
        if f.write_len is not None:
            f.write_len = max(f.write_len - 1, 0)
        if f.count == 1 and f.spec.activate_push is not None:
            self.activate(f.spec.activate_push)

    # -- elements read as another type of their width (cb16 is held as f32: its patterns are
    # made for a 16-bit access of another type, and read back)

    def load(self, name: str, k: int, want: DType):
        """Element k of symbol `name`'s memory, read as `want` elements."""
        have = self.dtypes[name]
        flat = self.flat[name]
        if have is want or DType.cb16 not in (have, want):
            return flat.view(want.np)[k]
        b = bits16_of(flat[k], have) if have is DType.cb16 else flat.view(np.uint16)[k]
        return from_bits16(b, want)[()]

    def store(self, name: str, k: int, v, have: DType) -> None:
        """Write `v` (a `have` element) as element k of symbol `name`'s memory."""
        mine = self.dtypes[name]
        flat = self.flat[name]
        if mine is have or DType.cb16 not in (have, mine):
            flat.view(have.np)[k] = v
        elif mine is DType.cb16:
            flat[k] = from_bits16(bits16_of(v, have), mine)[()]
        else:
            flat.view(np.uint16)[k] = bits16_of(v, have)
