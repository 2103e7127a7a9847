"""Builtins of spec 10 beyond the core ones: `@random16`, `@set_active_prng` (run time),
`@get_string_from_byte` and `@import_comptime_value` (a JSON file as a comptime value).

`@import_comptime_value(T, "file.json")` reads the file (found as `@import_module` finds a
file: next to the importing file, then on the import path) and maps it to T: a JSON bool to
`bool`, a number to an integer or float type, `comptime_int`, `comptime_float` or `color`
(an integer in range, a float rounded to T), a string to `comptime_string`, an array (not
nested, elements of one kind) to an array type of the same element count, reshaped to T's
dimensions, and an object to a `comptime_struct` whose keys are `"name:type"` (a type is a
builtin type name or a one-dimensional array `[N]elem`). `null` is an error, as is anything
that does not fit; each error names the file and where in it.
"""

from __future__ import annotations

import json
import re

import numpy as np

from wsejax import ir
from wsejax.csl.builtins._registry import builtin, nargs
from wsejax.csl.values import (
    COMPTIME_FLOAT,
    COMPTIME_INT,
    COMPTIME_STRING,
    COMPTIME_STRUCT,
    SCALARS,
    SPECIALS,
    ArrayT,
    ArrayVal,
    CNum,
    ColorVal,
    RVal,
    StructVal,
    describe,
    ieee_float,
    int_range,
    string_from_bytes,
)
from wsejax.frontend import RuleError
from wsejax.frontend.fabric import check_color
from wsejax.types import DType


def random_draw(c, env, pos, what: str) -> ir.Local:
    """Emit the next 16-bit draw of the PE's PRNG into a fresh local (`@random16()` and the
    `<random>` library draw alike); `what` names the caller in the error outside a function."""
    fn = c.need_fn(env, pos, what)
    tmp = env.module.pe.fresh("rnd")
    fn.emit(ir.LocalAssign(tmp, ir.Intrinsic("random16", (), DType.u16)))
    return ir.Local(tmp, DType.u16)


@builtin("random16")
def _random16(c, node, env):
    """`@random16()`: the next draw of the PE's PRNG (the generator `<random>` uses)."""
    nargs(c, node, 0)
    return RVal(random_draw(c, env, node.pos, "@random16()"), DType.u16)


@builtin("set_active_prng")
def _set_active_prng(c, node, env):
    """`@set_active_prng(id)`: wsejax models one PRNG per PE (the number the hardware has is
    not documented), so every ID selects it; the ID is still evaluated and type-checked."""
    nargs(c, node, 1)
    fn = c.need_fn(env, node.pos, "@set_active_prng")
    e = c.to_expr(c.ev(node.args[0], env), DType.u16, node.args[0].pos, "@set_active_prng ID")
    if type(e) is not ir.Const:
        fn.emit(ir.ExprStmt(e))
    c.ignored("@set_active_prng", node.pos, "wsejax models one PRNG per PE, which every ID "
              "selects")
    return None


@builtin("get_string_from_byte")
def _get_string_from_byte(c, node, env):
    """`@get_string_from_byte(b)`: the one-byte comptime string of byte `b` (0 to 255)."""
    nargs(c, node, 1)
    b = c.comptime_int(c.ev(node.args[0], env), node.args[0].pos)
    if not 0 <= b <= 255:
        raise c.error(f"@get_string_from_byte takes a byte (0 to 255), got {b}",
                      node.args[0].pos)
    return string_from_bytes(bytes([b]))


# ------------------------------------------------------------------------------------------------
# @import_comptime_value


class _Misfit(Exception):
    """A JSON value that does not fit its type; `where` is its place in the file."""


