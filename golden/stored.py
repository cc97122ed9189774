"""Weights stored compactly in the accelerator's own 16-bit formats (the trained models' files).

One compressed ``.npz``: each backbone tensor as its raw integers in its storage format
(``edgemoe.golden.fixed.quantize_weights.storage_cast``: 16-bit ``patch_weight``,
``linear_weight``, ``bias``, ``attn_bias``, ``norm``, ``pos_embed``), split into a high and a low
byte plane (the high bytes of small weights repeat, and compress well apart); each task-head
tensor (float on the host) as float16. ``__manifest__`` holds the format, the config, every
tensor's storage format and a free-text note (how the weights were made).

Reading gives float32 weights whose backbone values are exactly the stored fixed-point values,
so the float model and every fixed-point back end see the same weights: their difference is
the datapath's alone.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from edgemoe.config import Config
from edgemoe.golden.weights import (
    MANIFEST_KEY,
    WeightError,
    Weights,
    check,
    config_differences,
    expected_shapes,
)

FORMAT_NAME = "edgemoe-weights-16bit"
FORMAT_VERSION = 1
TRAINED_DIR = Path(__file__).resolve().parent / "trained"


def save_stored(weights: Weights, path: str | Path, cfg: Config, note: str = "") -> Path:
    """Write ``weights`` in the 16-bit formats; WeightError if a backbone value saturates its format."""
    from edgemoe.golden.fixed.quantize_weights import is_head, quantize_weights

    check(weights, cfg, where=f"save {path}")
    path = Path(path)
    if path.suffix != ".npz":
        raise WeightError(f"{path}: stored weights are a .npz file")
    q = quantize_weights(weights, cfg)
    if q.saturated():
        raise WeightError(f"{path}: {q.report()}")
    arrays: dict[str, np.ndarray] = {}
    formats: dict[str, dict[str, int | bool]] = {}
    for name in expected_shapes(cfg):
        if is_head(name):
            half = weights[name].astype(np.float16)
            if not np.isfinite(half).all():
                raise WeightError(f"{path}: head tensor {name} exceeds the float16 range")
            arrays[name] = half
            continue
        fmt = q.casts[name].fmt
        assert fmt.bits <= 16, f"{name}: storage format {fmt} is wider than 16 bits"
        bits = (q.raw[name].astype(np.int64) & 0xFFFF).astype(np.uint16)  # two's complement if signed
        arrays[f"{name}.hi"] = (bits >> 8).astype(np.uint8)
        arrays[f"{name}.lo"] = (bits & 0xFF).astype(np.uint8)
        formats[name] = {"bits": fmt.bits, "int_bits": fmt.int_bits, "signed": fmt.signed}
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "formats": formats,
        "note": note,
    }
    arrays[MANIFEST_KEY] = np.array(json.dumps(manifest, sort_keys=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        np.savez_compressed(f, **arrays)
    tmp.replace(path)
    return path


def is_stored(path: str | Path) -> bool:
    """Whether ``path`` is a file written by :func:`save_stored` (a file that is not, readable or
    not, is left to the loader that says what is wrong with it)."""
    if not zipfile.is_zipfile(path):  # np.load would return a .npy array, or raise on other bytes
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return MANIFEST_KEY in z.files and json.loads(str(z[MANIFEST_KEY])).get("format") == FORMAT_NAME
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def load_stored(path: str | Path, cfg: Config) -> Weights:
    """Float32 weights from a file of :func:`save_stored` for a config of the same model shape."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise WeightError(f"{path}: not a readable .npz weight file ({e})") from None
    manifest = json.loads(str(data.pop(MANIFEST_KEY)))
    if manifest.get("format") != FORMAT_NAME or manifest.get("version") != FORMAT_VERSION:
        raise WeightError(f"{path}: not stored weights version {FORMAT_VERSION} ({FORMAT_NAME})")
    diffs = [d for d in config_differences(manifest["config"], cfg) if d.startswith("model.")]
    if diffs:
        raise WeightError(
            f"{path}: saved for a different model than config '{cfg.name}': " + "; ".join(diffs)
        )
    weights: Weights = {}
    for name in expected_shapes(cfg):
        if name in manifest["formats"]:
            f = manifest["formats"][name]
            try:
                bits = (data[f"{name}.hi"].astype(np.int64) << 8) | data[f"{name}.lo"].astype(np.int64)
            except KeyError:
                raise WeightError(f"{path}: tensor {name} is missing") from None
            if f["signed"]:
                bits = np.where(bits >= 1 << 15, bits - (1 << 16), bits)
            weights[name] = (bits * 2.0 ** -(f["bits"] - f["int_bits"])).astype(np.float32)
        elif name in data:
            weights[name] = data[name].astype(np.float32)
    check(weights, cfg, where=str(path))
    return weights


def trained_path(cfg: Config) -> Path | None:
    """The shipped trained model of ``cfg``'s model shape, if there is one: the file named after
    the config first, else any shipped model of the same shape (presets that differ only in
    their hardware share one)."""
    named = TRAINED_DIR / f"{cfg.name}.npz"
    for path in [named, *sorted(set(TRAINED_DIR.glob("*.npz")) - {named})]:
        if not path.is_file():
            continue
        with np.load(path, allow_pickle=False) as z:
            saved = json.loads(str(z[MANIFEST_KEY]))["config"]
        if not any(d.startswith("model.") for d in config_differences(saved, cfg)):
            return path
    return None
