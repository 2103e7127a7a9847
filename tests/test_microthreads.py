"""Microthreads (wse3, spec 5.2 and 5.4): `@get_ut_id`, an operation's `.ut_id`, the rule that
two running operations must not share a microthread, and `@block` / `@unblock` of one; in CSL
and in the Python API, each run on the engine and on the reference interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, write
from harness import started

from wsejax import CslError, DeadlockError, FabricFault, ProgramError, SdkRuntime
from wsejax import dsl as csl
from wsejax.csl import compile_csl
from wsejax.reference import Reference

N = 6

# two PEs joined both ways: PE (0, 0) sends east on color 3 and hears on color 4, PE (1, 0) the
# other way round
LAYOUT = """
const east: color = @get_color(3);
const west: color = @get_color(4);
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "left.csl", .{ .memcpy_params = memcpy.get_params(0),
                                      .tx = east, .rx = west });
  @set_tile_code(1, 0, "right.csl", .{ .memcpy_params = memcpy.get_params(1),
                                       .tx = west, .rx = east });
  @set_color_config(0, 0, east, .{ .routes = .{ .rx = .{RAMP}, .tx = .{EAST} } });
  @set_color_config(1, 0, east, .{ .routes = .{ .rx = .{WEST}, .tx = .{RAMP} } });
  @set_color_config(1, 0, west, .{ .routes = .{ .rx = .{RAMP}, .tx = .{WEST} } });
  @set_color_config(0, 0, west, .{ .routes = .{ .rx = .{EAST}, .tx = .{RAMP} } });
  @export_name("x", [*]f32, true);
  @export_name("y", [*]f32, true);
  @export_name("main", fn()void);
  @export_name("release", fn()void);
}
"""

HEAD = """
param memcpy_params;
param tx: color;
param rx: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const N: u16 = 6;
var x = @zeros([N]f32);
var y = @zeros([N]f32);
var x_ptr: [*]f32 = &x;
var y_ptr: [*]f32 = &y;
const oq = @get_output_queue(2);
const iq = @get_input_queue(3);
const x_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{N} -> x[i] });
const y_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{N} -> y[i] });
"""

TAIL = """
comptime {
  @initialize_queue(oq, .{ .color = tx });
  @initialize_queue(iq, .{ .color = rx });
  @export_symbol(x_ptr, "x");
  @export_symbol(y_ptr, "y");
  @export_symbol(main);
  @export_symbol(release);
}
"""

# each PE sends 2 * x to the other and adds what it hears to y, the two at once on microthreads
# 5 and 6; the second to finish lets the host go on
EXCHANGE = HEAD + """
const send_ut = @get_ut_id(5);
const recv_ut = @get_ut_id(SIX);
var finished: u16 = 0;

fn main() void {
  const out = @get_dsd(fabout_dsd, .{ .extent = N, .output_queue = oq });
  const from = @get_dsd(fabin_dsd, .{ .extent = N, .input_queue = iq });
  @fmuls(out, x_dsd, 2.0, .{ .async = true, .ut_id = send_ut, .activate = sent });
  @fadds(y_dsd, y_dsd, from, .{ .async = true, .ut_id = recv_ut, .activate = heard });
}

fn finish() void {
  finished += 1;
  if (finished == 2) { sys.unblock_cmd_stream(); }
}

task sent() void { finish(); }
task heard() void { finish(); }
fn release() void { sys.unblock_cmd_stream(); }

