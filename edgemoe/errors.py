"""The project's error types: what a user can get wrong, told in one line.

Every error a user can cause (a bad config, weights or image, an unknown task, a missing tool,
a device that does not answer) derives from :class:`EdgemoeError`. The command lines turn one
into a single ``error: ...`` line on stderr and exit status 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


class EdgemoeError(Exception):
    """Bad input or an unusable environment, reported in one line.

    Args:
        message: one line saying what was wrong, where, and what would fix it.
        details: longer material (every file of a long list, ...), shown with ``--verbose``.
    """

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = list(details)


class ToolMissing(EdgemoeError):
    """A program a back end needs (g++, Verilator, yosys) is not installed."""


LISTED = 3
"""How many items of a long list an error message names."""


def listing(items: Sequence[str], limit: int = LISTED, sep: str = ", ") -> str:
    """``items`` joined by ``sep``, the first ``limit`` only and a count of the rest when longer.

    Keeps an error message one readable line; the full list belongs in ``details``.
    """
    shown = sep.join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def reason(e: BaseException) -> str:
    """What a file parser raised, as a short phrase for a one-line message."""
    text = (str(e).splitlines() or [""])[0][:160]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def report(prog: str, error: EdgemoeError, verbose: bool = False) -> None:
    """``error`` as one line on stderr (``prog: error: ...``), its details too when ``verbose``."""
    first, *rest = str(error).splitlines() or [type(error).__name__]
    details = [*rest, *error.details]
    hint = f" (--verbose shows {len(details)} lines of detail)" if details and not verbose else ""
    print(f"{prog}: error: {first}{hint}", file=sys.stderr)
    if verbose:
        for line in details:
            print(f"  {line}", file=sys.stderr)


def exit_status(prog: str, command: Callable[[], int], verbose: bool = False) -> int:
    """Run a command line's ``command``: its status, or 2 after :func:`report` of an EdgemoeError."""
    try:
        return command()
    except EdgemoeError as e:
        report(prog, e, verbose)
        return 2
