"""What the engine learns from a PE program before tracing it: where its DSD variables point,
and whether it touches the fabric.

Contract. `dsd_candidates` bounds, for each runtime DSD variable, the arrays it may point to
and the fields some assignment may change (the others stay static); `has_fabric` tells whether
some body runs a DSD op with a config or a fabric or FIFO operand. Both read the IR only.
"""

from __future__ import annotations

from wsejax import ir

__all__ = ["dsd_candidates", "has_fabric", "mentioned_bases"]

_ALL_FIELDS = frozenset({"base", "offset", "stride", "length"})
# the field each DSD setter changes, beside those of the DSD it starts from
_SETTER_FIELDS = {ir.IncrementOffset: {"offset"}, ir.SetBase: {"base", "offset"},
                  ir.SetLength: {"length"}, ir.SetStride: {"stride"}}


def dsd_candidates(pe: ir.PeProgram, runtime_vars) -> dict[str, tuple]:
    """For each runtime DSD variable: `(bases, runtime_fields)`.

    `bases` are the `(symbol, base_offset)` pairs it may point to: a fixpoint over its
    assignments, where literals and `set_dsd_base_addr` add their base, other variables add
    theirs, and a DSD local adds every base the program mentions (conservative).
    `runtime_fields` are the fields some assignment may change (of base, offset, stride,
    length); the others keep their initial values and stay static.
    """
    init = {name: lit.dsd for name, lit in pe.dsd_vars}
    assigns = {name: [] for name in runtime_vars}
    for f in pe.functions:
        for s in ir.walk_stmts(f.body):
            if isinstance(s, ir.DsdAssign):
                assigns[s.name].append(s.value)
    all_bases = mentioned_bases(pe, init)
    cands = {name: _own_base(init[name]) for name in runtime_vars}
    # an operation moves a `.save_address` register's offset
    fields = {name: {"offset"} if pe.saved_address(name) else set() for name in runtime_vars}
    while _widen(assigns, cands, fields, init, all_bases):
        pass
    out = {}
    for name in runtime_vars:
        f = set(fields[name])
        if len(cands[name]) > 1:
            f.add("base")
        out[name] = (tuple(cands[name]), frozenset(f))
    return out


def _widen(assigns: dict, cands: dict, fields: dict, init: dict, all_bases: tuple) -> bool:
    """One pass of the fixpoint: add what each assignment may bring to its variable's
    candidate bases and runtime fields; returns whether anything was added."""
    grew = False
    for name, values in assigns.items():
        # a fabric DSD variable has no base, whatever a DSD local assigned to it may hold
        memory = hasattr(init[name], "base")
        for v in values:
            for b in _bases(v, cands, init, all_bases) if memory else ():
                if b not in cands[name]:
                    cands[name].append(b)
                    grew = True
            new = _changed(v, name, init[name], fields) - fields[name]
            if new:
                fields[name] |= new
                grew = True
    return grew


def mentioned_bases(pe: ir.PeProgram, init: dict) -> tuple:
    """Every `(symbol, base_offset)` a DSD literal or `set_dsd_base_addr` of `pe` names."""
    mentioned = {(d.base, d.base_offset) for d in init.values() if hasattr(d, "base")}
    for f in pe.functions:
        for s in ir.walk_stmts(f.body):
            for e in _dsd_exprs(s):
                if isinstance(e, ir.DsdLit) and hasattr(e.dsd, "base"):
                    mentioned.add((e.dsd.base, e.dsd.base_offset))
                elif isinstance(e, ir.SetBase):
                    mentioned.add((e.symbol, e.base_offset))
    return tuple(sorted(mentioned))


def _bases(e, cands: dict, init: dict, all_bases: tuple) -> list:
    """The bases DSD expression `e` may point to, given the candidates found so far."""
    t = type(e)
    if t is ir.DsdLit:
        return _own_base(e.dsd)
    if t is ir.DsdVar:
        return cands.get(e.name, _own_base(init[e.name]))
    if t is ir.FifoRef:
        return []
    if t is ir.SetBase:
        return [(e.symbol, e.base_offset)]
    if t is ir.DsdLocal:
        return list(all_bases)
    return _bases(e.dsd, cands, init, all_bases)


def _changed(e, name: str, d0, fields: dict) -> set:
    """Fields of variable `name` (initially literal `d0`) that assigning `e` may change."""
    t = type(e)
    if t is ir.DsdVar and e.name == name:
        return set(fields[name])
    if t in _SETTER_FIELDS:
        return _changed(e.dsd, name, d0, fields) | _SETTER_FIELDS[t]
    if t is ir.DsdLit and type(e.dsd) is type(d0):
        out = {f for f in ("offset", "stride", "length")
               if getattr(e.dsd, f, None) != getattr(d0, f, None)}
        return out | ({"base"} if _own_base(e.dsd) != _own_base(d0) else set())
    return set(_ALL_FIELDS)


def _own_base(d) -> list:
    """The base of a literal memory DSD as a candidate list (none for fabric DSDs)."""
    return [(d.base, d.base_offset)] if hasattr(d, "base") else []


def _dsd_exprs(s):
    """DSD expressions appearing directly in statement s."""
    out = []

    def visit(x):
        if isinstance(x, (ir.DsdLit, ir.SetBase, ir.IncrementOffset, ir.SetLength, ir.SetStride)):
            out.append(x)
            if not isinstance(x, ir.DsdLit):
                visit(x.dsd)
        elif isinstance(x, (ir.DsdOperand,)):
            visit(x.dsd)
        elif isinstance(x, tuple):
            for y in x:
                visit(y)

    for name in ("value", "dest", "srcs", "inputs", "output", "args"):
        if hasattr(s, name):
            visit(getattr(s, name))
    return out


def has_fabric(pe: ir.PeProgram) -> bool:
    """Does any body of `pe` run a DSD op with a config (async, hooks) or a FIFO, or a
    `@map` over a fabric DSD?"""
    if pe.fifos:
        return True
    return any(type(s) is ir.DsdOp and (s.config is not None or any(
        type(o) is ir.DsdOperand and _fabric_expr(o.dsd, pe) for o in (s.dest,) + s.srcs))
        or type(s) is ir.Map and any(type(o) is ir.DsdOperand and _fabric_expr(o.dsd, pe)
                                     for o in s.inputs + (s.output,))
        for f in pe.functions for s in ir.walk_stmts(f.body))


def _fabric_expr(e, pe: ir.PeProgram) -> bool:
    """Could DSD expression e be a fabric DSD or a FIFO? (a local: maybe)"""
    while not isinstance(e, (ir.DsdLit, ir.DsdVar, ir.DsdLocal, ir.FifoRef)):
        e = e.dsd
    if type(e) is ir.DsdVar:
        e = dict(pe.dsd_vars)[e.name]
    return (type(e) is ir.DsdLit and isinstance(e.dsd, (ir.FabIn, ir.FabOut))) or \
        type(e) in (ir.FifoRef, ir.DsdLocal)
