"""The tutorial the project started from runs unmodified through `wsejax cslc` and
`wsejax python` (what `make demo` runs)."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seeds" / "gemv-03-memcpy.md"


@pytest.mark.skipif(not SEED.is_file(), reason="the seed tutorial is not beside the repository")
def test_seed_tutorial_prints_success(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "seed.py"), "--workdir",
                          str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("SUCCESS!")
    text = SEED.read_text()
    for name in ("layout.csl", "pe_program.csl", "run.py"):
        assert (tmp_path / name).read_text() in text     # byte for byte from the tutorial
    assert (tmp_path / "out" / "out.json").is_file()