comptime {
  @bind_local_task(sent, @get_local_task_id(10));
  @bind_local_task(heard, @get_local_task_id(11));
}
""" + TAIL


def compile_pair(tmp_path, left: str, right: str | None = None, arch="wse3"):
    write(tmp_path, {"layout.csl": LAYOUT, "left.csl": left, "right.csl": right or left})
    return compile_csl(tmp_path / "layout.csl", arch=arch, memcpy=True)


def put_xy(r, xs, ys):
    r.memcpy_h2d(r.get_id("x"), xs.reshape(-1), 0, 0, 2, 1, N, streaming=False)
    r.memcpy_h2d(r.get_id("y"), ys.reshape(-1), 0, 0, 2, 1, N, streaming=False)


def get_y(r):
    out = np.zeros(2 * N, np.float32)
    r.memcpy_d2h(out, r.get_id("y"), 0, 0, 2, 1, N, streaming=False)
    return out.reshape(2, N)


def reference(program, xs, ys) -> Reference:
    ref = Reference(program)
    ref.memcpy_h2d("x", xs.reshape(-1), 0, 0, 2, 1, N)
    ref.memcpy_h2d("y", ys.reshape(-1), 0, 0, 2, 1, N)
    return ref


def ref_y(ref):
    return np.stack([ref.memory(k, 0)["y"] for k in range(2)])


# ------------------------------------------------------------------------------------------------
# Operations on named microthreads


@pytest.mark.parametrize("six", ["6", "@as(u16, 6)"])
def test_two_pes_exchange_on_named_microthreads(tmp_path, rng, six):
    program = compile_pair(tmp_path, EXCHANGE.replace("SIX", six))
    xs = rng.standard_normal((2, N)).astype(np.float32)
    ys = rng.standard_normal((2, N)).astype(np.float32)
    want = ys + 2.0 * xs[::-1]

    r = started(program)
    put_xy(r, xs, ys)
    r.launch("main")
    np.testing.assert_array_equal(get_y(r), want)

    ref = reference(program, xs, ys)
    ref.launch("main")
    np.testing.assert_array_equal(ref_y(ref), want)


def test_an_op_names_its_microthread_in_the_ir(tmp_path):
    program = compile_pair(tmp_path, EXCHANGE.replace("SIX", "6"))
    main = next(f for f in program.classes[0].functions if f.name.endswith("main"))
    uts = [s.config.ut_id.value for s in main.body if hasattr(s, "config")]
    assert uts == [5, 6]


def test_a_runtime_ut_id_runs_the_op_on_that_microthread(tmp_path, rng):
    # the microthread's number is computed at run time (a u16)
    src = EXCHANGE.replace("const recv_ut = @get_ut_id(SIX);", "var six: u16 = 6;").replace(
        ".ut_id = recv_ut", ".ut_id = @get_ut_id(six)")
    program = compile_pair(tmp_path, src)
    xs = rng.standard_normal((2, N)).astype(np.float32)
    ys = np.zeros((2, N), np.float32)
    r = started(program)
    put_xy(r, xs, ys)
    r.launch("main")
    np.testing.assert_array_equal(get_y(r), 2.0 * xs[::-1])
    ref = reference(program, xs, ys)
    ref.launch("main")
    np.testing.assert_array_equal(ref_y(ref), 2.0 * xs[::-1])


# ------------------------------------------------------------------------------------------------
# Refusals


def test_get_ut_id_on_wse2_is_a_located_error(tmp_path):
    src = """
param memcpy_params;
comptime { const ut = @get_ut_id(4); }
"""
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, "", arch="wse2")
    e = err.value
    assert e.message == "@get_ut_id: microthread IDs exist on wse3 only (this program is for wse2)"
    assert (e.file.endswith("pe.csl"), e.line, e.col) == (True, 3, 23)


def test_an_op_config_ut_id_on_wse2_is_a_located_error(tmp_path):
    src = """
param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
var x = @zeros([4]f32);
fn main() void {
  const out = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = @get_color(3) });
  const d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> x[i] });
  @fmovs(out, d, .{ .async = true, .ut_id = 4 });
}
comptime { @export_symbol(main); }
"""
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, '@export_name("main", fn()void);', arch="wse2")
    e = err.value
    assert e.message == ("@fmovs .ut_id: microthread IDs exist on wse3 only (this program is "
                         "for wse2)")
    assert (e.line, e.col) == (8, 3)


@pytest.mark.parametrize("n", ["8", "-1", "100"])
def test_get_ut_id_out_of_range_is_a_located_error(tmp_path, n):
    src = f"""
param memcpy_params;
comptime {{ const ut = @get_ut_id({n}); }}
"""
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, "", arch="wse3")
    e = err.value
    assert e.message == f"@get_ut_id: microthread ID {n} is out of range (0 to 7)"
    assert (e.file.endswith("pe.csl"), e.line, e.col) == (True, 3, 23)
    assert f"pe.csl:3:23: error: @get_ut_id: microthread ID {n}" in str(e)


def test_a_runtime_get_ut_id_takes_a_u16(tmp_path):
    src = """
