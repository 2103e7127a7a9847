"""Tiles into `wsejax.tile_classes` groups, the same way for both front ends.

Tiles running one program whose params are equal but for values (numbers, bools, colors)
form a group. Per param whose value varies inside a group: a color param whose values are all
colors becomes a per-PE color; a mix of colors and numbers splits the group; numbers become a
per-PE value where they have one runtime type, and split the group where not. What a value is
and what stands in for it while a class is specialised is the front end's (`ParamKinds`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wsejax.tile_classes import Group, TableNames, vary_color

__all__ = ["ParamKinds", "group_tiles", "vary_numbers", "vary_values"]


@dataclass(frozen=True)
class ParamKinds:
    """How a front end reads its tiles' params.

    shape(x, y, params): what must be equal for tiles to share a group (values left out).
    may_vary(v): whether `v` is a value (a number, bool or color) that may differ in a group.
    color_ids(program, name, values): the color numbers of a color param, else None.
    is_color(v), freeze(v): whether `v` is a color; a hashable key of `v`.
    numbers(program, name, values): None where the values are all equal, else `(keys,
      per_pe)`: a hashable key per tile and, where they can be one per-PE value, `(type,
      entries, stand_in)` (`stand_in(table)` is the value the program is specialised with).
    stem(program): the stem of the program's table names.
    color_stand_in(table): the value a per-PE color param is specialised with.
    reserved_colors: the colors the program may not use (memcpy's).
    """

    shape: Callable
    may_vary: Callable
    color_ids: Callable
    is_color: Callable
    freeze: Callable
    numbers: Callable
    stem: Callable
    color_stand_in: Callable
    reserved_colors: tuple


def group_tiles(tiles: Iterable[tuple], kinds: ParamKinds) -> list[Group]:
    """The groups of `tiles`, given as `(x, y, program, params)` in row-major order, with the
    params that vary declared on each (`Group.vary`)."""
    grouped: dict = {}
    for x, y, program, params in tiles:
        grouped.setdefault((program, kinds.shape(x, y, params)), []).append((x, y, params))
    names = TableNames()
    groups = []
    for (program, _), members in grouped.items():
        g = Group(program, members)
        for name, v in g.params[0].items():
            if kinds.may_vary(v):
                _vary(g, program, name, kinds, names)
        groups.append(g)
    return groups


def _vary(g: Group, program, name: str, kinds: ParamKinds, names: TableNames) -> None:
    vary_values(g, program, name, kinds, names, [p[name] for p in g.params])


def vary_values(g: Group, program, name: str, kinds: ParamKinds, names: TableNames,
                values: list) -> None:
    """Declare param `name` of g varying, given its value per tile (`values`), where it
    varies: as a per-PE color, a per-PE value, or a param that splits the group."""
    stem = kinds.stem(program)
    ids = kinds.color_ids(program, name, values)
    if ids is not None:
        vary_color(g, name, ids, names, stem, kinds.color_stand_in, kinds.reserved_colors)
        return
    if any(kinds.is_color(u) for u in values):
        g.vary(name, [kinds.freeze(u) for u in values])     # colors and numbers: split
        return
    vary_numbers(g, name, kinds.numbers(program, name, values), names, stem)


def vary_numbers(g: Group, name: str, found, names: TableNames, stem: str) -> None:
    """Declare param `name` of g varying as `ParamKinds.numbers` found it (None: it does
    not vary): by its keys, read from a per-PE table where it gives one."""
    if found is None:
        return
    keys, per_pe = found
    if per_pe is not None:
        t, entries, stand_in = per_pe
        table = names.new(f"{stem}:{name}", t)
        per_pe = (stand_in(table), table, entries)
    g.vary(name, keys, per_pe)
