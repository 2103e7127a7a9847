"""64-bit integers `i64` and `u64` (spec 3.1, 3.2): arithmetic modulo 2**64, conversions to
and from every numeric type, implicit widening, globals, arrays, locals, parameters, returns,
runtime pointers and comptime values. Each program runs in check mode (the reference
interpreter beside the engine, every symbol compared after every launch) on both arches, and
its results are checked against Python ints. memcpy moves 32-bit words, so the programs hand
their 64-bit results out as (low, high) u32 halves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from csl_harness import OUT_HEAD, OUT_TAIL, out_row, position, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_csl_control import ARCHS, Runner, program

from wsejax import CslError, FabricFault
from wsejax.csl import compile_csl
from wsejax.reference import Reference

M64 = (1 << 64) - 1
_RUNNERS: dict = {}


def cached(tmp_path_factory, key, body, n_in, n_out, arch="wse2"):
    """One check-mode runner per program and arch, kept across hypothesis examples (the
    program compiles once)."""
    if (key, arch) not in _RUNNERS:
        _RUNNERS[(key, arch)] = Runner(program(tmp_path_factory.mktemp(key), body, "u32", arch),
                                       n_in, n_out, np.uint32)
    return _RUNNERS[(key, arch)]


def s64(x: int) -> int:
    """x as a signed 64-bit value."""
    x &= M64
    return x - (1 << 64) if x >> 63 else x


def halves(x: int) -> list[int]:
    return [x & 0xFFFFFFFF, (x & M64) >> 32]


def joined(words, k: int) -> int:
    """The u64 whose halves are words 2k, 2k+1."""
    return int(words[2 * k]) | int(words[2 * k + 1]) << 32


def tdiv(x: int, y: int) -> int:
    return 0 if y == 0 else (abs(x) // abs(y)) * (1 if (x < 0) == (y < 0) else -1)


def tmod(x: int, y: int) -> int:
    return 0 if y == 0 else x - y * tdiv(x, y)


# `split(k, x)` writes the halves of x to out[2k], out[2k+1]
SPLIT = """
fn split(k: u16, x: u64) void {
  out[2 * k] = @as(u32, x & 0xFFFFFFFF);
  out[2 * k + 1] = @as(u32, x >> 32);
}
fn put(k: u16, x: i64) void { split(k, @bitcast(u64, x)); }
"""

# ------------------------------------------------------------------------------------------------
# operators


OPERATORS = """
const math = @import_module("<math>");
var inp: [4]u32;
var out: [40]u32;
""" + SPLIT + """
fn main() void {
  const a: u64 = (@as(u64, inp[1]) << 32) | inp[0];    // u32 widens to u64
  const b: u64 = (@as(u64, inp[3]) << 32) | inp[2];
  const sa: i64 = @bitcast(i64, a);
  const sb: i64 = @bitcast(i64, b);
  const n: u32 = inp[2] & 127;
  split(0, a + b);
  split(1, a - b);
  split(2, a * b);
  split(3, a / b);
  split(4, a % b);
  put(5, sa / sb);
  put(6, sa % sb);
  split(7, a & b);
  split(8, a | b);
  split(9, a ^ b);
  split(10, a << n);
  split(11, a >> n);
  put(12, sa >> n);
  split(13, ~a);
  put(14, -sa);
  put(15, sa * sb);
  var flags: u32 = 0;
  if (a < b) flags |= 1;
  if (a <= b) flags |= 2;
  if (a > b) flags |= 4;
  if (a >= b) flags |= 8;
  if (a == b) flags |= 16;
  if (a != b) flags |= 32;
  if (sa < sb) flags |= 64;
  if (sa <= sb) flags |= 128;
  if (sa > sb) flags |= 256;
  if (sa >= sb) flags |= 512;
  out[32] = flags;
  out[33] = @as(u32, (@as(u64, inp[0]) << @as(u64, n)) >> 32);   // a 64-bit count
  put(17, math.abs(sa));
  put(18, math.min(sa, sb));
  split(19, math.max(a, b));
  sys.unblock_cmd_stream();
}
"""


def operators_want(a: int, b: int) -> list[int]:
    sa, sb, n = s64(a), s64(b), b & 127
    results = [a + b, a - b, a * b, tdiv(a, b), tmod(a, b), tdiv(sa, sb), tmod(sa, sb), a & b,
               a | b, a ^ b, a << n if n < 64 else 0, a >> n, sa >> min(n, 63), ~a, -sa,
               sa * sb]
    out = [w for x in results for w in halves(x)]
    flags = [a < b, a <= b, a > b, a >= b, a == b, a != b, sa < sb, sa <= sb, sa > sb, sa >= sb]
    lo = a & 0xFFFFFFFF
    return out + [sum(int(f) << k for k, f in enumerate(flags)),
                  (((lo << n) & M64) >> 32) if n < 64 else 0] + halves(abs(sa)) + \
        halves(min(sa, sb)) + halves(max(a, b))


def run_operators(run, a: int, b: int):
    return run(halves(a) + halves(b)).tolist()


EDGES = [(0, 0), (M64, 1), (1 << 63, M64), (1 << 63, 1), (12345678901234, 987654321), (M64, M64),
         (5, 0), (s64(-7) & M64, 2), (0xFFFFFFFF, 0xFFFFFFFF), (0x1_0000_0000, 0x3F),
         (0xDEADBEEFCAFEF00D, 0x1_0000_0040), (2**63 - 1, 2**32 + 1)]


@pytest.mark.parametrize("arch", ARCHS)
def test_operators_wrap_modulo_2_to_the_64_at_the_edges(tmp_path_factory, arch):
    run = cached(tmp_path_factory, "operators", OPERATORS, 4, 40, arch)
    for a, b in EDGES:
        assert run_operators(run, a, b) == operators_want(a, b), (hex(a), hex(b))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(a=st.integers(0, M64), b=st.one_of(st.integers(0, M64), st.integers(0, 2**33),
                                          st.integers(2**64 - 2**33, M64)))
def test_operators_match_python_ints_modulo_2_to_the_64(tmp_path_factory, a, b):
    run = cached(tmp_path_factory, "operators", OPERATORS, 4, 40)
    assert run_operators(run, a, b) == operators_want(a, b)
    assert run.r.engine.launch_fn("main")._cache_size() == 1      # one compile, many values


# ------------------------------------------------------------------------------------------------
# conversions


CONVERSIONS = """
var inp: [4]u32;
var out: [28]u32;
""" + SPLIT + """
fn main() void {
  const a: u64 = (@as(u64, inp[1]) << 32) | inp[0];
  const sa: i64 = @bitcast(i64, a);
  const f: f32 = @bitcast(f32, inp[2]);
  const h: f16 = @as(f16, f);
  out[0] = @bitcast(u32, @as(f32, a));
  out[1] = @bitcast(u32, @as(f32, sa));
  out[2] = @as(u32, @bitcast(u16, @as(f16, a)));
  out[3] = @as(u32, @bitcast(u16, @as(f16, sa)));
  split(2, @as(u64, f));
  put(3, @as(i64, f));
  split(4, @as(u64, h));
  put(5, @as(i64, h));
  out[12] = @bitcast(u32, @as(i32, @as(i8, sa)));
  out[13] = @as(u32, @as(u16, a));
  out[14] = @bitcast(u32, @as(i32, sa));
  out[15] = @as(u32, @as(bool, a));
  const i: i32 = @bitcast(i32, inp[3]);
  const u: u32 = inp[3];
  const w: i64 = i;               // i32 -> i64
  const x: i64 = u;               // u32 -> i64
  const y: u64 = @as(u16, u);     // u16 -> u64
  const z: i64 = @as(i8, i);      // i8 -> i64
  put(8, w);
  put(9, x);
  split(10, y);
  put(11, z);
  split(12, @as(u64, @as(i16, i)));
  split(13, @as(u64, @as(bool, u)));
  sys.unblock_cmd_stream();
}
"""


def to_float(v: int, t, m: int | None = None) -> int:
    """The bits of integer v converted to float type t, rounded once to nearest even (to m
    significant bits, t's by default)."""
    m = m or {np.float32: 24, np.float16: 11}[t]
    mag = abs(v)
    extra = mag.bit_length() - m
    if extra > 0:
        q, r = divmod(mag, 1 << extra)
        if r > 1 << (extra - 1) or (r == 1 << (extra - 1) and q & 1):
            q += 1
        mag = q << extra
    with np.errstate(over="ignore"):
        x = t(np.float32(mag))
    x = -x if v < 0 else x
    return int(x.view(np.uint32 if t is np.float32 else np.uint16))


def to_int(x, lo: int, hi: int) -> int:
    """Float x truncated toward zero, saturated to [lo, hi]; NaN gives 0."""
    x = float(x)
    if math.isnan(x):
        return 0
    if math.isinf(x):
        return hi if x > 0 else lo
    return min(max(math.trunc(x), lo), hi)


def conversions_want(a: int, fbits: int, ib: int) -> list[int]:
    sa, f = s64(a), np.uint32(fbits).view(np.float32)
    with np.errstate(over="ignore"):
        h = np.float16(f)
    i = int(np.uint32(ib).view(np.int32))
    i8 = int(np.uint8(ib & 0xFF).view(np.int8))
    i16 = int(np.uint16(ib & 0xFFFF).view(np.int16))
    out = [to_float(a, np.float32), to_float(sa, np.float32), to_float(a, np.float16),
           to_float(sa, np.float16)]
    for v in (to_int(f, 0, M64), to_int(f, -2**63, 2**63 - 1), to_int(h, 0, M64),
              to_int(h, -2**63, 2**63 - 1)):
        out += halves(v)
    out += [int(np.uint8(sa & 0xFF).view(np.int8)) & 0xFFFFFFFF, a & 0xFFFF, sa & 0xFFFFFFFF,
            int(a != 0)]
    for v in (i, ib, ib & 0xFFFF, i8, i16, int(ib != 0)):
        out += halves(v)
    return out


FLOATS = [0.0, -0.0, 1.5, -1.5, 3e9, 1e19, 2e19, -9.3e18, -1e19, 1e30, np.inf, -np.inf, np.nan,
          7e4, -3.7, 2.0**63, -(2.0**63), 2.0**64]
FLOAT_BITS = [int(np.float32(x).view(np.uint32)) for x in FLOATS]


@pytest.mark.parametrize("arch", ARCHS)
def test_conversions_to_and_from_every_numeric_type(tmp_path_factory, arch):
    run = cached(tmp_path_factory, "conversions", CONVERSIONS, 4, 28, arch)
    # integers whose float is a tie or just past one, the f16 overflow threshold, the extremes
    ints = [M64, (1 << 24) + 1, (1 << 24) + 3, (1 << 53) + 1, 1 << 63, 2**63 + 2**39,
            2**63 + 2**40 + 1, 65519, 65520, M64 - 2**40, 0, 1]
    for k, a in enumerate(ints):
        for fb in FLOAT_BITS[k::len(ints)]:
            ib = [0, 0xFFFFFFFF, 0x8000, 0x7F, 0x80000000, 5][k % 6]
            got = run(halves(a) + [fb, ib]).tolist()
            assert got == conversions_want(a, fb, ib), (hex(a), fb, ib)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(a=st.one_of(st.integers(0, M64), st.integers(0, 2**40)),
       f=st.one_of(st.sampled_from(FLOAT_BITS), st.integers(0, 0xFFFFFFFF)),
       ib=st.integers(0, 0xFFFFFFFF))
def test_conversions_match_python(tmp_path_factory, a, f, ib):
    run = cached(tmp_path_factory, "conversions", CONVERSIONS, 4, 28)
    assert run(halves(a) + [f, ib]).tolist() == conversions_want(a, f, ib)


# ------------------------------------------------------------------------------------------------
# memory, locals, parameters, pointers, comptime values


COUNTER = """
var inp: [4]u32;
var out: [8]u32;
var counter: u64 = 0xFFFFFFF0;
var arr: [3]i64 = [3]i64 { -1, 1 << 40, -(1 << 62) };
""" + SPLIT + """
fn add_to(p: *u64, v: u64) void { p.* += v; }
fn main() void {
  add_to(&counter, (@as(u64, inp[1]) << 32) | inp[0]);
  split(0, counter);
  arr[inp[2]] -= 1;
  put(1, arr[0] + arr[1] + arr[2]);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHS)
def test_a_u64_counter_in_memory_counts_across_launches(tmp_path, arch):
    run = Runner(program(tmp_path, COUNTER, "u32", arch), 4, 8, np.uint32)
    want, total = 0xFFFFFFF0, -1 + 2**40 - 2**62
    for step in (0x10, 0xFFFFFFFF, 1 << 40, M64, 3):
        want = (want + step) & M64
        total -= 1
        out = run(halves(step) + [step % 3, 0])
        assert joined(out, 0) == want
        assert s64(joined(out, 1)) == total
    # the host reads the 8 bytes of each element back (little-endian)
    r = run.r
    assert r.read_symbol(0, 0, "counter", np.uint64).tolist() == [want]
    assert r.read_symbol(0, 0, "arr", np.int64).sum() == total


@pytest.mark.parametrize("arch", ARCHS)
def test_64_bit_symbols_take_8_bytes_aligned_to_8(tmp_path, arch):
    prog = program(tmp_path, """
var inp: [4]u32;
var out: [8]u32;
var small: u16 = 1;
var big: [3]u64;
var one: i64 = -2;
fn main() void {
  big[2] = @bitcast(u64, one);
  out[0] = @as(u32, big[2] >> 40);
  out[1] = small;
  sys.unblock_cmd_stream();
}
""", "u32", arch)
    pe = prog.classes[0]
    addr = pe.addresses
    assert pe.symbol("big").nbytes == 24 and pe.symbol("one").nbytes == 8
    assert addr["big"] % 8 == 0 and addr["one"] % 8 == 0
    spans = sorted((addr[sym.name], addr[sym.name] + sym.nbytes) for sym in pe.symbols)
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))
    out = Runner(prog, 4, 8, np.uint32)([0, 0, 0, 0])
    assert out[:2].tolist() == [0xFFFFFF, 1]


LOCALS = """
var inp: [4]u32;
var out: [16]u32;
var tail: u64 = 5;
var arr: [3]i64 = [3]i64 { -1, 1 << 40, -(1 << 62) };
const K: u64 = 0xFFFFFFFFFFFFFFFF;
const C = K - 1;                                    // comptime u64, wraps nothing
const S: i64 = -9223372036854775807 - 1;
const Q: u64 = K / 3 + @bitcast(u64, S >> 62);      // comptime arithmetic wraps
""" + SPLIT + """
fn sum(xs: [*]i64, n: u16) i64 {
  var s: i64 = 0;
  var j: u16 = 0;
  while (j < n) : (j += 1) { s += xs[j]; }
  return s;
}
fn twice(x: i64) i64 { return x * 2; }
fn main() void {
  const a: u64 = (@as(u64, inp[1]) << 32) | inp[0];
  var loc: u64 = a;
  for (@range(u64, 3)) |k| { loc += k; }
  split(0, loc);
  var big: i64 = 0;
  for (@range(i64, -(1 << 40), (1 << 40) + 1, 1 << 39)) |k| { big += k * @bitcast(i64, a); }
  put(1, big);
  put(2, twice(sum(&arr, 3)));
  split(3, C);
  split(4, Q);
  // runtime pointers: the address of a u64, and a [*]i64 moved into an array
  var p: *u64 = &tail;
  if (inp[2] > 5) { p = &loc; }
  p.* += 0x100000000;
  split(5, p.*);
  var q: [*]i64 = &arr;
  if (inp[3] > 5) { q = &arr[1]; }
  q[1] = q[0] - 1;
  put(6, arr[1]);
  put(7, arr[2]);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHS)
def test_locals_params_returns_loops_pointers_and_comptime_values(tmp_path, arch):
    run = Runner(program(tmp_path, LOCALS, "u32", arch), 4, 16, np.uint32)
    arr = [-1, 2**40, -(2**62)]
    tail = 5
    for a, i2, i3 in ((0xFFFFFFFF_FFFFFFFE, 9, 0), (7, 0, 9), (1 << 40, 0, 0)):
        loc = (a + 3) & M64
        total = sum(arr)
        if i2 > 5:
            pointed = (loc + 2**32) & M64
        else:
            tail = (tail + 2**32) & M64
            pointed = tail
        base = 1 if i3 > 5 else 0
        arr[base + 1] = arr[base] - 1
        out = run(halves(a) + [i2, i3])
        assert joined(out, 0) == loc
        assert joined(out, 1) == 0          # the k * a sum over a symmetric range
        assert s64(joined(out, 2)) == s64(2 * total)
        assert joined(out, 3) == M64 - 1
        assert joined(out, 4) == (M64 // 3 + ((-(2**63) >> 62) & M64)) & M64
        assert joined(out, 5) == pointed
        assert [s64(joined(out, 6)), s64(joined(out, 7))] == arr[1:]


def test_a_per_pe_u64_param_struct_fields_switch_and_if(tmp_path):
    layout = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0),
                                    .seed = 0xFFFFFFFFFFFFFFF0 });
  @set_tile_code(1, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(1), .seed = 7 });
  @export_name("out", [*]u32, true);
  @export_name("main", fn()void);
}
"""
    pe = OUT_HEAD + """
