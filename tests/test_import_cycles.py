"""semlink's modules import each other without cycles: the graph of module-level imports (those
that run when a module is first imported) is acyclic.

A cycle works only as long as each module of it reads the others' names late enough, and breaks
with a one-line reordering far from both; imports inside functions and under
``if TYPE_CHECKING:`` do not run at import time and are left out. The modules are read with
``ast``, not imported, so the test is fast and sees every module, heavy or not.
"""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

#: The import packages whose folders hold semlink's modules (setuptools package-dir maps
#: each to its own folder: simulator/, channels/, modulation/).
ROOTS = ("semlink", "semlink.channels", "semlink.modulation")


def _modules() -> dict[str, Path]:
    """Every module and package of semlink, by dotted name, with its file."""
    found: dict[str, Path] = {}
    for root in ROOTS:
        folder = Path(importlib.util.find_spec(root).submodule_search_locations[0])
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            # only folders that are packages (a data folder's script is no module)
            if not all((folder.joinpath(*parts[:i]) / "__init__.py").is_file()
                       for i in range(len(parts))):
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([root, *parts])] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _import_time_imports(body: list[ast.stmt]):
    """The import statements of ``body`` that run when the module is imported: at the top, in
    class bodies, in if/try/with blocks; not in functions or under ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_time_imports(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                block = getattr(node, field, None)
                if isinstance(block, list):
                    yield from _import_time_imports(block)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
             modules: dict[str, Path]) -> set[str]:
    """The semlink modules an import statement runs: the module it names (``from P import M``
    names the submodule ``P.M``), and the packages above it that ``module`` is not inside (those
    are imported before ``module`` itself, whatever it imports)."""
    if isinstance(node, ast.Import):
        named = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the package of ``module``
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[:len(package) - (node.level - 1)]
            base = ".".join(package + ([base] if base else []))
        named = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                 for a in node.names]
    targets = set()
    for name in named:
        if name in modules:
            targets.add(name)
        parts = name.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in modules and not (module == parent or module.startswith(parent + ".")):
                targets.add(parent)
    return targets


def import_graph() -> dict[str, set[str]]:
    """``{module: semlink modules its module-level imports run}`` for every semlink module."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = set()
        for node in _import_time_imports(tree.body):
            graph[name] |= _targets(node, name, path.name == "__init__.py", modules)
        graph[name].discard(name)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first search of ``graph`` closes (each as ``[a, b, ..., a]``); empty
    exactly when ``graph`` is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


GRAPH = import_graph()


def test_the_graph_holds_every_module_and_their_imports():
    """A guard against a walk that finds nothing (the test below would pass vacuously)."""
    assert {"semlink", "semlink.sweep", "semlink.plan", "semlink.channels.awgn",
            "semlink.modulation.qam", "semlink.links.semantic"} <= set(GRAPH)
    assert len(GRAPH) >= 70
    assert {"semlink.executors", "semlink.plan"} <= GRAPH["semlink.sweep"]
    assert "semlink.plan" in GRAPH["semlink.executors"]
    # imports inside functions and under TYPE_CHECKING do not count
    assert "semlink.metrics.fid" not in GRAPH["semlink.sweep"]


MODULES = dict.fromkeys(["semlink", "semlink.x", "semlink.channels", "semlink.channels.awgn",
                         "semlink.channels.ofdm"], Path())


@pytest.mark.parametrize("statement, module, expected", [
    # a submodule's import runs the packages above it too...
    ("from semlink.channels.awgn import AWGN", "semlink.x",
     {"semlink.channels", "semlink.channels.awgn"}),
    ("import semlink.channels.awgn", "semlink.x", {"semlink.channels", "semlink.channels.awgn"}),
    ("from semlink.channels import awgn", "semlink.x",
     {"semlink.channels", "semlink.channels.awgn"}),
    # ...except those the importing module is inside (they are imported before it)
    ("from semlink.channels.awgn import AWGN", "semlink.channels.ofdm", {"semlink.channels.awgn"}),
    ("from .awgn import AWGN", "semlink.channels.ofdm", {"semlink.channels.awgn"}),
    # a name from its own package's __init__ is an edge to it (a cycle when that imports it)
    ("from semlink.channels import AWGN", "semlink.channels.ofdm", {"semlink.channels"}),
    ("from semlink import __version__", "semlink.x", {"semlink"}),
    ("import numpy", "semlink.x", set()),
])
def test_the_modules_an_import_runs(statement, module, expected):
    (node,) = ast.parse(statement).body
    assert _targets(node, module, False, MODULES) == expected


def test_semlink_modules_import_each_other_without_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycle among module-level imports: " + "; ".join(
        " -> ".join(cycle) for cycle in cycles) + (
        " (move the names both need to a module below them, as semlink.plan holds the tasks "
        "semlink.sweep and semlink.executors share, or import inside the function that needs "
        "them)")


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c", "a"]]),
])
def test_find_cycles_names_each_cycle(graph, expected):
    assert find_cycles(graph) == expected


def test_type_checking_and_function_imports_are_left_out():
    tree = ast.parse("from typing import TYPE_CHECKING\nimport a\n"
                     "if TYPE_CHECKING:\n    import b\nelse:\n    import c\n"
                     "def f():\n    import d\n"
                     "class K:\n    import e\n"
                     "try:\n    import f\nexcept ImportError:\n    import g\n")
    names = [alias.name for node in _import_time_imports(tree.body) for alias in node.names]
    assert names == ["TYPE_CHECKING", "a", "c", "e", "f", "g"]
