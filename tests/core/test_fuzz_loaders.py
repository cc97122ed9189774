"""Fuzzing the loaders: corrupted weight files, Edge-MoE folders, images and config files.

Each case starts from a good file of the ``tiny`` preset and corrupts it (truncation, bit flips,
spliced or random bytes, headers declaring huge dimensions). A loader must then either load
something correct or raise the project's own error in one line: never another exception, a
hang or a crash. The number of cases comes from the Hypothesis profile (``ci`` in the suite,
``fuzz`` for ``make fuzz``).
"""

from __future__ import annotations

import functools
import io
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from edgemoe.config import Config, ConfigError, resolve
from edgemoe.config import preset as get_preset
from edgemoe.errors import EdgemoeError
from edgemoe.golden import weights as W
from edgemoe.golden.images import default_image, load_image
from edgemoe.show import describe

TINY = get_preset("tiny")
# The time of one example depends on the machine's load; only the profiles count examples.
fuzz = settings(deadline=None)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# Good files as bytes (module-level, so a failing example's printout stays short).
@functools.cache
def good_npz() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        return W.save(W.synthetic(TINY, seed=1), Path(d) / "good.npz", TINY).read_bytes()


@functools.cache
def good_bins() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as d:
        W.save_edgemoe_dir(W.synthetic(TINY, seed=2), d, TINY, include_heads=False)
        return {f.name: f.read_bytes() for f in sorted(Path(d).iterdir())}


@functools.cache
def good_images() -> dict[str, bytes]:
    from PIL import Image

    image = default_image(TINY)
    npy = io.BytesIO()
    np.save(npy, image)
    png, bmp = io.BytesIO(), io.BytesIO()
    picture = Image.fromarray((image * 256).astype(np.uint8).transpose(1, 2, 0))
    picture.save(png, format="PNG")
    picture.save(bmp, format="BMP")
    return {
        "image.npy": npy.getvalue(),
        "image.float32.bin": image.astype("<f4").tobytes(),
        "image.png": png.getvalue(),
        "image.bmp": bmp.getvalue(),
    }


def one_line_error(call, error: type[EdgemoeError]):
    """The result of ``call()``, or None when it raised ``error`` with a one-line message."""
    try:
        result = call()
    except error as e:
        msg = str(e)
        assert msg and "\n" not in msg and len(msg) < 600, f"not one readable line: {msg!r}"
        event("one-line error")
        return None
    event("loaded")
    return result


# ------------------------------------------------------------------------------ corruptions


def positions(size: int) -> st.SearchStrategy[int]:
    """A byte position, as often in the first and last 600 bytes (headers, zip directory) as anywhere."""
    last = size - 1
    return st.one_of(
        st.integers(0, min(600, last)), st.integers(max(0, last - 600), last), st.integers(0, last)
    )


@st.composite
def corrupted(draw: st.DrawFn, base: bytes) -> bytes:
    """``base`` truncated, with flipped bits, with bytes spliced in, or replaced by random bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "splice", "random"]))
    if kind == "truncate":
        return base[: draw(st.integers(0, len(base) - 1))]
    if kind == "flip":
        data = bytearray(base)
        for pos in draw(st.lists(positions(len(base)), min_size=1, max_size=8)):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == "splice":
        pos = draw(positions(len(base)))
        cut = draw(st.integers(0, 64))
        return base[:pos] + draw(st.binary(min_size=1, max_size=64)) + base[pos + cut :]
    return draw(st.binary(max_size=4096))


huge_shapes = st.lists(
    st.one_of(st.integers(0, 8), st.integers(2**20, 2**40), st.just(2**62)), min_size=1, max_size=4
).map(tuple)


def npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """A .npy version 1.0 header declaring ``shape`` (the data that follows may be short)."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


# ------------------------------------------------------------------------------ weights


def check_weights(path: Path) -> None:
    loaded = one_line_error(lambda: W.load(path, TINY), W.WeightError)
    if loaded is not None:  # a correct load: every tensor of the config, float32 and finite
        W.check(loaded, TINY)


@fuzz
@given(data=st.data())
def test_corrupted_weight_file(folder: Path, data: st.DataObject) -> None:
    path = folder / "weights.npz"
    path.write_bytes(data.draw(corrupted(good_npz())))
    check_weights(path)


@fuzz
@given(shape=huge_shapes, tail=st.binary(max_size=64), member=st.sampled_from(["pos_embed", "x"]))
def test_weight_file_member_with_huge_dimensions(
    folder: Path, shape: tuple[int, ...], tail: bytes, member: str
) -> None:
    path = folder / "huge.npz"
    with zipfile.ZipFile(io.BytesIO(good_npz())) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            if info.filename != f"{member}.npy":
                dst.writestr(info, src.read(info))
        dst.writestr(f"{member}.npy", npy_header(shape) + tail)
    check_weights(path)


