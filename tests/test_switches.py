"""Fabric switches (spec 6.2, 6.6): `.switches` positions, `current_switch_pos`, `ring_mode`,
`pop_mode`, and the SWITCH_ADV / SWITCH_RST / NOP commands control wavelets carry through
each router they pass. Each program runs in check mode (engine and reference after every
command) and its results are checked by hand: which PE received which wavelets, in order."""

from __future__ import annotations

import numpy as np
import pytest

from wsejax import CslError, FabricFault, SdkRuntime
from wsejax.csl import compile_csl

ARCHES = ["wse2", "wse3"]

# A row of PEs on color 4: PE (SENDER, 0) runs sender.csl, the others recv.csl.
LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = WIDTH, .height = 1 });
const c: color = @get_color(COLOR);
layout {
  @set_rectangle(WIDTH, 1);
  for (@range(i16, WIDTH)) |x| {
    if (x == SENDER) {
      @set_tile_code(x, 0, "sender.csl", .{ .memcpy_params = memcpy.get_params(x), .c = c });
    } else {
      @set_tile_code(x, 0, "recv.csl", .{ .memcpy_params = memcpy.get_params(x), .c = c });
    }
  }
CONFIGS
  @export_name("got", [*]u32, true);
  @export_name("main", fn()void);
}
"""

SENDER = """
param memcpy_params;
param c: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const ctrl = @import_module("<control>");
const oq = @get_output_queue(2);
var got = @zeros([6]u32);
var got_ptr: [*]u32 = &got;
const data = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 1, .output_queue = oq }
                      else .{ .extent = 1, .fabric_color = c, .output_queue = oq });
const ctl = @get_dsd(fabout_dsd, if (@is_arch("wse3"))
                     .{ .extent = 1, .control = true, .output_queue = oq }
                     else .{ .extent = 1, .control = true, .fabric_color = c,
                             .output_queue = oq });
const adv = ctrl.encode_single_payload(ctrl.opcode.SWITCH_ADV, true, {}, 0);
const rst = ctrl.encode_single_payload(ctrl.opcode.SWITCH_RST, true, {}, 0);
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

# A receiver records, in order, each data wavelet and (as 100 + its data) each control
# wavelet that runs control task 40.
RECV = """
param memcpy_params;
param c: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const iq = @get_input_queue(2);
var got = @zeros([6]u32);
var got_ptr: [*]u32 = &got;
var n: u16 = 0;
const rx_id: data_task_id = if (@is_arch("wse2")) @get_data_task_id(c)
                            else @get_data_task_id(iq);
task rx(d: u32) void { got[n] = d; n += 1; }
task on_ctrl(d: u16) void { got[n] = 100 + @as(u32, d); n += 1; }
fn main() void { sys.unblock_cmd_stream(); }
comptime {
  @bind_data_task(rx, rx_id);
  @bind_control_task(on_ctrl, @get_control_task_id(40));
  if (@is_arch("wse3")) { @initialize_queue(iq, .{ .color = c }); }
  @export_symbol(main);
  @export_symbol(got_ptr, "got");
}
"""

RECV_FROM = {"W": ".{ .rx = .{ EAST }, .tx = .{ RAMP } }",
             "E": ".{ .rx = .{ WEST }, .tx = .{ RAMP } }"}


def compile_row(tmp_path, configs: str, send: str, arch: str, width=3, sender=1, color=4):
    layout = LAYOUT.replace("WIDTH", str(width)).replace("SENDER", str(sender)) \
        .replace("COLOR", str(color)).replace("CONFIGS", configs)
    (tmp_path / "layout.csl").write_text(layout)
    (tmp_path / "sender.csl").write_text(SENDER.replace("SEND", send))
    (tmp_path / "recv.csl").write_text(RECV)
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def received(prog) -> np.ndarray:
    """Each PE's `got` after `main`, engine and reference compared after every command."""
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    r.launch("main")
    w = prog.width
    out = np.zeros(w * 6, np.uint32)
    r.memcpy_d2h(out, r.get_id("got"), 0, 0, w, 1, 6, streaming=False)
    return out.reshape(w, 6)


