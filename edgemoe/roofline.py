"""A roofline per layer: the MAC array's (or the attention unit's) cycles against the cycles the
layer's off-chip bytes take, for a config and a schedule (``edgemoe perf --roofline``).

Activations live in the top's on-chip token buffers, so a layer's off-chip bytes are its
weights and biases (and the patch embedding's pixels); attention reads nothing off chip.
The memory assumptions are printed with every result (:func:`assumptions`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from edgemoe.config import Config
from edgemoe.perf import (
    RTL_SCHEDULE,
    Schedule,
    Timing,
    attention_cycles,
    layer_beats,
    linear_layers,
    tiles,
    weight_bytes,
    weight_bytes_per_cycle,
    word_bits,
)


@dataclass(frozen=True)
class Bandwidth:
    """A memory bandwidth figure and where it comes from."""

    what: str
    gbs: float
    source: str


def port_gbs(bits: int, clock_mhz: float) -> float:
    """GB/s of one AXI port moving a ``bits`` beat every cycle at ``clock_mhz``."""
    return bits / 8 * clock_mhz / 1e3


ZCU102_DDR_PEAK = Bandwidth(
    "ZCU102 PS DDR4, theoretical peak",
    2666e6 * 8 / 1e9,
    "DDR4-2666 on a 64-bit bus: 2666 MT/s x 8 bytes",
)
ZCU102_DDR = Bandwidth(
    "ZCU102 PS DDR4, the sweep's default ceiling",
    19.2,
    "2400 MT/s x 8 bytes, the figure the performance goals of this design are set against; "
    "sustained rates on a board are lower still",
)
DEFAULT_DDR_GBS = ZCU102_DDR.gbs


def assumptions(cfg: Config, schedule: Schedule, timing: Timing) -> list[str]:
    """The memory assumptions behind a prediction, each with its source, as printed lines."""
    hw = cfg.hw
    port = port_gbs(hw.axi_bits, hw.clock_mhz)
    rate = weight_bytes_per_cycle(cfg, schedule)
    ceiling = (
        f"{schedule.ddr_gbs:g} GB/s shared by the ports"
        if schedule.ddr_gbs is not None
        else "none (every port a beat per cycle, the simulation's AXI RAM model)"
    )
    return [
        "assumptions:",
        f"  {ZCU102_DDR_PEAK.what}: {ZCU102_DDR_PEAK.gbs:.1f} GB/s ({ZCU102_DDR_PEAK.source})",
        f"  {ZCU102_DDR.what}: {ZCU102_DDR.gbs:.1f} GB/s ({ZCU102_DDR.source})",
        f"  one HP port, 128 bits at {hw.clock_mhz:g} MHz: {port_gbs(128, hw.clock_mhz):.1f} GB/s "
        "(a beat per cycle at the PL clock; the ZCU102's PS has four HP ports)",
        f"  one {hw.axi_bits}-bit AXI port at {hw.clock_mhz:g} MHz: {port:.1f} GB/s (a beat per cycle)",
        f"  weights: {schedule.weight_ports} port(s) x {hw.axi_bits} bits, memory ceiling {ceiling}: "
        f"{rate:.1f} bytes/cycle = {rate * hw.clock_mhz / 1e3:.1f} GB/s",
        f"  {timing.mem_latency} cycles from a read request to its first data; activations stay on chip",
    ]


@dataclass(frozen=True)
class LayerRoof:
    """One layer's roofline figures per image: MACs, off-chip bytes and the cycles of each."""

    name: str
    kind: str  # linear, experts or attention
    macs: int
    bytes: float
    compute_cycles: int
    memory_cycles: float
    peak_macs_per_cycle: int

    @property
    def bound(self) -> str:
        """``compute`` or ``memory``: the larger of the two cycle counts (ties are compute-bound)."""
        return "memory" if self.memory_cycles > self.compute_cycles else "compute"

    @property
    def cycles(self) -> float:
        return max(self.compute_cycles, self.memory_cycles)

    @property
    def intensity(self) -> float:
        """MACs per off-chip byte (infinite for a layer that reads nothing off chip)."""
        return self.macs / self.bytes if self.bytes else math.inf


def roofline(cfg: Config, schedule: Schedule = RTL_SCHEDULE, timing: Timing | None = None) -> list[LayerRoof]:
    """Every layer of one image in schedule order, attention after each block's qkv.

    A linear layer's compute cycles are the MAC array's input beats (tiles x rows x words); its
    memory cycles are its bytes over the weight ports' bytes per cycle. Under batch weight reuse
    a weight byte serves every image of the batch, so it counts 1/batch per image.
    """
    t = timing or Timing()
    m, hw = cfg.model, cfg.hw
    bytes_per_cycle = weight_bytes_per_cycle(cfg, schedule)
    shared = schedule.batch if schedule.batch_weight_reuse else 1
    array = hw.linear_in * hw.linear_out
    pixel_bytes = m.patches * m.patch_in * word_bits(cfg.formats.pixel.fmt.bits) // 8  # again per tile
    out: list[LayerRoof] = []
    for layer in linear_layers(cfg):
        beats = layer_beats(cfg, layer)
        nbytes = layer.weight_sets * weight_bytes(cfg, layer.k, layer.out, layer.bias) / shared
        if layer.name == "patch_embed":
            nbytes += tiles(layer.out, hw.linear_out) * pixel_bytes
        kind = "experts" if ".experts." in layer.name else "linear"
        macs = layer.rows * layer.k * layer.out
        out.append(LayerRoof(layer.name, kind, macs, nbytes, beats, nbytes / bytes_per_cycle, array))
        if layer.name.endswith(".qkv"):
            block = layer.name.removesuffix(".qkv")
            macs = 2 * m.heads * m.tokens * m.tokens * m.head_dim  # q.k and p.v
            cycles = attention_cycles(cfg, t)
            out.append(
                LayerRoof(f"{block}.attention", "attention", macs, 0, cycles, 0, hw.attn_p * hw.attn_block)
            )
    return out


