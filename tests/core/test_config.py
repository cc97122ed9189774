"""edgemoe.config: presets, validation messages, config files, ``edgemoe config show``."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from edgemoe.cli import main
from edgemoe.config import (
    PRESETS,
    Cast,
    Config,
    ConfigError,
    Overflow,
    Rounding,
    load,
    preset,
    resolve,
    sfix,
    ufix,
)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate(name: str) -> None:
    cfg = preset(name)
    assert cfg.name == name
    # Rebuilding a preset runs validation again.
    assert Config(cfg.name, cfg.model, cfg.formats, cfg.nonlinear, cfg.hw) == cfg


def test_edge_moe_preset_is_the_paper_model() -> None:
    cfg = preset("edge-moe")
    m, hw, f = cfg.model, cfg.hw, cfg.formats
    assert (m.in_chans, m.image_h, m.image_w, m.patch) == (3, 128, 256, 16)
    assert (m.patches, m.tokens, m.dim, m.depth, m.heads, m.head_dim) == (128, 129, 192, 12, 3, 64)
    assert m.mlp_hidden == 768 and m.moe_blocks == (1, 3, 5, 7, 9, 11)
    assert (m.experts, m.top_k, m.expert_hidden, len(m.tasks)) == (16, 2, 384, 2)
    assert (hw.linear_in * hw.linear_out, hw.attn_p, hw.axi_bits, hw.clock_mhz) == (256, 4, 256, 300.0)
    assert f.act.fmt == sfix(32, 10) and f.linear_weight.fmt == sfix(16, 2)
    assert f.attn_bias.fmt == sfix(16, 7) and f.bias.fmt == sfix(16, 5) and f.norm.fmt == sfix(16, 5)
    assert f.patch_weight.fmt == sfix(16, 0) and f.pixel.fmt == ufix(8, 0)
    macs = m.macs()
    assert 780e6 < macs["total"] < 786e6 and 700e6 < macs["linear"] < 710e6  # docs/architecture.md


def test_tiny_preset_has_every_feature() -> None:
    m = preset("tiny").model
    dense = [b for b in range(m.depth) if not m.is_moe(b)]
    assert dense and m.moe_blocks and m.heads >= 2 and m.experts >= 4 and m.top_k == 2
    assert len(m.tasks) == 2


def test_ecp5_preset_is_the_tiny_model_on_the_smallest_array_the_top_takes() -> None:
    cfg, tiny = preset("ecp5"), preset("tiny")
    assert (cfg.model, cfg.formats, cfg.nonlinear) == (tiny.model, tiny.formats, tiny.nonlinear)
    hw = cfg.hw
    # edgemoe_top needs LinearIn == LinearOut >= experts, a multiple of AttnBlock, and token words
    # (LinearIn activations) that tile its memory beats
    assert hw.linear_in == hw.linear_out == cfg.model.experts and hw.linear_in % hw.attn_block == 0
    assert (hw.linear_in * cfg.formats.act.fmt.bits) % hw.axi_bits == 0
    assert hw.linear_in * hw.linear_out * 4 == tiny.hw.linear_in * tiny.hw.linear_out
    assert (hw.attn_p, hw.attn_block, hw.axi_bits) == (1, 2, 64)


def _replace_model(cfg: Config, **changes) -> Config:
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **changes))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"heads": 5}, "model.dim 192 is not divisible by model.heads 5"),
        ({"top_k": 17}, "model.top_k 17 exceeds model.experts 16"),
        ({"image_h": 120}, "image 120x256 is not divisible by patch 16"),
        ({"moe_blocks": (1, 12)}, "model.moe_blocks [1, 12] must lie in 0..11"),
        ({"task_channels": (7,)}, "model.tasks has 2 names but model.task_channels has 1"),
        ({"dim": 200, "heads": 2}, "model.dim 200 is not divisible by hw.linear_in 16"),
        ({"depth": 0}, "model.depth must be in 1..65536, got 0"),
    ],
)
def test_model_validation_messages(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _replace_model(preset("edge-moe"), **changes)


def test_validation_lists_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as e:
        _replace_model(preset("edge-moe"), heads=5, top_k=17)
    assert "model.heads 5" in str(e.value) and "model.top_k 17" in str(e.value)
    assert str(e.value).startswith("config 'edge-moe'")


def test_hardware_validation_messages() -> None:
    cfg = preset("edge-moe")
    with pytest.raises(ConfigError, match=re.escape("hw.axi_bits 100 must be 32, 64, 128, 256 or 512")):
        dataclasses.replace(cfg, hw=dataclasses.replace(cfg.hw, axi_bits=100))
    with pytest.raises(ConfigError, match=re.escape("head_dim 64 is not divisible by hw.attn_block 48")):
        dataclasses.replace(cfg, hw=dataclasses.replace(cfg.hw, attn_block=48))


@pytest.mark.parametrize("table", ["exp_table_bits", "recip_table_bits"])
def test_interpolated_tables_need_a_fraction_bit(table: str) -> None:
    cfg = preset("tiny")
    nl = dataclasses.replace(cfg.nonlinear, work_frac_bits=12)
    dataclasses.replace(cfg, nonlinear=dataclasses.replace(nl, **{table: 11}))  # one bit: valid
    with pytest.raises(ConfigError, match=re.escape(f"nonlinear.{table} 12 must be below work_frac_bits 12")):
        dataclasses.replace(cfg, nonlinear=dataclasses.replace(nl, **{table: 12}))


@pytest.mark.parametrize(
    "cast_name, cast, message",
    [
        ("softmax_sum", Cast(ufix(10, 6)), "cannot hold a sum of 129 probabilities"),
        ("exp_out", Cast(ufix(18, 0)), "formats.exp_out ap_ufixed<18, 0> must hold 1.0"),
        ("pixel", Cast(sfix(8, 1)), "formats.pixel must be unsigned"),
        ("ln_var", Cast(ufix(24, 20), Rounding.TRUNCATE), "cannot represent ln_eps"),
    ],
)
def test_format_validation_messages(cast_name: str, cast: Cast, message: str) -> None:
    cfg = preset("edge-moe")
    with pytest.raises(ConfigError, match=re.escape(message)):
        dataclasses.replace(cfg, formats=dataclasses.replace(cfg.formats, **{cast_name: cast}))


def test_format_itself_rejects_impossible_widths() -> None:
    with pytest.raises(ConfigError, match="1..62 bits, got 70"):
        sfix(70, 10)
    with pytest.raises(ConfigError, match="signed fixed-point format needs at least 2 bits"):
        sfix(1, 1)


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(
        ConfigError, match="unknown preset 'big'; known presets: edge-moe, zcu102, tiny, ecp5, zcu102-a16"
    ):
        preset("big")


TOML = """\
preset = "tiny"
[model]
depth = 4
moe_blocks = [1, 3]
[formats.act]
bits = 24
int_bits = 8
rounding = "truncate"
[hw]
attn_p = 3
clock_mhz = 250
"""

YAML = """\
preset: tiny
model:
  depth: 4
  moe_blocks: [1, 3]
