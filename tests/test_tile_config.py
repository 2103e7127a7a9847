"""`<tile_config>`: the queue status submodules and `get_fabric_coord`. Each program runs on
the engine and on the reference interpreter, both checked by hand; misuse is reported at the
source."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, position, read, run

from wsejax import CslError, SdkRuntime
from wsejax.csl import compile_csl
from wsejax.hardware import QUEUE_COUNTS
from wsejax.reference import Reference

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "send.csl", .{ .memcpy_params = memcpy.get_params(0) });
  @set_tile_code(1, 0, "recv.csl", .{ .memcpy_params = memcpy.get_params(1) });
  @set_color_config(0, 0, @get_color(4), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_color_config(1, 0, @get_color(4), .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @export_name("main", fn()void);
  @export_name("rec", [*]u32, true);
}
"""

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const tc = @import_module("<tile_config>");
const n = 20;
var rec = @zeros([8]u32);
var rec_ptr: [*]u32 = &rec;
var polls: u32 = 0;
const poll_id = @get_local_task_id(10);
const next_id = @get_local_task_id(11);
// each test of a status, one bit
fn flags(s: qs.status, q: anytype) u32 {
  var f: u32 = 0;
  if (qs.is_full(s, q)) { f |= 1; }
  if (qs.is_empty(s, q)) { f |= 2; }
  if (qs.all_full(s)) { f |= 4; }
  if (qs.all_empty(s)) { f |= 8; }
  if (qs.none_full(s)) { f |= 16; }
  if (qs.none_empty(s)) { f |= 32; }
  return f;
}
fn record(at: u16, s: qs.status, q: anytype) void {
  rec[at] = s.empty;
  rec[at + 1] = s.full;
  rec[at + 2] = flags(s, q);
}
comptime {
  @bind_local_task(poll, poll_id);
  @bind_local_task(next, next_id);
  @export_symbol(main);
  @export_symbol(rec_ptr, "rec");
}
"""

# the sender: n words on color 4 through output queue 3, on a microthread; it watches its
# queue fill up (the receiver reads nothing for a while), then empty once the receiver reads
SEND = HEAD + """
const qs = tc.output_queue_status;
const oq = @get_output_queue(3);
var a = @zeros([n]u32);
const A = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> a[i] });
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = n, .output_queue = oq }
                     else .{ .extent = n, .fabric_color = @get_color(4), .output_queue = oq });
fn main() void {
  var i: u32 = 0;
  while (i < n) : (i += 1) { a[i] = i + 1; }
  const s = qs.get();
  record(0, s, oq);
  @mov32(out, A, .{ .async = true });
  @activate(poll_id);
}
task poll() void {
  const s = qs.get();
  polls += 1;
  if (qs.is_full(s, oq) or polls == 1000) { record(3, s, oq); @activate(next_id); }
  else { @activate(poll_id); }
}
task next() void {
  polls += 1;
  const s = qs.get();
  if (qs.all_empty(s) or polls == 2000) { rec[6] = s.empty; sys.unblock_cmd_stream(); }
  else { @activate(next_id); }
}
comptime {
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = @get_color(4) }); }
}
"""

# the receiver: input queue 2 on color 4 fills up while it reads nothing; some time after it
# is full, it reads all n words and looks again
RECV = HEAD + """
const qs = tc.input_queue_status;
const iq = @get_input_queue(2);
var got = @zeros([n]u32);
const G = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> got[i] });
const in = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = n, .input_queue = iq }
                    else .{ .extent = n, .fabric_color = @get_color(4), .input_queue = iq });
