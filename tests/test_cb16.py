"""Programs of the cb16 fp16 format (`cslc --fp16-format=cb16`): cb16 values in memory, comptime
and runtime arithmetic rounded to cb16 after each operation, conversions, the `...h` DSD
operations, bitcasts, wavelets and 16-bit memcpy of the 16-bit patterns, on both arches; results
against numpy through the codec (`wsejax.cb16`) and, for a few patterns, by hand; the engine
against the reference (`check=True`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from csl_harness import compile_pe, position, sender_receiver_layout, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax import CslError, LayoutError, SdkRuntime, cb16
from wsejax.csl import compile_csl
from wsejax.memcpy import MemcpyDataType
from wsejax.types import DType

ARCHS = ["wse2", "wse3"]
BITS16 = MemcpyDataType.MEMCPY_16BIT

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
"""


def _cb16(x) -> np.ndarray:
    """`x` rounded to cb16 (through f32: for values made by one +, -, * or / of cb16 values
    that is rounding once)."""
    return cb16.decode(cb16.encode(np.asarray(x, np.float64).astype(np.float32)))


def _lit(x: float) -> np.float64:
    """A literal converted to cb16 (rounded once from its double)."""
    return np.float64(cb16.round_float(x))


def _start(prog):
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    return r


def _put16(r, name, values, w):
    host = np.tile(cb16.encode(values).astype(np.uint32), w)
    r.memcpy_h2d(r.get_id(name), host, 0, 0, w, 1, len(values), streaming=False,
                 data_type=BITS16)


def _get16(r, name, n, w) -> np.ndarray:
    """The 16-bit patterns of `name` on PE (0, 0), checked alike on every PE."""
    got = np.zeros(n * w, np.uint32)
    r.memcpy_d2h(got, r.get_id(name), 0, 0, w, 1, n, streaming=False, data_type=BITS16)
    got = got.reshape(w, n)
    assert (got == got[0]).all()
    return got[0].astype(np.uint16)


def _get32(r, name, n, w, dtype=np.float32) -> np.ndarray:
    got = np.zeros(n * w, dtype)
    r.memcpy_d2h(got, r.get_id(name), 0, 0, w, 1, n, streaming=False)
    return got.reshape(w, n)[0]


ARITH = HEAD + """
const T = @fp16();
var a: [4]T;
var b = [4]T { 0.5, 3.0, -1.25, 100.0 };
var h: [4]T;
var s: [4]f32;
var r: [4]f32;
var a_ptr: [*]T = &a;
var h_ptr: [*]T = &h;
var s_ptr: [*]f32 = &s;
var r_ptr: [*]f32 = &r;
const da = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });
const db = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> b[i] });
const dh = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> h[i] });
const ds = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> s[i] });
fn main() void {
  @faddh(dh, da, db);                    // h = a + b
  @fmach(dh, dh, da, @as(T, 0.3));       // h = h + a * 0.3
  @fh2s(ds, dh);                         // s = h
  @fmachs(ds, ds, da, @as(T, 2.5));      // s = s + a * 2.5 (the product in cb16)
  for (@range(u16, 4)) |i| {
    const x: T = a[i] * b[i] - @as(T, 0.1);
    r[i] = x;
  }
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(a_ptr, "a"); @export_symbol(h_ptr, "h"); @export_symbol(s_ptr, "s");
  @export_symbol(r_ptr, "r"); @export_symbol(main);
}
"""

ARITH_EXPORTS = """@export_name("a", [*]@fp16(), true);
@export_name("h", [*]@fp16(), true);
@export_name("s", [*]f32, true);
@export_name("r", [*]f32, true);
@export_name("main", fn()void);"""


