"""Runtime builtins of CSL: `@assert` at run time (a false one faults its PE, naming the
assertion's `file:line:col`), `@random16`, `@set_active_prng` and `@import_comptime_value`,
each run on the engine and the reference interpreter."""

from __future__ import annotations

import json

import numpy as np
import pytest
from csl_harness import compile_pe, read, run

from wsejax import CslError, FabricFault
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const lay = @import_module("<layout>");
var out: [4]i32;
var out_ptr: [*]i32 = &out;
"""

TAIL = """
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""

EXPORTS = """@export_name("out", [*]i32, true);
@export_name("main", fn()void);"""


def program(tmp_path, body: str, arch: str, w: int = 3, files=None, **kw):
    return compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS, w=w, arch=arch, files=files, **kw)


def run_ref(program):
    ref = Reference(program)
    ref.launch("main")
    return ref


def faults_of(program):
    """The fault each interpreter reports: (engine error, reference error)."""
    with pytest.raises(FabricFault) as eng:
        run(program)
    with pytest.raises(FabricFault) as ref:
        run_ref(program)
    return eng.value, ref.value


# ------------------------------------------------------------------------------------------------
# @assert


ASSERT_BODY = """
fn main() void {
  const x: i32 = @as(i32, lay.get_x_coord());
  out[0] = x + 10;
  var k: i32 = 0;
  while (k < x) : (k += 1) {
    @assert(k * k < LIMIT);
  }
  out[1] = k;
  @assert(true);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_runtime_assert_that_holds_lets_the_program_run(tmp_path, arch):
    prog = program(tmp_path, "const LIMIT: i32 = 100;" + ASSERT_BODY, arch)
    eng = read(run(prog), "out", 4, np.int32)[0]
    ref = np.stack([np.asarray(run_ref(prog).memory(x, 0)["out"]) for x in range(3)])
    want = np.array([[10 + x, x, 0, 0] for x in range(3)], np.int32)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_false_runtime_assert_faults_the_pes_where_it_fails(tmp_path, arch):
    # k*k < 1 fails at k == 1, on the PEs whose loop reaches it: x = 2 and x = 3
    prog = program(tmp_path, "const LIMIT: i32 = 1;" + ASSERT_BODY, arch, w=4)
    eng, ref = faults_of(prog)
    assert str(eng) == str(ref)
    assert eng.pes == ref.pes == [(2, 0), (3, 0)]
    assert str(eng).startswith("device fault: @assert failed at ")
    assert str(eng).endswith("pe.csl:12:5 at PE (2, 0), (3, 0)")


@pytest.mark.parametrize("arch", ARCHES)
def test_each_failing_assert_is_named_by_its_own_position(tmp_path, arch):
    prog = program(tmp_path, """
fn main() void {
  const x = lay.get_x_coord();
  if (x == 0) { @assert(x != 0); }
  @assert(x != 1);
  sys.unblock_cmd_stream();
}
""", arch)
    eng, ref = faults_of(prog)
    assert str(eng) == str(ref)
    assert "(and 1 other kinds of fault)" in str(eng)
    assert eng.pes == ref.pes and len(eng.pes) == 1


@pytest.mark.parametrize("arch", ARCHES)
def test_an_assert_in_a_map_callback_faults_on_the_element_that_fails_it(tmp_path, arch):
    prog = program(tmp_path, """
var vals = [4]f32 { 1.0, 2.0, -3.0, 4.0 };
const vd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> vals[i] });
fn positive(v: f32) f32 { @assert(v > 0.0); return v; }
fn main() void {
  if (lay.get_x_coord() == 1) { vals[2] = 3.0; }
  @map(positive, vd, vd);
  sys.unblock_cmd_stream();
}
""", arch)
    eng, ref = faults_of(prog)
    assert str(eng) == str(ref)
    assert eng.pes == [(0, 0), (2, 0)]
    assert "pe.csl:9:27 at PE (0, 0), (2, 0)" in str(eng)


def test_an_assert_known_at_comptime_is_a_comptime_assert(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
const N: i32 = 3;
fn main() void {
  @assert(N > 4);
  sys.unblock_cmd_stream();
}
""", "wse2")
    assert "pe.csl:9:3" in str(e.value) and "@comptime_assert failed" in str(e.value)


