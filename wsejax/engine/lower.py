"""Lowering of IR bodies to JAX: masked lockstep execution of one tile class on all PEs.

A body is lowered once, at trace time, into operations over `[H, W, ...]` arrays. Every
statement runs under a lane mask (`None` means every PE): writes are selected by the mask, a
runtime `if` runs both branches under complementary masks, and `return` / `break` / `continue`
switch lanes off until the enclosing function or loop ends. Static loops unroll when short and
become `lax.fori_loop` otherwise; runtime loops become `lax.while_loop`s that stop when no lane
is left. Every loop nest has a budget of `loop_limit` iterations in all, spent per lane; past it
the lane faults (so a runaway or huge loop never hangs the host).

Memory DSD operations read and write with slices when the access pattern is static, with one
dynamic slice when a runtime offset is equal on all PEs, and with per-PE gathers otherwise. A
static loop whose body is one `@fmacs` into a fixed destination, with a source DSD that advances
by a fixed step each iteration, is a matrix-vector product and lowers to one `dot_general`
where `matvec_loops` asks for it (opt-in: it sums in another order, and XLA:CPU flushes f32
subnormals inside it).

Faults (a DSD or index out of range, a runaway loop) are recorded in `fault` per PE, never
raised inside traced code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ir, ops
from wsejax.engine.fabric_ops import FabricOps
from wsejax.engine.state import task_bit
from wsejax.errors import ProgramError
from wsejax.fabric import loop_limit_text
from wsejax.types import DType, bool_

__all__ = ["DsdRt", "Lowerer", "Machine", "scatter"]

UNROLL_LIMIT = 4
DEFAULT_LOOP_LIMIT = 1 << 22


# ------------------------------------------------------------------------------------------------
# Masks


def mand(a, b):
    """Lane mask conjunction; None means all lanes."""
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def mor(a, b):
    if a is None or b is None:
        return None if a is None and b is None else (a if b is None else b)
    return a | b


def mnot_and(m, off):
    """`m & ~off` with None-aware operands (off None = nothing off)."""
    if off is None:
        return m
    return ~off if m is None else m & ~off


# ------------------------------------------------------------------------------------------------
# Runtime values


@dataclass
class DsdRt:
    """A DSD value during lowering. Fields are Python ints when static, else int32 arrays.

    `bases` lists the candidate `(symbol, base_offset)` pairs; `base` indexes it.
    """

    kind: str                       # "mem1d" | "mem4d" | "fabin" | "fabout" | "fifo"
    bases: tuple
    base: object = 0
    offset: object = 0
    stride: object = 1
    length: object = 0
    coeffs: tuple = ()
    extents: tuple = ()
    wio: bool = False
    color: int = -1                 # fabin / fabout
    control: bool = False           # fabout: it sends control wavelets
    fifo: str = ""                  # fifo
    addr: object = None             # explicit [H, W, n] element addresses (a window of an op)

    def fields(self):
        return {"base": self.base, "offset": self.offset, "stride": self.stride,
                "length": self.length}

    def replace(self, **kw) -> DsdRt:
        return dataclasses.replace(self, **kw)

    @property
    def static(self) -> bool:
        return all(isinstance(v, int) for v in self.fields().values())

    @property
    def memory(self) -> bool:
        return self.kind in ("mem1d", "mem4d")


def _is_static(v) -> bool:
    return isinstance(v, (int, np.integer))


@dataclass
class Machine:
    """The mutable view of the state arrays while a body is lowered."""

    mem: dict
    dsd: dict
    cmd: jax.Array
    cycles: jax.Array
    prng: jax.Array
    fault: jax.Array
    tables: dict
    active: jax.Array = None    # [H, W, 64] bool
    blocked: jax.Array = None   # [H, W, 64] bool
    fab: dict = field(default_factory=dict)   # fabric arrays (`wsejax.engine.fabric_ops`)

    def carry(self):
        return (self.mem, self.dsd, self.cmd, self.cycles, self.prng, self.fault, self.active,
                self.blocked, self.fab)

    def load(self, carry) -> None:
        (self.mem, self.dsd, self.cmd, self.cycles, self.prng, self.fault, self.active,
         self.blocked, self.fab) = carry
        self.mem = dict(self.mem)
        self.dsd = {k: dict(v) for k, v in self.dsd.items()}
        self.fab = dict(self.fab)


@dataclass
class Loop:
    broken: object = None
    cont: object = None


@dataclass
class Nest:
    """The iterations a loop nest has run on each PE (`[H, W]` int32); shared by the frames
    of the functions called inside it."""

    used: object


@dataclass
class Frame:
    """Locals and control masks of one function activation."""

    locals: dict = field(default_factory=dict)
    returned: object = None
    retval: object = None
    loops: list = field(default_factory=list)
    ext: int = 0          # extra trailing lane axes (1 inside @map callbacks)
    fn: str = ""
    nest: Nest | None = None

    def off(self):
        off = self.returned
        if self.loops:
            off = mor(off, mor(self.loops[-1].broken, self.loops[-1].cont))
        return off


def _view(x, have: DType, want: DType):
    """Reinterpret the bits of `x` (dtype `have`) as `want` (same width)."""
    if have == want:
        return x
    if have is bool_ or want is bool_:
        return x.astype(want.np)
    return lax.bitcast_convert_type(x, want.np)


# ------------------------------------------------------------------------------------------------
# Access patterns


def _lfsr_matrix(steps: int) -> np.ndarray:
    """For each of the 23 state bits after `steps` shifts of the LFSR x^23 + x^18 + 1, the mask
    of the state bits it is the parity of (the Fibonacci form: shift right, the new bit 22 is
    bit 0 ^ bit 5)."""
    rows = [1 << k for k in range(23)]          # bit k depends on these input bits
    for _ in range(steps):
        rows = rows[1:] + [rows[0] ^ rows[5]]
    return np.array(rows, np.uint32)


_LFSR_128 = _lfsr_matrix(128)


def _lfsr_advance(state):
    """The PRNG state after one `@random16()` (128 LFSR steps), as 23 parities."""
    out = jnp.zeros_like(state)
    for k, mask in enumerate(_LFSR_128):
        bit = lax.population_count(state & jnp.uint32(mask)) & 1
        out = out | (bit.astype(jnp.uint32) << k)
    return out


def _scale_by_power_of_two(x, k):
    """x * 2**k, exactly where representable: two exact power-of-two factors built from bits
    (XLA's exp2 is not exact)."""
    x32 = x.astype(jnp.float32)
    k = jnp.clip(k.astype(jnp.int32), -252, 254)
    k1 = k // 2
    k2 = k - k1

    def power(e):
        return lax.bitcast_convert_type(((e + 127) << 23).astype(jnp.uint32), jnp.float32)

    return x32 * power(k1) * power(k2)


def _progression(a: np.ndarray):
    """(start, step) if `a` is an arithmetic progression, else None."""
    if a.size == 0:
        return None
    if a.size == 1:
        return int(a[0]), 1
    d = np.diff(a)
    if np.all(d == d[0]):
        return int(a[0]), int(d[0])
    return None


def _read_static(flat, idx: np.ndarray):
    """`flat[:, :, idx]` for a static index array `idx` (any shape)."""
    n = flat.shape[2]
    prog = _progression(idx.reshape(-1))
    if prog is not None:
        start, step = prog
        cnt = idx.size
        if step > 0:
            out = flat[:, :, start:start + step * (cnt - 1) + 1:step]
        elif step < 0:
            stop = start + step * (cnt - 1) - 1
            out = flat[:, :, start:(stop if stop >= 0 else None):step]
        else:
            out = jnp.broadcast_to(flat[:, :, start:start + 1], flat.shape[:2] + (cnt,))
        return out.reshape(flat.shape[:2] + idx.shape)
    if idx.ndim == 2:
        out = _read_matrix(flat, idx)
        if out is not None:
            return out
    del n
    return jnp.take(flat, jnp.asarray(idx.astype(np.int32)), axis=2)


def _read_matrix(flat, idx: np.ndarray):
    """A 2-D static pattern `idx[k, j] = base + k*a + j*b` as reshapes of one window."""
    base = int(idx[0, 0])
    a = int(idx[1, 0] - idx[0, 0]) if idx.shape[0] > 1 else 0
    b = int(idx[0, 1] - idx[0, 0]) if idx.shape[1] > 1 else 0
    if not np.array_equal(idx, base + a * np.arange(idx.shape[0])[:, None]
                          + b * np.arange(idx.shape[1])[None, :]):
        return None
    n, m = idx.shape
    s = flat.shape[2]
    if a == 1 and b >= n:        # column j is a contiguous run: rows of a [m, b] reshape
        size = m * b
        win = _window(flat, base, size, s)
        return jnp.swapaxes(win.reshape(flat.shape[:2] + (m, b))[:, :, :, :n], 2, 3)
    if b == 1 and a >= m:        # row k is a contiguous run
        size = n * a
        win = _window(flat, base, size, s)
        return win.reshape(flat.shape[:2] + (n, a))[:, :, :, :m]
    return None


def _window(flat, start: int, size: int, s: int):
    """`flat[:, :, start:start+size]`, zero-padded past the end (pad is never used)."""
    end = min(start + size, s)
    win = flat[:, :, start:end]
    if end - start < size:
        pad = jnp.zeros(flat.shape[:2] + (size - (end - start),), flat.dtype)
        win = jnp.concatenate([win, pad], axis=2)
    return win


def _gather(flat, idx):
    """Per-PE gather: `out[h, w, ...] = flat[h, w, idx[h, w, ...]]`. idx clamped by caller."""
    h, w = flat.shape[:2]
    idx = jnp.broadcast_to(idx, (h, w) + idx.shape[2:]) if idx.ndim >= 2 else \
        jnp.broadcast_to(idx, (h, w) + idx.shape)
    tail = idx.shape[2:]
    out = jnp.take_along_axis(flat, idx.reshape(h, w, -1), axis=2)
    return out.reshape((h, w) + tail)


def scatter(flat, target, vals):
    """Per-PE scatter: `flat[h, w, target[h, w, j]] = vals[h, w, j]` (`target` and `vals`
    `[H, W]` or `[H, W, n]`), dropping targets out of range. Batched over the PEs, so that
    on a mesh each device scatters into its own PEs (a scatter indexed by PE coordinates
    would gather every index and value to every device)."""
    vals = jnp.broadcast_to(vals, target.shape)
    return jax.vmap(jax.vmap(lambda f, t, v: f.at[t].set(v, mode="drop")))(flat, target, vals)


def _read_offset(flat, off, pattern: np.ndarray, consume=lambda v: v):
    """`consume(flat[h, w, off[h, w] + pattern])`, with a dynamic slice when `off` is uniform.

    `off` is an int32 `[H, W]` array (already checked in range by the caller); `pattern` a
    static index array. Both ways are branches of one `lax.cond`; `consume` runs inside the
    branches so that a large read (a matrix) never leaves them whole: a conditional's result
    is copied out.
    """
    lo, hi = int(pattern.min()), int(pattern.max())
    span = hi - lo + 1
    s = flat.shape[2]
    rel = pattern - lo

    def uniform(first):
        start = jnp.clip(first + lo, 0, max(s - span, 0))
        if span > s:
            padded = jnp.concatenate(
                [flat, jnp.zeros(flat.shape[:2] + (span - s,), flat.dtype)], axis=2)
            win = lax.dynamic_slice_in_dim(padded, start, span, axis=2)
        else:
            win = lax.dynamic_slice_in_dim(flat, start, span, axis=2)
        return consume(_read_static(win, rel))

    def general(_):
        idx = jnp.clip(off.reshape(off.shape + (1,) * pattern.ndim) + jnp.asarray(
            pattern.astype(np.int32)), 0, s - 1)
        return consume(_gather(flat, idx))

    if off.ndim != 2:
        return general(None)
    if span == s and lo == 0:
        # the pattern covers the whole array: in range means off == 0 on every PE
        return consume(_read_static(flat, rel))
    # the largest and (negated) smallest offset in one reduction: on a mesh, one collective
    top, neg_low = jnp.max(jnp.stack([off, -off]), axis=(1, 2))
    return lax.cond(top == -neg_low, uniform, general, top)


# ------------------------------------------------------------------------------------------------
# The lowerer


class Lowerer(FabricOps):
    """Lowers the bodies of one tile class. `register_fault(text) -> code` numbers faults.

    `cls` is the class index, `capacity` the fabric queues' capacity; `sites` and `stall_fns`
    collect, while `discovering`, the fabric operations and the functions that stall on one.
    """

    def __init__(self, pe: ir.PeProgram, symbol_slot: dict, dsd_key: dict, dsd_bases: dict,
                 shape: tuple[int, int], register_fault, loop_limit: int = DEFAULT_LOOP_LIMIT,
                 matvec_loops: bool = False, cls: int = 0, capacity: int = 32):
        self.cls = cls
        self.capacity = capacity
        self.discovering = False
        self.sites: dict = {}
        self.stall_fns: set = set()
        self.pe = pe
        self.slot = symbol_slot
        self.dsd_key = dsd_key
        self.dsd_bases = dsd_bases
        self.H, self.W = shape
        self.register_fault = register_fault
        self.loop_limit = loop_limit
        self.matvec = matvec_loops
        self.M: Machine | None = None
        self.printer = None
        self.cur_mask = None
        self._call_stack: list[str] = []
        self._consts = {name: self._lit(lit.dsd) for name, lit in pe.dsd_vars
                        if name not in dsd_key}

    # -- entry point ------------------------------------------------------------------------

    def run(self, machine: Machine, fn_name: str, args, mask) -> Machine:
        """Run function `fn_name` with `args` (arrays or scalars) on the lanes in `mask`."""
        self.M = machine
        fr = Frame(fn=fn_name)
        self._call(fn_name, list(args), fr, mask)
        return self.M

    # -- helpers ----------------------------------------------------------------------------

    @property
    def lanes(self):
        return (self.H, self.W)

    def lane(self, x, fr: Frame):
        """Give an `[H, W]` value the extra lane axes of `fr`."""
        if fr.ext and getattr(x, "ndim", 0) == 2:
            return x.reshape(x.shape + (1,) * fr.ext)
        return x

    def mask_ext(self, m, fr: Frame):
        return self.lane(m, fr) if m is not None else None

    def fault(self, cond, m, text: str) -> None:
        """Record fault `text` on lanes where `cond` holds (among those in mask `m`)."""
        while getattr(cond, "ndim", 0) > 2:     # a vectorised loop's trailing axis
            cond = jnp.any(cond, axis=-1)
        cond = mand(cond, m)
        if cond is None:
            cond = jnp.ones(self.lanes, bool)
        if isinstance(cond, (bool, np.bool_)):
            if not cond:
                return
            cond = jnp.ones(self.lanes, bool)
        while cond.ndim > 2:
            cond = jnp.any(cond, axis=-1)
        cond = jnp.broadcast_to(cond, self.lanes)
        code = self.register_fault(text)
        self.M.fault = jnp.where((self.M.fault == 0) & cond, jnp.int32(code), self.M.fault)

    def tick(self, m, n) -> None:
        """Advance the clocks of the lanes in `m` by `n` cycles (the timing model: one cycle
        per statement, one per element of a DSD operation)."""
        n = jnp.asarray(n, jnp.uint32)
        while n.ndim > 2:
            n = n[..., 0]
        inc = n if m is None else jnp.where(m if m.ndim == 2 else jnp.any(m, axis=-1), n, 0)
        self.M.cycles = self.M.cycles + inc.astype(jnp.uint32)

    def sym(self, name: str) -> ir.Symbol:
        return self.pe.symbol(name)

    def flat(self, name: str):
        arr = self.M.mem[self.slot[name]]
        return arr.reshape(self.lanes + (-1,))

    def set_flat(self, name: str, flat) -> None:
        slot = self.slot[name]
        self.M.mem[slot] = flat.reshape(self.M.mem[slot].shape)

    # -- expressions ------------------------------------------------------------------------

    def expr(self, e, fr: Frame):
        t = type(e)
        if t is ir.Const:
            return jnp.asarray(e.value, e.dtype.np)
        if t is ir.Local:
            v = fr.locals.get(e.name)
            if v is None:
                raise ProgramError(f"{fr.fn}: local '{e.name}' is read before it is assigned")
            return self.lane(v, fr)
        if t is ir.Load:
            return self.load(e, fr)
        if t is ir.PeValue:
            return self.lane(self.M.tables[e.table].astype(e.dtype.np), fr)
        if t is ir.Bin:
            return self.binop(e, fr)
        if t is ir.Un:
            a = self.expr(e.a, fr)
            if e.op == "-":
                return -a
            if e.op == "~":
                return ~a
            if e.op == "!":
                return ~a
            return jnp.abs(a)
        if t is ir.Cast:
            return self.cast(self.expr(e.a, fr), e.a.dtype, e.dtype)
        if t is ir.Bitcast:
            return _view(self.expr(e.a, fr), e.a.dtype, e.dtype)
        if t is ir.Select:
            return jnp.where(self.expr(e.cond, fr), self.expr(e.a, fr), self.expr(e.b, fr))
        if t is ir.Intrinsic:
            return self.intrinsic(e, fr)
        if t is ir.QueueFlushed:
            return self.lane(self.queue_flushed(e), fr)
        if t is ir.CallExpr:
            raise ProgramError("a function call inside an expression must be lowered as a "
                               "statement")
        raise ProgramError(f"cannot lower expression {e!r}")

    def intrinsic(self, e: ir.Intrinsic, fr: Frame):
        """Library functions computed natively (`<math>`, `<time>`, `<random>`)."""
        args = [self.expr(a, fr) for a in e.args]
        name = e.name
        t = e.dtype.np
        if name == "cycles":
            return self.lane(self.M.cycles, fr)
        if name == "reset_cycles":
            self.M.cycles = jnp.where(self.cur_mask, jnp.uint32(0), self.M.cycles) \
                if self.cur_mask is not None else jnp.zeros_like(self.M.cycles)
            return jnp.asarray(0, t)
        if name == "seed_prng":
            seed = jnp.broadcast_to(args[0].astype(jnp.uint32) & 0x7FFFFF, self.lanes)
            seed = jnp.where(seed == 0, jnp.uint32(1), seed)
            self.M.prng = seed if self.cur_mask is None else jnp.where(self.cur_mask, seed,
                                                                        self.M.prng)
            return jnp.asarray(0, t)
        if name == "random16":
            new = _lfsr_advance(self.M.prng)
            self.M.prng = new if self.cur_mask is None else jnp.where(self.cur_mask, new,
                                                                       self.M.prng)
            return self.lane((new & 0xFFFF).astype(t), fr)
        x = args[0]
        if name in ("isnan", "isinf", "isfinite", "signbit"):
            return {"isnan": jnp.isnan, "isinf": jnp.isinf, "isfinite": jnp.isfinite,
                    "signbit": jnp.signbit}[name](x)
        if name == "inv":
            return (jnp.asarray(1, x.dtype) / x).astype(t)
        if name == "invsqrt":
            return lax.rsqrt(x).astype(t)
        if name == "pow":
            return jnp.power(x, args[1]).astype(t)
        if name == "fscale":
            return _scale_by_power_of_two(x, args[1]).astype(t)
        fn = {"sqrt": jnp.sqrt, "exp": jnp.exp, "log": jnp.log, "sin": jnp.sin, "cos": jnp.cos,
              "tanh": jnp.tanh, "floor": jnp.floor, "ceil": jnp.ceil}[name]
        return fn(x).astype(t)

    def cast(self, x, have: DType, want: DType):
        if have == want:
            return x
        if want is bool_:
            return x != 0
        if have.is_float and want.is_int:
            info = np.iinfo(want.np)
            x32 = x.astype(jnp.float32)
            x32 = jnp.where(jnp.isnan(x32), 0.0, jnp.clip(jnp.trunc(x32), info.min, info.max))
            return x32.astype(want.np)
        if have.is_int and want.is_int and have.bits > want.bits:
            return x.astype(want.np)  # wraps (two's complement truncation)
        return x.astype(want.np)

    def binop(self, e: ir.Bin, fr: Frame):
        a = self.expr(e.a, fr)
        b = self.expr(e.b, fr)
        op = e.op
        t = e.a.dtype
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            # keep the product rounded: XLA:CPU would contract it into a following add
            return ops._rounded(a * b) if t.is_float else a * b
        if op == "/":
            if t.is_float:
                if _constant(e.b):
                    # XLA rewrites a division by a constant as an inexact multiplication by its
                    # reciprocal; a divisor it cannot see through keeps the quotient exact
                    u = {2: jnp.uint16, 4: jnp.uint32}[b.dtype.itemsize]
                    zero = self.lane(self.M.tables["zero"], fr).astype(u)
                    b = lax.bitcast_convert_type(lax.bitcast_convert_type(b, u) | zero, b.dtype)
                return a / b
            safe = jnp.where(b == 0, jnp.ones_like(b), b)
            return jnp.where(b == 0, jnp.zeros_like(a), lax.div(a, safe))
        if op == "%":
            if t.is_float:
                return lax.rem(a, b)
            safe = jnp.where(b == 0, jnp.ones_like(b), b)
            return jnp.where(b == 0, jnp.zeros_like(a), lax.rem(a, safe))
        if op in ("<<", ">>"):
            b = b.astype(a.dtype)
            nbits = t.bits
            big = b.astype(jnp.uint32) >= nbits if t.is_signed else b >= nbits
            if op == "<<":
                return jnp.where(big, jnp.zeros_like(a), lax.shift_left(a, b))
            if t.is_signed:
                return lax.shift_right_arithmetic(a, jnp.where(big, nbits - 1, b).astype(a.dtype))
            return jnp.where(big, jnp.zeros_like(a), lax.shift_right_logical(a, b))
        if op == "&":
            return a & b
        if op == "|":
            return a | b
        if op == "^":
            return a ^ b
        if op == "and":
            return a & b
        if op == "or":
            return a | b
        if op == "min":
            return jnp.minimum(a, b)
        if op == "max":
            return jnp.maximum(a, b)
        return {"==": jnp.equal, "!=": jnp.not_equal, "<": jnp.less, "<=": jnp.less_equal,
                ">": jnp.greater, ">=": jnp.greater_equal}[op](a, b)

    def flat_index(self, sym: ir.Symbol, indices, fr: Frame):
        """Row-major flat index of `sym[indices]`: a Python int if static, else an array, and
        an in-range condition (None when statically in range)."""
        shape = sym.shape
        if all(type(i) is ir.Const for i in indices):
            flat = 0
            for i, n in zip(indices, shape):
                if not 0 <= i.value < n:
                    return int(i.value), True
                flat = flat * n + int(i.value)
            return flat, None
        vals = [self.expr(i, fr) for i in indices]
        if not any(isinstance(v, jax.core.Tracer) for v in vals):
            # known at trace time (a vectorised loop's index vector): a static pattern
            flat = np.zeros((), np.int64)
            ok = np.ones((), bool)
            for v, n in zip(vals, shape):
                v = np.asarray(v).astype(np.int64)
                ok = ok & (v >= 0) & (v < n)
                flat = flat * n + v
            return np.asarray(flat), (None if ok.all() else np.asarray(~ok))
        flat = jnp.int32(0)
        ok = None
        for v, n in zip(vals, shape):
            v = v.astype(jnp.int32)
            good = (v >= 0) & (v < n)
            ok = good if ok is None else ok & good
            flat = flat * n + v
        return flat, ~ok

    def load(self, e: ir.Load, fr: Frame):
        sym = self.sym(e.symbol)
        arr = self.M.mem[self.slot[e.symbol]]
        if not e.indices:
            return self.lane(arr, fr)
        idx, bad = self.flat_index(sym, e.indices, fr)
        flat = arr.reshape(self.lanes + (-1,))
        if isinstance(idx, (int, np.ndarray)):
            if bad is not None:
                self.fault(True, self.cur_mask, f"index out of range reading '{e.symbol}'")
                idx = np.clip(idx, 0, sym.size - 1)
            if isinstance(idx, int) or idx.ndim == 0:
                return self.lane(flat[:, :, int(idx)], fr)
            if all(d == 1 for d in idx.shape[:2]):
                out = _read_static(flat, idx.reshape(-1))
                return out.reshape(self.lanes + idx.shape[2:])
            idx = jnp.asarray(idx.astype(np.int32))
        self.fault(bad, self.cur_mask, f"index out of range reading '{e.symbol}'")
        idx = jnp.clip(idx, 0, sym.size - 1)
        if idx.ndim < 2:
            idx = jnp.broadcast_to(idx, self.lanes)
        return _gather(flat, idx)

    # -- DSD values -------------------------------------------------------------------------

    def _lit(self, d) -> DsdRt:
        """A DsdRt for a literal whose fields are constants (global DSD initial values)."""
        return self._dsd_lit(d, None)

    def _dsd_lit(self, d, fr: Frame | None) -> DsdRt:
        def f(x):
            if type(x) is ir.Const:
                return int(x.value)
            if fr is None:
                raise ProgramError("a global DSD needs comptime fields")
            return self.expr(x, fr).astype(jnp.int32)

        if isinstance(d, ir.Mem1d):
            return DsdRt("mem1d", ((d.base, d.base_offset),), 0, f(d.offset), f(d.stride),
                         f(d.length), wio=d.wavelet_index_offset)
        if isinstance(d, ir.FabIn):
            return DsdRt("fabin", (), length=f(d.length), color=d.color)
        if isinstance(d, ir.FabOut):
            return DsdRt("fabout", (), length=f(d.length), color=d.color,
                         wio=d.wavelet_index_offset, control=d.control)
        return DsdRt("mem4d", ((d.base, d.base_offset),), 0, f(d.offset), 0,
                     int(np.prod(d.extents)), tuple(d.coeffs), tuple(d.extents),
                     d.wavelet_index_offset)

    def dsd_init_fields(self, name: str) -> dict:
        """Initial state fields of runtime DSD variable `name` (its runtime fields only)."""
        lit = self._lit(dict(self.pe.dsd_vars)[name].dsd)
        bases, runtime = self.dsd_bases[name]
        values = {"base": bases.index(lit.bases[0]) if lit.bases else 0, "offset": lit.offset,
                  "stride": lit.stride, "length": lit.length}
        return {k: v for k, v in values.items() if k in runtime}

    def _var_shape(self, name: str) -> DsdRt:
        return self._lit(dict(self.pe.dsd_vars)[name].dsd)

    def dsd(self, e, fr: Frame) -> DsdRt:
        t = type(e)
        if t is ir.DsdLit:
            return self._dsd_lit(e.dsd, fr)
        if t is ir.DsdVar:
            if e.name in self._consts:
                return self._consts[e.name]
            key = self.dsd_key[e.name]
            st = self.M.dsd[key]
            init = self._var_shape(e.name)
            bases, _ = self.dsd_bases[e.name]
            if init.memory:
                init = init.replace(bases=bases, base=bases.index(init.bases[0]))
            return init.replace(**{k: self.lane(v, fr) for k, v in st.items()})
        if t is ir.DsdLocal:
            v = fr.locals.get(e.name)
            if not isinstance(v, DsdRt):
                raise ProgramError(f"{fr.fn}: '{e.name}' is not a DSD")
            return v.replace(**{k: self.lane(x, fr) for k, x in v.fields().items()})
        if t is ir.FifoRef:
            fifo = self.fifo(e.name)
            return DsdRt("fifo", ((fifo.buffer, 0),), length=self.sym(fifo.buffer).size,
                         fifo=e.name)
        if t is ir.IncrementOffset:
            d = self.dsd(e.dsd, fr)
            delta = self.expr(e.delta, fr) if type(e.delta) is not ir.Const else int(e.delta.value)
            return d.replace(offset=self._scaled_add(d, delta, e.dtype))
        if t is ir.SetBase:
            d = self.dsd(e.dsd, fr)
            return d.replace(bases=((e.symbol, e.base_offset),), base=0, offset=0)
        if t is ir.SetLength:
            d = self.dsd(e.dsd, fr)
            n = int(e.length.value) if type(e.length) is ir.Const else \
                self.expr(e.length, fr).astype(jnp.int32)
            return d.replace(length=n)
        if t is ir.SetStride:
            d = self.dsd(e.dsd, fr)
            s = int(e.stride.value) if type(e.stride) is ir.Const else \
                self.expr(e.stride, fr).astype(jnp.int32)
            return d.replace(stride=s)
        raise ProgramError(f"cannot lower DSD expression {e!r}")

    def _elem_bits(self, d: DsdRt) -> int:
        bits = {self.sym(b).dtype.bits for b, _ in d.bases}
        if len(bits) != 1:
            raise ProgramError("a DSD may point to arrays of different element widths")
        return bits.pop()

    def _scaled_add(self, d: DsdRt, delta, dtype: DType):
        """offset + delta elements of `dtype`, in units of the base's element type."""
        bits = self._elem_bits(d)
        if dtype.bits == bits:
            step = delta
        elif dtype.bits > bits:
            step = delta * (dtype.bits // bits)
        else:
            if _is_static(delta) and delta % (bits // dtype.bits):
                raise ProgramError(f"increment_dsd_offset by {delta} {dtype} elements moves a "
                                   f"{bits}-bit DSD by half an element")
            step = delta // (bits // dtype.bits)
        if _is_static(d.offset) and _is_static(step):
            return int(d.offset) + int(step)
        return jnp.asarray(d.offset, jnp.int32) + jnp.asarray(step, jnp.int32)

    def merge_dsd(self, new: DsdRt, old: DsdRt | None, m, bases=None) -> DsdRt:
        """`where(m, new, old)` for DSD values; `bases` fixes the candidate list."""
        if old is None and bases is None:
            return new
        if old is not None and (new.kind, new.color) != (old.kind, old.color):
            raise ProgramError(f"a DSD variable holds a {old.kind}_dsd on some paths and a "
                               f"{new.kind}_dsd on others (or other colors)")
        if bases is None:
            bases = tuple(dict.fromkeys(old.bases + new.bases))
        new = self._rebase(new, bases)
        if old is None or m is None:
            return new
        old = self._rebase(old, bases)
        out = {}
        for k in ("base", "offset", "stride", "length"):
            a, b = new.fields()[k], old.fields()[k]
            if _is_static(a) and _is_static(b) and a == b:
                out[k] = a
            else:
                out[k] = jnp.where(m, jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32))
        return new.replace(**out)

    def _rebase(self, d: DsdRt, bases) -> DsdRt:
        if d.bases == bases:
            return d
        missing = [b for b in d.bases if b not in bases]
        if missing:
            raise ProgramError(f"a DSD variable is pointed to '{missing[0][0]}', which the "
                               "emulator did not expect")
        table = np.array([bases.index(b) for b in d.bases], np.int32)
        base = int(table[d.base]) if _is_static(d.base) else jnp.asarray(table)[d.base]
        return d.replace(bases=bases, base=base)

    def materialize(self, d: DsdRt) -> DsdRt:
        """Every field as a full `[H, W]` int32 array (for loop carries and state)."""
        return d.replace(**{k: jnp.broadcast_to(jnp.asarray(v, jnp.int32), self.lanes)
                            for k, v in d.fields().items()})

    # -- DSD access -------------------------------------------------------------------------

    def pattern(self, d: DsdRt, n: int) -> np.ndarray:
        """Static part of the element addresses of the first n elements (relative to offset),
        for static strides; None if the stride is a runtime value."""
        if d.kind == "mem4d":
            from wsejax.dsd import mem4d_addresses

            return mem4d_addresses(0, d.coeffs, d.extents)[:n]
        if not _is_static(d.stride):
            return None
        return d.stride * np.arange(n, dtype=np.int64)

    def bound(self, d: DsdRt) -> int:
        """A static upper bound on the DSD's length."""
        if _is_static(d.length):
            return int(d.length)
        sizes = [self.sym(b).size for b, _ in d.bases]
        return max(sizes)

    def _base_iter(self, d: DsdRt):
        for k, (name, boff) in enumerate(d.bases):
            sel = None
            if len(d.bases) > 1:
                sel = (d.base == k) if not _is_static(d.base) else (d.base == k)
                if isinstance(sel, (bool, np.bool_)):
                    if not sel:
                        continue
                    sel = None
            yield name, boff, sel

    def read(self, d: DsdRt, n: int, nvalid, want: DType, m, fr: Frame, what: str):
        """Values of the first n elements of DSD `d` as `want`: `[H, W, n]`."""
        out = None
        for name, boff, sel in self._base_iter(d):
            sym = self.sym(name)
            self._check_width(sym, want, what)
            flat = self.flat(name)
            vals = self._read_base(d, flat, sym, boff, n, nvalid, mand(m, sel), what)
            vals = _view(vals, sym.dtype, want)
            out = vals if out is None else jnp.where(sel[..., None], vals, out)
        return out

    @staticmethod
    def _check_width(sym: ir.Symbol, want: DType, what: str) -> None:
        if sym.dtype.bits != want.bits:
            raise ProgramError(f"{what}: a DSD over '{sym.name}' ({sym.dtype}) is used for "
                               f"{want.bits}-bit {want} elements")

    def _addresses(self, d: DsdRt, boff: int, n: int):
        """(static numpy addresses, None) or (None, traced [H, W, n] addresses)."""
        if d.addr is not None:
            return None, boff + d.addr
        pat = self.pattern(d, n)
        if pat is not None and _is_static(d.offset):
            return boff + d.offset + pat, None
        if pat is not None:
            off = jnp.asarray(d.offset, jnp.int32)
            return None, (off, boff + pat)
        off = jnp.asarray(d.offset, jnp.int32)
        stride = jnp.asarray(d.stride, jnp.int32)
        idx = boff + off[..., None] + stride[..., None] * jnp.arange(n, dtype=jnp.int32)
        return None, idx

    def _valid(self, n: int, nvalid):
        if nvalid is None:
            return None
        return jnp.arange(n, dtype=jnp.int32) < jnp.asarray(nvalid, jnp.int32)[..., None]

    def _read_base(self, d, flat, sym, boff, n, nvalid, m, what):
        size = sym.size
        static, dyn = self._addresses(d, boff, n)
        valid = self._valid(n, nvalid)
        if static is not None:
            bad = (static < 0) | (static >= size)
            if bad.any():
                badm = jnp.asarray(bad) if valid is None else (valid & jnp.asarray(bad))
                self.fault(badm if valid is not None else True, m,
                           f"{what}: DSD address out of range of '{sym.name}'")
                static = np.clip(static, 0, size - 1)
            return _read_static(flat, static)
        if isinstance(dyn, tuple):
            off, pat = dyn
            lo, hi = int(pat.min()), int(pat.max())
            bad = (off + lo < 0) | (off + hi >= size)
            if valid is not None:
                addr = off[..., None] + jnp.asarray(pat.astype(np.int32))
                bad = jnp.any(valid & ((addr < 0) | (addr >= size)), axis=-1)
            self.fault(bad, m, f"{what}: DSD address out of range of '{sym.name}'")
            if off.ndim == 0:
                off = jnp.broadcast_to(off, self.lanes)
            if valid is not None:
                # a run-time length under the static bound: the window of all n elements
                # may run past either end although every valid one is in range. Moving
                # the offset to fit the window would read other elements; pad instead.
                span = hi - lo + 1
                pad = jnp.zeros(flat.shape[:2] + (span,), flat.dtype)
                flat = jnp.concatenate([pad, flat, pad], axis=2)
                off = jnp.clip(off + span, -lo, size + 2 * span - 1 - hi)
                return _read_offset(flat, off, pat)
            off = jnp.clip(off, -lo, max(size - 1 - hi, -lo))
            return _read_offset(flat, off, pat)
        idx = dyn
        badv = (idx < 0) | (idx >= size)
        if valid is not None:
            badv = badv & valid
        self.fault(jnp.any(badv, axis=-1), m, f"{what}: DSD address out of range of '{sym.name}'")
        return _gather(flat, jnp.clip(idx, 0, size - 1))

    def write(self, d: DsdRt, vals, n: int, nvalid, have: DType, m, what: str) -> None:
        """Write `vals` (`[H, W, n]` of type `have`) to the first n elements of DSD `d`."""
        for name, boff, sel in self._base_iter(d):
            sym = self.sym(name)
            self._check_width(sym, have, what)
            mm = mand(m, sel)
            v = _view(vals, have, sym.dtype)
            self._write_base(d, sym, boff, v, n, nvalid, mm, what)

    def _write_base(self, d, sym, boff, vals, n, nvalid, m, what):
        size = sym.size
        flat = self.flat(sym.name)
        static, dyn = self._addresses(d, boff, n)
        valid = self._valid(n, nvalid)
        if static is not None and valid is None:
            bad = (static < 0) | (static >= size)
            if bad.any():
                self.fault(True, m, f"{what}: DSD address out of range of '{sym.name}'")
                keep = ~bad
                static, vals = static[keep], vals[:, :, np.nonzero(keep)[0]]
                if static.size == 0:
                    return
            prog = _progression(static)
            if prog is not None and prog[1] == 0:
                # a stride-0 destination keeps the last element written (spec 7.7)
                static, vals = static[-1:], vals[:, :, -1:]
                prog = (int(static[0]), 1)
            if prog is not None and prog[1] > 0:
                start, step = prog
                sl = slice(start, start + step * (static.size - 1) + 1, step)
                old = flat[:, :, sl]
                new = vals if m is None else jnp.where(m[..., None], vals, old)
                self.set_flat(sym.name, flat.at[:, :, sl].set(new))
                return
            idx = jnp.broadcast_to(jnp.asarray(static.astype(np.int32)), self.lanes + static.shape)
        elif static is not None:
            idx = jnp.broadcast_to(jnp.asarray(static.astype(np.int32)), self.lanes + static.shape)
        elif isinstance(dyn, tuple):
            off, pat = dyn
            idx = jnp.asarray(off, jnp.int32)[..., None] + jnp.asarray(pat.astype(np.int32))
            idx = jnp.broadcast_to(idx, self.lanes + (n,))
        else:
            idx = jnp.broadcast_to(dyn, self.lanes + (n,))
        ok = jnp.ones(idx.shape, bool) if valid is None else jnp.broadcast_to(valid, idx.shape)
        bad = ok & ((idx < 0) | (idx >= size))
        self.fault(jnp.any(bad, axis=-1), m, f"{what}: DSD address out of range of '{sym.name}'")
        ok = ok & ~bad
        if m is not None:
            ok = ok & m[..., None]
        # duplicate addresses (stride 0): every duplicate carries the last valid value
        if not (static is not None and len(set(static.tolist())) == static.size):
            last = self._last_valid(vals, ok)
            dup = self._has_duplicates(idx, ok)
            vals = jnp.where(dup[..., None], last[..., None], vals)
        self.set_flat(sym.name, scatter(flat, jnp.where(ok, idx, size), vals))

    @staticmethod
    def _last_valid(vals, ok):
        n = vals.shape[-1]
        pos = jnp.where(ok, jnp.arange(n, dtype=jnp.int32), -1).max(axis=-1)
        return jnp.take_along_axis(vals, jnp.clip(pos, 0, n - 1)[..., None], axis=-1)[..., 0]

    @staticmethod
    def _has_duplicates(idx, ok):
        """True on lanes whose valid addresses are all equal (the stride-0 case)."""
        first = jnp.take_along_axis(idx, jnp.argmax(ok, axis=-1)[..., None], axis=-1)
        same = jnp.all(~ok | (idx == first), axis=-1)
        return same & (jnp.sum(ok, axis=-1) > 1)

    # -- statements -------------------------------------------------------------------------

    def block(self, stmts, fr: Frame, mask) -> None:
        for s in stmts:
            m = mnot_and(mask, fr.off())
            self.stmt(s, fr, m)

    def stmt(self, s, fr: Frame, m) -> None:
        t = type(s)
        self.cur_mask = m if not fr.ext else None
        if fr.ext and t in (ir.Assign, ir.DsdOp, ir.DsdAssign, ir.Map, ir.UnblockCmdStream,
                            ir.Print, ir.TaskCtl, ir.QueueBind, ir.QueueCtl):
            raise ProgramError(f"{fr.fn}: a @map callback may not write memory or run DSD "
                               "operations")
        if t is ir.Assign:
            self.assign(s, fr, m)
        elif t is ir.LocalAssign:
            self.local_assign(s, fr, m)
        elif t is ir.DsdAssign:
            self.dsd_assign(s, fr, m)
        elif t is ir.DsdOp:
            self.dsd_op(s, fr, m)
        elif t is ir.Map:
            self.map(s, fr, m)
        elif t is ir.If:
            self.if_(s, fr, m)
        elif t is ir.For:
            self.for_(s, fr, m)
        elif t is ir.While:
            self.while_(s, fr, m)
        elif t is ir.Break:
            loop = fr.loops[-1]
            loop.broken = mor(loop.broken, m) if m is not None else jnp.ones(self.lanes, bool)
        elif t is ir.Continue:
            loop = fr.loops[-1]
            loop.cont = mor(loop.cont, m) if m is not None else jnp.ones(self.lanes, bool)
        elif t is ir.Return:
            self.return_(s, fr, m)
        elif t is ir.Call:
            self._call(s.fn, [self.value(a, fr, m) for a in s.args], fr, m)
        elif t is ir.ExprStmt:
            self.expr(s.value, fr)
        elif t is ir.UnblockCmdStream:
            self.M.cmd = jnp.zeros_like(self.M.cmd) if m is None else self.M.cmd & ~m
        elif t is ir.Print:
            self.print_(s, fr, m)
        elif t is ir.TaskCtl:
            self.task_ctl(s, fr, m)
        elif t is ir.QueueBind:
            self.queue_bind(s, fr, m)
        elif t is ir.QueueCtl:
            self.queue_ctl(s, fr, m)
        else:
            raise ProgramError(f"cannot lower statement {s!r}")
        if t not in (ir.If, ir.For, ir.While, ir.Call) and not fr.ext:
            self.tick(m, 1)

    def task_ctl(self, s: ir.TaskCtl, fr: Frame, m) -> None:
        """`@activate` / `@block` / `@unblock` of a task ID (or a microthread) on the lanes in
        `m`."""
        if type(s.id) is ir.Const:
            ident = int(s.id.value)
        else:
            ident = jnp.broadcast_to(self.expr(s.id, fr).astype(jnp.int32), self.lanes)
        if s.target == "ut":
            self.ut_ctl(s, ident, m)
            return
        bit = task_bit(ident, m)
        if s.op == "activate":
            self.M.active = self.M.active | bit
        elif s.op == "block":
            self.M.blocked = self.M.blocked | bit
        else:
            self.M.blocked = self.M.blocked & ~bit

    def print_(self, s: ir.Print, fr: Frame, m) -> None:
        """Send the values of a print to the host, for the PEs in `m`, in order."""
        if self.printer is None:
            return
        exprs = [p[0] for p in s.parts if not isinstance(p, str)]
        vals = [jnp.broadcast_to(self.expr(e, fr), self.lanes) for e in exprs]
        mask = jnp.ones(self.lanes, bool) if m is None else m
        printer, parts, coords = self.printer, s.parts, s.coords
        jax.debug.callback(lambda mk, *vs: printer(parts, coords, mk, vs), mask, *vals,
                           ordered=True)

    def value(self, v, fr: Frame, m=None):
        """A value for a local, an argument or a return: an array, a DsdRt, or the result of
        a call run on the lanes in `m`."""
        if isinstance(v, (ir.DsdLit, ir.DsdVar, ir.DsdLocal, ir.IncrementOffset, ir.SetBase,
                          ir.SetLength, ir.SetStride)):
            return self.dsd(v, fr)
        if type(v) is ir.CallExpr:
            return self._call(v.fn, [self.value(a, fr, m) for a in v.args], fr, m)
        return self.expr(v, fr)

    def assign(self, s: ir.Assign, fr: Frame, m) -> None:
        sym = self.sym(s.symbol)
        v = self.expr(s.value, fr).astype(sym.dtype.np)
        slot = self.slot[s.symbol]
        arr = self.M.mem[slot]
        if not s.indices:
            v = jnp.broadcast_to(v, self.lanes)
            self.M.mem[slot] = v if m is None else jnp.where(m, v, arr)
            return
        idx, bad = self.flat_index(sym, s.indices, fr)
        flat = arr.reshape(self.lanes + (-1,))
        v = jnp.broadcast_to(v, self.lanes)
        if isinstance(idx, np.ndarray):
            if idx.ndim:
                raise ProgramError(f"a vector index writing '{s.symbol}'")
            bad = None if bad is None else True
            idx = int(idx)
        if isinstance(idx, int):
            if bad is not None:
                self.fault(True, m, f"index out of range writing '{s.symbol}'")
                return
            new = v if m is None else jnp.where(m, v, flat[:, :, idx])
            flat = flat.at[:, :, idx].set(new)
        else:
            self.fault(bad, m, f"index out of range writing '{s.symbol}'")
            ok = ~bad if m is None else (m & ~bad)
            flat = scatter(flat, jnp.where(ok, jnp.broadcast_to(idx, self.lanes), sym.size), v)
        self.M.mem[slot] = flat.reshape(arr.shape)

    def local_assign(self, s: ir.LocalAssign, fr: Frame, m) -> None:
        v = self.value(s.value, fr, m)
        old = fr.locals.get(s.name)
        if isinstance(v, DsdRt):
            fr.locals[s.name] = self.merge_dsd(v, old if isinstance(old, DsdRt) else None, m)
            return
        if fr.ext:
            shape = jnp.broadcast_shapes(jnp.shape(v), self.lanes + (1,) * fr.ext)
            v = jnp.broadcast_to(v, shape)
        else:
            v = jnp.broadcast_to(v, self.lanes)
        if old is None or m is None:
            fr.locals[s.name] = v
        else:
            fr.locals[s.name] = jnp.where(self.mask_ext(m, fr), v, old)

    def dsd_assign(self, s: ir.DsdAssign, fr: Frame, m) -> None:
        if s.name not in self.dsd_key:
            raise ProgramError(f"'{s.name}' is not a DSD variable")
        self.store_dsd_var(s.name, self.dsd(s.value, fr), m, fr)

    def store_dsd_var(self, name: str, new: DsdRt, m, fr: Frame) -> None:
        """`name = new` on the lanes in `m`; only the variable's runtime fields are stored."""
        bases, runtime = self.dsd_bases[name]
        old = self.dsd(ir.DsdVar(name), fr)
        merged = self.materialize(self.merge_dsd(new, old, m, bases=bases))
        self.M.dsd[self.dsd_key[name]] = {k: v for k, v in merged.fields().items()
                                          if k in runtime}

    def if_(self, s: ir.If, fr: Frame, m) -> None:
        if type(s.cond) is ir.Const:
            self.block(s.then if s.cond.value else s.orelse, fr, m)
            return
        c = self.expr(s.cond, fr)
        if not fr.ext:
            c = jnp.broadcast_to(c, self.lanes)
            self.tick(m, 1)
        m = self.mask_ext(m, fr)
        if s.then:
            self.block(s.then, fr, mand(m, c))
        if s.orelse:
            self.block(s.orelse, fr, mand(m, ~c))

    def return_(self, s: ir.Return, fr: Frame, m) -> None:
        if s.value is not None:
            v = self.value(s.value, fr, m)
            if isinstance(v, DsdRt):
                fr.retval = self.merge_dsd(v, fr.retval, m)
            else:
                v = jnp.broadcast_to(v, jnp.broadcast_shapes(jnp.shape(v), self.lanes + (1,) *
                                                             fr.ext if fr.ext else self.lanes))
                if fr.retval is None or m is None:
                    fr.retval = v
                else:
                    fr.retval = jnp.where(self.mask_ext(m, fr), v, fr.retval)
        full = jnp.ones(self.lanes + (1,) * fr.ext, bool) if fr.ext else jnp.ones(self.lanes, bool)
        fr.returned = mor(fr.returned, m) if m is not None else full

    def _call(self, name: str, args: list, fr: Frame, m):
        f = self.pe.function(name)
        if name in self._call_stack:
            raise ProgramError(f"recursive call of '{name}' is not supported")
        self._call_stack.append(name)
        try:
            callee = Frame(ext=fr.ext, fn=name, nest=fr.nest)
            for (pname, ptype), a in zip(f.params, args):
                if isinstance(a, DsdRt):
                    callee.locals[pname] = a
                else:
                    a = jnp.asarray(a)
                    if isinstance(ptype, DType):
                        a = a.astype(ptype.np)
                    callee.locals[pname] = a if fr.ext else jnp.broadcast_to(a, self.lanes)
            self.block(f.body, callee, m)
            return callee.retval
        finally:
            self._call_stack.pop()

    # -- loops ------------------------------------------------------------------------------

    def _assigned_locals(self, body, fr: Frame) -> list[str]:
        names = []
        for s in ir.walk_stmts(body):
            if type(s) is ir.LocalAssign and s.name in fr.locals and s.name not in names:
                names.append(s.name)
        return names

    def _has(self, body, kinds) -> bool:
        return any(isinstance(s, kinds) for s in ir.walk_stmts(body))

    def _pack(self, fr: Frame, names, loop: Loop):
        locs = {}
        for n in names:
            v = fr.locals[n]
            locs[n] = self.materialize(v).fields() if isinstance(v, DsdRt) else v
        return (self.M.carry(), locs, fr.returned, fr.retval, loop.broken, fr.nest.used)

    def _unpack(self, carry, fr: Frame, names, loop: Loop, templates) -> None:
        mcarry, locs, fr.returned, fr.retval, loop.broken, fr.nest.used = carry
        self.M.load(mcarry)
        for n in names:
            t = templates[n]
            fr.locals[n] = t.replace(**locs[n]) if isinstance(t, DsdRt) else locs[n]

    def _prepare_carry(self, body, fr: Frame, loop: Loop):
        """Give every value the loop may change a fixed array form before the loop."""
        if self._has(body, ir.Return):
            if fr.returned is None:
                fr.returned = jnp.zeros(self.lanes, bool)
            if fr.retval is None and self.pe.function(fr.fn).ret is not None:
                fr.retval = jnp.zeros(self.lanes, self.pe.function(fr.fn).ret.np)
        if fr.retval is not None and isinstance(fr.retval, DsdRt):
            raise ProgramError(f"{fr.fn}: returning a DSD from inside a loop is not supported")
        loop.broken = jnp.zeros(self.lanes, bool)
        names = self._assigned_locals(body, fr)
        templates = {}
        for n in names:
            v = fr.locals[n]
            if isinstance(v, DsdRt):
                v = self.materialize(v)
            fr.locals[n] = v
            templates[n] = v
        return names, templates

    def _enter_nest(self, fr: Frame) -> bool:
        """Start counting the iterations of a loop nest, unless one is running; returns
        whether this loop is the outermost."""
        if fr.nest is not None:
            return False
        fr.nest = Nest(jnp.zeros(self.lanes, jnp.int32))
        return True

    def _iteration(self, fr: Frame, live, kind: str, outer: bool):
        """The lanes of `live` that may start one more iteration of a loop: those within the
        nest's budget (`loop_limit` iterations in all). The others fault; they run nothing
        more of the nest."""
        over = fr.nest.used >= self.loop_limit
        self.fault(over, live, loop_limit_text(fr.fn, kind, self.loop_limit, outer))
        run = ~over if live is None else live & ~over
        fr.nest.used = fr.nest.used + run.astype(jnp.int32)
        return run

    def for_(self, s: ir.For, fr: Frame, m) -> None:
        n = s.trip_count
        if n == 0:
            return
        if fr.ext:
            loop = Loop()
            fr.loops.append(loop)
            before = set(fr.locals)
            try:
                for k in range(n):
                    fr.locals[s.var] = np.asarray(s.start + k * s.step, s.dtype.np)
                    loop.cont = None
                    self.block(s.body, fr, mnot_and(m, loop.broken))
            finally:
                fr.loops.pop()
                self._end_scope(fr, before)
            return
        outer = self._enter_nest(fr)
        loop = Loop()
        fr.loops.append(loop)
        before = set(fr.locals)
        try:
            if n <= self.loop_limit and self.vectorize_fmacs(s, fr, m, outer):
                return
            if n <= UNROLL_LIMIT:
                for k in range(n):
                    fr.locals[s.var] = np.asarray(s.start + k * s.step, s.dtype.np)
                    loop.cont = None
                    live = mnot_and(mnot_and(m, loop.broken), fr.returned)
                    self.block(s.body, fr, self._iteration(fr, live, "for", outer))
                return
            names, templates = self._prepare_carry(s.body, fr, loop)
            # past the budget no lane runs: the loop stops there, and its next lane faults
            trips = min(n, self.loop_limit)

            def body(k, carry):
                self._unpack(carry, fr, names, loop, templates)
                fr.locals[s.var] = (s.start + k * s.step).astype(s.dtype.np)
                loop.cont = None
                live = mnot_and(mnot_and(m, loop.broken), fr.returned)
                self.block(s.body, fr, self._iteration(fr, live, "for", outer))
                fr.locals.pop(s.var, None)
                return self._pack(fr, names, loop)

            carry = lax.fori_loop(0, trips, body, self._pack(fr, names, loop))
            self._unpack(carry, fr, names, loop, templates)
            if trips < n:
                self._iteration(fr, mnot_and(mnot_and(m, loop.broken), fr.returned), "for",
                                outer)
        finally:
            fr.loops.pop()
            self._end_scope(fr, before)
            if outer:
                fr.nest = None

    def while_(self, s: ir.While, fr: Frame, m) -> None:
        if fr.ext:
            raise ProgramError(f"{fr.fn}: loops inside @map callbacks are not supported")
        outer = self._enter_nest(fr)
        loop = Loop()
        fr.loops.append(loop)
        before = set(fr.locals)
        try:
            names, templates = self._prepare_carry(s.body + s.cont, fr, loop)

            def running(carry):
                self._unpack(carry, fr, names, loop, templates)
                live = mnot_and(m, fr.off())
                c = jnp.broadcast_to(self.expr(s.cond, fr), self.lanes)
                return mand(live, c)

            def cond(carry):
                # every lane that runs an iteration spends one of its nest's budget
                return jnp.any(running(carry) & (fr.nest.used < self.loop_limit))

            def body(carry):
                mi = self._iteration(fr, running(carry), "while", outer)
                loop.cont = None
                self.block(s.body, fr, mi)
                loop.cont = None
                self.block(s.cont, fr, mnot_and(mi, mor(fr.returned, loop.broken)))
                return self._pack(fr, names, loop)

            carry = lax.while_loop(cond, body, self._pack(fr, names, loop))
            still = running(carry)
            self._unpack(carry, fr, names, loop, templates)
            self._iteration(fr, still, "while", outer)
        finally:
            fr.loops.pop()
            self._end_scope(fr, before)
            if outer:
                fr.nest = None

    @staticmethod
    def _end_scope(fr: Frame, before: set) -> None:
        """Drop the locals a loop body declared: they are scoped to it, and inside a
        `lax` loop they hold values of that loop's trace."""
        for name in [k for k in fr.locals if k not in before]:
            del fr.locals[name]

    # -- DSD operations ---------------------------------------------------------------------

    def _operands(self, s, fr):
        out = []
        for o in s:
            if type(o) is ir.DsdOperand:
                out.append(("D", self.dsd(o.dsd, fr)))
            elif type(o) is ir.ScalarOperand:
                out.append(("s", (self.expr(o.value, fr), o.value.dtype)))
            else:
                out.append(("p", o))
        return out

    def _length(self, dsds):
        """(static bound n, runtime length or None) over DSD operands (spec 7.9: the min).

        With no DSD operand (a pointer destination and scalar sources) the op runs once."""
        if not dsds:
            return 1, None
        n = min(self.bound(d) for d in dsds)
        rt = None
        for d in dsds:
            if not _is_static(d.length):
                rt = d.length if rt is None else jnp.minimum(rt, d.length)
        if rt is not None:
            statics = [int(d.length) for d in dsds if _is_static(d.length)]
            if statics:
                rt = jnp.minimum(rt, min(statics))
        return n, rt

    def dsd_op(self, s: ir.DsdOp, fr: Frame, m) -> None:
        spec = ops.OPS[s.op]
        what = f"@{s.op} in {fr.fn}"
        dest = self._operands([s.dest], fr)[0]
        srcs = self._operands(s.srcs, fr)
        if self.needs_fabric(dest, srcs):
            self.fabric_op(s, dest, srcs, fr, m)
            return
        if s.config is not None and s.config.index is not None:
            index = jnp.broadcast_to(self.expr(s.config.index, fr).astype(jnp.int32),
                                     self.lanes)
            dest, *srcs = [(k, o.replace(offset=self._index_offset(o, index)))
                           if k == "D" and o.wio else (k, o) for k, o in [dest] + srcs]
        dsds = [d for k, d in [dest] + srcs if k == "D"]
        n, nvalid = self._length(dsds)
        if n == 0:
            self.apply_hooks(s.config, fr, m)
            return
        if n > 1 and self._carried(s, dest, srcs, n):
            self.dsd_op_in_order(s, spec, dest, n, nvalid, m, fr, what)
        else:
            res = spec.fn(*self._source_values(spec, srcs, n, nvalid, m, fr, what))
            res = jnp.broadcast_to(res, self.lanes + (n,))
            self.store(dest, res, n, nvalid, spec.dest, m, fr, what)
        self.tick(m, n if nvalid is None else nvalid)
        self.apply_hooks(s.config, fr, m)

    def _source_values(self, spec, srcs, n, nvalid, m, fr, what):
        vals = []
        for (k, o), t in zip(srcs, spec.srcs):
            if k == "D":
                vals.append(self.read(o, n, nvalid, t, m, fr, what))
            else:
                x, have = o
                x = self.cast(x, have, t) if have != t else x
                vals.append(jnp.asarray(x, t.np)[..., None] if jnp.ndim(x) else
                            jnp.asarray(x, t.np))
        return vals

    def _carried(self, s: ir.DsdOp, dest, srcs, n: int) -> bool:
        """Could element j of the op read what element i < j wrote? (the stride-0 reduction
        idiom `@fadds(acc, acc, x)`, overlapping shifts, a DSD source over a pointer
        destination). Then the op runs in order. Scalar sources are values, read once."""
        kind, d = dest
        dnames = ({b for b, _ in d.bases} if kind == "D" else {d.symbol})
        for k, o in srcs:
            if k != "D" or not dnames & {b for b, _ in o.bases}:
                continue
            if kind != "D":
                return True         # a pointer destination is written at every element
            if _same_dsd(o, d):
                if self._distinct(d, n):
                    continue        # each element reads what it then overwrites: no carry
                return True
            wa = self._static_addresses(d, n)
            ra = self._static_addresses(o, n)
            if wa is None or ra is None:
                return True         # runtime addresses over the same array: be exact
            first_write = {}
            for i, a in enumerate(wa.tolist()):
                first_write.setdefault(a, i)
            if any(first_write.get(a, n) < j for j, a in enumerate(ra.tolist())):
                return True
        return False

    def _static_addresses(self, d: DsdRt, n: int):
        """Absolute static addresses (base offset included) of the first n elements, or None."""
        if len(d.bases) != 1 or not _is_static(d.offset) or self.pattern(d, 1) is None:
            return None
        return self._addresses(d, d.bases[0][1], n)[0]

    def _distinct(self, d: DsdRt, n: int) -> bool:
        """Are the first n addresses of d distinct (so an in-place op is element-wise)?"""
        pat = self.pattern(d, n)
        return pat is not None and len(set(pat.tolist())) == len(pat)

    def dsd_op_in_order(self, s: ir.DsdOp, spec, dest, n, nvalid, m, fr: Frame,
                        what: str) -> None:
        """Run the op one element at a time, as the hardware does, in a `fori_loop`: each
        element's DSD sources are read after the previous element's write; scalar sources
        are values, evaluated once before the op."""
        srcs = self._operands(s.srcs, fr)

        def element(d: DsdRt, i) -> DsdRt:
            return self._element(d, i, n)

        def body(i, carry):
            self.M.load(carry)
            mi = m
            if nvalid is not None:
                mi = mand(m, jnp.broadcast_to(i < jnp.asarray(nvalid, jnp.int32), self.lanes))
            one = [(k, element(o, i) if k == "D" else o) for k, o in srcs]
            res = spec.fn(*self._source_values(spec, one, 1, None, mi, fr, what))
            res = jnp.broadcast_to(res, self.lanes + (1,))
            kind, o = dest
            self.store((kind, element(o, i) if kind == "D" else o), res, 1, None, spec.dest,
                       mi, fr, what)
            return self.M.carry()

        self.M.load(lax.fori_loop(0, n, body, self.M.carry()))

    def store(self, dest, res, n, nvalid, have: DType, m, fr: Frame, what: str) -> None:
        kind, o = dest
        if kind == "D":
            self.write(o, res, n, nvalid, have, m, what)
            return
        # pointer-to-scalar destination: the last element computed (spec 7.7)
        if nvalid is None:
            last = res[:, :, n - 1]
        else:
            pos = jnp.clip(jnp.asarray(nvalid, jnp.int32) - 1, 0, n - 1)
            last = jnp.take_along_axis(res, jnp.broadcast_to(pos, self.lanes)[..., None],
                                       axis=2)[..., 0]
            m = mand(m, jnp.asarray(nvalid) > 0)
        sym = self.sym(o.symbol)
        last = _view(last, have, sym.dtype)
        self.assign_value(o.symbol, o.indices, last, fr, m)

    def assign_value(self, symbol, indices, v, fr, m) -> None:
        """Assign an already computed `[H, W]` value to `symbol[indices]`."""
        tmp = "%store"
        fr.locals[tmp] = v
        self.assign(ir.Assign(symbol, tuple(indices), ir.Local(tmp, self.sym(symbol).dtype)),
                    fr, m)
        del fr.locals[tmp]

    def map(self, s: ir.Map, fr: Frame, m) -> None:
        f = self.pe.function(s.fn)
        what = f"@map in {fr.fn}"
        ins = self._operands(s.inputs, fr)
        out = self._operands([s.output], fr)[0] if s.output is not None else None
        dsds = [d for k, d in ins if k == "D"]
        if out is not None and out[0] == "D":
            dsds.append(out[1])
        if any(not d.memory for d in dsds):
            raise ProgramError(f"{what}: fabric DSDs and FIFOs are not supported in @map")
        n, nvalid = self._length(dsds)
        if n == 0:
            return
        if self._map_carried(f, out):
            self.map_in_order(s, f, ins, out, n, nvalid, m, fr, what)
            return
        args = []
        for (k, o), (_, ptype) in zip(ins, f.params):
            if k == "D":
                args.append(self.read(o, n, nvalid, ptype, m, fr, what))
            else:
                x, have = o
                args.append(jnp.broadcast_to(jnp.asarray(x), self.lanes)[..., None])
        callee = Frame(ext=1, fn=s.fn)
        for (pname, _), a in zip(f.params, args):
            callee.locals[pname] = a
        self.block(f.body, callee, None if m is None else m[..., None])
        if out is not None:
            if callee.retval is None:
                raise ProgramError(f"@map callback {s.fn} returned no value")
            res = jnp.broadcast_to(callee.retval.astype(f.ret.np), self.lanes + (n,))
            self.store(out, res, n, nvalid, f.ret, m, fr, what)
        self.tick(m, n if nvalid is None else nvalid)

    def _map_carried(self, f: ir.Function, out) -> bool:
        """Could a call of a `@map` callback see what an earlier call wrote? It can where the
        callback reads what the output writes (the reduction idiom `@map(add, dsd, &acc,
        &acc)`), or calls functions. Then the map runs in order. (A callback writes no
        memory itself: that is refused.)"""
        if _has_call(f.body) or any(isinstance(st, ir.Call) for st in ir.walk_stmts(f.body)):
            return True
        if out is None:
            return False
        kind, o = out
        written = {b for b, _ in o.bases} if kind == "D" else {o.symbol}
        return bool(written & _loads(f.body))

    def map_in_order(self, s: ir.Map, f: ir.Function, ins, out, n, nvalid, m, fr: Frame,
                     what: str) -> None:
        """Run a `@map` one element at a time, in a `fori_loop` (vectorised over PEs): each
        call reads its DSD inputs after the previous call's writes."""
        def body(i, carry):
            self.M.load(carry)
            mi = m
            if nvalid is not None:
                mi = mand(m, jnp.broadcast_to(i < jnp.asarray(nvalid, jnp.int32), self.lanes))
            callee = Frame(ext=1, fn=s.fn)
            for (k, o), (pname, ptype) in zip(ins, f.params):
                if k == "D":
                    callee.locals[pname] = self.read(self._element(o, i, n), 1, None, ptype,
                                                     mi, fr, what)
                else:
                    callee.locals[pname] = jnp.broadcast_to(jnp.asarray(o[0]),
                                                            self.lanes)[..., None]
            self.block(f.body, callee, None if mi is None else mi[..., None])
            if out is not None:
                if callee.retval is None:
                    raise ProgramError(f"@map callback {s.fn} returned no value")
                res = jnp.broadcast_to(callee.retval.astype(f.ret.np), self.lanes + (1,))
                kind, o = out
                self.store((kind, self._element(o, i, n) if kind == "D" else o), res, 1, None,
                           f.ret, mi, fr, what)
            return self.M.carry()

        self.M.load(lax.fori_loop(0, n, body, self.M.carry()))
        self.tick(m, n if nvalid is None else nvalid)

    def _element(self, d: DsdRt, i, n: int) -> DsdRt:
        """The one-element memory DSD of element `i` of `d` (of `n`)."""
        if d.kind == "mem4d":
            off = jnp.asarray(d.offset, jnp.int32) + jnp.asarray(
                self.pattern(d, n).astype(np.int32))[i]
        else:
            off = jnp.asarray(d.offset, jnp.int32) + jnp.asarray(d.stride, jnp.int32) * i
        return DsdRt("mem1d", d.bases, d.base, off, 1, 1)

    # -- the matrix-vector lowering of fmacs loops ------------------------------------------

    def vectorize_fmacs(self, s: ir.For, fr: Frame, m, outer: bool) -> bool:
        """Lower `for i: @fmacs(y, y, B, s_i); B = increment(B, c)` to one dot_general.

        Returns False (and lowers nothing) when the loop does not have that shape. PEs
        whose loop nest has less budget left than the loop's iterations fault (their memory
        is then undefined, as after any fault) and write nothing.
        """
        body = s.body
        if not self.matvec or not body or type(body[0]) is not ir.DsdOp \
                or body[0].op != "fmacs":
            return False
        op = body[0]
        incs = {}
        for st in body[1:]:
            if (type(st) is ir.DsdAssign and type(st.value) is ir.IncrementOffset
                    and st.value.dsd == ir.DsdVar(st.name) and type(st.value.delta) is ir.Const
                    and st.name in self.dsd_key and st.name not in incs):
                incs[st.name] = st.value
            else:
                return False
        dest, a, b, sc = op.dest, *op.srcs
        if not (type(dest) is ir.DsdOperand and a == dest and type(b) is ir.DsdOperand
                and type(sc) is ir.ScalarOperand):
            return False
        changing = set(incs) | {s.var}
        if _mentions(dest.dsd, changing) or _has_call(sc.value):
            return False
        y = self.dsd(dest.dsd, fr)
        if not y.static and not _is_static(y.length):
            return False
        ysyms = {name for name, _ in y.bases}
        if ysyms & _loads(sc.value) or ysyms & _dsd_symbols(b.dsd, self):
            return False
        if len(y.bases) != 1:
            return False
        n_iter = s.trip_count
        # evaluate B and s for every iteration at once: an extra trailing lane axis
        vf = Frame(locals=dict(fr.locals), ext=1, fn=fr.fn)
        vf.locals[s.var] = np.asarray(s.start + s.step * np.arange(n_iter),
                                      s.dtype.np).reshape(1, 1, n_iter)
        k = jnp.arange(n_iter, dtype=jnp.int32).reshape(1, 1, n_iter)
        for name, inc in incs.items():
            cur = self.dsd(ir.DsdVar(name), fr)
            step = self._scaled_add(cur.replace(offset=0), int(inc.delta.value), inc.dtype)
            vf.locals[f"%vec_{name}"] = (jnp.asarray(cur.offset, jnp.int32)[..., None]
                                         + k * jnp.int32(step))
        bdsd = self._dsd_vec(b.dsd, vf, incs)
        if bdsd is None or len(bdsd.bases) != 1 or not _is_static(bdsd.stride) \
                or not _is_static(bdsd.length):
            return False
        n = min(int(y.length), int(bdsd.length))
        if n == 0:
            m = self._budget(fr, m, n_iter, outer)
            self._advance(incs, n_iter, m, fr)
            self.tick(m, n_iter * (1 + len(incs)))
            return True
        svals = self.expr(sc.value, vf)
        svals = jnp.broadcast_to(svals.astype(jnp.float32), self.lanes + (n_iter,))
        what = f"@fmacs in {fr.fn}"
        bname, boff = bdsd.bases[0]
        bsym = self.sym(bname)
        pat = self.pattern(bdsd, n)                      # [n]
        off = bdsd.offset                                # [1|H, 1|W, n_iter] or int
        size = bsym.size
        flat = self.flat(bname)
        src_type = ops.OPS["fmacs"].srcs[1]

        def matvec(mats):
            mats = _view(mats, bsym.dtype, src_type)
            return jnp.einsum("hwkj,hwk->hwj", mats, svals, precision=lax.Precision.HIGHEST,
                              preferred_element_type=jnp.float32)

        if _is_static(off):
            m = self._budget(fr, m, n_iter, outer)
            addr = boff + off + pat[None, :]
            bad = (addr < 0) | (addr >= size)
            if bad.any():
                self.fault(True, m, f"{what}: DSD address out of range of '{bname}'")
                addr = np.clip(addr, 0, size - 1)
            contrib = matvec(_read_static(flat, np.broadcast_to(addr, (n_iter, n)).copy()))
        else:
            off = jnp.broadcast_to(jnp.asarray(off, jnp.int32), self.lanes + (n_iter,))
            first = off[:, :, 0]
            # iteration k reads at first + step_pat[k]: the step is a constant
            step_pat = self._iteration_pattern(b.dsd, incs, n_iter)
            if step_pat is None:
                return False
            m = self._budget(fr, m, n_iter, outer)
            addr_pat = boff + step_pat[:, None] + pat[None, :]          # [n_iter, n]
            lo, hi = int(addr_pat.min()), int(addr_pat.max())
            bad = (first + lo < 0) | (first + hi >= size)
            self.fault(bad, m, f"{what}: DSD address out of range of '{bname}'")
            first = jnp.clip(first, -lo, max(size - 1 - hi, -lo))
            contrib = _read_offset(flat, first, addr_pat, matvec)
        yv = self.read(y, n, None, ops.OPS["fmacs"].srcs[0], m, fr, what)
        self.write(y, yv + contrib, n, None, ops.OPS["fmacs"].dest, m, what)
        self._advance(incs, n_iter, m, fr)
        # what the loop costs step by step: the op (n elements + 1) and one per increment
        self.tick(m, n_iter * (n + 1 + len(incs)))
        return True

    def _budget(self, fr: Frame, m, n_iter: int, outer: bool):
        """Spend `n_iter` iterations of the nest's budget at once: the lanes of `m` that
        have them; the others fault (as step by step they would, later in the loop)."""
        short = fr.nest.used > self.loop_limit - n_iter
        self.fault(short, m, loop_limit_text(fr.fn, "for", self.loop_limit, outer))
        m = mnot_and(m, short)
        fr.nest.used = fr.nest.used + jnp.where(True if m is None else m, n_iter, 0)
        return m

    def _advance(self, incs, n_iter: int, m, fr: Frame) -> None:
        """Apply a vectorised loop's DSD increments for all its iterations at once."""
        for name, inc in incs.items():
            cur = self.dsd(ir.DsdVar(name), fr)
            total = self._scaled_add(cur.replace(offset=0), int(inc.delta.value) * n_iter,
                                     inc.dtype)
            new = cur.replace(offset=jnp.asarray(cur.offset, jnp.int32) + jnp.int32(total))
            self.store_dsd_var(name, new, m, fr)

    def _iteration_pattern(self, b, incs, n_iter):
        """Static offsets (relative to iteration 0) of B over the iterations, or None."""
        if type(b) is ir.DsdVar and b.name in incs:
            inc = incs[b.name]
            d = self._var_shape(b.name).replace(bases=self.dsd_bases[b.name][0])
            step = self._scaled_add(d.replace(offset=0), int(inc.delta.value), inc.dtype)
            return step * np.arange(n_iter, dtype=np.int64)
        return None

    def _dsd_vec(self, e, vf: Frame, incs):
        """B's DSD with the incremented variables' per-iteration offsets."""
        if type(e) is ir.DsdVar and e.name in incs:
            cur = self.dsd(e, vf)
            return cur.replace(offset=vf.locals[f"%vec_{e.name}"])
        if _mentions(e, set(incs)):
            return None
        try:
            return self.dsd(e, vf)
        except ProgramError:
            return None


def _same_dsd(a: DsdRt, b: DsdRt) -> bool:
    """Do a and b address the same elements (equal static fields, or the very same arrays)?"""
    if a is b:
        return True
    if (a.kind, a.bases, a.coeffs, a.extents) != (b.kind, b.bases, b.coeffs, b.extents):
        return False
    for x, y in zip(a.fields().values(), b.fields().values()):
        if x is y:
            continue
        if not (_is_static(x) and _is_static(y) and x == y):
            return False
    return True


def _mentions(e, names: set) -> bool:
    """Does DSD expression or expression `e` read any of `names` (DSD vars or locals)?"""
    t = type(e)
    if t in (ir.DsdVar, ir.DsdLocal, ir.Local):
        return e.name in names
    if dataclasses.is_dataclass(e):
        return any(_mentions(getattr(e, f.name), names) for f in dataclasses.fields(e))
    if isinstance(e, tuple):
        return any(_mentions(x, names) for x in e)
    return False


def _constant(e) -> bool:
    """Is expression `e` built from constants only?"""
    t = type(e)
    if t is ir.Const:
        return True
    if t in (ir.Bin, ir.Un, ir.Cast, ir.Bitcast, ir.Select):
        return all(_constant(getattr(e, f.name)) for f in dataclasses.fields(e)
                   if f.name not in ("op", "dtype"))
    return False


def _has_call(e) -> bool:
    if type(e) is ir.CallExpr:
        return True
    if dataclasses.is_dataclass(e):
        return any(_has_call(getattr(e, f.name)) for f in dataclasses.fields(e))
    if isinstance(e, tuple):
        return any(_has_call(x) for x in e)
    return False


def _loads(e) -> set:
    if type(e) is ir.Load:
        return {e.symbol} | set().union(*(_loads(i) for i in e.indices))
    if dataclasses.is_dataclass(e):
        return set().union(set(), *(_loads(getattr(e, f.name)) for f in dataclasses.fields(e)))
    if isinstance(e, tuple):
        return set().union(set(), *(_loads(x) for x in e))
    return set()


def _dsd_symbols(e, low: Lowerer) -> set:
    t = type(e)
    if t is ir.DsdLit:
        return {e.dsd.base}
    if t is ir.DsdVar:
        return {b for b, _ in low.dsd_bases.get(e.name, ((),))[0]} | (
            {low._consts[e.name].bases[0][0]} if e.name in low._consts else set())
    if t is ir.SetBase:
        return {e.symbol}
    if t is ir.DsdLocal:
        return {s.name for s in low.pe.symbols}
    if t in (ir.IncrementOffset, ir.SetLength, ir.SetStride):
        return _dsd_symbols(e.dsd, low)
    return set()

