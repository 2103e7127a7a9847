"""The reference interpreter on the fabric: multi-PE dataflow programs built as raw IR.

Each test places small PE programs on a row of PEs, routes colors between them, and checks what
arrives, in what order, at what cost, and how deadlocks and faults are reported
(`wsejax.fabric` states the model).
"""

from __future__ import annotations

import numpy as np
import pytest

from wsejax import ir
from wsejax.errors import DeadlockError, FabricFault, MemcpyError, ProgramError
from wsejax.layout import build_program, default_fabric_dims
from wsejax.memcpy import MemcpyOrder
from wsejax.reference import Reference
from wsejax.types import DType

F32, I16, U16, U32, I32 = DType.f32, DType.i16, DType.u16, DType.u32, DType.i32


# ------------------------------------------------------------------------------------------------
# IR builders


def c(v, t=I16):
    return ir.Const(v, t)


def mem(base, n, offset=0, stride=1, wio=False):
    return ir.DsdOperand(ir.DsdLit(ir.Mem1d(base, c(offset), c(stride), c(n, U16),
                                            wavelet_index_offset=wio)))


def fin(color, n):
    return ir.DsdOperand(ir.DsdLit(ir.FabIn(color, c(n, U16))))


def fout(color, n, wio=False):
    return ir.DsdOperand(ir.DsdLit(ir.FabOut(color, c(n, U16), wavelet_index_offset=wio)))


def fifo(name):
    return ir.DsdOperand(ir.FifoRef(name))


def scalar(e):
    return ir.ScalarOperand(e)


def op(name, dest, *srcs, site, async_=False, activate=None, unblock=None, index=None):
    cfg = None
    if async_ or activate is not None or unblock is not None or index is not None:
        cfg = ir.OpConfig(async_=async_,
                          activate=None if activate is None else c(activate),
                          unblock=None if unblock is None else c(unblock),
                          index=index)
    return ir.DsdOp(name, dest, tuple(srcs), site=site, config=cfg)


def load(name, t, *idx):
    return ir.Load(name, tuple(idx), t)


def add(a, b, t):
    return ir.Bin("+", a, b, t)


UNBLOCK = ir.UnblockCmdStream()
EAST, WEST, RAMP = "EAST", "WEST", "RAMP"


def fn(name, *body, params=()):
    return ir.Function(name, tuple(params), None, tuple(body))


def pe(name, symbols=(), functions=(), tasks=(), fifos=(), blocked=(), routes=(), run=None):
    """A tile class exporting `run` (a function named "run" among `functions`)."""
    functions = tuple(functions)
    if run is not None:
        functions += (fn("run", *run),)
    return ir.PeProgram(name=name, symbols=tuple(symbols), dsd_vars=(), functions=functions,
                        exports=(ir.ExportFunc("run", "run"),), tasks=tuple(tasks),
                        blocked=tuple(blocked), routes=tuple(routes), fifos=tuple(fifos))


def row(*classes, routes=(), streams=()) -> ir.Program:
    """One PE per class, west to east. `routes`: {(x, color): (rx, tx)}."""
    w = len(classes)
    return build_program(
        width=w, height=1, arch="wse2", fabric_dims=default_fabric_dims(w, 1),
        fabric_offsets=(4, 1), channels=1, exports=(ir.ExportName("run", "func"),),
        classes=tuple(classes), class_of=np.arange(w, dtype=np.int32).reshape(1, w),
        routes=tuple(((x, 0, col), (frozenset(rx), frozenset(tx)))
                     for (x, col), (rx, tx) in dict(routes).items()),
        streams=streams)


def east(color, w, first=0, last=None):
    """Color `color` from PE `first`'s ramp east to every PE up to `last` (default the
    last), each delivering to its ramp."""
    last = w - 1 if last is None else last
    out = {(first, color): ({RAMP}, {EAST})}
    for x in range(first + 1, last + 1):
        out[(x, color)] = ({WEST}, {RAMP} | ({EAST} if x < last else set()))
    return out


def f32s(*values):
    return tuple(float(v) for v in values)


# ------------------------------------------------------------------------------------------------
# Point to point, multicast, back-pressure