@pytest.mark.parametrize("arch", ARCHS)
def test_cb16_dsd_ops_arithmetic_and_16bit_memcpy(tmp_path, arch):
    prog = compile_pe(tmp_path, ARITH, ARITH_EXPORTS, arch=arch, fp16_format="cb16")
    assert prog.fp16 is DType.cb16
    w = prog.width
    a = _cb16([1.1, -2.7, 0.013, 3.3e4])
    r = _start(prog)
    _put16(r, "a", a, w)
    r.launch("main")
    f = np.float64
    b = _cb16([0.5, 3.0, -1.25, 100.0]).astype(f)
    h = _cb16(a + b)
    h = _cb16(h + _cb16(a * _lit(0.3)))
    s = (h.astype(f) + _cb16(a * 2.5)).astype(np.float32)
    want_r = _cb16(_cb16(a * b) - _lit(0.1))
    np.testing.assert_array_equal(_get16(r, "h", 4, w), cb16.encode(h))
    np.testing.assert_array_equal(_get32(r, "s", 4, w), s)
    np.testing.assert_array_equal(_get32(r, "r", 4, w), want_r)
    assert want_r[3] == np.inf           # 3.3e6 is past cb16's largest value, 1023 * 2**11


CONVERT = HEAD + """
var x: [8]cb16;
var i16s = [8]i16 { 1025, 1027, -3, 2047, 4097, 32767, 0, 1 };
var out_i: [8]i16;
var out_h: [8]cb16;
var out_f: [8]f32;
var bits: [8]u16;
var six: [2]u16;
var x_ptr: [*]cb16 = &x;
var oi_ptr: [*]i16 = &out_i;
var oh_ptr: [*]cb16 = &out_h;
var of_ptr: [*]f32 = &out_f;
var bits_ptr: [*]u16 = &bits;
var six_ptr: [*]u16 = &six;
const comptime_six: cb16 = 6.0;
fn main() void {
  for (@range(u16, 8)) |k| {
    out_i[k] = @as(i16, x[k]);                       // truncated toward zero, saturated
    out_h[k] = @as(cb16, i16s[k]);                   // rounded to nearest even
    out_f[k] = @as(f32, x[k]) + @as(f32, 0.25);      // exact, then in f32
    bits[k] = @bitcast(u16, x[k]);
  }
  six[0] = @bitcast(u16, comptime_six);
  six[1] = @bitcast(u16, @bitcast(cb16, six[0]) + @as(cb16, 0.5));
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(x_ptr, "x"); @export_symbol(oi_ptr, "oi"); @export_symbol(oh_ptr, "oh");
  @export_symbol(of_ptr, "of"); @export_symbol(bits_ptr, "bits");
  @export_symbol(six_ptr, "six"); @export_symbol(main);
}
"""

CONVERT_EXPORTS = "\n".join(f'@export_name("{n}", [*]{t}, true);' for n, t in (
    ("x", "cb16"), ("oi", "i16"), ("oh", "cb16"), ("of", "f32"), ("bits", "u16"),
    ("six", "u16"))) + '\n@export_name("main", fn()void);'


@pytest.mark.parametrize("arch", ARCHS)
def test_cb16_conversions_and_bitcasts(tmp_path, arch):
    prog = compile_pe(tmp_path, CONVERT, CONVERT_EXPORTS, arch=arch, fp16_format="cb16")
    w = prog.width
    x = _cb16([-2.75, 40000.5, -1e6, 1.0 / 3.0, 1e-13, -0.0, np.inf, np.nan])
    r = _start(prog)
    _put16(r, "x", x, w)
    r.launch("main")
    # by hand: 6.0 = 1.5 * 2**2 (field 44, mantissa 256), 6.5 = 1.625 * 2**2 (mantissa 320)
    assert _get16(r, "six", 2, w).tolist() == [0x5900, 0x5940]
    np.testing.assert_array_equal(_get16(r, "bits", 8, w), cb16.encode(x))
    # by hand: 1025 and 2047 are ties between neighbours 2 apart (4097: 4 apart)
    assert cb16.decode(_get16(r, "oh", 8, w)).tolist() == [
        1024.0, 1028.0, -3.0, 2048.0, 4096.0, 32768.0, 0.0, 1.0]
    assert _get32(r, "oi", 4, w, np.uint32).view(np.int16).tolist() == [
        -2, 32767, -32768, 0, 0, 0, 32767, 0]
    want_f = x.astype(np.float32) + np.float32(0.25)
    np.testing.assert_array_equal(_get32(r, "of", 8, w), want_f)


