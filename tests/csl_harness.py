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


# ------------------------------------------------------------------------------------------
# Two-PE and row programs: compile a set of files, run `main` on the engine and the
# reference, read a symbol back, and check a located error.

_LINK_LAYOUT = """
const memcpy = @import_module("<memcpy/get_params>", .{ .width = 2, .height = 1 });
const link: color = @get_color(4);
layout {
  @set_rectangle(2, 1);
  @set_tile_code(0, 0, "sender.csl", .{ .memcpy_params = memcpy.get_params(0), .link = link });
  @set_color_config(0, 0, link, .{ .routes = .{ .rx = .{ RAMP }, .tx = .{ EAST } } });
  @set_tile_code(1, 0, "receiver.csl", .{ .memcpy_params = memcpy.get_params(1), .link = link });
  @set_color_config(1, 0, link, .{ .routes = .{ .rx = .{ WEST }, .tx = .{ RAMP } }CONFIG });
  @export_name("main", fn()void);
  @export_name("NAME", [*]TYPE, true);
}
"""


def link_layout(name: str = "out", t: str = "u32", receiver_config: str = "") -> str:
    """A 1x2 layout: PE (0, 0) runs sender.csl and sends east on color 4 (param `link`) to
    PE (1, 0), which runs receiver.csl; both export `main` and `name` ([*]t).
    `receiver_config` is added to PE (1, 0)'s color config (e.g. `, .filter = ...`)."""
    return (_LINK_LAYOUT.replace("CONFIG", receiver_config).replace("NAME", name)
            .replace("TYPE", t))


# The head of a sender on `link` (of `link_layout`): output queue 2 and two fabout DSDs of one
# wavelet, `data` and `marks` (control wavelets).
LINK_SENDER_HEAD = """
param memcpy_params;
param link: color;
const sys = @import_module("<memcpy/memcpy>", memcpy_params);
const ctrl = @import_module("<control>");
const oq = @get_output_queue(2);
const data = @get_dsd(fabout_dsd, if (@is_arch("wse3")) .{ .extent = 1, .output_queue = oq }
                      else .{ .extent = 1, .fabric_color = link, .output_queue = oq });
const marks = @get_dsd(fabout_dsd, if (@is_arch("wse3"))
                       .{ .extent = 1, .control = true, .output_queue = oq }
                       else .{ .extent = 1, .control = true, .fabric_color = link,
                               .output_queue = oq });
"""


def link_sender(body: str, name: str = "out") -> str:
    """A sender on `link` whose `main` runs `body` (over `LINK_SENDER_HEAD`'s `data` and
    `marks`), then unblocks memcpy; it exports `main` and an unused `name` ([8]u32)."""
    return LINK_SENDER_HEAD + f"""var {name} = @zeros([8]u32);
var {name}_ptr: [*]u32 = &{name};
fn main() void {{
{body}
  sys.unblock_cmd_stream();
}}
comptime {{
  if (@is_arch("wse3")) {{ @initialize_queue(oq, .{{ .color = link }}); }}
  @export_symbol(main);
  @export_symbol({name}_ptr, "{name}");
}}
"""


def compile_files(tmp_path, files: dict, arch: str = "wse2"):
    """Write `files` (name -> text, as they are; the layout is layout.csl) into `tmp_path` and
    compile them with memcpy for `arch`."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return compile_csl(tmp_path / "layout.csl", memcpy=True, arch=arch)


def launched(program, check: bool = False) -> SdkRuntime:
    """A runtime of `program` (in check mode: engine and reference compared after every
    command) after `main` ran."""
    r = SdkRuntime(program, check=check)
    r.load()
    r.run()
    r.launch("main")
    return r


def engine_and_reference(program, name: str, n: int, dtype=np.uint32):
    """Exported `name` (`n` 32-bit words a PE) of every PE after `main`, `[H, W, n]`, from
    the engine and from the reference run apart."""
    from wsejax.reference import Reference

    got = read(launched(program), name, n, dtype)
    ref = Reference(program)
    ref.launch("main")
    w, h = program.width, program.height
    want = np.zeros(w * h * n, dtype)
    ref.memcpy_d2h(want, name, 0, 0, w, h, n)
    return got, want.reshape(h, w, n)


def receiver_outputs(program, name: str = "out", n: int = 8, dtype=np.uint32):
    """The receiver's (PE (1, 0)'s, of `link_layout`) `name` (`n` words) after `main`, from
    the engine and from the reference."""
    got, want = engine_and_reference(program, name, n, dtype)
    return got[0, 1], want[0, 1]


def assert_located(err, path, where: str, message: str) -> None:
    """CslError `err` holds `message` and points at the first `where` of file `path`."""
    assert message in err.message, str(err)
    assert err.file.endswith(path.name), str(err)
    assert (err.line, err.col) == position(path.read_text(), where), str(err)


def row_of_three_layout(params: str = ".x = x", last_config: str = "") -> str:
    """Three PEs in a row, each running `node.csl` with `c` (color 4) and `params`; PE 0 sends
    east on `c` to PE 2 through PE 1 (`last_config` ends PE 2's color config); `got` and
    `main` are exported."""
    last = last_config
    return f"""
const memcpy = @import_module("<memcpy/get_params>", .{{ .width = 3, .height = 1 }});
const c: color = @get_color(4);
layout {{
  @set_rectangle(3, 1);
  for (@range(i16, 3)) |x| {{
    @set_tile_code(x, 0, "node.csl", .{{ .memcpy_params = memcpy.get_params(x), .c = c,
                                       {params} }});
  }}
  @set_color_config(0, 0, c, .{{ .routes = .{{ .rx = .{{ RAMP }}, .tx = .{{ EAST }} }} }});
  @set_color_config(1, 0, c, .{{ .routes = .{{ .rx = .{{ WEST }}, .tx = .{{ EAST }} }} }});
  @set_color_config(2, 0, c, .{{ .routes = .{{ .rx = .{{ WEST }}, .tx = .{{ RAMP }} }}{last} }});
  @export_name("got", [*]u32, true);
  @export_name("main", fn()void);
}}
"""
