"""Register map, memory layout and packing of the host runtime (edgemoe.host.layout / packing)."""

from __future__ import annotations

import numpy as np
import pytest

from edgemoe.config import preset
from edgemoe.emit_layout import emit_layout_hls, emit_layout_sv
from edgemoe.golden.fixed.core import quantize
from edgemoe.golden.weights import expected_shapes, synthetic
from edgemoe.host import layout as L
from edgemoe.host import packing as P

PRESETS = ["tiny", "edge-moe"]


def test_register_map_follows_ap_ctrl_hs():
    regs = L.register_map()
    assert [(r.name, r.offset) for r in regs][:4] == [
        ("CTRL", 0x00),
        ("GIE", 0x04),
        ("IER", 0x08),
        ("ISR", 0x0C),
    ]
    ctrl = regs["CTRL"]
    assert {f.name: f.bit for f in ctrl.fields} == {
        "AP_START": 0,
        "AP_DONE": 1,
        "AP_IDLE": 2,
        "AP_READY": 3,
        "AUTO_RESTART": 7,
    }
    # arguments from 0x10, pointers as two words, each followed by one reserved word (Vitis HLS)
    args = regs.arguments
    assert [a.name for a in args] == ["WEIGHTS", "IMAGES", "TOKENS", "TASK", "BATCH", "CONFIG_ID"]
    assert args[0].offset == 0x10
    for a, b in zip(args, args[1:], strict=False):
        gap = b.offset - a.offset - (8 if a.name == "CONFIG_ID" else 0)
        assert gap == 4 * a.words + 4, (a.name, b.name)
    assert [a.bits for a in args[:3]] == [64, 64, 64]
    assert regs["CONFIG_ID"].access is L.Access.READ_ONLY
    assert regs["CONFIG_ID_CTRL"].offset == regs["CONFIG_ID"].offset + 4
    # no two registers share a word; everything fits the address range
    words = [r.offset + 4 * w for r in regs for w in range(r.words)]
    assert len(words) == len(set(words))
    assert max(words) + 4 <= regs.addr_range
    assert regs.addr_range & (regs.addr_range - 1) == 0


@pytest.mark.parametrize("name", PRESETS)
def test_weight_layout_covers_every_backbone_tensor_once(name):
    cfg = preset(name)
    wl = L.weight_layout(cfg)
    shapes = {k: v for k, v in expected_shapes(cfg).items() if not k.startswith("head")}
    assert {s.name: s.shape for s in wl} == {k: tuple(v) for k, v in shapes.items()}
    beat = cfg.hw.axi_bits // 8
    end = L.HEADER_BYTES
    for s in wl:
        assert s.offset % beat == 0 and s.item_bytes % beat == 0, s.name
        assert s.offset >= end, f"{s.name} overlaps the segment before it"
        assert s.item_bytes * 8 >= s.words * s.word_bits
        assert s.word_bits >= s.cast.fmt.bits and cfg.hw.axi_bits % s.word_bits == 0
        end = s.offset + s.nbytes
    assert wl.nbytes == end
    # every linear weight whose sizes tile the MAC array is stored in tiles
    assert wl["l0_qkv_weight"].order is L.Order.TILED
    assert wl["patch_embed_weight"].order is L.Order.TILED


def test_layout_header_carries_the_python_offsets():
    cfg = preset("tiny")
    text = emit_layout_hls(cfg)
    for r in L.register_map():
        assert f"#define EDGEMOE_REG_{r.name} 0x{r.offset:02x}" in text
    for s in L.weight_layout(cfg):
        assert f"constexpr Segment {s.name.upper()} = {{{s.offset}LL, {s.item_bytes}LL," in text
    assert f"WEIGHT_BYTES = {L.weight_layout(cfg).nbytes}LL" in text
    sv = emit_layout_sv(cfg)
    assert "localparam int unsigned RegConfigId = 'h44;" in sv
    seg = L.weight_layout(cfg)["l1_htoh4_weight"]
    assert f"localparam longint unsigned L1Htoh4WeightOffset = {seg.offset}, " in sv
    assert f"L1Htoh4WeightItems = {seg.items}, L1Htoh4WeightStoredRows = {seg.stored_rows}," in sv


@pytest.mark.parametrize("name", PRESETS)
def test_weight_image_round_trip_is_exact(name):
    cfg = preset(name)
    raw = P.raw_weights(cfg, synthetic(cfg, seed=3))
    rng = np.random.default_rng(0)
    # every segment's extremes survive too (sign extension, unsigned words)
    seg = L.weight_layout(cfg)["l0_qkv_weight"]
    raw["l0_qkv_weight"] = rng.integers(seg.cast.fmt.min_raw, seg.cast.fmt.max_raw + 1, seg.shape)
    raw["l0_qkv_weight"].flat[:2] = [seg.cast.fmt.min_raw, seg.cast.fmt.max_raw]
    blob = P.pack_weights(cfg, raw)
    assert blob.dtype == np.uint8 and blob.size == L.weight_layout(cfg).nbytes
    back = P.unpack_weights(cfg, blob)
    assert set(back) == set(raw)
    for k in raw:
        assert np.array_equal(back[k], raw[k]), k


