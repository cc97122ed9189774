"""linear_engine: layers of the tiny model run with their weights and biases read from the packed
weight image (host/packing.py) in cocotbext-axi's RAM model, bit-exact against
edgemoe.golden.fixed.linear: the patch embedding (patch weights, pixels as activations), q/k/v
(attn_bias) in storage order and head by head, fc1 (GELU), a gate (no bias, padded expert tile)
and an expert's fc2 (ExpertAccumulate), with random stalls on AR and R, input pauses and output
back-pressure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
import pytest

from edgemoe.config import Config, preset
from edgemoe.golden.fixed.linear import Epilogue, linear
from edgemoe.golden.fixed.quantize_weights import bias_kind
from edgemoe.golden.weights import synthetic
from edgemoe.host.layout import Segment, weight_layout
from edgemoe.host.packing import pack_weights, raw_weights
from edgemoe.sim import runner
from edgemoe.sim.axi_tb import BoundedAxiRam, BurstChecker, random_stalls
from edgemoe.sim.tb import StreamSink, StreamSource, pack, start_clock_and_reset, unpack

HERE = Path(__file__).resolve().parent
IMAGE_BASE = 0x1FE0  # the image starts one beat before a 4 KiB boundary


@dataclass
class Layer:
    """One command of the engine and what golden.fixed.linear says it computes."""

    name: str
    weight: Segment
    item: int
    bias: Segment | None
    epilogue: Epilogue
    x: np.ndarray  # [rows, K] raw act values as the engine takes them
    want: np.ndarray  # [rows, out] raw act values
    scores: np.ndarray | None = None  # ExpertAccumulate: gate score per row
    acc_rows: np.ndarray | None = None  # ExpertAccumulate: output-buffer row per row [rows, out]
    head_major: bool = False  # q | k | v tiles head by head (tile_order)


def head_major_order(cfg: Config) -> list[int]:
    """The storage index of each tile the q | k | v pass visits head by head: head h's q tiles,
    then its k tiles, then its v tiles."""
    m, out = cfg.model, cfg.hw.linear_out
    per_head, per_third = m.head_dim // out, m.dim // out
    heads, thirds, subs = range(m.heads), range(3), range(per_head)
    return [t * per_third + h * per_head + s for h in heads for t in thirds for s in subs]


def layers(cfg: Config, raw: dict[str, np.ndarray], rng: np.random.Generator) -> list[Layer]:
    f, m = cfg.formats, cfg.model
    wl = weight_layout(cfg)
    act = f.act.fmt

    def acts(rows: int, k: int) -> np.ndarray:
        scale = 1 << act.frac_bits
        return np.clip(rng.normal(0, 2.0, (rows, k)) * scale, act.min_raw, act.max_raw).astype(np.int64)

    def golden(x, wname, item, bname, epilogue, **kw):
        w = raw[wname] if item is None else raw[wname][item]
        w = w.reshape(w.shape[0], -1)
        b = None if bname is None else (raw[bname] if item is None else raw[bname][item])
        wfmt = wl[wname].cast.fmt
        bfmt = None if bname is None else wl[bname].cast.fmt
        return linear(x, act, w, wfmt, b, bfmt, f.act, epilogue, cfg=cfg, **kw)

    out = []
    # patch embedding: pixels in formats.pixel, given to the engine as activations (exact shift)
    pixels = rng.integers(0, 1 << f.pixel.fmt.bits, (m.patches, m.patch_in))
    w = raw["patch_embed_weight"].reshape(m.dim, -1)
    want = linear(
        pixels, f.pixel.fmt, w, wl["patch_embed_weight"].cast.fmt, raw["patch_embed_bias"],
        wl["patch_embed_bias"].cast.fmt, f.act, Epilogue.BIAS, cfg=cfg,
    )  # fmt: skip
    shift = act.frac_bits - f.pixel.fmt.frac_bits
    out.append(Layer("patch_embed", wl["patch_embed_weight"], 0, wl["patch_embed_bias"], Epilogue.BIAS,
                     pixels << shift, want))  # fmt: skip
    x = acts(m.tokens, m.dim)
    qkv = golden(x, "l0_qkv_weight", None, "l0_qkv_bias", Epilogue.BIAS)
    out.append(Layer("l0_qkv", wl["l0_qkv_weight"], 0, wl["l0_qkv_bias"], Epilogue.BIAS, x, qkv))
    out.append(Layer("l0_qkv head by head", wl["l0_qkv_weight"], 0, wl["l0_qkv_bias"], Epilogue.BIAS, x, qkv,
                     head_major=True))  # fmt: skip
    x = acts(m.tokens, m.dim)
    out.append(Layer("l0_fc1", wl["l0_fc1_weight"], 0, wl["l0_fc1_bias"], Epilogue.BIAS_GELU, x,
                     golden(x, "l0_fc1_weight", None, "l0_fc1_bias", Epilogue.BIAS_GELU)))  # fmt: skip
    moe = next(i for i in range(m.depth) if m.is_moe(i))
    gate = f"l{moe}_w_gate_T_task{len(m.tasks) - 1}"
    x = acts(m.tokens, m.dim)
    out.append(Layer(gate, wl[gate], 0, None, Epilogue.BIAS, x, golden(x, gate, None, None, Epilogue.BIAS)))
    # an expert's fc2 with ExpertAccumulate on a queue of tokens
    e = m.experts - 1
    q = 5
    rows = np.sort(rng.choice(m.tokens, q, replace=False))
    x = acts(q, m.expert_hidden)
    scores = rng.integers(0, 1 << (f.gate_score.fmt.bits - 1), q)
    acc = acts(m.tokens, m.dim)
    want = golden(x, f"l{moe}_h4toh_weight", e, f"l{moe}_h4toh_bias", Epilogue.EXPERT_ACCUMULATE,
                  scores_raw=scores, acc_raw=acc, rows=rows)[rows]  # fmt: skip
    out.append(Layer(f"l{moe}_h4toh[{e}]", wl[f"l{moe}_h4toh_weight"], e, wl[f"l{moe}_h4toh_bias"],
                     Epilogue.EXPERT_ACCUMULATE, x, want, scores, acc[rows]))  # fmt: skip
    return out


@cocotb.test()
async def layers_bit_exact(dut) -> None:
    """Every layer's y beats equal the golden linear; bursts obey the rules; nothing left over."""
    cfg = runner.config_from_env()
    seed = 11
    rng = np.random.default_rng(seed)
    lanes_in, lanes_out = cfg.hw.linear_in, cfg.hw.linear_out
    act_bits = cfg.formats.act.fmt.bits
    raw = raw_weights(cfg, synthetic(cfg, seed))
    blob = pack_weights(cfg, raw)
    beat = cfg.hw.axi_bits // 8
    ram = BoundedAxiRam(dut, "m_axi", dut.clk_i, dut.rst_i, IMAGE_BASE + blob.nbytes, write=False)
    ram.write(IMAGE_BASE, blob.tobytes())
    random_stalls(ram, seed)
    BurstChecker(dut, dut.clk_i, "m_axi", "read", beat, 64, 4)
    prng = random.Random(seed)
    fields = ("weights", "bias", "tiles", "words", "patch", "bias_kind", "epilogue", "head_major")
    cmd = StreamSource(
        dut.clk_i,
        dut.cmd_valid_i,
        dut.cmd_ready_o,
        {f: getattr(dut, f"cmd_{f}_i") for f in fields},
        0.3,
        prng,
    )
    xs = StreamSource(
        dut.clk_i, dut.x_valid_i, dut.x_ready_o, {"data": dut.x_data_i, "last": dut.x_last_i}, 0.2, prng
    )
    accs = StreamSource.on(dut, "accum", ["score", "row"], 0.2, prng)
    ys = StreamSink(
        dut.clk_i, dut.y_valid_o, dut.y_ready_i, {"data": dut.y_data_o, "last": dut.y_last_o}, 0.3,
        random.Random(seed + 1), "y",
    )  # fmt: skip
    await start_clock_and_reset(dut.clk_i, dut.rst_i)
    todo = layers(cfg, raw, rng)
    for layer in todo:
        seg = layer.weight
        tiles, words = seg.stored_rows // lanes_out, seg.stored_cols // lanes_in
        k = seg.stored_cols
        x = np.zeros((len(layer.x), k), dtype=np.int64)
        x[:, : layer.x.shape[1]] = layer.x
        beats = []
        for _ in range(tiles):
            for r in range(len(x)):
                for w in range(words):
                    last = r == len(x) - 1 and w == words - 1
                    beats.append(
                        {"data": pack(x[r, w * lanes_in : (w + 1) * lanes_in], act_bits), "last": int(last)}
                    )
        bias = layer.bias
        command = {
            "weights": IMAGE_BASE + seg.offset + layer.item * seg.item_bytes,
            "bias": 0 if bias is None else IMAGE_BASE + bias.offset + layer.item * bias.item_bytes,
            "tiles": tiles,
            "words": words,
            "patch": int(seg.name == "patch_embed_weight"),
            "bias_kind": int(bias_kind(None if bias is None else bias.name, cfg)),
            "epilogue": int(layer.epilogue),
            "head_major": int(layer.head_major),
        }
        first = len(ys.beats)
        feeds = [cocotb.start_soon(xs.send(beats))]
        if layer.epilogue is Epilogue.EXPERT_ACCUMULATE:
            tile_rows = [layer.acc_rows[:, t * lanes_out : (t + 1) * lanes_out] for t in range(tiles)]
            accum_beats = [
                {"score": int(layer.scores[r]), "row": pack(rows[r], act_bits)}
                for rows in tile_rows
                for r in range(len(x))
            ]
            feeds.append(cocotb.start_soon(accs.send(accum_beats)))
        await cmd.send([command])
        for feed in feeds:
            await feed
        n = tiles * len(x)
        await ys.wait_for(first + n, timeout_cycles=200 * len(beats) + 5000)
        order = head_major_order(cfg) if layer.head_major else list(range(tiles))
        got = np.zeros((len(x), tiles * lanes_out), dtype=np.int64)
        for i, b in enumerate(ys.beats[first : first + n]):
            visit, r = divmod(i, len(x))
            t = order[visit]
            got[r, t * lanes_out : (t + 1) * lanes_out] = unpack(b["data"], act_bits, lanes_out, True)
        got = got[:, : layer.want.shape[1]]
        bad = np.argwhere(got != layer.want)
        assert bad.size == 0, (
            f"seed {seed}: {layer.name}: {len(bad)} values differ; first at row {bad[0][0]} col {bad[0][1]}: "
            f"RTL {got[tuple(bad[0])]}, golden {layer.want[tuple(bad[0])]}; columns {sorted(set(bad[:, 1]))}"
        )
    await ys.expect_idle()
    assert not ram.faults, f"reads outside the image: {ram.faults}"


@pytest.mark.parametrize("preset_name", ["tiny"])
def test_linear_engine(preset_name: str) -> None:
    runner.run("linear_engine", "test_linear_engine", HERE, preset(preset_name), case=preset_name)
