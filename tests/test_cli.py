"""The `wsejax` command (`wsejax.cli`) and the SDK shims it serves (`wsejax.compat`).

`wsejax.csl.compile_csl` is replaced by a fake that records its arguments, so these tests check
the command line, not the CSL front end.
"""

import importlib.util
import json
import pathlib
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
from gemv import compile_gemv

from wsejax import CslError, LayoutError, MemcpyError, save_program
from wsejax.cli import main, parse_cslc
from wsejax.compat import cerebras_shims, sdk_utils
from wsejax.compat import sdkruntimepybind as pybind

CONSOLE_SCRIPT = pathlib.Path(sys.executable).with_name("wsejax")

DEFAULTS = dict(params={}, colors={}, arch="wse2", fabric_dims=None, fabric_offsets=None,
                channels=1, memcpy=False, import_paths=(), width_west_buf=0, width_east_buf=0,
                fp16_format="f16")


@pytest.fixture(scope="module")
def gemv_program():
    return compile_gemv(1, 1, 4, 6)


@pytest.fixture
def fake_csl(monkeypatch, gemv_program, tmp_path):
    """A stand-in `wsejax.csl` module; `.calls` records (top, kwargs), `.error` is raised."""
    fake = types.ModuleType("wsejax.csl")
    fake.calls = []
    fake.error = None

    def compile_csl(top, **kwargs):
        assert isinstance(kwargs.pop("timings"), dict)      # filled with the phases' times
        fake.calls.append((top, kwargs))
        if fake.error is not None:
            raise fake.error
        return gemv_program

    fake.compile_csl = compile_csl
    monkeypatch.setitem(sys.modules, "wsejax.csl", fake)
    monkeypatch.delenv("CSL_IMPORT_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "layout.csl").write_text("// layout\n")
    return fake


def cslc(*args):
    return main(["cslc", "layout.csl", *args])


# -- cslc: flags ---------------------------------------------------------------------------------

def test_cslc_defaults_write_out(fake_csl, capsys):
    assert cslc() == 0
    assert fake_csl.calls == [("layout.csl", DEFAULTS)]
    meta = json.loads(pathlib.Path("out/out.json").read_text())
    assert meta["params"] == {} and meta["colors"] == {}
    assert pathlib.Path("out/bin/wsejax.pickle").is_file()
    assert capsys.readouterr().out == ""


EVERY_FLAG = dict(params={"M": 4, "N": 6}, colors={"c": 3}, arch="wse3", fabric_dims=(10, 5),
                  fabric_offsets=(4, 1), channels=2, memcpy=True, import_paths=("lib",),
                  width_west_buf=1, width_east_buf=2, fp16_format="bf16")


@pytest.mark.parametrize("form", ["equals", "space"])
def test_cslc_every_flag_in_both_forms(fake_csl, form):
    flags = [("--arch", "wse3"), ("--fabric-dims", "10,5"), ("--fabric-offsets", "4,1"),
             ("--params", "M:4,N:6"), ("--colors", "c:3"), ("--channels", "2"),
             ("--import-path", "lib"), ("--width-west-buf", "1"), ("--width-east-buf", "2"),
             ("--fp16-format", "bf16"), ("-o", "build")]
    argv = [a for f, v in flags for a in ([f"{f}={v}"] if form == "equals" else [f, v])]
    assert cslc(*argv, "--memcpy") == 0
    assert fake_csl.calls == [("layout.csl", EVERY_FLAG)]
    assert pathlib.Path("build/out.json").is_file()


@pytest.mark.parametrize("flag", [["-o", "d"], ["-o=d"], ["-od"]])
def test_cslc_output_dir_forms(fake_csl, flag):
    assert cslc(*flag) == 0
    assert pathlib.Path("d/out.json").is_file() and not pathlib.Path("out").exists()


def test_cslc_flags_may_precede_the_layout_file(fake_csl):
    assert main(["cslc", "--memcpy", "--arch", "wse3", "layout.csl"]) == 0
    assert fake_csl.calls[0][1]["memcpy"] and fake_csl.calls[0][1]["arch"] == "wse3"


def test_cslc_params_and_colors_accumulate_into_out_json(fake_csl):
    assert cslc("--params=width:1,height:1", "--params", "M:4", "--params=N:6",
                "--colors=in:1,out:2", "--colors", "MEMCPY:30") == 0
    kwargs = fake_csl.calls[0][1]
    assert kwargs["params"] == {"width": 1, "height": 1, "M": 4, "N": 6}
    assert kwargs["colors"] == {"in": 1, "out": 2, "MEMCPY": 30}
    meta = json.loads(pathlib.Path("out/out.json").read_text())
    assert meta["params"] == {"width": "1", "height": "1", "M": "4", "N": "6"}
    assert meta["colors"] == {"in": "1", "out": "2", "MEMCPY": "30"}


def test_cslc_import_paths_then_environment(fake_csl, monkeypatch):
    monkeypatch.setenv("CSL_IMPORT_PATH", "/env/a::/env/b")
    assert cslc("--import-path", "x", "--import-path=y") == 0
    assert fake_csl.calls[0][1]["import_paths"] == ("x", "y", "/env/a", "/env/b")


def test_cslc_ignored_flags_warn_once_each(fake_csl, capsys):
    ignored = ["--output-json", "--out-routes", "--max-inlined-iterations",
               "--comptime-func-depth-limit", "--max-parallelism", "-g0",
               "--warnings-as-errors", "--verbose", "--link-section-start-address-bytes"]
    assert cslc("--output-json", "--output-json=o.json", "--out-routes",
                "--max-inlined-iterations", "1000000", "--comptime-func-depth-limit=8",
                "--max-parallelism", "4", "-g0", "--warnings-as-errors", "--verbose", "--verbose",
                "--link-section-start-address-bytes=.sec:0x100") == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"wsejax cslc: warning: {f} is accepted and ignored" for f in ignored]
    assert fake_csl.calls[0][1] == DEFAULTS


