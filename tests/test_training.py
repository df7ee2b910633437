"""The one training loop on the real tiny dataset, for both model families: each learns, is
deterministic bit for bit, and the loop refuses what it cannot honour."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from real_params import real_config, real_section

from pixrec.config import from_mapping
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.features import Embeddings
from pixrec.models import family
from pixrec.negatives import NegativesConfig, training_negatives
from pixrec.training import train


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


# small, fast versions of each model's real params.yaml section
SHRINK = {
    "fusion": {"model": {"dim": 16, "heads": 2, "layers": 1, "mlp_hidden": 32, "dropout": 0.1},
               "train": {"lr": 5e-3, "batch_size": 512, "epochs": 6, "patience": 6, "val_users": 200,
                         "seed": 5, "threads": 2}},
    "two_tower": {"model": {"dim": 16, "negatives": 64},
                  "train": {"epochs": 15, "patience": 15, "val_users": 200, "seed": 5, "threads": 2}},
}


def section(name: str, **train_overrides):
    raw = real_section(name)
    for part, values in SHRINK[name].items():
        raw[part] = {**raw[part], **values, **(train_overrides if part == "train" else {})}
    return from_mapping(family(name).section, raw, name)


def run(setup, name: str, out, **train_overrides):
    data, emb, negs = setup
    fam = family(name)
    s = section(name, **train_overrides)
    task = fam.task(data, emb, negs if fam.reads_negatives else None, s, torch.device("cpu"))
    metrics = train(task, s.train, out)
    return metrics, torch.load(out / "model.pt", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fusion", "two_tower"])
def test_training_improves_validation_ndcg_and_is_deterministic(setup, tmp_path, name):
    m1, c1 = run(setup, name, tmp_path / "a")
    assert m1["best_val_ndcg@10"] > m1["untrained_val_ndcg@10"] + 0.02
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert len(meta["history"]) == m1["epochs_run"]
    m2, c2 = run(setup, name, tmp_path / "b")
    assert m1 == m2
    for key in c1["state_dict"]:
        torch.testing.assert_close(c1["state_dict"][key], c2["state_dict"][key], rtol=0, atol=0)


@pytest.mark.slow
def test_the_two_tower_checkpoint_carries_the_cold_offset_chosen_on_validation(setup, tmp_path):
    _, ckpt = run(setup, "two_tower", tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    curve = meta["cold_offset_curve"]
    assert ckpt["cold_offset"] == meta["cold_offset"] and str(meta["cold_offset"]) in curve
    assert sorted(float(k) for k in curve) == sorted(section("two_tower").select.cold_offset)


def test_more_epochs_than_negatives_is_refused(setup, tmp_path):
    with pytest.raises(InputError, match=r"raise negatives\.epochs"):
        run(setup, "fusion", tmp_path, epochs=7)
