"""DSD kinds and forms (spec 7) written in CSL: a tensor_access given as an anonymous struct,
wavelet_index_offset on memory DSDs, DSD-typed function parameters and pointer-to-scalar
destinations, run on the engine and the reference interpreter on both arches and checked
against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import (
    out_program,
    out_row,
    position,
    read,
    run,
    sender_receiver_layout,
    write,
)

from wsejax import CslError
from wsejax.csl import compile_csl
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

def program(tmp_path, body: str, t: str, arch: str = "wse2"):
    return out_program(tmp_path, body, t, arch)


def outputs(prog, n: int, dtype):
    """`out` (n elements of dtype) of PE (0, 0): (engine, reference)."""
    eng, ref = out_row(prog, n, dtype, w=1)
    return eng[0], ref[0]


def check(eng, ref, want) -> None:
    np.testing.assert_array_equal(eng, np.asarray(want, eng.dtype))
    np.testing.assert_array_equal(ref, eng)


# ------------------------------------------------------------------------------------------------
# tensor_access as an anonymous struct of addressing fields

STRUCT_ACCESS = """
var a = [12]f32 { 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0 };
var out = @zeros([10]f32);
var out_ptr: [*]f32 = &out;
// every other element from a[1]: 1, 3, 5, 7
const odd = @get_dsd(mem1d_dsd, .{ .tensor_access =
                                    .{ .base_address = &a, .offset = 1, .stride = 2,
                                       .extent = 4 } });
// offset left out: a[0..3]
const head = @get_dsd(mem1d_dsd, .{ .tensor_access = .{ .base_address = &a, .extent = 3 } });
// two rows of three, rows 4 apart: a[2], a[3], a[4], a[6], a[7], a[8]
const rows = @get_dsd(mem4d_dsd, .{ .tensor_access =
                                     .{ .base_address = &a, .offset = 2, .stride = .{1, 2},
                                        .extent = .{2, 3} } });
const o_odd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
const o_head = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> out[4 + i] });
const o_rows = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> out[4 + i] });
fn main() void {
  @fmovs(o_odd, odd);
  @fmovs(o_rows, rows);
  @fadds(o_head, o_head, head);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_tensor_access_struct_addresses_like_its_fields(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, STRUCT_ACCESS, "f32", arch), 10, np.float32)
    a = np.arange(12, dtype=np.float32)
    rows = a[[2, 3, 4, 6, 7, 8]]
    want = np.concatenate([a[1:9:2], rows])
    want[4:7] += a[:3]
    check(eng, ref, want)


def test_a_field_in_the_struct_and_beside_it_is_refused(tmp_path):
    src = STRUCT_ACCESS.replace(
        "const head = @get_dsd(mem1d_dsd, .{ .tensor_access",
        "const head = @get_dsd(mem1d_dsd, .{ .extent = 3, .tensor_access")
    with pytest.raises(CslError) as e:
        program(tmp_path, src, "f32")
    line, col = position((tmp_path / "pe.csl").read_text(), "@get_dsd(mem1d_dsd, .{ .extent = 3")
    assert f"pe.csl:{line}:{col}" in str(e.value)
    assert "DSD property 'extent' given twice" in str(e.value)


# ------------------------------------------------------------------------------------------------
# wavelet_index_offset on memory DSDs: the op's .index moves the base by 16-bit words

