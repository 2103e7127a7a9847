"""The fp16 format of a program (`cslc --fp16-format`): with bf16, `@fp16()` is bf16, and the
fp16 DSD operations, conversions, runtime arithmetic and memcpy of 16-bit data work on bf16;
only the selected format may appear in runtime code. Each program runs in check mode (the
reference beside the engine, every command compared) and is checked against numpy
(ml_dtypes' bfloat16, rounded once per operation)."""

from __future__ import annotations

import math
from fractions import Fraction

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from csl_harness import compile_pe, position
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax import CslError, SdkRuntime, cb16
from wsejax.engine import cb16 as engine_cb16
from wsejax.memcpy import MemcpyDataType
from wsejax.opspec import OPS, for_fp16
from wsejax.types import DType

BF16 = ml_dtypes.bfloat16

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
"""

BF16_PROGRAM = HEAD + """
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
  @fmachs(ds, ds, da, @as(T, 2.5));      // s = s + a * 2.5 (the product in bf16)
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

BF16_EXPORTS = """@export_name("a", [*]@fp16(), true);
@export_name("h", [*]@fp16(), true);
@export_name("s", [*]f32, true);
@export_name("r", [*]f32, true);
@export_name("main", fn()void);"""


def _bf16(x) -> np.ndarray:
    return np.asarray(x, np.float64).astype(np.float32).astype(BF16)


def _expected(a: np.ndarray, b: np.ndarray):
    """h, s and r of BF16_PROGRAM, each operation rounded once."""
    f = np.float64
    h = _bf16(a.astype(f) + b.astype(f))
    h = _bf16(h.astype(f) + _bf16(a.astype(f) * float(_bf16(0.3))).astype(f))
    s = h.astype(np.float32)
    s = (s.astype(f) + _bf16(a.astype(f) * 2.5).astype(f)).astype(np.float32)
    r = _bf16(_bf16(a.astype(f) * b.astype(f)).astype(f) - float(_bf16(0.1))).astype(np.float32)
    return h, s, r


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_bf16_operations_conversions_arithmetic_and_memcpy(tmp_path, arch):
    prog = compile_pe(tmp_path, BF16_PROGRAM, BF16_EXPORTS, arch=arch, fp16_format="bf16")
    assert prog.fp16 is DType.bf16
    a = _bf16([1.1, -2.7, 0.013, 3.3e4])
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    w = prog.width
    bits16 = MemcpyDataType.MEMCPY_16BIT
    host = np.tile(a.view(np.uint16).astype(np.uint32), w)
    r.memcpy_h2d(r.get_id("a"), host, 0, 0, w, 1, 4, streaming=False, data_type=bits16)
    r.launch("main")
    got_h = np.zeros(4 * w, np.uint32)
    r.memcpy_d2h(got_h, r.get_id("h"), 0, 0, w, 1, 4, streaming=False, data_type=bits16)
    got_s = np.zeros(4 * w, np.float32)
    r.memcpy_d2h(got_s, r.get_id("s"), 0, 0, w, 1, 4, streaming=False)
    got_r = np.zeros(4 * w, np.float32)
    r.memcpy_d2h(got_r, r.get_id("r"), 0, 0, w, 1, 4, streaming=False)
    b = _bf16([0.5, 3.0, -1.25, 100.0])
    want_h, want_s, want_r = _expected(a, b)
    np.testing.assert_array_equal(got_h[:4].astype(np.uint16), want_h.view(np.uint16))
    np.testing.assert_array_equal(got_s[:4], want_s)
    np.testing.assert_array_equal(got_r[:4], want_r)


def test_the_op_table_of_a_format_has_its_fp16_operands():
    table = for_fp16(DType.bf16)
    assert table["fmach"].srcs == (DType.bf16,) * 3 and table["fh2s"].dest is DType.f32
    assert table["fmachs"].srcs == (DType.f32, DType.bf16, DType.bf16)
    assert for_fp16(DType.f16) is OPS


@pytest.mark.parametrize("fmt, other", [("f16", "bf16"), ("bf16", "f16")])
def test_the_other_format_in_runtime_code_is_located(tmp_path, fmt, other):
    src = HEAD + f"""
var x: [2]{other};
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void {{ out[0] = x[0]; }}
comptime {{ @export_symbol(out_ptr, "out"); @export_symbol(main); }}
"""
    exports = '@export_name("out", [*]f32, true);\n@export_name("main", fn()void);'
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, exports, fp16_format=fmt)
    assert (err.value.line, err.value.col) == position(src, "var x")
    assert f"'var x': {other} in runtime code, but the program's fp16 format is {fmt}" \
        in str(err.value)


