"""Work counts of the RTL top's schedule (hw/rtl/edgemoe_top.sv), from the config alone.

The top runs every linear layer on the MAC array one output tile at a time: per tile it streams
every input row once, ``in / linear_in`` beats per row, and gives one result beat per row. A MoE
block's experts together see every token ``top_k`` times, whichever experts the gate picks, so
these counts do not depend on the data.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgemoe.config import Config


@dataclass(frozen=True)
class Layer:
    """One linear layer of the schedule: ``rows`` input rows, ``k`` inputs, ``out`` outputs."""

    name: str
    rows: int
    k: int
    out: int
    gelu: bool = False


def linear_layers(cfg: Config) -> list[Layer]:
    """The linear layers of one image, in schedule order (a MoE block's experts as one layer each
    for fc1 and fc2 over all ``tokens * top_k`` queued rows)."""
    m = cfg.model
    n, d = m.tokens, m.dim
    out = [Layer("patch_embed", m.patches, m.patch_in, d)]
    for i in range(m.depth):
        out += [Layer(f"l{i}.qkv", n, d, 3 * d), Layer(f"l{i}.proj", n, d, d)]
        if m.is_moe(i):
            queued = n * m.top_k
            out += [
                Layer(f"l{i}.gate", n, d, m.experts),
                Layer(f"l{i}.experts.fc1", queued, d, m.expert_hidden, gelu=True),
                Layer(f"l{i}.experts.fc2", queued, m.expert_hidden, d),
            ]
        else:
            out += [Layer(f"l{i}.fc1", n, d, m.mlp_hidden, gelu=True), Layer(f"l{i}.fc2", n, m.mlp_hidden, d)]
    return out


def _tiles(n: int, k: int) -> int:
    return -(-n // k)


def linear_beats(cfg: Config) -> int:
    """Input beats the MAC array takes per image (the LINEAR_BUSY counter of one image)."""
    hw = cfg.hw
    return sum(
        _tiles(layer.out, hw.linear_out) * layer.rows * _tiles(layer.k, hw.linear_in)
        for layer in linear_layers(cfg)
    )


def gelu_beats(cfg: Config) -> int:
    """Result beats through the GELU epilogue per image (the NONLINEAR_BUSY counter of one image)."""
    return sum(
        _tiles(layer.out, cfg.hw.linear_out) * layer.rows for layer in linear_layers(cfg) if layer.gelu
    )
