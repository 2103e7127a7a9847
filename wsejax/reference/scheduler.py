"""The rounds of the reference interpreter: router, host streams, and each PE's scheduler.

Contract: `Scheduler` is the part of `Reference` that runs the fabric to quiescence
(`_settle`). A round moves wavelets (the router, then the host's side of a streaming memcpy),
then on each healthy PE in row-major order: fires `@queue_flush` teardowns, drops control
wavelets that start no task, advances the running asynchronous ops, and resumes the main thread,
starts a launched function or starts the runnable task with the lowest ID (spec 5.3).
"""

from __future__ import annotations

import numpy as np

from wsejax import ir
from wsejax.diagnostics import fabric_busy, nowhere_to_go, unbound_control_task
from wsejax.errors import ProgramError
from wsejax.fabric import NO_ENTRYPOINT, control_entry, control_ignored, data_task_args
from wsejax.reference.pe import (
    CONTROL,
    FLUSH_PENDING,
    FLUSHED,
    PAYLOAD,
    PE,
    Fault,
    Frame,
    data_ahead,
)
from wsejax.reference.scalars import from_bits
from wsejax.types import DType

__all__ = ["Scheduler"]

_TEARDOWN_TASK = 29   # the task a flushed queue activates


class Scheduler:
    """Runs rounds until nothing can change (a mixin of `Reference`).

    Uses from `Reference`: `program`, `loop_limit`, `queue_capacity`, `_all`, `_streams`,
    `_dests`, `_h2d`, `_d2h`; from `Interpreter`: `_call`; from `DsdInterpreter`: `_advance`,
    `_finish`.
    """

    def _settle(self) -> None:
        """Run rounds until nothing can change (quiescence). A round moves wavelets (router and
        host), advances every running asynchronous op as far as it can, and on each PE resumes
        the main thread or starts one task. After `loop_limit` rounds the PEs still busy (a
        waiting main thread, a blocked command stream or a runnable local task) fault."""
        rounds = 0
        with np.errstate(all="ignore"):
            while True:
                moved = self._route()
                if self._switched:
                    moved = self._route_switched() or moved
                moved = self._host() or moved
                moved = self._collectives() or moved
                busy = [pe for pe in self._all if not pe.fault and self._step(pe)]
                if not busy and not moved:
                    if self._switched:
                        self._switched_stuck()
                    return
                rounds += 1
                if rounds >= self.loop_limit:
                    text = fabric_busy(self.loop_limit)
                    for pe in self._all:
                        if not pe.fault and (pe.main is not None or pe.cmd_blocked
                                             or pe.active - pe.blocked):
                            pe.halt(text)
                    return

    def _route(self) -> bool:
        """Move every outbox's wavelets into the inboxes of its destinations, as many as all of
        them can take; fault PEs whose wavelets have nowhere to go."""
        moved = False
        for pe in self._all:
            for color, q in pe.outbox.items():
                if not q or self._streams.get(color) == "d2h" or color in self._switched:
                    continue
                dests = self._dests.get(color, {}).get(pe.y * self.program.width + pe.x)
                if not dests:
                    if not pe.fault:
                        pe.halt(nowhere_to_go(color))
                        moved = True
                    continue
                moved = self._deliver(q, color, dests) or moved
        return moved

    def _deliver(self, q, color: int, dests: list[tuple[PE, int]]) -> bool:
        """Move the wavelets at the front of outbox `q` (of `color`) that every destination
        (a PE and the color its ramp receives them as) has room for into their inboxes,
        through each one's filter; whether any moved."""
        count = len(q)
        for dest, col in dests:
            count = min(count, self.queue_capacity - len(dest.queue(dest.inbox, col)))
        for _ in range(count):
            wavelet = q.popleft()
            for dest, col in dests:
                wavelet_filter = dest.filters.get(col)
                if wavelet_filter is None or wavelet_filter.passes(wavelet):
                    dest.inbox[col].append(wavelet)
        return count > 0

    def _host(self) -> bool:
        """The host's side of a streaming command: feed inboxes, drain outboxes."""
        moved = False
        if self._h2d is not None:
            color, pending = self._h2d
            for pe, q in pending.items():
                box = pe.queue(pe.inbox, color)
                while q and len(box) < self.queue_capacity:
                    box.append(q.popleft())
                    moved = True
        if self._d2h is not None:
            color, count, got = self._d2h
            for pe, ws in got.items():
                box = pe.queue(pe.outbox, color)
                while box and len(ws) < count:
                    ws.append(box.popleft() & PAYLOAD)
                    moved = True
        return moved

    def _step(self, pe: PE) -> bool:
        """One round on a healthy PE; whether anything changed."""
        changed = self._queue_flushes(pe)
        changed = self._control_arrivals(pe) or changed
        if pe.fault:
            return True
        changed = self._advance_micro(pe) or changed
        if pe.fault:
            return True
        if pe.main is not None:
            return self._resume(pe, pe.main) or changed
        if pe.launch is not None:
            (fn, args), pe.launch = pe.launch, None
            self._start(pe, fn, args)
            return True
        task = self._pick(pe)
        if task is None:
            return changed
        fn, args = task
        if fn is not None:
            self._start(pe, fn, args)
        return True

    def _advance_micro(self, pe: PE) -> bool:
        """Advance each running asynchronous op, by site; finish those done."""
        changed = False
        for site in sorted(pe.micro):
            op = pe.micro[site]
            changed = self._advance(pe, op) or changed
            if op.finished:
                del pe.micro[site]
                self._finish(pe, op)
                changed = True
        return changed

    def _queue_flushes(self, pe: PE) -> bool:
        """Each `@queue_flush` waiting for its queue, where the queue is empty now: activate
        the teardown task (29); the queue is FLUSHED until `queue_flush.exit`."""
        fired = False
        for (kind, n), state in pe.queue_flush.items():
            if state != FLUSH_PENDING:
                continue
            color = pe.color_now(pe.queue_colors[(kind, n)])
            if not (pe.inbox if kind == "input" else pe.outbox).get(color):
                pe.queue_flush[(kind, n)] = FLUSHED
                pe.activate(_TEARDOWN_TASK)
                fired = True
        return fired

    def _runnable(self, pe: PE):
        """The IDs of the tasks that could start now: active local IDs (with a task bound or
        not), control tasks whose wavelet is at the front of an open inbox, data tasks with a
        data wavelet ahead in their color's inbox that no running op reads; unblocked all."""
        for ident in pe.active:
            if ident not in pe.data_tasks and ident not in pe.blocked:
                yield ident
        for ident in pe.control_tasks:
            if ident not in pe.blocked and self._control_color(pe, ident) is not None:
                yield ident
        for ident, (_, color) in pe.data_tasks.items():
            color = pe.color_now(color)
            if ident not in pe.blocked and data_ahead(pe.inbox.get(color, ())) and \
                    not pe.fabin_users[color]:
                yield ident

    def _pick(self, pe: PE):
        """The runnable task with the lowest ID, a HIGH priority one first (`_high`), as
        `(fn, args)`, its activation or wavelet consumed; None when none can run. An active,
        unblocked ID without a task (as the engine's scheduler) is picked with `fn` None:
        nothing runs, the activation stays, and the PE stays busy."""
        best = min(self._runnable(pe), key=lambda k: (not _high(pe, k), k), default=None)
        if best is None:
            return None
        if best in pe.control_tasks:
            fn = pe.control_tasks[best]
            wavelet = pe.inbox[self._control_color(pe, best)].popleft() & PAYLOAD
            return fn, self._task_args(pe, fn, wavelet)
        if best in pe.data_tasks:
            fn, color = pe.data_tasks[best]
            wavelet = pe.inbox[pe.color_now(color)].popleft()
            fn = _rotate(pe, best, fn)
            return fn, self._task_args(pe, fn, wavelet)
        if best not in pe.local_tasks:
            return None, []
        pe.active.discard(best)
        return pe.local_tasks[best], []

    @staticmethod
    def _task_args(pe: PE, fn: str, wavelet: int) -> list:
        """The arguments task `fn`'s parameters take from `wavelet` (spec 5.1)."""
        types = [t for _, t in pe.cls.function(fn).params]
        if not types:
            return []
        if not all(isinstance(t, DType) for t in types):
            raise ProgramError(f"task {fn} takes a DSD parameter")
        try:
            split = data_task_args(tuple(t.bits for t in types))
        except ValueError as err:
            raise ProgramError(f"task {fn}: {err}") from None
        return [from_bits((wavelet >> shift) & ((1 << width) - 1), t)
                for (shift, width), t in zip(split, types)]

    # -- control wavelets (`wsejax.fabric`) -------------------------------------------------

    @staticmethod
    def _channel_open(pe: PE, color: int) -> bool:
        if pe.channels is None:
            return color not in pe.blocked
        q = pe.channels.get(color)
        return q is not None and q not in pe.blocked

    def _control_color(self, pe: PE, ident: int):
        """The first color whose inbox starts with a control wavelet that may start control
        task `ident` now, or None."""
        for color in sorted(pe.inbox):
            q = pe.inbox[color]
            if q and q[0] & CONTROL and control_entry(q[0]) == ident and \
                    not control_ignored(q[0]) and self._channel_open(pe, color) and \
                    not pe.control_takers[color]:
                return color
        return None

    def _control_arrivals(self, pe: PE) -> bool:
        """Drop the control wavelets at the front of `pe`'s inboxes that activate no task;
        fault `pe` if one names a control task ID it binds no task to. Whether any left. A
        running op with `.on_control` reading the color takes its control wavelets."""
        gone = False
        for color in sorted(pe.inbox):
            q = pe.inbox[color]
            if not q or not q[0] & CONTROL or pe.control_takers[color]:
                continue
            wavelet = q[0]
            if control_ignored(wavelet) or control_entry(wavelet) == NO_ENTRYPOINT:
                q.popleft()
                gone = True
            elif control_entry(wavelet) not in pe.control_tasks and \
                    self._channel_open(pe, color):
                pe.halt(unbound_control_task(color))
                return True
        return gone

    def _start(self, pe: PE, fn: str, args) -> None:
        pe.root = fn
        self._resume(pe, self._call(pe, fn, args, Frame(fn=fn)))

    @staticmethod
    def _resume(pe: PE, body) -> bool:
        """Run the main thread's `body` until it ends or waits; whether it made progress."""
        pe.main = None
        try:
            progressed = body.send(None)
        except StopIteration:
            return True
        except Fault as f:
            pe.halt(f.text)
            return True
        pe.main = body
        return progressed


def _high(pe: PE, ident: int) -> bool:
    """Whether task ID `ident` has HIGH priority on `pe` (`ir.TASK_PRIORITY`)."""
    words = pe.flat.get(ir.TASK_PRIORITY)
    return words is not None and 0 <= ident < 32 * len(words) and \
        bool((int(words[ident // 32]) >> (ident % 32)) & 1)


def _rotate(pe: PE, ident: int, fn: str) -> str:
    """The task that runs where data task `ident` (body `fn`) starts: with a
    `@bind_rotating_tasks` pair (`ir.Rotation`), its alternate where the pair's counter has
    reached the limit (the counter back to 0), else `fn` (the counter up by one)."""
    for r in pe.cls.rotations:
        if r.data == ident:
            count = pe.flat[r.counter]
            if int(count[0]) == r.limit:
                count[0] = 0
                return pe.control_tasks[r.alt]
            count[0] = (int(count[0]) + 1) & 0xFFFF
    return fn
