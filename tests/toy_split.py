"""Hand-sized splits for the evaluation and baseline tests, in memory or in the split stage's layout.

Independent of the synthetic generator on purpose: each test states its own interactions, so the
expected numbers can be worked by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

from pixrec import schema
from pixrec.data.dataset import Interactions, SplitData

Pairs = list[tuple[int, int]] | np.ndarray


def _part(pairs: Pairs, t0: int) -> Interactions:
    a = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return Interactions(a[:, 0].astype(np.int32), a[:, 1].astype(np.int32),
                        t0 + np.arange(len(a), dtype=np.int64))


def make_split(n_users: int, n_items: int, train: Pairs, valid: Pairs = (), test: Pairs = ()) -> SplitData:
    """A SplitData from (user_idx, item_idx) pairs; item and user tables as the split stage has them."""
    tr, va, te = _part(train, 0), _part(valid, 10_000), _part(test, 20_000)
    n_train_items = np.bincount(tr.items, minlength=n_items).astype(np.int32)
    n_train_users = np.bincount(tr.users, minlength=n_users).astype(np.int32)
    items = pl.DataFrame({
        schema.ITEM_IDX: np.arange(n_items, dtype=np.int32),
        schema.ITEM_ID: [f"i{i}" for i in range(n_items)],
        schema.TAG_IDX: np.zeros(n_items, dtype=np.int32),
        schema.N_TRAIN: n_train_items,
        schema.IS_COLD: n_train_items == 0,
    })
    users = pl.DataFrame({
        schema.USER_IDX: np.arange(n_users, dtype=np.int32),
        schema.USER_ID: [f"u{u}" for u in range(n_users)],
        schema.N_TRAIN: n_train_users,
        schema.IS_TEST_USER: np.isin(np.arange(n_users), te.users),
    })
    return SplitData(tr, va, te, users, items, {"summary": {}})


def random_split(n_users: int, n_items: int, n_cold: int, seed: int, per_user=(5, 9)) -> SplitData:
    """Each user: a few distinct random items; last one test, second-to-last valid, rest train.

    The last ``n_cold`` items are never used in train (valid/test only), so they are cold.
    """
    rng = np.random.default_rng(seed)
    warm = n_items - n_cold
    train, valid, test = [], [], []
    for u in range(n_users):  # test-data construction only
        n = int(rng.integers(*per_user))
        seq = rng.choice(warm, size=n, replace=False).tolist()
        if n_cold and rng.random() < 0.3:
            seq[-1] = warm + int(rng.integers(n_cold))
        train += [(u, i) for i in seq[:-2]]
        valid.append((u, seq[-2]))
        test.append((u, seq[-1]))
    return make_split(n_users, n_items, train, valid, test)


def write_split(data: SplitData, out: Path) -> Path:
    """Write ``data`` in the split stage's layout (readable by ``SplitData.load``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for part, name in ((data.train, schema.TRAIN_FILE), (data.valid, schema.VALID_FILE),
                       (data.test, schema.TEST_FILE)):
        pl.DataFrame({schema.USER_IDX: part.users, schema.ITEM_IDX: part.items,
                      schema.TIMESTAMP: part.timestamps}).write_parquet(out / name)
    data.users.write_parquet(out / schema.USERS_FILE)
    data.items.write_parquet(out / schema.ITEMS_FILE)
    (out / schema.SPLIT_REPORT).write_text(json.dumps(data.report))
    return out
