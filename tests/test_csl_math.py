"""`<math>` predicates on bit patterns read from memory at run time (signaling and quiet NaNs,
infinities, signed zeros), on the engine and the reference, both arches."""

from __future__ import annotations

import numpy as np
import pytest
from csl_harness import compile_pe, read, run

from wsejax.reference import Reference

ARCHES = ["wse2", "wse3"]

# f32 bit patterns: signaling NaNs (quiet bit clear, mantissa not zero), quiet NaNs,
# infinities, zeros and ordinary numbers
F32 = [0x7F800001, 0xFF8FFFFF, 0x7FC00000, 0x7FC00001, 0x7F800000, 0xFF800000, 0x80000000,
       0x3F800000]
F16 = [0x7C01, 0xFDFF, 0x7E00, 0x7C00, 0x8000, 0x3C00]

PROGRAM = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const math = @import_module("<math>");
var w32 = [{n32}]u32 {{ {w32} }};
var w16 = [{n16}]u16 {{ {w16} }};
var out: [{n}]u32;
var out_ptr: [*]u32 = &out;
fn flags(s: bool, n: bool, i: bool, f: bool, b: bool) u32 {{
  var r: u32 = 0;
  if (s) {{ r |= 1; }}
  if (n) {{ r |= 2; }}
  if (i) {{ r |= 4; }}
  if (f) {{ r |= 8; }}
  if (b) {{ r |= 16; }}
  return r;
}}
fn main() void {{
  for (@range(u16, {n32})) |k| {{
    const x = @bitcast(f32, w32[k]);
    out[k] = flags(math.isSignaling(x), math.isNaN(x), math.isInf_f32(x), math.isFinite(x),
                   math.signbit(x));
  }}
  for (@range(u16, {n16})) |k| {{
    const h = @bitcast(f16, w16[k]);
    out[{n32} + k] = flags(math.isSignaling_f16(h), math.isNaN(h), math.isInf(h),
                           math.isFinite(h), math.signbit(h));
  }}
  comptime {{ @comptime_assert(!math.isSignaling(math.NaN)); }}
  sys.unblock_cmd_stream();
}}
comptime {{ @export_symbol(out_ptr, "out"); @export_symbol(main); }}
"""


def expected(bits: int, width: int) -> int:
    exp_bits, man_bits = (8, 23) if width == 32 else (5, 10)
    exp = (bits >> man_bits) & ((1 << exp_bits) - 1)
    man = bits & ((1 << man_bits) - 1)
    nan = exp == (1 << exp_bits) - 1 and man != 0
    signaling = nan and not man >> (man_bits - 1)
    inf = exp == (1 << exp_bits) - 1 and man == 0
    sign = bits >> (width - 1)
    return signaling | nan << 1 | inf << 2 | (not nan and not inf) << 3 | sign << 4


@pytest.mark.parametrize("arch", ARCHES)
def test_nan_kinds_infinities_and_signs_are_read_from_the_bits(tmp_path, arch):
    n = len(F32) + len(F16)
    source = PROGRAM.format(n32=len(F32), n16=len(F16), n=n,
                            w32=", ".join(hex(b) for b in F32),
                            w16=", ".join(hex(b) for b in F16))
    prog = compile_pe(tmp_path, source, '@export_name("out", [*]u32, true);\n'
                      '@export_name("main", fn()void);', w=1, arch=arch)
    want = [expected(b, 32) for b in F32] + [expected(b, 16) for b in F16]
    assert want[0] & 1 and not want[2] & 1          # the table holds both kinds of NaN
    eng = read(run(prog), "out", n, np.uint32)[0, 0]
    ref = Reference(prog)
    ref.launch("main")
    np.testing.assert_array_equal(eng, want)
    np.testing.assert_array_equal(ref.memory(0, 0)["out"], want)
