"""The sampled protocol's fixed candidate sets, written by the negative-sample stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixrec import schema
from pixrec.data.dataset import SplitData
from pixrec.errors import InputError


@dataclass
class SampledCandidates:
    """users int32 (N,), candidates int32 (N, C), column 0 = the user's test item."""

    users: np.ndarray
    candidates: np.ndarray

    @classmethod
    def load(cls, candidates_dir: Path, data: SplitData) -> SampledCandidates:
        """The candidate sets in ``candidates_dir`` (the negative-sample stage's data/candidates)."""
        d = Path(candidates_dir)
        for name in (schema.CAND_USERS_FILE, schema.CAND_FILE):
            if not (d / name).is_file():
                raise InputError(f"{d / name}: missing; run the negative-sample stage first")
        out = cls(np.load(d / schema.CAND_USERS_FILE), np.load(d / schema.CAND_FILE))
        out.validate(data, str(d))
        return out

    def validate(self, data: SplitData, where: str) -> None:
        """Shapes, index ranges, and column 0 = each user's test item (else: a stale negatives dir)."""
        u, c = self.users, self.candidates
        if u.ndim != 1 or c.ndim != 2 or len(u) != len(c) or c.shape[1] < 2:
            raise InputError(f"{where}: sampled users {u.shape} / candidates {c.shape} do not match")
        if len(u) and (u.min() < 0 or u.max() >= data.n_users or c.min() < 0 or c.max() >= data.n_items):
            raise InputError(f"{where}: sampled users or candidates out of the split's index range; "
                             f"re-run the negative-sample stage on this split")
        test_item = np.full(data.n_users, -1, dtype=np.int64)
        test_item[data.test.users] = data.test.items
        bad = np.flatnonzero(test_item[u] != c[:, 0])
        if bad.size:
            raise InputError(f"{where}: column 0 is not the test item for row(s) {bad[:10].tolist()} "
                             f"(user_idx {u[bad[:10]].tolist()}); re-run the negative-sample stage")
