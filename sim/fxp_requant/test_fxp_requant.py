"""fxp_requant: the RTL narrowing cast equals edgemoe.golden.fixed.core.requantize bit for bit."""

from __future__ import annotations

import random
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import Timer

from edgemoe.config import Cast, FixedFormat, Overflow, Rounding, preset
from edgemoe.golden.fixed.core import requantize, shift_round
from edgemoe.sim import runner
from edgemoe.sim.tb import unpack, value_of

HERE = Path(__file__).resolve().parent


def _casts(p: dict[str, int]) -> tuple[FixedFormat, Cast]:
    in_fmt = FixedFormat(p["InBits"], p["InBits"] - p["InFrac"], bool(p["InSigned"]))
    out = Cast(
        FixedFormat(p["OutBits"], p["OutBits"] - p["OutFrac"], bool(p["OutSigned"])),
        Rounding.ROUND_HALF_UP if p["RoundHalfUp"] else Rounding.TRUNCATE,
        Overflow.SATURATE if p["Saturate"] else Overflow.WRAP,
    )
    return in_fmt, out


def boundary_values(in_fmt: FixedFormat, in_frac: int, out: Cast) -> list[int]:
    """Inputs around every output boundary: those that round to the output's min and max, ±1 lsb
    of the output, 0, and (when fraction bits are dropped) ±1 lsb of the input around each
    rounding tie, kept inside the input format."""
    shift = in_frac - out.fmt.frac_bits
    o = out.fmt
    targets = [o.min_raw - 1, o.min_raw, o.min_raw + 1, o.max_raw - 1, o.max_raw, o.max_raw + 1, -1, 0, 1]
    if shift > 0:
        half = 1 << (shift - 1)
        offsets = [-half - 1, -half, -half + 1, -1, 0, 1, half - 1, half, half + 1]
        values = [(t << shift) + d for t in targets for d in offsets]
    else:  # fraction bits appended: only exact multiples of 2**-shift reach the output's lsb
        values = [t >> -shift for t in targets] + [(t >> -shift) + d for t in targets for d in (-1, 1)]
    return sorted({min(max(v, in_fmt.min_raw), in_fmt.max_raw) for v in values})


@cocotb.test()
async def random_and_edge_values(dut) -> None:
    """Random raw inputs, the extremes of the input format and the output boundaries; every
    output bit and the clip flag compared."""
    p = runner.params_from_env()
    in_fmt, out = _casts(p)
    rng = random.Random(1)
    values = [in_fmt.min_raw, in_fmt.max_raw, 0, 1, -1 if in_fmt.signed else 2]
    values += boundary_values(in_fmt, p["InFrac"], out)
    values += [rng.randint(in_fmt.min_raw, in_fmt.max_raw) for _ in range(400)]
    values += [rng.randint(-8, 8) << max(p["InFrac"] - p["OutFrac"] - 1, 0) for _ in range(100)]
    values = [min(max(v, in_fmt.min_raw), in_fmt.max_raw) for v in values]
    expected = requantize(np.array(values, dtype=np.int64), p["InFrac"], out)
    rounded = shift_round(np.array(values, dtype=np.int64), p["InFrac"] - p["OutFrac"], out.rounding)
    out_of_range = (rounded < out.fmt.min_raw) | (rounded > out.fmt.max_raw)
    # where an input rounds exactly to an output bound, the bench must contain one (clip_o low there)
    shift = p["InFrac"] - p["OutFrac"]
    lowest, highest = shift_round(np.array([in_fmt.min_raw, in_fmt.max_raw]), shift, out.rounding)
    for bound in (out.fmt.min_raw, out.fmt.max_raw):
        if lowest <= bound <= highest and (shift >= 0 or bound % (1 << -shift) == 0):
            assert (rounded == bound).any(), f"no input rounds exactly to the output bound {bound} ({p})"
    for v, want, clip in zip(values, expected, out_of_range, strict=True):
        dut.in_i.value = v & ((1 << p["InBits"]) - 1)
        await Timer(1, unit="ns")
        got = unpack(value_of(dut.out_o), p["OutBits"], 1, bool(p["OutSigned"]))[0]
        assert got == want, f"in {v}: RTL {got}, golden {want} ({p})"
        assert int(dut.clip_o.value) == int(clip), f"in {v}: clip_o {dut.clip_o.value}, expected {int(clip)}"


