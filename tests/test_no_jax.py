"""Compiling and the oracle import no JAX: the reference interpreter stays independent of the
engine it checks, and `wsejax cslc` (the CSL front end, the op signatures in `wsejax.opspec`)
starts without loading JAX. Only the runtime loads it, when `SdkRuntime` is first used."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_JAX_LOADED = """
jax = sorted(m for m in sys.modules if m == "jax" or m.startswith(("jax.", "jaxlib")))
print("JAX:", jax)
"""


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", "import sys\n" + code + _JAX_LOADED], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_reference_and_the_op_signatures_import_no_jax():
    assert _run("import wsejax.opspec, wsejax.reference, wsejax.dsl") == "JAX: []"


def test_cslc_compiles_without_jax(tmp_path):
    layout = ROOT / "examples" / "csl" / "gemv-2x2" / "layout.csl"
    code = (f"from wsejax.cli import main\n"
            f"assert main(['cslc', {str(layout)!r}, '--fabric-dims=9,4', '--fabric-offsets=4,1',"
            f" '--params=Mt:4,Nt:5', '--memcpy', '--channels=1',"
            f" '-o', {str(tmp_path / 'out')!r}]) == 0\n")
    assert _run(code) == "JAX: []"
    assert (tmp_path / "out" / "out.json").is_file()


def test_the_runtime_loads_jax():
    assert _run("from wsejax import SdkRuntime") != "JAX: []"
