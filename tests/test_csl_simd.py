"""`.simd_mode` on fabric DSDs and FIFOs (spec 7.4, 7.5; the policy of
`wsejax.frontend.simd`): two 16-bit elements a wavelet, the first in the low half."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import position, read, run, sender_receiver_layout, write

from wsejax import CslError
from wsejax.csl import compile_csl
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

# PE (0, 0) sends `a` through `out` with `SEND`; PE (1, 0) receives through `in` with `RECV`
# into `got` (8 u16, or 4 u32 words).
PE = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const oq = @get_output_queue(2);
const iq = @get_input_queue(3);
var a = [8]u16 { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };
var a32 = [4]u32 { 0x00020001, 0x00040003, 0x00060005, 0x00080007 };
var b = [8]u16 { 100, 200, 300, 400, 500, 600, 700, 800 };
var got = @zeros([GOT]);
var got_ptr: [*]ELEM = &got;
const ad = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{SENT} -> a[i] });
const a32d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a32[i] });
const bd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{GOTN} -> b[i] });
const gd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{GOTN} -> got[i] });
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3"))
    .{ .extent = SENT, .output_queue = oq OUT_OPTS }
  else .{ .extent = SENT, .fabric_color = c, .output_queue = oq OUT_OPTS });
const in = @get_dsd(fabin_dsd, if (@is_arch("wse3"))
    .{ .extent = GOTN, .input_queue = iq IN_OPTS }
  else .{ .extent = GOTN, .fabric_color = c, .input_queue = iq IN_OPTS });
fn main() void {
  if (sender) {
    SEND;
  } else {
    RECV;
  }
  sys.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = c }); }
  @initialize_queue(iq, .{ .color = c });
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""


def pe_source(send: str, recv: str, sent: int, got_n: int, elem: str, out_opts: str = "",
              in_opts: str = "") -> str:
    """PE with its blanks filled: what the sender and the receiver do, the lengths of `out`
    (`sent`) and `in` (`got_n`), the element type of `got`, more fields of `out` and `in`."""
    text = PE
    for key, value in (("SEND", send), ("RECV", recv), ("GOTN", str(got_n)),
                       ("[GOT]", f"[{got_n}]{elem}"), ("ELEM", elem), ("SENT", str(sent)),
                       ("OUT_OPTS", out_opts), ("IN_OPTS", in_opts)):
        text = text.replace(key, value)
    return text


def exchanged(tmp_path, src: str, arch: str, elem: str, n: int):
    """(engine, reference) `got` of the receiver, n elements of `elem`."""
    write(tmp_path, {"layout.csl": sender_receiver_layout(elem), "pe.csl": src})
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    dtype = np.dtype(elem.replace("u", "uint"))
    words = n * dtype.itemsize // 4
    eng = read(run(prog), "got", words, np.uint32)[0, 1].view(dtype)
    ref = Reference(prog)
    ref.launch("main")
    return eng, np.asarray(ref.memory(1, 0)["got"]).reshape(-1)[:n].astype(dtype)


def check(eng, ref, want) -> None:
    np.testing.assert_array_equal(eng, np.asarray(want, eng.dtype))
    np.testing.assert_array_equal(ref, eng)


@pytest.mark.parametrize("arch", ARCHES)
def test_simd_32_packs_two_elements_a_wavelet_low_half_first(tmp_path, arch):
    # 7 elements in 4 wavelets, read whole by a 32-bit receiver; the last high half is 0
    src = pe_source("@mov16(out, ad)", "@mov32(gd, in)", 7, 4, "u32",
                    out_opts=", .simd_mode = .simd_32")
    eng, ref = exchanged(tmp_path, src, arch, "u32", 4)
    check(eng, ref, [0x00220011, 0x00440033, 0x00660055, 0x00000077])


@pytest.mark.parametrize("arch", ARCHES)
def test_simd_32_unpacks_the_low_half_first(tmp_path, arch):
    # 4 whole words in, 7 elements out: the high half of the last wavelet is dropped
    src = pe_source("@mov32(out, a32d)", "@mov16(gd, in)", 4, 7, "u16",
                    in_opts=", .simd_mode = .simd_32")
    src = src.replace("[7]u16", "[8]u16")
    eng, ref = exchanged(tmp_path, src, arch, "u16", 8)
    check(eng, ref, [1, 2, 3, 4, 5, 6, 7, 0])


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("mode", ["simd_32", "simd_64", "simd_32_or_64"])
def test_packed_on_both_sides_a_16_bit_op_gets_each_element(tmp_path, arch, mode):
    src = pe_source("@add16(out, ad, 1)", "@add16(gd, in, bd)", 8, 8, "u16",
                    out_opts=f", .simd_mode = .{mode}", in_opts=f", .simd_mode = .{mode}")
    eng, ref = exchanged(tmp_path, src, arch, "u16", 8)
    a = np.array([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88], np.uint16)
    b = np.array([100, 200, 300, 400, 500, 600, 700, 800], np.uint16)
    check(eng, ref, a + 1 + b)


# PE (0, 0) sends 45 elements one at a time (the carry of @addc16 runs in order), PE (1, 0)
# sums them into one accumulator (a stride-0 destination, also in order) and keeps a copy.
LONG_PE = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const oq = @get_output_queue(2);
const iq = @get_input_queue(3);
var a: [45]u16;
var z = @zeros([45]u16);
var got = @zeros([46]u16);
var got_ptr: [*]u16 = &got;
const ad = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{45} -> a[i] });
const zd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{45} -> z[i] });
const acc = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{45} -> got[45] });
const copy = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{45} -> got[i] });
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3"))
    .{ .extent = 45, .output_queue = oq, .simd_mode = .simd_32 }
  else .{ .extent = 45, .fabric_color = c, .output_queue = oq, .simd_mode = .simd_32 });
const in = @get_dsd(fabin_dsd, if (@is_arch("wse3"))
    .{ .extent = 45, .input_queue = iq, .simd_mode = .simd_32 }
  else .{ .extent = 45, .fabric_color = c, .input_queue = iq, .simd_mode = .simd_32 });
fn main() void {
  if (sender) {
    for (@range(u16, 45)) |i| { a[i] = 3 * i + 1; }
    @addc16(out, ad, zd);
  } else {
    @add16(acc, acc, in);
    @mov16(copy, acc);
  }
  sys.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = c }); }
  @initialize_queue(iq, .{ .color = c });
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_long_packed_stream_element_by_element(tmp_path, arch):
    eng, ref = exchanged(tmp_path, LONG_PE, arch, "u16", 46)
    total = int(np.sum(3 * np.arange(45) + 1)) & 0xFFFF
    check(eng, ref, [total] * 46)


# ------------------------------------------------------------------------------------------------
# FIFOs: `.simd_mode` is wse2 only and changes no value

FIFO_PE = """
param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
var buf: [8]u16;
const f = @allocate_fifo(buf, .{ .simd_mode = .MODE });
var src = [6]u16 { 1, 2, 3, 0x8000, 0xffff, 7 };
var got = @zeros([6]u16);
var got_ptr: [*]u16 = &got;
const sd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> src[i] });
const gd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> got[i] });
fn main() void {
  @mov16(f, sd);
  @add16(gd, sd, f);
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""

FIFO_EXPORTS = '@export_name("got", [*]u16, true);\n@export_name("main", fn()void);'


@pytest.mark.parametrize("mode", ["simd_32", "simd_64", "simd_32_or_64"])
def test_a_fifo_with_simd_mode_on_wse2(tmp_path, mode):
    from csl_harness import compile_pe

    prog = compile_pe(tmp_path, FIFO_PE.replace("MODE", mode), FIFO_EXPORTS, w=1,
                      arch="wse2")
    eng = read(run(prog), "got", 3, np.uint32)[0, 0].view(np.uint16)
    ref = Reference(prog)
    ref.launch("main")
    src = np.array([1, 2, 3, 0x8000, 0xffff, 7], np.uint16)
    check(eng, np.asarray(ref.memory(0, 0)["got"]).reshape(-1)[:6].astype(np.uint16), src + src)


# ------------------------------------------------------------------------------------------------
# refusals, located


def _error(tmp_path, src: str, arch: str = "wse2", pe: bool = False) -> CslError:
    from csl_harness import compile_pe

    with pytest.raises(CslError) as e:
        if pe:
            compile_pe(tmp_path, src, FIFO_EXPORTS, w=1, arch=arch)
        else:
            write(tmp_path, {"layout.csl": sender_receiver_layout("u16"), "pe.csl": src})
            compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    return e.value


def test_a_fifo_simd_mode_is_wse2_only(tmp_path):
    src = FIFO_PE.replace("MODE", "simd_32")
    e = _error(tmp_path, src, "wse3", pe=True)
    line, col = position(src, ".{ .simd_mode")
    assert f"pe.csl:{line}:{col}" in str(e)
    assert "@allocate_fifo: .simd_mode is WSE-2 only" in str(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_simd_mode_takes_a_mode_name(tmp_path, arch):
    src = pe_source("@mov16(out, ad)", "@mov16(gd, in)", 8, 8, "u16",
                    out_opts=", .simd_mode = .simd_16")
    e = _error(tmp_path, src, arch)
    line, col = position(src, "@get_dsd(fabout_dsd")
    assert f"pe.csl:{line}:{col}" in str(e)
    assert ("fabout_dsd: .simd_mode takes one of .simd_32 | .simd_64 | .simd_32_or_64, "
            "got .simd_16") in str(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_simd_mode_packs_16_bit_operands_only(tmp_path, arch):
    src = pe_source("@mov32(out, a32d)", "@mov16(gd, in)", 4, 8, "u16",
                    out_opts=", .simd_mode = .simd_32")
    e = _error(tmp_path, src, arch)
    line, col = position(src, "out, a32d")
    assert f"pe.csl:{line}:{col}" in str(e)
    assert ("@mov32: operand 1 is a fabric DSD with .simd_mode, which packs 16-bit elements, "
            "and this operation's operand 1 is 32-bit") in str(e)


def test_simd_mode_leaves_no_half_for_an_index(tmp_path):
    src = pe_source("@mov16(out, ad, .{ .index = 1 })", "@mov16(gd, in)", 8, 8, "u16",
                    out_opts=", .simd_mode = .simd_32, .wavelet_index_offset = true")
    e = _error(tmp_path, src)
    line, col = position(src, "@get_dsd(fabout_dsd")
    assert f"pe.csl:{line}:{col}" in str(e)
    assert ("fabout_dsd: .simd_mode packs two elements a wavelet, so the high half cannot "
            "also carry the .index of wavelet_index_offset") in str(e)


# ------------------------------------------------------------------------------------------------
# the Python API takes the same option, under the same rules


def _dsl_program(pe_program, arch: str):
    from wsejax import dsl

    def layout():
        dsl.set_rectangle(1, 1)
        dsl.set_tile_code(0, 0, pe_program, {})

    return dsl.compile(layout, arch=arch)


def _dsl_sender(op: str, elem, mode="simd_32"):
    from wsejax import dsl

    def pe():
        a = dsl.var("a", elem[8])
        out = dsl.get_dsd(dsl.fabout_dsd, extent=8, fabric_color=4, simd_mode=mode)

        @dsl.fn
        def go():
            getattr(dsl, op)(out, dsl.get_dsd(dsl.mem1d_dsd, base_address=a, extent=8))
    return pe


def test_the_python_api_packs_as_csl_does():
    from wsejax import ir
    from wsejax.types import u16

    prog = _dsl_program(_dsl_sender("mov16", u16), "wse2")
    body = prog.classes[0].function("go").body
    (op,) = [s for s in ir.walk_stmts(body) if isinstance(s, ir.DsdOp)]
    assert op.dest.dsd.dsd == ir.FabOut(4, ir.Const(8, u16), None, False, False, (), "simd_32")


def test_the_python_api_refuses_what_csl_refuses():
    from wsejax import dsl
    from wsejax.errors import ProgramError
    from wsejax.types import u16, u32

    with pytest.raises(ProgramError, match="@mov32: operand 1 is a fabric DSD with "
                                           ".simd_mode, which packs 16-bit elements"):
        _dsl_program(_dsl_sender("mov32", u32), "wse2")
    with pytest.raises(ProgramError, match="fabout_dsd: .simd_mode takes one of .simd_32 "):
        _dsl_program(_dsl_sender("mov16", u16, "simd_8"), "wse2")

    def fifo_pe():
        dsl.allocate_fifo(dsl.var("buf", u16[8]), simd_mode="simd_32")

    with pytest.raises(ProgramError, match="@allocate_fifo: .simd_mode is WSE-2 only"):
        _dsl_program(fifo_pe, "wse3")
    _dsl_program(fifo_pe, "wse2")


@pytest.mark.parametrize("arch", ARCHES)
def test_a_packed_fabric_dsd_through_registers(tmp_path, arch):
    # the fabout and fabin go into DSRs; the registers keep the mode
    src = pe_source("@load_to_dsr(od, out); @load_to_dsr(s1, ad); @mov16(od, s1)",
                    "@load_to_dsr(gr, gd); @load_to_dsr(ir, in); @mov16(gr, ir)", 7, 8, "u16",
                    out_opts=", .simd_mode = .simd_32", in_opts=", .simd_mode = .simd_32")
    src = src.replace("fn main()", "const od = @get_dsr(dsr_dest, 1);\n"
                      "const s1 = @get_dsr(dsr_src1, 1);\nconst gr = @get_dsr(dsr_dest, 2);\n"
                      "const ir = @get_dsr(dsr_src1, 2);\nfn main()")
    eng, ref = exchanged(tmp_path, src.replace("|i|{8} -> got", "|i|{7} -> got"), arch, "u16", 8)
    check(eng, ref, [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_map_sends_and_receives_through_packed_fabric_dsds(tmp_path, arch):
    # the sender maps its 8 elements into a .simd_64 fabout (two a wavelet); the receiver
    # maps the .simd_64 fabin with b into got
    src = pe_source("@map(inc, ad, out)", "@map(plus, in, bd, gd)", 8, 8, "u16",
                    out_opts=", .simd_mode = .simd_64", in_opts=", .simd_mode = .simd_64")
    src = src.replace("fn main() void {", "fn inc(x: u16) u16 { return 3 * x + 1; }\n"
                      "fn plus(x: u16, y: u16) u16 { return x + y; }\nfn main() void {")
    eng, ref = exchanged(tmp_path, src, arch, "u16", 8)
    a = np.array([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88], np.uint16)
    b = np.array([100, 200, 300, 400, 500, 600, 700, 800], np.uint16)
    check(eng, ref, 3 * a + 1 + b)


def test_map_over_a_packed_fabric_dsd_takes_16_bit_elements(tmp_path):
    src = pe_source("@map(wide, ad, out)", "@mov16(gd, in)", 8, 8, "u16",
                    out_opts=", .simd_mode = .simd_64")
    src = src.replace("fn main() void {", "fn wide(x: u16) u32 { return 3; }\nfn main() void {")
    e = _error(tmp_path, src)
    line, col = position(src, "out)")
    assert f"pe.csl:{line}:{col}" in str(e)
    assert ("@map: argument 2 is a fabric DSD with .simd_mode, which packs 16-bit elements, "
            "and the callback's result is 32-bit") in str(e)
