"""The ``edgemoe`` command line: help, generators, ``infer`` outputs and its error handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgemoe import emit
from edgemoe.backends import BACKENDS, TaskOutput, register_backend
from edgemoe.cli import build_parser, main
from edgemoe.config import preset
from edgemoe.golden import weights as W
from edgemoe.golden.images import default_image
from edgemoe.golden.model import M3ViT
from edgemoe.infer import load_weights

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_help_lists_commands_and_examples() -> None:
    r = subprocess.run([sys.executable, "-m", "edgemoe", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for word in ("config", "infer", "examples:", "edgemoe infer"):
        assert word in r.stdout
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        text = p.format_help()
        assert "examples:" in text, f"'edgemoe {name} --help' has no examples"
    infer_help = sub.choices["infer"].format_help()
    for option in ("--preset", "--config", "--weights", "--image", "--task", "--out", "--backend"):
        assert option in infer_help
    assert "float" in infer_help


def test_emit_writes_into_build_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["config", "emit-hls", "--preset", "tiny"]) == 0
    assert main(["config", "emit-sv", "--preset", "tiny"]) == 0
    cfg = preset("tiny")
    assert (tmp_path / "build/tiny" / emit.HLS_FILE).read_text() == emit.emit_hls(cfg)
    assert (tmp_path / "build/tiny" / emit.SV_FILE).read_text() == emit.emit_sv(cfg)
    assert main(["config", "emit-sv", "--preset", "edge-moe", "--out", "gen"]) == 0
    assert (tmp_path / "gen" / emit.SV_FILE).read_text() == emit.emit_sv(preset("edge-moe"))
    assert "wrote gen/edgemoe_pkg.sv" in capsys.readouterr().out


def _float_reference(cfg, weights, image, task):
    model = M3ViT.from_weights(cfg, weights)
    out = model(torch.from_numpy(image)[None], task)
    return out.tokens[0].numpy(), out.head[0].numpy()


def test_infer_without_arguments_runs_the_builtin_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["infer"]) == 0
    captured = capsys.readouterr()
    cfg = preset("edge-moe")
    m = cfg.model
    out = tmp_path / "out"
    with np.load(out / "outputs.npz") as z:
        data = {k: z[k] for k in z.files}
    assert str(data["config"]) == "edge-moe" and int(data["config_id"]) == cfg.config_id
    assert list(data["tasks"]) == list(m.tasks) and str(data["backend"]) == "float"
    np.testing.assert_array_equal(data["image"], default_image(cfg))
    for t, name in enumerate(m.tasks):
        assert data[f"tokens_{name}"].shape == (m.tokens, m.dim)
        assert data[f"head_{name}"].shape == (m.task_channels[t], m.image_h, m.image_w)
    # Task 1 against the golden model run directly on the default weights: the same numbers.
    tokens, head = _float_reference(cfg, load_weights(cfg, None), default_image(cfg), 1)
    np.testing.assert_array_equal(data[f"tokens_{m.tasks[1]}"], tokens)
    np.testing.assert_array_equal(data[f"head_{m.tasks[1]}"], head)
    for picture in ("input.png", *(f"{name}.png" for name in m.tasks)):
        assert (out / picture).read_bytes()[:8] == PNG_MAGIC, picture
    lines = captured.out.splitlines()
    assert lines[0].startswith("semseg") and "classes" in lines[0] and "%" in lines[0]
    assert lines[1].startswith("depth") and "range [" in lines[1]
    assert "back end 'float'" in captured.err and "done in" in captured.err


def test_infer_task_selection_and_project_weights(tmp_path: Path, capsys) -> None:
    cfg = preset("tiny")
    weights = W.synthetic(cfg, seed=3)
    wfile = W.save(weights, tmp_path / "w.npz", cfg)
    for task in ("depth", "1"):
        out = tmp_path / f"t{task}"
        assert (
            main(["infer", "--preset", "tiny", "--weights", str(wfile), "--task", task, "--out", str(out)])
            == 0
        )
        with np.load(out / "outputs.npz") as z:
            assert "tokens_semseg" not in z.files and list(z["tasks"]) == ["depth"]
            tokens, head = _float_reference(cfg, weights, default_image(cfg), 1)
            np.testing.assert_array_equal(z["tokens_depth"], tokens)
            np.testing.assert_array_equal(z["head_depth"], head)
        assert (out / "depth.png").exists() and not (out / "semseg.png").exists()
    # --seed changes the synthetic weights; the same seed reproduces them exactly.
    runs = []
    for seed in ("3", "3", "4"):
        out = tmp_path / f"s{len(runs)}"
        args = ["infer", "--preset", "tiny", "--weights", "seeded", "--seed", seed, "--no-pictures"]
        assert main([*args, "--out", str(out)]) == 0
        with np.load(out / "outputs.npz") as z:
            runs.append(z["tokens_semseg"])
        assert not (out / "input.png").exists()
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_infer_reads_an_edgemoe_dir_and_a_picture(tmp_path: Path, caplog) -> None:
    from PIL import Image

    cfg = preset("tiny")
    m = cfg.model
    weights = W.synthetic(cfg, seed=5)
    W.save_edgemoe_dir(weights, tmp_path / "bins", cfg, include_heads=False)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(m.image_h, m.image_w, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    out = tmp_path / "out"
    args = ["infer", "--preset", "tiny", "--weights", str(tmp_path / "bins"), "--seed", "5"]
    assert main([*args, "--image", str(tmp_path / "in.png"), "--out", str(out)]) == 0
    assert "task-head tensors from synthetic weights" in caplog.text  # the .bin folder has no heads
    image = pixels.transpose(2, 0, 1).astype(np.float32) / 256
    with np.load(out / "outputs.npz") as z:
        np.testing.assert_array_equal(z["image"], image)
        tokens, head = _float_reference(cfg, weights, image, 0)
        np.testing.assert_array_equal(z["tokens_semseg"], tokens)
        np.testing.assert_array_equal(z["head_semseg"], head)


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--task", "segmentation"],
            "unknown task 'segmentation'; config 'tiny' has tasks 0 = semseg, 1 = depth",
        ),
        (["--task", "2"], "unknown task '2'"),
        (["--image", "missing.png"], "missing.png does not exist"),
        (["--image", "bad.png"], "bad.png: not a readable image"),
        (["--image", "wrong.npy"], "wrong.npy: shape [3, 8, 8], config 'tiny' expects [3, 32, 64]"),
        (["--weights", "nowhere"], "nowhere"),
        (["--weights", "edge.npz"], "saved for a different model"),
        (["--config", "c.toml"], "config.model: unknown setting 'depht'"),
        (["--threads", "-1"], "--threads must be 0 (torch's choice) or more, got -1"),
    ],
)
def test_infer_errors_are_one_line_exit_2(tmp_path: Path, monkeypatch, capsys, extra, message) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    np.save(tmp_path / "wrong.npy", np.zeros((3, 8, 8), np.float32))
    (tmp_path / "c.toml").write_text('preset = "tiny"\n[model]\ndepht = 3\n')
    if "edge.npz" in extra:
        W.save(W.synthetic(preset("edge-moe")), tmp_path / "edge.npz", preset("edge-moe"))
    args = ["infer", *([] if "--config" in extra else ["--preset", "tiny"]), *extra, "--out", "o"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("edgemoe infer: error: ") and message in err[-1], err
    assert not any("Traceback" in line for line in err)
    assert not (tmp_path / "o" / "outputs.npz").exists()


def test_unknown_backend_is_refused_by_the_parser(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["infer", "--backend", "nope"])
    assert e.value.code == 2 and "invalid choice: 'nope'" in capsys.readouterr().err


def test_a_registered_backend_runs_and_the_host_adds_the_head(tmp_path: Path, capsys) -> None:
    """A back end that returns only backbone tokens gets the float head run on the host."""
    calls = []

    def prepare(cfg, weights):
        model = M3ViT.from_weights(cfg, weights)

        def run(image, task):
            calls.append(task)
            tokens = model.forward_backbone(torch.from_numpy(image)[None], task).tokens[0].numpy()
            return TaskOutput(tokens=tokens, info={"note": "backbone only"})

        return run

    register_backend("backbone-only", prepare, "float backbone, host head")
    try:
        out = tmp_path / "out"
        assert main(["infer", "--preset", "tiny", "--backend", "backbone-only", "--out", str(out)]) == 0
    finally:
        del BACKENDS["backbone-only"]
    assert calls == [0, 1]
    cfg = preset("tiny")
    with np.load(out / "outputs.npz") as z:
        for t, name in enumerate(cfg.model.tasks):
            tokens, head = _float_reference(cfg, load_weights(cfg, None), default_image(cfg), t)
            np.testing.assert_array_equal(z[f"tokens_{name}"], tokens)
            np.testing.assert_array_equal(z[f"head_{name}"], head)
    assert "note backbone only" in capsys.readouterr().out
