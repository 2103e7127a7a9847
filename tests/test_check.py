"""Check mode (`wsejax.engine.check`): the reference interpreter beside the engine, compared
after every host command."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
from harness import compile_single

from wsejax import CheckError, FabricFault, MemcpyError, SdkRuntime, WsejaxError, ops
from wsejax import dsl as csl


def _program(width=3, height=2):
    def pe():
        a = csl.var("a", csl.f32[4])
        b = csl.var("b", csl.f32[4])
        k = csl.var("k", csl.i32)
        a_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=a, extent=4)
        b_dsd = csl.get_dsd(csl.mem1d_dsd, base_address=b, extent=4)

        @csl.fn
        def run():
            csl.fadds(a_dsd, a_dsd, b_dsd)
            with csl.if_(k > 2):
                a[0] = a[k & 3]
            csl.unblock_cmd_stream()

        for s in (a, b, k):
            csl.export_symbol(s)
        csl.export_symbol(run)

    return compile_single(pe, {"a": csl.f32, "b": csl.f32, "k": csl.i32,
                               "run": csl.fn_type()}, width=width, height=height)


def _drive(r, a, b, k):
    r.load()
    r.run()
    r.memcpy_h2d(r.get_id("a"), a.copy(), 0, 0, 3, 2, 4, streaming=False)
    r.memcpy_h2d(r.get_id("b"), b.copy(), 0, 0, 3, 2, 4, streaming=False)
    r.memcpy_h2d(r.get_id("k"), k.copy(), 0, 0, 3, 2, 1, streaming=False)
    r.launch("run")
    out = np.zeros(24, np.float32)
    r.memcpy_d2h(out, r.get_id("a"), 0, 0, 3, 2, 4, streaming=False)
    r.stop()
    return out


def _data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(24).astype(np.float32),
            rng.standard_normal(24).astype(np.float32), np.arange(6, dtype=np.int32))


def test_a_run_that_agrees_passes():
    a, b, k = _data()
    r = SdkRuntime(_program(), check=True)
    out = _drive(r, a, b, k).reshape(6, 4)
    want = (a + b).reshape(6, 4)
    for p in range(6):
        if k[p] > 2:
            want[p, 0] = want[p, k[p] & 3]
    np.testing.assert_array_equal(out, want)


def test_the_environment_turns_it_on(monkeypatch):
    monkeypatch.setenv("WSEJAX_CHECK", "1")
    assert SdkRuntime(_program()).checker is not None
    monkeypatch.setenv("WSEJAX_CHECK", "0")
    assert SdkRuntime(_program()).checker is None


def test_a_broken_engine_is_reported_with_command_pe_and_symbol(monkeypatch):
    """An engine whose @fadds is wrong (one ulp off, element 2 only) is caught at the launch
    that ran it, at the first PE and symbol that differ."""
    spec = ops.OPS["fadds"]

    def wrong(x, y):
        r = spec.fn(x, y)
        return r.at[..., 2].set(jnp.nextafter(r[..., 2], jnp.float32(jnp.inf)))

    monkeypatch.setitem(ops.OPS, "fadds", dataclasses.replace(spec, fn=wrong))
    a, b, k = _data()
    r = SdkRuntime(_program(), check=True)
    with pytest.raises(CheckError) as err:
        _drive(r, a, b, k)
    text = str(err.value)
    assert text.startswith("launch('run'): engine and reference disagree after it: PE (0, 0) "
                           "symbol 'a'[2]: engine "), text
    assert isinstance(err.value, WsejaxError)


def test_faults_that_agree_are_raised_as_the_engine_raised_them():
    a, b, _ = _data()
    k = np.array([0, 1, 2, 3, 9, -7], np.int32)         # & 3 keeps every index in range
    r = SdkRuntime(_program(), check=True, loop_limit=10)
    _drive(r, a, b, k)

    def pe():
        v = csl.var("v", csl.f32[2])
        n = csl.var("n", csl.i32)

        @csl.fn
        def run():
            v[0] = v[n]
            csl.unblock_cmd_stream()

        csl.export_symbol(v)
        csl.export_symbol(n)
        csl.export_symbol(run)

    program = compile_single(pe, {"v": csl.f32, "n": csl.i32, "run": csl.fn_type()},
                             width=2, height=1)
    r = SdkRuntime(program, check=True)
    r.load()
    r.run()
    r.memcpy_h2d(r.get_id("n"), np.array([0, 5], np.int32), 0, 0, 2, 1, 1, streaming=False)
    with pytest.raises(FabricFault) as err:
        r.launch("run")
    assert err.value.pes == [(1, 0)]


def test_large_fabrics_and_random_order_are_refused():
    with pytest.raises(CheckError, match="at most 64 PEs; this program has 9x8 = 72"):
        SdkRuntime(_program(9, 8), check=True)
    with pytest.raises(CheckError, match="schedule_seed"):
        SdkRuntime(_program(), check=True, schedule_seed=3)
    with pytest.raises(MemcpyError):        # a misused command is refused before it runs
        r = SdkRuntime(_program(), check=True)
        r.load()
        r.run()
        r.memcpy_h2d(r.get_id("a"), np.zeros(3, np.float32), 0, 0, 3, 2, 4, streaming=False)
