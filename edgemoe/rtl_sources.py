"""The RTL source manifest: the modules and packages of ``hw/rtl`` and the files a top needs.

Simulation (``edgemoe.sim.runner``), lint and synthesis (``edgemoe.synth``) all read their file
lists from here, so they compile the same sources in the same order.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgemoe.files import source_tree
from edgemoe.paths import REPO

RTL_DIR = source_tree(REPO) / "hw" / "rtl"


class RtlSourceError(RuntimeError):
    """A top that is not in ``hw/rtl``, or modules and packages that depend on each other in a cycle."""


def _is_package(path: Path) -> bool:
    """Whether an hw/rtl file holds a package (``package <name>;``) rather than a module."""
    return re.search(r"^\s*package\s+\w+\s*;", strip_comments(path.read_text()), re.M) is not None


def rtl_modules() -> dict[str, Path]:
    """Every module of hw/rtl by name (one module per file)."""
    return {p.stem: p for p in sorted(RTL_DIR.glob("*.sv")) if not _is_package(p)}


def rtl_packages() -> dict[str, Path]:
    """Every hand-written package of hw/rtl by name (one package per file, named as the file).

    The generated ``edgemoe_pkg`` is not among them: every build writes it for its config and
    reads it first.
    """
    return {p.stem: p for p in sorted(RTL_DIR.glob("*.sv")) if _is_package(p)}


def sources_for(top: str) -> list[Path]:
    """The RTL files ``top`` needs, dependencies first.

    Dependencies are the modules a file instantiates and the hand-written packages it imports
    or names (``import fxp_func_pkg::*;``, ``fxp_func_pkg::clamp``); a package comes before the
    first file that uses it.
    """
    modules = rtl_modules()
    if top not in modules:
        raise RtlSourceError(f"no module '{top}' in {RTL_DIR} (known: {', '.join(modules) or 'none'})")
    packages = rtl_packages()
    files = {**modules, **packages}
    order: list[str] = []

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in stack:
            cycle = " -> ".join(stack + (name,))
            raise RtlSourceError(f"module instantiation or package import cycle: {cycle}")
        text = strip_comments(files[name].read_text())
        for pkg in packages:
            if pkg != name and re.search(rf"\b{pkg}\s*::", text):
                visit(pkg, stack + (name,))
        if name in modules:
            for other in modules:
                if other != name and re.search(rf"^\s*{other}\b\s*(#|\w)", text, re.M):
                    visit(other, stack + (name,))
        order.append(name)

    visit(top, ())
    return [files[n] for n in order]


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)
