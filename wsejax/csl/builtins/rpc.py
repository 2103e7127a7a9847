"""`@rpc(data_task_id)` (spec 10, 12.5): the data-task RPC server through which memcpy
launches exported functions, SDK 1.x style.

The layout gives `<memcpy/get_params>` a `.LAUNCH` color; each PE program that exports
functions serves it with `@rpc(@get_data_task_id(sys_mod.LAUNCH))` in a top-level comptime
block (wse3: the data task ID of an input queue initialised with that color). The host's
`launch` then calls the exported functions, as it does without `.LAUNCH`. wsejax serves RPC
on the launch color only.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import builtin, nargs
from wsejax.csl.builtins.tasks import _binding_site
from wsejax.csl.values import TaskIdVal, describe

__all__ = ["finish_rpc"]


@builtin("rpc")
def _rpc(c, node, env):
    nargs(c, node, 1)
    pe = _binding_site(c, node, env)
    ident = c.ev(node.args[0], env)
    if not isinstance(ident, TaskIdVal) or ident.kind != "data":
        raise c.error(f"@rpc takes a data task ID (@get_data_task_id(...)), got "
                      f"{describe(ident)}", node.args[0].pos)
    if id(pe) in c.rpc_servers:
        raise c.error("@rpc: this PE program already serves RPC (at most one @rpc per PE "
                      "program)", node.pos)
    if c.launch is None:
        raise c.error("@rpc: wsejax serves RPC on memcpy's launch color only; give the "
                      "layout's <memcpy/get_params> a .LAUNCH color and pass "
                      "@get_data_task_id(sys_mod.LAUNCH)", node.pos)
    color = c.launch[0]
    if c.arch == "wse2" and ident.id != color:
        raise c.error(f"@rpc: data task ID {ident.id} is not that of the launch color "
                      f"{color} (@get_data_task_id(sys_mod.LAUNCH))", node.args[0].pos)
    if c.arch == "wse3":
        pe.queue_uses.append((("input", ident.id), color, node.args[0].pos, "@rpc"))
    if ident.id in pe.tasks:
        raise c.error(f"@rpc: data task ID {ident.id} already has a task bound to it",
                      node.args[0].pos)
    c.rpc_servers[id(pe)] = (ident.id, node.pos)
    return None


def finish_rpc(c, pe) -> None:
    """With `.LAUNCH`, a PE program that exports functions must serve launches, and no task
    may take its RPC data task ID. Raises CslError."""
    server = c.rpc_servers.get(id(pe))
    if server is not None and server[0] in pe.tasks:
        raise c.error(f"a data task is bound to data task ID {server[0]}, which serves RPC "
                      "(@rpc)", server[1])
    if c.launch is None or server is not None:
        return
    fns = [e.name for e in pe.exports if isinstance(e, ir.ExportFunc)]
    if fns:
        raise c.error(f"{pe.name} exports function '{fns[0]}' but serves no launches: with "
                      ".LAUNCH, each PE program that exports functions calls "
                      "@rpc(@get_data_task_id(sys_mod.LAUNCH)) in a top-level comptime block",
                      c.launch[1])
