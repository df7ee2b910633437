"""The one scoring interface every recommender implements, baselines and the fusion model alike."""

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


def top_unseen(
    rec: Recommender, users: np.ndarray, n: int, exclude: sp.csr_matrix | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's top ``n`` items with a finite score, not in its ``exclude`` row — what a
    two-stage retriever proposes. Models with a faster index override it as ``retrieve``.

    users int (B,) -> (rows int64 (M,), items int64 (M,)), row = position in ``users``, at most
    ``n`` per row: ``score_all`` for the block, excluded items set to -inf, torch top-k.
    """
    import torch

    users = np.asarray(users)
    b = len(users)
    s = np.asarray(rec.score_all(users), dtype=np.float32)  # (B, I)
    if not s.flags.writeable:  # masked in place below
        s = s.copy()
    if exclude is not None:
        sub = exclude[users]
        s[np.repeat(np.arange(b), np.diff(sub.indptr)), sub.indices] = -np.inf
    vals, idx = torch.topk(torch.from_numpy(s), min(n, rec.n_items), dim=1)
    ok = torch.isfinite(vals).numpy()
    rows = np.broadcast_to(np.arange(b, dtype=np.int64)[:, None], ok.shape)
    return rows[ok], idx.numpy()[ok].astype(np.int64)
