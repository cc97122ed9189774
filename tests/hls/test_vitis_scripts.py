"""The Vitis HLS / Vivado flow agrees with the code (no vendor tool needed).

Checks that hls/scripts/run_hls.tcl names the real sources, headers and top; that the top's
INTERFACE pragmas, the register map (host/layout.py), the block design (hw/vivado) and the
simulated device use the same port names, offsets, VLNV and addresses; that the make targets
stop with a clear message when vitis_hls / vivado are missing; and that the testbench and the
top, built with g++ exactly as the TCL script sets them up, pass on the reference's vectors.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edgemoe.config import preset
from edgemoe.emit_layout import HLS_LAYOUT_FILE, emit_layout_hls
from edgemoe.host import device, layout
from edgemoe.paths import REPO

ROOT = REPO
HLS_TCL = ROOT / "hls" / "scripts" / "run_hls.tcl"
BD_TCL = ROOT / "hw" / "vivado" / "edgemoe_bd.tcl"
TOP_CPP = ROOT / "hls" / "src" / "edgemoe_top.cpp"
TOP_H = ROOT / "hls" / "include" / "edgemoe_top.h"
GENERATED = {"edgemoe_config.h", "edgemoe_layout.h"}
VENDOR = {"ap_fixed.h", "ap_int.h", "hls_stream.h"}


def tcl_list(text: str, name: str) -> list[str]:
    m = re.search(rf"^set {name} \[list ([^\]]*)\]", text, re.M)
    assert m, f"run_hls.tcl sets no list '{name}'"
    return m.group(1).split()


def tcl_value(text: str, name: str) -> str:
    m = re.search(rf"^set {name} (\S+)", text, re.M)
    assert m, f"no 'set {name}'"
    return m.group(1)


def includes(path: Path) -> list[str]:
    return re.findall(r'^#include "([^"]+)"', path.read_text(), re.M)


def test_hls_script_sources_exist_and_reach_only_known_headers():
    text = HLS_TCL.read_text()
    sources = tcl_list(text, "sources")
    tb = tcl_list(text, "tb_sources")
    dirs = [ROOT / d for d in tcl_list(text, "include_dirs")]
    assert tcl_value(text, "top") == layout.TOP_NAME
    assert sources == ["hls/src/edgemoe_top.cpp"], "synthesis compiles the top only (no C-sim harness)"
    for src in sources + tb:
        assert (ROOT / src).is_file(), src
    # every header the top and the testbench reach resolves in the script's include dirs
    seen: set[str] = set()
    todo = [ROOT / s for s in sources + tb]
    while todo:
        path = todo.pop()
        for inc in includes(path):
            if inc in seen or inc in GENERATED or inc in VENDOR:
                continue
            seen.add(inc)
            found = [d / inc for d in dirs if (d / inc).is_file()]
            assert found, f"{path.name} includes {inc}, found in none of {[str(d) for d in dirs]}"
            assert "csim" not in inc, f"synthesized code must not include the C-sim harness ({inc})"
            todo.append(found[0])
    assert "edgemoe_top.h" in seen
    # the top function is defined in the listed source with the register map's arguments
    sig = re.search(r"^void edgemoe_top\(([^)]*)\)\s*\{", TOP_CPP.read_text(), re.M)
    assert sig, "edgemoe_top.cpp does not define void edgemoe_top(...)"
    args = [a.split()[-1].lstrip("*&") for a in sig.group(1).replace("\n", " ").split(",")]
    assert args == [r.name.lower() for r in layout.register_map().arguments]
    decl = re.search(r"^void edgemoe_top\(([^)]*)\);", TOP_H.read_text(), re.M)
    assert decl and " ".join(decl.group(1).split()) == " ".join(sig.group(1).split())


def pragmas(text: str) -> list[dict[str, str]]:
    out = []
    for body in re.findall(r"EDGEMOE_PRAGMA\(HLS INTERFACE ([^)]*)\)|#pragma HLS INTERFACE (.*)", text):
        words = (body[0] or body[1]).split()
        kv = {}
        for i, w in enumerate(words):
            if w == "=":
                kv[words[i - 1]] = words[i + 1]
        out.append(kv)
    return out


def test_top_interface_matches_register_map_and_block_design():
    regs = layout.register_map()
    found = pragmas(TOP_CPP.read_text())
    maxi = {p["port"]: p["bundle"] for p in found if p.get("mode") == "m_axi"}
    assert maxi == layout.MAXI_BUNDLES
    assert all(p["offset"] == "slave" for p in found if p.get("mode") == "m_axi")
    lite = {p["port"]: p for p in found if p.get("mode") == "s_axilite"}
    assert set(lite) == {r.name.lower() for r in regs.arguments} | {"return"}
    for port, p in lite.items():
        assert p["bundle"] == layout.CONTROL_BUNDLE, port
        if port != "return":
            assert p["offset"] == f"EDGEMOE_REG_{port.upper()}", port
    assert any(p.get("mode") == "ap_ctrl_hs" and p["port"] == "return" for p in found)
    # the generated header gives those macros the register map's offsets
    text = emit_layout_hls(preset("tiny"))
    for r in regs.arguments:
        assert f"#define EDGEMOE_REG_{r.name} 0x{r.offset:02x}" in text

    bd = BD_TCL.read_text()
    assert tcl_value(bd, "vlnv") == layout.VLNV
    assert tcl_value(bd, "instance") == device.IP_INSTANCE
    assert int(tcl_value(bd, "ctrl_base"), 16) == device.IP_BASE_ADDRESS
    assert tcl_value(bd, "ctrl_range") == f"{device.IP_ADDRESS_WINDOW // 1024}K"
    ports = re.search(r"^set maxi_ports \{([^}]*)\}", bd, re.M).group(1).split()
    assert ports == [f"m_axi_{layout.MAXI_BUNDLES[p]}" for p in ("weights", "images", "tokens")]
    assert f"/s_axi_{layout.CONTROL_BUNDLE}" in bd
    # the export gives the VLNV the host driver binds to
    hls = HLS_TCL.read_text()
    export = re.search(r"config_export (.*?)\n(?!\s)", hls.replace("\\\n", " "), re.S).group(1)
    vendor, lib, version = (
        re.search(rf"-{k} (\S+)", export).group(1) for k in ("vendor", "library", "version")
    )
    assert f"{vendor}:{lib}:{tcl_value(hls, 'top')}:{version}" == layout.VLNV
    assert "-ipname $top" in export


def test_settings_follow_the_config_and_overrides(tmp_path):
    from edgemoe.host.vitis import generate

    cfg = preset("edge-moe")
    generate(cfg, tmp_path)
    text = (tmp_path / "settings.tcl").read_text()
    assert "set EDGEMOE_PART {xczu9eg-ffvb1156-2-e}" in text
    assert "set EDGEMOE_CLOCK_NS 3.3333" in text
    assert (tmp_path / HLS_LAYOUT_FILE).read_text() == emit_layout_hls(cfg)
    generate(cfg, tmp_path, part="xck26-sfvc784-2LV-c", clock_mhz=200)
    text = (tmp_path / "settings.tcl").read_text()
    assert "set EDGEMOE_PART {xck26-sfvc784-2LV-c}" in text and "set EDGEMOE_CLOCK_NS 5.0000" in text
    # every variable the flow script reads is set
    needed = set(re.findall(r"\$(EDGEMOE_[A-Z_]+)", HLS_TCL.read_text()))
    assert needed <= set(re.findall(r"^set (EDGEMOE_[A-Z_]+)", text, re.M))


@pytest.mark.parametrize(
    "target,tool", [("hls-csim", "vitis_hls"), ("hls-synth", "vitis_hls"), ("hls-cosim", "vitis_hls"),
                    ("hls-export", "vitis_hls"), ("bitstream", "vivado")]
)  # fmt: skip
def test_make_targets_stop_when_the_tool_is_missing(target, tool, tmp_path):
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    assert shutil.which(tool, path=env["PATH"]) is None
    proc = subprocess.run(
        [make, "-s", target, "PRESET=tiny", f"HLS_OUT={tmp_path}/hls"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert f"error: '{tool}' is not on PATH; make {target} needs" in proc.stdout + proc.stderr
    assert not (tmp_path / "hls").exists(), "nothing may run before the tool check"


def test_hls_testbench_passes_on_reference_vectors_and_catches_a_wrong_byte(tmp_path):
    """What `make hls-csim` runs, with g++ in place of vitis_hls: the testbench and the top on tiny."""
    from edgemoe.csim_build import ap_types_dir
    from edgemoe.host.vitis import generate

    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("g++ is not installed")
    text = HLS_TCL.read_text()
    generate(preset("tiny"), tmp_path, vectors=True)
    for name in tcl_list(text, "tb_data"):
        assert (tmp_path / name).is_file(), f"the script adds {name}, which the generator did not write"
    flags = ["-std=c++14", "-O1", f"-I{tmp_path}", *[f"-I{ROOT / d}" for d in tcl_list(text, "include_dirs")]]
    flags += [f"-I{ap_types_dir()}", f'-DEDGEMOE_TB_DIR="{tmp_path}"', "-Wno-unknown-pragmas"]
    srcs = [str(ROOT / s) for s in tcl_list(text, "tb_sources") + tcl_list(text, "sources")]
    exe = tmp_path / "tb"
    build = subprocess.run([cxx, *flags, *srcs, "-o", str(exe)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    ok = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 of" in ok.stdout and "differ from the reference" in ok.stdout
    expected = tmp_path / "tokens_expected.bin"
    data = bytearray(expected.read_bytes())
    data[5] ^= 0x01
    expected.write_bytes(bytes(data))
    bad = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "token byte 5" in bad.stderr
