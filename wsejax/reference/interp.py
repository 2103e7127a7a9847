"""Functions, statements and scalar expressions in the reference interpreter.

Contract: `Interpreter` is the part of `Reference` that runs function bodies on one PE. Bodies
are generators: a statement that may wait on the fabric (a DSD operation, or one that contains
statements) is a generator too, and yields while it waits; the others run at once. Each IR class
has one handler, `stmt_<Class>`, `expr_<Class>` or `dsd_<Class>`, found by class name
(`_handler`); the DSD expressions (`dsd_<Class>`), `stmt_DsdOp`, `stmt_DsdAssign` and
`stmt_Map` are in `wsejax.reference.dsds`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from wsejax import ir
from wsejax.diagnostics import (
    assertion_failed,
    index_out_of_range,
    loop_ran_past,
    map_writes_memory,
    read_before_assigned,
    recursion_too_deep,
    route_edit_color,
)
from wsejax.errors import ProgramError
from wsejax.hardware import UT_ID_COUNT
from wsejax.ir_calls import MAX_RECURSION_DEPTH, call_cycles
from wsejax.reference.pe import (
    FLUSH_PENDING,
    FLUSHED,
    NO_FLUSH,
    PE,
    TASK_ID_COUNT,
    Dsd,
    Fault,
    Frame,
)
from wsejax.reference.scalars import (
    binop,
    bitcast,
    cast,
    const,
    dtype_of,
    math_intrinsic,
    unop,
    wrap,
)
from wsejax.types import DType, format_value

__all__ = ["BREAK", "CONTINUE", "RETURN", "Interpreter"]

BREAK, CONTINUE, RETURN = "break", "continue", "return"

_RECURSION_FRAMES = 64 * MAX_RECURSION_DEPTH + 5000

# statements that contain others or may wait: their handlers are generators
_WAITING_STMTS = frozenset({ir.If, ir.For, ir.While, ir.Call, ir.DsdOp, ir.Map})
# statements a @map callback may not run (it may write a variable or through a pointer: its
# elements run one after another)
_NOT_IN_MAP = frozenset({ir.DsdAssign, ir.Map, ir.UnblockCmdStream, ir.Print,
                         ir.TaskCtl, ir.QueueBind, ir.QueueCtl})


def _active(stack: list, cycle: frozenset) -> int:
    """The activations of a cycle's functions at the top of call stack `stack`: those a
    call into the cycle from one of them adds to."""
    n = 0
    for name in reversed(stack):
        if name not in cycle:
            break
        n += 1
    return n


def map_write_error(fr: Frame) -> ProgramError:
    return ProgramError(map_writes_memory(fr.fn))


class Interpreter:
    """Runs functions, statements and scalar expressions (a mixin of `Reference`).

    Uses from `Reference`: `loop_limit`, `output`, `_handlers` (the cache of `_handler`); the
    handlers of DSD expressions and DSD statements are `DsdInterpreter`'s, the tests of
    floating-point exceptions `FpExcInterpreter`'s.
    """

    loop_limit: int
    output: list[str]
    _handlers: dict[tuple[str, type], Callable | None]

    def _handler(self, prefix: str, node) -> Callable | None:
        """The method `<prefix><Class>` that handles `node`, or None (cached per class)."""
        key = (prefix, type(node))
        try:
            return self._handlers[key]
        except KeyError:
            handler = self._handlers[key] = getattr(self, prefix + type(node).__name__, None)
            return handler

    # -- functions and statements (generators: they yield while a fabric op waits) ---------

    def _call(self, pe: PE, name: str, args: list, caller: Frame):
        f = pe.cls.function(name)
        cycle = call_cycles(pe.cls).get(name)
        if cycle is not None:
            if _active(pe.stack, cycle) >= MAX_RECURSION_DEPTH:
                raise Fault(recursion_too_deep(name, MAX_RECURSION_DEPTH))
            # a CSL call takes a few dozen Python frames here (pure Python frames take no C
            # stack from Python 3.11 on): room for the deepest recursion allowed
            sys.setrecursionlimit(max(sys.getrecursionlimit(), _RECURSION_FRAMES))
        fr = Frame(fn=name, in_map=caller.in_map, nest=caller.nest)
        for (pname, ptype), a in zip(f.params, args):
            if isinstance(ptype, DType) and not isinstance(a, Dsd):
                a = cast(a, dtype_of(a), ptype)
            fr.locals[pname] = a
        pe.stack.append(name)
        try:
            yield from self._block(pe, f.body, fr)
        finally:
            pe.stack.pop()
        return fr.retval

    @staticmethod
    def _drive(body, where: str):
        """Run a body that may not wait (a call in an expression, a @map callback)."""
        try:
            body.send(None)
        except StopIteration as stop:
            return stop.value
        body.close()
        raise ProgramError(f"{where}: a function called in an expression or @map callback "
                           "waits on the fabric")

    def _block(self, pe: PE, stmts, fr: Frame):
        for s in stmts:
            if type(s) in _WAITING_STMTS:
                sig = yield from self._handler("stmt_", s)(pe, s, fr)
            else:
                sig = self._stmt(pe, s, fr)
            if sig is not None:
                return sig
        return None

    def _stmt(self, pe: PE, s, fr: Frame):
        """A statement that neither waits nor contains others: it costs one cycle."""
        if fr.in_map and type(s) in _NOT_IN_MAP:
            raise map_write_error(fr)
        handler = self._handler("stmt_", s)
        if handler is None:
            raise ProgramError(f"cannot run statement {s!r}")
        sig = handler(pe, s, fr)
        self._tick(pe, fr, 1)
        return sig

    @staticmethod
    def _tick(pe: PE, fr: Frame, n: int) -> None:
        if not fr.in_map:
            pe.cycles += n

    def stmt_If(self, pe: PE, s: ir.If, fr: Frame):
        if type(s.cond) is ir.Const:
            return (yield from self._block(pe, s.then if s.cond.value else s.orelse, fr))
        taken = bool(self._expr(pe, s.cond, fr))
        self._tick(pe, fr, 1)
        return (yield from self._block(pe, s.then if taken else s.orelse, fr))

    def stmt_Call(self, pe: PE, s: ir.Call, fr: Frame):
        yield from self._call(pe, s.fn, [self._value(pe, a, fr) for a in s.args], fr)
        return None

    def _iteration(self, fr: Frame, kind: str, outer: bool) -> None:
        """Count one iteration of a loop against its nest's budget (`loop_limit` in all);
        past it the PE faults. In a @map callback only while loops count (a for loop there
        has a known end), each element's call on its own budget."""
        if fr.in_map and kind == "for":
            return
        if fr.nest[0] >= self.loop_limit:
            raise Fault(loop_ran_past(fr.fn, kind, self.loop_limit, outer))
        fr.nest[0] += 1

    def stmt_For(self, pe: PE, s: ir.For, fr: Frame):
        before = set(fr.locals)
        outer = fr.nest is None and not fr.in_map
        if outer:
            fr.nest = [0]
        try:
            for k in range(s.trip_count):
                self._iteration(fr, "for", outer)
                fr.locals[s.var] = wrap(s.start + k * s.step, s.dtype)
                sig = yield from self._block(pe, s.body, fr)
                if sig == BREAK:
                    break
                if sig == RETURN:
                    return RETURN
        finally:
            _leave_loop(fr, before, outer)
        return None

    def stmt_While(self, pe: PE, s: ir.While, fr: Frame):
        before = set(fr.locals)
        outer = fr.nest is None
        if outer:
            fr.nest = [0]
        try:
            while bool(self._expr(pe, s.cond, fr)):
                self._iteration(fr, "while", outer)
                sig = yield from self._block(pe, s.body, fr)
                if sig == RETURN:
                    return RETURN
                if sig == BREAK:
                    break
                if (yield from self._block(pe, s.cont, fr)) == RETURN:
                    return RETURN
        finally:
            _leave_loop(fr, before, outer)
        return None

    def stmt_Assign(self, pe: PE, s: ir.Assign, fr: Frame) -> None:
        sym = pe.cls.symbol(s.symbol)
        v = self._expr(pe, s.value, fr)
        if v.dtype != sym.dtype.np:
            v = cast(v, dtype_of(v), sym.dtype)
        self._store(pe, s.symbol, s.indices, v, fr)

    def stmt_LocalAssign(self, pe: PE, s: ir.LocalAssign, fr: Frame) -> None:
        fr.locals[s.name] = self._value(pe, s.value, fr)

    def stmt_Break(self, pe: PE, s: ir.Break, fr: Frame) -> str:
        return BREAK

    def stmt_Continue(self, pe: PE, s: ir.Continue, fr: Frame) -> str:
        return CONTINUE

    def stmt_Return(self, pe: PE, s: ir.Return, fr: Frame) -> str:
        if s.value is not None:
            v = self._value(pe, s.value, fr)
            ret = pe.cls.function(fr.fn).ret
            if isinstance(ret, DType) and not isinstance(v, Dsd) and v.dtype != ret.np:
                v = cast(v, dtype_of(v), ret)
            fr.retval = v
        return RETURN

    def stmt_ExprStmt(self, pe: PE, s: ir.ExprStmt, fr: Frame) -> None:
        self._expr(pe, s.value, fr)

    def stmt_Assert(self, pe: PE, s: ir.Assert, fr: Frame) -> None:
        if not bool(self._expr(pe, s.cond, fr)):
            raise Fault(assertion_failed(s.where))

    def stmt_UnblockCmdStream(self, pe: PE, s: ir.UnblockCmdStream, fr: Frame) -> None:
        pe.cmd_blocked = False

    def stmt_Print(self, pe: PE, s: ir.Print, fr: Frame) -> None:
        text = "".join(p if isinstance(p, str) else
                       format_value(self._expr(pe, p[0], fr), p[1], p[0].dtype) for p in s.parts)
        *lines, pe.line = (pe.line + text).split("\n")
        prefix = f"PE({pe.x},{pe.y}): " if s.coords else ""
        self.output.extend(prefix + line for line in lines)

    def stmt_QueueBind(self, pe: PE, s: ir.QueueBind, fr: Frame) -> None:
        """`encode_*_queue` (the engine's checks, `FabricOps.queue_bind`)."""
        queue_color = pe.queue_colors[(s.kind, s.queue)]
        color = self._int(pe, s.color, fr)
        name = f"{s.kind} queue {s.queue}"
        if color not in queue_color.colors:
            raise Fault(f"{name} bound at run time to a color other than "
                        f"{', '.join(map(str, queue_color.colors))} (the colors this program "
                        "names for it or routes)")
        for op in pe.micro.values():
            if (s.kind, s.queue) in op.queues:
                raise Fault(f"{name} rebound while an operation on a microthread uses it")
        if s.kind == "output" and pe.outbox.get(pe.color_now(queue_color)):
            raise Fault(f"{name} rebound while it still holds wavelets (wait until it is "
                        "empty: @queue_flush)")
        pe.queue_binding[(s.kind, s.queue)] = color

    def stmt_QueueCtl(self, pe: PE, s: ir.QueueCtl, fr: Frame) -> None:
        if (s.kind, s.queue) in pe.queue_flush:
            pe.queue_flush[(s.kind, s.queue)] = FLUSH_PENDING if s.op == "flush" else NO_FLUSH

    def stmt_TaskCtl(self, pe: PE, s: ir.TaskCtl, fr: Frame) -> None:
        """`@activate`, `@block`, `@unblock` of a task ID, or `@block`/`@unblock` of a
        microthread; an ID out of range does nothing."""
        ident = self._int(pe, s.id, fr)
        if s.target == "ut":
            ids, count = pe.blocked_uts, UT_ID_COUNT
        elif s.op == "activate":
            pe.activate(ident)
            return
        else:
            ids, count = pe.blocked, TASK_ID_COUNT
        if 0 <= ident < count:
            if s.op == "block":
                ids.add(ident)
            else:
                ids.discard(ident)

    # -- memory -----------------------------------------------------------------------------

    def _flat_index(self, pe: PE, sym: ir.Symbol, indices, fr: Frame):
        """Row-major flat index of `sym[indices]`, or None when an index is out of range."""
        flat, ok = 0, True
        for e, n in zip(indices, sym.shape):
            v = int(self._expr(pe, e, fr))
            if not e.dtype.is_wide:     # a 64-bit index is out of range past 2**31 as it is
                v = int(wrap(v, DType.i32))
            ok = ok and 0 <= v < n
            flat = flat * n + v
        return flat if ok else None

    def _store(self, pe: PE, symbol: str, indices, v, fr: Frame) -> None:
        sym = pe.cls.symbol(symbol)
        idx = self._flat_index(pe, sym, indices, fr) if indices else 0
        if idx is None:
            raise Fault(index_out_of_range("writing", symbol))
        pe.flat[symbol][idx] = v

    # -- expressions ------------------------------------------------------------------------

    def _expr(self, pe: PE, e, fr: Frame):
        """The value of scalar expression `e`, a numpy scalar."""
        handler = self._handler("expr_", e)
        if handler is None:
            raise ProgramError(f"cannot evaluate expression {e!r}")
        return handler(pe, e, fr)

    def _value(self, pe: PE, v, fr: Frame):
        """A value for a local, an argument or a return: a numpy scalar, or a `Dsd`."""
        if isinstance(v, ir.DsdExpr):
            return self._dsd(pe, v, fr)
        return self._expr(pe, v, fr)

    def _int(self, pe: PE, e, fr: Frame) -> int:
        """A DSD field: a constant, or an expression's value as an int32 (as the engine)."""
        if type(e) is ir.Const:
            return int(e.value)
        return int(wrap(int(self._expr(pe, e, fr)), DType.i32))

    def expr_Const(self, pe: PE, e: ir.Const, fr: Frame):
        return const(e)

    def expr_Local(self, pe: PE, e: ir.Local, fr: Frame):
        v = fr.locals.get(e.name)
        if v is None:
            raise ProgramError(read_before_assigned(fr.fn, e.name))
        return v

    def expr_Load(self, pe: PE, e: ir.Load, fr: Frame):
        sym = pe.cls.symbol(e.symbol)
        idx = self._flat_index(pe, sym, e.indices, fr) if e.indices else 0
        if idx is None:
            raise Fault(index_out_of_range("reading", e.symbol))
        return pe.flat[e.symbol][idx]

    def expr_PeValue(self, pe: PE, e: ir.PeValue, fr: Frame):
        return np.asarray(pe.tables[e.table]).astype(e.dtype.np)[()]

    def expr_QueueFlushed(self, pe: PE, e: ir.QueueFlushed, fr: Frame):
        return np.bool_(pe.queue_flush.get((e.kind, e.queue)) == FLUSHED)

    def expr_TeardownPending(self, pe: PE, e: ir.TeardownPending, fr: Frame):
        """`teardown.is_pending(color)`, or `get_pending()`: one bit per color in teardown."""
        if e.color is not None:
            return np.bool_(self._teardown_pending(pe, e.color))
        return np.uint32(sum(1 << c for c in self._switched if self._teardown_pending(pe, c)))

    def stmt_RouteEdit(self, pe: PE, s: ir.RouteEdit, fr: Frame) -> None:
        self._route_edit(pe, s)

    def stmt_RouteEditAt(self, pe: PE, s: ir.RouteEditAt, fr: Frame) -> None:
        color = int(self._expr(pe, s.color, fr))
        if color not in self._switched:
            raise Fault(route_edit_color(s.op))
        self._route_edit(pe, ir.RouteEdit(color, s.op, s.rx, s.tx))

    def stmt_TeardownExit(self, pe: PE, s: ir.TeardownExit, fr: Frame) -> None:
        self._teardown_exit(pe, s.color)

    def expr_Bin(self, pe: PE, e: ir.Bin, fr: Frame):
        a = self._expr(pe, e.a, fr)
        if not self.fp_checks(pe) or fr.in_map:
            return binop(e, a, self._expr(pe, e.b, fr))
        if e.op in ("and", "or"):
            decided = bool(a) == (e.op == "or")
            return binop(e, a, self.fp_quietly(lambda: self._expr(pe, e.b, fr), decided))
        b = self._expr(pe, e.b, fr)
        self.fp_scalar(pe, e, a, b, fr.fn)
        return binop(e, a, b)

    def expr_Un(self, pe: PE, e: ir.Un, fr: Frame):
        return unop(e.op, self._expr(pe, e.a, fr), e.a.dtype)

    def expr_Cast(self, pe: PE, e: ir.Cast, fr: Frame):
        x = self._expr(pe, e.a, fr)
        if self.fp_checks(pe) and not fr.in_map:
            self.fp_cast(pe, x, e.a.dtype, e.dtype, fr.fn)
        return cast(x, e.a.dtype, e.dtype)

    def expr_Bitcast(self, pe: PE, e: ir.Bitcast, fr: Frame):
        return bitcast(self._expr(pe, e.a, fr), e.a.dtype, e.dtype)

    def expr_Select(self, pe: PE, e: ir.Select, fr: Frame):
        cond = bool(self._expr(pe, e.cond, fr))
        if not self.fp_checks(pe):
            a = self._expr(pe, e.a, fr)
            b = self._expr(pe, e.b, fr)
            return a if cond else b
        a = self.fp_quietly(lambda: self._expr(pe, e.a, fr), not cond)
        b = self.fp_quietly(lambda: self._expr(pe, e.b, fr), cond)
        return a if cond else b

    def expr_CallExpr(self, pe: PE, e: ir.CallExpr, fr: Frame):
        body = self._call(pe, e.fn, [self._value(pe, a, fr) for a in e.args], fr)
        return self._drive(body, f"{e.fn} in {fr.fn}")

    def expr_Intrinsic(self, pe: PE, e: ir.Intrinsic, fr: Frame):
        args = [self._expr(pe, a, fr) for a in e.args]
        on_pe = _PE_INTRINSICS.get(e.name)
        if on_pe is not None:
            return on_pe(pe, e, args)
        return math_intrinsic(e, args)


