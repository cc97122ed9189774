"""Errors of the fixed-point nonlinear functions against float64, next to their derived bounds.

``python -m edgemoe.nonlinear_errors [preset]`` prints the markdown table (README, "Fixed-point
nonlinear functions"); the tests run the same measurements on coarser grids.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np

from edgemoe.config import Config, FixedFormat, preset
from edgemoe.golden.fixed.core import quantize, to_float
from edgemoe.golden.fixed.nonlinear import exp_neg, gelu, reciprocal, rsqrt, softmax
from edgemoe.golden.fixed.nonlinear_bounds import (
    exp_neg_bound,
    gelu_bound,
    reciprocal_bound,
    rsqrt_bound,
    softmax_bound,
)

_I64 = np.int64


def _octave_grid(lo: int, hi: int, per_octave: int) -> np.ndarray:
    """Raw integers in [lo, hi]: ``per_octave`` evenly spaced per power of two, plus both ends
    of every octave and its neighbours (every value when an octave is smaller)."""
    parts = [np.array([lo, hi], dtype=_I64)]
    e = max(lo, 1).bit_length() - 1
    while (1 << e) <= hi:
        a, b = max(lo, 1 << e), min(hi, (2 << e) - 1)
        if b - a + 1 <= per_octave:
            parts.append(np.arange(a, b + 1, dtype=_I64))
        else:
            parts.append(np.linspace(a, b, per_octave).astype(_I64))
            parts.append(np.array([a + 1, a + 2, b - 1], dtype=_I64))
        e += 1
    return np.unique(np.concatenate(parts))


@dataclass(frozen=True)
class Measured:
    """Errors of one function against float64 over a grid."""

    name: str
    domain: str
    points: int
    max_abs: float
    max_rel: float
    bound_abs: float
    bound_rel: float
    within: bool
    out_lsb: float
    out_fmt: str

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _measure(
    name: str,
    domain: str,
    got: np.ndarray,
    exact: np.ndarray,
    bound: np.ndarray,
    out_fmt: FixedFormat,
) -> Measured:
    err = np.abs(got - exact)
    sig = np.abs(exact) >= 256 * out_fmt.lsb  # relative error where the output has >= 8 bits
    rel, rel_bound = float("nan"), float("nan")
    if sig.any():
        rel = float((err[sig] / np.abs(exact[sig])).max())
        rel_bound = float((bound[sig] / np.abs(exact[sig])).max())
    return Measured(
        name,
        domain,
        int(got.size),
        float(err.max()),
        rel,
        float(bound.max()),
        rel_bound,
        bool(np.all(err <= bound)),
        out_fmt.lsb,
        str(out_fmt),
    )


def _gelu_exact(x: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def measure_exp(cfg: Config, step_log2: int = -16) -> Measured:
    """exp_neg on attention scores (``formats.attn_score`` into ``formats.exp_out``), x in
    [-2**K, 0] every ``max(lsb, 2**step_log2)``, plus every representable x in [-2**-4, 0]."""
    f, nl = cfg.formats, cfg.nonlinear
    xf, out = f.attn_score.fmt, f.exp_out
    K = (out.fmt.frac_bits + 2).bit_length()
    stride = 1 << max(0, xf.frac_bits + step_log2)
    x = np.concatenate(
        [-np.arange(0, (1 << (xf.frac_bits + K)) + 1, stride), -np.arange(0, 1 << (xf.frac_bits - 4))]
    )
    x = np.unique(x)
    xv = to_float(x, xf)
    exact = np.exp(xv)
    got = to_float(exp_neg(x, xf, nl, out), out.fmt)
    b = exp_neg_bound(nl, xf, out, xv)
    return _measure("exp_neg", f"x in [-{2**K}, 0] ({xf})", got, exact, b.at(exact), out.fmt)


def measure_reciprocal(cfg: Config, per_octave: int = 1 << 16) -> Measured:
    """reciprocal of softmax sums (``formats.softmax_sum`` into ``formats.softmax_recip``) over
    the whole domain a sum can take, [1, max]."""
    f, nl = cfg.formats, cfg.nonlinear
    xf, out = f.softmax_sum.fmt, f.softmax_recip
    lo = max(1 << xf.frac_bits, math.ceil(2.0**xf.frac_bits / out.fmt.max_value))
    x = _octave_grid(lo, xf.max_raw, per_octave)
    exact = 1.0 / to_float(x, xf)
    got = to_float(reciprocal(x, xf, nl, out), out.fmt)
    b = reciprocal_bound(nl, out)
    return _measure("reciprocal", f"x in [1, {xf.max_value:g}] ({xf})", got, exact, b.at(exact), out.fmt)


def measure_rsqrt(cfg: Config, per_octave: int = 1 << 14) -> Measured:
    """rsqrt of LayerNorm variances (``formats.ln_var`` into ``formats.ln_rstd``) over every
    positive value whose result fits ln_rstd."""
    f, nl = cfg.formats, cfg.nonlinear
    xf, out = f.ln_var.fmt, f.ln_rstd
    lo = max(1, math.ceil(2.0**xf.frac_bits / out.fmt.max_value**2))
    x = _octave_grid(lo, xf.max_raw, per_octave)
    exact = 1.0 / np.sqrt(to_float(x, xf))
    got = to_float(rsqrt(x, xf, nl, out), out.fmt)
    b = rsqrt_bound(nl, out)
    return _measure(
        "rsqrt",
        f"x in [{to_float(lo, xf):.3g}, {xf.max_value:g}] ({xf})",
        got,
        exact,
        b.at(exact),
        out.fmt,
    )


def measure_gelu(cfg: Config, step_log2: int = -14) -> Measured:
    """gelu on activations (``formats.act``): |x| <= 2**(g+1) every 2**step_log2, every
    representable x in [-2**-6, 2**-6], and the whole act range every 2**-6."""
    f, nl = cfg.formats, cfg.nonlinear
    act, af = f.act, f.act.fmt
    span = 1 << (af.frac_bits + nl.gelu_range_log2 + 1)
    parts = [
        np.arange(-span, span + 1, 1 << max(0, af.frac_bits + step_log2)),
        np.arange(-(1 << (af.frac_bits - 6)), 1 << (af.frac_bits - 6)),
        np.arange(af.min_raw, af.max_raw, 1 << max(0, af.frac_bits - 6)),
        np.array([af.min_raw, af.max_raw]),
    ]
    x = np.unique(np.concatenate(parts))
    xv = to_float(x, af)
    exact = _gelu_exact(xv)
    got = to_float(gelu(x, act, f.gelu_delta, nl), af)
    b = gelu_bound(nl, act, f.gelu_delta)
    return _measure("gelu", f"x in [{af.min_value:g}, {af.max_value:g}] ({af})", got, exact, b.at(exact), af)


def softmax_rows(n: int, rows: int, seed: int = 0) -> np.ndarray:
    """Float test rows for softmax: Gaussian logits of several spreads, ties, one dominant value."""
    rng = np.random.default_rng(seed)
    sigma = np.array([0.5, 2.0, 4.0, 8.0])[rng.integers(0, 4, size=(rows, 1))]
    x = rng.normal(0, 1, (rows, n)) * sigma
    x[0] = 0.0  # all tied
    x[1] = -20.0
    x[1, 3 % n] = 5.0  # one dominant
    x[2, : n // 2] = 1.5  # half tied
    return x


def measure_softmax(cfg: Config, rows: int = 4096) -> Measured:
    """softmax of gate logits (``formats.act``) over the experts into ``formats.gate_score``."""

    f, n = cfg.formats, cfg.model.experts
    x = quantize(softmax_rows(n, rows), f.act, "logits")
    xv = to_float(x, f.act.fmt)
    exact = np.exp(xv - xv.max(-1, keepdims=True))
    exact /= exact.sum(-1, keepdims=True)
    got = to_float(softmax(x, f.act.fmt, cfg, f.gate_score), f.gate_score.fmt)
    b = softmax_bound(cfg, f.act.fmt, f.gate_score, n)
    return _measure(
        "softmax",
        f"{rows} rows of {n} logits ({f.act.fmt})",
        got,
        exact,
        b.at(exact),
        f.gate_score.fmt,
    )


def error_table(cfg: Config) -> list[dict[str, object]]:
    """Max absolute / relative error of every nonlinear function against float64, with its bound.

    Relative errors are taken where the exact value is at least 256 output lsb (below that
    the output rounding dominates and the absolute figure is the meaningful one).
    """
    rows = [
        measure_exp(cfg),
        measure_reciprocal(cfg),
        measure_rsqrt(cfg),
        measure_gelu(cfg),
        measure_softmax(cfg),
    ]
    return [r.as_dict() for r in rows]


def markdown_table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| function | domain (input format) | output | points | max abs error | abs bound | max rel error | "
        "rel bound | output lsb |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        assert r["within"], f"{r['name']}: error beyond its derived bound"
        lines.append(
            f"| {r['name']} | {r['domain']} | {r['out_fmt']} | {r['points']} | {r['max_abs']:.3g} | "
            f"{r['bound_abs']:.3g} | {r['max_rel']:.3g} | {r['bound_rel']:.3g} | {r['out_lsb']:.3g} |"
        )
    return "\n".join(lines)


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "edge-moe"
    cfg = preset(name)
    print(f"Fixed-point nonlinear functions of preset '{cfg.name}' against float64\n")
    print(markdown_table(error_table(cfg)))


if __name__ == "__main__":
    main()
