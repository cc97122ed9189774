"""A procedural multi-task dataset: street-like scenes with per-pixel classes and depth.

Every scene is drawn in code from one seed (numpy PCG64), at the config's input size, so
nothing is downloaded and every machine sees the same pictures. A pinhole camera 1.5 m above
a flat ground looks at the horizon; the ground's depth at image row ``y`` (0 at the top, 1 at
the bottom) is ``CAMERA_K / (y - horizon)`` metres, clipped to ``MAX_DEPTH`` (the sky's depth).
Upright objects (buildings, trees, vehicles, poles) are flat façades standing on the ground
at a distance ``z``: their base is the ground row at depth ``z`` and their size on the picture
is their size in metres times ``focal / z``. They are painted far to near, so the nearer one
occludes, and each pixel's class and depth are those of what is painted last there.

Classes (``CLASSES``, the semseg task's channels): sky (and the sun), road, lane marking,
building, vegetation (trees and grass), vehicle, other (pavement, poles and signs).
Randomized per scene: horizon and vanishing point, road width, lane stripes, colours,
lighting, textures, noise and the number, place, size and distance of every object.

Splits are seed ranges (``SPLITS``): training, validation and test scenes never share a
seed. The built-in image (``edgemoe.golden.images.default_image``) is a scene too:
:func:`default_scene` gives its labels and depth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgemoe.config import Config
from edgemoe.golden import images

CLASSES = ("sky", "road", "lane marking", "building", "vegetation", "vehicle", "other")
SKY, ROAD, LANE, BUILDING, VEGETATION, VEHICLE, OTHER = range(len(CLASSES))

MAX_DEPTH = 50.0  # metres: the sky, and the ground close to the horizon
CAMERA_HEIGHT = 1.5  # metres
BOTTOM_DEPTH = 3.0  # metres: ground depth on the bottom row when the horizon is at 0.55

# seed ranges of the splits: [start, start + size)
SPLITS: dict[str, tuple[int, int]] = {
    "train": (0, 1_000_000),
    "val": (1_000_000, 10_000),
    "test": (2_000_000, 10_000),
}


class DatasetError(ValueError):
    """A scene request the dataset cannot serve (unknown split, index out of range)."""


@dataclass
class Scene:
    """One scene.

    Attributes:
        image: float32 [C, H, W] in [0, 1), multiples of 1/256 (as the accelerator reads pixels).
        labels: int64 [H, W], an index into ``CLASSES`` per pixel.
        depth: float32 [H, W], metres along the optical axis, in (0, MAX_DEPTH].
    """

    image: np.ndarray
    labels: np.ndarray
    depth: np.ndarray


def check_classes(cfg: Config) -> None:
    """DatasetError unless the semseg task has one channel per class and a depth task exists."""
    m = cfg.model
    if "semseg" not in m.tasks or "depth" not in m.tasks:
        raise DatasetError(f"config '{cfg.name}' needs the tasks semseg and depth, has {', '.join(m.tasks)}")
    classes = m.task_channels[m.tasks.index("semseg")]
    if classes != len(CLASSES):
        raise DatasetError(
            f"config '{cfg.name}': the semseg task has {classes} channels, the dataset "
            f"{len(CLASSES)} classes ({', '.join(CLASSES)})"
        )


def split_seed(split: str, index: int) -> int:
    """The seed of scene ``index`` of ``split``."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split '{split}'; known: {', '.join(SPLITS)}")
    start, size = SPLITS[split]
    if not 0 <= index < size:
        raise DatasetError(f"split '{split}' has scenes 0..{size - 1}, asked for {index}")
    return start + index


def scene(cfg: Config, split: str, index: int) -> Scene:
    """Scene ``index`` of ``split`` (``train``, ``val``, ``test``)."""
    return render(cfg, split_seed(split, index))


