"""`<random>` (spec 11): the documented LFSR (x^23 + x^18 + 1, 128 steps a draw, seeded with
0xdeadbeef's low 23 bits) in its Fibonacci form. The engine and the reference implement it
apart; both must give the bit stream of this file's own model of it."""

from __future__ import annotations

import numpy as np
import pytest

from wsejax import SdkRuntime
from wsejax.csl import compile_csl
from wsejax.reference import Reference

N = 64

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 1, .height = 1 });
layout {
  @set_rectangle(1, 1);
  @set_tile_code(0, 0, "pe.csl", .{ .memcpy_params = memcpy.get_params(0) });
  @export_name("main", fn()void);
  @export_name("words", [*]u32, true);
  @export_name("floats", [*]f32, true);
}
"""

PE = f"""
param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const random = @import_module("<random>");
var words = @zeros([{N}]u32);
var floats = @zeros([{N}]f32);
var words_ptr: [*]u32 = &words;
var floats_ptr: [*]f32 = &floats;
fn main() void {{
  for (@range(u16, {N})) |k| {{ words[k] = random.random_pow_u32(32); }}
  for (@range(u16, {N})) |k| {{ floats[k] = random.random_f32(-1.0, 1.0); }}
  sys.unblock_cmd_stream();
}}
comptime {{
  @export_symbol(main);
  @export_symbol(words_ptr, "words");
  @export_symbol(floats_ptr, "floats");
}}
"""


def draws(n: int, state: int = 0xDEADBEEF & 0x7FFFFF) -> list[int]:
    """n 16-bit draws of the LFSR, one bit at a time."""
    out = []
    for _ in range(n):
        for _ in range(128):
            state = (state >> 1) | (((state ^ (state >> 5)) & 1) << 22)
        out.append(state & 0xFFFF)
    return out


@pytest.mark.parametrize("arch", ["wse2", "wse3"])
def test_the_engine_and_the_reference_draw_the_documented_lfsr(tmp_path, arch):
    (tmp_path / "layout.csl").write_text(LAYOUT)
    (tmp_path / "pe.csl").write_text(PE)
    prog = compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)
    d = draws(4 * N)
    want_words = [d[2 * k] | d[2 * k + 1] << 16 for k in range(N)]
    # a float: the top 24 bits of a u32 of two draws, scaled into [-1, 1)
    u = np.array([d[2 * N + 2 * k] | d[2 * N + 2 * k + 1] << 16 for k in range(N)], np.uint64)
    want_floats = -1.0 + 2.0 * (u >> 8).astype(np.float64) / 2 ** 24

    r = SdkRuntime(prog)
    r.load()
    r.run()
    r.launch("main")
    ref = Reference(prog)
    ref.launch("main")
    for read in (lambda out, name: r.memcpy_d2h(out, r.get_id(name), 0, 0, 1, 1, N),
                 lambda out, name: ref.memcpy_d2h(out, name, 0, 0, 1, 1, N)):
        words = np.zeros(N, np.uint32)
        read(words, "words")
        assert words.tolist() == want_words
        floats = np.zeros(N, np.float32)
        read(floats, "floats")
        assert ((floats >= -1.0) & (floats < 1.0)).all()
        np.testing.assert_allclose(floats, want_floats, rtol=0, atol=2e-7)


def test_the_lfsr_is_uniform_enough_for_monte_carlo():
    # the high and low bytes of 20000 draws spread evenly over their 256 values (chi-square
    # far below the 0.1% critical value for 255 degrees of freedom, 330.5)
    d = np.array(draws(20000))
    for part in (d & 0xFF, d >> 8):
        counts = np.bincount(part, minlength=256)
        expected = len(d) / 256
        assert ((counts - expected) ** 2 / expected).sum() < 330.5
