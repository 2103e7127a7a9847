"""The SDK's public tutorials (beside the repository, in `shared/sdk-examples/tutorials/`) run
unmodified: each commands script, with `cslc` and `cs_python` replaced by `wsejax cslc` and
`wsejax python`, exits 0 and prints no FAIL.

A few cases run in `make test`; the rest are marked `conformance` (`make conformance`, and
`make test-all`). Without `shared/` beside the repository every case is skipped."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = ROOT.parent / "shared" / "sdk-examples" / "tutorials"

# the tutorials wsejax runs today, and the few that guard them in `make test`
CORPUS = [
    "gemv-01-complete-program", "gemv-02-memory-dsds", "gemv-03-memcpy", "gemv-04-params",
    "gemv-05-multiple-pes", "gemv-06-routes-1", "gemv-07-routes-2", "gemv-08-routes-3",
    "gemv-09-streaming", "pipeline-01-basic", "pipeline-02-fifo", "pipeline-03-multiple",
    "topic-01-arrays-and-pointers", "topic-02-libraries", "topic-03-streaming-wavelet-data",
    "topic-04-sparse-tensors", "topic-05-sentinels", "topic-06-switches",
    "topic-07-switches-entrypt", "topic-08-filters", "topic-09-fifos",
    "topic-10-map-builtin", "topic-11-collectives", "topic-12-debug-library", "topic-13-simprint",
    "topic-14-color-swap", "topic-15-wse3-microthreads", "topic-16-queue-flush",
    "sdklayout-01-introduction", "sdklayout-02-routing", "sdklayout-03-ports-and-connections",
    "sdklayout-04-h2d-d2h", "sdklayout-05-gemv",
]
FAST = {"gemv-06-routes-1", "gemv-09-streaming", "pipeline-01-basic", "topic-05-sentinels",
        "topic-09-fifos"}


def cases():
    if not TUTORIALS.is_dir():
        return [pytest.param("-", "-", marks=pytest.mark.skip(
            reason=f"the SDK tutorials are not beside the repository ({TUTORIALS})"))]
    out = []
    for name in CORPUS:
        for script in sorted((TUTORIALS / name).glob("commands*.sh")):
            arch = script.stem.removeprefix("commands").lstrip("_") or "default"
            marks = () if name in FAST else (pytest.mark.conformance,)
            out.append(pytest.param(name, script.name, marks=marks, id=f"{name}-{arch}"))
    return out


def as_wsejax(script: str) -> str:
    """The commands script with the SDK's commands replaced by wsejax's. The SdkLayout
    tutorials' `%python_sdk_paint ARGS` runs the tutorial's run.py with ARGS, as
    `cs_python run.py ARGS` would (bash reads a word starting with `%` as `fg`, so no
    command of that name can be installed)."""
    script = re.sub(r"^cslc ", "wsejax cslc ", script, flags=re.M)
    script = re.sub(r"^%python_sdk_paint\b", "wsejax python run.py", script, flags=re.M)
    return re.sub(r"^cs_python ", "wsejax python ", script, flags=re.M)


def test_commands_are_replaced_at_the_start_of_a_line_only():
    text = "cslc --arch=wse2 x.csl\n  # cslc is the compiler\ncs_python run.py --name out\n"
    assert as_wsejax(text) == ("wsejax cslc --arch=wse2 x.csl\n  # cslc is the compiler\n"
                               "wsejax python run.py --name out\n")
    assert as_wsejax("%python_sdk_paint --arch=wse3\n") == "wsejax python run.py --arch=wse3\n"


@pytest.mark.parametrize("name, script", cases())
def test_tutorial_runs_unmodified(tmp_path, name, script):
    work = tmp_path / name
    shutil.copytree(TUTORIALS / name, work)
    for p in work.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    (work / "run_wsejax.sh").write_text(as_wsejax((work / script).read_text()))
    env = dict(os.environ, PATH=f"{pathlib.Path(sys.executable).parent}{os.pathsep}"
               f"{os.environ.get('PATH', '')}")
    out = subprocess.run(["bash", "run_wsejax.sh"], cwd=work, env=env, capture_output=True,
                         text=True, timeout=600)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "FAIL" not in log, log[-3000:]
