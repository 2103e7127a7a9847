"""Data structure registers (spec 9): `@get_dsr`, `@load_to_dsr` at comptime and at run time,
`.save_address`, `.async` loads of fabric DSDs, DSR operands of DSD operations, and every
misuse reported at its source. Programs run on the engine and the reference interpreter on
both arches, their results checked by hand or against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, position, read, run, sender_receiver_layout

from wsejax import CslError, ir
from wsejax.csl import compile_csl
from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const lay = @import_module("<layout>");
"""

EXPORTS = """@export_name("out", [*]{t}, true);
@export_name("main", fn()void);"""

TAIL = """
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""


def program(tmp_path, body: str, t: str = "f32", arch: str = "wse2"):
    return compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS.format(t=t), arch=arch)


def both(program, name: str, n: int, dtype):
    """`name`'s first n elements on every PE, `[H, W, n]`: (engine, reference)."""
    eng = read(run(program), name, n, dtype)
    ref = Reference(program)
    ref.launch("main")
    h, w = program.height, program.width
    refs = np.stack([np.stack([np.asarray(ref.memory(x, y)[name]).reshape(-1)[:n]
                               for x in range(w)]) for y in range(h)])
    return eng, refs


def assert_error_at(tmp_path, body: str, where: str, message: str, arch="wse2", t="f32"):
    with pytest.raises(CslError) as err:
        program(tmp_path, body, t, arch)
    e = err.value
    assert message in e.message, str(e)
    assert e.file.endswith("pe.csl"), str(e)
    assert (e.line, e.col) == position((tmp_path / "pe.csl").read_text(), where), str(e)


# ------------------------------------------------------------------------------------------------
# memory DSDs in registers


@pytest.mark.parametrize("arch", ARCHES)
def test_save_address_copies_consecutive_chunks(tmp_path, arch):
    # the doc example: three moves through two save_address registers copy three chunks
    prog = program(tmp_path, """
var inp = [12]i32 { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
var out: [14]i32;
var out_ptr: [*]i32 = &out;
const in_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> inp[i] });
const out_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i + 1] });
const in_dsr = @get_dsr(dsr_src1, 2);
const out_dsr: dsr_dest = @get_dsr(dsr_dest, 1);
comptime {
  @load_to_dsr(in_dsr, in_dsd, .{ .save_address = true });
}
fn main() void {
  @load_to_dsr(out_dsr, out_dsd, .{ .save_address = true });
  @mov32(out_dsr, in_dsr);
  @mov32(out_dsr, in_dsr);
  @mov32(out_dsr, in_dsr);
  sys.unblock_cmd_stream();
}
""", "i32", arch)
    eng, ref = both(prog, "out", 14, np.int32)
    want = [0] + list(range(1, 13)) + [0]
    assert eng[0, 0].tolist() == ref[0, 0].tolist() == want
    assert eng.tolist() == ref.tolist()


@pytest.mark.parametrize("arch", ARCHES)
def test_a_cursor_is_per_pe_and_a_reload_resets_it(tmp_path, arch):
    # PE 0 moves its cursors once more than PE 1; a reload puts one back at its start
    prog = program(tmp_path, """
var inp = [9]i32 { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
var out: [9]i32;
var out_ptr: [*]i32 = &out;
const in_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> inp[i] });
const out_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> out[i] });
const src = @get_dsr(dsr_src0, 1);
const dst = @get_dsr(dsr_dest, 1);
comptime {
  @load_to_dsr(src, in_dsd, .{ .save_address = true });
  @load_to_dsr(dst, out_dsd, .{ .save_address = true });
}
fn main() void {
  if (lay.get_x_coord() == 0) { @mov32(dst, src); }
  @mov32(dst, src);
  @load_to_dsr(src, in_dsd, .{ .save_address = true });
  @mov32(dst, src);
  sys.unblock_cmd_stream();
}
""", "i32", arch)
    eng, ref = both(prog, "out", 9, np.int32)
    assert eng.tolist() == ref.tolist()
    assert eng[0, 0].tolist() == [1, 2, 3, 4, 5, 6, 1, 2, 3]
    assert eng[0, 1].tolist() == [1, 2, 3, 1, 2, 3, 0, 0, 0]


