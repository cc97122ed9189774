"""Generators: the config as a C++ header (HLS) and a SystemVerilog package (RTL).

Both files carry the same facts under the names agreed for every back end:

* every size of the model (``DIM``/``Dim``, ``TOKENS``/``Tokens``, ...), the per-block
  ``IS_MOE``/``IsMoe`` flags and the per-task output channels;
* every numeric field of the hardware (``LINEAR_IN``/``LinearIn``, ``ATTN_P``/``AttnP``, ...);
* ``CONFIG_ID``/``ConfigId``, the value of the ID register;
* every parameter of the fixed-point nonlinear functions (``EXP_TABLE_BITS``/``ExpTableBits``, ...);
* every cast point ``x`` of the formats: C++ ``x_t`` (an ``ap_fixed``/``ap_ufixed`` with its
  rounding and overflow mode) and ``X_BITS``, ``X_INT_BITS``, ``X_FRAC_BITS``, ``X_SIGNED``,
  ``X_ROUND_HALF_UP``, ``X_SATURATE``; SV ``XBits``,
  ``XIntBits``, ``XFracBits``, ``XSigned``, ``XRoundHalfUp``, ``XSaturate``;
* every table of :func:`edgemoe.tables.build_tables`, named ``<name>_table``: C++
  ``static const long long NAME_TABLE[NAME_TABLE_SIZE]`` of raw values, their format as
  ``NAME_TABLE_WIDTH``, ``NAME_TABLE_FRAC_BITS``, ``NAME_TABLE_SIGNED`` and the storage type
  ``name_table_t``; SV ``NameTable [NameTableSize]`` (64-bit signed raw values),
  ``NameTableWidth``, ``NameTableFracBits``, ``NameTableSigned``. (A table's width is
  ``..._WIDTH`` because ``EXP_TABLE_BITS`` and its kin already name the nonlinear
  parameters: log2 of a table's segment count.)

The names are derived from the dataclass fields, so a field added to the config reaches
both files without touching this module.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from edgemoe import __version__
from edgemoe.config import SHARED_CODES, Cast, Config, FixedFormat, Overflow, Rounding

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

HLS_FILE = "edgemoe_config.h"
SV_FILE = "edgemoe_pkg.sv"

# Sizes derived from the model shape (properties, not fields), emitted after the fields.
_DERIVED_SIZES = ("tokens", "patches", "head_dim", "patch_in")


@dataclasses.dataclass(frozen=True)
class _Const:
    """One named scalar: ``name`` in snake_case, ``value`` an int, bool or float."""

    name: str
    value: int | bool | float
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class _Array:
    """One named constant array of ints or bools, indexed by block or task."""

    name: str
    values: tuple[int | bool, ...]
    size_name: str  # the scalar constant that sizes it, snake_case
    doc: str = ""


def _upper(name: str) -> str:
    return name.upper()


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _snake(name: str) -> str:
    """``NonlinearFunction`` -> ``nonlinear_function``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def cpp_code_name(code: enum.IntEnum) -> str:
    """A shared code's member in its C++ ``enum class`` (``Epilogue.BIAS_GELU`` -> ``BiasGelu``)."""
    return _camel(code.name.lower())


def sv_code_name(code: enum.IntEnum) -> str:
    """A shared code in SystemVerilog (``Epilogue.BIAS_GELU`` -> ``EpilogueBiasGelu``)."""
    return type(code).__name__ + cpp_code_name(code)


def sv_code_type(codes: type[enum.IntEnum]) -> str:
    """The SystemVerilog ``typedef enum`` name of a shared code (``Epilogue`` -> ``epilogue_e``)."""
    return f"{_snake(codes.__name__)}_e"


def sv_code_bits(codes: type[enum.IntEnum]) -> int:
    """The width of a shared code in SystemVerilog (enough for its largest value, at least 1)."""
    return max(1, max(codes).bit_length())


