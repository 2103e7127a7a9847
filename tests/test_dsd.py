"""DSD address arithmetic (spec 7.1, 7.2, 7.6): tensor_access and mem4d against brute-force
enumeration, then the same access patterns through the engine."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from harness import compile_single, started
from hypothesis import given, settings
from hypothesis import strategies as st

from wsejax import dsd as dsd_math
from wsejax import dsl as csl
from wsejax.errors import ProgramError


def brute_force(shape, coeff_rows, consts, extents):
    """Addresses visited by `|i_0..i_m|{extents} -> A[sum_d coeff_rows[r][d] * i_d + consts[r]]`
    in row-major counter order, by enumerating every counter tuple."""
    out = []
    for counters in itertools.product(*(range(e) for e in extents)):
        idx = [sum(c * i for c, i in zip(row, counters)) + k for row, k in zip(coeff_rows, consts)]
        out.append(np.ravel_multi_index(idx, shape, mode="wrap") if all(
            0 <= v < n for v, n in zip(idx, shape)) else _linear(idx, shape))
    return np.asarray(out, np.int64)


def _linear(idx, shape):
    flat = 0
    for v, n in zip(idx, shape):
        flat = flat * n + v
    return flat


@st.composite
def accesses(draw, max_vars=4):
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=rank, max_size=rank)))
    m = draw(st.integers(1, max_vars))
    extents = tuple(draw(st.lists(st.integers(1, 4), min_size=m, max_size=m)))
    rows = [tuple(draw(st.lists(st.integers(-3, 3), min_size=m, max_size=m)))
            for _ in range(rank)]
    consts = tuple(draw(st.lists(st.integers(-5, 10), min_size=rank, max_size=rank)))
    return shape, rows, consts, extents


def affine_indices(rows, consts, ivars):
    return tuple(sum((c * v for c, v in zip(row, ivars)), dsd_math.Affine()) + k
                 for row, k in zip(rows, consts))


@settings(max_examples=200, deadline=None)
@given(accesses(max_vars=1))
def test_mem1d_tensor_access_is_offset_plus_stride(case):
    shape, rows, consts, extents = case
    ivars = dsd_math.induction_vars(1)
    offset, (stride,) = dsd_math.linearize(shape, affine_indices(rows, consts, ivars), 1)
    got = dsd_math.mem1d_addresses(offset, stride, extents[0])
    np.testing.assert_array_equal(got, brute_force(shape, rows, consts, extents))


@settings(max_examples=200, deadline=None)
@given(accesses())
def test_mem4d_tensor_access_matches_enumeration(case):
    shape, rows, consts, extents = case
    m = len(extents)
    offset, coeffs = dsd_math.linearize(shape, affine_indices(rows, consts,
                                                              dsd_math.induction_vars(m)), m)
    got = dsd_math.mem4d_addresses(offset, coeffs, extents)
    np.testing.assert_array_equal(got, brute_force(shape, rows, consts, extents))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4).flatmap(
    lambda e: st.tuples(st.just(tuple(e)),
                        st.lists(st.integers(-20, 20), min_size=len(e), max_size=len(e)).map(tuple),
                        st.integers(-10, 10))))
def test_hand_written_mem4d_strides_follow_the_step_rule(case):
    extents, strides, offset = case
    coeffs = dsd_math.coeffs_from_strides(strides, extents)
    np.testing.assert_array_equal(dsd_math.mem4d_addresses(offset, coeffs, extents),
                                  dsd_math.walk_strides(offset, strides, extents))
    assert dsd_math.strides_from_coeffs(coeffs, extents) == strides


def test_documented_mem4d_equivalences():
    # |i,j|{5,5} -> A[2*i+j]  is extent .{5,5} with stride .{1,-2}
    i, j = dsd_math.induction_vars(2)
    off, coeffs = dsd_math.linearize((100,), (2 * i + j,), 2)
    assert (off, dsd_math.strides_from_coeffs(coeffs, (5, 5))) == (0, (1, -2))
    # |i,j,k,l|{5,5,5,5} -> A[i+j, k+l+2] on [4,5]  is offset 2, stride .{1,-3,-3,-23}
    i, j, k, l = dsd_math.induction_vars(4)
    off, coeffs = dsd_math.linearize((4, 5), (i + j, k + l + 2), 4)
    assert (off, dsd_math.strides_from_coeffs(coeffs, (5, 5, 5, 5))) == (2, (1, -3, -3, -23))
    # |i,j|{2,2} -> a[i,j] on [4,3] visits [0,0],[0,1],[1,0],[1,1]
    i, j = dsd_math.induction_vars(2)
    off, coeffs = dsd_math.linearize((4, 3), (i, j), 2)
    assert list(dsd_math.mem4d_addresses(off, coeffs, (2, 2))) == [0, 1, 3, 4]


def test_products_of_induction_variables_are_rejected():
    i, j = dsd_math.induction_vars(2)
    with pytest.raises(TypeError):
        i * j  # noqa: B018


# ------------------------------------------------------------------------------------------------
# The same patterns through the engine: @fmovs from a patterned DSD into a contiguous one.

SHAPE = (4, 5, 6)
PATTERNS = {
    "mem1d stride 3": (lambda A: csl.tensor_access(lambda i: A[1, 0, 3 * i + 2], 2), None),
    "mem1d negative": (lambda A: csl.tensor_access(lambda i: A[3, 4, 5 - i], 6), None),
    "mem1d diagonal": (lambda A: csl.tensor_access(lambda i: A[i, i, i], 4), None),
    "mem4d 2 vars": (lambda A: csl.tensor_access(lambda i, j: A[i, 2, j], (4, 6)), None),
    "mem4d 3 vars": (lambda A: csl.tensor_access(lambda i, j, k: A[j, i + k, 5 - k], (3, 2, 2)),
                     None),
    "mem4d 4 vars": (lambda A: csl.tensor_access(lambda i, j, k, l: A[i + j, k, l + 1],
                                                 (2, 2, 3, 4)), None),
    "mem4d strides": (None, dict(offset=7, stride=(2, 30), extent=(3, 4))),
}


def brute_patterns():
    out = {}
    out["mem1d stride 3"] = [np.ravel_multi_index((1, 0, 3 * i + 2), SHAPE) for i in range(2)]
    out["mem1d negative"] = [np.ravel_multi_index((3, 4, 5 - i), SHAPE) for i in range(6)]
    out["mem1d diagonal"] = [np.ravel_multi_index((i, i, i), SHAPE) for i in range(4)]
    out["mem4d 2 vars"] = [np.ravel_multi_index((i, 2, j), SHAPE)
                           for i in range(4) for j in range(6)]
    out["mem4d 3 vars"] = [np.ravel_multi_index((j, i + k, 5 - k), SHAPE)
                           for i in range(3) for j in range(2) for k in range(2)]
    out["mem4d 4 vars"] = [np.ravel_multi_index((i + j, k, l + 1), SHAPE)
                           for i in range(2) for j in range(2) for k in range(3) for l in range(4)]
    # hand-written: innermost stride 2 (extent 4), outer stride 30 applied after the inner wraps
    out["mem4d strides"] = [7 + a * (30 + 2 * 3) + 2 * b for a in range(3) for b in range(4)]
    return out


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_engine_reads_the_enumerated_elements(pattern, rng):
    ta, explicit = PATTERNS[pattern]
    expected = brute_patterns()[pattern]
    n = len(expected)

    def pe():
        A = csl.var("A", csl.f32[SHAPE])
        out = csl.var("out", csl.f32[n])
        if ta is not None:
            kind = csl.mem1d_dsd if len(ta(A).extents) == 1 else csl.mem4d_dsd
            src = csl.get_dsd(kind, tensor_access=ta(A))
        else:
            src = csl.get_dsd(csl.mem4d_dsd, base_address=A, **explicit)
        dst = csl.get_dsd(csl.mem1d_dsd, base_address=out, extent=n)

        @csl.fn
        def run():
            csl.fmovs(dst, src)
            csl.unblock_cmd_stream()

        csl.export_symbol(A)
        csl.export_symbol(out)
        csl.export_symbol(run)

    r = started(compile_single(pe, {"A": csl.f32, "out": csl.f32, "run": csl.fn_type()},
                               width=2, height=1))
    size = int(np.prod(SHAPE))
    data = rng.standard_normal(2 * size).astype(np.float32)
    r.memcpy_h2d(r.get_id("A"), data, 0, 0, 2, 1, size, streaming=False)
    r.launch("run")
    got = np.zeros(2 * n, np.float32)
    r.memcpy_d2h(got, r.get_id("out"), 0, 0, 2, 1, n, streaming=False)
    r.stop()
    per_pe = data.reshape(2, size)
    np.testing.assert_array_equal(got.reshape(2, n), per_pe[:, expected])


def test_tensor_access_rejects_rank_mismatch():
    def pe():
        A = csl.var("A", csl.f32[4, 4])
        csl.tensor_access(lambda i: A[i], 4)

    with pytest.raises(ProgramError, match="rank 2"):
        compile_single(pe, {}, width=1, height=1)
