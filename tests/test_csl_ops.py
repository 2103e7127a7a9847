"""DSD operation builtins (spec 8) written in CSL: the f32, fp16, mixed, conversion and 16-bit
integer ops, each in its accepted operand forms, run on the engine and the reference
interpreter on both arches and checked against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import out_program, out_row, position
from test_csl_handles import program as handles_program
from test_csl_handles import run_out

from wsejax import CslError

ARCHES = ["wse2", "wse3"]

def program(tmp_path, body: str, t: str, arch: str = "wse2"):
    return out_program(tmp_path, body, t, arch)


def outputs(prog, n: int, dtype):
    """`out` (n elements of dtype) of PE (0, 0): (engine, reference)."""
    eng, ref = out_row(prog, n, dtype, w=1)
    return eng[0], ref[0]


def dsd(name: str, n: int, at: int = 0) -> str:
    return (f"const {name} = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{{n}}} -> "
            f"out[i + {at}] }});\n")


def check(eng, ref, want) -> None:
    np.testing.assert_array_equal(eng.view(np.uint8), np.asarray(want).view(np.uint8))
    np.testing.assert_array_equal(ref.view(np.uint8), eng.view(np.uint8))


A = np.array([1.5, -2.0, 3.25, -0.5], np.float32)
B = np.array([-1.0, 4.0, 2.0, -0.75], np.float32)
H = np.array([0.5, -1.5, 2.25, 3.0], np.float16)
K = np.array([2.0, 0.5, -4.0, 0.25], np.float16)

INPUTS = """
var a = [4]f32 { 1.5, -2.0, 3.25, -0.5 };
var b = [4]f32 { -1.0, 4.0, 2.0, -0.75 };
var h = [4]f16 { 0.5, -1.5, 2.25, 3.0 };
var k = [4]f16 { 2.0, 0.5, -4.0, 0.25 };
const ad = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });
const bd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> b[i] });
const hd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> h[i] });
const kd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> k[i] });
"""

# ------------------------------------------------------------------------------------------------
# f32 and mixed fp16/f32 results

F32_OPS = INPUTS + """
var out = @zeros([26]f32);
var out_ptr: [*]f32 = &out;
""" + "".join(dsd(f"o{j}", 4, 4 * j) for j in range(6)) + """
fn main() void {
  @fmaxs(o0, ad, bd);
  @fmaxs(o1, ad, 0.0);
  @fabss(o2, ad);
  @fabss(o3, -7.5);
  @fmachs(o4, ad, hd, @as(f16, 2.0));
  @faddhs(o5, ad, hd);
  @fmaxs(&out[24], 0.25, ad);      // a pointer destination keeps the last element
  @faddhs(&out[25], 1.0, hd);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_f32_and_mixed_ops_match_numpy(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, F32_OPS, "f32", arch), 26, np.float32)
    h32 = H.astype(np.float32)
    want = np.concatenate([
        np.maximum(A, B), np.maximum(A, 0), np.abs(A), np.full(4, 7.5, np.float32),
        A + (H * np.float16(2)).astype(np.float32), A + h32,
        [max(np.float32(0.25), A[3])], [np.float32(1.0) + h32[3]],
    ]).astype(np.float32)
    check(eng, ref, want)


SUB_NEG_OPS = INPUTS + """
var out = @zeros([21]f32);
var out_ptr: [*]f32 = &out;
""" + "".join(dsd(f"o{j}", 4, 4 * j) for j in range(5)) + """
fn main() void {
  @fsubs(o0, ad, bd);
  @fsubs(o1, 1.5, ad);
  @fsubs(o2, ad, 0.25);
  @fnegs(o3, ad);
  @fnegs(o4, -2.5);
  @fsubs(&out[20], 10.0, bd);      // a pointer destination keeps the last element
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_fsubs_and_fnegs_match_numpy(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, SUB_NEG_OPS, "f32", arch), 21, np.float32)
    want = np.concatenate([
        A - B, np.float32(1.5) - A, A - np.float32(0.25), -A, np.full(4, 2.5, np.float32),
        [np.float32(10.0) - B[3]]]).astype(np.float32)
    check(eng, ref, want)


# ------------------------------------------------------------------------------------------------
# fp16 results

F16_OPS = INPUTS + """
var x = [4]i16 { -3, 7, 32767, -32768 };
const xd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> x[i] });
var out = @zeros([30]f16);
var out_ptr: [*]f16 = &out;
""" + "".join(dsd(f"o{j}", 4, 4 * j) for j in range(7)) + """
fn main() void {
  @fsubh(o0, hd, kd);
  @fsubh(o1, @as(f16, 1.0), hd);
  @fmaxh(o2, hd, kd);
  @fnegh(o3, hd);
  @fabsh(o4, hd);
  @fmovh(o5, hd);
  @xp162fh(o6, xd);
  @fmovh(&out[28], hd);            // the last source element
  @fmaxh(&out[29], @as(f16, 1.0), kd);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_fp16_ops_match_numpy(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, F16_OPS, "f16", arch), 30, np.float16)
    x = np.array([-3, 7, 32767, -32768], np.int16)
    want = np.concatenate([
        H - K, np.float16(1) - H, np.maximum(H, K), -H, np.abs(H), H, x.astype(np.float16),
        [H[3], max(np.float16(1), K[3])],
    ]).astype(np.float16)
    assert want[26] == 32768    # 32767 rounds to the nearest fp16
    check(eng, ref, want)


