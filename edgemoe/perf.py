"""Work counts of the RTL top's schedule (hw/rtl/edgemoe_top.sv), from the config alone.

The top runs every linear layer on the MAC array one output tile at a time: per tile it streams
every input row once, ``in / linear_in`` beats per row, and gives one result beat per row. A MoE
block's experts together see every token ``top_k`` times, whichever experts the gate picks, so
these counts do not depend on the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edgemoe.config import Config


@dataclass(frozen=True)
class Layer:
    """One linear layer of the schedule: ``rows`` input rows, ``k`` inputs, ``out`` outputs."""

    name: str
    rows: int
    k: int
    out: int
    gelu: bool = False


def linear_layers(cfg: Config) -> list[Layer]:
    """The linear layers of one image, in schedule order (a MoE block's experts as one layer each
    for fc1 and fc2 over all ``tokens * top_k`` queued rows)."""
    m = cfg.model
    n, d = m.tokens, m.dim
    out = [Layer("patch_embed", m.patches, m.patch_in, d)]
    for i in range(m.depth):
        out += [Layer(f"l{i}.qkv", n, d, 3 * d), Layer(f"l{i}.proj", n, d, d)]
        if m.is_moe(i):
            queued = n * m.top_k
            out += [
                Layer(f"l{i}.gate", n, d, m.experts),
                Layer(f"l{i}.experts.fc1", queued, d, m.expert_hidden, gelu=True),
                Layer(f"l{i}.experts.fc2", queued, m.expert_hidden, d),
            ]
        else:
            out += [Layer(f"l{i}.fc1", n, d, m.mlp_hidden, gelu=True), Layer(f"l{i}.fc2", n, m.mlp_hidden, d)]
    return out


def _tiles(n: int, k: int) -> int:
    return -(-n // k)


def linear_beats(cfg: Config) -> int:
    """Input beats the MAC array takes per image (the LINEAR_BUSY counter of one image)."""
    hw = cfg.hw
    return sum(
        _tiles(layer.out, hw.linear_out) * layer.rows * _tiles(layer.k, hw.linear_in)
        for layer in linear_layers(cfg)
    )


def gelu_beats(cfg: Config) -> int:
    """Result beats through the GELU epilogue per image (the NONLINEAR_BUSY counter of one image)."""
    return sum(
        _tiles(layer.out, cfg.hw.linear_out) * layer.rows for layer in linear_layers(cfg) if layer.gelu
    )


# --------------------------------------------------------------------------- the cycle model


@dataclass(frozen=True)
class Timing:
    """The timings the model assumes besides the config.

    Args:
        mem_latency: cycles from a read request taken by a master to its first data beat (the
            simulation's AXI RAM model: 3; a board's DDR: tens of cycles).
        ln_latency: layernorm_unit, last beat in to last beat out.
        linear_drain: linear_unit, last input beat to the pass's end.
        attn_group: attention_engine, cycles per group beyond its beats (queries in, the key and
            value sweeps, outputs out) and the A·V drain.
        attn_pass: attention_engine, cycles per pass beyond its groups and ``pass_overhead``.
        router_tail: the gate pass after the last logit (router pipeline and queue read-out
            besides one beat per queued token).
        pass_overhead: cycles every pass spends starting and ending.
    """

    mem_latency: int = 3
    ln_latency: int = 14
    linear_drain: int = 7
    attn_group: int = 8
    attn_pass: int = 3
    router_tail: int = 31
    pass_overhead: int = 2


@dataclass
class Prediction:
    """Cycles per image per task by stage, and memory traffic."""

    cfg: Config
    stages: dict[str, int]
    bytes_read: int
    bytes_written: int

    @property
    def cycles(self) -> int:
        return sum(self.stages.values())

    @property
    def latency_ms(self) -> float:
        return self.cycles / (self.cfg.hw.clock_mhz * 1e3)


def _linear_pass(
    cfg: Config, t: Timing, rows: int, k: int, out: int, bias: bool, image_gap: int = 0
) -> tuple[int, int]:
    """Cycles and weight bytes of one linear pass on linear_engine: per output tile the bias read
    then the weight read (one reader), the weights loading into a free bank while the array
    computes the previous tile from the other (linear_engine, linear_unit)."""
    hw = cfg.hw
    beat = hw.axi_bits // 8
    words = _tiles(k, hw.linear_in)
    word_beats = hw.linear_out * hw.linear_in * _word_bits(cfg.formats.linear_weight.fmt.bits) // hw.axi_bits
    bias_beats = max(1, hw.linear_out * _word_bits(cfg.formats.bias.fmt.bits) // hw.axi_bits) if bias else 0
    tiles = _tiles(out, hw.linear_out)
    bias_phase = 1 + t.mem_latency + bias_beats if bias else 0
    weight_phase = 1 + t.mem_latency + words * word_beats
    compute = rows * words + image_gap
    ends: list[int] = []
    loaded = 0  # when the previous tile's weights were in
    for i in range(tiles):
        header = (loaded + 1 if i else 0) + bias_phase
        if i >= 2:
            header = max(header, ends[i - 2])  # its bank frees when tile i - 2 is done
        loaded = header + weight_phase
        start = max(loaded, ends[-1] if ends else 0)
        ends.append(start + compute)
    cycles = ends[-1] + t.linear_drain + t.pass_overhead
    return cycles, tiles * (bias_beats + words * word_beats) * beat


def _word_bits(bits: int) -> int:
    return next(w for w in (8, 16, 32, 64) if bits <= w)


def attention_cycles(cfg: Config, t: Timing) -> int:
    """Cycles of one block's attention pass: per head and group of P queries, attention_unit
    takes the P query rows, sweeps N + P - 1 key rows then as many value rows, drains its A·V
    pipeline (min(P, beats per row) - 1 cycles) and gives its P output rows before it takes the
    next group's queries (states StQ, StK, StSm, StV, StOut: the phases do not overlap)."""
    m, hw = cfg.model, cfg.hw
    rb = m.head_dim // hw.attn_block
    p = hw.attn_p
    group = (2 * p + 2 * (m.tokens + p - 1)) * rb + min(p, rb) - 1 + t.attn_group
    return m.heads * _tiles(m.tokens, p) * group + t.attn_pass + t.pass_overhead


