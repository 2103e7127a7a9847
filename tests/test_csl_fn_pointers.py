"""Function pointers held at run time (spec 3.1: `*const fn(A) R`; a function value coerces to
one, `&f` gives the same): global and local `var`s, assigned at run time from `&f`, `f`,
another pointer, an element of an array read at a runtime index, a struct field, an `if` or
`switch` expression; calls through them with numbers, structs, enums and pointers as arguments
and results; pointers passed to and returned from functions; `==` / `!=`; arrays of them in
memory; pointers to them (`&fp` of a local, a const or a parameter); `@ptrcast` to
`*anyopaque` or another function pointer type and back, and a call through a cast pointer
that names no function of its type faulting the PE. Each program runs on the engine and on
the reference on both arches, and its results are checked by hand; misuse is a located
CslError."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import out_program, out_row, position, run

from wsejax import CslError, FabricFault
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]
W = 3          # PEs in the row; each runs `main` with its own x

HEAD = """
var out: [4]i32;
var out_ptr: [*]i32 = &out;
"""


def outputs(tmp_path, body: str, arch: str) -> np.ndarray:
    """`out` of each PE after `main`, `[W, 4]`, checked equal on the engine and the
    reference."""
    prog = out_program(tmp_path, HEAD + body, "i32", arch, w=W)
    eng, ref = out_row(prog, 4, np.int32, w=W)
    np.testing.assert_array_equal(eng, ref)
    return eng


def compile_error(tmp_path, body: str, where: str) -> CslError:
    """The CslError of a program, checked to point at the first `where` of pe.csl."""
    with pytest.raises(CslError) as info:
        out_program(tmp_path, HEAD + body, "i32", "wse2", w=W)
    e = info.value
    assert e.file.endswith("pe.csl"), str(e)
    assert (e.line, e.col) == position((tmp_path / "pe.csl").read_text(), where), str(e)
    return e


UNARY = """
fn neg(v: i32) i32 { return -v; }
fn inc(v: i32) i32 { return v + 1; }
fn dbl(v: i32) i32 { return 2 * v; }
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_global_pointer_is_assigned_at_run_time_and_called(tmp_path, arch):
    # fp starts at neg; PEs 1 and 2 point it at inc; g copies it, and PE 2 points g at neg
    got = outputs(tmp_path, UNARY + """
var fp: *const fn(i32) i32 = &neg;
var untyped = &dbl;
fn main() void {
  const x = lay.get_x_coord();
  out[0] = fp(5) + 100 * untyped(3);
  if (x > 0) { fp = &inc; }
  out[1] = fp(5);
  var g = fp;
  if (x == 2) { g = neg; }
  out[2] = g(7);
  var same: i32 = 0;
  if (g == fp) { same = 1; }
  if (g != &neg) { same += 10; }
  out[3] = same;
  sys.unblock_cmd_stream();
}
""", arch)
    np.testing.assert_array_equal(got, [[595, -5, -7, 1],
                                        [595, 6, 8, 11],
                                        [595, 6, -7, 0]])


BINARY = """
const Op = *const fn(i32, i32) i32;
fn add(a: i32, b: i32) i32 { return a + b; }
fn sub(a: i32, b: i32) i32 { return a - b; }
fn mul(a: i32, b: i32) i32 { return a * b; }
const table = [3]Op { add, &sub, &mul };
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_arrays_of_pointers_read_and_assigned_at_runtime_indices(tmp_path, arch):
    # ops starts [mul, add, sub]; PE x writes add into ops[x]; local gs copies table and
    # swaps its first two
    got = outputs(tmp_path, BINARY + """
