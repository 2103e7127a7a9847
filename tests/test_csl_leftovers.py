"""CSL leftovers: `@type_of` of pointers, functions, tuples, strings and DSRs, rows of
multi-dimensional arrays assigned whole, a DSD returned from inside a loop, the control task
table of wse3, and the located errors of constructs CSL does not have (arithmetic on whole
arrays, `@get_int` of a non-handle, `@bitcast` to a handle type) or whose meaning is not
documented; programs run on the engine and the reference interpreter (recursion is in
test_csl_recursion.py)."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import OUT_HEAD, OUT_TAIL, out_program, out_row, position

from wsejax import CslError

ARCHES = ["wse2", "wse3"]


def refused(tmp_path, body: str, where: str, arch: str = "wse2") -> str:
    """The message of the CslError compiling `body`, checked to point at `where`."""
    with pytest.raises(CslError) as err:
        out_program(tmp_path, body, "i32", arch=arch)
    line, col = position(OUT_HEAD + body + OUT_TAIL, where)
    assert f"pe.csl:{line}:{col}:" in str(err.value)
    return str(err.value)


# ------------------------------------------------------------------------------------------------
# @type_of


@pytest.mark.parametrize("arch", ARCHES)
def test_type_of_gives_pointer_function_tuple_string_and_dsr_types(tmp_path, arch):
    prog = out_program(tmp_path, """
var out: [6]i32;
var out_ptr: [*]i32 = &out;
var g: i32 = 3;
var A = [3]i32 { 10, 20, 30 };
fn inc(a: i32) i32 { return a + 1; }
fn main() void {
  const P = @type_of(&g);
  var p: P = &g;
  p.* += 2;
  const Q = @type_of(&A);
  const q: Q = &A;
  const F = @type_of(inc);
  const f: *const F = &inc;
  out[0] = g;
  out[1] = (q.*)[2];
  out[2] = f(41);
  out[3] = @as(i32, @is_same_type(F, fn(i32) i32)) + 2 * @as(i32, @is_same_type(Q, *[3]i32));
  out[4] = @as(i32, @is_same_type(@type_of(.{ 1, 2 }), comptime_struct))
         + 2 * @as(i32, @is_same_type(@type_of("ab"), comptime_string));
  out[5] = @as(i32, @is_same_type(@type_of(@get_dsr(dsr_dest, 2)), dsr_dest));
  sys.unblock_cmd_stream();
}
""", "i32", arch=arch)
    eng, ref = out_row(prog, 6, np.int32)
    want = np.array([5, 30, 42, 3, 3, 1], np.int32)
    np.testing.assert_array_equal(eng, [want, want])
    np.testing.assert_array_equal(ref, eng)


def test_type_of_a_generic_function_is_refused(tmp_path):
    msg = refused(tmp_path, """
var out: [1]i32;
var out_ptr: [*]i32 = &out;
fn pick(x: anytype) void {}
fn main() void { const T = @type_of(pick); sys.unblock_cmd_stream(); }
""", "@type_of(pick)")
    assert "@type_of 'pick': a function with comptime or anytype parameters is generic" in msg


# ------------------------------------------------------------------------------------------------
# constructs CSL does not have


def test_get_int_of_a_bool_is_refused(tmp_path):
    msg = refused(tmp_path, """
var out: [1]i32;
var out_ptr: [*]i32 = &out;
fn main() void { out[0] = @as(i32, @get_int(true)); sys.unblock_cmd_stream(); }
""", "@get_int(true)")
    assert "@get_int takes a color, a task ID, a queue or a microthread ID" in msg
    assert "got a bool" in msg


def test_bitcast_to_a_handle_type_is_refused(tmp_path):
    msg = refused(tmp_path, """
var out: [1]i32;
var out_ptr: [*]i32 = &out;
fn main() void { const c = @bitcast(color, @as(u16, 4)); sys.unblock_cmd_stream(); }
""", "@bitcast(color")
    assert "@bitcast to color: @bitcast reinterprets a value as a number or a pointer" in msg


@pytest.mark.parametrize("arch", ARCHES)
def test_compound_assignment_on_a_whole_array_is_refused(tmp_path, arch):
    msg = refused(tmp_path, """
var out: [2]i32;
var out_ptr: [*]i32 = &out;
fn twice(a: *[2]i32) void { a.* += a.*; }
fn main() void { twice(&out); sys.unblock_cmd_stream(); }
""", "a.* +=", arch)
    assert "'+=' on a whole array: CSL has no arithmetic on arrays" in msg


@pytest.mark.parametrize("arch", ARCHES)
def test_a_row_of_a_two_dimensional_array_is_assigned(tmp_path, arch):
    prog = out_program(tmp_path, """
