"""Input images: a deterministic synthetic default and loaders for image and raw-array files.

Every image is float32 ``[C, H, W]`` in ``[0, 1)``, sized by ``cfg.model``. Pixels from 8-bit
files are ``value / 256`` (as Edge-MoE's ``image.float32.bin`` holds them), so each is exactly
representable in an 8-bit unsigned fraction.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgemoe.config import Config
from edgemoe.errors import EdgemoeError, reason

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MAX_PICTURE_PIXELS = 1 << 26
"""Pictures larger than this (64 Mpixel) are refused before their pixels are decoded."""


class ImageError(EdgemoeError, ValueError):
    """An image file that cannot be read or does not fit the config."""


def _quantize8(x: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> multiples of 1/256 in [0, 255/256]."""
    return (np.clip(np.floor(x * 256.0), 0, 255) / 256.0).astype(np.float32)


# the built-in scene's layout, in image coordinates (0..1, top left origin)
DEFAULT_HORIZON = 0.55
DEFAULT_BUILDINGS = ((0.05, 0.22, 0.2, (0.6, 0.3, 0.25)), (0.3, 0.4, 0.32, (0.5, 0.5, 0.55)))


def default_regions(cfg: Config) -> dict[str, np.ndarray]:
    """Boolean [H, W] masks of what the built-in scene shows, in drawing order (later on top).

    ``sky``, ``ground``, ``road``, ``lane``, ``sun``, ``building{i}``, ``windows{i}``: the
    geometry :func:`default_image` paints and ``edgemoe.golden.dataset.default_scene`` labels.
    """
    m = cfg.model
    H, W = m.image_h, m.image_w
    y, x = np.meshgrid(np.linspace(0.0, 1.0, H), np.linspace(0.0, 1.0, W), indexing="ij")
    sky = y < DEFAULT_HORIZON
    g = np.clip((y - DEFAULT_HORIZON) / (1 - DEFAULT_HORIZON), 0.0, 1.0)
    road = ~sky & (np.abs(x - 0.5) < 0.08 + 0.42 * g)
    regions = {
        "sky": sky,
        "ground": ~sky,
        "road": road,
        "lane": road & (np.abs(x - 0.5) < 0.004 + 0.01 * g) & (np.sin(40.0 * g**0.5) > 0),
        "sun": (x - 0.8) ** 2 + ((y - 0.15) * H / W) ** 2 < 0.06**2,
    }
    for i, (x0, x1, top, _) in enumerate(DEFAULT_BUILDINGS):
        body = (x >= x0) & (x < x1) & (y >= top) & (y < DEFAULT_HORIZON)
        regions[f"building{i}"] = body
        regions[f"windows{i}"] = (
            body & (np.sin((x - x0) * 2 * np.pi * 40) > 0.3) & (np.sin((y - top) * 2 * np.pi * 16) > 0.3)
        )
    return regions


def default_image(cfg: Config, seed: int = 0) -> np.ndarray:
    """A deterministic street-like scene [C, H, W] float32 in [0, 1), generated in code.

    Sky gradient, ground with perspective stripes, a sun disc, two buildings with windows
    and a little seeded noise: structure at several scales, not noise. It is one scene of
    ``edgemoe.golden.dataset`` (``default_scene`` gives its labels and depth).

    Args:
        cfg: the configuration (image size and channels).
        seed: seed of the noise (numpy PCG64).
    """
    m = cfg.model
    H, W = m.image_h, m.image_w
    r = default_regions(cfg)
    y = np.linspace(0.0, 1.0, H)[:, None] * np.ones((1, W))
    sky = r["sky"]
    rgb = np.zeros((3, H, W))
    t = y / DEFAULT_HORIZON
    for c, (top, bottom) in enumerate(((0.25, 0.75), (0.45, 0.85), (0.85, 0.95))):
        rgb[c] = np.where(sky, top + (bottom - top) * t, 0.0)
    # ground: grey road converging to the horizon, green verges, lane stripes
    g = np.clip((y - DEFAULT_HORIZON) / (1 - DEFAULT_HORIZON), 0.0, 1.0)
    for c, (road_c, verge_c) in enumerate(((0.35, 0.25), (0.35, 0.55), (0.38, 0.2))):
        ground = np.where(r["road"], road_c + 0.15 * g, verge_c + 0.2 * g)
        rgb[c] = np.where(sky, rgb[c], np.where(r["lane"], 0.95, ground))
    for c, v in enumerate((1.0, 0.9, 0.5)):
        rgb[c][r["sun"]] = v
    # buildings with a grid of windows
    for i, (*_, colour) in enumerate(DEFAULT_BUILDINGS):
        for c in range(3):
            rgb[c][r[f"building{i}"]] = colour[c]
            rgb[c][r[f"windows{i}"]] = 0.9 if c < 2 else 0.6
    rng = np.random.Generator(np.random.PCG64(seed))
    rgb += 0.02 * rng.standard_normal(rgb.shape)
    image = _quantize8(rgb[[c % 3 for c in range(m.in_chans)]])
    return np.ascontiguousarray(image)