INDEX_OFFSET = """
var src = [3]f32 { 1.5, 2.5, 3.5 };
var hs = [2]i16 { -4, 9 };
var words = @zeros([6]i16);
var out = @zeros([8]f32);
var out_ptr: [*]f32 = &out;
const srcd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> src[i] });
const hsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> hs[i] });
const into = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> out[i],
                                    .wavelet_index_offset = true });
const into16 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> words[i],
                                      .wavelet_index_offset = true });
const back = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> words[i] });
const tail = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> out[6 + i] });
fn main() void {
  var k: u16 = 4;               // 4 words: two f32 elements
  @fmovs(into, srcd, .{ .index = k });
  @mov16(into16, hsd, .{ .index = 3 });   // 3 words: three i16 elements
  var w: [6]f32;
  const wd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> w[i] });
  @xp162fs(wd, back);
  out[0] = w[3];
  out[1] = w[4];
  @fmovs(tail, srcd);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_wavelet_index_offset_moves_a_memory_dsd_by_the_op_index(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, INDEX_OFFSET, "f32", arch), 8, np.float32)
    want = [-4.0, 9.0, 1.5, 2.5, 3.5, 0.0, 1.5, 2.5]
    check(eng, ref, want)


def test_wavelet_index_offset_without_an_index_is_refused(tmp_path):
    src = INDEX_OFFSET.replace("@fmovs(into, srcd, .{ .index = k });", "@fmovs(into, srcd);")
    with pytest.raises(CslError) as e:
        program(tmp_path, src, "f32")
    line, col = position((tmp_path / "pe.csl").read_text(), "@fmovs(into, srcd)")
    assert f"pe.csl:{line}:{col}" in str(e.value)
    assert "@fmovs: operand 1 uses wavelet_index_offset, so the operation needs an index" \
        in str(e.value)


# ------------------------------------------------------------------------------------------------
# DSD-typed function parameters

DSD_PARAMS = """
var a = [6]f32 { 1.0, 2.0, 3.0, 4.0, 5.0, 6.0 };
var out = @zeros([6]f32);
var out_ptr: [*]f32 = &out;
const ad = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> a[i] });
const od = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> out[i] });
fn axpy(dst: mem1d_dsd, x: mem1d_dsd, k: f32) void {
  @fmacs(dst, dst, x, k);
}
fn main() void {
  axpy(od, ad, 2.0);                          // out = 2 a
  axpy(@set_dsd_length(od, 3), @set_dsd_length(ad, 3), -1.0);   // out[0..3] = a[0..3]
  const later = @increment_dsd_offset(od, 4, f32);
  axpy(@set_dsd_length(later, 2), ad, 10.0);  // out[4..6] += 10 a[0..2]
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_dsds_pass_through_function_parameters(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, DSD_PARAMS, "f32", arch), 6, np.float32)
    a = np.arange(1, 7, dtype=np.float32)
    want = 2 * a
    want[:3] -= a[:3]
    want[4:] += 10 * a[:2]
    check(eng, ref, want)


# ------------------------------------------------------------------------------------------------
# pointer-to-scalar destinations: every element writes the one scalar; the last result stays

POINTERS = """
var a = [4]f32 { 1.5, -2.0, 3.25, -0.5 };
var x = [3]u16 { 7, 8, 9 };
var y = [3]u32 { 100000, 200000, 300000 };
const ad = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });
const xd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> x[i] });
const yd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> y[i] });
var s: f32 = 0.0;
var t: f32 = 0.0;
var u: u16 = 0;
var v: u32 = 0;
var out = @zeros([4]f32);
var out_ptr: [*]f32 = &out;
fn main() void {
  @fmovs(&s, ad);
  @fmuls(&t, 2.0, ad);
  @mov16(&u, xd);
  @mov32(&v, yd);
  out[0] = s;
  out[1] = t;
  out[2] = @as(f32, u);
  out[3] = @as(f32, v);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_pointer_destination_keeps_the_last_element(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, POINTERS, "f32", arch), 4, np.float32)
    check(eng, ref, [-0.5, -1.0, 9.0, 300000.0])


# ------------------------------------------------------------------------------------------------
# @map over registers loaded with .single_step (spec 8.1, 9)

MAP_DSRS = """
var a = [5]f32 { 1.0, -2.0, 3.0, -4.0, 5.0 };
var b = [5]i16 { 10, 20, 30, 40, 50 };
var out = @zeros([6]f32);
var out_ptr: [*]f32 = &out;
const ad = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{5} -> a[i] });
const bd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{5} -> b[i] });
const od = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{5} -> out[i] });
const src = @get_dsr(dsr_src1, 2);
const dst = @get_dsr(dsr_dest, 3);
const math = @import_module("<math>");
fn affine(x: f32, k: i16, s: f32) f32 {
  return x * s + @as(f32, k);
}
comptime {
  @load_to_dsr(src, ad, .{ .single_step = true });
}
fn main() void {
  @load_to_dsr(dst, od, .{ .single_step = true });
  @map(affine, src, bd, 0.5, dst);
  @load_to_dsr(dst, @set_dsd_length(od, 2), .{ .single_step = true });
  @map(math.abs_f32, src, dst);           // out[0..2] = |a[0..2]|
  @map(affine, src, bd, 2.0, &out[5]);     // the last: 5 * 2 + 50
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_map_reads_and_writes_single_step_registers(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, MAP_DSRS, "f32", arch), 6, np.float32)
    a = np.array([1, -2, 3, -4, 5], np.float32)
    b = np.array([10, 20, 30, 40, 50], np.float32)
    want = np.append(a * 0.5 + b, 60.0).astype(np.float32)
    want[:2] = np.abs(a[:2])
    check(eng, ref, want)


