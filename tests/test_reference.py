"""The reference interpreter (`wsejax.reference`) as the oracle of the engine (DESIGN §8).

Whole programs (the GEMV program, the control-flow program of test_engine, the CSL examples) and
hypothesis-generated small programs run through the engine (`SdkRuntime`) and through the
reference from the same host data; every symbol of every PE must agree bit for bit (NaN equal to
NaN), and so must the cycle counters, the faults of each PE and the errors the launches raise.
The engine runs with `matvec_loops=False` (loops step by step) unless a test says otherwise: its
matrix-vector lowering of `@fmacs` loops sums in another order.

Disagreements found this way are pinned down as minimal programs at the end of the file: as
regression tests once the engine was fixed, marked xfail (strict, with the reason) where the
engine still departs from the spec; the generators avoid the latter cases.
"""

from __future__ import annotations

import io
import pathlib
import shlex

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from harness import EXAMPLES_ON_WSE3, compile_single, started, uses_fabric
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsejax import DeadlockError, FabricFault, MemcpyDataType, MemcpyOrder, SdkRuntime, ir, ops
from wsejax import dsl as csl
from wsejax.csl import compile_csl
from wsejax.opspec import CARRIED
from wsejax.reference import ELEMENT_OPS, Reference

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "csl"


# ------------------------------------------------------------------------------------------------
# Running a program both ways


def host_data(program: ir.Program, rng) -> list:
    """Random contents for every mutable exported data name, over the whole rectangle:
    `(name, uint32 words, elem_per_pe, bits)`; random bits for integers, normal floats."""
    out = []
    for e in program.exports:
        if e.kind != "data" or not e.mutable:
            continue
        sizes = []
        for pe in program.classes:
            ex = next((x for x in pe.exports if isinstance(x, ir.ExportData)
                       and x.name == e.name), None)
            if ex is None:
                break
            sym = pe.symbol(ex.symbol)
            sizes.append((sym.dtype, sym.size - ex.offset))
        else:
            t = sizes[0][0]
            l = min(n for _, n in sizes)
            n = program.width * program.height * l
            if t.is_float:
                words = rng.standard_normal(n).astype(np.float32)
                words = (words.astype(np.float16).view(np.uint16).astype(np.uint32)
                         if t.bits == 16 else words.view(np.uint32))
            else:
                words = rng.integers(0, 1 << t.bits, n, dtype=np.uint64).astype(np.uint32)
            out.append((e.name, words, l, t.bits))
    return out


def _raise(fn):
    try:
        fn()
    except (FabricFault, DeadlockError) as err:
        return err
    return None


def run_both(program, launches, data, *, matvec_loops=False, loop_limit=None):
    """Copy `data` in and run `launches` (`(name, *args)`) on the engine and the reference.

    Returns (runner, reference); asserts that each launch raised alike (the reference's
    errors are left in `reference.errors`)."""
    kw = {} if loop_limit is None else {"loop_limit": loop_limit}
    runner = SdkRuntime(program, matvec_loops=matvec_loops, **kw)
    runner.load()
    runner.run()
    runner.engine.output = io.StringIO()
    ref = Reference(program, **kw)
    w, h = program.width, program.height
    for name, words, l, bits in data:
        dt = MemcpyDataType.MEMCPY_16BIT if bits == 16 else MemcpyDataType.MEMCPY_32BIT
        runner.memcpy_h2d(runner.get_id(name), words.copy(), 0, 0, w, h, l, streaming=False,
                          order=MemcpyOrder.ROW_MAJOR, data_type=dt)
        ref.memcpy_h2d(name, words.copy(), 0, 0, w, h, l, order=MemcpyOrder.ROW_MAJOR,
                       data_type=dt)
    ref.errors = []
    for name, *args in launches:
        got = _raise(lambda: runner.launch(name, *args))  # noqa: B023
        want = _raise(lambda: ref.launch(name, *args))  # noqa: B023
        ref.errors.append(want)
        assert type(got) is type(want), f"launch {name}: engine {got!r}, reference {want!r}"
        if got is not None and "other kinds" not in str(want):
            assert str(got) == str(want) and got.pes == want.pes
    return runner, ref


