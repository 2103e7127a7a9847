"""A pure-Python reference interpreter of the IR: the oracle for the vectorised engine.

Contract: `Reference(program)` holds one small state per PE (a dict symbol -> numpy array of
the symbol's dtype and shape, the global DSD variables as concrete descriptors, a cycle counter,
a PRNG state, a fault text, the command-stream bit) and runs host commands on it with plain
Python control flow: one PE at a time (row-major), one statement at a time, and every DSD
operation one element at a time in order (read the sources' element i, compute, write element
i). Nothing here imports or calls JAX; the element semantics of the DSD operations (spec §8, with
the policies documented in `wsejax.ops`) and of expressions are written out below over Python
numbers and numpy scalars. Floating-point results are computed in double precision and rounded
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
- A runtime `while` faults when its condition still holds after `loop_limit` iterations.
- Timing (the engine's model): one cycle per statement other than if/for/while/call, one more
  per runtime `if` condition evaluated, and a DSD operation or `@map` costs its element count
  on top of its one cycle. Statements inside `@map` callbacks cost nothing.
- `<math>` functions are computed in double and rounded once (sqrt, floor, ceil, fscale and
  inv are then exact; exp, log, sin, cos, tanh, pow, invsqrt are correctly rounded in almost
  every case, where the engine uses XLA's approximations, a few ulp away at times).
- `@random16()` advances the 23-bit LFSR x^23 + x^18 + 1 by 128 single-bit steps.
- Local tasks (the engine's scheduler): after the launched function has run on every PE, in
  rounds, each PE runs its active, unblocked task with the lowest ID (consuming the
  activation), while some healthy PE still blocks the command stream and some PE ran a task in
  the last round; past `loop_limit` rounds the PEs still blocking fault. `@activate`, `@block`
  and `@unblock` of an ID outside 0..63 do nothing.

A PE that faults stops where it faulted and runs nothing more (its memory is then whatever the
steps before the fault left; the engine, which keeps running the PE masked, leaves different
garbage, so a faulted PE's memory and clock are not comparable). Printed lines are collected PE
by PE here, statement by statement (all PEs) in the engine. When PEs fault with different
texts, FabricFault names the first text in row-major PE order (the engine: the first it traced).

Known differences from the engine, where the engine departs from the spec (each has a minimal
repro, xfail, in tests/test_reference.py):
- a runtime DSD length larger than the symbol is cut to the symbol's size there;
- `@map` reads every input before writing any output there;
- f32 expressions are not always rounded step by step there: XLA may contract `a + b * c` into
  an FMA and reassociates constants (`(x + 1.5) - 1.5` becomes `x`);
- exp, log, sin, cos, tanh differ by an ulp or so there (XLA's approximations);
- `@random16()`/`reset_cycles()` inside a `@map` callback act once for all elements (and for
  every PE) there; with effects in a `while` condition they follow stale masks there;
- with `matvec_loops=True`, `@fmacs` loops sum in another order there;
- the seeded random-order task scheduling (`schedule_seed`) is not modelled here.

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
from dataclasses import dataclass, field, replace

import numpy as np

from wsejax import ir
from wsejax.errors import DeadlockError, FabricFault, ProgramError
from wsejax.memcpy import MemcpyDataType, MemcpyOrder
from wsejax.types import DType

__all__ = ["DEFAULT_LOOP_LIMIT", "ELEMENT_OPS", "Reference"]

DEFAULT_LOOP_LIMIT = 1 << 22          # as the engine's
PRNG_SEED = 0xDEADBEEF & 0x7FFFFF     # the LFSR's initial 23 bits, as the engine's

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
    """A concrete memory DSD: element i is at flat index `base_offset + offset + stride * i`
    of `base` (mem1d), or at `base_offset + offset + sum(coeffs[d] * i_d)` with the counters
    `i_d` of i in row-major order over `extents` (mem4d)."""

    kind: str           # "mem1d" | "mem4d"
    base: str
    base_offset: int
    offset: int
    stride: int = 1
    length: int = 0
    coeffs: tuple[int, ...] = ()
    extents: tuple[int, ...] = ()

    def address(self, i: int) -> int:
        if self.kind == "mem1d":
            return self.base_offset + self.offset + self.stride * i
        addr = self.base_offset + self.offset
        for c, e in zip(reversed(self.coeffs), reversed(self.extents)):
            i, r = divmod(i, e)
            addr += c * r
        return addr


class _Fault(Exception):
    """A PE fault: the PE stops here."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


