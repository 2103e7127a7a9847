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

`Lowerer` joins one mixin per family of IR nodes, each in its own module: expressions
(`exprs`), DSD values and their memory access (`dsds`), DSD operations and `@map` (`dsd_ops`),
statements and loops (`control`), the matrix-vector lowering (`matvec`), the fabric side
(`fabric`), the tests of floating-point exceptions (`fpexc`) and the call cycles of recursive
functions (`recursion`). Each IR class `X` has one
handler, `stmt_X` or `expr_X` (DSD expressions `dsd_X`), found by class name (`handler`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from wsejax import ir
from wsejax.diagnostics import DEFAULT_LOOP_LIMIT
from wsejax.engine import cb16
from wsejax.engine.lower.collectives import CollectiveLowering
from wsejax.engine.lower.config import ConfigLowering
from wsejax.engine.lower.control import ControlLowering
from wsejax.engine.lower.dsd_ops import DsdOpLowering
from wsejax.engine.lower.dsds import DsdLowering
from wsejax.engine.lower.exprs import ExprLowering
from wsejax.engine.lower.fabric import FabricLowering, SiteInfo
from wsejax.engine.lower.fpexc import FpExcLowering
from wsejax.engine.lower.matvec import MatvecLowering
from wsejax.engine.lower.pointers import PointerLowering
from wsejax.engine.lower.recursion import RecursionLowering
from wsejax.engine.lower.tile_status import TileStatusLowering
from wsejax.engine.machine import Frame, Machine, mask_and
from wsejax.errors import ProgramError
from wsejax.types import DType

__all__ = ["Lowerer", "SiteInfo"]


class Lowerer(ExprLowering, DsdLowering, DsdOpLowering, ControlLowering, MatvecLowering,
              FabricLowering, PointerLowering, ConfigLowering, CollectiveLowering,
              TileStatusLowering, FpExcLowering, RecursionLowering):
    """Lowers the bodies of one tile class. `register_fault(text) -> code` numbers faults.

    `cls` is the class index, `capacity` the fabric queues' capacity; `sites` and `stall_fns`
    collect, while `discovering`, the fabric operations and the functions that stall on one.
    `table_values(table)` gives the values a per-PE table holds on the class's PEs, and
    `printer(parts, coords, mask, values)` receives `<simprint>` output.
    """

    def __init__(self, pe: ir.PeProgram, symbol_slot: dict, dsd_key: dict, dsd_bases: dict,
                 shape: tuple[int, int], register_fault, loop_limit: int = DEFAULT_LOOP_LIMIT,
                 matvec_loops: bool = False, cls: int = 0, capacity: int = 32,
                 table_values=None, printer=None, fp16: DType = DType.f16):
        self.cls = cls
        self.op_table = cb16.ops_for(fp16)      # the DSD operations, for the fp16 format
        self.fp16 = fp16
        self.capacity = capacity
        self.discovering = False
        self.sites: dict = {}
        self.stall_fns: set = set()
        self.pe = pe
        self.slot = symbol_slot
        self.dsd_key = dsd_key
        self.dsd_bases = dsd_bases
        self.lanes = tuple(shape)      # (H, W), or (H, band width) in a banded tick
        self.widen = None              # a banded tick's band array -> [H, W] (`engine.band`)
        self.register_fault = register_fault
        self.loop_limit = loop_limit
        # a matrix-vector product sums in another order: no exception test could follow it
        self.matvec = matvec_loops and not self.fp_checks
        self.table_values = table_values
        self.printer = printer
        self.dsd_forms = {}     # (entry pc, DSD local) -> its form where a waiting body keeps it
        self.machine: Machine | None = None
        self.cur_mask = None
        self._call_stack: list[str] = []
        self._cycles: dict = {}        # the blocks of each call cycle called (`lower.recursion`)
        self._handlers: dict = {}
        self._consts = {name: self.global_dsd(lit.dsd) for name, lit in pe.dsd_vars
                        if name not in dsd_key}

    def run(self, machine: Machine, fn_name: str, args, mask) -> Machine:
        """Run function `fn_name` with `args` (arrays or scalars) on the lanes in `mask`."""
        self.machine = machine
        fr = Frame(fn=fn_name)
        self._call(fn_name, list(args), fr, mask)
        return self.machine

    def handler(self, prefix: str, node, what: str):
        """The method `prefix + type(node).__name__` (cached per class); raises ProgramError
        naming `what` ("statement", ...) for a node with none."""
        key = (prefix, type(node))
        fn = self._handlers.get(key)
        if fn is None:
            fn = getattr(self, prefix + type(node).__name__, None)
            if fn is None:
                raise ProgramError(f"cannot lower {what} {node!r}")
            self._handlers[key] = fn
        return fn

    # -- helpers ----------------------------------------------------------------------------

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
        cond = mask_and(cond, m)
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
        self.machine.fault = jnp.where((self.machine.fault == 0) & cond, jnp.int32(code),
                                       self.machine.fault)

    def tick(self, m, n) -> None:
        """Advance the clocks of the lanes in `m` by `n` cycles (the timing model: one cycle
        per statement, one per element of a DSD operation)."""
        if isinstance(n, (int, np.integer)):
            # a static count: one select of constants, no conversions
            inc = np.uint32(n) if m is None else jnp.where(
                m if m.ndim == 2 else jnp.any(m, axis=-1), np.uint32(n), np.uint32(0))
            self.machine.cycles = self.machine.cycles + inc
            return
        n = jnp.asarray(n, jnp.uint32)
        while n.ndim > 2:
            n = n[..., 0]
        inc = n if m is None else jnp.where(m if m.ndim == 2 else jnp.any(m, axis=-1), n, 0)
        self.machine.cycles = self.machine.cycles + inc.astype(jnp.uint32)

    def sym(self, name: str) -> ir.Symbol:
        return self.pe.symbol(name)

    def flat(self, name: str):
        """Symbol `name`'s memory as `[H, W, size]`."""
        arr = self.machine.mem[self.slot[name]]
        return arr.reshape(self.lanes + (-1,))

    def set_flat(self, name: str, flat) -> None:
        slot = self.slot[name]
        self.machine.mem[slot] = flat.reshape(self.machine.mem[slot].shape)
