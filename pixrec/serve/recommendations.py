"""The recommend stage's files (``data/recommendations/``) and reading them back.

``<model>.parquet``: ``user_id, rank, item_id, score`` — each user's top-k unseen items, best first,
sorted by user (item_idx order of users.parquet) then rank; a user whose model ranks fewer than k
unseen items has fewer rows (counted in the manifest, never padded). For a model that compares items
by vectors (two_tower), ``<model>.items.npy`` and ``<model>.users.npy``: float32 (n_items, D) and
(n_users, D), row = item_idx / user_idx, its item and user vectors as its scoring computed them, so
``pixrec similar`` needs no torch and ``pixrec score-new`` does not run the user tower again.
``meta.json`` (the manifest): ``k``, the ``headline`` model, and per model its file, counts and, with
vectors, their files and the sha256 of the checkpoint they came from (a retrained model's vectors are
recomputed, never read stale). The Python API and the commands read them; no timings, so a rerun
writes the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from pixrec import schema
from pixrec.atomic import atomic_dir, write_json
from pixrec.errors import InputError

if TYPE_CHECKING:
    from pixrec.serve.topk import TopK  # scipy: the readers here never need it

COLUMNS = (schema.USER_ID, schema.REC_RANK, schema.ITEM_ID, schema.REC_SCORE)
SIDES = ("items", "users")  # <model>.items.npy, <model>.users.npy: a dot-product model's vectors


def lists_frame(top: TopK, user_ids: np.ndarray, item_ids: np.ndarray) -> pl.DataFrame:
    """``top`` as rows (user_id, rank 1..k, item_id, score), empty slots dropped. ``user_ids`` /
    ``item_ids``: the id of each user_idx / item_idx (object arrays of str)."""
    rows, cols = np.nonzero(top.items >= 0)  # row-major: by user, then rank
    return pl.DataFrame({
        schema.USER_ID: user_ids[top.users[rows]],
        schema.REC_RANK: (cols + 1).astype(np.int32),
        schema.ITEM_ID: item_ids[top.items[rows, cols]],
        schema.REC_SCORE: top.scores[rows, cols],
    }, schema={schema.USER_ID: pl.Utf8, schema.REC_RANK: pl.Int32, schema.ITEM_ID: pl.Utf8,
               schema.REC_SCORE: pl.Float32})


def write_recommendations(out_dir: Path, frames: dict[str, pl.DataFrame], manifest: dict,
                          vectors: dict[str, dict[str, np.ndarray]] | None = None) -> None:
    """Every model's frame as ``<model>.parquet``, ``vectors`` ({model: {side: array}}) as
    ``<model>.<side>.npy`` and the manifest, atomically."""
    with atomic_dir(Path(out_dir)) as tmp:
        for name, frame in frames.items():
            frame.write_parquet(tmp / f"{name}{schema.RECS_SUFFIX}", statistics=False)
        for name, sides in (vectors or {}).items():
            for side, array in sides.items():
                np.save(tmp / f"{name}.{side}.npy", np.ascontiguousarray(array, dtype=np.float32))
        write_json(tmp / schema.RECS_META_FILE, manifest)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def vectors_entry(name: str, checkpoint: Path) -> dict:
    """The manifest's record of model ``name``'s stored vectors, computed from ``checkpoint``."""
    return {**{side: f"{name}.{side}.npy" for side in SIDES}, "checkpoint": Path(checkpoint).name,
            "checkpoint_sha256": file_sha256(checkpoint)}


class Recommendations:
    """The recommend stage's output directory, read lazily."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        path = self.dir / schema.RECS_META_FILE
        if not path.is_file():
            raise InputError(f"{path}: missing; run the recommend stage (dvc repro recommend)")
        self.manifest = json.loads(path.read_text(encoding="utf-8"))
        self.k: int = int(self.manifest["k"])
        self.batch_users: int = int(self.manifest["batch_users"])  # users per score block
        self.headline: str = self.manifest["headline"]
        self.models: list[str] = list(self.manifest["models"])

    def lists(self, model: str, user_ids: list[str], k: int) -> pl.DataFrame:
        """The stored top-``k`` (``k`` <= the stage's k) of ``user_ids`` by ``model``, in that user order."""
        if model not in self.models:
            raise InputError(f"{self.dir}: no recommendations by {model!r} (have {self.models}); add it "
                             "to recommend.models in params.yaml and run dvc repro recommend")
        if k > self.k:
            raise InputError(f"k={k} but the recommend stage kept {self.k} per user; raise recommend.k in "
                             "params.yaml and run dvc repro recommend")
        order = pl.DataFrame({schema.USER_ID: user_ids, "_order": np.arange(len(user_ids))},
                             schema={schema.USER_ID: pl.Utf8, "_order": pl.Int64})
        return (pl.scan_parquet(self.dir / f"{model}{schema.RECS_SUFFIX}")
                .filter(pl.col(schema.USER_ID).is_in(user_ids) & (pl.col(schema.REC_RANK) <= k))
                .join(order.lazy(), on=schema.USER_ID)
                .sort("_order", schema.REC_RANK).drop("_order").collect())

    def vectors(self, model: str, side: str, models_dir: Path) -> np.ndarray | None:
        """float32 (n_items | n_users, D): ``model``'s stored ``side`` vectors (``items`` | ``users``), or
        None when none were stored or the checkpoint in ``models_dir/<model>/`` is not (or no longer)
        the one they came from."""
        entry = self.manifest["models"].get(model, {}).get("vectors")
        if entry is None or not (self.dir / entry[side]).is_file():
            return None
        checkpoint = Path(models_dir) / model / entry["checkpoint"]
        if not checkpoint.is_file() or file_sha256(checkpoint) != entry["checkpoint_sha256"]:
            return None
        return np.load(self.dir / entry[side])
