"""The float golden M³ViT: timm equivalence of dense blocks, MoE routing, embedding, heads, real data."""

from __future__ import annotations

import math
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from edgemoe.config import preset
from edgemoe.golden import weights as W
from edgemoe.golden.images import default_image, load_image
from edgemoe.golden.model import M3ViT, MoE

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # torchvision, imported by timm, may warn about its image extension
    from timm.models.vision_transformer import Block as TimmBlock


@pytest.fixture(scope="module")
def tiny():
    cfg = preset("tiny")
    return cfg, M3ViT.from_weights(cfg, W.synthetic(cfg))


@pytest.fixture(scope="module")
def edge():
    cfg = preset("edge-moe")
    return cfg, M3ViT.from_weights(cfg, W.synthetic(cfg))


def _image(cfg, batch: int = 1) -> torch.Tensor:
    return torch.from_numpy(default_image(cfg)).unsqueeze(0).repeat(batch, 1, 1, 1)


def _timm_block(cfg, approximate: str = "none") -> nn.Module:
    m = cfg.model
    return TimmBlock(
        dim=m.dim,
        num_heads=m.heads,
        mlp_ratio=m.mlp_hidden / m.dim,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        act_layer=partial(nn.GELU, approximate=approximate),
    ).eval()


@pytest.mark.parametrize("which", ["tiny", "edge"])
def test_dense_block_matches_timm(which, request):
    cfg, model = request.getfixturevalue(which)
    dense = [i for i in range(cfg.model.depth) if not cfg.model.is_moe(i)]
    assert dense, "the preset needs a dense block"
    x = model.embed(_image(cfg, batch=2))
    g = torch.Generator().manual_seed(0)
    x = x + 2.0 * torch.randn(x.shape, generator=g)  # residual-stream scale of a deeper block
    for i in dense:
        ours = model.blocks[i]
        ref = _timm_block(cfg)
        ref.load_state_dict(ours.state_dict(), strict=True)  # same submodule names, same weights
        with torch.no_grad():
            a, b = ours(x), ref(x)
        diff = float((a - b).abs().max())
        assert diff <= 1e-5, f"block {i}: max |ours - timm| = {diff:.3g} > 1e-5"
        # the tolerance is tight enough to tell exact GELU from its tanh approximation
        tanh = _timm_block(cfg, approximate="tanh")
        tanh.load_state_dict(ours.state_dict(), strict=True)
        with torch.no_grad():
            assert float((a - tanh(x)).abs().max()) > 1e-4


def _expert_np(w: dict, i: int, e: int, x: np.ndarray) -> np.ndarray:
    h = w[f"l{i}_htoh4_weight"][e].astype(np.float64) @ x + w[f"l{i}_htoh4_bias"][e]
    h = 0.5 * h * (1.0 + np.vectorize(math.erf)(h / math.sqrt(2.0)))
    return w[f"l{i}_h4toh_weight"][e].astype(np.float64) @ h + w[f"l{i}_h4toh_bias"][e]


@pytest.mark.parametrize("task", [0, 1])
def test_moe_matches_per_token_loop(tiny, task):
    cfg, model = tiny
    m = cfg.model
    i = m.moe_blocks[0]
    w = model.to_weights()
    moe = model.blocks[i].mlp
    x = torch.randn(2, m.tokens, m.dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = moe(x, task).numpy()
    gate = w[f"l{i}_w_gate_T_task{task}"].astype(np.float64)
    used = set()
    for b in range(x.shape[0]):
        for n in range(m.tokens):  # token 0, the class token, included
            t = x[b, n].numpy().astype(np.float64)
            logits = gate @ t
            p = np.exp(logits - logits.max())
            p /= p.sum()
            chosen = sorted(range(m.experts), key=lambda e: (-p[e], e))[: m.top_k]
            used.update(chosen)
            ref = sum(p[e] * _expert_np(w, i, e, t) for e in chosen)
            np.testing.assert_allclose(y[b, n], ref, rtol=1e-4, atol=1e-5, err_msg=f"token {b},{n}")
    assert len(used) > m.top_k, f"synthetic gates should spread tokens over experts, used {sorted(used)}"
    assert np.abs(y[:, 0]).max() > 1e-3, "the class token must go through the experts"


def test_selected_scores_not_renormalised(tiny):
    cfg, model = tiny
    m = cfg.model
    moe = model.blocks[m.moe_blocks[0]].mlp
    x = torch.randn(1, m.tokens, m.dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        r = moe.route(x, 0)
        y = moe(x, 0)
    np.testing.assert_array_equal(r.scores.numpy(), torch.gather(r.probs, -1, r.experts).numpy())
    total = r.scores.sum(-1)
    assert float(total.max()) < 1.0 - 1e-3, "top-k of a softmax over all experts sums to < 1"
    # output built with renormalised scores must differ by the factor 1/sum
    with torch.no_grad():
        renorm = sum(
            (r.scores[..., k] / total).unsqueeze(-1)
            * torch.stack([moe.expert(x[0, n : n + 1], int(r.experts[0, n, k]))[0] for n in range(m.tokens)])
            for k in range(m.top_k)
        )
    assert float((renorm - y).abs().max()) > 1e-2


def _hand_moe() -> MoE:
    """dim 2, 4 experts, top-2, hidden 2, one task, with weights simple enough to follow by hand."""
    moe = MoE(dim=2, hidden=2, experts=4, top_k=2, tasks=1)
    with torch.no_grad():
        moe.gates[0].copy_(torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 1.0], [0.0, 0.5]]))
        for e in range(4):
            moe.htoh4_weight[e] = torch.eye(2) * (e + 1)
            moe.htoh4_bias[e] = torch.tensor([0.5, -1.0])
            moe.h4toh_weight[e] = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
            moe.h4toh_bias[e] = torch.tensor([0.25 * e, -0.5])
    return moe


