"""CSL forms of streaming programs: fabric DSDs whose color comes from their queue, comptime
arrays read by DSDs, tasks that name themselves, memcpy's streaming helpers, void params,
direction params and routes toward memcpy's halo."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import position

from wsejax import CslError, MemcpyDataType, MemcpyError, MemcpyOrder, SdkRuntime
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


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("order", [MemcpyOrder.ROW_MAJOR, MemcpyOrder.COL_MAJOR])
def test_broadcasts_stream_one_row_or_column_to_every_pe_of_it(tmp_path, arch, order):
    # a 2x1 rectangle: a row broadcast gives both PEs the row's 4 elements; a column
    # broadcast gives PE i column i's, laid out as copy mode lays out A[w][l]
    prog = compile_src(tmp_path, QUEUE_COLOR_PE, arch)
    row = np.arange(4, dtype=np.float32) * 0.5
    cols = np.arange(8, dtype=np.float32) + 10.0
    col_of_pe = cols.reshape((2, 4), order="C" if order is MemcpyOrder.ROW_MAJOR else "F")
    for send, values, expect in (
            (SdkRuntime.memcpy_h2d_rowbcast, row, np.stack([row, row])),
            (SdkRuntime.memcpy_h2d_colbcast, cols, col_of_pe)):
        r = SdkRuntime(prog, check=True)
        r.load()
        r.run()
        send(r, 2, values, 0, 0, 2, 1, 4, streaming=True, order=order,
             data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
        out = np.zeros(8, np.float32)
        r.memcpy_d2h(out, 3, 0, 0, 2, 1, 4, streaming=True, order=MemcpyOrder.ROW_MAJOR,
                     data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
        r.stop()
        assert out.reshape(2, 4).tolist() == (expect - 4.0).tolist(), send.__name__


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_strided_stream_reaches_every_other_pe(tmp_path, arch):
    # columns 0 and 2 of 3 take 4 wavelets each; column 1 gets none and still waits
    prog = compile_src(tmp_path, QUEUE_COLOR_PE, arch, w=3)
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    x = np.arange(8, dtype=np.float32) * 0.25
    r.memcpy_h2d_stride(2, x, 0, 0, 3, 1, 4, 2, 1, streaming=True,
                        order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                        nonblock=False)
    for px, want in ((0, x[:4]), (2, x[4:])):
        out = np.zeros(4, np.float32)
        r.memcpy_d2h(out, 3, px, 0, 1, 1, 4, streaming=True, order=MemcpyOrder.ROW_MAJOR,
                     data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
        assert out.tolist() == (want - 4.0).tolist(), px


def test_a_broadcast_stream_checks_the_host_array_size(tmp_path):
    r = SdkRuntime(compile_src(tmp_path, QUEUE_COLOR_PE))
    r.load()
    r.run()
    with pytest.raises(MemcpyError, match="memcpy_h2d_rowbcast"):
        r.memcpy_h2d_rowbcast(2, np.zeros(8, np.float32), 0, 0, 2, 1, 4, streaming=True)


def test_a_fabin_dsd_whose_queue_is_never_bound_is_reported_at_the_dsd(tmp_path):
    body = ("const D = @get_dsd(fabin_dsd, .{ .extent = 4, .input_queue = @get_input_queue(3) });"
            "\nfn main() void { _ = D; }")
    assert_error_at(tmp_path, body, "@get_dsd", "this fabin_dsd has no .fabric_color and its "
                    "input queue 3 is never given one")


def test_a_fabout_dsd_on_wse2_still_needs_a_fabric_color(tmp_path):
    body = ("const q = @get_output_queue(3);\n"
            "const D = @get_dsd(fabout_dsd, .{ .extent = 4, .output_queue = q });\n"
            "fn main() void { _ = D; }\ncomptime { @initialize_queue(q); }")
    assert_error_at(tmp_path, body, "@get_dsd", "on wse2 a fabout_dsd needs a fabric_color")


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


# ------------------------------------------------------------------------------------------------
# memcpy's streaming fabout_dsd

HELPER_PE = """
const in_q = @get_input_queue(2);
const out_q = @get_output_queue(3);
const inp = @get_dsd(fabin_dsd, .{ .extent = 3, .input_queue = in_q });
const out = sys.get_streaming_fabout_dsd(@get_color(@bitcast(u16, sys.MEMCPYD2H_1)), 3, out_q);
const go_id = @get_local_task_id(9);
task go() void { @fnegs(out, inp); }
fn main() void { sys.unblock_cmd_stream(); }
comptime {
  @bind_local_task(go, go_id);
  @activate(go_id);
  @initialize_queue(in_q, .{ .color = sys.MEMCPYH2D_1 });
  @initialize_queue(out_q, if (@is_arch("wse3")) .{ .color = OUT_COLOR } else .{});
}
"""


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_memcpy_streaming_fabout_dsd_sends_to_the_host(tmp_path, arch):
    prog = compile_src(tmp_path, HELPER_PE.replace("OUT_COLOR", "@get_color(3)"), arch,
                       streams=", .MEMCPYH2D_1 = @get_color(2), .MEMCPYD2H_1 = 3")
    x = np.arange(6, dtype=np.float32) + 0.25
    assert stream(prog, x, 3).tolist() == (-x).tolist()


INDEX_PE = """
const out_q = @get_output_queue(3);
var vals = [3]u16 { 0x0101, 0x7f02, 0xbeef };
var k: u16 = 0x1200;
const src = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> vals[i] });
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3"))
    .{ .extent = 3, .output_queue = out_q, .wavelet_index_offset = true }
  else .{ .extent = 3, .fabric_color = sys.MEMCPYD2H_1, .output_queue = out_q,
          .wavelet_index_offset = true });
