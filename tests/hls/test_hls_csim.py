"""The C-simulation build and binding: caching, config checks, and every Cast point's ap_fixed type
against :func:`edgemoe.golden.fixed.core.requantize`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from edgemoe import config, csim, csim_build
from edgemoe.golden.fixed.core import requantize


def test_build_is_cached() -> None:
    cfg = config.preset("tiny")
    first = csim_build.build(cfg)
    mtime = first.stat().st_mtime_ns
    assert csim_build.build(cfg) == first
    assert first.stat().st_mtime_ns == mtime, "an unchanged config and source tree must not rebuild"
    assert first.parent == csim_build.BUILD_ROOT / "tiny"
    assert (first.parent / "edgemoe_config.h").read_text() == csim_build.config_header(cfg)


def test_build_key_follows_config_and_sources(tmp_path: Path) -> None:
    cfg = config.preset("tiny")
    base = csim_build.plan(cfg)
    assert csim_build.plan(cfg) == base, "the plan of one config and source tree is deterministic"
    other = dataclasses.replace(cfg, nonlinear=dataclasses.replace(cfg.nonlinear, gelu_range_log2=2))
    assert other.config_id != cfg.config_id
    p = csim_build.plan(other, header=csim_build.config_header(other))
    assert p.out_dir != base.out_dir, "a config that is not its preset builds in a folder of its own"
    assert p.library.name != base.library.name
    extra = tmp_path / "extra.cpp"
    extra.write_text("int em_extra_probe() { return 1; }\n")
    first = csim_build.plan(cfg, extra_sources=[extra]).library
    assert first != base.library, "an added source changes the library"
    extra.write_text("int em_extra_probe() { return 2; }\n")
    edited = csim_build.plan(cfg, extra_sources=[extra])
    assert edited.library != first, "an edited source changes the library"
    same = [obj for src, obj in edited.objects.items() if src != extra]
    assert same == [obj for src, obj in base.objects.items()], "an edited source recompiles only itself"


def test_failed_build_names_the_command(tmp_path: Path) -> None:
    bad = tmp_path / "broken.cpp"
    bad.write_text("this is not C++;\n")
    with pytest.raises(csim.CSimError, match="broken.cpp"):
        csim_build.build(config.preset("tiny"), extra_sources=[bad])


def test_library_refuses_another_config(sim: csim.CSim) -> None:
    other = dataclasses.replace(sim.cfg, hw=dataclasses.replace(sim.cfg.hw, axi_bits=128))
    with pytest.raises(csim.CSimError, match="config id"):
        csim.CSim(other, sim.path)


def test_cast_points_match_config(sim: csim.CSim) -> None:
    assert sim.cast_points() == [name for name, _ in sim.cfg.formats.items()]


def test_every_cast_point_is_bit_exact(sim: csim.CSim) -> None:
    rng = np.random.default_rng(1)
    lim = 1 << (csim_build.CAST_SOURCE_BITS - 1)
    x = rng.integers(-lim, lim, size=3000, dtype=np.int64)
    x = np.concatenate([x, x >> rng.integers(0, 61, size=x.size), np.arange(-1024, 1025), [lim - 1, -lim]])
    for name, cast in sim.cfg.formats.items():
        f = cast.fmt
        shift = csim_build.CAST_SOURCE_FRAC - f.frac_bits
        # values around the bounds and the rounding midpoints of this format
        edges = np.array([f.min_raw, f.max_raw, f.max_raw + 1, f.min_raw - 1, 0], dtype=np.int64)
        if shift > 0:
            edges = np.concatenate(
                [(edges << shift) + d for d in (-(1 << (shift - 1)), -1, 0, 1, 1 << (shift - 1))]
            )
        got = sim.cast(np.concatenate([x, edges]), name)
        want = requantize(np.concatenate([x, edges]), csim_build.CAST_SOURCE_FRAC, cast)
        assert np.array_equal(got, want), f"Cast point {name} ({f}) differs from core.requantize"


def test_bad_input_is_refused(sim: csim.CSim) -> None:
    with pytest.raises(csim.CSimError, match="unknown Cast point"):
        sim.cast(np.zeros(3, dtype=np.int64), "no_such_point")
    with pytest.raises(csim.CSimError, match="raw integers"):
        sim.cast(np.zeros(3), "act")


def test_two_configs_share_one_process() -> None:
    """Both libraries loaded at once keep their own kernel instances and static buffers."""
    from edgemoe.golden.fixed.moe import moe

    rng = np.random.default_rng(2)
    for _ in range(2):  # alternate: each call must use its own library's buffers
        for name in ("edge-moe", "tiny"):
            cfg = config.preset(name)
            f, m = cfg.formats, cfg.model
            E, He, D = m.experts, m.expert_hidden, m.dim
            x = rng.integers(-(1 << 23), 1 << 23, size=(m.tokens, D))
            w = [
                rng.integers(-(1 << 11), 1 << 11, size=s)
                for s in ((E, D), (E, He, D), (E, He), (E, D, He), (E, D))
            ]
            want, _ = moe(x, *w, cfg)
            got, _ = csim.load(cfg).moe(x, *w)
            assert np.array_equal(got, want), f"{name}: {np.count_nonzero(got != want)} values differ"
            assert f.act.fmt.min_raw <= got.min()
