"""Mixture of experts with patch reordering (golden/fixed/moe.py).

The cases where Edge-MoE's own code breaks (docs/architecture.md, "The model") each have a
test: tied scores, every token choosing the same expert (all N tokens in one queue), experts
that receive no token. The queued computation is checked bit for bit against an independent
per-token loop.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from edgemoe.config import Cast, Overflow, Rounding, preset
from edgemoe.golden.fixed import nonlinear, nonlinear_bounds
from edgemoe.golden.fixed.core import FixedPointError, SaturationLog, quantize, to_float
from edgemoe.golden.fixed.linear import Epilogue, linear, prepare_weights
from edgemoe.golden.fixed.moe import moe, moe_from_weights, route, top_k
from edgemoe.golden.fixed.quantize_weights import quantize_weights
from edgemoe.golden.model import MoE
from edgemoe.golden.weights import synthetic

PRESETS = ("tiny", "edge-moe")


def cast_np(v: np.ndarray, frac_from: int, cast: Cast) -> np.ndarray:
    """``cast`` in plain numpy integer arithmetic (independent of core.requantize)."""
    v = np.asarray(v, dtype=np.int64)
    shift = frac_from - cast.fmt.frac_bits
    if shift > 0:
        if cast.rounding is Rounding.ROUND_HALF_UP:
            v = v + (1 << (shift - 1))
        v = np.floor_divide(v, 1 << shift)
    else:
        v = v * (1 << -shift)
    assert cast.overflow is Overflow.SATURATE
    return np.minimum(np.maximum(v, cast.fmt.min_raw), cast.fmt.max_raw)


def per_token_moe(x, gate_w, w1, b1, w2, b2, cfg):
    """The MoE formula one token at a time: y_t = Σ over its top-k experts, ascending, of
    sat(y + cast(p · cast(W2·gelu(cast(W1·x + b1)) + b2))). Returns (y, experts per token)."""
    f, m = cfg.formats, cfg.model
    fa, fw, fb, fg = (
        f.act.fmt.frac_bits,
        f.linear_weight.fmt.frac_bits,
        f.bias.fmt.frac_bits,
        f.gate_score.fmt.frac_bits,
    )
    out = np.zeros_like(x)
    chosen_all = []
    for t in range(x.shape[0]):
        logits = cast_np(gate_w @ x[t], fa + fw, f.act)
        scores = nonlinear.softmax(logits[None], f.act.fmt, cfg, f.gate_score)[0]
        chosen = sorted(range(m.experts), key=lambda e, s=scores: (-int(s[e]), e))[: m.top_k]
        chosen_all.append(chosen)
        acc = np.zeros(m.dim, dtype=np.int64)
        for e in sorted(chosen):
            h = cast_np(w1[e] @ x[t] + b1[e] * (1 << (fa + fw - fb)), fa + fw, f.act)
            h = nonlinear.gelu(h, f.act, f.gelu_delta, cfg.nonlinear)
            y = cast_np(w2[e] @ h + b2[e] * (1 << (fa + fw - fb)), fa + fw, f.act)
            acc = cast_np(acc + cast_np(y * scores[e], fa + fg, f.act), fa, f.act)
        out[t] = acc
    return out, np.array(chosen_all)


@functools.lru_cache(maxsize=4)
def float_weights(name: str) -> dict[str, np.ndarray]:
    return synthetic(preset(name), seed=4)


@functools.lru_cache(maxsize=4)
def raw_weights(name: str):
    return quantize_weights(float_weights(name), preset(name))


EXPERT_TENSORS = ("htoh4_weight", "htoh4_bias", "h4toh_weight", "h4toh_bias")


def moe_weights(cfg) -> list[np.ndarray]:
    """Raw fc1 / fc2 weights and biases of the first MoE block."""
    q = raw_weights(cfg.name)
    return [q[f"l{cfg.model.moe_blocks[0]}_{k}"] for k in EXPERT_TENSORS]


def tokens(cfg, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return quantize(rng.standard_normal((cfg.model.tokens, cfg.model.dim)) * scale, cfg.formats.act)


def check_against_per_token(x, gate_w, experts_w, cfg):
    y, routing = moe(x, gate_w, *experts_w, cfg)
    ref, chosen = per_token_moe(x, gate_w, *experts_w, cfg)
    assert np.array_equal(routing.experts, chosen)
    assert np.array_equal(y, ref)
    return y, routing


def test_top_k_best_first_ties_to_the_lower_index() -> None:
    s = np.array([[5, 5, 5, 5], [1, 7, 7, 3], [9, 2, 9, 9], [0, 0, 1, 0], [4, 8, 2, 8]])
    assert top_k(s, 2).tolist() == [[0, 1], [1, 2], [0, 2], [2, 0], [1, 3]]
    assert top_k(s, 4)[2].tolist() == [0, 2, 3, 1]


@pytest.mark.parametrize("name", PRESETS)
def test_queued_moe_equals_the_per_token_formula(name: str) -> None:
    cfg = preset(name)
    q = raw_weights(name)
    i = cfg.model.moe_blocks[0]
    x = tokens(cfg, 5)
    log = SaturationLog()
    y, routing = moe_from_weights(x, q, i, 1, cfg, log)
    experts_w = moe_weights(cfg)
    ref, chosen = per_token_moe(x, q[f"l{i}_w_gate_T_task1"], *experts_w, cfg)
    assert np.array_equal(routing.experts, chosen) and np.array_equal(y, ref)
    # queues: token order, consistent with the choices; active = non-empty, ascending; fetched = active
    for e, queue in enumerate(routing.queues):
        assert queue.tolist() == [t for t in range(cfg.model.tokens) if e in chosen[t]]
    assert routing.active == [e for e in range(cfg.model.experts) if routing.queues[e].size]
    assert routing.fetched == routing.active
    assert np.array_equal(routing.topk_scores, np.take_along_axis(routing.scores, chosen, axis=-1))
    assert len(routing.active) >= 2 and not log.saturated()
    steps = ("gate", "fc1", "fc2", "fc2.scale", "fc2.accumulate")
    assert set(log.counts) == {f"l{i}.moe.{s}" for s in steps}


@pytest.mark.parametrize("name", PRESETS)
def test_tied_scores_every_token_takes_the_lowest_experts(name: str) -> None:
    """A zero gate gives every expert the same score: top-k is experts 0..k-1 for all N tokens."""
    cfg = preset(name)
    m = cfg.model
    x = tokens(cfg, 6)
    gate = np.zeros((m.experts, m.dim), dtype=np.int64)
    y, routing = check_against_per_token(x, gate, moe_weights(cfg), cfg)
    assert (routing.experts == np.arange(m.top_k)).all()
    assert (routing.scores == routing.scores[0, 0]).all()
    for e in range(m.experts):
        assert routing.queues[e].tolist() == (list(range(m.tokens)) if e < m.top_k else [])
    assert routing.active == routing.fetched == list(range(m.top_k))


@pytest.mark.parametrize("name", PRESETS)
def test_every_token_chooses_the_same_expert(name: str) -> None:
    """Expert 3 wins every token by a wide margin: all N tokens (129 in edge-moe) in one queue."""
    cfg = preset(name)
    m, f = cfg.model, cfg.formats
    x = tokens(cfg, 8)
    x[:, 0] = quantize(np.float64(4.0), f.act)  # a channel that is large and positive for every token
    rng = np.random.default_rng(9)
    gate = quantize(rng.standard_normal((m.experts, m.dim)) * 0.3 / math.sqrt(m.dim), f.linear_weight)
    gate[:, 0] = 0
    gate[3, 0] = f.linear_weight.fmt.max_raw  # +~8 on expert 3's logit
    y, routing = check_against_per_token(x, gate, moe_weights(cfg), cfg)
    assert (routing.experts[:, 0] == 3).all()
    assert routing.queues[3].tolist() == list(range(m.tokens))
    assert 3 in routing.active and routing.fetched == routing.active


def test_idle_experts_are_never_fetched_or_used() -> None:
    """Experts without tokens: garbage in their weights changes nothing, and they are not fetched."""
    cfg = preset("edge-moe")
    m, f = cfg.model, cfg.formats
    x = tokens(cfg, 11)
    gate = np.zeros((m.experts, m.dim), dtype=np.int64)
    gate[5] = quantize(np.full(m.dim, 0.5), f.linear_weight)  # experts 5 and then 0 for most tokens
    gate[9] = -gate[5]
    w = moe_weights(cfg)
    y, routing = moe(x, gate, *w, cfg)
    idle = [e for e in range(m.experts) if e not in routing.active]
    assert len(idle) >= m.experts - 4 and not set(idle) & set(routing.fetched)
    garbage = [a.copy() for a in w]
    for a, fmt in zip(garbage, (f.linear_weight, f.bias, f.linear_weight, f.bias), strict=True):
        a[idle] = fmt.fmt.max_raw
    y2, routing2 = moe(x, gate, *garbage, cfg)
    assert np.array_equal(y, y2) and routing2.fetched == routing.fetched


def test_moe_rejects_bad_shapes() -> None:
    cfg = preset("tiny")
    w = moe_weights(cfg)
    gate = np.zeros((cfg.model.experts + 1, cfg.model.dim), dtype=np.int64)
    with pytest.raises(FixedPointError, match=r"gate weights shape \(5, 32\)"):
        moe(tokens(cfg, 1), gate, *w, cfg)


GELU_LIPSCHITZ = 1.13  # max |GELU'(x)| = 1.1289 (at x ≈ 2.42)


def moe_float_and_bound(x, gate, w1, b1, w2, b2, routing, cfg, lsb_w: float, lsb_b: float):
    """Float64 MoE formula and a per-output bound of |fixed − float|, token by token.

    ``x`` and the weights are float64 values; ``lsb_w``/``lsb_b`` are the storage errors ×2 of the
    weights the fixed kernel used (0 when it used exactly these values). Derivation, with
    ``q = lsb_act/2``, ``G``/``S`` the gelu/softmax bounds of nonlinear:

    - logits: ``dl ≤ Σ|x|·lsb_w/2 + q`` (exact dot product, one cast); probabilities:
      ``dp_e ≤ S + 2·dl·p_e`` (softmax moves by at most 2·max|dl|·p_e when the logits move);
    - fc1: ``da ≤ Σ|x|·lsb_w/2 + lsb_b/2 + q``; gelu: ``dh ≤ 1.13·da + G``;
    - fc2: ``do ≤ Σ_k(|W2| + lsb_w/2)·dh + Σ_k(|h| + dh)·lsb_w/2 + lsb_b/2 + q``;
    - scale and add: ``|p'o' − p·o| ≤ dp·(|o| + do) + p·do + q`` per selected expert, summed.

    Returns (reference [N, D], bound [N, D], float top-k sets, probabilities [N, E]).
    """
    f, m = cfg.formats, cfg.model
    q = f.act.fmt.lsb / 2
    sx = np.abs(x).sum(1, keepdims=True)
    logits = x @ gate.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    chosen = [set(np.argsort(-p[t], kind="stable")[: m.top_k].tolist()) for t in range(len(x))]
    dl = sx * lsb_w / 2 + q
    dp = nonlinear_bounds.softmax_bound(cfg, f.act.fmt, f.gate_score, m.experts).abs + 2 * dl * p
    G = nonlinear_bounds.gelu_bound(cfg.nonlinear, f.act, f.gelu_delta).abs
    ref = np.zeros_like(x)
    bound = np.zeros_like(x)
    for e in range(m.experts):
        a = x @ w1[e].T + b1[e]
        h = np.array([math.erf(v) for v in (a / math.sqrt(2)).ravel()]).reshape(a.shape)
        h = 0.5 * a * (1 + h)
        o = h @ w2[e].T + b2[e]
        da = sx * lsb_w / 2 + lsb_b / 2 + q
        dh = GELU_LIPSCHITZ * da + G
        do = dh * (np.abs(w2[e]).sum(1) + m.expert_hidden * lsb_w / 2) + (np.abs(h) + dh).sum(
            1, keepdims=True
        ) * (lsb_w / 2)
        do = do + lsb_b / 2 + q
        sel = np.array([e in c for c in chosen])[:, None]
        pe, dpe = p[:, e : e + 1], dp[:, e : e + 1]
        ref += np.where(sel, pe * o, 0.0)
        bound += np.where(sel, dpe * (np.abs(o) + do) + pe * do + q, 0.0)
    return ref, bound + 1e-12, chosen, p, dp


def check_float(y, routing, ref, bound, chosen, p, dp, cfg, max_mismatch: int):
    """Tokens routed alike: within the bound. Tokens routed differently: a genuine near-tie."""
    f = cfg.formats
    same = np.array([set(routing.experts[t].tolist()) == chosen[t] for t in range(len(chosen))])
    for t in np.flatnonzero(~same):
        fixed_only = set(routing.experts[t].tolist()) - chosen[t]
        float_only = chosen[t] - set(routing.experts[t].tolist())
        for a in fixed_only:
            for b in float_only:
                assert p[t, b] - p[t, a] <= dp[t, a] + dp[t, b], (t, a, b)
    assert (~same).sum() <= max_mismatch
    err = np.abs(to_float(y, f.act.fmt) - ref)[same]
    assert (err <= bound[same]).all(), (err.max(), (err / bound[same]).max())
    return float(err.max()), float((err / bound[same]).max()), int((~same).sum())


@pytest.mark.parametrize("name", PRESETS)
def test_moe_vs_float64_formula_on_the_stored_values(name: str) -> None:
    cfg = preset(name)
    f = cfg.formats
    q = raw_weights(name)
    i = cfg.model.moe_blocks[0]
    x = tokens(cfg, 21)
    log = SaturationLog()
    y, routing = moe_from_weights(x, q, i, 0, cfg, log)
    vals = [to_float(q[f"l{i}_w_gate_T_task0"], f.linear_weight.fmt)]
    vals += [to_float(a, c.fmt) for a, c in zip(moe_weights(cfg), (f.linear_weight, f.bias) * 2, strict=True)]
    out = moe_float_and_bound(to_float(x, f.act.fmt), *vals, routing, cfg, 0.0, 0.0)
    check_float(y, routing, *out, cfg, max_mismatch=2)
    assert not log.saturated()


@pytest.mark.parametrize("name", PRESETS)
def test_moe_vs_torch_moe_on_the_float_weights(name: str) -> None:
    """The golden torch MoE (routing in float) on the float weights and the same input values."""
    cfg = preset(name)
    f, m = cfg.formats, cfg.model
    weights = float_weights(name)
    i, task = m.moe_blocks[0], 1
    module = MoE(m.dim, m.expert_hidden, m.experts, m.top_k, len(m.tasks)).double()
    with torch.no_grad():
        for t in range(len(m.tasks)):
            module.gates[t].copy_(torch.from_numpy(weights[f"l{i}_w_gate_T_task{t}"].astype(np.float64)))
        for k in EXPERT_TENSORS:
            getattr(module, k).copy_(torch.from_numpy(weights[f"l{i}_{k}"].astype(np.float64)))
    x = tokens(cfg, 22)
    xf = to_float(x, f.act.fmt)
    y, routing = moe_from_weights(x, raw_weights(name), i, task, cfg)
    with torch.no_grad():
        ref_t = module(torch.from_numpy(xf[None]), task)[0].numpy()
        r_t = module.route(torch.from_numpy(xf), task)
    vals = [weights[f"l{i}_w_gate_T_task{task}"]] + [weights[f"l{i}_{k}"] for k in EXPERT_TENSORS]
    vals = [v.astype(np.float64) for v in vals]
    ref, bound, chosen, p, dp = moe_float_and_bound(
        xf, *vals, routing, cfg, f.linear_weight.fmt.lsb, f.bias.fmt.lsb
    )
    # the float64 formula is the torch module
    assert np.abs(ref - ref_t).max() < 1e-9
    assert [set(r) for r in r_t.experts.tolist()] == chosen
    check_float(y, routing, ref_t, bound, chosen, p, dp, cfg, max_mismatch=2)


def test_saturating_experts_match_the_per_token_formula() -> None:
    """Gate logits, fc1, fc2 and the accumulation all saturate; the queued MoE still equals the
    per-token formula bit for bit, and every saturation is counted."""
    cfg = preset("tiny")
    f, m = cfg.formats, cfg.model
    rng = np.random.default_rng(30)
    x = quantize(8.0 + rng.uniform(0, 1, (m.tokens, m.dim)), f.act)
    gate = np.zeros((m.experts, m.dim), dtype=np.int64)
    gate[[0, 1]] = f.linear_weight.fmt.max_raw  # two saturated, equal logits: p = 1/2 each
    wmax, bmax = f.linear_weight.fmt.max_raw, f.bias.fmt.max_raw
    w = [
        np.full((m.experts, m.expert_hidden, m.dim), wmax, dtype=np.int64),
        np.full((m.experts, m.expert_hidden), bmax, dtype=np.int64),
        np.full((m.experts, m.dim, m.expert_hidden), wmax, dtype=np.int64),
        np.full((m.experts, m.dim), bmax, dtype=np.int64),
    ]
    log = SaturationLog()
    y, routing = moe(x, gate, *w, cfg, log, "moe")
    ref, chosen = per_token_moe(x, gate, *w, cfg)
    assert np.array_equal(y, ref) and (chosen == [0, 1]).all()
    assert (y == f.act.fmt.max_raw).all()
    sat = log.saturated()
    assert sat["moe.gate"] == 2 * m.tokens and sat["moe.fc1"] == 2 * m.tokens * m.expert_hidden
    assert sat["moe.fc2"] == 2 * m.tokens * m.dim and sat["moe.fc2.accumulate"] == m.tokens * m.dim


def literal_moe(x, gate, w1, b1, w2, b2, cfg, log, name):
    """Step 5 of moe.py literally: per active expert, ascending, two linear-unit passes
    (fc1 with BIAS_GELU, fc2 with EXPERT_ACCUMULATE into the running output buffer)."""
    f = cfg.formats
    routing = route(x, gate, cfg, log, name)
    out = np.zeros_like(x)
    for e in routing.active:
        q = routing.queues[e]
        h = linear(
            x[q], f.act.fmt, w1[e], f.linear_weight.fmt, b1[e], f.bias.fmt, f.act, Epilogue.BIAS_GELU,
            cfg=cfg, log=log, name=f"{name}.fc1",
        )  # fmt: skip
        out = linear(
            h, f.act.fmt, w2[e], f.linear_weight.fmt, b2[e], f.bias.fmt, f.act, Epilogue.EXPERT_ACCUMULATE,
            cfg=cfg, log=log, name=f"{name}.fc2", scores_raw=routing.scores[q, e], acc_raw=out, rows=q,
        )  # fmt: skip
    return out, routing


@pytest.mark.parametrize("case", ["tiny", "edge-moe", "saturating", "wide", "prepared"])
def test_batched_experts_equal_the_literal_linear_unit_loop(case: str) -> None:
    """moe() runs the experts batched; outputs, routing and every saturation count equal the
    literal per-expert loop of linear() calls, also when fc1, fc2, the scale and the
    accumulation saturate, with inputs too wide for one float64 product per expert (each expert
    then takes matmul_exact's split), and with the weights prepared once (LinearWeights)."""
    cfg = preset({"saturating": "tiny", "prepared": "tiny", "wide": "edge-moe"}.get(case, case))
    f, m = cfg.formats, cfg.model
    w = moe_weights(cfg)
    gate = raw_weights(cfg.name)[f"l{m.moe_blocks[0]}_w_gate_T_task0"]
    x = tokens(cfg, 41, scale=4.0)
    if case in ("saturating", "wide"):
        rng = np.random.default_rng(42)
        lim = f.linear_weight.fmt.max_raw
        gate, w1, w2 = (rng.integers(-lim, lim, size=a.shape, endpoint=True) for a in (gate, w[0], w[2]))
        gate[[0, 1]] = lim  # experts 0 and 1 tie for most tokens: two large halves to accumulate
        w = [w1, w[1], w2, w[3]]
        x = quantize(rng.uniform(0, 64, (m.tokens, m.dim)), f.act)
        if case == "wide":  # full-range tokens times full-range weights: beyond 2**53 in float64
            x = quantize(rng.uniform(-500, 500, (m.tokens, m.dim)), f.act)
    args = [gate, *w]
    if case == "prepared":
        lw = f.linear_weight.fmt
        args = [
            prepare_weights(gate, lw),
            [prepare_weights(a, lw) for a in w[0]],
            w[1],
            [prepare_weights(a, lw) for a in w[2]],
            w[3],
        ]
    log, ref_log = SaturationLog(), SaturationLog()
    y, routing = moe(x, *args, cfg, log, "moe")
    ref, ref_routing = literal_moe(x, gate, *w, cfg, ref_log, "moe")
    assert np.array_equal(y, ref)
    assert routing.active == ref_routing.active == routing.fetched
    assert np.array_equal(routing.experts, ref_routing.experts)
    assert log.as_dict() == ref_log.as_dict()
    if case == "saturating":
        sat = log.saturated()
        assert {"moe.gate", "moe.fc1", "moe.fc2", "moe.fc2.accumulate"} <= set(sat), sat
        assert 0 < sat["moe.fc2.accumulate"] < m.tokens * m.dim
