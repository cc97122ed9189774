"""Register map and memory layout of the accelerator: the one definition every back end reads.

The accelerator is one IP with the Vitis HLS ``ap_ctrl_hs`` convention over AXI4-Lite and
AXI4 masters to DDR (docs/register-map.md). This module declares, from a :class:`Config`:

* the register map (:func:`register_map`): control at 0x00, interrupt registers at 0x04..0x0C,
  the arguments from 0x10 (64-bit pointers as two words, each argument followed by one
  reserved word, as Vitis HLS lays them out) and the read-only ``CONFIG_ID`` register;
* the weight image (:func:`weight_layout`): every tensor as raw fixed-point words in the
  order the hardware streams it, packed into AXI-width beats behind a one-beat header;
* the image and token buffers (:func:`io_layout`).

The same numbers reach C++ (``edgemoe_layout.h``) and SystemVerilog (``edgemoe_layout_pkg.sv``)
through the emitters of :mod:`edgemoe.emit_layout`; nothing here is written twice by hand.

Packing conventions (all little-endian):

* a tensor of format ``f`` is stored in words of ``word_bits(f)`` bits (8, 16, 32 or 64, the
  smallest that holds ``f.bits``), two's complement sign-extended; word ``k`` of a beat sits
  at bits ``[k*w, (k+1)*w)``;
* every segment, and every item of a stacked segment (one expert), starts on a beat boundary;
* a linear weight ``W[out][in]`` is stored in tiles of the MAC array
  (``hw.linear_out`` x ``hw.linear_in``): for each output tile, for each input tile, the tile's
  rows in order — the order the unified compute unit consumes it (``golden/fixed/linear.py``
  ``tile_order``). A dimension that is not a whole number of tiles (the gates' expert count)
  is padded with zero weights to the next tile.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from edgemoe.config import Cast, Config, FixedFormat
from edgemoe.errors import EdgemoeError

# --------------------------------------------------------------------------- IP identity

VLNV = "xilinx.com:hls:edgemoe_top:1.0"
"""The VLNV the Vitis HLS export gives the IP (vendor xilinx.com, library hls, version 1.0)."""
TOP_NAME = "edgemoe_top"
CONTROL_BUNDLE = "control"
"""The s_axilite bundle of the control registers (port ``s_axi_control``)."""
MAXI_BUNDLES = {"weights": "gmem0", "images": "gmem1", "tokens": "gmem2"}
"""The m_axi bundle of each pointer argument (ports ``m_axi_gmem0`` ...)."""

COSIM_BATCH = 2
"""Images per call in the HLS testbench (host/vitis.py writes that many; the m_axi depths allow it)."""
WEIGHT_MAGIC = 0x314D5745  # b"EWM1" little-endian: edgemoe weight image, version 1
HEADER_BYTES = 32


class LayoutError(EdgemoeError, ValueError):
    """Data that does not fit the accelerator's layout: wrong config, shape or format."""


# --------------------------------------------------------------------------- register map


class Access(str, enum.Enum):
    READ_WRITE = "read-write"
    READ_ONLY = "read-only"
    WRITE_ONLY = "write-only"


@dataclass(frozen=True)
class Field:
    """A bit field of a register: ``width`` bits from ``bit``."""

    name: str
    bit: int
    width: int = 1
    access: Access = Access.READ_WRITE
    doc: str = ""

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.bit


@dataclass(frozen=True)
class Register:
    """One AXI4-Lite register (32 bits; a 64-bit pointer is two words from ``offset``).

    Args:
        name: upper-case name (``CTRL``, ``WEIGHTS``, ...); the C++ argument is ``name.lower()``.
        offset: byte offset of the (low) word.
        bits: 32, or 64 for a pointer.
        access: as seen from the host.
        ctype: the C type of the top's argument (pynq's register ``type``).
        fields: bit fields, for control registers.
        counter: a performance counter of the RTL top (not an argument of the top function).
    """

    name: str
    offset: int
    bits: int = 32
    access: Access = Access.READ_WRITE
    ctype: str = "unsigned int"
    doc: str = ""
    fields: tuple[Field, ...] = ()
    counter: bool = False

    @property
    def words(self) -> int:
        return self.bits // 32

    @property
    def is_pointer(self) -> bool:
        return self.bits == 64

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name}; fields: {[f.name for f in self.fields]}")