def test_a_runtime_assert_takes_a_bool(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
fn main() void {
  const x = lay.get_x_coord();
  @assert(x);
  sys.unblock_cmd_stream();
}
""", "wse2")
    assert "pe.csl:9:11" in str(e.value)
    assert "@assert needs a bool, got a runtime u16" in str(e.value)


# ------------------------------------------------------------------------------------------------
# @random16, @set_active_prng


def lfsr_draws(n: int) -> list[int]:
    """The documented generator, written out: x^23 + x^18 + 1 from 0xdeadbeef's low 23 bits,
    128 steps a draw, a draw the low 16 bits."""
    state, out = 0xDEADBEEF & 0x7FFFFF, []
    for _ in range(n):
        for _ in range(128):
            state = (state >> 1) | (((state ^ (state >> 5)) & 1) << 22)
        out.append(state & 0xFFFF)
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_random16_draws_from_the_pe_lfsr_and_set_active_prng_keeps_one(tmp_path, arch):
    warnings = []
    prog = program(tmp_path, """
fn main() void {
  out[0] = @as(i32, @random16());
  @set_active_prng(@as(u16, lay.get_x_coord()) + 2);
  out[1] = @as(i32, @random16());
  out[2] = @as(i32, @random16());
  sys.unblock_cmd_stream();
}
""", arch, w=2, warn=warnings.append)
    eng = read(run(prog), "out", 4, np.int32)[0]
    ref = np.stack([np.asarray(run_ref(prog).memory(x, 0)["out"]) for x in range(2)])
    want = lfsr_draws(3) + [0]
    np.testing.assert_array_equal(eng, [want, want])
    np.testing.assert_array_equal(ref, eng)
    assert len(warnings) == 1 and "pe.csl:9:3: @set_active_prng is accepted and ignored" in \
        warnings[0]


def test_set_active_prng_belongs_in_a_function(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
comptime { @set_active_prng(1); }
fn main() void { sys.unblock_cmd_stream(); }
""", "wse2")
    assert "pe.csl:7:12" in str(e.value) and "@set_active_prng happens at run time" in \
        str(e.value)


# ------------------------------------------------------------------------------------------------
# @import_comptime_value

JSON_FILES = {
    "a.json": json.dumps([1, 2, 3, -4]),
    "m.json": "[1.5, 2, 3, 4, 5, 6.25]",
    "s.json": json.dumps({"n:u16": 5, "scale:f32": 1.5, "name:comptime_string": "ab",
                          "flag:bool": True, "v:[3]i16": [1, -2, 3], "c:color": 4,
                          "k:comptime_int": 70000, "inner:comptime_struct": {"x:i32": -7}}),
}


@pytest.mark.parametrize("arch", ARCHES)
def test_import_comptime_value_maps_json_to_csl_values(tmp_path, arch):
    prog = program(tmp_path, """
const a = @import_comptime_value([4]i32, "a.json");
const m = @import_comptime_value([2, 3]f32, "m.json");
const s = @import_comptime_value(comptime_struct, "s.json");
comptime {
  @comptime_assert(m[0, 0] == 1.5 and m[1, 2] == 6.25);
  @comptime_assert(s.flag and @strlen(s.name) == 2 and s.k == 70000);
  @comptime_assert(@is_same_type(@type_of(s.scale), f32));
  @comptime_assert(@is_same_type(@type_of(s.v), [3]i16));
  @comptime_assert(@get_int(s.c) == 4);
}
fn main() void {
  out[0] = a[0] + a[3];
  out[1] = @as(i32, s.n) * @as(i32, s.scale * 2.0);
  out[2] = @as(i32, s.v[1]) + s.inner.x;
  out[3] = @as(i32, m[1, 1]);
  sys.unblock_cmd_stream();
}
""", arch, w=2, files=JSON_FILES)
    eng = read(run(prog), "out", 4, np.int32)[0]
    want = [1 - 4, 5 * 3, -2 - 7, 5]
    np.testing.assert_array_equal(eng, [want, want])
    np.testing.assert_array_equal(run_ref(prog).memory(1, 0)["out"], want)


@pytest.mark.parametrize("text, t, message", [
    ("[1, null, 3]", "[3]i32", "a.json: element 1 of the value is null"),
    ("[[1, 2], [3, 4]]", "[2, 2]i32", "element 0 of the value is an array (arrays may not be "
                                      "nested)"),
    ("[1, 2, 3]", "[2, 2]i32", "the value has 3 elements, [2, 2]i32 holds 4"),
    ("[1, 70000]", "[2]i16", "element 1 of the value is 70000, which does not fit in i16"),
    ("[1, 2.5]", "[2]u16", "element 1 of the value is 2.5, not an integer for u16"),
    ("{\"n\": 1}", "comptime_struct", "key \"n\" is not \"name:type\""),
    ("{\"n:blob\": 1}", "comptime_struct", "key \"n:blob\" names no type CSL has (blob)"),
    ("{\"n:bool\": 1}", "comptime_struct", "field 'n' of the value is 1, not a bool"),
    ("{\"c:color\": 40}", "comptime_struct", "field 'c' of the value: color 40 is out of range"),
    ("null", "u16", "a.json: the value is null"),
    ("[1, 2", "[2]u16", "a.json is not valid JSON"),
])
def test_import_comptime_value_reports_what_does_not_fit(tmp_path, text, t, message):
    with pytest.raises(CslError) as e:
        program(tmp_path, f"""
comptime {{ const v = @import_comptime_value({t}, "a.json"); }}
fn main() void {{ sys.unblock_cmd_stream(); }}
""", "wse2", files={"a.json": text})
    assert "pe.csl:7:22" in str(e.value)
    assert message in str(e.value)


