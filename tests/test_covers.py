"""Covers as users hold them: any common suffix, placeholders, huge images, no covers at all. Run
through the real embed-images code (pixel encoder) on real image files."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

from pixrec import schema
from pixrec.config import from_mapping
from pixrec.data.raw import RawReport, list_covers
from pixrec.encoders.base import ImageEncoderConfig
from pixrec.encoders.image import embed_images

PIXEL = {"name": "pixel", "weights": None, "arch": None, "image_size": 64, "batch_size": 4, "num_workers": 0,
         "pca_dim": 4, "min_cover_px": 16, "device": "cpu"}


def picture(seed: int, size: tuple[int, int] = (48, 40)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height``: enough for PIL's size checks at open."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def items_table(covers: dict[str, str | None]) -> pl.DataFrame:
    ids = list(covers)
    return pl.DataFrame({schema.ITEM_ID: ids, schema.COVER_PATH: [covers[i] for i in ids],
                         schema.N_TRAIN: [1] * len(ids)},
                        schema={schema.ITEM_ID: pl.Utf8, schema.COVER_PATH: pl.Utf8,
                                schema.N_TRAIN: pl.Int32})


def test_suffixes_any_case_are_found_and_one_per_item(tmp_path):
    covers = tmp_path / schema.RAW_COVERS
    covers.mkdir()
    for name in ("a.JPG", "b.jpeg", "c.png", "c.jpg", "d.Png", ".e.jpg", "f.gif", "notes.txt"):
        (covers / name).write_bytes(b"x")
    report = RawReport()
    assert list_covers(tmp_path, report) == {"a": "a.JPG", "b": "b.jpeg", "c": "c.jpg", "d": "d.Png"}
    assert report.examples["covers: several files for one item (kept the first of "
                           "['.jpg', '.jpeg', '.png', '.webp'])"] == [{"file": "c.png"}]


def test_placeholders_and_huge_covers_are_masked_or_reduced_and_counted(tmp_path):
    covers = tmp_path / schema.RAW_COVERS
    covers.mkdir()
    for k, (name, fmt) in enumerate((("i1.JPG", "JPEG"), ("i2.png", "PNG"), ("i3.jpeg", "JPEG"),
                                     ("i4.jpg", "JPEG"))):
        picture(k).save(covers / name, format=fmt)
    picture(9, (1, 1)).save(covers / "tiny.png")  # a 1x1 "no image" pixel
    Image.new("RGB", (120, 90), (200, 200, 200)).save(covers / "flat.jpg")  # a grey "no image" card
    side = 9_500  # 90 Mpx: over PIL's decompression-bomb warning limit (89.5 Mpx), under its error
    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    huge = np.stack([np.broadcast_to(ramp, (side, side)), np.broadcast_to(ramp[:, None], (side, side)),
                     np.full((side, side), 90, np.uint8)], axis=-1)
    Image.fromarray(huge).save(covers / "huge.jpg", quality=30)
    del huge
    png_header_only(covers / "bomb.png", 20_000, 20_000)  # 400 Mpx: PIL refuses to open it
    files = {"i1": "i1.JPG", "i2": "i2.png", "i3": "i3.jpeg", "i4": "i4.jpg", "tiny": "tiny.png",
             "flat": "flat.jpg", "huge": "huge.jpg", "bomb": "bomb.png"}
    items = items_table({k: f"{schema.RAW_COVERS}/{v}" for k, v in files.items()})
    config = from_mapping(ImageEncoderConfig, PIXEL, "encoders.image")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # PIL's raw warning never escapes
        result = embed_images(items, tmp_path, config, progress=False)
    mask = dict(zip(items[schema.ITEM_ID].to_list(), result.mask.tolist(), strict=True))
    assert mask == {"i1": True, "i2": True, "i3": True, "i4": True, "tiny": False, "flat": False,
                    "huge": True, "bomb": False}
    masked = result.meta["masked"]
    placeholder = next(k for k in masked if k.startswith("placeholder cover"))
    assert sorted(masked[placeholder]["item_ids"]) == ["flat", "tiny"]
    assert next(v for k, v in masked.items() if k.startswith("cover too large"))["item_ids"] == ["bomb"]
    assert result.meta["decoded_reduced"]["n"] == 1 and result.meta["decoded_reduced"]["items"] == ["huge"]
    assert np.isfinite(result.vectors).all() and not result.vectors[~result.mask].any()


def test_pixel_encoder_with_no_usable_cover_masks_every_item(tmp_path):
    (tmp_path / schema.RAW_COVERS).mkdir()
    items = items_table({f"i{k}": None for k in range(5)})
    config = from_mapping(ImageEncoderConfig, PIXEL, "encoders.image")
    result = embed_images(items, tmp_path, config, progress=False)
    assert not result.mask.any() and result.vectors.shape == (5, 4) and not result.vectors.any()
    assert result.meta["n_masked"] == 5 and result.meta["masked"]["no cover file"]["count"] == 5
    assert result.meta["pixel"]["n_fit"] == 0


@pytest.mark.parametrize("min_px", [16, 64])
def test_min_cover_px_is_the_documented_threshold(tmp_path, min_px):
    (tmp_path / schema.RAW_COVERS).mkdir()
    for k in range(3):
        picture(k, (48, 40)).save(tmp_path / schema.RAW_COVERS / f"i{k}.jpg")
    items = items_table({f"i{k}": f"{schema.RAW_COVERS}/i{k}.jpg" for k in range(3)})
    config = from_mapping(ImageEncoderConfig, {**PIXEL, "min_cover_px": min_px}, "encoders.image")
    result = embed_images(items, tmp_path, config, progress=False)
    assert result.mask.all() == (min_px <= 40)  # 48 x 40 covers: placeholders only under a 64 px minimum