def test_one_type_and_id_is_one_register_and_a_retyped_one_too(tmp_path):
    # loaded through one handle, used through another: a second @get_dsr of the same type
    # and id, a dsr_fifo_dest re-typed from it, a comptime parameter of type dsr_dest
    prog = program(tmp_path, """
var a = [3]i32 { 4, 5, 6 };
var out: [6]i32;
var out_ptr: [*]i32 = &out;
const a_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> a[i] });
const o_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> out[i] });
const d1 = @get_dsr(dsr_dest, 1);
const d2: dsr_dest = @get_dsr(dsr_dest, 1);
const f = @get_dsr(dsr_fifo_dest, d2);
const back = @get_dsr(dsr_dest, f);
const s = @get_dsr(dsr_src1, 1);
comptime {
  @load_to_dsr(f, o_dsd, .{ .save_address = true });
  @load_to_dsr(s, a_dsd);
}
fn copy(comptime d: dsr_dest) void { @mov32(d, s); }
fn main() void {
  @mov32(d1, s);
  copy(back);
  sys.unblock_cmd_stream();
}
""", "i32")
    eng, ref = both(prog, "out", 6, np.int32)
    assert eng[0, 0].tolist() == ref[0, 0].tolist() == [4, 5, 6, 4, 5, 6]
    assert [(d.kind, d.id) for d in prog.classes[0].dsrs] == [("dest", 1), ("src1", 1)]


@pytest.mark.parametrize("arch", ARCHES)
def test_registers_as_operands_of_arithmetic_ops(tmp_path, arch):
    # a register without save_address stays where it is loaded; one reloaded at run time with
    # a per-PE length and stride; a dsr_src0 as a destination; a register next to a DSD
    prog = program(tmp_path, """
var a = [8]f32 { 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0 };
var b = [8]f32 { 0.5, 0.25, 2.0, -1.0, 4.0, 8.0, -2.0, 3.0 };
var out: [16]f32;
var out_ptr: [*]f32 = &out;
const a_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });
const b_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> b[i] });
const o_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
const d0 = @get_dsr(dsr_dest, 0);
const s0 = @get_dsr(dsr_src0, 0);
const s1 = @get_dsr(dsr_src1, 0);
comptime {
  @load_to_dsr(s0, a_dsd);
  @load_to_dsr(s1, b_dsd);
}
fn main() void {
  @load_to_dsr(d0, o_dsd);
  @fadds(d0, s0, s1);                       // out[0..4] = a + b
  @load_to_dsr(d0, @increment_dsd_offset(o_dsd, 4, f32));
  @fmacs(d0, s0, s1, 2.0);                  // out[4..8] = a + 2 b
  const k: u16 = @as(u16, lay.get_x_coord()) + 2;
  @load_to_dsr(d0, @set_dsd_stride(@set_dsd_length(@increment_dsd_offset(o_dsd, 8, f32), k), 2));
  @fmuls(d0, s0, b_dsd);                    // every other element from out[8], k of them
  @load_to_dsr(s0, @set_dsd_length(@increment_dsd_offset(o_dsd, 14, f32), 2));
  @fnegs(s0, a_dsd);                        // a dsr_src0 destination: 2 elements
  sys.unblock_cmd_stream();
}
""", "f32", arch)
    a = np.arange(1, 9, dtype=np.float32)
    b = np.array([0.5, 0.25, 2.0, -1.0, 4.0, 8.0, -2.0, 3.0], np.float32)
    eng, ref = both(prog, "out", 16, np.float32)
    for x in range(2):
        want = np.zeros(16, np.float32)
        want[0:4] = a[:4] + b[:4]
        want[4:8] = a[:4] + b[:4] * np.float32(2)
        k = x + 2
        want[8:8 + 2 * k:2] = a[:k] * b[:k]
        want[14:16] = -a[:2]
        np.testing.assert_array_equal(eng[0, x], want)
        np.testing.assert_array_equal(ref[0, x], want)


