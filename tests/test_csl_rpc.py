"""Launches through an `@rpc` server, SDK 1.x style: the layout gives `<memcpy/get_params>` a
`.LAUNCH` color, each PE program serves it with `@rpc(@get_data_task_id(...))`, and the host's
`launch` (and the legacy `call`) run the exported functions. Each program runs on the engine
with the reference beside it (check mode), its results checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import position, read, write

from wsejax import CslError, SdkRuntime
from wsejax.csl import compile_csl

ARCHES = ["wse2", "wse3"]

LAYOUT = """
const LAUNCH: color = @get_color(8);
const memcpy = @import_module("<memcpy/get_params>", .{
  .width = 2, .height = 1, .LAUNCH = LAUNCH });
layout {
  @set_rectangle(2, 1);
  for (@range(i16, 2)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x) });
  }
  @export_name("out", [*]u32, true);
  @export_name("scale", fn(u32, i16)void);
ROUTES}
"""

# how each arch names the launch color's data task: wse2 by the color, wse3 by an input queue
# bound to it
SERVER = {
    "wse2": "comptime { @rpc(@get_data_task_id(sys.LAUNCH)); }",
    "wse3": """const q = @get_input_queue(2);
comptime {
  @initialize_queue(q, .{ .color = sys.LAUNCH });
  @rpc(@get_data_task_id(q));
}""",
}

PE = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const lay = @import_module("<layout>");
var out = @zeros([3]u32);
var out_ptr: [*]u32 = &out;
fn scale(a: u32, b: i16) void {
  out[0] = a * (1 + @as(u32, lay.get_x_coord()));
  out[1] = @bitcast(u32, @as(i32, b) - 1);
  out[2] += 1;
  sys.unblock_cmd_stream();
}
comptime { @export_symbol(out_ptr, "out"); @export_symbol(scale); }
"""


def compile_rpc(tmp_path, arch: str, server: str | None = None, routes: str = "",
                pe: str = PE):
    """The two-PE program whose PE program serves launches with `server` (the arch's own by
    default)."""
    write(tmp_path, {"layout.csl": LAYOUT.replace("ROUTES", routes),
                     "pe.csl": pe + (SERVER[arch] if server is None else server)})
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def runtime(prog) -> SdkRuntime:
    r = SdkRuntime(prog, check=True)
    r.load()
    r.run()
    return r


@pytest.mark.parametrize("arch", ARCHES)
def test_launch_calls_an_exported_function_through_the_rpc_server(tmp_path, arch):
    r = runtime(compile_rpc(tmp_path, arch))
    r.launch("scale", np.uint32(7), np.int16(-3), nonblock=False)
    r.launch("scale", np.uint32(10), np.int16(5), nonblock=False)
    got = read(r, "out", 3, np.uint32)[0]
    r.stop()
    np.testing.assert_array_equal(got, [[10, 4, 2], [20, 4, 2]])


@pytest.mark.parametrize("arch", ARCHES)
def test_the_legacy_call_goes_through_the_rpc_server_too(tmp_path, arch):
    r = runtime(compile_rpc(tmp_path, arch))
    r.call("scale", [3, 0xFFFF], nonblock=False)
    got = read(r, "out", 3, np.uint32)[0]
    r.stop()
    # 0xFFFF as an i16 is -1: out[1] is -2 as a u32
    np.testing.assert_array_equal(got, [[3, 0xFFFFFFFE, 1], [6, 0xFFFFFFFE, 1]])


# ------------------------------------------------------------------------------------------------
# misuse


def error_at(tmp_path, file: str, where: str, **kw) -> CslError:
    with pytest.raises(CslError) as info:
        compile_rpc(tmp_path, **kw)
    e = info.value
    assert e.file.endswith(file), str(e)
    assert (e.line, e.col) == position((tmp_path / file).read_text(), where), str(e)
    return e


@pytest.mark.parametrize("arch", ARCHES)
def test_a_pe_program_that_exports_functions_must_serve_the_launch_color(tmp_path, arch):
    e = error_at(tmp_path, "layout.csl", '@import_module("<memcpy/get_params>"', arch=arch,
                 server="")
    assert "pe.csl exports function 'scale' but serves no launches: with .LAUNCH, each PE " \
        "program that exports functions calls @rpc(@get_data_task_id(sys_mod.LAUNCH)) in a " \
        "top-level comptime block" in str(e)


