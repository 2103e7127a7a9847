"""Control wavelets (spec 6.6): a fabout DSD with `.control = true`, the `<control>` library's
payload encoders, control tasks bound with `@bind_control_task`, and how a control wavelet
shares its color's inbox with data (`wsejax.fabric`). Engine and reference run every
program and must agree with numpy."""

from __future__ import annotations

import numpy as np
import pytest

from wsejax import CslError, FabricFault, SdkRuntime
from wsejax import dsl as csl
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
  @export_name("out", [*]f32, true);
}
"""

# The sender sends its values one wavelet at a time, then control payloads built by SEND.
SENDER = """
param memcpy_params;
param link: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const ctrl = @import_module("<control>");
const oq = @get_output_queue(2);
var vals = [5]f32 { 1.5, -2.0, 4.25, 0.5, 3.0 };
var out = @zeros([4]f32);
var out_ptr: [*]f32 = &out;
const data = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 1, .output_queue = oq }
                      else .{ .extent = 1, .fabric_color = link, .output_queue = oq });
const marks = @get_dsd(fabout_dsd, if (@is_arch("wse3"))
                       .{ .extent = 1, .control = true, .output_queue = oq }
                       else .{ .extent = 1, .control = true, .fabric_color = link,
                               .output_queue = oq });
fn main() void {
  SEND
  sys.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = link }); }
  @export_symbol(main);
  @export_symbol(out_ptr, "out");
}
"""

# The receiver keeps the largest value and counts the data wavelets; control task 40 stores
# them with its 16-bit data and finishes.
RECEIVER = """
param memcpy_params;
param link: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const iq = @get_input_queue(2);
var out = @zeros([4]f32);
var out_ptr: [*]f32 = &out;
var best: f32 = -100.0;
var seen: f32 = 0.0;
var finishes: f32 = 0.0;
const data_id: data_task_id = if (@is_arch("wse2")) @get_data_task_id(link)
                              else @get_data_task_id(iq);
task take(x: f32) void {
  if (x > best) { best = x; }
  seen += 1.0;
}
task finish(tag: u16) void {
  finishes += 1.0;
  out[0] = best;
  out[1] = seen;
  out[2] = @as(f32, tag);
  out[3] = finishes;
  sys.unblock_cmd_stream();
}
fn main() void {}
comptime {
  @bind_data_task(take, data_id);
  @bind_control_task(finish, @get_control_task_id(40));
  if (@is_arch("wse3")) { @initialize_queue(iq, .{ .color = link }); }
  @export_symbol(main);
  @export_symbol(out_ptr, "out");
}
"""

SEND_ALL = """
  for (@range(u16, 5)) |i| { @fmovs(data, vals[i]); }
  @mov32(marks, ctrl.encode_single_payload(ctrl.opcode.NOP, false,
                                           @get_control_task_id(40), 77));
"""


def compile_pair(tmp_path, send: str, arch: str, receiver: str = RECEIVER):
    (tmp_path / "layout.csl").write_text(LAYOUT)
    (tmp_path / "sender.csl").write_text(SENDER.replace("SEND", send))
    (tmp_path / "receiver.csl").write_text(receiver)
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def outputs(prog, n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The receiver's (PE (1, 0)'s) `out` (n f32) after `main`, from the engine and from the
    reference."""
    r = SdkRuntime(prog)
    r.load()
    r.run()
    r.launch("main")
    got = np.zeros(2 * n, np.float32)
    r.memcpy_d2h(got, r.get_id("out"), 0, 0, 2, 1, n, streaming=False)
    ref = Reference(prog)
    ref.launch("main")
    want = np.zeros(2 * n, np.float32)
    ref.memcpy_d2h(want, "out", 0, 0, 2, 1, n)
    return got[n:], want[n:]


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_control_wavelet_runs_its_task_after_the_data_before_it(tmp_path, arch):
    got, want = outputs(compile_pair(tmp_path, SEND_ALL, arch))
    expect = np.array([4.25, 5.0, 77.0, 1.0], np.float32)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(want, expect)


def test_a_control_wavelet_with_ce_ignore_or_no_entrypoint_activates_nothing(tmp_path):
    send = """
  @fmovs(data, vals[0]);
  @mov32(marks, ctrl.encode_single_payload(ctrl.opcode.NOP, true,
                                           @get_control_task_id(40), 5));
  @fmovs(data, vals[2]);
  @mov32(marks, ctrl.encode_single_payload(ctrl.opcode.NOP, false, {}, 6));
  @fmovs(data, vals[1]);
  @mov32(marks, ctrl.encode_control_task_payload(@get_control_task_id(40)));
"""
    got, want = outputs(compile_pair(tmp_path, send, "wse2"))
    # only the last control wavelet runs the task (tag 0: no data); every data wavelet counts
    expect = np.array([4.25, 3.0, 0.0, 1.0], np.float32)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(want, expect)


