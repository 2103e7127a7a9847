"""CSL control flow (spec 3.4): labelled jumps out of nested run-time loops, jumps that leave an
unrolled loop, a labelled block or an inline function from inside a run-time condition or loop,
calls in a run-time while condition, loops in @map callbacks, and run-time switches. Each
program runs in check mode (the reference interpreter beside the engine, every symbol and the
clock compared) on both arches, its results checked against values worked out by hand or
with numpy."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, position
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax import CslError, SdkRuntime
from wsejax.errors import FabricFault

ARCHS = ("wse2", "wse3")

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
"""

EXPORTS = """@export_name("inp", [*]{t}, true);
@export_name("out", [*]{t}, true);
@export_name("main", fn()void);"""

TAIL = """
var inp_ptr: [*]{t} = &inp;
var out_ptr: [*]{t} = &out;
comptime {{ @export_symbol(inp_ptr, "inp"); @export_symbol(out_ptr, "out"); @export_symbol(main); }}
"""


def program(tmp_path, body: str, t: str = "i32", arch: str = "wse2"):
    """A 1x1 program of `body` (which declares `inp`, `out` and `main`)."""
    return compile_pe(tmp_path, HEAD + body + TAIL.format(t=t), EXPORTS.format(t=t), w=1, h=1,
                      arch=arch)


class Runner:
    """One runtime in check mode: `out` for a given `inp`, launch after launch."""

    def __init__(self, prog, n_in: int, n_out: int, dtype=np.int32, **kw):
        self.r = SdkRuntime(prog, check=True, **kw)
        self.r.load()
        self.r.run()
        self.n_in, self.n_out, self.dtype = n_in, n_out, dtype

    def __call__(self, inp) -> np.ndarray:
        r = self.r
        src = np.asarray(inp, self.dtype)
        assert src.size == self.n_in
        r.memcpy_h2d(r.get_id("inp"), src.view(np.uint32) if src.itemsize == 4 else src,
                     0, 0, 1, 1, self.n_in, streaming=False)
        r.launch("main", nonblock=False)
        out = np.zeros(self.n_out, self.dtype)
        r.memcpy_d2h(out, r.get_id("out"), 0, 0, 1, 1, self.n_out, streaming=False)
        return out


def error_of(tmp_path, body: str, t: str = "i32") -> CslError:
    with pytest.raises(CslError) as info:
        program(tmp_path, body, t)
    return info.value


# ------------------------------------------------------------------------------------------------
# labelled break / continue out of nested run-time loops


NESTED = """
var inp: [3]i32;
var out: [3]i32;
fn main() void {
  var i: i32 = 0;
  var n: i32 = 0;
  var m: i32 = 0;
  outer: while (i < inp[0]) : (i += 1) {
    for (@range(i32, 10)) |j| {
      if (j == i) continue :outer;
      if (i == inp[1] and j == inp[2]) break :outer;
      n += 1;
    }
    m += 100;
  }
  out[0] = n;
  out[1] = i;
  out[2] = m;
  sys.unblock_cmd_stream();
}
"""


def nested_want(a, b, c):
    n = m = 0
    i = 0
    while i < a:
        broke = cont = False
        for j in range(10):
            if j == i:
                cont = True
                break
            if i == b and j == c:
                broke = True
                break
            n += 1
        if broke:
            break
        if not cont:
            m += 100
        i += 1
    return [n, i, m]


@pytest.mark.parametrize("arch", ARCHS)
def test_labelled_break_and_continue_leave_nested_runtime_loops(tmp_path, arch):
    run = Runner(program(tmp_path, NESTED, arch=arch), 3, 3)
    assert run([6, 5, 2]).tolist() == nested_want(6, 5, 2) == [12, 5, 0]
    assert run([14, 99, 0]).tolist() == nested_want(14, 99, 0)
    assert run([3, 1, 0]).tolist() == nested_want(3, 1, 0) == [0, 1, 0]


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(a=st.integers(-2, 13), b=st.integers(-1, 12), c=st.integers(-1, 10))
def test_labelled_jumps_out_of_nested_loops_match_python(tmp_path_factory, a, b, c):
    run = _cached_runner(tmp_path_factory, "nested", NESTED, 3, 3)
    assert run([a, b, c]).tolist() == nested_want(a, b, c)


