"""Tables and constants of the fixed-point nonlinear functions, generated from the config.

Every table the hardware needs is returned by :func:`build_tables`; the golden model
(:mod:`edgemoe.golden.fixed.nonlinear`), the generated C++ header and the generated
SystemVerilog package all read them from here, so one setting in ``cfg.nonlinear`` changes
every back end at once. Entries are raw integers of the table's format, each the exact
mathematical value rounded to nearest (computed in float64, whose error is far below
2**-30 for these smooth functions, so the rounding is the one a correctly rounded table has).

With ``W = nl.work_frac_bits``:

=============  =====================  =========================  ==================================
name           format                 entries                    value of entry ``k``
=============  =====================  =========================  ==================================
``log2e``      ufix(W + 1, 1)         1                          log2(e)
``exp2``       ufix(W + 1, 1)         2**b + 1, b=exp_table_bits  2**(-k / 2**b)          (u in [0, 1])
``recip``      ufix(W + 1, 1)         2**b + 1                   1 / (1 + k / 2**b)      (m in [1, 2])
``rsqrt``      ufix(W + 1, 1)         3 * 2**(b-2) + 1           1 / sqrt(1 + 4k / 2**b) (m in [1, 4])
``gelu_delta`` formats.gelu_delta     2**b + 1                   delta(k * 2**g / 2**b), g=gelu_range_log2
=============  =====================  =========================  ==================================

``delta(a) = a * Phi(-a)`` is ReLU(x) - GELU(x) at ``|x| = a`` (exact erf GELU; Phi is the
standard normal CDF). Each table has one entry past its last segment so that linear
interpolation never reads outside it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from edgemoe.config import Config, FixedFormat, Nonlinear, ufix


@dataclass(frozen=True)
class Table:
    """A constant table of the hardware: raw integers of ``fmt`` (``raw * 2**-fmt.frac_bits``)."""

    name: str
    fmt: FixedFormat
    raw: np.ndarray
    doc: str

    @property
    def size(self) -> int:
        return int(self.raw.size)

    def values(self) -> np.ndarray:
        return np.ldexp(self.raw.astype(np.float64), -self.fmt.frac_bits)


def _rounded(values: list[float], fmt: FixedFormat, name: str) -> np.ndarray:
    # round half up in exact rational arithmetic: in float64, x * 2**f + 0.5 may itself round
    scale, half = Fraction(2) ** fmt.frac_bits, Fraction(1, 2)
    raw = np.array([math.floor(Fraction(v) * scale + half) for v in values], dtype=np.int64)
    if raw.min() < fmt.min_raw or raw.max() > fmt.max_raw:
        raise ValueError(
            f"table {name}: values {min(values):g}..{max(values):g} do not fit {fmt}; "
            "widen the format or shorten the table's range"
        )
    raw.setflags(write=False)
    return raw


def gelu_delta_exact(a: float) -> float:
    """``ReLU(x) - GELU(x)`` at ``|x| = a``: ``a * Phi(-a)`` (exact erf GELU)."""
    return a * 0.5 * math.erfc(a / math.sqrt(2.0))


def work_format(nl: Nonlinear) -> FixedFormat:
    """Format of the exp/reciprocal/rsqrt tables and internal values: ufix(W + 1, 1)."""
    return ufix(nl.work_frac_bits + 1, 1)


@functools.lru_cache(maxsize=64)
def log2e_table(nl: Nonlinear) -> Table:
    fmt = work_format(nl)
    return Table("log2e", fmt, _rounded([math.log2(math.e)], fmt, "log2e"), "log2(e), the factor of exp")


@functools.lru_cache(maxsize=64)
def exp2_table(nl: Nonlinear) -> Table:
    fmt, n = work_format(nl), 1 << nl.exp_table_bits
    values = [2.0 ** (-k / n) for k in range(n + 1)]
    return Table("exp2", fmt, _rounded(values, fmt, "exp2"), f"2**-u at u = k/{n}, k = 0..{n}")


@functools.lru_cache(maxsize=64)
def recip_table(nl: Nonlinear) -> Table:
    fmt, n = work_format(nl), 1 << nl.recip_table_bits
    values = [1.0 / (1.0 + k / n) for k in range(n + 1)]
    return Table("recip", fmt, _rounded(values, fmt, "recip"), f"1/m at m = 1 + k/{n}, k = 0..{n}")


@functools.lru_cache(maxsize=64)
def rsqrt_table(nl: Nonlinear) -> Table:
    fmt, n = work_format(nl), 1 << nl.rsqrt_table_bits
    last = 3 * (n // 4)
    values = [1.0 / math.sqrt(1.0 + 4.0 * k / n) for k in range(last + 1)]
    return Table("rsqrt", fmt, _rounded(values, fmt, "rsqrt"), f"1/sqrt(m) at m = 1 + 4k/{n}, k = 0..{last}")


@functools.lru_cache(maxsize=64)
def gelu_table(nl: Nonlinear, fmt: FixedFormat) -> Table:
    n = 1 << nl.gelu_table_bits
    step = 2.0**nl.gelu_range_log2 / n
    values = [gelu_delta_exact(k * step) for k in range(n + 1)]
    return Table(
        "gelu_delta",
        fmt,
        _rounded(values, fmt, "gelu_delta"),
        f"ReLU(x) - GELU(x) at |x| = k*{step:g}, k = 0..{n}; 0 for |x| >= {2.0**nl.gelu_range_log2:g}",
    )


def build_tables(cfg: Config) -> dict[str, Table]:
    """Every table and constant of the nonlinear units of ``cfg``, by name (deterministic)."""
    nl = cfg.nonlinear
    tables = [
        log2e_table(nl),
        exp2_table(nl),
        recip_table(nl),
        rsqrt_table(nl),
        gelu_table(nl, cfg.formats.gelu_delta.fmt),
    ]
    return {t.name: t for t in tables}