def predict(
    cfg: Config, timing: Timing | None = None, expert_rows: Mapping[int, Sequence[int]] | None = None
) -> Prediction:
    """Cycles of one image of one task in the RTL top's sequential schedule (edgemoe_top.sv).

    Args:
        cfg: the config.
        timing: the timings besides the config (default :class:`Timing`).
        expert_rows: per MoE block, the rows queued for each of its active experts (an image's
            routing, e.g. ``len(q)`` of the non-empty ``MoERouting.queues``). Without it a block's
            ``tokens * top_k`` rows are taken as spread evenly over the experts: the fewest
            cycles, since an expert with few rows waits for its weight reads (a trained gate's
            uneven split costs more).
    """
    t = timing or Timing()
    m, hw = cfg.model, cfg.hw
    n, d = m.tokens, m.dim
    lanes = hw.linear_in
    words = n * d // lanes  # a token buffer's words
    beat = hw.axi_bits // 8
    vec_chunks = hw.axi_bits // (lanes * _word_bits(cfg.formats.norm.fmt.bits))
    norm_beats = d * _word_bits(cfg.formats.norm.fmt.bits) // hw.axi_bits
    stages: dict[str, int] = {}
    read = 0

    def add(name: str, cycles: int) -> None:
        stages[name] = stages.get(name, 0) + cycles

    image_beats = m.patches * m.patch_in * _word_bits(cfg.formats.pixel.fmt.bits) // hw.axi_bits
    cycles, wbytes = _linear_pass(cfg, t, m.patches, m.patch_in, d, True, image_gap=t.mem_latency)
    add("patch_embed", cycles)
    read += wbytes + _tiles(d, hw.linear_out) * image_beats * beat
    add("pos_embed", 1 + t.mem_latency + words + t.pass_overhead)
    read += n * d * _word_bits(cfg.formats.pos_embed.fmt.bits) // 8
    ln = (
        2 * (1 + t.mem_latency + norm_beats * vec_chunks)
        + d // lanes
        + words
        + t.ln_latency
        + t.pass_overhead
    )
    resid = words + t.pass_overhead + 2
    attn = attention_cycles(cfg, t)
    for i in range(m.depth):
        add("layernorm", 2 * ln)
        read += 4 * norm_beats * beat
        for name, (rows, k, out) in (("qkv", (n, d, 3 * d)), ("proj", (n, d, d))):
            cycles, wbytes = _linear_pass(cfg, t, rows, k, out, True)
            add(name, cycles)
            read += wbytes
        add("attention", attn)
        add("residual", 2 * resid)
        if m.is_moe(i):
            cycles, wbytes = _linear_pass(cfg, t, n, d, m.experts, False)
            add(
                "gate+router",
                cycles + max(0, n * m.experts - n * _tiles(d, lanes)) + t.router_tail + n * m.top_k,
            )
            read += wbytes
            for rows in expert_rows[i] if expert_rows is not None else _even_split(cfg):
                for k, out in ((d, m.expert_hidden), (m.expert_hidden, d)):
                    cycles, wbytes = _linear_pass(cfg, t, rows, k, out, True)
                    add("experts", cycles)
                    read += wbytes
        else:
            for k, out in ((d, m.mlp_hidden), (m.mlp_hidden, d)):
                cycles, wbytes = _linear_pass(cfg, t, n, k, out, True)
                add("mlp", cycles)
                read += wbytes
    token_bytes = n * d * _word_bits(cfg.formats.act.fmt.bits) // 8
    add("store", token_bytes // beat + 2 * t.mem_latency + t.pass_overhead)
    add("control", 1)
    return Prediction(cfg, stages, read, token_bytes)


def _even_split(cfg: Config) -> list[int]:
    """A MoE block's ``tokens * top_k`` queued rows spread as evenly as they go over its experts."""
    m = cfg.model
    queued = m.tokens * m.top_k
    active = min(m.experts, queued)
    return [queued // active + (1 if e < queued % active else 0) for e in range(active)]


def report(p: Prediction) -> str:
    """The lines ``edgemoe perf`` prints: the latency line, then the stages."""
    cfg = p.cfg
    lines = [
        f"latency: {p.latency_ms:.2f} ms/image/task at {cfg.hw.clock_mhz:g} MHz",
        f"config '{cfg.name}': {p.cycles} cycles per image per task (RTL top, sequential schedule)",
    ]
    for name, cycles in sorted(p.stages.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<12} {cycles:>12} cycles  {100 * cycles / p.cycles:5.1f} %")
    macs = cfg.model.macs()["total"]
    units = cfg.hw.linear_in * cfg.hw.linear_out + cfg.hw.attn_p * cfg.hw.attn_block
    lines.append(f"  memory       {p.bytes_read} bytes read, {p.bytes_written} bytes written per image")
    lines.append(
        f"  MAC utilization {100 * macs / (p.cycles * units):.1f} % ({macs} MACs on {units} MAC units)"
    )
    return "\n".join(lines)
