"""Nearest items by cosine (faiss IndexFlatIP over unit rows): the brute-force answer, an item never
its own neighbour, an all-zero vector near nothing in particular."""

from __future__ import annotations

import numpy as np

from pixrec.serve.neighbours import cosine_neighbours, normalised


def brute_force(table: np.ndarray, queries: np.ndarray, k: int, exclude=None) -> np.ndarray:
    cos = normalised(queries) @ normalised(table).T  # (Q, N)
    if exclude is not None:
        cos[np.arange(len(queries)), exclude] = -np.inf
    return np.argsort(-cos, axis=1, kind="stable")[:, :k]


def test_neighbours_are_the_brute_force_cosine_ranking():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((200, 16)).astype(np.float32) * rng.uniform(0.1, 9, (200, 1))  # any norm
    queries = rng.standard_normal((7, 16)).astype(np.float32)
    rows, cos = cosine_neighbours(table, queries, 5)
    np.testing.assert_array_equal(rows, brute_force(table, queries, 5))
    expected = (normalised(queries)[:, None, :] * normalised(table)[rows]).sum(-1)
    np.testing.assert_allclose(cos, expected, rtol=1e-5)
    assert (np.diff(cos, axis=1) <= 1e-7).all()


def test_an_item_is_not_its_own_neighbour():
    rng = np.random.default_rng(1)
    table = rng.standard_normal((50, 8)).astype(np.float32)
    table[7] = table[3] * 2.0  # 3 and 7 point the same way: each is the other's nearest
    idx = np.array([3, 7, 11])
    rows, cos = cosine_neighbours(table, table[idx], 4, exclude=idx)
    assert rows.shape == (3, 4) and not (rows == idx[:, None]).any()
    assert rows[0, 0] == 7 and rows[1, 0] == 3 and cos[0, 0] > 0.9999
    np.testing.assert_array_equal(rows, brute_force(table, table[idx], 4, exclude=idx))


def test_a_zero_vector_has_cosine_zero_with_everything():
    table = np.eye(4, dtype=np.float32)
    table[2] = 0.0
    rows, cos = cosine_neighbours(table, table[[2]], 3, exclude=np.array([2]))
    assert set(rows[0].tolist()) <= {0, 1, 3} and np.all(cos == 0.0)
