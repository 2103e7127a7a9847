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
import math
import pathlib
import sys

import numpy as np

from wsejax import ir
from wsejax.csl import ast, builtins
from wsejax.csl.env import Env, FnCtx, Module, _Break, _Continue, _Return
from wsejax.csl.parser import parse, read_source
from wsejax.csl.values import (
    ANYTYPE,
    COMPTIME_FLOAT,
    COMPTIME_INT,
    COMPTIME_STRING,
    COMPTIME_STRUCT,
    DIRECTIONS,
    DSD_KINDS,
    HANDLE_TYPES,
    MODULE,
    SCALARS,
    SPECIALS,
    TYPE,
    UNDEFINED,
    VOID,
    ArrayT,
    ArrayVal,
    CellVar,
    CNum,
    ColorVal,
    DsdVal,
    DsdVarRef,
    EnumLitVal,
    EnumT,
    EnumVal,
    FnT,
    FnVal,
    LocalDsd,
    LocalVar,
    ModuleVal,
    NativeFn,
    PeColorVal,
    PtrT,
    PtrVal,
    PtrVar,
    QueueVal,
    RangeVal,
    RVal,
    Special,
    StructT,
    StructVal,
    SymRef,
    TaskIdVal,
    TensorAccessVal,
    TupleVal,
    UtIdVal,
    describe,
    freeze,
    ieee_float,
    int_range,
    is_comptime,
    is_comptime_value,
    is_type,
)
from wsejax.dsd import Affine
from wsejax.errors import CslError
from wsejax.hardware import COMPTIME_ARRAY_BYTES, PE_MEMORY_BYTES
from wsejax.types import DType, widens

__all__ = ["Compiler", "Module"]

# ------------------------------------------------------------------------------------------------
# The compiler


