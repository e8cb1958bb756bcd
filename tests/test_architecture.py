"""The package's import graph has no cycle and only points down the layer table of DESIGN.md.

Every ``import`` / ``from ... import`` of ``radis_utils`` counts, at module level, inside
functions and under ``if TYPE_CHECKING:``, relative or absolute. ``from .pkg import name`` is an
edge to ``pkg.name`` when that is a submodule, else to ``pkg`` (its ``__init__``); importing
``pkg.sub`` from outside ``pkg`` is an edge to ``pkg`` too, whose ``__init__`` runs first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = "radis_utils"

#: DESIGN.md's layer table (bottom up): a module imports only from its own layer or below.
LAYERS: dict[int, tuple[str, ...]] = {
    0: ("config", "runtime", "records", "paper", "verdicts"),
    1: ("prompts", "replies"),
    2: ("continuous_batching", "engines"),
    3: ("organism",),
    4: ("models", "gguf_backbone", "random_backbone", "data", "benchmark_files"),
    5: ("synthesis",),
    6: ("losses", "checkpoints", "trainer", "train", "memory"),
    7: ("evaluate",),
    8: ("observation", "ablation", "gradients"),
    9: ("summary", "calibration", "machines", "claims", "plots", "runbook", "browser", "study"),
}


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name (relative to the package, its root ``__init__`` as ``""``) -> file."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


def imports_of(name: str, tree: ast.AST, modules: set[str], is_package: bool) -> set[str]:
    """The package modules that module ``name`` imports anywhere in its ``tree``."""
    here = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    targets.append(alias.name[len(PACKAGE) + 1:])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".") if here else []
                if node.level - 1 > len(base):
                    raise ValueError(f"{name}: relative import beyond the package (line {node.lineno})")
                base = base[: len(base) - (node.level - 1)]
                target = _join(*base, node.module or "")
            elif node.module and (node.module == PACKAGE or node.module.startswith(PACKAGE + ".")):
                target = node.module[len(PACKAGE) + 1:]
            else:
                continue
            for alias in node.names:
                sub = _join(target, alias.name)
                targets.append(sub if sub in modules else target)
        for target in targets:
            if target not in modules:
                raise ValueError(f"{name} imports {PACKAGE}.{target}, which is not a module of the package")
            parts = target.split(".")
            # importing a.b.c runs a/__init__ and a/b/__init__ first (unless ``name`` is inside them)
            parents = [".".join(parts[:i]) for i in range(1, len(parts))]
            for module in (*parents, target):
                if module != name and not name.startswith(module + "."):
                    found.add(module)
    return found


def import_graph(package_dir: Path = ROOT / PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports, for every module under ``package_dir``."""
    files = module_files(package_dir)
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[name] = imports_of(name, tree, set(files), path.name == "__init__.py")
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it has none (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def shown(name: str) -> str:
    return name or PACKAGE


def layer_of(name: str) -> int:
    """The layer of a module: that of its top-level module or subpackage (the root ``__init__``: 0)."""
    top = name.split(".")[0]
    if not top:
        return 0
    for layer, names in LAYERS.items():
        if top in names:
            return layer
    raise KeyError(f"{PACKAGE}.{top} is in no layer of LAYERS (tests/test_architecture.py, DESIGN.md)")


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Edges that point to a higher layer, as ``a (layer i) -> b (layer j)``."""
    return [f"{shown(a)} (layer {layer_of(a)}) -> {shown(b)} (layer {layer_of(b)})"
            for a in sorted(graph) for b in sorted(graph[a]) if layer_of(b) > layer_of(a)]


# --- the finder itself can fail --------------------------------------------------------------

def test_find_cycle_names_a_cycle_in_a_synthetic_graph():
    graph = {"config": {"models"}, "models": {"organism"}, "organism": {"config"}, "plots": set()}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"config", "models", "organism"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"b", "c"}}) is None
    assert find_cycle({"a": {"a"}}) == ["a", "a"]


def test_function_level_and_relative_imports_are_edges(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from .high import g\n    return g\n")
    (pkg / "top.py").write_text("from radis_utils.sub.leaf import x\n")
    (pkg / "high.py").write_text("from . import low\nfrom .sub import leaf\nimport radis_utils.sub\n")
    (pkg / "sub" / "__init__.py").write_text("from .leaf import x\n")
    (pkg / "sub" / "leaf.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                         "    from ..low import f\nx = 1\n")
    graph = import_graph(pkg)
    assert graph == {"": set(), "low": {"high"}, "high": {"low", "sub.leaf", "sub"}, "top": {"sub", "sub.leaf"},
                     "sub": {"sub.leaf"}, "sub.leaf": {"low"}}
    assert find_cycle(graph) == ["high", "low", "high"]
    assert layer_violations({"config": {"models"}, "models": {"config"}}) == [
        "config (layer 0) -> models (layer 4)"]


# --- the real package ------------------------------------------------------------------------

def test_every_module_is_in_a_layer_and_every_layer_module_exists():
    graph = import_graph()
    tops = {name.split(".")[0] for name in graph if name}
    listed = {name for names in LAYERS.values() for name in names}
    assert tops == listed, (f"modules without a layer: {sorted(tops - listed)}; "
                            f"listed but absent: {sorted(listed - tops)}")


def test_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(shown(n) for n in cycle)


def test_imports_only_point_down_the_layers():
    bad = layer_violations(import_graph())
    assert not bad, "imports from a higher layer (DESIGN.md's table):\n" + "\n".join(bad)


@pytest.mark.parametrize("module", ["config"])
def test_ground_floor_imports_nothing_of_the_package(module):
    assert import_graph()[module] == set()
