"""Progress lines on stderr, shared by the long-running commands (infer, eval, train, perf --sweep)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def log(msg: str) -> None:
    print(f"[edgemoe] {msg}", file=sys.stderr, flush=True)


@contextmanager
def stage(what: str) -> Iterator[None]:
    """Print ``what`` to stderr before a step and its duration after it."""
    log(f"{what} ...")
    t0 = time.perf_counter()
    yield
    log(f"{what}: done in {time.perf_counter() - t0:.2f} s")
