"""Reordered multi-head attention with a single-pass softmax, in fixed point and in a float64 twin.

The schedule (Edge-MoE's reordered attention) is part of the numeric contract, because the
running softmax sum is rounded after every key and so depends on the order keys arrive in:

- Query rows are processed in groups of ``P = cfg.hw.attn_p``: group ``g`` holds queries
  ``g·P + j`` for slots ``j = 0..P-1`` (the last group is partial when P does not divide N;
  its empty slots idle).
- The P slots of a group share one stream of key rows. At step ``t = 0..N-1`` slot ``j``
  reads key ``(t + j) mod N``: slot j starts its sweep at key j, counted from key 0 of the
  sequence (not from the group's first query), and wraps around. The key rows move through
  the slots like a shift register (the row slot j reads at step t is the row slot j+1 read at
  step t-1), so one new K row enters per step whatever P is.
- Per (query, head) a running max ``m`` and a running sum ``l`` (``formats.softmax_sum``) are
  updated per key in that rotated order, with ``s`` the scaled score:
  on the first key ``m = s, l = 1``; then if ``s > m``: ``l ← cast_sum(l·exp(m − s) + 1)``,
  ``m ← s``; otherwise ``l ← cast_sum(l + exp(s − m))``. exp is :func:`nonlinear.exp_neg`
  into ``formats.exp_out``; each update is computed at full precision and cast once, as the
  assignment ``l = l * e + 1`` to an ``ap_fixed`` variable does.
- Then ``r = 1/l`` by :func:`nonlinear.reciprocal` into ``formats.softmax_recip``, and the
  A·V pass: ``p = cast_prob(exp(s − m) · r)`` (``formats.attn_prob``) and
  ``out = cast_act(Σ_k p_k · v_k)`` with the sum exact (so its order does not matter).

Scores: ``s = cast_score((q·k) · scale)`` where ``q·k`` is exact and ``scale`` is the constant
``head_dim**-0.5`` held in ``formats.attn_scale`` (exact when it is a power of two, e.g. 1/8 for
head_dim 64). q, k, v are in ``formats.act``; head ``h`` of a [N, D] tensor is on dims
``h·head_dim … (h+1)·head_dim − 1``.

The implementation is vectorised over heads and queries; the loop over the N key steps is
the only sequential part, and it carries only the running sums (the running max, and so every
exp argument, is known in advance from a cumulative max in the rotated order).
:func:`edgemoe.golden.fixed.loops.attention_loops` is the same computation in the kernels' loop
nest, tested equal to this one (tests/golden/test_fixed_loops.py).

Twins: ``hls/include/attention.h`` (tests/hls/test_hls_attention.py); ``hw/rtl/attention_unit.sv``
with ``hw/rtl/softmax_state.sv`` (sim/attention_unit, sim/softmax_state);
tests/golden/test_fixed_attention.py.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgemoe.config import Cast, Config, FixedFormat, Overflow, Rounding
from edgemoe.golden.fixed import nonlinear
from edgemoe.golden.fixed.core import (
    FixedPointError,
    SaturationLog,
    fit,
    matmul_cast,
    matmul_exact,
    quantize,
    requantize_inplace,
    shift_round,
)


def key_order(tokens: int, p: int) -> np.ndarray:
    """The rotated key schedule: ``order[i, t]`` is the key query ``i`` reads at step ``t``.

    Query ``i`` sits in slot ``j = i mod p`` of its group and reads key ``(t + j) mod tokens``.
    """
    if not 1 <= p <= tokens:
        raise FixedPointError(f"attention: P = {p} must be in 1..tokens ({tokens})")
    slot = np.arange(tokens) % p
    return (slot[:, None] + np.arange(tokens)[None, :]) % tokens


def score_scale(cfg: Config) -> tuple[int, FixedFormat]:
    """The raw value and format of the score scale ``head_dim**-0.5`` (``formats.attn_scale``)."""
    return _score_scale(cfg.model.head_dim, cfg.formats.attn_scale)


@functools.lru_cache(maxsize=64)
def _score_scale(head_dim: int, cast: Cast) -> tuple[int, FixedFormat]:
    return int(quantize(np.array(head_dim**-0.5), cast, "attn_scale")), cast.fmt


def _split_heads(x: np.ndarray, heads: int, name: str) -> np.ndarray:
    """[N, D] -> [H, N, D/H]."""
    if x.ndim != 2 or x.shape[1] % heads:
        raise FixedPointError(
            f"attention: {name} must be [tokens, dim] with dim divisible by {heads}, got shape {x.shape}"
        )
    n, d = x.shape
    return x.reshape(n, heads, d // heads).transpose(1, 0, 2)


def _merge_heads(x: np.ndarray) -> np.ndarray:
    """[H, N, Dh] -> [N, H·Dh]."""
    h, n, dh = x.shape
    return x.transpose(1, 0, 2).reshape(n, h * dh)


def _bits(x: np.ndarray) -> int:
    return max(int(x.max()), -int(x.min())).bit_length() if x.size else 0


def _per_head_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact ``a[h] @ b[h]`` for every head, [H, M, K] @ [H, K, L] -> [H, M, L] (core.matmul_exact)."""
    return matmul_exact(a, b)


