"""The engine: the compiled entry points that run host commands on the fabric state.

One `Engine` per Program. It owns every `jax.jit`: `launch` (one compilation per exported
function), and the copy-mode memcpy scatter/gather (one per symbol slot, word width and padded
transfer size). Host-side checks of the state (faults, PEs still blocking the command stream)
turn into `FabricFault` / `DeadlockError` with PE coordinates.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ir
from wsejax.engine.lower import DEFAULT_LOOP_LIMIT, Lowerer, Machine
from wsejax.engine.state import FabricState, init_state, plan_slots
from wsejax.errors import DeadlockError, FabricFault

__all__ = ["Engine", "dsd_candidates"]


def dsd_candidates(pe: ir.PeProgram, runtime_vars) -> dict[str, tuple]:
    """For each runtime DSD variable: `(bases, runtime_fields)`.

    `bases` are the `(symbol, base_offset)` pairs it may point to: a fixpoint over its
    assignments, where literals and `set_dsd_base_addr` add their base, other variables add
    theirs, and a DSD local adds every base the program mentions (conservative).
    `runtime_fields` are the fields some assignment may change (of base, offset, stride,
    length); the others keep their initial values and stay static.
    """
    init = {name: lit.dsd for name, lit in pe.dsd_vars}
    mentioned = {(d.base, d.base_offset) for d in init.values()}
    assigns = {name: [] for name in runtime_vars}
    for f in pe.functions:
        for s in ir.walk_stmts(f.body):
            if isinstance(s, ir.DsdAssign):
                assigns[s.name].append(s.value)
            for e in _dsd_exprs(s):
                if isinstance(e, ir.DsdLit):
                    mentioned.add((e.dsd.base, e.dsd.base_offset))
                elif isinstance(e, ir.SetBase):
                    mentioned.add((e.symbol, e.base_offset))
    all_bases = tuple(sorted(mentioned))
    cands = {name: [(init[name].base, init[name].base_offset)] for name in runtime_vars}
    fields = {name: set() for name in runtime_vars}

    def bases(e):
        t = type(e)
        if t is ir.DsdLit:
            return [(e.dsd.base, e.dsd.base_offset)]
        if t is ir.DsdVar:
            return cands.get(e.name, [(init[e.name].base, init[e.name].base_offset)])
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
            if (d.base, d.base_offset) != (d0.base, d0.base_offset):
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


def format_value(v, spec: str) -> str:
    """One `<simprint>` value: {d} decimal, {X} upper hex and {b} binary padded to the value's
    width (16 or 32 bits), {f} the shortest float that reads back."""
    v = np.asarray(v)
    bits = max(v.dtype.itemsize * 8, 16)
    if spec == "f":
        return str(v.astype(np.float32) if v.dtype.kind == "f" else np.float32(v))
    raw = int(v.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[v.dtype.itemsize])) \
        if v.dtype.kind != "b" else int(v)
    if spec == "X":
        return f"{raw:0{bits // 4}X}"
    if spec == "b":
        return f"{raw:0{bits}b}"
    return str(int(v)) if v.dtype.kind in "iub" else str(v)


class Engine:
    """Compiled entry points for one Program.

    Args:
      program: the compiled Program.
      loop_limit: iterations after which a runtime `while` loop faults instead of running on.
      matvec_loops: lower a loop of `@fmacs` over an advancing DSD to one matrix product
        (False: step by step, as written).
      schedule_seed: None for the deterministic policy (the lowest runnable task ID first);
        an int picks among runnable tasks at random, reproducibly, to flush out programs that
        rely on an order the hardware does not promise.
    """

    def __init__(self, program: ir.Program, *, loop_limit: int = DEFAULT_LOOP_LIMIT,
                 matvec_loops: bool = True, schedule_seed: int | None = None):
        self.program = program
        self.loop_limit = loop_limit
        self.schedule_seed = schedule_seed
        self.plan = plan_slots(program)
        self.fault_texts: list[str] = [""]
        self.lowerers = []
        for c, pe in enumerate(program.classes):
            runtime = list(self.plan.dsd_key[c])
            self.lowerers.append(Lowerer(
                pe, self.plan.symbol_slot[c], self.plan.dsd_key[c], dsd_candidates(pe, runtime),
                (program.height, program.width), self._register_fault, loop_limit,
                matvec_loops))
        self._launch: dict[str, object] = {}
        self.output = sys.stdout
        self._lines: dict = {}
        for low in self.lowerers:
            low.printer = self._print

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
        return init_state(self.program, self.plan,
                          lambda c, name: self.lowerers[c].dsd_init_fields(name))

    # -- launch -----------------------------------------------------------------------------

    def exported_function(self, c: int, name: str) -> ir.Function | None:
        pe = self.program.classes[c]
        for e in pe.exports:
            if isinstance(e, ir.ExportFunc) and e.name == name:
                return pe.function(e.fn)
        return None

    def launch_fn(self, name: str):
        """The jitted `launch(state, args) -> state` of exported function `name`."""
        fn = self._launch.get(name)
        if fn is None:
            # the state is donated: a launch updates it in place instead of copying every
            # symbol it does not write
            fn = jax.jit(lambda state, args: self._run_launch(name, state, args),
                         donate_argnums=0)
            self._launch[name] = fn
        return fn

    def _run_launch(self, name: str, state: FabricState, args) -> FabricState:
        m = Machine(mem=dict(state.mem), dsd={k: dict(v) for k, v in state.dsd.items()},
                    cmd=state.cmd_blocked, cycles=state.cycles, prng=state.prng,
                    fault=state.fault, tables=state.tables, active=state.active,
                    blocked=state.blocked)
        single = len(self.program.classes) == 1
        for c, low in enumerate(self.lowerers):
            f = self.exported_function(c, name)
            if f is None:
                continue
            mask = None if single else state.tables["class"] == c
            # a PE that faulted earlier runs nothing more
            healthy = state.fault == 0
            mask = healthy if mask is None else mask & healthy
            m.cmd = m.cmd | mask
            m = low.run(m, f.name, args, mask)
        if any(pe.tasks for pe in self.program.classes):
            self._run_tasks(m)
        return state.replace(mem=m.mem, dsd=m.dsd, cmd_blocked=m.cmd, cycles=m.cycles,
                             prng=m.prng, fault=m.fault, active=m.active, blocked=m.blocked)

    def _run_tasks(self, m: Machine) -> None:
        """Run tasks, one per PE per tick, until no PE blocks the command stream or no task
        can run (the host then reports a deadlock). A PE runs its active, unblocked task with
        the lowest ID (spec 5.3); starting a local task consumes its activation."""
        single = len(self.program.classes) == 1
        limit = self.loop_limit
        seed = self.schedule_seed

        def tick(carry):
            m.load(carry[0])
            runnable = m.active & ~m.blocked & (m.fault == 0)[..., None]
            has = jnp.any(runnable, axis=-1)
            if seed is None:
                pick = jnp.argmax(runnable, axis=-1)        # the lowest runnable ID
            else:
                # the seeded random-order mode: any runnable task may go first
                key = jax.random.fold_in(jax.random.PRNGKey(seed), carry[2])
                noise = jax.random.uniform(key, runnable.shape)
                pick = jnp.argmax(jnp.where(runnable, noise, -1.0), axis=-1)
            for c, low in enumerate(self.lowerers):
                for task in self.program.classes[c].tasks:
                    mask = has & (pick == task.id)
                    if not single:
                        mask = mask & (m.tables["class"] == c)
                    m.active = m.active.at[..., task.id].set(m.active[..., task.id] & ~mask)

                    def run(inner, low=low, task=task, mask=mask):
                        m.load(inner)
                        low.run(m, task.fn, (), mask)
                        return m.carry()

                    m.load(lax.cond(jnp.any(mask), run, lambda inner: inner, m.carry()))
            return m.carry(), jnp.any(has), carry[2] + 1

        def cond(carry):
            m.load(carry[0])
            return jnp.any(m.cmd) & carry[1] & (carry[2] < limit)

        carry = lax.while_loop(cond, tick, (m.carry(), jnp.bool_(True), jnp.int32(0)))
        m.load(carry[0])
        runaway = m.cmd & (carry[2] >= limit)
        code = self._register_fault(f"tasks ran past {limit} scheduling rounds while the "
                                    "command stream waited (a task that keeps re-activating "
                                    "itself?)")
        m.fault = jnp.where((m.fault == 0) & runaway, jnp.int32(code), m.fault)

    # -- copy-mode memcpy -------------------------------------------------------------------

    def h2d(self, state: FabricState, slot: str, bits: int, px: int, py: int, first: int,
            block: np.ndarray, mask: np.ndarray | None = None) -> FabricState:
        """Write `block` (`[h, w, l]` uint words, `bits` wide) into the slot's word view at PEs
        `(px.., py..)`, words `first..`; only PEs where `mask` (`[h, w]`) holds, if given."""
        h, w = block.shape[:2]
        if mask is None:
            mask = np.ones((h, w), bool)
        mem = dict(state.mem)
        mem[slot] = _put_block(bits)(state.mem[slot], jnp.asarray(block), jnp.asarray(mask),
                                     np.int32(py), np.int32(px), np.int32(first))
        return state.replace(mem=mem)

    def d2h(self, state: FabricState, slot: str, bits: int, px: int, py: int, first: int,
            h: int, w: int, l: int) -> np.ndarray:
        """The `[h, w, l]` uint words (`bits` wide) of the slot's word view at PEs
        `(px.., py..)`, words `first..`."""
        out = _get_block(bits, (h, w, l))(state.mem[slot], np.int32(py), np.int32(px),
                                          np.int32(first))
        return np.asarray(out)

    def words_per_pe(self, slot: str, bits: int) -> int:
        dtype, shape = self.plan.slots[slot]
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        have = dtype.bits
        if have == bits:
            return n
        return n * 2 if have == 32 else (n + 1) // 2

    # -- host-side checks -------------------------------------------------------------------

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
        active = np.asarray(state.active)
        blocked_ids = np.asarray(state.blocked)
        lines = []
        for x, y in pes[:8]:
            act = np.nonzero(active[y, x])[0].tolist()
            blk = np.nonzero(blocked_ids[y, x] & active[y, x])[0].tolist()
            lines.append(f"  PE ({x}, {y}): active task IDs {act or 'none'}, of which blocked "
                         f"{blk or 'none'}")
        raise DeadlockError(
            f"{command} cannot finish: {len(pes)} PE(s) never called unblock_cmd_stream(), and "
            "no task can run on them", pes,
            "\n".join(lines + ["each PE must call sys_mod.unblock_cmd_stream() once its work "
                                "is done"]))

