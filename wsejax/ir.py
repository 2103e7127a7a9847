"""The Program IR: what a compiled wsejax program is. Frozen dataclasses, no JAX.

Both front ends (the Python builder API in `wsejax.dsl` and the CSL front end) produce this IR;
the engine lowers it to JAX. Comptime values are already folded in: what remains are the runtime
parts of a PE program (symbols, DSD variables, function bodies) and the layout that places them.

Shape vocabulary: a program rectangle has `H` rows (y) and `W` columns (x); per-PE tables are
indexed `[y, x]`.

Bodies are trees of statements over expressions:

- expressions (`Expr`) produce one scalar per PE: constants, loads of memory elements, locals,
  arithmetic, casts, calls;
- DSD expressions (`DsdExpr`) produce a DSD value: a literal descriptor, a DSD variable, or a
  setter (`increment_dsd_offset`, `set_dsd_base_addr`, ...) applied to another DSD expression;
- statements assign, run DSD operations, branch, loop and call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from wsejax.ir_collectives import (
    COLLECTIVE_FIELDS,
    COLLECTIVE_KINDS,
    Collective,
    collective_record,
)
from wsejax.ir_memory import symbol_addresses
from wsejax.ir_router import (
    POP_MODES,
    Filter,
    FilterEdit,
    QueueStatus,
    RouteEdit,
    RouteEditAt,
    SwitchEdit,
    Switches,
    TeardownExit,
    TeardownPending,
)
from wsejax.types import DType

__all__ = [
    "Assert", "Assign", "Bin", "Bitcast", "Break", "Call", "CallExpr", "Cast", "CircBuf", "Const",
    "Continue",
    "DsdAssign", "DsdExpr", "DsdLit", "DsdLocal", "DsdOp", "DsdOperand", "DsdVar", "Dsr",
    "AddrOf", "ExportData", "ExportFunc", "ExportName", "Expr", "ExprStmt", "FabIn", "FabOut",
    "Fifo",
    "FifoRef", "Filter", "For",
    "Function", "If", "IncrementOffset", "INTRINSICS", "Intrinsic", "Load", "Local",
    "LocalAssign", "Map", "Mem1d", "Mem4d",
    "OpOk",
    "OpConfig", "Operand", "PeProgram", "PeValue", "Print", "Program", "PtrLoad", "PtrOperand",
    "PtrStore",
    "QueueBind", "QueueColor", "QueueCtl", "QueueFlushed", "Return",
    "SetFifoLength",
    "ScalarOperand", "Select", "SetBase", "SetLength", "SetStride", "Stmt", "Symbol", "Task",
    "TaskCtl", "Un", "UnblockCmdStream", "While", "symbol_addresses", "walk_stmts",
    "COLLECTIVE_FIELDS", "COLLECTIVE_KINDS", "Collective", "collective_record",
    "POP_MODES", "Switches", "TeardownExit", "TeardownPending", "RouteEdit", "RouteEditAt",
]


# ------------------------------------------------------------------------------------------------
# Expressions


@dataclass(frozen=True)
class Const:
    """A constant of a runtime type."""

    value: int | float | bool
    dtype: DType


@dataclass(frozen=True)
class Load:
    """Element `indices` of symbol `symbol` (a scalar symbol has `indices == ()`)."""

    symbol: str
    indices: tuple[Expr, ...]
    dtype: DType


@dataclass(frozen=True)
class Local:
    """The current value of a local variable (function parameter, loop variable, `var`)."""

    name: str
    dtype: DType


@dataclass(frozen=True)
class PeValue:
    """A per-PE constant: entry `[y, x]` of table `table` of the Program (coordinates, ids)."""

    table: str
    dtype: DType


@dataclass(frozen=True)
class QueueColor:
    """The color queue `queue` (`kind` "input" or "output") is bound to at run time, on a PE
    program that rebinds it (`QueueBind`). `colors` are the colors it can take, the one
    `@initialize_queue` gives first; the engine keeps each PE's binding in its state and
    picks that color's queues (as for a `PeValue` color)."""

    kind: str
    queue: int
    colors: tuple[int, ...]

    @property
    def key(self) -> str:
        return f"q{self.kind[0]}{self.queue}"


