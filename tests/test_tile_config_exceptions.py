"""`<tile_config>.exceptions`: the exception mask register, and the device fault of an
operation that raises an unmasked floating-point exception (`wsejax.fpexc`), on the engine
and the reference interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import assert_located, out_program, out_row, position, run

from wsejax import CslError, FabricFault, fpexc
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

HEAD = """
const tc = @import_module("<tile_config>");
const exc = tc.exceptions;
var out = @zeros([4]f32);
var out_ptr: [*]f32 = &out;
"""


def faults_of(program):
    """The fault each interpreter reports: (engine error, reference error)."""
    with pytest.raises(FabricFault) as eng:
        run(program)
    ref = Reference(program)
    with pytest.raises(FabricFault) as want:
        ref.launch("main")
    return eng.value, want.value


def assert_fault(program, name: str, what: str, pes) -> None:
    """Both interpreters fault with exception `name` raised by `what` on exactly `pes`."""
    eng, ref = faults_of(program)
    assert str(eng) == str(ref)
    assert eng.pes == ref.pes == pes
    assert f"{what} raised floating-point exception {name}," in str(eng)


def test_each_constant_is_all_ones_but_its_own_bit():
    values = {name: fpexc.constant(name) for name in fpexc.BITS}
    assert len(set(values.values())) == 8
    for v in values.values():
        assert bin(~v & 0xFFFF).count("1") == 1
    both = values["FP_OVERFLOW"] & values["FP_UNDERFLOW"]
    assert bin(~both & 0xFFFF).count("1") == 2


@pytest.mark.parametrize("arch", ARCHES)
def test_a_masked_division_by_zero_gives_inf_and_runs_on(tmp_path, arch):
    body = HEAD + """
var x: f32 = 42.0;
var y: f32 = 0.0;
fn main() void {
  exc.set_exception_mask(exc.FP_OVERFLOW);
  out[0] = x / y;
  out[1] = -x / y;
  out[2] = 7.0;
  sys.unblock_cmd_stream();
}
"""
    eng, ref = out_row(out_program(tmp_path, body, "f32", arch), 4, np.float32)
    want = np.array([[np.inf, -np.inf, 7.0, 0.0]] * 2, np.float32)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


@pytest.mark.parametrize("arch", ARCHES)
def test_an_unmasked_division_by_zero_faults_only_the_pe_that_divided_by_zero(tmp_path, arch):
    body = HEAD + """
var x: f32 = 42.0;
fn main() void {
  exc.set_exception_mask(exc.FP_DIV_BY_0);
  const y: f32 = if (lay.get_x_coord() == 1) 0.0 else 2.0;
  out[0] = x / y;
  sys.unblock_cmd_stream();
}
"""
    program = out_program(tmp_path, body, "f32", arch, w=3)
    assert_fault(program, "FP_DIV_BY_0", "f32 '/' in main", [(1, 0)])


@pytest.mark.parametrize("arch", ARCHES)
def test_each_call_overwrites_the_whole_mask(tmp_path, arch):
    body = HEAD + """
var x: f32 = 42.0;
var y: f32 = 0.0;
var big: f32 = 3.0e38;
fn main() void {
  exc.set_exception_mask(exc.FP_DIV_BY_0);
  exc.set_exception_mask(exc.FP_OVERFLOW & exc.FP_UNDERFLOW);
  out[0] = x / y;
  out[1] = big * x;
  sys.unblock_cmd_stream();
}
"""
    program = out_program(tmp_path, body, "f32", arch)
    assert_fault(program, "FP_OVERFLOW", "f32 '*' in main", [(0, 0), (1, 0)])
    # without the overflow the division by zero runs on: inf
    quiet = out_program(tmp_path, body.replace("big * x", "big * 1.0"), "f32", arch)
    eng, ref = out_row(quiet, 4, np.float32)
    want = np.array([[np.inf, 3.0e38, 0.0, 0.0]] * 2, np.float32)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


# (exception, a, operator, b): a scalar f32 operation that raises it (and, in the IEEE rules,
# none of the exceptions before it in FP_EXCEPTIONS)
SCALAR_CASES = [
    ("FP_INVALID", "0.0", "/", "0.0"),
    ("FP_DIV_BY_0", "42.0", "/", "0.0"),
    ("FP_OVERFLOW", "3.0e38", "*", "10.0"),
    ("FP_UNDERFLOW", "1.0e-30", "*", "1.0e-20"),
    ("FP_INEXACT", "1.0", "/", "3.0"),
]


@pytest.mark.parametrize("name, a, op, b", SCALAR_CASES)
@pytest.mark.parametrize("arch", ARCHES)
def test_each_exception_of_a_scalar_operation_faults_where_unmasked(tmp_path, arch, name, a,
                                                                     op, b):
    body = HEAD + f"""
