"""The fixed-point reference as the back end of a simulated device.

It reads what the hardware reads: raw weights unpacked from the weight image and raw pixels
unpacked from the image buffer, and runs :class:`edgemoe.golden.fixed.model.FixedM3ViT`.
"""

from __future__ import annotations

import numpy as np

from edgemoe.config import Config
from edgemoe.golden.fixed.core import SaturationLog, to_float
from edgemoe.golden.fixed.model import FixedM3ViT
from edgemoe.golden.fixed.quantize_weights import QuantizedWeights, storage_cast


def fixed_model(cfg: Config, raw: dict[str, np.ndarray]) -> FixedM3ViT:
    """A FixedM3ViT on raw weights (their storage formats are the reference's own)."""
    casts = {name: storage_cast(name, cfg) for name in raw}
    return FixedM3ViT(cfg, QuantizedWeights(dict(raw), casts, SaturationLog()))


def run_fixed_backbone(cfg: Config, raw: dict[str, np.ndarray], pixels: np.ndarray, task: int) -> np.ndarray:
    """Raw tokens [B, TOKENS, DIM] of raw pixels [B, C, H, W] (exact: pixels are exact in float)."""
    model = fixed_model(cfg, raw)
    images = to_float(pixels, cfg.formats.pixel.fmt)
    return np.stack([model.forward(img, task).tokens for img in images]).astype(np.int64)
