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
from csl_harness import position

from wsejax import CslError, SdkRuntime
from wsejax.csl import compile_csl
from wsejax.reference import Reference

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
const link: color = @get_color(4);
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "sender.csl", .{ .memcpy_params = memcpy.get_params(0), .link = link });
  @set_color_config(0, 0, link, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_tile_code(1, 0, "receiver.csl", .{ .memcpy_params = memcpy.get_params(1), .link = link });
  @set_color_config(1, 0, link, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @export_name("main", fn()void);
  @export_name("out", [*]u32, true);
}
"""

SENDER = """
param memcpy_params;
param link: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const ctrl = @import_module("<control>");
const oq = @get_output_queue(2);
var out = @zeros([8]u32);
var out_ptr: [*]u32 = &out;
const data = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 1, .output_queue = oq }
                      else .{ .extent = 1, .fabric_color = link, .output_queue = oq });
const marks = @get_dsd(fabout_dsd, if (@is_arch("wse3"))
                       .{ .extent = 1, .control = true, .output_queue = oq }
                       else .{ .extent = 1, .control = true, .fabric_color = link,
                               .output_queue = oq });
fn main() void {
  @mov32(data, @as(u32, 11));
  @mov32(data, @as(u32, 12));
  @mov32(data, @as(u32, 13));
  @mov32(marks, ctrl.encode_control_task_payload(@get_control_task_id(40)));
  @mov32(data, @as(u32, 14));
  @mov32(data, @as(u32, 15));
  sys.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = link }); }
  @export_symbol(main);
  @export_symbol(out_ptr, "out");
}
"""

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
    (tmp_path / "layout.csl").write_text(LAYOUT)
    (tmp_path / "sender.csl").write_text(SENDER)
    (tmp_path / "receiver.csl").write_text(RECEIVER.replace("START", start)
                                           .replace("EXTRA", extra))
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def outputs(prog):
    """The receiver's `out` (8 u32) from the engine and from the reference."""
    r = SdkRuntime(prog)
    r.load()
    r.run()
    r.launch("main")
    got = np.zeros(16, np.uint32)
    r.memcpy_d2h(got, r.get_id("out"), 0, 0, 2, 1, 8, streaming=False)
    ref = Reference(prog)
    ref.launch("main")
    want = np.zeros(16, np.uint32)
    ref.memcpy_d2h(want, "out", 0, 0, 2, 1, 8)
    return got[8:], want[8:]


# the first op stops after 11, 12, 13; the second takes 14, 15; `stopped` ran once and the
# control task never
EXPECT = np.array([11, 12, 13, 0, 14, 15, 1, 0], np.uint32)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_control_wavelet_ends_the_op_and_activates_its_task(tmp_path, arch):
    got, want = outputs(compile_pair(tmp_path, arch))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_on_control_unblock_releases_a_blocked_task(tmp_path, arch):
    start = """@activate(stop_id);
  @mov32(B, in_dsd, .{ .async = true, .on_control = .{ .unblock = stop_id } });"""
    got, want = outputs(compile_pair(tmp_path, arch, start, "@block(stop_id);"))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_terminate_ends_the_op_and_its_completion_hook_fires(tmp_path, arch):
    start = """@mov32(B, in_dsd, .{ .async = true, .on_control = .{ .terminate = true },
                      .activate = stop_id });"""
    got, want = outputs(compile_pair(tmp_path, arch, start))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_synchronous_op_ends_at_a_control_wavelet_too(tmp_path, arch):
    start = "@mov32(B, in_dsd, .{ .on_control = .{ .activate = stop_id } });"
    got, want = outputs(compile_pair(tmp_path, arch, start))
    np.testing.assert_array_equal(got, EXPECT)
    np.testing.assert_array_equal(want, EXPECT)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_on_control_given_by_the_load_of_a_register(tmp_path, arch):
    start = """@load_to_dsr(in_dsr, in_dsd, .{ .async = true,
                                     .on_control = .{ .activate = stop_id } });
  @mov32(B, in_dsr);"""
    got, want = outputs(compile_pair(tmp_path, arch, start))
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
    e = err.value
    assert message in e.message, str(e)
    assert e.file.endswith("receiver.csl"), str(e)
    assert (e.line, e.col) == position((tmp_path / "receiver.csl").read_text(), where), str(e)