@dataclass(frozen=True)
class QueueFlushed:
    """Whether `@queue_flush` of queue `queue` (`kind` "input" or "output") has found it
    empty and activated the teardown task, and `queue_flush.exit` has not reset it (bool)."""

    kind: str
    queue: int
    dtype: DType = DType.bool_


@dataclass(frozen=True)
class OpOk:
    """The result of the last run of the synchronous DSD operation of site `site` (bool):
    false where a FIFO operand's `test_or_suspend` action ended it early (spec 7.5), else
    true."""

    site: int
    dtype: DType = DType.bool_


@dataclass(frozen=True)
class ConfigRead:
    """`@get_config(addr)`: the 16-bit word at config address `addr` (a u16 expression) of
    the PE: the last value written there, else the reset value 0.

    The config space is sparse: the PE program's symbols `CONFIG_ADDRS` (i32 addresses, -1
    for a free entry) and `CONFIG_WORDS` (u16 words) hold, entry by entry, the addresses
    written and their words."""

    addr: Expr
    dtype: DType = DType.u16


# the symbols of a PE program's config space (see ConfigRead), and how many addresses it holds
CONFIG_ADDRS = "%config.addrs"
CONFIG_WORDS = "%config.words"
CONFIG_ENTRIES = 32

# the symbol of a PE program's task priorities (`<tile_config>.task_priority`): [2] u32, bit
# k % 32 of word k // 32 set where task ID k has HIGH priority (the scheduler starts a runnable
# HIGH task before any LOW one); a program without it has every task LOW
TASK_PRIORITY = "%task.priority"

# the symbol of a PE program's performance counters (`<time>.get_perf_cntr`): [1] u32, the
# cycles the clock counted before its resets (`reset_cycles` adds the clock to it), so that
# it plus the clock counts every cycle since start
PERF_BASE = "%time.perf_base"


BIN_OPS = ("+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^", "and", "or",
           "==", "!=", "<", "<=", ">", ">=", "min", "max")
UN_OPS = ("-", "~", "!", "abs")


@dataclass(frozen=True)
class Bin:
    """Binary operator `op` (one of BIN_OPS) on operands of type `a.dtype`; result `dtype`."""

    op: str
    a: Expr
    b: Expr
    dtype: DType


@dataclass(frozen=True)
class Un:
    """Unary operator `op` (one of UN_OPS)."""

    op: str
    a: Expr
    dtype: DType


@dataclass(frozen=True)
class Cast:
    """Numeric conversion (`@as`): float to int truncates toward zero, x to bool is x != 0."""

    a: Expr
    dtype: DType


@dataclass(frozen=True)
class Bitcast:
    """Same-width reinterpretation of the bits of `a` (`@bitcast`)."""

    a: Expr
    dtype: DType


@dataclass(frozen=True)
class Select:
    """`if (cond) a else b` as an expression (both sides evaluated; no side effects)."""

    cond: Expr
    a: Expr
    b: Expr
    dtype: DType


@dataclass(frozen=True)
class CallExpr:
    """A call of function `fn` whose value is used."""

    fn: str
    args: tuple[Value, ...]
    dtype: DType


@dataclass(frozen=True)
class Intrinsic:
    """A library function computed natively: `<math>` functions (`sqrt`, `exp`, ...), the
    cycle counter (`cycles`), the PRNG (`random16`). See INTRINSICS for names and arities.
    Intrinsics with effects (`random16`, `seed_prng`, `reset_cycles`) are evaluated once, where
    they appear."""

    name: str
    args: tuple[Expr, ...]
    dtype: DType


INTRINSICS = {
    # name: arity
    "sqrt": 1, "exp": 1, "log": 1, "sin": 1, "cos": 1, "tanh": 1, "floor": 1, "ceil": 1,
    "inv": 1, "invsqrt": 1, "pow": 2, "isnan": 1, "isinf": 1, "isfinite": 1, "signbit": 1,
    "fscale": 2, "cycles": 0, "random16": 0, "seed_prng": 1, "reset_cycles": 0,
}


