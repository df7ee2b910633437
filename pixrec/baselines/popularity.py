"""Reference points that ignore who the user is: uniform random scores and training popularity."""

from __future__ import annotations

import numpy as np

from pixrec.baselines.base import BASELINES, Baseline, FitContext


@BASELINES.register("random")
class RandomScores(Baseline):
    """Uniform scores. Each call draws from a generator derived from the seed and the call's users,
    so a block's scores do not depend on which blocks were scored before it (bit-for-bit reruns)."""

    def __init__(self, ctx: FitContext, rng: np.random.Generator) -> None:
        self.n_items = ctx.data.n_items
        self.seed = int(rng.integers(2**63))

    def _rng(self, users: np.ndarray, call: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, call, *np.asarray(users).tolist()]))

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._rng(users, 0).random(np.shape(items), dtype=np.float32)  # (B, C)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self._rng(users, 1).random((len(users), self.n_items), dtype=np.float32)  # (B, I)


@BASELINES.register("most_popular")
class MostPopular(Baseline):
    """Score = number of *training* interactions (``SplitData.train_popularity``); a test interaction
    never counts. Items with none (cold) are unrankable: -inf."""

    def __init__(self, ctx: FitContext, rng: np.random.Generator) -> None:
        self.n_items = ctx.data.n_items
        pop = ctx.data.train_popularity
        self.scores = np.where(pop > 0, pop.astype(np.float32), np.float32(-np.inf))  # (I,)

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.scores[np.asarray(items)]  # (B, C)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return np.repeat(self.scores[None, :], len(users), axis=0)  # (B, I)
