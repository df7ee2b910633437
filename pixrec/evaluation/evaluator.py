"""One evaluator for every model: the three protocols of README §4, through one scoring interface.

``sampled``  the poster's: each sampled user's test item among its fixed 1 + 20 candidates
             (from the negative-sample stage); R/N@5, R/N@10, MRR@10 and the poster's Novelty_P.
``full``     each test user's test item against the whole catalogue, train + valid items masked;
             recall / ndcg / mrr at ``eval.ks``, coverage@10 and self-information novelty@10.
``cold``     ``full`` restricted to users whose test item has no training interaction; computed
             from the same ranks (a slice, not a second pass).

Nothing here reads test data beyond the targets themselves: popularity (novelty) is training counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from pixrec.config import ConfigError, section
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.evaluation.metrics import (
    METRICS,
    coverage,
    mean_self_information,
    self_information,
    summarise,
)
from pixrec.evaluation.protocols import (
    FULL_METRICS,
    SAMPLED_KS,
    SAMPLED_METRICS,
    rank_full,
    rank_sampled,
)
from pixrec.scoring import Recommender, top_unseen

LIST_K = 10  # length of the recommendation lists behind coverage@10 and novelty@10 (README §4)
RANKINGS = ("exact", "two_stage")


@section
class EvalConfig:
    """The ``eval`` section of params.yaml."""

    ks: list[int]
    batch_users: int
    baselines: list[str]
    knn_neighbours: int
    ease_lambda: float
    ease_max_gib: float
    seed: int
    ranking: str
    two_stage_retrievers: list[str]
    two_stage_candidates: int
    two_stage_sweep: list[int]

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"eval.ks must be a non-empty list of positive integers, got {self.ks}")
        if self.two_stage_sweep and min(self.two_stage_sweep) < 1:
            raise ConfigError(f"eval.two_stage_sweep must be a list of positive integers, "
                              f"got {self.two_stage_sweep}")
        if self.batch_users < 1 or self.knn_neighbours < 1 or self.two_stage_candidates < 1:
            raise ConfigError("eval: batch_users, knn_neighbours and two_stage_candidates must be >= 1")
        if self.ranking not in RANKINGS:
            raise ConfigError(f"eval.ranking must be one of {list(RANKINGS)}, got {self.ranking!r}")
        if len(set(self.baselines)) != len(self.baselines):
            raise ConfigError(f"eval.baselines lists a name twice: {self.baselines}")

    def baseline_params(self) -> dict:
        """The keys a baseline may declare as keyword arguments (see pixrec.baselines.base)."""
        return {"knn_neighbours": self.knn_neighbours, "ease_lambda": self.ease_lambda,
                "ease_max_gib": self.ease_max_gib}


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


@dataclass
class SampledCandidates:
    """The sampled protocol's fixed sets: users int32 (N,), candidates int32 (N, C), col 0 positive."""

    users: np.ndarray
    candidates: np.ndarray

    @classmethod
    def load(cls, candidates_dir: Path, data: SplitData) -> SampledCandidates:
        from pixrec import schema as S

        d = Path(candidates_dir)
        for name in (S.CAND_USERS_FILE, S.CAND_FILE):
            if not (d / name).is_file():
                raise InputError(f"{d / name}: missing; run the negative-sample stage first")
        out = cls(np.load(d / S.CAND_USERS_FILE), np.load(d / S.CAND_FILE))
        out.validate(data, str(d))
        return out

    def validate(self, data: SplitData, where: str) -> None:
        """Shapes, index ranges, and column 0 = each user's test item (else: a stale negatives dir)."""
        u, c = self.users, self.candidates
        if u.ndim != 1 or c.ndim != 2 or len(u) != len(c) or c.shape[1] < 2:
            raise InputError(f"{where}: sampled users {u.shape} / candidates {c.shape} do not match")
        if len(u) and (u.min() < 0 or u.max() >= data.n_users or c.min() < 0 or c.max() >= data.n_items):
            raise InputError(f"{where}: sampled users or candidates out of the split's index range; "
                             f"re-run the negative-sample stage on this split")
        test_item = np.full(data.n_users, -1, dtype=np.int64)
        test_item[data.test.users] = data.test.items
        bad = np.flatnonzero(test_item[u] != c[:, 0])
        if bad.size:
            raise InputError(f"{where}: column 0 is not the test item for row(s) {bad[:10].tolist()} "
                             f"(user_idx {u[bad[:10]].tolist()}); re-run the negative-sample stage")


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
        k = max(SAMPLED_KS)
        m = summarise(ranks, SAMPLED_METRICS, SAMPLED_KS)
        if len(ranks):  # the poster's columns: MRR is MRR@10; Novelty_P = 1 − R@10/10
            m["novelty_p"] = float(METRICS.get("novelty_p")(ranks, k).mean())
        metrics["sampled"] = {**m, "n_users": len(ranks)}
        per_user["sampled"] = (sampled.users, sampled.candidates[:, 0], ranks)

    users, targets = data.test.users, data.test.items
    t0 = time.perf_counter()
    full = rank_full(rec, users, targets, data.seen_matrix, config.batch_users, list_k=LIST_K)
    seconds["full"] = time.perf_counter() - t0
    cold = data.cold_items[targets]
    for protocol, sel in (("full", slice(None)), ("cold", cold)):
        ranks, top = full.ranks[sel], full.top_items[sel]
        m = summarise(ranks, FULL_METRICS, list(config.ks))
        if len(ranks):
            m[f"coverage@{LIST_K}"] = coverage(top, data.n_items)
            m[f"novelty@{LIST_K}"] = mean_self_information(top, info)
        metrics[protocol] = {**m, "n_users": len(ranks)}
        per_user[protocol] = (users[sel], targets[sel], ranks)
    return ModelResult(rec.name, metrics, per_user, full.top_items, seconds)


