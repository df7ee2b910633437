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
from pixrec.encoders.text import build_text_encoder, item_texts, run_embed_text
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
    ids = new.items[schema.ITEM_ID].to_list()
    assert f"{', '.join(ids)}: no cover file (no covers folder given; image masked)" in new.report
    assert f"{ids[0]}: a tag the catalogue never had (no tag input)" in new.report


@pytest.mark.slow
def test_corrupt_covers_are_masked_and_named_even_when_every_cover_is(tiny_raw, tiny_split, embedded,
                                                                       tmp_path):
    """One corrupt cover of two or both: each is masked and noted with its item id; no refusal (and
    no hint about the embed stage's --raw, which score-new does not have)."""
    path, _ = resubmit(tiny_raw, tiny_split, tmp_path, 2)
    catalogue = pl.read_parquet(tiny_split / schema.ITEMS_FILE)
    ids = pl.read_csv(path, infer_schema=False)[schema.ITEM_ID].to_list()
    cover = {i: next((tmp_path / "covers").glob(f"{i}.*")) for i in ids}
    cover[ids[0]].write_bytes(b"not an image")
    new = load_new_items(path, catalogue, tmp_path / "covers", embedded)
    assert new.image[1].tolist() == [False, True] and f"{ids[0]}: corrupt image (image masked)" in new.report
    cover[ids[1]].write_bytes(b"not an image either")
    new = load_new_items(path, catalogue, tmp_path / "covers", embedded)
    assert not new.image[1].any() and f"{ids[0]}, {ids[1]}: corrupt image (image masked)" in new.report
    assert new.text[1].all() and new.without_content() == []  # their text is left


def test_notes_name_the_items_and_keep_to_what_the_model_reads(tiny_raw, tiny_split, tmp_path):
    """Every defect of the file is one note naming its items (file order); a note about an input the
    model does not read (counts, for the default item tower) is left out of its lines."""
    path, _ = resubmit(tiny_raw, tiny_split, tmp_path, 3)
    table = pl.read_csv(path, infer_schema=False)
    ids = table[schema.ITEM_ID].to_list()
    row = pl.int_range(pl.len())
    table.with_columns(
        pl.when(row < 2).then(pl.lit("")).otherwise(pl.col(c)).alias(c) for c in schema.COUNT_COLUMNS
    ).with_columns(
        pl.when(row == 2).then(pl.lit("many")).otherwise(pl.col("view_number")).alias("view_number"),
        pl.when(row == 1).then(pl.lit("")).otherwise(pl.col(schema.DESCRIPTION)).alias(schema.DESCRIPTION),
    ).write_csv(path)
    _, notes = read_new_items(path, pl.read_parquet(tiny_split / schema.ITEMS_FILE), tmp_path / "covers")
    lines = notes.lines()
    assert f"{ids[0]}, {ids[1]}: no counts (the counts input is absent)" in lines
    assert f"{ids[2]}: view_number not a non-negative number (set missing, imputed)" in lines
    assert f"{ids[1]}: empty description" in lines
    assert notes.lines(("tag", "text", "image")) == [f"{ids[1]}: empty description"]


@pytest.mark.slow
def test_the_embed_stage_leaves_its_onnx_encoder_for_later_runs(tiny_split, embedded, tmp_path, monkeypatch):
    """The embed-text stage (``embedded`` ran it) stores its ONNX graph and tokenizer: a later run gets
    the same vectors from ONNX Runtime and the tokenizers library alone. A cache without the entry
    gets None, and the next build stores it."""
    from pixrec.encoders.onnx_cache import CachedTextEncoder
    from pixrec.encoders.text import cached_text_encoder

    config = real_config(TextEncoderConfig)
    cached = cached_text_encoder(config)
    assert isinstance(cached, CachedTextEncoder)
    texts = item_texts(pl.read_parquet(tiny_split / schema.ITEMS_FILE).head(7), config.fields).to_list()
    built = build_text_encoder(config)
    np.testing.assert_allclose(cached.encode(texts), built.encode(texts), atol=1e-6)
    assert cached.dim == built.dim and cached.describe() == built.describe()
    monkeypatch.setenv("PIXREC_ONNX_CACHE", str(tmp_path / "empty"))
    assert cached_text_encoder(config) is None
    build_text_encoder(config)
    assert isinstance(cached_text_encoder(config), CachedTextEncoder)


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