# ------------------------------------------------------------------------------------------------
# @get_string_from_byte


@pytest.mark.parametrize("arch", ARCHES)
def test_get_string_from_byte_gives_a_one_byte_string(tmp_path, arch):
    prog = program(tmp_path, """
const s = @strcat(@get_string_from_byte(65), @get_string_from_byte(10), "z");
comptime { @comptime_assert(@strlen(s) == 3); }
const bytes = @get_array(s);
fn main() void {
  out[0] = @as(i32, bytes[0]);
  out[1] = @as(i32, bytes[1]);
  out[2] = @as(i32, bytes[2]);
  sys.unblock_cmd_stream();
}
""", arch, w=1)
    np.testing.assert_array_equal(read(run(prog), "out", 4, np.int32)[0, 0], [65, 10, 122, 0])
    np.testing.assert_array_equal(run_ref(prog).memory(0, 0)["out"], [65, 10, 122, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_strings_hold_every_byte_and_span_lines(tmp_path, arch):
    """Bytes above 127 are one byte each, beside UTF-8 text ("é" is two bytes); a multiline
    literal joins its `\\\\` lines with newlines and takes no escapes."""
    prog = program(tmp_path, r"""
const hi = @strcat(@get_string_from_byte(200), "é", @get_string_from_byte(255));
const ml =
    \\ab\n
    \\c
;
comptime {
  @comptime_assert(@strlen(hi) == 4);
  @comptime_assert(@strlen(ml) == 6);
}
const hb = @get_array(hi);
fn main() void {
  out[0] = @as(i32, hb[0]) * 1000 + @as(i32, hb[3]);
  out[1] = @as(i32, hb[1]) * 1000 + @as(i32, hb[2]);
  out[2] = @as(i32, ml[4]) * 1000 + @as(i32, ml[5]);
  out[3] = @as(i32, ml[2]) * 1000 + @as(i32, ml[3]);
  sys.unblock_cmd_stream();
}
""", arch, w=1)
    want = [200255, 0xC3 * 1000 + 0xA9, 10 * 1000 + ord("c"), ord("\\") * 1000 + ord("n")]
    np.testing.assert_array_equal(read(run(prog), "out", 4, np.int32)[0, 0], want)
    np.testing.assert_array_equal(run_ref(prog).memory(0, 0)["out"], want)


def test_get_string_from_byte_takes_a_byte(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
comptime { const s = @get_string_from_byte(256); }
fn main() void { sys.unblock_cmd_stream(); }
""", "wse2")
    assert "pe.csl:7:44" in str(e.value)
    assert "@get_string_from_byte takes a byte (0 to 255), got 256" in str(e.value)


# ------------------------------------------------------------------------------------------------
# @range_start / @range_stop / @range_step, and @type_of an element of a global array


@pytest.mark.parametrize("arch", ARCHES)
def test_range_bounds_and_the_type_of_an_array_element(tmp_path, arch):
    prog = program(tmp_path, """
const r = @range(i16, 2, 11, 3);
const E = @type_of(out[1]);
comptime {
  @comptime_assert(@is_same_type(@type_of(@range_start(r)), i16));
  @comptime_assert(@is_same_type(E, i32));
  @comptime_assert(@range_step(@range(u16, 5)) == 1);
}
fn main() void {
  const x: E = @as(E, lay.get_x_coord());
  out[0] = @as(i32, @range_start(r)) + x;
  out[1] = @as(i32, @range_stop(r));
  out[2] = @as(i32, @range_step(r));
  var n: i32 = 0;
  for (r) |v| { n += @as(i32, v); }
  out[3] = n;
  sys.unblock_cmd_stream();
}
""", arch, w=2)
    eng = read(run(prog), "out", 4, np.int32)[0]
    ref = np.stack([np.asarray(run_ref(prog).memory(x, 0)["out"]) for x in range(2)])
    want = [[2 + x, 11, 3, 2 + 5 + 8] for x in range(2)]
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, eng)


def test_range_bounds_take_a_range(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
comptime { @comptime_assert(@range_stop(4) == 4); }
fn main() void { sys.unblock_cmd_stream(); }
""", "wse2")
    assert "@range_stop takes a range, got the comptime_int 4" in str(e.value)
    assert (e.value.line, e.value.col) == (7, 41)          # the argument