def test_with_launch_a_pe_program_exporting_functions_serves_the_launch_color(tmp_path):
    e = error_at(tmp_path, "pe.csl", "@get_data_task_id(@get_color(5))", arch="wse2",
                 server="comptime { @rpc(@get_data_task_id(@get_color(5))); }")
    assert "@rpc: data task ID 5 is not that of the launch color 8 (@get_data_task_id(" \
        "sys_mod.LAUNCH)); with .LAUNCH, a PE program that exports functions serves launches " \
        "with its one @rpc" in str(e)


def test_on_wse3_the_rpc_queue_must_carry_the_launch_color(tmp_path):
    e = error_at(tmp_path, "pe.csl", "@get_data_task_id(q)", arch="wse3",
                 server=SERVER["wse3"].replace(".color = sys.LAUNCH", ".color = @get_color(5)"))
    assert "@rpc is on color 8, but input queue 2 is initialised with color 5" in str(e)


def test_on_wse3_an_rpc_queue_without_a_color_is_located(tmp_path):
    pe = PE.replace("comptime {", "comptime { @rpc(@get_data_task_id(@get_input_queue(2)));", 1)
    write(tmp_path, {"layout.csl": LAYOUT.replace(", .LAUNCH = LAUNCH", "")
                     .replace("ROUTES", ""), "pe.csl": pe})
    with pytest.raises(CslError) as info:
        compile_csl(tmp_path / "layout.csl", memcpy=True, arch="wse3")
    e = info.value
    assert (e.line, e.col) == position(pe, "@rpc("), str(e)
    assert "@rpc uses input queue 2, which is never initialised: on wse3 give it a color " \
        "with @initialize_queue(@get_input_queue(2), .{ .color = ... })" in str(e)


@pytest.mark.parametrize("arch", ARCHES)
def test_at_most_one_rpc_server_per_pe_program(tmp_path, arch):
    ident = "sys.LAUNCH" if arch == "wse2" else "q"
    second = f"\ncomptime {{ @rpc(@get_data_task_id({ident})); }}"
    with pytest.raises(CslError) as info:
        compile_rpc(tmp_path, arch, server=SERVER[arch] + second)
    e = info.value
    # the second @rpc is the one at fault
    text = (tmp_path / "pe.csl").read_text()
    k = text.rindex("@rpc")
    assert (e.line, e.col) == (text.count("\n", 0, k) + 1, k - text.rfind("\n", 0, k)), str(e)
    assert "@rpc: this PE program already serves RPC (at most one @rpc per PE program)" \
        in str(e)


def test_the_launch_color_is_memcpys_to_route(tmp_path):
    routes = "  @set_color_config(0, 0, LAUNCH, .{ .routes = .{ .rx = .{ RAMP }, " \
             ".tx = .{ EAST } } });\n"
    e = error_at(tmp_path, "layout.csl", "@set_color_config", arch="wse2", routes=routes)
    assert "color 8 is memcpy's launch color (.LAUNCH): memcpy routes it, the program may " \
        "not configure it" in str(e)


BIND = """task t(v: u32) void { out[0] = v; }
comptime { @bind_data_task(t, @get_data_task_id(sys.LAUNCH)); }
"""


def test_no_task_may_take_the_rpc_data_task_id(tmp_path):
    # bound before the @rpc: the @rpc's ID is at fault
    e = error_at(tmp_path, "pe.csl", "@get_data_task_id(sys.LAUNCH)); }\n// rpc", arch="wse2",
                 pe=PE + BIND, server=SERVER["wse2"] + "\n// rpc")
    assert "@rpc: data task ID 8 already has a task bound to it" in str(e)


def test_no_task_may_be_bound_to_the_rpc_data_task_id_later(tmp_path):
    # bound after the @rpc: the @rpc is named
    e = error_at(tmp_path, "pe.csl", "@rpc", arch="wse2", server=SERVER["wse2"] + "\n" + BIND)
    assert "a data task is bound to data task ID 8, which serves RPC (@rpc)" in str(e)


