"""Fixed-point core: raw-integer values, named casts, saturation counts and exact matmul.

A fixed-point tensor is an int64 array of raw values plus a :class:`FixedFormat`; the value
of ``raw`` is ``raw * 2**-frac_bits``. Every narrowing goes through :func:`requantize` or
:func:`quantize` with a :class:`Cast` that names its rounding and overflow, exactly as
``ap_fixed<W, I, Q, O>`` does (AP_TRN / AP_RND, AP_WRAP / AP_SAT).

Twins: the ``ap_fixed`` types of ``hls/include/edgemoe_types.h`` (tests/hls/test_hls_csim.py)
and ``hw/rtl/fxp_requant.sv`` (sim/fxp_requant); tests/golden/test_fixed_core.py,
tests/golden/test_fixed_core_shift.py.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from edgemoe.config import Cast, FixedFormat, Overflow, Rounding


class FixedPointError(ValueError):
    """Input that cannot enter the fixed-point model (non-finite values, wrong shapes)."""


@dataclass
class SaturationLog:
    """Counts of values clipped by saturating casts, per tensor name.

    ``counts[name]`` is ``[saturated, total]``: how many values hit a bound and how many
    went through the cast. Wrapping casts are counted too, under ``wrapped``.
    """

    counts: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    wrapped: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, name: str, saturated: int, total: int) -> None:
        entry = self.counts[name]
        entry[0] += saturated
        entry[1] += total

    def saturated(self) -> dict[str, int]:
        """Names with at least one saturated value, and how many."""
        return {name: c[0] for name, c in self.counts.items() if c[0]}

    def merge(self, other: SaturationLog, prefix: str = "") -> None:
        for name, (sat, total) in other.counts.items():
            self.add(prefix + name, sat, total)
        for name, n in other.wrapped.items():
            self.wrapped[prefix + name] += n

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {name: {"saturated": c[0], "total": c[1]} for name, c in sorted(self.counts.items())}


def shift_round(
    v: np.ndarray | int,
    s: np.ndarray | int,
    rounding: Rounding,
    *,
    inplace: bool = False,
    headroom: bool = False,
) -> np.ndarray | int:
    """``v * 2**-s`` rounded by ``rounding`` for ``s > 0``; ``v << -s`` (exact) for ``s <= 0``.

    The one rounding shift of every kernel. Round half up is ``(v + 2**(s-1)) >> s`` with an
    arithmetic shift (ties toward +inf, negative ``v`` too); truncate is ``v >> s`` (toward -inf).

    Args:
        v: int64 values; or Python integers (an int, or an object array of them), shifted exactly
            at any size.
        s: one shift, or one per element (an int64 array; each below 63).
        rounding: how the dropped bits round.
        inplace: overwrite ``v``, an int64 array the caller owns and no longer needs, and return
            it (no temporaries for one shift). With one shift per element every ``s`` must be
            at least 1, and ``s`` is overwritten too.
        headroom: the caller knows that ``v + 2**(s-1)`` fits int64, so round half up takes two
            passes; otherwise it is ``((v >> (s-1)) + 1) >> 1`` (equal: the bits below the
            rounding bit cannot carry into it), which cannot overflow.
    """
    half_up = rounding is Rounding.ROUND_HALF_UP
    if isinstance(v, int) or (isinstance(v, np.ndarray) and v.dtype == object):
        if s <= 0:
            return v << -s
        return (v + (1 << (s - 1))) >> s if half_up else v >> s
    if np.ndim(s):
        return _shift_round_each(v, np.asarray(s, dtype=np.int64), half_up, inplace)
    s = int(s)
    if not inplace:
        v = np.asarray(v, dtype=np.int64)
        if s <= 0:
            return v << np.int64(-s)
        if not half_up:
            return v >> np.int64(s)
        # the first step makes the array that the in-place steps below then own
        if headroom:
            out = v + np.int64(1 << (s - 1))
            out >>= np.int64(s)
            return out
        return shift_round(v >> np.int64(s - 1), 1, rounding, inplace=True)
    if s == 0:
        return v
    if s < 0:
        v <<= np.int64(-s)
    elif not half_up:
        v >>= np.int64(s)
    elif headroom:
        v += np.int64(1 << (s - 1))
        v >>= np.int64(s)
    elif s == 1:  # (v >> 1) + its rounding bit: v + 1 would overflow at the int64 maximum
        bit = v & np.int64(1)
        v >>= np.int64(1)
        v += bit
    else:
        v >>= np.int64(s - 1)
        v += np.int64(1)
        v >>= np.int64(1)
    return v


def _shift_round_each(v: np.ndarray, s: np.ndarray, half_up: bool, inplace: bool) -> np.ndarray:
    """:func:`shift_round` with one shift per element."""
    if inplace:  # every s >= 1
        if half_up:
            s -= np.int64(1)
            v >>= s
            v += np.int64(1)
            v >>= np.int64(1)
        else:
            v >>= s
        return v
    v = np.asarray(v, dtype=np.int64)
    right = np.maximum(s, 0)
    if half_up:
        down = (v + np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)) >> right
    else:
        down = v >> right
    return np.where(s > 0, down, v << np.maximum(-s, 0))


def _scalar_if_0d(out: np.ndarray) -> np.ndarray:
    # numpy ufuncs on 0-d input return scalars; the in-place paths keep that convention
    return out if out.ndim else out[()]


def _fit_inplace(
    raw: np.ndarray,
    fmt: FixedFormat,
    overflow: Overflow,
    name: str | None = None,
    log: SaturationLog | None = None,
) -> np.ndarray:
    """:func:`fit` on an int64 array the caller owns, overwriting it where it saturates."""
    if overflow is not Overflow.SATURATE:
        return fit(raw, fmt, overflow, name, log)
    lo, hi = fmt.min_raw, fmt.max_raw
    saturated = 0
    # Two reductions decide whether any value is out of range; values rarely saturate, and
    # then the clip is the identity and the count is 0.
    if raw.size and (raw.min() < lo or raw.max() > hi):
        saturated = int(np.count_nonzero(raw < lo)) + int(np.count_nonzero(raw > hi))
        np.clip(raw, lo, hi, out=raw)
    if log is not None and name is not None:
        log.add(name, saturated, raw.size)
    return _scalar_if_0d(raw)


def fit(
    raw: np.ndarray,
    fmt: FixedFormat,
    overflow: Overflow,
    name: str | None = None,
    log: SaturationLog | None = None,
) -> np.ndarray:
    """Bring raw values (already at ``fmt``'s fraction bits) into ``fmt``'s range by ``overflow``.

    Returns a new array (``raw`` is left as it is).
    """
    if overflow is Overflow.SATURATE:
        return _fit_inplace(np.array(raw, dtype=np.int64), fmt, overflow, name, log)
    raw = np.asarray(raw, dtype=np.int64)
    span = np.int64(1) << np.int64(fmt.bits)
    out = raw & (span - 1)
    if fmt.signed:
        out = np.where(out > fmt.max_raw, out - span, out)
    if log is not None and name is not None:
        log.wrapped[name] += int(np.count_nonzero(out != raw))
        log.add(name, 0, raw.size)
    return out


def requantize(
    raw: np.ndarray, frac_bits: int, cast: Cast, name: str | None = None, log: SaturationLog | None = None
) -> np.ndarray:
    """Cast raw values with ``frac_bits`` fraction bits to ``cast.fmt`` (rounding, then overflow).

    Returns a new array (``raw`` is left as it is).
    """
    return requantize_inplace(np.array(raw, dtype=np.int64), frac_bits, cast, name, log)


def requantize_inplace(
    raw: np.ndarray, frac_bits: int, cast: Cast, name: str | None = None, log: SaturationLog | None = None
) -> np.ndarray:
    """:func:`requantize` of an int64 array the caller owns and no longer needs: ``raw`` is overwritten
    (and usually returned), which saves the temporaries of a large cast."""
    fmt, grow = cast.fmt, cast.fmt.frac_bits - frac_bits
    if grow > 0 and cast.overflow is Overflow.SATURATE:
        # Appending zeros must not overflow int64: values that would land beyond the range
        # become the nearest out-of-range value and saturate all the same.
        lo, hi = -((-fmt.min_raw) >> grow), fmt.max_raw >> grow
        inside = np.clip(raw, lo, hi) << np.int64(grow)
        raw = np.where(raw > hi, fmt.max_raw + 1, np.where(raw < lo, fmt.min_raw - 1, inside))
        return fit(raw, fmt, cast.overflow, name, log)
    shift = frac_bits - fmt.frac_bits
    if shift > 0 and cast.overflow is Overflow.SATURATE and raw.ndim and raw.size:
        return _round_saturate_inplace(raw, shift, cast, name, log)
    raw = shift_round(raw, shift, cast.rounding, inplace=True)
    return _fit_inplace(raw, fmt, cast.overflow, name, log)


def _round_saturate_inplace(
    raw: np.ndarray, shift: int, cast: Cast, name: str | None, log: SaturationLog | None
) -> np.ndarray:
    """A saturating cast dropping ``shift >= 1`` bits, overwriting ``raw`` (non-empty, not 0-d).

    Rounding is monotonic, so the rounded minimum and maximum are the rounded extremes: two
    reductions before the shift decide whether anything saturates. When the largest value leaves
    room for the rounding constant, round half up is ``(raw + 2**(shift-1)) >> shift`` (two
    passes; the general form needs three).
    """
    fmt = cast.fmt
    lo, hi = int(raw.min()), int(raw.max())
    # the rounding constant 2**(shift-1) and hi + it must fit int64 for the two-pass form
    half = 1 << (shift - 1)
    headroom = half <= np.iinfo(np.int64).max and hi + half <= np.iinfo(np.int64).max
    shift_round(raw, shift, cast.rounding, inplace=True, headroom=headroom)
    lo, hi = shift_round(lo, shift, cast.rounding), shift_round(hi, shift, cast.rounding)
    saturated = 0
    if lo < fmt.min_raw or hi > fmt.max_raw:
        saturated = int(np.count_nonzero(raw < fmt.min_raw)) + int(np.count_nonzero(raw > fmt.max_raw))
        np.clip(raw, fmt.min_raw, fmt.max_raw, out=raw)
    if log is not None and name is not None:
        log.add(name, saturated, raw.size)
    return raw


def quantize(x: np.ndarray, cast: Cast, name: str = "tensor", log: SaturationLog | None = None) -> np.ndarray:
    """Float values to raw integers of ``cast.fmt``; non-finite input is an error naming ``name``."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise FixedPointError(
            f"{name}: {int(np.count_nonzero(~np.isfinite(x)))} non-finite value(s), first at index "
            f"{tuple(int(i) for i in bad)}"
        )
    whole, low_bits = _scaled_integer(x, cast.fmt.frac_bits, cast.rounding)
    if cast.overflow is Overflow.WRAP:
        if log is not None:
            outside = (whole < cast.fmt.min_raw) | (whole > cast.fmt.max_raw)
            log.wrapped[name] += int(np.count_nonzero(outside))
            log.add(name, 0, whole.size)
        return fit(low_bits, cast.fmt, cast.overflow)
    return _fit_inplace(whole, cast.fmt, cast.overflow, name, log)


