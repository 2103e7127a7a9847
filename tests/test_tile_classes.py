"""Tile classes come from program structure, not from values (`wsejax.tile_classes`).

Tiles whose params differ only by numbers and bools share one class reading per-PE tables,
unless a param is needed at comptime; then they split by that param's values only. Each
program runs on the engine and on the reference interpreter, against numpy predictions made
from the layout's formulas.
"""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import read, run, write

from wsejax import dsl as csl
from wsejax.csl import CslCompiler, compile_csl
from wsejax.errors import CslError, ProgramError
from wsejax.reference import Reference

W, H = 6, 5

LAYOUT = """
param W: i16;
param H: i16;
const memcpy = @import_module("<memcpy/get_params>", .{ .width = W, .height = H });
layout {
  @set_rectangle(W, H);
  for (@range(i16, W)) |x| {
    for (@range(i16, H)) |y| {
      @set_tile_code(x, y, "pe.csl", .{ .memcpy_params = memcpy.get_params(x),
                                       .px = x, .py = y,
                                       .pe_id = @as(u32, y) * @as(u32, W) + @as(u32, x),
                                       .odd = (x + y) % 2 == 1, .is_last = x == W - 1,
                                       .is_edge = y == 0, .k = x % 3 });
    }
  }
  @export_name("out", [*]u32, false);
  @export_name("main", fn()void);
}
"""

PE_HEAD = """
param memcpy_params;
param px: u16;
param py: u16;
param pe_id: u32;
param odd: bool;
param is_last: bool;
param is_edge: bool;
param k: i16;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
"""

PE_TAIL = """
var out_ptr: [*]u32 = &out;
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""


def compile_pe(tmp_path, body: str, w=W, h=H):
    write(tmp_path, {"layout.csl": LAYOUT, "pe.csl": PE_HEAD + body + PE_TAIL})
    return compile_csl(tmp_path / "layout.csl", params={"W": w, "H": h}, memcpy=True)


def grid(w=W, h=H):
    """The layout's params as numpy arrays `[H, W]`."""
    ys, xs = np.mgrid[0:h, 0:w]
    return dict(px=xs, py=ys, pe_id=ys * w + xs, odd=(xs + ys) % 2 == 1, is_last=xs == w - 1,
                is_edge=ys == 0, k=xs % 3)


def outputs(program, n):
    """`out[0:n]` of every PE `[H, W, n]`, from the engine and from the reference."""
    engine = read(run(program), "out", n, np.uint32)
    ref = Reference(program)
    ref.launch("main")
    mem = np.array([[ref.memory(x, y)["out"][:n] for x in range(program.width)]
                    for y in range(program.height)])
    return engine, mem


def same_partition(class_of, labels) -> bool:
    """Whether two [H, W] labellings group the PEs alike."""
    pairs = set(zip(class_of.ravel().tolist(), np.asarray(labels).ravel().tolist()))
    return len(pairs) == len(set(class_of.ravel().tolist())) == len(set(
        np.asarray(labels).ravel().tolist()))


def test_coordinates_ids_and_a_runtime_flag_share_one_class_with_per_pe_tables(tmp_path):
    p = compile_pe(tmp_path, """
var out: [3]u32;
fn main() void {
  out[0] = @as(u32, px) * 3 + @as(u32, py);
  out[1] = pe_id;
  out[2] = if (odd) @as(u32, 10) else 20;
  sys.unblock_cmd_stream();
}
""")
    g = grid()
    assert len(p.classes) == 1 and (p.class_of == 0).all()
    tables = dict(p.tables)
    assert {n for n in tables if n not in ("x", "y")} == {"pe:px", "pe:py", "pe:pe_id",
                                                           "pe:odd"}
    for name, dtype in (("px", np.uint16), ("py", np.uint16), ("pe_id", np.uint32),
                        ("odd", np.bool_)):
        assert tables[f"pe:{name}"].dtype == dtype
        np.testing.assert_array_equal(tables[f"pe:{name}"], g[name])
    want = np.stack([g["px"] * 3 + g["py"], g["pe_id"], np.where(g["odd"], 10, 20)], -1)
    for got in outputs(p, 3):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("flag", ["is_last", "odd"])
