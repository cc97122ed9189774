"""attention_engine: a whole block's attention (every head, every group of P queries) read from a
q | k | v token buffer and written into an output token buffer, both modelled as synchronous
RAMs, bit-exact against edgemoe.golden.fixed.attention; nothing written outside the outputs; with
the heads released one after the other (heads_ready_i), no head is read before its release."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import RisingEdge

from edgemoe.config import preset
from edgemoe.golden.fixed.attention import attention
from edgemoe.sim import runner
from edgemoe.sim.tb import pack, start_clock_and_reset, unpack, value_of

HERE = Path(__file__).resolve().parent


class TokenRams:
    """The engine's two buffers: a read port with one cycle of latency, and a write port.

    ``head_of[a]`` is the head whose q, k or v word ``a`` holds; a read of a head at or above
    heads_ready_i is recorded in ``early``."""

    def __init__(self, dut, words: dict[int, int], head_of: dict[int, int]) -> None:
        self.dut, self.words, self.head_of = dut, words, head_of
        self.written: dict[int, int] = {}
        self.writes = 0
        self.early: list[tuple[int, int]] = []  # (address, heads ready then)
        dut.rd_data_i.value = 0
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk_i)
            if d.rd_en_o.value == 1:
                addr = value_of(d.rd_addr_o)
                if self.head_of[addr] >= value_of(d.heads_ready_i):
                    self.early.append((addr, value_of(d.heads_ready_i)))
                d.rd_data_i.value = self.words[addr]
            if d.wr_en_o.value == 1:
                self.written[value_of(d.wr_addr_o)] = value_of(d.wr_data_o)
                self.writes += 1


@cocotb.test()
async def heads_bit_exact(dut) -> None:
    """Random and saturating q, k, v: every output word equals the golden attention."""
    cfg = runner.config_from_env()
    lanes = runner.params_from_env()["Lanes"]
    n, d = cfg.model.tokens, cfg.model.dim
    act = cfg.formats.act.fmt
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    dut.start_i.value = 0
    dut.heads_ready_i.value = 0
    m = cfg.model
    rng = np.random.default_rng(cfg.hw.attn_p * 7 + lanes)
    one = 1 << act.frac_bits
    for kind in ("random", "full"):
        if kind == "random":
            q, k, v = (rng.integers(-2 * one, 2 * one, (n, d)) for _ in range(3))
        else:
            q, k, v = (rng.integers(act.min_raw, act.max_raw, (n, d), endpoint=True) for _ in range(3))
        want = attention(q, k, v, cfg)
        qkv = np.concatenate([q, k, v], axis=1).reshape(n, -1, lanes)
        per_qkv = qkv.shape[1]
        words = {t * per_qkv + w: pack(qkv[t, w], act.bits) for t in range(n) for w in range(per_qkv)}
        head_of = {t * per_qkv + w: (w * lanes % d) // m.head_dim for t in range(n) for w in range(per_qkv)}
        rams = TokenRams(dut, words, head_of)
        # "random": every head ready from the start; "full": one more head every `gap` cycles, longer
        # than a head takes at these sizes, so the engine waits for each
        gap = 0 if kind == "random" else 1000
        dut.heads_ready_i.value = m.heads if gap == 0 else 0
        dut.start_i.value = 1
        await RisingEdge(dut.clk_i)
        dut.start_i.value = 0
        for cycle in range(200 * n * d):
            if gap and cycle % gap == gap - 1 and value_of(dut.heads_ready_i) < m.heads:
                dut.heads_ready_i.value = value_of(dut.heads_ready_i) + 1
            await RisingEdge(dut.clk_i)
            if dut.done_o.value == 1:
                break
        else:
            raise AssertionError(f"{kind}: no done_o")
        early = rams.early[:4]
        assert not early, f"{kind}: reads before their head was ready (address, heads ready): {early}"
        await RisingEdge(dut.clk_i)
        per_token = d // lanes
        assert sorted(rams.written) == list(range(n * per_token)), (
            f"{kind}: written words {sorted(rams.written)}"
        )
        assert rams.writes == n * per_token, f"{kind}: {rams.writes} writes for {n * per_token} words"
        got = np.stack(
            [
                np.concatenate(
                    [unpack(rams.written[t * per_token + w], act.bits, lanes, True) for w in range(per_token)]
                )
                for t in range(n)
            ]
        )
        bad = np.argwhere(got != want)
        assert bad.size == 0, (
            f"{kind}: {len(bad)} values differ, first token {bad[0][0]} dim {bad[0][1]}: "
            f"RTL {got[tuple(bad[0])]}, golden {want[tuple(bad[0])]}"
        )
        assert value_of(dut.busy_o) == 0, f"{kind}: still busy after done_o"


# (P, attn_block, Lanes): a partial last group (tiny's 9 tokens in groups of 2), whole groups with
# two attention beats per buffer word, and the zcu102 preset's 8 slots of 16 lanes, one beat per
# word (one whole group, then one query and 7 empty slots)
CASES = [(2, 8, 8), (3, 8, 16), (8, 16, 16)]


def case_name(p: int, blk: int, lanes: int) -> str:
    """The case's name and build folder (tiny's block width of 8 unnamed)."""
    return f"p{p}_lanes{lanes}" if blk == preset("tiny").hw.attn_block else f"p{p}_blk{blk}_lanes{lanes}"


@pytest.mark.parametrize("p,blk,lanes", CASES, ids=[case_name(*c) for c in CASES])
def test_attention_engine(p: int, blk: int, lanes: int) -> None:
    base = preset("tiny")
    cfg = dataclasses.replace(base, hw=dataclasses.replace(base.hw, attn_p=p, attn_block=blk))
    runner.run(
        "attention_engine",
        "test_attention_engine",
        HERE,
        cfg,
        case=case_name(p, blk, lanes),
        parameters={"Lanes": lanes},
    )
