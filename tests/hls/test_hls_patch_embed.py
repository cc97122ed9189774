"""Patch embedding in C-simulation (hls/include/patch_embed.h) equals golden/fixed/linear.py patch_embed,
every bit: im2col order, the linear unit, class token and position embedding."""

from __future__ import annotations

import numpy as np
import pytest
from hls_inputs import no_stream_read_while_empty, raw_values  # noqa: F401 (autouse fixture)

from edgemoe import config, csim
from edgemoe.golden.fixed.core import SaturationLog
from edgemoe.golden.fixed.linear import patch_embed, quantize_pixels


def _inputs(cfg: config.Config, seed: int) -> tuple[np.ndarray, ...]:
    f, m = cfg.formats, cfg.model
    rng = np.random.default_rng(seed)
    pixels = raw_values(rng, f.pixel.fmt, (m.in_chans, m.image_h, m.image_w))
    w = raw_values(
        rng,
        f.patch_weight.fmt,
        (m.dim, m.in_chans, m.patch, m.patch),
        small_bits=f.patch_weight.fmt.frac_bits - 4,
    )
    b = raw_values(rng, f.bias.fmt, (m.dim,), small_bits=f.bias.fmt.frac_bits + 1)
    pos = raw_values(rng, f.pos_embed.fmt, (m.tokens, m.dim), small_bits=f.pos_embed.fmt.frac_bits + 1)
    return pixels, w, b, pos


@pytest.mark.parametrize("seed", [0, 1])
def test_patch_embed_random(sim: csim.CSim, seed: int) -> None:
    pixels, w, b, pos = _inputs(sim.cfg, seed)
    want = patch_embed(pixels, w, b, pos, sim.cfg)
    got = sim.patch_embed(pixels, w, b, pos)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {got.size} differ"


def test_patch_embed_extremes(sim: csim.CSim) -> None:
    """Full-scale pixels and weights, bias and position at their bounds: the largest sums possible."""
    cfg = sim.cfg
    f, m = cfg.formats, cfg.model
    pixels = np.full((m.in_chans, m.image_h, m.image_w), f.pixel.fmt.max_raw, dtype=np.int64)
    pixels[:, ::2] = 0
    w = np.full((m.dim, m.patch_in), f.patch_weight.fmt.min_raw, dtype=np.int64)
    w[::2] = f.patch_weight.fmt.max_raw
    b = np.full(m.dim, f.bias.fmt.max_raw, dtype=np.int64)
    pos = np.full((m.tokens, m.dim), f.pos_embed.fmt.max_raw, dtype=np.int64)
    pos[:, 1::2] = f.pos_embed.fmt.min_raw
    log = SaturationLog()
    want = patch_embed(pixels, w, b, pos, cfg, log=log)
    got = sim.patch_embed(pixels, w, b, pos)
    assert np.array_equal(got, want)
    assert np.array_equal(
        got[0],
        np.clip(
            pos[0] << (f.act.fmt.frac_bits - f.pos_embed.fmt.frac_bits), f.act.fmt.min_raw, f.act.fmt.max_raw
        ),
    ), "token 0 is the class position"


def test_patch_embed_of_an_image(sim: csim.CSim) -> None:
    """A smooth float image through quantize_pixels (values that round up to 1.0 saturate)."""
    cfg = sim.cfg
    m = cfg.model
    yy, xx = np.meshgrid(
        np.linspace(0, 1, m.image_h, endpoint=False),
        np.linspace(0, 1, m.image_w, endpoint=False),
        indexing="ij",
    )
    image = np.stack([yy, xx, (yy + xx) / 2])[: m.in_chans] * 0.9999
    pixels = quantize_pixels(image, cfg)
    _, w, b, pos = _inputs(cfg, 9)
    assert np.array_equal(sim.patch_embed(pixels, w, b, pos), patch_embed(pixels, w, b, pos, cfg))