# ------------------------------------------------------------------------------------------------
# Runtime pointers: a pointer known only at run time is a u16 byte address into the PE's memory,
# where each symbol of a PE program has an address of its own (`symbol_addresses`)

POINTER = DType.u16


@dataclass(frozen=True)
class AddrOf:
    """The byte address of element `offset` (a static element count, in `symbol`'s own
    element type) of `symbol`, as a runtime pointer (u16)."""

    symbol: str
    offset: int = 0
    dtype: DType = POINTER


@dataclass(frozen=True)
class PtrLoad:
    """The `dtype` element at byte address `addr` (a u16 expression): read from the symbol
    whose memory holds that address, among those whose elements have `dtype`'s width, its
    bits seen as `dtype`. An address inside no such symbol, or not on an element, faults."""

    addr: Expr
    dtype: DType


Expr = (Const | Load | Local | PeValue | Bin | Un | Cast | Bitcast | Select | CallExpr
        | Intrinsic | QueueFlushed | AddrOf | PtrLoad | ConfigRead | OpOk)


# ------------------------------------------------------------------------------------------------
# DSD expressions


@dataclass(frozen=True)
class Mem1d:
    """A `mem1d_dsd`: element i is element `offset + stride * i` of `base`'s flat storage.

    `base` is a symbol; `base_offset` is the static element offset of the base pointer within
    it. `offset`, `stride` and `length` may be runtime expressions (i16, i8, u16 in CSL).
    `wavelet_index_offset` adds the op's `.index` (in 16-bit words) to the address.
    """

    base: str
    offset: Expr
    stride: Expr
    length: Expr
    base_offset: int = 0
    wavelet_index_offset: bool = False


@dataclass(frozen=True)
class Mem4d:
    """A `mem4d_dsd` as an affine map: the element with counters `(i_0, ..., i_{m-1})` (i_0
    outermost; the last varies fastest) is at `offset + sum(coeffs[d] * i_d)`.

    `coeffs` and `extents` are comptime (outermost first); `offset` may be a runtime expression.
    """

    base: str
    offset: Expr
    coeffs: tuple[int, ...]
    extents: tuple[int, ...]
    base_offset: int = 0
    wavelet_index_offset: bool = False


@dataclass(frozen=True)
class CircBuf:
    """A `circbuf_dsd` (spec 7.3): `length` elements over a ring of `wraparound` elements from
    `base_offset` of `base`; element i is at `base_offset + (offset + i) mod wraparound`, where
    `offset` is the head (0 at the start; a `.save_address` register moves it). It is used as
    an operand from a register only (`@load_to_dsr_xdsr`)."""

    base: str
    length: Expr
    wraparound: int
    base_offset: int = 0
    offset: Expr = Const(0, DType.i16)


# `.simd_mode` of a fabric DSD (spec 7.4): a 16-bit op's elements travel two a wavelet, the
# first of each pair in the low half, the second in the high half. The three modes differ only
# in how many wavelets the hardware waits for before a step (one, two, whatever is there), a
# matter of timing the emulator does not model: all three move the same wavelets.
SIMD_MODES = ("simd_32", "simd_64", "simd_32_or_64")


@dataclass(frozen=True)
class FabIn:
    """A `fabin_dsd`: `length` wavelets received on `color` (spec 7.4). On wse3 the color is
    the one its input queue was initialised with; `queue` is kept for messages."""

    color: int
    length: Expr
    queue: int | None = None
    simd: str | None = None         # `.simd_mode`: two 16-bit elements a wavelet (`SIMD_MODES`)


