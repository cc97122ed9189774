"""Reordered attention: the float64 twin, the streaming order, the fixed-point kernel vs float and torch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from edgemoe.config import Cast, Config, FixedFormat, Hardware, Overflow, Rounding, preset, sfix, ufix
from edgemoe.golden.fixed import nonlinear, nonlinear_bounds
from edgemoe.golden.fixed.attention import (
    _rotate,
    _sweep,
    _unrotate,
    attention,
    attention_float,
    key_order,
    score_scale,
    softmax_attention_float,
)
from edgemoe.golden.fixed.core import SaturationLog, quantize, requantize, to_float


def _cfg(base: str = "tiny", p: int | None = None, **model) -> Config:
    cfg = preset(base)
    if model:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model))
    if p is not None:
        cfg = dataclasses.replace(cfg, hw=dataclasses.replace(cfg.hw, attn_p=p))
    return cfg


def _qkv(cfg: Config, seed: int, std: float = 1.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, d = cfg.model.tokens, cfg.model.dim
    return tuple(quantize(rng.normal(0, std, (n, d)), cfg.formats.act) for _ in range(3))


# ---------------------------------------------------------------------------- schedule and float twin


def test_key_order_is_a_rotation_by_slot() -> None:
    order = key_order(7, 3)
    assert order.shape == (7, 7)
    for i in range(7):
        j = i % 3
        assert list(order[i]) == [(t + j) % 7 for t in range(7)]
        assert sorted(order[i]) == list(range(7))  # every key exactly once
    # shift register: at step t, slot j reads what slot j+1 read at step t-1
    assert np.array_equal(order[0:2, 1:], order[1:3, :-1])


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5, 13])
def test_rotation_follows_key_order(p: int) -> None:
    """The step-major rotated scores hold, at step t for query i, the key key_order gives; the
    inverse restores the natural order."""
    rng = np.random.default_rng(p)
    H, N = 2, 13
    x = rng.integers(-(2**40), 2**40, size=(H, N, N))
    order = key_order(N, p)  # [query, step]
    rot = _rotate(x, p)
    want = np.stack([x[:, i, order[i]] for i in range(N)], axis=-1)  # [H, step, query]
    assert rot.shape == (N, H, N)
    assert np.array_equal(rot, want.transpose(1, 0, 2))
    assert np.array_equal(_unrotate(rot, p), x)


def test_key_order_rejects_bad_p() -> None:
    with pytest.raises(ValueError, match="P = 0"):
        key_order(5, 0)
    with pytest.raises(ValueError, match="P = 6"):
        key_order(5, 6)


@pytest.mark.parametrize(("n", "p"), [(129, 4), (129, 1), (129, 5), (10, 3), (10, 10), (17, 16), (9, 2)])
def test_float_twin_equals_softmax_attention(n: int, p: int) -> None:
    rng = np.random.default_rng(n * 100 + p)
    heads, d = 3, 48
    # wide score range: many new maxima in the sweep, exp arguments down to about -200
    q, k, v = (rng.normal(0, 4.0, (n, d)) for _ in range(3))
    a = attention_float(q, k, v, heads, p, (d // heads) ** -0.5)
    b = softmax_attention_float(q, k, v, heads, (d // heads) ** -0.5)
    assert a.shape == (n, d)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_float_twin_matches_torch_formula() -> None:
    rng = np.random.default_rng(3)
    n, heads, d = 33, 2, 16
    q, k, v = (rng.normal(0, 1.0, (n, d)) for _ in range(3))
    t = [torch.from_numpy(x).reshape(n, heads, d // heads).transpose(0, 1) for x in (q, k, v)]
    ref = torch.nn.functional.scaled_dot_product_attention(*t).transpose(0, 1).reshape(n, d).numpy()
    np.testing.assert_allclose(attention_float(q, k, v, heads, 3, (d // heads) ** -0.5), ref, atol=1e-12)


# ---------------------------------------------------------------------------- the literal streaming order


def _stream_reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, cfg: Config) -> np.ndarray:
    """Group by group, step by step, slot by slot, with a K shift register and scalar state.

    Written independently of the vectorised kernel: the only shared pieces are the casts
    (core.requantize) and the nonlinear functions.
    """
    f, nl = cfg.formats, cfg.nonlinear
    N, D = q.shape
    H = cfg.model.heads
    dh, P = D // H, cfg.hw.attn_p
    scale_raw, scale_fmt = score_scale(cfg)
    fa = f.act.fmt.frac_bits
    diff_fmt = FixedFormat(f.attn_score.fmt.bits + 1, f.attn_score.fmt.int_bits + 1)
    fs, fe, fr = f.softmax_sum.fmt.frac_bits, f.exp_out.fmt.frac_bits, f.softmax_recip.fmt.frac_bits
    out = np.zeros((N, D), dtype=np.int64)

    def exp1(x: int) -> int:
        return int(nonlinear.exp_neg(np.array([x], dtype=np.int64), diff_fmt, nl, f.exp_out)[0])

    def score(i: int, key: int, h: int) -> int:
        dot = sum(int(q[i, h * dh + c]) * int(k[key, h * dh + c]) for c in range(dh))
        # Python integers: the exact product can pass 63 bits before the cast
        assert f.attn_score.rounding is Rounding.ROUND_HALF_UP and f.attn_score.overflow is Overflow.SATURATE
        drop = 2 * fa + scale_fmt.frac_bits - f.attn_score.fmt.frac_bits
        rounded = (dot * scale_raw + (1 << (drop - 1))) >> drop  # round half up (the preset casts)
        return min(max(rounded, f.attn_score.fmt.min_raw), f.attn_score.fmt.max_raw)

    for h in range(H):
        for g in range(-(-N // P)):
            queries = [g * P + j for j in range(P)]  # slot j; beyond N the slot idles
            m: list[int | None] = [None] * P
            lsum = [0] * P
            kreg: list[int] = []
            for t in range(N):
                # one new K row per step enters the shift register at slot P-1
                kreg = [(j % N) for j in range(P)] if t == 0 else kreg[1:] + [(t + P - 1) % N]
                for j, i in enumerate(queries):
                    if i >= N:
                        continue
                    s = score(i, kreg[j], h)
                    if m[j] is None:
                        m[j], lsum[j] = s, 1 << fs
                    elif s > m[j]:
                        wide = lsum[j] * exp1(m[j] - s) + (1 << (fs + fe))
                        lsum[j] = int(requantize(np.array(wide), fs + fe, f.softmax_sum))
                        m[j] = s
                    else:
                        wide = (lsum[j] << fe) + (exp1(s - m[j]) << fs)
                        lsum[j] = int(requantize(np.array(wide), fs + fe, f.softmax_sum))
            for j, i in enumerate(queries):
                if i >= N:
                    continue
                r = int(nonlinear.reciprocal(np.array([lsum[j]]), f.softmax_sum.fmt, nl, f.softmax_recip)[0])
                acc = [0] * dh
                for key in range(N):
                    p = int(requantize(np.array(exp1(score(i, key, h) - m[j]) * r), fe + fr, f.attn_prob))
                    for c in range(dh):
                        acc[c] += p * int(v[key, h * dh + c])
                pf = f.attn_prob.fmt.frac_bits
                out[i, h * dh : (h + 1) * dh] = requantize(np.array(acc), pf + fa, f.act)
    return out


@pytest.mark.parametrize("p", [1, 2, 3, 4])
def test_fixed_kernel_equals_literal_streaming_order(p: int) -> None:
    # 10 tokens (a 48x48 image), 2 heads of 8: small enough for the scalar loop; P = 3, 4 do not divide 10
    cfg = _cfg("tiny", p=p, image_h=48, image_w=48, dim=16, heads=2, mlp_hidden=16, expert_hidden=16)
    q, k, v = _qkv(cfg, seed=p, std=3.0)
    got = attention(q, k, v, cfg)
    assert np.array_equal(got, _stream_reference(q, k, v, cfg))


def test_key_order_changes_the_bits() -> None:
    """The rotation is part of the contract: a different P gives the same math, other bits."""
    base = _cfg("tiny", p=1)
    q, k, v = _qkv(base, seed=11, std=4.0)
    outs = {p: attention(q, k, v, _cfg("tiny", p=p), trace=True) for p in (1, 2, 3)}
    # the final max does not depend on the order, the rounded running sum does
    assert all(np.array_equal(outs[1].m, o.m) for o in outs.values())
    assert any(not np.array_equal(outs[1].l, o.l) for o in outs.values())


# ---------------------------------------------------------------------------- fixed vs float


def _error_bound(cfg: Config, v_max: float) -> float:
    """Max abs error of one output value of the fixed kernel vs the float64 formula on the same q, k, v.

    With e_k = exp(s_k - m), r = 1/l, p_k = e_k·r and the per-value errors
      score cast        |ds| <= lsb_score/2, so |d(s - m)| <= lsb_score and |de_k| <= e_k·lsb_score;
      exp_neg           E_exp = max over x <= 0 of nonlinear_bounds.exp_neg_bound at x (rel·e^x + abs);
      running sum       at most N truncations of lsb_sum (l >= 1 throughout);
      reciprocal        E_rec = rel + abs of nonlinear_bounds.reciprocal_bound (1/l <= 1);
      probability cast  lsb_prob/2,
    Σ_k |p_k - p_k'| <= N·(2·E_exp + 2·lsb_score + lsb_sum + E_rec + lsb_prob/2), using l, l' >= 1,
    e_k <= 1 and Σ e_k = l. The output error is that sum times max|v| plus half an output lsb.
    """
    f, n, nl = cfg.formats, cfg.model.tokens, cfg.nonlinear
    diff_fmt = FixedFormat(f.attn_score.fmt.bits + 1, f.attn_score.fmt.int_bits + 1)
    x = -np.linspace(0.0, 64.0, 1 << 16)  # beyond |x| = 64, e^x·rel(x) is far below the abs part
    eb = nonlinear_bounds.exp_neg_bound(nl, diff_fmt, f.exp_out, x)
    e_exp = float(np.max(eb.at(np.exp(x))))
    rb = nonlinear_bounds.reciprocal_bound(nl, f.softmax_recip)
    e_rec = rb.rel + rb.abs
    per_key = 2 * e_exp + 2 * f.attn_score.fmt.lsb + f.softmax_sum.fmt.lsb + e_rec + f.attn_prob.fmt.lsb / 2
    return n * per_key * v_max + f.act.fmt.lsb / 2


@pytest.mark.parametrize(("base", "p"), [("tiny", 2), ("tiny", 3), ("edge-moe", 4), ("edge-moe", 5)])
def test_fixed_attention_close_to_float(base: str, p: int) -> None:
    cfg = _cfg(base, p=p)
    q, k, v = _qkv(cfg, seed=p, std=2.0)
    log = SaturationLog()
    got = to_float(attention(q, k, v, cfg, log=log), cfg.formats.act.fmt)
    a = cfg.formats.act.fmt
    scale = to_float(np.array(score_scale(cfg)[0]), cfg.formats.attn_scale.fmt)
    ref = softmax_attention_float(
        to_float(q, a), to_float(k, a), to_float(v, a), cfg.model.heads, float(scale)
    )
    err = np.abs(got - ref).max()
    bound = _error_bound(cfg, np.abs(to_float(v, a)).max())
    assert err <= bound, f"max error {err:.3e} above the format bound {bound:.3e}"
    assert err > 0  # the fixed kernel really rounds
    assert not log.saturated(), log.saturated()
    assert log.counts["attn.softmax_sum"][1] == cfg.model.heads * cfg.model.tokens**2


def test_scale_is_exact_for_power_of_two() -> None:
    cfg = preset("edge-moe")  # head_dim 64 -> 1/8
    raw, fmt = score_scale(cfg)
    assert raw * fmt.lsb == 0.125


def test_saturation_of_scores_is_counted() -> None:
    cfg = _cfg("tiny", p=2)
    n, d = cfg.model.tokens, cfg.model.dim
    big = quantize(np.full((n, d), 300.0), cfg.formats.act)  # q·k·scale far beyond attn_score
    log = SaturationLog()
    out = attention(big, big, big, cfg, log=log)
    assert log.saturated()["attn.score"] == cfg.model.heads * n * n
    # every score saturates to the same value: uniform attention over equal v gives v back
    np.testing.assert_allclose(to_float(out, cfg.formats.act.fmt), 300.0, rtol=1e-3)


# ---------------------------------------------------------------------------- vs the torch golden model


def test_fixed_attention_against_torch_attention_core() -> None:
    """The torch golden Attention core (qkv → softmax attention) on the same dequantised q, k, v."""
    from edgemoe.golden.model import Attention

    cfg = preset("edge-moe")
    m = cfg.model
    rng = np.random.default_rng(5)
    torch_attn = Attention(m.dim, m.heads).double().eval()
    with torch.no_grad():
        # identity qkv projection onto stacked [q|k|v] input and identity output projection
        eye = torch.eye(m.dim, dtype=torch.float64)
        torch_attn.qkv.weight.copy_(torch.cat([eye, eye, eye]))
        torch_attn.qkv.bias.zero_()
        torch_attn.proj.weight.copy_(eye)
        torch_attn.proj.bias.zero_()
    x = quantize(rng.normal(0, 2.0, (m.tokens, m.dim)), cfg.formats.act)
    a = cfg.formats.act.fmt
    with torch.no_grad():
        ref = torch_attn(torch.from_numpy(to_float(x, a))[None])[0].numpy()
    got = to_float(attention(x, x, x, cfg), a)
    bound = _error_bound(cfg, np.abs(to_float(x, a)).max())
    err = np.abs(got - ref).max()
    assert err <= bound, f"max error {err:.3e} above the format bound {bound:.3e}"


def test_p_equal_to_tokens() -> None:
    cfg = dataclasses.replace(preset("tiny"), hw=Hardware(linear_in=8, linear_out=8, attn_p=9))
    q, k, v = _qkv(cfg, seed=1)
    assert attention(q, k, v, cfg).shape == (cfg.model.tokens, cfg.model.dim)


@pytest.mark.parametrize("pattern", ["random", "rising", "flat", "falling"])
def test_sweep_without_clamp_equals_clamped_sweep(pattern: str) -> None:
    """Where the sweep proves saturation impossible and skips the clamp, the clamped loop agrees."""
    cfg = preset("edge-moe")
    f, nl = cfg.formats, cfg.nonlinear
    rng = np.random.default_rng(7)
    H, N = 3, 129
    lsb = f.attn_score.fmt.lsb
    if pattern == "random":
        s = rng.normal(0, 4.0, (H, N, N))
    elif pattern == "rising":  # every key a new maximum
        s = np.broadcast_to(np.arange(N) * 0.01, (H, N, N))
    elif pattern == "flat":  # no new maximum after the first key, every e = 1
        s = np.zeros((H, N, N))
    else:
        s = np.broadcast_to(-np.arange(N) * 0.3, (H, N, N))
    s_raw = np.round(np.asarray(s) / lsb).astype(np.int64)
    run_max = np.maximum.accumulate(s_raw, axis=2)
    m_prev = np.concatenate([s_raw[..., :1], run_max[..., :-1]], axis=2)
    is_new = s_raw > m_prev
    is_new[..., 0] = True
    diff_fmt = FixedFormat(f.attn_score.fmt.bits + 1, f.attn_score.fmt.int_bits + 1)
    e = nonlinear.exp_neg(np.where(is_new, m_prev - s_raw, s_raw - m_prev), diff_fmt, nl, f.exp_out)
    fe = f.exp_out.fmt.frac_bits
    a = _sweep(is_new, e, f.softmax_sum, fe, "sum", None)
    log = SaturationLog()
    b = _sweep(is_new, e, f.softmax_sum, fe, "sum", log, clamp=True)
    assert np.array_equal(a, b)
    assert log.counts["sum"] == [0, H * N * N]
    if pattern == "flat":
        assert np.all(a == N << f.softmax_sum.fmt.frac_bits)


@pytest.mark.parametrize("p", [2, 3])
def test_narrow_formats_equal_literal_streaming_order(p: int) -> None:
    """Narrow formats: the running sum has fewer fraction bits than exp, so every plain add
    truncates; the kernel still equals the literal loop bit for bit."""
    base = _cfg("tiny", p=p, image_h=48, image_w=48, dim=16, heads=2, mlp_hidden=16, expert_hidden=16)
    f = base.formats
    narrow = dataclasses.replace(
        f,
        act=Cast(sfix(20, 8)),
        attn_score=Cast(sfix(16, 6)),
        exp_out=Cast(ufix(12, 1)),
        softmax_sum=Cast(ufix(10, 4), Rounding.TRUNCATE),  # 6 fraction bits < 11 of exp_out
        softmax_recip=Cast(ufix(12, 1)),
        attn_prob=Cast(ufix(10, 1)),
    )
    cfg = dataclasses.replace(base, formats=narrow)
    q, k, v = _qkv(cfg, seed=10 + p, std=3.0)
    log = SaturationLog()
    got = attention(q, k, v, cfg, log=log)
    assert np.array_equal(got, _stream_reference(q, k, v, cfg))
    assert log.counts["attn.softmax_sum"][1] == cfg.model.heads * cfg.model.tokens**2
