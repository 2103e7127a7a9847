"""FIFOs and fabric DSDs as operands (spec 7.4, 7.5, 8, 8.1): `@addc16` over streams, the
FIFO empty and full actions and what a synchronous FIFO op gives, FIFO read and write
lengths, `@map` over fabric DSDs. Each program runs on the engine and on the reference;
results are checked by hand or with numpy."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import (
    OUT_HEAD,
    OUT_TAIL,
    compile_pe,
    out_program,
    out_row,
    position,
    read,
    run,
    sender_receiver_layout,
)

from wsejax import CslError, FabricFault, SdkRuntime
from wsejax.csl import compile_csl
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]


def _addc(a, b):
    out, carry = [], 0
    for p, q in zip(a, b):
        total = p + q + carry
        out.append(total & 0xFFFF)
        carry = total >> 16
    return out


X = [0xFFFF, 0xFFFF, 0x0001, 0x1234, 0x8000, 0xFFFF]
Y = [0x0001, 0x0000, 0x0002, 0xFFFF, 0x8000, 0x0000]

ADDC_FIFO = """
var out = @zeros([6]u16);
var out_ptr: [*]u16 = &out;
var x = [6]u16 { 0xFFFF, 0xFFFF, 0x0001, 0x1234, 0x8000, 0xFFFF };
var y = [6]u16 { 0x0001, 0x0000, 0x0002, 0xFFFF, 0x8000, 0x0000 };
var buf = @zeros([8]u16);
const f = @allocate_fifo(buf);
const xd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> x[i] });
const yd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> y[i] });
const od = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> out[i] });
fn main() void {
  @mov16(f, yd);
  @addc16(od, xd, f);       // the FIFO is the second source
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_addc16_carries_over_a_fifo_source(tmp_path, arch):
    eng, ref = out_row(out_program(tmp_path, ADDC_FIFO, "u16", arch), 6, np.uint16)
    want = _addc(X, Y)
    assert want == [0, 0, 4, 0x1233, 1, 0]
    assert eng.tolist() == ref.tolist() == [want, want]


ADDC_FABRIC = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const oq = @get_output_queue(2);
const iq = @get_input_queue(2);
var x = [6]u16 { 0xFFFF, 0xFFFF, 0x0001, 0x1234, 0x8000, 0xFFFF };
var y = [6]u16 { 0x0001, 0x0000, 0x0002, 0xFFFF, 0x8000, 0x0000 };
var got = @zeros([6]u16);
var got_ptr: [*]u16 = &got;
const xd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> x[i] });
const yd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> y[i] });
const gd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> got[i] });
const send = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 6, .output_queue = oq }
                                  else .{ .extent = 6, .fabric_color = c, .output_queue = oq });
const recv = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 6, .input_queue = iq }
                                 else .{ .extent = 6, .fabric_color = c, .input_queue = iq });
fn main() void {
  if (sender) {
    @addc16(send, xd, yd);          // x + y, the carry along the vector
  } else {
    @addc16(gd, yd, recv);          // y + (x + y), a carry of its own
  }
  sys.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) {
    @initialize_queue(oq, .{ .color = c });
    @initialize_queue(iq, .{ .color = c });
  }
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""


def _pair(tmp_path, pe: str, arch: str, t: str = "u16"):
    (tmp_path / "layout.csl").write_text(sender_receiver_layout(t))
    (tmp_path / "pe.csl").write_text(pe)
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def _got(prog, n: int, dtype, x: int = 1):
    """`got` of PE (x, 0) after `main`: (engine, reference)."""
    words = n * np.dtype(dtype).itemsize // 4
    r = run(prog)
    eng = read(r, "got", words, np.uint32)[0, x].view(dtype)
    ref = Reference(prog)
    ref.launch("main")
    return eng, np.asarray(ref.memory(x, 0)["got"]).reshape(-1)[:n].astype(dtype)


@pytest.mark.parametrize("arch", ARCHES)
def test_addc16_carries_over_fabric_operands(tmp_path, arch):
    eng, ref = _got(_pair(tmp_path, ADDC_FABRIC, arch), 6, np.uint16)
    want = _addc(Y, _addc(X, Y))
    assert eng.tolist() == ref.tolist() == want


