"""The unified linear unit and the patch embedding expressed through it.

One MAC array runs every linear layer of the accelerator (patch embedding, q/k/v, attention
projection, dense MLP, gate, expert MLPs). It consumes the weight matrix ``W [out, in]`` in
tiles of ``hw.linear_in × hw.linear_out`` and keeps one wide accumulator per (token, output);
an epilogue turns a finished accumulator into the output stream:

- ``Epilogue.BIAS``: ``cast_out(x·Wᵀ + b)``;
- ``Epilogue.BIAS_GELU``: ``gelu(cast_out(x·Wᵀ + b))``, GELU on the cast value (nonlinear.gelu);
- ``Epilogue.EXPERT_ACCUMULATE``: the expert output ``e = cast_out(x·Wᵀ + b)`` is scaled by the
  token's gate score, ``cast_act(p · e)``, and added with saturation into the output buffer row
  of its token, tokens in queue order.

Tile order (the contract for the weight stream): output tiles outer, input tiles inner
(:func:`tile_order`); within a tile every token of the input streams through the array. The
last tile of a dimension that is not a multiple of the tile size is zero-padded. Products and
sums are exact (the accumulator is wide enough for ``in`` products), so the result does not
depend on the tile order; :func:`accumulate_tiled` runs the tiles literally in that order and
the tests check it against the one-shot exact matmul.

Twins: ``hls/include/linear.h`` and ``hls/include/patch_embed.h`` (tests/hls/test_hls_linear.py,
tests/hls/test_hls_patch_embed.py); ``hw/rtl/linear_unit.sv`` (sim/linear_unit);
tests/golden/test_fixed_linear.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemoe.config import Cast, Config, Epilogue, FixedFormat, Hardware
from edgemoe.golden.fixed import nonlinear
from edgemoe.golden.fixed.core import (
    ExactOperand,
    FixedPointError,
    SaturationLog,
    exact_operand,
    fit,
    matmul_exact,
    quantize,
    requantize,
    requantize_inplace,
)


def check_range(raw: np.ndarray, fmt: FixedFormat, what: str) -> np.ndarray:
    """``raw`` as int64 if every value lies in ``fmt``; FixedPointError naming ``what`` otherwise."""
    raw = np.asarray(raw)
    if raw.dtype.kind not in "iu":
        raise FixedPointError(f"{what}: raw values must be integers, got dtype {raw.dtype}")
    raw = raw.astype(np.int64, copy=False)
    if raw.size and (raw.min() < fmt.min_raw or raw.max() > fmt.max_raw):
        raise FixedPointError(
            f"{what}: raw values [{int(raw.min())}, {int(raw.max())}] lie outside {fmt} "
            f"[{fmt.min_raw}, {fmt.max_raw}]"
        )
    return raw


def tile_order(out_features: int, in_features: int, hw: Hardware) -> list[tuple[int, int]]:
    """Offsets ``(o0, i0)`` of the weight tiles ``W[o0:o0+linear_out, i0:i0+linear_in]`` in stream order.

    Output tiles are outer and input tiles inner: the accumulators of one output tile are
    complete after its last input tile, and the epilogue runs on them then.
    """
    return [
        (o0, i0) for o0 in range(0, out_features, hw.linear_out) for i0 in range(0, in_features, hw.linear_in)
    ]


def accumulate_tiled(x_raw: np.ndarray, w_raw: np.ndarray, hw: Hardware) -> np.ndarray:
    """``x·Wᵀ`` accumulated tile by tile in :func:`tile_order` (exact int64; slow, for checking)."""
    x_raw = np.asarray(x_raw, dtype=np.int64)
    w_raw = np.asarray(w_raw, dtype=np.int64)
    M, K = w_raw.shape
    acc = np.zeros(x_raw.shape[:-1] + (M,), dtype=np.int64)
    for o0, i0 in tile_order(M, K, hw):
        tile = w_raw[o0 : o0 + hw.linear_out, i0 : i0 + hw.linear_in]
        acc[..., o0 : o0 + hw.linear_out] += x_raw[..., i0 : i0 + hw.linear_in] @ tile.T
    return acc


@dataclass(frozen=True, eq=False)
class LinearWeights:
    """The weights ``W [out, in]`` of one layer, range-checked once and prepared for the exact
    matmul (the float64 copy of ``Wᵀ``, core.ExactOperand). :func:`linear` takes it in place of
    ``w_raw`` and then skips that work; a model prepares each layer once
    (``QuantizedWeights.linear_weights``). ``raw`` must not be modified afterwards.
    """

    raw: np.ndarray  # [out, in] int64 inside fmt
    fmt: FixedFormat
    operand: ExactOperand  # Wᵀ [in, out] for core.matmul_exact


def prepare_weights(w_raw: np.ndarray, w_fmt: FixedFormat, name: str = "linear") -> LinearWeights:
    """``W [out, in]`` checked against ``w_fmt`` (FixedPointError naming ``name``) and prepared."""
    raw = check_range(w_raw, w_fmt, f"{name}: weights")
    if raw.ndim != 2:
        raise FixedPointError(f"{name}: weights must be [out, in], got shape {raw.shape}")
    return LinearWeights(raw, w_fmt, exact_operand(raw.T))


def _prepared(w_raw: np.ndarray | LinearWeights, w_fmt: FixedFormat, name: str) -> LinearWeights:
    if isinstance(w_raw, LinearWeights):
        if w_raw.fmt != w_fmt:
            raise FixedPointError(f"{name}: weights prepared in {w_raw.fmt}, but {w_fmt} was given")
        return w_raw
    return prepare_weights(w_raw, w_fmt, name)


def accumulate(x_raw: np.ndarray, w_raw: np.ndarray | LinearWeights) -> np.ndarray:
    """The unit's wide accumulators ``x·Wᵀ`` ``[..., out]``, exact (core.matmul_exact)."""
    x_raw = np.asarray(x_raw, dtype=np.int64)
    if isinstance(w_raw, LinearWeights):
        (M, K), rhs = w_raw.raw.shape, w_raw.operand
    else:
        (M, K), rhs = np.shape(w_raw), np.asarray(w_raw, dtype=np.int64).T
    acc = matmul_exact(x_raw.reshape(-1, K), rhs)
    return acc.reshape(x_raw.shape[:-1] + (M,))


