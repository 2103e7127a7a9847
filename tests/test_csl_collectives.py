"""`<collectives_2d>`: broadcast, scatter, gather, reduce_fadds and reduce_fmax over the rows (x
axis) or the columns (y axis) of the rectangle, each step's callback task starting the next.
Results are checked against numpy, and the engine against the reference (check mode compares
every symbol and clock after each command); a line whose PEs issue different collectives
faults, one whose PEs do not all issue one is a deadlock, and misuse is a located CslError."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import position, write

from wsejax import CslError, DeadlockError, FabricFault, SdkRuntime
from wsejax.csl import compile_csl

ARCHES = ["wse2", "wse3"]

LAYOUT = """
const c2d = @import_module("<collectives_2d/params>");
const memcpy = @import_module("<memcpy/get_params>", .{{ .width = {w}, .height = {h} }});
layout {{
  @set_rectangle({w}, {h});
  for (@range(u16, {w})) |x| {{
    for (@range(u16, {h})) |y| {{
      const params = c2d.get_params(x, y, .{{
        .x_colors = .{{ @get_color(0), @get_color(1) }},
        .x_entrypoints = .{{ @get_local_task_id(10), @get_local_task_id(11) }},
        .y_colors = .{{ @get_color(4), @get_color(5) }},
        .y_entrypoints = .{{ @get_local_task_id(12), @get_local_task_id(13) }},
      }});
      @set_tile_code(x, y, "pe.csl", .{{ .memcpy_params = memcpy.get_params(x),
                                         .c2d_params = params, .root = {root}, .n = {n} }});
    }}
  }}
{extra}
  @export_name("inp", [*]u32, true);
  @export_name("finp", [*]f32, true);
  @export_name("bc", [*]u32, true);
  @export_name("sc", [*]u32, true);
  @export_name("ga", [*]u32, true);
  @export_name("rd", [*]f32, true);
  @export_name("mx", [*]f32, true);
  @export_name("main", fn()void);
}}
"""

# each step's callback is the task itself: it issues the next collective
PE = """
param memcpy_params;
param c2d_params;
param root: u16;
param n: u16;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const mpi = @import_module("<collectives_2d/pe>", .{{ .dim_params = c2d_params.{axis},
    .queues = [2]u16{{ 2, 4 }}, .dest_dsr_ids = [1]u16{{ 1 }}, .src0_dsr_ids = [1]u16{{ 1 }},
    .src1_dsr_ids = [1]u16{{ 1 }} }});
const P: u16 = {line};
const step_id: local_task_id = @get_local_task_id(20);

var inp = @zeros([n * P + 1]u32);
var finp = @zeros([n]f32);
var bc = @zeros([n * P]u32);
var sc = @zeros([n]u32);
var ga = @zeros([n * P]u32);
var rd = @zeros([n]f32);
var mx = @zeros([n]f32);
var inp_ptr: [*]u32 = &inp;
var finp_ptr: [*]f32 = &finp;
var bc_ptr: [*]u32 = &bc;
var sc_ptr: [*]u32 = &sc;
var ga_ptr: [*]u32 = &ga;
var rd_ptr: [*]f32 = &rd;
var mx_ptr: [*]f32 = &mx;

var state: u16 = 0;
var ranks: u16 = 0;
task step() void {{
  switch (state) {{
    0 => {{
      mpi.init();
      ranks = mpi.pe_id;
      mpi.broadcast(root, &bc, n, step_id);
    }},
    1 => {{
      var send: [*]u32 = &inp;        // a pointer known at run time only
      var count: u16 = n;
      mpi.scatter(root, send, &sc, count, step_id);
    }},
    2 => {{ mpi.gather(root, &inp[1], &ga, n, step_id); }},
    3 => {{ mpi.reduce_fadds(root, &finp, @ptrcast([*]f32, &rd), n, step_id); }},
    4 => {{ mpi.reduce_fmax(root, &finp, &mx, n, step_id); }},
    else => {{ sys.unblock_cmd_stream(); }},
  }}
  state += 1;
}}

