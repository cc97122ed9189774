"""The fixed-point nonlinear functions: spec, exact points, and error against float64 within
bounds derived from the formats and table sizes (see the ``*_bound`` docstrings in
``edgemoe.golden.fixed.nonlinear`` for each derivation)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from edgemoe import nonlinear_errors as errors
from edgemoe.config import Cast, Config, Nonlinear, Overflow, Rounding, preset, sfix, ufix
from edgemoe.golden.fixed import nonlinear as nlf
from edgemoe.golden.fixed import nonlinear_bounds as bounds
from edgemoe.golden.fixed.core import FixedPointError, quantize, to_float
from edgemoe.tables import build_tables, gelu_delta_exact

EDGE = preset("edge-moe")


def _variant(nl: dict | None = None, **formats: Cast) -> Config:
    base = EDGE
    return dataclasses.replace(
        base,
        name="variant",
        nonlinear=dataclasses.replace(base.nonlinear, **(nl or {})),
        formats=dataclasses.replace(base.formats, **formats),
    )


VARIANTS = {
    "edge-moe": EDGE,
    "tiny": preset("tiny"),
    "no-newton": _variant({"newton_steps": 0}),
    "two-newton-small-tables": _variant(
        {"newton_steps": 2, "recip_table_bits": 3, "rsqrt_table_bits": 3, "exp_table_bits": 4}
    ),
    "narrow-work-truncating": _variant(
        {"work_frac_bits": 16, "gelu_table_bits": 6, "gelu_range_log2": 2},
        exp_out=Cast(ufix(16, 1), Rounding.TRUNCATE),
        softmax_recip=Cast(ufix(18, 1), Rounding.TRUNCATE),
        gelu_delta=Cast(ufix(16, 0), Rounding.TRUNCATE),
        act=Cast(sfix(24, 8), Rounding.TRUNCATE),
        softmax_sum=Cast(ufix(24, 9), Rounding.TRUNCATE),
        gate_score=Cast(ufix(16, 1), Rounding.TRUNCATE),
    ),
}

MEASURES = {
    "exp_neg": lambda cfg: errors.measure_exp(cfg, step_log2=-14),
    "reciprocal": lambda cfg: errors.measure_reciprocal(cfg, per_octave=1 << 13),
    "rsqrt": lambda cfg: errors.measure_rsqrt(cfg, per_octave=1 << 12),
    "gelu": lambda cfg: errors.measure_gelu(cfg, step_log2=-12),
    "softmax": lambda cfg: errors.measure_softmax(cfg, rows=4096),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("function", list(MEASURES))
def test_error_within_derived_bound(function: str, variant: str) -> None:
    """Every point of a dense grid over the function's domain lies within its derived bound."""
    m = MEASURES[function](VARIANTS[variant])
    assert m.points >= 10_000
    assert m.within, f"{function} ({variant}): max abs error {m.max_abs:.3g} exceeds bound somewhere"
    assert m.max_abs <= m.bound_abs


def test_edge_moe_bounds_are_tight_enough() -> None:
    """The tuned defaults: internal errors below the output lsb, so the outputs are within
    about one lsb of the exact value (the bounds themselves, not the measurements)."""
    nl, f = EDGE.nonlinear, EDGE.formats
    exp_b = bounds.exp_neg_bound(nl, f.attn_score.fmt, f.exp_out, 0.0)
    assert exp_b.abs + float(exp_b.rel) < f.exp_out.fmt.lsb
    assert bounds.reciprocal_bound(nl, f.softmax_recip).rel < 2**-22
    assert bounds.rsqrt_bound(nl, f.ln_rstd).rel < 2**-22
    assert bounds.gelu_bound(nl, f.act, f.gelu_delta).abs < 2**-15
    assert bounds.softmax_bound(EDGE, f.act.fmt, f.gate_score, EDGE.model.experts).abs < 2**-13


def test_edge_moe_bounds_are_attained_within_a_factor_of_four() -> None:
    """The derived bounds are not loose: the dense grids reach at least a quarter of each."""
    for row in errors.error_table(EDGE):
        assert row["within"], row["name"]
        assert row["max_abs"] >= row["bound_abs"] / 4, row


# -- the docstring algorithms, written out again with Python integers, one value at a time


def _rhu(v: int, s: int) -> int:
    return (v + (1 << (s - 1))) >> s if s > 0 else v << -s


