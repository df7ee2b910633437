"""Configs, registries and the on-disk contract shared by the image and text encoders.

This module imports no torch, so stages can build and validate a config before paying for the
heavy imports. Output contract (``data/embeddings/<side>/``): ``embeddings.npy`` float32
(n_items, dim) row-aligned with ``items.parquet``; ``mask.npy`` bool (n_items,), True = usable
input; ``meta.json``. A masked row is all zeros and *always* has mask False: the model replaces it
with a learned "absent" vector, so a zero is never mistaken for content.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pixrec import schema
from pixrec.atomic import atomic_dir
from pixrec.config import ConfigError, section, to_mapping
from pixrec.errors import InputError
from pixrec.registry import Registry

log = logging.getLogger("pixrec.encoders")

IMAGE_ENCODERS: Registry = Registry("image encoder")  # filled by pixrec.encoders.image / .pixel
TEXT_ENCODERS: Registry = Registry("text encoder")  # filled by pixrec.encoders.text

TEXT_FIELDS = (schema.TITLE, schema.TAG, schema.DESCRIPTION)
EXAMPLE_IDS = 20  # item ids kept per masking reason in meta.json
FITTED_KEY = "fitted"  # finalize's metadata entry {name: array}, saved as <out>/fitted/<name>.npy


DEVICES = ("auto", "cpu", "cuda")
TEXT_BACKENDS = ("torch", "torch-bf16", "onnx", "onnx-int8")
AUTOCAST_DTYPE = "float16"  # CUDA only: the pretrained torch encoders run under fp16 autocast


def check_device(device: str, where: str) -> None:
    if device not in DEVICES:
        raise InputError(f"{where} must be one of {list(DEVICES)}, got {device!r}")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without one is an error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device: cuda requested but torch sees no CUDA device (use auto or cpu)")
    return device


def config_meta(config: Any) -> dict[str, Any]:
    """The config as recorded in ``meta.json``: without ``device``, so a CPU run's bytes do not depend
    on whether it was asked for ``auto`` or ``cpu`` (a CUDA run says ``device: cuda`` at top level).
    Tuples become lists, as JSON reads them back (a shard's header is compared with this)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in to_mapping(config).items() if k != "device"}


@section
class ImageEncoderConfig:
    """``encoders.image`` in params.yaml."""

    name: str  # pixel | resnet | clip | dino
    weights: str | None  # hub name, local file/dir, http(s) URL, or "random" (tests only)
    arch: str | None  # resnet18 | ViT-B-32 | dino_vits16 | a timm model name ...
    image_size: int
    batch_size: int
    num_workers: int
    pca_dim: int  # pixel only; 0 = no PCA
    min_cover_px: int  # a cover narrower or lower than this is a placeholder: masked, counted
    device: str  # auto | cpu | cuda; a run option, not part of the output's identity

    def __post_init__(self) -> None:
        check_device(self.device, "encoders.image.device")
        if self.image_size < 16:
            raise ConfigError(f"encoders.image.image_size must be >= 16, got {self.image_size}")
        if self.batch_size < 1:
            raise ConfigError(f"encoders.image.batch_size must be >= 1, got {self.batch_size}")
        if self.num_workers < 0:
            raise ConfigError(f"encoders.image.num_workers must be >= 0, got {self.num_workers}")
        if self.pca_dim < 0:
            raise ConfigError(f"encoders.image.pca_dim must be >= 0, got {self.pca_dim}")


@section
class TextEncoderConfig:
    """``encoders.text`` in params.yaml."""

    name: str  # sbert | bert
    weights: str | None  # None = the packaged all-MiniLM-L6-v2
    pooling: str  # bert only: mean | cls
    batch_size: int
    max_length: int
    fields: tuple[str, ...]  # a subset of TEXT_FIELDS, in the order they are joined
    device: str  # auto | cpu | cuda; a run option, not part of the output's identity
    backend: str  # torch | torch-bf16 | onnx | onnx-int8 (ONNX Runtime, CPU): see .onnx_backend

    def __post_init__(self) -> None:
        check_device(self.device, "encoders.text.device")
        bad = [f for f in self.fields if f not in TEXT_FIELDS]
        if bad or not self.fields:
            raise ConfigError(f"encoders.text.fields: {bad or 'empty'} invalid; "
                              f"choose from {list(TEXT_FIELDS)}")
        if self.pooling not in ("mean", "cls"):
            raise ConfigError(f"encoders.text.pooling must be 'mean' or 'cls', got {self.pooling!r}")
        if self.backend not in TEXT_BACKENDS:
            raise ConfigError(f"encoders.text.backend must be one of {list(TEXT_BACKENDS)}, "
                              f"got {self.backend!r}")
        if self.batch_size < 1 or self.max_length < 2:
            raise ConfigError("encoders.text.batch_size must be >= 1 and max_length >= 2")


@dataclass(frozen=True)
class Preprocess:
    """How a cover becomes a (3, size, size) uint8 tensor, and how the model normalises it.

    ``mode``: ``crop`` = resize the shorter side to ``resize`` then centre-crop ``size``;
    ``squash`` = resize straight to ``size`` x ``size`` (keeps the whole cover).
    """

    size: int
    resize: int
    mode: str = "crop"
    interpolation: str = "bilinear"  # bilinear | bicubic
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


class ImageEncoder:
    """One image encoder, built from an :class:`ImageEncoderConfig`.

    ``encode`` maps a uint8 batch (B, 3, S, S) from :attr:`preprocess` to float32 (B, raw_dim);
    ``finalize`` post-processes all usable rows at once (the pixel encoder fits its PCA there,
    on training items only). Subclasses register with ``@IMAGE_ENCODERS.register(name)``.
    ``to(device)`` moves the model; the default keeps the encoder on the CPU (pixel: decode-bound).
    """

    name: str
    arch: str | None
    preprocess: Preprocess
    raw_dim: int  # width of encode()'s output
    source: Any  # pixrec.encoders.weights.WeightsSource
    device: str = "cpu"

    def encode(self, images: Any) -> Any:  # torch.Tensor uint8 (B, 3, S, S) -> float32 (B, raw_dim)
        raise NotImplementedError

    def to(self, device: str) -> ImageEncoder:
        return self

    def finalize(
        self, vectors: np.ndarray, usable: np.ndarray, fit: np.ndarray
    ) -> tuple[np.ndarray, dict]:
        """``vectors`` (n, raw_dim) -> (n, dim) plus metadata; ``fit`` bool (n,) = fit-only rows. What
        it fitted goes in the metadata under :data:`FITTED_KEY` ({name: array}), so that items embedded
        later (``pixrec score-new``) get the same map through :meth:`apply_fitted`, not a refit."""
        return vectors, {}

    def apply_fitted(self, vectors: np.ndarray, fitted: dict[str, np.ndarray]) -> np.ndarray:
        """``vectors`` (n, raw_dim) -> (n, dim) by what :meth:`finalize` fitted on the training items."""
        return vectors

    @property
    def random_weights(self) -> bool:
        return bool(getattr(self.source, "is_random", False))


class TextEncoder:
    """One text encoder: ``encode(list of n strings) -> float32 (n, dim)``."""

    name: str
    dim: int
    source: Any
    device: str = "cpu"
    backend: str = "torch"  # torch | torch-bf16 | onnx | onnx-int8

    def encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict:
        return {}


class MaskCounter:
    """Masked items by reason: a count and the first :data:`EXAMPLE_IDS` item ids of each."""

    def __init__(self) -> None:
        self.reasons: dict[str, dict[str, Any]] = {}

    def add(self, reason: str, item_ids: Sequence[str]) -> None:
        if not len(item_ids):
            return
        entry = self.reasons.setdefault(reason, {"count": 0, "item_ids": []})
        entry["count"] += len(item_ids)
        room = EXAMPLE_IDS - len(entry["item_ids"])
        entry["item_ids"].extend(list(item_ids)[:max(room, 0)])

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return dict(sorted(self.reasons.items()))


@dataclass
class Embedded:
    """One side's output: ``vectors`` float32 (n_items, dim), ``mask`` bool (n_items,), ``meta``.

    What an embed stage produces and :func:`write_embedded` writes (with the finalize step's fitted
    arrays, its invariants checked here); consumers read it back as :class:`pixrec.features.Embeddings`.
    """

    vectors: np.ndarray
    mask: np.ndarray
    meta: dict = field(default_factory=dict)
    fitted: dict[str, np.ndarray] = field(default_factory=dict)  # the finalize step's fitted arrays

    def __post_init__(self) -> None:
        n = self.vectors.shape[0]
        if self.vectors.dtype != np.float32 or self.vectors.ndim != 2:
            raise TypeError(f"embeddings must be float32 (n, dim), "
                            f"got {self.vectors.dtype} {self.vectors.shape}")
        if self.mask.shape != (n,) or self.mask.dtype != np.bool_:
            raise TypeError(f"mask must be bool ({n},), got {self.mask.dtype} {self.mask.shape}")
        if np.any(self.vectors[~self.mask]):
            raise AssertionError("masked rows must be all zeros")
        bad = np.flatnonzero(self.mask & ~np.isfinite(self.vectors).all(axis=1))
        if bad.size:
            raise ValueError(f"non-finite embedding for usable item_idx {bad[:10].tolist()}")


VOLATILE_META = ("timings_s", "items_per_s", "texts_per_s", "torch_threads")


def write_embedded(result: Embedded, out_dir: Path) -> None:
    """Write the three files atomically: a crash leaves the previous output, never half of one.

    Timings stay out of ``meta.json`` (the stage prints them): the same inputs must give the same
    output bytes, or DVC would see a new hash and re-run everything downstream.
    """
    meta = {k: v for k, v in result.meta.items() if k not in VOLATILE_META}
    with atomic_dir(Path(out_dir)) as tmp:
        np.save(tmp / schema.EMB_FILE, np.ascontiguousarray(result.vectors, dtype=np.float32))
        np.save(tmp / schema.EMB_MASK_FILE, result.mask.astype(np.bool_))
        (tmp / schema.EMB_META_FILE).write_text(
            json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        if result.fitted:
            (tmp / FITTED_KEY).mkdir()
            for name, array in sorted(result.fitted.items()):
                np.save(tmp / FITTED_KEY / f"{name}.npy", array)


def read_fitted(out_dir: Path) -> dict[str, np.ndarray]:
    """What :func:`write_embedded` saved of the finalize step (empty for an encoder that fits nothing)."""
    d = Path(out_dir) / FITTED_KEY
    return {p.stem: np.load(p) for p in sorted(d.glob("*.npy"))} if d.is_dir() else {}


def read_item_columns(split_dir: Path, columns: Sequence[str]) -> pl.DataFrame:
    """``items.parquet`` restricted to ``columns``; checks that row i is item_idx i."""
    path = Path(split_dir) / schema.ITEMS_FILE
    if not path.is_file():
        raise InputError(f"{path}: not found; run the split stage first")
    present = pl.read_parquet_schema(path)
    wanted = list(dict.fromkeys([schema.ITEM_IDX, schema.ITEM_ID, *columns]))
    missing = [c for c in wanted if c not in present]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; re-run the split stage")
    items = pl.read_parquet(path, columns=wanted)
    idx = items[schema.ITEM_IDX].to_numpy()
    if not np.array_equal(idx, np.arange(items.height)):
        first = int(np.flatnonzero(idx != np.arange(items.height))[0])
        raise InputError(f"{path}: row {first} has item_idx {idx[first]}; items must be in item_idx order")
    return items


def machine_threads() -> int:
    """CPU cores this process may use (affinity-aware), shared among torchrun's local processes."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1))))


def warn_random(where: str) -> None:
    log.warning("!!! %s: RANDOM WEIGHTS: these embeddings carry no learned signal; use only in tests "
                "and benchmarks (meta.json says random_weights: true) !!!", where)


__all__ = [
    "FITTED_KEY",
    "IMAGE_ENCODERS",
    "TEXT_ENCODERS",
    "TEXT_FIELDS",
    "Embedded",
    "ImageEncoder",
    "ImageEncoderConfig",
    "MaskCounter",
    "Preprocess",
    "TextEncoder",
    "TextEncoderConfig",
    "config_meta",
    "machine_threads",
    "read_fitted",
    "read_item_columns",
    "resolve_device",
    "warn_random",
    "write_embedded",
]
