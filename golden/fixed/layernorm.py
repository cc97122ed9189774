"""LayerNorm over the token width, in the hardware's order of operations.

One pass over a token accumulates ``Σx`` and ``Σx²``; the statistics then give ``rstd``; a
second pass over the same token (held in the on-chip buffer) applies ``(x − mean)·rstd·γ + β``.

The divisions by the token width ``D`` (not a power of two in general: 192) are exact integer
divisions by the constant ``D`` with the rounding of the cast they feed (:func:`div_const`):
``floor(n / D)`` for truncation, ``floor((2n + D) / (2D))`` for round-half-up. Hardware does
either with one constant multiply-and-shift (a divisor known at synthesis time); the result is
defined as the exact quotient rounded, never as an approximation of ``1/D``. Every other
narrowing is a named Cast of ``cfg.formats`` (``ln_*``) and goes through ``core.requantize``.

Twins: ``hls/include/layernorm.h`` (tests/hls/test_hls_layernorm.py); ``hw/rtl/layernorm_unit.sv``
with ``hw/rtl/const_div.sv`` (sim/layernorm_unit, sim/const_div); tests/golden/test_fixed_layernorm.py.
"""

from __future__ import annotations

import functools

import numpy as np

from edgemoe.config import Cast, Config, FixedFormat, Rounding
from edgemoe.golden.fixed import nonlinear
from edgemoe.golden.fixed.core import (
    FixedPointError,
    SaturationLog,
    fit,
    quantize,
    requantize,
    requantize_inplace,
)
from edgemoe.golden.fixed.linear import check_range


def div_const(num: np.ndarray, den: int, rounding: Rounding) -> np.ndarray:
    """``num / den`` for a positive constant ``den``, rounded exactly as ``rounding`` says (int64).

    TRUNCATE gives ``floor(num / den)`` (toward −∞, also for negative ``num``: C's ``/`` truncates
    toward zero and is not this); ROUND_HALF_UP gives ``floor((2·num + den) / (2·den))``.
    """
    if den <= 0:
        raise FixedPointError(f"div_const: divisor must be a positive constant, got {den}")
    num = np.asarray(num, dtype=np.int64)
    if rounding is Rounding.ROUND_HALF_UP:
        return np.floor_divide(2 * num + den, 2 * den)
    return np.floor_divide(num, den)


def div_to(sum_raw: np.ndarray, sum_frac: int, den: int, cast: Cast) -> np.ndarray:
    """Raw value of ``(sum_raw·2**-sum_frac) / den`` at ``cast.fmt``'s fraction bits, rounded by ``cast``."""
    shift = cast.fmt.frac_bits - sum_frac
    if shift >= 0:
        return div_const(np.asarray(sum_raw, dtype=np.int64) << np.int64(shift), den, cast.rounding)
    return div_const(sum_raw, den << -shift, cast.rounding)


def eps_raw(cfg: Config) -> int:
    """``ln_eps`` as a raw value of ``formats.ln_var`` (round half up; validated to be >= 1)."""
    return _eps_raw(cfg.model.ln_eps, cfg.formats.ln_var.fmt)


@functools.lru_cache(maxsize=64)
def _eps_raw(eps: float, fmt: FixedFormat) -> int:
    return int(quantize(np.float64(eps), Cast(fmt), "ln_eps"))