def receivers(switches: str, routes: str = ".rx = .{ RAMP }, .tx = .{ EAST }") -> str:
    """The configs of a 3-PE row whose middle PE sends, with `switches` at the sender."""
    return f"""
  @set_color_config(0, 0, c, .{{ .routes = {RECV_FROM["W"]} }});
  @set_color_config(2, 0, c, .{{ .routes = {RECV_FROM["E"]} }});
  @set_color_config(1, 0, c, .{{ .routes = .{{ {routes} }}{switches} }});
"""


STEER = """
  @mov32(data, 1);
  @mov32(ctl, adv);
  @mov32(data, 2);
  @mov32(ctl, adv);
  @mov32(data, 3);
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_control_wavelet_moves_the_switch_for_the_wavelets_after_it(tmp_path, arch):
    # position 0 sends EAST, position 1 WEST; ring mode wraps 1 -> 0
    prog = compile_row(tmp_path, receivers(", .switches = .{ .pos1 = .{ .tx = WEST }, "
                                           ".ring_mode = true }"), STEER, arch)
    got = received(prog)
    np.testing.assert_array_equal(got[0], [2, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[2], [1, 3, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_switch_fields_beside_rx_and_tx_are_the_older_spelling(tmp_path, arch):
    prog = compile_row(tmp_path, receivers(
        "", ".rx = .{ RAMP }, .tx = .{ EAST }, .pos1 = .{ .tx = WEST }, .ring_mode = true, "
        ".pop_mode = .{ .no_pop = true }"), STEER, arch)
    got = received(prog)
    np.testing.assert_array_equal(got[0], [2, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[2], [1, 3, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_without_ring_mode_the_switch_stays_at_its_last_position(tmp_path, arch):
    prog = compile_row(tmp_path, receivers(", .switches = .{ .pos1 = .{ .tx = WEST } }"),
                       STEER, arch)
    got = received(prog)
    np.testing.assert_array_equal(got[0], [2, 3, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[2], [1, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_current_switch_pos_and_an_invalid_position(tmp_path, arch):
    # starts at 1 (WEST); pos2 is invalid, so the next advance wraps to 0 (EAST), then 1 again
    prog = compile_row(tmp_path, receivers(
        ", .switches = .{ .pos1 = .{ .tx = WEST }, .pos2 = .{ .invalid = true }, "
        ".pos3 = .{ .tx = .{ EAST, WEST } }, .current_switch_pos = 1, .ring_mode = true }"),
        STEER, arch)
    got = received(prog)
    np.testing.assert_array_equal(got[0], [1, 3, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[2], [2, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_switch_rst_returns_to_position_zero_and_a_position_may_multicast(tmp_path, arch):
    send = """
  @mov32(ctl, adv);
  @mov32(data, 1);
  @mov32(ctl, adv);
  @mov32(data, 2);
  @mov32(ctl, rst);
  @mov32(data, 3);
"""
    prog = compile_row(tmp_path, receivers(
        ", .switches = .{ .pos1 = .{ .tx = WEST }, .pos2 = .{ .tx = .{ WEST, EAST } } }"),
        send, arch)
    got = received(prog)
    np.testing.assert_array_equal(got[0], [1, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[2], [2, 3, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_control_wavelet_reaches_the_ce_of_the_position_it_arrived_under(tmp_path, arch):
    # ce_ignore false: each control wavelet runs task 40 where the old position sends it
    send = """
  @mov32(ctl, ctrl.encode_single_payload(ctrl.opcode.SWITCH_ADV, false,
                                         @get_control_task_id(40), 7));
  @mov32(ctl, ctrl.encode_single_payload(ctrl.opcode.SWITCH_ADV, false,
                                         @get_control_task_id(40), 8));
  @mov32(data, 5);
"""
    prog = compile_row(tmp_path, receivers(", .switches = .{ .pos1 = .{ .tx = WEST }, "
                                           ".ring_mode = true }"), send, arch)
    got = received(prog)
    np.testing.assert_array_equal(got[0], [108, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[2], [107, 5, 0, 0, 0, 0])


def chain(pop_mode: str) -> str:
    """PE 0 sends east through PE 1 (whose switch has `pop_mode`) to PE 2."""
    return f"""
  @set_color_config(0, 0, c, .{{ .routes = .{{ .rx = .{{ RAMP }}, .tx = .{{ EAST }} }} }});
  @set_color_config(1, 0, c, .{{ .routes = .{{ .rx = .{{ WEST }}, .tx = .{{ EAST }} }},
                                .switches = .{{ .pop_mode = .{{ .{pop_mode} = true }} }} }});
  @set_color_config(2, 0, c, .{{ .routes = {RECV_FROM["E"]} }});
