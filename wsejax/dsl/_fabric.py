"""Colors, queues, microthreads and task IDs of the Python API, checked for the program's
architecture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsejax import ir
from wsejax.dsl._context import (
    _arch,
    _error,
    _program,
    _rule,
    _top_level,
)
from wsejax.dsl._values import (
    _ExprLike,
    _PerPeColor,
)
from wsejax.errors import ProgramError
from wsejax.frontend.fabric import (
    check_color,
    check_control_task_id,
    check_local_task_id,
    check_queue,
    check_queue_free,
)
from wsejax.hardware import (
    ut_id_error,
)
from wsejax.types import (
    u16,
)

# Colors, queues and tasks


@dataclass(frozen=True)
class Color:
    """A routable color (`@get_color(n)`), 0..23. Where a color is expected, a plain integer
    is accepted too."""

    id: int


@dataclass(frozen=True)
class InputQueue:
    """An input queue (`@get_input_queue(n)`)."""

    id: int


@dataclass(frozen=True)
class OutputQueue:
    """An output queue (`@get_output_queue(n)`)."""

    id: int


@dataclass(frozen=True)
class UtId:
    """A microthread ID (`@get_ut_id(n)`, wse3): `id` is its number, 0..7, or the IR u16
    expression of a runtime one."""

    id: int | ir.Expr


def get_ut_id(n) -> UtId:
    """`@get_ut_id(n)` (wse3 only): microthread n, 0 to 7. A runtime n must be a u16 (its
    value is not checked). An operation names the microthread it runs on with `ut_id=`; two
    operations running at once must not name the same one (a device fault); `block(ut)`
    suspends the operations that name it until `unblock(ut)`."""
    arch = _program().arch
    problem = ut_id_error(arch, None)
    if problem:
        raise ProgramError(f"get_ut_id: {problem}")
    if isinstance(n, _ExprLike):
        if n.dtype is not u16:
            raise ProgramError(f"get_ut_id takes a u16 at run time, got a {n.dtype} (convert "
                               "with csl.as_)")
        return UtId(n._ir())
    n = _comptime_int(n, "get_ut_id")
    problem = ut_id_error(arch, n)
    if problem:
        raise ProgramError(f"get_ut_id: {problem}")
    return UtId(n)


def _ut_expr(v, what: str) -> ir.Expr:
    """The u16 IR expression of microthread `v` where an operation or `block` names it."""
    arch = _program().arch
    problem = ut_id_error(arch, None)
    if problem:
        raise ProgramError(f"{what}: {problem}")
    if not isinstance(v, UtId):
        raise ProgramError(f"{what} takes a microthread ID (csl.get_ut_id(n)), got {v!r}")
    n = v.id if isinstance(v.id, int) else None
    # every dsl program is compiled with memcpy
    problem = ut_id_error(arch, n, memcpy=True)
    if problem:
        raise ProgramError(f"{what}: {problem}")
    return ir.Const(n, u16) if n is not None else v.id

def _comptime_int(v, what: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise _error()(f"{what} takes a comptime integer, got {v!r}")
    return int(v)


def get_color(n: int) -> Color:
    """`@get_color(n)`: color n, 0 to 23."""
    return Color(_rule(check_color, _comptime_int(n, "get_color"), False))


def _queue_color(v, what: str) -> int | ir.PeValue:
    """The color of a fabric DSD or a queue: a number, or a per-PE color's table read (the
    engine picks each PE's queue by it)."""
    if isinstance(v, _PerPeColor):
        return ir.PeValue(v.table, u16)
    return _color(v, what)


def _color(v, what: str, err=None) -> int:
    """The number of a color given as a Color or an integer; memcpy's colors are refused."""
    err = err or _error()
    if isinstance(v, _PerPeColor):
        raise err(f"{what}: the per-PE color {v.table} is used where its number is needed")
    if isinstance(v, Color):
        n = v.id
    elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        n = int(v)
    else:
        raise err(f"{what} takes a color (csl.get_color(n)), got {v!r}")
    # every dsl program is compiled with memcpy
    return _rule(check_color, n, True, what, error=err)


def get_input_queue(n: int) -> InputQueue:
    """`@get_input_queue(n)`: input queues are 0 to 7."""
    n = _comptime_int(n, "get_input_queue")
    return InputQueue(_rule(check_queue, "input", n, _arch(), error=ProgramError))


