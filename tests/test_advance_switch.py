"""A fabout DSD's `.advance_switch = true` (spec 6.2): once the DSD's last wavelet has left the
sender's router, that router's switch advances; the wavelets before it, and the last one
itself, follow the position in force before. Each program runs in check mode (engine and
reference after every command); which PE received which wavelets is checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_switches import LAYOUT, RECV, received, receivers

from wsejax.csl import compile_csl

ARCHES = ["wse2", "wse3"]

# PE (1, 0) sends on color 4: `two` (extent 2) and `one` (extent 1) advance the switch after
# their last wavelet, `data` does not, `ctl` sends a control wavelet and advances too.
SENDER = """
param memcpy_params;
param c: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const ctrl = @import_module("<control>");
const oq = @get_output_queue(2);
var got = @zeros([6]u32);
var got_ptr: [*]u32 = &got;
var src = [4]u32{ 1, 2, 3, 4 };
const first_two = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> src[i] });
fn out(comptime n: u16, comptime control: bool, comptime advance: bool) fabout_dsd {
  if (@is_arch("wse3")) {
    return @get_dsd(fabout_dsd, .{ .extent = n, .output_queue = oq, .control = control,
                                   .advance_switch = advance });
  }
  return @get_dsd(fabout_dsd, .{ .extent = n, .fabric_color = c, .output_queue = oq,
                                 .control = control, .advance_switch = advance });
}
const two = out(2, false, true);
const one = out(1, false, true);
const data = out(1, false, false);
const ctl = out(1, true, true);
const adv = ctrl.encode_single_payload(ctrl.opcode.SWITCH_ADV, true, {}, 0);
fn main() void {
  SEND
  sys.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = c }); }
  @export_symbol(main);
  @export_symbol(got_ptr, "got");
}
"""


def run_row(tmp_path, configs: str, send: str, arch: str) -> np.ndarray:
    layout = LAYOUT.replace("WIDTH", "3").replace("SENDER", "1").replace("COLOR", "4") \
        .replace("CONFIGS", configs)
    (tmp_path / "layout.csl").write_text(layout)
    (tmp_path / "sender.csl").write_text(SENDER.replace("SEND", send))
    (tmp_path / "recv.csl").write_text(RECV)
    return received(compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch))


@pytest.mark.parametrize("arch", ARCHES)
def test_the_switch_advances_after_the_last_wavelet_of_the_dsd(tmp_path, arch):
    # position 0 sends EAST, position 1 WEST: both wavelets of `two` go EAST, `data` WEST
    got = run_row(tmp_path, receivers(", .switches = .{ .pos1 = .{ .tx = WEST } }"),
                  "@mov32(two, first_two);\n  @mov32(data, 3);\n  @mov32(data, 4);", arch)
    np.testing.assert_array_equal(got[2], [1, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[0], [3, 4, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_each_advancing_send_moves_the_switch_once_and_ring_mode_wraps(tmp_path, arch):
    got = run_row(tmp_path, receivers(", .switches = .{ .pos1 = .{ .tx = WEST }, "
                                      ".ring_mode = true }"),
                  "@mov32(two, first_two);\n  @mov32(one, 3);\n  @mov32(data, 4);", arch)
    np.testing.assert_array_equal(got[2], [1, 2, 4, 0, 0, 0])
    np.testing.assert_array_equal(got[0], [3, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_without_a_next_position_the_switch_stays(tmp_path, arch):
    got = run_row(tmp_path, receivers(", .switches = .{ .pos1 = .{ .tx = WEST } }"),
                  "@mov32(one, 1);\n  @mov32(one, 2);\n  @mov32(data, 3);", arch)
    np.testing.assert_array_equal(got[2], [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[0], [2, 3, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_control_wavelet_runs_its_command_then_the_dsd_advances_again(tmp_path, arch):
    # the control wavelet leaves under position 0 (EAST; its ce_ignore keeps it from the CE),
    # SWITCH_ADV moves 0 -> 1 and `.advance_switch` 1 -> 2 (NORTH is off the row: pos2 sends
    # WEST too, pos1 EAST, so only two advances reach WEST)
    got = run_row(tmp_path, receivers(", .switches = .{ .pos1 = .{ .tx = EAST }, "
                                      ".pos2 = .{ .tx = WEST } }"),
                  "@mov32(ctl, adv);\n  @mov32(data, 5);", arch)
    np.testing.assert_array_equal(got[2], [0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[0], [5, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_color_without_switches_has_nothing_to_advance(tmp_path, arch):
    got = run_row(tmp_path, receivers(""),
                  "@mov32(two, first_two);\n  @mov32(one, 3);\n  @mov32(data, 4);", arch)
    np.testing.assert_array_equal(got[2], [1, 2, 3, 4, 0, 0])
    np.testing.assert_array_equal(got[0], [0, 0, 0, 0, 0, 0])
