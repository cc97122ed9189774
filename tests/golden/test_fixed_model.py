"""The whole fixed-point backbone: structure, fidelity against float, the reference back end, real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgemoe.config import Config, preset
from edgemoe.fidelity import (
    StorageNoise,
    compare,
    float_blocks,
    noise_floor_db,
    sqnr_db,
    topk_mismatch,
)
from edgemoe.golden import images, weights
from edgemoe.golden.fixed.core import FixedPointError, SaturationLog, to_float
from edgemoe.golden.fixed.linear import im2col
from edgemoe.golden.fixed.model import FixedM3ViT
from edgemoe.golden.model import M3ViT


def _setup(name: str, seed: int = 0) -> tuple[Config, dict[str, np.ndarray], np.ndarray, FixedM3ViT]:
    cfg = preset(name)
    w = weights.synthetic(cfg, seed=seed)
    image = np.asarray(images.default_image(cfg), dtype=np.float32)
    return cfg, w, image, FixedM3ViT(cfg, w)


def _embed_bound(cfg: Config, model: FixedM3ViT, w: dict[str, np.ndarray], image: np.ndarray) -> np.ndarray:
    """Worst-case |fixed - float| of every embedded token value, from the stored-value errors.

    Before its cast the fixed patch embedding is exactly ``Wq·xq + bq`` and float is ``W·x + b``;
    their difference is ``(Wq - W)·xq + W·(xq - x) + (bq - b)``, bounded elementwise by
    ``|dW|·|xq| + |W|·|dx| + |db|``. Then the output cast (lsb/2), ``+ pos`` (``|dpos|``) and its
    cast (lsb/2). Token 0 is the cast of ``pos[0]``: ``|dpos| + lsb/2``. A 1e-9 slack covers the
    float64 model's own rounding.
    """
    f, m = cfg.formats, cfg.model
    q = model.weights
    deq = {
        n: to_float(q.raw[n], q.casts[n].fmt) for n in ("patch_embed_weight", "patch_embed_bias", "pos_embed")
    }
    wf = w["patch_embed_weight"].astype(np.float64).reshape(m.dim, -1)
    wq = deq["patch_embed_weight"].reshape(m.dim, -1)
    x = im2col(image.astype(np.float64), m.patch)
    xq = np.clip(np.floor(x * 2**f.pixel.fmt.frac_bits + 0.5), 0, f.pixel.fmt.max_raw) * f.pixel.fmt.lsb
    d_pos = np.abs(deq["pos_embed"] - w["pos_embed"])
    lsb = f.act.fmt.lsb
    bound = np.empty((m.tokens, m.dim))
    bound[1:] = (
        np.abs(xq) @ np.abs(wq - wf).T
        + np.abs(xq - x) @ np.abs(wf).T
        + np.abs(deq["patch_embed_bias"] - w["patch_embed_bias"])
        + lsb / 2
        + d_pos[1:]
        + lsb / 2
    )
    bound[0] = d_pos[0] + lsb / 2
    return bound + 1e-9


def _float_embed(cfg: Config, w: dict[str, np.ndarray], image: np.ndarray) -> np.ndarray:
    model = M3ViT.from_weights(cfg, w).double().eval()
    with torch.no_grad():
        return model.embed(torch.from_numpy(image.astype(np.float64))[None])[0].numpy()


@pytest.mark.parametrize("name", ["tiny", "edge-moe"])
def test_embedding_within_worst_case_bound(name: str) -> None:
    cfg, w, image, model = _setup(name)
    got = to_float(model.embed(image, SaturationLog()), cfg.formats.act.fmt)
    err = np.abs(got - _float_embed(cfg, w, image))
    bound = _embed_bound(cfg, model, w, image)
    assert np.all(err <= bound), f"worst excess {np.max(err - bound):.3e}"
    assert err.max() > 0


# ---------------------------------------------------------------------------- whole model, tiny


@pytest.fixture(scope="module")
def tiny() -> tuple[Config, dict[str, np.ndarray], np.ndarray, FixedM3ViT]:
    return _setup("tiny")


def test_tiny_forward_structure_and_determinism(tiny) -> None:
    cfg, w, image, model = tiny
    m, act = cfg.model, cfg.formats.act.fmt
    outs = [model.forward(image, t) for t in range(len(m.tasks))]
    for out in outs:
        assert out.tokens.dtype == np.int64 and out.tokens.shape == (m.tokens, m.dim)
        assert out.tokens.min() >= act.min_raw and out.tokens.max() <= act.max_raw
        assert len(out.blocks) == m.depth and np.array_equal(out.blocks[-1], out.tokens)
        assert sorted(out.routing) == sorted(m.moe_blocks)
        for r in out.routing.values():
            assert r.experts.shape == (m.tokens, m.top_k)
        assert set(out.seconds) == {"embed"} | {f"l{i}" for i in range(m.depth)}
        assert out.log.counts["l0.resid1"][1] == m.tokens * m.dim  # every cast point logged
        assert "l0.attn.softmax_sum" in out.log.counts and "l1.moe.gate" in out.log.counts
    again = model.forward(image, 0)
    assert np.array_equal(again.tokens, outs[0].tokens)
    # only the gates differ between tasks: equal through the dense block 0, different after MoE block 1
    assert np.array_equal(outs[0].blocks[0], outs[1].blocks[0])
    assert not np.array_equal(outs[0].blocks[1], outs[1].blocks[1])


@pytest.mark.parametrize("task", [0, 1])
def test_tiny_fidelity_above_noise_floor(tiny, task: int) -> None:
    cfg, w, image, model = tiny
    tf = compare(cfg, w, model, image, task)
    assert [b.block for b in tf.blocks] == list(range(-1, cfg.model.depth))
    for b in tf.blocks:
        assert b.sqnr_forced_db >= b.floor_db, (
            f"block {b.block}: {b.sqnr_forced_db:.1f} < {b.floor_db:.1f} dB"
        )
        if b.routing_mismatch == 0:
            assert b.sqnr_db == pytest.approx(b.sqnr_forced_db)
    assert not any(v["saturated"] for v in tf.saturation.values())


def test_topk_mismatch_counts_sets() -> None:
    a = np.array([[0, 1], [2, 3], [1, 0], [4, 5]])
    b = np.array([[1, 0], [2, 4], [1, 0], [5, 4]])
    assert topk_mismatch(a, b) == 1


def test_sqnr_db() -> None:
    ref = np.array([1.0, -1.0, 1.0, -1.0])
    assert sqnr_db(ref, ref) == float("inf")
    assert sqnr_db(ref, ref * 1.1) == pytest.approx(20.0)


def test_forced_routing_matches_free_routing_when_equal(tiny) -> None:
    cfg, w, image, model = tiny
    _, free, chosen = float_blocks(cfg, w, image, 0)
    _, forced, _ = float_blocks(cfg, w, image, 0, routing=chosen)
    for a, b in zip(free, forced, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- bad input


def test_bad_inputs_are_named(tiny) -> None:
    cfg, w, image, model = tiny
    with pytest.raises(FixedPointError, match="image shape"):
        model.forward(image[:, :-1], 0)
    with pytest.raises(FixedPointError, match="task must be"):
        model.forward(image, 2)
    with pytest.raises(FixedPointError, match="outside"):
        model.forward(image + 1.0, 0)
    partial = {k: v for k, v in w.items() if k != "l1_h4toh_weight"}
    with pytest.raises(FixedPointError, match="l1_h4toh_weight"):
        FixedM3ViT(cfg, partial)


# ---------------------------------------------------------------------------- the reference back end


def test_reference_backend_writes_raw_tokens_and_report(tiny, tmp_path: Path) -> None:
    from edgemoe import infer

    cfg, w, image, model = tiny
    results = infer.run(cfg, weights="seeded", out=tmp_path, backend="reference", pictures=False)
    npz = np.load(tmp_path / "outputs.npz")
    for t, name in enumerate(cfg.model.tasks):
        raw = npz[f"tokens_raw_{name}"]
        assert raw.dtype == np.int64
        assert np.array_equal(raw, model.forward(image, t).tokens)
        np.testing.assert_array_equal(
            npz[f"tokens_{name}"], to_float(raw, cfg.formats.act.fmt).astype(np.float32)
        )
        assert npz[f"head_{name}"].shape == (cfg.model.task_channels[t], cfg.model.image_h, cfg.model.image_w)
        assert np.array_equal(results[f"tokens_raw_{name}"], raw)
    report = json.loads((tmp_path / "fidelity.json").read_text())
    assert report["config"] == "tiny" and report["weights_saturated"] == {}
    for name in cfg.model.tasks:
        task = report["tasks"][name]
        assert len(task["blocks"]) == cfg.model.depth + 1
        assert all(isinstance(b["sqnr_db"], float) and b["sqnr_db"] > 0 for b in task["blocks"])
        assert task["blocks"][2]["routing_mismatch"] is not None  # block 1 is MoE
        assert "l0.qkv" in task["saturation"] and task["routing_mismatch_total"] >= 0
    assert (tmp_path / "fidelity_sqnr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------- edge-moe


def test_edge_moe_whole_model_one_task() -> None:
    cfg, w, image, model = _setup("edge-moe")
    out = model.forward(image, 0)
    tf = compare(cfg, w, model, image, 0, fixed=out)
    for b in tf.blocks:
        assert b.sqnr_forced_db >= b.floor_db, (
            f"block {b.block}: {b.sqnr_forced_db:.1f} < {b.floor_db:.1f} dB"
        )
    assert not out.log.saturated(), out.log.saturated()
    # routing flips are near-ties of the float gate; a sanity limit, not a derived bound
    routed = cfg.model.tokens * len(cfg.model.moe_blocks)
    assert tf.routing_mismatch <= 0.05 * routed


# ---------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_patch_embedding_and_dense_block0(edge_moe_data: Path) -> None:
    """Real M³ViT weights and image, edge-moe formats: embedding within its worst-case bound and
    block 0 above the noise-budget floor of fidelity.noise_floor_db."""
    cfg = preset("edge-moe")
    w = weights.load_edgemoe_dir(edge_moe_data, cfg).weights
    image = np.fromfile(edge_moe_data / "image.float32.bin", dtype=np.float32).reshape(
        cfg.model.in_chans, cfg.model.image_h, cfg.model.image_w
    )
    model = FixedM3ViT(cfg, w)
    assert not model.weights.saturated(), model.weights.report()
    log = SaturationLog()
    x0 = model.embed(image, log)
    x1, routing = model.block(0, x0, 0, log)
    assert routing is None and not log.saturated(), log.saturated()
    act = cfg.formats.act.fmt
    float_embed, float_block, _ = float_blocks_first(cfg, w, image)
    err = np.abs(to_float(x0, act) - float_embed)
    assert np.all(err <= _embed_bound(cfg, model, w, image))
    noise = StorageNoise.measure(w, model.weights)
    power = [float(np.mean(np.square(float_embed))), float(np.mean(np.square(float_block)))]
    got = sqnr_db(float_block, to_float(x1, act))
    floor = noise_floor_db(cfg, noise, 0, power)
    print(
        f"real data: embedding SQNR {sqnr_db(float_embed, to_float(x0, act)):.1f} dB, "
        f"block 0 SQNR {got:.1f} dB (floor {floor:.1f} dB)"
    )
    assert got >= floor, f"real block 0: SQNR {got:.1f} dB below the floor {floor:.1f} dB"
    assert sqnr_db(float_embed, to_float(x0, act)) >= noise_floor_db(cfg, noise, -1, power)


def float_blocks_first(
    cfg: Config, w: dict[str, np.ndarray], image: np.ndarray
) -> tuple[np.ndarray, np.ndarray, None]:
    """Float64 embedding and dense block 0 only (the real expert weights are missing)."""
    model = M3ViT.from_weights(cfg, w).double().eval()
    with torch.no_grad():
        x = model.embed(torch.from_numpy(image.astype(np.float64))[None])
        y = model.blocks[0](x, 0)
    return x[0].numpy(), y[0].numpy(), None
