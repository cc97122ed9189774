"""softmax_state: running max / running sum / reciprocal per query slot, bit-exact against the
golden reordered attention (edgemoe.golden.fixed.attention, its trace of m, l and 1/l)."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import cocotb
import numpy as np
import pytest

from edgemoe.config import Config, preset
from edgemoe.golden.fixed.attention import attention, key_order
from edgemoe.sim import runner
from edgemoe.sim.tb import CLOCK_NS, StreamSink, StreamSource, pack, start_clock_and_reset, unpack, write_perf

HERE = Path(__file__).resolve().parent


def qkv(cfg: Config, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    act = cfg.formats.act.fmt
    n, d = cfg.model.tokens, cfg.model.dim
    one = 1 << act.frac_bits
    if kind == "random":
        return tuple(rng.integers(-2 * one, 2 * one, (n, d)) for _ in range(3))
    if kind == "full":  # scores saturate at the attn_score limits; exp underflows to 0
        return tuple(rng.integers(act.min_raw, act.max_raw, (n, d), endpoint=True) for _ in range(3))
    if kind == "ties":  # q = 0: every score equal
        return (
            np.zeros((n, d), dtype=np.int64),
            rng.integers(-one, one, (n, d)),
            rng.integers(-one, one, (n, d)),
        )
    # rising: key t scores higher than key t-1 for every query, so each step is a new maximum
    q = np.full((n, d), one // 2, dtype=np.int64)
    k = (np.arange(n)[:, None] * (one // 4) + np.zeros((1, d), dtype=np.int64)).astype(np.int64)
    return q, k, rng.integers(-one, one, (n, d))


class SoftmaxTB:
    def __init__(self, dut, cfg: Config, lanes: int, pause: float, backpressure: float, seed: int) -> None:
        self.dut, self.cfg, self.lanes = dut, cfg, lanes
        f = cfg.formats
        self.sb, self.lb, self.rb = f.attn_score.fmt.bits, f.softmax_sum.fmt.bits, f.softmax_recip.fmt.bits
        rng = random.Random(seed)
        self.s = StreamSource.on(dut, "s", ["data", "first", "last"], pause, rng)
        self.y = StreamSink.on(
            dut, "y", {"m": "max", "l": "sum", "r": "recip"}, backpressure, random.Random(seed + 1)
        )

    async def run(self, kind: str, rng: np.random.Generator) -> int:
        """One attention's worth of rows (every head, every group of P queries); returns the row count."""
        cfg, P = self.cfg, self.lanes
        trace = attention(*qkv(cfg, kind, rng), cfg, trace=True)
        H, N, _ = trace.score.shape
        order = key_order(N, P)
        beats, want = [], []
        for h in range(H):
            for g in range(0, N, P):
                queries = [g + j for j in range(P)]
                for t in range(N):
                    scores = [int(trace.score[h, i, order[i, t]]) if i < N else 0 for i in queries]
                    beats.append(
                        {"data": pack(scores, self.sb), "first": int(t == 0), "last": int(t == N - 1)}
                    )
                want.append([(h, i) if i < N else None for i in queries])
        first = len(self.y.beats)
        await self.s.send(beats)
        await self.y.wait_for(first + len(want), timeout_cycles=20 * len(beats) + 100)
        for beat, slots in zip(self.y.beats[first:], want, strict=True):
            m = unpack(beat["m"], self.sb, P, True)
            l_sum = unpack(beat["l"], self.lb, P, False)
            r = unpack(beat["r"], self.rb, P, False)
            for j, hi in enumerate(slots):
                if hi is None:
                    continue  # an empty slot of the last, partial group
                h, i = hi
                got = (int(m[j]), int(l_sum[j]), int(r[j]))
                exp = (int(trace.m[h, i]), int(trace.l[h, i]), int(trace.recip[h, i]))
                assert got == exp, (
                    f"{kind}: head {h} query {i} (slot {j}): RTL (m, l, 1/l) {got}, golden {exp}"
                )
        return len(want)


@cocotb.test()
async def rows_bit_exact(dut) -> None:
    """Random, saturating, tied and rising scores in the rotated key order, pauses and back-pressure."""
    cfg = runner.config_from_env()
    lanes = runner.params_from_env()["Lanes"]
    tb = SoftmaxTB(dut, cfg, lanes, 0.3, 0.3, seed=lanes)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    rng = np.random.default_rng(lanes)
    for kind in ("random", "full", "ties", "rising", "random"):
        await tb.run(kind, rng)
    await tb.y.expect_idle()


@cocotb.test(skip=runner.random_cases() == 0)
async def random_rows(dut) -> None:
    """Attentions of random kinds until random_cases() rows (one group of P queries over every key)."""
    cfg = runner.config_from_env()
    lanes = runner.params_from_env()["Lanes"]
    tb = SoftmaxTB(dut, cfg, lanes, 0.3, 0.3, seed=cfg.config_id)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    rng = np.random.default_rng(cfg.config_id)
    rows = 0
    while rows < runner.random_cases():
        rows += await tb.run(str(rng.choice(["random", "full", "ties", "rising"])), rng)
    await tb.y.expect_idle()


@cocotb.test()
async def throughput(dut) -> None:
    cfg = runner.config_from_env()
    lanes = runner.params_from_env()["Lanes"]
    tb = SoftmaxTB(dut, cfg, lanes, 0.0, 0.0, seed=3)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    rows = await tb.run("random", np.random.default_rng(0))
    t_in = tb.s.times
    span = round((t_in[-1] - t_in[0]) / CLOCK_NS) + 1
    N = cfg.model.tokens
    figures = {
        "key_steps_per_cycle": len(t_in) / span,
        "score_updates_per_cycle": len(t_in) * lanes / span,
        "latency_cycles": round((tb.y.times[0] - t_in[N - 1]) / CLOCK_NS),
        "rows": rows,
    }
    write_perf("softmax_state", figures)
    assert figures["key_steps_per_cycle"] == 1.0, figures


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_softmax_state(lanes: int) -> None:
    base = preset("tiny")
    cfg = dataclasses.replace(base, hw=dataclasses.replace(base.hw, attn_p=lanes))  # P query slots
    runner.run(
        "softmax_state", "test_softmax_state", HERE, cfg, case=f"p{lanes}", parameters={"Lanes": lanes}
    )


@pytest.mark.slow
def test_softmax_state_edge_moe() -> None:
    """The edge-moe package (129 keys per row, 3 heads), AttnP lanes."""
    cfg = preset("edge-moe")
    runner.run(
        "softmax_state", "test_softmax_state", HERE, cfg, case="edge-moe", parameters={"Lanes": cfg.hw.attn_p}
    )


@pytest.mark.slow
@pytest.mark.parametrize("config_seed", range(4))
def test_softmax_state_random_configs(config_seed: int) -> None:
    """At least 250 random rows on each of four random configs (formats, tokens, heads, AttnP lanes)."""
    runner.run_random(
        "softmax_state",
        "test_softmax_state",
        HERE,
        config_seed,
        250,
        "random_rows",
        lambda cfg: {"Lanes": cfg.hw.attn_p},
    )