def test_one_token_by_hand():
    moe = _hand_moe()
    x = torch.tensor([[[1.0, 0.0]]])  # logits [0, 2, 1, 0] -> experts 1 then 2
    with torch.no_grad():
        r = moe.route(x, 0)
        y = moe(x, 0)[0, 0].numpy()
    s = 1.0 + math.exp(2.0) + math.exp(1.0) + 1.0
    p1, p2 = math.exp(2.0) / s, math.exp(1.0) / s
    assert r.experts[0, 0].tolist() == [1, 2]
    np.testing.assert_allclose(r.scores[0, 0].numpy(), [p1, p2], rtol=1e-6)

    def gelu(v: float) -> float:
        return 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0)))

    # expert e: h = gelu((e+1)*x + [0.5, -1]); out = [h0, h0 + h1] + [0.25 e, -0.5]
    def expert(e: int) -> np.ndarray:
        h0, h1 = gelu((e + 1) * 1.0 + 0.5), gelu((e + 1) * 0.0 - 1.0)
        return np.array([h0 + 0.25 * e, h0 + h1 - 0.5])

    np.testing.assert_allclose(y, p1 * expert(1) + p2 * expert(2), rtol=1e-6)


def test_ties_go_to_the_lower_expert():
    moe = _hand_moe()
    with torch.no_grad():
        moe.gates[0].copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]))
        r = moe.route(torch.tensor([[[3.0, 0.0]]]), 0)
    assert r.experts[0, 0].tolist() == [1, 2]


def test_equal_scores_send_every_token_to_the_same_experts():
    """Edge-MoE's pitfalls: equal scores (outputs left unassigned) and one expert taking every token."""
    moe = _hand_moe()
    x = torch.randn(1, 129, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        moe.gates[0].zero_()  # every probability 1/4
        r = moe.route(x, 0)
        y = moe(x, 0)[0]
        ref = torch.stack(
            [(moe.expert(x[0, n : n + 1], 0) + moe.expert(x[0, n : n + 1], 1))[0] / 4 for n in range(129)]
        )
    assert (r.experts[0] == torch.tensor([0, 1])).all()
    torch.testing.assert_close(y, ref, rtol=1e-6, atol=1e-6)


def test_embedding_layout(tiny):
    cfg, model = tiny
    m = cfg.model
    w = model.to_weights()
    image = _image(cfg)
    with torch.no_grad():
        tokens = model.embed(image)[0].numpy()
    assert tokens.shape == (m.tokens, m.dim)
    np.testing.assert_array_equal(tokens[0], w["pos_embed"][0])
    gh, gw = m.grid
    p = m.patch
    img = image[0].numpy().astype(np.float64)
    for r, c in [(0, 0), (0, gw - 1), (gh - 1, 0), (gh - 1, gw - 1)]:
        patch = img[:, r * p : (r + 1) * p, c * p : (c + 1) * p]
        n = 1 + r * gw + c
        ref = np.einsum("dchw,chw->d", w["patch_embed_weight"], patch) + w["patch_embed_bias"]
        np.testing.assert_allclose(tokens[n], ref + w["pos_embed"][n], rtol=1e-5, atol=1e-5)


def test_forward_outputs_and_tasks(tiny):
    cfg, model = tiny
    m = cfg.model
    image = _image(cfg, batch=2)
    outs = [model(image, t, return_blocks=True) for t in range(len(m.tasks))]
    for t, out in enumerate(outs):
        assert out.tokens.shape == (2, m.tokens, m.dim)
        assert out.head.shape == (2, m.task_channels[t], m.image_h, m.image_w)
        assert len(out.blocks) == m.depth
        assert torch.equal(out.blocks[-1], out.tokens)
        assert torch.isfinite(out.head).all()
        # batch elements are independent (BatchNorm in eval uses its running statistics)
        single = model(image[:1], t)
        torch.testing.assert_close(single.head[0], out.head[0], rtol=1e-5, atol=1e-5)
    # tasks share everything but the gates: equal before the first MoE block, different after
    first = m.moe_blocks[0]
    for i in range(first):
        assert torch.equal(outs[0].blocks[i], outs[1].blocks[i])
    assert not torch.allclose(outs[0].blocks[first], outs[1].blocks[first])
    back = model.forward_backbone(image, 1)
    assert back.head is None and back.blocks == [] and torch.equal(back.tokens, outs[1].tokens)


def test_head_ignores_class_token(tiny):
    cfg, model = tiny
    tokens = model.forward_backbone(_image(cfg), 0).tokens
    changed = tokens.clone()
    changed[:, 0] += 5.0
    with torch.no_grad():
        for head in model.heads:
            assert torch.equal(head(tokens), head(changed))
            changed2 = tokens.clone()
            changed2[:, 1] += 5.0
            assert not torch.equal(head(tokens), head(changed2))


def test_bad_inputs_are_named(tiny):
    cfg, model = tiny
    m = cfg.model
    with pytest.raises(AssertionError, match=rf"\[B, 3, {m.image_h}, {m.image_w}\].*got \[1, 3, 8, 8\]"):
        model(torch.zeros(1, 3, 8, 8), 0)
    with pytest.raises(AssertionError, match=r"torch.float32.*got torch.float64"):
        model(torch.zeros(1, 3, m.image_h, m.image_w, dtype=torch.float64), 0)
    with pytest.raises(AssertionError, match=r"\[0, 1\)"):
        model(torch.full((1, 3, m.image_h, m.image_w), 2.0), 0)
    with pytest.raises(AssertionError, match=r"task must be an index 0..1"):
        model(_image(cfg), 2)
    bad = W.synthetic(cfg)
    bad["l0_qkv_weight"] = bad["l0_qkv_weight"][:-1]
    with pytest.raises(W.WeightError, match=r"l0_qkv_weight: shape \[95, 32\] contradicts .* \[96, 32\]"):
        M3ViT.from_weights(cfg, bad)


def test_weights_round_trip_through_model(tiny):
    cfg, model = tiny
    ref = W.synthetic(cfg)
    got = model.to_weights()
    assert list(got) == list(W.expected_shapes(cfg)) or set(got) == set(ref)
    for name in ref:
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)


