"""Host runtime of the accelerator on the pynq API: the same code for a board and a simulation.

::

    from edgemoe.host.driver import Accelerator
    acc = Accelerator(cfg, "edgemoe_zcu102.bit")          # a board (pynq.Overlay downloads it)
    acc = Accelerator(cfg, sim_bit, device=SimDevice.for_engine("csim"))   # a simulated one
    acc.load_weights(weights)                             # float dict or a packed weight image
    tokens_raw = acc.backbone(images, task=0)             # int64 [B, TOKENS, DIM]
    out = acc.infer(images, task=0)                       # + float tokens and the host-side head

:class:`EdgeMoeIP` is the ``DefaultIP`` driver pynq binds to the IP by its VLNV; it programs
the registers of :func:`edgemoe.host.layout.register_map` and polls ap_done with a timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pynq
from pynq import DefaultIP, Overlay

from edgemoe.config import Config
from edgemoe.errors import EdgemoeError
from edgemoe.golden.fixed.core import SaturationLog, to_float

from . import packing
from .layout import (
    CTRL_AP_DONE,
    CTRL_AP_IDLE,
    CTRL_AP_START,
    VLNV,
    describe_ctrl,
    register_map,
    weight_layout,
)


class AcceleratorError(EdgemoeError, RuntimeError):
    """The accelerator cannot be used as asked (wrong bitstream, no weights, busy IP...)."""


class AcceleratorTimeout(AcceleratorError):
    """ap_done did not arrive in time; the message names the register state."""


class ConfigMismatch(AcceleratorError):
    """The bitstream's ID register disagrees with the host's config."""


DEFAULT_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 1e-4


class EdgeMoeIP(DefaultIP):
    """Driver of the ``edgemoe_top`` IP (bound by VLNV when pynq builds an overlay's IP map)."""

    bindto = [VLNV]

    def __init__(self, description: dict) -> None:
        super().__init__(description)
        self.regmap = register_map()
        self.name = description.get("fullpath", "edgemoe_top")
        self.phys_addr = description["phys_addr"]

    # -- registers
    def read_reg(self, name: str) -> int:
        reg = self.regmap[name]
        value = self.mmio.read(reg.offset)
        if reg.words == 2:
            value |= self.mmio.read(reg.offset + 4) << 32
        return value

    def write_reg(self, name: str, value: int) -> None:
        reg = self.regmap[name]
        if value < 0 or value >> reg.bits:
            raise AcceleratorError(f"{name}: value {value} does not fit {reg.bits} bits")
        self.mmio.write(reg.offset, int(value & 0xFFFF_FFFF))
        if reg.words == 2:
            self.mmio.write(reg.offset + 4, int(value >> 32))

    def state(self, ctrl: int | None = None) -> str:
        """The control and argument registers, for error messages.

        ``ctrl``: a CTRL value already read (reading CTRL again would clear ap_done/ap_ready).
        """
        ctrl = self.read_reg("CTRL") if ctrl is None else ctrl
        args = ", ".join(
            f"{r.name}=0x{self.read_reg(r.name):x}" for r in self.regmap.arguments if r.name != "CONFIG_ID"
        )
        return f"CTRL={describe_ctrl(ctrl)}, {args}"

    # -- calls
    def start(self) -> None:
        ctrl = self.read_reg("CTRL")
        if not ctrl & CTRL_AP_IDLE:
            raise AcceleratorError(
                f"{self.name} at 0x{self.phys_addr:x} is busy (CTRL={describe_ctrl(ctrl)}); wait for the "
                "running call or reload the bitstream"
            )
        self.write_reg("CTRL", CTRL_AP_START)

    def wait(self, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Poll CTRL until ap_done (read once per poll: ap_done clears on read)."""
        deadline = time.monotonic() + timeout
        while True:
            ctrl = self.read_reg("CTRL")
            if ctrl & CTRL_AP_DONE:
                return
            if time.monotonic() >= deadline:
                hint = (
                    " (ap_start still high: the IP never took or never finished the call)"
                    if ctrl & CTRL_AP_START
                    else ""
                )
                raise AcceleratorTimeout(
                    f"{self.name} at 0x{self.phys_addr:x}: no ap_done within {timeout:g} s; registers: "
                    f"{self.state(ctrl)}{hint}"
                )
            time.sleep(POLL_INTERVAL_S)

    def call(self, weights: int, images: int, tokens: int, task: int, batch: int, timeout: float) -> None:
        """One call of the top: program the arguments, start, wait for ap_done."""
        self.write_reg("WEIGHTS", weights)
        self.write_reg("IMAGES", images)
        self.write_reg("TOKENS", tokens)
        self.write_reg("TASK", task)
        self.write_reg("BATCH", batch)
        self.start()
        self.wait(timeout)

    def config_id(self, timeout: float = DEFAULT_TIMEOUT_S) -> int:
        """The ID register: an output of the top, valid after any call, so probe with BATCH = 0."""
        self.call(0, 0, 0, 0, 0, timeout)
        valid = self.read_reg("CONFIG_ID_CTRL") & 1
        value = self.read_reg("CONFIG_ID")
        if not valid:
            raise AcceleratorError(
                f"{self.name}: CONFIG_ID not valid after an ID probe (CONFIG_ID_CTRL ap_vld low, value "
                f"0x{value:08x}); is this an edgemoe bitstream?"
            )
        return value


@dataclass
class Inference:
    """What :meth:`Accelerator.infer` returns for a batch and one task."""

    tokens_raw: np.ndarray  # int64 [B, TOKENS, DIM] as the hardware wrote them
    tokens: np.ndarray  # float64, the same values
    head: np.ndarray | None  # float32 [B, C_task, H, W] from the host's float head (if weights given)
    pixel_log: SaturationLog


class Accelerator:
    """The accelerator behind a pynq overlay: checks its ID, holds the weights, runs batches.

    Args:
        cfg: the host's config; the bitstream's ID register must equal ``cfg.config_id``.
        bitstream: path of the ``.bit`` (a board, with its ``.hwh`` beside it) or of a simulated one.
        device: the pynq device (None: pynq's active device).
        download: program the device (``Overlay(download=...)``).
        timeout: seconds to wait for ap_done per call.
    """

    def __init__(
        self,
        cfg: Config,
        bitstream: str | Path,
        device: pynq.Device | None = None,
        download: bool = True,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.cfg = cfg
        self.timeout = timeout
        self.overlay = Overlay(str(bitstream), download=download, device=device)
        self.device = self.overlay.device
        names = [k for k, v in self.overlay.ip_dict.items() if v.get("type") == VLNV]
        if len(names) != 1:
            types = sorted({str(v.get("type")) for v in self.overlay.ip_dict.values()})
            raise AcceleratorError(
                f"{bitstream}: expected one IP of type {VLNV}, found {len(names)} "
                f"(IP types: {', '.join(types)})"
            )
        self.ip: EdgeMoeIP = getattr(self.overlay, names[0])
        if not isinstance(self.ip, EdgeMoeIP):
            raise AcceleratorError(f"{names[0]} is driven by {type(self.ip).__name__}, not EdgeMoeIP")
        hw_id = self.ip.config_id(timeout)
        if hw_id != cfg.config_id:
            raise ConfigMismatch(
                f"{bitstream}: the ID register reads 0x{hw_id:08x} but config '{cfg.name}' has id "
                f"0x{cfg.config_id:08x}: this bitstream was built for another config; build one for "
                f"'{cfg.name}' or run with the config the bitstream was built for"
            )
        self._weights_buf = None
        self._float_weights: dict[str, np.ndarray] | None = None
        self._host_model = None

    # -- weights
    def load_weights(
        self, weights: dict[str, np.ndarray] | np.ndarray | str | Path, log: SaturationLog | None = None
    ) -> None:
        """Pack the weights once into device memory.

        ``weights`` is a float dict (quantized here; its task heads are kept for the host), a packed
        weight image (uint8 array) or the path of one; an image packed for another config is refused.
        """
        if isinstance(weights, dict):
            blob = packing.pack_weights(self.cfg, packing.raw_weights(self.cfg, weights, log))
            self._float_weights = weights
            self._host_model = None
        elif isinstance(weights, str | Path):
            blob = packing.load_weight_image(self.cfg, weights)
        else:
            blob = np.asarray(weights, dtype=np.uint8).reshape(-1)
            packing.check_weight_image(self.cfg, blob)
        buf = pynq.allocate(weight_layout(self.cfg).nbytes, dtype=np.uint8, target=self.device)
        buf[:] = blob[: buf.size]
        buf.sync_to_device()
        self._weights_buf = buf

    # -- runs
    def backbone(self, images: np.ndarray, task: int, log: SaturationLog | None = None) -> np.ndarray:
        """Raw output tokens int64 [B, TOKENS, DIM] of float images [B, C, H, W] (or [C, H, W])."""
        cfg = self.cfg
        if self._weights_buf is None:
            raise AcceleratorError("no weights loaded: call load_weights() first")
        if not isinstance(task, int | np.integer) or not 0 <= task < len(cfg.model.tasks):
            raise AcceleratorError(
                f"task {task!r} is not one of 0..{len(cfg.model.tasks) - 1} ({cfg.model.tasks})"
            )
        raw = packing.quantize_images(cfg, images, log)
        B = raw.shape[0]
        img_buf = pynq.allocate(packing.images_nbytes(cfg, B), dtype=np.uint8, target=self.device)
        tok_buf = pynq.allocate(packing.tokens_nbytes(cfg, B), dtype=np.uint8, target=self.device)
        packing.pack_images(cfg, raw, out=img_buf)
        img_buf.sync_to_device()
        tok_buf[:] = 0
        tok_buf.sync_to_device()
        self.ip.call(
            self._weights_buf.physical_address,
            img_buf.physical_address,
            tok_buf.physical_address,
            int(task),
            B,
            self.timeout,
        )
        tok_buf.sync_from_device()
        return packing.unpack_tokens(cfg, np.asarray(tok_buf), B)

    def infer(self, images: np.ndarray, task: int) -> Inference:
        """Backbone on the accelerator, then the task head in float on the host (as on the board)."""
        log = SaturationLog()
        raw = self.backbone(images, task, log)
        tokens = to_float(raw, self.cfg.formats.act.fmt)
        head = None
        if self._float_weights is not None:
            head = self.host_head(tokens, task)
        return Inference(raw, tokens, head, log)

    def host_head(self, tokens: np.ndarray, task: int) -> np.ndarray:
        """Task ``task``'s float head on tokens [B, TOKENS, DIM] (needs float weights with the heads)."""
        import torch

        from edgemoe.golden.model import M3ViT

        if self._float_weights is None:
            raise AcceleratorError("the task heads need the float weights: load_weights() with a weight dict")
        if self._host_model is None:
            self._host_model = M3ViT.from_weights(self.cfg, self._float_weights).eval()
        head = self._host_model.heads[task]
        param = next(head.parameters())
        with torch.no_grad():
            out = head(torch.as_tensor(np.asarray(tokens), dtype=param.dtype))
        return out.numpy().astype(np.float32)
