"""What a layout declares, recorded with the rules of both front ends: one rectangle, one
program per tile inside it, one config per PE and color, one `@export_name` per name, and
every tile placed. Each method raises `RuleError`."""

from __future__ import annotations

from wsejax import ir
from wsejax.frontend.fabric import fail

__all__ = ["MAX_EXPORT_PARAMS", "LayoutRecorder"]

# the parameters an exported function may take (memcpy's launch)
MAX_EXPORT_PARAMS = 15


class LayoutRecorder:
    """The rectangle, the tiles, the color configs and the exported names of a layout.

    What a front end records per tile (`tiles[(x, y)]`) and per color config
    (`routes[(x, y, color)]`) is its own: a program and its params, a route, a position."""

    def __init__(self):
        self.rect: tuple[int, int] | None = None
        self.tiles: dict[tuple[int, int], object] = {}
        self.routes: dict[tuple[int, int, int], object] = {}
        self.exports: dict[str, ir.ExportName] = {}

    def record_rectangle(self, w: int, h: int) -> None:
        if self.rect is not None:
            fail("@set_rectangle called twice")
        if w < 1 or h < 1:
            fail(f"@set_rectangle({w}, {h}): dimensions must be positive")
        self.rect = (w, h)

    def _inside(self, builtin: str, x: int, y: int, shown: str) -> None:
        if self.rect is None:
            fail(f"@{builtin} before @set_rectangle")
        w, h = self.rect
        if not (0 <= x < w and 0 <= y < h):
            fail(f"@{builtin}({shown}) is outside the {w}x{h} rectangle")

    def record_tile(self, x: int, y: int, tile) -> None:
        """`@set_tile_code(x, y, ...)`: once per PE of the rectangle."""
        self._inside("set_tile_code", x, y, f"{x}, {y}")
        if (x, y) in self.tiles:
            fail(f"@set_tile_code({x}, {y}) called twice")
        self.tiles[(x, y)] = tile

    def record_route(self, x: int, y: int, color: int, route) -> None:
        """`@set_color_config(x, y, color, ...)`: once per PE and color."""
        self._inside("set_color_config", x, y, f"{x}, {y}, ...")
        if (x, y, color) in self.routes:
            fail(f"color {color} at PE ({x}, {y}) is configured twice")
        self.routes[(x, y, color)] = route

    def check_unexported(self, name: str) -> None:
        """`@export_name` names `name` once."""
        if name in self.exports:
            fail(f"@export_name('{name}') called twice")

    def record_data_export(self, name: str, dtype, mutable) -> None:
        """`@export_name(name, [*]T, mutable)`."""
        self.check_unexported(name)
        if mutable is None:
            fail(f"@export_name('{name}'): data names need a mutability")
        if not isinstance(mutable, bool):
            fail("@export_name mutability must be a bool")
        if getattr(dtype, "bits", 0) == 64:
            fail(f"@export_name('{name}'): memcpy moves 16- and 32-bit elements, not {dtype}; "
                 "export a [*]u32 array holding the halves of the 64-bit values instead")
        self.exports[name] = ir.ExportName(name, "data", dtype, mutable)

    def record_fn_export(self, name: str, params: tuple) -> None:
        """`@export_name(name, fn(T1, ...) void)`."""
        self.check_unexported(name)
        if len(params) > MAX_EXPORT_PARAMS:
            fail(f"@export_name('{name}'): functions take at most {MAX_EXPORT_PARAMS} params")
        wide = [p for p in params if getattr(p, "bits", 0) == 64]
        if wide:
            fail(f"@export_name('{name}'): a launch passes each argument in one 32-bit word; "
                 f"{wide[0]} is 64-bit (pass its two halves as u32)")
        self.exports[name] = ir.ExportName(name, "func", None, False, tuple(params))

    def check_complete(self) -> tuple[int, int]:
        """The rectangle, once every PE of it has a program."""
        if self.rect is None:
            fail("the layout never calls @set_rectangle")
        w, h = self.rect
        missing = [(x, y) for y in range(h) for x in range(w) if (x, y) not in self.tiles]
        if missing:
            fail(f"no @set_tile_code for PE {missing[0]} ({len(missing)} of {w * h} PEs have "
                 "none)")
        return w, h
