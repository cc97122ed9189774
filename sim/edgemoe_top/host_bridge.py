"""The running RTL top as the device of the host runtime (host/rtl_device.py).

``serve_host`` builds the top's surroundings — one memory behind its three AXI4 masters
(cocotbext-axi RAM models at the simulated device's physical addresses) and an AxiLiteMaster on
its control port — and then serves requests from the host process, one JSON line each over a
pair of named pipes, in a thread bridged into the simulation (``cocotb.task.bridge``; every bus
access runs as a ``resume``d coroutine): register reads and writes become AXI4-Lite
transactions, buffer syncs copy bytes into and out of the RAM model. Simulated time advances
only inside those coroutines (the simulator waits while the bridged thread runs), so a ``run``
request lets the hardware work for a number of cycles: the device asks for one before each read
of the control register, the simulated counterpart of the wall time between the host's polls.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from edgemoe.host.rtl_device import BASE_ENV, REPLIES_ENV, REQUESTS_ENV, SIZE_ENV
from edgemoe.sim.axi_tb import BoundedAxiRam
from edgemoe.sim.tb import CLOCK_NS


def _serve(
    axil: AxiLiteMaster,
    ram: BoundedAxiRam,
    clk,
    base: int,
    requests: str,
    replies: str,  # noqa: ANN001
) -> None:
    read, write = resume(axil.read_dword), resume(axil.write_dword)

    @resume
    async def run(cycles: int) -> None:
        await ClockCycles(clk, cycles)

    with open(requests) as rq, open(replies, "w") as rp:
        for line in rq:
            msg = json.loads(line)
            op, reply = msg["op"], {"ok": True}
            try:
                if op == "read":
                    reply["value"] = read(msg["offset"])
                elif op == "write":
                    write(msg["offset"], msg["value"])
                elif op == "load":
                    ram.write(msg["addr"] - base, Path(msg["path"]).read_bytes())
                elif op == "store":
                    Path(msg["path"]).write_bytes(ram.read(msg["addr"] - base, msg["nbytes"]))
                elif op == "faults":
                    reply["value"] = list(ram.faults)
                elif op == "run":
                    run(int(msg["cycles"]))
                elif op == "time":
                    reply["value"] = round(get_sim_time(unit="ns") / CLOCK_NS)
                elif op != "stop":
                    raise ValueError(f"unknown request {op!r}")
            except (ValueError, IndexError, OSError) as e:
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            rp.write(json.dumps(reply) + "\n")
            rp.flush()
            if op == "stop":
                return


@cocotb.test()
async def serve_host(dut) -> None:
    """Serve the host's requests until it sends ``stop`` (or closes the pipe)."""
    base, size = int(os.environ[BASE_ENV]), int(os.environ[SIZE_ENV])
    clk, rst = dut.ap_clk, dut.ap_rst_n
    cocotb.start_soon(Clock(clk, CLOCK_NS, unit="ns").start())
    kw = {"reset_active_level": False, "base": base}
    ram = BoundedAxiRam(dut, "m_axi_gmem0", clk, rst, size, write=False, **kw)
    BoundedAxiRam(dut, "m_axi_gmem1", clk, rst, size, write=False, share=ram, **kw)
    BoundedAxiRam(dut, "m_axi_gmem2", clk, rst, size, read=False, share=ram, **kw)
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), clk, rst, reset_active_level=False)
    rst.value = 0
    for _ in range(4):
        await RisingEdge(clk)
    rst.value = 1
    await RisingEdge(clk)
    await bridge(_serve)(axil, ram, clk, base, os.environ[REQUESTS_ENV], os.environ[REPLIES_ENV])
