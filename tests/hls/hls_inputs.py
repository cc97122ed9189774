"""Random raw inputs for the HLS kernel tests (full-range, small, boundary and saturating values),
and the check that no kernel reads an empty stream."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from edgemoe.config import FixedFormat


def raw_values(
    rng: np.random.Generator, fmt: FixedFormat, shape: tuple[int, ...], small_bits: int = 0
) -> np.ndarray:
    """Raw values of ``fmt``: a mix of the full range, values of at most ``small_bits`` bits
    (typical magnitudes when > 0) and the format's bounds."""
    n = int(np.prod(shape))
    full = rng.integers(fmt.min_raw, fmt.max_raw, size=n, endpoint=True, dtype=np.int64)
    if small_bits:
        lim = min(1 << small_bits, fmt.max_raw)
        small = rng.integers(-lim if fmt.signed else 0, lim, size=n, endpoint=True, dtype=np.int64)
        full = np.where(rng.random(n) < 0.7, small, full)
    edge = rng.random(n) < 0.02
    full[edge] = rng.choice([fmt.min_raw, fmt.max_raw, 0], size=int(edge.sum()))
    return full.reshape(shape)


@pytest.fixture(autouse=True)
def no_stream_read_while_empty(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Fails a test whose kernels read an hls::stream that is empty: C simulation only warns on
    stdout and goes on with a zero, the hardware would wait forever. Autouse where imported."""
    yield
    out = capfd.readouterr().out
    assert "read while empty" not in out, f"a kernel read an empty hls::stream: {out.strip()[:300]}"