param seed: u64;
const P = struct { a: u64, b: i64 };
var s: P = P { .a = 1, .b = -1 };
var out: [6]u32;
var out_ptr: [*]u32 = &out;
fn main() void {
  const v: u64 = seed + 1;
  s.a = v * 3;
  s.b = @bitcast(i64, v) >> 2;
  out[0] = @as(u32, v & 0xFFFFFFFF);
  out[1] = @as(u32, v >> 32);
  out[2] = @as(u32, s.a >> 32);
  out[3] = @bitcast(u32, @as(i32, s.b >> 32));
  out[4] = switch (v) { 8 => 80, 0xFFFFFFFFFFFFFFF1 => 90, else => 100 };
  const m = if (v > 10) v else v + 100;
  out[5] = @as(u32, m & 0xFFFF);
  sys.unblock_cmd_stream();
}
""" + OUT_TAIL
    write(tmp_path, {"layout.csl": layout, "pe.csl": pe})
    eng, ref = out_row(compile_csl(tmp_path / "layout.csl", memcpy=True), 6, np.uint32)
    want = [[0xFFFFFFF1, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 90, 0xFFF1],
            [8, 0, 0, 0, 80, 108]]
    assert eng.tolist() == ref.tolist() == want


def test_simprint_writes_64_bit_values_whole(tmp_path, capsys):
    prog = program(tmp_path, """
