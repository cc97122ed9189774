"""Float golden M³ViT: the reference every fixed-point and hardware back end is compared with.

It computes what the official M³ViT code computes for the configured shape (docs/architecture.md):

- patch embedding: Conv2d ``p×p`` stride ``p``; token 0 is ``pos_embed[0]`` (class token and
  its position embedding in one row, as Edge-MoE stores it), tokens ``1..`` are the patches
  plus ``pos_embed[1:]``;
- pre-norm blocks ``x = x + attn(norm1(x)); x = x + mlp(norm2(x))`` with multi-head attention
  (qkv with bias, rows Q|K|V, head ``h`` on dims ``h·hd .. h·hd+hd-1``, scale ``hd**-0.5``) and
  either a dense MLP (fc1 → exact erf GELU → fc2) or a mixture of experts (one gate per task
  without bias, softmax over all experts, top-k with ties to the lower expert index, selected
  probabilities **not** renormalised, ``y = Σ p·(W2·GELU(W1·x + b1) + b2)``, every token
  including the class token routed);
- no final norm in the backbone; one :class:`~edgemoe.golden.heads.PUPHead` per task.

Submodule names follow timm's ``vision_transformer.py`` (``norm1``, ``attn.qkv``, ``attn.proj``,
``norm2``, ``mlp.fc1``, ``mlp.fc2``), so a dense block loads a timm ``Block`` state dict as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgemoe.config import Config, ModelShape
from edgemoe.golden.heads import PUPHead


@dataclass
class ModelOutput:
    """What a forward pass returns.

    Attributes:
        tokens: backbone tokens after the last block [B, N, D].
        head: task head output [B, Ct, H, W] (None from :meth:`M3ViT.forward_backbone`).
        blocks: every block's output tokens [B, N, D] when asked for, else empty.
    """

    tokens: torch.Tensor
    head: torch.Tensor | None = None
    blocks: list[torch.Tensor] = field(default_factory=list)


class Routing(NamedTuple):
    """Gate decisions of one MoE block for one task.

    Attributes:
        experts: selected expert indices [..., top_k], best first (ties -> lower index).
        scores: their softmax probabilities [..., top_k], not renormalised.
        probs: softmax over all experts [..., E].
    """

    experts: torch.Tensor
    scores: torch.Tensor
    probs: torch.Tensor


class Attention(nn.Module):
    """Multi-head self-attention with a biased qkv projection.

    Args:
        dim: token width.
        num_heads: attention heads; ``dim // num_heads`` per head.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} is not divisible by num_heads {num_heads}"
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each [B, heads, N, head_dim]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    """Dense MLP: fc1 → exact (erf) GELU → fc2.

    Args:
        dim: token width.
        hidden: hidden width.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="none")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MoE(nn.Module):
    """Mixture of experts with one gate per task.

    Args:
        dim: token width.
        hidden: hidden width of one expert.
        experts: number of experts.
        top_k: experts each token goes through.
        tasks: number of tasks (one gate each).
    """

    def __init__(self, dim: int, hidden: int, experts: int, top_k: int, tasks: int) -> None:
        super().__init__()
        assert 1 <= top_k <= experts, f"top_k {top_k} must be in 1..experts ({experts})"
        self.experts = experts
        self.top_k = top_k
        # gate t: [E, D], row e scores expert e (Edge-MoE's w_gate_T_task{t})
        self.gates = nn.ParameterList(nn.Parameter(torch.zeros(experts, dim)) for _ in range(tasks))
        self.htoh4_weight = nn.Parameter(torch.zeros(experts, hidden, dim))
        self.htoh4_bias = nn.Parameter(torch.zeros(experts, hidden))
        self.h4toh_weight = nn.Parameter(torch.zeros(experts, dim, hidden))
        self.h4toh_bias = nn.Parameter(torch.zeros(experts, dim))

    def route(self, x: torch.Tensor, task: int) -> Routing:
        """Gate ``x`` [..., D] for ``task``: softmax over all experts, then top-k (not renormalised)."""
        assert 0 <= task < len(self.gates), f"task {task} out of range 0..{len(self.gates) - 1}"
        probs = (x @ self.gates[task].T).softmax(dim=-1)
        # a stable descending sort keeps equal probabilities in expert order: ties -> lower index
        scores, experts = torch.sort(probs, dim=-1, descending=True, stable=True)
        return Routing(experts[..., : self.top_k], scores[..., : self.top_k], probs)

    def expert(self, x: torch.Tensor, e: int) -> torch.Tensor:
        """Expert ``e`` on tokens ``x`` [T, D]: W2·GELU(W1·x + b1) + b2."""
        h = F.gelu(F.linear(x, self.htoh4_weight[e], self.htoh4_bias[e]), approximate="none")
        return F.linear(h, self.h4toh_weight[e], self.h4toh_bias[e])

    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        return self.dispatch(x, self.route(x, task))

    def dispatch(self, x: torch.Tensor, routing: Routing) -> torch.Tensor:
        """``Σ score · expert(x)`` over the experts ``routing`` chose for each token of ``x`` [B, N, D]."""
        B, N, D = x.shape
        flat = x.reshape(B * N, D)
        experts = routing.experts.reshape(B * N, self.top_k)
        scores = routing.scores.reshape(B * N, self.top_k)
        out = torch.zeros_like(flat)
        for e in range(self.experts):
            token, slot = (experts == e).nonzero(as_tuple=True)
            if token.numel() == 0:
                continue
            y = self.expert(flat[token], e)
            out.index_add_(0, token, y * scores[token, slot].unsqueeze(-1))
        return out.reshape(B, N, D)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``.

    Args:
        dim: token width.
        num_heads: attention heads.
        mlp: the MLP (dense :class:`Mlp` or :class:`MoE`); both take ``(x, task)``.
        eps: LayerNorm epsilon.
    """

    def __init__(self, dim: int, num_heads: int, mlp: Mlp | MoE, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = mlp

    @property
    def is_moe(self) -> bool:
        return isinstance(self.mlp, MoE)

    def forward(self, x: torch.Tensor, task: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x), task)


