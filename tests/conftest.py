"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from edgemoe import csim

# The real Edge-MoE weights lie beside the checkout, never inside it.
EDGE_MOE_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "edge-moe-weights"


@pytest.fixture(scope="session")
def edge_moe_data() -> Path:
    """The directory of real Edge-MoE float32 weights; the test is skipped if it is absent."""
    if not (EDGE_MOE_DATA / "pos_embed.float32.bin").is_file():
        pytest.skip(f"real Edge-MoE weights not found at {EDGE_MOE_DATA} (../shared beside the checkout)")
    return EDGE_MOE_DATA


# The presets every HLS C-simulation test runs on.
HLS_PRESETS = ("tiny", "edge-moe")


@pytest.fixture(scope="module", params=HLS_PRESETS)
def sim(request: pytest.FixtureRequest) -> csim.CSim:
    """The C-simulation library of one preset (built on first use, then cached on disk)."""
    from edgemoe import config, csim

    return csim.load(config.preset(request.param))
