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


@cocotb.test()
async def random_and_edge_values(dut) -> None:
    """Random raw inputs plus the extremes of the input format; every output bit compared."""
    p = runner.params_from_env()
    in_fmt, out = _casts(p)
    rng = random.Random(1)
    values = [in_fmt.min_raw, in_fmt.max_raw, 0, 1, -1 if in_fmt.signed else 2]
    values += [rng.randint(in_fmt.min_raw, in_fmt.max_raw) for _ in range(400)]
    values += [rng.randint(-8, 8) << max(p["InFrac"] - p["OutFrac"] - 1, 0) for _ in range(100)]
    values = [min(max(v, in_fmt.min_raw), in_fmt.max_raw) for v in values]
    expected = requantize(np.array(values, dtype=np.int64), p["InFrac"], out)
    rounded = shift_round(np.array(values, dtype=np.int64), p["InFrac"] - p["OutFrac"], out.rounding)
    out_of_range = (rounded < out.fmt.min_raw) | (rounded > out.fmt.max_raw)
    for v, want, clip in zip(values, expected, out_of_range, strict=True):
        dut.in_i.value = v & ((1 << p["InBits"]) - 1)
        await Timer(1, unit="ns")
        got = unpack(value_of(dut.out_o), p["OutBits"], 1, bool(p["OutSigned"]))[0]
        assert got == want, f"in {v}: RTL {got}, golden {want} ({p})"
        assert int(dut.clip_o.value) == int(clip), f"in {v}: clip_o {dut.clip_o.value}, expected {int(clip)}"


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
