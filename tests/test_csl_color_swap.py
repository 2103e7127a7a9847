"""Color swapping (`.color_swap_x`, `.color_swap_y` in a color config's `.routes`, spec 6.5):
programs of our own where a wavelet sent on one color of a pair reaches ramps as the other, run
on the engine beside the reference (check mode: every symbol of every PE agrees), results
checked by hand. The SDK has color swapping on WSE-2 only; WSE-3 refuses it."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, position, write

from wsejax import CslError, MemcpyDataType, SdkRuntime
from wsejax.csl import compile_csl

# Each PE sums what its data tasks receive: x on color `a`, 10 * x on color `b`; once it has
# received `expect` wavelets (at once if none) it ends the launch. The sender sends 1..5 on
# color `send`.
PE = """
param memcpy_params;
param sender: bool;
param a: color;
param b: color;
param send: color;
param expect: u16;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
var sum = @zeros([1]u32);
var sum_ptr: [*]u32 = &sum;
var got: u16 = 0;
var src = [5]u32 { 1, 2, 3, 4, 5 };
const src_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{5} -> src[i] });
const out_dsd = @get_dsd(fabout_dsd, .{ .extent = 5, .fabric_color = send,
                                         .output_queue = @get_output_queue(2) });
fn count() void {
  got += 1;
  if (got == expect) { sys.unblock_cmd_stream(); }
}
task a_task(x: u32) void { sum[0] += x; count(); }
task b_task(x: u32) void { sum[0] += 10 * x; count(); }
fn main() void {
  if (sender) { @mov32(out_dsd, src_dsd); }
  if (expect == 0) { sys.unblock_cmd_stream(); }
}
comptime {
  @bind_data_task(a_task, @get_data_task_id(a));
  @bind_data_task(b_task, @get_data_task_id(b));
  @export_symbol(sum_ptr, "sum");
  @export_symbol(main);
}
"""

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{{ .width = {w}, .height = {h} }});
const a: color = @get_color({a});
const b: color = @get_color({a} + 1);
layout {{
  @set_rectangle({w}, {h});
  for (@range(u16, {w})) |x| {{
    for (@range(u16, {h})) |y| {{
      const expect = [{h}, {w}]u16 {{ {expect} }};
      @set_tile_code(x, y, "pe.csl", .{{ .memcpy_params = memcpy.get_params(x),
                                        .sender = x == 0 and y == 0, .a = a, .b = b,
                                        .send = {send}, .expect = expect[y, x] }});
    }}
  }}
{configs}
  @export_name("sum", [*]u32, true);
  @export_name("main", fn()void);
}}
"""

SUM_A, SUM_B = 15, 150      # 1 + ... + 5 received on a, on b


def compile_swap(tmp_path, w, h, configs, expect, send="b", a=0, arch="wse2"):
    rows = ", ".join(str(v) for row in expect for v in row)
    layout = LAYOUT.format(w=w, h=h, a=a, send=send, expect=rows, configs=configs)
    write(tmp_path, {"layout.csl": layout, "pe.csl": PE})
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch), layout


def sums(program) -> np.ndarray:
    r = SdkRuntime(program, check=True)
    r.load()
    r.run()
    r.launch("main")
    out = np.zeros(program.width * program.height, np.uint32)
    r.memcpy_d2h(out, r.get_id("sum"), 0, 0, program.width, program.height, 1,
                 streaming=False)
    r.stop()
    return out.reshape(program.height, program.width)


ROW_BOTH_X = """
  for (@range(u16, 4)) |x| {
    const rx = if (x == 0) .{ RAMP } else .{ WEST };
    const tx = if (x == 3) .{ RAMP } else .{ RAMP, EAST };
    @set_color_config(x, 0, a, .{ .routes = .{ .rx = rx, .tx = tx, .color_swap_x = true } });
    @set_color_config(x, 0, b, .{ .routes = .{ .rx = rx, .tx = tx, .color_swap_x = true } });
  }
"""


def test_swap_x_on_both_colors_alternates_them_along_a_row(tmp_path):
    # PE 0 sends on b and receives it as b; each hop EAST turns b into a and a into b
    prog, _ = compile_swap(tmp_path, 4, 1, ROW_BOTH_X, [[5, 5, 5, 5]])
    assert sums(prog).tolist() == [[SUM_B, SUM_A, SUM_B, SUM_A]]
    r = prog.resolved
    assert r[0].source_colors.tolist() == [0, 1] and r[0].dest_source.tolist() == [[0, 1, 0, 1]]
    assert r[1].dest_source.tolist() == [[1, 0, 1, 0]]


def test_swap_y_on_both_colors_alternates_them_down_a_column(tmp_path):
    configs = """
  for (@range(u16, 3)) |y| {
    const rx = if (y == 0) .{ RAMP } else .{ NORTH };
    const tx = if (y == 2) .{ RAMP } else .{ RAMP, SOUTH };
    @set_color_config(0, y, a, .{ .routes = .{ .rx = rx, .tx = tx, .color_swap_y = true } });
    @set_color_config(0, y, b, .{ .routes = .{ .rx = rx, .tx = tx, .color_swap_y = true } });
  }
"""
    prog, _ = compile_swap(tmp_path, 1, 3, configs, [[5], [5], [5]], send="a", a=4)
    assert sums(prog).tolist() == [[SUM_A], [SUM_B], [SUM_A]]


