"""Named structs and enums held at run time (globals, arrays of them, locals, parameters and
return values), runtime locals of handle types, and the small integer types: each program
run on the engine and the reference interpreter, on both arches, and checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, position, read, run

from wsejax import CslError
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
"""

EXPORTS = """@export_name("out", [*]{t}, true);
@export_name("main", fn()void);"""

TAIL = """
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""


def program(tmp_path, body: str, arch: str, t: str = "f32"):
    return compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS.format(t=t), arch=arch)


def outputs(prog, n: int, dtype=np.float32) -> np.ndarray:
    """`out`'s first n elements on PE (0, 0), after `main`, the engine's and the reference's
    (asserted equal)."""
    eng = read(run(prog), "out", n, dtype)[0, 0]
    ref = Reference(prog)
    ref.launch("main")
    got = np.asarray(ref.memory(0, 0)["out"]).reshape(-1)[:n]
    np.testing.assert_array_equal(eng, got)
    return eng


def located(tmp_path, body: str, where: str, message: str, arch: str = "wse2") -> None:
    with pytest.raises(CslError) as err:
        program(tmp_path, body, arch)
    line, col = position(HEAD + body, where)
    assert (err.value.line, err.value.col) == (line, col), str(err.value)
    assert message in str(err.value)


# ------------------------------------------------------------------------------------------------
# structs


@pytest.mark.parametrize("arch", ARCHES)
def test_struct_globals_locals_params_and_returns(tmp_path, arch):
    out = outputs(program(tmp_path, """
const P = struct { x: i16, y: f32 = 1.5 };
var p: P = .{ .x = 3 };
var out: [6]f32;
var out_ptr: [*]f32 = &out;
fn make(k: i16) P { return P { .x = k * 2, .y = @as(f32, k) }; }
fn total(q: P) f32 { return @as(f32, q.x) + q.y; }
fn main() void {
  out[0] = total(p);                 // the default field: 3 + 1.5
  var q: P = make(5);                // { 10, 5.0 }
  q.y += 1.0;
  var r = q;                         // a copy
  r.x = 1;
  out[1] = total(q);
  out[2] = total(r);
  const k: i16 = q.x - 7;            // 3, known at run time
  r = .{ .x = k, .y = q.y };         // an anonymous struct of runtime fields
  out[3] = total(r);
  p = .{ .x = p.x + 1, .y = @as(f32, p.x) };   // reads every field before writing one
  out[4] = @as(f32, p.x);
  out[5] = p.y;
  sys.unblock_cmd_stream();
}
""", arch), 6)
    np.testing.assert_array_equal(out, [4.5, 16.0, 7.0, 9.0, 4.0, 3.0])


@pytest.mark.parametrize("arch", ARCHES)
def test_arrays_of_structs_in_memory(tmp_path, arch):
    out = outputs(program(tmp_path, """
const P = struct { x: i16, y: f32 };
var ps = [3]P { .{ .x = 1, .y = 0.5 }, .{ .x = 2, .y = 1.5 }, .{ .x = 3, .y = 2.5 } };
var zs: [4]P = @zeros([4]P);
var out: [6]f32;
var out_ptr: [*]f32 = &out;
fn main() void {
  for (@range(u16, 3)) |i| {
    ps[i].x += 10;
    zs[i + 1] = ps[i];
  }
  zs[0].y = 7.0;
  var local: [2]P;
  local[1] = zs[2];
  for (@range(u16, 4)) |i| { out[i] = @as(f32, zs[i].x) + zs[i].y; }
  out[4] = @as(f32, ps.len);
  out[5] = @as(f32, local[1].x);
  sys.unblock_cmd_stream();
}
""", arch), 6)
    np.testing.assert_array_equal(out, [7.0, 11.5, 13.5, 15.5, 3.0, 12.0])


@pytest.mark.parametrize("arch", ARCHES)
def test_runtime_loops_over_arrays_of_structs_and_enums(tmp_path, arch):
    out = outputs(program(tmp_path, """
