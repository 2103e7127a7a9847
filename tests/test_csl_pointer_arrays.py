"""Arrays of pointers held in PE memory (spec 3.1): `var ptrs = [3]*In { &a, &b, &c }`,
`var bufs: [2][*]f32`, globals and locals, read and assigned at comptime and runtime indices,
dereferenced (`ptrs[i].*`, `bufs[j][k]`), swapped at run time, passed to functions element by
element or as a `[*]*T`, assigned whole, pointer fields of structs, anonymous list literals
`.{ &x, &y }` for arrays, and a bad runtime index faulting the PE. Each program runs on two PEs
(the x coordinate is the runtime index) on the engine and on the reference, checked against
numpy."""

from __future__ import annotations

import re

import numpy as np
import pytest
from csl_harness import OUT_HEAD, out_program, out_row, position

from wsejax import CslError, FabricFault, SdkRuntime
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]


def check(prog, want, n: int = 8) -> None:
    """Engine and reference both leave `want` (one row per PE) in `out`'s first elements."""
    want = np.asarray(want, np.float32)
    eng, ref = out_row(prog, n, np.float32)
    np.testing.assert_array_equal(eng[:, :want.shape[1]], want)
    np.testing.assert_array_equal(ref[:, :want.shape[1]], want)


STRUCTS = """
const In = struct { v: f32, w: i16 };
var a = In { .v = 1.0, .w = 1 };
var b = In { .v = 2.0, .w = 2 };
var c = In { .v = 3.0, .w = 3 };
var ptrs = [3]*In { &a, &b, &c };
var out: [8]f32;
var out_ptr: [*]f32 = &out;

fn main() void {
  const k: u16 = @as(u16, lay.get_x_coord());
  out[0] = ptrs[0].*.v;
  out[1] = ptrs[k + 1].*.v;
  ptrs[k].*.v = 10.0;
  ptrs[2] = ptrs[k];
  out[2] = a.v;
  out[3] = b.v;
  out[4] = ptrs[2].*.v;
  ptrs[0] = &c;
  for (ptrs) |p| { out[5] += @as(f32, p.*.w); }
  sys.unblock_cmd_stream();
}
"""


def _structs_oracle(k: int) -> list:
    v, w = [1.0, 2.0, 3.0], [1, 2, 3]
    ptrs = [0, 1, 2]
    out = [v[ptrs[0]], v[ptrs[k + 1]]]
    v[ptrs[k]] = 10.0
    ptrs[2] = ptrs[k]
    out += [v[0], v[1], v[ptrs[2]]]
    ptrs[0] = 2
    out.append(sum(w[p] for p in ptrs))
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_a_global_array_of_struct_pointers_is_read_and_assigned_at_run_time(tmp_path, arch):
    prog = out_program(tmp_path, STRUCTS, "f32", arch)
    check(prog, [_structs_oracle(0), _structs_oracle(1)])


BUFFERS = """
var x = [3]f32 { 1.0, 2.0, 3.0 };
var y = [3]f32 { 4.0, 5.0, 6.0 };
var bufs: [2][*]f32 = .{ &x, &y };
var out: [8]f32;
var out_ptr: [*]f32 = &out;

fn step(k: f32) void {
  for (@range(u16, 3)) |i| { bufs[1][i] = bufs[0][i] * 2.0 + k; }
  const t = bufs[0];
  bufs[0] = bufs[1];
  bufs[1] = t;
}

fn main() void {
  const j: u16 = @as(u16, lay.get_x_coord());
  bufs[j][2] += 100.0;
  for (@range(u16, 3)) |r| { step(@as(f32, r)); }
  for (@range(u16, 3)) |i| { out[i] = x[i]; out[3 + i] = y[i]; }
  out[6] = bufs[0][0];
  out[7] = bufs[j][1];
  sys.unblock_cmd_stream();
}
"""


def _buffers_oracle(j: int) -> list:
    x = np.array([1, 2, 3], np.float32)
    y = np.array([4, 5, 6], np.float32)
    bufs = [x, y]
    bufs[j][2] += 100
    for r in range(3):
        bufs[1][:] = bufs[0] * 2 + r
        bufs = [bufs[1], bufs[0]]
    return [*x, *y, bufs[0][0], bufs[j][1]]


@pytest.mark.parametrize("arch", ARCHES)
def test_double_buffering_swaps_many_item_pointers_held_in_an_array(tmp_path, arch):
    prog = out_program(tmp_path, BUFFERS, "f32", arch)
    check(prog, [_buffers_oracle(0), _buffers_oracle(1)])


LOCALS = """
var p: f32 = 1.0;
var q: f32 = 2.0;
var out: [8]f32;
var out_ptr: [*]f32 = &out;

fn get(r: *f32) f32 { return r.*; }

fn sum(ps: [*]*f32, n: u16) f32 {
  var s: f32 = 0.0;
  var i: u16 = 0;
  while (i < n) : (i += 1) { s += ps[i].*; }
  return s;
}

fn main() void {
  const j: u16 = @as(u16, lay.get_x_coord());
  var ptrs = [2]*f32 { &p, &q };
  out[0] = ptrs[j].*;
  ptrs[j].* = 7.0;
  out[1] = get(ptrs[0]) + get(ptrs[1]);
  ptrs[1 - j] = ptrs[j];
  out[2] = sum(&ptrs, 2);
  const pp: **f32 = &ptrs[1];
  pp.* = &q;
  pp.*.* += 0.5;
  out[3] = q;
  const fixed = [2]*f32 { &q, &p };
  out[4] = fixed[j].*;
  var held: [2]*f32 = undefined;
  held = ptrs;
  out[5] = held[0].* + 10.0 * held[1].*;
  sys.unblock_cmd_stream();
}
"""