const prt = @import_module("<simprint>");
var inp: [4]u32;
var out: [1]u32;
var g: i64 = -3;
var h: u64 = 0xFEDCBA9876543210;
fn main() void { prt.fmt_no_nl("{d} {X} {d}\\n", .{g, g, h}); sys.unblock_cmd_stream(); }
""", "u32")
    Runner(prog, 4, 1, np.uint32)([0, 0, 0, 0])
    assert "-3 FFFFFFFFFFFFFFFD 18364758544493064720" in capsys.readouterr().out
    ref = Reference(prog)
    ref.launch("main")
    assert ref.memory(0, 0)["h"].tolist() == [0xFEDCBA9876543210]


# ------------------------------------------------------------------------------------------------
# what is refused


def refused(tmp_path, body: str, where: str, text: str, exports: str | None = None):
    from csl_harness import compile_pe
    from test_csl_control import EXPORTS, HEAD, TAIL

    src = HEAD + body + TAIL.format(t="u32")
    with pytest.raises(CslError) as info:
        compile_pe(tmp_path, src, exports or EXPORTS.format(t="u32"), w=1, h=1)
    err = str(info.value)
    assert text in err
    in_layout = exports is not None and where in exports
    line, col = position((tmp_path / ("layout.csl" if in_layout else "pe.csl")).read_text(),
                         where)
    assert f":{line}:{col}:" in err


@pytest.mark.parametrize("op, width", [("@mov32", "u32 (32-bit)"), ("@add16", "u16 (16-bit)")])
def test_dsd_operations_on_64_bit_arrays_are_refused_where_called(tmp_path, op, width):
    refused(tmp_path, f"""
