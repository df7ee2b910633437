"""Content-only nearest neighbours: the baseline that can rank cold items.

Each usable embedding side (image, text) is L2-normalised per item, scaled by the square root of its
weight (``image_weight`` for the image, 1 − ``image_weight`` for the text, so a dot product weighs the
sides' cosines by them) and the sides are concatenated (an item missing one side gets zeros there),
then re-normalised; a user's profile is the mean of their training items' vectors; score =
cosine(profile, item) for every item, cold ones included. Items with no usable content on any side
of non-zero weight are unrankable (-inf). ``image_weight`` 0.5 is the unweighted concatenation.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from pixrec.baselines.base import BASELINES, Baseline, FitContext
from pixrec.errors import InputError


def _unit_rows(v: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """float (I, d), bool (I,) -> float32 (I, d): rows scaled to unit norm where ``ok``, else 0."""
    norms = np.linalg.norm(v, axis=1)
    ok = ok & (norms > 0)
    return np.where(ok[:, None], v / np.where(ok, norms, 1.0)[:, None], 0.0).astype(np.float32)


@BASELINES.register("content_knn")
class ContentKNN(Baseline):
    """Cosine between the user's mean training-item content vector and every item's vector."""

    needs_embeddings = True

    def __init__(self, ctx: FitContext, rng: np.random.Generator, *, image_weight: float) -> None:
        data, embeddings = ctx.data, ctx.embeddings
        if not embeddings:
            raise InputError(
                "content_knn needs item embeddings (data/embeddings/<side>/); run the embed stages "
                "or drop 'content_knn' from baselines.names"
            )
        if not 0.0 <= image_weight <= 1.0:
            raise InputError(f"{ctx.where}.content_knn.image_weight must be in [0, 1], got {image_weight}")
        weight = {"image": image_weight, "text": 1.0 - image_weight}
        n = data.n_items
        parts, usable = [], np.zeros(n, dtype=bool)
        for side in sorted(embeddings):
            vectors = np.asarray(embeddings[side].vectors, dtype=np.float32)
            mask = np.asarray(embeddings[side].mask, dtype=bool)
            if vectors.ndim != 2 or vectors.shape[0] != n or mask.shape != (n,):
                raise InputError(
                    f"content_knn: {side} embeddings {vectors.shape} / mask {mask.shape} do not match "
                    f"the {n} items of the split; re-run the embed stage on this split"
                )
            ok = mask & np.isfinite(vectors).all(axis=1)
            if ok.any() and weight.get(side, 1.0) > 0:
                parts.append(_unit_rows(vectors, ok) * np.float32(np.sqrt(weight.get(side, 1.0))))
                usable |= ok & (np.linalg.norm(vectors, axis=1) > 0)
        if not parts:  # e.g. image_weight 1 on a text-only dataset: nothing to rank with (tuning
            parts = [np.zeros((n, 1), np.float32)]  # scores it 0 and moves on): every item unrankable
        self.n_items = n
        self.unrankable = ~usable
        self.items = _unit_rows(np.concatenate(parts, axis=1), usable)  # (I, d)
        x = data.train_matrix.astype(np.float32)  # (U, I)
        profiles = np.asarray(x @ self.items)  # (U, d): sum, the mean's direction
        self.profiles = _unit_rows(profiles, np.ones(len(profiles), dtype=bool))
        self._index = None  # faiss index of the rankable items, built on the first retrieve()

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        p = self.profiles[np.asarray(users)]  # (B, d)
        s = np.einsum("bd,bcd->bc", p, self.items[np.asarray(items)])  # (B, C)
        return np.where(self.unrankable[items], np.float32(-np.inf), s).astype(np.float32)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self._finish(self.profiles[np.asarray(users)] @ self.items.T)  # (B, I)

    def retrieve(
        self, users: np.ndarray, n: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` unexcluded items per user by exact inner product in a faiss flat index.

        The index holds only rankable items; it is asked for ``n`` + the most excluded items of any
        user in the block, so after dropping each user's excluded hits ``n`` remain. Same items as
        the default (score_all + top-k) up to ties, without a (B, I) score block.
        """
        import faiss

        users = np.asarray(users)
        if self._index is None:
            self._ids = np.flatnonzero(~self.unrankable).astype(np.int64)
            self._index = faiss.IndexFlatIP(self.items.shape[1])
            self._index.add(np.ascontiguousarray(self.items[self._ids]))
        sub = exclude[users] if exclude is not None else sp.csr_matrix((len(users), self.n_items))
        extra = int(np.diff(sub.indptr).max()) if len(users) else 0
        k = min(n + extra, len(self._ids))
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        _, hit = self._index.search(np.ascontiguousarray(self.profiles[users]), k)  # (B, k)
        items = self._ids[hit]  # hit == -1 only when k > index size: excluded by min() above
        rows = np.broadcast_to(np.arange(len(users), dtype=np.int64)[:, None], items.shape)
        seen = np.zeros(items.shape, dtype=bool)
        if sub.nnz:
            keys = np.repeat(np.arange(len(users), dtype=np.int64), np.diff(sub.indptr)) * self.n_items
            seen = np.isin(rows * self.n_items + items, keys + sub.indices)
        keep = ~seen & (np.cumsum(~seen, axis=1) <= n)
        return rows[keep], items[keep]
