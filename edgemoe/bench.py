"""``edgemoe bench``: time of the fixed-point reference against the float golden model.

One image, one task, the backbone only on both sides: the task heads run in float on the host
for every back end, so they are not part of the comparison (their time is printed aside).
Each figure is the median of ``runs`` timed runs after one warm-up run; float and reference
runs alternate, so a change of machine load affects both alike. Weights are prepared once
beforehand (quantized for the reference, loaded into the torch model for float), as a board's
weights are packed once. Both sides run with the same number of threads (torch intra-op
threads and the BLAS pool numpy uses), one by default: on a shared machine multi-threaded
timings are erratic.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgemoe.cli_args import UserError, add_config_args, config_from_args, formatter, seed
from edgemoe.config import Config


@dataclass
class BenchResult:
    config: str
    task: str
    runs: int
    threads: int
    float_s: float
    reference_s: float
    stages: dict[str, float]  # reference seconds per stage (median run)
    head_s: float = 0.0  # the task's float head on the host, the same work for every back end
    pools: dict[str, int] = field(default_factory=dict)  # thread pool -> threads it ran with

    @property
    def ratio(self) -> float:
        return self.reference_s / self.float_s

    @property
    def ratio_with_head(self) -> float:
        return (self.reference_s + self.head_s) / (self.float_s + self.head_s)

    def text(self) -> str:
        lines = [
            f"benchmark: config '{self.config}', task {self.task}, backbone of one image, "
            f"median of {self.runs} runs, {self.threads} thread(s)",
            f"  float golden (torch float32): {self.float_s * 1e3:9.1f} ms",
            f"  reference (fixed point):      {self.reference_s * 1e3:9.1f} ms",
            f"  ratio reference / float:      {self.ratio:9.2f}x",
        ]
        if self.pools:
            lines.append(
                f"  threads (the same budget on both sides, --threads {self.threads}): "
                + ", ".join(f"{k} {v}" for k, v in self.pools.items())
            )
        if self.head_s:
            lines.append(
                f"  (with the float task head, {self.head_s * 1e3:.1f} ms on the host for either: "
                f"ratio {self.ratio_with_head:.2f}x)"
            )
        if self.stages:
            worst = sorted(self.stages.items(), key=lambda kv: -kv[1])[:4]
            lines.append(
                "  slowest reference stages: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in worst)
            )
        return "\n".join(lines)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(cfg: Config, runs: int = 7, task: int = 0, seed: int = 0, threads: int = 1) -> BenchResult:
    """Time the float golden backbone and the fixed reference backbone on the built-in image."""
    import torch
    from threadpoolctl import threadpool_limits

    if threads < 1:
        raise ValueError(f"bench: threads must be at least 1, got {threads}")
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
            result = _run(cfg, runs, task, seed, threads)
            result.pools = _pools()
            return result
    finally:
        torch.set_num_threads(saved)


def _pools() -> dict[str, int]:
    """The threads each pool runs with now: torch's intra-op pool (the float model) and every BLAS
    or OpenMP pool numpy and torch loaded (threadpoolctl), by library and API."""
    import torch
    from threadpoolctl import threadpool_info

    pools = {"torch intra-op": torch.get_num_threads()}
    for info in threadpool_info():
        pools[f"{info['internal_api']} ({info['user_api']})"] = int(info["num_threads"])
    return pools


def _run(cfg: Config, runs: int, task: int, seed: int, threads: int) -> BenchResult:
    import torch

    from edgemoe.golden import images, weights
    from edgemoe.golden.fixed.model import FixedM3ViT
    from edgemoe.golden.model import M3ViT

    if runs < 1:
        raise ValueError(f"bench: runs must be at least 1, got {runs}")
    w = weights.synthetic(cfg, seed=seed)
    image = np.asarray(images.default_image(cfg), dtype=np.float32)
    float_model = M3ViT.from_weights(cfg, w).eval()
    fixed_model = FixedM3ViT(cfg, w)
    timg = torch.from_numpy(image)[None]

    def run_float() -> object:
        with torch.no_grad():
            return float_model.forward_backbone(timg, task)

    outs = []

    def run_ref() -> object:
        out = fixed_model.forward(image, task)
        outs.append(out)
        return out

    # warm-up, then float and reference runs alternate so that a change of machine load
    # affects both figures alike
    run_float()
    run_ref()
    float_times, ref_times = [], []
    for _ in range(runs):
        float_times.append(_timed(run_float))
        ref_times.append(_timed(run_ref))
    float_s, ref_s = statistics.median(float_times), statistics.median(ref_times)
    stages = {k: statistics.median(o.seconds[k] for o in outs[1:]) for k in outs[-1].seconds}
    tokens = float_model.forward_backbone(timg, task).tokens
    with torch.no_grad():
        head_s = statistics.median(_timed(lambda: float_model.heads[task](tokens)) for _ in range(runs))
    return BenchResult(cfg.name, cfg.model.tasks[task], runs, threads, float_s, ref_s, stages, head_s)


def _cmd_bench(args: argparse.Namespace) -> int:
    from edgemoe.infer import parse_tasks

    cfg = config_from_args(args)
    task = parse_tasks(cfg, args.task)
    if len(task) != 1:
        raise UserError("bench times one task: give --task NAME or --task INDEX")
    if args.runs < 1 or args.threads < 1:
        raise UserError(f"--runs and --threads must be at least 1, got {args.runs} and {args.threads}")
    print(run(cfg, runs=args.runs, task=task[0], seed=args.seed, threads=args.threads).text())
    return 0


def add_bench(sub: argparse._SubParsersAction) -> None:
    """The ``bench`` subcommand (listed in ``edgemoe.cli.SUBCOMMANDS``)."""
    p = sub.add_parser(
        "bench",
        help="time the fixed-point reference against the float golden model",
        description="Time the backbone of one image and one task: the float golden model (torch float32)\n"
        "and the bit-exact fixed-point reference (numpy), median of --runs, and their ratio.",
        epilog="examples:\n  edgemoe bench\n  edgemoe bench --preset tiny --runs 5 --task depth",
        formatter_class=formatter,
    )
    add_config_args(p)
    p.add_argument("--runs", type=int, default=7, help="timed runs after one warm-up (default 7)")
    p.add_argument("--task", default="0", help="task name or index (default 0)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the synthetic weights (default 0)")
    p.add_argument(
        "--threads", type=int, default=1, help="threads for torch and BLAS, both sides (default 1)"
    )
    p.set_defaults(func=_cmd_bench)
