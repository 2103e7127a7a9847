"""The config space (spec 10): `@get_config(addr)`, `@set_config(addr, value)` and their
`_unchecked` forms.

Config addresses are 16-bit word addresses, each holding a 16-bit word. wsejax keeps the
space sparse (`ir.ConfigRead`): an address reads what was last written there, else 0. At
top-level comptime the builtins read and write the image the PE starts with; in a function
they become `ir.ConfigRead` / `ir.ConfigWrite`. wsejax gives no address a meaning of its own
(routes, queues, filters and task priorities are set through their builtins and
`<tile_config>`), so the checked and `_unchecked` forms act alike.

The checked forms take an optional last argument, the accessed range: a comptime tuple
`.{start, end}` of inclusive word addresses, or a tuple of them, that the address is promised
to fall in. A comptime-known address outside every range is a compile error; one known only at
run time is checked where it is used, and one outside every range faults the PE (the SDK
leaves that undefined). The `_unchecked` forms take no range.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl import ast
from wsejax.csl.builtins._registry import builtin
from wsejax.csl.values import CNum, RVal, TupleVal, describe
from wsejax.types import DType

__all__ = ["config_image"]

ADDRESS_LIMIT = 1 << 16


def _args(c, node, env, n: int) -> list:
    """The arguments of `@get_config(addr)` (n = 1) or `@set_config(addr, value)` (n = 2),
    then the accessed ranges (`_access_ranges`), None where there is no range argument."""
    if len(node.args) == n + 1 and node.name.endswith("_unchecked"):
        checked = node.name.removesuffix("_unchecked")
        raise c.error(f"@{node.name} takes no accessed range (it is the form without the "
                      f"check): drop the range, or write @{checked} with it", node.args[n].pos)
    if len(node.args) not in (n, n + 1):
        raise c.error(f"@{node.name} takes {n} argument(s), or {n + 1} with the accessed "
                      f"range, got {len(node.args)}", node.pos)
    vals = [c.ev(a, env) for a in node.args[:n]]
    ranges = _access_ranges(c, node, env, node.args[n]) if len(node.args) > n else None
    return [*vals, ranges]


def _address(c, node, v):
    """A config address: an int (comptime) or a u16 IR expression."""
    what = f"@{node.name} address"
    if isinstance(v, RVal):
        if v.dtype is not DType.u16:
            raise c.error(f"{what}: expected a u16 at run time, got {describe(v)} (convert with "
                          "@as)", node.args[0].pos)
        return v.expr
    n = c.comptime_int(v, node.args[0].pos)
    if not 0 <= n < ADDRESS_LIMIT:
        raise c.error(f"{what}: {n} is not a 16-bit word address (0 to "
                      f"{ADDRESS_LIMIT - 1})", node.args[0].pos)
    return n


def _hex(r: tuple) -> str:
    return f".{{0x{r[0]:04x}, 0x{r[1]:04x}}}"


def _item(expr, k: int):
    """Where item k of a tuple argument is written: its own expression in a `.{...}`
    literal, else the whole argument."""
    return expr.items[k] if isinstance(expr, ast.TupleLit) and k < len(expr.items) else expr


def _access_ranges(c, node, env, arg) -> tuple:
    """The accessed ranges of argument `arg`, `((start, end), ...)`, each checked: a
    comptime tuple `.{start, end}` of inclusive 16-bit word addresses, or a tuple of them."""
    what = f"@{node.name} accessed range"
    v = c.ev(arg, env)
    if not isinstance(v, TupleVal) or not v.items:
        got = "an empty tuple" if isinstance(v, TupleVal) else describe(v)
        raise c.error(f"{what}: expected a comptime tuple .{{start, end}} or a tuple of them "
                      f"(.{{.{{0x7e00, 0x7e0f}}, .{{0x7e20, 0x7e2f}}}}), got {got}", arg.pos)
    if not any(isinstance(x, TupleVal) for x in v.items):
        return (_range(c, what, v, arg),)
    return tuple(_range(c, what, x, _item(arg, k)) for k, x in enumerate(v.items))


def _range(c, what: str, v, expr) -> tuple[int, int]:
    if not isinstance(v, TupleVal) or len(v.items) != 2:
        got = f"a tuple of {len(v.items)}" if isinstance(v, TupleVal) else describe(v)
        raise c.error(f"{what}: expected a tuple of two ends .{{start, end}}, got {got}",
                      expr.pos)
    start, end = (_end(c, what, x, _item(expr, k)) for k, x in enumerate(v.items))
    if start > end:
        raise c.error(f"{what}: {_hex((start, end))} starts after it ends (a range is "
                      ".{start, end} with start <= end, both included)", expr.pos)
    return start, end


def _end(c, what: str, v, expr) -> int:
    if isinstance(v, CNum) and v.dtype.is_int:
        v = int(v.value)
    if not isinstance(v, int) or isinstance(v, bool):
        known = "known only at run time" if isinstance(v, RVal) else "not an integer"
        raise c.error(f"{what}: an end must be a comptime-known integer, got {describe(v)} "
                      f"({known})", expr.pos)
    if not 0 <= v < ADDRESS_LIMIT:
        raise c.error(f"{what}: {v} is not a 16-bit word address (0 to {ADDRESS_LIMIT - 1})",
                      expr.pos)
    return v


def _within(c, node, addr, ranges: tuple | None, env):
    """`addr` (an int, or a u16 IR expression) checked against the accessed ranges: a
    comptime address outside them is a compile error; a runtime one is evaluated once, into
    a local, and a PE where it falls outside them faults. Gives the address to use."""
    if ranges is None or (env.fn is None and not isinstance(addr, int)):
        return addr
    pos = node.args[0].pos
    listed = ", ".join(_hex(r) for r in ranges)
    if isinstance(addr, int):
        if not any(lo <= addr <= hi for lo, hi in ranges):
            raise c.error(f"@{node.name}: the address 0x{addr:04x} is outside its accessed "
                          f"range(s) {listed}", pos)
        return addr
    pe, fn = env.module.pe, env.fn
    local = ir.Local(pe.fresh("config_addr."), DType.u16)
    fn.emit(ir.LocalAssign(local.name, addr))
    inside = None
    for lo, hi in ranges:
        test = ir.Bin("and", ir.Bin(">=", local, ir.Const(lo, DType.u16), DType.bool_),
                      ir.Bin("<=", local, ir.Const(hi, DType.u16), DType.bool_), DType.bool_)
        inside = test if inside is None else ir.Bin("or", inside, test, DType.bool_)
    fn.emit(ir.Assert(inside, f"{node.pos} (@{node.name}: its address, known only at run time, "
                              f"is outside its accessed range(s) {listed}; the SDK leaves "
                              "that undefined)"))
    return local


def config_image(pe) -> tuple[list, list]:
    """The config space a PE program starts with, `(addresses, words)` (lists of
    `ir.CONFIG_ENTRIES`, -1 for a free entry), its symbols made where there are none yet."""
    k = ir.CONFIG_ENTRIES
    if ir.CONFIG_ADDRS not in pe.symbols:
        pe.symbols[ir.CONFIG_ADDRS] = ir.Symbol(ir.CONFIG_ADDRS, DType.i32, (k,), (-1,) * k)
        pe.symbols[ir.CONFIG_WORDS] = ir.Symbol(ir.CONFIG_WORDS, DType.u16, (k,), (0,) * k)
    return list(pe.symbols[ir.CONFIG_ADDRS].init), list(pe.symbols[ir.CONFIG_WORDS].init)


def _pe(c, node, env):
    pe = env.module.pe
    if pe is None:
        raise c.error(f"@{node.name} belongs in a PE program, not in the layout", node.pos)
    return pe


@builtin("get_config", "get_config_unchecked")
def _get_config(c, node, env):
    v, ranges = _args(c, node, env, 1)
    pe = _pe(c, node, env)
    addr = _within(c, node, _address(c, node, v), ranges, env)
    addrs, words = config_image(pe)
    if env.fn is None:
        if not isinstance(addr, int):
            raise c.error(f"@{node.name} at comptime needs a comptime-known address",
                          node.args[0].pos)
        return CNum(words[addrs.index(addr)] if addr in addrs else 0, DType.u16)
    expr = addr if not isinstance(addr, int) else ir.Const(addr, DType.u16)
    return RVal(ir.ConfigRead(expr), DType.u16)


@builtin("set_config", "set_config_unchecked")
def _set_config(c, node, env):
    v, value, ranges = _args(c, node, env, 2)
    pe = _pe(c, node, env)
    addr = _within(c, node, _address(c, node, v), ranges, env)
    word = c.to_expr(value, DType.u16, node.args[1].pos, f"@{node.name} value")
    addrs, words = config_image(pe)
    if env.fn is not None:
        expr = addr if not isinstance(addr, int) else ir.Const(addr, DType.u16)
        env.fn.emit(ir.ConfigWrite(expr, word))
        return None
    if addr not in addrs and -1 not in addrs:
        raise c.error(f"@{node.name}: the PE's start-up config already sets "
                      f"{ir.CONFIG_ENTRIES} other addresses, the most wsejax keeps", node.pos)
    k = addrs.index(addr) if addr in addrs else addrs.index(-1)
    addrs[k], words[k] = addr, int(word.value)
    pe.symbols[ir.CONFIG_ADDRS] = ir.Symbol(ir.CONFIG_ADDRS, DType.i32, (len(addrs),),
                                            tuple(addrs))
    pe.symbols[ir.CONFIG_WORDS] = ir.Symbol(ir.CONFIG_WORDS, DType.u16, (len(words),),
                                            tuple(words))
    return None
