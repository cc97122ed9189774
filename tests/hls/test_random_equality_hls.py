"""Randomized equality at scale: every HLS kernel in C-simulation equals golden/fixed, bit for bit,
over random configs (shapes, formats, roundings, tables, parallelism; edgemoe.sim.random_config)
and random inputs and shapes per case. One C-simulation library per config serves all its cases.

Slow suite: ``pytest -m slow -s tests/test_random_equality_hls.py`` prints the count per kernel.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hls_inputs import no_stream_read_while_empty, raw_values  # noqa: F401 (autouse fixture)

from edgemoe import csim, csim_build
from edgemoe.config import FixedFormat
from edgemoe.golden.fixed import nonlinear
from edgemoe.golden.fixed.attention import attention
from edgemoe.golden.fixed.core import requantize
from edgemoe.golden.fixed.layernorm import layernorm
from edgemoe.golden.fixed.linear import Epilogue, linear, patch_embed
from edgemoe.golden.fixed.moe import moe
from edgemoe.sim.random_config import random_config

pytestmark = pytest.mark.slow

CONFIG_SEEDS = range(8)
CASES_PER_CONFIG = 125  # 1,000 cases per kernel


@pytest.fixture(scope="module")
def sims() -> list[csim.CSim]:
    return [csim.load(random_config(seed)) for seed in CONFIG_SEEDS]


Case = tuple[np.ndarray, np.ndarray]  # (C-simulation, golden)


def _typical(rng: np.random.Generator, fmt: FixedFormat, shape: tuple[int, ...], extra: int) -> np.ndarray:
    """Raw values mostly of magnitude below 2**extra (in value), with full-range values and bounds."""
    return raw_values(rng, fmt, shape, small_bits=max(fmt.frac_bits + extra, 1))


def case_linear(sim: csim.CSim, rng: np.random.Generator) -> Case:
    cfg = sim.cfg
    f, m, hw = cfg.formats, cfg.model, cfg.hw
    kind = str(rng.choice(["mlp", "attn", "patch"]))
    xc, wc, bc = {
        "mlp": (f.act, f.linear_weight, f.bias),
        "attn": (f.act, f.linear_weight, f.attn_bias),
        "patch": (f.pixel, f.patch_weight, f.bias),
    }[kind]
    max_in = max(m.dim, m.mlp_hidden, m.expert_hidden, m.patch_in)
    n_in = hw.linear_in * int(rng.integers(1, max_in // hw.linear_in, endpoint=True))
    n_out = int(rng.integers(1, max(3 * m.dim, m.mlp_hidden, m.expert_hidden, m.experts), endpoint=True))
    epilogue = [Epilogue.BIAS, Epilogue.BIAS_GELU, Epilogue.EXPERT_ACCUMULATE][int(rng.integers(0, 3))]
    rows = int(rng.integers(1, m.tokens, endpoint=True))
    x = _typical(rng, xc.fmt, (rows, n_in), int(rng.integers(-2, 4)))
    w = _typical(rng, wc.fmt, (n_out, n_in), -int(rng.integers(0, 5)))
    b = None if kind == "mlp" and rng.random() < 0.2 else _typical(rng, bc.fmt, (n_out,), 0)
    if epilogue is Epilogue.EXPERT_ACCUMULATE:
        tokens = np.sort(rng.choice(m.tokens, size=rows, replace=False))
        scores = raw_values(rng, f.gate_score.fmt, (rows,))
        acc = _typical(rng, f.act.fmt, (m.tokens, n_out), 2)
        extra = dict(scores_raw=scores, acc_raw=acc, rows=tokens)
    else:
        extra = {}
    want = linear(x, xc.fmt, w, wc.fmt, b, None if b is None else bc.fmt, f.act, epilogue, cfg=cfg, **extra)
    return sim.linear(x, w, b, epilogue, kind=kind, **extra), want


def _diff_format(src: FixedFormat) -> FixedFormat:
    return FixedFormat(src.bits + 1, src.int_bits + 1)  # x - max: one bit wider than x


def case_exp(sim: csim.CSim, rng: np.random.Generator) -> Case:
    f = sim.cfg.formats
    which = str(rng.choice(["exp_score", "exp_act"]))
    fmt = _diff_format(f.attn_score.fmt if which == "exp_score" else f.act.fmt)
    x = -np.abs(_typical(rng, fmt, (int(rng.integers(1, 64)),), int(rng.integers(0, 6))))
    return sim.nonlinear(which, x), nonlinear.exp_neg(x, fmt, sim.cfg.nonlinear, f.exp_out)


def _positive(rng: np.random.Generator, fmt: FixedFormat, n: int) -> np.ndarray:
    """Positive raw values over the whole format, most of them near 1.0, with 1 and the maximum."""
    x = np.abs(_typical(rng, fmt, (n,), int(rng.integers(-4, 8))))
    x[x == 0] = 1
    x[rng.random(n) < 0.05] = 1
    return x


def case_reciprocal(sim: csim.CSim, rng: np.random.Generator) -> Case:
    f = sim.cfg.formats
    x = _positive(rng, f.softmax_sum.fmt, int(rng.integers(1, 64)))
    return sim.nonlinear("reciprocal", x), nonlinear.reciprocal(
        x, f.softmax_sum.fmt, sim.cfg.nonlinear, f.softmax_recip
    )


def case_rsqrt(sim: csim.CSim, rng: np.random.Generator) -> Case:
    f = sim.cfg.formats
    x = _positive(rng, f.ln_var.fmt, int(rng.integers(1, 64)))
    return sim.nonlinear("rsqrt", x), nonlinear.rsqrt(x, f.ln_var.fmt, sim.cfg.nonlinear, f.ln_rstd)


def case_gelu(sim: csim.CSim, rng: np.random.Generator) -> Case:
    f, nl = sim.cfg.formats, sim.cfg.nonlinear
    x = _typical(rng, f.act.fmt, (int(rng.integers(1, 64)),), nl.gelu_range_log2 + 1)
    return sim.nonlinear("gelu", x), nonlinear.gelu(x, f.act, f.gelu_delta, nl)


def case_softmax(sim: csim.CSim, rng: np.random.Generator) -> Case:
    cfg = sim.cfg
    f = cfg.formats
    shape = (int(rng.integers(1, 8)), int(rng.integers(1, cfg.model.experts, endpoint=True)))
    x = _typical(rng, f.act.fmt, shape, int(rng.integers(-2, 6)))
    return sim.softmax(x), nonlinear.softmax(x, f.act.fmt, cfg, f.gate_score, axis=-1)


def case_layernorm(sim: csim.CSim, rng: np.random.Generator) -> Case:
    cfg = sim.cfg
    f, D = cfg.formats, cfg.model.dim
    x = _typical(rng, f.act.fmt, (int(rng.integers(1, 2 * cfg.model.tokens)), D), int(rng.integers(-4, 6)))
    gamma = _typical(rng, f.norm.fmt, (D,), 1)
    beta = _typical(rng, f.norm.fmt, (D,), 0)
    return sim.layernorm(x, gamma, beta), layernorm(x, gamma, beta, cfg)


def case_attention(sim: csim.CSim, rng: np.random.Generator) -> Case:
    cfg = sim.cfg
    shape = (cfg.model.tokens, cfg.model.dim)
    spread = int(rng.integers(-2, 6))
    q, k, v = (_typical(rng, cfg.formats.act.fmt, shape, spread) for _ in range(3))
    return sim.attention(q, k, v), attention(q, k, v, cfg)


def case_moe(sim: csim.CSim, rng: np.random.Generator) -> Case:
    cfg = sim.cfg
    f, m = cfg.formats, cfg.model
    E, He, D = m.experts, m.expert_hidden, m.dim
    lw, b = f.linear_weight.fmt, f.bias.fmt
    x = _typical(rng, f.act.fmt, (m.tokens, D), int(rng.integers(0, 4)))
    weights = (
        _typical(rng, lw, (E, D), -2),
        _typical(rng, lw, (E, He, D), -3),
        _typical(rng, b, (E, He), 0),
        _typical(rng, lw, (E, D, He), -3),
        _typical(rng, b, (E, D), 0),
    )
    if rng.random() < 0.2:
        weights = (np.zeros_like(weights[0]), *weights[1:])  # equal scores: ties to the lower expert
    want, routing = moe(x, *weights, cfg)
    got, r = sim.moe(x, *weights)
    assert np.array_equal(r["experts"], routing.experts), "top-k experts differ"
    assert r["fetched"] == routing.fetched, "fetch order differs"
    return got, want


def case_patch_embed(sim: csim.CSim, rng: np.random.Generator) -> Case:
    cfg = sim.cfg
    f, m = cfg.formats, cfg.model
    pixels = raw_values(rng, f.pixel.fmt, (m.in_chans, m.image_h, m.image_w))
    w = _typical(rng, f.patch_weight.fmt, (m.dim, m.patch_in), -int(rng.integers(0, 5)))
    b = _typical(rng, f.bias.fmt, (m.dim,), 1)
    pos = _typical(rng, f.pos_embed.fmt, (m.tokens, m.dim), 1)
    return sim.patch_embed(pixels, w, b, pos), patch_embed(pixels, w, b, pos, cfg)


def case_cast(sim: csim.CSim, rng: np.random.Generator) -> Case:
    names = sim.cast_points()
    name = names[int(rng.integers(0, len(names)))]
    cast = dict(sim.cfg.formats.items())[name]
    fmt = cast.fmt
    shift = csim_build.CAST_SOURCE_FRAC - fmt.frac_bits
    lim = 1 << (csim_build.CAST_SOURCE_BITS - 1)
    n = int(rng.integers(1, 64))
    x = rng.integers(-lim, lim, size=n, dtype=np.int64) >> rng.integers(0, 62, size=n)
    # around the bounds and the rounding ties of this format
    bound = rng.choice([fmt.min_raw - 1, fmt.min_raw, fmt.max_raw, fmt.max_raw + 1, 0], size=n)
    near = (
        (bound << max(shift, 0))
        + (rng.integers(-2, 3, size=n) << max(shift - 1, 0))
        + rng.integers(-1, 2, size=n)
    )
    x = np.where(rng.random(n) < 0.5, x, np.clip(near, -lim, lim - 1))
    return sim.cast(x, name), requantize(x, csim_build.CAST_SOURCE_FRAC, cast)


KERNELS: dict[str, Callable[[csim.CSim, np.random.Generator], Case]] = {
    "cast": case_cast,
    "linear": case_linear,
    "exp": case_exp,
    "reciprocal": case_reciprocal,
    "rsqrt": case_rsqrt,
    "gelu": case_gelu,
    "softmax": case_softmax,
    "layernorm": case_layernorm,
    "attention": case_attention,
    "moe": case_moe,
    "patch_embed": case_patch_embed,
}


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_hls_equals_golden_on_random_configs(
    sims: list[csim.CSim], kernel: str, capfd: pytest.CaptureFixture[str]
) -> None:
    cases = values = 0
    index = sorted(KERNELS).index(kernel)
    for seed, sim in zip(CONFIG_SEEDS, sims, strict=True):
        rng = np.random.default_rng([seed, index])
        for i in range(CASES_PER_CONFIG):
            got, want = KERNELS[kernel](sim, rng)
            assert got.shape == want.shape and np.array_equal(got, want), (
                f"{kernel}: case {i} of random_config({seed}) differs in {np.count_nonzero(got != want)} "
                f"of {want.size} values (seeds: config {seed}, inputs [{seed}, {index}])"
            )
            cases += 1
            values += want.size
    assert cases >= 1000
    with capfd.disabled():
        print(f"\n{kernel}: {cases} random cases ({values} values) over {len(sims)} configs, C-sim == golden")