def test_a_bool_needed_at_comptime_splits_into_two_classes_only(tmp_path, flag):
    p = compile_pe(tmp_path, """
var out: [if (FLAG) 3 else 2]u32;
fn main() void {
  out[0] = @as(u32, px) * 3 + @as(u32, py);
  out[1] = pe_id;
  if (FLAG) { out[2] = pe_id + 1000; }
  sys.unblock_cmd_stream();
}
""".replace("FLAG", flag))
    g = grid()
    assert len(p.classes) == 2 and same_partition(p.class_of, g[flag])
    assert sorted(pe.symbol("out").shape for pe in p.classes) == [(2,), (3,)]
    tables = dict(p.tables)
    assert f"pe:{flag}" not in tables
    np.testing.assert_array_equal(tables["pe:pe_id"], g["pe_id"])
    want = np.stack([g["px"] * 3 + g["py"], g["pe_id"]], -1)
    for got in outputs(p, 2):
        np.testing.assert_array_equal(got, want)
    r = run(p)
    for y, x in zip(*np.nonzero(g[flag])):
        out = np.zeros(3, np.uint32)
        r.memcpy_d2h(out, r.get_id("out"), int(x), int(y), 1, 1, 3, streaming=False)
        assert out[2] == g["pe_id"][y, x] + 1000


def test_an_integer_needed_as_an_array_size_splits_by_its_values(tmp_path):
    p = compile_pe(tmp_path, """
var out: [k + 2]u32;
fn main() void {
  out[0] = pe_id;
  out[1] = @as(u32, k) * 100 + @as(u32, py);
  sys.unblock_cmd_stream();
}
""")
    g = grid()
    assert len(p.classes) == 3 and same_partition(p.class_of, g["k"])
    assert sorted(pe.symbol("out").shape for pe in p.classes) == [(2,), (3,), (4,)]
    want = np.stack([g["pe_id"], g["k"] * 100 + g["py"]], -1)
    for got in outputs(p, 2):
        np.testing.assert_array_equal(got, want)


def test_a_param_needed_at_comptime_on_some_tiles_only(tmp_path):
    # on row 0 the buffer size depends on px, elsewhere px is only read at run time
    p = compile_pe(tmp_path, """
var out: [2]u32;
var buf: [if (is_edge) px + 1 else 1]u32;
fn main() void {
  buf[0] = pe_id;
  out[0] = buf[0] + @as(u32, px);
  out[1] = @as(u32, py) * 7;
  sys.unblock_cmd_stream();
}
""")
    g = grid()
    labels = np.where(g["is_edge"], g["px"], -1)
    assert len(p.classes) == W + 1 and same_partition(p.class_of, labels)
    sizes = [[p.classes[p.class_of[y, x]].symbol("buf").shape for x in range(W)]
             for y in range(H)]
    assert sizes == [[(x + 1,) if y == 0 else (1,) for x in range(W)] for y in range(H)]
    want = np.stack([g["pe_id"] + g["px"], g["py"] * 7], -1)
    for got in outputs(p, 2):
        np.testing.assert_array_equal(got, want)


def test_a_value_outside_the_declared_type_is_the_comptime_error(tmp_path):
    layout = LAYOUT.replace(".k = x % 3", ".k = x % 3, .big = @as(i32, x) * 9000")
    write(tmp_path, {"layout.csl": layout,
                     "pe.csl": PE_HEAD + "param big: i16;\nvar out: [1]u32;\n"
                     "fn main() void { out[0] = @as(u32, big); }" + PE_TAIL})
    with pytest.raises(CslError, match="36000 does not fit in i16"):
        compile_csl(tmp_path / "layout.csl", params={"W": W, "H": H}, memcpy=True)


