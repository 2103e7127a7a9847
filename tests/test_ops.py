"""Tests of wsejax.ops: every op, bit-exact against the numpy oracle in reference_ops."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_ops import REFERENCE, reference_apply

from wsejax import ops
from wsejax.errors import ProgramError
from wsejax.types import DType, uint_of_width

N = 17  # elements of a DSD operand; a scalar operand is 0-d

# Spec §8's table, 'v16'/'vh'/'vs' written as 's'.
# fmt: off
SPEC_FORMS = {
    **dict.fromkeys(["fadds", "fsubs", "fmuls", "fmaxs", "faddh", "fsubh", "fmulh", "fmaxh",
                     "faddhs"], ("DDD", "DsD", "DDs", "psD")),
    **dict.fromkeys(["fmacs", "fmach", "fmachs"], ("DDDs",)),
    **dict.fromkeys(["fmovs", "fmovh", "mov16", "mov32"], ("DD", "pD", "Ds")),
    **dict.fromkeys(["fnegs", "fabss", "fnegh", "fabsh", "fh2s", "fs2h", "xp162fs", "xp162fh",
                     "popcnt", "clz", "ctz"], ("DD", "Ds")),
    **dict.fromkeys(["fs2xp16", "fh2xp16"], ("DD", "Ds", "ps")),
    **dict.fromkeys(["add16", "addc16", "and16", "or16", "xor16", "sll16", "slr16", "sar16"],
                    ("DDD", "DsD", "DDs")),
    "sub16": ("DDD", "DDs"),
    **dict.fromkeys(["fnorms", "fnormh"], ("ps",)),
    **dict.fromkeys(["fscales", "fscaleh"], ("pss",)),
}

# Raw bit patterns worth hitting on purpose: zeros, subnormal edges, max, inf, NaNs (quiet and
# signalling), 1.0 and the float values around the i16 saturation bounds.
SPECIAL_BITS = {
    DType.f16: [0x0000, 0x8000, 0x0001, 0x83FF, 0x0400, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00,
                0x7C01, 0xFE00, 0x3C00, 0xBC00, 0x7800, 0xF800, 0x77FF, 0xF801, 0x3800, 0xB800],
    DType.f32: [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF,
                0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC00000, 0x3F800000,
                0x46FFFE00, 0x46FFFF00, 0x47000000, 0xC7000000, 0xC7000080, 0xC7000100,
                0x3F000000, 0xBF000000, 0x33800000, 0x38800000],
    DType.i16: [0x0000, 0x0001, 0xFFFF, 0x7FFF, 0x8000, 0x0800, 0x0801, 0x0803, 0xF7FF],
    DType.u16: [0x0000, 0x0001, 0x000F, 0x0010, 0x0011, 0x7FFF, 0x8000, 0xFFFF, 0xFFF0, 0x0100],
    DType.u32: [0x00000000, 0x00000001, 0xFFFFFFFF, 0x80000000, 0x7FC00001],
}
# fmt: on


@pytest.fixture(autouse=True)
def _strict_promotion():
    with jax.numpy_dtype_promotion("strict"):
        yield


def _raw(dtype: DType) -> st.SearchStrategy[int]:
    """Raw bit patterns of `dtype`: uniform, special, and (for floats) 'ordinary' values."""
    top = 2**dtype.bits - 1
    parts = [st.integers(0, top), st.sampled_from(SPECIAL_BITS[dtype])]
    if dtype.is_float:
        uint = uint_of_width(dtype.bits)
        parts.append(
            st.floats(width=dtype.bits).map(lambda x: int(np.array(x, dtype.np).view(uint)))
        )
    return st.one_of(*parts)


def _operand(dtype: DType, shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    uint = uint_of_width(dtype.bits)
    return hnp.arrays(uint, shape, elements=_raw(dtype)).map(lambda a: a.view(dtype.np))


def _bits(x: np.ndarray) -> np.ndarray:
    return x.view(uint_of_width(x.dtype.itemsize * 8))


def assert_same_bits(got: np.ndarray, want: np.ndarray, context: str = "") -> None:
    """Bit-exact equality, except that any NaN matches any NaN."""
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, context)
    same = _bits(got) == _bits(want)
    if want.dtype.kind == "f":
        same |= np.isnan(got) & np.isnan(want)
    bad = np.flatnonzero(~same)
    assert bad.size == 0, (
        f"{context}: elements {bad.tolist()} got {_bits(got).ravel()[bad]} "
        f"want {_bits(want).ravel()[bad]}"
    )


def _jitted(name: str):
    return jax.jit(lambda *s: ops.apply(name, *s))


JITTED = {name: _jitted(name) for name in ops.OPS}


def _layouts() -> list[tuple[str, str]]:
    """(op, source letters) for every distinct source layout of every op's forms."""
    return sorted({(name, form[1:]) for name, spec in ops.OPS.items() for form in spec.forms})


