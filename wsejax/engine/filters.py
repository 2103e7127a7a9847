"""Color filters (spec 6.3) on the wavelets a PE's CE receives, for the engine's router.

Contract. `FilterTables` holds, for one color, the filter of each PE (`[H, W]` numpy tables of
its kind and fields; PEs without a filter pass everything) and `apply` takes the wavelets the
router delivers to each PE in one tick, oldest first (`k` `[H, W]`, `got` `[H, W, cap]`), and
the PEs' filter states, and returns what reaches the CE, packed oldest first, with the new
states. The rule, the same as `wsejax.reference`'s (`filter_passes`), per data wavelet:

- counter: if data wavelets are counted, `cnt += 1`; reject iff `cnt > max_counter`; then a
  counted wavelet with `cnt == limit1` sets `cnt = 0` (with `limit1 = 5, max_counter = 4`
  every 5th data wavelet is dropped);
- sparse_counter: the same, except that the first time `cnt` reaches limit1, limit1 becomes
  limit2 (when given), and the next time the filter turns off (every wavelet passes);
  without a limit1 it is off from the start;
- range: pass iff `min_idx <= index <= max_idx`, index the wavelet's high 16 bits.

State per PE: `cnt` (the counter), `lim` (the current limit1, -1 none), `phase` (a sparse
counter's: 0 before reaching limit1, 1 after, OFF after reaching it again) and `max` (the
max_counter). `<tile_config>.filters` sets `cnt`, `lim` and `max` at run time.

Control wavelets: a range filter passes them all. A counter (or sparse counter) counts them
when `count_control` is set, by the same steps as data wavelets (they advance the counter,
wrap it at limit1 and switch a sparse counter's limits). They pass, unless `filter_control`
is set: then a control wavelet passes iff the counter (after counting it) equals
`max_counter`. Data wavelets follow the rule above whatever `filter_control` says. The spec
states the `filter_control` rule without the order of counting and testing [U]; this is the
order the data rule uses. A sparse counter that has turned off passes control wavelets too.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from wsejax import ir

__all__ = ["FilterTables", "KINDS", "build_filters"]

KINDS = {"none": 0, "counter": 1, "sparse_counter": 2, "range": 3}
OFF = 2     # a sparse counter's phase once it has reached its limit twice: everything passes


@dataclass(frozen=True, eq=False)
class FilterTables:
    """The filters of one color over the `[H, W]` grid (numpy, static)."""

    kind: np.ndarray        # [H, W] int32: KINDS
    count_data: np.ndarray  # [H, W] bool
    count_control: np.ndarray  # [H, W] bool
    filter_control: np.ndarray  # [H, W] bool
    init: np.ndarray        # [H, W] int32: init_counter
    limit1: np.ndarray      # [H, W] int32: -1 none
    limit2: np.ndarray      # [H, W] int32: -1 none
    max_counter: np.ndarray  # [H, W] int32
    min_idx: np.ndarray     # [H, W] int32
    max_idx: np.ndarray     # [H, W] int32

    def initial(self) -> dict:
        """The filter state after load: `{"cnt", "lim", "phase"}`, `[H, W]` int32 each."""
        off = (self.kind == KINDS["sparse_counter"]) & (self.limit1 < 0)
        return {"cnt": self.init.copy(), "lim": self.limit1.copy(),
                "phase": np.where(off, OFF, 0).astype(np.int32),
                "max": self.max_counter.copy()}

    def apply(self, k, got, state: dict, marks=None):
        """What passes of the `k` wavelets `got` each PE receives: `(n, packed, packed marks,
        state)`, n `[H, W]` the wavelets that pass, `packed` `[H, W, cap]` them first, oldest
        first. `marks` (`[H, W, cap]`, nonzero: a control wavelet, or None) are the control
        marks of `got`: control wavelets follow the control rule of the module docstring."""
        cap = got.shape[-1]
        kind = jnp.asarray(self.kind)
        counting = (kind == KINDS["counter"]) | (kind == KINDS["sparse_counter"])
        sparse = kind == KINDS["sparse_counter"]
        limit2 = jnp.asarray(self.limit2)
        cnt, lim, phase, top = state["cnt"], state["lim"], state["phase"], state["max"]
        index = (got >> 16).astype(jnp.int32)
        keep = []
        for j in range(cap):
            live = j < k
            control = jnp.zeros_like(live) if marks is None else marks[..., j] != 0
            counted = jnp.where(control, jnp.asarray(self.count_control),
                                jnp.asarray(self.count_data))
            step = live & counting & counted & (phase != OFF)
            c1 = jnp.where(step, cnt + 1, cnt)
            in_range = (index[..., j] >= self.min_idx) & (index[..., j] <= self.max_idx)
            data_ok = (phase == OFF) | (c1 <= top)
            control_ok = (phase == OFF) | ~jnp.asarray(self.filter_control) | \
                (c1 == top)
            passes = jnp.where(counting, jnp.where(control, control_ok, data_ok),
                               jnp.where(kind == KINDS["range"], in_range | control, True))
            wrap = step & (lim >= 0) & (c1 == lim)
            cnt = jnp.where(wrap, 0, c1)
            turn = wrap & sparse
            lim = jnp.where(turn & (phase == 0) & (limit2 >= 0), limit2, lim)
            phase = jnp.where(turn, jnp.where(phase == 0, 1, OFF), phase)
            keep.append(live & passes)
        keep = jnp.stack(keep, axis=-1)
        rank = jnp.cumsum(keep, axis=-1) - 1
        # slot p of the result takes the kept wavelet of rank p
        slots = jnp.arange(cap, dtype=jnp.int32)
        sel = keep[..., None, :] & (rank[..., None, :] == slots[:, None])   # [H, W, p, j]
        packed = jnp.sum(jnp.where(sel, got[..., None, :], jnp.uint32(0)), axis=-1,
                         dtype=jnp.uint32)
        packed_marks = None if marks is None else jnp.sum(
            jnp.where(sel, marks[..., None, :], jnp.uint32(0)), axis=-1, dtype=jnp.uint32)
        n = jnp.sum(keep, axis=-1, dtype=jnp.int32)
        return n, packed, packed_marks, {"cnt": cnt, "lim": lim, "phase": phase, "max": top}


def build_filters(program: ir.Program) -> dict[int, FilterTables]:
    """color -> its FilterTables, for each color some PE filters."""
    h, w = program.height, program.width
    out: dict = {}
    for (x, y, color), f in program.filter_configs().items():
        t = out.get(color)
        if t is None:
            t = out[color] = {
                "kind": np.zeros((h, w), np.int32), "count_data": np.zeros((h, w), bool),
                "count_control": np.zeros((h, w), bool),
                "filter_control": np.zeros((h, w), bool),
                "init": np.zeros((h, w), np.int32), "limit1": np.full((h, w), -1, np.int32),
                "limit2": np.full((h, w), -1, np.int32),
                "max_counter": np.zeros((h, w), np.int32),
                "min_idx": np.zeros((h, w), np.int32), "max_idx": np.zeros((h, w), np.int32)}
        t["kind"][y, x] = KINDS[f.kind]
        t["count_data"][y, x] = f.count_data
        t["count_control"][y, x] = f.count_control
        t["filter_control"][y, x] = f.filter_control
        t["init"][y, x] = f.init_counter
        t["limit1"][y, x] = -1 if f.limit1 is None else f.limit1
        t["limit2"][y, x] = -1 if f.limit2 is None else f.limit2
        t["max_counter"][y, x] = f.max_counter
        t["min_idx"][y, x] = f.min_idx
        t["max_idx"][y, x] = f.max_idx
    return {color: FilterTables(**t) for color, t in sorted(out.items())}