var inp: [4]u32;
var out: [4]u32;
var big: [4]u64;
const d = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{4}} -> big[i] }});
fn main() void {{ {op}(d, d{", d" if op == "@add16" else ""}); sys.unblock_cmd_stream(); }}
""", "d, d", f"operand 1 addresses u64 elements, but {op} works on {width}")


def test_exporting_a_64_bit_array_for_memcpy_is_refused(tmp_path):
    exports = '@export_name("inp", [*]u32, true);\n@export_name("out", [*]u64, true);\n' \
              '@export_name("main", fn()void);'
    refused(tmp_path, """
var inp: [4]u32;
var out: [4]u32;
fn main() void { sys.unblock_cmd_stream(); }
""", '@export_name("out"', "@export_name('out'): memcpy moves 16- and 32-bit elements, not "
         "u64", exports)


def test_a_launch_parameter_of_64_bits_is_refused(tmp_path):
    exports = '@export_name("inp", [*]u32, true);\n@export_name("out", [*]u32, true);\n' \
              '@export_name("main", fn(i64)void);'
    refused(tmp_path, """
var inp: [4]u32;
var out: [4]u32;
fn main(x: i64) void { sys.unblock_cmd_stream(); }
""", '@export_name("main"', "a launch passes each argument in one 32-bit word; i64 is 64-bit",
            exports)


@pytest.mark.parametrize("decl, where, text", [
    ("const v: u64 = 1 << 64;", "const v", "18446744073709551616 does not fit in u64"),
    ("const v: u64 = -1;", "const v", "-1 does not fit in u64"),
    ("var g: i64 = 3; var u: u64 = g;", "var u", "expected u64, got i64 (convert with @as)"),
    ("var g: u64 = 3; var u: u32 = g;", "var u", "expected u32, got u64 (convert with @as)"),
    ("var g: i64 = 3; var u: u32 = @bitcast(u32, g);", "@bitcast",
     "@bitcast from i64 to u32: widths differ"),
])
def test_narrowing_and_out_of_range_values_are_refused(tmp_path, decl, where, text):
    refused(tmp_path, f"""