def _shape(letter: str) -> tuple[int, ...]:
    return (N,) if letter == "D" else ()


@pytest.mark.parametrize(("name", "layout"), _layouts())
@settings(max_examples=15, deadline=None, database=None)
@given(data=st.data())
def test_op_matches_reference(name, layout, data):
    spec = ops.OPS[name]
    srcs = [
        data.draw(_operand(dt, _shape(letter)), label=f"src{i}")
        for i, (dt, letter) in enumerate(zip(spec.srcs, layout, strict=True))
    ]
    got = np.asarray(JITTED[name](*srcs))
    assert_same_bits(got, reference_apply(name, *srcs), name)


def test_ops_and_reference_cover_the_same_names():
    assert set(ops.OPS) == set(REFERENCE) == set(SPEC_FORMS)


@pytest.mark.parametrize("name", sorted(ops.OPS))
def test_forms_are_well_formed_and_match_spec(name):
    spec = ops.OPS[name]
    assert spec.name == name
    assert len(set(spec.forms)) == len(spec.forms)
    for form in spec.forms:
        assert form[0] in "Dp", form
        assert set(form[1:]) <= set("Ds"), form
        assert len(form) == 1 + len(spec.srcs), form
    assert spec.forms == SPEC_FORMS[name]


@pytest.mark.parametrize(("name", "layout"), _layouts())
def test_fn_returns_dest_dtype_and_broadcast_shape(name, layout):
    spec = ops.OPS[name]
    args = [
        jax.ShapeDtypeStruct(_shape(letter), dt.np)
        for dt, letter in zip(spec.srcs, layout, strict=True)
    ]
    out = jax.eval_shape(spec.fn, *args)
    assert out.dtype == spec.dest.np
    assert out.shape == ((N,) if "D" in layout else ())


def test_apply_rejects_unknown_name_arity_and_dtype():
    one = jnp.ones(3, jnp.float32)
    with pytest.raises(ProgramError, match="unknown DSD operation 'faddx'"):
        ops.apply("faddx", one, one)
    with pytest.raises(ProgramError, match="fadds takes 2 sources, got 1"):
        ops.apply("fadds", one)
    with pytest.raises(ProgramError, match="fadds source 1 must be f32, got float16"):
        ops.apply("fadds", one, one.astype(jnp.float16))


def _run(name: str, *srcs) -> np.ndarray:
    return np.asarray(JITTED[name](*(np.asarray(s) for s in srcs)))


