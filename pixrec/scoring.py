"""The one scoring interface every recommender implements, baselines and the fusion model alike."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


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
