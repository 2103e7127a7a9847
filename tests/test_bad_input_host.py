"""Bad input on the host side and at the command line: each is a clear `WsejaxError` (or, from
`wsejax`, one line and exit status 1), never a hang and never an internal traceback.

Covers: the CLI's last line of defence against unexpected exceptions, damaged compile output
directories, a missing `--name`, invalid memcpy enums and `read_symbol` dtypes,
`WSEJAX_DEVICES`, host arrays in non-native byte order, fabrics larger than the wafer or too
small for the rectangle (refused before any tile is evaluated), and programs compiled without
`--memcpy`.
"""

import json
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from gemv import compile_gemv

import wsejax
from wsejax import LayoutError, MemcpyError, SdkRuntime, save_program
from wsejax.cli import main
from wsejax.csl import compile_csl
from wsejax.memcpy import MemcpyDataType, MemcpyOrder

ROOT = pathlib.Path(__file__).resolve().parents[1]
TWO_PES = ROOT / "examples" / "csl" / "gemv-two-pes"
KW = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR, data_type=MemcpyDataType.MEMCPY_32BIT,
          nonblock=False)
M, N = 4, 6


def wsejax_cmd(args, cwd, env=None, timeout=300):
    """Run `python -m wsejax.cli ARGS` in a fresh process on this checkout."""
    full = {k: v for k, v in os.environ.items() if k != "WSEJAX_DEBUG"}
    full.update(PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "wsejax.cli", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(r, *fragments):
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for f in fragments:
        assert f in r.stderr, r.stderr


@pytest.fixture(scope="module")
def gemv_program():
    return compile_gemv(1, 1, M, N)


@pytest.fixture
def out_dir(tmp_path, gemv_program):
    return save_program(gemv_program, tmp_path / "out")


@pytest.fixture
def runner(gemv_program):
    r = SdkRuntime(gemv_program)
    r.load()
    r.run()
    return r


def run_gemv(runner, A, x, b):
    ids = {s: runner.get_id(s) for s in ("A", "x", "b", "y")}
    runner.memcpy_h2d(ids["A"], A, 0, 0, 1, 1, M * N, **KW)
    runner.memcpy_h2d(ids["x"], x, 0, 0, 1, 1, N, **KW)
    runner.memcpy_h2d(ids["b"], b, 0, 0, 1, 1, M, **KW)
    runner.launch("init_and_compute", nonblock=False)
    y = np.zeros(M, np.float32)
    runner.memcpy_d2h(y, ids["y"], 0, 0, 1, 1, M, **KW)
    return y


def host_data():
    A = np.arange(M * N, dtype=np.float32) / 8
    x = np.linspace(-1, 1, N, dtype=np.float32)
    b = np.full(M, 2.5, np.float32)
    return A, x, b, A.reshape(M, N) @ x + b


# -- 1. the last line of defence -----------------------------------------------------------------

def boom(*args, **kwargs):
    return 1 // 0


def test_cslc_internal_error_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("WSEJAX_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(TWO_PES, "p")
    monkeypatch.setattr(wsejax, "save_program", boom)
    assert main(["cslc", "p/layout.csl", "--params=M:6,N:8", "--memcpy"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wsejax cslc: internal error: ZeroDivisionError: integer division or "
                          "modulo by zero (this is a bug in wsejax, please report it; rerun with "
                          "--debug or WSEJAX_DEBUG=1 for the traceback)")
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("how", ["flag", "env"])
def test_cslc_internal_error_traceback_on_request(monkeypatch, tmp_path, capsys, how):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(TWO_PES, "p")
    monkeypatch.setattr(wsejax, "save_program", boom)
    argv = ["cslc", "p/layout.csl", "--params=M:6,N:8", "--memcpy"]
    if how == "flag":
        monkeypatch.delenv("WSEJAX_DEBUG", raising=False)
        argv.append("--debug")
    else:
        monkeypatch.setenv("WSEJAX_DEBUG", "1")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and "internal error" not in err


def write_script(tmp_path, source) -> str:
    (tmp_path / "script.py").write_text(textwrap.dedent(source))
    return str(tmp_path / "script.py")


INTO_ENGINE = """\
    import sys
    from cerebras.sdk.runtime.sdkruntimepybind import SdkRuntime
    runner = SdkRuntime(sys.argv[1])
    runner.load()
"""


def test_python_internal_error_is_one_line_naming_the_call(monkeypatch, tmp_path, out_dir,
                                                           capsys):
    monkeypatch.delenv("WSEJAX_DEBUG", raising=False)
    monkeypatch.setattr(wsejax.runtime, "Engine", boom)
    script = write_script(tmp_path, INTO_ENGINE)
    assert main(["python", script, str(out_dir)]) == 1
    err = capsys.readouterr().err
    assert err == ("wsejax python: internal error: ZeroDivisionError: integer division or modulo "
                   "by zero (called from script.py:4; this is a bug in wsejax, please report it; "
                   "rerun with --debug or WSEJAX_DEBUG=1 for the traceback)\n")
    # --debug shows where it happened
    assert main(["python", "--debug", script, str(out_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "runtime.py" in err and "ZeroDivisionError" in err


def test_python_script_own_exception_keeps_its_traceback(tmp_path, capsys):
    script = write_script(tmp_path, "import numpy as np\nnp.zeros(3).reshape(2, 2)\n")
    assert main(["python", script]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and "ValueError" in err and "internal error" not in err


def test_internal_error_in_a_fresh_process(tmp_path):
    shutil.copytree(TWO_PES, tmp_path / "p")
    code = ("import sys, wsejax\n"
            "wsejax.save_program = lambda *a, **k: {}['no such key']\n"
            "from wsejax.cli import main\n"
            "sys.exit(main(['cslc', 'p/layout.csl', '--params=M:6,N:8', '--memcpy']))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("WSEJAX_DEBUG", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    assert_one_line_error(r, "wsejax cslc: internal error: KeyError: 'no such key'")


# -- 2, 3. damaged, missing or absent compile output directories ----------------------------------

def damage_no_out_json(d):
    (d / "out.json").unlink()


def damage_garbled_out_json(d):
    (d / "out.json").write_text('{"params": {"M": "4"')


def damage_foreign_out_json(d):
    (d / "out.json").write_text(json.dumps({"params": {}, "colors": {}}))


def damage_truncated_program(d):
    p = d / "bin" / "wsejax.pickle"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def damage_empty_program(d):
    (d / "bin" / "wsejax.pickle").write_bytes(b"")


def damage_other_pickle(d):
    (d / "bin" / "wsejax.pickle").write_bytes(pickle.dumps([1, 2, 3]))


def damage_other_compile(d):
    meta = json.loads((d / "out.json").read_text())
    meta["wsejax"]["rectangle"] = [5, 7]
    (d / "out.json").write_text(json.dumps(meta))


def damage_sdk_output(d):
    (d / "bin" / "wsejax.pickle").unlink()
    (d / "bin" / "out_0_0.elf").write_bytes(b"\x7fELF")


def damage_no_bin(d):
    shutil.rmtree(d / "bin")


@pytest.mark.parametrize("damage, message", [
    (damage_no_out_json, "is not a usable wsejax compile output directory: out.json is missing"),
    (damage_garbled_out_json, "out.json is not readable JSON"),
    (damage_foreign_out_json, 'out.json has no "wsejax" section'),
    (damage_truncated_program, "bin/wsejax.pickle is truncated or garbled"),
    (damage_empty_program, "bin/wsejax.pickle is truncated or garbled (EOFError"),
    (damage_other_pickle, "bin/wsejax.pickle does not hold a wsejax program"),
    (damage_other_compile, "out.json describes a [5, 7] rectangle but bin/wsejax.pickle a 1x1"),
    (damage_sdk_output, "holds the output of the Cerebras SDK's cslc (ELF files)"),
    (damage_no_bin, "is not a wsejax compile output directory (no "),
])
def test_damaged_output_directory(out_dir, damage, message):
    damage(out_dir)
    with pytest.raises(MemcpyError) as e:
        SdkRuntime(str(out_dir))
    assert str(e.value).startswith(f"SdkRuntime: '{out_dir}' ")
    assert message in str(e.value)


def test_not_a_directory_and_no_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(MemcpyError, match="is not a wsejax compile output directory: it is a file"):
        SdkRuntime(str(tmp_path / "file"))
    with pytest.raises(MemcpyError, match="'nowhere' is not a wsejax compile output directory: "
                                          "no such directory"):
        SdkRuntime("nowhere")
    with pytest.raises(MemcpyError, match=r"SdkRuntime: no compile output directory given "
                                          r"\(bindir is None\).*--name DIR"):
        SdkRuntime(None)
    with pytest.raises(MemcpyError, match="bindir must be a compile output directory .* got int"):
        SdkRuntime(3)


RUN_BY_NAME = """\
    import argparse
    from cerebras.sdk.runtime.sdkruntimepybind import SdkRuntime
    parser = argparse.ArgumentParser()
    parser.add_argument("--name")
    SdkRuntime(parser.parse_args().name)
"""

READS_OUT_JSON = """\
    import argparse, json
    parser = argparse.ArgumentParser()
    parser.add_argument("--name")
    args = parser.parse_args()
    with open(f"{args.name}/out.json") as f:
        json.load(f)
"""


def test_python_run_without_name_or_with_damage(tmp_path, out_dir):
    write_script(tmp_path, RUN_BY_NAME)
    r = wsejax_cmd(["python", "script.py"], tmp_path)
    assert_one_line_error(r, "wsejax python: error: SdkRuntime: no compile output directory")
    damage_truncated_program(out_dir)
    r = wsejax_cmd(["python", "script.py", "--name", "out"], tmp_path)
    assert_one_line_error(r, "wsejax python: error: SdkRuntime: 'out' is not a usable",
                          "truncated or garbled")


def test_python_script_that_reads_out_json_first(tmp_path, capsys):
    script = write_script(tmp_path, READS_OUT_JSON)
    assert main(["python", script]) == 1
    err = capsys.readouterr().err
    assert err == (f"wsejax python: error: {script} cannot open 'None/out.json': No such file or "
                   "directory (the script expects a compile output directory: `wsejax cslc ... "
                   "-o DIR`, then `--name DIR`)\n")


# -- 4. memcpy enums and read_symbol dtypes -------------------------------------------------------

@pytest.mark.parametrize("bad", [7, "ROW_MAJOR", 1.0, True, None, MemcpyDataType.MEMCPY_16BIT])
def test_invalid_order(runner, bad):
    a = np.zeros(M * N, np.float32)
    with pytest.raises(MemcpyError) as e:
        runner.memcpy_h2d(runner.get_id("A"), a, 0, 0, 1, 1, M * N,
                          **dict(KW, order=bad))
    assert str(e.value) == ("memcpy_h2d: order must be one of MemcpyOrder.ROW_MAJOR, "
                            f"MemcpyOrder.COL_MAJOR, got {bad!r}")


@pytest.mark.parametrize("bad", [2, "MEMCPY_32BIT", 32, False])
def test_invalid_data_type(runner, bad):
    y = np.zeros(M, np.float32)
    with pytest.raises(MemcpyError) as e:
        runner.memcpy_d2h(y, runner.get_id("y"), 0, 0, 1, 1, M, **dict(KW, data_type=bad))
    assert str(e.value) == ("memcpy_d2h: data_type must be one of MemcpyDataType.MEMCPY_32BIT, "
                            f"MemcpyDataType.MEMCPY_16BIT, got {bad!r}")


def test_enum_values_as_integers_still_work(runner):
    A, x, b, want = host_data()
    ids = {s: runner.get_id(s) for s in ("A", "x", "b", "y")}
    runner.memcpy_h2d(ids["A"], A, 0, 0, 1, 1, M * N, streaming=False, order=0, data_type=0)
    runner.memcpy_h2d(ids["x"], x, 0, 0, 1, 1, N, streaming=False, order=1, data_type=0)
    y = np.zeros(N, np.float32)
    runner.memcpy_d2h(y, ids["x"], 0, 0, 1, 1, N, streaming=False, order=np.int64(0),
                      data_type=0)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("bad", ["foo", object, "U4", "f4,f4", 3.5])
def test_invalid_read_symbol_dtype(runner, bad):
    with pytest.raises(MemcpyError) as e:
        runner.read_symbol(0, 0, "A", bad)
    assert str(e.value).startswith("read_symbol: dtype must be a numeric numpy dtype (e.g. "
                                   "'uint8', np.float32, np.uint16), got ")


# -- 5. WSEJAX_DEVICES ----------------------------------------------------------------------------

def test_more_devices_than_exist_warns_and_uses_them_all(monkeypatch, gemv_program):
    have = len(jax.devices())
    monkeypatch.setenv("WSEJAX_DEVICES", str(have + 63))
    with pytest.warns(RuntimeWarning, match=rf"WSEJAX_DEVICES={have + 63}, but only {have} "
                                            rf"\w+ device\(s\) are visible; using {have}"):
        r = SdkRuntime(gemv_program)
    r.load()
    r.run()
    A, x, b, want = host_data()
    np.testing.assert_allclose(run_gemv(r, A, x, b), want, rtol=1e-6)
    r.stop()


def test_explicit_devices_beyond_those_visible_is_an_error(gemv_program):
    have = len(jax.devices())
    with pytest.raises(MemcpyError, match=rf"SdkRuntime: devices={have + 1}, but only {have} "):
        SdkRuntime(gemv_program, devices=have + 1)
    with pytest.raises(MemcpyError, match="devices must be a positive integer, got 'two'"):
        SdkRuntime(gemv_program, devices="two")


@pytest.mark.parametrize("value", ["abc", "2.5", "0", "-3"])
def test_devices_env_not_a_positive_integer(monkeypatch, tmp_path, out_dir, capsys, value):
    monkeypatch.setenv("WSEJAX_DEVICES", value)
    monkeypatch.delenv("WSEJAX_DEBUG", raising=False)
    script = write_script(tmp_path, INTO_ENGINE)
    assert main(["python", script, str(out_dir)]) == 1
    assert capsys.readouterr().err == (
        "wsejax python: error: SdkRuntime: environment variable WSEJAX_DEVICES must be an "
        f"integer >= 1, got {value!r}\n")


# -- 6. host arrays in non-native byte order ------------------------------------------------------

def test_big_endian_host_arrays_round_trip(runner):
    A, x, b, want = host_data()
    y = run_gemv(runner, A.astype(">f4"), x.astype(">f4"), b.astype(">f4"))
    np.testing.assert_allclose(y, want, rtol=1e-6)
    # the values arrived, not byte-swapped bits
    got = np.zeros(M * N, np.float32)
    runner.memcpy_d2h(got, runner.get_id("A"), 0, 0, 1, 1, M * N, **KW)
    np.testing.assert_array_equal(got, A)
    np.testing.assert_array_equal(runner.read_symbol(0, 0, "A", ">f4")[: M * N], A)
    assert runner.read_symbol(0, 0, "A", ">f4").dtype == np.dtype(">f4")


def test_big_endian_destination_is_refused(runner):
    y = np.zeros(M, ">f4")
    with pytest.raises(MemcpyError) as e:
        runner.memcpy_d2h(y, runner.get_id("y"), 0, 0, 1, 1, M, **KW)
    assert str(e.value) == ("memcpy_d2h: the destination array is >f4 (byte order not the "
                            "host's); it is written in place with raw native words: pass an "
                            "array of float32")


# -- 7. fabrics larger than the wafer, or too small for the layout --------------------------------

LAYOUT = """\
param width: u16;
layout {
  @set_rectangle(width, 1);
  for (@range(u16, width)) |x| {
    @set_tile_code(x, 0, "pe.csl", .{});
  }
}
"""


@pytest.fixture
def broken_tiles(tmp_path):
    """A layout whose tiles' program does not parse: any error but the fabric's shows that a
    tile was evaluated."""
    (tmp_path / "layout.csl").write_text(LAYOUT)
    (tmp_path / "pe.csl").write_text("this is not CSL;\n")
    return tmp_path


@pytest.mark.parametrize("arch, dims, limit", [
    ("wse2", (758, 10), "757x996"), ("wse2", (20, 997), "757x996"),
    ("wse3", (763, 10), "762x1172"), ("wse3", (20, 1173), "762x1172"),
])
def test_fabric_larger_than_the_wafer(broken_tiles, arch, dims, limit):
    with pytest.raises(LayoutError) as e:
        compile_csl(broken_tiles / "layout.csl", params={"width": 2}, arch=arch,
                    fabric_dims=dims, memcpy=True)
    assert str(e.value) == (f"--fabric-dims={dims[0]},{dims[1]} is larger than the {arch} "
                            f"wafer's fabric of {limit} PEs")


def test_rectangle_too_big_for_the_wafer_is_refused_at_set_rectangle(broken_tiles):
    with pytest.raises(LayoutError) as e:
        compile_csl(broken_tiles / "layout.csl", params={"width": 751}, memcpy=True)
    assert str(e.value) == (f"{broken_tiles / 'layout.csl'}:3:3: @set_rectangle(751, 1): a 751x1 "
                            "rectangle at offsets (4, 1) with memcpy needs a 758x3 fabric, larger "
                            "than the wse2 wafer's fabric of 757x996 PEs")


def test_fabric_too_small_is_refused_before_any_tile(broken_tiles):
    with pytest.raises(LayoutError) as e:
        compile_csl(broken_tiles / "layout.csl", params={"width": 3}, fabric_dims=(9, 3),
                    memcpy=True)
    assert str(e.value) == (f"{broken_tiles / 'layout.csl'}:3:3: @set_rectangle(3, 1): "
                            "--fabric-dims=9,3 is too small for a 3x1 rectangle at offsets "
                            "(4, 1) with memcpy: it needs at least 10,3")


def test_the_wafer_sized_fabric_is_accepted(tmp_path):
    shutil.copytree(TWO_PES, tmp_path / "p")
    p = compile_csl(tmp_path / "p" / "layout.csl", params={"M": 6, "N": 8},
                    fabric_dims=(757, 996), memcpy=True)
    assert p.fabric_dims == (757, 996)


def test_cslc_refuses_a_fabric_beyond_the_wafer(broken_tiles):
    r = wsejax_cmd(["cslc", "layout.csl", "--params=width:2", "--fabric-dims=800,3",
                    "--memcpy"], broken_tiles)
    assert_one_line_error(r, "wsejax cslc: error: --fabric-dims=800,3 is larger than the wse2 "
                             "wafer's fabric of 757x996 PEs")


# -- 8. a program compiled without --memcpy -------------------------------------------------------

@pytest.fixture(scope="module")
def no_memcpy(tmp_path_factory):
    d = tmp_path_factory.mktemp("nomemcpy") / "p"
    shutil.copytree(TWO_PES, d)
    r = wsejax_cmd(["cslc", "layout.csl", "--fabric-dims=9,3", "--fabric-offsets=4,1",
                    "--params=M:6,N:8", "-o", "out"], d)
    assert r.returncode == 0, r.stderr
    return d


@pytest.mark.parametrize("call", ["h2d", "d2h", "launch", "call"])
def test_no_memcpy_program_refuses_host_commands(no_memcpy, call):
    runner = SdkRuntime(str(no_memcpy / "out"))
    assert not runner.program.memcpy
    runner.load()
    runner.run()
    a = np.zeros(6 * 4, np.float32)
    with pytest.raises(MemcpyError) as e:
        if call == "h2d":
            runner.memcpy_h2d(runner.get_id("A"), a, 0, 0, 1, 1, 24, **KW)
        elif call == "d2h":
            runner.memcpy_d2h(a, runner.get_id("A"), 0, 0, 1, 1, 24, **KW)
        elif call == "launch":
            runner.launch("compute", nonblock=False)
        else:
            runner.call("compute", [], nonblock=False)
    what = {"h2d": "memcpy_h2d", "d2h": "memcpy_d2h", "launch": "launch", "call": "call"}[call]
    assert str(e.value) == (f"{what}: the program was compiled without --memcpy, so the host "
                            "cannot reach the device (no memcpy, no launch); compile it with "
                            "`wsejax cslc ... --memcpy`")


def test_no_memcpy_host_script_exits_1(no_memcpy):
    r = wsejax_cmd(["python", "run.py", "--name", "out"], no_memcpy)
    assert_one_line_error(r, "wsejax python: error: memcpy_h2d: the program was compiled "
                             "without --memcpy")


def test_memcpy_programs_say_so(out_dir):
    assert SdkRuntime(str(out_dir)).program.memcpy