"""


# two commands: a NOP that keeps the wavelet from the CE, then a NOP that lets it through
POP_SEND = """
  @mov32(ctl, ctrl.encode_payload(2, [2]ctrl.opcode{ ctrl.opcode.NOP, ctrl.opcode.NOP },
                                  [2]bool{ true, false }, false, @get_control_task_id(40)));
  @mov32(data, 9);
"""


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("mode, popped", [("no_pop", False), ("always_pop", True),
                                          ("pop_on_advance", False),
                                          ("pop_on_advance_nop", True)])
def test_pop_mode_decides_which_command_the_next_router_sees(tmp_path, arch, mode, popped):
    prog = compile_row(tmp_path, chain(mode), POP_SEND, arch, sender=0)
    got = received(prog)
    # popped at PE 1, the receiver sees the second NOP (ce_ignore clear): its task runs
    want = [100, 9] if popped else [9, 0]
    np.testing.assert_array_equal(got[2], want + [0] * 4)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_switch_that_sends_where_nothing_accepts_is_an_unroutable_wavelet(tmp_path, arch):
    # position 1 sends SOUTH, off the 3x1 rectangle
    prog = compile_row(tmp_path, receivers(", .switches = .{ .pos1 = .{ .tx = SOUTH } }"),
                       STEER, arch)
    with pytest.raises(FabricFault, match=r"unroutable wavelet on color 4.*PE \(1, 0\)"):
        received(prog)


def test_local_color_config_switches(tmp_path):
    configs = receivers("").replace(
        "  @set_color_config(1, 0, c, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });\n",
        "")
    prog = compile_row(tmp_path, configs, STEER, "wse2")
    sender = (tmp_path / "sender.csl").read_text().replace(
        "comptime {", "comptime {\n  @set_local_color_config(c, .{ .routes = .{ .rx = .{ RAMP }, "
        ".tx = .{ EAST } }, .switches = .{ .pos1 = .{ .tx = WEST }, .ring_mode = true } });", 1)
    (tmp_path / "sender.csl").write_text(sender)
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch="wse2")
    got = received(prog)
    np.testing.assert_array_equal(got[0], [2, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[2], [1, 3, 0, 0, 0, 0])


@pytest.mark.parametrize("switches, arch, color, message", [
    (".pos1 = .{ .tx = WEST }", "wse3", 10,
     "color 10 cannot have switches on wse3 (only colors 0, 1"),
    (".pos1 = .{ .rx = .{ WEST, EAST } }", "wse2", 4, ".pos1.rx takes a single direction"),
    (".pos1 = .{ .tx = WEST }, .current_switch_pos = 2", "wse2", 4,
     ".current_switch_pos = 2 names an invalid position"),
    (".pos1 = .{ .tx = WEST }, .current_switch_pos = 4", "wse2", 4,
     ".current_switch_pos = 4 is out of range"),
    (".pos4 = .{ .tx = WEST }", "wse2", 4, ".switches has no field .pos4"),
    (".pos1 = .{ .tx = 3 }", "wse2", 4, ".pos1.tx takes directions"),
    (".pos1 = .{ .invalid = false }", "wse2", 4, ".invalid takes true"),
    (".pop_mode = .{ .sometimes = true }", "wse2", 4, ".pop_mode takes one of"),
    (".ring_mode = 1", "wse2", 4, ".ring_mode takes a bool"),
])
def test_bad_switches_are_located_errors(tmp_path, switches, arch, color, message):
    with pytest.raises(CslError, match=r"layout\.csl:\d+:\d+") as err:
        compile_row(tmp_path, receivers(f", .switches = .{{ {switches} }}"), STEER, arch,
                    color=color)
    assert message in str(err.value)


def test_a_routes_field_that_does_not_exist_is_located(tmp_path):
    with pytest.raises(CslError, match=r"layout\.csl:\d+:\d+") as err:
        compile_row(tmp_path, receivers("", routes=".rx = .{ RAMP }, .tx = .{ EAST }, "
                                                   ".color_swap_z = true"), STEER, "wse2")
    assert ".routes has no field .color_swap_z (it takes .rx, .tx, .color_swap_x" in str(
        err.value)
