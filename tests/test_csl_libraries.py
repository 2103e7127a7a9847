"""Library modules: `<timer>` (written in CSL, shipped with the package), `<directions>` and
`<dsd_ops>` (native), each run on the engine and the reference interpreter on both arches and
checked by hand or against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import out_program, out_row

from wsejax import CslError

ARCHES = ["wse2", "wse3"]

program = out_program
outputs = out_row


# ------------------------------------------------------------------------------------------------
# <timer>

TIMER = """
const timer = @import_module("<timer>", .{ .timerCount = 2 });
const time = @import_module("<time>");
var out: [8]u16;
var out_ptr: [*]u16 = &out;
var t0: timer.timerType;
var t1: timer.timerType;
var before: [3]u16;
var after: [3]u16;
var acc: i32 = 0;
fn work(n: i32) void {
  var i: i32 = 0;
  while (i < n) : (i += 1) { acc += i; }
}
fn main() void {
  const n = 3 + 4 * @as(i32, lay.get_x_coord());
  timer.start(0);
  timer.start(1);
  work(n);
  timer.stop(1);
  timer.stop(0);
  timer.elapsed(0, &t0);
  timer.elapsed(1, &t1);
  time.get_timestamp(&before);
  work(n);
  time.get_timestamp(&after);
  out[0] = t0[0]; out[1] = t0[1]; out[2] = t0[2];
  out[3] = t1[0]; out[4] = t1[1]; out[5] = t1[2];
  out[6] = after[0] - before[0];
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_timers_measure_the_cycles_between_start_and_stop(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, TIMER, "u16", arch), 8, np.uint16)
    np.testing.assert_array_equal(eng, ref)
    t0, t1, direct = eng[:, 0], eng[:, 3], eng[:, 6].astype(np.int64)
    assert (eng[:, [1, 2, 4, 5]] == 0).all()      # small counts: the high words are 0
    # timer 1 runs inside timer 0: its start and stop are one call each nearer the work
    assert (t0 > t1).all() and (t1 > 0).all()
    assert len(set((t0 - t1).tolist())) == 1
    # PE 1 works 4 iterations more than PE 0: the timers see what the counter sees
    assert int(t1[1]) - int(t1[0]) == direct[1] - direct[0] > 0


def test_a_timer_needs_its_count(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
const timer = @import_module("<timer>");
var out: [2]u16;
var out_ptr: [*]u16 = &out;
fn main() void { timer.start(0); sys.unblock_cmd_stream(); }
""", "u16")
    assert "timerCount" in str(e.value) and "timer.csl" in str(e.value)


# ------------------------------------------------------------------------------------------------
# <directions>


@pytest.mark.parametrize("arch", ARCHES)
def test_directions_rotate_and_flip(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, """
const dirs = @import_module("<directions>");
var out: [2]i32;
var out_ptr: [*]i32 = &out;
fn code(comptime d: direction) i32 {
  return if (d == NORTH) 1 else if (d == EAST) 2 else if (d == SOUTH) 3 else 4;
}
comptime {
  @comptime_assert(dirs.rotate_clockwise(NORTH) == EAST);
  @comptime_assert(dirs.rotate_clockwise(WEST) == NORTH);
  @comptime_assert(dirs.rotate_counterclockwise(NORTH) == WEST);
  @comptime_assert(dirs.rotate_counterclockwise(EAST) == NORTH);
  @comptime_assert(dirs.flip_vertical(NORTH) == SOUTH);
  @comptime_assert(dirs.flip_vertical(EAST) == EAST);
  @comptime_assert(dirs.flip_horizontal(EAST) == WEST);
  @comptime_assert(dirs.flip_horizontal(SOUTH) == SOUTH);
  @comptime_assert(dirs.flip(WEST) == EAST);
  @comptime_assert(dirs.flip(SOUTH) == NORTH);
}
fn main() void {
  out[0] = code(dirs.rotate_clockwise(dirs.flip(EAST)));
  out[1] = code(dirs.flip_vertical(dirs.rotate_counterclockwise(WEST)));
  sys.unblock_cmd_stream();
}
""", "i32", arch), 2, np.int32)
    np.testing.assert_array_equal(eng, [[1, 1], [1, 1]])   # WEST -> NORTH; SOUTH -> NORTH
    np.testing.assert_array_equal(ref, eng)


def test_ramp_has_no_direction_to_turn_to(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
const dirs = @import_module("<directions>");
const d = dirs.flip(RAMP);
var out: [2]i32;
var out_ptr: [*]i32 = &out;
fn main() void { if (d == NORTH) { out[0] = 1; } sys.unblock_cmd_stream(); }
""", "i32")
    assert "pe.csl:6:21" in str(e.value)
    assert "directions.flip takes NORTH, EAST, SOUTH or WEST, got RAMP" in str(e.value)


