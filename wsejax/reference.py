"""A pure-Python reference interpreter of the IR: the oracle for the vectorised engine.

Contract: `Reference(program)` holds one small state per PE (a dict symbol -> numpy array of
the symbol's dtype and shape, the global DSD variables as concrete descriptors, a cycle counter,
a PRNG state, a fault text, the command-stream bit, task bits, and the fabric: an inbox and an
outbox per color, FIFO states, the running asynchronous ops by site, the main thread's
suspended body) and runs host commands on it with plain Python control flow: a command runs
the fabric in rounds until nothing changes (the model of `wsejax.fabric`); in a round the
router and the host move wavelets, then each PE in row-major order advances its asynchronous
ops and resumes its main thread or starts one task. Bodies run one statement at a time, and
every DSD operation one element at a time in order (read the sources' element i, compute,
write element i). A body is a Python generator that yields where a synchronous fabric or FIFO
op cannot go on; an asynchronous op is an object the rounds advance. Nothing here imports or
calls JAX; the element semantics of the DSD operations (spec §8, with the policies documented
in `wsejax.ops`) and of expressions are written out below over Python numbers and numpy
scalars. Floating-point results are computed in double precision and rounded
once to the destination type, which is the correctly rounded IEEE result for +, -, *, / of f32
and f16 operands (double has more than 2p+2 bits), subnormals included.

The semantics it implements, with the engine's choices where the spec leaves room:

- Integers wrap (two's complement); `x / 0 == x % 0 == 0`; division truncates toward zero.
  Shifts: the count is converted to the shifted type; a count >= the width (or negative, for
  signed types) gives 0, or the sign fill for a signed `>>`.
- Casts: float -> int truncates toward zero and saturates, NaN -> 0; int -> int wraps; x -> bool
  is x != 0. Float min/max propagate NaN, and +0 > -0.
- A DSD operation processes `n = min(length of its DSD operands)` elements (1 with none); a
  pointer destination is written at every element, so it keeps the last one (spec 7.7). An
  operation that would touch an address outside its symbol faults before changing anything;
  the fault names the first bad operand, sources in order, then the destination.
- `@map` reads the next element of each DSD input, calls the callback, writes the result, in
  order (spec 8.1); scalar inputs are passed unchanged.
- Every loop has a budget: a loop nest (a `for` or `while` with the loops inside it and in
  the functions it calls) runs at most `loop_limit` iterations in all; the loop that would
  start one more faults (`wsejax.fabric.loop_limit_text`), so no loop runs on forever.
- Timing (the engine's model): one cycle per statement other than if/for/while/call, one more
  per runtime `if` condition evaluated, and a DSD operation or `@map` costs its element count
  on top of its one cycle. Statements inside `@map` callbacks cost nothing.
- `<math>` functions are computed in double and rounded once (sqrt, floor, ceil, fscale and
  inv are then exact; exp, log, sin, cos, tanh, pow, invsqrt are correctly rounded in almost
  every case, where the engine uses XLA's approximations, a few ulp away at times).
- `@random16()` advances the 23-bit LFSR x^23 + x^18 + 1 (Fibonacci form, shifting right) by
  128 single-bit steps and returns its low 16 bits.
- Tasks (spec 5.3): a launched function waits for its PE's main thread to be idle, then runs
  first; an idle main thread starts, one per round, its runnable task with the lowest ID (a
  local task: bound, active and not blocked, the activation consumed; a data task: a wavelet
  in its color's inbox, not blocked, no running op reading that color, the wavelet popped and
  split per `fabric.data_task_args`). `@activate`, `@block` and `@unblock` of an ID outside
  0..63 do nothing. An active, unblocked ID with no task bound is picked like the engine's
  scheduler does, runs nothing and keeps its activation, so the PE never goes idle. Past
  `loop_limit` rounds, the PEs still busy (a waiting main thread, a blocked command stream or
  an active, unblocked ID) fault.
- Fabric ops: a fabin source pops one wavelet per element (`fabric.payload_in`), a fabout
  destination appends one (`fabric.payload_out`, with `.index` in the high half under
  wavelet_index_offset); a memory DSD with wavelet_index_offset moves by `.index` 16-bit
  words (an odd `.index` on a 32-bit symbol faults; `.index` missing is a ProgramError). An
  op runs `min(lengths of its non-FIFO DSD operands)` elements as far as its inboxes hold
  wavelets, its outboxes and FIFO destinations room and its FIFO sources data; memory
  operands are range-checked when it starts. A synchronous one suspends its body until done
  (cost 1 + n cycles), an asynchronous one runs on its site's microthread (cost 1 cycle);
  `.activate` / `.unblock` apply on completion (also on memory-only ops). Faults: an async op
  started while its site runs; an op starting on the microthread its `.ut_id` names while
  another running op of the PE names the same one; an op starting to read (write) a color
  another running op reads (writes); a wavelet in an outbox that no route takes to a ramp
  ("nowhere to go"). An op whose `.ut_id` names a blocked microthread (`@block(ut)`, IDs
  0..7) does no element until it is unblocked.
  Fabric and FIFO operands in `@map`, and a call in an expression or @map callback that
  waits on the fabric, are ProgramErrors.
- FIFOs: a ring over the whole buffer symbol (elements of the op's width); a push into an
  empty FIFO activates `activate_push`, a pop from a full one `activate_pop`.
- Commands: `launch` is done when every PE called `unblock_cmd_stream()`; streaming
  `memcpy_h2d` when the host injected every wavelet (as inbox space allows); streaming
  `memcpy_d2h` when it took `l` wavelets from each ROI PE's outbox (it takes no more); copy
  mode copies at once between quiescent states. A command that is not done at quiescence
  raises DeadlockError naming the stuck PEs, their task IDs, what their main thread waits in
  and their non-empty queues; wavelets a failed H2D did not inject stay on the host.

A PE that faults stops where it faulted and runs nothing more (its memory is then whatever the
steps before the fault left; the engine, which keeps running the PE masked, leaves different
garbage, so a faulted PE's memory and clock are not comparable); the router still moves its
outbox and fills its inboxes. Printed lines are collected in the order PEs run them here,
statement by statement (all PEs) in the engine. When PEs fault with different texts,
FabricFault names the first text in row-major PE order (the engine: the first it traced).

Known differences from the engine, where the engine departs from the spec (each has a minimal
repro, xfail, in tests/test_reference.py or tests/test_reference_fabric.py):
- a runtime DSD length larger than the symbol is cut to the symbol's size there;
- `@map` reads every input before writing any output there;
- f32 expressions are not always rounded step by step there: XLA may contract `a + b * c` into
  an FMA and reassociates constants (`(x + 1.5) - 1.5` becomes `x`);
- exp, log, sin, cos, tanh differ by an ulp or so there (XLA's approximations);
- `@random16()`/`reset_cycles()` inside a `@map` callback act once for all elements (and for
  every PE) there; with effects in a `while` condition they follow stale masks there;
- with `matvec_loops=True`, `@fmacs` loops sum in another order there;
- the seeded random-order task scheduling (`schedule_seed`) is not modelled here;
- a launched function runs there even while its PE's main thread waits in a task (spec
  12.5: it runs in a task context, so it waits for the main thread here).

Example:
    >>> from wsejax import dsl as csl
    >>> def pe():
    ...     a = csl.var("a", csl.f32[4], [1.0, 2.0, 3.0, 4.0])
    ...     d = csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=4)
    ...     @csl.fn
    ...     def run():
    ...         csl.fadds(d, d, 0.5)
    ...         csl.unblock_cmd_stream()
    ...     csl.export_symbol(a)
    ...     csl.export_symbol(run)
    >>> def layout():
    ...     csl.set_rectangle(1, 1)
    ...     csl.set_tile_code(0, 0, pe)
    ...     csl.export_name("a", csl.pointer(csl.f32), True)
    ...     csl.export_name("run", csl.fn_type())
    >>> ref = Reference(csl.compile(layout))
    >>> ref.launch("run")
    >>> ref.memory(0, 0)["a"].tolist(), int(ref.cycles[0, 0])
    ([1.5, 2.5, 3.5, 4.5], 6)
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field, replace

import numpy as np

from wsejax import ir
from wsejax.errors import DeadlockError, FabricFault, MemcpyError, ProgramError
from wsejax.fabric import (
    NO_ENTRYPOINT,
    QUEUE_CAPACITY,
    control_entry,
    control_ignored,
    data_task_args,
    loop_limit_text,
    microthread_clash,
    payload_in,
    payload_out,
)
from wsejax.hardware import UT_ID_COUNT
from wsejax.memcpy import MemcpyDataType, MemcpyOrder
from wsejax.routes import routes_table
from wsejax.types import DType, format_value

__all__ = ["DEFAULT_LOOP_LIMIT", "ELEMENT_OPS", "Reference"]

DEFAULT_LOOP_LIMIT = 1 << 22          # as the engine's
PRNG_SEED = 0xDEADBEEF & 0x7FFFFF     # the LFSR's initial 23 bits, as the engine's
PAYLOAD = 0xFFFFFFFF
CONTROL = 1 << 32                     # a queued wavelet with this bit is a control wavelet


def _data_ahead(q) -> int:
    """The data wavelets at the front of queue q, before its first control wavelet."""
    n = 0
    for w in q:
        if w & CONTROL:
            break
        n += 1
    return n

F32, F16, I16, U16, U32 = DType.f32, DType.f16, DType.i16, DType.u16, DType.u32
_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32}


# ------------------------------------------------------------------------------------------------
# Scalars


def _wrap(v: int, t: DType):
    """The integer v as a numpy scalar of integer (or bool) type t, wrapped modulo 2**bits."""
    if t is DType.bool_:
        return np.bool_(v)
    bits = t.bits
    v &= (1 << bits) - 1
    if t.is_signed and v >> (bits - 1):
        v -= 1 << bits
    return t.np.type(v)


def _round(x: float, t: DType):
    """The double x rounded to nearest even in float type t (overflow gives inf)."""
    return t.np.type(x)


def _bits(v) -> int:
    """The raw bits of a numpy scalar, as an unsigned int."""
    return int(v.view(_UINT[v.dtype.itemsize]))


def _from_bits(b: int, t: DType):
    return _UINT[t.np.itemsize](b).view(t.np)


def _neg(v):
    """Flip the sign bit (NaN and subnormal alike)."""
    t = v.dtype
    return _UINT[t.itemsize](_bits(v) ^ (1 << (8 * t.itemsize - 1))).view(t)


def _fabs(v):
    t = v.dtype
    return _UINT[t.itemsize](_bits(v) & ~(1 << (8 * t.itemsize - 1))).view(t)


def _cast(v, have: DType, want: DType):
    """`@as(want, v)` for a numpy scalar v of type `have` (the engine's `cast`)."""
    if have == want:
        return v
    if want is DType.bool_:
        return np.bool_(v != 0)
    if want.is_int:
        if have.is_float:
            x = float(np.float32(v))
            if math.isnan(x):
                return want.np.type(0)
            info = np.iinfo(want.np)
            if math.isinf(x):
                return want.np.type(info.max if x > 0 else info.min)
            return want.np.type(min(max(math.trunc(x), int(info.min)), int(info.max)))
        return _wrap(int(v), want)
    # to a float type
    if have.is_float:
        return np.asarray(v).astype(want.np)[()]
    return _round(float(int(v)), want)


def _bitcast(v, have: DType, want: DType):
    if have == want:
        return v
    if have is DType.bool_ or want is DType.bool_:
        return _cast(v, have, want)
    return np.asarray(v, have.np).view(want.np)[()]


def _maxnum(a, b):
    """IEEE maxNum: a NaN loses to a number; +0 beats -0 (the DSD ops' fmax policy)."""
    fa, fb = float(a), float(b)
    if math.isnan(fa):
        return b
    if math.isnan(fb):
        return a
    if fa == fb:
        return a if math.copysign(1.0, fb) < 0 or math.copysign(1.0, fa) > 0 else b
    return a if fa > fb else b


def _fmin_max(a, b, want_max: bool, t: DType):
    """Expression `min`/`max` on floats: NaN propagates, +0 > -0 (as XLA's)."""
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return t.np.type(math.nan)
    if fa == fb:
        neg_a = math.copysign(1.0, fa) < 0
        if want_max:
            return b if neg_a else a
        return a if neg_a else b
    return a if (fa > fb) == want_max else b


def _xp16(x: float):
    if math.isnan(x):
        return np.int16(0)
    if math.isinf(x):
        return np.int16(32767 if x > 0 else -32768)
    return np.int16(min(max(math.trunc(x), -32768), 32767))


def _s16(v: int) -> int:
    return v - 0x10000 if v & 0x8000 else v


# ------------------------------------------------------------------------------------------------
# Element semantics of the DSD operations (spec §8; policies as documented in wsejax.ops)


@dataclass(frozen=True)
class ElementOp:
    """One DSD operation: destination and source element types, accepted forms, and `fn`,
    which maps one element of each source (numpy scalars of the source types) to one element
    of the destination type."""

    dest: DType
    srcs: tuple[DType, ...]
    forms: tuple[str, ...]
    fn: object


def _f32_ops():
    def add(a, b): return _round(float(a) + float(b), F32)
    def sub(a, b): return _round(float(a) - float(b), F32)
    def mul(a, b): return _round(float(a) * float(b), F32)
    def mac(a, b, s): return _round(float(a) + float(_round(float(b) * float(s), F32)), F32)
    return add, sub, mul, mac


def _f16_ops():
    def add(a, b): return _round(float(a) + float(b), F16)
    def sub(a, b): return _round(float(a) - float(b), F16)
    def mul(a, b): return _round(float(a) * float(b), F16)
    def mac(a, b, s): return _round(float(a) + float(_round(float(b) * float(s), F16)), F16)
    return add, sub, mul, mac


def _u16(v: int):
    return np.uint16(v & 0xFFFF)


def _sll16(a, n):
    return np.uint16(0) if int(n) >= 16 else _u16(int(a) << int(n))


def _slr16(a, n):
    return np.uint16(0) if int(n) >= 16 else np.uint16(int(a) >> int(n))


def _sar16(a, n):
    return _u16(_s16(int(a)) >> min(int(n), 15))


def _clz(a):
    return np.uint16(16 - int(a).bit_length())


def _ctz(a):
    a = int(a)
    return np.uint16(16 if a == 0 else (a & -a).bit_length() - 1)


def _build_ops() -> dict[str, ElementOp]:
    binary = ("DDD", "DsD", "DDs", "psD")
    binary16 = ("DDD", "DsD", "DDs")
    mac = ("DDDs",)
    move = ("DD", "pD", "Ds")
    unary = ("DD", "Ds")
    to_xp16 = ("DD", "Ds", "ps")
    fadds, fsubs, fmuls, fmacs = _f32_ops()
    faddh, fsubh, fmulh, fmach = _f16_ops()
    table = {
        "fadds": (F32, (F32, F32), binary, fadds),
        "fsubs": (F32, (F32, F32), binary, fsubs),
        "fmuls": (F32, (F32, F32), binary, fmuls),
        "fmaxs": (F32, (F32, F32), binary, _maxnum),
        "fmacs": (F32, (F32, F32, F32), mac, fmacs),
        "fmovs": (F32, (F32,), move, lambda a: a),
        "fnegs": (F32, (F32,), unary, _neg),
        "fabss": (F32, (F32,), unary, _fabs),
        "faddh": (F16, (F16, F16), binary, faddh),
        "fsubh": (F16, (F16, F16), binary, fsubh),
        "fmulh": (F16, (F16, F16), binary, fmulh),
        "fmaxh": (F16, (F16, F16), binary, _maxnum),
        "fmach": (F16, (F16, F16, F16), mac, fmach),
        "fmovh": (F16, (F16,), move, lambda a: a),
        "fnegh": (F16, (F16,), unary, _neg),
        "fabsh": (F16, (F16,), unary, _fabs),
        "fmachs": (F32, (F32, F16, F16), mac, lambda a, b, s: _round(
            float(a) + float(_round(float(b) * float(s), F16)), F32)),
        "faddhs": (F32, (F32, F16), binary, lambda a, b: _round(float(a) + float(b), F32)),
        "fh2s": (F32, (F16,), unary, lambda a: np.float32(a)),
        "fs2h": (F16, (F32,), unary, lambda a: _round(float(a), F16)),
        "fs2xp16": (I16, (F32,), to_xp16, lambda a: _xp16(float(a))),
        "fh2xp16": (I16, (F16,), to_xp16, lambda a: _xp16(float(a))),
        "xp162fs": (F32, (I16,), unary, lambda a: _round(float(int(a)), F32)),
        "xp162fh": (F16, (I16,), unary, lambda a: _round(float(int(a)), F16)),
        "add16": (U16, (U16, U16), binary16, lambda a, b: _u16(int(a) + int(b))),
        "sub16": (U16, (U16, U16), ("DDD", "DDs"), lambda a, b: _u16(int(a) - int(b))),
        "and16": (U16, (U16, U16), binary16, lambda a, b: np.uint16(int(a) & int(b))),
        "or16": (U16, (U16, U16), binary16, lambda a, b: np.uint16(int(a) | int(b))),
        "xor16": (U16, (U16, U16), binary16, lambda a, b: np.uint16(int(a) ^ int(b))),
        "sll16": (U16, (U16, U16), binary16, _sll16),
        "slr16": (U16, (U16, U16), binary16, _slr16),
        "sar16": (U16, (U16, U16), binary16, _sar16),
        "mov16": (U16, (U16,), move, lambda a: a),
        "popcnt": (U16, (U16,), unary, lambda a: np.uint16(bin(int(a)).count("1"))),
        "clz": (U16, (U16,), unary, _clz),
        "ctz": (U16, (U16,), unary, _ctz),
        "mov32": (U32, (U32,), move, lambda a: a),
    }
    return {name: ElementOp(*spec) for name, spec in table.items()}


ELEMENT_OPS: dict[str, ElementOp] = _build_ops()


# ------------------------------------------------------------------------------------------------
# Runtime values and per-PE state


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

    def address(self, i: int) -> int:
        if self.kind == "mem1d":
            return self.base_offset + self.offset + self.stride * i
        addr = self.base_offset + self.offset
        for c, e in zip(reversed(self.coeffs), reversed(self.extents)):
            i, r = divmod(i, e)
            addr += c * r
        return addr

    @property
    def is_memory(self) -> bool:
        return self.kind in ("mem1d", "mem4d")


_STREAM_KINDS = ("fabin", "fabout", "fifo")


@dataclass
class _FifoState:
    """A FIFO: `count` elements from `head` of its buffer's `size` elements."""

    spec: ir.Fifo
    size: int
    head: int = 0
    count: int = 0


@dataclass
class _Op:
    """A DSD operation with fabric or FIFO operands, in progress: `i` of its `n` elements are
    done. `need_in` / `need_pop` count the wavelets / FIFO elements one element takes;
    `out_color` is the color its fabric output writes (-1: none); `ut` the microthread its
    `.ut_id` names."""

    what: str
    spec: ElementOp
    dest: tuple
    srcs: list
    idx: int | None
    consts: list
    n: int
    index: int
    activate: int | None
    unblock: int | None
    need_in: Counter
    need_pop: Counter
    out_color: int = -1
    ut: int | None = None   # the microthread its `.ut_id` names (None: one of its own)
    i: int = 0
    queues: tuple = ()  # the queues bound at run time it uses, (kind, n)


class _Fault(Exception):
    """A PE fault: the PE stops here."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


_BREAK, _CONTINUE, _RETURN = "break", "continue", "return"
_WAITING_STMTS = (ir.If, ir.For, ir.While, ir.Call, ir.DsdOp)
_NO_CONFIG = ir.OpConfig()


@dataclass
class _Frame:
    fn: str
    locals: dict = field(default_factory=dict)
    retval: object = None
    in_map: bool = False
    nest: list | None = None      # [iterations] of the loop nest running, shared with callees


class _PE:
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
        self.tables = {name: t[y, x] for name, t in program.tables}
        self.dsd: dict[str, Dsd] = {name: _literal(lit.dsd, self.tables)
                                    for name, lit in self.cls.dsd_vars}
        self.local_tasks = {t.id: t.fn for t in self.cls.tasks if t.kind == "local"}
        self.control_tasks = {t.id: t.fn for t in self.cls.tasks if t.kind == "control"}
        # wse3: the input queue whose block state a control wavelet on each color obeys
        self.channels = {color: q for kind, q, color in self.cls.queues
                         if kind == "input" and isinstance(color, int)} \
            if program.arch == "wse3" else None
        self.data_tasks = {t.id: (t.fn, _color(t.color, self.tables))
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
        self.fifos = {f.name: _FifoState(f, self.cls.symbol(f.buffer).size)
                      for f in self.cls.fifos}
        # queues bound at run time: (kind, n) -> color now; @queue_flush: (kind, n) -> state
        self.qcolor = {(k, n): c for k, n, c in self.cls.queues}
        self.qbind = {(k, n): c.colors[0] for k, n, c in self.cls.queues
                      if isinstance(c, ir.QueueColor)}
        self.qflush = {key: NO_FLUSH for key in self.cls.flushed}
        self.filters = {color: _FilterState(f) for (fx, fy, color), f
                        in program.filter_configs().items() if (fx, fy) == (x, y)}
        self.main = None                  # the main thread's suspended body (a generator)
        self.root = ""                    # the task or launched function it runs
        self.waiting: str | None = None   # the synchronous op it waits in
        self.launch: tuple | None = None  # a launched function waiting for the main thread
        self.micro: dict[int, _Op] = {}   # running asynchronous ops by site
        self.fabin_users: Counter = Counter()   # running ops reading each color
        self.fabout_users: Counter = Counter()  # running ops writing each color

    def color_now(self, color) -> int:
        """A color, or the color a queue bound at run time has now."""
        if isinstance(color, ir.QueueColor):
            return self.qbind[(color.kind, color.queue)]
        return color

    def queue(self, boxes: dict, color: int) -> deque:
        q = boxes.get(color)
        if q is None:
            q = boxes[color] = deque()
        return q


def _color(color, tables: dict):
    """A fabric DSD's color on one PE: a number, or its entry of a per-PE table (a queue
    bound at run time stays a QueueColor: `_PE.color_now` reads its binding)."""
    return int(tables[color.table]) if isinstance(color, ir.PeValue) else color


NO_FLUSH, FLUSH_PENDING, FLUSHED = 0, 1, 2   # as the engine's (`engine.fabric_ops`)


@dataclass
class _FilterState:
    """The filter of a color at a PE (spec 6.3; the rule of `wsejax.engine.filters`)."""

    spec: ir.Filter
    cnt: int = 0
    lim: int | None = None
    phase: int = 0      # a sparse counter's: 0, 1 after reaching limit1, 2 (off) after again

    def __post_init__(self):
        self.cnt = self.spec.init_counter
        self.lim = self.spec.limit1
        if self.spec.kind == "sparse_counter" and self.lim is None:
            self.phase = 2

    def passes(self, wavelet: int) -> bool:
        """Whether a data wavelet passes (and count it)."""
        f = self.spec
        if f.kind == "range":
            return f.min_idx <= (wavelet >> 16) <= f.max_idx
        if self.phase == 2:
            return True
        if f.count_data:
            self.cnt += 1
        ok = self.cnt <= f.max_counter
        if f.count_data and self.lim is not None and self.cnt == self.lim:
            self.cnt = 0
            if f.kind == "sparse_counter":
                if self.phase == 0 and f.limit2 is not None:
                    self.lim = f.limit2
                self.phase += 1
        return ok


def _literal(d, tables: dict) -> Dsd:
    """A DSD literal whose fields are constants (a global DSD variable's initial value), on
    the PE whose per-PE values are `tables`."""
    def f(x):
        if type(x) is not ir.Const:
            raise ProgramError("a global DSD needs comptime fields")
        return int(x.value)

    if isinstance(d, ir.FabIn):
        return Dsd("fabin", "", 0, 0, 0, f(d.length), color=_color(d.color, tables))
    if isinstance(d, ir.FabOut):
        return Dsd("fabout", "", 0, 0, 0, f(d.length), color=_color(d.color, tables),
                   index_offset=d.wavelet_index_offset, control=d.control)
    if isinstance(d, ir.Mem1d):
        return Dsd("mem1d", d.base, d.base_offset, f(d.offset), f(d.stride), f(d.length),
                   index_offset=d.wavelet_index_offset)
    return Dsd("mem4d", d.base, d.base_offset, f(d.offset), 0, int(np.prod(d.extents)),
               tuple(d.coeffs), tuple(d.extents), index_offset=d.wavelet_index_offset)


# ------------------------------------------------------------------------------------------------
# The interpreter


class Reference:
    """Runs a Program one PE at a time, statement by statement, element by element.

    Args:
      program: the compiled Program.
      loop_limit: iterations after which a runtime `while` loop faults, and scheduling rounds
        after which a command whose PEs are still busy faults them.
      queue_capacity: wavelets each inbox and outbox holds.

    Attributes:
      output: lines printed by `<simprint>` (`PE(x,y): ` prefixed where the print asks).
    """

    def __init__(self, program: ir.Program, *, loop_limit: int = DEFAULT_LOOP_LIMIT,
                 queue_capacity: int = QUEUE_CAPACITY):
        if queue_capacity < 1:
            raise ValueError(f"queue_capacity must be at least 1, got {queue_capacity}")
        self.program = program
        self.loop_limit = loop_limit
        self.queue_capacity = queue_capacity
        self.output: list[str] = []
        self._pes = [[_PE(program, x, y) for x in range(program.width)]
                     for y in range(program.height)]
        self._all = [pe for row in self._pes for pe in row]
        self._streams = {int(c): kind for c, kind in program.streams}
        # color -> {flat index of a source PE: the PEs its ramp feeds}
        self._dests: dict[int, dict[int, list[_PE]]] = {}
        for color, routes in program.resolved.items():
            table = routes_table(routes)
            dests = {int(x) + int(y) * program.width: [] for x, y in routes.sources}
            for (y, x), src in np.ndenumerate(table):
                if src >= 0:
                    dests[int(src)].append(self._pes[y][x])
            self._dests[int(color)] = dests
        self._h2d: tuple | None = None   # (color, {PE: deque of wavelets the host still holds})
        self._d2h: tuple | None = None   # (color, l, {PE: list of wavelets received})

    # -- host commands ----------------------------------------------------------------------

    @property
    def cycles(self) -> np.ndarray:
        """Each PE's cycle counter. `[H, W] uint32`"""
        return np.array([[pe.cycles & 0xFFFFFFFF for pe in row] for row in self._pes],
                        np.uint32)

    @property
    def faults(self) -> dict[tuple[int, int], str]:
        """The fault text of each PE that faulted, by `(x, y)`."""
        return {(pe.x, pe.y): pe.fault for row in self._pes for pe in row if pe.fault}

    def memory(self, x: int, y: int) -> dict[str, np.ndarray]:
        """A copy of PE (x, y)'s symbols."""
        return {name: arr.copy() for name, arr in self._pes[y][x].mem.items()}

    def queues(self, x: int, y: int) -> dict[str, dict[int, list[int]]]:
        """PE (x, y)'s non-empty queues: `{"inbox": {color: wavelets}, "outbox": {...}}`."""
        pe = self._pes[y][x]
        return {name: {c: [w & PAYLOAD for w in q] for c, q in sorted(boxes.items()) if q}
                for name, boxes in (("inbox", pe.inbox), ("outbox", pe.outbox))}

    def memcpy_h2d(self, name, src: np.ndarray, px: int, py: int, w: int, h: int, l: int,
                   *, order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                   kind: str = "roi", streaming: bool = False) -> None:
        """Copy host elements into exported symbol `name` of the ROI (spec 12.2), element by
        element. `kind` is "roi", "rowbcast" or "colbcast".

        With `streaming`, `name` is an H2D streaming color: each ROI PE's `l` elements enter
        its inbox on that color as 32-bit wavelets, in order, as space allows, while the
        fabric runs to quiescence (`data_type` has no effect); raises DeadlockError when a
        PE did not take them all."""
        order = MemcpyOrder(order)
        if streaming:
            self._stream_h2d(int(name), src, px, py, w, h, l, order, kind)
            return
        bits = 16 if MemcpyDataType(data_type) is MemcpyDataType.MEMCPY_16BIT else 32
        words = np.ascontiguousarray(src).reshape(-1).view(np.uint32)
        for j in range(h):
            for i in range(w):
                pe = self._pes[py + j][px + i]
                raw, first = self._export_bytes(pe, name, bits)
                for k in range(l):
                    n = _host_index(kind, order, i, j, k, w, h, l)
                    word = int(words[n]) & ((1 << bits) - 1)
                    start = (first + k) * (bits // 8)
                    for b in range(bits // 8):
                        if start + b < raw.size:     # the pad half of an odd 16-bit symbol
                            raw[start + b] = (word >> (8 * b)) & 0xFF

    def memcpy_d2h(self, dest: np.ndarray, name, px: int, py: int, w: int, h: int, l: int,
                   *, order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                   streaming: bool = False) -> None:
        """Copy exported symbol `name` of the ROI into `dest` (raw bits, written in place).

        With `streaming`, `name` is a D2H streaming color: the host takes `l` wavelets from
        each ROI PE's outbox on that color while the fabric runs to quiescence; raises
        DeadlockError when a PE sent fewer (what arrived is written)."""
        order = MemcpyOrder(order)
        out = dest.reshape(-1).view(np.uint32)
        if streaming:
            self._stream_d2h(out, int(name), px, py, w, h, l, order)
            return
        bits = 16 if MemcpyDataType(data_type) is MemcpyDataType.MEMCPY_16BIT else 32
        for j in range(h):
            for i in range(w):
                pe = self._pes[py + j][px + i]
                raw, first = self._export_bytes(pe, name, bits)
                for k in range(l):
                    start = (first + k) * (bits // 8)
                    word = 0
                    for b in range(bits // 8):
                        if start + b < raw.size:
                            word |= int(raw[start + b]) << (8 * b)
                    out[_host_index("roi", order, i, j, k, w, h, l)] = word

    @staticmethod
    def _export_bytes(pe: _PE, name: str, bits: int):
        """The bytes of the symbol exported as `name` on `pe`, and its first word index."""
        for e in pe.cls.exports:
            if isinstance(e, ir.ExportData) and e.name == name:
                sym = pe.cls.symbol(e.symbol)
                return pe.flat[e.symbol].view(np.uint8), e.offset * sym.dtype.bits // bits
        raise ProgramError(f"PE ({pe.x}, {pe.y}) does not export '{name}'")

    def _stream_color(self, color: int, kind: str, what: str) -> None:
        if self._streams.get(color) != kind:
            raise MemcpyError(f"{what}: color {color} is not a memcpy {kind.upper()} streaming "
                              "color of the program")

    def _stream_h2d(self, color, src, px, py, w, h, l, order, kind) -> None:
        what = "memcpy_h2d" if kind == "roi" else f"memcpy_h2d_{kind}"
        self._stream_color(color, "h2d", what)
        words = np.ascontiguousarray(src).reshape(-1).view(np.uint32)
        pending = {}
        for j in range(h):
            for i in range(w):
                pending[self._pes[py + j][px + i]] = deque(
                    int(words[_host_index(kind, order, i, j, k, w, h, l)]) for k in range(l))
        self._h2d = (color, pending)
        try:
            self._settle()
        finally:
            self._h2d = None
        self._check_faults()
        self._check_stream(what, {pe: l - len(q) for pe, q in pending.items()}, l, "took")

    def _stream_d2h(self, out, color, px, py, w, h, l, order) -> None:
        what = "memcpy_d2h"
        self._stream_color(color, "d2h", what)
        got = {self._pes[py + j][px + i]: [] for j in range(h) for i in range(w)}
        self._d2h = (color, l, got)
        try:
            self._settle()
        finally:
            self._d2h = None
        for j in range(h):
            for i in range(w):
                for k, word in enumerate(got[self._pes[py + j][px + i]]):
                    out[_host_index("roi", order, i, j, k, w, h, l)] = word
        self._check_faults()
        self._check_stream(what, {pe: len(ws) for pe, ws in got.items()}, l, "sent")

    def launch(self, fn_name: str, *args) -> None:
        """Run exported function `fn_name(*args)` on the main thread of every healthy PE that
        exports it (once that thread is idle), run the fabric to quiescence, then raise
        FabricFault (a PE faulted, now or before) or DeadlockError (a PE never called
        `unblock_cmd_stream()`), as the engine does."""
        export = self.program.export(fn_name)
        values = [np.asarray(a).astype(t.np)[()] for a, t in zip(args, export.params)] \
            if export is not None else list(args)
        for pe in self._all:
            fn = next((e.fn for e in pe.cls.exports if isinstance(e, ir.ExportFunc)
                       and e.name == fn_name), None)
            if fn is None or pe.fault:
                continue
            pe.cmd_blocked = True
            pe.launch = (fn, values)
        self._settle()
        self._check(f"launch('{fn_name}')")

    def stop(self) -> None:
        """Run the fabric to quiescence; raise FabricFault if a PE faulted."""
        self._settle()
        self._check_faults()

    # -- the scheduler ----------------------------------------------------------------------

    def _settle(self) -> None:
        """Run rounds until nothing can change (quiescence). A round moves wavelets (router and
        host), advances every running asynchronous op as far as it can, and on each PE resumes
        the main thread or starts one task. After `loop_limit` rounds the PEs still busy (a
        waiting main thread, a blocked command stream or a runnable local task) fault."""
        rounds = 0
        with np.errstate(all="ignore"):
            while True:
                moved = self._route()
                moved = self._host() or moved
                busy = [pe for pe in self._all if not pe.fault and self._step(pe)]
                if not busy and not moved:
                    return
                rounds += 1
                if rounds >= self.loop_limit:
                    text = (f"the fabric was still busy after {self.loop_limit} ticks (a task "
                            "that keeps re-activating itself, or an endless loop?)")
                    for pe in self._all:
                        if not pe.fault and (pe.main is not None or pe.cmd_blocked
                                             or pe.active - pe.blocked):
                            self._halt(pe, text)
                    return

    def _halt(self, pe: _PE, text: str) -> None:
        """Fault `pe`: it runs nothing more."""
        pe.fault = text
        if pe.main is not None:
            main, pe.main = pe.main, None
            main.close()
        pe.micro.clear()
        pe.waiting = None

    def _route(self) -> bool:
        """Move every outbox's wavelets into the inboxes of its destinations, as many as all of
        them can take; fault PEs whose wavelets have nowhere to go."""
        moved = False
        cap = self.queue_capacity
        for pe in self._all:
            for color, q in pe.outbox.items():
                if not q or self._streams.get(color) == "d2h":
                    continue
                dests = self._dests.get(color, {}).get(pe.y * self.program.width + pe.x)
                if not dests:
                    if not pe.fault:
                        self._halt(pe, f"a wavelet on color {color} has nowhere to go (no "
                                       "route from this PE's ramp reaches a ramp)")
                        moved = True
                    continue
                k = len(q)
                for d in dests:
                    k = min(k, cap - len(d.queue(d.inbox, color)))
                for _ in range(k):
                    w = q.popleft()
                    for d in dests:
                        f = d.filters.get(color)
                        if f is None or f.passes(w):
                            d.inbox[color].append(w)
                moved = moved or k > 0
        return moved

    def _host(self) -> bool:
        """The host's side of a streaming command: feed inboxes, drain outboxes."""
        moved = False
        if self._h2d is not None:
            color, pending = self._h2d
            for pe, q in pending.items():
                box = pe.queue(pe.inbox, color)
                while q and len(box) < self.queue_capacity:
                    box.append(q.popleft())
                    moved = True
        if self._d2h is not None:
            color, l, got = self._d2h
            for pe, ws in got.items():
                box = pe.queue(pe.outbox, color)
                while box and len(ws) < l:
                    ws.append(box.popleft() & PAYLOAD)
                    moved = True
        return moved

    def _step(self, pe: _PE) -> bool:
        """One round on a healthy PE; whether anything changed."""
        changed = self._queue_flushes(pe)
        changed = self._control_arrivals(pe) or changed
        if pe.fault:
            return True
        for site in sorted(pe.micro):
            op = pe.micro[site]
            changed = self._advance(pe, op) or changed
            if op.i >= op.n:
                del pe.micro[site]
                self._finish(pe, op)
                changed = True
        if pe.fault:
            return True
        if pe.main is not None:
            return self._resume(pe, pe.main) or changed
        if pe.launch is not None:
            (fn, args), pe.launch = pe.launch, None
            self._start(pe, fn, args)
            return True
        task = self._pick(pe)
        if task is None:
            return changed
        ident, fn, args = task
        if fn is not None:
            self._start(pe, fn, args)
        return True

    def _queue_flushes(self, pe: _PE) -> bool:
        """Each `@queue_flush` waiting for its queue, where the queue is empty now: activate
        the teardown task (29); the queue is FLUSHED until `queue_flush.exit`."""
        fired = False
        for (kind, n), state in pe.qflush.items():
            if state != FLUSH_PENDING:
                continue
            color = pe.color_now(pe.qcolor[(kind, n)])
            if not (pe.inbox if kind == "input" else pe.outbox).get(color):
                pe.qflush[(kind, n)] = FLUSHED
                self._activate(pe, 29)
                fired = True
        return fired

    def _queue_bind(self, pe: _PE, s: ir.QueueBind, fr: _Frame) -> None:
        """`encode_*_queue` (the engine's checks, `FabricOps.queue_bind`)."""
        qc = pe.qcolor[(s.kind, s.queue)]
        color = self._int(pe, s.color, fr)
        name = f"{s.kind} queue {s.queue}"
        if color not in qc.colors:
            raise _Fault(f"{name} bound at run time to a color other than "
                         f"{', '.join(map(str, qc.colors))} (the colors this program names for "
                         "it or routes)")
        for op in pe.micro.values():
            if (s.kind, s.queue) in op.queues:
                raise _Fault(f"{name} rebound while an operation on a microthread uses it")
        if s.kind == "output" and pe.outbox.get(pe.color_now(qc)):
            raise _Fault(f"{name} rebound while it still holds wavelets (wait until it is "
                         "empty: @queue_flush)")
        pe.qbind[(s.kind, s.queue)] = color

    def _pick(self, pe: _PE):
        """The runnable task with the lowest ID, as `(id, fn, args)`, its activation or
        wavelet consumed; None when none can run. An active, unblocked ID without a task (as
        the engine's scheduler) is picked with `fn` None: nothing runs, the activation stays,
        and the PE stays busy."""
        best = None
        for ident in pe.active:
            if ident not in pe.data_tasks and ident not in pe.blocked and \
                    (best is None or ident < best):
                best = ident
        for ident in pe.control_tasks:
            if (best is None or ident < best) and ident not in pe.blocked and \
                    self._control_color(pe, ident) is not None:
                best = ident
        for ident, (_, color) in pe.data_tasks.items():
            color = pe.color_now(color)
            if (best is None or ident < best) and ident not in pe.blocked and \
                    _data_ahead(pe.inbox.get(color, ())) and not pe.fabin_users[color]:
                best = ident
        if best is None:
            return None
        if best in pe.control_tasks:
            fn = pe.control_tasks[best]
            wavelet = pe.inbox[self._control_color(pe, best)].popleft() & PAYLOAD
            return best, fn, self._task_args(pe, fn, wavelet)
        if best not in pe.data_tasks:
            if best not in pe.local_tasks:
                return best, None, []
            pe.active.discard(best)
            return best, pe.local_tasks[best], []
        fn, color = pe.data_tasks[best]
        return best, fn, self._task_args(pe, fn, pe.inbox[pe.color_now(color)].popleft())

    @staticmethod
    def _task_args(pe: _PE, fn: str, wavelet: int) -> list:
        """The arguments task `fn`'s parameters take from `wavelet` (spec 5.1)."""
        types = [t for _, t in pe.cls.function(fn).params]
        if not types:
            return []
        if not all(isinstance(t, DType) for t in types):
            raise ProgramError(f"task {fn} takes a DSD parameter")
        try:
            split = data_task_args(tuple(t.bits for t in types))
        except ValueError as err:
            raise ProgramError(f"task {fn}: {err}") from None
        return [_from_bits((wavelet >> shift) & ((1 << width) - 1), t)
                for (shift, width), t in zip(split, types)]

    # -- control wavelets (`wsejax.fabric`) -------------------------------------------------

    @staticmethod
    def _channel_open(pe: _PE, color: int) -> bool:
        if pe.channels is None:
            return color not in pe.blocked
        q = pe.channels.get(color)
        return q is not None and q not in pe.blocked

    def _control_color(self, pe: _PE, ident: int):
        """The first color whose inbox starts with a control wavelet that may start control
        task `ident` now, or None."""
        for color in sorted(pe.inbox):
            q = pe.inbox[color]
            if q and q[0] & CONTROL and control_entry(q[0]) == ident and \
                    not control_ignored(q[0]) and self._channel_open(pe, color):
                return color
        return None

    def _control_arrivals(self, pe: _PE) -> bool:
        """Drop the control wavelets at the front of `pe`'s inboxes that activate no task;
        fault `pe` if one names a control task ID it binds no task to. Whether any left."""
        gone = False
        for color in sorted(pe.inbox):
            q = pe.inbox[color]
            if not q or not q[0] & CONTROL:
                continue
            w = q[0]
            if control_ignored(w) or control_entry(w) == NO_ENTRYPOINT:
                q.popleft()
                gone = True
            elif control_entry(w) not in pe.control_tasks and self._channel_open(pe, color):
                self._halt(pe, f"a control wavelet on color {color} names a control task ID "
                               "that no control task of this PE is bound to")
                return True
        return gone

    def _start(self, pe: _PE, fn: str, args) -> None:
        pe.root = fn
        self._resume(pe, self._call(pe, fn, args, _Frame(fn=fn)))

    def _resume(self, pe: _PE, body) -> bool:
        """Run the main thread's `body` until it ends or waits; whether it made progress."""
        pe.main = None
        try:
            progressed = body.send(None)
        except StopIteration:
            return True
        except _Fault as f:
            self._halt(pe, f.text)
            return True
        pe.main = body
        return progressed

    # -- command checks ---------------------------------------------------------------------

    def _check_faults(self) -> None:
        faulted = [pe for pe in self._all if pe.fault]
        if faulted:
            kinds = list(dict.fromkeys(pe.fault for pe in faulted))
            text = kinds[0]
            others = "" if len(kinds) == 1 else f" (and {len(kinds) - 1} other kinds of fault)"
            raise FabricFault(f"device fault: {text}{others}",
                              [(pe.x, pe.y) for pe in faulted if pe.fault == text])

    def _check(self, command: str) -> None:
        self._check_faults()
        stuck = [pe for pe in self._all if pe.cmd_blocked]
        if stuck:
            raise DeadlockError(
                f"{command} cannot finish: {len(stuck)} PE(s) never called "
                "unblock_cmd_stream(), and nothing on the fabric can make progress",
                [(pe.x, pe.y) for pe in stuck],
                "\n".join(self._stuck_lines(stuck) + [
                    "each PE must call sys_mod.unblock_cmd_stream() once its work is done"]))

    def _check_stream(self, command: str, done: dict, total: int, verb: str) -> None:
        """A streaming memcpy that stopped short: the PEs whose wavelets did not all move."""
        stuck = [pe for pe, n in done.items() if n < total]
        if stuck:
            lines = [f"  PE ({pe.x}, {pe.y}): {verb} {done[pe]} of {total} wavelets"
                     for pe in stuck[:8]]
            raise DeadlockError(
                f"{command} cannot finish: {len(stuck)} PE(s) stopped short, and nothing on the "
                "fabric can make progress", [(pe.x, pe.y) for pe in stuck],
                "\n".join(lines + self._stuck_lines(stuck)))

    def _stuck_lines(self, pes: list[_PE]) -> list[str]:
        """What each of (at most 8 of) `pes` is doing: tasks, a waiting body, queues."""
        colors = sorted({c for pe in self._all for boxes in (pe.inbox, pe.outbox)
                         for c in boxes})
        lines = []
        for pe in pes[:8]:
            text = (f"  PE ({pe.x}, {pe.y}): active task IDs {sorted(pe.active) or 'none'}, "
                    f"blocked task IDs {sorted(pe.blocked) or 'none'}")
            if pe.blocked_uts:
                text += f", blocked microthreads {sorted(pe.blocked_uts)}"
            if pe.main is not None:
                text += f"; its main thread waits in {pe.root}"
            queues = [f"color {c} {name}: {len(boxes[c])}" for c in colors
                      for name, boxes in (("in", pe.inbox), ("out", pe.outbox))
                      if boxes.get(c)]
            text += f"; queues: {', '.join(queues) if queues else 'all empty'}"
            lines.append(text)
        if len(pes) > 8:
            lines.append(f"  ... and {len(pes) - 8} more")
        return lines

    # -- functions and statements (generators: they yield while a fabric op waits) ---------

    def _call(self, pe: _PE, name: str, args: list, caller: _Frame):
        f = pe.cls.function(name)
        if name in pe.stack:
            raise ProgramError(f"recursive call of '{name}' is not supported")
        fr = _Frame(fn=name, in_map=caller.in_map, nest=caller.nest)
        for (pname, ptype), a in zip(f.params, args):
            if isinstance(ptype, DType) and not isinstance(a, Dsd):
                a = _cast(a, _dtype_of(a), ptype)
            fr.locals[pname] = a
        pe.stack.append(name)
        try:
            yield from self._block(pe, f.body, fr)
        finally:
            pe.stack.pop()
        return fr.retval

    @staticmethod
    def _drive(body, where: str):
        """Run a body that may not wait (a call in an expression, a @map callback)."""
        try:
            body.send(None)
        except StopIteration as stop:
            return stop.value
        body.close()
        raise ProgramError(f"{where}: a function called in an expression or @map callback "
                           "waits on the fabric")

    def _block(self, pe: _PE, stmts, fr: _Frame):
        for s in stmts:
            if type(s) in _WAITING_STMTS:
                sig = yield from self._stmt_gen(pe, s, fr)
            else:
                sig = self._stmt(pe, s, fr)
            if sig is not None:
                return sig
        return None

    def _tick(self, pe: _PE, fr: _Frame, n: int) -> None:
        if not fr.in_map:
            pe.cycles += n

    def _stmt_gen(self, pe: _PE, s, fr: _Frame):
        """The statements that contain others or may wait."""
        t = type(s)
        if t is ir.If:
            if type(s.cond) is ir.Const:
                return (yield from self._block(pe, s.then if s.cond.value else s.orelse, fr))
            c = bool(self._expr(pe, s.cond, fr))
            self._tick(pe, fr, 1)
            return (yield from self._block(pe, s.then if c else s.orelse, fr))
        if t is ir.For:
            return (yield from self._for(pe, s, fr))
        if t is ir.While:
            return (yield from self._while(pe, s, fr))
        if t is ir.Call:
            yield from self._call(pe, s.fn, [self._value(pe, a, fr) for a in s.args], fr)
            return None
        # DsdOp
        if fr.in_map:
            raise ProgramError(f"{fr.fn}: a @map callback may not write memory or run DSD "
                               "operations")
        yield from self._dsd_op(pe, s, fr)
        self._tick(pe, fr, 1)
        return None

    def _stmt(self, pe: _PE, s, fr: _Frame):
        t = type(s)
        if fr.in_map and t in (ir.Assign, ir.DsdAssign, ir.Map, ir.UnblockCmdStream, ir.Print,
                               ir.TaskCtl, ir.QueueBind, ir.QueueCtl):
            raise ProgramError(f"{fr.fn}: a @map callback may not write memory or run DSD "
                               "operations")
        sig = None
        if t is ir.Assign:
            self._assign(pe, s, fr)
        elif t is ir.LocalAssign:
            fr.locals[s.name] = self._value(pe, s.value, fr)
        elif t is ir.DsdAssign:
            pe.dsd[s.name] = self._dsd(pe, s.value, fr)
        elif t is ir.Map:
            self._map(pe, s, fr)
        elif t is ir.Break:
            sig = _BREAK
        elif t is ir.Continue:
            sig = _CONTINUE
        elif t is ir.Return:
            if s.value is not None:
                v = self._value(pe, s.value, fr)
                ret = pe.cls.function(fr.fn).ret
                if isinstance(ret, DType) and not isinstance(v, Dsd) and v.dtype != ret.np:
                    v = _cast(v, _dtype_of(v), ret)
                fr.retval = v
            sig = _RETURN
        elif t is ir.ExprStmt:
            self._value(pe, s.value, fr)
        elif t is ir.UnblockCmdStream:
            pe.cmd_blocked = False
        elif t is ir.Print:
            self._print(pe, s, fr)
        elif t is ir.QueueBind:
            self._queue_bind(pe, s, fr)
        elif t is ir.QueueCtl:
            if (s.kind, s.queue) in pe.qflush:
                pe.qflush[(s.kind, s.queue)] = FLUSH_PENDING if s.op == "flush" else NO_FLUSH
        elif t is ir.TaskCtl and s.target == "ut":
            ident = self._int(pe, s.id, fr)
            if 0 <= ident < UT_ID_COUNT:
                if s.op == "block":
                    pe.blocked_uts.add(ident)
                else:
                    pe.blocked_uts.discard(ident)
        elif t is ir.TaskCtl:
            ident = self._int(pe, s.id, fr)
            if s.op == "activate":
                self._activate(pe, ident)
            elif 0 <= ident < 64:
                if s.op == "block":
                    pe.blocked.add(ident)
                else:
                    pe.blocked.discard(ident)
        else:
            raise ProgramError(f"cannot run statement {s!r}")
        self._tick(pe, fr, 1)
        return sig

    @staticmethod
    def _activate(pe: _PE, ident: int) -> None:
        if 0 <= ident < 64:
            pe.active.add(ident)

    def _iteration(self, fr: _Frame, kind: str, outer: bool) -> None:
        """Count one iteration of a loop against its nest's budget (`loop_limit` in all);
        past it the PE faults."""
        if fr.in_map:
            return
        if fr.nest[0] >= self.loop_limit:
            raise _Fault(loop_limit_text(fr.fn, kind, self.loop_limit, outer))
        fr.nest[0] += 1

    def _for(self, pe: _PE, s: ir.For, fr: _Frame):
        before = set(fr.locals)
        outer = fr.nest is None
        if outer:
            fr.nest = [0]
        try:
            for k in range(s.trip_count):
                self._iteration(fr, "for", outer)
                fr.locals[s.var] = _wrap(s.start + k * s.step, s.dtype)
                sig = yield from self._block(pe, s.body, fr)
                if sig == _BREAK:
                    break
                if sig == _RETURN:
                    return _RETURN
        finally:
            if outer:
                fr.nest = None
            for name in [k for k in fr.locals if k not in before]:
                del fr.locals[name]
        return None

    def _while(self, pe: _PE, s: ir.While, fr: _Frame):
        if fr.in_map:
            raise ProgramError(f"{fr.fn}: loops inside @map callbacks are not supported")
        before = set(fr.locals)
        outer = fr.nest is None
        if outer:
            fr.nest = [0]
        try:
            while bool(self._expr(pe, s.cond, fr)):
                self._iteration(fr, "while", outer)
                sig = yield from self._block(pe, s.body, fr)
                if sig == _RETURN:
                    return _RETURN
                if sig == _BREAK:
                    break
                if (yield from self._block(pe, s.cont, fr)) == _RETURN:
                    return _RETURN
        finally:
            if outer:
                fr.nest = None
            for name in [k for k in fr.locals if k not in before]:
                del fr.locals[name]
        return None

    def _print(self, pe: _PE, s: ir.Print, fr: _Frame) -> None:
        text = "".join(p if isinstance(p, str) else
                       format_value(self._expr(pe, p[0], fr), p[1]) for p in s.parts)
        *lines, pe.line = (pe.line + text).split("\n")
        prefix = f"PE({pe.x},{pe.y}): " if s.coords else ""
        self.output.extend(prefix + line for line in lines)

    # -- memory -----------------------------------------------------------------------------

    def _flat_index(self, pe: _PE, sym: ir.Symbol, indices, fr: _Frame):
        """Row-major flat index of `sym[indices]`, or None when an index is out of range."""
        flat, ok = 0, True
        for e, n in zip(indices, sym.shape):
            v = int(_wrap(int(self._expr(pe, e, fr)), DType.i32))
            ok = ok and 0 <= v < n
            flat = flat * n + v
        return flat if ok else None

    def _load(self, pe: _PE, e: ir.Load, fr: _Frame):
        sym = pe.cls.symbol(e.symbol)
        idx = self._flat_index(pe, sym, e.indices, fr) if e.indices else 0
        if idx is None:
            raise _Fault(f"index out of range reading '{e.symbol}'")
        return pe.flat[e.symbol][idx]

    def _store(self, pe: _PE, symbol: str, indices, v, fr: _Frame, idx=None) -> None:
        sym = pe.cls.symbol(symbol)
        if idx is None:
            idx = self._flat_index(pe, sym, indices, fr) if indices else 0
        if idx is None:
            raise _Fault(f"index out of range writing '{symbol}'")
        pe.flat[symbol][idx] = v

    def _assign(self, pe: _PE, s: ir.Assign, fr: _Frame) -> None:
        sym = pe.cls.symbol(s.symbol)
        v = self._expr(pe, s.value, fr)
        if v.dtype != sym.dtype.np:
            v = _cast(v, _dtype_of(v), sym.dtype)
        self._store(pe, s.symbol, s.indices, v, fr)

    # -- expressions ------------------------------------------------------------------------

    def _value(self, pe: _PE, v, fr: _Frame):
        if isinstance(v, (ir.DsdLit, ir.DsdVar, ir.DsdLocal, ir.IncrementOffset, ir.SetBase,
                          ir.SetLength, ir.SetStride, ir.FifoRef)):
            return self._dsd(pe, v, fr)
        return self._expr(pe, v, fr)

    def _expr(self, pe: _PE, e, fr: _Frame):
        t = type(e)
        if t is ir.Const:
            return _const(e)
        if t is ir.Local:
            v = fr.locals.get(e.name)
            if v is None:
                raise ProgramError(f"{fr.fn}: local '{e.name}' is read before it is assigned")
            return v
        if t is ir.Load:
            return self._load(pe, e, fr)
        if t is ir.PeValue:
            return np.asarray(pe.tables[e.table]).astype(e.dtype.np)[()]
        if t is ir.QueueFlushed:
            return np.bool_(pe.qflush.get((e.kind, e.queue)) == FLUSHED)
        if t is ir.Bin:
            a = self._expr(pe, e.a, fr)
            b = self._expr(pe, e.b, fr)
            return _binop(e, a, b)
        if t is ir.Un:
            return _unop(e.op, self._expr(pe, e.a, fr), e.a.dtype)
        if t is ir.Cast:
            return _cast(self._expr(pe, e.a, fr), e.a.dtype, e.dtype)
        if t is ir.Bitcast:
            return _bitcast(self._expr(pe, e.a, fr), e.a.dtype, e.dtype)
        if t is ir.Select:
            c = self._expr(pe, e.cond, fr)
            a = self._expr(pe, e.a, fr)
            b = self._expr(pe, e.b, fr)
            return a if c else b
        if t is ir.Intrinsic:
            return self._intrinsic(pe, e, fr)
        if t is ir.CallExpr:
            return self._drive(self._call(pe, e.fn, [self._value(pe, a, fr) for a in e.args],
                                          fr), f"{e.fn} in {fr.fn}")
        raise ProgramError(f"cannot evaluate expression {e!r}")

    def _intrinsic(self, pe: _PE, e: ir.Intrinsic, fr: _Frame):
        args = [self._expr(pe, a, fr) for a in e.args]
        name, t = e.name, e.dtype
        if name == "cycles":
            return np.uint32(pe.cycles & 0xFFFFFFFF)
        if name == "reset_cycles":
            pe.cycles = 0
            return t.np.type(0)
        if name == "seed_prng":
            seed = int(_cast(args[0], e.args[0].dtype, U32)) & 0x7FFFFF
            pe.prng = seed or 1
            return t.np.type(0)
        if name == "random16":
            state = pe.prng
            for _ in range(128):
                bit = (state ^ (state >> 5)) & 1
                state = (state >> 1) | (bit << 22)
            pe.prng = state
            return _wrap(state & 0xFFFF, t)
        x = args[0]
        fx = float(x)
        if name == "isnan":
            return np.bool_(math.isnan(fx))
        if name == "isinf":
            return np.bool_(math.isinf(fx))
        if name == "isfinite":
            return np.bool_(math.isfinite(fx))
        if name == "signbit":
            return np.bool_(math.copysign(1.0, fx) < 0)
        xt = _dtype_of(x)
        if name == "fscale":
            k = float(_cast(args[1], e.args[1].dtype, xt))
            r = _round(fx * 2.0 ** k if math.isfinite(k) and abs(k) < 2000 else
                       float(np.float64(fx) * np.exp2(np.float64(k))), xt)
        elif name == "pow":
            r = _round(float(np.power(np.float64(fx), np.float64(float(args[1])))), xt)
        elif name == "inv":
            r = _round(float(np.float64(1.0) / np.float64(fx)), xt)
        elif name == "invsqrt":
            r = _round(float(np.float64(1.0) / np.sqrt(np.float64(fx))), xt)
        else:
            fn = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "sin": np.sin,
                  "cos": np.cos, "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil}[name]
            r = _round(float(fn(np.float64(fx))), xt)
        return _cast(r, xt, t)

    # -- DSD values -------------------------------------------------------------------------

    def _int(self, pe: _PE, e, fr: _Frame) -> int:
        """A DSD field: a constant, or an expression's value as an int32 (as the engine)."""
        if type(e) is ir.Const:
            return int(e.value)
        return int(_wrap(int(self._expr(pe, e, fr)), DType.i32))

    def _dsd(self, pe: _PE, e, fr: _Frame) -> Dsd:
        t = type(e)
        if t is ir.DsdLit:
            d = e.dsd
            if isinstance(d, ir.FabIn):
                return Dsd("fabin", "", 0, 0, 0, self._int(pe, d.length, fr),
                           color=_color(d.color, pe.tables))
            if isinstance(d, ir.FabOut):
                return Dsd("fabout", "", 0, 0, 0, self._int(pe, d.length, fr),
                           color=_color(d.color, pe.tables),
                           index_offset=d.wavelet_index_offset, control=d.control)
            if isinstance(d, ir.Mem1d):
                return Dsd("mem1d", d.base, d.base_offset, self._int(pe, d.offset, fr),
                           self._int(pe, d.stride, fr), self._int(pe, d.length, fr),
                           index_offset=d.wavelet_index_offset)
            return Dsd("mem4d", d.base, d.base_offset, self._int(pe, d.offset, fr), 0,
                       int(np.prod(d.extents)), tuple(d.coeffs), tuple(d.extents),
                       index_offset=d.wavelet_index_offset)
        if t is ir.FifoRef:
            if e.name not in pe.fifos:
                raise ProgramError(f"{fr.fn}: unknown FIFO '{e.name}'")
            return Dsd("fifo", e.name, 0, 0, 0, 0)
        if t is ir.DsdVar:
            return pe.dsd[e.name]
        if t is ir.DsdLocal:
            v = fr.locals.get(e.name)
            if not isinstance(v, Dsd):
                raise ProgramError(f"{fr.fn}: '{e.name}' is not a DSD")
            return v
        if t is ir.IncrementOffset:
            d = self._memory_dsd(pe, e.dsd, fr, "increment_dsd_offset")
            delta = self._int(pe, e.delta, fr)
            bits = pe.cls.symbol(d.base).dtype.bits
            if e.dtype.bits > bits:
                step = delta * (e.dtype.bits // bits)
            elif e.dtype.bits < bits:
                ratio = bits // e.dtype.bits
                if type(e.delta) is ir.Const and delta % ratio:
                    raise ProgramError(f"increment_dsd_offset by {delta} {e.dtype} elements "
                                       f"moves a {bits}-bit DSD by half an element")
                step = delta // ratio
            else:
                step = delta
            return replace(d, offset=d.offset + step)
        if t is ir.SetBase:
            d = self._memory_dsd(pe, e.dsd, fr, "set_dsd_base_addr")
            return replace(d, base=e.symbol, base_offset=e.base_offset, offset=0)
        if t is ir.SetLength:
            d = self._dsd(pe, e.dsd, fr)
            if d.kind == "fifo":
                raise ProgramError(f"{fr.fn}: set_dsd_length of a FIFO")
            return replace(d, length=self._int(pe, e.length, fr))
        if t is ir.SetStride:
            d = self._memory_dsd(pe, e.dsd, fr, "set_dsd_stride")
            return replace(d, stride=self._int(pe, e.stride, fr))
        raise ProgramError(f"cannot evaluate DSD expression {e!r}")

    def _memory_dsd(self, pe: _PE, e, fr: _Frame, what: str) -> Dsd:
        d = self._dsd(pe, e, fr)
        if not d.is_memory:
            raise ProgramError(f"{fr.fn}: {what} of a {d.kind} DSD")
        return d

    def _operands(self, pe: _PE, operands, fr: _Frame, index=None, what=""):
        """The operands' runtime values. A memory DSD with wavelet_index_offset moves by the
        op's `.index` (`index`, in 16-bit words)."""
        out = []
        for o in operands:
            if type(o) is ir.DsdOperand:
                d = self._dsd(pe, o.dsd, fr)
                if isinstance(d.color, ir.QueueColor):
                    d = replace(d, color=pe.color_now(d.color),
                                queue=(d.color.kind, d.color.queue))
                if d.index_offset:
                    if index is None:
                        raise ProgramError(f"{what}: a DSD with wavelet_index_offset needs the "
                                           "op's .index")
                    if d.is_memory:
                        words = pe.cls.symbol(d.base).dtype.bits // 16
                        if index % words:
                            raise _Fault(f"{what}: .index {index} is not a whole element of "
                                         f"'{d.base}'")
                        d = replace(d, offset=d.offset + index // words)
                out.append(("D", d))
            elif type(o) is ir.ScalarOperand:
                out.append(("s", (self._expr(pe, o.value, fr), o.value.dtype)))
            else:
                out.append(("p", o))
        return out

    def _check_operand(self, pe: _PE, kind, o, n: int, want, fr: _Frame, what: str):
        """Width and range checks of one operand over its n elements; returns the pointer
        destination's flat index for a pointer."""
        if kind == "D" and o.kind == "fifo":
            sym = pe.cls.symbol(pe.fifos[o.base].spec.buffer)
            if want is not None and sym.dtype.bits != want.bits:
                raise ProgramError(f"{what}: FIFO '{o.base}' over '{sym.name}' ({sym.dtype}) is "
                                   f"used for {want.bits}-bit {want} elements")
        elif kind == "D" and o.is_memory:
            sym = pe.cls.symbol(o.base)
            if want is not None and sym.dtype.bits != want.bits:
                raise ProgramError(f"{what}: a DSD over '{sym.name}' ({sym.dtype}) is used for "
                                   f"{want.bits}-bit {want} elements")
            for i in range(n):
                if not 0 <= o.address(i) < sym.size:
                    raise _Fault(f"{what}: DSD address out of range of '{sym.name}'")
        elif kind == "p":
            sym = pe.cls.symbol(o.symbol)
            if want is not None and sym.dtype.bits != want.bits:
                raise ProgramError(f"{what}: '{sym.name}' ({sym.dtype}) receives {want} values")
            idx = self._flat_index(pe, sym, o.indices, fr) if o.indices else 0
            if idx is None:
                raise _Fault(f"index out of range writing '{o.symbol}'")
            return idx
        return None

    def _read(self, pe: _PE, d: Dsd, i: int, want: DType):
        return pe.flat[d.base].view(want.np)[d.address(i)]

    def _write(self, pe: _PE, dest, idx, i: int, v, have: DType, index: int = 0) -> None:
        kind, o = dest
        if kind != "D":
            pe.flat[o.symbol].view(have.np)[idx] = v
        elif o.kind == "fabout":
            bits = _bits(np.asarray(v, have.np)[()])
            wavelet = payload_out(bits, have.bits, index if o.index_offset else 0)
            pe.queue(pe.outbox, o.color).append(int(wavelet) | (CONTROL if o.control else 0))
        elif o.kind == "fifo":
            f = pe.fifos[o.base]
            pe.flat[f.spec.buffer].view(have.np)[(f.head + f.count) % f.size] = v
            f.count += 1
            if f.count == 1 and f.spec.activate_push is not None:
                self._activate(pe, f.spec.activate_push)
        else:
            pe.flat[o.base].view(have.np)[o.address(i)] = v

    @staticmethod
    def _pop(pe: _PE, name: str, want: DType):
        f = pe.fifos[name]
        v = pe.flat[f.spec.buffer].view(want.np)[f.head]
        f.head = (f.head + 1) % f.size
        f.count -= 1
        if f.count == f.size - 1 and f.spec.activate_pop is not None:
            Reference._activate(pe, f.spec.activate_pop)
        return v

    @staticmethod
    def _length(dsds) -> int:
        """Spec 7.9: the shortest DSD operand (a FIFO does not bound it, nor does a fabout
        destination where another operand has a length: the SDK's programs send a whole
        memory vector through an extent-1 fabout DSD); an op with none runs once."""
        bounded = [d for d in dsds if d.kind != "fifo"]
        sized = [d for d in bounded if d.kind != "fabout"] or bounded
        return min((d.length for d in sized), default=1)

    def _dsd_op(self, pe: _PE, s: ir.DsdOp, fr: _Frame):
        """A DSD operation (a generator). With fabric or FIFO operands it becomes an `_Op`:
        an asynchronous one goes to the microthread of its site, a synchronous one is
        advanced here, yielding while it cannot complete."""
        spec = ELEMENT_OPS[s.op]
        what = f"@{s.op} in {fr.fn}"
        cfg = s.config or _NO_CONFIG
        index = None if cfg.index is None else self._int(pe, cfg.index, fr) & 0xFFFF
        activate = None if cfg.activate is None else self._int(pe, cfg.activate, fr)
        unblock = None if cfg.unblock is None else self._int(pe, cfg.unblock, fr)
        ut = None if cfg.ut_id is None else self._int(pe, cfg.ut_id, fr)
        dest = self._operands(pe, [s.dest], fr, index, what)[0]
        srcs = self._operands(pe, s.srcs, fr, index, what)
        dsds = [o for k, o in [dest] + srcs if k == "D"]
        n = max(self._length(dsds), 0)
        streams = any(d.kind in _STREAM_KINDS for d in dsds)
        if n == 0 and not streams:
            self._hooks(pe, activate, unblock)
            return
        if dest[0] == "D" and dest[1].kind == "fabin":
            raise ProgramError(f"{what}: a fabin DSD is not a destination")
        if any(k == "D" and o.kind == "fabout" for k, o in srcs):
            raise ProgramError(f"{what}: a fabout DSD is not a source")
        for (k, o), t in zip(srcs, spec.srcs):
            self._check_operand(pe, k, o, n, t, fr, what)
        idx = self._check_operand(pe, dest[0], dest[1], n, spec.dest, fr, what)
        scalars = [_cast(o[0], _dtype_of(o[0]), t) if k == "s" else None
                   for (k, o), t in zip(srcs, spec.srcs)]
        if not streams:
            for i in range(n):
                vals = [self._read(pe, o, i, t) if k == "D" else c
                        for (k, o), t, c in zip(srcs, spec.srcs, scalars)]
                self._write(pe, dest, idx, i, spec.fn(*vals), spec.dest)
            self._tick(pe, fr, n)
            self._hooks(pe, activate, unblock)
            return
        op = _Op(what, spec, dest, srcs, idx, scalars, n, index or 0, activate, unblock,
                 Counter(o.color for k, o in srcs if k == "D" and o.kind == "fabin"),
                 Counter(o.base for k, o in srcs if k == "D" and o.kind == "fifo"),
                 dest[1].color if dest[0] == "D" and dest[1].kind == "fabout" else -1, ut)
        op.queues = tuple(o.queue for k, o in [dest] + srcs if k == "D" and o.queue)
        if cfg.async_ and s.site in pe.micro:
            raise _Fault(f"{what}: started while the same operation still runs on its "
                         "microthread")
        if ut is not None:
            # spec 5.4: running operations must not share a microthread
            for site in sorted(pe.micro):
                other = pe.micro[site]
                if site != s.site and other.ut == ut:
                    raise _Fault(microthread_clash(
                        what, other.what, ut if type(cfg.ut_id) is ir.Const else None))
        for c in op.need_in:
            if pe.fabin_users[c]:
                raise _Fault(f"{what}: the input queue of color {c} is already read by a "
                             "running operation")
        if op.out_color >= 0 and pe.fabout_users[op.out_color]:
            raise _Fault(f"{what}: the output queue of color {op.out_color} is already written "
                         "by a running operation")
        pe.fabin_users.update(op.need_in)
        pe.fabout_users[op.out_color] += 1
        if cfg.async_:
            pe.micro[s.site] = op
            return
        pe.waiting = what
        progressed = self._advance(pe, op)
        while op.i < op.n:
            yield progressed
            progressed = self._advance(pe, op)
        pe.waiting = None
        self._finish(pe, op)
        self._tick(pe, fr, n)

    def _advance(self, pe: _PE, op: _Op) -> bool:
        """Run `op`'s next elements while its inputs hold data and its outputs have room;
        whether any ran."""
        if op.ut in pe.blocked_uts:
            return False                  # its microthread is blocked (spec 5.2)
        spec, dest = op.spec, op.dest[1]
        out = push = None
        if op.dest[0] == "D":
            if dest.kind == "fabout":
                out = pe.queue(pe.outbox, dest.color)
            elif dest.kind == "fifo":
                push = pe.fifos[dest.base]
        inboxes = [(pe.queue(pe.inbox, c), k) for c, k in op.need_in.items()]
        fifos = [(pe.fifos[name], k) for name, k in op.need_pop.items()]
        start = op.i
        while op.i < op.n:
            if out is not None and len(out) >= self.queue_capacity or \
                    push is not None and push.count >= push.size or \
                    any(_data_ahead(q) < k for q, k in inboxes) or \
                    any(f.count < k for f, k in fifos):
                break
            vals = []
            for (k, o), t, c in zip(op.srcs, spec.srcs, op.consts):
                if k != "D":
                    vals.append(c)
                elif o.kind == "fabin":
                    w = pe.inbox[o.color].popleft()
                    vals.append(_from_bits(int(payload_in(w, t.bits)), t))
                elif o.kind == "fifo":
                    vals.append(self._pop(pe, o.base, t))
                else:
                    vals.append(self._read(pe, o, op.i, t))
            self._write(pe, op.dest, op.idx, op.i, spec.fn(*vals), spec.dest, op.index)
            op.i += 1
        return op.i > start

    def _finish(self, pe: _PE, op: _Op) -> None:
        pe.fabin_users.subtract(op.need_in)
        pe.fabout_users[op.out_color] -= 1
        self._hooks(pe, op.activate, op.unblock)

    def _hooks(self, pe: _PE, activate, unblock) -> None:
        """The completion hooks of an op's config (spec 5.4)."""
        if activate is not None:
            self._activate(pe, activate)
        if unblock is not None:
            pe.blocked.discard(unblock)

    def _map(self, pe: _PE, s: ir.Map, fr: _Frame) -> None:
        f = pe.cls.function(s.fn)
        what = f"@map in {fr.fn}"
        ins = self._operands(pe, s.inputs, fr)
        out = self._operands(pe, [s.output], fr)[0] if s.output is not None else None
        dsds = [o for k, o in ins if k == "D"]
        if out is not None and out[0] == "D":
            dsds.append(out[1])
        if any(not d.is_memory for d in dsds):
            raise ProgramError(f"{what}: fabric and FIFO operands are not supported in @map")
        n = self._length(dsds)
        if n <= 0:
            return
        for (k, o), (_, ptype) in zip(ins, f.params):
            self._check_operand(pe, k, o, n, ptype, fr, what)
        idx = None
        if out is not None:
            idx = self._check_operand(pe, out[0], out[1], n, f.ret, fr, what)
        for i in range(n):
            args = [self._read(pe, o, i, ptype) if k == "D" else o[0]
                    for (k, o), (_, ptype) in zip(ins, f.params)]
            callee = _Frame(fn=s.fn, in_map=True)
            for (pname, _), a in zip(f.params, args):
                callee.locals[pname] = a
            pe.stack.append(s.fn)
            try:
                self._drive(self._block(pe, f.body, callee), what)
            finally:
                pe.stack.pop()
            if out is not None:
                r = callee.retval
                if r is None:
                    raise ProgramError(f"@map callback {s.fn} returned no value")
                self._write(pe, out, idx, i, _cast(r, _dtype_of(r), f.ret), f.ret)
        self._tick(pe, fr, n)


def _host_index(kind: str, order: MemcpyOrder, i: int, j: int, k: int, w: int, h: int,
                l: int) -> int:
    """Spec 12.2: the host index of element k of ROI PE (column i, row j)."""
    row = order is MemcpyOrder.ROW_MAJOR
    if kind == "roi":
        return (j * w + i) * l + k if row else j + h * (i + w * k)
    if kind == "rowbcast":
        return j * l + k if row else j + h * k
    if kind == "colbcast":
        return i * l + k if row else i + w * k
    raise ValueError(f"unknown memcpy kind {kind!r}")


# ------------------------------------------------------------------------------------------------
# Expression operators


def _dtype_of(v) -> DType:
    dt = np.asarray(v).dtype
    return DType.bool_ if dt == np.bool_ else DType(dt.name.replace("float", "f").replace(
        "uint", "u").replace("int", "i"))


def _const(e: ir.Const):
    t = e.dtype
    if t is DType.bool_:
        return np.bool_(e.value)
    if t.is_float:
        return _round(float(e.value), t)
    return _wrap(int(e.value), t)


def _unop(op: str, a, t: DType):
    if op == "!" or (op == "~" and t is DType.bool_):
        return np.bool_(not a)
    if op == "~":
        return _wrap(~int(a), t)
    if op == "-":
        return _neg(a) if t.is_float else _wrap(-int(a), t)
    # abs
    return _fabs(a) if t.is_float else _wrap(abs(int(a)), t)


_COMPARE = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _binop(e: ir.Bin, a, b):
    op, t = e.op, e.a.dtype
    if op in _COMPARE:
        if t.is_float:
            return np.bool_(_COMPARE[op](float(a), float(b)))
        return np.bool_(_COMPARE[op](int(a), int(b)))
    if t is DType.bool_:
        x, y = bool(a), bool(b)
        r = {"and": x and y, "or": x or y, "&": x and y, "|": x or y, "^": x != y}[op]
        return np.bool_(r)
    if t.is_float:
        if op in ("min", "max"):
            r = _fmin_max(a, b, op == "max", t)
        elif op == "%":
            r = np.fmod(a, b)
        else:
            x, y = float(a), float(b)
            if op == "+":
                r = _round(x + y, t)
            elif op == "-":
                r = _round(x - y, t)
            elif op == "*":
                r = _round(x * y, t)
            elif op == "/":
                if y == 0.0:
                    r = _round(math.nan if x == 0.0 or math.isnan(x) else
                               math.copysign(math.inf, x) * math.copysign(1.0, y), t)
                else:
                    r = _round(x / y, t)
            else:
                raise ProgramError(f"operator {op} on {t}")
        return r if r.dtype == e.dtype.np else _cast(r, t, e.dtype)
    x = int(a)
    if op in ("<<", ">>"):
        y = int(_cast(b, e.b.dtype, t))
        nbits = t.bits
        big = (y & 0xFFFFFFFF) >= nbits if t.is_signed else y >= nbits
        if op == "<<":
            r = 0 if big else x << y
        elif t.is_signed:
            r = x >> (nbits - 1 if big else y)
        else:
            r = 0 if big else x >> y
        return _wrap(r, e.dtype)
    y = int(b)
    if op == "+":
        r = x + y
    elif op == "-":
        r = x - y
    elif op == "*":
        r = x * y
    elif op == "/":
        r = 0 if y == 0 else (abs(x) // abs(y)) * (1 if (x < 0) == (y < 0) else -1)
    elif op == "%":
        r = 0 if y == 0 else x - y * ((abs(x) // abs(y)) * (1 if (x < 0) == (y < 0) else -1))
    elif op == "&":
        r = x & y
    elif op == "|":
        r = x | y
    elif op == "^":
        r = x ^ y
    elif op == "min":
        r = min(x, y)
    elif op == "max":
        r = max(x, y)
    else:
        raise ProgramError(f"operator {op} on {t}")
    return _wrap(r, e.dtype)