const go_id = @get_local_task_id(9);
task go() void { k += 0x34; @mov16(out, src, .{ .index = k }); }
fn main() void { sys.unblock_cmd_stream(); }
comptime {
  @bind_local_task(go, go_id);
  @activate(go_id);
  if (@is_arch("wse3")) { @initialize_queue(out_q, .{ .color = sys.MEMCPYD2H_1 }); }
}
"""


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_wavelet_index_offset_sends_the_op_index_in_the_high_half(tmp_path, arch):
    # spec 7.6: with .wavelet_index_offset a fabout_dsd's wavelets carry the op's .index (here
    # a runtime u16) in their high 16 bits, the 16-bit values in the low ones
    r = SdkRuntime(compile_src(tmp_path, INDEX_PE, arch), check=True)
    r.load()
    r.run()
    out = np.zeros(6, np.uint32)
    r.memcpy_d2h(out, 3, 0, 0, 2, 1, 3, streaming=True, order=MemcpyOrder.ROW_MAJOR,
                 data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
    r.stop()
    assert [int(w) >> 16 for w in out] == [0x1234] * 6
    assert [int(w) & 0xFFFF for w in out] == [0x0101, 0x7F02, 0xBEEF] * 2


def test_memcpy_streaming_fabout_dsd_checks_its_queue_color_on_wse3(tmp_path):
    assert_error_at(tmp_path, HELPER_PE.replace("OUT_COLOR", "@get_color(5)"),
                    "sys.get_streaming_fabout_dsd", "this fabout_dsd is on color 3, but output "
                    "queue 3 is initialised with color 5", arch="wse3")


def test_memcpy_streaming_fabout_dsd_takes_a_color(tmp_path):
    body = ("const D = sys.get_streaming_fabout_dsd(true, 3, @get_output_queue(3));\n"
            "fn main() void { _ = D; }")
    assert_error_at(tmp_path, body, "true, 3", "get_streaming_fabout_dsd's color: expected a "
                    "color")


# ------------------------------------------------------------------------------------------------
# Void params, unused globals, imports for their comptime blocks

# `feed` is void unless the layout gives it: only then does the PE route it and stream on it
VOID_PARAM_PE = """
param feed = {};
const has_feed = @type_of(feed) != void;
var total: [1]f32 = @zeros([1]f32);
var unused_big: [20000]f32;
var unused_out = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = feed,
                                         .output_queue = @get_output_queue(4) });
