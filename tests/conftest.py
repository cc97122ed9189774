"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from edgemoe.paths import BUILD, REPO

if TYPE_CHECKING:
    from edgemoe import csim

# Property tests: the default suite runs the same examples every time (derandomized, no example
# database), so a failure reproduces by rerunning the test it names; `make fuzz` explores at random
# with many more examples and keeps what it finds in build/hypothesis for replay.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    derandomize=False,
    database=DirectoryBasedExampleDatabase(str(BUILD / "hypothesis")),
    max_examples=int(os.environ.get("EDGEMOE_FUZZ_EXAMPLES", "20000")),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
HYPOTHESIS_PROFILE = os.environ.get("EDGEMOE_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_report_header() -> str:
    return f"hypothesis profile: {HYPOTHESIS_PROFILE} ({settings.default.max_examples} examples per property)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `make fuzz` selects the property tests by this marker
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.property)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test: small models run far faster so on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# The real Edge-MoE weights lie beside the checkout, never inside it.
EDGE_MOE_DATA = REPO.parent / "shared" / "data" / "edge-moe-weights"


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
