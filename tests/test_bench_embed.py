"""``pixrec bench --part text-backends``: every text backend against fp32 torch, real packaged model."""

from __future__ import annotations

import polars as pl
import pytest
from real_params import real_config

from pixrec import schema


@pytest.mark.slow
def test_text_backends_rows_compare_each_backend_with_fp32(tmp_path):
    from pixrec.bench.embed import bench_text_backends, read_text_items
    from pixrec.encoders.base import TEXT_BACKENDS, TextEncoderConfig

    items = pl.DataFrame({schema.ITEM_ID: [f"i{k}" for k in range(6)],
                          schema.TITLE: ["red summer dress", "beach wedding", "", "pasta recipe",
                                         "car engine", None],
                          schema.TAG: ["fashion", "fashion", None, "food", "cars", "food"],
                          schema.DESCRIPTION: ["a long description " * 5, None, None, "tomato basil",
                                               None, None]})
    items.write_csv(tmp_path / "item_info.csv")
    read = read_text_items(tmp_path / "item_info.csv")
    assert read.columns == [schema.ITEM_ID, schema.TITLE, schema.TAG, schema.DESCRIPTION] and read.height == 6

    rows = bench_text_backends(real_config(TextEncoderConfig, name="sbert", batch_size=2), read)
    assert [r["backend"] for r in rows] == list(TEXT_BACKENDS)
    by = {r["backend"]: r for r in rows}
    assert by["torch"]["speedup"] == 1.0 and by["torch"]["cos_mean"] == 1.0
    assert all(r["n"] == 5 and r["texts_per_s"] > 0 for r in rows)  # the all-empty item is masked
    assert by["onnx"]["cos_min"] > 0.9999 and by["torch-bf16"]["cos_min"] > 0.999
    assert 0.95 < by["onnx-int8"]["cos_mean"] < 1.0  # quantised: close, not equal
