"""Exact top-k unseen items per user, one block of users at a time: ``score_all`` for the block, the
user's train + valid items masked, torch top-k. Never a users x items matrix beyond one block, and no
approximation: the lists are the ones the evaluator's full protocol ranks from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from pixrec.scoring import Recommender, masked_top_k


@dataclass
class TopK:
    """``users`` int64 (N,); ``items`` int64 (N, k), best first, -1 = empty slot (fewer than k unseen
    items the model can rank); ``scores`` float32 (N, k), -inf in empty slots."""

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    @property
    def n_short(self) -> int:
        """Users with at least one empty slot."""
        return int((self.items < 0).any(axis=1).sum())


def top_k_unseen(
    rec: Recommender, users: np.ndarray, k: int, exclude: sp.csr_matrix | None, batch_users: int
) -> TopK:
    """users int (N,) -> their top ``k`` items by ``rec``, each user's ``exclude`` row (n_users, n_items)
    CSR left out, in blocks of ``batch_users`` (peak memory: batch_users x n_items float32)."""
    users = np.asarray(users, dtype=np.int64)
    width = min(k, rec.n_items)
    items = np.full((len(users), width), -1, dtype=np.int64)
    scores = np.full((len(users), width), -np.inf, dtype=np.float32)
    for s in range(0, len(users), batch_users):
        u = users[s : s + batch_users]
        block = np.asarray(rec.score_all(u), dtype=np.float32)  # (B, I)
        if block.shape != (len(u), rec.n_items):
            raise ValueError(f"{rec.name}.score_all returned {block.shape}, expected {(len(u), rec.n_items)}")
        vals, idx = masked_top_k(block, None if exclude is None else exclude[u], width)
        ok = np.isfinite(vals)
        items[s : s + len(u)] = np.where(ok, idx, -1)
        scores[s : s + len(u)] = np.where(ok, vals, -np.inf)
    return TopK(users, items, scores)
