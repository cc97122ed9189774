"""Weights of the M³ViT: names and shapes, seeded synthetic weights and the two file formats.

A set of weights is a ``dict[str, np.ndarray]`` of float32 arrays keyed by Edge-MoE's file
names without ``.float32.bin`` (``patch_embed_weight``, ``l0_qkv_weight``, ...; the task heads,
which Edge-MoE never had, under ``head{t}_...``). See :func:`expected_shapes`.

Formats:

- the project's own: one ``.npz`` file holding every tensor plus ``__manifest__``, a JSON
  record of names, shapes, dtype and the config (:func:`save`, :func:`load`);
- Edge-MoE's directory of raw little-endian row-major float32 files, one
  ``<name>.float32.bin`` per tensor (:func:`save_edgemoe_dir`, :func:`load_edgemoe_dir`).
  Missing expert matrices and head weights are filled from :func:`synthetic` with a notice.
"""

from __future__ import annotations

import json
import logging
import math
import re
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edgemoe.config import Config
from edgemoe.errors import LISTED, EdgemoeError, listing, reason
from edgemoe.golden.heads import head_shapes

log = logging.getLogger(__name__)

MANIFEST_KEY = "__manifest__"
FORMAT_NAME = "edgemoe-weights"
FORMAT_VERSION = 1
BIN_SUFFIX = ".float32.bin"

Weights = dict[str, np.ndarray]


class WeightError(EdgemoeError, ValueError):
    """Weights that do not fit the config or cannot be read."""


class Loaded(NamedTuple):
    """Weights read from files, and the names that were filled from :func:`synthetic`."""

    weights: Weights
    filled: list[str]


def backbone_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every backbone tensor (what the accelerator holds), by name, in a fixed order."""
    m = cfg.model
    d, p, e = m.dim, m.patch, m.experts
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embed_weight": (d, m.in_chans, p, p),
        "patch_embed_bias": (d,),
        "pos_embed": (m.tokens, d),
    }
    for i in range(m.depth):
        b = f"l{i}_"
        shapes.update(
            {
                b + "norm1_weight": (d,),
                b + "norm1_bias": (d,),
                b + "qkv_weight": (3 * d, d),
                b + "qkv_bias": (3 * d,),
                b + "attn_proj_weight": (d, d),
                b + "attn_proj_bias": (d,),
                b + "norm2_weight": (d,),
                b + "norm2_bias": (d,),
            }
        )
        if m.is_moe(i):
            for t in range(len(m.tasks)):
                shapes[f"{b}w_gate_T_task{t}"] = (e, d)
            shapes[b + "htoh4_weight"] = (e, m.expert_hidden, d)
            shapes[b + "htoh4_bias"] = (e, m.expert_hidden)
            shapes[b + "h4toh_weight"] = (e, d, m.expert_hidden)
            shapes[b + "h4toh_bias"] = (e, d)
        else:
            shapes[b + "fc1_weight"] = (m.mlp_hidden, d)
            shapes[b + "fc1_bias"] = (m.mlp_hidden,)
            shapes[b + "fc2_weight"] = (d, m.mlp_hidden)
            shapes[b + "fc2_bias"] = (d,)
    return shapes


def all_head_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every task-head tensor (host side, float only), by name."""
    shapes: dict[str, tuple[int, ...]] = {}
    for t in range(len(cfg.model.tasks)):
        shapes.update(head_shapes(cfg.model, t))
    return shapes


def expected_shapes(cfg: Config) -> dict[str, tuple[int, ...]]:
    """Every tensor of the model (backbone, then heads), by name."""
    return {**backbone_shapes(cfg), **all_head_shapes(cfg)}


def fillable(cfg: Config) -> list[str]:
    """Names a loader may fill from :func:`synthetic` when missing: expert matrices and heads.

    Edge-MoE's published weights lack the expert matrices (too large for its archive) and it
    has no task heads; everything else must be present.
    """
    experts = [f"l{i}_{k}" for i in cfg.model.moe_blocks for k in ("htoh4_weight", "h4toh_weight")]
    return sorted(experts) + list(all_head_shapes(cfg))


def _rng(seed: int, name: str) -> np.random.Generator:
    """One PCG64 stream per (seed, tensor name): adding a tensor leaves the others unchanged."""
    return np.random.Generator(np.random.PCG64([seed, zlib.crc32(name.encode())]))