var total_ptr: [*]f32 = &total;
fn main() void {
  if (has_feed) { total[0] = 7.0; } else { total[0] = -1.0; }
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(total_ptr, "total");
  if (has_feed) { @set_local_color_config(feed, .{ .routes = .{ .rx = .{WEST}, .tx = .{RAMP} } }); }
}
"""


def test_a_void_param_is_tested_with_type_of_and_unused_globals_take_no_memory(tmp_path):
    extra = '  @export_name("total", [*]f32, true);'
    # column 0 gets feed = color 6, column 1 leaves it void; column 0's route needs no sender
    # (a route nothing sends on is never followed)
    prog = compile_src(tmp_path, VOID_PARAM_PE, extra=extra,
                       tile=", .feed = @get_color(6)")
    assert len(prog.classes) == 1
    sym_names = [s.name for s in prog.classes[0].symbols]
    assert "unused_big" not in sym_names and "total" in sym_names
    r = SdkRuntime(prog)
    r.load()
    r.run()
    r.launch("main")
    out = np.zeros(2, np.float32)
    r.memcpy_d2h(out, r.get_id("total"), 0, 0, 2, 1, 1, streaming=False)
    assert out.tolist() == [7.0, 7.0]


def test_a_void_param_per_column_splits_classes(tmp_path):
    extra = '  @export_name("total", [*]f32, true);'
    layout = LAYOUT.replace("{tile}", "{tile}").replace(
        '@set_tile_code(x, 0, "pe.csl", .{{ .memcpy_params = memcpy.get_params(x){tile} }});',
        'if (x == 0) {{ @set_tile_code(x, 0, "pe.csl", .{{ .memcpy_params = '
        'memcpy.get_params(x), .feed = @get_color(6) }}); }} else {{ @set_tile_code(x, 0, '
        '"pe.csl", .{{ .memcpy_params = memcpy.get_params(x) }}); }}')
    (tmp_path / "layout.csl").write_text(layout.format(w=2, streams=STREAMS, tile="",
                                                       extra=extra))
    (tmp_path / "pe.csl").write_text(HEAD + VOID_PARAM_PE
                                     + "\ncomptime { @export_symbol(main); }\n")
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True)
    r = SdkRuntime(prog)
    r.load()
    r.run()
    r.launch("main")
    out = np.zeros(2, np.float32)
    r.memcpy_d2h(out, r.get_id("total"), 0, 0, 2, 1, 1, streaming=False)
    assert out.tolist() == [7.0, -1.0]


def test_a_used_global_with_a_void_color_is_still_checked(tmp_path):
    body = ("param feed = {};\n"
            "var D = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = feed });\n"
            "fn main() void { @fmovs(D, 1.0); }")
    assert_error_at(tmp_path, body, "@get_dsd", "fabout_dsd .fabric_color: expected a color "
                    "(0 to 23), got void")


def test_a_module_imported_by_an_unused_const_runs_its_comptime_blocks(tmp_path):
    (tmp_path / "starter.csl").write_text(
        "param value: f32;\nparam out: [*]f32;\n"
        "task start() void { out[0] = value; }\n"
        "comptime { @bind_local_task(start, @get_local_task_id(10));\n"
        "  @activate(@get_local_task_id(10)); }\n")
    body = ("var got = @zeros([1]f32);\nvar got_ptr: [*]f32 = &got;\n"
            "const starter = @import_module(\"starter.csl\", .{ .value = 2.5, .out = &got });\n"
            "fn main() void { sys.unblock_cmd_stream(); }\n"
            "comptime { @export_symbol(got_ptr, \"got\"); }")
    prog = compile_src(tmp_path, body, extra='  @export_name("got", [*]f32, true);')
    r = SdkRuntime(prog)
    r.load()
    r.run()
    r.launch("main")
    out = np.zeros(2, np.float32)
    r.memcpy_d2h(out, r.get_id("got"), 0, 0, 2, 1, 1, streaming=False)
    assert out.tolist() == [2.5, 2.5]


def test_void_default_parses_only_as_a_param_default(tmp_path):
    body = "const v = {};\nfn main() void {}"
    assert_error_at(tmp_path, body, "{};", "unexpected '{'")


# ------------------------------------------------------------------------------------------------
# Direction params; a route toward the edge of the rectangle

DIR_LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0), .sender = true,
                                    .port = PORT });
  @set_tile_code(1, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(1), .sender = false,
                                    .port = WEST });
  @export_name("got", [*]f32, true);
  @export_name("main", fn()void);
}
"""