_RUNNERS: dict = {}


def _cached_runner(tmp_path_factory, key, body, n_in, n_out, t="i32", dtype=np.int32):
    if key not in _RUNNERS:
        _RUNNERS[key] = Runner(program(tmp_path_factory.mktemp(key), body, t), n_in, n_out,
                               dtype)
    return _RUNNERS[key]


@pytest.mark.parametrize("arch", ARCHS)
def test_a_labelled_break_passes_through_three_runtime_loops(tmp_path, arch):
    src = """
var inp: [1]i32;
var out: [2]i32;
fn main() void {
  var count: i32 = 0;
  var i: i32 = 0;
  top: while (i < 4) : (i += 1) {
    for (@range(i32, 3)) |j| {
      var k: i32 = 0;
      while (k < 5) : (k += 1) {
        if (i * 100 + j * 10 + k == inp[0]) break :top;
        count += 1;
      }
    }
  }
  out[0] = count;
  out[1] = i;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 1, 2)
    # 15 inner steps per i; the break at i=2, j=1, k=3 comes after 2*15 + 5 + 3 steps
    assert run([213]).tolist() == [38, 2]
    assert run([999]).tolist() == [60, 4]


@pytest.mark.parametrize("arch", ARCHS)
def test_a_break_out_of_an_inline_loop_into_the_enclosing_runtime_loop(tmp_path, arch):
    src = """
var inp: [4]i32;
var out: [2]i32;
fn main() void {
  var s: i32 = 0;
  var i: i32 = 0;
  outer: while (i < 5) : (i += 1) {
    inline for (@range(i32, 4)) |k| {
      if (inp[k] == i) continue :outer;
      if (inp[k] < 0) break :outer;
      s += inp[k];
    }
    s += 1000;
  }
  out[0] = s;
  out[1] = i;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 4, 2)

    def want(v):
        s, i = 0, 0
        while i < 5:
            left = None
            for k in range(4):
                if v[k] == i:
                    left = "continue"
                    break
                if v[k] < 0:
                    left = "break"
                    break
                s += v[k]
            if left == "break":
                break
            if left is None:
                s += 1000
            i += 1
        return [s, i]

    for v in ([7, 8, 9, 10], [7, 2, 9, 10], [7, 8, -1, 3], [0, 1, 2, 3]):
        assert run(v).tolist() == want(v), v


# ------------------------------------------------------------------------------------------------
# leaving an inline loop, a labelled block or an inline function at run time


@pytest.mark.parametrize("arch", ARCHS)
def test_an_inline_function_returns_from_under_a_runtime_condition(tmp_path, arch):
    src = """
var inp: [2]i32;
var out: [3]i32;
inline fn clamp(x: i32, hi: i32) i32 {
  if (x < 0) return 0;
  if (x > hi) { return hi; }
  return x;
}
inline fn sign(x: i32) i32 {
  if (x < 0) { return -1; } else if (x > 0) { return 1; } else { return 0; }
}
fn main() void {
  out[0] = clamp(inp[0], inp[1]);
  out[1] = clamp(inp[0] * 2, 10) + sign(inp[1]);
  out[2] = sign(inp[0] - inp[1]);
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 2, 3)

    def want(a, b):
        def clamp(x, hi):
            return 0 if x < 0 else hi if x > hi else x
        return [clamp(a, b), clamp(2 * a, 10) + int(np.sign(b)), int(np.sign(a - b))]

    for a, b in ((5, 3), (-4, 3), (2, 9), (7, -7), (0, 0)):
        assert run([a, b]).tolist() == want(a, b), (a, b)


@pytest.mark.parametrize("arch", ARCHS)
def test_an_inline_function_returns_from_inside_a_runtime_loop(tmp_path, arch):
    src = """
var inp: [6]i32;
var out: [2]i32;
inline fn find(x: i32) i32 {
  for (@range(i32, 6)) |k| {
    if (inp[k] == x) return k;
  }
  return -1;
}
fn main() void {
  out[0] = find(inp[0] + 1);
  out[1] = find(42);
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 6, 2)
    assert run([3, 9, 4, 42, 4, 42]).tolist() == [2, 3]
    assert run([0, 1, 1, 2, 3, 5]).tolist() == [1, -1]


