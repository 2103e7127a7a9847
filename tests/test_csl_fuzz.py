"""Fuzzing the CSL front end: generated and mutated sources fail, if they fail, with the
project's own error class (never another exception, never a hang)."""

from __future__ import annotations

import pathlib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax import WsejaxError
from wsejax.csl import compile_csl

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seeds" / "gemv-03-memcpy.md"

LAYOUT = """const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
layout {
  @set_rectangle(2, 1);
  for (@range(i16, 2)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(x), .n = 4 });
  }
  @export_name("a", [*]f32, true);
  @export_name("main", fn()void);
}
"""

PE = """param memcpy_params;
param n: i16;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const math = @import_module("<math>");
var a: [n]f32;
var b = @zeros([n, 2]f32);
var k: i16 = 0;
const d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{n} -> a[i] });
const e = @get_dsd(mem4d_dsd, .{ .tensor_access = |i, j|{n, 2} -> b[i, j] });
const S = struct { x: i16, y: f32 = 1.0 };
fn f(x: f32, comptime m: i16) f32 {
  if (x > 0.0) { return x * @as(f32, m); }
  return math.sqrt(-x);
}
fn main() void {
  var i: i16 = 0;
  while (i < n) : (i += 1) {
    a[i] = f(a[i], 3) + @as(f32, k);
    if (i == 2) break;
  }
  for (@range(i16, n)) |j| { k += j; }
  @fadds(d, d, 1.0);
  @fmovs(e, 2.0);
  const s = S { .x = 2 };
  a[0] = s.y + @as(f32, s.x);
  sys.unblock_cmd_stream();
}
comptime {
  @export_symbol(a, "a");
  @export_symbol(main);
}
"""

TOKENS = ["fn", "var", "const", "param", "comptime", "layout", "if", "else", "while", "for",
          "return", "break", "continue", "switch", "struct", "enum", "inline", "task", "(", ")",
          "{", "}", "[", "]", ".", ",", ";", ":", "=", "==", "+", "-", "*", "/", "%", "<<",
          ">>", "&", "|", "^", "!", "~", "and", "or", "=>", "->", "|i|", ".{", ".*", "[*]",
          "@as", "@get_dsd", "@fmacs", "@range", "@zeros", "@import_module", "@export_symbol",
          "@set_tile_code", "@set_rectangle", "@comptime_assert", "@field", "@map", "x", "a",
          "n", "main", "f32", "i16", "u16", "f16", "void", "mem1d_dsd", "0", "1", "-1", "3.5",
          "65536", "0x7fff", '"pe.csl"', '"<math>"', "'c'", "undefined", "true", "false", "\n"]


def seed_sources():
    if not SEED.is_file():
        return []
    blocks = re.findall(r"```csl[^\n]*\n(.*?)```", SEED.read_text(), re.S)
    return [("seed", blocks[0], blocks[1])] if len(blocks) >= 2 else []


SOURCES = [("own", LAYOUT, PE)] + seed_sources()


def compile_quietly(tmp: pathlib.Path, layout: str, pe: str) -> None:
    (tmp / "layout.csl").write_text(layout)
    (tmp / "pe.csl").write_text(pe)
    (tmp / "pe_program.csl").write_text(pe)
    try:
        compile_csl(tmp / "layout.csl", memcpy=True, warn=lambda msg: None, max_steps=20000)
    except WsejaxError:
        pass


def test_the_unmutated_sources_compile(tmp_path):
    for _, layout, pe in SOURCES:
        (tmp_path / "layout.csl").write_text(layout)
        for name in ("pe.csl", "pe_program.csl"):
            (tmp_path / name).write_text(pe)
        assert compile_csl(tmp_path / "layout.csl", memcpy=True).classes


@st.composite
def mutations(draw):
    _, layout, pe = draw(st.sampled_from(SOURCES))
    target = draw(st.sampled_from(["layout", "pe"]))
    text = layout if target == "layout" else pe
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        i = draw(st.integers(0, len(text)))
        j = min(len(text), i + draw(st.integers(0, 12)))
        if kind == "delete":
            text = text[:i] + text[j:]
        elif kind == "insert":
            text = text[:i] + " " + draw(st.sampled_from(TOKENS)) + " " + text[i:]
        elif kind == "replace":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[j:]
        else:
            text = text[:i] + text[i:j] + text[i:j] + text[j:]
    return (text, pe) if target == "layout" else (layout, text)


