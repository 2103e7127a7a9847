"""Teardown (spec 6.4): `.teardown = true`, the TEARDOWN command of control wavelets,
`@set_teardown_handler` and task 29, and `<tile_config>.teardown` (`exit`, `is_pending`,
`get_pending`, `get_task_id`). A router whose color is in teardown moves none of its
wavelets until its PE exits teardown. Each program runs in check mode (engine and reference
compared after every command), its results checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_files, launched, read, row_of_three_layout

from wsejax import CslError

ARCHES = ["wse2", "wse3"]

# PE 0 sends east along a row of three PEs on color 4; PE 2 receives.
LAYOUT = row_of_three_layout(".first = x == 0", "LAST")

NODE = """
param memcpy_params;
param c: color;
param first: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const ctrl = @import_module("<control>");
const tc = @import_module("<tile_config>");
const oq = @get_output_queue(2);
const iq = @get_input_queue(2);
var got = @zeros([6]u32);
var got_ptr: [*]u32 = &got;
var n: u16 = 0;
const data = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 1, .output_queue = oq }
                      else .{ .extent = 1, .fabric_color = c, .output_queue = oq });
const ctl = @get_dsd(fabout_dsd, if (@is_arch("wse3"))
                     .{ .extent = 1, .control = true, .output_queue = oq }
                     else .{ .extent = 1, .control = true, .fabric_color = c,
                             .output_queue = oq });
const rx_id: data_task_id = if (@is_arch("wse2")) @get_data_task_id(c)
                            else @get_data_task_id(iq);
task rx(d: u32) void { got[n] = d; n += 1; }
HANDLER
fn main() void {
  if (first) {
    SEND
  } else {
    RECV
  }
  sys.unblock_cmd_stream();
}
comptime {
  if (!first) { @bind_data_task(rx, rx_id); }
  if (@is_arch("wse3")) {
    if (first) { @initialize_queue(oq, .{ .color = c }); }
    else { @initialize_queue(iq, .{ .color = c }); }
  }
  BIND
  @export_symbol(main);
  @export_symbol(got_ptr, "got");
}
"""

# every PE records 50 + the colors it has in teardown, then takes its color out of it
HANDLER = """
fn on_teardown() void {
  got[n] = 50 + tc.teardown.get_pending();
  n += 1;
  tc.teardown.exit(c);
}
"""

TEARDOWN_IN_THE_MIDDLE = """
    @mov32(data, 1);
    @mov32(ctl, ctrl.encode_single_payload(ctrl.opcode.TEARDOWN, true, {}, 0));
    @mov32(data, 2);
"""


def compile_row(tmp_path, arch, send="", recv="", handler="", bind="", last=""):
    return compile_files(tmp_path, {
        "layout.csl": LAYOUT.replace("LAST", last),
        "node.csl": NODE.replace("HANDLER", handler).replace("SEND", send)
        .replace("RECV", recv).replace("BIND", bind)}, arch)


def got(r) -> np.ndarray:
    """Each PE's `got` (`[3, 6]`)."""
    return read(r, "got", 6, np.uint32)[0]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_teardown_command_suspends_each_router_it_passes_until_its_handler_exits(
        tmp_path, arch):
    prog = compile_row(tmp_path, arch, send=TEARDOWN_IN_THE_MIDDLE, handler=HANDLER,
                       bind="@set_teardown_handler(on_teardown, c);")
    out = got(launched(prog, check=True))
    # each router the command passed ran its PE's handler once (color 4: 50 + 16); the
    # receiver took 1 before its router went into teardown and 2 after every router left it
    np.testing.assert_array_equal(out[0], [66, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(out[1], [66, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(out[2], [1, 66, 2, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_teardown_true_holds_the_color_until_the_program_exits(tmp_path, arch):
    recv = """
    got[4] = tc.teardown.get_pending();
    got[5] = @as(u32, tc.teardown.is_pending(c));
    tc.teardown.exit(c);
"""
    prog = compile_row(tmp_path, arch, send="@mov32(data, 7); @mov32(data, 8);",
                       recv=recv, last=", .teardown = true")
    out = got(launched(prog, check=True))
    np.testing.assert_array_equal(out[2], [7, 8, 0, 0, 16, 1])
    # PE 1's color never was in teardown
    np.testing.assert_array_equal(out[1], [0, 0, 0, 0, 0, 0])


def test_a_color_left_in_teardown_holds_its_wavelets(tmp_path):
    prog = compile_row(tmp_path, "wse2", send="@mov32(data, 7);", last=", .teardown = true")
    r = launched(prog, check=True)
    # the wavelet waits in PE 2's router: nothing arrives, and nothing faults
    np.testing.assert_array_equal(got(r)[2], [0] * 6)


def test_activating_get_task_id_runs_the_handlers_of_the_colors_in_teardown(tmp_path):
    # PE 2 starts with its color in teardown and activates task 29 itself
    prog = compile_row(tmp_path, "wse2", send="@mov32(data, 7); @mov32(data, 8);",
                       recv="@activate(tc.teardown.get_task_id());", handler=HANDLER,
                       bind="@set_teardown_handler(on_teardown, c);", last=", .teardown = true")
    out = got(launched(prog, check=True))
    np.testing.assert_array_equal(out[2], [66, 7, 8, 0, 0, 0])
    np.testing.assert_array_equal(out[0], [0] * 6)


def test_teardown_errors_are_located(tmp_path):
    with pytest.raises(CslError, match=r"node\.csl:\d+:\d+: .*color 4 has a teardown handler "
                                       "already"):
        compile_row(tmp_path, "wse2", handler=HANDLER,
                    bind="@set_teardown_handler(on_teardown, c);\n"
                         "  @set_teardown_handler(on_teardown, c);")
    with pytest.raises(CslError, match=r"node\.csl:\d+:\d+: .*teardown.exit takes a color "
                                       "known at compile time"):
        compile_row(tmp_path, "wse2", recv="var k: u16 = 4; tc.teardown.exit(@get_color(k));")
    with pytest.raises(CslError, match=r"layout\.csl:\d+:\d+: .*\.teardown takes a bool"):
        compile_row(tmp_path, "wse2", last=", .teardown = 1")