class TwoStage:
    """``eval.ranking: two_stage``: retrievers propose, the ranker re-scores only their proposals.

    For each user, the union of each retriever's top ``n_candidates`` unseen items is scored by the
    ranker; every other item is -inf. This is a recommender in its own right (retrieve, then rank),
    evaluated exactly as such — not an approximation of the ranker's exact full ranking, which costs
    n_users × n_items ranker calls. ``score`` (fixed candidates: the sampled protocol) is the ranker's.
    """

    def __init__(
        self, ranker: Recommender, retrievers: list[Recommender], n_candidates: int,
        exclude: sp.csr_matrix | None = None,
    ) -> None:
        self.ranker, self.retrievers, self.k = ranker, retrievers, n_candidates
        self.exclude = exclude
        self.name = ranker.name
        self.n_items = ranker.n_items

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.ranker.score(users, items)

    def candidates(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """users (B,) -> the union of the retrievers' proposals: (rows (M,), items (M,)), int64,
        row = position in ``users``, sorted by (row, item)."""
        keys = []
        for r in self.retrievers:
            retrieve = getattr(r, "retrieve", None)
            rows, items = (retrieve(users, self.k, self.exclude) if retrieve is not None
                           else top_unseen(r, users, self.k, self.exclude))
            keys.append(rows * self.n_items + items)
        pairs = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
        return pairs // self.n_items, pairs % self.n_items

    def score_all(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users)
        b = len(users)
        rows, items = self.candidates(users)
        out = np.full((b, self.n_items), -np.inf, dtype=np.float32)
        if len(rows):
            out[rows, items] = self.ranker.score(users[rows], items[:, None])[:, 0]
        return out


def two_stage_ranker(
    ranker: Recommender,
    data: SplitData,
    embeddings: dict[str, tuple[np.ndarray, np.ndarray]] | None,
    config: EvalConfig,
    fitted: dict[str, Recommender] | None = None,
    log: Callable[[str], None] = print,
) -> TwoStage:
    """``ranker`` behind the retrievers of ``config.two_stage_retrievers`` (fitted here unless given
    in ``fitted``), re-ranking their top ``config.two_stage_candidates`` unseen items per user."""
    from pixrec.baselines import make_baseline, seed_for

    fitted = {} if fitted is None else fitted
    retrievers = []
    for name in config.two_stage_retrievers:
        if name not in fitted:
            t0 = time.perf_counter()
            fitted[name] = make_baseline(name, data, embeddings, seed_for(config.seed, name),
                                         **config.baseline_params())
            log(f"{name}: fitted in {time.perf_counter() - t0:.1f} s (two-stage retriever)")
        retrievers.append(fitted[name])
    return TwoStage(ranker, retrievers, config.two_stage_candidates, exclude=data.seen_matrix)


def evaluate_all(
    data: SplitData,
    embeddings: dict[str, tuple[np.ndarray, np.ndarray]] | None,
    sampled: SampledCandidates | None,
    config: EvalConfig,
    fusion: Callable[[], Recommender] | None = None,
    log: Callable[[str], None] = print,
) -> list[ModelResult]:
    """Fit and evaluate every baseline in ``config.baselines``, then the fusion model if given.

    Baselines are fitted one at a time and dropped after evaluation (memory), except the two-stage
    retrievers, which the fusion model needs. Every configured baseline is pre-flighted first, so a
    budget refusal (EASE on a big catalogue) comes before any minutes of work.
    """
    from pixrec.baselines import make_baseline, preflight_baseline, seed_for

    params = config.baseline_params()
    two_stage = fusion is not None and config.ranking == "two_stage"
    retriever_names = config.two_stage_retrievers if two_stage else []
    for name in dict.fromkeys([*config.baselines, *retriever_names]):
        preflight_baseline(name, data, **params)
    info = self_information(data.train_popularity)
    results, keep = [], {}

    def fit(name: str) -> Recommender:
        t0 = time.perf_counter()
        model = make_baseline(name, data, embeddings, seed_for(config.seed, name), **params)
        log(f"{name}: fitted in {time.perf_counter() - t0:.1f} s")
        return model

    for name in config.baselines:
        model = fit(name)
        results.append(evaluate_model(model, data, sampled, config, info))
        _log_result(results[-1], log)
        if name in retriever_names:
            keep[name] = model
    if fusion is not None:
        rec = fusion()
        if two_stage:
            rec = two_stage_ranker(rec, data, embeddings, config, fitted=keep, log=log)
        results.append(evaluate_model(rec, data, sampled, config, info))
        _log_result(results[-1], log)
    return results


def _log_result(r: ModelResult, log: Callable[[str], None]) -> None:
    parts = []
    for protocol, m in r.metrics.items():
        head = m.get("ndcg@10")
        head_s = "n/a" if head is None else f"{head:.4f}"
        parts.append(f"{protocol} ndcg@10={head_s} (n={m['n_users']}, "
                     f"{r.seconds.get(protocol, 0.0):.1f} s)")
    log(f"{r.name}: " + "; ".join(parts))


def write_outputs(
    results: list[ModelResult], out_dir: Path, metrics_path: Path, plot_path: Path, meta: dict
) -> dict:
    """``metrics/evaluate.json`` ({model: {protocol: {metric@k: value, n_users}}}), the dvc plot CSV
    (NDCG@10 per model and protocol), and ``out_dir``: per-user ranks and top-10 lists (Parquet)."""
    import polars as pl

    from pixrec import schema as S
    from pixrec.io import atomic_dir, atomic_file, write_json

    metrics = {r.name: r.metrics for r in results}
    names = [r.name for r in results]
    if len(set(names)) != len(names):
        raise ValueError(f"two evaluated models share a name: {names}")
    ranks = pl.concat(
        [
            pl.DataFrame({
                S.USER_IDX: np.asarray(u, dtype=np.int32),
                S.ITEM_IDX: np.asarray(t, dtype=np.int32),
                S.EVAL_MODEL: r.name,
                S.EVAL_PROTOCOL: protocol,
                S.EVAL_RANK: np.asarray(rk, dtype=np.int64),
            })
            for r in results
            for protocol, (u, t, rk) in r.per_user.items()
        ],
        how="vertical",
    ) if results else pl.DataFrame()
    top = pl.concat(
        [
            pl.DataFrame({
                S.EVAL_MODEL: r.name,
                S.USER_IDX: np.asarray(r.per_user["full"][0], dtype=np.int32),
                S.EVAL_TOP_ITEMS: r.top_items,
            })
            for r in results
        ],
        how="vertical",
    ) if results else pl.DataFrame()
    plot = pl.DataFrame(
        [
            {"model": r.name, "protocol": p, "metric": "ndcg@10", "value": m["ndcg@10"],
             "label": f"{p} · {r.name}"}
            for r in results
            for p, m in r.metrics.items()
            if "ndcg@10" in m
        ],
        schema={"model": pl.Utf8, "protocol": pl.Utf8, "metric": pl.Utf8, "value": pl.Float64,
                "label": pl.Utf8},
    )
    with atomic_dir(Path(out_dir)) as tmp:
        ranks.write_parquet(tmp / S.EVAL_RANKS_FILE, statistics=False)
        top.write_parquet(tmp / S.EVAL_TOP_FILE, statistics=False)
        # no timings (they are logged): the stage's outputs must hash the same on every run
        write_json(tmp / S.EVAL_META_FILE, {**meta, "list_k": LIST_K})
    with atomic_file(Path(plot_path)) as tmp:
        plot.write_csv(tmp)
    write_json(Path(metrics_path), metrics)
    return metrics