fn main() void {{ @activate(step_id); }}
comptime {{
  @bind_local_task(step, step_id);
  @export_symbol(inp_ptr, "inp");
  @export_symbol(finp_ptr, "finp");
  @export_symbol(bc_ptr, "bc");
  @export_symbol(sc_ptr, "sc");
  @export_symbol(ga_ptr, "ga");
  @export_symbol(rd_ptr, "rd");
  @export_symbol(mx_ptr, "mx");
  @export_symbol(main);
}}
"""


def build(tmp_path, arch, axis, w, h, root, n, pe=PE, extra=""):
    line = w if axis == "x" else h
    write(tmp_path, {"layout.csl": LAYOUT.format(w=w, h=h, root=root, n=n, extra=extra),
                     "pe.csl": pe.format(axis=axis, line=line)})
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def put(rt, name, data):
    h, w, k = data.shape
    rt.memcpy_h2d(rt.get_id(name), data.ravel(), 0, 0, w, h, k, streaming=False)


def get(rt, name, shape, dtype):
    out = np.zeros(int(np.prod(shape)), dtype)
    h, w, k = shape
    rt.memcpy_d2h(out, rt.get_id(name), 0, 0, w, h, k, streaming=False)
    return out.reshape(shape)


def expected(axis, inp, finp, bc, root, n):
    """What each buffer holds afterwards, by numpy, `[H, W, ...]`, for collectives on `axis`."""
    t = (lambda a: a) if axis == "x" else (lambda a: np.swapaxes(a, 0, 1))
    inp, finp, bc = t(inp), t(finp), t(bc)
    lines, line = inp.shape[:2]
    bc = bc.copy()
    for p in range(line):
        if p != root:
            bc[:, p, :n] = bc[:, root, :n]
    sc = inp[:, root, :n * line].reshape(lines, line, n)
    ga = np.zeros((lines, line, n * line), np.uint32)
    ga[:, root] = inp[:, :, 1:1 + n].reshape(lines, n * line)
    rd = np.zeros((lines, line, n), np.float32)
    total = np.zeros((lines, n), np.float32)
    for p in range(line):
        total = (total + finp[:, p]).astype(np.float32)
    rd[:, root] = total
    mx = np.zeros((lines, line, n), np.float32)
    mx[:, root] = max_num(finp)
    return tuple(t(a) for a in (bc, sc, ga, rd, mx))


def max_num(finp):
    """IEEE maxNum of `finp` (`[lines, line, n]`) along each line: a NaN loses to a number,
    +0 beats -0."""
    best = np.fmax.reduce(finp, axis=1)
    plus_zero = np.any((finp == 0) & ~np.signbit(finp), axis=1)
    return np.where(best == 0, np.where(plus_zero, np.float32(0), np.float32(-0.0)), best)


def special_inputs(finp, axis):
    """`finp` (`[H, W, n]`) with each line's elements 0 to 2 made the cases maxNum decides:
    -0 against +0 (odd lines: all -0), a NaN at rank 0 against numbers, and all NaN; odd
    lines are negative throughout (a maximum is not taken from 0)."""
    t = (lambda a: a) if axis == "x" else (lambda a: np.swapaxes(a, 0, 1))
    f = t(finp).copy()
    f[1::2] -= np.float32(10)
    f[:, :, 0] = np.float32(-0.0)
    f[0::2, 1, 0] = np.float32(0.0)
    if f.shape[2] > 1:
        f[:, 0, 1] = np.float32(np.nan)
    if f.shape[2] > 2:
        f[:, :, 2] = np.float32(np.nan)
    return t(f)


def run_all(tmp_path, arch, axis, w, h, root, n):
    check(build(tmp_path, arch, axis, w, h, root, n), axis, root, n)


def check(prog, axis, root, n):
    """Run the program on random data in check mode; its buffers against `expected`."""
    w, h = prog.width, prog.height
    line = w if axis == "x" else h
    rng = np.random.default_rng(root * 10 + n)
    inp = rng.integers(0, 2**32, (h, w, n * line + 1), dtype=np.uint32)
    finp = special_inputs(rng.uniform(-4, 4, (h, w, n)).astype(np.float32), axis)
    bc = rng.integers(0, 2**32, (h, w, n * line), dtype=np.uint32)
    rt = SdkRuntime(prog, check=True)
    rt.load()
    rt.run()
    put(rt, "inp", inp)
    put(rt, "finp", finp)
    put(rt, "bc", bc)
    rt.launch("main", nonblock=False)
    got = (get(rt, "bc", (h, w, n * line), np.uint32), get(rt, "sc", (h, w, n), np.uint32),
           get(rt, "ga", (h, w, n * line), np.uint32), get(rt, "rd", (h, w, n), np.float32),
           get(rt, "mx", (h, w, n), np.float32))
    rt.stop()
    want = expected(axis, inp, finp, bc, root, n)
    for name, g, e in zip(("bc", "sc", "ga", "rd", "mx"), got, want):
        np.testing.assert_array_equal(g, e, err_msg=name)
    # maxNum's zeros are signed: the bits of every element that is not a NaN
    num = ~np.isnan(want[4])
    np.testing.assert_array_equal(got[4].view(np.uint32)[num], want[4].view(np.uint32)[num])


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize(("root", "n"), [(0, 1), (2, 3), (3, 2)])
def test_row_collectives_move_data_as_mpi(tmp_path, arch, root, n):
    run_all(tmp_path, arch, "x", 4, 2, root, n)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize(("root", "n"), [(0, 2), (1, 1), (2, 3)])
def test_column_collectives_move_data_as_mpi(tmp_path, arch, root, n):
    run_all(tmp_path, arch, "y", 2, 3, root, n)


MISMATCH = """
param memcpy_params;
param c2d_params;
param root: u16;
param n: u16;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const lay = @import_module("<layout>");
const mpi = @import_module("<collectives_2d/pe>", .{{ .dim_params = c2d_params.{axis} }});
const done_id: local_task_id = @get_local_task_id(20);
var buf = @zeros([4]u32);
var inp = @zeros([1]u32); var finp = @zeros([1]f32); var bc = @zeros([1]u32);
var sc = @zeros([1]u32); var ga = @zeros([1]u32); var rd = @zeros([1]f32);
var mx = @zeros([1]f32); var p6: [*]f32 = &mx;
var p0: [*]u32 = &inp; var p1: [*]f32 = &finp; var p2: [*]u32 = &bc;
var p3: [*]u32 = &sc; var p4: [*]u32 = &ga; var p5: [*]f32 = &rd;
task done() void {{ sys.unblock_cmd_stream(); }}
fn main() void {{
  {body}
}}
comptime {{
  @bind_local_task(done, done_id);
  @export_symbol(p0, "inp"); @export_symbol(p1, "finp"); @export_symbol(p2, "bc");
  @export_symbol(p3, "sc"); @export_symbol(p4, "ga"); @export_symbol(p5, "rd");
  @export_symbol(p6, "mx");
  @export_symbol(main);
}}
"""


def launch_main(tmp_path, arch, body, w=3, h=2, axis="x"):
    pe = MISMATCH.replace("{body}", body.replace("{", "{{").replace("}", "}}"))
    prog = build(tmp_path, arch, axis, w, h, 0, 1, pe=pe)
    rt = SdkRuntime(prog, check=True)
    rt.load()
    rt.run()
    rt.launch("main", nonblock=False)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_row_whose_pes_issue_different_collectives_faults(tmp_path, arch):
    body = """if (lay.get_x_coord() == 1) { mpi.broadcast(1, &buf, 2, done_id); }
  else { mpi.broadcast(0, &buf, 2, done_id); }"""
    with pytest.raises(FabricFault, match=r"<collectives_2d>: the PEs of a row issued "
                       r"different collectives \(operation, root or count\)") as err:
        launch_main(tmp_path, arch, body)
    assert sorted(err.value.pes) == [(x, y) for x in range(3) for y in range(2)]


@pytest.mark.parametrize("arch", ARCHES)
def test_a_collective_its_column_mates_never_issue_is_a_deadlock(tmp_path, arch):
    body = """if (lay.get_y_coord() == 0) { mpi.gather(0, &buf, &buf, 1, done_id); }
  else { sys.unblock_cmd_stream(); }"""
    with pytest.raises(DeadlockError, match="never called unblock_cmd_stream") as err:
        launch_main(tmp_path, arch, body, axis="y")
    assert sorted(err.value.pes) == [(0, 0), (1, 0), (2, 0)]
    assert "PE (1, 0): active task IDs none" in str(err.value)
    assert "its <collectives_2d> gather waits for the other PEs of its column" in str(err.value)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize(("body", "text"), [
    ("mpi.broadcast(0, &buf, 2, done_id); mpi.broadcast(0, &buf, 2, done_id);",
     "<collectives_2d> broadcast on the x axis issued before the PE's previous collective on "
     "that axis completed"),
    ("mpi.scatter(3, &buf, &buf, 1, done_id);",
     "<collectives_2d> scatter: the root is not a PE of the row"),
    ("mpi.scatter(0, &buf, &buf, 2, done_id);",      # the root sends 2 x 3 > 4 elements
     "<collectives_2d> scatter: a buffer is not inside one array of 32-bit elements, or too "
     "short for the count"),
])
def test_a_collective_that_cannot_run_faults(tmp_path, arch, body, text):
    with pytest.raises(FabricFault, match=text.replace("(", r"\(").replace(")", r"\)")):
        launch_main(tmp_path, arch, body)


ROUTED = """
  @set_color_config(0, 0, @get_color(4), .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
"""


@pytest.mark.parametrize("pe_text", [
    None,
    "comptime {{ @set_local_color_config(@get_color(1), .{{ .routes = .{{ .rx = .{{ WEST }}, "
    ".tx = .{{ RAMP }} }} }}); }}\n",
])
def test_the_library_colors_are_not_the_programs_to_route(tmp_path, pe_text):
    if pe_text is None:
        with pytest.raises(CslError) as err:
            build(tmp_path, "wse2", "x", 2, 1, 0, 1, extra=ROUTED)
        text = (tmp_path / "layout.csl").read_text()
        line, col = position(text, "@set_color_config")
        assert f"layout.csl:{line}:{col}" in str(err.value)
        assert "color 4 belongs to <collectives_2d>" in str(err.value)
        return
    with pytest.raises(CslError, match="color 1 belongs to <collectives_2d> .* the program "
                       "may not route it") as err:
        build(tmp_path, "wse2", "x", 2, 1, 0, 1, pe=PE + pe_text)
    assert "pe.csl:" in str(err.value)


def test_a_color_the_layout_routes_first_is_not_the_librarys(tmp_path):
    routed = ROUTED.replace("@get_color(4)", "@get_color(5)")
    rect = "  @set_rectangle({w}, {h});\n"
    layout = LAYOUT.replace(rect, rect + routed.replace("{", "{{").replace("}", "}}"), 1)
    assert layout != LAYOUT
    write(tmp_path, {"layout.csl": layout.format(w=2, h=1, root=0, n=1, extra=""),
                     "pe.csl": PE.format(axis="x", line=2)})
    with pytest.raises(CslError, match="color 5 is routed by the program") as err:
        compile_csl(tmp_path / "layout.csl", memcpy=True)
    text = (tmp_path / "layout.csl").read_text()
    line, col = position(text, "c2d.get_params")
    assert f"layout.csl:{line}:{col}" in str(err.value)


@pytest.mark.parametrize(("params", "message"), [
    ("{ .dim_params = c2d_params.x, .queues = [1]u16{ 2 } }",
     r"<collectives_2d/pe> .queues takes \[2\]u16"),
    ("{ .dim_params = c2d_params.x, .queues = [2]u16{ 2, 2 } }",
     "<collectives_2d/pe> .queues takes two different queues"),
    ("{ .dim_params = c2d_params.x, .speed = 3 }",
     "<collectives_2d/pe> has no parameter .speed"),
    ("{ .queues = [2]u16{ 2, 3 } }", "<collectives_2d/pe> needs .dim_params"),
    ("{ .dim_params = c2d_params.x, .queues = [2]u16{ 2, 6 } }",
     r"<collectives_2d/pe> .queues: output queue 6 is out of range on wse2 \(0 to 5\)"),
    ("{ .dim_params = c2d_params.x, .queues = [2]u16{ 0, 3 } }",
     "<collectives_2d/pe> .queues: input queue 0 is reserved by memcpy"),
])
def test_pe_import_params_are_checked(tmp_path, params, message):
    pe = PE.replace("{{ .dim_params = c2d_params.{axis},\n    .queues = [2]u16{{ 2, 4 }}, "
                    ".dest_dsr_ids = [1]u16{{ 1 }}, .src0_dsr_ids = [1]u16{{ 1 }},\n    "
                    ".src1_dsr_ids = [1]u16{{ 1 }} }}",
                    params.replace("{", "{{").replace("}", "}}"))
    assert pe != PE
    with pytest.raises(CslError, match=message) as err:
        build(tmp_path, "wse2", "x", 2, 1, 0, 1, pe=pe)
    text = (tmp_path / "pe.csl").read_text()
    line, _ = position(text, "@import_module(\"<collectives_2d/pe>\"")
    assert f"pe.csl:{line}:" in str(err.value)


@pytest.mark.parametrize(("call", "message"), [
    ("mpi.broadcast(root, &finp, n, step_id);",
     r"broadcast takes \[\*\]u32 buffers, got \[\*\]f32"),
    ("mpi.reduce_fadds(root, &inp, &rd, n, step_id);",
     r"reduce_fadds takes \[\*\]f32 buffers, got \[\*\]u32"),
    ("mpi.reduce_fmax(root, &inp, &mx, n, step_id);",
     r"reduce_fmax takes \[\*\]f32 buffers, got \[\*\]u32"),
    ("mpi.broadcast(root, &bc, n, 3);", "broadcast: the callback is a local task ID"),
    ("mpi.gather(root, &inp, &ga, n);", "gather takes 5 argument"),
    ("var r: i16 = 0; mpi.broadcast(r, &bc, n, step_id);",
     "broadcast's root: expected u16, got i16"),
    ("mpi.broadcast(root, &bc, 70000, step_id);", "broadcast's count"),
])
def test_bad_calls_are_located_errors(tmp_path, call, message):
    pe = PE.replace("mpi.broadcast(root, &bc, n, step_id);", call)
    with pytest.raises(CslError, match=message) as err:
        build(tmp_path, "wse2", "x", 2, 1, 0, 1, pe=pe)
    text = (tmp_path / "pe.csl").read_text()
    line, _ = position(text, call.split("(")[0])
    assert f"pe.csl:{line}:" in str(err.value)


@pytest.mark.parametrize("arch", ARCHES)
def test_pes_of_other_tile_classes_take_part(tmp_path, arch):
    """Column 1 runs a program whose arrays lie elsewhere (two more before them): the row's
    collectives still meet, each PE's buffers found in its own class's memory."""
    w, h, root, n = 3, 2, 1, 2
    other = PE.replace("var inp = ", "var pad = @zeros([5]u32);\nvar pad2 = @zeros([3]f32);\n"
                       "var inp = ", 1)
    assert other != PE
    layout = LAYOUT.replace('@set_tile_code(x, y, "pe.csl"',
                            '@set_tile_code(x, y, if (x == 1) "other.csl" else "pe.csl"', 1)
    assert layout != LAYOUT
    write(tmp_path, {"layout.csl": layout.format(w=w, h=h, root=root, n=n, extra=""),
                     "pe.csl": PE.format(axis="x", line=w),
                     "other.csl": other.format(axis="x", line=w)})
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    assert len(prog.classes) == 2
    check(prog, "x", root, n)


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_library_entrypoints_are_not_the_programs_to_bind(tmp_path, where):
    bind = "comptime {{ @bind_local_task(step, @get_local_task_id(11)); }}\n"
    imp = 'const mpi = @import_module("<collectives_2d/pe>"'
    pe = PE + bind if where == "after" else PE.replace(imp, bind + imp, 1)
    with pytest.raises(CslError, match="local task ID 11 is an entrypoint of <collectives_2d>"
                       ) as err:
        build(tmp_path, "wse2", "x", 2, 1, 0, 1, pe=pe)
    text = (tmp_path / "pe.csl").read_text()
    line, _ = position(text, "@bind_local_task(step, @get_local_task_id(11))" if where ==
                       "after" else imp)
    assert f"pe.csl:{line}:" in str(err.value)
