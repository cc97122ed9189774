"""edgemoe perf: the cycle model of the RTL top (held against the RTL in sim/edgemoe_top)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from edgemoe.cli import main
from edgemoe.config import preset
from edgemoe.perf import Schedule, Timing, head_major, linear_beats, predict


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
    assert predict(wide).attention_busy < p.attention_busy


@pytest.mark.parametrize("name,busy", [("tiny", 2824)])
def test_attention_busy_is_the_rtl_attention_busy(name: str, busy: int) -> None:
    """ATTENTION_BUSY of one image as the RTL top measured it (``edgemoe infer --backend rtl``,
    without memory stalls): from each q | k | v pass's start to the attention's last output word,
    the model's figure to the cycle."""
    assert predict(preset(name)).attention_busy == busy


def test_attention_waits_for_each_heads_tiles() -> None:
    """Beside the q | k | v pass the attention takes its own work and the wait for head 0's tiles;
    after the whole pass, its own work alone; tiles that cannot go head by head mean waiting for
    the whole pass."""
    cfg = preset("zcu102")
    side, after = predict(cfg), predict(cfg, schedule=Schedule(attention_overlap=False))
    assert after.attention_busy < side.attention_busy and side.cycles < after.cycles
    odd = dataclasses.replace(cfg, hw=dataclasses.replace(cfg.hw, linear_out=48))  # 64 % 48 != 0
    assert not head_major(odd) and head_major(cfg)
    assert predict(odd).cycles < predict(odd, schedule=Schedule(attention_overlap=False)).cycles


def test_an_uneven_expert_split_costs_more() -> None:
    """The even split is what the config alone predicts; a gate that sends most tokens to few experts
    leaves the others fetch-bound, so the same rows in another split take more cycles."""
    cfg = preset("edge-moe")
    m = cfg.model
    queued = m.tokens * m.top_k
    even = {
        i: [queued // m.experts + (e < queued % m.experts) for e in range(m.experts)] for i in m.moe_blocks
    }
    skewed = {i: [queued - 15 * 4] + [4] * 15 for i in m.moe_blocks}
    assert predict(cfg, expert_rows=even).stages == predict(cfg).stages
    assert predict(cfg, expert_rows=skewed).stages["experts"] > predict(cfg).stages["experts"]
    fewer = {i: [queued // 2, queued - queued // 2] for i in m.moe_blocks}  # two experts: fewer weights read
    assert predict(cfg, expert_rows=fewer).bytes_read < predict(cfg).bytes_read


def test_rtl_schedule_keeps_its_measured_anchors() -> None:
    """The default schedule is the RTL top's: these are the figures held against its simulation."""
    assert predict(preset("tiny")).cycles == 9344
    assert predict(preset("edge-moe")).cycles == 5_168_552
    assert predict(preset("edge-moe"), schedule=Schedule()).cycles == 5_168_552


def test_schedule_options_move_the_model_the_right_way() -> None:
    cfg = preset("edge-moe")
    base = predict(cfg)
    assert predict(cfg, schedule=Schedule(attention_overlap=False)).cycles > base.cycles
    assert predict(cfg, schedule=Schedule(weight_prefetch=False)).cycles > base.cycles
    # a batch run image after image costs each image what one image costs
    assert predict(cfg, schedule=Schedule(batch=4)).cycles == base.cycles
    reused = predict(cfg, schedule=Schedule(batch=4, batch_weight_reuse=True))
    assert reused.bytes_read < base.bytes_read / 3 and reused.cycles < base.cycles
    # a memory slower than one port per cycle stretches the weight loads
    slow = predict(cfg, Timing(), Schedule(ddr_gbs=1.0))
    assert slow.cycles > base.cycles and slow.bytes_read == base.bytes_read
    assert Schedule().missing_in_rtl() == []
    assert len(Schedule(weight_ports=2, attention_overlap=False).missing_in_rtl()) == 2