def sv_parameter(value: object) -> object:
    """A parameter value as Verilator's ``-G`` needs it: a shared code as a sized literal
    (``NonlinearFunction.RSQRT`` -> ``3'd3``, which an enum-typed parameter takes without a
    width warning), anything else unchanged."""
    if isinstance(value, SHARED_CODES):
        return f"{sv_code_bits(type(value))}'d{int(value)}"
    return value


def _table_stem(name: str) -> str:
    """``exp`` and ``exp_table`` both name the table ``exp_table``."""
    if not _IDENT.match(name):
        raise ValueError(f"table name '{name}' is not an identifier")
    return name if name.endswith("_table") else f"{name}_table"


def _model_items(cfg: Config) -> Iterator[_Const | _Array]:
    m = cfg.model
    for f in dataclasses.fields(m):
        value = getattr(m, f.name)
        if f.name == "moe_blocks":
            continue  # emitted as IS_MOE[DEPTH] below
        if f.name == "tasks":
            yield _Const(
                "tasks", len(value), "tasks: " + ", ".join(f"{i} = {t}" for i, t in enumerate(value))
            )
        elif isinstance(value, tuple):
            if len(value) != len(m.tasks):
                raise TypeError(f"model.{f.name}: only per-task tuples can be emitted, got {value}")
            yield _Array(f.name, tuple(value), "tasks", f"model.{f.name}, per task")
        elif isinstance(value, bool | int | float):
            yield _Const(f.name, value, f"model.{f.name}")
        else:
            raise TypeError(f"model.{f.name}: cannot emit a {type(value).__name__}")
    gh, gw = m.grid
    yield _Const("grid_h", gh, "patches per column of the image")
    yield _Const("grid_w", gw, "patches per row of the image")
    for name in _DERIVED_SIZES:
        yield _Const(name, getattr(m, name), f"derived: model.{name}")
    yield _Array(
        "is_moe", tuple(m.is_moe(b) for b in range(m.depth)), "depth", "block b has a mixture-of-experts MLP"
    )


def _hw_items(cfg: Config) -> Iterator[_Const]:
    for f in dataclasses.fields(cfg.hw):
        value = getattr(cfg.hw, f.name)
        if isinstance(value, bool | int | float):
            yield _Const(f.name, value, f"hw.{f.name}")


def _nonlinear_items(cfg: Config) -> Iterator[_Const]:
    for f in dataclasses.fields(cfg.nonlinear):
        yield _Const(f.name, getattr(cfg.nonlinear, f.name), f"nonlinear.{f.name}")


def _tables(cfg: Config) -> dict[str, Any]:
    """The hardware's tables, from edgemoe.tables (empty while that module is absent)."""
    try:
        from edgemoe.tables import build_tables
    except ModuleNotFoundError as e:
        if e.name not in ("edgemoe.tables",):
            raise
        return {}
    return build_tables(cfg)


def _table_raw(table: Any) -> list[int]:
    raw = table.raw
    if getattr(raw, "ndim", 1) != 1:
        raise ValueError(f"table '{table.name}' must be one-dimensional, got shape {raw.shape}")
    values = [int(v) for v in raw]
    fmt: FixedFormat = table.fmt
    bad = [v for v in values if not fmt.min_raw <= v <= fmt.max_raw]
    if bad:
        raise ValueError(f"table '{table.name}' holds {bad[0]}, outside its format {fmt}")
    return values


def _check_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"generated {what} declares '{n}' twice; rename the config field or table")
        seen.add(n)


def _banner(cfg: Config, comment: str, command: str, source: str | None) -> list[str]:
    origin = f"config file {source}" if source else f"preset '{cfg.name}'"
    return [
        f"{comment} Generated by `edgemoe config {command}` (edgemoe {__version__}) from {origin}",
        f"{comment} (config '{cfg.name}', CONFIG_ID 0x{cfg.config_id:08x}, FPGA part {cfg.hw.part}).",
        f"{comment} DO NOT EDIT: change edgemoe.config or the config file and regenerate.",
    ]


# ---------------------------------------------------------------------------------------- C++