var ops = [3]Op { &mul, &add, &sub };
fn main() void {
  const x = lay.get_x_coord();
  out[0] = table[x](7, 2);
  ops[x] = &add;
  out[1] = ops[(x + 1) % 3](7, 2) + 100 * ops[x](1, 1);
  var gs = table;
  const first = gs[0];
  gs[0] = gs[1];
  gs[1] = first;
  out[2] = gs[x](9, 4);
  var ks: [2]Op = undefined;
  ks[x % 2] = table[2 - x];
  out[3] = ks[x % 2](3, 3);
  sys.unblock_cmd_stream();
}
""", arch)
    # out[1]: x=0 ops=[add,add,sub]: add(7,2)+100*2; x=1 [mul,add,sub]: sub(7,2)+200;
    # x=2 [mul,add,add]: mul(7,2)+200. out[2]: gs = [sub, add, mul]. out[3]: table[2-x](3, 3)
    np.testing.assert_array_equal(got, [[9, 209, 5, 9],
                                        [5, 205, 13, 0],
                                        [14, 214, 36, 6]])


@pytest.mark.parametrize("arch", ARCHES)
def test_fields_parameters_results_and_if_and_switch_values(tmp_path, arch):
    got = outputs(tmp_path, BINARY + """
const S = struct { cb: Op, k: i32 };
var s = S { .cb = &sub, .k = 3 };
var total: i32 = 0;
fn bump(v: i32) void { total += v; }
var hook: *const fn(i32) void = undefined;
fn pick(i: u16) Op { return table[i]; }
fn apply(f: Op, a: i32) i32 { return f(a, 10); }
fn main() void {
  const x = lay.get_x_coord();
  if (x == 1) { s.cb = &mul; }
  out[0] = s.cb(s.k, 4);
  out[1] = apply(pick(x), 5) + 100 * apply(&add, 1);
  hook = bump;
  hook(@as(i32, x) + 1);
  hook(10);
  const f: Op = switch (x) { 0 => &add, 1 => &sub, else => &mul };
  const g = if (x == 0) &mul else s.cb;
  out[2] = f(6, 3) * 10 + total;
  out[3] = g(5, 2);
  sys.unblock_cmd_stream();
}
""", arch)
    # out[0]: sub(3,4) or (PE 1) mul(3,4); out[1]: table[x](5,10) + 100*add(1,10);
    # total = x + 1 + 10; out[3]: mul(5,2), then s.cb: mul on PE 1, sub on PE 2
    np.testing.assert_array_equal(got, [[-1, 1115, 101, 10],
                                        [12, 1095, 42, 10],
                                        [-1, 1150, 193, 3]])


@pytest.mark.parametrize("arch", ARCHES)
def test_struct_enum_and_pointer_arguments_and_results(tmp_path, arch):
    got = outputs(tmp_path, """
const P = struct { a: i32, b: i32 };
const E = enum(u8) { lo, hi };
fn swap(p: P) P { return P { .a = p.b, .b = p.a }; }
fn same(p: P) P { return p; }
fn flip(e: E) E { return if (e == E.lo) E.hi else E.lo; }
fn keep(e: E) E { return e; }
var cell = [2]i32 { 5, 6 };
fn first(p: *i32) i32 { return p.*; }
fn second(p: *i32) i32 { p.* += 1; return p.*; }
var pf: *const fn(P) P = &same;
fn main() void {
  const x = lay.get_x_coord();
  if (x > 0) { pf = &swap; }
  const r = pf(P { .a = 1, .b = 2 });
  out[0] = r.a * 10 + r.b;
  var ef: *const fn(E) E = &keep;
  if (x == 2) { ef = flip; }
  out[1] = @as(i32, @as(u8, ef(E.lo)));
  var gs = [2]*const fn(*i32) i32 { &first, &second };
  out[2] = gs[x % 2](&cell[1]) * 10 + cell[1];
  sys.unblock_cmd_stream();
}
""", arch)
    # second adds one to cell[1] (6) and returns it
    np.testing.assert_array_equal(got[:, :3], [[12, 0, 66], [21, 0, 77], [21, 1, 66]])


@pytest.mark.parametrize("arch", ARCHES)
def test_through_a_pointer_to_it_and_in_a_local_struct(tmp_path, arch):
    # g keeps the pointer it read before `pp.*` changes
    got = outputs(tmp_path, UNARY + """