def _send_program(n, receiver_first):
    xs = f32s(*range(1, n + 1))
    ys = f32s(*(10 * k for k in range(1, n + 1)))
    sender = pe("send", [ir.Symbol("x", F32, (n,), xs)],
                run=[op("fmovs", fout(0, n), mem("x", n), site=1), UNBLOCK])
    receiver = pe("recv", [ir.Symbol("y", F32, (n,), ys)],
                  run=[op("fadds", mem("y", n), mem("y", n), fin(0, n), site=1), UNBLOCK])
    if receiver_first:
        routes = {(1, 0): ({RAMP}, {WEST}), (0, 0): ({EAST}, {RAMP})}
        return row(receiver, sender, routes=routes), 0, xs, ys
    return row(sender, receiver, routes=east(0, 2)), 1, xs, ys


@pytest.mark.parametrize("receiver_first", [False, True])
def test_send_to_a_neighbour_with_synchronous_fabout_and_fabin(receiver_first):
    program, rx, xs, ys = _send_program(4, receiver_first)
    ref = Reference(program)
    ref.launch("run")
    assert ref.memory(rx, 0)["y"].tolist() == [x + y for x, y in zip(xs, ys)]
    # each side: the op (1 + 4 elements) and the unblock; waiting costs nothing
    assert ref.cycles.tolist() == [[6, 6]]
    assert ref.queues(0, 0) == ref.queues(1, 0) == {"inbox": {}, "outbox": {}}


@pytest.mark.parametrize("capacity", [1, 3, 32])
def test_a_message_longer_than_the_queues_is_not_dropped(capacity):
    n = 40
    program, rx, xs, ys = _send_program(n, False)
    ref = Reference(program, queue_capacity=capacity)
    ref.launch("run")
    assert ref.memory(rx, 0)["y"].tolist() == [x + y for x, y in zip(xs, ys)]
    assert ref.cycles.tolist() == [[n + 2, n + 2]]


def test_multicast_delivers_every_wavelet_to_every_destination_in_order():
    n = 9
    xs = f32s(*(k * 1.5 for k in range(n)))
    sender = pe("send", [ir.Symbol("x", F32, (n,), xs)],
                run=[op("fmovs", fout(2, n), mem("x", n), site=1), UNBLOCK])

    def receiver(name):
        return pe(name, [ir.Symbol("y", F32, (n,))],
                  run=[op("fmovs", mem("y", n), fin(2, n), site=1), UNBLOCK])

    program = row(sender, receiver("r1"), receiver("r2"), receiver("r3"),
                  routes=east(2, 4))
    for capacity in (2, 32):
        ref = Reference(program, queue_capacity=capacity)
        ref.launch("run")
        for x in (1, 2, 3):
            assert ref.memory(x, 0)["y"].tolist() == list(xs)


def test_a_route_that_skips_a_pe_does_not_feed_its_ramp():
    # PE 1 passes color 3 through without a ramp; its own receive waits forever
    n = 2
    sender = pe("send", [ir.Symbol("x", F32, (n,), f32s(5, 6))],
                run=[op("fmovs", fout(3, n), mem("x", n), site=1), UNBLOCK])
    middle = pe("mid", [ir.Symbol("y", F32, (n,))],
                run=[op("fmovs", mem("y", n), fin(3, n), site=1), UNBLOCK])
    last = pe("last", [ir.Symbol("y", F32, (n,))],
              run=[op("fmovs", mem("y", n), fin(3, n), site=1), UNBLOCK])
    routes = {(0, 3): ({RAMP}, {EAST}), (1, 3): ({WEST}, {EAST}), (2, 3): ({WEST}, {RAMP})}
    ref = Reference(row(sender, middle, last, routes=routes))
    with pytest.raises(DeadlockError) as err:
        ref.launch("run")
    assert err.value.pes == [(1, 0)]
    assert ref.memory(2, 0)["y"].tolist() == [5.0, 6.0]


# ------------------------------------------------------------------------------------------------
# Data tasks


