"""Bench parts for the AXI4 ports of the RTL: a bounded RAM model, random channel stalls and a
burst-rule checker, around cocotbext-axi's slave models.

* :class:`BoundedAxiRam`: cocotbext-axi's RAM read and write sides over one memory of ``size``
  bytes; an access outside it is answered SLVERR and its address recorded in ``faults`` (the
  stock ``AxiRam`` wraps the address around instead).
* :func:`random_stalls`: pause generators for every channel of the RAM (AR, R, AW, W, B).
* :class:`BurstChecker`: watches one address channel (AR or AW) and the channel that ends its
  bursts (R with rlast, or B) and asserts the master's rules: no burst longer than ``max_burst``,
  none across a 4 KiB boundary, at most ``max_outstanding`` in flight; keeps every burst.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import cocotb
from cocotb.handle import SimHandleBase
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiReadBus, AxiWriteBus
from cocotbext.axi.axi_ram import AxiRamRead, AxiRamWrite
from cocotbext.axi.memory import Memory

from edgemoe.sim.tb import StreamSource, value_of

PAGE_BYTES = 4096
RAM_BYTES = 1 << 16
"""The RAM of the DMA benches: 16 pages."""


def transfers(beat: int, max_burst: int, rng: random.Random) -> list[tuple[int, int]]:
    """(byte address, beats): page edges, bursts of exactly and one more than max_burst, long
    transfers over several pages, then random ones."""
    page = PAGE_BYTES // beat
    fixed = [
        (0, 1),
        (PAGE_BYTES - beat, 1),  # the last beat of a page
        (PAGE_BYTES - beat, 2),  # one beat on each side of the boundary
        (PAGE_BYTES - 3 * beat, max_burst + 4),
        (2 * PAGE_BYTES, max_burst),
        (3 * PAGE_BYTES + beat, max_burst + 1),
        (beat * 7, 3 * page + 5),  # over three boundaries
    ]
    for _ in range(12):
        beats = rng.randint(1, 2 * page)
        start = rng.randrange(0, RAM_BYTES // beat - beats) * beat
        fixed.append((start, beats))
    return fixed


def transfer_source(dut: SimHandleBase, pause: float, rng: random.Random) -> StreamSource:
    """The transfer command stream of a DMA unit (cmd_valid_i, cmd_addr_i, cmd_beats_i)."""
    fields = {"addr": dut.cmd_addr_i, "beats": dut.cmd_beats_i}
    return StreamSource(dut.clk_i, dut.cmd_valid_i, dut.cmd_ready_o, fields, pause, rng)


class _BoundedRead(AxiRamRead):
    def __init__(self, *args, faults: list[int], base: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.faults, self.base = faults, base

    async def _read(self, address: int, length: int) -> bytes:
        if not self.base <= address <= self.base + self.size - length:
            self.faults.append(address)
            raise IndexError(
                f"read at 0x{address:x} outside the RAM (0x{self.base:x} + 0x{self.size:x} bytes)"
            )
        return self.read(address - self.base, length)


class _BoundedWrite(AxiRamWrite):
    def __init__(self, *args, faults: list[int], base: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.faults, self.base = faults, base

    async def _write(self, address: int, data: bytes) -> None:
        if not self.base <= address <= self.base + self.size - len(data):
            self.faults.append(address)
            raise IndexError(
                f"write at 0x{address:x} outside the RAM (0x{self.base:x} + 0x{self.size:x} bytes)"
            )
        self.write(address - self.base, data)


class BoundedAxiRam(Memory):
    """A RAM of ``size`` bytes on an AXI4 slave port; out-of-range accesses get SLVERR.

    Args:
        dut: the design; its ports ``<prefix>_ar...``/``<prefix>_r...`` (and/or the write side).
        prefix: the bus prefix (``m_axi``).
        clk, rst: clock and active-high reset handles.
        size: bytes of memory, from bus address ``base`` (``read``/``write`` of this object take
            offsets from ``base``).
        read, write: which sides the port has.
        share: another port's RAM whose memory (and fault list) this port uses: several
            ports of one design on one DDR.
        reset_active_level: the level of ``rst`` that resets.
        base: the bus address of the first byte.
    """

    def __init__(
        self,
        dut: SimHandleBase,
        prefix: str,
        clk: SimHandleBase,
        rst: SimHandleBase,
        size: int,
        read: bool = True,
        write: bool = True,
        share: BoundedAxiRam | None = None,
        reset_active_level: bool = True,
        base: int = 0,
    ) -> None:
        super().__init__(size, mem=share.mem if share is not None else None)
        self.faults: list[int] = share.faults if share is not None else []
        self.read_if = self.write_if = None
        kw = {"mem": self.mem, "size": size, "faults": self.faults, "base": base}
        kw["reset_active_level"] = reset_active_level
        if read:
            self.read_if = _BoundedRead(AxiReadBus.from_prefix(dut, prefix), clk, rst, **kw)
        if write:
            self.write_if = _BoundedWrite(AxiWriteBus.from_prefix(dut, prefix), clk, rst, **kw)

    def channels(self) -> list:
        """The RAM's stream endpoints: AR, R (read side), AW, W, B (write side)."""
        out = []
        if self.read_if is not None:
            out += [self.read_if.ar_channel, self.read_if.r_channel]
        if self.write_if is not None:
            out += [self.write_if.aw_channel, self.write_if.w_channel, self.write_if.b_channel]
        return out


