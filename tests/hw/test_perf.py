"""edgemoe perf: the cycle model of the RTL top (held against the RTL in sim/edgemoe_top)."""

from __future__ import annotations

import dataclasses
import re

from edgemoe.cli import main
from edgemoe.config import preset
from edgemoe.perf import Schedule, Timing, linear_beats, predict


def test_perf_prints_the_latency_line_and_stages(capsys) -> None:
    assert main(["perf", "--preset", "tiny"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert re.fullmatch(r"latency: \d+\.\d\d ms/image/task at 300 MHz", first), first
    for stage in ("patch_embed", "attention", "experts", "mlp", "memory", "MAC utilization"):
        assert stage in out, out


def test_bad_memory_latency_is_one_line_exit_2(capsys) -> None:
    assert main(["perf", "--preset", "tiny", "--mem-latency", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--mem-latency" in err[0], err


def test_model_moves_with_the_config() -> None:
    tiny = preset("tiny")
    p = predict(tiny)
    assert p.cycles > linear_beats(tiny)  # the MAC array's beats are a part of the schedule
    assert predict(tiny, Timing(mem_latency=40)).cycles > p.cycles
    wide = dataclasses.replace(tiny, hw=dataclasses.replace(tiny.hw, attn_p=3))
    assert predict(wide).stages["attention"] < p.stages["attention"]


def test_rtl_schedule_keeps_its_measured_anchors() -> None:
    """The default schedule is the RTL top's: these are the figures held against its simulation."""
    assert predict(preset("tiny")).cycles == 9692
    assert predict(preset("edge-moe")).cycles == 5_574_889
    assert predict(preset("edge-moe"), schedule=Schedule()).cycles == 5_574_889


def test_schedule_options_move_the_model_the_right_way() -> None:
    cfg = preset("edge-moe")
    base = predict(cfg)
    assert predict(cfg, schedule=Schedule(attention_overlap=True)).cycles < base.cycles
    assert predict(cfg, schedule=Schedule(weight_prefetch=False)).cycles > base.cycles
    # a batch run image after image costs each image what one image costs
    assert predict(cfg, schedule=Schedule(batch=4)).cycles == base.cycles
    reused = predict(cfg, schedule=Schedule(batch=4, batch_weight_reuse=True))
    assert reused.bytes_read < base.bytes_read / 3 and reused.cycles < base.cycles
    # a memory slower than one port per cycle stretches the weight loads
    slow = predict(cfg, Timing(), Schedule(ddr_gbs=1.0))
    assert slow.cycles > base.cycles and slow.bytes_read == base.bytes_read
    assert Schedule().missing_in_rtl() == []
    assert len(Schedule(weight_ports=2, attention_overlap=True).missing_in_rtl()) == 2