class Compiler:
    """Evaluates a layout and its PE programs. See `wsejax.csl.compile_csl`."""

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
        self._warn = warn or (lambda msg: print(f"wsejax cslc: warning: {msg}", file=sys.stderr))
        self._ignored: set = set()     # constructs warned about as ignored (once each)
        self._steps = 0

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

    def ignored_attrs(self, d: ast.VarDecl) -> None:
        why = {"align": "a variable is placed at its type's own alignment",
               "linksection": "PE memory has no link sections here",
               "linkname": "symbols have no link names here"}
        for a in d.attrs:
            self.ignored(f"{a}(...) on a variable", d.pos, why[a])

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
        if isinstance(d, (ast.FnDecl, ast.TaskDecl)):
            return FnVal(d, mod)
        self.ignored_attrs(d)
        if d.const or d.comptime:
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
            return self.global_var(mod, d, env)
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
        if isinstance(v, DsdVal) or (isinstance(t, Special) and t.name in DSD_KINDS):
            if not isinstance(v, DsdVal) or not isinstance(v.expr, ir.DsdLit):
                raise self.error(f"DSD variable '{d.name}' needs a comptime-known @get_dsd",
                                 d.pos)
            mod.pe.dsd_vars[name] = v.expr
            return DsdVarRef(name, v.kind, v.dtype)
        if isinstance(t, PtrT) or isinstance(v, PtrVal):
            if not isinstance(v, PtrVal):
                raise self.error(f"pointer variable '{d.name}' needs an initial pointer "
                                 "(like &A)", d.pos)
            if t is not None:
                v = self.coerce(v, t, d.pos, f"'{d.name}'")
            return PtrVar(v, d.pos)
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
        init = None
        if isinstance(v, RVal):
            raise self.error(f"the initial value of '{d.name}' must be comptime-known", d.pos)
        if v is not None and v is not UNDEFINED:
            v = self.coerce(v, t, d.pos, f"'{d.name}'")
            if isinstance(v, ArrayVal):
                if v.values.any():
                    init = tuple(v.values.reshape(-1).tolist())
            else:
                raw = v.value if isinstance(v, CNum) else v
                if raw:
                    init = (raw,)
        mod.pe.symbols[name] = ir.Symbol(name, dtype, tuple(shape), init)
        return SymRef(name, dtype, tuple(shape))

    # -- types ------------------------------------------------------------------------------

    def check_array_size(self, t, pos, what: str) -> None:
        """Refuse to build a comptime array of type t larger than COMPTIME_ARRAY_BYTES."""
        if isinstance(t, ArrayT) and isinstance(t.elem, DType):
            need = int(np.prod(t.shape, dtype=np.int64)) * t.elem.nbytes
            if need > COMPTIME_ARRAY_BYTES:
                raise self.error(f"{what}: {t} holds {need} bytes, more than wsejax builds at "
                                 f"comptime ({COMPTIME_ARRAY_BYTES} bytes; a PE's memory is "
                                 f"{PE_MEMORY_BYTES})", pos)

    def eval_type(self, node, env: Env):
        t = self.ev(node, env.comptime() if env.fn is not None else env)
        if not is_type(t):
            raise self.error(f"expected a type, got {describe(t)}", node.pos)
        return t

    # -- coercion ---------------------------------------------------------------------------

    def coerce(self, v, t, pos, what: str):
        """`v` as a value of type `t` (implicit conversions only), or CslError."""
        if t is None or t is ANYTYPE or t is TYPE and is_type(v):
            return v
        if isinstance(t, DType):
            if v is UNDEFINED:
                return CNum(0, t)
            if isinstance(v, bool) or isinstance(v, (int, float)):
                return CNum(self.num_in(v, t, pos, what), t)
            if isinstance(v, CNum):
                if v.dtype == t:
                    return v
                # a comptime-known integer converts to any numeric type it fits in
                if widens(v.dtype, t) or (v.dtype.is_int and (t.is_int or t.is_float)):
                    return CNum(self.num_in(v.value, t, pos, what), t)
                raise self.error(f"{what}: expected {t}, got {v.dtype} (convert with @as)", pos)
            if isinstance(v, RVal):
                if v.dtype == t:
                    return v
                if widens(v.dtype, t):
                    return RVal(ir.Cast(v.expr, t), t)
                raise self.error(f"{what}: expected {t}, got {v.dtype} (convert with @as)", pos)
            if isinstance(v, EnumVal) and t.is_int:
                raise self.error(f"{what}: expected {t}, got an enum (use @as)", pos)
            raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)
        if isinstance(t, ArrayT):
            if isinstance(v, ArrayVal):
                if tuple(v.values.shape) != tuple(t.shape):
                    raise self.error(f"{what}: expected {t}, got an array of shape "
                                     f"{list(v.values.shape)}", pos)
                return ArrayVal(t.elem, v.values.astype(t.elem.np))
            if v is UNDEFINED:
                return ArrayVal(t.elem, np.zeros(t.shape, t.elem.np))
            raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)
        if isinstance(t, PtrT):
            if isinstance(v, PtrVal):
                if isinstance(t.elem, DType) and t.elem != v.dtype and not (
                        isinstance(t.elem, ArrayT) or v.shape):
                    raise self.error(f"{what}: expected {t}, got a pointer to {v.dtype}", pos)
                return PtrVal(v.name, v.dtype, v.shape, v.offset, t.kind, t.const,
                              isinstance(t.elem, ArrayT))
            if isinstance(v, FnVal) and isinstance(t.elem, FnT):
                return v
            raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)
        if isinstance(t, Special):
            if t.name in DSD_KINDS:
                if isinstance(v, DsdVal):
                    return v
                raise self.error(f"{what}: expected a {t.name}, got {describe(v)}", pos)
            if t is COMPTIME_INT and isinstance(v, int) and not isinstance(v, bool):
                return v
            if t is COMPTIME_FLOAT and isinstance(v, (int, float)):
                return float(v)
            if t is COMPTIME_STRUCT and isinstance(v, (StructVal, TupleVal)):
                return v
            if t is COMPTIME_STRING and isinstance(v, str):
                return v
            if t is MODULE and isinstance(v, ModuleVal):
                return v
            if t.name == "color":
                if isinstance(v, (ColorVal, PeColorVal)):
                    return v
                n = v.value if isinstance(v, CNum) else v
                if isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 23:
                    return ColorVal(n)
                raise self.error(f"{what}: expected a color (0 to 23), got {describe(v)}", pos)
            if t.name in ("input_queue", "output_queue"):
                if isinstance(v, QueueVal) and t.name == f"{v.kind}_queue":
                    return v
                raise self.error(f"{what}: expected an {t.name} (@get_{t.name}(n)), got "
                                 f"{describe(v)}", pos)
            if t.name in ("local_task_id", "data_task_id"):
                if isinstance(v, TaskIdVal) and t.name == f"{v.kind}_task_id":
                    return v
                raise self.error(f"{what}: expected a {t.name} (@get_{t.name}(...)), got "
                                 f"{describe(v)}", pos)
            if t.name == "ut_id":
                if isinstance(v, UtIdVal):
                    return v
                raise self.error(f"{what}: expected a ut_id (@get_ut_id(n)), got "
                                 f"{describe(v)}", pos)
            if t.name in HANDLE_TYPES:
                return v
            raise self.error(f"{what}: expected {t.name}, got {describe(v)}", pos)
        if isinstance(t, StructT):
            if isinstance(v, StructVal) and v.stype is t:
                return v
            if isinstance(v, (StructVal, TupleVal)):
                fields = v.fields if isinstance(v, StructVal) else {}
                names = [f[0] for f in t.fields]
                extra = set(fields) - set(names)
                if extra:
                    raise self.error(f"{what}: {t.name} has no field '{sorted(extra)[0]}'", pos)
                out = {}
                for name, ft, default in t.fields:
                    if name in fields:
                        out[name] = self.coerce(fields[name], ft, pos, f"{what}.{name}")
                    elif default is not None:
                        out[name] = default
                    else:
                        raise self.error(f"{what}: missing field '{name}' of {t.name}", pos)
                return StructVal(out, t)
            raise self.error(f"{what}: expected {t.name}, got {describe(v)}", pos)
        if isinstance(t, EnumT):
            if isinstance(v, EnumVal) and v.etype is t:
                return v
            if isinstance(v, EnumLitVal):
                for name, value in t.members:
                    if name == v.name:
                        return EnumVal(t, name, value)
                raise self.error(f"{what}: {t.name} has no member '{v.name}'", pos)
            raise self.error(f"{what}: expected {t.name}, got {describe(v)}", pos)
        if isinstance(t, FnT):
            if isinstance(v, (FnVal, NativeFn)):
                return v
        return v

    def num_in(self, v, t: DType, pos, what):
        if t is DType.bool_:
            if not isinstance(v, bool):
                raise self.error(f"{what}: expected bool, got {describe(v)}", pos)
            return v
        if isinstance(v, bool):
            raise self.error(f"{what}: expected {t}, got bool", pos)
        if t.is_float:
            return ieee_float(v, t)
        if isinstance(v, float):
            if v != int(v):
                raise self.error(f"{what}: {v} is not an integer ({t} expected)", pos)
            v = int(v)
        lo, hi = int_range(t)
        if not lo <= v <= hi:
            raise self.error(f"{what}: {v} does not fit in {t}", pos)
        return int(v)

    # -- statements -------------------------------------------------------------------------

    def exec_block(self, block: ast.Block, env: Env) -> None:
        inner = env.child()
        if block.comptime and env.fn is not None:
            inner = Env(env.module, inner.scopes, None)
        if block.label is not None:
            try:
                for s in block.stmts:
                    self.exec(s, inner)
            except _Break as b:
                if b.label != block.label:
                    raise
            return
        for s in block.stmts:
            self.exec(s, inner)

    def step(self, pos) -> None:
        """Count one step of comptime evaluation; too many is an error, not a hang."""
        self._steps += 1
        if self._steps > self.max_steps:
            raise self.error(f"comptime evaluation ran past {self.max_steps} steps (an endless "
                             "comptime loop?)", pos)

    def exec(self, s, env: Env) -> None:
        self.step(getattr(s, "pos", None))
        t = type(s)
        if t is ast.Block:
            self.exec_block(s, env)
        elif t is ast.ExprStmt:
            v = self.ev(s.expr, env)
            if v is not None and env.fn is None and isinstance(v, RVal):
                raise self.error("a runtime value in a comptime context", s.pos)
        elif t is ast.VarDecl:
            self.local_decl(s, env)
        elif t is ast.Assign:
            self.assign(s, env)
        elif t is ast.If:
            self.if_stmt(s, env)
        elif t is ast.While:
            self.while_stmt(s, env)
        elif t is ast.For:
            self.for_stmt(s, env)
        elif t is ast.Return:
            self.return_stmt(s, env)
        elif t is ast.Break:
            self.break_stmt(s, env)
        elif t is ast.Continue:
            self.continue_stmt(s, env)
        else:
            raise self.error(f"unexpected statement {t.__name__}", getattr(s, "pos", None))

    def local_decl(self, d: ast.VarDecl, env: Env) -> None:
        self.ignored_attrs(d)
        t = self.eval_type(d.type, env) if d.type is not None else None
        v = self.ev_as(d.value, t, env) if d.value is not None else UNDEFINED
        what = f"'{d.name}'"
        if d.comptime or env.fn is None:
            if isinstance(v, (RVal, LocalVar)):
                raise self.error(f"{what} is comptime, but its value is only known at run time",
                                 d.pos)
            v = self.coerce(v, t, d.pos, what) if t is not None and v is not UNDEFINED else v
            if v is UNDEFINED and isinstance(t, (DType, ArrayT)):
                v = self.coerce(UNDEFINED, t, d.pos, what)
            env.bind(d.name, CellVar(v, t, _runtime_loops(env.fn)) if not d.const else v)
            return
        fn = env.fn
        if isinstance(v, DsdVal) or (isinstance(t, Special) and t.name in DSD_KINDS):
            if not isinstance(v, DsdVal):
                raise self.error(f"{what}: expected a DSD", d.pos)
            if d.const and isinstance(v.expr, ir.DsdLit):
                env.bind(d.name, v)
                return
            name = env.module.pe.fresh(d.name + ".")
            fn.emit(ir.LocalAssign(name, v.expr))
            env.bind(d.name, LocalDsd(name, v.kind, v.dtype))
            return
        if d.const and not isinstance(v, RVal):
            env.bind(d.name, self.coerce(v, t, d.pos, what) if t is not None else v)
            return
        if isinstance(t, ArrayT) or isinstance(v, ArrayVal):
            env.bind(d.name, self.local_array(d, t, v, env))
            return
        if isinstance(v, (PtrVal, FnVal, ModuleVal, StructVal, TupleVal, RangeVal)) or is_type(v):
            if not d.const:
                raise self.error(f"{what}: a runtime var cannot hold {describe(v)}; use const",
                                 d.pos)
            env.bind(d.name, v)
            return
        if t is None:
            if isinstance(v, RVal):
                t = v.dtype
            elif isinstance(v, CNum):
                t = v.dtype
            else:
                raise self.error(f"{what} needs a type: `var {d.name}: T = ...`", d.pos)
        if not isinstance(t, DType):
            raise self.error(f"{what}: runtime locals of type {t} are not supported", d.pos)
        if d.name in fn.addressed:
            # its address is taken: it lives in memory (functions do not recurse)
            ref = self.static_local(env, d.name, t, ())
            fn.emit(ir.Assign(ref.name, (), self.to_expr(
                self.coerce(v if v is not UNDEFINED else 0, t, d.pos, what), t, d.pos)))
            env.bind(d.name, ref)
            return
        name = env.module.pe.fresh(d.name + ".")
        init = self.to_expr(self.coerce(v if v is not UNDEFINED else 0, t, d.pos, what), t,
                            d.pos)
        fn.emit(ir.LocalAssign(name, init))
        lv = LocalVar(name, t)
        env.bind(d.name, lv.value() if d.const else lv)

    def local_array(self, d: ast.VarDecl, t, v, env: Env) -> SymRef:
        """A local array of a function: static storage (functions do not recurse)."""
        if t is None:
            t = ArrayT(v.elem, v.values.shape)
        if not isinstance(t.elem, DType):
            raise self.error(f"'{d.name}': arrays of {t.elem} are not supported", d.pos)
        ref = self.static_local(env, d.name, t.elem, tuple(t.shape))
        name = ref.name
        if v is not UNDEFINED:
            v = self.coerce(v, t, d.pos, f"'{d.name}'")
            flat = v.values.reshape(-1)
            if flat.size > 1024:
                raise self.error(f"'{d.name}': initialising a local array of more than 1024 "
                                 "elements is not supported; make it a global", d.pos)
            for k, x in enumerate(flat.tolist()):
                idx = np.unravel_index(k, t.shape)
                env.fn.emit(ir.Assign(name, tuple(ir.Const(int(i), DType.i32) for i in idx),
                                      ir.Const(x, t.elem)))
        return ref

    def static_local(self, env: Env, name: str, dtype: DType, shape: tuple) -> SymRef:
        """Memory for a local of the current function (an array, or a scalar whose address
        is taken): a global symbol named after the function."""
        pe = env.module.pe
        sym = f"{env.module.prefix}{env.fn.name}.{name}"
        k = 1
        while sym in pe.symbols:
            k += 1
            sym = f"{env.module.prefix}{env.fn.name}.{name}#{k}"
        pe.symbols[sym] = ir.Symbol(sym, dtype, shape, None)
        return SymRef(sym, dtype, shape)

    def assign(self, s: ast.Assign, env: Env) -> None:
        value = s.value
        if s.op != "=":
            value = ast.Binary(s.op[:-1], s.target, s.value, s.pos)
        target = s.target
        if isinstance(target, ast.Ident) and target.name == "_" and s.op == "=":
            self.ev(value, env)          # `_ = e;` evaluates e and drops it
            return
        if isinstance(target, ast.Ident):
            found, b = env.lookup(target.name)
            if not found and env.module.has(target.name):
                b = env.module.get(target.name, target.pos)
                found = True
            if not found:
                raise self.error(f"unknown name '{target.name}'", target.pos)
            v = self.ev_as(value, b.dtype if isinstance(b, (LocalVar, SymRef)) else None, env)
            if isinstance(b, CellVar):
                if isinstance(v, (RVal, LocalVar)):
                    raise self.error(f"comptime var '{target.name}' cannot take a runtime "
                                     "value", s.pos)
                if _runtime_loops(env.fn) > b.loops:
                    raise self.error(f"comptime var '{target.name}' is changed inside a "
                                     "run-time loop (it would change once, at compile time); "
                                     "make the loop `inline`, or the variable a runtime var",
                                     s.pos)
                b.value = self.coerce(v, b.type, s.pos, f"'{target.name}'") \
                    if b.type is not None else v
                return
            fn = self.need_fn(env, s.pos, "assignment to a runtime variable")
            if isinstance(b, LocalVar):
                fn.emit(ir.LocalAssign(b.name, self.to_expr(v, b.dtype, s.pos,
                                                            f"'{target.name}'")))
            elif isinstance(b, SymRef) and not b.shape:
                fn.emit(ir.Assign(b.name, (), self.to_expr(v, b.dtype, s.pos,
                                                           f"'{target.name}'")))
            elif isinstance(b, DsdVarRef):
                fn.emit(ir.DsdAssign(b.name, self.dsd_of(v, s.pos).expr))
            elif isinstance(b, LocalDsd):
                fn.emit(ir.LocalAssign(b.name, self.dsd_of(v, s.pos).expr))
            else:
                raise self.error(f"cannot assign to {describe(b)} '{target.name}'", s.pos)
            return
        if isinstance(target, (ast.Index, ast.Deref)):
            ref = self.lvalue(target, env)
            v = self.ev(value, env)
            if isinstance(ref, tuple) and ref[0] == "comptime":
                _, arr, idx = ref
                arr.values[idx] = self.coerce(v, arr.elem, s.pos, "element").value
                return
            fn = self.need_fn(env, s.pos, "assignment to memory")
            name, indices, dtype, view = ref
            e = self.to_expr(v, view, s.pos, f"element of '{name}'")
            if view != dtype:
                e = ir.Bitcast(e, dtype)
            fn.emit(ir.Assign(name, indices, e))
            return
        if isinstance(target, ast.Field):
            obj = self.ev(target.obj, env)
            if isinstance(obj, StructVal) and env.fn is None or isinstance(obj, StructVal):
                if target.name not in obj.fields and obj.stype is not None:
                    raise self.error(f"no field '{target.name}'", target.pos)
                obj.fields[target.name] = self.ev(value, env)
                return
        if isinstance(target, ast.Builtin) and target.name == "field":
            obj = self.ev(target.args[0], env)
            name = self.ev(target.args[1], env)
            if isinstance(obj, StructVal) and isinstance(name, str):
                obj.fields[name] = self.ev(value, env)
                return
        raise self.error("this cannot be assigned to", s.pos)

    def const_symbol(self, arr: ArrayVal, env: Env, pos) -> SymRef:
        """The PE memory symbol that holds comptime array `arr`, read at run time (by a runtime
        index or a DSD): one symbol per array."""
        pe = env.module.pe
        if pe is None:
            raise self.error("a comptime array placed in PE memory outside a PE program", pos)
        key = id(arr)
        ref = pe.const_arrays.get(key)
        if ref is None:
            name = f"%const{len(pe.const_arrays)}"
            init = tuple(arr.values.reshape(-1).tolist())
            pe.symbols[name] = ir.Symbol(name, arr.elem, tuple(arr.values.shape),
                                         init if any(init) else None)
            ref = pe.const_arrays[key] = (SymRef(name, arr.elem, tuple(arr.values.shape)), arr)
        return ref[0]

    def lvalue(self, target, env: Env, base=None):
        """`("comptime", ArrayVal, index)` or `(symbol, indices, symbol dtype, view dtype)`."""
        if isinstance(target, ast.Deref):
            p = self.ev(target.obj, env)
            if not isinstance(p, PtrVal):
                raise self.error(f"cannot dereference {describe(p)}", target.pos)
            if p.array:
                raise self.error("assigning a whole array through a pointer is not supported; "
                                 "assign its elements, `(p.*)[i] = x`", target.pos)
            idx = np.unravel_index(p.offset, p.shape) if p.shape else ()
            return (p.name, tuple(ir.Const(int(i), DType.i32) for i in idx), self.sym_dtype(p),
                    p.dtype)
        obj = base if base is not None else self.ev_ref(target.obj, env)
        if isinstance(obj, CellVar):
            obj = obj.value
        if isinstance(obj, ArrayVal):
            idx = [self.ev(i, env) for i in target.indices]
            return ("comptime", obj, self.array_index(obj, idx, target.pos))
        if isinstance(obj, SymRef):
            indices = tuple(self.to_index(self.ev(i, env), i.pos) for i in target.indices)
            if len(indices) != len(obj.shape):
                raise self.error(f"'{obj.name}' has rank {len(obj.shape)}, indexed with "
                                 f"{len(indices)} indices", target.pos)
            return (obj.name, indices, obj.dtype, obj.dtype)
        if isinstance(obj, (PtrVal, PtrVar)):
            p = obj.ptr if isinstance(obj, PtrVar) else obj
            if len(target.indices) != 1:
                raise self.error("a pointer takes one index", target.pos)
            return self.ptr_element(p, self.ev(target.indices[0], env), target.pos)
        raise self.error(f"cannot index {describe(obj)}", target.pos)

    def array_index(self, arr: ArrayVal, idx, pos) -> tuple:
        """Comptime indices into a comptime array, each within its dimension (no wrapping
        around from the end, as a Python index would)."""
        shape = arr.values.shape
        if len(idx) > len(shape):
            raise self.error(f"an array of rank {len(shape)} indexed with {len(idx)} indices",
                             pos)
        out = tuple(self.comptime_int(i, pos) for i in idx)
        if not all(0 <= k < n for k, n in zip(out, shape)):
            raise self.error(f"index {list(out)} out of range of an array of shape "
                             f"{list(shape)}", pos)
        return out

    def ptr_element(self, p: PtrVal, i, pos):
        """(symbol, flat-index tuple, symbol dtype, view dtype) of `p[i]`."""
        size = int(np.prod(p.shape)) if p.shape else 1
        flat = self.to_index(i, pos)
        if p.offset:
            flat = ir.Bin("+", ir.Cast(flat, DType.i32) if flat.dtype != DType.i32 else flat,
                          ir.Const(p.offset, DType.i32), DType.i32)
        sym_shape = p.shape or (1,)
        if len(sym_shape) == 1:
            return (p.name, (flat,) if p.shape else (), self.sym_dtype(p), p.dtype)
        del size
        raise self.error("indexing a pointer to a multi-dimensional array is not supported",
                         pos)

    def sym_dtype(self, p: PtrVal) -> DType:
        sym = self._pe_symbol(p.name)
        return sym.dtype if sym is not None else p.dtype

    def _pe_symbol(self, name):
        for pe in self._pe_stack:
            if name in pe.symbols:
                return pe.symbols[name]
        return None

    def if_stmt(self, s: ast.If, env: Env) -> None:
        c = self.ev(s.cond, env)
        if isinstance(c, (bool, CNum)):
            c = c.value if isinstance(c, CNum) else c
            if not isinstance(c, bool):
                raise self.error("if condition must be a bool", s.cond.pos)
            if c:
                self.exec_block(s.then, env)
            elif s.orelse is not None:
                self.exec(s.orelse, env)
            return
        if not isinstance(c, RVal) or c.dtype is not DType.bool_:
            raise self.error(f"if condition must be a bool, got {describe(c)}", s.cond.pos)
        fn = self.need_fn(env, s.cond.pos, "a condition known only at run time")
        then = self.emit_block(fn, lambda: self.exec_block(s.then, env))
        orelse = ()
        if s.orelse is not None:
            orelse = self.emit_block(fn, lambda: self.exec(s.orelse, env))
        fn.emit(ir.If(c.expr, then, orelse))

    def emit_block(self, fn: FnCtx, body) -> tuple:
        """Run `body` collecting the statements it emits into a nested runtime block."""
        fn.blocks.append([])
        fn.depth += 1
        try:
            body()
        except (_Break, _Continue, _Return) as sig:
            if sig.depth >= fn.depth:
                raise
            raise self.error("leaving an inline loop, labelled block or inline function from "
                             "inside a runtime condition or loop is not supported",
                             getattr(sig, "pos", None)) from None
        finally:
            fn.depth -= 1
            out = tuple(fn.blocks.pop())
        return out

    def while_stmt(self, s: ast.While, env: Env) -> None:
        c = self.ev(s.cond, env)
        if env.fn is not None and not s.inline and (c is True or c == CNum(True, DType.bool_)) \
                and not self.reads_comptime_var(s.cond, env):
            # `while (true)` in a function body is a run-time loop (it ends by a break, which
            # may be known only at run time); a condition over comptime vars unrolls
            c = RVal(ir.Const(True, DType.bool_), DType.bool_)
        if env.fn is None or s.inline or isinstance(c, (bool, CNum)):
            self.unroll_while(s, env, c)
            return
        if not isinstance(c, RVal) or c.dtype is not DType.bool_:
            raise self.error(f"while condition must be a bool, got {describe(c)}", s.cond.pos)
        fn = env.fn
        if _has_effects(c.expr):
            raise self.error("a call in a runtime while condition is not supported; compute it "
                             "into a variable", s.cond.pos)
        fn.loops.append((s.label, "runtime", fn.depth + 1))
        try:
            body = self.emit_block(fn, lambda: self.exec_block(s.body, env))
            cont = () if s.cont is None else self.emit_block(fn, lambda: self.exec(s.cont, env))
        finally:
            fn.loops.pop()
        fn.emit(ir.While(c.expr, body, cont))

    def reads_comptime_var(self, node, env: Env) -> bool:
        """Whether expression `node` names a comptime var (local or global)."""
        import dataclasses

        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Ident):
                found, v = env.lookup(n.name)
                if not found:
                    v = env.module.values.get(n.name)
                if isinstance(v, CellVar):
                    return True
            if dataclasses.is_dataclass(n):
                stack.extend(getattr(n, f.name) for f in dataclasses.fields(n) if f.name != "pos")
            elif isinstance(n, tuple):
                stack.extend(n)
        return False

    def unroll_while(self, s: ast.While, env: Env, c) -> None:
        if isinstance(c, RVal):
            raise self.error("this while condition is known only at run time, but the loop "
                             "runs at comptime (inline, or outside a function body)", s.cond.pos)
        depth = env.fn.depth if env.fn else 0
        if env.fn:
            env.fn.loops.append((s.label, "comptime", depth))
        count = 0
        try:
            while True:
                if isinstance(c, CNum):
                    c = c.value
                if not isinstance(c, bool):
                    raise self.error("an inline or comptime while needs a comptime-known bool "
                                     "condition", s.cond.pos)
                if not c:
                    break
                self.step(s.pos)
                count += 1
                if count > self.max_loop_iterations:
                    raise self.error(f"this {'inline' if s.inline else 'comptime'} while loop "
                                     f"ran more than {self.max_loop_iterations} iterations at "
                                     "comptime (a loop without end?)", s.pos)
                try:
                    self.exec_block(s.body, env)
                except _Continue as k:
                    if k.label not in (None, s.label) or k.depth != depth:
                        raise
                except _Break as b:
                    if b.label not in (None, s.label) or b.depth != depth:
                        raise
                    break
                if s.cont is not None:
                    self.exec(s.cont, env)
                c = self.ev(s.cond, env)
        finally:
            if env.fn:
                env.fn.loops.pop()

    def for_stmt(self, s: ast.For, env: Env) -> None:
        it = self.ev(s.iterable, env)
        if isinstance(it, RangeVal) and env.fn is not None and not s.inline:
            self.runtime_range(s, it, env)
            return
        if isinstance(it, SymRef) and env.fn is not None and not s.inline:
            self.runtime_array_loop(s, it, env)
            return
        if isinstance(it, RangeVal):
            if len(it) > self.max_loop_iterations:
                raise self.error(f"this {'inline' if s.inline else 'comptime'} for loop would run "
                                 f"{len(it)} iterations at comptime, more than "
                                 f"{self.max_loop_iterations}", s.pos)
            dt = it.dtype
            items = [CNum(v, dt) if isinstance(dt, DType) else v
                     for v in range(it.start, it.stop, it.step)]
        elif isinstance(it, TupleVal):
            items = list(it.items)
        elif isinstance(it, ArrayVal):
            items = [CNum(v, it.elem) for v in it.values.reshape(-1).tolist()]
        elif isinstance(it, str):
            items = [CNum(b, DType.u8) for b in it.encode()]
        else:
            raise self.error(f"cannot iterate over {describe(it)}", s.iterable.pos)
        depth = env.fn.depth if env.fn else 0
        if env.fn:
            env.fn.loops.append((s.label, "comptime", depth))
        try:
            for k, item in enumerate(items):
                inner = env.child()
                inner.bind(s.capture, item)
                if s.index:
                    inner.bind(s.index, k)
                try:
                    self.exec_block(s.body, inner)
                except _Continue as c:
                    if c.label not in (None, s.label) or c.depth != depth:
                        raise
                except _Break as b:
                    if b.label not in (None, s.label) or b.depth != depth:
                        raise
                    break
        finally:
            if env.fn:
                env.fn.loops.pop()

    def runtime_range(self, s: ast.For, r: RangeVal, env: Env) -> None:
        fn = env.fn
        dt = r.dtype if isinstance(r.dtype, DType) else DType.i32
        var = env.module.pe.fresh(s.capture + ".")
        inner = env.child()
        inner.bind(s.capture, RVal(ir.Local(var, dt), dt))
        if s.index:
            k = ir.Bin("-", ir.Local(var, dt), ir.Const(r.start, dt), dt)
            if r.step != 1:
                k = ir.Bin("/", k, ir.Const(r.step, dt), dt)
            inner.bind(s.index, RVal(k, dt))
        n = len(r)
        lo, hi = int_range(dt) if dt.is_int else (None, None)
        for v in (r.start, r.start + (n - 1) * r.step) if n else ():
            if lo is not None and not lo <= v <= hi:
                raise self.error(f"a run-time loop over {dt} cannot take the value {v}; give "
                                 "@range a wider type", s.iterable.pos)
        fn.loops.append((s.label, "runtime", fn.depth + 1))
        try:
            body = self.emit_block(fn, lambda: self.exec_block(s.body, inner))
        finally:
            fn.loops.pop()
        if n <= _MAX_FOR_TRIPS:
            fn.emit(ir.For(var, dt, r.start, r.stop, r.step, body))
            return
        # a trip count an ir.For cannot carry (the engine counts trips in i32): the same loop
        # as a while over the loop variable, which needs the value after the last in dt
        after = r.start + n * r.step
        if lo is None or not lo <= after <= hi:
            raise self.error(f"a run-time loop of {n} iterations over {dt}: its counter would "
                             f"overflow (the value after the last, {after}, does not fit in "
                             f"{dt})", s.iterable.pos)
        v = ir.Local(var, dt)
        fn.emit(ir.LocalAssign(var, ir.Const(r.start, dt)))
        fn.emit(ir.While(ir.Bin("<" if r.step > 0 else ">", v, ir.Const(r.stop, dt), DType.bool_),
                         body, (ir.LocalAssign(var, ir.Bin(
                             "+" if r.step > 0 else "-", v, ir.Const(abs(r.step), dt), dt)),)))

    def runtime_array_loop(self, s: ast.For, arr: SymRef, env: Env) -> None:
        if len(arr.shape) != 1:
            raise self.error("for over a multi-dimensional array is not supported", s.pos)
        fn = env.fn
        var = env.module.pe.fresh("k.")
        k = ir.Local(var, DType.i32)
        inner = env.child()
        inner.bind(s.capture, RVal(ir.Load(arr.name, (k,), arr.dtype), arr.dtype))
        if s.index:
            inner.bind(s.index, RVal(k, DType.i32))
        fn.loops.append((s.label, "runtime", fn.depth + 1))
        try:
            body = self.emit_block(fn, lambda: self.exec_block(s.body, inner))
        finally:
            fn.loops.pop()
        fn.emit(ir.For(var, DType.i32, 0, arr.shape[0], 1, body))

    def return_stmt(self, s: ast.Return, env: Env) -> None:
        want = env.fn.ret if env.fn is not None and env.inline_depth is None else None
        v = self.ev_as(s.value, want, env) if s.value is not None else None
        fn = env.fn
        inline = env.inline_depth
        if fn is None or inline is not None:
            raise _Return(v, inline if inline is not None else 0, s.pos)
        if fn.ret is None:
            if v is not None:
                raise self.error(f"{fn.name} returns void", s.pos)
            fn.emit(ir.Return(None))
            return
        if v is None:
            raise self.error(f"{fn.name} must return a value", s.pos)
        if fn.ret == "dsd":
            fn.emit(ir.Return(self.dsd_of(v, s.pos).expr))
        else:
            fn.emit(ir.Return(self.to_expr(v, fn.ret, s.pos, "return value")))

    def break_stmt(self, s: ast.Break, env: Env) -> None:
        fn = env.fn
        value = self.ev(s.value, env) if s.value is not None else None
        if fn is not None:
            target = self.loop_target(fn, s.label, s.pos)
            if target is not None and target[1] == "runtime":
                if value is not None:
                    raise self.error("break with a value out of a runtime loop", s.pos)
                fn.emit(ir.Break())
                return
        depth = target[2] if fn is not None and target is not None else (fn.depth if fn else 0)
        raise _Break(s.label, value, depth, s.pos)

    def continue_stmt(self, s: ast.Continue, env: Env) -> None:
        fn = env.fn
        if fn is not None:
            target = self.loop_target(fn, s.label, s.pos)
            if target is not None and target[1] == "runtime":
                fn.emit(ir.Continue())
                return
        depth = target[2] if fn is not None and target is not None else (fn.depth if fn else 0)
        raise _Continue(s.label, depth, s.pos)

    def loop_target(self, fn: FnCtx, label, pos):
        """The loop a break/continue leaves; a runtime loop must be the innermost one."""
        for k in range(len(fn.loops) - 1, -1, -1):
            lab, kind, depth = fn.loops[k]
            if label is None or lab == label:
                if kind == "runtime" and k != len(fn.loops) - 1:
                    raise self.error("break/continue out of an inner inline loop into an "
                                     "enclosing runtime loop is not supported", pos)
                if kind == "runtime" and label is not None and any(
                        kk == "runtime" for _, kk, _ in fn.loops[k + 1:]):
                    raise self.error("a labelled break/continue out of nested runtime loops "
                                     "is not supported", pos)
                return fn.loops[k]
        return None

    def need_fn(self, env: Env, pos, what: str) -> FnCtx:
        if env.fn is None:
            raise self.error(f"{what} happens at run time: it belongs in a function body, not "
                             "in a comptime context", pos)
        return env.fn

    # -- expressions ------------------------------------------------------------------------

    def ev(self, e, env: Env):
        t = type(e)
        if t is ast.IntLit:
            return e.value
        if t is ast.FloatLit:
            return e.value
        if t is ast.BoolLit:
            return e.value
        if t is ast.StringLit:
            return e.value
        if t is ast.UndefinedLit:
            return UNDEFINED
        if t is ast.Ident:
            return self.ident(e, env)
        if t is ast.EnumLit:
            return EnumLitVal(e.name)
        if t is ast.Binary:
            return self.binary(e, env)
        if t is ast.Unary:
            return self.unary(e, env)
        if t is ast.Field:
            return self.field(e, env)
        if t is ast.Index:
            return self.index(e, env)
        if t is ast.Deref:
            return self.deref(e, env)
        if t is ast.Call:
            return self.call(e, env)
        if t is ast.Builtin:

            return builtins.call(self, e, env)
        if t is ast.StructLit:
            fields = {}
            for name, x in e.fields:
                if name in fields:
                    raise self.error(f"field '{name}' given twice", x.pos)
                fields[name] = self.ev(x, env)
            if e.type is not None:
                st = self.eval_type(e.type, env)
                return self.coerce(StructVal(fields), st, e.pos, str(st))
            return StructVal(fields)
        if t is ast.TupleLit:
            return TupleVal([self.ev(x, env) for x in e.items])
        if t is ast.ArrayLit:
            return self.array_lit(e, env)
        if t in (ast.ArrayType, ast.PtrType, ast.FnType, ast.StructType, ast.EnumType):
            return self.type_expr(e, env)
        if t is ast.IfExpr:
            return self.if_expr(e, env)
        if t is ast.SwitchExpr:
            return self.switch(e, env)
        if t is ast.ComptimeExpr:
            v = self.ev(e.expr, env.comptime())
            if isinstance(v, (RVal, LocalVar)):
                raise self.error("this is not comptime-known", e.pos)
            return v
        if t is ast.TensorAccess:
            return TensorAccessVal(e, env)
        if t is ast.Block:
            if e.label is None:
                self.exec_block(e, env)
                return None
            try:
                self.exec_block(ast.Block(e.stmts, None, e.comptime, e.pos), env)
            except _Break as b:
                if b.label == e.label:
                    return b.value
                raise
            raise self.error(f"block '{e.label}' ends without `break :{e.label} value`", e.pos)
        raise self.error(f"unexpected expression {t.__name__}", getattr(e, "pos", None))

    def ident(self, e: ast.Ident, env: Env):
        found, v = env.lookup(e.name)
        if not found:
            mod = env.module
            if mod.has(e.name):
                v = mod.get(e.name, e.pos)
            elif e.name in SCALARS:
                return SCALARS[e.name]
            elif e.name in SPECIALS:
                return SPECIALS[e.name]
            elif e.name in DIRECTIONS:
                return EnumLitVal(e.name)
            elif e.name == "null":
                return UNDEFINED
            else:
                raise self.error(f"unknown name '{e.name}'", e.pos)
        return self.read(v, env, e.pos)

    def read(self, v, env: Env, pos):
        """The value of a binding when read."""
        if isinstance(v, CellVar):
            return v.value
        if isinstance(v, LocalVar):
            return v.value()
        if isinstance(v, LocalDsd):
            return v.value()
        if isinstance(v, DsdVarRef):
            return v.value() if env.fn is not None else DsdVal(
                ir.DsdLit(self.pe_dsd_init(v.name)), v.kind, v.dtype)
        if isinstance(v, SymRef) and not v.shape:
            if env.fn is None:
                return v
            return RVal(ir.Load(v.name, (), v.dtype), v.dtype)
        if isinstance(v, PtrVar):
            return v.ptr
        return v

    def pe_dsd_init(self, name: str):
        for pe in self._pe_stack:
            if name in pe.dsd_vars:
                return pe.dsd_vars[name].dsd
        raise CslError(f"unknown DSD variable {name}")

    def ev_ref(self, e, env: Env):
        """Like ev, but a global array or scalar stays a SymRef (for &x, x[i], exports)."""
        if isinstance(e, ast.Ident):
            found, v = env.lookup(e.name)
            if not found and env.module.has(e.name):
                v = env.module.get(e.name, e.pos)
                found = True
            if found:
                if isinstance(v, (SymRef, PtrVar, CellVar)):
                    return v
                return self.read(v, env, e.pos)
        if isinstance(e, ast.Field):
            obj = self.ev(e.obj, env)
            if isinstance(obj, ModuleVal):
                m = obj.module
                if isinstance(m, Module) and m.has(e.name):
                    v = m.get(e.name, e.pos)
                    if isinstance(v, (SymRef, PtrVar)):
                        return v
        return self.ev(e, env)

    def field(self, e: ast.Field, env: Env):
        obj = self.ev(e.obj, env)
        name = e.name
        if isinstance(obj, ModuleVal):
            m = obj.module
            if isinstance(m, Module):
                if not m.has(name):
                    raise self.error(f"module '{m.name}' has no member '{name}'", e.pos)
                return self.read(m.get(name, e.pos), env, e.pos)
            return m.member(name, self, e.pos)
        if isinstance(obj, StructVal):
            if name in obj.fields:
                return obj.fields[name]
            raise self.error(f"struct has no field '{name}' (fields: "
                             f"{', '.join(obj.fields) or 'none'})", e.pos)
        if isinstance(obj, TupleVal):
            if name == "len":
                return len(obj.items)
        if isinstance(obj, ArrayVal) and name == "len":
            return int(obj.values.shape[0])
        if isinstance(obj, SymRef) and name == "len" and obj.shape:
            return obj.shape[0]
        if isinstance(obj, str) and name == "len":
            return len(obj.encode())
        if isinstance(obj, EnumT):
            for n, v in obj.members:
                if n == name:
                    return EnumVal(obj, n, v)
            raise self.error(f"{obj.name} has no member '{name}'", e.pos)
        if isinstance(obj, ArrayT) and name == "len":
            return obj.shape[0]
        raise self.error(f"{describe(obj)} has no member '{name}'", e.pos)

    def index(self, e: ast.Index, env: Env):
        obj = self.ev_ref(e.obj, env)
        if isinstance(obj, CellVar):
            obj = obj.value
        if isinstance(obj, PtrVar):
            obj = obj.ptr
        if isinstance(obj, TupleVal):
            k = self.comptime_int(self.ev(e.indices[0], env), e.pos)
            if not 0 <= k < len(obj.items):
                raise self.error(f"index {k} out of range of a tuple of {len(obj.items)}", e.pos)
            return obj.items[k]
        if isinstance(obj, ArrayVal):
            idx = [self.ev(i, env) for i in e.indices]
            if all(is_comptime(i) for i in idx):
                idx = self.array_index(obj, idx, e.pos)
                return CNum(obj.values[idx].item(), obj.elem) if len(idx) == obj.values.ndim \
                    else ArrayVal(obj.elem, obj.values[idx])
            self.need_fn(env, e.pos, "indexing a comptime array with a runtime index")
            obj = self.const_symbol(obj, env, e.pos)
            name, indices, dtype, view = self.lvalue(ast.Index(ast.Ident("%const"), e.indices,
                                                               e.pos), env, obj)
            return RVal(ir.Load(name, indices, dtype), dtype)
        if isinstance(obj, str):
            if len(e.indices) != 1:
                raise self.error("a string takes one index", e.pos)
            k = self.comptime_int(self.ev(e.indices[0], env), e.pos)
            data = obj.encode()
            if not 0 <= k < len(data):
                raise self.error(f"index {k} out of range of a string of {len(data)} bytes",
                                 e.pos)
            return CNum(data[k], DType.u8)
        if isinstance(obj, (SymRef, PtrVal)):
            fn = self.need_fn(env, e.pos, "reading PE memory")
            del fn
            if isinstance(obj, SymRef):
                ref = self.lvalue(e, env)
            else:
                if len(e.indices) != 1:
                    raise self.error("a pointer takes one index", e.pos)
                ref = self.ptr_element(obj, self.ev(e.indices[0], env), e.pos)
            name, indices, dtype, view = ref
            load = ir.Load(name, indices, dtype)
            return RVal(load if view == dtype else ir.Bitcast(load, view), view)
        if isinstance(obj, ArrayT) or isinstance(obj, DType):
            raise self.error("indexing a type", e.pos)
        raise self.error(f"cannot index {describe(obj)}", e.pos)

    def deref(self, e: ast.Deref, env: Env):
        p = self.ev(e.obj, env)
        if not isinstance(p, PtrVal):
            raise self.error(f"cannot dereference {describe(p)}", e.pos)
        if p.array:
            return self.pointee_array(p, e.pos)
        self.need_fn(env, e.pos, "reading PE memory")
        name, indices, dtype, view = self.lvalue(e, env)
        load = ir.Load(name, indices, dtype)
        return RVal(load if view == dtype else ir.Bitcast(load, view), view)

    def pointee_array(self, p: PtrVal, pos) -> SymRef:
        """`p.*` for a pointer to a whole array: the array it points to."""
        if p.offset or p.dtype != self.sym_dtype(p):
            raise self.error("dereferencing a pointer to part of an array, or to an array "
                             "viewed as another type, is not supported", pos)
        return SymRef(p.name, p.dtype, p.shape)

    def unary(self, e: ast.Unary, env: Env):
        if e.op == "&":
            return self.address_of(e.a, env, e.pos)
        a = self.ev(e.a, env)
        if isinstance(a, Affine) and e.op == "-":
            return -a
        if isinstance(a, RVal):
            if e.op == "!":
                if a.dtype is not DType.bool_:
                    raise self.error(f"'!' needs a bool, got {a.dtype}", e.pos)
                return RVal(ir.Un("!", a.expr, a.dtype), a.dtype)
            if e.op == "~" and not a.dtype.is_int:
                raise self.error(f"'~' needs an integer, got {a.dtype}", e.pos)
            return RVal(ir.Un(e.op, a.expr, a.dtype), a.dtype)
        if isinstance(a, CNum):
            return CNum(fold_unary(e.op, a.value, a.dtype), a.dtype)
        if e.op == "!":
            if not isinstance(a, bool):
                raise self.error(f"'!' needs a bool, got {describe(a)}", e.pos)
            return not a
        if isinstance(a, bool) or not isinstance(a, (int, float)):
            raise self.error(f"'{e.op}' needs a number, got {describe(a)}", e.pos)
        if e.op == "-":
            return -a
        if e.op == "~":
            if not isinstance(a, int):
                raise self.error("'~' needs an integer", e.pos)
            return ~a
        raise self.error(f"unknown operator {e.op}", e.pos)

    def address_of(self, node, env: Env, pos):
        if isinstance(node, ast.Index):
            base = self.ev_ref(node.obj, env)
            if isinstance(base, SymRef):
                idx = [self.ev(i, env) for i in node.indices]
                if not all(is_comptime(i) for i in idx):
                    raise self.error("&a[i] needs a comptime-known index", pos)
                idx = tuple(self.comptime_int(i, pos) for i in idx)
                if len(idx) != len(base.shape) or not all(
                        0 <= k < n for k, n in zip(idx, base.shape)):
                    raise self.error(f"&{base.name}{list(idx)}: index out of range of an array "
                                     f"of shape {list(base.shape)}", pos)
                flat = int(np.ravel_multi_index(idx, base.shape))
                return PtrVal(base.name, base.dtype, base.shape, flat, "single")
            raise self.error(f"cannot take the address of an element of {describe(base)}", pos)
        v = self.ev_ref(node, env)
        if isinstance(v, SymRef):
            return PtrVal(v.name, v.dtype, v.shape, 0, "many" if v.shape else "single",
                          array=bool(v.shape))
        if isinstance(v, PtrVar):
            raise self.error("a pointer to a pointer variable is not supported", pos)
        if isinstance(v, (FnVal, NativeFn)):
            return v
        if isinstance(v, PtrVal):
            return v
        if isinstance(v, (LocalVar, RVal)):
            raise self.error("pointers to runtime locals are not supported; use a global", pos)
        raise self.error(f"cannot take the address of {describe(v)}", pos)

    def binary(self, e: ast.Binary, env: Env):
        op = e.op
        if op in ("and", "or"):
            a = self.ev(e.a, env)
            if isinstance(a, CNum):
                a = a.value
            if isinstance(a, bool):
                if (op == "and" and not a) or (op == "or" and a):
                    return a
                b = self.ev(e.b, env)
                return b.value if isinstance(b, CNum) else b
            b = self.ev(e.b, env)
            return self.runtime_bin(op, a, b, e.pos)
        a = self.ev(e.a, env)
        b = self.ev(e.b, env)
        if isinstance(a, Affine) or isinstance(b, Affine):
            return self.affine_op(op, a, b, e.pos)
        if op == "++":
            if isinstance(a, str) and isinstance(b, str):
                return a + b
            if isinstance(a, TupleVal) and isinstance(b, TupleVal):
                return TupleVal(a.items + b.items)
            raise self.error("'++' concatenates comptime strings or tuples", e.pos)
        if isinstance(a, (RVal,)) or isinstance(b, (RVal,)):
            return self.runtime_bin(op, a, b, e.pos)
        if isinstance(a, (EnumVal, EnumLitVal)) or isinstance(b, (EnumVal, EnumLitVal)):
            return self.enum_compare(op, a, b, e.pos)
        if op in ("==", "!=") and (is_type(a) or is_type(b)):
            same = a == b if not isinstance(a, (StructT, EnumT)) else a is b
            return same if op == "==" else not same
        return self.fold_binary(op, a, b, e.pos)

    def affine_op(self, op, a, b, pos):
        """Arithmetic on tensor_access induction variables (affine maps)."""
        vals = []
        for v in (a, b):
            if isinstance(v, CNum) and v.dtype.is_int:
                v = v.value
            if not isinstance(v, (Affine, int)) or isinstance(v, bool):
                raise self.error(f"a tensor_access index must be affine; operator '{op}' got "
                                 f"{describe(v)}", pos)
            vals.append(v)
        x, y = vals
        try:
            if op == "+":
                return x + y
            if op == "-":
                return x - y
            if op == "*":
                return x * y
        except TypeError as err:
            raise self.error(f"tensor_access: {err}", pos) from None
        raise self.error(f"a tensor_access index must be affine: operator '{op}' is not", pos)

    def enum_compare(self, op, a, b, pos):
        if op not in ("==", "!="):
            raise self.error("enums compare only with == and !=", pos)
        na = a.name if isinstance(a, (EnumVal, EnumLitVal)) else None
        nb = b.name if isinstance(b, (EnumVal, EnumLitVal)) else None
        if na is None or nb is None:
            raise self.error("an enum compares only with an enum", pos)
        return (na == nb) if op == "==" else (na != nb)

    def fold_binary(self, op, a, b, pos):
        for v in (a, b):
            if not isinstance(v, (int, float, bool, CNum)):
                raise self.error(f"operator '{op}' cannot take {describe(v)}", pos)
        ta = a.dtype if isinstance(a, CNum) else None
        tb = b.dtype if isinstance(b, CNum) else None
        va = a.value if isinstance(a, CNum) else a
        vb = b.value if isinstance(b, CNum) else b
        if op in ("<<", ">>"):
            t = ta
        elif ta is not None and tb is not None:
            t = self.peer(ta, tb, op, pos)
        else:
            t = ta or tb
        if t is None:
            return fold_python(op, va, vb, self, pos)
        if t is DType.bool_ and op not in ("==", "!=", "and", "or"):
            raise self.error(f"operator '{op}' cannot take bools", pos)
        if op in ("/", "%") and not t.is_float and vb == 0:
            raise self.error("division by zero at comptime", pos)
        va = self.num_in(va, t, pos, f"operand of '{op}'") if not isinstance(va, bool) or \
            t is DType.bool_ else va
        if op not in ("<<", ">>"):
            vb = self.num_in(vb, t, pos, f"operand of '{op}'") if not isinstance(vb, bool) or \
                t is DType.bool_ else vb
        r = fold_typed(op, va, vb, t)
        if isinstance(r, bool):
            return r
        return CNum(r, t)

    def peer(self, a: DType, b: DType, op, pos) -> DType:
        if a == b:
            return a
        if widens(a, b):
            return b
        if widens(b, a):
            return a
        raise self.error(f"operator '{op}': operands have types {a} and {b}; convert one with "
                         "@as", pos)

    def runtime_bin(self, op, a, b, pos):
        ta = a.dtype if isinstance(a, (RVal, CNum)) else None
        tb = b.dtype if isinstance(b, (RVal, CNum)) else None
        if op in ("<<", ">>"):
            t = ta or tb
            if t is None or not t.is_int:
                raise self.error(f"operator '{op}' needs integers", pos)
            ea = self.to_expr(a, ta or t, pos)
            eb = self.to_expr(b, tb if tb is not None and tb.is_int else t, pos)
            return RVal(ir.Bin(op, ea, eb, ea.dtype), ea.dtype)
        if ta is None and tb is None:
            raise self.error(f"operator '{op}' cannot take {describe(a)} and {describe(b)}",
                             pos)
        t = self.peer(ta, tb, op, pos) if ta is not None and tb is not None else (ta or tb)
        ea = self.to_expr(a, t, pos, f"operand of '{op}'")
        eb = self.to_expr(b, t, pos, f"operand of '{op}'")
        if op in ("and", "or") and t is not DType.bool_:
            raise self.error(f"operator '{op}' needs bools, got {t}", pos)
        if op in ("&", "|", "^", "%") and t.is_float and op != "%":
            raise self.error(f"operator '{op}' needs integers, got {t}", pos)
        out = DType.bool_ if op in ("==", "!=", "<", "<=", ">", ">=") else t
        return RVal(ir.Bin(op, ea, eb, out), out)

    def to_expr(self, v, t: DType, pos, what: str = "value") -> ir.Expr:
        """A runtime expression of type t for value v (with implicit conversions)."""
        if isinstance(v, LocalVar):
            v = v.value()
        if isinstance(v, RVal):
            if v.dtype == t:
                return v.expr
            if widens(v.dtype, t):
                return ir.Cast(v.expr, t)
            raise self.error(f"{what}: expected {t}, got {v.dtype} (convert with @as)", pos)
        c = self.coerce(v, t, pos, what)
        if not isinstance(c, CNum):
            raise self.error(f"{what}: expected {t}, got {describe(v)}", pos)
        return ir.Const(c.value, t)

    def to_index(self, v, pos) -> ir.Expr:
        if isinstance(v, RVal):
            if not v.dtype.is_int:
                raise self.error(f"an index must be an integer, got {v.dtype}", pos)
            return v.expr
        if isinstance(v, CNum):
            if not v.dtype.is_int:
                raise self.error(f"an index must be an integer, got {v.dtype}", pos)
            return ir.Const(v.value, v.dtype)
        if isinstance(v, int) and not isinstance(v, bool):
            return ir.Const(v, DType.i32 if -(2**31) <= v < 2**31 else DType.u32)
        raise self.error(f"an index must be an integer, got {describe(v)}", pos)

    def comptime_int(self, v, pos) -> int:
        if isinstance(v, CNum) and v.dtype.is_int:
            return int(v.value)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        raise self.error(f"expected a comptime-known integer, got {describe(v)}", pos)

    def ev_as(self, e, t, env: Env):
        """Evaluate e where a value of type t is expected (its result type): a runtime
        if-expression or switch with untyped comptime branches takes t."""
        if isinstance(t, DType) and isinstance(e, ast.IfExpr):
            return self.if_expr(e, env, t)
        return self.ev(e, env)

    def if_expr(self, e: ast.IfExpr, env: Env, want: DType | None = None):
        c = self.ev(e.cond, env)
        if isinstance(c, CNum):
            c = c.value
        if isinstance(c, bool):
            if not c and e.b is None:
                return None  # no `else`: void
            return self.ev_as(e.a if c else e.b, want, env)
        if not isinstance(c, RVal) or c.dtype is not DType.bool_:
            raise self.error(f"if condition must be a bool, got {describe(c)}", e.cond.pos)
        if e.b is None:
            raise self.error("an if-expression on a runtime condition needs an else", e.pos)
        a = self.ev_as(e.a, want, env)
        b = self.ev_as(e.b, want, env)
        ta = a.dtype if isinstance(a, (RVal, CNum)) else None
        tb = b.dtype if isinstance(b, (RVal, CNum)) else None
        if want is not None:
            t = want
        elif ta is None and tb is None:
            raise self.error("a runtime if-expression with untyped branches needs a result "
                             "type: declare the variable's type or use @as", e.pos)
        else:
            t = self.peer(ta, tb, "if", e.pos) if ta and tb else (ta or tb)
        return RVal(ir.Select(c.expr, self.to_expr(a, t, e.pos), self.to_expr(b, t, e.pos), t),
                    t)

    def switch(self, e: ast.SwitchExpr, env: Env):
        x = self.ev(e.subject, env)
        if isinstance(x, RVal):
            return self.runtime_switch(e, x, env)
        default = None
        for p in e.prongs:
            if not p.values:
                default = p
                continue
            for v in p.values:
                w = self.ev(v, env)
                if self.switch_match(x, w, e.pos):
                    return self.prong(p, env)
        if default is None:
            raise self.error("switch is not exhaustive: no prong matches and there is no else",
                             e.pos)
        return self.prong(default, env)

    def switch_match(self, x, w, pos) -> bool:
        if isinstance(x, (EnumVal, EnumLitVal)) or isinstance(w, (EnumVal, EnumLitVal)):
            return self.enum_compare("==", x, w, pos)
        return bool(self.fold_binary("==", x, w, pos))

    def prong(self, p: ast.SwitchProng, env: Env):
        if isinstance(p.body, ast.Block) and p.body.label is None:
            self.exec_block(p.body, env)
            return None
        return self.ev(p.body, env)

    def runtime_switch(self, e, x: RVal, env: Env):
        """A runtime switch: expression prongs become selects; block prongs emit an if chain."""
        fn = self.need_fn(env, e.pos, "a runtime switch")
        blocks = any(isinstance(p.body, ast.Block) and p.body.label is None for p in e.prongs)
        conds = []
        default = None
        for p in e.prongs:
            if not p.values:
                default = p
                continue
            c = None
            for v in p.values:
                eq = self.runtime_bin("==", x, self.ev(v, env), v.pos).expr
                c = eq if c is None else ir.Bin("or", c, eq, DType.bool_)
            conds.append((c, p))
        if blocks:
            def chain(k):
                if k == len(conds):
                    if default is None:
                        return ()
                    return self.emit_block(fn, lambda: self.prong(default, env))
                c, p = conds[k]
                then = self.emit_block(fn, lambda: self.prong(p, env))
                return (ir.If(c, then, chain(k + 1)),)
            for s in chain(0):
                fn.emit(s)
            return None
        if default is None:
            raise self.error("a runtime switch expression needs an else prong", e.pos)
        out = self.ev(default.body, env)
        for c, p in reversed(conds):
            v = self.ev(p.body, env)
            t = out.dtype if isinstance(out, (RVal, CNum)) else (
                v.dtype if isinstance(v, (RVal, CNum)) else DType.i32)
            out = RVal(ir.Select(c, self.to_expr(v, t, e.pos), self.to_expr(out, t, e.pos), t), t)
        return out

    def array_lit(self, e: ast.ArrayLit, env: Env):
        t = e.type
        if not isinstance(t, ast.ArrayType):
            raise self.error("an array literal needs an array type like [3]i16", e.pos)
        elem = self.eval_type(t.elem, env)
        if not isinstance(elem, DType):
            raise self.error(f"arrays of {elem} are not supported", e.pos)
        items = [self.coerce(self.ev(x, env), elem, x.pos, "array element") for x in e.items]
        if any(isinstance(i, RVal) for i in items):
            raise self.error("array literal elements must be comptime-known", e.pos)
        dims = [None if d is None else self.comptime_int(self.ev(d, env), e.pos) for d in t.dims]
        if len(dims) != 1:
            raise self.error("multi-dimensional array literals are not supported; use a "
                             "1-D literal", e.pos)
        n = dims[0] if dims[0] is not None else len(items)
        if n != len(items):
            raise self.error(f"array literal has {len(items)} elements, its type {n}", e.pos)
        return ArrayVal(elem, np.array([i.value for i in items], elem.np).reshape(n))

    def type_expr(self, e, env: Env):
        if isinstance(e, ast.ArrayType):
            elem = self.eval_type(e.elem, env)
            dims = []
            for d in e.dims:
                if d is None:
                    raise self.error("[_] needs an array literal", e.pos)
                n = self.comptime_int(self.ev(d, env), d.pos)
                if n < 0:
                    raise self.error(f"array dimension {n} is negative", d.pos)
                dims.append(n)
            return ArrayT(elem, tuple(dims))
        if isinstance(e, ast.PtrType):
            return PtrT(e.kind, e.const, self.eval_type(e.elem, env))
        if isinstance(e, ast.FnType):
            return FnT(tuple(self.eval_type(p, env) for p in e.params),
                       self.eval_type(e.ret, env))
        if isinstance(e, ast.StructType):
            fields = []
            for name, ft, default in e.fields:
                t = self.eval_type(ft, env)
                d = self.coerce(self.ev(default, env), t, default.pos, name) \
                    if default is not None else None
                fields.append((name, t, d))
            return StructT(tuple(fields))
        if isinstance(e, ast.EnumType):
            tag = self.eval_type(e.tag, env) if e.tag is not None else DType.u16
            used, members, nxt = set(), [], 0
            explicit = {n: self.comptime_int(self.ev(v, env), v.pos) for n, v in e.members
                        if v is not None}
            used = set(explicit.values())
            for n, v in e.members:
                if v is not None:
                    members.append((n, explicit[n]))
                    continue
                while nxt in used:
                    nxt += 1
                members.append((n, nxt))
                used.add(nxt)
            return EnumT(tag, tuple(members))
        raise self.error("not a type", e.pos)

    # -- calls ------------------------------------------------------------------------------

    def call(self, e: ast.Call, env: Env):
        callee = self.ev(e.fn, env)
        if isinstance(callee, NativeFn):
            return callee.impl(self, e, env)
        if not isinstance(callee, FnVal):
            raise self.error(f"{describe(callee)} is not a function", e.pos)
        decl = callee.decl
        if isinstance(decl, ast.TaskDecl):
            raise self.error(f"task '{decl.name}' cannot be called", e.pos)
        if len(e.args) != len(decl.params):
            raise self.error(f"{decl.name} takes {len(decl.params)} argument(s), got "
                             f"{len(e.args)}", e.pos)
        args = [self.ev(a, env) for a in e.args]
        comptime_only = isinstance(decl.ret, ast.Ident) and decl.ret.name in (
            "comptime_int", "comptime_float", "type", "comptime_struct", "comptime_string")
        if env.fn is None or comptime_only:
            return self.comptime_call(callee, args, e.pos)
        if decl.inline:
            return self.inline_call(callee, args, env, e.pos)
        return self.runtime_call(callee, args, env, e.pos)

    def bind_params(self, fv: FnVal, args, pos, fenv: Env):
        """Bind params in `fenv`; returns `(runtime params, comptime key)`."""
        decl = fv.decl
        runtime, key = [], []
        for p, a in zip(decl.params, args):
            t = self.eval_type(p.type, fenv)
            comptime = p.comptime or t is ANYTYPE and is_comptime_value(a) or \
                (isinstance(t, Special) and t.name in ("type", "comptime_int", "comptime_float",
                                                       "comptime_struct", "comptime_string",
                                                       "imported_module")) \
                or isinstance(t, (PtrT, FnT)) or t is TYPE
            if t is ANYTYPE and not comptime:
                t = a.dtype if isinstance(a, (RVal, CNum)) else (
                    "dsd" if isinstance(a, DsdVal) else None)
                if t is None:
                    raise self.error(f"argument '{p.name}' of {decl.name}: cannot pass "
                                     f"{describe(a)}", pos)
                key.append(("anytype", p.name, str(t)))
            if comptime:
                if isinstance(a, (RVal, LocalVar)):
                    raise self.error(f"argument '{p.name}' of {decl.name} must be "
                                     "comptime-known", pos)
                v = self.coerce(a, t, pos, f"argument '{p.name}' of {decl.name}")
                fenv.bind(p.name, v)
                key.append((p.name, freeze(v)))
            elif isinstance(t, Special) and t.name in DSD_KINDS or t == "dsd":
                d = self.dsd_of(a, pos)
                fabric = ("fabin_dsd", "fabout_dsd")
                if isinstance(t, Special) and t.name != d.kind and (
                        t.name in fabric or d.kind in fabric):
                    raise self.error(f"argument '{p.name}' of {decl.name}: expected a {t.name}, "
                                     f"got a {d.kind}", pos)
                runtime.append((p, "dsd", d))
                # the kind is static: a DSD parameter takes one kind per specialization
                key.append(("dsd", p.name, d.kind))
            elif isinstance(t, DType):
                runtime.append((p, t, a))
            else:
                raise self.error(f"parameter '{p.name}' of {decl.name}: type {t} is not "
                                 "supported at run time", p.pos)
        return runtime, tuple(key)

    def runtime_call(self, fv: FnVal, args, env: Env, pos):
        fn = env.fn
        decl = fv.decl
        mod = fv.module
        fenv = mod.env()
        runtime, key = self.bind_params(fv, args, pos, fenv)
        name = self.specialize(fv, fenv, runtime, key, pos)
        irargs = []
        for p, t, a in runtime:
            if t == "dsd":
                irargs.append(a.expr)
            else:
                irargs.append(self.to_expr(a, t, pos, f"argument '{p.name}' of {decl.name}"))
        f = mod.pe.functions[name] if name in mod.pe.functions else None
        ret = f.ret if f is not None else self.ret_type(decl, fenv)
        if ret is None:
            fn.emit(ir.Call(name, tuple(irargs)))
            return None
        tmp = env.module.pe.fresh("ret")
        fn.emit(ir.LocalAssign(tmp, ir.CallExpr(name, tuple(irargs), ret)))
        return RVal(ir.Local(tmp, ret), ret)

    def ret_type(self, decl, fenv: Env):
        if isinstance(decl, ast.TaskDecl):
            return None
        t = self.eval_type(decl.ret, fenv)
        if t is VOID:
            return None
        if isinstance(t, DType):
            return t
        if isinstance(t, Special) and t.name in DSD_KINDS:
            return "dsd"
        raise self.error(f"{decl.name} returns {t}, which a runtime function cannot", decl.pos)

    def specialize(self, fv: FnVal, fenv: Env, runtime, key, pos) -> str:
        """The IR function for `fv` with these comptime arguments (emitted once)."""
        decl = fv.decl
        mod = fv.module
        pe = mod.pe
        if pe is None:
            raise self.error(f"{decl.name} cannot run on a PE from here", pos)
        full = (id(decl), id(mod), key)
        if full in pe.specs:
            return pe.specs[full]
        base = mod.prefix + decl.name
        name = base if base not in pe.functions and not any(
            v == base for v in pe.specs.values()) else f"{base}#{len(pe.specs)}"
        pe.specs[full] = name
        if decl.body is None:
            raise self.error(f"extern function {decl.name} has no body", pos)
        ret = self.ret_type(decl, fenv)
        params = []
        for p, t, a in runtime:
            pname = pe.fresh(p.name + ".")
            params.append((pname, t))
            if t == "dsd":
                fenv.bind(p.name, LocalDsd(pname, a.kind, None).value())
            else:
                fenv.bind(p.name, RVal(ir.Local(pname, t), t))
        ctx = FnCtx(name, ret, addressed=_addressed(decl.body))
        body_env = Env(mod, fenv.scopes + [{}], ctx)
        self.enter_call(decl, pos)
        try:
            self.exec_block(decl.body, body_env)
        except RecursionError:
            raise self.deep_error(decl, pos) from None
        except _Return:
            raise self.error("return from an inline context escaped its function",
                             decl.pos) from None
        except (_Break, _Continue) as sig:
            raise self.error("break/continue outside a loop", sig.pos) from None
        finally:
            self._depth_guard -= 1
        pe.functions[name] = ir.Function(name, tuple(params), ret, tuple(ctx.blocks[0]))
        return name

    _depth_guard = 0
    # calls (comptime, inline, or a runtime function's specializations) nested in one
    # another; Python's own recursion limit is raised so that this one is always met first
    MAX_CALL_DEPTH = 200

    def enter_call(self, decl, pos) -> None:
        """Count one more nested call of `decl`; leave with `self._depth_guard -= 1`."""
        if self._depth_guard >= self.MAX_CALL_DEPTH:
            raise self.deep_error(decl, pos)
        self._depth_guard += 1

    def deep_error(self, decl, pos) -> CslError:
        return self.error(f"comptime evaluation recursed too deeply: calls of {decl.name} nest "
                          f"more than {self.MAX_CALL_DEPTH} deep (a recursion without end?)",
                          pos)

    def inline_call(self, fv: FnVal, args, env: Env, pos):
        decl = fv.decl
        mod = fv.module
        fenv = mod.env()
        for p, a in zip(decl.params, args):
            t = self.eval_type(p.type, fenv)
            v = self.coerce(a, t, pos, f"argument '{p.name}' of {decl.name}") \
                if t is not ANYTYPE else a
            fenv.bind(p.name, v)
        fn = env.fn
        fn.addressed |= _addressed(decl.body)
        body_env = Env(mod, fenv.scopes + [{}], fn, fn.depth)
        self.enter_call(decl, pos)
        try:
            self.exec_block(decl.body, body_env)
        except RecursionError:
            raise self.deep_error(decl, pos) from None
        except _Return as r:
            if r.depth != fn.depth:
                raise
            return self.coerce_ret(r.value, decl, fenv, pos)
        finally:
            self._depth_guard -= 1
        return None

    def coerce_ret(self, v, decl, fenv: Env, pos):
        t = self.eval_type(decl.ret, fenv)
        if t is VOID or v is None:
            return None
        if t is ANYTYPE or t is TYPE:
            return v
        if isinstance(v, RVal) and isinstance(t, DType):
            return RVal(self.to_expr(v, t, pos, "return value"), t)
        return self.coerce(v, t, pos, f"return value of {decl.name}")

    def comptime_call(self, fv: FnVal, args, pos):
        """Interpret a call at comptime: every argument and the result are comptime-known."""
        decl = fv.decl
        mod = fv.module
        fenv = mod.env()
        for p, a in zip(decl.params, args):
            if isinstance(a, (RVal, LocalVar)):
                raise self.error(f"argument '{p.name}' of {decl.name} is not comptime-known",
                                 pos)
            t = self.eval_type(p.type, fenv)
            fenv.bind(p.name, self.coerce(a, t, pos, f"argument '{p.name}' of {decl.name}")
                      if t is not ANYTYPE else a)
        self.enter_call(decl, pos)
        try:
            self.exec_block(decl.body, Env(mod, fenv.scopes + [{}], None))
        except RecursionError:
            raise self.deep_error(decl, pos) from None
        except _Return as r:
            return self.coerce_ret(r.value, decl, fenv, pos)
        except (_Break, _Continue) as sig:
            raise self.error("break/continue outside a loop", sig.pos) from None
        finally:
            self._depth_guard -= 1
        return None

    # -- DSDs -------------------------------------------------------------------------------

    def dsd_of(self, v, pos) -> DsdVal:
        if isinstance(v, DsdVal):
            return v
        if isinstance(v, DsdVarRef):
            return v.value()
        raise self.error(f"expected a DSD, got {describe(v)}", pos)

    _pe_stack: list = []


