"""Queues: `@get_input_queue`, `@initialize_queue`, `@queue_flush`,
`@set_empty_queue_handler`, and `finish_pe`, which gives the fabric DSDs and data tasks of a
finished PE program their queue's color (on wse3 known only once `@initialize_queue` has run)."""

from __future__ import annotations

import dataclasses

from wsejax import ir
from wsejax.csl.builtins._registry import builtin, nargs, rule
from wsejax.csl.builtins.rpc import finish_rpc
from wsejax.csl.builtins.tasks import _binding_site, _is_task
from wsejax.csl.dsr_parts import finish_dsr_parts
from wsejax.csl.queue_status import fill_queue_status
from wsejax.csl.rewrite import rewrite
from wsejax.csl.values import (
    FnVal,
    PeColorVal,
    QueueVal,
    RVal,
    Special,
    StructVal,
    TupleVal,
    describe,
)
from wsejax.frontend.fabric import (
    check_color,
    check_initialised,
    check_queue,
    check_queue_free,
)
from wsejax.frontend.pe import PeBuilder


def _get_queue(kind):
    def impl(c, node, env):
        nargs(c, node, 1)
        v = c.ev(node.args[0], env)
        if isinstance(v, RVal):
            raise c.error(f"@{node.name} needs a comptime-known queue number", node.args[0].pos)
        n = c.comptime_int(v, node.args[0].pos)
        return QueueVal(kind, rule(c, node, check_queue, kind, n, c.arch, pos=node.pos))
    return impl


builtin("get_input_queue")(_get_queue("input"))
builtin("get_output_queue")(_get_queue("output"))


def _check_queue(c, q: QueueVal, pos) -> None:
    """Raise the CslError at `pos` where queue `q` is memcpy's."""
    if c.memcpy:
        rule(c, None, check_queue_free, q.kind, q.id, c.arch, pos=pos)


def _color_of(c, v, pos, what: str) -> int:
    color = c.coerce(v, Special("color"), pos, what)
    return rule(c, None, check_color, color.id, c.memcpy, what, pos=pos)


def _queue_color(c, v, pos, what: str):
    """The color of a fabric DSD or a queue: a number, or a per-PE color's table read (the
    engine picks each PE's queue by it)."""
    return v.expr if isinstance(v, PeColorVal) else _color_of(c, v, pos, what)


@builtin("initialize_queue")
def _initialize_queue(c, node, env):
    nargs(c, node, 1, 2)
    pe = _binding_site(c, node, env)
    q = c.ev(node.args[0], env)
    if not isinstance(q, QueueVal):
        raise c.error(f"@initialize_queue takes a queue (@get_input_queue(n) or "
                      f"@get_output_queue(n)), got {describe(q)}", node.args[0].pos)
    cfg = c.ev(node.args[1], env) if len(node.args) > 1 else StructVal({})
    if isinstance(cfg, TupleVal) and not cfg.items:
        cfg = StructVal({})
    if not isinstance(cfg, StructVal):
        raise c.error("@initialize_queue takes a config struct like .{ .color = c }",
                      node.args[1].pos)
    _check_queue(c, q, node.args[0].pos)
    if (q.kind, q.id) in pe.queues:
        raise c.error(f"{describe(q)} is initialised twice", node.pos)
    f = cfg.fields
    for k in f:
        if k not in ("color", "priority", "ctrl_table_id"):
            raise c.error(f"@initialize_queue: unknown option .{k}", node.pos)
    _QUEUE_OPTIONS[c.arch](c, q, f, node)
    if "priority" in f:
        _priority(c, f["priority"], node, "@initialize_queue: .priority")
    color = None
    if "color" in f:
        color = _queue_color(c, f["color"], node.pos, "@initialize_queue .color")
    elif q.kind == "input" or c.arch == "wse3":
        raise c.error(f"@initialize_queue: {describe(q)} needs a .color", node.pos)
    pe.queues[(q.kind, q.id)] = (color, node.pos)
    return None


def _wse2_queue_options(c, q: QueueVal, f: dict, node) -> None:
    if q.kind == "output" and f:
        raise c.error("on wse2 an output queue takes no config (its color comes from the "
                      "fabout_dsd)", node.pos)
    if "ctrl_table_id" in f:
        raise c.error("@initialize_queue: .ctrl_table_id exists on wse3 only", node.pos)