# A synchronous op finds its FIFO empty (full): the default action ends it, its builtin gives
# false; `.terminate` ends it too, and the builtin gives true.
FIFO_ENDS = """
var out = @zeros([16]u16);
var out_ptr: [*]u16 = &out;
var x = [9]u16 { 11, 12, 13, 14, 15, 16, 17, 18, 19 };
var buf = @zeros([8]u16);
var gbuf = @zeros([4]u16);
const f = @allocate_fifo(buf);
const g = @allocate_fifo(gbuf, .{ .empty_action = .{ .terminate = true } });
const x4 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> x[i] });
const x9 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{9} -> x[i] });
const a6 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> out[i] });
const b3 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> out[7 + i] });
const c2 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> out[12 + i] });
fn main() void {
  _ = @mov16(f, x4);
  const ok1 = @mov16(a6, f);        // 4 of 6: the FIFO runs dry
  if (ok1) { out[6] = 1; }
  @mov16(f, x4);
  const ok2 = @mov16(b3, f);        // 3 of the 4: one stays
  if (ok2) { out[10] = 1; }
  const ok3 = @mov16(f, x9);        // room for 7 of 9
  if (!ok3) { out[11] = 8; }
  if (@mov16(c2, g)) { out[14] = 1; }   // empty at once: .terminate gives true
  out[15] = buf[0];                 // the 8th element pushed wrapped around to buf[0]
  @set_fifo_read_length(f, 20);
  if (!@mov16(&out[13], f)) { out[4] = 5; }   // 8 popped, then dry: out[13] keeps its 0
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_synchronous_op_ends_where_its_fifo_runs_dry(tmp_path, arch):
    eng, ref = out_row(out_program(tmp_path, FIFO_ENDS, "u16", arch), 16, np.uint16)
    # FIFO f: 4 pushed, 4 popped (head 4); 4 pushed at 4..7, 3 popped (head 7, one left);
    # then 7 pushed from slot 0 on: 11..17 at 0..6
    want = [11, 12, 13, 14, 5, 0, 0, 11, 12, 13, 1, 8, 0, 0, 1, 11]
    assert eng.tolist() == ref.tolist() == [want, want]


FIFO_ASYNC_ENDS = """
var out = @zeros([6]u16);
var out_ptr: [*]u16 = &out;
var x = [2]u16 { 21, 22 };
var gbuf = @zeros([4]u16);
const g = @allocate_fifo(gbuf, .{ .empty_action = .{ .terminate = true } });
const done_id: local_task_id = @get_local_task_id(9);
const x2 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> x[i] });
const c4 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
fn main() void {
  @mov16(g, x2);
  @mov16(c4, g, .{ .async = true, .activate = done_id });   // 2 of 4, then it ends
}
task done() void {
  out[5] = 7;
  sys.unblock_cmd_stream();
}
comptime { @bind_local_task(done, done_id); }
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_terminate_ends_an_asynchronous_op_and_fires_its_hook(tmp_path, arch):
    eng, ref = out_row(out_program(tmp_path, FIFO_ASYNC_ENDS, "u16", arch), 6, np.uint16)
    assert eng.tolist() == ref.tolist() == [[21, 22, 0, 0, 0, 7]] * 2


def test_fault_on_an_empty_fifo_faults_the_pe(tmp_path):
    src = FIFO_ENDS.replace(".empty_action = .{ .terminate = true }",
                            ".empty_action = .{ .fault = true }")
    program = out_program(tmp_path, src, "u16", "wse3")
    text = "@mov16 in main: FIFO 'g' is empty and its .empty_action is .fault"
    r = SdkRuntime(program)
    r.load()
    r.run()
    for runner in (r, Reference(program)):
        with pytest.raises(FabricFault) as err:
            runner.launch("main")
        assert text in str(err.value)
        assert err.value.pes == [(0, 0), (1, 0)]


