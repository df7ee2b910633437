"""One evaluator for every model: the three protocols of docs/evaluation.md, through one scoring interface.

``sampled``  the poster's: each sampled user's test item among its fixed 1 + 20 candidates
             (from the negative-sample stage); R/N@5, R/N@10, MRR@10 and the poster's Novelty_P.
``full``     each test user's test item against the whole catalogue, train + valid items masked;
             recall / ndcg / mrr at ``eval.ks``, coverage@10 and self-information novelty@10.
``cold``     ``full`` restricted to users whose test item has no training interaction; computed
             from the same ranks (a slice, not a second pass).

Which metrics a protocol reports, and at which cut-offs, is :data:`pixrec.evaluation.metrics.METRICS`'s.
Then every rank metric gets a bootstrap interval over test users, and every model a paired test
against the best baseline (see :func:`attach_intervals`). Nothing here reads test data beyond the
targets themselves: popularity (novelty) is training counts.

Models are evaluated as handed in: a pair model behind its two-stage retrievers, or a model re-ranked by
another, is wrapped by the caller (:func:`pixrec.evaluation.two_stage.two_stage_models`, the evaluate
stage's re-rank row) before it gets here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import pixrec.baselines.catalog  # noqa: F401  (registers every baseline: they are fitted by name)
from pixrec.baselines.base import BASELINES, FitContext, preflight_baseline
from pixrec.data.dataset import SplitData
from pixrec.evaluation.candidates import SampledCandidates
from pixrec.evaluation.config import EvalConfig
from pixrec.evaluation.intervals import IntervalConfig, protocol_intervals
from pixrec.evaluation.metrics import (
    LIST_K,
    METRICS,
    list_metrics,
    rank_metrics,
    self_information,
    summarise,
)
from pixrec.evaluation.protocols import SAMPLED_KS, rank_full, rank_sampled
from pixrec.scoring import Recommender

PROTOCOLS = ("sampled", "full", "cold")
REFERENCE_BY = ("full", "ndcg@10")  # the best baseline: highest full NDCG@10 on test (see below)


@dataclass
class ModelResult:
    """One model's metrics ``{protocol: {metric@k: value, 'n_users': n}}`` and per-user outputs.

    ``per_user[protocol]`` = (user_idx int32 (N,), target item_idx int32 (N,), rank int64 (N,));
    ``top_items`` int32 (N_full, LIST_K) for the full protocol's users, -1 = empty slot.
    """

    name: str
    metrics: dict[str, dict[str, float]]
    per_user: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    top_items: np.ndarray | None
    seconds: dict[str, float]


def evaluate_model(
    rec: Recommender,
    data: SplitData,
    sampled: SampledCandidates | None,
    config: EvalConfig,
    info: np.ndarray | None = None,
) -> ModelResult:
    """Run the three protocols on one recommender. ``info``: self-information per item (cached)."""
    info = self_information(data.train_popularity) if info is None else info
    metrics: dict[str, dict[str, float]] = {}
    per_user: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    seconds: dict[str, float] = {}

    if sampled is not None:
        t0 = time.perf_counter()
        ranks = rank_sampled(rec, sampled.users, sampled.candidates, config.batch_users)
        seconds["sampled"] = time.perf_counter() - t0
        metrics["sampled"] = {**protocol_metrics("sampled", ranks, SAMPLED_KS), "n_users": len(ranks)}
        per_user["sampled"] = (sampled.users, sampled.candidates[:, 0], ranks)

    users, targets = data.test.users, data.test.items
    t0 = time.perf_counter()
    full = rank_full(rec, users, targets, data.seen_matrix, config.batch_users, list_k=LIST_K)
    seconds["full"] = time.perf_counter() - t0
    cold = data.cold_items[targets]
    for protocol, sel in (("full", slice(None)), ("cold", cold)):
        ranks, top = full.ranks[sel], full.top_items[sel]
        m = protocol_metrics(protocol, ranks, list(config.ks), top, info)
        metrics[protocol] = {**m, "n_users": len(ranks)}
        per_user[protocol] = (users[sel], targets[sel], ranks)
    return ModelResult(rec.name, metrics, per_user, full.top_items, seconds)


def protocol_metrics(
    protocol: str, ranks: np.ndarray, ks: list[int], top: np.ndarray | None = None,
    info: np.ndarray | None = None,
) -> dict[str, float]:
    """One protocol block of :data:`~pixrec.evaluation.metrics.METRICS`' metrics for ``protocol``: each
    rank metric as its mean over users, at every cut-off of ``ks`` (``recall@10``) or once at its own
    (``novelty_p``), then each list metric from the top-``LIST_K`` lists ``top`` (``coverage@10``; ``info``:
    self-information per item). ``{}`` when there are no users."""
    if not len(ranks):
        return {}
    rank = rank_metrics(protocol)
    out = summarise(ranks, [m.name for m in rank if m.each_k], ks)
    out.update({m.name: float(m.fn(ranks, m.at).mean()) for m in rank if not m.each_k})
    if top is not None:
        out.update({f"{m.name}@{LIST_K}": m.fn(top, info) for m in list_metrics(protocol)})
    return out


def evaluate_baselines(
    ctx: FitContext, sampled: SampledCandidates | None, config: EvalConfig,
    log: Callable[[str], None] = print,
) -> list[ModelResult]:
    """Fit (on train) and evaluate every baseline of ``ctx.chosen`` at its chosen knobs, in order.

    Each is dropped after its evaluation unless a later one is built from it (a hybrid's parts).
    """
    names = list(ctx.chosen)
    for name in names:  # a budget refusal (EASE on a big catalogue) before any minutes of work
        preflight_baseline(name, ctx, ctx.chosen[name])
    info = self_information(ctx.data.train_popularity)
    results = []
    for i, name in enumerate(names):
        t0 = time.perf_counter()
        model = ctx.component(name)
        log(f"{name}: fitted in {time.perf_counter() - t0:.1f} s at {ctx.chosen[name]}")
        results.append(evaluate_model(model, ctx.data, sampled, config, info))
        log_result(results[-1], log)
        later = {c for n in names[i + 1:] for c in BASELINES.get(n).components(ctx.chosen[n])}
        for done in names[: i + 1]:
            if done not in later:
                ctx.release(done)
    return results


@dataclass
class TrainedModel:
    """A trained model to evaluate beside the baselines: its row name, how to load it as the
    Recommender to rank, and whether it scores pair by pair (then ``eval.ranking: two_stage`` puts it
    behind retrievers: :func:`pixrec.evaluation.two_stage.two_stage_models` wraps ``load``)."""

    name: str
    load: Callable[[], Recommender]
    pairwise: bool = False


def evaluate_all(
    ctx: FitContext,
    sampled: SampledCandidates | None,
    config: EvalConfig,
    intervals: IntervalConfig,
    models: list[TrainedModel],
    log: Callable[[str], None] = print,
) -> tuple[list[ModelResult], str | None]:
    """Every baseline of ``ctx.chosen`` (see :func:`evaluate_baselines`), then each trained model as its
    ``load`` returns it (already behind its retrievers or re-ranker when the caller wrapped it); then
    intervals and paired tests against the best baseline. Returns the results and that reference's
    name."""
    results = evaluate_baselines(ctx, sampled, config, log)
    for model in models:
        results.append(evaluate_model(model.load(), ctx.data, sampled, config))
        log_result(results[-1], log)
    reference = reference_model(results, list(ctx.chosen))
    attach_intervals(results, reference, intervals, config.seed)
    return results, reference


def reference_model(results: list[ModelResult], baselines: list[str]) -> str | None:
    """The best baseline by full NDCG@10 on test, first in list order on a tie.

    Choosing the *comparator* on test is a reporting choice, not tuning: it decides which row every
    model's paired test is against, never any model's knobs (those were chosen on validation).
    """
    protocol, key = REFERENCE_BY
    scores = {r.name: r.metrics.get(protocol, {}).get(key) for r in results if r.name in baselines}
    scores = {m: v for m, v in scores.items() if v is not None}
    return max(scores, key=lambda m: (scores[m], -baselines.index(m))) if scores else None


def attach_intervals(
    results: list[ModelResult], reference: str | None, config: IntervalConfig, seed: int
) -> None:
    """Add ``<metric>_lo`` / ``_hi`` to every rank metric, and the paired ``ndcg@10_diff``,
    ``_diff_lo``, ``_diff_hi`` and ``ndcg@10_p`` against ``reference`` to every other model, in place.

    Coverage@10 and novelty@10 are list-level figures, not means of a per-user value: no interval.
    """
    for p_id, protocol in enumerate(PROTOCOLS):
        have = [r for r in results if protocol in r.per_user]
        if not have:
            continue
        users = have[0].per_user[protocol][0]
        for r in have[1:]:  # a paired test needs the same users in the same order
            if not np.array_equal(r.per_user[protocol][0], users):
                raise RuntimeError(f"{r.name}: {protocol} users differ from {have[0].name}'s")
        keys = interval_keys(have[0].metrics[protocol])
        rng = np.random.default_rng(np.random.SeedSequence([seed, p_id]))
        ranks = {r.name: r.per_user[protocol][2] for r in have}
        ref = reference if reference in ranks else None
        for name, extra in protocol_intervals(ranks, keys, ref, config, rng).items():
            next(r for r in have if r.name == name).metrics[protocol].update(extra)


def interval_keys(metrics: dict[str, float]) -> dict[str, tuple[str, int]]:
    """The per-user-mean (rank) metrics of a protocol block, key -> (metric, k): ``recall@10`` ->
    (recall, 10), ``novelty_p`` -> (novelty_p, its cut-off 10). List metrics have no interval."""
    out = {}
    for key in metrics:
        name, _, k = key.partition("@")
        metric = METRICS.get(name) if name in METRICS else None
        if metric is None or metric.per_list:
            continue
        if metric.each_k and k:
            out[key] = (name, int(k))
        elif metric.at is not None and not k:
            out[key] = (name, metric.at)
    return out


def log_result(r: ModelResult, log: Callable[[str], None]) -> None:
    parts = []
    for protocol, m in r.metrics.items():
        head = m.get("ndcg@10")
        head_s = "n/a" if head is None else f"{head:.4f}"
        parts.append(f"{protocol} ndcg@10={head_s} (n={m['n_users']}, "
                     f"{r.seconds.get(protocol, 0.0):.1f} s)")
    log(f"{r.name}: " + "; ".join(parts))
