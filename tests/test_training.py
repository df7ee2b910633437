"""Training on the real tiny dataset: it learns, and it is deterministic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from real_params import real_config

from pixrec.data.dataset import SplitData
from pixrec.features import Embeddings
from pixrec.model import CHECKPOINT, ModelConfig
from pixrec.negatives import NegativesConfig, training_negatives
from pixrec.training import TrainConfig, train


@pytest.fixture(scope="module")
def setup(tiny_split):
    data = SplitData.load(tiny_split)
    rng = np.random.default_rng(0)
    # stand-in frozen embeddings: random but fixed, so the test exercises the ID/tag/count paths
    emb = {
        side: Embeddings(rng.normal(size=(data.n_items, d)).astype(np.float32),
                         np.ones(data.n_items, dtype=bool), {})
        for side, d in (("image", 8), ("text", 12))
    }
    negs = training_negatives(data, real_config(NegativesConfig, per_positive=4, epochs=6, seed=0))
    return data, emb, negs


def run(setup, tmp_path, **overrides):
    data, emb, negs = setup
    config = real_config(TrainConfig, **{"lr": 5e-3, "batch_size": 512, "epochs": 6, "patience": 6,
                                         "val_users": 200, "seed": 5, "threads": 2, **overrides})
    # dropout draws from torch's generator: the determinism checks below cover it
    model_config = real_config(ModelConfig, dim=16, heads=2, layers=1, mlp_hidden=32, dropout=0.1)
    metrics = train(data, emb, negs, model_config, config, tmp_path)
    return metrics, torch.load(tmp_path / CHECKPOINT, weights_only=True)["state_dict"]


@pytest.mark.slow
def test_training_improves_validation_ndcg_and_is_deterministic(setup, tmp_path):
    m1, w1 = run(setup, tmp_path / "a")
    assert m1["best_val_ndcg@10"] > m1["untrained_val_ndcg@10"] + 0.02
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert len(meta["history"]) == m1["epochs_run"]
    m2, w2 = run(setup, tmp_path / "b")
    assert m1["best_val_ndcg@10"] == m2["best_val_ndcg@10"]
    for key in w1:
        torch.testing.assert_close(w1[key], w2[key], rtol=0, atol=0)


def test_more_epochs_than_negatives_is_refused(setup, tmp_path):
    with pytest.raises(ValueError, match=r"raise negatives\.epochs"):
        run(setup, tmp_path, epochs=7)
