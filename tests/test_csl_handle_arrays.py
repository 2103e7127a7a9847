"""Arrays of handles at run time (spec 3.1, 4, 7): a comptime array of colors, task IDs,
queues or microthread IDs read at a runtime index gives a runtime handle; such arrays (and
single handles, and struct fields) held in PE memory, as globals and as locals, assigned at
run time; a DSD (mem1d, mem4d, fabin, fabout) chosen from a comptime array of DSDs by a
runtime index. Each program runs on the engine with the reference beside it (check mode:
every symbol and the clock must agree), and its results are checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_csl_handles import ARCHES, compile_error, program, run_out

from wsejax import FabricFault, SdkRuntime

# three local tasks, each writing its number to out[0]; ids lists them out of order
TASKS = """
task t10() void { out[0] = 100; sys.unblock_cmd_stream(); }
task t11() void { out[0] = 110; sys.unblock_cmd_stream(); }
task t12() void { out[0] = 120; sys.unblock_cmd_stream(); }
const ids = [3]local_task_id { @get_local_task_id(12), @get_local_task_id(10),
                               @get_local_task_id(11) };
comptime {
  @bind_local_task(t10, @get_local_task_id(10));
  @bind_local_task(t11, @get_local_task_id(11));
  @bind_local_task(t12, @get_local_task_id(12));
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_runtime_index_into_a_const_array_of_task_ids_activates_the_chosen_task(
        tmp_path, arch):
    got = run_out(program(tmp_path, TASKS + """
fn main() void {
  const t = ids[lay.get_x_coord()];
  out[1] = @get_int(t);
  @activate(t);
}
""", arch))
    np.testing.assert_array_equal(got[:, :2], [[120, 12], [100, 10], [110, 11]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_global_array_of_task_ids_is_assigned_and_read_at_run_time(tmp_path, arch):
    # held starts as ids rotated by one; main writes ids[x] over held[x + 1 mod 3] and
    # activates held[(x + 1) % 3]; t keeps the number read before held changes
    got = run_out(program(tmp_path, TASKS + """
var held = [3]local_task_id { @get_local_task_id(10), @get_local_task_id(11),
                              @get_local_task_id(12) };
var first: local_task_id = @get_local_task_id(11);
fn main() void {
  const x = lay.get_x_coord();
  const k = (x + 1) % 3;
  const before = held[k];
  held[k] = ids[x];
  out[1] = @get_int(before);
  out[2] = @get_int(held[k]) + 100 * @get_int(first);
  first = held[k];
  out[3] = @get_int(first);
  @activate(held[k]);
}
""", arch))
    np.testing.assert_array_equal(got, [[120, 11, 1112, 12], [100, 12, 1110, 10],
                                        [110, 10, 1111, 11]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_local_array_of_task_ids_copies_a_const_one_and_is_assigned(tmp_path, arch):
    got = run_out(program(tmp_path, TASKS + """
fn main() void {
  const x = lay.get_x_coord();
  var mine = ids;
  var two: [2]local_task_id;
  two[0] = mine[x];
  mine[x] = @get_local_task_id(10);
  two[1] = mine[x];
  out[1] = @get_int(two[0]);
  out[2] = @get_int(two[1]);
  @activate(two[0]);
}
""", arch))
    np.testing.assert_array_equal(got[:, :3], [[120, 12, 10], [100, 10, 10], [110, 11, 10]])


@pytest.mark.parametrize("arch", ARCHES)
def test_handle_locals_initialised_at_run_time_keep_the_numbers_they_read(tmp_path, arch):
    # ids = { 12, 10, 11 }: a const, an untyped and a typed var local take elements chosen
    # at run time; a handle read from a var or a global keeps that number when they change
    got = run_out(program(tmp_path, TASKS + """
var g: local_task_id = @get_local_task_id(10);
fn main() void {
  const x = lay.get_x_coord();
  const a: local_task_id = ids[x];
  var b = ids[(x + 1) % 3];
  var c: local_task_id = ids[(x + 2) % 3];
  const gb = g;
  g = b;
  out[1] = @get_int(a) + 100 * @get_int(gb);
  if (x == 1) { b = c; }
  const bb = b;
  b = a;
  out[2] = @get_int(bb) + 100 * @get_int(g);
  out[3] = @get_int(b);
  @activate(c);
}
""", arch))
    np.testing.assert_array_equal(got, [[110, 1012, 1010, 12], [120, 1010, 1112, 10],
                                        [100, 1011, 1212, 11]])


@pytest.mark.parametrize("arch", ARCHES)
def test_whole_arrays_of_handles_and_of_structs_are_assigned(tmp_path, arch):
    got = run_out(program(tmp_path, TASKS + """
const P = struct { a: u16, b: u16 };
var held: [3]local_task_id;
var copy: [3]local_task_id;
var ps = [2]P { P { .a = 1, .b = 2 }, P { .a = 3, .b = 4 } };
var qs: [2]P;
fn main() void {
  const x = lay.get_x_coord();
  held = ids;
  copy = held;
  held[x] = @get_local_task_id(10);
  qs = ps;
  ps[1].b = 9;
  out[1] = @get_int(held[0]) + 100 * @get_int(copy[x]);
  out[2] = qs[1].a + 10 * qs[1].b + 100 * ps[1].b;
  @activate(copy[x]);
}
""", arch))
    np.testing.assert_array_equal(got[:, :3], [[120, 1210, 943], [100, 1012, 943],
                                               [110, 1112, 943]])


@pytest.mark.parametrize("arch", ARCHES)
def test_runtime_indices_into_arrays_of_colors_and_control_task_ids(tmp_path, arch):
    got = run_out(program(tmp_path, """
const cs = [3]color { @get_color(7), @get_color(2), @get_color(19) };
const ks = [2, 2]control_task_id { @get_control_task_id(40), @get_control_task_id(41),
                                   @get_control_task_id(50), @get_control_task_id(63) };
var keep: [3]color;
fn main() void {
  const x = lay.get_x_coord();
  out[0] = @get_int(cs[x]);
  out[1] = @get_int(ks[x % 2, x / 2]);
  keep[2 - x] = cs[x];
  out[2] = @get_int(keep[2 - x]);
  sys.unblock_cmd_stream();
}
""", arch))
    np.testing.assert_array_equal(got[:, :3], [[7, 40, 7], [2, 50, 2], [19, 41, 19]])


@pytest.mark.parametrize("arch", ARCHES)
def test_runtime_indices_into_arrays_of_queues(tmp_path, arch):
    got = run_out(program(tmp_path, """
const iq = [3]input_queue { @get_input_queue(2), @get_input_queue(5), @get_input_queue(3) };
const oq = [3]output_queue { @get_output_queue(4), @get_output_queue(2),
                             @get_output_queue(3) };
var held: [2]output_queue;
fn main() void {
  const x = lay.get_x_coord();
  held[x % 2] = oq[x];
  out[0] = @get_int(iq[x]);
  out[1] = @get_int(held[x % 2]);
  sys.unblock_cmd_stream();
}
""", arch))
    np.testing.assert_array_equal(got[:, :2], [[2, 4], [5, 2], [3, 3]])


# the data tasks of colors 5 and 6, which carry wavelets from each PE's CE back to itself,
# start blocked; main unblocks the one picked[x % 2] names (wse2: a color, wse3: the task's
# input queue) and sends one word on each color: only that task runs before the command
# stream is unblocked
ROUTE = """
const c5 = @get_color(5);
const c6 = @get_color(6);
const q2 = @get_output_queue(2);
const q3 = @get_output_queue(3);
const i4 = @get_input_queue(4);
const i5 = @get_input_queue(5);
const to5 = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = c5, .output_queue = q2 });
const to6 = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = c6, .output_queue = q3 });
var words = [1]u32 { 7 };
const wd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> words[i] });
task r5(v: u32) void { out[0] = v + 50; sys.unblock_cmd_stream(); }
task r6(v: u32) void { out[0] = v + 60; sys.unblock_cmd_stream(); }
fn main() void {
  const x = lay.get_x_coord() % 2;
  picked[x] = choices[x];
  @unblock(picked[x]);
  @mov32(to5, wd);
  @mov32(to6, wd);
}
"""

SOURCES = {
    "wse2": """
const choices = [2]color { c5, c6 };
var picked: [2]color;
comptime {
  @bind_data_task(r5, @get_data_task_id(c5));
  @bind_data_task(r6, @get_data_task_id(c6));
  @block(c5);
  @block(c6);
}
""",
    "wse3": """
const choices = [2]input_queue { i4, i5 };
var picked: [2]input_queue;
comptime {
  @initialize_queue(q2, .{ .color = c5 });
  @initialize_queue(q3, .{ .color = c6 });
  @initialize_queue(i4, .{ .color = c5 });
  @initialize_queue(i5, .{ .color = c6 });
  @bind_data_task(r5, @get_data_task_id(i4));
  @bind_data_task(r6, @get_data_task_id(i5));
  @block(i4);
  @block(i5);
}
"""}


@pytest.mark.parametrize("arch", ARCHES)
def test_a_data_task_chosen_at_run_time_is_unblocked(tmp_path, arch):
    got = run_out(program(tmp_path, ROUTE + SOURCES[arch], arch, layout="""
for (@range(i16, 3)) |x| {
  @set_color_config(x, 0, @get_color(5), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ RAMP } } });
  @set_color_config(x, 0, @get_color(6), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ RAMP } } });
}"""))
    np.testing.assert_array_equal(got[:, 0], [57, 67, 57])


def test_wse3_runtime_indices_into_arrays_of_microthread_ids(tmp_path):
    got = run_out(program(tmp_path, """
const uts = [3]ut_id { @get_ut_id(4), @get_ut_id(6), @get_ut_id(2) };
var held: [2]ut_id;
fn main() void {
  const x = lay.get_x_coord();
  held[1] = uts[x];
  out[0] = @get_int(uts[x]);
  out[1] = @get_int(held[1]);
  @block(held[1]);
  @unblock(uts[x]);
  sys.unblock_cmd_stream();
}
""", "wse3"))
    np.testing.assert_array_equal(got[:, :2], [[4, 4], [6, 6], [2, 2]])


@pytest.mark.parametrize("arch", ARCHES)
def test_runtime_handles_in_a_const_array_and_a_loop_over_a_held_array(tmp_path, arch):
    # pair holds handles made at run time; a runtime index picks one of them
    got = run_out(program(tmp_path, TASKS + """
var held = [3]color { @get_color(3), @get_color(8), @get_color(13) };
fn main() void {
  const x = lay.get_x_coord();
  const pair = [2]local_task_id { @get_local_task_id(10 + x), ids[x] };
  out[1] = @get_int(pair[x % 2]);
  for (held) |c, k| { out[2] += @as(u32, @get_int(c)) * @as(u32, k + 1); }
  if (x == 1) { held[2] = @get_color(0); }
  for (held) |c, k| { out[3] += @as(u32, @get_int(c)) * @as(u32, k + 1); }
  @activate(pair[(x + 1) % 2]);
}
""", arch))
    np.testing.assert_array_equal(got, [[120, 10, 58, 58], [110, 10, 58, 19],
                                        [110, 12, 58, 58]])


OUT_OF_RANGE = {
    "handle": "@activate(ids[lay.get_x_coord() + 1]);",
    "dsd": """const ds = [3]mem1d_dsd {
    @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> out[i] }),
    @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> out[i + 1] }),
    @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> out[i + 2] }) };
  @mov32(ds[lay.get_x_coord() + 1], 5);
  @activate(ids[0]);""",
}


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("what", sorted(OUT_OF_RANGE))
def test_an_out_of_range_runtime_index_into_an_array_of_handles_or_dsds_faults_that_pe(
        tmp_path, arch, what):
    prog = program(tmp_path, TASKS + "fn main() void {\n  " + OUT_OF_RANGE[what] + "\n}\n",
                   arch)
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    with pytest.raises(FabricFault) as info:
        r.launch("main", nonblock=False)
    assert info.value.pes == [(2, 0)]
    assert "index out of range reading" in str(info.value)


@pytest.mark.parametrize("arch", ARCHES)
def test_functions_take_queues_known_at_comptime_or_at_run_time(tmp_path, arch):
    got = run_out(program(tmp_path, """
const iq = [2]input_queue { @get_input_queue(2), @get_input_queue(3) };
const oq = [2]output_queue { @get_output_queue(5), @get_output_queue(4) };
fn num(q: input_queue) u32 { return @get_int(q); }
fn onum(q: output_queue, k: u32) u32 { return k * @get_int(q); }
fn main() void {
  const x = lay.get_x_coord();
  out[0] = num(iq[x % 2]);
  out[1] = num(iq[1]);
  out[2] = onum(oq[x / 2], 10);
  sys.unblock_cmd_stream();
}
""", arch))
    np.testing.assert_array_equal(got[:, :3], [[2, 3, 50], [3, 3, 50], [2, 3, 40]])


@pytest.mark.parametrize("arch", ARCHES)
def test_struct_fields_and_globals_of_handle_types_change_at_run_time(tmp_path, arch):
    got = run_out(program(tmp_path, """
const Link = struct { c: color, n: u16 };
var link = Link { .c = @get_color(4), .n = 2 };
var c: color;
var t: control_task_id;
fn main() void {
  const x = lay.get_x_coord();
  out[0] = @get_int(link.c) + 10 * @get_int(c);
  link.c = @get_color(x + 1);
  c = link.c;
  t = @get_control_task_id(x + 40);
  out[1] = @get_int(link.c) + link.n;
  out[2] = @get_int(c) + @get_int(t);
  sys.unblock_cmd_stream();
}
""", arch))
    np.testing.assert_array_equal(got[:, :3], [[4, 3, 41], [4, 4, 43], [4, 5, 45]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_handle_var_given_a_comptime_value_takes_runtime_ones_in_branches_and_loops(
        tmp_path, arch):
    # ids = { 12, 10, 11 }: c starts as color 3 and is changed on some PEs only (a runtime
    # if), then by a runtime loop; t, a task ID, starts at 10 and becomes ids[x] in a branch
    # (PE 0 keeps 10), then is activated (t10 writes 100, t11 110, t12 120)
    got = run_out(program(tmp_path, TASKS + """
const cs = [3]color { @get_color(5), @get_color(6), @get_color(7) };
fn main() void {
  const x = lay.get_x_coord();
  var c: color = @get_color(3);
  var t = @get_local_task_id(10);
  if (x > 0) { c = cs[x]; t = ids[x]; }
  out[1] = @get_int(c);
  var sum: u16 = 0;
  var i: u16 = 0;
  while (i <= x) : (i += 1) { sum += @get_int(c); c = cs[i]; }
  out[2] = sum + 100 * @get_int(c);
  out[3] = @get_int(t);
  @activate(t);
}
""", arch))
    np.testing.assert_array_equal(got, [[100, 3, 503, 10], [100, 6, 611, 10],
                                        [110, 7, 718, 11]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_handle_var_assigned_a_comptime_value_in_a_branch_keeps_it_elsewhere(tmp_path, arch):
    # a switch on x: PE 1 takes color 9, PE 2 color 10; PE 0 keeps color 4; a queue var too
    got = run_out(program(tmp_path, """
fn main() void {
  const x = lay.get_x_coord();
  var c = @get_color(4);
  var q: output_queue = @get_output_queue(2);
  switch (x) {
    1 => { c = @get_color(9); },
    2 => { c = @get_color(10); q = @get_output_queue(5); },
    else => {},
  }
  out[0] = @get_int(c);
  out[1] = @get_int(q);
  sys.unblock_cmd_stream();
}
""", arch))
    np.testing.assert_array_equal(got[:, :2], [[4, 2], [9, 2], [10, 5]])


# ------------------------------------------------------------------------------------------------
# DSDs chosen at run time


@pytest.mark.parametrize("arch", ARCHES)
def test_a_runtime_index_picks_a_mem1d_dsd_from_a_const_array(tmp_path, arch):
    # PE x adds 10 to the elements the x-th DSD names; the others stay
    got = run_out(program(tmp_path, """
var a = [4]i16 { 1, 2, 3, 4 };
var b = @zeros([4]i16);
const ds = [3]mem1d_dsd {
  @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> a[i] }),
  @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> b[2 * i + 1] }),
  @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> a[i + 1] }),
};
fn main() void {
  const d = ds[lay.get_x_coord()];
  @add16(d, d, 10);
  out[0] = @as(u32, a[0] + 10 * a[1] + 100 * a[2] + 1000 * a[3]);
  out[1] = @as(u32, b[1]);
  out[2] = @as(u32, b[3]);
  sys.unblock_cmd_stream();
}
""", arch))
    np.testing.assert_array_equal(got[:, :3], [[4431, 0, 0], [4321, 10, 10], [15421, 0, 0]])


# on each PE's color 5, from its CE back to itself: main sends one word (x even) or two (x
# odd) and receives as many, by a fabout and a fabin DSD chosen from arrays at run time
FABRIC = """
const c5 = @get_color(5);
const oq = @get_output_queue(2);
const iq = @get_input_queue(4);
const outs = [2]fabout_dsd {
  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = c5, .output_queue = oq }),
  @get_dsd(fabout_dsd, .{ .extent = 2, .fabric_color = c5, .output_queue = oq }),
};
const ins = [2]fabin_dsd {
  @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 1, .input_queue = iq }
                      else .{ .extent = 1, .fabric_color = c5, .input_queue = iq }),
  @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 2, .input_queue = iq }
                      else .{ .extent = 2, .fabric_color = c5, .input_queue = iq }),
};
var words = [2]u32 { 7, 9 };
var buf = @zeros([2]u32);
const wd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> words[i] });
const bd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> buf[i] });
fn main() void {
  const k = lay.get_x_coord() % 2;
  @mov32(outs[k], wd);
  @mov32(bd, ins[k]);
  out[0] = buf[0];
  out[1] = buf[1];
  sys.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = c5 }); }
  @initialize_queue(iq, .{ .color = c5 });
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_fabric_dsds_of_one_color_are_chosen_at_run_time(tmp_path, arch):
    got = run_out(program(tmp_path, FABRIC, arch, layout="""
for (@range(i16, 3)) |x| {
  @set_color_config(x, 0, @get_color(5), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ RAMP } } });
}"""))
    np.testing.assert_array_equal(got[:, :2], [[7, 0], [7, 9], [7, 0]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_mem4d_dsd_is_chosen_at_run_time(tmp_path, arch):
    # the [2, 2] corner of a or of b (starting at b[1, 1]), picked by x % 2, is doubled;
    # out[0] and out[1] weigh a's and b's elements by their row-major position
    got = run_out(program(tmp_path, """
var a = [3, 3]i16 { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
var b = [3, 3]i16 { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
const ds = [2]mem4d_dsd {
  @get_dsd(mem4d_dsd, .{ .tensor_access = |i, j|{2, 2} -> a[i, j] }),
  @get_dsd(mem4d_dsd, .{ .tensor_access = |i, j|{2, 2} -> b[i + 1, j + 1] }),
};
fn main() void {
  const d = ds[lay.get_x_coord() % 2];
  @add16(d, d, d);
  for (@range(u16, 3)) |i| {
    for (@range(u16, 3)) |j| {
      const w = @as(u32, 3 * i + j + 1);
      out[0] += w * @as(u32, a[i, j]);
      out[1] += w * @as(u32, b[i, j]);
    }
  }
  sys.unblock_cmd_stream();
}
""", arch))
    w = np.arange(1, 10).reshape(3, 3)     # the weights, and the arrays' initial values
    doubled_a, doubled_b = w.copy(), w.copy()
    doubled_a[:2, :2] *= 2
    doubled_b[1:, 1:] *= 2
    plain = (w * w).sum()
    want = [[(w * doubled_a).sum(), plain], [plain, (w * doubled_b).sum()]]
    np.testing.assert_array_equal(got[:, :2], [want[0], want[1], want[0]])


@pytest.mark.parametrize("arch", ARCHES)
def test_fabric_dsds_of_colors_chosen_at_run_time_load_a_register_of_two_parts(tmp_path,
                                                                               arch):
    # a register loaded with DSDs of two colors holds one DSD variable per color beside the
    # number of the one it holds (test_csl_dsd_pick.py: the operations on it)
    prog = program(tmp_path, """
const oq = @get_output_queue(2);
const oq4 = @get_output_queue(3);
const fs = [2]fabout_dsd {
  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = @get_color(3), .output_queue = oq }),
  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = @get_color(4), .output_queue = oq4 }),
};
comptime {
  if (@is_arch("wse3")) {
    @initialize_queue(oq, .{ .color = @get_color(3) });
    @initialize_queue(oq4, .{ .color = @get_color(4) });
  }
}
fn main() void {
  var k: u16 = 1;
  @load_to_dsr(@get_dsr(dsr_dest, 1), fs[k]);
}
""", arch)
    pe = prog.classes[0]
    assert sorted(d.name for d in pe.dsrs) == ["%dsr.dest.1", "%dsr.dest.1.1"]
    assert pe.symbol("%dsr.dest.1.tag").dtype.name == "u16"


@pytest.mark.parametrize("arch", ARCHES)
def test_mem1d_dsds_chosen_at_run_time_share_their_element_type(tmp_path, arch):
    e = compile_error(tmp_path, """
var a = [4]i16 { 1, 2, 3, 4 };
var b = [4]f32 { 1, 2, 3, 4 };
const ds = [2]mem1d_dsd {
  @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> a[i] }),
  @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> b[i] }),
};
fn main() void {
  var k: u16 = 1;
  const d = ds[k];
}
""", arch, "ds[k]")
    assert "an array of mem1d_dsd is indexed with a runtime index, but its elements are DSDs " \
        "of different element types (f32, i16)" in str(e)


# ------------------------------------------------------------------------------------------------
# misuse


@pytest.mark.parametrize("arch", ARCHES)
def test_an_element_of_a_handle_array_takes_handles_of_its_type(tmp_path, arch):
    e = compile_error(tmp_path, """