const E = enum(i16) { lo = -1, hi = 1 };
const P = struct { w: i32, e: E };
var ps = [2, 2]P { .{ .w = 1, .e = .lo }, .{ .w = 2, .e = .hi },
                   .{ .w = 3, .e = .hi }, .{ .w = 4, .e = .lo } };
var es = [3]E { .hi, .hi, .lo };
var out: [3]i32;
var out_ptr: [*]i32 = &out;
fn main() void {
  for (ps) |p, k| {
    out[0] += p.w * @as(i32, @as(i16, p.e));      // -1 + 2 + 3 - 4
    if (p.e == E.hi) { out[1] += @as(i32, k); }   // flat indices 1 and 2
  }
  for (es) |e| { if (e != .lo) { out[2] += 1; } }
  sys.unblock_cmd_stream();
}
""", arch, "i32"), 3, np.int32)
    np.testing.assert_array_equal(out, [0, 3, 2])


@pytest.mark.parametrize("arch", ARCHES)
def test_comptime_arrays_of_structs_and_enums_take_runtime_indices(tmp_path, arch):
    out = outputs(program(tmp_path, """
const E = enum(u16) { x, y, z };
const P = struct { k: i32, e: E };
const table = [3]P { .{ .k = 5, .e = .z }, .{ .k = 6, .e = .x }, .{ .k = 7, .e = .y } };
const order = [3]E { .y, .z, .x };
var out: [3]i32;
var out_ptr: [*]i32 = &out;
fn main() void {
  for (@range(u16, 3)) |i| {
    const p = table[i];
    out[i] = p.k * 10 + @as(i32, @as(u16, p.e)) + 100 * @as(i32, @as(u16, order[i]));
  }
  sys.unblock_cmd_stream();
}
""", arch, "i32"), 3, np.int32)
    np.testing.assert_array_equal(out, [152, 260, 71])


@pytest.mark.parametrize("arch", ARCHES)
def test_nested_structs(tmp_path, arch):
    out = outputs(program(tmp_path, """
const V = struct { a: i32, b: i32 };
const S = struct { v: V, w: u16 = 9 };
var s: S = .{ .v = .{ .a = 1, .b = 2 } };
var out: [4]i32;
var out_ptr: [*]i32 = &out;
fn swap(x: V) V { return .{ .a = x.b, .b = x.a }; }
fn main() void {
  s.v = swap(s.v);
  s.v.b *= 10;
  var t: S = s;
  t.w += 1;
  out[0] = s.v.a;
  out[1] = s.v.b;
  out[2] = @as(i32, s.w);
  out[3] = @as(i32, t.w);
  sys.unblock_cmd_stream();
}
""", arch, "i32"), 4, np.int32)
    np.testing.assert_array_equal(out, [2, 10, 9, 10])


@pytest.mark.parametrize("arch", ARCHES)
def test_struct_fields_of_enum_and_bool_types_through_inline_and_generic_functions(tmp_path,
                                                                                   arch):
    out = outputs(program(tmp_path, """
const Mode = enum(u8) { off, on };
const R = struct { m: Mode, ok: bool, n: u32 };
var rs: [2]R;
var out: [4]u32;
var out_ptr: [*]u32 = &out;
inline fn bump(r: R) R { return .{ .m = .on, .ok = !r.ok, .n = r.n + 1 }; }
fn score(r: anytype) u32 {
  return r.n * 10 + (if (r.m == Mode.on) @as(u32, 1) else @as(u32, 0));
}
fn main() void {
  var r: R = @zeros(R);               // { .off, false, 0 }
  out[0] = score(r);
  r = bump(bump(r));
  rs[1] = r;
  rs[0].n = 7;
  out[1] = score(rs[1]);
  out[2] = if (rs[1].ok) @as(u32, 1) else @as(u32, 2);
  out[3] = score(rs[0]);
  sys.unblock_cmd_stream();
}
""", arch, "u32"), 4, np.uint32)
    np.testing.assert_array_equal(out, [0, 21, 2, 70])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_library_struct_held_in_a_var(tmp_path, arch):
    out = outputs(program(tmp_path, """