_BREAK, _CONTINUE, _RETURN = "break", "continue", "return"


@dataclass
class _Frame:
    fn: str
    locals: dict = field(default_factory=dict)
    retval: object = None
    in_map: bool = False


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
        self.dsd: dict[str, Dsd] = {name: _literal(lit.dsd) for name, lit in self.cls.dsd_vars}
        self.tables = {name: t[y, x] for name, t in program.tables}
        self.tasks = {t.id: t.fn for t in self.cls.tasks}
        self.active = set(self.cls.active)
        self.blocked = set(self.cls.blocked)
        self.cycles = 0
        self.prng = PRNG_SEED
        self.fault: str | None = None
        self.cmd_blocked = False
        self.line = ""
        self.stack: list[str] = []


def _literal(d) -> Dsd:
    """A DSD literal whose fields are constants (a global DSD variable's initial value)."""
    def f(x):
        if type(x) is not ir.Const:
            raise ProgramError("a global DSD needs comptime fields")
        return int(x.value)

    if isinstance(d, ir.Mem1d):
        return Dsd("mem1d", d.base, d.base_offset, f(d.offset), f(d.stride), f(d.length))
    return Dsd("mem4d", d.base, d.base_offset, f(d.offset), 0, int(np.prod(d.extents)),
               tuple(d.coeffs), tuple(d.extents))


def _format_value(v, spec: str) -> str:
    """One `<simprint>` value, as the engine formats it."""
    v = np.asarray(v)
    bits = max(v.dtype.itemsize * 8, 16)
    if spec == "f":
        return str(v.astype(np.float32) if v.dtype.kind == "f" else np.float32(v))
    raw = int(v.view(_UINT[v.dtype.itemsize])) if v.dtype.kind != "b" else int(v)
    if spec == "X":
        return f"{raw:0{bits // 4}X}"
    if spec == "b":
        return f"{raw:0{bits}b}"
    return str(int(v)) if v.dtype.kind in "iub" else str(v)


# ------------------------------------------------------------------------------------------------
# The interpreter