@dataclass(frozen=True)
class FabOut:
    """A `fabout_dsd`: `length` wavelets sent on `color` from the PE's ramp. A 16-bit op
    sends its value in the low half; the high half is the op's `.index` when
    `wavelet_index_offset` is set, else 0 (spec 7.4, 7.6). With `control` set every wavelet
    it sends is a control wavelet, its value the payload (spec 6.6). The memory sources `zero`
    names (0 the first, 1 the second) are left zero: each element once it is read (spec 7.4
    `.zero`)."""

    color: int
    length: Expr
    queue: int | None = None
    wavelet_index_offset: bool = False
    control: bool = False
    zero: tuple[int, ...] = ()      # `.zero`: the sources (0: first) zeroed as they are read
    simd: str | None = None         # `.simd_mode`: two 16-bit elements a wavelet (`SIMD_MODES`)
    # `.advance_switch`: the sender's router advances the color's switch once the last wavelet
    # of the DSD has left it (`wsejax.switches`)
    advance_switch: bool = False


@dataclass(frozen=True)
class FifoRef:
    """The FIFO `name` (`@allocate_fifo`) as an operand: a destination pushes, a source pops."""

    name: str


@dataclass(frozen=True)
class DsdLit:
    """A literal DSD value."""

    dsd: Mem1d | Mem4d | FabIn | FabOut | CircBuf


@dataclass(frozen=True)
class DsdVar:
    """The current value of a global DSD variable (`var A_dsd = @get_dsd(...)`)."""

    name: str


@dataclass(frozen=True)
class DsdLocal:
    """The current value of a local DSD variable or DSD-typed function parameter."""

    name: str


@dataclass(frozen=True)
class IncrementOffset:
    """`@increment_dsd_offset(dsd, delta, dtype)`: move the base by `delta` elements of dtype."""

    dsd: DsdExpr
    delta: Expr
    dtype: DType


@dataclass(frozen=True)
class SetBase:
    """`@set_dsd_base_addr(dsd, &symbol)`: new base symbol, offset reset to 0."""

    dsd: DsdExpr
    symbol: str
    base_offset: int = 0


@dataclass(frozen=True)
class SetLength:
    """`@set_dsd_length(dsd, n)` (not for mem4d)."""

    dsd: DsdExpr
    length: Expr


@dataclass(frozen=True)
class SetStride:
    """`@set_dsd_stride(dsd, s)` (mem1d only)."""

    dsd: DsdExpr
    stride: Expr


DsdExpr = (DsdLit | DsdVar | DsdLocal | IncrementOffset | SetBase | SetLength | SetStride
           | FifoRef)
Value = (Expr | DsdExpr)


# ------------------------------------------------------------------------------------------------
# Operands of DSD operations


@dataclass(frozen=True)
class DsdOperand:
    dsd: DsdExpr


@dataclass(frozen=True)
class ScalarOperand:
    value: Expr


@dataclass(frozen=True)
class PtrOperand:
    """`&symbol[indices]`: a pointer to one scalar, used as a stride-0 destination."""

    symbol: str
    indices: tuple[Expr, ...] = ()


Operand = (DsdOperand | ScalarOperand | PtrOperand)


# ------------------------------------------------------------------------------------------------
# Statements


@dataclass(frozen=True)
class Assign:
    """`symbol[indices] = value` (a scalar symbol has `indices == ()`)."""

    symbol: str
    indices: tuple[Expr, ...]
    value: Expr


@dataclass(frozen=True)
class LocalAssign:
    """`local = value` (declares the local on first assignment)."""

    name: str
    value: Value


@dataclass(frozen=True)
class DsdAssign:
    """`dsd_var = dsd_expr` for a global DSD variable."""

    name: str
    value: DsdExpr


@dataclass(frozen=True)
class OnControl:
    """`.on_control` of an op's config (spec 5.4): a control wavelet at the front of the op's
    fabin input ends the op early (it takes the wavelet); `action` is "terminate" (nothing
    more), "activate" (local task ID `task`) or "unblock" (task ID `task`)."""

    action: str
    task: Expr | None = None


