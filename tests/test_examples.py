"""The CSL examples under examples/csl, run the way a user runs them.

Each example directory holds a layout, its PE program(s), an SDK-style host script `run.py` and
`commands.txt`: two lines, the `wsejax cslc ...` and `wsejax python ...` commands, run from the
example's directory. Here each example is copied to a temporary directory and both commands run
in a subprocess with the current interpreter (`python -m wsejax.cli` in place of `wsejax`); the
host script prints `SUCCESS!` once its numpy checks pass. The examples of
`harness.EXAMPLES_ON_WSE3` run a second time (`NAME-wse3`) with `--arch=wse3` added to their
`cslc` line, the sources and host script unchanged.
"""

import json
import pathlib
import shlex
import shutil
import subprocess
import sys

import pytest
from harness import EXAMPLES_ON_WSE3

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples" / "csl"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "commands.txt").is_file())
# (name, extra cslc flags): every example as written, then those that also compile for wse3
CASES = ([pytest.param(name, (), id=name) for name in NAMES]
         + [pytest.param(name, ("--arch=wse3",), id=f"{name}-wse3") for name in EXAMPLES_ON_WSE3])


def commands(example: pathlib.Path) -> list[list[str]]:
    """The two command lines of `commands.txt`, with `wsejax` run by this interpreter."""
    lines = [ln for ln in (example / "commands.txt").read_text().splitlines() if ln.strip()]
    assert len(lines) == 2, f"{example.name}/commands.txt must hold exactly two lines"
    argvs = []
    for line, sub in zip(lines, ("cslc", "python")):
        argv = shlex.split(line)
        assert argv[:2] == ["wsejax", sub], f"{example.name}: unexpected command {line!r}"
        argvs.append([sys.executable, "-m", "wsejax.cli", *argv[1:]])
    return argvs


def test_every_example_is_collected():
    assert len(NAMES) >= 9
    for name in NAMES:
        d = EXAMPLES / name
        assert (d / "layout.csl").is_file() and (d / "run.py").is_file(), name
    for name in EXAMPLES_ON_WSE3:
        assert name in NAMES and "--arch" not in (EXAMPLES / name / "commands.txt").read_text()


@pytest.mark.parametrize("name, flags", CASES)
def test_example(name, flags, tmp_path):
    work = tmp_path / name
    shutil.copytree(EXAMPLES / name, work, ignore=shutil.ignore_patterns("out", "__pycache__"))
    compile_cmd, run_cmd = commands(work)
    compile_cmd += flags

    built = subprocess.run(compile_cmd, cwd=work, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"cslc failed:\n{built.stdout}\n{built.stderr}"
    if flags:
        out = work / compile_cmd[compile_cmd.index("-o") + 1] / "out.json"
        assert json.loads(out.read_text())["wsejax"]["arch"] == "wse3"

    ran = subprocess.run(run_cmd, cwd=work, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, f"run.py failed:\n{ran.stdout}\n{ran.stderr}"
    assert "SUCCESS!" in ran.stdout, ran.stdout
