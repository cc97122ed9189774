"""Float weights → raw integers in their storage formats, with a per-tensor saturation report.

Each backbone tensor has one storage Cast of ``cfg.formats`` (:func:`storage_cast`):

=====================================================  ==========================
tensor                                                 Cast
=====================================================  ==========================
``patch_embed_weight``                                 ``patch_weight``
``pos_embed``                                          ``pos_embed``
``l{i}_qkv_bias``, ``l{i}_attn_proj_bias``             ``attn_bias``
``patch_embed_bias`` and every other ``*_bias``        ``bias``
``l{i}_norm{1,2}_weight`` / ``_bias``                  ``norm``
every other ``*_weight``, ``l{i}_w_gate_T_task{t}``    ``linear_weight``
=====================================================  ==========================

Values outside a format saturate to its bounds and are counted per tensor (never a wrap);
NaN or inf is an error naming the tensor. Task-head tensors (``head{t}_*``) stay float: the
heads run on the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from edgemoe.config import BiasKind, Cast, Config
from edgemoe.golden.fixed.core import FixedPointError, SaturationLog, quantize
from edgemoe.golden.fixed.linear import LinearWeights, prepare_weights

_NORM = re.compile(r"^l\d+_norm[12]_(weight|bias)$")
_ATTN_BIAS = re.compile(r"^l\d+_(qkv|attn_proj)_bias$")
_GATE = re.compile(r"^l\d+_w_gate_T_task\d+$")
_LINEAR = re.compile(r"^l\d+_(qkv|attn_proj|fc1|fc2|htoh4|h4toh)_weight$")
_BIAS = re.compile(r"^l\d+_(fc1|fc2|htoh4|h4toh)_bias$")


def is_head(name: str) -> bool:
    """Task-head tensors run in float on the host."""
    return name.startswith("head")


def storage_cast(name: str, cfg: Config) -> Cast:
    """The storage Cast of backbone tensor ``name``; FixedPointError for a name it does not know."""
    f = cfg.formats
    if name == "patch_embed_weight":
        return f.patch_weight
    if name == "pos_embed":
        return f.pos_embed
    if name == "patch_embed_bias" or _BIAS.match(name):
        return f.bias
    if _ATTN_BIAS.match(name):
        return f.attn_bias
    if _NORM.match(name):
        return f.norm
    if _LINEAR.match(name) or _GATE.match(name):
        return f.linear_weight
    raise FixedPointError(
        f"weight '{name}' has no storage format: expected a backbone tensor name "
        "(patch_embed_*, pos_embed, l<i>_<layer>_weight/bias, l<i>_w_gate_T_task<t>) or head<t>_*"
    )


def bias_kind(name: str | None, cfg: Config) -> BiasKind:
    """The linear engine's code for the bias tensor ``name`` by its storage format (None: no bias)."""
    if name is None:
        return BiasKind.NONE
    cast = storage_cast(name, cfg)
    if cast is cfg.formats.attn_bias:
        return BiasKind.ATTN_BIAS
    if cast is cfg.formats.bias:
        return BiasKind.BIAS
    raise FixedPointError(
        f"'{name}' is not the bias of a linear layer (its storage format is not bias or attn_bias)"
    )


@dataclass
class QuantizedWeights:
    """Raw backbone weights and how they were stored.

    Attributes:
        raw: tensor name → int64 raw values in its storage format (shapes as the float tensors).
        casts: tensor name → its storage Cast.
        log: per-tensor saturation counts (``log.counts[name] = [saturated, total]``).
        max_abs: tensor name → largest |float value| seen.
        skipped: float tensors left for the host (task heads).
        prepared: linear-layer weights prepared once for the linear unit (:meth:`linear_weights`).

    The ``raw`` arrays are read-only once a forward pass has used them: the prepared copies
    are not refreshed.
    """

    raw: dict[str, np.ndarray]
    casts: dict[str, Cast]
    log: SaturationLog
    max_abs: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    prepared: dict[tuple[str, int | None], LinearWeights] = field(default_factory=dict, repr=False)

    def linear_weights(self, name: str, expert: int | None = None) -> LinearWeights:
        """Weight tensor ``name`` ``[out, in]`` (or expert ``expert`` of a stacked ``[E, out, in]``
        tensor) range-checked and prepared for :func:`linear.linear` on first use, then reused."""
        key = (name, expert)
        if key not in self.prepared:
            raw = self.raw[name] if expert is None else self.raw[name][expert]
            what = name if expert is None else f"{name}[{expert}]"
            self.prepared[key] = prepare_weights(raw, self.casts[name].fmt, what)
        return self.prepared[key]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.raw[name]

    def __contains__(self, name: object) -> bool:
        return name in self.raw

    def keys(self):  # noqa: ANN201 - dict view
        return self.raw.keys()

    def saturated(self) -> dict[str, int]:
        """Tensors with at least one saturated value, and how many."""
        return self.log.saturated()

    def report(self) -> str:
        """One line per tensor that saturated (count, total, largest |value| and the format's range)."""
        sat = self.saturated()
        if not sat:
            return f"weights: {len(self.raw)} tensors stored, no value saturated"
        lines = [f"weights: {len(sat)} of {len(self.raw)} tensors saturated:"]
        for name in sorted(sat):
            fmt = self.casts[name].fmt
            total = self.log.counts[name][1]
            lines.append(
                f"  {name}: {sat[name]} of {total} values outside {fmt} "
                f"[{fmt.min_value:g}, {fmt.max_value:g}] (max |w| {self.max_abs[name]:g})"
            )
        return "\n".join(lines)


def quantize_weights(
    weights: Mapping[str, np.ndarray], cfg: Config, log: SaturationLog | None = None
) -> QuantizedWeights:
    """Quantize every backbone tensor of ``weights`` to its storage Cast (see the module table).

    Args:
        weights: tensor name → float array (interfaces.md names; head tensors are skipped).
        cfg: the config whose ``formats`` say how each tensor is stored.
        log: where saturation counts go (a new log if None); also available as ``.log``.
    """
    log = SaturationLog() if log is None else log
    out = QuantizedWeights({}, {}, log)
    for name in sorted(weights):
        if is_head(name):
            out.skipped.append(name)
            continue
        cast = storage_cast(name, cfg)
        value = np.asarray(weights[name], dtype=np.float64)
        out.raw[name] = quantize(value, cast, name, log)  # non-finite → FixedPointError naming it
        out.casts[name] = cast
        out.max_abs[name] = float(np.abs(value).max()) if value.size else 0.0
    return out