@pytest.mark.parametrize("arch", ARCHS)
def test_a_labelled_block_breaks_with_a_runtime_value_under_a_condition(tmp_path, arch):
    src = """
var inp: [2]i32;
var out: [3]i32;
fn main() void {
  const a = inp[0];
  const b = inp[1];
  const x: i32 = blk: {
    if (a > b) break :blk a - b;
    if (a == b) { break :blk 100; }
    break :blk b - a + 1000;
  };
  // peer type of the values: an i16 and an i32 give an i32
  const small: i16 = 7;
  const y = pick: {
    if (a < 0) break :pick small;
    break :pick a;
  };
  var n: i32 = 0;
  search: {
    for (@range(i32, 20)) |k| {
      if (k * k > a) { n = k; break :search; }
    }
    n = -1;
  }
  out[0] = x;
  out[1] = y;
  out[2] = n;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 2, 3)

    def want(a, b):
        x = a - b if a > b else 100 if a == b else b - a + 1000
        n = next((k for k in range(20) if k * k > a), -1)
        return [x, 7 if a < 0 else a, n]

    for a, b in ((9, 2), (3, 3), (-5, 4), (500, 0)):
        assert run([a, b]).tolist() == want(a, b), (a, b)


@pytest.mark.parametrize("arch", ARCHS)
def test_break_and_continue_of_an_inline_loop_under_a_runtime_condition(tmp_path, arch):
    src = """
var inp: [5]i32;
var out: [3]i32;
fn main() void {
  var s: i32 = 0;
  var t: i32 = 0;
  inline for (@range(i32, 5)) |k| {
    if (inp[k] < 0) break;
    if (inp[k] % 2 == 1) continue;
    s += inp[k];
  }
  comptime var k = 0;
  inline while (k < 5) : (k += 1) {
    if (inp[k] == 0) { continue; }
    t = t * 10 + inp[k];
  }
  out[0] = s;
  out[1] = t;
  out[2] = 1;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 5, 3)

    def want(v):
        s = 0
        for x in v:
            if x < 0:
                break
            if x % 2 == 1:
                continue
            s += x
        t = 0
        for x in v:
            if x != 0:
                t = t * 10 + x
        return [s, t, 1]

    for v in ([2, 3, 4, 5, 6], [2, 4, -1, 8, 8], [1, 0, 2, 0, 3], [-2, 6, 6, 6, 6]):
        assert run(v).tolist() == want(v), v


def test_a_value_block_with_a_path_that_falls_off_its_end_is_refused(tmp_path):
    src = """
var inp: [1]i32;
var out: [1]i32;
fn main() void {
  const x: i32 = blk: {
    if (inp[0] > 0) break :blk 1;
    out[0] = 2;
  };
  out[0] = x;
  sys.unblock_cmd_stream();
}
"""
    e = error_of(tmp_path, src)
    assert "block 'blk' ends without `break :blk value`" in str(e)
    assert (e.line, e.col) == position(HEAD + src, "blk: {")


def test_continue_naming_a_block_is_refused(tmp_path):
    src = """
var inp: [1]i32;
var out: [1]i32;
fn main() void {
  blk: {
    for (@range(i32, 3)) |k| { if (inp[0] == k) continue :blk; }
  }
  sys.unblock_cmd_stream();
}
"""
    e = error_of(tmp_path, src)
    assert "continue :blk names a block, not a loop" in str(e)
    assert (e.line, e.col) == position(HEAD + src, "continue :blk")


# ------------------------------------------------------------------------------------------------
# calls in a run-time while condition


