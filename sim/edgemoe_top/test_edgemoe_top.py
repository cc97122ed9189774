"""edgemoe_top: the whole accelerator driven as the host drives it — weight image and images packed
by host/packing.py into one memory behind the three AXI4 masters (cocotbext-axi RAM models), the
registers programmed through AxiLiteMaster, ap_start, then the interrupt (or polling ap_done) —
and the tokens compared bit for bit with the fixed-point reference (edgemoe.golden.fixed through
host/reference.py), for every task, batch 1 and 2, with random stalls on every AXI channel."""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from edgemoe.config import Config, preset, sfix
from edgemoe.golden.weights import synthetic
from edgemoe.host.layout import CTRL_AP_DONE, CTRL_AP_IDLE, CTRL_AP_START, register_map, weight_layout
from edgemoe.host.packing import (
    images_nbytes,
    pack_images,
    pack_weights,
    quantize_images,
    raw_weights,
    tokens_nbytes,
    unpack_tokens,
)
from edgemoe.host.reference import run_fixed_backbone
from edgemoe.perf import Timing, attention_run, gelu_beats, linear_beats, predict
from edgemoe.sim import runner
from edgemoe.sim.axi_tb import BoundedAxiRam, random_pause_generator, random_stalls
from edgemoe.sim.tb import CLOCK_NS, value_of

HERE = Path(__file__).resolve().parent
REGS = register_map()
PAGE = 4096