@pytest.mark.parametrize("change, to, at, message", [
    ("@load_to_dsr(src, ad, .{ .single_step = true });", "@load_to_dsr(src, ad);",
     "src, bd, 0.5", "@map: the dsr_src1 2 must be loaded with .{ .single_step = true }"),
    ("const src = @get_dsr(dsr_src1, 2);", "const src = @get_dsr(dsr_src0, 2);",
     "src, bd, 0.5", "@map: an input register is a dsr_src1, got a dsr_src0"),
    ("const dst = @get_dsr(dsr_dest, 3);", "const dst = @get_dsr(dsr_src0, 3);",
     "dst);", "@map: the output register is a dsr_dest, got a dsr_src0"),
    (".{ .single_step = true });\n}", ".{ .single_step = true, .save_address = true });\n}",
     ".{ .single_step = true, .save", "@load_to_dsr: .single_step goes alone, without "
     ".save_address"),
])
def test_map_registers_are_single_step_sources_and_a_dest(tmp_path, change, to, at, message):
    src = MAP_DSRS.replace(change, to)
    with pytest.raises(CslError) as e:
        program(tmp_path, src, "f32")
    assert message in str(e.value)
    line, col = position((tmp_path / "pe.csl").read_text(), at)
    assert f"pe.csl:{line}:{col}" in str(e.value)


# ------------------------------------------------------------------------------------------------
# .save_address on a mem4d_dsd register: each op continues one past the last element it took

MEM4D_SAVED = """
var a = [16]f32 { 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0,
                  8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0 };
var out = @zeros([12]f32);
var out_ptr: [*]f32 = &out;
// two rows of two, every other element: a[0], a[2], a[4], a[6] (a seen as [4, 4])
const grid = @get_dsd(mem4d_dsd, .{ .tensor_access = |i, j|{2, 2} -> a[4 * i + 2 * j] });
const od = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
const src = @get_dsr(dsr_src1, 1);
const dst = @get_dsr(dsr_dest, 1);
comptime {
  @load_to_dsr(src, grid, .{ .save_address = true });
  @load_to_dsr(dst, od, .{ .save_address = true });
}
fn main() void {
  @fmovs(dst, src);                           // a[0, 2, 4, 6]; then from a[7]
  @fmovs(dst, src);                           // a[7, 9, 11, 13]; then from a[14]
  @fmovs(dst, @set_dsd_length(src_next, 1));  // a memory DSD operand: the register stays
  sys.unblock_cmd_stream();
}
const src_next = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[15 - i] });
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_saved_mem4d_register_continues_past_its_last_element(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, MEM4D_SAVED, "f32", arch), 12, np.float32)
    want = np.zeros(12, np.float32)
    want[:4] = [0, 2, 4, 6]
    want[4:8] = [7, 9, 11, 13]
    want[8] = 15
    check(eng, ref, want)


# ------------------------------------------------------------------------------------------------
# circbuf_dsd: a ring of elements, an operand from a register loaded by @load_to_dsr_xdsr

CIRCBUF = """
var ring = [5]f32 { 1.0, 2.0, 3.0, 4.0, 5.0 };
var vals = [9]f32 { 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0 };
var acc = @zeros([6]f32);
var buf = [6]f32 { 0.5, 1.5, 2.5, 3.5, 4.5, 5.5 };
var over = @zeros([5]f32);
var out = @zeros([40]f32);
var out_ptr: [*]f32 = &out;
const whole = @get_dsd(circbuf_dsd, .{ .base_address = &ring, .extent = 12 });
const small = @get_dsd(circbuf_dsd, .{ .base_address = &acc, .extent = 3, .wraparound = 4 });
const inner = @get_dsd(circbuf_dsd, .{ .base_address = &buf[2], .extent = 7,
                                       .wraparound = 3 });