var a: f32 = {a};
var b: f32 = {b};
fn main() void {{
  exc.set_exception_mask(exc.{name});
  out[0] = a {op} b;
  sys.unblock_cmd_stream();
}}
"""
    assert_fault(out_program(tmp_path, body, "f32", arch), name, f"f32 '{op}' in main",
                 [(0, 0), (1, 0)])
    # masked (the exceptions before it unmasked), it runs on with the IEEE result
    before = fpexc.FP_EXCEPTIONS[:fpexc.FP_EXCEPTIONS.index(name)] or ("FP_DIV_BY_0",)
    others = " & ".join(f"exc.{n}" for n in before)
    eng, ref = out_row(out_program(tmp_path, body.replace(f"exc.{name})", f"{others})"),
                                   "f32", arch), 4, np.float32)
    fa, fb = np.float32(float(a)), np.float32(float(b))
    with np.errstate(all="ignore"):
        want = {"/": np.divide, "*": np.multiply}[op](fa, fb)
    np.testing.assert_array_equal(eng[:, 0], [want] * 2)
    np.testing.assert_array_equal(ref[:, 0], [want] * 2)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_conversion_to_f16_that_overflows_faults(tmp_path, arch):
    body = HEAD + """
var a: f32 = 1.0e5;
var h: f16 = 0.0;
fn main() void {
  exc.set_exception_mask(exc.FP_OVERFLOW);
  h = @as(f16, a);
  sys.unblock_cmd_stream();
}
"""
    assert_fault(out_program(tmp_path, body, "f32", arch), "FP_OVERFLOW",
                 "@as(f16, f32) in main", [(0, 0), (1, 0)])


# (exception, op, x, y): a DSD op over x and y whose element 1 raises the exception
DSD_CASES = [
    ("FP_INVALID", "fmuls", "0.0", "@as(f32, math.POSITIVE_INF)"),
    ("FP_OVERFLOW", "fmuls", "3.0e38", "10.0"),
    ("FP_UNDERFLOW", "fmuls", "1.0e-30", "1.0e-10"),
    ("FP_INEXACT", "fadds", "1.0", "1.0e-10"),
    ("FP_OVERFLOW", "fmacs", "3.0e38", "1.0e38"),
    ("FP_OVERFLOW", "fs2h", "1.0e5", None),
    ("FP_INEXACT", "faddh", "1.0", "0.0001"),
]


def _dsd_body(name: str, op: str, x: str, y: str | None) -> str:
    half = op in ("faddh", "fs2h")
    dest_t = "f16" if half else "f32"
    src_t = "f16" if op == "faddh" else "f32"
    srcs = "dx" if y is None else "dx, dy"
    y = y or "0.0"
    return HEAD + f"""
const math = @import_module("<math>");
var x = [4]{src_t} {{ 1.0, {x}, 1.0, 1.0 }};
var y = [4]{src_t} {{ 1.0, {y}, 1.0, 1.0 }};
var d = @zeros([4]{dest_t});
const dx = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{4}} -> x[i] }});
const dy = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{4}} -> y[i] }});
const dd = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{4}} -> d[i] }});
fn main() void {{
  exc.set_exception_mask(exc.{name});
  @{op}(dd, {srcs}, {"1.0" if op == "fmacs" else ""});
  sys.unblock_cmd_stream();
}}
""".replace(", );", ");")


@pytest.mark.parametrize("name, op, x, y", DSD_CASES)
@pytest.mark.parametrize("arch", ARCHES)
def test_each_exception_of_a_dsd_operation_faults_where_unmasked(tmp_path, arch, name, op, x,
                                                                  y):
    body = _dsd_body(name, op, x, y)
    assert_fault(out_program(tmp_path, body, "f32", arch), name, f"@{op} in main",
                 [(0, 0), (1, 0)])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_dsd_operation_names_its_first_element_that_raises_one(tmp_path, arch):
    # element 1 is inexact, element 2 overflows: the PE stops at element 1
    every = " & ".join(f"exc.{n}" for n in fpexc.FP_EXCEPTIONS)
    body = HEAD + f"""
var x = [4]f32 {{ 1.0, 1.0, 3.0e38, 1.0 }};
var y = [4]f32 {{ 1.0, 1.0e-10, 3.0e38, 1.0 }};
const dx = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{4}} -> x[i] }});
const dy = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{4}} -> y[i] }});
const dout = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{4}} -> out[i] }});
fn main() void {{
  exc.set_exception_mask({every});
  @fadds(dout, dx, dy);
  sys.unblock_cmd_stream();
}}
"""
    assert_fault(out_program(tmp_path, body, "f32", arch), "FP_INEXACT", "@fadds in main",
                 [(0, 0), (1, 0)])
    masked = out_program(tmp_path, body.replace(every, "exc.FP_DIV_BY_0"), "f32", arch)
    eng, ref = out_row(masked, 4, np.float32)
    want = np.array([2.0, 1.0, np.inf, 2.0], np.float32)
    np.testing.assert_array_equal(eng, [want] * 2)
    np.testing.assert_array_equal(ref, [want] * 2)


@pytest.mark.parametrize("arch", ARCHES)
def test_an_operation_whose_value_is_not_used_raises_nothing(tmp_path, arch):
    body = HEAD + """
