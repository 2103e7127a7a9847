"""`SdkLayout` (`wsejax.sdklayout`): layouts of code regions built in Python, compiled through
the CSL front end, run by `SdkRuntime`. Each program is checked against numpy or values worked
out by hand, with the reference interpreter run beside the engine (`check=True`)."""

from __future__ import annotations

import numpy as np
import pytest

from wsejax.compat import cerebras_shims
from wsejax.compat.sdkruntimepybind import SdkRuntime, SdkTarget, SimfabConfig, get_platform
from wsejax.errors import LayoutError, MemcpyError
from wsejax.sdklayout import (
    Color,
    Edge,
    IntRectangle,
    IntVector,
    Route,
    RoutingPosition,
    SdkLayout,
    get_edge_routing,
)

ARCHS = ["wse2", "wse3"]

# a region that holds a number given as a param
HOLD = """
param k: u16;
export var v: u16 = 0;
const main_id = @get_local_task_id(8);
task main() void { v = k * 3; }
comptime {
  @bind_local_task(main, main_id);
  @activate(main_id);
}
"""

# sends n u32 values base + i*i on color tx
SEND = """
param n: u16;
param base: u32;
param tx: u16;
const out_q = @get_output_queue(1);
var data: [n]u32;
const data_dsd = @get_dsd(mem1d_dsd, .{.tensor_access = |i|{n} -> data[i]});
const out_dsd = @get_dsd(fabout_dsd, .{.extent = n, .fabric_color = @get_color(tx),
                                       .output_queue = out_q});
const main_id = @get_local_task_id(8);
task main() void {
  for (@range(u16, n)) |i| { data[i] = base + @as(u32, i) * @as(u32, i); }
  @mov32(out_dsd, data_dsd, .{.async = true});
}
comptime {
  @bind_local_task(main, main_id);
  @activate(main_id);
  if (@is_arch("wse3")) { @initialize_queue(out_q, .{.color = @get_color(tx)}); }
}
"""

# receives n u32 values on color rx into `got`
RECEIVE = """
param n: u16;
param rx: u16;
const in_q = @get_input_queue(3);
export var got: [n]u32;
const got_dsd = @get_dsd(mem1d_dsd, .{.tensor_access = |i|{n} -> got[i]});
const in_dsd = @get_dsd(fabin_dsd, .{.extent = n, .fabric_color = @get_color(rx),
                                     .input_queue = in_q});
const main_id = @get_local_task_id(8);
task main() void { @mov32(got_dsd, in_dsd, .{.async = true}); }
comptime {
  @bind_local_task(main, main_id);
  @activate(main_id);
  @initialize_queue(in_q, .{.color = @get_color(rx)});
}
"""

# multiplies n f32 values from color rx by 2.5 and sends them on color tx
SCALE = """
param n: u16;
param rx: u16;
param tx: u16;
const in_q = @get_input_queue(4);
const out_q = @get_output_queue(5);
const in_dsd = @get_dsd(fabin_dsd, .{.extent = n, .fabric_color = @get_color(rx),
                                     .input_queue = in_q});
const out_dsd = @get_dsd(fabout_dsd, .{.extent = n, .fabric_color = @get_color(tx),
                                       .output_queue = out_q});
const main_id = @get_local_task_id(8);
task main() void { @fmuls(out_dsd, in_dsd, 2.5, .{.async = true}); }
comptime {
  @bind_local_task(main, main_id);
  @activate(main_id);
  @initialize_queue(in_q, .{.color = @get_color(rx)});
  if (@is_arch("wse3")) { @initialize_queue(out_q, .{.color = @get_color(tx)}); }
}
"""

# a block of a matrix, summed
BLOCK = """
export var m = @zeros([2, 3]f32);
export var total: f32 = 0.0;
const main_id = @get_local_task_id(8);
task main() void {
  for (@range(u16, 2)) |i| { for (@range(u16, 3)) |j| { total += m[i, j]; } }
}
comptime {
  @bind_local_task(main, main_id);
  @activate(main_id);
}
"""

RAMP_IN = RoutingPosition().set_input([Route.RAMP])
RAMP_OUT = RoutingPosition().set_output([Route.RAMP])


