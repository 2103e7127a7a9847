"""Jumps of a function body that leave more than the innermost run-time loop: a labelled
`break` / `continue` out of nested run-time loops, and a `break`, `continue` or `return` that
leaves an unrolled (inline) loop, a labelled block or an inline function from inside a
run-time condition or loop.

The IR's `Break` and `Continue` leave the innermost run-time loop only; the rest is built from
them, a jump code and ifs. Every structure a jump may leave is a `Target` on the function's
stack (`FnCtx.loops`). A jump known to happen at compile time (no run-time `if` or loop between
it and its target) unwinds the evaluator as before. Any other jump:

- stores its value (a labelled block's, an inline function's) in the target's result local;
- sets the function's jump code local to the code of (target, kind), unless its target is the
  innermost run-time loop (then it is a plain `Break` / `Continue`);
- breaks out of the innermost run-time loop when one lies between it and its target; after
  that loop, an `if (code == c)` passes the jump on (a plain `Break` / `Continue` where the
  target is now the innermost run-time loop, after clearing the code);
- else the jump is *in flight*: the statements after it up to its target run only where no
  jump is (`if (code == 0) { ... }`), and the target, at its end, clears its codes.

Also here, `BranchMixin`: the right side of `and` / `or` and the branches of a run-time
if-expression are evaluated only where they are taken.

The mixins use from `self`: `error`, `exec_block`, `emit_block`, `ev`, `ev_as`, `to_expr`,
`peer`, `runtime_bin`, and `select_held` (`structs.AggregateMixin`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.env import Env, FnCtx, _Break, _Continue, _Return
from wsejax.csl.structs import aggregate_type_of
from wsejax.csl.values import CNum, EnumRVal, EnumT, RPtr, RVal, StructRef, StructT
from wsejax.types import DType

__all__ = ["BranchMixin", "Guards", "JumpMixin", "Target", "always_leaves", "has_effects",
           "jump_init"]

_CODE = DType.i32


@dataclass(eq=False)
class Target:
    """A structure that a jump leaves: a run-time loop (`kind` "runtime"), an unrolled loop
    ("comptime"), a labelled block ("block") or an inline function's body ("inline").

    `depth` is the function's run-time nesting depth where its body runs (a jump from deeper
    happens at run time). `codes` maps a jump kind ("break", "continue", "return") to its
    jump code; `crossed` holds the (target, kind, code) of jumps that broke out of this
    run-time loop on their way further out; `values` the (placeholder, value, pos) of the
    run-time jumps with a value, whose local `result` gets its type at the end."""

    kind: str
    label: str | None
    depth: int
    codes: dict = field(default_factory=dict)
    crossed: list = field(default_factory=list)
    values: list = field(default_factory=list)
    result: str | None = None


class Guards:
    """Statements after an in-flight jump: each `check()` that finds a jump in flight opens
    an `if (code == 0)` that what follows is emitted into; `close()` closes them all."""

    def __init__(self, fn: FnCtx | None):
        self.fn = fn
        self.saved: list = []

    def check(self) -> None:
        fn = self.fn
        if fn is None or not fn.inflight:
            return
        self.saved.append(fn.inflight)
        fn.inflight = set()
        fn.blocks.append([])
        fn.depth += 1

    def close(self) -> None:
        fn = self.fn
        while self.saved:
            body = tuple(fn.blocks.pop())
            fn.depth -= 1
            fn.inflight |= self.saved.pop()
            if body:
                fn.emit(ir.If(_code_is(fn, 0), body))


def _code_is(fn: FnCtx, code: int) -> ir.Expr:
    return ir.Bin("==", ir.Local(fn.jump, _CODE), ir.Const(code, _CODE), DType.bool_)


def _set_code(fn: FnCtx, code: int) -> ir.LocalAssign:
    return ir.LocalAssign(fn.jump, ir.Const(code, _CODE))


def always_leaves(s) -> bool:
    """Whether statement `s` ends in a jump on every path (a syntactic check)."""
    if isinstance(s, (ast.Break, ast.Continue, ast.Return)):
        return True
    if isinstance(s, ast.Block):
        return bool(s.stmts) and always_leaves(s.stmts[-1])
    if isinstance(s, ast.If):
        return s.orelse is not None and always_leaves(s.then) and always_leaves(s.orelse)
    return False


class JumpMixin:
    """Jumps that leave structures other than the innermost run-time loop."""

    def jump_target(self, fn: FnCtx, kind: str, label, pos) -> Target | None:
        """The structure a jump of `kind` (with `label`) leaves; None when there is none in
        this function."""
        for t in reversed(fn.loops):
            if kind == "return":
                if t.kind == "inline":
                    return t
                continue
            if t.kind == "inline":
                return None
            if label is None and t.kind in ("runtime", "comptime"):
                return t
            if label is not None and t.label == label:
                if kind == "continue" and t.kind == "block":
                    raise self.error(f"continue :{label} names a block, not a loop", pos)
                return t
        return None

    def jump(self, env: Env, t: Target, kind: str, value, pos) -> None:
        """Leave target `t` (a `kind` jump, with `value` or None)."""
        fn = env.fn
        if t.kind != "runtime" and fn.depth == t.depth:
            if kind == "return":
                raise _Return(value, t.depth, pos)
            if kind == "break":
                raise _Break(t.label, value, t.depth, pos)
            raise _Continue(t.label, t.depth, pos)
        if t.kind == "runtime":
            if value is not None:
                raise self.error("break with a value out of a runtime loop", pos)
            if _innermost_runtime(fn) is t:
                fn.emit(ir.Break() if kind == "break" else ir.Continue())
                return
        code = t.codes.get(kind)
        if code is None:
            code = t.codes[kind] = _jump_code(fn, env.module.pe)
        if value is not None:
            if t.result is None:
                t.result = env.module.pe.fresh(f"{t.label or 'ret'}.")
            ph = ir.LocalAssign(t.result, ir.Const(0, _CODE))
            fn.emit(ph)
            t.values.append((ph, value, pos))
        fn.emit(_set_code(fn, code))
        self.pass_on(fn, t, kind, code)

    @staticmethod
    def pass_on(fn: FnCtx, t: Target, kind: str, code: int) -> None:
        """Go on with jump `code` from here: out of the innermost run-time loop, or in flight
        to a target with none between."""
        r = _innermost_runtime(fn)
        if r is t:
            fn.emit(_set_code(fn, 0))
            fn.emit(ir.Break() if kind == "break" else ir.Continue())
        elif r is not None and fn.loops.index(r) > fn.loops.index(t):
            fn.emit(ir.Break())
            r.crossed.append((t, kind, code))
        else:
            fn.inflight.add(code)

    def after_loop(self, fn: FnCtx, r: Target) -> None:
        """After run-time loop `r` (no longer on the stack): pass on the jumps that left it."""
        for t, kind, code in r.crossed:
            inner = _innermost_runtime(fn)
            if inner is not None and fn.loops.index(inner) >= fn.loops.index(t):
                then = self.emit_block(fn, lambda t=t, kind=kind, code=code:
                                       self.pass_on(fn, t, kind, code))
                fn.emit(ir.If(_code_is(fn, code), then))
            else:
                fn.inflight.add(code)

    @staticmethod
    def arrive(fn: FnCtx, t: Target, kind: str) -> None:
        """At the end of target `t` (or of an unrolled loop's iteration, for "continue"):
        where its `kind` jump is in flight, it has arrived."""
        code = t.codes.get(kind)
        if code is not None and code in fn.inflight:
            fn.inflight.discard(code)
            fn.emit(ir.If(_code_is(fn, code), (_set_code(fn, 0),)))

    # -- labelled blocks and the values of jumps --------------------------------------------

    def labelled_block(self, b: ast.Block, env: Env, want=None, value: bool = False):
        """Run labelled block `b`; its value is what `break :label v` leaves with (None
        without one). With `value` the block must leave with a break."""
        fn = env.fn
        plain = ast.Block(b.stmts, None, b.comptime, b.pos)
        ends = f"block '{b.label}' ends without `break :{b.label} value`"
        if fn is None:
            try:
                self.exec_block(plain, env)
            except _Break as sig:
                if sig.label == b.label:
                    return sig.value
                raise
            if value:
                raise self.error(ends, b.pos)
            return None
        t = Target("block", b.label, fn.depth)
        lst, start = fn.blocks[-1], len(fn.blocks[-1])
        fn.loops.append(t)
        try:
            self.exec_block(plain, env)
        except _Break as sig:
            if sig.label != b.label or sig.depth != t.depth:
                raise
            return sig.value
        finally:
            fn.loops.remove(t)
        if (value or t.values) and not (t.codes and always_leaves(plain)):
            raise self.error(ends, b.pos)
        v = self.jump_value(fn, t, want, lst, start, f"block '{b.label}'", b.pos)
        self.arrive(fn, t, "break")
        return v

    def jump_value(self, fn: FnCtx, t: Target, want, lst: list, start: int, what: str, pos):
        """The value target `t` leaves with, where run-time jumps gave it one: its result
        local, of type `want` or the peer type of the values, set where each jump was. A
        pointer is held as its u16 address, an enum as its tag, a struct as one local per
        leaf."""
        if not t.values:
            return None
        values = [v for _, v, _ in t.values]
        pt = self.branch_pointer_type(values, want, pos)
        agg = want if isinstance(want, (StructT, EnumT)) else next(
            (a for a in map(aggregate_type_of, values) if isinstance(a, (StructT, EnumT))),
            None)
        label = f"value of {what}"
        if pt is not None:
            ty = ir.POINTER
            leaf, held = (lambda v, p: self.runtime_pointer(v, pt, p, label).expr), \
                (lambda e: RPtr(e, pt))
        elif isinstance(agg, StructT):
            return self._struct_jump_value(fn, t, agg, lst, start, label, pos)
        elif isinstance(agg, EnumT):
            ty = agg.tag
            leaf, held = (lambda v, p: self.leaf_expr(v, agg, p, label)), \
                (lambda e: EnumRVal(e, agg.tag, agg))
        else:
            ty = want if isinstance(want, DType) else self._jump_peer_type(t, what, pos)
            leaf, held = (lambda v, p: self.to_expr(v, ty, p, label)), (lambda e: RVal(e, ty))
        new = {id(ph): ir.LocalAssign(t.result, leaf(v, p)) for ph, v, p in t.values}
        lst[start:] = _replace(lst[start:], new)
        lst.insert(start, ir.LocalAssign(t.result, ir.Const(False if ty is DType.bool_ else 0,
                                                           ty)))
        return held(ir.Local(t.result, ty))

    def _jump_peer_type(self, t: Target, what: str, pos):
        """The peer type of the numbers the run-time jumps to `t` give."""
        types = [v.dtype for _, v, _ in t.values if isinstance(v, (RVal, CNum))]
        if not types:
            raise self.error(f"the value of {what} is known only at run time: give it a "
                             "type (declare the variable's type, or use @as)", pos)
        ty = types[0]
        for u in types[1:]:
            ty = self.peer(ty, u, what, pos)
        return ty

    def _struct_jump_value(self, fn: FnCtx, t: Target, st, lst: list, start: int,
                           label: str, pos):
        """A struct result: one local per leaf, stored where each jump was."""
        out = StructRef(st, "local", t.result, (), True)
        new = {id(ph): list(self.emit_block(fn, lambda v=v, p=p: self.store(
            fn, out, v, p, label, init=True))) for ph, v, p in t.values}
        lst[start:] = _replace(lst[start:], new)
        lst[start:start] = self.emit_block(fn, lambda: self.store(
            fn, out, self.zero_value(st, pos), pos, label, init=True))
        return out


class BranchMixin:
    """Operands evaluated only where they decide: the right side of `and` / `or`, the
    branches of a run-time if-expression."""

    def branch_value(self, env: Env, node, want=None):
        """`node`'s value and the statements its evaluation emitted, apart."""
        out = []
        stmts = self.emit_block(env.fn, lambda: out.append(self.ev_as(node, want, env)))
        return out[0], stmts

    def short_circuit(self, e: ast.Binary, a: RVal, env: Env):
        """`a and b` / `a or b` with `a` known at run time: `b` runs only where `a` does not
        decide (a call in it is not made elsewhere)."""
        if env.fn is None:
            return self.runtime_bin(e.op, a, self.ev(e.b, env), e.pos)
        b, stmts = self.branch_value(env, e.b)
        if not stmts and not (isinstance(b, RVal) and has_effects(b.expr)):
            return self.runtime_bin(e.op, a, b, e.pos)
        if a.dtype is not DType.bool_:
            raise self.error(f"operator '{e.op}' needs bools, got {a.dtype}", e.pos)
        bx = self.to_expr(b, DType.bool_, e.b.pos, f"operand of '{e.op}'")
        tmp = env.module.pe.fresh("cond.")
        c = ir.Local(tmp, DType.bool_)
        env.fn.emit(ir.LocalAssign(tmp, a.expr))
        env.fn.emit(ir.If(c if e.op == "and" else ir.Un("!", c, DType.bool_),
                          stmts + (ir.LocalAssign(tmp, bx),)))
        return RVal(c, DType.bool_)

    def lazy_if(self, e: ast.IfExpr, c: RVal, env: Env, want):
        """A run-time if-expression: `(a, b, merge)`, where `merge(ea, eb, t)` gives its
        value from the branches' expressions of type `t`; a branch that emits statements or
        has effects runs only where it is taken (`merge.emit_branches()` emits both
        branches' statements unconditionally instead, for a value merged otherwise)."""
        if env.fn is None:
            a, sa = self.ev_as(e.a, want, env), ()
            b, sb = self.ev_as(e.b, want, env), ()
        else:
            a, sa = self.branch_value(env, e.a, want)
            b, sb = self.branch_value(env, e.b, want)
        lazy = bool(sa or sb) or any(isinstance(v, RVal) and has_effects(v.expr)
                                     for v in (a, b))
        return a, b, _Merge(env, c, sa, sb, lazy)

    def held_switch(self, env: Env, default: tuple, values: list, want, pos):
        """A run-time switch whose prongs give structs or enums (of type `want` where given):
        each leaf selected (every prong's statements run); None for other values. Arguments
        as `switch_value`'s."""
        out, stmts = default
        if not values:
            return None
        pre = list(stmts)
        for c, v, st in values:
            held = self.select_held(c, v, out, want, pos)
            if held is None:
                return None
            pre += st
            out = held
        for st in pre:
            env.fn.emit(st)
        return out

    def switch_value(self, env: Env, default: tuple, values: list, t: DType, pos):
        """The value of a run-time switch expression: `default` is the else prong's (value,
        statements), `values` the (condition, value, statements) of the others, last prong
        first. Selects, unless a prong emits statements or has effects: then an if chain
        runs only the prong taken."""
        out, tail = default
        lazy = bool(tail) or any(st for _, _, st in values) or any(
            isinstance(v, RVal) and has_effects(v.expr) for v in [out] + [v for _, v, _ in values])
        if not lazy:
            out = RVal(self.to_expr(out, t, pos), t)
            for c, v, _ in values:
                out = RVal(ir.Select(c, self.to_expr(v, t, pos), out.expr, t), t)
            return out
        tmp = env.module.pe.fresh("switch.")
        chain = tail + (ir.LocalAssign(tmp, self.to_expr(out, t, pos)),)
        for c, v, st in values:
            chain = (ir.If(c, st + (ir.LocalAssign(tmp, self.to_expr(v, t, pos)),), chain),)
        for st in chain:
            env.fn.emit(st)
        return RVal(ir.Local(tmp, t), t)


class _Merge:
    """The value of a run-time if-expression from its branches' expressions (`lazy_if`)."""

    def __init__(self, env: Env, c: RVal, sa: tuple, sb: tuple, lazy: bool):
        self.env, self.c, self.sa, self.sb, self.lazy = env, c, sa, sb, lazy

    def __call__(self, ea, eb, t: DType) -> RVal:
        if not self.lazy:
            return RVal(ir.Select(self.c.expr, ea, eb, t), t)
        tmp = self.env.module.pe.fresh("if.")
        self.env.fn.emit(ir.If(self.c.expr, self.sa + (ir.LocalAssign(tmp, ea),),
                               self.sb + (ir.LocalAssign(tmp, eb),)))
        return RVal(ir.Local(tmp, t), t)

    def emit_branches(self) -> None:
        for st in self.sa + self.sb:
            self.env.fn.emit(st)


def has_effects(e) -> bool:
    """Whether IR expression `e` calls a function or draws on the PE's state."""
    if isinstance(e, ir.CallExpr):
        return True
    if isinstance(e, ir.Intrinsic) and e.name in ("random16", "seed_prng", "reset_cycles"):
        return True
    if isinstance(e, (ir.Bin, ir.Un, ir.Cast, ir.Bitcast, ir.Select, ir.Load, ir.Intrinsic)):
        return any(has_effects(getattr(e, f.name)) for f in dataclasses.fields(e)
                   if f.name not in ("op", "dtype", "name", "symbol"))
    if isinstance(e, tuple):
        return any(has_effects(x) for x in e)
    return False


def _jump_code(fn: FnCtx, pe) -> int:
    """A new jump code of `fn` (its code local starts at zero: `jump_init`)."""
    if fn.jump is None:
        fn.jump = pe.fresh("jump.")
    fn.codes += 1
    return fn.codes


def jump_init(fn: FnCtx) -> tuple:
    """The statements a function body starts with: its jump code local, where it has one."""
    return () if fn.jump is None else (_set_code(fn, 0),)


def _innermost_runtime(fn: FnCtx) -> Target | None:
    for t in reversed(fn.loops):
        if t.kind == "runtime":
            return t
    return None


def _replace(stmts, new: dict):
    """`stmts` with the statements whose id is in `new` replaced, in nested bodies too."""
    out = []
    for s in stmts:
        if id(s) in new:
            got = new[id(s)]
            out.extend(got if isinstance(got, list) else [got])
        elif isinstance(s, ir.If):
            out.append(dataclasses.replace(s, then=tuple(_replace(s.then, new)),
                                           orelse=tuple(_replace(s.orelse, new))))
        elif isinstance(s, ir.For):
            out.append(dataclasses.replace(s, body=tuple(_replace(s.body, new))))
        elif isinstance(s, ir.While):
            out.append(dataclasses.replace(s, body=tuple(_replace(s.body, new)),
                                           cont=tuple(_replace(s.cont, new))))
        else:
            out.append(s)
    return out
