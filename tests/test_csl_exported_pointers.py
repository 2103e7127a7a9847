"""`@export_symbol` of a pointer variable the program changes at run time (spec 10, 12.3):
each host copy goes where the pointer points as the copy runs, per PE. Each program runs on
the engine with the reference beside it (check mode), its results checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import read
from test_csl_handles import ARCHES, program

from wsejax import MemcpyError, SdkRuntime

MOVED = """
var other = [6]u32 { 10, 11, 12, 13, 14, 15 };
var other_ptr: [*]u32 = &other;
var step: u16 = 0;
fn main() void {
  const x = lay.get_x_coord();
  out[0] = 1;
  if (x == 1) { out_ptr = &other[2]; }
  if (x == 2) { out_ptr = &other; }
  // the advertised pointer, read by its id: where out_ptr points now (as u16 elements)
  const t = @get_tensor_ptr(@get_symbol_id(out_ptr));
  other[5] = @as(u32, t[2]);
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(other_ptr, "other"); }
"""

OTHER = '\n@export_name("other", [*]u32, true);'


def _runtime(prog) -> SdkRuntime:
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    r.launch("main", nonblock=False)
    return r


@pytest.mark.parametrize("arch", ARCHES)
def test_the_host_copies_where_an_exported_pointer_points_now(tmp_path, arch):
    r = _runtime(program(tmp_path, MOVED, arch, layout=OTHER))
    # PE 0: out itself; PE 1: other[2..4]; PE 2: other[0..2]
    np.testing.assert_array_equal(read(r, "out", 3, np.uint32)[0],
                                  [[1, 0, 0], [12, 13, 14], [10, 11, 12]])
    data = np.arange(100, 109, dtype=np.uint32)
    r.memcpy_h2d(r.get_id("out"), data, 0, 0, 3, 1, 3, streaming=False, nonblock=False)
    np.testing.assert_array_equal(read(r, "out", 3, np.uint32)[0],
                                  [[100, 101, 102], [103, 104, 105], [106, 107, 108]])
    # the writes landed in `other` where the pointer pointed there
    # other[5]: what @get_tensor_ptr read, u16 element 2 (the low half of u32 element 1)
    # where out_ptr pointed: out[1] = 0 on PE 0, other[3] on PE 1, other[1] on PE 2
    np.testing.assert_array_equal(read(r, "other", 6, np.uint32)[0],
                                  [[10, 11, 12, 13, 14, 0], [10, 11, 103, 104, 105, 13],
                                   [106, 107, 108, 13, 14, 11]])
    r.stop()


def test_an_exported_pointer_into_no_array_is_a_host_error(tmp_path):
    body = MOVED.replace("if (x == 2) { out_ptr = &other; }",
                         "if (x == 2) { out_ptr = @bitcast([*]u32, @as(u16, 4)); }").replace(
        "other[5] = @as(u32, t[2]);", "_ = t;")
    r = _runtime(program(tmp_path, body, "wse2", layout=OTHER))
    with pytest.raises(MemcpyError, match=r"memcpy_d2h: symbol 'out' on PE \(2, 0\) is pointer "
                       r"'out_ptr', which holds address 4, inside no array of 4-byte elements"):
        read(r, "out", 3, np.uint32)


def test_a_copy_past_the_end_of_the_array_pointed_to_is_a_host_error(tmp_path):
    r = _runtime(program(tmp_path, MOVED, "wse2", layout=OTHER))
    with pytest.raises(MemcpyError, match="memcpy_d2h: symbol 'out' holds 4 32-bit elements "
                       r"per PE \(6 u32\), got elem_per_pe=5"):
        read(r, "out", 5, np.uint32)