def block_weight_map(m: ModelShape, i: int) -> dict[str, str]:
    """Project weight name -> state-dict key (relative to the block) of block ``i``."""
    p = f"l{i}_"
    names = {
        p + "norm1_weight": "norm1.weight",
        p + "norm1_bias": "norm1.bias",
        p + "qkv_weight": "attn.qkv.weight",
        p + "qkv_bias": "attn.qkv.bias",
        p + "attn_proj_weight": "attn.proj.weight",
        p + "attn_proj_bias": "attn.proj.bias",
        p + "norm2_weight": "norm2.weight",
        p + "norm2_bias": "norm2.bias",
    }
    if m.is_moe(i):
        for t in range(len(m.tasks)):
            names[f"{p}w_gate_T_task{t}"] = f"mlp.gates.{t}"
        for name in ("htoh4_weight", "htoh4_bias", "h4toh_weight", "h4toh_bias"):
            names[p + name] = f"mlp.{name}"
    else:
        for name in ("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"):
            layer, kind = name.split("_")
            names[p + name] = f"mlp.{layer}.{kind}"
    return names


class M3ViT(nn.Module):
    """Multi-task M³ViT: shared backbone with per-task MoE gates, one upsampling head per task.

    Args:
        cfg: the configuration; only ``cfg.model`` is used. Weights start at zero: use
            :meth:`from_weights` (e.g. with ``edgemoe.golden.weights.synthetic(cfg)``).
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        m = cfg.model
        self.cfg = cfg
        self.patch_embed = nn.Conv2d(m.in_chans, m.dim, kernel_size=m.patch, stride=m.patch)
        self.pos_embed = nn.Parameter(torch.zeros(m.tokens, m.dim))
        self.blocks = nn.ModuleList(
            Block(
                m.dim,
                m.heads,
                MoE(m.dim, m.expert_hidden, m.experts, m.top_k, len(m.tasks))
                if m.is_moe(i)
                else Mlp(m.dim, m.mlp_hidden),
                m.ln_eps,
            )
            for i in range(m.depth)
        )
        self.heads = nn.ModuleList(PUPHead(m, c) for c in m.task_channels)
        self.eval()

    @classmethod
    def from_weights(cls, cfg: Config, weights: dict[str, np.ndarray]) -> M3ViT:
        """A model of ``cfg`` holding ``weights`` (checked by ``edgemoe.golden.weights.check``)."""
        from edgemoe.golden.weights import check

        check(weights, cfg, where="M3ViT.from_weights")
        model = cls(cfg)
        state = model.state_dict()
        for name, key in model.weight_map().items():
            state[key] = torch.from_numpy(np.ascontiguousarray(weights[name], dtype=np.float32))
        model.load_state_dict(state, strict=True)
        return model

    def weight_map(self) -> dict[str, str]:
        """Every project weight name -> its state-dict key."""
        m = self.cfg.model
        names = {
            "patch_embed_weight": "patch_embed.weight",
            "patch_embed_bias": "patch_embed.bias",
            "pos_embed": "pos_embed",
        }
        for i in range(m.depth):
            names.update({k: f"blocks.{i}.{v}" for k, v in block_weight_map(m, i).items()})
        for t, head in enumerate(self.heads):
            names.update({k: f"heads.{t}.{v}" for k, v in head.weight_map(t).items()})
        return names

    def to_weights(self) -> dict[str, np.ndarray]:
        """The model's weights as a dict of float32 arrays keyed by project weight name."""
        state = self.state_dict()
        return {
            name: state[key].detach().to(torch.float32).cpu().numpy().copy()
            for name, key in self.weight_map().items()
        }

    def _check_image(self, image: torch.Tensor | np.ndarray) -> torch.Tensor:
        m = self.cfg.model
        if isinstance(image, np.ndarray):
            image = torch.from_numpy(image)
        assert isinstance(image, torch.Tensor), f"image must be a torch.Tensor or ndarray, got {type(image)}"
        expected = ("B", m.in_chans, m.image_h, m.image_w)
        assert image.dim() == 4 and tuple(image.shape[1:]) == expected[1:], (
            f"image shape must be [B, {m.in_chans}, {m.image_h}, {m.image_w}] for config "
            f"'{self.cfg.name}', got {list(image.shape)}"
        )
        dtype = self.pos_embed.dtype
        assert image.dtype == dtype, f"image dtype must be {dtype} (the model's dtype), got {image.dtype}"
        assert bool(torch.isfinite(image).all()), "image holds NaN or inf values"
        lo, hi = float(image.min()), float(image.max())
        assert lo >= 0.0 and hi <= 1.0, f"image values must lie in [0, 1), got [{lo:g}, {hi:g}]"
        return image

    def _check_task(self, task: int) -> None:
        tasks = self.cfg.model.tasks
        assert isinstance(task, int) and 0 <= task < len(tasks), (
            f"task must be an index 0..{len(tasks) - 1} ({', '.join(tasks)}), got {task!r}"
        )

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """Image [B, C, H, W] -> tokens [B, N, D]: pos_embed[0], then patches + pos_embed[1:]."""
        B = image.shape[0]
        x = self.patch_embed(image).flatten(2).transpose(1, 2)  # [B, patches, D], row-major grid
        cls_token = self.pos_embed[:1].expand(B, 1, -1)
        return torch.cat([cls_token, x + self.pos_embed[1:]], dim=1)

    @torch.no_grad()
    def forward_backbone(
        self, image: torch.Tensor | np.ndarray, task: int, return_blocks: bool = False
    ) -> ModelOutput:
        """Backbone only: tokens after the last block (and every block's output if asked)."""
        assert not self.training, "the golden model runs in eval mode (BatchNorm uses running stats)"
        self._check_task(task)
        x = self.embed(self._check_image(image))
        blocks: list[torch.Tensor] = []
        for block in self.blocks:
            x = block(x, task)
            if return_blocks:
                blocks.append(x)
        return ModelOutput(tokens=x, head=None, blocks=blocks)

    @torch.no_grad()
    def forward(
        self, image: torch.Tensor | np.ndarray, task: int, return_blocks: bool = False
    ) -> ModelOutput:
        """Image [B, C, H, W] in [0, 1) -> backbone tokens and task ``task``'s head output.

        Args:
            image: float image batch, dtype of the model (float32 unless converted).
            task: task index into ``cfg.model.tasks``.
            return_blocks: also return every block's output tokens.
        """
        out = self.forward_backbone(image, task, return_blocks)
        out.head = self.heads[task](out.tokens)
        return out
