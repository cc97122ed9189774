"""Input images: the deterministic default and the file loaders."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
from PIL import Image

from edgemoe.config import preset
from edgemoe.golden.images import ImageError, default_image, load_image

TINY = preset("tiny")
EDGE = preset("edge-moe")


@pytest.mark.parametrize("cfg", [TINY, EDGE], ids=["tiny", "edge-moe"])
def test_default_image(cfg):
    m = cfg.model
    a = default_image(cfg)
    assert a.shape == (m.in_chans, m.image_h, m.image_w) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() < 1.0
    np.testing.assert_array_equal(a * 256, np.round(a * 256))  # 8-bit pixels, exact in ufix(8, 0)
    np.testing.assert_array_equal(a, default_image(cfg))
    # structure, not noise: neighbouring pixels are close, the picture as a whole is not flat
    assert np.abs(np.diff(a, axis=2)).mean() < 0.05 and a.std() > 0.1
    assert a[2, : m.image_h // 4].mean() > a[2, -m.image_h // 4 :].mean() + 0.2  # blue sky above


def test_default_image_pinned():
    digest = hashlib.sha256(default_image(EDGE).astype("<f4").tobytes()).hexdigest()
    assert digest[:16] == "8bcde7597cb45ff3", digest


def test_default_image_other_channel_count():
    grey = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, in_chans=1))
    assert default_image(grey).shape == (1, 32, 64)


def test_load_picture_resizes(tmp_path):
    pixels = np.zeros((40, 50, 3), np.uint8)
    pixels[:, :, 0] = 255
    pixels[:, :, 2] = np.arange(50, dtype=np.uint8)[None, :] * 5
    for suffix in (".png", ".jpg"):
        path = tmp_path / f"p{suffix}"
        Image.fromarray(pixels).save(path)
        image = load_image(path, TINY)
        assert image.shape == (3, 32, 64) and image.dtype == np.float32
        assert image.max() < 1.0
        np.testing.assert_allclose(image[0], 255 / 256, atol=2 / 256)  # red saturated everywhere
        assert image[2, :, -1].mean() > image[2, :, 0].mean() + 0.5  # the ramp survives resizing


def test_load_arrays(tmp_path):
    a = default_image(TINY)
    np.save(tmp_path / "a.npy", a)
    a.astype("<f4").tofile(tmp_path / "a.float32.bin")
    np.testing.assert_array_equal(load_image(tmp_path / "a.npy", TINY), a)
    np.testing.assert_array_equal(load_image(tmp_path / "a.float32.bin", TINY), a)


def test_load_errors(tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 32, 32), np.float32))
    with pytest.raises(
        ImageError, match=r"wrong.npy: shape \[3, 32, 32\], config 'tiny' expects \[3, 32, 64\]"
    ):
        load_image(tmp_path / "wrong.npy", TINY)
    np.save(tmp_path / "ints.npy", np.zeros((3, 32, 64), np.uint8))
    with pytest.raises(ImageError, match="dtype uint8"):
        load_image(tmp_path / "ints.npy", TINY)
    np.save(tmp_path / "big.npy", np.full((3, 32, 64), 3.0, np.float32))
    with pytest.raises(ImageError, match=r"values in \[3, 3\]"):
        load_image(tmp_path / "big.npy", TINY)
    np.zeros(100, "<f4").tofile(tmp_path / "short.float32.bin")
    with pytest.raises(ImageError, match=r"400 bytes, config 'tiny' expects 24576 \(float32 \[3, 32, 64\]\)"):
        load_image(tmp_path / "short.float32.bin", TINY)
    (tmp_path / "x.tif").write_bytes(b"0")
    with pytest.raises(ImageError, match="unknown image type"):
        load_image(tmp_path / "x.tif", TINY)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(tmp_path / "broken.png", TINY)
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "absent.png", TINY)


@pytest.mark.realdata
def test_real_image(edge_moe_data):
    image = load_image(edge_moe_data / "image.float32.bin", EDGE)
    assert image.shape == (3, 128, 256) and 0.0 <= image.min() and image.max() < 1.0
    np.testing.assert_array_equal(image * 256, np.round(image * 256))  # 8-bit pixels / 256
