"""The pictures ``edgemoe infer`` writes: the input, and each task's output beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgemoe.config import Config
from edgemoe.files import atomic_path

# Fixed segmentation palette (RGB), class i gets colour i mod len.
PALETTE = np.array(
    [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
        (0, 0, 0),
        (255, 255, 255),
    ],
    dtype=np.uint8,
)


def class_names(classes: int) -> list[str]:
    """The procedural dataset's class names when the count matches, else ``class <i>``."""
    from edgemoe.golden.dataset import CLASSES

    return list(CLASSES) if classes == len(CLASSES) else [f"class {c}" for c in range(classes)]


def percent(x: float) -> str:
    """A share as a whole percentage; a share above zero but under half a percent reads ``<1%``."""
    return "<1%" if 0 < x < 0.005 else f"{100 * x:.0f}%"


def save_pictures(cfg: Config, out: Path, image: np.ndarray, heads: dict[int, np.ndarray]) -> list[Path]:
    """input.png, and per task ``<task>.png``: the input next to the task output.

    A multi-channel output is drawn as the argmax class of each pixel in a fixed palette with a
    legend of every class's share; a one-channel output (depth) as a heat map with a colour bar.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    written = []
    H, W = image.shape[1:]
    rgb = image.transpose(1, 2, 0) if image.shape[0] == 3 else image[0]

    def show_input(ax: Any) -> None:
        ax.imshow(rgb, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"input {image.shape[0]}x{H}x{W}", fontsize=9)
        ax.axis("off")

    panel = (W / 80, H / 80 + 0.6)
    fig, ax = plt.subplots(figsize=panel, dpi=100)
    show_input(ax)
    written.append(out / "input.png")
    with atomic_path(written[-1]) as tmp:
        fig.savefig(tmp, bbox_inches="tight")
    plt.close(fig)

    for task, head in heads.items():
        name = cfg.model.tasks[task]
        fig, (ax_in, ax) = plt.subplots(1, 2, figsize=(2 * panel[0] + 1.6, panel[1]), dpi=100)
        show_input(ax_in)
        C = head.shape[0]
        if C > 1:
            classes = head.argmax(axis=0)
            ax.imshow(PALETTE[classes % len(PALETTE)], interpolation="nearest")
            share = np.bincount(classes.ravel(), minlength=C) / classes.size
            names = class_names(C)
            handles = [
                Patch(color=PALETTE[c % len(PALETTE)] / 255, label=f"{names[c]}  {percent(share[c])}")
                for c in range(C)
            ]
            ax.legend(
                handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False
            )
            ax.set_title(f"{name}: argmax of {C} classes", fontsize=9)
        else:
            im = ax.imshow(head[0], cmap="magma")
            fig.colorbar(im, ax=ax, fraction=0.046 * H / W, pad=0.03)
            ax.set_title(f"{name}: heat map", fontsize=9)
        ax.axis("off")
        written.append(out / f"{name}.png")
        with atomic_path(written[-1]) as tmp:
            fig.savefig(tmp, bbox_inches="tight")
        plt.close(fig)
    return written
