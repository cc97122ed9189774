"""Imports flow one way: no cycle among the package's modules, counting imports inside functions.

A function-level import hides a cycle from Python's start-up but not from a reader: the two
modules still depend on each other. The test reads every module's source with ``ast`` (nothing is
imported) and looks for a cycle in the graph of ``import`` and ``from ... import`` statements.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from edgemoe.paths import REPO


def package_modules() -> dict[str, Path]:
    """Module name -> source file, for every package the project installs (pyproject's package-dir)."""
    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    modules = {}
    dirs = setup["package-dir"]
    for package in setup["packages"]:
        # a package lies in its own package-dir entry, or below its closest parent's
        parent = max((p for p in dirs if package == p or package.startswith(p + ".")), key=len)
        folder = REPO / dirs[parent] / package[len(parent) + 1 :].replace(".", "/")
        for path in sorted(folder.glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source (type-checking blocks too)."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for succ in sorted(graph[node]):
            if state.get(succ) == 1:
                return path[path.index(succ) :] + [succ]
            if succ not in state and (cycle := visit(succ)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    graph["c"] = set()
    assert find_cycle(graph) is None


def test_function_level_and_relative_imports_are_edges(tmp_path: Path) -> None:
    src = tmp_path / "runtime.py"
    src.write_text("from .device import x\n\ndef f():\n    from edgemoe.golden import weights\n")
    modules = {m: src for m in ("edgemoe.host.runtime", "edgemoe.host.device", "edgemoe.golden.weights")}
    assert imported_modules("edgemoe.host.runtime", src, modules) == {
        "edgemoe.host.device",
        "edgemoe.golden.weights",
    }


def test_no_import_cycle() -> None:
    modules = package_modules()
    assert "edgemoe.golden.fixed.core" in modules and "edgemoe.host.device" in modules, sorted(modules)
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    cycle = find_cycle(graph)
    if cycle:
        pytest.fail("import cycle: " + " -> ".join(cycle))
