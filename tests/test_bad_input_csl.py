"""Bad CSL input: each is a CslError at `file:line:col` with the source line and a caret (never
a hang, never an internal exception), comptime arithmetic follows IEEE as the run-time op does,
valid forms once refused compile and run, and accepted options the emulator does not model are
warned about once."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from csl_harness import compile_pe, read, run

from wsejax import CslError, ir
from wsejax.reference import Reference

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARCHES = ["wse2", "wse3"]

HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const math = @import_module("<math>");
var out = @zeros([8]f32);
var out_ptr: [*]f32 = &out;
"""
HEAD_LINES = HEAD.count("\n")

EXPORTS = """@export_name("out", [*]f32, true);
@export_name("main", fn()void);"""

TAIL = """
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""


def program(tmp_path, body: str, **kw):
    return compile_pe(tmp_path, HEAD + body + TAIL, EXPORTS, w=1, **kw)


def located(tmp_path, body: str, message: str, line: int, col: int, **kw) -> CslError:
    """Compiling `body` fails with `message` at pe.csl line `line` of `body` (1-based), `col`."""
    with pytest.raises(CslError) as info:
        program(tmp_path, body, **kw)
    err = info.value
    assert message in err.message
    assert (pathlib.Path(err.file).name, err.line - HEAD_LINES, err.col) == ("pe.csl", line, col)
    text = str(err).splitlines()
    assert text[1] == (HEAD + body).splitlines()[err.line - 1]     # the source line
    assert text[2] == " " * (col - 1) + "^"                          # and a caret under it
    return err


def both(prog, n=8):
    """`out`'s first n elements on PE (0, 0): (engine, reference)."""
    eng = read(run(prog), "out", 8)[0, 0, :n]
    ref = Reference(prog)
    ref.launch("main")
    return eng, np.asarray(ref.memory(0, 0)["out"]).reshape(-1)[:n]


