"""The ``float`` back end of ``edgemoe infer``: the PyTorch golden model, and the float task heads.

The heads run on the host for every back end that returns tokens only (:func:`float_head`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from edgemoe.backends import Runner, TaskOutput
from edgemoe.config import Config


def float_model(cfg: Config, weights: dict[str, np.ndarray]) -> Any:
    """The float golden model (``M3ViT``) on ``weights``, in eval mode without autograd."""
    import torch

    from edgemoe.golden.model import M3ViT

    torch.set_grad_enabled(False)
    model = M3ViT.from_weights(cfg, weights)
    model.eval()
    return model


def prepare(cfg: Config, weights: dict[str, np.ndarray]) -> Runner:
    """The float golden model: backbone and head in float32 PyTorch."""
    import torch

    model = float_model(cfg, weights)

    def run(image: np.ndarray, task: int) -> TaskOutput:
        with torch.no_grad():
            t0 = time.perf_counter()
            out = model.forward_backbone(torch.from_numpy(image)[None], task)
            t1 = time.perf_counter()
            head = model.heads[task](out.tokens)
            t2 = time.perf_counter()
        info = {"backbone": f"{t1 - t0:.3f} s", "head": f"{t2 - t1:.3f} s"}
        return TaskOutput(tokens=out.tokens[0].numpy(), head=head[0].numpy(), info=info)

    return run


def float_head(model: Any, tokens: np.ndarray, task: int) -> np.ndarray:
    """The float task head on backbone tokens [N, D] -> [C, H, W] (host side of every back end)."""
    import torch

    with torch.no_grad():
        t = torch.from_numpy(np.asarray(tokens, dtype=np.float32))[None]
        return model.heads[task](t)[0].numpy()
