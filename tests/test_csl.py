"""The CSL front end: comptime evaluation, runtime lowering and errors, on small programs.

The tests parametrised over the arch that run a program run it in check mode (`launched(...,
check=True)`): the reference interpreter runs beside the engine and every command, the D2H
reads included, must agree; the other tests that run one run the engine only."""

from __future__ import annotations

import time

import numpy as np
import pytest
from csl_harness import compile_pe, launched, read, run, write

from wsejax import CslError
from wsejax.csl import compile_csl

ARCHES = ["wse2", "wse3"]

HEAD = """
param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_comptime_language_features_fold_to_constants(tmp_path, arch):
    src = HEAD + """
const Pair = struct { a: i32, b: i32 = 7 };
const E = enum(u16) { red, white = 4, blue };

fn fib(n: comptime_int) comptime_int {
  var a = 0;
  var b = 1;
  var k = 0;
  while (k < n) : (k += 1) {
    const t = a + b;
    a = b;
    b = t;
  }
  return a;
}

inline fn twice(x: anytype) @type_of(x) { return x + x; }

const s = @concat_structs(.{ .x = 3 }, .{ .y = 4 });
const tup = .{ 10, 20, 30 };
const found = blk: {
  for (@range(i32, 0, 10, 1)) |v| {
    if (v * v > 30) break :blk v;
  }
  break :blk -1;
};
const picked = switch (@as(i32, 2)) { 0, 1 => 100, 2 => 200, else => 300 };
const p = Pair { .a = 1 };
const name = "hello";

var out: [9]i32;

fn main() void {
  out[0] = fib(10);
  out[1] = @field(s, "x") * s.y;
  out[2] = tup[1] + tup.len;
  out[3] = found;
  out[4] = picked;
  out[5] = p.b;
  out[6] = @as(i32, @intFromEnum_placeholder);
  out[7] = @strlen(name);
  out[8] = twice(@as(i32, 21));
  sys.unblock_cmd_stream();
}

comptime {
  @comptime_assert(@as(u16, 1) == 1);
  @export_symbol(out, "out");
  @export_symbol(main);
}
"""
    src = src.replace("@as(i32, @intFromEnum_placeholder)", "@as(i32, if (E.blue == E.blue) 1 "
                      "else 0) + @as(i32, @get_int(E.blue))")
    prog = compile_pe(tmp_path, src, """
        @export_name("out", [*]i32, false);
        @export_name("main", fn()void);""", arch=arch)
    out = read(launched(prog, check=True), "out", 9, np.int32)
    assert out[0, 0].tolist() == [55, 12, 23, 6, 200, 7, 1 + 1, 5, 42]
    assert (out[0, 0] == out[0, 1]).all()


@pytest.mark.parametrize("arch", ARCHES)
def test_comptime_print_writes_its_arguments_to_stderr_while_compiling(tmp_path, arch, capsys):
    src = HEAD + """
const k: i16 = 3;
fn half(x: comptime_float) comptime_float { return x / 2.0; }
comptime { @comptime_print("k + 4 =", k + 4, "half", half(5.0), if (@is_arch("wse3")) 3 else 2); }
fn main() void { sys.unblock_cmd_stream(); }
comptime { @export_symbol(main); }
"""
    compile_pe(tmp_path, src, '@export_name("main", fn()void);', w=1, arch=arch)
    assert capsys.readouterr().err.splitlines() == [f"k + 4 = 7 half 2.5 {arch[-1]}"]


@pytest.mark.parametrize("arch", ARCHES)
def test_runtime_control_flow_pointers_and_calls(tmp_path, arch):
    src = HEAD + """
const lay = @import_module("<layout>");
var data = [6]f32 { 1.0, -2.0, 3.5, 0.25, -8.0, 4.0 };
var out: [6]f32;
var count: i16 = 0;

fn clamp(v: f32, hi: f32) f32 {
  if (v > hi) { return hi; }
  return v;
}

fn store(dst: [*]f32, i: i16, v: f32) void {
  dst[i] = v;
}

fn bump(c: *i16) void {
  c.* += 1;
}