var out: [8]i32;
var out_ptr: [*]i32 = &out;
var B: [3, 2]i32;
const M = [2, 2]i32 { 1, 2, 3, 4 };
fn main() void {
  comptime var C: [2, 2]i32 = @zeros([2, 2]i32);
  comptime { C[1] = [2]i32 { 5, 6 }; }
  B[1] = [2]i32 { 7, 8 };
  B[lay.get_x_coord() + 1] = M[1];
  B[0] = C[1];
  B[2] = B[0];
  for (@range(u16, 6)) |k| { out[k] = B[k / 2, k % 2]; }
  out[6] = C[0, 1];
  out[7] = C[1, 1];
  sys.unblock_cmd_stream();
}
""", "i32", arch=arch)
    eng, ref = out_row(prog, 8, np.int32)
    # PE 0 overwrites row 1 with M's second row, PE 1 row 2 (then row 0 is copied into it)
    np.testing.assert_array_equal(eng, [[5, 6, 3, 4, 5, 6, 0, 6], [5, 6, 7, 8, 5, 6, 0, 6]])
    np.testing.assert_array_equal(ref, eng)


@pytest.mark.parametrize("op, row, why", [
    ("=", "[3]i32 { 7, 8, 9 }", "assigning a row of 'B': expected [2]i32, got [3]i32"),
    ("=", "[2]f32 { 7.0, 8.0 }", "assigning a row of 'B': expected [2]i32, got [2]f32"),
    ("+=", "[2]i32 { 7, 8 }", "'+=' on a row of an array: CSL has no arithmetic on arrays"),
])
def test_a_row_of_another_shape_or_type_is_refused(tmp_path, op, row, why):
    msg = refused(tmp_path, f"""
var out: [1]i32;
var out_ptr: [*]i32 = &out;
var B: [3, 2]i32;
fn main() void {{ B[1] {op} {row}; sys.unblock_cmd_stream(); }}
""", "B[1] ")
    assert why in msg


def test_a_row_index_out_of_range_is_refused(tmp_path):
    msg = refused(tmp_path, """
var out: [1]i32;
var out_ptr: [*]i32 = &out;
var B: [3, 2]i32;
fn main() void { B[3] = [2]i32 { 7, 8 }; sys.unblock_cmd_stream(); }
""", "3] =")
    assert "index 3 out of range of 'B' (shape [3, 2])" in msg


def test_a_comptime_row_of_another_shape_is_refused(tmp_path):
    msg = refused(tmp_path, """
var out: [1]i32;
var out_ptr: [*]i32 = &out;
fn main() void {
  comptime var C: [2, 2]i32 = @zeros([2, 2]i32);
  comptime { C[1] = [3]i32 { 5, 6, 7 }; }
  sys.unblock_cmd_stream();
}
""", "C[1] =")
    assert "assigning a row of an array of shape [2, 2]: expected an array of shape [2]" in msg


# ------------------------------------------------------------------------------------------------
# a DSD returned from inside a loop


@pytest.mark.parametrize("arch", ARCHES)
def test_a_dsd_built_in_a_loop_body_is_returned_from_inside_the_loop(tmp_path, arch):
    prog = out_program(tmp_path, """
var out: [4]i32;
var out_ptr: [*]i32 = &out;
var A = [6]i32 { 1, 2, 3, 4, 5, 6 };
const base = @get_dsd(mem1d_dsd, .{ .tensor_access = |j|{2} -> A[j] });
fn pick(k: u16) mem1d_dsd {
  var d = base;
  var i: u16 = 0;
  while (i < 4) : (i += 1) {
    var e = @increment_dsd_offset(d, 1, i32);
    d = e;
    if (i == k) { return e; }
  }
  return base;
}
fn main() void {
  const lo = @get_dsd(mem1d_dsd, .{ .tensor_access = |j|{2} -> out[j] });
  const hi = @get_dsd(mem1d_dsd, .{ .tensor_access = |j|{2} -> out[j + 2] });
  @mov32(lo, pick(1 + lay.get_x_coord()));
  @mov32(hi, pick(9));
  sys.unblock_cmd_stream();
}
""", "i32", arch=arch)
    eng, ref = out_row(prog, 4, np.int32)
    # PE 0 returns at i = 1 (offset 2), PE 1 at i = 2 (offset 3); k = 9 never returns early
    np.testing.assert_array_equal(eng, [[3, 4, 1, 2], [4, 5, 1, 2]])
    np.testing.assert_array_equal(ref, eng)


# ------------------------------------------------------------------------------------------------
# library members and arguments whose meaning is not documented


@pytest.mark.parametrize("member, why", [
    ("math.sig(x)", "math.sig (of <math>) is not supported yet: what it computes is not "
                    "documented"),
    ("math.sig_f16(x)", "math.sig_f16 (of <math>) is not supported yet"),
    ("tc.FIFO_MIN_ALIGNMENT", "tile_config.FIFO_MIN_ALIGNMENT (of <tile_config>) is not "
                              "supported yet: the SDK does not document its value"),
])
def test_undocumented_library_members_are_refused_with_the_reason(tmp_path, member, why):
    msg = refused(tmp_path, f"""
