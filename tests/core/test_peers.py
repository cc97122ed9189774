"""Our softmax and LayerNorm against hls4ml's, C-simulated with g++ (edgemoe/peers.py)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgemoe import peers
from edgemoe.config import preset
from edgemoe.golden.fixed.nonlinear_bounds import softmax_bound

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is needed to C-simulate hls4ml")

CFG = preset("edge-moe")


@pytest.fixture(scope="module")
def driver():
    """The compiled driver. Only a missing hls4ml (a dev dependency) skips; a driver that does
    not compile is a failure (PeerError with g++'s output)."""
    try:
        peers.hls4ml_templates()
    except peers.PeerError as e:
        pytest.skip(f"hls4ml's C++ library is not installed: {e}")
    return peers.build_driver(CFG)


def test_driver_wiring_on_known_rows(driver) -> None:
    """Rows whose hls4ml result is known exactly show that inputs and outputs line up."""
    n = CFG.model.experts
    # all-equal logits: exp table entry 1.0, sum n, 1/n from the inverse table: exactly 1/n
    got = peers.run_driver(driver, "softmax_gate_b", np.zeros((2, n)), 2)
    assert got.tolist() == [1.0 / n] * (2 * n)
    # one dominant logit (others 32 below): the first row's max moves position, outputs follow it
    x = np.full((2, n), -32.0)
    x[0, 3], x[1, n - 1] = 0.0, 0.0
    got = peers.run_driver(driver, "softmax_gate_b", x, 2).reshape(2, n)
    assert np.argmax(got, axis=1).tolist() == [3, n - 1] and got.max() > 0.99
    # LayerNorm of +-0.5 (mean 0, var 0.25) with gamma 1, beta 0: hls4ml floors var * 1024 to a
    # table index (255 or 256 here, as 1/192 rounds in accum_t) and reads 1/sqrt(eps + i/1024)
    d = CFG.model.dim
    row = np.where(np.arange(d) % 2 == 0, 0.5, -0.5)
    got = peers.run_driver(driver, "layernorm", np.concatenate([row, np.ones(d), np.zeros(d)]), 1)
    lsb = CFG.formats.act.fmt.lsb + CFG.formats.ln_rstd.fmt.lsb
    assert any(
        np.all(np.abs(got - row / np.sqrt(CFG.model.ln_eps + i / peers.TABLE_SIZE)) <= lsb)
        for i in (255, 256)
    )


def test_ours_within_bound_and_ahead_of_hls4ml(driver) -> None:
    rows = peers.compare_softmax(CFG, driver, rows=64) + peers.compare_layernorm(CFG, driver, rows=64)
    assert all(np.isfinite(r["max_abs"]) for r in rows)
    cases = {r["case"] for r in rows}
    for case in cases:
        ours = [r for r in rows if r["case"] == case and r["implementation"] == "edgemoe"]
        theirs = [r for r in rows if r["case"] == case and r["implementation"] != "edgemoe"]
        assert len(ours) == 1 and theirs, case
        for other in theirs:
            assert ours[0]["max_abs"] < other["max_abs"], (case, other["implementation"])
        if ours[0]["function"] == "softmax":
            n = int(str(case).split(" of ")[1])
            bound = softmax_bound(CFG, CFG.formats.act.fmt, CFG.formats.gate_score, n).abs
            assert ours[0]["max_abs"] <= bound, case