def _synthetic_tensor(name: str, shape: tuple[int, ...], cfg: Config, seed: int) -> np.ndarray:
    """A tensor whose scale is typical of a trained ViT of this shape (see :func:`synthetic`)."""
    rng = _rng(seed, name)
    m = cfg.model

    def normal(std: float, mean: float = 0.0) -> np.ndarray:
        return mean + std * rng.standard_normal(shape)

    match = re.fullmatch(r"(?:l|head)\d+_(.+)", name)
    kind = match.group(1) if match else name  # the name without its block/head prefix
    if name == "pos_embed":
        values = normal(0.75)
    elif kind.endswith("running_var"):
        values = rng.uniform(0.5, 2.0, shape)
    elif kind.endswith("running_mean"):
        values = normal(0.1)
    elif kind.startswith(("norm", "bn")) and kind.endswith("weight"):
        values = normal(0.1, mean=1.0)  # LayerNorm / BatchNorm gammas near 1
    elif kind.startswith("w_gate_T_task"):
        # logits of a unit-variance token have std ~1.5: several experts win, none always
        values = normal(1.5 / math.sqrt(m.dim))
    elif kind.startswith("conv"):
        values = normal(math.sqrt(2.0 / math.prod(shape[1:])))  # ReLU follows: He scale
    elif kind.endswith("weight"):
        # [out, in] linear, [E, out, in] experts, [D, C, p, p] patch / [Ct, Ch, 1, 1] 1x1 conv
        fan_in = math.prod(shape[1:]) if len(shape) == 4 else shape[-1]
        values = normal(1.0 / math.sqrt(fan_in))
        if name == "patch_embed_weight":
            # trained patch filters answer edges and colour, hardly flat brightness: without
            # this every token would share one large component and route to the same experts
            values -= values.mean(axis=(1, 2, 3), keepdims=True)
        elif kind == "qkv_weight":
            values[: 2 * m.dim] *= 2.0  # Q and K: attention as peaked as a trained ViT's
    elif kind.endswith("bias"):
        values = normal(0.02)
    else:
        raise AssertionError(f"no synthetic recipe for weight '{name}'")
    return values.astype(np.float32)


def synthetic(cfg: Config, seed: int = 0) -> Weights:
    """Seeded weights for any config, identical on every machine (numpy PCG64, float64 draws).

    Scales follow a trained ViT: linear weights ~ N(0, 1/fan_in) (Q and K rows doubled so
    attention is peaked, patch filters with zero mean so flat brightness does not give every
    token one shared component), LayerNorm and BatchNorm gammas ~ N(1, 0.1²), biases
    ~ N(0, 0.02²), position embeddings ~ N(0, 0.75²), gates with logits of standard deviation
    ~1.5 on unit-variance tokens, head convolutions at He scale. On the default image the
    tokens entering the MoE blocks are about as dissimilar as a trained model's (mean cosine
    0.1-0.5) and reach most experts.

    Args:
        cfg: the configuration (only ``cfg.model`` matters).
        seed: base seed; each tensor draws from its own stream keyed by (seed, name).
    """
    return {name: _synthetic_tensor(name, shape, cfg, seed) for name, shape in expected_shapes(cfg).items()}


def _left_out(problems: list[str], *shown: list[str]) -> list[str]:
    """``problems`` when a message's :func:`listing` of the ``shown`` lists left some out, else []."""
    return problems if any(len(s) > LISTED for s in shown) else []


def check(weights: Weights, cfg: Config, where: str = "weights") -> None:
    """Raise WeightError naming missing, unexpected, misshapen or non-finite tensors.

    The message names the first few of each kind; ``details`` lists every one.
    """
    expected = expected_shapes(cfg)
    errors: list[str] = []
    missing = [f"{n} {list(expected[n])}" for n in expected if n not in weights]
    unexpected = sorted(set(weights) - set(expected))
    for name, shape in expected.items():
        if name not in weights:
            continue
        a = weights[name]
        if not isinstance(a, np.ndarray):
            errors.append(f"{name}: expected a numpy array, got {type(a).__name__}")
            continue
        if tuple(a.shape) != shape:
            errors.append(
                f"{name}: shape {list(a.shape)} contradicts config '{cfg.name}' shape {list(shape)}"
            )
            continue
        if a.dtype != np.float32:
            errors.append(f"{name}: dtype {a.dtype}, expected float32")
            continue
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        if bad:
            errors.append(f"{name}: {bad} NaN/inf values")
    problems = [f"missing {m}" for m in missing] + [f"unexpected {n}" for n in unexpected] + errors
    if problems:
        parts = [f"{len(missing)} missing: {listing(missing)}"] if missing else []
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected for config '{cfg.name}': {listing(unexpected)}")
        parts += [listing(errors, sep="; ")] if errors else []
        raise WeightError(
            f"{where}: " + "; ".join(parts), details=_left_out(problems, missing, unexpected, errors)
        )


