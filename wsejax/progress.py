"""A progress line for long builds and runs on stderr: `layout: 312000/745500 tiles`,
`run: tick 1200 (0.8 s)`.

Shown only where the stream is a terminal (never in pipes, files or tests) unless forced; it
is rewritten in place (`\\r`) at most `RATE` times a second and cleared by `close`.

    p = Progress("layout", 745500, "tiles")
    for k in range(745500):
        p.update(k + 1)
    p.close()
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress", "RATE"]

# the most redraws a second
RATE = 4


class Progress:
    """A counter of `total` `unit`s under `label`, drawn on `stream` (default: stderr).

    `enabled`: None draws only where the stream is a terminal; True or False forces it.
    """

    def __init__(self, label: str, total: int, unit: str = "", stream=None,
                 enabled: bool | None = None):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self._last = 0.0
        self._width = 0

    def update(self, done: int, total: int | None = None) -> None:
        """`done` of the total (`total` replaces it where given); drawn where due."""
        if not self.enabled:
            return
        if total is not None:
            self.total = total
        now = time.monotonic()
        if now - self._last < 1 / RATE and done < self.total:
            return
        self._last = now
        self._draw(f"{self.label}: {done}/{self.total}" + (f" {self.unit}" if self.unit else ""))

    def show(self, text: str) -> None:
        """`label: text` in place of the counter (a run's tick count, say); drawn where due."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 1 / RATE:
            return
        self._last = now
        self._draw(f"{self.label}: {text}")

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = max(self._width, len(text))

    def close(self) -> None:
        """Clear the line, if one was drawn."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