@dataclass(frozen=True)
class OpConfig:
    """The config struct of a DSD op (spec 5.4): `.async`, `.activate` (a local task ID),
    `.unblock` (a task ID), `.index` (the u16 wavelet index, spec 7.6) and `.ut_id` (wse3: the
    u16 number of the microthread that runs the op; None: one of the op's own) and
    `.on_control` (an `OnControl`)."""

    async_: bool = False
    activate: Expr | None = None
    unblock: Expr | None = None
    index: Expr | None = None
    ut_id: Expr | None = None
    on_control: OnControl | None = None


@dataclass(frozen=True)
class DsdOp:
    """A DSD operation builtin (`@fmacs(dest, a, b, s)`): `op` names an entry of `wsejax.ops`.

    `site` numbers the op within its PE program (unique per textual op); an asynchronous op
    runs on the microthread slot of its site, which stands for the microthread its
    `config.ut_id` names where it names one. `config` is None for a plain synchronous op.
    """

    op: str
    dest: Operand
    srcs: tuple[Operand, ...]
    site: int = 0
    config: OpConfig | None = None


@dataclass(frozen=True)
class Map:
    """`@map(fn, inputs..., output)`: call `fn` once per element of the DSD inputs.

    `output` is None when `fn` returns void.
    """

    fn: str
    inputs: tuple[Operand, ...]
    output: Operand | None
    site: int = 0


@dataclass(frozen=True)
class If:
    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()


@dataclass(frozen=True)
class For:
    """`for (@range(T, start, stop, step)) |var| body` with comptime bounds."""

    var: str
    dtype: DType
    start: int
    stop: int
    step: int
    body: tuple[Stmt, ...]

    @property
    def trip_count(self) -> int:
        return len(range(self.start, self.stop, self.step))


@dataclass(frozen=True)
class While:
    """`while (cond) : (cont) { body }`: `cont` runs after each iteration (also on continue)."""

    cond: Expr
    body: tuple[Stmt, ...]
    cont: tuple[Stmt, ...] = ()


@dataclass(frozen=True)
class Break:
    pass


@dataclass(frozen=True)
class Continue:
    pass


@dataclass(frozen=True)
class Return:
    value: Value | None = None


@dataclass(frozen=True)
class Call:
    """A call of function `fn` as a statement (its value, if any, is dropped)."""

    fn: str
    args: tuple[Value, ...]


@dataclass(frozen=True)
class ExprStmt:
    """An expression evaluated for its side effects (a call)."""

    value: Expr


@dataclass(frozen=True)
class Assert:
    """A runtime `@assert(cond)`: a PE where `cond` (a bool) is false faults
    (`wsejax.diagnostics.assertion_failed(where)`); `where` is the assertion's `file:line:col`."""

    cond: Expr
    where: str


@dataclass(frozen=True)
class TaskCtl:
    """`@activate(id)`, `@block(id)` or `@unblock(id)` at run time (`op` is that word).

    `target` is "task" (`id` is a task ID) or "ut" (`id` is a microthread, wse3: blocking it
    suspends the operations that run on it, spec 5.2)."""

    op: str
    id: Expr
    target: str = "task"


@dataclass(frozen=True)
class Print:
    """`<simprint>` output: `parts` are strings and `(expr, spec)` pairs, where spec is "d"
    (decimal), "X" (upper hex), "b" (binary) or "f" (float). Text is buffered per PE and
    written to the host's stdout a line at a time; `coords` prefixes lines with `PE(x,y): `."""

    parts: tuple
    coords: bool = False


@dataclass(frozen=True)
class QueueBind:
    """`<tile_config>`'s `encode_input_queue` / `encode_output_queue`: bind queue `queue`
    (`kind` "input" or "output") to the color `color` (a u16 expression) from now on."""

    kind: str
    queue: int
    color: Expr


@dataclass(frozen=True)
class QueueCtl:
    """`@queue_flush(q)` (`op` "flush": activate the teardown task once the queue is or
    becomes empty) or `<tile_config>.queue_flush.exit(q)` (`op` "exit": reset that state)."""

    op: str
    kind: str
    queue: int