def test_tiled_order_is_the_mac_array_order():
    cfg = preset("tiny")
    lo, li = cfg.hw.linear_out, cfg.hw.linear_in
    raw = P.raw_weights(cfg, synthetic(cfg))
    seg = L.weight_layout(cfg)["l0_fc1_weight"]
    rows, cols = seg.shape
    raw[seg.name] = (np.arange(rows)[:, None] * 1000 + np.arange(cols)[None, :]) % 30000
    blob = P.pack_weights(cfg, raw)
    words = blob[seg.offset : seg.offset + seg.words * 2].view("<i2").astype(int)
    # word k: output tile, input tile, row in tile, column in tile
    k = 0
    for ot in range(rows // lo):
        for it in range(cols // li):
            for o in range(lo):
                for i in range(li):
                    r, c = ot * lo + o, it * li + i
                    assert words[k] == (r * 1000 + c) % 30000, (k, r, c)
                    k += 1


def test_weight_image_for_another_config_is_refused(tmp_path):
    tiny, edge = preset("tiny"), preset("edge-moe")
    blob = P.pack_weights(tiny, P.raw_weights(tiny, synthetic(tiny)))
    with pytest.raises(L.LayoutError, match=r"packed for config id 0x[0-9a-f]{8}.*'edge-moe'"):
        P.check_weight_image(edge, blob)
    path = P.save_weight_image(tmp_path / "tiny.bin", blob)
    assert np.array_equal(P.load_weight_image(tiny, path), blob)
    with pytest.raises(L.LayoutError, match="repack the weights"):
        P.load_weight_image(edge, path)
    with pytest.raises(L.LayoutError, match="not an edgemoe weight image"):
        P.check_weight_image(tiny, np.zeros(64, np.uint8))
    with pytest.raises(L.LayoutError, match="bytes"):
        P.check_weight_image(tiny, blob[:-32])
    # a float weight dict for another config names the tensor and both shapes
    with pytest.raises(L.LayoutError, match=r"'patch_embed_weight' has shape .* expects"):
        P.raw_weights(tiny, {**synthetic(tiny), "patch_embed_weight": np.zeros((2, 3, 16, 16), np.float32)})


@pytest.mark.parametrize("name", PRESETS)
def test_image_and_token_round_trips(name):
    cfg = preset(name)
    m = cfg.model
    rng = np.random.default_rng(1)
    images = rng.random((2, m.in_chans, m.image_h, m.image_w))
    raw = P.quantize_images(cfg, images)
    assert np.array_equal(raw, quantize(images, cfg.formats.pixel))
    buf = P.pack_images(cfg, raw)
    assert buf.size == 2 * L.io_layout(cfg)[0].nbytes
    assert np.array_equal(P.unpack_images(cfg, buf, 2), raw)
    # the first patch of image 1 is its top-left p x p block, channel by channel
    p = m.patch
    off = L.io_layout(cfg)[0].nbytes
    assert np.array_equal(buf[off : off + m.patch_in], raw[1, :, :p, :p].reshape(-1))
    act = cfg.formats.act.fmt
    tokens = rng.integers(act.min_raw, act.max_raw + 1, (2, m.tokens, m.dim))
    tokens[0, 0, :2] = [act.min_raw, act.max_raw]
    tbuf = P.pack_tokens(cfg, tokens)
    assert np.array_equal(P.unpack_tokens(cfg, tbuf, 2), tokens)


def test_wrong_images_get_clear_errors():
    cfg = preset("tiny")
    m = cfg.model
    with pytest.raises(L.LayoutError, match="floating point"):
        P.check_images(cfg, np.zeros((m.in_chans, m.image_h, m.image_w), np.uint8))
    with pytest.raises(L.LayoutError, match=r"shape \[B, 3, 32, 64\].*got \(3, 64, 32\)"):
        P.check_images(cfg, np.zeros((3, 64, 32)))
    with pytest.raises(L.LayoutError, match="non-finite"):
        P.check_images(cfg, np.full((m.in_chans, m.image_h, m.image_w), np.nan))
    assert P.check_images(cfg, np.zeros((m.in_chans, m.image_h, m.image_w), np.float32)).shape == (
        1,
        m.in_chans,
        m.image_h,
        m.image_w,
    )


def test_weight_stream_follows_the_reference_tile_order_with_zero_padding():
    from edgemoe.golden.fixed.linear import tile_order

    cfg = preset("tiny")
    lo, li = cfg.hw.linear_out, cfg.hw.linear_in
    raw = P.raw_weights(cfg, synthetic(cfg, seed=5))
    blob = P.pack_weights(cfg, raw)
    for name in ("l1_w_gate_T_task1", "l1_h4toh_weight", "patch_embed_weight"):
        seg = L.weight_layout(cfg)[name]
        w = raw[name].reshape(seg.items, seg.rows, seg.cols)
        e = seg.items - 1  # the last item (expert) of a stacked tensor
        words = blob[seg.offset + e * seg.item_bytes :][: seg.words * 2].view("<i2").astype(np.int64)
        expected = []
        for o0, i0 in tile_order(seg.rows, seg.cols, cfg.hw):
            tile = np.zeros((lo, li), dtype=np.int64)
            part = w[e, o0 : o0 + lo, i0 : i0 + li]
            tile[: part.shape[0], : part.shape[1]] = part
            expected.append(tile.reshape(-1))
        assert np.array_equal(words, np.concatenate(expected)), name
    assert L.weight_layout(cfg)["l1_w_gate_T_task0"].stored_rows == lo  # 4 experts padded to one tile
