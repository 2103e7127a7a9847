"""The fabric state: one pytree holding every PE's memory and control state.

Every array has leading axes `[H, W]` (rows y, columns x of the program rectangle). The Program
is static configuration and never part of the state.

Memory is kept per symbol ("slot"): PEs whose tile classes declare the same symbol (name, type
and shape) share one slot array; a symbol that differs between classes gets a slot per shape.
A slot array covers every PE; PEs whose class lacks the symbol never touch their entries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from wsejax import ir
from wsejax.diagnostics import PRNG_SEED
from wsejax.engine.rings import FabricArrays

__all__ = ["FabricState", "N_TASK_IDS", "PRNG_SEED", "SlotPlan", "TASK_WORDS", "init_state",
           "plan_slots", "task_bit", "has_task", "set_task", "lowest_task", "unpack_tasks"]

N_TASK_IDS = 64
# task bit sets are [H, W, TASK_WORDS] uint32: ID k is bit k % 32 of word k // 32
TASK_WORDS = N_TASK_IDS // 32


@dataclass(frozen=True)
class FabricState:
    """Arrays of the emulated fabric. Field shapes are per field."""

    mem: dict            # slot -> [H, W, *shape] of the symbol's dtype (64-bit integers:
                         #   complex64 carriers, `engine.wide`)
    dsd: dict            # DSD variable key -> {its runtime fields of "base", "offset",
                         #   "stride", "length"}: [H, W] int32
    active: jax.Array    # [H, W, TASK_WORDS] uint32: task IDs activated (`task_bit`)
    blocked: jax.Array   # [H, W, TASK_WORDS] uint32: task IDs blocked
    cmd_blocked: jax.Array  # [H, W] bool: command stream waits for unblock_cmd_stream
    cycles: jax.Array    # [H, W] uint32: per-PE virtual clock
    prng: jax.Array      # [H, W] uint32: per-PE LFSR state of @random16
    fault: jax.Array     # [H, W] int32: 0, or the code of the first fault the PE hit
    tables: dict         # name -> [H, W]: per-PE constants (coordinates, class ids); read-only
    fab: FabricArrays = dataclasses.field(default_factory=FabricArrays)  # `engine.rings`

    def replace(self, **changes) -> FabricState:
        return dataclasses.replace(self, **changes)


jax.tree_util.register_dataclass(
    FabricState,
    data_fields=["mem", "dsd", "active", "blocked", "cmd_blocked", "cycles", "prng", "fault",
                 "tables", "fab"],
    meta_fields=[],
)


@dataclass(frozen=True)
class SlotPlan:
    """Where each class's symbols and DSD variables live in the state."""

    slots: dict      # slot name -> (dtype, shape)
    symbol_slot: tuple  # per class: {symbol name -> slot name}
    dsd_key: tuple   # per class: {runtime DSD variable -> state key}


def runtime_dsd_vars(pe: ir.PeProgram) -> list[str]:
    """DSD variables of `pe` assigned by some function body, or moved by the operations
    that use them (registers loaded with `.save_address`); the others are constants."""
    names = [d.name for d in pe.dsrs if d.save_address]
    for f in pe.functions:
        for s in ir.walk_stmts(f.body):
            if isinstance(s, ir.DsdAssign) and s.name not in names:
                names.append(s.name)
    return names


def plan_slots(program: ir.Program) -> SlotPlan:
    """Assign every (class, symbol) a slot and every runtime DSD variable a state key."""
    slots: dict = {}
    by_key: dict = {}
    symbol_slot = []
    dsd_key = []
    dsd_taken: dict = {}
    for c, pe in enumerate(program.classes):
        mapping = {}
        for s in pe.symbols:
            key = (s.name, s.dtype, s.shape)
            slot = by_key.get(key)
            if slot is None:
                slot = s.name if s.name not in slots else f"{s.name}#{len(slots)}"
                slots[slot] = (s.dtype, s.shape)
                by_key[key] = slot
            mapping[s.name] = slot
        symbol_slot.append(mapping)
        dmap = {}
        for name in runtime_dsd_vars(pe):
            key = name if dsd_taken.get(name, c) == c else f"{name}#{c}"
            dsd_taken.setdefault(name, c)
            dmap[name] = key
        dsd_key.append(dmap)
    return SlotPlan(slots, tuple(symbol_slot), tuple(dsd_key))


