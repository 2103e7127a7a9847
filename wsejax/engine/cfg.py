"""Bodies that wait: a task or launched function containing a synchronous fabric operation.

Such a body cannot run to completion in one go: its PE's main thread stalls at the operation
until the fabric has delivered (or taken) every wavelet. It is cut into basic blocks at those
points (DESIGN §5, Blocking): each block is straight-line code ending in a terminator: go to a
block, branch on a condition, start the fabric operation on its slot and wait, or end. The
engine keeps a per-PE program counter (`pc`, 0 when the main thread is idle) and runs, every
tick, the current block of each busy PE under the mask of PEs at that block. Locals live in
per-PE frame arrays between blocks.

Control structures that contain a wait, or a `break` / `continue` / `return` leaving a
converted structure, become blocks; the rest of the body stays structured and is lowered as
usual inside its block. Calls to functions that wait are inlined, with their locals renamed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from wsejax import ir
from wsejax.errors import ProgramError
from wsejax.types import DType, bool_, i32

__all__ = ["Block", "Cfg", "Free", "build_cfg", "map_as_op"]


def map_as_op(s: ir.Map) -> ir.DsdOp:
    """A `@map` over fabric DSDs as the DSD operation "map" of its site: it runs on the
    site's slot as fabric operations do, its callback in place of an element function."""
    return ir.DsdOp("map", s.output, s.inputs, s.site)


@dataclass(frozen=True)
class Free:
    """An assignment the conversion adds (loop counters, arguments, results): it costs no
    cycle, as the structure it replaces cost none."""

    stmt: ir.LocalAssign


@dataclass
class Block:
    gid: int
    stmts: list = field(default_factory=list)
    term: tuple = ("end",)


@dataclass
class Cfg:
    """The blocks of root function `root` of class `cls`; `entry` is the first block's pc;
    `locals` the frame's scalar locals with their types (the parameters first); `dsd_locals`
    its DSD locals, whose runtime fields live in frame arrays too (`frame_key(name)` and
    the field's name)."""

    cls: int
    root: str
    entry: int
    blocks: list
    locals: dict
    params: tuple
    dsd_locals: tuple = ()

    def frame_key(self, name: str) -> str:
        return f"frame{self.entry}.{name}"


@dataclass
class _Ctx:
    brk: int | None = None
    cont: int | None = None
    ret: int | None = None
    ret_local: str | None = None


