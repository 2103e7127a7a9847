"""Tasks and microthreads: task IDs, `@bind_*_task`, `@activate`/`@block`/`@unblock`,
`@get_ut_id` (wse3)."""

from __future__ import annotations

import dataclasses

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.builtins._registry import builtin, nargs, rule
from wsejax.csl.builtins.task_table import check_table
from wsejax.csl.values import (
    ColorVal,
    FnVal,
    QueueVal,
    RtHandleVal,
    RVal,
    Special,
    TaskIdVal,
    UtIdVal,
    describe,
)
from wsejax.fabric import data_task_args
from wsejax.frontend.fabric import (
    check_control_task_id,
    check_data_task_source,
    check_local_task_id,
    check_queue_free,
    check_unbound,
)
from wsejax.frontend.pe import PeBuilder
from wsejax.hardware import (
    MEMCPY_COLORS,
    ut_id_error,
)
from wsejax.types import DType


@builtin("get_local_task_id")
def _get_local_task_id(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if isinstance(v, RVal):
        return runtime_handle(c, node, env, v, "local")
    n = c.comptime_int(v, node.pos)
    return TaskIdVal("local", rule(c, node, check_local_task_id, n, c.arch, pos=node.pos))


def _bound_id(c, v, pos) -> int:
    """The task ID a task declaration is bound to."""
    ident = v.module.pe.task_decls.get((id(v.decl), id(v.module))) if v.module.pe else None
    if ident is None:
        raise c.error(f"task '{v.decl.name}' is not bound to a task ID here (bind it in a "
                      "comptime block that comes before this use)", pos)
    return ident


def _is_task(v) -> bool:
    return isinstance(v, FnVal) and isinstance(v.decl, ast.TaskDecl)


def _task_id(c, v, node, what: str, pos=None) -> int:
    """The task ID `v` names: a task ID, a bound task, or the data task of a color (wse2) or
    of an input queue (wse3)."""
    pos = pos or node.pos
    if isinstance(v, TaskIdVal):
        return v.id
    if isinstance(v, ColorVal):
        return rule(c, node, check_data_task_source, c.arch, "color", v.id, what, pos=pos)
    if isinstance(v, QueueVal):
        if v.kind != "input":
            raise c.error(f"{what}: {describe(v)} names no task on {c.arch}", pos)
        return rule(c, node, check_data_task_source, c.arch, "input queue", v.id, what,
                    pos=pos)
    if _is_task(v):
        return _bound_id(c, v, pos)
    named = "a color" if c.arch == "wse2" else "an input queue"
    raise c.error(f"{what} takes a task ID, a bound task or {named}, got {describe(v)}", pos)


def _local_id(c, v, node, what: str, pos=None) -> int:
    """The local task ID `v` names: a local task ID or a task bound as a local task."""
    pos = pos or node.pos
    if isinstance(v, TaskIdVal) and v.kind == "local":
        return v.id
    if _is_task(v):
        ident = _bound_id(c, v, pos)
        if v.module.pe.tasks[ident].kind == "local":
            return ident
        raise c.error(f"{what} takes a local task, but '{v.decl.name}' is bound as a "
                      f"{v.module.pe.tasks[ident].kind} task", pos)
    raise c.error(f"{what} takes a local task ID (@get_local_task_id(n)) or a local task, got "
                  f"{describe(v)}", pos)


def _binding_site(c, node, env) -> PeBuilder:
    pe = env.module.pe
    if pe is None or env.fn is not None:
        raise c.error(f"@{node.name} belongs in a top-level comptime block of a PE program",
                      node.pos)
    return pe


def _binding(c, node, env, kind: str, how: str):
    """`(PE program, task, task ID)` of `@bind_<kind>_task(task, id)`; `how` names the ID's
    builtin."""
    nargs(c, node, 2)
    pe = _binding_site(c, node, env)
    t = c.ev(node.args[0], env)
    ident = c.ev(node.args[1], env)
    if not _is_task(t):
        raise c.error(f"@{node.name} takes a task, got {describe(t)}", node.args[0].pos)
    if not isinstance(ident, TaskIdVal) or ident.kind != kind:
        raise c.error(f"@{node.name} takes a {kind} task ID ({how}), got {describe(ident)}",
                      node.args[1].pos)
    return pe, t, ident


def _library_task(c, pe, n: int, node) -> None:
    """A CslError where local task ID `n` is an entrypoint of the `<collectives_2d/pe>` this
    PE program imports (`wsejax.csl.library._collectives`); else `n` is the program's."""
    taken = getattr(c, "collective_tasks", {}).get(id(pe), {})
    if n in taken:
        at = taken[n]
        raise c.error(f"local task ID {n} is an entrypoint of <collectives_2d> (imported at "
                      f"{at.file}:{at.line}:{at.col}); the program may not bind it", node.pos)
    if not hasattr(c, "bound_tasks"):
        c.bound_tasks = {}
    c.bound_tasks.setdefault(id(pe), {}).setdefault(n, node.pos)


@builtin("bind_local_task")
def _bind_local_task(c, node, env):
    pe, t, ident = _binding(c, node, env, "local", "@get_local_task_id(n)")
    if t.decl.params:
        raise c.error(f"local task '{t.decl.name}' takes no parameters", t.decl.pos)
    check_table(c, pe, "local", ident.id, node)
    rule(c, node, check_unbound, "local", ident.id, pe.tasks, c.memcpy)
    _library_task(c, pe, ident.id, node)
    # bound now, its body lowered once the PE's comptime is done: a task may name itself
    # (`.unblock = self`) and tasks bound after it
    pe.task_decls[(id(t.decl), id(t.module))] = ident.id
    pe.tasks[ident.id] = ir.Task("", "local", ident.id)

    def lower(ident=ident.id, pos=node.pos):
        fname = c.specialize(t, t.module.env(), [], (), pos)
        pe.tasks[ident] = dataclasses.replace(pe.tasks[ident], fn=fname)

    pe.deferred.append(lower)
    return None


@builtin("get_control_task_id")
def _get_control_task_id(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if isinstance(v, RVal):
        return runtime_handle(c, node, env, v, "control")
    n = c.comptime_int(v, node.args[0].pos)
    return TaskIdVal("control", rule(c, node, check_control_task_id, n, pos=node.pos))


@builtin("bind_control_task")
def _bind_control_task(c, node, env):
    pe, t, ident = _binding(c, node, env, "control", "@get_control_task_id(n)")
    check_table(c, pe, "control", ident.id, node)
    rule(c, node, check_unbound, "control", ident.id, pe.tasks, c.memcpy)
    _bind_wavelet_task(c, pe, t, ident, "control", node)
    return None


def _bind_wavelet_task(c, pe: PeBuilder, t, ident, kind: str, node) -> None:
    """Bind task `t`, whose parameters split a wavelet's 32-bit payload (spec 5.1), to
    `ident` (a data task's `ir.Task` is the caller's to make)."""
    decl, fenv = t.decl, t.module.env()
    widths, stubs = [], []
    for p in decl.params:
        pt = c.eval_type(p.type, fenv)
        if p.comptime or not isinstance(pt, DType):
            raise c.error(f"{kind} task '{decl.name}': parameter '{p.name}' must be a runtime "
                          f"scalar (u32, i32, f32, u16, i16, f16), not {pt}", p.pos)
        widths.append(pt.bits)
        stubs.append(RVal(ir.Local("%stub", pt), pt))
    if widths or kind == "data":
        try:
            data_task_args(tuple(widths))
        except ValueError as err:
            raise c.error(f"{kind} task '{decl.name}': {err}", decl.pos) from None
    runtime, key = c.bind_params(t, stubs, node.pos, fenv)
    # bound now, its body lowered once the PE's comptime is done (it may name tasks bound
    # after it)
    pe.task_decls[(id(decl), id(t.module))] = ident.id

    def lower(ident=ident.id, pos=node.pos):
        fname = c.specialize(t, fenv, runtime, key, pos)
        pe.tasks[ident] = dataclasses.replace(pe.tasks[ident], fn=fname)

    pe.deferred.append(lower)
    if kind == "control":
        pe.tasks[ident.id] = ir.Task("", "control", ident.id)


@builtin("get_data_task_id")
def _get_data_task_id(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if c.arch == "wse3":
        if isinstance(v, RtHandleVal) and v.kind == "input_queue":
            # wse3: a data task ID is its input queue's number
            return RtHandleVal("data", v.expr)
        if not isinstance(v, QueueVal) or v.kind != "input":
            raise c.error(f"on wse3 @get_data_task_id takes an input queue "
                          f"(@get_input_queue(n)), got {describe(v)}", node.args[0].pos)
        return TaskIdVal("data", v.id)
    if isinstance(v, RtHandleVal) and v.kind == "color":
        # wse2: a data task ID is its color's number
        return RtHandleVal("data", v.expr)
    if isinstance(v, RVal):
        raise c.error(f"@get_data_task_id takes a color (@get_color(n)), got {describe(v)}",
                      node.args[0].pos)
    if isinstance(v, QueueVal):
        raise c.error(f"on wse2 @get_data_task_id takes a color, got {describe(v)}",
                      node.args[0].pos)
    color = c.coerce(v, Special("color"), node.args[0].pos, "@get_data_task_id")
    return TaskIdVal("data", color.id)


@builtin("bind_data_task")
def _bind_data_task(c, node, env):
    pe, t, ident = _binding(c, node, env, "data", "@get_data_task_id(...)")
    if c.memcpy and c.arch == "wse2" and ident.id in MEMCPY_COLORS:
        raise c.error(f"color {ident.id} is reserved by memcpy (colors 21, 22, 23): it cannot "
                      "carry a data task", node.args[1].pos)
    if c.memcpy and c.arch == "wse3":
        # on wse2 a data task ID is a color: only memcpy's colors are its own
        rule(c, node, check_queue_free, "input", ident.id, c.arch, pos=node.args[1].pos)
    check_table(c, pe, "data", ident.id, node)
    rule(c, node, check_unbound, "data", ident.id, pe.tasks, c.memcpy)
    _bind_wavelet_task(c, pe, t, ident, "data", node)
    color = ident.id
    if c.arch == "wse3":
        # the queue's color is filled in by finish_pe
        color = -1
        pe.queue_uses.append((("input", ident.id), None, node.pos,
                              f"data task '{t.decl.name}'"))
    pe.tasks[ident.id] = ir.Task("", "data", ident.id, color)
    return None


@builtin("activate", "block", "unblock")
def _task_ctl(c, node, env):
    nargs(c, node, 1)
    v = c.ev(node.args[0], env)
    if isinstance(v, UtIdVal) and node.name != "activate":
        return _ut_ctl(c, node, env, v)
    if isinstance(v, RtHandleVal):
        what = f"@{node.name}"
        ident = runtime_id(c, v, node, what, local=node.name == "activate")
        c.need_fn(env, node.pos, what).emit(ir.TaskCtl(node.name, ident))
        return None
    if node.name == "activate":
        ident = _local_id(c, v, node, "@activate")
    else:
        ident = _task_id(c, v, node, f"@{node.name}")
    pe = env.module.pe
    if pe is None:
        raise c.error(f"@{node.name} belongs in a PE program", node.pos)
    if env.fn is None:
        # at comptime: the state the PE starts in
        if node.name == "activate":
            pe.active.add(ident)
        elif node.name == "block":
            pe.blocked.add(ident)
        else:
            pe.blocked.discard(ident)
        return None
    env.fn.emit(ir.TaskCtl(node.name, ir.Const(ident, DType.u16)))
    return None


def _ut_ctl(c, node, env, ut: UtIdVal):
    """`@block(ut)` / `@unblock(ut)` of a microthread (wse3, spec 5.2): a blocked microthread
    suspends the operations that run on it (those whose `.ut_id` names it) until unblocked."""
    ident = _ut_expr(c, ut, node, f"@{node.name}")
    pe = env.module.pe
    if pe is None:
        raise c.error(f"@{node.name} belongs in a PE program", node.pos)
    if env.fn is None:
        if node.name == "block":
            pe.blocked_uts.add(ut.known)
        else:
            pe.blocked_uts.discard(ut.known)
        return None
    env.fn.emit(ir.TaskCtl(node.name, ident, "ut"))
    return None


def _ut_expr(c, ut, node, what: str) -> ir.Expr:
    """The u16 IR expression of microthread `ut` where an operation or `@block` names it."""
    problem = ut_id_error(c.arch, None)
    if problem:
        raise c.error(f"{what}: {problem}", node.pos)
    if not isinstance(ut, UtIdVal):
        raise c.error(f"{what} takes a ut_id (@get_ut_id(n)), got {describe(ut)}", node.pos)
    problem = ut_id_error(c.arch, ut.known, c.memcpy)
    if problem:
        raise c.error(f"{what}: {problem}", node.pos)
    return ir.Const(ut.known, DType.u16) if ut.known is not None else ut.id


@builtin("get_ut_id")
def _get_ut_id(c, node, env):
    """`@get_ut_id(n)` (wse3): microthread n, 0..7; a runtime n must be a u16 (unchecked)."""
    nargs(c, node, 1)
    problem = ut_id_error(c.arch, None)
    if problem:
        raise c.error(f"@get_ut_id: {problem}", node.pos)
    v = c.ev(node.args[0], env)
    if isinstance(v, RVal):
        if v.dtype is not DType.u16:
            raise c.error(f"@get_ut_id takes a u16 at run time, got {describe(v)} (convert "
                          "with @as)", node.args[0].pos)
        return UtIdVal(v.expr)
    n = c.comptime_int(v, node.args[0].pos)
    problem = ut_id_error(c.arch, n)
    if problem:
        raise c.error(f"@get_ut_id: {problem}", node.pos)
    return UtIdVal(n)


def runtime_handle(c, node, env, v: RVal, kind: str) -> RtHandleVal:
    """The handle `@get_color(n)` / `@get_*_task_id(n)` makes of a runtime n (spec 4: a u16,
    unchecked). n is read once, here: the handle keeps that number however n changes."""
    if v.dtype is not DType.u16:
        raise c.error(f"@{node.name} takes a u16 at run time, got {describe(v)} (convert with "
                      "@as)", node.args[0].pos)
    fn = c.need_fn(env, node.pos, f"@{node.name}")
    expr = v.expr
    if type(expr) is not ir.Const:
        name = env.module.pe.fresh("handle.")
        fn.emit(ir.LocalAssign(name, expr))
        expr = ir.Local(name, DType.u16)
    return RtHandleVal(kind, expr)


def runtime_id(c, v: RtHandleVal, node, what: str, local: bool) -> ir.Expr:
    """The u16 task ID expression of runtime handle `v` where `what` names a task by it: a
    local task ID where `local` (`@activate`, `.activate`), else any task ID, or on wse2 a
    color (its data task)."""
    if local and v.kind != "local":
        raise c.error(f"{what} takes a local task ID (@get_local_task_id(n)) or a local task, "
                      f"got {describe(v)}", node.pos)
    if v.kind == "color" and c.arch != "wse2":
        raise c.error(f"{what}: on {c.arch} a color names no task (block or unblock its "
                      "input queue)", node.pos)
    if v.kind == "output_queue" or v.kind == "input_queue" and c.arch != "wse3":
        raise c.error(f"{what}: {describe(v)} names no task on {c.arch}", node.pos)
    return v.expr
