"""ap_ctrl_regs: the ap_ctrl_hs register map over AXI4-Lite (cocotbext-axi AxiLiteMaster with
random channel stalls), against a model of the core's handshake (ap_start -> busy -> one-cycle
ap_done/ap_ready). The offsets and bits come from host/layout.py, the behaviour is the one the
host driver and the simulated device (host/device.py) expect."""

from __future__ import annotations

import random
from pathlib import Path

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from edgemoe.config import preset
from edgemoe.host.layout import (
    CTRL_AP_DONE,
    CTRL_AP_IDLE,
    CTRL_AP_READY,
    CTRL_AP_START,
    CTRL_AUTO_RESTART,
    register_map,
)
from edgemoe.sim import runner
from edgemoe.sim.axi_tb import random_pause_generator
from edgemoe.sim.tb import CLOCK_NS, value_of

HERE = Path(__file__).resolve().parent
REGS = register_map()
BUSY_CYCLES = 25


class CoreModel:
    """The core's side of ap_ctrl_hs: takes a call when ap_start is high and it is idle, stays busy
    BUSY_CYCLES cycles, then pulses ap_done and ap_ready. Records the arguments of every call.

    Signals read right after a clock edge hold their values at that edge; the pulse driven after
    edge k is seen by the slave at edge k + 1, so the model looks at ap_start again only from
    edge k + 2 (as a core whose idle state follows its done state).
    """

    def __init__(self, dut) -> None:
        self.dut = dut
        self.calls: list[dict[str, int]] = []
        self.busy = 0
        self.finishing = False
        dut.ap_idle_i.value = 1
        dut.ap_done_i.value = 0
        dut.ap_ready_i.value = 0
        self.counters = [random.Random(9).getrandbits(64) for _ in REGS.counters]
        dut.counters_i.value = sum(v << (64 * k) for k, v in enumerate(self.counters))
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        d = self.dut
        while True:
            await RisingEdge(d.clk_i)
            d.ap_done_i.value = 0
            d.ap_ready_i.value = 0
            if self.finishing:
                self.finishing = False
            elif self.busy:
                self.busy -= 1
                if not self.busy:
                    d.ap_done_i.value = 1
                    d.ap_ready_i.value = 1
                    d.ap_idle_i.value = 1
                    self.finishing = True
            elif value_of(d.ap_start_o) == 1 and value_of(d.ap_idle_i) == 1:
                args = ("weights_o", "images_o", "tokens_o", "task_o", "batch_o")
                self.calls.append({a: value_of(getattr(d, a)) for a in args})
                self.busy = BUSY_CYCLES
                d.ap_idle_i.value = 0

    async def wait_calls(self, n: int, timeout_cycles: int = 2000) -> None:
        for _ in range(timeout_cycles):
            if len(self.calls) >= n and not self.busy and not self.finishing:
                return
            await RisingEdge(self.dut.clk_i)
        raise AssertionError(f"{len(self.calls)} of {n} calls after {timeout_cycles} cycles")


