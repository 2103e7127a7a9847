"""Execute notebooks top to bottom and fail if a cell raises; outputs are never written back.

    python notebooks/run.py                          # every notebooks/*.ipynb
    python notebooks/run.py notebooks/01-gemv.ipynb  # just these

Each notebook runs in a fresh python3 kernel with the notebooks directory as its working
directory, so a notebook finds the repository through `Path.cwd().parent`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 600


def run_notebook(path: Path) -> str | None:
    """Execute `path` in memory; None if every cell ran, else a short description of the error."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(HERE)}})
    try:
        client.execute()
    except CellExecutionError as e:
        # the full traceback is in str(e); its last non-empty line names the exception
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        return f"{e.ename}: {e.evalue}" if getattr(e, "ename", None) else lines[-1]
    except CellTimeoutError as e:
        return f"a cell ran past {TIMEOUT_S} s ({e})"
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", type=Path,
                   help="notebooks to run (default: every notebooks/*.ipynb)")
    args = p.parse_args(argv)
    paths = args.notebooks or sorted(HERE.glob("*.ipynb"))
    if not paths:
        print(f"no notebooks in {HERE}")
        return 0
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        print(f"no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 1
    failed = []
    for path in paths:
        t0 = time.perf_counter()
        error = run_notebook(path)
        dt = time.perf_counter() - t0
        if error is None:
            print(f"ok      {path} ({dt:.1f} s)")
        else:
            print(f"FAILED  {path} ({dt:.1f} s): {error}")
            failed.append(path)
    if failed:
        print(f"{len(failed)} of {len(paths)} notebook(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
