"""Performance of the RTL top as its counters report it: per task, the cycles per image, the busy
cycles of each unit, memory traffic and stalls, MAC utilization and the latency at the config's
clock; printed after each call and written as ``perf.json`` and ``perf.png`` by ``edgemoe infer
--backend rtl``."""

from __future__ import annotations

import json
from pathlib import Path

from edgemoe.config import Config

from .layout import register_map

UNITS = ("LINEAR_BUSY", "ATTENTION_BUSY", "LAYERNORM_BUSY", "ROUTER_BUSY", "NONLINEAR_BUSY", "MEMORY_STALL")


def mac_units(cfg: Config) -> int:
    """Multipliers of the linear array and of the attention unit."""
    return cfg.hw.linear_in * cfg.hw.linear_out + cfg.hw.attn_p * cfg.hw.attn_block


def summarize(cfg: Config, counters: dict[str, int], images: int) -> dict[str, float | int]:
    """Per-image figures of one call's counters (a call of ``images`` images)."""
    cycles = counters["CYCLES"] / images
    macs = cfg.model.macs()["total"]
    out: dict[str, float | int] = {"cycles_per_image": cycles}
    out.update({k.lower(): counters[k] / images for k in counters if k != "CYCLES"})
    out["mac_utilization"] = macs / (cycles * mac_units(cfg))
    out["latency_ms"] = cycles / (cfg.hw.clock_mhz * 1e3)
    return out


class RtlPerf:
    """The counters of every call, by task."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.tasks: dict[str, dict[str, float | int]] = {}

    def record(self, task: int, counters: dict[str, int], images: int = 1) -> dict[str, str]:
        """Keep one call's figures; return them as printable text for the infer summary."""
        s = summarize(self.cfg, counters, images)
        self.tasks[self.cfg.model.tasks[task]] = s
        return {
            "cycles/image": f"{s['cycles_per_image']:.0f}",
            "latency": f"{s['latency_ms']:.3f} ms at {self.cfg.hw.clock_mhz:g} MHz",
            "MAC utilization": f"{100 * s['mac_utilization']:.1f} %",
            "busy": ", ".join(f"{k.lower().removesuffix('_busy')} {s[k.lower()]:.0f}" for k in UNITS),
        }

    def finish(self, out: Path) -> list[Path]:
        """Write ``perf.json`` and ``perf.png`` (busy and stall cycles per unit, per task)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out = Path(out)
        doc = {
            "config": self.cfg.name,
            "config_id": f"0x{self.cfg.config_id:08x}",
            "clock_mhz": self.cfg.hw.clock_mhz,
            "mac_units": mac_units(self.cfg),
            "counters": [r.name for r in register_map().counters],
            "tasks": self.tasks,
        }
        written = [out / "perf.json"]
        written[0].write_text(json.dumps(doc, indent=1))
        fig, ax = plt.subplots(figsize=(8, 3.5))
        width = 0.8 / max(len(self.tasks), 1)
        for k, (task, s) in enumerate(self.tasks.items()):
            xs = [i + k * width for i in range(len(UNITS) + 1)]
            values = [s["cycles_per_image"]] + [s[u.lower()] for u in UNITS]
            ax.bar(xs, values, width, label=task)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(UNITS) + 1)])
        ax.set_xticklabels(["total"] + [u.lower().replace("_", "\n") for u in UNITS], fontsize=8)
        ax.set_ylabel("cycles per image")
        ax.set_title(f"RTL top, config '{self.cfg.name}': busy and stall cycles per unit")
        ax.legend()
        written.append(out / "perf.png")
        fig.savefig(written[-1], bbox_inches="tight")
        plt.close(fig)
        return written
