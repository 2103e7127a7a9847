"""CSL forms of streaming programs: fabric DSDs whose color comes from their queue, comptime
arrays read by DSDs, tasks that name themselves, memcpy's streaming helpers, void params,
direction params and routes toward memcpy's halo."""

from __future__ import annotations

import numpy as np
import pytest

from wsejax import CslError, SdkRuntime
from wsejax.csl import compile_csl

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{{ .width = {w}, .height = 1{streams} }});
layout {{
  @set_rectangle({w}, 1);
  for (@range(i16, {w})) |x| {{
    @set_tile_code(x, 0, "pe.csl", .{{ .memcpy_params = memcpy.get_params(x){tile} }});
  }}
{extra}
  @export_name("main", fn()void);
}}
"""

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
"""

STREAMS = ", .MEMCPYH2D_1 = @get_color(2), .MEMCPYD2H_1 = 3"


def compile_src(tmp_path, body: str, arch="wse2", w=2, streams=STREAMS, tile="", extra="",
                head=HEAD):
    (tmp_path / "layout.csl").write_text(LAYOUT.format(w=w, streams=streams, tile=tile,
                                                       extra=extra))
    (tmp_path / "pe.csl").write_text(head + body + "\ncomptime { @export_symbol(main); }\n")
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def position(text: str, where: str) -> tuple[int, int]:
    k = text.index(where)
    return text.count("\n", 0, k) + 1, k - text.rfind("\n", 0, k)


def assert_error_at(tmp_path, body, where, message, arch="wse2", file="pe.csl", **kw):
    with pytest.raises(CslError) as err:
        compile_src(tmp_path, body, arch, **kw)
    e = err.value
    assert message in e.message, str(e)
    assert e.file.endswith(file), str(e)
    assert (e.line, e.col) == position((tmp_path / file).read_text(), where), str(e)


def stream(prog, values, n, w=2, out_n=None):
    r = SdkRuntime(prog)
    r.load()
    r.run()
    r.memcpy_h2d(2, np.asarray(values, np.float32), 0, 0, w, 1, n, streaming=True)
    out = np.zeros(w * (out_n or n), np.float32)
    r.memcpy_d2h(out, 3, 0, 0, w, 1, out_n or n, streaming=True)
    return out


# ------------------------------------------------------------------------------------------------
# A fabin_dsd's color from its queue; a comptime const array under a DSD

QUEUE_COLOR_PE = """
const in_q = @get_input_queue(2);
const out_q = @get_output_queue(3);
const bias = [2]f32 { 1.5, -4.0 };
const B = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> bias[1] });
const inp = @get_dsd(fabin_dsd, .{ .extent = 4, .input_queue = in_q });
var buf: [4]f32;
const M = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> buf[i] });
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 4, .output_queue = out_q }
                     else .{ .extent = 4, .fabric_color = sys.MEMCPYD2H_1, .output_queue = out_q });
const go_id = @get_local_task_id(9);
task go() void {
  @fadds(M, inp, B);
  @fmovs(out, M);
}
fn main() void { sys.unblock_cmd_stream(); }
comptime {
  @bind_local_task(go, go_id);
  @activate(go_id);
  @initialize_queue(in_q, .{ .color = sys.MEMCPYH2D_1 });
  if (@is_arch("wse3")) { @initialize_queue(out_q, .{ .color = sys.MEMCPYD2H_1 }); }
}
"""


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_fabin_dsd_takes_the_color_its_queue_is_bound_to_later(tmp_path, arch):
    prog = compile_src(tmp_path, QUEUE_COLOR_PE, arch)
    x = np.arange(8, dtype=np.float32) * 0.5
    assert stream(prog, x, 4).tolist() == (x - 4.0).tolist()


def test_a_fabin_dsd_whose_queue_is_never_bound_is_reported_at_the_dsd(tmp_path):
    body = ("const D = @get_dsd(fabin_dsd, .{ .extent = 4, .input_queue = @get_input_queue(3) });"
            "\nfn main() void { _ = D; }")
    assert_error_at(tmp_path, body, "@get_dsd", "this fabin_dsd has no .fabric_color and its "
                    "input queue 3 is never given one")


def test_a_fabout_dsd_on_wse2_still_needs_a_fabric_color(tmp_path):
    body = ("const q = @get_output_queue(3);\n"
            "const D = @get_dsd(fabout_dsd, .{ .extent = 4, .output_queue = q });\n"
            "fn main() void { _ = D; }\ncomptime { @initialize_queue(q); }")
    assert_error_at(tmp_path, body, "@get_dsd", "on wse2 a fabout_dsd needs a .fabric_color")


def test_a_comptime_var_array_under_a_dsd_is_refused(tmp_path):
    body = ("comptime var a = [2]f32 { 1.0, 2.0 };\n"
            "const D = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> a[i] });\n"
            "fn main() void { _ = D; }")
    assert_error_at(tmp_path, body, "a[i]", "tensor_access indexes")


# ------------------------------------------------------------------------------------------------
# A task that names itself

SELF_PE = """
const in_q = @get_input_queue(2);
const out_q = @get_output_queue(3);
const recv_id = if (@is_arch("wse3")) @get_data_task_id(in_q)
                else @get_data_task_id(sys.MEMCPYH2D_1);
var cell = @zeros([1]f32);
const C = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{1} -> cell[i] });
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 1, .output_queue = out_q }
                     else .{ .extent = 1, .fabric_color = sys.MEMCPYD2H_1, .output_queue = out_q });
task recv(x: f32) void {
  @block(recv_id);
  cell[0] = x + x * x;
  @fmovs(out, C, .{ .async = true, .unblock = recv });
}
fn main() void { sys.unblock_cmd_stream(); }
comptime {
  @bind_data_task(recv, recv_id);
  @initialize_queue(in_q, .{ .color = sys.MEMCPYH2D_1 });
  if (@is_arch("wse3")) { @initialize_queue(out_q, .{ .color = sys.MEMCPYD2H_1 }); }
}
"""


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_data_task_unblocks_itself_when_its_send_is_done(tmp_path, arch):
    prog = compile_src(tmp_path, SELF_PE, arch)
    x = np.arange(6, dtype=np.float32) - 2.0
    assert stream(prog, x, 3).tolist() == (x + x * x).tolist()