def engine_faults(runner) -> dict:
    codes = np.asarray(runner.state.fault)
    return {(int(x), int(y)): runner.engine.fault_texts[codes[y, x]]
            for y, x in zip(*np.nonzero(codes))}


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place between f32 arrays (NaN to NaN is 0)."""
    def key(x):
        i = x.astype(np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    d = np.abs(key(a) - key(b))
    return np.where(np.isnan(a) & np.isnan(b), 0, d)


def mismatches(program, runner, ref, *, approx=None, tolerant=None) -> list[str]:
    """Every disagreement between the two final states, as text (empty when they agree).

    `approx` maps symbols to the ulps they may differ by; `tolerant` maps symbols to an rtol.
    PEs that faulted are compared by their fault only: after a fault a PE's memory is
    undefined."""
    approx, tolerant = approx or {}, tolerant or {}
    out = []
    faults = ref.faults
    if engine_faults(runner) != faults:
        out.append(f"faults: engine {engine_faults(runner)}, reference {faults}")
    cycles = np.asarray(runner.state.cycles)
    for y in range(program.height):
        for x in range(program.width):
            if (x, y) in faults:
                continue
            if cycles[y, x] != ref.cycles[y, x]:
                out.append(f"PE ({x}, {y}) cycles: engine {cycles[y, x]}, reference "
                           f"{ref.cycles[y, x]}")
            mem = ref.memory(x, y)
            for sym in program.classes[int(program.class_of[y, x])].symbols:
                a = runner.read_symbol(x, y, sym.name, sym.dtype.np).reshape(-1)
                b = mem[sym.name].reshape(-1)
                if sym.name in tolerant:
                    same = np.isclose(a, b, rtol=tolerant[sym.name], atol=0, equal_nan=True)
                elif sym.name in approx:
                    same = ulps(a, b) <= approx[sym.name]
                else:
                    u = f"u{sym.dtype.np.itemsize}"
                    same = a.view(u) == b.view(u)
                    if sym.dtype.is_float:
                        same |= np.isnan(a.astype(np.float32)) & np.isnan(b.astype(np.float32))
                if not same.all():
                    k = np.nonzero(~same)[0]
                    out.append(f"PE ({x}, {y}) {sym.name}{k[:6].tolist()}: engine "
                               f"{a[k[:6]].tolist()}, reference {b[k[:6]].tolist()}")
    return out


def agree(program, launches, data, **kw):
    runner, ref = run_both(program, launches, data, **kw)
    problems = mismatches(program, runner, ref)
    assert not problems, "\n".join(problems[:20])
    return runner, ref


# ------------------------------------------------------------------------------------------------
# The element semantics table against ops.py


def test_element_op_table_matches_ops_types_and_forms():
    assert set(ELEMENT_OPS) == set(ops.OPS)
    for name, spec in ops.OPS.items():
        mine = ELEMENT_OPS[name]
        assert (mine.dest, mine.srcs, mine.forms) == (spec.dest, spec.srcs, spec.forms), name


def _elements(op, cols) -> list:
    """The reference's elements of op over columns of sources, in order (a carried op passes
    its carry from each element to the next, from 0)."""
    out, carry = [], 0
    for i in range(len(cols[0])):
        if op.name in CARRIED:
            r, carry = op.fn(*(c[i] for c in cols), carry)
        else:
            r = op.fn(*(c[i] for c in cols))
        out.append(r)
    return out


@pytest.mark.parametrize("name", sorted(ops.OPS))
def test_element_semantics_match_ops_on_special_values(name, rng):
    """Every DSD op's element function against `ops.apply` on edge values (zeros of both
    signs, subnormals, infinities, NaN, extremes) and random values, bit for bit."""
    spec = ops.OPS[name]
    specials = {
        "f32": np.array([0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, 3.4e38, -3.4e38, np.inf,
                         -np.inf, np.nan, 1.0, -2.5, 65504.0, 1e5, 0.5], np.float32),
        "f16": np.array([0.0, -0.0, 6e-8, -6e-8, 6.1e-5, 65504.0, -65504.0, np.inf, -np.inf,
                         np.nan, 1.0, -2.5, 0.333, 100.0, 0.5], np.float16),
        "i16": np.array([0, 1, -1, 32767, -32768, 7, -300, 16, 17, 15, 255, 12345, -2, 3, 9],
                        np.int16),
        "u16": np.array([0, 1, 0xFFFF, 0x8000, 0x7FFF, 7, 300, 16, 17, 15, 255, 12345, 2, 3, 9],
                        np.uint16),
        "u32": np.array([0, 1, 0xFFFFFFFF, 0x80000000, 0x7FC00001, 5, 6, 7, 8, 9, 10, 11, 12,
                         13, 14], np.uint32),
    }
    cols = []
    for k, t in enumerate(spec.srcs):
        base = specials[str(t)]
        rnd = rng.standard_normal(40) * 3 if t.is_float else rng.integers(0, 1 << t.bits, 40)
        vals = np.concatenate([np.roll(base, 3 * k), np.asarray(rnd).astype(t.np)])
        cols.append(vals.astype(t.np))
    got = np.asarray(jax.jit(lambda *xs: ops.apply(name, *xs))(*map(jnp.asarray, cols)))
    with np.errstate(all="ignore"):
        want = np.array(_elements(ELEMENT_OPS[name], cols), spec.dest.np)
    u = f"u{spec.dest.np.itemsize}"
    same = got.view(u) == want.view(u)
    if spec.dest.is_float:
        same |= np.isnan(got.astype(np.float32)) & np.isnan(want.astype(np.float32))
    assert same.all(), (name, [c[~same][:4] for c in cols], got[~same][:4], want[~same][:4])


# ------------------------------------------------------------------------------------------------
# Whole programs


def test_gemv_agrees_bit_for_bit_step_by_step():
    from gemv import compile_gemv

    program = compile_gemv(3, 2, 4, 6)
    data = host_data(program, np.random.default_rng(0))
    agree(program, [("init_and_compute",)], data)


def test_gemv_matrix_product_lowering_agrees_up_to_summation_order():
    from gemv import compile_gemv

    program = compile_gemv(3, 2, 4, 6)
    runner, ref = run_both(program, [("init_and_compute",)],
                           host_data(program, np.random.default_rng(1)), matvec_loops=True)
    problems = mismatches(program, runner, ref, tolerant={"y": 1e-5})
    assert not problems, "\n".join(problems)


def test_gemv_second_launch_faults_alike():
    """The tutorial never rewinds A_dsd: the second launch walks past the end of A."""
    from gemv import compile_gemv

    program = compile_gemv(3, 2, 4, 6)
    runner, ref = agree(program, [("init_and_compute",)] * 3,
                        host_data(program, np.random.default_rng(2)))
    assert len(ref.faults) == 6
    assert set(ref.faults.values()) == {"@fmacs in gemv: DSD address out of range of 'A'"}


def test_control_program_agrees():
    from test_engine import control_program

    exports = {"n": csl.i32, "data": csl.i32, "out": csl.i32, "small": csl.i16,
               "fout": csl.f32, "run": csl.fn_type()}
    program = compile_single(control_program, exports)
    rng = np.random.default_rng(3)
    data = host_data(program, rng)
    # loop counts the program can finish: n in [0, 30)
    data = [(name, words % 30 if name == "n" else words, l, bits)
            for name, words, l, bits in data]
    agree(program, [("run",), ("run",)], data)


def _example_params(d: pathlib.Path) -> dict:
    params = {}
    for arg in shlex.split((d / "commands.txt").read_text().splitlines()[0]):
        if arg.startswith("--params="):
            for kv in arg[len("--params="):].split(","):
                k, v = kv.split(":")
                params[k] = int(v)
    return params


# the dataflow examples run through their own host scripts in tests/test_oracle_examples.py
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.iterdir()
                       if (p / "commands.txt").is_file() and not uses_fabric(p))
# <math> functions: XLA's approximations are a few ulp from the correctly rounded results; and
# the engine contracts `a + b * c` in f32 expressions into an FMA (see the xfail below)
APPROX = {"library-modules": {"mres": 2, "rnd": 8}}


# each example as written (wse2), then those that compile for wse3 as well, as `NAME-wse3`
EXAMPLE_CASES = ([pytest.param(n, "wse2", id=n) for n in EXAMPLE_NAMES]
                 + [pytest.param(n, "wse3", id=f"{n}-wse3") for n in EXAMPLES_ON_WSE3])


@pytest.mark.parametrize("name, arch", EXAMPLE_CASES)
def test_csl_example_agrees(name, arch):
    d = EXAMPLES / name
    program = compile_csl(d / "layout.csl", memcpy=True, params=_example_params(d) or None,
                          arch=arch)
    rng = np.random.default_rng(4)
    launches = []
    for e in program.exports:
        if e.kind == "func":
            args = [np.asarray(rng.integers(0, 4) if t.is_int else rng.standard_normal(), t.np)
                    for t in e.params]
            launches.append((e.name, *args))
    runner, ref = run_both(program, launches, host_data(program, rng))
    problems = mismatches(program, runner, ref, approx=APPROX.get(name))
    assert not problems, "\n".join(problems[:20])


def test_prints_agree(tmp_path):
    from csl_harness import compile_pe

    src = """
    param memcpy_params;
    const sys = @import_module("<memcpy/memcpy>", memcpy_params);
    const prt = @import_module("<simprint>");
    const layout_mod = @import_module("<layout>");
    var v: [3]f32;
    var k: [2]u16;
    var v_ptr: [*]f32 = &v;
    var k_ptr: [*]u16 = &k;
    fn main() void {
      prt.fmt_with_coords("v={f} k={d} {X} {b}", v[0], k[0], k[1], k[0]);
      if (v[1] > 0.0) {
        prt.fmt_no_nl("pos ");
        prt.print_u16_hex(k[1]);
        prt.print_string("\\n");
      }
      prt.fmt("x={d}", layout_mod.get_x_coord());
      sys.unblock_cmd_stream();
    }
    comptime {
      @export_symbol(v_ptr, "v");
      @export_symbol(k_ptr, "k");
      @export_symbol(main);
    }
    """
    exports = """
    @export_name("v", [*]f32, true);
    @export_name("k", [*]u16, true);
    @export_name("main", fn()void);
    """
    program = compile_pe(tmp_path, src, exports, w=3, h=2)
    runner, ref = agree(program, [("main",), ("main",)], host_data(program,
                                                                   np.random.default_rng(5)))
    engine_lines = runner.engine.output.getvalue().splitlines()
    # the engine prints statement by statement over all PEs, the reference PE by PE
    assert sorted(engine_lines) == sorted(ref.output)
    assert len(ref.output) == 2 * 6 * 2 + sum("pos" in line for line in ref.output)


def test_local_tasks_agree():
    from test_engine import task_program

    program = compile_single(task_program, {"log": csl.i32, "go": csl.fn_type()}, width=2,
                             height=2)
    _, ref = agree(program, [("go",), ("go",)], [])
    assert isinstance(ref.errors[0], DeadlockError)


def test_tasks_with_runtime_ids_and_self_activation_agree():
    def pe():
        count = csl.var("count", csl.i32[4])
        k = csl.var("k", csl.i32)
        ids = [csl.get_local_task_id(n) for n in (2, 4, 6)]

        @csl.task
        def again():                      # re-activates itself k & 7 times
            count[0] = count[0] + 1
            with csl.if_(count[0] < (k & 7)):
                csl.activate(ids[0])
            with csl.else_():
                csl.unblock(ids[2])
                csl.activate(ids[2])

        @csl.task
        def other():
            count[1] = count[1] + 1
            with csl.if_((k & 8) == 0):
                csl.unblock_cmd_stream()
            with csl.else_():             # never unblocks, runs until the round limit
                csl.activate(ids[1])

        @csl.task
        def done():
            count[2] = count[2] + 10
            csl.activate(ids[1])

        for t, ident in zip((again, other, done), ids):
            csl.bind_local_task(t, ident)
        csl.block(ids[2])
        csl.activate(ids[2])

        @csl.fn
        def go():
            count[3] = count[3] + 1
            csl.activate(ids[0])

        csl.export_symbol(count)
        csl.export_symbol(k)
        csl.export_symbol(go)

    program = compile_single(pe, {"count": csl.i32, "k": csl.i32, "go": csl.fn_type()})
    data = [("k", np.array([0, 3, 7, 1, 2, 5], np.uint32), 1, 32)]
    _, ref = agree(program, [("go",), ("go",)], data, loop_limit=20)
    assert ref.errors == [None, None]
    data = [("k", np.array([0, 3, 7, 8, 11, 15], np.uint32), 1, 32)]
    _, ref = agree(program, [("go",), ("go",)], data, loop_limit=20)
    assert sorted(ref.faults) == [(0, 1), (1, 1), (2, 1)]


def test_deadlock_and_runaway_loop_agree():
    def pe():
        i = csl.var("i", csl.i32)

        @csl.fn
        def stuck():
            with csl.if_(csl.pe_x() == 1):
                csl.unblock_cmd_stream()

        @csl.fn
        def spin():
            csl.unblock_cmd_stream()
            with csl.while_(i.value >= csl.as_(csl.i32, csl.pe_x())):
                i.set((i + 1) & 7)

        csl.export_symbol(i)
        csl.export_symbol(stuck)
        csl.export_symbol(spin)

    program = compile_single(pe, {"i": csl.i32, "stuck": csl.fn_type(),
                                  "spin": csl.fn_type()})
    _, ref = agree(program, [("stuck",)], [])
    assert isinstance(ref.errors[0], DeadlockError)
    assert ref.errors[0].pes == [(0, 0), (2, 0), (0, 1), (2, 1)]
    _, ref = agree(program, [("spin",)], [], loop_limit=50)
    assert isinstance(ref.errors[0], FabricFault)
    assert ref.faults == {(0, 0): "spin: a while loop ran past 50 iterations",
                          (0, 1): "spin: a while loop ran past 50 iterations"}


# ------------------------------------------------------------------------------------------------
# memcpy against the engine's


_MEMCPY_SYMS = {"a32": (csl.f32, 5), "a16": (csl.u16, 7), "b16": (csl.i16, 4)}
_MEMCPY_PROGRAM = None


def _memcpy_program():
    global _MEMCPY_PROGRAM
    if _MEMCPY_PROGRAM is None:
        def pe():
            syms = [csl.var(name, t[n]) for name, (t, n) in _MEMCPY_SYMS.items()]
            tail = csl.var("tail", csl.u16[9])
            for s in syms:
                csl.export_symbol(s)
            csl.export_symbol(csl.addr(tail, 2), "tail")

        exports = {name: t for name, (t, _) in _MEMCPY_SYMS.items()}
        exports["tail"] = csl.u16
        _MEMCPY_PROGRAM = compile_single(pe, exports, width=4, height=3)
    return _MEMCPY_PROGRAM


@settings(max_examples=6, deadline=None, derandomize=True)
@given(st.data())
def test_memcpy_places_words_like_the_engine(data):
    program = _memcpy_program()
    runner = SdkRuntime(program)
    runner.load()
    runner.run()
    ref = Reference(program)
    sizes = {"a32": (32, 5), "a16": (16, 7), "b16": (16, 4), "tail": (16, 7)}
    for _ in range(3):
        name = data.draw(st.sampled_from(sorted(sizes)))
        sym_bits, n = sizes[name]
        bits = data.draw(st.sampled_from([16, 32]))
        capacity = n * sym_bits // bits if bits <= sym_bits else (n + 1) // 2
        if capacity < 1:
            continue
        dt = MemcpyDataType.MEMCPY_16BIT if bits == 16 else MemcpyDataType.MEMCPY_32BIT
        order = data.draw(st.sampled_from(list(MemcpyOrder)))
        kind = data.draw(st.sampled_from(["roi", "rowbcast", "colbcast"]))
        px, py = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 2))
        w, h = data.draw(st.integers(1, 4 - px)), data.draw(st.integers(1, 3 - py))
        l = data.draw(st.integers(1, capacity))
        size = {"roi": w * h * l, "rowbcast": h * l, "colbcast": w * l}[kind]
        seed = data.draw(st.integers(0, 2**32 - 1))
        words = np.random.default_rng(seed).integers(0, 1 << bits, size, dtype=np.uint64)
        words = words.astype(np.uint32)
        call = {"roi": runner.memcpy_h2d, "rowbcast": runner.memcpy_h2d_rowbcast,
                "colbcast": runner.memcpy_h2d_colbcast}[kind]
        call(runner.get_id(name), words.copy(), px, py, w, h, l, streaming=False,
             order=order, data_type=dt)
        ref.memcpy_h2d(name, words.copy(), px, py, w, h, l, order=order, data_type=dt,
                       kind=kind)
        got = np.zeros(w * h * l, np.uint32)
        want = np.ones(w * h * l, np.uint32)
        runner.memcpy_d2h(got, runner.get_id(name), px, py, w, h, l, streaming=False,
                          order=order, data_type=dt)
        ref.memcpy_d2h(want, name, px, py, w, h, l, order=order, data_type=dt)
        np.testing.assert_array_equal(got, want)
    for y in range(3):
        for x in range(4):
            mem = ref.memory(x, y)
            for name in ("a32", "a16", "b16", "tail"):
                raw = runner.read_symbol(x, y, name)
                assert raw.tobytes() == mem[name].tobytes(), (x, y, name)


# ------------------------------------------------------------------------------------------------
# Hypothesis-generated programs
#
# A plan is plain data (nested tuples), drawn by hypothesis and then emitted with wsejax.dsl, so
# a failing example prints as a readable plan. Every PE runs the same program on its own random
# data, so runtime branches and loop counts differ between PEs. The generators steer clear of the
# engine bugs pinned down at the end of this file: runtime DSD lengths never exceed the symbol,
# @map outputs do not alias their inputs, f32 products never feed an add, float constants
# appear only in conditions and DSD scalar operands (never in arithmetic XLA could reassociate).
# `run` leaves the command stream to a task (ID 20), so the tasks it activates (IDs 1 and 2,
# and 25, which is bound to nothing) run in the scheduler's rounds before it.

N = 8
FLOATS, HALVES, INTS = ("fa", "fb", "fc"), ("ha", "hb"), ("ia", "ua")
ARRAY_TYPES = {"fa": csl.f32, "fb": csl.f32, "fc": csl.f32, "ha": csl.f16, "hb": csl.f16,
               "ia": csl.i16, "ua": csl.u16}
SYMS_OF = {"f32": FLOATS, "u32": FLOATS, "f16": HALVES, "i16": INTS, "u16": INTS}
OP_NAMES = ("fadds", "fsubs", "fmuls", "fmaxs", "fmacs", "fmovs", "fnegs", "fabss", "faddh",
            "fsubh", "fmulh", "fmaxh", "fmach", "fmovh", "fs2h", "fh2s", "fs2xp16", "xp162fs",
            "fh2xp16", "xp162fh", "faddhs", "fmachs", "add16", "sub16", "and16", "or16",
            "xor16", "sll16", "slr16", "sar16", "mov16", "popcnt", "clz", "ctz", "mov32")
DSD_VARS = {"dv": "fb", "dw": "fc"}      # the DSD variables, over these arrays
INT_OPS = ("+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "min", "max")
CMP_OPS = ("==", "!=", "<", "<=", ">", ">=")


def _one_of(draw, *options):
    """Draw one of (weight, thunk) options and call it."""
    total = sum(w for w, _ in options)
    k = draw(st.integers(0, total - 1))
    for w, thunk in options:
        if k < w:
            return thunk()
        k -= w
    raise AssertionError


def _fexpr(draw, ctx, depth=0):
    leaves = [
        (3, lambda: ("fld", draw(st.sampled_from(FLOATS)), _index(draw, ctx))),
        (1, lambda: ("fs",)),
    ]
    if ctx.get("fconst"):   # constants only in conditions and DSD scalar operands
        leaves.append((2, lambda: ("fc", draw(st.sampled_from([0.0, 1.5, -2.0, 0.25, 3.0])))))
    if ctx["loop"]:
        leaves.append((1, lambda: ("floop",)))
    if depth >= 2:
        return _one_of(draw, *leaves)
    return _one_of(draw, *leaves,
                   (2, lambda: (draw(st.sampled_from(["fadd", "fsub", "fmin", "fmax"])),
                                _fexpr(draw, ctx, depth + 1), _fexpr(draw, ctx, depth + 1))),
                   (1, lambda: ("fcast", _iexpr(draw, dict(ctx, iconst=False), depth + 1))),
                   (1, lambda: ("fneg", _fexpr(draw, ctx, depth + 1))),
                   (1, lambda: ("fsel", _cond(draw, ctx, depth + 1), _fexpr(draw, ctx, depth + 1),
                                _fexpr(draw, ctx, depth + 1))))


def _iexpr(draw, ctx, depth=0):
    leaves = [
        (3, lambda: ("ild", draw(st.integers(0, 3)))),
        (1, lambda: ("is",)),
        (2, lambda: ("i16ld", draw(st.sampled_from(INTS)), _index(draw, ctx))),
    ]
    if ctx.get("iconst", True):
        leaves.append((2, lambda: ("ic", draw(st.sampled_from([0, 1, -1, 3, 7, 31, 33, -2**31,
                                                               2**31 - 1])))))
    if depth >= 1:          # cnt has 4 elements: this load may run out of range, a fault
        leaves.append((1, lambda: ("ildw", _iexpr(draw, ctx, 2))))
    if ctx["loop"]:
        leaves.append((2, lambda: ("iloop",)))
    if depth >= 2:
        return _one_of(draw, *leaves)
    return _one_of(draw, *leaves,
                   (3, lambda: ("ibin", draw(st.sampled_from(INT_OPS)),
                                _iexpr(draw, ctx, depth + 1), _iexpr(draw, ctx, depth + 1))),
                   (1, lambda: ("icast", _fexpr(draw, ctx, depth + 1))),
                   (1, lambda: ("iun", draw(st.sampled_from(["-", "~", "abs"])),
                                _iexpr(draw, ctx, depth + 1))))


def _cond(draw, ctx, depth=0):
    ctx = dict(ctx, fconst=True)
    options = [
        (3, lambda: ("fcmp", draw(st.sampled_from(CMP_OPS)), _fexpr(draw, ctx, depth + 1),
                     _fexpr(draw, ctx, depth + 1))),
        (3, lambda: ("icmp", draw(st.sampled_from(CMP_OPS)), _iexpr(draw, ctx, depth + 1),
                     _iexpr(draw, ctx, depth + 1))),
    ]
    if depth < 1:
        options.append((1, lambda: (draw(st.sampled_from(["and", "or"])),
                                    _cond(draw, ctx, depth + 1), _cond(draw, ctx, depth + 1))))
        options.append((1, lambda: ("not", _cond(draw, ctx, depth + 1))))
    return _one_of(draw, *options)


def _index(draw, ctx):
    """An element index of a size-8 array, always in range."""
    options = [(3, lambda: ("c", draw(st.integers(0, N - 1)))),
               (2, lambda: ("dyn", _iexpr(draw, ctx, 2)))]
    if ctx["loop"]:
        options.append((3, lambda: ("loop",)))
    return _one_of(draw, *options)


def _dsd(draw, cls, ctx, exclude=()):
    syms = [s for s in SYMS_OF[cls] if s not in exclude]
    sym = draw(st.sampled_from(syms))
    bad = draw(st.integers(0, 24)) == 0          # now and then, an operand out of range

    def mem1d():
        length = draw(st.integers(0, N))
        stride = draw(st.sampled_from([1, 1, 2, -1, 0, 3]))
        lo = 0 if stride >= 0 else -stride * max(length - 1, 0)
        hi = N - 1 - (stride * max(length - 1, 0) if stride > 0 else 0)
        if bad:
            return ("D", sym, draw(st.integers(-3, N + 2)), stride, length)
        if lo > hi:
            return ("D", sym, 0, 1, draw(st.integers(0, N)))
        return ("D", sym, draw(st.integers(lo, hi)), stride, length)

    def mem4d():
        e = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
        c = (draw(st.integers(-2, 3)), draw(st.integers(-2, 3)))
        lo = sum(min(0, ci * (ei - 1)) for ci, ei in zip(c, e))
        hi = sum(max(0, ci * (ei - 1)) for ci, ei in zip(c, e))
        if -lo > N - 1 - hi:
            return mem1d()
        return ("D4", sym, draw(st.integers(-lo, N - 1 - hi)), c, e)

    options = [(6, mem1d), (2, mem4d),
               (2, lambda: ("Dloc", sym, _iexpr(draw, ctx, 2), draw(st.integers(0, 4))))]
    if cls in ("f32", "u32"):
        names = [v for v, sym in DSD_VARS.items() if sym not in exclude]
        if names:
            options.append((2, lambda: ("Dvar", draw(st.sampled_from(names)))))
    return _one_of(draw, *options)


def _dsd_syms(o) -> set:
    if o[0] in ("D", "D4", "Dloc"):
        return {o[1]}
    if o[0] == "Dvar":
        return {DSD_VARS[o[1]]}
    return set()


def _scalar(draw, t, ctx):
    if t in ("f32", "f16"):
        return ("s", t, _fexpr(draw, dict(ctx, fconst=True), 1))
    if t == "u32":
        return ("s", t, ("ic", draw(st.integers(0, 2**32 - 1))))
    syms = ("ia",) if t == "i16" else INTS
    if draw(st.booleans()):
        lo, hi = (-0x8000, 0x7FFF) if t == "i16" else (0, 0xFFFF)
        if draw(st.booleans()):
            lo, hi = 0, 20                          # shift counts around 16
        return ("s", t, ("ic", draw(st.integers(lo, hi))))
    return ("s", t, ("i16ld", draw(st.sampled_from(syms)), _index(draw, ctx)))


def _dsd_op(draw, ctx):
    name = draw(st.sampled_from(OP_NAMES))
    spec = ELEMENT_OPS[name]
    form = draw(st.sampled_from(spec.forms))
    dest_cls = str(spec.dest)
    if form[0] == "p":
        sym = draw(st.sampled_from(SYMS_OF[dest_cls] + (("sf",) if dest_cls == "f32" else ())))
        dest = ("p", sym, None if sym == "sf" else draw(st.integers(0, N - 1)))
    else:
        dest = _dsd(draw, dest_cls, ctx)
    srcs = tuple(_source(draw, letter, str(t), dest, dest_cls, ctx)
                 for letter, t in zip(form[1:], spec.srcs))
    return ("op", name, dest, srcs)


def _source(draw, letter, cls, dest, dest_cls, ctx):
    """A source operand; now and then the destination itself (`@fadds(d, d, x)`, or the
    value a pointer destination points to as a scalar source)."""
    same = cls == dest_cls and draw(st.integers(0, 2)) == 0
    if letter == "D":
        return dest if same and dest[0] != "p" else _dsd(draw, cls, ctx)
    if same and dest[0] == "p" and cls == "f32":
        return ("s", cls, ("fs",) if dest[1] == "sf" else ("fld", dest[1], ("c", dest[2])))
    return _scalar(draw, cls, ctx)


CHUNK_OPS = ("fadds", "fsubs", "fmuls", "fmaxs", "fmacs", "fmovs", "fnegs")


def _chunks(draw, ctx):
    """A DSD moved through an array in a loop, destination and source of an op at each step:
    `while (...) { @fadds(d, d, other); d = @increment_dsd_offset(d, k, f32); }`, over a
    global DSD variable or a DSD local, with a run-time or static length, after a rewind or
    from wherever earlier statements left it."""
    target = draw(st.sampled_from(sorted(DSD_VARS) + ["local"]))
    name = draw(st.sampled_from(CHUNK_OPS))
    form = next(f for f in ELEMENT_OPS[name].forms if f[:2] == "DD")
    me = ("Dvar", target)
    srcs = [me]
    for letter in form[2:]:
        if letter == "D":
            srcs.append(_one_of(draw, (3, lambda: _dsd(draw, "f32", ctx)),
                                (2, lambda: ("Dvar", draw(st.sampled_from(sorted(DSD_VARS))))),
                                (1, lambda: me)))
        else:
            srcs.append(_scalar(draw, "f32", ctx))
    others = [o[1] for o in srcs[1:] if o[0] == "Dvar" and o[1] != target]
    return ("chunks", target, draw(st.sampled_from(["while", "for"])), draw(st.integers(0, 3)),
            draw(st.sampled_from([None, None, ("k", 1), ("k", 3), ("rt", _iexpr(draw, ctx, 2))])),
            draw(st.sampled_from([1, 2, 2, -1])), draw(st.booleans()) or target == "local",
            ("op", name, me, tuple(srcs)), tuple(sorted(set(others))) if draw(st.booleans())
            else ())


def _stmt(draw, ctx):
    depth = ctx["depth"]
    inner = dict(ctx, depth=depth + 1)
    in_loop = dict(inner, loop=True, in_loop=True)
    options = [
        (6, lambda: _dsd_op(draw, ctx)),
        (2, lambda: ("setf", draw(st.sampled_from(FLOATS)), _index(draw, ctx),
                     _fexpr(draw, ctx))),
        (2, lambda: ("seti", draw(st.integers(0, 3)), _iexpr(draw, ctx))),
        (1, lambda: ("seti16", draw(st.sampled_from(INTS)), _index(draw, ctx),
                     _iexpr(draw, ctx))),
        (1, lambda: ("sets", _fexpr(draw, ctx), _iexpr(draw, ctx))),
        (1, lambda: ("setdyn", _iexpr(draw, ctx, 1), _iexpr(draw, ctx, 1),
                     draw(st.sampled_from([3, 3, 3, 7])))),
        (1, lambda: ("inc", ("k", draw(st.integers(-2, 3))) if draw(st.booleans()) else
                     _iexpr(draw, ctx, 2), draw(st.sampled_from(sorted(DSD_VARS))))),
        (1, lambda: ("len", _iexpr(draw, ctx, 2), draw(st.sampled_from(sorted(DSD_VARS))))),
        (1, lambda: ("stride", _iexpr(draw, ctx, 2), draw(st.sampled_from(sorted(DSD_VARS))))),
        (1, lambda: ("map", _dsd(draw, "f32", ctx), _dsd(draw, "f32", ctx),
                     _fexpr(draw, ctx, 1))),
        (1, lambda: ("call", _dsd(draw, "f32", ctx), _fexpr(draw, ctx, 1))),
    ]
    if ctx["tasks"]:
        options.append((2, lambda: ("task", draw(st.sampled_from(["activate", "activate",
                                                                   "block", "unblock"])),
                                    draw(st.sampled_from([1, 2, 2, 25])))))
    options.append((1, lambda: ("vcall", draw(st.sampled_from(FLOATS)),
                                draw(st.integers(0, N - 1)), _fexpr(draw, ctx, 1),
                                _fexpr(draw, ctx, 1))))
    if depth < 2:
        options += [
            (ctx.get("chunks", 1), lambda: _chunks(draw, dict(inner, loop=False))),
            (2, lambda: ("if", _cond(draw, ctx), _block(draw, inner, 1, 3),
                         _block(draw, inner, 0, 2))),
            (2, lambda: ("for", draw(st.integers(1, 6)), _block(draw, in_loop, 1, 3))),
            (1, lambda: ("while", draw(st.integers(0, 3)), _block(draw, in_loop, 1, 3))),
        ]
    if ctx["in_loop"]:
        options.append((3, lambda: (draw(st.sampled_from(["break", "continue"])),
                                    _cond(draw, ctx))))
    return _one_of(draw, *options)


def _block(draw, ctx, lo, hi):
    ctx = dict(ctx, top=ctx["top"] and ctx["depth"] == 0)
    n = draw(st.integers(lo, hi))
    return tuple(_stmt(draw, ctx) for _ in range(n))


@st.composite
def plans(draw, lo=1, hi=6, chunks=1):
    """`(with_tasks, body)` with lo..hi top-level statements; a plan with tasks compiles the
    scheduler too (slower). `chunks` weighs the loops that move a DSD (`_chunks`)."""
    tasks = draw(st.integers(0, 2)) == 0
    ctx = {"depth": 0, "loop": False, "in_loop": False, "top": True, "tasks": tasks,
           "chunks": chunks}
    return tasks, _block(draw, ctx, lo, hi)


class _Emit:
    """Emits a plan with wsejax.dsl, inside the traced body of `run`."""

    def __init__(self, refs, dvs, helpers, counters):
        self.refs, self.dvs, self.helpers, self.counters = refs, dvs, helpers, counters
        self.loop_vars: list = []
        self.next_counter = 0
        self.local_dsd = None
        self.next_local = 0

    def index(self, ix):
        kind = ix[0]
        if kind == "c":
            return ix[1]
        if kind == "loop":
            return self.loop_vars[-1]
        return self.i(ix[1]) & (N - 1)

    def f(self, e):
        k = e[0]
        if k == "fc":
            return csl.as_(csl.f32, e[1])
        if k == "fld":
            return self.refs[e[1]][self.index(e[2])]
        if k == "fs":
            return self.refs["sf"].value
        if k == "floop":
            return csl.as_(csl.f32, self.loop_vars[-1])
        if k == "fadd":
            return self.f(e[1]) + self.f(e[2])
        if k == "fsub":
            return self.f(e[1]) - self.f(e[2])
        if k in ("fmin", "fmax"):
            a, b = self.f(e[1])._ir(), self.f(e[2])._ir()
            return csl.Val(ir.Bin(k[1:], a, b, csl.f32))
        if k == "fcast":
            return csl.as_(csl.f32, self.i(e[1]))
        if k == "fneg":
            return -self.f(e[1])
        if k == "fsel":
            return csl.select(self.c(e[1]), self.f(e[2]), self.f(e[3]))
        raise AssertionError(e)

    def i(self, e):
        k = e[0]
        if k == "ic":
            return csl.as_(csl.i32, e[1])
        if k == "ild":
            return self.refs["cnt"][e[1]]
        if k == "ildw":
            return self.refs["cnt"][self.i(e[1]) & 7]
        if k == "i16ld":
            v = self.refs[e[1]][self.index(e[2])]
            return csl.as_(csl.i32, v)
        if k == "is":
            return self.refs["si"].value
        if k == "iloop":
            return csl.as_(csl.i32, self.loop_vars[-1])
        if k == "ibin":
            a, b = self.i(e[2]), self.i(e[3])
            if e[1] in ("min", "max"):
                return csl.Val(ir.Bin(e[1], a._ir(), b._ir(), csl.i32))
            return {"+": a.__add__, "-": a.__sub__, "*": a.__mul__, "/": a.__truediv__,
                    "%": a.__mod__, "&": a.__and__, "|": a.__or__, "^": a.__xor__,
                    "<<": a.__lshift__, ">>": a.__rshift__}[e[1]](b)
        if k == "icast":
            return csl.as_(csl.i32, self.f(e[1]))
        if k == "iun":
            v = self.i(e[2])
            return {"-": v.__neg__, "~": v.__invert__, "abs": v.__abs__}[e[1]]()
        raise AssertionError(e)

    def c(self, e):
        k = e[0]
        if k in ("fcmp", "icmp"):
            get = self.f if k == "fcmp" else self.i
            a, b = get(e[2]), get(e[3])
            return {"==": a.__eq__, "!=": a.__ne__, "<": a.__lt__, "<=": a.__le__,
                    ">": a.__gt__, ">=": a.__ge__}[e[1]](b)
        if k == "and":
            return self.c(e[1]) & self.c(e[2])
        if k == "or":
            return self.c(e[1]) | self.c(e[2])
        return ~self.c(e[1])

    def dsd(self, o):
        k = o[0]
        if k == "D":
            _, sym, off, stride, length = o
            return csl.get_dsd(csl.mem1d_dsd, base_address=self.refs[sym], offset=off,
                               stride=stride, extent=length)
        if k == "D4":
            _, sym, c0, c, e = o
            ref = self.refs[sym]
            return csl.get_dsd(csl.mem4d_dsd, tensor_access=csl.tensor_access(
                lambda i, j: ref[c0 + c[0] * i + c[1] * j], e))
        if k == "Dloc":
            off = csl.as_(csl.i16, self.i(o[2]) & 3)
            return csl.local(csl.get_dsd(csl.mem1d_dsd, base_address=self.refs[o[1]],
                                         offset=off, extent=o[3]))
        if o[1] == "local":
            return self.local_dsd
        return self.dvs[o[1]]

    def set_dsd(self, name, value):
        if name == "local":
            self.local_dsd = csl.local(value, name=self.local_dsd.expr.name)
        else:
            self.dvs[name].set(value)

    def counter(self):
        w = self.counters[self.next_counter % len(self.counters)]
        self.next_counter += 1
        return w

    def chunks(self, s):
        _, target, loop, k, length, delta, rewind, op, others = s
        if target == "local":
            self.next_local += 1
            self.local_dsd = csl.local(csl.get_dsd(csl.mem1d_dsd, base_address=self.refs["fa"],
                                                   extent=4), name=f"chunk{self.next_local}")
        elif rewind:
            self.dvs[target].set(csl.get_dsd(csl.mem1d_dsd,
                                             base_address=self.refs[DSD_VARS[target]], extent=4))
        if length is not None:
            n = length[1] if length[0] == "k" else csl.as_(csl.u16, (self.i(length[1]) & 3) + 1)
            self.set_dsd(target, csl.set_dsd_length(self.dsd(("Dvar", target)), n))

        def step():
            self.stmt(op)
            for name in (target,) + others:
                self.set_dsd(name, csl.increment_dsd_offset(self.dsd(("Dvar", name)), delta,
                                                            csl.f32))

        if loop == "for":
            for i in csl.range(csl.i16, k + 3):
                self.loop_vars.append(i)
                step()
                self.loop_vars.pop()
            return
        w = self.counter()
        w.set(0)
        with csl.while_(w < (self.refs["cnt"][k] & 3)):
            w.set(w + 1)
            self.loop_vars.append(csl.as_(csl.i16, w))
            step()
            self.loop_vars.pop()

    def operand(self, o):
        if o[0] == "s":
            _, t, e = o
            if t == "f32":
                return self.f(e)
            if t == "f16":
                return csl.as_(csl.f16, self.f(e))
            if e[0] == "ic":
                return e[1]
            return self.refs[e[1]][self.index(e[2])]
        if o[0] == "p":
            ref = self.refs[o[1]]
            return csl.addr(ref) if o[2] is None else csl.addr(ref, o[2])
        return self.dsd(o)

    def block(self, stmts):
        for s in stmts:
            self.stmt(s)

    def stmt(self, s):
        k = s[0]
        refs = self.refs
        if k == "op":
            getattr(csl, s[1])(self.operand(s[2]), *(self.operand(o) for o in s[3]))
        elif k == "setf":
            refs[s[1]][self.index(s[2])] = self.f(s[3])
        elif k == "seti":
            refs["cnt"][s[1]] = self.i(s[2])
        elif k == "seti16":
            refs[s[1]][self.index(s[2])] = csl.as_(ARRAY_TYPES[s[1]], self.i(s[3]))
        elif k == "sets":
            refs["sf"].set(self.f(s[1]))
            refs["si"].set(self.i(s[2]))
        elif k == "setdyn":                         # with mask 7, may fault
            refs["cnt"][self.i(s[1]) & s[3]] = self.i(s[2])
        elif k == "inc":
            delta = s[1][1] if s[1][0] == "k" else csl.as_(csl.i16, (self.i(s[1]) & 3) - 2)
            self.dvs[s[2]].set(csl.increment_dsd_offset(self.dvs[s[2]], delta, csl.f32))
        elif k == "len":
            self.dvs[s[2]].set(csl.set_dsd_length(self.dvs[s[2]],
                                                  csl.as_(csl.u16, self.i(s[1]) & 7)))
        elif k == "stride":
            self.dvs[s[2]].set(csl.set_dsd_stride(self.dvs[s[2]],
                                                  csl.as_(csl.i8, self.i(s[1]) & 3)))
        elif k == "chunks":
            self.chunks(s)
        elif k == "map":
            out = csl.addr(refs["sf"])
            csl.map(self.helpers["pick"], self.dsd(s[1]), self.dsd(s[2]), self.f(s[3]), out)
        elif k == "call":
            self.helpers["touch"](self.dsd(s[1]), self.f(s[2]))
        elif k == "vcall":
            refs[s[1]][s[2]] = self.helpers["addf"](self.f(s[3]), self.f(s[4]))
        elif k == "if":
            with csl.if_(self.c(s[1])):
                self.block(s[2])
            if s[3]:
                with csl.else_():
                    self.block(s[3])
        elif k == "for":
            for i in csl.range(csl.i16, s[1]):
                self.loop_vars.append(i)
                self.block(s[2])
                self.loop_vars.pop()
        elif k == "while":
            w = self.counter()
            w.set(0)
            with csl.while_(w < (refs["cnt"][s[1]] & 3)):
                w.set(w + 1)
                self.loop_vars.append(csl.as_(csl.i16, w))
                self.block(s[2])
                self.loop_vars.pop()
        elif k in ("break", "continue"):
            with csl.if_(self.c(s[1])):
                (csl.break_ if k == "break" else csl.continue_)()
        elif k == "task":
            getattr(csl, s[1])(csl.get_local_task_id(s[2]))
        elif k != "skip":
            raise AssertionError(s)


def _plan_program(plan):
    with_tasks, body = plan

    def pe():
        refs = {name: csl.var(name, t[N]) for name, t in ARRAY_TYPES.items()}
        refs["sf"] = csl.var("sf", csl.f32)
        refs["si"] = csl.var("si", csl.i32)
        refs["cnt"] = csl.var("cnt", csl.i32[4])
        dvs = {name: csl.var(name, csl.get_dsd(csl.mem1d_dsd, base_address=refs[sym],
                                               extent=4))
               for name, sym in DSD_VARS.items()}

        @csl.fn
        def pick(u: csl.f32, v: csl.f32, s: csl.f32) -> csl.f32:
            with csl.if_(u > v):
                csl.return_(u - s)
            return v + s

        @csl.fn
        def touch(d: csl.mem1d_dsd, s: csl.f32):
            with csl.if_(s > 0.0):
                csl.fadds(d, d, s)
                csl.return_()
            csl.fnegs(d, d)

        @csl.fn
        def addf(x: csl.f32, y: csl.f32) -> csl.f32:
            with csl.if_(x > y):
                csl.return_(x - y)
            return x + y

        @csl.task
        def bump():
            refs["cnt"][3] = refs["cnt"][3] + 1
            refs["sf"].set(refs["sf"] + 1.0)
            with csl.if_((refs["cnt"][3] & 1) == 0):
                csl.activate(csl.get_local_task_id(2))

        @csl.task
        def flip():
            refs["cnt"][2] = refs["cnt"][2] ^ 5

        @csl.task
        def final():
            csl.unblock_cmd_stream()

        if with_tasks:
            for t, ident in ((bump, 1), (flip, 2), (final, 20)):
                csl.bind_local_task(t, csl.get_local_task_id(ident))

        @csl.fn
        def run():
            if with_tasks:
                csl.activate(csl.get_local_task_id(20))     # unblocks the command stream
            else:
                csl.unblock_cmd_stream()
            counters = [csl.local(csl.i32, 0) for _ in range(6)]
            _Emit(refs, dvs, {"pick": pick, "touch": touch, "addf": addf}, counters).block(body)

        for ref in refs.values():
            csl.export_symbol(ref)
        csl.export_symbol(run)

    exports = {name: t for name, t in ARRAY_TYPES.items()}
    exports.update(sf=csl.f32, si=csl.i32, cnt=csl.i32, run=csl.fn_type())
    return compile_single(pe, exports, width=3, height=2)


def _check_plan(plan, seed):
    program = _plan_program(plan)
    data = host_data(program, np.random.default_rng(seed))
    runner, ref = run_both(program, [("run",), ("run",)], data, loop_limit=64)
    problems = mismatches(program, runner, ref)
    assert not problems, "\n".join([repr(plan)] + problems[:20])


_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=_HEALTH)
@given(plans(), st.integers(0, 2**32 - 1))
def test_generated_programs_agree(plan, seed):
    _check_plan(plan, seed)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=_HEALTH)
@given(plans(6, 14), st.integers(0, 2**32 - 1))
def test_longer_generated_programs_agree(plan, seed):
    _check_plan(plan, seed)


# ------------------------------------------------------------------------------------------------
# Minimal programs where the engine once departed from the spec (now regression tests), and
# where it still does (xfail, strict, with the reason)


def _single(body_fn, exports, width=3, height=1):
    exports = dict(exports, run=csl.fn_type())
    return compile_single(body_fn, exports, width=width, height=height)


def _disagreement(program, data, launches=(("run",),), **kw):
    runner, ref = run_both(program, list(launches), data, **kw)
    return mismatches(program, runner, ref)


def test_call_as_value_runs_under_the_branch_mask():
    """Fixed: a function called as a value (CallExpr) ran on every PE, its writes and cycles
    reaching PEs that did not take the branch."""
    def pe():
        cnt = csl.var("cnt", csl.i32)

        @csl.fn
        def bump() -> csl.i32:
            cnt.set(cnt + 1)
            return cnt.value

        @csl.fn
        def run():
            with csl.if_(csl.pe_x() == 0):
                v = bump()
                cnt.set(v + 10)
            csl.unblock_cmd_stream()

        csl.export_symbol(cnt)
        csl.export_symbol(run)

    problems = _disagreement(_single(pe, {"cnt": csl.i32}), [])
    assert not problems, "\n".join(problems)


def test_load_out_of_range_in_a_branch_not_taken_does_not_fault():
    """Fixed: a load with an index out of range faulted the PE even where it did not run."""
    def pe():
        a = csl.var("a", csl.i32[4])
        k = csl.var("k", csl.i32)

        @csl.fn
        def run():
            with csl.if_(k < 4):
                a[0] = a[k]
            csl.unblock_cmd_stream()

        csl.export_symbol(a)
        csl.export_symbol(k)
        csl.export_symbol(run)

    program = _single(pe, {"a": csl.i32, "k": csl.i32})
    problems = _disagreement(program, [("k", np.array([1, 9, 2], np.uint32), 1, 32)])
    assert not problems, "\n".join(problems)


def test_pointer_destination_read_back_by_a_source():
    """Fixed: a pointer destination was written once, after every element was read; spec 7.7
    makes it a stride-0 destination written at each element."""
    def pe():
        a = csl.var("a", csl.f32[4])
        a0 = csl.get_dsd(csl.mem1d_dsd, base_address=a, stride=0, extent=3)

        @csl.fn
        def run():
            csl.fadds(csl.addr(a, 0), 1.0, a0)     # in order: a[0] += 1, three times
            csl.unblock_cmd_stream()

        csl.export_symbol(a)
        csl.export_symbol(run)

    program = _single(pe, {"a": csl.f32})
    problems = _disagreement(program, [("a", np.zeros(12, np.uint32), 4, 32)])
    assert not problems, "\n".join(problems)


def _fmacs_loop(y_len: int, extra_increment: bool):
    def pe():
        A = csl.var("A", csl.f32[30])
        C = csl.var("C", csl.f32[8])
        x = csl.var("x", csl.f32[6])
        y = csl.var("y", csl.f32[4])
        out = csl.var("out", csl.f32[4])
        A_dsd = csl.var("A_dsd", csl.get_dsd(
            csl.mem1d_dsd, tensor_access=csl.tensor_access(lambda i: A[i * 6], 4)))
        C_dsd = csl.var("C_dsd", csl.get_dsd(csl.mem1d_dsd, base_address=C, extent=1))
        y_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=y, extent=y_len)
        out_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=out, extent=4)

        @csl.fn
        def run():
            for i in csl.range(csl.i16, 6):
                csl.fmacs(y_dsd, y_dsd, A_dsd, x[i])
                A_dsd.set(csl.increment_dsd_offset(A_dsd, 1, csl.f32))
                if extra_increment:
                    C_dsd.set(csl.increment_dsd_offset(C_dsd, 1, csl.f32))
            csl.fmovs(out_dsd, A_dsd)          # where A_dsd ended up
            csl.unblock_cmd_stream()

        for s in (A, C, x, y, out):
            csl.export_symbol(s)
        csl.export_symbol(run)

    program = _single(pe, {"A": csl.f32, "C": csl.f32, "x": csl.f32, "y": csl.f32,
                           "out": csl.f32}, width=1)
    return program, host_data(program, np.random.default_rng(6))


@pytest.mark.parametrize("y_len, extra_increment", [(0, False), (4, True)])
def test_matvec_loops_advance_and_cost_as_step_by_step(y_len, extra_increment):
    """Fixed (matvec_loops=True): an @fmacs loop over an empty vector skipped its DSD
    increments, and the lowering charged n*n_iter + 2*n_iter cycles whatever the increments."""
    program, data = _fmacs_loop(y_len, extra_increment)
    assert not _disagreement(program, data)
    runner, ref = run_both(program, [("run",)], data, matvec_loops=True)
    problems = mismatches(program, runner, ref, tolerant={"y": 1e-5})
    assert not problems, "\n".join(problems)


def test_fscale_is_exact(tmp_path):
    """Fixed: <math>.fscale(x, k) multiplied by XLA's exp2(k), which is not exact."""
    from csl_harness import compile_pe

    src = """
    param memcpy_params;
    const sys = @import_module("<memcpy/memcpy>", memcpy_params);
    const math = @import_module("<math>");
    var v: [4]f32;
    var v_ptr: [*]f32 = &v;
    fn run() void {
      v[0] = math.fscale(v[1], 13);
      v[2] = math.fscale(v[3], -21);
      sys.unblock_cmd_stream();
    }
    comptime {
      @export_symbol(v_ptr, "v");
      @export_symbol(run);
    }
    """
    program = compile_pe(tmp_path, src, '@export_name("v", [*]f32, true);\n'
                                        '@export_name("run", fn()void);', w=4, h=1)
    problems = _disagreement(program, host_data(program, np.random.default_rng(8)))
    assert not problems, "\n".join(problems)