var inp: [4]u32;
var out: [4]u32;
fn main() void {{
  {decl}
  sys.unblock_cmd_stream();
}}
""", where, text)


BF16 = """
var inp: [4]u32;
var out: [4]u32;
fn main() void {
  const a: u64 = (@as(u64, inp[1]) << 32) | inp[0];
  const b: bf16 = @as(bf16, a);
  out[0] = @as(u32, @bitcast(u16, b));
  out[1] = @as(u32, @bitcast(u16, @as(bf16, @bitcast(i64, a))));
  out[2] = @as(u32, @as(u64, b) >> 32);
  out[3] = @bitcast(u32, @as(i32, @as(i64, b) >> 32));
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHS)
def test_bf16_conversions_round_once(tmp_path, arch):
    from csl_harness import compile_pe
    from test_csl_control import EXPORTS, HEAD, TAIL

    prog = compile_pe(tmp_path, HEAD + BF16 + TAIL.format(t="u32"), EXPORTS.format(t="u32"),
                      w=1, h=1, arch=arch, fp16_format="bf16")
    run = Runner(prog, 4, 4, np.uint32)
    for a in (0x9ABCDEF012345678, 0x0180_8000_0000_0000, 0x0181_8000_0000_0001, (1 << 24) + 1,
              0x0180_8000_0000_0000 - 1, M64):
        sa = s64(a)
        ub, sb = bf16_bits(a), bf16_bits(sa)
        back = np.uint32(ub << 16).view(np.float32)
        want = [ub, sb, to_int(back, 0, M64) >> 32,
                (to_int(back, -2**63, 2**63 - 1) >> 32) & 0xFFFFFFFF]
        assert run(halves(a) + [0, 0]).tolist() == want, hex(a)