def test_edge_moe_synthetic_routes_to_many_experts(edge):
    cfg, model = edge
    m = cfg.model
    x = model.embed(_image(cfg))
    with torch.no_grad():
        for i, block in enumerate(model.blocks):
            x = x + block.attn(block.norm1(x))
            if block.is_moe:
                counts = torch.bincount(
                    block.mlp.route(block.norm2(x), 0).experts.flatten(), minlength=m.experts
                )
                assert int((counts > 0).sum()) >= m.experts // 2, f"block {i}: expert use {counts.tolist()}"
                assert int(counts.max()) < m.tokens, f"block {i}: one expert takes every token"
            x = x + block.mlp(block.norm2(x), 0)


# -- real Edge-MoE weights (skipped when ../shared/data/edge-moe-weights is absent) ---------------


@pytest.fixture(scope="module")
def real(edge_moe_data):
    cfg = preset("edge-moe")
    loaded = W.load_edgemoe_dir(edge_moe_data, cfg)
    image = load_image(edge_moe_data / "image.float32.bin", cfg)
    return cfg, loaded, M3ViT.from_weights(cfg, loaded.weights), torch.from_numpy(image)[None]


@pytest.mark.realdata
def test_real_patch_embedding_and_dense_block0(real):
    cfg, loaded, model, image = real
    assert sorted(n for n in loaded.filled if not n.startswith("head")) == sorted(
        f"l{i}_{k}" for i in cfg.model.moe_blocks for k in ("htoh4_weight", "h4toh_weight")
    )
    with torch.no_grad():
        x = model.embed(image)
        y = model.blocks[0](x)
    for name, t in (("patch embedding", x), ("block 0", y)):
        assert torch.isfinite(t).all(), f"{name}: non-finite values"
        std, peak = float(t.std()), float(t.abs().max())
        assert 0.1 < std < 20 and peak < 200, f"{name}: std {std:.3g}, max |x| {peak:.3g} not plausible"
    # the image really goes through the embedding: the patch tokens are not just pos_embed
    assert float((x[0, 1:] - model.pos_embed[1:]).detach().std()) > 0.05
    assert not cfg.model.is_moe(0)
    ref = _timm_block(cfg)
    ref.load_state_dict(model.blocks[0].state_dict(), strict=True)
    with torch.no_grad():
        diff = float((ref(x) - y).abs().max())
    assert diff <= 1e-4 * max(1.0, float(y.abs().max())), f"block 0 vs timm on real data: {diff:.3g}"


@pytest.mark.realdata
def test_real_model_runs_whole(real):
    cfg, _, model, image = real
    for t, channels in enumerate(cfg.model.task_channels):
        out = model(image, t, return_blocks=True)
        assert out.head.shape == (1, channels, cfg.model.image_h, cfg.model.image_w)
        assert torch.isfinite(out.head).all() and torch.isfinite(out.tokens).all()
        for i, b in enumerate(out.blocks):
            assert float(b.abs().max()) < 1e3, f"task {t} block {i}: max |x| {float(b.abs().max()):.3g}"
