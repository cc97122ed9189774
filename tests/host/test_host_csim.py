"""The C-simulated accelerator top (hls/src/edgemoe_top.cpp) against the fixed reference, bit for bit.

Stage by stage (the top's attention part and MLP part of every block on the reference's own
input tokens), then the whole top behind the simulated pynq device, driven by the host runtime
exactly as a board would be (``edgemoe infer --backend csim``).
"""

from __future__ import annotations

import ctypes
import shutil

import numpy as np
import pytest

from edgemoe.config import preset
from edgemoe.golden.fixed.core import SaturationLog
from edgemoe.golden.fixed.model import FixedM3ViT
from edgemoe.golden.images import default_image
from edgemoe.golden.weights import synthetic
from edgemoe.host import packing

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="the C-simulation needs g++")

TINY = preset("tiny")
ATTENTION, MLP = 0, 1


@pytest.fixture(scope="module")
def tiny():
    from edgemoe import csim

    w = synthetic(TINY, seed=2)
    blob = packing.pack_weights(TINY, packing.raw_weights(TINY, w))
    return csim.load(TINY).lib, w, blob


def run_stage(lib, blob, stage, block, task, x):
    x = np.ascontiguousarray(x, dtype=np.int64)
    out = np.zeros_like(x)
    vp = ctypes.c_void_p
    rc = lib.em_top_stage(
        stage, blob.ctypes.data_as(vp), block, task, x.ctypes.data_as(vp), out.ctypes.data_as(vp)
    )
    assert rc == 0, lib.em_error().decode()
    return out


def images(cfg):
    img = np.asarray(default_image(cfg), dtype=np.float64)
    return np.stack([img, img[:, ::-1, ::-1]])


@pytest.mark.parametrize("task", range(len(TINY.model.tasks)))
def test_top_stages_equal_the_reference_block_by_block(tiny, task):
    lib, w, blob = tiny
    model = FixedM3ViT(TINY, w)
    log = SaturationLog()
    x = model.embed(images(TINY)[0], log)
    for i in range(TINY.model.depth):
        a = model.attention_part(i, x, log)
        assert np.array_equal(run_stage(lib, blob, ATTENTION, i, task, x), a), f"block {i}: attention part"
        y, _ = model.mlp_part(i, a, task, log)
        assert np.array_equal(run_stage(lib, blob, MLP, i, task, a), y), f"block {i}: MLP part"
        x = y


@pytest.mark.parametrize("task", range(len(TINY.model.tasks)))
def test_csim_device_equals_the_reference_on_tiny(tiny, task):
    from edgemoe.host.runtime import simulated

    _, w, _ = tiny
    acc = simulated(TINY, "csim")
    acc.load_weights(w)
    imgs = images(TINY)
    got = acc.backbone(imgs, task)
    model = FixedM3ViT(TINY, w)
    expected = np.stack([model.forward(im, task).tokens for im in imgs])
    assert np.array_equal(got, expected)
    assert acc.device.calls >= 2  # the ID probe and this call went through the register file


@pytest.mark.slow
def test_csim_device_equals_the_reference_on_edge_moe():
    from edgemoe.host.runtime import simulated

    cfg = preset("edge-moe")
    w = synthetic(cfg, seed=0)
    acc = simulated(cfg, "csim")
    acc.load_weights(w)
    img = images(cfg)[:1]
    got = acc.backbone(img, 1)
    assert np.array_equal(got[0], FixedM3ViT(cfg, w).forward(img[0], 1).tokens)


def test_infer_backend_csim_equals_reference_for_every_task(tmp_path):
    """``edgemoe infer --backend csim`` and ``--backend reference`` write the same outputs on tiny."""
    from edgemoe.infer import run

    outs = {}
    for backend in ("csim", "reference"):
        run(TINY, task="all", out=tmp_path / backend, backend=backend, pictures=False)
        outs[backend] = np.load(tmp_path / backend / "outputs.npz")
    csim_out, ref_out = outs["csim"], outs["reference"]
    for name in TINY.model.tasks:
        for key in (f"tokens_raw_{name}", f"tokens_{name}", f"head_{name}"):
            assert np.array_equal(csim_out[key], ref_out[key]), key


@pytest.mark.slow
def test_narrow_axi_port_splits_weight_rows_over_beats(tmp_path):
    """A 64-bit port: a weight row of the MAC array spans two beats, an activation two words a beat."""
    from edgemoe.config import from_dict
    from edgemoe.host.layout import weight_layout, word_bits
    from edgemoe.host.runtime import simulated

    cfg = from_dict({"preset": "tiny", "name": "tiny-axi64", "hw": {"axi_bits": 64}})
    seg = weight_layout(cfg)["l0_qkv_weight"]
    assert cfg.hw.axi_bits < cfg.hw.linear_in * seg.word_bits  # the branch this test is for
    assert word_bits(cfg.formats.act.fmt) * 2 == cfg.hw.axi_bits
    w = synthetic(cfg, seed=4)
    acc = simulated(cfg, "csim")
    acc.load_weights(w)
    imgs = images(cfg)
    model = FixedM3ViT(cfg, w)
    for task in range(len(cfg.model.tasks)):
        expected = np.stack([model.forward(im, task).tokens for im in imgs])
        assert np.array_equal(acc.backbone(imgs, task), expected), task


@pytest.mark.slow
@pytest.mark.realdata
def test_csim_device_equals_the_reference_on_real_weights(edge_moe_data):
    """Trained weights (experts filled from the seeded synthetic ones) and the real image: activation
    ranges of a trained model through the top."""
    from edgemoe.golden.images import load_image
    from edgemoe.golden.weights import load_edgemoe_dir
    from edgemoe.host.runtime import simulated

    cfg = preset("edge-moe")
    w = load_edgemoe_dir(edge_moe_data, cfg).weights
    img = np.asarray(load_image(edge_moe_data / "image.float32.bin", cfg), dtype=np.float64)
    acc = simulated(cfg, "csim")
    acc.load_weights(w)
    got = acc.backbone(img, 0)
    assert np.array_equal(got[0], FixedM3ViT(cfg, w).forward(img, 0).tokens)
