"""Queues bound at run time (`<tile_config>`'s encode_input_queue / encode_output_queue),
`@queue_flush` with `@set_empty_queue_handler`, and color filters (counter, sparse counter,
range). Each program runs on the engine and on the reference interpreter, both checked
against numpy; misuse is reported at the source."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import position

from wsejax import CslError, SdkRuntime
from wsejax.csl import compile_csl
from wsejax.reference import Reference

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "send.csl", .{ .memcpy_params = memcpy.get_params(0) });
  @set_tile_code(1, 0, "recv.csl", .{ .memcpy_params = memcpy.get_params(1) });
  @export_name("main", fn()void);
  @export_name("got", [*]u32, true);
}
"""

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const tc = @import_module("<tile_config>");
"""

# the sender: `n` words on color 4, then (its queue rebound, on wse3) `n` more on color 6
SEND = HEAD + """
const n = {n};
var a = @constants([n]u32, 0);
var b = @constants([n]u32, 0);
var got: [2 * n]u32;
var got_ptr: [*]u32 = &got;
const A = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{n}} -> a[i] }});
const B = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{n}} -> b[i] }});
const oq = @get_output_queue(3);
const out1 = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{{ .extent = n, .output_queue = oq }}
                      else .{{ .extent = n, .fabric_color = @get_color(4), .output_queue = oq }});
const out2 = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{{ .extent = n, .output_queue = oq }}
                      else .{{ .extent = n, .fabric_color = @get_color(6), .output_queue = oq }});
