"""Nearest items by cosine of a model's item vectors: exact, by one matrix product of L2-normalised rows
and a stable sort, so what ``pixrec similar`` lists is what the model itself finds alike. Plain numpy:
a query is a few items against one catalogue, and importing faiss would cost more than the search."""

from __future__ import annotations

import numpy as np
import polars as pl

from pixrec import schema

QUERY_BLOCK = 256  # queries per product: peak memory QUERY_BLOCK x N float32


def normalised(vectors: np.ndarray) -> np.ndarray:
    """(N, D) -> float32 (N, D) unit rows; an all-zero row stays zero (cosine 0 with everything)."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norm > 0, norm, 1.0)


def cosine_neighbours(
    table: np.ndarray, queries: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``table`` (N, D) nearest each of ``queries`` (Q, D) by cosine, best first (ties:
    the lower row first), leaving out row ``exclude[q]`` (Q,) for query q (an item is not its own
    neighbour).

    -> (rows int64 (Q, k'), cosine float32 (Q, k')), k' = min(k, N - (exclude given)).
    """
    base = normalised(table)
    query = normalised(queries)
    width = max(min(k, len(base) - (exclude is not None)), 0)
    rows = np.empty((len(query), width), dtype=np.int64)
    cos = np.empty((len(query), width), dtype=np.float32)
    for s in range(0, len(query), QUERY_BLOCK):
        sims = query[s : s + QUERY_BLOCK] @ base.T  # (B, N)
        if exclude is not None:
            sims[np.arange(len(sims)), np.asarray(exclude)[s : s + QUERY_BLOCK]] = -np.inf
        top = np.argsort(-sims, axis=1, kind="stable")[:, :width]
        rows[s : s + len(top)] = top
        cos[s : s + len(top)] = np.take_along_axis(sims, top, axis=1)
    return rows, cos


def neighbours_frame(
    query_ids: list[str] | np.ndarray, rows: np.ndarray, cos: np.ndarray, catalogue_ids: np.ndarray
) -> pl.DataFrame:
    """item_id, rank, neighbour_id, cosine: each query's neighbours (rows of the catalogue, whose ids
    are ``catalogue_ids``), best first."""
    q, r = np.indices(rows.shape)
    catalogue = np.asarray(catalogue_ids, dtype=object)
    return pl.DataFrame({
        schema.ITEM_ID: np.asarray(query_ids, dtype=object)[q.ravel()],
        schema.REC_RANK: (r.ravel() + 1).astype(np.int32),
        "neighbour_id": catalogue[rows.ravel()], "cosine": cos.ravel(),
    }, schema={schema.ITEM_ID: pl.Utf8, schema.REC_RANK: pl.Int32, "neighbour_id": pl.Utf8,
               "cosine": pl.Float32})