def _wse3_queue_options(c, q: QueueVal, f: dict, node) -> None:
    if "priority" in f:
        raise c.error("on wse3 @initialize_queue takes no .priority (give it on the "
                      "fabin_dsd)", node.pos)
    if "ctrl_table_id" in f:
        if q.kind != "input":
            raise c.error("@initialize_queue: .ctrl_table_id applies to input queues only",
                          node.pos)
        c.comptime_int(f["ctrl_table_id"], node.pos)
        c.ignored("@initialize_queue .ctrl_table_id", node.pos,
                  "control task tables are not modelled")


_QUEUE_OPTIONS = {"wse2": _wse2_queue_options, "wse3": _wse3_queue_options}


def _priority(c, v, node, what: str) -> None:
    """A `.priority` option, checked and ignored."""
    if not isinstance(v, StructVal):
        raise c.error(f"{what} takes .{{ .high = true }}, .{{ .medium = true }} or "
                      ".{ .low = true }", node.pos)
    c.ignored(".priority", node.pos, "task and queue priorities are not modelled")


@builtin("queue_flush")
def _queue_flush(c, node, env):
    nargs(c, node, 1)
    if c.arch != "wse3":
        raise c.error(f"@queue_flush exists on wse3 only (this program is compiled for "
                      f"{c.arch})", node.pos)
    q = c.ev(node.args[0], env)
    if not isinstance(q, QueueVal):
        raise c.error(f"@queue_flush takes an input or output queue, got {describe(q)}",
                      node.args[0].pos)
    fn = c.need_fn(env, node.pos, "@queue_flush")
    env.module.pe.flushed.setdefault((q.kind, q.id), node.pos)
    fn.emit(ir.QueueCtl("flush", q.kind, q.id))
    return None


@builtin("set_empty_queue_handler")
def _set_empty_queue_handler(c, node, env):
    nargs(c, node, 2)
    if c.arch != "wse3":
        raise c.error(f"@set_empty_queue_handler exists on wse3 only (this program is compiled "
                      f"for {c.arch})", node.pos)
    pe = _binding_site(c, node, env)
    f = c.ev(node.args[0], env)
    q = c.ev(node.args[1], env)
    if not isinstance(f, FnVal) or _is_task(f):
        raise c.error(f"@set_empty_queue_handler takes a function, got {describe(f)}",
                      node.args[0].pos)
    if f.decl.params:
        raise c.error(f"the empty-queue handler '{f.decl.name}' takes no parameters",
                      f.decl.pos)
    if not isinstance(q, QueueVal):
        raise c.error(f"@set_empty_queue_handler takes an input or output queue, got "
                      f"{describe(q)}", node.args[1].pos)
    if (q.kind, q.id) in pe.empty_handlers:
        raise c.error(f"{describe(q)} has an empty-queue handler already", node.pos)
    pe.empty_handlers[(q.kind, q.id)] = ("", node.pos)

    def lower(key=(q.kind, q.id), pos=node.pos):
        pe.empty_handlers[key] = (c.specialize(f, f.module.env(), [], (), pos), pos)

    pe.deferred.append(lower)
    return None


TEARDOWN_TASK = 29


def _finish_queue_config(c, pe: PeBuilder, colors: dict) -> dict:
    """The queues a program rebinds at run time and its teardown task: returns `colors` with
    each rebound queue's color a `QueueColor` (the colors it can take: its initial one, the
    comptime ones it is bound to, and for a runtime color every color the program routes),
    and binds task 29 to a function that calls the empty-queue handler of each flushed
    queue. Raises CslError."""
    colors = dict(colors)
    for key, (consts, runtime, pos) in sorted(pe.rebinds.items()):
        init = colors.get(key)
        name = f"{key[0]} queue {key[1]}"
        if init is None:
            raise c.error(f"{name} is bound to a color at run time but never initialised: give "
                          f"it its first color with @initialize_queue(@get_{key[0]}_queue("
                          f"{key[1]}), .{{ .color = ... }})", pos)
        if not isinstance(init, int):
            raise c.error(f"rebinding {name}, whose initial color differs between PEs, is not "
                          "supported yet", pos)
        more = set(consts) | (set(pe.routes) if runtime else set())
        colors[key] = ir.QueueColor(key[0], key[1], (init,) + tuple(sorted(more - {init})))
    for key, pos in pe.flushed.items():
        if key not in colors:
            raise c.error(f"@queue_flush of {key[0]} queue {key[1]}, which is never "
                          "initialised", pos)
    if pe.flushed or pe.empty_handlers or pe.teardown_handlers:
        if TEARDOWN_TASK in pe.tasks:
            pos = next(iter(pe.empty_handlers.values()))[1] if pe.empty_handlers \
                else next(iter(pe.teardown_handlers.values()))[1] if pe.teardown_handlers \
                else next(iter(pe.flushed.values()))
            raise c.error(f"task ID {TEARDOWN_TASK} (the teardown task) is bound, but "
                          "@queue_flush, @set_empty_queue_handler and @set_teardown_handler "
                          "need it", pos)
        body = tuple(ir.If(ir.QueueFlushed(*key), (ir.Call(fname, ()),))
                     for key, (fname, _) in sorted(pe.empty_handlers.items()))
        body += tuple(ir.If(ir.TeardownPending(color), (ir.Call(fname, ()),))
                      for color, (fname, _) in sorted(pe.teardown_handlers.items()))
        fname = pe.fresh("teardown")
        pe.functions[fname] = ir.Function(fname, (), None, body)
        pe.tasks[TEARDOWN_TASK] = ir.Task(fname, "local", TEARDOWN_TASK)
    pe.queue_colors = tuple((kind, n, color) for (kind, n), color in sorted(colors.items())
                            if color is not None)
    return colors


