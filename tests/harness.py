"""Helpers shared by the tests: build one-function programs and move raw bits in and out."""

from __future__ import annotations

import numpy as np

from wsejax import MemcpyDataType, SdkRuntime
from wsejax import dsl as csl


def compile_single(pe_program, exports: dict, width=3, height=2, params=None, **kw):
    """A width x height layout running `pe_program(**params)` on every PE.

    `exports` maps a name to a csl type (`csl.f32` for `[*]f32` data, mutable) or to
    `csl.fn_type(...)`.
    """
    def layout():
        csl.set_rectangle(width, height)
        for y in range(height):
            for x in range(width):
                csl.set_tile_code(x, y, pe_program, dict(params or {}))
        for name, t in exports.items():
            if isinstance(t, csl.FnType):
                csl.export_name(name, t)
            else:
                csl.export_name(name, csl.pointer(t), True)

    return csl.compile(layout, **kw)


def started(program, **kw) -> SdkRuntime:
    r = SdkRuntime(program, **kw)
    r.load()
    r.run()
    return r


def put_bits(runner, name, bits_per_pe: np.ndarray, width_bits: int):
    """Write raw bits `[H, W, n]` (uint) to symbol `name` on the whole rectangle."""
    h, w, n = bits_per_pe.shape
    dt = MemcpyDataType.MEMCPY_16BIT if width_bits == 16 else MemcpyDataType.MEMCPY_32BIT
    runner.memcpy_h2d(runner.get_id(name), bits_per_pe.astype(np.uint32).reshape(-1), 0, 0,
                      w, h, n, streaming=False, data_type=dt)


def get_bits(runner, name, n: int, width_bits: int) -> np.ndarray:
    """Raw bits `[H, W, n]` of symbol `name` on the whole rectangle."""
    h, w = runner.program.height, runner.program.width
    out = np.zeros(h * w * n, np.uint32)
    dt = MemcpyDataType.MEMCPY_16BIT if width_bits == 16 else MemcpyDataType.MEMCPY_32BIT
    runner.memcpy_d2h(out, runner.get_id(name), 0, 0, w, h, n, streaming=False, data_type=dt)
    return out.reshape(h, w, n)


FABRIC_WORDS = ("fabin_dsd", "fabout_dsd", "@bind_data_task", "streaming=True",
                "<collectives_2d/pe>")


def uses_fabric(example) -> bool:
    """Does the CSL example directory `example` move data between PEs or the host's streams
    (fabric DSDs, data tasks, streaming memcpy, <collectives_2d>)?"""
    text = "".join(p.read_text() for p in example.iterdir() if p.suffix in (".csl", ".py"))
    return any(w in text for w in FABRIC_WORDS)


# the CSL examples whose sources compile unchanged for wse3 too: besides their own run (wse2,
# as commands.txt says), the example tests run each of them compiled with --arch=wse3, as
# `NAME-wse3` (none moves data between PEs, so test_reference.py compares each with the
# reference interpreter). Of the others, some use wse2-only forms (a color as a data task ID,
# @block of a color, a fabout_dsd without an initialised output queue), two are wse3 programs
# already, and the rest run on wse2 only to keep the suite short.
EXAMPLES_ON_WSE3 = ("complete-program", "dsd-tensor-access", "fp16-ops", "library-modules",
                    "map", "mem4d", "memcpy-orders")


def uint_type(bits: int):
    return {16: np.uint16, 32: np.uint32}[bits]


def same_bits(a: np.ndarray, b: np.ndarray, dtype) -> bool:
    """Bit equality, with every NaN equal to every NaN for float types."""
    a = np.asarray(a).astype(uint_type(dtype.bits))
    b = np.asarray(b).astype(uint_type(dtype.bits))
    if dtype.is_float:
        fa, fb = a.view(dtype.np), b.view(dtype.np)
        both_nan = np.isnan(fa.astype(np.float32)) & np.isnan(fb.astype(np.float32))
        return bool(np.all((a == b) | both_nan))
    return bool(np.array_equal(a, b))
