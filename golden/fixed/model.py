"""The whole fixed-point M³ViT backbone for one task: what the accelerator computes, bit for bit.

Order of operations (each step a kernel of ``edgemoe.golden.fixed`` in the hardware's order):

1. pixels into ``formats.pixel``; patch embedding through the linear unit, ``+ pos_embed``;
   token 0 is ``pos_embed[0]`` (:func:`linear.patch_embed`);
2. per block ``i``:
   ``h = LN1(x)``; ``qkv = linear(h)`` (bias, ``formats.act``); reordered attention on the
   q | k | v thirds; ``a = linear_proj(attn)``; ``x = sat_act(x + a)`` (``l{i}.resid1``);
   ``h = LN2(x)``; dense block: ``fc2(fc1_gelu(h))``, MoE block: the task's gate and experts
   (:func:`moe.moe`); ``x = sat_act(x + y)`` (``l{i}.resid2``).

The residual adds are exact sums of two ``formats.act`` values saturated back into
``formats.act``. With ``formats.block_act`` each block runs with its own activation format
(``Config.block_config``): the patch embedding writes block 0's, block ``i > 0`` casts the
residual stream into its format on entry (``l{i}.entry``, rounding and saturating like every
cast), and the tokens leave in the last block's. Every cast is logged in one
:class:`SaturationLog` per forward pass under ``l{i}.<tensor>`` names. The task heads are not
here: they run in float on the host on ``to_float(tokens)``.

Twins: the HLS top ``hls/src/edgemoe_top.cpp`` (tests/host/test_host_csim.py, through the host
runtime) and the RTL top ``hw/rtl/edgemoe_top.sv`` (sim/edgemoe_top/test_edgemoe_top.py, the
``rtl`` back end); tests/golden/test_fixed_model.py.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from edgemoe.config import Config, FixedFormat
from edgemoe.golden.fixed.attention import attention
from edgemoe.golden.fixed.core import FixedPointError, SaturationLog, fit, requantize, to_float
from edgemoe.golden.fixed.layernorm import layernorm
from edgemoe.golden.fixed.linear import Epilogue, LinearWeights, linear, patch_embed, quantize_pixels
from edgemoe.golden.fixed.moe import MoERouting, moe
from edgemoe.golden.fixed.quantize_weights import QuantizedWeights, quantize_weights


@dataclass
class FixedOutput:
    """One forward pass of the fixed backbone.

    Attributes:
        tokens: [N, D] raw tokens after the last block (``formats.act``).
        embed: [N, D] raw tokens after the patch embedding.
        blocks: per block, [N, D] raw tokens after it.
        routing: MoE block index -> its :class:`moe.MoERouting` (experts per token, queues).
        log: saturation counts of every cast of this pass.
        seconds: per stage ("embed", "l0", ...) wall time of this pass.
    """

    tokens: np.ndarray
    embed: np.ndarray
    blocks: list[np.ndarray]
    routing: dict[int, MoERouting]
    log: SaturationLog
    seconds: dict[str, float] = field(default_factory=dict)


class FixedM3ViT:
    """The fixed-point backbone of a config on one set of weights.

    Args:
        cfg: the configuration (shape, formats, nonlinear parameters, attention P).
        weights: float weights by project name (``edgemoe.golden.weights``), or weights already
            quantized by :func:`quantize_weights.quantize_weights`. Head tensors are ignored.
    """

    def __init__(self, cfg: Config, weights: Mapping[str, np.ndarray] | QuantizedWeights) -> None:
        self.cfg = cfg
        self.weights = weights if isinstance(weights, QuantizedWeights) else quantize_weights(weights, cfg)
        m = cfg.model
        missing = [n for n in self._needed() if n not in self.weights]
        if missing:
            raise FixedPointError(
                f"FixedM3ViT: {len(missing)} backbone tensor(s) missing for config '{cfg.name}': "
                f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}"
            )
        self.blocks = [cfg.block_config(i) for i in range(m.depth)]
        self.act = self.blocks[-1].formats.act  # the format of the tokens that leave the backbone
        self.depth = m.depth

    def _needed(self) -> list[str]:
        m = self.cfg.model
        names = ["patch_embed_weight", "patch_embed_bias", "pos_embed"]
        for i in range(m.depth):
            p = f"l{i}_"
            names += [p + n for n in ("norm1_weight", "norm1_bias", "qkv_weight", "qkv_bias")]
            names += [p + n for n in ("attn_proj_weight", "attn_proj_bias", "norm2_weight", "norm2_bias")]
            if m.is_moe(i):
                names += [p + n for n in ("htoh4_weight", "htoh4_bias", "h4toh_weight", "h4toh_bias")]
                names += [f"{p}w_gate_T_task{t}" for t in range(len(m.tasks))]
            else:
                names += [p + n for n in ("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias")]
        return names

    def _w(self, name: str) -> np.ndarray:
        return self.weights.raw[name]

    def _experts(self, name: str) -> list[LinearWeights]:
        """The per-expert matrices of stacked expert weights ``name``, prepared once."""
        return [self.weights.linear_weights(name, e) for e in range(self.cfg.model.experts)]

    def _fmt(self, name: str) -> FixedFormat:
        return self.weights.casts[name].fmt

    def _linear(
        self,
        i: int,
        x: np.ndarray,
        name: str,
        log: SaturationLog,
        epilogue: Epilogue = Epilogue.BIAS,
        tag: str = "",
    ) -> np.ndarray:
        """Block ``i``'s linear unit with weight ``{name}_weight`` and bias ``{name}_bias`` (formats from
        storage)."""
        w, b = f"{name}_weight", f"{name}_bias"
        cfg = self.blocks[i]
        act = cfg.formats.act
        return linear(
            x, act.fmt, self.weights.linear_weights(w), self._fmt(w), self._w(b), self._fmt(b), act,
            epilogue, cfg=cfg, log=log, name=tag or name,
        )  # fmt: skip

    def embed(self, image: np.ndarray, log: SaturationLog) -> np.ndarray:
        """Image [C, H, W] float in [0, 1) -> [N, D] raw tokens in block 0's format (pixels cast, patch
        embedding)."""
        pixels = quantize_pixels(image, self.cfg, log, "pixels")
        return patch_embed(
            pixels, self._w("patch_embed_weight"), self._w("patch_embed_bias"), self._w("pos_embed"),
            self.blocks[0], log, "patch_embed",
        )  # fmt: skip

    def entry(self, i: int, x: np.ndarray, log: SaturationLog) -> np.ndarray:
        """Block ``i``'s input: tokens ``x`` of block ``i - 1`` cast into block ``i``'s format
        (``l{i}.entry``); ``x`` itself where the config has one activation format."""
        if i == 0 or not self.cfg.formats.block_act:
            return x
        return requantize(x, self.blocks[i - 1].formats.act.fmt.frac_bits, self.blocks[i].formats.act,
                          f"l{i}.entry", log)  # fmt: skip

    def attention_part(self, i: int, x: np.ndarray, log: SaturationLog) -> np.ndarray:
        """``x + proj(attn(qkv(LN1(x))))`` of block ``i`` (saturating residual add)."""
        cfg = self.blocks[i]
        act = cfg.formats.act
        D = cfg.model.dim
        p = f"l{i}_"
        h = layernorm(x, self._w(p + "norm1_weight"), self._w(p + "norm1_bias"), cfg, log, f"l{i}.norm1")
        qkv = self._linear(i, h, p + "qkv", log, tag=f"l{i}.qkv")
        a = attention(qkv[:, :D], qkv[:, D : 2 * D], qkv[:, 2 * D :], cfg, log, f"l{i}.attn")
        a = self._linear(i, a, p + "attn_proj", log, tag=f"l{i}.proj")
        return fit(x + a, act.fmt, act.overflow, f"l{i}.resid1", log)

    def mlp_part(
        self, i: int, x: np.ndarray, task: int, log: SaturationLog
    ) -> tuple[np.ndarray, MoERouting | None]:
        """``x + mlp(LN2(x))`` of block ``i``: dense MLP or the task's MoE (saturating residual add)."""
        cfg = self.blocks[i]
        act = cfg.formats.act
        p = f"l{i}_"
        h = layernorm(x, self._w(p + "norm2_weight"), self._w(p + "norm2_bias"), cfg, log, f"l{i}.norm2")
        routing = None
        if cfg.model.is_moe(i):
            y, routing = moe(
                h, self.weights.linear_weights(f"{p}w_gate_T_task{task}"), self._experts(p + "htoh4_weight"),
                self._w(p + "htoh4_bias"), self._experts(p + "h4toh_weight"), self._w(p + "h4toh_bias"),
                cfg, log, f"l{i}.moe",
            )  # fmt: skip
        else:
            y = self._linear(i, h, p + "fc1", log, Epilogue.BIAS_GELU, tag=f"l{i}.fc1")
            y = self._linear(i, y, p + "fc2", log, tag=f"l{i}.fc2")
        return fit(x + y, act.fmt, act.overflow, f"l{i}.resid2", log), routing

    def block(
        self, i: int, x: np.ndarray, task: int, log: SaturationLog
    ) -> tuple[np.ndarray, MoERouting | None]:
        """Block ``i`` on raw tokens ``x`` [N, D] of block ``i - 1`` (or the embedding) for ``task``."""
        return self.mlp_part(i, self.attention_part(i, self.entry(i, x, log), log), task, log)

    def forward(self, image: np.ndarray, task: int) -> FixedOutput:
        """Image [C, H, W] float in [0, 1) -> raw tokens after every block, for task ``task``."""
        m = self.cfg.model
        if not (isinstance(task, int | np.integer) and 0 <= task < len(m.tasks)):
            raise FixedPointError(
                f"task must be an index 0..{len(m.tasks) - 1} ({', '.join(m.tasks)}), got {task!r}"
            )
        image = np.asarray(image)
        if image.shape != (m.in_chans, m.image_h, m.image_w):
            raise FixedPointError(
                f"image shape {image.shape}, expected {(m.in_chans, m.image_h, m.image_w)} for config "
                f"'{self.cfg.name}'"
            )
        log = SaturationLog()
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        x = self.embed(image, log)
        embed = x
        seconds["embed"] = time.perf_counter() - t0
        blocks: list[np.ndarray] = []
        routing: dict[int, MoERouting] = {}
        for i in range(m.depth):
            t0 = time.perf_counter()
            x, r = self.block(i, x, int(task), log)
            seconds[f"l{i}"] = time.perf_counter() - t0
            blocks.append(x)
            if r is not None:
                routing[i] = r
        return FixedOutput(tokens=x, embed=embed, blocks=blocks, routing=routing, log=log, seconds=seconds)

    def tokens_float(self, out: FixedOutput) -> np.ndarray:
        """The final tokens as float64 (what the host's float heads read; the last block's format)."""
        return to_float(out.tokens, self.act.fmt)