@dataclass(frozen=True)
class SetFifoLength:
    """`@set_fifo_read_length(f, n)` (`end` "read") / `@set_fifo_write_length(f, n)` (`end`
    "write"): FIFO `fifo`'s read or write length is `length` (a u16 expression) from now on.

    A length never set leaves the FIFO operand's length to the op's other operands (the
    SDK's FIFO programs never set one). A set length bounds the ops that pop (read) or push
    (write) the FIFO: each such op runs at most that many elements, and each element it pops
    or pushes takes one off the length, which so holds what remains (an op that finds it 0
    runs no element) until it is set again."""

    fifo: str
    end: str
    length: Expr


@dataclass(frozen=True)
class ConfigWrite:
    """`@set_config(addr, value)`: config address `addr` of the PE holds the 16-bit `value`
    from now on (both u16 expressions; the config space is described at `ConfigRead`). A PE
    that writes more than CONFIG_ENTRIES distinct addresses faults."""

    addr: Expr
    value: Expr


@dataclass(frozen=True)
class UnblockCmdStream:
    """`sys_mod.unblock_cmd_stream()`: the host may issue its next command to this PE."""


@dataclass(frozen=True)
class PtrStore:
    """`p.* = value` through a runtime pointer: store `value` (of type `dtype`) at byte address
    `addr` (u16), in the symbol `PtrLoad` would read it from; faults where `PtrLoad` does."""

    addr: Expr
    value: Expr
    dtype: DType


Stmt = (Assign | LocalAssign | DsdAssign | DsdOp | Map | If | For | While | Break | Continue
        | Return | Call | ExprStmt | UnblockCmdStream | Print | TaskCtl | QueueBind | QueueCtl
        | Assert | PtrStore | ConfigWrite | SetFifoLength | Collective)


def walk_stmts(body: tuple[Stmt, ...]):
    """Yield every statement of `body`, recursively, in textual order."""
    for s in body:
        yield s
        if isinstance(s, If):
            yield from walk_stmts(s.then)
            yield from walk_stmts(s.orelse)
        elif isinstance(s, For):
            yield from walk_stmts(s.body)
        elif isinstance(s, While):
            yield from walk_stmts(s.body)
            yield from walk_stmts(s.cont)


# ------------------------------------------------------------------------------------------------
# PE programs and the whole program


@dataclass(frozen=True)
class Symbol:
    """A global of a PE program held in its memory.

    `init` is None for zeros, else a tuple of `size` values in row-major order.
    """

    name: str
    dtype: DType
    shape: tuple[int, ...]
    init: tuple | None = None
    align: int = 0          # `align(N)`: its address a multiple of N bytes (0: its own width)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.nbytes


@dataclass(frozen=True)
class Function:
    """A function of a PE program. `params` are `(name, type)`; a type is a DType or "dsd"."""

    name: str
    params: tuple[tuple[str, DType | str], ...]
    ret: DType | None
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class ExportData:
    """`@export_symbol(ptr, name)`: host name `name` addresses `symbol` from element `offset`;
    or, with `via` (a pointer variable's u16 symbol), where `via` points as each copy runs."""

    name: str
    symbol: str
    offset: int = 0
    via: str = ""


@dataclass(frozen=True)
class ExportFunc:
    """`@export_symbol(fn, name)`: the host may launch function `fn` as `name`."""

    name: str
    fn: str


@dataclass(frozen=True)
class Task:
    """A task bound to task ID `id`: `fn` names its body.

    `kind` is "local" (a Function without parameters, run when activated), "data" (run
    once per wavelet arriving on `color`; its parameters split the 32-bit payload per spec
    5.1: one 32-bit value, one 16-bit low half, or 16-bit (low half, high half)) or
    "control" (run once per control wavelet reaching the PE whose payload names `id`, on any
    color; its parameters split that payload as a data task's do, spec 6.6).
    """

    fn: str
    kind: str
    id: int
    color: int = -1


@dataclass(frozen=True)
class Rotation:
    """`@bind_rotating_tasks` (wse3, spec 5.1): data task `data` and control task `alt` take
    turns. Each time the data task would start, its wavelet is taken and u16 symbol
    `counter` (which starts at the pair's `.init`) compared with `limit`: equal, `alt` runs
    on that wavelet instead and the counter becomes 0; else the data task runs and the
    counter goes up by one."""

    data: int
    alt: int
    limit: int
    counter: str


