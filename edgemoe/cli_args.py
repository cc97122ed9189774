"""What every ``edgemoe`` subcommand shares: the configuration options, the help layout and
the error that means bad input (reported in one line, exit status 2).

Subcommands defined outside ``edgemoe.cli`` (``edgemoe.bench``) take them from here, so
nothing imports the command-line entry point.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgemoe.config import Config, resolve


class UserError(Exception):
    """An error in what the user asked for: reported in one line, exit status 2."""


def formatter(prog: str) -> argparse.HelpFormatter:
    """The help layout of every subcommand: examples kept as written, wide option column."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30, width=100)


def add_config_args(p: argparse.ArgumentParser) -> None:
    """``--preset`` and ``--config``, the same on every subcommand."""
    g = p.add_argument_group("configuration")
    g.add_argument("--preset", metavar="NAME", help="a built-in config: edge-moe (default) or tiny")
    g.add_argument(
        "--config",
        metavar="FILE",
        type=Path,
        help="a TOML or YAML file: a preset plus overrides (see 'edgemoe config --help')",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """The effective config of a command: ``--preset`` and/or ``--config``."""
    return resolve(args.preset, args.config)
