"""Tasks: declaring and binding them, `activate`/`block`/`unblock`, and the `<control>`
payload library."""

from __future__ import annotations

import enum
import inspect

from wsejax import ir
from wsejax.dsl._context import (
    _body,
    _BodyBuilder,
    _program,
    _ProgramState,
    _rule,
    _stack,
    _top_level,
)
from wsejax.dsl._fabric import (
    Color,
    InputQueue,
    TaskId,
    UtId,
    _ut_expr,
)
from wsejax.dsl._functions import (
    FnRef,
)
from wsejax.errors import ProgramError
from wsejax.fabric import MAX_COMMANDS, NO_ENTRYPOINT, control_payload, data_task_args
from wsejax.frontend.fabric import check_data_task_source, check_unbound
from wsejax.types import (
    DType,
    u16,
)


def _task_signature(pyfn) -> tuple:
    """The parameter types of a task function (parameters with defaults are not parameters)."""
    try:
        sig = inspect.signature(pyfn, eval_str=True)
    except NameError as e:
        raise ProgramError(f"annotations of {pyfn.__name__}: {e}") from None
    types = []
    for p in sig.parameters.values():
        if p.default is not inspect.Parameter.empty:
            continue
        if not isinstance(p.annotation, DType):
            raise ProgramError(f"parameter '{p.name}' of task {pyfn.__name__} needs a type "
                               "annotation (a csl type): data task parameters split the "
                               "wavelet")
        types.append(p.annotation)
    return tuple(types)


def task(pyfn):
    """Declare a task of the current PE program (a decorator). A local task takes no
    parameters (bind it with `bind_local_task`); a data task takes the parts of its wavelet,
    annotated with their types (bind it with `bind_data_task`)."""
    types = _task_signature(pyfn)
    ref = _program().define_fn(pyfn, pyfn.__name__, types, None)
    ref.is_task = True
    return ref


def _bind_check(t, what: str) -> _ProgramState:
    pb = _top_level(what)
    if not isinstance(t, FnRef) or not getattr(t, "is_task", False):
        raise ProgramError(f"{what} takes a function declared with csl.task")
    return pb


def _check_task_id(ident, kind: str, what: str, how: str) -> None:
    if not isinstance(ident, TaskId) or ident.kind != kind:
        raise ProgramError(f"{what} takes a {kind} task ID ({how})")


def _bind(pb: _ProgramState, task: ir.Task) -> None:
    # every dsl program is compiled with memcpy
    _rule(check_unbound, task.kind, task.id, pb.tasks, True, error=ProgramError)
    pb.tasks[task.id] = task


def bind_local_task(t, ident: TaskId) -> None:
    """`@bind_local_task(task, id)` (at the top level of the PE program)."""
    pb = _bind_check(t, "bind_local_task")
    if t.param_types:
        raise ProgramError(f"local task {t.name} takes no parameters; a task with parameters "
                           "is a data task (csl.bind_data_task)")
    _check_task_id(ident, "local", "bind_local_task", "csl.get_local_task_id(n)")
    _bind(pb, ir.Task(t.name, "local", ident.id))


def bind_data_task(t, ident: TaskId) -> None:
    """`@bind_data_task(task, id)` (at the top level of the PE program): the task runs once
    per wavelet arriving on the ID's color (wse2) or input queue (wse3). Its parameters take
    one 32-bit value, one 16-bit value (the low half) or two 16-bit values (low, high half)."""
    pb = _bind_check(t, "bind_data_task")
    _check_task_id(ident, "data", "bind_data_task", "csl.get_data_task_id(...)")
    try:
        data_task_args(tuple(p.bits for p in t.param_types))
    except ValueError as e:
        raise ProgramError(f"bind_data_task: task {t.name}: {e}") from None
    queued = isinstance(ident.source, InputQueue)
    _bind(pb, ir.Task(t.name, "data", ident.id, -1 if queued else ident.id))
    if queued:
        pb.data_queues[ident.id] = ident.source.id   # its color is known once initialised


def bind_control_task(t, ident: TaskId) -> None:
    """`@bind_control_task(task, id)` (at the top level of the PE program): the task runs once
    per control wavelet reaching the PE whose payload names `id` (spec 6.6); its parameters
    split that payload as a data task's do, or it takes none."""
    pb = _bind_check(t, "bind_control_task")
    _check_task_id(ident, "control", "bind_control_task", "csl.get_control_task_id(n)")
    if t.param_types:
        try:
            data_task_args(tuple(p.bits for p in t.param_types))
        except ValueError as e:
            raise ProgramError(f"bind_control_task: task {t.name}: {e}") from None
    _bind(pb, ir.Task(t.name, "control", ident.id))