def _cast(v: int, s: int, cast: Cast) -> int:
    if s > 0:
        v = _rhu(v, s) if cast.rounding is Rounding.ROUND_HALF_UP else v >> s
    else:
        v <<= -s
    fmt = cast.fmt
    if cast.overflow is Overflow.SATURATE:
        return min(max(v, fmt.min_raw), fmt.max_raw)
    v &= (1 << fmt.bits) - 1
    return v - (1 << fmt.bits) if fmt.signed and v > fmt.max_raw else v


def _lerp(table: np.ndarray, v: int, frac_bits: int) -> int:
    i, r = v >> frac_bits, v & ((1 << frac_bits) - 1)
    lo = int(table[i])
    return lo + _rhu((int(table[i + 1]) - lo) * r, frac_bits) if frac_bits > 0 else lo


def spec_exp(x: int, xf: int, nl: Nonlinear, out: Cast, tables: dict) -> int:
    W, b, OF = nl.work_frac_bits, nl.exp_table_bits, out.fmt.frac_bits
    K = math.ceil(math.log2(OF + 3))
    a = min(max(-x, 0), (1 << (xf + K)) - 1)
    aw = _rhu(a, xf - W)
    t = _rhu(aw * int(tables["log2e"].raw[0]), W)
    n, u = t >> W, t & ((1 << W) - 1)
    p = _lerp(tables["exp2"].raw, u, W - b)
    return _cast(p, min(n, OF + 2) + W - OF, out)


def _normalise(x: int, top: int) -> tuple[int, int]:
    e = x.bit_length() - 1
    return e, (x >> (e - top) if e >= top else x << (top - e))


def spec_recip(x: int, xf: int, nl: Nonlinear, out: Cast, tables: dict) -> int:
    W, b = nl.work_frac_bits, nl.recip_table_bits
    e, m = _normalise(x, W)
    y = _lerp(tables["recip"].raw, m - (1 << W), W - b)
    for _ in range(nl.newton_steps):
        y = _rhu(y * ((2 << W) - _rhu(m * y, W)), W)
    s = min(max(W + e - xf - out.fmt.frac_bits, -(out.fmt.bits + 1)), W + 2)
    return _cast(y, s, out)


def spec_rsqrt(x: int, xf: int, nl: Nonlinear, out: Cast, tables: dict) -> int:
    W, b = nl.work_frac_bits, nl.rsqrt_table_bits
    E = x.bit_length() - 1 - xf
    par = E % 2
    q = (E - par) // 2
    _, m = _normalise(x, W + par)
    y = _lerp(tables["rsqrt"].raw, m - (1 << W), W + 2 - b)
    for _ in range(nl.newton_steps):
        s2 = _rhu(y * y, W)
        y = _rhu(y * ((3 << W) - _rhu(m * s2, W)), W + 1)
    s = min(max(W + q - out.fmt.frac_bits, -(out.fmt.bits + 1)), W + 2)
    return _cast(y, s, out)


def spec_gelu(x: int, act: Cast, delta: Cast, nl: Nonlinear, tables: dict) -> int:
    AF, DF, g, b = act.fmt.frac_bits, delta.fmt.frac_bits, nl.gelu_range_log2, nl.gelu_table_bits
    a = abs(x)
    d = 0
    if a < 1 << (AF + g):
        rb = AF + g - b
        G = tables["gelu_delta"].raw
        i, r = (a >> rb, a & ((1 << rb) - 1)) if rb > 0 else (a << -rb, 0)
        lo = int(G[i])
        d = lo + (
            _cast((int(G[i + 1]) - lo) * r, rb, dataclasses.replace(delta, fmt=sfix(62, 62))) if rb > 0 else 0
        )
        d = _cast(d, 0, delta)
    F = max(AF, DF)
    return _cast((max(x, 0) << (F - AF)) - (d << (F - DF)), F - AF, act)


