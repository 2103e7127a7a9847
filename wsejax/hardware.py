"""The WSE's fixed resources that both front ends check programs against (spec 2 and 4).

Nothing here imports JAX.
"""

from __future__ import annotations

__all__ = ["MAX_CONTROL_TASK_ID", "MEMCPY_COLORS", "MEMCPY_CONTROL_IDS", "MEMCPY_LOCAL_IDS",
           "MEMCPY_QUEUES", "QUEUE_COUNTS"]

# colors the memcpy infrastructure routes (spec 4)
MEMCPY_COLORS = (21, 22, 23)

# local task IDs memcpy uses, and the system tasks 29 and 31
MEMCPY_LOCAL_IDS = {27: "memcpy", 28: "memcpy", 29: "the teardown task", 30: "memcpy (timer)",
                    31: "the system"}

# control task IDs: 0 to 63 (spec 2); memcpy keeps 33 to 37 (spec 4)
MAX_CONTROL_TASK_ID = 63
MEMCPY_CONTROL_IDS = (33, 34, 35, 36, 37)

# queues per architecture, and those memcpy keeps for itself
QUEUE_COUNTS = {"wse2": {"input": 8, "output": 6}, "wse3": {"input": 8, "output": 8}}
MEMCPY_QUEUES = {"wse2": {"input": (0,), "output": (0,)},
                 "wse3": {"input": (0, 1), "output": (0,)}}