CTRL_FIELDS = (
    Field("AP_START", 0, doc="write 1 to start; held until the IP takes the call (ap_ready)"),
    Field("AP_DONE", 1, access=Access.READ_ONLY, doc="call finished (clear on read)"),
    Field("AP_IDLE", 2, access=Access.READ_ONLY, doc="no call under way"),
    Field("AP_READY", 3, access=Access.READ_ONLY, doc="ready for new inputs (clear on read)"),
    Field("AUTO_RESTART", 7, doc="start again after each call"),
)
INTERRUPT_FIELDS = (
    Field("AP_DONE", 0, doc="ap_done interrupt"),
    Field("AP_READY", 1, doc="ap_ready interrupt"),
)


@dataclass(frozen=True)
class RegisterMap:
    """The IP's AXI4-Lite registers, by name and by offset."""

    registers: tuple[Register, ...]
    addr_range: int

    def __getitem__(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"no register {name}; registers: {[r.name for r in self.registers]}")

    def __iter__(self):
        return iter(self.registers)

    @property
    def arguments(self) -> tuple[Register, ...]:
        """The top function's arguments, in offset order (everything from 0x10 but control words)."""
        return tuple(
            r for r in self.registers if r.offset >= 0x10 and not r.name.endswith("_CTRL") and not r.counter
        )

    @property
    def counters(self) -> tuple[Register, ...]:
        """The performance counters, in offset order."""
        return tuple(r for r in self.registers if r.counter)

    def pynq_registers(self) -> dict[str, dict]:
        """The ``registers`` entry of a pynq ``ip_dict`` (what pynq's HWH parser produces)."""
        out: dict[str, dict] = {}
        for r in self.registers:
            fields = r.fields or (Field(r.name, 0, 32, r.access),)
            out[r.name] = {
                "address_offset": r.offset,
                "size": r.bits,
                "access": r.access.value,
                "description": r.doc,
                "type": r.ctype,
                "fields": {
                    f.name: {
                        "bit_offset": f.bit,
                        "bit_width": f.width,
                        "access": f.access.value,
                        "description": f.doc,
                    }
                    for f in fields
                },
            }
        return out


def register_map() -> RegisterMap:
    """The register map; the same for every config (``CONFIG_ID`` holds the config's value)."""
    regs = [
        Register("CTRL", 0x00, doc="ap_ctrl_hs control", fields=CTRL_FIELDS),
        Register(
            "GIE", 0x04, doc="global interrupt enable", fields=(Field("ENABLE", 0, doc="global enable"),)
        ),
        Register("IER", 0x08, doc="interrupt enable", fields=INTERRUPT_FIELDS),
        Register("ISR", 0x0C, doc="interrupt status (toggle on write)", fields=INTERRUPT_FIELDS),
    ]
    # Arguments in the order of the top's signature; each takes its words plus one reserved
    # word, exactly as Vitis HLS assigns s_axilite offsets (the pragmas also pin them).
    offset = 0x10
    for name, bits, access, ctype, doc in (
        ("WEIGHTS", 64, Access.READ_WRITE, "void*", "address of the packed weight image"),
        ("IMAGES", 64, Access.READ_WRITE, "void*", "address of the packed images (BATCH of them)"),
        ("TOKENS", 64, Access.READ_WRITE, "void*", "address of the output tokens (BATCH x TOKENS x DIM)"),
        ("TASK", 32, Access.READ_WRITE, "unsigned int", "task index: selects the gates"),
        ("BATCH", 32, Access.READ_WRITE, "unsigned int", "number of images in this call (0: ID probe)"),
        ("CONFIG_ID", 32, Access.READ_ONLY, "unsigned int", "cfg.config_id of the hardware's config"),
    ):
        regs.append(Register(name, offset, bits, access, ctype, doc))
        offset += bits // 8
        if access is Access.READ_ONLY:
            regs.append(
                Register(
                    f"{name}_CTRL",
                    offset,
                    access=Access.READ_ONLY,
                    doc=f"{name.lower()} valid",
                    fields=(Field(f"{name}_AP_VLD", 0, access=Access.READ_ONLY, doc="clear on read"),),
                )
            )
        offset += 4
    # The RTL top's performance counters of the last call: 64-bit, read-only, after the arguments
    # (an HLS-built IP has none there: its unmapped words read 0).
    offset = _round_up(offset, 8)
    for name, doc in PERF_COUNTERS:
        regs.append(Register(name, offset, 64, Access.READ_ONLY, "unsigned long long", doc, counter=True))
        offset += 8
    addr_range = 1 << max(offset - 1, 1).bit_length()
    return RegisterMap(tuple(regs), addr_range)


