"""The wsejax exception tree.

Every error wsejax raises on purpose is a `WsejaxError`. Each subclass also inherits the builtin
exception a Python user would expect (ValueError, RuntimeError, SyntaxError), so callers can catch
broadly (`except WsejaxError`) or precisely (`except MemcpyError`).

- `ProgramError`: a PE program written with the Python API is malformed (bad operand, unknown
  name, type mismatch). Raised while the program is traced.
- `CslError`: a CSL source is malformed; carries file, line, column and shows a caret.
- `LayoutError`: the layout is invalid (rectangle, fabric dims, memory budget, exports).
- `MemcpyError`: a host command was misused (unknown symbol, ROI, sizes, dtypes, ordering), or
  `SdkRuntime` cannot load its compile output directory (missing, foreign or damaged).
- `FabricFault`: a PE faulted at run time (a DSD address out of range, ...); names PE coordinates.
- `DeadlockError`: the device can make no progress while a host command waits; names stuck PEs.
- `CheckError`: in check mode, the engine and the reference interpreter disagree after a host
  command; names the command, the PE and the symbol.
"""

from __future__ import annotations

__all__ = [
    "CheckError",
    "CslError",
    "DeadlockError",
    "FabricFault",
    "LayoutError",
    "MemcpyError",
    "ProgramError",
    "WsejaxError",
]


class WsejaxError(Exception):
    """Base class of every error raised by wsejax."""


class ProgramError(WsejaxError, ValueError):
    """A PE program built with the Python API is malformed."""


class LayoutError(WsejaxError, ValueError):
    """The layout (rectangle, fabric, memory budget, exported names) is invalid."""


class MemcpyError(WsejaxError, ValueError):
    """A host command (memcpy, launch, ...) was called with arguments that cannot work."""


class CslError(WsejaxError, SyntaxError):
    """A CSL source is malformed. `str()` shows `file:line:col`, the source line and a caret."""

    def __init__(self, message: str, file: str = "<csl>", line: int = 0, col: int = 0,
                 source_line: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        self.source_line = source_line
        super().__init__(self._render())

    def _render(self) -> str:
        head = f"{self.file}:{self.line}:{self.col}: error: {self.message}"
        if self.source_line is None:
            return head
        caret = " " * max(self.col - 1, 0) + "^"
        return f"{head}\n{self.source_line}\n{caret}"

    def __str__(self) -> str:
        return self._render()


def _format_pes(pes: list[tuple[int, int]], limit: int = 16) -> str:
    shown = ", ".join(f"({x}, {y})" for x, y in pes[:limit])
    more = len(pes) - limit
    return shown + (f" and {more} more" if more > 0 else "")


class FabricFault(WsejaxError, RuntimeError):
    """A PE faulted while running. `pes` lists `(x, y)` program-rectangle coordinates."""

    def __init__(self, message: str, pes: list[tuple[int, int]]):
        self.pes = list(pes)
        super().__init__(f"{message} at PE {_format_pes(self.pes)}")


class DeadlockError(WsejaxError, RuntimeError):
    """The device cannot make progress while a host command waits. `pes` lists stuck `(x, y)`."""

    def __init__(self, message: str, pes: list[tuple[int, int]], details: str = ""):
        self.pes = list(pes)
        self.details = details
        text = f"{message}; stuck PEs: {_format_pes(self.pes)}"
        if details:
            text += "\n" + details
        super().__init__(text)


class CheckError(WsejaxError, RuntimeError):
    """Check mode (`SdkRuntime(check=True)`, `WSEJAX_CHECK=1`): the engine and the reference
    interpreter disagree, or the program cannot be checked."""
