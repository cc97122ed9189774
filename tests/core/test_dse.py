"""The roofline, the resource model and the design-space sweep (``edgemoe perf --roofline/--sweep``)."""

from __future__ import annotations

import json
import math

import pytest

from edgemoe.cli import main
from edgemoe.config import preset
from edgemoe.dse import DesignPoint, evaluate, frontier, pareto
from edgemoe.perf import Schedule, Timing, predict
from edgemoe.resources import (
    BUDGET,
    CALIBRATION,
    MEMORY_FIT_ERROR,
    STATED_FIT_ERROR,
    bram36,
    dsp_per_multiply,
    estimate,
    fit_errors,
    memory_errors,
)
from edgemoe.roofline import LayerRoof, roofline

TINY = preset("tiny")


# ------------------------------------------------------------------------------------ roofline


def test_bound_is_the_larger_cycle_count() -> None:
    def roof(compute: int, memory: float) -> LayerRoof:
        return LayerRoof("x", "linear", 640, 100, compute, memory, 64)

    assert roof(10, 20).bound == "memory"
    assert roof(20, 10).bound == "compute"
    assert roof(10, 10).bound == "compute"  # at the ridge the array is the limit
    assert roof(10, 20).intensity == 6.4 and roof(10, 20).cycles == 20


def test_tiny_qkv_flips_from_compute_to_memory_bound_when_the_memory_slows() -> None:
    """tiny's qkv by hand: 96 outputs / 8 = 12 tiles, 9 rows, 32 inputs / 8 = 4 words: 432 beats;
    a tile is 1 bias beat + 4 words x 4 beats (8 x 8 x 16 bits / 256) = 17 beats of 32 bytes."""
    qkv_bytes = 12 * 17 * 32

    def qkv(schedule: Schedule) -> LayerRoof:
        return next(r for r in roofline(TINY, schedule) if r.name == "l0.qkv")

    fast = qkv(Schedule())  # one 256-bit port, a beat per cycle: 32 bytes/cycle
    assert (fast.compute_cycles, fast.bytes, fast.memory_cycles) == (432, qkv_bytes, qkv_bytes / 32)
    assert fast.bound == "compute"
    slow = qkv(Schedule(ddr_gbs=1.92))  # 6.4 bytes per cycle at 300 MHz
    assert slow.memory_cycles == pytest.approx(qkv_bytes / 6.4) and slow.bound == "memory"
    shared = qkv(Schedule(ddr_gbs=1.92, batch=8, batch_weight_reuse=True))  # a byte serves 8 images
    assert shared.bytes == qkv_bytes / 8 and shared.bound == "compute"


def test_attention_reads_nothing_off_chip() -> None:
    att = [r for r in roofline(TINY, Schedule(ddr_gbs=0.5)) if r.kind == "attention"]
    assert len(att) == TINY.model.depth
    assert all(r.bytes == 0 and r.bound == "compute" and math.isinf(r.intensity) for r in att)


# ------------------------------------------------------------------------------ resource model


def test_structural_parts() -> None:
    assert dsp_per_multiply(16, 32) == 2 and dsp_per_multiply(32, 16) == 2
    assert dsp_per_multiply(16, 16) == 1 and dsp_per_multiply(32, 32) == 4 and dsp_per_multiply(18, 27) == 1
    assert bram36(96, 16 * 16 * 16) == 57  # edge-moe's two weight banks: 57 RAMB36 measured
    assert bram36(16, 8 * 8 * 16) == 0  # tiny's: LUT RAM, no RAMB36 measured
    assert bram36(512, 36) == 0.5 and bram36(1024, 36) == 1 and bram36(1025, 36) == 1.5  # RAMB18 = half


def test_resource_model_meets_its_calibration_points_within_the_stated_error() -> None:
    rows = fit_errors()
    assert len(rows) == len(CALIBRATION) + 1  # and the whole top at tiny
    for measured, model, errors in rows:
        for res, err in errors.items():
            limit = STATED_FIT_ERROR[res]
            assert abs(err) <= limit, (
                f"{measured.unit} at {measured.cfg.name}: {res} model {model[res]} vs measured "
                f"{measured.figures[res]} ({100 * err:+.1f} %, stated {100 * limit:.0f} %)"
            )


