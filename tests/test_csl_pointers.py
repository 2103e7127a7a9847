"""Runtime pointers in CSL (spec 3.1, 3.2): pointer variables reassigned at run time, pointers
passed to and returned from functions, pointers to locals and to pointer variables, `@bitcast`
and `@ptrcast`, comparisons, whole-array assignment, pointers to const arrays; each program is
run on the engine and on the reference interpreter and checked against numpy, on both arches."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, position, read, run

from wsejax import CslError, FabricFault
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const lay = @import_module("<layout>");
"""

TAIL = """
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""

EXPORTS = """@export_name("out", [*]{t}, true);
@export_name("main", fn()void);"""


def program(tmp_path, body: str, arch: str, t: str = "f32"):
    return compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS.format(t=t), arch=arch)


def run_ref(prog):
    ref = Reference(prog)
    ref.launch("main")
    return ref


def both(prog, n: int, dtype):
    """`out`'s first n elements on every PE: (engine [H, W, n], reference [H, W, n])."""
    eng = read(run(prog), "out", n, dtype)
    ref = run_ref(prog)
    got = np.stack([np.stack([np.asarray(ref.memory(x, y)["out"]).reshape(-1)[:n]
                              for x in range(prog.width)]) for y in range(prog.height)])
    return eng, got


def check(prog, want, dtype=np.float32):
    """Engine and reference both leave `want` (one row per PE, or one for all) in `out`."""
    want = np.asarray(want, dtype)
    eng, ref = both(prog, want.shape[-1], dtype)
    want = np.broadcast_to(want, eng.shape)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


def refused(tmp_path, body: str, arch: str = "wse2"):
    """The CslError compiling `body`."""
    with pytest.raises(CslError) as info:
        program(tmp_path, body, arch)
    return info.value


def at(body: str, where: str):
    """The (line, col) of `where` in pe.csl, as `program` writes it."""
    return position(HEAD + body, where)


# ------------------------------------------------------------------------------------------------
# pointer variables reassigned at run time


SWAP = """
var a = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
var b: [4]f32;
var out: [8]f32;
var out_ptr: [*]f32 = &out;
var src: [*]f32 = &a;
var dst: [*]f32 = &b;

fn step(k: f32) void {
  for (@range(u16, 4)) |i| { dst[i] = src[i] * 2.0 + k; }
  const t = src;
  src = dst;
  dst = t;
}

fn main() void {
  const x = @as(f32, lay.get_x_coord());
  for (@range(u16, 3)) |k| { step(x); }
  for (@range(u16, 4)) |i| { out[i] = a[i]; out[4 + i] = b[i]; }
  sys.unblock_cmd_stream();
}
"""


def _swap_oracle(x: float):
    a = np.array([1, 2, 3, 4], np.float32)
    b = np.zeros(4, np.float32)
    src, dst = a, b
    for _ in range(3):
        dst[:] = src * 2 + x
        src, dst = dst, src
    return np.concatenate([a, b])


@pytest.mark.parametrize("arch", ARCHES)
def test_double_buffering_swaps_two_global_pointers_at_run_time(tmp_path, arch):
    prog = program(tmp_path, SWAP, arch)
    check(prog, [[_swap_oracle(0.0), _swap_oracle(1.0)]])


TASK_SWAP = """
var a = [3]i32 { 1, 2, 3 };
var b: [3]i32;
var out: [7]i32;
var out_ptr: [*]i32 = &out;
var cur: [*]i32 = &a;
var nxt: [*]i32 = &b;
var rounds: i32 = 0;
const step_id: local_task_id = @get_local_task_id(9);

task step() void {
  for (@range(u16, 3)) |i| { nxt[i] = cur[i] + cur[(i + 1) % 3]; }
  if (rounds % 2 == 0) { cur = &b; nxt = &a; } else { cur = &a; nxt = &b; }
  rounds += 1;
  if (rounds < 5) { @activate(step_id); } else { finish(); }
}

fn finish() void {
  for (@range(u16, 3)) |i| { out[i] = a[i]; out[3 + i] = b[i]; }
  out[6] = cur[0];
  sys.unblock_cmd_stream();
}

fn main() void { @activate(step_id); }

comptime { @bind_local_task(step, step_id); }
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_task_swaps_its_buffers_by_assigning_addresses_each_time_it_runs(tmp_path, arch):
    prog = program(tmp_path, TASK_SWAP, arch, "i32")
    a, b = np.array([1, 2, 3]), np.zeros(3, int)
    cur, nxt = a, b
    for r in range(5):
        nxt[:] = cur + np.roll(cur, -1)
        cur, nxt = (b, a) if r % 2 == 0 else (a, b)
    check(prog, np.concatenate([a, b, [cur[0]]]), np.int32)


# ------------------------------------------------------------------------------------------------
# functions, locals, pointers to pointers


FUNCTIONS = """
var a = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
var b = [4]f32 { 10.0, 20.0, 30.0, 40.0 };
var out: [4]f32;
var out_ptr: [*]f32 = &out;

