"""How far a dot-product model lifts never-clicked items, chosen on validation only.

A model that scores cold items from content (DropoutNet, ALDI) still ranks them below warm items whose
ID vectors carry their popularity: a cold item is found only when it is lifted. Lifting it costs
full-ranking accuracy on warm items, so the lift is a trade between two protocols. The rule here
states the product goal, to lead the best tuned baseline on both, and needs no tolerance knob:

    chosen lift = argmax over the candidate lifts of min(full lead, cold lead)
    full lead   = the model's validation full NDCG@10 / the best tuned baseline's
    cold lead   = the model's validation NDCG@10 over users whose item is cold / the best baseline's

The yardstick is what the tune stage measured on the same validation interactions
(``metrics/tuning.json``); nothing here reads test. Ties go to the larger full NDCG@10.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch

from pixrec.data.dataset import SplitData
from pixrec.errors import InputError
from pixrec.evaluation.metrics import ndcg
from pixrec.evaluation.protocols import block_ranks
from pixrec.evaluation.selection import SELECT_K, VALID_COLD, VALID_FULL


@dataclass(frozen=True)
class Yardstick:
    """The best tuned baseline's validation NDCG@10 on full ranking and on cold items, and which
    baselines they are. A value of 0 (no baseline, or none finds a cold item) leaves its protocol
    unconstrained: any model leads it."""

    full: float
    cold: float
    full_by: str
    cold_by: str

    @classmethod
    def from_tuning(cls, path: Path) -> Yardstick:
        """The yardstick of the tune stage's metrics file (``{baseline: {valid_ndcg@10,
        valid_cold_ndcg@10, ...}}``)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no tuning metrics; run dvc repro tune")
        tuned = json.loads(path.read_text(encoding="utf-8"))
        stale = sorted(n for n, e in tuned.items() if VALID_COLD not in e or VALID_FULL not in e)
        if stale:
            raise InputError(f"{path}: {stale} have no {VALID_COLD}; re-run dvc repro tune")
        full = max(tuned, key=lambda n: tuned[n][VALID_FULL], default="")
        cold = max(tuned, key=lambda n: tuned[n][VALID_COLD], default="")
        return cls(tuned[full][VALID_FULL] if full else 0.0, tuned[cold][VALID_COLD] if cold else 0.0,
                   full, cold)


class Liftable(Protocol):
    """A recommender whose never-trained items can be lifted (:class:`TwoTowerRecommender`)."""

    def base_scores(self, users: np.ndarray) -> torch.Tensor: ...  # (B,) -> (B, N), no lift

    def lifted(self, scores: torch.Tensor, offset: float) -> torch.Tensor: ...  # (B, N) -> (B, N)


def lift_curve(rec: Liftable, data: SplitData, offsets: list[float], batch_users: int = 1024
               ) -> dict[str, dict[str, float]]:
    """``{offset: {"full": NDCG@10, "cold": NDCG@10 of users whose item is cold}}`` on validation
    (training items masked), every offset from one scoring pass: the scores are computed once per
    block of users and only the lift is re-applied, so each offset's ranks equal a full
    :func:`pixrec.evaluation.protocols.rank_full` with that offset, at the cost of one."""
    users, targets = data.valid.users, data.valid.items
    cold = data.cold_items[targets]
    mask = sp.csr_matrix(data.train_matrix, copy=True)
    mask.eliminate_zeros()  # an explicit zero is not "seen" (as rank_full)
    ranks = np.empty((len(offsets), len(users)), dtype=np.int64)
    with torch.inference_mode():
        _rank_blocks(rec, users, targets, mask, offsets, batch_users, ranks)
    curve = {}
    for j, offset in enumerate(offsets):
        gain = ndcg(ranks[j], SELECT_K)
        curve[str(offset)] = {"full": float(gain.mean()),
                              "cold": float(gain[cold].mean()) if cold.any() else 0.0}
    return curve


def _rank_blocks(rec: Liftable, users: np.ndarray, targets: np.ndarray, mask: sp.csr_matrix,
                 offsets: list[float], batch_users: int, ranks: np.ndarray) -> None:
    """Fill ``ranks`` (len(offsets), N) block by block: one scoring per block, one lift per offset."""
    for s in range(0, len(users), batch_users):
        u, t = users[s : s + batch_users], targets[s : s + batch_users]
        base, seen = rec.base_scores(u), mask[u]
        for j, offset in enumerate(offsets):
            ranks[j, s : s + len(u)] = block_ranks(rec.lifted(base, offset).numpy(), t, seen)[0]


def lead(value: float, yardstick: float) -> float:
    """``value`` relative to the yardstick's; infinite where the yardstick is 0 (nothing to lead)."""
    return value / yardstick if yardstick > 0 else math.inf


def pick_offset(curve: dict[str, dict[str, float]], yardstick: Yardstick, has_cold: bool) -> float:
    """The offset of ``curve`` whose smaller lead (full, cold) over ``yardstick`` is largest; ties go
    to the larger full NDCG@10, then the smaller offset. Without cold validation users the cold lead
    does not count."""
    def key(k: str) -> tuple[float, float, float]:
        v = curve[k]
        cold = lead(v["cold"], yardstick.cold) if has_cold else math.inf
        return min(lead(v["full"], yardstick.full), cold), v["full"], -float(k)

    return float(max(curve, key=key))


def choose_cold_offset(rec: Liftable, data: SplitData, offsets: list[float], yardstick: Yardstick
                       ) -> tuple[float, dict[str, dict[str, float]]]:
    """(the chosen lift, the validation curve it was chosen from): :func:`lift_curve` and
    :func:`pick_offset`. Test interactions are never read."""
    curve = lift_curve(rec, data, sorted(offsets))
    return pick_offset(curve, yardstick, bool(data.cold_items[data.valid.items].any())), curve
