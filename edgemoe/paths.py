"""Where the project's files and build outputs lie.

Every tool writes under ``build/``; a folder of one config is named by :func:`config_dir_name`.
"""

from __future__ import annotations

from pathlib import Path

from edgemoe.config import PRESETS, Config

REPO = Path(__file__).resolve().parents[1]
"""The checkout: ``hls/``, ``hw/`` and ``build/`` are read and written relative to it."""
BUILD = REPO / "build"


def config_dir_name(cfg: Config) -> str:
    """``<name>`` for an unchanged preset, ``<name>-<config id>`` for any other config.

    Two configs share a build folder only when they are equal, so a cached build is never
    reused for a config it was not built for.
    """
    return cfg.name if PRESETS.get(cfg.name) == cfg else f"{cfg.name}-{cfg.config_id:08x}"
