"""EASE (Steck, WWW 2019): a closed-form item–item linear model.

B = I − P · diag(1/diag(P)), P = (XᵀX + λI)⁻¹, i.e. B_ij = −P_ij / P_jj with a zero diagonal;
score = X[user] @ B. It needs dense n_items × n_items matrices, so it refuses (before allocating
anything) when that would exceed its ``max_gib`` knob.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pixrec.baselines.base import BASELINES, Baseline, FitContext
from pixrec.errors import InputError

BYTES_PER_CELL = 8  # float64 Gram matrix inverted in place, B overwrites P: one dense matrix


class MemoryBudgetError(InputError):
    """A baseline would need more memory than its configured budget."""


def ease_memory_bytes(n_items: int) -> int:
    """Bytes of the dense float64 n_items × n_items matrix EASE holds (Gram → P → B, in place)."""
    return BYTES_PER_CELL * n_items * n_items


def check_ease_budget(n_items: int, max_gib: float, where: str = "baselines.knobs") -> None:
    """Raise :class:`MemoryBudgetError`, saying what to do, when EASE would exceed the budget."""
    need = ease_memory_bytes(n_items)
    if need > max_gib * 2**30:
        raise MemoryBudgetError(
            f"ease: the closed form needs a dense {n_items:,} x {n_items:,} float64 matrix, about "
            f"{need / 2**30:.1f} GiB, but {where}.ease.max_gib is {max_gib:g}. Remove 'ease' from "
            f"baselines.names (and use hybrid's cf: als), or, on a machine with that much free memory, "
            f"raise it (e.g. dvc exp run -S {where}.ease.max_gib={int(need / 2**30 * 1.25) + 1})"
        )


@BASELINES.register("ease")
class EASE(Baseline):
    """The closed form above on the binary training matrix; cold items are unrankable (-inf)."""

    @staticmethod
    def preflight(ctx: FitContext, knobs: Mapping[str, Any]) -> None:
        check_ease_budget(ctx.data.n_items, knobs["max_gib"], ctx.where)

    def __init__(self, ctx: FitContext, rng: np.random.Generator, *, lam: float, max_gib: float) -> None:
        import scipy.linalg

        data = ctx.data
        n = data.n_items
        check_ease_budget(n, max_gib, ctx.where)
        if lam <= 0:
            raise InputError(f"{ctx.where}.ease.lam must be > 0, got {lam}")
        self.n_items = n
        self.unrankable = data.cold_items
        self.x = data.train_matrix.astype(np.float64)  # (U, I)
        b = (self.x.T @ self.x).toarray()  # (I, I) Gram
        b[np.diag_indices(n)] += lam
        b = scipy.linalg.inv(b, overwrite_a=True, check_finite=False)  # P, symmetric
        b /= -np.diag(b)[None, :]  # B_ij = -P_ij / P_jj
        b[np.diag_indices(n)] = 0.0
        self.b = b

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self._finish(self.x[users] @ self.b)  # (B, I)
