"""Ranking metrics, one small function each, from the 1-based rank of each user's single target.

Every protocol here has exactly one relevant item per user, so each metric is a per-user value
computed from an int rank array (N,) and reported as its mean; keeping the per-user values makes the
``cold`` subset and any later bootstrap a slice, not a re-run. Rank 1 is the top of the list.

List metrics (coverage, self-information novelty) are computed from the top-k item lists instead.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pixrec.registry import Registry

RankMetric = Callable[[np.ndarray, int], np.ndarray]
METRICS: Registry[RankMetric] = Registry("metric")


@METRICS.register("recall")
def recall(ranks: np.ndarray, k: int) -> np.ndarray:
    """ranks int (N,) -> float64 (N,): 1 if the target is in the top k (= hit rate, one target)."""
    return (np.asarray(ranks) <= k).astype(np.float64)


@METRICS.register("ndcg")
def ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
    """ranks int (N,) -> float64 (N,): 1/log2(rank+1) inside the top k, else 0 (ideal DCG is 1)."""
    r = np.asarray(ranks, dtype=np.float64)
    return np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0)


@METRICS.register("mrr")
def mrr(ranks: np.ndarray, k: int) -> np.ndarray:
    """ranks int (N,) -> float64 (N,): 1/rank inside the top k, else 0 (the poster's MRR is MRR@10)."""
    r = np.asarray(ranks, dtype=np.float64)
    return np.where(r <= k, 1.0 / r, 0.0)


@METRICS.register("novelty_p")
def novelty_p(ranks: np.ndarray, k: int) -> np.ndarray:
    """ranks int (N,) -> float64 (N,): the poster's "Novelty": 1 − hit@k / k.

    Under the sampled protocol every candidate but the positive is an item the user never touched,
    so the share of the top k outside the history is 1 − R@k/k. It is a function of recall, kept
    only to compare with the poster — it is *not* a novelty measure (see :func:`self_information`).
    """
    return 1.0 - recall(ranks, k) / k


def summarise(ranks: np.ndarray, metrics: list[str], ks: list[int]) -> dict[str, float]:
    """Mean of each ``metric@k`` over users; ``{}`` for an empty rank array (no users)."""
    if len(ranks) == 0:
        return {}
    return {f"{m}@{k}": float(METRICS.get(m)(ranks, k).mean()) for m in metrics for k in ks}


def coverage(top_items: np.ndarray, n_items: int) -> float:
    """top_items int (N, k), -1 = empty slot -> share of the catalogue in any user's list."""
    items = top_items[top_items >= 0]
    return float(np.unique(items).size / n_items) if n_items else 0.0


def self_information(popularity: np.ndarray) -> np.ndarray:
    """popularity int (n_items,) training counts -> float64 (n_items,) −log2 p_i, add-one smoothed.

    Smoothing keeps a never-seen (cold) item finite: p_i = (c_i + 1) / (Σc + n_items).
    """
    counts = np.asarray(popularity, dtype=np.float64) + 1.0
    return -np.log2(counts / counts.sum())


def mean_self_information(top_items: np.ndarray, info: np.ndarray) -> float:
    """top_items int (N, k), -1 = empty -> mean over users of the mean self-information of the list.

    Users whose list is empty are left out of the mean; 0.0 when every list is empty.
    """
    valid = top_items >= 0
    per_slot = np.where(valid, info[np.where(valid, top_items, 0)], 0.0)
    n = valid.sum(axis=1)
    has = n > 0
    if not has.any():
        return 0.0
    return float((per_slot.sum(axis=1)[has] / n[has]).mean())