def test_data_task_receives_16_bit_data_and_index_halves():
    """The sender's 16-bit op puts `.index` in each wavelet's high half (fabout
    wavelet_index_offset); the receiver's data task gets (data, index) and stores data at
    `index` through a memory DSD with wavelet_index_offset."""
    values = (7, -3, 1000, -32768)
    slots = (5, 0, 2, 7)
    body = []
    for k, slot in enumerate(slots):
        body.append(op("mov16", fout(1, 1, wio=True), mem("a", 1, offset=k), site=10 + k,
                       index=c(slot, U16)))
    sender = pe("send", [ir.Symbol("a", I16, (4,), values)], run=body + [UNBLOCK])
    data, index = ir.Local("data", I16), ir.Local("index", I16)
    count = load("count", I32)
    recv = fn("recv",
              op("mov16", mem("out", 1, wio=True), scalar(data), site=1,
                 index=ir.Cast(index, U16)),
              ir.Assign("count", (), add(count, c(1, I32), I32)),
              ir.If(ir.Bin("==", count, c(len(values), I32), DType.bool_), (UNBLOCK,)),
              params=(("data", I16), ("index", I16)))
    receiver = pe("recv", [ir.Symbol("out", I16, (8,)), ir.Symbol("count", I32, ())],
                  functions=[recv], tasks=[ir.Task("recv", "data", 1, color=1)], run=[])
    ref = Reference(row(sender, receiver, routes=east(1, 2)))
    ref.launch("run")
    out = ref.memory(1, 0)["out"].tolist()
    assert [out[s] for s in slots] == list(values)
    assert sum(out) == sum(values)
    assert ref.memory(1, 0)["count"].item() == 4
    # per wavelet: the op (1 + 1), the assignment, the if (1) and, for the last, the unblock
    assert ref.cycles[0, 1] == 4 * 4 + 1


def test_data_task_args_split_32_and_16_bit_payloads():
    words = (0x00010002, 0xFFFF8000, 0x12345678)
    sender = pe("send", [ir.Symbol("w", U32, (3,), words)],
                run=[op("mov32", fout(4, 3), mem("w", 3), site=1), UNBLOCK])
    k = load("k", I32)

    def keep(sym, t):
        """A data task storing its one `t` argument at `sym[k++]`."""
        return fn(f"keep_{sym}", ir.Assign(sym, (k,), ir.Local("v", t)),
                  ir.Assign("k", (), add(k, c(1, I32), I32)), params=(("v", t),))

    def receiver(sym, t, ident):
        return pe(f"r_{sym}", [ir.Symbol(sym, t, (3,)), ir.Symbol("k", I32, ())],
                  functions=[keep(sym, t)], tasks=[ir.Task(f"keep_{sym}", "data", ident,
                                                           color=4)], run=[UNBLOCK])

    mid, last = receiver("whole", U32, 4), receiver("low", U16, 9)
    ref = Reference(row(sender, mid, last, routes=east(4, 3)))
    ref.launch("run")
    assert ref.memory(1, 0)["whole"].tolist() == list(words)
    assert ref.memory(2, 0)["low"].tolist() == [w & 0xFFFF for w in words]


def test_a_blocked_data_task_leaves_wavelets_queued():
    sender = pe("send", [ir.Symbol("x", F32, (3,), f32s(1, 2, 3))],
                run=[op("fmovs", fout(0, 3), mem("x", 3), site=1), UNBLOCK])
    receiver = pe("recv", functions=[fn("t", UNBLOCK, params=(("v", F32),))],
                  tasks=[ir.Task("t", "data", 0, color=0)], blocked=(0,), run=[])
    ref = Reference(row(sender, receiver, routes=east(0, 2)))
    with pytest.raises(DeadlockError) as err:
        ref.launch("run")
    assert err.value.pes == [(1, 0)]
    assert "PE (1, 0): active task IDs none, blocked task IDs [0]; queues: color 0 in: 3" \
        in str(err.value)
    assert ref.queues(1, 0)["inbox"] == {0: [0x3F800000, 0x40000000, 0x40400000]}


def test_data_task_with_three_parameters_is_rejected():
    sender = pe("send", [ir.Symbol("x", U32, (1,))],
                run=[op("mov32", fout(0, 1), mem("x", 1), site=1), UNBLOCK])
    params = (("a", I16), ("b", I16), ("c", I16))
    receiver = pe("recv", functions=[fn("t", UNBLOCK, params=params)],
                  tasks=[ir.Task("t", "data", 0, color=0)], run=[])
    with pytest.raises(ProgramError, match="data task t"):
        Reference(row(sender, receiver, routes=east(0, 2))).launch("run")


# ------------------------------------------------------------------------------------------------
# Asynchronous operations


EXIT = 10


