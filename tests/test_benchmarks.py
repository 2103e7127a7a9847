"""The benchmarks stay runnable: each checks its own results (y against numpy, the engine against
the reference) and raises on a mismatch; here their smallest cases run and their reports are
read back."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_gemv_benchmark_runs_and_is_exact_enough(tmp_path):
    out = tmp_path / "gemv.json"
    _run("gemv.py", "--sizes", "1", "2", "--tiles", "8", "--repeats", "1", "--json", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert [(r["fabric"], r["M"]) for r in rows] == [(1, 8), (2, 8)]
    for r in rows:
        assert r["max_abs_err"] <= 1e-3 and r["timed_faults"] == 0
        assert r["launch_s"] > 0


def test_the_dataflow_benchmark_counts_the_fabric_traffic(tmp_path):
    out = tmp_path / "dataflow.json"
    _run("dataflow.py", "--quick", "--repeats", "1", "--out", str(out))
    rows = json.loads(out.read_text())["rows"]
    assert [r["k"] for r in rows] == [2, 4]
    for r in rows:
        assert r["ticks"] > 0 and r["task_invocations"] > 0
        # x and b stream into every column and row, y out of every row: at least k*tile each
        assert r["wavelets"] >= 3 * r["k"] * r["tile"]
        assert r["state_bytes_per_pe"] >= r["declared_bytes_per_pe"]
    assert rows[1]["wavelets"] > rows[0]["wavelets"]


def test_the_launch_benchmark_times_compile_and_run_apart(tmp_path):
    out = tmp_path / "launch.json"
    _run("launch.py", "--function", "compute", "--repeats", "2", "--json", str(out))
    row = json.loads(out.read_text())
    assert (row["example"], row["function"], row["repeats"]) == ("complete-program", "compute", 2)
    assert row["lower_s"] > 0 and row["compile_s"] > 0 and row["launch_ms"] > 0
