"""The fabric in the engine: wavelets between PEs, data tasks, async operations, FIFOs,
streaming memcpy, back-pressure, deadlocks and faults (spec §5-§7, §12.4; `wsejax.fabric`).

Each program runs at a queue capacity of 1 (every wavelet waits for room) and of the default,
and must give the result numpy predicts either way."""

from __future__ import annotations

import numpy as np
import pytest
from harness import started

from wsejax import DeadlockError, FabricFault, MemcpyDataType, MemcpyError, MemcpyOrder
from wsejax import dsl as csl
from wsejax.fabric import QUEUE_CAPACITY

CAPACITIES = [1, QUEUE_CAPACITY]


def row_layout(pe_programs, routes=(), exports=(), **kw):
    """A row of PEs running `pe_programs[x]` (a function and its params); `routes` are
    `(x, y, color, rx, tx)`; `exports` maps names to csl types as in tests/harness.py."""

    def layout():
        csl.set_rectangle(len(pe_programs), 1)
        for x, (prog, params) in enumerate(pe_programs):
            csl.set_tile_code(x, 0, prog, params)
        for x, y, color, rx, tx in routes:
            csl.set_color_config(x, y, color, rx=rx, tx=tx)
        for name, t in dict(exports).items():
            if isinstance(t, csl.FnType):
                csl.export_name(name, t)
            else:
                csl.export_name(name, csl.pointer(t), True)

    return csl.compile(layout, **kw)


