"""The ``zcu102-a16`` preset: calibrated formats from one committed file, a point the RTL top runs."""

from __future__ import annotations

import numpy as np
import pytest

from edgemoe.calibrate import DEFAULT_BITS, DEFAULT_MARGIN, block_ranges, choose_formats
from edgemoe.config import PRESET_DIR, load, preset
from edgemoe.golden import images
from edgemoe.golden.stored import trained_path
from edgemoe.infer import load_weights
from edgemoe.perf import predict, rtl_config_problems
from edgemoe.resources import dsp_per_multiply

FILE = PRESET_DIR / "edge-moe-a16.toml"


def test_the_preset_takes_the_committed_formats() -> None:
    cfg, committed = preset("zcu102-a16"), load(FILE)
    assert cfg.formats == committed.formats and cfg.model == committed.model == preset("edge-moe").model
    assert len(cfg.formats.block_act) == cfg.model.depth
    assert all(c.fmt.bits == 16 and c.fmt.signed for c in (cfg.formats.act, *cfg.formats.block_act))
    assert cfg.formats.act.fmt.int_bits == max(c.fmt.int_bits for c in cfg.formats.block_act)
    assert FILE.read_text().startswith(
        "# written by `edgemoe calibrate --preset edge-moe --bits 16 --margin 1.25 --out "
        "edgemoe/presets/edge-moe-a16.toml`"
    )


def test_calibrating_again_gives_the_committed_formats() -> None:
    """The command of the file's first line, on the trained model and the built-in image."""
    cfg = preset("edge-moe")
    if trained_path(cfg) is None:
        pytest.skip("no trained edge-moe model in golden/trained/")
    image = np.asarray(images.default_image(cfg), dtype=np.float32)
    ranges = block_ranges(cfg, load_weights(cfg, None), [image])
    fresh = choose_formats(cfg, ranges, DEFAULT_BITS, DEFAULT_MARGIN)
    assert fresh == [c.fmt for c in load(FILE).formats.block_act]


def test_the_rtl_top_elaborates_its_parallelism_at_one_dsp_per_mac() -> None:
    cfg = preset("zcu102-a16")
    assert rtl_config_problems(cfg) == []
    assert dsp_per_multiply(cfg.formats.linear_weight.fmt.bits, cfg.formats.act.fmt.bits) == 1
    assert dsp_per_multiply(cfg.formats.act.fmt.bits, cfg.formats.act.fmt.bits) == 1  # q·k
    # the sweep's fastest point the RTL top runs at A16 (edgemoe perf --sweep on this config)
    assert predict(cfg).cycles < predict(preset("zcu102")).cycles
