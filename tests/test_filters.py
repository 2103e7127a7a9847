"""Color filters meeting control wavelets (spec 6.3, `wsejax.engine.filters`): a counter that
counts control wavelets (`.count_control`), one that passes a control wavelet only at its
maximum (`.filter_control`), and a range filter, which passes every control wavelet. The
sender interleaves data and control wavelets on one color; the receiver logs what reaches
its CE, in order. Engine and reference run every program; the logs are written by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import (
    assert_located,
    compile_files,
    link_layout,
    link_sender,
    receiver_outputs,
)

from wsejax import CslError

SENDER = link_sender("SEND", "log")

# Data wavelet v is logged as v, control wavelet with data t as 1000 + t; after `M` entries
# the receiver finishes.
RECEIVER = """
param memcpy_params;
param link: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const iq = @get_input_queue(2);
var log = @zeros([8]u32);
var log_ptr: [*]u32 = &log;
var n: u16 = 0;
const data_id: data_task_id = if (@is_arch("wse2")) @get_data_task_id(link)
                              else @get_data_task_id(iq);
fn note(v: u32) void {
  log[n] = v;
  n += 1;
  if (n == M) { sys.unblock_cmd_stream(); }
}
task take(x: u32) void { note(x); }
task mark(tag: u16) void { note(1000 + @as(u32, tag)); }
fn main() void {}
comptime {
  @bind_data_task(take, data_id);
  @bind_control_task(mark, @get_control_task_id(40));
  if (@is_arch("wse3")) { @initialize_queue(iq, .{ .color = link }); }
  @export_symbol(main);
  @export_symbol(log_ptr, "log");
}
"""


def send_lines(items: str) -> str:
    """`"d1 c1 d2"`: data wavelet 1, control wavelet with data 1, data wavelet 2."""
    out = []
    for it in items.split():
        v = int(it[1:])
        if it[0] == "d":
            out.append(f"  @mov32(data, @as(u32, {v}));")
        else:
            out.append(f"  @mov32(marks, ctrl.encode_single_payload(ctrl.opcode.NOP, false, "
                       f"@get_control_task_id(40), {v}));")
    return "\n".join(out)


def logs(tmp_path, arch: str, items: str, filt: str, m: int, receiver: str = RECEIVER):
    """What the receiver logged, from the engine and from the reference (8 words each)."""
    prog = compile_files(tmp_path, {
        "layout.csl": link_layout("log", "u32", ",\n    .filter = " + filt),
        "sender.csl": SENDER.replace("SEND", send_lines(items)),
        "receiver.csl": receiver.replace("M)", f"{m})")}, arch)
    return receiver_outputs(prog, "log", 8)


def padded(values) -> np.ndarray:
    return np.array(list(values) + [0] * (8 - len(values)), np.uint32)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_counter_counting_control_wavelets_passes_them_and_drops_data(tmp_path, arch):
    filt = """.{ .kind = .{ .counter = true }, .count_data = true, .count_control = true,
                 .limit1 = 4, .max_counter = 2 }"""
    # counter: d1 1, c1 2, d2 3 (dropped), d3 4 (dropped, wraps), c2 1, d4 2, d5 3 (dropped)
    got, want = logs(tmp_path, arch, "d1 c1 d2 d3 c2 d4 d5", filt, m=4)
    expect = padded([1, 1001, 1002, 4])
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(want, expect)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_filter_control_passes_a_control_wavelet_only_at_the_maximum(tmp_path, arch):
    filt = """.{ .kind = .{ .counter = true }, .count_control = true, .filter_control = true,
                 .limit1 = 3, .max_counter = 2 }"""
    # data is not counted and passes (counter <= 2); control: c1 1 (dropped), c2 2 (passes),
    # c3 3 (dropped, wraps), c4 1 (dropped), c5 2 (passes)
    got, want = logs(tmp_path, arch, "c1 d7 c2 c3 d8 c4 c5 d9", filt, m=5)
    expect = padded([7, 1002, 8, 1005, 9])
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(want, expect)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_counter_not_counting_control_wavelets_lets_them_through(tmp_path, arch):
    filt = """.{ .kind = .{ .counter = true }, .count_data = true, .limit1 = 2,
                 .max_counter = 1 }"""
    # every second data wavelet is dropped; control wavelets neither count nor get dropped
    got, want = logs(tmp_path, arch, "d1 c1 d2 c2 c3 d3 d4", filt, m=5)
    expect = padded([1, 1001, 1002, 1003, 3])
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(want, expect)


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_range_filter_passes_control_wavelets_whatever_their_index(tmp_path, arch):
    # data d<v> has index 0 and a control wavelet's high half holds its entrypoint and
    # commands, outside 1..3: the data are dropped, the control wavelets pass
    filt = ".{ .kind = .{ .range = true }, .min_idx = 1, .max_idx = 3 }"
    got, want = logs(tmp_path, arch, "d1 c1 d2 c2", filt, m=2)
    expect = padded([1001, 1002])
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(want, expect)


# ------------------------------------------------------------------------------------------------
# <tile_config>.filters: the receiver sets its filter's state before the first wavelet comes

EDITS = """const tc = @import_module("<tile_config>");
var fid: u16 = @get_filter_id(link);
fn main() void {
  tc.filters.set_max_counter(@get_filter_id(link), 1);
  tc.filters.set_active_limit(fid, 3);
  tc.filters.set_counter(fid, COUNTER);
}"""


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
@pytest.mark.parametrize("counter, passed", [(1, [3, 6]), (0, [1, 4, 7])])
def test_filter_state_set_at_run_time_rules_the_wavelets_after(tmp_path, arch, counter,
                                                               passed):
    # the config's rule (limit1 = 5, max_counter = 4) would pass 1-4 and 6-8; the program
    # makes it max_counter = 1, limit 3, counter `counter`: per wavelet cnt += 1, pass iff
    # cnt <= 1, cnt wraps to 0 at 3
    filt = ".{ .kind = .{ .counter = true }, .count_data = true, .limit1 = 5, .max_counter = 4 }"
    recv = RECEIVER.replace("fn main() void {}", EDITS.replace("COUNTER", str(counter)))
    got, want = logs(tmp_path, arch, "d1 d2 d3 d4 d5 d6 d7 d8", filt, m=len(passed),
                     receiver=recv)
    expect = padded(passed)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(want, expect)


def test_filter_ids_are_the_colors_numbers(tmp_path):
    recv = RECEIVER.replace("fn main() void {}", """const tc = @import_module("<tile_config>");