def put(r, name, arr, x0=0, w=None):
    arr = np.asarray(arr)
    w = w or r.program.width
    r.memcpy_h2d(r.get_id(name), arr.reshape(-1), x0, 0, w, 1, arr.size // w)


def get(r, name, n, dtype=np.float32):
    out = np.zeros(r.program.width * n, dtype)
    r.memcpy_d2h(out, r.get_id(name), 0, 0, r.program.width, 1, n)
    return out.reshape(r.program.width, n)


# ------------------------------------------------------------------------------------------------
# Point to point and multicast


N = 40     # longer than the default queue capacity


def sender(n=N, async_=False):
    x = csl.var("x", csl.f32[n])
    y = csl.var("y", csl.f32[n])
    out = csl.get_dsd(csl.fabout_dsd, extent=n, fabric_color=1,
                      output_queue=csl.get_output_queue(1))

    @csl.task
    def done():
        csl.unblock_cmd_stream()

    csl.bind_local_task(done, csl.get_local_task_id(10))

    @csl.fn
    def go():
        if async_:
            csl.fmovs(out, csl.get_dsd(csl.mem1d_dsd, base_address=x, extent=n), async_=True,
                      activate=done)
        else:
            csl.fmovs(out, csl.get_dsd(csl.mem1d_dsd, base_address=x, extent=n))
            csl.unblock_cmd_stream()

    for s in (x, y, go):
        csl.export_symbol(s)


def receiver(n=N):
    x = csl.var("x", csl.f32[n])
    y = csl.var("y", csl.f32[n])
    src = csl.get_dsd(csl.fabin_dsd, extent=n, fabric_color=1)

    @csl.fn
    def go():
        ydsd = csl.get_dsd(csl.mem1d_dsd, base_address=y, extent=n)
        csl.fadds(ydsd, ydsd, src)
        csl.unblock_cmd_stream()

    for s in (x, y, go):
        csl.export_symbol(s)


EXPORTS = {"x": csl.f32, "y": csl.f32, "go": csl.fn_type()}


def chain_program(width=2, async_=False):
    """PE 0 sends x east; every other PE receives it (multicast) and adds it to its y."""
    routes = [(0, 0, 1, csl.RAMP, csl.EAST)]
    for x in range(1, width):
        routes.append((x, 0, 1, csl.WEST, [csl.RAMP] + ([csl.EAST] if x < width - 1 else [])))
    progs = [(sender, {"async_": async_})] + [(receiver, {})] * (width - 1)
    return row_layout(progs, routes, EXPORTS)


@pytest.mark.parametrize("cap", CAPACITIES)
@pytest.mark.parametrize("width, async_", [(2, False), (4, False), (3, True)])
def test_send_east_and_multicast(cap, width, async_, rng):
    r = started(chain_program(width, async_), queue_capacity=cap)
    xs = rng.standard_normal((width, N)).astype(np.float32)
    ys = rng.standard_normal((width, N)).astype(np.float32)
    put(r, "x", xs)
    put(r, "y", ys)
    r.launch("go")
    got = get(r, "y", N)
    for x in range(1, width):
        np.testing.assert_array_equal(got[x], ys[x] + xs[0])
    np.testing.assert_array_equal(got[0], ys[0])
    # one cycle for the op and one per element; waiting costs nothing
    cycles = np.asarray(r.state.cycles)[0]
    assert cycles[1] == 1 + N + 1
    assert cycles[0] == (1 + 1 + N if not async_ else 1 + 1)


def test_a_smaller_queue_takes_more_ticks_for_the_same_result(rng):
    ticks = []
    for cap in (1, 8):
        r = started(chain_program(2), queue_capacity=cap)
        put(r, "x", np.arange(2 * N, dtype=np.float32))
        r.launch("go")
        ticks.append(int(r.state.fab.ticks))
        np.testing.assert_array_equal(get(r, "y", N)[1], np.arange(N, dtype=np.float32))
    assert ticks[0] > ticks[1]


# ------------------------------------------------------------------------------------------------
# Data tasks and streaming memcpy


def indexed_store(n):
    """A data task receiving (data, index) 16-bit halves: buf[index] = data * 3."""
    buf = csl.var("buf", csl.i16[n])
    count = csl.var("count", csl.u32)

    @csl.task
    def recv(data: csl.i16, index: csl.u16):
        buf[index] = data * 3
        count.set(count + 1)

    csl.bind_data_task(recv, csl.get_data_task_id(csl.get_color(2)))
    for s in (buf, count):
        csl.export_symbol(s)


@pytest.mark.parametrize("cap", CAPACITIES)
@pytest.mark.parametrize("order", [MemcpyOrder.ROW_MAJOR, MemcpyOrder.COL_MAJOR])
def test_streamed_data_index_pairs_into_a_16_bit_data_task(cap, order, rng):
    n, w, h = 12, 3, 2

    def layout():
        csl.set_rectangle(w, h)
        for y in range(h):
            for x in range(w):
                csl.set_tile_code(x, y, indexed_store, {"n": n})
        csl.export_name("buf", csl.pointer(csl.i16), True)
        csl.export_name("count", csl.pointer(csl.u32), True)

    r = started(csl.compile(layout, h2d_colors=(2,)), queue_capacity=cap)
    data = rng.integers(-1000, 1000, (h, w, n)).astype(np.int16)
    index = np.stack([rng.permutation(n) for _ in range(h * w)]).reshape(h, w, n)
    words = (data.view(np.uint16).astype(np.uint32) | (index.astype(np.uint32) << 16))
    host = words.reshape(-1) if order is MemcpyOrder.ROW_MAJOR else \
        words.reshape(-1, order="F")
    r.memcpy_h2d(2, host.copy(), 0, 0, w, h, n, streaming=True, order=order)
    out = np.zeros(w * h * n, np.uint32)
    r.memcpy_d2h(out, r.get_id("buf"), 0, 0, w, h, n, data_type=MemcpyDataType.MEMCPY_16BIT)
    got = out.astype(np.uint16).view(np.int16).reshape(h, w, n)
    want = np.zeros_like(data)
    for y in range(h):
        for x in range(w):
            want[y, x, index[y, x]] = data[y, x] * 3
    np.testing.assert_array_equal(got, want)
    counts = np.zeros(w * h, np.uint32)
    r.memcpy_d2h(counts, r.get_id("count"), 0, 0, w, h, 1)
    assert counts.tolist() == [n] * (w * h)
    assert np.asarray(r.state.fab.runs).tolist() == [[n] * w] * h


def doubler(n):
    """Receive n f32 wavelets on H2D color 2 into data task invocations; when all arrived,
    send them doubled on D2H color 3 (async), each data task blocking itself until its own
    send is done (the self-throttling pattern of spec 5.4)."""
    vals = csl.var("vals", csl.f32[n])
    k = csl.var("k", csl.u32)
    one = csl.get_dsd(csl.fabout_dsd, extent=1, fabric_color=3,
                      output_queue=csl.get_output_queue(1))
    recv_id = csl.get_data_task_id(csl.get_color(2))

    @csl.task
    def recv(v: csl.f32):
        csl.block(recv_id)
        vals[k] = v
        k.set(k + 1)
        csl.fmovs(one, v * 2.0, async_=True, unblock=recv_id)

    csl.bind_data_task(recv, recv_id)
    csl.export_symbol(vals)


@pytest.mark.parametrize("cap", CAPACITIES)
def test_streaming_in_and_out_with_a_self_throttling_data_task(cap, rng):
    n, w = 5, 3

    def layout():
        csl.set_rectangle(w, 1)
        for x in range(w):
            csl.set_tile_code(x, 0, doubler, {"n": n})
        csl.export_name("vals", csl.pointer(csl.f32), True)

    r = started(csl.compile(layout, h2d_colors=(2,), d2h_colors=(3,)), queue_capacity=cap)
    xs = rng.standard_normal(w * n).astype(np.float32)
    # the device can hold 2 * cap wavelets per PE in flight before the host reads any back
    sent = min(n, 2 * cap)
    r.memcpy_h2d(2, xs.reshape(w, n)[:, :sent].copy().reshape(-1), 0, 0, w, 1, sent,
                 streaming=True)
    out = np.zeros(w * sent, np.float32)
    r.memcpy_d2h(out, 3, 0, 0, w, 1, sent, streaming=True)
    np.testing.assert_array_equal(out.reshape(w, sent), xs.reshape(w, n)[:, :sent] * 2)


def test_streaming_needs_a_declared_color():
    def layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, doubler, {"n": 2})
        csl.export_name("vals", csl.pointer(csl.f32), True)

    r = started(csl.compile(layout, h2d_colors=(2,), d2h_colors=(3,)))
    with pytest.raises(MemcpyError, match=r"MEMCPYH2D_n colors .*\(2\), got 3"):
        r.memcpy_h2d(3, np.zeros(1, np.float32), 0, 0, 1, 1, 1, streaming=True)
    with pytest.raises(MemcpyError, match="MEMCPYD2H_n colors"):
        r.memcpy_d2h(np.zeros(1, np.float32), 2, 0, 0, 1, 1, 1, streaming=True)
    with pytest.raises(MemcpyError, match="expects a host array of 2"):
        r.memcpy_h2d(2, np.zeros(1, np.float32), 0, 0, 1, 1, 2, streaming=True)