# A float64 is an integer mantissa of 53 bits times a power of two.
_MANTISSA_BITS = 53
# Left shifts past this land at 2**62 or beyond in magnitude: outside every format (at most 62
# bits), yet still an int64. The rounded value is then known only by its sign and by being too big.
_MAX_EXACT_LEFT_SHIFT = 62 - _MANTISSA_BITS + 1


def _scaled_integer(x: np.ndarray, frac_bits: int, rounding: Rounding) -> tuple[np.ndarray, np.ndarray]:
    """``x * 2**frac_bits`` rounded to an integer, exactly for every finite float64.

    Scaling in float64 is not exact (``ldexp`` rounds subnormal results and overflows to inf), so
    each value is split into its integer mantissa and exponent and scaled by integer shifts.
    Returns ``(whole, low_bits)``, both int64: ``whole`` is the rounded integer where it is below
    2**62 in magnitude and a value of the same sign at least 2**62 in magnitude otherwise (beyond
    every format, which is all saturation and the overflow count need); ``low_bits`` agrees with
    the rounded integer modulo 2**63 (all that wrapping into at most 62 bits keeps).
    """
    mantissa, exponent = np.frexp(x)  # x = mantissa * 2**exponent, 0.5 <= |mantissa| < 1 or 0
    mant = np.ldexp(mantissa, _MANTISSA_BITS).astype(np.int64)  # exact: 53 significant bits
    shift = exponent.astype(np.int64) + (frac_bits - _MANTISSA_BITS)  # x * 2**frac_bits = mant * 2**shift
    # Clamping the shift changes nothing: past _MANTISSA_BITS + 1 dropped bits only the sign is left,
    # and past _MAX_EXACT_LEFT_SHIFT appended bits the value is beyond every format anyway.
    drop = np.clip(-shift, -_MAX_EXACT_LEFT_SHIFT, _MANTISSA_BITS + 1)
    whole = np.asarray(shift_round(mant, drop, rounding))  # 0-d stays an array: the casts clip in place
    left = shift > 0
    if not left.any():
        return whole, whole
    # the low bits of a left shift, modulo 2**64 (unsigned shifts wrap; 63 clears all but the top bit)
    wrapped = (mant.view(np.uint64) << np.clip(shift, 0, 63).astype(np.uint64)).view(np.int64)
    return whole, np.where(left, wrapped, whole)


