"""exp / reciprocal / rsqrt / GELU / softmax in C-simulation (hls/include/nonlinear.h) equal
golden/fixed/nonlinear.py, every bit, over random, boundary and saturating inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hls_inputs import no_stream_read_while_empty, raw_values  # noqa: F401 (autouse fixture)

from edgemoe import config, csim
from edgemoe.config import Cast, FixedFormat, sfix
from edgemoe.golden.fixed import nonlinear


def _around_powers(max_raw: int) -> np.ndarray:
    """1, 2**k - 1, 2**k, 2**k + 1 up to ``max_raw``: every leading-one position and its edges."""
    p = np.array([1 << k for k in range(max_raw.bit_length())], dtype=np.int64)
    v = np.concatenate([p - 1, p, p + 1, [1, max_raw, max_raw - 1]])
    return np.unique(v[(v >= 1) & (v <= max_raw)])


@pytest.mark.parametrize("which", ["exp_score", "exp_act"])
def test_exp_neg(sim: csim.CSim, which: str) -> None:
    f = sim.cfg.formats
    src = f.attn_score.fmt if which == "exp_score" else f.act.fmt
    diff_fmt = FixedFormat(src.bits + 1, src.int_bits + 1)  # x - max: one bit wider than x
    rng = np.random.default_rng(3)
    x = -np.abs(raw_values(rng, diff_fmt, (20000,), small_bits=src.frac_bits + 4))
    edges = np.array([0, -1, 1, 5, diff_fmt.min_raw, diff_fmt.max_raw], dtype=np.int64)
    x = np.concatenate([x, edges, -_around_powers(-diff_fmt.min_raw)])
    want = nonlinear.exp_neg(x, diff_fmt, sim.cfg.nonlinear, f.exp_out)
    got = sim.nonlinear(which, x)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {x.size} differ"
    assert got[x.size - edges.size - len(_around_powers(-diff_fmt.min_raw))] == 1 << f.exp_out.fmt.frac_bits


def test_reciprocal(sim: csim.CSim) -> None:
    f = sim.cfg.formats
    fmt = f.softmax_sum.fmt
    rng = np.random.default_rng(4)
    x = np.concatenate([
        rng.integers(1, fmt.max_raw, size=10000, endpoint=True),
        rng.integers(1 << fmt.frac_bits, (sim.cfg.model.tokens + 1) << fmt.frac_bits, size=10000),
        _around_powers(fmt.max_raw),
    ])  # fmt: skip
    want = nonlinear.reciprocal(x, fmt, sim.cfg.nonlinear, f.softmax_recip)
    got = sim.nonlinear("reciprocal", x)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {x.size} differ"
    assert (got == f.softmax_recip.fmt.max_raw).any(), "small inputs must saturate 1/x"


def test_rsqrt(sim: csim.CSim) -> None:
    f = sim.cfg.formats
    fmt = f.ln_var.fmt
    rng = np.random.default_rng(5)
    x = np.concatenate([
        rng.integers(1, fmt.max_raw, size=10000, endpoint=True),
        rng.integers(1, 1 << (fmt.frac_bits + 4), size=10000),
        _around_powers(fmt.max_raw),
    ])  # fmt: skip
    want = nonlinear.rsqrt(x, fmt, sim.cfg.nonlinear, f.ln_rstd)
    got = sim.nonlinear("rsqrt", x)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {x.size} differ"


def test_gelu(sim: csim.CSim) -> None:
    f, nl = sim.cfg.formats, sim.cfg.nonlinear
    fmt = f.act.fmt
    rng = np.random.default_rng(6)
    edge = 1 << (fmt.frac_bits + nl.gelu_range_log2)  # |x| where the table ends
    step = 1 << max(fmt.frac_bits + nl.gelu_range_log2 - nl.gelu_table_bits, 0)
    x = np.concatenate([
        raw_values(rng, fmt, (20000,), small_bits=fmt.frac_bits + nl.gelu_range_log2 + 1),
        np.array([0, 1, -1, fmt.min_raw, fmt.max_raw, edge, edge - 1, -edge, -edge + 1, edge + 1]),
        np.arange(-3, 4) * step + rng.integers(-2, 3, size=7),
    ])  # fmt: skip
    want = nonlinear.gelu(x, f.act, f.gelu_delta, nl)
    got = sim.nonlinear("gelu", x)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {x.size} differ"


def test_softmax(sim: csim.CSim) -> None:
    cfg = sim.cfg
    f, E = cfg.formats, cfg.model.experts
    rng = np.random.default_rng(8)
    x = raw_values(rng, f.act.fmt, (400, E), small_bits=f.act.fmt.frac_bits + 3)
    x[0] = 0  # all equal
    x[1] = f.act.fmt.max_raw  # saturated logits
    x[2] = f.act.fmt.min_raw
    x[3, ::2] = f.act.fmt.max_raw  # extreme spread, ties at the top
    x[3, 1::2] = f.act.fmt.min_raw
    want = nonlinear.softmax(x, f.act.fmt, cfg, f.gate_score, axis=-1)
    got = sim.softmax(x)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {x.size} differ"


def _variant(name: str) -> config.Config:
    """tiny with one setting moved where a kernel takes another branch."""
    base = config.preset("tiny")
    if name == "tiny-w16":  # fewer work fraction bits than the exp inputs have (exp rounds them first)
        return dataclasses.replace(
            base, name=name, nonlinear=dataclasses.replace(base.nonlinear, work_frac_bits=16)
        )
    # act with 9 fraction bits and a 2**12-segment GELU table over |x| < 8: one entry per act lsb,
    # read without interpolation
    formats = dataclasses.replace(base.formats, act=Cast(sfix(19, 10)))
    return dataclasses.replace(
        base, name=name, formats=formats, nonlinear=dataclasses.replace(base.nonlinear, gelu_table_bits=12)
    )


@pytest.mark.parametrize("name", ["tiny-w16", "tiny-gelu-table"])
def test_exp_and_gelu_at_their_other_branches(name: str) -> None:
    cfg = _variant(name)
    sim = csim.load(cfg)
    f, nl = cfg.formats, cfg.nonlinear
    rng = np.random.default_rng(9)
    for which, src in (("exp_score", f.attn_score.fmt), ("exp_act", f.act.fmt)):
        diff_fmt = FixedFormat(src.bits + 1, src.int_bits + 1)
        x = -np.abs(raw_values(rng, diff_fmt, (5000,), small_bits=src.frac_bits + 4))
        x = np.concatenate([x, -_around_powers(-diff_fmt.min_raw)])
        want = nonlinear.exp_neg(x, diff_fmt, nl, f.exp_out)
        assert np.array_equal(sim.nonlinear(which, x), want), f"{name} {which}"
    x = np.concatenate(
        [raw_values(rng, f.act.fmt, (5000,), small_bits=f.act.fmt.frac_bits + 4), np.arange(-99, 100)]
    )
    want = nonlinear.gelu(x, f.act, f.gelu_delta, nl)
    assert np.array_equal(sim.nonlinear("gelu", x), want), f"{name} gelu"


def test_bad_input_is_refused(sim: csim.CSim) -> None:
    with pytest.raises(csim.CSimError, match="not positive"):
        sim.nonlinear("reciprocal", np.array([4, 0]))
    with pytest.raises(csim.CSimError, match="unknown function"):
        sim.nonlinear("tanh", np.array([1]))
    with pytest.raises(csim.CSimError, match="values per row"):
        sim.softmax(np.zeros((2, sim.cfg.model.experts + 1), dtype=np.int64))
