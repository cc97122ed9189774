"""Writing files: never half-written, generated ones only when their text changes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgemoe.errors import EdgemoeError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to: renamed over ``path`` on success, removed on failure.

    A reader (a build or test running in parallel, a user after an interrupted run) sees the old
    file or the complete new one, never part of one. The temporary name keeps the suffix, so
    writers that pick the format from it (``np.savez``, ``savefig``) write the same bytes.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_if_changed(path: str | Path, text: str, mode: int | None = None) -> Path:
    """Write ``text`` to ``path`` unless it already holds it (keeps make's timestamps stable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        with atomic_path(path) as tmp:
            tmp.write_text(text)
            if mode is not None:
                tmp.chmod(mode)
    return path


def check_output_folder(folder: str | Path, option: str = "--out") -> Path:
    """``folder`` if it exists as a writable folder or can be created; EdgemoeError otherwise.

    Called before any work, so a run that could not save its results does not start; creates nothing.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is not a folder" if existing == folder else f"cannot be created: {existing} is not a folder"
        raise EdgemoeError(f"{option} {folder} {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == folder else f" (in {existing})"
        raise EdgemoeError(f"{option} {folder}: no permission to write{where}")
    return folder


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
