"""axi_burst_writer: transfers written through cocotbext-axi's RAM model with random stalls on
AW, W and B and random pauses on d; the whole memory compared afterwards (written ranges and
untouched bytes), every burst checked (length, 4 KiB boundary, bursts in flight); a write past
the RAM ends with error_o, not a hang."""

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
from edgemoe.sim.tb import StreamSource, start_clock_and_reset, value_of

HERE = Path(__file__).resolve().parent


async def wait_idle(dut, timeout_cycles: int) -> None:
    """Wait for cmd_ready_o: every response of the last transfer is back."""
    for _ in range(timeout_cycles):
        await RisingEdge(dut.clk_i)
        if value_of(dut.cmd_ready_o) == 1:
            return
    raise AssertionError(f"the writer was still busy after {timeout_cycles} cycles")


def sources(dut, pause: float, rng: random.Random) -> tuple[StreamSource, StreamSource]:
    cmd = transfer_source(dut, pause, rng)
    data = StreamSource(dut.clk_i, dut.d_valid_i, dut.d_ready_o, {"data": dut.d_data_i}, pause, rng)
    return cmd, data


@cocotb.test()
async def writes_bit_exact(dut) -> None:
    """The memory after every transfer equals the expected image, bursts obey the rules."""
    params = runner.params_from_env()
    beat = len(dut.m_axi_wdata) // 8
    seed = params["MaxBurst"] * 31 + params["MaxOutstanding"]
    rng = random.Random(seed)
    ram = BoundedAxiRam(dut, "m_axi", dut.clk_i, dut.rst_i, RAM_BYTES, read=False)
    expected = bytearray(rng.getrandbits(8) for _ in range(RAM_BYTES))
    ram.write(0, bytes(expected))
    random_stalls(ram, seed)
    limits = params["MaxBurst"], params["MaxOutstanding"]
    bursts = BurstChecker(dut, dut.clk_i, "m_axi", "write", beat, *limits)
    cmd, data = sources(dut, 0.3, rng)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    todo = transfers(beat, params["MaxBurst"], rng)
    beats = []
    for addr, n in todo:
        payload = bytes(rng.getrandbits(8) for _ in range(n * beat))
        expected[addr : addr + n * beat] = payload
        beats += [{"data": int.from_bytes(payload[k * beat : (k + 1) * beat], "little")} for k in range(n)]
    feed = cocotb.start_soon(data.send(beats))
    await cmd.send([{"addr": a, "beats": n} for a, n in todo])
    await feed
    await wait_idle(dut, 40 * len(beats) + 2000)
    got = ram.read(0, RAM_BYTES)
    bad = [i for i in range(0, RAM_BYTES, beat) if got[i : i + beat] != expected[i : i + beat]]
    assert not bad, f"seed {seed}: {len(bad)} beats differ, first at 0x{bad[0]:x}"
    issued = [a + k * beat for a, n in bursts.bursts for k in range(n)]
    assert issued == [a + k * beat for a, n in todo for k in range(n)], (
        f"seed {seed}: the bursts do not cover the transfers in order"
    )
    assert bursts.ended == len(bursts.bursts), "responses missing"
    assert max(n for _, n in bursts.bursts) == params["MaxBurst"], "no burst reached MaxBurst"
    if params["MaxOutstanding"] > 1:
        assert bursts.peak_in_flight > 1, "never more than one burst awaiting its response"
    assert value_of(dut.error_o) == 0 and not ram.faults, f"seed {seed}: faults {ram.faults}"


@cocotb.test()
async def write_past_the_ram_reports_error(dut) -> None:
    """A transfer that runs past the RAM: SLVERR responses, error_o rises, the writer finishes."""
    beat = len(dut.m_axi_wdata) // 8
    ram = BoundedAxiRam(dut, "m_axi", dut.clk_i, dut.rst_i, RAM_BYTES, read=False)
    cmd, data = sources(dut, 0.0, random.Random(5))
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    feed = cocotb.start_soon(data.send([{"data": k + 1} for k in range(4)]))
    await cmd.send([{"addr": RAM_BYTES - 2 * beat, "beats": 4}])
    await feed
    await wait_idle(dut, 500)
    assert value_of(dut.error_o) == 1, "error_o stayed low after an SLVERR response"
    assert ram.faults == [RAM_BYTES, RAM_BYTES + beat], f"faulting addresses {[hex(a) for a in ram.faults]}"
    kept = ram.read(RAM_BYTES - 2 * beat, 2 * beat)
    assert kept == b"".join(k.to_bytes(beat, "little") for k in (1, 2)), "the beats inside the RAM were lost"


CASES = [(64, 4), (5, 2)]


@pytest.mark.parametrize("max_burst,max_outstanding", CASES, ids=[f"burst{b}_out{o}" for b, o in CASES])
def test_axi_burst_writer(max_burst: int, max_outstanding: int) -> None:
    runner.run(
        "axi_burst_writer",
        "test_axi_burst_writer",
        HERE,
        preset("tiny"),
        case=f"burst{max_burst}_out{max_outstanding}",
        parameters={"MaxBurst": max_burst, "MaxOutstanding": max_outstanding},
    )
