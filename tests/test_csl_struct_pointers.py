"""Pointers to named structs (`*S`, `*const S`, `[*]S`, `&s`, `&ps[i]`) and the large local
arrays of structs: each program run on the engine and the reference interpreter, on both
arches, and checked by hand."""

from __future__ import annotations

import pytest
from csl_harness import compile_pe
from test_csl_structs import ARCHES, EXPORTS, HEAD, TAIL, located, outputs, program


@pytest.mark.parametrize("arch", ARCHES)
def test_pointer_to_global_struct(tmp_path, arch):
    out = outputs(program(tmp_path, """
const In = struct { a: i16, b: bool };
const S = struct { x: i16, y: f32, in: In };
var s: S = .{ .x = 3, .y = 1.5, .in = .{ .a = 7, .b = true } };
var t: S = .{ .x = 10, .y = -2.0, .in = .{ .a = 1, .b = false } };
var gp: *S = &s;
var out: [12]f32;
var out_ptr: [*]f32 = &out;
fn bump(p: *S, k: i16) void { p.*.x += k; p.*.in.a = p.*.x * 2; }
fn total(p: *const S) f32 { return @as(f32, p.*.x) + p.*.y + @as(f32, p.*.in.a); }
fn main() void {
  var p: *S = &s;
  p.*.y = 4.0;                                   // s = {3, 4.0, {7, true}}
  out[0] = total(p);                             // 14
  bump(&t, 5);                                   // t = {15, -2, {30, false}}
  out[1] = total(&t);                            // 43
  var k: i16 = 0;
  while (k < 2) : (k += 1) {
    if (k == 1) { p = &t; }
    out[2 + @as(u16, k)] = @as(f32, p.*.x);      // 3, 15
  }
  p.* = s;                                       // t = s
  out[4] = total(&t);                            // 14
  gp.*.in.b = false;
  out[5] = if (s.in.b) 1.0 else 0.0;             // 0
  gp = &t;
  gp.*.x = 100;
  out[6] = @as(f32, t.x);                        // 100
  out[7] = @as(f32, s.x);                        // 3
  const c: S = p.*;                              // a copy of t
  t.x = 1;
  out[8] = @as(f32, c.x);                        // 100
  sys.unblock_cmd_stream();
}
""", arch), 9)
    assert out.tolist() == [14.0, 43.0, 3.0, 15.0, 14.0, 0.0, 100.0, 3.0, 100.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_into_arrays_of_structs(tmp_path, arch):
    out = outputs(program(tmp_path, """
const S = struct { x: i16, y: f32 };
var ps: [4]S = [4]S { .{ .x = 1, .y = 0.5 }, .{ .x = 2, .y = 1.5 }, .{ .x = 3, .y = 2.5 },
                      .{ .x = 4, .y = 3.5 } };
var grid: [2, 3]S;
var out: [12]f32;
var out_ptr: [*]f32 = &out;
fn sum(q: [*]const S, n: u16) f32 {
  var acc: f32 = 0.0;
  var i: u16 = 0;
  while (i < n) : (i += 1) { acc += @as(f32, q[i].x) * q[i].y; }
  return acc;
}
fn scale(q: [*]S, n: u16) void {
  var i: u16 = 0;
  while (i < n) : (i += 1) { q[i].y = q[i].y * 2.0; }
  q[0] = q[n - 1];
}
fn main() void {
  out[0] = sum(&ps, 4);                 // 0.5 + 3 + 7.5 + 14 = 25
  var i: u16 = 2;
  const e: *S = &ps[i];
  e.*.x = 30;
  out[1] = @as(f32, ps[2].x);           // 30
  scale(&ps, 4);                        // y doubled: 1,3,5,7 ; ps[0] = ps[3] = {4, 7}
  out[2] = ps[0].y + @as(f32, ps[0].x); // 11
  out[3] = ps[2].y;                     // 5
  const all: *[4]S = &ps;
  var acc: f32 = 0.0;
  for (all.*) |v| { acc += v.y; }       // 7 + 3 + 5 + 7 = 22
  out[4] = acc;
  out[5] = @as(f32, all.*[2].x);        // 30
  i = 1;
  const g: *S = &grid[1, i];
  g.* = .{ .x = 9, .y = 9.5 };
  out[6] = grid[1, 1].y;                // 9.5
  out[7] = @as(f32, grid[0, 1].x);      // 0
  const f: [*]S = &ps;
  const h: *S = &f[3];
  out[8] = @as(f32, h.*.x);             // 4
  sys.unblock_cmd_stream();
}
""", arch), 9)
    assert out.tolist() == [25.0, 30.0, 11.0, 5.0, 22.0, 30.0, 9.5, 0.0, 4.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_to_local_structs_and_large_local_arrays(tmp_path, arch):
    out = outputs(program(tmp_path, """
const S = struct { x: i16, y: f32 };
const E = enum(u8) { a, b, c };
var out: [12]f32;
var out_ptr: [*]f32 = &out;
fn fill(p: *S, k: i16) void { p.* = .{ .x = k, .y = @as(f32, k) * 0.5 }; }
fn table() [1100]S {
  var a: [1100]S = undefined;
  for (@range(i16, 1100)) |i| { a[i] = S { .x = i, .y = @as(f32, i) * 2.0 }; }
  return a;
}
const T = comptime table();
fn half(q: S) f32 { const p = &q; return p.*.y + @as(f32, p.*.x); }
fn work(r: i16) void {
  var big: [1100]S = T;
  big[r].x = -1;
  const bp: *S = &big[1099];
  out[2 * @as(u16, r)] = @as(f32, bp.*.x) + bp.*.y;             // 1099 + 2198 = 3297
  out[2 * @as(u16, r) + 1] = @as(f32, big[0].x) + big[1].y;      // 0 + 2, or -1 + 2
}
fn main() void {
  var s: S = .{ .x = 1, .y = 1.0 };
  fill(&s, 6);
  out[4] = @as(f32, s.x) + s.y;         // 9
  var loc: [3]S = @zeros([3]S);
  var i: u16 = 1;
  while (i < 3) : (i += 1) { fill(&loc[i], @as(i16, i) * 10); }
  out[5] = @as(f32, loc[2].x) + loc[1].y + @as(f32, loc[0].x);   // 20 + 5 + 0
  work(0);
  work(1);
  var es: [1100]E = @zeros([1100]E);
  es[3] = E.c;
  out[6] = if (es[3] == E.c and es[1099] == E.a) 1.0 else 0.0;
  out[7] = half(s);                     // 3 + 6
  var other: [1100]S = T;               // not behind a pointer: one symbol per field
  other[5].y += 1.0;
  out[8] = other[5].y + @as(f32, other[1098].x);                  // 11 + 1098
  sys.unblock_cmd_stream();
}
""", arch), 9)
    assert out.tolist() == [3297.0, 1.0, 3297.0, 2.0, 9.0, 25.0, 1.0, 9.0, 1109.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_to_fields_of_structs(tmp_path, arch):
    out = outputs(program(tmp_path, """
const S = struct { x: i16, y: f32 };
var s: S = .{ .x = 3, .y = 1.5 };
var ps: [3]S;
var grid: [2, 2]S;
var out: [8]f32;
var out_ptr: [*]f32 = &out;
fn put(p: *f32, v: f32) void { p.* = v; }
fn main() void {
  const px = &s.y;
  put(px, 7.0);
  out[0] = s.y;                            // 7
  var i: u16 = 2;
  put(&ps[i].y, 4.5);
  out[1] = ps[2].y;                        // 4.5
  var l: S = .{ .x = 1, .y = 2.0 };
  put(&l.y, 8.0);
  out[2] = l.y;                            // 8
  const q: *S = &ps[1];
  const qq: *S = &q.*;
  put(&qq.*.y, 9.0);
  out[3] = ps[1].y;                        // 9
  i = 1;
  put(&grid[1, i].y, 6.0);
  out[4] = grid[1, 1].y + grid[0, 1].y;    // 6
  const c = &s.x;
  s.x = 12;
  out[5] = @as(f32, c.*);                  // 12
  sys.unblock_cmd_stream();
}
""", arch), 6)
    assert out.tolist() == [7.0, 4.5, 8.0, 9.0, 6.0, 12.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_to_struct_fields_of_structs(tmp_path, arch):
    out = outputs(program(tmp_path, """
const In = struct { a: i16, b: f32 };
const S = struct { x: i16, in: In, y: f32 };
var s: S = .{ .x = 3, .in = .{ .a = 7, .b = 0.5 }, .y = 1.5 };
var ps: [3]S;
var t: In = .{ .a = 2, .b = 4.0 };
var out: [8]f32;
var out_ptr: [*]f32 = &out;
fn grow(p: *In, k: i16) void { p.*.a += k; p.*.b = p.*.b * 2.0; }
fn sum(p: *const In) f32 { return @as(f32, p.*.a) + p.*.b; }
fn main() void {
  grow(&s.in, 10);                         // s.in = {17, 1.0}
  out[0] = @as(f32, s.in.a) + s.in.b;      // 18
  out[1] = sum(&t);                        // 6
  var i: u16 = 2;
  const q = &ps[i].in;
  q.* = s.in;                              // ps[2].in = {17, 1.0}
  grow(q, 1);                              // {18, 2.0}
  out[2] = sum(&ps[2].in);                 // 20
  out[3] = @as(f32, ps[2].x) + ps[2].y;    // 0: the rest of ps[2] untouched
  const ps1: *S = &ps[1];
  const r: *In = &ps1.*.in;
  r.*.a = 5;
  out[4] = @as(f32, ps[1].in.a);           // 5
  var l: S = .{ .x = 1, .in = .{ .a = 1, .b = 1.0 }, .y = 2.0 };
  grow(&l.in, 1);                          // l.in = {2, 2.0}
  out[5] = sum(&l.in) + @as(f32, l.x) + l.y;    // 7
  out[6] = @as(f32, s.x) + s.y;            // 4.5
  const tp: *In = &t;
  out[7] = if (tp == &s.in or r != &ps[1].in) 1.0 else 0.0;   // 0
  sys.unblock_cmd_stream();
}
""", arch), 8)
    assert out.tolist() == [18.0, 6.0, 20.0, 0.0, 5.0, 7.0, 4.5, 0.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_struct_pointers_returned_compared_and_pointed_to(tmp_path, arch):
    out = outputs(program(tmp_path, """
const S = struct { x: i16, y: f32 };
var ps: [3]S;
var cur: *S = &ps[0];
var out: [6]f32;
var out_ptr: [*]f32 = &out;
fn pick(k: u16) *S { return &ps[k]; }
fn main() void {
  const a = pick(2);
  a.*.y = 5.0;
  out[0] = ps[2].y;                                   // 5
  out[1] = if (a == &ps[2]) 1.0 else 0.0;             // 1
  out[2] = if (a == pick(1)) 1.0 else 0.0;            // 0
  const pc: **S = &cur;
  pc.* = a;
  cur.*.x = 4;
  out[3] = @as(f32, ps[2].x);                         // 4
  const raw = @bitcast(u16, a);
  const back = @bitcast(*S, raw);
  out[4] = back.*.y;                                  // 5
  sys.unblock_cmd_stream();
}
""", arch), 5)
    assert out.tolist() == [5.0, 1.0, 0.0, 4.0, 5.0]


ERR_HEAD = """const In = struct { a: i16 };
const S = struct { x: i16, y: f32, in: In };
var s: S;
var out: [1]f32;
var out_ptr: [*]f32 = &out;
"""


@pytest.mark.parametrize("body, where, message", [
    ("fn main() void { const p = &s; out[0] = p.y; }", "y; }",
     "'.y' on a *S: a single-item pointer's only operation is `.*` (spec 3.1); write "
     "`p.*.y`"),
    ("fn main() void { const p: *const S = &s; p.* = .{ .x = 1, .y = 2.0 }; }", "p.* =",
     "cannot assign through a pointer to const"),
    ("fn f(q: S) i16 { const p = &q.in; return p.*.a; }\n"
     "fn main() void { out[0] = @as(f32, f(s)); }", "&q.in",
     "cannot take the address of a runtime In here: only a struct variable (global or "
     "local), an element of an array of structs or a struct field of one of those has an "
     "address, not a struct parameter or a value"),
    ("fn f(p: *const S) void { p.*.x = 1; }\nfn main() void { f(&s); }", "p.*.x = 1",
     "field 'x' is constant (a parameter, a value, or reached through a pointer to const)"),
    ("fn main() void { const p = &(s.y + 1.0); out[0] = p.*; }", "&(s.y",
     "a pointer is made with `&` of a variable (spec 3.1), not of the value of an "
     "expression"),
    ("var qs: [3]S;\nfn main() void { const q: *[3]S = &qs; q.* = @zeros([2]S); }", "q.* =",
     "the [3]S pointed to: expected [3]S, got an array of shape [2]"),
    ("const E = enum(u8) { a, b };\nvar es: [2]E;\n"
     "fn main() void { const p: *const [2]E = &es; p.* = [2]E { .b, .b }; }", "p.* =",
     "cannot assign through a pointer to const"),
    ("const E = enum(u8) { a, b };\nvar es: [2]E;\n"
     "fn main() void { const p: *[2]E = &es; p.* = [3]E { .b, .b, .a }; }", "p.* =",
     "the [2]E pointed to: expected [2]E, got an array of shape [3]"),
    ("const E = enum(u8) { a, b };\nvar es: [2]E;\n"
     "fn main() void { const k: E = es[0]; const p = &k; p.* = .b; }", "p.* =",
     "cannot assign through a pointer to const"),
])
def test_struct_pointer_errors(tmp_path, body, where, message):
    located(tmp_path, ERR_HEAD + body + "\n", where, message)


# ------------------------------------------------------------------------------------------------
# pointers the other refusals covered


@pytest.mark.parametrize("arch", ARCHES)
def test_array_pointers_from_an_element_and_addresses_of_values(tmp_path, arch):
    out = outputs(program(tmp_path, """
var a: [6]f32 = [6]f32 { 1.0, 2.0, 3.0, 4.0, 5.0, 6.0 };
var out: [8]f32;
var out_ptr: [*]f32 = &out;
var gq: *[2]f32 = &a[4];
fn rd(p: *const f32) f32 { return p.*; }
fn main() void {
  const p: *[1]f32 = &a[2];
  out[0] = p.*[0];                       // 3
  const q = @ptrcast(*[2]f32, &a[3]);
  out[1] = q.*[1];                       // 5
  q.* = [2]f32 { 10.0, 20.0 };           // a[3], a[4]
  var acc: f32 = 0.0;
  for (q.*) |x| { acc += x; }
  out[2] = acc;                          // 30
  out[3] = a[4];                         // 20
  out[4] = gq.*[1] + @as(f32, q.*.len);  // 6 + 2
  for (a) |x| { out[5] += rd(&x); }      // 1 + 2 + 3 + 10 + 20 + 6
  sys.unblock_cmd_stream();
}
""", arch), 6)
    assert out.tolist() == [3.0, 5.0, 30.0, 20.0, 8.0, 42.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_addresses_of_variables_of_another_module(tmp_path, arch):
    body = """
const m = @import_module("m.csl");
var out: [4]f32;
var out_ptr: [*]f32 = &out;
fn main() void {
  const pp: **f32 = &m.p;
  out[0] = pp.*.*;          // a
  pp.* = &m.b;
  out[1] = m.read();        // b, through m's own p
  const ps = &m.s;
  ps.*.y = 2.25;
  out[2] = m.get();         // 2.25
  const q: *m.S = &m.arr[1];
  q.*.y = 3.5;
  out[3] = m.arr[1].y;
  sys.unblock_cmd_stream();
}
"""
    files = {"m.csl": """
const S = struct { x: i16, y: f32 };
var s: S;
var arr: [2]S;
var a: f32 = 1.5;
var b: f32 = 2.5;
var p: *f32 = &a;
fn read() f32 { return p.*; }
fn get() f32 { return s.y; }
"""}
    prog = compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS.format(t="f32"), arch=arch,
                      files=files)
    assert outputs(prog, 4).tolist() == [1.5, 2.5, 2.25, 3.5]


@pytest.mark.parametrize("arch", ARCHES)
def test_zeros_of_comptime_numbers(tmp_path, arch):
    out = outputs(program(tmp_path, """
var out: [2]f32;
var out_ptr: [*]f32 = &out;
const zi = @zeros(comptime_int);
const zf = @zeros(comptime_float);
fn main() void {
  out[0] = @as(f32, zi + 3);
  out[1] = zf + 0.5;
  sys.unblock_cmd_stream();
}
""", arch), 2)
    assert out.tolist() == [3.0, 0.5]


@pytest.mark.parametrize("t", ["*f32", "color", "[2]*f32"])
def test_zeros_of_a_type_without_zero(tmp_path, t):
    located(tmp_path, ERR_HEAD + f"fn main() void {{ const z = @zeros({t}); _ = z; }}\n",
            "@zeros", f"@zeros({t}): {t} has no zero value (a pointer is never null")


# ------------------------------------------------------------------------------------------------
# pointers to enums held at run time


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_to_enums(tmp_path, arch):
    out = outputs(program(tmp_path, """
const E = enum(u8) { a, b, c = 5 };
const S = struct { k: E, n: i16 };
var e: E = .b;
var es: [3]E = [3]E { .a, .b, .c };
var s: S = .{ .k = .a, .n = 1 };
var gp: *E = &e;
var out: [10]f32;
var out_ptr: [*]f32 = &out;
fn val(x: E) f32 {
  switch (x) { .a => { return 1.0; }, .b => { return 2.0; }, .c => { return 3.0; } }
}
fn next(q: *E) void {
  switch (q.*) { .a => { q.* = .b; }, .b => { q.* = .c; }, .c => { q.* = .a; } }
}
fn own(x: E) f32 {
  var y: E = x;
  next(&y);
  const r: *const E = &x;
  return val(y) * 10.0 + val(r.*);
}
fn main() void {
  var p: *E = &e;
  out[0] = val(p.*);                     // b: 2
  var l: E = .c;
  next(&l);
  out[1] = val(l);                       // a: 1
  const many: [*]E = &es;
  many[2] = .b;
  out[2] = val(es[2]) + @as(f32, @as(u8, many[0]));   // 2 + 0
  gp.* = .a;
  out[3] = val(e);                       // 1
  next(&s.k);
  out[4] = val(s.k);                     // 2
  out[5] = own(.c);                      // a: 1 * 10 + c: 3
  var i: u16 = 0;
  while (i < 3) : (i += 1) { next(&es[i]); }
  out[6] = val(es[0]) + 10.0 * val(es[1]) + 100.0 * val(es[2]);   // b, c, c
  gp = &es[1];
  out[7] = if (gp.* == .c) 1.0 else 0.0;
  p.* = .c;
  out[8] = @as(f32, @as(u8, e));         // 5
  sys.unblock_cmd_stream();
}
""", arch), 9)
    assert out.tolist() == [2.0, 1.0, 2.0, 1.0, 2.0, 13.0, 332.0, 1.0, 5.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_into_local_arrays_of_enums(tmp_path, arch):
    out = outputs(program(tmp_path, """
const E = enum(i16) { x = -1, y = 4 };
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn flip(q: *E) void { if (q.* == .x) { q.* = .y; } else { q.* = .x; } }
fn main() void {
  var ls: [2]E = [2]E { .x, .y };
  var j: u16 = 1;
  flip(&ls[j]);
  flip(&ls[0]);
  out[0] = @as(f32, @as(i16, ls[0])) + 10.0 * @as(f32, @as(i16, ls[1]));
  const p: *[2]E = &ls;
  p.*[1] = .y;
  out[1] = @as(f32, @as(i16, ls[1]));
  sys.unblock_cmd_stream();
}
""", arch), 2)
    assert out.tolist() == [4.0 - 10.0, 4.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_whole_arrays_assigned_through_pointers(tmp_path, arch):
    out = outputs(program(tmp_path, """
const S = struct { x: i16, y: f32 };
const E = enum(u8) { a, b, c };
var ps: [3]S = [3]S { .{ .x = 1, .y = 0.5 }, .{ .x = 2, .y = 1.5 }, .{ .x = 3, .y = 2.5 } };
var qs: [3]S;
var rs: [3]S = [3]S { .{ .x = 4, .y = 0.25 }, .{ .x = 5, .y = 0.75 }, .{ .x = 6, .y = 1.0 } };
var es: [3]E = [3]E { .a, .a, .a };
var fs: [3]E = [3]E { .c, .b, .a };
var out: [8]f32;
var out_ptr: [*]f32 = &out;
fn fill(d: *[3]S, s: *const [3]S) void { d.* = s.*; }
fn rotate(p: *[3]E) void { const t = p.*[0]; p.*[0] = p.*[1]; p.*[1] = p.*[2]; p.*[2] = t; }
fn main() void {
  const q: *[3]S = &qs;
  q.* = [3]S { .{ .x = 7, .y = 1.0 }, .{ .x = 8, .y = 2.0 }, .{ .x = 9, .y = 3.0 } };
  out[0] = @as(f32, qs[2].x) + qs[0].y;     // 9 + 1
  fill(&ps, &qs);
  out[1] = @as(f32, ps[1].x) + ps[1].y;     // 8 + 2
  q.* = rs;
  out[2] = @as(f32, qs[1].x) + qs[2].y;     // 5 + 1
  const pe: *[3]E = &es;
  pe.* = fs;                                // c, b, a
  rotate(pe);                               // b, a, c
  out[3] = @as(f32, @as(u8, es[0])) + 10.0 * @as(f32, @as(u8, es[1]))
           + 100.0 * @as(f32, @as(u8, es[2]));
  const pf: *[3]E = &fs;
  pf.* = pe.*;
  out[4] = @as(f32, @as(u8, fs[2]));        // c: 2
  sys.unblock_cmd_stream();
}
""", arch), 5)
    assert out.tolist() == [10.0, 10.0, 6.0, 201.0, 2.0]


@pytest.mark.parametrize("arch", ARCHES)
def test_addresses_of_enum_values(tmp_path, arch):
    out = outputs(program(tmp_path, """
const E = enum(u8) { a, b, c };
var es: [3]E = [3]E { .a, .c, .b };
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn code(p: *const E) f32 { return @as(f32, @as(u8, p.*)); }
fn main() void {
  const k: E = es[1];
  out[0] = code(&k);
  var acc: f32 = 0.0;
  for (es) |x| { acc = acc * 10.0 + code(&x); }
  out[1] = acc;
  sys.unblock_cmd_stream();
}
""", arch), 2)
    assert out.tolist() == [2.0, 21.0]


# ------------------------------------------------------------------------------------------------
# @type_of values CSL gives no type


@pytest.mark.parametrize("expr, message", [
    ("@range(u16, 4)", "@type_of a range: CSL names no type for the value of @range (it is "
     "only iterated by `for` and read by @range_start / @range_stop / @range_step); its "
     "elements are u16: write @type_of(@range_start(r))"),
    ("math.sqrt", "@type_of the library function 'sqrt': the SDK documents its library "
     "functions by the arguments they accept, not by a CSL function type"),
])
def test_type_of_a_range_or_a_library_function(tmp_path, expr, message):
    located(tmp_path, 'const math = @import_module("<math>");\n' + ERR_HEAD
            + f"const R = @type_of({expr});\n"
            "fn main() void { const x: R = undefined; _ = x; }\n", "@type_of(", message)


@pytest.mark.parametrize("arch", ARCHES)
def test_more_than_1024_enums_assigned_through_a_pointer_at_once(tmp_path, arch):
    out = outputs(program(tmp_path, """
const E = enum(u8) { a, b, c };
fn filled(v: E) [1100]E {
  var a: [1100]E = undefined;
  for (@range(u16, 1100)) |i| { a[i] = v; }
  return a;
}
const all_c = filled(.c);
var es: [1100]E;
var fs: [1100]E = filled(.b);
var out: [6]f32;
var out_ptr: [*]f32 = &out;
fn code(x: E) f32 { return @as(f32, @as(u8, x)); }
fn main() void {
  const p: *[1100]E = &es;
  p.* = all_c;                               // from a comptime array
  out[0] = code(es[0]) + 10.0 * code(es[1099]);
  fs[1099] = .a;
  p.* = fs;                                 // from an array in memory
  out[1] = code(es[0]) + 10.0 * code(es[1099]);
  es[5] = .c;
  const q: *[1100]E = &fs;
  q.* = p.*;                                // from the array another pointer points to
  out[2] = code(fs[5]) + 10.0 * code(fs[1099]) + 100.0 * code(fs[1098]);
  sys.unblock_cmd_stream();
}
""", arch), 3)
    assert out.tolist() == [22.0, 1.0, 102.0]