@builtin("import_comptime_value")
def _import_comptime_value(c, node, env):
    nargs(c, node, 2)
    t = c.eval_type(node.args[0], env)
    name = c.ev(node.args[1], env)
    if not isinstance(name, str):
        raise c.error(f"@import_comptime_value takes a comptime string file name, got "
                      f"{describe(name)}", node.args[1].pos)
    path = c.resolve(name, env.module.file.path, node.args[1].pos)
    try:
        data = json.loads(path.read_text(), parse_constant=_no_constant)
    except (ValueError, OSError) as err:
        raise c.error(f"@import_comptime_value: {name} is not valid JSON ({err})",
                      node.pos) from None
    try:
        return _value(data, t, "the value")
    except _Misfit as err:
        raise c.error(f"@import_comptime_value: {name}: {err}", node.pos) from None


def _no_constant(text: str):
    raise ValueError(f"{text} is not a JSON number")


def _value(v, t, where: str):
    if v is None:
        raise _Misfit(f"{where} is null")
    if isinstance(t, ArrayT):
        return _array(v, t, where)
    if t == COMPTIME_STRUCT:
        return _struct(v, where)
    return _scalar(v, t, where)


def _scalar(v, t, where: str):
    shown = json.dumps(v)
    if t == DType.bool_ or t == COMPTIME_STRING:
        want = bool if t == DType.bool_ else str
        if not isinstance(v, want):
            raise _Misfit(f"{where} is {shown}, not a {t}")
        return CNum(v, t) if want is bool else v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Misfit(f"{where} is {shown}, not a {t}")
    if t == COMPTIME_FLOAT:
        return float(v)
    if isinstance(t, DType) and t.is_float:
        return CNum(ieee_float(v, t), t)
    if isinstance(v, float):
        raise _Misfit(f"{where} is {shown}, not an integer for {t}")
    return _integer(v, t, where)


def _integer(v: int, t, where: str):
    if t == COMPTIME_INT:
        return v
    if str(t) == "color":
        try:
            return ColorVal(check_color(v, False))
        except RuleError as err:
            raise _Misfit(f"{where}: {err}") from None
    if isinstance(t, DType) and t.is_int:
        lo, hi = int_range(t)
        if not lo <= v <= hi:
            raise _Misfit(f"{where} is {v}, which does not fit in {t}")
        return CNum(v, t)
    raise _Misfit(f"{where}: a value of type {t} cannot come from JSON")


def _array(v, t: ArrayT, where: str):
    if not isinstance(v, list):
        raise _Misfit(f"{where} is {json.dumps(v)[:40]}, not an array")
    if not isinstance(t.elem, DType):
        raise _Misfit(f"{where}: arrays of {t.elem} cannot come from JSON here")
    for k, x in enumerate(v):
        if isinstance(x, list):
            raise _Misfit(f"element {k} of {where} is an array (arrays may not be nested)")
    n = int(np.prod(t.shape))
    if len(v) != n:
        raise _Misfit(f"{where} has {len(v)} elements, {t} holds {n}")
    items = []
    for k, x in enumerate(v):
        if x is None:
            raise _Misfit(f"element {k} of {where} is null")
        items.append(_scalar(x, t.elem, f"element {k} of {where}").value)
    return ArrayVal(t.elem, np.array(items, t.elem.np).reshape(t.shape))


_FIELD = re.compile(r"^([A-Za-z_]\w*):(?:\[(\d+)\])?([A-Za-z_]\w*)$")


def _struct(v, where: str):
    if not isinstance(v, dict):
        raise _Misfit(f"{where} is {json.dumps(v)[:40]}, not an object")
    fields = {}
    for key, x in v.items():
        m = _FIELD.match(key.replace(" ", ""))
        if m is None:
            raise _Misfit(f"{where}: key \"{key}\" is not \"name:type\" (such as \"n:u16\" or "
                          "\"a:[8]i16\")")
        name, count, tname = m.groups()
        t = SCALARS.get(tname) or SPECIALS.get(tname)
        if tname == "color":
            t = SPECIALS["color"]
        if t is None:
            raise _Misfit(f"{where}: key \"{key}\" names no type CSL has ({tname})")
        if count is not None:
            t = ArrayT(t, (int(count),))
        fields[name] = _value(x, t, f"field '{name}' of {where}")
    return StructVal(fields)