class _Builder:
    def __init__(self, pe: ir.PeProgram, stall_sites: set, stall_fns: set, first: int):
        self.pe = pe
        self.stall_sites = stall_sites
        self.stall_fns = stall_fns
        self.blocks: list[Block] = []
        self.first = first
        self.inlined = 0
        self._handlers: dict = {}
        self.cur = self.new()

    def new(self) -> Block:
        b = Block(self.first + len(self.blocks))
        self.blocks.append(b)
        return b

    def seal(self, term: tuple, nxt: Block | None = None) -> None:
        self.cur.term = term
        if nxt is not None:
            self.cur = nxt

    # -- what needs blocks ------------------------------------------------------------------

    def waits(self, s) -> bool:
        """Does statement s (or a call inside it) contain a synchronous fabric op?"""
        for t in ir.walk_stmts((s,)):
            if type(t) in (ir.DsdOp, ir.Map) and t.site in self.stall_sites:
                return True
            if type(t) is ir.Call and t.fn in self.stall_fns:
                return True
            if type(t) in (ir.LocalAssign, ir.Return) and type(getattr(t, "value", None)) \
                    is ir.CallExpr and t.value.fn in self.stall_fns:
                return True
        return False

    def jumps(self, s) -> bool:
        return any(type(t) in (ir.Break, ir.Continue, ir.Return) for t in ir.walk_stmts((s,)))

    # -- statements -------------------------------------------------------------------------

    def body(self, stmts, ctx: _Ctx) -> None:
        for s in stmts:
            self.stmt(s, ctx)

    def stmt(self, s, ctx: _Ctx) -> None:
        """Add statement `s` to the blocks: `stmt_<Class>` where its class may need blocks,
        else `plain`."""
        name = type(s).__name__
        handler = self._handlers.get(name)
        if handler is None:
            handler = self._handlers[name] = getattr(self, "stmt_" + name, self.plain)
        handler(s, ctx)

    def plain(self, s, ctx: _Ctx) -> None:
        """A statement that stays structured, in the current block."""
        if self.waits(s):
            raise ProgramError("a synchronous fabric operation inside "
                               f"{type(s).__name__} cannot wait there")
        self.cur.stmts.append(s)

    def stmt_DsdOp(self, s: ir.DsdOp, ctx: _Ctx) -> None:
        if s.site not in self.stall_sites:
            self.plain(s, ctx)
            return
        wait = self.new()
        after = self.new()
        self.seal(("stall", s, wait.gid))
        wait.term = ("wait", s, after.gid)
        self.cur = after

    def stmt_Map(self, s: ir.Map, ctx: _Ctx) -> None:
        if s.site in self.stall_sites:
            self.stmt_DsdOp(map_as_op(s), ctx)
        else:
            self.plain(s, ctx)

    def stmt_Call(self, s: ir.Call, ctx: _Ctx) -> None:
        if s.fn in self.stall_fns:
            self.inline(s.fn, s.args, None, ctx)
        else:
            self.plain(s, ctx)

    def stmt_LocalAssign(self, s: ir.LocalAssign, ctx: _Ctx) -> None:
        if type(s.value) is ir.CallExpr and s.value.fn in self.stall_fns:
            self.inline(s.value.fn, s.value.args, s.name, ctx)
        else:
            self.plain(s, ctx)

    # a jump costs its cycle, as the statement it replaces did: a terminator ending in "jump"

    def stmt_Break(self, s: ir.Break, ctx: _Ctx) -> None:
        if ctx.brk is None:
            self.plain(s, ctx)
        else:
            self.seal(("goto", ctx.brk, "jump"), self.new())

    def stmt_Continue(self, s: ir.Continue, ctx: _Ctx) -> None:
        if ctx.cont is None:
            self.plain(s, ctx)
        else:
            self.seal(("goto", ctx.cont, "jump"), self.new())

    def stmt_Return(self, s: ir.Return, ctx: _Ctx) -> None:
        if ctx.ret_local is not None and s.value is not None:
            self.cur.stmts.append(Free(ir.LocalAssign(ctx.ret_local, s.value)))
        self.seal(("goto", ctx.ret, "jump") if ctx.ret is not None else ("end", "jump"),
                  self.new())

    def stmt_If(self, s: ir.If, ctx: _Ctx) -> None:
        if not (self.waits(s) or self.jumps(s)):
            self.plain(s, ctx)
            return
        if type(s.cond) is ir.Const:
            self.body(s.then if s.cond.value else s.orelse, ctx)
            return
        then, orelse, join = self.new(), self.new(), self.new()
        self.seal(("branch", s.cond, then.gid, orelse.gid, True))
        self.cur = then
        self.body(s.then, ctx)
        self.seal(("goto", join.gid), orelse)
        self.body(s.orelse, ctx)
        self.seal(("goto", join.gid), join)

    def stmt_For(self, s: ir.For, ctx: _Ctx) -> None:
        if not (self.waits(s) or self.jumps(s)):
            self.plain(s, ctx)
            return
        count = f"%for{len(self.blocks)}"
        self.cur.stmts.append(Free(ir.LocalAssign(count, ir.Const(0, i32))))
        head, body, latch, exit_ = self.new(), self.new(), self.new(), self.new()
        self.seal(("goto", head.gid), head)
        n = ir.Local(count, i32)
        self.seal(("branch", ir.Bin("<", n, ir.Const(s.trip_count, i32), bool_),
                   body.gid, exit_.gid, False), body)
        value = ir.Bin("+", ir.Const(s.start, i32), ir.Bin("*", n, ir.Const(s.step, i32), i32),
                       i32)
        self.cur.stmts.append(Free(ir.LocalAssign(s.var, ir.Cast(value, s.dtype))))
        self.body(s.body, dataclasses.replace(ctx, brk=exit_.gid, cont=latch.gid))
        self.seal(("goto", latch.gid), latch)
        self.cur.stmts.append(Free(ir.LocalAssign(count, ir.Bin("+", n, ir.Const(1, i32), i32))))
        self.seal(("goto", head.gid), exit_)

    def stmt_While(self, s: ir.While, ctx: _Ctx) -> None:
        if not (self.waits(s) or self.jumps(s)):
            self.plain(s, ctx)
            return
        head, body, cont, exit_ = self.new(), self.new(), self.new(), self.new()
        self.seal(("goto", head.gid), head)
        self.seal(("branch", s.cond, body.gid, exit_.gid, False), body)
        self.body(s.body, dataclasses.replace(ctx, brk=exit_.gid, cont=cont.gid))
        self.seal(("goto", cont.gid), cont)
        self.body(s.cont, dataclasses.replace(ctx, brk=exit_.gid, cont=None))
        self.seal(("goto", head.gid), exit_)

    def inline(self, fn: str, args, result: str | None, ctx: _Ctx) -> None:
        f = self.pe.function(fn)
        self.inlined += 1
        pre = f"{fn}#{self.inlined}."
        for (pname, _), a in zip(f.params, args):
            self.cur.stmts.append(Free(ir.LocalAssign(pre + pname, a)))
        exit_ = self.new()
        inner = _Ctx(ret=exit_.gid, ret_local=result)
        self.body(_rename(f.body, pre), inner)
        self.seal(("goto", exit_.gid), exit_)


