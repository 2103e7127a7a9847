"""A progress line on stderr for long fabric runs, shown only when stderr is a terminal.

Contract. `start(label)` begins a line, `update(text)` rewrites it as `label: text` (at most
`REFRESH_S` apart; earlier updates are dropped), `done()` clears it. Nothing is written when
the stream is not a terminal (`enabled()`), so that logs and tests see no output; callers
use `enabled()` to decide whether to run in pieces at all.
"""

from __future__ import annotations

import sys
import time

__all__ = ["REFRESH_S", "done", "enabled", "start", "update"]

REFRESH_S = 0.25        # the shortest time between two refreshes of the line

_line = {"label": None, "stream": None, "shown": 0.0, "width": 0}


def _stream():
    return sys.stderr


def enabled(stream=None) -> bool:
    """Whether progress is shown: `stream` (default stderr) is a terminal."""
    stream = _stream() if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:      # a closed stream
        return False


def start(label: str, stream=None) -> None:
    """Begin a progress line named `label` (on `stream`, default stderr)."""
    _line.update(label=label, stream=_stream() if stream is None else stream,
                 shown=time.monotonic(), width=0)


def update(text: str) -> None:
    """Show `label: text`, unless the line was refreshed less than `REFRESH_S` ago."""
    stream = _line["stream"]
    if _line["label"] is None or not enabled(stream):
        return
    now = time.monotonic()
    if now - _line["shown"] < REFRESH_S:
        return
    _line["shown"] = now
    line = f"{_line['label']}: {text}"
    stream.write("\r" + line.ljust(_line["width"]))
    stream.flush()
    _line["width"] = max(_line["width"], len(line))


def done() -> None:
    """Clear the line, if one was shown."""
    stream = _line["stream"]
    if _line["width"] and stream is not None:
        stream.write("\r" + " " * _line["width"] + "\r")
        stream.flush()
    _line.update(label=None, stream=None, width=0)
