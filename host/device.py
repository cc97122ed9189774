"""Simulated PYNQ devices: the accelerator's register file and DDR in host memory.

A :class:`SimDevice` is a ``pynq.Device`` found through ``_probe_`` like a board, so the host
code (``pynq.Overlay``, ``pynq.allocate``, the :mod:`edgemoe.host.driver`) runs unchanged on
it. Its register writes go to a simulated ``ap_ctrl_hs`` register file (clear-on-read
ap_done/ap_ready, toggle-on-write ISR, an output ``CONFIG_ID`` with its ap_vld) and its
memory is host memory with made-up physical addresses. Writing ap_start runs the device's
*engine* (what computes in place of the hardware) over the very buffers the host filled, found
through the pointer registers:

* ``reference``: the bit-exact fixed-point model (``edgemoe.golden.fixed``);
* ``csim``: the C-simulated HLS top (``hls/src/edgemoe_top.cpp`` built with g++);
* ``rtl``: the RTL top under Verilator, a device of its own (:mod:`edgemoe.host.rtl_device`):
  its registers are AXI4-Lite transactions and its memory is the simulation's RAM model.

A call runs to completion inside the write of ap_start (ap_done is then already up when the
driver polls); AUTO_RESTART is stored but a simulated call never restarts by itself.

A simulated "bitstream" is a small JSON file naming the config the simulated hardware was
built for (:func:`write_sim_bitstream`); the ID register reports that config's id.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pynq.buffer import PynqBuffer
from pynq.pl_server.device import Device

from edgemoe.config import Config, from_dict
from edgemoe.errors import EdgemoeError

from .layout import (
    CTRL_AP_DONE,
    CTRL_AP_IDLE,
    CTRL_AP_READY,
    CTRL_AP_START,
    CTRL_AUTO_RESTART,
    TOP_NAME,
    VLNV,
    LayoutError,
    io_layout,
    register_map,
    weight_layout,
)

SIM_BITSTREAM_FORMAT = "edgemoe-sim-bitstream"
IP_INSTANCE = f"{TOP_NAME}_0"
"""The instance name of the IP in the block design (hw/vivado/edgemoe_bd.tcl uses it too)."""
IP_BASE_ADDRESS = 0xA000_0000
"""Where the control registers sit (ZynqMP M_AXI_HPM0_FPD), as in the block design."""
IP_ADDRESS_WINDOW = 0x1_0000
ENGINE_ENV = "EDGEMOE_SIM_ENGINE"
"""Names the engine of the simulated device pynq finds first (``Device.active_device``)."""


class SimulationError(EdgemoeError, RuntimeError):
    """A simulated device that cannot do what it was asked (bad pointer, unknown engine...)."""


# --------------------------------------------------------------------------- simulated bitstreams


def write_sim_bitstream(cfg: Config, path: str | Path) -> Path:
    """Write a simulated bitstream for ``cfg`` (the simulated IP reports ``cfg.config_id``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": SIM_BITSTREAM_FORMAT,
        "version": 1,
        "vlnv": VLNV,
        "instance": IP_INSTANCE,
        "config_id": cfg.config_id,
        "config": cfg.to_dict(),
    }
    path.write_text(json.dumps(data, indent=1))
    return path


