"""The allreduce example (`examples/csl/allreduce-2d`: <collectives_2d> reductions along rows,
then column 0, and broadcasts back) on a 64 x 64 grid, through `wsejax cslc` and the example's
own host script, which checks every PE's total against numpy. The 4 x 4 run of its
commands.txt is in test_examples.py and, beside the reference interpreter, in
test_oracle_examples.py."""

import pathlib
import shutil
import subprocess
import sys

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "csl" / "allreduce-2d"


def test_allreduce_over_64_by_64_pes_matches_numpy(tmp_path):
    work = tmp_path / "allreduce-2d"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("out*", "__pycache__"))
    cli = [sys.executable, "-m", "wsejax.cli"]
    built = subprocess.run([*cli, "cslc", "layout.csl", "--fabric-dims=71,66",
                            "--fabric-offsets=4,1", "--params=k:64,n:8", "--memcpy",
                            "--channels=1", "-o", "out"],
                           cwd=work, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    ran = subprocess.run([*cli, "python", "run.py", "--name", "out"], cwd=work,
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    assert "allreduce of 8 f32 over 64x64 PEs matches numpy" in ran.stdout
    assert "SUCCESS!" in ran.stdout
