"""Host commands of the reference interpreter, and the diagnostics of a command that fails.

Contract: `HostCommands` is the part of `Reference` that the host calls: `memcpy_h2d`,
`memcpy_d2h` (copy mode element by element between quiescent states; streaming mode through
the fabric while it runs to quiescence), `launch` and `stop`. After a command the checks raise
FabricFault (a PE faulted) or DeadlockError (a command that cannot finish, with what each stuck
PE is doing), with the engine's texts.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from wsejax import ir
from wsejax.diagnostics import (
    MAX_LISTED_PES,
    PeSummary,
    command_stuck,
    device_fault,
    stream_short,
    stuck_lines,
)
from wsejax.errors import MemcpyError, ProgramError
from wsejax.memcpy import MemcpyDataType, MemcpyOrder, stride_grid
from wsejax.reference.pe import PE
from wsejax.types import DType, bits16_of, from_bits16, rounded

__all__ = ["HostCommands"]


class HostCommands:
    """memcpy, launch and stop (a mixin of `Reference`).

    Uses from `Reference`: `program`, `_pes`, `_all`, `_streams`, `_h2d`, `_d2h`; from
    `Scheduler`: `_settle`.
    """

    def memcpy_h2d(self, name, src: np.ndarray, px: int, py: int, w: int, h: int, l: int,
                   *, order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                   kind: str = "roi", streaming: bool = False, strides=None) -> None:
        """Copy host elements into exported symbol `name` of the ROI (spec 12.2), element by
        element. `kind` is "roi", "rowbcast" or "colbcast"; `strides` (`(row_stride,
        col_stride)`, `memcpy_h2d_stride`) keeps the PEs of every row_stride-th column and
        col_stride-th row, the source laid out as a ROI of just those PEs.

        With `streaming`, `name` is an H2D streaming color: each ROI PE's `l` elements enter
        its inbox on that color as 32-bit wavelets, in order, as space allows, while the
        fabric runs to quiescence (`data_type` has no effect); raises DeadlockError when a
        PE did not take them all."""
        order = MemcpyOrder(order)
        if streaming:
            self._stream_h2d(int(name), src, px, py, w, h, l, order, kind, strides)
            return
        bits = 16 if MemcpyDataType(data_type) is MemcpyDataType.MEMCPY_16BIT else 32
        words = np.ascontiguousarray(src).reshape(-1).view(np.uint32)
        for pe, index in self._receivers(kind, order, px, py, w, h, l, strides):
            raw, first = _export_bytes(pe, name, bits)
            for k in range(l):
                _put_word(raw, (first + k) * (bits // 8), int(words[index(k)])
                          & ((1 << bits) - 1), bits)
            _store_bytes(pe, name, raw)

    def _receivers(self, kind, order, px, py, w, h, l, strides):
        """`(PE, k -> host index)` for each PE an H2D copy reaches."""
        rs, cs = strides or (1, 1)
        cols, rows = stride_grid(w, h, (rs, cs))
        for j in range(rows):
            for i in range(cols):
                yield self._pes[py + j * cs][px + i * rs], \
                    lambda k, i=i, j=j: host_index(kind, order, i, j, k, cols, rows, l)

    def memcpy_d2h(self, dest: np.ndarray, name, px: int, py: int, w: int, h: int, l: int,
                   *, order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                   streaming: bool = False) -> None:
        """Copy exported symbol `name` of the ROI into `dest` (raw bits, written in place).

        With `streaming`, `name` is a D2H streaming color: the host takes `l` wavelets from
        each ROI PE's outbox on that color while the fabric runs to quiescence; raises
        DeadlockError when a PE sent fewer (what arrived is written)."""
        order = MemcpyOrder(order)
        out = dest.reshape(-1).view(np.uint32)
        if streaming:
            self._stream_d2h(out, int(name), px, py, w, h, l, order)
            return
        bits = 16 if MemcpyDataType(data_type) is MemcpyDataType.MEMCPY_16BIT else 32
        for j in range(h):
            for i in range(w):
                raw, first = _export_bytes(self._pes[py + j][px + i], name, bits)
                for k in range(l):
                    out[host_index("roi", order, i, j, k, w, h, l)] = \
                        _get_word(raw, (first + k) * (bits // 8), bits)

    def _stream_color(self, color: int, kind: str, what: str) -> None:
        if self._streams.get(color) != kind:
            raise MemcpyError(f"{what}: color {color} is not a memcpy {kind.upper()} streaming "
                              "color of the program")

    def _stream_h2d(self, color, src, px, py, w, h, l, order, kind, strides=None) -> None:
        what = "memcpy_h2d_stride" if strides else \
            "memcpy_h2d" if kind == "roi" else f"memcpy_h2d_{kind}"
        self._stream_color(color, "h2d", what)
        words = np.ascontiguousarray(src).reshape(-1).view(np.uint32)
        pending = {pe: deque(int(words[index(k)]) for k in range(l))
                   for pe, index in self._receivers(kind, order, px, py, w, h, l, strides)}
        self._h2d = (color, pending)
        try:
            self._settle()
        finally:
            self._h2d = None
        self._check_faults()
        self._check_stream(what, {pe: l - len(q) for pe, q in pending.items()}, l, "took")

    def _stream_d2h(self, out, color, px, py, w, h, l, order) -> None:
        what = "memcpy_d2h"
        self._stream_color(color, "d2h", what)
        got = {self._pes[py + j][px + i]: [] for j in range(h) for i in range(w)}
        self._d2h = (color, l, got)
        try:
            self._settle()
        finally:
            self._d2h = None
        for j in range(h):
            for i in range(w):
                for k, word in enumerate(got[self._pes[py + j][px + i]]):
                    out[host_index("roi", order, i, j, k, w, h, l)] = word
        self._check_faults()
        self._check_stream(what, {pe: len(ws) for pe, ws in got.items()}, l, "sent")

    def launch(self, fn_name: str, *args) -> None:
        """Run exported function `fn_name(*args)` on the main thread of every healthy PE that
        exports it (once that thread is idle), run the fabric to quiescence, then raise
        FabricFault (a PE faulted, now or before) or DeadlockError (a PE never called
        `unblock_cmd_stream()`), as the engine does."""
        export = self.program.export(fn_name)
        values = [rounded(a, t)[()] for a, t in zip(args, export.params)] \
            if export is not None else list(args)
        for pe in self._all:
            fn = next((e.fn for e in pe.cls.exports if isinstance(e, ir.ExportFunc)
                       and e.name == fn_name), None)
            if fn is None or pe.fault:
                continue
            pe.cmd_blocked = True
            pe.launch = (fn, values)
        self._settle()
        self._check(f"launch('{fn_name}')")

    def stop(self) -> None:
        """Run the fabric to quiescence; raise FabricFault if a PE faulted."""
        self._settle()
        self._check_faults()

    # -- command checks ---------------------------------------------------------------------

    def _check_faults(self) -> None:
        faulted = [pe for pe in self._all if pe.fault]
        if faulted:
            kinds = list(dict.fromkeys(pe.fault for pe in faulted))
            raise device_fault(kinds[0], len(kinds),
                               [(pe.x, pe.y) for pe in faulted if pe.fault == kinds[0]])

    def _check(self, command: str) -> None:
        self._check_faults()
        stuck = [pe for pe in self._all if pe.cmd_blocked]
        if stuck:
            raise command_stuck(command, [(pe.x, pe.y) for pe in stuck],
                                self._stuck_lines(stuck))

    def _check_stream(self, command: str, done: dict, total: int, verb: str) -> None:
        """A streaming memcpy that stopped short: the PEs whose wavelets did not all move."""
        stuck = [pe for pe, n in done.items() if n < total]
        if stuck:
            raise stream_short(command, [(pe.x, pe.y, done[pe], total) for pe in stuck], verb,
                               self._stuck_lines(stuck))

    def _stuck_lines(self, pes: list[PE]) -> list[str]:
        """What each of (at most MAX_LISTED_PES of) `pes` is doing: tasks, a waiting body,
        queues."""
        colors = sorted({c for pe in self._all for boxes in (pe.inbox, pe.outbox)
                         for c in boxes})
        summaries = [
            PeSummary(pe.x, pe.y, sorted(pe.active), sorted(pe.blocked), sorted(pe.blocked_uts),
                      pe.root if pe.main is not None else None,
                      [(c, name, len(boxes[c])) for c in colors
                       for name, boxes in (("in", pe.inbox), ("out", pe.outbox)) if boxes.get(c)],
                      _pending_collectives(pe))
            for pe in pes[:MAX_LISTED_PES]]
        return stuck_lines(summaries, len(pes))


def _pending_collectives(pe: PE) -> tuple:
    """(kind, axis) of each `<collectives_2d>` operation `pe` issued that has not completed."""
    recs = ((axis, pe.flat.get(ir.collective_record(axis))) for axis in ("x", "y"))
    return tuple((ir.COLLECTIVE_KINDS[int(r[0]) - 1], axis) for axis, r in recs
                 if r is not None and r[0] != 0)


def _export_bytes(pe: PE, name: str, bits: int):
    """The bytes of the symbol exported as `name` on `pe`, and its first word index. A cb16
    symbol's are a copy, its values' 16-bit patterns (`_store_bytes` writes them back)."""
    for e in pe.cls.exports:
        if isinstance(e, ir.ExportData) and e.name == name:
            symbol, offset = _exported_place(pe, e)
            sym = pe.cls.symbol(symbol)
            flat = pe.flat[symbol]
            raw = bits16_of(flat, sym.dtype) if sym.dtype is DType.cb16 else flat
            return raw.view(np.uint8), offset * sym.dtype.bits // bits
    raise ProgramError(f"PE ({pe.x}, {pe.y}) does not export '{name}'")


def _exported_place(pe: PE, e: ir.ExportData) -> tuple[str, int]:
    """(symbol, element offset) that export `e` names on `pe` now: where its pointer
    variable points, for one the program changes at run time."""
    if not e.via:
        return e.symbol, e.offset
    addr = int(np.asarray(pe.flat[e.via]).reshape(-1)[0])
    width = pe.cls.symbol(e.symbol).dtype.nbytes
    for sym in pe.cls.symbols:
        base = pe.cls.addresses[sym.name]
        if sym.dtype.nbytes == width and base <= addr < base + sym.nbytes and \
                (addr - base) % width == 0:
            return sym.name, (addr - base) // width
    raise ProgramError(f"PE ({pe.x}, {pe.y}): '{e.name}' is pointer '{e.via}', which holds "
                       f"address {addr}, inside no array of {width}-byte elements")


def _store_bytes(pe: PE, name: str, raw: np.ndarray) -> None:
    """Write back the bytes `_export_bytes` gave for a cb16 symbol (the others are views)."""
    for e in pe.cls.exports:
        if isinstance(e, ir.ExportData) and e.name == name:
            symbol = _exported_place(pe, e)[0]
            if pe.cls.symbol(symbol).dtype is DType.cb16:
                pe.flat[symbol][:] = from_bits16(raw.view(np.uint16), DType.cb16)


def _put_word(raw: np.ndarray, start: int, word: int, bits: int) -> None:
    """Write a `bits`-bit word little-endian at byte `start` (the bytes past the symbol's end,
    the pad half of an odd 16-bit symbol, are dropped)."""
    for b in range(bits // 8):
        if start + b < raw.size:
            raw[start + b] = (word >> (8 * b)) & 0xFF


def _get_word(raw: np.ndarray, start: int, bits: int) -> int:
    """The `bits`-bit little-endian word at byte `start` (0 past the symbol's end)."""
    word = 0
    for b in range(bits // 8):
        if start + b < raw.size:
            word |= int(raw[start + b]) << (8 * b)
    return word


def host_index(kind: str, order: MemcpyOrder, i: int, j: int, k: int, w: int, h: int,
               l: int) -> int:
    """Spec 12.2: the host index of element k of ROI PE (column i, row j)."""
    row = order is MemcpyOrder.ROW_MAJOR
    if kind == "roi":
        return (j * w + i) * l + k if row else j + h * (i + w * k)
    if kind == "rowbcast":
        return j * l + k if row else j + h * k
    if kind == "colbcast":
        return i * l + k if row else i + w * k
    raise ValueError(f"unknown memcpy kind {kind!r}")