@fuzz
@given(data=st.data())
def test_corrupted_edgemoe_folder(folder: Path, data: st.DataObject) -> None:
    d = folder / "bins"
    d.mkdir(exist_ok=True)
    for f in d.iterdir():
        f.unlink()
    bins = good_bins()
    names = sorted(bins)
    hit = set(data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True)))
    for name in names:
        body = bins[name]
        if name in hit:
            action = data.draw(st.sampled_from(["corrupt", "delete", "huge"]))
            if action == "delete":
                continue
            if action == "huge":  # a sparse file of up to 4 GiB: its size alone must be refused
                with (d / name).open("wb") as f:
                    f.truncate(data.draw(st.integers(len(body) + 1, 2**32)))
                continue
            body = data.draw(corrupted(body)) if body else data.draw(st.binary(max_size=16))
        (d / name).write_bytes(body)
    loaded = one_line_error(lambda: W.load_edgemoe_dir(d, TINY, seed=2), W.WeightError)
    if loaded is not None:
        W.check(loaded.weights, TINY)


# ------------------------------------------------------------------------------ images


def check_image(path: Path) -> None:
    from edgemoe.golden.images import ImageError

    image = one_line_error(lambda: load_image(path, TINY), ImageError)
    if image is not None:  # a correct load: the config's shape, float32, in [0, 1)
        m = TINY.model
        assert image.shape == (m.in_chans, m.image_h, m.image_w) and image.dtype == np.float32
        assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() < 1.0


@fuzz
@given(kind=st.sampled_from(["image.npy", "image.float32.bin", "image.png", "image.bmp"]), data=st.data())
def test_corrupted_image(folder: Path, kind: str, data: st.DataObject) -> None:
    path = folder / kind
    path.write_bytes(data.draw(corrupted(good_images()[kind])))
    check_image(path)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@fuzz
@given(shape=huge_shapes, width=st.integers(1, 2**31 - 1), height=st.integers(1, 2**31 - 1))
def test_image_headers_with_huge_dimensions(
    folder: Path, shape: tuple[int, ...], width: int, height: int
) -> None:
    (folder / "huge.npy").write_bytes(npy_header(shape) + b"\0" * 64)
    check_image(folder / "huge.npy")
    # a well-formed PNG header promising a huge picture, with almost no pixel data
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    (folder / "huge.png").write_bytes(png)
    check_image(folder / "huge.png")


# ------------------------------------------------------------------------------ config files

GOOD_TOML = b"""\
preset = "tiny"
name = "fuzzed"
[model]
depth = 2
moe_blocks = [1]
[formats.act]
bits = 24
int_bits = 8
rounding = "truncate"
overflow = "saturate"
[hw]
attn_p = 2
"""


def check_config(path: Path) -> None:
    cfg = one_line_error(lambda: resolve(None, path), ConfigError)
    if cfg is not None:  # a correct load: a validated config that `edgemoe config show` describes
        assert isinstance(cfg, Config) and cfg.config_id == resolve(None, path).config_id
        assert cfg.name in describe(cfg)


@fuzz
@given(suffix=st.sampled_from([".toml", ".yaml"]), data=st.data())
def test_corrupted_config_file(folder: Path, suffix: str, data: st.DataObject) -> None:
    base = GOOD_TOML if suffix == ".toml" else yaml.safe_dump({"preset": "tiny", **TINY.to_dict()}).encode()
    path = folder / f"config{suffix}"
    path.write_bytes(data.draw(corrupted(base)))
    check_config(path)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["tiny", "edge-moe", "truncate", "wrap", "saturate"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


def setting_paths(d: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for k, v in d.items():
        out.append((*prefix, k))
        if isinstance(v, dict):
            out += setting_paths(v, (*prefix, k))
    return out


TINY_SETTINGS = {k: v for k, v in TINY.to_dict().items() if k != "name"}


@fuzz
@given(
    where=st.lists(st.sampled_from(setting_paths(TINY_SETTINGS)), min_size=1, max_size=3),
    new=st.lists(values, min_size=3, max_size=3),
)
def test_config_file_with_wrong_values(folder: Path, where: list[tuple[str, ...]], new: list) -> None:
    """A real config (the tiny preset in full) with up to three settings given any YAML value."""
    data = yaml.safe_load(yaml.safe_dump(TINY_SETTINGS))
    for path, value in zip(where, new, strict=False):
        node = data
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                break
            node = node[key]
        else:
            node[path[-1]] = value
    path = folder / "values.yaml"
    path.write_text(yaml.safe_dump({"preset": "tiny", **data}))
    check_config(path)
