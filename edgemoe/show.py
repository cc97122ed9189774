"""A readable description of a config, for ``edgemoe config show``."""

from __future__ import annotations

import math

from edgemoe.config import Cast, Config, Overflow, Rounding
from edgemoe.emit import cpp_type


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:g}"


def describe_cast(cast: Cast) -> str:
    """``ap_fixed<32, 10, AP_RND, AP_SAT>  [-512, 512)  lsb 2^-22  round half up, saturate``."""
    fmt = cast.fmt
    rounding = "round half up" if cast.rounding is Rounding.ROUND_HALF_UP else "truncate (toward -inf)"
    overflow = "saturate" if cast.overflow is Overflow.SATURATE else "wrap"
    hi = (fmt.max_raw + 1) * fmt.lsb
    span = f"[{fmt.min_value:g}, {hi:g})"
    return f"{cpp_type(cast):<36} {span:<18} lsb 2^{-fmt.frac_bits:<4} {rounding}, {overflow}"


def describe(cfg: Config, source: str | None = None) -> str:
    """The effective config in sections: model, derived figures, formats, nonlinear, hardware."""
    m, hw, nl = cfg.model, cfg.hw, cfg.nonlinear
    gh, gw = m.grid
    origin = f"file {source}" if source else "built-in preset"
    lines = [f"config '{cfg.name}' ({origin}), CONFIG_ID 0x{cfg.config_id:08x}", ""]

    lines.append("model")
    moe = ", ".join(str(b) for b in m.moe_blocks) or "none"
    tasks = ", ".join(f"{t} ({c} ch)" for t, c in zip(m.tasks, m.task_channels, strict=True))
    rows = [
        ("image", f"{m.in_chans} x {m.image_h} x {m.image_w}, patch {m.patch}"),
        ("dim", f"{m.dim}, {m.heads} heads"),
        ("depth", f"{m.depth} blocks; MoE blocks: {moe}"),
        ("dense MLP", f"hidden {m.mlp_hidden}"),
        ("MoE", f"{m.experts} experts, top-{m.top_k}, expert hidden {m.expert_hidden}"),
        ("tasks", tasks),
        ("task heads", f"{m.head_channels} channels, LayerNorm eps {m.ln_eps:g}"),
    ]
    lines += [f"  {k:<20} {v}" for k, v in rows]
    lines.append("")

    macs = m.macs()
    lines.append("derived")
    rows = [
        ("grid", f"{gh} x {gw} = {m.patches} patches"),
        ("tokens", f"{m.tokens} (patches + class token)"),
        ("head_dim", f"{m.head_dim}"),
        ("patch_in", f"{m.patch_in} (in_chans * patch^2)"),
        (
            "MACs / image / task",
            f"{_si(macs['total'])} ({_si(macs['linear'])} linear, {_si(macs['attention'])} attention)",
        ),
    ]
    try:
        from edgemoe.golden.weights import expected_shapes

        shapes = expected_shapes(cfg)
        backbone = sum(math.prod(s) for k, s in shapes.items() if not k.startswith("head"))
        heads = sum(math.prod(s) for k, s in shapes.items() if k.startswith("head"))
        rows.append(("parameters", f"{_si(backbone)} backbone, {_si(heads)} task heads (host)"))
    except ImportError:
        pass
    lin_cycles = macs["linear"] / (hw.linear_in * hw.linear_out)
    att_cycles = macs["attention"] / (hw.attn_p * hw.attn_block)
    ideal_ms = (lin_cycles + att_cycles) / (hw.clock_mhz * 1e3)
    rows.append(
        (
            "ideal compute time",
            f"{ideal_ms:.2f} ms / image / task at {hw.clock_mhz:g} MHz "
            f"(MACs / MAC-array width; no memory stalls)",
        )
    )
    lines += [f"  {k:<20} {v}" for k, v in rows]
    lines.append("")

    lines.append("formats (cast points)")
    for name, cast in cfg.formats.items():
        lines.append(f"  {name:<20} {describe_cast(cast)}")
        if name == "act":  # the blocks' own activation formats, where the config gives them
            blocks = cfg.formats.block_act
            lines += [f"  {f'  block {i}':<20} {describe_cast(c)}" for i, c in enumerate(blocks)]
    lines.append("")

    lines.append("nonlinear functions")
    rows = [
        ("exp", f"2^-f table of {2**nl.exp_table_bits} segments"),
        ("reciprocal", f"seed table of {2**nl.recip_table_bits} segments, {nl.newton_steps} Newton step(s)"),
        ("rsqrt", f"seed table of {2**nl.rsqrt_table_bits} segments, {nl.newton_steps} Newton step(s)"),
        (
            "GELU",
            f"ReLU(x) - delta(|x|), delta table of {2**nl.gelu_table_bits} segments "
            f"over [0, {2**nl.gelu_range_log2})",
        ),
    ]
    lines += [f"  {k:<20} {v}" for k, v in rows]
    lines.append("")

    lines.append("hardware")
    rows = [
        (
            "linear array",
            f"{hw.linear_in} in x {hw.linear_out} out = {hw.linear_in * hw.linear_out} MAC/cycle",
        ),
        (
            "attention",
            f"P = {hw.attn_p} query rows x {hw.attn_block}-wide blocks = "
            f"{hw.attn_p * hw.attn_block} MAC/cycle",
        ),
        ("AXI", f"{hw.axi_bits} bits"),
        ("clock", f"{hw.clock_mhz:g} MHz"),
        ("part", hw.part),
    ]
    lines += [f"  {k:<20} {v}" for k, v in rows]
    return "\n".join(lines)