# ------------------------------------------------------------------------------------------------
# <dsd_ops>

DSD_OPS = """
const ops = @import_module("<dsd_ops>");
var out: [4]f32 = [4]f32 { 1.0, 2.0, 3.0, 4.0 };
var out_ptr: [*]f32 = &out;
var b = [4]f32 { 10.0, -20.0, 30.0, -40.0 };
var h = [4]f16 { 0.5, 1.5, 2.5, 3.5 };
var k = [4]i16 { 7, -8, 9, -10 };
var k2 = @zeros([4]i16);
const od = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
const bd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> b[i] });
const hd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> h[i] });
const kd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> k[i] });
const k2d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> k2[i] });
fn main() void {
  ops.add(f32, f32, od, od, bd, .{});          // out = out + b
  ops.fmac(f32, f16, od, od, hd, @as(f16, 2.0), .{});   // out += 2 h
  ops.max(f32, bd, bd, od, .{});               // b = max(b, out)
  ops.mov(i16, k2d, kd, .{});                  // k2 = k
  ops.add(i16, i16, k2d, k2d, kd, .{});        // k2 = 2 k
  ops.convert(f32, i16, bd, k2d, .{});         // b = f32(2 k)... then out = out - b
  ops.sub(f32, od, od, bd, .{});
  ops.neg(f32, od, od, .{});
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_dsd_ops_pick_the_operation_by_type(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, DSD_OPS, "f32", arch), 4, np.float32)
    out = np.array([1, 2, 3, 4], np.float32) + np.array([10, -20, 30, -40], np.float32)
    out = out + 2 * np.array([0.5, 1.5, 2.5, 3.5], np.float32)
    k = np.array([7, -8, 9, -10], np.float32)
    want = -(out - 2 * k)
    np.testing.assert_array_equal(eng, [want, want])
    np.testing.assert_array_equal(ref, eng)


def test_dsd_ops_names_the_types_it_takes(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, DSD_OPS.replace("ops.neg(f32,", "ops.neg(i16,"), "f32")
    assert "pe.csl:25:11" in str(e.value)
    assert "dsd_ops.neg has no operation for (i16); it takes (@fp16()); (f32)" in str(e.value)


def test_dsd_ops_wants_a_comptime_config(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, DSD_OPS.replace(
            "ops.neg(f32, od, od, .{});",
            "var go = lay.get_x_coord() == 0; ops.neg(f32, od, od, .{ .async = go });"), "f32")
    assert "pe.csl:25:57" in str(e.value)
    assert "dsd_ops.neg: the config must be comptime-known; .async is" in str(e.value)


def test_dsd_ops_passes_the_operands_on_to_the_builtin(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, DSD_OPS.replace("ops.mov(i16, k2d, kd, .{});",
                                          "ops.mov(i16, k2d, kd, od, .{});"), "f32")
    assert "dsd_ops.mov takes 4 arguments, got 5" in str(e.value)


# ------------------------------------------------------------------------------------------------
# <complex>

COMPLEX = """
const cx = @import_module("<complex>");
var out: [8]f32 = [8]f32 { 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0 };
var out_ptr: [*]f32 = &out;
var hs = [4]f16 { 1.001, 2.003, -3.007, 0.333 };
const k = cx.multiply_complex_64(cx.get_complex_64(1.0, 2.0), cx.get_complex_64(3.0, -1.0));
comptime { @comptime_assert(k.real == 5.0 and k.imag == 5.0); }
comptime { @comptime_assert(cx.complex(f16) == cx.complex_32); }
fn main() void {
  const a = cx.get_complex(out[0] + @as(f32, lay.get_x_coord()), @as(f32, 2.0));
  out[0] = 100.0;                      // a keeps the value it was made with
  const c = cx.multiply_complex(a, a);
  const d = cx.subtract_complex(c, k);
  out[0] = c.real; out[1] = c.imag; out[2] = d.real; out[3] = d.imag;
  const p = cx.multiply_complex_32(cx.get_complex_32(hs[0], hs[1]),
                                   cx.complex_32 { .real = hs[2], .imag = hs[3] });
  const q = cx.add_complex(p, cx.get_complex(hs[3], hs[0]));
  out[4] = p.real; out[5] = p.imag; out[6] = q.real; out[7] = q.imag;
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_complex_arithmetic(tmp_path, arch):
    eng, ref = outputs(program(tmp_path, COMPLEX, "f32", arch), 8, np.float32)
    np.testing.assert_array_equal(ref, eng)
    for x in range(2):
        a = complex(1 + x, 2)
        c = a * a
        np.testing.assert_array_equal(eng[x, :4], [c.real, c.imag, c.real - 5, c.imag - 5])
    h = np.array([1.001, 2.003, -3.007, 0.333], np.float16)
    pr = h[0] * h[2] - h[1] * h[3]          # each operation rounded to f16
    pi = h[0] * h[3] + h[1] * h[2]
    want = np.array([pr, pi, pr + h[3], pi + h[0]], np.float16).astype(np.float32)
    np.testing.assert_array_equal(eng[:, 4:], [want, want])


def test_complex_values_need_a_float_type(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
const cx = @import_module("<complex>");
const z = cx.get_complex(1.0, 2.0);
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void { out[0] = z.real; sys.unblock_cmd_stream(); }
""", "f32")
    assert "pe.csl:6:26" in str(e.value)
    assert "get_complex takes f16 or f32 values, got" in str(e.value)


def test_complex_functions_check_the_precision(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
const cx = @import_module("<complex>");
const z = cx.get_complex_64(1.0, 2.0);
const w = cx.add_complex_32(z, z);
var out: [2]f32;
var out_ptr: [*]f32 = &out;
fn main() void { out[0] = w.real; sys.unblock_cmd_stream(); }
""", "f32")
    assert "pe.csl:7:29" in str(e.value)
    assert "add_complex_32 takes a complex(f16), got" in str(e.value)


# ------------------------------------------------------------------------------------------------
# <empty>

EMPTY = """
const stage = STAGE;
const cache = @import_module(if (stage == 0) "<empty>" else "cache.csl");
var out: [1]u32;
var out_ptr: [*]u32 = &out;
fn main() void {
  out[0] = if (stage == 0) 3 else cache.seven() + @as(u32, lay.get_x_coord());
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("stage", [0, 1])
def test_empty_makes_an_import_conditional(tmp_path, arch, stage):
    (tmp_path / "cache.csl").write_text("fn seven() u32 { return 7; }\n")
    eng, ref = outputs(program(tmp_path, EMPTY.replace("STAGE", str(stage)), "u32", arch), 1,
                       np.uint32)
    want = [[3], [3]] if stage == 0 else [[7], [8]]
    assert eng.tolist() == ref.tolist() == want


def test_empty_has_no_members(tmp_path):
    body = EMPTY.replace("STAGE", "0").replace("if (stage == 0) 3 else ", "")
    with pytest.raises(CslError) as err:
        program(tmp_path, body, "u32")
    assert "module <empty> has no member 'seven'" in str(err.value)
    assert "pe.csl:" in str(err.value)


@pytest.mark.parametrize("name", ["<message_passing>", "<kernels/fft>"])
def test_undocumented_library_modules_are_refused_with_the_reason(tmp_path, name):
    body = f'const m = @import_module("{name}");\n' + EMPTY.replace("STAGE", "0")
    with pytest.raises(CslError) as err:
        program(tmp_path, body, "u32")
    assert f"library module {name} is not supported yet: its API is not documented" \
        in str(err.value)
    assert "pe.csl:4:" in str(err.value)
