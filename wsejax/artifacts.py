"""The compile output directory: what `SdkRuntime(dir)` loads.

Laid out as the SDK's compiler lays it out, so host scripts that read `out.json` keep working:

    DIR/out.json            {"params": {name: "value"}, "colors": {}, "wsejax": {...}}
    DIR/bin/wsejax.pickle   the Program (IR and layout), read back by `load_program`

`params` values are written as decimal strings, as host scripts wrap them in `int(...)`.
"""

from __future__ import annotations

import json
import pathlib
import pickle

from wsejax import ir
from wsejax.errors import MemcpyError

__all__ = ["load_program", "save_program"]

FORMAT = 1


def save_program(program: ir.Program, out_dir, params: dict | None = None,
                 colors: dict | None = None) -> pathlib.Path:
    """Write `program` to `out_dir` (created if needed) and return the directory."""
    out = pathlib.Path(out_dir)
    (out / "bin").mkdir(parents=True, exist_ok=True)
    params = dict(program.params) if params is None else params
    meta = {
        "params": {k: str(v) for k, v in params.items()},
        "colors": {k: str(v) for k, v in (colors or {}).items()},
        "wsejax": {
            "format": FORMAT,
            "arch": program.arch,
            "fabric_dims": list(program.fabric_dims),
            "fabric_offsets": list(program.fabric_offsets),
            "rectangle": [program.width, program.height],
            "channels": program.channels,
            "tile_classes": len(program.classes),
        },
    }
    (out / "out.json").write_text(json.dumps(meta, indent=2) + "\n")
    with open(out / "bin" / "wsejax.pickle", "wb") as f:
        pickle.dump({"format": FORMAT, "program": program}, f, protocol=pickle.HIGHEST_PROTOCOL)
    return out


def _damaged(out_dir, what: str) -> MemcpyError:
    return MemcpyError(f"SdkRuntime: '{out_dir}' is not a usable wsejax compile output "
                       f"directory: {what}; compile it again with `wsejax cslc ... -o {out_dir}`")


def load_program(out_dir) -> ir.Program:
    """Read the Program written by `save_program`.

    Raises:
      MemcpyError: naming the directory and what is wrong with it: it does not exist, is not a
        directory, was written by the SDK's cslc or another wsejax version, or its `out.json`
        or program file is missing, truncated or garbled.
    """
    root = pathlib.Path(out_dir)
    meta_path, path = _output_files(root, out_dir)
    info = _read_meta(meta_path, out_dir)
    program = _read_program(path, out_dir)
    if info.get("rectangle") != [program.width, program.height]:
        raise _damaged(out_dir, f"out.json describes a {info.get('rectangle')} rectangle but "
                       f"bin/wsejax.pickle a {program.width}x{program.height} one "
                       "(the two files come from different compiles)")
    return program


def _output_files(root: pathlib.Path, out_dir):
    """out.json and bin/wsejax.pickle of a compile output directory, or why `out_dir` is none."""
    if not root.exists():
        raise MemcpyError(f"SdkRuntime: '{out_dir}' is not a wsejax compile output directory: "
                          f"no such directory (compile with `wsejax cslc ... -o {out_dir}`)")
    if not root.is_dir():
        raise MemcpyError(f"SdkRuntime: '{out_dir}' is not a wsejax compile output directory: "
                          "it is a file (give the directory that `wsejax cslc -o DIR` wrote)")
    meta_path, path = root / "out.json", root / "bin" / "wsejax.pickle"
    if not meta_path.is_file() and not path.is_file():
        raise MemcpyError(f"SdkRuntime: '{out_dir}' is not a wsejax compile output directory "
                          f"(no out.json, no {path}); compile with `wsejax cslc ... -o {out_dir}`")
    if not path.is_file():
        if any((root / "bin").glob("*.elf")):
            raise MemcpyError(f"SdkRuntime: '{out_dir}' holds the output of the Cerebras SDK's "
                              "cslc (ELF files), which wsejax cannot run; compile the program "
                              f"with `wsejax cslc ... -o {out_dir}`")
        raise MemcpyError(f"SdkRuntime: '{out_dir}' is not a wsejax compile output directory "
                          f"(no {path}); compile with `wsejax cslc ... -o {out_dir}`")
    return meta_path, path


def _read_meta(meta_path: pathlib.Path, out_dir) -> dict:
    """The "wsejax" section of out.json."""
    if not meta_path.is_file():
        raise _damaged(out_dir, "out.json is missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise _damaged(out_dir, f"out.json is not readable JSON ({e})") from None
    info = meta.get("wsejax") if isinstance(meta, dict) else None
    if not isinstance(info, dict):
        raise _damaged(out_dir, 'out.json has no "wsejax" section')
    if info.get("format") != FORMAT:
        raise MemcpyError(f"SdkRuntime: '{out_dir}' was written by another wsejax version; "
                          "compile it again")
    return info


def _read_program(path: pathlib.Path, out_dir) -> ir.Program:
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except Exception as e:      # a truncated or garbled pickle fails in many ways
        raise _damaged(out_dir, f"bin/wsejax.pickle is truncated or garbled "
                       f"({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _damaged(out_dir, "bin/wsejax.pickle does not hold a wsejax program")
    program = data.get("program")
    if not isinstance(program, ir.Program):
        raise _damaged(out_dir, "bin/wsejax.pickle does not hold a wsejax program")
    return program
