"""The rules both front ends check (`wsejax.frontend`): the same mistake, made in CSL and in the
Python API, is reported with the same text; and what both build the same way comes out the
same."""

from __future__ import annotations

import pytest

from wsejax import dsl as csl
from wsejax import ir, ops
from wsejax.csl import compile_csl
from wsejax.errors import CslError, LayoutError, ProgramError

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{{ .width = 2, .height = 1 }});
layout {{
  @set_rectangle(2, 1);
{tiles}
{extra}
  @export_name("main", fn()void);
}}
"""

TILES = """  for (@range(i16, 2)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x) });
  }"""

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
"""

# the globals the CSL cases share, and their Python twins (`globals_`)
GLOBALS = """var a: [4]f32;
var b: [4]i16;
var s: f32 = 1.0;
var buf: [4]f32;
const A = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4 });
const B = @get_dsd(mem1d_dsd, .{ .base_address = &b, .extent = 4 });
fn ident(x: f32) f32 { return x; }
"""


def compile_csl_row(tmp_path, body: str, arch="wse2", tiles=TILES, extra=""):
    (tmp_path / "layout.csl").write_text(LAYOUT.format(tiles=tiles, extra=extra))
    (tmp_path / "pe.csl").write_text(HEAD + GLOBALS + body
                                     + "\ncomptime { @export_symbol(main); }\n")
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def compile_py_row(body, arch="wse2", extra=None, params=None):
    """Compile a PE program on a 2 x 1 row: `body(g)` runs at its top level, `g` being the
    globals the cases share (as `GLOBALS` declares them in CSL)."""

    def pe(**kw):
        g = globals_()

        @csl.fn
        def main():
            pass

        csl.export_symbol(main)
        body(g)

    def layout():
        csl.set_rectangle(2, 1)
        for x in range(2):
            csl.set_tile_code(x, 0, pe, params(x) if params else {})
        if extra:
            extra()
        csl.export_name("main", csl.fn_type())

    return csl.compile(layout, arch=arch)


def globals_() -> dict:
    a = csl.var("a", csl.f32[4])
    b = csl.var("b", csl.i16[4])
    s = csl.var("s", csl.f32, 1.0)
    buf = csl.var("buf", csl.f32[4])

    @csl.fn
    def ident(x: csl.f32) -> csl.f32:
        return x

    return dict(a=a, b=b, s=s, buf=buf, ident=ident,
                A=csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=4),
                B=csl.get_dsd(csl.mem1d_dsd, base_address=b, extent=4))


def in_fn(run):
    """A Python body that runs `run(g)` inside a function of the program."""
    def body(g):
        @csl.fn
        def go():
            run(g)
    return body


def both_raise(tmp_path, csl_body, py_body, arch="wse2") -> tuple[str, str]:
    with pytest.raises(CslError) as c_err:
        compile_csl_row(tmp_path, csl_body, arch)
    with pytest.raises((ProgramError, LayoutError)) as p_err:
        compile_py_row(py_body, arch)
    return c_err.value.message, str(p_err.value)


MAIN = "fn main() void {}\n"


def uses(name: str) -> str:
    """A main that refers to global `name` (a global const is evaluated where it is used)."""
    return f"fn main() void {{ _ = {name}; }}\n"
FAB_IN = "const I = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = @get_color(4) });\n"
FAB_OUT = "const O = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = @get_color(5) });\n"


def fab_in(g):
    return csl.get_dsd(csl.fabin_dsd, extent=4, fabric_color=4)


def fab_out(g, **kw):
    return csl.get_dsd(csl.fabout_dsd, extent=4, fabric_color=5, **kw)


class tasks:
    """Two task functions of distinct names."""

    @staticmethod
    def t():
        pass

    @staticmethod
    def u():
        pass


def with_fifo(run):
    """A Python body that allocates a FIFO over `buf`, then runs `run(g, fifo)` inside a
    function of the program."""
    def body(g):
        f = csl.allocate_fifo(g["buf"])

        @csl.fn
        def go():
            run(g, f)
    return body


