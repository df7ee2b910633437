"""The baseline registry and what every baseline shares.

A baseline is one class registered under the name users write in ``eval.baselines``. It is fitted
in its constructor, which has one signature for all::

    Cls(data: SplitData, embeddings: Embeddings | None, rng: np.random.Generator, *, <params>)

where ``<params>`` are keyword-only arguments named after ``eval.*`` keys (``knn_neighbours``,
``ease_lambda``, ...). :func:`make_baseline` passes each class exactly the keys it declares, so a new
baseline is one class plus one ``@BASELINES.register`` line, and a new tunable is one keyword.
Every baseline fits on the *training* interactions only.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import scipy.sparse as sp

from pixrec.data.dataset import SplitData
from pixrec.registry import Registry
from pixrec.scoring import top_unseen

Embeddings = dict[str, tuple[np.ndarray, np.ndarray]]  # side -> (vectors (I, d) f32, usable (I,) bool)


class Baseline:
    """Base of the baselines: :class:`pixrec.scoring.Recommender` with a chunked default ``score``.

    ID-only subclasses set ``unrankable`` (bool (n_items,)) to the cold items: :meth:`_finish`
    gives those ``-inf``, which the evaluator ranks last.
    """

    name: str = "baseline"
    n_items: int
    unrankable: np.ndarray | None = None
    score_chunk: int = 256  # users per score_all call inside the default score()

    @staticmethod
    def preflight(data: SplitData) -> None:
        """Cheap checks run for every configured baseline before any is fitted (fail fast)."""

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """users int (B,) -> float32 (B, n_items)."""
        raise NotImplementedError

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """users int (B,), items int (B, C) -> float32 (B, C), gathered from ``score_all`` rows."""
        users, items = np.asarray(users), np.asarray(items)
        out = np.empty(items.shape, dtype=np.float32)
        for s in range(0, len(users), self.score_chunk):
            rows = self.score_all(users[s : s + self.score_chunk])
            out[s : s + len(rows)] = np.take_along_axis(rows, items[s : s + len(rows)], axis=1)
        return out

    def retrieve(
        self, users: np.ndarray, n: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each user's top ``n`` unexcluded items: see :func:`pixrec.scoring.top_unseen`."""
        return top_unseen(self, users, n, exclude)

    def _finish(self, scores: np.ndarray) -> np.ndarray:
        """float (B, I) -> float32 (B, I), writable, unrankable items at -inf."""
        scores = np.asarray(scores, dtype=np.float32)
        if self.unrankable is not None and self.unrankable.any():
            scores[:, self.unrankable] = -np.inf
        return scores


BASELINES: Registry[type[Baseline]] = Registry("baseline")


def make_baseline(
    name: str,
    data: SplitData,
    embeddings: Embeddings | None,
    rng: np.random.Generator,
    **params: Any,
) -> Baseline:
    """Fit baseline ``name``; of ``params`` (the ``eval`` section) it receives the keys it declares."""
    cls = BASELINES.get(name)
    model = cls(data, embeddings, rng, **_declared(cls.__init__, params))
    model.name = name
    return model


def preflight_baseline(name: str, data: SplitData, **params: Any) -> None:
    """Run baseline ``name``'s cheap pre-fit checks (unknown name, memory budget, ...)."""
    cls = BASELINES.get(name)
    cls.preflight(data, **_declared(cls.preflight, params))


def _declared(fn: Any, params: dict[str, Any]) -> dict[str, Any]:
    accepted = inspect.signature(fn).parameters
    return {k: v for k, v in params.items() if k in accepted}


def seed_for(seed: int, name: str) -> np.random.Generator:
    """A generator per baseline from the stage seed and the baseline's name (not its list position),
    so adding or reordering baselines never changes another's draws."""
    return np.random.default_rng(np.random.SeedSequence([seed, *name.encode()]))