const cx = @import_module("<complex>");
var acc: cx.complex_64 = .{ .real = 1.0, .imag = 0.0 };
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void {
  var z: cx.complex_64 = cx.get_complex_64(0.0, 2.0);      // 2i
  for (@range(u16, 3)) |i| { acc = cx.multiply_complex(acc, z); }   // (2i)^3 = -8i
  z.real = 1.0;
  acc = cx.add_complex(acc, z);                            // 1 - 6i
  out[0] = acc.real;
  out[1] = acc.imag;
  sys.unblock_cmd_stream();
}
""", arch), 2)
    np.testing.assert_array_equal(out, [1.0, -6.0])


@pytest.mark.parametrize("arch", ARCHES)
def test_struct_errors_are_located(tmp_path, arch):
    located(tmp_path, """
const P = struct { x: i16 };
var p: P;
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn f(q: P) void { q.x = 1; }
fn main() void { f(p); p.z = 2; }
""", "q.x = 1", "is constant", arch)
    located(tmp_path, """
const P = struct { x: i16 };
var p: P;
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn main() void { p.z = 2; }
""", "z = 2", "P has no field 'z' (fields: x)", arch)
    located(tmp_path, """
const P = struct { a: [2]i16 };
var p: P;
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn main() void { p.a[0] = 2; }
""", "var p", "a struct field of type [2]i16 cannot be held at run time", arch)
    located(tmp_path, """
const P = struct { x: i16 };
const Q = struct { x: i16 };
var p: P;
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn main() void { var q: Q = p; }
""", "var q", "expected Q, got a runtime P", arch)


def test_a_struct_cannot_be_exported_to_the_host(tmp_path):
    # the layout's @export_name takes pointers to numbers and functions, not aggregates
    src = HEAD + """
const P = struct { x: i16 };
var p: P;
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn main() void { p.x = 1; }
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""
    exports = 'const P = struct { x: i16 };\n@export_name("p", [*]P, true);\n' + \
        EXPORTS.format(t="f32")
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, exports)
    assert "@export_name('p'): type [*]P is not a [*]T pointer or a function type" \
        in str(err.value)
    assert err.value.file.endswith("layout.csl")


# ------------------------------------------------------------------------------------------------
# enums


@pytest.mark.parametrize("arch", ARCHES)
def test_enums_in_memory_locals_and_switch(tmp_path, arch):
    out = outputs(program(tmp_path, """
const E = enum(u16) { a, b = 4, c };       // a = 0, b = 4, c = 1
var e: E = E.c;
var es = [3]E { .a, .b, .c };
var out: [7]i32;
var out_ptr: [*]i32 = &out;
fn pick(k: u16) E { return @as(E, k); }
fn code(x: E) i32 {
  return switch (x) { .a => 10, .b => 20, .c => 30 };
}
fn main() void {
  var f: E = pick(4);
  out[0] = @as(i32, @as(u16, e));
  out[1] = @as(i32, @as(u16, es[1]));
  out[2] = if (f == E.b) @as(i32, 1) else @as(i32, 0);
  out[3] = if (f != .b) @as(i32, 1) else @as(i32, 0);
  es[0] = f;
  e = .a;
  out[4] = code(es[0]) + code(e);
  switch (pick(1)) {
    .a => { out[5] = 1; },
    else => { out[5] = 2; },
  }
  const g = f;
  out[6] = code(g);
  sys.unblock_cmd_stream();
}
""", arch, "i32"), 7, np.int32)
    np.testing.assert_array_equal(out, [1, 4, 1, 0, 30, 2, 20])


