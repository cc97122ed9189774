"""``edgemoe infer``: one image through a back end, outputs and pictures written to a folder.

The back ends and their registry are in :mod:`edgemoe.backends`; the task heads of back ends
that return tokens only run in float on the host (:func:`edgemoe.float_backend.float_head`);
the pictures are drawn by :mod:`edgemoe.pictures`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgemoe.backends import BACKENDS
from edgemoe.config import Config
from edgemoe.errors import EdgemoeError
from edgemoe.files import atomic_path, check_output_folder
from edgemoe.float_backend import float_head, float_model
from edgemoe.pictures import percent, save_pictures
from edgemoe.progress import log, stage


class InferError(EdgemoeError, ValueError):
    """Bad input to ``edgemoe infer``: an unreadable image, an unknown task or back end."""


# ----------------------------------------------------------------------------------- inputs


SEEDED = "seeded"  # the --weights name of the seeded synthetic weights


def weights_source(cfg: Config, path: str | Path | None) -> str | Path:
    """What ``--weights`` means: ``path``, or when None the trained model shipped for the
    config's model (``edgemoe.golden.stored.trained_path``), else the seeded synthetic weights."""
    from edgemoe.golden.stored import trained_path

    if path is not None:
        return path
    return trained_path(cfg) or SEEDED


def load_weights(cfg: Config, path: str | Path | None, seed: int = 0) -> dict[str, np.ndarray]:
    """The weights ``path`` names (see :func:`weights_source`): ``seeded`` (synthetic weights of
    ``seed``), a project weight file (float32 or 16-bit stored) or an Edge-MoE .bin folder.

    Tensors an Edge-MoE folder lacks (expert matrices, task heads) are filled from the seeded
    synthetic weights; the loader's warning (logged to stderr) names them.
    """
    from edgemoe.golden import weights as w
    from edgemoe.golden.weight_files import load_any

    path = weights_source(cfg, path)
    if str(path) == SEEDED:
        return w.synthetic(cfg, seed=seed)
    p = Path(path)
    if not p.exists():
        raise w.WeightError(f"weights {p}: no such file or folder")
    return load_any(p, cfg, seed).weights  # the loader names what it fills, on stderr


def load_image(cfg: Config, path: str | Path | None) -> np.ndarray:
    """The input image as float32 [C, H, W] in [0, 1): the built-in image when ``path`` is None.

    Pictures (PNG, JPEG, BMP) are resized to the model's input; ``.npy`` and ``.float32.bin``
    arrays must already be [C, H, W] (see ``edgemoe.golden.images.load_image``).
    """
    from edgemoe.golden import images

    if path is None:
        return np.asarray(images.default_image(cfg), dtype=np.float32)
    return images.load_image(path, cfg)


def parse_tasks(cfg: Config, task: str | int | None) -> list[int]:
    """``all``/None, a task name or an index -> task indices."""
    names = cfg.model.tasks
    if task is None or str(task) == "all":
        return list(range(len(names)))
    text = str(task)
    if text in names:
        return [names.index(text)]
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
        return [int(text)]
    known = ", ".join(f"{i} = {n}" for i, n in enumerate(names))
    raise InferError(f"unknown task '{text}'; config '{cfg.name}' has tasks {known} (or 'all')")


# ----------------------------------------------------------------------------------- outputs


def summarize(cfg: Config, task: int, head: np.ndarray) -> str:
    """One line: class histogram of a segmentation, or value range of a one-channel output."""
    C = head.shape[0]
    if C > 1:
        classes = head.argmax(axis=0)
        counts = np.bincount(classes.ravel(), minlength=C)
        share = " ".join(f"{c}:{percent(n / classes.size)}" for c, n in enumerate(counts) if n)
        return f"classes {share}"
    d = head[0]
    return f"range [{d.min():.4g}, {d.max():.4g}], mean {d.mean():.4g}"


def run(
    cfg: Config,
    weights: str | Path | None = None,
    image: str | Path | None = None,
    task: str | int | None = "all",
    out: str | Path = "out",
    backend: str = "float",
    seed: int = 0,
    pictures: bool = True,
    threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Run ``edgemoe infer``: returns what it writes to ``out/outputs.npz``."""
    if threads:  # None or 0: torch's own choice
        if threads < 0:
            raise InferError(f"--threads must be 0 (torch's choice) or more, got {threads}")
        import torch

        torch.set_num_threads(threads)
    if backend not in BACKENDS:
        raise InferError(f"unknown back end '{backend}'; known: {', '.join(BACKENDS)}")
    tasks = parse_tasks(cfg, task)
    out = check_output_folder(out)
    m = cfg.model
    log(f"config '{cfg.name}' (CONFIG_ID 0x{cfg.config_id:08x}), back end '{backend}'")
    img = load_image(cfg, image)
    source = weights_source(cfg, weights)
    what = f"seeded synthetic weights (seed {seed})" if str(source) == SEEDED else f"weights from {source}"
    with stage(f"loading {what}"):
        w = load_weights(cfg, weights, seed)
    with stage(f"preparing back end '{backend}'"):
        runner = BACKENDS[backend].load()(cfg, w)
    host_model = None
    results: dict[str, np.ndarray] = {"image": img}
    heads: dict[int, np.ndarray] = {}
    lines = []
    for t in tasks:
        name = m.tasks[t]
        t0 = time.perf_counter()
        with stage(f"task {t} ({name})"):
            res = runner(img, t)
            head = res.head
            if head is None:
                if host_model is None:
                    host_model = float_model(cfg, w)
                head = float_head(host_model, res.tokens, t)
        dt = time.perf_counter() - t0
        tokens = np.asarray(res.tokens, dtype=np.float32)
        head = np.asarray(head, dtype=np.float32)
        if tokens.shape != (m.tokens, m.dim) or head.shape != (m.task_channels[t], m.image_h, m.image_w):
            raise RuntimeError(
                f"back end '{backend}' returned tokens {tokens.shape} and head {head.shape}; expected "
                f"({m.tokens}, {m.dim}) and ({m.task_channels[t]}, {m.image_h}, {m.image_w})"
            )
        results[f"tokens_{name}"] = tokens
        results[f"head_{name}"] = head
        for key, arr in res.arrays.items():
            results[f"{key}_{name}"] = np.asarray(arr)
        heads[t] = head
        extra = "".join(f", {k} {v}" for k, v in res.info.items())
        lines.append(f"{name:<8} {dt:7.3f} s ({backend}{extra})  {summarize(cfg, t, head)}")
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "config": np.array(cfg.name),
        "config_id": np.array(cfg.config_id, dtype=np.uint32),
        "backend": np.array(backend),
        "tasks": np.array([m.tasks[t] for t in tasks]),
    }
    with atomic_path(out / "outputs.npz") as tmp:
        np.savez(tmp, **results, **meta)
    written = [out / "outputs.npz"]
    finish = getattr(runner, "finish", None)
    if finish is not None:
        written += finish(out)
    if pictures:
        with stage("writing pictures"):
            written += save_pictures(cfg, out, img, heads)
    for line in lines:
        print(line)
    print("wrote " + ", ".join(str(p) for p in written))
    return results
