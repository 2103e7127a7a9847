"""`cerebras.sdk.debug.debug_util` as wsejax provides it: the PEs' memory and `<debug>` traces,
read after a run.

    runner = SdkRuntime(name); runner.load(); runner.run(); ...; runner.stop()
    debug = debug_util(name)
    debug.read_trace(x, y, "trace")            # the records of <debug> buffer "trace"
    debug.get_symbol(x, y, "counts", np.uint32)

Coordinates are the fabric's (counted from its north-west corner, `--fabric-offsets`
included), as in the SDK. The memory read is the one the latest `SdkRuntime` of the same
compile output directory left in this process.
"""

from __future__ import annotations

import numpy as np

from wsejax import trace
from wsejax.errors import MemcpyError
from wsejax.runtime import loaded_runtime

__all__ = ["debug_util"]


class debug_util:  # noqa: N801 (the SDK's name)
    """The debug reader of compile output directory `bindir`."""

    def __init__(self, bindir, cmaddr: str | None = None, **kwargs):
        if cmaddr:
            raise MemcpyError(f"debug_util: cmaddr={cmaddr!r} names a real CS system; wsejax "
                              "only emulates the device (leave cmaddr unset)")
        self.bindir = bindir
        self._runtime = None

    def _device(self, what: str):
        if self._runtime is None:
            self._runtime = loaded_runtime(self.bindir)
        if self._runtime is None:
            raise MemcpyError(f"debug_util.{what}: no SdkRuntime of '{self.bindir}' has been "
                              "loaded in this process, so there is no device memory to read")
        return self._runtime

    def _pe(self, what: str, col: int, row: int) -> tuple[int, int]:
        """Program coordinates of fabric PE (col, row)."""
        rt = self._device(what)
        ox, oy = rt.program.fabric_offsets
        x, y = int(col) - ox, int(row) - oy
        if not (0 <= x < rt.program.width and 0 <= y < rt.program.height):
            raise MemcpyError(f"debug_util.{what}: fabric PE ({col}, {row}) is outside the "
                              f"program rectangle ({rt.program.width} x {rt.program.height} "
                              f"PEs from ({ox}, {oy}))")
        return x, y

    def get_symbol(self, col: int, row: int, symbol: str, dtype) -> np.ndarray:
        """Global `symbol` of fabric PE (col, row), as an array of `dtype`."""
        x, y = self._pe("get_symbol", col, row)
        return self._device("get_symbol").symbol_values("debug_util.get_symbol", x, y, symbol,
                                                        dtype)

    def get_symbol_rect(self, rect, symbol: str, dtype) -> np.ndarray:
        """Global `symbol` of every PE of `rect = ((col, row), (width, height))`, indexed
        `[col, row, ...]` from the rectangle's corner."""
        try:
            (col, row), (w, h) = rect
        except (TypeError, ValueError):
            raise MemcpyError(f"debug_util.get_symbol_rect: the rectangle is ((col, row), "
                              f"(width, height)), got {rect!r}") from None
        return np.stack([np.stack([self.get_symbol(col + i, row + j, symbol, dtype)
                                   for j in range(h)]) for i in range(w)])

    def read_trace(self, col: int, row: int, name: str) -> list:
        """The records of `<debug>` buffer `name` on fabric PE (col, row), in the order the PE
        wrote them: values and timestamps as Python numbers, strings as str."""
        x, y = self._pe("read_trace", col, row)
        rt = self._device("read_trace")
        what = "debug_util.read_trace"
        buffer = f"<debug>.{name}"
        slots = rt.engine.plan.symbol_slot
        if buffer not in slots[int(rt.program.class_of[y, x])]:
            if any(buffer in s for s in slots):
                return []           # this PE's program never writes that trace
            raise MemcpyError(f"{what}: no PE has a <debug> trace '{name}' (no import of "
                              "<debug> with that .key writes a record)")
        words = rt.symbol_values(what, x, y, buffer, np.uint16)
        count = int(rt.symbol_values(what, x, y, buffer + ".count", np.uint16)[0])
        return trace.decode(words, count)