OPS = HEAD + """
var a: [16]cb16;
var b: [16]cb16;
var f: [16]f32;
var i: [16]i16;
var out = @zeros([9, 16]cb16);
var out_i: [16]i16;
var a_ptr: [*]cb16 = &a;
var b_ptr: [*]cb16 = &b;
var f_ptr: [*]f32 = &f;
var i_ptr: [*]i16 = &i;
var out_ptr: [*]cb16 = &out;
var oi_ptr: [*]i16 = &out_i;
const da = @get_dsd(mem1d_dsd, .{ .tensor_access = |k|{16} -> a[k] });
const db = @get_dsd(mem1d_dsd, .{ .tensor_access = |k|{16} -> b[k] });
const df = @get_dsd(mem1d_dsd, .{ .tensor_access = |k|{16} -> f[k] });
const di = @get_dsd(mem1d_dsd, .{ .tensor_access = |k|{16} -> i[k] });
const doi = @get_dsd(mem1d_dsd, .{ .tensor_access = |k|{16} -> out_i[k] });
fn row(comptime n: u16) mem1d_dsd {
  return @get_dsd(mem1d_dsd, .{ .tensor_access = |k|{16} -> out[n, k] });
}
fn main() void {
  @fsubh(row(0), da, db);
  @fmulh(row(1), da, db);
  @fmaxh(row(2), da, db);
  @fnegh(row(3), da);
  @fabsh(row(4), db);
  @fs2h(row(5), df);
  @xp162fh(row(6), di);
  @fmach(row(7), da, db, @as(cb16, -0.75));
  for (@range(u16, 16)) |k| {
    out[8, k] = a[k] / b[k];
  }
  @fh2xp16(doi, da);
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(a_ptr, "a"); @export_symbol(b_ptr, "b"); @export_symbol(f_ptr, "f");
  @export_symbol(i_ptr, "i"); @export_symbol(out_ptr, "out"); @export_symbol(oi_ptr, "oi");
  @export_symbol(main);
}
"""

OPS_EXPORTS = "\n".join(f'@export_name("{n}", [*]{t}, true);' for n, t in (
    ("a", "cb16"), ("b", "cb16"), ("f", "f32"), ("i", "i16"), ("out", "cb16"),
    ("oi", "i16"))) + '\n@export_name("main", fn()void);'


def _operands(rng):
    """16 cb16 values of each operand with the specials and the edges of the range."""
    a = np.float32(rng.standard_normal(16) * 2.0 ** rng.integers(-45, 12, 16))
    b = np.float32(rng.standard_normal(16) * 2.0 ** rng.integers(-10, 10, 16))
    a[:6] = [np.inf, -0.0, 2.0 ** -50, cb16.MAX_FINITE, 3.0, np.nan]
    b[:6] = [2.0, -1.0, 0.5, 0.0, 3.0, 1.0]
    f = np.float32(rng.standard_normal(16) * 2.0 ** rng.integers(-60, 25, 16))
    i = rng.integers(-32768, 32768, 16).astype(np.int16)
    return _cb16(a), _cb16(b), f, i