var next: u16 = 6;
const first_id = @get_local_task_id(10);
const second_id = @get_local_task_id(11);
const flush_id = @get_local_task_id(12);
const done_id = @get_local_task_id(13);
task first() void {{
  var i: u32 = 0;
  while (i < n) : (i += 1) {{ a[i] = i + 1; b[i] = 100 + i; }}
  @mov32(out1, A, .{{ .async = true, .activate = flush }});
}}
task flush() void {{
  if (@is_arch("wse3")) {{ @queue_flush(oq); }} else {{ @activate(second_id); }}
}}
fn drained() void {{
  if (@is_arch("wse3")) {{
    tc.output_queue_config.encode_output_queue(3, next);
    tc.queue_flush.exit(oq);
    @activate(second_id);
  }}
}}
task second() void {{ @mov32(out2, B, .{{ .async = true, .activate = done }}); }}
task done() void {{ sys.unblock_cmd_stream(); }}
fn main() void {{ @activate(first_id); }}
comptime {{
  @bind_local_task(first, first_id);
  @bind_local_task(flush, flush_id);
  @bind_local_task(second, second_id);
  @bind_local_task(done, done_id);
  if (@is_arch("wse3")) {{
    @initialize_queue(oq, .{{ .color = @get_color(4) }});
    @set_empty_queue_handler(drained, oq);
  }}
  const east = .{{ .routes = .{{ .rx = .{{ RAMP }}, .tx = .{{ EAST }} }} }};
  @set_local_color_config(@get_color(4), east);
  @set_local_color_config(@get_color(6), east);
  @export_symbol(main);
  @export_symbol(got_ptr, "got");
}}
"""

# the receiver: `n` words through input queue 2 bound to color 4, then `m` through the same
# queue rebound to color 6 (whose config may carry a filter)
RECV = HEAD + """
const n = {n};
const m = {m};
var got: [2 * n]u32;
var got_ptr: [*]u32 = &got;
const G1 = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{n}} -> got[i] }});
const G2 = @get_dsd(mem1d_dsd, .{{ .tensor_access = |i|{{m}} -> got[n + i] }});
const iq = @get_input_queue(2);
const in1 = @get_dsd(fabin_dsd, .{{ .extent = n, .input_queue = iq }});
const in2 = @get_dsd(fabin_dsd, .{{ .extent = m, .input_queue = iq }});
const first_id = @get_local_task_id(10);
const rebind_id = @get_local_task_id(11);
const second_id = @get_local_task_id(12);
const done_id = @get_local_task_id(13);
task first() void {{ @mov32(G1, in1, .{{ .async = true, .activate = rebind }}); }}
task rebind() void {{
  tc.input_queue_config.encode_input_queue(2, 6, true);
  @activate(second_id);
}}
task second() void {{ @mov32(G2, in2, .{{ .async = true, .activate = done }}); }}
task done() void {{ sys.unblock_cmd_stream(); }}
fn main() void {{ @activate(first_id); }}
comptime {{
  @bind_local_task(first, first_id);
  @bind_local_task(rebind, rebind_id);
  @bind_local_task(second, second_id);
  @bind_local_task(done, done_id);
  if (@is_arch("wse3")) {{ @block(iq); }} else {{ @block(@get_color(4)); @block(@get_color(6)); }}
  @initialize_queue(iq, .{{ .color = @get_color(4) }});
  const west = .{{ .rx = .{{ WEST }}, .tx = .{{ RAMP }} }};
  @set_local_color_config(@get_color(4), .{{ .routes = west }});
  @set_local_color_config(@get_color(6), .{{ .routes = west{filter} }});
  @export_symbol(main);
  @export_symbol(got_ptr, "got");
}}
"""


def compile_pair(tmp_path, arch, n=6, m=None, filt="", send=None, recv=None):
    (tmp_path / "layout.csl").write_text(LAYOUT)
    (tmp_path / "send.csl").write_text(send or SEND.format(n=n))
    (tmp_path / "recv.csl").write_text(recv or RECV.format(n=n, m=n if m is None else m,
                                                           filter=filt))
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def received(program, n):
    """`got` of the receiver after `main`, on the engine and on the reference."""
    r = SdkRuntime(program)
    r.load()
    r.run()
    r.launch("main")
    eng = np.zeros(2 * n, np.uint32)
    r.memcpy_d2h(eng, r.get_id("got"), 1, 0, 1, 1, 2 * n, streaming=False)
    r.stop()
    ref = Reference(program)
    ref.launch("main")
    out = np.zeros(2 * n, np.uint32)
    ref.memcpy_d2h(out, "got", 1, 0, 1, 1, 2 * n)
    return eng, out


def expected(n, passed):
    """The receiver's `got`: the first block, then the second block's words that pass."""
    want = np.zeros(2 * n, np.uint32)
    want[:n] = np.arange(1, n + 1)
    second = (100 + np.arange(n))[passed]
    want[n:n + second.size] = second
    return want


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_queues_rebound_at_run_time_carry_both_blocks(tmp_path, arch):
    n = 6
    eng, ref = received(compile_pair(tmp_path, arch, n), n)
    want = expected(n, np.ones(n, bool))
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


def test_an_output_queue_takes_its_new_color_once_flushed(tmp_path):
    prog = compile_pair(tmp_path, "wse3")
    send = next(pe for pe in prog.classes if pe.name == "send.csl")
    (kind, q, color), = send.queues
    # the runtime color may be any the sender routes
    assert (kind, q, color.colors) == ("output", 3, (4, 6))
    assert send.flushed == (("output", 3),)
    assert any(t.id == 29 for t in send.tasks)


COUNTER = """,
    .filter = .{ .kind = .{ .counter = true }, .count_data = true, .limit1 = 5,
                 .max_counter = 4 }"""


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_counter_filter_drops_every_fifth_data_wavelet(tmp_path, arch):
    n = 12
    passed = (np.arange(n) + 1) % 5 != 0     # wavelets 5 and 10 are dropped
    eng, ref = received(compile_pair(tmp_path, arch, n, m=int(passed.sum()), filt=COUNTER), n)
    want = expected(n, passed)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


def sparse_passes(n, init, limit1, limit2, max_counter):
    """The sparse counter rule, written out: counter up to limit1, then limit2, then off."""
    out, cnt, lim, phase = [], init, limit1, 0
    for _ in range(n):
        if phase == 2:
            out.append(True)
            continue
        cnt += 1
        out.append(cnt <= max_counter)
        if cnt == lim:
            cnt, lim, phase = 0, limit2, phase + 1
    return np.array(out)


def test_a_sparse_counter_filter_switches_limits_then_turns_off(tmp_path):
    n = 12
    filt = """,
    .filter = .{ .kind = .{ .sparse_counter = true }, .count_data = true, .limit1 = 3,
                 .limit2 = 4, .max_counter = 1 }"""
    passed = sparse_passes(n, 0, 3, 4, 1)
    # 1 passes, 2-3 dropped; 1 passes, 2-4 dropped; then everything
    assert passed.tolist() == [True, False, False, True, False, False, False] + [True] * 5
    eng, ref = received(compile_pair(tmp_path, "wse3", n, m=int(passed.sum()), filt=filt), n)
    want = expected(n, passed)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


def test_a_counter_filter_starting_past_its_maximum(tmp_path):
    # init_counter = 2 > max_counter: the first wavelets are dropped until the counter wraps
    n = 10
    filt = """,
    .filter = .{ .kind = .{ .counter = true }, .count_data = true, .init_counter = 2,
                 .limit1 = 4, .max_counter = 1 }"""
    passed = np.array([False, False, True, False, False, False, True, False, False, False])
    eng, ref = received(compile_pair(tmp_path, "wse2", n, m=int(passed.sum()), filt=filt), n)
    want = expected(n, passed)
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref, want)


# ------------------------------------------------------------------------------------------------
# Misuse, reported at the source


def assert_error_at(tmp_path, arch, file, where, message, **kw):
    with pytest.raises(CslError) as err:
        compile_pair(tmp_path, arch, **kw)
    e = err.value
    assert message in e.message, str(e)
    assert e.file.endswith(file), str(e)
    assert (e.line, e.col) == position((tmp_path / file).read_text(), where), str(e)


FLUSH_TASK = """task flush() void {
  if (@is_arch("wse3")) { @queue_flush(oq); } else { @activate(second_id); }
}"""


def test_queue_flush_is_refused_on_wse2(tmp_path):
    send = SEND.format(n=4)
    assert FLUSH_TASK in send
    send = send.replace(FLUSH_TASK, "task flush() void { @queue_flush(oq); }")
    assert_error_at(tmp_path, "wse2", "send.csl", "@queue_flush(oq)",
                    "@queue_flush exists on wse3 only", send=send)


def test_an_empty_queue_handler_is_refused_on_wse2(tmp_path):
    send = SEND.format(n=4).replace("  @bind_local_task(done, done_id);\n",
                                    "  @bind_local_task(done, done_id);\n"
                                    "  @set_empty_queue_handler(drained, oq);\n")
    assert_error_at(tmp_path, "wse2", "send.csl", "@set_empty_queue_handler",
                    "@set_empty_queue_handler exists on wse3 only", send=send)


@pytest.mark.parametrize("member, message", [
    ("tc.control_transform",
     "tile_config.control_transform (of <tile_config>) is not supported yet"),
    ("tc.queue_flush.is_flushed",
     "tile_config.queue_flush.is_flushed (of <tile_config>) is not supported yet: the SDK's "
     "<tile_config> reference does not document it"),
    ("tc.FIFO_MIN_ALIGNMENT",
     "tile_config.FIFO_MIN_ALIGNMENT (of <tile_config>) is not supported yet: the SDK does "
     "not document its value"),
    ("tc.addresses", "tile_config.addresses (of <tile_config>) is not supported yet: raw "
     "register addresses are not modelled"),
])
def test_unsupported_tile_config_members_are_named(tmp_path, member, message):
    recv = RECV.format(n=4, m=4, filter="").replace(
        "comptime {\n", f"comptime {{\n  const unused = {member};\n", 1)
    # located at the member's name
    assert_error_at(tmp_path, "wse3", "recv.csl", member.rsplit(".", 1)[1], message, recv=recv)


def test_an_output_queue_has_no_color_to_rebind_on_wse2(tmp_path):
    send = SEND.format(n=4).replace(
        FLUSH_TASK, "task flush() void { tc.output_queue_config.encode_output_queue(3, 6); }")
    assert_error_at(tmp_path, "wse2", "send.csl", "tc.output_queue_config.encode_output_queue",
                    "on wse2 an output queue is not bound to a color", send=send)


def test_a_filter_kind_that_does_not_exist_is_refused(tmp_path):
    filt = ",\n    .filter = .{ .kind = .{ .bogus = true } }"
    assert_error_at(tmp_path, "wse3", "recv.csl", "@set_local_color_config(@get_color(6)",
                    "filter kind .bogus does not exist (the kinds are .counter, "
                    ".sparse_counter and .range)", filt=filt)


CHAIN_LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 4, .height = 1 });
const c: color = @get_color(3);
layout {
  @set_rectangle(4, 1);
  @set_tile_code(0, 0, "send.csl", .{ .memcpy_params = memcpy.get_params(0), .c = c });
  @set_color_config(0, 0, c, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  for (@range(u16, 1, 4, 1)) |x| {
    @set_tile_code(x, 0, "recv.csl", .{ .memcpy_params = memcpy.get_params(x), .c = c });
    // the middle PEs deliver to their CE and forward east; each keeps indices 4x-4 .. 4x-2
    const f = .{ .kind = .{ .range = true }, .min_idx = 4 * x - 4, .max_idx = 4 * x - 2 };
    if (x < 3) {
      @set_color_config(x, 0, c, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP, EAST } },
                                    .filter = f });
    } else {
      @set_color_config(x, 0, c, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } },
                                    .filter = f });
    }
  }
  @export_name("main", fn()void);
  @export_name("got", [*]u32, true);
}
"""

