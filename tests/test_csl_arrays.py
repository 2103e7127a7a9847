"""CSL arrays: comptime arrays of handles (colors, task IDs, queues, DSDs), structs, enums,
bools and function pointers passed as params and indexed at comptime; multi-dimensional
literals, loops and pointers; a const array under a DSD moved at run time; and the array
forms CSL refuses, each reported at its source. Programs run on the engine and the reference
interpreter, on both arches."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, position, read, run

from wsejax import CslError
from wsejax.csl import compile_csl
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


def program(tmp_path, body: str, arch: str, t: str = "f32", files=None):
    return compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS.format(t=t), arch=arch,
                      files=files)


def both(program, name, n, dtype, x=0):
    """`name`'s first n elements on PE (x, 0): (engine, reference)."""
    eng = read(run(program), name, n, dtype)[0, x]
    ref = Reference(program)
    ref.launch("main")
    return eng, np.asarray(ref.memory(x, 0)[name]).reshape(-1)[:n]


def assert_error_at(tmp_path, body, where, message, arch="wse2"):
    with pytest.raises(CslError) as err:
        program(tmp_path, body, arch)
    e = err.value
    assert message in e.message, str(e)
    assert e.file.endswith("pe.csl"), str(e)
    assert (e.line, e.col) == position((tmp_path / "pe.csl").read_text(), where), str(e)


# ------------------------------------------------------------------------------------------------
# arrays of task IDs, structs, enums, bools and function pointers

HANDLES = """
var out = @zeros([4]f32);
var out_ptr: [*]f32 = &out;
const ids = [3]local_task_id { @get_local_task_id(10), @get_local_task_id(11),
                               @get_local_task_id(12) };
const P = struct { a: f32, b: f32 };
const ps = [2]P { P { .a = 1.0, .b = 2.0 }, .{ .a = 3.0, .b = 4.0 } };
const E = enum(u16) { x, y, z };
const es = [_]E { E.z, .x };
const bs = [2, 2]bool { true, false, false, true };
const ctrl = @import_module("<control>");
const ops = [2]ctrl.opcode { ctrl.opcode.NOP, .TEARDOWN };
fn one() f32 { return 1.0; }
fn two() f32 { return 2.0; }
const fs = [2]*const fn() f32 { one, &two };
comptime var picked = [2]local_task_id { ids[0], ids[0] };
task t0() void { out[0] = ps[1].b + @as(f32, es.len); }
task t1() void { out[1] = fs[1]() * 10.0 + fs[0](); }
task t2() void {
  var s: f32 = 0.0;
  inline for (es) |e, k| { if (e == E.z) { s += 100.0 * @as(f32, k + 1); } }
  var r: u16 = 1;
  if (bs[r, r] and !bs[r - 1, r] and ops[1] == ctrl.opcode.TEARDOWN) { s += 5.0; }
  out[2] = s;
  out[3] = @as(f32, @get_int(picked[1]));
  sys.unblock_cmd_stream();
}
fn main() void {
  inline for (@range(i16, 3)) |i| { @activate(ids[i]); }
}
comptime {
  picked[1] = ids[2];
  const cids = [2]control_task_id { @get_control_task_id(30), @get_control_task_id(31) };
  @comptime_assert(@get_int(cids[1]) == 31 and @get_int(ids[2]) == 12);
  @comptime_assert(@type_of(ids) == [3]local_task_id and @type_of(ps) == [2]P);
  @comptime_assert(@type_of(bs) == [2, 2]bool and @type_of(cids[0]) == control_task_id);
  const tasks = .{ t0, t1, t2 };
  for (@range(i16, 3)) |i| { @bind_local_task(tasks[i], ids[i]); }
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_arrays_of_task_ids_structs_enums_bools_and_function_pointers(tmp_path, arch):
    eng, ref = both(program(tmp_path, HANDLES, arch), "out", 4, np.float32)
    assert eng.tolist() == ref.tolist() == [6.0, 21.0, 105.0, 12.0]


# ------------------------------------------------------------------------------------------------
# arrays of colors and queues as tile and import params, used where a color or queue is used

COLOR_LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
const cs = [3]color { @get_color(4), @get_color(5), @get_color(6) };
layout {
  @set_rectangle(2, 1);
  for (@range(i16, 2)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x), .colors = cs,
                                      .sender = x == 0 });
  }
  @export_name("got", [*]f32, true);
  @export_name("main", fn()void);
}
"""

COLOR_LIB = """
param c: [3]color;
param qs: [2]input_queue;
const c2 = c[2];
fn queue(k: u16) input_queue { return qs[k]; }
"""

