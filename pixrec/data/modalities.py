"""Which inputs a dataset lacks altogether: no usable cover, no text, no counts, no tags.

Many public recommendation datasets have text and no images (or the reverse). The pipeline runs on
them with the missing token masked for every item; this module says so once, in words, for the
ablation (a cell that would remove only what is absent trains nothing: it is the full model) and the
report ("no images in this dataset").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from pixrec import schema


def _masked(side_dir: Path) -> tuple[bool, str]:
    """(no item usable, the masked reasons in words) for one embedding side."""
    mask = np.load(side_dir / schema.EMB_MASK_FILE)
    meta_path = side_dir / schema.EMB_META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    reasons = ", ".join(f"{v.get('count', 0):,} {k}" for k, v in (meta.get("masked") or {}).items())
    return not mask.any(), reasons


def empty_modalities(split_dir: Path, embeddings_dir: Path) -> dict[str, str]:
    """``{token: sentence}`` for each model token with no usable input for any item."""
    out: dict[str, str] = {}
    for token, what in (("image", "no images in this dataset: no item has a usable cover"),
                        ("text", "no text in this dataset: no item has a usable title, tag or description")):
        empty, reasons = _masked(Path(embeddings_dir) / token)
        if empty:
            out[token] = f"{what} ({reasons}); the {token} token is masked for every item"
    items = pl.read_parquet(Path(split_dir) / schema.ITEMS_FILE, columns=[*schema.COUNT_COLUMNS, schema.TAG_IDX])
    if items.select(pl.all_horizontal(pl.col(schema.COUNT_COLUMNS).is_null()).all()).item():
        out["counts"] = "no counts in this dataset: every count column is empty; the counts token is masked"
    if items.select((pl.col(schema.TAG_IDX) == 0).all()).item():
        out["tag"] = "no tags in this dataset: every item has the empty tag"
    return out


__all__ = ["empty_modalities"]
