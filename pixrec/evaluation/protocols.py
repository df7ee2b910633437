"""The ranking protocols: where each user's target lands among its candidates.

Ranks are 1-based and *pessimistic*: the target's rank is 1 + the number of competing items whose
score is not strictly below the target's, so a tie counts against the target and a NaN competitor
beats it. A constant scorer therefore ranks every target last among its ties, and a ``-inf`` target
(an item the model cannot rank) lands behind every item the model can score — no model looks good by
returning ties. Competing items exclude the user's masked (already seen) items, never the target.
Which metrics each protocol reports is :data:`pixrec.evaluation.metrics.METRICS`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from pixrec.evaluation.metrics import each_k_names, summarise
from pixrec.scoring import Recommender

SAMPLED_KS = [5, 10]  # the poster's cut-offs; part of the protocol's definition, not a tunable


def _as_block(scores: np.ndarray, shape: tuple[int, int], who: str) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.shape != shape:
        raise ValueError(f"{who} returned scores of shape {scores.shape}, expected {shape}")
    if scores.dtype != np.float32:
        scores = scores.astype(np.float32)
    return scores


def rank_sampled(
    recommender: Recommender, users: np.ndarray, candidates: np.ndarray, batch_users: int = 4096
) -> np.ndarray:
    """users int (N,), candidates int (N, C) with column 0 the positive -> int64 ranks (N,) in 1..C."""
    users = np.asarray(users)
    candidates = np.asarray(candidates)
    ranks = np.empty(len(users), dtype=np.int64)
    for s in range(0, len(users), batch_users):
        u, c = users[s : s + batch_users], candidates[s : s + batch_users]
        sc = _as_block(recommender.score(u, c), c.shape, f"{recommender.name}.score")
        ranks[s : s + len(u)] = 1 + (~(sc[:, 1:] < sc[:, :1])).sum(axis=1)
    return ranks


@dataclass
class FullRanks:
    """Result of :func:`rank_full`: ranks int64 (N,), and the top-``list_k`` items int32 (N, k).

    ``top_items`` holds -1 where fewer than k unmasked items have a finite score; it is None when
    the caller asked for no lists.
    """

    ranks: np.ndarray
    top_items: np.ndarray | None


def rank_full(
    recommender: Recommender,
    users: np.ndarray,
    targets: np.ndarray,
    mask: sp.csr_matrix,
    batch_users: int = 1024,
    list_k: int = 0,
) -> FullRanks:
    """Rank each target against the whole catalogue, the user's ``mask`` row excluded.

    users int (N,), targets int (N,), mask (n_users, n_items) CSR (nonzero = seen, not a
    competitor). Scores come from ``score_all`` one block of ``batch_users`` at a time; the mask is
    applied through the block's sparse rows, so nothing users × items is ever dense beyond a block.
    With ``list_k`` > 0 the top-``list_k`` unmasked items per user are returned too (torch.topk).
    """
    import torch

    users = np.asarray(users, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    if users.shape != targets.shape:
        raise ValueError(f"users {users.shape} and targets {targets.shape} must have the same shape")
    n_items = recommender.n_items
    if mask.shape[1] != n_items:
        raise ValueError(f"mask has {mask.shape[1]} items, {recommender.name} scores {n_items}")
    mask = sp.csr_matrix(mask)
    if (mask.data == 0).any():  # an explicit zero is not "seen"
        mask = mask.copy()
        mask.eliminate_zeros()
    ranks = np.empty(len(users), dtype=np.int64)
    top = np.full((len(users), list_k), -1, dtype=np.int32) if list_k else None
    for s in range(0, len(users), batch_users):
        u, t = users[s : s + batch_users], targets[s : s + batch_users]
        b = len(u)
        sc = _as_block(recommender.score_all(u), (b, n_items), f"{recommender.name}.score_all")
        at_least, m_rows, m_cols = block_ranks(sc, t, mask[u])
        ranks[s : s + b] = at_least
        if list_k:
            if not sc.flags.writeable:  # masked in place for the top-k
                sc = sc.copy()
            sc[m_rows, m_cols] = -np.inf
            vals, idx = torch.topk(torch.from_numpy(sc), min(list_k, n_items), dim=1)
            idx[~torch.isfinite(vals)] = -1  # -inf (unrankable / masked) is not a recommendation
            top[s : s + b, : idx.shape[1]] = idx.numpy()
    return FullRanks(ranks, top)


def block_ranks(sc: np.ndarray, targets: np.ndarray, seen: sp.csr_matrix
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block of :func:`rank_full`: scores (b, n_items), targets (b,), the block's mask rows ``seen``
    (b, n_items) CSR without explicit zeros -> (ranks (b,), rows and columns of the masked cells that
    are not the target). A target's rank counts the unmasked items not strictly below it, itself once.
    """
    b, n_items = sc.shape
    target_score = sc[np.arange(b), targets][:, None]  # (b, 1)
    # competitors not strictly below the target, whole row (the target itself counts once);
    # numpy's compare-and-count is ~5x faster than torch's bool sum here
    at_least = n_items - np.count_nonzero(sc < target_score, axis=1)  # (b,)
    # ... minus those among the user's masked items (the target is never masked)
    m_rows = np.repeat(np.arange(b), np.diff(seen.indptr))
    m_cols = seen.indices
    keep = m_cols != targets[m_rows]
    m_rows, m_cols = m_rows[keep], m_cols[keep]
    masked_hits = ~(sc[m_rows, m_cols] < target_score[m_rows, 0])
    return at_least - np.bincount(m_rows[masked_hits], minlength=b), m_rows, m_cols


def full_ranking_metrics(
    recommender: Recommender,
    users: np.ndarray,
    targets: np.ndarray,
    mask_matrix: sp.csr_matrix,
    ks: list[int],
    batch_users: int = 1024,
    metrics: list[str] | None = None,
) -> dict[str, float]:
    """:func:`rank_full`'s ranks summarised: ``{'recall@k', 'ndcg@k', 'mrr@k', ...: mean}`` (``metrics``,
    default: the full protocol's rank metrics at every cut-off), plus ``n_users``.

    The entry point for validation during training: e.g. valid targets with the train matrix as mask
    on a sample of users.
    """
    ranks = rank_full(recommender, users, targets, mask_matrix, batch_users).ranks
    return {**summarise(ranks, metrics or each_k_names("full"), list(ks)), "n_users": len(ranks)}
