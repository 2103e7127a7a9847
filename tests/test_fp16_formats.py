"""The fp16 format of a program (`cslc --fp16-format`): with bf16, `@fp16()` is bf16, and the
fp16 DSD operations, conversions, runtime arithmetic and memcpy of 16-bit data work on bf16;
only the selected format may appear in runtime code. Each program runs in check mode (the
reference beside the engine, every command compared) and is checked against numpy
(ml_dtypes' bfloat16, rounded once per operation)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from csl_harness import compile_pe, position

from wsejax import CslError, LayoutError, SdkRuntime
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


def test_cb16_is_refused_with_its_reason(tmp_path):
    with pytest.raises(LayoutError, match="cb16 format is not modelled"):
        compile_pe(tmp_path, HEAD, "", fp16_format="cb16")