formats:
  act: {bits: 24, int_bits: 8, rounding: truncate}
hw:
  attn_p: 3
  clock_mhz: 250
"""


@pytest.mark.parametrize("suffix, text", [(".toml", TOML), (".yaml", YAML)])
def test_config_file_is_a_preset_plus_overrides(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"mine{suffix}"
    path.write_text(text)
    cfg = load(path)
    base = preset("tiny")
    assert cfg.name == "tiny+custom"
    assert cfg.model.depth == 4 and cfg.model.moe_blocks == (1, 3)
    assert cfg.model.dim == base.model.dim and cfg.model.experts == base.model.experts
    assert cfg.formats.act == Cast(sfix(24, 8), Rounding.TRUNCATE, Overflow.SATURATE)
    assert cfg.formats.attn_score == base.formats.attn_score
    assert cfg.hw.attn_p == 3 and cfg.hw.clock_mhz == 250.0 and cfg.hw.linear_in == base.hw.linear_in
    assert cfg.config_id != base.config_id
    # The same file read as TOML and as YAML gives the same config.
    other = tmp_path / ("other.yaml" if suffix == ".toml" else "other.toml")
    other.write_text(YAML if suffix == ".toml" else TOML)
    assert load(other) == cfg


def test_config_id_ignores_the_name_but_not_the_formats() -> None:
    cfg = preset("tiny")
    assert dataclasses.replace(cfg, name="renamed").config_id == cfg.config_id
    narrower = dataclasses.replace(cfg, formats=dataclasses.replace(cfg.formats, act=Cast(sfix(24, 8))))
    assert narrower.config_id != cfg.config_id


@pytest.mark.parametrize(
    "text, message",
    [
        ('preset = "tiny"\n[model]\ndepht = 3\n', "config.model: unknown setting 'depht'; known: image_h"),
        ('preset = "tiny"\n[modle]\ndepth = 3\n', "config: unknown setting 'modle'"),
        ('preset = "tiny"\n[model]\ndepth = "3"\n', "config.model.depth: expected int, got '3'"),
        ('preset = "tiny"\n[model]\ndepth = 2.5\n', "config.model.depth: expected int, got 2.5"),
        ('preset = "tiny"\n[model]\nmoe_blocks = 1\n', "config.model.moe_blocks: expected a list, got 1"),
        ('preset = "tiny"\n[hw]\nattn_p = true\n', "config.hw.attn_p: expected int, got True"),
        (
            'preset = "tiny"\n[formats.act]\nrounding = "nearest"\n',
            "config.formats.act.rounding: 'nearest' is not one of truncate, round_half_up",
        ),
        (
            'preset = "tiny"\n[formats.act]\noverflow = "clip"\n',
            "config.formats.act.overflow: 'clip' is not one of wrap, saturate",
        ),
        ('preset = "huge"\n', "unknown preset 'huge'"),
        ('preset = "tiny"\n[model]\nheads = 3\n', "model.dim 32 is not divisible by model.heads 3"),
        ("preset = \n", "is not valid"),
    ],
)
def test_config_file_errors_name_the_setting(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)) as e:
        load(path)
    assert str(path) in str(e.value)


def test_config_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "missing.toml")
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"unknown extension '\.json' \(use \.toml, \.yaml or \.yml\)"):
        load(tmp_path / "c.json")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a table of settings"):
        load(tmp_path / "list.yaml")
    (tmp_path / "t.toml").write_text('preset = "tiny"\n')
    assert resolve("tiny", tmp_path / "t.toml") == preset("tiny")
    with pytest.raises(ConfigError, match="based on preset 'tiny' but --preset says 'edge-moe'"):
        resolve("edge-moe", tmp_path / "t.toml")


def test_config_show_prints_sections_formats_and_derived_figures(capsys: pytest.CaptureFixture) -> None:
    assert main(["config", "show", "--preset", "edge-moe"]) == 0
    out = capsys.readouterr().out
    cfg = preset("edge-moe")
    assert out.startswith(f"config 'edge-moe' (built-in preset), CONFIG_ID 0x{cfg.config_id:08x}")
    for section in ("model", "derived", "formats (cast points)", "nonlinear functions", "hardware"):
        assert f"\n{section}\n" in out, section
    assert re.search(r"tokens\s+129 \(patches \+ class token\)", out)
    assert re.search(r"head_dim\s+64", out)
    assert re.search(r"MACs / image / task\s+782\.\d M", out)
    assert re.search(
        r"act\s+ap_fixed<32, 10, AP_RND, AP_SAT>\s+\[-512, 512\)\s+lsb 2\^-22\s+round half up", out
    )
    assert re.search(r"ln_var\s+ap_ufixed<48, 20, AP_TRN, AP_SAT>.*truncate \(toward -inf\), saturate", out)
    for name, _ in cfg.formats.items():
        assert re.search(rf"\n  {name}\s+ap_u?fixed<", out), name
    assert "16 in x 16 out = 256 MAC/cycle" in out and "xczu9eg-ffvb1156-2-e" in out


def test_config_show_of_a_file_and_as_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    path = tmp_path / "mine.toml"
    path.write_text(TOML)
    assert main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"config 'tiny+custom' (file {path})" in out and "4 blocks; MoE blocks: 1, 3" in out
    assert re.search(r"act\s+ap_fixed<24, 8, AP_TRN, AP_SAT>", out)
    assert main(["config", "show", "--config", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"]["depth"] == 4 and data["formats"]["act"]["rounding"] == "truncate"
    assert data["config_id"] == f"0x{load(path).config_id:08x}"


def test_config_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["config", "show", "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "edgemoe config: error: unknown preset 'nope'; known presets: "
        "edge-moe, zcu102, tiny, ecp5, zcu102-a16"
    )
    path = tmp_path / "bad.yaml"
    path.write_text("model: {heads: 5}\n")
    assert main(["config", "emit-hls", "--config", str(path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "model.heads 5" in err and "Traceback" not in err
    assert not (tmp_path / "edgemoe_config.h").exists()


def test_the_config_file_example_in_the_help_loads(tmp_path: Path) -> None:
    from edgemoe.cli import CONFIG_FILE_EXAMPLE

    toml = "\n".join(line[4:] for line in CONFIG_FILE_EXAMPLE.splitlines() if line.startswith("    "))
    path = tmp_path / "example.toml"
    path.write_text(toml)
    cfg = load(path)
    assert cfg.model.depth == 4 and cfg.formats.act.fmt == sfix(24, 8) and cfg.hw.attn_p == 2
    assert cfg.formats.act.rounding is Rounding.TRUNCATE
