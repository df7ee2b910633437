"""Nearest items by cosine of a model's item vectors: exact inner-product search (faiss IndexFlatIP)
over L2-normalised rows, so what ``pixrec similar`` lists is what the model itself finds alike."""

from __future__ import annotations

import numpy as np


def normalised(vectors: np.ndarray) -> np.ndarray:
    """(N, D) -> float32 (N, D) unit rows; an all-zero row stays zero (cosine 0 with everything)."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norm > 0, norm, 1.0)


def cosine_neighbours(
    table: np.ndarray, queries: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``table`` (N, D) nearest each of ``queries`` (Q, D) by cosine, best first,
    leaving out row ``exclude[q]`` (Q,) for query q (an item is not its own neighbour).

    -> (rows int64 (Q, k'), cosine float32 (Q, k')), k' = min(k, N - (exclude given)).
    """
    import faiss

    base = normalised(table)
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    extra = 0 if exclude is None else 1
    width = min(k + extra, len(base))
    sims, rows = index.search(normalised(queries), width)  # (Q, width), best first
    if exclude is not None:  # drop the excluded row where found, else the last: kept order is stable
        drop = rows == np.asarray(exclude)[:, None]
        drop[~drop.any(axis=1), -1] = True
        order = np.argsort(drop, axis=1, kind="stable")[:, : width - 1]
        rows, sims = np.take_along_axis(rows, order, axis=1), np.take_along_axis(sims, order, axis=1)
    return rows.astype(np.int64), sims.astype(np.float32)
