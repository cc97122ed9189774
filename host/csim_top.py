"""The C-simulated accelerator top (``em_top`` of the g++ C-simulation library) over host buffers."""

from __future__ import annotations

import ctypes

import numpy as np

from edgemoe.config import Config

from .layout import LayoutError, io_layout, weight_layout

_U8P = ctypes.POINTER(ctypes.c_uint8)


def _buf(a: np.ndarray, nbytes: int, name: str) -> ctypes._Pointer:
    a = np.ascontiguousarray(a) if a.size == 0 else a
    if a.dtype != np.uint8 or not a.flags.c_contiguous or a.nbytes < nbytes:
        raise LayoutError(f"{name}: need {nbytes} contiguous bytes, got {a.nbytes} of dtype {a.dtype}")
    return a.ctypes.data_as(_U8P)


def run_csim_top(
    cfg: Config, weights: np.ndarray, images: np.ndarray, tokens: np.ndarray, task: int, batch: int
) -> int:
    """Run ``edgemoe_top`` in C-simulation; writes ``tokens`` in place and returns the ID it reported."""
    from edgemoe import csim

    lib = csim.load(cfg).lib
    img, tok = io_layout(cfg)
    fn = lib.em_top
    fn.argtypes = [_U8P, _U8P, _U8P, ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint)]
    fn.restype = ctypes.c_int
    config_id = ctypes.c_uint(0)
    rc = fn(
        _buf(weights, weight_layout(cfg).nbytes if batch else 0, "weights"),
        _buf(images, img.nbytes * batch, "images"),
        _buf(tokens, tok.nbytes * batch, "tokens"),
        task,
        batch,
        ctypes.byref(config_id),
    )
    if rc != 0:
        raise csim.CSimError(f"em_top: {lib.em_error().decode()}")
    return config_id.value