def _leave_loop(fr: Frame, before: set, outer: bool) -> None:
    """End a loop: the outermost loop of a nest ends its budget; the loop's locals go."""
    if outer:
        fr.nest = None
    for name in [k for k in fr.locals if k not in before]:
        del fr.locals[name]


# -- intrinsics with effects on the PE -------------------------------------------------------------


def _cycles(pe: PE, e: ir.Intrinsic, args: list):
    return np.uint32(pe.cycles & 0xFFFFFFFF)


def _reset_cycles(pe: PE, e: ir.Intrinsic, args: list):
    base = pe.flat.get(ir.PERF_BASE)
    if base is not None:
        base[0] = (int(base[0]) + pe.cycles) & 0xFFFFFFFF
    pe.cycles = 0
    return e.dtype.np.type(0)


def _seed_prng(pe: PE, e: ir.Intrinsic, args: list):
    seed = int(cast(args[0], e.args[0].dtype, DType.u32)) & 0x7FFFFF
    pe.prng = seed or 1
    return e.dtype.np.type(0)


def _random16(pe: PE, e: ir.Intrinsic, args: list):
    """128 steps of the LFSR x^23 + x^18 + 1 (Fibonacci form, shifting right); its low 16 bits."""
    state = pe.prng
    for _ in range(128):
        bit = (state ^ (state >> 5)) & 1
        state = (state >> 1) | (bit << 22)
    pe.prng = state
    return wrap(state & 0xFFFF, e.dtype)


_PE_INTRINSICS = {"cycles": _cycles, "reset_cycles": _reset_cycles, "seed_prng": _seed_prng,
                  "random16": _random16}
