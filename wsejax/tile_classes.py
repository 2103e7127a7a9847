"""Tile classes: which PEs share one specialised PE program, and the per-PE tables they read.

Both front ends place a program and params on every tile. A tile class is one specialised PE
program. Tiles whose params differ only by values (a pe_id, coordinates, an even/odd flag)
share a class: those params become per-PE values (`ir.PeValue`, reading an `[H, W]` table of
the Program), unless the program needs a param's value while it is specialised (an array
size, a comptime `if`, a color); then the tiles are split by the values of that param only.

A front end gathers its tiles into `Group`s (one program, equal other params) and declares,
per varying param, its values and, where the param can be one, its per-PE stand-in;
`tile_classes` then specialises each group a handful of times, never once per tile:

    g = Group(path, tiles)                 # tiles: (x, y, params) running one program
    g.vary("pe_id", keys, (stand_in, "pe:pe_id", entries))
    classes, class_of, tables = tile_classes([g], h, w, instantiate, CslError)

Per group: one trial with every candidate as a per-PE value; if the program rejects that,
trials adding the candidates one at a time find those it rejects; the tiles are split by the
values of one of those and each part tries the remaining candidates again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from wsejax import ir
from wsejax.types import DType

__all__ = ["Group", "TableNames", "tile_classes", "vary_color"]


class TableNames:
    """Per-PE table names: `base`, then `base#2`, `base#3`, ... where `base` holds another type.

    Groups cover disjoint tiles, so groups whose param has the same name and type share one
    table (each fills its own tiles' entries).
    """

    def __init__(self):
        self.types: dict[str, DType] = {}

    def new(self, base: str, t: DType) -> str:
        name, k = base, 1
        while self.types.setdefault(name, t) is not t:
            k += 1
            name = f"{base}#{k}"
        return name


class Group:
    """Tiles running one program whose params differ at most in values.

    `tiles` are `(x, y, params)`, params a dict. `values` maps each varying param to a
    hashable key per tile (equal keys: equal values of the same kind); `per_pe` maps the
    params that may be per-PE values to `(stand_in, table, entries)`: the value the program
    is specialised with, the table it reads, and that table's entries per tile (`[n]`).
    """

    def __init__(self, program, tiles: list):
        self.program = program
        self.xs = np.array([x for x, _, _ in tiles], np.intp)        # [n]
        self.ys = np.array([y for _, y, _ in tiles], np.intp)        # [n]
        self.params = [p for _, _, p in tiles]
        self.values: dict[str, list] = {}
        self.per_pe: dict[str, tuple] = {}
        self.filled: set[str] = set()

    def vary(self, name: str, keys: list, per_pe: tuple | None = None) -> None:
        """Declare param `name` varying, with a key per tile and, if any, its stand-in."""
        self.values[name] = keys
        if per_pe is not None:
            self.per_pe[name] = per_pe


def vary_color(g: Group, name: str, ids: np.ndarray, names: TableNames, stem: str,
               stand_in: Callable[[str], object], reserved=()) -> None:
    """Declare color param `name` of g (`ids`: its `[n]` color numbers), if it varies: a
    per-PE color read from table `<stem>:<name>` (`stand_in(table)` is the front end's
    stand-in), unless some id is in `reserved` (memcpy's colors: that error needs the
    number, so those tiles split by it)."""
    ids = np.asarray(ids, np.uint16)
    if (ids == ids[0]).all():
        return
    per_pe = None
    if not set(reserved).intersection(ids.tolist()):
        table = names.new(f"{stem}:{name}", DType.u16)
        per_pe = (stand_in(table), table, ids)
    g.vary(name, ids, per_pe)      # the color numbers are the keys


def tile_classes(groups: list[Group], h: int, w: int,
                 instantiate: Callable[[object, dict], ir.PeProgram],
                 failure: type[Exception] | tuple):
    """The classes of `groups`, the `[H, W]` class table and the per-PE tables read.

    `instantiate(program, params)` specialises a program; `failure` is what it raises where
    the program needs a stand-in's value. Equal programs are one class. Returns
    `(classes, class_of, tables)`, tables as `((name, [H, W] array), ...)`.
    """
    out = _Classes(h, w)
    for g in groups:
        _place(g, np.arange(len(g.params)), list(g.per_pe), instantiate, failure, out)
    return out.classes, out.class_of, tuple(out.tables.items())


class _Classes:
    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        self.classes: list[ir.PeProgram] = []
        self.reads: list[set[str]] = []
        self.index: dict = {}
        self.class_of = np.zeros((h, w), np.int32)
        self.tables: dict[str, np.ndarray] = {}

    def add(self, pe: ir.PeProgram, g: Group, part, per_pe: list) -> None:
        """Place class `pe` at tiles `part` of g; of the tables of `per_pe`, those it reads
        join the Program."""
        k = self.index.get(pe)
        if k is None:
            k = self.index[pe] = len(self.classes)
            self.classes.append(pe)
            self.reads.append(_tables_read(pe, set()))
        self.class_of[g.ys[part], g.xs[part]] = k
        for name in per_pe:
            _, table, entries = g.per_pe[name]
            if table in self.reads[k] and table not in g.filled:
                arr = self.tables.setdefault(table, np.zeros((self.h, self.w), entries.dtype))
                arr[g.ys, g.xs] = entries
                g.filled.add(table)


def _place(g: Group, members, per_pe: list, instantiate, failure, out: _Classes) -> None:
    """Classes for tiles `members` (`[m]` indices) of g, with the params `per_pe` as per-PE
    values: the tiles are split by the values of their other varying params.

    Where a part's program rejects some of `per_pe` (found by adding them one at a time),
    the part is split by the rejected param with the fewest values (a flag before the
    coordinate whose use it decides) and each side tries the others again.
    """
    split = [name for name in g.values if name not in per_pe]
    parts: dict = {(): members}
    if split:
        parts = {}
        for i in members.tolist():
            parts.setdefault(tuple(g.values[name][i] for name in split), []).append(i)
    for part in parts.values():
        part = np.asarray(part)
        params = g.params[part[0]]
        pe = _trial(g, params, per_pe, instantiate, failure)
        if pe is not None:
            out.add(pe, g, part, per_pe)
            continue
        kept = []
        for name in per_pe:
            if _trial(g, params, kept + [name], instantiate, failure) is not None:
                kept.append(name)
        rejected = [name for name in per_pe if name not in kept] or per_pe
        first = min(rejected, key=lambda name: len({g.values[name][i] for i in part.tolist()}))
        _place(g, part, [name for name in per_pe if name != first], instantiate, failure, out)


def _trial(g: Group, params: dict, names: list, instantiate, failure):
    """g's program specialised with `params`, those in `names` replaced by their stand-ins;
    None where it fails. Without stand-ins, the program's own error is raised."""
    if not names:
        return instantiate(g.program, params)
    try:
        return instantiate(g.program, {**params, **{name: g.per_pe[name][0] for name in names}})
    except failure:
        return None


def _tables_read(node, found: set) -> set:
    """The names of the per-PE tables (`ir.PeValue`) an IR tree reads, added to `found`."""
    if isinstance(node, ir.PeValue):
        found.add(node.table)
    elif isinstance(node, tuple):
        for item in node:
            _tables_read(item, found)
    elif dataclasses.is_dataclass(node) and not isinstance(node, ir.Symbol):
        for f in dataclasses.fields(node):
            _tables_read(getattr(node, f.name), found)
    return found
