"""`@bind_rotating_tasks(main, alt, data_task_id, .{ .limit = L, .init = I })` (wse3, spec
5.1): a data task and an alternate task that take turns on the data task's wavelets.

`main` is bound as the data task of `data_task_id`; `alt` as a control task. A counter kept
per pair, a u16 that starts at `.init` (default 0), is compared with `.limit` each time
`main` would start, that is each time a wavelet of its input queue is taken:

* counter != limit: `main` runs and the counter goes up by one;
* counter == limit: `alt` runs instead and the counter goes back to 0.

So from `.init = 0` every (limit + 1)-th start runs `alt`, and `.init` only moves the first
turn of `alt` earlier (`.init = limit`: the first start runs it). Where the documentation is
silent wsejax chooses, and documents here:

* `alt` runs on the wavelet `main` would have run on: the wavelet is taken either way, and
  `alt`'s parameters split its payload as a data task's do (spec 5.1); an `alt` without
  parameters just drops it.
* The counter is reset to 0, not to `.init` (a reset to `.init` would make `.init` the same
  as a smaller `.limit`).
* At most two pairs: the first pair's `alt` is control task 0, the second's control task 1
  (each also runs, as a control task, for a control wavelet naming that ID). A control task
  run so does not move the counter.
* `.limit` is 0 to 65535 (0: every start runs `alt`), `.init` 0 to `.limit`.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import builtin, rule
from wsejax.csl.builtins.task_table import check_table
from wsejax.csl.builtins.tasks import _bind_wavelet_task, _binding_site, _is_task
from wsejax.csl.values import CNum, StructVal, TaskIdVal, TupleVal, describe
from wsejax.frontend.fabric import check_queue_free, check_unbound
from wsejax.types import DType

__all__ = ["ROTATION_COUNTER"]

ROTATION_COUNTER = "%rotation.count."   # + the data task ID: the pair's counter symbol
_MAX_PAIRS = 2
_LIMIT_MAX = 0xFFFF


@builtin("bind_rotating_tasks")
def _bind_rotating_tasks(c, node, env):
    if c.arch != "wse3":
        raise c.error(f"@bind_rotating_tasks is WSE-3 only (this program is for {c.arch})",
                      node.pos)
    if len(node.args) not in (3, 4):
        raise c.error("@bind_rotating_tasks takes (main task, alternate task, data task ID, "
                      f".{{ .limit, .init }}), got {len(node.args)} argument(s)", node.pos)
    pe = _binding_site(c, node, env)
    main, alt, ident = (c.ev(a, env) for a in node.args[:3])
    for k, t in enumerate((main, alt)):
        if not _is_task(t):
            raise c.error(f"@bind_rotating_tasks takes a task, got {describe(t)}",
                          node.args[k].pos)
    if not isinstance(ident, TaskIdVal) or ident.kind != "data":
        raise c.error("@bind_rotating_tasks takes a data task ID (@get_data_task_id(queue)) "
                      f"as its third argument, got {describe(ident)}", node.args[2].pos)
    if len(pe.rotations) >= _MAX_PAIRS:
        raise c.error("@bind_rotating_tasks: a PE program binds at most two rotating task "
                      "pairs", node.pos)
    limit, init = _options(c, node, env)
    alt_id = len(pe.rotations)
    _bind_main(c, pe, main, ident, node)
    check_table(c, pe, "control", alt_id, node)
    rule(c, node, check_unbound, "control", alt_id, pe.tasks, c.memcpy, pos=node.args[1].pos)
    _bind_wavelet_task(c, pe, alt, TaskIdVal("control", alt_id), "control", node)
    counter = ROTATION_COUNTER + str(ident.id)
    pe.symbols[counter] = ir.Symbol(counter, DType.u16, (), (init,))
    pe.rotations.append(ir.Rotation(ident.id, alt_id, limit, counter))
    return None


def _bind_main(c, pe, main, ident: TaskIdVal, node) -> None:
    """Bind `main` as the data task of `ident`, as `@bind_data_task` does."""
    if c.memcpy:
        rule(c, node, check_queue_free, "input", ident.id, c.arch, pos=node.args[2].pos)
    check_table(c, pe, "data", ident.id, node)
    rule(c, node, check_unbound, "data", ident.id, pe.tasks, c.memcpy, offset=1)
    _bind_wavelet_task(c, pe, main, ident, "data", node)
    # the queue's color is filled in by finish_pe
    pe.queue_uses.append((("input", ident.id), None, node.pos,
                          f"data task '{main.decl.name}'"))
    pe.tasks[ident.id] = ir.Task("", "data", ident.id, -1)


def _options(c, node, env) -> tuple[int, int]:
    """`(limit, init)` of the options struct."""
    if len(node.args) < 4:
        raise c.error("@bind_rotating_tasks needs its options .{ .limit = L } (and optionally "
                      ".init)", node.pos)
    pos = node.args[3].pos
    cfg = c.ev(node.args[3], env)
    if isinstance(cfg, TupleVal) and not cfg.items:
        cfg = StructVal({})
    if not isinstance(cfg, StructVal):
        raise c.error(f"@bind_rotating_tasks takes its options as a struct .{{ .limit, .init }}, "
                      f"got {describe(cfg)}", pos)
    unknown = sorted(set(cfg.fields) - {"limit", "init"})
    if unknown:
        raise c.error(f"@bind_rotating_tasks: unknown option .{unknown[0]} (it takes .limit "
                      "and .init)", pos)
    if "limit" not in cfg.fields:
        raise c.error("@bind_rotating_tasks: the options need .limit", pos)
    limit = _number(c, cfg.fields["limit"], "limit", _LIMIT_MAX, pos)
    init = _number(c, cfg.fields.get("init", 0), "init", limit, pos)
    return limit, init


def _number(c, v, name: str, top: int, pos) -> int:
    n = v.value if isinstance(v, CNum) else v
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= top:
        raise c.error(f"@bind_rotating_tasks: .{name} takes a comptime integer from 0 to {top}"
                      f"{' (the .limit)' if name == 'init' else ''}, got {describe(v)}", pos)
    return n
