"""The house in order: no import circle anywhere in webapp/, and a short top level.

The direction between packages is import-linter's job (`lint-imports`, contracts in
pyproject.toml); a circle between two modules of one package is not a layer question, so it
is checked here over the same import graph (grimp, which import-linter builds on), deferred
imports inside functions and TYPE_CHECKING blocks included.
"""

from __future__ import annotations

from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
# 16: tool_policy.py sits between environments.py and trail/ (its own import-linter layer).
MAX_TOP_LEVEL_MODULES = 16


def import_circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return circles


def test_no_import_circle_anywhere_in_webapp():
    graph = grimp.build_graph("webapp")
    assert import_circles(graph) == []


def test_the_circle_finder_sees_a_circle():
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert import_circles(graph) == [["pkg.a", "pkg.b"]]


def test_the_top_level_holds_only_the_platform():
    top = sorted(path.stem for path in (ROOT / "webapp").glob("*.py") if path.stem != "__init__")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_every_package_is_described_in_the_architecture_document():
    document = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    packages = sorted(path.parent.name for path in (ROOT / "webapp").glob("*/__init__.py"))
    missing = [name for name in packages if f"webapp/{name}/" not in document]
    assert missing == []
