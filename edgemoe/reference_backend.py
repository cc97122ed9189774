"""The ``reference`` back end of ``edgemoe infer``: the fixed-point backbone, float heads on the host.

For each task it runs :class:`~edgemoe.golden.fixed.model.FixedM3ViT`, returns the tokens as
float for the host's task head and the raw tokens (``tokens_raw_<task>`` in ``outputs.npz``, what
other back ends must equal bit for bit), and compares every block with the float64 golden model;
:meth:`ReferenceRunner.finish` prints the fidelity report and writes ``fidelity.json`` and
``fidelity_sqnr.png`` into the output folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edgemoe.backends import TaskOutput
from edgemoe.config import Config
from edgemoe.fidelity import FidelityReport, TaskFidelity, compare
from edgemoe.golden.fixed.model import FixedM3ViT


class ReferenceRunner:
    """Callable ``(image [C, H, W], task) -> TaskOutput``; see the module docstring.

    Args:
        cfg: the configuration.
        weights: float weights by project name (head tensors are used by the host's heads only).
        fidelity: also run the float64 golden backbone and report fixed-vs-float per block.
    """

    def __init__(self, cfg: Config, weights: Mapping[str, np.ndarray], fidelity: bool = True) -> None:
        self.cfg = cfg
        self.weights = weights
        self.model = FixedM3ViT(cfg, weights)
        self.fidelity = fidelity
        self.tasks: list[TaskFidelity] = []
        self._float = None

    def __call__(self, image: np.ndarray, task: int) -> TaskOutput:
        out = self.model.forward(image, task)
        sat = out.log.saturated()
        info: dict[str, object] = {"saturated": sum(sat.values())}
        if self.fidelity:
            if self._float is None:
                from edgemoe.golden.model import M3ViT

                self._float = M3ViT.from_weights(self.cfg, dict(self.weights)).double().eval()
            tf = compare(self.cfg, self.weights, self.model, image, task, out, self._float)
            self.tasks.append(tf)
            info["SQNR"] = f"{tf.blocks[-1].sqnr_db:.1f} dB"
            info["top-k diff"] = tf.routing_mismatch
        return TaskOutput(
            tokens=self.model.tokens_float(out).astype(np.float32),
            head=None,
            info=info,
            arrays={"tokens_raw": out.tokens.astype(np.int64)},
        )

    def report(self) -> FidelityReport:
        q = self.model.weights
        return FidelityReport(self.cfg.name, list(self.tasks), q.log.as_dict(), q.report())

    def finish(self, out_dir: str | Path) -> list[Path]:
        """Print the fidelity report; write ``fidelity.json`` and ``fidelity_sqnr.png`` into ``out_dir``."""
        if not self.tasks:
            return []
        report = self.report()
        print(report.text())
        return list(report.write(out_dir))


def prepare(cfg: Config, weights: Mapping[str, np.ndarray]) -> ReferenceRunner:
    """Factory of the ``reference`` back end (``edgemoe.backends.register_backend``)."""
    return ReferenceRunner(cfg, weights)
