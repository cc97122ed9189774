"""``edgemoe train``: the loss goes down on tiny, runs are deterministic and resume exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgemoe.cli import main
from edgemoe.config import preset
from edgemoe.golden.fixed.quantize_weights import is_head, storage_cast
from edgemoe.golden.model import M3ViT
from edgemoe.golden.stored import load_stored
from edgemoe.train import NoisyGates, Settings, Trainer, TrainError, cv_squared, head_window

TINY = preset("tiny")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _settings(**kw) -> Settings:
    base = {"steps": 4, "batch": 4, "lr": 2e-3, "warmup": 2, "val_every": 1000, "checkpoint_every": 2}
    return Settings(**{**base, **kw})


def test_loss_goes_down_on_tiny(tmp_path):
    trainer = Trainer(TINY, _settings(steps=60, batch=8, lr=3e-3, warmup=5), tmp_path / "c.ckpt")
    history = trainer.run(progress=False)
    losses = [h["loss"] for h in history]
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.8 * first, f"seed 0: loss {first:.3f} -> {last:.3f}"
    assert "val" in history[-1] and 0.0 <= history[-1]["val"]["mIoU"] <= 1.0


def test_backbone_stays_inside_its_storage_formats(tmp_path):
    trainer = Trainer(TINY, _settings(steps=3, lr=0.5), tmp_path / "c.ckpt")  # a huge rate pushes limits
    trainer.run(progress=False)
    for name, w in trainer.weights().items():
        if not is_head(name):
            fmt = storage_cast(name, TINY).fmt
            assert fmt.min_value <= w.min() and w.max() <= fmt.max_value, name


def test_trains_when_gradients_are_off_globally(tmp_path):
    trainer = Trainer(TINY, _settings(steps=1), tmp_path / "c.ckpt")
    before = trainer.weights()["l0_qkv_weight"]
    with torch.no_grad():
        trainer.run(progress=False)
    assert not np.array_equal(before, trainer.weights()["l0_qkv_weight"])


def test_runs_are_deterministic_and_resume_exactly(tmp_path):
    a = Trainer(TINY, _settings(), tmp_path / "a.ckpt")
    a.run(progress=False)
    b = Trainer(TINY, _settings(steps=2), tmp_path / "b.ckpt")
    b.run(progress=False)
    resumed = Trainer(TINY, _settings(steps=2), tmp_path / "b2.ckpt", resume=tmp_path / "b.ckpt", steps=4)
    assert resumed.step == 2
    resumed.run(progress=False)
    wa, wb = a.weights(), resumed.weights()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in resumed.history]


def test_noisy_gates_route_top_k_and_balance():
    torch.manual_seed(0)
    model = M3ViT(TINY)
    moe = model.blocks[TINY.model.moe_blocks[0]].mlp
    for g in moe.gates:
        torch.nn.init.normal_(g, std=1.0)
    gates = NoisyGates(TINY)
    x = torch.randn(2, TINY.model.tokens, TINY.model.dim)
    routing, balance = gates.route(moe, x, TINY.model.moe_blocks[0], 0, torch.Generator().manual_seed(1))
    T = 2 * TINY.model.tokens
    assert routing.experts.shape == routing.scores.shape == (T, TINY.model.top_k)
    # the chosen experts are distinct and their scores are the (noisy) softmax of those experts
    assert (routing.experts[:, 0] != routing.experts[:, 1]).all()
    torch.testing.assert_close(routing.scores, routing.probs.gather(-1, routing.experts))
    assert balance > 0
    assert float(cv_squared(torch.ones(4))) == 0.0 and float(cv_squared(torch.tensor([1.0, 0, 0, 0]))) > 1


def test_head_window_matches_the_picture():
    rng = np.random.default_rng(0)
    edge = preset("edge-moe")
    window, rows, cols = head_window(edge, 0.5, rng)
    assert window.stage == 2  # of 4 stages: the last two compute a part
    assert (window.rows.stop - window.rows.start, window.cols.stop - window.cols.start) == (16, 32)
    assert (rows.stop - rows.start, cols.stop - cols.start) == (64, 128)
    assert rows.start == 4 * window.rows.start and cols.start == 4 * window.cols.start
    model = M3ViT(edge).train()
    tokens = torch.zeros(1, edge.model.tokens, edge.model.dim)
    assert model.heads[0](tokens, window).shape == (1, 7, 64, 128)
    assert head_window(edge, 1.0, rng) is None


def test_bad_settings_and_checkpoints(tmp_path):
    with pytest.raises(TrainError, match="--batch must be at least 1"):
        Trainer(TINY, _settings(batch=0), tmp_path / "c.ckpt")
    with pytest.raises(TrainError, match="does not exist"):
        Trainer(TINY, _settings(), tmp_path / "c.ckpt", resume=tmp_path / "absent.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(TrainError, match="not a readable training checkpoint"):
        Trainer(TINY, _settings(), tmp_path / "c.ckpt", resume=tmp_path / "junk.ckpt")


def test_train_command_writes_stored_weights(tmp_path, capsys):
    out = tmp_path / "w.npz"
    args = ["train", "--preset", "tiny", "--steps", "2", "--batch", "2", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    weights = load_stored(out, TINY)
    ckpt = out.with_suffix(".ckpt")
    assert ckpt.is_file()
    # the stored backbone is exactly representable in its formats
    for name, w in weights.items():
        if not is_head(name):
            lsb = storage_cast(name, TINY).fmt.lsb
            np.testing.assert_array_equal(np.round(w / lsb) * lsb, w, err_msg=name)
    edge_ckpt = ["train", "--preset", "edge-moe", "--resume", str(ckpt), "--out", str(tmp_path / "e.npz")]
    assert main(edge_ckpt) == 2
    assert "a checkpoint of another model" in capsys.readouterr().err
