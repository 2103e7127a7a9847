"""The CSL front end: `compile_csl` turns a layout file and its PE programs into a Program.

    program = compile_csl("layout.csl", params={"M": 4}, fabric_dims=(8, 3),
                          fabric_offsets=(4, 1), memcpy=True, channels=1)

Passes: parse (`parser`, a lark grammar in `grammar.lark`), then comptime evaluation
(`comptime`, with `builtins` and the natively implemented `library` modules) of the layout
block, whose loops run over all their iterations at once where they can (`layout_vec`); the
tiles' PE programs are instantiated into tile classes (`wsejax.tile_classes`: tiles whose
params differ only by numbers and bools share a class reading per-PE tables, unless the
program needs those values at comptime); then `wsejax.layout.build_program` validates the
whole.

Raises `CslError` (file:line:col with a caret) for errors in the sources and `LayoutError` for
invalid layouts.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pathlib
import re
import sys
import time
from collections.abc import Sequence

import numpy as np

from wsejax import ir
from wsejax.csl import ast, library
from wsejax.csl.builtins import finish_pe
from wsejax.csl.comptime import Compiler
from wsejax.csl.env import Env, Module
from wsejax.csl.layout_batches import Batches
from wsejax.csl.layout_vec import Num, TileBatch, run_loop
from wsejax.csl.tile_columns import batch_groups
from wsejax.csl.tiles import VALUES as _VALUES
from wsejax.csl.tiles import color_ids as _color_ids
from wsejax.csl.tiles import per_pe_values as _per_pe_values
from wsejax.csl.values import (
    CNum,
    ColorVal,
    FnT,
    ModuleVal,
    PeColorVal,
    PtrT,
    RVal,
    StructVal,
    freeze,
)
from wsejax.errors import CslError, LayoutError
from wsejax.frontend import RuleError
from wsejax.frontend.layout import LayoutRecorder
from wsejax.frontend.pe import PeBuilder
from wsejax.frontend.tiles import ParamKinds, group_tiles
from wsejax.hardware import MEMCPY_COLORS
from wsejax.layout import build_program, check_fabric, check_fabric_dims, default_fabric_dims
from wsejax.opspec import FP16_FORMATS
from wsejax.progress import Progress
from wsejax.tile_classes import tile_classes
from wsejax.types import DType

__all__ = ["compile_csl"]


class _Layout(Batches, LayoutRecorder):
    """What a layout block declares (`wsejax.frontend.layout`): `tiles[(x, y)]` is (file,
    params, position), `routes[(x, y, color)]` is (route, position)."""

    def __init__(self, c: CslCompiler, top: str):
        super().__init__()
        self.c = c
        self.top = top
        self.check_fabric = None    # (w, h) -> None, raises LayoutError
        self.filters: dict = {}     # (x, y, color) -> Filter of a @set_color_config
        self.switches: dict = {}    # (x, y, color) -> Switches of a @set_color_config
        self.export_pos: dict = {}  # name -> position of its @export_name
        self._files: dict = {}      # (path, importing file) -> the path as a string
        self.init_batches()
        self.progress = Progress("layout", 0, "tiles", enabled=False)

    def _record(self, pos, record, *args):
        """`record(*args)`; its RuleError is a CslError at `pos`."""
        try:
            return record(*args)
        except RuleError as err:
            raise self.c.error(str(err), pos) from None

    def set_rectangle(self, w, h, pos):
        self._record(pos, self.record_rectangle, w, h)
        self.progress.total = w * h
        if self.check_fabric is not None:
            # before any tile's program is evaluated: a layout too big for its fabric (or
            # the wafer) is refused at once, naming the @set_rectangle
            try:
                self.check_fabric(w, h)
            except LayoutError as e:
                raise LayoutError(f"{pos.file}:{pos.line}:{pos.col}: @set_rectangle({w}, {h}): "
                                  f"{e}") from None

    def resolve_file(self, path, env: Env, pos) -> str:
        """The PE program file `path` names, as written in the module of `env`."""
        key = (path, env.module.file.path)
        file = self._files.get(key)
        if file is None:
            file = self._files[key] = str(self.c.resolve(path, key[1], pos)) \
                if path is not None else self.top
        return file

    def set_tile_code(self, x, y, path, params: StructVal, env: Env, pos):
        self._record(pos, self.check_tile, x, y)
        self._record(pos, self.record_tile, x, y, None)
        self.tiles[(x, y)] = (self.resolve_file(path, env, pos), params, pos)
        self.progress.update(self.placed())

    def set_color_config(self, x, y, color, route, pos):
        self._record(pos, self.check_route, x, y, color)
        self._record(pos, self.record_route, x, y, color, (route, pos))

    def export_name(self, name, t, mutable, pos):
        self._record(pos, self.check_unexported, name)
        self.export_pos[name] = pos
        if isinstance(t, PtrT) and t.kind == "many" and isinstance(t.elem, DType):
            self._record(pos, self.record_data_export, name, t.elem, mutable)
        elif isinstance(t, FnT):
            self._record(pos, self.record_fn_export, name, tuple(t.params))
            if not all(isinstance(p, DType) for p in t.params):
                raise self.c.error(f"@export_name('{name}'): function params must be scalars",
                                   pos)
        else:
            raise self.c.error(f"@export_name('{name}'): type {t} is not a [*]T pointer or a "
                               "function type", pos)

    def complete(self, pos) -> tuple[int, int]:
        """The rectangle, once every PE of it has a program (errors at `pos`)."""
        if self.rect is not None and self.placed() == self.rect[0] * self.rect[1]:
            return self.rect    # every tile recorded lies inside, once
        return self._record(pos, self.check_complete)


class CslCompiler(Compiler):
    """The evaluator with what a whole program adds: layouts, imports, tile classes."""

    def __init__(self, *, rect_info=None, **kw):
        super().__init__(**kw)
        self.layout: _Layout | None = None
        self.fabric = rect_info
        self._import_names: dict = {}
        self._pe_modules: dict = {}     # id(PeBuilder) -> the modules instantiated for it
        self.memcpy_files: frozenset | None = None   # PE programs memcpy serves (None: all)
        self._per_iteration: set = set()    # ids of layout loops that run per iteration

    def exec_For(self, s: ast.For, env: Env) -> None:
        """A loop of the layout block runs over all its iterations at once where it can
        (`layout_vec`), else per iteration."""
        if self.layout is not None and not self._pe_stack and env.fn is None and \
                id(s) not in self._per_iteration:
            records = run_loop(self, s, env)
            if records is not None and self.layout.commit(records):
                return
            self._per_iteration.add(id(s))
        super().exec_For(s, env)

    def modules_of(self, pe) -> list:
        return self._pe_modules.get(id(pe), [])

    def layout_for(self, node):
        if self.layout is None or self._pe_stack:
            raise self.error(f"@{node.name} belongs in the layout block", node.pos)
        return self.layout

    def rectangle_struct(self, pos):
        if self.layout is None or self.layout.rect is None:
            raise self.error("@get_rectangle before @set_rectangle", pos)
        w, h = self.layout.rect
        (fw, fh), (ox, oy) = self.fabric
        return StructVal({"width": w, "height": h,
                          "fabric": StructVal({"width": fw, "height": fh}),
                          "offsets": StructVal({"width": ox, "height": oy})})

    def import_module(self, path: str, params: dict, env: Env, pos):
        if path.startswith("<") and path.endswith(">"):
            source = library.source(path[1:-1])
            if source is None:
                return ModuleVal(library.load(self, path[1:-1], params, env, pos))
            path = str(source)
        file = self.parse(self.resolve(path, env.module.file.path, pos))
        owner = env.module
        base = pathlib.Path(path).stem
        count = self._import_names.get((id(owner.pe), base), 0)
        self._import_names[(id(owner.pe), base)] = count + 1
        prefix = f"{owner.prefix}{base}{'' if count == 0 else count}."
        mod = Module(self, file, params, prefix, owner.pe, base)
        if owner.pe is not None:
            self._pe_modules.setdefault(id(owner.pe), []).append(mod)
            mod.instantiate()
        return ModuleVal(mod)

    def instantiate(self, path: str, params: StructVal) -> ir.PeProgram:
        pe = PeBuilder(os.path.basename(path))
        self._pe_stack = [pe]
        whole = self.memcpy
        # memcpy reserves its queues, task IDs and microthreads only on the PEs it serves
        self.memcpy = whole and (self.memcpy_files is None
                                 or os.path.abspath(path) in self.memcpy_files)
        try:
            mod = Module(self, self.parse(pathlib.Path(path)), dict(params.fields), "", pe,
                         pathlib.Path(path).stem)
            self._pe_modules[id(pe)] = [mod]
            mod.instantiate()
            finish_pe(self, pe)
        finally:
            self._pe_stack = []
            self.memcpy = whole
        return pe.build()


def _tile_classes(c: CslCompiler, lay: _Layout, w: int, h: int):
    """Tile classes, the [H, W] class table and per-PE constant tables (`wsejax.tile_classes`).

    Tiles running the same file whose params differ only in numbers, bools and colors are one
    group (`wsejax.frontend.tiles`); a varying param can be a per-PE value of its declared
    type (an untyped one: its values' type, see `_param_type`), a color param a per-PE color
    (`vary_color`).
    """
    def numbers(path, name, vals):
        raw = np.asarray([u.value if type(u) is CNum else u for u in vals])
        # a kind: a CNum's type or a Python type (1 and True are different values)
        kinds = [u.dtype if type(u) is CNum else type(u) for u in vals]
        distinct = {kinds[0]} if kinds.count(kinds[0]) == len(kinds) else set(kinds)
        if len(distinct) == 1 and (raw == raw[0]).all():
            return None
        found = _per_pe_values(c, path, name, raw, kinds, distinct)
        keys = list(zip(kinds, raw.tolist()))
        if found is None:
            return keys, None
        t, entries = found
        return keys, (t, entries, lambda table: RVal(ir.PeValue(table, t), t))

    kinds = ParamKinds(
        shape=lambda x, y, fields: tuple([(name, None if isinstance(v, _VALUES) else freeze(v))
                                          for name, v in fields.items()]),
        may_vary=lambda v: isinstance(v, _VALUES),
        color_ids=lambda path, name, vals: _color_ids(c, path, name, vals),
        is_color=lambda v: type(v) is ColorVal,
        freeze=freeze,
        numbers=numbers,
        stem=lambda path: pathlib.Path(path).stem,
        color_stand_in=lambda table: PeColorVal(ir.PeValue(table, DType.u16)),
        reserved_colors=MEMCPY_COLORS if c.memcpy else (),
    )
    if lay.batches:
        groups = batch_groups(_all_batches(lay), w, kinds,
                              lambda path, name, col: _numbers_fast(c, path, name, col))
    else:
        tiles = ((x, y, lay.tiles[(x, y)][0], lay.tiles[(x, y)][1].fields)
                 for y in range(h) for x in range(w))
        groups = group_tiles(tiles, kinds)
    return tile_classes(groups, h, w,
                        lambda path, params: c.instantiate(path, StructVal(params)), CslError)


def _all_batches(lay: _Layout) -> list:
    """The layout's tiles as `(file, TileBatch)`: its batches, and a batch of one per tile
    placed on its own."""
    out = list(lay.batches)
    for (x, y), (file, params, pos) in lay.tiles.items():
        out.append((file, TileBatch(np.array([x]), np.array([y]), None, dict(params.fields),
                                    None, pos)))
    return out


def _numbers_fast(c: CslCompiler, path: str, name: str, col: Num):
    """`numbers` of `_tile_classes` for a column of numbers of one kind (`col`)."""
    raw = col.v
    if (raw == raw[0]).all():
        return None
    found = _per_pe_values(c, path, name, raw, None, {col.kind})
    if found is None:
        return raw, None
    t, entries = found
    return raw, (t, entries, lambda table: RVal(ir.PeValue(table, t), t))


@contextlib.contextmanager
def _no_cyclic_gc():
    """Pause Python's cyclic garbage collector: a big layout keeps a few objects per tile
    alive, and each full collection would walk all of them again (a sixth of the compile
    time at 375x497). Comptime evaluation makes next to no cyclic garbage."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _top_params(c: CslCompiler, file: ast.File, params: dict, colors: dict) -> dict:
    declared = {d.name for d in file.decls if isinstance(d, ast.ParamDecl)}
    out = {}
    for source, values in (("--params", params), ("--colors", colors)):
        for name, v in values.items():
            if name not in declared:
                c.warn(f"{source} {name}:{v}: {file.path} declares no param '{name}'")
                continue
            out[name] = int(v)
    return out


# Python frames comptime evaluation may take: `Compiler.MAX_CALL_DEPTH` nested calls of a few
# dozen frames each, so that the evaluator's own depth limit is met before Python's
_STACK_FRAMES = 25_000


@contextlib.contextmanager
def _deep_stack():
    """Raise Python's recursion limit for the duration of a compile (pure Python frames take no C
    stack from Python 3.11 on); the parser lowers it again while it runs, see
    `Compiler.parse`."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, _STACK_FRAMES))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


@_no_cyclic_gc()
@_deep_stack()
def compile_csl(top: str | os.PathLike, *, params: dict[str, int] | None = None,
                colors: dict[str, int] | None = None, arch: str = "wse2",
                fabric_dims: tuple[int, int] | None = None,
                fabric_offsets: tuple[int, int] | None = None, channels: int = 1,
                memcpy: bool = False, import_paths: Sequence[str] = (),
                width_west_buf: int = 0, width_east_buf: int = 0,
                fp16_format: str = "f16", warn=None,
                max_steps: int = 20_000_000,
                max_loop_iterations: int = 100_000,
                memcpy_files: Sequence[str | os.PathLike] | None = None,
                timings: dict | None = None, progress: bool | None = None) -> ir.Program:
    """Compile the layout file `top` (as `cslc` does) into a Program.

    `params`/`colors` set the top file's params (as `--params`/`--colors`). Without
    `fabric_dims`, the smallest fabric memcpy accepts around the rectangle is used.
    `max_steps` bounds comptime evaluation (statements executed) and `max_loop_iterations` the
    iterations of any one comptime or inline loop, so an endless comptime loop is an error
    within seconds, not a hang. With `memcpy`, `memcpy_files` names the PE programs memcpy
    serves (the SdkLayout's stream relays); the others may use the queues, task IDs and
    microthreads memcpy reserves. None: every PE program.

    `timings`, where given, receives the seconds each phase took: "parse" (the layout file),
    "layout" (its layout block), "tile_classes" (the PE programs specialised),
    "routes" (the layout checked, the routes resolved). `progress` draws a progress line on
    stderr (None: where stderr is a terminal).
    """
    clock = _Clock(timings)
    if fp16_format not in FP16_FORMATS:
        raise LayoutError(f"--fp16-format={fp16_format}: expected one of "
                          f"{', '.join(FP16_FORMATS)}")
    if arch not in ("wse2", "wse3"):
        raise LayoutError(f"--arch={arch}: expected wse2 or wse3")
    top = pathlib.Path(top)
    offsets = tuple(fabric_offsets) if fabric_offsets is not None else (4 + width_west_buf, 1)
    check_fabric_dims(arch, fabric_dims, offsets, width_west_buf)
    env_paths = [p for p in os.environ.get("CSL_IMPORT_PATH", "").split(":") if p]
    c = CslCompiler(arch=arch, import_paths=list(import_paths) + env_paths, warn=warn,
                    max_steps=max_steps, max_loop_iterations=max_loop_iterations,
                    fp16=FP16_FORMATS[fp16_format])
    c.memcpy = memcpy
    if memcpy_files is not None:
        c.memcpy_files = frozenset(os.path.abspath(f) for f in memcpy_files)
    file = c.parse(top)
    clock.lap("parse")
    layouts = [d for d in file.decls if isinstance(d, ast.LayoutBlock)]
    if not layouts:
        raise CslError(f"{top} has no layout {{ ... }} block", str(top), 1, 1)
    if len(layouts) > 1:
        raise c.error("a program has exactly one layout block", layouts[1].pos)
    c.layout = lay = _Layout(c, str(top))
    lay.progress = Progress("layout", 0, "tiles", enabled=progress)
    lay.check_fabric = lambda w, h: check_fabric(arch, w, h, fabric_dims, offsets,
                                                 width_west_buf, width_east_buf)
    c.fabric = (None, offsets)
    mod = Module(c, file, _top_params(c, file, params or {}, colors or {}), "", None, top.stem)
    fabric_of = None if fabric_dims is not None else lambda w, h: default_fabric_dims(
        w, h, offsets, width_west_buf, width_east_buf)
    try:
        _run_layout(c, file, layouts[0], mod.env(), fabric_dims, fabric_of)
    finally:
        lay.progress.close()
    clock.lap("layout")
    w, h = lay.rect
    classes, class_of, tables = _tile_classes(c, lay, w, h)
    _check_exports(c, lay, classes)
    clock.lap("tile_classes")
    try:
        program = build_program(
            width=w, height=h, arch=arch, fabric_dims=fabric_dims, fabric_offsets=offsets,
            channels=channels, exports=tuple(lay.exports.values()), classes=tuple(classes),
            class_of=class_of, params=tuple(sorted((params or {}).items())),
            width_west_buf=width_west_buf, width_east_buf=width_east_buf, tables=tables,
            routes=lay.route_list(),
            filters=tuple(sorted(lay.filters.items())),
            switches=tuple(sorted(lay.switches.items())),
            streams=tuple(sorted((color, kind) for color, (kind, _) in c.streams.items())),
            memcpy=memcpy, fp16=c.fp16)
    except LayoutError as err:
        located = _at_source(c, lay, err)
        if located is err:
            raise
        raise located from None
    clock.lap("routes")
    return program


class _Clock:
    """Seconds per phase, into `timings` (None: not kept)."""

    def __init__(self, timings: dict | None):
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[phase] = self.timings.get(phase, 0.0) + now - self.last
        self.last = now


def _run_layout(c: CslCompiler, file: ast.File, layout: ast.LayoutBlock, env: Env,
                fabric_dims, fabric_of) -> None:
    """Run the layout block, then the file's top-level comptime blocks; every PE must have
    its tile code. `fabric_of(w, h)`: the fabric's dimensions around a rectangle, where
    `fabric_dims` are not given."""
    lay = c.layout
    # fabric dims are known before the layout runs only if given; @get_rectangle needs them
    c.fabric = (tuple(fabric_dims) if fabric_dims else (0, 0), c.fabric[1])
    for s in layout.body.stmts:
        with c.top_level(s.pos):
            c.exec(s, env)
        if fabric_of is not None and lay.rect is not None and c.fabric[0] == (0, 0):
            c.fabric = (fabric_of(*lay.rect), c.fabric[1])
    for d in file.decls:
        if isinstance(d, ast.ComptimeBlock):
            with c.top_level(d.pos):
                c.exec_block(d.body, env)
    lay.complete(layout.pos)


def _check_exports(c: CslCompiler, lay: _Layout, classes) -> None:
    """Every name the layout exports is exported by some PE program."""
    exported = {e.name for pe in classes for e in pe.exports}
    for name in lay.exports:
        if name not in exported:
            raise c.error(f"@export_name('{name}'): no PE exports it (no PE program calls "
                          f"@export_symbol with the name '{name}')", lay.export_pos[name])


def _at_source(c: CslCompiler, lay: _Layout, err: LayoutError):
    """A LayoutError pointed at its source: the @set_color_config of a route problem, or the
    @set_tile_code that placed the PE whose program has the problem; else `err` itself.

    The PE and color are read back from the message text (`PE (x, y)`, a leading
    `color n`), so a layout message that names them otherwise loses its position."""
    text = str(err)
    pes = [(int(a), int(b)) for a, b in re.findall(r"PE \((\d+), (\d+)\)", text)]
    color = re.match(r"color (\d+)", text)
    for x, y in pes:
        pos = lay.route_pos(x, y, int(color.group(1))) if color else None
        if pos is not None:
            return c.error(text, pos)
    pos = lay.tile_pos(*pes[0]) if pes else None
    return c.error(text, pos) if pos is not None else err