# -- the project's own format ------------------------------------------------------------------


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def config_differences(saved: dict[str, Any], cfg: Config) -> list[str]:
    """Settings in which a saved config dict and ``cfg`` differ, as ``key: saved -> requested``."""
    a, b = _flatten(saved), _flatten(cfg.to_dict())
    return [
        f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def save(weights: Weights, path: str | Path, cfg: Config) -> Path:
    """Write ``weights`` (checked against ``cfg``) to one ``.npz`` with a JSON manifest."""
    check(weights, cfg, where=f"save {path}")
    path = Path(path)
    if path.suffix != ".npz":
        raise WeightError(f"{path}: the project weight format is a .npz file")
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(expected_shapes(cfg))
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "dtype": "float32",
        "tensors": {n: list(weights[n].shape) for n in names},
        "config": cfg.to_dict(),
    }
    arrays = {n: np.ascontiguousarray(weights[n]) for n in names}
    arrays[MANIFEST_KEY] = np.array(json.dumps(manifest, sort_keys=True))
    with path.open("wb") as f:
        np.savez(f, **arrays)
    return path


def _read_npz(path: Path) -> dict[str, Any]:
    """Every member of a .npz file; WeightError for anything that is not a readable one."""
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise WeightError(f"{path}: one {z.dtype} array, not a .npz weight file")
        with z:
            return {k: z[k] for k in z.files}
    except WeightError:
        raise
    except Exception as e:  # corrupt bytes surface as a dozen types from zipfile, zlib and numpy
        raise WeightError(f"{path}: not a readable .npz weight file ({reason(e)})") from None


def _manifest(path: Path, raw: Any) -> dict[str, Any]:
    """The manifest :func:`save` writes, checked for its format, version, config and tensor shapes."""
    try:
        if not isinstance(raw, np.ndarray) or raw.dtype.kind != "U" or raw.shape != ():
            raise ValueError(f"a {type(raw).__name__}, not a JSON string")
        manifest = json.loads(str(raw))
        if not isinstance(manifest, dict):
            raise ValueError(f"JSON {type(manifest).__name__}, not an object")
    except ValueError as e:
        raise WeightError(f"{path}: {MANIFEST_KEY} is not a manifest ({e})") from None
    if manifest.get("format") != FORMAT_NAME or manifest.get("version") != FORMAT_VERSION:
        raise WeightError(
            f"{path}: format {manifest.get('format')!r} version {manifest.get('version')!r}, "
            f"expected {FORMAT_NAME!r} version {FORMAT_VERSION}"
        )
    tensors = manifest.get("tensors")
    if not isinstance(manifest.get("config"), dict) or not isinstance(tensors, dict):
        raise WeightError(f"{path}: {MANIFEST_KEY} lacks its 'config' or 'tensors' table")
    return manifest


