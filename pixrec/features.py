"""Item-side inputs of the fusion model, assembled once from the split and the embedding stages.

Counts are lifetime totals (they leak future popularity): they are log1p-transformed and
standardised with statistics from *training items only*; a missing count is imputed with the
training mean and flagged, an item with no count at all gets the "absent" counts token.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from pixrec import schema
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError


@dataclass
class Embeddings:
    """One side's frozen item embeddings: ``vectors`` float32 (n_items, d), ``mask`` bool (n_items,).

    The one in-memory type every consumer reads (the trained models, the content baselines, serving),
    loaded from what the embed stage wrote of a :class:`pixrec.encoders.base.Embedded`.
    """

    vectors: np.ndarray
    mask: np.ndarray
    meta: dict

    @classmethod
    def load(cls, directory: Path, n_items: int) -> Embeddings:
        d = Path(directory)
        for name in (schema.EMB_FILE, schema.EMB_MASK_FILE):
            if not (d / name).is_file():
                raise InputError(f"{d / name}: missing; run the embed stage first")
        vectors = np.load(d / schema.EMB_FILE).astype(np.float32, copy=False)
        mask = np.load(d / schema.EMB_MASK_FILE).astype(bool, copy=False)
        if vectors.shape[0] != n_items or mask.shape != (n_items,):
            raise InputError(
                f"{d}: embeddings have {vectors.shape[0]} rows and mask {mask.shape}, but the item "
                f"table has {n_items} items; re-run the embed stage on this split"
            )
        if not np.isfinite(vectors[mask]).all():
            bad = np.flatnonzero(mask & ~np.isfinite(vectors).all(axis=1))[:10]
            raise InputError(f"{d}: non-finite embedding for usable item_idx {bad.tolist()}")
        meta_path = d / schema.EMB_META_FILE
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return cls(vectors, mask, meta)


def load_embeddings(embeddings_dir: Path, n_items: int) -> dict[str, Embeddings]:
    """``{'image': ..., 'text': ...}`` from ``embeddings_dir/<side>/``."""
    return {side: Embeddings.load(Path(embeddings_dir) / side, n_items) for side in ("image", "text")}


@dataclass
class CountStats:
    """Training-item statistics of log1p counts, kept in the checkpoint for scoring."""

    mean: list[float]
    std: list[float]


def count_stats(data: SplitData) -> CountStats:
    train_items = data.items[schema.N_TRAIN].to_numpy() > 0
    logc = np.log1p(data.items.select(schema.COUNT_COLUMNS).to_numpy().astype(np.float64))[train_items]
    mean = np.nanmean(logc, axis=0)
    std = np.nanstd(logc, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    std = np.where(np.isfinite(std) & (std > 1e-6), std, 1.0)
    return CountStats(mean.tolist(), std.tolist())


@dataclass
class ItemFeatures:
    """Model inputs built once, gathered per batch: item tensors indexed by item_idx, and each
    user's content history (mean of their *training* items' text / image) indexed by user_idx."""

    tag: torch.Tensor  # (n_items,) long, 0 = no tag
    counts: torch.Tensor  # (n_items, 2 * n_counts) float: standardised values, missing flags
    counts_mask: torch.Tensor  # (n_items,) bool: at least one count present
    text: torch.Tensor  # (n_items, d_text) float
    text_mask: torch.Tensor  # (n_items,) bool
    image: torch.Tensor  # (n_items, d_image) float
    image_mask: torch.Tensor  # (n_items,) bool
    known: torch.Tensor  # (n_items,) bool: has a training interaction (item-ID token usable)
    user_text: torch.Tensor | None = None  # (n_users, d_text) float, mean of training items
    user_text_mask: torch.Tensor | None = None  # (n_users,) bool: at least one usable item
    user_image: torch.Tensor | None = None  # (n_users, d_image)
    user_image_mask: torch.Tensor | None = None  # (n_users,) bool

    @property
    def n_items(self) -> int:
        return int(self.tag.shape[0])


def _row_normalise(vectors: np.ndarray) -> np.ndarray:
    """(N, d) -> (N, d) rows scaled to norm sqrt(d), i.e. unit mean square: a fixed per-row map (no
    statistics, so nothing to leak) that puts every encoder's output on one scale for the projection."""
    norm = np.linalg.norm(vectors, axis=1, keepdims=True)
    scale = np.sqrt(vectors.shape[1]) / np.maximum(norm, 1e-12)
    return (vectors * scale).astype(np.float32)


def _history(train: sp.csr_matrix, vectors: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each user's usable training-item vectors: (n_users, d) float32, (n_users,) bool.

    Training interactions only, so nothing of a user's validation or test item leaks in.
    """
    usable = train @ sp.diags(mask.astype(np.float32))  # zero the columns of masked items
    n = np.asarray(usable.sum(axis=1)).ravel()
    mean = (usable @ vectors) / np.maximum(n, 1.0)[:, None]
    return mean.astype(np.float32), n > 0


def build_item_features(
    data: SplitData, embeddings: dict[str, Embeddings], stats: CountStats
) -> ItemFeatures:
    raw = data.items.select(schema.COUNT_COLUMNS).to_numpy().astype(np.float64)
    missing = ~np.isfinite(raw)
    z = (np.log1p(np.where(missing, 0.0, raw)) - np.asarray(stats.mean)) / np.asarray(stats.std)
    z[missing] = 0.0  # = the training mean, and flagged below
    counts = np.concatenate([z, missing.astype(np.float64)], axis=1).astype(np.float32)
    text = _row_normalise(embeddings["text"].vectors)
    image = _row_normalise(embeddings["image"].vectors)
    user_text, user_text_mask = _history(data.train_matrix, text, embeddings["text"].mask)
    user_image, user_image_mask = _history(data.train_matrix, image, embeddings["image"].mask)
    return ItemFeatures(
        tag=torch.from_numpy(data.item_tags.astype(np.int64)),
        counts=torch.from_numpy(counts),
        counts_mask=torch.from_numpy(~missing.all(axis=1)),
        text=torch.from_numpy(text),
        text_mask=torch.from_numpy(embeddings["text"].mask.copy()),
        image=torch.from_numpy(image),
        image_mask=torch.from_numpy(embeddings["image"].mask.copy()),
        known=torch.from_numpy(data.items[schema.N_TRAIN].to_numpy() > 0),
        user_text=torch.from_numpy(user_text),
        user_text_mask=torch.from_numpy(user_text_mask),
        user_image=torch.from_numpy(user_image),
        user_image_mask=torch.from_numpy(user_image_mask),
    )


def to_device(feats: ItemFeatures, device: torch.device) -> ItemFeatures:
    """``feats`` on ``device`` (the same object on the CPU): every per-batch gather stays there."""
    if device.type == "cpu":
        return feats
    moved = {f.name: getattr(feats, f.name) for f in dataclasses.fields(feats)}
    return ItemFeatures(**{k: None if v is None else v.to(device) for k, v in moved.items()})
