"""The ``rtl`` simulated device: the RTL top (hw/rtl/edgemoe_top.sv) running under Verilator.

The host runtime drives it unchanged, as it drives a board: the driver's register reads and
writes become AXI4-Lite transactions on the running simulation, and the DDR the top reads and
writes is the simulation's AXI RAM model at the device's physical addresses. Host buffers reach
it the way they reach a board's DDR, through the cache maintenance the driver already does:
``sync_to_device`` (flush) copies a buffer into the RAM model, ``sync_from_device`` (invalidate)
copies it back. The simulation (sim/edgemoe_top/host_bridge.py) starts when the bitstream is
downloaded and serves requests over two named pipes until the device is closed.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import tempfile
import threading
from pathlib import Path

import numpy as np

from edgemoe.paths import REPO

from .device import SimDevice, SimMemory, SimulationError
from .layout import register_map

RAM_BYTES = 1 << 30
"""Bytes of the simulated DDR from SimMemory.BASE (the RAM model maps it lazily)."""
REQUESTS_ENV = "EDGEMOE_BRIDGE_REQUESTS"
REPLIES_ENV = "EDGEMOE_BRIDGE_REPLIES"
BASE_ENV = "EDGEMOE_BRIDGE_BASE"
SIZE_ENV = "EDGEMOE_BRIDGE_SIZE"
BRIDGE_MODULE = "host_bridge"  # sim/edgemoe_top/host_bridge.py
CYCLES_PER_POLL = 1024
"""Cycles the hardware runs before each read of the control register: simulated time stands still
between the host's requests, so this stands for the wall time between two polls."""
CTRL_OFFSET = register_map()["CTRL"].offset


class RtlSimDevice(SimDevice):
    """A simulated board whose accelerator is the RTL top in a running Verilator simulation."""

    def __init__(self, engine: str = "rtl") -> None:
        super().__init__(engine)
        self._pipe: tuple[int, int] | None = None  # request and reply FIFOs
        self._replies = b""  # reply bytes read, not yet a whole line
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._folder: Path | None = None

    # -- the simulation
    def download(self, bitstream, parser=None) -> None:
        super().download(bitstream, parser)
        self.close()
        self._start()

    def _start(self) -> None:
        from edgemoe.sim import runner

        cfg = self.config
        self._folder = Path(tempfile.mkdtemp(prefix="edgemoe-rtl-"))
        requests, replies = self._folder / "requests", self._folder / "replies"
        os.mkfifo(requests)
        os.mkfifo(replies)
        env = {
            REQUESTS_ENV: str(requests),
            REPLIES_ENV: str(replies),
            BASE_ENV: str(SimMemory.BASE),
            SIZE_ENV: str(RAM_BYTES),
            "COCOTB_LOG_LEVEL": os.environ.get("COCOTB_LOG_LEVEL", "WARNING"),  # not every bus access
        }
        here = REPO / "sim" / "edgemoe_top"

        def simulate() -> None:
            try:
                runner.run(
                    "edgemoe_top",
                    BRIDGE_MODULE,
                    here,
                    cfg,
                    case=cfg.name,
                    extra_env=env,
                    testcase="serve_host",
                )
            except BaseException as e:  # reported to the host thread by _ask
                self._failure = e

        self._thread = threading.Thread(target=simulate, name="edgemoe-rtl-simulation", daemon=True)
        self._thread.start()
        # Opening a FIFO read-write never blocks (Linux): a simulation that fails before it opens
        # its ends cannot hang the host, and _reply_line watches the simulation while it waits.
        self._pipe = (os.open(requests, os.O_RDWR), os.open(replies, os.O_RDWR))
        self._replies = b""
        atexit.register(self.close)

    def _ask(self, **msg) -> dict:
        if self._pipe is None:
            raise SimulationError(f"{self}: the RTL simulation is not running (download a bitstream first)")
        rq, rp = self._pipe
        os.write(rq, (json.dumps(msg) + "\n").encode())
        line = self._reply_line(rp)
        if line is None:
            self._close_pipes()
            raise SimulationError(f"{self}: the RTL simulation ended: {self._failure or 'no reply'}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise SimulationError(f"{self}: {msg['op']} failed in the simulation: {reply['error']}")
        return reply

    def close(self) -> None:
        """Stop the simulation (it is started again by the next download)."""
        if self._pipe is not None:
            try:
                self._ask(op="stop")
            finally:
                self._close_pipes()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _reply_line(self, fd: int) -> bytes | None:
        """The simulation's next reply line; None once the simulation has ended without one."""
        while b"\n" not in self._replies:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                self._replies += os.read(fd, 1 << 16)
            elif self._thread is None or not self._thread.is_alive():
                return None
        line, _, self._replies = self._replies.partition(b"\n")
        return line

    def _close_pipes(self) -> None:
        for fd in self._pipe or ():
            os.close(fd)
        self._pipe = None

    def cycles(self) -> int:
        """The simulation's clock cycles so far."""
        return int(self._ask(op="time")["value"])

    # -- registers: AXI4-Lite transactions
    def read_registers(self, address: int, length: int) -> bytes:
        off = self._offset(address)
        if off == CTRL_OFFSET:
            self._ask(op="run", cycles=CYCLES_PER_POLL)
        out = bytearray()
        for k in range(0, length, 4):
            out += int(self._ask(op="read", offset=off + k)["value"]).to_bytes(4, "little")
        return bytes(out[:length])

    def write_registers(self, address: int, data: bytes) -> None:
        off = self._offset(address)
        for k in range(0, len(data), 4):
            value = int.from_bytes(data[k : k + 4].ljust(4, b"\0"), "little")
            self._ask(op="write", offset=off + k, value=value)

    # -- memory: the RAM model, kept coherent by the driver's cache maintenance
    def flush(self, bo, offset, ptr, size) -> None:
        addr = int(bo) + int(offset)
        path = self._folder / "sync.bin"
        path.write_bytes(self.default_memory.view(addr, size, "flush").tobytes())
        self._ask(op="load", addr=addr, path=str(path))

    def invalidate(self, bo, offset, ptr, size) -> None:
        addr = int(bo) + int(offset)
        path = self._folder / "sync.bin"
        self._ask(op="store", addr=addr, nbytes=int(size), path=str(path))
        self.default_memory.view(addr, size, "invalidate")[:] = np.frombuffer(path.read_bytes(), np.uint8)
