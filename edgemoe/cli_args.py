"""What every ``edgemoe`` subcommand shares: the configuration options, the help layout and
the error that means bad input (reported in one line, exit status 2).

Subcommands defined outside ``edgemoe.cli`` (``edgemoe.bench``) take them from here, so
nothing imports the command-line entry point.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from edgemoe.config import Config, resolve
from edgemoe.errors import EdgemoeError


class UserError(EdgemoeError):
    """An error in what the user asked for: reported in one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line too (argparse prints its usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def seed(text: str) -> int:
    """An argparse type: a seed of numpy's generators (0 or more)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed is an integer of 0 or more, got '{text}'")
    return value


def add_weight_args(g: argparse._ActionsContainer) -> None:
    """``--weights`` and ``--seed``: the model's weights, as infer, calibrate and eval take them."""
    g.add_argument(
        "--weights",
        metavar="PATH",
        help="a project weight file, a folder of Edge-MoE .float32.bin files, or 'seeded' for seeded "
        "synthetic weights (default: the trained model shipped for the preset, else seeded weights)",
    )
    g.add_argument("--seed", type=seed, default=0, help="seed of the synthetic weights (default 0)")


def formatter(prog: str) -> argparse.HelpFormatter:
    """The help layout of every subcommand: examples kept as written, wide option column."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30, width=100)


def add_config_args(p: argparse.ArgumentParser) -> None:
    """``--preset`` and ``--config``, the same on every subcommand."""
    g = p.add_argument_group("configuration")
    g.add_argument(
        "--preset",
        metavar="NAME",
        help="a built-in config: edge-moe (default), zcu102, tiny, ecp5 or zcu102-a16",
    )
    g.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="a TOML or YAML file: a preset plus overrides (see 'edgemoe config --help')",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """The effective config of a command: ``--preset`` and/or ``--config``."""
    return resolve(args.preset, args.config)
