"""The floating-point exception family of `Lowerer`: the tests of `wsejax.fpexc`.

Only a tile class whose PE program holds the exception mask register (`fpexc.MASK_SYMBOL`,
made by `set_exception_mask`) lowers them (`fp_checks`); any other lowers to the code it did
without them. A test faults the lanes of the statement running where an operation raises an
exception the register unmasks at that moment, naming the first (`fpexc.FP_EXCEPTIONS`); a DSD
operation names the first element that raises one (the PE stops there).

Scalar operations run everywhere an expression is evaluated, also where its value is not used:
the branches of a select and the right side of `and` / `or`. `fp_guard` holds the lanes whose
value is used (None: all), so that only those fault, as only those would run the operation.

Uses from the `Lowerer` it is mixed into: `fault`, `lane`, `lanes`, `machine`, `slot`,
`cur_mask`, `op_table`, `fp16`.
"""

from __future__ import annotations

import jax.numpy as jnp

from wsejax import fpexc
from wsejax.diagnostics import fp_exception
from wsejax.engine.fpexc import as_f32, first_unmasked, raised
from wsejax.engine.machine import Frame, mask_and
from wsejax.types import DType

__all__ = ["FpExcLowering"]

_SCALAR_OPS = ("+", "-", "*", "/")


class FpExcLowering:
    """Mixin of `Lowerer`: floating-point exceptions."""

    fp_guard = None

    @property
    def fp_checks(self) -> bool:
        return fpexc.MASK_SYMBOL in self.slot

    def _fp_fault(self, code, m, what: str) -> None:
        """Fault the lanes in `m` whose `code` (`first_unmasked`, `[H, W]`) names one."""
        code = jnp.broadcast_to(code, self.lanes)
        for k, name in enumerate(fpexc.FP_EXCEPTIONS):
            self.fault(code == k + 1, m, fp_exception(name, what))

    def _fp_mask(self, ndim: int):
        mask = self.machine.mem[self.slot[fpexc.MASK_SYMBOL]]
        return mask.reshape(mask.shape + (1,) * (ndim - mask.ndim))

    def fp_scalar(self, e, a, b, fr: Frame) -> None:
        """The test of scalar binary expression `e` on operand values `a`, `b`."""
        t = e.a.dtype
        if fr.ext or not t.is_float or e.op not in _SCALAR_OPS:
            return
        zero = None
        if e.op == "/":
            zero = self.lane(self.machine.tables["zero"], fr).astype(jnp.uint32)
        flags = raised(e.op, *jnp.broadcast_arrays(as_f32(a, t), as_f32(b, t)), t, zero)
        self._fp_fault(first_unmasked(flags, self._fp_mask(2)),
                       mask_and(self.cur_mask, self.fp_guard), f"{t} '{e.op}' in {fr.fn}")

    def fp_cast(self, x, have: DType, want: DType, fr: Frame) -> None:
        """The test of a conversion between float types."""
        if fr.ext or not (have.is_float and want.is_float) or have == want:
            return
        x = jnp.broadcast_to(as_f32(x, have), self.lanes)
        flags = raised("cvt", x, None, want)
        self._fp_fault(first_unmasked(flags, self._fp_mask(2)),
                       mask_and(self.cur_mask, self.fp_guard),
                       f"@as({want}, {have}) in {fr.fn}")

    def guarded(self, fn, used):
        """`fn()` with `fp_guard` narrowed to the lanes in `used` (a bool array)."""
        if not self.fp_checks:
            return fn()
        outer = self.fp_guard
        self.fp_guard = mask_and(outer, jnp.broadcast_to(used, self.lanes)
                                 if jnp.ndim(used) <= 2 else None)
        try:
            return fn()
        finally:
            self.fp_guard = outer

    def fp_op(self, name: str, spec, vals, n: int, valid, m, what: str) -> None:
        """The test of DSD op `name` on its source elements `vals` (each broadcasting to
        `[H, W, n]`), where `valid` (`[H, W, n]` bool, or None: all) marks the elements it
        runs, on the lanes in `m`."""
        steps = fpexc.op_steps(name, self.fp16)
        if not steps:
            return
        shape = self.lanes + (n,)
        vals = [jnp.broadcast_to(v, shape) for v in vals]
        code = prev = prev_t = None
        for k, (arith, xi, yi, fmt, via) in enumerate(steps):
            x = as_f32(prev, prev_t) if xi == fpexc.PREV else as_f32(vals[xi], spec.srcs[xi])
            if yi is None:
                y = None
            elif arith == "scale":
                y = vals[yi]
            else:
                y = as_f32(prev, prev_t) if yi == fpexc.PREV else as_f32(vals[yi], spec.srcs[yi])
            step = first_unmasked(raised(arith, x, y, fmt), self._fp_mask(3))
            code = step if code is None else jnp.where(code > 0, code, step)
            if k + 1 < len(steps):      # the rounded result the next step takes
                op = self.op_table[via]
                prev = jnp.broadcast_to(op.fn(vals[xi], vals[yi]), shape)
                prev_t = op.dest
        if valid is not None:
            code = jnp.where(valid, code, 0)
        first = jnp.argmax(code > 0, axis=-1)
        code = jnp.take_along_axis(code, first[..., None], axis=-1)[..., 0]
        self._fp_fault(code, m, what)
