"""DSDs chosen at run time among DSDs that differ in what the emulator fixes when it compiles
the program (spec 3.1, 7): fabric DSDs of different colors, mem4d DSDs of different shapes,
picked from a `const` array or a `var` array of DSDs by a runtime index, held in DSD locals,
used by synchronous and asynchronous operations and by function calls, loaded into registers
(which then hold one DSD per fixed part and the number of the one they hold), and returned
by functions. Each program runs on the engine with the reference beside it (check mode: every
symbol and the clock must agree), and its results are checked by hand or against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, read
from test_csl_handles import ARCHES, EXPORTS, HEAD, TAIL, compile_error, program, run_out

from wsejax import FabricFault, SdkRuntime

# on each PE, colors 5 and 6 both run from its CE back to itself; main sends words[0] on
# color 5 and words[1] on color 6 through fabout DSDs picked from a const array at run time
# (in the order x % 2 gives), and receives them through fabin DSDs of colors 5 and 6 picked
# the same way into buf[0] and buf[1]
LOOPBACK = """
const c5 = @get_color(5);
const c6 = @get_color(6);
const oq5 = @get_output_queue(2);
const oq6 = @get_output_queue(3);
const iq5 = @get_input_queue(4);
const iq6 = @get_input_queue(5);
const outs = [2]fabout_dsd {
  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = c5, .output_queue = oq5 }),
  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = c6, .output_queue = oq6 }),
};
const ins = [2]fabin_dsd {
  @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 1, .input_queue = iq5 }
                      else .{ .extent = 1, .fabric_color = c5, .input_queue = iq5 }),
  @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 1, .input_queue = iq6 }
                      else .{ .extent = 1, .fabric_color = c6, .input_queue = iq6 }),
};
var words = [2]u32 { 70, 90 };
var buf = @zeros([2]u32);
comptime {
  if (@is_arch("wse3")) {
    @initialize_queue(oq5, .{ .color = c5 });
    @initialize_queue(oq6, .{ .color = c6 });
  }
  @initialize_queue(iq5, .{ .color = c5 });
  @initialize_queue(iq6, .{ .color = c6 });
}
"""

LOOPBACK_LAYOUT = """
for (@range(i16, 3)) |x| {
  @set_color_config(x, 0, @get_color(5), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ RAMP } } });
  @set_color_config(x, 0, @get_color(6), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ RAMP } } });
}"""


# a one-word mem1d DSD over words[0] and one over buf[0]
WORD = "@get_dsd(mem1d_dsd, .{ .tensor_access = |j|{1} -> words[j] })"
BUF = "@get_dsd(mem1d_dsd, .{ .tensor_access = |j|{1} -> buf[j] })"


@pytest.mark.parametrize("arch", ARCHES)
def test_fabric_dsds_of_different_colors_are_chosen_from_a_const_array(tmp_path, arch):
    # PE x sends words[k] on outs[k] for k = x % 2 then the other one, then receives from
    # ins[k] into buf[k] in the other order: each color carries its own word (were both sent
    # on one color, buf would take them in the order sent, or wait for ever)
    got = run_out(program(tmp_path, LOOPBACK + f"""
fn main() void {{
  const first = lay.get_x_coord() % 2;
  var i: u16 = 0;
  while (i < 2) : (i += 1) {{
    const k = (first + i) % 2;
    @mov32(outs[k], @increment_dsd_offset({WORD}, k, u32));
  }}
  i = 0;
  while (i < 2) : (i += 1) {{
    const k = (first + 1 + i) % 2;
    @mov32(@increment_dsd_offset({BUF}, k, u32), ins[k]);
    out[2 + i] = k;
  }}
  out[0] = buf[0];
  out[1] = buf[1];
  sys.unblock_cmd_stream();
}}
""", arch, layout=LOOPBACK_LAYOUT))
    np.testing.assert_array_equal(got, [[70, 90, 1, 0], [70, 90, 0, 1], [70, 90, 1, 0]])


# the PE at (1, 1) sends on colors 1 to 4 to its east, west, south and north neighbours;
# each of those receives on its color into buf[0]. `outs` and `ins` list the fabric DSDs of
# the four colors; `side` numbers the PE's side of the middle one (0 east, 1 west, 2 south,
# 3 north; 4 the middle and the corners)
STAR = HEAD + """
const oqs = [4]output_queue { @get_output_queue(1), @get_output_queue(2),
                              @get_output_queue(3), @get_output_queue(4) };