def _rename(x, pre: str):
    """x with every local name prefixed by `pre`."""
    if isinstance(x, tuple):
        return tuple(_rename(y, pre) for y in x)
    if not dataclasses.is_dataclass(x) or isinstance(x, type) or not type(x).__module__ \
            .endswith(".ir"):
        return x
    changes = {}
    for f in dataclasses.fields(x):
        v = getattr(x, f.name)
        if (f.name == "name" and type(x) in (ir.Local, ir.DsdLocal, ir.LocalAssign)) or \
                (f.name == "var" and type(x) is ir.For):
            changes[f.name] = pre + v
        else:
            nv = _rename(v, pre)
            if nv is not v:
                changes[f.name] = nv
    return dataclasses.replace(x, **changes) if changes else x


def _local_types(blocks, params) -> dict:
    types = {name: t for name, t in params if t != "dsd"}
    for b in blocks:
        for s in ir.walk_stmts(tuple(x.stmt if type(x) is Free else x for x in b.stmts)):
            if type(s) is ir.LocalAssign:
                dt = getattr(s.value, "dtype", None)
                if isinstance(dt, DType) and type(s.value) not in (ir.IncrementOffset,):
                    types.setdefault(s.name, dt)
            elif type(s) is ir.For:
                types.setdefault(s.var, s.dtype)
    return types


def build_cfg(pe: ir.PeProgram, cls: int, root: str, stall_sites: set, stall_fns: set,
              first: int) -> Cfg:
    """The blocks of function `root`, numbered from pc `first`."""
    f = pe.function(root)
    b = _Builder(pe, stall_sites, stall_fns, first)
    b.body(f.body, _Ctx())
    b.seal(("end",))
    return Cfg(cls, root, first, b.blocks, _local_types(b.blocks, f.params), f.params,
               _dsd_locals(b.blocks))


def _dsd_locals(blocks) -> tuple:
    names = {}
    for b in blocks:
        for s in ir.walk_stmts(tuple(x.stmt if type(x) is Free else x for x in b.stmts)):
            if type(s) is ir.LocalAssign and isinstance(s.value, ir.DsdExpr):
                names.setdefault(s.name)
    return tuple(names)