# Read and write lengths: never set, a FIFO operand takes the other operands' length; set,
# each element popped (pushed) takes one off, and an op runs at most what remains.
FIFO_LENGTHS = """
var out = @zeros([16]u16);
var out_ptr: [*]u16 = &out;
var x = [6]u16 { 31, 32, 33, 34, 35, 36 };
var buf = @zeros([8]u16);
const f = @allocate_fifo(buf);
const x6 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> x[i] });
const a4 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
const b4 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[4 + i] });
const c4 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[8 + i] });
fn main() void {
  @mov16(f, x6);                    // never set: all 6
  @set_fifo_read_length(f, 2);
  if (@mov16(a4, f)) { out[12] = 1; }   // 2 of 4, and true
  @mov16(b4, f);                    // nothing remains: no element
  @set_fifo_read_length(f, lay.get_x_coord() + 3);
  @mov16(c4, f);                    // 3 (PE 0) or 4 (PE 1) of the 4 left
  @set_fifo_write_length(f, 1);
  @mov16(f, x6);                    // one pushed
  out[13] = buf[6];
  out[14] = buf[7];
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_fifo_read_and_write_lengths_bound_the_ops(tmp_path, arch):
    eng, ref = out_row(out_program(tmp_path, FIFO_LENGTHS, "u16", arch), 16, np.uint16)
    # PE 0: 33..35 popped, 36 left at buf[5]; 31 pushed at buf[6]
    pe0 = [31, 32, 0, 0, 0, 0, 0, 0, 33, 34, 35, 0, 1, 31, 0, 0]
    # PE 1: 33..36 popped; 31 pushed at buf[6]
    pe1 = [31, 32, 0, 0, 0, 0, 0, 0, 33, 34, 35, 36, 1, 31, 0, 0]
    assert eng.tolist() == ref.tolist() == [pe0, pe1]


MAP_FABRIC = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const oq = @get_output_queue(2);
const iq = @get_input_queue(2);
var x = [6]f32 { 1.0, 2.0, 3.0, 4.0, 5.0, 6.0 };
var y = [6]f32 { 0.5, 0.25, 0.125, 8.0, 16.0, 32.0 };
var got = @zeros([6]f32);
var got_ptr: [*]f32 = &got;
var bias: f32 = 100.0;
const xd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> x[i] });
const yd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> y[i] });
const gd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> got[i] });
const send = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 6, .output_queue = oq }
                                  else .{ .extent = 6, .fabric_color = c, .output_queue = oq });
const recv = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 6, .input_queue = iq }
                                 else .{ .extent = 6, .fabric_color = c, .input_queue = iq });
fn shift(a: f32) f32 { return a + bias; }
fn axpy(w: f32, b: f32, s: f32) f32 { return w * s + b; }
fn main() void {
  if (sender) {
    @map(shift, xd, send);              // a fabout output
  } else {
    @map(axpy, recv, yd, 2.0, gd);      // a fabin input, a memory input and a value
  }
  sys.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) {
    @initialize_queue(oq, .{ .color = c });
    @initialize_queue(iq, .{ .color = c });
  }
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_map_reads_a_fabin_input_and_writes_a_fabout_output(tmp_path, arch):
    eng, ref = _got(_pair(tmp_path, MAP_FABRIC, arch, "f32"), 6, np.float32)
    x = np.array([1, 2, 3, 4, 5, 6], np.float32)
    y = np.array([0.5, 0.25, 0.125, 8, 16, 32], np.float32)
    want = (x + np.float32(100)) * np.float32(2) + y
    assert eng.tolist() == ref.tolist() == want.tolist()


@pytest.mark.parametrize("arch", ARCHES)
def test_map_with_a_void_callback_consumes_its_fabin_wavelets(tmp_path, arch):
    src = MAP_FABRIC.replace(
        "fn main() void {",
        "fn look(w: f32) void { _ = w; }\n"
        "const first2 = @set_dsd_length(recv, 2);\n"
        "const last4 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> got[i] });\n"
        "fn main() void {").replace(
        "@map(axpy, recv, yd, 2.0, gd);", "@map(look, first2);\n    @fmovs(last4, recv);")
    eng, ref = _got(_pair(tmp_path, src, arch, "f32"), 6, np.float32)
    assert eng.tolist() == ref.tolist() == [103, 104, 105, 106, 0, 0]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_map_over_a_fabin_input_writes_each_wavelet_through_a_pointer_in_order(tmp_path, arch):
    # the callback stores wavelet k (101 .. 106) plus k where its pointer points, then moves
    # the pointer one element down: got[5], got[4], ... got[0]
    src = MAP_FABRIC.replace(
        "fn main() void {",
        "var at: [*]f32 = &got[5];\nvar seen: u16 = 0;\n"
        "fn keep(w: f32) f32 { seen += 1; at[0] = w + @as(f32, seen); "
        "if (seen < 6) { at = &got[5 - seen]; } return w; }\n"
        "fn main() void {").replace(
        "@map(axpy, recv, yd, 2.0, gd);", "@map(keep, recv, yd);")
    eng, ref = _got(_pair(tmp_path, src, arch, "f32"), 6, np.float32)
    assert eng.tolist() == ref.tolist() == [112, 110, 108, 106, 104, 102]


@pytest.mark.parametrize("body, at, message", [
    ("fn id(x: u16) u16 { return x; }\nfn main() void { @map(id, send, od); }", "send, od",
     "@map: a fabout_dsd cannot be an input"),
    ("fn id(x: u16) u16 { return x; }\nfn main() void { @map(id, od, f); }", "f); }",
     "@map does not take FIFOs"),
    ("fn id(x: u16) u16 { return x; }\nfn main() void { @map(id, od, recv); }", "recv); }",
     "@map: a fabin_dsd cannot be the output"),
])
def test_map_refuses_fifos_and_fabout_inputs_at_the_operand(tmp_path, body, at, message):
    head = """
var out = @zeros([4]u16);
var out_ptr: [*]u16 = &out;
var buf = @zeros([4]u16);
const f = @allocate_fifo(buf);
const od = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
const send = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = @get_color(4),
                                     .output_queue = @get_output_queue(2) });
const recv = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = @get_color(5),
                                    .input_queue = @get_input_queue(2) });
"""
    src = OUT_HEAD + head + body + "\n" + OUT_TAIL
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, '@export_name("out", [*]u16, true);\n'
                   '@export_name("main", fn()void);', arch="wse2")
    line, col = position(src, at)
    assert f"pe.csl:{line}:{col}" in str(err.value)
    assert message in str(err.value)
