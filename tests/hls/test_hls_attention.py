"""Reordered attention in C-simulation (hls/include/attention.h) equals golden/fixed/attention.py,
every bit, including the rotated key order of the running softmax sum."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hls_inputs import no_stream_read_while_empty, raw_values  # noqa: F401 (autouse fixture)

from edgemoe import config, csim
from edgemoe.golden.fixed.attention import attention
from edgemoe.golden.fixed.core import SaturationLog


def _qkv(cfg: config.Config, seed: int, bits: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    shape = (cfg.model.tokens, cfg.model.dim)
    return tuple(raw_values(rng, cfg.formats.act.fmt, shape, small_bits=bits) for _ in range(3))


@pytest.mark.parametrize("spread", [1, 3, 5])
def test_attention_random(sim: csim.CSim, spread: int) -> None:
    cfg = sim.cfg
    fa = cfg.formats.act.fmt.frac_bits
    q, k, v = _qkv(cfg, spread, fa + spread)  # |x| mostly below 2**spread: peaked and flat softmaxes
    log = SaturationLog()
    want = attention(q, k, v, cfg, log=log, name="attn")
    got = sim.attention(q, k, v)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {got.size} differ"
    if spread == 5:
        assert log.counts["attn.score"][0] > 0, "large activations must saturate some scores"


def test_attention_tiny_with_head_dim_8() -> None:
    """Four heads of 8: the score scale 8**-0.5 is not a power of two, so its exact rounding
    (isqrt_scale's search) decides bits."""
    base = config.preset("tiny")
    cfg = dataclasses.replace(base, name="tiny-head8", model=dataclasses.replace(base.model, heads=4))
    assert cfg.model.head_dim == 8
    sim = csim.load(cfg)
    q, k, v = _qkv(cfg, 8, cfg.formats.act.fmt.frac_bits + 2)
    got, want = sim.attention(q, k, v), attention(q, k, v, cfg)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {got.size} differ"


def test_attention_ties_and_bounds(sim: csim.CSim) -> None:
    cfg = sim.cfg
    f, N = cfg.formats, cfg.model.tokens
    q, k, v = _qkv(cfg, 21, f.act.fmt.frac_bits + 1)
    k[: N // 2] = k[0]  # equal scores: the running max must not switch on ties
    q[1] = f.act.fmt.max_raw  # saturated scores
    q[2] = f.act.fmt.min_raw
    v[3] = f.act.fmt.max_raw
    q[4] = 0  # all scores 0: uniform probabilities
    want = attention(q, k, v, cfg)
    got = sim.attention(q, k, v)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {got.size} differ"