def test_rpc_belongs_in_a_top_level_comptime_block(tmp_path):
    pe = PE.replace("  sys.unblock_cmd_stream();\n}",
                    "  sys.unblock_cmd_stream();\n  @rpc(@get_data_task_id(sys.LAUNCH));\n}", 1)
    e = error_at(tmp_path, "pe.csl", "@rpc", arch="wse2", pe=pe)
    assert "@rpc belongs in a top-level comptime block of a PE program" in str(e)


# ------------------------------------------------------------------------------------------------
# an RPC server on a color of the program's own: PE 0 sends the calls to PE 1 as wavelets

FABRIC_LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
const c5: color = @get_color(5);
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0), .sender = true });
  @set_tile_code(1, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(1), .sender = false });
  @set_color_config(0, 0, c5, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_color_config(1, 0, c5, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } } });
  @export_name("out", [*]u32, true);
  @export_name("main", fn()void);
  @export_name("scale", fn(u32, i16)void);
  @export_name("bump", fn()void);
  @export_name("put", fn(f32, bool)void);
}
"""

FABRIC_PE = """param memcpy_params;
param sender: bool;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const c5 = @get_color(5);
const oq = @get_output_queue(2);
const iq = @get_input_queue(2);
var out = @zeros([4]u32);
var out_ptr: [*]u32 = &out;
var words = @zeros([12]u32);
const wd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{12} -> words[i] });
const send = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 12, .output_queue = oq }
                                  else .{ .extent = 12, .fabric_color = c5, .output_queue = oq });
fn scale(a: u32, b: i16) void { out[0] = a * 3; out[1] = @bitcast(u32, @as(i32, b) - 1); }
fn bump() void { out[2] += 1; }
fn put(x: f32, last: bool) void {
  out[3] = @as(u32, x * 2.0);
  if (last) { sys.unblock_cmd_stream(); }
}
fn main() void {
  if (sender) {
    words[0] = @get_symbol_id(bump);
    words[1] = 77;                                  // no function's id: dropped
    words[2] = @get_symbol_id(scale);
    words[3] = 7;
    words[4] = @bitcast(u32, @as(i32, -5));         // the i16 takes the low half: -5
    words[5] = @get_symbol_id(bump);
    words[6] = @get_symbol_id(put);
    words[7] = @bitcast(u32, @as(f32, 1.5));
    words[8] = 0;                                   // false
    words[9] = @get_symbol_id(put);
    words[10] = @bitcast(u32, @as(f32, 2.5));
    words[11] = 1;                                  // true: PE 1's put ends the launch
    @mov32(send, wd);
    sys.unblock_cmd_stream();
  }
}
comptime {
  @export_symbol(out_ptr, "out");
  @export_symbol(main);
  @export_symbol(scale);
  @export_symbol(bump);
  @export_symbol(put);
  if (@is_arch("wse3")) {
    @initialize_queue(oq, .{ .color = c5 });
    @initialize_queue(iq, .{ .color = c5 });
    @rpc(@get_data_task_id(iq));
  } else {
    @rpc(@get_data_task_id(c5));
  }
}
"""


@pytest.mark.parametrize("arch", ARCHES)
def test_an_rpc_server_on_another_color_calls_the_functions_its_wavelets_name(tmp_path, arch):
    write(tmp_path, {"layout.csl": FABRIC_LAYOUT, "pe.csl": FABRIC_PE})
    r = runtime(compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch))
    r.launch("main", nonblock=False)
    got = read(r, "out", 4, np.uint32)[0]
    # PE 1: bump, scale(7, -5), bump, put(1.5, false), put(2.5, true)
    np.testing.assert_array_equal(got, [[0, 0, 0, 0], [21, 0xFFFFFFFA, 2, 5]])
    # the host launches an exported function as before
    r.launch("put", np.float32(4.0), True, nonblock=False)
    got = read(r, "out", 4, np.uint32)[0]
    r.stop()
    np.testing.assert_array_equal(got[:, 3], [8, 8])

