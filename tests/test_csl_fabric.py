"""The CSL front end on the fabric: queues, fabric DSDs, data tasks, FIFOs, op configs and
memcpy streaming colors, lowered to the Program IR (and every misuse reported at its source)."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import position

from wsejax import CslError, SdkRuntime, ir
from wsejax.csl import compile_csl
from wsejax.csl.builtins import HANDLERS
from wsejax.types import DType

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{{ .width = 2, .height = 1{streams} }});
layout {{
  @set_rectangle(2, 1);
  for (@range(i16, 2)) |x| {{
    @set_tile_code(x, 0, "pe.csl", .{{ .memcpy_params = memcpy.get_params(x) }});
  }}
{extra}
  @export_name("main", fn()void);
}}
"""

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
"""

STREAMS = ", .MEMCPYH2D_1 = @get_color(2), .MEMCPYD2H_1 = 3"


def compile_src(tmp_path, body: str, arch="wse2", streams=STREAMS, extra=""):
    (tmp_path / "layout.csl").write_text(LAYOUT.format(streams=streams, extra=extra))
    tail = "" if "@export_symbol(main)" in body else "\ncomptime { @export_symbol(main); }\n"
    (tmp_path / "pe.csl").write_text(HEAD + body + tail)
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def pe_of(tmp_path, body: str, arch="wse2", **kw) -> ir.PeProgram:
    prog = compile_src(tmp_path, body, arch, **kw)
    assert len(prog.classes) == 1
    return prog.classes[0]


def ops_of(pe: ir.PeProgram, fn="main") -> list[ir.DsdOp]:
    return [s for s in ir.walk_stmts(pe.function(fn).body) if isinstance(s, ir.DsdOp)]


def assert_error_at(tmp_path, body, where, message, arch="wse2", file="pe.csl", **kw):
    with pytest.raises(CslError) as err:
        compile_src(tmp_path, body, arch, **kw)
    e = err.value
    assert message in e.message, str(e)
    assert e.file.endswith(file), str(e)
    assert (e.line, e.col) == position((tmp_path / file).read_text(), where), str(e)
    assert f"{file}:{e.line}:{e.col}: error:" in str(e)


def u16(v):
    return ir.Const(v, DType.u16)


# ------------------------------------------------------------------------------------------------
# wse2: colors from .fabric_color, data tasks on colors

WSE2 = """
const in_q = @get_input_queue(2);
const out_q: output_queue = @get_output_queue(3);
const recv_id = @get_data_task_id(sys.MEMCPYH2D_1);
const exit_id = @get_local_task_id(10);
var buf: [8]f32;
var n: u16 = 4;
const f = @allocate_fifo(buf, .{ .activate_push = exit_id, .activate_pop = exit });
var out = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = sys.MEMCPYD2H_1,
                                  .output_queue = out_q, .priority = .{ .high = true } });
