"""Mixture of experts with patch reordering, in the hardware's order of operations.

1. gate: the linear unit without bias (``formats.linear_weight``, cast to ``formats.act``);
2. ``nonlinear.softmax`` over all experts into ``formats.gate_score``;
3. top-k per token on the raw scores, best first, ties to the lower expert index;
4. per-expert queues of token indices in token order (patch reordering), and the list of
   active experts (non-empty queue), ascending;
5. for each active expert in ascending order (its weights fetched once), its queued tokens in
   queue order go through the linear unit: fc1 with ``Epilogue.BIAS_GELU``, fc2 with
   ``Epilogue.EXPERT_ACCUMULATE`` (scale by the token's gate score, saturating add into the
   token's row of the output buffer, which starts at zero). Experts without tokens are never
   fetched or run.

Saturating adds are not associative, so the expert order (ascending) and the queue order
(ascending token) are part of the contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from edgemoe.config import Config
from edgemoe.golden.fixed import nonlinear
from edgemoe.golden.fixed.core import FixedPointError, SaturationLog
from edgemoe.golden.fixed.linear import Epilogue, check_range, linear


@dataclass
class MoERouting:
    """Routing decisions of one MoE layer for one image.

    Attributes:
        logits: gate outputs ``[N, E]`` in ``formats.act``.
        scores: softmax over experts ``[N, E]`` in ``formats.gate_score``.
        experts: selected experts ``[N, top_k]``, best first (ties → lower index).
        topk_scores: their raw scores ``[N, top_k]`` (not renormalised).
        queues: per expert, the token indices routed to it, ascending (``E`` arrays).
        active: experts with a non-empty queue, ascending.
        fetched: experts whose weights were read, in the order they were read.
    """

    logits: np.ndarray
    scores: np.ndarray
    experts: np.ndarray
    topk_scores: np.ndarray
    queues: list[np.ndarray]
    active: list[int]
    fetched: list[int] = field(default_factory=list)


def top_k(scores_raw: np.ndarray, k: int) -> np.ndarray:
    """Indices ``[..., k]`` of the k largest raw scores, best first; equal scores → lower index first."""
    return np.argsort(-np.asarray(scores_raw, dtype=np.int64), axis=-1, kind="stable")[..., :k]


def route(
    x_raw: np.ndarray,
    gate_w_raw: np.ndarray,
    cfg: Config,
    log: SaturationLog | None = None,
    name: str = "moe",
) -> MoERouting:
    """Gate, softmax, top-k and the per-expert queues for tokens ``x [N, D]`` (steps 1–4)."""
    f, m = cfg.formats, cfg.model
    N = x_raw.shape[0]
    logits = linear(
        x_raw,
        f.act.fmt,
        gate_w_raw,
        f.linear_weight.fmt,
        None,
        None,
        f.act,
        Epilogue.BIAS,
        cfg=cfg,
        log=log,
        name=f"{name}.gate",
    )
    scores = nonlinear.softmax(logits, f.act.fmt, cfg, f.gate_score, axis=-1)
    experts = top_k(scores, m.top_k)
    topk_scores = np.take_along_axis(scores, experts, axis=-1)
    chosen = np.zeros((N, m.experts), dtype=bool)
    np.put_along_axis(chosen, experts, True, axis=-1)
    queues = [np.flatnonzero(chosen[:, e]) for e in range(m.experts)]
    active = [e for e in range(m.experts) if queues[e].size]
    return MoERouting(logits, scores, experts, topk_scores, queues, active)


def moe(
    x_raw: np.ndarray,
    gate_w_raw: np.ndarray,
    w1_raw: np.ndarray,
    b1_raw: np.ndarray,
    w2_raw: np.ndarray,
    b2_raw: np.ndarray,
    cfg: Config,
    log: SaturationLog | None = None,
    name: str = "moe",
) -> tuple[np.ndarray, MoERouting]:
    """The MoE layer on tokens ``x [N, D]`` (``formats.act``), in the order of the module docstring.

    Args:
        x_raw: tokens ``[N, D]`` (the output of norm2).
        gate_w_raw: the task's gate ``[E, D]`` (row e scores expert e), ``formats.linear_weight``.
        w1_raw, b1_raw: ``[E, He, D]`` and ``[E, He]`` (fc1 / Edge-MoE's htoh4), weights
            ``formats.linear_weight``, bias ``formats.bias``.
        w2_raw, b2_raw: ``[E, D, He]`` and ``[E, D]`` (fc2 / h4toh), same formats.
        log: saturation counts under ``name.gate``, ``name.fc1``, ``name.fc2``,
            ``name.fc2.scale``, ``name.fc2.accumulate`` (summed over experts).

    Returns:
        The MoE output ``[N, D]`` in ``formats.act`` and the :class:`MoERouting`.
    """
    f, m = cfg.formats, cfg.model
    x_raw = check_range(x_raw, f.act.fmt, f"{name}: input")
    E, He, D = m.experts, m.expert_hidden, m.dim
    for what, arr, shape in (
        ("gate weights", gate_w_raw, (E, D)),
        ("fc1 weights", w1_raw, (E, He, D)),
        ("fc1 bias", b1_raw, (E, He)),
        ("fc2 weights", w2_raw, (E, D, He)),
        ("fc2 bias", b2_raw, (E, D)),
    ):
        if np.shape(arr) != shape:
            raise FixedPointError(f"{name}: {what} shape {np.shape(arr)}, expected {shape}")
    if x_raw.ndim != 2 or x_raw.shape[1] != D:
        raise FixedPointError(f"{name}: input shape {x_raw.shape}, expected [N, {D}]")
    routing = route(x_raw, gate_w_raw, cfg, log, name)
    out = np.zeros_like(x_raw)
    for e in routing.active:
        q = routing.queues[e]
        routing.fetched.append(e)
        w1, b1, w2, b2 = w1_raw[e], b1_raw[e], w2_raw[e], b2_raw[e]
        h = linear(
            x_raw[q], f.act.fmt, w1, f.linear_weight.fmt, b1, f.bias.fmt, f.act, Epilogue.BIAS_GELU,
            cfg=cfg, log=log, name=f"{name}.fc1",
        )  # fmt: skip
        out = linear(
            h, f.act.fmt, w2, f.linear_weight.fmt, b2, f.bias.fmt, f.act, Epilogue.EXPERT_ACCUMULATE,
            cfg=cfg, log=log, name=f"{name}.fc2", scores_raw=routing.scores[q, e], acc_raw=out, rows=q,
        )  # fmt: skip
    return out, routing


def moe_from_weights(
    x_raw: np.ndarray,
    qweights: Mapping[str, np.ndarray],
    block: int,
    task: int,
    cfg: Config,
    log: SaturationLog | None = None,
    name: str | None = None,
) -> tuple[np.ndarray, MoERouting]:
    """:func:`moe` of block ``block`` for ``task``, reading raw weights by their project names."""
    p = f"l{block}_"
    return moe(
        x_raw,
        qweights[f"{p}w_gate_T_task{task}"],
        qweights[p + "htoh4_weight"],
        qweights[p + "htoh4_bias"],
        qweights[p + "h4toh_weight"],
        qweights[p + "h4toh_bias"],
        cfg,
        log,
        name or f"l{block}.moe",
    )
