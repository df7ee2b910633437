"""Bootstrap intervals and paired tests against hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest

from pixrec.evaluation.intervals import (
    IntervalConfig,
    bootstrap_means,
    percentile_interval,
    point_estimates,
    protocol_intervals,
    resample_counts,
    wilcoxon_p,
)
from pixrec.evaluation.metrics import ndcg, recall


def test_counts_are_resamples_of_size_n():
    counts = resample_counts(7, 50, np.random.default_rng(0))
    assert counts.shape == (50, 7)
    np.testing.assert_array_equal(counts.sum(axis=1), 7)  # each resample draws n users
    assert (counts >= 0).all() and (counts == 0).any(), "with replacement: some users left out"


def test_bootstrap_means_equal_the_means_of_explicit_resamples():
    values = np.array([[0.0, 1.0], [1.0, 0.5], [0.25, 0.0], [1.0, 1.0]])
    means = bootstrap_means(values, 300, np.random.default_rng(3))
    rng = np.random.default_rng(3)  # the same draws, one explicit resample at a time
    idx = np.concatenate([rng.integers(0, 4, size=(min(128, 300 - s), 4)) for s in range(0, 300, 128)])
    ref = np.stack([values[i].mean(axis=0) for i in idx])
    np.testing.assert_allclose(means, ref, rtol=1e-12)


def test_percentile_interval_by_hand():
    # three bootstrap means 1, 2, 3: linear quantiles at 2.5% and 97.5% are 1.05 and 2.95
    np.testing.assert_allclose(percentile_interval(np.array([[1.0], [2.0], [3.0]]), 0.95), [[1.05, 2.95]])
    # constant values: every resample has the same mean, a zero-width interval
    means = bootstrap_means(np.full((10, 1), 0.4), 100, np.random.default_rng(0))
    np.testing.assert_allclose(percentile_interval(means, 0.95), [[0.4, 0.4]])


def test_bootstrap_spread_matches_the_standard_error():
    """Mean of 0/1 values with p = 0.3 over n = 400 users: bootstrap sd ≈ sqrt(p(1-p)/n) = 0.0229,
    so the 95% interval is about ± 1.96 · 0.0229 = ± 0.045 around 0.3."""
    values = np.zeros((400, 1))
    values[:120] = 1.0
    lo, hi = percentile_interval(bootstrap_means(values, 4000, np.random.default_rng(1)), 0.95)[0]
    assert lo == pytest.approx(0.3 - 0.045, abs=0.006) and hi == pytest.approx(0.3 + 0.045, abs=0.006)


def test_wilcoxon_by_hand():
    # 8 users, all better by 1..8: the exact two-sided p is 2 / 2^8 = 0.0078125
    x, y = np.arange(1.0, 9.0), np.zeros(8)
    assert wilcoxon_p(x, y) == pytest.approx(2 / 2**8)
    # zeros carry no information: adding tied users changes nothing
    assert wilcoxon_p(np.r_[x, 0.5, 0.5], np.r_[y, 0.5, 0.5]) == pytest.approx(2 / 2**8)
    # signed ranks +1, +2, −3, +4 -> W− = 3; exact two-sided p = 2 · P(W <= 3) = 2 · 5/16
    assert wilcoxon_p(np.array([1.0, 2.0, -3.0, 4.0]), np.zeros(4)) == pytest.approx(10 / 16)
    assert wilcoxon_p(np.ones(5), np.ones(5)) == 1.0  # every pair tied


def test_protocol_intervals_fields_and_paired_difference():
    rng = np.random.default_rng(0)
    ranks = {"a": rng.integers(1, 30, 200), "b": rng.integers(1, 30, 200)}
    keys = {"recall@10": ("recall", 10), "ndcg@10": ("ndcg", 10)}
    out = protocol_intervals(ranks, keys, "a", IntervalConfig(500, 0.95), np.random.default_rng(1))
    assert set(out["a"]) == {"recall@10_lo", "recall@10_hi", "ndcg@10_lo", "ndcg@10_hi"}  # reference
    b = out["b"]
    for name, k in keys.values():
        mean = METRIC[name](ranks["b"], k).mean()
        assert b[f"{name}@{k}_lo"] < mean < b[f"{name}@{k}_hi"]
    diff = ndcg(ranks["b"], 10).mean() - ndcg(ranks["a"], 10).mean()
    assert b["ndcg@10_diff"] == pytest.approx(diff)
    assert b["ndcg@10_diff_lo"] < diff < b["ndcg@10_diff_hi"]
    assert b["ndcg@10_p"] == pytest.approx(wilcoxon_p(ndcg(ranks["b"], 10), ndcg(ranks["a"], 10)))
    same = protocol_intervals({"a": ranks["a"], "c": ranks["a"]}, keys, "a", IntervalConfig(50, 0.9),
                              np.random.default_rng(1))["c"]
    assert same["ndcg@10_diff"] == same["ndcg@10_diff_lo"] == same["ndcg@10_diff_hi"] == 0.0
    assert same["ndcg@10_p"] == 1.0


METRIC = {"recall": recall, "ndcg": ndcg}


def test_point_estimates_drop_interval_and_paired_entries():
    block = {"ndcg@10": 0.2, "ndcg@10_lo": 0.1, "ndcg@10_hi": 0.3, "ndcg@10_diff": -0.01,
             "ndcg@10_diff_lo": -0.02, "ndcg@10_diff_hi": 0.0, "ndcg@10_p": 0.04, "n_users": 9,
             "coverage@10": 0.5, "novelty_p": 0.9}
    assert point_estimates(block) == {"ndcg@10": 0.2, "n_users": 9, "coverage@10": 0.5, "novelty_p": 0.9}
