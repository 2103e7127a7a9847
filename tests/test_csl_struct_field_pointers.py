"""Pointers to structs held in any struct-typed field (`wsejax/csl/struct_pointers.py`): one
`*In` points at a standalone In, at an In field of any struct (two of one struct, nested, of
two struct types), at elements of `[N]In` and of arrays of structs with In fields. Each program
runs on the engine and the reference interpreter, on both arches, checked by hand."""

from __future__ import annotations

import pytest
from csl_harness import compile_pe
from test_csl_structs import ARCHES, EXPORTS, HEAD, TAIL, outputs, program


@pytest.mark.parametrize("arch", ARCHES)
def test_one_pointer_type_for_a_standalone_struct_and_two_fields(tmp_path, arch):
    out = outputs(program(tmp_path, """
const In = struct { a: i16, b: f32 };
const Two = struct { x: i16, p: In, q: In };
var a: In = .{ .a = 1, .b = 0.5 };
var s: Two = .{ .x = 9, .p = .{ .a = 2, .b = 1.5 }, .q = .{ .a = 3, .b = 2.5 } };
var out: [12]f32;
var out_ptr: [*]f32 = &out;
fn sum(p: *const In) f32 { return @as(f32, p.*.a) + p.*.b; }
fn grow(p: *In, k: i16) void { p.*.a += k; p.*.b = p.*.b * 2.0; }
fn main() void {
  out[0] = sum(&a) + 10.0 * sum(&s.p) + 100.0 * sum(&s.q);   // 1.5 + 35 + 550
  grow(&s.q, 4);                             // s.q = {7, 5.0}
  grow(&a, 1);                               // a = {2, 1.0}
  out[1] = @as(f32, s.q.a) + s.q.b + @as(f32, s.p.a);        // 7 + 5 + 2
  var p: *In = &a;
  var k: i16 = 0;
  while (k < 3) : (k += 1) {                 // a, then s.p, then s.q
    out[2 + @as(u16, k)] = sum(p);           // 3, 3.5, 12
    if (k == 0) { p = &s.p; } else { p = &s.q; }
  }
  p.* = a;                                   // s.q = a = {2, 1.0}
  out[5] = sum(&s.q) + @as(f32, s.x);        // 3 + 9
  const r: *In = &s.p;
  a = r.*;                                   // a = s.p = {2, 1.5}
  out[6] = a.b;                              // 1.5
  out[7] = if (p == &s.q and p != &s.p and r != &a) 1.0 else 0.0;   // 1
  const raw = @bitcast(u16, &s.p);
  const back = @bitcast(*In, raw);
  back.*.a = 40;
  out[8] = @as(f32, s.p.a);                  // 40
  s = .{ .x = 1, .p = s.q, .q = s.p };       // swapped: p = {2, 1.0}, q = {40, 1.5}
  out[9] = sum(r) + 100.0 * sum(p);          // r is &s.p: 3; p is &s.q: 41.5
  sys.unblock_cmd_stream();
}
""", arch), 10)
    assert out.tolist() == [1.5 + 35.0 + 550.0, 14.0, 3.0, 3.5, 12.0, 12.0, 1.5, 1.0, 40.0,
                            3.0 + 4150.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_to_nested_fields_and_fields_of_two_struct_types(tmp_path, arch):
    out = outputs(program(tmp_path, """
const In = struct { a: i16, b: f32 };
const Mid = struct { m: u16, inner: In };
const Out = struct { mid: Mid, y: f32, own: In };
const Other = struct { z: In, w: i16 };
var o: Out = .{ .mid = .{ .m = 5, .inner = .{ .a = 1, .b = 1.0 } }, .y = 0.25,
                .own = .{ .a = 2, .b = 2.0 } };
var t: Other = .{ .z = .{ .a = 3, .b = 3.0 }, .w = 7 };
var out: [10]f32;
var out_ptr: [*]f32 = &out;
fn val(p: *const In) f32 { return @as(f32, p.*.a) * 10.0 + p.*.b; }
fn set(p: *In, v: In) void { p.* = v; }
fn main() void {
  const deep: *In = &o.mid.inner;
  const pm: *Mid = &o.mid;
  out[0] = val(deep) + val(&o.own) * 100.0;          // 11 + 2200
  set(&t.z, .{ .a = 4, .b = 0.5 });
  out[1] = val(&t.z) + @as(f32, t.w);                // 40.5 + 7
  set(&pm.*.inner, t.z);                             // o.mid.inner = {4, 0.5}
  out[2] = val(deep) + @as(f32, o.mid.m) + o.y;      // 40.5 + 5 + 0.25
  const po: *Out = &o;
  po.*.mid.inner.b = 8.0;
  out[3] = o.mid.inner.b;                            // 8
  var q: *In = deep;
  var i: u16 = 0;
  var acc: f32 = 0.0;
  while (i < 3) : (i += 1) {
    acc = acc * 100.0 + val(q);                      // 48, 22, 40.5
    if (i == 0) { q = &o.own; } else { q = &t.z; }
  }
  out[4] = acc;
  out[5] = if (q == &t.z and &o.own != deep) 1.0 else 0.0;   // 1
  pm.* = .{ .m = 6, .inner = o.own };                // o.mid = {6, {2, 2.0}}
  out[6] = val(deep) + @as(f32, o.mid.m);            // 22 + 6
  sys.unblock_cmd_stream();
}
""", arch), 7)
    assert out.tolist() == [2211.0, 47.5, 45.75, 8.0, 48.0 * 1e4 + 22.0 * 1e2 + 40.5, 1.0,
                            28.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_into_arrays_of_structs_with_struct_fields(tmp_path, arch):
    out = outputs(program(tmp_path, """
const In = struct { a: i16, b: f32 };
const Two = struct { x: i16, p: In, q: In };
var ins: [3]In = [3]In { .{ .a = 1, .b = 0.5 }, .{ .a = 2, .b = 1.5 }, .{ .a = 3, .b = 2.5 } };
var ts: [4]Two;
var grid: [2, 2]Two;
var out: [10]f32;
var out_ptr: [*]f32 = &out;
fn sum(p: *const In) f32 { return @as(f32, p.*.a) + p.*.b; }
fn total(q: [*]const In, n: u16) f32 {
  var acc: f32 = 0.0;
  var i: u16 = 0;
  while (i < n) : (i += 1) { acc += sum(&q[i]); }
  return acc;
}
fn fill(ps: [*]Two, n: u16) void {
  var i: u16 = 0;
  while (i < n) : (i += 1) {
    ps[i].x = @as(i16, i);
    ps[i].p = .{ .a = 10 * @as(i16, i), .b = 0.25 };
    const q: *In = &ps[i].q;
    q.* = ins[i % 3];
  }
}
fn main() void {
  out[0] = total(&ins, 3);                           // 1.5 + 3.5 + 5.5
  fill(&ts, 4);                                      // ts[i] = {i, {10 i, 0.25}, ins[i % 3]}
  var r: u16 = 2;
  out[1] = sum(&ts[r].p) + sum(&ts[r].q);            // 20.25 + 5.5
  var c: u16 = 1;
  const pick: *In = &grid[1, c].q;
  pick.* = ts[3].q;                                  // ins[0] = {1, 0.5}
  pick.*.a = 50;
  out[2] = @as(f32, grid[1, 1].q.a) + grid[1, 1].q.b + @as(f32, grid[0, 1].q.a);   // 50.5
  var k: u16 = 0;
  var acc: f32 = 0.0;
  while (k < 3) : (k += 1) {
    var e: *In = &ins[k];
    if (k == 1) { e = &ts[k].p; }
    acc = acc * 100.0 + sum(e);                      // ins[0] 1.5, ts[1].p 10.25, ins[2] 5.5
  }
  out[3] = acc;
  const all: *[4]Two = &ts;
  out[4] = @as(f32, all.*[2].p.a) + @as(f32, all.*[1].q.a);   // 20 + 2
  grid[0, 0] = grid[1, 1];                           // copies the fields' values
  grid[1, 1].q.a = 1;
  out[5] = @as(f32, grid[0, 0].q.a) + 1000.0 * @as(f32, grid[1, 1].q.a);   // 50 + 1000
  out[6] = if (&grid[1, c].q == pick and &grid[0, c].q != pick) 1.0 else 0.0;   // 1
  sys.unblock_cmd_stream();
}
""", arch), 7)
    assert out.tolist() == [10.5, 25.75, 50.5, 1.5 * 1e4 + 10.25 * 100.0 + 5.5, 22.0, 1050.0,
                            1.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_field_pointers_of_locals_parameters_and_large_local_arrays(tmp_path, arch):
    out = outputs(program(tmp_path, """
const In = struct { a: i16, b: f32 };
const Two = struct { x: i16, p: In, q: In };
const Sm = struct { c: i16 };
const Big = struct { x: i16, s: Sm };
var g: In = .{ .a = 5, .b = 0.5 };
var out: [10]f32;
var out_ptr: [*]f32 = &out;
fn sum(p: *const In) f32 { return @as(f32, p.*.a) + p.*.b; }
fn table() [1100]Big {
  var t: [1100]Big = undefined;
  for (@range(i16, 1100)) |i| { t[i] = .{ .x = i, .s = .{ .c = -i } }; }
  return t;
}
const T = comptime table();
fn of_param(v: Two) f32 { const pv = &v; return sum(&pv.*.q) + @as(f32, pv.*.x); }
fn work(r: u16) void {
  var big: [1100]Big = T;                            // copied in by a loop
  big[r].s.c = 100;
  const bp: *Sm = &big[r].s;
  out[3 + r] = @as(f32, bp.*.c) + 10.0 * @as(f32, big[1099].s.c);   // 100 - 10990
  out[5 + r] = @as(f32, big[0].s.c);                 // 100, then 0: copied in again
  var other: [1100]Big = undefined;
  other = big;                                       // a loop copies each leaf
  const op: *Sm = &other[1098].s;
  out[7 + r] = @as(f32, op.*.c) + @as(f32, other[r].s.c);   // -1098 + 100
}
fn main() void {
  var l: Two = .{ .x = 1, .p = .{ .a = 2, .b = 0.25 }, .q = .{ .a = 3, .b = 0.75 } };
  var p: *In = &l.p;
  out[0] = sum(p);                                   // 2.25
  p = &g;
  p.* = l.q;                                         // g = {3, 0.75}
  p = &l.q;
  p.*.a = 30;
  out[1] = sum(&g) + 100.0 * sum(&l.q);              // 3.75 + 3075
  out[2] = of_param(l);                              // 30.75 + 1
  work(0);
  work(1);
  sys.unblock_cmd_stream();
}
""", arch), 9)
    assert out.tolist() == [2.25, 3078.75, 31.75, -10890.0, -10890.0, 100.0, 0.0, -998.0,
                            -998.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_aligned_struct_fields_behind_pointers(tmp_path, arch):
    out = outputs(program(tmp_path, """
const In = struct { a: i16, b: f32 };
const Two = struct { x: u16, p: In, q: In };
var pad: u16 = 1;
var s: Two align(32) = .{ .x = 1, .p = .{ .a = 2, .b = 0.5 }, .q = .{ .a = 3, .b = 1.5 } };
var a: In align(16) = .{ .a = 4, .b = 2.5 };
var out: [4]f32;
var out_ptr: [*]f32 = &out;
fn main() void {
  // each address modulo its alignment: all 0
  out[0] = @as(f32, @bitcast(u16, &s) % 32 + @bitcast(u16, &s.p) % 32
                    + @bitcast(u16, &s.q) % 32 + @bitcast(u16, &s.q.b) % 32
                    + @bitcast(u16, &a) % 16 + @bitcast(u16, &a.b) % 16 + pad - 1);
  const q = @bitcast(*In, @bitcast(u16, &s.q));
  out[1] = @as(f32, q.*.a) + q.*.b;                  // 4.5
  out[2] = if (@bitcast(u16, &s.p) != @bitcast(u16, &s.q)) 1.0 else 0.0;
  sys.unblock_cmd_stream();
}
""", arch), 3)
    assert out.tolist() == [0.0, 4.5, 1.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_to_struct_fields_of_another_module(tmp_path, arch):
    body = """
const m = @import_module("m.csl");
var out: [4]f32;
var out_ptr: [*]f32 = &out;
fn main() void {
  const p: *m.In = &m.s.inner;
  p.*.a = 5;
  out[0] = m.get();                 // 5, through m's own s
  const q: *m.In = &m.t;
  q.* = p.*;
  out[1] = @as(f32, m.t.a) + @as(f32, m.s.x);   // 5 + 2
  var i: u16 = 1;
  const r: *m.In = &m.arr[i].inner;
  r.*.a = 7;
  out[2] = @as(f32, m.arr[1].inner.a) + @as(f32, m.arr[0].inner.a);   // 7 + 0
  sys.unblock_cmd_stream();
}
"""
    files = {"m.csl": """
const In = struct { a: i16 };
const Out = struct { x: i16, inner: In };
var s: Out = .{ .x = 2, .inner = .{ .a = 1 } };
var t: In;
var arr: [2]Out;
fn get() f32 { return @as(f32, s.inner.a); }
"""}
    prog = compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS.format(t="f32"), arch=arch,
                      files=files)
    assert outputs(prog, 3).tolist() == [5.0, 7.0, 7.0]
