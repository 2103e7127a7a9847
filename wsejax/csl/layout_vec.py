"""Layout loops evaluated over all their iterations at once.

A comptime `for (@range(...)) |x|` loop of the layout block usually places one tile and a few
routes per iteration, with arithmetic of the loop variables deciding the values. Run once per
iteration, a wafer's 750x994 tiles take minutes. `run_loop` runs such a loop once for all its
iterations (nested `@range` loops included): each loop variable is a numpy array over the
iterations, and so is every value computed from one:

- `Num`: a number per iteration (its comptime kind: a DType, `int` for comptime_int, `bool`);
  arithmetic and comparisons of integers run in numpy with comptime's rules (typed integers
  wrap, operands must fit their type);
- `Obj`: any other value per iteration, as an index into its distinct values;
- `Struct`: a struct literal whose fields vary.

An expression that reads no varying name is evaluated once by the evaluator; one it cannot
take apart (a field, a call of a pure library function, `@get_color(x)`, an `if` expression)
is evaluated by the evaluator once per distinct combination of the varying values it reads.
An `if` statement on a varying condition runs each branch for the iterations that take it.
`@set_tile_code` and `@set_color_config` record `TileBatch`es and `RouteBatch`es: their
coordinates per iteration and, per distinct value of their other arguments, what the builtin
makes of them (checked by the builtin's own code once per distinct value).

Whatever the loop body does beyond that (a `var`, an assignment, a `break`, a call of a
function of the program, a builtin other than the pure ones), and any error (a failed
`@comptime_assert`, a tile placed twice), makes `run_loop` return False having recorded
nothing: the loop then runs per iteration as before, and reports its errors as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wsejax.csl import ast
from wsejax.csl.builtins.colors import color_config
from wsejax.csl.values import CNum, ModuleVal, RangeVal, StructVal, TupleVal
from wsejax.errors import CslError
from wsejax.types import DType

__all__ = ["Num", "Obj", "RouteBatch", "Struct", "TileBatch", "combine", "run_loop"]

# builtins whose value depends only on their arguments (no record, no state)
PURE_BUILTINS = frozenset({"as", "get_color", "range", "get_rectangle", "type_of",
                           "concat_structs", "comptime_assert", "get_input_queue",
                           "get_output_queue", "get_data_task_id", "get_local_task_id",
                           "get_control_task_id", "get_dsd_task_id"})
# library modules whose functions depend only on their arguments
PURE_MODULES = frozenset({"memcpy/get_params"})
# the most distinct argument combinations an expression is evaluated for, one by one
MAX_COMBOS = 1 << 14
_BINARY_OPS = frozenset({"+", "-", "*", "/", "%", "&", "|", "^", "==", "!=", "<", "<=", ">",
                         ">="})
_COMPARE = frozenset({"==", "!=", "<", "<=", ">", ">="})


class _NoVec(Exception):
    """The loop cannot run vectorised; it runs per iteration."""


@dataclass
class Num:
    kind: object            # DType, int (comptime_int) or bool
    v: np.ndarray           # [n] int64 or bool


@dataclass
class Obj:
    idx: np.ndarray         # [n] intp into `table`
    table: list


@dataclass
class Struct:
    fields: dict            # name -> a comptime value, Num, Obj or Struct


_VARYING = (Num, Obj, Struct)


@dataclass
class TileBatch:
    """`@set_tile_code` for tiles `xs`, `ys` ([n] int64): the program `path` (as written, see
    `_Layout.resolve_file`) and params `fields` (each a comptime value, or a `Num` / `Obj` over
    the n tiles)."""

    xs: np.ndarray
    ys: np.ndarray
    path: str | None
    fields: dict
    env: object
    pos: ast.Pos


@dataclass
class RouteBatch:
    """`@set_color_config` of color `color` at `xs`, `ys` ([n] int64), each with the same
    route, filter and switches."""

    xs: np.ndarray
    ys: np.ndarray
    color: int
    route: tuple
    filter: object
    switches: object
    pos: ast.Pos


class _Scope:
    """The varying names of the iterations in flight (`n` of them) and the evaluator's env."""

    def __init__(self, env, vary: dict, n: int):
        self.env, self.vary, self.n = env, vary, n

    def child(self) -> _Scope:
        return _Scope(self.env.child(), dict(self.vary), self.n)

    def only(self, mask: np.ndarray) -> _Scope:
        return _Scope(self.env.child(), {k: _take(v, mask) for k, v in self.vary.items()},
                      int(mask.sum()))


