"""The PE program builder: traces a PE program function's globals, functions and tasks into
an `ir.PeProgram`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wsejax import ir
from wsejax.dsl._context import (
    _BodyBuilder,
    _program,
    _ProgramState,
    _rule,
    _stack,
    mem1d_dsd,
)
from wsejax.dsl._dsds import (
    _base,
)
from wsejax.dsl._functions import (
    FnRef,
)
from wsejax.dsl._globals import (
    SymbolRef,
)
from wsejax.dsl._tasks import (
    _task_id,
)
from wsejax.dsl._values import (
    DsdValue,
    DsdVarRef,
    Val,
    _expr,
)
from wsejax.errors import ProgramError
from wsejax.frontend.fabric import check_initialised

# Builders


class _ProgramBuilder(_ProgramState):
    """Traces the declarations of one PE program instantiation."""

    def add_symbol(self, sym: ir.Symbol) -> SymbolRef:
        self._check_name(sym.name)
        self.symbols[sym.name] = sym
        return SymbolRef(sym, self)

    def add_dsd_var(self, name: str, init: DsdValue) -> DsdVarRef:
        self._check_name(name)
        if not isinstance(init.expr, ir.DsdLit) or _has_runtime_field(init.expr.dsd):
            raise ProgramError(f"DSD variable '{name}' needs a comptime-known initial DSD")
        self.dsd_vars[name] = init.expr
        return DsdVarRef(name, init)

    def define_fn(self, pyfn, name, param_types, ret, infer_ret=False) -> FnRef:
        self._check_name(name)
        ref = FnRef(name, pyfn, param_types, ret, self)
        ref.infer_ret = infer_ret
        self.fns[name] = ref
        if infer_ret:
            self.trace(ref)
        return ref

    def trace(self, ref: FnRef) -> None:
        if ref.name in self.traced:
            return
        body = _BodyBuilder(self, ref.name, ref.ret)
        params = []
        args = []
        for k, t in enumerate(ref.param_types):
            pname = f"%arg{k}_{ref.name}"
            params.append((pname, t))
            if t == "dsd":
                # the element type of a DSD parameter is known only at a call: checked there
                args.append(DsdValue(ir.DsdLocal(pname), mem1d_dsd, None))
            else:
                args.append(Val(ir.Local(pname, t)))
        _stack().append(body)
        try:
            result = ref.pyfn(*args)
        finally:
            _stack().pop()
        if getattr(ref, "infer_ret", False) and result is not None:
            ref.ret = _expr(result).dtype
            body.ret = ref.ret
        if ref.ret is not None:
            if result is None:
                last = body.last()
                if not isinstance(last, ir.Return):
                    raise ProgramError(f"{ref.name} must return a {ref.ret}")
            else:
                body.emit(ir.Return(_expr(result, ref.ret, f"return value of {ref.name}")))
        elif result is not None:
            raise ProgramError(f"{ref.name} is declared void but returned a value; annotate "
                               "its return type")
        self.traced[ref.name] = ir.Function(ref.name, tuple(params), ref.ret, body.pop())

    def build(self) -> ir.PeProgram:
        for ref in list(self.fns.values()):
            self.trace(ref)
        names = {e.name for e in self.exports}
        if len(names) != len(self.exports):
            dup = [n for n in names if sum(e.name == n for e in self.exports) > 1]
            raise ProgramError(f"'{dup[0]}' is exported twice")
        self.functions = {n: self.traced[n] for n in self.fns}
        self.tasks = {k: self._data_task_colors(t) for k, t in self.tasks.items()}
        self.fifos = {name: ir.Fifo(name, name, self._hook(push, name, "activate_push"),
                                    self._hook(pop, name, "activate_pop"),
                                    *self.fifo_actions[name])
                      for name, (push, pop) in self.fifo_hooks.items()}
        self.queue_colors = tuple((kind, q, color) for (kind, q), (color, _)
                                  in sorted(self.queues.items()) if color is not None)
        return super().build()

    def _data_task_colors(self, t: ir.Task) -> ir.Task:
        """A wse3 data task gets the color its input queue was initialised with."""
        q = self.data_queues.get(t.id) if t.kind == "data" else None
        if q is None:
            return t
        color = self.queues.get(("input", q), (None, None))[0]
        _rule(check_initialised, f"data task '{t.fn}'", "input", q, color,
              "give it a color with csl.initialize_queue(q, color=c)", error=ProgramError)
        return ir.Task(t.fn, t.kind, t.id, color)

    def _hook(self, v, fifo: str, what: str) -> int | None:
        """A FIFO hook's local task ID (a task bound anywhere in the program)."""
        if v is None:
            return None
        return _task_id(v, f"allocate_fifo({fifo}) {what}", local_only=True)


def _has_runtime_field(d) -> bool:
    if isinstance(d, ir.Mem1d):
        fields = (d.offset, d.stride, d.length)
    elif isinstance(d, ir.Mem4d):
        fields = (d.offset,)
    else:
        fields = (d.length,)
    return not all(isinstance(f, ir.Const) for f in fields)


def export_symbol(target, name: str | None = None) -> None:
    """`@export_symbol(sym, name)`: advertise a global (or `csl.addr(...)`) or a function."""
    pb = _program()
    if _stack()[-1] is not pb:
        raise ProgramError("export_symbol belongs at the top level of the PE program")
    if isinstance(target, FnRef):
        if target.name not in pb.fns:
            raise ProgramError(f"'{target.name}' is not a function of this program")
        pb.exports.append(ir.ExportFunc(name or target.name, target.name))
        return
    sym, off = _base(target)
    pb.exports.append(ir.ExportData(name or sym.name, sym.name, off))


def build_pe_program(pe_program: Callable, params: dict[str, Any], name: str,
                     arch: str = "wse2") -> ir.PeProgram:
    """Run a PE program function with its params and return its IR (for `arch`)."""
    pb = _ProgramBuilder(name, arch)
    _stack().append(pb)
    try:
        pe_program(**params)
        return pb.build()
    except TypeError as e:
        if "argument" in str(e) and pe_program.__name__ in str(e):
            raise ProgramError(f"PE program {pe_program.__name__}: {e}") from None
        raise
    finally:
        _stack().remove(pb)