def to_float(raw: np.ndarray, fmt: FixedFormat | int) -> np.ndarray:
    """The real values of raw integers (exact in float64 for up to 53 significant bits)."""
    frac = fmt if isinstance(fmt, int) else fmt.frac_bits
    return np.ldexp(np.asarray(raw, dtype=np.float64), -frac)


def _bits_needed(raw: np.ndarray) -> int:
    """Bits of magnitude of the largest |raw| (0 for all-zero input)."""
    if raw.size == 0:
        return 0
    return int(np.abs(raw).max()).bit_length()


@dataclass(frozen=True, eq=False)
class ExactOperand:
    """The right operand ``b [..., K, M]`` of :func:`matmul_exact`, prepared once for many
    products (a layer's weights): the int64 values, their exact float64 copy and the bounds the
    exactness test reads. Build it with :func:`exact_operand`; do not modify ``raw`` afterwards.
    """

    raw: np.ndarray  # [..., K, M] int64
    as_float: np.ndarray  # [..., K, M] float64, equal to raw
    max_abs: int  # max |b|
    max_col_l1: int  # max over columns m (of every matrix) of sum_k |b[k, m]|


def exact_operand(b: np.ndarray) -> ExactOperand:
    """``b [..., K, M]`` (integers of at most 52 bits of magnitude) prepared for :func:`matmul_exact`."""
    raw = np.asarray(b, dtype=np.int64)
    if raw.ndim < 2:
        raise FixedPointError(f"exact_operand: expected a [..., K, M] matrix, got shape {raw.shape}")
    mag = np.abs(raw)
    max_abs = int(mag.max()) if raw.size else 0
    if max_abs.bit_length() > 52:
        raise FixedPointError(
            f"exact_operand: values of {max_abs.bit_length()} bits are not exact in float64 (at most 52)"
        )
    # column sums in int64 when they cannot overflow it, else in Python integers
    wide = max_abs.bit_length() + raw.shape[-2].bit_length() > 63
    max_col_l1 = int(mag.sum(axis=-2, dtype=object if wide else np.int64).max()) if raw.size else 0
    return ExactOperand(raw, _blas_float(raw), max_abs, max_col_l1)


