"""Neighbourhood baselines on the sparse binary training matrix X (n_users, n_items).

Both use cosine similarity of binary vectors, |A ∩ B| / sqrt(|A| |B|), keep the top
``k`` neighbours, and are sparse/block code: no per-user loop over the catalogue.
Items without a training interaction (cold) have no neighbours and are unrankable (-inf).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from pixrec.baselines.base import BASELINES, Baseline, FitContext
from pixrec.errors import InputError

ITEM_BLOCK = 2048  # item rows of XᵀX computed (and pruned) at a time, bounding memory on big catalogues


def top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest positive entries of each row of ``m``; ties go to the lower column index.

    One lexsort over the nonzeros, no per-row loop.
    """
    m = sp.csr_matrix(m)
    m.sort_indices()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((-m.data, rows))  # rows stay grouped; within a row by score desc, then column
    pos_in_row = np.arange(m.nnz) - m.indptr[rows]  # rows[order] == rows: grouping is unchanged
    keep = order[(pos_in_row < k) & (m.data[order] > 0)]
    out = sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)
    out.sort_indices()
    return out


def check_k(k: int, name: str) -> None:
    if k < 1:
        raise InputError(f"{name}: knob k must be >= 1, got {k}")


def _inv_sqrt(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64).ravel()
    return np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1.0)), 0.0)


@BASELINES.register("item_knn")
class ItemKNN(Baseline):
    """Item–item cosine on X, each item's top-k neighbours kept; score = X[user] @ S.

    S[i, j] is the similarity of j to i if j is among i's k nearest, so a user's history items each
    vote for their own neighbours.
    """

    def __init__(self, ctx: FitContext, rng: np.random.Generator, *, k: int) -> None:
        data = ctx.data
        check_k(k, "item_knn")
        self.n_items = data.n_items
        self.unrankable = data.cold_items
        self.x = data.train_matrix.astype(np.float32)  # (U, I)
        scale = sp.diags(_inv_sqrt(self.x.sum(axis=0)).astype(np.float32))  # (I, I)
        xn = (self.x @ scale).tocsr()  # unit-norm columns
        xnt = xn.T.tocsr()  # (I, U)
        blocks = []
        for s in range(0, self.n_items, ITEM_BLOCK):
            c = (xnt[s : s + ITEM_BLOCK] @ xn).tocsr()  # (b, I) cosine
            c = c.tocoo()
            off_diag = c.col != c.row + s
            c = sp.csr_matrix((c.data[off_diag], (c.row[off_diag], c.col[off_diag])), shape=c.shape)
            blocks.append(top_k_per_row(c, k))
        self.sim = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, 0))  # (I, I)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self._finish((self.x[users] @ self.sim).toarray())  # (B, I)


@BASELINES.register("user_knn")
class UserKNN(Baseline):
    """User–user cosine on X; score = Σ over the user's top-k neighbours v of sim(u, v) · X[v].

    The user-user similarities of a block are a sparse product, made dense one ``chunk`` of users at
    a time (chunk × n_users floats) for a torch top-k; the user is never their own neighbour.
    """

    chunk = 256

    def __init__(self, ctx: FitContext, rng: np.random.Generator, *, k: int) -> None:
        data = ctx.data
        check_k(k, "user_knn")
        self.n_items = data.n_items
        self.n_users = data.n_users
        self.unrankable = data.cold_items
        self.k = k
        self.x = data.train_matrix.astype(np.float32)  # (U, I)
        self.xn = (sp.diags(_inv_sqrt(self.x.sum(axis=1)).astype(np.float32)) @ self.x).tocsr()
        self.xnt = self.xn.T.tocsr()  # (I, U)

    def neighbours(self, users: np.ndarray) -> sp.csr_matrix:
        """users int (b,) -> (b, n_users) CSR: cosine similarity of each user's top-k neighbours."""
        import torch

        users = np.asarray(users)
        sim = (self.xn[users] @ self.xnt).toarray()  # (b, U)
        sim[np.arange(len(users)), users] = -np.inf
        k = min(self.k, self.n_users)
        vals, idx = torch.topk(torch.from_numpy(sim), k, dim=1)  # (b, k)
        vals, idx = vals.numpy(), idx.numpy()
        keep = vals > 0
        rows = np.repeat(np.arange(len(users)), k).reshape(len(users), k)
        return sp.csr_matrix((vals[keep], (rows[keep], idx[keep])), shape=(len(users), self.n_users))

    def score_all(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users)
        out = np.empty((len(users), self.n_items), dtype=np.float32)
        for s in range(0, len(users), self.chunk):
            u = users[s : s + self.chunk]
            out[s : s + len(u)] = (self.neighbours(u) @ self.x).toarray()  # (b, I)
        return self._finish(out)