@pytest.mark.parametrize("arch", ARCHS)
def test_cb16_dsd_ops_against_the_codec(tmp_path, arch):
    prog = compile_pe(tmp_path, OPS, OPS_EXPORTS, arch=arch, fp16_format="cb16")
    w = prog.width
    a, b, f, i = _operands(np.random.default_rng(7))
    r = _start(prog)
    _put16(r, "a", a, w)
    _put16(r, "b", b, w)
    r.memcpy_h2d(r.get_id("f"), np.tile(f, w), 0, 0, w, 1, 16, streaming=False)
    r.memcpy_h2d(r.get_id("i"), np.tile(i.view(np.uint16).astype(np.uint32), w), 0, 0, w, 1,
                 16, streaming=False, data_type=BITS16)
    r.launch("main")
    d = np.float64
    with np.errstate(all="ignore"):
        rows = [_cb16(a.astype(d) - b), _cb16(a.astype(d) * b), np.fmax(a, b), -a, np.abs(b),
                _cb16(f), _cb16(i), _cb16(a + _cb16(b.astype(d) * -0.75)),
                _cb16(a.astype(d) / b)]
        want_i = np.clip(np.trunc(np.nan_to_num(a, nan=0.0)), -32768, 32767).astype(np.int16)
    got = _get16(r, "out", 9 * 16, w).reshape(9, 16)
    for k, want in enumerate(rows):
        np.testing.assert_array_equal(got[k], cb16.encode(want), err_msg=f"row {k}")
    np.testing.assert_array_equal(_get16(r, "oi", 16, w).view(np.int16), want_i)


def test_cb16_comptime_values_are_rounded_once(tmp_path):
    src = HEAD + """
const third: cb16 = 1.0 / 3.0;
const sum: cb16 = third + @as(cb16, 1.0);
const near = @as(cb16, 1.0 + 1.0 / 1024.0 + 1.0 / 1099511627776.0);
const big: cb16 = 3000000;
const q = sum / third;
var out = [5]cb16 { third, sum, near, big, q };
var more = [2]cb16 { 1000.5, 0.1 };
var filled = @constants([2]cb16, 0.1);
var out_ptr: [*]cb16 = &out;
var more_ptr: [*]cb16 = &more;
var filled_ptr: [*]cb16 = &filled;
fn main() void { sys.unblock_cmd_stream(); }
comptime {
  @export_symbol(out_ptr, "out"); @export_symbol(more_ptr, "more");
  @export_symbol(filled_ptr, "filled"); @export_symbol(main);
}
"""
    exports = '@export_name("out", [*]cb16, true);\n@export_name("main", fn()void);\n' \
        '@export_name("more", [*]cb16, true);\n@export_name("filled", [*]cb16, true);'
    prog = compile_pe(tmp_path, src, exports, fp16_format="cb16")
    r = _start(prog)
    r.launch("main")
    got = cb16.decode(_get16(r, "out", 5, prog.width))
    # by hand: 1/3 = 0.0101010101|0101...b, to 10 significant bits up to 683 / 2048; 1 + that
    # = 2731 / 2048 needs 12 bits: 682.75 / 512, a quarter past 682, up to 683 / 512; their
    # quotient is 4 exactly
    third, sum_ = 683 / 2048, 683 / 512
    # 1 + 2**-10 + 2**-40 is just above the tie 1 + 2**-10: up to 1 + 2**-9 (through f32 it
    # would have been a tie, rounded down to 1)
    assert got.tolist() == [third, sum_, 1 + 2 ** -9, np.inf, 4.0]
    tenth = 819 / 8192          # by hand: 0.1 * 2**13 = 819.2, down to 819 (10 bits)
    assert cb16.decode(_get16(r, "more", 2, prog.width)).tolist() == [1000.0, tenth]
    assert cb16.decode(_get16(r, "filled", 2, prog.width)).tolist() == [tenth, tenth]


@pytest.mark.parametrize("arch", ARCHS)
def test_cb16_values_travel_in_wavelets_as_their_patterns(tmp_path, arch):
    pe = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
var src = [3]cb16 { 6.0, -0.3, 1000.5 };
var got: [3]cb16;
var raw: [3]u16;
var got_ptr: [*]cb16 = &got;
const q_out = @get_output_queue(2);
const q_in = @get_input_queue(2);
const out_dsd = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 3, .output_queue = q_out }
                         else .{ .extent = 3, .fabric_color = c, .output_queue = q_out });
const in_dsd = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 3, .input_queue = q_in }
                        else .{ .extent = 3, .fabric_color = c, .input_queue = q_in });