def cslc(tmp_path) -> subprocess.CompletedProcess:
    """`wsejax cslc layout.csl --memcpy` in tmp_path, as a separate process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code = "import sys; from wsejax.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, "cslc", "layout.csl", "--memcpy", "-o",
                           "out"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


MAIN = "fn main() void { sys.unblock_cmd_stream(); }\n"
USE_Y = "fn main() void { out[0] = @as(f32, y); sys.unblock_cmd_stream(); }\n"


# ------------------------------------------------------------------------------------------------
# 1. recursion without end


def test_comptime_recursion_without_end_is_a_located_error(tmp_path):
    body = "fn f(x: u32) u32 { return f(x + 1); }\nconst y = f(0);\n" + USE_Y
    located(tmp_path, body, "comptime evaluation recursed too deeply: calls of f nest more "
            "than 200 deep", 1, 27)


def test_inline_recursion_without_end_is_a_located_error(tmp_path):
    body = ("inline fn g(x: f32) f32 { return g(x + 1.0); }\n"
            "fn main() void { out[0] = g(out[0]); sys.unblock_cmd_stream(); }\n")
    located(tmp_path, body, "comptime evaluation recursed too deeply: calls of g", 1, 34)


def test_deep_frames_per_call_still_meet_the_evaluators_limit_first(tmp_path):
    # many Python frames per CSL call: loops, ifs and a long expression around the recursion
    body = ("fn f(x: u32) u32 {\n  if (x < 100000) { var k: u32 = 0;\n"
            "    while (k < 1) : (k += 1) { for (@range(u32, 1)) |j| { if (true) {\n"
            "      return (((((((f(x + 1 + j) + 1) + 1) + 1) + 1) + 1) + 1) + 1); } } } }\n"
            "  return 0;\n}\nconst y = f(0);\n" + USE_Y)
    assert sys.getrecursionlimit() < 5000
    located(tmp_path, body, "comptime evaluation recursed too deeply", 4, 21)


def test_cslc_reports_endless_recursion_without_a_traceback(tmp_path):
    program_files(tmp_path, "fn f(x: u32) u32 { return f(x + 1); }\nconst y = f(0);\n" + USE_Y)
    r = cslc(tmp_path)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert re.search(r"pe\.csl:\d+:27: error: comptime evaluation recursed too deeply",
                     r.stderr)


def program_files(tmp_path, body: str) -> None:
    from csl_harness import LAYOUT, write

    write(tmp_path, {"layout.csl": LAYOUT.format(w=1, h=1, exports="  " + EXPORTS.replace(
        "\n", "\n  ")), "pe.csl": HEAD + body + TAIL})


# ------------------------------------------------------------------------------------------------
# 2. comptime floats follow IEEE, as the run-time op does


F32 = np.float32
with np.errstate(all="ignore"):    # the expected values overflow on purpose
    IEEE_CASES = [
        ("math.pow(10.0, 400.0)", F32(np.inf)),
        ("math.pow(@as(f32, 10.0), @as(f32, 400.0))", np.power(F32(10), F32(400))),
        ("math.pow(@as(f32, -8.0), @as(f32, 0.5))", F32(np.nan)),
        ("@as(f32, 1 << 2000)", F32(np.inf)),
        ("@as(f32, -(1 << 2000))", F32(-np.inf)),
        ("@as(f32, (1 << 128) - (1 << 103))", F32(np.inf)),       # past max + half an ulp: inf
        ("@as(f32, (1 << 128) - (1 << 104) - 1)", np.finfo(F32).max),
        ("@as(f32, (1 << 60) + (1 << 36))", F32(2.0**60)),        # a tie: to even
        ("1.0e300 * 1.0e300", F32(np.inf)),
        ("(1 << 2000) * 1.5", F32(np.inf)),
        ("-1.0e300 * 1.0e300", F32(-np.inf)),
        ("@as(f32, 1.0e300)", F32(np.inf)),
        ("@as(f32, 3.0e38) * @as(f32, 10.0)", F32(3.0e38) * F32(10)),
        ("math.exp(@as(f32, 1000.0))", np.exp(F32(1000))),
        ("math.exp(1000.0)", F32(np.inf)),
        ("math.exp(@as(f32, 1.5))", np.exp(F32(1.5))),
        ("math.log(@as(f32, 0.0))", np.log(F32(0))),
        ("math.log(@as(f32, -1.0))", F32(np.nan)),
        ("math.log(0.0)", F32(-np.inf)),
        ("math.sqrt(@as(f32, -1.0))", F32(np.nan)),
        ("math.sqrt(-1.0)", F32(np.nan)),
        ("math.inv(@as(f32, 0.0))", F32(np.inf)),
        ("math.inv(@as(f32, -0.0))", F32(-np.inf)),
        ("math.invsqrt(@as(f32, 0.0))", F32(np.inf)),
        ("math.fscale(@as(f32, 1.0), 200)", F32(np.inf)),
        ("math.floor(math.POSITIVE_INF_f32)", F32(np.inf)),
        ("math.sin(@as(f32, 1.0e30))", np.sin(F32(1.0e30))),
    ]


def _folded(prog) -> float:
    """The constant main stores into out[0]."""
    (cls,) = prog.classes
    main = next(f for f in cls.functions if f.name == "main")
    (store,) = [s for s in main.body if isinstance(s, ir.Assign) and s.symbol == "out"]
    assert isinstance(store.value, ir.Const)
    return store.value.value


@pytest.mark.parametrize("expr, want", IEEE_CASES)
def test_comptime_float_folding_gives_the_ieee_result(tmp_path, expr, want):
    prog = program(tmp_path, f"const y: f32 = {expr};\n"
                   "fn main() void { out[0] = y; sys.unblock_cmd_stream(); }\n")
    got = F32(_folded(prog))
    assert np.array_equal(got, want, equal_nan=True), (expr, got, want)
    assert np.signbit(got) == np.signbit(want) or np.isnan(want)


# one case of each kind: an overflow to +-inf, a NaN, the largest f32, a tie, a <math> call
RUN_CASES = [IEEE_CASES[k] for k in (0, 2, 6, 7, 10, 13, 15, 26)]


@pytest.mark.parametrize("arch", ARCHES)
def test_folded_comptime_floats_run_as_their_ieee_values(tmp_path, arch):
    body = "".join(f"const y{k}: f32 = {expr};\n" for k, (expr, _) in enumerate(RUN_CASES))
    body += ("fn main() void {\n" + "".join(f"  out[{k}] = y{k};\n" for k in range(8))
             + "  sys.unblock_cmd_stream();\n}\n")
    eng, ref = both(program(tmp_path, body, arch=arch))
    want = np.array([w for _, w in RUN_CASES], F32)
    np.testing.assert_array_equal(eng, want)        # NaN for NaN, whatever its sign bit
    np.testing.assert_array_equal(ref.view(np.uint32), eng.view(np.uint32))


def test_folded_math_matches_the_run_time_op(tmp_path):
    """exp, log, sqrt and pow folded at comptime give what the same op gives at run time."""
    args = [("exp", "1000.0"), ("log", "0.0"), ("log", "-1.0"), ("sqrt", "-1.0")]
    body = "var x = [4]f32 { 1000.0, 0.0, -1.0, -1.0 };\nfn main() void {\n"
    for k, (f, v) in enumerate(args):
        body += f"  out[{k}] = math.{f}(@as(f32, {v}));\n  out[{k + 4}] = math.{f}(x[{k}]);\n"
    body += "  sys.unblock_cmd_stream();\n}\n"
    eng, ref = both(program(tmp_path, body))
    folded, runtime = eng[:4], eng[4:]
    want = np.array([np.inf, -np.inf, np.nan, np.nan], np.float32)
    np.testing.assert_array_equal(folded, want)
    np.testing.assert_array_equal(runtime, want)
    np.testing.assert_array_equal(ref[:4], want)


# ------------------------------------------------------------------------------------------------
# 3. comptime strings and arrays do not wrap around


@pytest.mark.parametrize("decl, index, message", [
    ('const s = "abc";', "5", "index 5 out of range of a string of 3 bytes"),
    ('const s = "abc";', "-1", "index -1 out of range of a string of 3 bytes"),
    ("const s = [3]i16 { 1, 2, 3 };", "-1", "index [-1] out of range of an array of shape [3]"),
    ("const s = [3]i16 { 1, 2, 3 };", "3", "index [3] out of range of an array of shape [3]"),
])
def test_comptime_string_and_array_indices_stay_in_range(tmp_path, decl, index, message):
    body = f"{decl}\nconst y = s[{index}];\nfn main() void {{ out[0] = @as(f32, y); " \
           "sys.unblock_cmd_stream(); }\n"
    located(tmp_path, body, message, 2, 11)


def test_a_negative_index_assigned_into_a_comptime_array_is_an_error(tmp_path):
    body = ("comptime { var s = [3]i16 { 1, 2, 3 }; s[-1] = 4; }\n" + MAIN)
    located(tmp_path, body, "index [-1] out of range of an array of shape [3]", 1, 40)


# ------------------------------------------------------------------------------------------------
# 4. sources that are not UTF-8


def test_a_source_that_is_not_utf8_is_a_located_error(tmp_path):
    program_files(tmp_path, MAIN)
    pe = tmp_path / "pe.csl"
    pe.write_bytes(b"// caf\xe9\n" + pe.read_bytes())
    from wsejax.csl import compile_csl

    with pytest.raises(CslError) as info:
        compile_csl(tmp_path / "layout.csl", memcpy=True)
    err = info.value
    assert (err.file, err.line, err.col) == (str(pe), 1, 7)
    assert "pe.csl is not UTF-8 text: byte 0xe9 at offset 6" in err.message
    r = cslc(tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "pe.csl:1:7: error:" in r.stderr and "not UTF-8" in r.stderr


# ------------------------------------------------------------------------------------------------
# 5. run-time loops of more than 2^31 trips


def _loops(prog, kind):
    (cls,) = prog.classes
    main = next(f for f in cls.functions if f.name == "main")
    return [s for s in main.body if isinstance(s, kind)]


def test_a_u32_loop_of_three_billion_trips_compiles(tmp_path):
    prog = program(tmp_path, "fn main() void { for (@range(u32, 3000000000)) |i| { "
                   "out[0] += 1.0; } sys.unblock_cmd_stream(); }\n")
    (loop,) = _loops(prog, ir.While)       # an ir.For counts its trips in i32
    assert loop.cond == ir.Bin("<", ir.Local(loop.cond.a.name, ir.DType.u32),
                               ir.Const(3000000000, ir.DType.u32), ir.DType.bool_)
    prog = program(tmp_path, "fn main() void { var i: u32 = 0; while (i < 3000000000) : "
                   "(i += 1) { out[0] += 1.0; } sys.unblock_cmd_stream(); }\n")
    assert len(_loops(prog, ir.While)) == 1


def test_a_long_u32_loop_runs_until_its_break(tmp_path):
    prog = program(tmp_path, "fn main() void {\n"
                   "  for (@range(u32, 4294967295)) |i, k| { out[0] += 1.0; "
                   "out[1] = @as(f32, k); if (i > 5) break; }\n"
                   "  for (@range(u32, 4294967295, 0, -1)) |i| { out[2] += 1.0; "
                   "if (i < 4294967293) break; }\n"
                   "  sys.unblock_cmd_stream();\n}\n")
    eng, ref = both(prog, 3)
    np.testing.assert_array_equal(eng, [7, 6, 4])
    np.testing.assert_array_equal(ref, [7, 6, 4])


def test_a_loop_whose_counter_would_overflow_is_a_located_error(tmp_path):
    located(tmp_path, "fn main() void { for (@range(u32, 0, 4294967296)) |i| { "
            "out[0] += 1.0; } sys.unblock_cmd_stream(); }\n",
            "a run-time loop of 4294967296 iterations over u32: its counter would overflow",
            1, 23)


# ------------------------------------------------------------------------------------------------
# 6. `while (true)` with a run-time break


def test_while_true_with_a_runtime_break_compiles_and_runs(tmp_path):
    prog = program(tmp_path, """fn count(n: i16) i16 {
  var i: i16 = 0;
  while (true) {
    i += 1;
    if (i == n) break;
    out[2] += 1.0;
  }
  return i;
}
fn main() void {
  var j: i16 = 0;
  while (true) : (j += 1) {
    if (j >= 3) { break; }
    out[0] += 1.0;
  }
  out[1] = @as(f32, count(5));
  sys.unblock_cmd_stream();
}
""")
    eng, ref = both(prog, 3)
    np.testing.assert_array_equal(eng, [3, 5, 4])
    np.testing.assert_array_equal(ref, [3, 5, 4])


def test_a_comptime_var_changed_in_a_runtime_loop_is_an_error(tmp_path):
    located(tmp_path, "fn main() void {\n  comptime var k = 0;\n"
            "  while (true) { if (k == 3) break; out[0] += 1.0; k += 1; }\n"
            "  sys.unblock_cmd_stream();\n}\n",
            "comptime var 'k' is changed inside a run-time loop", 3, 52)


@pytest.mark.parametrize("arch", ARCHES)
def test_a_while_over_a_comptime_var_still_unrolls(tmp_path, arch):
    prog = program(tmp_path, "fn main() void {\n  comptime var k = 0;\n"
                   "  while (k < 3) : (k += 1) { out[k] = @as(f32, k + 1); }\n"
                   "  sys.unblock_cmd_stream();\n}\n", arch=arch)
    assert not _loops(prog, ir.While) and len(_loops(prog, ir.Assign)) == 3
    eng, ref = both(prog)
    assert eng.tolist() == ref.tolist() == [1.0, 2.0, 3.0, 0, 0, 0, 0, 0]


# ------------------------------------------------------------------------------------------------
# 7. a comptime loop that runs away


def test_a_runaway_comptime_loop_is_reported_within_seconds(tmp_path):
    body = "comptime { var i: u32 = 0; while (true) { i += 1; } }\n" + MAIN
    start = time.monotonic()
    located(tmp_path, body, "this comptime while loop ran more than 100000 iterations", 1, 28)
    assert time.monotonic() - start < 10


def test_a_huge_comptime_for_is_refused_before_it_runs(tmp_path):
    body = "comptime { for (@range(u32, 1000000000)) |i| { _ = i; } }\n" + MAIN
    start = time.monotonic()
    located(tmp_path, body, "this comptime for loop would run 1000000000 iterations", 1, 12)
    assert time.monotonic() - start < 10


# ------------------------------------------------------------------------------------------------
# 8. accepted but not modelled: one warning each; an @export_name nobody exports


def test_options_not_modelled_warn_once_each_with_their_position(tmp_path):
    warnings = []
    body = """const q = @get_input_queue(2);
