"""The config space (spec 10): `@get_config(addr)`, `@set_config(addr, value)` and their
`_unchecked` forms.

Config addresses are 16-bit word addresses, each holding a 16-bit word. wsejax keeps the
space sparse (`ir.ConfigRead`): an address reads what was last written there, else 0. At
top-level comptime the builtins read and write the image the PE starts with; in a function
they become `ir.ConfigRead` / `ir.ConfigWrite`. wsejax gives no address a meaning of its own
(routes, queues, filters and task priorities are set through their builtins and
`<tile_config>`), so the checked and `_unchecked` forms act alike.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import builtin
from wsejax.csl.values import CNum, RVal, describe
from wsejax.types import DType

__all__ = ["config_image"]

ADDRESS_LIMIT = 1 << 16


def _args(c, node, env, n: int) -> list:
    """The arguments of `@get_config(addr)` (n = 1) or `@set_config(addr, value)` (n = 2)."""
    if len(node.args) == n + 1:
        raise c.error(f"@{node.name}: the address range argument is not supported yet (what "
                      "it restricts is not documented, so wsejax cannot emulate it)",
                      node.args[n].pos)
    if len(node.args) != n:
        raise c.error(f"@{node.name} takes {n} argument(s), got {len(node.args)}", node.pos)
    return [c.ev(a, env) for a in node.args]


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
    (v,) = _args(c, node, env, 1)
    pe = _pe(c, node, env)
    addr = _address(c, node, v)
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
    v, value = _args(c, node, env, 2)
    pe = _pe(c, node, env)
    addr = _address(c, node, v)
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