param memcpy_params;
var k: i16 = 1;
fn main() void { const ut = @get_ut_id(k); }
comptime { @export_symbol(main); }
"""
    with pytest.raises(CslError, match=r"pe.csl:4:40: error: @get_ut_id takes a u16 at run "
                                       r"time, got a runtime i16"):
        compile_pe(tmp_path, src, '@export_name("main", fn()void);', arch="wse3")


def test_memcpy_keeps_microthread_zero(tmp_path):
    src = EXCHANGE.replace("SIX", "0")
    with pytest.raises(CslError, match=r"right.csl:\d+:\d+: error: @fadds .ut_id: microthread 0 "
                                       "is reserved by memcpy"):
        compile_pair(tmp_path, EXCHANGE.replace("SIX", "6"), src)


def test_ut_id_takes_a_microthread(tmp_path):
    src = EXCHANGE.replace("SIX", "6").replace(".ut_id = send_ut", ".ut_id = oq")
    with pytest.raises(CslError, match=r"@fmuls .ut_id takes a ut_id \(@get_ut_id\(n\)\), got "
                                       "output queue 2"):
        compile_pair(tmp_path, src)


def test_ut_id_is_a_type(tmp_path):
    src = EXCHANGE.replace("SIX", "6").replace("const send_ut = ", "const send_ut: ut_id = ")
    src = src.replace("var finished", """
comptime { @comptime_assert(@get_int(send_ut) == 5); }
const same = @is_same_type(@type_of(send_ut), ut_id);
comptime { @comptime_assert(same); }
var finished""")
    compile_pair(tmp_path, src)
    bad = src.replace("const send_ut: ut_id = @get_ut_id(5);", "const send_ut: ut_id = oq;")
    with pytest.raises(CslError, match=r"expected a ut_id \(@get_ut_id\(n\)\), got output "
                                       "queue 2"):
        compile_pair(tmp_path, bad)


# ------------------------------------------------------------------------------------------------
# Two running operations on one microthread


# PE (0, 0) starts a send that cannot finish (its receiver takes nothing) and then, from a task,
# a receive naming the same microthread
CLASH = HEAD + """
const ut = @get_ut_id(4);
fn main() void {
  const out = @get_dsd(fabout_dsd, .{ .extent = 40, .output_queue = oq });
  const x0 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{40} -> x[0] });
  @fmovs(out, x0, .{ .async = true, .ut_id = ut });
  @activate(again_id);
}
const again_id = @get_local_task_id(12);
task again() void {
  const from = @get_dsd(fabin_dsd, .{ .extent = N, .input_queue = iq });
  @fmovs(y_dsd, from, .{ .async = true, .ut_id = UT, .activate = again_id });
  sys.unblock_cmd_stream();
}
fn release() void { sys.unblock_cmd_stream(); }
comptime { @bind_local_task(again, again_id); }
""" + TAIL

IDLE = HEAD + """
fn main() void { sys.unblock_cmd_stream(); }
fn release() void { sys.unblock_cmd_stream(); }
""" + TAIL


@pytest.mark.parametrize("ut, on", [("ut", "microthread 4"),
                                    ("@get_ut_id(@as(u16, x_ptr[0]))", "its microthread")])
def test_two_running_ops_on_one_microthread_fault(tmp_path, ut, on):
    program = compile_pair(tmp_path, CLASH.replace("UT", ut), IDLE)
    main = next(f.name for f in program.classes[0].functions if f.name.endswith("main"))
    again = next(f.name for f in program.classes[0].functions if f.name.endswith("again"))
    text = (f"device fault: @fmovs in {again}: started on {on} while @fmovs in {main} still "
            "runs on it at PE (0, 0)")
    xs = np.full((2, N), 4.0, np.float32)
    ys = np.zeros((2, N), np.float32)

    r = started(program)
    put_xy(r, xs, ys)
    with pytest.raises(FabricFault) as err:
        r.launch("main")
    assert str(err.value) == text
    assert err.value.pes == [(0, 0)]

    ref = reference(program, xs, ys)
    with pytest.raises(FabricFault) as err:
        ref.launch("main")
    assert str(err.value) == text
    assert err.value.pes == [(0, 0)]


def test_ops_may_share_a_microthread_one_after_the_other(tmp_path, rng):
    # the receive completes before the send on its microthread starts
    src = HEAD + """