def run_loop(c, s: ast.For, env) -> list | None:
    """The records of layout loop `s` run over all its iterations, or None where it cannot be
    (nothing is recorded then, and the compiler's steps are as they were)."""
    if not _plain(s):
        return None
    steps = c._steps
    out: list = []
    try:
        _VecRun(c, out).stmt(s, _Scope(env.child(), {}, 1))
    except (_NoVec, CslError, ArithmeticError, ValueError, TypeError, IndexError):
        # what the per-iteration run does with it (an error, where it is one) is the answer
        c._steps = steps
        return None
    return out


def _plain(node) -> bool:
    """Whether a loop body holds only what `_VecRun` takes: no jumps, assignments, vars,
    while loops, labelled blocks or functions."""
    for n in ast.walk(node):
        if isinstance(n, (ast.Assign, ast.While, ast.Break, ast.Continue, ast.Return,
                          ast.FnDecl, ast.TaskDecl, ast.SwitchExpr, ast.TensorAccess)):
            return False
        if isinstance(n, ast.VarDecl) and (not n.const or n.comptime):
            return False
        if isinstance(n, ast.Block) and n.label is not None:
            return False
        if isinstance(n, ast.Unary) and n.op == "&":
            return False
    return True


# ------------------------------------------------------------------------------------------------
# Values


def _kind(v):
    """The number kind of a comptime value, or None where it is no integer or bool."""
    if isinstance(v, CNum):
        return v.dtype if v.dtype.is_int or v.dtype is DType.bool_ else None
    if isinstance(v, bool):
        return bool
    if isinstance(v, int):
        return int
    return None


def _scalar(kind, v):
    if isinstance(kind, DType):
        return CNum(bool(v) if kind is DType.bool_ else int(v), kind)
    return kind(v)


def _raw(v):
    return v.value if isinstance(v, CNum) else v


def _take(v, mask):
    if isinstance(v, Num):
        return Num(v.kind, v.v[mask])
    if isinstance(v, Obj):
        return Obj(v.idx[mask], v.table)
    if isinstance(v, Struct):
        return Struct({k: _take(f, mask) for k, f in v.fields.items()})
    return v


def _repeat(v, m: int):
    """v over n iterations, each repeated m times (an inner loop of m iterations)."""
    if isinstance(v, Num):
        return Num(v.kind, np.repeat(v.v, m))
    if isinstance(v, Obj):
        return Obj(np.repeat(v.idx, m), v.table)
    if isinstance(v, Struct):
        return Struct({k: _repeat(f, m) for k, f in v.fields.items()})
    return v


def _codes(v, n: int) -> tuple[np.ndarray, list]:
    """v over n iterations as `(codes [n], distinct values)`."""
    if isinstance(v, Obj):
        return v.idx, v.table
    if isinstance(v, Num):
        uniq, inv = np.unique(v.v, return_inverse=True)
        return inv.reshape(-1), [_scalar(v.kind, u) for u in uniq.tolist()]
    if isinstance(v, Struct):
        names = list(v.fields)
        parts = [_codes(v.fields[k], n) for k in names]
        first, inv = combine([p[0] for p in parts], n)
        table = [StructVal({k: p[1][p[0][i]] for k, p in zip(names, parts)})
                 for i in first.tolist()]
        return inv, table
    return np.zeros(n, np.intp), [v]


