"""Recursive functions as blocks: the functions of one call cycle (`ir_calls.call_cycles`) cut
into basic blocks at the calls they make to one another.

The engine expands every other call in place at trace time; a call into a cycle cannot be
expanded (it would never end), so the engine runs the cycle as a state machine per PE: a
program counter picks the block a PE runs next, a call pushes the caller's locals and the block
it resumes at onto a per-PE stack and jumps to the callee's first block, and a return pops them.
This module only builds the blocks; `engine.lower.recursion` runs them.

Blocks are made as for bodies that wait (`engine.cfg`): a control structure that contains a
call into the cycle, or a `break` / `continue` / `return` leaving a converted structure, becomes
blocks; the rest stays structured inside its block. The terminators are those of `engine.cfg`
("goto", "branch") and two more: `("call", callee, args, resume)` and
`("ret", value or None, jump)` (a `jump` return costs its cycle, as the statement did). The
block where a call returns to carries a `Resume`: the caller's locals come back from the stack
there, and the result goes to its local.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsejax import ir
from wsejax.engine.cfg import Block, _Builder, _Ctx, _local_types
from wsejax.errors import ProgramError
from wsejax.types import DType

__all__ = ["Cycle", "Resume", "build_cycle"]


@dataclass(frozen=True)
class Resume:
    """Where a call returns: `fn`'s locals come back from the stack, and `dest` (None: the
    result is dropped) takes `callee`'s result, at the cost of `ticks` cycles (the assignment
    that held the call)."""

    fn: str
    callee: str
    dest: str | None
    ticks: int


@dataclass
class Cycle:
    """The blocks of the functions `members` of one call cycle, numbered from 0; `entry` maps
    a function to its first block, `owner[b]` is the function block b belongs to, `locals`
    the locals of each function with their types (parameters first) and `rets` each
    function's result type (None: void)."""

    members: tuple
    entry: dict
    owner: list
    blocks: list
    resume: dict
    locals: dict
    rets: dict


class _CycleBuilder(_Builder):
    def __init__(self, pe: ir.PeProgram, members: tuple):
        self.fn = members[0]
        self.owner: list[str] = []
        self.resume: dict[int, Resume] = {}
        self.temps = 0
        super().__init__(pe, set(), set(members), 0)

    def new(self) -> Block:
        self.owner.append(self.fn)
        return super().new()

    def waits(self, s) -> bool:
        """Does statement s (or one inside it) call a function of the cycle?"""
        if super().waits(s):
            return True
        return any(type(t) is ir.ExprStmt and type(t.value) is ir.CallExpr and
                   t.value.fn in self.stall_fns for t in ir.walk_stmts((s,)))

    def call(self, fn: str, args, dest: str | None, ticks: int) -> None:
        back = self.new()
        self.resume[back.gid] = Resume(self.fn, fn, dest, ticks)
        self.seal(("call", fn, tuple(args), back.gid), back)

    def stmt_Call(self, s: ir.Call, ctx: _Ctx) -> None:
        if s.fn in self.stall_fns:
            self.call(s.fn, s.args, None, 0)
        else:
            self.plain(s, ctx)

    def stmt_LocalAssign(self, s: ir.LocalAssign, ctx: _Ctx) -> None:
        if type(s.value) is ir.CallExpr and s.value.fn in self.stall_fns:
            self.call(s.value.fn, s.value.args, s.name, 1)
        else:
            self.plain(s, ctx)

    def stmt_ExprStmt(self, s: ir.ExprStmt, ctx: _Ctx) -> None:
        if type(s.value) is ir.CallExpr and s.value.fn in self.stall_fns:
            self.call(s.value.fn, s.value.args, None, 1)
        else:
            self.plain(s, ctx)

    def stmt_Return(self, s: ir.Return, ctx: _Ctx) -> None:
        value = s.value
        if type(value) is ir.CallExpr and value.fn in self.stall_fns:
            self.temps += 1
            tmp = f"%result{self.temps}"
            self.call(value.fn, value.args, tmp, 0)
            value = ir.Local(tmp, value.dtype)
        if isinstance(value, ir.DsdExpr):
            raise ProgramError(f"{self.fn}: a recursive function cannot return a DSD")
        self.seal(("ret", value, "jump"), self.new())

    def function(self, name: str, first: bool) -> None:
        self.fn = name
        if not first:
            self.cur = self.new()
        self.body(self.pe.function(name).body, _Ctx())
        self.seal(("ret", None, False))


def build_cycle(pe: ir.PeProgram, members: frozenset) -> Cycle:
    """The blocks of the functions of one call cycle of `pe`."""
    order = tuple(sorted(members))
    b = _CycleBuilder(pe, order)
    entry = {}
    for k, name in enumerate(order):
        entry[name] = b.cur.gid if k == 0 else len(b.blocks)
        b.function(name, k == 0)
    rets = {name: pe.function(name).ret for name in order}
    local_types = {}
    for name in order:
        f = pe.function(name)
        if any(t == "dsd" for _, t in f.params):
            raise ProgramError(f"{name}: a recursive function cannot take a DSD")
        mine = [blk for blk in b.blocks if b.owner[blk.gid] == name]
        types = _local_types(mine, f.params)
        for r in b.resume.values():
            if r.fn == name and r.dest is not None:
                types.setdefault(r.dest, rets[r.callee])
        local_types[name] = _checked(name, types, mine)
    return Cycle(order, entry, b.owner, b.blocks, b.resume, local_types, rets)


def _checked(fn: str, types: dict, blocks) -> dict:
    """`types`, checked to give every local of the blocks a scalar type."""
    for blk in blocks:
        for s in ir.walk_stmts(tuple(getattr(x, "stmt", x) for x in blk.stmts)):
            if type(s) is ir.LocalAssign and not isinstance(types.get(s.name), DType):
                raise ProgramError(f"{fn}: local '{s.name}' of a recursive function holds "
                                   "no number, bool or pointer")
    return types