class TB:
    def __init__(self, dut, seed: int) -> None:
        self.dut = dut
        cocotb.start_soon(Clock(dut.clk_i, CLOCK_NS, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.clk_i, dut.rst_i)
        for k, ch in enumerate(
            (
                self.axil.write_if.aw_channel,
                self.axil.write_if.w_channel,
                self.axil.write_if.b_channel,
                self.axil.read_if.ar_channel,
                self.axil.read_if.r_channel,
            )
        ):
            ch.set_pause_generator(random_pause_generator(random.Random(seed * 8 + k), 0.4))
        self.core = CoreModel(dut)

    async def reset(self) -> None:
        self.dut.rst_i.value = 1
        for _ in range(4):
            await RisingEdge(self.dut.clk_i)
        self.dut.rst_i.value = 0
        await RisingEdge(self.dut.clk_i)

    async def read(self, name: str, word: int = 0) -> int:
        return await self.axil.read_dword(REGS[name].offset + 4 * word)

    async def write(self, name: str, value: int, word: int = 0) -> None:
        await self.axil.write_dword(REGS[name].offset + 4 * word, value)

    async def cycles(self, n: int) -> None:
        for _ in range(n):
            await RisingEdge(self.dut.clk_i)


@cocotb.test()
async def arguments_and_reset_values(dut) -> None:
    """Reset values; every argument word reads back what was written (also by byte lanes)."""
    tb = TB(dut, seed=1)
    await tb.reset()
    assert await tb.read("CTRL") == CTRL_AP_IDLE
    for name in ("GIE", "IER", "ISR", "CONFIG_ID", "CONFIG_ID_CTRL", "WEIGHTS", "TASK", "BATCH"):
        assert await tb.read(name) == 0, f"{name} after reset"
    rng = random.Random(2)
    values = {}
    for r in REGS.arguments:
        if r.access.value != "read-write":
            continue
        values[r.name] = rng.getrandbits(r.bits)
        for w in range(r.words):
            await tb.write(r.name, (values[r.name] >> (32 * w)) & 0xFFFF_FFFF, w)
    for name, v in values.items():
        got = 0
        for w in range(REGS[name].words):
            got |= await tb.read(name, w) << (32 * w)
        assert got == v, f"{name}: wrote 0x{v:x}, read 0x{got:x}"
    assert value_of(dut.weights_o) == values["WEIGHTS"] and value_of(dut.tokens_o) == values["TOKENS"]
    assert value_of(dut.task_o) == values["TASK"] and value_of(dut.batch_o) == values["BATCH"]
    # byte lanes: two bytes into the middle of TASK
    await tb.axil.write(REGS["TASK"].offset + 1, b"\xab\xcd")
    want = (values["TASK"] & 0xFF0000FF) | 0x00CDAB00
    assert await tb.read("TASK") == want, "a partial write changed the wrong bytes"
    # read-only, reserved and unmapped words
    await tb.write("CONFIG_ID", 0x1234)
    assert await tb.read("CONFIG_ID") == 0, "CONFIG_ID is read-only"
    assert await tb.read("TASK", 1) == 0, "the word after TASK is reserved"
    assert await tb.axil.read_dword(REGS.addr_range - 4) == 0, "an unmapped word reads 0"
    assert not tb.core.calls, "no call was started"
    for r, want in zip(REGS.counters, tb.core.counters, strict=True):
        got = await tb.read(r.name, 0) | await tb.read(r.name, 1) << 32
        assert got == want, f"counter {r.name}: 0x{got:x}, the core holds 0x{want:x}"


@cocotb.test()
async def call_done_interrupt(dut) -> None:
    """A call: ap_start held until the core takes it, ap_done/ap_ready clear on read, CONFIG_ID
    and its ap_vld, the interrupt and the toggle-on-write ISR."""
    cfg = runner.config_from_env()
    tb = TB(dut, seed=3)
    await tb.reset()
    await tb.write("WEIGHTS", 0x1000)
    await tb.write("BATCH", 2)
    await tb.write("GIE", 1)
    await tb.write("IER", 1)
    await tb.write("CTRL", CTRL_AP_START)
    ctrl = await tb.read("CTRL")
    assert ctrl & CTRL_AP_START and not ctrl & CTRL_AP_IDLE, f"CTRL 0x{ctrl:x} during the call"
    await tb.core.wait_calls(1)
    assert tb.core.calls == [{"weights_o": 0x1000, "images_o": 0, "tokens_o": 0, "task_o": 0, "batch_o": 2}]
    await tb.cycles(2)
    assert value_of(dut.interrupt_o) == 1, "no interrupt after ap_done with GIE and IER set"
    assert await tb.read("ISR") == 1
    assert await tb.read("CTRL") == CTRL_AP_DONE | CTRL_AP_IDLE | CTRL_AP_READY
    assert await tb.read("CTRL") == CTRL_AP_IDLE, "ap_done and ap_ready clear on read"
    assert await tb.read("CONFIG_ID") == cfg.config_id
    assert await tb.read("CONFIG_ID_CTRL") == 1
    assert await tb.read("CONFIG_ID_CTRL") == 0, "CONFIG_ID ap_vld clears on read"
    await tb.write("ISR", 1)
    assert await tb.read("ISR") == 0, "writing 1 toggles the ISR bit"
    assert value_of(dut.interrupt_o) == 0
    # interrupt masked by IER, then by GIE
    await tb.write("IER", 0)
    await tb.write("CTRL", CTRL_AP_START)
    await tb.core.wait_calls(2)
    await tb.cycles(2)
    assert value_of(dut.interrupt_o) == 0 and await tb.read("ISR") == 0, "ap_done raised a masked interrupt"
    await tb.write("IER", 3)
    await tb.write("GIE", 0)
    await tb.write("CTRL", CTRL_AP_START)
    await tb.core.wait_calls(3)
    await tb.cycles(2)
    assert await tb.read("ISR") == 3, "ISR records ap_done and ap_ready while enabled"
    assert value_of(dut.interrupt_o) == 0, "interrupt without GIE"
    await tb.write("GIE", 1)
    assert value_of(dut.interrupt_o) == 1


@cocotb.test()
async def start_while_busy_and_auto_restart(dut) -> None:
    """A start written during a call is dropped with the call's ap_ready (one call, arguments as
    taken); auto_restart runs calls back to back until it is cleared."""
    tb = TB(dut, seed=4)
    await tb.reset()
    await tb.write("TASK", 1)
    await tb.write("CTRL", CTRL_AP_START)
    for _ in range(100):
        if tb.core.calls:
            break
        await tb.cycles(1)
    await tb.write("TASK", 0)  # a new argument during the call does not reach the taken call
    await tb.write("CTRL", CTRL_AP_START)
    await tb.core.wait_calls(1)
    await tb.cycles(4 * BUSY_CYCLES)
    assert len(tb.core.calls) == 1 and tb.core.calls[0]["task_o"] == 1, f"calls {tb.core.calls}"
    assert await tb.read("CTRL") & CTRL_AP_IDLE
    await tb.write("CTRL", CTRL_AUTO_RESTART | CTRL_AP_START)
    await tb.core.wait_calls(4, timeout_cycles=10 * BUSY_CYCLES)
    await tb.write("CTRL", 0)
    await tb.cycles(4 * BUSY_CYCLES)
    n = len(tb.core.calls)
    await tb.cycles(4 * BUSY_CYCLES)
    assert len(tb.core.calls) == n, "calls went on after auto_restart was cleared"
    assert await tb.read("CTRL") & CTRL_AP_IDLE


@pytest.mark.parametrize("preset_name", ["tiny"])
def test_ap_ctrl_regs(preset_name: str) -> None:
    runner.run("ap_ctrl_regs", "test_ap_ctrl_regs", HERE, preset(preset_name), case=preset_name)
