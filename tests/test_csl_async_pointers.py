"""Runtime pointers where operations run on their own (spec 3.1, 7.5, 8.1): a `@map` callback
reading through a runtime pointer (element by element, in order), an asynchronous DSD
operation whose scalar destination is a pointer known only at run time, and `@map` over a
fabric DSD with `.simd_mode`. Each program runs on the engine with the reference beside it
(check mode), and its results are checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_csl_handles import ARCHES, program, run_out

MAP_POINTER = """
var table = [4]u32 { 5, 6, 7, 8 };
var other = [4]u32 { 50, 60, 70, 80 };
var tp: [*]u32 = &table;
var idx = [6]u32 { 3, 0, 2, 1, 1, 3 };
var seq = [3]u32 { 0, 1, 2 };
var res = @zeros([6]u32);
var run = [4]u32 { 1, 0, 0, 0 };
var rp: [*]u32 = &run;
const ids = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> idx[i] });
const rs = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> res[i] });
const later = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> run[i + 1] });
fn look(i: u32) u32 { return tp[i]; }
fn twice_before(i: u32) u32 { return 2 * rp[i]; }
fn main() void {
  if (lay.get_x_coord() == 1) { tp = &other; }
  @map(look, ids, rs);
  out[0] = res[0] + 100 * res[1];
  out[1] = res[2] + 100 * res[5];
  // each element reads the one the call before it wrote: 1, 2, 4, 8
  @map(twice_before, @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> seq[i] }), later);
  out[2] = run[1] + 10 * run[2] + 100 * run[3];
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_map_callback_reads_through_a_runtime_pointer(tmp_path, arch):
    got = run_out(program(tmp_path, MAP_POINTER, arch))
    np.testing.assert_array_equal(got[:, :3], [[8 + 500, 7 + 800, 2 + 40 + 800],
                                               [80 + 5000, 70 + 8000, 2 + 40 + 800],
                                               [8 + 500, 7 + 800, 2 + 40 + 800]])


# each PE sends 7, 9, 11 to itself on color 5; an asynchronous @mov32 receives them into the
# u32 its pointer names as it starts (out[1] on even PEs, out[2] on odd ones), however the
# pointer changes afterwards; the task it activates on completion ends the launch
ASYNC_DEST = """
const c5 = @get_color(5);
const oq = @get_output_queue(2);
const iq = @get_input_queue(4);
const send = @get_dsd(fabout_dsd, .{ .extent = 3, .fabric_color = c5, .output_queue = oq });
const recv = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 3, .input_queue = iq }
                      else .{ .extent = 3, .fabric_color = c5, .input_queue = iq });
var words = [3]u32 { 7, 9, 11 };
var spare: u32 = 0;
const wd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> words[i] });
var p: *u32 = &spare;
task done() void { out[3] = spare + 1; sys.unblock_cmd_stream(); }
fn main() void {
  if (lay.get_x_coord() % 2 == 0) { p = &out[1]; } else { p = &out[2]; }
  @mov32(p, recv, .{ .async = true, .activate = @get_local_task_id(12) });
  p = &spare;
  @mov32(send, wd);
  out[0] = 5;
}
comptime {
  @bind_local_task(done, @get_local_task_id(12));
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = c5 }); }
  @initialize_queue(iq, .{ .color = c5 });
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_an_async_op_writes_through_the_pointer_it_started_with(tmp_path, arch):
    got = run_out(program(tmp_path, ASYNC_DEST, arch, layout="""
for (@range(i16, 3)) |x| {
  @set_color_config(x, 0, @get_color(5), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ RAMP } } });
}"""))
    np.testing.assert_array_equal(got, [[5, 11, 0, 1], [5, 0, 11, 1], [5, 11, 0, 1]])
