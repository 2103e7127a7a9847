"""`@set_control_task_table(.{ .instructions, .stride })` (wse3, spec 5.1): the PE keeps its
control tasks in a table of their own.

The table's size and stride place entries in PE memory that wsejax does not model, so the
config is checked and kept. What a separate table changes for a program is that a control
task ID may then name a different task than the local or data task ID of the same number;
wsejax schedules every task of a PE by one ID, so a program that binds such a pair is refused.
"""

from __future__ import annotations

from wsejax.csl.builtins._registry import builtin, nargs
from wsejax.csl.values import CNum, StructVal, TupleVal, describe

__all__ = ["check_table"]

_INSTRUCTIONS = (2, 4, 8)
_STRIDES = range(1, 8)


@builtin("set_control_task_table")
def _set_control_task_table(c, node, env):
    nargs(c, node, 0, 1)
    pe = env.module.pe
    if pe is None or env.fn is not None:
        raise c.error("@set_control_task_table belongs in a top-level comptime block of a PE "
                      "program", node.pos)
    if c.arch != "wse3":
        raise c.error(f"@set_control_task_table exists on wse3 only (this program is for "
                      f"{c.arch})", node.pos)
    if pe.control_table is not None:
        raise c.error("@set_control_task_table is called twice in this PE program", node.pos)
    cfg = c.ev(node.args[0], env) if node.args else StructVal({})
    if isinstance(cfg, TupleVal) and not cfg.items:
        cfg = StructVal({})   # `.{}`
    if not isinstance(cfg, StructVal):
        raise c.error(f"@set_control_task_table takes a struct .{{ .instructions, .stride }}, "
                      f"got {describe(cfg)}", node.args[0].pos)
    unknown = sorted(set(cfg.fields) - {"instructions", "stride"})
    if unknown:
        raise c.error(f"@set_control_task_table: unknown field .{unknown[0]} (it takes "
                      ".instructions and .stride)", node.args[0].pos)
    instructions = _field(c, cfg, "instructions", 4, _INSTRUCTIONS, node)
    stride = _field(c, cfg, "stride", 1, _STRIDES, node)
    pe.control_table = (instructions, stride)
    return None


def _field(c, cfg: StructVal, name: str, default: int, allowed, node) -> int:
    v = cfg.fields.get(name, default)
    n = v.value if isinstance(v, CNum) else v
    if isinstance(n, bool) or not isinstance(n, int) or n not in allowed:
        want = "2, 4 or 8" if name == "instructions" else "1 to 7"
        raise c.error(f"@set_control_task_table: .{name} takes {want}, got {describe(v)}",
                      node.args[0].pos)
    return n


def check_table(c, pe, kind: str, n: int, node) -> None:
    """Before binding task ID `n` of `kind`: with a control task table of its own, a
    control task and a local or data task that share a number are refused (wsejax runs both
    by the one ID)."""
    other = pe.tasks.get(n)
    if pe.control_table is None or other is None:
        return
    if (kind == "control") != (other.kind == "control"):
        raise c.error(f"{kind} task ID {n}: the {other.kind} task ID {n} is bound too; with "
                      "@set_control_task_table the two may name different tasks, which "
                      "wsejax does not support yet (it schedules a PE's tasks by one ID): "
                      "give them different numbers", node.pos)
