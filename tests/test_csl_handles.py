"""Runtime handles of CSL: `@get_color(n)`, `@get_local_task_id(n)`, `@get_data_task_id(c)` and
`@get_control_task_id(n)` of a runtime u16 (spec 4), used by `@activate`, `@block`,
`@unblock`, an operation's `.activate` / `.unblock`, and `@get_int`. Each program runs on the
engine with the reference beside it (check mode: every symbol and the clock must agree), and
its results are checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, position, read, write
from test_queue_config import RECV, compile_pair, expected, received

from wsejax import CslError, FabricFault, SdkRuntime, ir
from wsejax.csl import compile_csl
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const lay = @import_module("<layout>");
var out: [4]u32;
var out_ptr: [*]u32 = &out;
"""

TAIL = """
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""

EXPORTS = """@export_name("out", [*]u32, true);
@export_name("main", fn()void);"""


def program(tmp_path, body: str, arch: str, w: int = 3, layout: str = ""):
    """The PE program `body` on a w x 1 rectangle; `layout` adds lines to the layout block."""
    return compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS + layout, w=w, arch=arch)


def run_out(prog, w: int = 3) -> np.ndarray:
    """`out` of each PE after `main`, the reference checking the engine all along:
    `[x, 4]`."""
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    r.launch("main", nonblock=False)
    got = read(r, "out", 4, np.uint32)[0]
    r.stop()
    return got


def compile_error(tmp_path, body: str, arch: str, where: str) -> CslError:
    """The CslError of a program, checked to point at the first `where` of pe.csl."""
    with pytest.raises(CslError) as info:
        program(tmp_path, body, arch)
    e = info.value
    assert e.file.endswith("pe.csl"), str(e)
    assert (e.line, e.col) == position((tmp_path / "pe.csl").read_text(), where), str(e)
    return e


# three local tasks; main picks one by an ID computed at run time
PICK = """
var base: u16 = 10;
task t10() void { out[0] = 100; sys.unblock_cmd_stream(); }
task t11() void { out[0] = 110; sys.unblock_cmd_stream(); }
task t12() void { out[0] = 120; sys.unblock_cmd_stream(); }
comptime {
  @bind_local_task(t10, @get_local_task_id(10));
  @bind_local_task(t11, @get_local_task_id(11));
  @bind_local_task(t12, @get_local_task_id(12));
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_activate_runs_the_task_whose_id_is_computed_at_run_time(tmp_path, arch):
    got = run_out(program(tmp_path, PICK + """
fn main() void {
  @activate(@get_local_task_id(base + lay.get_x_coord()));
}
""", arch))
    np.testing.assert_array_equal(got[:, 0], [100, 110, 120])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_runtime_handle_keeps_the_number_it_was_made_from(tmp_path, arch):
    # k changes after the handle is made: the handle still names task 10 + x
    got = run_out(program(tmp_path, PICK + """
fn main() void {
  var k: u16 = base + lay.get_x_coord();
  const t = @get_local_task_id(k);
  k = 0;
  out[1] = @get_int(t);
  @activate(t);
}
""", arch))
    np.testing.assert_array_equal(got[:, :2], [[100, 10], [110, 11], [120, 12]])


@pytest.mark.parametrize("arch", ARCHES)
def test_get_int_gives_the_number_of_every_runtime_handle(tmp_path, arch):
    got = run_out(program(tmp_path, """
fn main() void {
  const x = lay.get_x_coord();
  out[0] = @get_int(@get_color(x + 3));
  out[1] = @get_int(@get_local_task_id(x + 20));
  out[2] = @get_int(@get_control_task_id(x + 40));
  out[3] = @get_int(@get_color(5)) + @get_int(@get_local_task_id(9));
  sys.unblock_cmd_stream();
}
""", arch))
    x = np.arange(3)
    np.testing.assert_array_equal(got, np.stack([x + 3, x + 20, x + 40, 0 * x + 14], 1))


@pytest.mark.parametrize("arch", ARCHES)
def test_block_and_unblock_by_runtime_ids_hold_a_task_back(tmp_path, arch):
    # main blocks and activates `late` (by a runtime ID), then activates `early`, which
    # unblocks `late`: `late` runs second
    got = run_out(program(tmp_path, """
var ids = [2]u16 { 11, 12 };
var step: u32 = 0;
task late() void { step += 1; out[0] = step; sys.unblock_cmd_stream(); }
task early() void {
  step += 1;
  out[1] = step;
  @unblock(@get_local_task_id(ids[0]));
}
fn main() void {
  const t = @get_local_task_id(ids[0]);
  @block(t);
  @activate(t);
  @activate(@get_local_task_id(ids[1]));
}
comptime {
  @bind_local_task(late, @get_local_task_id(11));
  @bind_local_task(early, @get_local_task_id(12));
}
""", arch))
    np.testing.assert_array_equal(got[:, :2], [[2, 1]] * 3)


@pytest.mark.parametrize("arch", ARCHES)
def test_an_operation_activates_and_unblocks_tasks_named_at_run_time(tmp_path, arch):
    # the copy activates `done` (ID 10 + x % 2 picks one of two tasks), whose end unblocks
    # `last` through the next copy's .unblock
    got = run_out(program(tmp_path, """
var src = [2]u32 { 7, 9 };
var dst = @zeros([2]u32);
const sd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> src[i] });
const dd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> dst[i] });
var last_id: u16 = 0;
task done_a() void {
  out[0] = dst[0] + dst[1];
  @mov32(dd, sd, .{ .unblock = @get_local_task_id(last_id) });
}
task done_b() void {
  out[0] = 1000;
  @mov32(dd, sd, .{ .unblock = @get_local_task_id(last_id) });
}
task last() void { out[1] = 5; out[2] = last_id; sys.unblock_cmd_stream(); }
fn main() void {
  last_id = 13;
  @block(@get_local_task_id(13));
  @activate(@get_local_task_id(13));
  @mov32(dd, sd, .{ .activate = @get_local_task_id(10 + lay.get_x_coord() % 2) });
}
comptime {
  @bind_local_task(done_a, @get_local_task_id(10));
  @bind_local_task(done_b, @get_local_task_id(11));
  @bind_local_task(last, @get_local_task_id(13));
}
""", arch))
    np.testing.assert_array_equal(got[:, :3], [[16, 5, 13], [1000, 5, 13], [16, 5, 13]])


@pytest.mark.parametrize("arch", ARCHES)
def test_functions_take_task_ids_known_at_comptime_or_at_run_time(tmp_path, arch):
    # go() is specialized for the comptime ID 12 and takes the runtime ones as a u16
    got = run_out(program(tmp_path, PICK + """
fn go(t: local_task_id, slot: u16) void { out[slot] = @get_int(t); @activate(t); }
fn main() void {
  if (lay.get_x_coord() == 2) { go(@get_local_task_id(12), 1); }
  else { go(@get_local_task_id(base + lay.get_x_coord()), 2); }
}
""", arch))
    np.testing.assert_array_equal(got[:, :3], [[100, 0, 10], [110, 0, 11], [120, 12, 0]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_runtime_handle_argument_must_be_of_the_parameter_kind(tmp_path, arch):
    e = compile_error(tmp_path, """
fn go(t: local_task_id) void { @activate(t); }
fn main() void {
  var n: u16 = 3;
  go(@get_color(n));
}
""", arch, "go(@get_color")
    assert "argument 't' of go: expected a local_task_id, got a runtime color" in str(e)


# color 6 from each PE's CE back to itself
LOOPBACK = """
for (@range(i16, 3)) |x| {
  @set_color_config(x, 0, @get_color(6), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ RAMP } } });
}"""


def test_wse2_blocks_and_unblocks_a_data_task_by_a_runtime_color(tmp_path):
    # the data task of color 6 (wse2: its ID is the color) starts blocked; a runtime handle
    # of color 6 unblocks it, and the wavelets main sends to itself then run it
    got = run_out(program(tmp_path, """
var which: u16 = 6;
const c6 = @get_color(6);
const oq = @get_output_queue(2);
const to_self = @get_dsd(fabout_dsd, .{ .extent = 2, .fabric_color = c6, .output_queue = oq });
var words = [2]u32 { 3, 4 };
const wd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> words[i] });
var seen: u32 = 0;
task recv(v: u32) void {
  out[seen] = v + 10 * @get_int(@get_data_task_id(@get_color(which)));
  seen += 1;
  if (seen == 2) { sys.unblock_cmd_stream(); }
}
fn main() void {
  @unblock(@get_color(which));
  @mov32(to_self, wd);
}
comptime {
  @bind_data_task(recv, @get_data_task_id(c6));
  @block(c6);
}
""", "wse2", layout=LOOPBACK))
    np.testing.assert_array_equal(got[:, :2], [[63, 64]] * 3)


# ------------------------------------------------------------------------------------------------
# misuse


@pytest.mark.parametrize("arch", ARCHES)
def test_a_runtime_task_id_must_be_a_u16(tmp_path, arch):
    e = compile_error(tmp_path, """
fn main() void {
  const k: i32 = 10;
  var n: i32 = k;
  @activate(@get_local_task_id(n));
}
""", arch, "n));")
    assert "@get_local_task_id takes a u16 at run time, got a runtime i32" in str(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_activate_refuses_a_runtime_control_task_id(tmp_path, arch):
    e = compile_error(tmp_path, """
fn main() void {
  var n: u16 = 40;
  @activate(@get_control_task_id(n));
}
""", arch, "@activate(")
    assert "@activate takes a local task ID (@get_local_task_id(n)) or a local task, got a " \
        "runtime control task ID" in str(e)


def test_on_wse3_a_runtime_color_names_no_task(tmp_path):
    e = compile_error(tmp_path, """
fn main() void {
  var n: u16 = 4;
  @block(@get_color(n));
}
""", "wse3", "@block(")
    assert "@block: on wse3 a color names no task (block or unblock its input queue)" in str(e)


def test_on_wse3_a_data_task_id_takes_a_queue_not_a_runtime_color(tmp_path):
    e = compile_error(tmp_path, """
fn main() void {
  var n: u16 = 4;
  const t = @get_data_task_id(@get_color(n));
}
""", "wse3", "@get_color(n)")
    assert "on wse3 @get_data_task_id takes an input queue (@get_input_queue(n)), got a " \
        "runtime color" in str(e)


# ------------------------------------------------------------------------------------------------
# the config space


CONFIG = """
comptime {
  @set_config(0x7e00, 41);
  @set_config(0x10, @get_config(0x7e00) + 1);
}
fn main() void {
  const x = lay.get_x_coord();
  out[0] = @get_config(0x7e00);
  out[1] = @get_config(0x10) + 1000 * @as(u32, @get_config(0x5));
  @set_config(0x5 + x, 7 * x + 1);
  out[2] = @as(u32, @get_config(5)) + 100 * @as(u32, @get_config_unchecked(6));
  @set_config_unchecked(0x7e00, x + 300);
  out[3] = @get_config(0x7e00);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_the_config_space_reads_what_was_written_else_the_start_up_image_else_zero(
        tmp_path, arch):
    got = run_out(program(tmp_path, CONFIG, arch))
    # x = 0 writes address 5 (1), x = 1 address 6 (8), x = 2 address 7 (15)
    np.testing.assert_array_equal(got, [[41, 42, 1, 300], [41, 42, 800, 301],
                                        [41, 42, 0, 302]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_pe_that_writes_too_many_config_addresses_faults(tmp_path, arch):
    prog = program(tmp_path, """
fn main() void {
  var a: u16 = 0;
  const n: u16 = if (lay.get_x_coord() == 1) 40 else 32;
  while (a < n) : (a += 1) { @set_config(a, a); }
  out[0] = @get_config(31);
  sys.unblock_cmd_stream();
}
""", arch)
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    with pytest.raises(FabricFault) as info:
        r.launch("main", nonblock=False)
    assert info.value.pes == [(1, 0)]
    assert "@set_config: the PE has written 32 other config addresses, the most wsejax " \
        "keeps per PE" in str(info.value)


RANGED = """
const LOW = .{0x7e00, 0x7e0f};
const BOTH = .{ LOW, .{0x7e20, 0x7e2f} };
comptime {
  @set_config(0x7e01, 5, LOW);
  @set_config(0x7e21, @get_config(0x7e01, BOTH) + 1, BOTH);
}
var calls: u16 = 0;
fn next(a: u16) u16 { calls += 1; return a; }
fn main() void {
  const x = lay.get_x_coord();
  const a: u16 = 0x7e00 + x;
  const b: u16 = 0x7e20 + x;
  @set_config(a, 10 * x + 1, .{0x7e00, 0x7e0f});
  out[0] = @get_config(a, BOTH);
  out[1] = @get_config(b, BOTH);
  out[2] = @get_config(0x7e01, .{0x7e01, 0x7e01});
  @set_config(b, @get_config(next(b), BOTH) + 100, .{ .{0x7e20, 0x7e2f} });
  out[3] = @get_config(b, .{0x7e20, 0x7e2f}) + @get_config(0x7e21) + 1000 * calls;
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_config_addresses_inside_their_accessed_ranges_read_and_write_as_without(
        tmp_path, arch):
    got = run_out(program(tmp_path, RANGED, arch))
    # the start-up image: 0x7e01 = 5, 0x7e21 = 6; PE x writes 10x + 1 at 0x7e00 + x, then
    # adds 100 at 0x7e20 + x (6 on PE 1, else 0); next() runs once
    np.testing.assert_array_equal(got, [[1, 0, 5, 1106], [11, 6, 11, 1212],
                                        [21, 0, 5, 1106]])


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("call, where, message, pes", [
    ("out[0] = @get_config(0x7e0e + x, .{ .{0x7e00, 0x7e0f}, .{0x7e20, 0x7e2f} });",
     "@get_config(0x7e0e", "@get_config: its address, known only at run time, is outside its "
     "accessed range(s) .{0x7e00, 0x7e0f}, .{0x7e20, 0x7e2f}; the SDK leaves that undefined",
     [(2, 0)]),
    ("@set_config(0x7e20 - x, 3, .{0x7e20, 0x7e2f});", "@set_config(0x7e20",
     "@set_config: its address, known only at run time, is outside its accessed range(s) "
     ".{0x7e20, 0x7e2f}", [(1, 0), (2, 0)]),
], ids=["get", "set"])
def test_a_runtime_config_address_outside_its_accessed_ranges_faults_the_pe(
        tmp_path, arch, call, where, message, pes):
    # PE x reads 0x7e0e + x (0x7e10 on PE 2 is in neither range) or writes 0x7e20 - x
    prog = program(tmp_path, f"""
fn main() void {{
  const x = lay.get_x_coord();
  {call}
  sys.unblock_cmd_stream();
}}
""", arch)
    r = SdkRuntime(prog)
    r.load()
    r.run()
    with pytest.raises(FabricFault) as eng:
        r.launch("main", nonblock=False)
    with pytest.raises(FabricFault) as ref:
        Reference(prog).launch("main")
    assert str(eng.value) == str(ref.value)
    line, col = position((tmp_path / "pe.csl").read_text(), where)
    assert f"pe.csl:{line}:{col} ({message}" in str(eng.value), str(eng.value)
    assert eng.value.pes == pes


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("body, where, message", [
    ("fn main() void { out[0] = @get_config(4, 9); }", "9)",
     "@get_config accessed range: expected a comptime tuple .{start, end} or a tuple of them "
     "(.{.{0x7e00, 0x7e0f}, .{0x7e20, 0x7e2f}}), got the comptime_int 9"),
    ("fn main() void { out[0] = @get_config(4, .{}); }", ".{})",
     "got an empty tuple"),
    ("fn main() void { @set_config(4, 1, .{1, 2, 3}); }", ".{1, 2, 3}",
     "@set_config accessed range: expected a tuple of two ends .{start, end}, got a tuple of 3"),
    ("fn main() void { @set_config(4, 1, .{ .{1, 9}, .{4} }); }", ".{4}",
     "expected a tuple of two ends .{start, end}, got a tuple of 1"),
    ("fn main() void { var e: u16 = 9; @set_config(4, 1, .{1, e}); }", "e});",
     "@set_config accessed range: an end must be a comptime-known integer, got a runtime u16 "
     "(known only at run time)"),
    ("fn main() void { out[0] = @get_config(4, .{9, 2}); }", ".{9, 2}",
     "@get_config accessed range: .{0x0009, 0x0002} starts after it ends (a range is "
     ".{start, end} with start <= end, both included)"),
    ("fn main() void { out[0] = @get_config(4, .{0, 0x10000}); }", "0x10000",
     "@get_config accessed range: 65536 is not a 16-bit word address (0 to 65535)"),
    ("fn main() void { out[0] = @get_config(0x20, .{ .{0, 0x10}, .{0x30, 0x40} }); }",
     "0x20,", "@get_config: the address 0x0020 is outside its accessed range(s) "
     ".{0x0000, 0x0010}, .{0x0030, 0x0040}"),
    ("comptime { @set_config(0x7e10, 1, .{0x7e00, 0x7e0f}); }", "0x7e10,",
     "@set_config: the address 0x7e10 is outside its accessed range(s) .{0x7e00, 0x7e0f}"),
    ("fn main() void { out[0] = @get_config_unchecked(4, .{0, 9}); }", ".{0, 9}",
     "@get_config_unchecked takes no accessed range (it is the form without the check): "
     "drop the range, or write @get_config with it"),
    ("comptime { @set_config_unchecked(4, 1, .{0, 9}); }", ".{0, 9}",
     "@set_config_unchecked takes no accessed range"),
    ("fn main() void { @set_config(4, 1, .{0, 9}, 2); }", "@set_config",
     "@set_config takes 2 argument(s), or 3 with the accessed range, got 4"),
], ids=["not-a-tuple", "empty", "three-ends", "one-end", "runtime-end", "reversed",
        "past-16-bits", "outside", "outside-at-comptime", "unchecked-get", "unchecked-set",
        "too-many"])
def test_a_bad_accessed_range_is_a_located_error(tmp_path, arch, body, where, message):
    e = compile_error(tmp_path, body, arch, where)
    assert message in str(e), str(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_runtime_config_address_must_be_a_u16(tmp_path, arch):
    e = compile_error(tmp_path, """
fn main() void {
  var a: u32 = 4;
  @set_config(a, 1);
}
""", arch, "a, 1")
    assert "@set_config address: expected a u16 at run time, got a runtime u32" in str(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_config_address_is_a_16_bit_word_address(tmp_path, arch):
    e = compile_error(tmp_path, """
comptime { @set_config(70000, 1); }
""", arch, "70000")
    assert "@set_config address: 70000 is not a 16-bit word address (0 to 65535)" in str(e)


# ------------------------------------------------------------------------------------------------
# <tile_config>.task_priority


PRIORITY = """
const tc = @import_module("<tile_config>");
const tp = tc.task_priority;
var step: u32 = 0;
var ran: u32 = 0;
fn record(k: u32) void {
  out[step] = k;
  step += 1;
  if (step == 3) { sys.unblock_cmd_stream(); }
}
task t10() void { record(10); }
task t11() void { record(11); }
task t12() void { record(12); }
fn main() void {
  const x = lay.get_x_coord();
  var k: u16 = 11;
  if (x >= 1) { tp.update_task_priority(@get_local_task_id(k), tp.level.HIGH); }
  if (x == 2) { tp.clear_task_priority(t12); }
  @activate(t10);
  @activate(t11);
  @activate(t12);
}
comptime {
  @bind_local_task(t10, @get_local_task_id(10));
  @bind_local_task(t11, @get_local_task_id(11));
  @bind_local_task(t12, @get_local_task_id(12));
  tp.set_task_priority(@get_local_task_id(12));
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_high_priority_tasks_start_before_low_ones(tmp_path, arch):
    got = run_out(program(tmp_path, PRIORITY, arch))
    # x = 0: 12 is HIGH from the start; x = 1: 11 is made HIGH too; x = 2: then 12 LOW again
    np.testing.assert_array_equal(got[:, :3], [[12, 10, 11], [11, 12, 10], [11, 10, 12]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_task_priority_level_is_low_or_high(tmp_path, arch):
    e = compile_error(tmp_path, PRIORITY.replace("tp.level.HIGH", "3"), arch,
                      "tp.update_task_priority(")
    assert "task_priority.update_task_priority takes a level (.LOW or .HIGH), got the " \
        "comptime_int 3" in str(e)


# ------------------------------------------------------------------------------------------------
# <tile_config>: a queue bound by an ID known only at run time


@pytest.mark.parametrize("arch", ARCHES)
def test_an_input_queue_named_at_run_time_is_rebound(tmp_path, arch):
    # the receiver of test_queue_config's pair, its queue 2 named by a runtime u16
    recv = RECV.format(n=6, m=6, filter="").replace(
        "tc.input_queue_config.encode_input_queue(2, 6, true);",
        "tc.input_queue_config.encode_input_queue(qid + 1, 6, true);").replace(
        "const iq = @get_input_queue(2);", "const iq = @get_input_queue(2);\nvar qid: u16 = 1;")
    prog = compile_pair(tmp_path, arch, 6, recv=recv)
    eng, ref = received(prog, 6)
    want = expected(6, np.ones(6, bool))
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)
    # only the queue the program initialises can be named: the others lose their binding
    pe = next(pe for pe in prog.classes if pe.name == "recv.csl")
    binds = [s for f in pe.functions for s in ir.walk_stmts(f.body)
             if isinstance(s, ir.QueueBind)]
    assert [(b.kind, b.queue) for b in binds] == [("input", 2)]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_queue_named_at_run_time_needs_an_initialised_queue(tmp_path, arch):
    e = compile_error(tmp_path, """
const tc = @import_module("<tile_config>");
fn main() void {
  var q: u16 = 3;
  tc.input_queue_config.encode_input_queue(q, 6, true);
  sys.unblock_cmd_stream();
}
""", arch, "tc.input_queue_config.encode_input_queue(")
    assert "input_queue_config.encode_input_queue: a queue ID known only at run time, but the " \
        "program initialises no input queue (@initialize_queue) it could name" in str(e)


# ------------------------------------------------------------------------------------------------
# <time>.get_perf_cntr


@pytest.mark.parametrize("arch", ARCHES)
def test_the_performance_counters_are_not_reset_with_the_timestamp_counter(tmp_path, arch):
    got = run_out(program(tmp_path, """
const tm = @import_module("<time>");
var ts: [3]u16;
var pc0: [3]u16;
var pc1: [3]u16;
fn cycles(w: *[3]u16) u32 { return @as(u32, w.*[0]) | (@as(u32, w.*[1]) << 16); }
fn main() void {
  var k: u32 = 0;
  while (k < 20) : (k += 1) { out[3] += 1; }
  tm.get_perf_cntr(&pc0, 0);
  tm.reset_tsc_counter();
  tm.get_timestamp(&ts);
  tm.get_perf_cntr(&pc1, 1);
  out[0] = cycles(&ts);
  out[1] = cycles(&pc0);
  out[2] = cycles(&pc1);
  sys.unblock_cmd_stream();
}
""", arch))
    ts, pc0, pc1 = got[:, 0], got[:, 1], got[:, 2]
    assert (pc0 >= 20).all() and (ts < 10).all()
    # the counter went on across the reset: a few cycles later than pc0, not near ts
    assert ((pc1 > pc0) & (pc1 - pc0 < 20)).all(), got


@pytest.mark.parametrize("arch", ARCHES)
def test_there_are_two_performance_counters(tmp_path, arch):
    e = compile_error(tmp_path, """
const tm = @import_module("<time>");
var pc: [3]u16;
fn main() void { tm.get_perf_cntr(&pc, 2); }
""", arch, "2);")
    assert "get_perf_cntr: there is no counter 2 (0 or 1)" in str(e)


def test_the_config_space_is_a_pes(tmp_path):
    write(tmp_path, {"layout.csl": """
layout {
  @set_rectangle(1, 1);
  @set_config(4, 1);
}
"""})
    with pytest.raises(CslError) as info:
        compile_csl(tmp_path / "layout.csl", arch="wse2")
    e = info.value
    assert e.file.endswith("layout.csl") and (e.line, e.col) == (4, 3), str(e)
    assert "@set_config belongs in a PE program, not in the layout" in str(e)