# ------------------------------------------------------------------------------------------------
# 16-bit integer results: conversions from floats and the bitwise ops

INT_OPS = """
var hf = [4]f16 { 2.75, -3.5, 65504.0, -0.5 };
var af = [4]f32 { 1.0e6, -1.0e6, -2.9, 5.99 };
var x = [4]u16 { 0xF0F0, 0x1234, 0x0001, 0xFFFF };
var y = [4]u16 { 0x0FF0, 0x4321, 0x0003, 0x8000 };
const hfd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> hf[i] });
const afd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> af[i] });
const xd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> x[i] });
const yd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> y[i] });
var out = @zeros([46]i16);
var out_ptr: [*]i16 = &out;
""" + "".join(dsd(f"o{j}", 4, 4 * j) for j in range(11)) + """
fn main() void {
  @fh2xp16(o0, hfd);
  @fs2xp16(o1, afd);
  @sub16(o2, xd, yd);
  @sub16(o3, xd, 5);
  @and16(o4, xd, yd);
  @and16(o5, 0x00FF, yd);
  @or16(o6, xd, yd);
  @or16(o7, xd, 0x0100);
  @xor16(o8, xd, yd);
  @xor16(o9, -1, xd);
  @fh2xp16(o10, @as(f16, -7.75));
  @fs2xp16(&out[44], 12.7);
  @fh2xp16(&out[45], @as(f16, -300.5));
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_conversions_and_16_bit_ops_match_numpy(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, INT_OPS, "i16", arch), 46, np.int16)
    x = np.array([0xF0F0, 0x1234, 0x0001, 0xFFFF], np.uint16)
    y = np.array([0x0FF0, 0x4321, 0x0003, 0x8000], np.uint16)
    u = np.concatenate([
        x - y, x - np.uint16(5), x & y, np.uint16(0xFF) & y, x | y, x | np.uint16(0x100),
        x ^ y, ~x]).astype(np.uint16)
    want = np.concatenate([
        [2, -3, 32767, 0],                       # truncated toward zero, saturated
        [32767, -32768, -2, 5],
        u.view(np.int16), [-7] * 4, [12, -300]]).astype(np.int16)
    check(eng, ref, want)


def test_sub16_takes_no_scalar_minuend(tmp_path):
    src = INT_OPS.replace("@sub16(o3, xd, 5)", "@sub16(o3, 5, xd)")
    with pytest.raises(CslError) as e:
        program(tmp_path, src, "i16")
    text = str(e.value)
    line, col = position((tmp_path / "pe.csl").read_text(), "@sub16(o3, 5")
    assert f"pe.csl:{line}:{col}" in text
    assert "@sub16 does not accept operand form (D, s, D); accepted: (D, D, D) (D, D, s)" in text


# ------------------------------------------------------------------------------------------------
# exponent scaling and normalisation: a pointer destination and scalar sources (spec 8)

SCALE_OPS = """
const dsd_ops = @import_module("<dsd_ops>");
var out = [11]f32 { 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0 };
var out_ptr: [*]f32 = &out;
var hs = @zeros([4]f16);
fn main() void {
  var x: f32 = -3.0;
  var k: i16 = -2;
  @fscales(&out[0], x, k);                 // -3 / 4
  @fscales(&out[1], 1.5, -149);            // 1.5 * 2**-149 rounds to 2 * 2**-149
  @fscales(&out[2], 3.0e38, 1);            // overflows to inf
  @fnorms(&out[3], 96.0);                  // 1.5 * 2**6
  @fnorms(&out[4], x);
  dsd_ops.scale(f32, &out[5], 5.0, @as(i16, 3), .{});
  dsd_ops.norm(f32, &out[6], -0.0, .{});
  @fscaleh(&hs[0], @as(f16, 0.75), 4);
  @fnormh(&hs[1], @as(f16, -40.0));
  dsd_ops.scale(@fp16(), &hs[2], @as(f16, 1.0), @as(i16, -24), .{});
  dsd_ops.norm(@fp16(), &hs[3], @as(f16, 6.0e-8), .{});
  for (@range(u16, 4)) |i| { out[7 + i] = hs[i]; }
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_fscale_and_fnorm_scale_by_powers_of_two(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, SCALE_OPS, "f32", arch), 11, np.float32)
    tiny = np.float32(2.0) * np.float32(2.0) ** -149
    h = np.array([12.0, -1.25, 2.0**-24, 1.0], np.float16).astype(np.float32)
    want = np.array([-0.75, tiny, np.inf, 1.5, -1.5, 40.0, -0.0, *h], np.float32)
    check(eng, ref, want)


