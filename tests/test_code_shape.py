"""Size and branchiness of the package's modules: no module over 1000 lines, at most 15
functions over McCabe complexity 10 and none over 20 (ruff's C901)."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "wsejax"
MAX_LINES = 1000
MAX_COMPLEX = 20          # no function above this
BRANCHY = 10              # ... and at most MAX_BRANCHY functions above this
MAX_BRANCHY = 15


def test_no_module_is_over_a_thousand_lines():
    sizes = {p.relative_to(PACKAGE.parent): len(p.read_text().splitlines())
             for p in PACKAGE.rglob("*.py")}
    assert len(sizes) > 20
    over = {str(p): n for p, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"


def _ruff() -> list[str] | None:
    try:
        import ruff  # noqa: F401  (installed with the dev extras)
    except ImportError:
        return [shutil.which("ruff")] if shutil.which("ruff") else None
    return [sys.executable, "-m", "ruff"]


def _complexity() -> dict[str, int]:
    """function (file:line name) -> McCabe complexity, for every function over BRANCHY."""
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (make venv installs it)")
    done = subprocess.run(
        [*ruff, "check", "--isolated", "--select", "C901", "--config",
         f"lint.mccabe.max-complexity={BRANCHY}", "--output-format", "json", str(PACKAGE)],
        capture_output=True, text=True, check=False)
    found = {}
    for d in json.loads(done.stdout):
        # "`name` is too complex (14 > 10)"
        score = int(d["message"].rsplit("(", 1)[1].split(">")[0])
        found[f"{d['filename']}:{d['location']['row']} {d['message'].split('`')[1]}"] = score
    return found


def test_functions_are_not_too_branchy():
    found = _complexity()
    over = {k: v for k, v in found.items() if v > MAX_COMPLEX}
    assert not over, f"functions over complexity {MAX_COMPLEX}: {over}"
    assert len(found) <= MAX_BRANCHY, (
        f"{len(found)} functions over complexity {BRANCHY} (at most {MAX_BRANCHY}): "
        + ", ".join(f"{k} ({v})" for k, v in sorted(found.items(), key=lambda kv: -kv[1])))
