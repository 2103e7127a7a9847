"""The switched colors of the engine: routers that move wavelets one hop a tick and execute the
commands of the control wavelets passing them (the rules of `wsejax.switches`), every PE at once.

Contract. `SwitchedColor` holds one switched color's static tables (`[H, W, 4]` per position);
its state in `FabricArrays.switched[color]` is `pos` `[H, W]` int32 (the switch position),
`buf` `[H, W, 5]` uint32 (the wavelet held per input port), `ctl` and `full` `[H, W, 5]` bool
(it is a control wavelet; the port holds one), `down` `[H, W]` bool (the color is in
teardown there) and `adv` `[H, W]` bool (the RAMP buffer holds the last wavelet of an
`.advance_switch` fabout), `rx0`, `tx0` `[H, W]` int32 (position 0's port masks) and `conf`
`[H, W]` bool (the PE has a config for the color), which `<tile_config>.color_config` rewrites
at run time (`wsejax.engine.lower.fabric`), and the settings of `switch_state`, which
`<tile_config>.switch_config` rewrites (`wsejax.engine.lower.tile_status`).
`route_switched(eng, m)` runs one tick of every switched color and returns the wavelets
moved; `switched_stuck(eng, m)` faults, once the fabric is quiescent, the PEs whose router
holds an unroutable wavelet. Neighbours are reached by shifting whole `[H, W]` arrays (no
per-PE Python).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import jax.numpy as jnp
import numpy as np

from wsejax.engine.rings import (
    pick,
    ring_control,
    ring_head_advance,
    ring_peek,
    ring_pop,
    ring_push,
)
from wsejax.engine.state import task_bit
from wsejax.switches import (
    PORTS,
    RAMP,
    STEPS,
    SWITCH_ADV,
    SWITCH_RST,
    TEARDOWN,
    TEARDOWN_TASK,
    SwitchTable,
    current_command,
    current_ignored,
    pop_payload,
    should_pop,
    stuck_text,
)

if TYPE_CHECKING:
    from wsejax.engine.core import Engine
    from wsejax.engine.machine import Machine

__all__ = ["SwitchedColor", "initial_state", "route_switched", "switch_state",
           "switched_stuck"]


@dataclass(frozen=True, eq=False)
class SwitchedColor:
    """One switched color's tables, `[H, W, 4]` over the positions or `[H, W]`."""

    rx: np.ndarray
    tx: np.ndarray
    valid: np.ndarray
    start: np.ndarray
    ring: np.ndarray
    pop: np.ndarray
    configured: np.ndarray
    teardown: np.ndarray

    @classmethod
    def of(cls, t: SwitchTable) -> SwitchedColor:
        return cls(np.moveaxis(t.rx, 0, -1).astype(np.int32),
                   np.moveaxis(t.tx, 0, -1).astype(np.int32),
                   np.moveaxis(t.valid, 0, -1), t.start, t.ring, t.pop, t.configured,
                   t.teardown)

    def at(self, table: np.ndarray, pos):
        """`table[y, x, pos[y, x]]`."""
        return jnp.take_along_axis(jnp.asarray(table), pos[..., None], axis=-1)[..., 0]


def initial_state(t: SwitchedColor) -> dict:
    h, w = t.start.shape
    return {"pos": jnp.asarray(t.start, jnp.int32),
            "buf": jnp.zeros((h, w, PORTS), jnp.uint32),
            "ctl": jnp.zeros((h, w, PORTS), bool),
            "full": jnp.zeros((h, w, PORTS), bool),
            "down": jnp.asarray(t.teardown, bool),
            "adv": jnp.zeros((h, w), bool),
            "rx0": jnp.asarray(t.rx[..., 0], jnp.int32),
            "tx0": jnp.asarray(t.tx[..., 0], jnp.int32),
            "conf": jnp.asarray(t.configured, bool),
            **switch_state(t)}