def read_sim_bitstream(path: str | Path) -> Config:
    """The config a simulated bitstream was built for; SimulationError for anything else."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        if data.get("format") != SIM_BITSTREAM_FORMAT:
            raise ValueError
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise SimulationError(
            f"{path} is not a simulated edgemoe bitstream (a real one needs a board; write a simulated "
            "one with edgemoe.host.device.write_sim_bitstream)"
        ) from None
    plain = dict(data["config"])
    name = plain.pop("name")
    cfg = from_dict({"preset": "edge-moe", "name": name, **plain})
    if cfg.config_id != data["config_id"]:
        raise SimulationError(f"{path}: its config does not reproduce id 0x{data['config_id']:08x}")
    return cfg


class SimParser:
    """What pynq's HWH parser would give for a design holding just the accelerator."""

    def __init__(self, bitfile_name: str) -> None:
        self.bitfile_name = bitfile_name
        self.config = read_sim_bitstream(bitfile_name)
        regs = register_map()
        self.ip_dict = {
            IP_INSTANCE: {
                "fullpath": IP_INSTANCE,
                "type": VLNV,
                "phys_addr": IP_BASE_ADDRESS,
                "addr_range": IP_ADDRESS_WINDOW,
                "mem_id": "s_axi_control",
                "parameters": {"C_S_AXI_CONTROL_ADDR_WIDTH": str(regs.addr_range.bit_length() - 1)},
                "registers": regs.pynq_registers(),
                "state": None,
                "interrupts": {},
                "gpio": {},
            }
        }
        self.gpio_dict: dict = {}
        self.interrupt_controllers: dict = {}
        self.interrupt_pins: dict = {}
        self.hierarchy_dict: dict = {}
        self.mem_dict: dict = {}
        self.clock_dict: dict = {}
        self.systemgraph = None


# --------------------------------------------------------------------------- memory