def test_specialisations_per_group_do_not_grow_with_the_rectangle(tmp_path, monkeypatch):
    calls = []
    instantiate = CslCompiler.instantiate

    def counted(self, path, params):
        calls.append(path)
        return instantiate(self, path, params)

    monkeypatch.setattr(CslCompiler, "instantiate", counted)
    body = """
var out: [if (is_last) 3 else 2]u32;
fn main() void { out[0] = pe_id + @as(u32, px) + @as(u32, py); sys.unblock_cmd_stream(); }
"""
    counts = []
    for w, h in ((3, 2), (12, 9)):
        calls.clear()
        p = compile_pe(tmp_path, body, w, h)
        assert len(p.classes) == 2
        counts.append(len(calls))
    # all seven varying params at once, then one at a time, then one per side of is_last
    assert counts[0] == counts[1] <= 1 + 7 + 2, counts


def test_table_names_are_unique_per_type_and_shared_by_disjoint_groups(tmp_path):
    # three groups: pe.csl with color 1 (even rows) or 2 (odd rows) on the left half,
    # b/pe.csl (px: i32) on the right half
    (tmp_path / "b").mkdir()
    write(tmp_path, {"layout.csl": """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 6, .height = 4 });
layout {
  @set_rectangle(6, 4);
  for (@range(i16, 6)) |x| {
    for (@range(i16, 4)) |y| {
      const file = if (x < 3) "pe.csl" else "b/pe.csl";
      const c = if (y % 2 == 0) @get_color(1) else @get_color(2);
      @set_tile_code(x, y, file, .{ .memcpy_params = memcpy.get_params(x), .px = x, .c = c });
    }
  }
  @export_name("out", [*]u32, false);
  @export_name("main", fn()void);
}
""", "pe.csl": """
param memcpy_params;
param px: u16;
param c: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
var out: [1]u32;
var out_ptr: [*]u32 = &out;
fn main() void { out[0] = @as(u32, px) * 10; sys.unblock_cmd_stream(); }
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
""", "b/pe.csl": """
param memcpy_params;
param px: i32;
param c: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
var out: [1]u32;
var out_ptr: [*]u32 = &out;
fn main() void { out[0] = @bitcast(u32, px) + 1; sys.unblock_cmd_stream(); }
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""})
    p = compile_csl(tmp_path / "layout.csl", memcpy=True)
    tables = dict(p.tables)
    assert [n for n, _ in p.tables] == ["x", "y", "pe:px", "pe:px#2"]
    assert tables["pe:px"].dtype == np.uint16 and tables["pe:px#2"].dtype == np.int32
    xs = np.mgrid[0:4, 0:6][1]
    np.testing.assert_array_equal(tables["pe:px"][:, :3], xs[:, :3])
    np.testing.assert_array_equal(tables["pe:px#2"][:, 3:], xs[:, 3:])
    # the two groups of pe.csl specialise to the same program (c is unused): one class
    assert len(p.classes) == 2 and same_partition(p.class_of, xs < 3)
    np.testing.assert_array_equal(read(run(p), "out", 1, np.uint32)[..., 0],
                                  np.where(xs < 3, xs * 10, xs + 1))


@pytest.mark.slow
def test_750x994_coordinates_and_ids_are_one_class(tmp_path):
    # only the params this program reads: the layout block is interpreted once per tile
    layout = LAYOUT.replace("""
                                       .odd = (x + y) % 2 == 1, .is_last = x == W - 1,
                                       .is_edge = y == 0, .k = x % 3 });""", " });")
    assert layout != LAYOUT
    write(tmp_path, {"layout.csl": layout, "pe.csl": """