def _page_up(n: int) -> int:
    return -(-n // PAGE) * PAGE


class TopTB:
    """The top with one memory (weights, images, tokens) behind its three AXI4 masters.

    Args:
        dut: the design.
        cfg: its config.
        seed: weights, images and stall timing.
        stalls: probability of a stall cycle on every AXI channel (RAM and AXI-Lite).
    """

    def __init__(self, dut, cfg: Config, seed: int, stalls: float) -> None:
        self.dut, self.cfg, self.seed = dut, cfg, seed
        self.raw = raw_weights(cfg, synthetic(cfg, seed))
        blob = pack_weights(cfg, self.raw)
        # a beat past a page boundary, so bursts split on pages at other places than in the image
        self.weights = 0x1000 + cfg.hw.axi_bits // 8
        self.images = _page_up(self.weights + blob.nbytes)
        self.tokens = self.images + _page_up(images_nbytes(cfg, 2))
        size = self.tokens + tokens_nbytes(cfg, 2)
        cocotb.start_soon(Clock(dut.ap_clk, CLOCK_NS, unit="ns").start())
        clk, rst = dut.ap_clk, dut.ap_rst_n
        self.ram = BoundedAxiRam(dut, "m_axi_gmem0", clk, rst, size, write=False, reset_active_level=False)
        share = {"share": self.ram, "reset_active_level": False}
        self.img_ram = BoundedAxiRam(dut, "m_axi_gmem1", clk, rst, size, write=False, **share)
        self.tok_ram = BoundedAxiRam(dut, "m_axi_gmem2", clk, rst, size, read=False, **share)
        self.ram.write(self.weights, blob.tobytes())
        self.axil = AxiLiteMaster(
            AxiLiteBus.from_prefix(dut, "s_axi_control"), clk, rst, reset_active_level=False
        )
        if stalls:
            for k, ram in enumerate((self.ram, self.img_ram, self.tok_ram)):
                random_stalls(ram, seed * 4 + k, stalls)
            for k, ch in enumerate(
                (self.axil.write_if.aw_channel, self.axil.write_if.w_channel, self.axil.write_if.b_channel,
                 self.axil.read_if.ar_channel, self.axil.read_if.r_channel)
            ):  # fmt: skip
                ch.set_pause_generator(random_pause_generator(random.Random(seed * 8 + k), stalls))

    async def reset(self) -> None:
        self.dut.ap_rst_n.value = 0
        for _ in range(4):
            await RisingEdge(self.dut.ap_clk)
        self.dut.ap_rst_n.value = 1
        await RisingEdge(self.dut.ap_clk)

    async def write_reg(self, name: str, value: int) -> None:
        reg = REGS[name]
        for w in range(reg.words):
            await self.axil.write_dword(reg.offset + 4 * w, (value >> (32 * w)) & 0xFFFF_FFFF)

    async def read_reg(self, name: str) -> int:
        return await self.axil.read_dword(REGS[name].offset)

    async def call(
        self, task: int, batch: int, use_interrupt: bool, timeout_cycles: int, start_again: bool = False
    ) -> tuple[np.ndarray, int]:
        """Load ``batch`` random images, run one call; the tokens read back and the call's cycles.

        ``start_again``: write ap_start once more while the call runs (it must change nothing).
        """
        cfg, m = self.cfg, self.cfg.model
        rng = np.random.default_rng(self.seed * 10 + task * 3 + batch)
        pixels = quantize_images(cfg, rng.random((batch, m.in_chans, m.image_h, m.image_w)))
        self.ram.write(self.images, pack_images(cfg, pixels).tobytes())
        self.ram.write(self.tokens, bytes(tokens_nbytes(cfg, batch)))
        await self.write_reg("WEIGHTS", self.weights)
        await self.write_reg("IMAGES", self.images)
        await self.write_reg("TOKENS", self.tokens)
        await self.write_reg("TASK", task)
        await self.write_reg("BATCH", batch)
        await self.write_reg("GIE", int(use_interrupt))
        await self.write_reg("IER", int(use_interrupt))
        await self.write_reg("CTRL", CTRL_AP_START)
        start = cocotb.utils.get_sim_time(unit="ns")
        if start_again:
            for _ in range(500):
                await RisingEdge(self.dut.ap_clk)
            assert not await self.read_reg("CTRL") & CTRL_AP_IDLE, "the call ended within 500 cycles"
            await self.write_reg("CTRL", CTRL_AP_START)
        if use_interrupt:
            for _ in range(timeout_cycles):
                await RisingEdge(self.dut.ap_clk)
                if value_of(self.dut.interrupt) == 1:
                    break
            else:
                raise AssertionError(f"no interrupt after {timeout_cycles} cycles")
            ctrl = await self.read_reg("CTRL")
            assert ctrl & CTRL_AP_DONE and ctrl & CTRL_AP_IDLE, f"CTRL 0x{ctrl:x} after the interrupt"
            assert await self.read_reg("ISR") == 1
            await self.write_reg("ISR", 1)
        else:
            for _ in range(timeout_cycles // 20):
                ctrl = await self.read_reg("CTRL")
                if ctrl & CTRL_AP_DONE:
                    break
            else:
                raise AssertionError(f"ap_done not set after about {timeout_cycles} cycles")
        cycles = round((cocotb.utils.get_sim_time(unit="ns") - start) / CLOCK_NS)
        assert await self.read_reg("CONFIG_ID") == cfg.config_id
        buf = np.frombuffer(self.ram.read(self.tokens, tokens_nbytes(cfg, batch)), dtype=np.uint8)
        got = unpack_tokens(cfg, buf, batch)
        want = run_fixed_backbone(cfg, self.raw, pixels, task)
        for b in range(batch):
            bad = np.argwhere(got[b] != want[b])
            assert bad.size == 0, (
                f"seed {self.seed} task {task} image {b}/{batch}: {len(bad)} of {want[b].size} token values "
                f"differ; first token {bad[0][0]} dim {bad[0][1]}: RTL {got[b][tuple(bad[0])]}, "
                f"reference {want[b][tuple(bad[0])]}"
            )
        assert not self.ram.faults, f"accesses outside the memory: {[hex(a) for a in self.ram.faults]}"
        await self.check_counters(batch, cycles)
        return got, cycles

    async def read_counters(self) -> dict[str, int]:
        out = {}
        for r in REGS.counters:
            out[r.name] = (
                await self.axil.read_dword(r.offset) | await self.axil.read_dword(r.offset + 4) << 32
            )
        return out

    async def check_counters(self, batch: int, cycles: int) -> dict[str, int]:
        """The counters of the call: exact where the schedule fixes them, bounded elsewhere."""
        cfg = self.cfg
        c = await self.read_counters()
        assert c["BYTES_WRITTEN"] == tokens_nbytes(cfg, batch), c
        assert c["LINEAR_BUSY"] == batch * linear_beats(cfg), c
        assert c["NONLINEAR_BUSY"] == batch * gelu_beats(cfg), c
        # attention runs from the q | k | v pass's start: at least its own work, more where it waits
        # for a head's tiles (equal to the model without memory stalls: the infer test below)
        own = cfg.model.depth * attention_run(cfg, Timing(), [0] * cfg.model.heads)
        assert batch * own <= c["ATTENTION_BUSY"], (c, own)
        assert 0 < c["CYCLES"] <= cycles, f"CYCLES {c['CYCLES']}, the bench saw {cycles}"
        busy = ("LINEAR_BUSY", "ATTENTION_BUSY", "LAYERNORM_BUSY", "ROUTER_BUSY")
        assert all(0 < c[k] <= c["CYCLES"] for k in busy), c
        # the passes run one after the other, but for attention beside the q | k | v pass
        assert sum(c[k] for k in busy if k != "ATTENTION_BUSY") <= c["CYCLES"], c
        assert 0 < c["BYTES_READ"] and c["MEMORY_STALL"] < c["CYCLES"], c
        return c


def timeout(cfg: Config, batch: int) -> int:
    """A generous bound on a call's cycles: 8 cycles per MAC-array step of every layer."""
    macs = cfg.model.macs()["total"]
    return 8 * batch * (macs // (cfg.hw.linear_in * cfg.hw.linear_out) + 1) + 200_000


@cocotb.test()
async def every_task_bit_exact(dut) -> None:
    """Every task, batch 1 (interrupt) and batch 2 (polling ap_done), stalls on every channel."""
    cfg = runner.config_from_env()
    seed = int(os.environ["EDGEMOE_SEED"])
    tb = TopTB(dut, cfg, seed, stalls=0.2)
    await tb.reset()
    assert await tb.read_reg("CTRL") == CTRL_AP_IDLE
    tasks = [int(t) for t in os.environ.get("EDGEMOE_TASKS", "").split(",") if t] or range(
        len(cfg.model.tasks)
    )
    for task in tasks:
        await tb.call(task, 1, use_interrupt=True, timeout_cycles=timeout(cfg, 1))
    if os.environ.get("EDGEMOE_BATCH2", "1") == "1":
        await tb.call(0, 2, use_interrupt=False, timeout_cycles=timeout(cfg, 2))


@cocotb.test()
async def bad_use(dut) -> None:
    """ap_start written during a call changes nothing (one call, same tokens); a TOKENS pointer past
    the memory ends the call with the faulting address reported, not a hang."""
    cfg = runner.config_from_env()
    seed = int(os.environ["EDGEMOE_SEED"]) + 1
    tb = TopTB(dut, cfg, seed, stalls=0.2)
    await tb.reset()
    await tb.call(
        len(cfg.model.tasks) - 1, 1, use_interrupt=True, timeout_cycles=timeout(cfg, 1), start_again=True
    )
    for _ in range(2000):
        await RisingEdge(dut.ap_clk)
    ctrl = await tb.read_reg("CTRL")
    assert ctrl == CTRL_AP_IDLE, f"CTRL 0x{ctrl:x}: a second call ran from the ap_start written while busy"
    outside = tb.ram.size
    await tb.write_reg("TOKENS", outside)
    await tb.write_reg("GIE", 1)
    await tb.write_reg("IER", 1)
    await tb.write_reg("CTRL", CTRL_AP_START)
    for _ in range(timeout(cfg, 1)):
        await RisingEdge(dut.ap_clk)
        if value_of(dut.interrupt) == 1:
            break
    else:
        raise AssertionError("the call with tokens outside the memory did not finish")
    assert tb.ram.faults and tb.ram.faults[0] == outside, f"faults {[hex(a) for a in tb.ram.faults]}"
    dut._log.info("writes outside the memory reported at %s", ", ".join(hex(a) for a in tb.ram.faults[:4]))


def tiny_model_on(hw_preset: str) -> Config:
    """The tiny model and formats on the hardware of ``hw_preset`` (its array, attention P and
    block width, AXI width): a full-size preset's datapath at a size that simulates in seconds.
    A preset of the tiny model itself (tiny, ecp5) runs as it is. ``a16``: 16-bit activations,
    ap_fixed<16, 6>, on a 16 x 16 array with 128-bit AXI ports (a token word and a norm word
    are two beats each; pos_embed, with one fraction bit more than the activations, is rounded
    into them)."""
    tiny = preset("tiny")
    if hw_preset == "a16":
        hw = dataclasses.replace(tiny.hw, linear_in=16, linear_out=16, axi_bits=128)
        act16 = dataclasses.replace(tiny.formats.act, fmt=sfix(16, 6))
        formats = dataclasses.replace(tiny.formats, act=act16)
        return dataclasses.replace(tiny, name="tiny-a16", hw=hw, formats=formats)
    hw = preset(hw_preset)
    if hw.model == tiny.model:
        return hw
    return dataclasses.replace(tiny, name=f"tiny-{hw_preset}-hw", hw=hw.hw)


@pytest.mark.parametrize("hw_preset", ["tiny", "zcu102", "ecp5", "a16"])
def test_edgemoe_top(hw_preset: str) -> None:
    cfg = tiny_model_on(hw_preset)
    runner.run("edgemoe_top", "test_edgemoe_top", HERE, cfg, case=cfg.name, extra_env={"EDGEMOE_SEED": "1"})


@pytest.mark.slow
def test_edgemoe_top_edge_moe() -> None:
    """The edge-moe preset, both tasks, one image each (long: the full model in RTL simulation)."""
    runner.run(
        "edgemoe_top", "test_edgemoe_top", HERE, preset("edge-moe"), case="edge-moe",
        extra_env={"EDGEMOE_SEED": "1", "EDGEMOE_BATCH2": "0"}, testcase="every_task_bit_exact",
    )  # fmt: skip


def test_weight_layout_is_the_hosts() -> None:
    """The bench loads the image the host packs: its size is the layout's (no second definition)."""
    cfg = preset("tiny")
    raw = raw_weights(cfg, synthetic(cfg, 1))
    assert pack_weights(cfg, raw).nbytes == weight_layout(cfg).nbytes


@pytest.mark.parametrize("preset_name", ["tiny", "ecp5"])
def test_infer_backend_rtl_equals_reference(tmp_path, preset_name: str) -> None:
    """``edgemoe infer --backend rtl``: the unchanged host runtime drives the running RTL top; its
    tokens and heads equal ``--backend reference``'s for every task; perf.json and perf.png carry
    the counters (the MAC array's busy cycles exactly the schedule's input beats; the cycles within
    5 % of the cycle model from the config alone, within 1 % of it given the image's routing)."""
    import json

    from edgemoe.golden.fixed.model import FixedM3ViT
    from edgemoe.golden.images import default_image
    from edgemoe.golden.stored import load_stored, trained_path
    from edgemoe.host.device import SimDevice
    from edgemoe.infer import run

    cfg = preset(preset_name)
    outs = {}
    try:
        for backend in ("rtl", "reference"):
            run(cfg, task="all", out=tmp_path / backend, backend=backend, pictures=False)
            outs[backend] = np.load(tmp_path / backend / "outputs.npz")
    finally:
        SimDevice.for_engine("rtl").close()
    for name in cfg.model.tasks:
        for key in (f"tokens_raw_{name}", f"tokens_{name}", f"head_{name}"):
            assert np.array_equal(outs["rtl"][key], outs["reference"][key]), key
    perf = json.loads((tmp_path / "rtl" / "perf.json").read_text())
    assert set(perf["tasks"]) == set(cfg.model.tasks)
    backbone = FixedM3ViT(cfg, load_stored(trained_path(cfg), cfg))  # the weights infer ran
    for name, s in perf["tasks"].items():
        assert s["linear_busy"] == linear_beats(cfg), (name, s)
        assert s["attention_busy"] == predict(cfg).attention_busy, (name, s)  # no memory stalls here
        routing = backbone.forward(default_image(cfg), cfg.model.tasks.index(name)).routing
        rows = {i: [len(q) for q in r.queues if len(q)] for i, r in routing.items()}
        for model, bound in ((predict(cfg).cycles, 0.05), (predict(cfg, expert_rows=rows).cycles, 0.01)):
            assert abs(model - s["cycles_per_image"]) <= bound * s["cycles_per_image"], (
                f"{name}: the cycle model predicts {model} cycles, the RTL took {s['cycles_per_image']}"
            )
        assert 0 < s["mac_utilization"] <= 1 and s["cycles_per_image"] > s["linear_busy"], (name, s)
    assert (tmp_path / "rtl" / "perf.png").stat().st_size > 0
