"""Copy-mode memcpy (spec 12.2-12.3): index maps, round trips and placement, property-tested.

The layouts are fixed (a 5x4 rectangle with a few symbols) so that hypothesis varies only
values, regions, counts, orders and data types, and nothing recompiles per example.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import compile_single, started
from hypothesis import given, settings
from hypothesis import strategies as st

from wsejax import MemcpyDataType, MemcpyError, MemcpyOrder
from wsejax import dsl as csl
from wsejax.memcpy import colbcast_map, roi_map, rowbcast_map

W, H = 5, 4
SYMBOLS = {"a32": (csl.f32, 24), "b32": (csl.u32, 7), "a16": (csl.i16, 30), "b16": (csl.f16, 9)}


def _pe():
    syms = [csl.var(name, t[n]) for name, (t, n) in SYMBOLS.items()]

    @csl.fn
    def touch():
        csl.unblock_cmd_stream()

    for s in syms:
        csl.export_symbol(s)
    csl.export_symbol(touch)


_RUNNER = None


def runner():
    """One runtime for the whole module: compiled once, reused by every example."""
    global _RUNNER
    if _RUNNER is None:
        exports = {name: t for name, (t, _) in SYMBOLS.items()}
        exports["touch"] = csl.fn_type()
        _RUNNER = started(compile_single(_pe, exports, width=W, height=H))
    return _RUNNER


def words_of(r, name: str, bits: int) -> np.ndarray:
    """Every PE's raw memory of `name` as `bits`-bit words: `[H, W, n_words]`."""
    def words(x, y):
        raw = r.read_symbol(x, y, name)
        raw = np.concatenate([raw, np.zeros(-len(raw) % 4, np.uint8)])
        return raw.view(np.uint16 if bits == 16 else np.uint32)

    return np.array([[words(x, y) for x in range(W)] for y in range(H)])


@st.composite
def transfers(draw):
    name = draw(st.sampled_from(sorted(SYMBOLS)))
    t, n = SYMBOLS[name]
    data_type = draw(st.sampled_from(list(MemcpyDataType)))
    bits = 16 if data_type is MemcpyDataType.MEMCPY_16BIT else 32
    capacity = n * t.bits // bits
    px = draw(st.integers(0, W - 1))
    py = draw(st.integers(0, H - 1))
    w = draw(st.integers(1, W - px))
    h = draw(st.integers(1, H - py))
    l = draw(st.integers(1, capacity))
    order = draw(st.sampled_from(list(MemcpyOrder)))
    seed = draw(st.integers(0, 2**32 - 1))
    return name, data_type, bits, px, py, w, h, l, order, seed


def host_values(seed, size, bits):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1 << bits, size=size, dtype=np.uint64).astype(np.uint32)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.sampled_from(list(MemcpyOrder)))
def test_roi_map_matches_spec_formulas(w, h, l, order):
    nmap = roi_map(order, w, h, l)
    seen = np.zeros(w * h * l, int)
    for n in range(w * h * l):
        if order is MemcpyOrder.ROW_MAJOR:
            k, i, j = n % l, (n // l) % w, n // (l * w)
        else:
            j, i, k = n % h, (n // h) % w, n // (h * w)
        assert nmap[j, i, k] == n
        seen[n] += 1
    assert np.all(seen == 1)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5), st.sampled_from(list(MemcpyOrder)))
def test_broadcast_maps_match_spec_formulas(w, h, l, order):
    row, col = rowbcast_map(order, w, h, l), colbcast_map(order, w, h, l)
    for j in range(h):
        for i in range(w):
            for k in range(l):
                if order is MemcpyOrder.ROW_MAJOR:
                    assert row[j, i, k] == j * l + k and col[j, i, k] == i * l + k
                else:
                    assert row[j, i, k] == j + h * k and col[j, i, k] == i + w * k


@settings(max_examples=40, deadline=None)
@given(transfers())
def test_h2d_then_d2h_is_identity(case):
    name, data_type, bits, px, py, w, h, l, order, seed = case
    r = runner()
    src = host_values(seed, w * h * l, bits)
    sym = r.get_id(name)
    r.memcpy_h2d(sym, src, px, py, w, h, l, streaming=False, order=order, data_type=data_type,
                 nonblock=False)
    out = np.full(w * h * l, 0xDEADBEEF, np.uint32)
    r.memcpy_d2h(out, sym, px, py, w, h, l, streaming=False, order=order, data_type=data_type,
                 nonblock=False)
    np.testing.assert_array_equal(out, src)