def _scalar_sections(
    cfg: Config,
    lines: list[str],
    names: list[str],
    *,
    comment: str,
    rename: Callable[[str], str],
    decl: Callable[[_Const | _Array], list[str]],
    model_title: str,
    config_id: tuple[str, str],
) -> None:
    """Append the sections both back ends share, in one order: model shape, hardware parallelism,
    the ID register and the nonlinear settings.

    Args:
        cfg: the configuration.
        lines: the file's lines so far; the sections are appended.
        names: the declared names so far (for the uniqueness check); the new ones are appended.
        comment: the line-comment prefix, with the back end's indent.
        rename: a config field name -> the back end's constant name.
        decl: an item -> its declaration lines.
        model_title: the heading of the model-shape section.
        config_id: the ID register's name and its declaration line.
    """

    def section(title: str, items: Iterable[_Const | _Array]) -> None:
        lines.append(f"{comment} -- {title}")
        for item in items:
            names.append(rename(item.name))
            lines.extend(decl(item))
        lines.append("")

    section(model_title, _model_items(cfg))
    section("hardware parallelism", _hw_items(cfg))
    lines += [f"{comment} -- ID register: a fingerprint of everything the hardware depends on"]
    lines += [config_id[1], ""]
    names.append(config_id[0])
    section("fixed-point nonlinear functions", _nonlinear_items(cfg))


