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

The error bound of each function, derived from the formats and table sizes, is in
:mod:`edgemoe.golden.fixed.nonlinear_bounds`; the errors measured against float64 are reported by
``python -m edgemoe.nonlinear_errors``.

HLS twin: ``hls/include/nonlinear.h`` (tests/hls/test_hls_nonlinear.py). RTL twins:
``hw/rtl/exp_lane.sv``, ``recip_lane.sv``, ``rsqrt_lane.sv``, ``gelu_lane.sv`` behind
``nonlinear_unit.sv`` and ``gelu_unit.sv`` (sim/nonlinear_unit, sim/gelu_unit).
"""

from __future__ import annotations

import functools

import numpy as np

from edgemoe.config import Cast, Config, FixedFormat, Nonlinear, Rounding
from edgemoe.golden.fixed.core import (
    FixedPointError,
    fit,
    requantize,
    requantize_inplace,
    shift_round,
)
from edgemoe.tables import (
    Table,
    exp2_table,
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