const laps = @get_dsd(circbuf_dsd, .{ .base_address = &over, .extent = 7 });
const vd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> vals[i] });
const v7 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{7} -> vals[i] });
const o12 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{12} -> out[i] });
const o7 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{7} -> out[12 + i] });
const o5 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{5} -> out[19 + i] });
const ring_src = @get_dsr(dsr_src1, 1);
const acc_dst = @get_dsr(dsr_dest, 1);
const vals_src = @get_dsr(dsr_src0, 2);
const inner_src = @get_dsr(dsr_src1, 3);
const laps_dst = @get_dsr(dsr_dest, 4);
const step_src = @get_dsr(dsr_src1, 5);
fn twice(x: f32) f32 { return 2.0 * x; }
comptime {
  @load_to_dsr_xdsr(ring_src, @get_xdsr(1), whole);
  @load_to_dsr_xdsr(acc_dst, @get_xdsr(2), small, .{ .save_address = true });
  @load_to_dsr(vals_src, vd, .{ .save_address = true });
}
fn main() void {
  @fmovs(o12, ring_src);                        // ring twice and a bit: 1..5, 1..5, 1, 2
  @fmovs(acc_dst, vals_src);                    // acc[0, 1, 2] = 10, 11, 12
  @fmovs(acc_dst, vals_src);                    // acc[3, 0, 1] = 13, 14, 15
  @fmovs(acc_dst, vals_src);                    // acc[2, 3, 0] = 16, 17, 18
  @load_to_dsr_xdsr(inner_src, @get_xdsr(3), inner, .{ .single_step = true });
  @map(twice, inner_src, o7);                   // 2 * buf[2, 3, 4, 2, 3, 4, 2]
  @load_to_dsr_xdsr(laps_dst, @get_xdsr(4), laps);
  @fmovs(laps_dst, v7);                         // over[i % 5] = vals[i]: the last lap stays
  @fmovs(o5, @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{5} -> over[i] }));
  for (@range(u16, 6)) |i| { out[24 + i] = acc[i]; }
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_circbuf_goes_around_its_ring(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, CIRCBUF, "f32", arch), 30, np.float32)
    ring = np.arange(1, 6, dtype=np.float32)
    vals = np.arange(10, 19, dtype=np.float32)
    buf = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5], np.float32)
    over = np.zeros(5, np.float32)
    for i in range(7):
        over[i % 5] = vals[i]
    want = np.concatenate([ring[np.arange(12) % 5], 2 * buf[2 + np.arange(7) % 3], over,
                           [18, 15, 16, 17, 0, 0]]).astype(np.float32)
    check(eng, ref, want)


@pytest.mark.parametrize("change, to, at, message", [
    ("@fmovs(o12, ring_src);", "@fmovs(o12, whole);", "whole);   ",
     "@fmovs: a circbuf_dsd is not an operand itself; load it into a DSR with "
     "@load_to_dsr_xdsr(dsr, xdsr, dsd) and use the DSR"),
    ("@load_to_dsr_xdsr(ring_src, @get_xdsr(1), whole);", "@load_to_dsr(ring_src, whole);",
     "whole);\n  @load_to_dsr_xdsr(acc",
     "a circbuf_dsd is loaded with @load_to_dsr_xdsr(dsr, xdsr, dsd), not @load_to_dsr"),
    ("@load_to_dsr_xdsr(ring_src, @get_xdsr(1), whole);",
     "@load_to_dsr_xdsr(ring_src, @get_xdsr(1), o12);", "o12);\n  @load_to_dsr_xdsr(acc",
     "@load_to_dsr_xdsr loads a circbuf_dsd, got a mem1d_dsd (load it with @load_to_dsr)"),
    (".extent = 3, .wraparound = 4", ".extent = 3, .wraparound = 6",
     "@get_dsd(circbuf_dsd, .{ .base_address = &acc",
     "a circbuf_dsd .wraparound must be less than the size of 'acc' (6), got 6"),
    (".extent = 7,\n                                       .wraparound = 3", ".extent = 7",
     "@get_dsd(circbuf_dsd, .{ .base_address = &buf[2]",
     "a circbuf_dsd whose base_address points to one element needs a .wraparound"),
    (".extent = 7,\n                                       .wraparound = 3",
     ".extent = 7, .wraparound = 5", "@get_dsd(circbuf_dsd, .{ .base_address = &buf[2]",
     "a circbuf_dsd .wraparound of 5 from element 2 runs past the end of 'buf' (6 elements)"),
])
def test_circbuf_misuse_is_located(tmp_path, change, to, at, message):
    src = CIRCBUF.replace(change, to)
    with pytest.raises(CslError) as e:
        program(tmp_path, src, "f32")
    assert message in str(e.value)
    line, col = position((tmp_path / "pe.csl").read_text(), at)
    assert f"pe.csl:{line}:{col}" in str(e.value)


