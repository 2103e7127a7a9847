"""Runtime recursion: functions that call themselves, directly or through others (`fact`,
`fib` with two call sites, mutual recursion, a divide-and-conquer sum through a pointer, enum
results and function pointer parameters), with loops around and inside them and results that
feed an `if`. Each program runs on the engine (a call cycle is a per-PE state machine with a
call stack) and on the reference (which recurses natively) on both arches, and its results
are checked by hand or numpy. A PE whose recursion goes deeper than `MAX_RECURSION_DEPTH`
faults, naming the function; what a recursive function may not hold is a located CslError
that says why."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import launched, out_program, out_row, position, run

from wsejax import CslError, FabricFault
from wsejax.ir_calls import MAX_RECURSION_DEPTH
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]
W = 3          # PEs in the row; each runs `main` with its own x

HEAD = """
var out: [4]i32;
var out_ptr: [*]i32 = &out;
"""


def outputs(tmp_path, body: str, arch: str) -> np.ndarray:
    """`out` of each PE after `main`, `[W, 4]`, checked equal on the engine and the
    reference; in check mode, every symbol and the clock of every PE agree too."""
    prog = out_program(tmp_path, HEAD + body, "i32", arch, w=W)
    eng, ref = out_row(prog, 4, np.int32, w=W)
    np.testing.assert_array_equal(eng, ref)
    launched(prog, check=True)
    return eng


def compile_error(tmp_path, body: str, where: str) -> str:
    """The message of the CslError of a program, checked to point at the first `where` of
    pe.csl."""
    with pytest.raises(CslError) as info:
        out_program(tmp_path, HEAD + body, "i32", "wse2", w=W)
    e = info.value
    assert e.file.endswith("pe.csl"), str(e)
    assert (e.line, e.col) == position((tmp_path / "pe.csl").read_text(), where), str(e)
    return str(e)


def fact(n: int) -> int:
    return 1 if n <= 1 else n * fact(n - 1)


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@pytest.mark.parametrize("arch", ARCHES)
def test_factorial_and_fibonacci_of_a_per_pe_argument(tmp_path, arch):
    got = outputs(tmp_path, """
fn fact(n: i32) i32 { if (n <= 1) { return 1; } return n * fact(n - 1); }
fn fib(n: i32) i32 { if (n < 2) { return n; } return fib(n - 1) + fib(n - 2); }
fn main() void {
  const x: i32 = @as(i32, lay.get_x_coord());
  out[0] = fact(x + 3);
  out[1] = fib(2 * x + 5);
  out[2] = fact(x) + fib(x);
  out[3] = fib(0);
  sys.unblock_cmd_stream();
}
""", arch)
    want = [[fact(x + 3), fib(2 * x + 5), fact(x) + fib(x), 0] for x in range(W)]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("arch", ARCHES)
def test_mutual_recursion(tmp_path, arch):
    # is_even and is_odd call each other; count_down is void and recurses through a helper
    got = outputs(tmp_path, """
var ticks: i32 = 0;
fn is_even(n: u32) bool { if (n == 0) { return true; } return is_odd(n - 1); }
fn is_odd(n: u32) bool { if (n == 0) { return false; } return is_even(n - 1); }
fn count_down(n: i32) void { if (n > 0) { step(n); } }
fn step(n: i32) void { ticks += n; count_down(n - 1); }
fn main() void {
  const x: u32 = @as(u32, lay.get_x_coord());
  out[0] = if (is_even(x + 4)) 1 else 0;
  out[1] = if (is_odd(3 * x + 1)) 1 else 0;
  count_down(@as(i32, x) + 2);
  out[2] = ticks;
  out[3] = if (is_even(0) and !is_odd(0)) 1 else 0;
  sys.unblock_cmd_stream();
}
""", arch)
    want = [[int((x + 4) % 2 == 0), int((3 * x + 1) % 2 == 1), sum(range(1, x + 3)), 1]
            for x in range(W)]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_divide_and_conquer_sum_through_a_pointer_and_a_range(tmp_path, arch):
    # sum(p, lo, hi) halves its range; p is a pointer known at run time (PE 2 sums `more`)
    got = outputs(tmp_path, """
