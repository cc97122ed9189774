"""Weights stored in the accelerator's 16-bit formats: exact round trip, errors, the shipped models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgemoe.config import preset
from edgemoe.golden import weights as W
from edgemoe.golden.fixed.quantize_weights import is_head, quantize_weights
from edgemoe.golden.stored import is_stored, load_stored, save_stored, trained_path
from edgemoe.golden.weight_files import load_any

TINY = preset("tiny")


def test_round_trip_is_the_quantized_weights(tmp_path):
    weights = W.synthetic(TINY, seed=1)
    path = save_stored(weights, tmp_path / "s.npz", TINY, note="seed 1")
    assert is_stored(path) and not is_stored(W.save(weights, tmp_path / "f.npz", TINY))
    back = load_stored(path, TINY)
    q = quantize_weights(weights, TINY)
    for name, w in back.items():
        assert w.dtype == np.float32 and w.shape == weights[name].shape
        if is_head(name):
            np.testing.assert_array_equal(w, weights[name].astype(np.float16).astype(np.float32))
        else:  # the raw values, negative ones included, survive the two byte planes
            np.testing.assert_array_equal(w, q.raw[name] * q.casts[name].fmt.lsb, err_msg=name)
    assert any((q.raw[n] < 0).any() for n in q.raw)
    # stored weights are a fixed point: storing them again changes nothing
    again = load_stored(save_stored(back, tmp_path / "t.npz", TINY), TINY)
    for name in back:
        np.testing.assert_array_equal(again[name], back[name])
    # every loader reads them
    loaded = load_any(path, TINY)
    assert loaded.filled == [] and all(np.array_equal(loaded.weights[n], back[n]) for n in back)


def test_errors_name_the_problem(tmp_path):
    weights = W.synthetic(TINY)
    big = dict(weights, l0_qkv_weight=weights["l0_qkv_weight"] * 0 + 3.0)
    with pytest.raises(W.WeightError, match=r"l0_qkv_weight: \d+ of \d+ values outside"):
        save_stored(big, tmp_path / "s.npz", TINY)
    assert not (tmp_path / "s.npz").exists()
    path = save_stored(weights, tmp_path / "s.npz", TINY)
    with pytest.raises(W.WeightError, match="saved for a different model than config 'edge-moe'"):
        load_stored(path, preset("edge-moe"))


@pytest.mark.parametrize("name", ["tiny", "edge-moe", "zcu102"])
def test_shipped_models_load(name):
    cfg = preset(name)
    path = trained_path(cfg)
    if path is None:
        pytest.skip(f"no trained model ships for '{name}'")
    assert path.stat().st_size <= 40 * 2**20
    weights = load_stored(path, cfg)
    assert quantize_weights(weights, cfg).saturated() == {}


def test_trained_model_found_by_model_shape():
    """A preset with the edge-moe model on other hardware runs edge-moe's trained model; a model
    of a shape nothing ships for gets none."""
    edge = preset("edge-moe")
    assert trained_path(edge) is not None
    assert trained_path(preset("zcu102")) == trained_path(edge)
    other = dataclasses.replace(
        edge, name="edge-moe", model=dataclasses.replace(edge.model, depth=2, moe_blocks=(1,))
    )
    assert trained_path(other) is None
