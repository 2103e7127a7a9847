"""Registers loaded with DSDs of several fixed parts (spec 9: a DSR is a mutable per-PE
register holding a DSD).

A register is a global DSD variable of the PE program (`builtins/dsrs.py`), and the emulator
fixes part of a DSD variable when it compiles the program (`dsd_arrays._FIXED_FIELDS`: a
fabric DSD's color and queue, a mem4d_dsd's shape, a circbuf_dsd's ring, ...). A register
whose loads put DSDs of several fixed parts in it holds one DSD variable per part (part 0
the register's own, part g its `DsrRecord.part_name(g)`, each an `ir.Dsr` of the same
register file and number, so each keeps its own `.save_address` cursor), beside a u16
symbol `<register>.tag`: the part it holds now (that of its comptime load at start).

The parts are known once every body of the PE program is lowered (an operation may be
compiled before a load of another part), so `finish_dsr_parts` rewrites the bodies then: a
load of part g stores g in the tag first; each DSD operation or `@map` that takes the
register as an operand becomes an if chain on the tag (as `dsd_picks.each_arm` makes), each
arm the operation on the register of one part, with a site of its own (an asynchronous one
runs on its arm's slot); an `OpOk` of the operation's site reads that of the arm the tag
names. A program whose registers hold one part each is left as it is. No IR node is new.
"""

from __future__ import annotations

import dataclasses

from wsejax import ir
from wsejax.csl.dsd_picks import if_chain
from wsejax.csl.rewrite import expand, rewrite
from wsejax.types import DType

__all__ = ["finish_dsr_parts"]


def finish_dsr_parts(pe) -> None:
    """Give each register of PE program `pe` (a `PeBuilder`) that holds DSDs of several
    fixed parts its tag, and run every use of it on the part the tag names."""
    splits: dict = {}           # site of a split operation -> (tag, the sites of its arms)
    for rec in [r for r in pe.dsrs.values() if len(r.parts) > 1]:
        tag = f"{rec.name}.tag"
        pe.symbols[tag] = ir.Symbol(tag, DType.u16, (), (rec.initial,) if rec.initial
                                    else None)
        for g in range(1, len(rec.parts)):
            pe.dsrs[rec.part_name(g)] = dataclasses.replace(rec, name=rec.part_name(g))
        split = _Split(pe, rec, ir.Load(tag, (), DType.u16), splits)
        pe.functions = {k: dataclasses.replace(f, body=expand(f.body, split))
                        for k, f in pe.functions.items()}
    if splits:
        pe.functions = {k: rewrite(f, lambda n: _ok(n.site, splits) if isinstance(
            n, ir.OpOk) and n.site in splits else None) for k, f in pe.functions.items()}


class _Split:
    """The statements that replace a load or a use of register `rec` (None: none)."""

    def __init__(self, pe, rec, tag: ir.Expr, splits: dict):
        self.pe, self.rec, self.tag, self.splits = pe, rec, tag, splits
        self.names = [rec.part_name(g) for g in range(len(rec.parts))]

    def __call__(self, s):
        if isinstance(s, ir.DsdAssign) and s.name in self.names:
            g = self.names.index(s.name)
            return ir.Assign(self.tag.symbol, (), ir.Const(g, DType.u16)), s
        if isinstance(s, (ir.DsdOp, ir.Map)) and any(
                isinstance(o, ir.DsdOperand) and o.dsd == ir.DsdVar(self.rec.name)
                for o in _operands(s)):
            return self.arms(s)
        return None

    def arms(self, s) -> tuple:
        """Operation `s` on the register as an if chain on its tag."""
        bodies, sites = [], []
        for name in self.names:
            arm = rewrite(s, lambda n, name=name: ir.DsdVar(name) if isinstance(
                n, ir.DsdVar) and n.name == self.rec.name else None)
            sites.append(self.pe.site())
            bodies.append((dataclasses.replace(arm, site=sites[-1]),))
        self.splits[s.site] = (self.tag, sites)
        return if_chain(self.tag, bodies)


def _operands(s) -> tuple:
    if isinstance(s, ir.DsdOp):
        return (s.dest,) + s.srcs
    return s.inputs + (() if s.output is None else (s.output,))


def _ok(site: int, splits: dict) -> ir.Expr:
    """`OpOk` of the operation of `site`, once it is split: that of the arm its register's
    tag names (that arm split again by another register's tag likewise)."""
    if site not in splits:
        return ir.OpOk(site)
    tag, sites = splits[site]
    out = _ok(sites[-1], splits)
    for g in range(len(sites) - 2, -1, -1):
        out = ir.Select(ir.Bin("==", tag, ir.Const(g, DType.u16), DType.bool_),
                        _ok(sites[g], splits), out, DType.bool_)
    return out