# ------------------------------------------------------------------------------------------------
# FIFOs


def fifo_relay(n, cap):
    """Wavelets in on color 2 go through a FIFO of `cap` elements and out, negated, on 3."""
    buf = csl.var("buf", csl.f32[cap])
    fifo = csl.allocate_fifo(buf)
    src = csl.get_dsd(csl.fabin_dsd, extent=n, fabric_color=2,
                      input_queue=csl.get_input_queue(2))
    dst = csl.get_dsd(csl.fabout_dsd, extent=n, fabric_color=3,
                      output_queue=csl.get_output_queue(2))

    @csl.fn
    def start():
        csl.fmovs(fifo, src, async_=True)
        csl.fnegs(dst, fifo, async_=True)
        csl.unblock_cmd_stream()

    csl.export_symbol(start)


@pytest.mark.parametrize("fifo_cap", [1, 3, 8])
def test_a_fifo_between_two_async_operations(fifo_cap, rng):
    n, w, cap = 6, 2, 1

    def layout():
        csl.set_rectangle(w, 1)
        for x in range(w):
            csl.set_tile_code(x, 0, fifo_relay, {"n": n, "cap": fifo_cap})
        csl.export_name("start", csl.fn_type())

    r = started(csl.compile(layout, h2d_colors=(2,), d2h_colors=(3,)), queue_capacity=cap)
    r.launch("start")
    held = min(n, 2 * cap + fifo_cap)       # inbox + FIFO + outbox
    xs = rng.standard_normal((w, held)).astype(np.float32)
    r.memcpy_h2d(2, xs.reshape(-1), 0, 0, w, 1, held, streaming=True)
    out = np.zeros(w * held, np.float32)
    r.memcpy_d2h(out, 3, 0, 0, w, 1, held, streaming=True)
    np.testing.assert_array_equal(out.reshape(w, held), -xs)
    if held < n:
        # more than the device can hold before the host reads: the H2D cannot finish
        r2 = started(csl.compile(layout, h2d_colors=(2,), d2h_colors=(3,)),
                     queue_capacity=cap)
        r2.launch("start")
        with pytest.raises(DeadlockError, match="stopped short") as e:
            r2.memcpy_h2d(2, np.zeros(w * n, np.float32), 0, 0, w, 1, n, streaming=True)
        assert e.value.pes == [(0, 0), (1, 0)]
        assert "color 2 in: 1" in str(e.value) and "color 3 out: 1" in str(e.value)