fn pick(x: [*]f32, y: [*]f32, first: bool) [*]f32 {
  if (first) { return x; }
  return y;
}

fn total(p: [*]f32, n: u16) f32 {
  var s: f32 = 0.0;
  var i: u16 = 0;
  while (i < n) : (i += 1) { s += p[i]; }
  return s;
}

fn scale(p: [*]f32, k: f32) void {
  for (@range(u16, 4)) |i| { p[i] *= k; }
}

fn main() void {
  const first = lay.get_x_coord() == 0;
  const p = pick(&a, &b, first);
  scale(p, 2.0);
  out[0] = total(p, 4);
  out[1] = p[3];
  out[2] = a[0];
  out[3] = b[0];
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_function_takes_and_returns_pointers_known_only_at_run_time(tmp_path, arch):
    prog = program(tmp_path, FUNCTIONS, arch)
    check(prog, [[[20, 8, 2, 10], [200, 80, 1, 20]]])


LOCALS = """
var a = [3]i32 { 5, 6, 7 };
var b = [3]i32 { 50, 60, 70 };
var p: [*]i32 = &a;
var out: [6]i32;
var out_ptr: [*]i32 = &out;

fn redirect(pp: *[*]i32, to: [*]i32) void { pp.* = to; }

fn bump(x: *i32, by: i32) void { x.* += by; }

fn main() void {
  var n: i32 = 1;
  var q: *i32 = &n;
  q.* = 4;
  bump(q, 3);
  out[0] = n;
  if (lay.get_x_coord() == 1) { redirect(&p, &b); }
  const pp = &p;
  (pp.*)[1] += 1;
  out[1] = p[1];
  out[2] = a[1];
  out[3] = b[1];
  var r: [*]i32 = &a;
  if (p != r) { out[4] = 1; }
  r = p;
  out[5] = @as(i32, @bitcast(u16, r) == @bitcast(u16, &b)) + @as(i32, p == r);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_to_locals_and_to_a_pointer_variable_redirect_reads_and_writes(tmp_path, arch):
    prog = program(tmp_path, LOCALS, arch, "i32")
    # PE 1 points p at b
    check(prog, [[[7, 7, 7, 60, 0, 1], [7, 61, 6, 61, 1, 2]]], np.int32)


# ------------------------------------------------------------------------------------------------
# casts, anyopaque, whole arrays, const arrays


CASTS = """
var a = [4]u32 { 1, 2, 3, 4 };
var f = [2]f32 { 1.5, -2.0 };
var out: [6]u32;
var out_ptr: [*]u32 = &out;

fn main() void {
  const addr: u16 = @bitcast(u16, &a);
  const q = @bitcast([*]u32, addr + 8);
  q[1] = 40;
  const o: *anyopaque = @ptrcast(*anyopaque, &f);
  const bits = @ptrcast([*]u32, o);
  out[0] = bits[1];
  const back: [*]f32 = @ptrcast([*]f32, bits);
  back[0] = 0.25;
  out[1] = @bitcast(u32, f[0]);
  out[2] = a[3];
  out[3] = q[0];
  out[4] = @as(u32, @bitcast([*]u32, addr) == &a);
  out[5] = @as(u32, &a[1] == &a);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_bitcast_and_ptrcast_move_between_pointers_integers_and_anyopaque(tmp_path, arch):
    prog = program(tmp_path, CASTS, arch, "u32")
    want = [np.float32(-2.0).view(np.uint32), np.float32(0.25).view(np.uint32), 40, 3, 1, 0]
    check(prog, [want], np.uint32)


WIDTHS = """
var w = [2]u32 { 0x11112222, 0x33334444 };
var h = [6]u16 { 1, 2, 3, 4, 5, 6 };
var out: [6]u32;
var out_ptr: [*]u32 = &out;

fn main() void {
  const halves = @ptrcast([*]u16, &w);
  out[0] = halves[1];
  halves[2] = 0xaaaa;
  out[1] = w[1];
  const base = @bitcast(u16, &h);
  const off = base % 4;
  const words = @bitcast([*]u32, base + off);
  out[2] = @as(u32, off);
  out[3] = words[0];
  words[1] = 0x00090008;
  out[4] = @as(u32, h[off / 2 + 2]);
  out[5] = @as(u32, h[off / 2 + 3]);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_pointers_of_another_width_read_and_write_halves_and_pairs_little_endian(
        tmp_path, arch):
    prog = program(tmp_path, WIDTHS, arch, "u32")
    eng, ref = both(prog, 6, np.uint32)
    np.testing.assert_array_equal(eng, ref)
    off = int(eng[0, 0, 2])
    assert off in (0, 2)
    k = off // 2
    want = [0x1111, 0x3333AAAA, off, (k + 2) << 16 | (k + 1), 8, 9]
    np.testing.assert_array_equal(eng, np.broadcast_to(np.array(want, np.uint32), eng.shape))


ARRAYS = """
const table = [4]f32 { 0.5, 1.5, 2.5, 3.5 };
var a: [4]f32;
var b = [4]f32 { 9.0, 8.0, 7.0, 6.0 };
var out: [12]f32;
var out_ptr: [*]f32 = &out;

fn fill(dst: *[4]f32) void { dst.* = [4]f32 { 1.0, 2.0, 3.0, 4.0 }; }

fn main() void {
  fill(&a);
  for (@range(u16, 4)) |i| { out[i] = a[i]; }
  var pa: *[4]f32 = &a;
  if (lay.get_x_coord() == 1) { pa = &b; }
  pa.* = b;
  (pa.*)[3] = 100.0;
  for (@range(u16, 4)) |i| { out[4 + i] = a[i]; }
  const t: [*]const f32 = &table;
  const k = lay.get_x_coord();
  for (@range(u16, 4)) |i| { out[8 + i] = t[(i + k) % 4]; }
  var total: f32 = 0.0;
  for (pa.*) |x, j| { total += x * @as(f32, j + 1); }
  out[0] = total + @as(f32, pa.*.len);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_whole_arrays_are_assigned_through_pointers_and_const_tables_read_by_pointer(
        tmp_path, arch):
    prog = program(tmp_path, ARRAYS, arch)
    table = np.array([0.5, 1.5, 2.5, 3.5])
    # out[0]: the weighted sum of what pa points to, plus its length
    pe0 = [9 + 16 + 21 + 400 + 4, 2, 3, 4, 9, 8, 7, 100, *table]
    pe1 = [9 + 16 + 21 + 400 + 4, 2, 3, 4, 1, 2, 3, 4, *np.roll(table, -1)]
    check(prog, [[pe0, pe1]])


# ------------------------------------------------------------------------------------------------
# faults and refusals


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("access, doing", [("out[1] = p[0];", "reading"),
                                           ("p[0] = 2.0;", "writing")])
def test_an_access_through_an_address_inside_no_array_faults_that_pe(tmp_path, arch, access,
                                                                      doing):
    prog = program(tmp_path, f"""
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void {{
  var p: [*]f32 = &out;
  if (lay.get_x_coord() == 1) {{ p = @bitcast([*]f32, @as(u16, 2)); }}
  {access}
  sys.unblock_cmd_stream();
}}
""", arch)
    with pytest.raises(FabricFault) as eng:
        run(prog)
    with pytest.raises(FabricFault) as ref:
        run_ref(prog)
    assert str(eng.value) == str(ref.value) == (
        f"device fault: {doing} f32 through a pointer: its address is not inside an array, or "
        "not a multiple of 4 bytes at PE (1, 0)")


@pytest.mark.parametrize("body, where, message", [
    ("""
var a: [2]f32;
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void { const n: u32 = @bitcast(u32, &a); out[0] = @as(f32, n); }
""", "@bitcast(u32", "@bitcast of a pointer to u32: a pointer is 16 bits wide"),
    ("""
const table = [2]f32 { 1.0, 2.0 };
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void { const t: [*]const f32 = &table; t[0] = 3.0; }
""", "t[0] = 3.0", "cannot assign through a pointer to const"),
    ("""
const table = [2]f32 { 1.0, 2.0 };
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void { var t: [*]f32 = &table; t[0] = 3.0; }
""", "var t", "expected [*]f32, got a pointer to const"),
    ("""
var a: [2]i32;
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void { var p: [*]f32 = &out; p = &a; }
""", "p = &a", "'p': expected [*]f32, got *[2]i32"),
    ("""
var a: [2]f32;
var out: [2]f32;
var out_ptr: [*]f32 = &out;
var cur: [*]f32;
fn main() void { cur = &a; }
comptime { @export_symbol(cur, "cur"); }
""", "@export_symbol(cur", "@export_symbol of pointer variable 'cur': it needs an initial "
     "pointer (like &A), which gives the host the type of what it points to"),
])
def test_what_stays_refused_is_refused_where_it_is_written(tmp_path, body, where, message):
    e = refused(tmp_path, body)
    assert message in str(e)
    assert (e.line, e.col) == at(body, where) and e.file.endswith("pe.csl")


# ------------------------------------------------------------------------------------------------
# <malloc>


MALLOC = """
const mem = @import_module("<malloc>", .{ .buffer_num_words = 16 });
var out: [10]f32;
var out_ptr: [*]f32 = &out;

fn main() void {
  const x = @as(f32, lay.get_x_coord());
  const h = mem.malloc_u16(3);
  const v = mem.malloc(f32, 4);
  for (@range(u16, 3)) |i| { h[i] = 7 * i + 1; }
  for (@range(u16, 4)) |i| { v[i] = @as(f32, i) * 0.5 + x; }
  out[0] = v[0] + v[1] + v[2] + v[3];
  out[1] = @as(f32, h[0] + h[1] + h[2]);
  out[2] = @as(f32, mem.has_enough_double_words(2));
  out[3] = @as(f32, mem.has_enough_double_words(3));
  out[4] = @as(f32, mem.has_enough_words(4)) + @as(f32, mem.has_enough_space(u16, 6));
  out[9] = v[@as(u16, x) + 1];
  mem.free();
  const again = mem.malloc_f32(2);
  again[1] = 9.0;
  out[5] = @as(f32, @bitcast(u16, again) % 4);
  out[6] = @as(f32, again == @ptrcast([*]f32, h) or @bitcast(u16, again) == @bitcast(u16, h) + 2);
  const w = mem.malloc_i32(2);
  w[0] = -5;
  out[7] = @as(f32, w[0]);
  out[8] = @as(f32, @bitcast(u16, w) - @bitcast(u16, again));
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_malloc_hands_out_aligned_runtime_pointers_from_one_arena_and_free_empties_it(
        tmp_path, arch):
    prog = program(tmp_path, MALLOC, arch)
    rows = []
    for x in (0.0, 1.0):
        v = np.arange(4) * 0.5 + x
        # 3 u16 words, then (after at most one pad word) 4 f32 = 8 words: 11 or 12 of 16
        # used, room for 2 more f32 and 4 more u16; after free() the f32 come first
        rows.append([v.sum(), 1 + 8 + 15, 1, 0, 1, 0, 1, -5, 8, v[int(x) + 1]])
    check(prog, [rows])


@pytest.mark.parametrize("arch", ARCHES)
def test_malloc_with_asserts_faults_an_allocation_that_does_not_fit(tmp_path, arch):
    prog = program(tmp_path, """
const mem = @import_module("<malloc>", .{ .buffer_num_words = 8, .asserts_enabled = true });
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void {
  const p = mem.malloc_f32(4 + lay.get_x_coord());
  p[0] = 1.0;
  out[0] = p[0];
  sys.unblock_cmd_stream();
}
""", arch)
    with pytest.raises(FabricFault) as eng:
        run(prog)
    with pytest.raises(FabricFault) as ref:
        run_ref(prog)
    assert str(eng.value) == str(ref.value)
    assert "@assert failed at" in str(eng.value) and "malloc.csl" in str(eng.value)
    assert str(eng.value).endswith("at PE (1, 0)")


# ------------------------------------------------------------------------------------------------
# advertised symbols


SYMBOLS = """
var a = [3]f32 { 1.0, 2.0, 3.0 };
var b = [2]f32 { 10.0, 20.0 };
var k: i32 = 7;
var m: i32 = -9;
var a_ptr: [*]f32 = &a;
var b_ptr: [*]f32 = &b;
var out: [6]f32;
var out_ptr: [*]f32 = &out;

fn main() void {
  const second = lay.get_x_coord() == 1;
  const which: u16 = if (second) @get_symbol_id(b_ptr) else @get_symbol_id(a_ptr);
  const p = @ptrcast([*]f32, @get_tensor_ptr(which));
  out[0] = p[1];
  out[1] = @as(f32, @has_exported_tensors());
  out[2] = @as(f32, @get_symbol_id(a_ptr));
  out[3] = @as(f32, @get_symbol_id(main));
  const scalar: u16 = if (second) @get_symbol_id(m) else @get_symbol_id(k);
  out[4] = @as(f32, @get_symbol_value(i32, scalar));
  out[5] = @as(f32, @get_symbol_id(k));
  sys.unblock_cmd_stream();
}

comptime {
  @export_symbol(a_ptr, "a");
  @export_symbol(b_ptr, "b");
  @export_symbol(k, "k");
  @export_symbol(m, "m");
  @export_symbol(out_ptr, "out");
  @export_symbol(main);
}
"""

SYMBOL_EXPORTS = """@export_name("out", [*]f32, true);
@export_name("k", [*]i32, true);
@export_name("a", [*]f32, true);
@export_name("b", [*]f32, true);
@export_name("m", [*]i32, true);
@export_name("main", fn()void);"""


@pytest.mark.parametrize("arch", ARCHES)
def test_symbol_ids_pick_advertised_tensors_and_values_at_run_time(tmp_path, arch):
    prog = compile_pe(tmp_path, HEAD + SYMBOLS, SYMBOL_EXPORTS, arch=arch)
    r = run(prog)
    ids = {name: r.get_id(name) for name in ("a", "k", "main")}
    assert ids == {"a": 2, "k": 1, "main": 5}
    check(prog, [[[2, 1, 2, 5, 7, 1], [20, 1, 2, 5, -9, 1]]])


def test_get_symbol_id_of_a_symbol_not_advertised_is_refused_where_written(tmp_path):
    body = """
var a = [3]f32 { 1.0, 2.0, 3.0 };
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void { out[0] = @as(f32, @get_symbol_id(a)); }
"""
    e = refused(tmp_path, body)
    assert "@get_symbol_id: the global 'a' is not advertised with @export_symbol" in str(e)
    assert (e.line, e.col) == at(body, "@get_symbol_id")


# ------------------------------------------------------------------------------------------------
# DSDs over runtime pointers


DSDS = """
const mem = @import_module("<malloc>", .{ .buffer_num_words = 32 });
var a = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
var b = [4]f32 { 10.0, 20.0, 30.0, 40.0 };
var out: [8]f32;
var out_ptr: [*]f32 = &out;
var src: [*]f32 = &a;
const d4 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });

fn main() void {
  if (lay.get_x_coord() == 1) { src = &b; }
  const m = mem.malloc_f32(4);
  const dst = @set_dsd_base_addr(d4, m);
  @fmovs(dst, @set_dsd_base_addr(d4, src));
  @fadds(dst, dst, 0.5);
  const tail = @set_dsd_length(@set_dsd_base_addr(d4, &m[2]), 2);
  @fmuls(tail, tail, 2.0);
  for (@range(u16, 4)) |i| { out[i] = m[i]; out[4 + i] = src[i]; }
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_dsds_take_their_base_from_runtime_pointers_and_malloc_allocations(tmp_path, arch):
    prog = program(tmp_path, DSDS, arch)
    rows = []
    for src in ([1, 2, 3, 4], [10, 20, 30, 40]):
        m = np.array(src, np.float32) + 0.5
        m[2:] *= 2
        rows.append([*m, *src])
    check(prog, [rows])


DSD_FIELDS = """
var a = [6]f32 { 1.0, 2.0, 3.0, 4.0, 5.0, 6.0 };
var b = [6]f32 { 10.0, 20.0, 30.0, 40.0, 50.0, 60.0 };
var out: [12]f32;
var out_ptr: [*]f32 = &out;

fn twice_every_other(p: [*]f32) void {
  const d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> p[2 * i + 1] });
  @fmuls(d, d, 2.0);
}

fn add_first(p: [*]f32, n: u16, x: f32) void {
  const d = @get_dsd(mem1d_dsd, .{ .base_address = p, .extent = n });
  @fadds(d, d, x);
}

fn main() void {
  var p: [*]f32 = &a;
  if (lay.get_x_coord() == 1) { p = &b; }
  twice_every_other(p);
  add_first(p, 2 + lay.get_x_coord(), 0.5);
  for (@range(u16, 6)) |i| { out[i] = a[i]; out[6 + i] = b[i]; }
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_dsds_built_over_a_runtime_pointer_by_tensor_access_and_base_address(tmp_path, arch):
    prog = program(tmp_path, DSD_FIELDS, arch)
    rows = []
    for x in (0, 1):
        a = np.arange(1, 7, dtype=np.float32)
        b = a * 10
        t = [a, b][x]
        t[1::2] *= 2
        t[:2 + x] += 0.5
        rows.append([*a, *b])
    check(prog, [rows])


@pytest.mark.parametrize("arch", ARCHES)
def test_the_address_of_a_parameter_points_to_a_copy_the_function_can_change(tmp_path, arch):
    prog = program(tmp_path, """
var out: [3]i32;
var out_ptr: [*]i32 = &out;
var a = [2]i32 { 4, 5 };

fn triple(x: *i32) void { x.* *= 3; }

fn f(n: i32, p: [*]i32) i32 {
  triple(&n);
  const pp = &p;
  out[1] = (pp.*)[1];
  return n + 1;
}

fn main() void {
  var k: i32 = @as(i32, lay.get_x_coord()) + 2;
  var q: [*]i32 = &a;
  out[0] = f(k, q);
  out[2] = k;
  sys.unblock_cmd_stream();
}
""", arch, "i32")
    check(prog, [[[7, 5, 2], [10, 5, 3]]], np.int32)


@pytest.mark.parametrize("arch", ARCHES)
def test_an_array_pointer_cast_to_other_elements_dereferences_to_them(tmp_path, arch):
    prog = program(tmp_path, """
var f = [2]f32 { 1.0, -2.0 };
var out: [4]u32;
var out_ptr: [*]u32 = &out;
fn main() void {
  const bits = @ptrcast(*[2]u32, &f);
  out[0] = (bits.*)[1];
  bits.* = [2]u32 { 0x40400000, 7 };
  out[1] = @bitcast(u32, f[0]);
  out[2] = (bits.*)[1];
  (bits.*)[0] += 1;
  out[3] = @bitcast(u32, f[0]);
  sys.unblock_cmd_stream();
}
""", arch, "u32")
    check(prog, [[np.float32(-2.0).view(np.uint32), 0x40400000, 7, 0x40400001]], np.uint32)


@pytest.mark.parametrize("arch", ARCHES)
def test_runtime_pointers_convert_to_const_and_one_element_array_pointers(tmp_path, arch):
    prog = program(tmp_path, """
var a = [3]i32 { 4, 5, 6 };
var b = [3]i32 { 40, 50, 60 };
var out: [3]i32;
var out_ptr: [*]i32 = &out;

fn last(p: [*]const i32) i32 { return p[2]; }
fn only(q: *[1]i32) i32 { return (q.*)[0]; }
fn whole(r: *[3]i32) [*]i32 { return r; }

fn main() void {
  var p: [*]i32 = &a;
  var e: *i32 = &a[1];
  var w: *[3]i32 = &a;
  if (lay.get_x_coord() == 1) { p = &b; e = &b[1]; w = &b; }
  out[0] = last(p);
  out[1] = only(e);
  out[2] = whole(w)[0];
  sys.unblock_cmd_stream();
}
""", arch, "i32")
    check(prog, [[[6, 5, 4], [60, 50, 40]]], np.int32)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_scalar_seen_as_a_one_element_array(tmp_path, arch):
    """`&x` of a scalar global, passed as a `*[1]i32`: `(p.*)[0]` reads and writes x."""
    prog = program(tmp_path, """
var x: i32 = 5;
var out: [3]i32;
var out_ptr: [*]i32 = &out;
fn bump(p: *[1]i32, by: i32) i32 { (p.*)[0] += by; return (p.*)[0]; }
fn main() void {
  out[0] = bump(&x, 2 + @as(i32, lay.get_x_coord()));
  out[1] = x;
  out[2] = bump(&x, 10);
  sys.unblock_cmd_stream();
}
""", arch, "i32")
    check(prog, [[[7, 7, 17], [8, 8, 18]]], np.int32)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_map_callback_writes_through_a_runtime_pointer_element_by_element(tmp_path, arch):
    # the pointer is chosen per PE at run time; each call writes through it and into a
    # variable, and reads what the call before wrote: the elements run in order
    check(program(tmp_path, """
var a = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
var b: [4]f32;
var sums = [2]f32 { 10.0, 20.0 };
var s: [*]f32 = &sums;
var calls: f32 = 0.0;
var out: [6]f32;
var out_ptr: [*]f32 = &out;
const da = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });
const db = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> b[i] });
fn acc(x: f32) f32 { s[0] = s[0] + x; calls += 1.0; return s[0] * calls; }
fn note(x: f32) void { const p: *f32 = &out[@as(u16, x) + 1]; p.* = x * 10.0; }
fn main() void {
  if (lay.get_x_coord() == 1) { s = &sums[1]; }
  @map(acc, da, db);
  out[0] = b[0]; out[1] = b[1]; out[2] = b[2]; out[3] = b[3];
  out[4] = sums[0] + sums[1];
  @map(note, @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> a[i + 3] }));
  sys.unblock_cmd_stream();
}
""", arch), [[11.0, 26.0, 48.0, 80.0, 20.0 + 20.0, 40.0],
                 [21.0, 46.0, 78.0, 120.0, 10.0 + 30.0, 40.0]])


# ------------------------------------------------------------------------------------------------
# a runtime pointer as the scalar destination of a DSD operation


@pytest.mark.parametrize("arch", ARCHES)
def test_a_dsd_operation_writes_its_last_element_through_a_runtime_pointer(tmp_path, arch):
    # the pointer is chosen at run time per PE (x = 0 writes out[1] first, x = 1 out[2]);
    # @fmovs leaves the last element moved, @fadds(p, s, D) the last sum s + d[3]
    prog = program(tmp_path, """
