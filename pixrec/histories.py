"""Each user's time-ordered training history as a right-aligned matrix: what the sequential models
read (the two-tower's user tower, the SASRec baseline). Built with one sort and one scatter, no
per-user loop. Below both :mod:`pixrec.models` and :mod:`pixrec.baselines`, which both import it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pixrec.data.dataset import Interactions


@dataclass
class Histories:
    """items int64 (U, L), -1 = padding on the left; times int64 (U, L), 0 under padding.

    Row u holds user u's last L training interactions, oldest first, in time order; interactions with
    the same timestamp keep their order in the split file (which keeps the raw file's order).
    """

    items: torch.Tensor
    times: torch.Tensor

    @classmethod
    def build(cls, train: Interactions, n_users: int, length: int) -> Histories:
        users = train.users.astype(np.int64)
        order = np.lexsort((np.arange(len(users)), train.timestamps, users))  # stable on ties
        u, i, t = users[order], train.items[order], train.timestamps[order]
        ends = np.searchsorted(u, np.arange(n_users), side="right")  # (U,) one past each user's last
        from_end = ends[u] - 1 - np.arange(len(u))  # 0 = the user's most recent interaction
        keep = from_end < length
        col = length - 1 - from_end[keep]
        items = np.full((n_users, length), -1, dtype=np.int64)
        times = np.zeros((n_users, length), dtype=np.int64)
        items[u[keep], col] = i[keep]
        times[u[keep], col] = t[keep]
        return cls(torch.from_numpy(items), torch.from_numpy(times))

    @property
    def lengths(self) -> torch.Tensor:
        """(U,) number of items in each row (at most L)."""
        return (self.items >= 0).sum(dim=1)

    def last_time(self, users: torch.Tensor) -> torch.Tensor:
        """users (B,) -> (B,) timestamp of each user's most recent training interaction (0 if none)."""
        return self.times[users, -1]

    def trimmed(self, length: int) -> Histories:
        """The last ``length`` columns: what a model reading ``length`` items sees."""
        return Histories(self.items[:, -length:], self.times[:, -length:])