var sum: f32 = 0.0;
task recv(x: f32) void { sum += x; }
task exit() void { sys.unblock_cmd_stream(); }
fn main() void {
  const in = @get_dsd(fabin_dsd, .{ .extent = n, .input_queue = in_q,
                                    .fabric_color = sys.MEMCPYH2D_1 });
  @fmovs(f, in, .{ .async = true });
  @fmovs(out, f, .{ .async = true, .activate = exit_id });
  @fadds(@set_dsd_length(out, 2), in, 1.0, .{ .unblock = sys.MEMCPYH2D_1 });
  @fadds(out, in, 1.0);
  @fadds(out, in, 1.0, .{ .async = false });
  @unblock(recv_id);
}
comptime {
  @bind_data_task(recv, recv_id);
  @bind_local_task(exit, exit_id);
  @block(sys.MEMCPYH2D_1);
  @initialize_queue(in_q, .{ .color = sys.MEMCPYH2D_1, .priority = .{ .low = true } });
  @initialize_queue(out_q);
  @comptime_assert(@type_of(in_q) == input_queue and @type_of(recv_id) == data_task_id);
}
"""


def test_wse2_fabric_program_lowers_to_ir(tmp_path):
    prog = compile_src(tmp_path, WSE2)
    assert prog.streams == ((2, "h2d"), (3, "d2h"))
    pe = prog.classes[0]
    assert set(pe.tasks) == {ir.Task("recv", "data", 2, 2), ir.Task("exit", "local", 10)}
    assert pe.function("recv").params[0][1] == DType.f32
    assert pe.blocked == (2,)
    assert pe.fifos == (ir.Fifo("f", "buf", 10, 10),)
    out = ir.FabOut(3, u16(4), 3, False)
    assert pe.dsd_vars == (("out", ir.DsdLit(out)),)
    fabin = ir.DsdLit(ir.FabIn(2, ir.Load("n", (), DType.u16), 2))
    push, pop, hook, plain, plain2 = ops_of(pe)
    assert push.dest == ir.DsdOperand(ir.FifoRef("f")) and push.srcs == (ir.DsdOperand(fabin),)
    assert push.config == ir.OpConfig(async_=True)
    assert pop.dest == ir.DsdOperand(ir.DsdVar("out"))
    assert pop.srcs == (ir.DsdOperand(ir.FifoRef("f")),)
    assert pop.config == ir.OpConfig(True, activate=u16(10))
    assert hook.dest == ir.DsdOperand(ir.SetLength(ir.DsdVar("out"), u16(2)))
    assert hook.config == ir.OpConfig(False, unblock=u16(2))
    assert plain.config is None and plain2.config is None
    assert len({push.site, pop.site, hook.site, plain.site}) == 4
    assert pe.function("main").body[-1] == ir.TaskCtl("unblock", u16(2))


def test_wse3_colors_come_from_initialize_queue_even_when_it_comes_last(tmp_path):
    body = """
const in_q = @get_input_queue(2);
const out_q = @get_output_queue(5);
const recv_id = @get_data_task_id(in_q);
var in = @get_dsd(fabin_dsd, .{ .extent = 3, .input_queue = in_q });
var sum: u32 = 0;
task recv(lo: u16, hi: i16) void { sum += lo; }
fn main() void {
  const out = @get_dsd(fabout_dsd, .{ .extent = 3, .output_queue = out_q });
  @mov32(out, in, .{ .async = true, .unblock = in_q });
  @block(in_q);
}
comptime {
  @export_symbol(main);
  @bind_data_task(recv, recv_id);
  @unblock(recv_id);
  @block(in_q);
  @initialize_queue(in_q, .{ .color = sys.MEMCPYH2D_1, .ctrl_table_id = 0 });
  @initialize_queue(out_q, .{ .color = sys.MEMCPYD2H_1 });
}
"""
    pe = pe_of(tmp_path, body, arch="wse3")
    assert pe.tasks == (ir.Task("recv", "data", 2, 2),)
    assert [t for _, t in pe.function("recv").params] == [DType.u16, DType.i16]
    assert pe.blocked == (2,)
    assert pe.dsd_vars == (("in", ir.DsdLit(ir.FabIn(2, u16(3), 2))),)
    (op,) = ops_of(pe)
    assert op.dest == ir.DsdOperand(ir.DsdLit(ir.FabOut(3, u16(3), 5)))
    assert op.srcs == (ir.DsdOperand(ir.DsdVar("in")),)
    assert op.config == ir.OpConfig(True, unblock=u16(2))
    assert pe.function("main").body[-1] == ir.TaskCtl("block", u16(2))


def test_fabric_dsds_pass_through_params_and_locals_with_runtime_extents(tmp_path):
    body = """
const c = @get_color(4);
var n: u16 = 5;
var a: [8]i32;
const A = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{8} -> a[i] });
fn send(d: fabout_dsd, k: u16) void { @mov32(@set_dsd_length(d, k), A); }
fn recv(d: fabin_dsd) void { @mov32(A, d); }
fn main() void {
  var o = @get_dsd(fabout_dsd, .{ .extent = n, .fabric_color = c });
  send(o, n + 1);
  recv(@get_dsd(fabin_dsd, .{ .extent = 2, .fabric_color = c }));
}
comptime { @set_local_color_config(c, .{ .routes = .{ .rx = .{WEST}, .tx = .{RAMP} } }); }
"""
    pe = pe_of(tmp_path, body)
    main = pe.function("main").body
    assert isinstance(main[0], ir.LocalAssign)
    assert main[0].value == ir.DsdLit(ir.FabOut(4, ir.Load("n", (), DType.u16)))
    assert main[1] == ir.Call("send", (ir.DsdLocal(main[0].name), ir.Bin(
        "+", ir.Load("n", (), DType.u16), u16(1), DType.u16)))
    (op,) = ops_of(pe, "send")
    d, k = (name for name, _ in pe.function("send").params)
    assert op.dest == ir.DsdOperand(ir.SetLength(ir.DsdLocal(d), ir.Local(k, DType.u16)))
    assert pe.function("recv").params[0][1] == "dsd"
    assert main[2].args == (ir.DsdLit(ir.FabIn(4, u16(2))),)


def test_op_config_hooks_name_tasks_colors_and_runtime_values(tmp_path):
    body = """
