"""Fixed-point core: raw-integer values, named casts, saturation counts and exact matmul.

A fixed-point tensor is an int64 array of raw values plus a :class:`FixedFormat`; the value
of ``raw`` is ``raw * 2**-frac_bits``. Every narrowing goes through :func:`requantize` or
:func:`quantize` with a :class:`Cast` that names its rounding and overflow, exactly as
``ap_fixed<W, I, Q, O>`` does (AP_TRN / AP_RND, AP_WRAP / AP_SAT).
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


def shift_round(raw: np.ndarray, shift: int, rounding: Rounding) -> np.ndarray:
    """Drop ``shift`` fraction bits (shift > 0) or append zeros (shift <= 0), in int64."""
    raw = np.asarray(raw, dtype=np.int64)
    if shift <= 0:
        return raw << np.int64(-shift)
    if rounding is Rounding.ROUND_HALF_UP:
        raw = raw + np.int64(1 << (shift - 1))
    return raw >> np.int64(shift)


def fit(
    raw: np.ndarray,
    fmt: FixedFormat,
    overflow: Overflow,
    name: str | None = None,
    log: SaturationLog | None = None,
) -> np.ndarray:
    """Bring raw values (already at ``fmt``'s fraction bits) into ``fmt``'s range by ``overflow``."""
    raw = np.asarray(raw, dtype=np.int64)
    if overflow is Overflow.SATURATE:
        out = np.clip(raw, fmt.min_raw, fmt.max_raw)
        if log is not None and name is not None:
            log.add(name, int(np.count_nonzero(out != raw)), raw.size)
        return out
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
    """Cast raw values with ``frac_bits`` fraction bits to ``cast.fmt`` (rounding, then overflow)."""
    fmt, grow = cast.fmt, cast.fmt.frac_bits - frac_bits
    if grow > 0 and cast.overflow is Overflow.SATURATE:
        # Appending zeros must not overflow int64: values that would land beyond the range
        # become the nearest out-of-range value and saturate all the same.
        raw = np.asarray(raw, dtype=np.int64)
        lo, hi = -((-fmt.min_raw) >> grow), fmt.max_raw >> grow
        inside = np.clip(raw, lo, hi) << np.int64(grow)
        raw = np.where(raw > hi, fmt.max_raw + 1, np.where(raw < lo, fmt.min_raw - 1, inside))
        return fit(raw, fmt, cast.overflow, name, log)
    return fit(
        shift_round(raw, frac_bits - cast.fmt.frac_bits, cast.rounding), cast.fmt, cast.overflow, name, log
    )


def quantize(x: np.ndarray, cast: Cast, name: str = "tensor", log: SaturationLog | None = None) -> np.ndarray:
    """Float values to raw integers of ``cast.fmt``; non-finite input is an error naming ``name``."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise FixedPointError(
            f"{name}: {int(np.count_nonzero(~np.isfinite(x)))} non-finite value(s), first at index "
            f"{tuple(int(i) for i in bad)}"
        )
    scaled = np.ldexp(x, cast.fmt.frac_bits)
    # floor() and the remainder scaled - floor(scaled) are exact in float64; adding 0.5 before
    # flooring is not (0.5 - 2**-54 would round up to 1.0).
    whole = np.floor(scaled)
    if cast.rounding is Rounding.ROUND_HALF_UP:
        whole = whole + (scaled - whole >= 0.5)
    if cast.overflow is Overflow.WRAP:
        # Keep the low bits exactly (fmod is exact), so huge values wrap as ap_fixed does.
        if log is not None:
            outside = (whole < cast.fmt.min_raw) | (whole > cast.fmt.max_raw)
            log.wrapped[name] += int(np.count_nonzero(outside))
            log.add(name, 0, whole.size)
        return fit(np.fmod(whole, float(2**cast.fmt.bits)).astype(np.int64), cast.fmt, cast.overflow)
    # Clip in float first so huge values do not overflow int64; the count still sees them.
    limit = float(2**62)
    raw = np.clip(whole, -limit, limit).astype(np.int64)
    return fit(raw, cast.fmt, cast.overflow, name, log)


def to_float(raw: np.ndarray, fmt: FixedFormat | int) -> np.ndarray:
    """The real values of raw integers (exact in float64 for up to 53 significant bits)."""
    frac = fmt if isinstance(fmt, int) else fmt.frac_bits
    return np.ldexp(np.asarray(raw, dtype=np.float64), -frac)


def _bits_needed(raw: np.ndarray) -> int:
    """Bits of magnitude of the largest |raw| (0 for all-zero input)."""
    if raw.size == 0:
        return 0
    return int(np.abs(raw).max()).bit_length()


def matmul_exact(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact int64 ``a @ b`` computed with float64 BLAS.

    float64 holds integers exactly up to 2**53. ``a`` is split into chunks of ``c`` bits
    such that every partial sum of ``chunk * b`` stays below 2**53, each chunk product runs
    in BLAS, and the chunks recombine in int64 (the caller guarantees the true result fits
    int64, as a hardware accumulator of <= 63 bits would).
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    k = a.shape[-1]
    if b.shape[0] != k:
        raise FixedPointError(f"matmul_exact: inner sizes differ, {a.shape} @ {b.shape}")
    b_bits = _bits_needed(b)
    budget = 52 - b_bits - max(k - 1, 0).bit_length()
    if budget < 1:
        return a @ b  # operands too wide for any split; exact int64 (slow) path
    a_bits = _bits_needed(a)
    bf = b.astype(np.float64)
    if a_bits <= budget:
        return (a.astype(np.float64) @ bf).astype(np.int64)
    # Split |a| into unsigned chunks of `budget` bits; the sign goes with each chunk.
    sign = np.where(a < 0, -1, 1).astype(np.int64)
    mag = np.abs(a)
    out = np.zeros(a.shape[:-1] + b.shape[1:], dtype=np.int64)
    mask = np.int64((1 << budget) - 1)
    shift = 0
    while shift < a_bits:
        chunk = ((mag >> np.int64(shift)) & mask) * sign
        out += (chunk.astype(np.float64) @ bf).astype(np.int64) << np.int64(shift)
        shift += budget
    return out