def _cpp_literal(value: int | bool | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _cpp_type(value: int | bool | float) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return "double"
    return "int"


def cpp_type(cast: Cast) -> str:
    """The ap_fixed type of a cast point, with its rounding and overflow mode."""
    fmt = cast.fmt
    kind = "ap_fixed" if fmt.signed else "ap_ufixed"
    q = "AP_RND" if cast.rounding is Rounding.ROUND_HALF_UP else "AP_TRN"
    o = "AP_SAT" if cast.overflow is Overflow.SATURATE else "AP_WRAP"
    return f"{kind}<{fmt.bits}, {fmt.int_bits}, {q}, {o}>"


def _cpp_decl(item: _Const | _Array) -> list[str]:
    doc = f"  // {item.doc}" if item.doc else ""
    if isinstance(item, _Array):
        kind = "bool" if all(isinstance(v, bool) for v in item.values) else "int"
        body = ", ".join(_cpp_literal(v) for v in item.values)
        return [f"constexpr {kind} {_upper(item.name)}[{_upper(item.size_name)}] = {{{body}}};{doc}"]
    return [f"constexpr {_cpp_type(item.value)} {_upper(item.name)} = {_cpp_literal(item.value)};{doc}"]


def emit_hls(cfg: Config, source: str | None = None) -> str:
    """The C++ header ``edgemoe_config.h`` for the HLS kernels (``source``: the config file, if any)."""
    lines = _banner(cfg, "//", "emit-hls", source)
    lines += ["#ifndef EDGEMOE_CONFIG_H", "#define EDGEMOE_CONFIG_H", "", "#include <ap_fixed.h>", ""]
    lines += ["namespace edgemoe {", "namespace cfg {", ""]
    names: list[str] = []
    _scalar_sections(
        cfg,
        lines,
        names,
        comment="//",
        rename=_upper,
        decl=_cpp_decl,
        model_title="model shape",
        config_id=("CONFIG_ID", f"constexpr unsigned CONFIG_ID = 0x{cfg.config_id:08x}u;"),
    )

    lines.append("// -- cast points: the format of each named narrowing point")
    for name, cast in cfg.formats.items():
        up = _upper(name)
        fmt = cast.fmt
        lines.append(
            f"constexpr int {up}_BITS = {fmt.bits}, {up}_INT_BITS = {fmt.int_bits}, "
            f"{up}_FRAC_BITS = {fmt.frac_bits};"
        )
        lines.append(
            f"constexpr bool {up}_SIGNED = {_cpp_literal(fmt.signed)}, "
            f"{up}_ROUND_HALF_UP = {_cpp_literal(cast.rounding is Rounding.ROUND_HALF_UP)}, "
            f"{up}_SATURATE = {_cpp_literal(cast.overflow is Overflow.SATURATE)};"
        )
        names += [
            f"{up}_{s}" for s in ("BITS", "INT_BITS", "FRAC_BITS", "SIGNED", "ROUND_HALF_UP", "SATURATE")
        ]
    lines.append("")

    tables = _tables(cfg)
    lines.append(f"// -- tables of the nonlinear functions ({len(tables)}); NAME_TABLE_WIDTH is the width of")
    lines.append("//    an entry (EXP_TABLE_BITS and its kin above are log2 of a table's segment count)")
    for table in tables.values():
        stem = _upper(_table_stem(table.name))
        raw = _table_raw(table)
        fmt = table.fmt
        if table.doc:
            lines.append(f"// {stem}: {table.doc}".rstrip())
        lines.append(f"//   {fmt}: value = raw * 2^-{fmt.frac_bits}")
        lines.append(
            f"constexpr int {stem}_SIZE = {len(raw)}, {stem}_WIDTH = {fmt.bits}, "
            f"{stem}_FRAC_BITS = {fmt.frac_bits};"
        )
        lines.append(f"constexpr bool {stem}_SIGNED = {_cpp_literal(fmt.signed)};")
        lines.append(f"static const long long {stem}[{stem}_SIZE] = {{")
        for i in range(0, len(raw), 8):
            lines.append("    " + ", ".join(f"{v}LL" for v in raw[i : i + 8]) + ",")
        lines.append("};")
        names += [f"{stem}_{s}" for s in ("SIZE", "WIDTH", "FRAC_BITS", "SIGNED")] + [stem]
    lines += ["", "}  // namespace cfg", ""]

    lines.append("// -- the C++ type of every cast point")
    for name, cast in cfg.formats.items():
        lines.append(f"typedef {cpp_type(cast)} {name}_t;")
    if tables:
        lines += ["", "// -- the storage type of every table entry (value = raw * 2^-FRAC_BITS)"]
        for table in tables.values():
            lines.append(f"typedef {table.fmt.cpp} {_table_stem(table.name)}_t;")
    lines += ["", "// -- codes shared with the host and the RTL (edgemoe.config)"]
    for codes in SHARED_CODES:
        body = ", ".join(f"{cpp_code_name(c)} = {c.value}" for c in codes)
        lines.append(f"enum class {codes.__name__} : int {{ {body} }};")
        names.append(codes.__name__)
    lines += ["", "}  // namespace edgemoe", "", "#endif  // EDGEMOE_CONFIG_H", ""]
    _check_unique(names, HLS_FILE)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- SystemVerilog


def _sv_decl(item: _Const | _Array) -> str:
    doc = f"  // {item.doc}" if item.doc else ""
    name = _camel(item.name)
    if isinstance(item, _Array):
        if all(isinstance(v, bool) for v in item.values):
            bits = "".join("1" if v else "0" for v in reversed(item.values))
            return (
                f"  localparam bit [{_camel(item.size_name)}-1:0] {name} = {len(item.values)}'b{bits};{doc}"
            )
        body = ", ".join(str(v) for v in item.values)
        return f"  localparam int unsigned {name} [{_camel(item.size_name)}] = '{{{body}}};{doc}"
    value = item.value
    if isinstance(value, bool):
        return f"  localparam bit {name} = 1'b{int(value)};{doc}"
    if isinstance(value, float):
        return f"  localparam real {name} = {value!r};{doc}"
    kind = "int unsigned" if value >= 0 else "int"
    return f"  localparam {kind} {name} = {value};{doc}"


def _sv_int(value: int, bits: int, signed: bool) -> str:
    mag = f"{bits}'{'s' if signed else ''}d{abs(value)}"
    return f"-{mag}" if value < 0 else mag


def emit_sv(cfg: Config, source: str | None = None) -> str:
    """The SystemVerilog package ``edgemoe_pkg`` for the RTL (``source``: the config file, if any)."""
    lines = _banner(cfg, "//", "emit-sv", source)
    # A design uses a few of these constants; the rest are not "unused parameters" of it.
    lines += ["", "/* verilator lint_off UNUSEDPARAM */", "package edgemoe_pkg;", ""]
    names: list[str] = []
    _scalar_sections(
        cfg,
        lines,
        names,
        comment="  //",
        rename=_camel,
        decl=lambda item: [_sv_decl(item)],
        model_title="model shape (IsMoe[b]: block b has a mixture-of-experts MLP)",
        config_id=("ConfigId", f"  localparam int unsigned ConfigId = 32'h{cfg.config_id:08x};"),
    )

    lines.append("  // -- cast points: value = raw * 2**-FracBits; RoundHalfUp 0 = truncate toward -inf;")
    lines.append("  //    Saturate 0 = wrap")
    for name, cast in cfg.formats.items():
        c = _camel(name)
        fmt = cast.fmt
        lines.append(f"  // {name}: {cpp_type(cast)}")
        lines.append(f"  localparam int unsigned {c}Bits = {fmt.bits};")
        lines.append(f"  localparam int {c}IntBits = {fmt.int_bits};")
        lines.append(f"  localparam int {c}FracBits = {fmt.frac_bits};")
        lines.append(f"  localparam bit {c}Signed = 1'b{int(fmt.signed)};")
        lines.append(f"  localparam bit {c}RoundHalfUp = 1'b{int(cast.rounding is Rounding.ROUND_HALF_UP)};")
        lines.append(f"  localparam bit {c}Saturate = 1'b{int(cast.overflow is Overflow.SATURATE)};")
        names += [c + s for s in ("Bits", "IntBits", "FracBits", "Signed", "RoundHalfUp", "Saturate")]
    lines.append("")

    tables = _tables(cfg)
    lines.append(f"  // -- tables of the nonlinear functions ({len(tables)}): raw values, 64-bit signed;")
    lines.append(
        "  //    NameTableWidth is the width of an entry (ExpTableBits etc. are log2 segment counts)"
    )
    for table in tables.values():
        c = _camel(_table_stem(table.name))
        raw = _table_raw(table)
        fmt = table.fmt
        if table.doc:
            lines.append(f"  // {c}: {table.doc}".rstrip())
        lines.append(f"  //   {fmt}: value = raw * 2**-{fmt.frac_bits}")
        lines.append(f"  localparam int unsigned {c}Size = {len(raw)};")
        lines.append(f"  localparam int unsigned {c}Width = {fmt.bits};")
        lines.append(f"  localparam int {c}FracBits = {fmt.frac_bits};")
        lines.append(f"  localparam bit {c}Signed = 1'b{int(fmt.signed)};")
        lines.append(f"  localparam logic signed [63:0] {c} [{c}Size] = '{{")
        for i in range(0, len(raw), 8):
            chunk = ", ".join(_sv_int(v, 64, True) for v in raw[i : i + 8])
            last = i + 8 >= len(raw)
            lines.append(f"    {chunk}{'' if last else ','}")
        lines.append("  };")
        names += [c + s for s in ("Size", "Width", "FracBits", "Signed")] + [c]
    lines += ["", "  // -- codes shared with the host and the HLS kernels (edgemoe.config)"]
    for codes in SHARED_CODES:
        bits = sv_code_bits(codes)
        body = ", ".join(f"{sv_code_name(c)} = {bits}'d{c.value}" for c in codes)
        lines.append(f"  typedef enum logic [{bits - 1}:0] {{ {body} }} {sv_code_type(codes)};")
        names += [sv_code_type(codes)] + [sv_code_name(c) for c in codes]
    lines += ["", "endpackage : edgemoe_pkg", "/* verilator lint_on UNUSEDPARAM */", ""]
    _check_unique(names, SV_FILE)
    return "\n".join(lines)


def sv_name(field_name: str) -> str:
    """The SystemVerilog name of a config field (``linear_in`` -> ``LinearIn``)."""
    return _camel(field_name)


def hls_name(field_name: str) -> str:
    """The C++ name of a config field (``linear_in`` -> ``LINEAR_IN``)."""
    return _upper(field_name)
