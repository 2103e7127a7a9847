"""The Python API's `on_control=` of DSD operations, `csl.dfilt` and
`csl.tile_config.color_config`: the same IR and rules as CSL's (`tests/test_on_control.py`,
`tests/test_dfilt.py`, `tests/test_color_config.py`), programs run in check mode (engine and
reference compared after every command) whose results are written by hand, and the same bad
input refused with CSL's text."""

from __future__ import annotations

import numpy as np
import pytest
from harness import started

from wsejax import dsl as csl
from wsejax import ir
from wsejax.errors import ProgramError

ARCHES = ["wse2", "wse3"]
C = 4
CTL = 40


def _fabric(kind, arch, color, queue, extent, **kw):
    key = "input_queue" if kind == csl.fabin_dsd else "output_queue"
    where = {key: queue} if arch == "wse3" else {key: queue, "fabric_color": color}
    return csl.get_dsd(kind, extent=extent, **where, **kw)


def pair(receiver, sends, arch):
    """PE (0, 0) sends `sends` east on color C (a number: a data wavelet; "C": a control
    wavelet naming control task CTL); PE (1, 0) runs `receiver(arch)`. Both export `out`
    ([8]u32) and `main`."""

    def sender():
        out = csl.var("out", csl.zeros(csl.u32[8]))
        oq = csl.get_output_queue(2)
        if arch == "wse3":
            csl.initialize_queue(oq, color=csl.get_color(C))
        data = _fabric(csl.fabout_dsd, arch, csl.get_color(C), oq, 1)
        marks = _fabric(csl.fabout_dsd, arch, csl.get_color(C), oq, 1, control=True)
        payload = csl.control.encode_control_task_payload(csl.get_control_task_id(CTL))

        @csl.fn
        def main():
            for v in sends:
                if v == "C":
                    csl.mov32(marks, csl.as_(csl.u32, payload))
                else:
                    csl.mov32(data, csl.as_(csl.u32, v))
            csl.unblock_cmd_stream()

        csl.export_symbol(out)
        csl.export_symbol(main)

    def layout():
        csl.set_rectangle(2, 1)
        csl.set_tile_code(0, 0, sender)
        csl.set_tile_code(1, 0, lambda: receiver(arch))
        csl.set_color_config(0, 0, C, rx=csl.RAMP, tx=csl.EAST)
        csl.set_color_config(1, 0, C, rx=csl.WEST, tx=csl.RAMP)
        csl.export_name("out", csl.pointer(csl.u32), True)
        csl.export_name("main", csl.fn_type())

    return csl.compile(layout, arch=arch)


def receiver_out(program) -> np.ndarray:
    r = started(program, check=True)
    r.launch("main")
    out = np.zeros(16, np.uint32)
    r.memcpy_d2h(out, r.get_id("out"), 0, 0, 2, 1, 8, streaming=False)
    return out[8:]


def receiver_parts(arch):
    """What both receivers share: `out`, `marks` (100 per run of control task CTL), input
    queue 2 on color C."""
    out = csl.var("out", csl.zeros(csl.u32[8]))
    marks = csl.var("marks", csl.u32)
    iq = csl.get_input_queue(2)
    if arch == "wse3":
        csl.initialize_queue(iq, color=csl.get_color(C))

    def ctl_task(x: csl.u16):
        marks.set(marks + 100)

    ctl_task.__name__ = ctl_task.__qualname__ = "ctl_task"
    csl.bind_control_task(csl.task(ctl_task), csl.get_control_task_id(CTL))
    csl.export_symbol(out)
    return out, marks, iq


# ------------------------------------------------------------------------------------------
# on_control: the sender sends 11 12 13 C 14 15; the first op (8 wavelets asked for) stops at
# the control wavelet, a second op takes the rest. out[0..4]: the first op's, out[4..6]: the
# second's, out[6]: 1 per run of `stopped`, 100 per run of control task CTL.

ON_CONTROL_EXPECT = [11, 12, 13, 0, 14, 15, 1, 0]


