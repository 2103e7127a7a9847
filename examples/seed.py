"""Run the GEMV tutorial this project started from, unmodified, through the SDK's commands.

The tutorial (`shared/seeds/gemv-03-memcpy.md`, beside the repository) holds `layout.csl`,
`pe_program.csl` and `run.py` as code blocks. This script writes them byte for byte into a
work directory and runs, there, exactly what the tutorial says to run:

    cslc layout.csl --fabric-dims=8,3 --fabric-offsets=4,1 --memcpy --channels=1 -o out
    cs_python run.py --name out

with `wsejax cslc` and `wsejax python` in place of the SDK's commands.

    python examples/seed.py [--seed PATH_TO_MD] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEED = ROOT.parent / "shared" / "seeds" / "gemv-03-memcpy.md"
CSLC = ["layout.csl", "--fabric-dims=8,3", "--fabric-offsets=4,1", "--memcpy", "--channels=1",
        "-o", "out"]


def extract(markdown: str) -> dict[str, str]:
    """The tutorial's three files: the csl blocks (layout first) and the complete run.py."""
    blocks = re.findall(r"```(\w+)[^\n]*\n(.*?)```", markdown, re.S)
    csl = [body for lang, body in blocks if lang == "csl"]
    py = [body for lang, body in blocks if lang == "python" and "SdkRuntime(" in body]
    if len(csl) < 2 or not py:
        raise SystemExit("the tutorial does not hold layout.csl, pe_program.csl and run.py")
    layout = next(b for b in csl if "layout {" in b)
    program = next(b for b in csl if "layout {" not in b)
    return {"layout.csl": layout, "pe_program.csl": program, "run.py": py[0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=pathlib.Path, default=SEED)
    ap.add_argument("--workdir", type=pathlib.Path, default=ROOT / "build" / "seed")
    args = ap.parse_args(argv)
    if not args.seed.is_file():
        print(f"seed tutorial not found at {args.seed}", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    for name, text in extract(args.seed.read_text()).items():
        (args.workdir / name).write_text(text)
    wsejax = [sys.executable, "-m", "wsejax.cli"]
    for cmd in (wsejax + ["cslc"] + CSLC, wsejax + ["python", "run.py", "--name", "out"]):
        print("$", " ".join(["wsejax"] + cmd[3:]), flush=True)
        rc = subprocess.call(cmd, cwd=args.workdir)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