# ------------------------------------------------------------------------------------------------
# Waiting bodies: loops, calls, branches


def looped_sender(n):
    x = csl.var("x", csl.f32[n])
    y = csl.var("y", csl.f32[n])
    one = csl.get_dsd(csl.fabout_dsd, extent=1, fabric_color=1)

    @csl.fn
    def send_one(i: csl.i16):
        csl.fmovs(one, csl.get_dsd(csl.mem1d_dsd, base_address=x, offset=i, extent=1))

    @csl.fn
    def go():
        for i in csl.range(csl.i16, n):
            with csl.if_(i == n - 1):
                csl.fnegs(one, x[i])
            with csl.else_():
                send_one(i)
        csl.unblock_cmd_stream()

    for s in (x, y, go):
        csl.export_symbol(s)


def looped_receiver(n):
    x = csl.var("x", csl.f32[n])
    y = csl.var("y", csl.f32[n])
    one = csl.get_dsd(csl.fabin_dsd, extent=1, fabric_color=1)

    @csl.fn
    def go():
        i = csl.local(csl.i16, 0)
        with csl.while_(True):
            csl.fmovs(csl.get_dsd(csl.mem1d_dsd, base_address=y, offset=i, extent=1), one)
            i.set(i + 1)
            with csl.if_(i == n):
                csl.break_()
        csl.unblock_cmd_stream()

    for s in (x, y, go):
        csl.export_symbol(s)


@pytest.mark.parametrize("cap", CAPACITIES)
def test_waiting_inside_loops_calls_and_branches(cap, rng):
    n = 7
    p = row_layout([(looped_sender, {"n": n}), (looped_receiver, {"n": n})],
                   [(0, 0, 1, csl.RAMP, csl.EAST), (1, 0, 1, csl.WEST, csl.RAMP)], EXPORTS)
    r = started(p, queue_capacity=cap)
    xs = rng.standard_normal((2, n)).astype(np.float32)
    put(r, "x", xs)
    r.launch("go")
    want = xs[0].copy()
    want[-1] = -want[-1]
    np.testing.assert_array_equal(get(r, "y", n)[1], want)


# ------------------------------------------------------------------------------------------------
# Deadlocks and faults


def test_a_receive_that_never_gets_data_is_a_deadlock():
    p = row_layout([(receiver, {})] * 2, [(1, 0, 1, csl.WEST, csl.RAMP)], EXPORTS)
    r = started(p)
    with pytest.raises(DeadlockError) as e:
        r.launch("go")
    assert e.value.pes == [(0, 0), (1, 0)]
    assert "main thread waits in go" in str(e.value)


