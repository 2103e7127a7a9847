"""Tasks of one tile class that start one lowered body between them.

Contract. `shared_bodies(pe)` partitions the tasks of PE program `pe` (in task order, each
group at the place of its first task) so that the fabric loop lowers the body of a group once,
on the lanes of all its tasks, instead of once per task. Two tasks share a body when

- they are bound to one function, or
- their functions are trampolines equal but for their names: same parameters, and a body of
  calls only, whose arguments are constants or the parameters (the common
  `task a() void { f(); }`, `task b() void { f(); }`); what they call sees the same frames,
  and what can fault or print in it names the callee, never the task's function;

and nothing they reach prints (`<simprint>` writes the lines of one body's PEs in lane order,
while separate bodies write the PEs of one task before those of the next).

A PE starts at most one task a tick, so the lanes of the tasks of a group are disjoint; the
body lowered on their union, with each lane's arguments, does on each lane what that lane's
task would have done. Each group is `(fn, tasks)`: the function to start and its tasks.
Rotating data tasks (`@bind_rotating_tasks`) keep a group of their own.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from wsejax import ir

__all__ = ["merge_starts", "shared_bodies"]


def shared_bodies(pe: ir.PeProgram) -> list[tuple[str, tuple[ir.Task, ...]]]:
    """The tasks of `pe` grouped by the body they start (see the module docstring)."""
    rotating = {r.data for r in pe.rotations}
    names = {f.name for f in pe.functions}
    groups: dict = {}
    for t in pe.tasks:
        key = ("alone", t.id) if t.id in rotating or _prints(pe, names, t.fn, set()) \
            else _body_key(pe.function(t.fn))
        groups.setdefault(key, []).append(t)
    return [(ts[0].fn, tuple(ts)) for ts in groups.values()]


def _body_key(f: ir.Function):
    """What two tasks' functions must share to share a lowered body."""
    if not _trampoline(f):
        return ("fn", f.name)
    # parameters by position: the front end names each function's parameters apart
    at = {name: k for k, (name, _) in enumerate(f.params)}
    calls = tuple((s.fn, tuple(("param", at[a.name]) if type(a) is ir.Local else a
                               for a in s.args)) if type(s) is ir.Call else s
                  for s in f.body)
    return ("calls", tuple(t for _, t in f.params), f.ret, calls)


def _trampoline(f: ir.Function) -> bool:
    """Is `f`'s body only calls, with constants or `f`'s parameters as arguments?"""
    params = {name for name, _ in f.params}
    for s in f.body:
        if type(s) is ir.Return and s.value is None:
            continue
        if type(s) is not ir.Call:
            return False
        for a in s.args:
            if not (type(a) is ir.Const or (type(a) is ir.Local and a.name in params)):
                return False
    return bool(f.body)


def _prints(pe: ir.PeProgram, names: set, fn: str, seen: set) -> bool:
    """Does function `fn`, or any function it names (`names`: the functions of `pe`),
    print?"""
    if fn in seen:
        return False
    seen.add(fn)
    return _node_prints(pe, names, pe.function(fn).body, seen)


def _node_prints(pe: ir.PeProgram, names: set, node, seen: set) -> bool:
    if isinstance(node, ir.Print):
        return True
    if isinstance(node, tuple):
        return any(_node_prints(pe, names, item, seen) for item in node)
    if isinstance(node, str):
        # any string naming a function: calls, `@map` callbacks, anything else
        return node in names and _prints(pe, names, node, seen)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return any(_node_prints(pe, names, getattr(node, f.name), seen)
                   for f in dataclasses.fields(node))
    return False


def merge_starts(starts: list) -> tuple:
    """`(mask, args)` of a group's body from `(mask, args)` per task of it: the union of the
    masks and, on each lane, the arguments of its task (`[H, W]` masks and arguments)."""
    mask, args = starts[0]
    for more, more_args in starts[1:]:
        args = tuple(jnp.where(more, b, a) for a, b in zip(args, more_args))
        mask = mask | more
    return mask, args