const ut = @get_ut_id(7);
fn main() void {
  const from = @get_dsd(fabin_dsd, .{ .extent = N, .input_queue = iq });
  @fadds(y_dsd, x_dsd, from, .{ .async = true, .ut_id = ut, .activate = forward_id });
}
const forward_id = @get_local_task_id(12);
task forward() void {
  const out = @get_dsd(fabout_dsd, .{ .extent = N, .output_queue = oq });
  @fmovs(out, y_dsd, .{ .async = true, .ut_id = ut, .activate = done_id });
}
const done_id = @get_local_task_id(13);
task done() void { sys.unblock_cmd_stream(); }
fn release() void { sys.unblock_cmd_stream(); }
comptime { @bind_local_task(forward, forward_id); @bind_local_task(done, done_id); }
""" + TAIL
    starter = EXCHANGE.replace("SIX", "6")   # sends 2 * x, adds what comes back to y
    program = compile_pair(tmp_path, starter, src)
    xs = rng.standard_normal((2, N)).astype(np.float32)
    ys = rng.standard_normal((2, N)).astype(np.float32)
    relayed = xs[1] + 2.0 * xs[0]
    want = np.stack([ys[0] + relayed, relayed])
    r = started(program)
    put_xy(r, xs, ys)
    r.launch("main")
    np.testing.assert_array_equal(get_y(r), want)
    ref = reference(program, xs, ys)
    ref.launch("main")
    np.testing.assert_array_equal(ref_y(ref), want)


# ------------------------------------------------------------------------------------------------
# Blocking a microthread


# PE (1, 0) receives on microthread 3, blocked from the start: nothing arrives in y until
# `release` unblocks it
HELD = HEAD + """
const ut = @get_ut_id(3);
var got: u16 = 0;
fn main() void {
  const from = @get_dsd(fabin_dsd, .{ .extent = N, .input_queue = iq });
  @fmovs(y_dsd, from, .{ .async = true, .ut_id = ut, .activate = got_id });
  sys.unblock_cmd_stream();
}
const got_id = @get_local_task_id(12);
task got_all() void { got = 1; }
fn release() void {
  @unblock(ut);
  sys.unblock_cmd_stream();
}
comptime { @bind_local_task(got_all, got_id); @block(ut); }
""" + TAIL

SENDER = HEAD + """
fn main() void {
  const out = @get_dsd(fabout_dsd, .{ .extent = N, .output_queue = oq });
  @fmovs(out, x_dsd, .{ .async = true, .activate = sent_id });
}
const sent_id = @get_local_task_id(12);
task sent() void { sys.unblock_cmd_stream(); }
fn release() void { sys.unblock_cmd_stream(); }
comptime { @bind_local_task(sent, sent_id); }
""" + TAIL


def test_a_blocked_microthread_holds_its_op_until_unblocked(tmp_path, rng):
    program = compile_pair(tmp_path, SENDER, HELD)
    assert program.classes[1].blocked_uts == (3,)
    xs = rng.standard_normal((2, N)).astype(np.float32)
    ys = np.zeros((2, N), np.float32)

    r = started(program)
    put_xy(r, xs, ys)
    r.launch("main")
    np.testing.assert_array_equal(get_y(r)[1], 0.0)
    r.launch("release")
    np.testing.assert_array_equal(get_y(r)[1], xs[0])

    ref = reference(program, xs, ys)
    ref.launch("main")
    assert ref.memory(1, 0)["y"].tolist() == [0.0] * N
    assert ref.memory(1, 0)["got"].item() == 0
    ref.launch("release")
    np.testing.assert_array_equal(ref.memory(1, 0)["y"], xs[0])
    assert ref.memory(1, 0)["got"].item() == 1


def test_an_op_on_a_microthread_blocked_at_run_time_deadlocks_naming_it(tmp_path):
    src = HELD.replace("@block(ut); }", "}").replace(
        "  const from", "  @block(ut);\n  const from").replace(
        "  sys.unblock_cmd_stream();\n}\nconst got_id", "}\nconst got_id").replace(
        "task got_all() void { got = 1; }", "task got_all() void { sys.unblock_cmd_stream(); }")
    program = compile_pair(tmp_path, SENDER, src)
    assert program.classes[1].blocked_uts == ()
    for runner in (started(program), Reference(program)):
        with pytest.raises(DeadlockError) as err:
            runner.launch("main")
        assert err.value.pes == [(1, 0)]
        assert "PE (1, 0): active task IDs none, blocked task IDs none, blocked microthreads " \
               "[3]" in str(err.value)


# ------------------------------------------------------------------------------------------------
# The Python API


def exchanger(tx, rx, ut_send=5, ut_recv=6, clash=False):
    def program():
        x = csl.var("x", csl.f32[N])
        y = csl.var("y", csl.f32[N])
        finished = csl.var("finished", csl.u16)
        oq, iq = csl.get_output_queue(2), csl.get_input_queue(3)
        csl.initialize_queue(oq, color=tx)
        csl.initialize_queue(iq, color=rx)
        out = csl.get_dsd(csl.fabout_dsd, extent=N, output_queue=oq)
        inp = csl.get_dsd(csl.fabin_dsd, extent=N, input_queue=iq)
        x_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=x, extent=N)
        y_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=y, extent=N)

        @csl.fn
        def finish():
            finished.set(finished + 1)
            with csl.if_(finished == 2):
                csl.unblock_cmd_stream()

        @csl.task
        def sent():
            finish()

        @csl.task
        def heard():
            finish()

        @csl.fn
        def main():
            csl.fmuls(out, x_dsd, 2.0, async_=True, ut_id=csl.get_ut_id(ut_send),
                      activate=sent)
            csl.fadds(y_dsd, y_dsd, inp, async_=True, ut_id=csl.get_ut_id(ut_recv),
                      activate=heard)

        csl.bind_local_task(sent, csl.get_local_task_id(10))
        csl.bind_local_task(heard, csl.get_local_task_id(11))
        csl.export_symbol(x)
        csl.export_symbol(y)
        csl.export_symbol(main)

    return program


def dsl_pair(left, right):
    def layout():
        csl.set_rectangle(2, 1)
        csl.set_tile_code(0, 0, left)
        csl.set_tile_code(1, 0, right)
        csl.set_color_config(0, 0, 3, rx=csl.RAMP, tx=csl.EAST)
        csl.set_color_config(1, 0, 3, rx=csl.WEST, tx=csl.RAMP)
        csl.set_color_config(1, 0, 4, rx=csl.RAMP, tx=csl.WEST)
        csl.set_color_config(0, 0, 4, rx=csl.EAST, tx=csl.RAMP)
        csl.export_name("x", csl.pointer(csl.f32), True)
        csl.export_name("y", csl.pointer(csl.f32), True)
        csl.export_name("main", csl.fn_type())

    return csl.compile(layout, arch="wse3")


def test_dsl_exchange_on_named_microthreads(rng):
    program = dsl_pair(exchanger(3, 4), exchanger(4, 3))
    xs = rng.standard_normal((2, N)).astype(np.float32)
    ys = rng.standard_normal((2, N)).astype(np.float32)
    want = ys + 2.0 * xs[::-1]
    r = started(program)
    put_xy(r, xs, ys)
    r.launch("main")
    np.testing.assert_array_equal(get_y(r), want)
    ref = reference(program, xs, ys)
    ref.launch("main")
    np.testing.assert_array_equal(ref_y(ref), want)


def test_dsl_two_running_ops_on_one_microthread_fault():
    program = dsl_pair(exchanger(3, 4, ut_recv=5), exchanger(4, 3))
    text = ("device fault: @fadds in main: started on microthread 5 while @fmuls in main still "
            "runs on it at PE (0, 0)")
    for runner in (started(program), Reference(program)):
        with pytest.raises(FabricFault) as err:
            runner.launch("main")
        assert str(err.value) == text


@pytest.mark.parametrize("make, message", [
    (lambda: csl.get_ut_id(8), "get_ut_id: microthread ID 8 is out of range (0 to 7)"),
    (lambda: csl.get_ut_id(1.0), "get_ut_id takes a comptime integer, got 1.0"),
    (lambda: csl.block(csl.get_ut_id(0)), "@block: microthread 0 is reserved by memcpy"),
])
def test_dsl_ut_id_refusals(make, message):
    def program():
        make()

    def layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, program)

    with pytest.raises(ProgramError) as err:
        csl.compile(layout, arch="wse3")
    assert str(err.value) == message


def test_dsl_get_ut_id_on_wse2_is_refused():
    def program():
        csl.get_ut_id(4)

    def layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, program)

    with pytest.raises(ProgramError, match=r"get_ut_id: microthread IDs exist on wse3 only "
                                           r"\(this program is for wse2\)"):
        csl.compile(layout, arch="wse2")


def test_dsl_a_microthread_blocked_at_start_up_holds_its_op():
    def held():
        y = csl.var("y", csl.f32[N])
        ut = csl.get_ut_id(3)
        iq = csl.get_input_queue(3)
        csl.initialize_queue(iq, color=3)
        inp = csl.get_dsd(csl.fabin_dsd, extent=N, input_queue=iq)

        @csl.fn
        def main():
            csl.fmovs(csl.get_dsd(csl.mem1d_dsd, base_address=y, extent=N), inp, async_=True,
                      ut_id=ut)
            csl.unblock_cmd_stream()

        @csl.fn
        def release():
            csl.unblock(ut)
            csl.unblock_cmd_stream()

        csl.block(ut)
        csl.export_symbol(y)
        csl.export_symbol(main)
        csl.export_symbol(release)

    def sender():
        x = csl.var("x", csl.f32[N])
        oq = csl.get_output_queue(2)
        csl.initialize_queue(oq, color=3)
        out = csl.get_dsd(csl.fabout_dsd, extent=N, output_queue=oq)

        @csl.fn
        def main():
            csl.fmovs(out, csl.get_dsd(csl.mem1d_dsd, base_address=x, extent=N))
            csl.unblock_cmd_stream()

        @csl.fn
        def release():
            csl.unblock_cmd_stream()

        csl.export_symbol(x)
        csl.export_symbol(main)
        csl.export_symbol(release)

    def layout():
        csl.set_rectangle(2, 1)
        csl.set_tile_code(0, 0, sender)
        csl.set_tile_code(1, 0, held)
        csl.set_color_config(0, 0, 3, rx=csl.RAMP, tx=csl.EAST)
        csl.set_color_config(1, 0, 3, rx=csl.WEST, tx=csl.RAMP)
        csl.export_name("x", csl.pointer(csl.f32), True)
        csl.export_name("y", csl.pointer(csl.f32), True)
        csl.export_name("main", csl.fn_type())
        csl.export_name("release", csl.fn_type())

    program = csl.compile(layout, arch="wse3")
    assert program.classes[1].blocked_uts == (3,)
    xs = np.arange(1, N + 1, dtype=np.float32)

    def y_of_receiver():
        out = np.zeros(N, np.float32)
        r.memcpy_d2h(out, r.get_id("y"), 1, 0, 1, 1, N, streaming=False)
        return out.tolist()

    r = SdkRuntime(program)
    r.load()
    r.run()
    r.memcpy_h2d(r.get_id("x"), xs, 0, 0, 1, 1, N, streaming=False)
    r.launch("main")
    assert y_of_receiver() == [0.0] * N
    r.launch("release")
    assert y_of_receiver() == xs.tolist()

    ref = Reference(program)
    ref.memcpy_h2d("x", xs, 0, 0, 1, 1, N)
    ref.launch("main")
    assert ref.memory(1, 0)["y"].tolist() == [0.0] * N
    ref.launch("release")
    assert ref.memory(1, 0)["y"].tolist() == xs.tolist()
