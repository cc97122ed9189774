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
