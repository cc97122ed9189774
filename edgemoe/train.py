"""``edgemoe train``: train the float M³ViT on the procedural dataset, both tasks at once.

Each step draws the next ``batch`` training scenes (scene indices follow from the step, so a
resumed run sees the scenes an uninterrupted one would), runs the backbone once per task (the
tasks have their own gates) and each task's head, and minimises

    cross-entropy(semseg) + DEPTH_WEIGHT · L1(depth, metres) + balance_weight · Σ balance loss

The MoE gates train as in M³ViT (after Shazeer et al.'s noisy top-k gating): a learned,
input-dependent Gaussian noise ``softplus(x · W_noise) · N(0, 1)`` is added to the gate
logits, and the load-balancing loss ``cv²(importance) + cv²(load)`` of each MoE block keeps
the experts in use (importance: the summed gate scores of an expert; load: the smooth estimate
of how many tokens choose it, through the normal CDF of the noise). The noise weights exist
only during training: at inference the gate is the clean softmax and top-k of the golden model
(softmax over all experts, top-k not renormalised). After every optimiser step each backbone
tensor is clipped into its 16-bit storage format's range, so the accelerator stores it without
saturation.

Validation metrics (mIoU, pixel accuracy, depth RMSE) on the first ``val_images`` validation
scenes are printed every ``val_every`` steps; a checkpoint (model, noise weights, optimiser,
random state, history) is written every ``checkpoint_every`` steps and at the end. Runs are
deterministic for a seed on one machine; a run resumed from a checkpoint continues exactly.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgemoe.config import Config
from edgemoe.golden import dataset
from edgemoe.golden.heads import Window, head_stages
from edgemoe.golden.model import M3ViT, MoE, Routing

DEPTH_WEIGHT = 0.1  # per metre of L1 error, against the cross-entropy in nats
NOISE_FLOOR = 1e-2  # smallest noise standard deviation of a gate logit


class TrainError(ValueError):
    """Bad input to ``edgemoe train``: a checkpoint that does not fit, impossible settings."""


@dataclass(frozen=True)
class Settings:
    """What a training run does (stored in its checkpoints).

    Args:
        steps: optimiser steps in all.
        batch: scenes per step (each runs through both tasks).
        lr: peak learning rate of AdamW (linear warm-up, then cosine decay to zero).
        warmup: warm-up steps.
        weight_decay: AdamW weight decay.
        balance_weight: weight of the load-balancing loss.
        val_every: steps between validations (and at the end).
        val_images: validation scenes per validation.
        checkpoint_every: steps between checkpoints (and at the end).
        seed: seed of the initial weights and of the gate noise.
        crop: side of the part of the picture the heads' last two stages compute in a step, as a
            fraction of the whole (1: all of it); at a random place each step. Those stages
            cost most of a step (they run at the highest resolutions), the backbone still
            sees whole scenes.
    """

    steps: int = 300
    batch: int = 8
    lr: float = 1e-3
    warmup: int = 20
    weight_decay: float = 0.05
    balance_weight: float = 0.01
    val_every: int = 100
    val_images: int = 16
    checkpoint_every: int = 50
    seed: int = 0
    crop: float = 1.0

    def check(self) -> None:
        for name in ("steps", "batch", "val_every", "val_images", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise TrainError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise TrainError(f"--lr must be positive, got {self.lr}")
        if not 0 < self.crop <= 1:
            raise TrainError(f"--crop must be in (0, 1], got {self.crop}")


def cv_squared(x: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation of ``x`` [E]: var / mean² (0 for a single value)."""
    if x.numel() <= 1:
        return x.new_zeros(())
    return x.float().var() / (x.float().mean() ** 2 + 1e-10)


class NoisyGates(nn.Module):
    """The noise weights of every MoE block and task (training only; see the module docstring).

    Args:
        cfg: the configuration (MoE blocks, experts, tasks, dim).
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        m = cfg.model
        self.top_k = m.top_k
        self.noise = nn.ParameterDict(
            {
                f"l{b}_task{t}": nn.Parameter(torch.zeros(m.experts, m.dim))
                for b in m.moe_blocks
                for t in range(len(m.tasks))
            }
        )

    def route(
        self, moe: MoE, x: torch.Tensor, block: int, task: int, generator: torch.Generator
    ) -> tuple[Routing, torch.Tensor]:
        """Noisy top-k routing of ``x`` [..., D] and the block's load-balancing loss."""
        x = x.reshape(-1, x.shape[-1])
        clean = x @ moe.gates[task].T  # [T, E]
        std = F.softplus(x @ self.noise[f"l{block}_task{task}"].T) + NOISE_FLOOR
        noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype)
        noisy = clean + noise * std
        probs = noisy.softmax(dim=-1)
        k, experts_n = self.top_k, clean.shape[-1]
        top, experts = noisy.topk(min(k + 1, experts_n), dim=-1)
        scores = probs.gather(-1, experts[:, :k])
        importance = torch.zeros_like(probs).scatter(-1, experts[:, :k], scores).sum(0)
        if k < experts_n:
            # P(expert e stays in the top k when only its own noise is redrawn)
            normal = torch.distributions.Normal(0.0, 1.0)
            is_in = noisy > top[:, k : k + 1]
            p_in = normal.cdf((clean - top[:, k : k + 1]) / std)
            p_out = normal.cdf((clean - top[:, k - 1 : k]) / std)
            load = torch.where(is_in, p_in, p_out).sum(0)
        else:
            load = torch.full_like(importance, float(x.shape[0]))
        return Routing(experts[:, :k], scores, probs), cv_squared(importance) + cv_squared(load)


