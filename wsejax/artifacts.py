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


def load_program(out_dir) -> ir.Program:
    """Read the Program written by `save_program`. Raises MemcpyError if it is not there."""
    path = pathlib.Path(out_dir) / "bin" / "wsejax.pickle"
    if not path.is_file():
        raise MemcpyError(f"SdkRuntime: '{out_dir}' is not a wsejax compile output directory "
                          f"(no {path}); compile with `wsejax cslc ... -o {out_dir}`")
    with open(path, "rb") as f:
        data = pickle.load(f)
    if data.get("format") != FORMAT:
        raise MemcpyError(f"SdkRuntime: '{out_dir}' was written by another wsejax version; "
                          "compile it again")
    return data["program"]
