"""The ctypes binding of the C-simulated HLS kernels (built by :mod:`edgemoe.csim_build`).

Every entry point takes and returns raw integers (``int64`` arrays, ``raw * 2**-frac_bits``),
so tests compare them with :mod:`edgemoe.golden.fixed` by ``np.array_equal``::

    sim = csim.load(cfg)
    y_raw = sim.linear(x_raw, w_raw, b_raw, Epilogue.BIAS)
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from edgemoe.config import Config, Epilogue, FixedFormat, NonlinearFunction
from edgemoe.csim_build import CSimError, build

_I64P = ctypes.POINTER(ctypes.c_int64)


def _in(a: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``a`` as a C-contiguous int64 array of ``shape``; CSimError naming ``name`` otherwise."""
    a = np.asarray(a)
    if a.shape != tuple(shape):
        raise CSimError(f"{name}: expected shape {tuple(shape)}, got {a.shape}")
    if a.dtype.kind not in "iu":
        raise CSimError(f"{name}: expected raw integers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _ptr(a: np.ndarray) -> ctypes._Pointer:
    return a.ctypes.data_as(_I64P)


class CSim:
    """The loaded C-simulation library of one config, with one method per kernel entry point."""

    def __init__(self, cfg: Config, path: Path) -> None:
        self.cfg = cfg
        self.path = path
        self.lib = ctypes.CDLL(str(path))
        self.lib.em_config_id.restype = ctypes.c_uint32
        self.lib.em_error.restype = ctypes.c_char_p
        lib_id = int(self.lib.em_config_id())
        if lib_id != cfg.config_id:
            raise CSimError(
                f"{path} was built for config id {lib_id:#010x}, config '{cfg.name}' has "
                f"{cfg.config_id:#010x}; rebuild with csim_build.build(cfg, force=True)"
            )

    def _call(self, fn: str, *args: object) -> None:
        rc = getattr(self.lib, fn)(*args)
        if rc != 0:
            raise CSimError(f"{fn}: {self.lib.em_error().decode()}")

    # -- casts (the header's ap_fixed typedefs against core.requantize) ------------------------
    def cast_points(self) -> list[str]:
        """Names of the Cast points the library exposes through :meth:`cast`."""
        self.lib.em_cast_point_name.restype = ctypes.c_char_p
        names = []
        while (name := self.lib.em_cast_point_name(len(names))) is not None:
            names.append(name.decode())
        return names

    def cast(self, raw: np.ndarray, point: str) -> np.ndarray:
        """Cast raw values of ap_fixed<62, 30> (csim_build.CAST_SOURCE_*) to Cast point ``point``."""
        names = self.cast_points()
        if point not in names:
            raise CSimError(f"cast: unknown Cast point '{point}'; known: {', '.join(names)}")
        x = _in(raw, np.shape(raw), "raw").ravel()
        out = np.empty_like(x)
        self._call("em_cast", _ptr(x), ctypes.c_int(x.size), ctypes.c_int(names.index(point)), _ptr(out))
        return out.reshape(np.shape(raw))

    # -- the unified linear unit ---------------------------------------------------------------
    def linear(
        self,
        x_raw: np.ndarray,
        w_raw: np.ndarray,
        b_raw: np.ndarray | None,
        epilogue: Epilogue = Epilogue.BIAS,
        *,
        kind: str = "mlp",
        scores_raw: np.ndarray | None = None,
        acc_raw: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """The linear unit (hls/include/linear.h) on one layer, like ``golden.fixed.linear.linear``.

        Args:
            x_raw: ``[R, in]`` inputs (``formats.act``; ``formats.pixel`` for kind "patch").
            w_raw: ``[out, in]`` weights (``formats.linear_weight``; ``formats.patch_weight``).
            b_raw: ``[out]`` bias (``formats.bias``; ``formats.attn_bias`` for kind "attn"), None for none.
            epilogue: what the unit does with a finished accumulator (``edgemoe.config.Epilogue``).
            kind: "mlp", "attn" or "patch": which formats the layer reads.
            scores_raw, acc_raw, rows: expert_accumulate only (gate scores ``[R]``, buffer ``[N, out]``,
                token index ``[R]`` of each row).

        Returns:
            ``[R, out]`` in ``formats.act``, or the updated buffer ``[N, out]`` (expert_accumulate).
        """
        f = self.cfg.formats
        kinds = {
            "mlp": (0, f.act, f.linear_weight, f.bias),
            "attn": (1, f.act, f.linear_weight, f.attn_bias),
            "patch": (2, f.pixel, f.patch_weight, f.bias),
        }
        if kind not in kinds:
            raise CSimError(f"linear: unknown kind '{kind}'; known: {', '.join(kinds)}")
        code, x_cast, w_cast, b_cast = kinds[kind]
        if not isinstance(epilogue, Epilogue):
            raise CSimError(
                f"linear: epilogue must be one of {', '.join(e.name for e in Epilogue)}, got {epilogue!r}"
            )
        w = _in(w_raw, np.shape(w_raw), "linear: weights")
        if w.ndim != 2:
            raise CSimError(f"linear: weights must be [out, in], got shape {w.shape}")
        M, K = w.shape
        x = _in(x_raw, (np.shape(x_raw)[0], K), "linear: input")
        R = x.shape[0]
        b = np.zeros(M, dtype=np.int64) if b_raw is None else _in(b_raw, (M,), "linear: bias")
        _check_range(x, x_cast.fmt, "linear: input")
        _check_range(w, w_cast.fmt, "linear: weights")
        _check_range(b, b_cast.fmt, "linear: bias")
        if epilogue is Epilogue.EXPERT_ACCUMULATE:
            if scores_raw is None or acc_raw is None or rows is None:
                raise CSimError("linear: expert_accumulate needs scores_raw, acc_raw and rows")
            scores = _in(scores_raw, (R,), "linear: gate scores")
            _check_range(scores, f.gate_score.fmt, "linear: gate scores")
            y = _in(acc_raw, (np.shape(acc_raw)[0], M), "linear: output buffer").copy()
            _check_range(y, f.act.fmt, "linear: output buffer")
            tokens = _in(rows, (R,), "linear: rows")
        else:
            scores = np.zeros(R, dtype=np.int64)
            tokens = np.arange(R, dtype=np.int64)
            y = np.zeros((R, M), dtype=np.int64)
        self._call(
            "em_linear",
            ctypes.c_int(code),
            _ptr(x),
            ctypes.c_int(R),
            ctypes.c_int(K),
            _ptr(w),
            ctypes.c_int(M),
            _ptr(b),
            ctypes.c_int(epilogue),
            _ptr(scores),
            _ptr(tokens),
            ctypes.c_int(y.shape[0]),
            _ptr(y),
        )
        return y

    # -- nonlinear functions -------------------------------------------------------------------
    def nonlinear(self, function: NonlinearFunction | str, x_raw: np.ndarray) -> np.ndarray:
        """One nonlinear function (hls/include/nonlinear.h) elementwise, at the model's formats.

        ``function``: a :class:`~edgemoe.config.NonlinearFunction` or its name in lower case:
        "exp_score" (exp_neg of raw values with ``attn_score``'s fraction bits, into ``exp_out``),
        "exp_act" (same with ``act``'s fraction bits), "reciprocal" (``softmax_sum`` to
        ``softmax_recip``), "rsqrt" (``ln_var`` to ``ln_rstd``), "gelu" (``act`` to ``act``).
        """
        known = {f.name.lower(): f for f in NonlinearFunction}
        if not isinstance(function, NonlinearFunction):
            if function not in known:
                raise CSimError(f"nonlinear: unknown function '{function}'; known: {', '.join(known)}")
            function = known[function]
        x = _in(x_raw, np.shape(x_raw), "nonlinear: input")
        flat = x.ravel()
        out = np.empty_like(flat)
        self._call("em_nonlinear", ctypes.c_int(function), _ptr(flat), ctypes.c_int(flat.size), _ptr(out))
        return out.reshape(x.shape)

    def softmax(self, x_raw: np.ndarray) -> np.ndarray:
        """Softmax over the last axis (at most ``experts`` values) of ``act`` logits into ``gate_score``."""
        x = _in(x_raw, np.shape(x_raw), "softmax: input")
        _check_range(x, self.cfg.formats.act.fmt, "softmax: input")
        n = x.shape[-1]
        flat = x.reshape(-1, n)
        out = np.empty_like(flat)
        self._call("em_softmax", _ptr(flat), ctypes.c_int(flat.shape[0]), ctypes.c_int(n), _ptr(out))
        return out.reshape(x.shape)

    # -- LayerNorm ---------------------------------------------------------------------------
    def layernorm(self, x_raw: np.ndarray, gamma_raw: np.ndarray, beta_raw: np.ndarray) -> np.ndarray:
        """LayerNorm (hls/include/layernorm.h) of tokens ``[R, dim]`` (``act``), gamma/beta in ``norm``.

        Rows go through the unit ``tokens`` at a time (the size of its buffer).
        """
        f, D = self.cfg.formats, self.cfg.model.dim
        x = _in(x_raw, (np.shape(x_raw)[0], D), "layernorm: input")
        g = _in(gamma_raw, (D,), "layernorm: gamma")
        b = _in(beta_raw, (D,), "layernorm: beta")
        _check_range(x, f.act.fmt, "layernorm: input")
        _check_range(g, f.norm.fmt, "layernorm: gamma")
        _check_range(b, f.norm.fmt, "layernorm: beta")
        out = np.empty_like(x)
        step = self.cfg.model.tokens
        for r0 in range(0, x.shape[0], step):
            xs, ys = np.ascontiguousarray(x[r0 : r0 + step]), np.empty_like(x[r0 : r0 + step])
            self._call("em_layernorm", _ptr(xs), ctypes.c_int(xs.shape[0]), _ptr(g), _ptr(b), _ptr(ys))
            out[r0 : r0 + step] = ys
        return out

    # -- reordered attention -------------------------------------------------------------------
    def attention(self, q_raw: np.ndarray, k_raw: np.ndarray, v_raw: np.ndarray) -> np.ndarray:
        """Reordered attention (hls/include/attention.h) on q, k, v ``[tokens, dim]`` in ``act``."""
        f, m = self.cfg.formats, self.cfg.model
        shape = (m.tokens, m.dim)
        q, k, v = (_in(a, shape, f"attention: {n}") for a, n in ((q_raw, "q"), (k_raw, "k"), (v_raw, "v")))
        for a, n in ((q, "q"), (k, "k"), (v, "v")):
            _check_range(a, f.act.fmt, f"attention: {n}")
        out = np.empty_like(q)
        self._call("em_attention", _ptr(q), _ptr(k), _ptr(v), _ptr(out))
        return out

    # -- mixture of experts ------------------------------------------------------------------
    def moe(
        self,
        x_raw: np.ndarray,
        gate_w_raw: np.ndarray,
        w1_raw: np.ndarray,
        b1_raw: np.ndarray,
        w2_raw: np.ndarray,
        b2_raw: np.ndarray,
    ) -> tuple[np.ndarray, dict[str, object]]:
        """The MoE layer (hls/include/moe.h) on tokens ``[tokens, dim]``, like ``golden.fixed.moe.moe``.

        Returns the output ``[N, D]`` and the routing: ``logits``, ``scores`` ``[N, E]``, ``experts``
        ``[N, top_k]``, ``queues`` (per expert, token indices), ``fetched`` (experts in fetch order).
        """
        f, m = self.cfg.formats, self.cfg.model
        N, D, E, He, K = m.tokens, m.dim, m.experts, m.expert_hidden, m.top_k
        x = _in(x_raw, (N, D), "moe: input")
        g = _in(gate_w_raw, (E, D), "moe: gate weights")
        w1 = _in(w1_raw, (E, He, D), "moe: fc1 weights")
        b1 = _in(b1_raw, (E, He), "moe: fc1 bias")
        w2 = _in(w2_raw, (E, D, He), "moe: fc2 weights")
        b2 = _in(b2_raw, (E, D), "moe: fc2 bias")
        _check_range(x, f.act.fmt, "moe: input")
        for a, what in ((g, "gate weights"), (w1, "fc1 weights"), (w2, "fc2 weights")):
            _check_range(a, f.linear_weight.fmt, f"moe: {what}")
        for a, what in ((b1, "fc1 bias"), (b2, "fc2 bias")):
            _check_range(a, f.bias.fmt, f"moe: {what}")
        y = np.empty((N, D), dtype=np.int64)
        logits = np.empty((N, E), dtype=np.int64)
        scores = np.empty((N, E), dtype=np.int64)
        experts = np.empty((N, K), dtype=np.int64)
        counts = np.empty(E, dtype=np.int64)
        fetched = np.empty(E, dtype=np.int64)
        self._call(
            "em_moe", *(_ptr(a) for a in (x, g, w1, b1, w2, b2, y, logits, scores, experts, counts, fetched))
        )
        chosen = np.zeros((N, E), dtype=bool)
        np.put_along_axis(chosen, experts, True, axis=-1)
        queues = [np.flatnonzero(chosen[:, e]) for e in range(E)]
        if [q.size for q in queues] != counts.tolist():
            raise CSimError(f"moe: queue lengths {counts.tolist()} disagree with the selected experts")
        routing = {
            "logits": logits,
            "scores": scores,
            "experts": experts,
            "queues": queues,
            "fetched": [int(e) for e in fetched if e >= 0],
        }
        return y, routing

    # -- patch embedding ---------------------------------------------------------------------
    def patch_embed(
        self, pixels_raw: np.ndarray, w_raw: np.ndarray, b_raw: np.ndarray, pos_raw: np.ndarray
    ) -> np.ndarray:
        """Patch embedding (hls/include/patch_embed.h) of one image, like ``golden.fixed.linear.patch_embed``.

        Args:
            pixels_raw: ``[C, H, W]`` in ``pixel``; w_raw: ``[D, C, p, p]`` or ``[D, C·p·p]`` in
                ``patch_weight``; b_raw: ``[D]`` in ``bias``; pos_raw: ``[N, D]`` in ``pos_embed``.

        Returns:
            ``[N, D]`` tokens in ``act``.
        """
        f, m = self.cfg.formats, self.cfg.model
        px = _in(pixels_raw, (m.in_chans, m.image_h, m.image_w), "patch_embed: pixels")
        w = _in(np.reshape(w_raw, (np.shape(w_raw)[0], -1)), (m.dim, m.patch_in), "patch_embed: weights")
        b = _in(b_raw, (m.dim,), "patch_embed: bias")
        pos = _in(pos_raw, (m.tokens, m.dim), "patch_embed: pos_embed")
        _check_range(px, f.pixel.fmt, "patch_embed: pixels")
        _check_range(w, f.patch_weight.fmt, "patch_embed: weights")
        _check_range(b, f.bias.fmt, "patch_embed: bias")
        _check_range(pos, f.pos_embed.fmt, "patch_embed: pos_embed")
        out = np.empty((m.tokens, m.dim), dtype=np.int64)
        self._call("em_patch_embed", _ptr(px), _ptr(w), _ptr(b), _ptr(pos), _ptr(out))
        return out


def _check_range(raw: np.ndarray, fmt: FixedFormat, what: str) -> None:
    """CSimError naming ``what`` unless every raw value lies in ``fmt`` (the kernel would wrap it)."""
    if raw.size and (raw.min() < fmt.min_raw or raw.max() > fmt.max_raw):
        raise CSimError(
            f"{what}: raw values [{int(raw.min())}, {int(raw.max())}] lie outside {fmt} "
            f"[{fmt.min_raw}, {fmt.max_raw}]"
        )


_LOADED: dict[Path, CSim] = {}


def load(cfg: Config, **build_args: object) -> CSim:
    """Build if needed and load the C-simulation library of ``cfg`` (one load per library file)."""
    path = build(cfg, **build_args)  # type: ignore[arg-type]
    if path not in _LOADED:
        _LOADED[path] = CSim(cfg, path)
    return _LOADED[path]