def on_control_receiver(start):
    def receiver(arch):
        out, marks, iq = receiver_parts(arch)
        buf = csl.var("buf", csl.zeros(csl.u32[8]))
        in_dsd = _fabric(csl.fabin_dsd, arch, csl.get_color(C), iq, 8)
        rest = _fabric(csl.fabin_dsd, arch, csl.get_color(C), iq, 2)
        b = csl.get_dsd(csl.mem1d_dsd, base_address=buf, extent=8)
        r = csl.get_dsd(csl.mem1d_dsd, tensor_access=csl.tensor_access(lambda i: out[i + 4], 2))

        @csl.task
        def done():
            for i in range(4):
                out[i] = buf[i]
            out[6] = marks
            csl.unblock_cmd_stream()

        @csl.task
        def stopped():
            marks.set(marks + 1)
            csl.mov32(r, rest, async_=True, activate=done)

        csl.bind_local_task(stopped, csl.get_local_task_id(10))
        csl.bind_local_task(done, csl.get_local_task_id(11))

        @csl.fn
        def main():
            start(b, in_dsd, stopped)

        csl.export_symbol(main)
    return receiver


SENDS = [11, 12, 13, "C", 14, 15]


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("how", ["activate", "sync"])
def test_on_control_activate_ends_the_op_and_runs_its_task(arch, how):
    def start(b, in_dsd, stopped):
        csl.mov32(b, in_dsd, async_=how == "activate", on_control={"activate": stopped})

    program = pair(on_control_receiver(start), SENDS, arch)
    np.testing.assert_array_equal(receiver_out(program), ON_CONTROL_EXPECT)


@pytest.mark.parametrize("arch", ARCHES)
def test_on_control_unblock_and_terminate(arch):
    def unblocking(b, in_dsd, stopped):
        csl.block(stopped)
        csl.activate(stopped)
        csl.mov32(b, in_dsd, async_=True, on_control={"unblock": stopped})

    def terminating(b, in_dsd, stopped):
        csl.mov32(b, in_dsd, async_=True, on_control={"terminate": True}, activate=stopped)

    for start in (unblocking, terminating):
        program = pair(on_control_receiver(start), SENDS, arch)
        np.testing.assert_array_equal(receiver_out(program), ON_CONTROL_EXPECT)


def test_on_control_becomes_the_csl_ir():
    def start(b, in_dsd, stopped):
        csl.mov32(b, in_dsd, async_=True, on_control={"activate": stopped})

    program = pair(on_control_receiver(start), SENDS, "wse2")
    ops = [s for f in program.classes[1].functions for s in ir.walk_stmts(f.body)
           if isinstance(s, ir.DsdOp) and s.config and s.config.on_control]
    assert [op.config.on_control for op in ops] == [ir.OnControl("activate",
                                                                 ir.Const(10, csl.u16))]


# ------------------------------------------------------------------------------------------
# dfilt: the sender sends 11 12 C 13 14 C 15 16; the filter (extent 2) drops data until it has
# seen both control wavelets, then an op reads the next two. out[0..2]: what that op read,
# out[2]: 1 per run of `after`, 100 per run of control task CTL.

def dfilt_receiver(arch):
    out, marks, iq = receiver_parts(arch)
    filt = _fabric(csl.fabin_dsd, arch, csl.get_color(C), iq, 2)
    rest = _fabric(csl.fabin_dsd, arch, csl.get_color(C), iq, 2)
    r = csl.get_dsd(csl.mem1d_dsd, base_address=out, extent=2)

    @csl.task
    def done():
        out[2] = marks
        csl.unblock_cmd_stream()

    @csl.task
    def after():
        marks.set(marks + 1)
        csl.mov32(r, rest, async_=True, activate=done)

    csl.bind_local_task(after, csl.get_local_task_id(10))
    csl.bind_local_task(done, csl.get_local_task_id(11))

    @csl.fn
    def main():
        csl.dfilt(filt, async_=True, activate=after)

    csl.export_symbol(main)