const c = @get_color(5);
const t_id = @get_local_task_id(12);
var idx: u16 = 7;
var x: [4]i16;
const X = @get_dsd(mem1d_dsd, .{ .base_address = &x, .extent = 4 });
const w = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = c, .wavelet_index_offset = true });
const xi = @get_dsd(mem1d_dsd, .{ .base_address = &x, .extent = 4, .wavelet_index_offset = true });
task t() void {}
task d(v: u32) void { _ = v; }
fn main() void {
  @mov16(w, X, .{ .index = idx, .activate = t });
  @mov16(xi, X, .{ .index = 3, .unblock = d });
  @mov16(X, X, .{ .unblock = c });
  @mov16(X, X, .{ .unblock = idx });
}
comptime {
  @bind_local_task(t, t_id);
  @bind_data_task(d, @get_data_task_id(@get_color(6)));
}
"""
    pe = pe_of(tmp_path, body)
    a, b, col, rt = ops_of(pe)
    assert a.dest == ir.DsdOperand(ir.DsdLit(ir.FabOut(5, u16(4), None, True)))
    assert a.config == ir.OpConfig(False, activate=u16(12), index=ir.Load("idx", (), DType.u16))
    assert b.dest.dsd.dsd.wavelet_index_offset
    assert b.config == ir.OpConfig(False, unblock=u16(6), index=u16(3))
    assert col.config == ir.OpConfig(unblock=u16(5))
    assert rt.config == ir.OpConfig(unblock=ir.Load("idx", (), DType.u16))


@pytest.mark.parametrize("params,widths", [
    ("v: u32", [DType.u32]), ("v: i32", [DType.i32]), ("v: f16", [DType.f16]),
    ("lo: i16, hi: u16", [DType.i16, DType.u16]),
])
def test_data_task_signatures_that_split_a_wavelet(tmp_path, params, widths):
    body = f"task t({params}) void {{}}\nfn main() void {{}}\n" \
        "comptime { @bind_data_task(t, @get_data_task_id(@get_color(7))); }"
    pe = pe_of(tmp_path, body)
    assert pe.tasks == (ir.Task("t", "data", 7, 7),)
    assert [dt for _, dt in pe.function("t").params] == widths


def test_streaming_colors_are_collected_and_protected(tmp_path):
    prog = compile_src(tmp_path, "fn main() void {}",
                       streams=", .MEMCPYD2H_2 = 7, .MEMCPYH2D_3 = @get_color(1)")
    assert prog.streams == ((1, "h2d"), (7, "d2h"))
    assert compile_src(tmp_path, "fn main() void {}", streams="").streams == ()


@pytest.mark.parametrize("name", ["dfilt", "get_filter_id", "set_teardown_handler", "rpc",
                                  "get_config", "set_fifo_read_length"])
def test_the_fabric_builtins_have_handlers(name):
    assert name in HANDLERS


# ------------------------------------------------------------------------------------------------
# Errors

MAIN = "\nfn main() void { _ = D; }"
C = "const c = @get_color(4);\n"

ERRORS = [
    # fabric DSDs
    (C + "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = c, .simd_mode = .simd_8 "
     "});" + MAIN, "@get_dsd", "fabin_dsd: .simd_mode takes one of .simd_32 | .simd_64 | "
     ".simd_32_or_64, got .simd_8", "wse2"),
    (C + "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = c, .control_transform "
     "= true });" + MAIN, "@get_dsd", "fabin_dsd: .control_transform is refused: the SDK says "
     "that it marks a control wavelet in the top two bits of the index half", "wse2"),
    (C + "const D = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = c, .control_transform "
     "= true });" + MAIN, "@get_dsd", "fabout_dsd: .control_transform is refused: the SDK "
     "says that it marks a control wavelet", "wse3"),
    (C + "const D = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = c, .control = 2 });"
     + MAIN, "@get_dsd", "fabout_dsd .control takes a comptime bool, got", "wse2"),
    (C + "const D = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = c, .zero = "
     ".{ .first_source = 1 } });" + MAIN, "@get_dsd",
     "fabout_dsd .zero .first_source takes a comptime bool, got", "wse2"),
    (C + "const D = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = c, .advance_switch = "
     "1 });" + MAIN, "@get_dsd", "fabout_dsd .advance_switch takes a comptime bool, got",
     "wse2"),
    (C + "const D = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = c, .colour = c });"
     + MAIN, "@get_dsd", "unknown fabout_dsd property '.colour'", "wse2"),
    (C + "const D = @get_dsd(fabin_dsd, .{ .fabric_color = c });" + MAIN, "@get_dsd",
     "fabin_dsd needs an extent", "wse2"),
    ("const D = @get_dsd(fabin_dsd, .{ .extent = 4, .input_queue = @get_input_queue(2) });"
     + MAIN, "@get_dsd", "this fabin_dsd has no .fabric_color and its input queue 2 is never "
     "given one", "wse2"),
    (C + "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = c });" + MAIN,
     "@get_dsd", "on wse3 a fabin_dsd needs an input_queue", "wse3"),
    ("const D = @get_dsd(fabout_dsd, .{ .extent = 4, .output_queue = @get_output_queue(2) });"
     + MAIN, "@get_dsd", "uses output queue 2, which is never initialised", "wse3"),
    ("const q = @get_input_queue(3);\n"
     "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .input_queue = q, .fabric_color = 9 });"
     + MAIN + "\ncomptime { @initialize_queue(q, .{ .color = 8 }); }", "@get_dsd",
     "is on color 9, but input queue 3 is initialised with color 8", "wse3"),
    ("const q = @get_input_queue(3);\n"
     "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .input_queue = q, .fabric_color = 9 });"
     + MAIN + "\ncomptime { @initialize_queue(q, .{ .color = 8 }); }", "@get_dsd",
     "is on color 9, but input queue 3 is initialised with color 8", "wse2"),
    ("const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = 21 });" + MAIN, "@get_dsd",
     "color 21 is reserved by memcpy", "wse2"),
    (C + "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = c, .input_queue = "
     "@get_output_queue(1) });" + MAIN, "@get_dsd", ".input_queue takes an input_queue",
     "wse2"),
    (C + "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = c, .input_queue = "
     "@get_input_queue(0) });" + MAIN, "@get_dsd", "input queue 0 is reserved by memcpy",
     "wse2"),
    (C + "var k: u16 = 3;\nconst D = @get_dsd(fabin_dsd, .{ .extent = k, .fabric_color = c });"
     + MAIN, "@get_dsd", "DSD field: expected u16, got the global 'k'", "wse2"),
    (C + "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = c });\n"
     "fn main() void { _ = @increment_dsd_offset(D, 1, f32); }", "@increment_dsd_offset",
     "@increment_dsd_offset does not apply to a fabin_dsd", "wse2"),
    (C + "var a: [4]f32;\nconst D = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = c });\n"
     "fn main() void { _ = @set_dsd_base_addr(D, &a); }", "@set_dsd_base_addr",
     "@set_dsd_base_addr does not apply to a fabout_dsd", "wse2"),
    (C + "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = c });\n"
     "fn main() void { _ = @set_dsd_stride(D, 2); }", "@set_dsd_stride",
     "applies to a mem1d_dsd only", "wse2"),
    (C + "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = c });\n"
     "fn f(d: fabout_dsd) void { _ = d; }\nfn main() void { f(D); }", "f(D)",
     "argument 'd' of f: expected a fabout_dsd, got a fabin_dsd", "wse2"),
    (C + "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = c });\n"
     "fn f(d: fabin_dsd) void { _ = @set_dsd_stride(d, 2); }\nfn main() void { f(D); }",
     "@set_dsd_stride", "applies to a mem1d_dsd only", "wse2"),
    # queues
    ("const q = @get_input_queue(8);\nfn main() void { _ = q; }", "@get_input_queue",
     "input queue 8 is out of range on wse2 (0 to 7)", "wse2"),
    ("const q = @get_output_queue(6);\nfn main() void { _ = q; }", "@get_output_queue",
     "output queue 6 is out of range on wse2 (0 to 5)", "wse2"),
    ("const q = @get_output_queue(8);\nfn main() void { _ = q; }", "@get_output_queue",
     "output queue 8 is out of range on wse3 (0 to 7)", "wse3"),
    ("var n: u16 = 2;\nfn main() void { _ = @get_input_queue(n); }", "n); }",
     "@get_input_queue needs a comptime-known queue number", "wse2"),
    ("const q: input_queue = @get_output_queue(2);\nfn main() void { _ = q; }",
     "@get_output_queue", "'q': expected an input_queue", "wse2"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_input_queue(2), .{ .color = 4 });\n"
     "  @initialize_queue(@get_input_queue(2), .{ .color = 5 }); }",
     "@initialize_queue(@get_input_queue(2), .{ .color = 5", "input queue 2 is initialised twice",
     "wse2"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_input_queue(0), .{ .color = 4 }); }",
     "@get_input_queue(0)", "input queue 0 is reserved by memcpy", "wse2"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_output_queue(0)); }",
     "@get_output_queue(0)", "output queue 0 is reserved by memcpy", "wse2"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_input_queue(1), .{ .color = 4 }); }",
     "@get_input_queue(1)", "input queue 1 is reserved by memcpy", "wse3"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_output_queue(2), .{ .color = 4 }); }",
     "@initialize_queue", "on wse2 an output queue takes no config", "wse2"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_input_queue(2)); }",
     "@initialize_queue", "input queue 2 needs a .color", "wse2"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_output_queue(2)); }",
     "@initialize_queue", "output queue 2 needs a .color", "wse3"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_input_queue(2), .{ .color = 4, "
     ".priority = .{ .high = true } }); }", "@initialize_queue", "takes no .priority", "wse3"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_input_queue(2), .{ .color = 4, "
     ".ctrl_table_id = 1 }); }", "@initialize_queue", ".ctrl_table_id exists on wse3 only",
     "wse2"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_input_queue(2), .{ .color = 4, "
     ".depth = 1 }); }", "@initialize_queue", "unknown option .depth", "wse2"),
    ("fn main() void {}\ncomptime { @initialize_queue(@get_input_queue(2), .{ .color = 22 }); }",
     "@initialize_queue", "color 22 is reserved by memcpy", "wse2"),
    ("fn main() void { @initialize_queue(@get_input_queue(2), .{ .color = 4 }); }",
     "@initialize_queue", "belongs in a top-level comptime block", "wse2"),
    # data tasks
    ("task t(a: f32, b: f32) void {}\nfn main() void {}\n"
     "comptime { @bind_data_task(t, @get_data_task_id(@get_color(3))); }", "task t",
     "data task 't': a data task takes one 32-bit argument", "wse2"),
    ("task t() void {}\nfn main() void {}\n"
     "comptime { @bind_data_task(t, @get_data_task_id(@get_color(3))); }", "task t",
     "this one takes 0 of no bits", "wse2"),
    ("task t(a: u8) void {}\nfn main() void {}\n"
     "comptime { @bind_data_task(t, @get_data_task_id(@get_color(3))); }", "task t",
     "this one takes 1 of 8 bits", "wse2"),
    ("task t(comptime a: u32) void {}\nfn main() void {}\n"
     "comptime { @bind_data_task(t, @get_data_task_id(@get_color(3))); }", "comptime a",
     "parameter 'a' must be a runtime scalar", "wse2"),
    ("task t(a: u32) void {}\nfn main() void {}\n"
     "comptime { @bind_data_task(t, @get_data_task_id(@get_color(21))); }",
     "@get_data_task_id(@get_color(21", "color 21 is reserved by memcpy", "wse2"),
    ("task t(a: u32) void {}\nfn main() void {}\n"
     "comptime { @bind_data_task(t, @get_data_task_id(@get_input_queue(1))); }",
     "@get_data_task_id(@get_input_queue(1", "input queue 1 is reserved by memcpy", "wse3"),
    ("task t(a: u32) void {}\ntask u() void {}\nfn main() void {}\n"
     "comptime { @bind_data_task(t, @get_data_task_id(@get_color(5)));\n"
     "  @bind_local_task(u, @get_local_task_id(5)); }", "@bind_local_task",
     "task ID 5 is bound twice", "wse2"),
    ("task t(a: u32) void {}\nfn main() void {}\n"
     "comptime { @bind_data_task(t, @get_local_task_id(5)); }", "@get_local_task_id",
     "@bind_data_task takes a data task ID", "wse2"),
    ("fn main() void {}\ncomptime { _ = @get_data_task_id(@get_color(3)); }", "@get_color",
     "on wse3 @get_data_task_id takes an input queue", "wse3"),
    ("fn main() void {}\ncomptime { _ = @get_data_task_id(@get_input_queue(3)); }",
     "@get_input_queue", "on wse2 @get_data_task_id takes a color", "wse2"),
    ("task t(a: u32) void {}\nfn main() void {}\n"
     "comptime { @bind_data_task(t, @get_data_task_id(@get_input_queue(3))); }",
     "@bind_data_task", "data task 't' uses input queue 3, which is never initialised", "wse3"),
    ("fn main() void { @activate(@get_data_task_id(@get_color(3))); }", "@activate",
     "@activate takes a local task ID", "wse2"),
    ("task t(a: u32) void {}\nfn main() void { @activate(t); }\n"
     "comptime { @bind_data_task(t, @get_data_task_id(@get_color(3))); }", "@activate",
     "but 't' is bound as a data task", "wse2"),
    ("fn main() void { @block(@get_input_queue(3)); }", "@block",
     "on wse2 a data task is named by its color, not by input queue 3", "wse2"),
    ("fn main() void {}\ncomptime { @block(@get_color(3)); }", "@block",
     "on wse3 a data task is named by its input queue, not by color 3", "wse3"),
    # op configs
    ("var a: [4]f32;\nconst D = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "fn main() void { @fmovs(D, D, .{ .activate = @get_local_task_id(9), .unblock = "
     "@get_local_task_id(9) }); }", "@fmovs", "takes at most one of activate and unblock", "wse2"),
    ("var a: [4]f32;\nconst D = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "fn main() void { @fmovs(D, D, .{ .activate = @get_data_task_id(@get_color(2)) }); }",
     "@fmovs", "@fmovs .activate takes a local task ID", "wse2"),
    ("var a: [4]f32;\nconst D = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "fn main() void { @fmovs(D, D, .{ .on_control = .{ .terminate = true } }); }", "@fmovs",
     "@fmovs: .on_control needs a fabin_dsd source: it acts on a control wavelet arriving on "
     "the operation's fabric input", "wse2"),
    ("var a: [4]f32;\nconst D = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "fn main() void { @fmovs(D, D, .{ .ut_id = 1 }); }", "@fmovs",
     "@fmovs .ut_id takes a ut_id (@get_ut_id(n)), got the comptime_int 1", "wse3"),
    ("var a: [4]f32;\nconst D = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "fn main() void { @fmovs(D, D, .{ .ut_id = 1 }); }", "@fmovs",
     "@fmovs .ut_id: microthread IDs exist on wse3 only (this program is for wse2)", "wse2"),
    ("var a: [4]f32;\nvar b: bool = true;\n"
     "const D = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "fn main() void { @fmovs(D, D, .{ .async = b }); }", "@fmovs",
     ".async takes a comptime-known bool", "wse2"),
    ("var a: [4]f32;\nconst D = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "fn main() void { @fmovs(D, D, .{ .activate = t }); }\ntask t() void {}\n"
     "comptime { @export_symbol(main); @bind_local_task(t, @get_local_task_id(9)); }", "@fmovs",
     "task 't' is not bound to a task ID here", "wse2"),
    ("var a: [4]f32;\nconst D = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "fn main() void { @fmovs(D, D, .{ .index = -1 }); }", "@fmovs",
     "@fmovs .index: -1 does not fit in u16", "wse2"),
    (C + "var a: [4]f32;\nconst M = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = c });\n"
     "fn main() void { @fmovs(D, M); }", "D, M)",
     "a fabin_dsd receives; it cannot be the destination", "wse2"),
    (C + "var a: [4]f32;\nconst M = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "const D = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = c });\n"
     "fn main() void { @fadds(M, M, D); }", "D); }", "a fabout_dsd sends; it cannot be source 2",
     "wse2"),
    ("const q = @get_input_queue(2);\nconst r = @get_input_queue(3);\n"
     "var a: [4]f32;\nconst M = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .input_queue = q });\n"
     "const E = @get_dsd(fabin_dsd, .{ .extent = 4, .input_queue = r });\n"
     "fn main() void { @fadds(M, D, E); }\n"
     "comptime { @initialize_queue(q, .{ .color = 4 }); @initialize_queue(r, .{ .color = 5 }); }",
     "@fadds", "on wse3 an operation takes at most one fabin_dsd", "wse3"),
    (C + "var a: [4]i16;\nconst M = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "const W = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = c, "
     ".wavelet_index_offset = true });\nfn main() void { @mov16(W, M); }", "@mov16",
     "operand 1 uses wavelet_index_offset, so the operation needs an index", "wse2"),
    ("var a: [4]i16;\nvar M = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4, "
     ".wavelet_index_offset = true });\n"
     "fn main() void { @mov16(M, @set_dsd_length(M, 2)); }", "@mov16",
     "operand 1 uses wavelet_index_offset", "wse2"),
    # FIFOs
    ("var b: [4]f32;\nfn main() void { const f = @allocate_fifo(b); _ = f; }", "@allocate_fifo",
     "@allocate_fifo belongs in a global const of a PE program", "wse2"),
    ("var b: [4]f32;\nvar f = @allocate_fifo(b);\nfn main() void { _ = f; }", "@allocate_fifo",
     "@allocate_fifo belongs in a global const", "wse2"),
    ("var b: f32 = 0.0;\nconst f = @allocate_fifo(b);\nfn main() void { _ = f; }", "b);",
     "@allocate_fifo takes a global var array of 16- or 32-bit elements", "wse2"),
    ("var b: [4]u8;\nconst f = @allocate_fifo(b);\nfn main() void { _ = f; }", "b);",
     "@allocate_fifo: 'b' holds u8; a FIFO holds 16- or 32-bit elements", "wse2"),
    ("var b: [4]f32;\nconst f = @allocate_fifo(b);\nconst g = @allocate_fifo(b);\n"
     "fn main() void { _ = f; _ = g; }", "b);\nfn", "'b' already holds a FIFO ('f')", "wse2"),
    ("var b: [4]f32;\nconst f = @allocate_fifo(b, .{ .empty_action = .{ .fault = true } });\n"
     "fn main() void { _ = f; }", ".{ .empty", ".empty_action .fault is not supported on wse2",
     "wse2"),
    ("var b: [4]f32;\nconst f = @allocate_fifo(b, .{ .full_action = .{ .suspend = true } });\n"
     "fn main() void { _ = f; }", ".{ .full", ".full_action is not supported on wse2", "wse2"),
    ("var b: [4]f32;\nconst f = @allocate_fifo(b, .{ .simd_mode = .simd_32 });\n"
     "fn main() void { _ = f; }", ".{ .simd", "@allocate_fifo: .simd_mode is WSE-2 only",
     "wse3"),
    ("var b: [4]f32;\nconst f = @allocate_fifo(b, .{ .activate_push = @get_data_task_id("
     "@get_color(3)) });\nfn main() void { _ = f; }", "@allocate_fifo",
     "@allocate_fifo .activate_push takes a local task ID", "wse2"),
    ("var b: [4]f32;\nvar c: [4]f32;\nvar a: [4]f32;\n"
     "const M = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "const f = @allocate_fifo(b);\nconst g = @allocate_fifo(c);\n"
     "fn main() void { @fadds(M, f, g); }", "@fadds", "at most one source may be a FIFO", "wse2"),
    ("var b: [4]f32;\nvar a: [4]f32;\n"
     "const M = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });\n"
     "const f = @allocate_fifo(b);\nfn main() void { @fadds(M, f, M); }", "f, M)",
     "a FIFO cannot be the first of two sources", "wse2"),
    ("var b: [4]f32;\nconst f = @allocate_fifo(b);\nfn id(x: f32) f32 { return x; }\n"
     "fn main() void { @map(id, f, f); }", "f, f)", "@map does not take FIFOs", "wse2"),
    ("var b: [4]f32;\nconst f = @allocate_fifo(b);\n"
     "fn main() void { _ = @set_dsd_length(f, 2); }", "@set_dsd_length",
     "expected a DSD, got the FIFO 'f'", "wse2"),
    ("var b: [4]f32;\nconst f = @allocate_fifo(b);\n"
     "fn main() void { @set_fifo_read_length(b, 2); }", "b, 2)",
     "@set_fifo_read_length takes a FIFO (const f = @allocate_fifo(buf)), got", "wse2"),
    ("var b: [4]f32;\nconst f = @allocate_fifo(b);\n"
     "comptime { @set_fifo_write_length(f, 2); }", "@set_fifo_write_length",
     "@set_fifo_write_length happens at run time", "wse2"),
    ("var b: [4]f32;\nconst f = @allocate_fifo(b);\n"
     "fn main() void { @set_fifo_write_length(f, 1.5); }", "1.5",
     "the length of @set_fifo_write_length", "wse2"),
    # streaming colors in the PE program
    ("fn main() void {}\ncomptime { @set_local_color_config(sys.MEMCPYH2D_1, .{ .routes = "
     ".{ .rx = .{WEST}, .tx = .{RAMP} } }); }", "@set_local_color_config",
     "color 2 is a memcpy streaming color", "wse2"),
]


@pytest.mark.parametrize("body,where,message,arch", ERRORS,
                         ids=[f"{k}-{e[2][:40]}" for k, e in enumerate(ERRORS)])
def test_fabric_misuse_is_reported_at_the_source(tmp_path, body, where, message, arch):
    assert_error_at(tmp_path, body, where, message, arch)


@pytest.mark.parametrize("streams,where,message", [
    (", .MEMCPYH2D_1 = 22", "@import_module", "color 22 is memcpy's own"),
    (", .MEMCPYH2D_1 = 4, .MEMCPYD2H_1 = 4", "@import_module",
     "color 4 is both .MEMCPYH2D_1 and .MEMCPYD2H_1"),
    (", .MEMCPYH2D_1 = true", "@import_module", "expected a color"),
])
def test_bad_streaming_colors_point_at_the_memcpy_import(tmp_path, streams, where, message):
    assert_error_at(tmp_path, "fn main() void {}", where, message, file="layout.csl",
                    streams=streams)


def test_a_layout_route_on_a_streaming_color_points_at_the_route(tmp_path):
    extra = "  @set_color_config(0, 0, @get_color(2), .{ .routes = .{ .rx = .{RAMP}, " \
        ".tx = .{EAST} } });"
    assert_error_at(tmp_path, "fn main() void {}", "@set_color_config",
                    "color 2 is a memcpy streaming color", file="layout.csl", extra=extra)


# ------------------------------------------------------------------------------------------------
# End to end

STREAM_PE = """
const in_q = @get_input_queue(2);
const out_q = @get_output_queue(3);
const recv_id = if (@is_arch("wse3")) @get_data_task_id(in_q)
                else @get_data_task_id(sys.MEMCPYH2D_1);
var got: [4]f32;
var k: u16 = 0;
const out = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = sys.MEMCPYD2H_1,
                                    .output_queue = out_q });
const G = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> got[i] });
task recv(x: f32) void {
  got[k] = x * 2.0;
  k += 1;
  if (k == 4) { @fmovs(out, G); }
}
fn main() void { sys.unblock_cmd_stream(); }
comptime {
  @bind_data_task(recv, recv_id);
  @initialize_queue(in_q, .{ .color = sys.MEMCPYH2D_1 });
  if (@is_arch("wse3")) { @initialize_queue(out_q, .{ .color = sys.MEMCPYD2H_1 }); }
}
"""


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_streamed_wavelets_run_a_data_task_that_streams_back(tmp_path, arch):
    r = SdkRuntime(compile_src(tmp_path, STREAM_PE, arch))
    r.load()
    r.run()
    r.memcpy_h2d(2, np.arange(8, dtype=np.float32), 0, 0, 2, 1, 4, streaming=True)
    out = np.zeros(8, np.float32)
    r.memcpy_d2h(out, 3, 0, 0, 2, 1, 4, streaming=True)
    assert out.tolist() == (2 * np.arange(8)).tolist()
