"""Colors as per-PE values: a color param that differs between tiles is one tile class whose
fabric DSDs read the color from a per-PE table, each PE using its own color's queues.

The relay program (`examples/csl/relay-colors`, and the same program in the Python API)
passes each PE a send and a receive color that alternate along the row. It runs on the engine
and on the reference interpreter, against numpy's cumulative sum. A color the program needs
while it is specialised (a data task's binding, `@get_int`) splits the tiles by its values.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from csl_harness import write

from wsejax import SdkRuntime, ir
from wsejax import dsl as csl
from wsejax.csl import compile_csl
from wsejax.engine.core import Engine
from wsejax.reference import Reference
from wsejax.types import DType

RELAY = pathlib.Path(__file__).resolve().parent.parent / "examples" / "csl" / "relay-colors"
W, H, N = 7, 3, 5


def inputs(w=W, h=H, n=N):
    return np.random.default_rng(w * 100 + h).standard_normal((h, w, n)).astype(np.float32)


def relay_engine(program, x):
    """`sum` of every PE after `relay`, with `x` copied in: `[H, W, n]`."""
    h, w, n = x.shape
    r = SdkRuntime(program)
    r.load()
    r.run()
    r.memcpy_h2d(r.get_id("x"), x.ravel(), 0, 0, w, h, n, streaming=False)
    r.launch("relay")
    out = np.zeros(h * w * n, np.float32)
    r.memcpy_d2h(out, r.get_id("sum"), 0, 0, w, h, n, streaming=False)
    r.stop()
    return out.reshape(h, w, n)


def relay_reference(program, x):
    h, w, n = x.shape
    ref = Reference(program)
    ref.memcpy_h2d("x", x.ravel(), 0, 0, w, h, n)
    ref.launch("relay")
    out = np.zeros(h * w * n, np.float32)
    ref.memcpy_d2h(out, "sum", 0, 0, w, h, n)
    return out.reshape(h, w, n)


def check_relay(program, x):
    want = np.cumsum(x, axis=1, dtype=np.float32)
    for got in (relay_engine(program, x), relay_reference(program, x)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def alternating(w=W, h=H):
    """The send and receive colors of the relay layout, `[H, W]` each."""
    xs = np.broadcast_to(np.arange(w), (h, w))
    return xs % 2, 1 - xs % 2


def test_alternating_send_and_receive_colors_are_one_class_with_color_tables():
    p = compile_csl(RELAY / "layout.csl", params={"width": W, "height": H, "n": N}, memcpy=True)
    assert len(p.classes) == 1 and (p.class_of == 0).all()
    tables = dict(p.tables)
    send, recv = alternating()
    np.testing.assert_array_equal(tables["pe:send_color"], send)
    np.testing.assert_array_equal(tables["pe:recv_color"], recv)
    # each PE has queues for both colors; the table picks the one it uses
    e = Engine(p)
    assert e.inboxes == [0, 1] and e.outboxes == [0, 1]
    check_relay(p, inputs())


def test_per_pe_colors_stay_one_class_at_any_width():
    for w in (2, 16):
        p = compile_csl(RELAY / "layout.csl", params={"width": w, "height": 2, "n": 3},
                        memcpy=True)
        assert len(p.classes) == 1
        check_relay(p, inputs(w, 2, 3))


def edit(text: str, replace: dict) -> str:
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return text


def copy_relay(tmp_path, replace: dict, layout: dict | None = None):
    """The relay example in tmp_path with `replace` applied to its PE program (and `layout`
    to its layout)."""
    write(tmp_path, {"layout.csl": edit((RELAY / "layout.csl").read_text(), layout or {}),
                     "pe.csl": edit((RELAY / "pe.csl").read_text(), replace)})
    return compile_csl(tmp_path / "layout.csl", params={"width": W, "height": H, "n": N},
                       memcpy=True)


def test_a_color_whose_number_is_needed_at_comptime_splits_by_its_values(tmp_path):
    # @get_int needs send_color's number: two classes, by the send color
    p = copy_relay(tmp_path, {"var sum = @zeros([n]f32);":
                              "var sum = @zeros([n]f32);\nvar tag: u16 = @get_int(send_color);\n"
                              "comptime { _ = &tag; }"})
    send, recv = alternating()
    assert len(p.classes) == 2
    assert len(set(zip(p.class_of.ravel().tolist(), send.ravel().tolist()))) == 2
    # (an initial value of zero is kept as None)
    assert sorted(tuple(pe.symbol("tag").init or (0,)) for pe in p.classes) == [(0,), (1,)]
    # the receive color is still a per-PE value within each class
    np.testing.assert_array_equal(dict(p.tables)["pe:recv_color"], recv)
    assert "pe:send_color" not in dict(p.tables)
    check_relay(p, inputs())


def test_a_data_task_bound_to_a_color_param_splits_by_it(tmp_path):
    # on wse2 a data task's ID is its color: the binding needs the number (colors 2 and 3
    # here: memcpy keeps input queue 0, and with it data task ID 0)
    p = copy_relay(tmp_path, {"fn relay() void {": """
