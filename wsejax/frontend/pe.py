"""The collector of one PE program's IR."""

from __future__ import annotations

import dataclasses

from wsejax import ir


class PeBuilder:
    """Collects the IR of one PE program instantiation."""

    def __init__(self, name: str):
        self.name = name
        self.symbols: dict[str, ir.Symbol] = {}
        self.dsd_vars: dict[str, ir.DsdLit] = {}
        self.functions: dict[str, ir.Function] = {}
        self.exports: list = []
        self.specs: dict = {}
        self.const_arrays: dict = {}   # id(ArrayVal) -> (SymRef, the array, kept alive)
        self.struct_pools: dict = {}   # id(StructT) -> its pool (csl.struct_pointers)
        self.fn_pointers: dict = {}    # (id(decl), id(module)) -> (number, function value)
        self.fn_dispatch: dict = {}    # function type -> its dispatch (csl.fn_pointers)
        self.fn_casts: dict = {}       # function type -> where @ptrcast first made one
        self.tasks: dict[int, ir.Task] = {}
        self.routes: dict[int, tuple] = {}      # color -> (rx, tx) for every PE of the class
        self.active: set[int] = set()
        self.blocked: set[int] = set()
        self.blocked_uts: set[int] = set()     # microthreads blocked at start-up (wse3)
        self.task_decls: dict = {}              # (id(decl), id(module)) -> bound task ID
        self.queues: dict = {}                  # ("input" | "output", n) -> (color | None, pos)
        self.queue_uses: list = []              # (queue key, color | None, pos, what)
        self.fifos: dict[str, ir.Fifo] = {}
        self.dsrs: dict = {}                    # DSD variable name -> its register's record
        self.fifo_registers: dict = {}          # register or xdsr name -> the FIFO using it
        self.filters: dict[int, ir.Filter] = {}  # color -> its filter, for every PE of the class
        self.switches: dict[int, ir.Switches] = {}  # color -> its .switches, likewise
        self.teardown_handlers: dict = {}       # color -> (function name, pos)
        self.teardown_colors: set[int] = set()  # colors whose teardown the program reads
        # queues rebound at run time: queue key -> (comptime colors, any runtime color?, pos)
        self.rebinds: dict = {}
        self.flushed: dict = {}                 # queue key -> pos of a @queue_flush
        self.empty_handlers: dict = {}          # queue key -> (function name, pos)
        self.queue_colors: tuple = ()           # (kind, n, color) once finish_pe has run
        self.rotations: list[ir.Rotation] = []   # @bind_rotating_tasks pairs (wse3)
        self.control_table = None               # (instructions, stride): wse3's own table
        # bodies lowered once the PE's comptime is done (a task may name tasks bound later)
        self.deferred: list = []
        self.counter = 0
        self.sites = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"%{prefix}{self.counter}"

    def site(self) -> int:
        self.sites += 1
        return self.sites

    def build(self) -> ir.PeProgram:
        return ir.PeProgram(self.name, _resolve_addresses(tuple(self.symbols.values())),
                            tuple(self.dsd_vars.items()), tuple(self.functions.values()),
                            tuple(self.exports), tuple(self.tasks.values()),
                            tuple(sorted(self.active)), tuple(sorted(self.blocked)),
                            tuple(sorted(self.routes.items())), tuple(self.fifos.values()),
                            tuple(sorted(self.filters.items())), self.queue_colors,
                            tuple(sorted(self.flushed)), tuple(sorted(self.blocked_uts)),
                            tuple(r.ir() for r in self.dsrs.values()),
                            rotations=tuple(self.rotations),
                            switches=tuple(sorted(self.switches.items())),
                            teardown_colors=tuple(sorted(self.teardown_colors
                                                         | set(self.teardown_handlers))))


def _resolve_addresses(symbols: tuple) -> tuple:
    """The symbols with each initial value that is an address (`ir.AddrOf`, a pointer
    variable's) replaced by that address."""
    if not any(s.init and any(isinstance(v, ir.AddrOf) for v in s.init) for s in symbols):
        return symbols
    addrs = ir.symbol_addresses(symbols)
    nbytes = {s.name: s.dtype.nbytes for s in symbols}
    return tuple(s if not s.init else dataclasses.replace(s, init=tuple(
        (addrs[v.symbol] + v.offset * nbytes[v.symbol]) & 0xFFFF if isinstance(v, ir.AddrOf)
        else v for v in s.init)) for s in symbols)
