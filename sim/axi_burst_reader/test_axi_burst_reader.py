"""axi_burst_reader: transfers read through cocotbext-axi's RAM model with random stalls on AR and
R and random back-pressure on d; every beat compared with the memory, every burst checked
(length, 4 KiB boundary, bursts in flight); a read past the RAM ends with error_o, not a hang."""

from __future__ import annotations

import random
from pathlib import Path

import cocotb
import pytest
from cocotb.triggers import RisingEdge

from edgemoe.config import preset
from edgemoe.sim import runner
from edgemoe.sim.axi_tb import (
    RAM_BYTES,
    BoundedAxiRam,
    BurstChecker,
    random_stalls,
    transfer_source,
    transfers,
)
from edgemoe.sim.tb import StreamSink, start_clock_and_reset, value_of

HERE = Path(__file__).resolve().parent


@cocotb.test()
async def reads_bit_exact(dut) -> None:
    """Every transfer's beats equal the memory, bursts obey the rules, nothing left over."""
    params = runner.params_from_env()
    beat = len(dut.m_axi_rdata) // 8
    seed = params["MaxBurst"] * 31 + params["MaxOutstanding"]
    rng = random.Random(seed)
    ram = BoundedAxiRam(dut, "m_axi", dut.clk_i, dut.rst_i, RAM_BYTES, write=False)
    ram.write(0, bytes(rng.getrandbits(8) for _ in range(RAM_BYTES)))
    random_stalls(ram, seed)
    limits = params["MaxBurst"], params["MaxOutstanding"]
    bursts = BurstChecker(dut, dut.clk_i, "m_axi", "read", beat, *limits)
    cmd = transfer_source(dut, 0.3, rng)
    d = StreamSink(
        dut.clk_i,
        dut.d_valid_o,
        dut.d_ready_i,
        {"data": dut.d_data_o, "last": dut.d_last_o},
        0.3,
        random.Random(seed + 1),
        name="d",
    )
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    todo = transfers(beat, params["MaxBurst"], rng)
    total = sum(n for _, n in todo)
    await cmd.send([{"addr": a, "beats": n} for a, n in todo])
    await d.wait_for(total, timeout_cycles=40 * total + 2000)
    first = 0
    for addr, beats in todo:
        got = d.beats[first : first + beats]
        for k, b in enumerate(got):
            want = int.from_bytes(ram.read(addr + k * beat, beat), "little")
            assert b["data"] == want, f"seed {seed}: transfer 0x{addr:x}+{beats}: beat {k} differs"
        lasts = [b["last"] for b in got]
        assert lasts == [0] * (beats - 1) + [1], f"seed {seed}: 0x{addr:x}+{beats}: last flags {lasts}"
        first += beats
    issued = [a + k * beat for a, n in bursts.bursts for k in range(n)]
    wanted = [a + k * beat for a, n in todo for k in range(n)]
    assert issued == wanted, f"seed {seed}: the bursts do not cover the transfers in order"
    assert max(n for _, n in bursts.bursts) == params["MaxBurst"], "no burst reached MaxBurst"
    if params["MaxOutstanding"] > 1:
        assert bursts.peak_in_flight > 1, "never more than one burst in flight"
    await d.expect_idle()
    assert value_of(dut.error_o) == 0 and not ram.faults, f"seed {seed}: faults {ram.faults}"


@cocotb.test()
async def read_past_the_ram_reports_error(dut) -> None:
    """A transfer that runs past the RAM: SLVERR beats still arrive, error_o rises, no hang."""
    beat = len(dut.m_axi_rdata) // 8
    ram = BoundedAxiRam(dut, "m_axi", dut.clk_i, dut.rst_i, RAM_BYTES, write=False)
    d = StreamSink(dut.clk_i, dut.d_valid_o, dut.d_ready_i, {"last": dut.d_last_o}, 0.0, random.Random(3))
    cmd = transfer_source(dut, 0.0, random.Random(4))
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    start = RAM_BYTES - 2 * beat
    await cmd.send([{"addr": start, "beats": 4}])
    await d.wait_for(4, timeout_cycles=500)
    await RisingEdge(dut.clk_i)
    assert value_of(dut.error_o) == 1, "error_o stayed low after SLVERR beats"
    assert ram.faults == [RAM_BYTES, RAM_BYTES + beat], f"faulting addresses {[hex(a) for a in ram.faults]}"
    assert value_of(dut.cmd_ready_o) == 1, "the reader did not finish the failed transfer"


CASES = [(64, 4), (5, 2)]


@pytest.mark.parametrize("max_burst,max_outstanding", CASES, ids=[f"burst{b}_out{o}" for b, o in CASES])
def test_axi_burst_reader(max_burst: int, max_outstanding: int) -> None:
    runner.run(
        "axi_burst_reader",
        "test_axi_burst_reader",
        HERE,
        preset("tiny"),
        case=f"burst{max_burst}_out{max_outstanding}",
        parameters={"MaxBurst": max_burst, "MaxOutstanding": max_outstanding},
    )
