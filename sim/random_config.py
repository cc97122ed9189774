"""Random configs for the randomized equality tests: shapes, formats, roundings, tables, parallelism.

Every config is drawn from a seed and accepted only when :func:`edgemoe.config.validate` accepts
it (a draw it refuses is drawn again), so the tests cover what a user may configure, not only
the presets. The model is kept small (a few tokens, narrow widths) so that one C-simulation
library or one simulator build serves many cases.
"""

from __future__ import annotations

import dataclasses
import math
import random

from edgemoe.config import (
    TINY_MODEL,
    Cast,
    Config,
    ConfigError,
    Formats,
    Hardware,
    Nonlinear,
    Rounding,
    sfix,
    ufix,
)


def _cast(
    rng: random.Random, fmt_of: object, bits: tuple[int, int], ints: tuple[int, int], rounding: bool
) -> Cast:
    fmt = fmt_of(rng.randint(*bits), rng.randint(*ints))
    mode = rng.choice([Rounding.ROUND_HALF_UP, Rounding.TRUNCATE]) if rounding else Rounding.ROUND_HALF_UP
    return Cast(fmt, mode)


def _draw(rng: random.Random, name: str) -> Config:
    lin, lout, blk = rng.choice([2, 4, 8]), rng.choice([2, 4, 8]), rng.choice([2, 4, 8])
    unit = math.lcm(lin, lout, blk)
    heads = rng.randint(1, 3)
    patch = rng.choice([2, 4, 8])
    model = dataclasses.replace(
        TINY_MODEL,
        image_h=patch * rng.randint(1, 3),
        image_w=patch * rng.randint(1, 4),
        in_chans=rng.randint(1, 3),
        patch=patch,
        dim=heads * unit * rng.randint(1, 2),
        heads=heads,
        mlp_hidden=unit * rng.randint(1, 6),
        experts=(experts := rng.randint(2, 6)),
        top_k=rng.randint(1, min(3, experts)),
        expert_hidden=unit * rng.randint(1, 4),
    )
    act_int = rng.randint(4, 10)
    formats = Formats(
        pixel=Cast(ufix(rng.randint(6, 10), 0)),
        patch_weight=_cast(rng, sfix, (8, 16), (0, 1), False),
        linear_weight=_cast(rng, sfix, (8, 16), (0, 3), False),
        attn_bias=_cast(rng, sfix, (8, 16), (3, 7), False),
        bias=_cast(rng, sfix, (8, 16), (2, 6), False),
        norm=_cast(rng, sfix, (8, 16), (2, 5), False),
        pos_embed=_cast(rng, sfix, (8, 16), (2, 5), False),
        act=_cast(rng, sfix, (act_int + 10, 32), (act_int, act_int), True),
        attn_score=_cast(rng, sfix, (20, 32), (act_int, 10), True),
        attn_scale=Cast(ufix(rng.randint(10, 16), 1)),
        exp_out=_cast(rng, ufix, (12, 20), (1, 1), True),
        softmax_recip=_cast(rng, ufix, (16, 26), (1, 1), True),
        attn_prob=_cast(rng, ufix, (12, 20), (1, 1), True),
        gelu_delta=_cast(rng, ufix, (12, 20), (-2, 0), True),
        gate_score=_cast(rng, ufix, (12, 20), (1, 1), True),
    )
    nonlinear = Nonlinear(
        exp_table_bits=rng.randint(4, 10),
        recip_table_bits=rng.randint(4, 8),
        rsqrt_table_bits=rng.randint(4, 8),
        newton_steps=rng.randint(0, 2),
        gelu_table_bits=rng.randint(5, 10),
        gelu_range_log2=rng.randint(2, 3),
        work_frac_bits=rng.randint(16, 26),
    )
    tokens = model.tokens
    hw = Hardware(linear_in=lin, linear_out=lout, attn_p=rng.randint(1, min(4, tokens)), attn_block=blk)
    return Config(name, model, formats, nonlinear, hw)


def random_config(seed: int, name: str | None = None) -> Config:
    """A valid config drawn from ``seed`` (draws the validation refuses are drawn again)."""
    rng = random.Random(seed)
    for _ in range(1000):
        try:
            return _draw(rng, name or f"random{seed}")
        except ConfigError:
            continue
    raise RuntimeError(f"no valid config in 1000 draws from seed {seed}")
