"""The call graph of a PE program and its cycles: the functions that recurse.

A function recurses when it calls itself, directly or through others: it then belongs to a
cycle of the call graph, a strongly connected component whose functions all reach one another.
Both interpreters keep a call stack for such a function and bound its depth by
`MAX_RECURSION_DEPTH`; a program without cycles runs as before, every call expanded in place.
The edges are the calls a body makes as statements, as the value of a local or as the value it
returns (the front end gives every call a place of its own; a `@map` callback is no edge).
"""

from __future__ import annotations

from wsejax import ir

__all__ = ["MAX_RECURSION_DEPTH", "call_cycles", "callees"]

# Activations of one cycle's functions a PE may hold at once. The stack shares the PE's 48 KiB
# with the program's code and data; a frame holds at least a return address, a saved frame
# pointer and a few spilled registers (16 bytes or more), so 256 frames take 4 KiB or more, a
# twelfth of the memory: a deeper recursion would crowd out the data of most programs. The
# engine also keeps a lane array per frame slot and local, so the bound sizes its state.
MAX_RECURSION_DEPTH = 256


def callees(f: ir.Function) -> set[str]:
    """The functions that `f`'s body calls directly."""
    out = set()
    for s in ir.walk_stmts(f.body):
        if type(s) is ir.Call:
            out.add(s.fn)
        elif type(s) in (ir.LocalAssign, ir.Return, ir.ExprStmt) and \
                type(s.value) is ir.CallExpr:
            out.add(s.value.fn)
    return out


def call_cycles(pe: ir.PeProgram) -> dict[str, frozenset]:
    """Each function of `pe` that belongs to a cycle of calls, and the functions of its cycle
    (computed once per program)."""
    return ir._cached(pe, "_call_cycles", lambda: _cycles(pe))


def _cycles(pe: ir.PeProgram) -> dict[str, frozenset]:
    edges = {f.name: callees(f) & {g.name for g in pe.functions} for f in pe.functions}
    reach = {name: _reachable(edges, name) for name in edges}
    return {name: frozenset(g for g in reach[name] if name in reach[g])
            for name in edges if name in reach[name]}


def _reachable(edges: dict, start: str) -> set:
    """The functions a call of `start` reaches (`start` itself only through a cycle)."""
    seen: set = set()
    todo = list(edges[start])
    while todo:
        g = todo.pop()
        if g not in seen:
            seen.add(g)
            todo.extend(edges.get(g, ()))
    return seen
