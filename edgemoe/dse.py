"""Design-space exploration: every design point's latency (the cycle model) and resources (the
resource model), the ones that fit the ZCU102, and their Pareto set (``edgemoe perf --sweep``).

A design point is the hardware parallelism of a config (MAC array ``linear_in`` x ``linear_out``,
attention ``attn_p`` slots x ``attn_block`` lanes, ``axi_bits``) and a :class:`Schedule`
(weight ports, batch, prefetch, attention overlap, batch weight reuse). Each says what of it the
RTL top does not have yet (:meth:`Evaluated.missing_in_rtl`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from edgemoe.config import Config, ConfigError
from edgemoe.perf import Schedule, Timing, predict, rtl_config_problems, word_bits
from edgemoe.resources import BUDGET, estimate

ARRAY_SIDES = (8, 16, 24, 32, 48, 64)
ATTN_SLOTS = (1, 2, 4, 8, 16, 32)
ATTN_LANES = (4, 8, 16, 32, 64)
PORT_BITS = (128, 256)
PORT_COUNTS = (1, 2, 4)
OBJECTIVES = ("latency_ms", "DSP", "BRAM36", "LUT")
"""What the Pareto set trades: latency per image per task against DSP, BRAM and LUT."""
SHOWN = 20
"""Pareto points printed (the fastest); sweep.json holds them all."""


@dataclass(frozen=True)
class DesignPoint:
    """Hardware parallelism plus a schedule."""

    linear_in: int
    linear_out: int
    attn_p: int
    attn_block: int
    axi_bits: int
    schedule: Schedule

    def config(self, base: Config) -> Config:
        """``base`` with this point's parallelism (ConfigError when the model does not tile)."""
        hw = dataclasses.replace(
            base.hw,
            linear_in=self.linear_in,
            linear_out=self.linear_out,
            attn_p=self.attn_p,
            attn_block=self.attn_block,
            axi_bits=self.axi_bits,
        )
        return dataclasses.replace(base, name=f"{base.name}+{self.short()}", hw=hw)

    def short(self) -> str:
        s = self.schedule
        flags = "".join(
            f
            for f, on in (("+overlap", s.attention_overlap), ("+reuse", s.batch_weight_reuse and s.batch > 1))
            if on
        )
        return (
            f"{self.linear_in}x{self.linear_out}-p{self.attn_p}b{self.attn_block}-"
            f"{s.weight_ports}x{self.axi_bits}{flags}"
        )


@dataclass
class Evaluated:
    """A design point's predicted cycles, latency and resources."""

    point: DesignPoint
    cycles: int
    latency_ms: float
    mac_utilization: float
    bytes_read: int
    resources: dict[str, int]
    rtl_shape: list[str]  # what of the parallelism the RTL top cannot elaborate

    @property
    def fits(self) -> bool:
        return all(self.resources[k] <= v for k, v in BUDGET.items())

    def missing_in_rtl(self) -> list[str]:
        return self.rtl_shape + self.point.schedule.missing_in_rtl()

    def objectives(self) -> tuple[float, ...]:
        return tuple(self.latency_ms if k == "latency_ms" else self.resources[k] for k in OBJECTIVES)

    def brief(self) -> dict[str, object]:
        """What sweep.json keeps of every point (the Pareto points get :meth:`to_dict`)."""
        return {
            "name": self.point.short(),
            "cycles_per_image": self.cycles,
            "resources": self.resources,
            "fits_budget": self.fits,
            "rtl_today": not self.missing_in_rtl(),
        }

    def to_dict(self) -> dict[str, object]:
        p = self.point
        return {
            "name": p.short(),
            "hw": {
                "linear_in": p.linear_in,
                "linear_out": p.linear_out,
                "attn_p": p.attn_p,
                "attn_block": p.attn_block,
                "axi_bits": p.axi_bits,
            },
            "schedule": dataclasses.asdict(p.schedule),
            "cycles_per_image": self.cycles,
            "latency_ms": round(self.latency_ms, 4),
            "mac_utilization": round(self.mac_utilization, 4),
            "bytes_read_per_image": self.bytes_read,
            "resources": self.resources,
            "fits_budget": self.fits,
            "missing_in_rtl": self.missing_in_rtl(),
        }