def forward_train(
    model: M3ViT,
    gates: NoisyGates,
    images: torch.Tensor,
    task: int,
    generator: torch.Generator,
    window: Window | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Task ``task``'s head output [B, Ct, H, W] (of ``window``) with noisy gates, and the balance loss."""
    x = model.embed(images)
    balance = x.new_zeros(())
    for i, block in enumerate(model.blocks):
        x = x + block.attn(block.norm1(x))
        h = block.norm2(x)
        if block.is_moe:
            routing, loss = gates.route(block.mlp, h, i, task, generator)
            x = x + block.mlp.dispatch(h, routing)
            balance = balance + loss
        else:
            x = x + block.mlp(h)
    return model.heads[task](x, window), balance


def head_window(cfg: Config, crop: float, rng: np.random.Generator) -> tuple[Window, slice, slice] | None:
    """A random window of the heads' last two stages covering ``crop`` of each side, and the
    rows and columns of the picture it yields; None when ``crop`` is 1."""
    if crop >= 1:
        return None
    m = cfg.model
    stages = head_stages(m)
    stage = max(0, stages - 2)
    fh, fw = (g * 2**stage for g in m.grid)
    h, w = max(1, round(fh * crop)), max(1, round(fw * crop))
    r0, c0 = int(rng.integers(0, fh - h + 1)), int(rng.integers(0, fw - w + 1))
    up = 2 ** (stages - stage)
    window = Window(stage, slice(r0, r0 + h), slice(c0, c0 + w))
    return window, slice(r0 * up, (r0 + h) * up), slice(c0 * up, (c0 + w) * up)


def init_model(cfg: Config, seed: int) -> M3ViT:
    """A fresh model: ViT-style initialisation (truncated normal 0.02 for every matrix, zero biases)."""
    torch.manual_seed(seed)
    model = M3ViT(cfg)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)
        if isinstance(module, MoE):
            for p in (*module.gates, module.htoh4_weight, module.h4toh_weight):
                nn.init.trunc_normal_(p, std=0.02)
    nn.init.trunc_normal_(model.pos_embed, std=0.02)
    if "depth" in cfg.model.tasks:  # start the depth head at the middle of the depth range
        nn.init.constant_(model.heads[cfg.model.tasks.index("depth")].cls.bias, dataset.MAX_DEPTH / 2)
    return model


def _storage_bounds(cfg: Config, model: M3ViT) -> list[tuple[torch.Tensor, float, float]]:
    """Every backbone parameter with the range of its storage format."""
    from edgemoe.golden.fixed.quantize_weights import is_head, storage_cast

    params = dict(model.named_parameters())
    bounds = []
    for name, key in model.weight_map().items():
        if is_head(name) or key not in params:
            continue
        fmt = storage_cast(name, cfg).fmt
        bounds.append((params[key], fmt.min_value, fmt.max_value))
    return bounds


