"""CSL language forms: pointers to whole arrays, `@map` over library functions and pointer
parameters, DSDs over const arrays, and the length of an op (over memory DSDs of different
lengths, and with a fabout destination), each run on the engine and the reference
interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, read, run, sender_receiver_layout

from wsejax import CslError
from wsejax.reference import Reference


def run_ref(program, launches=(("main",),)):
    ref = Reference(program)
    for name, *args in launches:
        ref.launch(name, *args)
    return ref


def both(program, name, n, dtype):
    """`name`'s first n elements on PE (0, 0): (engine, reference)."""
    eng = read(run(program), name, n, dtype)[0, 0]
    ref = np.asarray(run_ref(program).memory(0, 0)[name]).reshape(-1)[:n]
    return eng, ref


HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const math = @import_module("<math>");
"""

EXPORTS = """@export_name("out", [*]{t}, true);
@export_name("main", fn()void);"""

TAIL = """
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""


ARCHES = ["wse2", "wse3"]


def program(tmp_path, body: str, t: str = "f32", arch: str = "wse2"):
    return compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS.format(t=t), arch=arch)


# ------------------------------------------------------------------------------------------------
# pointers to whole arrays


@pytest.mark.parametrize("arch", ARCHES)
def test_a_pointer_to_an_array_dereferences_to_the_array(tmp_path, arch):
    prog = program(tmp_path, """
var out: [5]i32;
var out_ptr: [*]i32 = &out;
fn scale(a: *[4]i32, k: i32, total: *i32) void {
  for (@range(u16, 4)) |i| { (a.*)[i] *= k; }
  (a.*)[3] += 1;
  total.* = (a.*)[0] + (a.*)[1] + (a.*)[2] + (a.*)[3];
}
fn main() void {
  var v = [4]i32 { 3, -1, 4, 7 };
  scale(&v, 5, &out[4]);
  for (@range(u16, 4)) |i| { out[i] = v[i]; }
  sys.unblock_cmd_stream();
}
""", "i32", arch)
    want = [15, -5, 20, 36, 66]
    eng, ref = both(prog, "out", 5, np.int32)
    assert eng.tolist() == ref.tolist() == want


def test_assigning_an_array_of_another_size_through_a_pointer_is_refused_where_written(
        tmp_path):
    with pytest.raises(CslError) as info:
        program(tmp_path, """
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn fill(a: *[2]f32) void {
  a.* = @zeros([3]f32);
}
fn main() void { fill(&out); sys.unblock_cmd_stream(); }
""")
    e = info.value
    assert "assigning a whole array: expected [2]f32, got [3]f32" in str(e)
    assert (e.line, e.col) == (8, 3) and e.file.endswith("pe.csl")


# ------------------------------------------------------------------------------------------------
# @map with library functions, pointer parameters and const arrays


@pytest.mark.parametrize("arch", ARCHES)
def test_map_calls_a_library_function_per_element(tmp_path, arch):
    prog = program(tmp_path, """
var x = [6]f32 { 0.25, 2.0, 9.0, 10.0, 0.5, 81.0 };
var y = [6]f32 { 1.0, 1.0, 4.0, 20.0, 0.0, 3.0 };
var out: [12]f32;
var out_ptr: [*]f32 = &out;
const xs = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> x[i] });
const ys = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> y[i] });
const lo = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> out[i] });
const hi = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> out[i + 6] });
fn main() void {
  @map(math.sqrt_f32, xs, lo);
  @map(math.max_f32, xs, ys, hi);
  sys.unblock_cmd_stream();
}
""", arch=arch)
    x = np.array([0.25, 2.0, 9.0, 10.0, 0.5, 81.0], np.float32)
    y = np.array([1.0, 1.0, 4.0, 20.0, 0.0, 3.0], np.float32)
    want = np.concatenate([np.sqrt(x), np.maximum(x, y)])
    eng, ref = both(prog, "out", 12, np.float32)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


@pytest.mark.parametrize("arch", ARCHES)
def test_map_reduces_through_a_pointer_parameter_in_element_order(tmp_path, arch):
    # each call reads what the previous one wrote: a running sum and a running product
    prog = program(tmp_path, """
const w = [5]i32 { 2, -7, 11, 5, 3 };
var out: [2]i32;
var out_ptr: [*]i32 = &out;
const ws = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{5} -> w[i] });
fn add(v: i32, acc: *i32) i32 { return acc.* + v; }
fn times(v: i32, acc: *i32) i32 { return acc.* * v - 1; }
fn main() void {
  out[0] = 100;
  out[1] = 1;
  @map(add, ws, &out[0], &out[0]);
  @map(times, ws, &out[1], &out[1]);
  sys.unblock_cmd_stream();
}
""", "i32", arch)
    prod = 1
    for v in (2, -7, 11, 5, 3):
        prod = prod * v - 1
    eng, ref = both(prog, "out", 2, np.int32)
    assert eng.tolist() == ref.tolist() == [100 + 14, prod]