param memcpy_params;
param px: u16;
param py: u16;
param pe_id: u32;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
var out: [2]u32;
fn main() void {
  out[0] = @as(u32, px) * 3 + @as(u32, py);
  out[1] = pe_id;
  sys.unblock_cmd_stream();
}
""" + PE_TAIL})
    p = compile_csl(tmp_path / "layout.csl", params={"W": 750, "H": 994}, memcpy=True)
    assert len(p.classes) == 1 and (p.class_of == 0).all()
    tables = dict(p.tables)
    for x, y in ((0, 0), (749, 0), (0, 993), (749, 993), (417, 262)):
        assert (tables["pe:px"][y, x], tables["pe:py"][y, x]) == (x, y)
        assert tables["pe:pe_id"][y, x] == y * 750 + x


# ------------------------------------------------------------------------------------------------
# The Python API


def compile_dsl(pe, w=W, h=H, **extra):
    """`pe` on a w x h rectangle with the layout params of `grid` (and `extra(x, y)`)."""
    def layout():
        csl.set_rectangle(w, h)
        for y in range(h):
            for x in range(w):
                params = dict(px=x, py=y, pe_id=y * w + x, odd=(x + y) % 2 == 1,
                              is_last=x == w - 1, k=x % 3)
                params.update({name: f(x, y) for name, f in extra.items()})
                csl.set_tile_code(x, y, pe, params)
        csl.export_name("out", csl.pointer(csl.u32), False)
        csl.export_name("main", csl.fn_type())

    return csl.compile(layout)


def runtime_pe(px, py, pe_id, odd, is_last, k):
    out = csl.var("out", csl.u32[3])

    @csl.fn
    def main():
        out[0] = csl.as_(csl.u32, px) * 3 + csl.as_(csl.u32, py)
        out[1] = pe_id
        with csl.if_(odd):
            out[2] = 10
        with csl.else_():
            out[2] = 20
        csl.unblock_cmd_stream()

    csl.export_symbol(out, "out")
    csl.export_symbol(main)


def test_python_api_params_used_at_run_time_share_one_class():
    p = compile_dsl(runtime_pe)
    g = grid()
    assert len(p.classes) == 1 and (p.class_of == 0).all()
    tables = dict(p.tables)
    for name in ("px", "py", "pe_id", "odd"):
        np.testing.assert_array_equal(tables[f"runtime_pe:{name}"], g[name])
    assert "runtime_pe:is_last" not in tables and "runtime_pe:k" not in tables
    want = np.stack([g["px"] * 3 + g["py"], g["pe_id"], np.where(g["odd"], 10, 20)], -1)
    for got in outputs(p, 3):
        np.testing.assert_array_equal(got, want)


def test_python_api_a_param_python_needs_splits_by_its_values_only():
    def pe(px, py, pe_id, odd, is_last, k):
        out = csl.var("out", csl.u32[3 if is_last else 2])

        @csl.fn
        def main():
            out[0] = csl.pe_x() + px                  # the param takes the u16 of pe_x
            out[1] = pe_id
            with csl.if_(csl.pe_y() == py):
                out[1] = out[1] + 1
            if is_last:
                out[2] = 7
            csl.unblock_cmd_stream()

        csl.export_symbol(out, "out")
        csl.export_symbol(main)

    p = compile_dsl(pe)
    g = grid()
    assert len(p.classes) == 2 and same_partition(p.class_of, g["is_last"])
    assert sorted(c.symbol("out").shape for c in p.classes) == [(2,), (3,)]
    want = np.stack([2 * g["px"], g["pe_id"] + 1], -1)
    for got in outputs(p, 2):
        np.testing.assert_array_equal(got, want)


def test_python_api_python_arithmetic_on_a_param_splits_by_it():
    def pe(px, py, pe_id, odd, is_last, k):
        out = csl.var("out", csl.u32[2])

        @csl.fn
        def main():
            out[0] = px * 2 + 1                       # Python arithmetic: px per class
            out[1] = pe_id
            csl.unblock_cmd_stream()

        csl.export_symbol(out, "out")
        csl.export_symbol(main)

    p = compile_dsl(pe)
    g = grid()
    assert len(p.classes) == W and same_partition(p.class_of, g["px"])
    assert [n for n, _ in p.tables] == ["x", "y", "pe:pe_id"]
    for got in outputs(p, 2):
        np.testing.assert_array_equal(got, np.stack([g["px"] * 2 + 1, g["pe_id"]], -1))


def test_python_api_a_number_outside_its_type_is_the_error_it_always_was():
    def pe(px, py, pe_id, odd, is_last, k, big):
        out = csl.var("out", csl.u32[1])
        small = csl.var("small", csl.u16)

        @csl.fn
        def main():
            small.set(big)
            out[0] = pe_id

        csl.export_symbol(out, "out")
        csl.export_symbol(main)

    with pytest.raises(ProgramError, match="80000 does not fit in u16"):
        compile_dsl(pe, big=lambda x, y: x * 20000)