PERF_COUNTERS = (
    ("CYCLES", "clock cycles of the last call, from taking ap_start to ap_done"),
    ("LINEAR_BUSY", "cycles the MAC array took an input beat (linear unit)"),
    ("ATTENTION_BUSY", "cycles the attention engine ran"),
    ("LAYERNORM_BUSY", "cycles a LayerNorm pass ran"),
    ("ROUTER_BUSY", "cycles the gate and router pass ran"),
    ("NONLINEAR_BUSY", "cycles the linear unit gave a GELU result (BiasGelu epilogue)"),
    ("BYTES_READ", "bytes read from memory (weight image and images)"),
    ("BYTES_WRITTEN", "bytes written to memory (tokens)"),
    ("MEMORY_STALL", "cycles a master waited on memory (read data due but absent, write data refused)"),
)
"""The RTL top's performance counters (name, meaning), in register order."""


CTRL_AP_START = 1 << 0
CTRL_AP_DONE = 1 << 1
CTRL_AP_IDLE = 1 << 2
CTRL_AP_READY = 1 << 3
CTRL_AUTO_RESTART = 1 << 7


def describe_ctrl(value: int) -> str:
    """``0x4 (ap_idle)``: a CTRL value with its set bits named."""
    names = [f.name.lower() for f in CTRL_FIELDS if value & f.mask]
    return f"0x{value:x} ({', '.join(names) or 'no bits set'})"


# --------------------------------------------------------------------------- memory layout


def word_bits(fmt: FixedFormat) -> int:
    """The storage word of a format: the smallest of 8, 16, 32, 64 bits that holds it."""
    for w in (8, 16, 32, 64):
        if fmt.bits <= w:
            return w
    raise LayoutError(f"format {fmt} is wider than 64 bits")


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


class Order(str, enum.Enum):
    ROWS = "rows"  # row-major
    TILED = "tiled"  # [out/LO][in/LI][LO][LI]


@dataclass(frozen=True)
class Segment:
    """One tensor in a buffer: ``items`` stacked matrices of ``rows`` x ``cols`` words.

    Args:
        name: the weight name (``l3_qkv_weight``) or buffer role.
        shape: the tensor's shape as the weights dict holds it.
        cast: its format (raw words hold values of ``cast.fmt``).
        items: leading stacked dimension (experts), each item starting on a beat.
        rows, cols: one item seen as a matrix (a vector is one row).
        order: how an item's words follow each other.
        offset: byte offset of item 0 in the buffer (beat-aligned).
        item_bytes: byte stride between items (a whole number of beats).
        stored_rows, stored_cols: an item's matrix as stored, padded with zeros to whole tiles.
    """

    name: str
    shape: tuple[int, ...]
    cast: Cast
    items: int
    rows: int
    cols: int
    order: Order
    offset: int
    item_bytes: int
    stored_rows: int = 0
    stored_cols: int = 0

    def __post_init__(self) -> None:
        if not self.stored_rows:
            object.__setattr__(self, "stored_rows", self.rows)
        if not self.stored_cols:
            object.__setattr__(self, "stored_cols", self.cols)

    @property
    def word_bits(self) -> int:
        return word_bits(self.cast.fmt)

    @property
    def words(self) -> int:
        """Words of one item as stored (with the zero padding of a tiled item)."""
        return self.stored_rows * self.stored_cols

    @property
    def nbytes(self) -> int:
        return self.items * self.item_bytes


def weight_cast(cfg: Config, name: str) -> Cast:
    """The storage format of weight ``name`` (the fixed reference's storage_cast, one definition)."""
    from edgemoe.golden.fixed.quantize_weights import storage_cast

    return storage_cast(name, cfg)