def test_map_needs_the_element_type_of_a_library_functions_input(tmp_path):
    with pytest.raises(CslError) as info:
        program(tmp_path, """
var out: [4]f32;
var out_ptr: [*]f32 = &out;
const os = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
fn main() void {
  @map(math.pow, os, 2.0, os);
  sys.unblock_cmd_stream();
}
""")
    e = info.value
    assert "element type of input 2 is not known" in str(e)
    assert (e.line, e.col) == (9, 22)


def test_a_program_refuses_a_non_function_as_the_map_callback(tmp_path):
    with pytest.raises(CslError) as info:
        program(tmp_path, """
var out: [4]f32;
var out_ptr: [*]f32 = &out;
const os = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
fn main() void {
  @map(math.PI, os, os);
  sys.unblock_cmd_stream();
}
""")
    assert "@map's first argument must be a function" in str(info.value)
    assert (info.value.line, info.value.col) == (9, 13)


def test_a_dsd_over_a_const_array_reads_it_from_memory(tmp_path):
    prog = program(tmp_path, """
const table = [4]f32 { 1.5, -2.0, 0.25, 8.0 };
var out: [4]f32;
var out_ptr: [*]f32 = &out;
const ts = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> table[3 - i] });
const os = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
fn main() void {
  @fmuls(os, ts, 2.0);
  sys.unblock_cmd_stream();
}
""")
    eng, ref = both(prog, "out", 4, np.float32)
    assert eng.tolist() == ref.tolist() == [16.0, 0.5, -4.0, 3.0]


# ------------------------------------------------------------------------------------------------
# the length of an op: its shortest operand (spec 7.9); an op with a fabout destination

@pytest.mark.parametrize("arch", ARCHES)
def test_an_op_on_memory_dsds_of_different_lengths_runs_the_shortest(tmp_path, arch):
    prog = program(tmp_path, """
var a = [6]f32 { 1.0, 2.0, 3.0, 4.0, 5.0, 6.0 };
var b = [4]f32 { 10.0, 20.0, 30.0, 40.0 };
var out = [9]f32 { -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0 };
var out_ptr: [*]f32 = &out;
const ad = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> a[i] });
const bd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> b[i] });
const wide = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{5} -> out[i] });
const narrow = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> out[i + 6] });
fn main() void {
  @fadds(wide, ad, bd);         // 4 iterations: b is the shortest
  @fmuls(narrow, ad, 2.0);      // 2: the destination is; a scalar never counts
  sys.unblock_cmd_stream();
}
""", arch=arch)
    eng, ref = both(prog, "out", 9, np.float32)
    assert eng.tolist() == ref.tolist() == [11.0, 22.0, 33.0, 44.0, -1.0, -1.0, 2.0, 4.0, -1.0]


FABRIC_LAYOUT = sender_receiver_layout("u32")

FABRIC_PE = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const oq = @get_output_queue(2);
const iq = @get_input_queue(2);
const recv_id: data_task_id = if (@is_arch("wse2")) @get_data_task_id(c)
                              else @get_data_task_id(iq);
const done_id: local_task_id = @get_local_task_id(9);
var src = [6]u32 { 7, 1, 8, 2, 8, 3 };
var got: [6]u32;
var got_ptr: [*]u32 = &got;
var k: u16 = 0;
const src_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> src[i] });
const one = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 1, .output_queue = oq }
                                 else .{ .extent = 1, .fabric_color = c, .output_queue = oq });
fn main() void {
  if (sender) { @mov32(one, src_dsd, .{ .async = true, .activate = done_id }); }
}
task done() void { sys.unblock_cmd_stream(); }
task recv(x: u32) void {
  got[k] = x;
  k += 1;
  if (k == 6) { sys.unblock_cmd_stream(); }
}
comptime {
  @bind_local_task(done, done_id);
  @bind_data_task(recv, recv_id);
  if (@is_arch("wse3")) {
    @initialize_queue(oq, .{ .color = c });
    @initialize_queue(iq, .{ .color = c });
  }
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_an_extent_one_fabout_destination_sends_its_whole_memory_source(tmp_path, arch):
    from wsejax.csl import compile_csl

    (tmp_path / "layout.csl").write_text(FABRIC_LAYOUT)
    (tmp_path / "pe.csl").write_text(FABRIC_PE)
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    eng = read(run(prog), "got", 6, np.uint32)[0, 1]
    ref = np.asarray(run_ref(prog).memory(1, 0)["got"]).reshape(-1)
    assert eng.tolist() == ref.tolist() == [7, 1, 8, 2, 8, 3]

