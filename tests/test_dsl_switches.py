"""Switches, teardown and filters on the Python API's color configs (`csl.set_color_config`,
`csl.set_local_color_config`) and a fabout's `advance_switch`: the same rules and IR as CSL's
(`wsejax.frontend.switches`), and programs run in check mode (engine and reference compared
after every command) whose results are checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from harness import started

from wsejax import dsl as csl
from wsejax import ir
from wsejax.errors import LayoutError, ProgramError

ARCHES = ["wse2", "wse3"]
C = 4


def row(steps, switches=None, filt=None, local=False, arch="wse2"):
    """A 3-PE row on color C: PE 1 runs `steps(out, ctl, adv)` (fabouts: data, control,
    data with advance_switch) then unblocks; PEs 0 and 2 record each data wavelet in `got`
    (`n` of them). PE 1's config routes RAMP to EAST at position 0, with `switches`; PE 2's
    config has the filter `filt`."""

    def pe(x):
        got = csl.var("got", csl.u32[6])
        n = csl.var("n", csl.u32)
        oq, iq = csl.get_output_queue(2), csl.get_input_queue(2)
        color = csl.get_color(C)
        if arch == "wse3":
            csl.initialize_queue(oq if x == 1 else iq, color=color)
        if x == 1:
            if local:
                csl.set_local_color_config(color, rx=csl.RAMP, tx=csl.EAST, switches=switches)
            kw = dict(fabric_color=color, output_queue=oq) if arch == "wse2" else \
                dict(output_queue=oq)
            out = csl.get_dsd(csl.fabout_dsd, extent=1, **kw)
            ctl = csl.get_dsd(csl.fabout_dsd, extent=1, control=True, **kw)
            adv = csl.get_dsd(csl.fabout_dsd, extent=1, advance_switch=True, **kw)

            @csl.fn
            def go():
                steps(out, ctl, adv)
                csl.unblock_cmd_stream()
        else:
            def rx(v: csl.u32):
                got[n] = v
                n.set(n + 1)

            rx.__name__ = rx.__qualname__ = "rx"
            tid = csl.get_data_task_id(color if arch == "wse2" else iq)
            csl.bind_data_task(csl.task(rx), tid)

            @csl.fn
            def go():
                csl.unblock_cmd_stream()
        csl.export_symbol(got)
        csl.export_symbol(go)

    def layout():
        csl.set_rectangle(3, 1)
        for x in range(3):
            csl.set_tile_code(x, 0, pe, {"x": x})
        csl.set_color_config(0, 0, C, rx=csl.EAST, tx=csl.RAMP)
        csl.set_color_config(2, 0, C, rx=csl.WEST, tx=csl.RAMP, filter=filt)
        if not local:
            csl.set_color_config(1, 0, C, rx=csl.RAMP, tx=csl.EAST, switches=switches)
        csl.export_name("got", csl.pointer(csl.u32), True)
        csl.export_name("go", csl.fn_type())

    return csl.compile(layout, arch=arch)


def received(program) -> np.ndarray:
    r = started(program, check=True)
    r.launch("go")
    out = np.zeros(3 * 6, np.uint32)
    r.memcpy_d2h(out, r.get_id("got"), 0, 0, 3, 1, 6, streaming=False)
    return out.reshape(3, 6)


ADV = csl.control.encode_single_payload(csl.control.opcode.SWITCH_ADV, True, None, 0)


def steer(out, ctl, adv):
    csl.mov32(out, csl.as_(csl.u32, 1))
    csl.mov32(ctl, csl.as_(csl.u32, ADV))
    csl.mov32(out, csl.as_(csl.u32, 2))
    csl.mov32(ctl, csl.as_(csl.u32, ADV))
    csl.mov32(out, csl.as_(csl.u32, 3))


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("local", [False, True])
def test_a_control_wavelet_moves_the_switch(arch, local):
    got = received(row(steer, {"pos1": {"tx": csl.WEST}, "ring_mode": True}, local=local,
                       arch=arch))
    np.testing.assert_array_equal(got[0], [2, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[2], [1, 3, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_current_switch_pos_and_advance_switch(arch):
    # starts at pos1 (WEST); the advancing wavelet leaves WEST, then the switch is at pos2
    def steps(out, ctl, adv):
        csl.mov32(adv, csl.as_(csl.u32, 1))
        csl.mov32(out, csl.as_(csl.u32, 2))

    got = received(row(steps, {"pos1": {"tx": csl.WEST}, "pos2": {"tx": csl.EAST},
                               "current_switch_pos": 1}, arch=arch))
    np.testing.assert_array_equal(got[0], [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(got[2], [2, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("arch", ARCHES)
def test_a_counter_filter_on_the_receiver(arch):
    # counter: 1, 2 pass (<= max_counter), 3 and 4 (wrapping at limit1) are dropped, 5 passes
    def steps(out, ctl, adv):
        for v in (1, 2, 3, 4, 5):
            csl.mov32(out, csl.as_(csl.u32, v))

    got = received(row(steps, filt={"kind": "counter", "count_data": True, "limit1": 4,
                                    "max_counter": 2}, arch=arch))
    np.testing.assert_array_equal(got[2], [1, 2, 5, 0, 0, 0])


def test_the_configs_become_the_csl_ir():
    p = row(steer, {"pos1": {"tx": csl.WEST}, "pos2": {"rx": csl.WEST, "tx": csl.RAMP},
                    "pop_mode": "always_pop", "ring_mode": True},
            filt={"kind": "range", "min_idx": 1, "max_idx": 3})
    assert dict(p.switches)[(1, 0, C)] == ir.Switches(
        ((None, ("WEST",)), (("WEST",), ("RAMP",)), None), 0, True, "always_pop", False)
    assert dict(p.filters)[(2, 0, C)] == ir.Filter("range", min_idx=1, max_idx=3)


@pytest.mark.parametrize("switches, filt, arch, err, message", [
    ({"pos1": {"rx": [csl.WEST, csl.EAST]}}, None, "wse2", LayoutError,
     "@set_color_config pos1.rx takes a single direction, got 2"),
    ({"pos1": {"tx": csl.WEST}, "current_switch_pos": 2}, None, "wse2", LayoutError,
     "@set_color_config: .current_switch_pos = 2 names an invalid position"),
    ({"pop_mode": "pop_sometimes"}, None, "wse2", LayoutError,
     "@set_color_config: .pop_mode takes one of"),
    ({"ring": True}, None, "wse2", LayoutError, "switches takes a dict of pos1"),
    (None, {"kind": "counting"}, "wse2", LayoutError, "filter kind .counting does not exist"),
    (None, {"kind": "counter", "limit1": 70000}, "wse2", LayoutError,
     ".limit1 = 70000 is out of range (0 to 65535)"),
])
def test_bad_configs_are_refused_with_the_csl_messages(switches, filt, arch, err, message):
    with pytest.raises(err, match=None) as e:
        row(steer, switches, filt, arch=arch)
    assert message in str(e.value)


def test_wse3_switches_only_on_some_colors():
    def layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, lambda: None)
        csl.set_color_config(0, 0, 10, rx=csl.RAMP, tx=csl.EAST,
                             switches={"pos1": {"tx": csl.WEST}})

    with pytest.raises(LayoutError, match="color 10 cannot have switches on wse3"):
        csl.compile(layout, arch="wse3")


def test_advance_switch_belongs_to_fabout():
    def pe():
        csl.get_dsd(csl.fabin_dsd, extent=1, fabric_color=csl.get_color(3),
                    input_queue=csl.get_input_queue(2), advance_switch=True)

    def layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, pe)

    with pytest.raises(ProgramError, match="fabin_dsd has no property 'advance_switch'"):
        csl.compile(layout)
