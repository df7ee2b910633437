"""Items nobody has seen — not in training, not in the split's item table — read from an
``item_info.csv``-layout file and embedded exactly as the embed stages embedded the catalogue: the
encoders and settings recorded in ``data/embeddings/<side>/meta.json`` (not today's params.yaml), and
for covers the finalize step the embed-images stage fitted on training items (the pixel encoder's
scaling and PCA, ``data/embeddings/image/fitted/``) applied, never refitted.

The file is read by :mod:`.new_item_file`; here each side is embedded, and a cover that cannot be
decoded (corrupt, a placeholder, too large) or a text with no field is masked and noted by item like
the file's own defects, even when every item's is: never a refusal of the batch.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pixrec import schema
from pixrec.config import from_mapping
from pixrec.encoders.base import ImageEncoder, ImageEncoderConfig, TextEncoderConfig, read_fitted
from pixrec.encoders.driver import Finalize, embed
from pixrec.encoders.image import ImageSide
from pixrec.encoders.text import (
    build_text_encoder,
    cached_text_encoder,
    embed_texts,
    item_texts,
    quiet_weights_loading,
)
from pixrec.errors import InputError
from pixrec.serve.new_item_file import INPUTS, Notes, read_new_items


@dataclass
class NewItems:
    """``items``: the file's items (item_id, counts, title, tag, description, tag_idx, cover_path);
    ``text`` / ``image``: float32 (M, d) vectors and bool (M,) masks, row-aligned with ``items``;
    ``notes``: what was repaired or masked, by item."""

    items: pl.DataFrame
    text: tuple[np.ndarray, np.ndarray]
    image: tuple[np.ndarray, np.ndarray]
    notes: Notes

    @property
    def report(self) -> list[str]:
        """Every note, one line each."""
        return self.notes.lines()

    def without_content(self, reads: Collection[str] = INPUTS) -> list[str]:
        """Ids of the items with nothing usable among the inputs ``reads``: no known tag, no count, no
        text, no usable cover. The item tower sees them all alike."""
        has = np.zeros(self.items.height, dtype=bool)
        if "tag" in reads:
            has |= self.items[schema.TAG_IDX].to_numpy() > 0
        if "counts" in reads:
            has |= self.items.select(pl.any_horizontal(pl.col(c).is_not_null() for c in schema.COUNT_COLUMNS)
                                     ).to_series().to_numpy()
        if "text" in reads:
            has |= self.text[1]
        if "image" in reads:
            has |= self.image[1]
        return self.items[schema.ITEM_ID].filter(pl.Series(~has)).to_list()


def _recorded_config(cls, side_dir: Path):
    """The encoder config the embed stage recorded in its meta.json, on the CPU."""
    path = Path(side_dir) / schema.EMB_META_FILE
    if not path.is_file():
        raise InputError(f"{path}: missing; run the embed stages (dvc repro embed-images embed-text)")
    return from_mapping(cls, {**json.loads(path.read_text(encoding="utf-8"))["config"], "device": "cpu"},
                        f"{path} config")


def _recorded_dim(side_dir: Path) -> int:
    return int(json.loads((Path(side_dir) / schema.EMB_META_FILE).read_text(encoding="utf-8"))["dim"])


def _text_encoder(config: TextEncoderConfig):
    """The stored ONNX encoder when an earlier build left one (no torch export, no sentence-transformers
    import), else the encoder built as the stage builds it, without its weights-loading progress bar."""
    cached = cached_text_encoder(config)
    if cached is not None:
        return cached
    with quiet_weights_loading():
        return build_text_encoder(config)


def embed_new_items(items: pl.DataFrame, notes: Notes, covers_dir: Path | None,
                    embeddings_dir: Path) -> NewItems:
    """Each side of :func:`read_new_items`' ``items`` embedded as its embed stage embedded the
    catalogue; masked rows are added to ``notes`` by item. A side with nothing to embed loads no
    encoder."""
    text_dir, image_dir = Path(embeddings_dir) / "text", Path(embeddings_dir) / "image"
    text_config = _recorded_config(TextEncoderConfig, text_dir)
    image_config = _recorded_config(ImageEncoderConfig, image_dir)
    m = items.height
    if item_texts(items, tuple(text_config.fields)).is_null().all():
        text = (np.zeros((m, _recorded_dim(text_dir)), dtype=np.float32), np.zeros(m, dtype=bool))
        masked_text = {"empty text": {"item_ids": items[schema.ITEM_ID].to_list()}}
    else:
        done = embed_texts(items, text_config, progress=False, encoder=_text_encoder(text_config))
        text, masked_text = (done.vectors, done.mask), done.meta["masked"]
    for v in masked_text.values():  # one reason: "empty text"
        notes.add(f"no text ({', '.join(text_config.fields)} all empty; text masked)", v["item_ids"],
                  ("text",), v.get("count"))
    if items[schema.COVER_PATH].null_count() == m:  # no cover at all: every image masked
        image = (np.zeros((m, _recorded_dim(image_dir)), dtype=np.float32), np.zeros(m, dtype=bool))
    else:
        done = embed(FittedImageSide(items, Path(covers_dir), image_config, read_fitted(image_dir)),
                     progress=False)
        image = (done.vectors, done.mask)
        for reason, v in done.meta["masked"].items():
            if reason != "no cover file":  # noted, with the folder, by read_new_items
                notes.add(f"{reason} (image masked)", v["item_ids"], ("image",), v["count"])
    return NewItems(items, text, image, notes)


def load_new_items(source: pl.DataFrame | Path | str, catalogue: pl.DataFrame, covers_dir: Path | None,
                   embeddings_dir: Path) -> NewItems:
    """:func:`read_new_items`, then :func:`embed_new_items`."""
    items, notes = read_new_items(source, catalogue, covers_dir)
    return embed_new_items(items, notes, covers_dir, embeddings_dir)


class FittedImageSide(ImageSide):
    """The embed-images adapter for covers seen after the stage: its finalize step applies what the
    stage fitted (``fitted``) instead of fitting again on these few covers, and an unreadable cover is
    masked and noted by item even when every cover is (no batch-wide refusal: there is no raw folder
    to have got wrong)."""

    def __init__(self, items: pl.DataFrame, covers_dir: Path, config: ImageEncoderConfig,
                 fitted: dict[str, np.ndarray]) -> None:
        super().__init__(items, covers_dir, config)
        self.fitted = fitted

    def finalizer(self, encoder: ImageEncoder | None, cache_dir: Path | None) -> Finalize:
        return lambda raw, usable: (encoder.apply_fitted(raw, self.fitted), {})

    def check_readable(self, paths: list[str | None], status: np.ndarray) -> None:
        """Each unreadable cover is masked and noted; none refuses the batch."""