# ------------------------------------------------------------------------------------------------
# Helpers


def _runtime_loops(fn: FnCtx | None) -> int:
    """How many run-time loops are open in the function being emitted."""
    return 0 if fn is None else sum(kind == "runtime" for _, kind, _ in fn.loops)


_MAX_FOR_TRIPS = 2**31 - 1    # the most trips an ir.For carries (a counter of type i32)


def _frames() -> int:
    """The number of Python frames on the stack."""
    f, n = sys._getframe(), 0
    while f is not None:
        f, n = f.f_back, n + 1
    return n


def fold_python(op, a, b, c: Compiler, pos):
    """comptime_int / comptime_float / bool arithmetic."""
    if isinstance(a, bool) or isinstance(b, bool):
        if op in ("==", "!="):
            return (a == b) if op == "==" else (a != b)
        raise c.error(f"operator '{op}' cannot take bools", pos)
    if op in ("+", "-", "*", "/", "%") and (isinstance(a, float) or isinstance(b, float)):
        if op in ("/", "%") and b == 0:
            raise c.error("division by zero at comptime", pos)
        # comptime_float arithmetic is IEEE f64: an overflow is an infinity, not an error
        x, y = np.float64(ieee_float(a)), np.float64(ieee_float(b))
        with np.errstate(all="ignore"):
            return float({"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide,
                          "%": np.fmod}[op](x, y))
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                raise c.error("division by zero at comptime", pos)
            if isinstance(a, int) and isinstance(b, int):
                q = abs(a) // abs(b)
                return q if (a >= 0) == (b >= 0) else -q
            return a / b
        if op == "%":
            if b == 0:
                raise c.error("division by zero at comptime", pos)
            if isinstance(a, int) and isinstance(b, int):
                return int(math.fmod(a, b))
            return math.fmod(a, b)
        if op in ("<<", ">>", "&", "|", "^"):
            if not (isinstance(a, int) and isinstance(b, int)):
                raise c.error(f"operator '{op}' needs integers", pos)
            if op in ("<<", ">>") and b < 0:
                raise c.error("shift by a negative amount", pos)
            if op == "<<" and b > 4096:
                raise c.error("shift amount too large", pos)
            return {"<<": a << b, ">>": a >> b, "&": a & b, "|": a | b, "^": a ^ b}[op]
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b,
                ">=": a >= b}[op]
    except KeyError:
        raise c.error(f"unknown operator '{op}'", pos) from None
    except (OverflowError, ValueError) as err:
        raise c.error(f"comptime arithmetic failed: {err}", pos) from None


