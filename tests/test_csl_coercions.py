"""CSL coercions and operators (spec 3.2, 3.4, 2.10): implicit widening, peer types, `@as`
to bool, short-circuit `and` / `or`, shifts and bit operators, two's-complement wrap, run-time
switches, globals used before their declaration and the type builtins. Each program runs in
check mode (the reference interpreter beside the engine, every symbol and the clock compared)
on both arches; results are checked against numpy or by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import position
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_csl_control import ARCHS, HEAD, Runner, error_of, program

_RUNNERS: dict = {}


def cached(tmp_path_factory, key, body, n_in, n_out, t="i32", dtype=np.int32):
    if key not in _RUNNERS:
        _RUNNERS[key] = Runner(program(tmp_path_factory.mktemp(key), body, t), n_in, n_out,
                               dtype)
    return _RUNNERS[key]


def wrap(x, dtype):
    """`x` wrapped to integer type `dtype` (two's complement), as a Python int."""
    return int(np.array(x).astype(np.int64).astype(dtype))


# ------------------------------------------------------------------------------------------------
# implicit widening, and peer types in binary operators, if and switch


WIDEN = """
var inp: [2]i32;
var out: [12]i32;
fn take_u32(x: u32) u32 { return x; }
fn main() void {
  const a8: i8 = @as(i8, inp[0]);
  const b8: u8 = @as(u8, inp[1]);
  const a16: i16 = a8;          // i8 -> i16
  const a32: i32 = a16;         // i16 -> i32
  const b16: u16 = b8;          // u8 -> u16
  const b32: u32 = take_u32(b16);   // u16 -> u32 (an argument)
  const s16: i16 = b8;          // u8 -> i16
  const s32: i32 = b16;         // u16 -> i32
  const w32: i32 = a8;          // i8 -> i32
  out[0] = a32;
  out[1] = w32 - 1;
  out[2] = @bitcast(i32, b32 + 1);
  out[3] = s16;
  out[4] = s32;
  // peer types: i8 + i16 is an i16 (no wrap at 8 bits), u8 * u16 a u16, u8 - i16 an i16
  out[5] = a8 + @as(i16, 100);
  out[6] = b8 * @as(u16, 200);
  out[7] = b8 - @as(i16, 300);
  // if and switch results of i8 / i16 / i32 branches take the widest
  const pick = if (a8 < 0) a8 else @as(i16, 1000);
  out[8] = pick;
  const sw = switch (b8) { 0 => a32 * 2, 1, 2 => @as(i16, -2000), else => a8 };
  out[9] = sw;
  // an i16 product wraps at 16 bits, an i32 one at 32
  out[10] = a16 * @as(i16, 300);
  out[11] = a32 * 100000000;
  sys.unblock_cmd_stream();
}
"""


def widen_want(x, y):
    a8 = wrap(x, np.int8)
    b8 = wrap(y, np.uint8)
    sw = a8 * 2 if b8 == 0 else -2000 if b8 in (1, 2) else a8
    return [a8, a8 - 1, b8 + 1, b8, b8, a8 + 100, wrap(b8 * 200, np.uint16), b8 - 300,
            a8 if a8 < 0 else 1000, sw, wrap(a8 * 300, np.int16),
            wrap(a8 * 100000000, np.int32)]


@pytest.mark.parametrize("arch", ARCHS)
def test_integers_widen_within_signedness_and_to_wider_signed_types(tmp_path, arch):
    run = Runner(program(tmp_path, WIDEN, arch=arch), 2, 12)
    for x, y in ((-7, 250), (127, 1), (-128, 0), (300, 2)):
        assert run([x, y]).tolist() == widen_want(x, y), (x, y)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(x=st.integers(-2**31, 2**31 - 1), y=st.integers(-2**31, 2**31 - 1))
def test_widening_and_peer_types_match_numpy(tmp_path_factory, x, y):
    run = cached(tmp_path_factory, "widen", WIDEN, 2, 12)
    assert run([x, y]).tolist() == widen_want(x, y)


@pytest.mark.parametrize("arch", ARCHS)
def test_f16_widens_to_f32_and_as_to_bool_is_not_equal_to_zero(tmp_path, arch):
    src = """
var inp: [4]f32;
var out: [8]f32;
fn twice(x: f32) f32 { return 2.0 * x; }
fn main() void {
  const h: f16 = @as(f16, inp[0]);
  const w: f32 = h;                 // f16 -> f32
  out[0] = w;
  out[1] = twice(h);                // f16 -> f32 (an argument)
  out[2] = h + inp[1];              // peer type f32
  out[3] = @as(f32, @as(i32, @as(bool, inp[2])));   // NaN -> true
  out[4] = @as(f32, @as(i32, @as(bool, inp[3])));   // -0.0 -> false
  out[5] = @as(f32, @as(i32, @as(bool, inp[1])));
  out[6] = @as(f32, @as(i32, @as(bool, @as(i32, inp[1]))));
  out[7] = if (@as(bool, inp[0])) 1.0 else 0.0;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, "f32", arch), 4, 8, np.float32)
    h = np.float16(np.float32(1.0 / 3.0))
    got = run([1.0 / 3.0, 0.25, np.nan, -0.0])
    np.testing.assert_array_equal(got, np.float32([h, 2 * np.float32(h), np.float32(h) + 0.25,
                                                   1, 0, 1, 0, 1]))
    got = run([0.0, -0.0, 0.0, 7.5])
    np.testing.assert_array_equal(got, np.float32([0, 0, 0, 0, 1, 0, 0, 0]))


@pytest.mark.parametrize("arch", ARCHS)
def test_a_pointer_coerces_to_a_const_pointer(tmp_path, arch):
    src = """
var inp: [2]i32;
var out: [2]i32;
var cell: i32 = 5;
fn read(p: *const i32) i32 { return p.*; }
fn main() void {
  cell = inp[0];
  const p: *i32 = &cell;
  const q: *const i32 = p;          // *T -> *const T
  out[0] = read(p) + q.*;           // and as an argument
  p.* = inp[1];
  out[1] = q.*;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 2, 2)
    assert run([21, 4]).tolist() == [42, 4]
    assert run([-3, -10]).tolist() == [-6, -10]


@pytest.mark.parametrize("decl, what", [
    ("const n: i8 = @as(i16, inp[0]);", "expected i8, got i16"),
    ("const n: u32 = inp[0];", "expected u32, got i32"),
    ("const n: u16 = @as(i16, inp[0]);", "expected u16, got i16"),
    ("const n: i16 = @as(u16, inp[0]);", "expected i16, got u16"),
    ("const n: f16 = @as(f32, inp[0]);", "expected f16, got f32"),
    ("const n: i16 = 40000;", "40000"),
])
def test_narrowing_and_signed_to_unsigned_are_refused(tmp_path, decl, what):
    src = f"""
var inp: [1]i32;
var out: [1]i32;
fn main() void {{
  {decl}
  out[0] = @as(i32, n);
  sys.unblock_cmd_stream();
}}
"""
    e = error_of(tmp_path, src)
    assert what in str(e)
    assert e.line == position(HEAD + src, decl)[0]


def test_operands_of_different_signedness_need_a_conversion(tmp_path):
    src = """
var inp: [1]i32;
var out: [1]i32;
fn main() void {
  const u: u32 = @as(u32, inp[0]);
  out[0] = @as(i32, u + inp[0]);
  sys.unblock_cmd_stream();
}
"""
    e = error_of(tmp_path, src)
    assert "operands have types u32 and i32; convert one with @as" in str(e)
    assert (e.line, e.col) == position(HEAD + src, "+ inp[0]")


# ------------------------------------------------------------------------------------------------
# and / or, shifts and bit operators, wrap on overflow


@pytest.mark.parametrize("arch", ARCHS)
def test_and_or_skip_their_right_side_at_run_time(tmp_path, arch):
    src = """
var inp: [2]i32;
var out: [6]i32;
var calls: i32 = 0;
fn count(r: bool) bool { calls += 1; return r; }
fn main() void {
  calls = 0;
  const a = inp[0] > 0;
  const b = inp[1] > 0;
  const x = a and count(b);
  out[0] = calls;
  const y = a or count(b);
  out[1] = calls;
  const z = (a and count(b)) or count(true);
  out[2] = calls;
  out[3] = @as(i32, x);
  out[4] = @as(i32, y);
  out[5] = @as(i32, z);
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 2, 6)
    for a in (True, False):
        for b in (True, False):
            calls = []
            x = a and (calls.append(1) or b)
            calls0 = len(calls)
            y = a or (calls.append(1) or b)
            calls1 = len(calls)
            z = (a and (calls.append(1) or b)) or (calls.append(1) or True)
            want = [calls0, calls1, len(calls), int(x), int(y), int(z)]
            assert run([1 if a else -1, 1 if b else -1]).tolist() == want, (a, b)


BITS = """
var inp: [3]i32;
var out: [14]i32;
fn main() void {
  const x = inp[0];
  const u = @bitcast(u32, inp[1]);
  const k = @as(u16, inp[2]);
  const h: i16 = @as(i16, inp[0]);
  const g: u16 = @as(u16, inp[1]);
  out[0] = x >> k;               // arithmetic: the sign fills
  out[1] = @bitcast(i32, u >> k);   // logical
  out[2] = x << k;
  out[3] = x & inp[1];
  out[4] = x | inp[1];
  out[5] = x ^ inp[1];
  out[6] = ~x;
  out[7] = @bitcast(i32, ~u);
  out[8] = h >> @as(u16, 3);
  out[9] = h + @as(i16, 30000);   // i16 wraps
  out[10] = g + @as(u16, 60000);  // u16 wraps
  out[11] = x * 65537 + 2147483647;   // i32 wraps
  out[12] = g - @as(u16, 1);
  out[13] = -h;
  sys.unblock_cmd_stream();
}
"""


def bits_want(x, y, k):
    k = k % 32
    u = y % 2**32
    h = wrap(x, np.int16)
    g = wrap(y, np.uint16)
    return [x >> k, wrap(u >> k, np.int32), wrap(x << k, np.int32), x & y, x | y, x ^ y, ~x,
            wrap(~u % 2**32, np.int32), h >> 3, wrap(h + 30000, np.int16),
            wrap(g + 60000, np.uint16), wrap(x * 65537 + 2147483647, np.int32),
            wrap(g - 1, np.uint16), wrap(-h, np.int16)]


@pytest.mark.parametrize("arch", ARCHS)
def test_shifts_bit_operators_and_wrap_on_overflow(tmp_path, arch):
    run = Runner(program(tmp_path, BITS, arch=arch), 3, 14)
    for x, y, k in ((-1000, 0x0F0F0F0F, 4), (2**31 - 1, -1, 31), (-32768, 65535, 0),
                    (12345, -7, 17)):
        assert run([x, y, k]).tolist() == bits_want(x, y, k), (x, y, k)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(x=st.integers(-2**31, 2**31 - 1), y=st.integers(-2**31, 2**31 - 1),
       k=st.integers(0, 31))
def test_shifts_and_wrapping_match_numpy(tmp_path_factory, x, y, k):
    run = cached(tmp_path_factory, "bits", BITS, 3, 14)
    assert run([x, y, k]).tolist() == bits_want(x, y, k)


# ------------------------------------------------------------------------------------------------
# run-time switch


SWITCH = """
var inp: [2]i32;
var out: [4]i32;
const Mode = enum(u16) { idle, run = 4, stop };
fn main() void {
  const k = inp[0];
  const v = switch (k) {
    0 => 10,
    1, 2, 3 => 20 + k,
    -5 => 99,
    else => -1,
  };
  out[0] = v;
  var acc: i32 = 0;
  switch (k) {
    4, 5 => { acc = 45; },
    6 => { acc = 6; acc += inp[1]; },
    else => { acc = -k; },
  }
  out[1] = acc;
  // an enum's tag at run time
  const tag = @as(u16, inp[1]);
  out[2] = switch (tag) {
    @as(u16, Mode.idle) => 0,
    @as(u16, Mode.run), @as(u16, Mode.stop) => 1,
    else => 2,
  };
  var w: i32 = 7;
  inline for (.{ Mode.idle, Mode.stop }) |m| {
    switch (m) {
      .run, .stop => { w += inp[1]; },
      else => { w *= 2; },
    }
  }
  out[3] = w;
  sys.unblock_cmd_stream();
}
"""


def switch_want(k, j):
    v = 10 if k == 0 else 20 + k if k in (1, 2, 3) else 99 if k == -5 else -1
    acc = 45 if k in (4, 5) else 6 + j if k == 6 else -k
    tag = j % 2**16
    # members without a value are numbered from 0, skipping used values: stop is 1
    return [v, acc, 0 if tag == 0 else 1 if tag in (4, 1) else 2, 14 + j]


@pytest.mark.parametrize("arch", ARCHS)
def test_runtime_switch_on_ints_with_comma_prongs_and_else(tmp_path, arch):
    run = Runner(program(tmp_path, SWITCH, arch=arch), 2, 4)
    for k, j in ((0, 0), (2, 4), (-5, 5), (5, 1), (6, -4), (77, 3)):
        assert run([k, j]).tolist() == switch_want(k, j), (k, j)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(k=st.integers(-8, 9), j=st.integers(-3, 6))
def test_runtime_switch_matches_python(tmp_path_factory, k, j):
    run = cached(tmp_path_factory, "switch", SWITCH, 2, 4)
    assert run([k, j]).tolist() == switch_want(k, j)


# ------------------------------------------------------------------------------------------------
# declarations and type builtins


@pytest.mark.parametrize("arch", ARCHS)
def test_globals_before_their_declaration_and_the_type_builtins(tmp_path, arch):
    src = """
var inp: [1]i32;
var out: [12]i32;
fn main() void {
  total += inp[0] * scale;       // both declared below
  out[0] = total;
  out[1] = @as(i32, @element_count(Grid));
  const dims = @dimensions(Grid);
  out[2] = @as(i32, dims[0]) * 10 + @as(i32, dims[1]);
  out[3] = @as(i32, @rank(Grid));
  const e: @element_type(Grid) = -3;
  out[4] = @as(i32, e) * 1000;    // an i16 holds -3000
  out[5] = if (@element_type(Grid) == i16) 1 else 0;
  out[6] = where();
  out[7] = comptime where();
  out[8] = if (@fp16() == f16) 16 else 0;
  comptime var s = Pair { .a = 1, .b = 2 };
  @field(s, "b") = 40;
  out[9] = s.a + s.b + inp[0];
  out[10] = if (@has_field(Pair, "b")) 1 else 0;
  out[11] = if (@has_field(s, "c")) 1 else 0;
  sys.unblock_cmd_stream();
}
const Grid = [3, 4]i16;
const scale: i32 = 3;
var total: i32 = 100;
const Pair = struct { a: i32, b: i32 };
fn where() i32 {
  if (@is_comptime()) return 1;
  return 2;
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 1, 12)
    assert run([5]).tolist() == [115, 12, 34, 2, -3000, 1, 2, 1, 16, 46, 1, 0]
    assert run([-1]).tolist() == [112, 12, 34, 2, -3000, 1, 2, 1, 16, 40, 1, 0]


ENUM_SWITCH = """
var inp: [1]i32;
var out: [3]i32;
const Mode = enum(u16) { idle, run = 4, stop };
fn mode_of(k: i32) Mode {
  if (k == 1) return Mode.run;
  if (k == 2) return Mode.stop;
  return Mode.idle;
}
fn main() void {
  const m = mode_of(inp[0]);
  out[0] = switch (m) { .idle => 10, .run, .stop => 20 + inp[0], };
  var w: i32 = 7;
  switch (m) {
    .run => { w = 100; },
    else => { w -= 1; },
  }
  out[1] = w;
  out[2] = @as(i32, @as(u16, m));
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHS)
def test_runtime_switch_on_an_enum(tmp_path, arch):
    run = Runner(program(tmp_path, ENUM_SWITCH, arch=arch), 1, 3)
    # members without a value are numbered from 0, skipping used values: stop is 1
    assert run([0]).tolist() == [10, 6, 0]
    assert run([1]).tolist() == [21, 100, 4]
    assert run([2]).tolist() == [22, 6, 1]
    assert run([9]).tolist() == [10, 6, 0]


@pytest.mark.parametrize("arch", ARCHS)
def test_field_assignment_on_a_runtime_struct(tmp_path, arch):
    src = """
var inp: [2]i32;
var out: [3]i32;
const Pair = struct { a: i32, b: i32 };
fn main() void {
  var s = Pair { .a = 1, .b = 2 };
  @field(s, "b") = inp[0];
  @field(s, "a") += inp[1];
  out[0] = s.a;
  out[1] = s.b;
  out[2] = if (@has_field(Pair, "a")) 1 else 0;
  sys.unblock_cmd_stream();
}
"""
    run = Runner(program(tmp_path, src, arch=arch), 2, 3)
    assert run([5, 10]).tolist() == [11, 5, 1]
    assert run([-7, -1]).tolist() == [0, -7, 1]