def check_accumulator(
    x_fmt: FixedFormat, w_fmt: FixedFormat, b_fmt: FixedFormat | None, K: int, name: str
) -> None:
    """FixedPointError when a ``x_fmt × w_fmt`` dot product over ``K`` inputs (plus a ``b_fmt``
    bias) needs more than the 63-bit accumulator the model holds."""
    acc_bits = x_fmt.bits + w_fmt.bits + max(K - 1, 1).bit_length()
    if b_fmt is not None:  # the accumulator moves to the bias's fraction bits if it has more
        acc_bits += max(0, b_fmt.frac_bits - x_fmt.frac_bits - w_fmt.frac_bits)
    if acc_bits > 63:
        raise FixedPointError(
            f"{name}: a {x_fmt} × {w_fmt} dot product over {K} inputs needs a {acc_bits}-bit accumulator; "
            "the model holds at most 63 bits (narrow the formats)"
        )


def add_bias(acc: np.ndarray, frac: int, b_raw: np.ndarray, b_fmt: FixedFormat) -> tuple[np.ndarray, int]:
    """Step 2 of :func:`linear` on accumulators the caller owns (overwritten): ``acc + b`` exact,
    at the finer of the two fraction bits; returns the sum and its fraction bits. ``b_raw`` is
    ``[out]`` or one bias row per accumulator row."""
    if b_fmt.frac_bits > frac:  # align the accumulator to the bias instead (exact either way)
        acc <<= np.int64(b_fmt.frac_bits - frac)
        frac = b_fmt.frac_bits
    acc += b_raw << np.int64(frac - b_fmt.frac_bits)
    return acc, frac