@pytest.mark.parametrize("arch", ARCHS)
def test_a_call_in_a_while_condition_runs_before_every_test(tmp_path, arch):
    src = """
var inp: [1]i32;
var out: [3]i32;
var calls: i32 = 0;
fn below(i: i32) bool {
  calls += 1;
  return i * i < inp[0];
}
fn main() void {
  calls = 0;
  var i: i32 = 0;
  var skipped: i32 = 0;
  while (below(i)) : (i += 1) {
    if (i % 3 == 0) { skipped += 1; continue; }
  }
  out[0] = i;
  out[1] = calls;
  out[2] = skipped;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 1, 3)
    for a in (0, 1, 10, 50):
        n = next(k for k in range(100) if k * k >= a)
        assert run([a]).tolist() == [n, n + 1, len(range(0, n, 3))], a


# ------------------------------------------------------------------------------------------------
# loops in @map callbacks


MAP_LOOPS = """
var inp: [8]i32;
var out: [16]i32;
const xs = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{8} -> inp[i] });
const steps_out = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{8} -> out[i] });
const first_out = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{8} -> out[i + 8] });
// the Collatz steps from x down to 1 (at most 60)
fn steps(x: i32) i32 {
  var n: i32 = 0;
  var v = x;
  while (v > 1 and n < 60) : (n += 1) {
    if (v % 2 == 0) { v = v / 2; } else { v = 3 * v + 1; }
  }
  return n;
}
// the first k in 1..x whose square passes x, or -1: a return from inside a loop
fn first_square_above(x: i32, lo: i32) i32 {
  var k: i32 = lo;
  while (k <= x) {
    if (k * k > x) return k;
    k += 1;
  }
  return -1;
}
fn main() void {
  @map(steps, xs, steps_out);
  @map(first_square_above, xs, 1, first_out);
  sys.unblock_cmd_stream();
}
"""


def collatz(x):
    n, v = 0, x
    while v > 1 and n < 60:
        v = v // 2 if v % 2 == 0 else 3 * v + 1
        n += 1
    return n


def first_square_above(x):
    return next((k for k in range(1, x + 1) if k * k > x), -1)


@pytest.mark.parametrize("arch", ARCHS)
def test_while_loops_in_map_callbacks_run_per_element(tmp_path, arch):
    run = Runner(program(tmp_path, MAP_LOOPS, arch=arch), 8, 16)
    v = [1, 2, 3, 6, 7, 27, 0, 100]
    want = [collatz(x) for x in v] + [first_square_above(x) for x in v]
    assert run(v).tolist() == want
    assert want[:8] == [0, 1, 7, 8, 16, 60, 0, 25]


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(v=st.lists(st.integers(-5, 200), min_size=8, max_size=8))
def test_map_callback_loops_match_python(tmp_path_factory, v):
    run = _cached_runner(tmp_path_factory, "map_loops", MAP_LOOPS, 8, 16)
    want = [collatz(x) for x in v] + [first_square_above(x) for x in v]
    assert run(v).tolist() == want


@pytest.mark.parametrize("arch", ARCHS)
def test_an_endless_loop_in_a_map_callback_faults_past_the_loop_budget(tmp_path, arch):
    src = """
var inp: [4]i32;
var out: [4]i32;
const xs = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> inp[i] });
const ys = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
fn spin(x: i32) i32 {
  var v = x;
  while (v != 0) { v -= 1; }
  return v + 5;
}
fn main() void {
  @map(spin, xs, ys);
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 4, 4, loop_limit=50)
    assert run([3, 0, 49, 7]).tolist() == [5, 5, 5, 5]
    with pytest.raises(FabricFault, match=r"spin: a while loop ran past 50 iterations at PE"):
        run([3, -1, 2, 1])


# ------------------------------------------------------------------------------------------------
# labelled jumps in a body that waits on the fabric


WAITING_PE = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const oq = @get_output_queue(2);
const iq = @get_input_queue(2);
var src = [6]u32 { 5, 9, 3, 0, 7, 7 };
var got: [5]u32;
var got_ptr: [*]u32 = &got;
var cur = @zeros([1]u32);
const src_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> src[i] });
const cur_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> cur[i] });
const rest_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> got[i + 3] });
const out6 = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 6, .output_queue = oq }
                                  else .{ .extent = 6, .fabric_color = c, .output_queue = oq });
const in1 = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 1, .input_queue = iq }
                                else .{ .extent = 1, .fabric_color = c, .input_queue = iq });
const in2 = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 2, .input_queue = iq }
                                else .{ .extent = 2, .fabric_color = c, .input_queue = iq });
