"""`<tile_config>.main_thread_priority`: where the main thread stands among the microthreads.

wsejax does not schedule the main thread against the microthreads cycle by cycle (an
operation on a microthread advances once a tick beside the main thread, whatever their
priorities), so `update_main_thread_priority(level)` is accepted, its level checked, and
otherwise ignored, with one warning per program naming what is not modelled (as a fabric
DSD's `.priority` is).

Members: `level` (MEDIUM_LOW, MEDIUM, MEDIUM_HIGH, HIGH; the SDK does not document their
numbers, these are 0 to 3 in that order) and `update_main_thread_priority(priority)`, at
comptime or at run time.
"""

from __future__ import annotations

from wsejax.csl.library._native import NativeModule, call_args, native_fn
from wsejax.csl.values import EnumLitVal, EnumRVal, EnumT, EnumVal, describe
from wsejax.types import DType

__all__ = ["main_thread_priority_module"]

LEVELS = (("MEDIUM_LOW", 0), ("MEDIUM", 1), ("MEDIUM_HIGH", 2), ("HIGH", 3))
LEVEL_T = EnumT(DType.u16, LEVELS, "level")
WHY = ("the main thread is not scheduled against the microthreads cycle by cycle here: "
       "an operation on a microthread advances beside it whatever their priorities")


def _update(c, node, env):
    (v,) = call_args(c, node, env, 1)
    if isinstance(v, EnumLitVal) and v.name in dict(LEVELS):
        v = EnumVal(LEVEL_T, v.name, dict(LEVELS)[v.name])
    if not (isinstance(v, (EnumVal, EnumRVal)) and v.etype is LEVEL_T):
        raise c.error("main_thread_priority.update_main_thread_priority takes a level "
                      f"(.MEDIUM_LOW, .MEDIUM, .MEDIUM_HIGH or .HIGH), got {describe(v)}",
                      node.args[0].pos)
    c.ignored("main_thread_priority.update_main_thread_priority", node.pos, WHY)


def main_thread_priority_module() -> NativeModule:
    return NativeModule("tile_config/main_thread_priority", {
        "level": LEVEL_T,
        "update_main_thread_priority": native_fn("update_main_thread_priority", _update),
    })