@pytest.fixture
def sources(tmp_path, monkeypatch):
    for name, text in (("hold", HOLD), ("send", SEND), ("receive", RECEIVE),
                       ("scale", SCALE), ("block", BLOCK)):
        (tmp_path / f"{name}.csl").write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def platform(arch):
    return get_platform(None, SimfabConfig(dump_core=True),
                        SdkTarget.WSE3 if arch == "wse3" else SdkTarget.WSE2)


def run(layout, arch, streams=()):
    artifacts = layout.compile(out_prefix="out")
    rt = SdkRuntime(artifacts, platform(arch), memcpy_required=False, check=True)
    rt.load()
    rt.run()
    for f in streams:
        f(rt)
    rt.stop()
    return rt, artifacts


@pytest.mark.parametrize("arch", ARCHS)
def test_params_per_region_and_per_pe(sources, arch):
    layout = SdkLayout(platform(arch))
    a = layout.create_code_region("./hold.csl", "a", 2, 1)
    a.set_param_all("k", 5)
    a.set_param(IntVector(1, 0), "k", 7)
    b = layout.create_code_region("./hold.csl", "b", 1, 2)
    b.set_param_all("k", 11)
    b.place(3, 1)
    rt, _ = run(layout, arch)
    assert rt.program.width == 4 and rt.program.height == 3
    got = [int(rt.read_symbol(x, y, "v", dtype="uint16")[0])
           for x, y in ((0, 0), (1, 0), (3, 1), (3, 2))]
    assert got == [15, 21, 33, 33]


@pytest.mark.parametrize("arch", ARCHS)
def test_connection_routes_around_a_region(sources, arch):
    n = 6
    layout = SdkLayout(platform(arch))
    send = layout.create_code_region("./send.csl", "send", 1, 1)
    tx = send.color("tx")
    send.set_param_all("n", n)
    send.set_param_all("base", 100)
    send.set_param_all(tx)
    out_port = send.create_output_port(tx, Edge.RIGHT, [RAMP_IN], n)
    wall = layout.create_code_region("./hold.csl", "wall", 1, 2)
    wall.set_param_all("k", 1)
    wall.place(2, 0)
    recv = layout.create_code_region("./receive.csl", "recv", 1, 1)
    rx = Color("rx")
    recv.set_param_all("n", n)
    recv.set_param_all(rx)
    in_port = recv.create_input_port(rx, Edge.TOP, [RAMP_OUT], n)
    recv.place(3, 1)
    layout.connect(out_port, in_port)
    rt, artifacts = run(layout, arch)
    # connected ports share one color
    assert artifacts.colors["tx"] == artifacts.colors["rx"]
    want = 100 + np.arange(n, dtype=np.uint32) ** 2
    np.testing.assert_array_equal(rt.read_symbol(3, 1, "got", dtype="uint32"), want)
    # the path leaves the wall's PEs alone: it goes below it and enters from above
    layout_text = (sources / "out" / "sdklayout" / "layout.csl").read_text()
    assert "@set_color_config(2, 0," not in layout_text
    assert "@set_color_config(2, 1," not in layout_text
    assert f"@set_color_config(3, 0, @get_color({artifacts.colors['rx']}), " \
           ".{.routes = .{.rx = .{EAST}, .tx = .{SOUTH}}});" in layout_text


@pytest.mark.parametrize("arch", ARCHS)
def test_streams_to_and_from_the_host(sources, arch):
    # more wavelets than the queues on the way hold: the send finishes before the receive
    # starts only because the relay PEs hold whole streams
    n = 100
    layout = SdkLayout(platform(arch))
    scale = layout.create_code_region("./scale.csl", "scale", 1, 1)
    rx, tx = Color("rx"), Color("tx")
    scale.set_param_all("n", n)
    scale.set_param_all(rx)
    scale.set_param_all(tx)
    in_port = scale.create_input_port(rx, Edge.LEFT, [RAMP_OUT], n)
    out_port = scale.create_output_port(tx, Edge.LEFT, [RAMP_IN], n)
    scale.place(1, 1)
    ins, outs = layout.create_input_stream(in_port), layout.create_output_stream(out_port)
    x = np.linspace(-2.0, 3.0, n).astype(np.float32)
    y = np.zeros(n, np.float32)
    run(layout, arch, [lambda rt: rt.send(ins, x, nonblock=True),
                       lambda rt: rt.receive(outs, y, n, nonblock=True)])
    np.testing.assert_array_equal(y, x * np.float32(2.5))
    # the two streams relay through two PEs beyond the left edge
    assert {(ins.x, ins.y), (outs.x, outs.y)} == {(0, 1), (0, 0)} or \
        {(ins.x, ins.y), (outs.x, outs.y)} == {(0, 1), (0, 2)}


