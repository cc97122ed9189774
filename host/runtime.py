"""``edgemoe infer`` back ends that go through the host runtime: simulated devices and a board.

* ``csim``: the C-simulated HLS top behind a simulated pynq device;
* ``sim-reference``: the fixed-point reference behind a simulated pynq device (the whole host
  path — packing, registers, polling, unpacking — with the reference computing);
* ``board``: a real PYNQ board; the bitstream comes from ``$EDGEMOE_BITSTREAM``.

All three run the same :class:`~edgemoe.host.driver.Accelerator` code; the task heads run in
float on the host.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgemoe.backends import Runner, TaskOutput
from edgemoe.config import Config
from edgemoe.errors import listing
from edgemoe.golden.fixed.core import SaturationLog
from edgemoe.paths import BUILD, config_dir_name

from .device import SimDevice, read_sim_bitstream, write_sim_bitstream
from .driver import Accelerator, AcceleratorError

BITSTREAM_ENV = "EDGEMOE_BITSTREAM"
RTL_TIMEOUT_S = 24 * 3600.0
"""Wall-clock bound on one call of the RTL simulation (an edge-moe image takes tens of minutes)."""


def sim_bitstream(cfg: Config, root: Path | None = None) -> Path:
    """The simulated bitstream of ``cfg`` under ``build/<name>/sim/`` (written when absent or stale)."""
    name = config_dir_name(cfg)
    path = (root or BUILD) / name / "sim" / f"edgemoe_{name}.bit"
    try:
        if read_sim_bitstream(path).config_id == cfg.config_id:
            return path
    except (OSError, RuntimeError):
        pass
    return write_sim_bitstream(cfg, path)


def simulated(cfg: Config, engine: str, timeout: float = 600.0) -> Accelerator:
    """An :class:`Accelerator` on the simulated device of ``engine``."""
    cfg.refuse_block_act(f"the simulated {engine!r} device")
    return Accelerator(cfg, sim_bitstream(cfg), device=SimDevice.for_engine(engine), timeout=timeout)


def _runner(acc: Accelerator, weights: dict[str, np.ndarray], label: str) -> Runner:
    log = SaturationLog()
    acc.load_weights(weights, log)
    saturated = log.saturated()
    info: dict[str, object] = {"device": label, "saturated weights": sum(saturated.values())}
    if saturated:  # the device cannot count them: say so here, once, per tensor
        counts = [f"{name} {n}/{log.counts[name][1]}" for name, n in sorted(saturated.items())]
        print(f"weights saturated in their storage formats: {listing(counts, limit=4)}")

    def run(image: np.ndarray, task: int) -> TaskOutput:
        raw = acc.backbone(np.asarray(image)[None], task)[0]
        tokens = raw.astype(np.float64) * acc.cfg.formats.act.fmt.lsb
        return TaskOutput(tokens=tokens.astype(np.float32), head=None, info=info, arrays={"tokens_raw": raw})

    return run


def prepare_csim(cfg: Config, weights: dict[str, np.ndarray]) -> Runner:
    """``edgemoe infer --backend csim``."""
    return _runner(simulated(cfg, "csim"), weights, "sim-csim")


def prepare_sim_reference(cfg: Config, weights: dict[str, np.ndarray]) -> Runner:
    """``edgemoe infer --backend sim-reference``."""
    return _runner(simulated(cfg, "reference"), weights, "sim-reference")


def prepare_rtl(cfg: Config, weights: dict[str, np.ndarray]) -> Runner:
    """``edgemoe infer --backend rtl``: the RTL top under Verilator behind the simulated device;
    after each task its performance counters (cycles, busy units, traffic), perf.json and perf.png."""
    from edgemoe.perf import rtl_config_problems

    from .layout import register_map
    from .rtl_perf import RtlPerf

    problems = rtl_config_problems(cfg)
    if problems:  # before any build: the top would stop at elaboration or misbehave
        raise AcceleratorError(f"config {cfg.name!r}: the RTL top does not take {'; '.join(problems)}")
    acc = simulated(cfg, "rtl", timeout=RTL_TIMEOUT_S)
    run_task = _runner(acc, weights, "sim-rtl")
    perf = RtlPerf(cfg)

    def run(image: np.ndarray, task: int) -> TaskOutput:
        out = run_task(image, task)
        counters = {r.name: acc.ip.read_reg(r.name) for r in register_map().counters}
        out.info.update(perf.record(task, counters))
        return out

    run.finish = perf.finish
    return run


def prepare_board(cfg: Config, weights: dict[str, np.ndarray]) -> Runner:
    """``edgemoe infer --backend board``: the bitstream named by ``$EDGEMOE_BITSTREAM``."""
    cfg.refuse_block_act("the board")
    bit = os.environ.get(BITSTREAM_ENV)
    if not bit:
        raise AcceleratorError(
            f"--backend board needs the bitstream: set {BITSTREAM_ENV}=path/to/edgemoe_<board>.bit "
            "(its .hwh beside it), built by `make bitstream`"
        )
    if not Path(bit).is_file():  # pynq would raise a bare OSError
        raise AcceleratorError(
            f"{BITSTREAM_ENV}={bit}: no such bitstream file; build one with `make bitstream`"
        )
    return _runner(Accelerator(cfg, bit), weights, f"board {Path(bit).name}")