def switch_state(t: SwitchedColor) -> dict:
    """The switch settings `<tile_config>.switch_config` rewrites at run time: positions
    1..3's ports `prx`, `ptx` `[H, W, 4]` int32 and whether they are valid `pvalid` `[H, W, 4]`
    bool (entry 0 unused: position 0 is `rx0`, `tx0`), `ring` `[H, W]` bool and `pop`
    `[H, W]` int32 (the index in `ir.POP_MODES`)."""
    return {"prx": jnp.asarray(t.rx, jnp.int32), "ptx": jnp.asarray(t.tx, jnp.int32),
            "pvalid": jnp.asarray(t.valid, bool), "ring": jnp.asarray(t.ring, bool),
            "pop": jnp.asarray(t.pop, jnp.int32)}


def ports_at(t: SwitchedColor, st: dict, pos):
    """`(rx, tx)` of each router at `pos`: position 0 from the runtime state (`color_config`
    rewrites it), positions 1..3 from theirs (`switch_config` rewrites them)."""
    at0 = pos == 0
    return (jnp.where(at0, st["rx0"], t.at(st["prx"], pos)),
            jnp.where(at0, st["tx0"], t.at(st["ptx"], pos)))


def _at(a, dx: int, dy: int, fill):
    """`out[y, x] = a[y + dy, x + dx]`, `fill` outside the grid."""
    h, w = a.shape[:2]
    p = jnp.pad(a, [(1, 1), (1, 1)] + [(0, 0)] * (a.ndim - 2), constant_values=fill)
    return p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def _bit(mask, k: int):
    return ((mask >> k) & 1) != 0


def _chosen(t: SwitchedColor, st: dict):
    """The port each router serves this tick: `(has, port, word, ctl, tx)`."""
    rx, tx = ports_at(t, st, st["pos"])
    ports = jnp.arange(PORTS, dtype=jnp.int32)
    moving = st["conf"] & ~st["down"]
    acc = st["full"] & (((rx[..., None] >> ports) & 1) != 0) & moving[..., None]
    port = jnp.argmax(acc, axis=-1).astype(jnp.int32)
    word = jnp.take_along_axis(st["buf"], port[..., None], axis=-1)[..., 0]
    ctl = jnp.take_along_axis(st["ctl"], port[..., None], axis=-1)[..., 0]
    return jnp.any(acc, axis=-1), port, word, ctl, tx


def _advanced(t: SwitchedColor, st: dict, pos):
    """Where SWITCH_ADV moves each switch at `pos` (`wsejax.switches.next_position`)."""
    nxt = jnp.minimum(pos + 1, 3)
    valid_next = (pos < 3) & t.at(st["pvalid"], nxt)
    return jnp.where(valid_next, pos + 1, jnp.where(st["ring"], 0, pos))


def _commands(t: SwitchedColor, st: dict, fire, word, ctl, last):
    """The positions after the control wavelets that leave run their commands (and then the
    `.advance_switch` wavelets that leave, `last`, advance the switch), what they forward, and
    where one carries TEARDOWN."""
    pos = st["pos"]
    cmd = current_command(word).astype(jnp.int32)
    run = fire & ctl
    new = jnp.where(run & (cmd == SWITCH_ADV), _advanced(t, st, pos),
                    jnp.where(run & (cmd == SWITCH_RST), 0, pos))
    advanced = new != pos
    popit = ctl & should_pop(st["pop"], cmd, advanced)
    forward = jnp.where(popit, pop_payload(word), word)
    new = jnp.where(fire & last, _advanced(t, st, new), new)
    return new, forward, run & (cmd == TEARDOWN)


