"""Generated CSL programs of integer arithmetic, run on the engine and the reference and checked
against a model of the language written here: two's-complement wrap of `+ - *`, bitwise ops,
`~`, comparisons signed or unsigned by type, `if` expressions, widening `@as`, runtime loops
that accumulate, and locals, over every integer type, with values only known at run time
(read from memory)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from csl_harness import compile_pe, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax.reference import Reference

TYPES = {"i16": (16, True), "u16": (16, False), "i32": (32, True), "u32": (32, False)}
NP = {"i16": np.int16, "u16": np.uint16, "i32": np.int32, "u32": np.uint32}
WIDER = {"i16": ["i32"], "u16": ["u32", "i32"], "i32": [], "u32": []}
N = 4           # elements of each input array


def wrap(v: int, t: str) -> int:
    bits, signed = TYPES[t]
    v &= (1 << bits) - 1
    return v - (1 << bits) if signed and v >> (bits - 1) else v


# An expression is (csl text, model function of the inputs, type).
def leaf(t: str):
    return st.one_of(
        st.integers(0, N - 1).map(lambda k: (f"{t}s[{k}]", lambda env, k=k: env[t][k], t)),
        st.integers(*((-40, 40) if TYPES[t][1] else (0, 80))).map(
            lambda c: (f"@as({t}, {c})", lambda env, c=c: c, t)),
        st.just((f"acc_{t}", lambda env: env["acc_" + t], t)),
    )


@functools.cache
def expressions(t: str, depth: int = 3):
    """Expressions of type t, nested at most `depth` deep."""
    if depth == 0:
        return leaf(t)
    sub = expressions(t, depth - 1)

    def binary(a, b, op):
        f = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
             "&": lambda x, y: x & y, "|": lambda x, y: x | y, "^": lambda x, y: x ^ y}[op]
        return (f"({a[0]} {op} {b[0]})", lambda env: wrap(f(a[1](env), b[1](env)), t), t)

    def select(c1, c2, cmp, a, b):
        f = {"<": lambda x, y: x < y, ">=": lambda x, y: x >= y, "==": lambda x, y: x == y,
             "!=": lambda x, y: x != y}[cmp]
        return (f"(if ({c1[0]} {cmp} {c2[0]}) {a[0]} else {b[0]})",
                lambda env: a[1](env) if f(c1[1](env), c2[1](env)) else b[1](env), t)

    def widened(e):
        return (f"@as({t}, {e[0]})", lambda env: wrap(e[1](env), t), t)

    options = [
        leaf(t),
        st.builds(binary, sub, sub, st.sampled_from(["+", "-", "*", "&", "|", "^"])),
        sub.map(lambda a: (f"(~{a[0]})", lambda env: wrap(~a[1](env), t), t)),
    ]
    for c in TYPES:     # a comparison of any type picks between two values of type t
        cmp = expressions(c, depth - 1)
        options.append(st.builds(select, cmp, cmp, st.sampled_from(["<", ">=", "==", "!="]),
                                 sub, sub))
    for narrow, wider in WIDER.items():
        if t in wider:
            options.append(expressions(narrow, depth - 1).map(widened))
    return st.one_of(*options)


@st.composite
def programs(draw):
    inputs = {t: [draw(st.integers(*((-(1 << (b - 1)), (1 << (b - 1)) - 1) if s
                                     else (0, (1 << b) - 1)))) for _ in range(N)]
              for t, (b, s) in TYPES.items()}
    loops = {t: draw(expressions(t)) for t in TYPES}     # added to acc_t on every trip
    outs = [draw(expressions(t)) for t in TYPES for _ in range(2)]
    trips = draw(st.integers(0, 3))
    return inputs, loops, outs, trips


def source(inputs, loops, outs, trips) -> str:
    lines = ["param memcpy_params;",
             'const sys = @import_module("<memcpy/memcpy>", memcpy_params);']
    for t, vals in inputs.items():
        lines.append(f"var {t}s = [{N}]{t} {{ {', '.join(map(str, vals))} }};")
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
        env["acc_" + t] = 0
    for _ in range(trips):
        for t, e in loops.items():       # in order: a later update sees an earlier one
            env["acc_" + t] = wrap(env["acc_" + t] + e[1](env), t)
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
        expect = np.array(want[t], dtype=np.int64).astype(NP[t])
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
