"""A simple collaborative + content hybrid, so that a later win is a win of the model, not of mixing.

score = (1 − weight) · z(cf) + weight · z(content) + cold_bonus · [item has no training interaction]

``cf`` is a collaborative baseline (``ease``, ``item_knn``, ``als``, ...: a knob, so a catalogue too big
for EASE can use another) and content is ``content_knn`` (the cosine of the user's mean training-item
text+image vector with the item's), both at their own knobs chosen on validation; each score row is
z-scored per user over the items that model can rank. Where one part cannot rank an item (CF: a cold
item; content: an item without content) that part is the user's lowest z, so the item competes on the
other part alone (plus the bonus when cold); an item neither part can rank stays -inf.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pixrec.baselines.base import BASELINES, Baseline, FitContext
from pixrec.errors import InputError

CONTENT = "content_knn"


def zscore_rows(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float (B, I) with -inf = unrankable -> (z float32 (B, I), finite bool (B, I)).

    z is (s − mean) / std over each row's finite entries (std 0 -> 1); a non-finite entry gets the
    row's lowest finite z (0 when the row has none).
    """
    finite = np.isfinite(scores)
    n = np.maximum(finite.sum(axis=1, keepdims=True), 1)  # (B, 1)
    x = np.where(finite, scores, 0.0).astype(np.float64)
    mean = x.sum(axis=1, keepdims=True) / n
    std = np.sqrt((np.where(finite, x - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / n)
    z = (x - mean) / np.where(std > 0, std, 1.0)
    low = np.where(finite, z, np.inf).min(axis=1, keepdims=True)
    z = np.where(finite, z, np.where(np.isfinite(low), low, 0.0))
    return z.astype(np.float32), finite


@BASELINES.register("hybrid")
class Hybrid(Baseline):
    """The blend above of ``cf`` and content_knn, each fitted once at its chosen knobs."""

    needs_embeddings = True

    @staticmethod
    def components(knobs: Mapping[str, Any]) -> list[str]:
        return [knobs["cf"], CONTENT]

    def __init__(
        self, ctx: FitContext, rng: np.random.Generator, *, cf: str, weight: float, cold_bonus: float,
    ) -> None:
        if not 0.0 <= weight <= 1.0:
            raise InputError(f"{ctx.where}.hybrid.weight must be in [0, 1], got {weight}")
        if cf in (CONTENT, "hybrid"):
            raise InputError(f"{ctx.where}.hybrid.cf must be a collaborative baseline, got {cf!r}")
        self.cf, self.content = ctx.component(cf), ctx.component(CONTENT)
        self.n_items = ctx.data.n_items
        self.weight, self.cold_bonus = np.float32(weight), np.float32(cold_bonus)
        self.cold = ctx.data.cold_items

    def score_all(self, users: np.ndarray) -> np.ndarray:
        z_cf, ok_cf = zscore_rows(self.cf.score_all(users))  # (B, I)
        z_ct, ok_ct = zscore_rows(self.content.score_all(users))  # (B, I)
        s = (1 - self.weight) * z_cf + self.weight * z_ct + self.cold_bonus * self.cold[None, :]
        return np.where(ok_cf | ok_ct, s, np.float32(-np.inf)).astype(np.float32)