def random_pause_generator(rng: random.Random, probability: float) -> Iterator[bool]:
    """A cocotbext-axi pause generator: each cycle paused with ``probability``."""
    while True:
        yield rng.random() < probability


def random_stalls(ram: BoundedAxiRam, seed: int, probability: float = 0.3) -> None:
    """Random ready/valid stalls on every channel of ``ram`` (each with its own seeded generator)."""
    for k, channel in enumerate(ram.channels()):
        channel.set_pause_generator(random_pause_generator(random.Random(seed * 16 + k), probability))


class BurstChecker:
    """Checks the bursts a master issues on one address channel.

    Args:
        dut: the design.
        clk: its clock.
        prefix: the bus prefix (``m_axi``).
        kind: ``"read"`` (AR, ended by R with rlast) or ``"write"`` (AW, ended by B).
        beat_bytes: bytes per beat.
        max_burst, max_outstanding: the master's limits.
    """

    def __init__(
        self,
        dut: SimHandleBase,
        clk: SimHandleBase,
        prefix: str,
        kind: str,
        beat_bytes: int,
        max_burst: int,
        max_outstanding: int,
    ) -> None:
        a = "ar" if kind == "read" else "aw"
        self.addr_valid = getattr(dut, f"{prefix}_{a}valid")
        self.addr_ready = getattr(dut, f"{prefix}_{a}ready")
        self.addr = getattr(dut, f"{prefix}_{a}addr")
        self.len = getattr(dut, f"{prefix}_{a}len")
        if kind == "read":
            self.end_valid = getattr(dut, f"{prefix}_rvalid")
            self.end_ready = getattr(dut, f"{prefix}_rready")
            self.end_last = getattr(dut, f"{prefix}_rlast")
        else:
            self.end_valid = getattr(dut, f"{prefix}_bvalid")
            self.end_ready = getattr(dut, f"{prefix}_bready")
            self.end_last = None
        self.clk, self.kind, self.beat_bytes = clk, kind, beat_bytes
        self.max_burst, self.max_outstanding = max_burst, max_outstanding
        self.bursts: list[tuple[int, int]] = []  # (byte address, beats)
        self.ended = 0
        self.peak_in_flight = 0
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.clk)
            if self.addr_valid.value == 1 and self.addr_ready.value == 1:
                addr, beats = value_of(self.addr), value_of(self.len) + 1
                assert beats <= self.max_burst, f"{self.kind} burst of {beats} beats > {self.max_burst}"
                end = addr + beats * self.beat_bytes - 1
                assert addr // PAGE_BYTES == end // PAGE_BYTES, (
                    f"{self.kind} burst 0x{addr:x}..0x{end:x} crosses a 4 KiB boundary"
                )
                assert addr % self.beat_bytes == 0, f"{self.kind} burst at unaligned 0x{addr:x}"
                self.bursts.append((addr, beats))
            if self.end_valid.value == 1 and self.end_ready.value == 1:
                if self.end_last is None or self.end_last.value == 1:
                    self.ended += 1
            in_flight = len(self.bursts) - self.ended
            self.peak_in_flight = max(self.peak_in_flight, in_flight)
            assert in_flight <= self.max_outstanding, (
                f"{in_flight} {self.kind} bursts in flight > {self.max_outstanding}"
            )

    def covered(self) -> list[tuple[int, int]]:
        """The bursts merged into contiguous (address, bytes) ranges, in issue order."""
        out: list[tuple[int, int]] = []
        for addr, beats in self.bursts:
            nbytes = beats * self.beat_bytes
            if out and out[-1][0] + out[-1][1] == addr:
                out[-1] = (out[-1][0], out[-1][1] + nbytes)
            else:
                out.append((addr, nbytes))
        return out