const iqs = [4]input_queue { @get_input_queue(2), @get_input_queue(3),
                             @get_input_queue(4), @get_input_queue(5) };
const outs = [4]fabout_dsd {
  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = @get_color(1), .output_queue = oqs[0] }),
  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = @get_color(2), .output_queue = oqs[1] }),
  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = @get_color(3), .output_queue = oqs[2] }),
  @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = @get_color(4), .output_queue = oqs[3] }),
};
fn fabin(comptime n: u16) fabin_dsd {
  if (@is_arch("wse3")) { return @get_dsd(fabin_dsd, .{ .extent = 1, .input_queue = iqs[n] }); }
  return @get_dsd(fabin_dsd, .{ .extent = 1, .fabric_color = @get_color(n + 1),
                                .input_queue = iqs[n] });
}
const ins = [4]fabin_dsd { fabin(0), fabin(1), fabin(2), fabin(3) };
var words = [4]u32 { 10, 20, 30, 40 };
var buf = @zeros([1]u32);
const buf_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |j|{1} -> buf[j] });
fn side() u16 {
  const x = lay.get_x_coord();
  const y = lay.get_y_coord();
  if (x == 2 and y == 1) { return 0; }
  if (x == 0 and y == 1) { return 1; }
  if (x == 1 and y == 2) { return 2; }
  if (x == 1 and y == 0) { return 3; }
  return 4;
}
comptime {
  for (@range(u16, 4)) |n| {
    if (@is_arch("wse3")) { @initialize_queue(oqs[n], .{ .color = @get_color(n + 1) }); }
    @initialize_queue(iqs[n], .{ .color = @get_color(n + 1) });
  }
}
"""

STAR_LAYOUT = """
@set_color_config(1, 1, @get_color(1), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
@set_color_config(1, 1, @get_color(2), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ WEST } } });
@set_color_config(1, 1, @get_color(3), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ SOUTH } } });
@set_color_config(1, 1, @get_color(4), .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ NORTH } } });
@set_color_config(2, 1, @get_color(1), .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
@set_color_config(0, 1, @get_color(2), .{ .routes = .{ .rx = .{ EAST }, .tx = .{ RAMP } } });
@set_color_config(1, 2, @get_color(3), .{ .routes = .{ .rx = .{ NORTH }, .tx = .{ RAMP } } });
@set_color_config(1, 0, @get_color(4), .{ .routes = .{ .rx = .{ SOUTH }, .tx = .{ RAMP } } });"""


def run_star(tmp_path, body: str, arch: str) -> np.ndarray:
    """`out` of each PE of the 3 x 3 star program after `main`, the reference checking the
    engine all along: `[y, x, 4]`."""
    prog = compile_pe(tmp_path, STAR + body + TAIL, EXPORTS + STAR_LAYOUT, w=3, h=3, arch=arch)
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    r.launch("main", nonblock=False)
    got = read(r, "out", 4, np.uint32)
    r.stop()
    return got


def star_expected(middle: int, sides: bool) -> np.ndarray:
    """What the star's PEs write: out[0] is `middle` at (1, 1), words[n] on side n and 0 at
    the corners; out[1] is the side number (4 where none) where `sides`."""
    want = np.zeros((3, 3, 4), np.uint32)
    want[:, :, 1] = 4 if sides else 0
    for n, (x, y) in enumerate([(2, 1), (0, 1), (1, 2), (1, 0)]):
        want[y, x, 0] = 10 * (n + 1)
        want[y, x, 1] = n if sides else 0
    want[1, 1, 0] = middle
    return want


@pytest.mark.parametrize("arch", ARCHES)
def test_the_middle_pe_sends_to_its_four_neighbours_through_dsds_picked_at_run_time(
        tmp_path, arch):
    got = run_star(tmp_path, """
fn main() void {
  const s = side();
  if (s == 4 and lay.get_x_coord() == 1) {
    var i: u16 = 0;
    while (i < 4) : (i += 1) {
      @mov32(outs[i], @increment_dsd_offset(@get_dsd(mem1d_dsd, .{ .tensor_access = |j|{1}
                                                                 -> words[j] }), i, u32));
    }
    out[0] = 4;
  } else if (s < 4) {
    @mov32(buf_dsd, ins[s]);
    out[0] = buf[0];
  }
  out[1] = s;
  sys.unblock_cmd_stream();
}
""", arch)
    np.testing.assert_array_equal(got, star_expected(4, True))


@pytest.mark.parametrize("arch", ARCHES)
def test_asynchronous_operations_start_on_the_dsd_picked_at_run_time(tmp_path, arch):
    # each send starts one op, on its color only (were every color's op started, each
    # neighbour would take words[0] first); a receive activates the task that reads it
    got = run_star(tmp_path, """
const recv_id = @get_local_task_id(11);
task on_recv() void { out[0] = buf[0]; sys.unblock_cmd_stream(); }
comptime { @bind_local_task(on_recv, recv_id); }
fn main() void {
  const s = side();
  out[1] = s;
  if (s == 4 and lay.get_x_coord() == 1) {
    var i: u16 = 0;
    while (i < 4) : (i += 1) {
      @mov32(outs[i], @increment_dsd_offset(@get_dsd(mem1d_dsd, .{ .tensor_access = |j|{1}
                                                                 -> words[j] }), i, u32),
             .{ .async = true });
    }
    out[0] = 4;
    sys.unblock_cmd_stream();
  } else if (s < 4) {
    @mov32(buf_dsd, ins[s], .{ .async = true, .activate = recv_id });
  } else {
    sys.unblock_cmd_stream();
  }
}
""", arch)
    np.testing.assert_array_equal(got, star_expected(4, True))


# a [4, 4] array and three mem4d DSDs of different shapes over it: a [2, 2] corner, a
# column of three, a [1, 3] row; their element numbers, row-major
SHAPES = """
var a = [4, 4]i16 { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
const shapes = [3]mem4d_dsd {
  @get_dsd(mem4d_dsd, .{ .tensor_access = |i, j|{2, 2} -> a[i, j] }),
  @get_dsd(mem4d_dsd, .{ .tensor_access = |i, j|{3, 1} -> a[i, j + 1] }),
  @get_dsd(mem4d_dsd, .{ .tensor_access = |i, j|{1, 3} -> a[3, j] }),
};
fn weigh() void {
  for (@range(u16, 4)) |i| {
    for (@range(u16, 4)) |j| {
      out[0] += @as(u32, 4 * i + j + 1) * @as(u32, a[i, j]);
      out[1] += @as(u32, a[i, j]);
    }
  }
}
"""
SHAPE_ELEMENTS = [[0, 1, 4, 5], [1, 5, 9], [12, 13, 14]]


def weighed(a: np.ndarray) -> list:
    return [int((np.arange(1, 17) * a).sum()), int(a.sum())]


@pytest.mark.parametrize("arch", ARCHES)
def test_mem4d_dsds_of_different_shapes_are_mapped_set_and_passed_at_run_time(tmp_path, arch):
    # PE x doubles what shapes[x] covers (by @map), then adds 100 through it moved one
    # element on (a setter of the pick), passed to a function
    got = run_out(program(tmp_path, SHAPES + """
fn twice(v: i16) i16 { return 2 * v; }
fn bump(d: mem4d_dsd) void { @add16(d, d, 100); }
fn main() void {
  const k = lay.get_x_coord();
  const d = shapes[k];
  @map(twice, d, d);
  bump(@increment_dsd_offset(shapes[k], 1, i16));
  weigh();
  sys.unblock_cmd_stream();
}
""", arch))
    want = []
    for elems in SHAPE_ELEMENTS:
        a = np.arange(1, 17)
        a[elems] *= 2
        a[np.add(elems, 1)] += 100
        want.append(weighed(a))
    np.testing.assert_array_equal(got[:, :2], want)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_local_array_of_mem4d_dsds_of_different_shapes_is_assigned_at_run_time(tmp_path,
                                                                                 arch):
    # the local array starts as shapes; PE x puts shapes[2] at element x, copies element
    # (x + 1) % 3 into a DSD variable, and adds 1, 10, 100 through the elements in turn,
    # then 1000 through the variable
    got = run_out(program(tmp_path, SHAPES + """
fn main() void {
  var ds: [3]mem4d_dsd = shapes;
  const x = lay.get_x_coord();
  ds[x] = shapes[2];
  var d = ds[(x + 1) % 3];
  var i: u16 = 0;
  var n: i16 = 1;
  while (i < 3) : (i += 1) {
    @add16(ds[i], ds[i], n);
    n *= 10;
  }
  @add16(d, d, 1000);
  weigh();
  sys.unblock_cmd_stream();
}
""", arch))
    want = []
    for x in range(3):
        picks = [SHAPE_ELEMENTS[2] if k == x else SHAPE_ELEMENTS[k] for k in range(3)]
        a = np.arange(1, 17)
        for k, n in enumerate([1, 10, 100]):
            a[picks[k]] += n
        a[picks[(x + 1) % 3]] += 1000
        want.append(weighed(a))
    np.testing.assert_array_equal(got[:, :2], want)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("where", ["global", "local"])
def test_an_array_of_fabin_dsds_of_different_colors_is_assigned_and_read_at_run_time(
        tmp_path, arch, where):
    # held starts as ins (colors 5, 6); PE x swaps its elements where x is odd, by runtime
    # indices, then sends words[k] on color 5 + k, and receives through held[k] into
    # buf[k], for k = 0, 1: a swapped PE takes each word into the other's place. A local
    # array's elements live on past each wait for a wavelet.
    decl = "var held: [2]fabin_dsd = ins;"
    got = run_out(program(tmp_path, LOOPBACK + f"""
{decl if where == "global" else ""}
fn main() void {{
  {decl if where == "local" else ""}
  const s = lay.get_x_coord() % 2;
  if (s == 1) {{
    var t: fabin_dsd = held[s];
    held[s] = held[1 - s];
    held[1 - s] = t;
  }}
  var k: u16 = 0;
  while (k < 2) : (k += 1) {{
    @mov32(outs[k], @increment_dsd_offset({WORD}, k, u32));
  }}
  k = 0;
  while (k < 2) : (k += 1) {{
    @mov32(@increment_dsd_offset({BUF}, k, u32), held[k]);
  }}
  out[0] = buf[0];
  out[1] = buf[1];
  sys.unblock_cmd_stream();
}}
""", arch, layout=LOOPBACK_LAYOUT))
    np.testing.assert_array_equal(got[:, :2], [[70, 90], [90, 70], [70, 90]])


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("array", ["outs", "held"])
def test_a_bad_runtime_index_into_dsds_of_different_colors_faults_the_pe(tmp_path, arch, array):
    prog = program(tmp_path, LOOPBACK + f"""
var held = outs;
fn main() void {{
  @mov32({array}[lay.get_x_coord()], {WORD});
  sys.unblock_cmd_stream();
}}
""", arch, layout=LOOPBACK_LAYOUT)
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    with pytest.raises(FabricFault, match="out of range"):
        r.launch("main", nonblock=False)


# ------------------------------------------------------------------------------------------------
# registers loaded with DSDs of several fixed parts, and functions returning one of several


def register_parts(prog) -> tuple:
    """The registers of the PE program (file, number, DSD variable, .save_address) and its
    symbols that hold the part a register holds."""
    pe = prog.classes[0]
    return (sorted((d.kind, d.id, d.name, d.save_address) for d in pe.dsrs),
            sorted(s.name for s in pe.symbols if s.name.startswith("%dsr.")))


@pytest.mark.parametrize("arch", ARCHES)
def test_a_register_is_loaded_at_run_time_with_fabin_dsds_of_different_colors(tmp_path, arch):
    # both words wait on their colors; PE x (k = x % 2) loads a src1 register with the
    # fabin of color 5 + 1 - k, then 5 + k, and moves from it into buf[0], then buf[1]
    # (`recv` is compiled for the register while it has had one color only); then it
    # takes a third word, sent on color 5 + k, through an .async register loaded with
    # ins[k] (picked at run time), whose completion activates the task that writes out[2]
    prog = program(tmp_path, LOOPBACK + f"""
const src = @get_dsr(dsr_src1, 2);
const dst = @get_dsr(dsr_dest, 1);
const later = @get_dsr(dsr_src1, 3);
const done_id = @get_local_task_id(12);
var third = @zeros([1]u32);
task done() void {{
  out[2] = third[0];
  sys.unblock_cmd_stream();
}}
comptime {{ @bind_local_task(done, done_id); }}
fn recv(n: u16) void {{
  @load_to_dsr(dst, @increment_dsd_offset({BUF}, n, u32));
  @mov32(dst, src);
}}
fn main() void {{
  const k = lay.get_x_coord() % 2;
  @mov32(outs[0], {WORD});
  @mov32(outs[1], @increment_dsd_offset({WORD}, 1, u32));
  if (k == 1) {{
    @load_to_dsr(src, ins[0]);
    recv(0);
    @load_to_dsr(src, ins[1]);
  }} else {{
    @load_to_dsr(src, ins[1]);
    recv(0);
    @load_to_dsr(src, ins[0]);
  }}
  recv(1);
  out[0] = buf[0];
  out[1] = buf[1];
  words[0] = 7 + k;
  @mov32(outs[k], {WORD});
  @load_to_dsr(later, ins[k], .{{ .async = true, .activate = done_id }});
  @mov32(@get_dsd(mem1d_dsd, .{{ .tensor_access = |j|{{1}} -> third[j] }}), later);
}}
""", arch, layout=LOOPBACK_LAYOUT)
    regs, tags = register_parts(prog)
    assert regs == [("dest", 1, "%dsr.dest.1", False), ("src1", 2, "%dsr.src1.2", False),
                    ("src1", 2, "%dsr.src1.2.1", False), ("src1", 3, "%dsr.src1.3", False),
                    ("src1", 3, "%dsr.src1.3.1", False)]
    assert tags == ["%dsr.src1.2.tag", "%dsr.src1.3.tag"]
    got = run_out(prog)
    np.testing.assert_array_equal(got[:, :3], [[90, 70, 7], [70, 90, 8], [90, 70, 7]])


# a [32] array seen through two mem4d DSDs of different shapes: a [2, 2] block of rows of
# four, and a row of three every other element
CURSORS = """
var a: [32]i16;
var got = @zeros([16]i16);
const blocks = [2]mem4d_dsd {
  @get_dsd(mem4d_dsd, .{ .tensor_access = |i, j|{2, 2} -> a[4 * i + j] }),
  @get_dsd(mem4d_dsd, .{ .tensor_access = |i, j|{1, 3} -> a[i + 2 * j] }),
};
const src = @get_dsr(dsr_src1, 1);
const dst = @get_dsr(dsr_dest, 1);
fn main() void {
  for (@range(u16, 32)) |i| { a[i] = @as(i16, 10 + i); }
  const k = lay.get_x_coord() % 2;
  @load_to_dsr(dst, @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{16} -> got[i] }),
               .{ .save_address = true });
  @load_to_dsr(src, blocks[k], .{ .save_address = true });
  @mov16(dst, src);
  @mov16(dst, src);
  @load_to_dsr(src, blocks[1 - k], .{ .save_address = true });
  @mov16(dst, src);
  @load_to_dsr(src, blocks[k], .{ .save_address = true });
  @mov16(dst, src);
  for (@range(u16, 16)) |i| {
    out[0] += @as(u32, i + 1) * @as(u32, got[i]);
    out[1] += @as(u32, got[i]);
    if (got[i] != 0) { out[2] += 1; }
  }
  sys.unblock_cmd_stream();
}
"""


def cursor_sums(k: int) -> list:
    """out[0:3] of CURSORS on a PE that loads blocks[k] first: the elements each move takes,
    a saved mem4d register going on one past the last element it took, a reload starting
    at the DSD's own start."""
    first = [[0, 1, 4, 5], [0, 2, 4]]
    after = [[6, 7, 10, 11], [5, 7, 9]]
    taken = first[k] + after[k] + first[1 - k] + first[k]
    got = np.zeros(16, np.int64)
    got[:len(taken)] = 10 + np.array(taken)
    return [int((np.arange(1, 17) * got).sum()), int(got.sum()), len(taken)]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_saved_register_is_reloaded_with_mem4d_dsds_of_other_shapes(tmp_path, arch):
    prog = program(tmp_path, CURSORS, arch)
    regs, tags = register_parts(prog)
    assert regs == [("dest", 1, "%dsr.dest.1", True), ("src1", 1, "%dsr.src1.1", True),
                    ("src1", 1, "%dsr.src1.1.1", True)]
    assert tags == ["%dsr.src1.1.tag"]
    got = run_out(prog)
    np.testing.assert_array_equal(got[:, :3], [cursor_sums(0), cursor_sums(1),
                                               cursor_sums(0)])
    assert cursor_sums(0)[2] == 15 and cursor_sums(1)[2] == 13


