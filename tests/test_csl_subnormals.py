"""Scalar f32 and bf16 expressions keep subnormals (IEEE), as operands and as results: `+ - * /`,
`%`, the comparisons, `<math>` min/max/abs/sign/sqrt/inv/floor/ceil/fscale, unary minus and
`@as` to and from the other types; f16, whose subnormals are normal in f32, is checked alike.
Each program runs in check mode (the reference interpreter beside the engine, every symbol
compared) on both arches; results are checked against numpy's f32 arithmetic, which keeps
subnormals (XLA:CPU's flushes them)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from csl_harness import compile_pe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_csl_control import ARCHS, EXPORTS, HEAD, TAIL, Runner

BF16 = ml_dtypes.bfloat16
N = 256          # operand pairs per launch

# the results of one pair, in `out[k * len(RESULTS) + i]`; `a` and `b` are the operands
RESULTS = ["a + b", "a - b", "a * b", "a / b", "a % b", "compare", "math.min(a, b)",
           "math.max(a, b)", "-a", "math.abs(a)", "math.sign(a)", "math.sqrt(a)",
           "math.inv(a)", "math.floor(a)", "math.ceil(a)", "math.fscale(a, 5)",
           "math.fscale(a, -5)", "convert", "to_int"]
S = len(RESULTS)

PROGRAM = """
const math = @import_module("<math>");
const T = {T};
var inp: [{n2}]u32;
var out: [{nout}]u32;
fn load(i: u16) T {{ return @bitcast(T, {load}); }}
fn bits(x: T) u32 {{
  if (x != x) {{ return {nan}; }}      // a NaN's sign and payload are not compared
  return {bits};
}}
fn compare(a: T, b: T) u32 {{
  var f: u32 = 0;
  if (a < b) {{ f |= 1; }}
  if (a <= b) {{ f |= 2; }}
  if (a > b) {{ f |= 4; }}
  if (a >= b) {{ f |= 8; }}
  if (a == b) {{ f |= 16; }}
  if (a != b) {{ f |= 32; }}
  if (@as(bool, a)) {{ f |= 64; }}
  return f;
}}
fn main() void {{
  for (@range(u16, {n})) |k| {{
    const a = load(k);
    const b = load({n} + k);
    const o = k * {s};
{body}
  }}
  sys.unblock_cmd_stream();
}}
"""

# per operand type: the CSL type, how an operand is read from the f32 pattern in `inp` (a bf16
# one is its top half) and written as u32, a conversion and the compile options
KINDS = {
    "f32": dict(T="f32", load="inp[i]", bits="@bitcast(u32, x)", nan="0x7FC00000",
                convert="@as(u32, @bitcast(u16, @as(f16, a)))", opts={}),
    "bf16": dict(T="@fp16()", load="@as(u16, inp[i] >> 16)", bits="@as(u32, @bitcast(u16, x))",
                 nan="0x7FC0",
                 convert="bits(@as(T, @bitcast(f32, inp[k])))", opts={"fp16_format": "bf16"}),
    "f16": dict(T="f16", load="@as(u16, inp[i] >> 16)", bits="@as(u32, @bitcast(u16, x))",
                nan="0x7E00", convert="bits(@as(f16, @bitcast(f32, inp[k])))", opts={}),
}


def _body(kind: str) -> str:
    lines = []
    for i, r in enumerate(RESULTS):
        if r == "compare":
            value = "compare(a, b)"
        elif r == "convert":
            value = KINDS[kind]["convert"]
        elif r == "to_int":
            value = "@bitcast(u32, @as(i32, a))"
        else:
            value = f"bits({r})"
        lines.append(f"    out[o + {i}] = {value};")
    return "\n".join(lines)


_RUNNERS: dict = {}


def runner(tmp_path_factory, kind: str, arch: str) -> Runner:
    key = f"{kind}-{arch}"
    if key not in _RUNNERS:
        k = KINDS[kind]
        body = PROGRAM.format(T=k["T"], load=k["load"], bits=k["bits"], nan=k["nan"], n=N,
                              n2=2 * N, nout=N * S, s=S, body=_body(kind))
        t = "u32"
        prog = compile_pe(tmp_path_factory.mktemp(key), HEAD + body + TAIL.format(t=t),
                          EXPORTS.format(t=t), w=1, h=1, arch=arch, **k["opts"])
        _RUNNERS[key] = Runner(prog, 2 * N, N * S, np.uint32)
    return _RUNNERS[key]


# -- what numpy says ------------------------------------------------------------------------------

_QNAN = np.uint32(0x7FC00000)


def _f32(bits) -> np.ndarray:
    return np.asarray(bits, np.uint32).view(np.float32)


def _min_max(a, b, want_max: bool):
    """NaN where an operand is; else the larger (smaller), -0 below +0."""
    ka, kb = (np.where(x.view(np.int32) < 0, -(x.view(np.int32) & 0x7FFFFFFF) - 1,
                       x.view(np.int32)) for x in (a, b))
    pick_b = kb > ka if want_max else kb < ka
    out = np.where(pick_b, b, a)
    return np.where(np.isnan(a) | np.isnan(b), _QNAN.view(np.float32), out)


def _flags(a, b) -> np.ndarray:
    tests = [a < b, a <= b, a > b, a >= b, a == b, a != b, a != 0]
    return sum(t.astype(np.uint32) << i for i, t in enumerate(tests)).astype(np.uint32)


def _to_i32(a) -> np.ndarray:
    t = np.trunc(np.nan_to_num(a.astype(np.float64), nan=0.0))
    return np.clip(t, -2.0**31, 2.0**31 - 1).astype(np.int64).astype(np.int32).view(np.uint32)


def _expected_f32(a, b) -> dict:
    """Each result of `RESULTS` (by name) for f32 operands, as u32 bits."""
    sign = np.where(a > 0, 1.0, np.where(a < 0, -1.0, 0.0)).astype(np.float32)
    r = {"a + b": a + b, "a - b": a - b, "a * b": a * b, "a / b": a / b,
         "a % b": np.fmod(a, b), "math.min(a, b)": _min_max(a, b, False),
         "math.max(a, b)": _min_max(a, b, True), "-a": -a, "math.abs(a)": np.abs(a),
         "math.sign(a)": sign, "math.sqrt(a)": np.sqrt(a),
         "math.inv(a)": np.float32(1) / a, "math.floor(a)": np.floor(a),
         "math.ceil(a)": np.ceil(a), "math.fscale(a, 5)": np.ldexp(a, 5),
         "math.fscale(a, -5)": np.ldexp(a, -5)}
    return {k: v.astype(np.float32).view(np.uint32) for k, v in r.items()}


def expected(kind: str, a_bits, b_bits) -> np.ndarray:
    """`out` of the program for operand bits a_bits, b_bits ([N] each)."""
    if kind == "f32":
        a, b = _f32(a_bits), _f32(b_bits)
        r = _expected_f32(a, b)
        r["convert"] = a.astype(np.float16).view(np.uint16).astype(np.uint32)
    else:
        t = BF16 if kind == "bf16" else np.float16
        a = np.asarray(a_bits >> 16, np.uint16).view(t).astype(np.float32)
        b = np.asarray(b_bits >> 16, np.uint16).view(t).astype(np.float32)
        # each f32 result rounded to the 16-bit type: rounding twice is exact here (f32 keeps
        # at least 13 more bits at every magnitude, more than the p + 2 that + - * / sqrt need)
        r = {k: _f32(v).astype(t).view(np.uint16).astype(np.uint32)
             for k, v in _expected_f32(a, b).items()}
        r["convert"] = _f32(a_bits).astype(t).view(np.uint16).astype(np.uint32)
    r["compare"] = _flags(a, b)
    r["to_int"] = _to_i32(a)
    return np.stack([r[name] for name in RESULTS], axis=-1).reshape(-1)


def check(kind: str, arch: str, tmp_path_factory, a_bits, b_bits) -> None:
    a_bits = np.asarray(a_bits, np.uint32)
    b_bits = np.asarray(b_bits, np.uint32)
    got = runner(tmp_path_factory, kind, arch)(np.concatenate([a_bits, b_bits]))
    with np.errstate(all="ignore"):
        want = expected(kind, a_bits, b_bits)
    floats = np.array([r not in ("compare", "to_int") for r in RESULTS] * len(a_bits))
    same = (got == want) | (floats & _nan(want, kind) & _nan(got, kind))
    if not same.all():
        bad = np.flatnonzero(~same)[:8]
        lines = [f"{RESULTS[i % S]}: a={a_bits[i // S]:#x} b={b_bits[i // S]:#x} "
                 f"got {got[i]:#x} want {want[i]:#x}" for i in bad]
        raise AssertionError(f"{(~same).sum()} results differ:\n" + "\n".join(lines))


def _nan(bits, kind: str):
    if kind == "f32":
        return (bits & 0x7FFFFFFF) > 0x7F800000
    return (bits & 0x7FFF) > (0x7F80 if kind == "bf16" else 0x7C00)


# -- the boundaries -------------------------------------------------------------------------------

# f32 patterns: zeros, the smallest subnormals, the largest subnormal, the smallest normals,
# numbers whose sums, products and quotients land among the subnormals, and the specials
F32_EDGES = [0x00000000, 0x80000000, 0x00000001, 0x80000002, 0x00000003, 0x007FFFFF,
             0x807FFFFE, 0x00800000, 0x80800001, 0x00FFFFFF, 0x3F800000, 0xBFC00000,
             0x33800000, 0x4B000001, 0x7F7FFFFF, 0x7F800000]


def _pairs(values):
    a, b = np.meshgrid(np.asarray(values, np.uint32), np.asarray(values, np.uint32))
    return a.reshape(-1), b.reshape(-1)


# bf16 operands are the top halves; the bottom halves make `@as(bf16, f32)` round (ties among
# the subnormals, and up into the normal range)
BF16_EDGES = [0x00000000, 0x80000000, 0x00010000, 0x80028000, 0x00038001, 0x007FFFFF,
              0x807E0000, 0x00800000, 0x80817FFF, 0x00FF8000, 0x3F800000, 0xBFC00000,
              0x0C000000, 0x73000000, 0x7F7F0000, 0x7F800000]


# f16 patterns likewise: f16 subnormals are normal in f32, so f16 keeps plain jnp code
F16_EDGES = [0x00000000, 0x80000000, 0x00010000, 0x80021000, 0x00031001, 0x03FFFFFF,
             0x83FE0000, 0x04000000, 0x84011FFF, 0x07FF1000, 0x3C000000, 0xBE000000,
             0x0C000000, 0x70000000, 0x7BFF0000, 0x7C000000]
EDGES = {"f32": F32_EDGES, "bf16": BF16_EDGES, "f16": F16_EDGES}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("kind", ["f32", "bf16", "f16"])
def test_every_operator_at_the_subnormal_boundaries(tmp_path_factory, kind, arch):
    a, b = _pairs(EDGES[kind])
    assert len(a) == N
    check(kind, arch, tmp_path_factory, a, b)


def _halfway_quotients(rng) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose quotient is (2j + 1) / 2 units of 2**-149, or one f32 spacing of the
    dividend away from that, and whose product is just below or above the smallest normal."""
    j = rng.integers(0, 2**20, N // 2).astype(np.float64)
    m = rng.choice([1.0, 3.0, 5.0, 7.0], N // 2)
    a = np.float32((2 * j + 1) * m * 2.0**-50).view(np.uint32)
    a = a + rng.integers(-1, 2, N // 2).astype(np.uint32)
    b = np.float32(m * 2.0**100).view(np.uint32)
    p = np.float32(1.0 + rng.integers(0, 2**10, N // 2) * 2.0**-23).view(np.uint32)
    q = (np.float32(2.0**-126) / _f32(p)).view(np.uint32) + rng.integers(-2, 3, N // 2)
    return np.concatenate([a, p]), np.concatenate([b, q.astype(np.uint32)])


@pytest.mark.parametrize("arch", ARCHS)
def test_division_rounds_halfway_subnormal_quotients_to_even(tmp_path_factory, arch):
    a, b = _halfway_quotients(np.random.default_rng(7))
    quotients = (_f32(a[:N // 2]) / _f32(b[:N // 2])).view(np.uint32)
    assert (quotients < 0x800000).all() and (quotients & 1).any() and not (quotients & 1).all()
    check("f32", arch, tmp_path_factory, a, b)


def test_a_subnormal_operand_is_not_read_as_zero(tmp_path_factory):
    out = runner(tmp_path_factory, "f32", "wse2")(np.r_[np.full(N, 3, np.uint32),
                                                        np.zeros(N, np.uint32)])
    flags = out[RESULTS.index("compare")]
    assert flags & 4 and flags & 64            # 3 * 2**-149 > 0, and it is nonzero
    assert out[RESULTS.index("a + b")] == 3


# -- random patterns ------------------------------------------------------------------------------

# f32 patterns, half of them among the subnormals and the smallest normals
_PATTERNS = st.one_of(st.integers(0, 2**32 - 1),
                      st.integers(0, 0x01FFFFFF).map(lambda x: x | (x & 1) << 31),
                      st.integers(0, 0x01FFFFFF).map(lambda x: x ^ 0x80000000))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(a=st.lists(_PATTERNS, min_size=N, max_size=N),
       b=st.lists(_PATTERNS, min_size=N, max_size=N),
       kind=st.sampled_from(["f32", "bf16", "f16"]), arch=st.sampled_from(ARCHS))
def test_random_patterns_match_numpy(tmp_path_factory, a, b, kind, arch):
    if kind != "f32":      # 16-bit subnormals are the top halves of f32 patterns near 0
        a = [x if x & 0x7F800000 else (x & 0x80000000) | (x & 0x7FFF) << 16 for x in a]
        b = [x if x & 0x7F800000 else (x & 0x80000000) | (x & 0x7FFF) << 16 for x in b]
    check(kind, arch, tmp_path_factory, a, b)