@dataclass(frozen=True)
class Fifo:
    """`@allocate_fifo(buffer, .{...})`: a ring buffer over the whole of symbol `buffer`.

    Pushing into an empty FIFO activates local task `activate_push`; popping from a full one
    activates `activate_pop` (None: no hook)."""

    name: str
    buffer: str
    activate_push: int | None = None
    activate_pop: int | None = None
    # what an operation does that finds the FIFO empty (popping) or full (pushing), spec 7.5:
    # "test_or_suspend" (a synchronous op ends and its builtin gives false, an asynchronous
    # one waits), "suspend" (waits), "terminate" (ends, true) or "fault" (the PE faults)
    empty_action: str = "test_or_suspend"
    full_action: str = "test_or_suspend"


@dataclass(frozen=True)
class Dsr:
    """A data structure register (spec 9) of a PE program: `@get_dsr(dsr_<kind>, id)`.

    Its contents are the DSD variable `name`: an operand reads it as `DsdVar(name)`, a
    `@load_to_dsr` at run time is a `DsdAssign` to it, one at comptime its initial value.
    With `save_address` every DSD operation that uses it as an operand moves its (mem1d)
    offset past the elements the operation accessed: the next one continues from there.
    """

    name: str
    kind: str               # "dest" | "src0" | "src1" (the register file)
    id: int
    save_address: bool = False


@dataclass(frozen=True)
class PeProgram:
    """One tile class: the specialised program shared by a set of PEs.

    `dsd_vars` maps each global DSD variable to its initial (literal) value. `tasks` are the
    bound tasks; `active` and `blocked` the task IDs activated / blocked at start-up, and
    `blocked_uts` the microthreads blocked at start-up (wse3).
    `routes` are `@set_local_color_config`s: `(color, (rx, tx))` for every PE of the class,
    `filters` their filters, `(color, Filter)`. `queues` are the queue bindings of
    `@initialize_queue`, `(kind, queue, color)`, where a queue the program rebinds has a
    `QueueColor`; `flushed` the queues `@queue_flush` watches, `(kind, queue)`. (On wse3 a
    control wavelet arriving on a color is blocked or not as the input queue bound to it is.)
    `dsrs` are the data structure registers the program loads (each also a DSD variable).
    `rotations` are the task pairs of `@bind_rotating_tasks` (wse3).
    """

    name: str
    symbols: tuple[Symbol, ...]
    dsd_vars: tuple[tuple[str, DsdLit], ...]
    functions: tuple[Function, ...]
    exports: tuple[ExportData | ExportFunc, ...]
    tasks: tuple[Task, ...] = ()
    active: tuple[int, ...] = ()
    blocked: tuple[int, ...] = ()
    routes: tuple = ()
    fifos: tuple[Fifo, ...] = ()
    filters: tuple = ()
    queues: tuple = ()
    flushed: tuple = ()
    blocked_uts: tuple[int, ...] = ()
    dsrs: tuple[Dsr, ...] = ()
    rotations: tuple[Rotation, ...] = ()
    switches: tuple = ()            # (color, Switches) of @set_local_color_config
    teardown_colors: tuple = ()     # colors whose teardown the program handles or reads

    def symbol(self, name: str) -> Symbol:
        return self._symbols[name]

    def function(self, name: str) -> Function:
        return self._functions[name]

    def saved_address(self, name: str) -> bool:
        """Is DSD variable `name` a register loaded with `.save_address = true`?"""
        return any(d.name == name and d.save_address for d in self.dsrs)

    @property
    def _symbols(self) -> dict[str, Symbol]:
        return _cached(self, "_sym_map", lambda: {s.name: s for s in self.symbols})

    @property
    def _functions(self) -> dict[str, Function]:
        return _cached(self, "_fn_map", lambda: {f.name: f for f in self.functions})

    @property
    def addresses(self) -> dict[str, int]:
        """The byte address of each symbol (`symbol_addresses`)."""
        return _cached(self, "_addr_map", lambda: symbol_addresses(self.symbols))

    @property
    def memory_bytes(self) -> int:
        """Bytes of PE memory the symbols need (each 32-bit symbol aligned to 4 bytes)."""
        total = 0
        for s in self.symbols:
            if s.dtype.nbytes >= 4:
                total += -total % 4
            total += s.nbytes
        return total