@pytest.mark.parametrize("variant", ["edge-moe", "narrow-work-truncating", "two-newton-small-tables"])
def test_vectorised_functions_follow_the_written_spec(variant: str) -> None:
    cfg = VARIANTS[variant]
    f, nl, tables = cfg.formats, cfg.nonlinear, build_tables(cfg)
    rng = np.random.default_rng(7)
    xf = f.attn_score.fmt
    x = np.concatenate([-rng.integers(0, 40 << xf.frac_bits, 300), [0, 5, -1, xf.min_raw]])
    got = nlf.exp_neg(x, xf, nl, f.exp_out)
    assert got.tolist() == [spec_exp(int(v), xf.frac_bits, nl, f.exp_out, tables) for v in x]
    sf = f.softmax_sum.fmt
    x = np.concatenate([rng.integers(1, sf.max_raw, 300), [1, sf.max_raw, 1 << sf.frac_bits]])
    got = nlf.reciprocal(x, sf, nl, f.softmax_recip)
    assert got.tolist() == [spec_recip(int(v), sf.frac_bits, nl, f.softmax_recip, tables) for v in x]
    vf = f.ln_var.fmt
    x = np.concatenate([np.exp2(rng.uniform(0, 47, 300)).astype(np.int64), [1, 2, 3, vf.max_raw]])
    got = nlf.rsqrt(x, vf, nl, f.ln_rstd)
    assert got.tolist() == [spec_rsqrt(int(v), vf.frac_bits, nl, f.ln_rstd, tables) for v in x]
    af = f.act.fmt
    x = np.concatenate(
        [rng.integers(-(12 << af.frac_bits), 12 << af.frac_bits, 300), [af.min_raw, af.max_raw, 0]]
    )
    got = nlf.gelu(x, f.act, f.gelu_delta, nl)
    assert got.tolist() == [spec_gelu(int(v), f.act, f.gelu_delta, nl, tables) for v in x]


def test_exact_points_and_clamps() -> None:
    f, nl = EDGE.formats, EDGE.nonlinear
    xf, one = f.attn_score.fmt, 1 << f.exp_out.fmt.frac_bits
    # exp(0) = 1 exactly; x > 0 is clamped to 0; far below, 0
    assert nlf.exp_neg(np.array([0, 1, xf.max_raw]), xf, nl, f.exp_out).tolist() == [one] * 3
    assert nlf.exp_neg(np.array([xf.min_raw, -(32 << xf.frac_bits)]), xf, nl, f.exp_out).tolist() == [0, 0]
    # 1/2**k and 1/sqrt(4**k) are exact
    sf, rf = f.softmax_sum.fmt, f.softmax_recip.fmt
    k = np.arange(0, 10)
    got = nlf.reciprocal((1 << sf.frac_bits) << k, sf, nl, f.softmax_recip)
    assert got.tolist() == [(1 << rf.frac_bits) >> int(i) for i in k]
    vf, of = f.ln_var.fmt, f.ln_rstd.fmt
    k = np.arange(-5, 10)
    got = nlf.rsqrt(
        np.array(
            [
                (1 << vf.frac_bits) << (2 * int(i)) if i >= 0 else (1 << vf.frac_bits) >> (-2 * int(i))
                for i in k
            ]
        ),
        vf,
        nl,
        f.ln_rstd,
    )
    assert got.tolist() == [
        (1 << of.frac_bits) >> int(i) if i >= 0 else (1 << of.frac_bits) << -int(i) for i in k
    ]
    # results beyond the output format saturate (1/x of the smallest x)
    assert nlf.reciprocal(np.array([1]), sf, nl, f.softmax_recip).tolist() == [rf.max_raw]
    # gelu: 0 at 0, identity far right, 0 far left (delta is 0 past 2**g)
    af = f.act.fmt
    big = 9 << af.frac_bits
    assert nlf.gelu(np.array([0, big, -big, af.max_raw, af.min_raw]), f.act, f.gelu_delta, nl).tolist() == [
        0,
        big,
        0,
        af.max_raw,
        0,
    ]


def test_non_positive_inputs_are_errors() -> None:
    f, nl = EDGE.formats, EDGE.nonlinear
    with pytest.raises(FixedPointError, match="reciprocal: 2 input"):
        nlf.reciprocal(np.array([3, 0, -1]), f.softmax_sum.fmt, nl, f.softmax_recip)
    with pytest.raises(FixedPointError, match="rsqrt: 1 input"):
        nlf.rsqrt(np.array([0]), f.ln_var.fmt, nl, f.ln_rstd)


def test_exp_is_monotone_on_every_input_near_zero() -> None:
    f, nl = EDGE.formats, EDGE.nonlinear
    xf = f.attn_score.fmt
    x = -np.arange(0, 1 << (xf.frac_bits + 1))  # every representable x in (-2, 0]
    y = nlf.exp_neg(x, xf, nl, f.exp_out)
    assert np.all(np.diff(y) <= 0)