def _blas_float(x: np.ndarray) -> np.ndarray:
    """A float64 copy of ``x`` in a layout BLAS reads directly (C or Fortran order; other strides,
    e.g. a transposed column slice of a wider tensor, would go to numpy's slow loop)."""
    if x.flags.c_contiguous or x.flags.f_contiguous:
        return x.astype(np.float64)
    return np.ascontiguousarray(x, dtype=np.float64)


def exact_in_one_product(a_max: int, k: int, b: ExactOperand) -> bool:
    """Whether any ``a [..., k]`` with ``max|a| <= a_max`` times ``b`` is exact as one float64
    product (the bit-width and column-L1 bounds of :func:`matmul_exact`)."""
    budget = 52 - b.max_abs.bit_length() - max(k - 1, 0).bit_length()
    return a_max.bit_length() <= budget or a_max * b.max_col_l1 <= 2**53


def matmul_exact(a: np.ndarray, b: np.ndarray | ExactOperand) -> np.ndarray:
    """Exact int64 ``a @ b`` computed with float64 BLAS (``np.matmul`` shapes: ``a [..., N, K]``,
    ``b [K, M]`` or a stack ``[..., K, M]``).

    float64 holds integers exactly up to 2**53, so a float64 product is exact when every
    partial sum of every dot product stays within 2**53, in whatever order BLAS adds. Each
    partial sum of row ``a_n`` times column ``b_m`` is bounded by ``sum_k |a_nk| |b_km|``, which
    is at most ``max_n ||a_n||_1 · max|b|`` and at most ``max|a| · max_m ||b_m||_1``; when the
    smaller bound is <= 2**53 one BLAS product is exact. Otherwise ``a`` is split into chunks
    of ``c`` bits such that every partial sum of ``chunk * b`` stays below 2**53, the chunks are
    stacked as extra rows of one BLAS product, and they recombine in int64 (the caller
    guarantees the true result fits int64, as a hardware accumulator of <= 63 bits would).

    ``b`` may be an :class:`ExactOperand` (weights prepared once, :func:`exact_operand`).
    """
    a = np.ascontiguousarray(a, dtype=np.int64)  # elementwise steps run faster on contiguous data
    if not isinstance(b, ExactOperand):
        b = np.asarray(b, dtype=np.int64)
        if b.ndim < 2 or b.shape[-2] != a.shape[-1]:
            raise FixedPointError(f"matmul_exact: inner sizes differ, {a.shape} @ {b.shape}")
        b_bits = _bits_needed(b)
        if b_bits > 52:
            return a @ b  # operands too wide for float64 at all; exact int64 (slow) path
        budget = 52 - b_bits - max(a.shape[-1] - 1, 0).bit_length()
        if a.ndim > 1 and a.size and max(int(a.max()), -int(a.min())).bit_length() <= budget:
            return (a.astype(np.float64) @ _blas_float(b)).astype(np.int64)  # the common case, no bounds
        b = exact_operand(b)
    k = a.shape[-1]
    if b.raw.shape[-2] != k:
        raise FixedPointError(f"matmul_exact: inner sizes differ, {a.shape} @ {b.raw.shape}")
    if a.ndim == 1:  # a vector: one row
        return matmul_exact(a[None], b)[0]
    if a.size == 0 or b.max_abs == 0:
        return a @ b.raw  # nothing to multiply, or all zeros: exact and cheap
    budget = 52 - b.max_abs.bit_length() - max(k - 1, 0).bit_length()
    a_max = max(int(a.max()), -int(a.min()))
    a_bits = a_max.bit_length()
    one_product = exact_in_one_product(a_max, k, b)
    mag = None
    if not one_product and a_bits + max(k, 1).bit_length() <= 63:  # the row sums of |a| fit int64
        mag = np.abs(a)
        one_product = int(mag.sum(axis=-1).max()) * b.max_abs <= 2**53
    if one_product:
        return (a.astype(np.float64) @ b.as_float).astype(np.int64)
    if budget < 1:
        return a @ b.raw  # operands too wide for any split; exact int64 (slow) path
    # Split |a| into unsigned chunks of `budget` bits; the sign goes with each chunk (copysign:
    # a's float value may be rounded but keeps its sign, and arithmetic beats a masked negate).
    mag = np.abs(a) if mag is None else mag
    sign = a.astype(np.float64)
    shifts = range(0, a_bits, budget)
    rows = a.shape[-2]
    chunks = np.empty(a.shape[:-2] + (len(shifts) * rows, k), dtype=np.float64)
    mask = np.int64((1 << budget) - 1)
    for c, shift in enumerate(shifts):
        chunk = mag >> np.int64(shift)
        chunk &= mask
        np.copysign(chunk, sign, out=chunks[..., c * rows : (c + 1) * rows, :])
    parts = (chunks @ b.as_float).astype(np.int64)
    out = parts[..., :rows, :]
    for c, shift in enumerate(shifts):
        if c:
            out += parts[..., c * rows : (c + 1) * rows, :] << np.int64(shift)
    return out