def combine(codes: list, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct combinations of `codes` (each [n] non-negative integers): `(first
    iteration of each, the combination of each iteration)`."""
    key = np.zeros(n, np.int64)
    for k in codes:
        size = int(k.max()) + 1 if n else 1
        if n and (int(key.max()) + 1) * size > (1 << 62):
            key = np.unique(key, return_inverse=True)[1].reshape(-1).astype(np.int64)
        key = key * size + k
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    return first, inv.reshape(-1)


def _as_obj(v, n: int) -> Obj:
    idx, table = _codes(v, n)
    return Obj(idx, table)


def _from_values(values: list, inv: np.ndarray):
    """The value per iteration of distinct `values` (`inv`: the index of each iteration's)."""
    kinds = {_kind(v) for v in values}
    if len(values) == 1:
        return values[0]
    if len(kinds) == 1 and None not in kinds:
        (k,) = kinds
        dt = bool if k is bool or k is DType.bool_ else np.int64
        return Num(k, np.asarray([_raw(v) for v in values], dt)[inv])
    return Obj(inv, values)


def _ints(v, n: int, c, pos) -> np.ndarray:
    """A coordinate: [n] int64 from an integer value (checked as `comptime_int` checks)."""
    if isinstance(v, Num):
        c.comptime_int(_scalar(v.kind, v.v[0]) if n else 0, pos)
        return v.v.astype(np.int64)
    if isinstance(v, _VARYING):
        raise _NoVec
    return np.full(n, c.comptime_int(v, pos), np.int64)


# ------------------------------------------------------------------------------------------------
# Evaluation


def _names(node) -> frozenset:
    return frozenset(n.name for n in ast.walk(node) if isinstance(n, ast.Ident))


class _VecRun:
    def __init__(self, c, out: list):
        self.c = c
        self.out = out
        self.free: dict = {}      # id(node) -> the names it reads

    def reads(self, e, sc: _Scope) -> list:
        names = self.free.get(id(e))
        if names is None:
            names = self.free[id(e)] = _names(e)
        return [k for k in names if k in sc.vary]

    def count(self, sc: _Scope) -> None:
        c = self.c
        c._steps += sc.n
        if c._steps > c.max_steps:
            raise _NoVec

    # -- statements ---------------------------------------------------------------------------

    def stmt(self, s, sc: _Scope) -> None:
        if sc.n == 0:
            return
        self.count(sc)
        if isinstance(s, ast.For):
            self.loop(s, sc)
        elif isinstance(s, ast.Block):
            self.block(s, sc)
        elif isinstance(s, ast.If):
            self.branch(s, sc)
        elif isinstance(s, ast.VarDecl):
            self.const(s, sc)
        elif isinstance(s, ast.ExprStmt):
            self.expr_stmt(s, sc)
        else:
            raise _NoVec

    def block(self, b: ast.Block, sc: _Scope) -> None:
        inner = sc.child()
        for s in b.stmts:
            self.stmt(s, inner)

    def loop(self, s: ast.For, sc: _Scope) -> None:
        if not isinstance(s.iterable, ast.Builtin) or s.iterable.name != "range" or \
                self.reads(s.iterable, sc) or s.inline:
            raise _NoVec
        it = self.c.ev(s.iterable, sc.env)
        if not isinstance(it, RangeVal) or len(it) > self.c.max_loop_iterations:
            raise _NoVec
        m = len(it)
        if m == 0:
            return
        kind = it.dtype if isinstance(it.dtype, DType) else int
        if kind is not int and not kind.is_int:
            raise _NoVec
        inner = _Scope(sc.env.child(), {k: _repeat(v, m) for k, v in sc.vary.items()},
                       sc.n * m)
        values = np.arange(it.start, it.stop, it.step, dtype=np.int64)
        inner.vary[s.capture] = Num(kind, np.tile(values, sc.n))
        if s.index:
            inner.vary[s.index] = Num(int, np.tile(np.arange(m, dtype=np.int64), sc.n))
        self.block(s.body, inner)

    def branch(self, s: ast.If, sc: _Scope) -> None:
        cond = self.ev(s.cond, sc)
        if not isinstance(cond, Num):
            cond = _raw(cond)
            if not isinstance(cond, bool):
                raise _NoVec
            if cond:
                self.block(s.then, sc)
            elif s.orelse is not None:
                self.stmt(s.orelse, sc)
            return
        if cond.kind not in (bool, DType.bool_):
            raise _NoVec
        mask = cond.v.astype(bool)
        self.block(s.then, sc.only(mask))
        if s.orelse is not None:
            self.stmt(s.orelse, sc.only(~mask))

    def const(self, d: ast.VarDecl, sc: _Scope) -> None:
        if not self.pure(d, sc):
            raise _NoVec
        if d.value is None or not self.reads(d, sc):
            self.c.exec(d, sc.env)
            return
        if d.type is not None:
            raise _NoVec
        sc.vary[d.name] = self.ev(d.value, sc)

    def expr_stmt(self, s: ast.ExprStmt, sc: _Scope) -> None:
        e = s.expr
        if isinstance(e, ast.Builtin) and e.name == "set_tile_code":
            self.tile_code(e, sc)
        elif isinstance(e, ast.Builtin) and e.name == "set_color_config":
            self.color_config(e, sc)
        elif self.pure(e, sc):
            if self.reads(e, sc):
                self.each(e, sc)
            else:
                self.c.ev(e, sc.env)
        else:
            raise _NoVec

    # -- layout builtins ------------------------------------------------------------------------

    def coords(self, e: ast.Builtin, sc: _Scope) -> tuple[np.ndarray, np.ndarray]:
        return tuple(_ints(self.ev(a, sc), sc.n, self.c, a.pos) for a in e.args[:2])

    def tile_code(self, e: ast.Builtin, sc: _Scope) -> None:
        if len(e.args) not in (2, 3, 4) or (len(e.args) > 2 and self.reads(e.args[2], sc)):
            raise _NoVec
        xs, ys = self.coords(e, sc)
        path = self.ev(e.args[2], sc) if len(e.args) > 2 else None
        if path is not None and not isinstance(path, str):
            raise _NoVec
        params = self.ev(e.args[3], sc) if len(e.args) > 3 else StructVal({})
        if isinstance(params, TupleVal) and not params.items:
            params = StructVal({})
        if isinstance(params, StructVal):
            fields = dict(params.fields)
        elif isinstance(params, Struct):
            fields = {k: _as_obj(v, sc.n) if isinstance(v, Struct) else v
                      for k, v in params.fields.items()}
        else:
            raise _NoVec
        self.out.append(TileBatch(xs, ys, path, fields, sc.env, e.pos))

    def color_config(self, e: ast.Builtin, sc: _Scope) -> None:
        if len(e.args) != 4:
            raise _NoVec
        xs, ys = self.coords(e, sc)
        color = _as_obj(self.ev(e.args[2], sc), sc.n)
        config = _as_obj(self.ev(e.args[3], sc), sc.n)
        first, inv = combine([color.idx, config.idx], sc.n)
        for k, i in enumerate(first.tolist()):
            cid, route, filt, switches = color_config(
                self.c, color.table[color.idx[i]], config.table[config.idx[i]], e)
            mine = inv == k
            self.out.append(RouteBatch(xs[mine], ys[mine], cid, route, filt, switches, e.pos))

    # -- expressions --------------------------------------------------------------------------

    def pure(self, e, sc: _Scope) -> bool:
        """Whether e calls nothing but pure builtins and pure library functions."""
        for n in ast.walk(e):
            if isinstance(n, ast.Builtin) and n.name not in PURE_BUILTINS:
                return False
            if isinstance(n, ast.Block):
                return False
            if isinstance(n, ast.Call):
                f = n.fn
                if not isinstance(f, ast.Field) or self.reads(f, sc):
                    return False
                m = self.c.ev(f.obj, sc.env)
                if not isinstance(m, ModuleVal) or \
                        getattr(m.module, "name", None) not in PURE_MODULES:
                    return False
        return True

    def ev(self, e, sc: _Scope):
        names = self.reads(e, sc)
        if not names:
            if not self.pure(e, sc):
                raise _NoVec
            return self.c.ev(e, sc.env)
        if isinstance(e, ast.Ident):
            return sc.vary[e.name]
        if isinstance(e, ast.StructLit) and e.type is None:
            return Struct({k: self.ev(x, sc) for k, x in e.fields})
        if isinstance(e, ast.Binary) and e.op in _BINARY_OPS:
            r = self.binary(e, sc)
            if r is not None:
                return r
        elif isinstance(e, ast.Binary) and e.op in ("and", "or"):
            return self.logic(e, sc)
        elif isinstance(e, ast.IfExpr) and e.b is not None:
            return self.choose(e, sc)
        if not self.pure(e, sc):
            raise _NoVec
        return self.each(e, sc)

    def each(self, e, sc: _Scope):
        """e evaluated once per distinct combination of the varying values it reads."""
        names = self.reads(e, sc)
        parts = [_codes(sc.vary[k], sc.n) for k in names]
        first, inv = combine([p[0] for p in parts], sc.n)
        if first.size > MAX_COMBOS:
            raise _NoVec
        values = []
        for i in first.tolist():
            env = sc.env.child()
            for k, (codes, table) in zip(names, parts):
                env.bind(k, table[codes[i]])
            values.append(self.c.ev(e, env))
        return _from_values(values, inv)

    def _bools(self, e, sc: _Scope):
        """e's value as a bool per iteration, or None where it is not a number."""
        v = self.ev(e, sc)
        if not isinstance(v, Num):
            return None
        if v.kind not in (bool, DType.bool_):
            raise _NoVec
        return v.v.astype(bool)

    def logic(self, e: ast.Binary, sc: _Scope):
        left = self._bools(e.a, sc)
        if left is None:
            return self.each(e, sc)
        need = left if e.op == "and" else ~left     # where the right operand decides
        out = left.copy()
        if need.any():
            b = self.ev(e.b, sc.only(need))
            b = b.v if isinstance(b, Num) and b.kind in (bool, DType.bool_) else _raw(b)
            if not isinstance(b, (bool, np.ndarray)):
                raise _NoVec
            out[need] = b
        return Num(bool, out)

    def choose(self, e: ast.IfExpr, sc: _Scope):
        mask = self._bools(e.cond, sc)
        if mask is None:
            return self.each(e, sc)
        parts = []
        for m, x in ((mask, e.a), (~mask, e.b)):
            sub = sc.only(m)
            parts.append((m, _as_obj(self.ev(x, sub), sub.n) if sub.n else Obj(
                np.zeros(0, np.intp), [])))
        (ma, a), (mb, b) = parts
        idx = np.empty(sc.n, np.intp)
        idx[ma] = a.idx
        idx[mb] = b.idx + len(a.table)
        return _from_values(a.table + b.table, idx)

    def binary(self, e: ast.Binary, sc: _Scope):
        """Integer arithmetic or a comparison in numpy; None where it is not one."""
        a, b = self.ev(e.a, sc), self.ev(e.b, sc)
        ka = a.kind if isinstance(a, Num) else _kind(a)
        kb = b.kind if isinstance(b, Num) else _kind(b)
        if ka is None or kb is None or isinstance(a, (Obj, Struct)) or \
                isinstance(b, (Obj, Struct)):
            return None
        t = _op_type(self.c, e, ka, kb)
        va = a.v if isinstance(a, Num) else np.full(sc.n, _raw(a), np.int64)
        vb = b.v if isinstance(b, Num) else np.full(sc.n, _raw(b), np.int64)
        if t is bool or t is DType.bool_:
            if e.op not in ("==", "!="):
                raise _NoVec
            r = (va == vb) if e.op == "==" else (va != vb)
            return Num(bool, r)
        if ka in (bool, DType.bool_) or kb in (bool, DType.bool_):
            raise _NoVec
        va, vb = va.astype(np.int64), vb.astype(np.int64)
        _fits(va, t)
        _fits(vb, t)
        return _int_op(e.op, va, vb, t)


def _op_type(c, e, ka, kb):
    """The type comptime computes `ka op kb` in: a DType, int (comptime_int) or bool."""
    ta = ka if isinstance(ka, DType) else None
    tb = kb if isinstance(kb, DType) else None
    if ta is not None and tb is not None:
        t = c.peer(ta, tb, e.op, e.pos)
    else:
        t = ta or tb
    if t is None:
        return bool if ka is bool or kb is bool else int
    if t is not DType.bool_ and (not t.is_int or t.bits > 32):
        raise _NoVec
    return t


def _fits(v: np.ndarray, t) -> None:
    """v's values are operands of type t (comptime errors otherwise: run per iteration)."""
    if not v.size:
        return
    if t is int:
        lo, hi = -(1 << 31), (1 << 31) - 1
    else:
        info = np.iinfo(t.np)
        lo, hi = int(info.min), int(info.max)
    if int(v.min()) < lo or int(v.max()) > hi:
        raise _NoVec


def _int_op(op: str, a: np.ndarray, b: np.ndarray, t) -> Num:
    if op in _COMPARE:
        r = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal,
             ">": np.greater, ">=": np.greater_equal}[op](a, b)
        return Num(bool, r)
    if op in ("/", "%"):
        if (b == 0).any() or (t is int and ((a < 0).any() or (b < 0).any())):
            raise _NoVec
        q = np.abs(a) // np.abs(b)
        r = np.where((a >= 0) == (b >= 0), q, -q) if op == "/" else np.fmod(a, b)
    else:
        r = {"+": np.add, "-": np.subtract, "*": np.multiply, "&": np.bitwise_and,
             "|": np.bitwise_or, "^": np.bitwise_xor}[op](a, b)
    if t is int:
        _fits(r, int)
        return Num(int, r)
    return Num(t, r.astype(t.np).astype(np.int64))