def test_scalar_operand_reading_the_destination_is_evaluated_once():
    """Fixed: a scalar operand reading the destination was read again at every element; spec
    §8 passes a value, evaluated once before the op."""
    def pe():
        v = csl.var("v", csl.f32[4])
        v_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=v, extent=4)

        @csl.fn
        def run():
            csl.fmuls(v_dsd, v_dsd, v[0])          # v *= v[0], with the v[0] of before
            csl.unblock_cmd_stream()

        csl.export_symbol(v)
        csl.export_symbol(run)

    program = _single(pe, {"v": csl.f32}, width=1)
    v = np.array([2, 3, 4, 5], np.float32).view(np.uint32)
    problems = _disagreement(program, [("v", v, 4, 32)])
    assert not problems, "\n".join(problems)


@pytest.mark.xfail(strict=True, reason="engine: a runtime DSD length larger than the symbol is "
                   "cut to the symbol's size (Lowerer.bound), so a stride-0 reduction stops "
                   "early and a run past the end does not fault")
def test_engine_caps_runtime_lengths_at_the_symbol_size():
    def pe():
        acc = csl.var("acc", csl.f32[2])
        x = csl.var("x", csl.f32[4])
        n = csl.var("n", csl.u16)
        acc_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=acc, stride=0, extent=1)
        x_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=x, stride=0, extent=1)

        @csl.fn
        def run():
            a = csl.set_dsd_length(acc_dsd, n)
            csl.fadds(a, a, csl.set_dsd_length(x_dsd, n))   # acc[0] += x[0], n times
            csl.unblock_cmd_stream()

        for s in (acc, x, n):
            csl.export_symbol(s)
        csl.export_symbol(run)

    program = _single(pe, {"acc": csl.f32, "x": csl.f32, "n": csl.u16})
    data = [("n", np.array([1, 5, 7], np.uint32), 1, 16),
            ("x", np.ones(12, np.float32).view(np.uint32), 4, 32)]
    problems = _disagreement(program, data)
    assert not problems, "\n".join(problems)


