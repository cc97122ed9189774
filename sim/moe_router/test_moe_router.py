"""moe_router: gate softmax, top-k, per-expert queues and active experts, bit-exact against
edgemoe.golden.fixed.moe.route.

The expected routing of each block comes from ``moe.route`` itself: the block's tokens carry the
chosen logits in their first E columns and the gate is the identity on those columns (weight 1.0
in ``formats.linear_weight``), so the golden gate reproduces the logits exactly (checked) and
softmax, top-k, queues and the active list are the contract's own. Experts / top_k sweeps change
the Config (the generated package follows), each case in its own build folder.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import RisingEdge

from edgemoe.config import Cast, Config, FixedFormat, preset
from edgemoe.golden.fixed import moe
from edgemoe.golden.fixed.core import quantize
from edgemoe.sim import runner
from edgemoe.sim.tb import CLOCK_NS, StreamSink, StreamSource, start_clock_and_reset, unpack, write_perf

HERE = Path(__file__).resolve().parent


def index_bits(n: int) -> int:
    """Width of an index into n entries (as the RTL's ``$clog2``, at least 1)."""
    return max((n - 1).bit_length(), 1)


def golden_routing(cfg: Config, logits: np.ndarray) -> moe.MoERouting:
    """``moe.route`` of a block whose gate outputs are exactly ``logits [N, E]`` (raw formats.act)."""
    f = cfg.formats
    E = logits.shape[1]
    # the identity gate [E, E] at the weights' fraction bits, in a format that holds 1.0 (only the
    # gate reads linear_weight; routing after it reads the formats of cfg unchanged)
    one = f.linear_weight.fmt.frac_bits
    gate_cfg = dataclasses.replace(
        cfg, formats=dataclasses.replace(f, linear_weight=Cast(FixedFormat(one + 2, 2)))
    )
    routing = moe.route(logits, np.eye(E, dtype=np.int64) << one, gate_cfg)
    assert np.array_equal(routing.logits, logits), "identity gate did not reproduce the logits"
    return routing


def blocks(cfg: Config, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Named blocks of raw logits [N, E]: random spreads and the edge cases of routing."""
    act = cfg.formats.act
    m = cfg.model
    N, E = m.tokens, m.experts
    one = 1 << act.fmt.frac_bits
    out: list[tuple[str, np.ndarray]] = []
    for sigma in (0.5, 2.0, 8.0):
        out.append((f"gaussian sigma {sigma}", quantize(rng.normal(0, sigma, (N, E)), act)))
    out.append(("all tied (experts >= top_k get nothing)", np.zeros((N, E), dtype=np.int64)))
    same = quantize(rng.normal(0, 1, (N, E)), act)
    same[:, E - 1] = 6 * one  # every token's first choice is the last expert
    out.append(("every token picks the last expert", same))
    first = rng.integers(-3, 1, (N, E)) * one  # coarse grid: many tied scores
    first[:, 0] = 2 * one
    out.append(("all pick expert 0, ties behind it", first))
    out.append(("coarse grid, ties everywhere", rng.integers(-2, 3, (N, E)) * (one // 2)))
    near = rng.integers(-2, 3, (N, E)) + one  # differences of a few lsb: scores tie after rounding
    out.append(("one-lsb differences", near))
    ext = rng.choice([act.fmt.min_raw, act.fmt.max_raw, 0, -1, 1], (N, E))
    out.append(("format limits (x - max spans the whole range)", ext))
    one_hot = np.full((N, E), act.fmt.min_raw, dtype=np.int64)
    one_hot[np.arange(N), rng.integers(0, E, N)] = act.fmt.max_raw
    out.append(("one dominant expert per token, others at the minimum", one_hot))
    tail = quantize(rng.normal(0, 1, (N, E)), act)
    tail[:, : E - 1] -= 40 * one  # only the last expert has a visible score: ties of zeros
    out.append(("zero scores tied behind one expert", np.clip(tail, act.fmt.min_raw, act.fmt.max_raw)))
    return out


class RouterTB:
    """Drives gate logits into moe_router and collects the r, a and q streams.

    Args:
        dut: the cocotb handle of moe_router.
        cfg: the Config the design was built for.
        pause, backpressure: probabilities of an idle input cycle and of a stalled output cycle.
        seed: random seed of the stream timing.
    """

    def __init__(self, dut, cfg: Config, pause: float, backpressure: float, seed: int) -> None:
        self.dut, self.cfg = dut, cfg
        m = cfg.model
        self.N, self.E, self.K = m.tokens, m.experts, m.top_k
        self.exp_bits, self.tok_bits = index_bits(self.E), index_bits(self.N)
        self.score_bits = cfg.formats.gate_score.fmt.bits
        self.act_bits = cfg.formats.act.fmt.bits
        self.source = StreamSource.on(dut, "x", ["data"], pause, random.Random(seed))
        self.r = StreamSink.on(
            dut, "r", ["token", "expert", "score", "last"], backpressure, random.Random(seed + 1)
        )
        self.a = StreamSink.on(
            dut, "active", ["expert", "count", "last"], backpressure, random.Random(seed + 2), name="a"
        )
        self.q = StreamSink.on(
            dut, "queue", ["expert", "token", "end", "last"], backpressure, random.Random(seed + 3), name="q"
        )

    async def reset(self) -> None:
        await start_clock_and_reset(self.dut.clk_i, self.dut.rst_i)

    def beats(self, logits: np.ndarray) -> list[dict[str, int]]:
        mask = (1 << self.act_bits) - 1
        return [{"data": int(v) & mask} for v in np.asarray(logits, dtype=np.int64).reshape(-1)]

    def expected(self, routing: moe.MoERouting) -> tuple[list, list, list]:
        """The r, a and q beats of one block, as tuples, from the golden routing."""
        N = self.N
        r = [
            (
                t,
                tuple(int(e) for e in routing.experts[t]),
                tuple(int(s) for s in routing.topk_scores[t]),
                t == N - 1,
            )
            for t in range(N)
        ]
        last_active = routing.active[-1]
        a = [(e, len(routing.queues[e]), e == last_active) for e in routing.active]
        q = []
        for e in routing.active:
            queue = [int(t) for t in routing.queues[e]]
            q += [(e, t, t == queue[-1], e == last_active and t == queue[-1]) for t in queue]
        return r, a, q

    def got(self, first: tuple[int, int, int] = (0, 0, 0)) -> tuple[list, list, list]:
        """The beats collected so far (from the given start indices) as tuples like :meth:`expected`."""
        r = [
            (
                b["token"],
                tuple(int(v) for v in unpack(b["expert"], self.exp_bits, self.K, False)),
                tuple(int(v) for v in unpack(b["score"], self.score_bits, self.K, False)),
                bool(b["last"]),
            )
            for b in self.r.beats[first[0] :]
        ]
        a = [(b["expert"], b["count"], bool(b["last"])) for b in self.a.beats[first[1] :]]
        q = [(b["expert"], b["token"], bool(b["end"]), bool(b["last"])) for b in self.q.beats[first[2] :]]
        return r, a, q

    def counts(self) -> tuple[int, int, int]:
        return len(self.r.beats), len(self.a.beats), len(self.q.beats)

    async def wait_blocks(self, n_blocks: int, timeout_cycles: int) -> None:
        """Wait until every stream has closed ``n_blocks`` blocks (beats with ``last`` set)."""
        for _ in range(timeout_cycles):
            done = [sum(b["last"] for b in s.beats) for s in (self.r, self.a, self.q)]
            if min(done) >= n_blocks:
                return
            await RisingEdge(self.dut.clk_i)
        raise AssertionError(
            f"blocks closed on r, a, q: {done}, expected {n_blocks} after {timeout_cycles} cycles"
        )


def compare(what: str, names: list[str], got: list, want: list, per_block: list[int]) -> None:
    """Beat-by-beat equality with a message naming the block and the first difference."""
    assert len(got) == len(want), f"{what}: {len(got)} beats, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if g != w:
            block = int(np.searchsorted(np.cumsum(per_block), i, side="right"))
            raise AssertionError(f"{what}: beat {i} (block '{names[block]}') is {g}, golden {w}")


@cocotb.test()
async def routing_bit_exact(dut) -> None:
    """Random and edge-case blocks with input pauses and output back-pressure, compared bit for bit."""
    cfg = runner.config_from_env()
    N, E, K = cfg.model.tokens, cfg.model.experts, cfg.model.top_k
    tb = RouterTB(dut, cfg, pause=0.3, backpressure=0.4, seed=E * 10 + K)
    await tb.reset()
    rng = np.random.default_rng(E * 10 + K)
    named = blocks(cfg, rng)
    want_r, want_a, want_q, sizes = [], [], [], {"r": [], "a": [], "q": []}
    for _, logits in named:
        r, a, q = tb.expected(golden_routing(cfg, logits))
        want_r += r
        want_a += a
        want_q += q
        sizes["r"].append(len(r))
        sizes["a"].append(len(a))
        sizes["q"].append(len(q))
    # the edge cases are really there
    counts = [[len(q) for q in golden_routing(cfg, lg).queues] for _, lg in named]
    assert any(max(c) == N for c in counts), "no block routes every token to one expert"
    assert any(min(c) == 0 for c in counts) or K == E, "no block leaves an expert without tokens"

    beats = [b for _, logits in named for b in tb.beats(logits)]
    await tb.source.send(beats)
    await tb.wait_blocks(len(named), timeout_cycles=40 * len(beats) + 500)
    names = [n for n, _ in named]
    got_r, got_a, got_q = tb.got()
    compare("r (per-token experts and scores)", names, got_r, want_r, sizes["r"])
    compare("a (active experts)", names, got_a, want_a, sizes["a"])
    compare("q (per-expert queues)", names, got_q, want_q, sizes["q"])
    # nothing left over: no extra beat on any output, and the unit takes a new block at once
    for sink in (tb.r, tb.a, tb.q):
        await sink.expect_idle(4 * E + 20)
    assert dut.x_ready_o.value == 1, "moe_router does not accept a new block after draining"


@cocotb.test(skip=runner.random_cases() == 0)
async def random_blocks(dut) -> None:
    """random_cases() blocks back to back, each drawn from a fresh set of blocks() (random and edge)."""
    cfg = runner.config_from_env()
    tb = RouterTB(dut, cfg, pause=0.3, backpressure=0.4, seed=cfg.config_id)
    await tb.reset()
    rng = np.random.default_rng(cfg.config_id)
    names, want, sizes = [], ([], [], []), ([], [], [])
    beats = []
    for case in range(runner.random_cases()):
        pool = blocks(cfg, rng)
        name, logits = pool[int(rng.integers(0, len(pool)))]
        names.append(f"case {case}: {name}")
        for stream, size, part in zip(want, sizes, tb.expected(golden_routing(cfg, logits)), strict=True):
            stream += part
            size.append(len(part))
        beats += tb.beats(logits)
    await tb.source.send(beats)
    await tb.wait_blocks(len(names), timeout_cycles=40 * len(beats) + 500)
    for what, got, exp, size in zip(("r", "a", "q"), tb.got(), want, sizes, strict=True):
        compare(what, names, got, exp, size)
    for sink in (tb.r, tb.a, tb.q):
        await sink.expect_idle(4 * cfg.model.experts + 20)


@cocotb.test()
async def slow_queue_consumer(dut) -> None:
    """A queue consumer far slower than the input: both banks fill, routing and input stall, none lost."""
    cfg = runner.config_from_env()
    N, E = cfg.model.tokens, cfg.model.experts
    tb = RouterTB(dut, cfg, pause=0.0, backpressure=0.0, seed=3)
    tb.a.backpressure, tb.q.backpressure = 0.9, 0.95
    await tb.reset()
    rng = np.random.default_rng(11)
    named = [(f"block {i}", quantize(rng.normal(0, 2, (N, E)), cfg.formats.act)) for i in range(8)]
    want = [tb.expected(golden_routing(cfg, lg)) for _, lg in named]
    stalled = 0

    async def watch() -> None:
        nonlocal stalled
        while True:
            await RisingEdge(dut.clk_i)
            stalled += int(dut.x_valid_i.value == 1 and dut.x_ready_o.value == 0)

    watcher = cocotb.start_soon(watch())
    beats = [b for _, lg in named for b in tb.beats(lg)]
    await tb.source.send(beats)
    await tb.wait_blocks(len(named), timeout_cycles=400 * len(beats))
    watcher.cancel()
    names = [n for n, _ in named]
    got = tb.got()
    for i, what in enumerate(("r", "a", "q")):
        compare(what, names, got[i], [b for w in want for b in w[i]], [len(w[i]) for w in want])
    assert stalled > 0, "the input never stalled: the full-bank path was not exercised"
    for sink in (tb.r, tb.a, tb.q):
        await sink.expect_idle(4 * E + 20)


@cocotb.test()
async def throughput_and_latency(dut) -> None:
    """Tokens per cycle and latencies with no input pauses and no back-pressure."""
    cfg = runner.config_from_env()
    N, E = cfg.model.tokens, cfg.model.experts
    tb = RouterTB(dut, cfg, pause=0.0, backpressure=0.0, seed=1)
    await tb.reset()
    rng = np.random.default_rng(7)
    n_blocks = 4
    logits = [quantize(rng.normal(0, 2, (N, E)), cfg.formats.act) for _ in range(n_blocks)]
    want = [tb.expected(golden_routing(cfg, lg)) for lg in logits]
    beats = [b for lg in logits for b in tb.beats(lg)]
    await tb.source.send(beats)
    await tb.wait_blocks(n_blocks, timeout_cycles=40 * len(beats) + 500)
    got_r, got_a, got_q = tb.got()
    assert got_r == [b for w in want for b in w[0]], "r differs from golden in the throughput run"
    assert got_a == [b for w in want for b in w[1]], "a differs from golden in the throughput run"
    assert got_q == [b for w in want for b in w[2]], "q differs from golden in the throughput run"

    def cycle(t_ns: float) -> int:
        return round(t_ns / CLOCK_NS)

    r_cyc = [cycle(t) for t in tb.r.times]
    x_cyc = [cycle(t) for t in tb.source.times]
    q_cyc = [cycle(t) for t in tb.q.times]
    tokens = len(r_cyc)
    # steady state over the later blocks (the first token fills the pipeline)
    steady = (tokens - N - 1) / (r_cyc[-1] - r_cyc[N])
    blocks_in = (x_cyc[-1] - x_cyc[0] + 1) / n_blocks
    q_last = [c for c, b in zip(q_cyc, tb.q.beats, strict=True) if b["last"]]
    r_last = [c for c, b in zip(r_cyc, tb.r.beats, strict=True) if b["last"]]
    perf = {
        "experts": E,
        "top_k": cfg.model.top_k,
        "tokens_per_block": N,
        "tokens_per_cycle": steady,
        "cycles_per_token": 1 / steady,
        "logits_per_cycle_in": len(x_cyc) / (x_cyc[-1] - x_cyc[0] + 1),
        "cycles_per_block_in": blocks_in,
        "latency_first_logit_to_r": r_cyc[0] - x_cyc[0],
        "latency_last_logit_to_r": r_cyc[0] - x_cyc[E - 1],
        "latency_block_end_to_queues_done": q_last[0] - r_last[0],
        "latency_block_in_to_queues_done": q_last[0] - x_cyc[0],
    }
    write_perf("moe_router", perf)
    dut._log.info("moe_router performance: %s", perf)
    # one logit in, one exp and one multiply per cycle: a token every E cycles, the input's rate
    assert steady == 1 / E, f"moe_router should route one token per {E} cycles: {perf}"
    for sink in (tb.r, tb.a, tb.q):
        await sink.expect_idle(4 * E + 20)
    for _ in range(2):
        await RisingEdge(dut.clk_i)


def sweep_config(experts: int, top_k: int) -> Config:
    """The ``tiny`` preset with another expert count / top_k (the package is generated from it)."""
    base = preset("tiny")
    model = dataclasses.replace(base.model, experts=experts, top_k=top_k)
    return dataclasses.replace(base, name=f"tiny-e{experts}k{top_k}", model=model)


SWEEP = [(4, 2), (2, 2), (5, 3), (8, 1)]


@pytest.mark.parametrize("experts,top_k", SWEEP, ids=[f"e{e}k{k}" for e, k in SWEEP])
def test_moe_router(experts: int, top_k: int) -> None:
    cfg = preset("tiny") if (experts, top_k) == (4, 2) else sweep_config(experts, top_k)
    assert (cfg.model.experts, cfg.model.top_k) == (experts, top_k)
    runner.run("moe_router", "test_moe_router", HERE, cfg, case=f"e{experts}k{top_k}")


def test_moe_router_lint_sweep() -> None:
    """Lint clean (-Wall) for every swept size, not only the presets."""
    for experts, top_k in SWEEP:
        runner.lint("moe_router", sweep_config(experts, top_k))


@pytest.mark.parametrize(
    "params,message",
    [
        ({"NumExperts": 4, "NumTopK": 5}, "TopK 5 exceeds NumExperts 4"),
        ({"NumExperts": 1, "NumTopK": 1}, "moe_router needs NumExperts >= 2"),
    ],
    ids=["topk-gt-experts", "one-expert"],
)
def test_illegal_parameters_stop_elaboration(params: dict[str, int], message: str) -> None:
    with pytest.raises(runner.RtlBuildError) as err:
        runner.lint("moe_router", preset("tiny"), params)
    text = str(err.value)
    assert "USERFATAL" in text and message in text, text
    assert "In instance 'moe_router'" in text, text


@pytest.mark.slow
def test_moe_router_edge_moe() -> None:
    """The edge-moe sizes (16 experts, top-2, 129 tokens per block)."""
    runner.run("moe_router", "test_moe_router", HERE, preset("edge-moe"), case="edge-moe")


@pytest.mark.slow
@pytest.mark.parametrize("config_seed", range(4))
def test_moe_router_random_configs(config_seed: int) -> None:
    """250 random blocks on each of four random configs (formats, tokens, experts, top_k)."""
    runner.run_random("moe_router", "test_moe_router", HERE, config_seed, 250, "random_blocks")
