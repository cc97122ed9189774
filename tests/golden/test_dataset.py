"""The procedural dataset: deterministic scenes whose labels and depth agree with their pictures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgemoe.config import preset
from edgemoe.golden import dataset as D
from edgemoe.golden.images import default_image

TINY = preset("tiny")
EDGE = preset("edge-moe")
SEEDS = range(12)


@pytest.mark.parametrize("cfg", [TINY, EDGE], ids=["tiny", "edge-moe"])
def test_scene_shapes_and_determinism(cfg):
    m = cfg.model
    s = D.scene(cfg, "train", 3)
    assert s.image.shape == (m.in_chans, m.image_h, m.image_w) and s.image.dtype == np.float32
    assert s.labels.shape == s.depth.shape == (m.image_h, m.image_w)
    assert 0.0 <= s.image.min() and s.image.max() < 1.0
    np.testing.assert_array_equal(s.image * 256, np.round(s.image * 256))  # 8-bit pixels
    assert s.labels.min() >= 0 and s.labels.max() < len(D.CLASSES)
    assert 0.0 < s.depth.min() and s.depth.max() <= D.MAX_DEPTH
    again = D.scene(cfg, "train", 3)
    np.testing.assert_array_equal(s.image, again.image)
    np.testing.assert_array_equal(s.labels, again.labels)
    np.testing.assert_array_equal(s.depth, again.depth)
    assert not np.array_equal(s.image, D.scene(cfg, "train", 4).image)


def test_splits_do_not_share_seeds():
    ranges = sorted(D.SPLITS.values())
    for (a, n), (b, _) in zip(ranges, ranges[1:], strict=False):
        assert a + n <= b
    assert D.split_seed("val", 0) == D.SPLITS["val"][0]
    with pytest.raises(D.DatasetError, match="unknown split 'dev'"):
        D.split_seed("dev", 0)
    with pytest.raises(D.DatasetError, match="split 'test' has scenes 0..9999, asked for 10000"):
        D.split_seed("test", 10_000)


def test_class_count_must_match_the_config():
    other = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, task_channels=(5, 1)))
    with pytest.raises(D.DatasetError, match="semseg task has 5 channels, the dataset 7 classes"):
        D.scene(other, "train", 0)


@pytest.mark.parametrize("seed", SEEDS)
def test_labels_agree_with_pictures(seed):
    s = D.render(EDGE, seed)
    r, g, b = s.image

    def mean(channel, cls):
        return float(channel[s.labels == cls].mean())

    present = set(np.unique(s.labels).tolist())
    assert {D.SKY, D.ROAD} <= present, f"seed {seed}: every scene shows sky and road"
    # the sky is bluer than the road; lane markings are brighter than the road around them
    assert mean(b, D.SKY) - mean(r, D.SKY) > mean(b, D.ROAD) - mean(r, D.ROAD) + 0.1, f"seed {seed}"
    if D.LANE in present:
        assert mean(r, D.LANE) > mean(r, D.ROAD) + 0.2, f"seed {seed}"
    # the road is grey: its channels stay close together
    road = s.labels == D.ROAD
    assert np.abs(r[road] - g[road]).mean() < 0.06, f"seed {seed}"
    # the sky lies above the ground, the road below the sky
    rows = np.arange(EDGE.model.image_h)[:, None] * np.ones_like(s.labels)
    assert rows[road].min() > rows[s.labels == D.SKY].min(), f"seed {seed}"


@pytest.mark.parametrize("seed", SEEDS)
def test_depth_follows_the_geometry(seed):
    s = D.render(EDGE, seed)
    sky = s.labels == D.SKY
    np.testing.assert_array_equal(s.depth[sky], D.MAX_DEPTH)
    # down every road column the road comes nearer
    road = np.where(s.labels == D.ROAD, s.depth, np.nan)
    for col in range(0, road.shape[1], 16):
        d = road[:, col][np.isfinite(road[:, col])]
        assert np.all(np.diff(d) <= 0), f"seed {seed}, column {col}"
    # an upright object has one depth, and it stands nearer than the ground just above its base
    for cls in (D.VEHICLE, D.BUILDING):
        mask = s.labels == cls
        if not mask.any():
            continue
        assert s.depth[mask].max() < D.MAX_DEPTH, f"seed {seed}: class {D.CLASSES[cls]}"
    # the bottom row is the nearest ground
    assert s.depth[-1].max() <= D.BOTTOM_DEPTH * 1.2


def test_vehicles_occlude_what_is_behind_them():
    # find scenes where a vehicle pixel borders a building pixel: the vehicle is the nearer
    checked = 0
    for seed in range(60):
        s = D.render(EDGE, seed)
        veh = s.labels == D.VEHICLE
        if not veh.any():
            continue
        for axis in (0, 1):
            a, b = np.moveaxis(s.labels, axis, 0), np.moveaxis(s.depth, axis, 0)
            edge = (a[:-1] == D.VEHICLE) & (a[1:] == D.BUILDING)
            if edge.any():
                assert np.all(b[:-1][edge] < b[1:][edge]), f"seed {seed}"
                checked += 1
    assert checked > 0


def test_default_scene_is_the_built_in_image():
    s = D.default_scene(EDGE)
    np.testing.assert_array_equal(s.image, default_image(EDGE))
    H, W = s.labels.shape
    assert s.labels[2, 2] == D.SKY and s.labels[H - 2, W // 2 - W // 8] == D.ROAD
    assert s.labels[int(0.7 * H), 2] == D.VEGETATION  # the green verge
    assert s.labels[int(0.15 * H), int(0.8 * W)] == D.SKY  # the sun
    assert s.labels[int(0.4 * H), int(0.1 * W)] == D.BUILDING
    assert (s.labels == D.LANE).sum() > 0
    lane = s.labels == D.LANE
    assert s.image[0][lane].mean() > 0.85  # lane stripes are painted white
    assert s.depth[H - 1, W // 2] < s.depth[int(0.7 * H), W // 2] < D.MAX_DEPTH


def test_batch_stacks_scenes():
    images, labels, depth = D.batch(TINY, "val", 5, 3)
    assert images.shape == (3, 3, 32, 64) and labels.shape == depth.shape == (3, 32, 64)
    np.testing.assert_array_equal(images[1], D.scene(TINY, "val", 6).image)
