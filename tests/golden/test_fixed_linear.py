"""The unified linear unit, its epilogues and the patch embedding (golden/fixed/linear.py).

Bounds (fixed vs float64, same raw weights as real numbers): the accumulator is exact and one
round-half-up cast to ``formats.act`` follows, so ``|y_fix − y| ≤ lsb_act/2`` (plus float64's
own summation slack ``K·2⁻⁵²·Σ|x||w|``). Against the torch model on the float weights, each
stored weight is off by at most half its lsb (round half up, no saturation), so per output
``|y_fix − y_torch| ≤ Σ|x|·lsb_w/2 + lsb_b/2 + lsb_act/2`` (inputs are the exact act values).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgemoe.config import Cast, Overflow, Rounding, preset, sfix
from edgemoe.fidelity import sqnr_db
from edgemoe.golden.fixed import nonlinear, nonlinear_bounds
from edgemoe.golden.fixed.core import FixedPointError, SaturationLog, quantize, to_float
from edgemoe.golden.fixed.linear import (
    Epilogue,
    accumulate,
    accumulate_tiled,
    im2col,
    linear,
    patch_embed,
    quantize_pixels,
    tile_order,
)
from edgemoe.golden.fixed.quantize_weights import quantize_weights
from edgemoe.golden.images import default_image
from edgemoe.golden.model import M3ViT
from edgemoe.golden.weights import load_edgemoe_dir, synthetic

PRESETS = ("tiny", "edge-moe")
GELU_LIPSCHITZ = 1.13  # max |GELU'(x)| = 1.1289 (at x ≈ 2.42)


def gelu_exact(a: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * a * (1.0 + erf(a / math.sqrt(2.0)))


def rand_raw(rng: np.random.Generator, fmt, shape, scale: float = 1.0) -> np.ndarray:
    """Raw values of N(0, scale²) reals in ``fmt`` (saturated to it)."""
    return quantize(rng.standard_normal(shape) * scale, Cast(fmt))


def cast_int(v: int, frac_from: int, cast: Cast) -> int:
    """One value through ``cast`` in Python integers (an oracle independent of core.requantize)."""
    shift = frac_from - cast.fmt.frac_bits
    if shift > 0:
        v = (v + (1 << (shift - 1))) >> shift if cast.rounding is Rounding.ROUND_HALF_UP else v >> shift
    else:
        v <<= -shift
    lo, hi = cast.fmt.min_raw, cast.fmt.max_raw
    if cast.overflow is Overflow.SATURATE:
        return min(max(v, lo), hi)
    return (v - lo) % (1 << cast.fmt.bits) + lo


def dot_int(a: np.ndarray, b: np.ndarray) -> int:
    """Exact dot product in Python integers."""
    return sum(int(u) * int(v) for u, v in zip(a, b, strict=True))


@pytest.fixture(scope="module", params=PRESETS)
def setup(request):
    cfg = preset(request.param)
    weights = synthetic(cfg, seed=1)
    model = M3ViT.from_weights(cfg, weights).double()
    return cfg, weights, quantize_weights(weights, cfg), model


def test_tile_order_covers_each_weight_once_output_tiles_outer() -> None:
    for name in PRESETS:
        cfg = preset(name)
        hw, m = cfg.hw, cfg.model
        for out_f, in_f in ((3 * m.dim, m.dim), (m.dim, m.mlp_hidden), (m.experts, m.dim)):
            order = tile_order(out_f, in_f, hw)
            seen = np.zeros((out_f, in_f), dtype=int)
            for o0, i0 in order:
                seen[o0 : o0 + hw.linear_out, i0 : i0 + hw.linear_in] += 1
            assert (seen == 1).all()
            assert [o for o, _ in order] == sorted(o for o, _ in order)  # output tiles outer
            assert len(order) == math.ceil(out_f / hw.linear_out) * math.ceil(in_f / hw.linear_in)


def test_accumulation_exact_and_tile_order_independent() -> None:
    """Worst-case operands (every value at the format's most negative code) in Python integers."""
    cfg = preset("edge-moe")
    f, m = cfg.formats, cfg.model
    rng = np.random.default_rng(0)
    K = m.mlp_hidden
    x = rng.integers(f.act.fmt.min_raw, f.act.fmt.max_raw, (3, K), endpoint=True)
    x[0] = f.act.fmt.min_raw
    w = rng.integers(f.linear_weight.fmt.min_raw, f.linear_weight.fmt.max_raw, (5, K), endpoint=True)
    w[0] = f.linear_weight.fmt.min_raw
    exact = np.array([[dot_int(xr, wr) for wr in w] for xr in x], dtype=object)
    assert exact[0, 0] == K * f.act.fmt.min_raw * f.linear_weight.fmt.min_raw
    assert (accumulate(x, w).astype(object) == exact).all()
    assert (accumulate_tiled(x, w, cfg.hw).astype(object) == exact).all()


@pytest.mark.parametrize("name", PRESETS)
def test_linear_bias_bit_exact_and_within_half_lsb_of_float64(name: str) -> None:
    cfg = preset(name)
    f, m = cfg.formats, cfg.model
    rng = np.random.default_rng(1)
    rows = 5 if name == "edge-moe" else 9
    x = rand_raw(rng, f.act.fmt, (rows, m.dim), 2.0)
    w = rand_raw(rng, f.linear_weight.fmt, (3 * m.dim, m.dim), 1 / math.sqrt(m.dim))
    b = rand_raw(rng, f.attn_bias.fmt, (3 * m.dim,), 0.5)
    log = SaturationLog()
    y = linear(x, f.act.fmt, w, f.linear_weight.fmt, b, f.attn_bias.fmt, f.act, cfg=cfg, log=log, name="qkv")
    assert y.shape == (rows, 3 * m.dim) and log.counts["qkv"] == [0, y.size]
    # bit-exact against Python integers for a few outputs
    frac = f.act.fmt.frac_bits + f.linear_weight.fmt.frac_bits
    for t, j in [(0, 0), (rows - 1, 3 * m.dim - 1), (2, 7)]:
        acc = dot_int(x[t], w[j]) + (int(b[j]) << (frac - f.attn_bias.fmt.frac_bits))
        assert y[t, j] == cast_int(acc, frac, f.act)
    # float64 formula
    xf, wf, bf = to_float(x, f.act.fmt), to_float(w, f.linear_weight.fmt), to_float(b, f.attn_bias.fmt)
    ref = xf @ wf.T + bf
    slack = m.dim * 2.0**-52 * (np.abs(xf) @ np.abs(wf).T)
    err = np.abs(to_float(y, f.act.fmt) - ref)
    assert (err <= f.act.fmt.lsb / 2 + slack).all(), err.max()


def test_linear_casts_as_the_cast_says_saturate_and_wrap() -> None:
    cfg = preset("tiny")
    f, m = cfg.formats, cfg.model
    wf = f.linear_weight.fmt
    x = np.full((2, m.dim), f.act.fmt.max_raw, dtype=np.int64)
    x[1] = f.act.fmt.min_raw
    w = np.full((4, m.dim), wf.max_raw, dtype=np.int64)
    log = SaturationLog()
    y = linear(x, f.act.fmt, w, wf, None, None, f.act, cfg=cfg, log=log, name="sat")
    assert (y[0] == f.act.fmt.max_raw).all() and (y[1] == f.act.fmt.min_raw).all()
    assert log.saturated() == {"sat": y.size}
    # a wrapping, truncating cast wraps modulo 2**bits (and is counted as wrapped, not saturated)
    rng = np.random.default_rng(2)
    x = rand_raw(rng, f.act.fmt, (3, m.dim), 4.0)
    w = rand_raw(rng, wf, (5, m.dim), 1.0)
    wrap = Cast(sfix(8, 3), Rounding.TRUNCATE, Overflow.WRAP)
    y = linear(x, f.act.fmt, w, wf, None, None, wrap, cfg=cfg, log=log, name="wrap")
    frac = f.act.fmt.frac_bits + wf.frac_bits
    for t in range(3):
        for j in range(5):
            assert y[t, j] == cast_int(dot_int(x[t], w[j]), frac, wrap)
    assert log.wrapped["wrap"] > 0 and log.saturated().get("wrap", 0) == 0


def test_linear_rejects_values_outside_their_formats() -> None:
    cfg = preset("tiny")
    f, m = cfg.formats, cfg.model
    x = np.zeros((1, m.dim), dtype=np.int64)
    w = np.zeros((2, m.dim), dtype=np.int64)
    w[1, 3] = f.linear_weight.fmt.max_raw + 1
    with pytest.raises(FixedPointError, match="fc: weights"):
        linear(x, f.act.fmt, w, f.linear_weight.fmt, None, None, f.act, cfg=cfg, name="fc")
    with pytest.raises(FixedPointError, match="does not match"):
        linear(x[:, :-1], f.act.fmt, w * 0, f.linear_weight.fmt, None, None, f.act, cfg=cfg)


def test_bias_gelu_is_gelu_of_the_bias_output() -> None:
    cfg = preset("tiny")
    f, m = cfg.formats, cfg.model
    rng = np.random.default_rng(3)
    x = rand_raw(rng, f.act.fmt, (7, m.dim), 2.0)
    w = rand_raw(rng, f.linear_weight.fmt, (m.mlp_hidden, m.dim), 1 / math.sqrt(m.dim))
    b = rand_raw(rng, f.bias.fmt, (m.mlp_hidden,), 0.5)
    args = (x, f.act.fmt, w, f.linear_weight.fmt, b, f.bias.fmt, f.act)
    y = linear(*args, Epilogue.BIAS, cfg=cfg)
    g = linear(*args, Epilogue.BIAS_GELU, cfg=cfg)
    assert np.array_equal(g, nonlinear.gelu(y, f.act, f.gelu_delta, cfg.nonlinear))
    assert not np.array_equal(g, y)
    # float64: |gelu_fix(cast(a)) − GELU(a)| ≤ 1.13·lsb_act/2 (GELU' ≤ 1.13) + nonlinear_bounds.gelu_bound
    a = to_float(x, f.act.fmt) @ to_float(w, f.linear_weight.fmt).T + to_float(b, f.bias.fmt)
    bound = (
        GELU_LIPSCHITZ * f.act.fmt.lsb / 2
        + nonlinear_bounds.gelu_bound(cfg.nonlinear, f.act, f.gelu_delta).abs
    )
    assert (np.abs(to_float(g, f.act.fmt) - gelu_exact(a)) <= bound + 1e-12).all()


def test_linear_layers_vs_torch_submodules(setup) -> None:
    """qkv, proj and the dense MLP (fc1 → GELU → fc2) of block 0 against the torch modules.

    Per output: weights stored with ≤ lsb_w/2, bias ≤ lsb_b/2, one cast ≤ lsb_act/2:
    ``da ≤ Σ|x|·lsb_w/2 + lsb_b/2 + lsb_act/2``; after GELU ``1.13·da + gelu_bound``. fc2 runs on
    the fixed hidden values (exact in float64), so it has the linear bound on its own.
    """
    cfg, weights, q, model = setup
    f, m = cfg.formats, cfg.model
    block = model.blocks[0]
    rng = np.random.default_rng(6)
    x = rand_raw(rng, f.act.fmt, (4 if cfg.name == "edge-moe" else 12, m.dim), 1.0)
    xf = to_float(x, f.act.fmt)
    lw, qa = f.linear_weight.fmt.lsb / 2, f.act.fmt.lsb / 2

    def run(inp, layer, epilogue=Epilogue.BIAS):
        bias = f.attn_bias if layer in ("qkv", "attn_proj") else f.bias
        w, b = q[f"l0_{layer}_weight"], q[f"l0_{layer}_bias"]
        out = linear(inp, f.act.fmt, w, f.linear_weight.fmt, b, bias.fmt, f.act, epilogue, cfg=cfg)
        da = np.abs(to_float(inp, f.act.fmt)).sum(1, keepdims=True) * lw + bias.fmt.lsb / 2 + qa
        return out, da

    with torch.no_grad():
        for layer, module in (
            ("qkv", block.attn.qkv),
            ("attn_proj", block.attn.proj),
            ("fc1", block.mlp.fc1),
        ):
            y, da = run(x, layer)
            ref = module(torch.from_numpy(xf)).numpy()
            assert (np.abs(to_float(y, f.act.fmt) - ref) <= da + 1e-9).all(), layer
        h, da = run(x, "fc1", Epilogue.BIAS_GELU)
        ref = torch.nn.functional.gelu(block.mlp.fc1(torch.from_numpy(xf))).numpy()
        dh = GELU_LIPSCHITZ * da + nonlinear_bounds.gelu_bound(cfg.nonlinear, f.act, f.gelu_delta).abs
        assert (np.abs(to_float(h, f.act.fmt) - ref) <= dh + 1e-9).all()
        y, da = run(h, "fc2")
        ref = block.mlp.fc2(torch.from_numpy(to_float(h, f.act.fmt))).numpy()
        assert (np.abs(to_float(y, f.act.fmt) - ref) <= da + 1e-9).all()


@pytest.mark.parametrize("name", PRESETS)
def test_expert_accumulate_vs_float64_and_untouched_rows(name: str) -> None:
    """acc[rows] += cast(p·e): error per add ≤ p·lsb/2 (e's cast) + lsb/2 (the product's cast)."""
    cfg = preset(name)
    f, m = cfg.formats, cfg.model
    rng = np.random.default_rng(4)
    N, Q = 12, 5
    rows = np.array([1, 2, 6, 7, 11])
    x = rand_raw(rng, f.act.fmt, (Q, m.expert_hidden), 1.0)
    w = rand_raw(rng, f.linear_weight.fmt, (m.dim, m.expert_hidden), 1 / math.sqrt(m.expert_hidden))
    b = rand_raw(rng, f.bias.fmt, (m.dim,), 0.1)
    p = quantize(rng.uniform(0, 1, Q), f.gate_score)
    buf = rand_raw(rng, f.act.fmt, (N, m.dim), 1.0)
    log = SaturationLog()
    out = linear(
        x, f.act.fmt, w, f.linear_weight.fmt, b, f.bias.fmt, f.act, Epilogue.EXPERT_ACCUMULATE,
        cfg=cfg, log=log, name="fc2", scores_raw=p, acc_raw=buf, rows=rows,
    )  # fmt: skip
    other = np.setdiff1d(np.arange(N), rows)
    assert np.array_equal(out[other], buf[other])
    e = to_float(x, f.act.fmt) @ to_float(w, f.linear_weight.fmt).T + to_float(b, f.bias.fmt)
    pf = to_float(p, f.gate_score.fmt)[:, None]
    ref = to_float(buf[rows], f.act.fmt) + pf * e
    bound = pf * f.act.fmt.lsb / 2 + f.act.fmt.lsb / 2 + 1e-12
    assert (np.abs(to_float(out[rows], f.act.fmt) - ref) <= bound).all()
    assert set(log.counts) == {"fc2", "fc2.scale", "fc2.accumulate"} and not log.saturated()


def test_expert_accumulate_saturates_at_the_buffer_bound_and_checks_rows() -> None:
    cfg = preset("tiny")
    f, m = cfg.formats, cfg.model
    x = np.full((2, m.expert_hidden), f.act.fmt.max_raw // 4, dtype=np.int64)
    w = np.full((m.dim, m.expert_hidden), f.linear_weight.fmt.max_raw // 4, dtype=np.int64)
    p = np.full(2, f.gate_score.fmt.max_raw // 2, dtype=np.int64)
    buf = np.zeros((3, m.dim), dtype=np.int64)
    buf[0] = f.act.fmt.max_raw - 1
    log = SaturationLog()
    kw = dict(cfg=cfg, log=log, name="fc2", scores_raw=p, acc_raw=buf)
    args = (x, f.act.fmt, w, f.linear_weight.fmt, None, None, f.act, Epilogue.EXPERT_ACCUMULATE)
    out = linear(*args, rows=np.array([0, 2]), **kw)
    assert (out[0] == f.act.fmt.max_raw).all() and (out[1] == 0).all()
    assert log.saturated()["fc2.accumulate"] == m.dim
    with pytest.raises(FixedPointError, match="distinct"):
        linear(*args, rows=np.array([2, 2]), **kw)
    with pytest.raises(FixedPointError, match="needs scores_raw"):
        linear(*args, cfg=cfg)


def test_im2col_is_conv2d_order() -> None:
    cfg = preset("tiny")
    m = cfg.model
    img = np.arange(m.in_chans * m.image_h * m.image_w).reshape(m.in_chans, m.image_h, m.image_w)
    cols = im2col(img, m.patch)
    gh, gw = m.grid
    assert cols.shape == (gh * gw, m.patch_in)
    gy, gx = 1, gw - 1
    expect = img[:, gy * m.patch : (gy + 1) * m.patch, gx * m.patch : (gx + 1) * m.patch].reshape(-1)
    assert np.array_equal(cols[gy * gw + gx], expect)


def patch_embed_torch_bound(cfg, weights, image: np.ndarray) -> np.ndarray:
    """Per-(token, channel) bound of fixed vs torch patch embedding, from the formats.

    A pixel is off by ≤ lsb_pix/2 (round half up), or by ``x − max_value`` where it saturates;
    weights by ≤ lsb_w/2, bias ≤ lsb_b/2, pos ≤ lsb_pos/2; one cast to act after the linear unit
    and one after the position add (≤ lsb_act/2 each). So per output
    ``Σ|w|·dp + Σ(|x| + dp)·lsb_w/2 + lsb_b/2 + lsb_pos/2 + lsb_act``.
    """
    f, m = cfg.formats, cfg.model
    x = image.astype(np.float64)
    dp = np.maximum(f.pixel.fmt.lsb / 2, x - f.pixel.fmt.max_value)
    cols, dcols = im2col(x, m.patch), im2col(dp, m.patch)
    w = np.abs(weights["patch_embed_weight"].astype(np.float64).reshape(m.dim, -1))
    lin = dcols @ w.T + (np.abs(cols) + dcols).sum(1, keepdims=True) * f.patch_weight.fmt.lsb / 2
    bound = np.empty((m.tokens, m.dim))
    bound[0] = f.pos_embed.fmt.lsb / 2 + f.act.fmt.lsb / 2
    bound[1:] = lin + f.bias.fmt.lsb / 2 + f.pos_embed.fmt.lsb / 2 + f.act.fmt.lsb
    return bound + 1e-9


def test_patch_embed_vs_float64_and_torch(setup) -> None:
    cfg, weights, q, model = setup
    f = cfg.formats
    image = default_image(cfg)
    log = SaturationLog()
    px = quantize_pixels(image, cfg, log)
    tokens = patch_embed(px, q["patch_embed_weight"], q["patch_embed_bias"], q["pos_embed"], cfg, log)
    got = to_float(tokens, f.act.fmt)
    # float64 formula on the stored (raw) values: two casts of ≤ lsb_act/2 each after exact sums
    m = cfg.model
    cols = im2col(to_float(px, f.pixel.fmt), m.patch)
    w = to_float(q["patch_embed_weight"].reshape(m.dim, -1), f.patch_weight.fmt)
    ref = np.vstack(
        [
            to_float(q["pos_embed"][:1], f.pos_embed.fmt),
            cols @ w.T
            + to_float(q["patch_embed_bias"], f.bias.fmt)
            + to_float(q["pos_embed"][1:], f.pos_embed.fmt),
        ]
    )
    # the position add is exact when pos_embed has no more fraction bits than act: one cast in all
    pos_exact = f.pos_embed.fmt.frac_bits <= f.act.fmt.frac_bits
    assert np.abs(got - ref).max() <= f.act.fmt.lsb / 2 * (1 if pos_exact else 2) + 1e-12
    # torch golden model on the float weights
    with torch.no_grad():
        ref_t = model.embed(torch.from_numpy(image[None].astype(np.float64)))[0].numpy()
    err = np.abs(got - ref_t)
    assert (err <= patch_embed_torch_bound(cfg, weights, image)).all(), err.max()
    assert not log.saturated()


def test_patch_embed_batch_and_class_token() -> None:
    cfg = preset("tiny")
    f = cfg.formats
    q = quantize_weights(synthetic(cfg, seed=2), cfg)
    px = quantize_pixels(np.stack([default_image(cfg, seed=0), default_image(cfg, seed=1)]), cfg)
    args = (q["patch_embed_weight"], q["patch_embed_bias"], q["pos_embed"], cfg)
    both = patch_embed(px, *args)
    assert np.array_equal(both[1], patch_embed(px[1], *args))
    assert np.array_equal(to_float(both[0, 0], f.act.fmt), to_float(q["pos_embed"][0], f.pos_embed.fmt))


def test_quantize_pixels_range_and_rounding_saturation() -> None:
    cfg = preset("tiny")
    m = cfg.model
    img = np.full((m.in_chans, m.image_h, m.image_w), 0.5)
    img[1, 2, 3] = 0.9999  # rounds to 256/256: saturates to 255/256 and is counted
    log = SaturationLog()
    px = quantize_pixels(img, cfg, log)
    assert px[1, 2, 3] == cfg.formats.pixel.fmt.max_raw and log.saturated() == {"image": 1}
    img[0, 1, 1] = 1.0
    with pytest.raises(FixedPointError, match=r"1 pixel\(s\) outside .* first at \(0, 1, 1\)"):
        quantize_pixels(img, cfg)
    img[0, 1, 1] = -0.25
    with pytest.raises(FixedPointError, match="outside"):
        quantize_pixels(img, cfg)
    img[0, 1, 1] = np.nan
    with pytest.raises(FixedPointError, match="non-finite"):
        quantize_pixels(img, cfg)


@pytest.mark.realdata
def test_real_patch_embedding_and_qkv_on_the_real_image(edge_moe_data) -> None:
    """Real weights and image, edge-moe formats: patch embedding and block 0's qkv vs float torch."""
    cfg = preset("edge-moe")
    f = cfg.formats
    weights = load_edgemoe_dir(edge_moe_data, cfg).weights
    image = np.fromfile(edge_moe_data / "image.float32.bin", dtype="<f4").reshape(3, 128, 256)
    q = quantize_weights(weights, cfg)
    log = SaturationLog()
    tokens = patch_embed(
        quantize_pixels(image, cfg, log),
        q["patch_embed_weight"],
        q["patch_embed_bias"],
        q["pos_embed"],
        cfg,
        log,
    )
    model = M3ViT.from_weights(cfg, weights).double()
    with torch.no_grad():
        ref = model.embed(torch.from_numpy(image[None].astype(np.float64)))[0].numpy()
    got = to_float(tokens, f.act.fmt)
    assert (np.abs(got - ref) <= patch_embed_torch_bound(cfg, weights, image)).all()
    s = sqnr_db(ref, got)
    assert s >= 60.0, s
    # block 0's qkv on the exact act values of the fixed tokens
    y = linear(
        tokens, f.act.fmt, q["l0_qkv_weight"], f.linear_weight.fmt, q["l0_qkv_bias"], f.attn_bias.fmt, f.act,
        cfg=cfg, log=log, name="l0.qkv",
    )  # fmt: skip
    with torch.no_grad():
        ref_qkv = model.blocks[0].attn.qkv(torch.from_numpy(got)).numpy()
    bound = (
        np.abs(got).sum(1, keepdims=True) * f.linear_weight.fmt.lsb / 2
        + f.attn_bias.fmt.lsb / 2
        + f.act.fmt.lsb / 2
    )
    assert (np.abs(to_float(y, f.act.fmt) - ref_qkv) <= bound + 1e-9).all()
    assert not log.saturated(), log.saturated()