def layer_kind(name: str) -> str:
    """A layer's name without its block (``l3.qkv`` -> ``qkv``): the rows of the summary table."""
    head, _, rest = name.partition(".")
    return rest if head.startswith("l") and head[1:].isdigit() else name


def table(roofs: list[LayerRoof]) -> str:
    """The roofline by layer kind (the blocks' identical layers summed), then the total."""
    groups: dict[str, list[LayerRoof]] = {}
    for r in roofs:
        groups.setdefault(layer_kind(r.name), []).append(r)
    lines = [
        f"  {'layer':<14}{'x':>3} {'MACs':>12} {'bytes':>11} {'MAC/byte':>9} "
        f"{'compute cyc':>12} {'memory cyc':>11}  bound",
    ]
    for kind, rs in groups.items():
        macs = sum(r.macs for r in rs)
        nbytes = sum(r.bytes for r in rs)
        compute = sum(r.compute_cycles for r in rs)
        memory = sum(r.memory_cycles for r in rs)
        intensity = f"{macs / nbytes:9.1f}" if nbytes else f"{'on chip':>9}"
        bounds = sorted({r.bound for r in rs})
        lines.append(
            f"  {kind:<14}{len(rs):>3} {macs:>12,} {nbytes:>11,.0f} {intensity} "
            f"{compute:>12,} {memory:>11,.0f}  {'/'.join(bounds)}"
        )
    total = sum(r.cycles for r in roofs)
    lines.append(
        f"  roofline bound of the image: {total:,.0f} cycles "
        f"({sum(r.bound == 'memory' for r in roofs)} of {len(roofs)} layers memory-bound)"
    )
    return "\n".join(lines)


def plot(roofs: list[LayerRoof], cfg: Config, schedule: Schedule, path: Path) -> None:
    """The roofline PNG: MACs per cycle reached by each layer against its MACs per byte."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bytes_per_cycle = weight_bytes_per_cycle(cfg, schedule)
    finite = [r.intensity for r in roofs if r.bytes]
    lo = min(finite, default=1.0) / 4
    hi = max(finite, default=1.0) * 4
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    xs = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    array = cfg.hw.linear_in * cfg.hw.linear_out
    ax.plot(
        xs, [min(array, bytes_per_cycle * x) for x in xs], lw=1.2, label=f"MAC array roof ({array} MAC/cycle)"
    )
    attention = cfg.hw.attn_p * cfg.hw.attn_block  # reads nothing off chip: no slope
    ax.plot(xs, [attention] * len(xs), lw=1.2, label=f"attention unit roof ({attention} MAC/cycle)")
    for kind, marker in (("linear", "o"), ("experts", "s"), ("attention", "^")):
        pts = [r for r in roofs if r.kind == kind]
        if pts:
            ax.scatter(
                [r.intensity if r.bytes else hi for r in pts],
                [r.macs / r.cycles for r in pts],
                marker=marker,
                s=22,
                label=kind + (" (on chip, drawn at the right edge)" if kind == "attention" else ""),
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (MACs per off-chip byte)")
    ax.set_ylabel("MACs per cycle (roofline bound)")
    ax.set_title(
        f"{cfg.name}: {schedule.weight_ports} x {cfg.hw.axi_bits}-bit weight port(s), "
        f"{bytes_per_cycle:.0f} B/cycle, batch {schedule.batch}",
        fontsize=9,
    )
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_roofline(cfg: Config, schedule: Schedule, timing: Timing, out: Path) -> None:
    """``edgemoe perf --roofline``: print the assumptions and the table; write the PNG and JSON."""
    import json

    from edgemoe.files import atomic_path, check_output_folder

    check_output_folder(out)
    roofs = roofline(cfg, schedule, timing)
    stated = assumptions(cfg, schedule, timing)
    print("\n".join(stated))
    print(f"roofline per layer, per image (config '{cfg.name}'):")
    print(table(roofs))
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "config": cfg.name,
        "schedule": dataclasses.asdict(schedule),
        "assumptions": stated[1:],
        "layers": [
            {
                "name": r.name,
                "kind": r.kind,
                "macs": r.macs,
                "bytes": r.bytes,
                "intensity_macs_per_byte": r.intensity if r.bytes else None,
                "compute_cycles": r.compute_cycles,
                "memory_cycles": r.memory_cycles,
                "bound": r.bound,
            }
            for r in roofs
        ],
    }
    with atomic_path(out / "roofline.json") as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    with atomic_path(out / "roofline.png") as tmp:
        plot(roofs, cfg, schedule, tmp)
    print(f"wrote {out / 'roofline.json'} and {out / 'roofline.png'}")
