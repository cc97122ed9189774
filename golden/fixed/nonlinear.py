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
come with the bounds derived in :func:`error_bounds`.
"""

from __future__ import annotations

import numpy as np

from edgemoe.config import Cast, Config, FixedFormat, Nonlinear, Rounding
from edgemoe.golden.fixed.core import FixedPointError, fit, requantize
from edgemoe.tables import exp2_table, gelu_table, log2e_table, recip_table, rsqrt_table

_I64 = np.int64


def _shift(v: np.ndarray, s: np.ndarray | int, rounding: Rounding) -> np.ndarray:
    """``v * 2**-s`` rounded by ``rounding`` for ``s > 0``; ``v << -s`` (exact) for ``s <= 0``.

    ``s`` may be an array (one shift per element). The caller keeps ``s`` below 63.
    """
    v = np.asarray(v, dtype=_I64)
    s = np.asarray(s, dtype=_I64)
    right = np.maximum(s, 0)
    if rounding is Rounding.ROUND_HALF_UP:
        half = np.where(s > 0, np.left_shift(_I64(1), np.maximum(s - 1, 0)), 0)
        down = (v + half) >> right
    else:
        down = v >> right
    return np.where(s > 0, down, v << np.maximum(-s, 0))


def _rhu(v: np.ndarray, s: int) -> np.ndarray:
    """Round half up of ``v * 2**-s`` for a constant ``s >= 1``."""
    return (v + _I64(1 << (s - 1))) >> _I64(s)


def leading_one(x: np.ndarray) -> np.ndarray:
    """Position ``e`` of the leading one of positive ``x``: ``2**e <= x < 2**(e+1)`` (int64)."""
    x = np.asarray(x, dtype=_I64)
    # float64 gives the exponent, except that rounding may carry x up to the next power of two
    e = np.frexp(x.astype(np.float64))[1].astype(_I64) - 1
    return e - ((x >> e) == 0)


def _lerp(table: np.ndarray, idx: np.ndarray, frac: np.ndarray, frac_bits: int) -> np.ndarray:
    """``T[i] + rhu((T[i+1] - T[i]) * frac, frac_bits)``: linear interpolation in table units."""
    lo = table[idx]
    if frac_bits <= 0:
        return lo
    return lo + _rhu((table[idx + 1] - lo) * frac, frac_bits)


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
    W, b, OF, XF = nl.work_frac_bits, nl.exp_table_bits, out.fmt.frac_bits, x_fmt.frac_bits
    K = (OF + 2).bit_length()
    assert K + 2 * W + 1 <= 62, f"exp_neg: K + 2W + 1 = {K + 2 * W + 1} bits exceed int64"
    assert XF + K <= 62, f"exp_neg: input format {x_fmt} has too many fraction bits"
    E = exp2_table(nl).raw
    L = int(log2e_table(nl).raw[0])
    a = np.minimum(np.maximum(-np.asarray(x_raw, dtype=_I64), 0), _I64((1 << (XF + K)) - 1))
    aw = _rhu(a, XF - W) if XF > W else a << _I64(W - XF)
    t = _rhu(aw * _I64(L), W)
    n = t >> _I64(W)
    u = t & _I64((1 << W) - 1)
    p = _lerp(E, u >> _I64(W - b), u & _I64((1 << (W - b)) - 1), W - b)
    n = np.minimum(n, OF + 2)
    return fit(_shift(p, n + (W - OF), out.rounding), out.fmt, out.overflow)


def _denormalise(y: np.ndarray, s: np.ndarray, nl: Nonlinear, out: Cast) -> np.ndarray:
    """``cast(y, s, out)`` for ``y`` in ufix(W+1, 1), ``s`` clamped to [-(out.bits+1), W+2].

    Shifting further right gives 0 whatever the rounding (y < 2**(W+1)); shifting further left
    only adds zero low bits beyond the format (saturates, or wraps to 0), so the clamp is exact.
    """
    W = nl.work_frac_bits
    assert W + out.fmt.bits + 3 <= 63, f"{out.fmt} too wide for the W = {W} datapath"
    s = np.clip(s, -(out.fmt.bits + 1), W + 2)
    return fit(_shift(y, s, out.rounding), out.fmt, out.overflow)


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
    m = _shift(x, e - W, Rounding.TRUNCATE)
    v = m - _I64(1 << W)
    y = _lerp(R, v >> _I64(W - b), v & _I64((1 << (W - b)) - 1), W - b)
    two = _I64(1 << (W + 1))
    for _ in range(nl.newton_steps):
        y = _rhu(y * (two - _rhu(m * y, W)), W)
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
    m = _shift(x, e - W - par, Rounding.TRUNCATE)
    v = m - _I64(1 << W)
    sh = W + 2 - b
    y = _lerp(S, v >> _I64(sh), v & _I64((1 << sh) - 1), sh)
    three = _I64(3 << W)
    for _ in range(nl.newton_steps):
        s2 = _rhu(y * y, W)
        y = _rhu(y * (three - _rhu(m * s2, W)), W + 1)
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
    G = gelu_table(nl, delta.fmt).raw
    x = np.asarray(x_raw, dtype=_I64)
    a = np.abs(x)
    beyond = a >= _I64(1 << (AF + g)) if AF + g >= 0 else np.ones(x.shape, dtype=bool)
    rb = AF + g - b
    if rb > 0:
        i = np.where(beyond, 0, a >> _I64(rb))
        lo = G[i]
        d = lo + _shift((G[i + 1] - lo) * (a & _I64((1 << rb) - 1)), rb, delta.rounding)
    else:
        d = G[np.where(beyond, 0, a << _I64(-rb))]
    d = np.where(beyond, 0, fit(d, delta.fmt, delta.overflow))
    F = max(AF, DF)
    y = (np.maximum(x, 0) << _I64(F - AF)) - (d << _I64(F - DF))
    return requantize(y, F, act)


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
