"""The engine on whole programs: runtime control flow under masks, function calls, @map,
runtime DSD changes, faults and deadlocks, and compile-once."""

from __future__ import annotations

import numpy as np
import pytest
from harness import compile_single, started

from wsejax import DeadlockError, FabricFault, MemcpyOrder
from wsejax import dsl as csl

W, H = 3, 2


def put(r, name, arr, l):
    r.memcpy_h2d(r.get_id(name), np.ascontiguousarray(arr).reshape(-1), 0, 0, W, H, l,
                 streaming=False, order=MemcpyOrder.ROW_MAJOR)


def get(r, name, l, dtype):
    out = np.zeros(W * H * l, dtype)
    r.memcpy_d2h(out, r.get_id(name), 0, 0, W, H, l, streaming=False, order=MemcpyOrder.ROW_MAJOR)
    return out.reshape(H, W, l)


# ------------------------------------------------------------------------------------------------
# Scalar control flow


def control_program():
    n = csl.var("n", csl.i32)
    data = csl.var("data", csl.i32[8])
    out = csl.var("out", csl.i32[8])
    small = csl.var("small", csl.i16)
    fout = csl.var("fout", csl.f32)

    @csl.fn
    def clamp(v: csl.i32, hi: csl.i32) -> csl.i32:
        with csl.if_(v > hi):
            csl.return_(hi)
        return v

    @csl.fn
    def run():
        total = csl.local(csl.i32, 0)
        i = csl.local(csl.i32, 0)
        with csl.while_(i < n):
            with csl.if_(i % 3 == 2):
                i.set(i + 1)
                csl.continue_()
            with csl.if_(total > 1000):
                csl.break_()
            total.set(total + data[i % 8] * (i + 1))
            i.set(i + 1)
        out[0] = total
        out[1] = clamp(total, 500)
        for k in csl.range(csl.i32, 2, 7):
            out[k] = data[7 - k] / (k - 4)
        for k in csl.range(csl.i16, 2):            # short: unrolled
            out[7] = out[7] + csl.as_(csl.i32, k)
        with csl.if_((csl.pe_x() & 1) == 1):
            out[7] = out[7] - 100
        with csl.else_():
            out[7] = out[7] + csl.as_(csl.i32, csl.pe_y()) * 10
        small.set(csl.as_(csl.i16, total) * 300)
        fout.set(csl.as_(csl.f32, total) / 7.0)
        csl.unblock_cmd_stream()

    for s in (n, data, out, small, fout):
        csl.export_symbol(s)
    csl.export_symbol(run)


def reference_control(n, data, x, y, out0):
    total, i = 0, 0
    while i < n:
        if i % 3 == 2:
            i += 1
            continue
        if total > 1000:
            break
        total += int(data[i % 8]) * (i + 1)
        i += 1
    out = out0.astype(np.int64).copy()
    out[0] = total
    out[1] = min(total, 500)
    for k in range(2, 7):
        d = k - 4
        out[k] = 0 if d == 0 else int(data[7 - k] / d)
    out[7] = out[7] + 1
    out[7] = out[7] - 100 if x & 1 else out[7] + 10 * y
    small = np.array(total, np.int64).astype(np.int16) * np.int16(300)
    return out.astype(np.int32), small, np.float32(np.float32(total) / np.float32(7.0))


def test_runtime_control_flow_matches_python_per_pe(rng):
    exports = {"n": csl.i32, "data": csl.i32, "out": csl.i32, "small": csl.i16,
               "fout": csl.f32, "run": csl.fn_type()}
    r = started(compile_single(control_program, exports))
    n = rng.integers(0, 30, (H, W, 1)).astype(np.int32)
    data = rng.integers(-50, 120, (H, W, 8)).astype(np.int32)
    out0 = rng.integers(-5, 5, (H, W, 8)).astype(np.int32)
    put(r, "n", n, 1)
    put(r, "data", data, 8)
    put(r, "out", out0, 8)
    with np.errstate(over="ignore"):
        r.launch("run")
    out = get(r, "out", 8, np.int32)
    small = np.zeros(W * H, np.uint32)
    r.memcpy_d2h(small, r.get_id("small"), 0, 0, W, H, 1, streaming=False,
                 data_type=csl.__dict__.get("MemcpyDataType", None) or 1)
    fout = get(r, "fout", 1, np.float32)
    r.stop()
    for y in range(H):
        for x in range(W):
            with np.errstate(over="ignore"):
                want_out, want_small, want_f = reference_control(n[y, x, 0], data[y, x], x, y,
                                                                 out0[y, x])
            np.testing.assert_array_equal(out[y, x], want_out, err_msg=f"PE ({x}, {y})")
            assert np.uint16(small[y * W + x]).view(np.int16) == want_small
            assert fout[y, x, 0] == want_f


