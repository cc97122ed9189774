"""The ``edgemoe`` command line.

Subcommands::

    edgemoe config show|emit-hls|emit-sv   inspect the effective config, generate the C++/SV files
    edgemoe infer                          run one image through a back end, write outputs and pictures
    edgemoe perf                           predict cycles per image (cycle model), roofline, sweep

Every user error (a bad config, weights that do not fit, an unreadable image, an unknown
task, a missing tool, a device that does not answer: an :class:`~edgemoe.errors.EdgemoeError`)
is one line on stderr and exit status 2, with its details under ``--verbose``; tracebacks are
kept for real bugs.
A new subcommand is a function ``add_<name>(subparsers)`` listed in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from edgemoe import __version__
from edgemoe.cli_args import (
    Parser,
    UserError,
    add_config_args,
    add_weight_args,
    config_from_args,
    formatter,
)
from edgemoe.errors import exit_status

# ------------------------------------------------------------------------------------ config


def _cmd_config_show(args: argparse.Namespace) -> int:
    from edgemoe.show import describe

    cfg = config_from_args(args)
    if args.json:
        import json

        data = cfg.to_dict()
        data["config_id"] = f"0x{cfg.config_id:08x}"
        print(json.dumps(data, indent=2))
    else:
        print(describe(cfg, source=str(args.config) if args.config else None))
    return 0


def _cmd_emit(args: argparse.Namespace) -> int:
    from edgemoe import emit
    from edgemoe.files import check_output_folder, write_if_changed

    cfg = config_from_args(args)
    cfg.refuse_block_act(f"the generated {'C++ header' if args.kind == 'hls' else 'SystemVerilog package'}")
    out = args.out if args.out is not None else Path("build") / cfg.name
    source = str(args.config) if args.config else None
    if args.kind == "hls":
        path, text = out / emit.HLS_FILE, emit.emit_hls(cfg, source=source)
    else:
        path, text = out / emit.SV_FILE, emit.emit_sv(cfg, source=source)
    check_output_folder(out)
    write_if_changed(path, text)
    print(f"wrote {path} (config '{cfg.name}', CONFIG_ID 0x{cfg.config_id:08x})")
    return 0


CONFIG_FILE_EXAMPLE = """\
A config file is a preset plus overrides, in TOML (or the same keys in YAML):

    preset = "tiny"
    [model]
    depth = 4
    moe_blocks = [1, 3]
    [formats.act]                # a cast point: its format, rounding and overflow
    bits = 24
    int_bits = 8
    rounding = "truncate"        # or round_half_up
    overflow = "saturate"        # or wrap
    [hw]
    attn_p = 2
