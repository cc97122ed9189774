"""linear_unit: the MAC array with its three epilogues, bit-exact against edgemoe.golden.fixed.linear.

Layers stream through back to back: the weight tiles of the next output tile load while the
current one computes (double buffering), with random pauses on every input stream and random
back-pressure on the output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import RisingEdge

from edgemoe.config import Config, preset
from edgemoe.golden.fixed.linear import Epilogue, linear
from edgemoe.sim import runner
from edgemoe.sim.tb import CLOCK_NS, StreamSink, StreamSource, pack, start_clock_and_reset, unpack, write_perf

HERE = Path(__file__).resolve().parent


@dataclass
class Layer:
    """One pass of the unit: inputs, weights, bias, epilogue and (ExpertAccumulate) queue data."""

    x: np.ndarray  # [N, K] act
    w: np.ndarray  # [M, K] linear_weight
    b: np.ndarray  # [M] bias
    epilogue: Epilogue
    scores: np.ndarray | None = None  # [N] gate_score
    buffer: np.ndarray | None = None  # [T, M] act: the output buffer before this expert
    rows: np.ndarray | None = None  # [N] token index of each queued row

    def expected(self, cfg: Config) -> np.ndarray:
        """[N, M]: the y beats the unit must produce, from the golden model."""
        f = cfg.formats
        out = linear(
            self.x,
            f.act.fmt,
            self.w,
            f.linear_weight.fmt,
            self.b,
            f.bias.fmt,
            f.act,
            self.epilogue,
            cfg=cfg,
            scores_raw=self.scores,
            acc_raw=self.buffer,
            rows=self.rows,
        )
        return out[self.rows] if self.epilogue is Epilogue.EXPERT_ACCUMULATE else out


def random_layer(
    cfg: Config, rng: np.random.Generator, epilogue: Epilogue, n: int, k: int, m: int, scale: str
):
    """A layer with realistic (``small``) or full-range (``full``, saturating) values."""
    f = cfg.formats
    act, wf, bf = f.act.fmt, f.linear_weight.fmt, f.bias.fmt
    if scale == "full":
        x = rng.integers(act.min_raw, act.max_raw, (n, k), endpoint=True)
        w = rng.integers(wf.min_raw, wf.max_raw, (m, k), endpoint=True)
        b = rng.integers(bf.min_raw, bf.max_raw, m, endpoint=True)
        x[0] = act.max_raw  # extreme rows: largest positive and negative sums
        w[:, :] = np.where(np.arange(k)[None, :] % 2 == 0, w, wf.min_raw)
    else:
        x = rng.integers(-(4 << act.frac_bits), 4 << act.frac_bits, (n, k))
        w = rng.integers(-(1 << (wf.frac_bits - 2)), 1 << (wf.frac_bits - 2), (m, k))
        b = rng.integers(-(1 << bf.frac_bits), 1 << bf.frac_bits, m)
    layer = Layer(x.astype(np.int64), w.astype(np.int64), b.astype(np.int64), epilogue)
    if epilogue is Epilogue.EXPERT_ACCUMULATE:
        gs = f.gate_score.fmt
        tokens = n + 3
        layer.rows = rng.permutation(tokens)[:n]
        layer.scores = rng.integers(0, 1 << gs.frac_bits, n, endpoint=True)
        layer.scores[0] = gs.max_raw
        buf = rng.integers(-(8 << act.frac_bits), 8 << act.frac_bits, (tokens, m))
        if scale == "full":
            buf[layer.rows[:2]] = [[act.max_raw], [act.min_raw]]  # the add saturates
        layer.buffer = buf.astype(np.int64)
    return layer


class LinearTB:
    """Drives the b (tile header), w (weights), x (rows) and a (expert accumulate) streams."""

    def __init__(
        self, dut, cfg: Config, params: dict[str, int], pause: float, backpressure: float, seed: int
    ):
        self.dut, self.cfg = dut, cfg
        self.n_in, self.n_out = params["In"], params["Out"]
        f = cfg.formats
        self.xb, self.wb, self.bb = f.act.fmt.bits, f.linear_weight.fmt.bits, f.bias.fmt.bits
        self.ab, self.sb = f.act.fmt.bits, f.gate_score.fmt.bits
        rng = random.Random(seed)
        self.b = StreamSource.on(dut, "b", ["data", "epilogue"], pause, random.Random(rng.random()))
        self.w = StreamSource.on(dut, "w", ["data", "last"], pause, rng)
        self.x = StreamSource.on(dut, "x", ["data", "last"], pause, random.Random(rng.random()))
        self.accum = StreamSource.on(dut, "accum", ["score", "row"], pause, random.Random(rng.random()))
        self.y = StreamSink.on(dut, "y", ["data", "last"], backpressure, random.Random(rng.random()))

    async def reset(self) -> None:
        await start_clock_and_reset(self.dut.clk_i, self.dut.rst_i)

    def tiles(self, layers: list[Layer]):
        """(layer, o0) in stream order: layers in turn, output tiles of a layer in order."""
        return [(layer, o0) for layer in layers for o0 in range(0, layer.w.shape[0], self.n_out)]

    async def load(self, layers: list[Layer]) -> None:
        for layer, o0 in self.tiles(layers):
            sl = slice(o0, o0 + self.n_out)
            await self.b.send([{"data": pack(layer.b[sl], self.bb), "epilogue": int(layer.epilogue)}])
            k = layer.w.shape[1]
            words = []
            for i0 in range(0, k, self.n_in):
                tile = layer.w[sl, i0 : i0 + self.n_in]  # [Out, In], lane o*In + i
                words.append({"data": pack(tile.reshape(-1), self.wb), "last": int(i0 + self.n_in >= k)})
            await self.w.send(words)

    async def stream_x(self, layers: list[Layer]) -> None:
        for layer, _ in self.tiles(layers):
            n, k = layer.x.shape
            beats = [
                {
                    "data": pack(layer.x[r, i0 : i0 + self.n_in], self.xb),
                    "last": int(r == n - 1 and i0 + self.n_in >= k),
                }
                for r in range(n)
                for i0 in range(0, k, self.n_in)
            ]
            await self.x.send(beats)

    async def stream_accum(self, layers: list[Layer]) -> None:
        for layer, o0 in self.tiles(layers):
            if layer.epilogue is not Epilogue.EXPERT_ACCUMULATE:
                continue
            sl = slice(o0, o0 + self.n_out)
            beats = [
                {"score": int(layer.scores[q]), "row": pack(layer.buffer[layer.rows[q], sl], self.ab)}
                for q in range(layer.x.shape[0])
            ]
            await self.accum.send(beats)

    def expected_beats(self, layers: list[Layer]) -> list[tuple[np.ndarray, int, str]]:
        want = []
        for li, layer in enumerate(layers):
            y = layer.expected(self.cfg)
            for o0 in range(0, layer.w.shape[0], self.n_out):
                for r in range(y.shape[0]):
                    last = int(r == y.shape[0] - 1)
                    want.append(
                        (
                            y[r, o0 : o0 + self.n_out],
                            last,
                            f"layer {li} ({layer.epilogue.name}) row {r} o0 {o0}",
                        )
                    )
        return want

    async def run(self, layers: list[Layer], loaded: bool = False) -> None:
        """Stream every layer and compare every y beat bit for bit (``loaded``: weights already sent)."""
        first = len(self.y.beats)
        want = self.expected_beats(layers)
        if not loaded:
            cocotb.start_soon(self.load(layers))
        cocotb.start_soon(self.stream_accum(layers))
        await self.stream_x(layers)
        await self.y.wait_for(first + len(want), timeout_cycles=40 * len(want) * 8 + 500)
        for beat, (exp, last, where) in zip(self.y.beats[first:], want, strict=True):
            got = unpack(beat["data"], self.ab, self.n_out, True)
            bad = np.flatnonzero(got != exp)
            assert bad.size == 0, (
                f"{where}: lanes {bad.tolist()} RTL {got[bad].tolist()} golden {exp[bad].tolist()}"
            )
            assert beat["last"] == last, f"{where}: y_last {beat['last']}, expected {last}"


@cocotb.test()
async def layers_bit_exact(dut) -> None:
    """Back-to-back layers of every epilogue, realistic and saturating values, pauses and back-pressure."""
    cfg = runner.config_from_env()
    p = runner.params_from_env()
    m = cfg.model
    tb = LinearTB(dut, cfg, p, pause=0.3, backpressure=0.3, seed=p["In"] * 7 + p["Out"])
    await tb.reset()
    rng = np.random.default_rng(p["In"] + 31 * p["Out"])
    n = m.tokens
    k_max = p["MaxK"]
    layers = [
        random_layer(cfg, rng, Epilogue.BIAS, n, m.dim, 2 * p["Out"], "small"),
        random_layer(cfg, rng, Epilogue.BIAS_GELU, n, k_max, p["Out"], "small"),
        random_layer(cfg, rng, Epilogue.BIAS, 3, p["In"], p["Out"], "full"),
        random_layer(cfg, rng, Epilogue.EXPERT_ACCUMULATE, 5, m.dim, 2 * p["Out"], "small"),
        random_layer(cfg, rng, Epilogue.BIAS_GELU, 4, 2 * p["In"], p["Out"], "full"),
        random_layer(cfg, rng, Epilogue.EXPERT_ACCUMULATE, 4, p["In"], p["Out"], "full"),
        random_layer(cfg, rng, Epilogue.BIAS, 1, p["In"], p["Out"], "small"),
        # one-beat rows of ExpertAccumulate: an output beat is taken while the next row waits for its a beat
        random_layer(cfg, rng, Epilogue.EXPERT_ACCUMULATE, 8, p["In"], p["Out"], "small"),
        # a one-row tile between two tiles of one bank: x must wait for the bank's new weights
        random_layer(cfg, rng, Epilogue.BIAS, 3, 2 * p["In"], p["Out"], "small"),
        random_layer(cfg, rng, Epilogue.BIAS, 1, p["In"], p["Out"], "small"),
        random_layer(cfg, rng, Epilogue.BIAS, 3, 2 * p["In"], p["Out"], "full"),
    ]
    await tb.run(layers)
    await tb.y.expect_idle()
    assert tb.x.sent == sum(len(tb.tiles([layer])) * layer.x.size // p["In"] for layer in layers)


@cocotb.test(skip=runner.random_cases() == 0)
async def random_layers(dut) -> None:
    """random_cases() random layers (rows, widths, epilogue, value scale), 1..4 back to back."""
    cfg = runner.config_from_env()
    p = runner.params_from_env()
    tb = LinearTB(dut, cfg, p, pause=0.3, backpressure=0.3, seed=cfg.config_id)
    await tb.reset()
    rng = np.random.default_rng(cfg.config_id)
    epilogues = list(Epilogue)
    layers = []
    for case in range(runner.random_cases()):
        n = int(rng.integers(2, cfg.model.tokens, endpoint=True))  # two rows: saturating buffer rows
        k = p["In"] * int(rng.integers(1, p["MaxK"] // p["In"], endpoint=True))
        m = p["Out"] * int(rng.integers(1, 3, endpoint=True))
        epilogue = epilogues[int(rng.integers(0, len(epilogues)))]
        scale = str(rng.choice(["small", "full"]))
        dut._log.info(f"case {case}: {n} rows, K {k}, M {m}, {epilogue.name}, {scale}")
        layers.append(random_layer(cfg, rng, epilogue, n, k, m, scale))
        if len(layers) == 4 or rng.random() < 0.4 or case == runner.random_cases() - 1:
            await tb.run(layers)
            layers = []
    await tb.y.expect_idle()


@cocotb.test()
async def throughput(dut) -> None:
    """No pauses, no back-pressure: x beats per cycle across tile switches (double buffering) and latency."""
    cfg = runner.config_from_env()
    p = runner.params_from_env()
    tb = LinearTB(dut, cfg, p, pause=0.0, backpressure=0.0, seed=1)
    await tb.reset()
    rng = np.random.default_rng(5)
    m = cfg.model
    layers = [random_layer(cfg, rng, Epilogue.BIAS, m.tokens, m.dim, 4 * p["Out"], "small")]
    cocotb.start_soon(tb.load(layers))
    for _ in range(3 * m.dim // p["In"]):  # let the first tiles load
        await RisingEdge(dut.clk_i)
    first_in = len(tb.x.times)
    await tb.run(layers, loaded=True)
    t_in = tb.x.times[first_in:]
    beats = len(t_in)
    span = round((t_in[-1] - t_in[0]) / CLOCK_NS) + 1
    figures = {
        "x_beats_per_cycle": beats / span,
        "macs_per_cycle": beats * p["In"] * p["Out"] / span,
        "results_per_cycle": beats * p["Out"] / (span * (m.dim // p["In"])),
        "latency_cycles": round((tb.y.times[0] - t_in[m.dim // p["In"] - 1]) / CLOCK_NS),
        "tiles": len(tb.tiles(layers)),
    }
    write_perf("linear_unit", figures)
    assert figures["x_beats_per_cycle"] == 1.0, f"tile switches stall the array: {figures}"


def max_k(cfg: Config) -> int:
    m = cfg.model
    return max(m.dim, m.mlp_hidden, m.expert_hidden)


@pytest.mark.parametrize("lanes", [(8, 8), (4, 8), (8, 2)], ids=lambda v: f"in{v[0]}_out{v[1]}")
def test_linear_unit(lanes: tuple[int, int]) -> None:
    cfg = preset("tiny")
    n_in, n_out = lanes
    params = {"In": n_in, "Out": n_out, "MaxK": max_k(cfg)}
    runner.run("linear_unit", "test_linear_unit", HERE, cfg, case=f"in{n_in}_out{n_out}", parameters=params)


def test_linear_unit_banks_of_five_words() -> None:
    """MaxK / In = 5 weight words per bank, not a power of two (edge-moe has 48): the second bank
    starts at word 5, not at the next power of two."""
    params = {"In": 8, "Out": 4, "MaxK": 40}
    runner.run(
        "linear_unit", "test_linear_unit", HERE, preset("tiny"), case="in8_out4_k40", parameters=params
    )


@pytest.mark.slow
def test_linear_unit_edge_moe() -> None:
    """The edge-moe package and parallelism (LinearIn x LinearOut lanes, rows of every width)."""
    cfg = preset("edge-moe")
    params = {"In": cfg.hw.linear_in, "Out": cfg.hw.linear_out, "MaxK": max_k(cfg)}
    runner.run("linear_unit", "test_linear_unit", HERE, cfg, case="edge-moe", parameters=params)


@pytest.mark.slow
@pytest.mark.parametrize("config_seed", range(4))
def test_linear_unit_random_configs(config_seed: int) -> None:
    """250 random layers on each of four random configs (formats, widths, parallelism)."""
    runner.run_random(
        "linear_unit",
        "test_linear_unit",
        HERE,
        config_seed,
        250,
        "random_layers",
        lambda cfg: {"In": cfg.hw.linear_in, "Out": cfg.hw.linear_out, "MaxK": max_k(cfg)},
    )
