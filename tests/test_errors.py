"""Every misuse gets a clear error of the project's classes, naming what was expected."""

from __future__ import annotations

import re

import numpy as np
import pytest
from harness import compile_single, started

from wsejax import (
    LayoutError,
    MemcpyDataType,
    MemcpyError,
    ProgramError,
    SdkRuntime,
    WsejaxError,
    save_program,
)
from wsejax import dsl as csl


def _pe(n=8):
    a = csl.var("a", csl.f32[n])
    ro = csl.var("ro", csl.f32[4])

    @csl.fn
    def run():
        csl.unblock_cmd_stream()

    csl.export_symbol(a)
    csl.export_symbol(ro)
    csl.export_symbol(run)


def _layout(width=2, height=2, n=8, ro_mutable=False):
    csl.set_rectangle(width, height)
    for y in range(height):
        for x in range(width):
            csl.set_tile_code(x, y, _pe, dict(n=n))
    csl.export_name("a", csl.pointer(csl.f32), True)
    csl.export_name("ro", csl.pointer(csl.f32), ro_mutable)
    csl.export_name("run", csl.fn_type())


@pytest.fixture
def runner():
    return started(csl.compile(_layout))


def h2d(r, sym, arr, px=0, py=0, w=2, h=2, l=2, **kw):
    return r.memcpy_h2d(sym, arr, px, py, w, h, l, streaming=False, **kw)


# -- SdkRuntime -------------------------------------------------------------------------------


def test_unknown_symbol_names_it_and_lists_the_exports(runner):
    with pytest.raises(MemcpyError, match=r"no exported symbol 'b' \(exported: a, ro, run\)"):
        runner.get_id("b")


@pytest.mark.parametrize("roi", [(1, 0, 2, 1), (0, 0, 1, 3), (-1, 0, 1, 1), (0, 0, 0, 1)])
def test_roi_outside_the_rectangle(runner, roi):
    px, py, w, h = roi
    with pytest.raises(MemcpyError, match="memcpy_h2d"):
        h2d(runner, runner.get_id("a"), np.zeros(max(w * h, 1) * 2, np.float32), px, py, w, h)


def test_wrong_host_array_size_names_the_symbol_and_the_expected_count(runner):
    with pytest.raises(MemcpyError, match="symbol 'a' expects a host array of 8 elements, got 7"):
        h2d(runner, runner.get_id("a"), np.zeros(7, np.float32))


@pytest.mark.parametrize("dtype", [np.float64, np.int16, np.uint8])
def test_host_arrays_must_hold_32bit_elements(runner, dtype):
    with pytest.raises(MemcpyError, match="32-bit elements"):
        h2d(runner, runner.get_id("a"), np.zeros(8, dtype))


def test_host_array_must_be_numpy(runner):
    with pytest.raises(MemcpyError, match="numpy array"):
        h2d(runner, runner.get_id("a"), [0.0] * 8)


def test_h2d_to_an_immutable_name(runner):
    with pytest.raises(MemcpyError, match="'ro' is exported immutable"):
        h2d(runner, runner.get_id("ro"), np.zeros(8, np.float32))


def test_d2h_from_an_immutable_name_is_allowed(runner):
    out = np.ones(8, np.float32)
    runner.memcpy_d2h(out, runner.get_id("ro"), 0, 0, 2, 2, 2, streaming=False)
    assert not out.any()


def test_element_count_beyond_the_symbol(runner):
    with pytest.raises(MemcpyError, match=r"'a' holds 8 32-bit elements per PE .*elem_per_pe=9"):
        h2d(runner, runner.get_id("a"), np.zeros(36, np.float32), l=9)
    with pytest.raises(MemcpyError, match=r"holds 16 16-bit elements per PE .*elem_per_pe=17"):
        h2d(runner, runner.get_id("a"), np.zeros(68, np.uint32), l=17,
            data_type=MemcpyDataType.MEMCPY_16BIT)


def test_memcpy_of_a_function_or_a_bad_id(runner):
    with pytest.raises(MemcpyError, match="'run' is a function"):
        h2d(runner, runner.get_id("run"), np.zeros(8, np.float32))
    with pytest.raises(MemcpyError, match="not a symbol id"):
        h2d(runner, 17, np.zeros(8, np.float32))
    with pytest.raises(MemcpyError, match="id from get_id"):
        h2d(runner, "a", np.zeros(8, np.float32))


def test_d2h_destination_must_be_writable(runner):
    out = np.zeros(8, np.float32)
    out.flags.writeable = False
    with pytest.raises(MemcpyError, match="written in place"):
        runner.memcpy_d2h(out, runner.get_id("a"), 0, 0, 2, 2, 2, streaming=False)