CHAIN_SEND = """param memcpy_params;
param c: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
var words = @zeros([12]u32);
var got = @zeros([3]u32);
var got_ptr: [*]u32 = &got;
const W = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{12} -> words[i] });
const oq = @get_output_queue(2);
const out = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 12, .output_queue = oq }
                     else .{ .extent = 12, .fabric_color = c, .output_queue = oq });
fn main() void {
  // wavelet k: index k in the high half, 100 + k in the low half
  for (@range(u32, 12)) |k| { words[k] = (k << 16) | (100 + k); }
  @mov32(out, W);
  sys.unblock_cmd_stream();
}
comptime {
  if (@is_arch("wse3")) { @initialize_queue(oq, .{ .color = c }); }
  @export_symbol(main);
  @export_symbol(got_ptr, "got");
}
"""

CHAIN_RECV = """param memcpy_params;
param c: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const iq = @get_input_queue(2);
var got = @zeros([3]u32);
var got_ptr: [*]u32 = &got;
var n: u16 = 0;
const id: data_task_id = if (@is_arch("wse2")) @get_data_task_id(c) else @get_data_task_id(iq);
task take(data: u16, index: u16) void {
  got[n] = (@as(u32, index) << 16) | @as(u32, data);
  n += 1;
  if (n == 3) { sys.unblock_cmd_stream(); }
}
fn main() void {}
comptime {
  @bind_data_task(take, id);
  if (@is_arch("wse3")) { @initialize_queue(iq, .{ .color = c }); }
  @export_symbol(main);
  @export_symbol(got_ptr, "got");
}
"""


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_a_filter_on_a_forwarding_pe_filters_only_what_its_ce_receives(tmp_path, arch):
    (tmp_path / "layout.csl").write_text(CHAIN_LAYOUT)
    (tmp_path / "send.csl").write_text(CHAIN_SEND)
    (tmp_path / "recv.csl").write_text(CHAIN_RECV)
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    r = SdkRuntime(prog)
    r.load()
    r.run()
    r.launch("main")
    got = np.zeros(12, np.uint32)
    r.memcpy_d2h(got, r.get_id("got"), 0, 0, 4, 1, 3, streaming=False)
    ref = Reference(prog)
    ref.launch("main")
    want = np.zeros(12, np.uint32)
    ref.memcpy_d2h(want, "got", 0, 0, 4, 1, 3)
    # PE x keeps indices 4x-4 .. 4x-2, though PE 1 and 2 forward everything they do not keep
    k = np.array([4 * x - 4 + j for x in (1, 2, 3) for j in range(3)], np.uint32)
    expect = np.concatenate([np.zeros(3, np.uint32), k << 16 | (100 + k)])
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(want, expect)