def init_state(program: ir.Program, plan: SlotPlan, dsd_init) -> FabricState:
    """The state after `load()`: initial memory images, DSD variables, clocks at zero.

    `dsd_init(c, name)` gives the initial `{"base", "offset", "stride", "length"}` ints of a
    runtime DSD variable of class c.
    """
    h, w = program.height, program.width
    class_of = program.class_of
    dsd = {}
    for c in range(len(program.classes)):
        for name, key in plan.dsd_key[c].items():
            for f, v in dsd_init(c, name).items():
                dsd.setdefault(key, {}).setdefault(f, np.zeros((h, w), np.int32))
                dsd[key][f][class_of == c] = v
    dsd = {k: {f: jnp.asarray(v) for f, v in d.items()} for k, d in dsd.items()}
    active = _task_bits(program, lambda pe: pe.active)
    blocked = _task_bits(program, lambda pe: pe.blocked)
    tables = {name: jnp.asarray(_carried(t)) for name, t in program.tables}
    tables["class"] = jnp.asarray(class_of)
    # a zero the compiler cannot see through (see the lowering of float division)
    tables["zero"] = jnp.zeros((h, w), jnp.int32)
    return FabricState(
        mem=_memory_images(program, plan),
        dsd=dsd,
        active=active,
        blocked=blocked,
        cmd_blocked=jnp.zeros((h, w), bool),
        cycles=jnp.zeros((h, w), jnp.uint32),
        prng=jnp.full((h, w), PRNG_SEED, jnp.uint32),
        fault=jnp.zeros((h, w), jnp.int32),
        tables=tables,
    )


def _memory_images(program: ir.Program, plan: SlotPlan) -> dict:
    """Each slot's array after load: the initial values of its symbol on each class's PEs."""
    h, w = program.height, program.width
    mem = {}
    for slot, (dtype, shape) in plan.slots.items():
        arr = np.zeros((h, w) + tuple(shape), dtype.np)
        for c, pe in enumerate(program.classes):
            for s in pe.symbols:
                if plan.symbol_slot[c].get(s.name) == slot and s.init is not None:
                    arr[program.class_of == c] = np.asarray(s.init, dtype.np).reshape(shape)
        # a 64-bit integer's bytes are those of its carrier (`engine.wide`)
        mem[slot] = jnp.asarray(arr.view(np.complex64) if dtype.is_wide else arr)
    return mem


def _carried(t: np.ndarray) -> np.ndarray:
    """A per-PE table as the engine holds it: 64-bit integers as their carrier
    (`engine.wide`)."""
    return t.view(np.complex64) if t.dtype.kind in "iu" and t.dtype.itemsize == 8 else t


def _task_bits(program: ir.Program, ids_of):
    """The task bit sets (`[H, W, TASK_WORDS]` uint32) holding `ids_of(pe)` on each class."""
    bits = np.zeros((program.height, program.width, TASK_WORDS), np.uint32)
    for c, pe in enumerate(program.classes):
        for k in ids_of(pe):
            bits[program.class_of == c, k // 32] |= np.uint32(1 << (k % 32))
    return jnp.asarray(bits)


# -- task bit sets --------------------------------------------------------------------------------


def task_bit(ident, mask=None):
    """The bit set holding task `ident` (an int or an `[H, W]` array of IDs; a negative one is
    no task), on the lanes in `mask`: `[..., TASK_WORDS]` uint32."""
    if isinstance(ident, (int, np.integer)):
        # a static ID: its bit set is a constant, selected by the mask alone
        const = np.zeros(TASK_WORDS, np.uint32)
        if ident >= 0:
            const[ident // 32] = np.uint32(1 << (ident % 32))
        if mask is None:
            return jnp.asarray(const)
        return jnp.where(mask[..., None], const, np.uint32(0))
    ident = jnp.asarray(ident, jnp.int32)
    word = jnp.arange(TASK_WORDS, dtype=jnp.int32)
    one = jnp.left_shift(jnp.uint32(1), (ident % 32).astype(jnp.uint32))
    on = (word == (ident // 32)[..., None]) & (ident >= 0)[..., None]
    if mask is not None:
        on = on & mask[..., None]
    return jnp.where(on, one[..., None], jnp.uint32(0))


def has_task(bits, k: int):
    """Whether static task ID k is in the bit sets `bits` (`[H, W]` bool)."""
    return (bits[..., k // 32] >> np.uint32(k % 32)) & np.uint32(1) != 0


def set_task(bits, k: int, value):
    """`bits` with static task ID k set to `value` (`[H, W]` bool)."""
    one = np.uint32(1 << (k % 32))
    word = bits[..., k // 32]
    return bits.at[..., k // 32].set(jnp.where(value, word | one, word & ~one))


def lowest_task(bits):
    """The lowest task ID in each bit set (`[H, W]` int32; meaningless where the set is empty)."""
    ids = None
    for k in reversed(range(TASK_WORDS)):
        word = bits[..., k]
        low = word & (~word + np.uint32(1))                  # the lowest set bit alone
        idx = 31 - lax.clz(low).astype(jnp.int32) + 32 * k
        ids = idx if ids is None else jnp.where(word != 0, idx, ids)
    return ids


def unpack_tasks(bits):
    """`[..., N_TASK_IDS]` bools of the bit sets `bits` (numpy or JAX)."""
    k = np.arange(N_TASK_IDS)
    return (bits[..., k // 32] >> (k % 32).astype(np.uint32)) & 1 != 0