# (name, sources, expected destination): the spec's example and each chosen [U]/[I] policy.
EXAMPLES = [
    ("add16", [np.arange(1, 6, dtype=np.uint16), np.uint16(10)], [11, 12, 13, 14, 15]),
    # the carry out of each element goes into the next: 0xFFFF + 1 carries, 0xFFFF + 0 does not
    ("addc16", [np.uint16([0xFFFF, 0, 0xFFFF, 0xFFFF, 1, 0xFFFF]), np.uint16([1, 0, 0, 1, 0, 0])],
     [0, 1, 0xFFFF, 0, 2, 0xFFFF]),
    ("fsubs", [np.float32([5, 1]), np.float32(2)], [3, -1]),
    ("sub16", [np.uint16([1, 0]), np.uint16(2)], [0xFFFF, 0xFFFE]),
    ("sll16", [np.uint16(0x8001), np.uint16([1, 15, 16, 0xFFFF])], [2, 0x8000, 0, 0]),
    ("slr16", [np.uint16(0x8001), np.uint16([1, 15, 16, 0x100])], [0x4000, 1, 0, 0]),
    (
        "sar16",
        [np.uint16(0x8001), np.uint16([1, 15, 16, 0xFFFF])],
        [0xC000, 0xFFFF, 0xFFFF, 0xFFFF],
    ),
    ("sar16", [np.uint16(0x4000), np.uint16([1, 14, 16])], [0x2000, 1, 0]),
    ("clz", [np.uint16([0, 1, 0x8000, 0x00F0])], [16, 15, 0, 8]),
    ("ctz", [np.uint16([0, 1, 0x8000, 0x00F0])], [16, 0, 15, 4]),
    ("popcnt", [np.uint16([0, 0xFFFF, 0x0F01])], [0, 16, 5]),
    (
        "fs2xp16",
        [np.float32([1.9, -1.9, 40000, -40000, np.inf, -np.inf, np.nan, -0.0])],
        [1, -1, 32767, -32768, 32767, -32768, 0, 0],
    ),
    ("fh2xp16", [np.float16([32768, -32768, 2.5, np.nan])], [32767, -32768, 2, 0]),
    ("xp162fs", [np.int16([-1, -32768, 32767])], [-1.0, -32768.0, 32767.0]),
    ("xp162fh", [np.int16([-1, 2049, 2051, 32767])], [-1.0, 2048.0, 2052.0, 32768.0]),
    (
        "fs2h",
        [np.float32([1 + 2**-11, 1 + 3 * 2**-11, 65520, 2**-25, 2**-25 + 2**-40])],
        [1.0, 1 + 2**-9, np.inf, 0.0, 2**-24],
    ),
    (
        "fmaxs",
        [
            np.float32([np.nan, 1, -0.0, 0.0, -0.0, np.nan]),
            np.float32([1, np.nan, 0.0, -0.0, -0.0, np.nan]),
        ],
        [1, 1, 0.0, 0.0, -0.0, np.nan],
    ),
    (
        "fmaxh",
        [np.float16([np.nan, -np.inf, -0.0]), np.float16([-2, np.nan, 0.0])],
        [-2, -np.inf, 0.0],
    ),
    ("faddhs", [np.float32(2**24), np.float16([1, 2])], [2**24, 2**24 + 2]),
]


@pytest.mark.parametrize(("name", "srcs", "want"), EXAMPLES)
def test_documented_examples_and_policies(name, srcs, want):
    got = _run(name, *srcs)
    assert_same_bits(got, np.asarray(want, got.dtype), name)
    assert_same_bits(got, reference_apply(name, *srcs), f"{name} (reference)")


# Products that a fused multiply-add would not round: b * s is exact in a wider type, its rounding
# to the op's type cancels against a, so unfused gives 0 and fused gives the rounding error.
UNFUSED = [
    ("fmacs", [np.float32(-(1 + 2**-11)), np.float32(1 + 2**-12), np.float32(1 + 2**-12)]),
    ("fmach", [np.float16(-(1 + 2**-5)), np.float16(1 + 2**-6), np.float16(1 + 2**-6)]),
    ("fmachs", [np.float32(-(1 + 2**-5)), np.float16(1 + 2**-6), np.float16(1 + 2**-6)]),
]


