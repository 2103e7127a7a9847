"""The WSE's fixed resources that both front ends check programs against (spec 2 and 4).

Nothing here imports JAX.
"""

from __future__ import annotations

__all__ = ["COMPTIME_ARRAY_BYTES", "MAX_CONTROL_TASK_ID", "MEMCPY_COLORS", "MEMCPY_CONTROL_IDS",
           "MEMCPY_LOCAL_IDS", "MEMCPY_QUEUES", "MEMCPY_UT_IDS", "PE_MEMORY_BYTES", "QUEUE_COUNTS",
           "UT_ID_COUNT", "ut_id_error"]

# colors the memcpy infrastructure routes (spec 4)
MEMCPY_COLORS = (21, 22, 23)

# local task IDs memcpy uses, and the system tasks 29 and 31
MEMCPY_LOCAL_IDS = {27: "memcpy", 28: "memcpy", 29: "the teardown task", 30: "memcpy (timer)",
                    31: "the system"}

# a PE's memory (spec 2), and the largest array the emulator builds at comptime (a PE array
# is refused above PE_MEMORY_BYTES before its initial value is made; a comptime-only table may
# be larger, up to this)
PE_MEMORY_BYTES = 48 * 1024
COMPTIME_ARRAY_BYTES = 16 * 1024 * 1024

# control task IDs: 0 to 63 (spec 2); memcpy keeps 33 to 37 (spec 4)
MAX_CONTROL_TASK_ID = 63
MEMCPY_CONTROL_IDS = (33, 34, 35, 36, 37)

# queues per architecture, and those memcpy keeps for itself
QUEUE_COUNTS = {"wse2": {"input": 8, "output": 6}, "wse3": {"input": 8, "output": 8}}
MEMCPY_QUEUES = {"wse2": {"input": (0,), "output": (0,)},
                 "wse3": {"input": (0, 1), "output": (0,)}}

# microthreads: wse3 names them (`@get_ut_id(n)`, n in 0..7); on wse2 a queue implies its own
UT_ID_COUNT = 8
MEMCPY_UT_IDS = (0,)


def ut_id_error(arch: str, n: int | None, memcpy: bool = False) -> str | None:
    """What is wrong with naming microthread `n` (None: a runtime value, not checked here) in a
    program for `arch`, compiled with or without memcpy; None when nothing is."""
    if arch != "wse3":
        return f"microthread IDs exist on wse3 only (this program is for {arch})"
    if n is None:
        return None
    if not 0 <= n < UT_ID_COUNT:
        return f"microthread ID {n} is out of range (0 to {UT_ID_COUNT - 1})"
    if memcpy and n in MEMCPY_UT_IDS:
        return f"microthread {n} is reserved by memcpy"
    return None
