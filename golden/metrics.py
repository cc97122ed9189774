"""Task metrics: semantic segmentation, depth and the routing agreement of the MoE gates.

Segmentation (accumulated over images through a confusion matrix):

- pixel accuracy: correctly classified pixels / all pixels;
- mIoU: the mean over classes of ``TP / (TP + FP + FN)``, over the classes that occur in the
  ground truth or the prediction of the images seen (a class absent from both is not counted).

Depth (accumulated over every pixel of every image; predictions are clipped to
``[MIN_DEPTH, MAX_DEPTH]`` first, as depth benchmarks do, so a ratio is always defined):

- RMSE: ``sqrt(mean((pred - true)^2))`` in metres;
- abs rel: ``mean(|pred - true| / true)``;
- δ<1.25: the fraction of pixels with ``max(pred / true, true / pred) < 1.25``.

Routing: the fraction of (token, MoE block) pairs whose set of top-k experts differs from float.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgemoe.golden.dataset import MAX_DEPTH

MIN_DEPTH = 1e-3  # metres


@dataclass
class Segmentation:
    """Confusion matrix of ``classes`` classes, accumulated by :meth:`add`."""

    classes: int
    confusion: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.confusion = np.zeros((self.classes, self.classes), np.int64)

    def add(self, pred: np.ndarray, true: np.ndarray) -> None:
        """``pred``: class scores [C, H, W] (argmax taken) or labels [H, W]; ``true``: labels [H, W]."""
        pred = np.asarray(pred)
        if pred.ndim == true.ndim + 1:
            assert pred.shape[0] == self.classes, f"{pred.shape[0]} class channels, expected {self.classes}"
            pred = pred.argmax(axis=0)
        assert pred.shape == true.shape, f"prediction {pred.shape} and labels {true.shape} differ in shape"
        assert true.min() >= 0 and true.max() < self.classes, f"labels outside 0..{self.classes - 1}"
        index = true.astype(np.int64).ravel() * self.classes + pred.astype(np.int64).ravel()
        self.confusion += np.bincount(index, minlength=self.classes**2).reshape(self.classes, self.classes)

    def iou(self) -> np.ndarray:
        """IoU per class [C]; NaN for a class seen neither in the labels nor in the prediction."""
        tp = np.diag(self.confusion).astype(np.float64)
        union = self.confusion.sum(0) + self.confusion.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, tp / union, np.nan)

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")

    def summary(self) -> dict[str, float]:
        return {"mIoU": self.miou(), "pixel_acc": self.pixel_accuracy()}


@dataclass
class Depth:
    """Sums over pixels for RMSE, abs rel and δ<1.25, accumulated by :meth:`add`."""

    pixels: int = 0
    squared: float = 0.0
    abs_rel: float = 0.0
    within: int = 0

    def add(self, pred: np.ndarray, true: np.ndarray) -> None:
        """``pred``: depth [1, H, W] or [H, W] in metres; ``true``: [H, W], every value > 0."""
        pred = np.asarray(pred, dtype=np.float64)
        pred = pred[0] if pred.ndim == true.ndim + 1 else pred
        assert pred.shape == true.shape, f"prediction {pred.shape} and depth {true.shape} differ in shape"
        true = np.asarray(true, dtype=np.float64)
        assert true.min() > 0, "ground-truth depth must be positive"
        pred = np.clip(pred, MIN_DEPTH, MAX_DEPTH)
        self.pixels += true.size
        self.squared += float(np.square(pred - true).sum())
        self.abs_rel += float((np.abs(pred - true) / true).sum())
        self.within += int(np.count_nonzero(np.maximum(pred / true, true / pred) < 1.25))

    def summary(self) -> dict[str, float]:
        n = self.pixels
        if not n:
            return {"rmse": float("nan"), "abs_rel": float("nan"), "delta1": float("nan")}
        return {
            "rmse": float(np.sqrt(self.squared / n)),
            "abs_rel": self.abs_rel / n,
            "delta1": self.within / n,
        }


@dataclass
class Routing:
    """Routed (token, MoE block) pairs and how many chose another top-k expert set than float."""

    routed: int = 0
    flips: int = 0

    def add(self, flips: int, routed: int) -> None:
        assert 0 <= flips <= routed, f"{flips} flips out of {routed} routed tokens"
        self.flips += flips
        self.routed += routed

    def summary(self) -> dict[str, float]:
        return {"topk_flip": self.flips / self.routed if self.routed else float("nan")}
