"""`<tile_config>.color_config` (spec 6.4, 11): a PE's program rewrites position 0 of a color's
routes at its own router (`reset_routes`, `set_io_direction`, `clear_io_direction`,
`toggle_io_direction`, by color or by `get_color_config_addr`). Each program runs in check mode
(engine and reference compared after every command), its results checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_files, launched, read, row_of_three_layout

from wsejax import CslError, FabricFault

ARCHES = ["wse2", "wse3"]

# PE 0 sends east along a row of three PEs on color 4: 1, a TEARDOWN command, 2. Every PE's
# teardown handler records 50 + the colors in teardown there and exits; PE 1's handler first
# runs EDIT on its own router (and PE 1's main runs MAINEDIT before it unblocks memcpy).
LAYOUT = row_of_three_layout()

NODE = """
param memcpy_params;
param c: color;
param x: i16;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const ctrl = @import_module("<control>");
const tc = @import_module("<tile_config>");
const cc = tc.color_config;
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
fn on_teardown() void {
  got[n] = 50 + tc.teardown.get_pending();
  n += 1;
  if (x == 1) {
    EDIT
  }
  tc.teardown.exit(c);
}
fn main() void {
  if (x == 0) {
    @mov32(data, 1);
    @mov32(ctl, ctrl.encode_single_payload(ctrl.opcode.TEARDOWN, true, {}, 0));
    @mov32(data, 2);
  }
  if (x == 1) {
    MAINEDIT
  }
  sys.unblock_cmd_stream();
}
comptime {
  if (x != 0) { @bind_data_task(rx, rx_id); }
  if (@is_arch("wse3")) {
    if (x == 0) { @initialize_queue(oq, .{ .color = c }); }
    else { @initialize_queue(iq, .{ .color = c }); }
  }
  @set_teardown_handler(on_teardown, c);
  @export_symbol(main);
  @export_symbol(got_ptr, "got");
}
"""


def compile_row(tmp_path, arch, edit, main_edit=""):
    return compile_files(tmp_path, {
        "layout.csl": LAYOUT,
        "node.csl": NODE.replace("MAINEDIT", main_edit).replace("EDIT", edit)}, arch)


def run_row(tmp_path, arch, edit, main_edit="") -> np.ndarray:
    """Each PE's `got` (`[3, 6]`) after `main`, run in check mode."""
    return read(launched(compile_row(tmp_path, arch, edit, main_edit), check=True), "got", 6,
                np.uint32)[0]


DOWN = 50 + (1 << 4)    # what a handler records: color 4 in teardown


@pytest.mark.parametrize("arch", ARCHES)
def test_without_a_rewrite_both_wavelets_reach_the_end_of_the_row(tmp_path, arch):
    out = run_row(tmp_path, arch, "")
    assert out.tolist() == [[DOWN, 0, 0, 0, 0, 0], [DOWN, 0, 0, 0, 0, 0],
                            [1, DOWN, 2, 0, 0, 0]]


@pytest.mark.parametrize("arch", ARCHES)
def test_reset_routes_in_the_teardown_handler_sends_later_wavelets_the_new_way(tmp_path, arch):
    # PE 1 now takes the color off the fabric: 2 stops there
    out = run_row(tmp_path, arch, "cc.reset_routes(c, .{ .rx = WEST, .tx = RAMP });")
    assert out.tolist() == [[DOWN, 0, 0, 0, 0, 0], [DOWN, 2, 0, 0, 0, 0],
                            [1, DOWN, 0, 0, 0, 0]]


@pytest.mark.parametrize("arch", ARCHES)
def test_reset_routes_takes_arrays_and_the_config_address(tmp_path, arch):
    edit = ("const addr = cc.get_color_config_addr(c);\n"
            "cc.reset_routes(addr, .{ .rx = [1]direction{ WEST }, "
            ".tx = [2]direction{ RAMP, EAST } });")
    out = run_row(tmp_path, arch, edit)
    assert out.tolist() == [[DOWN, 0, 0, 0, 0, 0], [DOWN, 2, 0, 0, 0, 0],
                            [1, DOWN, 2, 0, 0, 0]]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_rewrite_outside_teardown_takes_effect_at_once(tmp_path, arch):
    # PE 1 rewrites its router when main starts, before the first wavelet reaches it: all of
    # PE 0's wavelets, the TEARDOWN command too, end at PE 1, and PE 2 sees none
    out = run_row(tmp_path, arch, "", "cc.reset_routes(c, .{ .rx = WEST, .tx = RAMP });")
    assert out.tolist() == [[DOWN, 0, 0, 0, 0, 0], [1, DOWN, 2, 0, 0, 0],
                            [0, 0, 0, 0, 0, 0]]


@pytest.mark.parametrize("arch", ARCHES)
def test_set_io_direction_adds_a_port(tmp_path, arch):
    out = run_row(tmp_path, arch, "cc.set_io_direction(c, cc.fabric_io.TX_RAMP);")
    assert out.tolist() == [[DOWN, 0, 0, 0, 0, 0], [DOWN, 2, 0, 0, 0, 0],
                            [1, DOWN, 2, 0, 0, 0]]