@settings(max_examples=40, deadline=None)
@given(transfers())
def test_each_element_lands_where_the_formula_says(case):
    name, data_type, bits, px, py, w, h, l, order, seed = case
    r = runner()
    before = words_of(r, name, bits)
    src = host_values(seed, w * h * l, bits)
    r.memcpy_h2d(r.get_id(name), src.view(np.float32), px, py, w, h, l, streaming=False,
                 order=order, data_type=data_type, nonblock=False)
    after = words_of(r, name, bits)
    want = before.copy()
    for n in range(w * h * l):               # an independent loop over host indices
        if order is MemcpyOrder.ROW_MAJOR:
            k, i, j = n % l, (n // l) % w, n // (l * w)
        else:
            j, i, k = n % h, (n // h) % w, n // (h * w)
        want[py + j, px + i, k] = src[n] & (0xFFFF if bits == 16 else 0xFFFFFFFF)
    np.testing.assert_array_equal(after, want)


@settings(max_examples=25, deadline=None)
@given(transfers(), st.booleans())
def test_broadcasts_place_one_row_or_column_everywhere(case, by_row):
    name, data_type, bits, px, py, w, h, l, order, seed = case
    r = runner()
    before = words_of(r, name, bits)
    size = h * l if by_row else w * l
    src = host_values(seed, size, bits).view(np.int32)
    call = r.memcpy_h2d_rowbcast if by_row else r.memcpy_h2d_colbcast
    call(r.get_id(name), src, px, py, w, h, l, streaming=False, order=order,
         data_type=data_type, nonblock=False)
    after = words_of(r, name, bits)
    want = before.copy()
    raw = src.view(np.uint32)
    for j in range(h):
        for i in range(w):
            for k in range(l):
                if by_row:
                    n = j * l + k if order is MemcpyOrder.ROW_MAJOR else j + h * k
                else:
                    n = i * l + k if order is MemcpyOrder.ROW_MAJOR else i + w * k
                want[py + j, px + i, k] = raw[n] & (0xFFFF if bits == 16 else 0xFFFFFFFF)
    np.testing.assert_array_equal(after, want)


@settings(max_examples=25, deadline=None)
@given(transfers(), st.integers(1, 4), st.integers(1, 3))
def test_a_strided_copy_reaches_every_nth_pe_and_leaves_the_rest(case, row_stride, col_stride):
    name, data_type, bits, px, py, w, h, l, order, seed = case
    r = runner()
    before = words_of(r, name, bits)
    xi, eta = len(range(0, w, row_stride)), len(range(0, h, col_stride))
    src = host_values(seed, xi * eta * l, bits).view(np.int32)
    r.memcpy_h2d_stride(r.get_id(name), src, px, py, w, h, l, row_stride, col_stride,
                        streaming=False, order=order, data_type=data_type, nonblock=False)
    after = words_of(r, name, bits)
    want = before.copy()
    raw = src.view(np.uint32)
    for b in range(eta):                      # the reached PEs, laid out as a ROI of their own
        for a in range(xi):
            for k in range(l):
                n = (b * xi + a) * l + k if order is MemcpyOrder.ROW_MAJOR \
                    else b + eta * (a + xi * k)
                want[py + b * col_stride, px + a * row_stride, k] = \
                    raw[n] & (0xFFFF if bits == 16 else 0xFFFFFFFF)
    np.testing.assert_array_equal(after, want)


def test_a_strided_copy_matches_the_reference_and_checks_its_strides():
    exports = {name: t for name, (t, _) in SYMBOLS.items()}
    exports["touch"] = csl.fn_type()
    r = started(compile_single(_pe, exports, width=W, height=H), check=True)
    for order in MemcpyOrder:
        src = np.arange(3 * 2 * 4, dtype=np.uint32) + 100 * int(order)
        # columns 0, 2, 4 and rows 1, 3: a 3 x 2 grid of PEs, 4 elements each
        r.memcpy_h2d_stride(r.get_id("b32"), src, 0, 1, W, 3, 4, 2, 2, order=order)
        got = words_of(r, "b32", 32)
        assert got[1, 2, :4].tolist() == (src.reshape((2, 3, 4), order="C" if order
                                          is MemcpyOrder.ROW_MAJOR else "F")[0, 1]).tolist()
    with pytest.raises(MemcpyError, match="row_stride and col_stride must be at least 1"):
        r.memcpy_h2d_stride(r.get_id("b32"), src, 0, 0, 2, 2, 1, 0, 1)
    with pytest.raises(MemcpyError, match="memcpy_h2d_stride"):
        r.memcpy_h2d_stride(r.get_id("b32"), src[:5], 0, 0, 3, 1, 2, 2, 1)


def test_d2h_of_16bit_data_zero_extends_and_writes_in_place():
    r = runner()
    src = np.arange(W * H * 3, dtype=np.uint32) | 0xABCD0000
    r.memcpy_h2d(r.get_id("a16"), src, 0, 0, W, H, 3, streaming=False,
                 order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_16BIT)
    out = np.full(W * H * 3, -1, np.int32)
    buffer_before = out.ctypes.data
    r.memcpy_d2h(out, r.get_id("a16"), 0, 0, W, H, 3, streaming=False,
                 order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_16BIT)
    assert out.ctypes.data == buffer_before
    np.testing.assert_array_equal(out.view(np.uint32), src & 0xFFFF)


def test_32bit_data_into_a_16bit_array_fills_two_words_low_first():
    r = runner()
    src = np.array([0x22221111, 0x44443333], np.uint32)
    r.memcpy_h2d(r.get_id("a16"), src, 2, 1, 1, 1, 2, streaming=False,
                 order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT)
    words = r.read_symbol(2, 1, "a16", dtype=np.uint16)
    assert list(words[:4]) == [0x1111, 0x2222, 0x3333, 0x4444]


def test_nonblocking_commands_complete_in_order():
    r = runner()
    src = np.arange(W * H * 4, dtype=np.float32)
    t1 = r.memcpy_h2d(r.get_id("a32"), src, 0, 0, W, H, 4, streaming=False,
                      order=MemcpyOrder.COL_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                      nonblock=True)
    out = np.zeros_like(src)
    t2 = r.memcpy_d2h(out, r.get_id("a32"), 0, 0, W, H, 4, streaming=False,
                      order=MemcpyOrder.COL_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
                      nonblock=True)
    r.task_wait(t1)
    r.task_wait(t2)
    assert r.is_task_done(t1) and r.is_task_done(t2)
    np.testing.assert_array_equal(out, src)