@pytest.mark.parametrize("arch", ARCHES)
def test_map_runs_through_registers_of_mem4d_dsds_of_shapes_picked_at_run_time(tmp_path, arch):
    # PE x loads shapes[x] into both single-step registers of @map (each op runs on the
    # pair of parts their two tags name)
    got = run_out(program(tmp_path, SHAPES + """
const src = @get_dsr(dsr_src1, 1);
const dst = @get_dsr(dsr_dest, 1);
fn twice(v: i16) i16 { return 2 * v; }
fn main() void {
  const k = lay.get_x_coord();
  @load_to_dsr(src, shapes[k], .{ .single_step = true });
  @load_to_dsr(dst, shapes[k], .{ .single_step = true });
  @map(twice, src, dst);
  weigh();
  sys.unblock_cmd_stream();
}
""", arch))
    want = []
    for elems in SHAPE_ELEMENTS:
        a = np.arange(1, 17)
        a[elems] *= 2
        want.append(weighed(a))
    np.testing.assert_array_equal(got[:, :2], want)


@pytest.mark.parametrize("arch", ARCHES)
def test_an_op_from_a_fifo_into_a_register_of_shapes_picked_at_run_time_gives_its_result(
        tmp_path, arch):
    # the FIFO holds three numbers; PE x moves them into shapes[x] through a register: the
    # [2, 2] corner runs the FIFO dry (false), the others take three (true)
    got = run_out(program(tmp_path, SHAPES + """
var fbuf = @zeros([8]i16);
const f = @allocate_fifo(fbuf);
var vals = [3]i16 { 100, 200, 300 };
const dst = @get_dsr(dsr_dest, 1);
fn main() void {
  const k = lay.get_x_coord();
  _ = @mov16(f, @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> vals[i] }));
  @load_to_dsr(dst, shapes[k]);
  const ok = @mov16(dst, f);
  if (ok) { out[2] = 1; }
  weigh();
  sys.unblock_cmd_stream();
}
""", arch))
    want = []
    for elems in SHAPE_ELEMENTS:
        a = np.arange(1, 17)
        a[elems[:3]] = [100, 200, 300]
        want.append(weighed(a) + [int(len(elems) == 3)])
    np.testing.assert_array_equal(got[:, :3], want)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_register_takes_circbufs_of_other_extents_and_rings(tmp_path, arch):
    # rings[k] (k = x % 2) goes round ring[0:3] for 6 elements, or round ring[0:4] for 5
    got = run_out(program(tmp_path, """
var ring = [5]u32 { 1, 2, 3, 4, 5 };
var got = @zeros([6]u32);
const rings = [2]circbuf_dsd {
  @get_dsd(circbuf_dsd, .{ .base_address = &ring, .extent = 6, .wraparound = 3 }),
  @get_dsd(circbuf_dsd, .{ .base_address = &ring, .extent = 5, .wraparound = 4 }),
};
const src = @get_dsr(dsr_src1, 1);
fn main() void {
  const k = lay.get_x_coord() % 2;
  @load_to_dsr_xdsr(src, @get_xdsr(1), rings[k]);
  @mov32(@get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> got[i] }), src);
  for (@range(u16, 6)) |i| { out[0] += @as(u32, i + 1) * got[i]; }
  sys.unblock_cmd_stream();
}
""", arch))
    wants = [np.array([1, 2, 3, 1, 2, 3]), np.array([1, 2, 3, 4, 1, 0])]
    sums = [int((np.arange(1, 7) * w).sum()) for w in wants]
    np.testing.assert_array_equal(got[:, 0], [sums[0], sums[1], sums[0]])


