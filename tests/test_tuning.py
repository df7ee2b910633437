"""Tuning on validation: the grid, the choice, and that the tuner never sees test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from real_params import real_config
from toy_split import random_split, write_split

from pixrec import schema
from pixrec.baselines.base import FitContext
from pixrec.config import ConfigError
from pixrec.errors import InputError
from pixrec.evaluation.metrics import ndcg
from pixrec.evaluation.protocols import rank_full
from pixrec.evaluation.tuning import (
    TuneConfig,
    grid,
    label,
    load_validation_split,
    tune_all,
    write_tuning,
)
from pixrec.features import Embeddings
from pixrec.models.cold_lift import Yardstick

KNOBS = {"most_popular": {}, "item_knn": {"k": [1, 3, 20]},
         "ease": {"lam": [0.5, 5.0, 50.0], "max_gib": 1.0}}


def config(names=("most_popular", "item_knn", "ease"), knobs=KNOBS, valid_users=None) -> TuneConfig:
    return real_config(TuneConfig, names=list(names), seed=1, batch_users=7, valid_users=valid_users,
                       knobs=knobs)


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    return write_split(random_split(80, 40, n_cold=4, seed=9), tmp_path_factory.mktemp("tune") / "split")


def test_grid_and_labels_by_hand():
    knobs = {"factors": [8, 16], "alpha": 1.0, "reg": [0.1, 1.0]}
    points = grid(knobs)
    assert points == [{"factors": 8, "alpha": 1.0, "reg": 0.1}, {"factors": 8, "alpha": 1.0, "reg": 1.0},
                      {"factors": 16, "alpha": 1.0, "reg": 0.1}, {"factors": 16, "alpha": 1.0, "reg": 1.0}]
    assert label(points[1], knobs) == "factors=8,reg=1.0"
    assert grid({}) == [{}] and label({}, {}) == "fixed"
    with pytest.raises(InputError, match="empty list"):
        grid({"k": []})


def test_validation_view_ranks_valid_items_with_train_masked(split_dir):
    view = load_validation_split(split_dir)
    from pixrec.data.dataset import SplitData

    full = SplitData.load(split_dir)
    np.testing.assert_array_equal(view.test.items, full.valid.items)  # the targets are validation
    assert len(view.valid) == 0
    assert (view.seen_matrix != full.train_matrix).nnz == 0  # the mask is train only
    assert schema.FIRST_SEEN not in view.items.columns and schema.IS_TEST_USER not in view.users.columns


def test_choice_is_the_best_validation_ndcg(split_dir):
    view = load_validation_split(split_dir)
    tuned = tune_all(view, None, config(), log=quiet)
    for name in ("item_knn", "ease"):  # each point of the curve, recomputed independently
        ctx = FitContext(view, None, 1)
        for point in grid(KNOBS[name]):
            ranks = rank_full(ctx.fit(name, point), view.test.users, view.test.items,
                              view.train_matrix, 1000).ranks
            assert tuned.curves[name][label(point, KNOBS[name])] == pytest.approx(ndcg(ranks, 10).mean())
        best = max(tuned.curves[name].values())
        assert tuned.best[name] == best
        assert tuned.curves[name][label(tuned.chosen[name], KNOBS[name])] == best
    assert tuned.chosen["ease"]["max_gib"] == 1.0 and tuned.chosen["most_popular"] == {}
    assert len(set(tuned.curves["ease"].values())) > 1, "the grid must matter for this test to mean much"


def test_tuning_never_reads_test(split_dir, tmp_path):
    """Without test.parquet, or with its items shuffled, tuning makes the same choices on the same
    curves: the tuner is handed no test interaction at all."""
    ref = tune_all(load_validation_split(split_dir), None, config(), log=quiet)
    no_test = tmp_path / "no_test"
    no_test.mkdir()
    for f in split_dir.iterdir():
        if f.name != schema.TEST_FILE:
            (no_test / f.name).write_bytes(f.read_bytes())
    for directory in (no_test, _with_shuffled_test(split_dir, tmp_path / "shuffled")):
        other = tune_all(load_validation_split(directory), None, config(), log=quiet)
        assert other.chosen == ref.chosen and other.curves == ref.curves


def _with_shuffled_test(src, dst):
    import polars as pl

    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    test = pl.read_parquet(src / schema.TEST_FILE)
    perm = np.random.default_rng(0).permutation(test.height)
    shuffled = test.with_columns(pl.Series(schema.ITEM_IDX, test[schema.ITEM_IDX].to_numpy()[perm]))
    shuffled.write_parquet(dst / schema.TEST_FILE)
    return dst


def test_valid_users_sample_is_seeded(split_dir):
    view = load_validation_split(split_dir)
    a = tune_all(view, None, config(names=["item_knn"], valid_users=30), log=quiet)
    b = tune_all(view, None, config(names=["item_knn"], valid_users=30), log=quiet)
    full = tune_all(view, None, config(names=["item_knn"]), log=quiet)
    assert a.curves == b.curves and a.curves != full.curves


def test_components_must_be_tuned_first_and_knobs_checked_before_fitting(split_dir):
    view = load_validation_split(split_dir)
    knobs = {**KNOBS, "content_knn": {"image_weight": 0.5},
             "hybrid": {"cf": "ease", "weight": [0.5], "cold_bonus": 0.0}}
    fitted = []
    with pytest.raises(InputError, match=r"hybrid is built from \['ease'\]"):
        tune_all(view, None, config(names=["content_knn", "hybrid", "ease"], knobs=knobs), log=fitted.append)
    assert fitted == []  # nothing was fitted before the refusal
    # every grid point is typed by the baseline's knob section when the config is read
    with pytest.raises(ConfigError, match=r"baselines\.knobs\.item_knn\.K: unknown key; valid keys are \['k"):
        config(knobs={**KNOBS, "item_knn": {"k": 3, "K": 4}})
    with pytest.raises(ConfigError, match=r"baselines\.knobs\.ease\.lam: expected a number, got 'big'"):
        config(knobs={**KNOBS, "ease": {"lam": [1.0, "big"], "max_gib": 1.0}})
    assert config(knobs={**KNOBS, "item_knn": {"k": ["3", 5]}}).points("item_knn") == [{"k": 3}, {"k": 5}]
    with pytest.raises(ConfigError, match=r"baselines\.knobs has no entry for"):
        config(names=["item_knn", "bpr"])


def test_the_yardstick_is_the_best_tuned_baseline_on_each_protocol(tiny_split, tmp_path):
    """What the tune stage writes is what a model's cold lift is chosen against: the best validation
    NDCG@10 on full ranking and on cold items (recomputed here at the chosen knobs over the users
    whose validation item has no training interaction), each from whichever baseline reached it."""
    view = load_validation_split(tiny_split)
    rng = np.random.default_rng(0)
    emb = {side: Embeddings(rng.normal(size=(view.n_items, 8)).astype(np.float32),
                            np.ones(view.n_items, dtype=bool), {}) for side in ("image", "text")}
    # the hybrid's fixed cold bonus lifts never-clicked items: the one baseline here that finds them
    knobs = {**KNOBS, "content_knn": {"image_weight": [0.0, 1.0]},
             "hybrid": {"cf": "item_knn", "weight": [0.5], "cold_bonus": 5.0}}
    tuned = tune_all(view, emb, config(names=["item_knn", "content_knn", "hybrid"], knobs=knobs), log=quiet)
    cold = view.cold_items[view.test.items]
    ctx = FitContext(view, emb, 1)
    ctx.chosen.update(tuned.chosen)  # the hybrid refits item_knn at its chosen knobs
    for name in tuned.chosen:
        ranks = rank_full(ctx.fit(name, tuned.chosen[name]), view.test.users,
                          view.test.items, view.train_matrix, 1000).ranks
        assert tuned.cold[name] == pytest.approx(ndcg(ranks, 10)[cold].mean())
    assert cold.any() and tuned.cold["hybrid"] > 0 == tuned.cold["item_knn"]
    write_tuning(tuned, tmp_path / "tuning", tmp_path / "tuning.json", {})
    yard = Yardstick.from_tuning(tmp_path / "tuning.json")
    assert yard.full == max(tuned.best.values()) == tuned.best[yard.full_by]
    assert (yard.cold, yard.cold_by) == (tuned.cold["hybrid"], "hybrid")
    assert (yard.full, yard.full_by) == (tuned.best["item_knn"], "item_knn")
    saved = json.loads((tmp_path / "tuning.json").read_text())
    del saved["item_knn"]["valid_cold_ndcg@10"]  # written before the cold figure was recorded
    (tmp_path / "tuning.json").write_text(json.dumps(saved))
    with pytest.raises(InputError, match=r"tuning\.json: \['item_knn'\] have no valid_cold_ndcg@10; re-run"):
        Yardstick.from_tuning(tmp_path / "tuning.json")