@pytest.mark.parametrize("arch", ARCHES)
def test_clear_io_direction_removes_a_port(tmp_path, arch):
    edit = ("cc.set_io_direction(cc.get_color_config_addr(c), .TX_RAMP);\n"
            "cc.clear_io_direction(c, .TX_EAST);")
    out = run_row(tmp_path, arch, edit)
    assert out.tolist() == [[DOWN, 0, 0, 0, 0, 0], [DOWN, 2, 0, 0, 0, 0],
                            [1, DOWN, 0, 0, 0, 0]]


@pytest.mark.parametrize("arch", ARCHES)
def test_toggle_io_direction_flips_a_port_each_call(tmp_path, arch):
    # TX_EAST off, TX_RAMP on, TX_RAMP off and on again: RAMP alone
    edit = ("cc.toggle_io_direction(c, .TX_EAST);\n"
            "cc.toggle_io_direction(c, .TX_RAMP);\n"
            "cc.toggle_io_direction(c, .TX_RAMP);\n"
            "cc.toggle_io_direction(c, .TX_RAMP);")
    out = run_row(tmp_path, arch, edit)
    assert out.tolist() == [[DOWN, 0, 0, 0, 0, 0], [DOWN, 2, 0, 0, 0, 0],
                            [1, DOWN, 0, 0, 0, 0]]


@pytest.mark.parametrize("arch", ARCHES)
def test_clearing_the_rx_port_leaves_later_wavelets_stuck(tmp_path, arch):
    prog = compile_row(tmp_path, arch, "cc.clear_io_direction(c, .RX_WEST);")
    with pytest.raises(Exception, match="unroutable wavelet on color 4"):
        launched(prog, check=True)


def test_wse3_reset_routes_takes_a_single_rx_direction(tmp_path):
    edit = "cc.reset_routes(c, .{ .rx = [2]direction{ WEST, EAST }, .tx = RAMP });"
    with pytest.raises(CslError, match=r"node\.csl:\d+:\d+: .*on wse3 an \.rx array holds a "
                                       r"single direction \(\[1\]direction\), got 2"):
        compile_row(tmp_path, "wse3", edit)
    compile_row(tmp_path, "wse2", edit)


@pytest.mark.parametrize("edit, message", [
    ("cc.set_io_direction(@get_color(30), .TX_RAMP);", r"color 30 is out of range \(0 to 23\)"),
    ("cc.set_io_direction(c, .SIDEWAYS);",
     r"color_config.set_io_direction takes a color_config.fabric_io direction"),
    ("cc.reset_routes(c, .{ .rx = WEST, .tx = 3 });",
     r"color_config.reset_routes: .tx takes a direction or an array of directions"),
])
def test_bad_color_config_calls_are_located_errors(tmp_path, edit, message):
    with pytest.raises(CslError, match=r"node\.csl:\d+:\d+: .*" + message):
        compile_row(tmp_path, "wse2", edit)


# A color known only at run time: every color the program configures moves hop by hop, and
# the call rewrites the one it names at run time.

@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("call", [
    "cc.reset_routes(@get_color(k), .{ .rx = WEST, .tx = RAMP });",
    "cc.reset_routes(cc.get_color_config_addr(@get_color(k)), .{ .rx = WEST, .tx = RAMP });",
    "cc.set_io_direction(@get_color(k), .TX_RAMP); cc.clear_io_direction(@get_color(k), "
    ".TX_EAST);",
])
def test_a_color_known_at_run_time_is_rewritten_at_once(tmp_path, arch, call):
    # as test_a_rewrite_outside_teardown_takes_effect_at_once, the color a runtime u16
    out = run_row(tmp_path, arch, "", "var k: u16 = 3;\n    k += 1;\n    " + call)
    assert out.tolist() == [[DOWN, 0, 0, 0, 0, 0], [1, DOWN, 2, 0, 0, 0],
                            [0, 0, 0, 0, 0, 0]]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_color_known_at_run_time_in_the_teardown_handler(tmp_path, arch):
    # as test_reset_routes_in_the_teardown_handler_sends_later_wavelets_the_new_way
    out = run_row(tmp_path, arch, "var k: u16 = 4;\n    "
                  "cc.reset_routes(@get_color(k), .{ .rx = WEST, .tx = RAMP });")
    assert out.tolist() == [[DOWN, 0, 0, 0, 0, 0], [DOWN, 2, 0, 0, 0, 0],
                            [1, DOWN, 0, 0, 0, 0]]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_color_known_at_run_time_that_the_program_does_not_route_faults(tmp_path, arch):
    prog = compile_row(tmp_path, arch, "", "var k: u16 = 7;\n    "
                       "cc.toggle_io_direction(@get_color(k), .TX_RAMP);")
    with pytest.raises(FabricFault, match=r"color_config.toggle_io_direction: the color given "
                       r"at run time is not one the program routes \(a color known only at "
                       r"run time may name only a color that the layout or a PE program "
                       r"configures, or one with switches or teardown\)") as err:
        launched(prog, check=True)
    assert err.value.pes == [(1, 0)]


def test_a_runtime_number_is_not_a_color(tmp_path):
    with pytest.raises(CslError, match=r"node\.csl:\d+:\d+: .*color_config.reset_routes takes a "
                                       r"color, got"):
        compile_row(tmp_path, "wse2", "var k: u16 = 4; cc.reset_routes(k, .{ .tx = RAMP });")