"""


def add_config(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "config",
        help="show the effective config; generate the C++ header and SystemVerilog package",
        description="Inspect the configuration and generate the files the hardware is built from.",
        epilog="examples:\n"
        "  edgemoe config show --preset edge-moe\n"
        "  edgemoe config show --config my.toml --json\n"
        "  edgemoe config emit-hls --preset tiny           # -> build/tiny/edgemoe_config.h\n"
        "  edgemoe config emit-sv --config my.toml --out hw/gen\n\n" + CONFIG_FILE_EXAMPLE,
        formatter_class=formatter,
    )
    csub = p.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    show = csub.add_parser(
        "show",
        help="print the effective config: shape, formats, hardware, derived figures",
        description="Print the effective config (a preset, overridden by --config).",
        epilog="examples:\n"
        "  edgemoe config show --preset edge-moe\n"
        "  edgemoe config show --config my.yaml --json",
        formatter_class=formatter,
    )
    add_config_args(show)
    show.add_argument("--json", action="store_true", help="print the config as JSON instead")
    show.set_defaults(func=_cmd_config_show)
    for kind, fname, what in (
        ("hls", "edgemoe_config.h", "C++ header for the HLS kernels"),
        ("sv", "edgemoe_pkg.sv", "SystemVerilog package for the RTL"),
    ):
        e = csub.add_parser(
            f"emit-{kind}",
            help=f"write {fname}, the {what}",
            description=f"Write {fname}, the {what}: every size, format, table and the CONFIG_ID.",
            epilog=f"examples:\n"
            f"  edgemoe config emit-{kind}                     # -> build/edge-moe/{fname}\n"
            f"  edgemoe config emit-{kind} --preset tiny --out build/tiny",
            formatter_class=formatter,
        )
        add_config_args(e)
        e.add_argument(
            "--out", metavar="DIR", type=Path, help="output folder (default: build/<config name>/)"
        )
        e.set_defaults(func=_cmd_emit, kind=kind)


# ------------------------------------------------------------------------------------ infer


def _cmd_infer(args: argparse.Namespace) -> int:
    from edgemoe import infer

    cfg = config_from_args(args)
    infer.run(
        cfg,
        weights=args.weights,
        image=args.image,
        task=args.task,
        out=args.out,
        backend=args.backend,
        seed=args.seed,
        pictures=not args.no_pictures,
        threads=args.threads,
    )
    return 0


def add_infer(sub: argparse._SubParsersAction) -> None:
    from edgemoe.backends import BACKENDS

    backends = "\n".join(f"  {name:<10} {b.help}" for name, b in BACKENDS.items())
    p = sub.add_parser(
        "infer",
        help="run one image through the model; write outputs.npz and pictures",
        description="Run one image through the backbone and the task heads of a back end.\n"
        "With no arguments: the edge-moe preset, its trained model and the built-in image.",
        epilog="back ends:\n" + backends + "\n\n"
        "writes into --out:\n"
        "  outputs.npz          tokens_<task> [N, D] (after the last block), head_<task> [C, H, W]\n"
        "  input.png            the input image\n"
        "  <task>.png           segmentation: argmax classes as a colour map; depth: a heat map\n"
        "  reference back end:  also tokens_raw_<task> (raw int64) in outputs.npz, fidelity.json and\n"
        "                       fidelity_sqnr.png (per-block SQNR vs float, saturations, top-k changes)\n\n"
        "examples:\n"
        "  edgemoe infer\n"
        "  edgemoe infer --preset tiny --task depth --out out/tiny\n"
        "  edgemoe infer --weights ../shared/data/edge-moe-weights --image photo.png --task 0",
        formatter_class=formatter,
    )
    add_config_args(p)
    g = p.add_argument_group("inputs and outputs")
    add_weight_args(g)
    g.add_argument(
        "--image",
        metavar="FILE",
        help="a picture (PNG, JPEG, BMP; resized to the model's input) or a .npy / .float32.bin "
        "[C,H,W] array in [0,1) (default: the built-in deterministic image)",
    )
    g.add_argument("--task", default="all", help="a task name or index, or 'all' (default: all)")
    g.add_argument(
        "--out", metavar="DIR", type=Path, default=Path("out"), help="output folder (default: out)"
    )
    g.add_argument("--no-pictures", action="store_true", help="write outputs.npz only")
    g.add_argument(
        "--threads",
        type=int,
        metavar="N",
        default=1,
        help="CPU threads of torch (default 1; 0 = torch's choice, which can be ten times slower "
        "on a machine busy with other work)",
    )
    g.add_argument(
        "--backend",
        default="float",
        choices=list(BACKENDS),
        help="what computes the backbone (default: float)",
    )
    p.set_defaults(func=_cmd_infer)


def _cmd_perf(args: argparse.Namespace) -> int:
    from edgemoe.perf import Schedule, Timing, predict, report

    if args.mem_latency < 0:
        raise UserError(f"--mem-latency must be 0 or more cycles, got {args.mem_latency}")
    for name, value in (("--batch", args.batch), ("--weight-ports", args.weight_ports)):
        if value < 1:
            raise UserError(f"{name} must be 1 or more, got {value}")
    if args.bandwidth is not None and not 0 < args.bandwidth < float("inf"):
        raise UserError(f"--bandwidth must be a positive number of GB/s, got {args.bandwidth:g}")
    if args.sweep and args.roofline:
        raise UserError("--roofline is of one design point, --sweep of many: give one of them")
    if args.sweep and (args.weight_ports != 1 or args.attention_after_qkv or args.batch_weight_reuse):
        raise UserError(
            "--sweep tries every port count and schedule itself; give only --batch and --bandwidth"
        )
    cfg = config_from_args(args)
    timing = Timing(mem_latency=args.mem_latency)
    if args.sweep:
        from edgemoe.dse import run_sweep

        run_sweep(cfg, args.batch, args.bandwidth, timing, args.out)
        return 0
    schedule = Schedule(
        batch=args.batch,
        weight_ports=args.weight_ports,
        ddr_gbs=args.bandwidth,
        attention_overlap=not args.attention_after_qkv,
        batch_weight_reuse=args.batch_weight_reuse,
    )
    if args.roofline:
        from edgemoe.files import check_output_folder

        check_output_folder(args.out)  # before any output
    print(report(predict(cfg, timing, schedule)))
    if args.roofline:
        from edgemoe.roofline import run_roofline

        run_roofline(cfg, schedule, timing, args.out)
    return 0


def add_perf(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "perf",
        help="predict cycles per image from the config (no simulation); roofline, design sweep",
        description="A cycle model of the RTL top's schedule (hw/rtl/edgemoe_top.sv): cycles per\n"
        "image per task by stage, memory traffic and MAC utilization, from the config alone.\n"
        "Schedule options predict what the RTL top does not do yet (they say so in the output);\n"
        "--roofline adds the per-layer roofline, --sweep explores the design space under the\n"
        "ZCU102's resources with a resource model calibrated on Yosys runs.",
        epilog="examples:\n"
        "  edgemoe perf\n"
        "  edgemoe perf --preset tiny\n"
        "  edgemoe perf --mem-latency 40\n"
        "  edgemoe perf --bandwidth 19.2 --weight-ports 2\n"
        "  edgemoe perf --attention-after-qkv                      # without the RTL's overlap\n"
        "  edgemoe perf --roofline --bandwidth 19.2 --out out/perf    # -> roofline.png, roofline.json\n"
        "  edgemoe perf --sweep --batch 4 --out out/perf             # -> sweep.json, pareto.png",
        formatter_class=formatter,
    )
    add_config_args(p)
    p.add_argument(
        "--mem-latency",
        type=int,
        default=3,
        metavar="CYCLES",
        help="cycles from a read request to its first data (default 3, the simulation's RAM model)",
    )
    g = p.add_argument_group("schedule (the defaults are the RTL top's)")
    g.add_argument("--batch", type=int, default=1, metavar="N", help="images per call (default 1)")
    g.add_argument(
        "--bandwidth",
        type=float,
        default=None,
        metavar="GBS",
        help="the memory's ceiling in GB/s shared by the weight ports (default: none, every port a "
        "beat per cycle; --sweep: 19.2, the ZCU102's PS DDR4)",
    )
    g.add_argument(
        "--weight-ports",
        type=int,
        default=1,
        metavar="N",
        help="AXI ports the weights stream through (default 1)",
    )
    g.add_argument(
        "--attention-after-qkv",
        action="store_true",
        help="attention only after the whole q, k, v pass (default, as the RTL: on head h while the "
        "MAC array computes head h+1's q, k, v)",
    )
    g.add_argument(
        "--batch-weight-reuse",
        action="store_true",
        help="every image of the batch through each weight tile (token buffers for every image)",
    )
    g = p.add_argument_group("analyses")
    g.add_argument(
        "--roofline", action="store_true", help="print the per-layer roofline, write roofline.png and .json"
    )
    g.add_argument(
        "--sweep",
        action="store_true",
        help="every design point under the ZCU102 budget: print the Pareto set, write sweep.json "
        "and pareto.png",
    )
    g.add_argument(
        "--out", metavar="DIR", type=Path, default=Path("out/perf"), help="output folder (default out/perf)"
    )
    p.set_defaults(func=_cmd_perf)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from edgemoe import calibrate
    from edgemoe.files import check_output_folder
    from edgemoe.infer import load_image, load_weights
    from edgemoe.progress import stage

    if not 2 <= args.bits <= 62:
        raise UserError(f"--bits must be 2..62, got {args.bits}")
    if not 1.0 <= args.margin < float("inf"):
        raise UserError(f"--margin must be a finite factor of 1 or more, got {args.margin:g}")
    if args.images is not None and args.image is not None:
        raise UserError("give --image FILE or --images N, not both")
    if args.images is not None and args.images < 1:
        raise UserError(f"--images must be 1 or more, got {args.images}")
    if args.out.suffix != ".toml":
        raise UserError(f"--out {args.out}: a config file ends in .toml")
    cfg = config_from_args(args)
    check_output_folder(args.out.parent or Path("."))  # before any work
    with stage("loading weights"):
        weights = load_weights(cfg, args.weights, args.seed)
    if args.images is None:
        images = [load_image(cfg, args.image)]
    else:
        from edgemoe.golden import dataset

        images = [dataset.scene(cfg, "val", i).image for i in range(args.images)]
    given = [
        ("--preset", args.preset), ("--config", args.config), ("--weights", args.weights),
        ("--seed", args.seed if args.weights == "seeded" else None), ("--image", args.image),
        ("--images", args.images), ("--bits", args.bits), ("--margin", args.margin), ("--name", args.name),
        ("--out", args.out),
    ]  # fmt: skip
    command = " ".join(
        ["edgemoe calibrate"] + [f"{opt} {value}" for opt, value in given if value is not None]
    )
    calibrate.run(
        cfg,
        weights,
        images,
        args.bits,
        args.margin,
        args.name or f"{cfg.name}-a{args.bits}",
        args.out,
        command,
    )
    return 0


def add_calibrate(sub: argparse._SubParsersAction) -> None:
    from edgemoe.calibrate import DEFAULT_BITS, DEFAULT_MARGIN

    p = sub.add_parser(
        "calibrate",
        help="choose per-block activation formats from float's ranges; write a config file",
        description="Run the float model on images and weights, measure per block the largest |value|\n"
        "of every tensor stored in formats.act, choose per block the --bits-bit signed format that\n"
        "holds --margin times it, print the formats with the SQNR of each block's output against\n"
        "float, and write a config file (formats.block_act) that --config of every command reads.",
        epilog="examples:\n"
        "  edgemoe calibrate --out a16.toml                       # edge-moe, trained model, built-in image\n"
        "  edgemoe calibrate --preset tiny --images 8 --out tiny-a16.toml\n"
        "  edgemoe calibrate --weights seeded --bits 18 --margin 2 --out a18.toml",
        formatter_class=formatter,
    )
    add_config_args(p)
    g = p.add_argument_group("inputs")
    add_weight_args(g)
    g.add_argument("--image", metavar="FILE", help="as for infer (default: the built-in image)")
    g.add_argument(
        "--images", type=int, metavar="N", help="the first N scenes of the dataset's val split instead"
    )
    g = p.add_argument_group("formats and output")
    g.add_argument(
        "--bits", type=int, default=DEFAULT_BITS, help=f"bits of every format (default {DEFAULT_BITS})"
    )
    g.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help=f"a format holds MARGIN x the largest |value| (default {DEFAULT_MARGIN:g}; 2 = one spare bit)",
    )
    g.add_argument("--name", help="the written config's name (default <config>-a<bits>)")
    g.add_argument("--out", metavar="FILE", type=Path, required=True, help="the config file to write (.toml)")
    p.set_defaults(func=_cmd_calibrate)


def add_bench(sub: argparse._SubParsersAction) -> None:
    from edgemoe.bench import add_bench as add

    add(sub)


def add_train(sub: argparse._SubParsersAction) -> None:
    from edgemoe.train_cli import add_train as add

    add(sub)


def add_eval(sub: argparse._SubParsersAction) -> None:
    from edgemoe.train_cli import add_eval as add

    add(sub)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_config,
    add_infer,
    add_bench,
    add_perf,
    add_calibrate,
    add_train,
    add_eval,
]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="edgemoe",
        description="edgemoe: a bit-exact FPGA accelerator for multi-task Mixture-of-Experts "
        "Vision Transformers\n(M³ViT, after Edge-MoE): config, generators, golden models, back ends.",
        epilog="examples:\n"
        "  edgemoe infer                                  # edge-moe preset, trained model, built-in image\n"
        "  edgemoe config show --preset tiny\n"
        "  edgemoe config emit-hls --preset edge-moe      # -> build/edge-moe/edgemoe_config.h\n\n"
        "'edgemoe COMMAND --help' describes each command.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"edgemoe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    _add_verbose(parser)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """``-v/--verbose`` on ``parser`` and on every subcommand below it (before or after the name)."""
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="log more, and follow an error with its full details",
    )
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_verbose(child, top=False)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="[edgemoe] %(message)s", stream=sys.stderr)
    if args.verbose:  # the project's own notes (ignored files, config differences), not every library's
        logging.getLogger("edgemoe").setLevel(logging.INFO)
    try:
        return exit_status(f"edgemoe {args.command}", lambda: int(args.func(args) or 0), args.verbose)
    except KeyboardInterrupt:
        print("edgemoe: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
