"""New items embedded as the embed stages embedded the catalogue: the recorded encoder settings, the
pixel encoder's scaling and PCA saved by the stage and applied (not refitted), one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from real_params import real_config

from pixrec import schema
from pixrec.encoders.base import ImageEncoderConfig, TextEncoderConfig, read_fitted
from pixrec.encoders.image import run_embed_images
from pixrec.encoders.text import run_embed_text
from pixrec.errors import InputError
from pixrec.serve.new_items import load_new_items, read_new_items


@pytest.fixture(scope="module")
def embedded(tiny_raw, tiny_split, tmp_path_factory) -> Path:
    """The embed stages' outputs for the tiny split (the real stage functions)."""
    out = tmp_path_factory.mktemp("embeddings")
    run_embed_images(tiny_split, tiny_raw, out / "image", real_config(ImageEncoderConfig), progress=False)
    run_embed_text(tiny_split, out / "text", real_config(TextEncoderConfig), progress=False)
    return out


def resubmit(tiny_raw: Path, tiny_split: Path, out: Path, n: int) -> tuple[Path, list[int]]:
    """``n`` catalogue items with a cover, as a new-item file under new ids (``new_<id>``) with their
    covers copied: (the file, their item_idx in the catalogue)."""
    items = pl.read_parquet(tiny_split / schema.ITEMS_FILE)
    pick = items.filter(pl.col(schema.COVER_PATH).is_not_null()).head(n)
    rows = pl.read_csv(tiny_raw / schema.RAW_ITEMS, infer_schema=False).filter(
        pl.col(schema.ITEM_ID).is_in(pick[schema.ITEM_ID].implode()))
    rows = pick.select(schema.ITEM_ID).join(rows, on=schema.ITEM_ID, maintain_order="left")  # catalogue order
    (out / "covers").mkdir(parents=True)
    for item_id, cover in zip(pick[schema.ITEM_ID], pick[schema.COVER_PATH], strict=True):
        shutil.copy(tiny_raw / cover, out / "covers" / f"new_{item_id}{Path(cover).suffix}")
    renamed = rows.with_columns((pl.lit("new_") + pl.col(schema.ITEM_ID)).alias(schema.ITEM_ID))
    renamed.write_csv(out / "new.csv")
    return out / "new.csv", pick[schema.ITEM_IDX].to_list()


@pytest.mark.slow
def test_resubmitted_items_get_the_catalogues_vectors(tiny_raw, tiny_split, embedded, tmp_path):
    path, idx = resubmit(tiny_raw, tiny_split, tmp_path, 6)
    catalogue = pl.read_parquet(tiny_split / schema.ITEMS_FILE)
    new = load_new_items(path, catalogue, tmp_path / "covers", embedded)
    assert new.items[schema.ITEM_ID].to_list() == [f"new_{i}" for i in catalogue[schema.ITEM_ID].gather(idx)]
    assert new.items[schema.TAG_IDX].to_list() == catalogue[schema.TAG_IDX].gather(idx).to_list()
    image = np.load(embedded / "image" / schema.EMB_FILE)[idx]
    assert new.image[1].all()
    # the stage's scaling and PCA applied (a PCA refitted on 6 covers would have 6 axes, not 64):
    # equal up to the float32 rounding of a matmul over fewer rows
    np.testing.assert_allclose(new.image[0], image, atol=1e-6)
    text = np.load(embedded / "text" / schema.EMB_FILE)[idx]
    cos = (new.text[0] * text).sum(1) / np.linalg.norm(new.text[0], axis=1) / np.linalg.norm(text, axis=1)
    assert new.text[1].all() and cos.min() > 0.9999  # bf16 kernels on other batch shapes
    fitted = read_fitted(embedded / "image")
    assert set(fitted) == {"mean", "std", "weights", "components"} and fitted["components"].shape[0] == 64


@pytest.mark.slow
def test_new_items_without_covers_are_masked_and_reported(tiny_raw, tiny_split, embedded, tmp_path):
    path, _ = resubmit(tiny_raw, tiny_split, tmp_path, 3)
    table = pl.read_csv(path, infer_schema=False).with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("a tag nobody used")).otherwise(pl.col(schema.TAG))
        .alias(schema.TAG))
    table.write_csv(path)
    new = load_new_items(path, pl.read_parquet(tiny_split / schema.ITEMS_FILE), None, embedded)
    assert not new.image[1].any() and not new.image[0].any()
    assert new.items[schema.TAG_IDX][0] == 0
    assert "3 items: no cover file (image masked)" in new.report
    assert "1 items: tag the catalogue never had (no tag token)" in new.report


@pytest.mark.parametrize(("edit", "says"), [
    (lambda t: t.drop(schema.TITLE), "lacks column(s) ['title']"),
    (lambda t: pl.concat([t, t.head(1)]), "given twice"),
    (lambda t: t.with_columns(pl.col(schema.ITEM_ID).str.replace("new_", "")), "already in the catalogue"),
])
def test_bad_new_item_files_are_one_line_errors(tiny_raw, tiny_split, tmp_path, edit, says):
    path, _ = resubmit(tiny_raw, tiny_split, tmp_path, 2)
    edit(pl.read_csv(path, infer_schema=False)).write_csv(path)
    with pytest.raises(InputError) as err:
        read_new_items(path, pl.read_parquet(tiny_split / schema.ITEMS_FILE), tmp_path / "covers")
    assert says in str(err.value) and "\n" not in str(err.value)


def test_missing_covers_directory_is_named(tiny_raw, tiny_split, tmp_path):
    path, _ = resubmit(tiny_raw, tiny_split, tmp_path, 2)
    with pytest.raises(InputError, match="no_such_dir: no such covers directory"):
        read_new_items(path, pl.read_parquet(tiny_split / schema.ITEMS_FILE), tmp_path / "no_such_dir")
