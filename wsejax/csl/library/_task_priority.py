"""`<tile_config>.task_priority`: the priority of each task ID, LOW (the default) or HIGH
(spec 5.3). The scheduler starts a runnable HIGH task before any LOW one, the lowest ID first
within a level. At top-level comptime the functions set the priorities the PE starts with; in
a function they change them from then on. The priorities live in the PE program's
`ir.TASK_PRIORITY` symbol, one bit per task ID.

Members: `level` (enum: LOW = 0, HIGH = 1), `update_task_priority(id, level)`,
`set_task_priority(id)` (HIGH) and `clear_task_priority(id)` (LOW), where id is a task ID
(`@get_*_task_id`, comptime or run time), a bound task, or on wse2 a color.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins.tasks import _task_id, runtime_id
from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import EnumLitVal, EnumT, EnumVal, RtHandleVal, describe
from wsejax.types import DType

__all__ = ["task_priority_module"]

WORDS = 2   # task IDs 0..63, 32 a word
LEVELS = (("LOW", 0), ("HIGH", 1))


def _level(c, v, node) -> int:
    if isinstance(v, (EnumVal, EnumLitVal)) and v.name in dict(LEVELS):
        return dict(LEVELS)[v.name]
    raise c.error(f"task_priority.update_task_priority takes a level (.LOW or .HIGH), got "
                  f"{describe(v)}", node.pos)


def _symbol(pe) -> list:
    """The priority words the PE starts with, its symbol made where there is none yet."""
    if ir.TASK_PRIORITY not in pe.symbols:
        pe.symbols[ir.TASK_PRIORITY] = ir.Symbol(ir.TASK_PRIORITY, DType.u32, (WORDS,),
                                                 (0,) * WORDS)
    return list(pe.symbols[ir.TASK_PRIORITY].init)


def _set_at_start(pe, ident: int, high: bool) -> None:
    words = _symbol(pe)
    bit = 1 << (ident % 32)
    words[ident // 32] = words[ident // 32] | bit if high else words[ident // 32] & ~bit
    pe.symbols[ir.TASK_PRIORITY] = ir.Symbol(ir.TASK_PRIORITY, DType.u32, (WORDS,),
                                             tuple(words))


def _emit(fn, ident: ir.Expr, high: bool) -> None:
    """Set (high) or clear the bit of task ID `ident` (a u16 expression); an ID past 63
    changes nothing."""
    u32 = DType.u32
    word = (ir.Cast(ir.Bin(">>", ident, ir.Const(5, DType.u16), DType.u16), DType.i32),)
    bit = ir.Bin("<<", ir.Const(1, u32),
                 ir.Cast(ir.Bin("&", ident, ir.Const(31, DType.u16), DType.u16), u32), u32)
    old = ir.Load(ir.TASK_PRIORITY, word, u32)
    new = ir.Bin("|", old, bit, u32) if high else ir.Bin("&", old, ir.Un("~", bit, u32), u32)
    store = ir.Assign(ir.TASK_PRIORITY, word, new)
    if isinstance(ident, ir.Const):
        fn.emit(store)
        return
    fn.emit(ir.If(ir.Bin("<", ident, ir.Const(32 * WORDS, DType.u16), DType.bool_), (store,)))


def _change(c, node, env, v, high: bool, what: str) -> None:
    pe = env.module.pe
    if pe is None:
        raise c.error(f"task_priority.{what} belongs in a PE program", node.pos)
    if isinstance(v, RtHandleVal):
        ident = runtime_id(c, v, node, f"task_priority.{what}", local=False)
    else:
        ident = _task_id(c, v, node, f"task_priority.{what}", pos=node.args[0].pos)
    _symbol(pe)
    if env.fn is None:
        if not isinstance(ident, int):
            raise c.error(f"task_priority.{what} at comptime needs a comptime-known task ID",
                          node.pos)
        _set_at_start(pe, ident, high)
        return
    _emit(env.fn, ir.Const(ident, DType.u16) if isinstance(ident, int) else ident, high)


def task_priority_module(c) -> NativeModule:
    level_t = EnumT(object(), LEVELS, "level")

    def update(c2, node, env):
        v, level = call_args(c2, node, env, 2)
        _change(c2, node, env, v, _level(c2, level, node) == 1, "update_task_priority")

    def fixed(name: str, high: bool):
        def impl(c2, node, env):
            (v,) = call_args(c2, node, env, 1)
            _change(c2, node, env, v, high, name)
        return native_fn(name, impl)

    return NativeModule("tile_config/task_priority", {
        "level": level_t,
        "update_task_priority": native_fn("update_task_priority", update),
        "set_task_priority": fixed("set_task_priority", True),
        "clear_task_priority": fixed("clear_task_priority", False),
    })
