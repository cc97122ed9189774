"""LayerNorm in C-simulation (hls/include/layernorm.h) equals golden/fixed/layernorm.py, every bit."""

from __future__ import annotations

import numpy as np
import pytest
from hls_inputs import no_stream_read_while_empty, raw_values  # noqa: F401 (autouse fixture)

from edgemoe import csim
from edgemoe.golden.fixed.core import SaturationLog
from edgemoe.golden.fixed.layernorm import layernorm


def _assert_matches_golden(sim: csim.CSim, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> None:
    """The C-simulated LayerNorm of ``x`` equals the golden one bit for bit, every token counted."""
    log = SaturationLog()
    want = layernorm(x, gamma, beta, sim.cfg, log=log, name="ln")
    got = sim.layernorm(x, gamma, beta)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {x.size} differ"
    assert log.counts["ln"][1] == x.size


def test_layernorm_random_and_boundary_tokens(sim: csim.CSim) -> None:
    cfg = sim.cfg
    f, D, N = cfg.formats, cfg.model.dim, cfg.model.tokens
    rng = np.random.default_rng(11)
    x = raw_values(rng, f.act.fmt, (4 * N, D), small_bits=f.act.fmt.frac_bits + 2)
    x[0] = 0  # zero variance: rstd = 1/sqrt(eps) saturates
    x[1] = f.act.fmt.max_raw  # constant token at the bound
    x[2] = f.act.fmt.min_raw
    x[3, ::2], x[3, 1::2] = f.act.fmt.max_raw, f.act.fmt.min_raw  # largest variance
    x[4] = 0
    x[4, 0] = 1  # one lsb away from constant
    x[5] = rng.integers(-3, 4, size=D) + (1 << f.act.fmt.frac_bits)  # tiny variance around 1.0
    gamma = raw_values(rng, f.norm.fmt, (D,), small_bits=f.norm.fmt.frac_bits + 1)
    beta = raw_values(rng, f.norm.fmt, (D,), small_bits=f.norm.fmt.frac_bits)
    _assert_matches_golden(sim, x, gamma, beta)


def test_layernorm_extreme_gamma_beta(sim: csim.CSim) -> None:
    cfg = sim.cfg
    f, D = cfg.formats, cfg.model.dim
    rng = np.random.default_rng(12)
    x = raw_values(rng, f.act.fmt, (8, D), small_bits=f.act.fmt.frac_bits + 6)
    gamma = np.full(D, f.norm.fmt.max_raw, dtype=np.int64)
    gamma[::3] = f.norm.fmt.min_raw
    beta = np.full(D, f.norm.fmt.max_raw, dtype=np.int64)
    _assert_matches_golden(sim, x, gamma, beta)


def test_layernorm_refuses_bad_shapes(sim: csim.CSim) -> None:
    D = sim.cfg.model.dim
    with pytest.raises(csim.CSimError, match="shape"):
        sim.layernorm(
            np.zeros((2, D + 1), dtype=np.int64), np.zeros(D, dtype=np.int64), np.zeros(D, dtype=np.int64)
        )
