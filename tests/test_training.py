"""The one training loop on the real tiny dataset, for both model families: each learns, is
deterministic bit for bit, and the loop refuses what it cannot honour."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from real_params import real_config, real_section

from pixrec.config import ConfigError, from_mapping
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.features import Embeddings
from pixrec.models import family
from pixrec.models.cold_lift import Yardstick
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
                  "train": {"epochs": 15, "patience": 15, "val_users": 200, "seed": 5, "threads": 2,
                            "ema": 0.5}},  # 2 steps an epoch here: params.yaml's 0.99 would barely move
}


def section(name: str, **train_overrides):
    raw = real_section(name)
    for part, values in SHRINK[name].items():
        raw[part] = {**raw[part], **values, **(train_overrides if part == "train" else {})}
    return from_mapping(family(name).section, raw, name)


# the best tuned baselines' validation NDCG@10 (full, cold) the two-tower's cold lift is chosen against
YARDSTICK = Yardstick(0.1, 0.05, "user_knn", "content_knn")


def run(setup, name: str, out, **train_overrides):
    data, emb, negs = setup
    fam = family(name)
    s = section(name, **train_overrides)
    task = fam.task(data, emb, negs if fam.reads_negatives else None, s, torch.device("cpu"), YARDSTICK)
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
    assert meta["yardstick"] == dataclasses.asdict(YARDSTICK)


def test_more_epochs_than_negatives_is_refused(setup, tmp_path):
    with pytest.raises(InputError, match=r"raise negatives\.epochs"):
        run(setup, "fusion", tmp_path, epochs=7)


@pytest.mark.slow
def test_with_ema_the_kept_weights_are_the_moving_average_of_every_steps_weights(setup, tmp_path):
    """One epoch with train.ema = d: the checkpoint's parameters are e_1 = w_1, e_k = d e_(k-1) +
    (1 - d) w_k over the weights w_k after each step, which the same run with ema 0 takes too."""
    data, emb, _ = setup
    fam, d = family("two_tower"), 0.8
    s = section("two_tower", epochs=1, patience=1, batch_size=32, ema=0.0)
    task = fam.task(data, emb, None, s, torch.device("cpu"), YARDSTICK)
    seen = []  # the module's parameters as each step starts = after the step before
    loss = task.loss
    task.loss = lambda net, *a: (seen.append({k: v.detach().clone() for k, v in
                                              task.module.named_parameters()}), loss(net, *a))[1]
    train(task, s.train, tmp_path / "plain")
    last = torch.load(tmp_path / "plain" / "model.pt", weights_only=True)["state_dict"]
    steps = [*seen[1:], {k: last[k] for k in seen[0]}]  # w_1 .. w_S
    assert len(steps) >= 3
    expected = dict(steps[0])
    for w in steps[1:]:
        expected = {k: d * expected[k] + (1 - d) * w[k] for k in w}
    _, ckpt = run(setup, "two_tower", tmp_path / "ema", epochs=1, patience=1, batch_size=32, ema=d)
    for key, value in expected.items():
        torch.testing.assert_close(ckpt["state_dict"][key], value, rtol=1e-5, atol=1e-6)
    moved = [k for k in expected if not torch.equal(ckpt["state_dict"][k], last[k])]
    assert len(moved) > len(expected) // 2  # not the last step's weights (unread tokens never move)


def test_an_ema_decay_outside_0_1_is_one_line_naming_the_key():
    with pytest.raises(ConfigError, match=r"train\.ema: expected 0 <= ema < 1"):
        section("two_tower", ema=1.0)