def test_softmax_axis_ties_and_sum() -> None:
    f = EDGE.formats
    rows = quantize(errors.softmax_rows(EDGE.model.experts, 64, seed=3), f.act)
    p = nlf.softmax(rows, f.act.fmt, EDGE, f.gate_score)
    assert p.tolist() == nlf.softmax(rows.T, f.act.fmt, EDGE, f.gate_score, axis=0).T.tolist()
    assert len(set(p[0].tolist())) == 1  # all tied logits: equal scores
    # every row sums to 1 within n times the per-element bound
    n = EDGE.model.experts
    bound = bounds.softmax_bound(EDGE, f.act.fmt, f.gate_score, n).abs
    assert np.all(np.abs(to_float(p, f.gate_score.fmt).sum(-1) - 1.0) <= n * bound)
    batched = nlf.softmax(rows.reshape(4, 16, n), f.act.fmt, EDGE, f.gate_score)
    assert batched.reshape(64, n).tolist() == p.tolist()


def test_tables_deterministic_and_correctly_rounded() -> None:
    t1, t2 = build_tables(EDGE), build_tables(dataclasses.replace(EDGE, name="copy"))
    assert set(t1) == {"log2e", "exp2", "recip", "rsqrt", "gelu_delta"}
    nl = EDGE.nonlinear
    sizes = {
        "log2e": 1,
        "exp2": 2**nl.exp_table_bits + 1,
        "recip": 2**nl.recip_table_bits + 1,
        "rsqrt": 3 * 2 ** (nl.rsqrt_table_bits - 2) + 1,
        "gelu_delta": 2**nl.gelu_table_bits + 1,
    }
    exact = {
        "log2e": lambda k: math.log2(math.e),
        "exp2": lambda k: 2.0 ** (-k / 2**nl.exp_table_bits),
        "recip": lambda k: 1 / (1 + k / 2**nl.recip_table_bits),
        "rsqrt": lambda k: 1 / math.sqrt(1 + 4 * k / 2**nl.rsqrt_table_bits),
        "gelu_delta": lambda k: gelu_delta_exact(k * 2.0**nl.gelu_range_log2 / 2**nl.gelu_table_bits),
    }
    for name, table in t1.items():
        assert np.array_equal(table.raw, t2[name].raw) and table.fmt == t2[name].fmt
        assert table.size == sizes[name], name
        assert table.raw.min() >= table.fmt.min_raw and table.raw.max() <= table.fmt.max_raw, name
        want = np.array([exact[name](k) for k in range(table.size)])
        assert np.all(np.abs(table.values() - want) <= table.fmt.lsb / 2 * (1 + 1e-9)), name
    assert t1["gelu_delta"].fmt == EDGE.formats.gelu_delta.fmt


@pytest.mark.slow
def test_exp_and_gelu_on_every_representable_input() -> None:
    """Exhaustive: every attn_score value with |x| < 2**K, every act value with |x| < 2**(g+1)."""
    import torch

    f, nl = EDGE.formats, EDGE.nonlinear
    xf, out = f.attn_score.fmt, f.exp_out
    K = (out.fmt.frac_bits + 2).bit_length()
    chunk = 1 << 22
    for start in range(0, 1 << (xf.frac_bits + K), chunk):
        x = -np.arange(start, start + chunk)
        xv = to_float(x, xf)
        exact = np.exp(xv)
        err = np.abs(to_float(nlf.exp_neg(x, xf, nl, out), out.fmt) - exact)
        assert np.all(err <= bounds.exp_neg_bound(nl, xf, out, xv).at(exact))
    af = f.act.fmt
    bound = bounds.gelu_bound(nl, f.act, f.gelu_delta).abs
    span = 1 << (af.frac_bits + nl.gelu_range_log2 + 1)
    for start in range(-span, span, chunk):
        x = np.arange(start, start + chunk)
        xv = to_float(x, af)
        exact = 0.5 * xv * (1 + torch.special.erf(torch.from_numpy(xv / math.sqrt(2))).numpy())
        err = np.abs(to_float(nlf.gelu(x, f.act, f.gelu_delta, nl), af) - exact)
        assert err.max() <= bound
