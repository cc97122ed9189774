"""`edgemoe bench` runs on the tiny preset and prints both timings and their ratio (never asserts time)."""

from __future__ import annotations

import re

import pytest

from edgemoe.bench import run
from edgemoe.cli import main
from edgemoe.config import preset


def test_bench_result_on_tiny() -> None:
    result = run(preset("tiny"), runs=1, task=1)
    assert result.config == "tiny" and result.task == "depth" and result.threads == 1
    assert result.float_s > 0 and result.reference_s > 0
    assert result.ratio == pytest.approx(result.reference_s / result.float_s)
    assert set(result.stages) == {"embed", "l0", "l1"}
    # one thread budget for both sides: torch's pool and every BLAS/OpenMP pool ran with 1
    assert result.pools["torch intra-op"] == 1 and len(result.pools) >= 2
    assert set(result.pools.values()) == {1}, result.pools


def test_bench_threads_apply_to_both_sides() -> None:
    result = run(preset("tiny"), runs=1, threads=2)
    assert result.threads == 2 and set(result.pools.values()) == {2}, result.pools
    assert "the same budget on both sides, --threads 2" in result.text()


def test_bench_command_prints_both_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--preset", "tiny", "--runs", "2", "--task", "semseg"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"float golden \(torch float32\):\s+\d+\.\d ms", out), out
    assert re.search(r"reference \(fixed point\):\s+\d+\.\d ms", out), out
    assert re.search(r"ratio reference / float:\s+\d+\.\d\dx", out), out
    assert "median of 2 runs" in out


def test_bench_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--preset", "tiny", "--runs", "0"]) == 2
    assert "--runs" in capsys.readouterr().err
    assert main(["bench", "--preset", "tiny", "--task", "all"]) == 2
    assert "one task" in capsys.readouterr().err