const time = @import_module("<time>");
var buf: [8]f32 align(16) = @zeros([8]f32);
var other: [4]f32 linksection(".data") linkname("o") = @zeros([4]f32);
comptime {
  @initialize_queue(q, .{ .color = @get_color(3), .priority = .{ .high = true } });
}
fn main() void {
  time.enable_tsc();
  time.disable_tsc();
  time.enable_tsc();
  const d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> out[i] });
  @fmovs(d, 1.0, .{ .priority = .{ .low = true } });
  buf[0] = other[0];
  sys.unblock_cmd_stream();
}
"""
    program(tmp_path, body, warn=warnings.append)
    line = HEAD_LINES

    def at(n, col):
        return f"pe.csl:{line + n}:{col}: "

    want = {".priority": at(6, 3), "<time>.enable_tsc()": at(9, 3),
            "<time>.disable_tsc()": at(10, 3),
            "linksection(...) on a variable": at(4, 1), "linkname(...) on a variable": at(4, 1)}
    for what, where in want.items():
        hits = [w for w in warnings if f"{what} is accepted and ignored" in w]
        assert len(hits) == 1, (what, warnings)
        assert where in hits[0], (where, hits[0])
    assert len(warnings) == len(want), warnings


def test_an_export_name_no_pe_exports_is_a_located_error(tmp_path):
    with pytest.raises(CslError) as info:
        compile_pe(tmp_path, HEAD + MAIN + TAIL, EXPORTS + '\n@export_name("ghost", fn()void);',
                   w=1)
    err = info.value
    assert "@export_name('ghost'): no PE exports it" in err.message
    assert pathlib.Path(err.file).name == "layout.csl"
    layout = (tmp_path / "layout.csl").read_text().splitlines()
    assert '@export_name("ghost"' in layout[err.line - 1]
    assert layout[err.line - 1][err.col - 1:].startswith("@export_name")


# ------------------------------------------------------------------------------------------------
# Arrays larger than a PE are refused before they are made


def test_a_pe_array_over_the_memory_budget_is_refused_before_it_is_made(tmp_path):
    body = "var big: [300000000]f32 = @zeros([300000000]f32);\n" \
           "fn main() void { big[0] = 1.0; sys.unblock_cmd_stream(); }\n"
    t0 = time.perf_counter()
    located(tmp_path, body, "'var big': [300000000]f32 needs 1200000000 bytes, more than the "
            "49152 bytes of a PE's memory", 1, 1)
    # refused from its type: the 1.2 GB of zeros are never allocated
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("init, message", [
    ("@zeros([400000000]f32)", "@zeros: [400000000]f32 holds 1600000000 bytes"),
    ("@constants([5000, 5000]u32, 7)", "@constants: [5000, 5000]u32 holds 100000000 bytes"),
])
def test_a_comptime_array_too_large_to_build_is_a_located_error(tmp_path, init, message):
    body = f"const big = {init};\n" \
           "fn main() void { out[0] = @as(f32, big[1]); sys.unblock_cmd_stream(); }\n"
    err = located(tmp_path, body, message, 1, 13)
    assert "more than wsejax builds at comptime" in err.message