var x: f32 = 42.0;
var y: f32 = 0.0;
fn main() void {
  exc.set_exception_mask(exc.FP_DIV_BY_0);
  out[0] = if (y != 0.0) x / y else -1.0;
  if (y != 0.0 and x / y > 1.0) { out[1] = 1.0; } else { out[1] = 2.0; }
  if (y == 0.0 or x / y > 1.0) { out[2] = 3.0; }
  sys.unblock_cmd_stream();
}
"""
    eng, ref = out_row(out_program(tmp_path, body, "f32", arch), 4, np.float32)
    want = np.array([[-1.0, 2.0, 3.0, 0.0]] * 2, np.float32)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


@pytest.mark.parametrize("arch", ARCHES)
def test_the_mask_set_at_comptime_or_from_a_runtime_value(tmp_path, arch):
    comptime = HEAD + """
var x: f32 = 1.0;
var y: f32 = 3.0;
fn main() void {
  out[0] = x / y;
  sys.unblock_cmd_stream();
}
comptime { exc.set_exception_mask(exc.FP_INEXACT); }
"""
    assert_fault(out_program(tmp_path, comptime, "f32", arch), "FP_INEXACT", "f32 '/' in main",
                 [(0, 0), (1, 0)])
    runtime = HEAD + """
var x: f32 = 1.0;
var y: f32 = 3.0;
var m: u16 = exc.FP_INEXACT;
fn main() void {
  if (lay.get_x_coord() == 0) { m = 0xFFFF; }
  exc.set_exception_mask(m);
  out[0] = x / y;
  sys.unblock_cmd_stream();
}
"""
    assert_fault(out_program(tmp_path, runtime, "f32", arch), "FP_INEXACT", "f32 '/' in main",
                 [(1, 0)])


def test_a_program_that_never_sets_the_mask_has_no_register(tmp_path):
    body = HEAD + """
var x: f32 = 42.0;
var y: f32 = 0.0;
fn main() void {
  out[0] = x / y + @as(f32, exc.FP_INEXACT);
  sys.unblock_cmd_stream();
}
"""
    program = out_program(tmp_path, body, "f32")
    assert all(fpexc.MASK_SYMBOL not in [s.name for s in pe.symbols] for pe in program.classes)
    eng, ref = out_row(program, 4, np.float32)
    np.testing.assert_array_equal(eng[:, 0], [np.inf] * 2)
    np.testing.assert_array_equal(ref[:, 0], [np.inf] * 2)


@pytest.mark.parametrize("call, where, message", [
    ("exc.set_exception_mask(1.5);", "1.5",
     "exceptions.set_exception_mask takes a reg_type (u16) mask, got"),
    ("exc.set_exception_mask(0x10000);", "0x10000", "mask 65536 does not fit reg_type"),
    ("exc.set_exception_mask(k);", "k);",
     "exceptions.set_exception_mask takes a reg_type (u16) mask, got"),
    ("exc.set_exception_mask(exc.FP_NOPE);", "FP_NOPE",
     "module <tile_config/exceptions> has no member 'FP_NOPE'"),
])
def test_misuse_is_located(tmp_path, call, where, message):
    body = HEAD + f"""
var k: i32 = 3;
fn main() void {{
  {call}
  sys.unblock_cmd_stream();
}}
"""
    with pytest.raises(CslError) as err:
        out_program(tmp_path, body, "f32")
    assert_located(err.value, tmp_path / "pe.csl", where, message)
    assert position((tmp_path / "pe.csl").read_text(), where)[0] == err.value.line


# 16-bit format -> (a, b) whose product overflows it, (c, d) whose product is tiny in it
FORMATS = {"f16": ("300.0", "300.0", "1.0e-4", "1.0e-3"),
           "bf16": ("1.0e20", "1.0e20", "1.0e-30", "1.0e-10"),
           "cb16": ("3000.0", "3000.0", "1.0e-7", "1.0e-7")}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("arch", ARCHES)
def test_the_16_bit_formats_raise_at_their_own_bounds(tmp_path, arch, fmt):
    a, b, c, d = FORMATS[fmt]
    body = HEAD + f"""
