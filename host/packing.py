"""Packing of weights, images and tokens into the accelerator's memory layout, and back.

Every function here follows :mod:`edgemoe.host.layout`; buffers are ``uint8`` arrays of the
layout's size. Packing and unpacking are exact inverses on raw fixed-point values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemoe.config import Config
from edgemoe.golden.fixed.core import SaturationLog, quantize

from .layout import (
    HEADER_BYTES,
    WEIGHT_MAGIC,
    BufferLayout,
    LayoutError,
    Order,
    Segment,
    io_layout,
    weight_layout,
)

_HEADER_VERSION = 1


def _int_dtype(bits: int, signed: bool) -> np.dtype:
    return np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")


def _to_stream(seg: Segment, item: np.ndarray, cfg: Config) -> np.ndarray:
    """One item (rows x cols raw values) in the segment's streaming order, flattened."""
    mat = item.reshape(seg.rows, seg.cols)
    if seg.order is Order.TILED:
        lo, li = cfg.hw.linear_out, cfg.hw.linear_in
        padded = np.zeros((seg.stored_rows, seg.stored_cols), dtype=mat.dtype)
        padded[: seg.rows, : seg.cols] = mat
        mat = padded.reshape(seg.stored_rows // lo, lo, seg.stored_cols // li, li).transpose(0, 2, 1, 3)
    return mat.reshape(-1)


def _from_stream(seg: Segment, flat: np.ndarray, cfg: Config) -> np.ndarray:
    if seg.order is Order.TILED:
        lo, li = cfg.hw.linear_out, cfg.hw.linear_in
        flat = flat.reshape(seg.stored_rows // lo, seg.stored_cols // li, lo, li).transpose(0, 2, 1, 3)
        return flat.reshape(seg.stored_rows, seg.stored_cols)[: seg.rows, : seg.cols]
    return flat.reshape(seg.rows, seg.cols)


def _check_raw(seg: Segment, raw: np.ndarray, what: str) -> np.ndarray:
    raw = np.asarray(raw)
    if raw.shape != seg.shape:
        raise LayoutError(f"{what} '{seg.name}': expected shape {seg.shape}, got {raw.shape}")
    if not np.issubdtype(raw.dtype, np.integer):
        raise LayoutError(f"{what} '{seg.name}': expected raw integers, got dtype {raw.dtype}")
    fmt = seg.cast.fmt
    if raw.size and (raw.min() < fmt.min_raw or raw.max() > fmt.max_raw):
        raise LayoutError(
            f"{what} '{seg.name}': raw values {int(raw.min())}..{int(raw.max())} lie outside {fmt} "
            f"({fmt.min_raw}..{fmt.max_raw})"
        )
    return raw.astype(np.int64)


def write_segment(buf: np.ndarray, seg: Segment, raw: np.ndarray, cfg: Config, base: int = 0) -> None:
    """Store raw values (shape ``seg.shape``) into ``buf`` at ``base + seg.offset``."""
    raw = _check_raw(seg, raw, "tensor")
    dtype = _int_dtype(seg.word_bits, seg.cast.fmt.signed)
    items = raw.reshape(seg.items, -1)
    for i in range(seg.items):
        words = _to_stream(seg, items[i], cfg).astype(dtype)
        start = base + seg.offset + i * seg.item_bytes
        buf[start : start + words.nbytes] = words.view(np.uint8)


def read_segment(buf: np.ndarray, seg: Segment, cfg: Config, base: int = 0) -> np.ndarray:
    """The raw values (int64, shape ``seg.shape``) stored in ``buf`` at ``base + seg.offset``."""
    dtype = _int_dtype(seg.word_bits, seg.cast.fmt.signed)
    n = seg.words * dtype.itemsize
    out = np.empty((seg.items, seg.rows, seg.cols), dtype=np.int64)
    for i in range(seg.items):
        start = base + seg.offset + i * seg.item_bytes
        words = np.frombuffer(bytes(buf[start : start + n]), dtype=dtype).astype(np.int64)
        out[i] = _from_stream(seg, words, cfg)
    return out.reshape(seg.shape)


# --------------------------------------------------------------------------- weights


def raw_weights(
    cfg: Config, weights: dict[str, np.ndarray], log: SaturationLog | None = None
) -> dict[str, np.ndarray]:
    """Raw values of every backbone tensor in its storage format (rounded, saturated, logged).

    The storage formats are the fixed reference's (``quantize_weights``); task-head tensors
    (``head*``) are not part of the accelerator and are ignored. Shapes are checked against
    ``cfg`` first, so weights for another config are refused by name.
    """
    from edgemoe.golden.fixed.quantize_weights import is_head, quantize_weights

    layout = weight_layout(cfg)
    missing = [s.name for s in layout if s.name not in weights]
    if missing:
        raise LayoutError(
            f"weights for config '{cfg.name}' lack {len(missing)} tensor(s): {', '.join(missing[:6])}"
            + (" ..." if len(missing) > 6 else "")
        )
    for seg in layout:
        shape = tuple(np.shape(weights[seg.name]))
        if shape != seg.shape:
            raise LayoutError(
                f"weight '{seg.name}' has shape {shape}, config '{cfg.name}' expects {seg.shape} "
                "(weights for another config?)"
            )
    backbone = {k: v for k, v in weights.items() if not is_head(k)}
    return dict(quantize_weights(backbone, cfg, log).raw)


def pack_weights(cfg: Config, raw: dict[str, np.ndarray]) -> np.ndarray:
    """The weight image (uint8, ``weight_layout(cfg).nbytes``) from raw values per tensor."""
    layout = weight_layout(cfg)
    buf = np.zeros(layout.nbytes, dtype=np.uint8)
    header = np.zeros(HEADER_BYTES, dtype=np.uint8)
    header[:16] = np.array([WEIGHT_MAGIC, _HEADER_VERSION, cfg.config_id, len(layout.segments)], "<u4").view(
        np.uint8
    )
    header[16:24] = np.array([layout.nbytes], "<u8").view(np.uint8)
    buf[:HEADER_BYTES] = header
    for seg in layout:
        if seg.name not in raw:
            raise LayoutError(f"raw weights lack '{seg.name}'")
        write_segment(buf, seg, raw[seg.name], cfg)
    return buf


def weight_image_header(blob: np.ndarray) -> dict[str, int]:
    """The fields of a weight image's header; LayoutError if it is not a weight image."""
    blob = np.asarray(blob, dtype=np.uint8).reshape(-1)
    if blob.size < HEADER_BYTES:
        raise LayoutError(f"weight image of {blob.size} bytes is shorter than its {HEADER_BYTES}-byte header")
    magic, version, config_id, segments = (int(v) for v in blob[:16].view("<u4"))
    (nbytes,) = (int(v) for v in blob[16:24].view("<u8"))
    if magic != WEIGHT_MAGIC:
        raise LayoutError(f"not an edgemoe weight image (magic 0x{magic:08x}, expected 0x{WEIGHT_MAGIC:08x})")
    return {"version": version, "config_id": config_id, "segments": segments, "nbytes": nbytes}


def check_weight_image(cfg: Config, blob: np.ndarray, source: str = "weight image") -> None:
    """Refuse a weight image packed for another config (or truncated) with a clear message."""
    head = weight_image_header(blob)
    layout = weight_layout(cfg)
    if head["config_id"] != cfg.config_id:
        raise LayoutError(
            f"{source} was packed for config id 0x{head['config_id']:08x}, but config '{cfg.name}' has id "
            f"0x{cfg.config_id:08x}; repack the weights for this config"
        )
    if head["version"] != _HEADER_VERSION or head["nbytes"] != layout.nbytes or np.size(blob) < layout.nbytes:
        raise LayoutError(
            f"{source}: layout version {head['version']}, {np.size(blob)} of {head['nbytes']} bytes; config "
            f"'{cfg.name}' expects version {_HEADER_VERSION} and {layout.nbytes} bytes"
        )


def unpack_weights(cfg: Config, blob: np.ndarray) -> dict[str, np.ndarray]:
    """Raw values per tensor read back from a weight image (checked against ``cfg``)."""
    check_weight_image(cfg, blob)
    blob = np.asarray(blob, dtype=np.uint8).reshape(-1)
    return {seg.name: read_segment(blob, seg, cfg) for seg in weight_layout(cfg)}


def save_weight_image(path: str | Path, blob: np.ndarray) -> Path:
    path = Path(path)
    weight_image_header(blob)
    path.write_bytes(np.asarray(blob, dtype=np.uint8).tobytes())
    return path


def load_weight_image(cfg: Config, path: str | Path) -> np.ndarray:
    """A weight image file, refused if it was packed for another config."""
    path = Path(path)
    if not path.is_file():
        raise LayoutError(f"weight image {path} does not exist")
    blob = np.fromfile(path, dtype=np.uint8)
    check_weight_image(cfg, blob, source=str(path))
    return blob


# --------------------------------------------------------------------------- images and tokens


def check_images(cfg: Config, images: np.ndarray) -> np.ndarray:
    """``images`` as float64 [B, C, H, W]; a clear error for a wrong shape, dtype or value."""
    m = cfg.model
    expected = (m.in_chans, m.image_h, m.image_w)
    arr = np.asarray(images)
    if not np.issubdtype(arr.dtype, np.floating):
        raise LayoutError(
            f"images must be floating point in [0, 1), got dtype {arr.dtype} "
            "(convert uint8 pixels with x / 256)"
        )
    if arr.ndim == 3:
        arr = arr[None]
    dims = ", ".join(map(str, expected))
    if arr.ndim != 4 or arr.shape[1:] != expected:
        raise LayoutError(
            f"images must have shape [B, {dims}] or [{dims}] for config '{cfg.name}', "
            f"got {tuple(np.shape(images))}"
        )
    if not np.all(np.isfinite(arr)):
        raise LayoutError("images hold non-finite values")
    return arr.astype(np.float64)


def image_to_patches(cfg: Config, raw: np.ndarray) -> np.ndarray:
    """[C, H, W] raw pixels -> [PATCHES, PATCH_IN] in the order the patch embedding reads them."""
    m = cfg.model
    gh, gw = m.grid
    p = m.patch
    return raw.reshape(m.in_chans, gh, p, gw, p).transpose(1, 3, 0, 2, 4).reshape(m.patches, m.patch_in)


def patches_to_image(cfg: Config, patches: np.ndarray) -> np.ndarray:
    m = cfg.model
    gh, gw = m.grid
    p = m.patch
    return (
        patches.reshape(gh, gw, m.in_chans, p, p)
        .transpose(2, 0, 3, 1, 4)
        .reshape(m.in_chans, m.image_h, m.image_w)
    )


def quantize_images(cfg: Config, images: np.ndarray, log: SaturationLog | None = None) -> np.ndarray:
    """Raw pixels [B, C, H, W] (int64) of float images in [0, 1)."""
    return quantize(check_images(cfg, images), cfg.formats.pixel, "pixels", log)


def images_nbytes(cfg: Config, batch: int) -> int:
    return io_layout(cfg)[0].nbytes * batch


def tokens_nbytes(cfg: Config, batch: int) -> int:
    return io_layout(cfg)[1].nbytes * batch


def pack_images(cfg: Config, raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Raw pixels [B, C, H, W] into the image buffer (uint8), patch by patch."""
    layout = io_layout(cfg)[0]
    raw = np.asarray(raw)
    if raw.ndim == 3:
        raw = raw[None]
    seg = layout["image"]
    B = raw.shape[0]
    if out is None:
        out = np.zeros(layout.nbytes * B, dtype=np.uint8)
    elif out.nbytes < layout.nbytes * B:
        raise LayoutError(
            f"image buffer of {out.nbytes} bytes cannot hold {B} image(s) of {layout.nbytes} bytes"
        )
    flat = out.reshape(-1).view(np.uint8)
    patch_seg = _patch_segment(seg)
    for b in range(B):
        _check_raw(seg, raw[b], "image")
        write_segment(flat, patch_seg, image_to_patches(cfg, raw[b]), cfg, base=b * layout.nbytes)
    return out


def unpack_images(cfg: Config, buf: np.ndarray, batch: int) -> np.ndarray:
    """Raw pixels [B, C, H, W] from an image buffer."""
    layout = io_layout(cfg)[0]
    seg = _patch_segment(layout["image"])
    flat = np.asarray(buf).reshape(-1).view(np.uint8)
    return np.stack(
        [patches_to_image(cfg, read_segment(flat, seg, cfg, base=b * layout.nbytes)) for b in range(batch)]
    )


def _patch_segment(seg: Segment) -> Segment:
    """The image segment seen as the [PATCHES, PATCH_IN] matrix the buffer stores."""
    return Segment(
        seg.name, (seg.rows, seg.cols), seg.cast, 1, seg.rows, seg.cols, seg.order, 0, seg.item_bytes
    )


def pack_tokens(cfg: Config, raw: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Raw activations [B, TOKENS, DIM] into the token buffer (what the hardware writes)."""
    layout: BufferLayout = io_layout(cfg)[1]
    raw = np.asarray(raw)
    B = raw.shape[0]
    if out is None:
        out = np.zeros(layout.nbytes * B, dtype=np.uint8)
    flat = out.reshape(-1).view(np.uint8)
    for b in range(B):
        write_segment(flat, layout["tokens"], raw[b], cfg, base=b * layout.nbytes)
    return out


def unpack_tokens(cfg: Config, buf: np.ndarray, batch: int) -> np.ndarray:
    """Raw activations [B, TOKENS, DIM] (int64) from a token buffer."""
    layout = io_layout(cfg)[1]
    flat = np.asarray(buf).reshape(-1).view(np.uint8)
    return np.stack([read_segment(flat, layout["tokens"], cfg, base=b * layout.nbytes) for b in range(batch)])