@pytest.mark.parametrize("arch", ARCHS)
def test_set_symbol_all_splits_a_matrix_into_blocks(sources, arch):
    layout = SdkLayout(platform(arch))
    blocks = layout.create_code_region("./block.csl", "blocks", 2, 2)
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    blocks.set_symbol_all("m", a.reshape(-1), 6, 4)
    # one PE's block replaced afterwards
    blocks.set_symbol(IntVector(1, 0), "m", -np.arange(6, dtype=np.float32))
    rt, _ = run(layout, arch)
    for x in range(2):
        for y in range(2):
            block = a[2 * y:2 * y + 2, 3 * x:3 * x + 3] if (x, y) != (1, 0) else \
                -np.arange(6, dtype=np.float32)
            np.testing.assert_array_equal(rt.read_symbol(x, y, "m", dtype="float32"),
                                          block.reshape(-1))
            assert rt.read_symbol(x, y, "total", dtype="float32")[0] == block.sum()


def test_paint_writes_the_routes_and_switch_positions(sources):
    layout = SdkLayout(platform("wse2"))
    r = layout.create_code_region("./hold.csl", "r", 3, 2)
    r.set_param_all("k", 0)
    c = Color("c", 7)
    fwd = RoutingPosition().set_input([Route.WEST]).set_output([Route.EAST])
    take = RoutingPosition().set_input([Route.WEST]).set_output([Route.RAMP])
    r.paint_all(c, [take, fwd], [get_edge_routing(Edge.RIGHT, [take])])
    r.paint(IntVector(0, 0), c, [RoutingPosition().set_input([Route.RAMP])
                                 .set_output([Route.EAST])])
    r.paint_range(IntRectangle(IntVector(0, 1), IntVector(1, 2)), c, [fwd])
    from wsejax.sdklayout.build import _place, _routes_text
    from wsejax.sdklayout.routing import assign_colors, route_layout
    _place(layout)
    routes = route_layout(layout, assign_colors(layout, set()))
    text = {k: _routes_text(v) for k, v in routes.table.items()}
    assert text[(0, 0, 7)] == ".routes = .{.rx = .{RAMP}, .tx = .{EAST}}"
    assert text[(0, 1, 7)] == ".routes = .{.rx = .{WEST}, .tx = .{EAST}}"
    assert text[(1, 0, 7)] == (".routes = .{.rx = .{WEST}, .tx = .{RAMP}}, "
                               ".switches = .{.pos1 = .{.tx = .{EAST}}}")
    assert text[(2, 1, 7)] == ".routes = .{.rx = .{WEST}, .tx = .{RAMP}}"


def test_sdk_names_are_served_to_host_scripts():
    with cerebras_shims():
        from cerebras.geometry.geometry import IntVector as V
        from cerebras.sdk.runtime.sdkruntimepybind import Edge as E
        from cerebras.sdk.runtime.sdkruntimepybind import SdkLayout as L
    assert (V, E, L) == (IntVector, Edge, SdkLayout)


# -- bad input ----------------------------------------------------------------------------


def two_ports(layout):
    a = layout.create_code_region("./send.csl", "a", 1, 1)
    b = layout.create_code_region("./receive.csl", "b", 1, 1)
    b.place(3, 0)
    return (a.create_output_port(Color("x"), Edge.RIGHT, [RAMP_IN], 4),
            b.create_input_port(Color("y"), Edge.LEFT, [RAMP_OUT], 4))


def test_connect_takes_an_output_then_an_input(sources):
    layout = SdkLayout(platform("wse2"))
    out_port, in_port = two_ports(layout)
    with pytest.raises(LayoutError, match="connect: expected an output port, got the input "
                                          "port on color 'y' of region 'b'"):
        layout.connect(in_port, out_port)
    layout.connect(out_port, in_port)
    with pytest.raises(LayoutError, match="is connected already"):
        layout.create_output_stream(out_port)


