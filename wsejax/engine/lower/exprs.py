"""The expression family of `Lowerer`: one `expr_<Class>` per `ir` expression class.

Uses from the `Lowerer` it is mixed into: `handler`, `lane`, `fault`, `sym`, `lanes`,
`machine` (its `mem`, `tables`, `cycles`, `prng`), `slot` and `cur_mask` (the mask of the
statement running, None inside `@map`); `expr_QueueFlushed` is the fabric family's.
"""

from __future__ import annotations

import dataclasses
import operator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ir, ops
from wsejax.diagnostics import index_out_of_range, read_before_assigned
from wsejax.engine import cb16, subnormals, wide
from wsejax.engine.access import gather, read_static
from wsejax.engine.machine import Frame, bitview
from wsejax.errors import ProgramError
from wsejax.types import DType, bool_

__all__ = ["ExprLowering", "constant_only"]

# binary operators that are one JAX function of their operands
_ELEMENTWISE = {"+": operator.add, "-": operator.sub, "&": operator.and_, "|": operator.or_,
                "^": operator.xor, "and": operator.and_, "or": operator.or_,
                "min": jnp.minimum, "max": jnp.maximum, "==": jnp.equal, "!=": jnp.not_equal,
                "<": jnp.less, "<=": jnp.less_equal, ">": jnp.greater,
                ">=": jnp.greater_equal}
# the others: the method of `ExprLowering` that lowers them
_BIN_METHODS = {"*": "_multiply", "/": "_divide", "%": "_remainder", "<<": "_shift",
                ">>": "_shift"}
# expressions whose bf16 or cb16 result XLA:CPU may hold (cb16: computes) in f32: rounded to
# their type where they are made
_ROUNDED_BF16 = (ir.Bin, ir.Cast, ir.Intrinsic)