class control:
    """The `<control>` library: payloads of control wavelets (spec 6.6), as u32 numbers."""

    class opcode(enum.IntEnum):
        NOP = 0
        SWITCH_ADV = 1
        SWITCH_RST = 2
        TEARDOWN = 3

    MAX_CMDS = MAX_COMMANDS

    @staticmethod
    def _entry(ident) -> int:
        if ident is None:
            return NO_ENTRYPOINT
        if not isinstance(ident, TaskId) or ident.kind != "control":
            raise ProgramError("a control payload's entrypoint is a control task ID "
                               f"(csl.get_control_task_id(n)) or None, got {ident!r}")
        return ident.id

    @staticmethod
    def encode_control_task_payload(entrypoint: TaskId) -> int:
        """A payload that activates control task `entrypoint` on every PE it reaches."""
        return control_payload(control._entry(entrypoint))

    @staticmethod
    def encode_single_payload(cmd, ce_ignore: bool, entrypoint, data: int) -> int:
        """One command, an optional control task (None: none) and its 16-bit data."""
        return control_payload(control._entry(entrypoint), [(cmd, ce_ignore)]) | \
            (int(data) & 0xFFFF)

    @staticmethod
    def encode_payload(n: int, cmds, ce_ignore, ce_ignore_remaining: bool, entrypoint) -> int:
        """`n` commands with their ce_ignore bits; the rest NOPs with ce_ignore_remaining."""
        try:
            return control_payload(control._entry(entrypoint),
                                   list(zip(list(cmds)[:n], list(ce_ignore)[:n])),
                                   ce_ignore_remaining)
        except ValueError as e:
            raise ProgramError(str(e)) from None


def _task_id(v, what: str, *, local_only: bool) -> int:
    """The task ID meant by a TaskId, a bound task, or (unless `local_only`) the color (wse2)
    or input queue (wse3) of a data task."""
    if isinstance(v, FnRef):
        pb = _program()
        found = [t for t in pb.tasks.values() if t.fn == v.name]
        if not found:
            raise ProgramError(f"{what}: task {v.name} is not bound to a task ID")
        if local_only and found[0].kind != "local":
            raise ProgramError(f"{what} takes a local task; {v.name} is a data task")
        return found[0].id
    if isinstance(v, TaskId):
        if local_only and v.kind != "local":
            raise ProgramError(f"{what} takes a local task ID, got data task ID {v.id}")
        return v.id
    if not local_only and isinstance(v, (Color, InputQueue)):
        source = "color" if isinstance(v, Color) else "input queue"
        return _rule(check_data_task_source, _program().arch, source, v.id, what,
                     error=ProgramError)
    wanted = "a local task ID or a bound local task" if local_only else (
        "a task ID, a bound task, a color (wse2) or an input queue (wse3)")
    raise ProgramError(f"{what} takes {wanted}, got {v!r}")


def _task_ctl(op: str, ident) -> None:
    if isinstance(ident, UtId) and op != "activate":
        _ut_ctl(op, ident)
        return
    n = _task_id(ident, f"@{op}", local_only=op == "activate")
    stack = _stack()
    if stack and isinstance(stack[-1], _BodyBuilder):
        stack[-1].emit(ir.TaskCtl(op, ir.Const(n, u16)))
        return
    pb = _program()
    if op == "activate":
        pb.active.add(n)
    elif op == "block":
        pb.blocked.add(n)
    else:
        pb.blocked.discard(n)


def _ut_ctl(op: str, ut: UtId) -> None:
    """`block(ut)` / `unblock(ut)` of a microthread (wse3, spec 5.2): at the top level, its
    state at start-up; in a body, at run time."""
    e = _ut_expr(ut, f"@{op}")
    stack = _stack()
    if stack and isinstance(stack[-1], _BodyBuilder):
        stack[-1].emit(ir.TaskCtl(op, e, "ut"))
        return
    pb = _program()
    if op == "block":
        pb.blocked_uts.add(ut.id)
    else:
        pb.blocked_uts.discard(ut.id)


def activate(ident) -> None:
    """`@activate(id)` of a local task: at the top level, the task starts active; in a body,
    at run time."""
    _task_ctl("activate", ident)


def block(ident) -> None:
    """`@block(id)`: the task does not run until unblocked. A color (wse2) or input queue
    (wse3) names its data task ID; a microthread (`get_ut_id(n)`, wse3) suspends the
    operations that run on it."""
    _task_ctl("block", ident)


def unblock(ident) -> None:
    """`@unblock(id)`; a color (wse2) or input queue (wse3) names its data task ID; a
    microthread (wse3) resumes the operations that run on it."""
    _task_ctl("unblock", ident)


def unblock_cmd_stream() -> None:
    """`sys_mod.unblock_cmd_stream()`: let the host's next command proceed on this PE."""
    _body("unblock_cmd_stream").emit(ir.UnblockCmdStream())