var data = @zeros([10]i32);
var more = @zeros([10]i32);
fn sum(p: [*]i32, lo: i16, hi: i16) i32 {
  if (hi - lo == 0) { return 0; }
  if (hi - lo == 1) { return p[lo]; }
  const mid = lo + (hi - lo) / 2;
  const left = sum(p, lo, mid);
  return left + sum(p, mid, hi);
}
fn main() void {
  const x: i32 = @as(i32, lay.get_x_coord());
  for (@range(i16, 10)) |i| { data[i] = (@as(i32, i) + 1) * (x + 1); more[i] = -@as(i32, i); }
  var p: [*]i32 = &data;
  if (x == 2) { p = &more; }
  out[0] = sum(p, 0, 10);
  out[1] = sum(p, 3, 7);
  out[2] = sum(&data, 0, @as(i16, x) + 1);
  out[3] = sum(p, 5, 5);
  sys.unblock_cmd_stream();
}
""", arch)
    want = []
    for x in range(W):
        data = (np.arange(10) + 1) * (x + 1)
        p = -np.arange(10) if x == 2 else data
        want.append([p.sum(), p[3:7].sum(), data[:x + 1].sum(), 0])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("arch", ARCHES)
def test_recursion_inside_a_loop_and_loops_inside_a_recursive_function(tmp_path, arch):
    # main calls fact in a loop; tri runs a while loop before it recurses; walk recurses in
    # a for loop of its own (with break and continue) and counts its calls
    got = outputs(tmp_path, """
var calls: i32 = 0;
fn fact(n: i32) i32 { if (n <= 1) { return 1; } return n * fact(n - 1); }
fn tri(n: i32) i32 {
  var s: i32 = 0;
  var i: i32 = 0;
  while (i <= n) : (i += 1) { s += i; }
  if (n == 0) { return s; }
  return s + tri(n - 1);
}
fn walk(n: i32) i32 {
  calls += 1;
  var t: i32 = 1;
  for (@range(i32, 5)) |k| {
    if (k == 1) { continue; }
    if (k == 4) { break; }
    if (n > 0) { t += walk(n - 1) * (k + 1); }
  }
  return t;
}
fn main() void {
  const x: i32 = @as(i32, lay.get_x_coord());
  var acc: i32 = 0;
  for (@range(i32, 6)) |i| { acc += fact(i + x); }
  out[0] = acc;
  out[1] = tri(x + 4);
  out[2] = walk(x + 1);
  out[3] = calls;
  sys.unblock_cmd_stream();
}
""", arch)

    def tri(n):
        return sum(range(n + 1)) + (tri(n - 1) if n else 0)

    def walk(n):
        calls[0] += 1
        t = 1
        for k in (0, 2, 3):
            if n > 0:
                t += walk(n - 1) * (k + 1)
        return t

    want = []
    for x in range(W):
        calls = [0]
        w = walk(x + 1)
        want.append([sum(fact(i + x) for i in range(6)), tri(x + 4), w, calls[0]])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_recursive_result_feeds_an_if(tmp_path, arch):
    # steps(n) counts Collatz steps; pick(n) branches on what its own recursion returned
    got = outputs(tmp_path, """
fn steps(n: u32) i32 {
  if (n == 1) { return 0; }
  if (n % 2 == 0) { return 1 + steps(n / 2); }
  return 1 + steps(3 * n + 1);
}
fn pick(n: i32) i32 {
  if (n == 0) { return 1; }
  if (pick(n - 1) > 4) { return n; }
  return pick(n - 1) * 2 + n;
}
fn main() void {
  const x: u32 = @as(u32, lay.get_x_coord());
  out[0] = steps(x + 6);
  if (steps(x + 2) > 3) { out[1] = 10; } else { out[1] = 20; }
  out[2] = pick(@as(i32, x) + 3);
  out[3] = if (pick(@as(i32, x)) >= 3) 5 else 6;
  sys.unblock_cmd_stream();
}
""", arch)

    def steps(n):
        return 0 if n == 1 else 1 + steps(n // 2 if n % 2 == 0 else 3 * n + 1)

    def pick(n):
        if n == 0:
            return 1
        if pick(n - 1) > 4:
            return n
        return pick(n - 1) * 2 + n

    want = [[steps(x + 6), 10 if steps(x + 2) > 3 else 20, pick(x + 3),
             5 if pick(x) >= 3 else 6] for x in range(W)]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("arch", ARCHES)
def test_enum_results_and_function_pointer_parameters(tmp_path, arch):
    # sign_after returns an enum; apply passes on the function pointer it was given
    got = outputs(tmp_path, """
const Sign = enum(u8) { neg, zero, pos };
fn inc(v: i32) i32 { return v + 1; }
fn dbl(v: i32) i32 { return 2 * v; }
fn sign_after(n: i32, k: i32) Sign {
  if (k == 0) {
    if (n < 0) { return Sign.neg; }
    if (n == 0) { return Sign.zero; }
    return Sign.pos;
  }
  return sign_after(n - 1, k - 1);
}
fn apply(f: *const fn(i32) i32, n: i32, v: i32) i32 {
  if (n == 0) { return v; }
  return apply(f, n - 1, f(v));
}
fn main() void {
  const x: i32 = @as(i32, lay.get_x_coord());
  const s = sign_after(1, x);
  out[0] = if (s == Sign.neg) -1 else if (s == Sign.zero) 0 else 1;
  var fp: *const fn(i32) i32 = &inc;
  if (x == 1) { fp = &dbl; }
  out[1] = apply(fp, 3, x + 1);
  sys.unblock_cmd_stream();
}
""", arch)
    np.testing.assert_array_equal(got, [[1, 4, 0, 0], [0, 16, 0, 0], [-1, 6, 0, 0]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_pe_that_recurses_too_deep_faults_and_its_neighbours_do_not(tmp_path, arch):
    # PE 1 asks for MAX_RECURSION_DEPTH + 1 activations of down; its neighbours for the most
    # a PE may hold, which they run to the end
    prog = out_program(tmp_path, HEAD + f"""