@pytest.mark.parametrize("arch", ARCHES)
def test_dfilt_drops_data_until_its_control_wavelets_are_seen(arch):
    program = pair(dfilt_receiver, [11, 12, "C", 13, 14, "C", 15, 16], arch)
    np.testing.assert_array_equal(receiver_out(program), [15, 16, 1, 0, 0, 0, 0, 0])
    ops = [s for f in program.classes[1].functions for s in ir.walk_stmts(f.body)
           if isinstance(s, ir.DsdOp) and s.op == "dfilt"]
    assert len(ops) == 1 and ops[0].srcs == () and ops[0].config.async_


# ------------------------------------------------------------------------------------------
# color_config: PE 0 sends 1 and 2 east along a row of three PEs on color C; PEs 1 and 2
# record what reaches them in `got`. PE 1's main runs `edit` before the wavelets reach it.

def row(edit, arch="wse2"):
    def pe(x):
        got = csl.var("got", csl.u32[6])
        n = csl.var("n", csl.u32)
        oq, iq = csl.get_output_queue(2), csl.get_input_queue(2)
        color = csl.get_color(C)
        if arch == "wse3":
            csl.initialize_queue(oq if x == 0 else iq, color=color)
        if x == 0:
            data = _fabric(csl.fabout_dsd, arch, color, oq, 1)
        else:
            def rx(v: csl.u32):
                got[n] = v
                n.set(n + 1)

            rx.__name__ = rx.__qualname__ = "rx"
            csl.bind_data_task(csl.task(rx), csl.get_data_task_id(color if arch == "wse2"
                                                                  else iq))

        @csl.fn
        def main():
            if x == 0:
                csl.mov32(data, csl.as_(csl.u32, 1))
                csl.mov32(data, csl.as_(csl.u32, 2))
            if x == 1:
                edit(csl.tile_config.color_config, color)
            csl.unblock_cmd_stream()

        csl.export_symbol(got)
        csl.export_symbol(main)

    def layout():
        csl.set_rectangle(3, 1)
        for x in range(3):
            csl.set_tile_code(x, 0, pe, {"x": x})
        csl.set_color_config(0, 0, C, rx=csl.RAMP, tx=csl.EAST)
        csl.set_color_config(1, 0, C, rx=csl.WEST, tx=csl.EAST)
        csl.set_color_config(2, 0, C, rx=csl.WEST, tx=csl.RAMP)
        csl.export_name("got", csl.pointer(csl.u32), True)
        csl.export_name("main", csl.fn_type())

    return csl.compile(layout, arch=arch)


def received(program) -> np.ndarray:
    r = started(program, check=True)
    r.launch("main")
    out = np.zeros(18, np.uint32)
    r.memcpy_d2h(out, r.get_id("got"), 0, 0, 3, 1, 6, streaming=False)
    return out.reshape(3, 6)


def _nothing(cc, c):
    pass


def _reset(cc, c):
    cc.reset_routes(c, rx=csl.WEST, tx=csl.RAMP)


def _both(cc, c):
    cc.reset_routes(cc.get_color_config_addr(c), rx=[csl.WEST], tx=[csl.RAMP, csl.EAST])


def _set(cc, c):
    cc.set_io_direction(c, cc.fabric_io.TX_RAMP)


def _set_clear(cc, c):
    cc.set_io_direction(cc.get_color_config_addr(c), cc.fabric_io.TX_RAMP)
    cc.clear_io_direction(c, cc.fabric_io.TX_EAST)


