"""The command line of the synthesis flows: ``python -m edgemoe.synth``.

``python -m edgemoe.synth [--preset P] [--only NAME ...]`` (``make synth-report``) synthesizes
the modules for UltraScale+ and writes ``build/synth/report.md``; with ``--ecp5``
(``make pnr-report``) it places and routes the units on an ECP5 and writes ``build/synth/pnr.md``;
with ``--bitstream`` (``make bitstream-ecp5``) the whole top at the ``ecp5`` preset, its bitstream
and ``build/synth/bitstream-ecp5.md``.
``--report-only`` rebuilds a report from the results of earlier runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from edgemoe.config import Config, resolve
from edgemoe.errors import EdgemoeError, exit_status
from edgemoe.paths import BUILD
from edgemoe.synth.ecp5 import ECP5, ECP5_PRESET, ECP5_TARGETS, TOP_PRESET, TOP_TARGET, place_and_route
from edgemoe.synth.report import write_bitstream_report, write_pnr_report, write_report
from edgemoe.synth.tools import SynthTarget
from edgemoe.synth.xcup import TARGETS, synthesize


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


def _ecp5_setup(args: argparse.Namespace, default_preset: str) -> tuple[Config, float, Path]:
    """The config (``default_preset`` unless a preset or config file is given), the clock
    constraint (``--freq`` or the config's clock) and the output folder of an ECP5 flow."""
    cfg = resolve(args.preset or (None if args.config else default_preset), args.config)
    return cfg, args.freq if args.freq is not None else cfg.hw.clock_mhz, Path(args.out)


def _pnr_summary(r: dict[str, object]) -> str:
    return f"   Fmax {r['fmax_mhz']} MHz, LUT4 {r['LUT4']}, FF {r['FF']}, DSP {r['DSP']}, EBR {r['EBR']}"


def main_ecp5(args: argparse.Namespace) -> int:
    cfg, freq, out = _ecp5_setup(args, ECP5_PRESET)

    def run_one(t: SynthTarget) -> dict[str, object]:
        params = f" {t.params}" if t.params else ""
        print(f"== ecp5 {t.name} ({t.top}{params}) at {freq:g} MHz", flush=True)
        r = place_and_route(t, cfg, out / "ecp5", freq, seed=args.seed)
        print(_pnr_summary(r))
        return r

    results = run_targets(ECP5_TARGETS, args, lambda t: out / "ecp5" / t.name / "pnr.json", run_one)
    path = write_pnr_report(cfg, results, out, freq)
    print(f"wrote {path}")
    return 1 if any("error" in r for r in results.values()) else 0


def main_bitstream(args: argparse.Namespace) -> int:
    cfg, freq, out = _ecp5_setup(args, TOP_PRESET)
    print(f"== ecp5 bitstream of edgemoe_top ({cfg.name}) at {freq:g} MHz", flush=True)
    try:
        r = place_and_route(
            TOP_TARGET, cfg, out / "ecp5", freq, seed=args.seed, timeout=4 * 3600, lut_multiplies=True
        )
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    print(_pnr_summary(r))
    print(f"wrote {write_bitstream_report(cfg, r, out)}")
    return 0


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
    ap = argparse.ArgumentParser(
        prog="python -m edgemoe.synth",
        description="Open-tool synthesis of the RTL modules and the resource/throughput report.",
    )
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
        "--bitstream",
        action="store_true",
        help=f"the whole top on an {ECP5.device} with its bitstream (default preset {TOP_PRESET}) "
        "-> OUT/bitstream-ecp5.md",
    )
    ap.add_argument(
        "--freq", type=float, default=None, help="ECP5 clock constraint in MHz (default hw.clock_mhz)"
    )
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    args = ap.parse_args(argv)
    if args.ecp5 and args.bitstream:
        ap.error("--ecp5 and --bitstream are two flows; give one")
    flow = main_bitstream if args.bitstream else main_ecp5 if args.ecp5 else main_xcup
    return exit_status(ap.prog, lambda: flow(args))
