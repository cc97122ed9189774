"""The MoE layer in C-simulation (hls/include/moe.h) equals golden/fixed/moe.py, every bit: gate,
softmax, top-k with ties to the lower index, per-expert queues, fetch order and the accumulated output."""

from __future__ import annotations

import numpy as np
import pytest
from hls_inputs import no_stream_read_while_empty, raw_values  # noqa: F401 (autouse fixture)

from edgemoe import config, csim
from edgemoe.golden.fixed.moe import moe


def _weights(cfg: config.Config, seed: int) -> tuple[np.ndarray, ...]:
    f, m = cfg.formats, cfg.model
    rng = np.random.default_rng(seed)
    E, He, D = m.experts, m.expert_hidden, m.dim
    lw, b = f.linear_weight.fmt, f.bias.fmt
    return (
        raw_values(rng, lw, (E, D), small_bits=lw.frac_bits - 2),
        raw_values(rng, lw, (E, He, D), small_bits=lw.frac_bits - 3),
        raw_values(rng, b, (E, He), small_bits=b.frac_bits),
        raw_values(rng, lw, (E, D, He), small_bits=lw.frac_bits - 3),
        raw_values(rng, b, (E, D), small_bits=b.frac_bits),
    )


def _check(sim: csim.CSim, x: np.ndarray, weights: tuple[np.ndarray, ...]) -> dict[str, object]:
    want, routing = moe(x, *weights, sim.cfg)
    got, r = sim.moe(x, *weights)
    assert np.array_equal(r["logits"], routing.logits)
    assert np.array_equal(r["scores"], routing.scores)
    assert np.array_equal(r["experts"], routing.experts), "top-k (best first, ties to the lower index)"
    assert all(np.array_equal(a, b) for a, b in zip(r["queues"], routing.queues, strict=True))
    assert r["fetched"] == routing.fetched == routing.active, "active experts fetched once, ascending"
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {got.size} outputs differ"
    return r


@pytest.mark.parametrize("seed", [0, 1])
def test_moe_random(sim: csim.CSim, seed: int) -> None:
    f = sim.cfg.formats
    rng = np.random.default_rng(100 + seed)
    x = raw_values(
        rng, f.act.fmt, (sim.cfg.model.tokens, sim.cfg.model.dim), small_bits=f.act.fmt.frac_bits + 2
    )
    _check(sim, x, _weights(sim.cfg, seed))


def test_moe_equal_scores_go_to_lower_experts(sim: csim.CSim) -> None:
    """A zero gate gives every expert the same score: every token must go to experts 0..k-1."""
    cfg = sim.cfg
    f, m = cfg.formats, cfg.model
    rng = np.random.default_rng(5)
    x = raw_values(rng, f.act.fmt, (m.tokens, m.dim), small_bits=f.act.fmt.frac_bits + 2)
    gate, *rest = _weights(cfg, 5)
    r = _check(sim, x, (np.zeros_like(gate), *rest))
    assert (r["experts"] == np.arange(m.top_k)).all()
    assert r["fetched"] == list(range(m.top_k)), "idle experts must never be fetched"


def test_moe_one_expert_takes_every_token(sim: csim.CSim) -> None:
    """Every token routed to the same experts (Edge-MoE's expert loop hangs on this): queues of N tokens."""
    cfg = sim.cfg
    f, m = cfg.formats, cfg.model
    x = np.full((m.tokens, m.dim), 1 << f.act.fmt.frac_bits, dtype=np.int64)
    x[:, ::2] = f.act.fmt.max_raw  # saturating inputs and outputs
    gate, *rest = _weights(cfg, 6)
    gate = np.zeros_like(gate)
    gate[m.experts - 1] = f.linear_weight.fmt.max_raw  # the last expert wins every token
    r = _check(sim, x, (gate, *rest))
    assert r["queues"][m.experts - 1].size == m.tokens
    assert (r["experts"][:, 0] == m.experts - 1).all()