def fold_typed(op, a, b, t: DType):
    """Arithmetic of type t at comptime, wrapping like the hardware's integers."""
    if t is DType.bool_:
        return {"==": a == b, "!=": a != b}[op]
    if t.is_float:
        x, y = t.np.type(a), t.np.type(b)
        with np.errstate(all="ignore"):
            r = {"+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y,
                 "/": lambda: x / y, "%": lambda: np.fmod(x, y),
                 "==": lambda: x == y, "!=": lambda: x != y, "<": lambda: x < y,
                 "<=": lambda: x <= y, ">": lambda: x > y, ">=": lambda: x >= y}[op]()
        return bool(r) if isinstance(r, np.bool_) else float(r)
    bits = t.bits
    mask = (1 << bits) - 1

    def wrap(v):
        v &= mask
        return v - (1 << bits) if t.is_signed and v >> (bits - 1) else v

    if op in ("==", "!=", "<", "<=", ">", ">="):
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b,
                ">=": a >= b}[op]
    if op == "/":
        q = abs(a) // abs(b)
        return wrap(q if (a >= 0) == (b >= 0) else -q)
    if op == "%":
        return wrap(int(math.fmod(a, b)))
    if op == "<<":
        return wrap(a << b) if b < bits else 0
    if op == ">>":
        if b >= bits:
            return -1 if a < 0 else 0
        return wrap(a >> b)
    return wrap({"+": a + b, "-": a - b, "*": a * b, "&": a & b, "|": a | b, "^": a ^ b}[op])