fn main() void {
  record(0, qs.get(), iq);
  @activate(poll_id);
}
task poll() void {
  var s: qs.status = qs.get();
  polls += 1;
  if (qs.is_full(s, iq) and rec[4] == 0) { record(3, s, iq); }
  // wait on: the sender's queue fills up behind this one
  if (polls == 200) { @mov32(G, in, .{ .async = true, .activate = next }); }
  else { @activate(poll_id); }
}
task next() void {
  rec[6] = qs.get().empty;
  rec[7] = got[n - 1];
  sys.unblock_cmd_stream();
}
comptime {
  @initialize_queue(iq, .{ .color = @get_color(4) });
}
"""


def compile_pair(tmp_path, arch, send=SEND, recv=RECV):
    (tmp_path / "layout.csl").write_text(LAYOUT)
    (tmp_path / "send.csl").write_text(send)
    (tmp_path / "recv.csl").write_text(recv)
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def records(program):
    """`rec` of both PEs after `main`, on the engine and on the reference."""
    r = SdkRuntime(program)
    r.load()
    r.run()
    r.launch("main")
    eng = np.zeros(16, np.uint32)
    r.memcpy_d2h(eng, r.get_id("rec"), 0, 0, 2, 1, 8, streaming=False)
    r.stop()
    ref = Reference(program)
    ref.launch("main")
    out = np.zeros(16, np.uint32)
    ref.memcpy_d2h(out, "rec", 0, 0, 2, 1, 8)
    return eng.reshape(2, 8), out.reshape(2, 8)


IS_FULL, IS_EMPTY, ALL_FULL, ALL_EMPTY, NONE_FULL, NONE_EMPTY = 1, 2, 4, 8, 16, 32


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_queue_status_follows_the_wavelets_held(tmp_path, arch):
    eng, ref = records(compile_pair(tmp_path, arch))
    np.testing.assert_array_equal(eng, ref)
    every_in = (1 << QUEUE_COUNTS[arch]["input"]) - 1
    every_out = (1 << QUEUE_COUNTS[arch]["output"]) - 1
    # the queues other than the one in use carry no color: empty, never full
    idle = IS_EMPTY | ALL_EMPTY | NONE_FULL
    send, recv = eng
    # the sender: all empty before sending; output queue 3 full while the receiver waits
    assert send[:3].tolist() == [every_out, 0, idle]
    assert send[3:6].tolist() == [every_out & ~8, 8, IS_FULL]
    assert send[6] == every_out
    # the receiver: all empty; input queue 2 full; all empty again once it has read n words
    assert recv[:3].tolist() == [every_in, 0, idle]
    assert recv[3:6].tolist() == [every_in & ~4, 4, IS_FULL]
    assert recv[6:].tolist() == [every_in, 20]


COORD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const tc = @import_module("<tile_config>");
var out = @zeros([4]u32);
var out_ptr: [*]u32 = &out;
var dim: tc.fabric_coord = tc.fabric_coord.X;
fn main() void {
  out[0] = tc.get_fabric_coord(tc.fabric_coord.X);
  out[1] = tc.get_fabric_coord(.Y);
  out[2] = tc.get_fabric_coord(dim);
  dim = tc.fabric_coord.Y;
  out[3] = tc.get_fabric_coord(dim);
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("w, h, offsets", [(1, 1, None), (3, 2, None), (4, 3, (5, 2))])
def test_get_fabric_coord_is_the_place_in_the_rectangle(tmp_path, arch, w, h, offsets):
    exports = '@export_name("out", [*]u32, true);\n@export_name("main", fn()void);'
    prog = compile_pe(tmp_path, COORD, exports, w=w, h=h, arch=arch, fabric_offsets=offsets)
    eng = read(run(prog), "out", 4, np.uint32)
    ref = Reference(prog)
    ref.launch("main")
    ys, xs = np.mgrid[0:h, 0:w]
    want = np.stack([xs, ys, xs, ys], axis=-1)
    np.testing.assert_array_equal(eng, want)
    for y in range(h):
        for x in range(w):
            np.testing.assert_array_equal(ref.memory(x, y)["out"].reshape(-1), want[y, x])


def refused(tmp_path, body: str, where: str, arch="wse2") -> str:
    """The message of the CslError compiling `body` into the receiver, checked to point at
    the first `where` of the receiver's source."""
    recv = RECV.replace("fn main() void {", "fn main() void {\n" + body, 1)
    with pytest.raises(CslError) as err:
        compile_pair(tmp_path, arch, recv=recv)
    e = err.value
    assert e.file.endswith("recv.csl"), str(e)
    assert (e.line, e.col) == position(recv, where), str(e)
    return e.message


