"""Any weight file a user can name: a project ``.npz`` (float32, or the 16-bit stored weights of
:mod:`edgemoe.golden.stored`) or a folder of Edge-MoE ``.float32.bin`` files.

It sits above both readers (each knows only its own format), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path

from edgemoe.config import Config
from edgemoe.golden.stored import is_stored, load_stored
from edgemoe.golden.weights import BIN_SUFFIX, Loaded, WeightError, load, load_edgemoe_dir


def load_any(path: str | Path, cfg: Config, seed: int = 0) -> Loaded:
    """A project ``.npz`` file (float32, or 16-bit stored weights) or an Edge-MoE directory."""
    path = Path(path)
    if path.is_dir():
        return load_edgemoe_dir(path, cfg, seed)
    if path.name.endswith(BIN_SUFFIX):
        raise WeightError(f"{path}: one Edge-MoE tensor; give the folder that holds the {BIN_SUFFIX} files")
    if is_stored(path):
        return Loaded(load_stored(path, cfg), [])
    return Loaded(load(path, cfg), [])
