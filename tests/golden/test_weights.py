"""Weight names and shapes, seeded synthetic weights, the project .npz and Edge-MoE .bin formats."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math

import numpy as np
import pytest

from edgemoe.config import Hardware, preset
from edgemoe.golden import weights as W
from edgemoe.golden.weight_files import load_any

TINY = preset("tiny")
EDGE = preset("edge-moe")


def test_expected_shapes_match_edge_moe_readme():
    shapes = W.expected_shapes(EDGE)
    # as listed in ../shared/data/edge-moe-weights/README.md
    assert shapes["patch_embed_weight"] == (192, 3, 16, 16)
    assert shapes["patch_embed_bias"] == (192,)
    assert shapes["pos_embed"] == (129, 192)
    assert shapes["l0_qkv_weight"] == (576, 192)
    assert shapes["l0_attn_proj_weight"] == (192, 192)
    assert shapes["l10_fc1_weight"] == (768, 192)
    assert shapes["l10_fc2_weight"] == (192, 768)
    assert shapes["l11_htoh4_bias"] == (16, 384)
    assert shapes["l11_h4toh_bias"] == (16, 192)
    assert shapes["l1_w_gate_T_task1"] == (16, 192)
    assert shapes["l1_htoh4_weight"] == (16, 384, 192)
    assert shapes["l1_h4toh_weight"] == (16, 192, 384)
    assert "l1_fc1_weight" not in shapes and "l0_htoh4_weight" not in shapes
    backbone = W.backbone_shapes(EDGE)
    # 3 + 12 blocks x 8 common + 6 dense x 4 + 6 MoE x (2 gates + 4 expert tensors)
    assert len(backbone) == 3 + 12 * 8 + 6 * 4 + 6 * 6
    assert all(n.startswith("head") for n in set(shapes) - set(backbone))
    assert shapes["head0_cls_weight"] == (7, 256, 1, 1) and shapes["head1_cls_weight"] == (1, 256, 1, 1)
    params = sum(math.prod(s) for s in backbone.values())
    common = 4 * 192 + 576 * 193 + 192 * 193
    dense = 768 * 193 + 192 * 769
    moe = 2 * 16 * 192 + 16 * (384 * 193 + 192 * 385)
    assert params == 192 * 769 + 129 * 192 + 12 * common + 6 * dense + 6 * moe


def test_synthetic_is_deterministic_and_pinned():
    a, b = W.synthetic(TINY), W.synthetic(TINY)
    assert list(a) == list(W.expected_shapes(TINY))
    for name in a:
        assert a[name].dtype == np.float32 and a[name].shape == W.expected_shapes(TINY)[name]
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    c = W.synthetic(TINY, seed=1)
    assert all(not np.array_equal(a[n], c[n]) for n in a)
    digest = hashlib.sha256(b"".join(a[n].astype("<f4").tobytes() for n in a)).hexdigest()
    # PCG64 streams and float64 -> float32 rounding are the same on every machine
    assert digest[:16] == PINNED_TINY_SHA256, f"synthetic(tiny) changed: sha256 {digest}"
    # a tensor's values do not depend on which other tensors the config has
    deeper = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, depth=3))
    np.testing.assert_array_equal(W.synthetic(deeper)["l0_qkv_weight"], a["l0_qkv_weight"])


PINNED_TINY_SHA256 = "240a5f49efd76d59"


def test_synthetic_scales_are_realistic():
    w = W.synthetic(EDGE)
    d = EDGE.model.dim
    for name, fan_in in (("l2_fc1_weight", d), ("l2_fc2_weight", 768), ("l3_h4toh_weight", 384)):
        std = float(w[name].std())
        assert abs(std * math.sqrt(fan_in) - 1.0) < 0.05, f"{name}: std {std:.4f}, fan_in {fan_in}"
    assert abs(float(w["l0_norm1_weight"].mean()) - 1.0) < 0.05
    assert float(np.abs(w["l0_qkv_bias"]).max()) < 0.2
    assert np.abs(w["patch_embed_weight"].sum(axis=(1, 2, 3))).max() < 1e-4
    assert (w["head0_bn0_running_var"] > 0).all()
    # gates route unit-variance tokens to varied experts
    tokens = np.random.Generator(np.random.PCG64(5)).standard_normal((2000, d))
    for t in range(2):
        top1 = np.argmax(tokens @ w[f"l1_w_gate_T_task{t}"].T, axis=1)
        share = np.bincount(top1, minlength=16) / len(top1)
        assert share.min() > 0.01 and share.max() < 0.25, f"task {t}: top-1 shares {share.round(3)}"
    assert not np.array_equal(w["l1_w_gate_T_task0"], w["l1_w_gate_T_task1"])


def test_check_names_every_problem():
    w = W.synthetic(TINY)
    del w["pos_embed"], w["l1_htoh4_weight"]
    w["l0_fc1_weight"] = w["l0_fc1_weight"].T.copy()
    w["l0_qkv_bias"] = w["l0_qkv_bias"].copy()
    w["l0_qkv_bias"][3] = np.nan
    w["extra"] = np.zeros(1, np.float32)
    with pytest.raises(W.WeightError) as e:
        W.check(w, TINY)
    msg = str(e.value)
    assert "pos_embed [9, 32]" in msg and "l1_htoh4_weight [4, 32, 32]" in msg
    assert "l0_fc1_weight: shape [32, 64] contradicts config 'tiny' shape [64, 32]" in msg
    assert "l0_qkv_bias: 1 NaN/inf" in msg and "extra" in msg


# -- project format --------------------------------------------------------------------------------


def test_npz_round_trip_and_manifest(tmp_path):
    w = W.synthetic(TINY, seed=3)
    path = W.save(w, tmp_path / "w.npz", TINY)
    got = W.load(path, TINY)
    assert list(got) == list(w)
    for name in w:
        np.testing.assert_array_equal(got[name], w[name], err_msg=name)
        assert got[name].dtype == np.float32
    with np.load(path, allow_pickle=False) as z:
        manifest = json.loads(str(z[W.MANIFEST_KEY]))
    assert manifest["config"] == TINY.to_dict() and manifest["dtype"] == "float32"
    assert manifest["tensors"]["l0_qkv_weight"] == [96, 32]
    # a config differing only outside the model shape loads the same weights
    other_hw = dataclasses.replace(TINY, name="tiny-hw", hw=Hardware(linear_in=8, linear_out=8, attn_p=4))
    np.testing.assert_array_equal(W.load(path, other_hw)["pos_embed"], w["pos_embed"])
    assert load_any(path, TINY).filled == []


def test_npz_rejects_other_model(tmp_path):
    path = W.save(W.synthetic(TINY), tmp_path / "w.npz", TINY)
    wider = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, mlp_hidden=128, experts=8))
    with pytest.raises(W.WeightError, match=r"model.experts: 4 -> 8; model.mlp_hidden: 64 -> 128"):
        W.load(path, wider)


def test_npz_rejects_tampered_shapes(tmp_path):
    w = W.synthetic(TINY)
    path = W.save(w, tmp_path / "w.npz", TINY)
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    data["l0_fc2_bias"] = np.zeros(31, np.float32)
    manifest = json.loads(str(data[W.MANIFEST_KEY]))
    manifest["tensors"]["l0_fc2_bias"] = [31]
    data[W.MANIFEST_KEY] = np.array(json.dumps(manifest))
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(
        W.WeightError, match=r"l0_fc2_bias: shape \[31\] contradicts config 'tiny' shape \[32\]"
    ):
        W.load(tmp_path / "bad.npz", TINY)
    with pytest.raises(W.WeightError, match="does not exist"):
        W.load(tmp_path / "none.npz", TINY)


# -- Edge-MoE .bin directory -----------------------------------------------------------------------


@pytest.mark.parametrize("cfg", [TINY, EDGE], ids=["tiny", "edge-moe"])
def test_edgemoe_dir_round_trip(tmp_path, cfg):
    w = W.synthetic(cfg, seed=7)
    W.save_edgemoe_dir(w, tmp_path, cfg)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted(f"{n}.float32.bin" for n in w)
    raw = np.fromfile(tmp_path / "l1_htoh4_weight.float32.bin", dtype="<f4")
    np.testing.assert_array_equal(raw, w["l1_htoh4_weight"].ravel())  # row-major, little-endian
    loaded = W.load_edgemoe_dir(tmp_path, cfg)
    assert loaded.filled == []
    for name in w:
        np.testing.assert_array_equal(loaded.weights[name], w[name], err_msg=name)


def test_edgemoe_dir_fills_experts_and_heads(tmp_path, caplog):
    w = W.synthetic(TINY, seed=7)
    W.save_edgemoe_dir(w, tmp_path, TINY, include_heads=False)
    (tmp_path / "l1_htoh4_weight.float32.bin").unlink()
    (tmp_path / "l1_h4toh_weight.float32.bin").unlink()
    with caplog.at_level(logging.WARNING, logger="edgemoe.golden.weights"):
        loaded = W.load_edgemoe_dir(tmp_path, TINY)
    heads = list(W.all_head_shapes(TINY))
    assert loaded.filled == ["l1_htoh4_weight", "l1_h4toh_weight"] + heads
    assert "filled expert matrices l1_htoh4_weight, l1_h4toh_weight" in caplog.text
    assert f"{len(heads)} task-head tensors" in caplog.text
    seeded = W.synthetic(TINY)
    for name in loaded.filled:
        np.testing.assert_array_equal(loaded.weights[name], seeded[name])
    np.testing.assert_array_equal(loaded.weights["l1_htoh4_bias"], w["l1_htoh4_bias"])


def test_edgemoe_dir_lists_every_missing_file(tmp_path):
    W.save_edgemoe_dir(W.synthetic(TINY), tmp_path, TINY)
    for name in ("pos_embed", "l0_qkv_weight", "l1_h4toh_bias", "l1_w_gate_T_task1"):
        (tmp_path / f"{name}.float32.bin").unlink()
    with pytest.raises(W.WeightError) as e:
        W.load_edgemoe_dir(tmp_path, TINY)
    msg = str(e.value)
    # one line: how many are there, how many are missing, the first few by name; details: all of them
    assert "73 of 77 weight files of config 'tiny' present; 4 missing file(s)" in msg
    assert "pos_embed.float32.bin [9, 32]" in msg and msg.endswith("and 1 more")
    assert e.value.details == [
        f"missing {name}"
        for name in (
            "pos_embed.float32.bin [9, 32]",
            "l0_qkv_weight.float32.bin [96, 32]",
            "l1_w_gate_T_task1.float32.bin [4, 32]",
            "l1_h4toh_bias.float32.bin [4, 32]",
        )
    ]


def test_edgemoe_dir_bad_sizes(tmp_path):
    W.save_edgemoe_dir(W.synthetic(TINY), tmp_path, TINY)
    fc1 = tmp_path / "l0_fc1_bias.float32.bin"
    fc1.write_bytes(fc1.read_bytes()[:-4])
    qkv = tmp_path / "l0_qkv_bias.float32.bin"
    qkv.write_bytes(qkv.read_bytes() + b"\0\0\0\0")
    with pytest.raises(W.WeightError) as e:
        W.load_edgemoe_dir(tmp_path, TINY)
    msg = str(e.value)
    assert "l0_fc1_bias.float32.bin is truncated: expected 256 bytes (float32 [64]), got 252 bytes" in msg
    assert "l0_qkv_bias.float32.bin is oversized: expected 384 bytes (float32 [96]), got 388 bytes" in msg


def test_edgemoe_dir_non_finite(tmp_path):
    W.save_edgemoe_dir(W.synthetic(TINY), tmp_path, TINY)
    a = np.fromfile(tmp_path / "l0_norm2_weight.float32.bin", dtype="<f4")
    a[5] = np.inf
    a.tofile(tmp_path / "l0_norm2_weight.float32.bin")
    with pytest.raises(
        W.WeightError, match=r"tensor l0_norm2_weight \(l0_norm2_weight.float32.bin\) holds 1 NaN"
    ):
        W.load_edgemoe_dir(tmp_path, TINY)


def test_edgemoe_save_rejects_wrong_shape(tmp_path):
    w = W.synthetic(TINY)
    w["l1_htoh4_weight"] = np.zeros((4, 32, 16), np.float32)
    with pytest.raises(
        W.WeightError, match=r"l1_htoh4_weight: shape \[4, 32, 16\] contradicts .* \[4, 32, 32\]"
    ):
        W.save_edgemoe_dir(w, tmp_path, TINY)
    with pytest.raises(W.WeightError, match="does not exist"):
        W.load_edgemoe_dir(tmp_path / "absent", TINY)


@pytest.mark.realdata
def test_real_edgemoe_dir(edge_moe_data, caplog):
    with caplog.at_level(logging.WARNING, logger="edgemoe.golden.weights"):
        loaded = W.load_edgemoe_dir(edge_moe_data, EDGE)
    experts = [f"l{i}_{k}" for i in EDGE.model.moe_blocks for k in ("htoh4_weight", "h4toh_weight")]
    assert loaded.filled == [n for n in W.expected_shapes(EDGE) if n in experts or n.startswith("head")]
    assert "filled expert matrices" in caplog.text and "l11_h4toh_weight" in caplog.text
    raw = np.fromfile(edge_moe_data / "pos_embed.float32.bin", dtype="<f4").reshape(129, 192)
    np.testing.assert_array_equal(loaded.weights["pos_embed"], raw)
    W.check(loaded.weights, EDGE)
    # trained weights: biases and gammas are far from the synthetic ones
    assert float(loaded.weights["l0_norm2_weight"].mean()) > 1.2
