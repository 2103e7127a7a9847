"""Tasks sharing one lowered body (`wsejax.engine.task_groups`): which tasks of a class group
together, and that programs whose tasks do run alike on the engine and the reference, with
results predicted by hand, on both arches."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import read, run, write

from wsejax.csl import compile_csl
from wsejax.engine.core import Engine
from wsejax.engine.task_groups import shared_bodies
from wsejax.reference import Reference

# PE 0 sends 1, 2, 3 east on color 4, PE 2 sends 10, 20, 30 west on color 5; PE 1 takes them
# with two data tasks that only call `take`, and runs local tasks `a` and `b` (only calling
# `bump`), `c` (calling `bump`, then `again`, which activates `a` once more) and `d` (an
# assignment, then `bump`)
LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 3, .height = 1 });
const east: color = @get_color(4);
const west: color = @get_color(5);
layout {
  @set_rectangle(3, 1);
  for (@range(u16, 3)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x), .role = x,
                                      .east = east, .west = west });
  }
  @set_color_config(0, 0, east, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_color_config(1, 0, east, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @set_color_config(2, 0, west, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ WEST } } });
  @set_color_config(1, 0, west, .{ .routes = .{ .rx = .{ EAST }, .tx = .{ RAMP } } });
  @export_name("got", [*]u32, true);
  @export_name("log", [*]u32, true);
  @export_name("main", fn()void);
}
"""

PE = """
param memcpy_params;
param role: u16;
param east: color;
param west: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const in_e = @get_input_queue(2);
const in_w = @get_input_queue(3);
const out_q = @get_output_queue(4);
const mine = if (role == 0) east else west;
var got = @zeros([6]u32);
var got_ptr: [*]u32 = &got;
var log = @zeros([6]u32);
var log_ptr: [*]u32 = &log;
var k: u16 = 0;
var n: u16 = 0;
var phase: u32 = 0;
var extra: u32 = 0;
var src = [3]u32 { 1, 2, 3 };
const S = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> src[i] });
const OUT = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 3, .output_queue = out_q }
                     else .{ .extent = 3, .fabric_color = mine, .output_queue = out_q });
const a_id = @get_local_task_id(10);
const b_id = @get_local_task_id(11);
const c_id = @get_local_task_id(12);
const d_id = @get_local_task_id(13);
const e_id = if (@is_arch("wse3")) @get_data_task_id(in_e) else @get_data_task_id(east);
const w_id = if (@is_arch("wse3")) @get_data_task_id(in_w) else @get_data_task_id(west);

fn take(v: u32) void { got[k] = v; k += 1; }
fn bump() void { log[n] = phase + extra; n += 1; }
fn again() void { phase = 5; @activate(a_id); }
task from_west(v: u32) void { take(v); }
task from_east(v: u32) void { take(v); }
task a() void { bump(); }
task b() void { bump(); }
task c() void { bump(); again(); }
task d() void { extra = 100; bump(); }

fn main() void {
  if (role == 1) {
    @activate(d_id); @activate(c_id); @activate(b_id); @activate(a_id);
  } else {
    if (role == 2) { src[0] = 10; src[1] = 20; src[2] = 30; }
    @mov32(OUT, S);
  }
  sys.unblock_cmd_stream();
}

comptime {
  if (role == 1) {
    @bind_data_task(from_east, e_id);
    @bind_data_task(from_west, w_id);
    @bind_local_task(a, a_id);
    @bind_local_task(b, b_id);
    @bind_local_task(c, c_id);
    @bind_local_task(d, d_id);
    if (@is_arch("wse3")) {
      @initialize_queue(in_e, .{ .color = east });
      @initialize_queue(in_w, .{ .color = west });
    }
  } else if (@is_arch("wse3")) {
    @initialize_queue(out_q, .{ .color = mine });
  }
  @export_symbol(got_ptr, "got");
  @export_symbol(log_ptr, "log");
  @export_symbol(main);
}
"""


def compiled(tmp_path, arch, pe=PE):
    write(tmp_path, {"layout.csl": LAYOUT, "pe.csl": pe})
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def receiver(program):
    return program.classes[int(program.class_of[0, 1])]


def groups(pe):
    return [sorted(t.fn for t in tasks) for _, tasks in shared_bodies(pe)]


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_trampolines_to_the_same_calls_share_a_body_and_others_keep_theirs(tmp_path, arch):
    program = compiled(tmp_path, arch)
    got = groups(receiver(program))
    assert sorted(got) == [["a", "b"], ["c"], ["d"], ["from_east", "from_west"]]
    assert Engine(program).task_groups[int(program.class_of[0, 1])] == \
        shared_bodies(receiver(program))


def test_tasks_that_reach_a_print_keep_their_own_bodies(tmp_path):
    pe = PE.replace('const sys = @import_module("<memcpy/memcpy>", memcpy_params);',
                    'const sys = @import_module("<memcpy/memcpy>", memcpy_params);\n'
                    'const prt = @import_module("<simprint>");') \
        .replace("fn bump() void {", "fn bump() void { prt.fmt_no_nl(\"b\\n\", .{});")
    got = groups(receiver(compiled(tmp_path, "wse2", pe)))
    assert sorted(got) == [["a"], ["b"], ["c"], ["d"], ["from_east", "from_west"]]


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_shared_bodies_run_each_lane_as_its_own_task(tmp_path, arch):
    program = compiled(tmp_path, arch)
    r = run(program)
    engine = (read(r, "got", 6, np.uint32)[0, 1], read(r, "log", 6, np.uint32)[0, 1])
    ref = Reference(program)
    ref.launch("main")
    mem = ref.memory(1, 0)
    # the lowest ID first, one task a tick: a, b, c (which activates a again), a, then d
    assert engine[1].tolist() == [0, 0, 0, 5, 105, 0]
    # each sender's wavelets arrive in order; the data tasks take all six
    got = engine[0].tolist()
    assert sorted(got) == [1, 2, 3, 10, 20, 30]
    assert [v for v in got if v < 10] == [1, 2, 3] and [v for v in got if v >= 10] == [10, 20, 30]
    np.testing.assert_array_equal(engine[0], mem["got"][:6])
    np.testing.assert_array_equal(engine[1], mem["log"][:6])
