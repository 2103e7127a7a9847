"""Every DSD operation, in every operand form, run by the engine under jit on a 3x2 fabric and
checked bit for bit against a per-PE numpy loop over the reference semantics.

Each PE gets its own random raw bits (NaN, infinities and subnormals included). The destination
DSD is strided (offset 1, stride 2, extent 5), so the untouched elements in between check that
memory outside the addressed range is left as it was. Source DSDs have other lengths (6), a
negative stride, and a tensor_access, so the min-length rule (spec 7.9) is exercised.
"""

from __future__ import annotations

import numpy as np
import pytest
from harness import compile_single, get_bits, put_bits, same_bits, started
from reference_ops import reference_apply

from wsejax import dsl as csl
from wsejax import ops

N = 16
DEST = (1, 2, 5)                        # offset, stride, extent
SRC_ADDR = (np.arange(6), 10 - 2 * np.arange(5), 3 * np.arange(5) + 1)
SRC_LEN = (6, 5, 5)


def op_program(name: str, form: str):
    spec = ops.OPS[name]

    def pe():
        dst = csl.var("dst", spec.dest[N])
        p = csl.var("p", spec.dest)
        srcs = [csl.var(f"src{k}", t[N]) for k, t in enumerate(spec.srcs)]
        scalars = [csl.var(f"s{k}", t) for k, t in enumerate(spec.srcs)]
        off, stride, ext = DEST
        dst_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=dst, offset=off, stride=stride,
                              extent=ext)
        src_dsds = []
        for k, sym in enumerate(srcs):
            if k == 0:
                d = csl.get_dsd(csl.mem1d_dsd, base_address=sym, extent=6)
            elif k == 1:
                d = csl.get_dsd(csl.mem1d_dsd, base_address=sym, offset=10, stride=-2, extent=5)
            else:
                d = csl.get_dsd(csl.mem1d_dsd,
                                tensor_access=csl.tensor_access(lambda i, s=sym: s[3 * i + 1], 5))
            src_dsds.append(d)

        @csl.fn
        def run():
            args = [dst_dsd if form[0] == "D" else csl.addr(p)]
            for k, letter in enumerate(form[1:]):
                args.append(src_dsds[k] if letter == "D" else scalars[k])
            getattr(csl, name)(*args)
            csl.unblock_cmd_stream()

        for sym in [dst, p, *srcs, *scalars]:
            csl.export_symbol(sym)
        csl.export_symbol(run)

    exports = {"dst": spec.dest, "p": spec.dest, "run": csl.fn_type()}
    for k, t in enumerate(spec.srcs):
        exports[f"src{k}"] = t
        exports[f"s{k}"] = t
    return compile_single(pe, exports)


CASES = [(name, form) for name in sorted(ops.OPS) for form in ops.OPS[name].forms]


def random_bits(rng, shape, bits):
    return rng.integers(0, 1 << bits, size=shape, dtype=np.uint64).astype(np.uint32)


@pytest.mark.parametrize("name,form", CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_op_matches_per_pe_numpy_loop(name, form, rng):
    spec = ops.OPS[name]
    runner = started(op_program(name, form))
    h, w = 2, 3
    dst0 = random_bits(rng, (h, w, N), spec.dest.bits)
    p0 = random_bits(rng, (h, w, 1), spec.dest.bits)
    put_bits(runner, "dst", dst0, spec.dest.bits)
    put_bits(runner, "p", p0, spec.dest.bits)
    srcs = [random_bits(rng, (h, w, N), t.bits) for t in spec.srcs]
    scalars = [random_bits(rng, (h, w, 1), t.bits) for t in spec.srcs]
    for k, t in enumerate(spec.srcs):
        put_bits(runner, f"src{k}", srcs[k], t.bits)
        put_bits(runner, f"s{k}", scalars[k], t.bits)
    runner.launch("run")
    dst = get_bits(runner, "dst", N, spec.dest.bits)
    p = get_bits(runner, "p", 1, spec.dest.bits)
    runner.stop()

    lengths = ([DEST[2]] if form[0] == "D" else []) + [
        SRC_LEN[k] for k, letter in enumerate(form[1:]) if letter == "D"]
    n = min(lengths) if lengths else 1  # a pointer destination and scalar sources: once
    dest_addr = DEST[0] + DEST[1] * np.arange(n)
    ubits = {16: np.uint16, 32: np.uint32}
    for y in range(h):
        for x in range(w):
            vals = []
            for k, (letter, t) in enumerate(zip(form[1:], spec.srcs)):
                raw = srcs[k][y, x][SRC_ADDR[k][:n]] if letter == "D" else scalars[k][y, x]
                vals.append(raw.astype(ubits[t.bits]).view(t.np))
            result = reference_apply(name, *vals)
            result = np.broadcast_to(result, (n,)).view(ubits[spec.dest.bits])
            want_dst = dst0[y, x].copy()
            want_p = p0[y, x].copy()
            if form[0] == "D":
                want_dst[dest_addr] = result
            else:
                want_p[0] = result[-1]
            assert same_bits(dst[y, x], want_dst, spec.dest), (name, form, (x, y))
            assert same_bits(p[y, x], want_p, spec.dest), (name, form, (x, y))
