"""Model inputs: history and scaling use training data only."""

from __future__ import annotations

import numpy as np

from pixrec.data.dataset import SplitData
from pixrec.features import Embeddings, build_item_features, count_stats


def embeddings(data: SplitData, rng: np.random.Generator) -> dict[str, Embeddings]:
    return {side: Embeddings(rng.normal(size=(data.n_items, d)).astype(np.float32),
                             np.ones(data.n_items, dtype=bool), {})
            for side, d in (("image", 6), ("text", 10))}


def test_user_history_ignores_held_out_items(tiny_split):
    data = SplitData.load(tiny_split)
    emb = embeddings(data, np.random.default_rng(0))
    before = build_item_features(data, emb, count_stats(data))
    # rewrite the content of every item that is only ever held out (valid/test), never trained on
    held_only = np.setdiff1d(np.concatenate([data.valid.items, data.test.items]), data.train.items)
    assert len(held_only) > 0
    for side in emb.values():
        side.vectors[held_only] += 10.0
    emb["image"].mask[held_only] = False
    after = build_item_features(data, emb, count_stats(data))
    np.testing.assert_array_equal(before.user_text.numpy(), after.user_text.numpy())
    np.testing.assert_array_equal(before.user_image.numpy(), after.user_image.numpy())
    # ... while the history is a real mean of the user's training items
    u = int(data.train.users[0])
    items = data.train.items[data.train.users == u]
    row = emb["text"].vectors[items] * np.sqrt(10) / np.linalg.norm(emb["text"].vectors[items], axis=1,
                                                                    keepdims=True)
    np.testing.assert_allclose(after.user_text[u].numpy(), row.mean(axis=0), rtol=1e-5, atol=1e-5)


def test_count_scaling_uses_training_items_only(tiny_split):
    data = SplitData.load(tiny_split)
    stats = count_stats(data)
    cold = data.cold_items
    raw = data.items.select("view_number").to_numpy().ravel()
    warm = np.log1p(raw[~cold & np.isfinite(raw)])
    assert abs(stats.mean[0] - warm.mean()) < 1e-9
