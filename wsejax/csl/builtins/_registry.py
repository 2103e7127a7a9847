"""The table of CSL builtins (`@name(...)`): each family module registers its handlers with
`@builtin(name)`; `call` looks them up."""

from __future__ import annotations

from wsejax.csl import ast
from wsejax.csl.env import Env
from wsejax.frontend import RuleError

HANDLERS: dict = {}

def builtin(*names):
    def register(f):
        for n in names:
            HANDLERS[n] = f
        return f
    return register


def call(c, node: ast.Builtin, env: Env):
    h = HANDLERS.get(node.name)
    if h is None:
        raise c.error(f"unknown builtin @{node.name}", node.pos)
    return h(c, node, env)


def nargs(c, node, *counts):
    if len(node.args) not in counts:
        want = " or ".join(map(str, counts))
        raise c.error(f"@{node.name} takes {want} argument(s), got {len(node.args)}", node.pos)


def args(c, node, env):
    return [c.ev(a, env) for a in node.args]



def rule(c, node, check, *args, offset: int = 0, pos=None):
    """`check(*args)`, a front-end rule; its RuleError becomes a CslError at `pos`, else at
    the argument the rule blames (`node.args[offset + operand]`), else at `node`."""
    try:
        return check(*args)
    except RuleError as err:
        if pos is None:
            k = None if err.operand is None else offset + err.operand
            pos = node.args[k].pos if k is not None and k < len(node.args) else node.pos
        raise c.error(str(err), pos) from None
