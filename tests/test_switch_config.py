"""`<tile_config>.switch_config` (spec 6.2, 6.4, 11): a PE's program rewrites the switch state
of a color at its own router (positions, current position, pop mode, by color or by address).
Each program runs in check mode (engine and reference compared after every command), its
results checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import position, row_of_three_layout

from wsejax import CslError, SdkRuntime
from wsejax.csl import compile_csl
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

# PE 0 sends east along a row of three PEs on color 4: 1, a TEARDOWN command, MORE, 2. Every
# PE's teardown handler records 50 + the colors in teardown there and exits; PE 1's handler
# first runs EDIT on its own router.
LAYOUT = row_of_three_layout()

NODE = """
param memcpy_params;
param c: color;
param x: i16;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const ctrl = @import_module("<control>");
const tc = @import_module("<tile_config>");
const sc = tc.switch_config;
const oq = @get_output_queue(2);
const iq = @get_input_queue(2);
var got = @zeros([6]u32);
var got_ptr: [*]u32 = &got;
var n: u16 = 0;
var where: u16 = 1;
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
  if (x == 1 and n == 1) {
    EDIT
  }
  tc.teardown.exit(c);
}
fn main() void {
  if (x == 0) {
    @mov32(data, 1);
    @mov32(ctl, ctrl.encode_single_payload(ctrl.opcode.TEARDOWN, true, {}, 0));
    MORE
    @mov32(data, 2);
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


def compile_row(tmp_path, arch, edit, more=""):
    (tmp_path / "layout.csl").write_text(LAYOUT)
    (tmp_path / "node.csl").write_text(NODE.replace("MORE", more).replace("EDIT", edit))
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def run_row(tmp_path, arch, edit, more="") -> list:
    r = SdkRuntime(compile_row(tmp_path, arch, edit, more), check=True)
    r.load()
    r.run()
    r.launch("main")
    out = np.zeros(18, np.uint32)
    r.memcpy_d2h(out, r.get_id("got"), 0, 0, 3, 1, 6, streaming=False)
    r.stop()
    return out.reshape(3, 6).tolist()


DOWN = 50 + (1 << 4)    # what a handler records: color 4 in teardown
# without a rewrite both data wavelets reach the end of the row
THROUGH = [[DOWN, 0, 0, 0, 0, 0], [DOWN, 0, 0, 0, 0, 0], [1, DOWN, 2, 0, 0, 0]]
# PE 1 takes the color off the fabric: 2 stops there
STOPPED = [[DOWN, 0, 0, 0, 0, 0], [DOWN, 2, 0, 0, 0, 0], [1, DOWN, 0, 0, 0, 0]]


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("edit, want", [
    ("", THROUGH),
    # position 1: rx from position 0 (WEST), tx RAMP; the switch moves there
    ("sc.set_tx_switch_pos1(c, RAMP);\nsc.set_current_switch_position(c, 1);", STOPPED),
    # both sides given; the position known at run time
    ("sc.set_rx_switch_pos3(c, WEST);\nsc.set_tx_switch_pos3(c, RAMP);\n"
     "where = 3;\nsc.set_current_switch_position(c, where);", STOPPED),
    # by the address of a setting, and set_switch_pos
    ("const addr = sc.get_switch_config_addr(c, sc.switch_pos);\n"
     "sc.set_switch_pos(sc.switch_pos.POS2, addr, RAMP, sc.switch_select.OUTPUT);\n"
     "sc.set_current_switch_position(sc.get_color_config_addr(c), 2);", STOPPED),
    # back to position 0
    ("sc.set_tx_switch_pos1(c, RAMP);\nsc.set_current_switch_position(c, 1);\n"
     "sc.clear_current_position(c);", THROUGH),
    # positions made invalid again hold position 0's ports
    ("sc.set_tx_switch_pos1(c, RAMP);\nsc.set_invalid_for_all_switch_positions(c);\n"
     "sc.set_current_switch_position(c, 1);", THROUGH),
])
def test_a_rewrite_in_the_teardown_handler_sends_later_wavelets_the_new_way(tmp_path, arch,
                                                                           edit, want):
    assert run_row(tmp_path, arch, edit) == want


def test_wse3_sets_both_sides_of_a_position_at_once(tmp_path):
    edit = ("sc.set_rxtx_switch_pos2(c, WEST, RAMP);\n"
            "sc.set_rxtx_switch_pos(sc.switch_pos.POS1, c, EAST, RAMP);\n"
            "sc.set_current_switch_position(c, 2);")
    assert run_row(tmp_path, "wse3", edit) == STOPPED


# after the TEARDOWN, PE 0 sends a control wavelet whose commands are NOP then TEARDOWN (none
# reaching a CE): each router runs its current command; one that pops passes the rest on
NOP_TEARDOWN = ("@mov32(ctl, ctrl.encode_payload(2, [2]ctrl.opcode{ ctrl.opcode.NOP, "
                "ctrl.opcode.TEARDOWN }, [2]bool{ true, true }, true, {}));")


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("edit, want", [
    # nobody pops: every router runs the NOP
    ("", THROUGH),
    # PE 1 pops its NOP: PE 2 runs the TEARDOWN, and its handler records it again
    ("sc.set_pop_mode(c, sc.pop_mode.ALWAYS_POP);",
     [[DOWN, 0, 0, 0, 0, 0], [DOWN, 0, 0, 0, 0, 0], [1, DOWN, DOWN, 2, 0, 0]]),
    # a pop mode set and then set back
    ("sc.set_pop_mode(c, .ALWAYS_POP);\nsc.set_pop_mode(c, .NO_POP);", THROUGH),
])
def test_the_pop_mode_set_in_the_handler_decides_what_moves_on(tmp_path, arch, edit, want):
    assert run_row(tmp_path, arch, edit, NOP_TEARDOWN) == want


@pytest.mark.parametrize("arch, edit, where, message", [
    ("wse2", "sc.set_rxtx_switch_pos1(c, WEST, RAMP);", "sc.set_rxtx_switch_pos1",
     "switch_config.set_rxtx_switch_pos1 exists on wse3 and beyond only (this program is "
     "compiled for wse2)"),
    ("wse2", "sc.set_pop_mode(c, sc.pop_mode.CLEAR_MASK);", "CLEAR_MASK);",
     "switch_config.set_pop_mode(.CLEAR_MASK) is not supported: CLEAR_MASK is the mask"),
    ("wse3", "sc.set_current_switch_position(c, 4);", "4);",
     "switch_config.set_current_switch_position: position 4 does not exist (0 to 3)"),
    ("wse2", "sc.set_tx_switch_pos1(@get_color(where), RAMP);", "sc.set_tx_switch_pos1",
     "switch_config.set_tx_switch_pos1 takes a color known at compile time"),
    ("wse3", "sc.clear_current_position(@get_color(10));", "sc.clear_current_position",
     "color 10 cannot have switches on wse3"),
    ("wse2", "sc.set_switch_pos(2, c, RAMP, sc.switch_select.OUTPUT);", "2, c",
     "switch_config.set_switch_pos takes a switch_config.switch_pos known at compile time "
     "(.POS1, .POS2, .POS3), got"),
])
def test_misuse_is_located(tmp_path, arch, edit, where, message):
    with pytest.raises(CslError) as err:
        compile_row(tmp_path, arch, edit)
    e = err.value
    assert message in e.message, str(e)
    text = NODE.replace("EDIT", edit).replace("MORE", "")
    assert (e.line, e.col) == position(text, where), str(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_current_position_past_3_faults_the_pe(tmp_path, arch):
    prog = compile_row(tmp_path, arch, "where = 5;\nsc.set_current_switch_position(c, where);")
    r = SdkRuntime(prog)
    r.load()
    r.run()
    with pytest.raises(Exception, match="color 4 has no switch position past 3 at PE .1, 0."):
        r.launch("main")
        r.memcpy_d2h(np.zeros(18, np.uint32), r.get_id("got"), 0, 0, 3, 1, 6,
                     streaming=False)
    ref = Reference(prog)
    with pytest.raises(Exception, match="color 4 has no switch position past 3 at PE .1, 0."):
        ref.launch("main")


# after the TEARDOWN, PE 0 sends SWITCH_ADV (reaching no CE): PE 1, moved to its last valid
# position, goes back to 0 in ring mode and stays there without it
ADVANCE = ("@mov32(ctl, ctrl.encode_single_payload(ctrl.opcode.SWITCH_ADV, true, {}, 0));")
AT_1 = "sc.set_tx_switch_pos1(c, RAMP);\nsc.set_current_switch_position(c, 1);\n"


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("edit, want", [
    (AT_1 + "sc.set_ring_mode(c, sc.ring_mode.RING_MODE);", THROUGH),
    (AT_1, STOPPED),
    (AT_1 + "sc.set_ring_mode(c, .RING_MODE);\nsc.set_ring_mode(c, .NO_RING_MODE);", STOPPED),
])
def test_the_ring_mode_set_in_the_handler_decides_where_an_advance_goes(tmp_path, arch, edit,
                                                                       want):
    assert run_row(tmp_path, arch, edit, ADVANCE) == want