var got: u32 = 0;
task on_wavelet(w: f32) void { got += 1; }
comptime { @bind_data_task(on_wavelet, @get_data_task_id(send_color)); }
fn relay() void {"""}, {"@get_color(0)": "@get_color(2)", "@get_color(1)": "@get_color(3)"})
    assert len(p.classes) == 2
    assert sorted(t.color for pe in p.classes for t in pe.tasks if t.kind == "data") == [2, 3]
    check_relay(p, inputs())


WSE3_PE = """
param memcpy_params;
param n: u16;
param width: u16;
param px: u16;
param send_color: color;
param recv_color: color;

const sys = @import_module("<memcpy/memcpy>", memcpy_params);

var x = @zeros([n]f32);
var sum = @zeros([n]f32);
var x_ptr: [*]f32 = &x;
var sum_ptr: [*]f32 = &sum;
var i: u16 = 0;

const in_q = @get_input_queue(2);
const out_q = @get_output_queue(3);
const sum_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |k|{n} -> sum[k] });
const to_east = @get_dsd(fabout_dsd, .{ .extent = n, .output_queue = out_q });

fn pass_on() void {
  if (px + 1 < width) {
    @fmovs(to_east, sum_dsd);
  }
  sys.unblock_cmd_stream();
}

// one wavelet of the west neighbour's sums at a time, on this PE's receive color
task from_west(w: f32) void {
  sum[i] = w + x[i];
  i += 1;
  if (i == n) {
    pass_on();
  }
}

fn relay() void {
  if (px == 0) {
    for (@range(u16, n)) |k| { sum[k] = x[k]; }
    pass_on();
  }
}

