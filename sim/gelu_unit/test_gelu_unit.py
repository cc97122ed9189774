"""gelu_unit: N GELU lanes, bit-exact against edgemoe.golden.fixed.nonlinear.gelu."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cocotb
import numpy as np
import pytest

from edgemoe.config import Cast, preset, sfix
from edgemoe.golden.fixed.nonlinear import gelu
from edgemoe.sim import runner
from edgemoe.sim.tb import LaneStreamTB, write_perf

HERE = Path(__file__).resolve().parent


def stimuli(cfg, lanes: int, rng: np.random.Generator) -> np.ndarray:
    """Edge values (format limits, the table range and its knots, tiny values) and random values."""
    act = cfg.formats.act.fmt
    AF, g, b = act.frac_bits, cfg.nonlinear.gelu_range_log2, cfg.nonlinear.gelu_table_bits
    edge = 1 << (AF + g)
    knots = np.arange(0, (1 << b) + 1) << max(AF + g - b, 0)
    values = np.concatenate(
        [
            [act.min_raw, act.max_raw, act.min_raw + 1, 0, 1, -1, 2, -2, edge, edge - 1, -edge, -(edge - 1)],
            knots,
            -knots,
            knots[:-1] + 1,
            -(knots[:-1] + 1),
            rng.integers(-edge, edge, 600),  # inside the table
            rng.integers(act.min_raw, act.max_raw, 200, endpoint=True),  # whole format
            rng.integers(-(1 << AF), 1 << AF, 200),  # |x| < 1
        ]
    ).astype(np.int64)
    values = np.clip(values, act.min_raw, act.max_raw)
    pad = (-len(values)) % lanes
    return np.concatenate([values, rng.integers(-edge, edge, pad)])


@cocotb.test()
async def gelu_bit_exact(dut) -> None:
    """Random and edge activations with input pauses and output back-pressure, compared bit for bit."""
    cfg = runner.config_from_env()
    lanes = runner.params_from_env()["Lanes"]
    act = cfg.formats.act
    tb = LaneStreamTB(dut, lanes, act.fmt.bits, True, act.fmt.bits, True, seed=lanes)
    await tb.reset()
    x = stimuli(cfg, lanes, np.random.default_rng(lanes))
    want = gelu(x, act, cfg.formats.gelu_delta, cfg.nonlinear)
    await tb.check(x, want, "gelu")
    perf = await tb.measure(x[: lanes * 64])
    write_perf("gelu_unit", perf)
    assert perf["beats_per_cycle"] == 1.0, f"gelu_unit should take one beat per cycle: {perf}"
    await tb.sink.expect_idle()


@cocotb.test(skip=runner.random_cases() == 0)
async def random_streams(dut) -> None:
    """random_cases() streams of 1..8 beats drawn from the edge and random values of stimuli()."""
    cfg = runner.config_from_env()
    lanes = runner.params_from_env()["Lanes"]
    act = cfg.formats.act
    tb = LaneStreamTB(dut, lanes, act.fmt.bits, True, act.fmt.bits, True, seed=cfg.config_id)
    await tb.reset()
    rng = np.random.default_rng(cfg.config_id)
    pool = stimuli(cfg, lanes, rng)
    for case in range(runner.random_cases()):
        x = rng.choice(pool, size=lanes * int(rng.integers(1, 8, endpoint=True)))
        await tb.check(x, gelu(x, act, cfg.formats.gelu_delta, cfg.nonlinear), f"gelu case {case}")
    await tb.sink.expect_idle()


@pytest.mark.parametrize("lanes", [1, 3, 8])
def test_gelu_unit(lanes: int) -> None:
    runner.run(
        "gelu_unit", "test_gelu_unit", HERE, preset("tiny"), case=f"lanes{lanes}", parameters={"Lanes": lanes}
    )


def test_gelu_unit_table_read_without_interpolation() -> None:
    """act with 9 fraction bits and a 2**12-segment table over |x| < 8: one entry per act lsb,
    so gelu_lane reads its table without interpolation."""
    base = preset("tiny")
    cfg = dataclasses.replace(
        base,
        name="tiny-gelu-table",
        formats=dataclasses.replace(base.formats, act=Cast(sfix(19, 10))),
        nonlinear=dataclasses.replace(base.nonlinear, gelu_table_bits=12),
    )
    runner.run("gelu_unit", "test_gelu_unit", HERE, cfg, case="table_no_interp", parameters={"Lanes": 3})


@pytest.mark.slow
def test_gelu_unit_edge_moe() -> None:
    """The edge-moe package and parallelism (LinearOut lanes)."""
    cfg = preset("edge-moe")
    lanes = cfg.hw.linear_out
    runner.run(
        "gelu_unit", "test_gelu_unit", HERE, cfg, case=f"edge-moe_lanes{lanes}", parameters={"Lanes": lanes}
    )


@pytest.mark.slow
@pytest.mark.parametrize("config_seed", range(4))
def test_gelu_unit_random_configs(config_seed: int) -> None:
    """250 random streams on each of four random configs (formats, table, LinearOut lanes)."""
    runner.run_random(
        "gelu_unit",
        "test_gelu_unit",
        HERE,
        config_seed,
        250,
        "random_streams",
        lambda cfg: {"Lanes": cfg.hw.linear_out},
    )