def design_points(base: Config, batch: int, ddr_gbs: float) -> Iterator[DesignPoint]:
    """Every point of the space whose parallelism tiles ``base``'s model (the config's own checks)
    and whose weight tile column is whole AXI beats."""
    reuse = (False, True) if batch > 1 else (False,)
    weight = word_bits(base.formats.linear_weight.fmt.bits)
    shapes = itertools.product(ARRAY_SIDES, ARRAY_SIDES, ATTN_SLOTS, ATTN_LANES, PORT_BITS)
    for li, lo, p, blk, bits in shapes:
        if p > base.model.tokens or (li * lo * weight) % bits:
            continue
        try:
            DesignPoint(li, lo, p, blk, bits, Schedule()).config(base)
        except ConfigError:
            continue
        for ports, overlap, shared in itertools.product(PORT_COUNTS, (False, True), reuse):
            schedule = Schedule(
                batch=batch,
                weight_ports=ports,
                ddr_gbs=ddr_gbs,
                attention_overlap=overlap,
                batch_weight_reuse=shared,
            )
            yield DesignPoint(li, lo, p, blk, bits, schedule)


def evaluate(base: Config, point: DesignPoint, timing: Timing) -> Evaluated:
    """A point's cycle-model prediction and resource estimate."""
    cfg = point.config(base)
    pred = predict(cfg, timing, point.schedule)
    return Evaluated(
        point,
        pred.cycles,
        pred.latency_ms,
        pred.mac_utilization,
        pred.bytes_read,
        estimate(cfg, point.schedule).totals(),
        rtl_config_problems(cfg),
    )


T = TypeVar("T")


def pareto(items: Sequence[T], key: Callable[[T], tuple[float, ...]]) -> list[T]:
    """The items no other item dominates (as good in every objective of ``key``, better in one;
    all objectives minimised), in their given order. Equal items are all kept."""
    keys = [key(i) for i in items]
    keep = []
    for i, a in enumerate(keys):
        dominated = any(
            all(x <= y for x, y in zip(b, a, strict=True)) and b != a for j, b in enumerate(keys) if j != i
        )
        if not dominated:
            keep.append(items[i])
    return keep


def sweep(
    base: Config,
    batch: int,
    ddr_gbs: float,
    timing: Timing,
    progress: Callable[[int, int], None] | None = None,
) -> list[Evaluated]:
    """Every design point evaluated, in enumeration order."""
    points = list(design_points(base, batch, ddr_gbs))
    out = []
    for i, point in enumerate(points):
        out.append(evaluate(base, point, timing))
        if progress is not None:
            progress(i + 1, len(points))
    return out


def best(points: Sequence[Evaluated]) -> Evaluated | None:
    """The fastest point under the budget (fewer DSPs, then fewer LUTs, break a tie)."""
    fitting = [e for e in points if e.fits]
    return min(fitting, key=lambda e: (e.cycles, e.resources["DSP"], e.resources["LUT"]), default=None)


def frontier(points: Sequence[Evaluated]) -> list[Evaluated]:
    """The Pareto set of the points under the budget, fastest first."""
    return sorted(pareto([e for e in points if e.fits], Evaluated.objectives), key=lambda e: e.objectives())


def table(points: Sequence[Evaluated]) -> str:
    lines = [
        f"  {'design point':<36} {'ms':>6} {'cycles':>10} {'util':>6} {'DSP':>6} {'BRAM36':>7} "
        f"{'LUT':>8} {'FF':>8}  RTL today"
    ]
    for e in points:
        r = e.resources
        lines.append(
            f"  {e.point.short():<36} {e.latency_ms:6.2f} {e.cycles:>10,} {100 * e.mac_utilization:5.1f}% "
            f"{r['DSP']:>6,} {r['BRAM36']:>7,} {r['LUT']:>8,} {r['FF']:>8,}  "
            f"{'yes' if not e.missing_in_rtl() else 'no'}"
        )
    return "\n".join(lines)


