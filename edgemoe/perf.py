"""Work counts of the RTL top's schedule (hw/rtl/edgemoe_top.sv), from the config alone.

The top runs every linear layer on the MAC array one output tile at a time: per tile it streams
every input row once, ``in / linear_in`` beats per row, and gives one result beat per row. A MoE
block's experts together see every token ``top_k`` times, whichever experts the gate picks, so
these counts do not depend on the data.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edgemoe.config import Config


@dataclass(frozen=True)
class Layer:
    """One linear layer of the schedule: ``rows`` input rows, ``k`` inputs, ``out`` outputs, and
    ``weight_sets`` sets of weights (a MoE block's active experts, each read once per image)."""

    name: str
    rows: int
    k: int
    out: int
    gelu: bool = False
    bias: bool = True
    weight_sets: int = 1


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
            active = min(m.experts, queued)
            out += [
                Layer(f"l{i}.gate", n, d, m.experts, bias=False),
                Layer(f"l{i}.experts.fc1", queued, d, m.expert_hidden, gelu=True, weight_sets=active),
                Layer(f"l{i}.experts.fc2", queued, m.expert_hidden, d, weight_sets=active),
            ]
        else:
            out += [Layer(f"l{i}.fc1", n, d, m.mlp_hidden, gelu=True), Layer(f"l{i}.fc2", n, m.mlp_hidden, d)]
    return out


def tiles(n: int, k: int) -> int:
    """Tiles of ``k`` that cover ``n`` (the last one partly filled)."""
    return -(-n // k)


def layer_beats(cfg: Config, layer: Layer) -> int:
    """Input beats the MAC array takes for ``layer``: every output tile streams every row once."""
    return tiles(layer.out, cfg.hw.linear_out) * layer.rows * tiles(layer.k, cfg.hw.linear_in)


def linear_beats(cfg: Config) -> int:
    """Input beats the MAC array takes per image (the LINEAR_BUSY counter of one image)."""
    return sum(layer_beats(cfg, layer) for layer in linear_layers(cfg))


def gelu_beats(cfg: Config) -> int:
    """Result beats through the GELU epilogue per image (the NONLINEAR_BUSY counter of one image)."""
    return sum(tiles(layer.out, cfg.hw.linear_out) * layer.rows for layer in linear_layers(cfg) if layer.gelu)


# --------------------------------------------------------------------------- the cycle model


@dataclass(frozen=True)
class Timing:
    """The timings the model assumes besides the config.

    Args:
        mem_latency: cycles from a read request taken by a master to its first data beat (the
            simulation's AXI RAM model: 3; a board's DDR: tens of cycles).
        ln_latency: layernorm_unit, last beat in to last beat out (15 besides its mean**2
            multiplier's 4, ``fxp_func_pkg::MulLatency``, and its rsqrt lane's 27 at one Newton
            step, ``rsqrt_latency``).
        linear_drain: linear_unit, last input beat to the pass's end (7 besides the GELU lanes'
            11 cycles, ``gelu_latency``, which every epilogue's row waits beside).
        attn_group: attention_engine, cycles per group beyond its beats (queries in, the key and
            value sweeps, outputs out) and the A·V drain (8 besides the lanes: softmax_state's
            last key to 1/sum takes ``exp_latency`` + ``recip_latency`` + 1 = 39 cycles, 37 more
            than with combinational lanes, and the A·V probability lanes 21, ``exp_latency`` +
            ``MulLatency`` + 1).
        attn_pass: attention_engine, cycles per pass beyond its groups and ``pass_overhead``.
        router_tail: the gate pass after the last logit (router pipeline and queue read-out
            besides one beat per queued token; 31 besides the exp and reciprocal lanes' 16 + 22
            and the score multiplier and cast, 5).
        pass_overhead: cycles every pass spends starting and ending.

    The lanes' latencies are those of the presets' one Newton step.
    """

    mem_latency: int = 3
    ln_latency: int = 46
    linear_drain: int = 18
    attn_group: int = 66
    attn_pass: int = 3
    router_tail: int = 74
    pass_overhead: int = 2


@dataclass(frozen=True)
class Schedule:
    """How a design overlaps and batches its work, beyond the config's parallelism.

    The defaults are the RTL top's own schedule; :meth:`missing_in_rtl` names what a schedule
    asks of the hardware that edgemoe_top.sv does not do yet.

    Args:
        batch: images per call (the RTL runs them one after the other).
        weight_ports: AXI read ports the linear array's weights stream through (RTL: one, gmem0).
        ddr_gbs: the memory's own ceiling shared by the ports in GB/s; None: every port delivers
            a beat per cycle (the simulation's AXI RAM model).
        weight_prefetch: load a tile's weights into the free bank while the array computes the
            previous tile (RTL: yes, linear_unit's two weight banks).
        attention_overlap: the attention unit works on head h while the MAC array computes the
            q, k, v of head h + 1 (RTL: yes, the qkv tiles head by head when head_dim is a
            multiple of linear_out; False: attention after the whole qkv pass).
        batch_weight_reuse: every image of the batch streams through a weight tile while it is
            loaded, the batch's token buffers all on chip (RTL: no; one image after the other).
    """

    batch: int = 1
    weight_ports: int = 1
    ddr_gbs: float | None = None
    weight_prefetch: bool = True
    attention_overlap: bool = True
    batch_weight_reuse: bool = False

    def __post_init__(self) -> None:
        if self.batch < 1 or self.weight_ports < 1:
            raise ValueError(f"a schedule needs batch and weight_ports >= 1, got {self}")
        if self.ddr_gbs is not None and not 0 < self.ddr_gbs < math.inf:
            raise ValueError(f"ddr_gbs must be positive and finite, got {self.ddr_gbs}")

    def missing_in_rtl(self) -> list[str]:
        """What this schedule needs that the RTL top does not have (empty: the RTL runs it)."""
        rtl = RTL_SCHEDULE
        missing = []
        if self.weight_ports != rtl.weight_ports:
            missing.append(f"{self.weight_ports} weight read ports (the RTL has one)")
        if not self.weight_prefetch:
            missing.append("weight loads after compute (the RTL always prefetches into its free bank)")
        if not self.attention_overlap:
            missing.append("attention only after the whole qkv pass (the RTL overlaps them)")
        if self.batch_weight_reuse and self.batch > 1:
            missing.append(f"weight reuse across a batch of {self.batch} (token buffers for every image)")
        return missing


RTL_SCHEDULE = Schedule()


def rtl_config_problems(cfg: Config) -> list[str]:
    """What of ``cfg`` the RTL top refuses at elaboration (the ``gen_bad_*`` checks of
    edgemoe_top.sv, linear_engine.sv and attention_engine.sv); empty when it elaborates."""
    m, hw, f = cfg.model, cfg.hw, cfg.formats
    lanes, bits = hw.linear_in, hw.axi_bits
    act, pixel, vec = word_bits(f.act.fmt.bits), word_bits(f.pixel.fmt.bits), word_bits(f.norm.fmt.bits)
    problems = []
    if hw.linear_in != hw.linear_out:
        problems.append(f"a {hw.linear_in}x{hw.linear_out} MAC array (the RTL's is square)")
    if lanes % hw.attn_block or m.head_dim % lanes:
        problems.append(f"attention lanes {hw.attn_block} against token words of {lanes}")
    if m.experts > hw.linear_out:
        problems.append(f"{m.experts} experts on {hw.linear_out} array outputs")
    if (lanes * act) % bits or (m.tokens * m.dim * act) % bits:
        problems.append(f"token words of {lanes * act} bits on {bits}-bit beats")
    if bits % (lanes * pixel) or (m.patches * m.patch_in * pixel) % bits:
        problems.append(f"pixel words of {lanes * pixel} bits on {bits}-bit beats")
    if (bits % (lanes * vec) and (lanes * vec) % bits) or (m.dim * vec) % bits:
        problems.append(f"norm and pos_embed words of {lanes * vec} bits on {bits}-bit beats")
    if word_bits(f.pos_embed.fmt.bits) != vec:
        problems.append("pos_embed and norm values in storage words of different widths")
    if (hw.linear_out * hw.linear_in * word_bits(f.linear_weight.fmt.bits)) % bits:
        problems.append(f"a weight tile column of {hw.linear_out}x{hw.linear_in} weights on {bits}-bit beats")
    return problems


@dataclass
class Prediction:
    """Cycles per image per task by stage (summed over the batch), and memory traffic per image."""

    cfg: Config
    stages: dict[str, int]
    bytes_read: int
    bytes_written: int
    schedule: Schedule = RTL_SCHEDULE
    attention_busy: int = 0  # the batch's cycles from the attention engine's start to its done

    @property
    def cycles(self) -> int:
        """Cycles per image: the batch's cycles over its images."""
        return -(-sum(self.stages.values()) // self.schedule.batch)

    @property
    def latency_ms(self) -> float:
        return self.cycles / (self.cfg.hw.clock_mhz * 1e3)

    @property
    def mac_utilization(self) -> float:
        """The model's MACs over what the MAC units could do in the image's cycles."""
        return self.cfg.model.macs()["total"] / (self.cycles * mac_units(self.cfg))


def _linear_pass(
    cfg: Config,
    t: Timing,
    rows: int,
    k: int,
    out: int,
    bias: bool,
    image_gap: int = 0,
    schedule: Schedule = RTL_SCHEDULE,
) -> tuple[int, int, tuple[int, ...]]:
    """Cycles, weight bytes and the cycle each tile's compute ends of one linear pass on
    linear_engine: per output tile the bias read then the weight read (one reader), the weights
    loading into a free bank while the array computes the previous tile from the other
    (linear_engine, linear_unit).

    ``rows`` and ``image_gap`` are one image's; under batch weight reuse every image of the batch
    streams through each tile (the cycles are then the batch's, the bytes still read once).
    """
    words, word_beats, bias_beats = _tile_beats(cfg, k, bias)
    bias_phase = 1 + t.mem_latency + bias_beats if bias else 0
    weight_phase = 1 + t.mem_latency + math.ceil(words * word_beats / weight_beat_rate(cfg, schedule))
    images = schedule.batch if schedule.batch_weight_reuse else 1
    ends = _tile_ends(
        tiles(out, cfg.hw.linear_out),
        bias_phase,
        weight_phase,
        images * (rows * words + image_gap),
        schedule.weight_prefetch,
    )
    return ends[-1] + t.linear_drain + t.pass_overhead, weight_bytes(cfg, k, out, bias), ends


@functools.lru_cache(maxsize=1 << 16)  # a design-space sweep asks for the same passes many times
def _tile_ends(
    tiles: int, bias_phase: int, weight_phase: int, compute: int, prefetch: bool
) -> tuple[int, ...]:
    """When each tile of a pass is computed: each tile's bias and weight reads, then its compute."""
    ends: list[int] = []
    loaded = 0  # when the previous tile's weights were in
    for i in range(tiles):
        if not prefetch:  # one bank: load only once the previous tile is done
            loaded = (ends[-1] if ends else 0) + bias_phase + weight_phase
            ends.append(loaded + compute)
            continue
        header = (loaded + 1 if i else 0) + bias_phase
        if i >= 2:
            header = max(header, ends[i - 2])  # its bank frees when tile i - 2 is done
        loaded = header + weight_phase
        start = max(loaded, ends[-1] if ends else 0)
        ends.append(start + compute)
    return tuple(ends)


def _tile_beats(cfg: Config, k: int, bias: bool) -> tuple[int, int, int]:
    """A tile's weight words (one per input beat), AXI beats per word, and bias beats."""
    hw = cfg.hw
    words = tiles(k, hw.linear_in)
    word_beats = hw.linear_out * hw.linear_in * word_bits(cfg.formats.linear_weight.fmt.bits) // hw.axi_bits
    bias_beats = max(1, hw.linear_out * word_bits(cfg.formats.bias.fmt.bits) // hw.axi_bits) if bias else 0
    return words, word_beats, bias_beats


def weight_bytes(cfg: Config, k: int, out: int, bias: bool) -> int:
    """Bytes a linear pass reads: every output tile's biases and weights, in whole AXI beats."""
    words, word_beats, bias_beats = _tile_beats(cfg, k, bias)
    return tiles(out, cfg.hw.linear_out) * (bias_beats + words * word_beats) * (cfg.hw.axi_bits // 8)


def weight_beat_rate(cfg: Config, schedule: Schedule) -> float:
    """AXI beats of weights per cycle: one per port, capped by the memory's own bandwidth."""
    rate: float = schedule.weight_ports
    if schedule.ddr_gbs is not None:
        rate = min(rate, schedule.ddr_gbs * 1e3 / cfg.hw.clock_mhz / (cfg.hw.axi_bits // 8))
    return rate


def weight_bytes_per_cycle(cfg: Config, schedule: Schedule) -> float:
    """Bytes of weights per cycle: :func:`weight_beat_rate` beats of ``axi_bits``."""
    return weight_beat_rate(cfg, schedule) * cfg.hw.axi_bits / 8


def word_bits(bits: int) -> int:
    """The storage word (8, 16, 32 or 64 bits) a value of ``bits`` bits takes in memory."""
    return next(w for w in (8, 16, 32, 64) if bits <= w)


def head_cycles(cfg: Config, t: Timing) -> int:
    """Cycles of one head of a block's attention: per group of P queries, attention_unit takes
    the P query rows, sweeps N + P - 1 key rows then as many value rows, drains its A·V pipeline
    (min(P, beats per row) - 1 cycles) and gives its P output rows before it takes the next
    group's queries (states StQ, StK, StSm, StV, StOut: the phases do not overlap)."""
    m, hw = cfg.model, cfg.hw
    rb = m.head_dim // hw.attn_block
    p = hw.attn_p
    group = (2 * p + 2 * (m.tokens + p - 1)) * rb + min(p, rb) - 1 + t.attn_group
    return tiles(m.tokens, p) * group


def head_major(cfg: Config) -> bool:
    """Whether the qkv pass can give its tiles head by head (tile_order.sv): whole tiles per head."""
    return cfg.model.head_dim % cfg.hw.linear_out == 0


def attention_run(cfg: Config, t: Timing, ready: Sequence[int], images: int = 1) -> int:
    """Cycles from the attention engine's start to its done when head h's q, k and v are all in
    the buffer ``ready[h]`` cycles after the start (0: all there already); ``images`` images'
    head h at a time."""
    end = 0
    for r in ready:
        end = max(end, r) + images * head_cycles(cfg, t)
    return end + t.attn_pass


def attention_cycles(cfg: Config, t: Timing) -> int:
    """Cycles of one block's attention pass on its own (every head's q, k and v in the buffer)."""
    return attention_run(cfg, t, [0] * cfg.model.heads) + t.pass_overhead


def predict(
    cfg: Config,
    timing: Timing | None = None,
    schedule: Schedule = RTL_SCHEDULE,
    expert_rows: Mapping[int, Sequence[int]] | None = None,
) -> Prediction:
    """Cycles of one image of one task; with the default schedule, the RTL top's (edgemoe_top.sv:
    pass after pass, attention beside the q | k | v pass).

    Args:
        cfg: the config.
        timing: the timings besides the config (default :class:`Timing`).
        schedule: how the design overlaps and batches its work (default: the RTL top's).
        expert_rows: per MoE block, the rows queued for each of its active experts (an image's
            routing, e.g. ``len(q)`` of the non-empty ``MoERouting.queues``). Without it a block's
            ``tokens * top_k`` rows are taken as spread evenly over the experts: the fewest
            cycles, since an expert with few rows waits for its weight reads (a trained gate's
            uneven split costs more).
    """
    t = timing or Timing()
    s = schedule
    m, hw = cfg.model, cfg.hw
    n, d = m.tokens, m.dim
    lanes = hw.linear_in
    words = n * d // lanes  # a token buffer's words
    beat = hw.axi_bits // 8
    vec_chunks = max(1, hw.axi_bits // (lanes * word_bits(cfg.formats.norm.fmt.bits)))
    norm_beats = d * word_bits(cfg.formats.norm.fmt.bits) // hw.axi_bits
    # stages and bytes are the batch's: a pass under weight reuse serves every image at once,
    # anything else runs once per image
    reps = s.batch if s.batch_weight_reuse else 1
    each = s.batch // reps  # how often a linear pass runs per batch
    stages: dict[str, int] = {}
    read = 0
    attention_busy = 0

    def add(name: str, cycles: int) -> None:
        stages[name] = stages.get(name, 0) + cycles

    def linear(name: str, rows: int, k: int, out: int, bias: bool, image_gap: int = 0) -> int:
        nonlocal read
        cycles, wbytes, ends = _linear_pass(cfg, t, rows, k, out, bias, image_gap, s)
        add(name, each * cycles)
        read += each * wbytes
        return ends

    image_beats = m.patches * m.patch_in * word_bits(cfg.formats.pixel.fmt.bits) // hw.axi_bits
    linear("patch_embed", m.patches, m.patch_in, d, True, image_gap=t.mem_latency)
    read += s.batch * tiles(d, hw.linear_out) * image_beats * beat
    add("pos_embed", s.batch * (1 + t.mem_latency + words + t.pass_overhead))
    read += s.batch * n * d * word_bits(cfg.formats.pos_embed.fmt.bits) // 8
    ln = (
        2 * (1 + t.mem_latency + norm_beats * vec_chunks)
        + d // lanes
        + words
        + t.ln_latency
        + t.pass_overhead
    )
    resid = words + t.pass_overhead + 2
    per_head = tiles(3 * m.head_dim, hw.linear_out) if head_major(cfg) else tiles(3 * d, hw.linear_out)
    for i in range(m.depth):
        add("layernorm", s.batch * 2 * ln)
        read += each * 4 * norm_beats * beat
        before = stages.get("qkv", 0)
        ends = linear("qkv", n, d, 3 * d, True)
        qkv = stages["qkv"] - before
        if s.attention_overlap:  # the engine starts with the pass; a head once its tiles are in
            ready = [ends[min(len(ends), (h + 1) * per_head) - 1] + t.linear_drain for h in range(m.heads)]
            run = attention_run(cfg, t, ready, reps)
            add("attention", each * max(0, run + t.pass_overhead - qkv // each))  # beyond the pass
        else:
            run = attention_run(cfg, t, [0] * m.heads, reps)
            add("attention", each * (run + t.pass_overhead))
        attention_busy += each * run
        linear("proj", n, d, d, True)
        add("residual", s.batch * 2 * resid)
        if m.is_moe(i):
            linear("gate+router", n, d, m.experts, False)
            add(
                "gate+router",
                s.batch * (max(0, n * m.experts - n * tiles(d, lanes)) + t.router_tail + n * m.top_k),
            )
            for rows in expert_rows[i] if expert_rows is not None else _even_split(cfg):
                for k, out in ((d, m.expert_hidden), (m.expert_hidden, d)):
                    linear("experts", rows, k, out, True)
        else:
            for k, out in ((d, m.mlp_hidden), (m.mlp_hidden, d)):
                linear("mlp", n, k, out, True)
    token_bytes = n * d * word_bits(cfg.formats.act.fmt.bits) // 8
    add("store", s.batch * (token_bytes // beat + 2 * t.mem_latency + t.pass_overhead))
    add("control", 1)
    return Prediction(cfg, stages, -(-read // s.batch), token_bytes, s, attention_busy)


def _even_split(cfg: Config) -> list[int]:
    """A MoE block's ``tokens * top_k`` queued rows spread as evenly as they go over its experts."""
    m = cfg.model
    queued = m.tokens * m.top_k
    active = min(m.experts, queued)
    return [queued // active + (1 if e < queued % active else 0) for e in range(active)]


def report(p: Prediction) -> str:
    """The lines ``edgemoe perf`` prints: the latency line, then the stages (per image)."""
    cfg, s = p.cfg, p.schedule
    missing = s.missing_in_rtl()
    schedule = "RTL top's schedule" if not missing else "needs: " + "; ".join(missing)
    lines = [
        f"latency: {p.latency_ms:.2f} ms/image/task at {cfg.hw.clock_mhz:g} MHz",
        f"config '{cfg.name}': {p.cycles} cycles per image per task ({schedule})",
    ]
    if s.batch > 1:
        lines.append(f"  batch of {s.batch}: stages below are per image, the batch's cycles over {s.batch}")
    for name, cycles in sorted(p.stages.items(), key=lambda kv: -kv[1]):
        per_image = round(cycles / s.batch)
        lines.append(f"  {name:<12} {per_image:>12} cycles  {100 * cycles / s.batch / p.cycles:5.1f} %")
    lines.append(f"  memory       {p.bytes_read} bytes read, {p.bytes_written} bytes written per image")
    lines.append(
        f"  MAC utilization {100 * p.mac_utilization:.1f} % ({cfg.model.macs()['total']} MACs on "
        f"{mac_units(cfg)} MAC units)"
    )
    return "\n".join(lines)


def mac_units(cfg: Config) -> int:
    """Multipliers that do the model's MACs: the linear array and the attention lanes."""
    return cfg.hw.linear_in * cfg.hw.linear_out + cfg.hw.attn_p * cfg.hw.attn_block