def _cached(obj, key, make):
    cache = obj.__dict__.get(key)
    if cache is None:
        cache = make()
        object.__setattr__(obj, key, cache)
    return cache


@dataclass(frozen=True)
class ExportName:
    """`@export_name(name, type, mutable)` of the layout.

    `kind` is "data" (type `[*]T`: `dtype` is T) or "func" (`params` are the argument types).
    """

    name: str
    kind: str
    dtype: DType | None = None
    mutable: bool = False
    params: tuple[DType, ...] = ()


@dataclass(frozen=True, eq=False)
class Program:
    """A compiled program: the rectangle, where it sits in the fabric, and its tile classes.

    `class_of` is the `[H, W]` table of tile-class indices into `classes`; `tables` holds the
    per-PE constant tables that `PeValue` reads, each `[H, W]`. Hashing is by identity: the
    engine treats a Program as static configuration.
    """

    width: int
    height: int
    arch: str
    fabric_dims: tuple[int, int]
    fabric_offsets: tuple[int, int]
    channels: int
    exports: tuple[ExportName, ...]
    classes: tuple[PeProgram, ...]
    class_of: np.ndarray = field(repr=False)  # [H, W] int32
    tables: tuple[tuple[str, np.ndarray], ...] = field(default=(), repr=False)
    params: tuple[tuple[str, object], ...] = ()
    routes: tuple = ()              # ((x, y, color), (rx, tx)) of @set_color_config
    resolved: dict = field(default_factory=dict, repr=False, compare=False)  # color -> routes
    width_west_buf: int = 0
    width_east_buf: int = 0
    streams: tuple = ()             # ((color, "h2d" | "d2h"), ...) memcpy streaming colors
    filters: tuple = ()             # ((x, y, color), Filter) of @set_color_config
    memcpy: bool = True             # built with the memcpy infrastructure (`cslc --memcpy`)
    fp16: DType = DType.f16         # the 16-bit float format (`cslc --fp16-format`)
    switches: tuple = ()            # ((x, y, color), Switches) of @set_color_config
    # color -> its `wsejax.switches.SwitchTable`: the colors routed hop by hop
    switched: dict = field(default_factory=dict, repr=False, compare=False)

    def export(self, name: str) -> ExportName | None:
        return next((e for e in self.exports if e.name == name), None)

    def table(self, name: str) -> np.ndarray:
        return dict(self.tables)[name]

    def filter_configs(self) -> dict:
        """Every filter: `(x, y, color) -> Filter`, the layout's and the classes' local ones."""
        out = dict(self.filters)
        for c, pe in enumerate(self.classes):
            if pe.filters:
                ys, xs = np.nonzero(self.class_of == c)
                for color, f in pe.filters:
                    for x, y in zip(xs.tolist(), ys.tolist()):
                        out[(x, y, color)] = f
        return out

    def switch_configs(self) -> dict:
        """Every `.switches`: `(x, y, color) -> Switches`, the layout's and the classes' local
        ones."""
        out = dict(self.switches)
        for c, pe in enumerate(self.classes):
            if pe.switches:
                ys, xs = np.nonzero(self.class_of == c)
                for color, sw in pe.switches:
                    for x, y in zip(xs.tolist(), ys.tolist()):
                        out[(x, y, color)] = sw
        return out

    def replace(self, **changes) -> Program:
        return dataclasses.replace(self, **changes)


Expr = Expr | TeardownPending | QueueStatus
Stmt = Stmt | TeardownExit | RouteEdit | RouteEditAt | FilterEdit | SwitchEdit
