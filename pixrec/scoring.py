"""The one scoring interface every recommender implements, baselines and the fusion model alike, and
the two-stage composition of recommenders (retrieve, then rank) behind the same interface."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp


@runtime_checkable
class Recommender(Protocol):
    """Scores users against items; higher is better. Scores are float32, never NaN.

    ``score_all`` may return ``-inf`` for items a model cannot rank (e.g. an ID-only model and an
    item with no training interaction): the evaluator treats ``-inf`` as "ranked last".
    """

    name: str
    n_items: int

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """users int (B,), items int (B, C) -> float32 (B, C)."""
        ...

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """users int (B,) -> float32 (B, n_items). Called on blocks of users, never all at once."""
        ...


def masked_top_k(
    scores: np.ndarray, exclude: sp.csr_matrix | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best items, the row's ``exclude`` items left out: what a user is recommended.

    scores float32 (B, I) (set to -inf in place where excluded), exclude (B, I) CSR or None ->
    (values float32 (B, k'), items int64 (B, k')), k' = min(k, I), best first (torch.topk); an
    excluded or unrankable (-inf) item fills a slot only when fewer than k' are left (value -inf).
    """
    import torch

    if not scores.flags.writeable:  # masked in place; torch wants a writable array too
        scores = scores.copy()
    if exclude is not None and exclude.nnz:
        scores[np.repeat(np.arange(len(scores)), np.diff(exclude.indptr)), exclude.indices] = -np.inf
    vals, idx = torch.topk(torch.from_numpy(scores), min(k, scores.shape[1]), dim=1)
    return vals.numpy(), idx.numpy().astype(np.int64, copy=False)


def top_unseen(
    rec: Recommender, users: np.ndarray, n: int, exclude: sp.csr_matrix | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's top ``n`` items with a finite score, not in its ``exclude`` row — what a
    two-stage retriever proposes. Models with a faster index override it as ``retrieve``.

    users int (B,) -> (rows int64 (M,), items int64 (M,)), row = position in ``users``, at most
    ``n`` per row: ``score_all`` for the block, then :func:`masked_top_k`.
    """
    users = np.asarray(users)
    s = np.asarray(rec.score_all(users), dtype=np.float32)  # (B, I)
    vals, idx = masked_top_k(s, None if exclude is None else exclude[users], n)
    ok = np.isfinite(vals)
    rows = np.broadcast_to(np.arange(len(users), dtype=np.int64)[:, None], ok.shape)
    return rows[ok], idx[ok]


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