@cocotb.test(skip=runner.random_cases() == 0)
async def random_values(dut) -> None:
    """random_cases() inputs drawn from the output boundaries and the whole input format."""
    p = runner.params_from_env()
    in_fmt, out = _casts(p)
    rng = random.Random(str(p))
    edges = boundary_values(in_fmt, p["InFrac"], out)
    values = [
        rng.choice(edges) if rng.random() < 0.5 else rng.randint(in_fmt.min_raw, in_fmt.max_raw)
        for _ in range(runner.random_cases())
    ]
    expected = requantize(np.array(values, dtype=np.int64), p["InFrac"], out)
    rounded = shift_round(np.array(values, dtype=np.int64), p["InFrac"] - p["OutFrac"], out.rounding)
    clipped = (rounded < out.fmt.min_raw) | (rounded > out.fmt.max_raw)
    for v, want, clip in zip(values, expected, clipped, strict=True):
        dut.in_i.value = v & ((1 << p["InBits"]) - 1)
        await Timer(1, unit="ns")
        got = unpack(value_of(dut.out_o), p["OutBits"], 1, bool(p["OutSigned"]))[0]
        assert got == want, f"in {v}: RTL {got}, golden {want} ({p})"
        assert int(dut.clip_o.value) == int(clip), f"in {v}: clip_o {dut.clip_o.value}, expected {int(clip)}"


def random_parameters(seed: int) -> dict[str, int]:
    """A random cast: input and output widths, fraction bits (either side of each other), signs,
    rounding and overflow; products of the golden int64 arithmetic stay below 2**62."""
    rng = random.Random(seed)
    in_bits = rng.randint(2, 48)
    in_frac = rng.randint(-4, in_bits + 4)
    out_signed = rng.randint(0, 1)
    out_bits = rng.randint(2, 40)
    out_frac = rng.randint(in_frac - in_bits, min(in_frac + 62 - in_bits - 2, out_bits + 8))
    return dict(
        InBits=in_bits,
        InFrac=in_frac,
        InSigned=rng.randint(0, 1),
        OutBits=out_bits,
        OutFrac=out_frac,
        OutSigned=out_signed,
        RoundHalfUp=rng.randint(0, 1),
        Saturate=rng.randint(0, 1),
    )


CASES = {
    "narrow_rnd_sat": dict(
        InBits=48, InFrac=36, InSigned=1, OutBits=32, OutFrac=22, OutSigned=1, RoundHalfUp=1, Saturate=1
    ),
    "trunc_wrap": dict(
        InBits=40, InFrac=20, InSigned=1, OutBits=16, OutFrac=8, OutSigned=1, RoundHalfUp=0, Saturate=0
    ),
    "to_unsigned": dict(
        InBits=32, InFrac=22, InSigned=1, OutBits=18, OutFrac=17, OutSigned=0, RoundHalfUp=1, Saturate=1
    ),
    "widen": dict(
        InBits=16, InFrac=11, InSigned=1, OutBits=40, OutFrac=22, OutSigned=1, RoundHalfUp=1, Saturate=1
    ),
    "unsigned_in": dict(
        InBits=20, InFrac=10, InSigned=0, OutBits=12, OutFrac=4, OutSigned=1, RoundHalfUp=1, Saturate=1
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fxp_requant(case: str) -> None:
    runner.run("fxp_requant", "test_fxp_requant", HERE, preset("tiny"), case=case, parameters=CASES[case])


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8))
def test_fxp_requant_random_casts(seed: int) -> None:
    """250 random inputs on each of eight random casts (one build per cast)."""
    params = random_parameters(seed)
    runner.run(
        "fxp_requant",
        "test_fxp_requant",
        HERE,
        preset("tiny"),
        case=f"random{seed}",
        parameters=params,
        extra_env={runner.RANDOM_CASES_ENV: "250"},
        testcase="random_values",
    )
    print(f"fxp_requant random_values: 250 random cases on {params} equal golden")
