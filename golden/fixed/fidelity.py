"""How far the fixed-point backbone drifts from float: per-block SQNR, saturations, routing changes.

:func:`compare` runs the fixed backbone (:class:`~edgemoe.golden.fixed.model.FixedM3ViT`) and
the float golden model on the same weights and image, per task, and returns a
:class:`FidelityReport`; :meth:`FidelityReport.text` is the console table,
:meth:`FidelityReport.write` writes ``fidelity.json`` and ``fidelity_sqnr.png``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgemoe.config import Config
from edgemoe.golden.fixed.core import to_float

if TYPE_CHECKING:
    from edgemoe.golden.fixed.model import FixedOutput


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantisation-noise ratio of ``test`` against ``reference``, in dB (inf if equal)."""
    ref = np.asarray(reference, dtype=np.float64)
    err = np.asarray(test, dtype=np.float64) - ref
    noise = float(np.sum(err * err))
    signal = float(np.sum(ref * ref))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


@dataclass
class BlockFidelity:
    """Fixed vs float tokens after one block (or after the patch embedding, ``block = -1``)."""

    block: int
    kind: str  # "embed", "dense" or "moe"
    sqnr_db: float
    max_abs_err: float
    float_max_abs: float
    routing_mismatch: int | None = None  # tokens whose top-k expert set differs (MoE blocks)


@dataclass
class TaskFidelity:
    task: str
    blocks: list[BlockFidelity]
    saturation: dict[str, dict[str, int]]
    wrapped: dict[str, int] = field(default_factory=dict)

    @property
    def routing_mismatch(self) -> int:
        return sum(b.routing_mismatch or 0 for b in self.blocks)


@dataclass
class FidelityReport:
    """Fidelity of the fixed backbone against float, per task."""

    config: str
    tasks: list[TaskFidelity]

    def as_dict(self) -> dict[str, Any]:
        def clean(x: Any) -> Any:
            if isinstance(x, float) and not math.isfinite(x):
                return str(x)
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, list):
                return [clean(v) for v in x]
            return x

        out = {"config": self.config, "tasks": {}}
        for t in self.tasks:
            d = asdict(t)
            d["routing_mismatch_total"] = t.routing_mismatch
            d["saturated"] = {k: v["saturated"] for k, v in t.saturation.items() if v["saturated"]}
            out["tasks"][t.task] = clean(d)
        return out

    def text(self) -> str:
        lines = [f"fidelity of the fixed-point backbone vs float ({self.config})"]
        for t in self.tasks:
            lines.append(f"task {t.task}:")
            lines.append(
                f"  {'block':>5} {'kind':<5} {'SQNR dB':>8} {'max|err|':>10} {'max|float|':>10} "
                f"{'top-k diff':>10}"
            )
            for b in t.blocks:
                name = "embed" if b.block < 0 else str(b.block)
                rm = "" if b.routing_mismatch is None else str(b.routing_mismatch)
                lines.append(
                    f"  {name:>5} {b.kind:<5} {b.sqnr_db:8.2f} {b.max_abs_err:10.3e} "
                    f"{b.float_max_abs:10.3e} {rm:>10}"
                )
            sat = {k: v for k, v in t.saturation.items() if v["saturated"]}
            if sat:
                lines.append(
                    "  saturated values: "
                    + ", ".join(f"{k} {v['saturated']}/{v['total']}" for k, v in sorted(sat.items()))
                )
            else:
                total = sum(v["total"] for v in t.saturation.values())
                lines.append(f"  saturated values: none (of {total} cast values)")
            if t.wrapped:
                lines.append(
                    "  wrapped values: " + ", ".join(f"{k} {n}" for k, n in sorted(t.wrapped.items()))
                )
            lines.append(f"  tokens whose top-k expert choice differs from float: {t.routing_mismatch}")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """A PNG of SQNR per block, one line per task."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        fig, ax = plt.subplots(figsize=(7, 4))
        for t in self.tasks:
            xs = [b.block for b in t.blocks]
            ys = [b.sqnr_db if math.isfinite(b.sqnr_db) else np.nan for b in t.blocks]
            ax.plot(xs, ys, marker="o", label=t.task)
        ax.set_xlabel("block (-1 = patch embedding)")
        ax.set_ylabel("SQNR of fixed vs float tokens (dB)")
        ax.set_title(f"fixed-point fidelity per block ({self.config})")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``fidelity.json`` and ``fidelity_sqnr.png`` into ``out_dir``."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        js = out_dir / "fidelity.json"
        js.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        return js, self.plot(out_dir / "fidelity_sqnr.png")


def float_blocks(
    cfg: Config, weights: Mapping[str, np.ndarray], image: np.ndarray, task: int, model: Any = None
) -> tuple[np.ndarray, list[np.ndarray], dict[int, np.ndarray]]:
    """The float64 golden backbone: tokens after the embedding, after every block, and the MoE routing.

    Returns:
        (embed [N, D], blocks: list of [N, D], routing: MoE block -> experts [N, top_k]).
    """
    import torch

    from edgemoe.golden.model import M3ViT

    if model is None:
        model = M3ViT.from_weights(cfg, dict(weights)).double().eval()
    with torch.no_grad():
        x = model.embed(torch.from_numpy(np.asarray(image, dtype=np.float64))[None])
        embed = x[0].numpy().copy()
        blocks, routing = [], {}
        for i, blk in enumerate(model.blocks):
            x = x + blk.attn(blk.norm1(x))
            h = blk.norm2(x)
            if blk.is_moe:
                routing[i] = blk.mlp.route(h, task).experts[0].numpy().copy()
            x = x + blk.mlp(h, task)
            blocks.append(x[0].numpy().copy())
    return embed, blocks, routing


def topk_mismatch(fixed_experts: np.ndarray, float_experts: np.ndarray) -> int:
    """Tokens whose set of chosen experts differs between fixed and float."""
    a = np.sort(np.asarray(fixed_experts), axis=-1)
    b = np.sort(np.asarray(float_experts), axis=-1)
    return int(np.count_nonzero((a != b).any(axis=-1)))


def task_fidelity(
    cfg: Config,
    fixed: FixedOutput,
    float_embed: np.ndarray,
    float_blocks_: list[np.ndarray],
    float_routing: dict[int, np.ndarray],
    task: int,
) -> TaskFidelity:
    """Compare one fixed forward pass with the float one (see :func:`float_blocks`)."""
    act = cfg.formats.act.fmt
    rows = []
    pairs = [(-1, "embed", fixed.embed, float_embed)]
    pairs += [
        (i, "moe" if cfg.model.is_moe(i) else "dense", fixed.blocks[i], float_blocks_[i])
        for i in range(cfg.model.depth)
    ]
    for i, kind, fx, fl in pairs:
        got = to_float(fx, act)
        rm = None
        if i in fixed.routing and i in float_routing:
            rm = topk_mismatch(fixed.routing[i].experts, float_routing[i])
        rows.append(
            BlockFidelity(
                i, kind, sqnr_db(fl, got), float(np.abs(got - fl).max()), float(np.abs(fl).max()), rm
            )
        )
    return TaskFidelity(cfg.model.tasks[task], rows, fixed.log.as_dict(), dict(fixed.log.wrapped))