def test_async_send_activates_an_exit_task_that_unblocks_the_command_stream():
    n = 8
    xs = f32s(*range(n))
    exit_task = fn("done", ir.Assign("flag", (), c(1, I32)), UNBLOCK)
    sender = pe("send", [ir.Symbol("x", F32, (n,), xs), ir.Symbol("flag", I32, ())],
                functions=[exit_task], tasks=[ir.Task("done", "local", EXIT)],
                run=[op("fmovs", fout(0, n), mem("x", n), site=1, async_=True,
                        activate=EXIT)])
    receiver = pe("recv", [ir.Symbol("y", F32, (n,))],
                  run=[op("fmovs", mem("y", n), fin(0, n), site=1), UNBLOCK])
    ref = Reference(row(sender, receiver, routes=east(0, 2)), queue_capacity=2)
    ref.launch("run")
    assert ref.memory(0, 0)["flag"].item() == 1
    assert ref.memory(1, 0)["y"].tolist() == list(xs)
    # the async op costs its issuing statement only; the exit task two statements
    assert ref.cycles.tolist() == [[3, n + 2]]


def test_restarting_an_async_op_whose_site_still_runs_faults():
    n = 8
    loop = ir.For("k", I16, 0, 2, 1, (
        op("fmovs", fout(0, n), mem("x", n), site=1, async_=True),))
    sender = pe("send", [ir.Symbol("x", F32, (n,))], run=[loop, UNBLOCK])
    receiver = pe("recv", run=[UNBLOCK])
    ref = Reference(row(sender, receiver, routes=east(0, 2)), queue_capacity=2)
    with pytest.raises(FabricFault, match="still runs on its microthread") as err:
        ref.launch("run")
    assert err.value.pes == [(0, 0)]


def test_two_running_ops_on_one_input_queue_fault():
    receiver = pe("recv", [ir.Symbol("y", F32, (4,))],
                  run=[op("fmovs", mem("y", 2), fin(0, 2), site=1, async_=True),
                       op("fmovs", mem("y", 2, offset=2), fin(0, 2), site=2), UNBLOCK])
    sender = pe("send", run=[UNBLOCK])
    ref = Reference(row(sender, receiver, routes=east(0, 2)))
    with pytest.raises(FabricFault, match="input queue of color 0") as err:
        ref.launch("run")
    assert err.value.pes == [(1, 0)]


def test_self_throttling_data_task_forwards_one_wavelet_at_a_time():
    """gemv-09's pattern: the data task blocks its own ID and starts an async send with
    `.unblock` of that ID; later wavelets wait in the inbox until the send completes."""
    n = 6
    xs = f32s(*(k + 0.25 for k in range(n)))
    sender = pe("send", [ir.Symbol("x", F32, (n,), xs)],
                run=[op("fmovs", fout(0, n), mem("x", n), site=1), UNBLOCK])
    count = load("count", I32)
    fwd = fn("fwd",
             ir.TaskCtl("block", c(0)),
             ir.Assign("buf", (), ir.Local("v", F32)),
             op("fmovs", fout(1, 1), mem("buf", 1), site=1, async_=True, unblock=0),
             ir.Assign("count", (), add(count, c(1, I32), I32)),
             ir.If(ir.Bin("==", count, c(n, I32), DType.bool_), (UNBLOCK,)),
             params=(("v", F32),))
    middle = pe("mid", [ir.Symbol("buf", F32, ()), ir.Symbol("count", I32, ())],
                functions=[fwd], tasks=[ir.Task("fwd", "data", 0, color=0)], run=[])
    receiver = pe("recv", [ir.Symbol("y", F32, (n,))],
                  run=[op("fmovs", mem("y", n), fin(1, n), site=1), UNBLOCK])
    routes = {**east(0, 2, 0, 1), **east(1, 3, 1, 2)}
    for capacity in (1, 32):
        ref = Reference(row(sender, middle, receiver, routes=routes), queue_capacity=capacity)
        ref.launch("run")
        assert ref.memory(2, 0)["y"].tolist() == list(xs)
        assert ref.memory(1, 0)["count"].item() == n