fn down(n: i32) i32 {{ if (n <= 1) {{ return 1; }} return 1 + down(n - 1); }}
fn main() void {{
  const x = lay.get_x_coord();
  out[0] = down(if (x == 1) {MAX_RECURSION_DEPTH + 1} else {MAX_RECURSION_DEPTH});
  sys.unblock_cmd_stream();
}}
""", "i32", arch, w=W)
    with pytest.raises(FabricFault) as eng:
        run(prog)
    ref = Reference(prog)
    with pytest.raises(FabricFault) as want:
        ref.launch("main")
    assert str(eng.value) == str(want.value)
    text = str(eng.value)
    assert f"down: recursion deeper than {MAX_RECURSION_DEPTH} calls" in text, text
    assert "PE (1, 0)" in text, text
    assert eng.value.pes == [(1, 0)], text
    for x in (0, 2):
        assert int(np.asarray(ref.memory(x, 0)["out"]).reshape(-1)[0]) == MAX_RECURSION_DEPTH


@pytest.mark.parametrize("body, where, what", [
    ("fn f(n: i32) i32 { var a = @zeros([4]i32); a[0] = n; if (n == 0) { return 0; }\n"
     "  return f(n - 1) + a[0]; }", "var a", "array local 'a' in recursive function 'f'"),
    ("fn f(n: i32) i32 { var v: i32 = n; const p = &v; if (n == 0) { return p.*; }\n"
     "  return f(n - 1); }", "var v", "local 'v', whose address is taken, in recursive "
     "function 'f'"),
    ("const S = struct { a: i32, b: i32 };\n"
     "fn f(n: i32) i32 { var s = S { .a = n, .b = 1 }; if (n == 0) { return s.b; }\n"
     "  return f(n - 1) + s.a; }", "var s", "struct local 's' in recursive function 'f'"),
    ("var buf = @zeros([4]i32);\n"
     "fn f(n: i32) i32 { const d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> buf[i] });\n"
     "  @fadds(d, d, d); if (n == 0) { return 0; } return f(n - 1); }", "const d",
     "DSD local 'd' in recursive function 'f'"),
    ("var buf = @zeros([4]f32);\nconst d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> "
     "buf[i] });\n"
     "fn f(n: i32) i32 { @fadds(d, d, 1.0); if (n == 0) { return 0; } return f(n - 1); }",
     "@fadds", "a DSD operation in recursive function 'f'"),
    ("fn g(n: i32) i32 { if (n == 0) { return 0; } return f(n - 1); }\n"
     "fn f(n: i32) i32 { var a = @zeros([2]i32); a[1] = n; return g(a[1]); }", "var a",
     "array local 'a' in recursive function 'f'"),
])
def test_what_a_recursive_function_may_not_hold_is_a_located_error(tmp_path, body, where, what):
    msg = compile_error(tmp_path, body + "\nfn main() void { out[0] = f(3); "
                        "sys.unblock_cmd_stream(); }", where)
    assert what + " (it calls itself, directly or through others) is not supported" in msg, msg


def test_a_struct_parameter_of_a_recursive_function_is_a_located_error(tmp_path):
    msg = compile_error(tmp_path, """
const S = struct { a: i32, b: i32 };
fn f(s: S, n: i32) i32 { if (n == 0) { return s.a; } return f(s, n - 1); }
fn main() void { out[0] = f(S { .a = 1, .b = 2 }, 3); sys.unblock_cmd_stream(); }
""", "s: S")
    assert "struct parameter 's' in recursive function 'f'" in msg, msg
    assert "pass the struct through a pointer to memory instead" in msg, msg


def test_a_recursive_call_through_a_function_pointer_is_a_located_error(tmp_path):
    # calls through a pointer are expanded over the functions it may name, in place
    msg = compile_error(tmp_path, """
var fp: *const fn(i32) i32 = &down;
fn down(n: i32) i32 { if (n == 0) { return 0; } return fp(n - 1) + 1; }
fn main() void { out[0] = fp(3); sys.unblock_cmd_stream(); }
""", "fp(n - 1)")
    assert "recursive call through a *const fn(i32) i32" in msg, msg
