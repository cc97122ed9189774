"""The loop-form twins (golden/fixed/loops.py) equal the fast fixed-point kernels bit for bit:
the vectorised attention and MoE compute what the kernels' loop nests compute."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgemoe.config import Config, preset
from edgemoe.golden.fixed.attention import attention
from edgemoe.golden.fixed.core import SaturationLog, quantize
from edgemoe.golden.fixed.loops import attention_loops, moe_loops
from edgemoe.golden.fixed.moe import moe
from edgemoe.golden.fixed.quantize_weights import quantize_weights
from edgemoe.golden.weights import synthetic

TINY = preset("tiny")


def with_p(cfg: Config, p: int) -> Config:
    return dataclasses.replace(cfg, hw=dataclasses.replace(cfg.hw, attn_p=p))


def qkv(cfg: Config, seed: int, std: float) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n, d = cfg.model.tokens, cfg.model.dim
    return [quantize(rng.normal(0, std, (n, d)), cfg.formats.act) for _ in range(3)]


@pytest.mark.parametrize("p", [1, 2, 4, 9])
@pytest.mark.parametrize("std", [1.5, 40.0])
def test_attention_loops_equal_the_fast_model(p: int, std: float) -> None:
    """Every group size (a partial last group for 2 and 4; one group of all tokens for 9), with
    moderate scores and with scores large enough to saturate the score format."""
    cfg = with_p(TINY, p)
    seed = p * 100 + int(std)
    q, k, v = qkv(cfg, seed, std)
    log = SaturationLog()
    fast = attention(q, k, v, cfg, log)
    assert np.array_equal(attention_loops(q, k, v, cfg), fast), f"seed {seed}"
    if std > 10:
        assert log.saturated().get("attn.score", 0) > 0, "the large case should saturate scores"


def test_attention_loops_equal_the_fast_model_on_ties() -> None:
    """Equal keys give equal scores: every step after the first is a tie, never a new max."""
    q, k, v = qkv(TINY, 7, 2.0)
    k[:] = k[0]
    assert np.array_equal(attention_loops(q, k, v, TINY), attention(q, k, v, TINY))


def moe_inputs(cfg: Config, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    q = quantize_weights(synthetic(cfg, seed=seed), cfg)
    b = cfg.model.moe_blocks[0]
    names = ["w_gate_T_task0", "htoh4_weight", "htoh4_bias", "h4toh_weight", "h4toh_bias"]
    rng = np.random.default_rng(seed)
    x = quantize(rng.standard_normal((cfg.model.tokens, cfg.model.dim)), cfg.formats.act)
    return x, [q[f"l{b}_{n}"] for n in names]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_moe_loops_equal_the_fast_model(seed: int) -> None:
    x, w = moe_inputs(TINY, seed)
    fast, routing = moe(x, *w, TINY)
    assert len(routing.active) >= 2, "the case should use several experts"
    assert np.array_equal(moe_loops(x, *w, TINY), fast), f"seed {seed}"


def test_moe_loops_equal_the_fast_model_on_tied_gates() -> None:
    """A zero gate ties every score: every token takes the lowest experts."""
    x, w = moe_inputs(TINY, 3)
    w[0] = np.zeros_like(w[0])
    fast, routing = moe(x, *w, TINY)
    assert routing.active == list(range(TINY.model.top_k))
    assert np.array_equal(moe_loops(x, *w, TINY), fast)
