"""nonlinear_unit: exp, reciprocal and rsqrt lanes, bit-exact against edgemoe.golden.fixed.nonlinear."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cocotb
import numpy as np
import pytest

from edgemoe.config import Cast, Config, FixedFormat, NonlinearFunction, Overflow, preset
from edgemoe.golden.fixed import nonlinear
from edgemoe.sim import runner
from edgemoe.sim.tb import LaneStreamTB, write_perf

HERE = Path(__file__).resolve().parent
# the functions the unit implements (its Func parameter), by the name of their bench case
FUNCS = {
    NonlinearFunction.EXP_SCORE: "exp",
    NonlinearFunction.RECIPROCAL: "recip",
    NonlinearFunction.RSQRT: "rsqrt",
}


def formats(cfg: Config, func: NonlinearFunction) -> tuple[FixedFormat, Cast]:
    """Input format and output cast of each function at its place in the datapath (the RTL defaults)."""
    f = cfg.formats
    if func is NonlinearFunction.EXP_SCORE:
        s = f.attn_score.fmt
        return FixedFormat(s.bits + 1, s.int_bits + 1, True), f.exp_out  # x - max: one bit wider
    if func is NonlinearFunction.RECIPROCAL:
        return f.softmax_sum.fmt, f.softmax_recip
    return f.ln_var.fmt, f.ln_rstd


def golden(cfg: Config, func: NonlinearFunction, x: np.ndarray) -> np.ndarray:
    fmt, out = formats(cfg, func)
    fn = {
        NonlinearFunction.EXP_SCORE: nonlinear.exp_neg,
        NonlinearFunction.RECIPROCAL: nonlinear.reciprocal,
        NonlinearFunction.RSQRT: nonlinear.rsqrt,
    }[func]
    return fn(x, fmt, cfg.nonlinear, out)


def log_uniform(rng: np.random.Generator, bits: int, n: int) -> np.ndarray:
    """Positive raw values spread over every magnitude 1 .. 2**bits - 1."""
    e = rng.integers(0, bits, n)
    return np.maximum((rng.integers(0, 1 << 62, n) >> (62 - e)) | (np.int64(1) << e), 1)


def stimuli(cfg: Config, func: NonlinearFunction, lanes: int, rng: np.random.Generator) -> np.ndarray:
    fmt, out = formats(cfg, func)
    if func is NonlinearFunction.EXP_SCORE:
        K = (out.fmt.frac_bits + 2).bit_length()
        clamp = 1 << (fmt.frac_bits + K)
        one = 1 << fmt.frac_bits
        v = [0, -1, 1, fmt.max_raw, fmt.min_raw, -clamp, -clamp + 1, -clamp - 1, -one, -(one >> 1)]
        v += list(-log_uniform(rng, fmt.bits - 1, 500))
        v += list(rng.integers(-16 * one, 0, 300))  # where exp is not tiny
        v += list(rng.integers(0, fmt.max_raw, 20))  # positive: clamped to exp(0)
    else:
        width = fmt.bits - (1 if fmt.signed else 0)
        one = 1 << fmt.frac_bits
        p2 = [1 << k for k in range(width)]
        v = (
            [1, 2, 3, fmt.max_raw, one, one - 1, one + 1]
            + p2
            + [p - 1 for p in p2[2:]]
            + [p + 1 for p in p2[1:-1]]
        )
        v += list(log_uniform(rng, width, 600))
        v += list(rng.integers(one, 200 * one, 200))
        if func is NonlinearFunction.RSQRT:  # variance + eps around eps
            eps = round(cfg.model.ln_eps * one)
            v += [eps, eps + 1, 2 * eps]
    x = np.clip(
        np.array(v, dtype=np.int64), fmt.min_raw if func is NonlinearFunction.EXP_SCORE else 1, fmt.max_raw
    )
    pad = (-len(x)) % lanes
    return np.concatenate([x, x[:pad]])


@cocotb.test()
async def bit_exact(dut) -> None:
    """Edge values (format limits, powers of two, clamps, saturating outputs) and random values."""
    cfg = runner.config_from_env()
    p = runner.params_from_env()
    func, lanes = NonlinearFunction(p["Func"]), p["Lanes"]
    fmt, out = formats(cfg, func)
    tb = LaneStreamTB(dut, lanes, fmt.bits, fmt.signed, out.fmt.bits, out.fmt.signed, seed=func * 10 + lanes)
    await tb.reset()
    x = stimuli(cfg, func, lanes, np.random.default_rng(func * 10 + lanes))
    want = golden(cfg, func, x)
    saturating = out.overflow is Overflow.SATURATE and func is not NonlinearFunction.EXP_SCORE
    assert np.any(want == out.fmt.max_raw) or not saturating, "the stimuli should include saturating outputs"
    await tb.check(x, want, FUNCS[func])
    perf = await tb.measure(x[: lanes * 64])
    write_perf(f"nonlinear_unit_{FUNCS[func]}", perf)
    assert perf["beats_per_cycle"] == 1.0, f"one beat per cycle expected: {perf}"
    await tb.sink.expect_idle()


@cocotb.test(skip=runner.random_cases() == 0)
async def random_streams(dut) -> None:
    """random_cases() streams of 1..8 beats drawn from the edge and random values of stimuli()."""
    cfg = runner.config_from_env()
    p = runner.params_from_env()
    func, lanes = NonlinearFunction(p["Func"]), p["Lanes"]
    fmt, out = formats(cfg, func)
    tb = LaneStreamTB(dut, lanes, fmt.bits, fmt.signed, out.fmt.bits, out.fmt.signed, seed=cfg.config_id)
    await tb.reset()
    rng = np.random.default_rng([cfg.config_id, func])
    pool = stimuli(cfg, func, lanes, rng)
    for case in range(runner.random_cases()):
        x = rng.choice(pool, size=lanes * int(rng.integers(1, 8, endpoint=True)))
        await tb.check(x, golden(cfg, func, x), f"{FUNCS[func]} case {case}")
    await tb.sink.expect_idle()


@pytest.mark.parametrize("lanes", [1, 4])
@pytest.mark.parametrize("func", sorted(FUNCS), ids=lambda f: FUNCS[f])
def test_nonlinear_unit(func: NonlinearFunction, lanes: int) -> None:
    runner.run(
        "nonlinear_unit",
        "test_nonlinear_unit",
        HERE,
        preset("tiny"),
        case=f"{FUNCS[func]}_lanes{lanes}",
        parameters={"Func": func, "Lanes": lanes},
    )


def test_reciprocal_that_wraps() -> None:
    """1/x into a softmax_recip that wraps while ln_rstd saturates: each function takes the
    overflow mode of its own output (the unit's parameter defaults)."""
    base = preset("tiny")
    recip = dataclasses.replace(base.formats.softmax_recip, overflow=Overflow.WRAP)
    cfg = dataclasses.replace(
        base, name="tiny-recip-wrap", formats=dataclasses.replace(base.formats, softmax_recip=recip)
    )
    runner.run(
        "nonlinear_unit",
        "test_nonlinear_unit",
        HERE,
        cfg,
        case="recip_wrap",
        parameters={"Func": NonlinearFunction.RECIPROCAL, "Lanes": 1},
        testcase="bit_exact",
    )


@pytest.mark.parametrize(
    "work,table,out_bits", [(13, 12, 18), (12, 8, 40)], ids=["one_bit_fraction", "wide_output"]
)
def test_exp_at_the_ends_of_its_formats(work: int, table: int, out_bits: int) -> None:
    """exp with work_frac_bits = exp_table_bits + 1, the finest table the config allows (one
    interpolation bit), and with an exp_out of 39 fraction bits over 12 work bits (the output
    shift of exp_lane reaches past the work word, and underflow needs the full clamp)."""
    base = preset("tiny")
    nl = dataclasses.replace(base.nonlinear, work_frac_bits=work, exp_table_bits=table)
    exp_out = dataclasses.replace(base.formats.exp_out, fmt=FixedFormat(out_bits, 1, False))
    cfg = dataclasses.replace(
        base,
        name=f"tiny-w{work}-e{table}-o{out_bits}",
        nonlinear=nl,
        formats=dataclasses.replace(base.formats, exp_out=exp_out),
    )
    runner.run(
        "nonlinear_unit",
        "test_nonlinear_unit",
        HERE,
        cfg,
        case=f"exp_w{work}_e{table}_o{out_bits}",
        parameters={"Func": NonlinearFunction.EXP_SCORE, "Lanes": 1},
        testcase="bit_exact",
    )


@pytest.mark.slow
@pytest.mark.parametrize("func", sorted(FUNCS), ids=lambda f: FUNCS[f])
def test_nonlinear_unit_edge_moe(func: NonlinearFunction) -> None:
    """The edge-moe package, AttnP lanes."""
    cfg = preset("edge-moe")
    lanes = cfg.hw.attn_p
    runner.run(
        "nonlinear_unit",
        "test_nonlinear_unit",
        HERE,
        cfg,
        case=f"edge-moe_{FUNCS[func]}_lanes{lanes}",
        parameters={"Func": func, "Lanes": lanes},
    )


@pytest.mark.slow
@pytest.mark.parametrize("config_seed", range(4))
@pytest.mark.parametrize("func", sorted(FUNCS), ids=lambda f: FUNCS[f])
def test_nonlinear_unit_random_configs(func: int, config_seed: int) -> None:
    """250 random streams on each of four random configs (formats, tables, AttnP lanes)."""
    runner.run_random(
        "nonlinear_unit",
        "test_nonlinear_unit",
        HERE,
        config_seed,
        250,
        "random_streams",
        lambda cfg: {"Func": func, "Lanes": cfg.hw.attn_p},
    )