# ------------------------------------------------------------------------------------------------
# @map


def test_map_with_scalar_inputs_branches_and_pointer_output(rng):
    def pe():
        a = csl.var("a", csl.f32[6])
        b = csl.var("b", csl.f32[6])
        out = csl.var("out", csl.f32[6])
        last = csl.var("last", csl.f32)
        a_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=6)
        b_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=b, extent=6)
        out_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=out, extent=6)

        @csl.fn
        def pick(u: csl.f32, v: csl.f32, s: csl.f32) -> csl.f32:
            r = csl.local(csl.f32, 0.0)
            with csl.if_(u > v):
                r.set(u * s)
            with csl.else_():
                r.set(v - s)
            return r

        @csl.fn
        def run():
            csl.map(pick, a_dsd, b_dsd, 2.0, out_dsd)
            csl.map(lambda u: u + 1.0, a_dsd, csl.addr(last))
            csl.unblock_cmd_stream()

        for s in (a, b, out, last):
            csl.export_symbol(s)
        csl.export_symbol(run)

    r = started(compile_single(pe, {"a": csl.f32, "b": csl.f32, "out": csl.f32,
                                    "last": csl.f32, "run": csl.fn_type()}))
    a = rng.standard_normal((H, W, 6)).astype(np.float32)
    b = rng.standard_normal((H, W, 6)).astype(np.float32)
    put(r, "a", a, 6)
    put(r, "b", b, 6)
    r.launch("run")
    out = get(r, "out", 6, np.float32)
    last = get(r, "last", 1, np.float32)
    np.testing.assert_array_equal(out, np.where(a > b, a * np.float32(2), b - np.float32(2)))
    np.testing.assert_array_equal(last[..., 0], a[..., 5] + np.float32(1))


# ------------------------------------------------------------------------------------------------
# Runtime DSD changes


def test_runtime_dsd_length_stride_base_and_locals(rng):
    def pe():
        a = csl.var("a", csl.f32[12])
        b = csl.var("b", csl.f32[12])
        out = csl.var("out", csl.f32[12])
        n = csl.var("n", csl.u16)
        s = csl.var("s", csl.i16)
        cur = csl.var("cur", csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=12))
        out_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=out, extent=12)

        @csl.fn
        def copy_into(d: csl.mem1d_dsd):
            csl.fmovs(out_dsd, d)

        @csl.fn
        def run():
            # odd columns read b instead of a (a DSD variable with two possible bases)
            with csl.if_((csl.pe_x() & 1) == 1):
                cur.set(csl.set_dsd_base_addr(cur, b))
            d = csl.local(csl.set_dsd_length(cur, n))
            d2 = csl.local(csl.set_dsd_stride(d, csl.as_(csl.i8, s)))
            copy_into(d2)
            csl.unblock_cmd_stream()

        for sym in (a, b, out, n, s):
            csl.export_symbol(sym)
        csl.export_symbol(run)

    exports = {"a": csl.f32, "b": csl.f32, "out": csl.f32, "n": csl.u16, "s": csl.i16,
               "run": csl.fn_type()}
    r = started(compile_single(pe, exports))
    a = rng.standard_normal((H, W, 12)).astype(np.float32)
    b = rng.standard_normal((H, W, 12)).astype(np.float32)
    n = rng.integers(0, 5, (H, W, 1)).astype(np.uint32)
    s = rng.integers(0, 3, (H, W, 1)).astype(np.uint32)
    out0 = rng.standard_normal((H, W, 12)).astype(np.float32)
    put(r, "a", a, 12)
    put(r, "b", b, 12)
    put(r, "out", out0, 12)
    for name, v in (("n", n), ("s", s)):
        r.memcpy_h2d(r.get_id(name), v.reshape(-1), 0, 0, W, H, 1, streaming=False,
                     data_type=1)
    r.launch("run")
    out = get(r, "out", 12, np.float32)
    for y in range(H):
        for x in range(W):
            src = b[y, x] if x & 1 else a[y, x]
            want = out0[y, x].copy()
            k, st = int(n[y, x, 0]), int(s[y, x, 0])
            if k:
                want[:k] = src[st * np.arange(k)] if st else src[0]
                if st == 0:
                    want[:k] = src[0]
            np.testing.assert_array_equal(out[y, x], want, err_msg=f"PE ({x}, {y})")


