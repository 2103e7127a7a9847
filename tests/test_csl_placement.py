"""`align(N)`, `linksection`, `linkname` on variables (spec 3.3; `wsejax/csl/placement.py`):
an aligned variable's address, read through `@bitcast` of a pointer to it, is a multiple of N,
on globals, struct fields, structs whose address is taken and a function's variables that
have an address; bad alignments are located errors; the link attributes warn that they change
nothing wsejax can show. Each program runs on the engine with the reference beside it (check
mode), its results checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, position
from test_csl_handles import ARCHES, EXPORTS, HEAD, TAIL, compile_error, program, run_out

ALIGNED = """
var pad: u16 = 1;
var a: [3]u16 align(64) = [3]u16 { 4, 5, 6 };
var pad2: u16 = 2;
var b: u16 align(8) = 9;
const S = struct { x: u16, y: u32 };
var s: S align(32) = .{ .x = 1, .y = 2 };
var ps: [3]S;
var t: S align(16) = .{ .x = 3, .y = 4 };
fn main() void {
  var loc: [2]u16 align(128) = [2]u16 { 7, 8 };
  const pl: [*]u16 = &loc;
  const x = lay.get_x_coord();
  a[x] += 10;
  // each address modulo its alignment: all 0
  out[0] = @bitcast(u16, &a) % 64 + @bitcast(u16, &b) % 8 + @bitcast(u16, &s) % 32
         + @bitcast(u16, &s.y) % 32 + @bitcast(u16, &t) % 16 + @bitcast(u16, &t.y) % 16
         + @bitcast(u16, pl) % 128;
  // the variables hold what they held: element 1 of a, b, the fields through pointers
  const sp: *S = &s;
  const tp: *S = &t;
  out[1] = @as(u32, a[1]) + 10 * @as(u32, b) + 100 * sp.*.y + 1000 * @as(u32, tp.*.x);
  out[2] = @as(u32, pl[1]) + @as(u32, ps[1].x) + @as(u32, pad + pad2);
  out[3] = @bitcast(u16, &a[1]) - @bitcast(u16, &a);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_aligned_variables_have_addresses_at_multiples_of_n(tmp_path, arch):
    prog = program(tmp_path, ALIGNED, arch)
    got = run_out(prog)
    # PE 1 added 10 to a[1]; a[1] = 5 elsewhere; 9, 2 and 3 as initialised
    np.testing.assert_array_equal(got, [[0, 5 + 90 + 200 + 3000, 8 + 0 + 3, 2],
                                        [0, 15 + 90 + 200 + 3000, 8 + 0 + 3, 2],
                                        [0, 5 + 90 + 200 + 3000, 8 + 0 + 3, 2]])
    addrs = prog.classes[0].addresses
    assert addrs["a"] % 64 == 0 and addrs["b"] % 8 == 0 and addrs["pad"] % 64 != 0


def test_align_takes_a_power_of_two(tmp_path):
    body = "var a: [2]u16 align(24);\nfn main() void { a[0] = 1; }\n"
    e = compile_error(tmp_path, body, "wse2", "24)")
    assert "align(24) on 'a': an alignment is a comptime power of two, in bytes (spec 3.3)" \
        in str(e)


def test_an_alignment_past_a_u16_address_is_refused(tmp_path):
    body = "fn main() void { var a: [2]u16 align(65536) = @zeros([2]u16); const p = &a; " \
           "p[0] = 1; }\n"
    e = compile_error(tmp_path, body, "wse2", "65536)")
    assert "align(65536) on 'a': wsejax's addresses are u16, so an alignment is at most 32768 " \
        "bytes" in str(e)


def test_link_attributes_and_align_on_a_constant_warn_with_their_reason(tmp_path):
    warnings = []
    body = """const k: [2]u16 align(8) = [2]u16 { 1, 2 };
var v: [2]u16 linksection(".bss") linkname("vee") = [2]u16 { 3, 4 };
fn main() void { out[0] = k[lay.get_x_coord() % 2] + v[1]; sys.unblock_cmd_stream(); }
"""
    compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS, w=3, arch="wse2", warn=warnings.append)
    text = HEAD + body

    def where(s):
        line, col = position(text, s)
        return f"pe.csl:{line}:{col}: "

    assert len(warnings) == 3, warnings
    assert where("const k") + "align(...) on a const or comptime var is accepted and ignored " \
        "(it is no variable in PE memory" in " ".join(warnings)
    assert where("var v") + "linksection(...) on a variable is accepted and ignored (wsejax " \
        "places every variable in the PE's one memory, in declaration order, and links " \
        "nothing: a section name changes no value the program or the host can see)" \
        in " ".join(warnings)
    assert where("var v") + "linkname(...) on a variable is accepted and ignored (wsejax " \
        "links nothing" in " ".join(warnings)