const math = @import_module("<math>");
const tc = @import_module("<tile_config>");
var out: [1]i32;
var out_ptr: [*]i32 = &out;
fn main() void {{
  const x: f16 = 1.0;
  const y = {member};
  sys.unblock_cmd_stream();
}}
""", member.split(".", 1)[1])
    assert why in msg


# ------------------------------------------------------------------------------------------------
# @set_control_task_table (wse3)

TABLE = """
var out: [2]i32;
var out_ptr: [*]i32 = &out;
const done_id = @get_local_task_id(11);
task ctl() void { out[1] = 7; }
task done() void { out[1] += 1; sys.unblock_cmd_stream(); }
fn main() void { out[0] = 5; @activate(done_id); }
comptime {
  @set_control_task_table(CONFIG);
  @bind_control_task(ctl, @get_control_task_id(CONTROL_ID));
  @bind_local_task(done, done_id);
}
"""


def test_a_control_task_table_of_its_own_is_accepted(tmp_path):
    prog = out_program(tmp_path, TABLE.replace("CONFIG", ".{ .instructions = 8, .stride = 2 }")
                       .replace("CONTROL_ID", "10"), "i32", arch="wse3")
    eng, ref = out_row(prog, 2, np.int32)
    np.testing.assert_array_equal(eng, [[5, 1], [5, 1]])
    np.testing.assert_array_equal(ref, eng)


@pytest.mark.parametrize("config, control_id, arch, where, why", [
    (".{}", "11", "wse3", "@bind_local_task",
     "local task ID 11: the control task ID 11 is bound too; with @set_control_task_table "
     "the two may name different tasks, which wsejax does not support yet"),
    (".{ .instructions = 3 }", "10", "wse3", ".{ .instructions",
     "@set_control_task_table: .instructions takes 2, 4 or 8, got the comptime_int 3"),
    (".{ .stride = 8 }", "10", "wse3", ".{ .stride",
     "@set_control_task_table: .stride takes 1 to 7, got the comptime_int 8"),
    (".{}", "10", "wse2", "@set_control_task_table",
     "@set_control_task_table exists on wse3 only (this program is for wse2)"),
])
def test_a_control_task_table_is_checked(tmp_path, config, control_id, arch, where, why):
    msg = refused(tmp_path, TABLE.replace("CONFIG", config).replace("CONTROL_ID", control_id),
                  where, arch=arch)
    assert why in msg


# ------------------------------------------------------------------------------------------------
# the result type reaches switch expressions and stores through pointers


@pytest.mark.parametrize("arch", ARCHES)
def test_a_switch_and_an_if_take_the_type_their_value_is_used_as(tmp_path, arch):
    # untyped comptime prongs take the function's return type (f32, not i32), and an
    # if-expression stored through a *E takes E
    prog = out_program(tmp_path, """
const E = enum(u16) { x, y, z };
var out: [3]f32;
var out_ptr: [*]f32 = &out;
var e: E = .x;
fn weight(k: E) f32 { return switch (k) { .x => 1.5, .y => 2.0, else => -1.0 }; }
fn main() void {
  const q: *E = &e;
  q.* = if (lay.get_x_coord() == 0) .y else .z;
  out[0] = weight(e);
  out[1] = weight(.x);
  out[2] = @as(f32, @as(u16, e));
  sys.unblock_cmd_stream();
}
""", "f32", arch=arch)
    eng, ref = out_row(prog, 3, np.float32)
    want = np.array([[2.0, 1.5, 1.0], [-1.0, 1.5, 2.0]], np.float32)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


def test_the_address_of_a_field_of_a_struct_parameter_is_located(tmp_path):
    message = refused(tmp_path, """
const T = struct { c: color, x: i32 };
var t = T { .c = @get_color(3), .x = 1 };
var out: [1]i32;
var out_ptr: [*]i32 = &out;
fn f(u: T) void { const p = &u.c; out[0] = u.x; }
fn main() void { f(t); }
""", "&u.c")
    assert "cannot take the address of field 'c' of a runtime T here: only a field of a " \
        "struct variable (global or local) has an address" in message
