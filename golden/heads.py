"""Task heads of the float M³ViT: per-task LayerNorm and a progressive-upsampling ("PUP") decoder.

The heads run on the host in float; the accelerator stops at the backbone tokens. Each task
has its own head: LayerNorm over the patch tokens (the class token is dropped), the tokens
reshaped to a ``dim × gh × gw`` feature map, ``log2(patch)`` stages of
3×3 conv – BatchNorm (eval) – ReLU – ×2 bilinear upsampling, a 1×1 conv to the task's
channels and a final bilinear resize to the image size.

Weight names (``t`` = task index, ``s`` = stage)::

    head{t}_norm_weight, head{t}_norm_bias                     [dim]
    head{t}_conv{s}_weight                                     [head_channels, in, 3, 3]
    head{t}_bn{s}_weight, _bias, _running_mean, _running_var   [head_channels]
    head{t}_cls_weight [task_channels[t], head_channels, 1, 1], head{t}_cls_bias [task_channels[t]]
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from edgemoe.config import ModelShape


class Window(NamedTuple):
    """A part of a head's feature map: ``rows`` and ``cols`` of the input of stage ``stage``."""

    stage: int
    rows: slice
    cols: slice


def head_stages(m: ModelShape) -> int:
    """Number of ×2 upsampling stages: the feature grid grows by ``patch`` back to the image size."""
    stages = int(math.log2(m.patch))
    assert 2**stages == m.patch, f"patch {m.patch} must be a power of two for the upsampling head"
    return stages


def head_shapes(m: ModelShape, task: int) -> dict[str, tuple[int, ...]]:
    """Every weight of task ``task``'s head, by name, with its shape."""
    assert 0 <= task < len(m.tasks), f"task {task} out of range 0..{len(m.tasks) - 1}"
    p = f"head{task}_"
    shapes: dict[str, tuple[int, ...]] = {p + "norm_weight": (m.dim,), p + "norm_bias": (m.dim,)}
    in_ch = m.dim
    for s in range(head_stages(m)):
        shapes[f"{p}conv{s}_weight"] = (m.head_channels, in_ch, 3, 3)
        for kind in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{p}bn{s}_{kind}"] = (m.head_channels,)
        in_ch = m.head_channels
    shapes[p + "cls_weight"] = (m.task_channels[task], in_ch, 1, 1)
    shapes[p + "cls_bias"] = (m.task_channels[task],)
    return shapes


class PUPHead(nn.Module):
    """Progressive-upsampling head of one task.

    Args:
        m: model shape (dim, grid, patch, image size, head_channels, ln_eps).
        out_channels: channels of the task output (classes, or 1 for depth).
    """

    def __init__(self, m: ModelShape, out_channels: int) -> None:
        super().__init__()
        self.grid = m.grid
        self.image_size = (m.image_h, m.image_w)
        self.norm = nn.LayerNorm(m.dim, eps=m.ln_eps)
        stages = head_stages(m)
        chans = [m.dim] + [m.head_channels] * stages
        self.convs = nn.ModuleList(
            nn.Conv2d(chans[s], chans[s + 1], kernel_size=3, padding=1, bias=False) for s in range(stages)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(m.head_channels) for _ in range(stages))
        self.cls = nn.Conv2d(chans[-1], out_channels, kernel_size=1)

    def weight_map(self, task: int) -> dict[str, str]:
        """Project weight name -> this module's state-dict key."""
        p = f"head{task}_"
        names = {p + "norm_weight": "norm.weight", p + "norm_bias": "norm.bias"}
        for s in range(len(self.convs)):
            names[f"{p}conv{s}_weight"] = f"convs.{s}.weight"
            for kind in ("weight", "bias", "running_mean", "running_var"):
                names[f"{p}bn{s}_{kind}"] = f"bns.{s}.{kind}"
        names[p + "cls_weight"] = "cls.weight"
        names[p + "cls_bias"] = "cls.bias"
        return names

    def forward(self, tokens: torch.Tensor, window: Window | None = None) -> torch.Tensor:
        """Tokens [B, N, D] (class token first) -> task output [B, Ct, H, W].

        Args:
            tokens: backbone tokens.
            window: training only: compute the stages from ``window.stage`` on a part of the
                feature map (its borders see zero padding, not their neighbours); the output
                is that part of the picture.
        """
        B, N, D = tokens.shape
        gh, gw = self.grid
        assert N == gh * gw + 1, f"head expects {gh * gw + 1} tokens (class + {gh}x{gw} patches), got {N}"
        x = self.norm(tokens[:, 1:])
        x = x.transpose(1, 2).reshape(B, D, gh, gw)
        for s, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            if window is not None and s == window.stage:
                x = x[..., window.rows, window.cols]
            x = F.relu(bn(conv(x)))
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = self.cls(x)
        if window is None and tuple(x.shape[-2:]) != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)
        return x
