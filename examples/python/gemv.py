"""The GEMV tutorial program (y = A x + b on each PE) written with the Python API.

Each PE holds an M x N tile of A (row major), x and b, and computes y with `@fmacs` over the
columns of A, advancing a column DSD with `@increment_dsd_offset`, then adds b with `@fadds`.

    python examples/python/gemv.py            # the tutorial: 1 PE, M=4, N=6
"""

from __future__ import annotations

import numpy as np

from wsejax import MemcpyDataType, MemcpyOrder, SdkRuntime
from wsejax import dsl as csl


def pe_program(M: int, N: int):
    A = csl.var("A", csl.f32[M * N])       # row major
    x = csl.var("x", csl.f32[N])
    b = csl.var("b", csl.f32[M])
    y = csl.var("y", csl.zeros(csl.f32[M]))

    # A_dsd walks one column of A; it moves to the next column each iteration
    A_dsd = csl.var("A_dsd", csl.get_dsd(csl.mem1d_dsd,
                                         tensor_access=csl.tensor_access(lambda i: A[i * N], M)))
    b_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=b, extent=M)
    y_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=y, extent=M)

    @csl.fn
    def gemv():
        for i in csl.range(csl.i16, N):
            csl.fmacs(y_dsd, y_dsd, A_dsd, x[i])
            A_dsd.set(csl.increment_dsd_offset(A_dsd, 1, csl.f32))
        csl.fadds(y_dsd, y_dsd, b_dsd)

    @csl.fn
    def init_and_compute():
        gemv()
        csl.unblock_cmd_stream()

    for sym in (A, x, b, y):
        csl.export_symbol(sym)
    csl.export_symbol(init_and_compute)


def layout(width: int = 1, height: int = 1, M: int = 4, N: int = 6):
    csl.set_rectangle(width, height)
    for py in range(height):
        for px in range(width):
            csl.set_tile_code(px, py, pe_program, dict(M=M, N=N))
    for name in ("A", "x", "b"):
        csl.export_name(name, csl.pointer(csl.f32), True)
    csl.export_name("y", csl.pointer(csl.f32), False)
    csl.export_name("init_and_compute", csl.fn_type())


def compile_gemv(width: int = 1, height: int = 1, M: int = 4, N: int = 6):
    """The GEMV program on a width x height rectangle of M x N tiles."""
    return csl.compile(layout, params=dict(width=width, height=height, M=M, N=N),
                       fabric_offsets=(4, 1))


def run_gemv(runner: SdkRuntime, A, x, b, width: int, height: int, M: int, N: int):
    """Copy A [H, W, M*N], x [H, W, N], b [H, W, M] in, launch, and return y [H, W, M]."""
    ids = {name: runner.get_id(name) for name in ("A", "x", "b", "y")}
    kw = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR,
              data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
    for name, arr, n in (("A", A, M * N), ("x", x, N), ("b", b, M)):
        runner.memcpy_h2d(ids[name], np.ascontiguousarray(arr, np.float32).reshape(-1),
                          0, 0, width, height, n, **kw)
    runner.launch("init_and_compute", nonblock=False)
    y = np.zeros(width * height * M, np.float32)
    runner.memcpy_d2h(y, ids["y"], 0, 0, width, height, M, **kw)
    return y.reshape(height, width, M)


def main() -> None:
    M, N = 4, 6
    A = np.arange(M * N, dtype=np.float32)
    x = np.full(N, 1.0, np.float32)
    b = np.full(M, 2.0, np.float32)
    y_expected = A.reshape(M, N) @ x + b

    runner = SdkRuntime(compile_gemv(1, 1, M, N))
    runner.load()
    runner.run()
    y = run_gemv(runner, A, x, b, 1, 1, M, N).reshape(-1)
    runner.stop()

    print("y =", y)
    np.testing.assert_allclose(y, y_expected, atol=0.01, rtol=0)
    print("SUCCESS!")


if __name__ == "__main__":
    main()
