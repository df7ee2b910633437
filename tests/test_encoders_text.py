"""Text encoders with the real packaged all-MiniLM-L6-v2, through ``sbert`` and ``bert``."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest
from real_params import real_config

from pixrec.encoders.base import TextEncoderConfig
from pixrec.encoders.text import build_text_encoder, embed_texts, item_texts, packaged_minilm
from pixrec.encoders.weights import WeightsError
from pixrec.registry import UnknownNameError

CAPTIONS = [
    "a red summer dress for a beach wedding",
    "red beach dress for summer weddings",
    "how to repair the gearbox of an old car engine",
    "quick pasta recipe with tomato and basil",
]


@pytest.fixture(scope="module")
def sbert():  # fp32: the reference the other backends are compared with
    return build_text_encoder(real_config(TextEncoderConfig, name="sbert", backend="torch"))


@pytest.fixture(scope="module")
def bert():
    return build_text_encoder(real_config(TextEncoderConfig, name="bert", pooling="mean", backend="torch"))


def test_packaged_minilm_through_both_entries(sbert, bert):
    assert sbert.dim == bert.dim == 384
    assert sbert.source.kind == bert.source.kind == "packaged"
    a, b = sbert.encode(CAPTIONS), bert.encode(CAPTIONS)
    assert a.shape == b.shape == (4, 384) and a.dtype == np.float32
    np.testing.assert_allclose(b, a, atol=1e-5)  # mean-pooled AutoModel == SentenceTransformer
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_similar_captions_are_closer(sbert):
    e = sbert.encode(CAPTIONS)
    sim = e @ e.T
    assert sim[0, 1] > 0.7
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[0, 3] + 0.3


def test_cls_pooling_differs_and_a_local_dir_loads(sbert):
    cls = build_text_encoder(real_config(TextEncoderConfig, name="bert", pooling="cls", backend="torch",
                                         weights=packaged_minilm()))
    assert cls.source.kind == "local"
    out = cls.encode(CAPTIONS[:2])
    assert out.shape == (2, 384) and not np.allclose(out, sbert.encode(CAPTIONS[:2]), atol=1e-3)


def test_item_text_cleaning_and_empty_fields():
    items = pl.DataFrame({
        "title": ["  Red\tdress\n", None, "", "Caf\u00e9\x00 \u200bnoir", None],
        "tag": ["fashion", "food", None, "food", None],
        "description": [None, "pasta   recipe", "   ", None, "\x07 \n"],
    })
    got = item_texts(items, ("title", "tag", "description")).to_list()
    assert got == ["Red dress | fashion", "food | pasta recipe", None, "Caf\u00e9 noir | food", None]
    assert item_texts(items, ("description",)).to_list() == [None, "pasta recipe", None, None, None]


def test_embed_texts_masks_empty_items_and_is_deterministic(sbert):
    items = pl.DataFrame({
        "item_idx": np.arange(5, dtype=np.int32),
        "item_id": ["i0", "i1", "i2", "i3", "i4"],
        "title": [CAPTIONS[0], None, CAPTIONS[2], "", CAPTIONS[3]],
        "tag": ["fashion", None, "cars", None, "food"],
        "description": ["long " * 300, None, None, " \t ", None],  # item 0 is truncated at max_length
    })
    cfg = real_config(TextEncoderConfig, name="sbert", batch_size=2, max_length=32, backend="torch")
    first = embed_texts(items, cfg, encoder=sbert, progress=False)
    second = embed_texts(items, cfg, encoder=sbert, progress=False)
    assert first.mask.tolist() == [True, False, True, False, True]
    assert first.meta["n_masked"] == 2
    assert first.meta["masked"] == {"empty text": {"count": 2, "item_ids": ["i1", "i3"]}}
    assert not first.vectors[~first.mask].any() and np.abs(first.vectors[first.mask]).sum(1).min() > 0
    assert first.vectors.tobytes() == second.vectors.tobytes()
    # batching and length ordering do not change an item's vector
    alone = sbert.encode([CAPTIONS[2] + " | cars"])
    np.testing.assert_allclose(first.vectors[2], alone[0], atol=1e-5)


def test_config_and_name_errors():
    with pytest.raises(UnknownNameError, match=r"valid names are \['bert', 'sbert'\]"):
        build_text_encoder(real_config(TextEncoderConfig, name="word2vec"))
    with pytest.raises(ValueError, match="fields"):
        real_config(TextEncoderConfig, fields=["title", "body"])
    with pytest.raises(ValueError, match="pooling applies to 'bert' only"):
        build_text_encoder(real_config(TextEncoderConfig, name="sbert", pooling="cls"))
    with pytest.raises(ValueError, match="max_length"):
        build_text_encoder(real_config(TextEncoderConfig, name="bert", max_length=4096))


def test_hub_name_offline_fails_fast_with_a_hint():
    t = time.perf_counter()
    with pytest.raises(WeightsError, match="offline"):
        build_text_encoder(real_config(TextEncoderConfig, name="bert", weights="bert-base-uncased"))
    assert time.perf_counter() - t < 10


@pytest.mark.slow
def test_onnx_and_bf16_backends_track_fp32_and_are_deterministic(sbert):
    """The exported graph is the torch model (fp32: rounding only); int8 and bf16 stay close; each
    backend gives the same bytes from a fresh build (the ONNX export is redone at run time)."""
    items = pl.DataFrame({"item_idx": np.arange(4, dtype=np.int32), "item_id": ["a", "b", "c", "d"],
                          "title": CAPTIONS, "tag": ["x", None, "y", "z"], "description": [None] * 4})
    ref = sbert.encode(CAPTIONS)
    for backend, min_cos in (("onnx", 0.99999), ("onnx-int8", 0.97), ("torch-bf16", 0.999)):
        cfg = real_config(TextEncoderConfig, name="sbert", backend=backend, batch_size=2)
        enc = build_text_encoder(cfg)
        cos = (enc.encode(CAPTIONS) * ref).sum(1)
        assert cos.min() > min_cos, (backend, cos)
        first = embed_texts(items, cfg, encoder=enc, progress=False)
        again = embed_texts(items, cfg, encoder=build_text_encoder(cfg), progress=False)
        assert first.vectors.tobytes() == again.vectors.tobytes(), backend
        assert first.meta["config"]["backend"] == backend
        assert ("onnxruntime" in first.meta["versions"]) == backend.startswith("onnx")
        assert first.meta.get("autocast") == ("bfloat16" if backend == "torch-bf16" else None)
    # the bert entry exports its own AutoModel + pooling: the same vectors as sbert's, through ORT
    bert = build_text_encoder(real_config(TextEncoderConfig, name="bert", backend="onnx"))
    np.testing.assert_allclose(bert.encode(CAPTIONS), ref, atol=1e-5)


def test_backend_errors():
    from pixrec.errors import InputError

    with pytest.raises(InputError, match=r"encoders\.text\.backend must be one of \['torch', 'torch-bf16', "
                                         r"'onnx', 'onnx-int8'\], got 'tensorrt'"):
        real_config(TextEncoderConfig, backend="tensorrt")
    with pytest.raises(InputError, match="onnx-int8 runs on the CPU"):
        build_text_encoder(real_config(TextEncoderConfig, backend="onnx-int8", device="cuda"))
