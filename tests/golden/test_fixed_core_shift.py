"""core.shift_round, the one rounding shift of every kernel: each of its paths (in place or not,
with or without headroom, one shift or one per element, int64 or Python integers) equals the
exact Python-integer definition."""

from __future__ import annotations

import numpy as np
import pytest

from edgemoe.config import Rounding
from edgemoe.golden.fixed.core import shift_round

I64_MAX = np.iinfo(np.int64).max


def exact(v: int, s: int, rounding: Rounding) -> int:
    if s <= 0:
        return v << -s
    return (v + (1 << (s - 1))) >> s if rounding is Rounding.ROUND_HALF_UP else v >> s


def values(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    edges = [0, 1, -1, 2, -2, 3, -3, I64_MAX, -I64_MAX - 1, I64_MAX - 1, -I64_MAX]
    return np.concatenate([np.array(edges, dtype=np.int64), rng.integers(-(2**62), 2**62, 500)])


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize("s", [-3, 0, 1, 2, 17, 62])
def test_one_shift_every_path(rounding: Rounding, s: int) -> None:
    v = values(s + 100)
    if s < 0:  # appending zeros is exact only where the result fits
        v = v >> np.int64(-s + 1)
    want = np.array([exact(int(x), s, rounding) for x in v], dtype=np.int64)
    assert np.array_equal(shift_round(v, s, rounding), want), f"seed {s + 100}"
    owned = v.copy()
    assert np.array_equal(shift_round(owned, s, rounding, inplace=True), want)
    if s > 0:
        small = v >> np.int64(2)  # headroom: v + 2**(s-1) fits int64
        want_small = np.array([exact(int(x), s, rounding) for x in small], dtype=np.int64)
        assert np.array_equal(shift_round(small, s, rounding, headroom=True), want_small)
        assert np.array_equal(shift_round(small.copy(), s, rounding, inplace=True, headroom=True), want_small)
    assert all(shift_round(int(x), s, rounding) == exact(int(x), s, rounding) for x in v[:20])
    huge = np.array([2**70 + 3, -(2**70) - 5, 7], dtype=object)
    assert list(shift_round(huge, s, rounding)) == [exact(int(x), s, rounding) for x in huge]


@pytest.mark.parametrize("rounding", list(Rounding))
def test_one_shift_per_element(rounding: Rounding) -> None:
    rng = np.random.default_rng(7)
    v = rng.integers(-(2**40), 2**40, 400)
    s = rng.integers(-8, 20, 400)
    want = np.array([exact(int(x), int(k), rounding) for x, k in zip(v, s, strict=True)], dtype=np.int64)
    assert np.array_equal(shift_round(v, s, rounding), want)
    right = np.abs(s) + 1  # in place needs every shift >= 1
    want = np.array([exact(int(x), int(k), rounding) for x, k in zip(v, right, strict=True)], dtype=np.int64)
    assert np.array_equal(shift_round(v.copy(), right.copy(), rounding, inplace=True), want)