const src_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> src[i] });
const raw_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> raw[i] });
fn main() void {
  if (sender) {
    @fmovh(out_dsd, src_dsd);
  } else {
    @mov16(raw_dsd, in_dsd);               // the wavelets' low halves, as they came
    for (@range(u16, 3)) |i| { got[i] = @bitcast(cb16, raw[i]); }
  }
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(got_ptr, "got"); @export_symbol(main);
  if (@is_arch("wse3")) {
    @initialize_queue(q_out, .{ .color = c });
    @initialize_queue(q_in, .{ .color = c });
  }
}
"""
    write(tmp_path, {"layout.csl": sender_receiver_layout("cb16"), "pe.csl": pe})
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch, fp16_format="cb16")
    r = _start(prog)
    r.launch("main")
    got = np.zeros(6, np.uint32)
    r.memcpy_d2h(got, r.get_id("got"), 0, 0, 2, 1, 3, streaming=False, data_type=BITS16)
    want = cb16.encode([6.0, cb16.round_float(-0.3), 1000.5])      # 1000.5: a tie, to 1000
    assert want.tolist()[0] == 0x5900 and cb16.decode(want)[2] == 1000.0
    np.testing.assert_array_equal(got[3:].astype(np.uint16), want)


@pytest.mark.parametrize("fmt, other", [("f16", "cb16"), ("cb16", "f16"), ("cb16", "bf16"),
                                        ("bf16", "cb16")])
def test_a_cb16_program_holds_no_other_fp16_type(tmp_path, fmt, other):
    src = HEAD + f"""
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void {{
  var y: {other} = 1.5;
  out[0] = y;
}}
comptime {{ @export_symbol(out_ptr, "out"); @export_symbol(main); }}
"""
    exports = '@export_name("out", [*]f32, true);\n@export_name("main", fn()void);'
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, exports, fp16_format=fmt)
    assert (err.value.line, err.value.col) == position(src, "var y")
    assert f"{other} in runtime code, but the program's fp16 format is {fmt}" in str(err.value)


def test_an_unknown_fp16_format_is_a_layout_error(tmp_path):
    with pytest.raises(LayoutError, match="--fp16-format=f8: expected one of f16, cb16, bf16"):
        compile_pe(tmp_path, HEAD, "", fp16_format="f8")


POINTERS = HEAD + """
var x = [4]cb16 { 1.5, -2.25, 6.0, 0.1 };
var y = [2]u32 { 0, 0 };
var bits: [4]u16;
var moved: [4]u16;
var back: [4]cb16;
var bits_ptr: [*]u16 = &bits;
var moved_ptr: [*]u16 = &moved;
var back_ptr: [*]cb16 = &back;
var y_ptr: [*]u32 = &y;
const dx = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> x[i] });
const dmoved = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> moved[i] });
fn pick(k: u16) *cb16 { return &x[k]; }
fn main() void {
  for (@range(u16, 4)) |k| {
    const p = pick(k);                         // a pointer known only at run time
    p.* = p.* * @as(cb16, 3.0);
  }
  const as_bits = @ptrcast([*]u16, &x);
  for (@range(u16, 4)) |k| { bits[k] = as_bits[k]; }
  const words = @ptrcast([*]u32, &x);
  y[0] = words[0];                             // two cb16 patterns, the first in the low half
  @mov16(dmoved, dx);                          // a 16-bit move takes the patterns as they are
  const as_cb16 = @ptrcast([*]cb16, &moved);
  for (@range(u16, 4)) |k| { back[k] = as_cb16[3 - k]; }
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(bits_ptr, "bits"); @export_symbol(moved_ptr, "moved");
  @export_symbol(back_ptr, "back"); @export_symbol(y_ptr, "y"); @export_symbol(main);
}
"""

POINTER_EXPORTS = "\n".join(f'@export_name("{n}", [*]{t}, true);' for n, t in (
    ("bits", "u16"), ("moved", "u16"), ("back", "cb16"), ("y", "u32"))) + \
    '\n@export_name("main", fn()void);'


@pytest.mark.parametrize("arch", ARCHS)
def test_cb16_through_runtime_pointers_pointer_casts_and_mov16(tmp_path, arch):
    prog = compile_pe(tmp_path, POINTERS, POINTER_EXPORTS, arch=arch, fp16_format="cb16")
    w = prog.width
    r = _start(prog)
    r.launch("main")
    x = _cb16(np.float64([1.5, -2.25, 6.0, cb16.round_float(0.1)]) * 3.0)
    want = cb16.encode(x)
    np.testing.assert_array_equal(_get16(r, "bits", 4, w), want)
    np.testing.assert_array_equal(_get16(r, "moved", 4, w), want)
    np.testing.assert_array_equal(_get16(r, "back", 4, w), want[::-1])
    assert int(_get32(r, "y", 1, w, np.uint32)[0]) == int(want[0]) | int(want[1]) << 16
    assert want[2] == 0x5C40           # by hand: 18.0 = 1.125 * 2**4: field 46, mantissa 64
    assert r.read_symbol(1, 0, "x", np.uint16).tolist() == want.tolist()


DATA_TASK = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const math = @import_module("<math>");
var src = [3]cb16 { 2.0, 0.3, 1000.0 };
var got = @zeros([3]cb16);
var n: u16 = 0;
var got_ptr: [*]cb16 = &got;
const q_out = @get_output_queue(2);
const q_in = @get_input_queue(2);
const out_dsd = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 3, .output_queue = q_out }
                         else .{ .extent = 3, .fabric_color = c, .output_queue = q_out });
const src_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> src[i] });
const data_id: data_task_id = if (@is_arch("wse2")) @get_data_task_id(c)
                              else @get_data_task_id(q_in);
task take(x: cb16) void {
  got[n] = math.sqrt(x) + x;
  n += 1;
  if (n == 3) { sys.unblock_cmd_stream(); }
}
fn main() void {
  if (sender) { @fmovh(out_dsd, src_dsd); sys.unblock_cmd_stream(); }
}
comptime {
  @export_symbol(got_ptr, "got"); @export_symbol(main);
  if (!sender) { @bind_data_task(take, data_id); }
  if (@is_arch("wse3")) {
    if (sender) { @initialize_queue(q_out, .{ .color = c }); }
    else { @initialize_queue(q_in, .{ .color = c }); }
  }
}
"""