@pytest.mark.parametrize("arch", ARCHES)
def test_save_address_continues_where_a_shorter_operand_stopped(tmp_path, arch):
    # an op runs the shortest operand's length (spec 7.9): the register moves by that much
    prog = program(tmp_path, """
var acc = [6]f32 { 10.0, 20.0, 30.0, 40.0, 50.0, 60.0 };
var out: [6]f32;
var out_ptr: [*]f32 = &out;
const acc_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> acc[i] });
const one = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> acc[0] });
const o_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> out[i] });
const src = @get_dsr(dsr_src1, 5);
const dst = @get_dsr(dsr_dest, 5);
comptime { @load_to_dsr(src, acc_dsd, .{ .save_address = true }); }
fn main() void {
  @load_to_dsr(dst, o_dsd, .{ .save_address = true });
  @fadds(dst, src, one);       // 2 elements
  @fadds(dst, src, one);       // the next 2
  @fadds(dst, src, one);       // the last 2
  sys.unblock_cmd_stream();
}
""", "f32", arch)
    eng, ref = both(prog, "out", 6, np.float32)
    want = [20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    assert eng[0, 0].tolist() == ref[0, 0].tolist() == want


@pytest.mark.parametrize("arch", ARCHES)
def test_comptime_loads_apply_setters_and_take_mem4d_dsds(tmp_path, arch):
    prog = program(tmp_path, """
var b = [8]i32 { 10, 11, 12, 13, 14, 15, 16, 17 };
var m: [2, 3]i32;
var out: [10]i32;
var out_ptr: [*]i32 = &out;
const b_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{8} -> b[i] });
const mt = @get_dsd(mem4d_dsd, .{ .tensor_access = |i, j|{3, 2} -> m[j, i] });
const o_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
const s1 = @get_dsr(dsr_src1, 7);
const s0 = @get_dsr(dsr_src0, 7);
const d0 = @get_dsr(dsr_dest, 7);
comptime {
  @load_to_dsr(s1, @set_dsd_length(@set_dsd_stride(@increment_dsd_offset(b_dsd, 1, i32), 2),
                                    4));
  @load_to_dsr(s0, mt);
  @load_to_dsr(d0, @increment_dsd_offset(@set_dsd_length(o_dsd, 6), 4, i32));
}
fn main() void {
  for (@range(u16, 2)) |i| { for (@range(u16, 3)) |j| { m[i, j] = @as(i32, 3 * i + j + 1); } }
  @mov32(o_dsd, s1);     // b[1], b[3], b[5], b[7]
  @mov32(d0, s0);        // m transposed
  sys.unblock_cmd_stream();
}
""", "i32", arch)
    eng, ref = both(prog, "out", 10, np.int32)
    m = np.arange(1, 7, dtype=np.int32).reshape(2, 3)
    want = [11, 13, 15, 17] + m.T.reshape(-1).tolist()
    assert eng[0, 0].tolist() == ref[0, 0].tolist() == want


# ------------------------------------------------------------------------------------------------
# fabric DSDs in registers

FABRIC_LAYOUT = sender_receiver_layout("f32")

FABRIC_PE = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const oq = @get_output_queue(2);
const iq = @get_input_queue(3);
const done_id: local_task_id = @get_local_task_id(9);
var src = [6]f32 { 7.0, 1.0, 8.0, 2.0, 8.0, 3.0 };
var bias = [6]f32 { 0.5, 0.5, 0.5, 0.5, 0.5, -0.5 };
var got: [6]f32;
var got_ptr: [*]f32 = &got;
const src_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> src[i] });
const bias_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> bias[i] });
const got_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> got[i] });
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 6, .output_queue = oq }
                                 else .{ .extent = 6, .fabric_color = c, .output_queue = oq });
