"""How far the fixed-point backbone drifts from float: per-block SQNR, saturations, routing changes.

:func:`compare` runs the fixed backbone (:class:`~edgemoe.golden.fixed.model.FixedM3ViT`) and
the float64 golden model on the same weights and image for one task, twice for float: with its
own gate decisions, and with the fixed model's expert choices (which separates the smooth
quantisation noise from the jumps of tokens whose top-k choice flips). A
:class:`FidelityReport` gathers the tasks: :meth:`FidelityReport.text` is the console table,
:meth:`FidelityReport.write` writes ``fidelity.json`` and ``fidelity_sqnr.png``.
:func:`noise_floor_db` is the SQNR the weight formats allow per block.
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
from edgemoe.files import atomic_path
from edgemoe.golden.fixed.core import to_float

if TYPE_CHECKING:
    from edgemoe.golden.fixed.model import FixedM3ViT, FixedOutput
    from edgemoe.golden.fixed.quantize_weights import QuantizedWeights


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
    sqnr_db: float  # vs the float model with its own routing
    max_abs_err: float
    float_max_abs: float
    routing_mismatch: int | None = None  # tokens whose top-k expert set differs (MoE blocks)
    sqnr_forced_db: float | None = None  # vs float with the fixed model's expert choices
    floor_db: float | None = None  # the noise-budget floor of sqnr_forced_db (noise_floor_db)


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
    weights: dict[str, dict[str, int]] = field(default_factory=dict)  # storage saturation per tensor
    weights_text: str = ""  # QuantizedWeights.report()

    def as_dict(self) -> dict[str, Any]:
        def clean(x: Any) -> Any:
            if isinstance(x, float) and not math.isfinite(x):
                return str(x)
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, list):
                return [clean(v) for v in x]
            return x

        saturated = {k: v["saturated"] for k, v in self.weights.items() if v["saturated"]}
        out = {"config": self.config, "weights_saturated": saturated, "tasks": {}}
        for t in self.tasks:
            d = asdict(t)
            d["routing_mismatch_total"] = t.routing_mismatch
            d["saturated"] = {k: v["saturated"] for k, v in t.saturation.items() if v["saturated"]}
            out["tasks"][t.task] = clean(d)
        return out

    def text(self) -> str:
        lines = [f"fidelity of the fixed-point backbone vs float ({self.config})"]
        if self.weights_text:
            lines.append(self.weights_text)
        for t in self.tasks:
            lines.append(f"task {t.task}:")
            lines.append(
                f"  {'block':>5} {'kind':<5} {'SQNR dB':>8} {'max|err|':>10} {'max|float|':>10} "
                f"{'top-k diff':>10} {'SQNR same-routing':>17} {'floor':>6}"
            )
            for b in t.blocks:
                name = "embed" if b.block < 0 else str(b.block)
                rm = "" if b.routing_mismatch is None else str(b.routing_mismatch)
                forced = "" if b.sqnr_forced_db is None else f"{b.sqnr_forced_db:.2f}"
                floor = "" if b.floor_db is None else f"{b.floor_db:.1f}"
                lines.append(
                    f"  {name:>5} {b.kind:<5} {b.sqnr_db:8.2f} {b.max_abs_err:10.3e} "
                    f"{b.float_max_abs:10.3e} {rm:>10} {forced:>17} {floor:>6}"
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
            ax.plot(xs, ys, marker="o", label=f"{t.task}")
            forced = [np.nan if b.sqnr_forced_db is None else b.sqnr_forced_db for b in t.blocks]
            if not all(np.isnan(forced)):
                ax.plot(xs, forced, marker=".", linestyle="--", label=f"{t.task}, same routing as fixed")
        if self.tasks and all(b.floor_db is not None for b in self.tasks[0].blocks):
            t = self.tasks[0]
            floors = [b.floor_db for b in t.blocks]
            ax.plot(
                [b.block for b in t.blocks], floors, color="grey", linestyle=":", label="noise-budget floor"
            )
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
        with atomic_path(js) as tmp:
            tmp.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        png = out_dir / "fidelity_sqnr.png"
        with atomic_path(png) as tmp:
            self.plot(tmp)
        return js, png


def float_blocks(
    cfg: Config,
    weights: Mapping[str, np.ndarray],
    image: np.ndarray,
    task: int,
    model: Any = None,
    routing: Mapping[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[np.ndarray], dict[int, np.ndarray]]:
    """The float64 golden backbone: tokens after the embedding, after every block, and the MoE routing.

    Args:
        model: a float64 :class:`~edgemoe.golden.model.M3ViT` of ``weights`` (built if None).
        routing: MoE block -> experts [N, top_k] to use instead of the float gate's own top-k
            (the float softmax probabilities of those experts weight them). With the fixed
            model's choices this separates the smooth quantisation error from routing flips.

    Returns:
        (embed [N, D], blocks: list of [N, D], routing: MoE block -> float top-k experts [N, top_k]).
    """
    import torch

    from edgemoe.golden.model import M3ViT

    if model is None:
        model = M3ViT.from_weights(cfg, dict(weights)).double().eval()
    with torch.no_grad():
        x = model.embed(torch.from_numpy(np.asarray(image, dtype=np.float64))[None])
        embed = x[0].numpy().copy()
        blocks, chosen = [], {}
        for i, blk in enumerate(model.blocks):
            x = x + blk.attn(blk.norm1(x))
            h = blk.norm2(x)
            if blk.is_moe:
                r = blk.mlp.route(h, task)
                chosen[i] = r.experts[0].numpy().copy()
                if routing is not None and i in routing:
                    x = x + _forced_moe(blk.mlp, h[0], r.probs[0], np.asarray(routing[i]))[None]
                else:
                    x = x + blk.mlp(h, task)
            else:
                x = x + blk.mlp(h, task)
            blocks.append(x[0].numpy().copy())
    return embed, blocks, chosen


def _forced_moe(mlp: Any, h: Any, probs: Any, experts: np.ndarray) -> Any:
    """Σ_j p[n, e_j] · expert_{e_j}(h[n]) for given experts [N, top_k] (float, torch)."""
    import torch

    out = torch.zeros_like(h)
    idx = torch.from_numpy(experts.astype(np.int64))
    for e in range(mlp.experts):
        token, slot = (idx == e).nonzero(as_tuple=True)
        if token.numel():
            out.index_add_(0, token, mlp.expert(h[token], e) * probs[token, e].unsqueeze(-1))
    return out


def topk_mismatch(fixed_experts: np.ndarray, float_experts: np.ndarray) -> int:
    """Tokens whose set of chosen experts differs between fixed and float."""
    a = np.sort(np.asarray(fixed_experts), axis=-1)
    b = np.sort(np.asarray(float_experts), axis=-1)
    return int(np.count_nonzero((a != b).any(axis=-1)))


@dataclass
class StorageNoise:
    """Noise the storage formats add to the weights.

    Attributes:
        relative: noise power over signal power of every tensor (10**(-SQNR/10)).
        power: mean squared storage error of every tensor.
    """

    relative: dict[str, float]
    power: dict[str, float]

    @classmethod
    def measure(cls, weights: Mapping[str, np.ndarray], qweights: QuantizedWeights) -> StorageNoise:
        rel, pw = {}, {}
        for name, raw in qweights.raw.items():
            ref = np.asarray(weights[name], dtype=np.float64)
            err = to_float(raw, qweights.casts[name].fmt) - ref
            pw[name] = float(np.mean(err * err))
            signal = float(np.mean(ref * ref))
            rel[name] = pw[name] / signal if signal > 0 else 0.0
        return cls(rel, pw)


def path_tensors(cfg: Config, block: int) -> list[tuple[str, int, bool]]:
    """The stored tensors a token passes through up to the output of ``block`` (-1: the embedding).

    Each entry is ``(name, block it sits in, additive)``: additive tensors (biases, LayerNorm β,
    the position embedding) add their error to a signal; the others (weight matrices, gates,
    LayerNorm γ) scale the signal through them.
    """
    out = [("patch_embed_weight", -1, False), ("patch_embed_bias", -1, True), ("pos_embed", -1, True)]
    for i in range(block + 1):
        p = f"l{i}_"
        layers = ["qkv", "attn_proj"] + (["htoh4", "h4toh"] if cfg.model.is_moe(i) else ["fc1", "fc2"])
        for norm in ("norm1", "norm2"):
            out += [(f"{p}{norm}_weight", i, False), (f"{p}{norm}_bias", i, True)]
        for layer in layers:
            out += [(f"{p}{layer}_weight", i, False), (f"{p}{layer}_bias", i, True)]
        if cfg.model.is_moe(i):
            out += [(f"{p}w_gate_T_task{t}", i, False) for t in range(len(cfg.model.tasks))]
    return out


NOISE_MARGIN_DB = 6.0
NOISE_GROWTH_DB_PER_BLOCK = 1.0


def noise_floor_db(cfg: Config, noise: StorageNoise, block: int, stream_power: list[float]) -> float:
    """Lowest SQNR the noise budget allows after ``block`` (routing equal to the fixed model's).

    Every stored tensor on the path (:func:`path_tensors`) adds noise: a scaling tensor (weight
    matrix, gate, LayerNorm γ) its relative storage noise power; an additive one (bias, β,
    position embedding) its mean squared storage error over the power of the token stream of
    its block (``stream_power[b + 1]``, the float tokens after block b; index 0: after the
    embedding). LayerNorm rescales the signal before every sub-layer, so relative noise powers
    add along the path. The datapath casts (22 fraction bits for activations in ``edge-moe``,
    18-bit probabilities, nonlinear outputs) are far finer than the 16-bit stored tensors.
    Perturbations grow through attention and GELU (gains above one): ``NOISE_MARGIN_DB`` (6 dB,
    a factor 4 in noise power) once, plus ``NOISE_GROWTH_DB_PER_BLOCK`` (1 dB, a factor 1.26)
    per block, since these gains compound block over block.
    """
    total = 0.0
    for name, b, additive in path_tensors(cfg, block):
        if name not in noise.power:
            continue
        total += noise.power[name] / stream_power[b + 1] if additive else noise.relative[name]
    if total == 0.0:
        return math.inf
    growth = NOISE_GROWTH_DB_PER_BLOCK * (block + 1)
    return -10.0 * math.log10(total) - NOISE_MARGIN_DB - growth


def task_fidelity(
    cfg: Config,
    fixed: FixedOutput,
    float_embed: np.ndarray,
    float_blocks_: list[np.ndarray],
    float_routing: dict[int, np.ndarray],
    task: int,
    forced_blocks: list[np.ndarray] | None = None,
    noise: StorageNoise | None = None,
) -> TaskFidelity:
    """Compare one fixed forward pass with the float one (see :func:`float_blocks`).

    Args:
        forced_blocks: float blocks run with the fixed model's expert choices (optional).
        noise: storage noise of the weights (:meth:`StorageNoise.measure`), for the noise floors.
    """
    power = [float(np.mean(np.square(x))) for x in [float_embed, *float_blocks_]]
    rows = []
    pairs = [(-1, "embed", fixed.embed, float_embed, float_embed)]
    pairs += [
        (
            i,
            "moe" if cfg.model.is_moe(i) else "dense",
            fixed.blocks[i],
            float_blocks_[i],
            None if forced_blocks is None else forced_blocks[i],
        )
        for i in range(cfg.model.depth)
    ]
    for i, kind, fx, fl, forced in pairs:
        got = to_float(fx, cfg.block_config(max(i, 0)).formats.act.fmt)  # the embedding is in block 0's
        rm = None
        if i in fixed.routing and i in float_routing:
            rm = topk_mismatch(fixed.routing[i].experts, float_routing[i])
        rows.append(
            BlockFidelity(
                i,
                kind,
                sqnr_db(fl, got),
                float(np.abs(got - fl).max()),
                float(np.abs(fl).max()),
                rm,
                None if forced is None else sqnr_db(forced, got),
                None if noise is None else noise_floor_db(cfg, noise, i, power),
            )
        )
    return TaskFidelity(cfg.model.tasks[task], rows, fixed.log.as_dict(), dict(fixed.log.wrapped))


def compare(
    cfg: Config,
    weights: Mapping[str, np.ndarray],
    fixed_model: FixedM3ViT,
    image: np.ndarray,
    task: int,
    fixed: FixedOutput | None = None,
    float_model: Any = None,
) -> TaskFidelity:
    """Run (if not given) the fixed pass and the float64 passes (own and forced routing), and compare.

    The float64 passes run on one torch thread: their matrices are small, and two threads on a
    busy 2-core machine were measured several times slower than one.
    """
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _compare(cfg, weights, fixed_model, image, task, fixed, float_model)
    finally:
        torch.set_num_threads(saved)


def _compare(
    cfg: Config,
    weights: Mapping[str, np.ndarray],
    fixed_model: FixedM3ViT,
    image: np.ndarray,
    task: int,
    fixed: FixedOutput | None,
    float_model: Any,
) -> TaskFidelity:
    if fixed is None:
        fixed = fixed_model.forward(image, task)
    if float_model is None:
        from edgemoe.golden.model import M3ViT

        float_model = M3ViT.from_weights(cfg, dict(weights)).double().eval()
    fe, fb, fr = float_blocks(cfg, weights, image, task, float_model)
    forced = {i: r.experts for i, r in fixed.routing.items()}
    _, fb_forced, _ = float_blocks(cfg, weights, image, task, float_model, routing=forced)
    noise = StorageNoise.measure(weights, fixed_model.weights)
    return task_fidelity(cfg, fixed, fe, fb, fr, task, fb_forced, noise)
