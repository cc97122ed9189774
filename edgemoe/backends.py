"""The back ends of ``edgemoe infer`` and what they return.

A back end computes the backbone of one task (and, if it can, the task head) for one image.
:func:`register_backend` names a factory that is imported only when the back end is chosen, so
the command line stays fast and a back end whose tools are missing does not break the others::

    register_backend("reference", "edgemoe.reference_backend:prepare",
                     "bit-exact fixed-point model of the accelerator (numpy)")

A factory is called as ``prepare(cfg, weights)`` and returns a callable
``run(image [C, H, W] float32, task: int) -> TaskOutput``. When ``TaskOutput.head`` is None
the float task head runs on the host from the returned tokens, as on the board.

This module sits below every back end (they import :class:`TaskOutput` from here) and below
``edgemoe.infer``, which runs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgemoe.config import Config


@dataclass
class TaskOutput:
    """What a back end returns for one task.

    Args:
        tokens: backbone output after the last block, float32 [N, D] (class token first).
        head: task head output, float32 [C_task, H, W]; None lets the host run the float head.
        info: anything worth reporting (saturation counts, cycles, ...), printed in the summary.
        arrays: extra arrays for ``outputs.npz``, saved as ``<key>_<task>`` (e.g. ``tokens_raw``:
            the raw backbone tokens that back ends compare bit for bit).

    A runner may also have a method ``finish(out: Path) -> list[Path]``, called once after the
    last task to print and write its own reports into the output folder.
    """

    tokens: np.ndarray
    head: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


Runner = Callable[[np.ndarray, int], TaskOutput]
Factory = Callable[[Config, dict[str, np.ndarray]], Runner]


@dataclass(frozen=True)
class Backend:
    name: str
    factory: str | Factory  # "module:function" (imported on use) or the function itself
    help: str

    def load(self) -> Factory:
        if callable(self.factory):
            return self.factory
        module, _, func = self.factory.partition(":")
        return getattr(importlib.import_module(module), func)


BACKENDS: dict[str, Backend] = {}


def register_backend(name: str, factory: str | Factory, help: str) -> None:
    """Make ``name`` a choice of ``edgemoe infer --backend`` (see the module docstring)."""
    BACKENDS[name] = Backend(name, factory, help)


register_backend("float", "edgemoe.float_backend:prepare", "the float PyTorch golden model (M3ViT)")
register_backend(
    "reference",
    "edgemoe.reference_backend:prepare",
    "bit-exact fixed-point model of the accelerator (numpy); float heads; writes fidelity.json",
)
register_backend(
    "csim",
    "edgemoe.host.runtime:prepare_csim",
    "the C-simulated HLS top (g++) behind a simulated PYNQ device, driven by the host runtime",
)
register_backend(
    "sim-reference",
    "edgemoe.host.runtime:prepare_sim_reference",
    "the fixed-point reference behind a simulated PYNQ device, driven by the host runtime",
)
register_backend(
    "rtl",
    "edgemoe.host.runtime:prepare_rtl",
    "the RTL top under Verilator behind a simulated PYNQ device, driven by the host runtime; perf.json",
)
register_backend(
    "board",
    "edgemoe.host.runtime:prepare_board",
    "a PYNQ board running the bitstream named by $EDGEMOE_BITSTREAM (host runtime, float heads)",
)