def fold_unary(op, v, t: DType):
    if op == "-":
        return fold_typed("-", 0 if not t.is_float else 0.0, v, t) if not t.is_float else -v
    if op == "~":
        return fold_typed("^", v, -1 if t.is_signed else (1 << t.bits) - 1, t)
    if op == "!":
        return not v
    return v


def _addressed(node) -> set:
    """Names `x` that appear as `&x` anywhere in an AST subtree."""
    import dataclasses

    out = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Unary) and n.op == "&" and isinstance(n.a, ast.Ident):
            out.add(n.a.name)
        if dataclasses.is_dataclass(n):
            stack.extend(getattr(n, f.name) for f in dataclasses.fields(n) if f.name != "pos")
        elif isinstance(n, tuple):
            stack.extend(n)
    return out


def _has_effects(e) -> bool:
    if isinstance(e, (ir.CallExpr,)):
        return True
    if isinstance(e, ir.Intrinsic) and e.name in ("random16", "seed_prng", "reset_cycles"):
        return True
    if isinstance(e, (ir.Bin, ir.Un, ir.Cast, ir.Bitcast, ir.Select, ir.Load, ir.Intrinsic)):
        import dataclasses

        return any(_has_effects(getattr(e, f.name)) for f in dataclasses.fields(e)
                   if f.name not in ("op", "dtype", "name", "symbol"))
    if isinstance(e, tuple):
        return any(_has_effects(x) for x in e)
    return False

