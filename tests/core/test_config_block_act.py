"""``formats.block_act``: one activation format per block, its validation, files and description."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgemoe.cli import main
from edgemoe.config import PRESETS, Cast, ConfigError, Rounding, from_dict, load, preset, sfix, ufix

TOML = """preset = "tiny"
[[formats.block_act]]
bits = 16
int_bits = 5
[[formats.block_act]]
bits = 16
int_bits = 6
rounding = "truncate"
"""


def _tiny(*casts: Cast):
    tiny = preset("tiny")
    return dataclasses.replace(tiny, formats=dataclasses.replace(tiny.formats, block_act=casts))


def test_block_config_replaces_act_alone() -> None:
    cfg = _tiny(Cast(sfix(16, 5)), Cast(sfix(16, 6), Rounding.TRUNCATE))
    for i, cast in enumerate(cfg.formats.block_act):
        block = cfg.block_config(i)
        assert block.formats.act == cast and block.formats.block_act == ()
        assert dataclasses.replace(block.formats, act=cfg.formats.act, block_act=cfg.formats.block_act) == (
            cfg.formats
        )
        assert (block.model, block.hw, block.nonlinear, block.name) == (
            cfg.model,
            cfg.hw,
            cfg.nonlinear,
            cfg.name,
        )
    assert preset("tiny").block_config(1) is preset("tiny")


@pytest.mark.parametrize("name", sorted(n for n, c in PRESETS.items() if not c.formats.block_act))
def test_configs_without_the_list_keep_their_dict_and_id(name: str) -> None:
    cfg = preset(name)
    assert "block_act" not in cfg.to_dict()["formats"]
    assert from_dict({"preset": name}).config_id == cfg.config_id


def test_the_list_changes_the_config_id() -> None:
    same = _tiny(preset("tiny").formats.act, preset("tiny").formats.act)
    assert same.config_id != preset("tiny").config_id


@pytest.mark.parametrize(
    "casts, needle",
    [
        (
            (Cast(sfix(16, 5)),),
            "formats.block_act has 1 formats but model.depth is 2 (one per block, or none)",
        ),
        (
            (Cast(sfix(16, 5)), Cast(sfix(16, 3))),
            "formats.block_act[1] ap_fixed<16, 3>: nonlinear.gelu_range_log2 3 exceeds the activation range",
        ),
        (
            (Cast(ufix(16, 5)), Cast(sfix(16, 5))),
            "formats.block_act[0] ap_ufixed<16, 5>: formats.act and formats.attn_score must be signed",
        ),
        ((Cast(sfix(16, 5)), Cast(sfix(32, 11))), "formats.ln_mean ap_fixed<32, 10> must be signed and hold"),
        ((Cast(sfix(16, 5)), Cast(sfix(16, 17))), "formats.act ap_fixed<16, 17> has negative fraction bits"),
    ],
)
def test_bad_block_formats_are_one_line_errors(casts: tuple[Cast, ...], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        _tiny(*casts)
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_file_round_trip_and_inherited_modes(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text(TOML)
    cfg = load(path)
    assert cfg.formats.block_act == (Cast(sfix(16, 5)), Cast(sfix(16, 6), Rounding.TRUNCATE))
    yaml = tmp_path / "b.yaml"
    yaml.write_text("preset: tiny\nformats:\n  block_act:\n    - {bits: 16, int_bits: 5}\n"
                    "    - {bits: 16, int_bits: 6, rounding: truncate}\n")  # fmt: skip
    assert load(yaml).formats.block_act == cfg.formats.block_act
    with pytest.raises(ConfigError, match=r"config.formats.block_act: expected a list of formats, got 3"):
        from_dict({"preset": "tiny", "formats": {"block_act": 3}})
    with pytest.raises(ConfigError, match=r"config.formats.block_act\[0\]: expected a table of settings"):
        from_dict({"preset": "tiny", "formats": {"block_act": [16, 16]}})


def test_config_show_lists_the_blocks(tmp_path: Path, capsys) -> None:
    (tmp_path / "b.toml").write_text(TOML)
    assert main(["config", "show", "--config", str(tmp_path / "b.toml")]) == 0
    out = capsys.readouterr().out
    assert "    block 0            ap_fixed<16, 5, AP_RND, AP_SAT>" in out
    assert "    block 1            ap_fixed<16, 6, AP_TRN, AP_SAT>" in out


@pytest.mark.parametrize("kind", ["emit-hls", "emit-sv"])
def test_generators_refuse_the_list(tmp_path: Path, capsys, kind: str) -> None:
    (tmp_path / "b.toml").write_text(TOML)
    status = main(["config", kind, "--config", str(tmp_path / "b.toml"), "--out", str(tmp_path / "gen")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and "formats.block_act" in err[-1] and "not supported by the generated" in err[-1]
    assert not (tmp_path / "gen").exists()