const in = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 6, .input_queue = iq }
                               else .{ .extent = 6, .fabric_color = c, .input_queue = iq });
const out_dsr = @get_dsr(dsr_dest, 3);
const in_dsr = @get_dsr(dsr_src1, 4);
fn main() void {
  if (sender) {
    @load_to_dsr(out_dsr, out, .{ .async = true, .activate = done_id });
    @fmovs(out_dsr, src_dsd);
  } else {
    @fadds(got_dsd, in_dsr, bias_dsd);
  }
}
task done() void { sys.unblock_cmd_stream(); }
comptime {
  @load_to_dsr(in_dsr, in, .{ .async = true, .activate = done_id });
  @bind_local_task(done, done_id);
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = c }); }
  @initialize_queue(iq, .{ .color = c });
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""


def _received(tmp_path, pe_source: str, arch: str) -> tuple[list, list]:
    """The sender-receiver program with `pe_source`: the receiver's 6 `got` values, (engine,
    reference)."""
    (tmp_path / "layout.csl").write_text(FABRIC_LAYOUT)
    (tmp_path / "pe.csl").write_text(pe_source)
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    eng = read(run(prog), "got", 6, np.float32)[0, 1]
    ref = Reference(prog)
    ref.launch("main")
    return eng.tolist(), np.asarray(ref.memory(1, 0)["got"]).reshape(-1).tolist()


@pytest.mark.parametrize("arch", ARCHES)
def test_fabric_dsds_in_registers_stream_asynchronously(tmp_path, arch):
    eng, ref = _received(tmp_path, FABRIC_PE, arch)
    assert eng == ref == [7.5, 1.5, 8.5, 2.5, 8.5, 2.5]


CHUNKS_PE = """
param memcpy_params;
param c: color;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const oq = @get_output_queue(2);
const iq = @get_input_queue(3);
const done_id: local_task_id = @get_local_task_id(9);
var src = [6]f32 { 7.0, 1.0, 8.0, 2.0, 8.0, 3.0 };
var bias = [6]f32 { 0.5, 1.5, 2.5, 3.5, 4.5, 5.5 };
var got: [6]f32;
var got_ptr: [*]f32 = &got;
const src_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{6} -> src[i] });
const bias_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> bias[i] });
const got_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{2} -> got[i] });
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 6, .output_queue = oq }
                                 else .{ .extent = 6, .fabric_color = c, .output_queue = oq });
const in = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{ .extent = 2, .input_queue = iq }
                               else .{ .extent = 2, .fabric_color = c, .input_queue = iq });
const got_dsr = @get_dsr(dsr_dest, 2);
const bias_dsr = @get_dsr(dsr_src0, 2);
const in_dsr = @get_dsr(dsr_src1, 2);
fn main() void {
  if (sender) {
    @fmovs(out, src_dsd, .{ .async = true, .activate = done_id });
  } else {
    @fadds(got_dsr, in_dsr, bias_dsr);
    @fadds(got_dsr, in_dsr, bias_dsr);
    @fadds(got_dsr, in_dsr, bias_dsr);
    sys.unblock_cmd_stream();
  }
}
task done() void { sys.unblock_cmd_stream(); }
comptime {
  @load_to_dsr(in_dsr, in);
  @load_to_dsr(got_dsr, got_dsd, .{ .save_address = true });
  @load_to_dsr(bias_dsr, bias_dsd, .{ .save_address = true });
  @bind_local_task(done, done_id);
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = c }); }
  @initialize_queue(iq, .{ .color = c });
  @export_symbol(got_ptr, "got");
  @export_symbol(main);
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_save_address_registers_take_a_stream_in_chunks(tmp_path, arch):
    # three synchronous ops each take two wavelets; the memory registers move past them
    eng, ref = _received(tmp_path, CHUNKS_PE, arch)
    want = (np.array([7, 1, 8, 2, 8, 3], np.float32)
            + np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5], np.float32)).tolist()
    assert eng == ref == want


ASYNC_CHUNKS = """
const next_id: local_task_id = @get_local_task_id(10);
var chunks: u16 = 0;
task next() void {
  chunks += 1;
  if (chunks < 3) {
    @fadds(got_dsr, in_dsr, bias_dsr, .{ .async = true, .activate = next_id });
  } else {
    sys.unblock_cmd_stream();
  }
}
comptime { @bind_local_task(next, next_id); }
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_save_address_registers_move_when_an_async_op_completes(tmp_path, arch):
    # each async op takes two wavelets; its completion starts the next from where it stopped
    body = CHUNKS_PE.replace("""    @fadds(got_dsr, in_dsr, bias_dsr);
    @fadds(got_dsr, in_dsr, bias_dsr);
    @fadds(got_dsr, in_dsr, bias_dsr);
    sys.unblock_cmd_stream();""",
        "    @fadds(got_dsr, in_dsr, bias_dsr, .{ .async = true, .activate = next_id });")
    eng, ref = _received(tmp_path, body + ASYNC_CHUNKS, arch)
    want = (np.array([7, 1, 8, 2, 8, 3], np.float32)
            + np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5], np.float32)).tolist()
    assert eng == ref == want