def linear(
    x_raw: np.ndarray,
    x_fmt: FixedFormat,
    w_raw: np.ndarray | LinearWeights,
    w_fmt: FixedFormat,
    b_raw: np.ndarray | None,
    b_fmt: FixedFormat | None,
    out: Cast,
    epilogue: Epilogue = Epilogue.BIAS,
    *,
    cfg: Config,
    log: SaturationLog | None = None,
    name: str = "linear",
    scores_raw: np.ndarray | None = None,
    acc_raw: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """One pass of the unified linear unit, in the hardware's order of operations.

    1. ``acc = x·Wᵀ`` exact (wide accumulator, fraction bits ``x_fmt.frac + w_fmt.frac``);
    2. ``acc + b`` with the bias shifted to the accumulator's fraction bits (exact);
    3. one cast to ``out`` (logged as ``name``);
    4. the epilogue: nothing (BIAS); nonlinear.gelu on the cast value (BIAS_GELU); or
       ``cast(p · e)`` to ``formats.act`` (logged ``name.scale``) and a saturating add into
       ``acc_raw[rows]`` (logged ``name.accumulate``) (EXPERT_ACCUMULATE).

    Args:
        x_raw: input tokens ``[..., in]`` in ``x_fmt`` (for EXPERT_ACCUMULATE: the queued tokens,
            in queue order).
        w_raw: weights ``[out, in]`` in ``w_fmt`` (nn.Linear order), or the same prepared once
            (:func:`prepare_weights`).
        b_raw: bias ``[out]`` in ``b_fmt``, or None for a layer without bias (the gate).
        out: the cast of the accumulator (``formats.act`` for every layer of the model).
        epilogue: see :class:`Epilogue`.
        cfg: the config (GELU parameters, gate-score and activation formats).
        log: saturation counts, per cast name.
        name: tensor name for the log and for errors.
        scores_raw: EXPERT_ACCUMULATE only: ``[Q]`` gate score of each queued token, ``formats.gate_score``.
        acc_raw: EXPERT_ACCUMULATE only: the output buffer ``[N, out]`` in ``formats.act``.
        rows: EXPERT_ACCUMULATE only: ``[Q]`` distinct token index of each queued token.

    Returns:
        ``[..., out]`` raw values in ``out.fmt`` (BIAS, BIAS_GELU), or the updated output buffer
        ``[N, out]`` in ``formats.act`` (EXPERT_ACCUMULATE; ``acc_raw`` itself is not modified).
    """
    weights = _prepared(w_raw, w_fmt, name)
    x_raw = check_range(x_raw, x_fmt, f"{name}: input")
    if x_raw.shape[-1] != weights.raw.shape[1]:
        raise FixedPointError(
            f"{name}: input {x_raw.shape} does not match weights {weights.raw.shape} "
            "(expected [..., in] and [out, in])"
        )
    M, K = weights.raw.shape
    check_accumulator(x_fmt, w_fmt, b_fmt, K, name)
    frac = x_fmt.frac_bits + w_fmt.frac_bits
    acc = accumulate(x_raw, weights)
    if b_raw is not None:
        if b_fmt is None:
            raise FixedPointError(f"{name}: a bias needs its format (b_fmt)")
        b_raw = check_range(b_raw, b_fmt, f"{name}: bias")
        if b_raw.shape != (M,):
            raise FixedPointError(f"{name}: bias shape {b_raw.shape}, expected ({M},)")
        acc, frac = add_bias(acc, frac, b_raw, b_fmt)
    y = requantize_inplace(acc, frac, out, name, log)  # acc is this call's own temporary
    if epilogue is Epilogue.BIAS:
        return y
    if epilogue is Epilogue.BIAS_GELU:
        return nonlinear.gelu(y, out, cfg.formats.gelu_delta, cfg.nonlinear)
    if epilogue is Epilogue.EXPERT_ACCUMULATE:
        return _expert_accumulate(y, out.fmt, scores_raw, acc_raw, rows, cfg, log, name)
    raise FixedPointError(f"{name}: unknown epilogue {epilogue!r}")


def _expert_accumulate(
    e_raw: np.ndarray,
    e_fmt: FixedFormat,
    scores_raw: np.ndarray | None,
    acc_raw: np.ndarray | None,
    rows: np.ndarray | None,
    cfg: Config,
    log: SaturationLog | None,
    name: str,
) -> np.ndarray:
    """``acc[rows[q]] = sat_act(acc[rows[q]] + cast_act(p[q] · e[q]))`` for q in queue order."""
    if scores_raw is None or acc_raw is None or rows is None:
        raise FixedPointError(f"{name}: EXPERT_ACCUMULATE needs scores_raw, acc_raw and rows")
    f = cfg.formats
    Q, M = e_raw.shape
    scores_raw = check_range(scores_raw, f.gate_score.fmt, f"{name}: gate scores")
    acc_raw = check_range(acc_raw, f.act.fmt, f"{name}: output buffer")
    rows = np.asarray(rows, dtype=np.int64)
    if scores_raw.shape != (Q,) or rows.shape != (Q,) or acc_raw.ndim != 2 or acc_raw.shape[1] != M:
        raise FixedPointError(
            f"{name}: expert output {e_raw.shape} needs scores ({Q},), rows ({Q},) and a buffer [N, {M}]; "
            f"got {scores_raw.shape}, {rows.shape}, {acc_raw.shape}"
        )
    if Q and (rows.min() < 0 or rows.max() >= acc_raw.shape[0] or len(np.unique(rows)) != Q):
        raise FixedPointError(
            f"{name}: queue rows must be distinct token indices in 0..{acc_raw.shape[0] - 1}"
        )
    if e_fmt.bits + f.gate_score.fmt.bits > 63:
        raise FixedPointError(f"{name}: a {e_fmt} × {f.gate_score.fmt} product exceeds 63 bits")
    scaled = requantize(
        e_raw * scores_raw[:, None], e_fmt.frac_bits + f.gate_score.fmt.frac_bits, f.act, f"{name}.scale", log
    )
    out = acc_raw.copy()
    # Rows of one queue are distinct, so the queue-order adds touch disjoint rows.
    out[rows] = fit(out[rows] + scaled, f.act.fmt, f.act.overflow, f"{name}.accumulate", log)
    return out


def quantize_pixels(
    image: np.ndarray, cfg: Config, log: SaturationLog | None = None, name: str = "image"
) -> np.ndarray:
    """A float image ``[C, H, W]`` (or ``[B, C, H, W]``) in ``formats.pixel``.

    Values outside ``[min_value, 2**int_bits)`` of the pixel format (``[0, 1)`` for ap_ufixed<8,0>)
    are an error naming the count and the first index; inside it, values that round up past the
    largest code (e.g. 0.999 → 256/256) saturate to it and are counted in ``log``.
    """
    cast = cfg.formats.pixel
    x = np.asarray(image, dtype=np.float64)
    if np.all(np.isfinite(x)):
        bad = (x < cast.fmt.min_value) | (x >= 2.0**cast.fmt.int_bits)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise FixedPointError(
                f"{name}: {int(bad.sum())} pixel(s) outside [{cast.fmt.min_value:g}, "
                f"{2.0**cast.fmt.int_bits:g}) of {cast.fmt}, first at {first} = {x[first]!r}; "
                "scale the image to the pixel format's range"
            )
    return quantize(x, cast, name, log)


def im2col(pixels_raw: np.ndarray, patch: int) -> np.ndarray:
    """``[C, H, W]`` → ``[patches, C·p·p]``.

    Patches row-major over the grid, features of a patch in Conv2d weight order (c, ky, kx).
    """
    C, H, W = pixels_raw.shape
    gh, gw = H // patch, W // patch
    x = pixels_raw.reshape(C, gh, patch, gw, patch)
    return x.transpose(1, 3, 0, 2, 4).reshape(gh * gw, C * patch * patch)


def patch_embed(
    pixels_raw: np.ndarray,
    w_raw: np.ndarray,
    b_raw: np.ndarray,
    pos_raw: np.ndarray,
    cfg: Config,
    log: SaturationLog | None = None,
    name: str = "patch_embed",
) -> np.ndarray:
    """Patch embedding through the linear unit, then the position embedding.

    Order of operations: im2col of the pixels (``formats.pixel``), the linear unit with
    ``Epilogue.BIAS`` (weights ``formats.patch_weight`` ``[D, C·p·p]`` in Conv2d order, bias
    ``formats.bias``, cast to ``formats.act``, logged ``name``), then ``+ pos_embed[1:]``
    (``formats.pos_embed``, aligned exactly) with one cast to ``formats.act`` (logged
    ``name.pos_add``). Token 0 (class token) is ``pos_embed[0]`` cast to ``formats.act``
    (logged ``name.cls``).

    Args:
        pixels_raw: ``[C, H, W]`` or ``[B, C, H, W]`` raw pixels.
        w_raw: ``[D, C, p, p]`` or ``[D, C·p·p]``.
        b_raw: ``[D]``.
        pos_raw: ``[N, D]``, N = patches + 1.

    Returns:
        ``[N, D]`` (or ``[B, N, D]``) tokens in ``formats.act``.
    """
    m, f = cfg.model, cfg.formats
    pixels_raw = np.asarray(pixels_raw)
    if pixels_raw.ndim == 4:
        return np.stack([patch_embed(p, w_raw, b_raw, pos_raw, cfg, log, name) for p in pixels_raw])
    if pixels_raw.shape != (m.in_chans, m.image_h, m.image_w):
        raise FixedPointError(
            f"{name}: image shape {pixels_raw.shape}, expected {(m.in_chans, m.image_h, m.image_w)}"
        )
    w_raw = np.asarray(w_raw).reshape(m.dim, -1)
    if w_raw.shape != (m.dim, m.patch_in):
        raise FixedPointError(f"{name}: weight shape {w_raw.shape}, expected ({m.dim}, {m.patch_in})")
    pos_raw = check_range(pos_raw, f.pos_embed.fmt, f"{name}: pos_embed")
    if pos_raw.shape != (m.tokens, m.dim):
        raise FixedPointError(f"{name}: pos_embed shape {pos_raw.shape}, expected ({m.tokens}, {m.dim})")
    cols = im2col(check_range(pixels_raw, f.pixel.fmt, f"{name}: pixels"), m.patch)
    y = linear(
        cols, f.pixel.fmt, w_raw, f.patch_weight.fmt, b_raw, f.bias.fmt, f.act, cfg=cfg, log=log, name=name
    )
    fa, fp = f.act.fmt.frac_bits, f.pos_embed.fmt.frac_bits
    frac = max(fa, fp)
    total = (y << np.int64(frac - fa)) + (pos_raw[1:] << np.int64(frac - fp))
    tokens = np.empty((m.tokens, m.dim), dtype=np.int64)
    tokens[0] = requantize(pos_raw[0], fp, f.act, f"{name}.cls", log)
    tokens[1:] = requantize(total, frac, f.act, f"{name}.pos_add", log)
    return tokens
