"""Baselines behind the one scoring interface; importing the package registers them all."""

from pixrec.baselines import content, ease, factors, hybrid, neighbours, popularity, sasrec  # noqa: F401
from pixrec.baselines.base import (
    BASELINES,
    Baseline,
    FitContext,
    make_baseline,
    preflight_baseline,
    seed_for,
)
from pixrec.baselines.ease import MemoryBudgetError

__all__ = ["BASELINES", "Baseline", "FitContext", "MemoryBudgetError", "make_baseline",
           "preflight_baseline", "seed_for"]