const Op = *const fn(i32) i32;
var fp: Op = &neg;
const S = struct { cb: Op, k: i32 };
fn later() void {
  const pp = &fp;
  const g = pp.*;
  pp.* = &neg;
  out[3] = g(3) + 10 * fp(3);
}
fn main() void {
  const x = lay.get_x_coord();
  const pp = &fp;
  if (x == 1) { pp.* = &inc; }
  out[0] = fp(4);
  var s2 = S { .cb = &inc, .k = 2 };
  if (x == 2) { s2.cb = fp; }
  out[1] = s2.cb(s2.k);
  out[2] = pp.*(10);
  fp = &inc;
  later();
  sys.unblock_cmd_stream();
}
""", arch)
    np.testing.assert_array_equal(got, [[-4, 3, -10, -26], [5, 3, 11, -26],
                                        [-4, -2, -10, -26]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_pointer_made_by_code_compiled_later_is_called_by_code_compiled_before(
        tmp_path, arch):
    # use() is compiled (with its call through fp) before setter() makes a pointer of late
    got = outputs(tmp_path, UNARY + """
var fp: *const fn(i32) i32 = &neg;
fn late(v: i32) i32 { return v * 100; }
fn use() i32 { return fp(2); }
fn setter() void { fp = late; }
fn main() void {
  const x = lay.get_x_coord();
  out[0] = use();
  if (x > 0) { setter(); }
  out[1] = use();
  sys.unblock_cmd_stream();
}
""", arch)
    np.testing.assert_array_equal(got[:, :2], [[-2, -2], [-2, 200], [-2, 200]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_loop_over_an_array_of_pointers_and_a_task_that_makes_one(tmp_path, arch):
    # the task's body, compiled after main's, makes the first pointer to sq
    got = outputs(tmp_path, UNARY + """
const Op = *const fn(i32) i32;
fn sq(v: i32) i32 { return v * v; }
var fs: [3]Op = undefined;
var hook: Op = &neg;
task t() void { hook = &sq; out[2] = hook(5); sys.unblock_cmd_stream(); }
comptime { @bind_local_task(t, @get_local_task_id(10)); }
fn main() void {
  const x = lay.get_x_coord();
  fs[0] = &neg;
  fs[1] = inc;
  fs[2] = hook;
  var total: i32 = 0;
  for (fs) |f| { total += f(@as(i32, x) + 2); }
  out[0] = total;
  out[1] = fs[x](3);
  @activate(@get_local_task_id(10));
}
""", arch)
    # fs = [neg, inc, neg]: total = -(x+2) + (x+3) - (x+2)
    np.testing.assert_array_equal(got[:, :3], [[-1, -3, 25], [-2, 4, 25], [-3, -3, 25]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_call_through_an_undefined_pointer_faults_the_pe(tmp_path, arch):
    prog = out_program(tmp_path, HEAD + UNARY + """
var fp: *const fn(i32) i32 = undefined;
fn main() void {
  if (lay.get_x_coord() == 1) { out[0] = fp(3); }
  fp = &inc;
  out[1] = fp(3);
  sys.unblock_cmd_stream();
}
""", "i32", arch, w=W)
    with pytest.raises(FabricFault) as info:
        run(prog)
    text = str(info.value)
    where = position((tmp_path / "pe.csl").read_text(), "fp(3)")
    assert f"pe.csl:{where[0]}:{where[1]}" in text, text
    assert "undefined *const fn(i32) i32" in text and "PE (1, 0)" in text, text


@pytest.mark.parametrize("arch", ARCHES)
def test_a_pointer_to_a_local_pointer_reads_calls_assigns_and_is_passed(tmp_path, arch):
    # `&fp` of a local is a pointer to its u16 in memory, as `&fp` of a global is; so is
    # `&` of a const pointer and of a parameter (a *const one)
    got = outputs(tmp_path, UNARY + """
