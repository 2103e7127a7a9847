"""`.on_control` (spec 5.4) on an asynchronous operation with a fabin input, given in the
op's config or in the `@load_to_dsr` of its register: a control wavelet arriving on the input
ends the operation early, the operation takes it (the control task it names does not run),
and `.activate` / `.unblock` act on a task (`.terminate` only ends it). The sender sends three
data wavelets, a control wavelet, then two more; the receiver's first op stops at the control
wavelet and a second op takes the rest. Engine and reference run every program; the results
are written by hand."""

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

LAYOUT = link_layout("out", "u32")

SENDER = link_sender("""  @mov32(data, @as(u32, 11));
  @mov32(data, @as(u32, 12));
  @mov32(data, @as(u32, 13));
  @mov32(marks, ctrl.encode_control_task_payload(@get_control_task_id(40)));
  @mov32(data, @as(u32, 14));
  @mov32(data, @as(u32, 15));""", "out")

# out[0..4]: what the first op received (8 wavelets asked for); out[4..6]: the second op's;
# out[6]: 1 per run of `stopped`, 100 per run of control task 40.
RECEIVER = """
param memcpy_params;
param link: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const iq = @get_input_queue(2);
var buf = @zeros([8]u32);
var out = @zeros([8]u32);
var out_ptr: [*]u32 = &out;
var marks: u32 = 0;
const in_dsd = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 8, .input_queue = iq }
                        else .{ .extent = 8, .fabric_color = link, .input_queue = iq });
const rest_dsd = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 2, .input_queue = iq }
                          else .{ .extent = 2, .fabric_color = link, .input_queue = iq });
const B = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{8} -> buf[i] });
const R = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> out[i + 4] });
const in_dsr = @get_dsr(dsr_src1, 1);
const stop_id = @get_local_task_id(10);
const done_id = @get_local_task_id(11);
task stopped() void {
  marks += 1;
  @mov32(R, rest_dsd, .{ .async = true, .activate = done_id });
}
task done() void {
  for (@range(u16, 4)) |i| { out[i] = buf[i]; }
  out[6] = marks;
  sys.unblock_cmd_stream();
}
task ctl_task(x: u16) void { marks += 100; }
fn main() void {
  START
}
comptime {
  @bind_local_task(stopped, stop_id);
  @bind_local_task(done, done_id);
  @bind_control_task(ctl_task, @get_control_task_id(40));
  @initialize_queue(iq, .{ .color = link });
  EXTRA
  @export_symbol(main);
  @export_symbol(out_ptr, "out");
}
"""

ACTIVATE = "@mov32(B, in_dsd, .{ .async = true, .on_control = .{ .activate = stop_id } });"


def compile_pair(tmp_path, arch: str, start: str = ACTIVATE, extra: str = ""):
    return compile_files(tmp_path, {
        "layout.csl": LAYOUT, "sender.csl": SENDER,
        "receiver.csl": RECEIVER.replace("START", start).replace("EXTRA", extra)}, arch)


# the first op stops after 11, 12, 13; the second takes 14, 15; `stopped` ran once and the
# control task never
EXPECT = np.array([11, 12, 13, 0, 14, 15, 1, 0], np.uint32)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_control_wavelet_ends_the_op_and_activates_its_task(tmp_path, arch):
    got, want = receiver_outputs(compile_pair(tmp_path, arch))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_on_control_unblock_releases_a_blocked_task(tmp_path, arch):
    start = """@activate(stop_id);
  @mov32(B, in_dsd, .{ .async = true, .on_control = .{ .unblock = stop_id } });"""
    got, want = receiver_outputs(compile_pair(tmp_path, arch, start, "@block(stop_id);"))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_terminate_ends_the_op_and_its_completion_hook_fires(tmp_path, arch):
    start = """@mov32(B, in_dsd, .{ .async = true, .on_control = .{ .terminate = true },
                      .activate = stop_id });"""
    got, want = receiver_outputs(compile_pair(tmp_path, arch, start))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_synchronous_op_ends_at_a_control_wavelet_too(tmp_path, arch):
    start = "@mov32(B, in_dsd, .{ .on_control = .{ .activate = stop_id } });"
    got, want = receiver_outputs(compile_pair(tmp_path, arch, start))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_on_control_given_by_the_load_of_a_register(tmp_path, arch):
    start = """@load_to_dsr(in_dsr, in_dsd, .{ .async = true,
                                     .on_control = .{ .activate = stop_id } });
  @mov32(B, in_dsr);"""
    got, want = receiver_outputs(compile_pair(tmp_path, arch, start))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_on_control_of_a_register_loaded_with_fabins_of_two_colors(tmp_path, arch):
    # the register is loaded with one of two fabins picked at run time (the other, of a
    # color nothing arrives on, never is): the op on the part it holds takes the options
    start = """const quiet = @get_dsd(fabin_dsd, if (@is_arch("wse3"))
      .{ .extent = 8, .input_queue = @get_input_queue(3) }
      else .{ .extent = 8, .fabric_color = @get_color(20), .input_queue = @get_input_queue(3) });
  const ins = [2]fabin_dsd { quiet, in_dsd };
  var k: u16 = 1;
  @load_to_dsr(in_dsr, ins[k], .{ .async = true, .on_control = .{ .activate = stop_id } });
  @mov32(B, in_dsr);"""
    extra = "@initialize_queue(@get_input_queue(3), .{ .color = @get_color(20) });"
    prog = compile_pair(tmp_path, arch, start, extra)
    assert any(s.name == "%dsr.src1.1.tag" for pe in prog.classes for s in pe.symbols)
    got, want = receiver_outputs(prog)
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("start, where, message", [
    ("@mov32(B, B, .{ .on_control = .{ .terminate = true } });", "@mov32(B, B",
     "@mov32: .on_control needs a fabin_dsd source: it acts on a control wavelet arriving on "
     "the operation's fabric input"),
    ("@mov32(B, in_dsd, .{ .async = true, .on_control = .{ .terminate = false } });",
     "@mov32(B, in_dsd", "@mov32: .on_control: .terminate takes true, got false"),
    ("@mov32(B, in_dsd, .{ .async = true, .on_control = .{ .stop = true } });",
     "@mov32(B, in_dsd", "@mov32: .on_control takes one of .{ .terminate = true }, "
     ".{ .activate = task }, .{ .unblock = task }"),
    ("@mov32(B, in_dsd, .{ .async = true, .on_control = .{ .activate = 3 } });",
     "@mov32(B, in_dsd", "@mov32 .activate takes a local task ID"),
    ("@load_to_dsr(@get_dsr(dsr_dest, 1), B, .{ .on_control = .{ .terminate = true } });",
     ".{ .on_control", "@load_to_dsr: .on_control acts on control wavelets "
     "arriving on a fabin_dsd, got a mem1d_dsd"),
])
def test_on_control_mistakes_are_located_errors(tmp_path, start, where, message):
    with pytest.raises(CslError) as err:
        compile_pair(tmp_path, "wse3", start)
    assert_located(err.value, tmp_path / "receiver.csl", where, message)