fn main() void {
  const x = lay.get_x_coord();
  var i: i16 = 0;
  while (i < 6) : (i += 1) {
    if (i == 2) continue;
    if (data[i] < -5.0) break;
    store(&out, i, clamp(data[i] * 2.0, 5.0) + @as(f32, x));
    bump(&count);
  }
  for (@range(i16, 3)) |k| {
    out[5] += @as(f32, k);
  }
  sys.unblock_cmd_stream();
}

comptime {
  @export_symbol(out, "out");
  @export_symbol(count, "count");
  @export_symbol(main);
}
"""
    prog = compile_pe(tmp_path, src, """
        @export_name("out", [*]f32, false);
        @export_name("count", [*]i16, false);
        @export_name("main", fn()void);""", arch=arch)
    r = launched(prog, check=True)
    out = read(r, "out", 6)
    for x in range(2):
        want = [2.0 + x, -4.0 + x, 0.0, 0.5 + x, 0.0, 3.0]
        np.testing.assert_array_equal(out[0, x], np.float32(want))
    count = np.zeros(2, np.uint32)
    r.memcpy_d2h(count, r.get_id("count"), 0, 0, 2, 1, 1, streaming=False, data_type=1)
    assert count.tolist() == [3, 3]


def test_import_module_instances_are_independent(tmp_path):
    lib = """
param scale: f32;
var calls: i32 = 0;
fn apply(x: f32) f32 {
  calls += 1;
  return x * scale;
}
"""
    src = HEAD + """
const a = @import_module("lib.csl", .{ .scale = 2.0 });
const b = @import_module("lib.csl", .{ .scale = 10.0 });
var out: [3]f32;
fn main() void {
  out[0] = a.apply(1.5);
  out[1] = b.apply(1.5) + a.apply(1.0);
  out[2] = @as(f32, a.calls * 100 + b.calls);
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(out, "out"); @export_symbol(main); }
"""
    prog = compile_pe(tmp_path, src, """
        @export_name("out", [*]f32, false);
        @export_name("main", fn()void);""", files={"lib.csl": lib})
    out = read(run(prog), "out", 3)
    np.testing.assert_array_equal(out[0, 0], np.float32([3.0, 17.0, 201.0]))


def test_params_from_the_command_line_reach_the_pe(tmp_path):
    write(tmp_path, {"layout.csl": """
param N: i16;
param scale: u16 = 3;
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 1, .height = 1 });
layout {
  @set_rectangle(1, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0), .n = N,
                                   .k = scale });
  @export_name("out", [*]i32, false);
  @export_name("main", fn()void);
}
""", "pe.csl": HEAD + """
param n: i16;
param k: u16;
var out: [n]i32;
fn main() void {
  for (@range(i16, n)) |i| { out[i] = @as(i32, i) * @as(i32, k); }
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(out, "out"); @export_symbol(main); }
"""})
    prog = compile_csl(tmp_path / "layout.csl", params={"N": 5}, memcpy=True)
    out = read(run(prog), "out", 5, np.int32)
    assert out[0, 0].tolist() == [0, 3, 6, 9, 12]
    assert dict(prog.params) == {"N": 5}


def test_memcpy_params_never_split_a_tile_class_and_128x128_compiles_fast(tmp_path):
    src = HEAD + """
