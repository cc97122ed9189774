"""edgemoe perf: the cycle model of the RTL top (held against the RTL in sim/edgemoe_top)."""

from __future__ import annotations

import dataclasses
import re

from edgemoe.cli import main
from edgemoe.config import preset
from edgemoe.perf import Timing, linear_beats, predict


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
