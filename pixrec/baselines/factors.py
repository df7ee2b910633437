"""Learned matrix factorisation from the ``implicit`` library: ALS (Hu, Koren & Volinsky, ICDM 2008)
and BPR (Rendle et al., UAI 2009), each fitted by ``implicit`` on the binary training matrix.

Scoring is the dot product of the fitted factors, user_factors[u] @ item_factors.T (BPR's item bias
is a factor column whose user side is 1), so the evaluator ranks every item exactly, in blocks.
Items without a training interaction keep an untrained factor (ALS: zero, BPR: its random start):
they are unrankable (-inf), as for every ID-only model.

Determinism (measured on the default dataset): ALS with ``random_state`` gives the same factors bit
for bit on re-runs, and the same with 1 or 2 threads; BPR's Hogwild SGD races across threads (2
threads: scores differ by ~3e-2 between runs), so BPR always runs on one thread, which is bit-for-bit
repeatable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pixrec.baselines.base import BASELINES, Baseline, FitContext
from pixrec.errors import InputError


def _positive(where: str, **values: float) -> None:
    bad = {k: v for k, v in values.items() if not v > 0}
    if bad:
        raise InputError(f"{where}: knob(s) {bad} must be > 0")


class _Factors(Baseline):
    """Shared scoring of the two: (B, d) @ (d, I), cold items at -inf."""

    user_factors: np.ndarray  # (U, d) float32
    item_factors: np.ndarray  # (I, d) float32

    def _fit(self, ctx: FitContext, make: Callable[[], Any]) -> None:
        """Build (``make``) and fit the implicit model, keep its factors."""
        from threadpoolctl import threadpool_limits

        self.n_items = ctx.data.n_items
        self.unrankable = ctx.data.cold_items
        # implicit parallelises itself: a BLAS pool inside its threads only oversubscribes the cores
        with threadpool_limits(limits=1, user_api="blas"):
            model = make()
            model.fit(ctx.data.train_matrix.astype(np.float32).tocsr(), show_progress=False)
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self._finish(self.user_factors[np.asarray(users)] @ self.item_factors.T)  # (B, I)


@BASELINES.register("als")
class ALS(_Factors):
    """Weighted ALS on confidence 1 + ``alpha`` · x_ui, conjugate-gradient solver, ``threads`` threads."""

    def __init__(
        self, ctx: FitContext, rng: np.random.Generator, *,
        factors: int, regularization: float, alpha: float, iterations: int, threads: int,
    ) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        _positive(f"{ctx.where}.als", factors=factors, regularization=regularization, alpha=alpha,
                  iterations=iterations, threads=threads)
        seed = int(rng.integers(2**31 - 1))
        self._fit(ctx, lambda: AlternatingLeastSquares(
            factors=factors, regularization=regularization, alpha=alpha, iterations=iterations,
            num_threads=threads, random_state=seed))


@BASELINES.register("bpr")
class BPR(_Factors):
    """BPR-MF by SGD over (user, positive, sampled negative) triples; one thread (see module doc)."""

    def __init__(
        self, ctx: FitContext, rng: np.random.Generator, *,
        factors: int, learning_rate: float, regularization: float, iterations: int,
    ) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        _positive(f"{ctx.where}.bpr", factors=factors, learning_rate=learning_rate,
                  iterations=iterations)
        seed = int(rng.integers(2**31 - 1))
        self._fit(ctx, lambda: BayesianPersonalizedRanking(
            factors=factors, learning_rate=learning_rate, regularization=regularization,
            iterations=iterations, num_threads=1, random_state=seed))
