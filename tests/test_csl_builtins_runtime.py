"""Runtime builtins of CSL: `@assert` at run time (a false one faults its PE, naming the
assertion's `file:line:col`), each run on the engine and the reference interpreter."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, read, run

from wsejax import CslError, FabricFault
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const lay = @import_module("<layout>");
var out: [4]i32;
var out_ptr: [*]i32 = &out;
"""

TAIL = """
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""

EXPORTS = """@export_name("out", [*]i32, true);
@export_name("main", fn()void);"""


def program(tmp_path, body: str, arch: str, w: int = 3):
    return compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS, w=w, arch=arch)


def run_ref(program):
    ref = Reference(program)
    ref.launch("main")
    return ref


def faults_of(program):
    """The fault each interpreter reports: (engine error, reference error)."""
    with pytest.raises(FabricFault) as eng:
        run(program)
    with pytest.raises(FabricFault) as ref:
        run_ref(program)
    return eng.value, ref.value


# ------------------------------------------------------------------------------------------------
# @assert


ASSERT_BODY = """
fn main() void {
  const x: i32 = @as(i32, lay.get_x_coord());
  out[0] = x + 10;
  var k: i32 = 0;
  while (k < x) : (k += 1) {
    @assert(k * k < LIMIT);
  }
  out[1] = k;
  @assert(true);
  sys.unblock_cmd_stream();
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_a_runtime_assert_that_holds_lets_the_program_run(tmp_path, arch):
    prog = program(tmp_path, "const LIMIT: i32 = 100;" + ASSERT_BODY, arch)
    eng = read(run(prog), "out", 4, np.int32)[0]
    ref = np.stack([np.asarray(run_ref(prog).memory(x, 0)["out"]) for x in range(3)])
    want = np.array([[10 + x, x, 0, 0] for x in range(3)], np.int32)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_false_runtime_assert_faults_the_pes_where_it_fails(tmp_path, arch):
    # k*k < 1 fails at k == 1, on the PEs whose loop reaches it: x = 2 and x = 3
    prog = program(tmp_path, "const LIMIT: i32 = 1;" + ASSERT_BODY, arch, w=4)
    eng, ref = faults_of(prog)
    assert str(eng) == str(ref)
    assert eng.pes == ref.pes == [(2, 0), (3, 0)]
    assert str(eng).startswith("device fault: @assert failed at ")
    assert str(eng).endswith("pe.csl:12:5 at PE (2, 0), (3, 0)")


@pytest.mark.parametrize("arch", ARCHES)
def test_each_failing_assert_is_named_by_its_own_position(tmp_path, arch):
    prog = program(tmp_path, """
fn main() void {
  const x = lay.get_x_coord();
  if (x == 0) { @assert(x != 0); }
  @assert(x != 1);
  sys.unblock_cmd_stream();
}
""", arch)
    eng, ref = faults_of(prog)
    assert str(eng) == str(ref)
    assert "(and 1 other kinds of fault)" in str(eng)
    assert eng.pes == ref.pes and len(eng.pes) == 1


def test_an_assert_known_at_comptime_is_a_comptime_assert(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
const N: i32 = 3;
fn main() void {
  @assert(N > 4);
  sys.unblock_cmd_stream();
}
""", "wse2")
    assert "pe.csl:9:3" in str(e.value) and "@comptime_assert failed" in str(e.value)


def test_a_runtime_assert_takes_a_bool(tmp_path):
    with pytest.raises(CslError) as e:
        program(tmp_path, """
fn main() void {
  const x = lay.get_x_coord();
  @assert(x);
  sys.unblock_cmd_stream();
}
""", "wse2")
    assert "pe.csl:9:11" in str(e.value)
    assert "@assert needs a bool, got a runtime u16" in str(e.value)
