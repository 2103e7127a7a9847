"""The package's import layering, read from the source (AST only, nothing is imported).

Layers, bottom to top; a module imports only from layers below its own, or from its own layer
where that layer allows it:

  0 errors, types, hardware
  1 dsd, fabric, memcpy, diagnostics, opspec   (the fabric's facts and the op signatures)
  2 ir, ops, routes
  3 layout, tile_classes, artifacts, frontend  (what both front ends build on)
  4 the front ends (csl, dsl), the engine, the reference interpreter: none imports another
  5 runtime, the engine-vs-reference checker, compat, cli, the package itself

Imports inside functions count like any other (they would hide a circle), and so does one under
`if TYPE_CHECKING:` for the layer rule, but not for the circle rule (it never runs).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "wsejax"

# (module prefix, layer, family); the longest matching prefix wins
LAYERS = [
    ("wsejax.errors", 0, "base"), ("wsejax.types", 0, "base"), ("wsejax.hardware", 0, "base"),
    ("wsejax.cb16", 0, "base"), ("wsejax.progress", 0, "base"),
    ("wsejax.dsd", 1, "model"), ("wsejax.fabric", 1, "model"), ("wsejax.memcpy", 1, "model"),
    ("wsejax.diagnostics", 1, "model"), ("wsejax.opspec", 1, "model"),
    ("wsejax.trace", 1, "model"), ("wsejax.fpexc", 1, "model"),
    ("wsejax.ir", 2, "ir"), ("wsejax.ops", 2, "ir"), ("wsejax.routes", 2, "ir"),
    ("wsejax.switches", 2, "ir"), ("wsejax.ir_router", 2, "ir"),
    ("wsejax.ir_collectives", 2, "ir"), ("wsejax.ir_memory", 2, "ir"), ("wsejax.ir_calls", 2, "ir"),
    ("wsejax.layout", 3, "program"), ("wsejax.tile_classes", 3, "program"),
    ("wsejax.artifacts", 3, "program"), ("wsejax.frontend", 3, "program"),
    ("wsejax.csl", 4, "csl"), ("wsejax.dsl", 4, "dsl"), ("wsejax.engine", 4, "engine"),
    ("wsejax.reference", 4, "reference"),
    ("wsejax.engine.check", 5, "host"), ("wsejax.runtime", 5, "host"),
    ("wsejax.compat", 5, "host"), ("wsejax.cli", 5, "host"), ("wsejax", 5, "host"),
    ("wsejax.sdklayout", 5, "host"),
]
# layers whose modules may import each other (acyclically); in the others, only a family's own
SHARED_LAYERS = {0, 1, 2, 3, 5}


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _known(name: str) -> str | None:
    """The module of `name`, or of the longest package prefix of it, if it is ours."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return inside


def _imports(module: str, path: pathlib.Path) -> list[tuple[str, bool]]:
    """(imported module of ours, runs at import or call time) for each import in `module`."""
    tree = ast.parse(path.read_text(), str(path))
    static_only = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            subs = [f"{base}.{alias.name}" for alias in node.names]
            names = subs if all(s in MODULES for s in subs) else [base]
        for name in names:
            target = _known(name)
            if target is not None and target != module:
                found.append((target, id(node) not in static_only))
    return found


EDGES = {m: _imports(m, p) for m, p in MODULES.items()}


def _layer(module: str) -> tuple[int, str]:
    best = max((prefix for prefix, _, _ in LAYERS
                if module == prefix or module.startswith(prefix + ".")), key=len)
    return next((layer, family) for prefix, layer, family in LAYERS if prefix == best)


def test_every_module_has_a_layer():
    assert len(MODULES) > 20
    for module in MODULES:
        _layer(module)


def test_no_import_reaches_up_or_across():
    bad = []
    for module, imports in EDGES.items():
        layer, family = _layer(module)
        for target, _ in imports:
            t_layer, t_family = _layer(target)
            if t_layer > layer or (t_layer == layer and layer not in SHARED_LAYERS
                                   and t_family != family):
                bad.append(f"{module} (layer {layer}, {family}) imports {target} "
                           f"(layer {t_layer}, {t_family})")
    assert not bad, "\n".join(bad)


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph`: its strongly connected components of two or more modules
    (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_import_circle():
    graph = {m: {t for t, runs in imports if runs} for m, imports in EDGES.items()}
    circles = _circles(graph)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("graph, circles", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"a2"}, "a2": {"b"}, "b": {"a2"}, "c": {"d"}, "d": {"c"}}, [["a2", "b"], ["c", "d"]]),
])
def test_the_circle_finder_finds_every_circle(graph, circles):
    assert _circles(graph) == circles


def test_imports_inside_functions_and_type_checking_are_seen(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text("from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from wsejax.runtime import SdkRuntime\n"
                    "def f():\n    from wsejax import ir\n    from . import lower\n")
    found = _imports("wsejax.engine.probe", path)
    assert ("wsejax.runtime", False) in found          # an annotation only
    assert ("wsejax.ir", True) in found                # runs when f is called
    assert any(t.startswith("wsejax.engine") and runs for t, runs in found)
