"""The project's own fixed-point nonlinear functions: exp, reciprocal, rsqrt, GELU, softmax.

Each function is an integer algorithm built from shifts, adds, integer multiplies,
comparisons, leading-one detection and table lookups with linear interpolation (plus
Newton steps); there is no float and no division. The docstrings give every step with its
width and rounding so that the C++ (ap_fixed) and SystemVerilog versions can follow it bit for
bit. Tables and constants come from :func:`edgemoe.tables.build_tables`.

Notation: ``W = nl.work_frac_bits``; ``rhu(v, s)`` is round half up of ``v * 2**-s``, i.e.
``(v + 2**(s-1)) >> s`` with an arithmetic shift (ties toward +inf, also for negative ``v``);
``v >> s`` alone truncates toward -inf; ``cast(v, s, C)`` drops ``s`` fraction bits with the
rounding of Cast ``C`` (``s < 0`` appends zeros) and then applies ``C``'s overflow mode.
Raw values are int64 arrays; ``x_fmt.frac_bits`` is written ``XF``.

Error figures against float64 (``error_table``, ``python -m edgemoe.golden.fixed.nonlinear``)
come with the bounds derived in the ``*_bound`` functions (:func:`exp_neg_bound`, ...).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgemoe.config import Cast, Config, FixedFormat, Nonlinear, Rounding
from edgemoe.golden.fixed.core import (
    FixedPointError,
    fit,
    requantize,
    requantize_inplace,
    shift_round,
    to_float,
)
from edgemoe.tables import (
    Table,
    exp2_table,
    gelu_delta_exact,
    gelu_table,
    log2e_table,
    recip_table,
    rsqrt_table,
)

_I64 = np.int64
HALF_UP = Rounding.ROUND_HALF_UP  # the interpolations and Newton steps round half up


def leading_one(x: np.ndarray) -> np.ndarray:
    """Position ``e`` of the leading one of positive ``x``: ``2**e <= x < 2**(e+1)`` (int64).

    Hardware uses a leading-zero counter; this model reads the float64 exponent and corrects it.
    """
    x = np.asarray(x, dtype=_I64)
    # float64 gives the exponent, except that rounding may carry x up to the next power of two
    e = np.frexp(x.astype(np.float64))[1].astype(_I64) - 1
    return e - ((x >> e) == 0)


def _lerp(table: np.ndarray, idx: np.ndarray, frac: np.ndarray, frac_bits: int) -> np.ndarray:
    """``T[i] + rhu((T[i+1] - T[i]) * frac, frac_bits)``: linear interpolation in table units."""
    lo = table[idx]
    if frac_bits <= 0:
        return lo
    return lo + shift_round((table[idx + 1] - lo) * frac, frac_bits, HALF_UP, headroom=True)


def exp_neg(x_raw: np.ndarray, x_fmt: FixedFormat, nl: Nonlinear, out: Cast) -> np.ndarray:
    """``exp(x)`` for ``x <= 0``; ``x > 0`` is clamped to 0 (result 1.0).

    exp(x) = 2**-t with t = -x·log2(e) = n + u (n integer, u in [0, 1)); 2**-u comes from the
    interpolated ``exp2`` table and 2**-n is a right shift. With ``b = nl.exp_table_bits``,
    ``OF = out.fmt.frac_bits`` and ``K = bit_length(OF + 2)`` (= clog2(OF + 3)):

    1. ``a = max(-x, 0)`` (XF fraction bits); clamp ``a`` to at most ``2**(XF + K) - 1``
       (|x| < 2**K; any |x| >= 2**K - lsb gives t > OF + 2, whose result is 0 below).
    2. ``aw = cast to W fraction bits``: ``rhu(a, XF - W)`` if XF > W, else ``a << (W - XF)``
       (K + W bits).
    3. ``t = rhu(aw * L, W)`` with ``L`` = table ``log2e`` (ufix(W+1, 1)); product K + 2W + 1
       bits; t has W fraction bits.
    4. ``n = t >> W`` (integer part), ``u = t & (2**W - 1)`` (W-bit fraction).
    5. ``i = u >> (W - b)`` (b bits), ``r = u & (2**(W - b) - 1)`` (W - b bits);
       ``p = E[i] + rhu((E[i+1] - E[i]) * r, W - b)`` with ``E`` = table ``exp2``: p = 2**-u
       with W fraction bits, in (0.5, 1].
    6. ``n = min(n, OF + 2)``; ``y = cast(p, n + W - OF, out)`` — the shift by n is 2**-n and
       the rounding is ``out.rounding``; then ``out.overflow``.

    Exactly 1.0 for x = 0 (E[0] = 2**W). Hardware: one K+W by W+1 multiplier (step 3), one
    table read of two neighbours, one (W-b+2)-bit multiplier (step 5), a barrel shifter.
    """
    x = np.asarray(x_raw, dtype=_I64)
    if x.ndim == 0:  # the in-place steps below need an array
        return exp_neg(x.reshape(1), x_fmt, nl, out)[0]
    # step 1's a = max(-x, 0) (its clamp from above follows in exp_neg_magnitude)
    t = np.negative(x)
    np.maximum(t, 0, out=t)
    return exp_neg_magnitude(t, x_fmt, nl, out)


def exp_neg_magnitude(a_raw: np.ndarray, x_fmt: FixedFormat, nl: Nonlinear, out: Cast) -> np.ndarray:
    """:func:`exp_neg` of ``x = -a`` for an int64 array ``a >= 0`` that the caller owns and no
    longer needs (``a`` is overwritten: large inputs, e.g. attention scores, go through the
    steps in place); ``x_fmt`` is the format of ``x``."""
    W, b, OF, XF = nl.work_frac_bits, nl.exp_table_bits, out.fmt.frac_bits, x_fmt.frac_bits
    K = (OF + 2).bit_length()
    assert K + 2 * W + 1 <= 62, f"exp_neg: K + 2W + 1 = {K + 2 * W + 1} bits exceed int64"
    assert XF + K <= 62, f"exp_neg: input format {x_fmt} has too many fraction bits"
    E, dE = _exp2_steps(nl)
    L = _I64(log2e_table(nl).raw[0])
    # 1. a = clamp(-x): here the clamp from above
    t = a_raw
    np.minimum(t, (1 << (XF + K)) - 1, out=t)
    # 2. aw: a at W fraction bits; 3. t = rhu(aw * L, W). A left shift of step 2 folds into
    # the multiplier: (a << s) * L = a * (L << s), exactly.
    if XF > W:
        shift_round(t, XF - W, HALF_UP, inplace=True, headroom=True)
        t *= L
    else:
        t *= L << _I64(W - XF)
    shift_round(t, W, HALF_UP, inplace=True, headroom=True)
    # 4. n = t >> W, u = t & (2**W - 1)
    n = t >> _I64(W)
    t &= _I64((1 << W) - 1)
    # 5. p = E[i] + rhu((E[i+1] - E[i]) * r, W - b)
    i = t >> _I64(W - b)
    t &= _I64((1 << (W - b)) - 1)
    p = _lerp_steps(E, dE, i, t, W - b)
    # 6. y = cast(p, n + W - OF, out)
    np.minimum(n, OF + 2, out=n)
    n += _I64(W - OF)
    # every shift is a right shift when W > OF: then p and n are shifted in place
    y = shift_round(p, n, out.rounding, inplace=W > OF)
    # p <= max(E) and n >= 0, so y <= max(E) shifted by W - OF; when that fits, the overflow
    # step changes nothing and is skipped.
    if out.fmt.min_raw <= 0 and shift_round(int(E.max()), W - OF, out.rounding) <= out.fmt.max_raw:
        return y
    return fit(y, out.fmt, out.overflow)


def _steps(table: Table) -> tuple[np.ndarray, np.ndarray]:
    """A table ``T`` and its steps ``T[k+1] - T[k]`` (for :func:`_lerp_steps`)."""
    steps = np.diff(table.raw)
    steps.setflags(write=False)
    return table.raw, steps


@functools.lru_cache(maxsize=64)
def _exp2_steps(nl: Nonlinear) -> tuple[np.ndarray, np.ndarray]:
    return _steps(exp2_table(nl))


def _lerp_steps(
    table: np.ndarray, steps: np.ndarray, idx: np.ndarray, frac: np.ndarray, frac_bits: int
) -> np.ndarray:
    """:func:`_lerp` with the steps ``T[i+1] - T[i]`` read from a table of their own (same
    values, one lookup fewer); ``frac`` is overwritten. Every ``idx`` must index ``steps``: the
    lookups clip instead of checking bounds (faster; clipping never acts on such indices)."""
    lo = table.take(idx, mode="clip")
    if frac_bits <= 0:
        return lo
    frac *= steps.take(idx, mode="clip")
    shift_round(frac, frac_bits, HALF_UP, inplace=True, headroom=True)
    lo += frac
    return lo


def _denormalise(y: np.ndarray, s: np.ndarray, nl: Nonlinear, out: Cast) -> np.ndarray:
    """``cast(y, s, out)`` for ``y`` in ufix(W+1, 1), ``s`` clamped to [-(out.bits+1), W+2].

    Shifting further right gives 0 whatever the rounding (y < 2**(W+1)); shifting further left
    only adds zero low bits beyond the format (saturates, or wraps to 0), so the clamp is exact.
    """
    W = nl.work_frac_bits
    assert W + out.fmt.bits + 3 <= 63, f"{out.fmt} too wide for the W = {W} datapath"
    s = np.clip(s, -(out.fmt.bits + 1), W + 2)
    return fit(shift_round(y, s, out.rounding), out.fmt, out.overflow)


def _check_positive(x: np.ndarray, what: str) -> None:
    if x.size and int(x.min()) <= 0:
        raise FixedPointError(f"{what}: {int(np.count_nonzero(x <= 0))} input(s) are not positive")


def reciprocal(x_raw: np.ndarray, x_fmt: FixedFormat, nl: Nonlinear, out: Cast) -> np.ndarray:
    """``1/x`` for ``x > 0`` (a non-positive input is a FixedPointError).

    With ``b = nl.recip_table_bits``:

    1. ``e`` = position of the leading one of x (2**e <= x < 2**(e+1)).
    2. ``m = cast(x, e - W, TRUNCATE)``: the mantissa in [1, 2) as ufix(W+1, 1)
       (left shift if e < W, truncating right shift otherwise); x = m * 2**(e - XF).
    3. ``v = m - 2**W`` (W bits); ``i = v >> (W - b)``, ``r = v & (2**(W - b) - 1)``;
       seed ``y = R[i] + rhu((R[i+1] - R[i]) * r, W - b)`` with ``R`` = table ``recip``
       (ufix(W+1, 1); y in [0.5, 1]).
    4. ``nl.newton_steps`` times: ``a = rhu(m * y, W)``; ``c = 2**(W+1) - a``;
       ``y = rhu(y * c, W)`` (y ← y(2 - m y); products of 2W + 2 bits).
    5. ``1/x = y * 2**(XF - e)``: ``out = cast(y, W + e - XF - OF, out)`` with the shift clamped
       to [-(out.bits + 1), W + 2] (exact, see ``_denormalise``).
    """
    W, b = nl.work_frac_bits, nl.recip_table_bits
    x = np.asarray(x_raw, dtype=_I64)
    _check_positive(x, "reciprocal")
    R = recip_table(nl).raw
    e = leading_one(x)
    m = shift_round(x, e - W, Rounding.TRUNCATE)
    v = m - _I64(1 << W)
    y = _lerp(R, v >> _I64(W - b), v & _I64((1 << (W - b)) - 1), W - b)
    two = _I64(1 << (W + 1))
    for _ in range(nl.newton_steps):
        c = two - shift_round(m * y, W, HALF_UP, headroom=True)
        y = shift_round(y * c, W, HALF_UP, headroom=True)
    return _denormalise(y, W + e - x_fmt.frac_bits - out.fmt.frac_bits, nl, out)


def rsqrt(x_raw: np.ndarray, x_fmt: FixedFormat, nl: Nonlinear, out: Cast) -> np.ndarray:
    """``1/sqrt(x)`` for ``x > 0`` (a non-positive input is a FixedPointError).

    With ``b = nl.rsqrt_table_bits``:

    1. ``e`` = position of the leading one of x; ``E = e - XF`` (x in [2**E, 2**(E+1)));
       ``par = E & 1`` (two's complement parity); ``q = (E - par) >> 1`` (exact halving).
    2. ``m = cast(x, e - W - par, TRUNCATE)``: mantissa in [1, 4) with W fraction bits
       (W + 2 bits); x = m * 2**(2q).
    3. ``v = m - 2**W`` (in [0, 3·2**W)); ``i = v >> (W + 2 - b)``,
       ``r = v & (2**(W + 2 - b) - 1)``; seed ``y = S[i] + rhu((S[i+1] - S[i]) * r, W + 2 - b)``
       with ``S`` = table ``rsqrt`` (ufix(W+1, 1); y in [0.5, 1]).
    4. ``nl.newton_steps`` times: ``s2 = rhu(y * y, W)``; ``a = rhu(m * s2, W)``;
       ``c = 3 * 2**W - a``; ``y = rhu(y * c, W + 1)`` (y ← y(3 - m y²)/2).
    5. ``1/sqrt(x) = y * 2**-q``: ``out = cast(y, W + q - OF, out)``, shift clamped as in
       :func:`reciprocal`.
    """
    W, b = nl.work_frac_bits, nl.rsqrt_table_bits
    x = np.asarray(x_raw, dtype=_I64)
    _check_positive(x, "rsqrt")
    S = rsqrt_table(nl).raw
    e = leading_one(x)
    E = e - x_fmt.frac_bits
    par = E & 1
    q = (E - par) >> 1
    m = shift_round(x, e - W - par, Rounding.TRUNCATE)
    v = m - _I64(1 << W)
    sh = W + 2 - b
    y = _lerp(S, v >> _I64(sh), v & _I64((1 << sh) - 1), sh)
    three = _I64(3 << W)
    for _ in range(nl.newton_steps):
        s2 = shift_round(y * y, W, HALF_UP, headroom=True)
        c = three - shift_round(m * s2, W, HALF_UP, headroom=True)
        y = shift_round(y * c, W + 1, HALF_UP, headroom=True)
    return _denormalise(y, W + q - out.fmt.frac_bits, nl, out)


def gelu(x_raw: np.ndarray, act: Cast, delta: Cast, nl: Nonlinear) -> np.ndarray:
    """``GELU(x) = ReLU(x) - delta(|x|)`` for x in ``act.fmt``, result cast to ``act``.

    ``delta(a) = a * Phi(-a)`` comes from the interpolated table ``gelu_delta`` (format
    ``delta.fmt``, DF fraction bits) over ``a < 2**g`` (``g = nl.gelu_range_log2``) and is 0
    beyond. With ``AF = act.fmt.frac_bits``, ``b = nl.gelu_table_bits``, ``RB = AF + g - b``:

    1. ``a = |x|`` (act.bits unsigned bits; |min| fits).
    2. ``beyond = a >= 2**(AF + g)``.
    3. If RB > 0: ``i = a >> RB``, ``r = a & (2**RB - 1)``; else ``i = a << -RB``, ``r = 0``;
       (``i`` is forced to 0 where beyond, the result is discarded there).
    4. ``d = G[i] + cast((G[i+1] - G[i]) * r, RB, delta)`` (delta's rounding; signed product);
       then delta's overflow; ``d = 0`` where beyond.
    5. ``F = max(AF, DF)``; ``y = (max(x, 0) << (F - AF)) - (d << (F - DF))`` (exact);
       ``out = cast(y, F - AF, act)``.
    """
    AF, DF = act.fmt.frac_bits, delta.fmt.frac_bits
    g, b = nl.gelu_range_log2, nl.gelu_table_bits
    x = np.asarray(x_raw, dtype=_I64)
    if x.ndim == 0:  # the in-place steps below need an array
        return gelu(x.reshape(1), act, delta, nl)[0]
    rb = AF + g - b
    F = max(AF, DF)
    if rb > 0:
        # Steps 2-4 without masks: index 2**b (any a beyond) reads a zero entry and a zero step,
        # so d = 0 there; d lies between two table entries, which fit delta.fmt, so delta's
        # overflow never acts.
        LO, STEP = _gelu_steps_padded(nl, delta.fmt)
        a = np.abs(x)
        i = a >> _I64(rb)
        np.minimum(i, 1 << b, out=i)
        a &= _I64((1 << rb) - 1)  # r
        # i <= 2**b indexes the padded tables: clip (never acting) skips the bounds check
        a *= STEP.take(i, mode="clip")
        d = shift_round(a, rb, delta.rounding, inplace=True, headroom=True)
        d += LO.take(i, mode="clip")
    else:
        d = _gelu_delta_masked(x, AF, delta, nl)
    # 5. y = ReLU(x) - d at F fraction bits, cast to act
    y = np.maximum(x, 0)
    if F > AF:
        y <<= _I64(F - AF)
    if F > DF:
        d <<= _I64(F - DF)
    y -= d
    return requantize_inplace(y, F, act)


def _gelu_delta_masked(x: np.ndarray, AF: int, delta: Cast, nl: Nonlinear) -> np.ndarray:
    """Steps 1-4 of :func:`gelu` literally (masks for the inputs beyond the table)."""
    g, b = nl.gelu_range_log2, nl.gelu_table_bits
    G = gelu_table(nl, delta.fmt).raw
    a = np.abs(x)
    beyond = a >= _I64(1 << (AF + g)) if AF + g >= 0 else np.ones(x.shape, dtype=bool)
    rb = AF + g - b
    if rb > 0:
        i = np.where(beyond, 0, a >> _I64(rb))
        lo = G[i]
        d = lo + shift_round((G[i + 1] - lo) * (a & _I64((1 << rb) - 1)), rb, delta.rounding)
    else:
        d = G[np.where(beyond, 0, a << _I64(-rb))]
    return np.where(beyond, 0, fit(d, delta.fmt, delta.overflow))


@functools.lru_cache(maxsize=64)
def _gelu_steps_padded(nl: Nonlinear, fmt: FixedFormat) -> tuple[np.ndarray, np.ndarray]:
    """The GELU table's entries and steps ``G[k+1] - G[k]`` for k < 2**b, each with one zero
    appended at index 2**b (read by every input beyond the table)."""
    G = gelu_table(nl, fmt).raw
    lo, step = G.copy(), np.append(np.diff(G), 0)
    lo[-1] = 0
    for t in (lo, step):
        t.setflags(write=False)
    return lo, step


def softmax(x_raw: np.ndarray, x_fmt: FixedFormat, cfg: Config, out: Cast, axis: int = -1) -> np.ndarray:
    """Two-pass softmax along ``axis``: max, sum of exp, one reciprocal, multiply.

    Formats from ``cfg.formats``: ``exp_out`` (OF), ``softmax_sum`` (SF), ``softmax_recip`` (RF).

    1. ``mx = max(x)`` along the axis (raw compare).
    2. ``e_j = exp_neg(x_j - mx, x_fmt, nl, exp_out)`` (x_j - mx <= 0, one bit wider than x);
       the maximum gives exactly 1.0.
    3. ``s = fit(sum_j cast(e_j, OF - SF, softmax_sum), softmax_sum)``: every term cast into the
       sum format, summed exactly (the terms are >= 0, so saturating each add or only the total
       gives the same result), s >= 1.
    4. ``r = reciprocal(s, softmax_sum.fmt, nl, softmax_recip)``.
    5. ``p_j = cast(e_j * r, OF + RF - out.frac_bits, out)``.
    """
    f, nl = cfg.formats, cfg.nonlinear
    x = np.asarray(x_raw, dtype=_I64)
    e = exp_neg(x - x.max(axis=axis, keepdims=True), x_fmt, nl, f.exp_out)
    terms = requantize(e, f.exp_out.fmt.frac_bits, f.softmax_sum)
    s = fit(terms.sum(axis=axis, keepdims=True), f.softmax_sum.fmt, f.softmax_sum.overflow)
    r = reciprocal(s, f.softmax_sum.fmt, nl, f.softmax_recip)
    return requantize(e * r, f.exp_out.fmt.frac_bits + f.softmax_recip.fmt.frac_bits, out)


# --------------------------------------------------------------------------------------------
# Error bounds derived from the formats and table sizes, and the measured error figures
# --------------------------------------------------------------------------------------------


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
    from edgemoe.golden.fixed.core import quantize

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
    import sys

    from edgemoe.config import preset

    name = sys.argv[1] if len(sys.argv) > 1 else "edge-moe"
    cfg = preset(name)
    print(f"Fixed-point nonlinear functions of preset '{cfg.name}' against float64\n")
    print(markdown_table(error_table(cfg)))


if __name__ == "__main__":
    main()
