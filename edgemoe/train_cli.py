"""The ``train`` and ``eval`` subcommands (listed in ``edgemoe.cli.SUBCOMMANDS``).

Kept apart from :mod:`edgemoe.train` and :mod:`edgemoe.evaluate` so that building the parser
imports neither torch nor the back ends.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgemoe.cli_args import UserError, add_config_args, add_weight_args, config_from_args, formatter, seed


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from edgemoe.golden.dataset import DatasetError
    from edgemoe.progress import log
    from edgemoe.train import Settings, Trainer, TrainError

    cfg = config_from_args(args)
    out = args.out if args.out is not None else Path("out") / "train" / f"{cfg.name}.npz"
    checkpoint = args.checkpoint if args.checkpoint is not None else out.with_suffix(".ckpt")
    if args.threads < 0:
        raise UserError(f"--threads must be 0 (torch's choice) or more, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    names = ("steps", "batch", "lr", "seed", "crop")
    given = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    settings = Settings(**given)
    try:
        trainer = Trainer(cfg, settings, checkpoint, resume=args.resume, steps=args.steps)
    except (TrainError, DatasetError) as e:
        raise UserError(str(e)) from None
    s = trainer.settings
    log(
        f"training config '{cfg.name}': {s.steps} steps of {s.batch} scenes, lr {s.lr:g}, seed {s.seed}"
        + (f", resumed at step {trainer.step} from {args.resume}" if args.resume else "")
        + f"; checkpoints to {checkpoint}"
    )
    trainer.run(progress=not args.no_progress)
    from edgemoe.golden.stored import save_stored

    save_stored(trainer.weights(), out, cfg, note=f"edgemoe train, {s.steps} steps of {s.batch} scenes")
    last = trainer.history[-1].get("val", {}) if trainer.history else {}
    print(
        f"trained {trainer.step} steps in {trainer.seconds / 60:.1f} min of training time; validation "
        + ", ".join(f"{k} {v:.4f}" for k, v in last.items())
    )
    print(f"wrote {out} and {checkpoint}")
    return 0


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the float M3ViT on the procedural dataset (both tasks)",
        description="Train the float M3ViT (backbone, noisy top-k gates with the load-balancing loss,\n"
        "task heads) on the procedural street scenes, on the CPU. Prints a progress bar and validation\n"
        "metrics, writes checkpoints; the result is a weight file in the accelerator's 16-bit formats.",
        epilog="examples:\n"
        "  edgemoe train --preset tiny --steps 300                  # -> out/train/tiny.npz\n"
        "  edgemoe train --steps 2000 --batch 4 --out edge.npz --checkpoint /tmp/edge.ckpt\n"
        "  edgemoe train --resume /tmp/edge.ckpt --out edge.npz     # continue where it stopped",
        formatter_class=formatter,
    )
    add_config_args(p)
    g = p.add_argument_group("training")
    g.add_argument(
        "--steps", type=int, help="optimiser steps in all (default 300; with --resume: a new total)"
    )
    g.add_argument("--batch", type=int, help="scenes per step (default 8)")
    g.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    g.add_argument("--seed", type=seed, help="seed of the initial weights and gate noise (default 0)")
    g.add_argument(
        "--crop",
        type=float,
        help="side of the picture the heads' last two stages train on per step, a fraction "
        "(default 1: all; 0.5 makes an edge-moe step about twice as fast)",
    )
    g.add_argument("--resume", type=Path, metavar="FILE", help="continue from this checkpoint")
    g.add_argument(
        "--out", type=Path, metavar="FILE", help="trained weights (default out/train/<config>.npz)"
    )
    g.add_argument(
        "--checkpoint", type=Path, metavar="FILE", help="checkpoint file (default: --out with .ckpt)"
    )
    g.add_argument(
        "--threads", type=int, default=1, metavar="N", help="torch threads (default 1; 0 = torch's)"
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar (validation lines remain)")
    p.set_defaults(func=_cmd_train)


def _cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from edgemoe import evaluate
    from edgemoe.golden.dataset import DatasetError

    cfg = config_from_args(args)
    torch.set_num_threads(max(args.threads, 1))
    try:
        evaluate.run(
            cfg,
            args.weights,
            args.backend,
            images=args.images,
            slow_images=args.slow_images,
            split=args.split,
            json_path=args.json,
            seed=args.seed,
        )
    except DatasetError as e:
        raise UserError(str(e)) from None
    return 0


def add_eval(sub: argparse._SubParsersAction) -> None:
    from edgemoe.evaluate import SLOW_BACKENDS
    from edgemoe.infer import BACKENDS

    p = sub.add_parser(
        "eval",
        help="task metrics of back ends on the procedural dataset, side by side with float",
        description="mIoU and pixel accuracy (semseg), RMSE, abs rel and δ<1.25 (depth) of each back end\n"
        "on scenes of the procedural dataset, next to float, and the fraction of routed tokens whose\n"
        "top-k experts differ from float. A table on stdout; --json writes the same as JSON.",
        epilog="examples:\n"
        "  edgemoe eval --backend float reference\n"
        "  edgemoe eval --preset tiny --backend float reference csim --images 100 --json eval.json\n\n"
        f"slow back ends ({', '.join(SLOW_BACKENDS)}) run on --slow-images scenes only.",
        formatter_class=formatter,
    )
    add_config_args(p)
    add_weight_args(p)
    p.add_argument(
        "--backend",
        nargs="+",
        default=["float", "reference"],
        choices=list(BACKENDS),
        metavar="B",
        help=f"back ends to score (default: float reference; known: {', '.join(BACKENDS)})",
    )
    p.add_argument("--images", type=int, default=50, help="scenes per back end (default 50)")
    p.add_argument("--slow-images", type=int, default=2, help="scenes for slow back ends (default 2)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="default: test")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the table as JSON")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="torch threads (default 1)")
    p.set_defaults(func=_cmd_eval)
