"""What the Python API (`wsejax.dsl`) shares with CSL beyond the basics: 64-bit integers
(`csl.i64`, `csl.u64`), the runtime result of a synchronous op with a FIFO operand, and
`set_fifo_read_length` / `set_fifo_write_length`. Each program runs on the engine with the
reference beside it (check mode), and its results are checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from harness import compile_single, get_bits, started

from wsejax import dsl as csl
from wsejax.errors import ProgramError


def run_main(pe, n: int, bits: int, width: int = 2) -> np.ndarray:
    """`out` (n elements of `bits`) of each PE of a width x 1 row after `main`: `[x, n]`."""
    prog = compile_single(pe, {"out": csl.u32 if bits == 32 else csl.u16,
                               "main": csl.fn_type()}, width=width, height=1)
    r = started(prog, check=True)
    r.launch("main", nonblock=False)
    got = get_bits(r, "out", n, bits)[0]
    r.stop()
    return got


def test_64_bit_integers_wrap_shift_and_convert():
    def pe():
        out = csl.var("out", csl.u32[6])
        big = csl.var("big", csl.u64[2], init=[2**40 + 5, 7])
        neg = csl.var("neg", csl.i64, init=-3)

        @csl.fn
        def main():
            x = big[0] * 3 + csl.as_(csl.u64, csl.pe_x())
            big[1] = x
            out[0] = csl.as_(csl.u32, big[1])
            out[1] = csl.as_(csl.u32, x >> 32)
            y = neg * 2 - 1
            out[2] = csl.as_(csl.u32, csl.as_(csl.i32, y))
            out[3] = csl.as_(csl.u32, csl.select(y < -(2**40), 1, 2))
            top = csl.as_(csl.u64, 0) - 1               # wraps to 2**64 - 1
            out[4] = csl.as_(csl.u32, top >> 40)
            out[5] = csl.as_(csl.u32, csl.select(big[0] == 2**40 + 5, 7, 8))
            csl.unblock_cmd_stream()

        csl.export_symbol(out)
        csl.export_symbol(main)

    got = run_main(pe, 6, 32)
    x = [3 * (2**40 + 5) + pe for pe in range(2)]
    want = [[v % 2**32, v >> 32, (-7) % 2**32, 2, 2**24 - 1, 7] for v in x]
    np.testing.assert_array_equal(got, want)


def test_a_64_bit_export_is_refused_as_in_csl():
    def pe():
        big = csl.var("big", csl.u64[2])
        csl.export_symbol(big)

    with pytest.raises(Exception, match="memcpy moves 16- and 32-bit elements, not u64"):
        compile_single(pe, {"big": csl.u64}, width=1, height=1)


def test_fifo_lengths_and_the_result_of_an_op_with_a_fifo_operand():
    def pe():
        out = csl.var("out", csl.u16[20])
        x = csl.var("x", csl.u16[6], init=[31, 32, 33, 34, 35, 36])
        buf = csl.var("buf", csl.u16[8])
        f = csl.allocate_fifo(buf)
        x6 = csl.get_dsd(csl.mem1d_dsd, base_address=x, extent=6)
        a4, b4, c4, d4 = (csl.get_dsd(csl.mem1d_dsd, base_address=out, offset=4 * k,
                                      extent=4) for k in (0, 1, 2, 4))

        @csl.fn
        def main():
            csl.mov16(f, x6)                                  # never set: all 6
            csl.set_fifo_read_length(f, 2)
            ok = csl.mov16(a4, f)                             # 2 of 4, and true
            out[12] = csl.as_(csl.u16, csl.select(ok, 1, 2))
            csl.mov16(b4, f)                                  # nothing remains
            csl.set_fifo_read_length(f, csl.as_(csl.u16, csl.pe_x()) + 3)
            csl.mov16(c4, f)                                  # 3 (PE 0) or 4 (PE 1)
            csl.set_fifo_write_length(f, 1)
            csl.mov16(f, x6)                                  # one pushed
            out[13] = buf[6]
            csl.set_fifo_read_length(f, 4)
            late = csl.mov16(d4, f)                           # the FIFO empties first
            out[14] = csl.as_(csl.u16, csl.select(late, 1, 2))
            csl.unblock_cmd_stream()

        csl.export_symbol(out)
        csl.export_symbol(main)

    got = run_main(pe, 20, 16)
    pe0 = [31, 32, 0, 0, 0, 0, 0, 0, 33, 34, 35, 0, 1, 31, 2, 0, 36, 31, 0, 0]
    pe1 = [31, 32, 0, 0, 0, 0, 0, 0, 33, 34, 35, 36, 1, 31, 2, 0, 31, 0, 0, 0]
    np.testing.assert_array_equal(got, [pe0, pe1])


def test_set_fifo_length_takes_a_fifo():
    def pe():
        buf = csl.var("buf", csl.u16[8])

        @csl.fn
        def main():
            csl.set_fifo_read_length(buf, 2)

    with pytest.raises(ProgramError, match=r"@set_fifo_read_length takes a FIFO \(const f = "
                                           r"@allocate_fifo\(buf\)\), got"):
        compile_single(pe, {}, width=1, height=1)