var a: [4]f32;
fn main() void { sys.unblock_cmd_stream(); }
comptime { @export_symbol(a, "a"); @export_symbol(main); }
"""
    t = time.perf_counter()
    prog = compile_pe(tmp_path, src, """
        @export_name("a", [*]f32, true);
        @export_name("main", fn()void);""", w=128, h=128)
    took = time.perf_counter() - t
    assert len(prog.classes) == 1
    assert took < 30, took
    r = run(prog, launches=(("main",), ("main",)))
    assert r.engine.launch_fn("main")._cache_size() == 1


# ------------------------------------------------------------------------------------------------
# Errors: file:line:col, the source line and a caret


def error_of(tmp_path, body: str, exports='@export_name("main", fn()void);',
             arch: str = "wse2") -> CslError:
    src = HEAD + body + "\ncomptime { @export_symbol(main); }\n"
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, exports, arch=arch)
    return err.value


@pytest.mark.parametrize("body,line,col,message", [
    ("fn main() void { undefined_name = 1; }", 4, 18, "unknown name 'undefined_name'"),
    ("var x: f32 = 0.0;\nvar k: i16 = 2;\nfn main() void { x = k; }", 6, 18,
     "expected f32, got i16"),
    ("fn main() void { @nosuchbuiltin(); }", 4, 18, "unknown builtin @nosuchbuiltin"),
    ("comptime { @comptime_assert(1 == 2, \"nope\"); }\nfn main() void {}", 4, 12,
     "@comptime_assert failed: nope"),
    ("var a: [4]f32;\nconst d = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "fn main() void { @fmacs(d, d, 1.0, 2.0); }", 6, 18, "does not accept operand form"),
    ("fn main() void { const q = @get_filter_id(2.5); }", 4, 43,
     "@get_filter_id: expected a color (0 to 23), got the comptime_float 2.5"),
    ("const v: u8 = 300;\nvar w: u8 = 0;\nfn main() void { w = v; }", 4, 15,
     "300 does not fit in u8"),
])
@pytest.mark.parametrize("arch", ARCHES)
def test_errors_point_at_the_source(tmp_path, body, line, col, message, arch):
    err = error_of(tmp_path, body, arch=arch)
    assert message in err.message
    assert (err.line, err.col) == (line, col), str(err)
    assert err.file.endswith("pe.csl")
    text = str(err)
    assert f"pe.csl:{line}:{col}:" in text and text.splitlines()[-1].strip() == "^"


def test_memory_over_budget_points_at_the_tile(tmp_path):
    # each array fits, together they do not: the tile that holds them is named
    src = HEAD + """
var big: [8000]f32;
var more: [5000]f32;
fn main() void { big[0] = 1.0; more[0] = 2.0; sys.unblock_cmd_stream(); }
comptime { @export_symbol(main); }
"""
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, '@export_name("main", fn()void);')
    assert "needs 52000 bytes" in err.value.message and "'big'" in err.value.message
    assert err.value.file.endswith("layout.csl") and "@set_tile_code" in str(err.value)


def test_one_array_over_budget_points_at_its_declaration(tmp_path):
    src = HEAD + """
var big: [13000]f32;
fn main() void { big[0] = 1.0; sys.unblock_cmd_stream(); }
comptime { @export_symbol(main); }
"""
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, '@export_name("main", fn()void);')
    assert "'var big': [13000]f32 needs 52000 bytes" in err.value.message
    assert err.value.file.endswith("pe.csl") and "var big" in str(err.value)


def test_tiles_differing_in_runtime_params_share_one_class_with_per_pe_values(tmp_path):
    write(tmp_path, {"layout.csl": """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 4, .height = 3 });
layout {
  @set_rectangle(4, 3);
  for (@range(i16, 4)) |x| {
    for (@range(i16, 3)) |y| {
      @set_tile_code(x, y, "pe.csl", .{ .memcpy_params = memcpy.get_params(x),
                                       .pe_id = x * 10 + y, .scale = 2.5, .n = 3 });
    }
  }
  @export_name("out", [*]f32, false);
  @export_name("main", fn()void);
}
""", "pe.csl": HEAD + """
param pe_id: u16;
param scale: f32;
param n: i16;
var out: [n]f32;
fn main() void {
  for (@range(i16, n)) |i| { out[i] = @as(f32, pe_id) * scale + @as(f32, i); }
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(out, "out"); @export_symbol(main); }
"""})
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True)
    assert len(prog.classes) == 1
    out = read(run(prog), "out", 3)
    for y in range(3):
        for x in range(4):
            np.testing.assert_array_equal(out[y, x], (x * 10 + y) * 2.5 + np.arange(3))


def test_a_param_needed_at_comptime_still_splits_classes(tmp_path):
    write(tmp_path, {"layout.csl": """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0), .n = 2 });
  @set_tile_code(1, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(1), .n = 3 });
  @export_name("main", fn()void);
}
""", "pe.csl": HEAD + """
param n: i16;
var out: [n]f32;
fn main() void { out[0] = 1.0; sys.unblock_cmd_stream(); }
comptime { @export_symbol(main); }
"""})
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True)
    assert len(prog.classes) == 2
    assert sorted(s.shape for pe in prog.classes for s in pe.symbols) == [(2,), (3,)]


@pytest.mark.parametrize("arch", ARCHES)
def test_in_order_ops_pointers_to_locals_const_tables_and_raw_16bit_scalars(tmp_path, arch):
    src = HEAD + """