@pytest.mark.xfail(strict=True, reason="engine: @map reads every input element before writing "
                   "any output; spec 8.1 reads, calls and writes one element at a time")
def test_engine_map_output_overlapping_a_later_input():
    def pe():
        a = csl.var("a", csl.f32[4])
        src = csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=3)
        dst = csl.get_dsd(csl.mem1d_dsd, base_address=a, offset=1, extent=3)

        @csl.fn
        def run():
            csl.map(lambda v: v + 1.0, src, dst)    # a[i+1] = a[i] + 1, in order
            csl.unblock_cmd_stream()

        csl.export_symbol(a)
        csl.export_symbol(run)

    program = _single(pe, {"a": csl.f32})
    problems = _disagreement(program, [("a", np.zeros(12, np.uint32), 4, 32)])
    assert not problems, "\n".join(problems)


def test_engine_f32_multiply_add_in_an_expression_is_rounded_twice():
    """Fixed: XLA:CPU contracted an f32 product feeding an add into one FMA inside loops; the
    scalar f32 operators are now `wsejax.ops`' exact helpers, which it cannot contract."""
    def pe():
        u = csl.var("u", csl.u32[16])
        r = csl.var("r", csl.f32[16])

        @csl.fn
        def run():
            # <random>.random_f32(-2.0, 3.0), as the CSL front end expands it
            for k in csl.range(csl.i16, 16):
                r[k] = -2.0 + 5.0 * (csl.as_(csl.f32, u[k] >> 8) * 5.960464477539063e-08)
            csl.unblock_cmd_stream()

        csl.export_symbol(u)
        csl.export_symbol(r)
        csl.export_symbol(run)

    program = _single(pe, {"u": csl.u32, "r": csl.f32}, width=1)
    problems = _disagreement(program, host_data(program, np.random.default_rng(7)))
    assert not problems, "\n".join(problems)


