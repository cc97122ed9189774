"""``edgemoe calibrate``: measured ranges, the format choice, the written config file."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgemoe.calibrate import block_ranges, calibrated, choose_formats, int_bits_for
from edgemoe.cli import main
from edgemoe.config import Cast, Formats, Rounding, load, preset, sfix, to_toml
from edgemoe.fidelity import float_blocks
from edgemoe.golden import images, weights
from edgemoe.golden.fixed.model import FixedM3ViT

SEED = 0


@pytest.mark.parametrize(
    "max_abs, margin, least, int_bits",
    [
        (3.0, 1.25, 4, 4),  # 3.75 < 8: the floor decides
        (7.0, 1.25, 4, 5),  # 8.75 needs [-16, 16)
        (6.4, 1.25, 4, 5),  # exactly 8.0 is outside [-8, 8)
        (6.3, 1.25, 4, 4),  # 7.875 is inside
        (6.3, 2.0, 4, 5),  # margin 2: one spare bit
        (0.0, 1.25, 1, 1),
        (100.0, 1.0, 1, 8),  # [-128, 128)
    ],
)
def test_int_bits_hold_the_margin(max_abs: float, margin: float, least: int, int_bits: int) -> None:
    assert int_bits_for(max_abs, margin, least) == int_bits


@pytest.fixture(scope="module")
def tiny():
    cfg = preset("tiny")
    return cfg, weights.synthetic(cfg, seed=SEED), np.asarray(images.default_image(cfg), dtype=np.float32)


def test_ranges_name_the_reference_casts_and_equal_float(tiny) -> None:
    cfg, w, image = tiny
    ranges = block_ranges(cfg, w, [image])
    casts = set(FixedM3ViT(cfg, w).forward(image, 0).log.counts)
    for i, r in enumerate(ranges):
        names = set(r) - {f"l{i}.entry"}
        assert names <= casts, f"block {i}: {sorted(names - casts)} are no cast of the reference"
        assert {f"l{i}.resid1", f"l{i}.resid2", f"l{i}.qkv", f"l{i}.attn.out"} <= names
    assert "l1.moe.gate" in ranges[1] and "l0.fc1" in ranges[0] and "patch_embed.pos_add" in ranges[0]
    # the residual stream after each block is the float model's block output, over both tasks
    for i in range(cfg.model.depth):
        peak = max(np.abs(float_blocks(cfg, w, image, t)[1][i]).max() for t in range(len(cfg.model.tasks)))
        assert ranges[i][f"l{i}.resid2"] == pytest.approx(peak, rel=1e-12), f"seed {SEED}, block {i}"
        if i:
            assert ranges[i][f"l{i}.entry"] == ranges[i - 1][f"l{i - 1}.resid2"]


def test_chosen_formats_hold_every_range_with_the_margin(tiny) -> None:
    cfg, w, image = tiny
    ranges = block_ranges(cfg, w, [image])
    formats = choose_formats(cfg, ranges, 16, 1.25)
    for r, fmt in zip(ranges, formats, strict=True):
        assert fmt.bits == 16 and fmt.signed
        assert fmt.max_value >= 1.25 * max(r.values()) - fmt.lsb
        assert fmt.int_bits == cfg.nonlinear.gelu_range_log2 + 1 or 2 ** (fmt.int_bits - 2) <= 1.25 * max(
            r.values()
        )
    truncating = dataclasses.replace(cfg, formats=Formats(act=Cast(sfix(32, 10), Rounding.TRUNCATE)))
    chosen = calibrated(truncating, formats, "t16")
    assert chosen.name == "t16" and chosen.formats.act.fmt == max(formats, key=lambda f: f.int_bits)
    assert all(c.rounding is Rounding.TRUNCATE for c in (chosen.formats.act, *chosen.formats.block_act))
    assert [c.fmt for c in chosen.formats.block_act] == formats


def test_config_file_round_trip(tmp_path: Path) -> None:
    cfg = calibrated(preset("zcu102"), [sfix(16, 5 + i % 2) for i in range(12)], "z16")
    path = tmp_path / "z.toml"
    path.write_text(to_toml(cfg, "a comment"))
    assert load(path) == cfg
    assert path.read_text().startswith('# a comment\npreset = "zcu102"\nname = "z16"\n')


def test_command_writes_a_config_every_command_reads(tmp_path: Path, capsys) -> None:
    out = tmp_path / "t16.toml"
    assert main(["calibrate", "--preset", "tiny", "--weights", "seeded", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    cfg = load(out)
    assert cfg.name == "tiny-a16" and len(cfg.formats.block_act) == 2
    assert "block   max |x| at" in printed and "SQNR semseg dB" in printed
    assert f"wrote {out} (config 'tiny-a16', formats.act {cfg.formats.act.fmt})" in printed
    assert (
        "# written by `edgemoe calibrate --preset tiny --weights seeded --seed 0 --bits 16" in out.read_text()
    )
    assert main(["config", "show", "--config", str(out)]) == 0


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--margin", "0.5"], "--margin must be a finite factor of 1 or more, got 0.5"),
        (["--bits", "1"], "--bits must be 2..62, got 1"),
        (["--images", "0"], "--images must be 1 or more, got 0"),
        (["--images", "2", "--image", "x.png"], "give --image FILE or --images N, not both"),
        (
            ["--bits", "3"],
            "config 'tiny-a3': formats.act ap_fixed<3, 4> has negative fraction bits",
        ),
        (["--out-suffix"], "a config file ends in .toml"),
    ],
)
def test_bad_options_are_one_line(tmp_path: Path, capsys, args: list[str], needle: str) -> None:
    out = tmp_path / "o" / "c.toml"
    (tmp_path / "o").mkdir()
    if args == ["--out-suffix"]:
        args, out = [], out.with_suffix(".txt")
    status = main(["calibrate", "--preset", "tiny", "--weights", "seeded", *args, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and needle in err[-1], err
    assert list((tmp_path / "o").iterdir()) == []