def test_resources_grow_with_the_parallelism_and_the_batch_buffers() -> None:
    base = evaluate(TINY, DesignPoint(8, 8, 2, 8, 256, Schedule()), Timing()).resources
    wide = evaluate(TINY, DesignPoint(16, 16, 2, 8, 256, Schedule()), Timing()).resources
    assert wide["DSP"] > base["DSP"] and wide["LUT"] > base["LUT"]
    cfg = preset("edge-moe")
    one = estimate(cfg, Schedule(batch=4)).totals()
    four = estimate(cfg, Schedule(batch=4, batch_weight_reuse=True)).totals()
    assert four["BRAM36"] > one["BRAM36"] and four["DSP"] == one["DSP"]
    two_ports = estimate(cfg, Schedule(weight_ports=2)).totals()
    assert two_ports["LUT"] > one["LUT"]


# ---------------------------------------------------------------------------------------- sweep


def test_pareto_keeps_exactly_the_undominated_points() -> None:
    pts = {
        "a": (1, 5, 5),
        "b": (2, 2, 2),
        "c": (2, 2, 3),  # dominated by b
        "d": (5, 1, 9),
        "e": (1, 5, 5),  # equal to a: neither dominates
        "f": (6, 1, 9),  # dominated by d
        "g": (3, 3, 1),
        "h": (3, 3, 3),  # dominated by b and g
    }
    kept = pareto(list(pts), key=lambda k: pts[k])
    assert kept == ["a", "b", "d", "e", "g"]
    assert pareto([], key=lambda k: (0,)) == []


def test_the_sweep_predicts_the_rtl_point_with_the_rtl_model() -> None:
    rtl = evaluate(TINY, DesignPoint(8, 8, 2, 8, 256, Schedule()), Timing())
    assert rtl.cycles == predict(TINY).cycles == 9344
    assert rtl.missing_in_rtl() == []
    odd = evaluate(TINY, DesignPoint(8, 16, 2, 8, 256, Schedule(weight_ports=2)), Timing())
    assert any("MAC array" in m for m in odd.missing_in_rtl())
    assert any("ports" in m for m in odd.missing_in_rtl())


def test_perf_sweep_on_tiny_prints_the_pareto_set_and_writes_its_files(tmp_path, capsys) -> None:
    out = tmp_path / "perf"
    assert main(["perf", "--preset", "tiny", "--sweep", "--batch", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("assumptions:", "19.2 GB/s", "Pareto set", "best within the budget", "resource model"):
        assert needle in text, needle
    data = json.loads((out / "sweep.json").read_text())
    assert data["batch"] == 2 and data["ddr_gbs"] == 19.2 and data["pareto"]
    assert all(p["fits_budget"] for p in data["pareto"])
    assert all(all(p["resources"][k] <= v for k, v in BUDGET.items()) for p in data["pareto"])
    names = {p["name"] for p in data["pareto"]}
    assert data["best"]["name"] in names
    # the Pareto set of the written points, recomputed, is the one written
    objectives = [
        (p["cycles_per_image"], *(p["resources"][k] for k in ("DSP", "BRAM36", "LUT"))) for p in data["all"]
    ]
    fitting = [i for i, p in enumerate(data["all"]) if p["fits_budget"]]
    again = {data["all"][i]["name"] for i in pareto(fitting, key=lambda i: objectives[i])}
    assert again == names
    assert (out / "pareto.png").stat().st_size > 10_000


def test_perf_roofline_writes_its_table_and_plot(tmp_path, capsys) -> None:
    out = tmp_path / "roof"
    assert main(["perf", "--preset", "tiny", "--roofline", "--bandwidth", "19.2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "roofline bound of the image" in text and "21.3 GB/s" in text and "qkv" in text
    data = json.loads((out / "roofline.json").read_text())
    assert len(data["layers"]) == len(roofline(TINY))
    assert (out / "roofline.png").stat().st_size > 10_000


def test_frontier_is_sorted_fastest_first() -> None:
    from edgemoe.dse import sweep

    front = frontier(sweep(TINY, 1, 19.2, Timing()))
    assert [e.latency_ms for e in front] == sorted(e.latency_ms for e in front)


def test_block_ram_geometry_meets_the_token_ram_runs() -> None:
    for depth, width, measured, model, err in memory_errors():
        assert abs(err) <= MEMORY_FIT_ERROR, f"{depth}x{width}: model {model} vs measured {measured} RAMB36"
