"""The unified linear unit in C-simulation (hls/include/linear.h) equals golden/fixed/linear.py, every bit."""

from __future__ import annotations

import numpy as np
import pytest
from hls_inputs import no_stream_read_while_empty, raw_values  # noqa: F401 (autouse fixture)

from edgemoe import config, csim
from edgemoe.golden.fixed.core import SaturationLog
from edgemoe.golden.fixed.linear import Epilogue, linear


def _layers(cfg: config.Config) -> dict[str, tuple[str, int, int]]:
    m = cfg.model
    return {
        "qkv": ("attn", m.dim, 3 * m.dim),
        "fc1": ("mlp", m.dim, m.mlp_hidden),
        "fc2": ("mlp", m.mlp_hidden, m.dim),
        "expert_fc1": ("mlp", m.dim, m.expert_hidden),
        "gate": ("mlp", m.dim, m.experts),
        "patch": ("patch", m.patch_in, m.dim),
    }


def _formats(cfg: config.Config, kind: str):
    f = cfg.formats
    return {
        "mlp": (f.act, f.linear_weight, f.bias),
        "attn": (f.act, f.linear_weight, f.attn_bias),
        "patch": (f.pixel, f.patch_weight, f.bias),
    }[kind]


@pytest.mark.parametrize("layer", ["qkv", "fc1", "fc2", "expert_fc1", "gate", "patch"])
@pytest.mark.parametrize("epilogue", [Epilogue.BIAS, Epilogue.BIAS_GELU])
def test_linear_bias_and_gelu(sim: csim.CSim, layer: str, epilogue: Epilogue) -> None:
    cfg = sim.cfg
    kind, n_in, n_out = _layers(cfg)[layer]
    xc, wc, bc = _formats(cfg, kind)
    rng = np.random.default_rng([n_in, n_out, len(layer), int(epilogue is Epilogue.BIAS_GELU)])
    rows = cfg.model.tokens
    # typical magnitudes (mostly unsaturated) plus full-range values that saturate the output
    x = raw_values(rng, xc.fmt, (rows, n_in), small_bits=xc.fmt.frac_bits + 1)
    w = raw_values(rng, wc.fmt, (n_out, n_in), small_bits=wc.fmt.frac_bits - 3)
    b = None if layer == "gate" else raw_values(rng, bc.fmt, (n_out,), small_bits=bc.fmt.frac_bits)
    x[0], w[0] = xc.fmt.max_raw, wc.fmt.max_raw  # one output that saturates
    log = SaturationLog()
    want = linear(x, xc.fmt, w, wc.fmt, b, None if b is None else bc.fmt, cfg.formats.act, epilogue,
                  cfg=cfg, log=log, name=layer)  # fmt: skip
    got = sim.linear(x, w, b, epilogue, kind=kind)
    assert got.shape == want.shape
    assert np.array_equal(got, want), (
        f"{layer} {epilogue.value}: {np.count_nonzero(got != want)} values differ"
    )
    sat, total = log.counts[layer]
    assert sat < total, "most outputs must stay inside the activation range"
    if n_in * xc.fmt.max_value * abs(wc.fmt.min_value) > cfg.formats.act.fmt.max_value:
        assert sat > 0, "the inputs must exercise saturated outputs where the formats allow them"


def test_linear_extremes_saturate(sim: csim.CSim) -> None:
    cfg = sim.cfg
    f, D = cfg.formats, cfg.model.dim
    x = np.array([[f.act.fmt.max_raw] * D, [f.act.fmt.min_raw] * D, [0] * D, [1] * D], dtype=np.int64)
    w = np.full((cfg.hw.linear_out * 2, D), f.linear_weight.fmt.min_raw, dtype=np.int64)
    w[1] = f.linear_weight.fmt.max_raw
    b = np.full(w.shape[0], f.bias.fmt.min_raw, dtype=np.int64)
    want = linear(x, f.act.fmt, w, f.linear_weight.fmt, b, f.bias.fmt, f.act, cfg=cfg)
    got = sim.linear(x, w, b)
    assert np.array_equal(got, want)
    assert got[0, 0] == f.act.fmt.min_raw and got[1, 0] == f.act.fmt.max_raw


def test_linear_expert_accumulate(sim: csim.CSim) -> None:
    cfg = sim.cfg
    f, m = cfg.formats, cfg.model
    rng = np.random.default_rng(7)
    N, D, He = m.tokens, m.dim, m.expert_hidden
    for trial in range(3):
        Q = [1, N // 2, N][trial]
        rows = np.sort(rng.choice(N, size=Q, replace=False))
        h = raw_values(rng, f.act.fmt, (Q, He), small_bits=f.act.fmt.frac_bits + 1)
        w = raw_values(rng, f.linear_weight.fmt, (D, He), small_bits=f.linear_weight.fmt.frac_bits - 3)
        b = raw_values(rng, f.bias.fmt, (D,), small_bits=f.bias.fmt.frac_bits)
        scores = raw_values(rng, f.gate_score.fmt, (Q,))
        acc = raw_values(rng, f.act.fmt, (N, D), small_bits=f.act.fmt.frac_bits + 2)
        want = linear(h, f.act.fmt, w, f.linear_weight.fmt, b, f.bias.fmt, f.act, Epilogue.EXPERT_ACCUMULATE,
                      cfg=cfg, scores_raw=scores, acc_raw=acc, rows=rows)  # fmt: skip
        got = sim.linear(h, w, b, Epilogue.EXPERT_ACCUMULATE, scores_raw=scores, acc_raw=acc, rows=rows)
        assert np.array_equal(got, want), f"queue of {Q}: {np.count_nonzero(got != want)} values differ"
        untouched = np.setdiff1d(np.arange(N), rows)
        assert np.array_equal(got[untouched], acc[untouched]), "rows outside the queue must not change"


def test_linear_refuses_bad_input(sim: csim.CSim) -> None:
    f, D = sim.cfg.formats, sim.cfg.model.dim
    x = np.zeros((2, D), dtype=np.int64)
    w = np.zeros((8, D), dtype=np.int64)
    with pytest.raises(csim.CSimError, match="outside"):
        sim.linear(x + f.act.fmt.max_raw + 1, w, None)
    with pytest.raises(csim.CSimError, match="shape"):
        sim.linear(x[:, :-1], w, None)
    with pytest.raises(csim.CSimError, match="epilogue"):
        sim.linear(x, w, None, "relu")
    with pytest.raises(csim.CSimError, match="inputs"):
        sim.linear(x[:, :3], w[:, :3], None)
