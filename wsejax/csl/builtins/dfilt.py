"""`@dfilt(fabin, .{ .async = true, ... })` (spec 8): a data filter on an input queue.

Started like an asynchronous operation on its fabin (a fabin_dsd, or a dsr_src1 it was loaded
into with `.async = true`), it drops the data wavelets that reach the queue until it has seen
`extent` control wavelets (the fabin's length), then completes and fires `.activate` /
`.unblock`. Its config takes `.async = true` (required), the hooks and `.ut_id`; `.index` and
`.on_control` do not apply. It becomes `ir.DsdOp("dfilt", fabin, ())`: the fabin is the
op's one operand, written where a destination goes.

The SDK does not say what becomes of the control wavelets it counts [U]: here the filter takes
them (as an `.on_control` operation takes the one that ends it), so the control tasks they
name do not run while it is active; control wavelets after the last one it counts, and all
wavelets after its end, are received as usual.
"""

from __future__ import annotations

from wsejax import ir
from wsejax.csl.builtins._registry import builtin, nargs, rule
from wsejax.csl.builtins.dsd_ops import _operand_info
from wsejax.csl.builtins.dsrs import DsrVal, op_config_of_dsrs
from wsejax.csl.builtins.op_config import op_config
from wsejax.csl.values import DsdVal, DsdVarRef, StructVal, describe
from wsejax.frontend.fabric import (
    check_async,
    check_dfilt_async,
    check_dfilt_options,
    check_dfilt_source,
)

__all__: list[str] = []


@builtin("dfilt")
def _dfilt(c, node, env):
    nargs(c, node, 1, 2)
    fn = c.need_fn(env, node.pos, "@dfilt")
    pe = env.module.pe
    v = c.ev(node.args[0], env)
    cfg = c.ev(node.args[1], env) if len(node.args) == 2 else None
    operand = _operand(c, node, pe, v)
    config = _config(c, node, env, cfg)
    if isinstance(v, DsrVal):
        config = op_config_of_dsrs(c, node, [pe.dsrs[v.name]], config)
    rule(c, node, check_dfilt_async, config is not None and config.async_, pos=node.pos)
    rule(c, node, check_async, node.name, [_operand_info(c, v, node, pe)], pos=node.pos)
    fn.emit(ir.DsdOp("dfilt", operand, (), pe.site(), config))
    return None


def _operand(c, node, pe, v) -> ir.DsdOperand:
    """The fabin the filter acts on: a fabin_dsd, or a dsr_src1 holding one."""
    if isinstance(v, DsrVal):
        rec = pe.dsrs.get(v.name)
        if rec is None:
            raise c.error(f"@dfilt: the {v.type} {v.id} is used before any @load_to_dsr "
                          "loads it", node.args[0].pos)
        if v.type != "dsr_src1" or rec.kind != "fabin_dsd":
            raise c.error(f"@dfilt takes a fabin_dsd or a dsr_src1 loaded with one, got a "
                          f"{v.type} holding a {rec.kind}", node.args[0].pos)
        return ir.DsdOperand(ir.DsdVar(v.name))
    if isinstance(v, (DsdVal, DsdVarRef)):
        d = c.dsd_of(v, node.pos)
        rule(c, node, check_dfilt_source, d.kind if d.kind == "fabin_dsd" else f"a {d.kind}")
        return ir.DsdOperand(d.expr)
    rule(c, node, check_dfilt_source, describe(v))


def _config(c, node, env, cfg) -> ir.OpConfig | None:
    """The filter's own config struct (spec 5.4 options but `.index` and `.on_control`)."""
    if cfg is None:
        return None
    if not isinstance(cfg, StructVal):
        raise c.error(f"@dfilt takes a config struct like .{{ .async = true }}, got "
                      f"{describe(cfg)}", node.args[1].pos)
    rule(c, node, check_dfilt_options, cfg.fields, pos=node.pos)
    return op_config(c, cfg, node, env)