def write_json(
    path: Path, base: Config, points: Sequence[Evaluated], front: Sequence[Evaluated], meta: dict
) -> None:
    data = {
        **meta,
        "config": base.name,
        "budget": BUDGET,
        "objectives": list(OBJECTIVES),
        "points": len(points),
        "fitting": sum(e.fits for e in points),
        "pareto": [e.to_dict() for e in front],
        "all": [e.brief() for e in points],
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def plot(
    path: Path, base: Config, points: Sequence[Evaluated], front: Sequence[Evaluated], title: str
) -> None:
    """Latency against DSPs: every point (fitting or not), the Pareto set marked, BRAM36 as colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    fit = [e for e in points if e.fits]
    over = [e for e in points if not e.fits and e.resources["DSP"] <= 2 * BUDGET["DSP"]]
    if over:
        ax.scatter(
            [e.resources["DSP"] for e in over],
            [e.latency_ms for e in over],
            s=4,
            c="0.8",
            label="over budget",
        )
    sc = ax.scatter(
        [e.resources["DSP"] for e in fit],
        [e.latency_ms for e in fit],
        s=6,
        c=[e.resources["BRAM36"] for e in fit],
        cmap="viridis",
        label="within budget",
    )
    fig.colorbar(sc, ax=ax, label="BRAM36")
    ax.scatter(
        [e.resources["DSP"] for e in front],
        [e.latency_ms for e in front],
        s=30,
        facecolors="none",
        edgecolors="red",
        label="Pareto set (latency, DSP, BRAM36, LUT)",
    )
    rtl = [e for e in fit if not e.missing_in_rtl()]
    if rtl:
        ax.scatter(
            [e.resources["DSP"] for e in rtl],
            [e.latency_ms for e in rtl],
            s=40,
            marker="x",
            c="k",
            label="runs on the RTL top today",
        )
    ax.axvline(BUDGET["DSP"], color="k", lw=0.6, ls="--")
    ax.set_xlim(0, 2 * BUDGET["DSP"])  # beyond twice the budget nothing is near a fit
    ax.set_yscale("log")
    ax.set_xlabel("DSP48E2 (model)")
    ax.set_ylabel(f"ms per image per task at {base.hw.clock_mhz:g} MHz")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_sweep(base: Config, batch: int, ddr_gbs: float | None, timing: Timing, out: Path) -> None:
    """``edgemoe perf --sweep``: evaluate the space, print the assumptions, the resource model's
    fit, the Pareto set and the best point's needs; write sweep.json and pareto.png."""
    from edgemoe.files import atomic_path, check_output_folder
    from edgemoe.progress import log
    from edgemoe.resources import budget_use, fit_errors
    from edgemoe.roofline import DEFAULT_DDR_GBS, assumptions

    check_output_folder(out)
    ddr = DEFAULT_DDR_GBS if ddr_gbs is None else ddr_gbs
    step = {"next": 0.0}

    def progress(done: int, total: int) -> None:
        if done / total >= step["next"] or done == total:
            log(f"sweep: {done}/{total} design points")
            step["next"] += 0.25

    points = sweep(base, batch, ddr, timing, progress)
    front = frontier(points)
    top = best(points)
    print("\n".join(assumptions(base, Schedule(batch=batch, ddr_gbs=ddr), timing)[:5]))
    print(f"  the latency is per image per task at {base.hw.clock_mhz:g} MHz; batch {batch}")
    print("resource model (Yosys xcup), error against each measured point:")
    for m, _model, err in fit_errors():
        errs = ", ".join(f"{r} {100 * e:+.1f} %" for r, e in err.items())
        print(f"  {m.unit:<15} at {m.cfg.name:<14} {errs}")
    fitting = sum(e.fits for e in points)
    print(
        f"design space: {len(points)} points, {fitting} within the ZCU102 budget "
        f"({', '.join(f'{v:,} {k}' for k, v in BUDGET.items())})"
    )
    shown = front[:SHOWN]
    more = f"; the fastest {len(shown)} here, all in sweep.json" if len(front) > len(shown) else ""
    print(f"Pareto set (latency vs {', '.join(OBJECTIVES[1:])}), {len(front)} points{more}:")
    print(table(shown))
    rtl_best = best([e for e in points if not e.missing_in_rtl()])
    if rtl_best is not None:
        print(
            f"fastest the RTL top runs today: {rtl_best.point.short()}, "
            f"{rtl_best.latency_ms:.2f} ms/image/task"
        )
    if top is None:
        print("no design point fits the budget")
    else:
        print(
            f"best within the budget: {top.point.short()}, {top.latency_ms:.2f} ms/image/task, "
            f"{budget_use(top.resources)}"
        )
        needs = top.missing_in_rtl()
        print("  it needs what the RTL top does not have yet:" if needs else "  the RTL top runs it today")
        for need in needs:
            print(f"    - {need}")
    out.mkdir(parents=True, exist_ok=True)
    meta = {"batch": batch, "ddr_gbs": ddr, "mem_latency": timing.mem_latency, "clock_mhz": base.hw.clock_mhz}
    with atomic_path(out / "sweep.json") as tmp:
        write_json(tmp, base, points, front, {**meta, "best": top.to_dict() if top else None})
    title = f"{base.name}: batch {batch}, memory ceiling {ddr:g} GB/s, {len(points)} design points"
    with atomic_path(out / "pareto.png") as tmp:
        plot(tmp, base, points, front, title)
    print(f"wrote {out / 'sweep.json'} and {out / 'pareto.png'}")