def test_fifo_pipeline_between_two_microthreads():
    """Fabric -> FIFO (4 slots) -> fabric on the middle PE, negating on the way out; the
    message is longer than the FIFO, so both ops wait on it in turn."""
    n = 10
    xs = f32s(*(k - 4.5 for k in range(n)))
    sender = pe("send", [ir.Symbol("x", F32, (n,), xs)],
                run=[op("fmovs", fout(0, n), mem("x", n), site=1), UNBLOCK])
    pushed = fn("pushed", ir.Assign("hooks", (), c(1, I32)))
    middle = pe("mid", [ir.Symbol("buf", F32, (4,)), ir.Symbol("hooks", I32, ())],
                functions=[pushed, fn("done", UNBLOCK)],
                tasks=[ir.Task("pushed", "local", 12), ir.Task("done", "local", EXIT)],
                fifos=[ir.Fifo("f", "buf", activate_push=12)],
                run=[op("fmovs", fifo("f"), fin(0, n), site=1, async_=True),
                     op("fnegs", fout(1, n), fifo("f"), site=2, async_=True,
                        activate=EXIT)])
    receiver = pe("recv", [ir.Symbol("y", F32, (n,))],
                  run=[op("fmovs", mem("y", n), fin(1, n), site=1), UNBLOCK])
    routes = {**east(0, 2, 0, 1), **east(1, 3, 1, 2)}
    for capacity in (1, 32):
        ref = Reference(row(sender, middle, receiver, routes=routes), queue_capacity=capacity)
        ref.launch("run")
        assert ref.memory(2, 0)["y"].tolist() == [-x for x in xs]
        assert ref.memory(1, 0)["hooks"].item() == 1


# ------------------------------------------------------------------------------------------------
# Streaming memcpy


H2D, D2H = 4, 5


def _stream_program():
    """Each PE's data task on the H2D color sends v + 1000 to the host on the D2H color."""
    v = ir.Local("v", U32)
    echo = fn("echo", op("mov32", fout(D2H, 1), scalar(add(v, c(1000, U32), U32)), site=1),
              params=(("v", U32),))
    cls = pe("echo", functions=[echo], tasks=[ir.Task("echo", "data", H2D, color=H2D)],
             run=[UNBLOCK])
    w = 3
    return build_program(
        width=w, height=2, arch="wse2", fabric_dims=default_fabric_dims(w, 2),
        fabric_offsets=(4, 1), channels=1, exports=(ir.ExportName("run", "func"),),
        classes=(cls,), class_of=np.zeros((2, w), np.int32),
        streams=((H2D, "h2d"), (D2H, "d2h")))


@pytest.mark.parametrize("order", [MemcpyOrder.ROW_MAJOR, MemcpyOrder.COL_MAJOR])
def test_streaming_h2d_into_a_data_task_and_d2h_back(order):
    program = _stream_program()
    ref = Reference(program)
    l = 5
    src = np.arange(3 * 2 * l, dtype=np.uint32) * 7
    ref.memcpy_h2d(H2D, src, 0, 0, 3, 2, l, streaming=True, order=order)
    out = np.zeros_like(src)
    ref.memcpy_d2h(out, D2H, 0, 0, 3, 2, l, streaming=True, order=order)
    assert out.tolist() == (src + 1000).tolist()
    # each wavelet: the data task's one op of one element
    assert ref.cycles.tolist() == [[2 * l] * 3] * 2


def test_streaming_to_a_region_and_stalling_on_back_pressure():
    program = _stream_program()
    ref = Reference(program, queue_capacity=4)
    # ROI of the right 2x1 PEs of row 1; 3 wavelets each fit the outboxes (4) with room
    src = np.array([1, 2, 3, 4, 5, 6], np.uint32)
    ref.memcpy_h2d(H2D, src, 1, 1, 2, 1, 3, streaming=True)
    out = np.zeros(6, np.uint32)
    ref.memcpy_d2h(out, D2H, 1, 1, 2, 1, 3, streaming=True)
    assert out.tolist() == [1001, 1002, 1003, 1004, 1005, 1006]
    # 10 wavelets: 4 wait in the outbox, 1 in the stalled task, 4 in the inbox, 1 on the host
    with pytest.raises(DeadlockError) as err:
        ref.memcpy_h2d(H2D, np.arange(10, dtype=np.uint32), 0, 0, 1, 1, 10, streaming=True)
    assert err.value.pes == [(0, 0)]
    text = str(err.value)
    assert "memcpy_h2d cannot finish: 1 PE(s) stopped short" in text
    assert "PE (0, 0): took 9 of 10 wavelets" in text
    assert "its main thread waits in echo; queues: color 4 in: 4, color 5 out: 4" in text
    # the failed command leaves its last wavelet on the host; D2H drains the 9 replies in
    # order, unblocking the stalled task on the way
    out = np.zeros(9, np.uint32)
    ref.memcpy_d2h(out, D2H, 0, 0, 1, 1, 9, streaming=True)
    assert out.tolist() == list(range(1000, 1009))
    assert ref.queues(0, 0) == {"inbox": {}, "outbox": {}}