def _locals_oracle(j: int) -> list:
    mem = {"p": 1.0, "q": 2.0}
    ptrs = ["p", "q"]
    out = [mem[ptrs[j]]]
    mem[ptrs[j]] = 7.0
    out.append(mem[ptrs[0]] + mem[ptrs[1]])
    ptrs[1 - j] = ptrs[j]
    out.append(mem[ptrs[0]] + mem[ptrs[1]])
    ptrs[1] = "q"
    mem["q"] += 0.5
    out.append(mem["q"])
    out.append(mem[["q", "p"][j]])
    out.append(mem[ptrs[0]] + 10 * mem[ptrs[1]])
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_a_local_array_of_number_pointers_is_passed_to_functions(tmp_path, arch):
    prog = out_program(tmp_path, LOCALS, "f32", arch)
    check(prog, [_locals_oracle(0), _locals_oracle(1)])


FIELDS = """
const S = struct { p: *f32, n: i16 };
var p: f32 = 1.0;
var q: f32 = 2.0;
var g = S { .p = &p, .n = 3 };
var out: [8]f32;
var out_ptr: [*]f32 = &out;

fn scaled(s: S) f32 { return s.p.* * @as(f32, s.n); }

fn main() void {
  const j = lay.get_x_coord();
  out[0] = g.p.*;
  if (j == 1) { g.p = &q; }
  out[1] = scaled(g);
  var l = S { .p = &q, .n = 2 };
  out[2] = scaled(l);
  var ps = [2]*f32 { &p, &q };
  ps = [2]*f32 { &q, &p };
  out[3] = ps[0].*;
  const u = [_]*f32 { &q, &p };
  out[4] = u[j].*;
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_pointer_fields_of_structs_and_arrays_assigned_whole(tmp_path, arch):
    prog = out_program(tmp_path, FIELDS, "f32", arch)
    p, q = 1.0, 2.0
    check(prog, [[p, p * 3, q * 2, q, q], [p, q * 3, q * 2, q, p]])


LIST_LITERALS = """
const E = enum(u8) { a, b };
var x: [2]f32 = .{ 1.5, 2.5 };
var es: [2]E = .{ .b, .a };
var y = [3]f32 { 4.0, 5.0, 6.0 };
var out: [8]f32;
var out_ptr: [*]f32 = &out;

fn main() void {
  const j = lay.get_x_coord();
  out[0] = x[j];
  out[1] = @as(f32, @as(u8, es[j]));
  var l: [2]*f32 = .{ &y[2], &x[0] };
  out[2] = l[j].*;
  l = .{ &x[1], &y[0] };
  out[3] = l[j].*;
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_anonymous_list_literals_initialise_and_assign_arrays(tmp_path, arch):
    prog = out_program(tmp_path, LIST_LITERALS, "f32", arch)
    x, y, es = [1.5, 2.5], [4.0, 5.0, 6.0], [1, 0]
    check(prog, [[x[j], es[j], [y[2], x[0]][j], [x[1], y[0]][j]] for j in (0, 1)])


BAD_INDEX = """
var p: f32 = 1.0;
var q: f32 = 2.0;
var ptrs = [2]*f32 { &p, &q };
var out: [8]f32;
var out_ptr: [*]f32 = &out;

fn main() void {
  out[0] = ptrs[@as(u16, lay.get_x_coord()) + 1].*;
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_bad_runtime_index_into_an_array_of_pointers_faults_the_pe(tmp_path, arch):
    prog = out_program(tmp_path, BAD_INDEX, "f32", arch)
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    with pytest.raises(FabricFault, match="index out of range reading 'ptrs' at PE \\(1, 0\\)"):
        r.launch("main", nonblock=False)
    with pytest.raises(FabricFault, match="out of range"):
        Reference(prog).launch("main")


@pytest.mark.parametrize("body, where, message", [
    ("var n: i32 = 0;\nvar ptrs = [2]*f32 { &p, &q };\n"
     "fn main() void { ptrs[0] = &n; }",
     "ptrs[0] =", "element: expected *f32, got *i32"),
    ("var ptrs = [2]*f32 { &p, &q };\n"
     "fn main() void { out[0] = ptrs[2].*; }",
     "ptrs[2]", "index 2 out of range of 'ptrs'"),
    ("fn main() void {\n  var r: *f32 = &p;\n  r = &q;\n"
     "  const rs = [2]*f32 { r, &q };\n"
     "  out[0] = rs[@as(u16, lay.get_x_coord())].*;\n}",
     "rs[", "holding pointers known only at run time is indexed with a runtime index"),
    ("var ptrs: [3]*f32 = .{ &p, &q };\nfn main() void { out[0] = ptrs[0].*; }",
     "var ptrs", "'ptrs': expected [3]*f32, got a tuple of 2 elements"),
], ids=["another-pointer-type", "index-out-of-range", "runtime-index-into-runtime-pointers",
        "short-list-literal"])
def test_pointer_array_errors_are_located(tmp_path, body, where, message):
    src = ("var p: f32 = 1.0;\nvar q: f32 = 2.0;\nvar out: [8]f32;\n"
           "var out_ptr: [*]f32 = &out;\n" + body + "\n")
    with pytest.raises(CslError, match=re.escape(message)) as info:
        out_program(tmp_path, src, "f32")
    line, col = position(OUT_HEAD + src, where)
    assert (info.value.line, info.value.col) == (line, col)