def test_engine_f32_additions_of_constants_are_not_reassociated():
    """Fixed: XLA's algebraic simplifier folded `(x + 1.5) - 1.5` to `x`; the scalar f32
    operators are now `wsejax.ops`' exact helpers, which it does not reassociate."""
    def pe():
        u = csl.var("u", csl.f32[8])
        r = csl.var("r", csl.f32[8])

        @csl.fn
        def run():
            for k in range(8):
                r[k] = (u[k] + 1.5) - 1.5
            csl.unblock_cmd_stream()

        csl.export_symbol(u)
        csl.export_symbol(r)
        csl.export_symbol(run)

    program = _single(pe, {"u": csl.f32, "r": csl.f32}, width=1)
    problems = _disagreement(program, host_data(program, np.random.default_rng(3)))
    assert not problems, "\n".join(problems)


_CHUNKS = """
param memcpy_params: comptime_struct;
const sys_mod = @import_module("<memcpy/memcpy>", memcpy_params);
var a: [12]f32;
var b: [12]f32;
var n: i16;
var len: u16;
var d = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> a[i] });
var other = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{4} -> b[i] });
var a_ptr: [*]f32 = &a;
var b_ptr: [*]f32 = &b;
var n_ptr: *i16 = &n;
var len_ptr: *u16 = &len;
fn run() void {
  d = @set_dsd_length(d, len);
  other = @set_dsd_length(other, len);
  var k: i16 = 0;
  while (k < n) : (k += 1) {
    @fadds(d, d, other);
    d = @increment_dsd_offset(d, len, f32);
    other = @increment_dsd_offset(other, len, f32);
  }
  sys_mod.unblock_cmd_stream();
}
comptime {
  @export_symbol(a_ptr, "a");
  @export_symbol(b_ptr, "b");
  @export_symbol(n_ptr, "n");
  @export_symbol(len_ptr, "len");
  @export_symbol(run);
}
"""