def bf16_bits(v: int) -> int:
    """The bits of integer v as bf16, rounded once to nearest even (8 significant bits)."""
    return to_float(v, np.float32, 8) >> 16


CASTS = """
var inp: [4]u32;
var out: [11]u32;
var big: [2]u64 = [2]u64 { 0x1122334455667788, 0x99AABBCCDDEEFF00 };
var words: [4]u32 = [4]u32 { 1, 2, 3, 4 };
var halfs: [4]u16 = [4]u16 { 5, 6, 7, 8 };
var wide_ptr: [*]u64 = &big;
fn main() void {
  var p: [*]u32 = @ptrcast([*]u32, wide_ptr);       // 32-bit halves of 64-bit elements
  out[0] = p[inp[0]];
  p[3] = 7;
  out[1] = @as(u32, big[1] >> 32);
  var h: [*]u16 = @ptrcast([*]u16, wide_ptr);       // 16-bit words of them
  out[2] = h[inp[0] + 4];
  h[inp[0]] = 0xABCD;
  out[3] = @as(u32, big[0] & 0xFFFFFFFF);
  out[4] = @as(u32, big[0] >> 32);
  var w: [*]u64 = @ptrcast([*]u64, &words);         // 64-bit values over u32 elements
  out[5] = @as(u32, w[inp[0]] >> 8);
  w[0] = 0xFFFFFFFF00000011;
  out[6] = words[0];
  out[7] = words[1];
  var hw: [*]u64 = @ptrcast([*]u64, &halfs);        // and over u16 elements
  out[8] = @as(u32, hw[0] >> 16);
  hw[inp[1]] = 0x0004000300020001;
  out[9] = halfs[3];
  out[10] = halfs[0];
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHS)
def test_pointer_casts_read_and_write_the_bytes_of_64_bit_elements(tmp_path, arch):
    run = Runner(program(tmp_path, CASTS, "u32", arch), 4, 11, np.uint32)
    assert run([1, 0, 0, 0]).tolist() == [0x11223344, 7, 0xDDEE, 0xABCD7788, 0x11223344,
                                          0x4000000, 0x11, 0xFFFFFFFF, 0x70006, 4, 1]


INDICES = """
var inp: [4]u32;
var out: [16]u32;
var tab: [4]u32 = [4]u32 { 10, 20, 30, 40 };
fn main() void {
  const k: u64 = (@as(u64, inp[1]) << 32) | inp[0];
  out[0] = tab[k];
  for (@range(u64, 4)) |j| { out[1 + j] = tab[j] + 1; }
  for (@range(i64, 40)) |j| { out[5 + @as(u16, j % 4)] += @as(u32, j); }
  out[k + 10] = 99;
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHS)
def test_64_bit_indices_and_loop_variables_index_arrays(tmp_path, arch):
    run = Runner(program(tmp_path, INDICES, "u32", arch), 4, 16, np.uint32)
    assert run([2, 0, 0, 0]).tolist() == [30, 11, 21, 31, 41, 180, 190, 200, 210, 0, 0, 0, 99,
                                          0, 0, 0]
    # an index past 2**32 is out of range, not its low half
    with pytest.raises(FabricFault, match=r"index out of range reading 'tab'"):
        run([1, 1, 0, 0])