@pytest.mark.parametrize("arch", ARCHS)
def test_a_data_task_takes_a_cb16_argument_from_its_wavelet(tmp_path, arch):
    write(tmp_path, {"layout.csl": sender_receiver_layout("cb16"), "pe.csl": DATA_TASK})
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch, fp16_format="cb16")
    r = _start(prog)
    r.launch("main")
    got = np.zeros(6, np.uint32)
    r.memcpy_d2h(got, r.get_id("got"), 0, 0, 2, 1, 3, streaming=False, data_type=BITS16)
    x = np.float64([2.0, cb16.round_float(0.3), 1000.0])
    want = _cb16(_cb16(np.sqrt(x)) + x)
    np.testing.assert_array_equal(got[3:].astype(np.uint16), cb16.encode(want))


def test_simprint_writes_a_cb16_value_as_its_pattern_or_its_value(tmp_path, capsys):
    src = HEAD + """
const prt = @import_module("<simprint>");
const six: cb16 = 6.0;
var x: cb16 = 6.5;
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn main() void {
  x = x * @as(cb16, -1.0);
  prt.fmt_no_nl("{X} {f} {X} {b}\\n", .{x, x, six, x});
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""
    exports = '@export_name("out", [*]f32, true);\n@export_name("main", fn()void);'
    r = _start(compile_pe(tmp_path, src, exports, w=1, fp16_format="cb16"))
    r.launch("main")
    assert "D940 -6.5 5900 1101100101000000" in capsys.readouterr().out


def test_a_launch_argument_of_cb16_is_rounded_to_cb16(tmp_path):
    src = HEAD + """
