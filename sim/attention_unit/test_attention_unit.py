"""attention_unit: reordered attention of one head and one group of P queries per pass,
bit-exact against edgemoe.golden.fixed.attention (rotated key order, single-pass softmax)."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import cocotb
import numpy as np
import pytest

from edgemoe.config import Config, preset
from edgemoe.golden.fixed.attention import attention
from edgemoe.sim import runner
from edgemoe.sim.tb import CLOCK_NS, StreamSink, StreamSource, pack, start_clock_and_reset, unpack, write_perf

HERE = Path(__file__).resolve().parent


def qkv(cfg: Config, kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    act = cfg.formats.act.fmt
    n, d = cfg.model.tokens, cfg.model.dim
    one = 1 << act.frac_bits
    if kind == "full":  # scores saturate, exp underflows, outputs saturate
        return [rng.integers(act.min_raw, act.max_raw, (n, d), endpoint=True) for _ in range(3)]
    if kind == "ties":
        return [
            np.zeros((n, d), dtype=np.int64),
            rng.integers(-one, one, (n, d)),
            rng.integers(-one, one, (n, d)),
        ]
    return [rng.integers(-2 * one, 2 * one, (n, d)) for _ in range(3)]


class AttentionTB:
    def __init__(self, dut, cfg: Config, pause: float, backpressure: float, seed: int) -> None:
        self.dut, self.cfg = dut, cfg
        self.P, self.blk, self.hd = cfg.hw.attn_p, cfg.hw.attn_block, cfg.model.head_dim
        self.ab = cfg.formats.act.fmt.bits
        rng = random.Random(seed)
        self.q, self.k, self.v = (
            StreamSource.on(dut, name, ["data"], pause, random.Random(rng.random())) for name in "qkv"
        )
        self.o = StreamSink.on(dut, "o", ["data", "last"], backpressure, random.Random(seed + 1))

    def row_beats(self, row: np.ndarray) -> list[dict[str, int]]:
        return [{"data": pack(row[i : i + self.blk], self.ab)} for i in range(0, len(row), self.blk)]

    async def run(self, kind: str, rng: np.random.Generator, heads: list[int] | None = None) -> int:
        """Every group of every head of one attention call; returns the number of passes."""
        cfg, P, hd = self.cfg, self.P, self.hd
        q, k, v = qkv(cfg, kind, rng)
        want = attention(q, k, v, cfg)
        N = cfg.model.tokens
        passes = 0
        for h in heads if heads is not None else range(cfg.model.heads):
            cols = slice(h * hd, (h + 1) * hd)
            order = [r % N for r in range(N + P - 1)]
            for g in range(0, N, P):
                slots = [g + j for j in range(P)]
                qb = [
                    b for i in slots for b in self.row_beats(q[i, cols] if i < N else np.zeros(hd, np.int64))
                ]
                kb = [b for r in order for b in self.row_beats(k[r, cols])]
                vb = [b for r in order for b in self.row_beats(v[r, cols])]
                first = len(self.o.beats)
                await self.q.send(qb)
                await self.k.send(kb)
                await self.v.send(vb)
                per = hd // self.blk
                await self.o.wait_for(first + P * per, timeout_cycles=30 * (len(kb) + len(vb)) + 200)
                beats = self.o.beats[first : first + P * per]
                for j, i in enumerate(slots):
                    if i >= N:
                        continue  # empty slot of the last, partial group
                    got = np.concatenate(
                        [unpack(b["data"], self.ab, self.blk, True) for b in beats[j * per : (j + 1) * per]]
                    )
                    exp = want[i, cols]
                    bad = np.flatnonzero(got != exp)
                    assert bad.size == 0, (
                        f"{kind}: head {h} query {i} (slot {j}): {bad.size} values differ, "
                        f"first dim {bad[0]}: RTL {got[bad[0]]}, golden {exp[bad[0]]}"
                    )
                lasts = [b["last"] for b in beats]
                assert lasts == [0] * (P * per - 1) + [1], f"{kind}: o_last pattern {lasts}"
                passes += 1
        return passes


@cocotb.test()
async def heads_bit_exact(dut) -> None:
    """Random, saturating and tied inputs, every head and group, pauses and back-pressure."""
    cfg = runner.config_from_env()
    tb = AttentionTB(dut, cfg, 0.25, 0.3, seed=cfg.hw.attn_p)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    rng = np.random.default_rng(cfg.hw.attn_p)
    heads = None if cfg.model.tokens <= 32 else [0]  # edge-moe size: one head per kind keeps it minutes
    for kind in ("random", "full", "ties"):
        await tb.run(kind, rng, heads)
    await tb.o.expect_idle()


@cocotb.test(skip=runner.random_cases() == 0)
async def random_passes(dut) -> None:
    """Attentions of random kinds until random_cases() passes (one head, one group of P queries)."""
    cfg = runner.config_from_env()
    tb = AttentionTB(dut, cfg, 0.25, 0.3, seed=cfg.config_id)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    rng = np.random.default_rng(cfg.config_id)
    passes = 0
    while passes < runner.random_cases():
        passes += await tb.run(str(rng.choice(["random", "full", "ties"])), rng)
    await tb.o.expect_idle()


@cocotb.test()
async def throughput(dut) -> None:
    cfg = runner.config_from_env()
    tb = AttentionTB(dut, cfg, 0.0, 0.0, seed=1)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    first_k, first_v = len(tb.k.times), len(tb.v.times)
    await tb.run("random", np.random.default_rng(0), heads=[0])
    P, N = cfg.hw.attn_p, cfg.model.tokens
    tk = tb.k.times[first_k : first_k + (N + P - 1) * (cfg.model.head_dim // cfg.hw.attn_block)]  # one pass
    span_k = round((tk[-1] - tk[0]) / CLOCK_NS) + 1
    total = round((tb.o.times[-1] - tb.q.times[0]) / CLOCK_NS) + 1
    groups = -(-N // P)
    figures = {
        "k_beats_per_cycle_in_pass": len(tk) / span_k,
        "macs_per_cycle_in_pass": len(tk) * P * cfg.hw.attn_block / span_k,
        "cycles_per_head": total,
        "query_rows_per_cycle": N / total,
        "groups": groups,
        "latency_cycles_last_v_to_out": round((tb.o.times[0] - tb.v.times[first_v + len(tk) - 1]) / CLOCK_NS),
    }
    write_perf("attention_unit", figures)
    assert figures["k_beats_per_cycle_in_pass"] == 1.0, figures


# (P, attn_block): the tiny head_dim of 16 in two beats of 8 per row, or one beat of 16 (a
# one-beat row: its score read, accumulator ring and query ring are a single entry); 8 x 16 is the
# zcu102 preset's parallelism (tiny's 9 tokens: a whole group, then one query and 7 empty slots)
@pytest.mark.parametrize("p,blk", [(1, 8), (2, 8), (3, 8), (3, 16), (2, 4), (8, 16)])
def test_attention_unit(p: int, blk: int) -> None:
    base = preset("tiny")
    cfg = dataclasses.replace(base, hw=dataclasses.replace(base.hw, attn_p=p, attn_block=blk))
    case = f"p{p}" if blk == base.hw.attn_block else f"p{p}_blk{blk}"
    runner.run("attention_unit", "test_attention_unit", HERE, cfg, case=case, parameters={"Slots": p})


@pytest.mark.slow
@pytest.mark.parametrize("name", ["edge-moe", "zcu102"])
def test_attention_unit_edge_moe(name: str) -> None:
    """The package and parallelism of the full-size presets (head_dim 64, 129 tokens; P = 4 slots
    of 8 lanes, or 8 of 16)."""
    cfg = preset(name)
    runner.run(
        "attention_unit", "test_attention_unit", HERE, cfg, case=name, parameters={"Slots": cfg.hw.attn_p}
    )


@pytest.mark.slow
@pytest.mark.parametrize("config_seed", range(4))
def test_attention_unit_random_configs(config_seed: int) -> None:
    """At least 250 random passes on each of four random configs (formats, shapes, P, block width)."""
    runner.run_random(
        "attention_unit",
        "test_attention_unit",
        HERE,
        config_seed,
        250,
        "random_passes",
        lambda cfg: {"Slots": cfg.hw.attn_p},
    )
