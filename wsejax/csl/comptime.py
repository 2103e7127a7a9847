"""The CSL comptime evaluator: layouts and PE programs to the Program IR.

Evaluation is Zig-like. At comptime (the layout block, global initialisers, top-level
`comptime { }` blocks, `comptime` expressions, calls made from those) every value is known and
the evaluator simply interprets. Function bodies are partially evaluated: comptime-known values
fold, runtime values become IR expressions, and statements are emitted as IR statements. A
non-inline function called at run time becomes one IR function per distinct set of comptime
arguments; an `inline fn` is expanded where it is called.

A module instance is a parsed file with its param bindings. Globals evaluate lazily (they may
be used before their declaration); a PE program's `var` globals become IR symbols, DSD
variables or pointer variables, and its `comptime` blocks run once, in order.

Every error is a `CslError` at the offending node's `file:line:col`.
"""

from __future__ import annotations

import contextlib
import pathlib
import sys

import numpy as np

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.calls import CallMixin
from wsejax.csl.coerce import CoerceMixin
from wsejax.csl.directions import DirectionMixin
from wsejax.csl.dsd_arrays import DsdArrayMixin, holds_dsd_array
from wsejax.csl.dsd_picks import DsdPickMixin
from wsejax.csl.env import Env, Module, _Break, _Continue, _Return
from wsejax.csl.expr import ExprMixin
from wsejax.csl.fn_pointers import FnPointerMixin
from wsejax.csl.handles import HandleMixin
from wsejax.csl.jumps import BranchMixin, JumpMixin
from wsejax.csl.parser import parse, read_source
from wsejax.csl.placement import PlacementMixin
from wsejax.csl.pointers import PointerMixin
from wsejax.csl.stmt import StmtMixin
from wsejax.csl.struct_pointers import StructPointerMixin
from wsejax.csl.structs import AggregateMixin, aggregate_type_of, is_aggregate_type
from wsejax.csl.values import (
    DSD_KINDS,
    UNDEFINED,
    ArrayT,
    ArrayVal,
    CellVar,
    CNum,
    DsdVal,
    DsdVarRef,
    EnumT,
    FnVal,
    PtrT,
    PtrVal,
    PtrVar,
    RPtr,
    RVal,
    Special,
    StructT,
    SymRef,
    is_fn_pointer_type,
    is_runtime_handle_type,
    type_name,
)
from wsejax.errors import CslError
from wsejax.hardware import PE_MEMORY_BYTES
from wsejax.types import DType

__all__ = ["Compiler", "Module"]

# ------------------------------------------------------------------------------------------------
# The compiler


