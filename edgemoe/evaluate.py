"""``edgemoe eval``: task metrics of the back ends on the procedural dataset, side by side with float.

Every back end runs the first ``images`` scenes of a split (the slow ones, ``SLOW_BACKENDS``,
only the first ``slow_images`` of them) through both tasks, with the float task heads on the
host when the back end stops at the backbone (as ``edgemoe infer`` does). Per back end:
mIoU and pixel accuracy (semseg), RMSE, abs rel and δ<1.25 (depth, metres), and where the back
end reports it the fraction of routed tokens whose top-k experts differ from float. Float is
scored on the same scenes as every other back end (a second float row when a slow back end ran
fewer). A back end that returns raw tokens is compared bit for bit with ``reference`` on the
scenes both ran.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgemoe.config import Config
from edgemoe.golden import dataset
from edgemoe.golden.metrics import Depth, Routing, Segmentation

SLOW_BACKENDS = ("csim", "rtl")  # minutes per image: they run on the first slow_images scenes
COLUMNS = (
    ("mIoU", "mIoU", 100.0, ".2f"),
    ("pixel_acc", "pix acc", 100.0, ".2f"),
    ("rmse", "RMSE m", 1.0, ".4f"),
    ("abs_rel", "abs rel", 1.0, ".4f"),
    ("delta1", "δ<1.25", 100.0, ".2f"),
    ("topk_flip", "top-k flip", 100.0, ".3f"),
    ("d_mIoU", "ΔmIoU pt", 100.0, "+.3f"),
    ("d_rmse", "ΔRMSE %", 100.0, "+.4f"),
)


def versus_float(metrics: dict[str, float], float_metrics: dict[str, float]) -> dict[str, float]:
    """mIoU difference (fraction; ×100 for points) and relative RMSE difference from float."""
    return {
        "d_mIoU": metrics["mIoU"] - float_metrics["mIoU"],
        "d_rmse": metrics["rmse"] / float_metrics["rmse"] - 1.0,
    }


@dataclass
class Scores:
    """Metrics of one back end accumulated over scenes and tasks."""

    classes: int
    seg: Segmentation = field(init=False)
    depth: Depth = field(default_factory=Depth)
    routing: Routing = field(default_factory=Routing)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.seg = Segmentation(self.classes)

    def add(self, task_name: str, head: np.ndarray, scene: dataset.Scene) -> None:
        if task_name == "semseg":
            self.seg.add(head, scene.labels)
        elif task_name == "depth":
            self.depth.add(head, scene.depth)

    def summary(self) -> dict[str, float]:
        return {**self.seg.summary(), **self.depth.summary(), **self.routing.summary()}


def _classes(cfg: Config) -> int:
    dataset.check_classes(cfg)
    return cfg.model.task_channels[cfg.model.tasks.index("semseg")]


def score_float(cfg: Config, model: Any, split: str, count: int) -> dict[str, float]:
    """Float metrics of an M3ViT in eval mode on the first ``count`` scenes of ``split``."""
    import torch

    scores = Scores(_classes(cfg))
    for i in range(count):
        s = dataset.scene(cfg, split, i)
        for t, name in enumerate(cfg.model.tasks):
            with torch.no_grad():
                head = model.forward(torch.from_numpy(s.image)[None], t).head[0].numpy()
            scores.add(name, head, s)
    out = scores.summary()
    del out["topk_flip"]
    return out


def _routed_per_image(cfg: Config) -> int:
    return cfg.model.tokens * len(cfg.model.moe_blocks)


def run_backend(
    cfg: Config, backend: str, weights: dict[str, np.ndarray], split: str, count: int, host_model: Any
) -> tuple[Scores, dict[tuple[int, int], np.ndarray]]:
    """Scores of ``backend`` on ``count`` scenes, and the raw tokens it returned per (scene, task)."""
    from edgemoe.infer import BACKENDS, float_head
    from edgemoe.progress import log

    runner = BACKENDS[backend].load()(cfg, weights)
    scores = Scores(_classes(cfg))
    raw: dict[tuple[int, int], np.ndarray] = {}
    t0 = time.perf_counter()
    for i in range(count):
        s = dataset.scene(cfg, split, i)
        for t, name in enumerate(cfg.model.tasks):
            res = runner(s.image, t)
            head = res.head if res.head is not None else float_head(host_model, res.tokens, t)
            scores.add(name, np.asarray(head, dtype=np.float32), s)
            if "top-k diff" in res.info:
                scores.routing.add(int(res.info["top-k diff"]), _routed_per_image(cfg))
            if "tokens_raw" in res.arrays:
                raw[(i, t)] = np.asarray(res.arrays["tokens_raw"])
        log(f"{backend}: scene {i + 1}/{count} ({time.perf_counter() - t0:.1f} s)")
    scores.seconds = time.perf_counter() - t0
    return scores, raw


def _cell(value: float, scale: float, fmt: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value * scale, fmt)


def table(rows: list[dict[str, Any]]) -> str:
    """The metrics table: percentages for mIoU, pixel accuracy, δ<1.25 and top-k flips; the
    mIoU difference from float in points and the RMSE difference in percent."""
    head = f"{'back end':<14} {'images':>6} " + " ".join(f"{title:>10}" for _, title, _, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = " ".join(f"{_cell(r['metrics'].get(k, math.nan), sc, fmt):>10}" for k, _, sc, fmt in COLUMNS)
        lines.append(f"{r['backend']:<14} {r['images']:>6} {cells}")
    return "\n".join(lines)


def _nan_to_none(obj: Any) -> Any:
    """JSON has no NaN: a metric that does not apply (no flips reported) is null."""
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return None if isinstance(obj, float) and math.isnan(obj) else obj


def run(
    cfg: Config,
    weights: str | Path | None,
    backends: list[str],
    images: int = 50,
    slow_images: int = 2,
    split: str = "test",
    json_path: str | Path | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Run ``edgemoe eval``; returns the table rows (also written to ``json_path``)."""
    from edgemoe.backends import BACKENDS
    from edgemoe.float_backend import float_model
    from edgemoe.infer import InferError, load_weights, weights_source
    from edgemoe.progress import log

    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise InferError(f"unknown back end(s) {', '.join(unknown)}; known: {', '.join(BACKENDS)}")
    if images < 1 or slow_images < 1:
        raise InferError(f"--images and --slow-images must be at least 1, got {images} and {slow_images}")
    dataset.split_seed(split, max(images, slow_images) - 1)  # the split holds that many scenes
    _classes(cfg)
    w = load_weights(cfg, weights, seed)
    host_model = float_model(cfg, w)
    counts = {b: min(images, slow_images) if b in SLOW_BACKENDS else images for b in backends}
    rows: list[dict[str, Any]] = []
    float_scores: dict[int, dict[str, float]] = {}
    raw_reference: dict[tuple[int, int], np.ndarray] = {}
    order = sorted(backends, key=lambda b: (b != "float", b != "reference"))  # float, reference first
    for b in order:
        n = counts[b]
        if b != "float" and n not in float_scores:
            float_scores[n] = score_float(cfg, host_model, split, n)
            if n != images or "float" not in backends:
                rows.append({"backend": "float", "images": n, "metrics": float_scores[n]})
        log(f"back end '{b}' on {n} {split} scene(s)")
        scores, raw = run_backend(cfg, b, w, split, n, host_model)
        row: dict[str, Any] = {
            "backend": b,
            "images": n,
            "seconds": round(scores.seconds, 2),
            "metrics": scores.summary(),
        }
        if b == "float":
            float_scores[n] = row["metrics"]
            row["metrics"].pop("topk_flip")
        else:
            row["metrics"].update(versus_float(row["metrics"], float_scores[n]))
        if b == "reference":
            raw_reference = raw
        elif raw and raw_reference:
            both = sorted(set(raw) & set(raw_reference))
            row["bit_exact_vs_reference"] = {
                "equal": sum(np.array_equal(raw[k], raw_reference[k]) for k in both),
                "compared": len(both),
            }
        rows.append(row)
    print(f"task metrics on the {split} split, config '{cfg.name}' (CONFIG_ID 0x{cfg.config_id:08x})")
    print(table(rows))
    for r in rows:
        if "bit_exact_vs_reference" in r:
            e = r["bit_exact_vs_reference"]
            print(
                f"{r['backend']}: backbone tokens equal to reference bit for bit on {e['equal']} of "
                f"{e['compared']} (scene, task) pairs"
            )
        if r["images"] < images and r["backend"] != "float":
            what = "a slow back end; float next to it on the same"
            print(f"{r['backend']}: {r['images']} of {images} scenes ({what})")
    if json_path is not None:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "config": cfg.name,
            "config_id": f"0x{cfg.config_id:08x}",
            "weights": str(weights_source(cfg, weights)),
            "split": split,
            "rows": rows,
        }
        path.write_text(json.dumps(_nan_to_none(doc), indent=2, allow_nan=False) + "\n")
        print(f"wrote {path}")
    return rows
