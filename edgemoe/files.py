"""Writing generated files: only when their text changes, and never half-written."""

from __future__ import annotations

import os
from pathlib import Path


def write_if_changed(path: str | Path, text: str, mode: int | None = None) -> Path:
    """Write ``text`` to ``path`` unless it already holds it (keeps make's timestamps stable).

    The text goes to a temporary file renamed over ``path``, so a build or test running in
    parallel never reads or executes a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        if mode is not None:
            tmp.chmod(mode)
        os.replace(tmp, path)
    return path


SOURCE_TREE_ENV = "EDGEMOE_SOURCE_TREE"
"""Names a copy of the checkout's hw/rtl and hls that the simulators read instead (a mutant)."""


def source_tree(repo: Path) -> Path:
    """Where hw/rtl and hls are read from and their simulation builds go.

    ``repo`` itself, or the folder named by ``EDGEMOE_SOURCE_TREE``: a copy holding ``hw/rtl``
    and ``hls`` (edgemoe.mutants runs the benches on mutated copies this way, never editing the
    checkout). Its builds go to its own ``build/`` so they never replace the checkout's.
    """
    copy = os.environ.get(SOURCE_TREE_ENV)
    return Path(copy).resolve() if copy else repo