class Reference:
    """Runs a Program one PE at a time, statement by statement, element by element.

    Args:
      program: the compiled Program.
      loop_limit: iterations after which a runtime `while` loop faults.

    Attributes:
      output: lines printed by `<simprint>` (`PE(x,y): ` prefixed where the print asks).
    """

    def __init__(self, program: ir.Program, *, loop_limit: int = DEFAULT_LOOP_LIMIT):
        self.program = program
        self.loop_limit = loop_limit
        self.output: list[str] = []
        self._pes = [[_PE(program, x, y) for x in range(program.width)]
                     for y in range(program.height)]

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

    def memcpy_h2d(self, name: str, src: np.ndarray, px: int, py: int, w: int, h: int, l: int,
                   *, order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                   kind: str = "roi") -> None:
        """Copy host elements into exported symbol `name` of the ROI (spec 12.2), element by
        element. `kind` is "roi", "rowbcast" or "colbcast"."""
        bits = 16 if MemcpyDataType(data_type) is MemcpyDataType.MEMCPY_16BIT else 32
        order = MemcpyOrder(order)
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

    def memcpy_d2h(self, dest: np.ndarray, name: str, px: int, py: int, w: int, h: int, l: int,
                   *, order=MemcpyOrder.ROW_MAJOR,
                   data_type=MemcpyDataType.MEMCPY_32BIT) -> None:
        """Copy exported symbol `name` of the ROI into `dest` (raw bits, written in place)."""
        bits = 16 if MemcpyDataType(data_type) is MemcpyDataType.MEMCPY_16BIT else 32
        order = MemcpyOrder(order)
        out = dest.reshape(-1).view(np.uint32)
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

    def launch(self, fn_name: str, *args) -> None:
        """Run exported function `fn_name(*args)` on every healthy PE that exports it, then
        raise FabricFault (a PE faulted, now or before) or DeadlockError (a PE never called
        `unblock_cmd_stream()`), as the engine does."""
        export = self.program.export(fn_name)
        values = [np.asarray(a).astype(t.np)[()] for a, t in zip(args, export.params)] \
            if export is not None else list(args)
        with np.errstate(all="ignore"):
            for row in self._pes:
                for pe in row:
                    fn = next((e.fn for e in pe.cls.exports if isinstance(e, ir.ExportFunc)
                               and e.name == fn_name), None)
                    if fn is None or pe.fault:
                        continue
                    pe.cmd_blocked = True
                    self._run(pe, fn, values)
            if any(pe.tasks for row in self._pes for pe in row):
                self._run_tasks()
        self._check(f"launch('{fn_name}')")

    def _run(self, pe: _PE, fn: str, args) -> None:
        try:
            self._call(pe, fn, args, _Frame(fn=fn))
        except _Fault as f:
            pe.fault = f.text

    def _run_tasks(self) -> None:
        """The engine's scheduler: in rounds, each healthy PE runs its active, unblocked task
        with the lowest ID (starting a task consumes its activation), while some healthy PE
        still blocks the command stream and some PE could run a task in the last round; a PE
        still blocking it after `loop_limit` rounds faults."""
        pes = [pe for row in self._pes for pe in row]
        rounds, ran = 0, True
        while ran and rounds < self.loop_limit and \
                any(pe.cmd_blocked for pe in pes if not pe.fault):
            ran = False
            for pe in pes:
                runnable = sorted(pe.active - pe.blocked) if not pe.fault else []
                if not runnable:
                    continue
                ran = True
                fn = pe.tasks.get(runnable[0])
                if fn is not None:
                    pe.active.discard(runnable[0])
                    self._run(pe, fn, [])
            rounds += 1
        if rounds >= self.loop_limit:
            for pe in pes:
                if pe.cmd_blocked and not pe.fault:
                    pe.fault = (f"tasks ran past {self.loop_limit} scheduling rounds while the "
                                "command stream waited (a task that keeps re-activating "
                                "itself?)")

    def _check(self, command: str) -> None:
        faulted = [pe for row in self._pes for pe in row if pe.fault]
        if faulted:
            kinds = list(dict.fromkeys(pe.fault for pe in faulted))
            text = kinds[0]
            others = "" if len(kinds) == 1 else f" (and {len(kinds) - 1} other kinds of fault)"
            raise FabricFault(f"device fault: {text}{others}",
                              [(pe.x, pe.y) for pe in faulted if pe.fault == text])
        stuck = [pe for row in self._pes for pe in row if pe.cmd_blocked]
        if stuck:
            lines = [f"  PE ({pe.x}, {pe.y}): active task IDs {sorted(pe.active) or 'none'}, "
                     f"of which blocked {sorted(pe.active & pe.blocked) or 'none'}"
                     for pe in stuck[:8]]
            raise DeadlockError(
                f"{command} cannot finish: {len(stuck)} PE(s) never called "
                "unblock_cmd_stream(), and no task can run on them", [(pe.x, pe.y) for pe in stuck],
                "\n".join(lines + ["each PE must call sys_mod.unblock_cmd_stream() once its "
                                    "work is done"]))

    # -- functions and statements -----------------------------------------------------------

    def _call(self, pe: _PE, name: str, args: list, caller: _Frame):
        f = pe.cls.function(name)
        if name in pe.stack:
            raise ProgramError(f"recursive call of '{name}' is not supported")
        fr = _Frame(fn=name, in_map=caller.in_map)
        for (pname, ptype), a in zip(f.params, args):
            if isinstance(ptype, DType) and not isinstance(a, Dsd):
                a = _cast(a, _dtype_of(a), ptype)
            fr.locals[pname] = a
        pe.stack.append(name)
        try:
            self._block(pe, f.body, fr)
        finally:
            pe.stack.pop()
        return fr.retval

    def _block(self, pe: _PE, stmts, fr: _Frame):
        for s in stmts:
            sig = self._stmt(pe, s, fr)
            if sig is not None:
                return sig
        return None

    def _tick(self, pe: _PE, fr: _Frame, n: int) -> None:
        if not fr.in_map:
            pe.cycles += n

    def _stmt(self, pe: _PE, s, fr: _Frame):
        t = type(s)
        if fr.in_map and t in (ir.Assign, ir.DsdOp, ir.DsdAssign, ir.Map,
                               ir.UnblockCmdStream, ir.Print, ir.TaskCtl):
            raise ProgramError(f"{fr.fn}: a @map callback may not write memory or run DSD "
                               "operations")
        if t is ir.If:
            if type(s.cond) is ir.Const:
                return self._block(pe, s.then if s.cond.value else s.orelse, fr)
            c = bool(self._expr(pe, s.cond, fr))
            self._tick(pe, fr, 1)
            return self._block(pe, s.then if c else s.orelse, fr)
        if t is ir.For:
            return self._for(pe, s, fr)
        if t is ir.While:
            return self._while(pe, s, fr)
        if t is ir.Call:
            self._call(pe, s.fn, [self._value(pe, a, fr) for a in s.args], fr)
            return None
        sig = None
        if t is ir.Assign:
            self._assign(pe, s, fr)
        elif t is ir.LocalAssign:
            fr.locals[s.name] = self._value(pe, s.value, fr)
        elif t is ir.DsdAssign:
            pe.dsd[s.name] = self._dsd(pe, s.value, fr)
        elif t is ir.DsdOp:
            self._dsd_op(pe, s, fr)
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
        elif t is ir.TaskCtl:
            ident = self._int(pe, s.id, fr)
            if 0 <= ident < 64:
                if s.op == "activate":
                    pe.active.add(ident)
                elif s.op == "block":
                    pe.blocked.add(ident)
                else:
                    pe.blocked.discard(ident)
        else:
            raise ProgramError(f"cannot run statement {s!r}")
        self._tick(pe, fr, 1)
        return sig

    def _for(self, pe: _PE, s: ir.For, fr: _Frame):
        before = set(fr.locals)
        try:
            for k in range(s.trip_count):
                fr.locals[s.var] = _wrap(s.start + k * s.step, s.dtype)
                sig = self._block(pe, s.body, fr)
                if sig == _BREAK:
                    break
                if sig == _RETURN:
                    return _RETURN
        finally:
            for name in [k for k in fr.locals if k not in before]:
                del fr.locals[name]
        return None

    def _while(self, pe: _PE, s: ir.While, fr: _Frame):
        if fr.in_map:
            raise ProgramError(f"{fr.fn}: loops inside @map callbacks are not supported")
        before = set(fr.locals)
        try:
            k = 0
            while bool(self._expr(pe, s.cond, fr)):
                if k >= self.loop_limit:
                    raise _Fault(f"{fr.fn}: a while loop ran past {self.loop_limit} iterations")
                sig = self._block(pe, s.body, fr)
                if sig == _RETURN:
                    return _RETURN
                if sig == _BREAK:
                    break
                if self._block(pe, s.cont, fr) == _RETURN:
                    return _RETURN
                k += 1
        finally:
            for name in [k for k in fr.locals if k not in before]:
                del fr.locals[name]
        return None

    def _print(self, pe: _PE, s: ir.Print, fr: _Frame) -> None:
        text = "".join(p if isinstance(p, str) else
                       _format_value(self._expr(pe, p[0], fr), p[1]) for p in s.parts)
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
                          ir.SetLength, ir.SetStride)):
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
            return self._call(pe, e.fn, [self._value(pe, a, fr) for a in e.args], fr)
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
                bit = ((state >> 22) ^ (state >> 17)) & 1
                state = ((state << 1) | bit) & 0x7FFFFF
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
            if isinstance(d, ir.Mem1d):
                return Dsd("mem1d", d.base, d.base_offset, self._int(pe, d.offset, fr),
                           self._int(pe, d.stride, fr), self._int(pe, d.length, fr))
            return Dsd("mem4d", d.base, d.base_offset, self._int(pe, d.offset, fr), 0,
                       int(np.prod(d.extents)), tuple(d.coeffs), tuple(d.extents))
        if t is ir.DsdVar:
            return pe.dsd[e.name]
        if t is ir.DsdLocal:
            v = fr.locals.get(e.name)
            if not isinstance(v, Dsd):
                raise ProgramError(f"{fr.fn}: '{e.name}' is not a DSD")
            return v
        if t is ir.IncrementOffset:
            d = self._dsd(pe, e.dsd, fr)
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
            d = self._dsd(pe, e.dsd, fr)
            return replace(d, base=e.symbol, base_offset=e.base_offset, offset=0)
        if t is ir.SetLength:
            return replace(self._dsd(pe, e.dsd, fr), length=self._int(pe, e.length, fr))
        if t is ir.SetStride:
            return replace(self._dsd(pe, e.dsd, fr), stride=self._int(pe, e.stride, fr))
        raise ProgramError(f"cannot evaluate DSD expression {e!r}")

    def _operands(self, pe: _PE, operands, fr: _Frame):
        out = []
        for o in operands:
            if type(o) is ir.DsdOperand:
                out.append(("D", self._dsd(pe, o.dsd, fr)))
            elif type(o) is ir.ScalarOperand:
                out.append(("s", (self._expr(pe, o.value, fr), o.value.dtype)))
            else:
                out.append(("p", o))
        return out

    def _check_operand(self, pe: _PE, kind, o, n: int, want, fr: _Frame, what: str):
        """Width and range checks of one operand over its n elements; returns the pointer
        destination's flat index for a pointer."""
        if kind == "D":
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

    def _write(self, pe: _PE, dest, idx, i: int, v, have: DType) -> None:
        kind, o = dest
        if kind == "D":
            pe.flat[o.base].view(have.np)[o.address(i)] = v
        else:
            pe.flat[o.symbol].view(have.np)[idx] = v

    @staticmethod
    def _length(dsds) -> int:
        """Spec 7.9: the shortest DSD operand; an op with none runs once."""
        return min((d.length for d in dsds), default=1)

    def _dsd_op(self, pe: _PE, s: ir.DsdOp, fr: _Frame) -> None:
        spec = ELEMENT_OPS[s.op]
        what = f"@{s.op} in {fr.fn}"
        dest = self._operands(pe, [s.dest], fr)[0]
        srcs = self._operands(pe, s.srcs, fr)
        n = self._length([o for k, o in [dest] + srcs if k == "D"])
        if n <= 0:
            return
        for (k, o), t in zip(srcs, spec.srcs):
            self._check_operand(pe, k, o, n, t, fr, what)
        idx = self._check_operand(pe, dest[0], dest[1], n, spec.dest, fr, what)
        scalars = [_cast(o[0], _dtype_of(o[0]), t) if k == "s" else None
                   for (k, o), t in zip(srcs, spec.srcs)]
        for i in range(n):
            vals = [self._read(pe, o, i, t) if k == "D" else c
                    for (k, o), t, c in zip(srcs, spec.srcs, scalars)]
            self._write(pe, dest, idx, i, spec.fn(*vals), spec.dest)
        self._tick(pe, fr, n)

    def _map(self, pe: _PE, s: ir.Map, fr: _Frame) -> None:
        f = pe.cls.function(s.fn)
        what = f"@map in {fr.fn}"
        ins = self._operands(pe, s.inputs, fr)
        out = self._operands(pe, [s.output], fr)[0] if s.output is not None else None
        dsds = [o for k, o in ins if k == "D"]
        if out is not None and out[0] == "D":
            dsds.append(out[1])
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
                self._block(pe, f.body, callee)
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