def gemv_runtime_offsets():
    A = csl.var("A", csl.f32[8 * 8 + 16])
    x = csl.var("x", csl.f32[8])
    y = csl.var("y", csl.zeros(csl.f32[8]))
    start = csl.var("start", csl.i16)
    A_dsd = csl.var("A_dsd", csl.get_dsd(csl.mem1d_dsd,
                                         tensor_access=csl.tensor_access(lambda i: A[i * 8], 8)))
    y_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=y, extent=8)

    @csl.fn
    def run():
        A_dsd.set(csl.increment_dsd_offset(A_dsd, start, csl.f32))
        for i in csl.range(csl.i16, 8):
            csl.fmacs(y_dsd, y_dsd, A_dsd, x[i])
            A_dsd.set(csl.increment_dsd_offset(A_dsd, 1, csl.f32))
        csl.unblock_cmd_stream()

    for s in (A, x, y, start):
        csl.export_symbol(s)
    csl.export_symbol(run)


@pytest.mark.parametrize("uniform", [True, False])
def test_fmacs_loop_as_matrix_product_equals_the_step_by_step_loop(uniform, rng):
    exports = {"A": csl.f32, "x": csl.f32, "y": csl.f32, "start": csl.i16, "run": csl.fn_type()}
    program = compile_single(gemv_runtime_offsets, exports)
    A = rng.standard_normal((H, W, 80)).astype(np.float32)
    x = rng.standard_normal((H, W, 8)).astype(np.float32)
    start = (np.full((H, W, 1), 3) if uniform else rng.integers(0, 16, (H, W, 1))).astype(np.uint32)
    results = []
    for matvec in (True, False):
        r = started(program, matvec_loops=matvec)
        put(r, "A", A, 80)
        put(r, "x", x, 8)
        r.memcpy_h2d(r.get_id("start"), start.reshape(-1), 0, 0, W, H, 1, streaming=False,
                     data_type=1)
        r.launch("run")
        results.append(get(r, "y", 8, np.float32))
    for yy in range(H):
        for xx in range(W):
            s = int(start[yy, xx, 0])
            mat = A[yy, xx, s:s + 64].reshape(8, 8)
            np.testing.assert_allclose(results[0][yy, xx], mat @ x[yy, xx], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Faults, deadlocks, compile once


def test_dsd_past_the_end_faults_with_pe_coordinates():
    from gemv import compile_gemv, run_gemv

    r = started(compile_gemv(2, 1, 4, 6))
    A = np.ones((1, 2, 24), np.float32)
    run_gemv(r, A, np.ones((1, 2, 6)), np.zeros((1, 2, 4)), 2, 1, 4, 6)
    # the tutorial never rewinds A_dsd: a second launch walks past the end of A
    with pytest.raises(FabricFault, match="out of range of 'A'") as err:
        r.launch("init_and_compute")
    assert sorted(err.value.pes) == [(0, 0), (1, 0)]


def test_function_that_never_unblocks_is_a_deadlock_naming_the_pes():
    def pe():
        @csl.fn
        def run():
            with csl.if_(csl.pe_x() == 1):
                csl.unblock_cmd_stream()

        csl.export_symbol(run)

    r = started(compile_single(pe, {"run": csl.fn_type()}))
    with pytest.raises(DeadlockError) as err:
        r.launch("run")
    assert sorted(err.value.pes) == [(0, 0), (0, 1), (2, 0), (2, 1)]


def test_runaway_loop_faults_instead_of_hanging():
    def pe():
        i = csl.var("i", csl.i32)

        @csl.fn
        def run():
            with csl.while_(i.value >= 0):
                i.set((i + 1) & 7)
            csl.unblock_cmd_stream()

        csl.export_symbol(run)

    r = started(compile_single(pe, {"run": csl.fn_type()}), loop_limit=1000)
    with pytest.raises(FabricFault, match="past 1000 iterations") as err:
        r.launch("run")
    assert len(err.value.pes) == W * H


def test_a_program_compiles_once_not_once_per_command():
    def pe():
        acc = csl.var("acc", csl.f32[4])
        acc_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=acc, extent=4)

        @csl.fn
        def add(v: csl.f32):
            csl.fadds(acc_dsd, acc_dsd, v)
            csl.unblock_cmd_stream()

        csl.export_symbol(acc)
        csl.export_symbol(add)

    r = started(compile_single(pe, {"acc": csl.f32, "add": csl.fn_type(csl.f32)}))
    for v in (1.0, 2.5, -0.5):
        r.memcpy_d2h(np.zeros(W * H * 4, np.float32), r.get_id("acc"), 0, 0, W, H, 4,
                     streaming=False)
        r.launch("add", np.float32(v))
    np.testing.assert_array_equal(get(r, "acc", 4, np.float32), np.full((H, W, 4), 3.0))
    assert r.engine.launch_fn("add")._cache_size() == 1