comptime {
  @comptime_assert(@get_filter_id(link) == 4);
  @comptime_assert(@get_filter_id(@get_color(17)) == 17);
  @comptime_assert(tc.filters.num_filters == 24);
}
fn main() void {}""")
    compile_files(tmp_path, {"layout.csl": link_layout("log", "u32"),
                             "sender.csl": SENDER.replace("SEND", ""),
                             "receiver.csl": recv.replace("M)", "1)")}, "wse2")


# ------------------------------------------------------------------------------------------------
# Misuse of filters at run time is refused, with the reason

BIND = "comptime { @bind_local_task(f, @get_local_task_id(20)); }"

@pytest.mark.parametrize("line, where, message", [
    ("var k: u16 = 4;\ntask f() void { const fid = @get_filter_id(@get_color(k)); }\n" + BIND,
     "@get_color(k)", "@get_filter_id takes a color known at compile time, got"),
    ("task f() void { tc.filters.set_counter(30, 0); }\n" + BIND, "30,",
     "filters.set_counter: filter ID 30 names no filter (a filter's ID is its color's number, "
     "0 to 23: @get_filter_id(color))"),
    ("comptime { tc.filters.set_counter(4, 0); }", "tc.filters.set_counter",
     "filters.set_counter() happens at run time"),
    ("comptime { const f = tc.filters.get_pass_count; }", "get_pass_count;",
     "tile_config.filters.get_pass_count (of <tile_config>) is not supported yet: the SDK "
     "names the wse3 pass/drop state and the counts in half-wavelets without saying how they "
     "advance with each wavelet"),
    ("comptime { const t = tc.control_transform; }",
     "control_transform;", "tile_config.control_transform (of <tile_config>) is not "
     "supported yet: set_mask changes the index bits of wavelets a .control_transform fabric "
     "DSD marks"),
])
@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_filter_misuse_is_refused_with_its_reason(tmp_path, arch, line, where, message):
    recv = RECEIVER.replace("fn main() void {}", 'const tc = @import_module("<tile_config>");\n'
                            + line + "\nfn main() void {}")
    with pytest.raises(CslError) as err:
        compile_files(tmp_path, {"layout.csl": link_layout("log", "u32"),
                                 "sender.csl": SENDER.replace("SEND", ""),
                                 "receiver.csl": recv.replace("M)", "1)")}, arch)
    assert_located(err.value, tmp_path / "receiver.csl", where, message)
