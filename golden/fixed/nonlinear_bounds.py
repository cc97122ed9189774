"""Error bounds of the fixed-point nonlinear functions (:mod:`edgemoe.golden.fixed.nonlinear`),
derived step by step from the formats and table sizes: ``|fixed - exact| <= rel * |exact| + abs``.

The tests check every function against its bound over dense grids
(:mod:`edgemoe.nonlinear_errors`), and the model-level tests build on them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgemoe.config import Cast, Config, FixedFormat, Nonlinear, Rounding
from edgemoe.tables import gelu_delta_exact


@dataclass(frozen=True)
class Bound:
    """A pointwise error bound ``|fixed - exact| <= rel * |exact| + abs`` (``rel`` may depend on x)."""

    rel: float
    abs: float

    def at(self, exact: np.ndarray, rel: np.ndarray | float | None = None) -> np.ndarray:
        r = self.rel if rel is None else rel
        return np.abs(exact) * r + self.abs


def _cast_error(cast: Cast) -> float:
    """Largest error of the final cast into ``cast`` (in range): lsb/2 rounding, lsb truncating."""
    return cast.fmt.lsb / 2 if cast.rounding is Rounding.ROUND_HALF_UP else cast.fmt.lsb


def exp_neg_bound(nl: Nonlinear, x_fmt: FixedFormat, out: Cast, x: np.ndarray | float = 0.0) -> Bound:
    """Bound of :func:`exp_neg` at inputs ``x <= 0`` (float), derived step by step.

    With ``eW = 2**-(W+1)`` (half a work lsb), ``h = 2**-b`` (exp2 table step):

    - steps 2-3: ``|t_hat - t| <= dt = eW * (|x| + 2.45)`` (rounding of |x| to W bits times
      L <= 1.45, the error of L times |x|, the rounding of t), so
      ``|2**-t_hat - e**x| <= e**x * (2**dt - 1)``;
    - step 5: ``|p - 2**-u| <= A = 2 eW + h**2/8 * ln(2)**2`` (rounded entries, rounded product;
      interpolation error h²/8·max|f''| with f(u) = 2**-u, f'' = ln(2)² 2**-u <= ln(2)²); since
      2**-u >= 1/2 that is a relative error of at most ``2A``, unchanged by the shift 2**-n;
    - step 6: the output cast, lsb/2 (round half up) or lsb (truncate). The clamps only act
      where the exact result is below lsb/4, which rounds to 0.

    Hence ``rel(x) = 2A + (1 + 2A)(2**dt - 1)`` and ``abs = cast error``.
    """
    eW = 2.0 ** -(nl.work_frac_bits + 1)
    A = 2 * eW + 2.0 ** (-2 * nl.exp_table_bits) / 8 * math.log(2) ** 2
    dt = eW * (np.abs(x) + 2.45)
    rel = 2 * A + (1 + 2 * A) * (np.exp2(dt) - 1)
    return Bound(rel, _cast_error(out))  # type: ignore[arg-type]


def _newton(eps: float, steps: int, step: Callable[[float], float]) -> float:
    for _ in range(steps):
        eps = step(eps)
    return eps


def reciprocal_bound(nl: Nonlinear, out: Cast) -> Bound:
    """Bound of :func:`reciprocal` where ``1/x`` fits ``out``.

    With ``eW = 2**-(W+1)``, ``h = 2**-b``:

    - step 2 truncates m by less than 2**-W: a relative error ``tau < 2**-W`` of 1/m;
    - step 3 seed: interpolation error h²/8·max f'' with f = 1/m, f'' = 2/m³; relative to 1/m
      on a segment starting at m0 >= 1 that is at most ``h²/4 (1 + h)``; plus entry and
      product rounding 2 eW, relative to 1/m >= 1/2: ``eps0 = h²/4 (1 + h) + 4 eW``;
    - step 4: y = z(1 - eps) gives y(2 - m y) = z(1 - eps²); the two roundings add
      ``eW (y + 1)`` absolute, i.e. ``eW (1 + |eps| + 2)`` relative (1/z = m <= 2):
      ``eps' = eps² + eW (3 + |eps|)``;
    - step 5 is an exact shift, then the output cast.

    The result approximates 1/m_hat = (1/m)/(1 - tau): ``rel = (1 + eps_N)/(1 - tau) - 1``,
    ``abs`` = cast error.
    """
    eW, h = 2.0 ** -(nl.work_frac_bits + 1), 2.0**-nl.recip_table_bits
    eps0 = h * h / 4 * (1 + h) + 4 * eW
    eps = _newton(eps0, nl.newton_steps, lambda e: e * e + eW * (3 + e))
    tau = 2 * eW
    return Bound((1 + eps) / (1 - tau) - 1, _cast_error(out))


def rsqrt_bound(nl: Nonlinear, out: Cast) -> Bound:
    """Bound of :func:`rsqrt` where ``1/sqrt(x)`` fits ``out``.

    With ``eW = 2**-(W+1)``, ``h = 4 * 2**-b``:

    - step 2 truncates m by a relative ``tau < 2**-W``: 1/sqrt(m_hat) = (1/sqrt(m)) (1 - tau)**-1/2;
    - step 3 seed: f = m**-1/2, f'' = 3/4 m**-5/2; relative to f(m) on a segment starting at
      m0 >= 1: ``3/32 h² sqrt(1 + h)``; plus entry and product rounding 2 eW relative to
      f >= 1/2: ``eps0 = 3/32 h² sqrt(1 + h) + 4 eW``;
    - step 4: y = z(1 - eps) gives y(3 - m y²)/2 = z(1 - 1.5 eps² + 0.5 eps³); the three
      roundings add ``eW ((y/2)(m + 1) + 1)``, relative to z = m**-1/2 (m <= 4):
      ``eps' = 1.5 eps² + 0.5 |eps|³ + eW (2.5 (1 + |eps|) + 2)``;
    - step 5 is an exact shift, then the output cast.

    ``rel = (1 + eps_N)(1 - tau)**-1/2 - 1``, ``abs`` = cast error.
    """
    eW, h = 2.0 ** -(nl.work_frac_bits + 1), 4 * 2.0**-nl.rsqrt_table_bits
    eps0 = 3 / 32 * h * h * math.sqrt(1 + h) + 4 * eW
    eps = _newton(eps0, nl.newton_steps, lambda e: 1.5 * e * e + 0.5 * e**3 + eW * (2.5 * (1 + e) + 2))
    tau = 2 * eW
    return Bound((1 + eps) / math.sqrt(1 - tau) - 1, _cast_error(out))


def gelu_bound(nl: Nonlinear, act: Cast, delta: Cast) -> Bound:
    """Bound of :func:`gelu` (absolute; GELU's relative error is meaningless near its zeros).

    - inside the table (|x| < 2**g): the interpolation error h²/8·max|delta''| with
      h = 2**g / 2**b and delta''(a) = phi(a)(a² - 2), |delta''| <= 2 phi(0) = sqrt(2/pi); the
      rounded entries (lsb_d/2) and the rounded product (the delta cast's error);
    - beyond: delta(a) <= delta(2**g) (delta decreases for a > 0.75);
    - ReLU(x) - d is exact when delta has no more fraction bits than act; otherwise the act cast
      adds its error.
    """
    h = 2.0**nl.gelu_range_log2 / 2**nl.gelu_table_bits
    inside = h * h / 8 * math.sqrt(2 / math.pi) + delta.fmt.lsb / 2 + _cast_error(delta)
    beyond = gelu_delta_exact(2.0**nl.gelu_range_log2)
    final = _cast_error(act) if delta.fmt.frac_bits > act.fmt.frac_bits else 0.0
    return Bound(0.0, max(inside, beyond) + final)


def softmax_bound(cfg: Config, x_fmt: FixedFormat, out: Cast, n: int) -> Bound:
    """Bound of :func:`softmax` over rows of ``n`` values (absolute, on probabilities).

    With exp's relative bound ``Re`` at the clamp |x| = 2**K and its cast error ``qe``, the
    reciprocal's relative bound ``Rr`` and cast error ``qr``, the output cast error ``qo``:
    e_hat_j = e_j (1 + rho_j) + alpha_j, the maximum exactly 1, so s_hat >= 1 and
    ``|s_hat - s| <= Re (s - 1) + (n - 1) qe``. Then
    ``|e_hat_i/s_hat - e_i/s| <= |e_hat_i - e_i|/s_hat + p_i |s_hat - s|/s_hat
    <= 2 Re/(1 - Re) + n qe`` (p_i <= 1, s_hat >= 1, s/s_hat <= 1/(1 - Re)); the reciprocal adds
    ``Rr + qr`` (e_hat_i <= s_hat, e_hat_i <= 1), the output cast ``qo``, and a sum format with
    fewer fraction bits than exp_out adds ``n`` times its cast error.
    """
    f, nl = cfg.formats, cfg.nonlinear
    K = (f.exp_out.fmt.frac_bits + 2).bit_length()
    eb = exp_neg_bound(nl, x_fmt, f.exp_out, float(2**K))
    re = float(eb.rel)
    total = 2 * re / (1 - re) + n * eb.abs + reciprocal_bound(nl, f.softmax_recip).rel
    total += _cast_error(f.softmax_recip) + _cast_error(out)
    if f.softmax_sum.fmt.frac_bits < f.exp_out.fmt.frac_bits:
        total += n * _cast_error(f.softmax_sum)
    return Bound(0.0, total)
