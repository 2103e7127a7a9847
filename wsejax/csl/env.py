"""The evaluator's scopes: module instances, environments, the function being emitted, and the
jumps (`return`, `break`, `continue`) on their way out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wsejax import ir
from wsejax.csl import ast

if TYPE_CHECKING:
    from wsejax.csl.comptime import Compiler
    from wsejax.frontend.pe import PeBuilder


class _Jump(Exception):
    """A `return`, `break` or `continue` on its way to the function, loop or block it leaves."""


class _Return(_Jump):
    def __init__(self, value, depth, pos=None):
        self.value = value
        self.depth = depth
        self.pos = pos


class _Break(_Jump):
    def __init__(self, label, value, depth, pos):
        self.label = label
        self.value = value
        self.depth = depth
        self.pos = pos


class _Continue(_Jump):
    def __init__(self, label, depth, pos):
        self.label = label
        self.depth = depth
        self.pos = pos


# why a recursive function (one that calls itself, directly or through others) may not hold
# a construct: each activation keeps its locals on the call stack, and only scalars go there
STATIC_WHY = ("it lives in static memory, one copy that every activation of the function "
              "would share")
STRUCT_WHY = ("only numbers, bools, enums and pointers are kept on the call stack; pass the "
              "struct through a pointer to memory instead")
DSD_WHY = ("DSDs and DSD operations may wait on the fabric or run asynchronously, and an "
           "activation on the call stack cannot wait; keep them outside the recursion")


@dataclass
class FnCtx:
    """The function whose body is being emitted."""

    name: str
    ret: object                   # DType | None | "dsd"
    blocks: list = field(default_factory=lambda: [[]])
    loops: list = field(default_factory=list)   # open jump targets (`jumps.Target`)
    depth: int = 0                # runtime control-flow nesting (if / loop bodies)
    addressed: set = field(default_factory=set)  # locals whose address is taken (&x)
    ret_ptr: object = None        # the PtrT a function returning a pointer declares
    jump: str | None = None       # the local holding the code of a jump on its way out
    codes: int = 0                # jump codes handed out
    inflight: set = field(default_factory=set)   # codes of jumps that may be in flight here
    nested: set = field(default_factory=set)     # names assigned in an if, loop or switch
    # of a function returning a DSD: stand-in name -> (the DSD value returned, pos)
    dsd_returns: dict = field(default_factory=dict)
    at: object = None             # the position of the statement being compiled
    # what a recursive function may not hold, as `(pos, what, why)`, in the order met
    unrecursive: list = field(default_factory=list)

    def emit(self, stmt) -> None:
        if type(stmt) in (ir.DsdOp, ir.Map, ir.DsdAssign):
            self.unrecursive.append((self.at, "a DSD operation", DSD_WHY))
        self.blocks[-1].append(stmt)


@dataclass
class Env:
    module: Module
    scopes: list
    fn: FnCtx | None = None
    inline_depth: int | None = None    # set inside an inline fn: where its `return` lands

    def child(self) -> Env:
        return Env(self.module, self.scopes + [{}], self.fn, self.inline_depth)

    def comptime(self) -> Env:
        return Env(self.module, self.scopes, None)

    def lookup(self, name):
        for scope in reversed(self.scopes):
            if name in scope:
                return True, scope[name]
        return False, None

    def bind(self, name, value) -> None:
        self.scopes[-1][name] = value


# ------------------------------------------------------------------------------------------------
# Module instances


class Module:
    """A file evaluated with a set of param bindings."""

    def __init__(self, compiler: Compiler, file: ast.File, params: dict, prefix: str,
                 pe: PeBuilder | None, name: str):
        self.c = compiler
        self.file = file
        self.params = params
        self.prefix = prefix
        self.pe = pe
        self.name = name
        self.decls = {}
        self.values: dict = {}
        self._busy: set = set()
        for d in file.decls:
            if isinstance(d, (ast.VarDecl, ast.ParamDecl, ast.FnDecl, ast.TaskDecl)):
                if d.name in self.decls:
                    raise compiler.error(f"'{d.name}' is declared twice", d.pos)
                self.decls[d.name] = d
        for name in params:
            d = self.decls.get(name)
            if not isinstance(d, ast.ParamDecl):
                compiler.warn(f"{file.path}: unknown param '{name}' (no `param {name}` declared)")

    def env(self) -> Env:
        return Env(self, [{}], None)

    def has(self, name: str) -> bool:
        return name in self.decls

    def get(self, name: str, pos):
        if name in self.values:
            return self.values[name]
        d = self.decls.get(name)
        if d is None:
            raise self.c.error(f"'{name}' is not declared in {self.file.path}", pos)
        if name in self._busy:
            raise self.c.error(f"'{name}' depends on itself", pos)
        self._busy.add(name)
        try:
            with self.c.top_level(d.pos):
                v = self.c.eval_global(self, d)
        finally:
            self._busy.discard(name)
        self.values[name] = v
        return v

    def instantiate(self) -> None:
        """Import every module a global const imports (its comptime blocks run even if the
        name is never used) and run the top-level comptime blocks, in order. Every other
        global, a runtime `var` too, is made when first used: a var that nothing uses takes
        no memory and is never checked (its queue or color may be left void by params)."""
        for d in self.file.decls:
            if not isinstance(d, ast.VarDecl) or d.comptime:
                continue
            if d.const and isinstance(d.value, ast.Builtin) and d.value.name == "import_module":
                self.get(d.name, d.pos)
        for d in self.file.decls:
            if isinstance(d, ast.ComptimeBlock):
                with self.c.top_level(d.pos):
                    self.c.exec_block(d.body, self.env())
            elif isinstance(d, ast.LayoutBlock) and self.pe is not None:
                pass  # a layout block inside an imported module or PE program is ignored
