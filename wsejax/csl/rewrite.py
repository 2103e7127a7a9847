"""Rewriting a PE program's IR after it is built: a node is rebuilt only where a part of it
changes, so what a rewrite leaves alone stays the same object."""

from __future__ import annotations

import dataclasses

from wsejax import ir

__all__ = ["expand", "rewrite"]


def rewrite(x, leaf):
    """`x` with each node `n` for which `leaf(n)` is not None replaced by it; the nodes and
    tuples holding a replaced node are rebuilt around it."""
    new = leaf(x)
    if new is not None:
        return new
    if isinstance(x, tuple):
        items = tuple(rewrite(v, leaf) for v in x)
        return items if any(a is not b for a, b in zip(items, x)) else x
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        parts = {f.name: rewrite(getattr(x, f.name), leaf) for f in dataclasses.fields(x)}
        if any(parts[k] is not getattr(x, k) for k in parts):
            return dataclasses.replace(x, **parts)
    return x


def expand(body: tuple, stmt) -> tuple:
    """Statements `body` with each statement `s` for which `stmt(s)` is not None replaced by
    the statements it gives (a tuple, not looked into again); the bodies of ifs and loops
    are looked into."""
    out = []
    for s in body:
        new = stmt(s)
        out.extend((_inside(s, stmt),) if new is None else new)
    return body if len(out) == len(body) and all(a is b for a, b in zip(out, body)) \
        else tuple(out)


def _inside(s, stmt):
    """Statement `s` with the bodies it holds (of an if or a loop) expanded by `stmt`."""
    fields = _BODIES.get(type(s), ())
    parts = {f: expand(getattr(s, f), stmt) for f in fields}
    if all(parts[f] is getattr(s, f) for f in fields):
        return s
    return dataclasses.replace(s, **parts)


_BODIES = {ir.If: ("then", "orelse"), ir.For: ("body",), ir.While: ("body", "cont")}
