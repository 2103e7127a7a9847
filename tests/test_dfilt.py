"""`@dfilt` (spec 8, `wsejax.csl.builtins.dfilt`): a data filter on an input queue drops the
data wavelets until it has seen `extent` control wavelets, then completes with its hooks; the
wavelets after its last control wavelet are received as usual. The sender sends
d1 d2 C d3 d4 C d5 d6 (C: a control wavelet naming control task 40); the receiver filters
with extent 2, then an op reads the next two wavelets. Engine and reference run every
program; the results are written by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import (
    assert_located,
    compile_files,
    link_layout,
    link_sender,
    receiver_outputs,
)

from wsejax import CslError

SENDER = link_sender("""  @mov32(data, @as(u32, 11));
  @mov32(data, @as(u32, 12));
  @mov32(marks, ctrl.encode_control_task_payload(@get_control_task_id(40)));
  @mov32(data, @as(u32, 13));
  @mov32(data, @as(u32, 14));
  @mov32(marks, ctrl.encode_control_task_payload(@get_control_task_id(40)));
  @mov32(data, @as(u32, 15));
  @mov32(data, @as(u32, 16));""", "out")

# out[0..2]: the two wavelets read after the filter; out[2]: 1 per run of `after`, 100 per
# run of control task 40.
RECEIVER = """
param memcpy_params;
param link: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const iq = @get_input_queue(2);
var out = @zeros([8]u32);
var out_ptr: [*]u32 = &out;
var marks: u32 = 0;
const filt_dsd = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 2, .input_queue = iq }
                          else .{ .extent = 2, .fabric_color = link, .input_queue = iq });
const rest_dsd = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 2, .input_queue = iq }
                          else .{ .extent = 2, .fabric_color = link, .input_queue = iq });
const R = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> out[i] });
const in_dsr = @get_dsr(dsr_src1, 1);
const after_id = @get_local_task_id(10);
const done_id = @get_local_task_id(11);
task after() void {
  marks += 1;
  @mov32(R, rest_dsd, .{ .async = true, .activate = done_id });
}
task done() void {
  out[2] = marks;
  sys.unblock_cmd_stream();
}
task ctl_task(x: u16) void { marks += 100; }
fn main() void {
  START
}
comptime {
  @bind_local_task(after, after_id);
  @bind_local_task(done, done_id);
  @bind_control_task(ctl_task, @get_control_task_id(40));
  @initialize_queue(iq, .{ .color = link });
  @export_symbol(main);
  @export_symbol(out_ptr, "out");
}
"""

EXPECT = np.array([15, 16, 1, 0, 0, 0, 0, 0], np.uint32)


def compile_pair(tmp_path, arch: str, start: str):
    return compile_files(tmp_path, {"layout.csl": link_layout("out", "u32"),
                                    "sender.csl": SENDER,
                                    "receiver.csl": RECEIVER.replace("START", start)}, arch)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_dfilt_drops_data_until_its_control_wavelets_are_seen(tmp_path, arch):
    start = "@dfilt(filt_dsd, .{ .async = true, .activate = after_id });"
    got, want = receiver_outputs(compile_pair(tmp_path, arch, start))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_dfilt_on_a_register_loaded_with_async(tmp_path, arch):
    start = """@load_to_dsr(in_dsr, filt_dsd, .{ .async = true, .activate = after_id });
  @dfilt(in_dsr);"""
    got, want = receiver_outputs(compile_pair(tmp_path, arch, start))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("start, where, message", [
    ("@dfilt(filt_dsd);", "@dfilt(filt_dsd)",
     "@dfilt runs asynchronously: give it .{ .async = true } (or load its register with "
     ".async = true)"),
    ("@dfilt(R, .{ .async = true });", "R, .{",
     "@dfilt takes a fabin_dsd or a dsr_src1 loaded with one, got a mem1d_dsd"),
    ("@dfilt(filt_dsd, .{ .async = true, .index = 3 });", "@dfilt(filt_dsd",
     "@dfilt: option .index does not apply to a data filter"),
    ("@dfilt(filt_dsd, .{ .async = true, .on_control = .{ .terminate = true } });",
     "@dfilt(filt_dsd", "@dfilt: option .on_control does not apply to a data filter"),
    ("@dfilt(filt_dsd, 3);", "3)", "@dfilt takes a config struct like .{ .async = true }"),
])
def test_dfilt_mistakes_are_located_errors(tmp_path, start, where, message):
    with pytest.raises(CslError) as err:
        compile_pair(tmp_path, "wse3", start)
    assert_located(err.value, tmp_path / "receiver.csl", where, message)
