"""Shared fixtures: the real pipeline on a tiny generated dataset, offline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# the CPU kernel paths the stages pin (stages/__init__.py), here too before numpy or torch load: the
# library code the tests call in-process computes the same bytes as the stage subprocesses
from pixrec.numerics import pin_cpu_kernels

pin_cpu_kernels()

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory) -> Path:
    """The ONNX text encoders' cache (pixrec.encoders.onnx_cache) of this test session, not the user's:
    the embed stages the tests run fill it, the serving tests read it (subprocesses inherit it)."""
    path = tmp_path_factory.mktemp("onnx_cache")
    os.environ["PIXREC_ONNX_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> Path:
    """A tiny synthetic dataset in PixelRec layout (the real generator, preset ``tiny``)."""
    from pixrec.data.synthetic import SyntheticConfig, generate

    out = tmp_path_factory.mktemp("tiny") / "raw"
    generate(SyntheticConfig.from_preset("tiny", seed=1), out)
    return out


@pytest.fixture(scope="session")
def tiny_split(tiny_raw, tmp_path_factory) -> Path:
    """The real split of :func:`tiny_raw`."""
    from real_params import real_config

    from pixrec.data.split import SplitConfig, split_raw

    out = tmp_path_factory.mktemp("tiny_split") / "split"
    split_raw(tiny_raw, out, real_config(SplitConfig))
    return out