def _check(image: np.ndarray, cfg: Config, source: str) -> np.ndarray:
    m = cfg.model
    expected = (m.in_chans, m.image_h, m.image_w)
    if tuple(image.shape) != expected:
        raise ImageError(f"{source}: shape {list(image.shape)}, config '{cfg.name}' expects {list(expected)}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ImageError(f"{source}: dtype {image.dtype}, expected a float array with values in [0, 1)")
    image = image.astype(np.float32)
    if not np.isfinite(image).all():
        raise ImageError(f"{source}: holds NaN or inf values")
    lo, hi = float(image.min()), float(image.max())
    if lo < 0.0 or hi >= 1.0:
        raise ImageError(f"{source}: values in [{lo:g}, {hi:g}], expected [0, 1)")
    return np.ascontiguousarray(image)


def load_image(path: str | Path, cfg: Config) -> np.ndarray:
    """Read an image [C, H, W] float32 in [0, 1) for ``cfg``.

    ``.png``/``.jpg``/``.jpeg``/``.bmp`` are resized (bilinear) to the config's size and scaled
    by 1/256; ``.npy`` and raw little-endian ``.float32.bin`` files must already hold
    ``[C, H, W]`` values in [0, 1).
    """
    path = Path(path)
    m = cfg.model
    if not path.is_file():
        raise ImageError(f"image file {path} does not exist")
    name = path.name.lower()
    if name.endswith(IMAGE_SUFFIXES):
        from PIL import Image

        mode = {1: "L", 3: "RGB"}.get(m.in_chans)
        if mode is None:
            raise ImageError(f"{path}: config '{cfg.name}' has {m.in_chans} channels; pictures give 1 or 3")
        try:
            with warnings.catch_warnings():  # the size is checked here, before any pixel is decoded
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                picture = Image.open(path)
            with picture:
                width, height = picture.size
                if width * height > MAX_PICTURE_PIXELS:
                    raise ImageError(
                        f"{path}: {width}x{height} pixels, more than the {MAX_PICTURE_PIXELS} allowed"
                    )
                picture = picture.convert(mode).resize((m.image_w, m.image_h), Image.Resampling.BILINEAR)
                pixels = np.asarray(picture, dtype=np.uint8)
        except ImageError:
            raise
        except Exception as e:  # a corrupt file surfaces as many types from PIL's decoders
            raise ImageError(f"{path}: not a readable image ({reason(e)})") from None
        pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
        return np.ascontiguousarray(pixels.astype(np.float32) / 256.0)
    if name.endswith(".npy"):
        try:
            image = np.load(path, allow_pickle=False)
        except Exception as e:  # EOFError, ValueError, MemoryError...: whatever the bytes provoke
            raise ImageError(f"{path}: not a readable .npy array ({reason(e)})") from None
        if not isinstance(image, np.ndarray):
            raise ImageError(f"{path}: a .npz archive, not one .npy array")
        return _check(image, cfg, str(path))
    if name.endswith(".float32.bin"):
        want = 4 * m.in_chans * m.image_h * m.image_w
        size = path.stat().st_size
        if size != want:
            raise ImageError(
                f"{path}: {size} bytes, config '{cfg.name}' expects {want} "
                f"(float32 [{m.in_chans}, {m.image_h}, {m.image_w}])"
            )
        image = np.fromfile(path, dtype="<f4").reshape(m.in_chans, m.image_h, m.image_w)
        return _check(image, cfg, str(path))
    raise ImageError(f"{path}: unknown image type; use .png, .jpg, .jpeg, .bmp, .npy or .float32.bin")