@pytest.mark.parametrize("arch", ARCHES)
def test_if_and_switch_expressions_on_runtime_conditions_give_structs_and_enums(tmp_path, arch):
    out = outputs(program(tmp_path, """
const E = enum(u16) { a, b, c };
const P = struct { x: i32, e: E };
var p: P = .{ .x = 1, .e = .a };
var q: P = .{ .x = 2, .e = .c };
var out: [4]i32;
var out_ptr: [*]i32 = &out;
fn main() void {
  for (@range(i32, 2)) |k| {
    const m: E = if (k == 0) .b else E.c;
    const r = if (k == 0) p else q;
    const n = switch (m) { .b => E.a, else => .b };
    out[k] = r.x * 100 + @as(i32, @as(u16, m)) * 10 + @as(i32, @as(u16, n));
  }
  var s: P = if (out[0] > 0) P { .x = 9, .e = .b } else q;
  out[2] = s.x;
  out[3] = @as(i32, @as(u16, s.e));
  sys.unblock_cmd_stream();
}
""", arch, "i32"), 4, np.int32)
    np.testing.assert_array_equal(out, [110, 221, 9, 1])


@pytest.mark.parametrize("arch", ARCHES)
def test_enum_errors_are_located(tmp_path, arch):
    body = """
const E = enum(u16) { a, b };
var e: E = .a;
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn main() void { var k: u16 = 0; k = e; }
"""
    located(tmp_path, body, "k = e", "expected u16, got a runtime E (use @as)", arch)
    body = """
const E = enum(u16) { a, b };
var e: E = .a;
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn main() void { if (e < E.b) { out[0] = 1.0; } }
"""
    located(tmp_path, body, "< E.b", "enums compare only with == and !=", arch)
    body = """
const E = enum(u16) { a, b };
const x = @as(E, 7);
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn main() void { }
comptime { _ = x; }
"""
    located(tmp_path, body, "@as(E, 7)", "E has no member of value 7", arch)


# ------------------------------------------------------------------------------------------------
# handle types held by runtime locals


@pytest.mark.parametrize("arch", ARCHES)
def test_runtime_locals_of_handle_types(tmp_path, arch):
    out = outputs(program(tmp_path, """
var out: [2]u32;
var out_ptr: [*]u32 = &out;
fn main() void {
  var c: color = @get_color(3);
  out[0] = @as(u32, @get_int(c));
  c = @get_color(5);
  const t = @get_local_task_id(12);
  var q: input_queue = @get_input_queue(2);
  out[1] = @as(u32, @get_int(c)) * 100 + @as(u32, @get_int(t))
           + 1000 * @as(u32, @get_int(q));
  sys.unblock_cmd_stream();
}
""", arch, "u32"), 2, np.uint32)
    np.testing.assert_array_equal(out, [3, 2512])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_handle_local_changed_in_a_runtime_branch_is_held_at_run_time(tmp_path, arch):
    # out[0] is 0 at first: the first branch runs, the second does not
    out = outputs(program(tmp_path, """
var out: [2]u32;
var out_ptr: [*]u32 = &out;
fn main() void {
  var c: color = @get_color(3);
  out[1] = @as(u32, @get_int(c));
  if (out[0] == 0) { c = @get_color(4); }
  if (out[0] > 1) { c = @get_color(5); }
  out[0] = @as(u32, @get_int(c));
  sys.unblock_cmd_stream();
}
""", arch, "u32"), 2, np.uint32)
    np.testing.assert_array_equal(out, [4, 3])


# ------------------------------------------------------------------------------------------------
# numeric types


