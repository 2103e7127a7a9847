"""The tracing context of the Python API: the stack of builders (a layout, a PE program, the
function bodies being traced) and the names of DSD kinds and router ports."""

from __future__ import annotations

import threading

from wsejax import ir
from wsejax.errors import LayoutError, ProgramError
from wsejax.frontend import RuleError
from wsejax.frontend.layout import LayoutRecorder
from wsejax.frontend.pe import PeBuilder

mem1d_dsd = "mem1d_dsd"
mem4d_dsd = "mem4d_dsd"
fabin_dsd = "fabin_dsd"
fabout_dsd = "fabout_dsd"
_MEMORY_DSDS = (mem1d_dsd, mem4d_dsd)
_FABRIC_DSDS = (fabin_dsd, fabout_dsd)

# router ports, as `wsejax.routes.DIRECTIONS` names them
NORTH, SOUTH, EAST, WEST, RAMP = "NORTH", "SOUTH", "EAST", "WEST", "RAMP"
_local = threading.local()


def _stack() -> list:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def _current(kind):
    for b in reversed(_stack()):
        if isinstance(b, kind):
            return b
    return None


def _program() -> _ProgramState:
    b = _current(_ProgramState)
    if b is None:
        raise ProgramError("this call belongs inside a PE program function")
    return b


def _body(what: str) -> _BodyBuilder:
    b = _stack()[-1] if _stack() else None
    if not isinstance(b, _BodyBuilder):
        raise ProgramError(f"{what} is a runtime operation: call it inside a function body "
                           "(decorated with csl.fn)")
    return b


def _error():
    """The error class of the current context: LayoutError in a layout, else ProgramError."""
    stack = _stack()
    return LayoutError if stack and isinstance(stack[-1], _LayoutBuilder) else ProgramError


def _rule(check, *args, error=None):
    """`check(*args)`, a front-end rule; its RuleError becomes `error` (by default the error
    class of the context, see `_error`)."""
    try:
        return check(*args)
    except RuleError as err:
        raise (error or _error())(str(err)) from None


def _arch() -> str | None:
    pb = _current(_ProgramState)
    return pb.arch if pb is not None else None


def _top_level(what: str) -> _ProgramState:
    pb = _program()
    if _stack()[-1] is not pb:
        raise ProgramError(f"{what} belongs at the top level of the PE program (comptime)")
    return pb


class _ProgramState(PeBuilder):
    """A PE program being traced: the collector's tables (`PeBuilder`) and what tracing adds.

    `queues` maps ("input" | "output", n) to (color | None, None): the API has no source
    positions. `fifo_hooks` keeps each FIFO's hooks as given, resolved once every task is
    bound (`build`)."""

    def __init__(self, name: str, arch: str = "wse2"):
        super().__init__(name)
        self.arch = arch
        self.fns: dict = {}                            # name -> FnRef, in declaration order
        self.traced: dict[str, ir.Function] = {}
        self.data_queues: dict[int, int] = {}          # wse3 data task ID -> its input queue
        self.fifo_hooks: dict[str, tuple] = {}         # fifo name -> (activate_push, activate_pop)
        self.fifo_actions: dict[str, tuple] = {}       # fifo name -> (empty, full action)
        self.counter = -1                              # local names count from 0

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ProgramError(f"a global needs a non-empty string name, got {name!r}")
        if name in self.symbols or name in self.dsd_vars or name in self.fns:
            raise ProgramError(f"'{name}' is declared twice")


class _BodyBuilder:
    """Collects the statements of one function body while it is traced."""

    def __init__(self, program: _ProgramState, fn_name: str, ret):
        self.program = program
        self.fn_name = fn_name
        self.ret = ret
        self._blocks: list[list] = [[]]

    def emit(self, stmt) -> None:
        self._blocks[-1].append(stmt)

    def last(self):
        return self._blocks[-1][-1] if self._blocks[-1] else None

    def drop_last(self) -> None:
        self._blocks[-1].pop()

    def push(self) -> None:
        self._blocks.append([])

    def pop(self) -> tuple:
        return tuple(self._blocks.pop())

    def fresh(self, prefix: str) -> str:
        return self.program.fresh(prefix)


class _LayoutBuilder(LayoutRecorder):
    """A layout function being run: `tiles[(x, y)]` is (program, params), `routes[(x, y,
    color)]` is (rx, tx), or (rx, tx, swap_x, swap_y) with color swapping."""

    arch: str = "wse2"

    def __init__(self):
        super().__init__()
        self.switches: dict = {}    # (x, y, color) -> ir.Switches
        self.filters: dict = {}     # (x, y, color) -> ir.Filter


def _layout() -> _LayoutBuilder:
    b = _current(_LayoutBuilder)
    if b is None:
        raise LayoutError("layout calls belong inside the layout function given to csl.compile")
    return b