def test_the_other_format_as_a_comptime_value_is_accepted(tmp_path):
    src = HEAD + """
const third: bf16 = 1.0 / 3.0;          // 171 / 512 in bf16
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn main() void { out[0] = @as(f32, 1.0) + third; sys.unblock_cmd_stream(); }
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""
    exports = '@export_name("out", [*]f32, true);\n@export_name("main", fn()void);'
    r = SdkRuntime(compile_pe(tmp_path, src, exports), check=True)
    r.load()
    r.run()
    r.launch("main")
    got = np.zeros(2, np.float32)
    r.memcpy_d2h(got, r.get_id("out"), 0, 0, 2, 1, 1, streaming=False)
    assert got.tolist() == [1.0 + 171 / 512] * 2


# -- the cb16 format's codec, against a reference written from its definition ---------------------

def _cb16_value(b: int) -> float:
    """The value of cb16 bit pattern `b`, from the format's definition (sign | exp6 | man9, bias
    42; exponent field 0 subnormal, 63 infinity or NaN)."""
    sign = -1.0 if b >> 15 else 1.0
    field, mant = (b >> 9) & 63, b & 511
    if field == 63:
        return sign * math.inf if mant == 0 else math.nan
    if field == 0:
        return sign * math.ldexp(mant, 1 - 42 - 9)
    return sign * math.ldexp(512 + mant, field - 42 - 9)


_CB16_BITS = {_cb16_value(b): b for b in range(0x8000) if not math.isnan(_cb16_value(b))}


def _cb16_reference(x: float) -> int:
    """The cb16 pattern of f32 `x`: nearest value, ties to even significand, past the largest
    finite value infinity."""
    if math.isnan(x):
        return 0x7F00 | (0x8000 if math.copysign(1, x) < 0 else 0)
    sign = 0x8000 if math.copysign(1, x) < 0 else 0
    a = abs(Fraction(x)) if math.isfinite(x) else None
    if a is None:
        return sign | 0x7E00
    if a == 0:
        return sign
    e = max(math.floor(math.log2(a)), 1 - 42)
    while Fraction(2) ** e > a:                  # log2 of a Fraction may be off by one
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    e = max(e, 1 - 42)
    ulp = Fraction(2) ** (e - 9)
    v = round(a / ulp) * ulp                     # round() of a Fraction: ties to even
    if v >= 2 ** 21:
        return sign | 0x7E00
    return sign | _CB16_BITS[float(v)]


def test_cb16_six_is_0x5900_and_its_extremes():
    assert int(cb16.encode(6.0)) == 0x5900 and float(cb16.decode(0x5900)) == 6.0
    assert float(cb16.decode(0x7DFF)) == cb16.MAX_FINITE == 1023 * 2.0 ** 11
    assert float(cb16.decode(0x0001)) == 2.0 ** -50 and float(cb16.decode(0x0200)) == 2.0 ** -41
    assert float(cb16.decode(0x7E00)) == math.inf and float(cb16.decode(0xFE00)) == -math.inf
    assert math.isnan(float(cb16.decode(0x7E01)))
    assert int(cb16.encode(1023.5 * 2.0 ** 11)) == 0x7E00     # a tie past the top: infinity
    assert int(cb16.encode(2.0 ** -51)) == 0 and int(cb16.encode(3 * 2.0 ** -51)) == 2


def test_cb16_every_pattern_decodes_by_the_definition_and_encodes_back():
    bits = np.arange(1 << 16)
    got = cb16.decode(bits)
    want = np.array([_cb16_value(int(b)) for b in bits], np.float32)
    np.testing.assert_array_equal(got, want)
    finite = np.isfinite(want)
    np.testing.assert_array_equal(cb16.encode(got[finite]), bits[finite])
    engine = np.asarray(engine_cb16.decode(jnp.asarray(bits, jnp.uint16)))
    np.testing.assert_array_equal(engine.view(np.uint32), got.view(np.uint32))
    # the midpoints between neighbours (exact in f32) round to the even neighbour
    low = bits[:0x7DFF]
    mid = ((got[low].astype(np.float64) + got[low + 1]) / 2).astype(np.float32)
    even = np.where(low % 2 == 0, low, low + 1)
    np.testing.assert_array_equal(cb16.encode(mid), even)
    np.testing.assert_array_equal(np.asarray(engine_cb16.encode(jnp.asarray(mid))), even)


@given(st.lists(st.floats(width=32, allow_nan=True), min_size=1, max_size=64))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_cb16_encode_rounds_f32_to_nearest_even(xs):
    x = np.array(xs, np.float32)
    want = np.array([_cb16_reference(float(v)) for v in x], np.uint16)
    np.testing.assert_array_equal(cb16.encode(x), want)
    # the engine's side on a fixed length, so that it compiles once for every example
    padded = jnp.asarray(np.pad(x, (0, 64 - len(x))))
    np.testing.assert_array_equal(np.asarray(engine_cb16.encode(padded))[:len(x)], want)
    rounded = np.asarray(engine_cb16.round_cb16(padded))[:len(x)]
    np.testing.assert_array_equal(rounded.view(np.uint32), cb16.decode(want).view(np.uint32))
