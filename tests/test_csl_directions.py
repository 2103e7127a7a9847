"""Directions held at run time (spec 3.1, 11 `<directions>`): a comptime array of directions
read at a runtime index, arrays and scalars of type `direction` in PE memory and in locals,
compared, switched on, and mapped by `<directions>`; a runtime direction where a route needs
one is a located error. Each program runs on the engine with the reference beside it (check
mode), and its results are checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_csl_handles import ARCHES, program, run_out

from wsejax import FabricFault, SdkRuntime

DIRS = """
const directions = @import_module("<directions>");
const dirs = [4]direction { NORTH, EAST, SOUTH, WEST };
var held = [3]direction { RAMP, WEST, SOUTH };
var one: direction = EAST;
fn number(d: direction) u32 {
  return switch (d) { NORTH => 1, EAST => 2, SOUTH => 3, WEST => 4, RAMP => 5 };
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_directions_chosen_at_run_time_compare_switch_and_rotate(tmp_path, arch):
    got = run_out(program(tmp_path, DIRS + """
fn main() void {
  const x = lay.get_x_coord();
  const d = dirs[x];                       // NORTH, EAST, SOUTH
  var r = directions.rotate_clockwise(d);  // EAST, SOUTH, WEST
  held[x] = r;
  if (d == EAST) { one = directions.flip(d); }
  out[0] = switch (held[x]) { NORTH => 1, EAST => 2, SOUTH => 3, WEST => 4, RAMP => 5 };
  out[1] = number(held[(x + 1) % 3]) + 10 * number(WEST);
  out[2] = if (one == WEST) 10 else if (one != EAST) 20 else 30;
  r = directions.flip_vertical(dirs[(x + 3) % 4]);
  out[3] = if (r == SOUTH) 1 else if (r == EAST) 2 else if (r == NORTH) 3 else 4;
  sys.unblock_cmd_stream();
}
""", arch))
    # held after PE x's store: x=0: EAST, WEST, SOUTH; x=1: RAMP, SOUTH, SOUTH;
    # x=2: RAMP, WEST, WEST; dirs[(x + 3) % 4] = WEST, NORTH, EAST, flipped vertically
    np.testing.assert_array_equal(got, [[2, 44, 30, 4], [3, 43, 10, 1], [4, 45, 30, 2]])


@pytest.mark.parametrize("arch", ARCHES)
def test_rotating_ramp_at_run_time_faults_the_pe(tmp_path, arch):
    prog = program(tmp_path, DIRS + """
fn main() void {
  const r = directions.rotate_counterclockwise(held[lay.get_x_coord() % 1]);
  out[0] = if (r == NORTH) 1 else 2;
  sys.unblock_cmd_stream();
}
""", arch)
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    with pytest.raises(FabricFault, match="out of range"):
        r.launch("main", nonblock=False)


@pytest.mark.parametrize("arch", ARCHES)
def test_functions_return_directions_known_at_run_time(tmp_path, arch):
    got = run_out(program(tmp_path, DIRS + """
fn pick(i: u16) direction {
  if (i == 0) { return WEST; }
  return dirs[i];
}
fn turn(d: direction, twice: bool) direction {
  const r = directions.rotate_clockwise(d);
  return if (twice) directions.rotate_clockwise(r) else r;
}
fn main() void {
  const x = lay.get_x_coord();
  const d = pick(x);                        // WEST, EAST, SOUTH
  out[0] = number(d);
  out[1] = number(turn(pick(2 - x), x == 1));
  held[x] = turn(d, false);
  out[2] = number(held[x]) + 10 * number(comptime pick(0));
  out[3] = if (pick(x) == d and turn(d, true) != d) 1 else 0;
  sys.unblock_cmd_stream();
}
""", arch))
    # pick(2 - x) = SOUTH, EAST, WEST: turned once (x = 0, 2) or twice (x = 1): WEST, WEST,
    # NORTH; turn(d) of WEST, EAST, SOUTH is NORTH, SOUTH, WEST
    np.testing.assert_array_equal(got, [[4, 4, 41, 1], [2, 4, 43, 1], [3, 1, 44, 1]])
