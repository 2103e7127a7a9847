"""Per-PE values of tile groups: which params of the tiles running one file may become per-PE
values (a runtime table per param) or per-PE colors, and the runtime type they take.

Tiles whose params differ only by numbers, bools and colors can share a tile class
(`wsejax.tile_classes`) reading those values from per-PE tables.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING

import numpy as np

from wsejax.csl import ast
from wsejax.csl.env import Module
from wsejax.csl.values import CNum, ColorVal, Special
from wsejax.errors import CslError
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.csl.comptime import Compiler

__all__ = ["VALUES", "color_ids", "per_pe_values"]


# param values that may become per-PE values (bool is an int)
VALUES = (int, float, CNum, ColorVal)


def _declared_type(c: Compiler, path: str, name: str):
    """The type param `name` of file `path` declares, None where it declares none, or the
    CslError class where its type cannot be evaluated on its own."""
    file = c.parse(pathlib.Path(path))
    decl = next((d for d in file.decls if isinstance(d, ast.ParamDecl) and d.name == name), None)
    if decl is None or decl.type is None:
        return None
    try:
        return c.eval_type(decl.type, Module(c, file, {}, "", None, "probe").env())
    except CslError:
        return CslError


def _param_type(c: Compiler, path: str, name: str, kinds: set) -> DType | None:
    """The runtime type a varying param takes as a per-PE value, or None.

    A declared scalar type is taken as is; an untyped (or undeclared) param takes the type of
    its values' one kind (`kinds`: CNum types and Python types): that type, bool, f32 for
    floats, i32 for integers.
    """
    t = _declared_type(c, path, name)
    if t is not None:
        return t if isinstance(t, DType) else None
    if len(kinds) != 1:
        return None
    (k,) = kinds
    if isinstance(k, DType):
        return k
    return {bool: DType.bool_, float: DType.f32, int: DType.i32}[k]


def per_pe_values(c: Compiler, path: str, name: str, raw: np.ndarray, kinds: list,
                   distinct: set):
    """A varying param's runtime type and its `[n]` values, from its raw values and kinds
    per tile (`distinct` kinds); None where they cannot all become values of one runtime
    type the way comptime converts them (a coercion of a kind's extremes fails, or an
    integer type gets a fraction)."""
    t = _param_type(c, path, name, distinct)
    if t is None:
        return None
    try:
        for k in distinct:
            part = raw if len(distinct) == 1 else raw[np.fromiter(
                (kv is k for kv in kinds), bool, len(kinds))]
            for v in (part.min().item(), part.max().item()):
                c.coerce(CNum(v, k) if isinstance(k, DType) else k(v), t, None,
                         f"param '{name}'")
    except CslError:
        return None
    entries = raw.astype(t.np)
    if t.is_int and not np.array_equal(entries, raw):
        return None
    return t, entries


def color_ids(c: Compiler, path: str, name: str, vals: list):
    """The color numbers of a color param (its values all colors, or numbers of a param
    declared `color`), else None."""
    if all(type(u) is ColorVal for u in vals):
        return [u.id for u in vals]
    if _declared_type(c, path, name) == Special("color") and all(
            isinstance(u, int) and not isinstance(u, bool) and 0 <= u <= 23 for u in vals):
        return vals
    return None
