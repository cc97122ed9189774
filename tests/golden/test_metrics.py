"""Task metrics on hand-made predictions whose values are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgemoe.golden.dataset import MAX_DEPTH
from edgemoe.golden.metrics import Depth, Routing, Segmentation


def test_segmentation_by_hand():
    true = np.array([[0, 0, 1, 1], [2, 2, 2, 2]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 2]])
    seg = Segmentation(4)
    seg.add(pred, true)
    # class 0: TP 1, FP 1 (a 2 called 0), FN 1 (a 0 called 1) -> 1/3
    # class 1: TP 2, FP 1 -> 2/3; class 2: TP 3, FN 1 -> 3/4; class 3 never seen -> not counted
    np.testing.assert_allclose(seg.iou()[:3], [1 / 3, 2 / 3, 3 / 4])
    assert math.isnan(seg.iou()[3])
    assert seg.miou() == pytest.approx((1 / 3 + 2 / 3 + 3 / 4) / 3)
    assert seg.pixel_accuracy() == pytest.approx(6 / 8)


def test_segmentation_takes_scores_and_accumulates():
    true = np.array([[0, 1], [1, 1]])
    scores = np.zeros((2, 2, 2))
    scores[1] = 1.0  # everything class 1
    seg = Segmentation(2)
    seg.add(scores, true)
    assert seg.pixel_accuracy() == pytest.approx(3 / 4)
    assert seg.miou() == pytest.approx((0 + 3 / 4) / 2)
    seg.add(true, true)  # a perfect second image
    assert seg.pixel_accuracy() == pytest.approx(7 / 8)
    np.testing.assert_array_equal(seg.confusion, [[1, 1], [0, 6]])
    perfect = Segmentation(2)
    perfect.add(true, true)
    assert perfect.summary() == {"mIoU": 1.0, "pixel_acc": 1.0}


def test_depth_by_hand():
    true = np.array([[1.0, 2.0], [4.0, 10.0]])
    pred = np.array([[1.0, 2.4], [6.0, 10.0]])
    d = Depth()
    d.add(pred[None], true)
    s = d.summary()
    assert s["rmse"] == pytest.approx(math.sqrt((0.4**2 + 2.0**2) / 4))
    assert s["abs_rel"] == pytest.approx((0.2 + 0.5) / 4)
    assert s["delta1"] == pytest.approx(3 / 4)  # 2.4 / 2 = 1.2 passes, 6 / 4 = 1.5 does not


def test_depth_clips_predictions():
    true = np.full((1, 2), 2.0)
    d = Depth()
    d.add(np.array([[-5.0, 2 * MAX_DEPTH]]), true)
    s = d.summary()
    assert s["rmse"] == pytest.approx(math.sqrt(((2 - 1e-3) ** 2 + (MAX_DEPTH - 2) ** 2) / 2))
    assert s["delta1"] == 0.0


def test_routing_fraction():
    r = Routing()
    r.add(3, 100)
    r.add(1, 100)
    assert r.summary() == {"topk_flip": 0.02}
    with pytest.raises(AssertionError, match="5 flips out of 4"):
        r.add(5, 4)
    assert math.isnan(Routing().summary()["topk_flip"])