def test_commands_after_stop(runner):
    runner.stop()
    with pytest.raises(MemcpyError, match="after stop"):
        h2d(runner, runner.get_id("a"), np.zeros(8, np.float32))
    with pytest.raises(MemcpyError, match="after stop"):
        runner.launch("run")
    with pytest.raises(MemcpyError, match="after stop"):
        runner.stop()


def test_commands_before_load_and_run():
    r = SdkRuntime(csl.compile(_layout))
    with pytest.raises(MemcpyError, match="call load"):
        r.launch("run")
    with pytest.raises(MemcpyError, match="call load"):
        r.run()


def test_streaming_needs_a_memcpy_streaming_color(runner):
    # a program without MEMCPYH2D_n / MEMCPYD2H_n colors: a symbol id is not a color
    with pytest.raises(MemcpyError, match=r"MEMCPYH2D_n colors given to <memcpy/get_params> "
                                          r"\(none\), got 0"):
        runner.memcpy_h2d(runner.get_id("a"), np.zeros(8, np.float32), 0, 0, 2, 2, 2,
                          streaming=True)
    with pytest.raises(MemcpyError, match=r"memcpy_h2d_rowbcast: streaming needs one of the "
                                          r"MEMCPYH2D_n colors"):
        runner.memcpy_h2d_rowbcast(0, np.zeros(4, np.float32), 0, 0, 2, 2, 2, streaming=True)


def test_launch_checks_names_and_arguments(runner):
    with pytest.raises(MemcpyError,
                       match=r"no exported function 'nope' \(exported functions: run\)"):
        runner.launch("nope")
    with pytest.raises(MemcpyError, match="'a' is a data symbol"):
        runner.launch("a")
    with pytest.raises(MemcpyError, match=r"takes 0 argument\(s\)"):
        runner.launch("run", 1)


def test_cmaddr_is_refused(tmp_path):
    save_program(csl.compile(_layout), tmp_path / "out")
    with pytest.raises(MemcpyError, match="only emulates"):
        SdkRuntime(str(tmp_path / "out"), cmaddr="10.0.0.1:9000")
    r = SdkRuntime(str(tmp_path / "out"), cmaddr=None)
    assert r.get_id("a") == 0


def test_a_directory_without_a_program(tmp_path):
    with pytest.raises(MemcpyError, match="not a wsejax compile output directory"):
        SdkRuntime(str(tmp_path))


def test_errors_are_catchable_broadly_and_as_builtins(runner):
    with pytest.raises(WsejaxError):
        runner.get_id("zzz")
    with pytest.raises(ValueError):
        runner.get_id("zzz")


# -- layout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dims,offsets,msg", [
    ((8, 4), (4, 1), "too small"),           # needs 4+2+3 = 9 columns
    ((9, 3), (4, 1), "too small"),           # needs 1+2+1 = 4 rows
    ((20, 20), (3, 1), "x must be at least 4"),
    ((20, 20), (4, 0), "y must be at least 1"),
])
def test_fabric_dims_and_offsets_are_validated_for_memcpy(dims, offsets, msg):
    with pytest.raises(LayoutError, match=msg):
        csl.compile(_layout, fabric_dims=dims, fabric_offsets=offsets)


def test_the_smallest_valid_fabric_is_accepted():
    p = csl.compile(_layout, fabric_dims=(9, 4), fabric_offsets=(4, 1))
    assert p.fabric_dims == (9, 4)
    p = csl.compile(_layout, fabric_dims=(11, 4), fabric_offsets=(5, 1), width_west_buf=1,
                    width_east_buf=1)
    assert p.fabric_offsets == (5, 1)


def test_arch_and_channels_are_validated():
    with pytest.raises(LayoutError, match="--arch=wse9"):
        csl.compile(_layout, arch="wse9")
    with pytest.raises(LayoutError, match="1 to 16 channels"):
        csl.compile(_layout, channels=17)
    assert csl.compile(_layout, arch="wse3").arch == "wse3"


def test_memory_over_48k_names_the_pe_the_bytes_and_the_largest_symbols():
    def pe():
        csl.var("small", csl.f32[16])
        csl.var("big", csl.f32[12000])
        csl.var("mid", csl.i16[2000])

    def layout():
        csl.set_rectangle(2, 1)
        csl.set_tile_code(0, 0, _pe, dict(n=8))
        csl.set_tile_code(1, 0, pe)
        csl.export_name("a", csl.pointer(csl.f32), True)
        csl.export_name("ro", csl.pointer(csl.f32), False)
        csl.export_name("run", csl.fn_type())

    with pytest.raises(LayoutError) as err:
        csl.compile(layout)
    text = str(err.value)
    assert "PE (1, 0) needs 52064 bytes" in text
    assert "'big' (48000 B), 'mid' (4000 B), 'small' (64 B)" in text