fn main() void {
  if (sender) {
    @mov32(out6, src_dsd);
    sys.unblock_cmd_stream();
    return;
  }
  var acc: u32 = 0;
  var n: u32 = 0;
  outer: while (true) {
    @mov32(cur_dsd, in1);
    n += 1;
    for (@range(u16, 3)) |j| {
      if (cur[0] == 0) break :outer;
      if (j == 1) continue :outer;
      acc += cur[0];
    }
    acc += 1000;
  }
  @mov32(rest_dsd, in2);
  got[0] = acc;
  got[1] = n;
  got[2] = 1;
  sys.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) {
    @initialize_queue(oq, .{ .color = c });
    @initialize_queue(iq, .{ .color = c });
  }
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""


@pytest.mark.parametrize("arch", ARCHS)
def test_labelled_jumps_out_of_loops_that_wait_on_the_fabric(tmp_path, arch):
    from csl_harness import read, sender_receiver_layout

    from wsejax.csl import compile_csl

    (tmp_path / "layout.csl").write_text(sender_receiver_layout("u32"))
    (tmp_path / "pe.csl").write_text(WAITING_PE)
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    r.launch("main", nonblock=False)
    # words 5, 9, 3 each add once (the continue at j == 1), the 0 leaves after 4 words
    assert read(r, "got", 5, np.uint32)[0, 1].tolist() == [17, 4, 1, 7, 7]


# ------------------------------------------------------------------------------------------------
# a DSD returned from inside a loop


@pytest.mark.parametrize("arch", ARCHS)
def test_a_dsd_is_returned_from_inside_a_runtime_loop(tmp_path, arch):
    src = """
var inp: [1]i32;
var out: [24]i32;
var a = [12]i32 { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
var b = @zeros([12]i32);
const whole = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{12} -> a[i] });
const other = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{12} -> b[i] });
// the part of `a` from the first element above k (at most 6 long), else all of `b`
fn from_above(k: i32) mem1d_dsd {
  var j: i16 = 0;
  while (j < 12) : (j += 1) {
    if (a[j] > k) return @set_dsd_length(@increment_dsd_offset(whole, j, i32), 6);
  }
  return other;
}
fn tail_of(k: i32) mem1d_dsd {
  for (@range(i16, 8)) |j| {
    if (j == k) return @set_dsd_length(@increment_dsd_offset(whole, j, i32), 12 - j);
  }
  return @set_dsd_length(whole, 2);
}
const dst = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{12} -> out[i] });
const dst2 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{12} -> out[i + 12] });
fn main() void {
  @mov32(dst, other);
  @mov32(dst2, other);
  @mov32(dst, from_above(inp[0]));
  @mov32(dst2, tail_of(inp[0]));
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 1, 24)

    def want(k):
        out = np.zeros(24, np.int64)
        j = next((j for j in range(12) if j > k), None)
        if j is not None:
            n = 6
            out[:n] = np.arange(j, j + n)
        t = np.arange(k, 12) if 0 <= k < 8 else np.arange(2)
        out[12:12 + len(t)] = t
        return out.tolist()

    for k in (3, -4, 5, 20):
        assert run([k]).tolist() == want(k), k


# ------------------------------------------------------------------------------------------------
# only the branch taken runs


@pytest.mark.parametrize("arch", ARCHS)
def test_if_and_switch_expressions_run_only_the_branch_taken(tmp_path, arch):
    src = """
var inp: [1]i32;
var out: [4]i32;
var calls: i32 = 0;
fn note(v: i32) i32 { calls += 1; return v; }
fn main() void {
  calls = 0;
  const k = inp[0];
  const a = if (k > 0) note(k * 10) else note(-1);
  out[0] = calls;
  const b = switch (k) { 1 => note(100), 2, 3 => note(200) + note(1), else => 7 };
  out[1] = calls;
  out[2] = a;
  out[3] = b;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 1, 4)
    assert run([1]).tolist() == [1, 2, 10, 100]
    assert run([3]).tolist() == [1, 3, 30, 201]
    assert run([-4]).tolist() == [1, 1, -1, 7]


