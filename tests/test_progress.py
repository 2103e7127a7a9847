"""The progress line of long fabric runs: shown only on a terminal, and a command run in pieces
(with the line between them) ends in the same state as one run in a single loop."""

import io
import sys

import numpy as np
import pytest

from wsejax import MemcpyDataType, MemcpyOrder, SdkRuntime, progress
from wsejax.csl import compile_csl
from wsejax.engine import core as engine_core
from wsejax.errors import DeadlockError
from wsejax.progress import RATE, Progress

ROW, B32 = MemcpyOrder.ROW_MAJOR, MemcpyDataType.MEMCPY_32BIT


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    return now


def test_the_line_is_written_over_on_a_terminal_at_most_every_refresh(clock):
    out = Tty()
    line = Progress("run", 0, stream=out)
    assert line.enabled
    line.show("tick 1200 (0.8 s)")
    clock[0] += 1 / RATE / 2
    line.show("tick 1300 (0.9 s)")              # too soon after the last refresh
    clock[0] += 1 / RATE
    line.show("tick 40 (1.1 s)")
    line.close()
    assert out.getvalue() == ("\rrun: tick 1200 (0.8 s)\rrun: tick 40 (1.1 s)  "
                              "\r" + " " * 22 + "\r")


def test_nothing_is_written_when_the_stream_is_no_terminal(clock):
    out = io.StringIO()
    line = Progress("run", 0, stream=out)
    assert not line.enabled
    clock[0] += 10
    line.show("tick 1 (10.0 s)")
    line.close()
    assert out.getvalue() == ""


W, N = 4, 12     # the chain's PEs, the wavelets streamed through it

CHAIN_LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 4, .height = 1,
  .MEMCPYH2D_1 = @get_color(2), .MEMCPYD2H_1 = @get_color(3) });
const a: color = @get_color(5);
const b: color = @get_color(6);
layout {
  @set_rectangle(4, 1);
  for (@range(u16, 4)) |x| {
    const send = if (x % 2 == 0) a else b;
    const recv = if (x % 2 == 0) b else a;
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x), .first = x == 0,
                                      .last = x == 3, .send = send, .recv = recv });
    if (x < 3) { @set_color_config(x, 0, send, .{ .routes = .{ .rx = .{RAMP}, .tx = .{EAST} } }); }
    if (x > 0) { @set_color_config(x, 0, recv, .{ .routes = .{ .rx = .{WEST}, .tx = .{RAMP} } }); }
  }
}
"""

# each PE adds 1 to every value on its way east
CHAIN_PE = """
param memcpy_params;
param first: bool;
param last: bool;
param send: color;
param recv: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const in_color = if (first) sys.MEMCPYH2D_1 else recv;
const out_color = if (last) sys.MEMCPYD2H_1 else send;
const iq = @get_input_queue(2);
const oq = @get_output_queue(3);
const in_dsd = @get_dsd(fabin_dsd, .{ .extent = 12, .fabric_color = in_color, .input_queue = iq });
const out_dsd = @get_dsd(fabout_dsd, .{ .extent = 12, .fabric_color = out_color,
                                        .output_queue = oq });
const start_id: local_task_id = @get_local_task_id(10);
task start() void {
  @fadds(out_dsd, in_dsd, 1.0, .{ .async = true });
}
comptime {
  @bind_local_task(start, start_id);
  @activate(start_id);
  if (@is_arch("wse2")) {
    @block(in_color);
  } else {
    @initialize_queue(iq, .{ .color = in_color });
    @initialize_queue(oq, .{ .color = out_color });
  }
}
"""


def _chain(tmp_path, arch, shown, monkeypatch, loop_limit=None):
    """What the chain streams out, the runtime, and what went to the terminal."""
    out = Tty()
    if shown:
        # every piece one tick long, each followed by a refresh of the line
        monkeypatch.setattr(progress, "RATE", float("inf"))
        monkeypatch.setattr(engine_core, "RATE", float("inf"))
        monkeypatch.setattr(sys, "stderr", out)
    (tmp_path / "layout.csl").write_text(CHAIN_LAYOUT)
    (tmp_path / "pe.csl").write_text(CHAIN_PE)
    program = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    runner = SdkRuntime(program, loop_limit=loop_limit)
    runner.load()
    runner.run()
    x = np.arange(N, dtype=np.float32) * 0.5
    y = np.zeros(N, np.float32)
    kw = dict(order=ROW, data_type=B32, nonblock=False)
    runner.memcpy_h2d(2, x, 0, 0, 1, 1, N, streaming=True, **kw)
    runner.memcpy_d2h(y, 3, W - 1, 0, 1, 1, N, streaming=True, **kw)
    np.testing.assert_array_equal(y, x + W)
    return y, runner, out.getvalue()


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_run_in_pieces_ends_as_one_loop_does(tmp_path, arch, monkeypatch):
    y1, r1, shown1 = _chain(tmp_path, arch, False, monkeypatch)
    y2, r2, shown2 = _chain(tmp_path, arch, True, monkeypatch)
    np.testing.assert_array_equal(y1, y2)
    assert shown1 == ""
    assert "\rrun: tick 1 (" in shown2 and "\rrun: tick 3 (" in shown2
    assert shown2.endswith("\r")
    f1, f2 = r1.state.fab, r2.state.fab
    assert int(f1.ticks) == int(f2.ticks) > 3
    assert int(f1.wavelets) == int(f2.wavelets)
    np.testing.assert_array_equal(np.asarray(f1.runs), np.asarray(f2.runs))
    for slot in r1.state.mem:
        np.testing.assert_array_equal(np.asarray(r1.state.mem[slot]),
                                      np.asarray(r2.state.mem[slot]))


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_run_in_pieces_stops_at_the_tick_limit_as_one_loop_does(tmp_path, arch, monkeypatch):
    # one tick a command: the first PE takes 8 of the 12 wavelets, then the command stops
    texts = []
    for shown in (False, True):
        with pytest.raises(DeadlockError) as err:
            _chain(tmp_path, arch, shown, monkeypatch, loop_limit=1)
        texts.append(str(err.value))
    assert "PE (0, 0): took 8 of 12 wavelets" in texts[0], texts[0]
    assert texts[0] == texts[1]