def test_connected_colors_with_two_numbers(sources):
    layout = SdkLayout(platform("wse2"))
    out_port, in_port = two_ports(layout)
    out_port.color.value, in_port.color.value = 3, 4
    layout.connect(out_port, in_port)
    with pytest.raises(LayoutError, match="numbers 3 and 4; a wavelet keeps its color"):
        layout.compile(out_prefix="out")


def test_overlapping_regions(sources):
    layout = SdkLayout(platform("wse2"))
    layout.create_code_region("./hold.csl", "a", 2, 2)
    b = layout.create_code_region("./hold.csl", "b", 2, 2)
    b.place(1, 1)
    with pytest.raises(LayoutError, match=r"regions 'a' and 'b' both cover PE \(1, 1\)"):
        layout.compile(out_prefix="out")


def test_stream_needs_a_one_pe_port(sources):
    layout = SdkLayout(platform("wse2"))
    r = layout.create_code_region("./receive.csl", "r", 1, 3)
    port = r.create_input_port(Color("c"), Edge.LEFT, [RAMP_OUT], 4)
    with pytest.raises(LayoutError, match="a stream reaches a one-PE port only; the input "
                                          "port on color 'c' of region 'r' has 3 PEs"):
        layout.create_input_stream(port)


def test_no_path_between_ports(sources):
    layout = SdkLayout(platform("wse2"))
    out_port, in_port = two_ports(layout)
    # the input port's edge faces a region
    layout.create_code_region("./hold.csl", "wall", 1, 1).place(2, 0)
    layout.connect(out_port, in_port)
    with pytest.raises(LayoutError, match=r"no path for the connection of the output port on "
                                          r"color 'x' of region 'a' to the input port on color "
                                          r"'y' of region 'b' from PE \(1, 0\) to PE \(2, 0\)"):
        layout.compile(out_prefix="out")


def test_bad_arguments(sources):
    layout = SdkLayout(platform("wse2"))
    with pytest.raises(LayoutError, match="no CSL file ./nothing.csl"):
        layout.create_code_region("./nothing.csl", "n", 1, 1)
    r = layout.create_code_region("./hold.csl", "r", 2, 1)
    with pytest.raises(LayoutError, match=r"set_param: PE \(2, 0\) is outside region 'r' "
                                          r"\(2x1\)"):
        r.set_param(IntVector(2, 0), "k", 1)
    with pytest.raises(LayoutError, match="a value is an integer or a Color, got 1.5"):
        r.set_param_all("k", 1.5)
    with pytest.raises(LayoutError, match="do not form a 2x3 matrix in equal blocks over the "
                                          "2x1 PEs"):
        r.set_symbol_all("v", np.zeros(6), 3, 2)
    with pytest.raises(LayoutError, match="expected Route values, got 'EAST'"):
        RoutingPosition().set_output(["EAST"])


def test_send_takes_an_input_stream(sources):
    layout = SdkLayout(platform("wse2"))
    scale = layout.create_code_region("./scale.csl", "scale", 1, 1)
    rx, tx = Color("rx"), Color("tx")
    for name, v in (("n", 4), ("rx", rx), ("tx", tx)):
        scale.set_param_all(name, v)
    scale.place(1, 1)
    ins = layout.create_input_stream(scale.create_input_port(rx, Edge.LEFT, [RAMP_OUT], 4))
    outs = layout.create_output_stream(scale.create_output_port(tx, Edge.TOP, [RAMP_IN], 4))
    rt = SdkRuntime(layout.compile(out_prefix="out"), platform("wse2"))
    rt.load()
    rt.run()
    with pytest.raises(MemcpyError, match="send: expected a stream of a compiled layout's "
                                          "create_input_stream"):
        rt.send(outs, np.zeros(4, np.float32))
    with pytest.raises(MemcpyError, match="receive: the stream's port moves 4 elements, got "
                                          "size=3"):
        rt.receive(outs, np.zeros(3, np.float32), 3)
    assert ins.color != outs.color


def test_stream_size_is_bounded(sources):
    layout = SdkLayout(platform("wse2"))
    r = layout.create_code_region("./receive.csl", "r", 1, 1)
    r.place(1, 0)
    layout.create_input_stream(r.create_input_port(Color("c"), Edge.LEFT, [RAMP_OUT], 9000))
    with pytest.raises(LayoutError, match="the stream of the input port on color 'c' of region "
                                          "'r' moves 9000 elements; a stream moves at most 8192"):
        layout.compile(out_prefix="out")