def layernorm(
    x_raw: np.ndarray,
    gamma_raw: np.ndarray,
    beta_raw: np.ndarray,
    cfg: Config,
    log: SaturationLog | None = None,
    name: str = "layernorm",
) -> np.ndarray:
    """LayerNorm of tokens ``x [..., D]`` (``formats.act``) with ``γ, β [D]`` (``formats.norm``).

    Order of operations (each step a named cast, logged as ``name.<step>``):

    1. ``sq = cast_ln_square(x·x)`` per element; ``S1 = Σx``, ``S2 = Σsq`` exact (wide adders);
    2. ``mean = S1 / D`` to ``ln_mean``; ``ex2 = S2 / D`` to ``ln_var`` (exact divisions by the
       constant D, rounded by the cast's rounding, :func:`div_const`);
    3. ``m2 = cast_ln_var(mean·mean)``; ``var = max(ex2 − m2, 0)`` (a comparator: rounding can
       make the difference negative; not counted as saturation);
    4. ``ve = fit_ln_var(var + eps_raw)`` (``name.var``); ``rstd = nonlinear.rsqrt(ve)`` to ``ln_rstd``;
    5. ``z = cast_ln_norm((x − mean)·rstd)`` (``name.norm``; ``x − mean`` exact);
    6. ``y = cast_act(z·γ + β)`` (``name``; β aligned to the product's fraction bits, exact sum).

    Returns:
        ``[..., D]`` raw values in ``formats.act``.
    """
    f, D = cfg.formats, cfg.model.dim
    x_raw = check_range(x_raw, f.act.fmt, f"{name}: input")
    gamma_raw = check_range(gamma_raw, f.norm.fmt, f"{name}: gamma")
    beta_raw = check_range(beta_raw, f.norm.fmt, f"{name}: beta")
    if x_raw.shape[-1] != D or gamma_raw.shape != (D,) or beta_raw.shape != (D,):
        raise FixedPointError(
            f"{name}: input {x_raw.shape}, gamma {gamma_raw.shape}, beta {beta_raw.shape}; "
            f"expected [..., {D}], ({D},), ({D},)"
        )
    for what, bits in (("act", f.act.fmt.bits), ("ln_mean", f.ln_mean.fmt.bits)):
        if 2 * bits - 1 > 63:
            raise FixedPointError(
                f"{name}: the square of a formats.{what} value ({bits} bits) exceeds 63 bits"
            )
    fa = f.act.fmt.frac_bits
    # 1. one pass: sum and sum of squares
    sq = requantize_inplace(x_raw * x_raw, 2 * fa, f.ln_square, f"{name}.square", log)
    s1 = x_raw.sum(axis=-1, keepdims=True)
    s2 = sq.sum(axis=-1, keepdims=True)
    # 2. mean and mean of squares: exact division by the constant D, rounded by the cast
    mean = fit(div_to(s1, fa, D, f.ln_mean), f.ln_mean.fmt, f.ln_mean.overflow, f"{name}.mean", log)
    ex2 = fit(
        div_to(s2, f.ln_square.fmt.frac_bits, D, f.ln_var),
        f.ln_var.fmt,
        f.ln_var.overflow,
        f"{name}.ex2",
        log,
    )
    # 3. variance E[x²] − mean²
    fm = f.ln_mean.fmt.frac_bits
    m2 = requantize(mean * mean, 2 * fm, f.ln_var, f"{name}.mean_sq", log)
    var = np.maximum(ex2 - m2, 0)
    # 4. + eps, 1/sqrt
    ve = fit(var + eps_raw(cfg), f.ln_var.fmt, f.ln_var.overflow, f"{name}.var", log)
    rstd = nonlinear.rsqrt(ve, f.ln_var.fmt, cfg.nonlinear, f.ln_rstd)
    # 5. normalise: (x − mean) exact at the finer of the two fraction bits, times rstd
    fd = max(fa, fm)
    d = x_raw << np.int64(fd - fa)
    d -= mean << np.int64(fd - fm)
    # |x − mean|·rstd ≤ sqrt(D)·(1 + rounding) mathematically; check the product's width anyway
    if d.size and max(int(d.max()), -int(d.min())).bit_length() + int(rstd.max()).bit_length() > 63:
        raise FixedPointError(
            f"{name}: (x − mean)·rstd exceeds 63 bits; narrow formats.ln_rstd or formats.act"
        )
    d *= rstd
    z = requantize_inplace(d, fd + f.ln_rstd.fmt.frac_bits, f.ln_norm, f"{name}.norm", log)
    # 6. scale and shift
    fz, fn = f.ln_norm.fmt.frac_bits, f.norm.fmt.frac_bits
    z *= gamma_raw
    z += beta_raw << np.int64(fz)
    return requantize_inplace(z, fz + fn, f.act, name, log)