def fuzz(max_examples: int, wide: bool):
    """Settings of a fuzz run: `make test` draws the same examples every time (derandomized, no
    example database), so it cannot go red by chance; the wide runs (marked slow, `make
    test-all`) draw new ones each time."""
    return settings(max_examples=max_examples, deadline=None, derandomize=not wide,
                    database=None if not wide else settings.default.database,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@fuzz(300, wide=False)
@given(mutations())
def test_mutated_sources_fail_only_with_wsejax_errors(tmp_path, case):
    compile_quietly(tmp_path, *case)


@pytest.mark.slow
@fuzz(3000, wide=True)
@given(mutations())
def test_mutated_sources_fail_only_with_wsejax_errors_wide(tmp_path, case):
    compile_quietly(tmp_path, *case)


@fuzz(200, wide=False)
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_generated_token_soup_fails_only_with_wsejax_errors(tmp_path, tokens):
    compile_quietly(tmp_path, LAYOUT, " ".join(tokens))


@pytest.mark.slow
@fuzz(2000, wide=True)
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_generated_token_soup_fails_only_with_wsejax_errors_wide(tmp_path, tokens):
    compile_quietly(tmp_path, LAYOUT, " ".join(tokens))


# Mutations that once escaped the front end's error class, kept as regression cases: a `break`,
# `continue` or `return` that leaves a top-level unit (a comptime block, a global's value, the
# layout block) went up through the tile-class trials as the evaluator's own signal.
ESCAPED = [
    ("pe", "comptime { break; }", 32, 12, "break outside a loop or labelled block"),
    ("pe", "comptime { continue; }", 32, 12, "continue outside a loop or labelled block"),
    ("pe", "const q = blk: { break :zz 3; };\ncomptime { _ = q; }", 32, 18,
     "break :zz outside a loop or labelled block"),
    ("pe", "const q = blk: { return 3; };\ncomptime { _ = q; }", 32, 18,
     "return outside a function"),
    ("layout", "comptime { continue; }", 10, 12, "continue outside a loop or labelled block"),
    # Python's own exceptions: an overflow, an index past a string, a negative element address,
    # a recursion without end
    ("pe", "const q = @as(i16, @as(f32, 1 << 2000) - @as(f32, 1 << 2000));\n"
     "comptime { _ = q; }", 32, 11, "@as(i16, nan) is not a number that fits"),
    ("pe", 'const q = "ab"[7];\ncomptime { _ = q; }', 32, 11,
     "index 7 out of range of a string of 2 bytes"),
    ("pe", "const q = &a[-1];\ncomptime { _ = q; }", 32, 11, "&a[-1]: index out of range"),
    ("pe", "fn r(x: i16) i16 { return r(x); }\ncomptime { _ = r(1); }", 32, 27,
     "comptime evaluation recursed too deeply"),
]


@pytest.mark.parametrize("target, tail, line, col, message", ESCAPED)
def test_escaped_mutations_are_located_errors(tmp_path, target, tail, line, col, message):
    layout, pe = (LAYOUT + tail + "\n", PE) if target == "layout" else (LAYOUT, PE + tail + "\n")
    (tmp_path / "layout.csl").write_text(layout)
    (tmp_path / "pe.csl").write_text(pe)
    file = "layout.csl" if target == "layout" else "pe.csl"
    with pytest.raises(WsejaxError, match=f"{file}:{line}:{col}: error: {re.escape(message)}"):
        compile_csl(tmp_path / "layout.csl", memcpy=True, warn=lambda msg: None)


@pytest.mark.parametrize("body", [
    "comptime { var i = 0; while (true) { i += 1; } }",
    "const x = blk: { while (true) {} };",
])
def test_endless_comptime_loops_are_errors_not_hangs(tmp_path, body):
    with pytest.raises(WsejaxError, match="steps"):
        (tmp_path / "layout.csl").write_text(LAYOUT)
        (tmp_path / "pe.csl").write_text(PE + body + "\ncomptime { _ = x; }\n"
                                         if "blk" in body else PE + body)
        compile_csl(tmp_path / "layout.csl", memcpy=True, max_steps=5000)