fn swap_in(pp: *(*const fn(i32) i32), x: u16) void { if (x == 2) { pp.* = &dbl; } }
fn peek(p: *const (*const fn(i32) i32)) i32 { return p.*(6); }
fn twice(fp: *const fn(i32) i32) i32 { return peek(&fp) * 2; }
fn main() void {
  const x = lay.get_x_coord();
  var fp: *const fn(i32) i32 = &neg;
  const pp = &fp;
  if (x == 1) { pp.* = &inc; }
  const before = pp.*;
  out[0] = fp(4) * 100 + pp.*(10);
  swap_in(pp, x);
  out[1] = fp(7) * 100 + before(7);
  const k: *const fn(i32) i32 = &dbl;
  out[2] = peek(&k) * 100 + twice(&neg);
  out[3] = twice(fp);
  sys.unblock_cmd_stream();
}
""", arch)
    # fp: neg, inc on PE 1; swap_in points PE 2's at dbl after `before` was read
    np.testing.assert_array_equal(got, [[-410, -707, 1188, -12],
                                        [511, 808, 1188, 14],
                                        [-410, 1393, 1188, 24]])


CASTS = """
const Op = *const fn(i32) i32;
const Sink = *const fn(i32) void;
var seen: i32 = 0;
fn keep(v: i32) void { seen = v; }
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_pointer_cast_to_anyopaque_or_another_type_and_back_calls_its_function(
        tmp_path, arch):
    got = outputs(tmp_path, UNARY + CASTS + """
fn main() void {
  const x = lay.get_x_coord();
  var fp: Op = &neg;
  if (x == 1) { fp = &dbl; }
  const p = @ptrcast(*anyopaque, fp);
  var q: *anyopaque = @ptrcast(*anyopaque, &inc);
  if (x == 2) { q = p; }
  const f = @ptrcast(Op, p);
  const g = @ptrcast(Op, q);
  out[0] = f(3) * 100 + g(3);
  const s = @ptrcast(Sink, fp);
  const back = @ptrcast(Op, s);
  out[1] = back(5);
  const k: Sink = &keep;
  const h = @ptrcast(Sink, @ptrcast(*anyopaque, k));
  h(@as(i32, x) + 40);
  out[2] = seen;
  if (@ptrcast(*anyopaque, fp) == q) { out[3] = 1; }
  sys.unblock_cmd_stream();
}
""", arch)
    # fp: neg, dbl on PE 1; q: inc, p (fp) on PE 2
    np.testing.assert_array_equal(got, [[-296, -5, 40, 0], [604, 10, 41, 0],
                                        [-303, -5, 42, 1]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_call_through_a_pointer_cast_to_another_type_faults_the_pe(tmp_path, arch):
    # PE 1 calls neg through a Sink (the SDK leaves that undefined), in use(), compiled
    # before the cast
    prog = out_program(tmp_path, HEAD + UNARY + CASTS + """
var s: Sink = &keep;
fn use(v: i32) void { s(v); }
fn main() void {
  use(2);
  out[0] = seen;
  s = @ptrcast(Sink, @ptrcast(*anyopaque, &neg));
  if (lay.get_x_coord() == 1) { use(3); }
  sys.unblock_cmd_stream();
}
""", "i32", arch, w=W)
    with pytest.raises(FabricFault) as eng:
        run(prog)
    with pytest.raises(FabricFault) as ref:
        Reference(prog).launch("main")
    assert str(eng.value) == str(ref.value)
    text = str(eng.value)
    where = position((tmp_path / "pe.csl").read_text(), "@ptrcast(Sink")
    assert f"pe.csl:{where[0]}:{where[1]} (a call through a *const fn(i32) void made by " \
        "@ptrcast: its value names no function of that type" in text, text
    assert eng.value.pes == [(1, 0)], text


@pytest.mark.parametrize("first, second", [("a", "b"), ("b", "a")])
def test_a_function_is_numbered_by_its_declaration_not_by_compile_order(
        tmp_path, first, second):
    # globals are made where first used: `first` is made (and its function numbered) first
    prog = out_program(tmp_path, HEAD + """
var a: *const fn(i32) i32 = &late;
var b: *const fn(i32) i32 = &early;
fn early(v: i32) i32 { return v; }
fn late(v: i32) i32 { return -v; }
fn main() void {
  out[0] = FIRST(1);
  out[1] = SECOND(1);
  sys.unblock_cmd_stream();
}
""".replace("FIRST", first).replace("SECOND", second), "i32", "wse2", w=1)
    pe = prog.classes[0]
    # the declarations of the program before `early`: the 3 of OUT_HEAD, out, out_ptr, a, b
    assert pe.symbol("b").init == (8,) and pe.symbol("a").init == (9,)


BAD = UNARY + """
fn two(a: i32, b: i32) i32 { return a + b; }
fn gen(comptime n: i32, v: i32) i32 { return v + n; }
var fp: *const fn(i32) i32 = &neg;
"""


@pytest.mark.parametrize("body, where, message", [
    ("fn main() void { out[0] = fp(1, 2); }", "fp(1, 2)",
     "a call through *const fn(i32) i32 takes 1 argument(s), got 2"),
    ("fn main() void { const b = lay.get_x_coord() > 0; out[0] = fp(b); }", "b);",
     "argument 1 of a call through *const fn(i32) i32: expected i32, got bool"),
    ("fn main() void { fp = &two; }", "fp = &two",
     "'fp': expected *const fn(i32) i32, got the function 'two' of type fn(i32, i32) i32"),
    ("var g: *const fn(i32, i32) i32 = &two;\nfn main() void { fp = g; }", "fp = g",
     "'fp': expected *const fn(i32) i32, got a runtime function pointer "
     "(*const fn(i32, i32) i32)"),
    ("fn main() void { var q: *const fn(i32) void = neg; q(1); }", "var q",
     "'q': expected *const fn(i32) void, got the function 'neg' of type fn(i32) i32"),
    ("fn main() void { fp = &gen; }", "fp = &gen",
     "'gen' has comptime or anytype parameters: it is generic"),
    ("fn main() void { if (fp < &neg) { out[0] = 1; } }", "< &neg",
     "operator '<' cannot take function pointers (only == and !=)"),
    ("fn f(v: i32) i32 { return fp(v - 1); }\nfn main() void { fp = &f; out[0] = fp(3); }",
     "fp(v - 1)", "recursive call through a *const fn(i32) i32"),
    ("fn f(v: i32) i32 { return fp(v); }\nfn main() void { out[0] = f(3); fp = &f; }",
     "fp(v)", "recursive call through a *const fn(i32) i32"),
    ("fn main() void { out[0] = @as(i32, @bitcast(u16, fp)); }", "@bitcast(u16",
     "@bitcast(u16, ...) of a runtime function pointer (*const fn(i32) i32): @bitcast takes "
     "a numeric value (a bool, integer or float), and a function pointer is not one (the CSL "
     "compiler rejects this too)"),
    ("fn main() void { out[0] = @as(i32, @bitcast(u16, &neg)); }", "@bitcast(u16",
     "@bitcast(u16, ...) of the function 'neg': @bitcast takes a numeric value"),
    ("fn main() void { const n: u16 = 9; fp = @bitcast(*const fn(i32) i32, n); }",
     "@bitcast(*const", "@bitcast to *const fn(i32) i32: wsejax holds a function pointer as "
     "the number of the function it names, not as a code address, so no integer becomes "
     "one"),
    ("fn main() void { const p = @ptrcast(*i32, fp); out[0] = p.*; }", "@ptrcast(*i32",
     "@ptrcast of a runtime function pointer (*const fn(i32) i32) to *i32: wsejax holds a "
     "function pointer as the number of its function, not as an address in PE memory, so a "
     "*i32 made from it would point at no data; @ptrcast it to *anyopaque"),
    ("var v: i32 = 0;\nfn main() void { fp = @ptrcast(*const fn(i32) i32, &v); }",
     "@ptrcast(*const", "@ptrcast of a pointer to 'v' to *const fn(i32) i32: it points at "
     "data, not at a function"),
    ("comptime { const p = @ptrcast(*anyopaque, &neg); }", "@ptrcast(*any",
     "@ptrcast to *anyopaque happens at run time: it belongs in a function body"),
], ids=["arity", "argument-type", "function-of-another-type", "pointer-of-another-type",
        "local-of-another-type", "generic-function", "ordering", "recursion",
        "recursion-found-late", "bitcast-of-a-pointer", "bitcast-of-a-function",
        "bitcast-to-a-pointer", "ptrcast-to-data", "ptrcast-from-data", "ptrcast-at-comptime"])
def test_misuse_is_a_located_error(tmp_path, body, where, message):
    e = compile_error(tmp_path, BAD + body, where)
    assert message in e.message, str(e)