def test_a_blocked_channel_holds_the_control_wavelet_until_unblocked(tmp_path):
    # the receiver starts with its color blocked: neither data nor control gets through
    # until main unblocks it
    receiver = RECEIVER.replace("fn main() void {}", "fn main() void { @unblock(link); }") \
        .replace("@bind_data_task(take, data_id);", "@bind_data_task(take, data_id);\n"
                 "  @block(link);")
    got, want = outputs(compile_pair(tmp_path, SEND_ALL, "wse2", receiver))
    expect = np.array([4.25, 5.0, 77.0, 1.0], np.float32)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(want, expect)


def test_a_fabric_input_stops_at_a_control_wavelet_and_takes_the_data_after_it(tmp_path):
    # two data, a control wavelet, three data: the async fabin op reads all five values
    send = """
  @fmovs(data, vals[0]);
  @fmovs(data, vals[1]);
  @mov32(marks, ctrl.encode_control_task_payload(@get_control_task_id(41)));
  @fmovs(data, vals[2]);
  @fmovs(data, vals[3]);
  @fmovs(data, vals[4]);
"""
    receiver = """
param memcpy_params;
param link: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const iq = @get_input_queue(2);
var out = @zeros([4]f32);
var out_ptr: [*]f32 = &out;
var got = @zeros([5]f32);
var marks: f32 = 0.0;
const got_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{5} -> got[i] });
const inp = @get_dsd(fabin_dsd, .{ .extent = 5, .fabric_color = link, .input_queue = iq });
const done_id = @get_local_task_id(9);
task mark() void { marks += 1.0; }
task done() void {
  out[0] = got[0] + got[1];
  out[1] = got[2] + got[3] + got[4];
  out[2] = marks;
  sys.unblock_cmd_stream();
}
fn main() void {
  @fmovs(got_dsd, inp, .{ .async = true, .activate = done_id });
}
comptime {
  @block(link);
  @bind_local_task(done, done_id);
  @bind_control_task(mark, @get_control_task_id(41));
  @unblock(link);
  @export_symbol(main);
  @export_symbol(out_ptr, "out");
}
"""
    got, want = outputs(compile_pair(tmp_path, send, "wse2", receiver))
    expect = np.array([-0.5, 7.75, 1.0, 0.0], np.float32)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(want, expect)


def test_a_control_wavelet_naming_an_unbound_task_faults_the_receiver(tmp_path):
    send = """
  @mov32(marks, ctrl.encode_control_task_payload(@get_control_task_id(12)));
"""
    prog = compile_pair(tmp_path, send, "wse2")
    r = SdkRuntime(prog)
    r.load()
    r.run()
    with pytest.raises(FabricFault, match="names a control task ID that no control task") \
            as err:
        r.launch("main")
    assert (1, 0) in err.value.pes
    ref = Reference(prog)
    with pytest.raises(FabricFault, match="names a control task ID that no control task"):
        ref.launch("main")
    assert (1, 0) in ref.faults


PAYLOADS = """
param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const ctrl = @import_module("<control>");
var words = @zeros([4]u32);
var words_ptr: [*]u32 = &words;
fn main() void {
  words[0] = ctrl.encode_payload(1, .{ ctrl.opcode.TEARDOWN }, .{ true }, true, {});
  words[1] = ctrl.encode_control_task_payload(@get_control_task_id(45));
  words[2] = ctrl.encode_single_payload(ctrl.opcode.SWITCH_ADV, false,
                                        @get_control_task_id(3), 0xBEEF);
  words[3] = ctrl.encode_payload(2, .{ ctrl.opcode.SWITCH_RST, ctrl.opcode.SWITCH_ADV },
                                 .{ false, true }, false, @get_control_task_id(7));
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(main);
  @export_symbol(words_ptr, "words");
}
"""


def test_control_payloads_follow_the_documented_bit_layout(tmp_path):
    (tmp_path / "layout.csl").write_text("""
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 1, .height = 1 });
layout {
  @set_rectangle(1, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0) });
  @export_name("main", fn()void);
  @export_name("words", [*]u32, true);
}
""")
    (tmp_path / "pe.csl").write_text(PAYLOADS)
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True)
    r = SdkRuntime(prog)
    r.load()
    r.run()
    r.launch("main")
    words = np.zeros(4, np.uint32)
    r.memcpy_d2h(words, r.get_id("words"), 0, 0, 1, 1, 4, streaming=False)
    # the teardown payload the SDK documents: TEARDOWN, then NOPs, all ce_ignore, no task
    assert int(words[0]) == 0x09DF9249
    assert int(words[1]) == 45 << 16
    assert int(words[2]) == 0xBEEF | 3 << 16 | 1 << 22
    # commands 0 and 1 at bits 22 and 25 (ce_ignore of command 1 at bit 27)
    assert int(words[3]) == 7 << 16 | 2 << 22 | 1 << 25 | 1 << 27