# ------------------------------------------------------------------------------------------------
# fabout_dsd .zero: the memory source it names is left zero once sent

ZERO_PE = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const oq = @get_output_queue(2);
const iq = @get_input_queue(3);
const done_id: local_task_id = @get_local_task_id(9);
var a = [3]f32 { 1.0, 2.0, 3.0 };
var b = [3]f32 { 0.25, 0.5, 0.75 };
var got = @zeros([6]f32);
var got_ptr: [*]f32 = &got;
const ad = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> a[i] });
const bd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> b[i] });
const gd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> got[i] });
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3"))
    .{ .extent = 3, .output_queue = oq, .zero = .{ .second_source = true } }
  else .{ .extent = 3, .fabric_color = c, .output_queue = oq,
          .zero = .{ .second_source = true } });
const in = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 3, .input_queue = iq }
                               else .{ .extent = 3, .fabric_color = c, .input_queue = iq });
fn main() void {
  if (sender) {
    @fadds(out, ad, bd, .{ .async = true, .activate = done_id });
  } else {
    @fmovs(gd, in);
    sys.unblock_cmd_stream();
  }
}
task done() void {
  for (@range(u16, 3)) |i| { got[i] = a[i]; got[3 + i] = b[i]; }
  sys.unblock_cmd_stream();
}
comptime {
  @bind_local_task(done, done_id);
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = c }); }
  @initialize_queue(iq, .{ .color = c });
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""


def _sent_and_received(tmp_path, pe_source: str, arch: str):
    """(engine, reference) `got` of the sender and the receiver: [2, 6] each."""
    write(tmp_path, {"layout.csl": sender_receiver_layout("f32"), "pe.csl": pe_source})
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    eng = read(run(prog), "got", 6, np.float32)[0]
    ref = Reference(prog)
    ref.launch("main")
    return eng, np.stack([np.asarray(ref.memory(x, 0)["got"]).reshape(-1) for x in range(2)])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_fabout_with_zero_leaves_the_named_source_zero(tmp_path, arch):
    eng, ref = _sent_and_received(tmp_path, ZERO_PE, arch)
    a = np.array([1, 2, 3], np.float32)
    b = np.array([0.25, 0.5, 0.75], np.float32)
    want = np.array([np.concatenate([a, np.zeros(3)]),      # the sender: b was zeroed
                     np.concatenate([a + b, np.zeros(3)])], np.float32)
    check(eng, ref, want)


def test_zero_names_a_memory_source(tmp_path):
    src = ZERO_PE.replace("@fadds(out, ad, bd,", "@fadds(out, ad, 2.0,")
    write(tmp_path, {"layout.csl": sender_receiver_layout("f32"), "pe.csl": src})
    with pytest.raises(CslError) as e:
        compile_csl(tmp_path / "layout.csl", memcpy=True)
    line, col = position(src, "out, ad, 2.0")
    assert f"pe.csl:{line}:{col}" in str(e.value)
    assert ("@fadds: the fabout_dsd's .zero names the second source, which is not a memory "
            "DSD here") in str(e.value)