CASES = {
    # DSD construction
    "mem1d extent": (
        "const D = @get_dsd(mem1d_dsd, .{ .base_address = &a });\n" + uses("D"),
        lambda g: csl.get_dsd(csl.mem1d_dsd, base_address=g["a"]),
        "mem1d_dsd needs an extent", "wse2"),
    "mem4d extents": (
        "const D = @get_dsd(mem4d_dsd, .{ .base_address = &a });\n" + uses("D"),
        lambda g: csl.get_dsd(csl.mem4d_dsd, base_address=g["a"]),
        "mem4d_dsd needs an extent tuple of 1 to 4 entries", "wse2"),
    "given twice": (
        "const D = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i], .extent = 4 });\n"
        + uses("D"),
        lambda g: csl.get_dsd(csl.mem1d_dsd, extent=4,
                              tensor_access=csl.tensor_access(lambda i: g["a"][i], 4)),
        "DSD property 'extent' given twice (also by tensor_access)", "wse2"),
    "tensor_access of a mem1d": (
        "var m: [2, 2]f32;\n"
        "const D = @get_dsd(mem1d_dsd, .{ .tensor_access = |i, j|{2, 2} -> m[i, j] });\n"
        + uses("D"),
        lambda g: csl.get_dsd(csl.mem1d_dsd, tensor_access=csl.tensor_access(
            lambda i, j: csl.var("m", csl.f32[2, 2])[i, j], (2, 2))),
        "a mem1d_dsd tensor_access takes one induction variable", "wse2"),
    # fabric DSDs
    "fabric extent": (
        "const D = @get_dsd(fabin_dsd, .{ .fabric_color = @get_color(4) });\n" + uses("D"),
        lambda g: csl.get_dsd(csl.fabin_dsd, fabric_color=4),
        "fabin_dsd needs an extent (the number of wavelets)", "wse2"),
    "fabout color on wse2": (
        "const D = @get_dsd(fabout_dsd, .{ .extent = 4, .output_queue = @get_output_queue(2) "
        "});\n" + uses("D"),
        lambda g: csl.get_dsd(csl.fabout_dsd, extent=4, output_queue=csl.get_output_queue(2)),
        "on wse2 a fabout_dsd needs a fabric_color", "wse2"),
    "fabin queue on wse3": (
        "const D = @get_dsd(fabin_dsd, .{ .extent = 4, .fabric_color = @get_color(4) });\n"
        + uses("D"),
        lambda g: csl.get_dsd(csl.fabin_dsd, extent=4, fabric_color=4),
        "on wse3 a fabin_dsd needs an input_queue: its color is the one the queue is "
        "initialised with", "wse3"),
    # setters
    "set_dsd_stride": (
        "const D = @get_dsd(mem4d_dsd, .{ .base_address = &a, .extent = .{4} });\n"
        "fn main() void { _ = @set_dsd_stride(D, 2); }\n",
        in_fn(lambda g: csl.set_dsd_stride(
            csl.get_dsd(csl.mem4d_dsd, base_address=g["a"], extent=(4,)), 2)),
        "@set_dsd_stride applies to a mem1d_dsd only", "wse2"),
    "increment type": (
        "fn main() void { _ = @increment_dsd_offset(A, 1, u8); }\n",
        in_fn(lambda g: csl.increment_dsd_offset(g["A"], 1, csl.u8)),
        "@increment_dsd_offset: u8 is not a 16- or 32-bit type", "wse2"),
    "memory only": (
        FAB_IN + "fn main() void { _ = @increment_dsd_offset(I, 1, f32); }\n",
        in_fn(lambda g: csl.increment_dsd_offset(fab_in(g), 1, csl.f32)),
        "@increment_dsd_offset does not apply to a fabin_dsd (memory DSDs only)", "wse2"),
    "set_dsd_base_addr width": (
        "fn main() void { _ = @set_dsd_base_addr(A, &b); }\n",
        in_fn(lambda g: csl.set_dsd_base_addr(g["A"], g["b"])),
        "@set_dsd_base_addr: 'b' holds i16, the DSD addresses f32 elements", "wse2"),
    # operand kinds
    "operand width": (
        "fn main() void { @fadds(A, B, A); }\n",
        in_fn(lambda g: csl.fadds(g["A"], g["B"], g["A"])),
        "@fadds: operand 2 addresses i16 elements, but @fadds works on f32 (32-bit)", "wse2"),
    "FIFO buffer": (
        "var bytes: [4]u8;\nconst f = @allocate_fifo(bytes);\n" + uses("f"),
        lambda g: csl.allocate_fifo(csl.var("bytes", csl.u8[4])),
        "@allocate_fifo: 'bytes' holds u8; a FIFO holds 16- or 32-bit elements", "wse2"),
    # op config
    "activate and unblock": (
        "fn main() void { @fmovs(A, A, .{ .activate = @get_local_task_id(9), "
        ".unblock = @get_local_task_id(9) }); }\n",
        in_fn(lambda g: csl.fmovs(g["A"], g["A"], activate=csl.get_local_task_id(9),
                                  unblock=csl.get_local_task_id(9))),
        "@fmovs: an operation takes at most one of activate and unblock", "wse2"),
    "async on memory": (
        "fn main() void { @fmovs(A, A, .{ .async = true }); }\n",
        in_fn(lambda g: csl.fmovs(g["A"], g["A"], async_=True)),
        "@fmovs: an asynchronous operation needs a fabric or FIFO operand (an operation on "
        "memory only is synchronous)", "wse2"),
    "async fabin without a queue": (
        FAB_IN + "fn main() void { @fmovs(A, I, .{ .async = true }); }\n",
        in_fn(lambda g: csl.fmovs(g["A"], fab_in(g), async_=True)),
        "@fmovs: an asynchronous operation's fabin_dsd needs an input_queue", "wse2"),
    "index": (
        "const W = @get_dsd(fabout_dsd, .{ .extent = 4, .fabric_color = @get_color(5), "
        ".wavelet_index_offset = true });\nfn main() void { @mov16(W, B); }\n",
        in_fn(lambda g: csl.mov16(fab_out(g, wavelet_index_offset=True), g["B"])),
        "@mov16: operand 1 uses wavelet_index_offset, so the operation needs an index",
        "wse2"),
    # fabric and FIFO operands
    "fabin destination": (
        FAB_IN + "fn main() void { @fmovs(I, A); }\n",
        in_fn(lambda g: csl.fmovs(fab_in(g), g["A"])),
        "@fmovs: a fabin_dsd receives; it cannot be the destination", "wse2"),
    "fabout source": (
        FAB_OUT + "fn main() void { @fadds(A, A, O); }\n",
        in_fn(lambda g: csl.fadds(g["A"], g["A"], fab_out(g))),
        "@fadds: a fabout_dsd sends; it cannot be source 2", "wse2"),
    "FIFO first source": (
        "const f = @allocate_fifo(buf);\nfn main() void { @fadds(A, f, A); }\n",
        with_fifo(lambda g, f: csl.fadds(g["A"], f, g["A"])),
        "@fadds: a FIFO cannot be the first of two sources", "wse2"),
    # @map
    "map FIFO": (
        "const f = @allocate_fifo(buf);\nfn main() void { @map(ident, f, A); }\n",
        with_fifo(lambda g, f: csl.map(g["ident"], f, g["A"])),
        "@map does not take FIFOs", "wse2"),
    "map DSD input": (
        "fn main() void { @map(ident, s, A); }\n",
        in_fn(lambda g: csl.map(g["ident"], g["s"], g["A"])),
        "@map needs at least one DSD input", "wse2"),
    "map index": (
        "const W = @get_dsd(mem1d_dsd, .{ .base_address = &a, .extent = 4, "
        ".wavelet_index_offset = true });\nfn main() void { @map(ident, W, A); }\n",
        in_fn(lambda g: csl.map(g["ident"], csl.get_dsd(
            csl.mem1d_dsd, base_address=g["a"], extent=4, wavelet_index_offset=True), g["A"])),
        "@map takes no index, so no DSD with wavelet_index_offset", "wse2"),
    "map fabout input": (
        FAB_OUT + "fn main() void { @map(ident, O, A); }\n",
        in_fn(lambda g: csl.map(g["ident"], fab_out(g), g["A"])),
        "@map: a fabout_dsd cannot be an input", "wse2"),
    # colors, queues and task IDs per arch
    "color": (
        "const c = @get_color(24);\n" + uses("c"),
        lambda g: csl.get_color(24),
        "color 24 is out of range (0 to 23)", "wse2"),
    "input queue": (
        "const q = @get_input_queue(8);\n" + uses("q"),
        lambda g: csl.get_input_queue(8),
        "input queue 8 is out of range on wse2 (0 to 7)", "wse2"),
    "output queue": (
        "const q = @get_output_queue(6);\n" + uses("q"),
        lambda g: csl.get_output_queue(6),
        "output queue 6 is out of range on wse2 (0 to 5)", "wse2"),
    "local task ID on wse3": (
        "const t = @get_local_task_id(5);\n" + uses("t"),
        lambda g: csl.get_local_task_id(5),
        "local task ID 5 is out of range on wse3 (8 to 30)", "wse3"),
    "control task ID": (
        "const t = @get_control_task_id(64);\n" + uses("t"),
        lambda g: csl.get_control_task_id(64),
        "control task ID 64 is out of range (0 to 63)", "wse2"),
    "bound twice": (
        "task t() void {}\ntask u() void {}\nfn main() void {}\n"
        "comptime { @bind_local_task(t, @get_local_task_id(10)); "
        "@bind_local_task(u, @get_local_task_id(10)); }\n",
        lambda g: [csl.bind_local_task(csl.task(f), csl.get_local_task_id(10))
                   for f in (tasks.t, tasks.u)],
        "task ID 10 is bound twice", "wse2"),
    "data task named by a color on wse3": (
        MAIN + "comptime { @block(@get_color(3)); }\n",
        lambda g: csl.block(csl.get_color(3)),
        "@block: on wse3 a data task is named by its input queue, not by color 3", "wse3"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_mistake_one_message(tmp_path, name):
    csl_body, py_body, message, arch = CASES[name]
    from_csl, from_python = both_raise(tmp_path, csl_body, py_body, arch)
    assert from_csl == message
    assert from_python == message


def test_a_negative_literal_is_its_raw_bits_in_both(tmp_path):
    p = compile_csl_row(tmp_path, "var u: [4]u16;\n"
                        "const U = @get_dsd(mem1d_dsd, .{ .base_address = &u, .extent = 4 });\n"
                        "fn main() void { @add16(U, U, -1); }\n")

    def py(g):
        u = csl.var("u", csl.u16[4])
        d = csl.get_dsd(csl.mem1d_dsd, base_address=u, extent=4)

        @csl.fn
        def go():
            csl.add16(d, d, -1)

    q = compile_py_row(py)
    want = ir.ScalarOperand(ir.Const(0xFFFF, csl.u16))
    assert dsd_ops(p.classes[0], "main")[0].srcs[1] == want
    assert dsd_ops(q.classes[0], "go")[0].srcs[1] == want


def dsd_ops(pe: ir.PeProgram, fn: str) -> list:
    return [s for s in ir.walk_stmts(pe.function(fn).body) if isinstance(s, ir.DsdOp)]


# ------------------------------------------------------------------------------------------------
# Layouts


LAYOUT_CASES = {
    "outside": ('  @set_tile_code(2, 0, "pe.csl", .{});',
                lambda: csl.set_tile_code(2, 0, lambda: None),
                "@set_tile_code(2, 0) is outside the 2x1 rectangle"),
    "rectangle twice": ("  @set_rectangle(2, 1);",
                        lambda: csl.set_rectangle(2, 1),
                        "@set_rectangle called twice"),
    "route twice": ("  @set_color_config(0, 0, @get_color(3), .{ .routes = .{ .rx = .{RAMP}, "
                    ".tx = .{EAST} } });\n" * 2,
                    lambda: [csl.set_color_config(0, 0, 3, rx=csl.RAMP, tx=csl.EAST)
                             for _ in range(2)],
                    "color 3 at PE (0, 0) is configured twice"),
    "export twice": ('  @export_name("main", fn()void);',
                     lambda: csl.export_name("main", csl.fn_type()),
                     "@export_name('main') called twice"),
}


@pytest.mark.parametrize("name", sorted(LAYOUT_CASES))
def test_one_layout_mistake_one_message(tmp_path, name):
    extra_csl, extra_py, message = LAYOUT_CASES[name]
    with pytest.raises(CslError) as c_err:
        compile_csl_row(tmp_path, MAIN, extra=extra_csl)
    with pytest.raises(LayoutError) as p_err:
        compile_py_row(lambda g: None, extra=extra_py)
    assert c_err.value.message == message
    assert str(p_err.value) == message


def test_a_missing_tile_is_named_by_both(tmp_path):
    tiles = '  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0) });'
    with pytest.raises(CslError) as c_err:
        compile_csl_row(tmp_path, MAIN, tiles=tiles)

    def layout():
        csl.set_rectangle(2, 1)
        csl.set_tile_code(0, 0, lambda: None)

    with pytest.raises(LayoutError) as p_err:
        csl.compile(layout)
    message = "no @set_tile_code for PE (1, 0) (1 of 2 PEs have none)"
    assert c_err.value.message == message
    assert str(p_err.value) == message


# ------------------------------------------------------------------------------------------------
# Tile grouping


PARAM_TILES = """
  @set_tile_code(0, 0, "pe.csl", .{{ .memcpy_params = memcpy.get_params(0), .k = {k0} }});
  @set_tile_code(1, 0, "pe.csl", .{{ .memcpy_params = memcpy.get_params(1), .k = {k1} }});
"""


@pytest.mark.parametrize("k0, k1, py_k0, py_k1, n_classes, tables", [
    ("3", "4", 3, 4, 1, ["pe:k"]),                           # numbers: one per-PE value
    ("true", "false", True, False, 1, ["pe:k"]),             # bools too
    ("@get_color(3)", "@get_color(4)", csl.get_color(3), csl.get_color(4), 1, ["pe:k"]),
    ("@get_color(3)", "4", csl.get_color(3), 4, 2, []),      # colors and numbers: split
])
def test_tiles_group_alike(tmp_path, k0, k1, py_k0, py_k1, n_classes, tables):
    body = "param k;\nvar kept: u32 = 0;\nfn main() void { kept = @as(u32, k); }\n"
    if "color" in k0:
        body = ("param k: color;\n"
                "const D = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = k });\n"
                "fn main() void { @mov32(D, 1); }\n")
    (tmp_path / "layout.csl").write_text(LAYOUT.format(
        tiles=PARAM_TILES.format(k0=k0, k1=k1), extra=""))
    (tmp_path / "pe.csl").write_text(HEAD + body + "\ncomptime { @export_symbol(main); }\n")
    from_csl = compile_csl(tmp_path / "layout.csl", memcpy=True)

    def pe(k):
        if "color" in k0:
            d = csl.get_dsd(csl.fabout_dsd, extent=1, fabric_color=k)

            @csl.fn
            def main():
                csl.mov32(d, 1)
        else:
            kept = csl.var("kept", csl.u32, 0)

            @csl.fn
            def main():
                kept.set(csl.as_(csl.u32, k))
        csl.export_symbol(main)

    def layout():
        csl.set_rectangle(2, 1)
        csl.set_tile_code(0, 0, pe, dict(k=py_k0))
        csl.set_tile_code(1, 0, pe, dict(k=py_k1))
        csl.export_name("main", csl.fn_type())

    from_python = csl.compile(layout)
    for p in (from_csl, from_python):
        assert len(p.classes) == n_classes
        assert [name for name, _ in p.tables if name not in ("x", "y")] == tables


def test_every_operation_is_a_python_function():
    for name in ops.OPS:
        assert callable(getattr(csl, name)), name
        assert name in csl.__all__


def test_a_data_task_on_a_queue_never_initialised(tmp_path):
    with pytest.raises(CslError) as c_err:
        compile_csl_row(tmp_path, "task t(v: u32) void { _ = v; }\n" + MAIN
                        + "comptime { @bind_data_task(t, @get_data_task_id(@get_input_queue(3))); "
                        "}\n", "wse3")

    def py(g):
        def t(v: csl.u32):
            pass

        csl.bind_data_task(csl.task(t), csl.get_data_task_id(csl.get_input_queue(3)))

    with pytest.raises(ProgramError) as p_err:
        compile_py_row(py, "wse3")
    # the hint says how each front end initialises a queue
    rule = "data task 't' uses input queue 3, which is never initialised: "
    assert c_err.value.message.startswith(rule)
    assert str(p_err.value).startswith(rule)
