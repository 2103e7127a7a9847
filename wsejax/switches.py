"""Switched colors: the per-router tables of the colors some PE configures `.switches` on, and
the rules a router applies to them, hop by hop (spec 6.2, 6.6).

Contract. A color is *switched* when at least one PE's config for it has `.switches` or
`.teardown = true`, or a PE program handles or reads its teardown or rewrites its routes
(`<tile_config>.color_config`: position 0's rx and tx are then runtime state of each router,
`wsejax.csl.library._color_config`); every PE's config of that
color is then routed hop by hop (`wsejax.engine.switched`,
`wsejax.reference.switched`) instead of along the static maps of `wsejax.routes`.
`build_switch_tables(width, height, configs, switches)` makes one `SwitchTable` per switched
color: per position 0..3 and PE, the rx and tx port masks (bit i is `DIRECTIONS[i]`; position 0
is the config's `.routes`; a position 1..3 keeps position 0's rx or tx where it names only the
other), which positions are valid, the start position, ring mode, pop mode and whether the color
starts in teardown.

Router rules, per PE and switched color, one hop per tick (both interpreters):

- the router holds one wavelet per input port (NORTH, SOUTH, EAST, WEST: from that neighbour;
  RAMP: from its own CE's outbox); it serves the lowest port whose wavelet its rx at the current
  position accepts;
- the wavelet leaves when every port of the current tx can take it: a neighbour's buffer for the
  port it arrives on is empty (at the start of the tick), and for RAMP the PE's inbox has room
  (only needed when the wavelet goes to the CE: a data wavelet, or a control wavelet whose
  current command's ce_ignore is clear); a tx without ports drops it;
- a router whose color is in teardown moves nothing (it takes nothing from its outbox either)
  until the PE's program calls `teardown.exit(color)`;
- a control wavelet that leaves executes its current command there (`next_position`:
  SWITCH_ADV advances, SWITCH_RST returns to 0, NOP nothing, TEARDOWN puts the color into
  teardown there and activates the PE's teardown task, 29) and, as the pop mode says, the
  copies sent to neighbours carry its command list popped (`pop_payload`); the CE receives it
  as it arrived. The wavelet itself followed the position in force before;
- a fabout DSD with `.advance_switch = true` marks the last wavelet it sends: when that
  wavelet leaves its sender's router (from RAMP), that router's switch advances as SWITCH_ADV
  would (after the wavelet's own command, if it is a control wavelet; ring mode as above).
  The SDK documents only "advances the switch after the last wavelet is sent"; wsejax reads it
  as the sender's own router alone (the wavelet carries no command to the routers downstream,
  and the wavelet itself follows the position in force before). On a color that no PE
  configures switches for, there is nothing to advance and the mark is dropped;
- after the moves, a router whose RAMP buffer is empty takes the oldest wavelet of its outbox.

A wavelet still held by a router when the fabric is quiescent, which its router's rx at the
current position does not accept or whose tx sends it off the rectangle or to a neighbour that
does not accept it from that side, is an unroutable wavelet: that PE faults (`stuck_text`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsejax import ir
from wsejax.fabric import MAX_COMMANDS, command_bits
from wsejax.routes import DIRECTIONS

__all__ = ["NOP", "PORTS", "RAMP", "STEPS", "SWITCH_ADV", "SWITCH_RST", "TEARDOWN",
           "TEARDOWN_TASK", "SwitchTable", "build_switch_tables", "current_command",
           "current_ignored", "next_position", "pop_payload", "should_pop", "stuck_text"]

NOP, SWITCH_ADV, SWITCH_RST, TEARDOWN = 0, 1, 2, 3
PORTS = len(DIRECTIONS)         # NORTH, SOUTH, EAST, WEST, RAMP: port i is bit i
RAMP = DIRECTIONS.index("RAMP")
# per direction port d < RAMP: (dx, dy, the port it arrives on at the neighbour)
STEPS = ((0, -1, 1), (0, 1, 0), (1, 0, 3), (-1, 0, 2))
ENTRY_BITS = 0x3F << 16


@dataclass(frozen=True, eq=False)
class SwitchTable:
    """The router configuration of one switched color over a `[H, W]` grid."""

    color: int
    rx: np.ndarray          # [4, H, W] uint8: the accepted input ports at each position
    tx: np.ndarray          # [4, H, W] uint8: the output ports at each position
    valid: np.ndarray       # [4, H, W] bool: the position exists (0 wherever configured)
    start: np.ndarray       # [H, W] int32: the position at start-up
    ring: np.ndarray        # [H, W] bool: ring_mode
    pop: np.ndarray         # [H, W] int32: the index of the pop mode in `ir.POP_MODES`
    configured: np.ndarray  # [H, W] bool: the PE has a config for the color
    teardown: np.ndarray    # [H, W] bool: the color starts in teardown (`.teardown = true`)


def _mask(ports) -> int:
    return sum(1 << DIRECTIONS.index(p) for p in ports)


def build_switch_tables(width: int, height: int, configs: dict, switches: dict,
                        more=()) -> dict[int, SwitchTable]:
    """The tables of every color that `switches` (`(x, y, color) -> ir.Switches`) names, and of
    the colors `more`, from `configs` (`(x, y, color) -> (rx, tx)`) and those switches."""
    out = {}
    for color in sorted({c for _, _, c in switches} | set(more)):
        rx = np.zeros((4, height, width), np.uint8)
        tx = np.zeros((4, height, width), np.uint8)
        valid = np.zeros((4, height, width), bool)
        start = np.zeros((height, width), np.int32)
        ring = np.zeros((height, width), bool)
        pop = np.zeros((height, width), np.int32)
        down = np.zeros((height, width), bool)
        for (x, y, c), (r, t) in configs.items():
            if c != color:
                continue
            rx[:, y, x], tx[:, y, x], valid[0, y, x] = _mask(r), _mask(t), True
            sw = switches.get((x, y, c))
            if sw is None:
                continue
            for p, position in enumerate(sw.positions, 1):
                if position is not None:
                    prx, ptx = position
                    valid[p, y, x] = True
                    rx[p, y, x] = _mask(prx) if prx is not None else _mask(r)
                    tx[p, y, x] = _mask(ptx) if ptx is not None else _mask(t)
            start[y, x] = sw.current
            ring[y, x] = sw.ring_mode
            pop[y, x] = ir.POP_MODES.index(sw.pop_mode)
            down[y, x] = sw.teardown
        out[color] = SwitchTable(color, rx, tx, valid, start, ring, pop, valid[0].copy(), down)
    return out


# ------------------------------------------------------------------------------------------------
# The rules, written with operators only: they take Python ints, numpy or JAX arrays alike


def current_command(payload):
    """The opcode of a control payload's current command (command 0)."""
    return (payload >> command_bits(0)[0]) & 3


