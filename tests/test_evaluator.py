"""The protocols and the evaluator: masking, pessimistic ties, Random's closed form, the stage end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from real_params import real_config
from toy_split import make_split, random_split, write_split

from pixrec import schema
from pixrec.baselines.base import FitContext, make_baseline
from pixrec.errors import InputError
from pixrec.evaluation.candidates import SampledCandidates
from pixrec.evaluation.config import EvalConfig
from pixrec.evaluation.evaluator import TrainedModel, evaluate_all, evaluate_model
from pixrec.evaluation.intervals import IntervalConfig
from pixrec.evaluation.metrics import mrr, ndcg, recall
from pixrec.evaluation.protocols import full_ranking_metrics, rank_full, rank_sampled
from pixrec.scoring import TwoStage

ROOT = Path(__file__).resolve().parents[1]
EVAL = {"ks": [5, 10], "batch_users": 16, "seed": 3, "ranking": "exact",
        "two_stage_retrievers": {"item_knn": {"k": 5}}, "two_stage_candidates": 10, "two_stage_sweep": []}


def cfg(**over) -> EvalConfig:
    return real_config(EvalConfig, **{**EVAL, **over})


class Table:
    """A recommender with a fixed score table (n_users, n_items)."""

    name = "table"

    def __init__(self, table) -> None:
        self.table = np.asarray(table, dtype=np.float32)
        self.n_items = self.table.shape[1]

    def score(self, users, items):
        return self.table[np.asarray(users)[:, None], items]

    def score_all(self, users):
        return self.table[np.asarray(users)].copy()


def mask_of(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(rows), n_items))


# --- full ranking --------------------------------------------------------------------------------


def test_seen_items_never_count_against_the_target():
    rec = Table([[5, 4, 3, 2, 1]])
    # target item 2 (score 3); items 0 and 1 score higher but are seen
    assert rank_full(rec, [0], [2], mask_of([[0, 1]], 5)).ranks.tolist() == [1]
    assert rank_full(rec, [0], [2], mask_of([[]], 5)).ranks.tolist() == [3]
    assert rank_full(rec, [0], [2], mask_of([[0]], 5)).ranks.tolist() == [2]


def test_target_is_never_masked():
    rec = Table([[5, 4, 3, 2, 1]])
    # the mask lists the target itself: it still competes, and ranks as if unmasked
    assert rank_full(rec, [0], [2], mask_of([[2]], 5)).ranks.tolist() == [3]
    assert rank_full(rec, [0], [2], mask_of([[0, 2]], 5)).ranks.tolist() == [2]


def test_ties_are_pessimistic():
    flat = Table([[1, 1, 1, 1, 1]])
    # a constant scorer ranks the target last among the unmasked items
    assert rank_full(flat, [0], [0], mask_of([[]], 5)).ranks.tolist() == [5]
    assert rank_full(flat, [0], [0], mask_of([[3, 4]], 5)).ranks.tolist() == [3]
    one_tie = Table([[9, 2, 2, 0, 0]])
    assert rank_full(one_tie, [0], [1], mask_of([[]], 5)).ranks.tolist() == [3]


def test_unrankable_and_nan():
    ninf = -np.inf
    rec = Table([[ninf, 1, 2, ninf, 0], [0, 1, 2, np.nan, 0.5]])
    # a -inf target ties every other -inf item: last among the unmasked
    assert rank_full(rec, [0], [0], mask_of([[]], 5)).ranks.tolist() == [5]
    # a NaN competitor is not "below" the target: counts against it
    assert rank_full(rec, [1], [2], mask_of([[], []], 5)).ranks.tolist() == [2]


def test_batches_and_top_lists():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((7, 12)).astype(np.float32)
    table[:, 11] = -np.inf  # never recommended
    mask = mask_of([[0, 1], [], [2], [3, 4, 5], [], [6], [7]], 12)
    users, targets = np.arange(7), np.array([2, 3, 4, 5, 6, 7, 8])
    a = rank_full(Table(table), users, targets, mask, batch_users=1, list_k=12)
    b = rank_full(Table(table), users, targets, mask, batch_users=4, list_k=12)
    np.testing.assert_array_equal(a.ranks, b.ranks)
    np.testing.assert_array_equal(a.top_items, b.top_items)
    for u in users:  # brute force: sort the unmasked items, target included even if masked
        seen = set(mask[u].indices) - {targets[u]}
        allowed = [i for i in range(12) if i not in seen]
        assert a.ranks[u] == sum(table[u, i] >= table[u, targets[u]] for i in allowed)
        finite = [i for i in np.argsort(-table[u], kind="stable") if i not in seen | {11}]
        listed = a.top_items[u][a.top_items[u] >= 0].tolist()
        assert listed == finite, "a masked or -inf item was listed, or the target was left out"


def test_full_ranking_metrics_for_validation():
    rec = Table([[5, 4, 3, 2, 1], [1, 2, 3, 4, 5]])
    out = full_ranking_metrics(rec, np.array([0, 1]), np.array([4, 4]), mask_of([[0], []], 5), ks=[1, 10])
    # user 0: item 4 behind items 1, 2, 3 -> rank 4; user 1: rank 1
    assert out["n_users"] == 2
    assert out["recall@1"] == 0.5 and out["recall@10"] == 1.0
    assert out["ndcg@10"] == pytest.approx((1 / np.log2(5) + 1) / 2)
    assert out["mrr@10"] == pytest.approx((0.25 + 1) / 2)


# --- sampled protocol -----------------------------------------------------------------------------


def test_sampled_ranks_by_hand():
    rec = Table([[0, 5, 4, 3, 3, 1]])
    cand = np.array([[3, 1, 0, 4, 5], [1, 2, 3, 4, 5]])
    # row 0: positive 3 (score 3) vs 5, 0, 3 (tie), 1 -> 1 + 2 = 3; row 1: positive 1 (5) is on top
    np.testing.assert_array_equal(rank_sampled(rec, np.array([0, 0]), cand, batch_users=1), [3, 1])


def test_random_reproduces_the_closed_form_on_sampled():
    n, c = 20_000, 21
    data = make_split(n, 500, [(u, u % 500) for u in range(n)])
    rng = np.random.default_rng(5)
    cands = np.stack([rng.choice(500, size=c, replace=False) for _ in range(50)])[rng.integers(50, size=n)]
    model = make_baseline("random", FitContext(data, None, 1), {})
    ranks = rank_sampled(model, np.arange(n), cands)
    # closed form: the positive's rank is uniform on 1..21
    r = np.arange(1, c + 1)
    for metric, k, value in [(recall, 5, 5 / 21), (recall, 10, 10 / 21), (ndcg, 10, 0.2163),
                             (mrr, 10, 0.1395)]:
        per_rank = metric(r, k)
        assert per_rank.mean() == pytest.approx(value, abs=1e-4)  # the README's numbers
        sigma = per_rank.std() / np.sqrt(n)  # standard error of the mean over n users
        got = metric(ranks, k).mean()
        assert abs(got - per_rank.mean()) < 4 * sigma, (metric.__name__, k, got)


def test_sampled_candidates_must_match_the_split():
    data = make_split(3, 6, [(0, 0), (1, 1), (2, 2)], test=[(0, 3), (1, 4)])
    ok = SampledCandidates(np.array([0, 1]), np.array([[3, 1, 2], [4, 0, 2]]))
    ok.validate(data, "neg")
    stale = SampledCandidates(np.array([0, 1]), np.array([[3, 1, 2], [5, 0, 2]]))
    with pytest.raises(InputError, match="column 0 is not the test item"):
        stale.validate(data, "neg")


# --- the evaluator --------------------------------------------------------------------------------


def test_evaluate_model_protocols_and_cold_slice():
    data = random_split(30, 20, n_cold=3, seed=1)
    model = make_baseline("most_popular", FitContext(data, None, 0), {})
    users = data.test.users[:10]
    cands = np.concatenate([data.test.items[:10, None], np.tile(np.arange(2), (10, 1)) + 5], axis=1)
    res = evaluate_model(model, data, SampledCandidates(users, cands), cfg())
    assert set(res.metrics) == {"sampled", "full", "cold"}
    assert set(res.metrics["sampled"]) >= {"recall@5", "ndcg@5", "recall@10", "ndcg@10", "mrr@10",
                                           "novelty_p", "n_users"}
    assert res.metrics["sampled"]["novelty_p"] == pytest.approx(
        1 - res.metrics["sampled"]["recall@10"] / 10)
    n_cold = int(data.cold_items[data.test.items].sum())
    assert n_cold > 0 and res.metrics["cold"]["n_users"] == n_cold
    assert res.metrics["full"]["n_users"] == len(data.test)
    assert res.metrics["cold"]["recall@10"] == 0.0  # ID-only: cold targets are unrankable
    assert 0 < res.metrics["full"]["coverage@10"] <= 1 and res.metrics["full"]["novelty@10"] > 0
    assert res.top_items.shape == (len(data.test), 10)


def test_two_stage_scores_only_the_retrieved_candidates():
    ranker = Table([[0, 1, 2, 3, 4, 5]])
    retriever = Table([[6, 5, 4, 3, 2, 1]])  # proposes items 0, 1 (2 per user)
    two = TwoStage(ranker, [retriever], n_candidates=2, exclude=mask_of([[0]], 6))
    s = two.score_all(np.array([0]))
    # item 0 is excluded, so the retriever's top 2 unseen are 1 and 2, scored by the ranker
    np.testing.assert_array_equal(s[0], [-np.inf, 1, 2, -np.inf, -np.inf, -np.inf])
    np.testing.assert_array_equal(two.score(np.array([0]), np.array([[5, 4]])), [[5, 4]])


def test_the_caller_puts_pair_models_behind_their_retrievers():
    """eval.ranking: two_stage wraps each pairwise model in its retrievers (checked before any work,
    fitted once, shared); every other model, and all of them under exact ranking, load as given. The
    evaluator ranks what it is handed."""
    from pixrec.evaluation.two_stage import two_stage_models

    data = random_split(50, 30, n_cold=3, seed=5)
    ranker = Table(np.random.default_rng(2).standard_normal((data.n_users, data.n_items)))
    plain = Table(np.zeros((data.n_users, data.n_items)))
    ranker.name, plain.name = "fusion", "plain"
    models = [TrainedModel("fusion", lambda: ranker, pairwise=True), TrainedModel("plain", lambda: plain)]
    assert two_stage_models(models, data, None, cfg()) == models  # exact ranking
    config = cfg(ranking="two_stage", two_stage_retrievers={"most_popular": {}, "item_knn": {"k": 5}},
                 two_stage_candidates=4)
    logs: list[str] = []
    wrapped = two_stage_models(models, data, None, config, log=logs.append)
    assert wrapped[1] is models[1] and not logs  # nothing fitted before a pair model is loaded
    first, second = wrapped[0].load(), wrapped[0].load()
    assert isinstance(first, TwoStage) and first.ranker is ranker and first.k == 4
    assert [id(r) for r in first.retrievers] == [id(r) for r in second.retrievers]  # fitted once
    assert sum("two-stage retriever" in line for line in logs) == 2
    results, _ = evaluate_all(FitContext(data, None, 0, chosen={"random": {}}), None, config,
                              IntervalConfig(50, 0.9), wrapped, log=lambda _: None)
    assert [r.name for r in results] == ["random", "fusion", "plain"]
    over_budget = cfg(ranking="two_stage", two_stage_retrievers={"ease": {"lam": 1.0, "max_gib": 1e-9}})
    with pytest.raises(InputError, match="max_gib"):  # refused up front, not when the model loads
        two_stage_models(models, data, None, over_budget)


def test_two_stage_sweep_with_every_item_proposed_is_exact():
    """N >= the catalogue: every unseen item is a candidate, so two-stage ranking *is* exact ranking."""
    from pixrec.evaluation.two_stage import two_stage_sweep

    data = random_split(50, 30, n_cold=0, seed=5)
    rng = np.random.default_rng(1)
    ranker = Table(rng.standard_normal((data.n_users, data.n_items)))
    config = cfg(two_stage_retrievers={"most_popular": {}}, two_stage_sweep=[2, 30])
    table = two_stage_sweep(ranker, data, None, config, log=lambda _: None)
    assert table["n=30"]["full"]["candidate_recall"] == 1.0
    for k in ("recall@10", "ndcg@10", "mrr@10"):
        assert table["n=30"]["full"][k] == table["exact"]["full"][k]
    few = table["n=2"]["full"]
    assert few["mean_candidates"] <= 2 and few["candidate_recall"] < 1.0
    assert few["recall@5"] <= few["candidate_recall"]


def test_two_stage_sweep_reuses_the_evaluate_stages_exact_ranking_only_when_it_was_exact():
    """The exact row is taken from evaluate.json (its point estimates) when that stage ranked the model
    exactly with the same cut-offs and seed; otherwise the sweep ranks it and gets the same figures."""
    from pixrec.evaluation.output import metrics_json
    from pixrec.evaluation.two_stage import evaluated_exactly, two_stage_sweep

    data = random_split(50, 30, n_cold=3, seed=5)
    ranker = Table(np.random.default_rng(2).standard_normal((data.n_users, data.n_items)))
    ranker.name = "fusion"
    config = cfg(two_stage_retrievers={"most_popular": {}}, two_stage_sweep=[2])
    ctx = FitContext(data, None, config.seed, chosen={"most_popular": {}})
    model = TrainedModel("fusion", lambda: ranker, True)
    results, ref = evaluate_all(ctx, None, config, IntervalConfig(50, 0.9), [model], log=lambda _: None)
    evaluate = metrics_json(results, ref, IntervalConfig(50, 0.9))
    meta = {"config": {"ranking": "exact", "ks": list(config.ks), "seed": config.seed}}
    exact = evaluated_exactly(evaluate, meta, "fusion", config)
    assert exact is not None and "ndcg@10_lo" in evaluate["fusion"]["full"]
    assert "ndcg@10_lo" not in exact["full"]
    ranked = two_stage_sweep(ranker, data, None, config, log=lambda _: None)
    assert two_stage_sweep(ranker, data, None, config, log=lambda _: None, exact=exact) == ranked
    for changed in ({"ranking": "two_stage"}, {"ks": [10]}, {"seed": config.seed + 1}):
        other = {"config": {**meta["config"], **changed}}
        assert evaluated_exactly(evaluate, other, "fusion", config) is None
    assert evaluated_exactly(evaluate, meta, "two_tower", config) is None


# --- the stage, end to end -------------------------------------------------------------------------


def test_evaluate_all_compares_every_model_with_the_best_baseline():
    data = random_split(60, 40, n_cold=4, seed=11)
    ctx = FitContext(data, None, 0, chosen={"random": {}, "item_knn": {"k": 5}, "most_popular": {}})
    rng = np.random.default_rng(2)
    shape = (data.n_users, data.n_items)
    oracle = np.where(rng.random(shape) < 0.5, rng.random(shape), 0)
    oracle[data.test.users, data.test.items] = 2.0  # knows the test item of every other user
    oracle[data.test.users[::2], data.test.items[::2]] = -1.0
    table = Table(oracle)
    table.name = "fusion"
    results, reference = evaluate_all(ctx, None, cfg(), IntervalConfig(200, 0.9),
                                      [TrainedModel("fusion", lambda: table, False)], log=lambda _: None)
    full = {r.name: r.metrics["full"] for r in results}
    baselines = ["random", "item_knn", "most_popular"]
    assert reference == max(baselines, key=lambda m: full[m]["ndcg@10"])
    assert "ndcg@10_p" not in full[reference]
    for name, m in full.items():
        for key in ("recall@5", "ndcg@10", "mrr@10"):
            assert m[f"{key}_lo"] <= m[key] <= m[f"{key}_hi"], (name, key)
        if name != reference:
            assert m["ndcg@10_diff"] == pytest.approx(m["ndcg@10"] - full[reference]["ndcg@10"])
            assert 0.0 <= m["ndcg@10_p"] <= 1.0
    assert full["fusion"]["ndcg@10_diff_lo"] > 0 and full["fusion"]["ndcg@10_p"] < 1e-3  # clearly better
    assert "coverage@10_lo" not in full["fusion"]  # a list-level figure: no per-user mean to resample


def _write_inputs(tmp: Path, baselines: dict) -> dict[str, Path]:
    data = random_split(60, 40, n_cold=4, seed=11)
    split = write_split(data, tmp / "data" / "split")
    rng = np.random.default_rng(0)
    for side, dim in (("image", 8), ("text", 12)):
        d = tmp / "data" / "embeddings" / side
        d.mkdir(parents=True)
        np.save(d / schema.EMB_FILE, rng.standard_normal((data.n_items, dim)).astype(np.float32))
        mask = np.ones(data.n_items, bool)
        mask[rng.choice(data.n_items, 3, replace=False)] = False
        np.save(d / schema.EMB_MASK_FILE, mask)
    neg = tmp / "data" / "candidates"
    neg.mkdir(parents=True)
    pick = rng.choice(len(data.test), 20, replace=False)
    users = data.test.users[pick]
    seen = data.all_matrix
    cands = []
    for u, pos in zip(users, data.test.items[pick], strict=True):  # toy data: a loop is fine
        pool = np.setdiff1d(np.arange(data.n_items), seen[u].indices)
        cands.append([pos, *rng.choice(pool, 20, replace=False)])
    np.save(neg / schema.CAND_USERS_FILE, users.astype(np.int32))
    np.save(neg / schema.CAND_FILE, np.array(cands, dtype=np.int32))
    import yaml

    params = {"baselines": baselines, "models": {"fit": ["fusion", "two_tower"], "headline": "two_tower"},
              "eval": {**EVAL, "ks": [5, 10, 20], "intervals": {"resamples": 200, "level": 0.95},
                       "rerank": {"top_n": 10}}}
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    return {"split": split}


def _run_stage(tmp: Path, stage: str = "evaluate") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "DVC_NO_ANALYTICS": "1"}
    args = {"evaluate": ["--candidates", "data/candidates", "--models", "models", "--out", "data/eval"],
            "tune": []}[stage]
    cmd = [sys.executable, "-m", f"stages.{stage}", "--split", "data/split", "--embeddings",
           "data/embeddings", *args, "--params", "params.yaml"]
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


NAMES = ["random", "most_popular", "item_knn", "user_knn", "ease", "content_knn", "hybrid"]
BASELINE_PARAMS = {
    "names": NAMES, "seed": 3, "batch_users": 16, "valid_users": None,
    "knobs": {"random": {}, "most_popular": {}, "item_knn": {"k": [3, 10]}, "user_knn": {"k": 5},
              "ease": {"lam": [1.0, 10.0], "max_gib": 1.0}, "content_knn": {"image_weight": [0.0, 0.5]},
              "hybrid": {"cf": "ease", "weight": [0.2, 0.8], "cold_bonus": 0.0}},
}


@pytest.mark.slow
def test_stage_end_to_end(tmp_path):
    _write_inputs(tmp_path, BASELINE_PARAMS)
    assert _run_stage(tmp_path, "tune").returncode == 0
    proc = _run_stage(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "fusion: skipped" in proc.stderr  # no models/ in this toy project
    assert "two_tower: skipped" in proc.stderr
    metrics = json.loads((tmp_path / "metrics" / "evaluate.json").read_text())
    chosen = json.loads((tmp_path / "metrics" / "tuning.json").read_text())
    assert list(metrics) == sorted([*NAMES, "intervals"])  # sorted keys
    reference = metrics["intervals"]["reference"]
    assert reference == max(NAMES, key=lambda m: metrics[m]["full"]["ndcg@10"])
    for model in NAMES:
        protocols = metrics[model]
        assert set(protocols) == {"sampled", "full", "cold"}, model
        assert protocols["sampled"]["n_users"] == 20
        assert protocols["full"]["n_users"] == 60
        assert {"recall@5", "ndcg@20", "mrr@10", "coverage@10", "novelty@10"} <= set(protocols["full"])
        assert {"recall@5", "ndcg@10", "mrr@10", "novelty_p"} <= set(protocols["sampled"])
        assert all(0.0 <= v <= 1.0 for k, v in protocols["full"].items()
                   if "@" in k and "nov" not in k and "diff" not in k)
        full = protocols["full"]
        assert full["ndcg@10_lo"] <= full["ndcg@10"] <= full["ndcg@10_hi"]
        assert ("ndcg@10_p" in protocols["full"]) == (model != reference)
    for model in ("most_popular", "item_knn", "user_knn", "ease"):  # ID-only: blind to cold items
        assert metrics[model]["cold"]["recall@20"] == 0.0
    meta = json.loads((tmp_path / "data" / "eval" / "meta.json").read_text())
    assert meta["chosen"] == {name: chosen[name]["chosen"] for name in NAMES}  # evaluated as tuned
    ranks = pl.read_parquet(tmp_path / "data" / "eval" / schema.EVAL_RANKS_FILE)
    assert ranks.columns == [schema.USER_IDX, schema.ITEM_IDX, "model", "protocol", "rank"]
    n_cold = metrics["random"]["cold"]["n_users"]
    assert ranks.height == len(NAMES) * (20 + 60 + n_cold)
    top = pl.read_parquet(tmp_path / "data" / "eval" / schema.EVAL_TOP_FILE)
    assert top.height == len(NAMES) * 60
    plot = pl.read_csv(tmp_path / "metrics" / "evaluate_plot.csv")
    assert plot.columns[:6] == ["model", "protocol", "metric", "value", "lo", "hi"]
    assert plot["headline"].to_list() == [False] * plot.height  # models.headline was not trained here
    assert plot.height == len(NAMES) * 3
    first = (tmp_path / "metrics" / "evaluate.json").read_bytes()
    assert _run_stage(tmp_path).returncode == 0
    assert (tmp_path / "metrics" / "evaluate.json").read_bytes() == first, "not bit-for-bit"


def test_tune_refuses_ease_over_budget_before_fitting(tmp_path):
    knobs = {**BASELINE_PARAMS["knobs"], "ease": {"lam": 1.0, "max_gib": 1e-6}}
    _write_inputs(tmp_path, {**BASELINE_PARAMS, "knobs": knobs})
    proc = _run_stage(tmp_path, "tune")
    assert proc.returncode == 1
    assert "baselines.knobs.ease.max_gib" in proc.stderr and "Traceback" not in proc.stderr
    assert "valid ndcg" not in proc.stdout  # refused before any baseline was fitted
    assert not (tmp_path / "metrics" / "tuning.json").exists()


def test_evaluate_needs_the_tune_stage(tmp_path):
    _write_inputs(tmp_path, BASELINE_PARAMS)
    proc = _run_stage(tmp_path)
    assert proc.returncode == 1 and "run the tune stage first" in proc.stderr


def test_eval_config_rejects_bad_values():
    from pixrec.config import ConfigError, from_mapping

    with pytest.raises(InputError, match=r"eval\.ks"):
        cfg(ks=10)
    with pytest.raises(InputError, match=r"eval\.ranking"):
        cfg(ranking="approximate")
    with pytest.raises(InputError, match=r"eval\.two_stage_retrievers"):
        cfg(two_stage_retrievers=["item_knn"])
    with pytest.raises(ConfigError, match="unknown key"):
        from_mapping(EvalConfig, {**EVAL, "kss": [10]}, "eval")
