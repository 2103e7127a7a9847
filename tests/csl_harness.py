"""Helpers for CSL front-end tests: write sources into a directory, compile, run."""

from __future__ import annotations

import textwrap

import numpy as np

from wsejax import SdkRuntime
from wsejax.csl import compile_csl

LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{{ .width = {w}, .height = {h} }});
layout {{
  @set_rectangle({w}, {h});
  for (@range(i16, {w})) |x| {{
    for (@range(i16, {h})) |y| {{
      @set_tile_code(x, y, "pe.csl", .{{ .memcpy_params = memcpy.get_params(x) }});
    }}
  }}
{exports}
}}
"""


def write(dir, files: dict) -> None:
    for name, text in files.items():
        (dir / name).write_text(textwrap.dedent(text))


def compile_pe(tmp_path, pe_source: str, exports: str, w=2, h=1, files=None, **kw):
    """Compile `pe_source` (as pe.csl) on a w x h rectangle; `exports` are @export_name lines."""
    write(tmp_path, {"layout.csl": LAYOUT.format(w=w, h=h, exports=textwrap.indent(
        textwrap.dedent(exports), "  ")), "pe.csl": pe_source, **(files or {})})
    return compile_csl(tmp_path / "layout.csl", memcpy=True, **kw)


def run(program, launches=(("main",),)):
    r = SdkRuntime(program)
    r.load()
    r.run()
    for name, *args in launches:
        r.launch(name, *args)
    return r


def read(r, name, n, dtype=np.float32):
    w, h = r.program.width, r.program.height
    out = np.zeros(w * h * n, dtype)
    r.memcpy_d2h(out, r.get_id(name), 0, 0, w, h, n, streaming=False)
    return out.reshape(h, w, n)


def sender_receiver_layout(got_type: str) -> str:
    """A 1x2 layout: PE (0, 0) sends on color 4 to PE (1, 0) (`param sender: bool` tells them
    apart); the PE program exports `got` ([*]got_type) and `main`."""
    return f"""
const memcpy = @import_module("<memcpy/get_params>", .{{ .width = 2, .height = 1 }});
const c: color = @get_color(4);
layout {{
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "pe.csl", .{{ .memcpy_params = memcpy.get_params(0), .c = c,
                                    .sender = true }});
  @set_tile_code(1, 0, "pe.csl", .{{ .memcpy_params = memcpy.get_params(1), .c = c,
                                    .sender = false }});
  @set_color_config(0, 0, c, .{{ .routes = .{{ .rx = .{{ RAMP }}, .tx = .{{ EAST }} }} }});
  @set_color_config(1, 0, c, .{{ .routes = .{{ .rx = .{{ WEST }}, .tx = .{{ RAMP }} }} }});
  @export_name("got", [*]{got_type}, true);
  @export_name("main", fn()void);
}}
"""


def position(text: str, where: str) -> tuple[int, int]:
    """The (line, column), from 1, of the first `where` in `text`."""
    k = text.index(where)
    return text.count("\n", 0, k) + 1, k - text.rfind("\n", 0, k)


# A PE program of memcpy that writes its results to `out` ([*]T, exported with `main`): the
# body declares `out`, `out_ptr` and `main`.
OUT_HEAD = """param memcpy_params;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const lay = @import_module("<layout>");
"""

OUT_TAIL = """
comptime { @export_symbol(out_ptr, "out"); @export_symbol(main); }
"""


def out_program(tmp_path, body: str, t: str, arch: str = "wse2", w: int = 2):
    """`body` between OUT_HEAD and OUT_TAIL, compiled on a w x 1 rectangle."""
    exports = f'@export_name("out", [*]{t}, true);\n@export_name("main", fn()void);'
    return compile_pe(tmp_path, OUT_HEAD + body + OUT_TAIL, exports, w=w, arch=arch)


def out_row(program, n: int, dtype, w: int = 2):
    """`out` (n elements of dtype) of the first w PEs of row 0 after `main`: (engine,
    reference), each [w, n]."""
    from wsejax.reference import Reference

    words = n * np.dtype(dtype).itemsize // 4
    host = np.float32 if dtype in (np.float32, np.float16) else np.uint32
    eng = read(run(program), "out", words, host)[0, :w].view(dtype)
    ref = Reference(program)
    ref.launch("main")
    return eng, np.stack([np.asarray(ref.memory(x, 0)["out"]).reshape(-1)[:n]
                          for x in range(w)]).astype(dtype)