@pytest.mark.parametrize("line, message", [
    ("comptime { const t = @get_control_task_id(64); }",
     "control task ID 64 is out of range (0 to 63)"),
    ("task f() void {}\ncomptime { @bind_control_task(f, @get_control_task_id(35)); }",
     "control task ID 35 is reserved by memcpy"),
    ("task f() void {}\ncomptime { @bind_control_task(f, @get_local_task_id(9)); }",
     "@bind_control_task takes a control task ID"),
    ("task f(a: u16, b: u16, c: u16) void {}\n"
     "comptime { @bind_control_task(f, @get_control_task_id(9)); }",
     "control task 'f'"),
    ("comptime { const d = @get_dsd(fabout_dsd, .{ .extent = 1, "
     ".fabric_color = @get_color(3), .control = 1 }); }",
     "fabout_dsd .control takes a comptime bool"),
    ("const ctrl = @import_module(\"<control>\");\n"
     "comptime { const w = ctrl.encode_payload(9, .{}, .{}, false, {}); }",
     "a control payload holds 0 to 8 commands, got 9"),
    ("const ctrl = @import_module(\"<control>\");\n"
     "comptime { const w = ctrl.encode_control_task_payload(@get_local_task_id(9)); }",
     "a control payload's entrypoint is a control task ID"),
])
def test_control_mistakes_are_located_errors(tmp_path, line, message):
    (tmp_path / "layout.csl").write_text("""
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 1, .height = 1 });
layout {
  @set_rectangle(1, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0) });
}
""")
    src = "param memcpy_params;\n" + line + "\n"
    (tmp_path / "pe.csl").write_text(src)
    with pytest.raises(CslError) as err:
        compile_csl(tmp_path / "layout.csl", memcpy=True)
    assert message in err.value.message, str(err.value)
    assert err.value.file.endswith("pe.csl")
    assert err.value.line >= 2


# ------------------------------------------------------------------------------------------------
# The Python API


def python_pair(arch: str):
    def pe(sender: bool):
        link = csl.get_color(4)
        out = csl.var("out", csl.f32[2])
        if arch == "wse3":
            q = csl.get_output_queue(2) if sender else csl.get_input_queue(2)
            csl.initialize_queue(q, color=link)
            where = dict(output_queue=q) if sender else {}
        else:
            where = dict(fabric_color=link)
        if sender:
            vals = csl.var("vals", csl.f32[3], init=[2.0, -1.0, 0.25])
            vals_dsd = csl.get_dsd(csl.mem1d_dsd,
                                   tensor_access=csl.tensor_access(lambda i: vals[i], 3))
            data = csl.get_dsd(csl.fabout_dsd, extent=3, **where)
            marks = csl.get_dsd(csl.fabout_dsd, extent=1, control=True, **where)
            payload = csl.control.encode_single_payload(
                csl.control.opcode.NOP, False, csl.get_control_task_id(50), 9)

            @csl.fn
            def main():
                csl.fmovs(data, vals_dsd)
                csl.mov32(marks, csl.as_(csl.u32, payload))
                csl.unblock_cmd_stream()
        else:
            total = csl.var("total", csl.f32)

            @csl.task
            def take(v: csl.f32):
                total.set(total + v)

            @csl.task
            def finish(tag: csl.u16):
                out[0] = total
                out[1] = csl.as_(csl.f32, tag)
                csl.unblock_cmd_stream()

            @csl.fn
            def main():
                pass

            data_id = csl.get_data_task_id(csl.get_input_queue(2) if arch == "wse3" else link)
            csl.bind_data_task(take, data_id)
            csl.bind_control_task(finish, csl.get_control_task_id(50))
        csl.export_symbol(out, "out")
        csl.export_symbol(main)

    def layout():
        csl.set_rectangle(2, 1)
        csl.set_tile_code(0, 0, pe, dict(sender=True))
        csl.set_tile_code(1, 0, pe, dict(sender=False))
        csl.set_color_config(0, 0, 4, rx=["RAMP"], tx=["EAST"])
        csl.set_color_config(1, 0, 4, rx=["WEST"], tx=["RAMP"])
        csl.export_name("out", csl.pointer(csl.f32), True)
        csl.export_name("main", csl.fn_type())

    return csl.compile(layout, arch=arch)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_python_api_control_wavelets(arch):
    prog = python_pair(arch)
    assert [t.kind for t in prog.classes[1].tasks] == ["data", "control"]
    got, want = outputs(prog, 2)
    np.testing.assert_array_equal(got, [1.25, 9.0])
    np.testing.assert_array_equal(want, [1.25, 9.0])


def test_python_api_control_payloads_match_the_csl_library():
    c = csl.control
    assert c.encode_payload(1, [c.opcode.TEARDOWN], [True], True, None) == 0x09DF9249
    assert c.encode_control_task_payload(csl.get_control_task_id(45)) == 45 << 16
    with pytest.raises(Exception, match="out of range"):
        csl.get_control_task_id(64)