def test_streaming_d2h_that_gets_too_few_wavelets_is_a_deadlock():
    ref = Reference(_stream_program())
    ref.memcpy_h2d(H2D, np.array([1, 2], np.uint32), 0, 0, 2, 1, 1, streaming=True)
    out = np.zeros(4, np.uint32)
    with pytest.raises(DeadlockError) as err:
        ref.memcpy_d2h(out, D2H, 0, 0, 2, 1, 2, streaming=True)
    assert err.value.pes == [(0, 0), (1, 0)]
    assert "PE (1, 0): sent 1 of 2 wavelets" in str(err.value)
    assert out.tolist() == [1001, 0, 1002, 0]


def test_streaming_needs_a_streaming_color():
    ref = Reference(_stream_program())
    with pytest.raises(MemcpyError, match="color 5 is not a memcpy H2D"):
        ref.memcpy_h2d(D2H, np.zeros(1, np.uint32), 0, 0, 1, 1, 1, streaming=True)


# ------------------------------------------------------------------------------------------------
# Deadlocks and faults


def test_receive_that_never_gets_data_is_a_deadlock_naming_the_pe():
    sender = pe("send", run=[UNBLOCK])
    receiver = pe("recv", [ir.Symbol("y", F32, (3,))],
                  run=[op("fmovs", mem("y", 3), fin(0, 3), site=1), UNBLOCK])
    ref = Reference(row(sender, receiver, routes=east(0, 2)))
    with pytest.raises(DeadlockError) as err:
        ref.launch("run")
    assert err.value.pes == [(1, 0)]
    assert ("launch('run') cannot finish: 1 PE(s) never called unblock_cmd_stream(), and "
            "nothing on the fabric can make progress") in str(err.value)
    assert ("PE (1, 0): active task IDs none, blocked task IDs none; its main thread waits in "
            "run; queues: all empty") in str(err.value)
    # the stuck PE stays stuck: a later launch cannot start on it either
    with pytest.raises(DeadlockError):
        ref.launch("run")


def test_send_with_nowhere_to_go_faults():
    sender = pe("send", [ir.Symbol("x", F32, (2,))],
                run=[op("fmovs", fout(7, 2), mem("x", 2), site=1), UNBLOCK])
    receiver = pe("recv", run=[UNBLOCK])
    ref = Reference(row(sender, receiver, routes=east(0, 2)))
    with pytest.raises(FabricFault, match="color 7 has nowhere to go") as err:
        ref.launch("run")
    assert err.value.pes == [(0, 0)]
    assert ref.faults == {(0, 0): "a wavelet on color 7 has nowhere to go (no route from "
                                  "this PE's ramp reaches a ramp)"}


def test_fabric_receive_into_too_small_an_array_faults_before_receiving():
    sender = pe("send", [ir.Symbol("x", F32, (5,))],
                run=[op("fmovs", fout(0, 5), mem("x", 5), site=1), UNBLOCK])
    receiver = pe("recv", [ir.Symbol("y", F32, (4,))],
                  run=[op("fmovs", mem("y", 5), fin(0, 5), site=1), UNBLOCK])
    ref = Reference(row(sender, receiver, routes=east(0, 2)))
    with pytest.raises(FabricFault, match="DSD address out of range of 'y'") as err:
        ref.launch("run")
    assert err.value.pes == [(1, 0)]
    assert ref.queues(1, 0)["inbox"] == {0: [0] * 5}


def test_a_task_that_keeps_reactivating_itself_faults_after_the_round_limit():
    spin = fn("spin", ir.TaskCtl("activate", c(3)))
    cls = pe("spin", functions=[spin], tasks=[ir.Task("spin", "local", 3)],
             run=[ir.TaskCtl("activate", c(3)), UNBLOCK])
    ref = Reference(row(cls), loop_limit=50)
    with pytest.raises(FabricFault, match="still busy after 50 ticks"):
        ref.launch("run")


