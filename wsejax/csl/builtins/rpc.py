"""`@rpc(data_task_id)` (spec 10, 12.5): a data-task RPC server, at most one per PE program.

On memcpy's launch color (the layout gives `<memcpy/get_params>` a `.LAUNCH` color and the PE
program serves it with `@rpc(@get_data_task_id(sys_mod.LAUNCH))`; wse3: the data task ID of
an input queue initialised with that color) it is the server through which memcpy launches
exported functions, SDK 1.x style: the host's `launch` calls them, as it does without
`.LAUNCH`.

On any other color the server is a data task made here: each wavelet that reaches it is one
32-bit word of a call, the first the id of an exported function of the PE program (its
`@get_symbol_id`, the host's `get_id`), then one word per argument (a 16-bit or smaller
argument in the low bits, a bool is the word != 0). With the last argument the function runs;
a word that names no exported function as an id is dropped (spec 10: an unknown id is
ignored), and what a function returns is dropped.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import builtin, nargs, rule
from wsejax.csl.builtins.symbols import _ids
from wsejax.csl.builtins.task_table import check_table
from wsejax.csl.builtins.tasks import _binding_site
from wsejax.csl.values import TaskIdVal, describe
from wsejax.frontend.fabric import check_queue_free
from wsejax.hardware import MEMCPY_COLORS
from wsejax.types import DType

__all__ = ["finish_rpc"]

U16, U32, I32 = DType.u16, DType.u32, DType.i32


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
    if ident.id in pe.tasks:
        raise c.error(f"@rpc: data task ID {ident.id} already has a task bound to it",
                      node.args[0].pos)
    if c.memcpy and c.arch == "wse2" and ident.id in MEMCPY_COLORS and not _is_launch(c, ident):
        raise c.error(f"color {ident.id} is reserved by memcpy (colors 21, 22, 23): it cannot "
                      "carry an RPC server", node.args[0].pos)
    if c.memcpy and c.arch == "wse3":
        rule(c, node, check_queue_free, "input", ident.id, c.arch, pos=node.args[0].pos)
    check_table(c, pe, "data", ident.id, node)
    c.rpc_servers[id(pe)] = (ident.id, node.pos, node.args[0].pos)
    return None


def _is_launch(c, ident: TaskIdVal) -> bool:
    """On wse2: is data task ID `ident` that of memcpy's launch color?"""
    return c.launch is not None and ident.id == c.launch[0]


def _serves_launch(c, pe, ident: int) -> bool:
    """Does the @rpc on data task ID `ident` serve memcpy's launch color?"""
    if c.launch is None:
        return False
    if c.arch == "wse2":
        return ident == c.launch[0]
    queue = pe.queues.get(("input", ident))
    return queue is None or queue[0] == c.launch[0]


def finish_rpc(c, pe) -> None:
    """Make the server of the PE program's @rpc; with `.LAUNCH`, a PE program that exports
    functions must serve launches, and no task may take its RPC data task ID. Raises
    CslError."""
    server = c.rpc_servers.get(id(pe))
    if server is not None and server[0] in pe.tasks:
        raise c.error(f"a data task is bound to data task ID {server[0]}, which serves RPC "
                      "(@rpc)", server[1])
    fns = [e.name for e in pe.exports if isinstance(e, ir.ExportFunc)]
    # with .LAUNCH, the one @rpc of a PE program that exports functions serves launches
    launch = server is not None and (_serves_launch(c, pe, server[0]) or
                                     (c.launch is not None and bool(fns)))
    if launch and c.arch == "wse2" and server[0] != c.launch[0]:
        raise c.error(f"@rpc: data task ID {server[0]} is not that of the launch color "
                      f"{c.launch[0]} (@get_data_task_id(sys_mod.LAUNCH)); with .LAUNCH, a PE "
                      "program that exports functions serves launches with its one @rpc",
                      server[2])
    if launch and c.arch == "wse3":
        pe.queue_uses.append((("input", server[0]), c.launch[0], server[2], "@rpc"))
    elif server is not None and not launch:
        _serve(c, pe, server[0], server[1])
    if c.launch is None or launch:
        return
    if fns:
        raise c.error(f"{pe.name} exports function '{fns[0]}' but serves no launches: with "
                      ".LAUNCH, each PE program that exports functions calls "
                      "@rpc(@get_data_task_id(sys_mod.LAUNCH)) in a top-level comptime block",
                      c.launch[1])


