"""The fixed backbone with one activation format per block (``formats.block_act``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgemoe.config import Cast, Config, preset, sfix
from edgemoe.fidelity import compare, float_blocks, sqnr_db
from edgemoe.golden import images, weights
from edgemoe.golden.fixed.core import SaturationLog, requantize, to_float
from edgemoe.golden.fixed.model import FixedM3ViT

SEED = 0


def _with(cfg: Config, **formats: object) -> Config:
    return dataclasses.replace(cfg, formats=dataclasses.replace(cfg.formats, **formats))


@pytest.fixture(scope="module")
def tiny() -> tuple[Config, dict[str, np.ndarray], np.ndarray]:
    cfg = preset("tiny")
    return cfg, weights.synthetic(cfg, seed=SEED), np.asarray(images.default_image(cfg), dtype=np.float32)


def test_the_global_format_per_block_gives_the_same_tokens(tiny) -> None:
    cfg, w, image = tiny
    listed = _with(cfg, block_act=(cfg.formats.act,) * cfg.model.depth)
    for task in range(len(cfg.model.tasks)):
        a, b = FixedM3ViT(cfg, w).forward(image, task), FixedM3ViT(listed, w).forward(image, task)
        assert np.array_equal(a.tokens, b.tokens), f"seed {SEED}, task {task}"
        assert b.log.counts["l1.entry"] == [0, cfg.model.tokens * cfg.model.dim]
        assert "l1.entry" not in a.log.counts and "l0.entry" not in b.log.counts


def test_each_block_runs_in_its_format_and_casts_on_entry(tiny) -> None:
    """Block by block equal to a one-format model of the block's format, with the entry cast between."""
    cfg, w, image = tiny
    first, second = Cast(sfix(16, 5)), Cast(sfix(14, 4))
    cfg2 = _with(cfg, block_act=(first, second))
    out = FixedM3ViT(cfg2, w).forward(image, 1)
    one, two = FixedM3ViT(_with(cfg, act=first), w), FixedM3ViT(_with(cfg, act=second), w)
    log = SaturationLog()
    embed = one.embed(image, log)
    x0, _ = one.block(0, embed, 1, log)
    x1, _ = two.block(1, requantize(x0, first.fmt.frac_bits, second), 1, log)
    assert np.array_equal(out.embed, embed) and np.array_equal(out.blocks[0], x0), f"seed {SEED}"
    assert np.array_equal(out.tokens, x1), f"seed {SEED}"
    assert out.tokens.max() <= second.fmt.max_raw and out.tokens.min() >= second.fmt.min_raw
    np.testing.assert_array_equal(FixedM3ViT(cfg2, w).tokens_float(out), to_float(x1, second.fmt))


def test_the_entry_cast_saturates_and_counts(tiny) -> None:
    cfg, w, image = tiny
    # [-2, 2) with lsb 2^-6 (a GELU table over [0, 2) fits it): block 0's tokens reach ±3.5
    narrow = Cast(sfix(8, 2))
    cfg = dataclasses.replace(cfg, nonlinear=dataclasses.replace(cfg.nonlinear, gelu_range_log2=1))
    out = FixedM3ViT(_with(cfg, block_act=(cfg.formats.act, narrow)), w).forward(image, 0)
    x0 = to_float(out.blocks[0], cfg.formats.act.fmt)
    beyond = int(np.count_nonzero((x0 >= 2 - 2**-7) | (x0 < -2 - 2**-7)))
    assert beyond > 0, f"seed {SEED}: no token of block 0 beyond ±2; choose a narrower format"
    assert out.log.counts["l1.entry"][0] == beyond


def test_fidelity_reads_each_block_in_its_format(tiny) -> None:
    cfg, w, image = tiny
    cfg2 = _with(cfg, block_act=(Cast(sfix(24, 6)), Cast(sfix(20, 5))))
    model = FixedM3ViT(cfg2, w)
    tf = compare(cfg2, w, model, image, 0)
    # a 20-bit block read in the 32-bit global format would be off by 2**12: SQNR far below 0 dB
    assert all(b.sqnr_db > 40 for b in tf.blocks), [(b.block, b.sqnr_db) for b in tf.blocks]


AIM_DB = 40.0
"""The fidelity aim of 16-bit activations: every block's SQNR against float."""


@pytest.mark.realdata
def test_real_weights_block0_at_a16(edge_moe_data) -> None:
    """Edge-MoE's real weights and image (block 0 and the embedding are real: the expert
    matrices of the MoE blocks are missing) through zcu102-a16's formats."""
    cfg = preset("zcu102-a16")
    w = weights.load_edgemoe_dir(edge_moe_data, cfg).weights
    image = np.fromfile(edge_moe_data / "image.float32.bin", dtype=np.float32).reshape(
        cfg.model.in_chans, cfg.model.image_h, cfg.model.image_w
    )
    model, log = FixedM3ViT(cfg, w), SaturationLog()
    x0 = model.embed(image, log)
    x1, _ = model.block(0, x0, 0, log)
    float_embed, float_block, _ = float_blocks(cfg, w, image, 0)
    act = cfg.block_config(0).formats.act.fmt
    embed_db, block_db = sqnr_db(float_embed, to_float(x0, act)), sqnr_db(float_block[0], to_float(x1, act))
    print(f"real data at A16: embedding SQNR {embed_db:.1f} dB, block 0 SQNR {block_db:.1f} dB")
    assert not log.saturated(), log.saturated()
    assert embed_db >= AIM_DB and block_db >= AIM_DB, (embed_db, block_db)


@pytest.mark.slow
@pytest.mark.parametrize("task", [0, 1])
def test_trained_model_at_a16_every_block_above_the_aim(task: int) -> None:
    """zcu102-a16 with the trained edge-moe model on the built-in image (what it was calibrated on)."""
    from edgemoe.infer import load_weights

    cfg = preset("zcu102-a16")
    w = load_weights(cfg, None)
    image = np.asarray(images.default_image(cfg), dtype=np.float32)
    tf = compare(cfg, w, FixedM3ViT(cfg, w), image, task)
    assert all(b.sqnr_db >= AIM_DB for b in tf.blocks), [(b.block, round(b.sqnr_db, 1)) for b in tf.blocks]
    assert not any(v["saturated"] for v in tf.saturation.values())