def test_launch_runs_tasks_activated_after_the_command_stream_is_unblocked():
    bump = fn("bump", ir.Assign("n", (), add(load("n", I32), c(1, I32), I32)))
    cls = pe("p", [ir.Symbol("n", I32, ())], functions=[bump],
             tasks=[ir.Task("bump", "local", 2)],
             run=[UNBLOCK, ir.TaskCtl("activate", c(2))])
    ref = Reference(row(cls))
    ref.launch("run")
    assert ref.memory(0, 0)["n"].item() == 1
    ref.stop()


def test_streaming_d2h_takes_only_its_wavelets_and_leaves_the_rest_queued():
    ref = Reference(_stream_program())
    ref.memcpy_h2d(H2D, np.array([1, 2, 3], np.uint32), 2, 1, 1, 1, 3, streaming=True)
    first, second = np.zeros(2, np.uint32), np.zeros(1, np.uint32)
    ref.memcpy_d2h(first, D2H, 2, 1, 1, 1, 2, streaming=True)
    assert ref.queues(2, 1)["outbox"] == {D2H: [1003]}
    ref.memcpy_d2h(second, D2H, 2, 1, 1, 1, 1, streaming=True)
    assert first.tolist() == [1001, 1002] and second.tolist() == [1003]


def _waiting_task_program():
    """The data task takes its first wavelet as argument and two more through a synchronous
    fabin on the same color, so after one wavelet its PE's main thread waits."""
    v = ir.Local("v", U32)
    t = fn("t", ir.Assign("got", (c(0),), v),
           op("mov32", mem("got", 2, offset=1), fin(H2D, 2), site=1), params=(("v", U32),))
    run = [ir.Assign("ran", (), c(1, I32)), UNBLOCK]
    cls = pe("p", [ir.Symbol("got", U32, (3,)), ir.Symbol("ran", I32, ())], functions=[t],
             tasks=[ir.Task("t", "data", H2D, color=H2D)], run=run)
    return build_program(
        width=1, height=1, arch="wse2", fabric_dims=default_fabric_dims(1, 1),
        fabric_offsets=(4, 1), channels=1, exports=(ir.ExportName("run", "func"),),
        classes=(cls,), class_of=np.zeros((1, 1), np.int32), streams=((H2D, "h2d"),))


def test_a_launch_waits_for_the_main_thread_to_be_idle():
    program = _waiting_task_program()
    ref = Reference(program)
    ref.memcpy_h2d(H2D, np.array([7], np.uint32), 0, 0, 1, 1, 1, streaming=True)
    with pytest.raises(DeadlockError, match="its main thread waits in t"):
        ref.launch("run")
    assert ref.memory(0, 0)["ran"].item() == 0
    ref.memcpy_h2d(H2D, np.array([8, 9], np.uint32), 0, 0, 1, 1, 2, streaming=True)
    assert ref.memory(0, 0)["got"].tolist() == [7, 8, 9]
    assert ref.memory(0, 0)["ran"].item() == 1
    ref.launch("run")


def test_an_activated_id_without_a_task_keeps_the_pe_busy_as_in_the_engine():
    bump = fn("bump", ir.Assign("n", (), c(1, I32)))
    cls = pe("p", [ir.Symbol("n", I32, ())], functions=[bump],
             tasks=[ir.Task("bump", "local", 9)],
             run=[ir.TaskCtl("activate", c(4)), ir.TaskCtl("activate", c(9)), UNBLOCK])
    ref = Reference(row(cls), loop_limit=30)
    with pytest.raises(FabricFault, match="still busy after 30 ticks"):
        ref.launch("run")
    assert ref.memory(0, 0)["n"].item() == 0    # ID 4 shadows the bound ID 9


def test_engine_launch_waits_for_the_main_thread_too():
    from wsejax import SdkRuntime

    runner = SdkRuntime(_waiting_task_program())
    runner.load()
    runner.run()
    runner.memcpy_h2d(H2D, np.array([7], np.uint32), 0, 0, 1, 1, 1, streaming=True)
    with pytest.raises(DeadlockError):
        runner.launch("run")