COLOR_PE = """
param memcpy_params;
param colors: [3]color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const iqs = [2]input_queue { @get_input_queue(3), @get_input_queue(2) };
const oqs = [1]output_queue { @get_output_queue(2) };
const lib = @import_module("lib.csl", .{ .c = colors, .qs = iqs });
const iq = comptime lib.queue(1);
const ids = [2]data_task_id { if (@is_arch("wse2")) @get_data_task_id(lib.c2)
                              else @get_data_task_id(iq),
                              if (@is_arch("wse2")) @get_data_task_id(colors[0])
                              else @get_data_task_id(iqs[0]) };
const done_ids = [1]local_task_id { @get_local_task_id(9) };
const srcs = [2]f32 { 1.5, -2.0 };
var src = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
var got = @zeros([4]f32);
var got_ptr: [*]f32 = &got;
var k: u16 = 0;
const dsds = [2]mem1d_dsd { @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> src[i] }),
                            @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> src[i + 2] }) };
const outs = [1]fabout_dsd { @get_dsd(fabout_dsd, if (@is_arch("wse3"))
    .{ .extent = 4, .output_queue = oqs[0] }
  else .{ .extent = 4, .fabric_color = colors[2], .output_queue = oqs[0] }) };
fn main() void {
  if (sender) {
    @fadds(dsds[1], dsds[1], srcs[1]);
    @fmovs(outs[0], dsds[0], .{ .async = true, .activate = done_ids[0] });
  }
}
task done() void { sys.unblock_cmd_stream(); }
task recv(x: f32) void {
  got[k] = x;
  k += 1;
  if (k == 4) { sys.unblock_cmd_stream(); }
}
comptime {
  @bind_local_task(done, done_ids[0]);
  @bind_data_task(recv, ids[0]);
  if (@is_arch("wse3")) {
    @initialize_queue(oqs[0], .{ .color = colors[2] });
    @initialize_queue(lib.queue(1), .{ .color = lib.c[2] });
  }
  @set_local_color_config(lib.c2, .{ .routes = if (sender) .{ .rx = .{ RAMP }, .tx = .{ EAST } }
                                               else .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @comptime_assert(@get_int(colors[0]) == 4 and colors.len == 3);
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_arrays_of_colors_queues_task_ids_and_dsds_as_params(tmp_path, arch):
    (tmp_path / "layout.csl").write_text(COLOR_LAYOUT)
    (tmp_path / "pe.csl").write_text(COLOR_PE)
    (tmp_path / "lib.csl").write_text(COLOR_LIB)
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    eng, ref = both(prog, "got", 4, np.float32, x=1)
    assert eng.tolist() == ref.tolist() == [1.0, 2.0, 1.0, 2.0]


# ------------------------------------------------------------------------------------------------
# multi-dimensional arrays: literals, loops, runtime indices and pointers

MULTI = """
var out = @zeros([12]i32);
var out_ptr: [*]i32 = &out;
const T = [2, 3]i32 { 1, 2, 3, 4, 5, 6 };
var G = [_, 2]i32 { 10, 20, 30, 40, 50, 60 };
var G_flat: [*]i32 = &G;
fn total(a: *[3, 2]i32) i32 {
  var s: i32 = 0;
  for (@range(u16, 3)) |i| { s += (a.*)[i, 1]; }
  (a.*)[2, 0] = -1;
  return s;
}
fn main() void {
  var L = [2, 2]i32 { 7, 8, 9, 10 };
  var k: u16 = 0;
  for (G) |g, n| { out[k] = g + @as(i32, n); k += 1; }
  var s: i32 = 0;
  for (L) |x| { s = s * 10 + x; }
  out[6] = s;
  var r: u16 = 1;
  var c: u16 = 2;
  out[7] = T[r, c] * 100 + T[r - 1, c - 2] + L[r, c - 1];
  comptime var cs: i32 = 0;
  inline for (T) |x, j| { cs += x * @as(i32, j); }
  out[8] = cs;
  out[9] = total(&G);
  out[10] = G[2, 0];
  G_flat[3] = 99;
  out[11] = G[1, 1] + G_flat[5];
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_multi_dimensional_literals_loops_indices_and_pointers(tmp_path, arch):
    eng, ref = both(program(tmp_path, MULTI, arch, t="i32"), "out", 12, np.int32)
    g = np.array([10, 20, 30, 40, 50, 60]).reshape(3, 2)
    t = np.arange(1, 7).reshape(2, 3)
    want = [*(g.reshape(-1) + np.arange(6)), 7 * 1000 + 8 * 100 + 9 * 10 + 10,
            t[1, 2] * 100 + t[0, 0] + 10, int((t.reshape(-1) * np.arange(6)).sum()),
            int(g[:, 1].sum()), -1, 99 + 60]
    assert eng.tolist() == ref.tolist() == want


# ------------------------------------------------------------------------------------------------
# a const array as the base of a DSD whose base address and length change at run time

DUMMY_LIB = """
const dummy = @zeros([1]f32);
var moving = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> dummy[i] });
"""

DUMMY = """
var out = @zeros([6]f32);
var out_ptr: [*]f32 = &out;
var buf = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
const dummy = @zeros([1]f32);
const base = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> dummy[i] });
const lib = @import_module("lib.csl");
fn main() void {
  var o = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> out[i] });
  var d = @set_dsd_length(@set_dsd_base_addr(base, &buf[1]), 3);
  @fmovs(o, d);
  var m = lib.moving;
  m = @set_dsd_base_addr(m, buf);
  m = @set_dsd_length(m, 2);
  @fadds(@increment_dsd_offset(o, 3, f32), m, 10.0);
  @fmovs(@increment_dsd_offset(o, 5, f32), base);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_const_array_under_a_dsd_moved_at_run_time(tmp_path, arch):
    prog = program(tmp_path, DUMMY, arch, files={"lib.csl": DUMMY_LIB})
    eng, ref = both(prog, "out", 6, np.float32)
    assert eng.tolist() == ref.tolist() == [2.0, 3.0, 4.0, 11.0, 12.0, 0.0]


# ------------------------------------------------------------------------------------------------
# what CSL refuses, reported at its source

@pytest.mark.parametrize("body, where, message", [
    ("const a = [2][3]i16 { 1, 2 };\nfn main() void { _ = a; }\n", "[2][3]i16",
     "CSL has no arrays of arrays ([N][3]i16)"),
    ("var a: [2][3]i16;\nfn main() void { _ = a; }\n", "[2][3]i16", "CSL has no arrays of arrays"),
    ("const a = [2, 3]i16 { 1, 2, 3, 4, 5 };\nfn main() void { _ = a; }\n", "[2, 3]i16 {",
     "array literal has 5 elements, its type [2, 3] holds 6"),
    ("const a = [2, _]i16 { 1, 2 };\nfn main() void { _ = a; }\n", "[2, _]",
     "only the first dimension of an array literal may be _"),
    ("const a = [_, 2]i16 { 1, 2, 3 };\nfn main() void { _ = a; }\n", "[_, 2]",
     "array literal has 3 elements, not a whole number of rows of 2"),
    ("const cs = [2]color { @get_color(1), 1.5 };\nfn main() void { _ = cs; }\n", "1.5 }",
     "array element: expected a color"),
    ("const cs = [2]color { @get_color(1), @get_color(2) };\n"
     "fn main() void { const c = cs[2]; }\n", "cs[2]",
     "index [2] out of range of an array of shape [2]"),
])
def test_refused_array_forms_are_located(tmp_path, body, where, message):
    assert_error_at(tmp_path, "var out: [1]f32;\nvar out_ptr: [*]f32 = &out;\n" + body, where,
                    message)


SPLIT_LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
const a = [2]color { @get_color(4), @get_color(5) };
const b = [2]color { @get_color(7), @get_color(9) };
layout {
  @set_rectangle(2, 1);
  for (@range(i16, 2)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x),
                                      .cs = if (x == 0) a else b });
  }
  @export_name("out", [*]u32, true);
  @export_name("main", fn()void);
}
"""

SPLIT_PE = HEAD + """
param cs: [2]color;
var out = @zeros([2]u32);
var out_ptr: [*]u32 = &out;
fn main() void {
  inline for (cs) |c, k| { out[k] = @as(u32, @get_int(c)); }
  sys.unblock_cmd_stream();
}
""" + TAIL


@pytest.mark.parametrize("arch", ARCHES)
def test_tiles_with_different_color_arrays_get_their_own(tmp_path, arch):
    (tmp_path / "layout.csl").write_text(SPLIT_LAYOUT)
    (tmp_path / "pe.csl").write_text(SPLIT_PE)
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    assert len(prog.classes) == 2
    for x, want in ((0, [4, 5]), (1, [7, 9])):
        eng, ref = both(prog, "out", 2, np.uint32, x=x)
        assert eng.tolist() == ref.tolist() == want


# ------------------------------------------------------------------------------------------------
# large local arrays with an initial value


@pytest.mark.parametrize("arch", ARCHES)
def test_a_large_local_array_starts_from_its_initial_value_on_every_call(tmp_path, arch):
    """A 1-D local of 2000 elements and a 2-D one of 40 x 30, each written after it is read:
    the next call starts again from the initial value."""
    prog = program(tmp_path, """
const N = 2000;
const R = 40;
const C = 30;
var out: [4]i32;
var out_ptr: [*]i32 = &out;
fn table() [N]i16 {
  var t: [N]i16 = undefined;
  for (@range(u16, N)) |i| { t[i] = @as(i16, i % 97) - 48; }
  return t;
}
fn grid() [R, C]i32 {
  var g: [R, C]i32 = undefined;
  for (@range(u16, R)) |r| { for (@range(u16, C)) |c| { g[r, c] = 100 * r + c; } }
  return g;
}
fn sum_then_spoil() i32 {
  var a = comptime table();
  var g = comptime grid();
  var s: i32 = 0;
  for (@range(u16, N)) |i| { s += @as(i32, a[i]); a[i] = 1000; }
  for (@range(u16, R)) |r| { s += g[r, C - 1 - r % C]; g[r, 0] = -7; }
  return s;
}
fn main() void {
  out[0] = sum_then_spoil();
  out[1] = sum_then_spoil();
  sys.unblock_cmd_stream();
}
""", arch, t="i32")
    a = np.arange(2000) % 97 - 48
    g = 100 * np.arange(40)[:, None] + np.arange(30)[None, :]
    want = int(a.sum()) + sum(int(g[r, 30 - 1 - r % 30]) for r in range(40))
    eng, ref = both(prog, "out", 2, np.int32)
    np.testing.assert_array_equal(eng, [want, want])
    np.testing.assert_array_equal(ref, [want, want])
