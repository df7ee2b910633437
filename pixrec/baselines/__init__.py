"""Baselines behind the one scoring interface; importing the package registers them all."""

from pixrec.baselines import content, ease, neighbours, popularity  # noqa: F401  (registration)
from pixrec.baselines.base import (
    BASELINES,
    Baseline,
    Embeddings,
    make_baseline,
    preflight_baseline,
    seed_for,
)
from pixrec.baselines.ease import MemoryBudgetError

__all__ = ["BASELINES", "Baseline", "Embeddings", "MemoryBudgetError", "make_baseline",
           "preflight_baseline", "seed_for"]
