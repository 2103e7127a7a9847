"""`<debug>` traces: a PE program appends typed records, strings and timestamps to named
buffers; the host reads them back after the run with `cerebras.sdk.debug.debug_util`, at
fabric coordinates. The engine's records are checked by hand and against the reference's
memory."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import write

from wsejax import CslError, MemcpyError, SdkRuntime, trace
from wsejax.artifacts import save_program
from wsejax.compat import cerebras_shims
from wsejax.csl import compile_csl
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
layout {
  @set_rectangle(2, 1);
  for (@range(i16, 2)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x) });
  }
  @export_name("main", fn()void);
}
"""

PE = """
param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const lay = @import_module("<layout>");
const log = @import_module("<debug>", .{ .key = "log", .buffer_size = 40 });
const small = @import_module("<debug>", .{ .key = "small", .buffer_size = 7 });
var counter: u32 = 7;
fn main() void {
  const x = lay.get_x_coord();
  log.trace_string("odd");
  log.trace_bool(x == 1);
  log.trace_i8(@as(i8, -3) * @as(i8, x + 1));
  log.trace_u8(@as(u8, 250));
  log.trace_i16(-300);
  log.trace_f16(@as(f16, 1.5) * @as(f16, x + 1));
  log.trace_i32(-70000 * @as(i32, x + 1));
  log.trace_f32(0.25);
  const y: u32 = 100000 + counter * x;
  log.trace(y);
  log.trace_string("été");
  log.trace_timestamp();
  counter += 1;
  small.trace_u16(11);      // 2 words
  small.trace_u32(22);      // 3 words: 5
  small.trace_u32(33);      // 3 more do not fit: dropped
  small.trace_u16(44);      // 2 words: still fits (7)
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(main); }
"""


def build(tmp_path, arch):
    write(tmp_path, {"layout.csl": LAYOUT, "pe.csl": PE})
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch, fabric_dims=(9, 3),
                       fabric_offsets=(4, 1))
    out = tmp_path / "out"
    save_program(prog, out)
    return prog, out


def run_device(out):
    rt = SdkRuntime(str(out))
    rt.load()
    rt.run()
    rt.launch("main", nonblock=False)
    rt.stop()
    return rt


@pytest.mark.parametrize("arch", ARCHES)
def test_records_come_back_in_order_with_their_types(tmp_path, arch):
    prog, out = build(tmp_path, arch)
    run_device(out)
    with cerebras_shims():
        from cerebras.sdk.debug.debug_util import debug_util
        debug = debug_util(str(out))
        engine = [debug.read_trace(4 + x, 1, "log") for x in range(2)]
        for x in range(2):
            records = engine[x]
            *values, stamp = records
            assert values == ["odd", x == 1, -3 * (x + 1), 250, -300, 1.5 * (x + 1),
                              -70000 * (x + 1), 0.25, 100000 + 7 * x, "été"]
            assert isinstance(stamp, int) and stamp > 0
            assert debug.read_trace(4 + x, 1, "small") == [11, 22, 44]
            assert debug.get_symbol(4 + x, 1, "counter", np.uint32).tolist() == [8]
        rect = debug.get_symbol_rect(((4, 1), (2, 1)), "counter", np.uint32)
        assert rect.shape == (2, 1, 1) and rect.reshape(-1).tolist() == [8, 8]
    ref = Reference(prog)
    ref.launch("main")
    for x in range(2):
        mem = ref.memory(x, 0)
        count = int(np.asarray(mem["<debug>.log.count"]).reshape(-1)[0])
        got = trace.decode(mem["<debug>.log"], count)
        assert got == engine[x]


def test_reading_what_is_not_there_is_a_clear_error(tmp_path):
    _, out = build(tmp_path, "wse2")
    with cerebras_shims():
        from cerebras.sdk.debug.debug_util import debug_util
        with pytest.raises(MemcpyError, match="no SdkRuntime of"):
            debug_util(str(out)).read_trace(4, 1, "log")
        run_device(out)
        debug = debug_util(str(out))
        with pytest.raises(MemcpyError, match=r"fabric PE \(3, 1\) is outside the program "
                                              r"rectangle \(2 x 1 PEs from \(4, 1\)\)"):
            debug.read_trace(3, 1, "log")
        with pytest.raises(MemcpyError, match="no PE has a <debug> trace 'nothing'"):
            debug.read_trace(4, 1, "nothing")
        with pytest.raises(MemcpyError, match=r"PE \(0, 0\) has no global 'nothing'"):
            debug.get_symbol(4, 1, "nothing", np.uint32)


@pytest.mark.parametrize("params, message", [
    (".{ .buffer_size = 8 }", "<debug> needs a .key naming its trace buffer"),
    ('.{ .key = "k", .buffer_size = 0 }', "<debug> .buffer_size must be a word count from 1"),
])
def test_a_debug_import_needs_a_key_and_a_size(tmp_path, params, message):
    pe = PE.replace('.{ .key = "log", .buffer_size = 40 }', params)
    write(tmp_path, {"layout.csl": LAYOUT, "pe.csl": pe})
    with pytest.raises(CslError) as e:
        compile_csl(tmp_path / "layout.csl", memcpy=True)
    assert message in str(e.value) and "pe.csl:5:" in str(e.value)
