"""DSDs chosen at run time among DSDs that differ in what the emulator fixes when it compiles
the program (spec 3.1, 7): fabric DSDs of different colors, mem4d DSDs of different shapes,
picked from a `const` array or a `var` array of DSDs by a runtime index, held in DSD locals,
used by synchronous and asynchronous operations and by function calls. Each program runs on
the engine with the reference beside it (check mode: every symbol and the clock must agree),
and its results are checked by hand or against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, read
from test_csl_handles import ARCHES, EXPORTS, HEAD, TAIL, program, run_out

from wsejax import SdkRuntime

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