def _tick(eng: Engine, m: Machine, col: int, t: SwitchedColor, st: dict, filt):
    """One tick of switched color `col`: the new state and the wavelets moved."""
    fab = m.fab
    cap = eng.capacity
    has, port, word, ctl, tx = _chosen(t, st)
    fire = has
    for d, (dx, dy, opp) in enumerate(STEPS):
        free = _at(~st["full"][..., opp], dx, dy, False)
        fire = fire & (~_bit(tx, d) | free)
    to_ce = ~ctl | (current_ignored(word) == 0)
    inbox = fab.inbox.get(col)
    room = cap - inbox.count if inbox is not None else jnp.zeros_like(port)
    deliver = _bit(tx, RAMP) & to_ce
    fire = fire & (~deliver | (room > 0))
    last = st["adv"] & (port == RAMP)
    new, forward, teardown = _commands(t, st, fire, word, ctl, last)
    m.active = m.active | task_bit(TEARDOWN_TASK, teardown)
    down = st["down"] | teardown
    sent = fire
    ports = jnp.arange(PORTS, dtype=jnp.int32)
    full = st["full"] & ~(fire[..., None] & (ports == port[..., None]))
    buf, ctls = st["buf"], st["ctl"]
    for d, (dx, dy, opp) in enumerate(STEPS):
        got = _at(sent & _bit(tx, d), -dx, -dy, False)
        buf = buf.at[..., opp].set(jnp.where(got, _at(forward, -dx, -dy, 0), buf[..., opp]))
        ctls = ctls.at[..., opp].set(jnp.where(got, _at(ctl, -dx, -dy, False), ctls[..., opp]))
        full = full.at[..., opp].set(full[..., opp] | got)
    if inbox is not None:
        _deliver(eng, m, col, (sent & deliver).astype(jnp.int32), word, ctl, filt)
    # the CE's next wavelet enters an empty RAMP buffer
    out = fab.outbox[col]
    take = ~full[..., RAMP] & (out.count > 0) & ~st["down"]
    head = ring_peek(out, 1)[..., 0]
    head_ctl = (ring_control(out) & 1) != 0 if out.ctl is not None else jnp.zeros_like(take)
    adv = jnp.where(take, ring_head_advance(out), st["adv"] & ~(fire & last))
    ring_pop(out, take.astype(jnp.int32))
    buf = buf.at[..., RAMP].set(jnp.where(take, head, buf[..., RAMP]))
    ctls = ctls.at[..., RAMP].set(jnp.where(take, head_ctl, ctls[..., RAMP]))
    full = full.at[..., RAMP].set(full[..., RAMP] | take)
    moved = jnp.sum(fire.astype(jnp.int32)) + jnp.sum(take.astype(jnp.int32))
    return {**st, "pos": new, "buf": buf, "ctl": ctls, "full": full, "down": down,
            "adv": adv}, moved


def _deliver(eng: Engine, m: Machine, col: int, k, word, ctl, filt) -> None:
    """Push the wavelet `word` into the inbox where `k` is 1, through the PE's filter (`filt`:
    the filter stage of the static router)."""
    cap = eng.capacity
    words = jnp.broadcast_to(word[..., None], word.shape + (cap,))
    ring = m.fab.inbox[col]
    marks = None
    if ring.ctl is not None:
        marks = jnp.broadcast_to(ctl[..., None], word.shape + (cap,)).astype(jnp.uint32)
    kept, words, marks = filt(eng, m, col, k, words, marks)
    ring_push(ring, kept, lambda at: pick(words, at),
              None if marks is None else lambda at: pick(marks, at))


def route_switched(eng: Engine, m: Machine, filt):
    """One tick of every switched color that some PE sends on; the wavelets moved. `filt` is
    the filter stage (`engine.tick`)."""
    moved = jnp.int32(0)
    for col, t in eng.switched.items():
        if col not in m.fab.outbox:
            continue
        m.fab.switched[col], n = _tick(eng, m, col, t, m.fab.switched[col], filt)
        moved = moved + n
    return moved


def switched_stuck(eng: Engine, m: Machine) -> None:
    """Fault each PE whose router holds a wavelet it cannot route (at quiescence)."""
    for col, t in eng.switched.items():
        if col not in m.fab.outbox:
            continue
        st = m.fab.switched[col]
        pos, full = st["pos"], st["full"]
        rx, tx = ports_at(t, st, pos)
        configured = st["conf"]
        ports = jnp.arange(PORTS, dtype=jnp.int32)
        refused = full & ((((rx[..., None] >> ports) & 1) == 0) | ~configured[..., None])
        bad = jnp.any(refused, axis=-1) & ~st["down"]
        for d, (dx, dy, opp) in enumerate(STEPS):
            takes = _at(configured & _bit(rx, opp), dx, dy, False)
            bad = bad | (jnp.any(full, axis=-1) & _bit(tx, d) & ~takes & ~st["down"])
        code = eng.register_fault(stuck_text(col))
        m.fault = jnp.where(bad & (m.fault == 0), jnp.int32(code), m.fault)
