"""Metric functions against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pixrec.evaluation.metrics import (
    METRICS,
    coverage,
    mean_self_information,
    mrr,
    ndcg,
    novelty_p,
    recall,
    self_information,
    summarise,
)
from pixrec.registry import UnknownNameError

RANKS = np.array([1, 2, 3, 11])  # four users; the last misses a top-10


def test_recall_by_hand():
    np.testing.assert_array_equal(recall(RANKS, 10), [1, 1, 1, 0])
    assert recall(RANKS, 2).mean() == 0.5  # ranks 1 and 2 of four
    assert recall(RANKS, 11).mean() == 1.0  # rank k is inside the top k


def test_ndcg_by_hand():
    # 1/log2(1+1) = 1, 1/log2(3) = 0.63093, 1/log2(4) = 0.5, rank 11 > 10 -> 0
    np.testing.assert_allclose(ndcg(RANKS, 10), [1.0, 0.6309298, 0.5, 0.0], rtol=1e-6)
    assert ndcg(RANKS, 10).mean() == pytest.approx((1 + 0.6309298 + 0.5) / 4, rel=1e-6)
    np.testing.assert_allclose(ndcg(RANKS, 2), [1.0, 0.6309298, 0.0, 0.0], rtol=1e-6)


def test_mrr_by_hand():
    np.testing.assert_allclose(mrr(RANKS, 10), [1.0, 0.5, 1 / 3, 0.0])
    assert mrr(RANKS, 10).mean() == pytest.approx(11 / 24)  # (1 + 1/2 + 1/3) / 4


def test_novelty_p_is_one_minus_recall_over_k():
    # poster's Novelty_P: 1 − R@10/10; hits -> 0.9, misses -> 1.0
    np.testing.assert_allclose(novelty_p(RANKS, 10), [0.9, 0.9, 0.9, 1.0])
    assert novelty_p(RANKS, 10).mean() == pytest.approx(1 - recall(RANKS, 10).mean() / 10)


def test_summarise_names_and_means():
    out = summarise(RANKS, ["recall", "mrr"], [1, 10])
    assert out == pytest.approx({"recall@1": 0.25, "recall@10": 0.75, "mrr@1": 0.25,
                                 "mrr@10": 11 / 24})
    assert summarise(np.array([], dtype=np.int64), ["recall"], [10]) == {}


def test_registry_lists_metrics_and_rejects_unknown():
    assert {"recall", "ndcg", "mrr", "novelty_p"} <= set(METRICS.names())
    with pytest.raises(UnknownNameError, match="valid names are"):
        METRICS.get("precision_at_k")


def test_coverage_by_hand():
    top = np.array([[0, 1, 2], [2, 3, -1]])  # 4 distinct items, -1 = empty slot
    assert coverage(top, n_items=10) == pytest.approx(0.4)


def test_self_information_add_one_smoothed():
    info = self_information(np.array([3, 0, 1]))  # counts + 1 = [4, 1, 2], total 7
    np.testing.assert_allclose(info, [-math.log2(4 / 7), -math.log2(1 / 7), -math.log2(2 / 7)])
    assert np.isfinite(info).all()  # a never-trained item stays finite


def test_mean_self_information_by_hand():
    info = np.array([1.0, 2.0, 4.0])
    top = np.array([[0, 1], [2, -1], [-1, -1]])  # user means 1.5 and 4.0; empty list left out
    assert mean_self_information(top, info) == pytest.approx((1.5 + 4.0) / 2)
    assert mean_self_information(np.full((2, 3), -1), info) == 0.0


def test_a_new_metric_is_one_registry_entry_shown_everywhere(monkeypatch):
    """Registered once, a metric is in the evaluator's protocol blocks (with a bootstrap interval when
    it is a mean over users, without one when it is a list-level figure), in the headline table when
    its entry asks for it, and in the report's tables."""
    from pathlib import Path

    from real_params import real_config
    from toy_split import random_split

    from pixrec.baselines.base import FitContext, make_baseline
    from pixrec.evaluation.candidates import SampledCandidates
    from pixrec.evaluation.config import EvalConfig
    from pixrec.evaluation.evaluator import attach_intervals, evaluate_model
    from pixrec.evaluation.headline import headline_metrics
    from pixrec.evaluation.intervals import IntervalConfig
    from pixrec.evaluation.metrics import Metric
    from pixrec.evaluation.output import metrics_json
    from pixrec.report.tables import columns, model_tables

    def hit(ranks, k):
        return (np.asarray(ranks) <= k).astype(np.float64)

    def filled(top, info):
        return float((top >= 0).mean())

    monkeypatch.setitem(METRICS._entries, "hit",
                        Metric("hit", hit, "HR", words="Hit rate", headline_ks=(10,)))
    monkeypatch.setitem(METRICS._entries, "filled", Metric("filled", filled, "Fill", per_list=True))

    data = random_split(30, 20, n_cold=3, seed=1)
    model = make_baseline("most_popular", FitContext(data, None, 0), {})
    users = data.test.users[:10]
    cands = np.concatenate([data.test.items[:10, None], np.tile(np.arange(2), (10, 1)) + 5], axis=1)
    config = real_config(EvalConfig, ks=[10, 20], batch_users=16, ranking="exact")
    res = evaluate_model(model, data, SampledCandidates(users, cands), config)
    intervals = IntervalConfig(50, 0.9)
    attach_intervals([res], None, intervals, 0)
    for protocol in ("sampled", "full", "cold"):
        block = res.metrics[protocol]
        assert block["hit@10"] == block["recall@10"]
        assert block["hit@10_lo"] <= block["hit@10"] <= block["hit@10_hi"]
    assert "hit@5" in res.metrics["sampled"] and "hit@20" in res.metrics["full"]
    assert 0 < res.metrics["full"]["filled@10"] <= 1 and "filled@10_lo" not in res.metrics["full"]
    assert "filled@10" not in res.metrics["sampled"]  # no top lists there

    evaluate = metrics_json([res], None, intervals)
    head = headline_metrics(evaluate, "most_popular", Path("metrics/evaluate.json"))
    assert list(head) == ["ndcg@10", "hit@10"]
    assert head["hit@10"]["most_popular"]["full"] == res.metrics["full"]["hit@10"]

    assert {("hit@5", "HR@5"), ("hit@10", "HR@10")} <= set(columns("sampled"))
    assert {("hit@10", "HR@10"), ("filled@10", "Fill@10")} <= set(columns("cold"))
    tables = {t.key: t for t in model_tables(evaluate, [], None)}
    assert {("hit@20", "HR@20"), ("filled@10", "Fill@10")} <= set(tables["full"].columns)
