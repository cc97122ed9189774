"""Weights into their storage formats (golden/fixed/quantize_weights.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edgemoe.config import BiasKind, preset
from edgemoe.golden.fixed.core import FixedPointError, to_float
from edgemoe.golden.fixed.quantize_weights import bias_kind, quantize_weights, storage_cast
from edgemoe.golden.weights import load_edgemoe_dir, synthetic


@pytest.fixture(scope="module")
def tiny():
    cfg = preset("tiny")
    return cfg, synthetic(cfg, seed=3)


def test_each_tensor_gets_its_storage_cast(tiny) -> None:
    cfg, weights = tiny
    f = cfg.formats
    q = quantize_weights(weights, cfg)
    expect = {
        "patch_embed_weight": f.patch_weight,
        "patch_embed_bias": f.bias,
        "pos_embed": f.pos_embed,
        "l0_qkv_weight": f.linear_weight,
        "l0_qkv_bias": f.attn_bias,
        "l0_attn_proj_bias": f.attn_bias,
        "l0_norm1_weight": f.norm,
        "l0_norm2_bias": f.norm,
        "l0_fc1_weight": f.linear_weight,
        "l0_fc2_bias": f.bias,
        "l1_w_gate_T_task1": f.linear_weight,
        "l1_htoh4_weight": f.linear_weight,
        "l1_htoh4_bias": f.bias,
        "l1_h4toh_bias": f.bias,
    }
    for name, cast in expect.items():
        assert q.casts[name] == cast, name
    heads = sorted(n for n in weights if n.startswith("head"))
    assert heads and q.skipped == heads and not any(n in q for n in heads)
    assert set(q.keys()) == set(weights) - set(heads)
    for name, raw in q.raw.items():
        fmt = q.casts[name].fmt
        assert raw.dtype == np.int64 and raw.shape == weights[name].shape
        err = np.abs(to_float(raw, fmt) - weights[name].astype(np.float64))
        assert err.max() <= fmt.lsb / 2, name  # round half up, nothing saturates here
    assert not q.saturated() and "no value saturated" in q.report()


def test_bias_kind_follows_the_storage_format(tiny) -> None:
    cfg, _ = tiny
    assert bias_kind(None, cfg) is BiasKind.NONE
    for name in ("l0_qkv_bias", "l0_attn_proj_bias"):
        assert bias_kind(name, cfg) is BiasKind.ATTN_BIAS, name
    for name in ("patch_embed_bias", "l0_fc1_bias", "l0_fc2_bias", "l1_htoh4_bias", "l1_h4toh_bias"):
        assert bias_kind(name, cfg) is BiasKind.BIAS, name
    with pytest.raises(FixedPointError, match="'l0_norm1_bias' is not the bias of a linear layer"):
        bias_kind("l0_norm1_bias", cfg)


def test_out_of_range_values_saturate_and_are_reported_per_tensor(tiny) -> None:
    cfg, weights = tiny
    w = dict(weights)
    fmt = cfg.formats.linear_weight.fmt
    w["l0_fc1_weight"] = w["l0_fc1_weight"].copy()
    w["l0_fc1_weight"][3, 4] = 100.0  # ap_fixed<16,2> holds [-2, 2): a wrap would give a small value
    w["l0_fc1_weight"][5, 6] = -7.5
    w["l1_htoh4_bias"] = w["l1_htoh4_bias"].copy()
    w["l1_htoh4_bias"][0, 0] = 1e9
    q = quantize_weights(w, cfg)
    assert q["l0_fc1_weight"][3, 4] == fmt.max_raw and q["l0_fc1_weight"][5, 6] == fmt.min_raw
    assert q["l1_htoh4_bias"][0, 0] == cfg.formats.bias.fmt.max_raw
    assert q.saturated() == {"l0_fc1_weight": 2, "l1_htoh4_bias": 1}
    report = q.report()
    assert "l0_fc1_weight: 2 of" in report and "max |w| 100" in report and "l1_htoh4_bias: 1 of" in report


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weight_is_an_error_naming_the_tensor(tiny, bad: float) -> None:
    cfg, weights = tiny
    w = dict(weights)
    w["l1_h4toh_weight"] = w["l1_h4toh_weight"].copy()
    w["l1_h4toh_weight"][2, 1, 0] = bad
    with pytest.raises(
        FixedPointError, match=r"l1_h4toh_weight: 1 non-finite value\(s\), first at index \(2, 1, 0\)"
    ):
        quantize_weights(w, cfg)


def test_unknown_tensor_name_is_an_error(tiny) -> None:
    cfg, _ = tiny
    with pytest.raises(FixedPointError, match="'l0_mystery_weight' has no storage format"):
        storage_cast("l0_mystery_weight", cfg)


@pytest.mark.realdata
def test_real_weights_fit_the_edge_moe_storage_formats(edge_moe_data) -> None:
    cfg = preset("edge-moe")
    weights = load_edgemoe_dir(edge_moe_data, cfg).weights
    q = quantize_weights(weights, cfg)
    assert not q.saturated(), q.report()
    for name in ("pos_embed", "l0_qkv_bias", "l0_norm1_weight", "patch_embed_weight"):
        fmt = q.casts[name].fmt
        assert np.abs(to_float(q[name], fmt) - weights[name]).max() <= fmt.lsb / 2
