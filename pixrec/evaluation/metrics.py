"""Ranking metrics, one small function each, and :data:`METRICS`: every metric with where it is shown.

Every protocol here has exactly one relevant item per user, so each rank metric is a per-user value
computed from an int rank array (N,) and reported as its mean; keeping the per-user values makes the
``cold`` subset and any later bootstrap a slice, not a re-run. Rank 1 is the top of the list.

List metrics (coverage, self-information novelty) are computed from the top-k item lists instead.

A metric is one :class:`Metric` entry of :data:`METRICS`; the evaluator's protocol blocks, the
bootstrap intervals, the headline table and the report's columns are all derived from the registry,
so a new metric is its function and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pixrec.registry import Registry

RankMetric = Callable[[np.ndarray, int], np.ndarray]  # ranks int (N,), k -> per-user values float64 (N,)
# top_items int (N, LIST_K), -1 = empty slot; info float64 (n_items,): each catalogue item's
# self-information under training popularity (its length is the catalogue size) -> one figure
ListMetric = Callable[[np.ndarray, np.ndarray], float]

LIST_K = 10  # length of the recommendation lists behind the list metrics (coverage@10, novelty@10)
FULL_RANKING = ("full", "cold")  # the protocols that rank the whole catalogue (and so have top lists)
ALL_PROTOCOLS = ("sampled", *FULL_RANKING)


@dataclass(frozen=True)
class Metric:
    """One metric and everywhere it is shown.

    A *rank* metric (``fn``: :data:`RankMetric`) is the mean over users of a per-user value, with a
    bootstrap interval and, at NDCG@10, the paired test; it is reported as ``<name>@<k>`` at each
    cut-off of its protocol (the sampled protocol's ``SAMPLED_KS``, ``eval.ks`` for full ranking), or
    once as ``<name>`` at cut-off ``at``. A *list* metric (``per_list``, ``fn``: :data:`ListMetric`)
    is one figure over the top-``LIST_K`` lists of the full-ranking protocols, ``<name>@10``, without
    an interval (there is no per-user mean to resample). ``protocols`` default: every protocol a metric
    of its kind can be computed on.

    The report shows each metric under ``header`` (``R`` -> ``R@10``; a metric reported once is headed
    ``header`` alone), in the sampled table at the cut-offs ``poster_ks`` (default: all of them; a metric
    shown at one cut-off there is headed without it, as the poster writes MRR for MRR@10), bold where
    best unless ``bold_best`` is false; ``words`` names it in sentences (default: ``name``). The headline
    table (``metrics/headline.json``) carries it at the cut-offs ``headline_ks``.
    """

    name: str
    fn: Callable
    header: str
    words: str | None = None
    per_list: bool = False
    protocols: tuple[str, ...] | None = None
    at: int | None = None
    poster_ks: tuple[int, ...] | None = None
    bold_best: bool = True
    headline_ks: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.protocols is None:  # frozen: set once, here
            object.__setattr__(self, "protocols", FULL_RANKING if self.per_list else ALL_PROTOCOLS)
        unknown = set(self.protocols) - set(ALL_PROTOCOLS)
        if unknown or (self.per_list and not set(self.protocols) <= set(FULL_RANKING)):
            raise ValueError(f"metric {self.name!r}: protocols {self.protocols}; a list metric is "
                             f"for {FULL_RANKING} only, a rank metric for any of {ALL_PROTOCOLS}")
        if self.per_list and self.at is not None:
            raise ValueError(f"metric {self.name!r}: a list metric is at LIST_K = {LIST_K}, not at {self.at}")

    @property
    def each_k(self) -> bool:
        """A rank metric reported at every cut-off of its protocol (not once, at ``at``)."""
        return not self.per_list and self.at is None


METRICS: Registry[Metric] = Registry("metric")


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS` under its name (a name registered twice is an error)."""
    return METRICS.register(metric.name)(metric)


def rank_metric(name: str, header: str, **spec) -> Callable[[RankMetric], RankMetric]:
    """Register the decorated per-user function as rank metric ``name`` (see :class:`Metric`)."""

    def deco(fn: RankMetric) -> RankMetric:
        register(Metric(name, fn, header, **spec))
        return fn

    return deco


def rank_metrics(protocol: str) -> list[Metric]:
    """The rank metrics reported on ``protocol``, in registration order."""
    return [m for m in METRICS.entries() if not m.per_list and protocol in m.protocols]


def list_metrics(protocol: str) -> list[Metric]:
    """The list metrics reported on ``protocol``, in registration order."""
    return [m for m in METRICS.entries() if m.per_list and protocol in m.protocols]


def each_k_names(protocol: str) -> list[str]:
    """The names of the rank metrics reported at every cut-off of ``protocol``."""
    return [m.name for m in rank_metrics(protocol) if m.each_k]


@rank_metric("recall", "R", words="Recall")
def recall(ranks: np.ndarray, k: int) -> np.ndarray:
    """ranks int (N,) -> float64 (N,): 1 if the target is in the top k (= hit rate, one target)."""
    return (np.asarray(ranks) <= k).astype(np.float64)


@rank_metric("ndcg", "N", words="NDCG", headline_ks=(10,))
def ndcg(ranks: np.ndarray, k: int) -> np.ndarray:
    """ranks int (N,) -> float64 (N,): 1/log2(rank+1) inside the top k, else 0 (ideal DCG is 1)."""
    r = np.asarray(ranks, dtype=np.float64)
    return np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0)


@rank_metric("mrr", "MRR", words="MRR", poster_ks=(10,))
def mrr(ranks: np.ndarray, k: int) -> np.ndarray:
    """ranks int (N,) -> float64 (N,): 1/rank inside the top k, else 0 (the poster's MRR is MRR@10)."""
    r = np.asarray(ranks, dtype=np.float64)
    return np.where(r <= k, 1.0 / r, 0.0)


# the poster's Novelty: the sampled protocol only (every candidate but the positive is unseen), at its
# k = 10; not bolded in the report, where "best" would reward misses
@rank_metric("novelty_p", "Novelty_P", protocols=("sampled",), at=10, bold_best=False)
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
    return {f"{m}@{k}": float(METRICS.get(m).fn(ranks, k).mean()) for m in metrics for k in ks}


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


# the list metrics: coverage@10 and self-information novelty@10 on the full and cold protocols
register(Metric("coverage", lambda top, info: coverage(top, len(info)), "Cov", per_list=True))
register(Metric("novelty", mean_self_information, "Nov", per_list=True))