var a = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
var out = [4]f32 { -1.0, -1.0, -1.0, -1.0 };
var out_ptr: [*]f32 = &out;
var p: *f32 = &out[0];
const d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });
fn main() void {
  if (lay.get_x_coord() == 0) { p = &out[1]; } else { p = &out[2]; }
  @fmovs(p, d);
  p = &out[3];
  @fadds(p, 10.0, d);
  sys.unblock_cmd_stream();
}
""", arch)
    check(prog, [[[-1, 4, -1, 14], [-1, -1, 4, 14]]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_16_bit_operation_writes_through_a_pointer_parameter(tmp_path, arch):
    prog = program(tmp_path, """
var a = [3]u16 { 5, 6, 7 };
var r = [2]u16 { 0, 0 };
var out: [2]u32;
var out_ptr: [*]u32 = &out;
const d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> a[i] });
fn last_into(q: *u16) void { @mov16(q, d); }
fn main() void {
  last_into(&r[lay.get_x_coord()]);
  out[0] = r[0];
  out[1] = r[1];
  sys.unblock_cmd_stream();
}
""", arch, "u32")
    check(prog, [[[7, 0], [0, 7]]], np.uint32)


def test_a_runtime_destination_pointer_is_refused_where_it_cannot_be_written(tmp_path):
    base = """
var a = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
var out: [4]f32;
var out_ptr: [*]f32 = &out;
const d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });
"""
    body = base + "fn main() void { var c: *const f32 = &out[1]; c = &out[2]; @fmovs(c, d); }\n"
    e = refused(tmp_path, body)
    assert "@fmovs: cannot write through *const f32 (a pointer to const)" in str(e)
    assert (e.line, e.col) == at(body, "c, d);")