@pytest.mark.parametrize("body, where, message", [
    ("_ = qs.get_raw();", "get_raw",
     "input_queue_status.get_raw (of <tile_config>) is not supported yet: the bit layout of "
     "the queue status register is not documented"),
    ("_ = qs.is_full(qs.get(), @get_output_queue(1));", "@get_output_queue(1)",
     "input_queue_status.is_full takes an input queue (@get_input_queue(n)), got"),
    ("_ = qs.is_empty(qs.get(), @get_input_queue(9));", "@get_input_queue(9)",
     "input queue"),
    ("_ = qs.all_full(tc.output_queue_status.get());", "tc.output_queue_status.get()",
     "input_queue_status.all_full takes a input_queue_status.status (from get()), got"),
    ("_ = tc.get_fabric_coord(3);", "3);",
     "get_fabric_coord takes a fabric_coord (.X or .Y), got"),
])
def test_misuse_is_reported_at_the_source(tmp_path, body, where, message):
    assert message in refused(tmp_path, body, where)


def test_a_status_is_read_at_run_time(tmp_path):
    recv = RECV.replace("comptime {\n  @initialize_queue", "comptime {\n  _ = qs.get();\n"
                        "  @initialize_queue")
    with pytest.raises(CslError, match="input_queue_status.get\\(\\) happens at run time"):
        compile_pair(tmp_path, "wse3", recv=recv)


PRIORITY = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const tc = @import_module("<tile_config>");
const mt = tc.main_thread_priority;
var out = @zeros([2]u32);
var out_ptr: [*]u32 = &out;
var wide: tc.double_reg_type = 0x12345;
fn main() void {
  mt.update_main_thread_priority(mt.level.MEDIUM_HIGH);
  out[0] = wide;
  mt.update_main_thread_priority(.HIGH);
  out[1] = wide >> 16;
  sys.unblock_cmd_stream();
}
comptime {
  mt.update_main_thread_priority(mt.level.MEDIUM);
  @export_symbol(out_ptr, "out");
  @export_symbol(main);
}
"""


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_main_thread_priority_is_accepted_with_one_warning(tmp_path, arch):
    warnings = []
    exports = '@export_name("out", [*]u32, true);\n@export_name("main", fn()void);'
    prog = compile_pe(tmp_path, PRIORITY, exports, w=1, arch=arch, warn=warnings.append)
    assert len(warnings) == 1, warnings
    assert "main_thread_priority.update_main_thread_priority is accepted and ignored (the " \
           "main thread is not scheduled against the microthreads" in warnings[0]
    # at the first call evaluated: the top-level comptime one
    line, col = position(PRIORITY, "mt.update_main_thread_priority(mt.level.MEDIUM)")
    assert f"pe.csl:{line}:{col}:" in warnings[0]
    eng = read(run(prog), "out", 2, np.uint32)
    ref = Reference(prog)
    ref.launch("main")
    # double_reg_type: a register of two 16-bit words
    assert eng[0, 0].tolist() == [0x12345, 1]
    np.testing.assert_array_equal(ref.memory(0, 0)["out"].reshape(-1), eng[0, 0])


def test_main_thread_priority_takes_a_level(tmp_path):
    exports = '@export_name("out", [*]u32, true);\n@export_name("main", fn()void);'
    src = PRIORITY.replace("mt.level.MEDIUM_HIGH", "2")
    with pytest.raises(CslError) as err:
        compile_pe(tmp_path, src, exports, w=1, warn=lambda text: None)
    assert "update_main_thread_priority takes a level (.MEDIUM_LOW, .MEDIUM, .MEDIUM_HIGH or " \
           ".HIGH), got" in err.value.message
    assert (err.value.line, err.value.col) == position(src, "2);\n  out[0]")
