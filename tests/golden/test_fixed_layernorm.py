"""LayerNorm (golden/fixed/layernorm.py) against float64 and the torch golden model.

Bound derivation, per token (``lsb_X`` is the lsb of ``formats.X``; m, v: exact mean and
variance of the token; r = 1/sqrt(v + eps)):

- mean: exact division rounded half up → ``dm ≤ lsb_ln_mean/2``;
- E[x²]: each square truncated (< lsb_ln_square), the mean of them truncated (< lsb_ln_var);
  mean²: ``|m'² − m²| ≤ 2|m|·dm + dm²``, truncated (< lsb_ln_var); eps stored with
  ``≤ lsb_ln_var/2``; so ``dv ≤ lsb_ln_square + 2.5·lsb_ln_var + 2|m|·dm + dm²`` (the clamp at
  0 only moves the value toward the truth);
- rstd: ``|Δ| ≤ dv/2·v'^-3/2`` (mean value theorem, v' the smallest possible computed
  var + eps, at least eps − lsb_ln_var/2) plus the relative error ρ of nonlinear.rsqrt
  (``nonlinear_bounds.rsqrt_bound``) plus ``lsb_ln_rstd/2``;
- z = (x − m')·r': ``dz ≤ |x − m|·dr + dm·(r + dr) + lsb_ln_norm/2``;
- y = z·γ + β: ``dy ≤ |γ|·dz + lsb_act/2``.

Against torch (float γ, β; same input values) add ``|z|·lsb_norm/2 + lsb_norm/2`` for γ, β
stored with round half up.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from edgemoe.config import Cast, ConfigError, Rounding, preset, sfix, ufix
from edgemoe.fidelity import sqnr_db
from edgemoe.golden.fixed import nonlinear, nonlinear_bounds
from edgemoe.golden.fixed.core import FixedPointError, SaturationLog, quantize, to_float
from edgemoe.golden.fixed.layernorm import div_const, div_to, eps_raw, layernorm
from edgemoe.golden.fixed.quantize_weights import quantize_weights
from edgemoe.golden.model import M3ViT
from edgemoe.golden.weights import load_edgemoe_dir, synthetic

PRESETS = ("tiny", "edge-moe")


def ln_bound(x: np.ndarray, gamma: np.ndarray, cfg) -> np.ndarray:
    """Per-element bound of |fixed − float64 LayerNorm| on the same (raw) values, as derived above."""
    f, eps = cfg.formats, cfg.model.ln_eps
    lsb = {
        name: getattr(f, name).fmt.lsb
        for name in ("ln_mean", "ln_square", "ln_var", "ln_rstd", "ln_norm", "act")
    }
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    dm = lsb["ln_mean"] / 2
    dv = lsb["ln_square"] + 2.5 * lsb["ln_var"] + 2 * np.abs(m) * dm + dm * dm
    v_min = np.maximum(v + eps - dv, eps - lsb["ln_var"] / 2)
    r = 1 / np.sqrt(v + eps)
    dr_var = dv / 2 * v_min**-1.5
    dr = (
        dr_var
        + nonlinear_bounds.rsqrt_bound(cfg.nonlinear, cfg.formats.ln_rstd).rel * (r + dr_var)
        + lsb["ln_rstd"] / 2
    )
    dz = np.abs(x - m) * dr + dm * (r + dr) + lsb["ln_norm"] / 2
    return np.abs(gamma) * dz + lsb["act"] / 2 + 1e-12


def ln_float(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * gamma + beta


def make_tokens(cfg, rows: int, seed: int) -> np.ndarray:
    """Tokens with per-token offsets and scales and a few outlier channels, like a residual stream."""
    rng = np.random.default_rng(seed)
    D = cfg.model.dim
    x = rng.standard_normal((rows, D)) * rng.uniform(0.05, 4.0, (rows, 1)) + rng.normal(0, 2, (rows, 1))
    x[:, 3] *= 8.0
    return quantize(x, cfg.formats.act)


def test_div_const_is_the_exact_quotient_rounded() -> None:
    rng = np.random.default_rng(0)
    num = np.concatenate([rng.integers(-(2**50), 2**50, 400), np.arange(-400, 400)])
    for den in (1, 3, 7, 32, 192, 1000):
        for rounding in Rounding:
            got = div_const(num, den, rounding)
            for n, g in zip(num[::7], got[::7], strict=True):
                q = Fraction(int(n), den)
                want = math.floor(q + Fraction(1, 2)) if rounding is Rounding.ROUND_HALF_UP else math.floor(q)
                assert g == want, (n, den, rounding)
    with pytest.raises(FixedPointError):
        div_const(num, 0, Rounding.TRUNCATE)
    # a right shift of the fraction bits folds into the divisor: (S·2^-10)/3 at 4 fraction bits
    assert (
        div_to(np.array([3 * 1024 + 100]), 10, 3, Cast(ufix(8, 4), Rounding.TRUNCATE))[0]
        == (3 * 1024 + 100) // 192
    )


def cast_int(v: int, frac_from: int, cast: Cast) -> int:
    """One value through a saturating ``cast`` in Python integers (exact rationals for divisions)."""
    return cast_frac(Fraction(v, 1 << frac_from) if frac_from >= 0 else Fraction(v << -frac_from), cast)


def cast_frac(value: Fraction, cast: Cast) -> int:
    scaled = (
        value * (1 << cast.fmt.frac_bits) if cast.fmt.frac_bits >= 0 else value / (1 << -cast.fmt.frac_bits)
    )
    raw = (
        math.floor(scaled + Fraction(1, 2)) if cast.rounding is Rounding.ROUND_HALF_UP else math.floor(scaled)
    )
    return min(max(raw, cast.fmt.min_raw), cast.fmt.max_raw)


def layernorm_python(x: list[int], gamma: list[int], beta: list[int], cfg) -> list[int]:
    """The LayerNorm contract of the module docstring for one token, in Python integers and
    fractions (nonlinear.rsqrt for 1/sqrt, the only step taken from the library)."""
    f, D = cfg.formats, cfg.model.dim
    fa, fm, fv, fr = (getattr(f, n).fmt.frac_bits for n in ("act", "ln_mean", "ln_var", "ln_rstd"))
    fz, fn = f.ln_norm.fmt.frac_bits, f.norm.fmt.frac_bits
    sq = [cast_int(v * v, 2 * fa, f.ln_square) for v in x]
    mean = cast_frac(Fraction(sum(x), D << fa), f.ln_mean)
    ex2 = cast_frac(Fraction(sum(sq), D) / (1 << f.ln_square.fmt.frac_bits), f.ln_var)
    var = max(ex2 - cast_int(mean * mean, 2 * fm, f.ln_var), 0)
    ve = min(var + round(cfg.model.ln_eps * 2**fv), f.ln_var.fmt.max_raw)
    rstd = int(nonlinear.rsqrt(np.array([ve]), f.ln_var.fmt, cfg.nonlinear, f.ln_rstd)[0])
    out = []
    for v, g, b in zip(x, gamma, beta, strict=True):
        d = Fraction(v, 1 << fa) - Fraction(mean, 1 << fm)
        z = cast_frac(d * Fraction(rstd, 1 << fr), f.ln_norm)
        out.append(cast_frac(Fraction(z, 1 << fz) * Fraction(g, 1 << fn) + Fraction(b, 1 << fn), f.act))
    return out


@pytest.mark.parametrize("name", PRESETS)
def test_layernorm_bit_exact_against_python_integers(name: str) -> None:
    cfg = preset(name)
    f, D = cfg.formats, cfg.model.dim
    rng = np.random.default_rng(7)
    x = make_tokens(cfg, 4, 8)
    x[3] = f.act.fmt.max_raw - np.arange(D) % 3  # tiny variance at the top of the range
    gamma = quantize(rng.normal(1.0, 0.5, D), f.norm)
    beta = quantize(rng.normal(0.0, 0.5, D), f.norm)
    y = layernorm(x, gamma, beta, cfg)
    for t in range(len(x)):
        assert y[t].tolist() == layernorm_python(x[t].tolist(), gamma.tolist(), beta.tolist(), cfg), t


@pytest.mark.parametrize("name", PRESETS)
def test_layernorm_vs_float64_formula(name: str) -> None:
    cfg = preset(name)
    f, D = cfg.formats, cfg.model.dim
    rng = np.random.default_rng(1)
    x = make_tokens(cfg, 6 if name == "edge-moe" else 24, 2)
    gamma = quantize(rng.normal(1.0, 0.5, D), f.norm)
    beta = quantize(rng.normal(0.0, 0.5, D), f.norm)
    log = SaturationLog()
    y = layernorm(x, gamma, beta, cfg, log, "ln")
    xf, gf, bf = to_float(x, f.act.fmt), to_float(gamma, f.norm.fmt), to_float(beta, f.norm.fmt)
    err = np.abs(to_float(y, f.act.fmt) - ln_float(xf, gf, bf, cfg.model.ln_eps))
    bound = ln_bound(xf, gf, cfg)
    assert (err <= bound).all(), (err.max(), bound.min())
    assert err.max() > 0 and not log.saturated()
    assert set(log.counts) == {
        "ln",
        *(f"ln.{s}" for s in ("square", "mean", "ex2", "mean_sq", "var", "norm")),
    }


@pytest.mark.parametrize("name", PRESETS)
def test_layernorm_vs_torch_norm(name: str) -> None:
    cfg = preset(name)
    f = cfg.formats
    weights = synthetic(cfg, seed=5)
    q = quantize_weights({k: v for k, v in weights.items() if k.startswith("l0_norm")}, cfg)
    block = M3ViT.from_weights(cfg, weights).blocks[0].double()
    x = make_tokens(cfg, 5 if name == "edge-moe" else 16, 3)
    xf = to_float(x, f.act.fmt)
    for norm in ("norm1", "norm2"):
        y = layernorm(x, q[f"l0_{norm}_weight"], q[f"l0_{norm}_bias"], cfg)
        with torch.no_grad():
            ref = getattr(block, norm)(torch.from_numpy(xf)).numpy()
        gamma = weights[f"l0_{norm}_weight"].astype(np.float64)
        z = ln_float(xf, 1.0, 0.0, cfg.model.ln_eps)
        bound = (
            ln_bound(xf, np.abs(gamma) + f.norm.fmt.lsb / 2, cfg)
            + (np.abs(z) + 1) * f.norm.fmt.lsb / 2
            + 1e-9
        )
        err = np.abs(to_float(y, f.act.fmt) - ref)
        assert (err <= bound).all(), (norm, err.max())


def test_constant_rows_give_beta_exactly() -> None:
    cfg = preset("edge-moe")
    f, D = cfg.formats, cfg.model.dim
    rng = np.random.default_rng(4)
    gamma = quantize(rng.normal(1.0, 0.5, D), f.norm)
    beta = quantize(rng.normal(0.0, 0.5, D), f.norm)
    x = np.zeros((4, D), dtype=np.int64)
    x[1], x[2], x[3] = f.act.fmt.max_raw, f.act.fmt.min_raw, 12345
    y = layernorm(x, gamma, beta, cfg)
    assert (to_float(y, f.act.fmt) == to_float(beta, f.norm.fmt)).all()


def test_extreme_inputs_stay_in_range_and_within_bound() -> None:
    """Rows at the activation bounds: alternating max/min, one spike (|z| = sqrt(D − 1)), tiny spread."""
    cfg = preset("edge-moe")
    f, D = cfg.formats, cfg.model.dim
    a = f.act.fmt
    x = np.zeros((5, D), dtype=np.int64)
    x[0, ::2], x[0, 1::2] = a.max_raw, a.min_raw
    x[1, 0] = a.max_raw
    x[2, 0], x[2, 1:] = a.min_raw, a.max_raw
    x[3] = a.max_raw - np.arange(D) % 2  # variance 2^-46: eps dominates
    x[4] = np.arange(D) - D // 2
    gamma = np.full(D, f.norm.fmt.max_raw, dtype=np.int64)  # the largest gamma the format holds
    beta = np.full(D, f.norm.fmt.min_raw, dtype=np.int64)
    log = SaturationLog()
    y = layernorm(x, gamma, beta, cfg, log, "ln")
    xf, gf, bf = to_float(x, a), to_float(gamma, f.norm.fmt), to_float(beta, f.norm.fmt)
    ref = ln_float(xf, gf, bf, cfg.model.ln_eps)
    assert (np.abs(to_float(y, a) - ref) <= ln_bound(xf, gf, cfg)).all()
    assert abs(ref[1, 0] - (math.sqrt(D - 1) * gf[0] + bf[0])) < 1e-3  # the spike reaches sqrt(D-1)
    assert not log.saturated(), log.saturated()


def test_eps_raw_and_input_checks() -> None:
    cfg = preset("edge-moe")
    f, D = cfg.formats, cfg.model.dim
    assert eps_raw(cfg) == round(cfg.model.ln_eps * 2**f.ln_var.fmt.frac_bits)
    ok = np.zeros(D, dtype=np.int64)
    with pytest.raises(FixedPointError, match="gamma"):
        layernorm(np.zeros((1, D), dtype=np.int64), ok + f.norm.fmt.max_raw + 1, ok, cfg)
    with pytest.raises(FixedPointError, match="expected"):
        layernorm(np.zeros((1, D + 1), dtype=np.int64), ok, ok, cfg)


def test_formats_too_narrow_for_layernorm_fail_validation() -> None:
    cfg = preset("edge-moe")
    for field, cast, msg in (
        ("ln_norm", Cast(sfix(32, 4)), "ln_norm .* sqrt\\(dim\\)"),
        ("ln_rstd", Cast(ufix(32, 9)), "ln_rstd .* 1/sqrt\\(ln_eps\\)"),
        ("ln_mean", Cast(sfix(32, 8)), "ln_mean .* activation range"),
        ("ln_square", Cast(ufix(48, 16), Rounding.TRUNCATE), "square of an activation"),
    ):
        formats = dataclasses.replace(cfg.formats, **{field: cast})
        with pytest.raises(ConfigError, match=msg):
            dataclasses.replace(cfg, formats=formats)


@pytest.mark.realdata
def test_real_norm1_of_block0_on_real_tokens(edge_moe_data) -> None:
    """Real weights and image: block 0's norm1 on the float patch embedding, vs torch."""
    cfg = preset("edge-moe")
    f = cfg.formats
    weights = load_edgemoe_dir(edge_moe_data, cfg).weights
    image = np.fromfile(edge_moe_data / "image.float32.bin", dtype="<f4").reshape(1, 3, 128, 256)
    model = M3ViT.from_weights(cfg, weights).double()
    with torch.no_grad():
        tokens = model.embed(torch.from_numpy(image.astype(np.float64)))[0].numpy()
    x = quantize(tokens, f.act)
    xf = to_float(x, f.act.fmt)
    q = quantize_weights({k: weights[k] for k in ("l0_norm1_weight", "l0_norm1_bias")}, cfg)
    y = to_float(layernorm(x, q["l0_norm1_weight"], q["l0_norm1_bias"], cfg), f.act.fmt)
    with torch.no_grad():
        ref = model.blocks[0].norm1(torch.from_numpy(xf)).numpy()
    z = ln_float(xf, 1.0, 0.0, cfg.model.ln_eps)
    gamma = weights["l0_norm1_weight"].astype(np.float64)
    bound = (
        ln_bound(xf, np.abs(gamma) + f.norm.fmt.lsb / 2, cfg) + (np.abs(z) + 1) * f.norm.fmt.lsb / 2 + 1e-9
    )
    assert (np.abs(y - ref) <= bound).all()
    assert sqnr_db(ref, y) >= 60.0