def current_ignored(payload):
    """The ce_ignore bit of a control payload's current command (0 or 1)."""
    return (payload >> command_bits(0)[1]) & 1


def pop_payload(payload):
    """The payload with its current command removed: commands 1..7 move down one place; the
    last becomes a NOP keeping its ce_ignore bit. The entrypoint bits stay."""
    out = payload & ENTRY_BITS
    for k in range(MAX_COMMANDS):
        src = command_bits(min(k + 1, MAX_COMMANDS - 1))
        dst = command_bits(k)
        if k + 1 < MAX_COMMANDS:
            out = out | (((payload >> src[0]) & 3) << dst[0])
        out = out | (((payload >> src[1]) & 1) << dst[1])
    return out


def should_pop(pop_mode, command, advanced):
    """Whether a router in `pop_mode` (index in `ir.POP_MODES`) removes the command it ran:
    no_pop never, always_pop always, pop_on_advance when it advanced the switch,
    pop_on_advance_nop when it advanced it or was a NOP."""
    return (pop_mode == 1) | ((pop_mode == 2) & advanced) \
        | ((pop_mode == 3) & (advanced | (command == NOP)))


def next_position(pos: int, valid_next: bool, ring: bool) -> int:
    """Where SWITCH_ADV moves a switch at `pos`: the next position when it is valid
    (`valid_next`: position pos + 1 exists, False at 3), else 0 in ring mode, else pos."""
    if valid_next:
        return pos + 1
    return 0 if ring else pos


def stuck_text(color: int) -> str:
    return (f"unroutable wavelet on color {color}: it is stuck in this PE's router, whose "
            "current switch position does not accept it or sends it where it is not accepted "
            "(off the rectangle, or to a neighbour whose position does not take it from that "
            "side); the hardware would stall")


TEARDOWN_TASK = 29      # the local task a router entering teardown activates
