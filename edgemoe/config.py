"""The single source of truth: model shape, fixed-point formats and hardware parallelism.

Every back end reads its sizes, formats and tables from a :class:`Config`: the golden
models directly, the HLS kernels through the generated C++ header and the RTL through the
generated SystemVerilog package (``edgemoe config emit-hls|emit-sv``).

A config is a preset (``edge-moe``, ``zcu102``, ``tiny``, ``ecp5``, ``zcu102-a16``) plus optional
overrides loaded from a TOML or YAML file::

    preset = "tiny"
    [model]
    depth = 4
    [formats.act]
    bits = 24
    int_bits = 8
    [hw]
    attn_p = 2
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import re
import tomllib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemoe.errors import EdgemoeError


class ConfigError(EdgemoeError, ValueError):
    """A config that is inconsistent, unknown or unreadable."""


class Rounding(str, enum.Enum):
    """How a narrowing cast drops fraction bits (ap_fixed's AP_TRN and AP_RND)."""

    TRUNCATE = "truncate"  # toward -inf
    ROUND_HALF_UP = "round_half_up"  # to nearest, ties toward +inf


class Overflow(str, enum.Enum):
    """What a cast does with a value outside its format (ap_fixed's AP_WRAP and AP_SAT)."""

    WRAP = "wrap"
    SATURATE = "saturate"


# Codes that software and hardware exchange. edgemoe.emit generates them into the C++ header
# (``enum class``) and the SystemVerilog package (``typedef enum``); no layer numbers them again.


class Epilogue(enum.IntEnum):
    """What the linear unit does with a finished accumulator (the code in a tile's header)."""

    BIAS = 0  # cast_out(acc + b)
    BIAS_GELU = 1  # gelu(cast_out(acc + b))
    EXPERT_ACCUMULATE = 2  # y[token] += cast_out(score * cast_out(acc + b)), saturating


class NonlinearFunction(enum.IntEnum):
    """A nonlinear function at the formats the model uses it with (selects a function unit)."""

    EXP_SCORE = 0  # exp(-x) of a score difference (attn_score fraction bits) -> exp_out
    EXP_ACT = 1  # exp(-x) of a logit difference (act fraction bits) -> exp_out
    RECIPROCAL = 2  # softmax_sum -> softmax_recip
    RSQRT = 3  # ln_var -> ln_rstd
    GELU = 4  # act -> act


class BiasKind(enum.IntEnum):
    """Which bias a linear layer adds (a command of the linear engine): where its storage format is."""

    NONE = 0  # no bias (the MoE gates)
    BIAS = 1  # formats.bias
    ATTN_BIAS = 2  # formats.attn_bias (q/k/v and the attention projection)


SHARED_CODES: tuple[type[enum.IntEnum], ...] = (Epilogue, NonlinearFunction, BiasKind)


@dataclass(frozen=True)
class FixedFormat:
    """A fixed-point format: ``bits`` in all, ``int_bits`` of them left of the binary point.

    The sign bit counts as an integer bit, as in ``ap_fixed<bits, int_bits>``; an unsigned
    format is ``ap_ufixed<bits, int_bits>``. ``int_bits`` may be negative or exceed ``bits``.
    A value is held as a raw integer ``raw`` meaning ``raw * 2**-frac_bits``.
    """

    bits: int
    int_bits: int
    signed: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 62:
            raise ConfigError(f"fixed-point format needs 1..62 bits, got {self.bits}")
        if self.signed and self.bits < 2:
            raise ConfigError(f"signed fixed-point format needs at least 2 bits, got {self.bits}")

    @property
    def frac_bits(self) -> int:
        return self.bits - self.int_bits

    @property
    def min_raw(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def lsb(self) -> float:
        return 2.0**-self.frac_bits

    @property
    def min_value(self) -> float:
        return self.min_raw * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_raw * self.lsb

    @property
    def cpp(self) -> str:
        """The ap_fixed type that holds this format."""
        kind = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{kind}<{self.bits}, {self.int_bits}>"

    def __str__(self) -> str:
        return self.cpp


def sfix(bits: int, int_bits: int) -> FixedFormat:
    return FixedFormat(bits, int_bits, signed=True)


def ufix(bits: int, int_bits: int) -> FixedFormat:
    return FixedFormat(bits, int_bits, signed=False)


@dataclass(frozen=True)
class Cast:
    """A named narrowing point: the format it produces, its rounding and its overflow mode."""

    fmt: FixedFormat
    rounding: Rounding = Rounding.ROUND_HALF_UP
    overflow: Overflow = Overflow.SATURATE


@dataclass(frozen=True)
class ModelShape:
    """Shape of the M³ViT backbone and its task heads.

    Args:
        image_h, image_w: input image size in pixels.
        in_chans: input channels.
        patch: patch size (square); the image must tile exactly.
        dim: token width.
        depth: number of transformer blocks.
        heads: attention heads; ``dim // heads`` per head.
        mlp_hidden: hidden width of the dense MLP.
        moe_blocks: indices of the blocks whose MLP is a mixture of experts.
        experts: experts per MoE block.
        top_k: experts each token is routed to.
        expert_hidden: hidden width of one expert MLP.
        tasks: task names; each has its own gates and head.
        task_channels: output channels of each task head (classes, or 1 for depth).
        head_channels: width of the convolutions of the upsampling task heads.
        ln_eps: LayerNorm epsilon.
    """

    image_h: int
    image_w: int
    in_chans: int
    patch: int
    dim: int
    depth: int
    heads: int
    mlp_hidden: int
    moe_blocks: tuple[int, ...]
    experts: int
    top_k: int
    expert_hidden: int
    tasks: tuple[str, ...]
    task_channels: tuple[int, ...]
    head_channels: int
    ln_eps: float = 1e-6

    @property
    def grid(self) -> tuple[int, int]:
        return self.image_h // self.patch, self.image_w // self.patch

    @property
    def patches(self) -> int:
        gh, gw = self.grid
        return gh * gw

    @property
    def tokens(self) -> int:
        return self.patches + 1

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def patch_in(self) -> int:
        """Inputs of the patch embedding seen as a linear layer (C·p·p)."""
        return self.in_chans * self.patch * self.patch

    def is_moe(self, block: int) -> bool:
        return block in self.moe_blocks

    def macs(self) -> dict[str, int]:
        """Multiply-accumulates per image per task, by kind (MoE counts top_k experts per token)."""
        n, d = self.tokens, self.dim
        linear = self.patches * self.patch_in * d
        attention = 0
        for block in range(self.depth):
            linear += n * d * 3 * d + n * d * d
            attention += 2 * n * n * d
            if self.is_moe(block):
                linear += n * d * self.experts + n * self.top_k * 2 * d * self.expert_hidden
            else:
                linear += n * 2 * d * self.mlp_hidden
        return {"linear": linear, "attention": attention, "total": linear + attention}


@dataclass(frozen=True)
class Formats:
    """Every tensor's fixed-point format and every cast point of the accelerator.

    Storage formats (weights, pixels) are where float data enters; values outside them
    saturate and are reported. The rest are the named narrowing points of the datapath.
    """

    # -- data entering the accelerator (weights rounded to nearest, saturated and reported)
    pixel: Cast = Cast(ufix(8, 0))
    patch_weight: Cast = Cast(sfix(16, 0))
    linear_weight: Cast = Cast(sfix(16, 2))
    attn_bias: Cast = Cast(sfix(16, 7))
    bias: Cast = Cast(sfix(16, 5))
    norm: Cast = Cast(sfix(16, 5))
    pos_embed: Cast = Cast(sfix(16, 5))
    # -- the activation stream: linear outputs, residual adds, LayerNorm and GELU outputs, q/k/v
    act: Cast = Cast(sfix(32, 10))
    # -- LayerNorm internals: square of an input, mean (sum / dim), variance (and eps),
    #    1/sqrt(var + eps), normalised value (x - mean) * rstd before gamma and beta
    ln_square: Cast = Cast(ufix(48, 20), Rounding.TRUNCATE)
    ln_mean: Cast = Cast(sfix(32, 10))
    ln_var: Cast = Cast(ufix(48, 20), Rounding.TRUNCATE)
    ln_rstd: Cast = Cast(ufix(32, 11))
    ln_norm: Cast = Cast(sfix(32, 6))
    # -- attention: the constant head_dim**-0.5 (exact when a power of two), scaled score q·k·scale,
    #    exp(s - max), running sum, 1/sum, probability
    attn_scale: Cast = Cast(ufix(16, 1))
    attn_score: Cast = Cast(sfix(32, 10))
    exp_out: Cast = Cast(ufix(18, 1))
    softmax_sum: Cast = Cast(ufix(32, 10), Rounding.TRUNCATE)
    softmax_recip: Cast = Cast(ufix(24, 1))
    attn_prob: Cast = Cast(ufix(18, 1))
    # -- GELU correction term delta(|x|) and the gate's expert score
    gelu_delta: Cast = Cast(ufix(18, -2))
    gate_score: Cast = Cast(ufix(18, 1))
    # -- optional: the activation format of each block in turn (its residual stream and every
    #    tensor it stores in ``act``), in place of ``act``; empty: every block uses ``act``.
    #    The patch embedding writes block 0's format, the task heads read the last block's.
    block_act: tuple[Cast, ...] = ()

    def items(self) -> list[tuple[str, Cast]]:
        """The cast points (every field but ``block_act``)."""
        return [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "block_act"]


@dataclass(frozen=True)
class Nonlinear:
    """Parameters of the project's own fixed-point nonlinear functions.

    The algorithms are specified step by step in :mod:`edgemoe.golden.fixed.nonlinear`; the
    tables they read are generated by :func:`edgemoe.tables.build_tables`.

    Args:
        exp_table_bits: log2 of the number of segments of the 2**-u table (u in [0, 1)) of exp.
        recip_table_bits: log2 of the number of segments of the 1/m seed table (m in [1, 2)).
        rsqrt_table_bits: log2 of the number of segments of the 1/sqrt(m) seed table; the
            segments cover m in [1, 5), of which [1, 4) is used (at least 2).
        newton_steps: Newton-Raphson refinements after each reciprocal / rsqrt seed lookup.
        gelu_table_bits: log2 of the number of segments of the GELU correction table.
        gelu_range_log2: the table covers |x| in [0, 2**gelu_range_log2); delta is 0 past it.
        work_frac_bits: fraction bits W of the exp / reciprocal / rsqrt tables and of their
            internal values (normalised mantissas, seeds, Newton iterates): ufix(W + 1, 1).
    """

    exp_table_bits: int = 8
    recip_table_bits: int = 6
    rsqrt_table_bits: int = 7
    newton_steps: int = 1
    gelu_table_bits: int = 9
    gelu_range_log2: int = 3
    work_frac_bits: int = 24


@dataclass(frozen=True)
class Hardware:
    """Parallelism and target of the accelerator.

    Args:
        linear_in: inputs consumed per cycle by the linear MAC array.
        linear_out: outputs produced per cycle by the linear MAC array.
        attn_p: query rows that share one key stream in the reordered attention.
        attn_block: elements of a query/key row processed per cycle per query slot.
        axi_bits: width of the AXI4 memory ports.
        clock_mhz: target clock.
        part: FPGA part for vendor synthesis.
    """

    linear_in: int = 16
    linear_out: int = 16
    attn_p: int = 4
    attn_block: int = 8
    axi_bits: int = 256
    clock_mhz: float = 300.0
    part: str = "xczu9eg-ffvb1156-2-e"


@dataclass(frozen=True)
class Config:
    """A complete, validated accelerator configuration."""

    name: str
    model: ModelShape
    formats: Formats = field(default_factory=Formats)
    nonlinear: Nonlinear = field(default_factory=Nonlinear)
    hw: Hardware = field(default_factory=Hardware)

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        data = _to_plain(dataclasses.asdict(self))
        if not self.formats.block_act:  # absent: the dict (and CONFIG_ID) of a config without it
            del data["formats"]["block_act"]
        return data

    def block_config(self, block: int) -> Config:
        """The config block ``block`` runs with: ``formats.act`` replaced by its ``formats.block_act``
        entry (the config itself when there is none), so every layer reads ``formats.act`` alone."""
        if not self.formats.block_act:
            return self
        return _block_config(self, block)

    def refuse_block_act(self, backend: str) -> None:
        """ConfigError when ``formats.block_act`` is set: ``backend`` runs one activation format."""
        if self.formats.block_act:
            raise ConfigError(
                f"config {self.name!r}: formats.block_act (an activation format per block) is not "
                f"supported by {backend}, which runs one format for every block; use --backend "
                "reference, or a config with one formats.act"
            )

    @property
    def config_id(self) -> int:
        """A 32-bit fingerprint of everything the hardware depends on (the ID register)."""
        text = json.dumps({k: v for k, v in self.to_dict().items() if k != "name"}, sort_keys=True)
        return zlib.crc32(text.encode())


@functools.cache
def _block_config(cfg: Config, block: int) -> Config:
    f = cfg.formats
    return dataclasses.replace(cfg, formats=dataclasses.replace(f, act=f.block_act[block], block_act=()))


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


SIMPLE_NAME = r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}"
"""What a config's name and its task names may be: they name build folders and output files."""
MAX_SIZE = 1 << 16
"""The largest model dimension or parallelism a config may name; nothing larger fits a device."""
MAX_INT_BITS = 64
"""The farthest a config's format may place its binary point beyond either end of its bits."""


def validate(cfg: Config) -> None:
    """Raise ConfigError naming every inconsistency of ``cfg``."""
    m, hw, f, nl = cfg.model, cfg.hw, cfg.formats, cfg.nonlinear
    errors: list[str] = []

    def need(cond: bool, msg: str) -> None:
        if not cond:
            errors.append(msg)

    for name in (
        "image_h",
        "image_w",
        "in_chans",
        "patch",
        "dim",
        "depth",
        "heads",
        "mlp_hidden",
        "experts",
        "top_k",
        "expert_hidden",
        "head_channels",
    ):
        size = getattr(m, name)
        need(0 < size <= MAX_SIZE, f"model.{name} must be in 1..{MAX_SIZE}, got {size}")
    for name in ("linear_in", "linear_out", "attn_block"):
        size = getattr(hw, name)
        need(0 < size <= MAX_SIZE, f"hw.{name} must be in 1..{MAX_SIZE}, got {size}")
    need(0 < m.ln_eps < math.inf, f"model.ln_eps must be positive and finite, got {m.ln_eps}")
    need(0 < hw.clock_mhz < math.inf, f"hw.clock_mhz must be positive and finite, got {hw.clock_mhz}")
    for name, cast in f.items():
        need(
            abs(cast.fmt.int_bits) <= MAX_INT_BITS,
            f"formats.{name} {cast.fmt}: int_bits must be in -{MAX_INT_BITS}..{MAX_INT_BITS}",
        )
    if errors:
        raise ConfigError(f"config {cfg.name!r}: " + "; ".join(errors))
    need(
        m.image_h % m.patch == 0 and m.image_w % m.patch == 0,
        f"image {m.image_h}x{m.image_w} is not divisible by patch {m.patch}",
    )
    need(m.dim % m.heads == 0, f"model.dim {m.dim} is not divisible by model.heads {m.heads}")
    need(m.top_k <= m.experts, f"model.top_k {m.top_k} exceeds model.experts {m.experts}")
    need(
        all(0 <= b < m.depth for b in m.moe_blocks),
        f"model.moe_blocks {list(m.moe_blocks)} must lie in 0..{m.depth - 1}",
    )
    need(
        len(set(m.moe_blocks)) == len(m.moe_blocks), f"model.moe_blocks {list(m.moe_blocks)} repeats a block"
    )
    need(len(m.tasks) >= 1, "model.tasks must name at least one task")
    for what, name in [("name", cfg.name), *(("model.tasks", task) for task in m.tasks)]:
        need(
            re.fullmatch(SIMPLE_NAME, name) is not None,
            f"{what} {name!r} must be letters, digits and _.+- (it names files and folders)",
        )
    need(
        len(m.tasks) == len(m.task_channels),
        f"model.tasks has {len(m.tasks)} names but model.task_channels has {len(m.task_channels)} entries",
    )
    need(_is_pow2(m.patch), f"model.patch {m.patch} must be a power of two (the heads upsample by 2)")
    for name, width in (
        ("dim", m.dim),
        ("mlp_hidden", m.mlp_hidden),
        ("expert_hidden", m.expert_hidden),
        ("patch_in (in_chans*patch*patch)", m.patch_in),
    ):
        need(
            width % hw.linear_in == 0, f"model.{name} {width} is not divisible by hw.linear_in {hw.linear_in}"
        )
        need(
            width % hw.linear_out == 0,
            f"model.{name} {width} is not divisible by hw.linear_out {hw.linear_out}",
        )
    need(
        m.head_dim % hw.attn_block == 0,
        f"head_dim {m.head_dim} is not divisible by hw.attn_block {hw.attn_block}",
    )
    need(1 <= hw.attn_p <= m.tokens, f"hw.attn_p {hw.attn_p} must be in 1..tokens ({m.tokens})")
    need(hw.axi_bits in (32, 64, 128, 256, 512), f"hw.axi_bits {hw.axi_bits} must be 32, 64, 128, 256 or 512")
    # formats: where data enters, and what the datapath must be able to hold
    need(not f.pixel.fmt.signed, f"formats.pixel must be unsigned, got {f.pixel.fmt}")
    for name in (
        "exp_out",
        "softmax_sum",
        "softmax_recip",
        "attn_prob",
        "gelu_delta",
        "gate_score",
        "ln_square",
        "ln_var",
        "ln_rstd",
    ):
        need(not getattr(f, name).fmt.signed, f"formats.{name} must be unsigned, got {getattr(f, name).fmt}")
    for name in ("exp_out", "softmax_recip", "attn_prob", "gate_score"):
        need(
            getattr(f, name).fmt.int_bits >= 1,
            f"formats.{name} {getattr(f, name).fmt} must hold 1.0 (int_bits >= 1)",
        )
    need(
        f.softmax_sum.fmt.max_value >= m.tokens,
        f"formats.softmax_sum {f.softmax_sum.fmt} cannot hold a sum of {m.tokens} probabilities "
        f"(max {f.softmax_sum.fmt.max_value:g}); give it more integer bits",
    )
    need(
        f.softmax_sum.fmt.max_value >= m.experts,
        f"formats.softmax_sum {f.softmax_sum.fmt} cannot hold a sum over {m.experts} experts",
    )
    need(
        round(m.ln_eps * 2**f.ln_var.fmt.frac_bits) >= 1,
        f"formats.ln_var {f.ln_var.fmt} cannot represent ln_eps {m.ln_eps} "
        f"(needs at least {math.ceil(-math.log2(m.ln_eps))} fraction bits)",
    )
    need(f.act.fmt.signed and f.attn_score.fmt.signed, "formats.act and formats.attn_score must be signed")
    # LayerNorm: every intermediate must hold the range its inputs imply (act, dim, eps)
    act_sq = f.act.fmt.min_value**2
    need(
        f.ln_square.fmt.max_value >= act_sq and f.ln_var.fmt.max_value >= act_sq + m.ln_eps,
        f"formats.ln_square {f.ln_square.fmt} / ln_var {f.ln_var.fmt} cannot hold the square of an "
        f"activation ({act_sq:g}); give them more integer bits",
    )
    need(
        f.ln_mean.fmt.signed and f.ln_mean.fmt.int_bits >= f.act.fmt.int_bits,
        f"formats.ln_mean {f.ln_mean.fmt} must be signed and hold the activation range {f.act.fmt}",
    )
    need(
        f.ln_rstd.fmt.max_value >= 1.0 / math.sqrt(m.ln_eps),
        f"formats.ln_rstd {f.ln_rstd.fmt} cannot hold 1/sqrt(ln_eps) = {1.0 / math.sqrt(m.ln_eps):g}",
    )
    need(
        f.ln_norm.fmt.signed and f.ln_norm.fmt.max_value >= math.sqrt(m.dim),
        f"formats.ln_norm {f.ln_norm.fmt} must be signed and hold sqrt(dim) = {math.sqrt(m.dim):g}, "
        "the largest normalised value of a LayerNorm over dim inputs",
    )
    need(
        f.attn_scale.fmt.max_value >= m.head_dim**-0.5
        and round(m.head_dim**-0.5 * 2**f.attn_scale.fmt.frac_bits) >= 1,
        f"formats.attn_scale {f.attn_scale.fmt} cannot hold the attention scale head_dim**-0.5 = "
        f"{m.head_dim**-0.5:g}",
    )
    for name, cast in f.items():
        need(
            cast.fmt.frac_bits >= 0 or name in ("ln_square", "ln_var"),
            f"formats.{name} {cast.fmt} has negative fraction bits",
        )
    need(
        1 <= nl.exp_table_bits <= 12
        and 1 <= nl.recip_table_bits <= 12
        and 1 <= nl.rsqrt_table_bits <= 12
        and 1 <= nl.gelu_table_bits <= 12,
        "nonlinear table sizes must be 2**1 .. 2**12 segments",
    )
    need(0 <= nl.newton_steps <= 4, f"nonlinear.newton_steps must be 0..4, got {nl.newton_steps}")
    need(nl.rsqrt_table_bits >= 2, f"nonlinear.rsqrt_table_bits must be >= 2, got {nl.rsqrt_table_bits}")
    for name in ("exp_table_bits", "recip_table_bits"):  # the tables are always interpolated
        need(
            getattr(nl, name) < nl.work_frac_bits,
            f"nonlinear.{name} {getattr(nl, name)} must be below work_frac_bits {nl.work_frac_bits} "
            "(at least one interpolation bit)",
        )
    need(
        12 <= nl.work_frac_bits <= 27,
        f"nonlinear.work_frac_bits must be 12..27 (int64 products), got {nl.work_frac_bits}",
    )
    need(
        f.gelu_delta.fmt.max_value >= 0.17,
        f"formats.gelu_delta {f.gelu_delta.fmt} cannot hold ReLU(x) - GELU(x) (max 0.17); "
        "give it more integer bits",
    )
    need(
        0 <= nl.gelu_range_log2 <= f.act.fmt.int_bits - 1,
        f"nonlinear.gelu_range_log2 {nl.gelu_range_log2} exceeds the activation range {f.act.fmt}",
    )
    if f.block_act:
        need(
            len(f.block_act) == m.depth,
            f"formats.block_act has {len(f.block_act)} formats but model.depth is {m.depth} "
            "(one per block, or none)",
        )
    if errors:
        raise ConfigError(f"config {cfg.name!r}: " + "; ".join(errors))
    for i in range(len(f.block_act)):  # each block's config passes every check formats.act passes
        try:
            _block_config(cfg, i)
        except ConfigError as e:
            detail = str(e).removeprefix(f"config {cfg.name!r}: ")
            raise ConfigError(
                f"config {cfg.name!r}: formats.block_act[{i}] {f.block_act[i].fmt}: {detail}"
            ) from None


EDGE_MOE_MODEL = ModelShape(
    image_h=128,
    image_w=256,
    in_chans=3,
    patch=16,
    dim=192,
    depth=12,
    heads=3,
    mlp_hidden=768,
    moe_blocks=(1, 3, 5, 7, 9, 11),
    experts=16,
    top_k=2,
    expert_hidden=384,
    tasks=("semseg", "depth"),
    task_channels=(7, 1),
    head_channels=256,
    ln_eps=1e-6,
)

TINY_MODEL = ModelShape(
    image_h=32,
    image_w=64,
    in_chans=3,
    patch=16,
    dim=32,
    depth=2,
    heads=2,
    mlp_hidden=64,
    moe_blocks=(1,),
    experts=4,
    top_k=2,
    expert_hidden=32,
    tasks=("semseg", "depth"),
    task_channels=(7, 1),
    head_channels=16,
    ln_eps=1e-6,
)

PRESETS: dict[str, Config] = {
    "edge-moe": Config("edge-moe", EDGE_MOE_MODEL),
    # the edge-moe model and formats on the fastest point of the ZCU102 design-space sweep that
    # the RTL top runs as it is (square array, attention lanes dividing the token word, one
    # weight port, attention beside the q|k|v pass): 8 query slots of 16 lanes, 128 attention
    # MAC/cycle
    "zcu102": Config("zcu102", EDGE_MOE_MODEL, hw=Hardware(attn_p=8, attn_block=16)),
    "tiny": Config(
        "tiny",
        TINY_MODEL,
        hw=Hardware(linear_in=8, linear_out=8, attn_p=2, attn_block=8, axi_bits=256, clock_mhz=300.0),
    ),
    # The tiny model on a Lattice LFE5U-85F (156 18x18 multipliers): the smallest array the top
    # accepts (LinearIn = LinearOut >= experts, a multiple of AttnBlock), a 64-bit memory port.
    "ecp5": Config(
        "ecp5",
        TINY_MODEL,
        hw=Hardware(
            linear_in=4,
            linear_out=4,
            attn_p=1,
            attn_block=2,
            axi_bits=64,
            clock_mhz=25.0,
            part="LFE5U-85F-6BG381C",
        ),
    ),
}


def preset(name: str) -> Config:
    """The named preset; ConfigError listing the known ones otherwise."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]


def _merge(obj: Any, overrides: dict[str, Any], where: str) -> Any:
    """A copy of dataclass ``obj`` with ``overrides`` applied recursively, checking every key."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: expected a table of settings, got {overrides!r}")
    names = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown setting {key!r}; known: {', '.join(names)}")
        current = getattr(obj, key)
        path = f"{where}.{key}"
        if isinstance(obj, Formats) and key == "block_act":
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{path}: expected a list of formats, got {value!r}")
            # each entry is a cast point like formats.act, whose rounding and overflow it inherits
            changes[key] = tuple(
                _merge(obj.act, _cast_shorthand(v) if isinstance(v, dict) else v, f"{path}[{i}]")
                for i, v in enumerate(value)
            )
        elif dataclasses.is_dataclass(current):
            if isinstance(current, Cast) and isinstance(value, dict):
                value = _cast_shorthand(value)
            changes[key] = _merge(current, value, path)
        elif isinstance(current, enum.Enum):
            try:
                changes[key] = type(current)(value)
            except ValueError:
                allowed = ", ".join(e.value for e in type(current))
                raise ConfigError(f"{path}: {value!r} is not one of {allowed}") from None
        elif isinstance(current, tuple):
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{path}: expected a list, got {value!r}")
            # every element of the type of the preset's elements (they all have at least one)
            changes[key] = tuple(_scalar(current[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        else:
            changes[key] = _scalar(current, value, path)
    try:
        return dataclasses.replace(obj, **changes)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _cast_shorthand(value: dict[str, Any]) -> dict[str, Any]:
    """Let a cast point's table name its format directly: ``bits``, ``int_bits``, ``signed``."""
    fmt_keys = {k: value[k] for k in ("bits", "int_bits", "signed") if k in value}
    if not fmt_keys:
        return value
    rest = {k: v for k, v in value.items() if k not in fmt_keys}
    rest["fmt"] = {**rest.get("fmt", {}), **fmt_keys}
    return rest


def _scalar(current: Any, value: Any, path: str) -> Any:
    """``value`` if it has the type of ``current`` (an int is a fine float); ConfigError otherwise."""
    if isinstance(current, float) and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if type(value) is not type(current):
        raise ConfigError(f"{path}: expected {type(current).__name__}, got {value!r}")
    return value


def from_dict(data: dict[str, Any], default_preset: str = "edge-moe") -> Config:
    """A preset (``data['preset']``) with the remaining keys as overrides."""
    data = dict(data)
    base = preset(data.pop("preset", default_preset))
    name = data.pop("name", f"{base.name}+custom" if data else base.name)
    if not isinstance(name, str):
        raise ConfigError(f"config.name: expected a string, got {name!r}")
    return _merge(dataclasses.replace(base, name=name), data, "config")


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(f"config file {path}: unknown extension '{path.suffix}' (use .toml, .yaml or .yml)")
    try:
        text = path.read_bytes().decode("utf-8")
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as e:  # UnicodeDecodeError, TOMLDecodeError, YAMLError, RecursionError...
        raise ConfigError(f"config file {path} is not valid: {' '.join(str(e).split())[:200]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a table of settings")
    return data


def _differences(data: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``data`` that differ from ``base`` (nested tables compared key by key)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            inner = _differences(value, base[key])
            if inner:
                out[key] = inner
        elif value != base.get(key):
            out[key] = value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        if any(isinstance(v, dict) for v in value):  # tables: one inline table a line
            return "[\n" + "".join(f"  {_toml_value(v)},\n" for v in value) + "]"
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def _toml_tables(data: dict[str, Any], prefix: str) -> list[str]:
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for key, value in data.items():
        if isinstance(value, dict):  # a header only for a table that holds values of its own
            own = any(not isinstance(v, dict) for v in value.values())
            lines += (["", f"[{prefix}{key}]"] if own else []) + _toml_tables(value, f"{prefix}{key}.")
    return lines


def to_toml(cfg: Config, header: str = "") -> str:
    """A config file that loads as ``cfg``: the preset nearest to it and every setting that differs.

    Args:
        header: comment lines to put first (without the ``#``).
    """
    data = cfg.to_dict()

    def size(name: str) -> int:
        return len(json.dumps(_differences(data, preset(name).to_dict())))

    # presets with per-block formats are themselves read from such files: never a file's base
    base = min((name for name, c in PRESETS.items() if not c.formats.block_act), key=size)
    changes = _differences(data, preset(base).to_dict())
    changes.pop("name", None)
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"preset = {_toml_value(base)}", f"name = {_toml_value(cfg.name)}"]
    lines += _toml_tables(changes, "")
    return "\n".join(lines) + "\n"


def resolve(preset_name: str | None = None, config_path: str | Path | None = None) -> Config:
    """The config a command runs on: a preset, overridden by a TOML/YAML file if given.

    The file may name its own ``preset``; naming a different one with ``preset_name`` is an error.
    """
    if config_path is None:
        return preset(preset_name or "edge-moe")
    path = Path(config_path)
    data = _read(path)
    if preset_name is not None:
        if data.get("preset", preset_name) != preset_name:
            raise ConfigError(
                f"{path} is based on preset {data['preset']!r} but --preset says {preset_name!r}"
            )
        data["preset"] = preset_name
    try:
        return from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def load(path: str | Path) -> Config:
    """Load a config file (TOML or YAML): a ``preset`` plus overrides."""
    return resolve(None, path)


PRESET_DIR = Path(__file__).resolve().parent / "presets"
"""Config files written by ``edgemoe calibrate`` whose formats presets take (the command heads each)."""


def _calibrated_formats(file: str, model: ModelShape) -> Formats:
    cfg = load(PRESET_DIR / file)
    if cfg.model != model:
        raise ConfigError(f"{PRESET_DIR / file} was calibrated for another model shape")
    return cfg.formats


# The edge-moe model at 16-bit activations, an ap_fixed<16, n> per block from `edgemoe calibrate`
# (trained model, built-in image; presets/edge-moe-a16.toml), on the fastest point of the
# design-space sweep at A16 that the RTL top runs as it is: a 32x32 array (one DSP48E2 per
# W16 x A16 MAC), attention P = 4 query slots x 32 lanes, one 256-bit weight port, attention
# beside the q|k|v pass.
PRESETS["zcu102-a16"] = Config(
    "zcu102-a16",
    EDGE_MOE_MODEL,
    formats=_calibrated_formats("edge-moe-a16.toml", EDGE_MOE_MODEL),
    hw=Hardware(linear_in=32, linear_out=32, attn_p=4, attn_block=32),
)
