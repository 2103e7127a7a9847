"""The Python program API: write PE programs and layouts in Python, traced into the IR.

Names mirror CSL's builtins (without the `@`). A PE program is a Python function that receives
its params as keyword arguments at comptime and declares globals, DSDs, functions and exports;
function bodies are traced once into IR statements. A layout function places PE programs on a
rectangle and exports names; `compile` runs it and returns a `Program`.

    from wsejax import dsl as csl

    def pe_program(M, N):
        A = csl.var("A", csl.f32[M * N])
        x = csl.var("x", csl.f32[N])
        y = csl.var("y", csl.zeros(csl.f32[M]))
        A_dsd = csl.var("A_dsd", csl.get_dsd(csl.mem1d_dsd,
                        tensor_access=csl.tensor_access(lambda i: A[i * N], M)))
        y_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=y, extent=M)

        @csl.fn
        def compute():
            for i in csl.range(csl.i16, N):          # a runtime loop, traced once
                csl.fmacs(y_dsd, y_dsd, A_dsd, x[i])
                A_dsd.set(csl.increment_dsd_offset(A_dsd, 1, csl.f32))
            csl.unblock_cmd_stream()

        csl.export_symbol(A, "A"); csl.export_symbol(x, "x"); csl.export_symbol(y, "y")
        csl.export_symbol(compute)

    def layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, pe_program, dict(M=4, N=6))
        csl.export_name("A", csl.pointer(csl.f32), True)
        ...

    program = csl.compile(layout, fabric_dims=(8, 3), fabric_offsets=(4, 1))

Dataflow programs span several PEs. Colors are routed in the layout (`set_color_config`) or
by a PE program (`set_local_color_config`); fabric DSDs read and write them; data tasks run
once per arriving wavelet; DSD operations take their config struct as keyword arguments:

    def sender(n, c):
        x = csl.var("x", csl.f32[n])
        out = csl.get_dsd(csl.fabout_dsd, extent=n, fabric_color=c,
                          output_queue=csl.get_output_queue(1))
        done = csl.get_local_task_id(10)

        @csl.task
        def finish():
            csl.unblock_cmd_stream()

        @csl.fn
        def send():
            csl.fmovs(out, csl.get_dsd(csl.mem1d_dsd, base_address=x, extent=n),
                      async_=True, activate=finish)

        csl.bind_local_task(finish, done)
        csl.set_local_color_config(c, rx=csl.RAMP, tx=csl.EAST)

    def receiver(c):
        total = csl.var("total", csl.f32)

        @csl.task
        def recv(v: csl.f32):
            total.set(total + v)

        csl.bind_data_task(recv, csl.get_data_task_id(c))
        csl.set_local_color_config(c, rx=csl.WEST, tx=csl.RAMP)

On wse3 a data task ID is an input queue's (`get_data_task_id(q)`), and every queue a program
uses is bound to its color first with `initialize_queue(q, color=c)`. memcpy's streaming
colors are declared to `compile` (`h2d_colors=`, `d2h_colors=`).

Runtime control flow uses explicit helpers: `csl.range` (loops), `with csl.if_(c):` /
`with csl.else_():`, `with csl.while_(c):`, `csl.break_()`, `csl.continue_()`, `csl.return_(v)`.
A plain Python `for` over `range` unrolls at trace time (comptime).

Raises `ProgramError` for malformed programs and `LayoutError` for invalid layouts.
"""

from __future__ import annotations