def batch(cfg: Config, split: str, start: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scenes ``start .. start+count-1`` of ``split`` stacked: images, labels, depths."""
    scenes = [scene(cfg, split, i) for i in range(start, start + count)]
    return (
        np.stack([s.image for s in scenes]),
        np.stack([s.labels for s in scenes]),
        np.stack([s.depth for s in scenes]),
    )


class _Canvas:
    """Colour, class and depth planes painted in order (the last paint of a pixel wins)."""

    def __init__(self, H: int, W: int) -> None:
        self.rgb = np.zeros((3, H, W))
        self.labels = np.zeros((H, W), np.int64)
        self.depth = np.full((H, W), MAX_DEPTH)

    def paint(self, mask: np.ndarray, rgb: np.ndarray, label: int, depth: float | np.ndarray) -> None:
        """``rgb``: [3] or [3, H, W]; ``depth``: a number or [H, W]."""
        rgb = np.asarray(rgb, dtype=np.float64)
        if rgb.ndim == 1:
            rgb = np.broadcast_to(rgb[:, None, None], self.rgb.shape)
        self.rgb[:, mask] = rgb[:, mask]
        self.labels[mask] = label
        self.depth[mask] = depth if np.isscalar(depth) else np.asarray(depth)[mask]


def ground_depth(y: np.ndarray, horizon: float) -> np.ndarray:
    """Depth in metres of the ground at image rows ``y`` (MAX_DEPTH at and above the horizon)."""
    k = BOTTOM_DEPTH * (1 - 0.55)
    with np.errstate(divide="ignore"):
        z = np.where(y > horizon, k / np.maximum(y - horizon, 1e-9), MAX_DEPTH)
    return np.minimum(z, MAX_DEPTH)


def _focal() -> float:
    """Focal length in image heights: a point 1.5 m below the camera at depth z is k / z below the horizon."""
    return BOTTOM_DEPTH * (1 - 0.55) / CAMERA_HEIGHT


def _texture(rng: np.random.Generator, H: int, W: int, cells: int, amount: float) -> np.ndarray:
    """Smooth random variation [H, W] (bilinear upsampling of a coarse grid), mean 0."""
    gh, gw = cells, max(2, cells * W // H)
    grid = rng.standard_normal((gh + 1, gw + 1))
    yi = np.linspace(0, gh, H)
    xi = np.linspace(0, gw, W)
    y0 = np.minimum(yi.astype(int), gh - 1)
    x0 = np.minimum(xi.astype(int), gw - 1)
    fy, fx = (yi - y0)[:, None], (xi - x0)[None, :]
    a = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    b = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return amount * (a * (1 - fy) + b * fy)


def render(cfg: Config, seed: int) -> Scene:
    """The scene of ``seed`` at the size of ``cfg`` (see the module docstring)."""
    check_classes(cfg)
    m = cfg.model
    H, W = m.image_h, m.image_w
    rng = np.random.Generator(np.random.PCG64([seed, 0x5CE7E]))
    y, x = np.meshgrid((np.arange(H) + 0.5) / H, (np.arange(W) + 0.5) / W, indexing="ij")
    aspect = H / W  # one image height in image widths
    f = _focal()
    horizon = rng.uniform(0.35, 0.6)
    vanish = rng.uniform(0.3, 0.7)
    light = rng.uniform(0.7, 1.15)
    tint = rng.uniform(0.92, 1.08, 3)
    canvas = _Canvas(H, W)
    z_ground = ground_depth(y, horizon)

    # sky: a vertical gradient, maybe clouds, maybe a sun
    top = np.array([rng.uniform(0.15, 0.35), rng.uniform(0.35, 0.55), rng.uniform(0.75, 0.95)])
    bottom = np.minimum(top + rng.uniform(0.15, 0.4), 0.98)
    t = np.clip(y / horizon, 0, 1)
    sky_rgb = top[:, None, None] + (bottom - top)[:, None, None] * t
    sky_rgb = sky_rgb + np.clip(_texture(rng, H, W, 3, 0.25), 0, None) * rng.uniform(0, 1)
    canvas.paint(y < horizon, sky_rgb, SKY, MAX_DEPTH)
    if rng.uniform() < 0.5:
        sx, sy, r = rng.uniform(0.1, 0.9), rng.uniform(0.05, horizon * 0.6), rng.uniform(0.03, 0.07)
        sun = (x - sx) ** 2 + ((y - sy) * aspect) ** 2 < r**2
        canvas.paint(sun, np.array([1.0, 0.9, rng.uniform(0.4, 0.7)]), SKY, MAX_DEPTH)

    # ground: verges (grass or pavement), the road converging to the vanishing point, lanes
    g = np.clip((y - horizon) / (1 - horizon), 0, 1)
    ground = y >= horizon
    grass = rng.uniform() < 0.6
    verge_base = (
        np.array([rng.uniform(0.15, 0.35), rng.uniform(0.45, 0.65), rng.uniform(0.1, 0.25)])
        if grass
        else np.full(3, rng.uniform(0.5, 0.65))
    )
    verge_rgb = verge_base[:, None, None] + 0.2 * g + _texture(rng, H, W, 8, 0.04)
    canvas.paint(ground, verge_rgb, VEGETATION if grass else OTHER, z_ground)
    half_far, half_near = rng.uniform(0.0, 0.02), rng.uniform(0.3, 0.55)
    road = ground & (np.abs(x - vanish) < half_far + half_near * g)
    grey = rng.uniform(0.22, 0.42)
    road_rgb = np.array([grey, grey, grey + 0.03])[:, None, None] + 0.15 * g + _texture(rng, H, W, 10, 0.03)
    canvas.paint(road, road_rgb, ROAD, z_ground)
    freq, phase = rng.uniform(25, 45), rng.uniform(0, 2 * np.pi)
    lane_half = 0.004 + 0.012 * g
    for offset in (0.0,) if rng.uniform() < 0.6 else (-0.33, 0.33):
        centre = vanish + offset * half_near * g
        lane = road & (np.abs(x - centre) < lane_half) & (np.sin(freq * g**0.5 + phase) > 0) & (g > 0.02)
        canvas.paint(lane, np.array([0.95, 0.95, rng.uniform(0.6, 0.95)]), LANE, z_ground)

    def on_ground(z: float) -> float:
        """Image row of the ground at depth ``z``."""
        return horizon + CAMERA_HEIGHT * f / z

    def road_half(row: float) -> float:
        """Half the road's width (image widths) on image row ``row``."""
        return half_far + half_near * (row - horizon) / (1 - horizon)

    # upright objects, each (depth, painter); painted far to near
    objects: list[tuple[float, Callable[[], None]]] = []

    def add_building() -> None:
        z = rng.uniform(12, MAX_DEPTH * 0.9)
        height, width = rng.uniform(6, 30), rng.uniform(6, 25)
        side = rng.choice((-1, 1))
        base = on_ground(z)
        edge = vanish + side * road_half(base)  # road edge there
        gap = rng.uniform(0.0, 0.05)
        x0 = edge + gap if side > 0 else edge - gap - width * f / z * aspect
        colour = np.array([rng.uniform(0.35, 0.75), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.6)])
        win = np.array([rng.uniform(0.6, 0.95)] * 2 + [rng.uniform(0.5, 0.9)])

        def paint() -> None:
            x1 = x0 + width * f / z * aspect
            body = (x >= x0) & (x < x1) & (y >= base - height * f / z) & (y < base)
            period = 3.0 * f / z  # a storey every 3 m
            windows = (
                body
                & (np.sin((x - x0) / (period * aspect) * 2 * np.pi) > 0.2)
                & (np.sin((y - base) / period * 2 * np.pi) > 0.2)
            )
            canvas.paint(body, colour[:, None, None] * (1 + _texture(rng, H, W, 6, 0.05)), BUILDING, z)
            canvas.paint(windows, win, BUILDING, z)

        objects.append((z, paint))

    def add_tree() -> None:
        z = rng.uniform(6, 40)
        height = rng.uniform(4, 10)
        crown = rng.uniform(1.5, 3.5)
        side = rng.choice((-1, 1))
        base = on_ground(z)
        cx = vanish + side * (road_half(base) + rng.uniform(0.02, 0.2))
        leaf = np.array([rng.uniform(0.05, 0.3), rng.uniform(0.3, 0.6), rng.uniform(0.05, 0.2)])

        def paint() -> None:
            s = f / z
            trunk = (np.abs(x - cx) < 0.2 * s * aspect) & (y < base) & (y >= base - (height - crown) * s)
            cy = base - (height - crown) * s
            leaves = ((x - cx) / aspect) ** 2 + (y - cy) ** 2 < (crown * s) ** 2
            canvas.paint(trunk, np.array([0.35, 0.25, 0.15]), VEGETATION, z)
            canvas.paint(leaves, leaf[:, None, None] * (1 + _texture(rng, H, W, 12, 0.15)), VEGETATION, z)

        objects.append((z, paint))

    def add_vehicle() -> None:
        z = rng.uniform(5, 35)
        base = on_ground(z)
        cx = vanish + rng.uniform(-0.7, 0.7) * road_half(base)
        width, height = rng.uniform(1.7, 2.4), rng.uniform(1.3, 2.8)
        colour = rng.uniform(0.05, 0.95, 3)

        def paint() -> None:
            s = f / z
            body = np.abs(x - cx) < width / 2 * s * aspect
            body &= (y < base - 0.25 * s) & (y >= base - height * s)
            glass = (
                (np.abs(x - cx) < width * 0.38 * s * aspect)
                & (y >= base - height * 0.9 * s)
                & (y < base - height * 0.6 * s)
            )
            wheels = (
                (np.abs(np.abs(x - cx) - width * 0.32 * s * aspect) < 0.25 * s * aspect)
                & (y < base)
                & (y >= base - 0.5 * s)
            )
            canvas.paint(body, colour, VEHICLE, z)
            canvas.paint(glass, np.array([0.15, 0.18, 0.22]), VEHICLE, z)
            canvas.paint(wheels, np.array([0.05, 0.05, 0.05]), VEHICLE, z)

        objects.append((z, paint))

    def add_pole() -> None:
        z = rng.uniform(5, 30)
        base = on_ground(z)
        side = rng.choice((-1, 1))
        cx = vanish + side * (road_half(base) + rng.uniform(0.0, 0.05))
        height = rng.uniform(3, 6)
        sign = rng.uniform(0.1, 0.95, 3)

        def paint() -> None:
            s = f / z
            pole = (np.abs(x - cx) < 0.08 * s * aspect) & (y < base) & (y >= base - height * s)
            board = (np.abs(x - cx) < 0.5 * s * aspect) & (np.abs(y - (base - height * s)) < 0.4 * s)
            canvas.paint(pole, np.array([0.5, 0.5, 0.5]), OTHER, z)
            canvas.paint(board, sign, OTHER, z)

        objects.append((z, paint))

    for add, low, high in ((add_building, 0, 5), (add_tree, 0, 5), (add_vehicle, 0, 4), (add_pole, 0, 3)):
        for _ in range(rng.integers(low, high)):
            add()
    for _, paint in sorted(objects, key=lambda o: -o[0]):
        paint()

    rgb = canvas.rgb * light * tint[:, None, None]
    rgb = rgb + rng.uniform(0.005, 0.03) * rng.standard_normal(rgb.shape)
    image = images._quantize8(rgb[[c % 3 for c in range(m.in_chans)]])
    return Scene(np.ascontiguousarray(image), canvas.labels, canvas.depth.astype(np.float32))


def default_scene(cfg: Config) -> Scene:
    """The built-in image with its labels and depth (its buildings stand at the horizon)."""
    check_classes(cfg)
    m = cfg.model
    r = images.default_regions(cfg)
    canvas = _Canvas(m.image_h, m.image_w)
    y = np.linspace(0.0, 1.0, m.image_h)[:, None] * np.ones((1, m.image_w))
    z_ground = ground_depth(y, images.DEFAULT_HORIZON)
    zero = np.zeros(3)
    canvas.paint(r["ground"], zero, VEGETATION, z_ground)
    canvas.paint(r["road"], zero, ROAD, z_ground)
    canvas.paint(r["lane"], zero, LANE, z_ground)
    canvas.paint(r["sun"], zero, SKY, MAX_DEPTH)
    for i in range(len(images.DEFAULT_BUILDINGS)):
        canvas.paint(r[f"building{i}"], zero, BUILDING, MAX_DEPTH)
    return Scene(images.default_image(cfg), canvas.labels, canvas.depth.astype(np.float32))