class SimMemory:
    """Host memory handed out as ``PynqBuffer``s with made-up, page-aligned physical addresses."""

    BASE = 0x1_0000_0000
    PAGE = 4096

    def __init__(self, device: SimDevice) -> None:
        self.device = device
        self._next = self.BASE
        self._regions: dict[int, np.ndarray] = {}  # physical address -> backing bytes
        self._lock = threading.Lock()

    def allocate(self, shape, dtype, **kwargs) -> PynqBuffer:
        dtype = np.dtype(dtype)
        count = int(np.prod(shape)) if np.ndim(shape) else int(shape)
        nbytes = max(count * dtype.itemsize, 1)
        backing = np.zeros(-(-nbytes // self.PAGE) * self.PAGE, dtype=np.uint8)
        with self._lock:
            addr = self._next
            self._next += backing.size
            self._regions[addr] = backing
        buf = PynqBuffer(
            shape, dtype, buffer=backing, device=self.device, device_address=addr, bo=addr, coherent=False
        )
        weakref.finalize(buf, self._free, addr)
        return buf

    def _free(self, addr: int) -> None:
        with self._lock:
            self._regions.pop(addr, None)

    def view(self, addr: int, nbytes: int, what: str) -> np.ndarray:
        """``nbytes`` of memory at physical ``addr`` as a writable uint8 array."""
        with self._lock:
            for base, backing in self._regions.items():
                if base <= addr < base + backing.size:
                    off = addr - base
                    if off + nbytes > backing.size:
                        raise SimulationError(
                            f"{what}: {nbytes} bytes at 0x{addr:x} run past the end of the buffer at "
                            f"0x{base:x} ({backing.size} bytes)"
                        )
                    return backing[off : off + nbytes]
        raise SimulationError(f"{what}: address 0x{addr:x} lies in no allocated buffer")


# --------------------------------------------------------------------------- engines


@dataclass
class Call:
    """One call of the top as an engine sees it: the hardware's config and its memory."""

    cfg: Config
    weights: np.ndarray  # uint8, the whole weight image
    images: np.ndarray  # uint8, batch packed images
    tokens: np.ndarray  # uint8, batch token buffers (written by the engine)
    task: int
    batch: int


Engine = Callable[[Call], int | None]
"""Runs one call (``batch`` 0: the ID probe, no memory); returns the value its CONFIG_ID output
register holds when the call finishes (ap_done), or None for a call that never finishes."""

_ENGINES: dict[str, Engine] = {}


def register_engine(name: str, fn: Engine) -> None:
    """Make ``name`` an engine of simulated devices (a ``SimDevice`` of each is probed)."""
    _ENGINES[name] = fn


_DEVICE_CLASSES: dict[str, str] = {}


def register_device(name: str, device_class: str) -> None:
    """An engine that is a device of its own (``"module:Class"``, a SimDevice subclass imported
    on use) rather than a function behind the Python register file: the RTL simulation."""
    _DEVICE_CLASSES[name] = device_class


def engines() -> list[str]:
    return list(_ENGINES) + [n for n in _DEVICE_CLASSES if n not in _ENGINES]


def _new_device(engine: str) -> SimDevice:
    if engine in _DEVICE_CLASSES:
        import importlib

        module, _, name = _DEVICE_CLASSES[engine].partition(":")
        return getattr(importlib.import_module(module), name)(engine)
    return SimDevice(engine)


def _reference_engine(call: Call) -> int:
    """The fixed-point reference over the packed buffers (unpacked exactly as the hardware reads them)."""
    from .packing import pack_tokens, unpack_images, unpack_weights
    from .reference import run_fixed_backbone

    cfg = call.cfg
    if call.batch:
        raw = unpack_weights(cfg, call.weights)
        pixels = unpack_images(cfg, call.images, call.batch)
        tokens = run_fixed_backbone(cfg, raw, pixels, call.task)
        pack_tokens(cfg, tokens, out=call.tokens)
    return cfg.config_id


def _csim_engine(call: Call) -> int:
    """The C-simulated HLS top over the same buffers; the ID is what the compiled top reports."""
    from .csim_top import run_csim_top

    return run_csim_top(call.cfg, call.weights, call.images, call.tokens, call.task, call.batch)


register_engine("reference", _reference_engine)
register_engine("csim", _csim_engine)
register_device("rtl", "edgemoe.host.rtl_device:RtlSimDevice")


# --------------------------------------------------------------------------- the device


class SimDevice(Device):
    """A simulated board holding the accelerator; ``engine`` names what runs a call."""

    _probe_priority_ = 900  # after every real device type (pynq's use 40..200)

    @classmethod
    def _probe_(cls) -> list[SimDevice]:
        names = engines()
        first = os.environ.get(ENGINE_ENV)
        if first in names:
            names.remove(first)
            names.insert(0, first)
        return [_new_device(name) for name in names]

    @classmethod
    def for_engine(cls, engine: str) -> SimDevice:
        """The probed device of ``engine`` (a new one for an engine registered after probing)."""
        if engine not in engines():
            raise SimulationError(f"unknown simulation engine '{engine}'; known: {', '.join(engines())}")
        for dev in Device.devices:
            if isinstance(dev, cls) and dev.engine == engine:
                return dev
        return _new_device(engine)

    def __init__(self, engine: str) -> None:
        super().__init__(f"edgemoe-sim-{engine}")
        self.engine = engine
        self.name = f"edgemoe-sim-{engine}"
        self.capabilities = {"REGISTER_RW": True}
        self.default_memory = SimMemory(self)
        self.timestamp = ""
        self.bitfile_name = None
        self.config: Config | None = None
        self.calls = 0
        self._lock = threading.RLock()
        self._regs = register_map()
        self._reset_registers()

    def __repr__(self) -> str:
        return f"SimDevice(engine={self.engine!r})"

    # -- pynq.Device interface
    def get_bitfile_metadata(self, bitfile_name: str) -> SimParser:
        return SimParser(bitfile_name)

    def download(self, bitstream, parser=None) -> None:
        parser = parser or self.get_bitfile_metadata(bitstream.bitfile_name)
        self.config = parser.config
        self._reset_registers()
        self.post_download(bitstream, parser)

    def flush(self, bo, offset, ptr, size) -> None:
        pass  # host memory is the device memory

    def invalidate(self, bo, offset, ptr, size) -> None:
        pass

    def read_registers(self, address: int, length: int) -> bytes:
        off = self._offset(address)
        out = bytearray()
        with self._lock:
            for k in range(0, length, 4):
                out += self._read_word(off + k).to_bytes(4, "little")
        return bytes(out[:length])

    def write_registers(self, address: int, data: bytes) -> None:
        off = self._offset(address)
        for k in range(0, len(data), 4):
            self._write_word(off + k, int.from_bytes(data[k : k + 4].ljust(4, b"\0"), "little"))

    # -- the register file
    def _offset(self, address: int) -> int:
        off = address - IP_BASE_ADDRESS
        if not 0 <= off < IP_ADDRESS_WINDOW:
            raise SimulationError(f"register access at 0x{address:x} outside the accelerator's window")
        if off % 4:
            raise SimulationError(f"unaligned register access at offset 0x{off:x}")
        return off

    def _reset_registers(self) -> None:
        self._words = {r.offset + 4 * w: 0 for r in self._regs for w in range(r.words)}
        self._ctrl = CTRL_AP_IDLE
        self._isr = 0
        self._id_valid = False

    def _read_word(self, off: int) -> int:
        r = self._regs
        if off == r["CTRL"].offset:
            value = self._ctrl
            self._ctrl &= ~(CTRL_AP_DONE | CTRL_AP_READY)  # clear on read
            return value
        if off == r["ISR"].offset:
            return self._isr
        if off == r["CONFIG_ID_CTRL"].offset:
            value = int(self._id_valid)
            self._id_valid = False  # clear on read
            return value
        return self._words.get(off, 0)

    def _write_word(self, off: int, value: int) -> None:
        r = self._regs
        with self._lock:
            if off == r["CTRL"].offset:
                self._ctrl = (self._ctrl & ~CTRL_AUTO_RESTART) | (value & CTRL_AUTO_RESTART)
                start = value & CTRL_AP_START and self._ctrl & CTRL_AP_IDLE
            elif off == r["ISR"].offset:
                self._isr ^= value & 0x3  # toggle on write
                return
            elif off in (r["CONFIG_ID"].offset, r["CONFIG_ID_CTRL"].offset):
                return  # read-only
            elif off in self._words:
                self._words[off] = value & 0xFFFF_FFFF
                return
            else:
                raise SimulationError(f"write to offset 0x{off:x}, which holds no register")
            if not start:
                return
            self._ctrl = (self._ctrl | CTRL_AP_START) & ~(CTRL_AP_IDLE | CTRL_AP_DONE)
        self._run()

    def _arg(self, name: str) -> int:
        reg = self._regs[name]
        value = self._words[reg.offset]
        if reg.words == 2:
            value |= self._words[reg.offset + 4] << 32
        return value

    def _run(self) -> None:
        """One call of the top: resolve the pointers, run the engine, raise ap_done."""
        if self.config is None:
            raise SimulationError(f"{self}: ap_start before a (simulated) bitstream was downloaded")
        cfg = self.config
        batch, task = self._arg("BATCH"), self._arg("TASK")
        if batch and task >= len(cfg.model.tasks):
            raise SimulationError(
                f"TASK register {task} but config '{cfg.name}' has {len(cfg.model.tasks)} tasks"
            )
        img, tok = io_layout(cfg)
        mem = self.default_memory
        none = np.zeros(0, dtype=np.uint8)  # a call of no image reads and writes no memory
        call = Call(
            cfg,
            mem.view(self._arg("WEIGHTS"), weight_layout(cfg).nbytes, "WEIGHTS") if batch else none,
            mem.view(self._arg("IMAGES"), img.nbytes * batch, "IMAGES") if batch else none,
            mem.view(self._arg("TOKENS"), tok.nbytes * batch, "TOKENS") if batch else none,
            task,
            batch,
        )
        try:
            config_id = _ENGINES[self.engine](call)
        except LayoutError as e:
            raise SimulationError(f"{self}: the engine refused the call: {e}") from e
        with self._lock:
            self.calls += 1
            if config_id is None:
                return  # ap_start stays high, ap_done never comes
            self._words[self._regs["CONFIG_ID"].offset] = config_id & 0xFFFF_FFFF
            self._id_valid = True
            self._ctrl = (self._ctrl & ~CTRL_AP_START) | CTRL_AP_DONE | CTRL_AP_IDLE | CTRL_AP_READY
            ier = self._words[self._regs["IER"].offset]
            self._isr |= ier & 0x3
