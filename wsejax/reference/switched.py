"""The switched colors of the reference interpreter: routers that move their wavelets one hop a
round and execute the commands of the control wavelets passing them (the rules of
`wsejax.switches`), one PE at a time.

Contract: `SwitchedRouter` is the part of `Reference` that keeps, per switched color, each
router's switch position and one wavelet per input port; `_route_switched` runs one round of
every switched color, `_switched_stuck` faults the PEs whose router holds an unroutable wavelet
once the fabric is quiescent. `_teardown_exit` and `_teardown_pending` are the runtime side
of `<tile_config>.teardown`, `_route_edit` that of `<tile_config>.color_config`, `_switch_edit`
that of `<tile_config>.switch_config`.
"""

from __future__ import annotations

from wsejax.reference.pe import ADVANCE, CONTROL, PAYLOAD, PE, Fault
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
    next_position,
    pop_payload,
    should_pop,
    stuck_text,
)

__all__ = ["SwitchedRouter"]


class _Switch:
    """One switched color's routers: `pos[y][x]`, `buf[y][x][port]` (None: empty) and
    `down[y][x]` (the color is in teardown there)."""

    def __init__(self, table: SwitchTable):
        self.table = table
        h, w = table.start.shape
        self.pos = [[int(table.start[y, x]) for x in range(w)] for y in range(h)]
        self.buf = [[[None] * PORTS for _ in range(w)] for _ in range(h)]
        self.down = [[bool(table.teardown[y, x]) for x in range(w)] for y in range(h)]
        # position 0's ports and whether the PE has a config: `color_config` rewrites them
        self.rx0 = [[int(table.rx[0, y, x]) for x in range(w)] for y in range(h)]
        self.tx0 = [[int(table.tx[0, y, x]) for x in range(w)] for y in range(h)]
        self.conf = [[bool(table.configured[y, x]) for x in range(w)] for y in range(h)]
        # positions 1..3's ports and validity, ring and pop mode: `switch_config` rewrites them
        self.rx, self.tx = table.rx.copy(), table.tx.copy()
        self.valid = table.valid.copy()
        self.ring, self.pop = table.ring.copy(), table.pop.copy()

    def ports(self, x: int, y: int, pos: int | None = None) -> tuple[int, int]:
        """`(rx, tx)` of the router at (x, y) at `pos` (None: its current position)."""
        pos = self.pos[y][x] if pos is None else pos
        if pos == 0:
            return self.rx0[y][x], self.tx0[y][x]
        return int(self.rx[pos, y, x]), int(self.tx[pos, y, x])