def _fifo_chunks(options: str = "") -> str:
    """CHUNKS_PE with the six wavelets pushed into a FIFO (`@allocate_fifo(buf options)`),
    from which three ops each pop two and move the registers."""
    body = CHUNKS_PE.replace("""    @fadds(got_dsr, in_dsr, bias_dsr);
    @fadds(got_dsr, in_dsr, bias_dsr);
    @fadds(got_dsr, in_dsr, bias_dsr);""", """    @fmovs(f, in6);
    @fadds(got_dsr, bias_dsr, f);
    @fadds(got_dsr, bias_dsr, f);
    @fadds(got_dsr, bias_dsr, f);""")
    body = body.replace("fn main() void {", f"""var buf = @zeros([8]f32);
const f = @allocate_fifo(buf{options});
const in6 = @get_dsd(fabin_dsd, if (@is_arch("wse3")) .{{ .extent = 6, .input_queue = iq }}
                                else .{{ .extent = 6, .fabric_color = c, .input_queue = iq }});
fn main() void {{""")
    return body.replace("  @load_to_dsr(in_dsr, in);\n", "")


CHUNK_SUMS = (np.array([7, 1, 8, 2, 8, 3], np.float32)
              + np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5], np.float32)).tolist()


@pytest.mark.parametrize("arch", ARCHES)
def test_save_address_registers_move_past_what_an_op_with_a_fifo_took(tmp_path, arch):
    eng, ref = _received(tmp_path, _fifo_chunks(), arch)
    assert eng == ref == CHUNK_SUMS


@pytest.mark.parametrize("arch, options", [
    ("wse2", ", .{ .empty_action = .{ .test_or_suspend = true }, .dest = @get_dsr(dsr_dest, 5), "
             ".src = @get_dsr(dsr_src1, 5), .xdsr = @get_xdsr(2) }"),
    ("wse3", ", .{ .empty_action = .{ .suspend = true }, .full_action = .{ .suspend = true }, "
             ".dest = @get_dsr(dsr_dest, 5), .src = @get_dsr(dsr_src1, 5), "
             ".xdsr = @get_xdsr(2) }"),
])
def test_a_fifo_with_waiting_actions_and_its_own_registers(tmp_path, arch, options):
    eng, ref = _received(tmp_path, _fifo_chunks(options), arch)
    assert eng == ref == CHUNK_SUMS