@pytest.mark.parametrize("arch", ARCHES)
def test_functions_return_fabout_dsds_of_different_colors(tmp_path, arch):
    # PE x (k = x % 2) sends 70 on the color pick_at(k) returns (a DSD picked at run time),
    # 90 on the one pick(1 - k) returns (one of two returns of different colors), passed
    # to a function; a second call of pick_at leaves the first one's DSD as it was
    got = run_out(program(tmp_path, LOOPBACK + f"""
fn pick_at(k: u16) fabout_dsd {{ return outs[k]; }}
fn pick(k: u16) fabout_dsd {{
  if (k == 0) {{ return outs[0]; }}
  return outs[1];
}}
fn send(d: fabout_dsd, n: u16) void {{ @mov32(d, @increment_dsd_offset({WORD}, n, u32)); }}
fn main() void {{
  const k = lay.get_x_coord() % 2;
  const d = pick_at(k);
  const e = pick(1 - k);
  const f = pick_at(1 - k);
  send(e, 1);
  @mov32(d, {WORD});
  @mov32(@increment_dsd_offset({BUF}, 0, u32), ins[0]);
  @mov32(@increment_dsd_offset({BUF}, 1, u32), ins[1]);
  out[0] = buf[0];
  out[1] = buf[1];
  sys.unblock_cmd_stream();
}}
""", arch, layout=LOOPBACK_LAYOUT))
    np.testing.assert_array_equal(got[:, :2], [[70, 90], [90, 70], [70, 90]])