from wsejax.dsl._builders import (
    build_pe_program as build_pe_program,
)
from wsejax.dsl._builders import (
    export_symbol,
)
from wsejax.dsl._context import (
    EAST,
    NORTH,
    RAMP,
    SOUTH,
    WEST,
    fabin_dsd,
    fabout_dsd,
    mem1d_dsd,
    mem4d_dsd,
)
from wsejax.dsl._dsds import (
    TensorAccess as TensorAccess,
)
from wsejax.dsl._dsds import (
    allocate_fifo,
    get_dsd,
    increment_dsd_offset,
    set_dsd_base_addr,
    set_dsd_length,
    set_dsd_stride,
    tensor_access,
)
from wsejax.dsl._fabric import (
    Color,
    InputQueue,
    OutputQueue,
    UtId,
    get_color,
    get_control_task_id,
    get_data_task_id,
    get_input_queue,
    get_local_task_id,
    get_output_queue,
    get_ut_id,
    initialize_queue,
)
from wsejax.dsl._fabric import (
    TaskId as TaskId,
)
from wsejax.dsl._functions import (
    FnRef as FnRef,
)
from wsejax.dsl._functions import (
    break_,
    continue_,
    else_,
    fn,
    if_,
    return_,
    while_,
)
from wsejax.dsl._functions import (
    loop_range as range,
)
from wsejax.dsl._globals import (
    LocalRef as LocalRef,
)
from wsejax.dsl._globals import (
    Pointer as Pointer,
)
from wsejax.dsl._globals import (
    SymbolRef as SymbolRef,
)
from wsejax.dsl._globals import (
    addr,
    constants,
    local,
    var,
    zeros,
)
from wsejax.dsl._layout import (
    FnType as FnType,
)
from wsejax.dsl._layout import (
    PointerType as PointerType,
)
from wsejax.dsl._layout import (
    compile_layout as compile,
)
from wsejax.dsl._layout import (
    export_name,
    fn_type,
    pointer,
    set_color_config,
    set_local_color_config,
    set_rectangle,
    set_tile_code,
)
from wsejax.dsl._ops import (
    add16,
    addc16,
    and16,
    clz,
    ctz,
    dfilt,
    fabsh,
    fabss,
    faddh,
    faddhs,
    fadds,
    fh2s,
    fh2xp16,
    fmach,
    fmachs,
    fmacs,
    fmaxh,
    fmaxs,
    fmovh,
    fmovs,
    fmulh,
    fmuls,
    fnegh,
    fnegs,
    fnormh,
    fnorms,
    fs2h,
    fs2xp16,
    fscaleh,
    fscales,
    fsubh,
    fsubs,
    mov16,
    mov32,
    or16,
    popcnt,
    sar16,
    set_fifo_read_length,
    set_fifo_write_length,
    sll16,
    slr16,
    sub16,
    xor16,
    xp162fh,
    xp162fs,
)
from wsejax.dsl._ops import (
    map_elements as map,
)
from wsejax.dsl._tasks import (
    activate,
    bind_control_task,
    bind_data_task,
    bind_local_task,
    block,
    control,
    task,
    unblock,
    unblock_cmd_stream,
)
from wsejax.dsl._tile_config import (
    tile_config,
)
from wsejax.dsl._values import (
    DsdValue as DsdValue,
)
from wsejax.dsl._values import (
    DsdVarRef as DsdVarRef,
)
from wsejax.dsl._values import (
    FifoHandle as FifoHandle,
)
from wsejax.dsl._values import (
    Val as Val,
)
from wsejax.dsl._values import (
    as_,
    bitcast,
    pe_x,
    pe_y,
    select,
)
from wsejax.types import (
    ArrayType,
    DType,
    bf16,
    bool_,
    f16,
    f32,
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
)

__all__ = [
    "EAST", "NORTH", "RAMP", "SOUTH", "WEST", "ArrayType", "Color", "DType", "InputQueue",
    "OutputQueue", "UtId", "activate", "addr", "allocate_fifo", "as_", "bf16", "bind_control_task",
    "bind_data_task", "bind_local_task", "bitcast", "block", "bool_", "break_", "compile",
    "constants", "continue_", "control", "else_", "export_name", "export_symbol", "f16", "f32",
    "fabin_dsd", "fabout_dsd", "fn", "fn_type", "get_color", "get_control_task_id",
    "get_data_task_id", "get_dsd", "get_input_queue", "get_local_task_id", "get_output_queue",
    "get_ut_id", "i16", "i32", "i8", "if_", "increment_dsd_offset", "initialize_queue", "local",
    "map", "mem1d_dsd", "mem4d_dsd", "pe_x", "pe_y", "pointer", "range", "return_", "select",
    "set_color_config", "set_dsd_base_addr", "set_dsd_length", "set_dsd_stride",
    "set_local_color_config", "set_rectangle", "set_tile_code", "task", "tensor_access", "u16",
    "u32", "u8", "unblock", "unblock_cmd_stream", "var", "while_", "zeros",
]
# the DSD operations of the op table
__all__ += [
    "add16", "addc16", "and16", "clz", "ctz", "fabsh", "fabss", "faddh", "faddhs", "fadds", "fh2s",
    "fh2xp16", "fmach", "fmachs", "fmacs", "fmaxh", "fmaxs", "fmovh", "fmovs", "fmulh", "fmuls",
    "fnegh", "fnegs", "fnormh", "fnorms", "fs2h", "fs2xp16", "fscaleh", "fscales", "fsubh",
    "fsubs", "mov16", "mov32", "or16", "popcnt",
    "sar16", "sll16", "slr16", "sub16", "xor16", "xp162fh", "xp162fs",
]
# 64-bit integers, and the lengths of FIFOs set at run time
__all__ += ["i64", "set_fifo_read_length", "set_fifo_write_length", "u64"]
# data filters, and the <tile_config> library (its color_config)
__all__ += ["dfilt", "tile_config"]
