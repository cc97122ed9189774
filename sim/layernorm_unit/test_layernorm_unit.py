"""layernorm_unit: two-pass LayerNorm per token, bit-exact against edgemoe.golden.fixed.layernorm."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import cocotb
import numpy as np
import pytest

from edgemoe.config import Config, preset
from edgemoe.const_div import layernorm_divisors
from edgemoe.golden.fixed.layernorm import layernorm
from edgemoe.sim import runner
from edgemoe.sim.tb import (
    CLOCK_NS,
    StreamSink,
    StreamSource,
    pack,
    start_clock_and_reset,
    unpack,
    value_of,
    write_perf,
)

HERE = Path(__file__).resolve().parent


def tokens(cfg: Config, rng: np.random.Generator) -> np.ndarray:
    """Realistic tokens, constant tokens (variance 0: eps only), extremes and full-range tokens."""
    act = cfg.formats.act.fmt
    D, one = cfg.model.dim, 1 << act.frac_bits
    rows = [
        rng.integers(-3 * one, 3 * one, D),
        np.full(D, one // 3),
        np.zeros(D, dtype=np.int64),
        np.full(D, act.min_raw),
        np.where(np.arange(D) % 2 == 0, act.max_raw, act.min_raw),
        rng.integers(act.min_raw, act.max_raw, D, endpoint=True),
        np.where(np.arange(D) == 0, 40 * one, 0),  # one outlier
        rng.integers(-one // 64, one // 64, D),  # tiny variance
    ]
    rows += [rng.integers(-8 * one, 8 * one, D) for _ in range(4)]
    return np.clip(np.array(rows, dtype=np.int64), act.min_raw, act.max_raw)  # narrow act formats


def norm_params(cfg: Config, rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    nf = cfg.formats.norm.fmt
    D = cfg.model.dim
    if kind == "full":  # outputs saturate
        return rng.integers(nf.min_raw, nf.max_raw, D, endpoint=True), rng.integers(nf.min_raw, nf.max_raw, D)
    one = 1 << nf.frac_bits
    return rng.integers(one // 2, 2 * one, D), rng.integers(-one, one, D)


class LayerNormTB:
    def __init__(self, dut, cfg: Config, lanes: int, pause: float, backpressure: float, seed: int) -> None:
        self.dut, self.cfg, self.lanes = dut, cfg, lanes
        self.ab, self.nb = cfg.formats.act.fmt.bits, cfg.formats.norm.fmt.bits
        rng = random.Random(seed)
        self.p = StreamSource.on(dut, "p", {"g": "gamma", "b": "beta"}, pause, rng)
        self.x = StreamSource.on(dut, "x", ["data"], pause, rng)
        self.y = StreamSink.on(dut, "y", ["data", "last"], backpressure, random.Random(seed + 1))

    async def run(self, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, what: str) -> None:
        L = self.lanes
        await self.p.send(
            [
                {"g": pack(gamma[i : i + L], self.nb), "b": pack(beta[i : i + L], self.nb)}
                for i in range(0, len(gamma), L)
            ]
        )
        want = layernorm(x, gamma, beta, self.cfg)
        first = len(self.y.beats)
        beats = [{"data": pack(row[i : i + L], self.ab)} for row in x for i in range(0, len(row), L)]
        await self.x.send(beats)
        await self.y.wait_for(first + len(beats), timeout_cycles=20 * len(beats) + 200)
        got = np.array(
            [unpack(b["data"], self.ab, L, True) for b in self.y.beats[first:]], dtype=np.int64
        ).reshape(x.shape)
        lasts = [b["last"] for b in self.y.beats[first:]]
        per = x.shape[1] // L
        assert lasts == [int(i % per == per - 1) for i in range(len(beats))], (
            f"{what}: y_last pattern {lasts}"
        )
        bad = np.argwhere(got != want)
        assert bad.size == 0, (
            f"{what}: {len(bad)} values differ; first token {bad[0][0]} element {bad[0][1]}: "
            f"RTL {got[tuple(bad[0])]}, golden {want[tuple(bad[0])]}"
        )


@cocotb.test()
async def tokens_bit_exact(dut) -> None:
    """Edge and random tokens, realistic and saturating gamma/beta, pauses and back-pressure."""
    cfg = runner.config_from_env()
    lanes = runner.params_from_env()["Lanes"]
    for what, md in layernorm_divisors(cfg).items():
        div = getattr(dut, f"u_{what}_div")
        shift, magic = value_of(div.MagicShift), value_of(div.Magic)
        assert (shift, magic) == (md.s, md.m), (
            f"{what}: the RTL divides by {md.den} with shift {shift}, magic {magic}; "
            f"edgemoe.const_div proves s={md.s} m={md.m}"
        )
    tb = LayerNormTB(dut, cfg, lanes, 0.3, 0.3, seed=lanes)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    rng = np.random.default_rng(lanes)
    x = tokens(cfg, rng)
    await tb.run(x, *norm_params(cfg, rng, "real"), "realistic gamma/beta")
    await tb.run(x[:4], *norm_params(cfg, rng, "full"), "full-range gamma/beta")
    await tb.y.expect_idle()


@cocotb.test(skip=runner.random_cases() == 0)
async def random_tokens(dut) -> None:
    """random_cases() runs of 1..3 tokens drawn from tokens(), each with new random gamma/beta."""
    cfg = runner.config_from_env()
    lanes = runner.params_from_env()["Lanes"]
    tb = LayerNormTB(dut, cfg, lanes, 0.2, 0.2, seed=cfg.config_id)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    rng = np.random.default_rng(cfg.config_id)
    for case in range(runner.random_cases()):
        pool = tokens(cfg, rng)
        x = pool[rng.integers(0, len(pool), int(rng.integers(1, 3, endpoint=True)))]
        await tb.run(x, *norm_params(cfg, rng, str(rng.choice(["real", "full"]))), f"case {case}")
    await tb.y.expect_idle()


@cocotb.test()
async def throughput(dut) -> None:
    cfg = runner.config_from_env()
    lanes = runner.params_from_env()["Lanes"]
    tb = LayerNormTB(dut, cfg, lanes, 0.0, 0.0, seed=2)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    rng = np.random.default_rng(0)
    x = tokens(cfg, rng)
    first_in = len(tb.x.times)
    await tb.run(x, *norm_params(cfg, rng, "real"), "throughput")
    t_in, t_out = tb.x.times[first_in:], tb.y.times
    span = round((t_out[-1] - t_in[0]) / CLOCK_NS) + 1
    per = cfg.model.dim // lanes
    figures = {
        "tokens_per_cycle": len(x) / span,
        "results_per_cycle": x.size / span,
        "latency_cycles": round((t_out[0] - t_in[per - 1]) / CLOCK_NS),
        # steady input rate: first beat of the first token to first beat of the last one
        "cycles_per_token_in": round((t_in[-per] - t_in[0]) / CLOCK_NS) / (len(x) - 1),
    }
    write_perf("layernorm_unit", figures)
    if "BufWords" not in runner.params_from_env():  # the default ring buffer streams at full rate
        assert figures["cycles_per_token_in"] == per, f"one input beat per cycle expected: {figures}"
        # and the output keeps up: after the latency, a token leaves every `per` cycles
        most = len(x) * per + figures["latency_cycles"] + per
        assert span <= most, f"{span} cycles for {len(x)} tokens, at most {most} expected: {figures}"


@pytest.mark.parametrize("lanes,buf_words", [(8, 0), (4, 0), (1, 0), (8, 4), (8, 6)])
def test_layernorm_unit(lanes: int, buf_words: int) -> None:
    """Tiny package; the default token buffer (full rate), the smallest (one token at a time) and
    one that is not a power of two."""
    params = {"Lanes": lanes} | ({"BufWords": buf_words} if buf_words else {})
    runner.run(
        "layernorm_unit",
        "test_layernorm_unit",
        HERE,
        preset("tiny"),
        case=f"lanes{lanes}" + (f"_buf{buf_words}" if buf_words else ""),
        parameters=params,
    )


def test_layernorm_unit_dim48() -> None:
    """A token width that is not a power of two (48 = 3 * 16): the divisions use the multiplier;
    3 beats per token, so the statistics of two tokens overlap in the pipeline."""
    cfg = preset("tiny")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dim=48))
    runner.run(
        "layernorm_unit", "test_layernorm_unit", HERE, cfg, case="dim48_lanes16", parameters={"Lanes": 16}
    )


@pytest.mark.slow
def test_layernorm_unit_edge_moe() -> None:
    """The edge-moe package (Dim 192), LinearOut lanes."""
    cfg = preset("edge-moe")
    lanes = cfg.hw.linear_out
    runner.run(
        "layernorm_unit", "test_layernorm_unit", HERE, cfg, case="edge-moe", parameters={"Lanes": lanes}
    )


def test_buffer_smaller_than_a_token_stops_elaboration() -> None:
    with pytest.raises(runner.RtlBuildError) as err:
        runner.lint("layernorm_unit", preset("tiny"), {"Lanes": 8, "BufWords": 3})
    text = str(err.value)
    assert "USERFATAL" in text and "a whole token must fit" in text, text
    assert "In instance 'layernorm_unit'" in text, text


@pytest.mark.slow
@pytest.mark.parametrize("config_seed", range(4))
def test_layernorm_unit_random_configs(config_seed: int) -> None:
    """250 random runs on each of four random configs (formats, token width, LinearOut lanes)."""
    runner.run_random(
        "layernorm_unit",
        "test_layernorm_unit",
        HERE,
        config_seed,
        250,
        "random_tokens",
        lambda cfg: {"Lanes": cfg.hw.linear_out},
    )