const T = @fp16();
var a: T = {a};
var b: T = {b};
var x = [2]T {{ 1.0, {c} }};
var y = [2]T {{ 1.0, {d} }};
var h = @zeros([2]T);
const dx = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{2}} -> x[i] }});
const dy = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{2}} -> y[i] }});
const dh = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{2}} -> h[i] }});
fn main() void {{
  exc.set_exception_mask(MASK);
  STEP;
  sys.unblock_cmd_stream();
}}
"""
    exports = '@export_name("out", [*]f32, true);\n@export_name("main", fn()void);'
    from csl_harness import OUT_HEAD, OUT_TAIL, compile_pe

    def compiled(mask: str, step: str, where):
        src = OUT_HEAD + body.replace("MASK", mask).replace("STEP", step) + OUT_TAIL
        return compile_pe(where, src, exports, arch=arch, fp16_format=fmt)

    t = fmt if fmt != "f16" else "f16"
    assert_fault(compiled("exc.FP_OVERFLOW", "h[0] = a * b", tmp_path), "FP_OVERFLOW",
                 f"{t} '*' in main", [(0, 0), (1, 0)])
    other = tmp_path / "dsd"
    other.mkdir()
    assert_fault(compiled("exc.FP_UNDERFLOW", "@fmulh(dh, dx, dy)", other), "FP_UNDERFLOW",
                 "@fmulh in main", [(0, 0), (1, 0)])


FABRIC_PE = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const tc = @import_module("<tile_config>");
const exc = tc.exceptions;
const oq = @get_output_queue(2);
const iq = @get_input_queue(3);
var a = [4]f32 { 1.0, 2.0, 3.0e38, 4.0 };
var got = @zeros([4]f32);
var got_ptr: [*]f32 = &got;
const ad = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });
const gd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> got[i] });
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 4, .output_queue = oq }
  else .{ .extent = 4, .fabric_color = c, .output_queue = oq });
const in = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 4, .input_queue = iq }
  else .{ .extent = 4, .fabric_color = c, .input_queue = iq });
fn main() void {
  if (sender) {
    @fmovs(out, ad);
  } else {
    exc.set_exception_mask(MASK);
    @fmuls(gd, in, 10.0);
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
def test_an_operation_on_the_fabric_faults_its_pe_at_the_element_that_raises(tmp_path, arch):
    from csl_harness import read, sender_receiver_layout, write

    from wsejax.csl import compile_csl

    def compiled(mask: str):
        write(tmp_path, {"layout.csl": sender_receiver_layout("f32"),
                         "pe.csl": FABRIC_PE.replace("MASK", mask)})
        return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)

    assert_fault(compiled("exc.FP_OVERFLOW"), "FP_OVERFLOW", "@fmuls in main", [(1, 0)])
    program = compiled("exc.FP_DIV_BY_0")
    eng = read(run(program), "got", 4)[0, 1]
    ref = Reference(program)
    ref.launch("main")
    want = np.array([10.0, 20.0, np.inf, 40.0], np.float32)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(np.asarray(ref.memory(1, 0)["got"]).reshape(-1), want)


@pytest.mark.parametrize("expr, raises", [("a + 1.0e-10", True), ("a + 0.5", False),
                                          ("a / 10.0", True), ("a / 4.0", False)])
def test_a_constant_operand_is_tested_as_a_variable_is(tmp_path, expr, raises):
    body = HEAD + f"""
var a: f32 = 1.0;
fn main() void {{
  exc.set_exception_mask(exc.FP_INEXACT);
  out[0] = {expr};
  sys.unblock_cmd_stream();
}}
"""
    program = out_program(tmp_path, body, "f32")
    if raises:
        assert_fault(program, "FP_INEXACT", f"f32 '{expr[2]}' in main", [(0, 0), (1, 0)])
        return
    eng, ref = out_row(program, 4, np.float32)
    want = np.float32(1.0) + np.float32(0.5) if "+" in expr else np.float32(0.25)
    np.testing.assert_array_equal(eng[:, 0], [want] * 2)
    np.testing.assert_array_equal(ref[:, 0], [want] * 2)


@pytest.mark.parametrize("arch", ARCHES)
def test_the_operations_of_a_map_callback_are_not_tested(tmp_path, arch):
    body = HEAD + """
var x = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
const dx = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> x[i] });
const dout = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
fn third(v: f32) f32 { return v / 3.0; }
fn main() void {
  exc.set_exception_mask(exc.FP_INEXACT);
  @map(third, dx, dout);
  sys.unblock_cmd_stream();
}
"""
    eng, ref = out_row(out_program(tmp_path, body, "f32", arch), 4, np.float32)
    want = np.array([1.0, 2.0, 3.0, 4.0], np.float32) / np.float32(3.0)
    np.testing.assert_array_equal(eng, [want] * 2)
    np.testing.assert_array_equal(ref, [want] * 2)