def _exact_scores(
    q: np.ndarray,
    k: np.ndarray,
    frac: int,
    scale_raw: int,
    scale_frac: int,
    cast: Cast,
    name: str,
    log: SaturationLog | None,
) -> np.ndarray:
    """cast((q·kᵀ) · scale) per head with the dot product and the product by the scale exact.

    q, k: [H, N, Dh] raw with ``frac`` fraction bits each. The power-of-two part of the scale is
    a shift; the odd part a multiplication. When the exact accumulator could pass 62 bits the
    products are formed with Python integers (slow, exact, only for extreme operands).
    """
    odd, shift = scale_raw, 0
    while odd and odd % 2 == 0:
        odd //= 2
        shift += 1
    acc_frac = 2 * frac + scale_frac - shift
    dh = q.shape[-1]
    need = _bits(q) + _bits(k) + max(dh - 1, 0).bit_length() + int(odd).bit_length()
    if need <= 62:
        # (q·kᵀ)·odd as q·(k·odd): one exact product, cast from one float64 product
        kt = k.transpose(0, 2, 1)
        return matmul_cast(q, kt if odd == 1 else kt * np.int64(odd), acc_frac, cast, name, log)
    qo, ko = q.astype(object), k.astype(object)
    acc = np.stack([qo[h].dot(ko[h].T) for h in range(q.shape[0])]) * odd
    acc = shift_round(acc, acc_frac - cast.fmt.frac_bits, cast.rounding)  # Python integers: exact
    lo, hi = cast.fmt.min_raw, cast.fmt.max_raw
    clipped = np.minimum(np.maximum(acc, lo), hi)
    if cast.overflow is Overflow.WRAP:
        span = 1 << cast.fmt.bits
        wrapped = (acc - cast.fmt.min_raw) % span + cast.fmt.min_raw if cast.fmt.signed else acc % span
        if log is not None:
            log.wrapped[name] += int(np.count_nonzero(wrapped != acc))
            log.add(name, 0, acc.size)
        return wrapped.astype(np.int64)
    if log is not None:
        log.add(name, int(np.count_nonzero(clipped != acc)), acc.size)
    return clipped.astype(np.int64)


_CHUNK = 8192  # elements per call of an elementwise function: its temporaries stay in cache


