"""The packages form layers that import downwards only, and the core stands alone.

``labcore`` ← ``vradam`` ← ``workers`` ← ``studies`` ← ``service``: a module may import
its own package or any package to its left, never one to its right. Every import counts,
including those inside functions and under ``TYPE_CHECKING``, because each one is a
dependency a reader has to follow.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("labcore", "vradam", "workers", "studies", "service")
RANK = {name: i for i, name in enumerate(LAYERS)}
CORE_MAY_IMPORT = frozenset(sys.stdlib_module_names) | {"pydantic"}


def imported_top_levels(path: Path) -> set[str]:
    """Top-level names of every absolute import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def package_graph(root: Path = ROOT) -> dict[str, dict[str, list[str]]]:
    """For each layer: the other project packages it imports, with the importing files."""
    graph: dict[str, dict[str, list[str]]] = {name: {} for name in LAYERS}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            for name in imported_top_levels(path) & set(LAYERS) - {package}:
                graph[package].setdefault(name, []).append(str(path.relative_to(root)))
    return graph


def find_cycle(graph: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """A cycle between packages as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in graph.get(node, {}):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*stack, nxt])):
                return found
        state[node] = 2
        return None

    for start in graph:
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_cycle_between_packages() -> None:
    graph = package_graph()
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


@pytest.mark.parametrize("package", LAYERS)
def test_imports_go_downwards_only(package: str) -> None:
    upward = {
        name: files
        for name, files in package_graph()[package].items()
        if RANK[name] > RANK[package]
    }
    assert not upward, f"{package} imports layers above it: {upward}"


def test_core_uses_the_standard_library_only() -> None:
    for path in sorted((ROOT / "labcore").rglob("*.py")):
        foreign = imported_top_levels(path) - CORE_MAY_IMPORT - {"labcore"}
        assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


def test_cycle_finder_finds_the_old_cycle(tmp_path: Path) -> None:
    # The tree before the core existed: workers imported studies.errors while studies
    # imported workers.results. The checker must see that cycle and the upward import.
    for package, body in {
        "workers": "from studies.errors import SpecError\n",
        "studies": "from workers.results import Outcome\n",
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "mod.py").write_text(body)
    for package in set(LAYERS) - {"workers", "studies"}:
        (tmp_path / package).mkdir()
    graph = package_graph(tmp_path)
    assert find_cycle(graph) in (
        ["workers", "studies", "workers"],
        ["studies", "workers", "studies"],
    )
    assert "studies" in graph["workers"] and RANK["studies"] > RANK["workers"]
