"""Two-stage ranking: the ranker behind its retrievers (:func:`two_stage_ranker`; the evaluate stage's
pair models through :func:`two_stage_models`), and how far it falls from exact ranking for the same
ranker (:func:`two_stage_sweep`: the two-stage stage's table, see docs/evaluation.md "Two-stage ranking").

For each N, the retrievers propose their top-N unseen items per user (union), the ranker re-scores
those only; the full and cold protocols then run on that and on the exact ranking of every item.
``candidate_recall`` is the ceiling two-stage cannot beat: the share of test items that were
proposed at all. Nothing here is sampled: the same users, targets and masks as the evaluate stage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

import pixrec.baselines.catalog  # noqa: F401  (registers every baseline: retrievers are named)
from pixrec.baselines.base import Baseline, FitContext, preflight_baseline
from pixrec.data.dataset import SplitData
from pixrec.evaluation.config import EvalConfig
from pixrec.evaluation.evaluator import TrainedModel, evaluate_model
from pixrec.evaluation.intervals import point_estimates
from pixrec.scoring import Recommender, TwoStage

if TYPE_CHECKING:
    from pixrec.features import Embeddings

PROTOCOLS = ("full", "cold")


def retriever_context(
    data: SplitData, embeddings: dict[str, Embeddings] | None, config: EvalConfig
) -> FitContext:
    """Where the retrievers of ``eval.two_stage_retrievers`` are fitted, at their fixed knobs."""
    return FitContext(data, embeddings, config.seed, chosen=dict(config.two_stage_retrievers),
                      where="eval.two_stage_retrievers")


def two_stage_ranker(
    ranker: Recommender,
    data: SplitData,
    embeddings: dict[str, Embeddings] | None,
    config: EvalConfig,
    fitted: dict[str, Baseline] | None = None,
    log: Callable[[str], None] = print,
) -> TwoStage:
    """``ranker`` behind the retrievers of ``config.two_stage_retrievers`` (fitted here unless given
    in ``fitted``), re-ranking their top ``config.two_stage_candidates`` unseen items per user."""
    fitted = {} if fitted is None else fitted
    ctx = retriever_context(data, embeddings, config)
    for name in config.two_stage_retrievers:
        if name not in fitted:
            t0 = time.perf_counter()
            fitted[name] = ctx.component(name)
            log(f"{name}: fitted in {time.perf_counter() - t0:.1f} s (two-stage retriever)")
    retrievers = [fitted[name] for name in config.two_stage_retrievers]
    return TwoStage(ranker, retrievers, config.two_stage_candidates, exclude=data.seen_matrix)


def two_stage_models(
    models: list[TrainedModel],
    data: SplitData,
    embeddings: dict[str, Embeddings] | None,
    config: EvalConfig,
    log: Callable[[str], None] = print,
) -> list[TrainedModel]:
    """``models`` as ``eval.ranking`` has them evaluated: under ``two_stage`` each pairwise one loads
    behind the retrievers of ``eval.two_stage_retrievers`` (:func:`two_stage_ranker`; fitted when the
    first is loaded, then shared); every other model, and all of them under ``exact``, as given.

    The retrievers' cheap checks (an unknown knob, EASE's memory budget) run here, so a refusal comes
    before the caller starts any work.
    """
    if config.ranking != "two_stage" or not any(m.pairwise for m in models):
        return list(models)
    rctx = retriever_context(data, embeddings, config)
    for name, knobs in rctx.chosen.items():
        preflight_baseline(name, rctx, knobs)
    fitted: dict[str, Baseline] = {}  # the retrievers, fitted once for every pairwise model

    def behind(model: TrainedModel) -> TrainedModel:
        def load() -> TwoStage:
            return two_stage_ranker(model.load(), data, embeddings, config, fitted=fitted, log=log)

        return TrainedModel(model.name, load, model.pairwise)

    return [behind(m) if m.pairwise else m for m in models]


def candidate_recall(ts: TwoStage, users: np.ndarray, targets: np.ndarray,
                     batch_users: int) -> tuple[float, float]:
    """(share of targets among the proposals, mean proposals per user) over ``users``."""
    hit, total = 0, 0
    for s in range(0, len(users), batch_users):
        u, t = users[s : s + batch_users], targets[s : s + batch_users]
        rows, items = ts.candidates(u)
        hit += int(np.isin(np.arange(len(u)) * ts.n_items + t, rows * ts.n_items + items).sum())
        total += len(rows)
    return hit / max(len(users), 1), total / max(len(users), 1)


def evaluated_exactly(evaluate: dict, eval_meta: dict, name: str, config: EvalConfig) -> dict | None:
    """The evaluate stage's full and cold point estimates of model ``name`` (``evaluate``: its
    metrics/evaluate.json, ``eval_meta``: its data/eval/meta.json) when that stage ranked it exactly
    with this config's cut-offs and seed; else None. Exact ranking of a pair model scores every
    (user, item) pair, the costliest evaluation in the pipeline: done once, not once per stage."""
    ran = eval_meta.get("config", {})
    same = (ran.get("ranking"), ran.get("ks"), ran.get("seed")) == ("exact", list(config.ks), config.seed)
    if not same or not all(p in evaluate.get(name, {}) for p in PROTOCOLS):
        return None
    return {p: point_estimates(evaluate[name][p]) for p in PROTOCOLS}


def two_stage_sweep(
    ranker: Recommender, data: SplitData, embeddings: dict[str, Embeddings] | None, config: EvalConfig,
    log: Callable[[str], None] = print, exact: dict | None = None,
) -> dict:
    """``{'exact': {...}, 'n=100': {...}, ...}``: full and cold metrics per ranking, the two-stage
    rows with candidate recall, mean candidates per user, and NDCG@10 minus the exact one.
    ``exact``: the exact ranking's metrics when already computed (:func:`evaluated_exactly`)."""
    if not config.two_stage_sweep:  # e.g. PixelRec50K: exact scoring of every pair is what two-stage avoids
        log("eval.two_stage_sweep is empty: no exact vs two-stage comparison")
        return {"retrievers": list(config.two_stage_retrievers), "skipped": "eval.two_stage_sweep is empty"}
    out: dict[str, dict] = {}
    t0 = time.perf_counter()
    if exact is None:
        exact = evaluate_model(ranker, data, None, config).metrics
        log(f"exact: full ndcg@10={exact['full']['ndcg@10']:.4f} ({time.perf_counter() - t0:.1f} s)")
    else:
        log(f"exact: full ndcg@10={exact['full']['ndcg@10']:.4f} (the evaluate stage's)")
    out["exact"] = {p: exact[p] for p in PROTOCOLS}  # timings are logged, never stored
    fitted: dict[str, Baseline] = {}
    users, targets = data.test.users, data.test.items
    cold = data.cold_items[targets]
    for n in config.two_stage_sweep:
        ts = two_stage_ranker(ranker, data, embeddings, replace(config, two_stage_candidates=n), fitted, log)
        t0 = time.perf_counter()
        res = evaluate_model(ts, data, None, config)
        seconds = time.perf_counter() - t0
        row = {p: res.metrics[p] for p in PROTOCOLS}
        for p, sel in (("full", slice(None)), ("cold", cold)):
            rec_, mean_c = candidate_recall(ts, users[sel], targets[sel], config.batch_users)
            row[p] = {**row[p], "candidate_recall": rec_, "mean_candidates": mean_c,
                      "ndcg@10_minus_exact": row[p].get("ndcg@10", 0.0) - out["exact"][p].get("ndcg@10", 0.0)}
        out[f"n={n}"] = row
        log(f"n={n}: full ndcg@10={row['full']['ndcg@10']:.4f} "
            f"(exact {out['exact']['full']['ndcg@10']:.4f}), candidate recall "
            f"{row['full']['candidate_recall']:.3f}, {row['full']['mean_candidates']:.0f} candidates/user "
            f"({seconds:.1f} s)")
    return {"retrievers": list(config.two_stage_retrievers), **out}