def test_a_wavelet_with_nowhere_to_go_faults_at_its_pe():
    # PE 1 sends on color 1 too, but only PE 0's ramp is routed
    p = row_layout([(sender, {}), (sender, {})], [(0, 0, 1, csl.RAMP, csl.EAST),
                                                 (1, 0, 1, csl.WEST, ())], EXPORTS)
    r = started(p)
    with pytest.raises(FabricFault, match="color 1 has nowhere to go") as e:
        r.launch("go")
    assert (1, 0) in e.value.pes


def restarter():
    x = csl.var("x", csl.f32[4])
    out = csl.get_dsd(csl.fabout_dsd, extent=4, fabric_color=1,
                      output_queue=csl.get_output_queue(1))

    @csl.fn
    def go():
        for _ in csl.range(csl.i16, 2):
            csl.fmovs(out, csl.get_dsd(csl.mem1d_dsd, base_address=x, extent=4), async_=True)
        csl.unblock_cmd_stream()

    csl.export_symbol(x)
    csl.export_symbol(go)


def test_starting_an_async_op_that_still_runs_faults():
    p = row_layout([(restarter, {}), (receiver, {"n": 8})],
                   [(0, 0, 1, csl.RAMP, csl.EAST), (1, 0, 1, csl.WEST, csl.RAMP)],
                   EXPORTS)
    r = started(p, queue_capacity=1)
    with pytest.raises(FabricFault, match="still runs on its microthread") as e:
        r.launch("go")
    assert e.value.pes == [(0, 0)]


# ------------------------------------------------------------------------------------------------
# The random-order scheduler


def test_random_task_order_does_not_change_a_deterministic_dataflow_program(rng):
    xs = rng.standard_normal((3, N)).astype(np.float32)
    results = []
    for seed in (None, 1, 2):
        r = started(chain_program(3, async_=True), schedule_seed=seed, queue_capacity=4)
        put(r, "x", xs)
        r.launch("go")
        results.append(get(r, "y", N))
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])


# ------------------------------------------------------------------------------------------------
# Fabric operands of other ops; 16-bit packing with an index; FIFO hooks


def axpy_sender(n):
    """Sends a*x + s*b, computed on the way out: `@fmacs(fabout, a, fabin, s)` where b arrives
    on color 2 (host stream) and the result leaves on color 3 (to the host)."""
    a = csl.var("a", csl.f32[n])
    src = csl.get_dsd(csl.fabin_dsd, extent=n, fabric_color=2)
    dst = csl.get_dsd(csl.fabout_dsd, extent=n, fabric_color=3)

    @csl.fn
    def go(s: csl.f32):
        csl.fmacs(dst, csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=n), src, s)
        csl.unblock_cmd_stream()

    csl.export_symbol(a)
    csl.export_symbol(go)


def test_fmacs_with_a_fabric_input_and_output(rng):
    n = 5

    def layout():
        csl.set_rectangle(2, 1)
        for x in range(2):
            csl.set_tile_code(x, 0, axpy_sender, {"n": n})
        csl.export_name("a", csl.pointer(csl.f32), True)
        csl.export_name("go", csl.fn_type(csl.f32))

    r = started(csl.compile(layout, h2d_colors=(2,), d2h_colors=(3,)), queue_capacity=8)
    a = rng.standard_normal(2 * n).astype(np.float32)
    b = rng.standard_normal(2 * n).astype(np.float32)
    put(r, "a", a)
    r.memcpy_h2d(2, b, 0, 0, 2, 1, n, streaming=True)   # waits in the inboxes
    r.launch("go", np.float32(1.5))
    out = np.zeros(2 * n, np.float32)
    r.memcpy_d2h(out, 3, 0, 0, 2, 1, n, streaming=True)
    np.testing.assert_array_equal(out, a + b * np.float32(1.5))


