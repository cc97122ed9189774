"""The host runtime on simulated pynq devices: registers, ID check, timeout, end to end.

The driver (edgemoe.host.driver) runs unchanged; underneath, a SimDevice found through
pynq's ``_probe_`` holds the register file and the memory, and runs an engine when ap_start
is written.
"""

from __future__ import annotations

import numpy as np
import pynq
import pytest
from pynq.pl_server.device import Device

from edgemoe.config import preset
from edgemoe.golden.fixed.model import FixedM3ViT
from edgemoe.golden.images import default_image
from edgemoe.golden.weights import synthetic
from edgemoe.host import packing
from edgemoe.host.device import (
    IP_BASE_ADDRESS,
    SimDevice,
    SimulationError,
    register_engine,
    write_sim_bitstream,
)
from edgemoe.host.driver import Accelerator, AcceleratorError, AcceleratorTimeout, ConfigMismatch, EdgeMoeIP
from edgemoe.host.layout import CTRL_AP_DONE, CTRL_AP_IDLE, LayoutError, register_map
from edgemoe.host.runtime import sim_bitstream, simulated

TINY = preset("tiny")


def _stall(call) -> int | None:
    return call.cfg.config_id if call.batch == 0 else None  # answers the ID probe, never finishes a run


register_engine("stall", _stall)


@pytest.fixture(scope="module")
def tiny_weights():
    return synthetic(TINY, seed=1)


def images(cfg, n=2):
    img = np.asarray(default_image(cfg), dtype=np.float64)
    return np.stack([img, 1.0 - img - 2.0**-8][:n]).clip(0, 1 - 2.0**-8)


def test_sim_devices_are_probed_by_pynq():
    found = [d for d in Device.devices if isinstance(d, SimDevice)]
    assert {d.engine for d in found} >= {"reference", "csim"}
    assert SimDevice._probe_priority_ > 200, "real devices (pynq's priorities 40..200) come first"
    assert SimDevice.for_engine("csim") in found
    with pytest.raises(SimulationError, match="unknown simulation engine 'nope'"):
        SimDevice.for_engine("nope")


def test_overlay_binds_the_driver_and_registers_behave_like_vitis(tmp_path):
    bit = write_sim_bitstream(TINY, tmp_path / "edgemoe_tiny.bit")
    dev = SimDevice("reference")
    ol = pynq.Overlay(str(bit), device=dev)
    ip = ol.edgemoe_top_0
    assert isinstance(ip, EdgeMoeIP) and ip.mmio.base_addr == IP_BASE_ADDRESS
    regs = register_map()
    assert ip.read_reg("CTRL") == CTRL_AP_IDLE
    # argument registers hold what is written, 64-bit pointers as two words
    ip.write_reg("WEIGHTS", 0x1_2345_6780)
    assert ip.mmio.read(regs["WEIGHTS"].offset) == 0x2345_6780
    assert ip.mmio.read(regs["WEIGHTS"].offset + 4) == 0x1
    assert ip.read_reg("WEIGHTS") == 0x1_2345_6780
    # the ID probe: BATCH 0 runs nothing, CONFIG_ID becomes valid (ap_vld clears on read)
    ip.write_reg("IER", 1)
    assert ip.config_id(timeout=1.0) == TINY.config_id
    assert ip.read_reg("CONFIG_ID_CTRL") == 0
    assert dev.calls == 1
    # ap_done cleared on the read that saw it; ISR toggles on write
    assert ip.read_reg("CTRL") & CTRL_AP_DONE == 0
    assert ip.read_reg("ISR") == 1
    ip.write_reg("ISR", 1)
    assert ip.read_reg("ISR") == 0
    # pynq's register_map view (built from the same description) reads the same state
    assert ip.register_map.CTRL.AP_IDLE == 1