def _weight_tensors(cfg: Config) -> list[tuple[str, tuple[int, ...], int, int, int, bool]]:
    """(name, shape, items, rows, cols, is_linear_weight) in the order the hardware streams them."""
    m = cfg.model
    D, N, E, He, Hm = m.dim, m.tokens, m.experts, m.expert_hidden, m.mlp_hidden
    out = [
        ("patch_embed_weight", (D, m.in_chans, m.patch, m.patch), 1, D, m.patch_in, True),
        ("patch_embed_bias", (D,), 1, 1, D, False),
        ("pos_embed", (N, D), 1, N, D, False),
    ]
    for i in range(m.depth):
        p = f"l{i}_"
        out += [
            (p + "norm1_weight", (D,), 1, 1, D, False),
            (p + "norm1_bias", (D,), 1, 1, D, False),
            (p + "qkv_weight", (3 * D, D), 1, 3 * D, D, True),
            (p + "qkv_bias", (3 * D,), 1, 1, 3 * D, False),
            (p + "attn_proj_weight", (D, D), 1, D, D, True),
            (p + "attn_proj_bias", (D,), 1, 1, D, False),
            (p + "norm2_weight", (D,), 1, 1, D, False),
            (p + "norm2_bias", (D,), 1, 1, D, False),
        ]
        if m.is_moe(i):
            out += [(p + f"w_gate_T_task{t}", (E, D), 1, E, D, True) for t in range(len(m.tasks))]
            out += [
                (p + "htoh4_weight", (E, He, D), E, He, D, True),
                (p + "htoh4_bias", (E, He), E, 1, He, False),
                (p + "h4toh_weight", (E, D, He), E, D, He, True),
                (p + "h4toh_bias", (E, D), E, 1, D, False),
            ]
        else:
            out += [
                (p + "fc1_weight", (Hm, D), 1, Hm, D, True),
                (p + "fc1_bias", (Hm,), 1, 1, Hm, False),
                (p + "fc2_weight", (D, Hm), 1, D, Hm, True),
                (p + "fc2_bias", (D,), 1, 1, D, False),
            ]
    return out


@dataclass(frozen=True)
class BufferLayout:
    """The segments of one buffer and its size in bytes (a whole number of beats)."""

    name: str
    beat_bytes: int
    segments: tuple[Segment, ...]
    nbytes: int
    config_id: int
    index: dict[str, Segment] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.index.update({s.name: s for s in self.segments})

    def __getitem__(self, name: str) -> Segment:
        try:
            return self.index[name]
        except KeyError:
            raise KeyError(f"{self.name} layout has no segment '{name}'") from None

    def __iter__(self):
        return iter(self.segments)


def weight_layout(cfg: Config) -> BufferLayout:
    """The weight image: a header beat, then every backbone tensor in streaming order."""
    beat = cfg.hw.axi_bits // 8
    offset = _round_up(HEADER_BYTES, beat)
    segments = []
    for name, shape, items, rows, cols, linear in _weight_tensors(cfg):
        cast = weight_cast(cfg, name)
        w = word_bits(cast.fmt)
        if cfg.hw.axi_bits % w:
            raise LayoutError(f"{name}: {w}-bit words do not tile {cfg.hw.axi_bits}-bit beats")
        order = Order.TILED if linear else Order.ROWS
        srows = _round_up(rows, cfg.hw.linear_out) if linear else rows
        scols = _round_up(cols, cfg.hw.linear_in) if linear else cols
        item_bytes = _round_up(srows * scols * w // 8, beat)
        segments.append(
            Segment(name, shape, cast, items, rows, cols, order, offset, item_bytes, srows, scols)
        )
        offset += items * item_bytes
    return BufferLayout("weights", beat, tuple(segments), offset, cfg.config_id)


def io_layout(cfg: Config) -> tuple[BufferLayout, BufferLayout]:
    """Layouts of one image and of one image's output tokens (a batch repeats them).

    An image is stored patch by patch (row of patches, then column), each patch as its
    ``in_chans x patch x patch`` pixels in channel, row, column order — the input vector of
    the patch embedding. The tokens are ``TOKENS x DIM`` activation words, row-major.
    """
    m, f = cfg.model, cfg.formats
    beat = cfg.hw.axi_bits // 8
    pw = word_bits(f.pixel.fmt)
    image = Segment(
        "image",
        (m.in_chans, m.image_h, m.image_w),
        f.pixel,
        1,
        m.patches,
        m.patch_in,
        Order.ROWS,
        0,
        _round_up(m.patches * m.patch_in * pw // 8, beat),
    )
    aw = word_bits(f.act.fmt)
    tokens = Segment(
        "tokens",
        (m.tokens, m.dim),
        f.act,
        1,
        m.tokens,
        m.dim,
        Order.ROWS,
        0,
        _round_up(m.tokens * m.dim * aw // 8, beat),
    )
    return (
        BufferLayout("images", beat, (image,), image.item_bytes, cfg.config_id),
        BufferLayout("tokens", beat, (tokens,), tokens.item_bytes, cfg.config_id),
    )
