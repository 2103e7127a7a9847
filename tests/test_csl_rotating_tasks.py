"""`@bind_rotating_tasks` (wse3): a data task and an alternate task take turns on the data
task's wavelets, the alternate running every (limit + 1)-th start (from `.init`); programs
run on the engine and the reference interpreter; misuse is reported where it is."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import position, read, run, write

from wsejax import CslError
from wsejax.csl import compile_csl
from wsejax.reference import Reference

N = 10

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
const c: color = @get_color(4);
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0), .c = c,
                                    .sender = true });
  @set_tile_code(1, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(1), .c = c,
                                    .sender = false });
  @set_color_config(0, 0, c, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_color_config(1, 0, c, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @export_name("got", [*]u32, true);
  @export_name("main", fn()void);
}
"""

# PE (0, 0) sends 0..N-1 on color c; PE (1, 0) rotates `main_task` and `alt_task` over them:
# got[v] tells which ran on wavelet v (1: main, 2: alt), got[N] / got[N+1] count each
PE = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const in_q = @get_input_queue(2);
const out_q = @get_output_queue(3);
var got = @zeros([N + 2]u32);
var got_ptr: [*]u32 = &got;
var src = @zeros([N]u32);
const S = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{N} -> src[i] });
const OUT = @get_dsd(fabout_dsd, .{ .extent = N, .output_queue = out_q });
task main_task(v: u32) void { got[v] = 1; got[N] += 1; }
task alt_task(ALT_PARAMS) void { ALT_BODY got[N + 1] += 1; }
fn main() void {
  if (sender) {
    for (@range(u32, N)) |i| { src[i] = i; }
    @mov32(OUT, S);
  }
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
  if (!sender) {
    BIND
    @initialize_queue(in_q, .{ .color = c });
  } else {
    @initialize_queue(out_q, .{ .color = c });
  }
}
"""

BIND = "@bind_rotating_tasks(main_task, alt_task, @get_data_task_id(in_q), OPTIONS);"


def source(options: str, alt_params: str = "v: u32", alt_body: str = "got[v] = 2;",
           bind: str = BIND) -> str:
    return (PE.replace("BIND", bind.replace("OPTIONS", options))
            .replace("ALT_PARAMS", alt_params).replace("ALT_BODY", alt_body)
            .replace("N", str(N)))


def compile_src(tmp_path, pe: str, arch: str = "wse3"):
    write(tmp_path, {"layout.csl": LAYOUT, "pe.csl": pe})
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def got(program):
    """`got` of the receiver after `main`: (engine, reference)."""
    eng = read(run(program), "got", N + 2, np.uint32)[0, 1]
    ref = Reference(program)
    ref.launch("main")
    return eng, np.asarray(ref.memory(1, 0)["got"]).reshape(-1)


def expected(limit: int, init: int = 0) -> list[int]:
    """By hand: the counter starts at init; equal to limit, alt runs and it goes to 0."""
    out, count = [], init
    for _ in range(N):
        if count == limit:
            out.append(2)
            count = 0
        else:
            out.append(1)
            count += 1
    return out + [out.count(1), out.count(2)]


@pytest.mark.parametrize("options, want", [
    (".{ .limit = 3 }", [1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 8, 2]),
    (".{ .limit = 2, .init = 1 }", [1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 7, 3]),
    (".{ .limit = 4, .init = 4 }", [2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 8, 2]),
    (".{ .limit = 0 }", [2] * N + [0, N]),
])
def test_every_limit_plus_first_start_runs_the_alternate(tmp_path, options, want):
    eng, ref = got(compile_src(tmp_path, source(options)))
    assert eng.tolist() == want
    assert ref.tolist() == want


def test_the_hand_count_matches_the_rule():
    assert expected(3) == [1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 8, 2]
    assert expected(2, 1) == [1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 7, 3]


def test_an_alternate_without_parameters_drops_the_wavelet(tmp_path):
    eng, ref = got(compile_src(tmp_path, source(".{ .limit = 1 }", "", "")))
    want = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 5, 5]
    assert eng.tolist() == want
    assert ref.tolist() == want


def refused(tmp_path, pe: str, where: str, arch: str = "wse3") -> str:
    with pytest.raises(CslError) as err:
        compile_src(tmp_path, pe, arch)
    line, col = position(pe, where)
    assert f"pe.csl:{line}:{col}:" in str(err.value)
    return str(err.value)


THIRD = """
task t3(v: u32) void { got[v] = 3; }
task a2(v: u32) void { got[v] = 4; }
task a3(v: u32) void { got[v] = 5; }
task t2(v: u32) void { got[v] = 6; }
comptime {
  if (!sender) {
    @bind_rotating_tasks(t2, a2, @get_data_task_id(@get_input_queue(4)), .{ .limit = 1 });
    @bind_rotating_tasks(t3, a3, @get_data_task_id(@get_input_queue(5)), .{ .limit = 1 });
  }
}
"""


@pytest.mark.parametrize("options, where, why", [
    (".{ .init = 1 }", ".{ .init", "@bind_rotating_tasks: the options need .limit"),
    (".{ .limit = 2, .init = 3 }", ".{ .limit = 2",
     "@bind_rotating_tasks: .init takes a comptime integer from 0 to 2 (the .limit), got the "
     "comptime_int 3"),
    (".{ .limit = 70000 }", ".{ .limit",
     "@bind_rotating_tasks: .limit takes a comptime integer from 0 to 65535, got the "
     "comptime_int 70000"),
    (".{ .limit = 1, .every = 2 }", ".{ .limit",
     "@bind_rotating_tasks: unknown option .every (it takes .limit and .init)"),
    ("77", "77", "@bind_rotating_tasks takes its options as a struct .{ .limit, .init }, got "
     "the comptime_int 77"),
])
def test_bad_options_are_located(tmp_path, options, where, why):
    assert why in refused(tmp_path, source(options), where)


def test_a_third_pair_is_refused(tmp_path):
    pe = source(".{ .limit = 1 }") + THIRD
    where = "@bind_rotating_tasks(t3"
    assert "a PE program binds at most two rotating task pairs" in refused(tmp_path, pe, where)


def test_two_pairs_take_control_tasks_0_and_1(tmp_path):
    pe = source(".{ .limit = 1 }") + THIRD.replace(
        "    @bind_rotating_tasks(t3, a3, @get_data_task_id(@get_input_queue(5)), "
        ".{ .limit = 1 });\n", "    @bind_control_task(a3, @get_control_task_id(1));\n")
    assert "task ID 1 is bound twice" in refused(tmp_path, pe, "@bind_control_task(a3")


def test_misnamed_arguments_are_located(tmp_path):
    pe = source(".{ .limit = 1 }", bind="@bind_rotating_tasks(main_task, alt_task, "
                "@get_local_task_id(9), OPTIONS);")
    assert ("@bind_rotating_tasks takes a data task ID (@get_data_task_id(queue)) as its third "
            "argument, got") in refused(tmp_path, pe, "@get_local_task_id(9)")
    pe = source(".{ .limit = 1 }", bind="@bind_rotating_tasks(main_task, 3, "
                "@get_data_task_id(in_q), OPTIONS);")
    assert "@bind_rotating_tasks takes a task, got" in refused(tmp_path, pe, "3, @get")


WSE2 = """
param memcpy_params;
param c: color;
param sender: bool;
task main_task(v: u32) void { _ = v; }
task alt_task(v: u32) void { _ = v; }
comptime {
  @bind_rotating_tasks(main_task, alt_task, @get_data_task_id(c), .{ .limit = 1 });
}
"""


def test_rotating_tasks_are_wse3_only(tmp_path):
    pe = WSE2
    why = refused(tmp_path, pe, "@bind_rotating_tasks", arch="wse2")
    assert "@bind_rotating_tasks is WSE-3 only (this program is for wse2)" in why


TWO_LAYOUT = LAYOUT.replace("const c: color = @get_color(4);",
                            "const c: color = @get_color(4);\nconst d: color = @get_color(5);") \
    .replace(".c = c,", ".c = c, .d = d,").replace(
        "  @export_name(\"got\"",
        "  @set_color_config(0, 0, d, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });\n"
        "  @set_color_config(1, 0, d, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });\n"
        "  @export_name(\"got\"")

# two pairs on the receiver: (ma, aa) on queue 2 (color c), limit 2; (mb, ab) on queue 4
# (color d), limit 1, init 1. got[v] counts 1 for ma, 2 for aa; got[N + v] 1 for mb, 2 for ab
TWO_PE = """
param memcpy_params;
param c: color;
param d: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
var got = @zeros([2 * N]u32);
var got_ptr: [*]u32 = &got;
var src = @zeros([N]u32);
const S = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{N} -> src[i] });
const OUT_C = @get_dsd(fabout_dsd, .{ .extent = N, .output_queue = @get_output_queue(3) });
const OUT_D = @get_dsd(fabout_dsd, .{ .extent = N, .output_queue = @get_output_queue(5) });
task ma(v: u32) void { got[v] = 1; }
task aa(v: u32) void { got[v] = 2; }
task mb(v: u32) void { got[N + v] = 1; }
task ab(v: u32) void { got[N + v] = 2; }
fn main() void {
  if (sender) {
    for (@range(u32, N)) |i| { src[i] = i; }
    @mov32(OUT_C, S);
    @mov32(OUT_D, S);
  }
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
  if (!sender) {
    @bind_rotating_tasks(ma, aa, @get_data_task_id(@get_input_queue(2)), .{ .limit = 2 });
    @bind_rotating_tasks(mb, ab, @get_data_task_id(@get_input_queue(4)),
                         .{ .limit = 1, .init = 1 });
    @initialize_queue(@get_input_queue(2), .{ .color = c });
    @initialize_queue(@get_input_queue(4), .{ .color = d });
  } else {
    @initialize_queue(@get_output_queue(3), .{ .color = c });
    @initialize_queue(@get_output_queue(5), .{ .color = d });
  }
}
""".replace("N", str(N))


def test_two_pairs_keep_counters_of_their_own(tmp_path):
    write(tmp_path, {"layout.csl": TWO_LAYOUT, "pe.csl": TWO_PE})
    program = compile_csl(tmp_path / "layout.csl", memcpy=True, arch="wse3")
    eng = read(run(program), "got", 2 * N, np.uint32)[0, 1]
    ref = Reference(program)
    ref.launch("main")
    want = expected(2)[:N] + expected(1, 1)[:N]
    assert want == [1, 1, 2] * 3 + [1] + [2, 1] * 5
    assert eng.tolist() == want
    assert np.asarray(ref.memory(1, 0)["got"]).reshape(-1).tolist() == want
