"""Forms that real CSL programs use: each case is a program of ours written in the style of the
SDK's examples, checked for its result (or its located error)."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, read, run

from wsejax import CslError

HEAD = """
param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
"""

EXPORT_OUT = """
@export_name("out", [*]i32, true);
@export_name("main", fn()void);
"""


@pytest.mark.parametrize("arch, want", [("wse2", 2), ("wse3", 3)])
def test_an_if_expression_without_else_picks_the_arch(tmp_path, arch, want):
    src = HEAD + """
const picked: i32 =
  if      (@is_arch("wse2")) 2
  else if (@is_arch("wse3")) 3;
var out = @zeros([1]i32);
var out_ptr: [*]i32 = &out;
fn main() void {
  out[0] = picked;
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""
    r = run(compile_pe(tmp_path, src, EXPORT_OUT, arch=arch))
    assert read(r, "out", 1, np.int32)[0, 0, 0] == want


def test_an_if_expression_without_else_that_is_false_gives_void(tmp_path):
    src = HEAD + """
const picked: i32 = if (@is_arch("wse3")) 3;
var v: i32 = 0;
fn main() void { v = picked; sys.unblock_cmd_stream(); }
comptime { @export_symbol(main); }
"""
    with pytest.raises(CslError, match=r"pe.csl:5:21: .*expected i32, got void"):
        compile_pe(tmp_path, src, '@export_name("main", fn()void);', arch="wse2")


def test_a_runtime_if_expression_needs_an_else(tmp_path):
    src = HEAD + """
var v: i32 = 0;
fn main() void {
  v = if (v > 0) 1;
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(main); }
"""
    with pytest.raises(CslError, match="runtime condition needs an else"):
        compile_pe(tmp_path, src, '@export_name("main", fn()void);')