@pytest.mark.parametrize("arch", ARCHS)
def test_a_switch_statement_of_void_calls_runs_the_prong_taken(tmp_path, arch):
    src = """
var inp: [1]i32;
var out: [3]i32;
fn put(i: u16, v: i32) void { out[i] += v; }
fn main() void {
  out[0] = 0; out[1] = 0; out[2] = 0;
  switch (inp[0]) {
    1 => put(0, 5),
    2, 3 => put(1, inp[0]),
  }
  switch (inp[0] + 1) {
    2 => put(2, 7),
    else => put(2, -1),
  }
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 1, 3)
    assert run([1]).tolist() == [5, 0, 7]
    assert run([3]).tolist() == [0, 3, -1]
    assert run([9]).tolist() == [0, 0, -1]


# ------------------------------------------------------------------------------------------------
# the result type of a run-time if or switch: the declared, target, parameter or return type


@pytest.mark.parametrize("arch", ARCHS)
def test_if_and_switch_expressions_give_pointers_of_the_type_they_are_used_as(tmp_path, arch):
    src = """
var inp: [1]i32;
var out: [9]i32;
const In = struct { v: i32, w: i32 };
var x = In { .v = 1, .w = 2 };
var y = In { .v = 3, .w = 4 };
var a = [3]i32 { 10, 20, 30 };
var b = [3]i32 { 40, 50, 60 };
var s: i32 = 7;
var t: i32 = 8;
var p: *i32 = &s;
fn pick(c: bool) *i32 { return if (c) &s else &t; }
fn choose(k: i32) [*]i32 { return switch (k) { 0 => &a, else => &b }; }
fn first(q: [*]i32) i32 { return q[0]; }
fn second(e: *In) i32 { return e.*.w; }
fn main() void {
  const k = inp[0];
  const e: *In = if (k == 1) &x else &y;
  out[0] = e.*.v;
  var m: [*]i32 = if (k > 1) &a else &b;
  out[1] = m[2];
  p = if (k > 2) &s else &t;
  p.* += 100;
  out[2] = s;
  out[3] = t;
  out[4] = pick(k == 0).*;
  out[5] = choose(k)[1];
  out[6] = first(if (k == 2) &a else &b);
  out[7] = second(switch (k) { 1 => &x, else => &y });
  const z: *const i32 = switch (k) { 0 => &s, 1 => &t, else => &a[2] };
  out[8] = z.*;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 1, 9)
    mem = {"s": 7, "t": 8}
    a, b, x, y = [10, 20, 30], [40, 50, 60], (1, 2), (3, 4)

    def want(k):
        mem["s" if k > 2 else "t"] += 100
        return [(x if k == 1 else y)[0], (a if k > 1 else b)[2], mem["s"], mem["t"],
                mem["s" if k == 0 else "t"], (a if k == 0 else b)[1],
                (a if k == 2 else b)[0], (x if k == 1 else y)[1],
                mem["s"] if k == 0 else mem["t"] if k == 1 else a[2]]

    for k in (0, 1, 2, 3, 1):
        assert run([k]).tolist() == want(k), k


@pytest.mark.parametrize("arch", ARCHS)
def test_if_and_switch_expressions_of_untyped_branches_take_a_target_or_parameter_type(
        tmp_path, arch):
    src = """
var inp: [1]i32;
var out: [8]i32;
const P = struct { v: i32, w: i32 };
const E = enum(u8) { lo, mid, hi };
var g: P = .{ .v = 0, .w = 0 };
var ge: E = .lo;
var f: f32 = 0.0;
fn twice(z: f32) f32 { return z * 2.0; }
fn sum(q: P) i32 { return q.v + q.w; }
fn code(c: E) i32 { return @as(i32, @as(u8, c)); }
fn pick(k: i32) E { return switch (k) { 0 => .hi, else => .mid }; }
fn main() void {
  const k = inp[0];
  out[0] = @as(i32, twice(if (k > 0) 1.5 else 2.5));
  f = switch (k) { 0 => 0.25, 1 => 0.5, else => 0.75 };
  out[1] = @as(i32, f * 8.0);
  g = if (k == 1) .{ .v = 5, .w = 6 } else .{ .v = 7, .w = 8 };
  out[2] = g.v * 10 + g.w;
  out[3] = sum(if (k == 2) .{ .v = 1, .w = 2 } else .{ .v = 3, .w = 4 });
  ge = switch (k) { 0 => .mid, else => .hi };
  out[4] = code(ge);
  out[5] = code(if (k == 1) .lo else .hi);
  out[6] = code(pick(k));
  var l: P = .{ .v = 0, .w = 0 };
  l = switch (k) { 0 => .{ .v = 9, .w = 9 }, else => .{ .v = k, .w = -k } };
  out[7] = l.v + 2 * l.w;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 1, 8)

    def want(k):
        g = (5, 6) if k == 1 else (7, 8)
        l_ = (9, 9) if k == 0 else (k, -k)
        return [int((1.5 if k > 0 else 2.5) * 2), int({0: 0.25, 1: 0.5}.get(k, 0.75) * 8),
                g[0] * 10 + g[1], 3 if k == 2 else 7, 1 if k == 0 else 2, 0 if k == 1 else 2,
                2 if k == 0 else 1, l_[0] + 2 * l_[1]]

    for k in (0, 1, 2, -3):
        assert run([k]).tolist() == want(k), k


def test_pointer_branches_of_different_types_are_located(tmp_path):
    body = """
