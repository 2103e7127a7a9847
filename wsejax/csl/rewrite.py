"""Rewriting a PE program's IR after it is built: a node is rebuilt only where a part of it
changes, so what a rewrite leaves alone stays the same object."""

from __future__ import annotations

import dataclasses

__all__ = ["rewrite"]


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