def _toggle(cc, c):
    # TX_EAST off, TX_RAMP on, off and on again: RAMP alone
    cc.toggle_io_direction(c, cc.fabric_io.TX_EAST)
    for _ in range(3):
        cc.toggle_io_direction(c, cc.fabric_io.TX_RAMP)


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("edit, at_1, at_2", [
    (_nothing, [], [1, 2]),
    (_reset, [1, 2], []),
    (_both, [1, 2], [1, 2]),
    (_set, [1, 2], [1, 2]),
    (_set_clear, [1, 2], []),
    (_toggle, [1, 2], []),
])
def test_color_config_rewrites_the_route_at_the_calling_pe(arch, edit, at_1, at_2):
    got = received(row(edit, arch))
    pad = [0] * 6
    assert got.tolist() == [pad, (at_1 + pad)[:6], (at_2 + pad)[:6]]


def test_color_config_becomes_the_csl_ir():
    program = row(_set_clear)
    edits = [s for f in program.classes[1].functions for s in ir.walk_stmts(f.body)
             if isinstance(s, ir.RouteEdit)]
    assert edits == [ir.RouteEdit(C, "set", 0, 1 << 4), ir.RouteEdit(C, "clear", 0, 1 << 2)]
    assert C in program.classes[1].teardown_colors


# ------------------------------------------------------------------------------------------
# The same bad input as in CSL, refused with CSL's text

def _mem_on_control(b, in_dsd, stopped):
    csl.mov32(b, b, on_control={"terminate": True})


@pytest.mark.parametrize("start, message", [
    (_mem_on_control, "@mov32: .on_control needs a fabin_dsd source: it acts on a control "
     "wavelet arriving on the operation's fabric input"),
    (lambda b, i, s: csl.mov32(b, i, async_=True, on_control={"terminate": False}),
     "@mov32: .on_control: .terminate takes true, got false"),
    (lambda b, i, s: csl.mov32(b, i, async_=True, on_control={"stop": True}),
     "@mov32: .on_control takes one of .{ .terminate = true }, .{ .activate = task }, "
     ".{ .unblock = task }"),
    (lambda b, i, s: csl.dfilt(b, async_=True),
     "@dfilt takes a fabin_dsd or a dsr_src1 loaded with one, got a mem1d_dsd"),
    (lambda b, i, s: csl.dfilt(i),
     "@dfilt runs asynchronously: give it .{ .async = true } (or load its register with "
     ".async = true)"),
    (lambda b, i, s: csl.dfilt(i, async_=True, index=3),
     "@dfilt: option .index does not apply to a data filter"),
    (lambda b, i, s: csl.dfilt(i, async_=True, on_control={"terminate": True}),
     "@dfilt: option .on_control does not apply to a data filter"),
])
def test_bad_ops_are_refused_with_the_csl_text(start, message):
    with pytest.raises(ProgramError) as err:
        pair(on_control_receiver(start), SENDS, "wse3")
    assert message in str(err.value)


@pytest.mark.parametrize("edit, arch, message", [
    (lambda cc, c: cc.set_io_direction(30, cc.fabric_io.TX_RAMP), "wse2",
     "color 30 is out of range (0 to 23)"),
    (lambda cc, c: cc.set_io_direction(c, "SIDEWAYS"), "wse2",
     "color_config.set_io_direction takes a color_config.fabric_io direction (.TX_EAST, "
     ".RX_RAMP, ...), got 'SIDEWAYS'"),
    (lambda cc, c: cc.reset_routes(c, rx=csl.WEST, tx=3), "wse2",
     "color_config.reset_routes: .tx takes a direction or an array of directions, got 3"),
    (lambda cc, c: cc.reset_routes(c, rx=[csl.WEST, csl.EAST], tx=csl.RAMP), "wse3",
     "color_config.reset_routes: on wse3 an .rx array holds a single direction "
     "([1]direction), got 2"),
])
def test_bad_color_config_calls_are_refused_with_the_csl_text(edit, arch, message):
    with pytest.raises(ProgramError) as err:
        row(edit, arch)
    assert message in str(err.value)


def test_wse2_reset_routes_takes_an_rx_list():
    got = received(row(lambda cc, c: cc.reset_routes(c, rx=[csl.WEST, csl.EAST],
                                                     tx=csl.RAMP)))
    assert got[1].tolist() == [1, 2, 0, 0, 0, 0]
