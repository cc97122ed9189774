"""House rules of the HLS sources that a Vitis run relies on, checked without Vitis: only
headers that exist outside Vitis, no macros, every loop labelled, every compile-time limit a
static_assert with a message, and no size or format written into a kernel by hand. The
accelerator top (edgemoe_top.h, edgemoe_top.cpp) follows the kernels' rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgemoe.paths import REPO

HLS = REPO / "hls"
KERNELS = [
    "edgemoe_types.h",
    "nonlinear.h",
    "linear.h",
    "layernorm.h",
    "attention.h",
    "moe.h",
    "patch_embed.h",
]
# the kernels, then the top that wires them to memory
SOURCES = [f"include/{name}" for name in KERNELS] + ["include/edgemoe_top.h", "src/edgemoe_top.cpp"]
ALLOWED_SYSTEM = {"ap_fixed.h", "ap_int.h", "hls_stream.h"}
GENERATED = {"edgemoe_config.h", "edgemoe_layout.h"}
# The top's pragma values come from the generated headers: two macros expand them inside _Pragma.
PRAGMA_MACROS = {"src/edgemoe_top.cpp": ["EDGEMOE_STR", "EDGEMOE_PRAGMA"]}


def _code(path: Path) -> str:
    """The file without comments."""
    text = path.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


@pytest.mark.parametrize("name", SOURCES)
def test_kernel_includes_only_vitis_free_headers(name: str) -> None:
    for inc in re.findall(r'#\s*include\s*[<"]([^>"]+)[>"]', _code(HLS / name)):
        assert inc in ALLOWED_SYSTEM or inc in GENERATED or (HLS / "include" / inc).is_file(), (
            f"{name} includes {inc}: kernels use only ap_fixed/ap_int/hls_stream and project headers"
        )
        assert inc not in ("hls_math.h", "hls_vector.h")


@pytest.mark.parametrize("name", SOURCES)
def test_kernel_has_no_macros(name: str) -> None:
    defines = re.findall(r"^\s*#\s*define\s+(\w+)", _code(HLS / name), flags=re.M)
    assert defines == PRAGMA_MACROS.get(name, []), (
        f"{name} defines macros {defines}; use constexpr, templates or enums"
    )


@pytest.mark.parametrize("name", SOURCES)
def test_every_loop_is_labelled(name: str) -> None:
    lines = [line for line in _code(HLS / name).splitlines() if line.strip()]
    unlabelled = []
    for i, line in enumerate(lines):
        if re.match(r"\s*for\s*\(", line):
            j = i - 1
            while j >= 0 and lines[j].strip().startswith("#pragma"):
                j -= 1
            if j < 0 or not re.match(r"^\s*\w+:\s*$", lines[j]):
                unlabelled.append(line.strip())
    assert not unlabelled, f"{name}: loops without a label: {unlabelled}"


@pytest.mark.parametrize("name", SOURCES)
def test_static_asserts_carry_messages(name: str) -> None:
    code = _code(HLS / name)
    for m in re.finditer(r"static_assert\s*\(", code):
        depth, k = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(code[k], 0)
            k += 1
        assert re.search(r',\s*"[^"]{10,}"\s*\)$', code[m.start() : k], flags=re.S), (
            f"{name}: static_assert without a message: {code[m.start() : k]}"
        )


@pytest.mark.parametrize("name", [s for s in SOURCES if s != "include/edgemoe_types.h"])
def test_sizes_come_from_the_config(name: str) -> None:
    """Array sizes and pragma factors are names from the config structs, never numbers."""
    code = _code(HLS / name)
    sized = re.findall(r"\w+\s+\w+\[(\d+)\]", code)
    assert not sized, f"{name}: arrays sized by a literal: {sized}"
    factors = re.findall(r"#pragma HLS .*(?:factor|II|max)\s*=\s*(\d+)", code)
    assert all(f == "1" for f in factors), f"{name}: pragma values written as literals: {factors}"


def test_linear_configs_carry_their_types() -> None:
    """One linear kernel, instantiated per layer kind through a config that carries its weight,
    bias and accumulator types (no kernel takes them as loose template parameters)."""
    code = _code(HLS / "include" / "linear.h")
    for member in ("weight_t", "bias_t", "accum_t"):
        assert re.search(rf"typedef [^;]+ {member};", code), f"linear_unit_config lacks {member}"
    configs = re.findall(r"typedef linear_unit_config<([^>]+)> (\w+);", code)
    assert {name for _, name in configs} == {"linear_config", "linear_attn_config", "linear_patch_config"}
    assert len({types for types, _ in configs}) == len(configs), f"two configs at one format: {configs}"
    for name in SOURCES:
        assert not re.search(r"\blinear<[^>]*,[^>]*,[^>]*,", _code(HLS / name)), (
            f"{name} instantiates linear with loose weight/bias types"
        )
