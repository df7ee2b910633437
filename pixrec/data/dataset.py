"""Loading the split for downstream stages: integer arrays and a sparse training matrix."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from pixrec import schema


@dataclass
class Interactions:
    """Parallel arrays of one split part; ``users``/``items`` int32 (N,), ``timestamps`` int64."""

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray

    @classmethod
    def read(cls, path: Path) -> Interactions:
        df = pl.read_parquet(path)
        return cls(
            df[schema.USER_IDX].to_numpy().astype(np.int32, copy=False),
            df[schema.ITEM_IDX].to_numpy().astype(np.int32, copy=False),
            df[schema.TIMESTAMP].to_numpy().astype(np.int64, copy=False),
        )

    def __len__(self) -> int:
        return len(self.users)

    def matrix(self, n_users: int, n_items: int) -> sp.csr_matrix:
        """Binary (n_users, n_items) CSR matrix, float32."""
        data = np.ones(len(self.users), dtype=np.float32)
        m = sp.csr_matrix((data, (self.users, self.items)), shape=(n_users, n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m


@dataclass
class SplitData:
    """Everything the split stage wrote, loaded once."""

    train: Interactions
    valid: Interactions
    test: Interactions
    users: pl.DataFrame
    items: pl.DataFrame
    report: dict

    @classmethod
    def load(cls, split_dir: Path) -> SplitData:
        d = Path(split_dir)
        for name in (schema.TRAIN_FILE, schema.VALID_FILE, schema.TEST_FILE, schema.USERS_FILE, schema.ITEMS_FILE):
            if not (d / name).is_file():
                raise FileNotFoundError(f"{d / name}: missing; run the split stage first")
        return cls(
            train=Interactions.read(d / schema.TRAIN_FILE),
            valid=Interactions.read(d / schema.VALID_FILE),
            test=Interactions.read(d / schema.TEST_FILE),
            users=pl.read_parquet(d / schema.USERS_FILE),
            items=pl.read_parquet(d / schema.ITEMS_FILE),
            report=json.loads((d / schema.SPLIT_REPORT).read_text()),
        )

    @property
    def n_users(self) -> int:
        return self.users.height

    @property
    def n_items(self) -> int:
        return self.items.height

    @cached_property
    def train_matrix(self) -> sp.csr_matrix:
        """(n_users, n_items) binary CSR of training interactions."""
        return self.train.matrix(self.n_users, self.n_items)

    @cached_property
    def seen_matrix(self) -> sp.csr_matrix:
        """Train + valid: what full ranking masks for a test user."""
        both = Interactions(
            np.concatenate([self.train.users, self.valid.users]),
            np.concatenate([self.train.items, self.valid.items]),
            np.concatenate([self.train.timestamps, self.valid.timestamps]),
        )
        return both.matrix(self.n_users, self.n_items)

    @cached_property
    def all_matrix(self) -> sp.csr_matrix:
        """Every interaction of every split: what sampled-protocol negatives must avoid."""
        parts = (self.train, self.valid, self.test)
        both = Interactions(
            np.concatenate([p.users for p in parts]),
            np.concatenate([p.items for p in parts]),
            np.concatenate([p.timestamps for p in parts]),
        )
        return both.matrix(self.n_users, self.n_items)

    @cached_property
    def train_popularity(self) -> np.ndarray:
        """(n_items,) int64 training interaction counts: the only popularity evaluation may use."""
        return np.bincount(self.train.items, minlength=self.n_items).astype(np.int64)

    @cached_property
    def item_tags(self) -> np.ndarray:
        """(n_items,) int64 tag index, 0 = no tag."""
        return self.items[schema.TAG_IDX].to_numpy().astype(np.int64)

    @cached_property
    def cold_items(self) -> np.ndarray:
        """(n_items,) bool: no training interaction."""
        return self.items[schema.IS_COLD].to_numpy()