def learning_rate(s: Settings, step: int) -> float:
    """Linear warm-up to ``s.lr``, then cosine decay to zero at ``s.steps``."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def validate(cfg: Config, model: M3ViT, count: int) -> dict[str, float]:
    """Float metrics of ``model`` on the first ``count`` validation scenes."""
    from edgemoe.evaluate import score_float

    was_training = model.training
    model.eval()
    try:
        return score_float(cfg, model, "val", count)
    finally:
        model.train(was_training)


class Trainer:
    """Model, noise weights, optimiser and random state of one run; :meth:`run` trains it.

    Args:
        cfg: the configuration.
        settings: what to do (ignored when resuming: the checkpoint's settings are used).
        checkpoint: where checkpoints go.
        resume: a checkpoint to continue from.
        steps: with ``resume``, a new total step count (None keeps the checkpoint's).
    """

    def __init__(
        self,
        cfg: Config,
        settings: Settings,
        checkpoint: Path,
        resume: Path | None = None,
        steps: int | None = None,
    ) -> None:
        self.cfg = cfg
        self.checkpoint = checkpoint
        state = self._read(resume) if resume is not None else None
        if state is not None:
            settings = Settings(**state["settings"])
            if steps is not None:
                settings = dataclasses.replace(settings, steps=steps)
        settings.check()
        dataset.check_classes(cfg)
        self.settings = settings
        self.model = init_model(cfg, settings.seed)
        self.gates = NoisyGates(cfg)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.params = [*self.model.parameters(), *self.gates.parameters()]
        self.optimizer = torch.optim.AdamW(self.params, lr=settings.lr, weight_decay=settings.weight_decay)
        self.bounds = _storage_bounds(cfg, self.model)
        self.step = 0
        self.seconds = 0.0
        self.history: list[dict[str, Any]] = []
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.gates.load_state_dict(state["gates"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
            self.step, self.seconds, self.history = state["step"], state["seconds"], state["history"]
        self.model.train()

    def _read(self, path: Path) -> dict[str, Any]:
        from edgemoe.golden.weights import config_differences

        if not path.is_file():
            raise TrainError(f"checkpoint {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
            raise TrainError(f"{path}: not a readable training checkpoint ({e})") from None
        if not isinstance(state, dict) or "settings" not in state:
            raise TrainError(f"{path}: not a training checkpoint written by 'edgemoe train'")
        diffs = [d for d in config_differences(state["config"], self.cfg) if d.startswith("model.")]
        if diffs:
            raise TrainError(
                f"{path}: a checkpoint of another model (saved -> requested): " + "; ".join(diffs)
            )
        return state

    def save(self) -> Path:
        """Write the checkpoint (through a temporary file: a crash never leaves half a checkpoint)."""
        state = {
            "config": self.cfg.to_dict(),
            "settings": dataclasses.asdict(self.settings),
            "step": self.step,
            "seconds": self.seconds,
            "history": self.history,
            "model": self.model.state_dict(),
            "gates": self.gates.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_name(self.checkpoint.name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint)
        return self.checkpoint

    def train_step(self) -> dict[str, float]:
        """One optimiser step on the next batch; returns the losses."""
        with torch.enable_grad():  # whatever the caller's mode (edgemoe.infer turns gradients off)
            return self._train_step()

    def _train_step(self) -> dict[str, float]:
        s = self.settings
        start = (self.step * s.batch) % (dataset.SPLITS["train"][1] - s.batch)
        images, labels, depth = (
            torch.from_numpy(a) for a in dataset.batch(self.cfg, "train", start, s.batch)
        )
        crop = head_window(self.cfg, s.crop, np.random.default_rng([s.seed, self.step]))
        window = None
        if crop is not None:
            window, rows, cols = crop
            labels, depth = labels[:, rows, cols], depth[:, rows, cols]
        tasks = self.cfg.model.tasks
        losses: dict[str, torch.Tensor] = {}
        balance = images.new_zeros(())
        for t, name in enumerate(tasks):
            out, bal = forward_train(self.model, self.gates, images, t, self.generator, window)
            balance = balance + bal
            if name == "semseg":
                losses[name] = F.cross_entropy(out, labels)
            else:
                losses[name] = DEPTH_WEIGHT * F.l1_loss(out[:, 0], depth)
        total = sum(losses.values()) + s.balance_weight * balance
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(s, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        with torch.no_grad():
            for p, lo, hi in self.bounds:
                p.clamp_(lo, hi)
        self.step += 1
        values = {"loss": total, **losses, "balance": balance}
        return {k: v.detach().item() for k, v in values.items()}

    def run(self, progress: bool = True) -> list[dict[str, Any]]:
        """Train to ``settings.steps``, validating and checkpointing on the way; returns the history."""
        from tqdm import tqdm

        s = self.settings
        bar = tqdm(
            total=s.steps,
            initial=self.step,
            disable=not progress,
            file=sys.stderr,
            unit="step",
            mininterval=2,
        )
        while self.step < s.steps:
            t0 = time.perf_counter()
            losses = self.train_step()
            self.seconds += time.perf_counter() - t0
            record: dict[str, Any] = {"step": self.step, **losses}
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
            bar.update(1)
            if self.step % s.val_every == 0 or self.step == s.steps:
                record["val"] = validate(self.cfg, self.model, s.val_images)
                bar.write(
                    f"[edgemoe] step {self.step}: loss {losses['loss']:.4f}, validation "
                    + ", ".join(f"{k} {v:.4f}" for k, v in record["val"].items())
                )
            self.history.append(record)
            if self.step % s.checkpoint_every == 0 or self.step == s.steps:
                self.save()
        bar.close()
        return self.history

    def weights(self) -> dict[str, np.ndarray]:
        """The trained model's weights (project names, float32), noise weights left out."""
        return self.model.to_weights()
