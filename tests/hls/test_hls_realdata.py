"""The HLS kernels on a trained model's activations: the real Edge-MoE weights and image
(../shared/data/edge-moe-weights) through patch embedding, LayerNorm, q/k/v, attention, projection,
the dense MLP and a MoE layer with the real gate, each kernel equal to golden/fixed, every bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgemoe import config, csim
from edgemoe.golden.fixed.attention import attention
from edgemoe.golden.fixed.layernorm import layernorm
from edgemoe.golden.fixed.linear import Epilogue, linear, patch_embed, quantize_pixels
from edgemoe.golden.fixed.moe import moe
from edgemoe.golden.fixed.quantize_weights import quantize_weights
from edgemoe.golden.weights import load_edgemoe_dir

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def real(edge_moe_data: Path) -> dict[str, object]:
    cfg = config.preset("edge-moe")
    m = cfg.model
    loaded = load_edgemoe_dir(edge_moe_data, cfg)  # the missing expert matrices are filled (synthetic)
    assert "l1_htoh4_weight" in loaded.filled
    image = np.fromfile(edge_moe_data / "image.float32.bin", dtype=np.float32)
    image = image.reshape(m.in_chans, m.image_h, m.image_w)
    return {"cfg": cfg, "w": quantize_weights(loaded.weights, cfg), "pixels": quantize_pixels(image, cfg)}


def test_real_block0_and_moe(real: dict[str, object]) -> None:
    cfg: config.Config = real["cfg"]  # type: ignore[assignment]
    w = real["w"]
    f, D = cfg.formats, cfg.model.dim
    sim = csim.load(cfg)

    def same(got: np.ndarray, want: np.ndarray, what: str) -> np.ndarray:
        assert np.array_equal(got, want), f"{what}: {np.count_nonzero(got != want)} of {want.size} differ"
        return want

    x = same(
        sim.patch_embed(real["pixels"], w["patch_embed_weight"], w["patch_embed_bias"], w["pos_embed"]),
        patch_embed(real["pixels"], w["patch_embed_weight"], w["patch_embed_bias"], w["pos_embed"], cfg),
        "patch embedding",
    )
    h = same(
        sim.layernorm(x, w["l0_norm1_weight"], w["l0_norm1_bias"]),
        layernorm(x, w["l0_norm1_weight"], w["l0_norm1_bias"], cfg),
        "norm1",
    )
    qkv = same(
        sim.linear(h, w["l0_qkv_weight"], w["l0_qkv_bias"], kind="attn"),
        linear(
            h,
            f.act.fmt,
            w["l0_qkv_weight"],
            f.linear_weight.fmt,
            w["l0_qkv_bias"],
            f.attn_bias.fmt,
            f.act,
            cfg=cfg,
        ),  # fmt: skip
        "qkv",
    )
    q, k, v = qkv[:, :D], qkv[:, D : 2 * D], qkv[:, 2 * D :]
    a = same(sim.attention(q, k, v), attention(q, k, v, cfg), "attention")
    same(
        sim.linear(a, w["l0_attn_proj_weight"], w["l0_attn_proj_bias"], kind="attn"),
        linear(
            a,
            f.act.fmt,
            w["l0_attn_proj_weight"],
            f.linear_weight.fmt,
            w["l0_attn_proj_bias"],
            f.attn_bias.fmt,
            f.act,
            cfg=cfg,
        ),  # fmt: skip
        "projection",
    )
    h2 = same(
        sim.layernorm(x, w["l0_norm2_weight"], w["l0_norm2_bias"]),
        layernorm(x, w["l0_norm2_weight"], w["l0_norm2_bias"], cfg),
        "norm2",
    )
    same(
        sim.linear(h2, w["l0_fc1_weight"], w["l0_fc1_bias"], Epilogue.BIAS_GELU),
        linear(
            h2,
            f.act.fmt,
            w["l0_fc1_weight"],
            f.linear_weight.fmt,
            w["l0_fc1_bias"],
            f.bias.fmt,
            f.act,
            Epilogue.BIAS_GELU,
            cfg=cfg,
        ),  # fmt: skip
        "fc1 + GELU",
    )
    experts = (w["l1_htoh4_weight"], w["l1_htoh4_bias"], w["l1_h4toh_weight"], w["l1_h4toh_bias"])
    for task in range(len(cfg.model.tasks)):
        gate = w[f"l1_w_gate_T_task{task}"]
        got, routing = sim.moe(h2, gate, *experts)
        want, golden_routing = moe(h2, gate, *experts, cfg)
        assert np.array_equal(routing["experts"], golden_routing.experts), f"task {task}: top-k"
        assert routing["fetched"] == golden_routing.fetched
        same(got, want, f"MoE task {task}")