def test_launch_arguments_reach_the_function():
    def pe():
        out = csl.var("out", csl.f32[2])

        @csl.fn
        def run(a: csl.f32, k: csl.i16):
            out[0] = a * 2.0
            out[1] = csl.as_(csl.f32, k)
            csl.unblock_cmd_stream()

        csl.export_symbol(out)
        csl.export_symbol(run)

    r = started(compile_single(pe, {"out": csl.f32, "run": csl.fn_type(csl.f32, csl.i16)}))
    r.launch("run", np.float32(1.5), np.int16(-7))
    np.testing.assert_array_equal(get(r, "out", 2, np.float32)[..., :], [[[3.0, -7.0]] * W] * H)
    r.call("run", [np.float32(0.25), -3])
    np.testing.assert_array_equal(get(r, "out", 2, np.float32)[0, 0], [0.5, -3.0])


# ------------------------------------------------------------------------------------------------
# Local tasks


def task_program():
    log = csl.var("log", csl.i32[6])
    n = csl.var("n", csl.i32)
    first_id, second_id, last_id = (csl.get_local_task_id(k) for k in (3, 5, 9))

    @csl.fn
    def note(v: csl.i32):
        log[n] = v
        n.set(n + 1)

    @csl.task
    def first():
        note(1)
        csl.activate(last_id)            # blocked: runs only once second unblocks it

    @csl.task
    def second():
        note(2)
        csl.unblock(last_id)

    @csl.task
    def last():
        note(3)
        csl.unblock_cmd_stream()

    @csl.fn
    def go():
        note(0)
        csl.activate(second_id)
        with csl.if_(csl.pe_x() == 0):      # PE 0 starts `first`, the others never do
            csl.activate(first_id)

    for t, k in ((first, first_id), (second, second_id), (last, last_id)):
        csl.bind_local_task(t, k)
    csl.block(last_id)
    csl.export_symbol(log)
    csl.export_symbol(go)


def test_local_tasks_run_lowest_id_first_and_unblock_the_command_stream():
    r = started(compile_single(task_program, {"log": csl.i32, "go": csl.fn_type()}, width=2,
                               height=1))
    with pytest.raises(DeadlockError) as err:
        r.launch("go")
    # PE (1, 0) never activates `first`, so `last` is never activated and nothing can run
    assert err.value.pes == [(1, 0)]
    assert "PE (1, 0): active task IDs none" in str(err.value)
    out = np.zeros(2 * 6, np.int32)
    r.memcpy_d2h(out, r.get_id("log"), 0, 0, 2, 1, 6, streaming=False)
    assert out.reshape(2, 6).tolist() == [[0, 1, 2, 3, 0, 0], [0, 2, 0, 0, 0, 0]]


def order_program():
    log = csl.var("log", csl.i32[4])
    n = csl.var("n", csl.i32)
    ids = [csl.get_local_task_id(k) for k in (2, 4, 6)]
    tasks = []
    for k in range(3):
        def body(k=k):
            log[n] = k + 1
            n.set(n + 1)
            with csl.if_(n == 3):
                csl.unblock_cmd_stream()
        body.__name__ = f"t{k}"
        tasks.append(csl.task(body))

    @csl.fn
    def go():
        for t in ids:
            csl.activate(t)

    for t, k in zip(tasks, ids):
        csl.bind_local_task(t, k)
    csl.export_symbol(log)
    csl.export_symbol(go)


def test_random_schedule_mode_varies_the_order_reproducibly():
    program = compile_single(order_program, {"log": csl.i32, "go": csl.fn_type()}, width=4,
                             height=1)

    def orders(seed):
        r = started(program, schedule_seed=seed)
        r.launch("go")
        out = np.zeros(4 * 4, np.int32)
        r.memcpy_d2h(out, r.get_id("log"), 0, 0, 4, 1, 4, streaming=False)
        return [tuple(row[:3]) for row in out.reshape(4, 4).tolist()]

    assert orders(None) == [(1, 2, 3)] * 4                 # lowest ID first
    seen = set(orders(1)) | set(orders(2))
    assert all(sorted(o) == [1, 2, 3] for o in seen)       # every task runs exactly once
    assert len(seen) > 1                                   # in more than one order
    assert orders(1) == orders(1)                          # reproducibly