def get_output_queue(n: int) -> OutputQueue:
    """`@get_output_queue(n)`: output queues are 0 to 5 on wse2, 0 to 7 on wse3."""
    n = _comptime_int(n, "get_output_queue")
    return OutputQueue(_rule(check_queue, "output", n, _arch(), error=ProgramError))


def _queue_key(q, what: str) -> tuple[str, int]:
    """("input" | "output", id) of a queue the program may use: memcpy's are refused (spec 4)."""
    if not isinstance(q, (InputQueue, OutputQueue)):
        raise ProgramError(f"{what} takes a queue (csl.get_input_queue(n) or "
                           f"csl.get_output_queue(n)), got {q!r}")
    kind = "input" if isinstance(q, InputQueue) else "output"
    # every dsl program is compiled with memcpy
    _rule(check_queue_free, kind, q.id, _arch() or "wse2", what, error=ProgramError)
    return kind, q.id

def initialize_queue(q, *, color=None, priority: str | None = None) -> None:
    """`@initialize_queue(q, .{ .color = c, .priority = ... })`: bind a queue to its color,
    once per queue, at the top level of the PE program.

    wse2: an input queue needs `color` and may set `priority` ("high", "medium" or "low"; the
    emulator does not model priorities); an output queue takes no config (its color comes from
    the fabout DSD). wse3: both kinds need `color`; no `priority`.
    """
    pb = _top_level("initialize_queue")
    key = _queue_key(q, "initialize_queue")
    name = f"{key[0]} queue {key[1]}"
    if key in pb.queues:
        raise ProgramError(f"initialize_queue: {name} is initialised twice")
    if priority is not None:
        if pb.arch != "wse2" or key[0] != "input":
            raise ProgramError(f"initialize_queue: {name} takes no priority on {pb.arch} (only "
                               "wse2 input queues have one)")
        if priority not in ("high", "medium", "low"):
            raise ProgramError(f"initialize_queue: priority must be 'high', 'medium' or 'low', "
                               f"got {priority!r}")
    if pb.arch == "wse2" and key[0] == "output":
        if color is not None:
            raise ProgramError(f"initialize_queue: on wse2 {name} takes no config; its color "
                               "comes from the fabout_dsd")
        pb.queues[key] = (None, None)
        return
    if color is None:
        raise ProgramError(f"initialize_queue: {name} needs a color "
                           "(csl.initialize_queue(q, color=c))")
    c = _queue_color(color, f"initialize_queue of {name}")
    if key[0] == "input":
        other = [k for k, (v, _) in pb.queues.items() if k[0] == "input" and v == c]
        if other:
            raise ProgramError(f"initialize_queue: color {c} is bound to input queue "
                               f"{other[0][1]} already; it cannot also feed {name}")
    pb.queues[key] = (c, None)


@dataclass(frozen=True)
class TaskId:
    """A task ID: `kind` "local" (`@get_local_task_id(n)`), "data"
    (`@get_data_task_id(c | q)`; `source` is that Color or InputQueue) or "control"
    (`@get_control_task_id(n)`)."""

    kind: str
    id: int
    source: Color | InputQueue | None = None


def get_local_task_id(n: int) -> TaskId:
    """`@get_local_task_id(n)`: local task IDs are 0..30 on wse2, 8..30 on wse3."""
    n = _comptime_int(n, "get_local_task_id")
    return TaskId("local", _rule(check_local_task_id, n, _arch(), error=ProgramError))


def get_control_task_id(n: int) -> TaskId:
    """`@get_control_task_id(n)`: control task IDs are 0..63."""
    n = _comptime_int(n, "get_control_task_id")
    return TaskId("control", _rule(check_control_task_id, n, error=ProgramError))


def get_data_task_id(source) -> TaskId:
    """`@get_data_task_id(c)` on wse2 (the ID is the color's number) or
    `@get_data_task_id(q)` on wse3 (the ID is the input queue's number)."""
    arch = _program().arch
    if arch == "wse2":
        if isinstance(source, InputQueue):
            raise ProgramError("get_data_task_id: on wse2 a data task ID comes from a color, "
                               "not an input queue")
        c = _color(source, "get_data_task_id")
        return TaskId("data", c, Color(c))
    if not isinstance(source, InputQueue):
        raise ProgramError(f"get_data_task_id: on wse3 a data task ID comes from an input "
                           f"queue (csl.get_input_queue(n)), got {source!r}")
    _queue_key(source, "get_data_task_id")
    return TaskId("data", source.id, source)