var held: [2]local_task_id;
fn main() void {
  var n: u16 = 3;
  held[1] = @get_color(n);
}
""", arch, "held[1] =")
    assert "element: expected a local_task_id, got a runtime color" in str(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_runtime_queue_names_no_task_where_the_arch_has_none(tmp_path, arch):
    e = compile_error(tmp_path, """
const oq = [2]output_queue { @get_output_queue(2), @get_output_queue(3) };
fn main() void {
  var k: u16 = 1;
  @block(oq[k]);
}
""", arch, "@block(")
    assert f"@block: a runtime output queue names no task on {arch}" in str(e)


# ------------------------------------------------------------------------------------------------
# pointers to handles held in memory


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_to_handle_vars_fields_and_elements(tmp_path, arch):
    # p points to a global task ID, q to a struct's color field, r to an element of an array
    # of task IDs; main writes through each and activates the task read through r
    got = run_out(program(tmp_path, TASKS + """
const S = struct { c: color, n: u16 };
var held: local_task_id = @get_local_task_id(10);
var s = S { .c = @get_color(3), .n = 1 };
var hs = [3]local_task_id { @get_local_task_id(10), @get_local_task_id(11),
                            @get_local_task_id(12) };
fn bump(p: *local_task_id) void { p.* = ids[(@get_int(p.*) - 8) % 3]; }
fn main() void {
  const x = lay.get_x_coord();
  const p: *local_task_id = &held;
  const before = p.*;
  bump(p);
  const q: *color = &s.c;
  q.* = @get_color(4 + x);
  const r: *local_task_id = &hs[x];
  r.* = ids[x];
  out[1] = @get_int(before) + 100 * @get_int(held);
  out[2] = @get_int(s.c) + 100 * s.n;
  out[3] = @get_int(hs[x]);
  @activate(r.*);
}
""", arch))
    # bump: held 10 -> ids[2] = 11 (ids = 12, 10, 11); before keeps 10
    np.testing.assert_array_equal(got, [[120, 1110, 104, 12], [100, 1110, 105, 10],
                                        [110, 1110, 106, 11]])