def _rounded_product_decides(a_bits: int, b_bits: int, k: int, drop: int) -> float | None:
    """The bound ``delta`` of :func:`matmul_cast` on its scaled rounded product, or None when the
    operands leave no room for it (then the cast goes through :func:`matmul_exact`)."""
    if drop < 1 or max(a_bits, b_bits) > 53 or a_bits + b_bits + max(k, 1).bit_length() > 62:
        return None  # nothing dropped, inexact float64 operands, or no exact int64 check
    if a_bits + b_bits + max(k, 1).bit_length() - drop > 50:
        return None  # the scaled value must keep its units and halves exact (|y| < 2**50)
    u = 2.0**-53
    gamma = k * u / (1 - k * u)
    delta = 2 * gamma * k * 2.0 ** (a_bits + b_bits - drop)  # twice the bound: a margin
    return delta if delta <= 2.0**-8 else None


def matmul_cast(
    a: np.ndarray,
    b: np.ndarray,
    frac_bits: int,
    cast: Cast,
    name: str | None = None,
    log: SaturationLog | None = None,
) -> np.ndarray:
    """``requantize(matmul_exact(a, b), frac_bits, cast, name, log)``, bit for bit, from one float64
    product even when that product is not exact (``a [..., N, K]``, ``b [..., K, M]``, the same
    leading shape, or ``b [K, M]``).

    The cast keeps ``floor(acc · 2**-s + h)`` of the exact ``acc`` (``s = frac_bits - cast
    .frac_bits`` dropped bits, ``h`` = 1/2 for round half up, 0 for truncate), then applies the
    overflow. A float64 product in any summation order differs from ``acc`` by at most
    ``gamma_K · sum_k |a_k||b_k| <= gamma_K · K · 2**(bits(a) + bits(b))`` with ``gamma_K =
    K·u / (1 - K·u)``, ``u = 2**-53`` (the classical bound on a rounded dot product); scaled by
    ``2**-s`` that is ``delta`` (taken twice over). Where the scaled rounded value lies farther
    than ``delta`` from an integer, its floor is the floor of the exact value; the few entries
    within ``delta`` of one are recomputed as exact int64 dot products. When ``delta`` is not
    small (or the operands are too wide for the check) the cast goes through
    :func:`matmul_exact` and :func:`requantize`.
    """
    a = np.ascontiguousarray(a, dtype=np.int64)  # elementwise steps and BLAS run faster on it
    b = np.asarray(b, dtype=np.int64)
    k = a.shape[-1]
    if b.ndim < 2 or b.shape[-2] != k or (b.ndim > 2 and b.shape[:-2] != a.shape[:-2]) or a.ndim < 2:
        return requantize_inplace(matmul_exact(a, b), frac_bits, cast, name, log)
    a_bits, b_bits = _bits_needed(a), _bits_needed(b)
    drop = frac_bits - cast.fmt.frac_bits
    delta = _rounded_product_decides(a_bits, b_bits, k, drop)
    if delta is None:
        return requantize_inplace(matmul_exact(a, b), frac_bits, cast, name, log)
    y = np.matmul(a.astype(np.float64), _blas_float(b))  # every value exact: bits <= 53
    y *= 2.0**-drop  # a power of two: exact
    if cast.rounding is Rounding.ROUND_HALF_UP:
        y += 0.5  # exact, |y| < 2**50
    whole = np.floor(y)
    y -= whole  # the fraction, exact, in [0, 1)
    y -= 0.5
    np.abs(y, out=y)  # |fraction - 1/2|: near 1/2 means near an integer
    near = np.flatnonzero(y > 0.5 - delta)
    out = whole.astype(np.int64)
    if near.size:
        idx = np.unravel_index(near, out.shape)
        rows = a[idx[:-2] + (idx[-2],)] if b.ndim > 2 else a.reshape(-1, k)[near // out.shape[-1]]
        cols = b[idx[:-2] + (slice(None), idx[-1])] if b.ndim > 2 else b[:, idx[-1]].T
        if b.ndim > 2:  # advanced indices around a slice: the picked entries come first
            cols = cols.reshape(near.size, k)
        exact = np.einsum("nk,nk->n", rows, cols)  # int64: bits(a) + bits(b) + bits(K) <= 62
        out.ravel()[near] = shift_round(exact, drop, cast.rounding)
    return _fit_inplace(out, cast.fmt, cast.overflow, name, log)
