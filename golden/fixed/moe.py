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

The reference computes step 5 for all active experts at once, with the same result and the
same saturation counts as the literal loop of :func:`linear.linear` calls: each expert's
products run on its own weights, but every cast is elementwise, so one cast over the rows of
all queues is the per-queue casts side by side; and the only order-dependent step, the
saturating accumulation, runs per token over its experts in ascending order (``top_k`` rounds).
:func:`edgemoe.golden.fixed.loops.moe_loops` is the literal loop, tested equal to this one
(tests/golden/test_fixed_loops.py).

Twins: ``hls/include/moe.h`` (tests/hls/test_hls_moe.py); ``hw/rtl/moe_router.sv`` with
``hw/rtl/topk_insert.sv`` (sim/moe_router), the experts on ``hw/rtl/linear_unit.sv``;
tests/golden/test_fixed_moe.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgemoe.config import Config, FixedFormat
from edgemoe.golden.fixed import nonlinear
from edgemoe.golden.fixed.core import (
    FixedPointError,
    SaturationLog,
    exact_in_one_product,
    fit,
    requantize_inplace,
)
from edgemoe.golden.fixed.linear import (
    Epilogue,
    LinearWeights,
    accumulate,
    add_bias,
    check_accumulator,
    check_range,
    linear,
    prepare_weights,
)

ExpertWeights = np.ndarray | Sequence[LinearWeights]  # [E, out, in] raw, or one prepared matrix per expert


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
    gate_w_raw: np.ndarray | LinearWeights,
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


def _shape(arr: ExpertWeights | LinearWeights) -> tuple[int, ...]:
    if isinstance(arr, LinearWeights):
        return arr.raw.shape
    if isinstance(arr, np.ndarray) or not all(isinstance(a, LinearWeights) for a in arr):
        return np.shape(arr)
    shapes = {a.raw.shape for a in arr}
    return (len(arr), *shapes.pop()) if len(shapes) == 1 else (len(arr), -1)


def _expert(w: ExpertWeights, e: int, fmt: FixedFormat, what: str) -> LinearWeights:
    """Expert ``e``'s matrix of ``w``, prepared for the linear unit (range-checked)."""
    return w[e] if isinstance(w[e], LinearWeights) else prepare_weights(w[e], fmt, what)


def _expert_accumulators(
    x: np.ndarray, queues: list[tuple[int, int]], w: ExpertWeights, fmt: FixedFormat, what: str
) -> np.ndarray:
    """The rows of every queue stacked (expert-major) in ``x``, ``queues`` = (expert, row count):
    ``acc[rows of e] = x[rows of e]·W_eᵀ`` exact."""
    experts = [_expert(w, e, fmt, f"{what}[{e}]") for e, _ in queues]
    starts = np.cumsum([0] + [n for _, n in queues])
    K = x.shape[1]
    a_max = max(int(x.max()), -int(x.min())) if x.size else 0
    if not all(exact_in_one_product(a_max, K, lw.operand) for lw in experts):
        spans = zip(starts[:-1], starts[1:], experts, strict=True)
        return np.concatenate([accumulate(x[a:b], lw) for a, b, lw in spans])
    # Every expert's product is exact in float64 (core.matmul_exact's bound): one conversion
    # of all rows each way, the products written straight into one buffer.
    xf = x.astype(np.float64)
    acc = np.empty((len(x), experts[0].raw.shape[0]), dtype=np.float64)
    for a, b, lw in zip(starts[:-1], starts[1:], experts, strict=True):
        np.matmul(xf[a:b], lw.operand.as_float, out=acc[a:b])
    return acc.astype(np.int64)


def moe(
    x_raw: np.ndarray,
    gate_w_raw: np.ndarray | LinearWeights,
    w1_raw: ExpertWeights,
    b1_raw: np.ndarray,
    w2_raw: ExpertWeights,
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

    The weight matrices may also be given prepared once (:func:`linear.prepare_weights`): the
    gate as one :class:`linear.LinearWeights`, ``w1_raw`` and ``w2_raw`` as one per expert.

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
        if _shape(arr) != shape:
            raise FixedPointError(f"{name}: {what} shape {_shape(arr)}, expected {shape}")
    if x_raw.ndim != 2 or x_raw.shape[1] != D:
        raise FixedPointError(f"{name}: input shape {x_raw.shape}, expected [N, {D}]")
    routing = route(x_raw, gate_w_raw, cfg, log, name)
    queues = [(e, routing.queues[e]) for e in routing.active]
    routing.fetched.extend(routing.active)
    if not queues:
        return np.zeros_like(x_raw), routing
    # Rows of all queues side by side, expert-major: their expert and token.
    row_expert = np.concatenate([np.full(len(q), e) for e, q in queues])
    row_token = np.concatenate([q for _, q in queues])
    wf, bf, act = f.linear_weight.fmt, f.bias.fmt, f.act
    b1 = check_range(b1_raw, bf, f"{name}.fc1: bias")
    b2 = check_range(b2_raw, bf, f"{name}.fc2: bias")
    # fc1 with Epilogue.BIAS_GELU (linear.linear steps 1-4)
    check_accumulator(act.fmt, wf, bf, D, f"{name}.fc1")
    sizes = [(e, len(q)) for e, q in queues]
    acc = _expert_accumulators(x_raw[row_token], sizes, w1_raw, wf, f"{name}.fc1: weights")
    acc, frac = add_bias(acc, act.fmt.frac_bits + wf.frac_bits, b1[row_expert], bf)
    h = requantize_inplace(acc, frac, act, f"{name}.fc1", log)
    h = nonlinear.gelu(h, act, f.gelu_delta, cfg.nonlinear)
    # fc2 with Epilogue.EXPERT_ACCUMULATE: cast, scale by the gate score, cast
    check_accumulator(act.fmt, wf, bf, He, f"{name}.fc2")
    acc = _expert_accumulators(h, sizes, w2_raw, wf, f"{name}.fc2: weights")  # h is in queue order
    acc, frac = add_bias(acc, act.fmt.frac_bits + wf.frac_bits, b2[row_expert], bf)
    y = requantize_inplace(acc, frac, act, f"{name}.fc2", log)
    gs = f.gate_score.fmt
    if act.fmt.bits + gs.bits > 63:
        raise FixedPointError(f"{name}.fc2: a {act.fmt} × {gs} product exceeds 63 bits")
    y *= routing.scores[row_token, row_expert][:, None]
    scaled = requantize_inplace(y, act.fmt.frac_bits + gs.frac_bits, act, f"{name}.fc2.scale", log)
    # The saturating accumulation into the zeroed buffer: per token, its experts in ascending
    # order. A stable sort by token keeps each token's rows in expert order (rows are expert-major).
    N = x_raw.shape[0]
    by_token = np.argsort(row_token, kind="stable")
    if not np.array_equal(row_token[by_token], np.repeat(np.arange(N), m.top_k)):
        raise FixedPointError(f"{name}: every token must be queued for exactly top_k = {m.top_k} experts")
    scaled = scaled[by_token].reshape(N, m.top_k, D)
    out = np.zeros_like(x_raw)
    for j in range(m.top_k):
        out += scaled[:, j]
        out = fit(out, act.fmt, act.overflow, f"{name}.fc2.accumulate", log)
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