def finish_pe(c, pe: PeBuilder) -> None:
    """Check the queues used by fabric DSDs and data tasks against their `@initialize_queue`
    and give those that have no color of their own (a fabin_dsd without .fabric_color, and on
    wse3 every fabric DSD and data task) their queue's color, once the task bodies are
    lowered and the registers loaded with DSDs of several fixed parts split
    (`csl.dsr_parts`). Raises CslError."""
    # the task bodies (lowering one may bind nothing more, but run until none is left)
    while pe.deferred:
        pe.deferred.pop(0)()
    finish_rpc(c, pe)
    finish_dsr_parts(pe)
    init = {key: color for key, (color, _) in pe.queues.items()}
    colors = _finish_queue_config(c, pe, init)
    fill_queue_status(c.arch, pe, colors)
    late = _check_queue_uses(c, pe, init) or bool(pe.rebinds)
    if not late:
        return
    for k, t in pe.tasks.items():
        if t.kind == "data" and t.color < 0:
            pe.tasks[k] = dataclasses.replace(t, color=colors[("input", t.id)])
    fill = _QueueColors(c.arch, colors)
    pe.functions = {k: fill(f) for k, f in pe.functions.items()}
    pe.dsd_vars = {k: fill(d) for k, d in pe.dsd_vars.items()}


def _check_queue_uses(c, pe: PeBuilder, init: dict) -> bool:
    """Check each use of a queue against the color it is initialised with; whether some use
    takes its color from the queue (to be filled in). Raises CslError."""
    late = False
    for key, color, pos, what in pe.queue_uses:
        first = init.get(key)
        name = f"{key[0]} queue {key[1]}"
        late = late or color is None
        if first is None:
            if c.arch == "wse3":
                rule(c, None, check_initialised, what, *key, None,
                     f"on wse3 give it a color with @initialize_queue(@get_{key[0]}_queue("
                     f"{key[1]}), .{{ .color = ... }})", pos=pos)
            if color is None:
                raise c.error(f"{what} has no .fabric_color and its {name} is never given one: "
                              f"give it a .fabric_color or bind the queue with "
                              f"@initialize_queue(@get_{key[0]}_queue({key[1]}), "
                              ".{ .color = ... })", pos)
            continue
        if color is not None and color != first:
            raise c.error(f"{what} is on color {color}, but {name} is initialised with color "
                          f"{first}", pos)
    return late


class _QueueColors:
    """Rewrites IR so that each fabric DSD waiting for its queue's color (color < 0) has it;
    on wse3 a DSD on a queue rebound at run time takes the queue's colors, whatever it says."""

    def __init__(self, arch: str, colors: dict):
        self.arch = arch
        self.colors = colors

    def __call__(self, x):
        return rewrite(x, lambda n: self.fabric(n) if isinstance(n, (ir.FabIn, ir.FabOut))
                       else None)

    def fabric(self, x):
        key = ("input" if isinstance(x, ir.FabIn) else "output", x.queue)
        if isinstance(x.color, int) and x.color < 0:
            return dataclasses.replace(x, color=self.colors[key])
        if self.arch == "wse3" and isinstance(self.colors.get(key), ir.QueueColor):
            return dataclasses.replace(x, color=self.colors[key])
        return x
