"""Generated CSL programs of scalar arithmetic, run on the engine and the reference and checked
against a model of the language written here: two's-complement wrap of integer `+ - *`,
bitwise ops, `~`, comparisons signed or unsigned by type, IEEE f32 `+ - * /` (each op rounded
on its own, NaNs and infinities included), `if` expressions, widening `@as` (integers to wider
integers, integers and f16 to f32), runtime loops that accumulate, and locals, with values only
known at run time (read from memory)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from csl_harness import compile_pe, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax.reference import Reference

# the types computed with: (bits, signed); f32 is signed None
TYPES = {"i16": (16, True), "u16": (16, False), "i32": (32, True), "u32": (32, False),
         "f32": (32, None)}
NP = {"i16": np.int16, "u16": np.uint16, "i32": np.int32, "u32": np.uint32,
      "f32": np.float32, "f16": np.float16}
INPUTS = [*TYPES, "f16"]        # f16 values are read and widened to f32
WIDER = {"i16": ["i32", "f32"], "u16": ["u32", "i32", "f32"], "i32": ["f32"], "u32": ["f32"],
         "f16": ["f32"]}
N = 4           # elements of each input array
FLOAT_CONSTANTS = ["0.0", "-0.0", "1.5", "-2.25", "3.0e38", "1.0e-40", "0.1"]


def wrap(v, t: str):
    """v as a value of type t: integers wrap, floats round to the type."""
    if t in ("f32", "f16"):
        return NP[t](v)
    bits, signed = TYPES[t]
    v = int(v) & ((1 << bits) - 1)
    return v - (1 << bits) if signed and v >> (bits - 1) else v


def arith(op: str, x, y, t: str):
    if t != "f32":
        return wrap({"+": x + y, "-": x - y, "*": x * y, "&": x & y, "|": x | y,
                     "^": x ^ y}[op], t)
    x, y = np.float32(x), np.float32(y)
    with np.errstate(all="ignore"):
        return {"+": x + y, "-": x - y, "*": x * y, "/": x / y}[op]


# An expression is (csl text, model function of the inputs, type).
def leaf(t: str):
    element = st.integers(0, N - 1).map(lambda k: (f"{t}s[{k}]", lambda env, k=k: env[t][k], t))
    if t == "f16":
        return element
    if t == "f32":
        constant = st.sampled_from(FLOAT_CONSTANTS).map(
            lambda c: (f"@as(f32, {c})", lambda env, c=c: np.float32(float(c)), t))
    else:
        constant = st.integers(*((-40, 40) if TYPES[t][1] else (0, 80))).map(
            lambda c: (f"@as({t}, {c})", lambda env, c=c: c, t))
    return st.one_of(element, constant, st.just((f"acc_{t}", lambda env: env["acc_" + t], t)))


@functools.cache
def expressions(t: str, depth: int = 3):
    """Expressions of type t, nested at most `depth` deep."""
    if depth == 0 or t == "f16":
        return leaf(t)
    sub = expressions(t, depth - 1)

    def binary(a, b, op):
        return (f"({a[0]} {op} {b[0]})", lambda env: arith(op, a[1](env), b[1](env), t), t)

    def select(c1, c2, cmp, a, b):
        f = {"<": lambda x, y: x < y, ">=": lambda x, y: x >= y, "==": lambda x, y: x == y,
             "!=": lambda x, y: x != y}[cmp]
        return (f"(if ({c1[0]} {cmp} {c2[0]}) {a[0]} else {b[0]})",
                lambda env: a[1](env) if f(c1[1](env), c2[1](env)) else b[1](env), t)

    def widened(e):
        return (f"@as({t}, {e[0]})", lambda env: wrap(e[1](env), t), t)

    ops = ["+", "-", "*", "/"] if t == "f32" else ["+", "-", "*", "&", "|", "^"]
    options = [leaf(t), st.builds(binary, sub, sub, st.sampled_from(ops))]
    if t != "f32":
        options.append(sub.map(lambda a: (f"(~{a[0]})", lambda env: wrap(~a[1](env), t), t)))
    for c in TYPES:     # a comparison of any type picks between two values of type t
        cmp = expressions(c, depth - 1)
        options.append(st.builds(select, cmp, cmp, st.sampled_from(["<", ">=", "==", "!="]),
                                 sub, sub))
    for narrow, wider in WIDER.items():
        if t in wider:
            options.append(expressions(narrow, depth - 1).map(widened))
    return st.one_of(*options)


def _values(t: str):
    if t in ("f32", "f16"):
        return st.floats(width=int(t[1:]), allow_nan=True, allow_infinity=True).map(
            lambda v: NP[t](v))
    b, signed = TYPES[t]
    return st.integers(*((-(1 << (b - 1)), (1 << (b - 1)) - 1) if signed else (0, (1 << b) - 1)))


def _literal(v, t: str) -> str:
    """A CSL literal of input value v of type t (NaNs and infinities by their bits)."""
    if t not in ("f32", "f16"):
        return str(v)
    if np.isfinite(v):
        return repr(float(v))
    bits = NP[t](v).view(np.uint32 if t == "f32" else np.uint16)
    return f"@bitcast({t}, @as({'u32' if t == 'f32' else 'u16'}, {int(bits)}))"


@st.composite
def programs(draw):
    inputs = {t: [draw(_values(t)) for _ in range(N)] for t in INPUTS}
    loops = {t: draw(expressions(t)) for t in TYPES}     # added to acc_t on every trip
    outs = [draw(expressions(t)) for t in TYPES for _ in range(2)]
    trips = draw(st.integers(0, 3))
    return inputs, loops, outs, trips


def source(inputs, loops, outs, trips) -> str:
    lines = ["param memcpy_params;",
             'const sys = @import_module("<memcpy/memcpy>", memcpy_params);']
    for t, vals in inputs.items():
        lines.append(f"var {t}s = [{N}]{t} {{ {', '.join(_literal(v, t) for v in vals)} }};")
    for t in TYPES:
        lines.append(f"var out_{t}: [2]{t};")
    lines.append("fn main() void {")
    for t in TYPES:
        lines.append(f"  var acc_{t}: {t} = 0;")
    lines.append(f"  for (@range(u16, {trips})) |trip| {{")
    for t, e in loops.items():
        lines.append(f"    acc_{t} = acc_{t} + {e[0]};")
    lines.append("  }")
    for k, e in enumerate(outs):
        lines.append(f"  out_{e[2]}[{k % 2}] = {e[0]};")
    lines.append("  sys.unblock_cmd_stream();")
    lines.append("}")
    lines.append("comptime { @export_symbol(main); }")
    return "\n".join(lines) + "\n"


def model(inputs, loops, outs, trips) -> dict:
    env = {t: list(v) for t, v in inputs.items()}
    for t in TYPES:
        env["acc_" + t] = wrap(0, t)
    for _ in range(trips):
        for t, e in loops.items():       # in order: a later update sees an earlier one
            env["acc_" + t] = arith("+", env["acc_" + t], e[1](env), t)
    want = {t: [0, 0] for t in TYPES}
    for k, e in enumerate(outs):
        want[e[2]][k % 2] = e[1](env)
    return want


def check(tmp_path, case):
    inputs, loops, outs, trips = case
    prog = compile_pe(tmp_path, source(*case), '@export_name("main", fn()void);', w=1)
    want = model(*case)
    rt = run(prog)
    ref = Reference(prog)
    ref.launch("main")
    for t in TYPES:
        expect = np.array([NP[t](v) if t == "f32" else v for v in want[t]],
                          dtype=np.float32 if t == "f32" else np.int64).astype(NP[t])
        np.testing.assert_array_equal(rt.read_symbol(0, 0, f"out_{t}", NP[t]), expect,
                                      err_msg=f"engine, out_{t}")
        np.testing.assert_array_equal(ref.memory(0, 0)[f"out_{t}"].astype(NP[t]), expect,
                                      err_msg=f"reference, out_{t}")


def differential(max_examples: int, wide: bool):
    return settings(max_examples=max_examples, deadline=None, derandomize=not wide,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.function_scoped_fixture])


@differential(10, wide=False)
@given(programs())
def test_generated_integer_programs_match_the_model(tmp_path, case):
    check(tmp_path, case)


@pytest.mark.slow
@differential(150, wide=True)
@given(programs())
def test_generated_integer_programs_match_the_model_wide(tmp_path, case):
    check(tmp_path, case)


def test_the_model_wraps_as_twos_complement():
    assert wrap(0x7FFF + 1, "i16") == -0x8000
    assert wrap(-1, "u16") == 0xFFFF
    assert wrap(0xFFFF * 0xFFFF, "u32") == (0xFFFF * 0xFFFF) & 0xFFFFFFFF
    assert wrap(~5, "u32") == 0xFFFFFFFA