@pytest.mark.parametrize("arch, options, at, message", [
    ("wse2", ", .{ .full_action = .{ .suspend = true } }", ".{ .full",
     "@allocate_fifo: .full_action is not supported on wse2"),
    ("wse2", ", .{ .empty_action = .{ .suspend = true } }", ".{ .empty",
     "@allocate_fifo: .empty_action .suspend is not supported on wse2"),
    ("wse2", ", .{ .empty_action = .{ .fault = true } }", ".{ .empty",
     "@allocate_fifo: .empty_action .fault is not supported on wse2"),
    ("wse3", ", .{ .empty_action = .{ .wait = true } }", ".{ .empty",
     "@allocate_fifo: .empty_action takes one of .{ .test_or_suspend | .terminate | .suspend "
     "| .fault = true }, got .wait"),
    ("wse2", ", .{ .empty_action = .terminate }", ".{ .empty",
     "@allocate_fifo .empty_action takes one action, like .{ .suspend = true }"),
    ("wse2", ", .{ .dest = @get_dsr(dsr_dest, 5), .src = @get_dsr(dsr_src1, 5) }", ".{ .dest",
     "@allocate_fifo: .dest, .src and .xdsr go together; .xdsr is missing"),
    ("wse2", ", .{ .dest = @get_dsr(dsr_dest, 5), .src = @get_dsr(dsr_src1, 6), "
             ".xdsr = @get_xdsr(2) }", ".{ .dest",
     "@allocate_fifo: .dest and .src are registers of one number, got 5 and 6"),
    ("wse2", ", .{ .dest = @get_dsr(dsr_src0, 5), .src = @get_dsr(dsr_src1, 5), "
             ".xdsr = @get_xdsr(2) }", ".{ .dest",
     "@allocate_fifo: .dest takes a dsr_dest, got a dsr_src0"),
    ("wse2", ", .{ .dest = @get_dsr(dsr_dest, 2), .src = @get_dsr(dsr_src1, 2), "
             ".xdsr = @get_xdsr(2) }", ".{ .dest",
     "@allocate_fifo: the dsr_dest 2 (a @load_to_dsr) is already in use"),
])
def test_fifo_options_are_checked(tmp_path, arch, options, at, message):
    (tmp_path / "layout.csl").write_text(FABRIC_LAYOUT)
    src = _fifo_chunks(options)
    (tmp_path / "pe.csl").write_text(src)
    with pytest.raises(CslError) as err:
        compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    assert message in str(err.value)
    line, col = position(src, at)
    assert f"pe.csl:{line}:{col}" in str(err.value)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_circbuf_register_streams_around_its_ring(tmp_path, arch):
    # the sender's register walks src[0..3] as a ring: six wavelets go round once and a half
    body = CHUNKS_PE.replace("@fmovs(out, src_dsd, .{", "@fmovs(out, ring_dsr, .{")
    body = body.replace("fn main() void {", """
const ring = @get_dsd(circbuf_dsd, .{ .base_address = &src, .extent = 6, .wraparound = 4 });
const ring_dsr = @get_dsr(dsr_src1, 3);
comptime { @load_to_dsr_xdsr(ring_dsr, @get_xdsr(1), ring); }
fn main() void {""")
    eng, ref = _received(tmp_path, body, arch)
    want = (np.array([7, 1, 8, 2, 7, 1], np.float32)
            + np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5], np.float32)).tolist()
    assert eng == ref == want


@pytest.mark.parametrize("arch", ARCHES)
def test_an_async_load_makes_the_operations_on_the_register_async(tmp_path, arch):
    (tmp_path / "layout.csl").write_text(FABRIC_LAYOUT)
    (tmp_path / "pe.csl").write_text(FABRIC_PE)
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    ops = [s for pe in prog.classes for s in ir.walk_stmts(pe.function("main").body)
           if isinstance(s, ir.DsdOp)]
    assert ops and all(o.config is not None and o.config.async_ and o.config.activate.value == 9
                       for o in ops)
    dsrs = {d.name: d for pe in prog.classes for d in pe.dsrs}
    assert sorted((d.kind, d.id) for d in dsrs.values()) == [("dest", 3), ("src1", 4)]


