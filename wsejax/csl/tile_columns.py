"""Tile groups (`wsejax.tile_classes.Group`) from tiles placed in batches, without a Python
step per tile.

A layout loop run over all its iterations at once (`wsejax.csl.layout_vec`) places its tiles
as `TileBatch`es: coordinate arrays and, per param, one value or a column of values (`Num`:
numbers of one kind; `Obj`: an index into distinct values). `batch_groups` forms the same
groups, in the same order, with the same varying params and per-PE tables, as
`wsejax.frontend.tiles.group_tiles` forms from the tiles one by one: tiles running one
program whose params are equal but for values; groups in the row-major order of their first
tile, tiles row-major inside a group.
"""

from __future__ import annotations

import numpy as np

from wsejax.csl.layout_vec import Num, Obj, TileBatch, combine
from wsejax.csl.values import CNum, ColorVal
from wsejax.frontend.tiles import ParamKinds, vary_numbers, vary_values
from wsejax.tile_classes import Group, TableNames, vary_color

__all__ = ["batch_groups"]


class _Params:
    """The params of a group's tiles, one dict per tile made when asked for."""

    def __init__(self, columns: dict, n: int):
        self.columns = columns
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return {k: _item(col, int(i)) for k, col in self.columns.items()}


def _item(col, i: int):
    if isinstance(col, Num):
        v = col.v[i]
        return CNum(v.item(), col.kind) if not isinstance(col.kind, type) else col.kind(v)
    return col.table[col.idx[i]]


def _column(v, n: int):
    """A param over n tiles as a Num or an Obj."""
    if isinstance(v, (Num, Obj)):
        return v
    return Obj(np.zeros(n, np.intp), [v])


def _concat(cols: list):
    """Columns of the parts of a group, one after the other."""
    if all(isinstance(c, Num) for c in cols) and len({c.kind for c in cols}) == 1:
        return Num(cols[0].kind, np.concatenate([c.v for c in cols]))
    idx, table = [], []
    for col in cols:
        if isinstance(col, Num):
            uniq, inv = np.unique(col.v, return_inverse=True)
            col = Obj(inv.reshape(-1), [_item(Num(col.kind, uniq), i)
                                        for i in range(uniq.size)])
        idx.append(col.idx + len(table))
        table.extend(col.table)
    return Obj(np.concatenate(idx), table)


def _shape_codes(batch: TileBatch, n: int, kinds: ParamKinds):
    """Per tile of a batch, the index of its shape (what must be equal within a group), and
    the shapes."""
    names = list(batch.fields)
    codes, keys = [], []
    for name in names:
        v = batch.fields[name]
        if isinstance(v, Num):
            codes.append(np.zeros(n, np.intp))
            keys.append([None])
            continue
        col = _column(v, n)
        seen: dict = {}
        entry = np.asarray([seen.setdefault(None if kinds.may_vary(u) else kinds.freeze(u),
                                            len(seen)) for u in col.table], np.intp)
        codes.append(entry[col.idx] if col.table else col.idx)
        keys.append(list(seen))
    first, inv = combine(codes, n)
    shapes = [tuple((name, ks[k[i]]) for name, ks, k in zip(names, keys, codes))
              for i in first.tolist()]
    return inv, shapes


def batch_groups(batches: list, w: int, kinds: ParamKinds, numbers_fast) -> list[Group]:
    """The groups of tiles placed in `batches` (`(program, TileBatch)`), given the front end's
    `kinds`; `numbers_fast(program, name, Num)` is `kinds.numbers` for a column of numbers of
    one kind."""
    parts: dict = {}
    for program, b in batches:
        n = b.xs.size
        inv, shapes = _shape_codes(b, n, kinds)
        for k, shape in enumerate(shapes):
            mine = np.flatnonzero(inv == k)
            parts.setdefault((program, shape), []).append((b, mine))
    groups = []
    for (program, shape), members in parts.items():
        xs = np.concatenate([b.xs[m] for b, m in members])
        ys = np.concatenate([b.ys[m] for b, m in members])
        order = np.argsort(ys * w + xs, kind="stable")
        columns = {}
        for name, _ in shape:
            col = _concat([_take(_column(b.fields[name], b.xs.size), m) for b, m in members])
            columns[name] = _take(col, order)
        g = Group(program, [])
        g.xs, g.ys = xs[order].astype(np.intp), ys[order].astype(np.intp)
        g.params = _Params(columns, xs.size)
        groups.append((int(ys[order[0]]) * w + int(xs[order[0]]), g, columns))
    groups.sort(key=lambda t: t[0])
    names = TableNames()
    for _, g, columns in groups:
        for name, col in columns.items():
            _vary(g, name, col, kinds, names, numbers_fast)
    return [g for _, g, _ in groups]


def _take(col, idx):
    if isinstance(col, Num):
        return Num(col.kind, col.v[idx])
    return Obj(col.idx[idx], col.table)


def _vary(g: Group, name: str, col, kinds: ParamKinds, names: TableNames, numbers_fast):
    program = g.program
    first = _item(col, 0)
    if not kinds.may_vary(first) or (isinstance(col, Obj) and (col.idx == col.idx[0]).all()):
        return
    if isinstance(col, Obj) and all(type(u) is ColorVal for u in col.table):
        ids = np.asarray([u.id for u in col.table], np.uint16)[col.idx]
        vary_color(g, name, ids, names, kinds.stem(program), kinds.color_stand_in,
                   kinds.reserved_colors)
        return
    if isinstance(col, Num) and kinds.color_ids(program, name, [first]) is None:
        vary_numbers(g, name, numbers_fast(program, name, col), names, kinds.stem(program))
        return
    vary_values(g, program, name, kinds, names, [_item(col, i) for i in range(len(g.params))])