class Compiler(ExprMixin, StmtMixin, CallMixin, CoerceMixin, AggregateMixin, PointerMixin,
               StructPointerMixin, JumpMixin, BranchMixin, HandleMixin, DsdArrayMixin,
               DsdPickMixin, DirectionMixin, PlacementMixin, FnPointerMixin):
    """Evaluates a layout and its PE programs. See `wsejax.csl.compile_csl`.

    The evaluation itself is in the mixins: expressions (`ExprMixin`), statements
    (`StmtMixin`), calls (`CallMixin`), types and conversions (`CoerceMixin`). This class holds
    their state, errors, source files and the globals of module instances.
    """

    def __init__(self, *, arch: str, import_paths=(), fp16: DType = DType.f16, warn=None,
                 max_steps: int = 20_000_000, max_loop_iterations: int = 100_000):
        self.arch = arch
        self.memcpy = False
        self.max_steps = max_steps
        self.max_loop_iterations = max_loop_iterations
        self.import_paths = [pathlib.Path(p) for p in import_paths]
        self.fp16 = fp16
        self.files: dict[str, ast.File] = {}
        self.layout = None
        self.decl_name = None     # the global const whose initialiser is being evaluated
        self.streams: dict = {}   # memcpy streaming color -> ("h2d" | "d2h", pos)
        self.launch = None        # (color, pos) of <memcpy/get_params>'s .LAUNCH, if given
        self.rpc_servers: dict = {}   # id(PeBuilder) -> (data task ID, pos) of its @rpc
        self._warn = warn or (lambda msg: print(f"wsejax cslc: warning: {msg}", file=sys.stderr))
        self._ignored: set = set()     # constructs warned about as ignored (once each)
        self._steps = 0
        self._depth_guard = 0          # calls nested in one another (see MAX_CALL_DEPTH)
        self._compiling: list = []     # (PE program, function) whose bodies are being compiled
        self._recursive: set = set()   # (id of PE program, function) of the call cycles found
        self._pe_stack: list = []      # the PE programs being built, innermost last
        # the ev_<Class> / exec_<Class> method of each node class, found on first use
        self._ev_handlers: dict = {}
        self._exec_handlers: dict = {}

    # -- errors and files -------------------------------------------------------------------

    def error(self, message: str, pos) -> CslError:
        if pos is None:
            return CslError(message)
        f = self.files.get(pos.file)
        line = None
        if f is not None and f.source and 0 < pos.line <= len(f.source.splitlines()):
            line = f.source.splitlines()[pos.line - 1]
        return CslError(message, pos.file, pos.line, pos.col, line)

    def warn(self, message: str) -> None:
        self._warn(message)

    def ignored(self, what: str, pos, why: str) -> None:
        """Warn that construct `what` (at `pos`) is accepted but has no effect here: once per
        program and construct, at its first place."""
        if what in self._ignored:
            return
        self._ignored.add(what)
        where = f"{pos.file}:{pos.line}:{pos.col}: " if pos is not None else ""
        self.warn(f"{where}{what} is accepted and ignored ({why})")

    def parse(self, path: pathlib.Path) -> ast.File:
        key = str(path)
        if key not in self.files:
            text = read_source(path)
            # the parser keeps Python's usual depth limit (counted from here): a deeply nested
            # expression is its error, not a crash of the C stack
            old = sys.getrecursionlimit()
            sys.setrecursionlimit(min(old, _frames() + 1000))
            try:
                self.files[key] = parse(text, key)
            finally:
                sys.setrecursionlimit(old)
        return self.files[key]

    def resolve(self, name: str, importer: str | None, pos) -> pathlib.Path:
        base = pathlib.Path(importer).parent if importer else pathlib.Path.cwd()
        for d in [base] + self.import_paths:
            p = d / name
            if p.is_file():
                return p
        raise self.error(f"cannot find '{name}' (searched {base}"
                         + "".join(f", {d}" for d in self.import_paths) + ")", pos)

    # -- globals ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def top_level(self, pos):
        """Evaluation of one top-level unit (a global's value, a comptime or layout block):
        a `break`, `continue` or `return` may not leave it."""
        try:
            yield
        except RecursionError:
            raise self.error("comptime evaluation recursed too deeply (Python's stack ran out)",
                             pos) from None
        except _Return as sig:
            raise self.error("return outside a function", sig.pos or pos) from None
        except (_Break, _Continue) as sig:
            what = f"break :{sig.label}" if isinstance(sig, _Break) and sig.label else (
                "break" if isinstance(sig, _Break) else "continue")
            raise self.error(f"{what} outside a loop or labelled block", sig.pos) from None

    def eval_global(self, mod: Module, d):
        env = mod.env()
        if isinstance(d, ast.ParamDecl):
            t = self.eval_type(d.type, env) if d.type is not None else None
            if d.name in mod.params:
                v = mod.params[d.name]
            elif d.default is not None:
                v = self.ev(d.default, env)
            else:
                raise self.error(f"param '{d.name}' has no value (give it a default, bind it "
                                 "in @set_tile_code / @import_module, or pass --params)", d.pos)
            return self.coerce(v, t, d.pos, f"param '{d.name}'") if t is not None else v
        if getattr(d, "extern", False):
            return self.extern_definition(mod, d)
        if isinstance(d, (ast.FnDecl, ast.TaskDecl)):
            return FnVal(d, mod)
        if d.const or d.comptime:
            self.placed(d, env, lambda: None)
            if d.value is None:
                raise self.error(f"'{d.name}' needs an initial value", d.pos)
            t = self.eval_type(d.type, env) if d.type is not None else None
            outer, self.decl_name = self.decl_name, mod.prefix + d.name if d.const else None
            try:
                v = self.ev(d.value, env)
            finally:
                self.decl_name = outer
            if isinstance(v, (StructT, EnumT)) and v.name in ("struct", "enum"):
                object.__setattr__(v, "name", d.name)
            v = self.coerce(v, t, d.value.pos, f"'{d.name}'") if t is not None else v
            return CellVar(v, t) if d.comptime else v
        outer, self.decl_name = self.decl_name, None
        try:
            return self.placed(d, env, lambda: self.global_var(mod, d, env))
        finally:
            self.decl_name = outer

    def global_var(self, mod: Module, d: ast.VarDecl, env: Env):
        """A PE program's `var`: a symbol, a DSD variable or a pointer variable."""
        if mod.pe is None:
            raise self.error(f"'var {d.name}' at the top of a layout file: use const", d.pos)
        t = self.eval_type(d.type, env) if d.type is not None else None
        if isinstance(t, ArrayT) and isinstance(t.elem, DType):
            # refused before its initial value is made: a PE holds PE_MEMORY_BYTES
            need = int(np.prod(t.shape, dtype=np.int64)) * t.elem.nbytes
            if need > PE_MEMORY_BYTES:
                raise self.error(f"'var {d.name}': {t} needs {need} bytes, more than the "
                                 f"{PE_MEMORY_BYTES} bytes of a PE's memory", d.pos)
        v = self.ev(d.value, env) if d.value is not None else None
        name = mod.prefix + d.name
        if holds_dsd_array(t, v):
            return self.dsd_array_global(mod, d, t, v)
        if isinstance(v, DsdVal) or (isinstance(t, Special) and t.name in DSD_KINDS):
            if not isinstance(v, DsdVal) or not isinstance(v.expr, ir.DsdLit):
                raise self.error(f"DSD variable '{d.name}' needs a comptime-known @get_dsd",
                                 d.pos)
            mod.pe.dsd_vars[name] = v.expr
            return DsdVarRef(name, v.kind, v.dtype)
        if is_fn_pointer_type(t) or t is None and isinstance(v, FnVal):
            # held in memory as its function's number, whether or not it is reassigned
            held = t if t is not None else PtrT("single", True, self.function_type(v, d.pos))
            return self.aggregate_global(mod, d, held, v)
        if isinstance(t, PtrT) or isinstance(v, PtrVal):
            return self.pointer_var(mod, d, t, v)
        t, v = self.held_directions(t, v)
        held = t if t is not None else aggregate_type_of(v)
        if is_aggregate_type(held) or is_runtime_handle_type(held):
            return self.aggregate_global(mod, d, held, v)
        return self.global_symbol(mod, d, t, v)

    def pointer_var(self, mod: Module, d: ast.VarDecl, t, v):
        """A global pointer `var`: a runtime pointer if the program reassigns it or takes its
        address, else the comptime pointer it was initialised with."""
        if d.name in self.runtime_pointer_names(mod) or isinstance(v, RPtr):
            return self.global_pointer(mod, d, t, v)
        if not isinstance(v, PtrVal):
            raise self.error(f"pointer variable '{d.name}' needs an initial pointer "
                             "(like &A)", d.pos)
        if t is not None:
            v = self.coerce(v, t, d.pos, f"'{d.name}'")
        return PtrVar(v, d.pos)

    def global_symbol(self, mod: Module, d: ast.VarDecl, t, v) -> SymRef:
        """A `var` in PE memory: a symbol of a scalar or array type, with its initial value."""
        name = mod.prefix + d.name
        if t is None:
            if isinstance(v, ArrayVal):
                t = ArrayT(v.elem, v.values.shape)
            elif isinstance(v, CNum):
                t = v.dtype
            else:
                raise self.error(f"'var {d.name}' needs a type", d.pos)
        if isinstance(t, DType):
            dtype, shape = t, ()
        elif isinstance(t, ArrayT) and isinstance(t.elem, DType):
            dtype, shape = t.elem, t.shape
        else:
            raise self.error(f"'var {d.name}': type {t} cannot be held in PE memory", d.pos)
        self.checked_fp16(dtype, d.pos, f"'var {d.name}'")
        if isinstance(v, RVal):
            raise self.error(f"the initial value of '{d.name}' must be comptime-known", d.pos)
        init = None
        if v is not None and v is not UNDEFINED:
            v = self.coerce(v, t, d.pos, f"'{d.name}'")
            flat = v.values.reshape(-1).tolist() if isinstance(v, ArrayVal) else [
                v.value if isinstance(v, CNum) else v]
            if any(flat):
                init = tuple(flat)
        mod.pe.symbols[name] = ir.Symbol(name, dtype, tuple(shape), init)
        return SymRef(name, dtype, tuple(shape))

    def extern_definition(self, mod: Module, d):
        """`extern var x: T;` / `extern fn f(...) R;`: the `export` of the same name that
        another module of the same PE program defines."""
        kind = "fn" if isinstance(d, ast.FnDecl) else "var"
        for other in self.modules_of(mod.pe):
            e = other.decls.get(d.name)
            if (other is not mod and e is not None and type(e) is type(d)
                    and getattr(e, "export", False) and not getattr(e, "extern", False)):
                v = other.get(d.name, d.pos)
                if kind == "var" and d.type is not None:
                    want = self.eval_type(d.type, mod.env())
                    got = ArrayT(v.dtype, v.shape) if getattr(v, "shape", ()) else getattr(
                        v, "dtype", None)
                    if got != want:
                        raise self.error(f"extern var '{d.name}': declared {type_name(want)}, "
                                         f"but {other.file.path} exports it as "
                                         f"{type_name(got)}", d.pos)
                return v
        raise self.error(f"extern {kind} '{d.name}': no module of this PE program exports a "
                         f"{kind} named '{d.name}'", d.pos)

    def modules_of(self, pe) -> list:
        """The modules instantiated for PE program `pe` (the program-building subclass keeps
        them)."""
        return []

    # -- what the layout-building subclass provides ----------------------------------------

    def layout_for(self, node):
        """The layout being built, for a layout builtin (`@set_rectangle`, ...) at `node`."""
        raise self.error(f"@{node.name} belongs in the layout block", node.pos)

    def rectangle_struct(self, pos):
        """`@get_rectangle()`: the rectangle's and the fabric's dimensions."""
        raise self.error("@get_rectangle before @set_rectangle", pos)

    def import_module(self, path: str, params: dict, env: Env, pos):
        """`@import_module(path, params)`: a ModuleVal."""
        raise self.error(f"cannot import '{path}' here", pos)


# ------------------------------------------------------------------------------------------------
# Helpers


def _frames() -> int:
    """The number of Python frames on the stack."""
    f, n = sys._getframe(), 0
    while f is not None:
        f, n = f.f_back, n + 1
    return n