def index_sender(n):
    """Sends its 16-bit values with wavelet_index_offset: the op's .index rides in the high
    half of every wavelet."""
    v = csl.var("v", csl.i16[n])
    out = csl.get_dsd(csl.fabout_dsd, extent=n, fabric_color=3, wavelet_index_offset=True)

    @csl.fn
    def go(k: csl.u16):
        csl.mov16(out, csl.get_dsd(csl.mem1d_dsd, base_address=v, extent=n), index=k)
        csl.unblock_cmd_stream()

    csl.export_symbol(v)
    csl.export_symbol(go)


def test_16_bit_values_leave_with_the_index_in_the_high_half(rng):
    n = 4

    def layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, index_sender, {"n": n})
        csl.export_name("v", csl.pointer(csl.i16), True)
        csl.export_name("go", csl.fn_type(csl.u16))

    r = started(csl.compile(layout, d2h_colors=(3,)))
    v = rng.integers(-2000, 2000, n).astype(np.int16)
    r.memcpy_h2d(r.get_id("v"), v.view(np.uint16).astype(np.uint32), 0, 0, 1, 1, n,
                 data_type=MemcpyDataType.MEMCPY_16BIT)
    r.launch("go", np.uint16(0xBEEF))
    out = np.zeros(n, np.uint32)
    r.memcpy_d2h(out, 3, 0, 0, 1, 1, n, streaming=True)
    assert (out >> 16).tolist() == [0xBEEF] * n
    assert (out & 0xFFFF).astype(np.uint16).view(np.int16).tolist() == v.tolist()


def hooked_fifo(n):
    """A FIFO filled from the fabric and drained to it, counting its push and pop hooks."""
    buf = csl.var("buf", csl.f32[2])
    pushes = csl.var("pushes", csl.u32)
    pops = csl.var("pops", csl.u32)

    @csl.task
    def on_push():
        pushes.set(pushes + 1)

    @csl.task
    def on_pop():
        pops.set(pops + 1)

    csl.bind_local_task(on_push, csl.get_local_task_id(12))
    csl.bind_local_task(on_pop, csl.get_local_task_id(13))
    fifo = csl.allocate_fifo(buf, activate_push=on_push, activate_pop=on_pop)
    src = csl.get_dsd(csl.fabin_dsd, extent=n, fabric_color=2,
                      input_queue=csl.get_input_queue(2))
    dst = csl.get_dsd(csl.fabout_dsd, extent=n, fabric_color=3,
                      output_queue=csl.get_output_queue(2))

    @csl.fn
    def fill():
        csl.fmovs(fifo, src, async_=True)
        csl.unblock_cmd_stream()

    @csl.fn
    def drain():
        csl.fmovs(dst, fifo, async_=True)
        csl.unblock_cmd_stream()

    for s in (pushes, pops, fill, drain):
        csl.export_symbol(s)


def test_fifo_push_and_pop_hooks():
    def layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, hooked_fifo, {"n": 2})
        for name in ("pushes", "pops"):
            csl.export_name(name, csl.pointer(csl.u32), True)
        csl.export_name("fill", csl.fn_type())
        csl.export_name("drain", csl.fn_type())

    r = started(csl.compile(layout, h2d_colors=(2,), d2h_colors=(3,)))
    r.launch("fill")
    r.memcpy_h2d(2, np.array([1.0, 2.0], np.float32), 0, 0, 1, 1, 2, streaming=True)
    r.launch("drain")
    out = np.zeros(2, np.float32)
    r.memcpy_d2h(out, 3, 0, 0, 1, 1, 2, streaming=True)
    assert out.tolist() == [1.0, 2.0]
    got = {name: get(r, name, 1, np.uint32)[0, 0] for name in ("pushes", "pops")}
    # the first push found the FIFO empty; the first pop found it full (2 of 2)
    assert got == {"pushes": 1, "pops": 1}