var acc = @zeros([2]f32);
var x = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
var shift = [5]f32 { 1.0, 2.0, 3.0, 4.0, 5.0 };
var w = [4]u16 { 1, 2, 3, 4 };
var out = @zeros([6]f32);
const table = [4]f32 { 0.5, 1.5, 2.5, 3.5 };
const acc_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> acc[0] });
const x_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> x[i] });
const lo = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> shift[i] });
const hi = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> shift[i + 1] });
const w_dsd = @get_dsd(mem1d_dsd, .{ .base_address = &w, .extent = 4 });
var minus: i16 = -3;

fn set(p: *f32, v: f32) void { p.* = v; }

fn main() void {
  @fadds(acc_dsd, acc_dsd, x_dsd);          // the stride-0 reduction idiom: 1+2+3+4
  @fmovs(hi, lo);                          // overlapping copy, in order: all 1.0
  @add16(w_dsd, w_dsd, minus);             // an i16 scalar is its raw 16-bit pattern
  @add16(w_dsd, w_dsd, -1);
  var t: f32 = 0.0;
  set(&t, 2.5);
  out[0] = t;
  var i: i16 = 0;
  while (i < 4) : (i += 1) {
    const v: f32 = if (i < 2) 10.0 else 20.0;   // the declared type types the branches
    out[1] += table[@as(u16, i)] + v;
  }
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(acc, "acc"); @export_symbol(shift, "shift"); @export_symbol(w, "w");
  @export_symbol(out, "out"); @export_symbol(main);
}
"""
    prog = compile_pe(tmp_path, src, """
        @export_name("acc", [*]f32, false);
        @export_name("shift", [*]f32, false);
        @export_name("w", [*]u16, false);
        @export_name("out", [*]f32, false);
        @export_name("main", fn()void);""", w=1, arch=arch)
    r = launched(prog, check=True)
    assert read(r, "acc", 2)[0, 0].tolist() == [10.0, 0.0]
    assert read(r, "shift", 5)[0, 0].tolist() == [1.0] * 5
    w = np.zeros(4, np.uint32)
    r.memcpy_d2h(w, r.get_id("w"), 0, 0, 1, 1, 4, streaming=False, data_type=1)
    assert w.tolist() == [(v - 4) & 0xFFFF for v in (1, 2, 3, 4)]
    out = read(r, "out", 6)[0, 0]
    assert out[0] == 2.5 and out[1] == (0.5 + 1.5 + 2.5 + 3.5) + 60.0


def test_a_runtime_condition_in_a_comptime_context_is_an_error(tmp_path):
    src = HEAD + """
const lay = @import_module("<layout>");
var out: f32 = 0.0;
fn main() void {
  comptime { if (lay.get_x_coord() == 0) { } }
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(main); }
"""
    with pytest.raises(CslError):
        compile_pe(tmp_path, src, '@export_name("main", fn()void);')


def test_csl_tasks_activate_block_unblock_and_deadlock_reports(tmp_path):
    src = HEAD + """