@pytest.mark.parametrize(("name", "srcs"), UNFUSED)
def test_mac_rounds_the_product_before_adding(name, srcs):
    full = [np.full(N, s) for s in srcs]
    assert_same_bits(_run(name, *full), np.zeros(N, ops.OPS[name].dest.np), name)

    # Also when XLA fuses the op into a larger computation.
    def twice(*s):
        return ops.apply(name, *s) * s[0].dtype.type(1) + ops.apply(name, *s)

    got = np.asarray(jax.jit(twice)(*full))
    assert_same_bits(got, np.zeros(N, ops.OPS[name].dest.np), f"{name} fused")


def _many_floats(rng: np.random.Generator, dtype: DType, n: int) -> np.ndarray:
    """Bit patterns of `dtype`: a third uniform, two thirds with exponents near the subnormals."""
    man_bits, low_exponents = {16: (10, 8), 32: (23, 64)}[dtype.bits]

    def field(bits: int) -> np.ndarray:
        return rng.integers(0, 2**bits, n, dtype=np.uint64)

    uniform = field(dtype.bits)
    exponent = rng.integers(0, low_exponents, n, dtype=np.uint64)
    near_zero = (field(1) << (dtype.bits - 1)) | (exponent << man_bits) | field(man_bits)
    both = np.where(rng.integers(0, 3, n) == 0, uniform, near_zero)
    return both.astype(uint_of_width(dtype.bits)).view(dtype.np)


# numpy's own IEEE ufuncs (subnormals kept) as a second, fast oracle over many values.
NUMPY_ORACLE = {
    "fadds": lambda a, b: a + b,
    "fsubs": lambda a, b: a - b,
    "fmuls": lambda a, b: a * b,
    "fmacs": lambda a, b, s: a + b * s,
    "faddh": lambda a, b: a + b,
    "fsubh": lambda a, b: a - b,
    "fmulh": lambda a, b: a * b,
    "fmach": lambda a, b, s: a + b * s,
    "fmachs": lambda a, b, s: a + (b * s).astype(np.float32),
    "faddhs": lambda a, b: a + b.astype(np.float32),
    "fh2s": lambda a: a.astype(np.float32),
    "fs2h": lambda a: a.astype(np.float16),
}


@pytest.mark.parametrize("name", sorted(NUMPY_ORACLE))
def test_float_arithmetic_matches_numpy_on_many_values(name):
    # XLA:CPU flushes f32 subnormals; these draws put many operands and results among them.
    rng = np.random.default_rng(sum(map(ord, name)))
    srcs = [_many_floats(rng, dt, 100_000) for dt in ops.OPS[name].srcs]
    with np.errstate(all="ignore"):
        want = NUMPY_ORACLE[name](*srcs)
    assert_same_bits(np.asarray(JITTED[name](*srcs)), want, name)


def test_moves_copy_nan_payloads_bit_for_bit():
    for name, dtype, bits in [
        ("fmovs", np.float32, [0x7F800001, 0xFFC00123]),
        ("fmovh", np.float16, [0x7C01, 0xFE23]),
    ]:
        uint = uint_of_width(np.dtype(dtype).itemsize * 8)
        src = np.array(bits, uint).view(dtype)
        np.testing.assert_array_equal(_bits(_run(name, src)), np.array(bits, uint))


def test_reference_apply_broadcasts_and_reinterprets_integer_sources():
    got = reference_apply("add16", np.int16([-1, 1]), 1)
    np.testing.assert_array_equal(got, np.uint16([0, 2]))
    got = reference_apply("fmacs", np.float32([1, 2]), np.float32(3), np.float32(2))
    assert got.dtype == np.float32 and got.shape == (2,)
    np.testing.assert_array_equal(got, np.float32([7, 8]))
    with pytest.raises(TypeError, match="must be float32"):
        reference_apply("fadds", np.float16([1]), np.float32(1))