@pytest.mark.parametrize("arch", ARCHES)
def test_i8_and_u8_wrap_and_widen(tmp_path, arch):
    out = outputs(program(tmp_path, """
var a: i8 = 100;
var b: u8 = 200;
var xs = [3]i8 { -128, 5, 127 };
var out: [6]i32;
var out_ptr: [*]i32 = &out;
fn main() void {
  a += 100;                      // wraps to -56
  b += 100;                      // wraps to 44
  out[0] = a;                    // i8 widens to i32
  out[1] = @as(i32, b);
  var s: i16 = 0;
  for (@range(u16, 3)) |i| { s += xs[i]; }
  out[2] = s;
  const w: u16 = b;              // u8 widens to u16
  out[3] = @as(i32, w) * 2;
  out[4] = @as(i32, @as(i8, -3) >> 1);
  out[5] = @as(i32, @as(u8, 255) / @as(u8, 16));
  sys.unblock_cmd_stream();
}
""", arch, "i32"), 6, np.int32)
    np.testing.assert_array_equal(out, [-56, 44, 4, 88, -2, 15])


def test_a_runtime_var_of_a_comptime_only_type_is_located(tmp_path):
    located(tmp_path, """
var out: [1]f32;
var out_ptr: [*]f32 = &out;
fn main() void { var n: comptime_int = 3; out[0] = @as(f32, n); }
""", "var n", "'n': comptime_int is a comptime-only type; a variable of it must be const or "
             "comptime var")


@pytest.mark.parametrize("arch", ARCHES)
def test_large_arrays_of_structs_and_handles_are_assigned_whole_by_a_loop(tmp_path, arch):
    # 1200 elements is over the element-by-element limit: arrays are assigned from others of
    # their type (a runtime loop per leaf, a 2-D one too) and from a comptime array (@zeros)
    out = outputs(program(tmp_path, """
const P = struct { x: i16, y: f32 };
var ps: [1200]P;
var qs: [1200]P;
var grid: [30, 40]P;
var gcopy: [30, 40]P;
var cs: [1200]color;
var ds: [1200]color;
var out: [6]f32;
var out_ptr: [*]f32 = &out;
fn main() void {
  for (@range(u16, 1200)) |i| {
    ps[i].x = @as(i16, i % 100);
    ps[i].y = @as(f32, i);
    grid[i / 40, i % 40].x = @as(i16, i / 40);
  }
  qs = ps;
  ps[7].y = -1.0;
  gcopy = grid;
  for (@range(u16, 1200)) |i| { cs[i] = @get_color(5); }
  ds = cs;
  cs[3] = @get_color(9);
  ps = @zeros([1200]P);
  out[0] = qs[1199].y;
  out[1] = @as(f32, qs[1199].x);
  out[2] = qs[7].y;
  out[3] = @as(f32, gcopy[29, 39].x) + @as(f32, gcopy[2, 0].x) * 100.0;
  out[4] = @as(f32, @get_int(ds[1199])) + 100.0 * @as(f32, @get_int(cs[3])) +
           1000.0 * @as(f32, @get_int(ds[3]));
  out[5] = @as(f32, qs.len) + ps[1199].y + @as(f32, ps[9].x);
  sys.unblock_cmd_stream();
}
""", arch), 6)
    np.testing.assert_array_equal(out, [1199.0, 99.0, 7.0, 229.0, 5905.0, 1200.0])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_large_array_assigned_two_comptime_values_takes_each_in_turn(tmp_path, arch):
    # each assignment of a comptime value copies from its own image; B sets one field with a
    # plain comptime assignment
    out = outputs(program(tmp_path, """
const P = struct { x: i16, y: f32 };
const A = @zeros([1100]P);
const B = blk: { var b = @zeros([1100]P); b[5].x = 7; break :blk b; };
var ps: [1100]P;
var out: [3]f32;
var out_ptr: [*]f32 = &out;
fn main() void {
  ps = B;
  out[0] = @as(f32, ps[5].x);
  ps = A;
  out[1] = @as(f32, ps[5].x);
  ps = B;
  out[2] = @as(f32, ps[5].x);
  sys.unblock_cmd_stream();
}
""", arch), 3)
    np.testing.assert_array_equal(out, [7.0, 0.0, 7.0])
