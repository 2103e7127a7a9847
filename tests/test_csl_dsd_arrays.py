"""Arrays of DSDs held at run time (spec 3.1, 7): `var ds: [N]mem1d_dsd` at the top of a PE
program and in a function, read and assigned at comptime and runtime indices, assigned whole;
a circbuf_dsd chosen from an array by a runtime index and loaded into a register. Each program
runs on the engine with the reference beside it (check mode: every symbol and the clock must
agree), and its results are checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_csl_handles import ARCHES, compile_error, program, run_out


@pytest.mark.parametrize("arch", ARCHES)
def test_a_global_array_of_dsds_is_read_and_assigned_at_run_time(tmp_path, arch):
    # ds[0] names a[0..2], ds[1] names b[0..2]; PE x moves ds[x % 2] one element on and adds
    # 10 through it, then adds 100 through ds[0]
    got = run_out(program(tmp_path, """
var a = [4]i16 { 1, 2, 3, 4 };
var b = [4]i16 { 5, 6, 7, 8 };
var ds = [2]mem1d_dsd {
  @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> a[i] }),
  @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> b[i] }),
};
fn main() void {
  const k = lay.get_x_coord() % 2;
  ds[k] = @increment_dsd_offset(ds[k], 1, i16);
  @add16(ds[k], ds[k], 10);
  @add16(ds[0], ds[0], 100);
  out[0] = @as(u32, a[0] + 10 * a[1] + 100 * a[2] + 1000 * a[3]);
  out[1] = @as(u32, b[0] + 10 * b[1] + 100 * b[2] + 1000 * b[3]);
  out[2] = ds.len;
  sys.unblock_cmd_stream();
}
""", arch))
    # x even: a = 1, 112, 113, 4 -> 1 + 1120 + 11300 + 4000; x odd: a = 101, 102, 3, 4 and
    # b = 5, 16, 17, 8
    even = 1 + 1120 + 11300 + 4000
    odd_a = 101 + 1020 + 300 + 4000
    b, odd_b = 5 + 60 + 700 + 8000, 5 + 160 + 1700 + 8000
    np.testing.assert_array_equal(got[:, :3], [[even, b, 2], [odd_a, odd_b, 2], [even, b, 2]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_local_array_of_dsds_is_assigned_at_runtime_indices_and_whole(tmp_path, arch):
    # three DSDs over one array; the local array starts in order, PE x puts its third DSD at
    # x, then the array is rotated whole, and each element adds 1, 10, 100 in turn
    got = run_out(program(tmp_path, """
var a = [3]u16 { 0, 0, 0 };
const d0 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> a[i] });
const d1 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> a[i + 1] });
const d2 = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> a[i + 2] });
fn main() void {
  var ds: [3]mem1d_dsd = [3]mem1d_dsd { d0, d1, d2 };
  const x = lay.get_x_coord();
  ds[x] = d2;
  ds = [3]mem1d_dsd { ds[1], ds[2], ds[0] };
  @add16(ds[0], ds[0], 1);
  @add16(ds[1], ds[1], 10);
  @add16(ds[2], ds[2], 100);
  out[0] = a[0];
  out[1] = a[1];
  out[2] = a[2];
  sys.unblock_cmd_stream();
}
""", arch))
    # x = 0: (d2, d1, d2) -> (d1, d2, d2): a1 += 1, a2 += 110
    # x = 1: (d0, d2, d2) -> (d2, d2, d0): a2 += 11, a0 += 100
    # x = 2: (d0, d1, d2) -> (d1, d2, d0)
    np.testing.assert_array_equal(got[:, :3], [[0, 1, 110], [100, 0, 11], [100, 1, 10]])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_bad_runtime_index_into_an_array_of_dsds_faults_the_pe(tmp_path, arch):
    from wsejax import FabricFault, SdkRuntime
    prog = program(tmp_path, """
var a = [2]u16 { 0, 0 };
var ds = [2]mem1d_dsd {
  @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> a[i] }),
  @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> a[i + 1] }),
};
fn main() void {
  @add16(ds[lay.get_x_coord()], ds[0], 1);
  sys.unblock_cmd_stream();
}
""", arch)
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    with pytest.raises(FabricFault, match="out of range"):
        r.launch("main", nonblock=False)


CIRCBUF = """
var ring = [4]u32 { 1, 2, 3, 4 };
var other = [4]u32 { 7, 8, 9, 5 };
var got = @zeros([6]u32);
const rings = [2]circbuf_dsd {
  @get_dsd(circbuf_dsd, .{ .base_address = &ring, .extent = 6, .wraparound = 3 }),
  @get_dsd(circbuf_dsd, .{ .base_address = &other, .extent = 6, .wraparound = 3 }),
};
var held = rings;
const src = @get_dsr(dsr_src1, 1);
const dst = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> got[i] });
fn main() void {
  const k = lay.get_x_coord() % 2;
  @load_to_dsr_xdsr(src, @get_xdsr(1), rings[k]);
  @mov32(dst, src);
  out[0] = got[0] + 10 * got[1] + 100 * got[2] + 1000 * got[5];
  @load_to_dsr_xdsr(src, @get_xdsr(1), held[1 - k]);
  @mov32(dst, src);
  out[1] = got[0] + 10 * got[1] + 100 * got[2] + 1000 * got[5];
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_circbuf_chosen_at_run_time_goes_round_its_ring(tmp_path, arch):
    got = run_out(program(tmp_path, CIRCBUF, arch))
    first, second = 1 + 20 + 300 + 3000, 7 + 80 + 900 + 9000
    np.testing.assert_array_equal(got[:, :2], [[first, second], [second, first],
                                               [first, second]])


@pytest.mark.parametrize("body, where, message", [
    ("var ds: [2]mem1d_dsd;\nfn main() void { _ = ds; }\n", "var ds",
     "'var ds': an array of DSDs needs an initial value, each element a DSD (made by "
     "@get_dsd)\n"),
    ("var ds = [2]fabout_dsd {\n"
     "  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = @get_color(1) }),\n"
     "  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = @get_color(2) }) };\n"
     "fn main() void { ds[0] = @get_dsd(fabout_dsd, .{ .extent = 1, "
     ".fabric_color = @get_color(3) }); }\n", "@get_dsd(fabout_dsd, .{ .extent = 1, "
     ".fabric_color = @get_color(3)",
     "an element of 'ds': this fabout_dsd differs from each DSD it was declared with in "
     "color, output queue"),
    ("var a = [2]u16 { 0, 0 };\n"
     "var ds = [1]mem1d_dsd { @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> a[i] }) };\n"
     "fn main() void { ds[0] = @get_dsd(fabout_dsd, .{ .extent = 1, "
     ".fabric_color = @get_color(1) }); }\n", "@get_dsd(fabout_dsd",
     "an element of 'ds': expected a mem1d_dsd, got a fabout_dsd"),
    ("var a = [2]u16 { 0, 0 };\n"
     "var ds = [1]mem1d_dsd { @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> a[i] }) };\n"
     "fn main() void { ds[0] += 1; }\n", "ds[0] +=",
     "'+=' on a DSD: a DSD takes only '='"),
    ("var a = [2]u16 { 0, 0 };\n"
     "var ds = [1]mem1d_dsd { @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> a[i] }) };\n"
     "fn main() void { _ = ds[1]; }\n", "ds[1]",
     "index [1] out of range of an array of shape [1]"),
])
def test_dsd_array_errors_are_located(tmp_path, body, where, message):
    e = compile_error(tmp_path, body, "wse2", where)
    assert message in str(e)