var inp: [1]i32;
var out: [1]i32;
var s: i32 = 1;
var f: f32 = 2.0;
fn main() void {
  const q = if (inp[0] > 0) &s else &f;
  out[0] = 0;
}
"""
    err = error_of(tmp_path, body)
    assert "the branches give pointers of different types, *i32 and *f32" in str(err)
    assert (err.line, err.col) == position(HEAD + body, "if (inp[0] > 0)")


# ------------------------------------------------------------------------------------------------
# labelled blocks whose value is a struct, an enum or a pointer known only at run time


@pytest.mark.parametrize("arch", ARCHS)
def test_labelled_blocks_give_structs_enums_and_pointers_known_at_run_time(tmp_path, arch):
    src = """
var inp: [1]i32;
var out: [7]i32;
const P = struct { a: i32, b: i32 };
const E = enum(u8) { lo = 3, mid = 5, hi = 9 };
var s: i32 = 11;
var t: i32 = 22;
fn make(k: i32) P {
  const v: P = blk: {
    if (k == 1) { break :blk .{ .a = 1, .b = 2 }; }
    if (k > 5) { break :blk P { .a = k, .b = -k }; }
    break :blk .{ .a = 3, .b = 4 };
  };
  return v;
}
fn main() void {
  const k = inp[0];
  const p = make(k);
  out[0] = p.a;
  out[1] = p.b;
  const e: E = tag: {
    if (k < 0) { break :tag .lo; }
    if (k == 1) { break :tag .mid; }
    break :tag .hi;
  };
  out[2] = @as(i32, @as(u8, e));
  // untyped: the peer type of the pointers the block breaks with
  const q = ptr: {
    if (k == 1) { break :ptr &s; }
    break :ptr &t;
  };
  q.* += 1;
  out[3] = s;
  out[4] = t;
  // a block left from inside a run-time loop
  const found: P = search: {
    var i: i32 = 0;
    while (i < 4) : (i += 1) {
      if (i * i >= k) { break :search .{ .a = i, .b = i * i }; }
    }
    break :search .{ .a = -1, .b = -1 };
  };
  out[5] = found.a;
  out[6] = found.b;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 1, 7)
    assert run([1]).tolist() == [1, 2, 5, 12, 22, 1, 1]
    assert run([7]).tolist() == [7, -7, 9, 12, 23, 3, 9]
    assert run([-2]).tolist() == [3, 4, 3, 12, 24, 0, 0]
    assert run([20]).tolist() == [20, -20, 9, 12, 25, -1, -1]


def test_a_block_that_breaks_with_pointers_of_two_types_is_located(tmp_path):
    src = """
var inp: [1]i32;
var out: [1]i32;
var s: i32 = 1;
var f: f32 = 2.0;
fn main() void {
  const q = ptr: {
    if (inp[0] == 1) { break :ptr &s; }
    break :ptr &f;
  };
  out[0] = 0;
  _ = q;
  sys.unblock_cmd_stream();
}
"""
    with pytest.raises(CslError) as err:
        program(tmp_path, src)
    assert "the branches give pointers of different types, *i32 and *f32" in str(err.value)
    assert "pe.csl:" in str(err.value)