def _argument(word: ir.Expr, t, name: str, c, pos) -> ir.Expr:
    """Argument of type `t` of exported function `name` from a 32-bit RPC `word`."""
    if t is DType.bool_:
        return ir.Cast(word, t)
    if not isinstance(t, DType) or t.bits > 32:
        raise c.error(f"@rpc: exported function '{name}' takes a {t}, which one 32-bit "
                      "wavelet of an RPC call cannot carry", pos)
    if t.bits == 32:
        return word if t is U32 else ir.Bitcast(word, t)
    if not t.is_float:
        return ir.Cast(word, t)
    return ir.Bitcast(ir.Cast(word, U16), t)


def _serve(c, pe, ident: int, pos) -> None:
    """Bind data task ID `ident` to an RPC server of the PE program's exported functions."""
    ids = _ids(c, [e.name for e in pe.exports])
    fns = [(ids[e.name], e.name, pe.functions[e.fn]) for e in pe.exports
           if isinstance(e, ir.ExportFunc)]
    count, fid = pe.fresh("rpc.count"), pe.fresh("rpc.id")
    pe.symbols[count] = ir.Symbol(count, U16, ())
    pe.symbols[fid] = ir.Symbol(fid, U32, ())
    most = max((len(f.params) for _, _, f in fns), default=0)
    args = pe.fresh("rpc.args")
    if most:
        pe.symbols[args] = ir.Symbol(args, U32, (most,))
    word = ir.Local(pe.fresh("rpc.word"), U32)
    n = ir.Load(count, (), U16)
    known = ir.Load(fid, (), U32)

    def call(k, name, f):
        return ir.Call(f.name, tuple(_argument(ir.Load(args, (ir.Const(i, I32),), U32), t,
                                               name, c, pos)
                                     for i, (_, t) in enumerate(f.params)))

    def named(k, x):
        return ir.Bin("==", x, ir.Const(k, U32), DType.bool_)

    def either(tests):
        out = ir.Const(False, DType.bool_)
        for t in tests:
            out = ir.Bin("or", out, t, DType.bool_)
        return out

    now = tuple(ir.If(named(k, word), (call(k, name, f),)) for k, name, f in fns
                if not f.params)
    first = (ir.Assign(fid, (), word),) + now + (
        ir.If(either(named(k, word) for k, _, f in fns if f.params),
              (ir.Assign(count, (), ir.Const(1, U16)),)),)
    done = either(ir.Bin("and", named(k, known), ir.Bin("==", n, ir.Const(len(f.params), U16),
                                                         DType.bool_), DType.bool_)
                  for k, _, f in fns if f.params)
    rest = ()
    if most:
        dispatch = tuple(ir.If(named(k, known), (call(k, name, f),)) for k, name, f in fns
                         if f.params)
        rest = (ir.Assign(args, (ir.Cast(ir.Bin("-", n, ir.Const(1, U16), U16), I32),), word),
                ir.If(done, dispatch + (ir.Assign(count, (), ir.Const(0, U16)),),
                      (ir.Assign(count, (), ir.Bin("+", n, ir.Const(1, U16), U16)),)))
    body = (ir.If(ir.Bin("==", n, ir.Const(0, U16), DType.bool_), first, rest),)
    fname = pe.fresh("rpc.server")
    pe.functions[fname] = ir.Function(fname, ((word.name, U32),), None, body)
    color = ident if c.arch == "wse2" else -1
    if c.arch == "wse3":
        pe.queue_uses.append((("input", ident), None, pos, "@rpc"))
    pe.tasks[ident] = ir.Task(fname, "data", ident, color)
