"""Storage classes of CSL globals: an `extern var` or `extern fn` is the `export` of the same
name in another module of the same PE program (held in a const of type `imported_module`),
run on the engine and the reference."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, read, run

from wsejax import CslError
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const lay = @import_module("<layout>");
var out: [4]i32;
var out_ptr: [*]i32 = &out;
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""

EXPORTS = """@export_name("out", [*]i32, true);
@export_name("main", fn()void);"""

COUNTER = """
export var count: i32 = 5;
export fn scaled(k: i32) i32 { return k * count; }
fn bump(by: i32) void { count += by; }
"""


def program(tmp_path, body: str, arch: str = "wse2", files=None):
    return compile_pe(tmp_path, HEAD + body, EXPORTS, w=2, arch=arch,
                      files=files if files is not None else {"counter.csl": COUNTER})


def outputs(prog):
    eng = read(run(prog), "out", 4, np.int32)
    ref = Reference(prog)
    ref.launch("main")
    return eng, np.stack([[ref.memory(x, 0)["out"] for x in range(2)]])


@pytest.mark.parametrize("arch", ARCHES)
def test_extern_names_the_export_of_another_module(tmp_path, arch):
    """The extern var and the module's own name are one variable: a write through either is
    seen by both; the extern fn is the module's exported function."""
    prog = program(tmp_path, """
const counter: imported_module = @import_module("counter.csl");
extern var count: i32;
extern fn scaled(k: i32) i32;
fn main() void {
  const x: i32 = @as(i32, lay.get_x_coord());
  counter.bump(x + 1);
  out[0] = count;
  count += 100;
  out[1] = counter.count;
  out[2] = scaled(3);
  out[3] = counter.scaled(1);
  sys.unblock_cmd_stream();
}
""", arch)
    eng, ref = outputs(prog)
    want = np.array([[[5 + x + 1, 106 + x, 3 * (106 + x), 106 + x] for x in range(2)]])
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


@pytest.mark.parametrize("body, where, message", [
    ("extern var missing: i32;\nfn main() void { out[0] = missing; }", "pe.csl:7:1",
     "extern var 'missing': no module of this PE program exports a var named 'missing'"),
    ("extern fn nowhere() i32;\nfn main() void { out[0] = nowhere(); }", "pe.csl:7:1",
     "extern fn 'nowhere': no module of this PE program exports a fn named 'nowhere'"),
    ("const counter = @import_module(\"counter.csl\");\nextern var count: i16;\n"
     "fn main() void { out[0] = count; }", "pe.csl:8:1",
     "extern var 'count': declared i16, but"),
])
def test_an_extern_without_a_matching_export_is_a_located_error(tmp_path, body, where, message):
    with pytest.raises(CslError) as e:
        program(tmp_path, body)
    assert where in str(e.value) and message in str(e.value)
