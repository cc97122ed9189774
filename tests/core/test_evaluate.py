"""``edgemoe eval``: metrics per back end against known answers, the table and the JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgemoe import evaluate
from edgemoe.backends import BACKENDS, TaskOutput, register_backend
from edgemoe.cli import main
from edgemoe.config import preset
from edgemoe.golden import dataset as D

TINY = preset("tiny")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def oracle():
    """A back end that answers with the scene's own labels and depth (found by its picture)."""

    def prepare(cfg, weights):
        scenes = [D.scene(cfg, "test", i) for i in range(4)]

        def run(image, task):
            s = next(s for s in scenes if np.array_equal(s.image, image))
            m = cfg.model
            if m.tasks[task] == "semseg":
                head = np.eye(m.task_channels[task], dtype=np.float32)[s.labels].transpose(2, 0, 1)
            else:
                head = s.depth[None]
            return TaskOutput(np.zeros((m.tokens, m.dim), np.float32), head, {"top-k diff": 3})

        return run

    register_backend("oracle", prepare, "the right answer")
    yield "oracle"
    del BACKENDS["oracle"]


def test_the_right_answer_scores_perfectly(oracle, tmp_path, capsys):
    rows = evaluate.run(TINY, "seeded", [oracle], images=3, json_path=tmp_path / "e.json")
    by = {r["backend"]: r for r in rows}
    m = by[oracle]["metrics"]
    assert m["mIoU"] == 1.0 and m["pixel_acc"] == 1.0
    assert m["rmse"] == 0.0 and m["abs_rel"] == 0.0 and m["delta1"] == 1.0
    routed = 3 * 2 * TINY.model.tokens * len(TINY.model.moe_blocks)  # scenes x tasks x tokens x blocks
    assert m["topk_flip"] == pytest.approx(3 * 3 * 2 / routed)
    # float ran on the same scenes, next to it
    assert by["float"]["images"] == 3 and by["float"]["metrics"]["mIoU"] < 1.0
    assert m["d_mIoU"] == pytest.approx(1.0 - by["float"]["metrics"]["mIoU"])
    doc = json.loads((tmp_path / "e.json").read_text())
    assert doc["config"] == "tiny" and [r["backend"] for r in doc["rows"]] == ["float", oracle]
    assert doc["rows"][1]["metrics"]["mIoU"] == 1.0 and "topk_flip" not in doc["rows"][0]["metrics"]
    out = capsys.readouterr().out
    assert "mIoU" in out and "δ<1.25" in out and "oracle" in out and "100.00" in out


def test_reference_next_to_float_on_seeded_weights(tmp_path, capsys):
    path = tmp_path / "e.json"
    rows = evaluate.run(
        TINY, "seeded", ["float", "reference", "csim"], images=2, slow_images=1, json_path=path
    )
    by = {(r["backend"], r["images"]): r for r in rows}
    assert set(by) == {("float", 2), ("reference", 2), ("float", 1), ("csim", 1)}
    ref = by[("reference", 2)]["metrics"]
    assert 0.0 <= ref["topk_flip"] <= 1.0
    assert abs(ref["d_mIoU"]) < 0.01 and abs(ref["d_rmse"]) < 0.01
    assert by[("csim", 1)]["bit_exact_vs_reference"] == {"equal": 2, "compared": 2}
    assert "csim: 1 of 2 scenes" in capsys.readouterr().out
    assert json.loads(path.read_text())["rows"][-1]["metrics"]["topk_flip"] is None  # csim reports none


def test_bad_requests_are_one_line_errors(capsys):
    assert main(["eval", "--preset", "tiny", "--images", "0"]) == 2
    assert "--images and --slow-images must be at least 1" in capsys.readouterr().err
    assert main(["eval", "--preset", "tiny", "--images", "20000"]) == 2
    assert "split 'test' has scenes 0..9999" in capsys.readouterr().err