@pytest.mark.parametrize("n, length", [(3, 4), (6, 2), (2, 5)])
def test_dsd_moved_in_a_runtime_loop_is_read_where_it_points(tmp_path, n, length):
    """Fixed: a DSD with a run-time length under its static bound and a run-time offset
    was read at an offset moved so that a window of the whole bound fit in the array: an
    in-place `@fadds(d, d, other)` over chunks read every chunk's sources at the start."""
    from csl_harness import compile_pe

    program = compile_pe(tmp_path, _CHUNKS, '\n'.join(
        f'@export_name("{s}", [*]{t}, true);' for s, t in
        (("a", "f32"), ("b", "f32"), ("n", "i16"), ("len", "u16")))
        + '\n@export_name("run", fn()void);', w=2, h=1)
    rng = np.random.default_rng(n)
    a = rng.standard_normal((2, 12)).astype(np.float32)
    b = rng.standard_normal((2, 12)).astype(np.float32)
    data = [("a", a.view(np.uint32).reshape(-1), 12, 32), ("b", b.view(np.uint32).reshape(-1),
                                                              12, 32),
            ("n", np.full(2, n, np.uint32), 1, 16), ("len", np.full(2, length, np.uint32), 1, 16)]
    runner, ref = run_both(program, [("run",)], data)
    assert not mismatches(program, runner, ref)
    want = a.copy()
    want[:, :n * length] += b[:, :n * length]
    for x in range(2):
        assert np.array_equal(ref.memory(x, 0)["a"], want[x])
        assert np.array_equal(runner.read_symbol(x, 0, "a", np.float32).reshape(-1), want[x])


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=_HEALTH)
@given(plans(1, 3, chunks=12), st.integers(0, 2**32 - 1))
def test_generated_programs_moving_dsds_in_loops_agree(plan, seed):
    """Loops that move DSD variables and DSD locals, each the destination and a source of
    its op, drawn often."""
    _check_plan(plan, seed)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=_HEALTH)
