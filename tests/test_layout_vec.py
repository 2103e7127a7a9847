"""Layout loops run over all their iterations at once (`wsejax.csl.layout_vec`) compile to
the same program as when they run per iteration: the same tile classes, per-PE tables,
routes, filters and switches; loops it cannot take run per iteration, and errors read as
before. Also the build's per-phase times (`compile_csl(timings=...)`, `wsejax cslc
--timings`) and its progress line (`wsejax.progress`)."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest
from csl_harness import write
from hypothesis import given, settings
from hypothesis import strategies as st

import wsejax.csl as csl_module
from wsejax.cli import main
from wsejax.csl import compile_csl
from wsejax.errors import CslError
from wsejax.progress import Progress

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "csl"

PE = """
param px: u16;
param py: u16;
param k: i32;
param flag: bool;
param c_out: color;
const out = @get_dsd(fabout_dsd, .{ .extent = 1, .fabric_color = c_out });
var v = @zeros([1]i32);
var ptr: [*]i32 = &v;
fn f() void {
  v[0] = k + @as(i32, px) * 1000 + @as(i32, py);
  if (flag) { v[0] = -v[0]; }
  if (@is_arch("wse2")) { @mov32(out, v[0]); }
}
comptime { @export_symbol(ptr, "v"); @export_symbol(f); }
"""


def layout(body: str, w: int = 5, h: int = 4) -> str:
    return f"""