# a sender routes color 5 from its ramp to `port`, a receiver from `port` to its ramp
DIR_PE = """
param memcpy_params;
param sender: bool;
param port: direction;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const c = @get_color(5);
const oq = @get_output_queue(2);
const iq = @get_input_queue(2);
var got = @zeros([3]f32);
var got_ptr: [*]f32 = &got;
const vals = [3]f32 { 1.0, -2.0, 3.5 };
const V = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> vals[i] });
const G = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> got[i] });
const out = @get_dsd(fabout_dsd, .{ .extent = 3, .fabric_color = c, .output_queue = oq });
const inp = @get_dsd(fabin_dsd, .{ .extent = 3, .input_queue = iq });
fn main() void {
  if (sender) { @fmovs(out, V); } else { @fmovs(G, inp); }
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(main);
  @export_symbol(got_ptr, "got");
  if (sender) {
    @set_local_color_config(c, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ port } } });
    @initialize_queue(oq, if (@is_arch("wse3")) .{ .color = c } else .{});
  } else {
    @set_local_color_config(c, .{ .routes = .{ .rx = .{ port }, .tx = .{ RAMP } } });
    @initialize_queue(iq, .{ .color = c });
  }
}
"""


def compile_dir(tmp_path, arch="wse2", port="EAST"):
    (tmp_path / "layout.csl").write_text(DIR_LAYOUT.replace("PORT", port))
    (tmp_path / "pe.csl").write_text(DIR_PE)
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_direction_param_from_the_layout_sets_routes(tmp_path, arch):
    prog = compile_dir(tmp_path, arch)
    routes = prog.resolved[5]
    assert routes.sources.tolist() == [[0, 0]] and routes.dest_source.tolist() == [[-1, 0]]
    r = SdkRuntime(prog)
    r.load()
    r.run()
    r.launch("main")
    out = np.zeros(6, np.float32)
    r.memcpy_d2h(out, r.get_id("got"), 0, 0, 2, 1, 3, streaming=False)
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0, -2.0, 3.5]


def test_a_route_leaving_the_rectangle_compiles_and_a_wavelet_sent_on_it_faults(tmp_path):
    from wsejax.errors import FabricFault
    from wsejax.reference import Reference

    # PE 0 routes its sends to the WEST, off the rectangle: nothing receives them
    prog = compile_dir(tmp_path, port="WEST")
    assert prog.resolved[5].dest_source.tolist() == [[-1, -1]]
    r = SdkRuntime(prog)
    r.load()
    r.run()
    with pytest.raises(FabricFault, match="color 5 has nowhere to go") as err:
        r.launch("main")
    assert (0, 0) in err.value.pes
    ref = Reference(prog)
    with pytest.raises(FabricFault, match="color 5 has nowhere to go"):
        ref.launch("main")
    assert (0, 0) in ref.faults
