"""Testbench parts shared by the cocotb benches: lane packing, clock/reset, stream driver and monitor.

A stream is valid/ready: ``<name>_valid_i``/``<name>_ready_o`` into the design, or
``<name>_valid_o``/``<name>_ready_i`` out of it, with any number of data signals. The source
inserts random idle cycles; the sink applies random back-pressure and checks that valid and
data hold while a beat waits (the stream rule every module keeps).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.handle import SimHandleBase
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

Ports = Sequence[str] | Mapping[str, str]
"""The data ports of a stream: their names, or beat keys to port names (``{"g": "gamma"}``)."""


def _ports(dut: SimHandleBase, stream: str, ports: Ports, suffix: str) -> dict[str, SimHandleBase]:
    """The handles ``<stream>_<port><suffix>`` by beat key."""
    named = ports if isinstance(ports, Mapping) else {p: p for p in ports}
    return {key: getattr(dut, f"{stream}_{port}{suffix}") for key, port in named.items()}


CLOCK_NS = 4


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
    value = handle.value
    if hasattr(value, "to_unsigned"):
        return value.to_unsigned()
    return int(value)  # a single-bit Logic


async def start_clock_and_reset(clk: SimHandleBase, rst: SimHandleBase, cycles: int = 4) -> None:
    cocotb.start_soon(Clock(clk, CLOCK_NS, unit="ns").start())
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
        self.times: list[float] = []  # sim time (ns) of each accepted beat
        valid.value = 0
        for sig in fields.values():
            sig.value = 0

    @classmethod
    def on(
        cls, dut: SimHandleBase, stream: str, ports: Ports, pause: float, rng: random.Random
    ) -> StreamSource:
        """The source of the DUT's input stream ``stream``: ``<stream>_valid_i``,
        ``<stream>_ready_o`` and the data inputs ``<stream>_<port>_i``."""
        valid, ready = getattr(dut, f"{stream}_valid_i"), getattr(dut, f"{stream}_ready_o")
        return cls(dut.clk_i, valid, ready, _ports(dut, stream, ports, "_i"), pause, rng)

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
            self.times.append(get_sim_time(unit="ns"))
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
        self.times: list[float] = []  # sim time (ns) of each accepted beat
        self.cycle = 0
        ready.value = 0
        cocotb.start_soon(self._run())

    @classmethod
    def on(
        cls,
        dut: SimHandleBase,
        stream: str,
        ports: Ports,
        backpressure: float,
        rng: random.Random,
        name: str | None = None,
    ) -> StreamSink:
        """The sink of the DUT's output stream ``stream``: ``<stream>_valid_o``,
        ``<stream>_ready_i`` and the data outputs ``<stream>_<port>_o`` (named ``stream`` in messages
        unless ``name`` is given)."""
        valid, ready = getattr(dut, f"{stream}_valid_o"), getattr(dut, f"{stream}_ready_i")
        fields = _ports(dut, stream, ports, "_o")
        return cls(dut.clk_i, valid, ready, fields, backpressure, rng, name=name or stream)

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
                self.times.append(get_sim_time(unit="ns"))
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


class LaneStreamTB:
    """Bench of a lane-parallel stream unit: ``x`` beats of Lanes inputs in, ``y`` beats out.

    Ports: clk_i, rst_i, x_valid_i/x_ready_o/x_data_i/x_last_i, y_valid_o/y_ready_i/y_data_o/y_last_o.

    Args:
        dut: the cocotb handle of the design.
        lanes: values per beat.
        in_bits, in_signed, out_bits, out_signed: raw formats of the lanes.
        pause, backpressure: probabilities of an idle input cycle and of a stalled output cycle.
        seed: random seed of the stream timing.
    """

    def __init__(
        self,
        dut: SimHandleBase,
        lanes: int,
        in_bits: int,
        in_signed: bool,
        out_bits: int,
        out_signed: bool,
        pause: float = 0.3,
        backpressure: float = 0.3,
        seed: int = 0,
    ) -> None:
        self.dut, self.lanes = dut, lanes
        self.in_bits, self.out_bits, self.out_signed = in_bits, out_bits, out_signed
        rng = random.Random(seed)
        self.source = StreamSource.on(dut, "x", ["data", "last"], pause, rng)
        self.sink = StreamSink.on(dut, "y", ["data", "last"], backpressure, random.Random(seed + 1))

    async def reset(self) -> None:
        await start_clock_and_reset(self.dut.clk_i, self.dut.rst_i)

    def beats(self, raw: np.ndarray) -> list[dict[str, int]]:
        raw = np.asarray(raw, dtype=np.int64).reshape(-1, self.lanes)
        return [
            {"data": pack(row, self.in_bits), "last": int(i == len(raw) - 1)} for i, row in enumerate(raw)
        ]

    async def check(self, raw_in: np.ndarray, expected: np.ndarray, what: str) -> None:
        """Stream ``raw_in`` (a multiple of Lanes values) and compare every output bit with ``expected``."""
        beats = self.beats(raw_in)
        first = len(self.sink.beats)
        await self.source.send(beats)
        await self.sink.wait_for(first + len(beats), timeout_cycles=50 * len(beats) + 200)
        got = np.concatenate(
            [unpack(b["data"], self.out_bits, self.lanes, self.out_signed) for b in self.sink.beats[first:]]
        )
        lasts = [b["last"] for b in self.sink.beats[first:]]
        exp = np.asarray(expected, dtype=np.int64).reshape(-1)
        raw = np.asarray(raw_in, dtype=np.int64).reshape(-1)
        bad = np.flatnonzero(got != exp)
        assert bad.size == 0, (
            f"{what}: {bad.size} of {exp.size} values differ; first at {bad[0]}: input {raw[bad[0]]}, "
            f"RTL {got[bad[0]]}, golden {exp[bad[0]]}"
        )
        assert lasts == [b["last"] for b in beats], f"{what}: last flags {lasts} do not follow the input"

    async def measure(self, raw_in: np.ndarray) -> dict[str, float]:
        """Throughput (beats and results per cycle) and latency with no pauses and no back-pressure."""
        self.source.pause, self.sink.backpressure = 0.0, 0.0
        beats = self.beats(raw_in)
        first, first_in = len(self.sink.beats), len(self.source.times)
        await self.source.send(beats)
        await self.sink.wait_for(first + len(beats), timeout_cycles=50 * len(beats) + 200)
        cycles = self.sink.cycles[first:]
        latency = round((self.sink.times[first] - self.source.times[first_in]) / CLOCK_NS)
        span = cycles[-1] - cycles[0] + 1
        return {
            "beats": len(beats),
            "beats_per_cycle": len(beats) / span,
            "results_per_cycle": len(beats) * self.lanes / span,
            "latency_cycles": latency,
        }


def write_perf(name: str, figures: dict[str, object]) -> None:
    """Record measured throughput/latency of the running case (read by the synthesis report)."""
    import json
    import os
    from pathlib import Path

    folder = Path(os.environ.get("EDGEMOE_CASE_DIR", "."))
    (folder / f"perf_{name}.json").write_text(json.dumps(figures, indent=1, sort_keys=True))
