"""Directions held at run time (spec 3.1, 11 `<directions>`).

A `direction` (NORTH, SOUTH, EAST, WEST, RAMP) is a comptime value where it configures a route
(routes, switch positions and their settings are fixed when the program is compiled). Held at
run time, it is a value of the enum `RUNTIME_DIRECTION` (a u16 tag, in the order of
`DIRECTIONS`): a comptime array of directions read at a runtime index, a `var` of type
`direction` or `[N]direction` (in PE memory, or a local), a function's parameter of type
`direction`, and what `<directions>` gives for a
runtime direction. Such a value compares with `==` / `!=`, is switched on, assigned and stored
as any enum is (`structs.py`); where a route needs a direction, a runtime one is a located error
with the reason. The `<directions>` functions map a runtime direction through a table in PE
memory; RAMP has no rotation or mirror image, and its number lies past the table's end, so it
faults the PE as an out-of-range index does.

`DirectionMixin` uses from `self`: `need_fn`, `const_symbol`, `coerce`, `index_const_structs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from wsejax import ir
from wsejax.csl.values import (
    DIRECTIONS,
    ArrayT,
    ArrayVal,
    EnumLitVal,
    EnumRVal,
    EnumT,
    EnumVal,
    ObjArrayVal,
    Special,
    object_array,
)
from wsejax.types import DType

if TYPE_CHECKING:
    from wsejax.csl import ast
    from wsejax.csl.env import Env

__all__ = ["RUNTIME_DIRECTION", "DirectionMixin", "held_type", "is_runtime_direction"]

RUNTIME_DIRECTION = EnumT(DType.u16, tuple((n, k) for k, n in enumerate(DIRECTIONS)),
                          "direction")
_DIRECTION = Special("direction")


def is_runtime_direction(v) -> bool:
    """Whether `v` is a direction known only at run time."""
    return isinstance(v, EnumRVal) and v.etype is RUNTIME_DIRECTION


def held_type(t):
    """Type `t` as held at run time (a `var`, a function's parameter): `direction` and
    `[N]direction` become the enum's."""
    if t == _DIRECTION:
        return RUNTIME_DIRECTION
    if isinstance(t, ArrayT) and t.elem == _DIRECTION:
        return ArrayT(RUNTIME_DIRECTION, t.shape)
    return t


def _held_value(v):
    """Value `v` as held at run time: a comptime direction (or array of them) as the enum's
    member(s)."""
    if isinstance(v, EnumLitVal) and v.name in DIRECTIONS:
        return EnumVal(RUNTIME_DIRECTION, v.name, DIRECTIONS.index(v.name))
    if isinstance(v, ObjArrayVal) and v.elem == _DIRECTION:
        items = [_held_value(x) for x in v.values.reshape(-1).tolist()]
        return ObjArrayVal(RUNTIME_DIRECTION, object_array(items, v.values.shape))
    return v


class DirectionMixin:
    """Directions held at run time."""

    def held_directions(self, t, v):
        """The type and initial value of a `var` held at run time, where either is a
        direction (or an array of them); else `t`, `v` as they are."""
        if held_type(t) is not t or (t is None and _held_value(v) is not v):
            return held_type(t), _held_value(v)
        return t, v

    def held_local_directions(self, d, t, v, env: Env):
        """`held_directions` for a function's runtime `var` (a `const` or a comptime `var`
        keeps a comptime direction)."""
        if env.fn is None or d.const or d.comptime:
            return t, v
        return self.held_directions(t, v)

    def index_directions(self, arr: ObjArrayVal, e: ast.Index, env: Env):
        """`ds[i]` of a comptime array of directions at a runtime index: a runtime
        direction, read from the array placed in PE memory."""
        cache = self.__dict__.setdefault("_direction_arrays", {})
        got = cache.get(id(arr))
        if got is None:
            got = cache[id(arr)] = (arr, _held_value(arr))
        return self.index_const_structs(got[1], e, env)

    def map_direction(self, name: str, table: dict, v: EnumRVal, env: Env, pos) -> EnumRVal:
        """`<directions>`.`name` of runtime direction `v`: its image through `table` (a
        table of four u16 numbers in PE memory; RAMP's number is out of its range)."""
        fn = self.need_fn(env, pos, f"directions.{name} of a runtime direction")
        values = [DIRECTIONS.index(table[d]) for d in DIRECTIONS[:4]]
        key = ("directions", name)
        pe = env.module.pe
        if key not in pe.const_arrays:
            arr = ArrayVal(DType.u16, np.array(values, np.uint16))
            pe.const_arrays[key] = (self.const_symbol(arr, env, pos), None)
        sym = pe.const_arrays[key][0]
        local = pe.fresh("direction.")
        fn.emit(ir.LocalAssign(local, ir.Load(sym.name, (ir.Cast(v.expr, DType.i32),),
                                              DType.u16)))
        return EnumRVal(ir.Local(local, DType.u16), DType.u16, RUNTIME_DIRECTION)
