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
import tempfile
import threading
from pathlib import Path

import numpy as np

from edgemoe.paths import REPO

from .device import SimDevice, SimMemory, SimulationError

RAM_BYTES = 1 << 30
"""Bytes of the simulated DDR from SimMemory.BASE (the RAM model maps it lazily)."""
REQUESTS_ENV = "EDGEMOE_BRIDGE_REQUESTS"
REPLIES_ENV = "EDGEMOE_BRIDGE_REPLIES"
BASE_ENV = "EDGEMOE_BRIDGE_BASE"
SIZE_ENV = "EDGEMOE_BRIDGE_SIZE"
BRIDGE_MODULE = "host_bridge"  # sim/edgemoe_top/host_bridge.py


class RtlSimDevice(SimDevice):
    """A simulated board whose accelerator is the RTL top in a running Verilator simulation."""

    def __init__(self, engine: str = "rtl") -> None:
        super().__init__(engine)
        self._pipe: tuple | None = None
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
            finally:
                # unblock a host waiting on the pipes when the simulation ends early
                for path, mode in ((requests, os.O_RDONLY), (replies, os.O_WRONLY)):
                    try:
                        os.close(os.open(path, mode | os.O_NONBLOCK))
                    except OSError:
                        pass

        self._thread = threading.Thread(target=simulate, name="edgemoe-rtl-simulation", daemon=True)
        self._thread.start()
        self._pipe = (open(requests, "w"), open(replies))  # noqa: SIM115 - open until close()
        atexit.register(self.close)

    def _ask(self, **msg) -> dict:
        if self._pipe is None:
            raise SimulationError(f"{self}: the RTL simulation is not running (download a bitstream first)")
        rq, rp = self._pipe
        try:
            rq.write(json.dumps(msg) + "\n")
            rq.flush()
            line = rp.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self._pipe = None
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
                for f in self._pipe or ():
                    f.close()
                self._pipe = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def cycles(self) -> int:
        """The simulation's clock cycles so far."""
        return int(self._ask(op="time")["value"])

    # -- registers: AXI4-Lite transactions
    def read_registers(self, address: int, length: int) -> bytes:
        off = self._offset(address)
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
