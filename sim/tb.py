"""Testbench parts shared by the cocotb benches: lane packing, clock/reset, stream driver and monitor.

A stream is valid/ready: ``<name>_valid_i``/``<name>_ready_o`` into the design, or
``<name>_valid_o``/``<name>_ready_i`` out of it, with any number of data signals. The source
inserts random idle cycles; the sink applies random back-pressure and checks that valid and
data hold while a beat waits (the stream rule every module keeps).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ReadOnly, RisingEdge


def pack(values: Iterable[int], bits: int) -> int:
    """Lanes (lane 0 in the low bits) as one unsigned integer; each value is taken modulo 2**bits."""
    word = 0
    mask = (1 << bits) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * bits)
    return word


def unpack(word: int, bits: int, lanes: int, signed: bool) -> np.ndarray:
    """The inverse of :func:`pack`: ``lanes`` raw values as int64 (sign-extended if ``signed``)."""
    mask = (1 << bits) - 1
    out = np.zeros(lanes, dtype=np.int64)
    for i in range(lanes):
        v = (word >> (i * bits)) & mask
        if signed and v >> (bits - 1):
            v -= 1 << bits
        out[i] = v
    return out


def value_of(handle: SimHandleBase) -> int:
    """A signal's value as an unsigned integer (X/Z is an error)."""
    return handle.value.to_unsigned()


async def start_clock_and_reset(clk: SimHandleBase, rst: SimHandleBase, cycles: int = 4) -> None:
    cocotb.start_soon(Clock(clk, 4, unit="ns").start())
    rst.value = 1
    for _ in range(cycles):
        await RisingEdge(clk)
    rst.value = 0
    await RisingEdge(clk)


class StreamSource:
    """Drives beats into ``<name>_valid_i`` + data signals, honouring ``<name>_ready_o``.

    Args:
        clk: the clock.
        valid, ready: handles of the valid input and ready output.
        fields: data signal handles by field name.
        pause: probability of an idle cycle before each beat (random input pauses).
        rng: random source of this stream.
    """

    def __init__(
        self,
        clk: SimHandleBase,
        valid: SimHandleBase,
        ready: SimHandleBase,
        fields: dict[str, SimHandleBase],
        pause: float,
        rng: random.Random,
    ) -> None:
        self.clk, self.valid, self.ready, self.fields = clk, valid, ready, fields
        self.pause, self.rng = pause, rng
        self.sent = 0
        valid.value = 0
        for sig in fields.values():
            sig.value = 0

    async def send(self, beats: Sequence[dict[str, int]]) -> None:
        """Send every beat in order; returns when the last one has been accepted."""
        for beat in beats:
            while self.rng.random() < self.pause:
                self.valid.value = 0
                await RisingEdge(self.clk)
            for name, sig in self.fields.items():
                sig.value = int(beat.get(name, 0))
            self.valid.value = 1
            while True:
                await RisingEdge(self.clk)
                if self.ready.value == 1:
                    break
            self.sent += 1
        self.valid.value = 0


class StreamSink:
    """Collects beats from ``<name>_valid_o`` + data signals, driving ``<name>_ready_i`` at random.

    Asserts the stream rule: once valid is high, valid and data hold until the beat is taken.
    """

    def __init__(
        self,
        clk: SimHandleBase,
        valid: SimHandleBase,
        ready: SimHandleBase,
        fields: dict[str, SimHandleBase],
        backpressure: float,
        rng: random.Random,
        name: str = "out",
    ) -> None:
        self.clk, self.valid, self.ready, self.fields = clk, valid, ready, fields
        self.backpressure, self.rng, self.name = backpressure, rng, name
        self.beats: list[dict[str, int]] = []
        self.cycles: list[int] = []  # cycle index of each accepted beat
        self.cycle = 0
        ready.value = 0
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        waiting: dict[str, int] | None = None
        while True:
            self.ready.value = 0 if self.rng.random() < self.backpressure else 1
            await RisingEdge(self.clk)
            self.cycle += 1
            if self.valid.value != 1:
                assert waiting is None, f"{self.name}: valid dropped before its beat was accepted"
                continue
            beat = {name: value_of(sig) for name, sig in self.fields.items()}
            if waiting is not None:
                assert beat == waiting, f"{self.name}: data changed while waiting: {waiting} -> {beat}"
            if self.ready.value == 1:
                self.beats.append(beat)
                self.cycles.append(self.cycle)
                waiting = None
            else:
                waiting = beat

    async def wait_for(self, count: int, timeout_cycles: int) -> None:
        """Wait until ``count`` beats have arrived; fail after ``timeout_cycles`` clock cycles."""
        for _ in range(timeout_cycles):
            if len(self.beats) >= count:
                return
            await RisingEdge(self.clk)
        raise AssertionError(f"{self.name}: {len(self.beats)} of {count} beats after {timeout_cycles} cycles")

    async def expect_idle(self, cycles: int = 20) -> None:
        """Nothing left over: no further beat appears in ``cycles`` cycles with ready held high."""
        before = len(self.beats)
        self.backpressure = 0.0
        for _ in range(cycles):
            await RisingEdge(self.clk)
        await ReadOnly()
        assert len(self.beats) == before, f"{self.name}: {len(self.beats) - before} unexpected extra beat(s)"
