"""Items nobody has seen — not in training, not in the split's item table — read from an
``item_info.csv``-layout file and embedded exactly as the embed stages embedded the catalogue: the
encoders and settings recorded in ``data/embeddings/<side>/meta.json`` (not today's params.yaml), and
for covers the finalize step the embed-images stage fitted on training items (the pixel encoder's
scaling and PCA, ``data/embeddings/image/fitted/``) applied, never refitted."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from pixrec import schema
from pixrec.config import from_mapping
from pixrec.data.raw import RawReport, list_cover_files, parse_items, read_raw_items
from pixrec.encoders.base import ImageEncoder, ImageEncoderConfig, TextEncoderConfig, read_fitted
from pixrec.encoders.driver import Finalize, embed
from pixrec.encoders.image import ImageSide
from pixrec.encoders.text import embed_texts
from pixrec.errors import InputError


@dataclass
class NewItems:
    """``items``: the file's items (item_id, counts, title, tag, description, tag_idx, cover_path);
    ``text`` / ``image``: float32 (M, d) vectors and bool (M,) masks, row-aligned with ``items``;
    ``report``: what was repaired or masked, one line each."""

    items: pl.DataFrame
    text: tuple[np.ndarray, np.ndarray]
    image: tuple[np.ndarray, np.ndarray]
    report: list[str]


def read_new_items(
    source: pl.DataFrame | Path | str, catalogue: pl.DataFrame, covers_dir: Path | None
) -> tuple[pl.DataFrame, list[str]]:
    """The items of ``source`` (an item_info.csv-layout file or frame, parsed as the split parses the
    catalogue's), with ``tag_idx`` from the catalogue's tags (0 = a tag it never had) and
    ``cover_path`` (file name in ``covers_dir``, null when there is none). An id already in the
    catalogue or given twice is an error; so is a missing column."""
    report = RawReport()
    if isinstance(source, pl.DataFrame):
        missing = [c for c in schema.ITEM_COLUMNS if c not in source.columns]
        if missing:
            raise InputError(f"new items: missing column(s) {missing}; expected the item_info.csv columns "
                             f"{list(schema.ITEM_COLUMNS)}")
        if source.height == 0:
            raise InputError("new items: the frame has no rows")
        text = source.select(pl.col(c).cast(pl.Utf8).fill_null("") for c in schema.ITEM_COLUMNS)
        items = parse_items(text.with_row_index("_row", offset=1), report)
    else:
        items = read_raw_items(Path(source), report)
    path = source if not isinstance(source, pl.DataFrame) else "new items"
    if twice := report.counts.get("items: duplicated item_id (later row dropped)"):
        raise InputError(f"{path}: {twice} item_id(s) given twice; give each new item once")
    known = items.filter(pl.col(schema.ITEM_ID).is_in(catalogue[schema.ITEM_ID].implode()))
    if known.height:
        raise InputError(f"{path}: item {known[schema.ITEM_ID][0]!r} is already in the catalogue "
                         f"({known.height} such); score-new places new items, `pixrec similar` known ones")
    tags = catalogue.filter(pl.col(schema.TAG_IDX) > 0).select(schema.TAG, schema.TAG_IDX).unique(schema.TAG)
    items = items.join(tags, on=schema.TAG, how="left", maintain_order="left").with_columns(
        pl.col(schema.TAG_IDX).fill_null(0))
    unknown = items.filter(pl.col(schema.TAG).is_not_null() & (pl.col(schema.TAG_IDX) == 0))
    report.add("items: tag the catalogue never had (no tag token)", unknown.height)
    if covers_dir is not None and not Path(covers_dir).is_dir():
        raise InputError(f"{covers_dir}: no such covers directory (expected <item_id>.jpg files)")
    covers = list_cover_files(Path(covers_dir)) if covers_dir is not None else {}
    items = items.with_columns(pl.col(schema.ITEM_ID)
                               .replace_strict(covers, default=None, return_dtype=pl.Utf8)
                               .alias(schema.COVER_PATH))
    report.add("items: no cover file (image masked)", items[schema.COVER_PATH].null_count())
    return items.drop("_row"), report.lines()


def _recorded_config(cls, side_dir: Path):
    """The encoder config the embed stage recorded in its meta.json, on the CPU."""
    path = Path(side_dir) / schema.EMB_META_FILE
    if not path.is_file():
        raise InputError(f"{path}: missing; run the embed stages (dvc repro embed-images embed-text)")
    return from_mapping(cls, {**json.loads(path.read_text(encoding="utf-8"))["config"], "device": "cpu"},
                        f"{path} config")


def load_new_items(source: pl.DataFrame | Path | str, catalogue: pl.DataFrame, covers_dir: Path | None,
                   embeddings_dir: Path) -> NewItems:
    """:func:`read_new_items`, then each side embedded as its embed stage embedded the catalogue."""
    items, report = read_new_items(source, catalogue, covers_dir)
    text_config = _recorded_config(TextEncoderConfig, Path(embeddings_dir) / "text")
    image_dir = Path(embeddings_dir) / "image"
    image_config = _recorded_config(ImageEncoderConfig, image_dir)
    text = embed_texts(items, text_config, progress=False)
    if items[schema.COVER_PATH].null_count() == items.height:  # no cover at all: every image masked
        dim = json.loads((image_dir / schema.EMB_META_FILE).read_text(encoding="utf-8"))["dim"]
        image = (np.zeros((items.height, dim), dtype=np.float32), np.zeros(items.height, dtype=bool))
    else:
        done = embed(FittedImageSide(items, Path(covers_dir), image_config, read_fitted(image_dir)),
                     progress=False)
        image = (done.vectors, done.mask)
        report += [f"{v['count']} {reason} (image masked)" for reason, v in done.meta["masked"].items()
                   if reason != "no cover file"]
    return NewItems(items, (text.vectors, text.mask), image, report)


class FittedImageSide(ImageSide):
    """The embed-images adapter for covers seen after the stage: its finalize step applies what the
    stage fitted (``fitted``) instead of fitting again on these few covers."""

    def __init__(self, items: pl.DataFrame, covers_dir: Path, config: ImageEncoderConfig,
                 fitted: dict[str, np.ndarray]) -> None:
        super().__init__(items, covers_dir, config)
        self.fitted = fitted

    def finalizer(self, encoder: ImageEncoder | None, cache_dir: Path | None) -> Finalize:
        return lambda raw, usable: (encoder.apply_fitted(raw, self.fitted), {})