def load(path: str | Path, cfg: Config) -> Weights:
    """Read a project ``.npz`` written by :func:`save` for a config with the same model shape.

    A manifest whose model shape differs from ``cfg`` is an error listing every difference;
    other differences (name, formats, hardware) do not change the weights and are logged.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightError(f"weight file {path} does not exist")
    data = _read_npz(path)
    if MANIFEST_KEY not in data:
        raise WeightError(f"{path}: no {MANIFEST_KEY} entry; not written by edgemoe.golden.weights.save")
    manifest = _manifest(path, data.pop(MANIFEST_KEY))
    diffs = config_differences(manifest["config"], cfg)
    model_diffs = [d for d in diffs if d.startswith("model.")]
    if model_diffs:
        raise WeightError(
            f"{path}: saved for a different model than config '{cfg.name}' (saved -> requested): "
            + listing(model_diffs, sep="; "),
            details=_left_out(model_diffs, model_diffs),
        )
    if diffs:
        log.info("%s: config differs outside the model shape: %s", path, "; ".join(diffs))
    for name, shape in manifest["tensors"].items():
        if isinstance(data.get(name), np.ndarray) and list(data[name].shape) != shape:
            raise WeightError(
                f"{path}: {name} has shape {list(data[name].shape)} but its manifest says {shape}"
            )
    check(data, cfg, where=str(path))
    return data


# -- Edge-MoE's float32 .bin directory ----------------------------------------------------------


def save_edgemoe_dir(weights: Weights, path: str | Path, cfg: Config, include_heads: bool = True) -> Path:
    """Write one raw little-endian row-major ``<name>.float32.bin`` per tensor into ``path``.

    Args:
        weights: a complete set of weights for ``cfg``.
        path: directory (created if needed).
        cfg: the configuration the weights belong to.
        include_heads: also write the task heads (Edge-MoE's own loader ignores them).
    """
    check(weights, cfg, where=f"save_edgemoe_dir {path}")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    names = expected_shapes(cfg) if include_heads else backbone_shapes(cfg)
    for name in names:
        np.ascontiguousarray(weights[name], dtype="<f4").tofile(path / f"{name}{BIN_SUFFIX}")
    return path


def load_edgemoe_dir(path: str | Path, cfg: Config, seed: int = 0) -> Loaded:
    """Read an Edge-MoE float32 ``.bin`` directory for ``cfg``.

    Missing expert matrices and head weights are filled from ``synthetic(cfg, seed)``; a warning
    names them and :attr:`Loaded.filled` lists them. Any other missing file, a file of the wrong
    size, or a NaN/inf value is a WeightError naming every offending file.
    """
    path = Path(path)
    if not path.is_dir():
        raise WeightError(f"Edge-MoE weight directory {path} does not exist")
    expected = expected_shapes(cfg)
    may_fill = set(fillable(cfg))
    weights: Weights = {}
    missing: list[str] = []
    to_fill: list[str] = []
    errors: list[str] = []
    for name, shape in expected.items():
        file = path / f"{name}{BIN_SUFFIX}"
        if not file.is_file():
            (to_fill if name in may_fill else missing).append(name)
            continue
        want = 4 * math.prod(shape)
        size = file.stat().st_size
        if size != want:
            what = "truncated" if size < want else "oversized"
            errors.append(
                f"{file.name} is {what}: expected {want} bytes (float32 {list(shape)}), got {size} bytes"
            )
            continue
        a = np.fromfile(file, dtype="<f4").astype(np.float32).reshape(shape)
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            errors.append(f"tensor {name} ({file.name}) holds {bad} NaN/inf values")
            continue
        weights[name] = a
    if missing or errors:
        files = [f"{n}{BIN_SUFFIX} {list(expected[n])}" for n in missing]
        present = len(expected) - len(missing) - len(to_fill)
        parts = [f"{len(missing)} missing file(s): {listing(files)}"] if missing else []
        parts += [listing(errors, sep="; ")] if errors else []
        raise WeightError(
            f"{path}: {present} of {len(expected)} weight files of config '{cfg.name}' present; "
            + "; ".join(parts),
            details=_left_out([f"missing {f}" for f in files] + errors, files, errors),
        )
    if to_fill:
        seeded = synthetic(cfg, seed)
        for name in to_fill:
            weights[name] = seeded[name]
        heads = [n for n in to_fill if n.startswith("head")]
        experts = [n for n in to_fill if not n.startswith("head")]
        parts = []
        if experts:
            parts.append(f"expert matrices {', '.join(experts)}")
        if heads:
            parts.append(f"{len(heads)} task-head tensors")
        log.warning("%s: filled %s from synthetic weights (seed %d)", path, " and ".join(parts), seed)
    known = {f"{n}{BIN_SUFFIX}" for n in expected}
    ignored = sorted(f.name for f in path.glob(f"*{BIN_SUFFIX}") if f.name not in known)
    if ignored:
        log.info("%s: ignored files that are not weights of '%s': %s", path, cfg.name, ", ".join(ignored))
    return Loaded({n: weights[n] for n in expected}, to_fill)