@given(plans(2, 8, chunks=8), st.integers(0, 2**32 - 1))
def test_more_generated_programs_moving_dsds_in_loops_agree(plan, seed):
    _check_plan(plan, seed)


# ------------------------------------------------------------------------------------------------
# Every loop has a budget: a loop nest runs at most `loop_limit` iterations in all


def _budget_program():
    def pe():
        n = csl.var("n", csl.i32)
        acc = csl.var("acc", csl.i32[2])
        x = csl.var("x", csl.f32[4])
        y = csl.var("y", csl.f32[4])
        x_dsd = csl.var("x_dsd", csl.get_dsd(csl.mem1d_dsd, base_address=x, stride=0,
                                             extent=4))
        y_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=y, extent=4)

        @csl.fn
        def inner():
            with csl.while_(acc[1] < n):
                acc[1] = acc[1] + 1

        @csl.fn
        def huge_for():                     # a comptime trip count far past the budget
            for _ in csl.range(csl.i32, 1 << 30):
                acc[0] = acc[0] + 1
            csl.unblock_cmd_stream()

        @csl.fn
        def short_for():                    # three iterations, unrolled
            with csl.if_(csl.pe_x() == 0):
                for _ in csl.range(csl.i16, 3):
                    acc[0] = acc[0] + 1
            csl.unblock_cmd_stream()

        @csl.fn
        def nested():                       # 4 x n iterations, the inner loop in a call
            for _ in csl.range(csl.i16, 4):
                acc[1] = 0
                inner()
                acc[0] = acc[0] + 1
            csl.unblock_cmd_stream()

        @csl.fn
        def matvec():                       # 6 @fmacs steps, lowered as one product
            for i in csl.range(csl.i16, 6):
                csl.fmacs(y_dsd, y_dsd, x_dsd, x[i & 3])
                x_dsd.set(csl.increment_dsd_offset(x_dsd, 0, csl.f32))
            csl.unblock_cmd_stream()

        for s in (n, acc, x, y):
            csl.export_symbol(s)
        for f in (huge_for, short_for, nested, matvec):
            csl.export_symbol(f)

    return compile_single(pe, {"n": csl.i32, "acc": csl.i32, "x": csl.f32, "y": csl.f32,
                               "huge_for": csl.fn_type(), "short_for": csl.fn_type(),
                               "nested": csl.fn_type(), "matvec": csl.fn_type()}, width=3,
                          height=1)


