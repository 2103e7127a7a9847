"""The `wsejax` command.

    wsejax --version

The SDK's commands (`wsejax cslc ...`, `wsejax python run.py ...`) arrive with the CSL front
end; until then the command says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

import wsejax

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wsejax", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"wsejax {wsejax.__version__}")
    parser.add_argument("command", nargs="?", help="cslc | python (not available yet)")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    if ns.command is None:
        parser.print_help()
        return 0
    print(f"wsejax: '{ns.command}' is not available yet: this version runs programs written "
          "with the Python API (wsejax.dsl); the CSL front end is not built yet",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