const c0 = @get_color(0);
const c1 = @get_color(1);
const c2 = @get_color(2);
const c3 = @get_color(3);
layout {{
  @set_rectangle({w}, {h});
  {body}
  @export_name("v", [*]i32, true);
  @export_name("f", fn()void);
}}
"""


def program_key(p) -> tuple:
    """What a compiled program is made of (classes, tables, routes, filters, switches)."""
    resolved = {c: (r.sources.tolist(), r.dest_source.tolist(), r.hops.tolist())
                for c, r in p.resolved.items()}
    return (p.classes, p.class_of.tolist(),
            [(n, t.dtype.str, t.tolist()) for n, t in p.tables], tuple(p.routes), p.filters,
            p.switches, resolved)


def per_iteration(monkeypatch):
    """Every layout loop runs per iteration, as before `layout_vec`."""
    monkeypatch.setattr(csl_module, "run_loop", lambda c, s, env: None)


def vectorised(monkeypatch) -> list:
    """The loops `run_loop` takes at once are counted (appended to the list returned)."""
    taken = []
    real = csl_module.run_loop

    def spy(c, s, env):
        out = real(c, s, env)
        taken.append(out is not None)
        return out
    monkeypatch.setattr(csl_module, "run_loop", spy)
    return taken


def both(tmp_path, text: str, arch: str = "wse2", **kw):
    """(program run at once, program run per iteration, whether a loop ran at once)."""
    write(tmp_path, {"layout.csl": text, "pe.csl": PE})
    with pytest.MonkeyPatch.context() as mp:
        taken = vectorised(mp)
        fast = compile_csl(tmp_path / "layout.csl", arch=arch, **kw)
    with pytest.MonkeyPatch.context() as mp:
        per_iteration(mp)
        slow = compile_csl(tmp_path / "layout.csl", arch=arch, **kw)
    return fast, slow, any(taken)


TILE = '@set_tile_code(x, y, "pe.csl", .{{ .px = x, .py = y, .k = {k}, .flag = {flag}, ' \
       '.c_out = {color} }});'
LOOPBACK = "@set_color_config(x, y, {color}, .{{ .routes = .{{ .rx = .{{RAMP}}, " \
           ".tx = .{{RAMP}} }} }});"


def body(k="7", flag="false", color="c3", route="", pre="", outer="x", inner="y",
         w=5, h=4) -> str:
    n = {"x": w, "y": h}
    return (f"for (@range(u16, {n[outer]})) |{outer}| {{ for (@range(u16, {n[inner]})) "
            f"|{inner}| {{ {pre} {TILE.format(k=k, flag=flag, color=color)} {route} }} }}")


def test_relay_colors_compiles_the_same_at_once(monkeypatch):
    kw = dict(params={"width": 9, "height": 4, "n": 3}, memcpy=True)
    taken = vectorised(monkeypatch)
    fast = compile_csl(EXAMPLES / "relay-colors" / "layout.csl", **kw)
    assert taken == [True]
    per_iteration(monkeypatch)
    slow = compile_csl(EXAMPLES / "relay-colors" / "layout.csl", **kw)
    assert program_key(fast) == program_key(slow)
    assert len(fast.classes) == 1 and len(fast.routes) == 2 * 8 * 4


def test_streaming_gemv_compiles_the_same_at_once(monkeypatch):
    kw = dict(params={"k": 5, "Mt": 3, "Nt": 2, "MEMCPYH2D_DATA_1_ID": 0,
                      "MEMCPYH2D_DATA_2_ID": 1, "MEMCPYD2H_DATA_1_ID": 2}, memcpy=True)
    taken = vectorised(monkeypatch)
    fast = compile_csl(EXAMPLES / "gemv-streaming" / "layout.csl", **kw)
    assert taken == [True]
    per_iteration(monkeypatch)
    assert program_key(fast) == program_key(
        compile_csl(EXAMPLES / "gemv-streaming" / "layout.csl", **kw))


CONDS = ["x % 2 == 0", "x + y > 3 and y < 2", "x == 0 or y == 3", "!(x < 2)",
         "(x * 3 + y) % 4 == 1", "x / 2 == y - 1"]


@settings(max_examples=12, deadline=None)
@given(cond=st.sampled_from(CONDS), k=st.sampled_from(["7", "x * 4 + y", "@as(i32, y) - 2",
                                                       "if (x > y) 1 else 2"]),
       color=st.sampled_from(["c3", "if ({c}) c2 else c3"]),
       route=st.sampled_from(["", "if ({c}) {{ {r0} }} else {{ {r1} }}", "{r0}",
                              "if ({c}) {{ {r0} }} else if (y == 1) {{ {r1} }}"]),
       flag=st.sampled_from(["false", "{c}"]),
       order=st.sampled_from([("x", "y"), ("y", "x")]),
       arch=st.sampled_from(["wse2", "wse3"]))
def test_generated_layout_loops_compile_the_same_at_once(tmp_path_factory, cond, k, color,
                                                         route, flag, order, arch):
    fill = dict(c=cond, r0=LOOPBACK.format(color="c0"), r1=LOOPBACK.format(color="c1"))
    text = layout(body(k=k, flag=flag.format(**fill), color=color.format(**fill),
                       route=route.format(**fill), pre="const s = x + y;", outer=order[0],
                       inner=order[1]))
    fast, slow, taken = both(tmp_path_factory.mktemp("gen"), text, arch)
    assert taken
    assert program_key(fast) == program_key(slow)


def test_pe_coordinates_as_params_and_parity_routes_give_per_pe_tables(tmp_path):
    text = layout(body(k="@as(i32, y) * 5 + @as(i32, x)", flag="(x + y) % 2 == 1",
                       color="if (x % 2 == 0) c2 else c3",
                       route="if ((x + y) % 2 == 0) { " + LOOPBACK.format(color="c0")
                       + " } else { " + LOOPBACK.format(color="c1") + " }"))
    fast, slow, taken = both(tmp_path, text)
    assert taken and program_key(fast) == program_key(slow)
    assert len(fast.classes) == 1
    tables = dict(fast.tables)
    ys, xs = np.mgrid[0:4, 0:5]
    np.testing.assert_array_equal(tables["pe:px"], xs)
    np.testing.assert_array_equal(tables["pe:k"], ys * 5 + xs)
    np.testing.assert_array_equal(tables["pe:flag"], (xs + ys) % 2 == 1)
    np.testing.assert_array_equal(tables["pe:c_out"], np.where(xs % 2 == 0, 2, 3))
    routes = dict(fast.routes)
    for x in range(5):
        for y in range(4):
            color = 0 if (x + y) % 2 == 0 else 1
            assert routes[(x, y, color)] == (("RAMP",), ("RAMP",))


def test_ranges_with_steps_struct_consts_and_fields_compile_the_same_at_once(tmp_path):
    text = layout("""
  for (@range(u16, 4)) |y| {
    const row = .{ .even = y % 2 == 0, .base = @as(i32, y) * 10 };
    for (@range(u16, 0, 5, 1)) |x| {
      const color = if (row.even) c2 else c3;
      @set_tile_code(x, y, "pe.csl", .{ .px = x, .py = y, .k = row.base, .flag = row.even,
                                        .c_out = color });
    }
  }""")
    fast, slow, taken = both(tmp_path, text)
    assert taken and program_key(fast) == program_key(slow)
    np.testing.assert_array_equal(dict(fast.tables)["pe:k"], np.mgrid[0:4, 0:5][0] * 10)


@pytest.mark.parametrize("pre", [
    "var t: u16 = x; t += 1;",                                     # a var, assigned
    "if (y == 9) { break; }",                                     # a jump
    "const z = twice(x);",                                        # a call of the program's fn
])
def test_loops_it_cannot_take_run_per_iteration_as_before(tmp_path, pre):
    text = layout(body(pre=pre)).replace("layout {", "fn twice(a: u16) u16 { return 2 * a; }\n"
                                         "layout {")
    fast, slow, taken = both(tmp_path, text)
    assert not taken
    assert program_key(fast) == program_key(slow)


def test_a_tile_placed_twice_in_a_loop_reads_as_before(tmp_path):
    text = layout('for (@range(u16, 2)) |x| { @set_tile_code(0, 0, "pe.csl", .{ .px = x, '
                  '.py = 0, .k = 1, .flag = false, .c_out = c3 }); }')
    write(tmp_path, {"layout.csl": text, "pe.csl": PE})
    with pytest.raises(CslError, match=r"layout\.csl:8:\d+: error: @set_tile_code\(0, 0\) called "
                       "twice"):
        compile_csl(tmp_path / "layout.csl")


def test_a_tile_or_route_placed_after_a_loop_that_placed_it_is_an_error(tmp_path):
    one = '@set_tile_code(1, 2, "pe.csl", .{ .px = 1, .py = 2, .k = 1, .flag = false, ' \
          '.c_out = c3 });'
    write(tmp_path, {"layout.csl": layout(body() + one), "pe.csl": PE})
    with pytest.raises(CslError, match=r"@set_tile_code\(1, 2\) called twice"):
        compile_csl(tmp_path / "layout.csl")
    route = LOOPBACK.format(color="c0").replace("x, y", "3, 1")
    write(tmp_path, {"layout.csl": layout(body(route=LOOPBACK.format(color="c0")) + route)})
    with pytest.raises(CslError, match=r"color 0 at PE \(3, 1\) is configured twice"):
        compile_csl(tmp_path / "layout.csl")


def test_a_failed_assert_in_a_loop_reads_as_before(tmp_path):
    text = layout(body(pre='@comptime_assert(x + y < 6, "too far");'))
    write(tmp_path, {"layout.csl": text, "pe.csl": PE})
    with pytest.raises(CslError, match="too far"):
        compile_csl(tmp_path / "layout.csl")


def test_a_route_error_points_at_the_config_of_a_loop(tmp_path):
    east = "@set_color_config(x, y, c0, .{ .routes = .{ .rx = .{RAMP}, .tx = .{EAST} } });"
    write(tmp_path, {"layout.csl": layout(body(route=east)), "pe.csl": PE})
    with pytest.raises(CslError, match=r"layout\.csl:8:\d+: .*color 0"):
        compile_csl(tmp_path / "layout.csl")


# -- per-phase times and the progress line ----------------------------------------------------


def test_compile_records_the_time_of_each_phase():
    timings = {}
    compile_csl(EXAMPLES / "relay-colors" / "layout.csl",
                params={"width": 4, "height": 3, "n": 2}, memcpy=True, timings=timings)
    assert list(timings) == ["parse", "layout", "tile_classes", "routes"]
    assert all(t >= 0 for t in timings.values())


def test_cslc_timings_prints_each_phase(tmp_path, capsys):
    status = main(["cslc", str(EXAMPLES / "relay-colors" / "layout.csl"),
                   "--params=width:4,height:3,n:2", "--memcpy", "-o", str(tmp_path / "out"),
                   "--timings"])
    assert status == 0
    err = capsys.readouterr().err
    for phase in ("parse", "layout", "tile_classes", "routes", "write", "total"):
        assert f"{phase} " in err
    assert "\r" not in err          # no progress line where stderr is no terminal


def test_the_progress_line_is_off_where_the_stream_is_no_terminal():
    out = io.StringIO()
    p = Progress("layout", 10, "tiles", stream=out)
    p.update(10)
    p.close()
    assert out.getvalue() == ""


def test_the_progress_line_is_drawn_and_cleared_where_forced():
    out = io.StringIO()
    p = Progress("layout", 10, "tiles", stream=out, enabled=True)
    p.update(3)
    p.update(4)         # too soon after the last: not drawn
    p.update(10)        # the end always is
    p.close()
    text = out.getvalue()
    assert text.startswith("\rlayout: 3/10 tiles") and "\rlayout: 10/10 tiles" in text
    assert "4/10" not in text and text.endswith("\r")


def test_compile_draws_the_layout_progress_where_asked(capsys):
    compile_csl(EXAMPLES / "relay-colors" / "layout.csl",
                params={"width": 4, "height": 3, "n": 2}, memcpy=True, progress=True)
    assert "\rlayout: 12/12 tiles" in capsys.readouterr().err


@pytest.mark.slow
def test_a_wafer_of_relay_tiles_compiles_at_once(monkeypatch):
    taken = vectorised(monkeypatch)
    p = compile_csl(EXAMPLES / "relay-colors" / "layout.csl",
                    params={"width": 750, "height": 994, "n": 2}, memcpy=True)
    assert taken == [True] and len(p.classes) == 1 and len(p.routes) == 2 * 749 * 994