class ExprLowering:
    """Mixin of `Lowerer`: expressions."""

    def expr(self, e, fr: Frame):
        """The value of expression `e` in frame `fr`: `[H, W]` (more axes inside `@map`)."""
        v = self.handler("expr_", e, "expression")(e, fr)
        if type(e) in _ROUNDED_BF16:
            rounder = cb16.rounder(e.dtype)
            if rounder is not None:
                return rounder(v)
        return v

    def expr_Const(self, e: ir.Const, fr: Frame):
        if e.dtype.is_wide:
            return jnp.asarray(wide.const(e.value))
        return jnp.asarray(e.value, e.dtype.np)

    def expr_Local(self, e: ir.Local, fr: Frame):
        v = fr.locals.get(e.name)
        if v is None:
            raise ProgramError(read_before_assigned(fr.fn, e.name))
        return self.lane(v, fr)

    def expr_PeValue(self, e: ir.PeValue, fr: Frame):
        table = self.machine.tables[e.table]
        if table.dtype == wide.CARRIER and not e.dtype.is_wide:     # a table of 64-bit ints
            table = wide.cast(table, DType.i64, e.dtype)
        return self.lane(wide.astype(table, e.dtype), fr)

    def expr_Un(self, e: ir.Un, fr: Frame):
        a = self.expr(e.a, fr)
        if e.dtype.is_wide:
            return wide.unary(e.op, a, e.dtype)
        if e.op in ("-", "~", "!"):
            return -a if e.op == "-" else ~a
        return jnp.abs(a)

    def expr_Cast(self, e: ir.Cast, fr: Frame):
        x = self.expr(e.a, fr)
        if self.fp_checks:
            self.fp_cast(x, e.a.dtype, e.dtype, fr)
        return self.cast(x, e.a.dtype, e.dtype)

    def expr_Bitcast(self, e: ir.Bitcast, fr: Frame):
        return bitview(self.expr(e.a, fr), e.a.dtype, e.dtype)

    def expr_Select(self, e: ir.Select, fr: Frame):
        if self.fp_checks:
            c = self.expr(e.cond, fr)
            return jnp.where(c, self.guarded(lambda: self.expr(e.a, fr), c),
                             self.guarded(lambda: self.expr(e.b, fr), ~c))
        return jnp.where(self.expr(e.cond, fr), self.expr(e.a, fr), self.expr(e.b, fr))

    def expr_CallExpr(self, e: ir.CallExpr, fr: Frame):
        raise ProgramError("a function call inside an expression must be lowered as a "
                           "statement")

    def _keep_perf_base(self) -> None:
        """Before the clock resets, add it to the performance counters' base
        (`ir.PERF_BASE`), on the lanes running."""
        slot = self.slot.get(ir.PERF_BASE)
        if slot is None:
            return
        base = self.machine.mem[slot]
        new = base + self.machine.cycles[..., None]
        m = self.cur_mask
        self.machine.mem[slot] = new if m is None else jnp.where(m[..., None], new, base)

    def expr_Intrinsic(self, e: ir.Intrinsic, fr: Frame):
        """Library functions computed natively (`<math>`, `<time>`, `<random>`)."""
        args = [self.expr(a, fr) for a in e.args]
        name = e.name
        t = e.dtype.np
        if name == "cycles":
            return self.lane(self.machine.cycles, fr)
        if name == "reset_cycles":
            self._keep_perf_base()
            self.machine.cycles = jnp.where(self.cur_mask, jnp.uint32(0), self.machine.cycles) \
                if self.cur_mask is not None else jnp.zeros_like(self.machine.cycles)
            return jnp.asarray(0, t)
        if name == "seed_prng":
            seed = jnp.broadcast_to(args[0].astype(jnp.uint32) & 0x7FFFFF, self.lanes)
            seed = jnp.where(seed == 0, jnp.uint32(1), seed)
            self.machine.prng = seed if self.cur_mask is None else jnp.where(self.cur_mask, seed,
                                                                        self.machine.prng)
            return jnp.asarray(0, t)
        if name == "random16":
            new = _lfsr_advance(self.machine.prng)
            self.machine.prng = new if self.cur_mask is None else jnp.where(self.cur_mask, new,
                                                                       self.machine.prng)
            return self.lane((new & 0xFFFF).astype(t), fr)
        return _math(name, args, e.args[0].dtype, t)


    def cast(self, x, have: DType, want: DType):
        if have == want:
            return x
        if have.is_wide or want.is_wide:
            return wide.cast(x, have, want)
        if want is bool_:
            return subnormals.nonzero(x) if have in subnormals.EXACT else x != 0
        if have.is_float and want.is_int:
            # truncate and saturate, NaN -> 0; the bounds as numpy scalars of the type (a
            # Python int past int32's range cannot enter a traced computation)
            info = np.iinfo(want.np)
            lo, hi = float(info.min), float(info.max)
            t = jnp.trunc(x.astype(jnp.float32))
            inside = jnp.where((t > lo) & (t < hi), t, 0.0).astype(want.np)
            return jnp.where(t >= hi, np.asarray(info.max, want.np),
                             jnp.where(t <= lo, np.asarray(info.min, want.np), inside))
        # a narrowing integer conversion wraps (two's complement truncation), as astype does
        return x.astype(want.np)

    def expr_Bin(self, e: ir.Bin, fr: Frame):
        if self.fp_checks:
            return self._checked_bin(e, fr)
        a = self.expr(e.a, fr)
        b = self.expr(e.b, fr)
        if e.a.dtype.is_wide or e.b.dtype.is_wide:
            return self._wide_bin(e, a, b)
        return self._plain_bin(e, a, b, fr)

    def _checked_bin(self, e: ir.Bin, fr: Frame):
        """`expr_Bin` in a program that tests floating-point exceptions: the right side of
        `and` / `or` is tested only where the left does not decide."""
        a = self.expr(e.a, fr)
        if e.op in ("and", "or"):
            b = self.guarded(lambda: self.expr(e.b, fr), a if e.op == "and" else ~a)
            return _ELEMENTWISE[e.op](a, b)
        b = self.expr(e.b, fr)
        if e.a.dtype.is_wide or e.b.dtype.is_wide:
            return self._wide_bin(e, a, b)
        self.fp_scalar(e, a, b, fr)
        return self._plain_bin(e, a, b, fr)

    def _plain_bin(self, e: ir.Bin, a, b, fr: Frame):
        """A binary operator on operands that are not 64-bit: f32 and bf16 ones through
        `engine.subnormals` (XLA:CPU flushes their subnormals), the others as jnp computes."""
        if e.a.dtype in subnormals.EXACT:
            if e.op == "/" and constant_only(e.b):
                b = self._opaque(b, fr)
            return subnormals.binary(e.op, a, b)
        simple = _ELEMENTWISE.get(e.op)
        if simple is not None:
            return simple(a, b)
        return getattr(self, _BIN_METHODS[e.op])(e, a, b, fr)

    def _opaque(self, b, fr: Frame):
        """The constant divisor `b` as a value XLA cannot see through: it rewrites a division
        by a constant as an inexact multiplication by its reciprocal."""
        u = {2: jnp.uint16, 4: jnp.uint32}[b.dtype.itemsize]
        zero = self.lane(self.machine.tables["zero"], fr).astype(u)
        return lax.bitcast_convert_type(lax.bitcast_convert_type(b, u) | zero, b.dtype)

    def _wide_bin(self, e: ir.Bin, a, b):
        """A binary operator with a 64-bit operand (`engine.wide`)."""
        t = e.a.dtype
        if not t.is_wide:         # a narrower value shifted by a 64-bit count
            return self._shift(e, a, wide.count_of(b, e.b.dtype), None)
        if e.dtype is bool_:
            return wide.compare(e.op, a, b, t)
        return wide.binary(e.op, a, b, t, e.b.dtype)

    def _multiply(self, e: ir.Bin, a, b, fr: Frame):
        # keep the product rounded: XLA:CPU would contract it into a following add
        return ops._rounded(a * b) if e.a.dtype.is_float else a * b

    def _divide(self, e: ir.Bin, a, b, fr: Frame):
        if not e.a.dtype.is_float:
            safe = jnp.where(b == 0, jnp.ones_like(b), b)
            return jnp.where(b == 0, jnp.zeros_like(a), lax.div(a, safe))
        if constant_only(e.b):
            b = self._opaque(b, fr)
        return a / b

    def _remainder(self, e: ir.Bin, a, b, fr: Frame):
        if e.a.dtype.is_float:
            return lax.rem(a, b)
        safe = jnp.where(b == 0, jnp.ones_like(b), b)
        return jnp.where(b == 0, jnp.zeros_like(a), lax.rem(a, safe))

    def _shift(self, e: ir.Bin, a, b, fr: Frame):
        """`<<` and `>>`: a shift by the width or more gives 0 (-1 or 0 for a negative signed
        value shifted right)."""
        t = e.a.dtype
        b = b.astype(a.dtype)
        nbits = t.bits
        big = b.astype(jnp.uint32) >= nbits if t.is_signed else b >= nbits
        if e.op == "<<":
            return jnp.where(big, jnp.zeros_like(a), lax.shift_left(a, b))
        if t.is_signed:
            return lax.shift_right_arithmetic(a, jnp.where(big, nbits - 1, b).astype(a.dtype))
        return jnp.where(big, jnp.zeros_like(a), lax.shift_right_logical(a, b))

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
        static = not any(isinstance(v, jax.core.Tracer) for v in vals)
        vals = [wide.as_index(v, static) if i.dtype.is_wide else v
                for i, v in zip(indices, vals)]
        if static:
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

    def expr_Load(self, e: ir.Load, fr: Frame):
        sym = self.sym(e.symbol)
        arr = self.machine.mem[self.slot[e.symbol]]
        if not e.indices:
            return self.lane(arr, fr)
        idx, bad = self.flat_index(sym, e.indices, fr)
        flat = arr.reshape(self.lanes + (-1,))
        if isinstance(idx, (int, np.ndarray)):
            if bad is not None:
                self.fault(True, self.cur_mask, index_out_of_range("reading", e.symbol))
                idx = np.clip(idx, 0, sym.size - 1)
            if isinstance(idx, int) or idx.ndim == 0:
                return self.lane(flat[:, :, int(idx)], fr)
            if all(d == 1 for d in idx.shape[:2]):
                out = read_static(flat, idx.reshape(-1))
                return out.reshape(self.lanes + idx.shape[2:])
            idx = jnp.asarray(idx.astype(np.int32))
        self.fault(bad, self.cur_mask, index_out_of_range("reading", e.symbol))
        idx = jnp.clip(idx, 0, sym.size - 1)
        if idx.ndim < 2:
            idx = jnp.broadcast_to(idx, self.lanes)
        return gather(flat, idx)


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


def constant_only(e) -> bool:
    """Is expression `e` built from constants only?"""
    t = type(e)
    if t is ir.Const:
        return True
    if t in (ir.Bin, ir.Un, ir.Cast, ir.Bitcast, ir.Select):
        return all(constant_only(getattr(e, f.name)) for f in dataclasses.fields(e)
                   if f.name not in ("op", "dtype"))
    return False


def _math(name: str, args, xt: DType, t):
    """A `<math>` intrinsic on its argument values (the first of type `xt`), as numpy type t."""
    x = args[0]
    if xt in subnormals.EXACT and name in _EXACT_MATH:
        return _EXACT_MATH[name](*args).astype(t)
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


# the `<math>` intrinsics of an f32 or bf16 argument computed from its bits where XLA:CPU would
# read a subnormal argument as 0 or flush a subnormal result
_EXACT_MATH = {
    "inv": lambda x: ops.fdivs(jnp.ones_like(x, jnp.float32), x.astype(jnp.float32)),
    "sqrt": subnormals.sqrt, "invsqrt": subnormals.rsqrt, "floor": subnormals.floor,
    "ceil": subnormals.ceil,
    "fscale": ops._fscale,
}