def test_a_bitstream_for_another_config_is_refused(tmp_path):
    bit = write_sim_bitstream(preset("edge-moe"), tmp_path / "edgemoe_zcu102.bit")
    with pytest.raises(ConfigMismatch, match=r"ID register reads 0x[0-9a-f]{8} but config 'tiny' has id"):
        Accelerator(TINY, bit, device=SimDevice("reference"))
    # a real bitstream cannot be simulated: the message says so
    fake = tmp_path / "real.bit"
    fake.write_bytes(b"\x00\x09\x0f\xf0" * 16)
    with pytest.raises(SimulationError, match="not a simulated edgemoe bitstream"):
        Accelerator(TINY, fake, device=SimDevice("reference"))


def test_weights_packed_for_another_config_are_refused(tiny_weights):
    acc = simulated(TINY, "reference")
    edge = preset("edge-moe")
    blob = np.zeros(64, np.uint8)
    blob[:16] = np.array([0x314D5745, 1, edge.config_id, 1], "<u4").view(np.uint8)
    with pytest.raises(LayoutError, match=f"packed for config id 0x{edge.config_id:08x}"):
        acc.load_weights(blob)
    with pytest.raises(LayoutError, match="expects"):
        acc.load_weights(synthetic(edge))
    with pytest.raises(AcceleratorError, match="no weights loaded"):
        acc.backbone(images(TINY, 1), 0)


def test_never_finishing_device_times_out_naming_the_registers(tiny_weights):
    acc = Accelerator(TINY, sim_bitstream(TINY), device=SimDevice.for_engine("stall"), timeout=0.3)
    acc.load_weights(tiny_weights)
    with pytest.raises(AcceleratorTimeout) as err:
        acc.backbone(images(TINY, 2), task=1)
    msg = str(err.value)
    assert "no ap_done within 0.3 s" in msg
    assert "CTRL=0x1 (ap_start)" in msg and "TASK=0x1" in msg and "BATCH=0x2" in msg
    assert f"WEIGHTS=0x{acc._weights_buf.physical_address:x}" in msg
    # the IP is still busy: a new call is refused instead of queued
    with pytest.raises(AcceleratorError, match="busy"):
        acc.backbone(images(TINY, 1), task=0)


def test_wrong_images_and_tasks_are_refused(tiny_weights):
    acc = simulated(TINY, "reference")
    acc.load_weights(tiny_weights)
    with pytest.raises(LayoutError, match="floating point"):
        acc.backbone((images(TINY, 1) * 255).astype(np.uint8), 0)
    with pytest.raises(LayoutError, match=r"got \(1, 3, 64, 32\)"):
        acc.backbone(np.zeros((1, 3, 64, 32)), 0)
    with pytest.raises(AcceleratorError, match="task 2 is not one of 0..1"):
        acc.backbone(images(TINY, 1), 2)


@pytest.mark.parametrize("task", range(len(TINY.model.tasks)))
def test_reference_device_end_to_end_equals_the_reference(tiny_weights, task):
    acc = simulated(TINY, "reference")
    acc.load_weights(tiny_weights)
    imgs = images(TINY, 2)
    out = acc.infer(imgs, task)
    model = FixedM3ViT(TINY, tiny_weights)
    expected = np.stack([model.forward(im, task).tokens for im in imgs])
    assert out.tokens_raw.dtype == np.int64 and np.array_equal(out.tokens_raw, expected)
    assert out.head.shape == (2, TINY.model.task_channels[task], TINY.model.image_h, TINY.model.image_w)
    assert np.isfinite(out.head).all()


def test_weight_image_file_round_trip_through_the_device(tiny_weights, tmp_path):
    blob = packing.pack_weights(TINY, packing.raw_weights(TINY, tiny_weights))
    path = packing.save_weight_image(tmp_path / "tiny.ewm", blob)
    a = simulated(TINY, "reference")
    a.load_weights(path)
    b = simulated(TINY, "reference")
    b.load_weights(tiny_weights)
    img = images(TINY, 1)
    assert np.array_equal(a.backbone(img, 0), b.backbone(img, 0))


def test_board_backend_needs_a_bitstream(monkeypatch, tiny_weights):
    from edgemoe.host.runtime import BITSTREAM_ENV, prepare_board

    monkeypatch.delenv(BITSTREAM_ENV, raising=False)
    with pytest.raises(AcceleratorError, match=f"set {BITSTREAM_ENV}="):
        prepare_board(TINY, tiny_weights)