@pytest.mark.parametrize("argv, flag", [
    (["--fabric-dims=8"], "--fabric-dims"),
    (["--fabric-dims", "0,3"], "--fabric-dims"),
    (["--fabric-offsets=a,b"], "--fabric-offsets"),
    (["--params", "M"], "--params"),
    (["--params=M:-1"], "--params"),
    (["--params=M:4,"], "--params"),
    (["--params=M:4", "--params", "M:5"], "--params"),
    (["--colors=c:x"], "--colors"),
    (["--channels", "x"], "--channels"),
    (["--channels=0"], "--channels"),
    (["--channels=17"], "--channels"),
    (["--channels"], "--channels"),
    (["--arch=wse4"], "--arch"),
    (["--fp16-format=f32"], "--fp16-format"),
    (["--width-west-buf=-1"], "--width-west-buf"),
    (["--max-parallelism", "many"], "--max-parallelism"),
    (["-o"], "-o"),
    (["-o", "--memcpy"], "-o"),
    (["--memcpy=yes"], "--memcpy"),
    (["--bogus"], "--bogus"),
])
def test_cslc_malformed_flags_exit_2_naming_the_flag(fake_csl, capsys, argv, flag):
    assert cslc(*argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("wsejax cslc: error: ")
    assert flag in err
    assert fake_csl.calls == []


@pytest.mark.parametrize("argv", [["cslc"], ["cslc", "a.csl", "b.csl"]])
def test_cslc_needs_exactly_one_layout_file(fake_csl, capsys, argv):
    assert main(argv) == 2
    assert "layout file" in capsys.readouterr().err


def test_parse_cslc_reads_environment_given():
    opts = parse_cslc(["t.csl", "--import-path=a"], env={"CSL_IMPORT_PATH": "b:c"})
    assert opts.top == "t.csl" and opts.import_paths == ["a", "b", "c"]


def test_cslc_help(capsys):
    assert main(["cslc", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: wsejax cslc TOP.csl") and "--fabric-dims" in out


# -- cslc: errors --------------------------------------------------------------------------------

def test_cslc_csl_error_prints_message_without_traceback(fake_csl, capsys):
    fake_csl.error = CslError("unknown name 'foo'", "layout.csl", 3, 5, "    foo = 1;")
    assert cslc() == 1
    err = capsys.readouterr().err
    assert err == ("wsejax cslc: error: layout.csl:3:5: error: unknown name 'foo'\n"
                   "    foo = 1;\n    ^\n")
    assert not pathlib.Path("out").exists()


def test_cslc_layout_error_exits_1(fake_csl, capsys):
    fake_csl.error = LayoutError("fabric too small")
    assert cslc("--fabric-dims=3,3") == 1
    err = capsys.readouterr().err
    assert err == "wsejax cslc: error: fabric too small\n"


@pytest.mark.parametrize("argv", [["cslc", "layout.csl", "--debug"],
                                  ["--debug", "cslc", "layout.csl"]])
def test_cslc_debug_shows_the_traceback(fake_csl, capsys, argv):
    fake_csl.error = LayoutError("fabric too small")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "LayoutError: fabric too small" in err


def test_cslc_missing_layout_file_exits_1(fake_csl, capsys):
    assert main(["cslc", "nope.csl"]) == 1
    err = capsys.readouterr().err
    assert err == "wsejax cslc: error: nope.csl: No such file or directory\n"
    assert fake_csl.calls == []


def test_cslc_without_the_front_end_exits_1(fake_csl, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wsejax.csl", types.ModuleType("wsejax.csl"))
    assert cslc() == 1
    assert "the CSL front end (wsejax.csl) cannot be loaded" in capsys.readouterr().err


# -- wsejax --------------------------------------------------------------------------------------

def test_bare_command_lists_subcommands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "cslc" in out and "python" in out


def test_version_and_unknown_command(capsys):
    import wsejax

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"wsejax {wsejax.__version__}\n"
    assert main(["compile"]) == 2
    assert "unknown command 'compile'" in capsys.readouterr().err


def test_python_m_wsejax_cli():
    r = subprocess.run([sys.executable, "-m", "wsejax.cli", "--version"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("wsejax ")


# -- python --------------------------------------------------------------------------------------

GEMV_HOST = """\
import argparse

import numpy as np
from cerebras.sdk.runtime.sdkruntimepybind import SdkRuntime, MemcpyDataType, MemcpyOrder
from cerebras.sdk.sdk_utils import memcpy_view

parser = argparse.ArgumentParser()
parser.add_argument("--name", help="the compile output directory")
args = parser.parse_args()

M, N = 4, 6
A = np.arange(M * N, dtype=np.float32)
x = np.full(N, 1.0, np.float32)
b = np.full(M, 2.0, np.float32)
y_expected = A.reshape(M, N) @ x + b

runner = SdkRuntime(args.name, cmaddr=None)
A_id, x_id, b_id, y_id = (runner.get_id(s) for s in ("A", "x", "b", "y"))
runner.load()
runner.run()
kw = dict(streaming=False, order=MemcpyOrder.ROW_MAJOR,
          data_type=MemcpyDataType.MEMCPY_32BIT, nonblock=False)
runner.memcpy_h2d(A_id, A, 0, 0, 1, 1, M * N, **kw)
runner.memcpy_h2d(x_id, x, 0, 0, 1, 1, N, **kw)
runner.memcpy_h2d(b_id, b, 0, 0, 1, 1, M, **kw)
runner.launch("init_and_compute", nonblock=False)
y = np.zeros(M, np.uint32)
runner.memcpy_d2h(y, y_id, 0, 0, 1, 1, M, **kw)
runner.stop()

print("y =", memcpy_view(y, np.dtype(np.float32)))
np.testing.assert_allclose(memcpy_view(y, np.dtype(np.float32)), y_expected, atol=0.01, rtol=0)
print("SUCCESS!")
"""


@pytest.fixture(scope="module")
def gemv_out(tmp_path_factory, gemv_program):
    root = tmp_path_factory.mktemp("host")
    save_program(gemv_program, root / "out")
    (root / "run.py").write_text(GEMV_HOST)
    return root


def assert_no_cerebras():
    assert not [k for k in sys.modules if k == "cerebras" or k.startswith("cerebras.")]
    assert importlib.util.find_spec("cerebras") is None


def test_python_runs_the_gemv_host_script(gemv_out, capsys):
    argv, path = list(sys.argv), list(sys.path)
    assert main(["python", str(gemv_out / "run.py"), "--name", str(gemv_out / "out")]) == 0
    out = capsys.readouterr().out
    assert "SUCCESS!" in out
    assert sys.argv == argv and sys.path == path
    assert_no_cerebras()


def test_console_script_runs_the_gemv_host_script(gemv_out):
    cmd = ([str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists()
           else [sys.executable, "-m", "wsejax.cli"])
    r = subprocess.run([*cmd, "python", "run.py", "--name", "out"], cwd=gemv_out,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith("SUCCESS!")


def run_script(tmp_path, capsys, source, options=(), args=()):
    """Run `source` with `wsejax python OPTIONS script.py ARGS`: (status, stdout, stderr)."""
    (tmp_path / "script.py").write_text(textwrap.dedent(source))
    status = main(["python", *options, str(tmp_path / "script.py"), *args])
    out, err = capsys.readouterr()
    assert_no_cerebras()
    return status, out, err


def test_python_sets_argv_path_and_main(tmp_path, capsys):
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    source = """
        import sys
        import helper
        import cerebras.sdk.runtime.sdkruntimepybind as pybind
        from cerebras.sdk.runtime import sdkruntimepybind
        assert pybind is sdkruntimepybind and pybind.SdkRuntime.__module__ == "wsejax.runtime"
        print(__name__, sys.argv[1:], sys.path[0], helper.VALUE)
    """
    status, out, _ = run_script(tmp_path, capsys, source, args=["a b"])
    assert status == 0
    assert out == f"__main__ ['a b'] {tmp_path} 42\n"


def test_python_wsejax_error_exits_1_without_traceback(tmp_path, capsys):
    source = """
        from cerebras.sdk.runtime.sdkruntimepybind import SdkRuntime
        SdkRuntime("missing_dir")
    """
    status, _, err = run_script(tmp_path, capsys, source)
    assert status == 1
    assert err.startswith("wsejax python: error: SdkRuntime: 'missing_dir' is not a wsejax")
    assert "Traceback" not in err


def test_python_debug_shows_the_traceback(tmp_path, capsys):
    source = """
        from cerebras.sdk.runtime.sdkruntimepybind import SdkRuntime
        SdkRuntime("missing_dir")
    """
    status, _, err = run_script(tmp_path, capsys, source, options=["--debug"])
    assert status == 1
    assert "Traceback" in err and "MemcpyError: SdkRuntime: 'missing_dir'" in err


@pytest.mark.parametrize("call", [
    'SdkRuntime("out", cmaddr="10.0.0.1:9000")',
    'get_platform("10.0.0.1:9000")',
    'get_system("10.0.0.1:9000")',
])
def test_python_real_system_is_refused(tmp_path, capsys, call):
    source = f"""
        from cerebras.sdk.runtime.sdkruntimepybind import SdkRuntime, get_platform, get_system
        {call}
    """
    status, _, err = run_script(tmp_path, capsys, source)
    assert status == 1
    assert "cmaddr='10.0.0.1:9000' names a real CS system" in err and "Traceback" not in err


@pytest.mark.parametrize("code, status, err", [("None", 0, ""), ("3", 3, ""),
                                               ("'bye'", 1, "bye\n")])
def test_python_system_exit_passes_through(tmp_path, capsys, code, status, err):
    assert run_script(tmp_path, capsys, f"import sys; sys.exit({code})")[::2] == (status, err)


def test_python_other_exceptions_show_the_script_traceback(tmp_path, capsys):
    source = """
        def f():
            return 1 / 0
        f()
    """
    status, _, err = run_script(tmp_path, capsys, source)
    assert status == 1
    assert err.startswith("Traceback") and "ZeroDivisionError" in err
    assert "script.py" in err and "runpy" not in err and "cli.py" not in err


def test_python_unserved_sdk_module_says_so(tmp_path, capsys):
    status, _, err = run_script(tmp_path, capsys, "import cerebras.sdk.pe_programs")
    assert status == 1
    assert "No module named 'cerebras.sdk.pe_programs': wsejax emulates only" in err


@pytest.mark.parametrize("argv, message", [
    (["python"], "expected a script"),
    (["python", "no_such_script.py"], "cannot open script 'no_such_script.py'"),
    (["python", "--bogus", "x.py"], "unknown option --bogus"),
])
def test_python_command_line_errors_exit_2(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_shims_restore_what_was_there(monkeypatch):
    before = types.ModuleType("cerebras")
    monkeypatch.setitem(sys.modules, "cerebras", before)
    with cerebras_shims():
        import cerebras.sdk.sdk_utils

        assert cerebras.sdk.sdk_utils is sdk_utils
        assert sys.modules["cerebras"] is not before
    assert sys.modules["cerebras"] is before
    assert "cerebras.sdk" not in sys.modules


# -- compat: sdkruntimepybind --------------------------------------------------------------------

def test_platform_classes(gemv_out):
    platform = pybind.get_platform(None, pybind.SimfabConfig(num_threads=4), pybind.SdkTarget.WSE2)
    assert platform.is_simulation() and not platform.is_system()
    assert platform.config.num_threads == 4 and platform.target is pybind.SdkTarget.WSE2
    assert pybind.get_simulator().target is pybind.SdkTarget.WSE3
    assert pybind.SimfabConfig() == pybind.SimfabConfig(16, False, False, None)
    artifacts = pybind.SdkCompileArtifacts(gemv_out / "out")
    assert artifacts.artifacts_path == str(gemv_out / "out")
    runner = pybind.SdkRuntime(artifacts, platform, memcpy_required=False)
    assert runner.get_id("init_and_compute") >= 0
    with pytest.raises(MemcpyError, match="only emulates"):
        pybind.get_platform("1.2.3.4:9000")
    with pytest.raises(MemcpyError, match="only emulates"):
        pybind.get_system("1.2.3.4:9000")


# -- compat: sdk_utils ---------------------------------------------------------------------------

def test_memcpy_view_low_bits():
    arr = np.array([0x12343C00, 0xABCDC000], np.uint32)
    np.testing.assert_array_equal(sdk_utils.memcpy_view(arr, np.float16),
                                  np.array([1.0, -2.0], np.float16))
    np.testing.assert_array_equal(sdk_utils.memcpy_view(arr, np.dtype(np.uint8)),
                                  np.array([0x00, 0x00], np.uint8))
    np.testing.assert_array_equal(sdk_utils.memcpy_view(arr, np.int16),
                                  np.array([0x3C00, -0x4000], np.int16))
    f32 = sdk_utils.memcpy_view(np.array([0x3F800000], np.uint32), np.float32)
    assert f32.dtype == np.float32 and f32[0] == 1.0


def test_memcpy_view_is_a_view():
    arr = np.full(3, 0xFFFF0000, np.uint32)
    sdk_utils.memcpy_view(arr, np.uint16)[:] = np.array([1, 2, 3], np.uint16)
    np.testing.assert_array_equal(arr, np.array([0xFFFF0001, 0xFFFF0002, 0xFFFF0003], np.uint32))


def test_memcpy_view_rejects_other_widths():
    with pytest.raises(MemcpyError, match="32-bit"):
        sdk_utils.memcpy_view(np.zeros(2, np.float16), np.float16)
    with pytest.raises(MemcpyError, match="8, 16 or 32"):
        sdk_utils.memcpy_view(np.zeros(2, np.uint32), np.float64)


def test_input_array_to_u32():
    arr = np.array([1.0, -2.0, 0.5, 65504.0], np.float16)        # bits 3C00 C000 3800 7BFF
    np.testing.assert_array_equal(sdk_utils.input_array_to_u32(arr, None, 2),
                                  np.array([0x3C00, 0xC000, 0x3800, 0x7BFF], np.uint32))
    np.testing.assert_array_equal(sdk_utils.input_array_to_u32(arr, 0, 2),
                                  np.array([0x3C00, 0x1C000, 0x3800, 0x17BFF], np.uint32))
    grid = np.arange(6, dtype=np.int16).reshape(2, 3)
    out = sdk_utils.input_array_to_u32(grid, 7, 3)
    assert out.dtype == np.uint32 and out.shape == (2, 3)
    np.testing.assert_array_equal(out, np.array([[0x00000, 0x10001, 0x20002],
                                                 [0x00003, 0x10004, 0x20005]], np.uint32))
    with pytest.raises(MemcpyError, match="16-bit"):
        sdk_utils.input_array_to_u32(np.zeros(2, np.float32), None, 1)
    with pytest.raises(MemcpyError, match="fast_dim_sz"):
        sdk_utils.input_array_to_u32(arr, 0, 0)


def test_calculate_cycles():
    # start = (0x0001, 0xFFFF, 0x0002), end = (0x0005, 0x0000, 0x0003): the difference borrows
    words = np.array([0xFFFF0001, 0x00050002, 0x00030000], np.uint32)
    cycles = sdk_utils.calculate_cycles(words)
    assert isinstance(cycles, np.int64)
    assert cycles == (0x3_0000_0005 - 0x2_FFFF_0001)
    assert sdk_utils.calculate_cycles(words.view(np.float32)) == cycles
    assert sdk_utils.calculate_cycles([0x00020001, 0x00050000, 0x00000002]) == 4
    with pytest.raises(MemcpyError, match="3 32-bit words"):
        sdk_utils.calculate_cycles(np.zeros(4, np.uint32))