@pytest.mark.parametrize("body, where, message", [
    # an element takes the fixed parts of the array's initial elements only
    (LOOPBACK + "var held = outs;\nfn main() void {\n  var k: u16 = 1;\n"
     "  held[k] = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = @get_color(7) });\n}\n",
     "@get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = @get_color(7)",
     "an element of 'held': this fabout_dsd differs from each DSD it was declared with in "
     "color, output queue"),
    # a DSD variable declared with one color keeps it
    (LOOPBACK + "var one = outs[0];\nfn main() void {\n  var k: u16 = 1;\n"
     "  one = outs[k];\n}\n", "one = outs[k]",
     "'one' holds one color, output queue, .wavelet_index_offset, .control, .zero or "
     ".simd_mode, but this fabout_dsd is chosen at run time among several"),
    # a function whose returns differ in their fixed part returns no DSD parameter
    (SHAPES + "fn pick(p: mem4d_dsd, k: u16) mem4d_dsd {\n"
     "  if (k == 0) { return shapes[0]; }\n  if (k == 1) { return shapes[1]; }\n"
     "  return p;\n}\n"
     "fn main() void { _ = pick(shapes[1], 1); }\n", "return p",
     "pick returns mem4d_dsds that differ in their dimensions (extents and strides) or "
     ".wavelet_index_offset, and this one's is not known here (a DSD parameter?)"),
    # a DSD parameter's fixed part is not known where its function is compiled (a fabric
    # DSD's is: its function is compiled for each)
    (SHAPES + "fn f(p: mem4d_dsd) void {\n  var k: u16 = 1;\n"
     "  const ds = [3]mem4d_dsd { shapes[0], shapes[1], p };\n  @add16(ds[k], ds[k], 1);\n}\n"
     "fn main() void { f(shapes[2]); }\n", "ds[k]",
     "an array of mem4d_dsd is indexed with a runtime index, but its elements differ in "
     "their dimensions (extents and strides) or .wavelet_index_offset, which wsejax fixes "
     "when it compiles the program, and element 2 is a DSD whose own is not known here (a "
     "DSD parameter?)"),
])
def test_uses_that_take_no_dsd_picked_among_fixed_parts_are_located_errors(
        tmp_path, body, where, message):
    e = compile_error(tmp_path, body, "wse2", where)
    assert message in str(e)
