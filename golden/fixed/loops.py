"""Loop-form twins of the fast fixed-point kernels: the same numbers in the kernels' loop nests.

The fast models vectorise the loops away (attention rotates whole score matrices and knows
every running maximum before its sweep; the MoE runs all experts' rows through one cast). The
functions here are the contract written the way the hardware runs it, one scalar at a time, to
be read next to the HLS and RTL sources:

* :func:`attention_loops` — ``hls/include/attention.h`` and ``hw/rtl/attention_unit.sv``
  (with ``hw/rtl/softmax_state.sv``); fast twin :func:`edgemoe.golden.fixed.attention.attention`;
* :func:`moe_loops` — ``hls/include/moe.h`` and ``hw/rtl/moe_router.sv`` (the experts run on
  ``hw/rtl/linear_unit.sv``); fast twin :func:`edgemoe.golden.fixed.moe.moe`.

They share the fast models' primitives (casts, exp, reciprocal, softmax, the linear unit), so
what they add is the order of operations. ``tests/golden/test_fixed_loops.py`` holds each equal to its
fast twin bit for bit. They are slow (Python loops): small configs only.
"""

from __future__ import annotations

import numpy as np

from edgemoe.config import Cast, Config, Epilogue, FixedFormat
from edgemoe.golden.fixed import nonlinear
from edgemoe.golden.fixed.attention import score_scale
from edgemoe.golden.fixed.core import fit, shift_round
from edgemoe.golden.fixed.linear import linear


def _cast(value: int, frac_bits: int, cast: Cast) -> int:
    """One exact Python integer with ``frac_bits`` fraction bits, cast to ``cast``."""
    return int(
        fit(
            np.int64(shift_round(value, frac_bits - cast.fmt.frac_bits, cast.rounding)),
            cast.fmt,
            cast.overflow,
        )
    )


def attention_loops(q_raw: np.ndarray, k_raw: np.ndarray, v_raw: np.ndarray, cfg: Config) -> np.ndarray:
    """Reordered attention with the single-pass softmax, loop by loop (see the module docstring).

    Args:
        q_raw, k_raw, v_raw: [N, D] raw values in ``formats.act``, heads side by side.
        cfg: the config.

    Returns:
        [N, D] raw output in ``formats.act``, equal to ``attention.attention``.
    """
    f, nl = cfg.formats, cfg.nonlinear
    N, D = q_raw.shape
    H, P = cfg.model.heads, cfg.hw.attn_p
    HD = D // H
    q, k, v = (np.asarray(a).astype(object) for a in (q_raw, k_raw, v_raw))  # exact Python integers
    scale_raw, scale_fmt = score_scale(cfg)
    score_frac = 2 * f.act.fmt.frac_bits + scale_fmt.frac_bits
    fs, fe = f.softmax_sum.fmt.frac_bits, f.exp_out.fmt.frac_bits
    diff_fmt = FixedFormat(f.attn_score.fmt.bits + 1, f.attn_score.fmt.int_bits + 1)  # s - m

    def exp(x: int) -> int:  # x <= 0
        return int(nonlinear.exp_neg(np.array([x]), diff_fmt, nl, f.exp_out)[0])

    out = np.zeros((N, D), dtype=np.int64)
    for h in range(H):  # attention_heads
        dims = range(h * HD, (h + 1) * HD)
        for g0 in range(0, N, P):  # attention_groups: slot j holds query g0 + j
            slots = range(min(P, N - g0))
            s = [[0] * N for _ in slots]  # the scores of each slot, by key
            run_max = [0] * len(slots)  # m
            run_sum = [0] * len(slots)  # l, in formats.softmax_sum
            # pass 1: at step t slot j reads key (t + j) mod N
            for t in range(N):  # attention_qk_steps
                for j in slots:  # attention_qk_update
                    i, key = g0 + j, (t + j) % N
                    dot = sum(q[i, d] * k[key, d] for d in dims)
                    s[j][key] = score = _cast(dot * scale_raw, score_frac, f.attn_score)
                    if t == 0 or score > run_max[j]:  # a new max: l = cast(l * exp(m - s) + 1), m = s
                        e = exp(run_max[j] - score if t else 0)
                        run_sum[j] = _cast(run_sum[j] * e + (1 << (fs + fe)), fs + fe, f.softmax_sum)
                        run_max[j] = score
                    else:  # l = cast(l + exp(s - m))
                        e = exp(score - run_max[j])
                        run_sum[j] = _cast((run_sum[j] << fe) + (e << fs), fs + fe, f.softmax_sum)
            # 1/l per slot (attention_recip)
            recip = nonlinear.reciprocal(
                np.array(run_sum, dtype=np.int64), f.softmax_sum.fmt, nl, f.softmax_recip
            )
            # pass 2: p = cast(exp(s - m) * r), out = cast(sum_k p_k v_k), the sum exact
            acc = [[0] * HD for _ in slots]
            fr = f.softmax_recip.fmt.frac_bits
            for t in range(N):  # attention_av_steps
                for j in slots:
                    key = (t + j) % N
                    p = _cast(exp(s[j][key] - run_max[j]) * int(recip[j]), fe + fr, f.attn_prob)
                    for c, d in enumerate(dims):
                        acc[j][c] += p * v[key, d]
            for j in slots:  # attention_store
                for c, d in enumerate(dims):
                    out[g0 + j, d] = _cast(acc[j][c], f.attn_prob.fmt.frac_bits + f.act.fmt.frac_bits, f.act)
    return out