def test_swap_x_leaves_wavelets_arriving_vertically_alone(tmp_path):
    configs = """
  @set_color_config(0, 0, a, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ SOUTH },
                                             .color_swap_x = true } });
  @set_color_config(0, 1, a, .{ .routes = .{ .rx = .{ NORTH }, .tx = .{ RAMP },
                                             .color_swap_x = true } });
  @set_color_config(0, 1, b, .{ .routes = .{ .rx = .{ NORTH }, .tx = .{ RAMP },
                                             .color_swap_x = true } });
"""
    prog, _ = compile_swap(tmp_path, 1, 2, configs, [[0], [5]], send="a", a=2)
    assert sums(prog).tolist() == [[0], [SUM_A]]


def test_one_color_swapping_receives_the_other_on_both(tmp_path):
    # only b swaps at PE 1: a wavelet arriving on a is received as a and as b
    configs = """
  @set_color_config(0, 0, a, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_color_config(1, 0, a, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @set_color_config(1, 0, b, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP },
                                             .color_swap_x = true } });
"""
    prog, _ = compile_swap(tmp_path, 2, 1, configs, [[0, 10]], send="a", a=2)
    assert sums(prog).tolist() == [[0, SUM_A + SUM_B]]


def test_both_swaps_swap_what_the_ce_sends(tmp_path):
    # a swaps on both axes at PE 0: it takes from the ramp what the CE sends on b
    configs = """
  @set_color_config(0, 0, a, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ RAMP, EAST },
                                             .color_swap_x = true, .color_swap_y = true } });
  @set_color_config(1, 0, a, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
"""
    prog, _ = compile_swap(tmp_path, 2, 1, configs, [[5, 5]], send="b", a=6)
    assert sums(prog).tolist() == [[SUM_A, SUM_A]]
    assert prog.resolved[6].source_colors.tolist() == [7]


def test_a_wavelet_no_color_takes_is_unroutable(tmp_path):
    # only a swaps at PE 1: it takes what arrives on b, and nothing takes what arrives on a
    configs = """
  @set_color_config(0, 0, a, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_color_config(1, 0, a, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP },
                                             .color_swap_x = true } });
"""
    with pytest.raises(CslError, match=r"color 2: unroutable wavelet: a wavelet from PE \(0, "
                       r"0\) \(sent on color 2\) sent EAST by PE \(0, 0\) reaches PE \(1, 0\), "
                       r"where no color takes a wavelet of color 2 arriving from its WEST"):
        compile_swap(tmp_path, 2, 1, configs, [[0, 5]], send="a", a=2)


def test_color_swapping_is_refused_on_wse3(tmp_path):
    with pytest.raises(CslError) as err:
        compile_swap(tmp_path, 4, 1, ROW_BOTH_X, [[5, 5, 5, 5]], arch="wse3")
    layout = (tmp_path / "layout.csl").read_text()
    line, col = position(layout, "@set_color_config(x, 0, a")
    assert f"layout.csl:{line}:{col}" in str(err.value)
    assert ("@set_color_config .routes: color swapping (.color_swap_x, .color_swap_y) is not "
            "supported on wse3; the SDK has it on WSE-2 only") in str(err.value)


def test_a_color_swap_flag_takes_a_bool(tmp_path):
    configs = """
  @set_color_config(0, 0, a, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ RAMP },
                                             .color_swap_y = 1 } });
"""
    with pytest.raises(CslError, match=r"@set_color_config \.routes\.color_swap_y takes a "
                                       r"bool, got 1"):
        compile_swap(tmp_path, 1, 1, configs, [[0]], send="a")


# -- @mov16 reading a memory DSD over a 32-bit array (the SDK's color swap tutorial sends a u32
#    that way): each element's low 16 bits

MOV16 = """
param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
var src = [3]u32 { 0x12345678, 0xABCD0001, 7 };
var out = @zeros([3]u16);
var out_ptr: [*]u16 = &out;
fn main() void {
  @mov16(@get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> out[i] }),
         @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{3} -> src[i] }));
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""


def test_mov16_reads_the_low_halves_of_a_32_bit_array(tmp_path):
    prog = compile_pe(tmp_path, MOV16, '@export_name("out", [*]u16, true);\n'
                                       '@export_name("main", fn()void);', w=1)
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    r.launch("main")
    out = np.zeros(3, np.uint32)
    r.memcpy_d2h(out, r.get_id("out"), 0, 0, 1, 1, 3, streaming=False,
                 data_type=MemcpyDataType.MEMCPY_16BIT)
    assert out.tolist() == [0x5678, 0x0001, 7]


def test_mov16_still_writes_16_bit_elements_only(tmp_path):
    source = MOV16.replace("var out = @zeros([3]u16);\nvar out_ptr: [*]u16", "var out = "
                           "@zeros([3]u32);\nvar out_ptr: [*]u32")
    with pytest.raises(CslError, match=r"@mov16: operand 1 addresses u32 elements, but @mov16 "
                                       r"works on u16 \(16-bit\)"):
        compile_pe(tmp_path, source, '@export_name("out", [*]u32, true);\n'
                                     '@export_name("main", fn()void);', w=1)