def test_fnorm_takes_a_pointer_destination_only(tmp_path):
    src = SCALE_OPS.replace("@fnorms(&out[3], 96.0);",
                            "@fnorms(@get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> out[i] }),"
                            " 96.0);")
    with pytest.raises(CslError) as e:
        program(tmp_path, src, "f32")
    line, col = position((tmp_path / "pe.csl").read_text(), "@fnorms(@get_dsd")
    assert f"pe.csl:{line}:{col}" in str(e.value)
    assert "@fnorms does not accept operand form (D, s); accepted: (p, s)" in str(e.value)


# ------------------------------------------------------------------------------------------------
# @addc16: the carry out of each element goes into the next, from 0 at the op's start

ADDC_OPS = """
// 48-bit numbers as three 16-bit limbs, least significant first
var x = [6]u16 { 0xFFFF, 0xFFFF, 0x0001, 0x1234, 0x0000, 0xFFFF };
var y = [6]u16 { 0x0001, 0x0000, 0x0002, 0xFFFF, 0xFFFF, 0x0000 };
var out = @zeros([12]u16);
var out_ptr: [*]u16 = &out;
var acc: u16 = 0xFFFE;
const xd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> x[i] });
const yd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> y[i] });
const o0 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> out[i] });
const o1 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> out[6 + i] });
const accd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> acc[0] });
const ones = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> y[0] });
fn main() void {
  @addc16(o0, xd, yd);
  @addc16(o1, 0xFFFF, xd);
  @addc16(accd, accd, ones);    // one location, read after each write: in order
  out[9] = acc;
  sys.unblock_cmd_stream();
}
"""


def _addc(a, b):
    out, carry = [], 0
    for p, q in zip(a, b):
        total = p + q + carry
        out.append(total & 0xFFFF)
        carry = total >> 16
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_addc16_passes_the_carry_from_element_to_element(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, ADDC_OPS, "u16", arch), 12, np.uint16)
    x = [0xFFFF, 0xFFFF, 0x0001, 0x1234, 0x0000, 0xFFFF]
    y = [0x0001, 0x0000, 0x0002, 0xFFFF, 0xFFFF, 0x0000]
    # acc: 0xFFFE + 1 = 0xFFFF; + 1 = 0 carry 1; 0 + 1 + 1 = 2
    want = _addc(x, y) + _addc([0xFFFF] * 3, x[:3]) + [2, 0, 0]
    assert want[:3] == [0, 0, 4]      # (0x0001FFFFFFFF + 0x000200000001) mod 2**48, by limb
    check(eng, ref, np.array(want, np.uint16))


@pytest.mark.parametrize("arch", ARCHES)
def test_a_float_converted_to_u32_at_run_time_truncates_and_saturates(tmp_path, arch):
    got = run_out(handles_program(tmp_path, """
var xs = [4]f32 { 2.9, -1.5, 5.0e9, 3.0e9 };
fn main() void {
  const k = lay.get_x_coord();
  out[0] = @as(u32, xs[k]);
  out[1] = @as(u32, xs[k + 1]);
  var nan: f32 = 0.0;
  nan = nan / nan;
  out[2] = @as(u32, nan);
  out[3] = @as(u32, @as(f32, 4294967040.0) + xs[0] - 2.9);
  sys.unblock_cmd_stream();
}
""", arch, w=2), w=2)
    np.testing.assert_array_equal(got, [[2, 0, 0, 4294967040], [0, 4294967295, 0, 4294967040]])
