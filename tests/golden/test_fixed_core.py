"""The fixed-point core against apytypes, an independent model of ap_fixed casts.

apytypes has only signed (two's complement) fixed-point numbers. An ``ap_ufixed<W, I>`` holds
exactly the non-negative values of ``ap_fixed<W + 1, I + 1>``, so for unsigned formats the
oracle is: apytypes rounds (in a signed format wide enough to hold every input), wrapping keeps
the low ``W`` bits of apytypes' wrapped bit pattern, saturation clips to ``[0, 2**W - 1]``.
A second oracle, the ap_fixed C++ headers (compiled with g++), checks unsigned and signed
formats directly.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import apytypes as apy
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from edgemoe.config import Cast, FixedFormat, Overflow, Rounding
from edgemoe.golden.fixed.core import (
    FixedPointError,
    SaturationLog,
    exact_operand,
    matmul_cast,
    matmul_exact,
    quantize,
    requantize,
    to_float,
)
from edgemoe.paths import BUILD

QUANT = {Rounding.TRUNCATE: apy.QuantizationMode.TRN, Rounding.ROUND_HALF_UP: apy.QuantizationMode.RND}


@st.composite
def formats(draw: st.DrawFn) -> FixedFormat:
    signed = draw(st.booleans())
    bits = draw(st.integers(2, 48))
    # the lsb far below 1 (negative int_bits), within the bits, and far above 1 (int_bits > bits)
    int_bits = draw(st.one_of(st.integers(-80, 0), st.integers(1, bits), st.integers(bits, bits + 80)))
    return FixedFormat(bits, int_bits, signed)


casts = st.builds(Cast, formats(), st.sampled_from(list(Rounding)), st.sampled_from(list(Overflow)))


def _signed_bits(pattern: int, bits: int) -> int:
    return pattern - (1 << bits) if pattern >> (bits - 1) else pattern


def oracle_cast(value: apy.APyFixed, cast: Cast) -> int:
    """The raw integer that ap_fixed / ap_ufixed ``cast`` makes of ``value`` (apytypes)."""
    fmt, quant = cast.fmt, QUANT[cast.rounding]
    # Rounding first, into a format with room for any input, then the overflow step, as ap_fixed
    # does. (apytypes 0.5.1 saturates wrongly when one cast both adds fraction bits and narrows
    # a source of about 58..64 bits, e.g. 2**55 as <58, 58> -> <12, 4>; two casts avoid that.)
    top = max(value.int_bits, fmt.int_bits) + 2
    wide = value.cast(int_bits=top, frac_bits=fmt.frac_bits, quantization=quant)
    if fmt.signed:
        over = apy.OverflowMode.SAT if cast.overflow is Overflow.SATURATE else apy.OverflowMode.WRAP
        out = wide.cast(int_bits=fmt.int_bits, frac_bits=fmt.frac_bits, overflow=over)
        return _signed_bits(out.to_bits(), fmt.bits)
    if cast.overflow is Overflow.WRAP:
        out = wide.cast(int_bits=fmt.int_bits + 1, frac_bits=fmt.frac_bits, overflow=apy.OverflowMode.WRAP)
        return out.to_bits() & ((1 << fmt.bits) - 1)
    rounded = _signed_bits(wide.to_bits(), wide.bits)
    return min(max(rounded, fmt.min_raw), fmt.max_raw)


def apy_from_float(x: float) -> apy.APyFixed:
    """``x`` exactly, as an apytypes fixed-point number."""
    _, exp = math.frexp(x)
    return apy.APyFixed.from_float(x, int_bits=max(exp, 1) + 2, frac_bits=max(0, 53 - exp))


def exact_rounded(value: float, cast: Cast) -> int:
    """``value * 2**frac_bits`` rounded to an integer by ``cast.rounding``, with no range limit."""
    scaled = Fraction(value) * Fraction(2) ** cast.fmt.frac_bits
    return math.floor(scaled + Fraction(1, 2) if cast.rounding is Rounding.ROUND_HALF_UP else scaled)


@st.composite
def cast_and_values(draw: st.DrawFn) -> tuple[Cast, list[float]]:
    """A cast and float inputs at, around and far beyond its bounds, at and between its steps."""
    cast = draw(casts)
    fmt = cast.fmt
    span = 1 << fmt.bits
    raws = st.one_of(
        st.sampled_from([fmt.min_raw, fmt.max_raw, fmt.min_raw - 1, fmt.max_raw + 1, 0, -1, 1]),
        st.integers(fmt.min_raw - span, fmt.max_raw + span),
        st.integers(fmt.min_raw - 3, fmt.min_raw + 3),
        st.integers(fmt.max_raw - 3, fmt.max_raw + 3),
    )
    # half steps, quarter steps and eighth steps (exact in float64: at most 52 significant bits)
    offsets = st.sampled_from([0.0, 0.5, -0.5, 0.25, -0.25, 0.75, 0.125, -0.875])
    values = [math.ldexp(draw(raws) + draw(offsets), -fmt.frac_bits) for _ in range(draw(st.integers(1, 8)))]
    # arbitrary floats of the same magnitude, and a few far outside any format
    top = math.ldexp(1.0, fmt.int_bits + 2)
    values += draw(st.lists(st.floats(-top, top, allow_nan=False), max_size=6))
    values += draw(st.lists(st.floats(-1e30, 1e30, allow_nan=False), max_size=2))
    # any finite float64, and the ones whose scaling underflows or overflows float64
    values += draw(st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3))
    values += draw(st.lists(st.sampled_from(FLOAT64_EDGES), max_size=3))
    return cast, values


# Subnormals, -0.0, the smallest normal, the largest finite values and halves at the top of float64.
FLOAT64_EDGES = [
    5e-324,
    -5e-324,
    1.5e-323,
    -2.2250738585072014e-308,
    2.2250738585072014e-308,
    -0.0,
    0.0,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    2.0**1000 + 2.0**948,
    -(2.0**60) - 256.0,
    2.0**51 + 0.5,
]


@given(cast_and_values())
# truncating a negative value whose scaled magnitude underflows float64 (ldexp made it -0.0)
@example((Cast(FixedFormat(2, 3, False), Rounding.TRUNCATE, Overflow.WRAP), [-5e-324]))
@example(
    (Cast(FixedFormat(3, -54, False), Rounding.ROUND_HALF_UP, Overflow.WRAP), [0.0, 0.06])
)  # scaled exactly
@example((Cast(FixedFormat(8, -20, True), Rounding.TRUNCATE, Overflow.WRAP), [1e308, -1e308, 3.0 * 2**-8]))
@example((Cast(FixedFormat(12, -60, True), Rounding.ROUND_HALF_UP, Overflow.SATURATE), FLOAT64_EDGES))
@example((Cast(FixedFormat(62, 140, False), Rounding.ROUND_HALF_UP, Overflow.WRAP), FLOAT64_EDGES))
def test_quantize_matches_apytypes(case: tuple[Cast, list[float]]) -> None:
    cast, values = case
    log = SaturationLog()
    got = quantize(np.array(values), cast, "x", log)
    want = [oracle_cast(apy_from_float(v), cast) for v in values]
    assert got.tolist() == want, f"{cast}: inputs {values}"
    # the log counts exactly the values beyond the format (rounded in exact rational arithmetic)
    rounded = [exact_rounded(v, cast) for v in values]
    outside = sum(not cast.fmt.min_raw <= r <= cast.fmt.max_raw for r in rounded)
    assert log.counts["x"][1] == len(values)
    if cast.overflow is Overflow.SATURATE:
        assert log.counts["x"][0] == outside
    else:
        assert log.counts["x"][0] == 0 and log.wrapped["x"] == outside


@st.composite
def requant_cases(draw: st.DrawFn) -> tuple[FixedFormat, Cast, list[int]]:
    src = draw(formats())
    dst = draw(casts)
    raws = st.one_of(
        st.integers(src.min_raw, src.max_raw),
        st.sampled_from([src.min_raw, src.max_raw, 0, min(src.max_raw, 1), max(src.min_raw, -1)]),
        st.integers(src.min_raw, min(src.min_raw + 4, src.max_raw)),
        st.integers(max(src.max_raw - 4, src.min_raw), src.max_raw),
    )
    return src, dst, draw(st.lists(raws, min_size=1, max_size=16))


@given(requant_cases())
# dropping 64 fraction bits: the rounding constant 2**63 does not fit int64
@example(
    (
        FixedFormat(2, -62, True),
        Cast(FixedFormat(2, 2, False), Rounding.ROUND_HALF_UP, Overflow.SATURATE),
        [-1],
    )
)
def test_requantize_matches_apytypes(case: tuple[FixedFormat, Cast, list[int]]) -> None:
    src, cast, raws = case
    got = requantize(np.array(raws, dtype=np.int64), src.frac_bits, cast)
    # apytypes holds every source value, signed or not, in a signed format one bit wider
    width = src.bits + 1
    want = [
        oracle_cast(
            apy.APyFixed(r & ((1 << width) - 1), bits=width, int_bits=src.int_bits + 1),
            cast,
        )
        for r in raws
    ]
    assert got.tolist() == want, f"{src} -> {cast.fmt} {cast.rounding.value} {cast.overflow.value}: {raws}"


def test_rounding_modes_on_ties_and_negatives() -> None:
    """TRUNCATE goes toward -inf and ROUND_HALF_UP sends ties toward +inf, for both signs."""
    x = np.array([2.5, -2.5, -2.25, -2.75, 0.5 - 2**-54, -0.5, -(2**-60)])
    trn = quantize(x, Cast(FixedFormat(8, 8), Rounding.TRUNCATE))
    rnd = quantize(x, Cast(FixedFormat(8, 8), Rounding.ROUND_HALF_UP))
    assert trn.tolist() == [2, -3, -3, -3, 0, -1, -1]
    assert rnd.tolist() == [3, -2, -2, -3, 0, 0, 0]


def test_saturation_log_counts_and_merges() -> None:
    cast = Cast(FixedFormat(8, 4), Rounding.ROUND_HALF_UP, Overflow.SATURATE)  # range [-8, 7.9375]
    log = SaturationLog()
    raw = quantize(np.array([-9.0, -8.0, 7.9375, 7.97, 8.0, 100.0, 0.0]), cast, "act", log)
    assert raw.tolist() == [-128, -128, 127, 127, 127, 127, 0]
    assert log.counts["act"] == [4, 7]  # -9, 7.97 (rounds to 8), 8, 100
    requantize(np.array([1 << 20, -(1 << 20), 5]), 4, cast, "act", log)
    assert log.counts["act"] == [6, 10]
    wrap = Cast(FixedFormat(8, 4), Rounding.TRUNCATE, Overflow.WRAP)
    requantize(np.array([128, 127, -129]), 4, wrap, "w", log)
    assert log.wrapped["w"] == 2 and log.counts["w"] == [0, 3]
    assert log.saturated() == {"act": 6}
    total = SaturationLog()
    total.merge(log, prefix="block0.")
    total.merge(log, prefix="block0.")
    assert total.counts["block0.act"] == [12, 20] and total.wrapped["block0.w"] == 4
    assert total.as_dict()["block0.act"] == {"saturated": 12, "total": 20}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_an_error_naming_the_tensor(bad: float) -> None:
    x = np.zeros((2, 3))
    x[1, 2] = bad
    message = r"l0_qkv_weight: 1 non-finite value\(s\), first at index \(1, 2\)"
    with pytest.raises(FixedPointError, match=message):
        quantize(x, Cast(FixedFormat(16, 2)), "l0_qkv_weight")


def test_to_float_is_exact() -> None:
    fmt = FixedFormat(48, 20)
    raw = np.array([fmt.min_raw, fmt.max_raw, 1, -1, 0])
    assert to_float(raw, fmt).tolist() == [math.ldexp(int(r), -28) for r in raw]


def _python_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array(
        [[sum(int(x) * int(y) for x, y in zip(row, col, strict=True)) for col in b.T] for row in a],
        dtype=object,
    )


@pytest.mark.parametrize("k", [768, 3072])
def test_matmul_exact_on_worst_case_operands(k: int) -> None:
    """Full-scale 32-bit activations times 16-bit weights; every partial sum beyond 2**53."""
    rng = np.random.default_rng(k)
    a_min, a_max, b_min, b_max = -(2**31), 2**31 - 1, -(2**15), 2**15 - 1
    a = rng.choice([a_min, a_max, a_max - 1, a_min + 1], size=(5, k)).astype(np.int64)
    b = rng.choice([b_min, b_max, b_max - 1, b_min + 1], size=(k, 3)).astype(np.int64)
    a[0] = a_min  # all-min row times all-min column: the largest positive sum
    b[:, 0] = b_min
    a[1] = a_max  # full-scale positive times all-min: the largest negative sum
    a[2] = rng.integers(a_min, a_max, size=k, endpoint=True)
    b[:, 2] = rng.integers(b_min, b_max, size=k, endpoint=True)
    got = matmul_exact(a, b)
    assert got.dtype == np.int64
    want = _python_matmul(a, b)
    assert got.tolist() == want.tolist()
    assert int(got[0, 0]) == k * a_min * b_min and abs(int(got[0, 0])) > 2**53
    assert int(got[1, 0]) == k * a_max * b_min


def test_matmul_exact_batched_and_narrow() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(-(2**17), 2**17, size=(2, 4, 192))
    b = rng.integers(-(2**15), 2**15, size=(192, 7))
    assert matmul_exact(a, b).tolist() == np.einsum("bnk,km->bnm", a, b).tolist()
    with pytest.raises(FixedPointError, match="inner sizes differ"):
        matmul_exact(a, b[:-1])


@pytest.mark.parametrize("case", ["l1_rows", "l1_columns", "stacks", "split", "int64"])
def test_matmul_exact_paths_and_prepared_operand(case: str) -> None:
    """Each path of matmul_exact equals Python-integer products, with b as an array or prepared:
    one BLAS product where the L1 bounds keep every partial sum within 2**53 although the bit
    widths alone do not (a sparse wide row; one wide column), a split of a into chunks of bits
    (also for stacks of matrices), and int64."""
    rng = np.random.default_rng(7)
    k = 192
    a = rng.integers(-(2**20), 2**20, size=(6, k))
    b = rng.integers(-(2**15), 2**15, size=(k, 5))
    if case == "l1_rows":  # a few 40-bit values: row sums of |a| · max|b| stay below 2**53
        a[:, 1:] = rng.integers(-4, 4, size=(6, k - 1))
        a[:, 0] = 2**40 - 1
        b = rng.integers(-(2**11), 2**11, size=(k, 5))
    elif case == "l1_columns":  # 34-bit a, one wide weight per column
        a = rng.integers(-(2**34), 2**34, size=(6, k))
        b = rng.integers(-2, 3, size=(k, 5))
        b[0] = 2**11
    elif case == "stacks":  # [3, 6, 64] @ [3, 64, 5], beyond 2**53: split into chunks of bits
        a = rng.integers(-(2**22), 2**22, size=(3, 6, 64))
        b = rng.integers(-(2**26), 2**26, size=(3, 64, 5))
        a[:, 0] = 2**22 - 1
        b[:, 0] = 2**26 - 1
    elif case == "split":
        a = rng.integers(-(2**40), 2**40, size=(6, k))
    else:  # b of 54 bits: no float64 path at all (the sums still fit int64)
        a = rng.integers(-2, 3, size=(6, k))
        b = rng.integers(-(2**52), 2**52, size=(k, 5)) * 4
    want = np.einsum("...nk,...km->...nm", a.astype(object), b.astype(object)).tolist()
    assert matmul_exact(a, b).tolist() == want
    if case != "int64":
        prepared = exact_operand(b)
        assert matmul_exact(a, prepared).tolist() == want
        assert prepared.max_abs == int(np.abs(b).max())
        assert prepared.max_col_l1 == int(np.abs(b).sum(axis=-2).max())
    else:
        with pytest.raises(FixedPointError, match="not exact in float64"):
            exact_operand(b)


@pytest.mark.parametrize("rounding", [Rounding.ROUND_HALF_UP, Rounding.TRUNCATE])
@pytest.mark.parametrize("shift", [1, 14, 40, 62, 63, 64, 70])
def test_saturating_cast_of_full_range_int64(rounding: Rounding, shift: int) -> None:
    """A saturating cast that drops bits, on values up to the int64 extremes (where adding the
    rounding constant would overflow): Python-integer rounding, clipping and counts."""
    rng = np.random.default_rng(shift)
    lim = np.iinfo(np.int64)
    raw = rng.integers(lim.min, lim.max, size=200, endpoint=True)
    raw[:4] = [lim.max, lim.min, lim.max - 1, 0]
    for fmt in (FixedFormat(16, 4), FixedFormat(62, 40)):
        frac = fmt.frac_bits + shift
        cast = Cast(fmt, rounding, Overflow.SATURATE)
        half = (1 << (shift - 1)) if rounding is Rounding.ROUND_HALF_UP else 0
        rounded = [(int(v) + half) >> shift for v in raw]
        want = [min(max(v, fmt.min_raw), fmt.max_raw) for v in rounded]
        log = SaturationLog()
        got = requantize(raw, frac, cast, "x", log)
        assert got.tolist() == want
        assert log.counts["x"] == [sum(v != w for v, w in zip(rounded, want, strict=True)), raw.size]


def _near_boundaries(rng: np.random.Generator, shape: tuple[int, ...], drop: int, big: int) -> tuple:
    """Operands ``a [..., N, K]``, ``b [..., K, M]`` whose float64 product is not exact and whose
    exact products lie within a few units of the rounding points of a cast dropping ``drop``
    bits: ``a[i] = [x_i, B, .., B, B, .., B]``, ``b[:, j] = [1, D, .., D, -D, .., -D]`` (16 of each),
    so ``acc = x_i`` but the partial sums pass 2**53 after ``x_i`` is added (its low bits round
    away in float64, in whatever order the terms are summed)."""
    *lead, n, m = shape
    k = 33
    x = rng.integers(-(2**4), 2**4, size=(*lead, n)) << drop  # multiples of 2**drop ...
    x += rng.choice([-(2 ** (drop - 1)), 0], size=x.shape)  # ... or halfway between two
    x += rng.integers(-3, 4, size=x.shape)  # and a few units either side
    a = np.full((*lead, n, k), big, dtype=np.int64)
    a[..., 0] = x
    b = np.full((*lead, k, m), big, dtype=np.int64)
    b[..., 17:, :] = -big
    b[..., 0, :] = 1
    return a, b


@pytest.mark.parametrize("rounding", [Rounding.ROUND_HALF_UP, Rounding.TRUNCATE])
@pytest.mark.parametrize("overflow", [Overflow.SATURATE, Overflow.WRAP])
@pytest.mark.parametrize("stacked", [False, True])
def test_matmul_cast_equals_exact_cast_at_rounding_points(
    rounding: Rounding, overflow: Overflow, stacked: bool
) -> None:
    """matmul_cast = requantize of the Python-integer product, bit for bit and in its counts,
    on products whose float64 value is wrong in the last bits right at the rounding points (the
    entries it must recompute exactly), on full-scale random 25-bit operands (the attention
    scores' widths), and on values that saturate or wrap."""
    rng = np.random.default_rng(11)
    drop = 25
    cast = Cast(FixedFormat(16, 6), rounding, overflow)  # narrow: some products leave the range
    shape = (3, 16, 7) if stacked else (16, 7)
    a, b = _near_boundaries(rng, shape, drop, big=2**25 - 1)
    if not stacked:
        b = b[0] if b.ndim == 3 else b
    exact = np.einsum("...nk,...km->...nm", a.astype(object), b.astype(object))
    assert np.any((a.astype(np.float64) @ b.astype(np.float64)) != exact.astype(np.float64))
    full_a = rng.integers(-(2**25) + 1, 2**25, size=(*shape[:-1], 64))
    full_b = rng.integers(-(2**25) + 1, 2**25, size=(*shape[:-2], 64, shape[-1]))
    full_b[..., 0, :] = 2**25 - 1  # one full-scale term in every dot product
    for x, y, frac in ((a, b, cast.fmt.frac_bits + drop), (full_a, full_b, 22 + drop)):
        want_log, got_log = SaturationLog(), SaturationLog()
        want_acc = np.einsum("...nk,...km->...nm", x.astype(object), y.astype(object)).astype(np.int64)
        want = requantize(want_acc, frac, cast, "s", want_log)
        got = matmul_cast(x, y, frac, cast, "s", got_log)
        assert got.dtype == np.int64 and got.tolist() == want.tolist()
        assert got_log.as_dict() == want_log.as_dict() and dict(got_log.wrapped) == dict(want_log.wrapped)


def test_matmul_cast_without_room_goes_through_matmul_exact() -> None:
    """Operands too wide for the rounded product to decide (or nothing dropped) still give the
    exact cast."""
    rng = np.random.default_rng(3)
    a = rng.integers(-(2**40), 2**40, size=(4, 64))
    b = rng.integers(-(2**15), 2**15, size=(64, 5))
    exact = np.einsum("nk,km->nm", a.astype(object), b.astype(object)).astype(np.int64)
    for frac, cast in ((30, Cast(FixedFormat(32, 10))), (0, Cast(FixedFormat(62, 60)))):
        assert matmul_cast(a, b, frac, cast).tolist() == requantize(exact, frac, cast).tolist()


# -- a second oracle: the ap_fixed C++ headers that hls4ml ships, compiled with g++ -----------

HEADER_FORMATS = [
    FixedFormat(bits, int_bits, signed)
    for bits, int_bits, signed in [
        (2, 0, False),
        (2, 5, False),
        (7, -3, False),
        (8, 0, False),
        (16, 4, False),
        (18, 1, False),
        (18, -2, False),
        (24, 1, False),
        (32, 10, False),
        (33, 40, False),
        (48, 20, False),
        (48, -6, False),
        (3, -2, True),
        (16, 2, True),
        (32, 10, True),
        (47, 47, True),
    ]
]
HEADER_SOURCE = FixedFormat(44, 14, True)  # requantize from this (signed: negatives too)


def _header_oracle_source() -> str:
    lines = [
        "#include <cstdio>",
        "#include <cstdlib>",
        '#include "ap_fixed.h"',
        "template <class T> long long from_double(double v) {",
        "    T y = v;",
        "    return (long long)y.range(T::width - 1, 0).to_uint64();",
        "}",
        "template <class T> long long from_raw(long long raw) {",
        f"    ap_fixed<{HEADER_SOURCE.bits}, {HEADER_SOURCE.int_bits}> x;",
        f"    x.range({HEADER_SOURCE.bits - 1}, 0) = raw;",
        "    T y = x;",
        "    return (long long)y.range(T::width - 1, 0).to_uint64();",
        "}",
        "int main() {",
        "    char mode; int k; double v; long long r;",
        '    while (std::scanf(" %c %d", &mode, &k) == 2) {',
        "        long long out = 0;",
        '        int got = mode == \'d\' ? std::scanf("%lf", &v) : std::scanf("%lld", &r);',
        "        if (got != 1) return 2;",
        "        switch (k) {",
    ]
    k = 0
    for fmt in HEADER_FORMATS:
        kind = "ap_fixed" if fmt.signed else "ap_ufixed"
        for q in ("AP_TRN", "AP_RND"):
            for o in ("AP_WRAP", "AP_SAT"):
                t = f"{kind}<{fmt.bits}, {fmt.int_bits}, {q}, {o}>"
                lines.append(
                    f"        case {k}: out = mode == 'd' ? from_double<{t} >(v) : from_raw<{t} >(r); break;"
                )
                k += 1
    lines += [
        "        default: return 3;",
        "        }",
        '        std::printf("%lld\\n", out);',
        "    }",
        "    return 0;",
        "}",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def header_oracle() -> Path:
    import hashlib
    import shutil
    import subprocess

    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is needed to compile the ap_fixed header oracle")
    try:
        import hls4ml
    except ImportError:
        pytest.skip("hls4ml (which ships the ap_fixed headers) is not installed")
    include = Path(hls4ml.__file__).resolve().parent / "templates" / "vivado" / "ap_types"
    source = _header_oracle_source()
    out = BUILD / "oracle" / hashlib.sha256(source.encode()).hexdigest()[:12]
    exe = out / "ap_fixed_oracle"
    if not exe.is_file():
        out.mkdir(parents=True, exist_ok=True)
        (out / "oracle.cpp").write_text(source)
        subprocess.run(
            [gxx, "-std=c++14", "-O0", "-w", f"-I{include}", str(out / "oracle.cpp"), "-o", str(exe)],
            check=True,
        )
    return exe


def _run_oracle(exe: Path, requests: list[tuple[str, int, float | int]]) -> list[int]:
    import subprocess

    text = "\n".join(f"{m} {k} {v!r}" if m == "d" else f"{m} {k} {v}" for m, k, v in requests)
    proc = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    return [int(line) for line in proc.stdout.split()]


def test_casts_match_the_ap_fixed_headers(header_oracle: Path) -> None:
    """quantize and requantize equal ap_fixed / ap_ufixed of the C++ headers, bit for bit."""
    rng = np.random.default_rng(11)
    requests, expected = [], []
    k = 0
    src = HEADER_SOURCE
    for fmt in HEADER_FORMATS:
        top = math.ldexp(1.0, fmt.int_bits + 1)
        lsb = fmt.lsb
        values = np.concatenate([
            rng.uniform(-top, top, 40),
            (rng.integers(fmt.min_raw - 4, fmt.max_raw + 5, 40) + rng.choice([0, 0.5, -0.5, 0.25], 40)) * lsb,
            [fmt.min_value, fmt.max_value, fmt.max_value + lsb / 2, fmt.min_value - lsb / 2],
            [0.0, -lsb / 2, 1e30, -1e30],
        ])  # fmt: skip
        raws = np.concatenate(
            [rng.integers(src.min_raw, src.max_raw, 40), [src.min_raw, src.max_raw, 0, -1, 1]]
        )
        for rounding in (Rounding.TRUNCATE, Rounding.ROUND_HALF_UP):
            for overflow in (Overflow.WRAP, Overflow.SATURATE):
                cast = Cast(fmt, rounding, overflow)
                mask = (1 << fmt.bits) - 1
                expected += [int(r) & mask for r in quantize(values, cast)]
                requests += [("d", k, float(v)) for v in values]
                expected += [int(r) & mask for r in requantize(raws, src.frac_bits, cast)]
                requests += [("r", k, int(r) & ((1 << src.bits) - 1)) for r in raws]
                k += 1
    got = _run_oracle(header_oracle, requests)
    bad = [(req, g, e) for req, g, e in zip(requests, got, expected, strict=True) if g != e]
    assert not bad, f"{len(bad)} of {len(requests)} differ, e.g. {bad[:5]}"
