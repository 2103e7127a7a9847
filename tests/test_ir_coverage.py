"""Both interpreters of the IR (the engine's lowering and the reference) handle every node, and
the CSL evaluator every node of the CSL syntax tree.

Each dispatches by node class to a method named after it (`stmt_While`, `expr_Bin`,
`dsd_SetBase`; the evaluator's `ev_Call`, `exec_While`): a node class added to `wsejax.ir` or
`wsejax.csl.ast` without a handler fails here, not in the first program that uses it.
"""

from __future__ import annotations

import typing

import pytest

from wsejax import ir
from wsejax.csl import ast as csl_ast
from wsejax.csl.comptime import Compiler
from wsejax.engine.lower import Lowerer
from wsejax.reference import Reference

FAMILIES = [("stmt", ir.Stmt), ("expr", ir.Expr), ("dsd", ir.DsdExpr)]
NODES = [(prefix, cls) for prefix, union in FAMILIES for cls in typing.get_args(union)]


def test_the_node_families_are_read():
    names = {cls.__name__ for _, cls in NODES}
    assert {"While", "DsdOp", "Bin", "Load", "SetBase", "DsdLit"} <= names
    assert len(NODES) >= 30


@pytest.mark.parametrize("interpreter", [Lowerer, Reference], ids=lambda c: c.__name__)
@pytest.mark.parametrize("prefix, node", NODES, ids=lambda v: getattr(v, "__name__", v))
def test_every_node_has_a_handler(interpreter, prefix, node):
    handler = getattr(interpreter, f"{prefix}_{node.__name__}", None)
    assert callable(handler), f"{interpreter.__name__} has no {prefix}_{node.__name__}"


@pytest.mark.parametrize("interpreter", [Lowerer, Reference], ids=lambda c: c.__name__)
def test_no_handler_names_a_missing_node(interpreter):
    known = {f"{prefix}_{cls.__name__}" for prefix, cls in NODES}
    stray = [name for name in dir(interpreter)
             if name.split("_", 1)[0] in ("stmt", "expr", "dsd") and "_" in name
             and name[len(name.split("_", 1)[0]) + 1:][:1].isupper() and name not in known]
    assert not stray, f"handlers for nodes that are not in wsejax.ir: {stray}"


def _classes(module, union) -> list[type]:
    """The classes of a Union alias, forward references resolved in `module`."""
    return [getattr(module, a.__forward_arg__) if isinstance(a, typing.ForwardRef) else a
            for a in typing.get_args(union)]


CSL_NODES = ([("ev", cls) for cls in _classes(csl_ast, csl_ast.Expr)]
             + [("exec", cls) for cls in _classes(csl_ast, csl_ast.Stmt)])


def test_the_csl_node_families_are_read():
    assert {"Ident", "Call", "Block", "While", "Assign"} <= {c.__name__ for _, c in CSL_NODES}


@pytest.mark.parametrize("prefix, node", CSL_NODES, ids=lambda v: getattr(v, "__name__", v))
def test_the_csl_evaluator_handles_every_node(prefix, node):
    assert callable(getattr(Compiler, f"{prefix}_{node.__name__}", None)), (
        f"the CSL evaluator has no {prefix}_{node.__name__}")
