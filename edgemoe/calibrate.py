"""Activation formats per block from measured ranges: ``edgemoe calibrate``.

The float64 golden model runs the given images through every task. Per block it records the
largest |value| of every tensor the fixed reference stores in ``formats.act``, under the names
of the reference's casts (:mod:`edgemoe.golden.fixed.model`): the block's input (``l{i}.entry``;
block 0 takes the embedding, ``patch_embed`` and ``patch_embed.pos_add``), ``norm1``, ``qkv``,
``attn.out`` (before the projection), ``proj``, ``resid1``, ``norm2``, then ``fc1`` (before
GELU, which only shrinks |x|) and ``fc2`` of a dense block, or ``moe.gate`` (the gate logits),
``moe.fc1``, ``moe.fc2``, ``moe.fc2.scale`` (an expert output times its gate score) and
``moe.fc2.accumulate`` of an MoE block, and ``resid2``.

Block ``i`` gets the signed format of ``bits`` bits with the fewest integer bits that hold
``margin`` times its largest |value| (so ``margin = 2`` is one spare bit), and never fewer than
the activation range the GELU table needs (``nonlinear.gelu_range_log2 + 1``; ``validate``
checks it for every block). The config's ``formats.act`` becomes the widest of them, so a device
that runs one format (the RTL top, the HLS C++) can run the config without the list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from edgemoe.config import Config, FixedFormat, sfix, to_toml
from edgemoe.fidelity import TaskFidelity

DEFAULT_BITS = 16
DEFAULT_MARGIN = 1.25
"""Headroom over the largest |value| measured, for inputs the calibration images did not show."""

Ranges = list[dict[str, float]]
"""Per block, tensor name -> largest |value| measured."""


def block_ranges(
    cfg: Config,
    weights: dict[str, np.ndarray],
    images: Iterable[np.ndarray],
    progress: Callable[[str], None] = lambda _: None,
) -> Ranges:
    """Largest |value| of every tensor of every block stored in ``formats.act``, over ``images``
    and every task, from the float64 golden model (the names of the module docstring)."""
    import torch

    from edgemoe.golden.model import M3ViT

    model = M3ViT.from_weights(cfg, dict(weights)).double().eval()
    ranges: Ranges = [{} for _ in range(cfg.model.depth)]
    for n, image in enumerate(images):
        for task, name in enumerate(cfg.model.tasks):
            progress(f"image {n + 1}, task {name}")
            with torch.no_grad():
                _record(model, torch.from_numpy(np.asarray(image, dtype=np.float64))[None], task, ranges)
    return ranges


def _record(model, image, task: int, ranges: Ranges) -> None:  # noqa: ANN001 (torch types)
    import torch.nn.functional as F

    def seen(i: int, name: str, t) -> None:  # noqa: ANN001
        prefix = "" if name.startswith("patch_embed") else f"l{i}."
        key = prefix + name
        ranges[i][key] = max(ranges[i].get(key, 0.0), float(t.abs().max()))

    seen(0, "patch_embed", model.patch_embed(image))
    x = model.embed(image)
    seen(0, "patch_embed.pos_add", x)
    for i, blk in enumerate(model.blocks):
        if i:
            seen(i, "entry", x)
        h = blk.norm1(x)
        seen(i, "norm1", h)

        def projected(_m, a, y, i=i) -> None:  # noqa: ANN001 (a hook returning None keeps the output)
            seen(i, "attn.out", a[0])
            seen(i, "proj", y)

        hooks = [
            blk.attn.qkv.register_forward_hook(lambda _m, _a, y, i=i: seen(i, "qkv", y)),
            blk.attn.proj.register_forward_hook(projected),
        ]
        x = x + blk.attn(h)
        seen(i, "resid1", x)
        h = blk.norm2(x)
        seen(i, "norm2", h)
        if blk.is_moe:
            mlp = blk.mlp
            seen(i, "moe.gate", h @ mlp.gates[task].T)
            routing = mlp.route(h, task)
            flat, experts = h[0], routing.experts[0]
            for e in range(mlp.experts):
                token, slot = (experts == e).nonzero(as_tuple=True)
                if token.numel():
                    seen(i, "moe.fc1", F.linear(flat[token], mlp.htoh4_weight[e], mlp.htoh4_bias[e]))
                    y = mlp.expert(flat[token], e)
                    seen(i, "moe.fc2", y)
                    seen(i, "moe.fc2.scale", y * routing.scores[0][token, slot].unsqueeze(-1))
            y = mlp.dispatch(h, routing)
            seen(i, "moe.fc2.accumulate", y)
        else:
            hooks += [
                blk.mlp.fc1.register_forward_hook(lambda _m, _a, t, i=i: seen(i, "fc1", t)),
                blk.mlp.fc2.register_forward_hook(lambda _m, _a, t, i=i: seen(i, "fc2", t)),
            ]
            y = blk.mlp(h, task)
        for hook in hooks:
            hook.remove()
        x = x + y
        seen(i, "resid2", x)


def int_bits_for(max_abs: float, margin: float, least: int) -> int:
    """The fewest integer bits (sign included) of a signed format whose range [-2^(i-1), 2^(i-1))
    holds ``margin * max_abs``; at least ``least``."""
    need = margin * max_abs
    bits = least
    while 2.0 ** (bits - 1) <= need:
        bits += 1
    return bits


def choose_formats(cfg: Config, ranges: Ranges, bits: int, margin: float) -> list[FixedFormat]:
    """Per block the ``bits``-bit signed format of the module docstring."""
    least = cfg.nonlinear.gelu_range_log2 + 1
    return [sfix(bits, int_bits_for(max(r.values()), margin, least)) for r in ranges]


def calibrated(cfg: Config, formats: list[FixedFormat], name: str | None = None) -> Config:
    """``cfg`` with ``formats`` per block (the rounding and overflow of its ``formats.act``) and the
    widest of them as ``formats.act``."""
    act = cfg.formats.act
    widest = max(formats, key=lambda f: f.int_bits)
    block_act = tuple(dataclasses.replace(act, fmt=f) for f in formats)
    return dataclasses.replace(
        cfg,
        name=name or cfg.name,
        formats=dataclasses.replace(
            cfg.formats, act=dataclasses.replace(act, fmt=widest), block_act=block_act
        ),
    )


def table(cfg: Config, ranges: Ranges, fidelity: list[TaskFidelity]) -> str:
    """Block, largest |value| and the tensor that holds it, the chosen format, SQNR per task."""
    tasks = "".join(f" {'SQNR ' + t.task + ' dB':>16}" for t in fidelity)
    lines = [f"{'block':>5} {'max |x|':>9} {'at':<22} {'format':<18}{tasks}"]
    for i, r in enumerate(ranges):
        at = max(r, key=r.__getitem__)
        sqnr = "".join(f" {t.blocks[i + 1].sqnr_db:16.1f}" for t in fidelity)
        fmt = cfg.block_config(i).formats.act.fmt
        lines.append(f"{i:>5} {r[at]:9.3f} {at:<22} {str(fmt):<18}{sqnr}")
    return "\n".join(lines)


def write_config(cfg: Config, path: Path, command: str) -> Path:
    """``cfg`` as a config file (:func:`edgemoe.config.to_toml`) at ``path``, through a temporary
    file, headed by the command that made it."""
    from edgemoe.files import atomic_path

    text = to_toml(cfg, f"written by `{command}`: formats.block_act from the ranges it measured")
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def run(
    cfg: Config,
    weights: dict[str, np.ndarray],
    images: list[np.ndarray],
    bits: int,
    margin: float,
    name: str,
    out: Path,
    command: str,
) -> Config:
    """Measure, choose, print the table (SQNR per block on the first image), write ``out``."""
    from edgemoe.fidelity import compare
    from edgemoe.golden.fixed.model import FixedM3ViT
    from edgemoe.progress import log, stage

    with stage(f"measuring ranges on {len(images)} image(s) x {len(cfg.model.tasks)} task(s)"):
        ranges = block_ranges(cfg, weights, images, progress=lambda what: log(f"  {what}"))
    chosen = calibrated(cfg, choose_formats(cfg, ranges, bits, margin), name)
    fidelity = []
    with stage("SQNR per block against float on the first image"):
        model = FixedM3ViT(chosen, weights)
        for task in range(len(cfg.model.tasks)):
            fidelity.append(compare(chosen, weights, model, images[0], task))
    print(f"{bits}-bit activation formats per block holding x{margin:g} the largest |value| ({cfg.name})")
    print(table(chosen, ranges, fidelity))
    write_config(chosen, out, command)
    print(f"wrote {out} (config '{chosen.name}', formats.act {chosen.formats.act.fmt})")
    return chosen