def _chunked(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``fn(x)`` for an elementwise ``fn`` on a 1-D ``x``, evaluated in cache-sized pieces."""
    if x.size <= _CHUNK:
        return fn(x)
    return np.concatenate([fn(x[i : i + _CHUNK]) for i in range(0, x.size, _CHUNK)])


def _rotate(x: np.ndarray, p: int) -> np.ndarray:
    """[H, N, N] in natural key order -> step-major rotated [N (step), H, N (query)]:
    ``out[t, h, i] = x[h, i, (t + i mod p) mod N]``.

    The queries of slot ``j`` (``i = j, j + p, ...``) read the keys rotated by ``j``: two slice
    copies per slot (keys ``j..N-1``, then the wrapped ``0..j-1``), no index arrays."""
    H, N, _ = x.shape
    out = np.empty((N, H, N), dtype=x.dtype)
    for j in range(min(p, N)):
        src = x[:, j::p, :].transpose(2, 0, 1)  # [N (key), H, queries of slot j]
        dst = out[:, :, j::p]
        dst[: N - j] = src[j:]
        dst[N - j :] = src[:j]
    return out


def _unrotate(y: np.ndarray, p: int) -> np.ndarray:
    """The inverse of :func:`_rotate`: [N (step), H, N] back to natural key order [H, N, N]."""
    N, H, _ = y.shape
    out = np.empty((H, N, N), dtype=y.dtype)
    for j in range(min(p, N)):
        src = y[:, :, j::p].transpose(1, 2, 0)  # [H, queries of slot j, N (step)]
        dst = out[:, j::p, :]
        dst[:, :, j:] = src[:, :, : N - j]
        dst[:, :, :j] = src[:, :, N - j :]
    return out


def _sweep(
    is_new: np.ndarray,
    e_step: np.ndarray,
    cast: Cast,
    fe: int,
    name: str,
    log: SaturationLog | None,
    clamp: bool = False,
) -> np.ndarray:
    """:func:`_sweep_steps` on ``[H, N, steps]`` arrays (steps last)."""
    return _sweep_steps(is_new.transpose(2, 0, 1), e_step.transpose(2, 0, 1), cast, fe, name, log, clamp)


def _sweep_steps(
    is_new: np.ndarray,
    e_step: np.ndarray,
    cast: Cast,
    fe: int,
    name: str,
    log: SaturationLog | None,
    clamp: bool = False,
) -> np.ndarray:
    """The running sums after the rotated key sweep: ``is_new``, ``e_step`` are [steps, H, N].

    Step t: ``l ← cast(l·e_t + 1)`` where ``is_new`` (a new running max; the first step with
    ``l = 0`` gives 1), ``l ← cast(l + e_t)`` otherwise, ``cast`` = ``formats.softmax_sum``.
    Both are one multiply-add at fs + fe fraction bits (``l·e + 2^(fs+fe)`` or
    ``l·2^fe + e·2^fs``) with the cast's rounding constant folded into the addend.

    When every e <= 1 and N·(1 + lsb) fits the format, no step can saturate (each step adds at
    most 1 plus one lsb of rounding), so the loop skips the clamp (unless ``clamp``); otherwise
    it clamps and counts at every step.
    """
    fs = cast.fmt.frac_bits
    T, H, N = e_step.shape
    if cast.fmt.bits + _bits(e_step) + 2 > 62:
        raise FixedPointError(f"{name}: {cast.fmt} times exp_out values does not fit a 62-bit product")
    safe = (
        cast.overflow is Overflow.SATURATE
        and (e_step.size == 0 or int(e_step.max()) <= 1 << fe)
        and T * ((1 << fs) + 1) <= cast.fmt.max_raw
    )
    half = np.int64(1 << (fe - 1)) if cast.rounding is Rounding.ROUND_HALF_UP and fe > 0 else np.int64(0)
    shift = np.int64(fe)
    mult = np.where(is_new, e_step, np.int64(1) << np.int64(fe))  # [steps, H, N], one step contiguous
    add = e_step << np.int64(fs)
    add[is_new] = np.int64(1) << np.int64(fs + fe)
    add += half
    l_acc = np.zeros((H, N), dtype=np.int64)
    if safe and not clamp:
        for t in range(T):
            np.multiply(l_acc, mult[t], out=l_acc)
            np.add(l_acc, add[t], out=l_acc)
            np.right_shift(l_acc, shift, out=l_acc)
        if log is not None:
            log.add(name, 0, H * N * T)
        return l_acc
    for t in range(T):
        l_acc = fit((l_acc * mult[t] + add[t]) >> shift, cast.fmt, cast.overflow, name, log)
    return l_acc


@dataclass
class AttentionTrace:
    """Intermediate values of one attention call (raw integers, per head), for back-end debugging.

    Attributes:
        score: [H, N, N] scaled scores, natural key order (``formats.attn_score``).
        m: [H, N] final running max (equal to the row max of ``score``).
        l: [H, N] final running sum after the rotated sweep (``formats.softmax_sum``).
        recip: [H, N] ``1/l`` (``formats.softmax_recip``).
        prob: [H, N, N] probabilities, natural key order (``formats.attn_prob``).
        out: [N, D] output (``formats.act``).
    """

    score: np.ndarray
    m: np.ndarray
    l: np.ndarray  # noqa: E741 - the name the algorithm uses
    recip: np.ndarray
    prob: np.ndarray
    out: np.ndarray


def attention(
    q_raw: np.ndarray,
    k_raw: np.ndarray,
    v_raw: np.ndarray,
    cfg: Config,
    log: SaturationLog | None = None,
    name: str = "attn",
    trace: bool = False,
) -> np.ndarray | AttentionTrace:
    """Reordered multi-head attention in fixed point, in the hardware's order (module docstring).

    Args:
        q_raw, k_raw, v_raw: [N, D] raw values in ``cfg.formats.act``, heads side by side.
        cfg: the config (heads, ``hw.attn_p``, formats, nonlinear parameters).
        log: saturation counts go here as ``{name}.score``, ``.softmax_sum``, ``.prob`` and
            ``.out`` (exp and 1/l are at most 1.0, which their formats hold).
        name: prefix of the counted tensors.
        trace: return an :class:`AttentionTrace` of the intermediates instead of the output.

    Returns:
        [N, D] raw output in ``cfg.formats.act`` (or the trace).
    """
    f, nl, heads = cfg.formats, cfg.nonlinear, cfg.model.heads
    q = _split_heads(np.asarray(q_raw, dtype=np.int64), heads, "q")
    k = _split_heads(np.asarray(k_raw, dtype=np.int64), heads, "k")
    v = _split_heads(np.asarray(v_raw, dtype=np.int64), heads, "v")
    if not q.shape == k.shape == v.shape:
        raise FixedPointError(
            f"attention: q, k, v shapes differ: {q_raw.shape}, {k_raw.shape}, {v_raw.shape}"
        )
    H, N, _ = q.shape
    act = f.act.fmt
    scale_raw, scale_fmt = score_scale(cfg)
    s = _exact_scores(q, k, act.frac_bits, scale_raw, scale_fmt.frac_bits, f.attn_score, f"{name}.score", log)

    # Rotated key order (query i in slot j = i mod P reads key (t + j) mod N at step t), held
    # step-major [step, head, query], and the running max it implies, known before the sweep.
    P = cfg.hw.attn_p
    if not 1 <= P <= N:
        raise FixedPointError(f"{name}: hw.attn_p = {P} must be in 1..tokens ({N})")
    s_rot = _rotate(s, P)  # [N (step), H, N (query)]
    run_max = np.maximum.accumulate(s_rot, axis=0)
    m = run_max[-1]
    # The running max before step t is run_max[t - 1] (at the first key: the key itself).
    # exp arguments (all <= 0): per step m_prev - s on a new max (s > m_prev), s - m_prev
    # otherwise, i.e. -|s - m_prev|; and for the A·V pass s - m. They coincide after the last
    # new max, so the A·V pass needs its own exp only before it (`other`).
    diff_fmt = FixedFormat(f.attn_score.fmt.bits + 1, f.attn_score.fmt.int_bits + 1)
    diff = np.empty_like(s_rot)  # s - m_prev
    diff[0] = 0
    np.subtract(s_rot[1:], run_max[:-1], out=diff[1:])
    is_new = diff > 0
    is_new[0] = True
    before_last_max = np.empty_like(is_new)  # m_prev != m
    before_last_max[0] = True
    np.not_equal(run_max[:-1], m, out=before_last_max[1:])
    before_last_max |= is_new
    other = np.flatnonzero(before_last_max)

    def exp(x: np.ndarray) -> np.ndarray:  # exp(-|x|); |x| is a new array, which exp overwrites
        return nonlinear.exp_neg_magnitude(np.abs(x), diff_fmt, nl, f.exp_out)

    e_step = _chunked(exp, diff.ravel()).reshape(diff.shape)

    # Sequential sweep over the N key steps, vectorised over heads and queries.
    l_acc = _sweep_steps(
        is_new, e_step, f.softmax_sum, fe=f.exp_out.fmt.frac_bits, name=f"{name}.softmax_sum", log=log
    )
    recip = nonlinear.reciprocal(l_acc, f.softmax_sum.fmt, nl, f.softmax_recip)

    # A·V pass: p = exp(s - m) · (1/l), out = Σ p·v (exact, so the key order does not matter).
    # exp(s - m) is the sweep's exp except before the last new max; e_step is free to take it.
    e_fin = e_step
    m_other = m.ravel().take(other % m.size)  # m [H, N] broadcasts over the steps
    m_other -= s_rot.ravel().take(other)  # m - s >= 0
    e_fin.ravel()[other] = _chunked(exp, m_other)
    e_fin *= recip
    prob_rot = requantize_inplace(
        e_fin, f.exp_out.fmt.frac_bits + f.softmax_recip.fmt.frac_bits, f.attn_prob, f"{name}.prob", log
    )
    prob = _unrotate(prob_rot, P)
    pf = f.attn_prob.fmt.frac_bits
    acc = _per_head_matmul(prob, v)
    out = _merge_heads(requantize_inplace(acc, pf + act.frac_bits, f.act, f"{name}.out", log))
    if trace:
        return AttentionTrace(score=s, m=m, l=l_acc, recip=recip, prob=prob, out=out)
    return out


def attention_float(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, p: int, scale: float
) -> np.ndarray:
    """The same reordered single-pass algorithm in float64, without any cast.

    Args:
        q, k, v: [N, D] float, heads side by side.
        heads: number of heads.
        p: query slots per group (the rotated key order).
        scale: score scale (head_dim**-0.5 in the model).

    Returns:
        [N, D] float64; equal to ordinary softmax attention up to float64 rounding.
    """
    qh = _split_heads(np.asarray(q, dtype=np.float64), heads, "q")
    kh = _split_heads(np.asarray(k, dtype=np.float64), heads, "k")
    vh = _split_heads(np.asarray(v, dtype=np.float64), heads, "v")
    H, N, _ = qh.shape
    s = (qh @ kh.transpose(0, 2, 1)) * scale
    order = key_order(N, p)
    s_rot = np.take_along_axis(s, np.broadcast_to(order, s.shape), axis=2)
    m = np.full((H, N), -np.inf)
    l_acc = np.zeros((H, N))
    for t in range(N):
        s_t = s_rot[..., t]
        new = s_t > m
        l_acc = np.where(
            new,
            l_acc * np.exp(np.where(new, m - s_t, 0.0)) + 1.0,
            l_acc + np.exp(np.where(new, 0.0, s_t - m)),
        )
        m = np.maximum(m, s_t)
    prob = np.exp(s - m[..., None]) * (1.0 / l_acc)[..., None]
    return _merge_heads(prob @ vh)


def softmax_attention_float(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, scale: float
) -> np.ndarray:
    """Ordinary two-pass softmax attention in float64 (the textbook formula), [N, D] in and out."""
    qh = _split_heads(np.asarray(q, dtype=np.float64), heads, "q")
    kh = _split_heads(np.asarray(k, dtype=np.float64), heads, "k")
    vh = _split_heads(np.asarray(v, dtype=np.float64), heads, "v")
    s = (qh @ kh.transpose(0, 2, 1)) * scale
    s = s - s.max(axis=-1, keepdims=True)
    e = np.exp(s)
    return _merge_heads((e / e.sum(axis=-1, keepdims=True)) @ vh)


__all__ = [
    "AttentionTrace",
    "attention",
    "attention_float",
    "key_order",
    "score_scale",
    "softmax_attention_float",
]