BUILTINS = """
var inp: [4]u32;
var out: [6]u32;
var z: [3]u64 = @zeros([3]u64);
var c: [3]i64 = @constants([3]i64, -5);
const cb: i64 = @bitcast(i64, @as(u64, 0xFFFFFFFFFFFFFFFF));
fn main() void {
  var loc: [4]u64 = @zeros([4]u64);
  var lit = [2]i64 { -1, 3 };
  for (@range(u16, 4)) |i| { loc[i] = @as(u64, inp[i]) * 0x100000001; }
  out[0] = @as(u32, loc[3] >> 32);
  out[1] = @bitcast(u32, @as(i32, c[inp[0]] + lit[0]));
  out[2] = @bitcast(u32, @as(i32, cb));
  out[3] = @as(u32, @as(u64, true) + z[2]);
  var s: u64 = 0;
  for (loc) |x| { s += x; }
  out[4] = @as(u32, s >> 32);
  var n: u64 = 0;
  while (n < 0x100000003) : (n += 0x80000000) { out[5] += 1; }
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHS)
def test_zeros_constants_literals_local_arrays_and_a_64_bit_while_counter(tmp_path, arch):
    run = Runner(program(tmp_path, BUILTINS, "u32", arch), 4, 6, np.uint32)
    assert run([1, 2, 3, 4]).tolist() == [4, (-6) & 0xFFFFFFFF, 0xFFFFFFFF, 1, 10, 3]