var out: [2]cb16;
var out_ptr: [*]cb16 = &out;
fn set(v: cb16, k: u16) void { out[k] = v; sys.unblock_cmd_stream(); }
comptime { @export_symbol(out_ptr, "out"); @export_symbol(set); }
"""
    exports = '@export_name("out", [*]cb16, true);\n@export_name("set", fn(cb16, u16)void);'
    prog = compile_pe(tmp_path, src, exports, w=1, fp16_format="cb16")
    r = _start(prog)
    r.launch("set", 0.3, 0)
    r.launch("set", np.float32(1000.5), 1)
    assert cb16.decode(_get16(r, "out", 2, 1)).tolist() == [cb16.round_float(0.3), 1000.0]


def test_a_saved_cb16_program_loads_with_its_format(tmp_path):
    from wsejax import load_program, save_program

    src = HEAD + """
var out = [2]@fp16() { 6.0, 0.1 };
var out_ptr: [*]@fp16() = &out;
fn main() void { out[1] = out[1] * out[0]; sys.unblock_cmd_stream(); }
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""
    exports = '@export_name("out", [*]@fp16(), true);\n@export_name("main", fn()void);'
    save_program(compile_pe(tmp_path, src, exports, w=1, fp16_format="cb16"), tmp_path / "out")
    prog = load_program(tmp_path / "out")
    assert prog.fp16 is DType.cb16
    r = _start(prog)
    r.launch("main")
    # by hand: 0.1 is 0.0999755859375 (1.599609375 * 2**-4), times 6 0.5998535..., 614.25
    # ulps of 2**-10: 614 / 1024 = 1.19921875 * 2**-1 (field 41, mantissa 102)
    assert _get16(r, "out", 2, 1).tolist() == [0x5900, 41 << 9 | 102]


# -- the element functions of the `...h` operations, engine and reference, over cb16 values ------

def _same_values(got, want, what):
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"{what}: got {got[~same][:4]}, want {want[~same][:4]}"


_JITTED: dict = {}
# fixed lengths: one shape for the engine's functions
_PATTERNS = st.lists(st.tuples(*[st.integers(0, 0xFFFF)] * 3), min_size=16, max_size=16)


@given(_PATTERNS, st.lists(st.floats(width=32), min_size=8, max_size=8),
       st.lists(st.integers(-32768, 32767), min_size=8, max_size=8))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_cb16_element_ops_of_engine_and_reference_against_numpy(triples, floats, ints):
    from wsejax.engine.cb16 import OPS_CB16
    from wsejax.reference.elements import element_ops

    ref_ops = element_ops(DType.cb16)
    a, b, s = (cb16.decode(np.array(col, np.uint16)) for col in zip(*triples))
    f = np.array(floats, np.float32)
    i = np.array(ints, np.int16)
    k = np.resize(i, len(a)) >> np.int16(8)        # scale counts of -128..127
    d = np.float64
    with np.errstate(all="ignore"):
        cases = {
            "faddh": ((a, b), _cb16(a.astype(d) + b)),
            "fsubh": ((a, b), _cb16(a.astype(d) - b)),
            "fmulh": ((a, b), _cb16(a.astype(d) * b)),
            "fmach": ((a, b, s), _cb16(a + _cb16(b.astype(d) * s).astype(d))),
            "fmachs": ((a, b, s), (a.astype(d) + _cb16(b.astype(d) * s)).astype(np.float32)),
            "fs2h": ((f,), _cb16(f)),
            "xp162fh": ((i,), _cb16(i)),
            "fh2s": ((a,), a),
            "fscaleh": ((a, k), _cb16(np.ldexp(a.astype(d), np.clip(k, -400, 400)))),
            "fnormh": ((a,), np.where(np.isfinite(a) & (a != 0), 2 * np.frexp(a)[0], a)),
        }
    for name, (args, want) in cases.items():
        fn = _JITTED.setdefault(name, jax.jit(OPS_CB16[name].fn))
        got = np.asarray(fn(*(jnp.asarray(x) for x in args)))
        _same_values(got, want, f"engine {name}")
        ref = [ref_ops[name].fn(*xs) for xs in zip(*args)]
        _same_values(ref, want, f"reference {name}")