const lay = @import_module("<layout>");
const first_id = @get_local_task_id(3);
const second_id = @get_local_task_id(5);
const last_id = @get_local_task_id(9);
var log = @zeros([8]i32);
var n: i32 = 0;
fn note(v: i32) void { log[n] = v; n += 1; }
task first() void { note(1); @activate(last_id); }
task second() void { note(2); @unblock(last_id); }
task last() void { note(3); sys.unblock_cmd_stream(); }
fn main() void { note(0); @activate(second_id); @activate(first_id); }
fn stuck() void {
  if (lay.get_x_coord() == 1) { sys.unblock_cmd_stream(); }
  @block(last_id);
  @activate(last_id);
}
comptime {
  @bind_local_task(first, first_id);
  @bind_local_task(second, second_id);
  @bind_local_task(last, last_id);
  @block(last_id);
  @export_symbol(log, "log");
  @export_symbol(main);
  @export_symbol(stuck);
}
"""
    prog = compile_pe(tmp_path, src, """
        @export_name("log", [*]i32, false);
        @export_name("main", fn()void);
        @export_name("stuck", fn()void);""", w=3)
    r = run(prog)
    assert read(r, "log", 8, np.int32)[0].tolist() == [[0, 1, 2, 3, 0, 0, 0, 0]] * 3
    from wsejax import DeadlockError

    with pytest.raises(DeadlockError) as err:
        r.launch("stuck")
    assert err.value.pes == [(0, 0), (2, 0)]
    assert "active task IDs [9], blocked task IDs [9]" in str(err.value)


@pytest.mark.parametrize("arch", ARCHES)
def test_reserved_and_out_of_range_task_ids(tmp_path, arch):
    for body, message in (
            *((f"task t() void {{}}\ncomptime {{ @bind_local_task(t, @get_local_task_id({n})); }}",
               f"local task ID {n} is reserved by memcpy") for n in (27, 28, 30)),
            ("const k = @get_local_task_id(31);", "out of range")):
        src = HEAD + body + "\nfn main() void { _ = k; }\ncomptime { @export_symbol(main); }\n" \
            if "const k" in body else HEAD + body + "\nfn main() void {}\n" \
            "comptime { @export_symbol(main); }\n"
        with pytest.raises(CslError, match=message):
            compile_pe(tmp_path, src, '@export_name("main", fn()void);', arch=arch)


ROUTE_LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 3, .height = 2 });
const c = @get_color(4);
layout {
  @set_rectangle(3, 2);
  for (@range(i16, 3)) |x| {
    for (@range(i16, 2)) |y| {
      @set_tile_code(x, y, "pe.csl", .{ .memcpy_params = memcpy.get_params(x) });
    }
  }
  @set_color_config(0, 0, c, .{ .routes = .{ .rx = .{RAMP}, .tx = .{EAST} } });
  @set_color_config(1, 0, c, .{ .routes = .{ .rx = .{WEST}, .tx = .{RAMP, EAST} } });
  @set_color_config(2, 0, c, .{ .routes = .{ .rx = .{WEST}, .tx = .{RAMP, SOUTH} } });
  @set_color_config(2, 1, c, .{ .routes = .{ .rx = .{NORTH}, .tx = LAST } });
  @export_name("main", fn()void);
}
"""


def test_color_configs_resolve_to_multicast_routes_and_errors_point_at_them(tmp_path):
    pe = HEAD + "fn main() void { sys.unblock_cmd_stream(); }\ncomptime { @export_symbol(main); }"
    write(tmp_path, {"layout.csl": ROUTE_LAYOUT.replace("LAST", "RAMP"), "pe.csl": pe})
    routes = compile_csl(tmp_path / "layout.csl", memcpy=True).resolved[4]
    assert routes.sources.tolist() == [[0, 0]]
    assert routes.dest_source.tolist() == [[-1, 0, 0], [-1, -1, 0]]
    assert routes.hops.tolist() == [[-1, 1, 2], [-1, -1, 3]]
    write(tmp_path, {"layout.csl": ROUTE_LAYOUT.replace("LAST", ".{RAMP, EAST}")})
    with pytest.raises(CslError, match="off the edge of the 3x2 rectangle") as err:
        compile_csl(tmp_path / "layout.csl", memcpy=True)
    assert err.value.file.endswith("layout.csl") and "@set_color_config" in str(err.value)
    write(tmp_path, {"layout.csl": ROUTE_LAYOUT.replace("@get_color(4)", "@get_color(22)")
                     .replace("LAST", "RAMP")})
    with pytest.raises(CslError, match="reserved by memcpy"):
        compile_csl(tmp_path / "layout.csl", memcpy=True)