comptime {
  @initialize_queue(in_q, .{ .color = recv_color });
  @initialize_queue(out_q, .{ .color = send_color });
  @bind_data_task(from_west, @get_data_task_id(in_q));
  @export_symbol(x_ptr, "x");
  @export_symbol(sum_ptr, "sum");
  @export_symbol(relay);
}
"""


def test_wse3_queues_and_a_data_task_on_per_pe_colors_are_one_class(tmp_path):
    # on wse3 a data task is bound to an input queue; the queue's color may be per PE
    write(tmp_path, {"layout.csl": (RELAY / "layout.csl").read_text(), "pe.csl": WSE3_PE})
    p = compile_csl(tmp_path / "layout.csl", params={"width": W, "height": H, "n": N},
                    memcpy=True, arch="wse3")
    assert len(p.classes) == 1
    (task,) = [t for t in p.classes[0].tasks if t.kind == "data"]
    assert task.color == ir.PeValue("pe:recv_color", DType.u16)
    check_relay(p, inputs())


# ------------------------------------------------------------------------------------------------
# The Python API


def relay_pe(n, width, send_color, recv_color, queues=False):
    """The relay; with `queues`, its fabric DSDs name queues initialised with the colors (as
    on wse3)."""
    x = csl.var("x", csl.f32[n])
    total = csl.var("sum", csl.f32[n])
    x_dsd = csl.get_dsd(csl.mem1d_dsd, tensor_access=csl.tensor_access(lambda i: x[i], n))
    sum_dsd = csl.get_dsd(csl.mem1d_dsd, tensor_access=csl.tensor_access(lambda i: total[i], n))
    if queues:
        iq, oq = csl.get_input_queue(2), csl.get_output_queue(3)
        csl.initialize_queue(iq, color=recv_color)
        csl.initialize_queue(oq, color=send_color)
        from_west = csl.get_dsd(csl.fabin_dsd, extent=n, input_queue=iq)
        to_east = csl.get_dsd(csl.fabout_dsd, extent=n, output_queue=oq)
    else:
        from_west = csl.get_dsd(csl.fabin_dsd, extent=n, fabric_color=recv_color)
        to_east = csl.get_dsd(csl.fabout_dsd, extent=n, fabric_color=send_color)

    @csl.fn
    def relay():
        with csl.if_(csl.pe_x() == 0):
            csl.fmovs(sum_dsd, x_dsd)
        with csl.else_():
            csl.fadds(sum_dsd, from_west, x_dsd)
        with csl.if_(csl.pe_x() + 1 < width):
            csl.fmovs(to_east, sum_dsd)
        csl.unblock_cmd_stream()

    csl.export_symbol(x, "x")
    csl.export_symbol(total, "sum")
    csl.export_symbol(relay)


def relay_layout(w, h, n, **extra):
    csl.set_rectangle(w, h)
    even, odd = csl.get_color(0), csl.get_color(1)
    for x in range(w):
        send, recv = (even, odd) if x % 2 == 0 else (odd, even)
        for y in range(h):
            csl.set_tile_code(x, y, relay_pe, dict(n=n, width=w, send_color=send,
                                                   recv_color=recv, **extra))
            if x + 1 < w:
                csl.set_color_config(x, y, send, rx=["RAMP"], tx=["EAST"])
            if x > 0:
                csl.set_color_config(x, y, recv, rx=["WEST"], tx=["RAMP"])
    csl.export_name("x", csl.pointer(csl.f32), True)
    csl.export_name("sum", csl.pointer(csl.f32), False)
    csl.export_name("relay", csl.fn_type())


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_python_api_alternating_colors_are_one_class(arch):
    p = csl.compile(lambda: relay_layout(W, H, N, queues=arch == "wse3"), arch=arch)
    assert len(p.classes) == 1
    send, recv = alternating()
    np.testing.assert_array_equal(dict(p.tables)["relay_pe:send_color"], send)
    np.testing.assert_array_equal(dict(p.tables)["relay_pe:recv_color"], recv)
    check_relay(p, inputs())


@pytest.mark.parametrize("reserved", [21, 23])
def test_python_api_a_memcpy_color_param_is_still_refused(reserved):
    def layout():
        csl.set_rectangle(2, 1)
        for x in range(2):
            csl.set_tile_code(x, 0, relay_pe, dict(n=2, width=2, send_color=csl.get_color(
                (0, reserved)[x]), recv_color=csl.get_color(1)))
        csl.export_name("relay", csl.fn_type())

    with pytest.raises(Exception, match=f"color {reserved} is reserved by memcpy"):
        csl.compile(layout)


@pytest.mark.slow
def test_750x994_alternating_colors_are_one_class():
    p = compile_csl(RELAY / "layout.csl", params={"width": 750, "height": 994, "n": 2},
                    memcpy=True)
    assert len(p.classes) == 1 and (p.class_of == 0).all()
    send, recv = alternating(750, 994)
    np.testing.assert_array_equal(dict(p.tables)["pe:send_color"], send)
    np.testing.assert_array_equal(dict(p.tables)["pe:recv_color"], recv)
    e = Engine(p)
    assert e.inboxes == [0, 1] and e.outboxes == [0, 1]