# ------------------------------------------------------------------------------------------------
# misuse, reported at its source

GOOD = """
var a: [4]f32;
var out: [4]f32;
var out_ptr: [*]f32 = &out;
const a_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });
const iq = @get_input_queue(2);
const oq = @get_output_queue(3);
const in = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = 5, .input_queue = iq });
const out_f = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = 6, .output_queue = oq });
const dd = @get_dsr(dsr_dest, 1);
const s0 = @get_dsr(dsr_src0, 1);
const s1 = @get_dsr(dsr_src1, 1);
"""

BAD = [
    ("comptime { @load_to_dsr(dd, in); }\nfn main() void {}",
     "in)", "a fabin_dsd cannot be loaded into a dsr_dest"),
    ("comptime { @load_to_dsr(s0, out_f); }\nfn main() void {}",
     "out_f)", "a fabout_dsd cannot be loaded into a dsr_src0"),
    ("comptime { @load_to_dsr(s1, a_dsd); @load_to_dsr(dd, a_dsd); }\n"
     "fn main() void { @fmovs(s1, dd); }",
     "s1, dd)", "@fmovs: the destination is a dsr_src1; a destination DSR is a dsr_dest"),
    ("comptime { @load_to_dsr(s1, a_dsd); @load_to_dsr(dd, a_dsd); }\n"
     "fn main() void { @fmovs(dd, dd); }",
     "dd);", "@fmovs: operand 2 is a dsr_dest; a source DSR is a dsr_src0 or a dsr_src1"),
    ("fn main() void { @fmovs(a_dsd, s1); }",
     "s1);", "@fmovs: the dsr_src1 1 is used before any @load_to_dsr loads it"),
    ("comptime { @load_to_dsr(s1, in); }\nfn main() void {}",
     "in)", "a fabin_dsd in a DSR needs an explicit @initialize_queue(@get_input_queue(2)"),
    ("comptime { @load_to_dsr(s1, in, .{ .on_control = true }); }\nfn main() void {}",
     "@load_to_dsr(s1, in, .{ .on_control",
     "@load_to_dsr: .on_control takes one of .{ .terminate = true }, .{ .activate = task }, "
     ".{ .unblock = task }"),
    ("comptime { @load_to_dsr(dd, out_f, .{ .save_address = true }); }\nfn main() void {}",
     ".{ .save", ".save_address applies to a mem1d_dsd or a mem4d_dsd, got a fabout_dsd"),
    ("comptime { @load_to_dsr(s1, a_dsd, .{ .async = true }); }\nfn main() void {}",
     ".{ .async", ".async and its hooks apply to a fabric DSD, got a mem1d_dsd"),
    ("comptime { const x = @get_dsr(dsr_src0, s1); }\nfn main() void {}",
     "s1); }", "a dsr_src1 (of the src1 register file) cannot be re-typed as a dsr_src0"),
    ("comptime { const x = @get_dsr(f32, 1); }\nfn main() void {}",
     "f32, 1)", "@get_dsr takes a DSR type first"),
    ("comptime { const x = @get_dsr(dsr_dest, -1); }\nfn main() void {}",
     "-1)", "@get_dsr takes a comptime-known register number"),
    ("comptime { @load_to_dsr(s1, a_dsd); }\n"
     "fn main() void { @load_to_dsr(s1, a_dsd, .{ .save_address = true }); }",
     "@load_to_dsr(s1, a_dsd, .{", "was loaded with another config elsewhere"),
    ("comptime { @load_to_dsr(s1, a_dsd); }\n"
     "fn main() void { @load_to_dsr(s1, in); }",
     "in); }", "was loaded with a mem1d_dsd of f32 elsewhere"),
    ("comptime { @load_to_dsr(dd, out_f); }\nfn main() void {\n  @load_to_dsr(dd, "
     "@get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = 7, .output_queue = oq, "
     ".wavelet_index_offset = true }));\n}",
     "@get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = 7",
     "@load_to_dsr: the dest DSR 1 was loaded elsewhere with a fabout_dsd that differs from "
     "this one in .simd_mode, .wavelet_index_offset or .zero; the operations on a register "
     "are checked once"),
    ("comptime { @load_to_dsr(s1, @set_dsd_length(a_dsd, 3)); }\n"
     "fn f(x: f32) f32 { return x; }\nfn main() void { @map(f, s1, a_dsd); }",
     "s1, a_dsd); }", "@map: the dsr_src1 1 must be loaded with .{ .single_step = true }"),
    ("comptime { @load_to_dsr(s1, in, .{ .async = true }); "
     "@initialize_queue(iq, .{ .color = 5 }); @load_to_dsr(dd, a_dsd); }\n"
     "fn main() void { @fmovs(dd, s1, .{ .async = true }); }",
     "@fmovs(dd", "a DSR operand was loaded with .async; its options are those of"),
    ("comptime { @load_to_dsr(s1, a_dsd, .{ .single_step = true }); @load_to_dsr(dd, a_dsd); }"
     "\nfn main() void { @fmovs(dd, s1); }",
     "s1); }", "@fmovs: the dsr_src1 1 was loaded with .single_step, which readies it for @map "
     "only"),
    ("const x = @get_xdsr(1);\ncomptime { @load_to_dsr_xdsr(s1, x, a_dsd); }\n"
     "fn main() void {}",
     "a_dsd); }", "@load_to_dsr_xdsr loads a circbuf_dsd, got a mem1d_dsd"),
    ("const x = @get_xdsr(1);\ncomptime { @load_to_dsr_xdsr(s1, s1, a_dsd); }\n"
     "fn main() void {}",
     "s1, a_dsd); }", "@load_to_dsr_xdsr takes an XDSR (@get_xdsr(n)) second, got the dsr_src1"),
    ("fn load(d: mem1d_dsd) void { @load_to_dsr(s1, d); }\n"
     "fn main() void { load(a_dsd); }",
     "d); }", "@load_to_dsr takes a DSD made by @get_dsd or a DSD variable"),
    ("fn main() void { @load_to_dsr(a_dsd, a_dsd); }",
     "a_dsd, a_dsd", "@load_to_dsr loads a DSR (@get_dsr(dsr_dest, n), ...), got a mem1d_dsd"),
]


@pytest.mark.parametrize("body, where, message", BAD, ids=[m for _, _, m in BAD])
def test_misuse_is_a_located_error(tmp_path, body, where, message):
    assert_error_at(tmp_path, GOOD + body, where, message)


def test_a_fabout_in_a_register_needs_its_output_queue_initialised_on_wse3(tmp_path):
    body = """
var out: [4]f32;
var out_ptr: [*]f32 = &out;
const oq = @get_output_queue(3);
const out_f = @get_dsd(fabout_dsd, .{ .extent = 4, .output_queue = oq });
const dd = @get_dsr(dsr_dest, 1);
comptime { @load_to_dsr(dd, out_f); }
fn main() void {}
"""
    assert_error_at(tmp_path, body, "out_f); }", "a fabout_dsd in a DSR needs an explicit "
                    "@initialize_queue(@get_output_queue(3)", arch="wse3")
    # on wse2 the output queue's color comes from the DSD
    body2 = body.replace(".output_queue = oq", ".fabric_color = 6, .output_queue = oq")
    assert program(tmp_path, body2, "f32", "wse2").classes[0].dsrs[0].kind == "dest"