@pytest.mark.parametrize("matvec_loops", [False, True])
def test_every_loop_nest_has_a_budget(matvec_loops):
    """A `for` with a huge trip count, nested loops (one in a called function), an unrolled
    `for` and a vectorised `@fmacs` loop all spend one budget of `loop_limit` iterations per
    loop nest, and fault alike in the engine and the reference, naming the PE and the
    function, instead of running on."""
    program = _budget_program()
    n = [("n", np.array([1, 2, 9], np.uint32), 1, 32)]
    kw = {"loop_limit": 12, "matvec_loops": matvec_loops}
    _, ref = agree(program, [("huge_for",)], n, **kw)
    assert str(ref.errors[0]).startswith("device fault: huge_for: a for loop ran past 12 "
                                         "iterations")
    assert ref.faults == {(x, 0): "huge_for: a for loop ran past 12 iterations"
                          for x in range(3)}
    # 4 x (n + 1) iterations: 8 and 12 fit; with n = 9 the inner loop of the second pass
    # runs out
    _, ref = agree(program, [("nested",)], n, **kw)
    assert ref.faults == {(2, 0): "inner: a while loop ran past 12 iterations in all with "
                                  "the loops around it"}
    assert isinstance(ref.errors[0], FabricFault) and ref.errors[0].pes == [(2, 0)]
    _, ref = agree(program, [("short_for",), ("matvec",)], n, **kw)
    assert ref.errors == [None, None]
    _, ref = agree(program, [("matvec",)], n, **dict(kw, loop_limit=5))
    assert ref.faults == {(x, 0): "matvec: a for loop ran past 5 iterations" for x in range(3)}
    _, ref = agree(program, [("short_for",)], n, **dict(kw, loop_limit=2))
    assert ref.faults == {(0, 0): "short_for: a for loop ran past 2 iterations"}


def test_a_task_that_activates_itself_forever_faults():
    def pe():
        count = csl.var("count", csl.i32)
        again_id = csl.get_local_task_id(3)

        @csl.task
        def again():
            count.set(count + 1)
            csl.activate(again_id)

        csl.bind_local_task(again, again_id)

        @csl.fn
        def go():
            csl.activate(again_id)

        csl.export_symbol(count)
        csl.export_symbol(go)

    program = compile_single(pe, {"count": csl.i32, "go": csl.fn_type()}, width=2, height=1)
    _, ref = agree(program, [("go",)], [], loop_limit=30)
    assert isinstance(ref.errors[0], FabricFault)
    assert sorted(ref.faults) == [(0, 0), (1, 0)]
    assert "still busy after 30 ticks" in ref.faults[(0, 0)]


def test_gemv_keeps_subnormals_by_default():
    """The default lowering of an @fmacs loop is step by step, IEEE-exact: subnormal matrix
    entries, products and partial sums are kept, as numpy (rounding each product and each
    sum to f32) and the reference keep them. The matrix-product lowering is opt-in
    (`matvec_loops=True`): XLA:CPU flushes f32 subnormals inside it."""
    from gemv import compile_gemv, run_gemv

    M, N = 4, 6
    program = compile_gemv(2, 1, M, N)
    rng = np.random.default_rng(9)
    tiny = np.float32(2.0 ** -70)
    A = (rng.standard_normal((1, 2, M * N)) * tiny).astype(np.float32)    # products ~2**-140
    A[..., ::5] = np.float32(3e-41) * rng.integers(-3, 4, A[..., ::5].shape)    # subnormal
    x = (rng.standard_normal((1, 2, N)) * tiny).astype(np.float32)
    x[..., 0] = 1.5
    b = np.zeros((1, 2, M), np.float32)
    y = run_gemv(started(program), A, x, b, 2, 1, M, N)
    want = np.zeros((1, 2, M), np.float32)
    for i in range(N):
        want = want + A[..., i::N] * x[..., i:i + 1]         # f32 numpy, subnormals kept
    want = want + b
    assert np.any((want != 0) & (np.abs(want) < np.finfo(np.float32).tiny))
    assert y.view(np.uint32).tolist() == want.view(np.uint32).tolist()
    ref = Reference(program)
    for name, arr, n in (("A", A, M * N), ("x", x, N), ("b", b, M)):
        ref.memcpy_h2d(name, arr.reshape(-1).view(np.uint32).copy(), 0, 0, 2, 1, n)
    ref.launch("init_and_compute")
    for px in range(2):
        assert ref.memory(px, 0)["y"].view(np.uint32).tolist() == \
            want[0, px].view(np.uint32).tolist()