def test_exports_must_match_export_names():
    def pe():
        a = csl.var("a", csl.i32[4])
        csl.export_symbol(a)

    def layout():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, pe)
        csl.export_name("a", csl.pointer(csl.f32), True)

    with pytest.raises(LayoutError, match=r"'a' points to i32 data, but @export_name declares"):
        csl.compile(layout)

    def layout2():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(0, 0, pe)

    with pytest.raises(LayoutError, match="no matching @export_name"):
        csl.compile(layout2)


def test_rectangle_and_tile_code_rules():
    def twice():
        csl.set_rectangle(1, 1)
        csl.set_rectangle(1, 1)

    def outside():
        csl.set_rectangle(1, 1)
        csl.set_tile_code(1, 0, _pe)

    def missing():
        csl.set_rectangle(2, 1)
        csl.set_tile_code(0, 0, _pe, dict(n=8))

    for layout, msg in ((twice, "called twice"), (outside, "outside the 1x1"),
                        (missing, r"no @set_tile_code for PE \(1, 0\)")):
        with pytest.raises(LayoutError, match=msg):
            csl.compile(layout)


# -- programs ---------------------------------------------------------------------------------


def _compile_pe(body):
    return compile_single(body, {}, width=1, height=1)


def test_op_operand_forms_are_checked():
    def pe():
        a = csl.var("a", csl.f32[4])
        d = csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=4)

        @csl.fn
        def f():
            csl.fmacs(d, d, 1.0, 2.0)

    with pytest.raises(ProgramError, match=r"@fmacs does not accept operand form \(D, D, s, s\)"):
        _compile_pe(pe)


def test_op_element_width_is_checked():
    def pe():
        a = csl.var("a", csl.i16[4])
        d = csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=4)

        @csl.fn
        def f():
            csl.fadds(d, d, d)

    with pytest.raises(ProgramError, match="addresses i16 elements, but @fadds works on f32"):
        _compile_pe(pe)


def test_runtime_operations_outside_a_function_body():
    def pe():
        a = csl.var("a", csl.f32[4])
        a[0] = 1.0

    with pytest.raises(ProgramError, match="inside a function body"):
        _compile_pe(pe)


def test_mismatched_operand_types_need_a_cast():
    def pe():
        a = csl.var("a", csl.f32)
        k = csl.var("k", csl.i16)

        @csl.fn
        def f():
            a.set(a + k)

    with pytest.raises(ProgramError, match="types f32 and i16"):
        _compile_pe(pe)


def test_python_truth_of_a_runtime_value():
    def pe():
        a = csl.var("a", csl.f32)

        @csl.fn
        def f():
            if a > 1.0:
                pass

    with pytest.raises(ProgramError, match="no Python truth value"):
        _compile_pe(pe)


def test_constant_index_out_of_range_and_duplicate_names():
    def pe():
        a = csl.var("a", csl.f32[4])

        @csl.fn
        def f():
            a[4] = 1.0

    with pytest.raises(ProgramError, match="index 4 out of range for 'a'"):
        _compile_pe(pe)

    def dup():
        csl.var("a", csl.f32)
        csl.var("a", csl.f32)

    with pytest.raises(ProgramError, match="declared twice"):
        _compile_pe(dup)


# -- tile classes -----------------------------------------------------------------------------


def test_equal_programs_and_params_share_one_tile_class():
    from gemv import compile_gemv

    p = compile_gemv(4, 3, 4, 6)
    assert len(p.classes) == 1 and (p.class_of == 0).all()

    def layout():
        csl.set_rectangle(3, 1)
        for x in range(3):
            csl.set_tile_code(x, 0, _pe, dict(n=8 if x < 2 else 4))
        csl.export_name("a", csl.pointer(csl.f32), True)
        csl.export_name("ro", csl.pointer(csl.f32), False)
        csl.export_name("run", csl.fn_type())

    p = csl.compile(layout)
    assert len(p.classes) == 2 and p.class_of.tolist() == [[0, 0, 1]]


def test_a_256x256_rectangle_of_identical_tiles_lowers_to_the_same_program_as_2x2():
    from gemv import compile_gemv

    def lowered_ops(k):
        p = compile_gemv(k, k, 4, 6)
        assert len(p.classes) == 1
        r = started(p)
        text = r.engine.launch_fn("init_and_compute").lower(r.state, ()).as_text()
        return re.findall(r"= \"?([a-z_]+\.[a-z_]+)", text)

    small, big = lowered_ops(2), lowered_ops(256)
    # tracing does not depend on the PE count: the same operations, only their shapes differ
    assert len(small) > 100 and small == big
