"""Where a variable lives in PE memory: `align(N)`, `linksection(".name")`, `linkname("s")`
(spec 3.3).

wsejax gives each variable a u16 byte address (`ir.symbol_addresses`: declaration order, each
at a multiple of its element width), which a program sees through `@bitcast` / `@ptrcast` of
its address. `align(N)` (N bytes, a power of two) on a `var` held in PE memory makes that
address a multiple of N: a global, and a function's `var` whose address the program takes
(the others are registers, with no address to align). On every symbol of the variable (each
field of a struct held field by field). A struct whose address is taken lives in its type's
pool (`struct_pointers.py`), one array per field: the pool's arrays then start at a multiple
of N and the struct's element is padded to one, so that its address and each of its fields'
is one. On a `const` or comptime `var`, which is no variable in memory (a constant is placed
where a runtime index or `&` needs it), align is accepted and ignored with a warning.

`linksection` and `linkname` name the section and the symbol a linker gives a variable: wsejax
links nothing (one memory per PE, no sections, no symbol table but the exported names), so
they change no value a program or the host can see; each is accepted with a warning that says
so.

`PlacementMixin` uses from `self`: `error`, `ev`, `ignored`; `pool_place` reads
`placing_align` (the N of the variable being declared).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from wsejax.csl.values import CNum

if TYPE_CHECKING:
    from wsejax.csl import ast
    from wsejax.csl.env import Env

__all__ = ["PlacementMixin"]

MAX_ALIGN = 1 << 15     # past it, a u16 address has no room for a second aligned place

_WHY = {
    "linksection": "wsejax places every variable in the PE's one memory, in declaration "
                   "order, and links nothing: a section name changes no value the program or "
                   "the host can see",
    "linkname": "wsejax links nothing: the host finds variables by their @export_name, and "
                "a link name changes no value the program or the host can see",
}


def _of(symbol: str, name: str) -> bool:
    """Is `symbol` one that declaring variable `name` makes (its own, a field's, a local's
    static copy)?"""
    return any(p == name or p.startswith(name + "#") for p in symbol.split("."))


class PlacementMixin:
    """`align(N)`, `linksection`, `linkname` on variables."""

    def placed(self, d: ast.VarDecl, env: Env, declare):
        """Run `declare()` (which declares variable `d`) with `d`'s placement: the symbols
        it makes are aligned as `align(N)` asks. Returns what `declare` returns."""
        for a in d.attrs:
            if a != "align":
                self.ignored(f"{a}(...) on a variable", d.pos, _WHY[a])
        n = self.alignment(d, env) if "align" in d.attrs else None
        if n is not None and (d.const or d.comptime):
            self.ignored("align(...) on a const or comptime var", d.pos,
                         "it is no variable in PE memory; a constant is placed where a "
                         "runtime index or `&` needs it, at its type's own alignment")
            n = None
        pe = env.module.pe
        before = dict(pe.symbols) if pe is not None and n is not None else {}
        # (0 for a declaration without align(N) that the one being made evaluates first)
        outer, self.placing_align = self.__dict__.get("placing_align", 0), n or 0
        try:
            out = declare()
        finally:
            self.placing_align = outer
        if n is None or pe is None:
            return out
        # a struct whose address is taken: its pool pads itself (`pool_place`)
        for k, s in list(pe.symbols.items()):
            if before.get(k) is not s and not k.startswith("%pool") and _of(k, d.name):
                pe.symbols[k] = dataclasses.replace(s, align=n)
        return out

    def alignment(self, d: ast.VarDecl, env: Env) -> int:
        """The N of `align(N)` on `d`: a comptime power of two (spec 3.3)."""
        v = self.ev(d.align, env)
        n = v.value if isinstance(v, CNum) else v
        if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n & (n - 1):
            raise self.error(f"align({n if isinstance(n, int) else '...'}) on '{d.name}': "
                             "an alignment is a comptime power of two, in bytes (spec 3.3)",
                             d.align.pos)
        if n > MAX_ALIGN:
            raise self.error(f"align({n}) on '{d.name}': wsejax's addresses are u16, so an "
                             f"alignment is at most {MAX_ALIGN} bytes", d.align.pos)
        return n