class SwitchedRouter:
    """A mixin of `Reference`. Uses `program`, `queue_capacity`, `_all`, `_pes`."""

    def _init_switched(self) -> None:
        self._switched = {int(col): _Switch(t) for col, t in self.program.switched.items()}

    def _route_switched(self) -> bool:
        """One round of every switched color; whether anything moved."""
        moved = False
        for color, sw in self._switched.items():
            fires = [f for f in (self._decide(pe, color, sw) for pe in self._all) if f]
            for pe, port, wavelet in fires:
                self._fire(pe, color, sw, port, wavelet)
            moved = moved or bool(fires)
            for pe in self._all:
                box = pe.outbox.get(color)
                bufs = sw.buf[pe.y][pe.x]
                if box and bufs[RAMP] is None and not sw.down[pe.y][pe.x]:
                    bufs[RAMP] = box.popleft()
                    moved = True
        return moved

    def _to_ce(self, wavelet: int) -> bool:
        """Whether a wavelet leaving on RAMP reaches the CE (data, or a control wavelet whose
        current command's ce_ignore is clear)."""
        return not wavelet & CONTROL or not current_ignored(wavelet & PAYLOAD)

    def _decide(self, pe: PE, color: int, sw: _Switch):
        """`(pe, port, wavelet)` if pe's router moves a wavelet this round, else None."""
        t, x, y = sw.table, pe.x, pe.y
        if not sw.conf[y][x] or sw.down[y][x]:
            return None
        rx, tx = sw.ports(x, y)
        bufs = sw.buf[y][x]
        port = next((p for p in range(PORTS) if bufs[p] is not None and rx >> p & 1), None)
        if port is None:
            return None
        wavelet = bufs[port]
        h, w = t.start.shape
        for d, (dx, dy, opp) in enumerate(STEPS):
            if tx >> d & 1:
                nx, ny = x + dx, y + dy
                if not (0 <= nx < w and 0 <= ny < h) or sw.buf[ny][nx][opp] is not None:
                    return None
        if tx >> RAMP & 1 and self._to_ce(wavelet) and \
                len(pe.queue(pe.inbox, color)) >= self.queue_capacity:
            return None
        return pe, port, wavelet

    def _fire(self, pe: PE, color: int, sw: _Switch, port: int, wavelet: int) -> None:
        """Move the wavelet of `port` out of pe's router, executing its command."""
        x, y = pe.x, pe.y
        tx = sw.ports(x, y)[1]
        sw.buf[y][x][port] = None
        last, wavelet = wavelet & ADVANCE, wavelet & ~ADVANCE
        forward = wavelet
        if wavelet & CONTROL:
            forward = self._command(pe, sw, wavelet)
        if last:
            pos = sw.pos[y][x]
            sw.pos[y][x] = next_position(pos, pos < 3 and bool(sw.valid[min(pos + 1, 3), y, x]),
                                         bool(sw.ring[y, x]))
        for d, (dx, dy, opp) in enumerate(STEPS):
            if tx >> d & 1:
                sw.buf[y + dy][x + dx][opp] = forward
        if tx >> RAMP & 1 and self._to_ce(wavelet):
            wavelet_filter = pe.filters.get(color)
            if wavelet_filter is None or wavelet_filter.passes(wavelet):
                pe.queue(pe.inbox, color).append(wavelet)

    def _command(self, pe: PE, sw: _Switch, wavelet: int) -> int:
        """Run a leaving control wavelet's current command at pe's router: the wavelet it
        forwards (its command popped as the pop mode says)."""
        x, y = pe.x, pe.y
        pos = sw.pos[y][x]
        payload = wavelet & PAYLOAD
        cmd = current_command(payload)
        if cmd == TEARDOWN:
            sw.down[y][x] = True
            pe.activate(TEARDOWN_TASK)
        new = pos
        if cmd == SWITCH_ADV:
            new = next_position(pos, pos < 3 and bool(sw.valid[min(pos + 1, 3), y, x]),
                                bool(sw.ring[y, x]))
        elif cmd == SWITCH_RST:
            new = 0
        sw.pos[y][x] = new
        if should_pop(int(sw.pop[y, x]), cmd, new != pos):
            return pop_payload(payload) | CONTROL
        return wavelet

    def _switched_stuck(self) -> None:
        """At quiescence: fault each PE whose router holds a wavelet it cannot route."""
        for color, sw in self._switched.items():
            for pe in self._all:
                if not pe.fault and self._unroutable(pe, sw):
                    pe.halt(stuck_text(color))

    def _unroutable(self, pe: PE, sw: _Switch) -> bool:
        t, x, y = sw.table, pe.x, pe.y
        bufs = sw.buf[y][x]
        if all(b is None for b in bufs) or sw.down[y][x]:
            return False
        if not sw.conf[y][x]:
            return True
        rx, tx = sw.ports(x, y)
        if any(b is not None and not rx >> p & 1 for p, b in enumerate(bufs)):
            return True
        h, w = t.start.shape
        for d, (dx, dy, opp) in enumerate(STEPS):
            if tx >> d & 1:
                nx, ny = x + dx, y + dy
                if not (0 <= nx < w and 0 <= ny < h) or not sw.conf[ny][nx] or \
                        not sw.ports(nx, ny)[0] >> opp & 1:
                    return True
        return False

    def _teardown_exit(self, pe: PE, color: int) -> None:
        sw = self._switched.get(color)
        if sw is not None:
            sw.down[pe.y][pe.x] = False

    def _teardown_pending(self, pe: PE, color: int) -> bool:
        sw = self._switched.get(color)
        return sw is not None and sw.down[pe.y][pe.x]

    def _route_edit(self, pe: PE, s) -> None:
        """A `color_config` call (`ir.RouteEdit`) on pe's router: rewrite position 0."""
        sw = self._switched.get(s.color)
        if sw is None:
            return
        x, y = pe.x, pe.y
        for grid, mask in ((sw.rx0, s.rx), (sw.tx0, s.tx)):
            old = grid[y][x]
            grid[y][x] = {"reset": mask, "set": old | mask, "clear": old & ~mask,
                          "toggle": old ^ mask}[s.op]
        sw.conf[y][x] = True

    def _switch_edit(self, pe: PE, s) -> None:
        """A `switch_config` call (`ir.SwitchEdit`) on pe's router; `s.value` evaluated (the
        position, for op "position")."""
        sw = self._switched.get(s.color)
        if sw is None:
            return
        x, y = pe.x, pe.y
        if s.op == "position":
            if s.value > 3:
                raise Fault(f"switch_config.set_current_switch_position: color {s.color} has "
                            "no switch position past 3")
            sw.pos[y][x] = int(s.value)
        elif s.op == "ring":
            sw.ring[y, x] = bool(s.value)
        elif s.op == "pop":
            sw.pop[y, x] = int(s.value)
        elif s.op == "invalid":
            # positions 1..3 invalid, holding position 0's ports of now
            sw.rx[1:, y, x], sw.tx[1:, y, x] = sw.rx0[y][x], sw.tx0[y][x]
            sw.valid[1:, y, x] = False
        else:
            for grid, mask in ((sw.rx, s.rx), (sw.tx, s.tx)):
                if mask is not None:
                    grid[s.value, y, x] = mask
            sw.valid[s.value, y, x] = True