def moe_loops(
    x_raw: np.ndarray,
    gate_w_raw: np.ndarray,
    w1_raw: np.ndarray,
    b1_raw: np.ndarray,
    w2_raw: np.ndarray,
    b2_raw: np.ndarray,
    cfg: Config,
) -> np.ndarray:
    """The MoE layer loop by loop: gate, softmax, top-k, queues, then each active expert.

    Args:
        x_raw: tokens [N, D] in ``formats.act``.
        gate_w_raw: the task's gate [E, D]; w1_raw, b1_raw: [E, He, D], [E, He];
            w2_raw, b2_raw: [E, D, He], [E, D] (raw, the formats of ``moe.moe``).
        cfg: the config.

    Returns:
        [N, D] raw output in ``formats.act``, equal to ``moe.moe``.
    """
    f, m = cfg.formats, cfg.model
    N = x_raw.shape[0]
    E, K = m.experts, m.top_k
    # 1-2. gate logits through the linear unit (no bias), softmax over the experts per token
    logits = linear(
        x_raw, f.act.fmt, gate_w_raw, f.linear_weight.fmt, None, None, f.act, Epilogue.BIAS, cfg=cfg
    )
    scores = nonlinear.softmax(logits, f.act.fmt, cfg, f.gate_score)
    # 3-4. top-k by insertion (a better score goes first; a tie keeps the lower expert first),
    # then each token joins the queue of every expert it chose, in token order
    queues: list[list[int]] = [[] for _ in range(E)]
    for i in range(N):
        best: list[int] = []
        for e in range(E):
            pos = len(best)
            while pos > 0 and scores[i, e] > scores[i, best[pos - 1]]:
                pos -= 1
            best.insert(pos, e)
            del best[K:]
        for e in best:
            queues[e].append(i)
    # 5. active experts in ascending order: fc1 with GELU, then fc2 scaled by the gate score and
    # added, saturating, into the token's row (the unit's ExpertAccumulate epilogue)
    y = np.zeros((N, m.dim), dtype=np.int64)
    for e in range(E):
        rows = np.array(queues[e], dtype=np.int64)
        if rows.size == 0:  # an idle expert: its weights are never read
            continue
        h = linear(
            x_raw[rows],
            f.act.fmt,
            w1_raw[e],
            f.linear_weight.fmt,
            b1_raw[e],
            f.bias.fmt,
            f.act,
            Epilogue.BIAS_GELU,
            cfg=cfg,
        )
        y = linear(
            h,
            f.act.fmt,
            w2_raw[e],
            f.linear_weight.fmt,
            b2_raw[e],
            f.bias.fmt,
            f.act,
            Epilogue.EXPERT_ACCUMULATE,
            cfg=cfg,
            scores_raw=scores[rows, e],
            acc_raw=y,
            rows=rows,
        )
    return y
